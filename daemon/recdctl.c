/* recdctl: the operator's command-line tool for recd. One program, a table
 * of commands (`recdctl <command> [<subcommand>] [options]`), each parsing
 * its own options and returning the process exit status: 0 success, 1
 * failure, 2 bad usage, 3 recd unreachable or the admin token refused.
 *
 * Admin commands (models, load, pin, unpin, rollback, rescan, train,
 * experiments, reload, config) are a small blocking HTTP/1.1 client of
 * the admin listener (DESIGN §2); see "the admin API client" below.
 *
 * `recdctl events dump|verify` read the durable event log
 * (include/recd/events.h, payloads in include/recd/evrec.h) straight from
 * its directory, without the log's lock, so they work on a stopped log and
 * beside a running recd alike. */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

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

/* ---- the admin API client ------------------------------------------------------------------ */

/* Commands that talk to a running recd through its admin listener (DESIGN
 * §2) with a small blocking HTTP/1.1 client: one connection per command,
 * `Connection: close`, a 2 s connect timeout and a response timeout
 * (--timeout, 60 s by default: a load can take a while). Exit status: 0
 * success, 1 recd refused the command (its error code, message and field
 * are printed), 2 bad usage or unusable local input, 3 recd could not be
 * reached, did not answer in time, or refused the token. */

#define EXIT_UNREACHABLE 3
#define CONNECT_TIMEOUT_MS 2000
#define DEFAULT_TIMEOUT_S 60
#define MAX_RESPONSE (64u << 20)

typedef struct admin_opts {
    const char *conf;       /* -c */
    const char *admin;      /* --admin HOST:PORT */
    const char *token_file; /* --token-file */
    int json;               /* --json */
    int timeout_s;          /* --timeout */
    int no_pin;             /* load --no-pin */
} admin_opts_t;

typedef struct admin_target {
    char host[256];
    char port[8];
    char where[PATH_MAX + 96]; /* "127.0.0.1:8081 (admin.listen of FILE)" */
    char token[512];
    char token_origin[PATH_MAX + 32]; /* "" when no token */
} admin_target_t;

typedef struct http_resp {
    int status;
    char *body; /* NUL-terminated */
    size_t len;
} http_resp_t;

enum { O_ADMIN = 1100, O_TOKEN_FILE, O_AJSON, O_TIMEOUT, O_NO_PIN, O_AHELP };

#define ADMIN_HELP                                                                                 \
    "  -c, --config FILE  recd's configuration file: the admin address is its\n"                   \
    "                     admin.listen and the token its admin.token or admin.token_file\n"        \
    "  --admin HOST:PORT  the admin listener (instead of admin.listen; [v6]:port for IPv6)\n"      \
    "  --token-file FILE  file whose first line is the admin bearer token\n"                       \
    "                     (else $RECD_ADMIN_TOKEN, else the configuration's token)\n"              \
    "  --json             print recd's JSON answer as it is\n"                                     \
    "  --timeout SECONDS  how long to wait for the answer (default 60)\n"                          \
    "  --help             print this help and exit\n"                                              \
    "Without -c and --admin: 127.0.0.1:8081, the built-in default.\n"                              \
    "Exit status: 0 done, 1 recd refused (its error is printed), 2 bad usage,\n"                   \
    "3 recd unreachable, no answer in time, or the token missing or wrong.\n"

/* Split "host:port", "[v6]:port" or ":port" (host "" then). 0 or -1. */
static int split_hostport(const char *s, char *host, size_t hcap, char *port, size_t pcap)
{
    const char *p;
    size_t hl;
    const char *h = s;
    if (s[0] == '[') {
        const char *end = strchr(s, ']');
        if (!end || end[1] != ':')
            return -1;
        h = s + 1;
        hl = (size_t)(end - h);
        p = end + 2;
    } else {
        const char *colon = strrchr(s, ':');
        if (!colon)
            return -1;
        hl = (size_t)(colon - s);
        if (memchr(s, ':', hl))
            return -1; /* IPv6 without brackets */
        p = colon + 1;
    }
    size_t pl = strlen(p);
    if (hl >= hcap || pl == 0 || pl >= pcap || strspn(p, "0123456789") != pl ||
        strtol(p, NULL, 10) > 65535)
        return -1;
    memcpy(host, h, hl);
    host[hl] = '\0';
    memcpy(port, p, pl + 1);
    return 0;
}

/* First line of path into out (without the line end). 0, or -1 with a
 * reason in why. */
static int read_first_line(const char *path, char *out, size_t cap, char *why, size_t wcap)
{
    FILE *f = fopen(path, "re");
    if (!f) {
        snprintf(why, wcap, "cannot open '%s': %s", path, strerror(errno));
        return -1;
    }
    if (!fgets(out, (int)cap, f))
        out[0] = '\0';
    fclose(f);
    out[strcspn(out, "\r\n")] = '\0';
    if (!*out) {
        snprintf(why, wcap, "'%s' is empty (the token is its first line)", path);
        return -1;
    }
    return 0;
}

/* Where the admin listener is and which token to send. Prints errors;
 * returns 0 or the exit status. */
static int resolve_target(const char *prog, const admin_opts_t *o, admin_target_t *t)
{
    memset(t, 0, sizeof *t);
    char why[PATH_MAX + 128];
    recd_conf_t *c = NULL;
    /* the configuration is needed for the address without --admin, and
     * for the token when neither --token-file nor $RECD_ADMIN_TOKEN gives one */
    const char *env = getenv("RECD_ADMIN_TOKEN");
    int need_conf = !o->admin || (!o->token_file && !(env && *env) && o->conf);
    if (need_conf) {
        recd_conf_errors_t errs = {0};
        c = recd_conf_load(o->conf, NULL, 0, &errs);
        if (!c) {
            for (size_t i = 0; i < errs.n; i++)
                fprintf(stderr, "%s: config error: %s\n", prog, errs.lines[i]);
            if (errs.n == 0)
                fprintf(stderr, "%s: cannot load the configuration\n", prog);
            recd_conf_errors_free(&errs);
            return EXIT_USAGE;
        }
        recd_conf_errors_free(&errs);
    }
    const char *cname = o->conf ? o->conf : "the built-in configuration";
    int rc = 0;
    if (o->admin) {
        if (split_hostport(o->admin, t->host, sizeof t->host, t->port, sizeof t->port) < 0) {
            fprintf(stderr, "%s: --admin: '%s' is not HOST:PORT (or [IPv6]:PORT)\n", prog,
                    o->admin);
            rc = EXIT_USAGE;
            goto out;
        }
        snprintf(t->where, sizeof t->where, "%s (--admin)", o->admin);
    } else {
        if (!*c->admin_listen) {
            fprintf(stderr,
                    "%s: the admin listener is disabled (admin.listen is empty in %s); "
                    "give --admin HOST:PORT\n",
                    prog, cname);
            rc = EXIT_UNREACHABLE;
            goto out;
        }
        if (split_hostport(c->admin_listen, t->host, sizeof t->host, t->port, sizeof t->port) < 0) {
            fprintf(stderr, "%s: admin.listen '%s' of %s is not HOST:PORT\n", prog, c->admin_listen,
                    cname);
            rc = EXIT_USAGE;
            goto out;
        }
        if (strcmp(t->port, "0") == 0) {
            fprintf(stderr,
                    "%s: admin.listen of %s has port 0 (recd picks one at start and logs "
                    "it); give --admin HOST:PORT\n",
                    prog, cname);
            rc = EXIT_USAGE;
            goto out;
        }
        snprintf(t->where, sizeof t->where, "%s (admin.listen of %s)", c->admin_listen, cname);
    }
    /* a wildcard address is reached on loopback */
    if (!*t->host || strcmp(t->host, "0.0.0.0") == 0)
        snprintf(t->host, sizeof t->host, "127.0.0.1");
    else if (strcmp(t->host, "::") == 0)
        snprintf(t->host, sizeof t->host, "::1");

    if (o->token_file) {
        if (read_first_line(o->token_file, t->token, sizeof t->token, why, sizeof why) < 0) {
            fprintf(stderr, "%s: --token-file: %s\n", prog, why);
            rc = EXIT_USAGE;
            goto out;
        }
        snprintf(t->token_origin, sizeof t->token_origin, "--token-file %s", o->token_file);
    } else if (env && *env) {
        snprintf(t->token, sizeof t->token, "%s", env);
        snprintf(t->token_origin, sizeof t->token_origin, "$RECD_ADMIN_TOKEN");
    } else if (c && *c->admin_token) {
        snprintf(t->token, sizeof t->token, "%s", c->admin_token);
        snprintf(t->token_origin, sizeof t->token_origin, "admin.token of %s", cname);
    } else if (c && *c->admin_token_file) {
        if (read_first_line(c->admin_token_file, t->token, sizeof t->token, why, sizeof why) < 0) {
            fprintf(stderr, "%s: admin.token_file of %s: %s\n", prog, cname, why);
            rc = EXIT_USAGE;
            goto out;
        }
        snprintf(t->token_origin, sizeof t->token_origin, "admin.token_file of %s", cname);
    }
out:
    recd_conf_free(c);
    return rc;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait for fd to be ready for `events` until deadline_ms. 1 ready, 0
 * timed out, -1 error (errno). */
static int wait_fd(int fd, short events, int64_t deadline_ms)
{
    for (;;) {
        int64_t left = deadline_ms - now_ms();
        if (left <= 0)
            return 0;
        struct pollfd p = {fd, events, 0};
        int n = poll(&p, 1, left > INT_MAX ? INT_MAX : (int)left);
        if (n > 0)
            return 1;
        if (n == 0)
            return 0;
        if (errno != EINTR)
            return -1;
    }
}

/* Connect to t within CONNECT_TIMEOUT_MS; returns a blocking-mode-free
 * (non-blocking) socket, or -1 with a reason in why. */
static int admin_connect(const admin_target_t *t, char *why, size_t wcap)
{
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int g = getaddrinfo(t->host, t->port, &hints, &res);
    if (g != 0) {
        snprintf(why, wcap, "cannot resolve '%s': %s", t->host, gai_strerror(g));
        return -1;
    }
    int64_t deadline = now_ms() + CONNECT_TIMEOUT_MS;
    int fd = -1;
    snprintf(why, wcap, "no address to connect to");
    for (struct addrinfo *a = res; a; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) {
            snprintf(why, wcap, "socket: %s", strerror(errno));
            continue;
        }
        int err = 0;
        if (connect(fd, a->ai_addr, a->ai_addrlen) < 0) {
            if (errno != EINPROGRESS) {
                err = errno;
            } else {
                int w = wait_fd(fd, POLLOUT, deadline);
                socklen_t el = sizeof err;
                if (w == 0)
                    err = ETIMEDOUT;
                else if (w < 0)
                    err = errno;
                else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0)
                    err = errno;
            }
        }
        if (err == 0)
            break;
        snprintf(why, wcap, "%s",
                 err == ETIMEDOUT ? "connection timed out after 2 s" : strerror(err));
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}

/* Append path-safe percent-encoding of s to out. */
static void pct_encode(const char *s, char *out, size_t cap)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = 0;
    for (; *s && n + 4 < cap; s++) {
        unsigned char ch = (unsigned char)*s;
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
            ch == '-' || ch == '_' || ch == '.' || ch == '~') {
            out[n++] = (char)ch;
        } else {
            out[n++] = '%';
            out[n++] = hex[ch >> 4];
            out[n++] = hex[ch & 15];
        }
    }
    out[n] = '\0';
}

/* Decode a chunked body in place; returns the decoded length or -1. */
static long dechunk(char *b, size_t len)
{
    size_t in = 0, out = 0;
    for (;;) {
        char *end;
        if (in >= len)
            return -1;
        unsigned long sz = strtoul(b + in, &end, 16);
        char *eol = memchr(b + in, '\n', len - in);
        if (!eol || end == b + in)
            return -1;
        in = (size_t)(eol - b) + 1;
        if (sz == 0)
            return (long)out;
        if (sz > len - in)
            return -1;
        memmove(b + out, b + in, sz);
        out += sz;
        in += sz;
        if (in < len && b[in] == '\r')
            in++;
        if (in < len && b[in] == '\n')
            in++;
    }
}

/* Find header name (case-insensitive) in head[0..hlen); value copied. */
static int head_value(const char *head, size_t hlen, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    const char *p = head, *end = head + hlen;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol)
            eol = end;
        if ((size_t)(eol - p) > nl && strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1;
            while (v < eol && (*v == ' ' || *v == '\t'))
                v++;
            size_t vl = (size_t)(eol - v);
            while (vl && (v[vl - 1] == '\r' || v[vl - 1] == ' '))
                vl--;
            if (vl >= cap)
                vl = cap - 1;
            memcpy(out, v, vl);
            out[vl] = '\0';
            return 1;
        }
        p = eol + 1;
    }
    return 0;
}

/* One request to the admin listener. Returns 0 and fills *resp, or the
 * exit status after printing why (cannot connect, timed out, ...). */
static int admin_call(const char *prog, const admin_target_t *t, const admin_opts_t *o,
                      const char *method, const char *path, const char *body, http_resp_t *resp)
{
    memset(resp, 0, sizeof *resp);
    char why[512];
    int fd = admin_connect(t, why, sizeof why);
    if (fd < 0) {
        fprintf(stderr, "%s: cannot connect to recd's admin listener at %s: %s\n", prog, t->where,
                why);
        return EXIT_UNREACHABLE;
    }
    why[0] = '\0';
    int timeout_s = o->timeout_s > 0 ? o->timeout_s : DEFAULT_TIMEOUT_S;
    int64_t deadline = now_ms() + (int64_t)timeout_s * 1000;
    size_t blen = body ? strlen(body) : 0;
    int v6 = strchr(t->host, ':') != NULL;
    size_t cap = 1024 + strlen(path) + strlen(t->token) + blen;
    char *req = malloc(cap);
    char *buf = NULL;
    int rc = EXIT_UNREACHABLE;
    if (!req) {
        fprintf(stderr, "%s: out of memory\n", prog);
        rc = 1;
        goto out;
    }
    int n = snprintf(req, cap,
                     "%s %s HTTP/1.1\r\nHost: %s%s%s:%s\r\nUser-Agent: recdctl/%s\r\n"
                     "Accept: application/json\r\nConnection: close\r\n",
                     method, path, v6 ? "[" : "", t->host, v6 ? "]" : "", t->port, RECD_VERSION);
    if (*t->token)
        n += snprintf(req + n, cap - (size_t)n, "Authorization: Bearer %s\r\n", t->token);
    if (body)
        n += snprintf(req + n, cap - (size_t)n, "Content-Type: application/json\r\n");
    if (body || strcmp(method, "GET") != 0)
        n += snprintf(req + n, cap - (size_t)n, "Content-Length: %zu\r\n", blen);
    n += snprintf(req + n, cap - (size_t)n, "\r\n");
    if (blen)
        memcpy(req + n, body, blen);
    size_t total = (size_t)n + blen, sent = 0;
    while (sent < total) {
        ssize_t w = send(fd, req + sent, total - sent, MSG_NOSIGNAL);
        if (w > 0) {
            sent += (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            int r = wait_fd(fd, POLLOUT, deadline);
            if (r > 0)
                continue;
            snprintf(why, sizeof why, "%s", r == 0 ? "timed out sending" : strerror(errno));
        } else {
            snprintf(why, sizeof why, "%s", strerror(errno));
        }
        /* recd may answer (and close) before reading a large body: read on */
        break;
    }

    size_t bcap = 65536, blen_in = 0;
    buf = malloc(bcap + 1);
    if (!buf) {
        fprintf(stderr, "%s: out of memory\n", prog);
        rc = 1;
        goto out;
    }
    size_t head_len = 0;
    long long clen = -1;
    int chunked = 0, timed_out = 0;
    for (;;) {
        if (head_len && clen >= 0 && blen_in >= head_len + (size_t)clen)
            break;
        if (blen_in == bcap) {
            if (bcap >= MAX_RESPONSE) {
                fprintf(stderr, "%s: the answer from %s is larger than %u MiB\n", prog, t->where,
                        MAX_RESPONSE >> 20);
                rc = 1;
                goto out;
            }
            char *nb = realloc(buf, bcap * 2 + 1);
            if (!nb) {
                fprintf(stderr, "%s: out of memory\n", prog);
                rc = 1;
                goto out;
            }
            buf = nb;
            bcap *= 2;
        }
        ssize_t r = recv(fd, buf + blen_in, bcap - blen_in, 0);
        if (r > 0) {
            blen_in += (size_t)r;
            buf[blen_in] = '\0';
            if (!head_len) {
                char *e = strstr(buf, "\r\n\r\n");
                if (e) {
                    char v[64];
                    head_len = (size_t)(e - buf) + 4;
                    if (head_value(buf, head_len, "Content-Length", v, sizeof v))
                        clen = strtoll(v, NULL, 10);
                    if (head_value(buf, head_len, "Transfer-Encoding", v, sizeof v) &&
                        strstr(v, "chunked"))
                        chunked = 1, clen = -1;
                }
            }
            continue;
        }
        if (r == 0)
            break;
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            int w = wait_fd(fd, POLLIN, deadline);
            if (w > 0)
                continue;
            if (w == 0)
                timed_out = 1;
            else
                snprintf(why, sizeof why, "%s", strerror(errno));
            break;
        }
        snprintf(why, sizeof why, "%s", strerror(errno));
        break;
    }
    if (!head_len) {
        if (timed_out)
            fprintf(stderr,
                    "%s: no answer from %s within %d s (the command may still complete in "
                    "recd; `recdctl models` shows the state; --timeout waits longer)\n",
                    prog, t->where, timeout_s);
        else
            fprintf(stderr, "%s: %s closed the connection without a complete answer%s%s\n", prog,
                    t->where, why[0] ? ": " : "", why);
        goto out;
    }
    int status = 0;
    if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1 || status < 100 || status > 599) {
        fprintf(stderr, "%s: %s did not answer HTTP (is it recd's admin listener?)\n", prog,
                t->where);
        goto out;
    }
    size_t have = blen_in - head_len;
    if (clen >= 0 && have < (size_t)clen) {
        fprintf(stderr, "%s: the answer from %s was cut short (%zu of %lld bytes)%s\n", prog,
                t->where, have, clen, timed_out ? ": timed out" : "");
        goto out;
    }
    if (clen >= 0)
        have = (size_t)clen;
    memmove(buf, buf + head_len, have);
    buf[have] = '\0';
    if (chunked) {
        long d = dechunk(buf, have);
        if (d < 0) {
            fprintf(stderr, "%s: the answer from %s has a malformed chunked body\n", prog,
                    t->where);
            goto out;
        }
        have = (size_t)d;
        buf[have] = '\0';
    }
    resp->status = status;
    resp->body = buf;
    resp->len = have;
    buf = NULL;
    rc = 0;
out:
    free(req);
    free(buf);
    close(fd);
    return rc;
}

/* Print the answer of a refused command; returns its exit status (1, or
 * 3 for 401). With --json the body also goes to stdout as it is. */
static int report_refusal(const char *prog, const admin_target_t *t, const admin_opts_t *o,
                          const http_resp_t *resp)
{
    if (o->json && resp->len)
        printf("%s\n", resp->body);
    if (resp->status == 401) {
        if (*t->token)
            fprintf(stderr,
                    "%s: unauthorized: recd at %s rejected the admin token (from %s): wrong "
                    "token\n",
                    prog, t->where, t->token_origin);
        else
            fprintf(stderr,
                    "%s: unauthorized: recd at %s requires an admin token and none was given "
                    "(--token-file FILE, $RECD_ADMIN_TOKEN, or -c FILE with admin.token or "
                    "admin.token_file)\n",
                    prog, t->where);
        return EXIT_UNREACHABLE;
    }
    json_t *j = json_loadb(resp->body, resp->len, 0, NULL);
    json_t *e = j ? json_object_get(j, "error") : NULL;
    const char *code = json_string_value(json_object_get(e, "code"));
    const char *msg = json_string_value(json_object_get(e, "message"));
    const char *field = json_string_value(json_object_get(e, "field"));
    if (code)
        fprintf(stderr, "%s: error %d %s: %s%s%s%s\n", prog, resp->status, code, msg ? msg : "",
                field ? " (field: " : "", field ? field : "", field ? ")" : "");
    else
        fprintf(stderr, "%s: recd answered %d: %.300s\n", prog, resp->status, resp->body);
    json_decref(j);
    return 1;
}

/* Common option parsing for admin commands. extra_no_pin: accept
 * --no-pin. Returns -1 to continue, else the exit status (help, bad
 * option). On -1, *first is the index of the first positional argument. */
static int admin_getopt(const char *prog, int argc, char **argv, admin_opts_t *o, int allow_no_pin,
                        void (*usage)(FILE *), int *first)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"admin", required_argument, NULL, O_ADMIN},
        {"token-file", required_argument, NULL, O_TOKEN_FILE},
        {"json", no_argument, NULL, O_AJSON},
        {"timeout", required_argument, NULL, O_TIMEOUT},
        {"no-pin", no_argument, NULL, O_NO_PIN},
        {"help", no_argument, NULL, O_AHELP},
        {NULL, 0, NULL, 0},
    };
    memset(o, 0, sizeof *o);
    o->timeout_s = DEFAULT_TIMEOUT_S;
    int ch;
    optind = 1;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, ":c:", opts, NULL)) != -1) {
        switch (ch) {
        case 'c': o->conf = optarg; break;
        case O_ADMIN: o->admin = optarg; break;
        case O_TOKEN_FILE: o->token_file = optarg; break;
        case O_AJSON: o->json = 1; break;
        case O_TIMEOUT: {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (!*optarg || *end || v < 1 || v > 86400) {
                fprintf(stderr, "%s: --timeout: '%s' is not a number of seconds (1..86400)\n", prog,
                        optarg);
                return EXIT_USAGE;
            }
            o->timeout_s = (int)v;
            break;
        }
        case O_NO_PIN:
            if (!allow_no_pin)
                return bad_option(prog, '?', argc, argv, usage);
            o->no_pin = 1;
            break;
        case O_AHELP: usage(stdout); return 0;
        default: return bad_option(prog, ch, argc, argv, usage);
        }
    }
    if ((o->conf && !*o->conf) || (o->admin && !*o->admin) || (o->token_file && !*o->token_file)) {
        fprintf(stderr, "%s: an option was given an empty value\n", prog);
        return EXIT_USAGE;
    }
    *first = optind;
    return -1;
}

/* Check the positional argument count: between lo and hi. */
static int want_args(const char *prog, int argc, int first, int lo, int hi, void (*usage)(FILE *))
{
    int n = argc - first;
    if (n < lo) {
        fprintf(stderr, "%s: missing argument\n", prog);
        usage(stderr);
        return EXIT_USAGE;
    }
    if (n > hi) {
        fprintf(stderr, "%s: unexpected argument\n", prog);
        usage(stderr);
        return EXIT_USAGE;
    }
    return 0;
}

/* Run one request and hand a 2xx JSON answer to show (unless --json);
 * returns the exit status. */
static int admin_run(const char *prog, const admin_opts_t *o, const char *method, const char *path,
                     const char *body, void (*show)(json_t *answer, void *ctx), void *ctx)
{
    admin_target_t t;
    int rc = resolve_target(prog, o, &t);
    if (rc)
        return rc;
    http_resp_t resp;
    rc = admin_call(prog, &t, o, method, path, body, &resp);
    if (rc == 0 && (resp.status < 200 || resp.status > 299)) {
        rc = report_refusal(prog, &t, o, &resp);
        free(resp.body);
    }
    memset(t.token, 0, sizeof t.token);
    if (rc)
        return rc;
    if (o->json) {
        printf("%s%s", resp.body, resp.len && resp.body[resp.len - 1] == '\n' ? "" : "\n");
    } else {
        json_error_t je;
        json_t *j = json_loadb(resp.body, resp.len, 0, &je);
        if (!j) {
            fprintf(stderr, "%s: recd's answer is not JSON (%s): %.200s\n", prog, je.text,
                    resp.body);
            free(resp.body);
            return 1;
        }
        show(j, ctx);
        json_decref(j);
    }
    free(resp.body);
    if (fflush(stdout) != 0) {
        fprintf(stderr, "%s: writing the output: %s\n", prog, strerror(errno));
        return 1;
    }
    return 0;
}

/* ---- readable output ------------------------------------------------------------------------- */

/* A time value as ISO 8601 UTC: unix seconds (integer or real), or a
 * string shown as it is; "-" for null/absent. */
static const char *time_text(json_t *v, char *buf, size_t cap)
{
    if (json_is_string(v))
        snprintf(buf, cap, "%s", json_string_value(v));
    else if (json_is_number(v))
        iso((int64_t)json_number_value(v), buf, cap);
    else
        snprintf(buf, cap, "-");
    return buf;
}

/* An integer-ish JSON value as text, or dflt. */
static const char *int_text(json_t *v, char *buf, size_t cap, const char *dflt)
{
    if (json_is_integer(v))
        snprintf(buf, cap, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    else if (json_is_real(v))
        snprintf(buf, cap, "%.0f", json_real_value(v));
    else if (json_is_string(v))
        snprintf(buf, cap, "%s", json_string_value(v));
    else
        snprintf(buf, cap, "%s", dflt);
    return buf;
}

/* The version of v when it is an object with "version", else v itself. */
static json_t *version_of(json_t *v)
{
    return json_is_object(v) ? json_object_get(v, "version") : v;
}

#define MCOLS 7
typedef struct mrow {
    char cell[MCOLS][512];
} mrow_t;

static void show_models(json_t *st, void *ctx)
{
    (void)ctx;
    static const char *const heads[MCOLS] = {"MODEL",   "SERVING",   "PINNED",  "PREVIOUS",
                                             "ON DISK", "LAST SWAP", "FAILURES"};
    json_t *models = json_object_get(st, "models");
    size_t n = json_is_object(models)  ? json_object_size(models)
               : json_is_array(models) ? json_array_size(models)
                                       : 0;
    mrow_t *rows = calloc(n ? n : 1, sizeof *rows);
    char(*errs)[1024] = calloc(n ? n : 1, sizeof *errs);
    if (!rows || !errs) {
        free(rows);
        free(errs);
        fprintf(stderr, "recdctl models: out of memory\n");
        return;
    }
    size_t k = 0;
    const char *key = NULL;
    json_t *m;
    void *iter = json_is_object(models) ? json_object_iter(models) : NULL;
    for (size_t ai = 0; k < n; ai++) {
        if (json_is_object(models)) {
            key = json_object_iter_key(iter);
            m = json_object_iter_value(iter);
            iter = json_object_iter_next(models, iter);
        } else {
            m = json_array_get(models, ai);
            key = json_string_value(json_object_get(m, "name"));
        }
        mrow_t *row = &rows[k];
        char a[64], b[64], c[64];
        snprintf(row->cell[0], sizeof row->cell[0], "%s", key ? key : "?");
        json_t *serving = json_object_get(m, "serving");
        if (!serving)
            serving = json_object_get(m, "version");
        int_text(version_of(serving), row->cell[1], sizeof row->cell[1], "none");
        if (strcmp(row->cell[1], "0") == 0)
            snprintf(row->cell[1], sizeof row->cell[1], "none");
        int_text(version_of(json_object_get(m, "pinned")), row->cell[2], sizeof row->cell[2], "no");
        int_text(version_of(json_object_get(m, "previous")), row->cell[3], sizeof row->cell[3],
                 "-");
        /* on disk: "5 ready, 4 failed, 3 serving" */
        json_t *disk = json_object_get(m, "on_disk");
        size_t i;
        json_t *e;
        char *p = row->cell[4];
        size_t left = sizeof row->cell[4];
        p[0] = '\0';
        json_array_foreach (disk, i, e) {
            const char *state = json_string_value(json_object_get(e, "state"));
            int w = snprintf(p, left, "%s%s %s", i ? ", " : "",
                             int_text(json_object_get(e, "version"), a, sizeof a, "?"),
                             state ? state : "?");
            if (w < 0 || (size_t)w >= left)
                break;
            p += w;
            left -= (size_t)w;
        }
        if (!row->cell[4][0])
            snprintf(row->cell[4], sizeof row->cell[4], "-");
        json_t *ls = json_object_get(m, "last_swap");
        if (json_is_object(ls)) {
            json_t *dur = json_object_get(ls, "duration_ms");
            char t[40];
            snprintf(row->cell[5], sizeof row->cell[5], "%s %s->%s (%.0f ms)",
                     time_text(json_object_get(ls, "at"), t, sizeof t),
                     int_text(json_object_get(ls, "from"), b, sizeof b, "-"),
                     int_text(json_object_get(ls, "to"), c, sizeof c, "-"),
                     json_is_number(dur) ? json_number_value(dur) : 0.0);
        } else {
            snprintf(row->cell[5], sizeof row->cell[5], "never");
        }
        int_text(json_object_get(m, "loads_failed"), row->cell[6], sizeof row->cell[6], "0");
        json_t *le = json_object_get(m, "last_error");
        if (json_is_object(le)) {
            json_t *reason = json_object_get(le, "reason");
            if (!reason)
                reason = json_object_get(le, "message");
            char t[40];
            snprintf(errs[k], sizeof errs[k], "%s: last failure: version %s at %s: %s",
                     row->cell[0], int_text(json_object_get(le, "version"), a, sizeof a, "?"),
                     time_text(json_object_get(le, "at"), t, sizeof t),
                     json_is_string(reason) ? json_string_value(reason) : "?");
        }
        k++;
    }
    if (n == 0) {
        printf("no models\n");
    } else {
        size_t w[MCOLS];
        for (int c = 0; c < MCOLS; c++) {
            w[c] = strlen(heads[c]);
            for (size_t r = 0; r < n; r++)
                if (strlen(rows[r].cell[c]) > w[c])
                    w[c] = strlen(rows[r].cell[c]);
        }
        for (int c = 0; c < MCOLS; c++)
            printf("%-*s%s", c + 1 < MCOLS ? (int)w[c] : 0, heads[c], c + 1 < MCOLS ? "  " : "\n");
        for (size_t r = 0; r < n; r++)
            for (int c = 0; c < MCOLS; c++)
                printf("%-*s%s", c + 1 < MCOLS ? (int)w[c] : 0, rows[r].cell[c],
                       c + 1 < MCOLS ? "  " : "\n");
        for (size_t r = 0; r < n; r++)
            if (errs[r][0])
                printf("%s\n", errs[r]);
    }
    json_t *watching = json_object_get(st, "watching");
    json_t *queue = json_object_get(st, "queue");
    if (watching || queue) {
        char q[32];
        printf("watching for new versions: %s; commands queued: %s\n",
               json_is_true(watching) ? "yes" : "no", int_text(queue, q, sizeof q, "0"));
    }
    free(rows);
    free(errs);
}

static void show_model_cmd(json_t *a, void *ctx)
{
    (void)ctx;
    const char *model = json_string_value(json_object_get(a, "model"));
    const char *msg = json_string_value(json_object_get(a, "message"));
    if (!model) {
        printf("%s\n", msg ? msg : "done");
        return;
    }
    char v[32], p[32];
    json_t *pinned = json_object_get(a, "pinned");
    printf("%s: serving version %s (was %s)%s\n", model,
           int_text(json_object_get(a, "version"), v, sizeof v, "?"),
           int_text(json_object_get(a, "previous"), p, sizeof p, "?"),
           json_is_true(pinned)    ? ", pinned"
           : json_is_false(pinned) ? ", not pinned"
                                   : "");
    if (msg && *msg)
        printf("  %s\n", msg);
}

static void show_pretty(json_t *a, void *ctx)
{
    const char *key = ctx;
    json_t *v = key ? json_object_get(a, key) : a;
    char *s = json_dumps(v ? v : a, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
    if (s)
        printf("%s\n", s);
    free(s);
}

static void show_text(json_t *a, void *ctx)
{
    (void)a;
    printf("%s\n", (const char *)ctx);
}

static void show_config(json_t *a, void *ctx)
{
    (void)ctx;
    const char *key;
    json_t *v;
    json_object_foreach (a, key, v) {
        if (json_is_string(v)) {
            printf("%s = %s\n", key, json_string_value(v));
        } else {
            char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_PRESERVE_ORDER);
            printf("%s = %s\n", key, s ? s : "?");
            free(s);
        }
    }
}

static void show_experiments(json_t *a, void *ctx)
{
    json_t *list = json_object_get(a, "experiments");
    size_t n = json_array_size(list);
    if (ctx)
        printf("%s: %zu experiment%s live\n", (const char *)ctx, n, n == 1 ? "" : "s");
    if (n)
        show_pretty(a, "experiments");
    else if (!ctx)
        printf("no experiments\n");
}

/* ---- admin commands ---------------------------------------------------------------------- */

/* A command without arguments (models, train, reload): parse the admin
 * options, then send method path and show the answer with show(answer, ctx). */
static int admin_noargs(const char *prog, int argc, char **argv, void (*usage)(FILE *),
                        const char *method, const char *path,
                        void (*show)(json_t *answer, void *ctx), void *ctx)
{
    admin_opts_t o;
    int first, rc = admin_getopt(prog, argc, argv, &o, 0, usage, &first);
    if (rc >= 0)
        return rc;
    if ((rc = want_args(prog, argc, first, 0, 0, usage)))
        return rc;
    return admin_run(prog, &o, method, path, NULL, show, ctx);
}

static void models_usage(FILE *f)
{
    fprintf(f, "usage: recdctl models [options]\n"
               "\n"
               "List every model recd manages: the serving version, the pin, the rollback\n"
               "target, the versions on disk with their state, the last swap and the failed\n"
               "loads (with the last failure's reason).\n"
               "\n" ADMIN_HELP);
}

static int cmd_models(int argc, char **argv)
{
    return admin_noargs("recdctl models", argc, argv, models_usage, "GET", "/admin/models",
                        show_models, NULL);
}

/* A version argument: a positive decimal integer. */
static int parse_version_arg(const char *prog, const char *s, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || errno || v < 1 || s[0] == '+' || s[0] == ' ') {
        fprintf(stderr, "%s: '%s' is not a version (a positive integer)\n", prog, s);
        return EXIT_USAGE;
    }
    *out = v;
    return 0;
}

/* load NAME VERSION [--no-pin], pin NAME VERSION */
static int model_load(const char *prog, const char *verb, int argc, char **argv,
                      void (*usage)(FILE *))
{
    admin_opts_t o;
    int first, rc = admin_getopt(prog, argc, argv, &o, strcmp(verb, "load") == 0, usage, &first);
    if (rc >= 0)
        return rc;
    if ((rc = want_args(prog, argc, first, 2, 2, usage)))
        return rc;
    long long v;
    if ((rc = parse_version_arg(prog, argv[first + 1], &v)))
        return rc;
    char enc[256], path[320], body[96];
    pct_encode(argv[first], enc, sizeof enc);
    snprintf(path, sizeof path, "/admin/models/%s/%s", enc, verb);
    if (strcmp(verb, "load") == 0)
        snprintf(body, sizeof body, "{\"version\":%lld,\"pin\":%s}", v,
                 o.no_pin ? "false" : "true");
    else
        snprintf(body, sizeof body, "{\"version\":%lld}", v);
    return admin_run(prog, &o, "POST", path, body, show_model_cmd, NULL);
}

static void load_usage(FILE *f)
{
    fprintf(f, "usage: recdctl load NAME VERSION [--no-pin] [options]\n"
               "\n"
               "Load version VERSION of model NAME (it must be on disk and validate), wait\n"
               "until it serves, and pin it so newer versions do not replace it.\n"
               "  --no-pin           do not pin: the next newer version replaces it\n"
               "\n" ADMIN_HELP);
}

static int cmd_load(int argc, char **argv)
{
    return model_load("recdctl load", "load", argc, argv, load_usage);
}

static void pin_usage(FILE *f)
{
    fprintf(f, "usage: recdctl pin NAME VERSION [options]\n"
               "\n"
               "Serve version VERSION of model NAME and keep it (the same as `recdctl load`).\n"
               "\n" ADMIN_HELP);
}

static int cmd_pin(int argc, char **argv)
{
    return model_load("recdctl pin", "pin", argc, argv, pin_usage);
}

/* unpin NAME, rollback NAME, rescan [NAME] */
static int model_simple(const char *prog, const char *verb, int argc, char **argv, int name_opt,
                        void (*usage)(FILE *))
{
    admin_opts_t o;
    int first, rc = admin_getopt(prog, argc, argv, &o, 0, usage, &first);
    if (rc >= 0)
        return rc;
    if ((rc = want_args(prog, argc, first, name_opt ? 0 : 1, 1, usage)))
        return rc;
    char path[320];
    if (first < argc) {
        char enc[256];
        pct_encode(argv[first], enc, sizeof enc);
        snprintf(path, sizeof path, "/admin/models/%s/%s", enc, verb);
    } else {
        snprintf(path, sizeof path, "/admin/%s", verb);
    }
    return admin_run(prog, &o, "POST", path, NULL, show_model_cmd, NULL);
}

static void unpin_usage(FILE *f)
{
    fprintf(f, "usage: recdctl unpin NAME [options]\n"
               "\n"
               "Drop the pin of model NAME: the newest valid version on disk serves again.\n"
               "\n" ADMIN_HELP);
}

static int cmd_unpin(int argc, char **argv)
{
    return model_simple("recdctl unpin", "unpin", argc, argv, 0, unpin_usage);
}

static void rollback_usage(FILE *f)
{
    fprintf(f, "usage: recdctl rollback NAME [options]\n"
               "\n"
               "Serve the previous valid version of model NAME and pin it, so the version\n"
               "rolled back from does not come straight back (`recdctl unpin NAME` later).\n"
               "\n" ADMIN_HELP);
}

static int cmd_rollback(int argc, char **argv)
{
    return model_simple("recdctl rollback", "rollback", argc, argv, 0, rollback_usage);
}

static void rescan_usage(FILE *f)
{
    fprintf(f, "usage: recdctl rescan [NAME] [options]\n"
               "\n"
               "Look for new versions of model NAME (every model without NAME) now, as an\n"
               "inotify event or SIGHUP would, and wait until the manager has handled them.\n"
               "\n" ADMIN_HELP);
}

static int cmd_rescan(int argc, char **argv)
{
    return model_simple("recdctl rescan", "rescan", argc, argv, 1, rescan_usage);
}

static void train_usage(FILE *f)
{
    fprintf(f, "usage: recdctl train [options]\n"
               "\n"
               "Start a cycle of the embedded trainer now (it runs in the background; its\n"
               "progress and outcome are in /stats). Refused while a cycle runs, and when\n"
               "the trainer is disabled.\n"
               "\n" ADMIN_HELP);
}

static int cmd_train(int argc, char **argv)
{
    return admin_noargs("recdctl train", argc, argv, train_usage, "POST", "/admin/train", show_text,
                        "training started (progress and outcome: /stats \"trainer\")");
}

static void reload_usage(FILE *f)
{
    fprintf(f, "usage: recdctl reload [options]\n"
               "\n"
               "Make recd re-read its configuration file, as SIGHUP does.\n"
               "\n" ADMIN_HELP);
}

static int cmd_reload(int argc, char **argv)
{
    return admin_noargs("recdctl reload", argc, argv, reload_usage, "POST", "/admin/reload",
                        show_text, "configuration reloaded");
}

static void config_usage(FILE *f)
{
    fprintf(f, "usage: recdctl config get [options]\n"
               "\n"
               "Print recd's effective configuration, one \"key = value\" line per key\n"
               "(secrets redacted).\n"
               "\n" ADMIN_HELP);
}

static int cmd_config(int argc, char **argv)
{
    const char *prog = "recdctl config";
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
                      strcmp(argv[1], "help") == 0)) {
        config_usage(stdout);
        return 0;
    }
    if (argc < 2 || strcmp(argv[1], "get") != 0) {
        fprintf(stderr, "%s: %s\n", prog, argc < 2 ? "missing subcommand" : "unknown subcommand");
        config_usage(stderr);
        return EXIT_USAGE;
    }
    prog = "recdctl config get";
    admin_opts_t o;
    int first, rc = admin_getopt(prog, argc - 1, argv + 1, &o, 0, config_usage, &first);
    if (rc >= 0)
        return rc;
    if ((rc = want_args(prog, argc - 1, first, 0, 0, config_usage)))
        return rc;
    return admin_run(prog, &o, "GET", "/admin/config", NULL, show_config, NULL);
}

static void experiments_usage(FILE *f)
{
    fprintf(f, "usage: recdctl experiments get [options]\n"
               "       recdctl experiments put FILE [options]\n"
               "\n"
               "get: print the live A/B experiments (with their bucket ranges).\n"
               "put: replace them with those of FILE (\"-\" = standard input), JSON as\n"
               "     {\"experiments\": [...]} or the array alone; recd validates them whole.\n"
               "     Like a config reload of `experiments`: a later SIGHUP re-reads the\n"
               "     configuration file's experiments.\n"
               "\n" ADMIN_HELP);
}

/* Read all of path ("-" = stdin); NULL after printing why. */
static char *slurp(const char *prog, const char *path)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "re");
    if (!f) {
        fprintf(stderr, "%s: cannot open '%s': %s\n", prog, path, strerror(errno));
        return NULL;
    }
    size_t cap = 4096, n = 0;
    char *b = malloc(cap);
    while (b) {
        if (n + 1 >= cap) {
            char *nb = cap < (16u << 20) ? realloc(b, cap * 2) : NULL;
            if (!nb) {
                fprintf(stderr, "%s: '%s' is too large\n", prog, path);
                free(b);
                b = NULL;
                break;
            }
            b = nb;
            cap *= 2;
        }
        size_t r = fread(b + n, 1, cap - 1 - n, f);
        n += r;
        if (r == 0) {
            if (ferror(f)) {
                fprintf(stderr, "%s: reading '%s': %s\n", prog, path, strerror(errno));
                free(b);
                b = NULL;
            } else {
                b[n] = '\0';
            }
            break;
        }
    }
    if (f != stdin)
        fclose(f);
    return b;
}

static int cmd_experiments(int argc, char **argv)
{
    const char *prog = "recdctl experiments";
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
                      strcmp(argv[1], "help") == 0)) {
        experiments_usage(stdout);
        return 0;
    }
    int put = argc >= 2 && strcmp(argv[1], "put") == 0;
    if (argc < 2 || (!put && strcmp(argv[1], "get") != 0)) {
        fprintf(stderr, "%s: %s\n", prog, argc < 2 ? "missing subcommand" : "unknown subcommand");
        experiments_usage(stderr);
        return EXIT_USAGE;
    }
    prog = put ? "recdctl experiments put" : "recdctl experiments get";
    admin_opts_t o;
    int first, rc = admin_getopt(prog, argc - 1, argv + 1, &o, 0, experiments_usage, &first);
    if (rc >= 0)
        return rc;
    if ((rc = want_args(prog, argc - 1, first, put, put, experiments_usage)))
        return rc;
    if (!put)
        return admin_run(prog, &o, "GET", "/admin/experiments", NULL, show_experiments, NULL);
    const char *file = argv[1 + first];
    char *text = slurp(prog, file);
    if (!text)
        return EXIT_USAGE;
    json_error_t je;
    json_t *j = json_loads(text, 0, &je);
    if (!j) {
        fprintf(stderr, "%s: %s: not JSON: line %d column %d: %s\n", prog, file, je.line, je.column,
                je.text);
        free(text);
        return EXIT_USAGE;
    }
    json_decref(j);
    rc = admin_run(prog, &o, "PUT", "/admin/experiments", text, show_experiments,
                   "experiments replaced");
    free(text);
    return rc;
}

/* ---- main ------------------------------------------------------------------------------------ */

static const command_t COMMANDS[] = {
    {"models", "list models: serving version, pin, versions on disk, swaps, failures", cmd_models},
    {"load", "NAME VERSION [--no-pin]: serve that version (pinned unless --no-pin)", cmd_load},
    {"pin", "NAME VERSION: serve that version and keep it", cmd_pin},
    {"unpin", "NAME: drop the pin; the newest valid version serves", cmd_unpin},
    {"rollback", "NAME: serve the previous valid version, pinned", cmd_rollback},
    {"rescan", "[NAME]: look for new versions now", cmd_rescan},
    {"train", "start a cycle of the embedded trainer", cmd_train},
    {"experiments", "get | put FILE: the live A/B experiments", cmd_experiments},
    {"reload", "re-read the configuration file (as SIGHUP)", cmd_reload},
    {"config", "get: the effective configuration", cmd_config},
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
    fprintf(f,
            "\nEvery command but `events` talks to a running recd through its admin\n"
            "listener (-c FILE, --admin HOST:PORT, --token-file FILE; see a command's --help).\n"
            "`recdctl <command> --help` describes a command.\n"
            "Exit status: 0 success, 1 failure (recd refused: its error is printed), 2 bad\n"
            "usage, 3 recd unreachable, no answer in time, or the admin token missing or wrong.\n");
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "--version") == 0) {
        printf("recdctl %s (git %s, %s)\n", RECD_VERSION, recd_build_git(), recd_build_compiler());
        return 0;
    }
    return dispatch("recdctl", COMMANDS, NCOMMANDS, usage, argc, argv);
}
