/*
 * Unit tests for src/events: CRC32C vectors (table vs SSE4.2), round trips,
 * recovery from a torn tail at every byte offset, mid-segment corruption
 * (refused or skipped), the three fsync policies, the bounded queue,
 * rotation and retention, injected write/fsync failures, the directory lock
 * and a short throughput measurement (printed, not asserted).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "recd/core.h"
#include "recd/events.h"

/* ---- helpers ------------------------------------------------------------------ */

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rng_next(void)
{
    uint64_t x = rng_state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    rng_state = x;
    return x * 0x2545f4914f6cdd1dULL;
}

static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

typedef struct fx {
    char dir[PATH_MAX]; /* the log directory (inside a mkdtemp dir) */
    char top[PATH_MAX];
} fx_t;

static int setup(void **state)
{
    fx_t *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    const char *t = getenv("TMPDIR");
    snprintf(f->top, sizeof f->top, "%s/recd-evlog-XXXXXX", t && *t ? t : "/tmp");
    if (!mkdtemp(f->top)) {
        free(f);
        return -1;
    }
    snprintf(f->dir, sizeof f->dir, "%s/events", f->top);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx_t *f = *state;
    nftw(f->top, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

static void seg_file(char *buf, size_t cap, const char *dir, uint64_t base)
{
    snprintf(buf, cap, "%s/%020llu.seg", dir, (unsigned long long)base);
}

/* Deterministic payload of record i: "ev-<i>-" then filler, length len. */
static size_t make_payload(char *buf, size_t len, unsigned i)
{
    int k = snprintf(buf, len + 1, "ev-%u-", i);
    for (size_t j = (size_t)k; j < len; j++)
        buf[j] = (char)('a' + (i + j) % 26);
    return len;
}

static size_t payload_len(unsigned i)
{
    return 12 + (i * 7) % 40;
}

/* Collected records. */
typedef struct coll {
    size_t n, cap;
    char **data;
    uint32_t *len;
    uint64_t *off;
} coll_t;

static int coll_cb(void *ctx, uint64_t off, const void *p, uint32_t len)
{
    coll_t *c = ctx;
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 64;
        c->data = realloc(c->data, c->cap * sizeof *c->data);
        c->len = realloc(c->len, c->cap * sizeof *c->len);
        c->off = realloc(c->off, c->cap * sizeof *c->off);
        assert_non_null(c->data);
        assert_non_null(c->len);
        assert_non_null(c->off);
    }
    c->data[c->n] = malloc(len);
    assert_non_null(c->data[c->n]);
    memcpy(c->data[c->n], p, len);
    c->len[c->n] = len;
    c->off[c->n] = off;
    c->n++;
    return 0;
}

static void coll_free(coll_t *c)
{
    for (size_t i = 0; i < c->n; i++)
        free(c->data[i]);
    free(c->data);
    free(c->len);
    free(c->off);
    memset(c, 0, sizeof *c);
}

/* Check that c holds records first..first+n-1 (payload_len / make_payload). */
static void check_records(const coll_t *c, unsigned first, size_t n)
{
    assert_int_equal(c->n, n);
    char buf[128];
    for (size_t i = 0; i < n; i++) {
        unsigned id = first + (unsigned)i;
        size_t l = make_payload(buf, payload_len(id), id);
        assert_int_equal(c->len[i], l);
        assert_memory_equal(c->data[i], buf, l);
        if (i)
            assert_true(c->off[i] > c->off[i - 1]);
    }
}

static recd_evlog_opts_t opts_of(recd_evlog_fsync_t p)
{
    recd_evlog_opts_t o;
    recd_evlog_opts_default(&o);
    o.fsync = p;
    o.interval_ms = 20;
    return o;
}

static recd_evlog_t *open_ok(const char *dir, const recd_evlog_opts_t *o)
{
    recd_evlog_t *log = NULL;
    recd_err_t err = {0};
    int rc = recd_evlog_open(dir, o, &log, &err);
    if (rc)
        fail_msg("open: %s", err.msg);
    assert_non_null(log);
    return log;
}

/* Append records first..first+n-1 as one batch; returns the ticket. */
static uint64_t append_ids(recd_evlog_t *log, unsigned first, size_t n)
{
    char bufs[8][128];
    struct iovec iov[8];
    assert_true(n <= 8);
    for (size_t i = 0; i < n; i++) {
        iov[i].iov_base = bufs[i];
        iov[i].iov_len =
            make_payload(bufs[i], payload_len(first + (unsigned)i), first + (unsigned)i);
    }
    uint64_t t = 0;
    recd_err_t err = {0};
    int rc = recd_evlog_append(log, iov, n, &t, &err);
    if (rc)
        fail_msg("append: %s", err.msg);
    return t;
}

static void iterate_ok(const char *dir, int skip, coll_t *c, recd_evlog_iter_stats_t *st)
{
    recd_err_t err = {0};
    int rc = recd_evlog_iterate(dir, 0, 0, skip, coll_cb, c, st, &err);
    if (rc)
        fail_msg("iterate: %s", err.msg);
}

static void write_file(const char *path, const uint8_t *b, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0640);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, b, len), (ssize_t)len);
    close(fd);
}

static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    uint8_t *b = malloc((size_t)n + 1);
    assert_non_null(b);
    assert_int_equal(fread(b, 1, (size_t)n, fp), (size_t)n);
    fclose(fp);
    *len = (size_t)n;
    return b;
}

static int count_segments(const char *dir)
{
    char cmd[PATH_MAX + 64];
    snprintf(cmd, sizeof cmd, "ls %s | grep -c '^[0-9]\\{20\\}\\.seg$'", dir);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    int n = -1;
    assert_int_equal(fscanf(p, "%d", &n), 1);
    pclose(p);
    return n;
}

/* ---- CRC32C ----------------------------------------------------------------------- */

static void test_crc32c_vectors(void **state)
{
    (void)state;
    assert_int_equal(recd_crc32c(0, "123456789", 9), 0xE3069283u);
    assert_int_equal(recd_crc32c_sw(0, "123456789", 9), 0xE3069283u);
    assert_int_equal(recd_crc32c(0, "", 0), 0);
    /* RFC 3720 B.4 */
    uint8_t b[32];
    memset(b, 0, sizeof b);
    assert_int_equal(recd_crc32c_sw(0, b, 32), 0x8A9136AAu);
    assert_int_equal(recd_crc32c(0, b, 32), 0x8A9136AAu);
    memset(b, 0xFF, sizeof b);
    assert_int_equal(recd_crc32c_sw(0, b, 32), 0x62A8AB43u);
    assert_int_equal(recd_crc32c(0, b, 32), 0x62A8AB43u);
    for (int i = 0; i < 32; i++)
        b[i] = (uint8_t)i;
    assert_int_equal(recd_crc32c_sw(0, b, 32), 0x46DD794Eu);
    assert_int_equal(recd_crc32c(0, b, 32), 0x46DD794Eu);
    for (int i = 0; i < 32; i++)
        b[i] = (uint8_t)(31 - i);
    assert_int_equal(recd_crc32c_sw(0, b, 32), 0x113FDB5Cu);
    /* continuation */
    assert_int_equal(recd_crc32c(recd_crc32c(0, "1234", 4), "56789", 5), 0xE3069283u);
    assert_int_equal(recd_crc32c_sw(recd_crc32c_sw(0, "12345", 5), "6789", 4), 0xE3069283u);
}

static void test_crc32c_hw_matches_sw(void **state)
{
    (void)state;
    if (!recd_crc32c_hw_available())
        print_message("crc32c: no SSE4.2 on this CPU, table path only\n");
    uint8_t buf[4096 + 16];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (uint8_t)rng_next();
    for (int k = 0; k < 2000; k++) {
        size_t off = rng_next() % 16, len = rng_next() % 4096;
        uint32_t seed = (uint32_t)rng_next();
        assert_int_equal(recd_crc32c(seed, buf + off, len), recd_crc32c_sw(seed, buf + off, len));
    }
}

/* ---- round trip ------------------------------------------------------------------ */

static void test_roundtrip(void **state)
{
    fx_t *f = *state;
    recd_evlog_opts_t o = opts_of(RECD_EVLOG_FSYNC_NEVER);
    recd_evlog_t *log = open_ok(f->dir, &o);
    unsigned id = 0;
    uint64_t prev = 0;
    for (int b = 0; b < 60; b++) {
        size_t n = 1 + (size_t)b % 5;
        uint64_t t = append_ids(log, id, n);
        assert_true(t > prev);
        prev = t;
        id += (unsigned)n;
    }
    recd_evlog_stats_t st;
    recd_evlog_stats(log, &st);
    assert_int_equal(st.records, id);
    assert_int_equal(st.next_offset, prev);
    recd_evlog_close(log);

    /* the ticket is the log offset past the batch: the file size here */
    char path[PATH_MAX];
    seg_file(path, sizeof path, f->dir, 0);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal((uint64_t)sb.st_size, prev);

    coll_t c = {0};
    recd_evlog_iter_stats_t ist;
    iterate_ok(f->dir, 0, &c, &ist);
    check_records(&c, 0, id);
    assert_int_equal(c.off[0], 0);
    assert_int_equal(ist.records, id);
    assert_int_equal(ist.tail_bytes, 0);
    coll_free(&c);

    /* reopen: recovery finds nothing to cut, appends continue the sequence */
    log = open_ok(f->dir, &o);
    recd_evlog_stats(log, &st);
    assert_int_equal(st.recovered_truncated_bytes, 0);
    assert_int_equal(st.records, id);
    assert_int_equal(st.next_offset, prev);
    append_ids(log, id, 3);
    id += 3;
    recd_evlog_close(log);
    iterate_ok(f->dir, 0, &c, NULL);
    check_records(&c, 0, id);
    coll_free(&c);

    recd_err_t err = {0};
    assert_int_equal(recd_evlog_verify(f->dir, 0, &ist, &err), 0);
    assert_int_equal(ist.records, id);
}

/* Callback return value stops the iteration and is returned. */
static int stop_at_3(void *ctx, uint64_t off, const void *p, uint32_t len)
{
    (void)off;
    (void)p;
    (void)len;
    int *n = ctx;
    return ++*n == 3 ? 42 : 0;
}

static void test_iterate_stop_and_missing(void **state)
{
    fx_t *f = *state;
    recd_evlog_opts_t o = opts_of(RECD_EVLOG_FSYNC_NEVER);
    recd_evlog_t *log = open_ok(f->dir, &o);
    append_ids(log, 0, 5);
    recd_evlog_close(log);
    int n = 0;
    recd_err_t err = {0};
    assert_int_equal(recd_evlog_iterate(f->dir, 0, 0, 0, stop_at_3, &n, NULL, &err), 42);
    assert_int_equal(n, 3);
    char missing[PATH_MAX + 16];
    snprintf(missing, sizeof missing, "%s/nope", f->top);
    assert_int_equal(recd_evlog_iterate(missing, 0, 0, 0, stop_at_3, &n, NULL, &err), RECD_ENOENT);
    assert_non_null(strstr(err.msg, missing));
}

/* ---- recovery ------------------------------------------------------------------------ */

#define NREC 6

/* Write NREC records (ids 0..NREC-1) to a fresh log; return the segment bytes
 * and the start offsets of the records. */
static uint8_t *make_segment(fx_t *f, size_t *len, uint64_t starts[NREC + 1])
{
    recd_evlog_opts_t o = opts_of(RECD_EVLOG_FSYNC_NEVER);
    recd_evlog_t *log = open_ok(f->dir, &o);
    starts[0] = 0;
    for (unsigned i = 0; i < NREC; i++)
        starts[i + 1] = append_ids(log, i, 1);
    recd_evlog_close(log);
    char path[PATH_MAX];
    seg_file(path, sizeof path, f->dir, 0);
    uint8_t *b = slurp(path, len);
    assert_int_equal(*len, starts[NREC]);
    return b;
}

static void test_truncate_every_offset(void **state)
{
    fx_t *f = *state;
    size_t len;
    uint64_t starts[NREC + 1];
    uint8_t *seg = make_segment(f, &len, starts);
    char path[PATH_MAX];
    seg_file(path, sizeof path, f->dir, 0);
    recd_evlog_opts_t o = opts_of(RECD_EVLOG_FSYNC_NEVER);
    uint64_t last = starts[NREC - 1];
    int cases = 0;
    for (uint64_t cut = last; cut < len; cut++) {
        write_file(path, seg, (size_t)cut);
        recd_evlog_t *log = open_ok(f->dir, &o);
        recd_evlog_stats_t st;
        recd_evlog_stats(log, &st);
        assert_int_equal(st.recovered_truncated_bytes, cut - last);
        assert_int_equal(st.records, NREC - 1);
        assert_int_equal(st.next_offset, last);
        /* the file was cut back to the last complete record */
        struct stat sb;
        assert_int_equal(stat(path, &sb), 0);
        assert_int_equal((uint64_t)sb.st_size, last);
        /* appending after recovery works and lands right after it */
        uint64_t t = append_ids(log, 100, 1);
        assert_int_equal(t, last + 8 + payload_len(100));
        recd_evlog_close(log);

        /* the complete records before the cut, then the new one */
        coll_t c = {0};
        iterate_ok(f->dir, 0, &c, NULL);
        assert_int_equal(c.n, NREC);
        coll_t head = c;
        head.n = NREC - 1;
        check_records(&head, 0, NREC - 1);
        char buf[128];
        size_t l = make_payload(buf, payload_len(100), 100);
        assert_int_equal(c.len[NREC - 1], l);
        assert_memory_equal(c.data[NREC - 1], buf, l);
        assert_int_equal(c.off[NREC - 1], last);
        coll_free(&c);
        cases++;
    }
    assert_int_equal(cases, (int)(len - last));
    free(seg);
}

static void test_torn_tail_seen_by_reader(void **state)
{
    fx_t *f = *state;
    size_t len;
    uint64_t starts[NREC + 1];
    uint8_t *seg = make_segment(f, &len, starts);
    char path[PATH_MAX];
    seg_file(path, sizeof path, f->dir, 0);
    write_file(path, seg, len - 3);
    /* read-only: verify reports the tail without failing or modifying */
    recd_evlog_iter_stats_t st;
    recd_err_t err = {0};
    assert_int_equal(recd_evlog_verify(f->dir, 0, &st, &err), 0);
    assert_int_equal(st.records, NREC - 1);
    assert_int_equal(st.tail_bytes, len - 3 - starts[NREC - 1]);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal((size_t)sb.st_size, len - 3);
    /* zero-filled tail (allocated, never written) is a torn tail too */
    uint8_t *z = calloc(1, len + 100);
    memcpy(z, seg, len);
    write_file(path, z, len + 100);
    recd_evlog_opts_t o = opts_of(RECD_EVLOG_FSYNC_NEVER);
    recd_evlog_t *log = open_ok(f->dir, &o);
    recd_evlog_stats_t s;
    recd_evlog_stats(log, &s);
    assert_int_equal(s.recovered_truncated_bytes, 100);
    assert_int_equal(s.records, NREC);
    recd_evlog_close(log);
    free(z);
    free(seg);
}

static void test_flip_middle_record(void **state)
{
    fx_t *f = *state;
    size_t len;
    uint64_t starts[NREC + 1];
    uint8_t *seg = make_segment(f, &len, starts);
    char path[PATH_MAX];
    seg_file(path, sizeof path, f->dir, 0);
    const unsigned victim = 2;
    /* every byte of the middle record, header included */
    for (uint64_t pos = starts[victim]; pos < starts[victim + 1]; pos++) {
        seg[pos] ^= 0x5A;
        write_file(path, seg, len);
        seg[pos] ^= 0x5A;

        recd_evlog_opts_t o = opts_of(RECD_EVLOG_FSYNC_NEVER);
        recd_evlog_t *log = NULL;
        recd_err_t err = {0};
        assert_int_equal(recd_evlog_open(f->dir, &o, &log, &err), RECD_EIO);
        assert_null(log);
        assert_non_null(strstr(err.msg, path));
        char want[64];
        snprintf(want, sizeof want, "byte offset %llu ", (unsigned long long)starts[victim]);
        if (!strstr(err.msg, want))
            fail_msg("flip at %llu: message lacks '%s': %s", (unsigned long long)pos, want,
                     err.msg);
        /* verify says the same, and nothing was modified */
        recd_err_t verr = {0};
        assert_int_equal(recd_evlog_verify(f->dir, 0, NULL, &verr), RECD_EIO);
        assert_non_null(strstr(verr.msg, want));
        struct stat sb;
        assert_int_equal(stat(path, &sb), 0);
        assert_int_equal((size_t)sb.st_size, len);

        /* skip_corrupt: opens, counts, readers skip it */
        o.skip_corrupt = 1;
        log = open_ok(f->dir, &o);
        recd_evlog_stats_t st;
        recd_evlog_stats(log, &st);
        assert_int_equal(st.recovered_corrupt_regions, 1);
        assert_int_equal(st.recovered_corrupt_bytes, starts[victim + 1] - starts[victim]);
        assert_int_equal(st.recovered_truncated_bytes, 0);
        assert_int_equal(st.records, NREC - 1);
        recd_evlog_close(log);
        coll_t c = {0};
        recd_evlog_iter_stats_t ist;
        iterate_ok(f->dir, 1, &c, &ist);
        assert_int_equal(c.n, NREC - 1);
        assert_int_equal(ist.corrupt_regions, 1);
        for (size_t i = 0, id = 0; i < c.n; i++, id++) {
            if (id == victim)
                id++;
            assert_int_equal(c.off[i], starts[id]);
        }
        coll_free(&c);
    }
    free(seg);
}

static void test_flip_last_record_is_torn_tail(void **state)
{
    fx_t *f = *state;
    size_t len;
    uint64_t starts[NREC + 1];
    uint8_t *seg = make_segment(f, &len, starts);
    char path[PATH_MAX];
    seg_file(path, sizeof path, f->dir, 0);
    recd_evlog_opts_t o = opts_of(RECD_EVLOG_FSYNC_NEVER);
    for (uint64_t pos = starts[NREC - 1]; pos < len; pos++) {
        seg[pos] ^= 0x01;
        write_file(path, seg, len);
        seg[pos] ^= 0x01;
        recd_evlog_t *log = open_ok(f->dir, &o);
        recd_evlog_stats_t st;
        recd_evlog_stats(log, &st);
        assert_int_equal(st.recovered_truncated_bytes, len - starts[NREC - 1]);
        assert_int_equal(st.recovered_corrupt_regions, 0);
        assert_int_equal(st.records, NREC - 1);
        recd_evlog_close(log);
        coll_t c = {0};
        iterate_ok(f->dir, 0, &c, NULL);
        check_records(&c, 0, NREC - 1);
        coll_free(&c);
    }
    free(seg);
}

/* ---- policies --------------------------------------------------------------------- */

static void test_policy_always(void **state)
{
    fx_t *f = *state;
    recd_evlog_opts_t o = opts_of(RECD_EVLOG_FSYNC_ALWAYS);
    recd_evlog_t *log = open_ok(f->dir, &o);
    char path[PATH_MAX];
    seg_file(path, sizeof path, f->dir, 0);
    int rfd = open(path, O_RDONLY);
    assert_true(rfd >= 0);
    for (unsigned i = 0; i < 5; i++) {
        uint64_t t = append_ids(log, i * 2, 2);
        recd_evlog_stats_t st;
        recd_evlog_stats(log, &st);
        assert_true(st.durable_offset >= t);
        assert_true(st.fsyncs >= i + 1);
        assert_true(st.last_fsync_wall > 0);
        /* the bytes are in the file, read through another descriptor */
        struct stat sb;
        assert_int_equal(fstat(rfd, &sb), 0);
        assert_true((uint64_t)sb.st_size >= t);
        uint8_t hdr[8];
        assert_int_equal(pread(rfd, hdr, 8, 0), 8);
        assert_int_equal(hdr[0], payload_len(0));
    }
    recd_err_t err = {0};
    assert_int_equal(recd_evlog_wait_durable(log, 1, 0, &err), 0);
    close(rfd);
    recd_evlog_close(log);
    coll_t c = {0};
    iterate_ok(f->dir, 0, &c, NULL);
    check_records(&c, 0, 10);
    coll_free(&c);
}

static void test_policy_interval(void **state)
{
    fx_t *f = *state;
    recd_evlog_opts_t o = opts_of(RECD_EVLOG_FSYNC_INTERVAL);
    o.interval_ms = 30;
    recd_evlog_t *log = open_ok(f->dir, &o);
    uint64_t t = 0;
    for (unsigned i = 0; i < 50; i++)
        t = append_ids(log, i, 1);
    recd_err_t err = {0};
    assert_int_equal(recd_evlog_wait_durable(log, t, 5000, &err), 0);
    recd_evlog_stats_t st;
    recd_evlog_stats(log, &st);
    assert_true(st.durable_offset >= t);
    assert_true(st.fsyncs >= 1);
    assert_true(st.fsyncs <= 50);
    /* a ticket never issued is refused rather than waited on forever */
    assert_int_equal(recd_evlog_wait_durable(log, st.next_offset + 1, 10, &err), RECD_EINVAL);
    /* flush: everything durable now */
    t = append_ids(log, 50, 1);
    assert_int_equal(recd_evlog_flush(log, &err), 0);
    recd_evlog_stats(log, &st);
    assert_true(st.durable_offset >= t);
    recd_evlog_close(log);
    coll_t c = {0};
    iterate_ok(f->dir, 0, &c, NULL);
    check_records(&c, 0, 51);
    coll_free(&c);
}

static void test_policy_never(void **state)
{
    fx_t *f = *state;
    recd_evlog_opts_t o = opts_of(RECD_EVLOG_FSYNC_NEVER);
    recd_evlog_t *log = open_ok(f->dir, &o);
    uint64_t t = append_ids(log, 0, 4);
    recd_err_t err = {0};
    assert_int_equal(recd_evlog_wait_durable(log, t, 5000, &err), 0);
    recd_evlog_stats_t st;
    recd_evlog_stats(log, &st);
    assert_true(st.written_offset >= t);
    assert_int_equal(st.fsyncs, 0);
    char path[PATH_MAX];
    seg_file(path, sizeof path, f->dir, 0);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal((uint64_t)sb.st_size, t);
    recd_evlog_close(log);
    coll_t c = {0};
    iterate_ok(f->dir, 0, &c, NULL);
    check_records(&c, 0, 4);
    coll_free(&c);
}

/* Concurrent appenders under ALWAYS share fsyncs (group commit). */
typedef struct thr_arg {
    recd_evlog_t *log;
    unsigned first, n;
} thr_arg_t;

static void *appender(void *p)
{
    thr_arg_t *a = p;
    for (unsigned i = 0; i < a->n; i++) {
        char buf[128];
        unsigned id = a->first + i;
        struct iovec iov = {buf, make_payload(buf, payload_len(id), id)};
        recd_err_t err;
        if (recd_evlog_append(a->log, &iov, 1, NULL, &err) != 0)
            return (void *)1;
    }
    return NULL;
}

static void test_group_commit_threads(void **state)
{
    fx_t *f = *state;
    recd_evlog_opts_t o = opts_of(RECD_EVLOG_FSYNC_ALWAYS);
    recd_evlog_t *log = open_ok(f->dir, &o);
    enum { T = 4, N = 40 };
    pthread_t th[T];
    thr_arg_t a[T];
    for (int i = 0; i < T; i++) {
        a[i] = (thr_arg_t){log, (unsigned)(i * 1000), N};
        assert_int_equal(pthread_create(&th[i], NULL, appender, &a[i]), 0);
    }
    for (int i = 0; i < T; i++) {
        void *r;
        pthread_join(th[i], &r);
        assert_null(r);
    }
    recd_evlog_stats_t st;
    recd_evlog_stats(log, &st);
    assert_int_equal(st.records, T * N);
    assert_int_equal(st.durable_offset, st.next_offset);
    print_message("group commit: %d appends (ALWAYS, %d threads) took %llu fsyncs\n", T * N, T,
                  (unsigned long long)st.fsyncs);
    recd_evlog_close(log);
    /* every record exactly once, each thread's in its order */
    coll_t c = {0};
    iterate_ok(f->dir, 0, &c, NULL);
    assert_int_equal(c.n, T * N);
    unsigned next[T] = {0};
    for (size_t i = 0; i < c.n; i++) {
        unsigned id;
        assert_int_equal(sscanf(c.data[i], "ev-%u-", &id), 1);
        unsigned t = id / 1000;
        assert_true(t < T);
        assert_int_equal(id % 1000, next[t]);
        next[t]++;
    }
    coll_free(&c);
}

/* ---- queue, bad input -------------------------------------------------------------- */

static void test_queue_full(void **state)
{
    fx_t *f = *state;
    recd_evlog_opts_t o = opts_of(RECD_EVLOG_FSYNC_INTERVAL);
    o.max_record = 100;
    o.queue_bytes = 200;
    recd_evlog_t *log = open_ok(f->dir, &o);
    recd_evlog_test_pause(log, 1);
    char a[92], b[92];
    memset(a, 'a', sizeof a);
    memset(b, 'b', sizeof b);
    struct iovec ia = {a, sizeof a}, ib[2] = {{b, sizeof b}, {b, 10}};
    recd_err_t err = {0};
    uint64_t ta = 0, tb = 0;
    assert_int_equal(recd_evlog_append(log, &ia, 1, &ta, &err), 0);          /* 100 bytes queued */
    assert_int_equal(recd_evlog_append(log, ib, 2, &tb, &err), RECD_EAGAIN); /* +118 > 200 */
    assert_non_null(strstr(err.msg, "queue full"));
    recd_evlog_stats_t st;
    recd_evlog_stats(log, &st);
    assert_int_equal(st.rejected_full, 1);
    assert_int_equal(st.queue_batches, 1);
    assert_int_equal(st.queue_bytes, 100);
    assert_int_equal(st.next_offset, 100);
    recd_evlog_test_pause(log, 0);
    assert_int_equal(recd_evlog_flush(log, &err), 0);
    /* nothing of the refused batch reached the file */
    char path[PATH_MAX];
    seg_file(path, sizeof path, f->dir, 0);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_size, 100);
    /* with room again, it goes through */
    assert_int_equal(recd_evlog_append(log, ib, 2, &tb, &err), 0);
    assert_int_equal(tb, 218);
    recd_evlog_close(log);
    recd_evlog_iter_stats_t ist;
    assert_int_equal(recd_evlog_verify(f->dir, 100, &ist, &err), 0);
    assert_int_equal(ist.records, 3);
}

static void test_bad_input(void **state)
{
    fx_t *f = *state;
    recd_evlog_opts_t o = opts_of(RECD_EVLOG_FSYNC_NEVER);
    recd_evlog_t *log = NULL;
    recd_err_t err = {0};
    /* options */
    o.interval_ms = 0;
    o.fsync = RECD_EVLOG_FSYNC_INTERVAL;
    assert_int_equal(recd_evlog_open(f->dir, &o, &log, &err), RECD_EINVAL);
    assert_non_null(strstr(err.msg, "interval_ms"));
    o = opts_of(RECD_EVLOG_FSYNC_NEVER);
    o.max_record = 0;
    assert_int_equal(recd_evlog_open(f->dir, &o, &log, &err), RECD_EINVAL);
    assert_non_null(strstr(err.msg, "max_record"));
    o = opts_of(RECD_EVLOG_FSYNC_NEVER);
    o.queue_bytes = 100;
    assert_int_equal(recd_evlog_open(f->dir, &o, &log, &err), RECD_EINVAL);
    assert_non_null(strstr(err.msg, "queue_bytes"));
    o = opts_of(RECD_EVLOG_FSYNC_NEVER);
    o.segment_bytes = 1;
    assert_int_equal(recd_evlog_open(f->dir, &o, &log, &err), RECD_EINVAL);
    o = opts_of(RECD_EVLOG_FSYNC_NEVER);
    o.fsync = (recd_evlog_fsync_t)7;
    assert_int_equal(recd_evlog_open(f->dir, &o, &log, &err), RECD_EINVAL);
    assert_int_equal(recd_evlog_open(NULL, NULL, &log, &err), RECD_EINVAL);
    assert_null(log);
    assert_int_equal(recd_evlog_fsync_parse("always"), RECD_EVLOG_FSYNC_ALWAYS);
    assert_int_equal(recd_evlog_fsync_parse("interval_ms"), RECD_EVLOG_FSYNC_INTERVAL);
    assert_int_equal(recd_evlog_fsync_parse("never"), RECD_EVLOG_FSYNC_NEVER);
    assert_int_equal(recd_evlog_fsync_parse("sometimes"), -1);
    assert_string_equal(recd_evlog_fsync_name(RECD_EVLOG_FSYNC_ALWAYS), "always");

    /* records */
    o = opts_of(RECD_EVLOG_FSYNC_NEVER);
    o.max_record = 64;
    o.queue_bytes = 1000;
    log = open_ok(f->dir, &o);
    char big[65] = {0};
    struct iovec ok = {big, 64}, over = {big, 65}, empty = {big, 0};
    assert_int_equal(recd_evlog_append(log, &ok, 0, NULL, &err), RECD_EINVAL);
    assert_int_equal(recd_evlog_append(log, &over, 1, NULL, &err), RECD_EINVAL);
    assert_non_null(strstr(err.msg, "max_record"));
    struct iovec two[2] = {ok, empty};
    assert_int_equal(recd_evlog_append(log, two, 2, NULL, &err), RECD_EINVAL);
    assert_non_null(strstr(err.msg, "record 1"));
    struct iovec many[20];
    for (int i = 0; i < 20; i++)
        many[i] = ok;
    assert_int_equal(recd_evlog_append(log, many, 20, NULL, &err), RECD_EINVAL);
    assert_non_null(strstr(err.msg, "queue bound"));
    recd_evlog_stats_t st;
    recd_evlog_stats(log, &st);
    assert_int_equal(st.next_offset, 0);
    /* a second writer on the same directory is refused */
    recd_evlog_t *two_log = NULL;
    assert_int_equal(recd_evlog_open(f->dir, &o, &two_log, &err), RECD_EAGAIN);
    assert_null(two_log);
    assert_non_null(strstr(err.msg, "in use"));
    recd_evlog_close(log);
    recd_evlog_close(NULL);
}

/* ---- rotation and retention ------------------------------------------------------- */

static void test_rotation_retention(void **state)
{
    fx_t *f = *state;
    recd_evlog_opts_t o = opts_of(RECD_EVLOG_FSYNC_NEVER);
    o.segment_bytes = 256;
    recd_evlog_t *log = open_ok(f->dir, &o);
    /* record id 3 has payload 12 + 21 = 33 bytes; use fixed 40-byte payloads */
    char p[40];
    uint64_t t = 0;
    for (unsigned i = 0; i < 30; i++) {
        memset(p, 'A' + (int)(i % 26), sizeof p);
        struct iovec iov = {p, sizeof p};
        recd_err_t err = {0};
        assert_int_equal(recd_evlog_append(log, &iov, 1, &t, &err), 0);
    }
    recd_err_t err = {0};
    assert_int_equal(recd_evlog_flush(log, &err), 0);
    recd_evlog_stats_t st;
    recd_evlog_stats(log, &st);
    /* 48 framed bytes per record, 5 per 256-byte segment: 6 segments */
    assert_int_equal(st.segments, 6);
    assert_int_equal(st.bytes, 30 * 48);
    recd_evlog_close(log);
    assert_int_equal(count_segments(f->dir), 6);
    for (uint64_t base = 0; base < 30 * 48; base += 240) {
        char path[PATH_MAX];
        seg_file(path, sizeof path, f->dir, base);
        struct stat sb;
        assert_int_equal(stat(path, &sb), 0);
        assert_int_equal(sb.st_size, 240);
    }
    coll_t c = {0};
    recd_evlog_iter_stats_t ist;
    iterate_ok(f->dir, 0, &c, &ist);
    assert_int_equal(c.n, 30);
    assert_int_equal(ist.segments, 6);
    for (size_t i = 0; i < c.n; i++) {
        assert_int_equal(c.off[i], i * 48);
        assert_int_equal(c.data[i][0], 'A' + (int)(i % 26));
    }
    coll_free(&c);

    /* retention by total size at open: 1440 bytes -> at most 600 */
    o.retain_bytes = 600;
    log = open_ok(f->dir, &o);
    recd_evlog_stats(log, &st);
    assert_int_equal(st.segments, 2);
    assert_int_equal(st.segments_deleted, 4);
    assert_int_equal(st.first_offset, 960);
    assert_int_equal(st.next_offset, 1440);
    /* and while running: every rotation re-applies it, the active one stays */
    for (unsigned i = 0; i < 20; i++) {
        struct iovec iov = {p, sizeof p};
        assert_int_equal(recd_evlog_append(log, &iov, 1, &t, &err), 0);
    }
    assert_int_equal(recd_evlog_flush(log, &err), 0);
    recd_evlog_stats(log, &st);
    assert_true(st.bytes <= 600);
    assert_int_equal(st.next_offset, 1440 + 20 * 48);
    recd_evlog_close(log);
    iterate_ok(f->dir, 0, &c, &ist);
    assert_true(c.n >= 5 && c.n <= 12);
    assert_int_equal(c.off[c.n - 1], 1440 + 19 * 48); /* newest kept */
    coll_free(&c);

    /* retain_bytes smaller than one segment: only the active one survives */
    o.retain_bytes = 1;
    log = open_ok(f->dir, &o);
    recd_evlog_stats(log, &st);
    assert_int_equal(st.segments, 1);
    recd_evlog_close(log);
    assert_int_equal(count_segments(f->dir), 1);

    /* retention by age: backdate every segment but the active one */
    o.retain_bytes = 0;
    log = open_ok(f->dir, &o);
    for (unsigned i = 0; i < 12; i++) {
        struct iovec iov = {p, sizeof p};
        assert_int_equal(recd_evlog_append(log, &iov, 1, &t, &err), 0);
    }
    recd_evlog_close(log);
    int before = count_segments(f->dir);
    assert_true(before >= 3);
    char cmd[PATH_MAX + 128];
    snprintf(cmd, sizeof cmd,
             "cd %s && ls | grep '\\.seg$' | sort | head -n -1 | xargs touch -d '2 days ago'",
             f->dir);
    assert_int_equal(system(cmd), 0);
    o.retain_age_s = 3600;
    log = open_ok(f->dir, &o);
    recd_evlog_stats(log, &st);
    assert_int_equal(st.segments, 1);
    assert_int_equal(st.segments_deleted, (uint64_t)before - 1);
    recd_evlog_close(log);
}

static void test_corrupt_tail_of_non_last_segment(void **state)
{
    fx_t *f = *state;
    recd_evlog_opts_t o = opts_of(RECD_EVLOG_FSYNC_NEVER);
    o.segment_bytes = 256;
    recd_evlog_t *log = open_ok(f->dir, &o);
    char p[40];
    memset(p, 'x', sizeof p);
    for (unsigned i = 0; i < 12; i++) {
        struct iovec iov = {p, sizeof p};
        recd_err_t err = {0};
        assert_int_equal(recd_evlog_append(log, &iov, 1, NULL, &err), 0);
    }
    recd_evlog_close(log);
    /* damage the last record of the first segment: open does not read it */
    char path[PATH_MAX];
    seg_file(path, sizeof path, f->dir, 0);
    size_t len;
    uint8_t *b = slurp(path, &len);
    assert_int_equal(len, 240);
    b[239] ^= 0xFF;
    write_file(path, b, len);
    free(b);
    log = open_ok(f->dir, &o);
    recd_evlog_close(log);
    recd_evlog_iter_stats_t st;
    recd_err_t err = {0};
    assert_int_equal(recd_evlog_verify(f->dir, 0, &st, &err), RECD_EIO);
    assert_non_null(strstr(err.msg, path));
    assert_non_null(strstr(err.msg, "byte offset 192"));
    coll_t c = {0};
    iterate_ok(f->dir, 1, &c, &st);
    assert_int_equal(c.n, 11);
    assert_int_equal(st.corrupt_regions, 1);
    assert_int_equal(st.corrupt_bytes, 48);
    coll_free(&c);
}

static void test_from_offset_and_gap(void **state)
{
    fx_t *f = *state;
    recd_evlog_opts_t o = opts_of(RECD_EVLOG_FSYNC_NEVER);
    o.segment_bytes = 256;
    recd_evlog_t *log = open_ok(f->dir, &o);
    char p[40];
    for (unsigned i = 0; i < 20; i++) {
        memset(p, 'a' + (int)i, sizeof p);
        struct iovec iov = {p, sizeof p};
        recd_err_t err = {0};
        assert_int_equal(recd_evlog_append(log, &iov, 1, NULL, &err), 0);
    }
    recd_evlog_close(log);
    /* segments at 0, 240, 480, 720; from 500 -> records at 528, 576, ... */
    coll_t c = {0};
    recd_evlog_iter_stats_t st;
    recd_err_t err = {0};
    assert_int_equal(recd_evlog_iterate(f->dir, 500, 0, 0, coll_cb, &c, &st, &err), 0);
    assert_int_equal(c.n, 9);
    assert_int_equal(c.off[0], 528);
    assert_int_equal(c.data[0][0], 'a' + 11);
    assert_int_equal(st.segments, 2); /* 0 and 240 not read */
    coll_free(&c);
    /* from a record boundary, and past the end */
    assert_int_equal(recd_evlog_iterate(f->dir, 480, 0, 0, coll_cb, &c, NULL, &err), 0);
    assert_int_equal(c.n, 10);
    assert_int_equal(c.off[0], 480);
    coll_free(&c);
    assert_int_equal(recd_evlog_iterate(f->dir, 1 << 20, 0, 0, coll_cb, &c, NULL, &err), 0);
    assert_int_equal(c.n, 0);
    coll_free(&c);

    /* a missing middle segment is a gap: refused, or skipped and counted */
    char path[PATH_MAX];
    seg_file(path, sizeof path, f->dir, 240);
    assert_int_equal(unlink(path), 0);
    assert_int_equal(recd_evlog_verify(f->dir, 0, &st, &err), RECD_EIO);
    assert_non_null(strstr(err.msg, "00000000000000000480.seg starts at log offset 480"));
    assert_non_null(strstr(err.msg, "ends at 240"));
    assert_int_equal(recd_evlog_iterate(f->dir, 0, 0, 1, coll_cb, &c, &st, &err), 0);
    assert_int_equal(c.n, 15);
    assert_int_equal(st.corrupt_regions, 1);
    coll_free(&c);
}

/* ---- failures ------------------------------------------------------------------------ */

static void test_write_failure(void **state)
{
    fx_t *f = *state;
    recd_evlog_opts_t o = opts_of(RECD_EVLOG_FSYNC_INTERVAL);
    recd_evlog_t *log = open_ok(f->dir, &o);
    uint64_t t = 0;
    for (unsigned i = 0; i < 10; i++)
        t = append_ids(log, i, 1);
    recd_err_t err = {0};
    assert_int_equal(recd_evlog_wait_durable(log, t, 5000, &err), 0);

    recd_evlog_test_inject(log, EIO, 0);
    char buf[128];
    struct iovec iov = {buf, make_payload(buf, payload_len(10), 10)};
    uint64_t t2 = 0;
    assert_int_equal(recd_evlog_append(log, &iov, 1, &t2, &err), 0); /* queued */
    assert_int_equal(recd_evlog_wait_durable(log, t2, 5000, &err), RECD_EIO);
    assert_non_null(strstr(err.msg, "write to"));
    recd_evlog_stats_t st;
    recd_evlog_stats(log, &st);
    assert_int_equal(st.failed, 1);
    assert_int_equal(st.failed_errno, EIO);
    assert_non_null(strstr(st.failed_msg, "Input/output error"));
    assert_int_equal(st.durable_offset, t);
    /* every later append fails the same way, nothing is retried */
    assert_int_equal(recd_evlog_append(log, &iov, 1, NULL, &err), RECD_EIO);
    assert_non_null(strstr(err.msg, "event log failed"));
    assert_int_equal(recd_evlog_flush(log, &err), RECD_EIO);
    /* an earlier acknowledged ticket still reads as durable */
    assert_int_equal(recd_evlog_wait_durable(log, t, 0, &err), 0);
    recd_evlog_close(log);

    coll_t c = {0};
    iterate_ok(f->dir, 0, &c, NULL);
    check_records(&c, 0, 10);
    coll_free(&c);
}

static void test_fsync_failure_always(void **state)
{
    fx_t *f = *state;
    recd_evlog_opts_t o = opts_of(RECD_EVLOG_FSYNC_ALWAYS);
    recd_evlog_t *log = open_ok(f->dir, &o);
    for (unsigned i = 0; i < 4; i++)
        append_ids(log, i, 1);
    recd_evlog_test_inject(log, 0, ENOSPC);
    char buf[128];
    struct iovec iov = {buf, make_payload(buf, payload_len(4), 4)};
    recd_err_t err = {0};
    assert_int_equal(recd_evlog_append(log, &iov, 1, NULL, &err), RECD_EIO);
    assert_non_null(strstr(err.msg, "fsync"));
    recd_evlog_stats_t st;
    recd_evlog_stats(log, &st);
    assert_int_equal(st.failed, 1);
    assert_int_equal(st.failed_errno, ENOSPC);
    assert_int_equal(recd_evlog_append(log, &iov, 1, NULL, &err), RECD_EIO);
    recd_evlog_close(log);
    /* the four acknowledged records survive (the unacknowledged one may) */
    coll_t c = {0};
    iterate_ok(f->dir, 0, &c, NULL);
    assert_true(c.n >= 4 && c.n <= 5);
    coll_t first = c;
    first.n = 4;
    check_records(&first, 0, 4);
    coll_free(&c);
    /* reopening clears the failed state (recovery runs again) */
    log = open_ok(f->dir, &o);
    append_ids(log, 50, 1);
    recd_evlog_stats(log, &st);
    assert_int_equal(st.failed, 0);
    recd_evlog_close(log);
}

/* append_nowait returns before the fsync even under ALWAYS; on_ack fires as
 * the acknowledged offset advances and on failure, and recd_evlog_acked
 * reaches the ticket (or reports the failure). */
typedef struct ack_ctx {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    unsigned calls;
} ack_ctx_t;

static void on_ack_cb(void *p)
{
    ack_ctx_t *a = p;
    pthread_mutex_lock(&a->mu);
    a->calls++;
    pthread_cond_broadcast(&a->cv);
    pthread_mutex_unlock(&a->mu);
}

/* Wait until the log has acknowledged up to ticket (ticket 0: until it has
 * failed). on_ack runs with the log's lock held, so a.mu must never be held
 * while calling into the log: take a snapshot of the call count, look at
 * the log, and sleep only until the count moves past the snapshot. */
static void wait_acked(ack_ctx_t *a, recd_evlog_t *log, uint64_t ticket)
{
    for (;;) {
        pthread_mutex_lock(&a->mu);
        unsigned seen = a->calls;
        pthread_mutex_unlock(&a->mu);
        int failed = 0;
        uint64_t acked = recd_evlog_acked(log, &failed);
        if (ticket ? acked >= ticket : failed)
            return;
        pthread_mutex_lock(&a->mu);
        while (a->calls == seen)
            pthread_cond_wait(&a->cv, &a->mu);
        pthread_mutex_unlock(&a->mu);
    }
}

static void test_append_nowait_on_ack(void **state)
{
    fx_t *f = *state;
    ack_ctx_t a = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};
    recd_evlog_opts_t o = opts_of(RECD_EVLOG_FSYNC_ALWAYS);
    o.on_ack = on_ack_cb;
    o.on_ack_ctx = &a;
    recd_evlog_t *log = open_ok(f->dir, &o);
    /* paused writer: nowait still returns at once, nothing acknowledged */
    recd_evlog_test_pause(log, 1);
    char buf[128];
    struct iovec iov = {buf, make_payload(buf, payload_len(0), 0)};
    uint64_t t = 0;
    recd_err_t err = {0};
    assert_int_equal(recd_evlog_append_nowait(log, &iov, 1, &t, &err), 0);
    assert_int_equal(t, RECD_EVLOG_HEADER + payload_len(0));
    int failed = -1;
    assert_true(recd_evlog_acked(log, &failed) < t);
    assert_int_equal(failed, 0);
    recd_evlog_test_pause(log, 0);
    wait_acked(&a, log, t);
    pthread_mutex_lock(&a.mu);
    assert_true(a.calls >= 1);
    pthread_mutex_unlock(&a.mu);
    /* a failed fsync: on_ack fires and acked reports the failure */
    recd_evlog_test_inject(log, 0, EIO);
    iov.iov_len = make_payload(buf, payload_len(1), 1);
    assert_int_equal(recd_evlog_append_nowait(log, &iov, 1, &t, &err), 0);
    wait_acked(&a, log, 0);
    recd_evlog_acked(log, &failed);
    assert_int_equal(failed, 1);
    assert_true(recd_evlog_acked(log, NULL) < t);
    assert_int_equal(recd_evlog_append_nowait(log, &iov, 1, &t, &err), RECD_EIO);
    recd_evlog_close(log);
}

static void test_rotation_failure(void **state)
{
    fx_t *f = *state;
    /* NEVER: the only fsync is the one before rotating, make it fail */
    recd_evlog_opts_t o = opts_of(RECD_EVLOG_FSYNC_NEVER);
    o.segment_bytes = 256;
    recd_evlog_t *log = open_ok(f->dir, &o);
    char p[40];
    memset(p, 'r', sizeof p);
    struct iovec iov = {p, sizeof p};
    recd_err_t err = {0};
    uint64_t t = 0;
    for (unsigned i = 0; i < 5; i++)
        assert_int_equal(recd_evlog_append(log, &iov, 1, &t, &err), 0);
    assert_int_equal(recd_evlog_wait_durable(log, t, 5000, &err), 0);
    recd_evlog_test_inject(log, 0, EIO);
    assert_int_equal(recd_evlog_append(log, &iov, 1, &t, &err), 0);
    assert_int_equal(recd_evlog_wait_durable(log, t, 5000, &err), RECD_EIO);
    assert_non_null(strstr(err.msg, "fsync of"));
    recd_evlog_stats_t st;
    recd_evlog_stats(log, &st);
    assert_int_equal(st.failed, 1);
    assert_int_equal(st.failed_errno, EIO);
    assert_int_equal(st.segments, 1); /* no new segment after the failed fsync */
    recd_evlog_close(log);
    assert_int_equal(count_segments(f->dir), 1);
    recd_evlog_iter_stats_t ist;
    assert_int_equal(recd_evlog_verify(f->dir, 0, &ist, &err), 0);
    assert_int_equal(ist.records, 5);
}

/* ---- throughput (printed, not asserted) -------------------------------------------- */

typedef struct tp_arg {
    recd_evlog_t *log;
    uint64_t stop_ns;
    size_t batch;
    int pipelined; /* wait for durability once at the end, not per append */
    uint64_t events;
} tp_arg_t;

static void *tp_thread(void *p)
{
    tp_arg_t *a = p;
    char buf[100];
    memset(buf, 'e', sizeof buf);
    struct iovec iov[100];
    for (size_t i = 0; i < a->batch; i++)
        iov[i] = (struct iovec){buf, sizeof buf};
    uint64_t last = 0;
    while (recd_time_mono_ns() < a->stop_ns) {
        recd_err_t err;
        uint64_t t;
        int rc = recd_evlog_append(a->log, iov, a->batch, &t, &err);
        if (rc == RECD_EAGAIN)
            continue;
        if (rc)
            return (void *)1;
        if (!a->pipelined && recd_evlog_wait_durable(a->log, t, -1, &err) != 0)
            return (void *)1;
        a->events += a->batch;
        last = t;
    }
    if (a->pipelined && last) {
        recd_err_t err;
        if (recd_evlog_wait_durable(a->log, last, -1, &err) != 0)
            return (void *)1;
    }
    return NULL;
}

static void measure(fx_t *f, recd_evlog_fsync_t pol, size_t batch, int threads, int pipelined)
{
    nftw(f->dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    recd_evlog_opts_t o = opts_of(pol);
    o.interval_ms = 10;
    recd_evlog_t *log = open_ok(f->dir, &o);
    tp_arg_t a[8];
    pthread_t th[8];
    uint64_t t0 = recd_time_mono_ns();
    for (int i = 0; i < threads; i++) {
        a[i] = (tp_arg_t){log, t0 + 250000000ull, batch, pipelined, 0};
        assert_int_equal(pthread_create(&th[i], NULL, tp_thread, &a[i]), 0);
    }
    uint64_t events = 0;
    for (int i = 0; i < threads; i++) {
        void *r;
        pthread_join(th[i], &r);
        assert_null(r);
        events += a[i].events;
    }
    double secs = (double)(recd_time_mono_ns() - t0) / 1e9;
    recd_evlog_stats_t st;
    recd_evlog_stats(log, &st);
    print_message("throughput: %-11s batch %3zu, %d threads, %s: %9.0f acknowledged events/s, "
                  "%llu fsyncs in %.2f s\n",
                  recd_evlog_fsync_name(pol), batch, threads,
                  pipelined ? "wait at end " : "wait each  ", (double)events / secs,
                  (unsigned long long)st.fsyncs, secs);
    assert_true(events > 0);
    recd_evlog_close(log);
}

static void test_throughput(void **state)
{
    fx_t *f = *state;
    measure(f, RECD_EVLOG_FSYNC_ALWAYS, 1, 1, 0);
    measure(f, RECD_EVLOG_FSYNC_ALWAYS, 1, 4, 0);
    measure(f, RECD_EVLOG_FSYNC_ALWAYS, 100, 1, 0);
    measure(f, RECD_EVLOG_FSYNC_INTERVAL, 1, 4, 0);
    measure(f, RECD_EVLOG_FSYNC_INTERVAL, 100, 1, 0);
    measure(f, RECD_EVLOG_FSYNC_INTERVAL, 1, 1, 1);
    measure(f, RECD_EVLOG_FSYNC_INTERVAL, 100, 1, 1);
    measure(f, RECD_EVLOG_FSYNC_NEVER, 1, 1, 1);
}

int main(void)
{
    recd_log_set_level(RECD_LOG_ERROR); /* recovery warnings are expected here */
    /* EVLOG_TEST_FILTER=pattern runs a subset (e.g. under valgrind --tool=helgrind) */
    const char *filter = getenv("EVLOG_TEST_FILTER");
    if (filter && *filter)
        cmocka_set_test_filter(filter);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32c_vectors),
        cmocka_unit_test(test_crc32c_hw_matches_sw),
        cmocka_unit_test_setup_teardown(test_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_iterate_stop_and_missing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncate_every_offset, setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_tail_seen_by_reader, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flip_middle_record, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flip_last_record_is_torn_tail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_policy_always, setup, teardown),
        cmocka_unit_test_setup_teardown(test_policy_interval, setup, teardown),
        cmocka_unit_test_setup_teardown(test_policy_never, setup, teardown),
        cmocka_unit_test_setup_teardown(test_group_commit_threads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_full, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_input, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rotation_retention, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_tail_of_non_last_segment, setup, teardown),
        cmocka_unit_test_setup_teardown(test_from_offset_and_gap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fsync_failure_always, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rotation_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_append_nowait_on_ack, setup, teardown),
        cmocka_unit_test_setup_teardown(test_throughput, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
