/* recd-train synth and import: build a dataset (recd-dataset/1). */
#include <dirent.h>
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

#define LAYOUT_EVENTS "recd-events"

static void import_usage(FILE *f)
{
    fprintf(f, "usage: recd-train import --from SRC_DIR --out DIR [options]\n"
               "       recd-train import --layout recd-events --from EVENTS_DIR [--base DATASET]\n"
               "                         --out DIR [options]\n"
               "\n"
               "Convert a MovieLens directory (ml-100k, ml-1m, ml-latest or ml-latest-small)\n"
               "into a dataset (recd-dataset/1). Malformed lines are reported on stderr as\n"
               "file:line: reason and skipped.\n"
               "\n"
               "With --layout recd-events, convert recd's event log (<data_dir>/events) instead:\n"
               "every event becomes a row of events.tsv (value: the rating or the seconds\n"
               "watched, 0 otherwise). Users and items are the ids of the log, or, with --base,\n"
               "the base dataset's rows with their feature columns plus the log's new ids (with\n"
               "empty cells); the base's events are kept too (the union: an event in both is\n"
               "kept twice, duplicates are not removed). A record that does not decode is\n"
               "reported on stderr with its log offset and skipped. The log may be read while\n"
               "recd is running.\n"
               "\n"
               "  --from DIR     the unpacked MovieLens directory, or the event log (required)\n"
               "  --out DIR      dataset directory to write (required)\n"
               "  --layout L     auto | ml-100k | ml-1m | ml-latest | recd-events (default:\n"
               "                 auto, a MovieLens layout by the files present)\n"
               "  --strict       MovieLens: fail on the first malformed line (exit 1)\n"
               "  --base DIR     recd-events: a dataset to start from\n"
               "  --skip-corrupt recd-events: skip damaged regions of the log (reported)\n"
               "                 instead of failing\n"
               "  --force        replace DIR if it is an existing dataset\n"
               "  --help         print this help and exit\n");
}

/* Whether dir holds event-log segment files ("<20 digits>.seg"). */
static int has_segments(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    struct dirent *e;
    int found = 0;
    while (!found && (e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        found =
            n == 24 && strcmp(e->d_name + 20, ".seg") == 0 && strspn(e->d_name, "0123456789") == 20;
    }
    closedir(d);
    return found;
}

static int import_events(const char *cmd, const char *from, const char *base_dir, int skip_corrupt,
                         const char *out, int force)
{
    recd_err_t err = {0};
    recd_dataset_t *base = NULL;
    uint64_t t0 = recd_time_mono_us();
    if (base_dir && recd_dataset_load(base_dir, &base, &err) != 0) {
        fprintf(stderr, "recd-train %s: --base: %s\n", cmd, err.msg[0] ? err.msg : "load failed");
        return 1;
    }
    recd_import_stats_t st;
    recd_dataset_t *ds = NULL;
    int rc = recd_dataset_import_events(from, base, skip_corrupt, stderr, &ds, &st, &err);
    if (rc != 0) {
        if (rc == RECD_ENOENT)
            fprintf(stderr, "recd-train %s: no event log at %s (%s)\n", cmd, from, err.msg);
        else
            fprintf(stderr, "recd-train %s: %s%s\n", cmd, err.msg[0] ? err.msg : "failed",
                    rc == RECD_EIO && !skip_corrupt ? " (--skip-corrupt skips damaged regions)"
                                                    : "");
        recd_dataset_free(base);
        return 1;
    }
    if ((rc = recd_dataset_save(ds, out, force, &err)) != 0) {
        fprintf(stderr, "recd-train %s: %s\n", cmd, err.msg[0] ? err.msg : "save failed");
        recd_dataset_free(ds);
        recd_dataset_free(base);
        return 1;
    }
    size_t bu = base ? base->users.nrows : 0, bi = base ? base->items.nrows : 0;
    size_t be = base ? base->nevents : 0;
    char sum[256], basesum[512] = "";
    event_summary(ds, sum, sizeof sum);
    if (base)
        snprintf(basesum, sizeof basesum, "; base %s: %zu users, %zu items, %zu events kept",
                 base_dir, bu, bi, be);
    printf("imported event log %s into %s: %zu users (%zu new), %zu items (%zu new), %zu events "
           "(%s; %s); %zu records read, %zu undecodable records skipped%s (%.1f s)\n",
           from, out, ds->users.nrows, ds->users.nrows - bu, ds->items.nrows, st.added_items,
           ds->nevents, ds->implicit ? "implicit" : "explicit", sum, st.lines, st.skipped, basesum,
           (double)(recd_time_mono_us() - t0) / 1e6);
    recd_dataset_free(ds);
    recd_dataset_free(base);
    return 0;
}

int cmd_import(int argc, char **argv)
{
    enum { O_FROM = 1000, O_OUT, O_LAYOUT, O_STRICT, O_BASE, O_SKIP_CORRUPT, O_FORCE, O_HELP };
    static const struct option opts[] = {
        {"from", required_argument, NULL, O_FROM},
        {"out", required_argument, NULL, O_OUT},
        {"layout", required_argument, NULL, O_LAYOUT},
        {"strict", no_argument, NULL, O_STRICT},
        {"base", required_argument, NULL, O_BASE},
        {"skip-corrupt", no_argument, NULL, O_SKIP_CORRUPT},
        {"force", no_argument, NULL, O_FORCE},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    const char *cmd = "import";
    const char *from = NULL, *out = NULL, *base = NULL;
    int strict = 0, force = 0, skip_corrupt = 0, events = 0, ch;
    recd_ml_layout_t layout = RECD_ML_AUTO;
    optind = 1;
    opterr = 1;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case O_FROM: from = optarg; break;
        case O_OUT: out = optarg; break;
        case O_LAYOUT: {
            if (strcmp(optarg, LAYOUT_EVENTS) == 0) {
                events = 1;
                break;
            }
            int l = recd_ml_layout_parse(optarg);
            if (l < 0) {
                fprintf(stderr,
                        "recd-train %s: --layout: '%s' is not auto, ml-100k, ml-1m or "
                        "ml-latest (MovieLens), or " LAYOUT_EVENTS " (a recd event log)\n",
                        cmd, optarg);
                return EXIT_USAGE;
            }
            events = 0;
            layout = (recd_ml_layout_t)l;
            break;
        }
        case O_STRICT: strict = 1; break;
        case O_BASE: base = optarg; break;
        case O_SKIP_CORRUPT: skip_corrupt = 1; break;
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
    if (events && strict) {
        fprintf(stderr,
                "recd-train %s: --strict is for MovieLens layouts (undecodable records of an "
                "event log are always reported and skipped)\n",
                cmd);
        return EXIT_USAGE;
    }
    if (!events && (base || skip_corrupt)) {
        fprintf(stderr, "recd-train %s: %s needs --layout " LAYOUT_EVENTS "\n", cmd,
                base ? "--base" : "--skip-corrupt");
        return EXIT_USAGE;
    }
    if (base && !*base) {
        fprintf(stderr, "recd-train %s: --base: empty directory name\n", cmd);
        return EXIT_USAGE;
    }
    if (out_ok(cmd, out, force) != 0)
        return 1;
    if (events)
        return import_events(cmd, from, base, skip_corrupt, out, force);
    recd_err_t err = {0};
    recd_import_stats_t st;
    recd_dataset_t *ds = NULL;
    uint64_t t0 = recd_time_mono_us();
    int rc = recd_dataset_import_movielens(from, layout, strict, stderr, &ds, &st, &err);
    if (rc == RECD_ENOENT && layout == RECD_ML_AUTO && has_segments(from)) {
        fprintf(stderr,
                "recd-train %s: %s holds event-log segments (*.seg), not MovieLens files: "
                "use --layout " LAYOUT_EVENTS "\n",
                cmd, from);
        return 1;
    }
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
