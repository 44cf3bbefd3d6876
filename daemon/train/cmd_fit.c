/* recd-train fit and eval: train models from a dataset, evaluate bundles. */
#include <getopt.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "recd/core.h"
#include "recd/nn.h"
#include "recd/train.h"

static void fit_usage(FILE *f)
{
    fprintf(f, "usage: recd-train fit --data DATASET_DIR --out MODELS_DIR [options]\n"
               "\n"
               "Train the candidate model (YouTube DNN, sampled softmax), a ranker and the\n"
               "content model on a dataset (`recd-train synth` or `import`) and publish a\n"
               "bundle to MODELS_DIR/NAME/VERSION/ atomically. By default the evaluation split\n"
               "is held out (each user's latest interaction, the one before it for early\n"
               "stopping, 5%% of items as cold-start items, the last 10%% of ranker examples\n"
               "by time) and its metrics go into the manifest; `recd-train eval` reproduces\n"
               "them. --no-holdout trains on everything (a production model).\n"
               "\n"
               "  --data DIR           dataset directory (required)\n"
               "  --out DIR            models directory (required)\n"
               "  --name NAME          model name (default: default)\n"
               "  --version N          bundle version (default: one past the highest)\n"
               "  --ranker R           deepfm | wide_deep | lr (default: deepfm; lr is written\n"
               "                       as a DeepFM without embeddings, a baseline)\n"
               "  --no-holdout         train on all data; no metrics\n"
               "  --cold-frac F        share of items held out for cold start (default: 0.05)\n"
               "  --time-frac F        ranker's time-ordered test share (default: 0.10)\n"
               "  --seed S             random seed (default: 1)\n"
               "  --dim D              item/user vector size (default: 128)\n"
               "  --embed E            history and user-field embedding size (default: 128)\n"
               "  --hidden H[,H...]    candidate tower hidden sizes (default: 256)\n"
               "  --history-max N      history items averaged (default: 50)\n"
               "  --negatives N        sampled softmax negatives per batch (default: 2048)\n"
               "  --sampler S          pop (popularity^0.75, default) | logu (log-uniform over\n"
               "                       the popularity rank)\n"
               "  --epochs N           candidate model max epochs (default: 20)\n"
               "  --lr X               candidate model learning rate (default: 0.002)\n"
               "  --l2 X               candidate model L2 on embeddings (default: 1e-6)\n"
               "  --batch N            candidate model batch (default: 256)\n"
               "  --no-tie             separate history embeddings (default: tied to the output\n"
               "                       embeddings when --embed = --dim; the bundle stores both)\n"
               "  --user-weight W      weight a user's examples by n^-W (n: the user's training\n"
               "                       interactions), so heavy users do not dominate (default: 0)\n"
               "  --rank-embed K       ranker field embedding size (default: 16)\n"
               "  --rank-hidden H,...  ranker MLP sizes (default: 256,128,64)\n"
               "  --rank-epochs N      ranker max epochs (default: 10)\n"
               "  --rank-lr X          ranker MLP learning rate (default: 3e-4 when warm-started\n"
               "                       from LR, else the ranker trainer's 1e-3)\n"
               "  --rank-batch N       ranker batch (default: 256)\n"
               "  --rank-unseen F      share of ranker training examples that see the user as\n"
               "                       one never trained, so new users are scored in a regime\n"
               "                       the network has learned (default: 0.2)\n"
               "  --rank-lr-sparse X   learning rate of the ranker's tables (default: 1e-3\n"
               "                       when warm-started from LR, else 1e-2)\n"
               "  --rank-l2 X          L2 on the ranker's embedding and first-order rows\n"
               "                       (default: the ranker trainer's, 1e-3)\n"
               "  --no-rank-warm       train DeepFM / Wide&Deep from scratch (default: start\n"
               "                       from a logistic regression's first-order weights)\n"
               "  --watch-weight M     auto | on | off: weight watch positives by seconds, so\n"
               "                       the ranker outputs exp(logit) = expected watch time\n"
               "                       (default: auto = when the data has watch times)\n"
               "  --no-content         no content model (PUT /v1/items then needs vectors)\n"
               "  --warm DIR           warm start from a published bundle directory: its\n"
               "                       architecture, every tensor of the same name and shape\n"
               "                       as the starting point (epochs may be 0)\n"
               "  --content-epochs N   content model max epochs (default: 40)\n"
               "  --index F            Flat | IVF<nlist>,Flat | HNSW<M> (default: by size)\n"
               "  --nprobe N           IVF lists searched (default: 32)\n"
               "  --ef-search N        HNSW beam (default: 128)\n"
               "  --threads N          OpenBLAS threads (default: 1; results depend on it)\n"
               "  --quiet              no progress on stderr\n"
               "  --json               print the result as JSON on stdout\n"
               "  --help               print this help and exit\n");
}

void openblas_set_num_threads(int n);

int cmd_fit(int argc, char **argv)
{
    enum {
        O_DATA = 1000,
        O_OUT,
        O_NAME,
        O_VERSION,
        O_RANKER,
        O_NO_HOLDOUT,
        O_COLD,
        O_TIME,
        O_SEED,
        O_DIM,
        O_EMBED,
        O_HIDDEN,
        O_HISTORY,
        O_NEG,
        O_SAMPLER,
        O_EPOCHS,
        O_LR,
        O_L2,
        O_BATCH,
        O_USER_WEIGHT,
        O_TIE,
        O_RANK_EMBED,
        O_RANK_HIDDEN,
        O_RANK_EPOCHS,
        O_RANK_LR,
        O_RANK_BATCH,
        O_RANK_UNSEEN,
        O_RANK_L2,
        O_RANK_LR_SPARSE,
        O_NO_RANK_WARM,
        O_WATCH,
        O_WARM,
        O_NO_CONTENT,
        O_CONTENT_EPOCHS,
        O_INDEX,
        O_NPROBE,
        O_EF,
        O_THREADS,
        O_QUIET,
        O_JSON,
        O_HELP,
    };
    static const struct option opts[] = {
        {"data", required_argument, NULL, O_DATA},
        {"out", required_argument, NULL, O_OUT},
        {"name", required_argument, NULL, O_NAME},
        {"version", required_argument, NULL, O_VERSION},
        {"ranker", required_argument, NULL, O_RANKER},
        {"no-holdout", no_argument, NULL, O_NO_HOLDOUT},
        {"cold-frac", required_argument, NULL, O_COLD},
        {"time-frac", required_argument, NULL, O_TIME},
        {"seed", required_argument, NULL, O_SEED},
        {"dim", required_argument, NULL, O_DIM},
        {"embed", required_argument, NULL, O_EMBED},
        {"hidden", required_argument, NULL, O_HIDDEN},
        {"history-max", required_argument, NULL, O_HISTORY},
        {"negatives", required_argument, NULL, O_NEG},
        {"sampler", required_argument, NULL, O_SAMPLER},
        {"epochs", required_argument, NULL, O_EPOCHS},
        {"lr", required_argument, NULL, O_LR},
        {"l2", required_argument, NULL, O_L2},
        {"batch", required_argument, NULL, O_BATCH},
        {"user-weight", required_argument, NULL, O_USER_WEIGHT},
        {"no-tie", no_argument, NULL, O_TIE},
        {"rank-embed", required_argument, NULL, O_RANK_EMBED},
        {"rank-hidden", required_argument, NULL, O_RANK_HIDDEN},
        {"rank-epochs", required_argument, NULL, O_RANK_EPOCHS},
        {"rank-lr", required_argument, NULL, O_RANK_LR},
        {"rank-batch", required_argument, NULL, O_RANK_BATCH},
        {"rank-unseen", required_argument, NULL, O_RANK_UNSEEN},
        {"no-rank-warm", no_argument, NULL, O_NO_RANK_WARM},
        {"warm", required_argument, NULL, O_WARM},
        {"rank-l2", required_argument, NULL, O_RANK_L2},
        {"rank-lr-sparse", required_argument, NULL, O_RANK_LR_SPARSE},
        {"watch-weight", required_argument, NULL, O_WATCH},
        {"no-content", no_argument, NULL, O_NO_CONTENT},
        {"content-epochs", required_argument, NULL, O_CONTENT_EPOCHS},
        {"index", required_argument, NULL, O_INDEX},
        {"nprobe", required_argument, NULL, O_NPROBE},
        {"ef-search", required_argument, NULL, O_EF},
        {"threads", required_argument, NULL, O_THREADS},
        {"quiet", no_argument, NULL, O_QUIET},
        {"json", no_argument, NULL, O_JSON},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    const char *cmd = "fit";
    recd_fit_opts_t o;
    recd_fit_defaults(&o);
    o.models_dir = NULL;
    o.verbose = 1;
    int json_out = 0, threads = 1, ch;
    long long v;
    double d;
    optind = 1;
    opterr = 1;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        int bad = 0;
        switch (ch) {
        case O_DATA: o.data_dir = optarg; break;
        case O_OUT: o.models_dir = optarg; break;
        case O_NAME: o.name = optarg; break;
        case O_VERSION:
            bad = parse_int(cmd, "--version", optarg, 1, INT64_MAX, &v);
            o.version = v;
            break;
        case O_RANKER:
            if (strcmp(optarg, "deepfm") == 0)
                o.ranker = RECD_FIT_DEEPFM;
            else if (strcmp(optarg, "wide_deep") == 0)
                o.ranker = RECD_FIT_WIDE_DEEP;
            else if (strcmp(optarg, "lr") == 0)
                o.ranker = RECD_FIT_LR;
            else {
                fprintf(stderr, "recd-train fit: --ranker: '%s' is not deepfm, wide_deep or lr\n",
                        optarg);
                bad = -1;
            }
            break;
        case O_NO_HOLDOUT: o.holdout = 0; break;
        case O_COLD:
            bad = parse_double(cmd, "--cold-frac", optarg, 0, 0.5, &d);
            o.cold_frac = d;
            break;
        case O_TIME:
            bad = parse_double(cmd, "--time-frac", optarg, 0, 0.5, &d);
            o.time_frac = d;
            break;
        case O_SEED:
            bad = parse_int(cmd, "--seed", optarg, 0, INT64_MAX, &v);
            o.seed = (uint64_t)v;
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
            bad = parse_sizes(cmd, "--hidden", optarg, o.hidden, RECD_SYNTH_MAX_LAYERS - 1,
                              &o.nhidden);
            break;
        case O_HISTORY:
            bad = parse_int(cmd, "--history-max", optarg, 1, 10000, &v);
            o.history_max_len = (size_t)v;
            break;
        case O_NEG:
            bad = parse_int(cmd, "--negatives", optarg, 1, 1000000, &v);
            o.negatives = (size_t)v;
            break;
        case O_SAMPLER:
            if (strcmp(optarg, "logu") == 0)
                o.sampler = 0;
            else if (strcmp(optarg, "pop") == 0)
                o.sampler = 1;
            else {
                fprintf(stderr, "recd-train fit: --sampler: '%s' is not logu or pop\n", optarg);
                bad = -1;
            }
            break;
        case O_EPOCHS:
            bad = parse_int(cmd, "--epochs", optarg, 0, 10000, &v);
            o.cand_epochs = (int)v;
            break;
        case O_LR:
            bad = parse_double(cmd, "--lr", optarg, 1e-7, 10, &d);
            o.cand_lr = (float)d;
            break;
        case O_L2:
            bad = parse_double(cmd, "--l2", optarg, 0, 1, &d);
            o.cand_l2 = (float)d;
            break;
        case O_BATCH:
            bad = parse_int(cmd, "--batch", optarg, 1, 65536, &v);
            o.cand_batch = (size_t)v;
            break;
        case O_TIE: o.cand_tie = 0; break;
        case O_USER_WEIGHT:
            bad = parse_double(cmd, "--user-weight", optarg, 0, 1, &d);
            o.cand_user_weight = d;
            break;
        case O_RANK_EMBED:
            bad = parse_int(cmd, "--rank-embed", optarg, 1, 1024, &v);
            o.rank_embed_dim = (size_t)v;
            break;
        case O_RANK_HIDDEN:
            bad = parse_sizes(cmd, "--rank-hidden", optarg, o.rank_hidden, RECD_SYNTH_MAX_LAYERS,
                              &o.nrank_hidden);
            break;
        case O_RANK_EPOCHS:
            bad = parse_int(cmd, "--rank-epochs", optarg, 0, 10000, &v);
            o.rank_epochs = (int)v;
            break;
        case O_RANK_LR:
            bad = parse_double(cmd, "--rank-lr", optarg, 1e-7, 10, &d);
            o.rank_lr = (float)d;
            break;
        case O_RANK_BATCH:
            bad = parse_int(cmd, "--rank-batch", optarg, 1, 65536, &v);
            o.rank_batch = (size_t)v;
            break;
        case O_RANK_UNSEEN:
            bad = parse_double(cmd, "--rank-unseen", optarg, 0, 0.9, &d);
            o.rank_unseen = (float)d;
            break;
        case O_NO_RANK_WARM: o.rank_warm_lr = 0; break;
        case O_WARM: o.warm_dir = optarg; break;
        case O_RANK_LR_SPARSE:
            bad = parse_double(cmd, "--rank-lr-sparse", optarg, 1e-7, 10, &d);
            o.rank_lr_sparse = (float)d;
            break;
        case O_RANK_L2:
            bad = parse_double(cmd, "--rank-l2", optarg, 0, 1, &d);
            o.rank_l2 = (float)d;
            break;
        case O_WATCH:
            if (strcmp(optarg, "auto") == 0)
                o.watch_weight = -1;
            else if (strcmp(optarg, "on") == 0)
                o.watch_weight = 1;
            else if (strcmp(optarg, "off") == 0)
                o.watch_weight = 0;
            else {
                fprintf(stderr, "recd-train fit: --watch-weight: '%s' is not auto, on or off\n",
                        optarg);
                bad = -1;
            }
            break;
        case O_NO_CONTENT: o.content = 0; break;
        case O_CONTENT_EPOCHS:
            bad = parse_int(cmd, "--content-epochs", optarg, 0, 10000, &v);
            o.content_epochs = (int)v;
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
        case O_THREADS:
            bad = parse_int(cmd, "--threads", optarg, 1, 256, &v);
            threads = (int)v;
            break;
        case O_QUIET: o.verbose = 0; break;
        case O_JSON: json_out = 1; break;
        case O_HELP: fit_usage(stdout); return 0;
        default: fit_usage(stderr); return EXIT_USAGE;
        }
        if (bad)
            return EXIT_USAGE;
    }
    if (optind < argc) {
        fprintf(stderr, "recd-train fit: unexpected argument '%s'\n", argv[optind]);
        return EXIT_USAGE;
    }
    if (!o.data_dir || !*o.data_dir || !o.models_dir || !*o.models_dir) {
        fprintf(stderr, "recd-train fit: --data DATASET_DIR and --out MODELS_DIR are required\n");
        fit_usage(stderr);
        return EXIT_USAGE;
    }
    if (!o.warm_dir && (o.cand_epochs == 0 || o.rank_epochs == 0 || o.content_epochs == 0)) {
        fprintf(stderr, "recd-train fit: 0 epochs needs --warm (a model to start from)\n");
        return EXIT_USAGE;
    }
    recd_nn_init();
    openblas_set_num_threads(threads);
    recd_fit_result_t res;
    recd_err_t err = {0};
    int rc = recd_train_fit(&o, &res, &err);
    if (rc != 0) {
        fprintf(stderr, "recd-train fit: %s\n", err.msg[0] ? err.msg : "failed");
        return rc == RECD_EINVAL ? EXIT_USAGE : 1;
    }
    if (json_out) {
        json_t *j =
            json_pack("{s:s, s:I, s:f, s:f, s:f, s:f, s:f, s:f, s:O}", "bundle", res.dir, "version",
                      (json_int_t)res.version, "seconds", res.seconds, "candidate_s",
                      res.cand_seconds, "ranker_s", res.rank_seconds, "content_s",
                      res.content_seconds, "candidate_examples_per_s", res.cand_examples_per_s,
                      "ranker_examples_per_s", res.rank_examples_per_s, "metrics", res.metrics);
        char *s = j ? json_dumps(j, JSON_SORT_KEYS) : NULL;
        if (s)
            printf("%s\n", s);
        free(s);
        json_decref(j);
    } else {
        printf("wrote %s (%.1f s)\n", res.dir, res.seconds);
    }
    json_decref(res.metrics);
    return 0;
}

static void eval_usage(FILE *f)
{
    fprintf(f, "usage: recd-train eval --data DATASET_DIR BUNDLE_DIR [BUNDLE_DIR...]\n"
               "\n"
               "Evaluate bundles trained by `recd-train fit` (with its default holdout) on the\n"
               "same dataset, with the split recorded in the first bundle's manifest, through\n"
               "recd's serving code. Prints one row per bundle plus ItemPop and Random on the\n"
               "same split: leave-one-out HR@10 / NDCG@10 (the held-out latest item against\n"
               "99 sampled unseen items), full-catalog Recall@20 / NDCG@20, the ranker's\n"
               "HR@10 / NDCG@10 on the same 100 items, the ranker's AUC (all, users seen in\n"
               "training, new users) and logloss on the last part by time, and cold-start\n"
               "Recall@20 among held-out items embedded by the content model.\n"
               "\n"
               "  --data DIR    dataset directory (required)\n"
               "  --json        print the result as JSON on stdout instead of the table\n"
               "  --help        print this help and exit\n");
}

int cmd_eval(int argc, char **argv)
{
    static const struct option opts[] = {
        {"data", required_argument, NULL, 'd'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *data = NULL;
    int json_out = 0, ch;
    optind = 1;
    opterr = 1;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 'd': data = optarg; break;
        case 'j': json_out = 1; break;
        case 'h': eval_usage(stdout); return 0;
        default: eval_usage(stderr); return EXIT_USAGE;
        }
    }
    if (!data || optind >= argc) {
        fprintf(stderr, "recd-train eval: --data DATASET_DIR and at least one BUNDLE_DIR are "
                        "required\n");
        eval_usage(stderr);
        return EXIT_USAGE;
    }
    recd_nn_init();
    recd_err_t err = {0};
    json_t *r = recd_train_eval((const char *const *)argv + optind, (size_t)(argc - optind), data,
                                json_out ? NULL : stdout, &err);
    if (!r) {
        fprintf(stderr, "recd-train eval: %s\n", err.msg[0] ? err.msg : "failed");
        return 1;
    }
    if (json_out) {
        char *s = json_dumps(r, JSON_SORT_KEYS | JSON_INDENT(1));
        if (s)
            printf("%s\n", s);
        free(s);
    }
    json_decref(r);
    return 0;
}
