/* recd-train synth-bundle: a synthetic bundle with constructed weights. */
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "recd/core.h"
#include "recd/train.h"

/* ---- synth-bundle ---------------------------------------------------------------------- */

static void synth_usage(FILE *f)
{
    fprintf(f, "usage: recd-train synth-bundle --out MODELS_DIR [options]\n"
               "\n"
               "Write a complete recd-bundle/1 to MODELS_DIR/NAME/VERSION/ with constructed\n"
               "weights: items fall into latent topics (correlated with genres and years) and\n"
               "the candidate tower maps a history from one topic to that topic's items. The\n"
               "ranker's weights are small random values. Same seed, same bytes.\n"
               "\n"
               "  --out DIR            models directory (required)\n"
               "  --name NAME          model name (default: default)\n"
               "  --version N          bundle version, must not exist yet (default: 1)\n"
               "  --items N            number of items (default: 20000)\n"
               "  --dim D              item/user vector size, the ANN dimension (default: 64)\n"
               "  --embed E            history and user-field embedding size (default: 32)\n"
               "  --hidden H[,H...]    candidate tower hidden sizes (default: 256)\n"
               "  --rank-embed K       ranker field embedding size (default: 16)\n"
               "  --rank-hidden H,...  ranker MLP sizes (default: 256,128,64)\n"
               "  --history-max N      history items averaged by the tower (default: 50)\n"
               "  --seed S             random seed (default: 1)\n"
               "  --ranker R           deepfm | wide_deep (default: deepfm)\n"
               "  --index F            Flat | IVF<nlist>,Flat | HNSW<M> (default: Flat up to\n"
               "                       50000 items, else IVF<pow2 near 4*sqrt(n)>,Flat)\n"
               "  --nprobe N           IVF lists searched per query (default: 32)\n"
               "  --ef-search N        HNSW search beam (default: 128)\n"
               "  --no-index-file      omit index.faiss (recd builds the index at load)\n"
               "  --help               print this help and exit\n");
}

int cmd_synth_bundle(int argc, char **argv)
{
    enum {
        O_OUT = 1000,
        O_NAME,
        O_VERSION,
        O_ITEMS,
        O_DIM,
        O_EMBED,
        O_HIDDEN,
        O_RANK_EMBED,
        O_RANK_HIDDEN,
        O_HISTORY,
        O_SEED,
        O_RANKER,
        O_INDEX,
        O_NPROBE,
        O_EF,
        O_NO_INDEX,
        O_HELP,
    };
    static const struct option opts[] = {
        {"out", required_argument, NULL, O_OUT},
        {"name", required_argument, NULL, O_NAME},
        {"version", required_argument, NULL, O_VERSION},
        {"items", required_argument, NULL, O_ITEMS},
        {"dim", required_argument, NULL, O_DIM},
        {"embed", required_argument, NULL, O_EMBED},
        {"hidden", required_argument, NULL, O_HIDDEN},
        {"rank-embed", required_argument, NULL, O_RANK_EMBED},
        {"rank-hidden", required_argument, NULL, O_RANK_HIDDEN},
        {"history-max", required_argument, NULL, O_HISTORY},
        {"seed", required_argument, NULL, O_SEED},
        {"ranker", required_argument, NULL, O_RANKER},
        {"index", required_argument, NULL, O_INDEX},
        {"nprobe", required_argument, NULL, O_NPROBE},
        {"ef-search", required_argument, NULL, O_EF},
        {"no-index-file", no_argument, NULL, O_NO_INDEX},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    const char *cmd = "synth-bundle";
    recd_synth_opts_t o;
    recd_train_synth_defaults(&o);
    o.models_dir = NULL;
    int ch;
    long long v;
    optind = 1;
    opterr = 1;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        int bad = 0;
        switch (ch) {
        case O_OUT: o.models_dir = optarg; break;
        case O_NAME: o.name = optarg; break;
        case O_VERSION:
            bad = parse_int(cmd, "--version", optarg, 1, INT64_MAX, &v);
            o.version = v;
            break;
        case O_ITEMS:
            bad = parse_int(cmd, "--items", optarg, 1, 100000000, &v);
            o.n_items = (size_t)v;
            break;
        case O_DIM:
            bad = parse_int(cmd, "--dim", optarg, 1, 4096, &v);
            o.dim = (size_t)v;
            break;
        case O_EMBED:
            bad = parse_int(cmd, "--embed", optarg, 1, 4096, &v);
            o.embed_dim = (size_t)v;
            break;
        case O_HIDDEN:
            bad = parse_sizes(cmd, "--hidden", optarg, o.hidden, RECD_SYNTH_MAX_LAYERS, &o.nhidden);
            break;
        case O_RANK_EMBED:
            bad = parse_int(cmd, "--rank-embed", optarg, 1, 1024, &v);
            o.rank_embed_dim = (size_t)v;
            break;
        case O_RANK_HIDDEN:
            bad = parse_sizes(cmd, "--rank-hidden", optarg, o.rank_hidden, RECD_SYNTH_MAX_LAYERS,
                              &o.nrank_hidden);
            break;
        case O_HISTORY:
            bad = parse_int(cmd, "--history-max", optarg, 1, 100000, &v);
            o.history_max_len = (size_t)v;
            break;
        case O_SEED:
            bad = parse_int(cmd, "--seed", optarg, 0, INT64_MAX, &v);
            o.seed = (uint64_t)v;
            break;
        case O_RANKER:
            if (strcmp(optarg, "deepfm") == 0) {
                o.ranker = RECD_RANKER_DEEPFM;
            } else if (strcmp(optarg, "wide_deep") == 0) {
                o.ranker = RECD_RANKER_WIDE_DEEP;
            } else {
                fprintf(stderr, "recd-train %s: --ranker: '%s' is not deepfm or wide_deep\n", cmd,
                        optarg);
                bad = -1;
            }
            break;
        case O_INDEX: o.index = optarg; break;
        case O_NPROBE:
            bad = parse_int(cmd, "--nprobe", optarg, 1, 1000000, &v);
            o.nprobe = (int)v;
            break;
        case O_EF:
            bad = parse_int(cmd, "--ef-search", optarg, 1, 1000000, &v);
            o.ef_search = (int)v;
            break;
        case O_NO_INDEX: o.write_index_file = 0; break;
        case O_HELP: synth_usage(stdout); return 0;
        default: synth_usage(stderr); return EXIT_USAGE;
        }
        if (bad)
            return EXIT_USAGE;
    }
    if (optind < argc) {
        fprintf(stderr, "recd-train %s: unexpected argument '%s'\n", cmd, argv[optind]);
        return EXIT_USAGE;
    }
    if (!o.models_dir || !*o.models_dir) {
        fprintf(stderr, "recd-train %s: --out MODELS_DIR is required\n", cmd);
        synth_usage(stderr);
        return EXIT_USAGE;
    }

    char index_buf[32];
    if (!o.index)
        o.index = recd_train_synth_default_index(o.n_items, index_buf, sizeof index_buf);
    recd_err_t err = {0};
    uint64_t t0 = recd_time_mono_us();
    int rc = recd_train_synth_bundle(&o, &err);
    if (rc != 0) {
        fprintf(stderr, "recd-train %s: %s\n", cmd, err.msg[0] ? err.msg : "failed");
        /* Invalid option combinations (e.g. IVF nlist > items) are usage
         * errors; everything else is a failure. */
        return rc == RECD_EINVAL && strstr(err.msg, "already exists") == NULL ? EXIT_USAGE : 1;
    }
    printf("wrote %s/%s/%lld: %zu items, dim %zu, ranker %s, index %s%s (%.1f s)\n", o.models_dir,
           o.name, (long long)o.version, o.n_items, o.dim,
           o.ranker == RECD_RANKER_WIDE_DEEP ? "wide_deep" : "deepfm", o.index,
           o.write_index_file ? "" : " (no index file)", (double)(recd_time_mono_us() - t0) / 1e6);
    return 0;
}

