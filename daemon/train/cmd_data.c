/* recd-train synth and import: build a dataset (recd-dataset/1). */
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "recd/core.h"
#include "recd/dataset.h"

/* The output directory may not exist unless --force (checked before any
 * work; recd_dataset_save checks again and refuses non-datasets). */
static int out_ok(const char *cmd, const char *out, int force)
{
    struct stat st;
    if (!force && lstat(out, &st) == 0) {
        fprintf(stderr, "recd-train %s: %s already exists (use --force to replace it)\n", cmd, out);
        return -1;
    }
    return 0;
}

/* One line about the events: CTR and watch time, or the mean rating. */
static void event_summary(const recd_dataset_t *ds, char *buf, size_t cap)
{
    size_t n[RECD_EV_NTYPES] = {0};
    double rsum = 0;
    for (size_t e = 0; e < ds->nevents; e++) {
        n[ds->events[e].type]++;
        if (ds->events[e].type == RECD_EV_RATING)
            rsum += ds->events[e].value;
    }
    if (ds->implicit)
        snprintf(buf, cap, "%zu impressions, %zu clicks (CTR %.1f%%), %zu watches, %zu purchases",
                 n[RECD_EV_IMPRESSION], n[RECD_EV_CLICK],
                 n[RECD_EV_IMPRESSION]
                     ? 100.0 * (double)n[RECD_EV_CLICK] / (double)n[RECD_EV_IMPRESSION]
                     : 0.0,
                 n[RECD_EV_WATCH], n[RECD_EV_PURCHASE]);
    else
        snprintf(buf, cap, "mean rating %.2f",
                 n[RECD_EV_RATING] ? rsum / (double)n[RECD_EV_RATING] : 0.0);
}

/* ---- synth ----------------------------------------------------------------------------- */

static void synth_usage(FILE *f)
{
    fprintf(f, "usage: recd-train synth --out DIR [options]\n"
               "\n"
               "Generate a synthetic dataset (recd-dataset/1) from a latent-factor world: users\n"
               "and items with hidden tastes, Zipf popularity, content and demographics that\n"
               "follow the tastes, and feedback drawn from them. The true factors are saved in\n"
               "DIR/truth/. Same options and seed, same bytes.\n"
               "\n"
               "  --out DIR      dataset directory to write (required)\n"
               "  --users N      number of users (default: 5000)\n"
               "  --items N      number of items (default: 20000)\n"
               "  --events N     target number of events (default: 200000)\n"
               "  --factors K    latent dimension (default: 16)\n"
               "  --topics T     number of taste topics (default: 24)\n"
               "  --implicit     impressions, clicks, watches, purchases (default)\n"
               "  --explicit     ratings 0.5..5 instead\n"
               "  --zipf S       popularity exponent, 0 = uniform (default: 1.0)\n"
               "  --days D       time span from 2026-01-01 (default: 180)\n"
               "  --seed S       random seed (default: 1)\n"
               "  --force        replace DIR if it is an existing dataset\n"
               "  --help         print this help and exit\n");
}

int cmd_synth(int argc, char **argv)
{
    enum {
        O_OUT = 1000,
        O_USERS,
        O_ITEMS,
        O_EVENTS,
        O_FACTORS,
        O_TOPICS,
        O_IMPLICIT,
        O_EXPLICIT,
        O_ZIPF,
        O_DAYS,
        O_SEED,
        O_FORCE,
        O_HELP,
    };
    static const struct option opts[] = {
        {"out", required_argument, NULL, O_OUT},
        {"users", required_argument, NULL, O_USERS},
        {"items", required_argument, NULL, O_ITEMS},
        {"events", required_argument, NULL, O_EVENTS},
        {"factors", required_argument, NULL, O_FACTORS},
        {"topics", required_argument, NULL, O_TOPICS},
        {"implicit", no_argument, NULL, O_IMPLICIT},
        {"explicit", no_argument, NULL, O_EXPLICIT},
        {"zipf", required_argument, NULL, O_ZIPF},
        {"days", required_argument, NULL, O_DAYS},
        {"seed", required_argument, NULL, O_SEED},
        {"force", no_argument, NULL, O_FORCE},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    const char *cmd = "synth";
    recd_world_opts_t o;
    recd_world_defaults(&o);
    const char *out = NULL;
    int force = 0, ch;
    long long v;
    optind = 1;
    opterr = 1;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        int bad = 0;
        switch (ch) {
        case O_OUT: out = optarg; break;
        case O_USERS:
            bad = parse_int(cmd, "--users", optarg, 1, 10000000, &v);
            o.n_users = (size_t)v;
            break;
        case O_ITEMS:
            bad = parse_int(cmd, "--items", optarg, 1, 10000000, &v);
            o.n_items = (size_t)v;
            break;
        case O_EVENTS:
            bad = parse_int(cmd, "--events", optarg, 1, 100000000, &v);
            o.n_events = (size_t)v;
            break;
        case O_FACTORS:
            bad = parse_int(cmd, "--factors", optarg, 2, 256, &v);
            o.n_factors = (size_t)v;
            break;
        case O_TOPICS:
            bad = parse_int(cmd, "--topics", optarg, 1, 10000, &v);
            o.n_topics = (size_t)v;
            break;
        case O_IMPLICIT: o.implicit = 1; break;
        case O_EXPLICIT: o.implicit = 0; break;
        case O_ZIPF: bad = parse_double(cmd, "--zipf", optarg, 0.0, 5.0, &o.zipf); break;
        case O_DAYS:
            bad = parse_int(cmd, "--days", optarg, 1, 3650, &v);
            o.days = (int)v;
            break;
        case O_SEED:
            bad = parse_int(cmd, "--seed", optarg, 0, INT64_MAX, &v);
            o.seed = (uint64_t)v;
            break;
        case O_FORCE: force = 1; break;
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
    if (!out || !*out) {
        fprintf(stderr, "recd-train %s: --out DIR is required\n", cmd);
        synth_usage(stderr);
        return EXIT_USAGE;
    }
    if (out_ok(cmd, out, force) != 0)
        return 1;
    recd_err_t err = {0};
    uint64_t t0 = recd_time_mono_us();
    recd_dataset_t *ds = NULL;
    int rc = recd_dataset_synth(&o, &ds, &err);
    if (rc != 0) {
        fprintf(stderr, "recd-train %s: %s\n", cmd, err.msg[0] ? err.msg : "failed");
        return rc == RECD_EINVAL ? EXIT_USAGE : 1;
    }
    if ((rc = recd_dataset_save(ds, out, force, &err)) != 0) {
        fprintf(stderr, "recd-train %s: %s\n", cmd, err.msg[0] ? err.msg : "save failed");
        recd_dataset_free(ds);
        return 1;
    }
    char sum[256];
    event_summary(ds, sum, sizeof sum);
    printf("wrote %s: %zu users, %zu items, %zu events (%s; %s) in %.1f s\n", out, ds->users.nrows,
           ds->items.nrows, ds->nevents, ds->implicit ? "implicit" : "explicit", sum,
           (double)(recd_time_mono_us() - t0) / 1e6);
    recd_dataset_free(ds);
    return 0;
}

/* ---- import ---------------------------------------------------------------------------- */

static void import_usage(FILE *f)
{
    fprintf(f, "usage: recd-train import --from SRC_DIR --out DIR [options]\n"
               "\n"
               "Convert a MovieLens directory (ml-100k, ml-1m, ml-latest or ml-latest-small)\n"
               "into a dataset (recd-dataset/1). Malformed lines are reported on stderr as\n"
               "file:line: reason and skipped.\n"
               "\n"
               "  --from DIR     the unpacked MovieLens directory (required)\n"
               "  --out DIR      dataset directory to write (required)\n"
               "  --layout L     auto | ml-100k | ml-1m | ml-latest (default: auto, by the\n"
               "                 files present)\n"
               "  --strict       fail on the first malformed line (exit 1)\n"
               "  --force        replace DIR if it is an existing dataset\n"
               "  --help         print this help and exit\n");
}

int cmd_import(int argc, char **argv)
{
    enum { O_FROM = 1000, O_OUT, O_LAYOUT, O_STRICT, O_FORCE, O_HELP };
    static const struct option opts[] = {
        {"from", required_argument, NULL, O_FROM},
        {"out", required_argument, NULL, O_OUT},
        {"layout", required_argument, NULL, O_LAYOUT},
        {"strict", no_argument, NULL, O_STRICT},
        {"force", no_argument, NULL, O_FORCE},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    const char *cmd = "import";
    const char *from = NULL, *out = NULL;
    int strict = 0, force = 0, ch;
    recd_ml_layout_t layout = RECD_ML_AUTO;
    optind = 1;
    opterr = 1;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case O_FROM: from = optarg; break;
        case O_OUT: out = optarg; break;
        case O_LAYOUT: {
            int l = recd_ml_layout_parse(optarg);
            if (l < 0) {
                fprintf(stderr,
                        "recd-train %s: --layout: '%s' is not auto, ml-100k, ml-1m or "
                        "ml-latest\n",
                        cmd, optarg);
                return EXIT_USAGE;
            }
            layout = (recd_ml_layout_t)l;
            break;
        }
        case O_STRICT: strict = 1; break;
        case O_FORCE: force = 1; break;
        case O_HELP: import_usage(stdout); return 0;
        default: import_usage(stderr); return EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "recd-train %s: unexpected argument '%s'\n", cmd, argv[optind]);
        return EXIT_USAGE;
    }
    if (!from || !*from || !out || !*out) {
        fprintf(stderr, "recd-train %s: --from SRC_DIR and --out DIR are required\n", cmd);
        import_usage(stderr);
        return EXIT_USAGE;
    }
    if (out_ok(cmd, out, force) != 0)
        return 1;
    recd_err_t err = {0};
    recd_import_stats_t st;
    recd_dataset_t *ds = NULL;
    uint64_t t0 = recd_time_mono_us();
    int rc = recd_dataset_import_movielens(from, layout, strict, stderr, &ds, &st, &err);
    if (rc != 0) {
        fprintf(stderr, "recd-train %s: %s\n", cmd, err.msg[0] ? err.msg : "failed");
        return 1;
    }
    if ((rc = recd_dataset_save(ds, out, force, &err)) != 0) {
        fprintf(stderr, "recd-train %s: %s\n", cmd, err.msg[0] ? err.msg : "save failed");
        recd_dataset_free(ds);
        return 1;
    }
    char sum[256];
    event_summary(ds, sum, sizeof sum);
    printf("imported %s (%s) into %s: %zu users, %zu items, %zu ratings (%s); %zu rating lines "
           "read, %zu malformed lines skipped, %zu items added from ratings (%.1f s)\n",
           from, recd_ml_layout_name(st.layout), out, ds->users.nrows, ds->items.nrows, ds->nevents,
           sum, st.lines, st.skipped, st.added_items, (double)(recd_time_mono_us() - t0) / 1e6);
    recd_dataset_free(ds);
    return 0;
}
