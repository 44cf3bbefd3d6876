/* recdctl: the operator's command-line tool for recd. One program, a table
 * of commands (`recdctl <command> [<subcommand>] [options]`), each parsing
 * its own options and returning the process exit status: 0 success, 1
 * failure, 2 bad usage.
 *
 * Today: `recdctl events dump|verify`, which read the durable event log
 * (include/recd/events.h, payloads in include/recd/evrec.h) straight from
 * its directory, without the log's lock, so they work on a stopped log and
 * beside a running recd alike. */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "recd/conf.h"
#include "recd/core.h"
#include "recd/dataset.h"
#include "recd/events.h"
#include "recd/evrec.h"

#define EXIT_USAGE 2
#define REPORT_MAX 20 /* undecodable records described one by one on stderr */

/* "s" unless n == 1, for counts in messages */
static const char *plural(uint64_t n)
{
    return n == 1 ? "" : "s";
}

typedef struct command {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv);
} command_t;

/* Run the entry of table named by argv[1] with (argc - 1, argv + 1), or
 * print usage. prog is e.g. "recdctl events". */
static int dispatch(const char *prog, const command_t *table, size_t n, void (*usage)(FILE *),
                    int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "%s: missing command\n", prog);
        usage(stderr);
        return EXIT_USAGE;
    }
    const char *c = argv[1];
    if (strcmp(c, "--help") == 0 || strcmp(c, "-h") == 0 || strcmp(c, "help") == 0) {
        usage(stdout);
        return 0;
    }
    for (size_t i = 0; i < n; i++)
        if (strcmp(c, table[i].name) == 0)
            return table[i].run(argc - 1, argv + 1);
    fprintf(stderr, "%s: unknown command '%s'\n", prog, c);
    usage(stderr);
    return EXIT_USAGE;
}

static void list_commands(FILE *f, const command_t *table, size_t n)
{
    for (size_t i = 0; i < n; i++)
        fprintf(f, "  %-14s %s\n", table[i].name, table[i].summary);
}

/* ---- time stamps ---------------------------------------------------------------------- */

/* Days since 1970-01-01 of the proleptic Gregorian date y-m-d: Howard
 * Hinnant's days_from_civil ("chrono-Compatible Low-Level Date
 * Algorithms", 2013). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int digits(const char *s, size_t n, int *out)
{
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

/* "1795845600" (unix seconds), "2026-11-28" (midnight UTC) or
 * "2026-11-28T06:00:00Z"; 0 or -1. */
static int parse_ts(const char *s, int64_t *out)
{
    size_t n = strlen(s);
    if (n >= 1 && n <= 15 && strspn(s, "0123456789") == n) {
        *out = strtoll(s, NULL, 10);
        return 0;
    }
    int y, mo, d, h = 0, mi = 0, se = 0;
    if (n != 10 && n != 20)
        return -1;
    if (digits(s, 4, &y) || s[4] != '-' || digits(s + 5, 2, &mo) || s[7] != '-' ||
        digits(s + 8, 2, &d))
        return -1;
    if (n == 20 &&
        (s[10] != 'T' || digits(s + 11, 2, &h) || s[13] != ':' || digits(s + 14, 2, &mi) ||
         s[16] != ':' || digits(s + 17, 2, &se) || s[19] != 'Z'))
        return -1;
    static const int mdays[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] ||
        (mo == 2 && d == 29 && !leap) || h > 23 || mi > 59 || se > 59)
        return -1;
    *out = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se;
    return 0;
}

/* ISO 8601 UTC of ts, or "?" when the C library cannot represent it. */
static const char *iso(int64_t ts, char *buf, size_t cap)
{
    struct tm tm;
    time_t t = (time_t)ts;
    if ((int64_t)t != ts || !gmtime_r(&t, &tm) ||
        strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(buf, cap, "?");
    return buf;
}

/* ---- where the log is --------------------------------------------------------------------- */

typedef struct logloc {
    const char *dir_opt;  /* --dir */
    const char *conf_opt; /* -c */
    char dir[PATH_MAX];
    char origin[PATH_MAX + 64]; /* how dir was chosen, for messages */
} logloc_t;

/* Fill loc->dir from --dir, or <data_dir>/events of -c FILE or of the
 * built-in configuration. Prints errors; returns the exit status on
 * failure, 0 on success. */
static int resolve_dir(const char *prog, logloc_t *loc)
{
    if (loc->dir_opt) {
        if (snprintf(loc->dir, sizeof loc->dir, "%s", loc->dir_opt) >= (int)sizeof loc->dir) {
            fprintf(stderr, "%s: --dir: path too long\n", prog);
            return EXIT_USAGE;
        }
        snprintf(loc->origin, sizeof loc->origin, "--dir");
        return 0;
    }
    recd_conf_errors_t errs = {0};
    recd_conf_t *c = recd_conf_load(loc->conf_opt, NULL, 0, &errs);
    if (!c) {
        for (size_t i = 0; i < errs.n; i++)
            fprintf(stderr, "%s: config error: %s\n", prog, errs.lines[i]);
        if (errs.n == 0)
            fprintf(stderr, "%s: cannot load the configuration\n", prog);
        recd_conf_errors_free(&errs);
        return 1;
    }
    recd_conf_errors_free(&errs);
    int n = snprintf(loc->dir, sizeof loc->dir, "%s/events", c->data_dir);
    if (loc->conf_opt)
        snprintf(loc->origin, sizeof loc->origin, "data_dir of %s", loc->conf_opt);
    else
        snprintf(loc->origin, sizeof loc->origin,
                 "data_dir of the built-in configuration; give --dir DIR or -c FILE");
    recd_conf_free(c);
    if (n >= (int)sizeof loc->dir) {
        fprintf(stderr, "%s: data_dir too long\n", prog);
        return 1;
    }
    return 0;
}

/* Segment files of dir (sorted start offsets and sizes), for naming the
 * file and byte of a log offset in messages. Best effort: empty on error. */
typedef struct segs {
    uint64_t *base, *size;
    size_t n;
} segs_t;

static int u64cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void segs_load(const char *dir, segs_t *s)
{
    memset(s, 0, sizeof *s);
    DIR *d = opendir(dir);
    if (!d)
        return;
    size_t cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        const char *nm = e->d_name;
        if (strlen(nm) != 24 || strcmp(nm + 20, ".seg") != 0 || strspn(nm, "0123456789") != 20)
            continue;
        if (s->n == cap) {
            size_t nc = cap ? cap * 2 : 16;
            uint64_t *nb = realloc(s->base, nc * sizeof *nb);
            if (!nb)
                break;
            s->base = nb;
            cap = nc;
        }
        s->base[s->n++] = strtoull(nm, NULL, 10);
    }
    closedir(d);
    if (s->n)
        qsort(s->base, s->n, sizeof *s->base, u64cmp);
    s->size = calloc(s->n ? s->n : 1, sizeof *s->size);
    for (size_t i = 0; s->size && i < s->n; i++) {
        char path[PATH_MAX + 32];
        snprintf(path, sizeof path, "%s/%020" PRIu64 ".seg", dir, s->base[i]);
        FILE *f = fopen(path, "rb");
        if (f && fseek(f, 0, SEEK_END) == 0) {
            long sz = ftell(f);
            s->size[i] = sz > 0 ? (uint64_t)sz : 0;
        }
        if (f)
            fclose(f);
    }
}

static void segs_free(segs_t *s)
{
    free(s->base);
    free(s->size);
}

/* "00000000000000000420.seg byte 17" for a log offset. */
static const char *where(const segs_t *s, uint64_t off, char *buf, size_t cap)
{
    size_t i = s->n;
    while (i > 0 && s->base[i - 1] > off)
        i--;
    if (i == 0)
        snprintf(buf, cap, "segment unknown");
    else
        snprintf(buf, cap, "%020" PRIu64 ".seg byte %" PRIu64, s->base[i - 1],
                 off - s->base[i - 1]);
    return buf;
}

static void say_missing(const char *prog, const logloc_t *loc)
{
    fprintf(stderr, "%s: no event log at %s: no such directory (%s)\n", prog, loc->dir,
            loc->origin);
}

/* Parse the options every events subcommand shares; returns 1 when ch was
 * one of them, -1 (after printing) on a bad value. */
enum { O_DIR = 1000, O_SINCE, O_UNTIL, O_SKIP_CORRUPT, O_OFFSETS, O_JSON, O_HELP };

static int bad_option(const char *prog, int ch, int argc, char **argv, void (*usage)(FILE *))
{
    const char *arg = optind > 0 && optind <= argc ? argv[optind - 1] : "?";
    if (ch == ':')
        fprintf(stderr, "%s: option '%s' needs a value\n", prog, arg);
    else
        fprintf(stderr, "%s: unknown option '%s'\n", prog, arg);
    usage(stderr);
    return EXIT_USAGE;
}

static int check_loc(const char *prog, const logloc_t *loc, void (*usage)(FILE *))
{
    if (loc->dir_opt && loc->conf_opt) {
        fprintf(stderr, "%s: give either --dir or -c, not both\n", prog);
        usage(stderr);
        return EXIT_USAGE;
    }
    if ((loc->dir_opt && !*loc->dir_opt) || (loc->conf_opt && !*loc->conf_opt)) {
        fprintf(stderr, "%s: %s needs a non-empty path\n", prog, loc->dir_opt ? "--dir" : "-c");
        return EXIT_USAGE;
    }
    return 0;
}

#define LOC_HELP                                                                                   \
    "  --dir DIR          the log directory\n"                                                     \
    "  -c, --config FILE  recd's configuration file: the log is <data_dir>/events (the\n"          \
    "                     file is loaded and validated as recd does; a relative data_dir\n"        \
    "                     is taken from the current directory). Without --dir and -c:\n"           \
    "                     <data_dir>/events of the built-in configuration\n"

/* ---- events dump ----------------------------------------------------------------------------- */

static void dump_usage(FILE *f)
{
    fprintf(f, "usage: recdctl events dump [--dir DIR | -c FILE] [--since TS] [--until TS]\n"
               "                           [--skip-corrupt] [--offsets]\n"
               "\n"
               "Print every event of the log, oldest record first, as one JSON line: the\n"
               "payload exactly as stored (include/recd/evrec.h).\n"
               "\n" LOC_HELP "  --since TS         only events with ts >= TS\n"
               "  --until TS         only events with ts < TS\n"
               "                     TS: unix seconds, a UTC date (2026-11-28, midnight) or\n"
               "                     date and time (2026-11-28T06:00:00Z)\n"
               "  --offsets          put \"offset\" (the record's log offset) first in each line\n"
               "  --skip-corrupt     skip damaged regions of the log (counted on stderr) instead\n"
               "                     of stopping at the first one\n"
               "  --help             print this help and exit\n"
               "\n"
               "A record whose payload does not decode is not printed; it is reported on\n"
               "stderr with its log offset, segment file and byte. A torn tail (an append cut\n"
               "short by a crash, or one in progress) is noted on stderr and is not an error.\n"
               "Exit status: 0 every record printed, 1 undecodable records, damage (without\n"
               "--skip-corrupt), no log or an unreadable one, 2 bad usage.\n");
}

typedef struct dump_ctx {
    const char *prog;
    const segs_t *segs;
    int has_since, has_until, offsets;
    int64_t since, until;
    uint64_t printed, filtered, undecodable;
    int out_error;
} dump_ctx_t;

static int dump_cb(void *vctx, uint64_t offset, const void *payload, uint32_t len)
{
    dump_ctx_t *d = vctx;
    recd_evrec_t ev;
    json_t *hold;
    recd_err_t err = {0};
    if (recd_evrec_decode(payload, len, &ev, &hold, &err) != 0) {
        char w[96];
        d->undecodable++;
        fprintf(stderr, "%s: undecodable record at log offset %" PRIu64 " (%s): %s; not printed\n",
                d->prog, offset, where(d->segs, offset, w, sizeof w), err.msg);
        return 0;
    }
    if ((d->has_since && ev.ts < d->since) || (d->has_until && ev.ts >= d->until)) {
        d->filtered++;
        json_decref(hold);
        return 0;
    }
    /* one line per record: a payload with a line break in it (not one recd
     * writes) is re-rendered compactly */
    const char *text = payload;
    size_t n = len;
    char *re = NULL;
    if (memchr(payload, '\n', len) || memchr(payload, '\r', len)) {
        re = json_dumps(hold, JSON_COMPACT | JSON_PRESERVE_ORDER);
        if (re) {
            text = re;
            n = strlen(re);
        }
    }
    json_decref(hold);
    if (d->offsets) {
        /* splice "offset" in as the first key of the object */
        size_t p = strspn(text, " \t\r\n") + 1; /* past '{' */
        while (p < n && strchr(" \t\r\n", text[p]))
            p++;
        printf("{\"offset\":%" PRIu64 "%s", offset, p < n && text[p] == '}' ? "" : ",");
        fwrite(text + p, 1, n - p, stdout);
    } else {
        fwrite(text, 1, n, stdout);
    }
    putchar('\n');
    free(re);
    d->printed++;
    if (ferror(stdout)) {
        d->out_error = 1;
        return 1;
    }
    return 0;
}

static int cmd_events_dump(int argc, char **argv)
{
    const char *prog = "recdctl events dump";
    static const struct option opts[] = {
        {"dir", required_argument, NULL, O_DIR},
        {"config", required_argument, NULL, 'c'},
        {"since", required_argument, NULL, O_SINCE},
        {"until", required_argument, NULL, O_UNTIL},
        {"skip-corrupt", no_argument, NULL, O_SKIP_CORRUPT},
        {"offsets", no_argument, NULL, O_OFFSETS},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    logloc_t loc;
    memset(&loc, 0, sizeof loc);
    dump_ctx_t d;
    memset(&d, 0, sizeof d);
    d.prog = prog;
    int skip = 0, ch;
    optind = 1;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, ":c:", opts, NULL)) != -1) {
        switch (ch) {
        case O_DIR: loc.dir_opt = optarg; break;
        case 'c': loc.conf_opt = optarg; break;
        case O_SINCE:
        case O_UNTIL: {
            int64_t t;
            if (parse_ts(optarg, &t) != 0) {
                fprintf(stderr,
                        "%s: %s: '%s' is not unix seconds, a UTC date (2026-11-28) or a UTC "
                        "date and time (2026-11-28T06:00:00Z)\n",
                        prog, ch == O_SINCE ? "--since" : "--until", optarg);
                return EXIT_USAGE;
            }
            if (ch == O_SINCE) {
                d.has_since = 1;
                d.since = t;
            } else {
                d.has_until = 1;
                d.until = t;
            }
            break;
        }
        case O_SKIP_CORRUPT: skip = 1; break;
        case O_OFFSETS: d.offsets = 1; break;
        case O_HELP: dump_usage(stdout); return 0;
        default: return bad_option(prog, ch, argc, argv, dump_usage);
        }
    }
    if (optind < argc) {
        fprintf(stderr, "%s: unexpected argument '%s'\n", prog, argv[optind]);
        dump_usage(stderr);
        return EXIT_USAGE;
    }
    int rc = check_loc(prog, &loc, dump_usage);
    if (rc)
        return rc;
    if (d.has_since && d.has_until && d.since >= d.until) {
        fprintf(stderr, "%s: --since must be before --until (the range is empty)\n", prog);
        return EXIT_USAGE;
    }
    if ((rc = resolve_dir(prog, &loc)) != 0)
        return rc;

    segs_t segs;
    segs_load(loc.dir, &segs);
    d.segs = &segs;
    recd_evlog_iter_stats_t st;
    recd_err_t err = {0};
    rc = recd_evlog_iterate(loc.dir, 0, 0, skip, dump_cb, &d, &st, &err);
    segs_free(&segs);
    if (fflush(stdout) != 0 || d.out_error) {
        fprintf(stderr, "%s: writing the output: %s\n", prog, strerror(errno));
        return 1;
    }
    if (rc == RECD_ENOENT) {
        say_missing(prog, &loc);
        return 1;
    }
    if (rc != 0) {
        fprintf(stderr, "%s: %s\n", prog, err.msg);
        if (rc == RECD_EIO && !skip)
            fprintf(stderr,
                    "%s: stopped after %" PRIu64 " records; --skip-corrupt skips damaged "
                    "regions, `recdctl events verify` describes the log\n",
                    prog, d.printed + d.filtered + d.undecodable);
        return 1;
    }
    if (st.corrupt_regions)
        fprintf(stderr, "%s: skipped %" PRIu64 " damaged region%s (%" PRIu64 " bytes)\n", prog,
                st.corrupt_regions, plural(st.corrupt_regions), st.corrupt_bytes);
    if (st.tail_bytes)
        fprintf(stderr,
                "%s: note: the last segment ends in a torn tail of %" PRIu64
                " bytes (an append cut short by a crash, or one in progress); not an error\n",
                prog, st.tail_bytes);
    if (d.undecodable) {
        fprintf(stderr,
                "%s: %" PRIu64 " of %" PRIu64 " records did not decode and were not printed\n",
                prog, d.undecodable, st.records);
        return 1;
    }
    return 0;
}

/* ---- events verify --------------------------------------------------------------------------- */

static void verify_usage(FILE *f)
{
    fprintf(f, "usage: recdctl events verify [--dir DIR | -c FILE] [--json]\n"
               "\n"
               "Check every record of the log: its CRC32C framing (as recd_evlog_verify does)\n"
               "and that its payload decodes as an event. Prints a summary: segments, records,\n"
               "bytes, the torn tail, the oldest and newest event time, events per type.\n"
               "\n" LOC_HELP "  --json             print the summary as one JSON object instead\n"
               "  --help             print this help and exit\n"
               "\n"
               "A torn tail at the end of the last segment is reported but is not damage: it\n"
               "is an append cut short by a crash (recd cuts it off when it next opens the\n"
               "log) or one being written right now. Damage (a bad record with valid ones\n"
               "after it, a bad end of an earlier segment, a gap between segments) is named\n"
               "by file and byte offset; the summary then counts what --skip-corrupt readers\n"
               "would skip. Exit status: 0 clean, 1 damage, undecodable payloads, no log or\n"
               "an unreadable one, 2 bad usage.\n");
}

typedef struct verify_acc {
    const char *prog;
    const segs_t *segs;
    int quiet; /* second pass: report only records past report_after */
    uint64_t report_after;
    uint64_t last_off; /* log offset of the last record seen */
    uint64_t reported;
    uint64_t events; /* decoded */
    uint64_t by_type[RECD_EV_NTYPES];
    int64_t min_ts, max_ts;
    uint64_t undecodable;
    uint64_t bad_off; /* first undecodable record */
    char bad_msg[512];
} verify_acc_t;

static int verify_cb(void *vctx, uint64_t offset, const void *payload, uint32_t len)
{
    verify_acc_t *a = vctx;
    recd_evrec_t ev;
    json_t *hold;
    recd_err_t err = {0};
    if (recd_evrec_decode(payload, len, &ev, &hold, &err) != 0) {
        if (a->undecodable == 0) {
            a->bad_off = offset;
            snprintf(a->bad_msg, sizeof a->bad_msg, "%s", err.msg);
        }
        if ((!a->quiet || offset > a->report_after) && a->reported < REPORT_MAX) {
            char w[96];
            fprintf(stderr, "%s: undecodable record at log offset %" PRIu64 " (%s): %s\n", a->prog,
                    offset, where(a->segs, offset, w, sizeof w), err.msg);
            a->reported++;
        }
        a->undecodable++;
        a->last_off = offset;
        return 0;
    }
    if (a->events == 0 || ev.ts < a->min_ts)
        a->min_ts = ev.ts;
    if (a->events == 0 || ev.ts > a->max_ts)
        a->max_ts = ev.ts;
    a->events++;
    a->by_type[ev.type]++;
    a->last_off = offset;
    json_decref(hold);
    return 0;
}

/* Type names in the order of the dataset's canonical list. */
static const recd_ev_type_t TYPE_ORDER[RECD_EV_NTYPES] = {
    RECD_EV_IMPRESSION, RECD_EV_CLICK, RECD_EV_WATCH, RECD_EV_RATING, RECD_EV_PURCHASE};

static int cmd_events_verify(int argc, char **argv)
{
    const char *prog = "recdctl events verify";
    static const struct option opts[] = {
        {"dir", required_argument, NULL, O_DIR},
        {"config", required_argument, NULL, 'c'},
        {"json", no_argument, NULL, O_JSON},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    logloc_t loc;
    memset(&loc, 0, sizeof loc);
    int as_json = 0, ch;
    optind = 1;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, ":c:", opts, NULL)) != -1) {
        switch (ch) {
        case O_DIR: loc.dir_opt = optarg; break;
        case 'c': loc.conf_opt = optarg; break;
        case O_JSON: as_json = 1; break;
        case O_HELP: verify_usage(stdout); return 0;
        default: return bad_option(prog, ch, argc, argv, verify_usage);
        }
    }
    if (optind < argc) {
        fprintf(stderr, "%s: unexpected argument '%s'\n", prog, argv[optind]);
        verify_usage(stderr);
        return EXIT_USAGE;
    }
    int rc = check_loc(prog, &loc, verify_usage);
    if (rc)
        return rc;
    if ((rc = resolve_dir(prog, &loc)) != 0)
        return rc;

    segs_t segs;
    segs_load(loc.dir, &segs);
    verify_acc_t acc;
    memset(&acc, 0, sizeof acc);
    acc.prog = prog;
    acc.segs = &segs;
    recd_evlog_iter_stats_t st;
    recd_err_t err = {0};
    /* one pass does recd_evlog_verify's checks (every CRC, no skipping) and
     * decodes each payload on the way */
    rc = recd_evlog_iterate(loc.dir, 0, 0, 0, verify_cb, &acc, &st, &err);
    if (rc == RECD_ENOENT) {
        say_missing(prog, &loc);
        segs_free(&segs);
        return 1;
    }
    char damage[sizeof err.msg] = "";
    if (rc == RECD_EIO) {
        /* damaged: say where, then describe what a skipping reader gets */
        snprintf(damage, sizeof damage, "%s", err.msg);
        fprintf(stderr, "%s: %s\n", prog, damage);
        verify_acc_t again;
        memset(&again, 0, sizeof again);
        again.prog = prog;
        again.segs = &segs;
        again.quiet = acc.events + acc.undecodable > 0; /* those before the damage: reported */
        again.report_after = acc.last_off;
        again.reported = acc.reported;
        rc = recd_evlog_iterate(loc.dir, 0, 0, 1, verify_cb, &again, &st, &err);
        acc = again;
    }
    if (rc != 0) {
        fprintf(stderr, "%s: %s\n", prog, err.msg);
        segs_free(&segs);
        return 1;
    }
    int ok = !damage[0] && acc.undecodable == 0;
    char t0[32], t1[32], w[96];
    const char *first_seg = NULL;
    char fs[32] = "", ls[32] = "";
    if (segs.n) {
        snprintf(fs, sizeof fs, "%020" PRIu64 ".seg", segs.base[0]);
        snprintf(ls, sizeof ls, "%020" PRIu64 ".seg", segs.base[segs.n - 1]);
        first_seg = fs;
    }
    uint64_t tail_at = segs.n && segs.size[segs.n - 1] >= st.tail_bytes
                           ? segs.size[segs.n - 1] - st.tail_bytes
                           : 0;
    if (as_json) {
        json_t *o = json_object(), *bt = json_object();
        json_object_set_new(o, "dir", json_string(loc.dir));
        json_object_set_new(o, "ok", json_boolean(ok));
        json_object_set_new(o, "segments", json_integer((json_int_t)st.segments));
        json_object_set_new(o, "first_segment", first_seg ? json_string(fs) : json_null());
        json_object_set_new(o, "last_segment", first_seg ? json_string(ls) : json_null());
        json_object_set_new(o, "records", json_integer((json_int_t)st.records));
        json_object_set_new(o, "events", json_integer((json_int_t)acc.events));
        json_object_set_new(o, "bytes", json_integer((json_int_t)st.bytes));
        json_object_set_new(o, "tail_bytes", json_integer((json_int_t)st.tail_bytes));
        json_object_set_new(
            o, "tail",
            st.tail_bytes && first_seg
                ? json_pack("{s:s, s:I}", "segment", ls, "byte_offset", (json_int_t)tail_at)
                : json_null());
        json_object_set_new(o, "first_ts", acc.events ? json_integer(acc.min_ts) : json_null());
        json_object_set_new(o, "last_ts", acc.events ? json_integer(acc.max_ts) : json_null());
        json_object_set_new(o, "first_time",
                            acc.events ? json_string(iso(acc.min_ts, t0, sizeof t0)) : json_null());
        json_object_set_new(o, "last_time",
                            acc.events ? json_string(iso(acc.max_ts, t1, sizeof t1)) : json_null());
        for (size_t k = 0; k < RECD_EV_NTYPES; k++)
            json_object_set_new(bt, recd_ev_type_name(TYPE_ORDER[k]),
                                json_integer((json_int_t)acc.by_type[TYPE_ORDER[k]]));
        json_object_set_new(o, "by_type", bt);
        json_object_set_new(o, "undecodable", json_integer((json_int_t)acc.undecodable));
        json_object_set_new(o, "first_undecodable",
                            acc.undecodable
                                ? json_pack("{s:I, s:s, s:s}", "offset", (json_int_t)acc.bad_off,
                                            "where", where(&segs, acc.bad_off, w, sizeof w),
                                            "error", acc.bad_msg)
                                : json_null());
        json_object_set_new(o, "damage",
                            damage[0] ? json_pack("{s:s, s:I, s:I}", "error", damage,
                                                  "corrupt_regions", (json_int_t)st.corrupt_regions,
                                                  "corrupt_bytes", (json_int_t)st.corrupt_bytes)
                                      : json_null());
        char *text = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        json_decref(o);
        if (!text) {
            fprintf(stderr, "%s: out of memory\n", prog);
            segs_free(&segs);
            return 1;
        }
        printf("%s\n", text);
        free(text);
    } else {
        printf("event log      %s\n", loc.dir);
        if (st.segments)
            printf("segments       %" PRIu64 " (%s .. %s)\n", st.segments, fs, ls);
        else
            printf("segments       0 (no segment files: an empty log, or not a log directory)\n");
        printf("records        %" PRIu64 "\n", st.records);
        printf("bytes          %" PRIu64 "\n", st.bytes);
        if (st.tail_bytes)
            printf("torn tail      %" PRIu64 " bytes at byte %" PRIu64 " of %s: an append cut\n"
                   "               short by a crash (recd cuts it off when it next opens the\n"
                   "               log) or one in progress; not an error\n",
                   st.tail_bytes, tail_at, ls);
        else
            printf("torn tail      none\n");
        if (acc.events)
            printf("events         %s .. %s (ts %" PRId64 " .. %" PRId64 ")\n",
                   iso(acc.min_ts, t0, sizeof t0), iso(acc.max_ts, t1, sizeof t1), acc.min_ts,
                   acc.max_ts);
        else
            printf("events         none\n");
        printf("by type       ");
        for (size_t k = 0; k < RECD_EV_NTYPES; k++)
            printf(" %s %" PRIu64 "%s", recd_ev_type_name(TYPE_ORDER[k]),
                   acc.by_type[TYPE_ORDER[k]], k + 1 < RECD_EV_NTYPES ? "," : "\n");
        if (acc.undecodable)
            printf("undecodable    %" PRIu64 " (first at log offset %" PRIu64 ", %s: %s)\n",
                   acc.undecodable, acc.bad_off, where(&segs, acc.bad_off, w, sizeof w),
                   acc.bad_msg);
        else
            printf("undecodable    0\n");
        if (damage[0])
            printf("damage         %s\n"
                   "               a reader with --skip-corrupt skips %" PRIu64
                   " damaged region%s (%" PRIu64 " bytes)\n",
                   damage, st.corrupt_regions, plural(st.corrupt_regions), st.corrupt_bytes);
        else
            printf("damage         none\n");
        printf("result         %s\n", ok ? "OK" : "FAILED");
    }
    segs_free(&segs);
    if (fflush(stdout) != 0) {
        fprintf(stderr, "%s: writing the output: %s\n", prog, strerror(errno));
        return 1;
    }
    return ok ? 0 : 1;
}

/* ---- events ---------------------------------------------------------------------------------- */

static const command_t EVENTS_COMMANDS[] = {
    {"dump", "print every event as one JSON line (filters: --since, --until)", cmd_events_dump},
    {"verify", "check every CRC and payload; print a summary", cmd_events_verify},
};
#define NEVENTS_COMMANDS (sizeof EVENTS_COMMANDS / sizeof EVENTS_COMMANDS[0])

static void events_usage(FILE *f)
{
    fprintf(f, "usage: recdctl events <subcommand> [options]\n"
               "\n"
               "Read recd's durable event log: the segment files under <data_dir>/events. The\n"
               "log is read from its directory without taking its lock, so this works on a\n"
               "stopped log and beside a running recd alike.\n"
               "\n"
               "subcommands:\n");
    list_commands(f, EVENTS_COMMANDS, NEVENTS_COMMANDS);
    fprintf(f, "\nWhere the log is (every subcommand):\n" LOC_HELP
               "\n`recdctl events <subcommand> --help` describes its options.\n");
}

static int cmd_events(int argc, char **argv)
{
    return dispatch("recdctl events", EVENTS_COMMANDS, NEVENTS_COMMANDS, events_usage, argc, argv);
}

/* ---- main ------------------------------------------------------------------------------------ */

static const command_t COMMANDS[] = {
    {"events", "the event log on disk: dump, verify", cmd_events},
};
#define NCOMMANDS (sizeof COMMANDS / sizeof COMMANDS[0])

static void usage(FILE *f)
{
    fprintf(f, "usage: recdctl <command> [<subcommand>] [options]\n"
               "       recdctl --help | --version\n"
               "\n"
               "Operator tool for recd.\n"
               "\n"
               "commands:\n");
    list_commands(f, COMMANDS, NCOMMANDS);
    fprintf(f, "\n`recdctl <command> --help` describes a command.\n"
               "Exit status: 0 success, 1 failure, 2 bad usage.\n");
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "--version") == 0) {
        printf("recdctl %s (git %s, %s)\n", RECD_VERSION, recd_build_git(), recd_build_compiler());
        return 0;
    }
    return dispatch("recdctl", COMMANDS, NCOMMANDS, usage, argc, argv);
}
