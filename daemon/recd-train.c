/* recd-train: offline model building for recd. One program, several
 * subcommands (`recd-train <command> [options]`); each command parses its
 * own options and returns the process exit status: 0 success, 1 failure,
 * 2 bad usage. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "recd/core.h"
#include "recd/train.h"

#include "train/cli.h"

typedef struct command {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv);
} command_t;

static const command_t COMMANDS[] = {
    {"synth", "generate a synthetic dataset from a latent-factor world", cmd_synth},
    {"import",
     "convert MovieLens (ml-100k, ml-1m, ml-latest[-small]) or recd's event log into a dataset",
     cmd_import},
    {"fit", "train the candidate model, ranker and content model; publish a bundle", cmd_fit},
    {"eval", "evaluate a bundle on a dataset (HR/NDCG@10, Recall@20, AUC, cold start)", cmd_eval},
    {"synth-bundle", "write a synthetic (structured, untrained) model bundle", cmd_synth_bundle},
};
#define NCOMMANDS (sizeof COMMANDS / sizeof COMMANDS[0])

static void usage(FILE *f)
{
    fprintf(f, "usage: recd-train <command> [options]\n"
               "       recd-train --help | --version\n"
               "\n"
               "commands:\n");
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(f, "  %-14s %s\n", COMMANDS[i].name, COMMANDS[i].summary);
    fprintf(f, "\n`recd-train <command> --help` describes a command's options.\n");
}

/* ---- main -------------------------------------------------------------------------------- */

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    const char *c = argv[1];
    if (strcmp(c, "--help") == 0 || strcmp(c, "-h") == 0 || strcmp(c, "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(c, "--version") == 0) {
        printf("recd-train %s (git %s, %s)\n", RECD_VERSION, recd_build_git(),
               recd_build_compiler());
        return 0;
    }
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (strcmp(c, COMMANDS[i].name) == 0)
            return COMMANDS[i].run(argc - 1, argv + 1);
    fprintf(stderr, "recd-train: unknown command '%s'\n", c);
    usage(stderr);
    return EXIT_USAGE;
}
