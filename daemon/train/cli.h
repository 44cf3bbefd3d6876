/* Shared pieces of the recd-train command-line program: the commands
 * (each in its own file under daemon/train/) and option parsing helpers. */
#ifndef RECD_TRAIN_CLI_H
#define RECD_TRAIN_CLI_H

#include <stddef.h>

#define EXIT_USAGE 2

/* Each command parses its own options (getopt_long from optind = 1) and
 * returns the process exit status: 0 success, 1 failure, 2 bad usage. */
int cmd_synth_bundle(int argc, char **argv);
int cmd_synth(int argc, char **argv);
int cmd_import(int argc, char **argv);
int cmd_fit(int argc, char **argv);
int cmd_eval(int argc, char **argv);

/* Parse a decimal integer in [lo, hi]; prints the error itself. */
int parse_int(const char *cmd, const char *opt, const char *s, long long lo, long long hi,
              long long *out);
/* Parse a number in [lo, hi]; prints the error itself. */
int parse_double(const char *cmd, const char *opt, const char *s, double lo, double hi,
                 double *out);
/* Parse "256" or "256,128,64" into sizes[]. */
int parse_sizes(const char *cmd, const char *opt, const char *s, size_t *sizes, size_t cap,
                size_t *n);

#endif
