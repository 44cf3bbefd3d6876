/*
 * The durable event log: segment files, recovery, the writer thread with
 * group commit, rotation, retention and the readers. Format, recovery rules,
 * durability per policy and the locking are described in
 * include/recd/events.h.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "recd/core.h"
#include "recd/events.h"

#define SEG_NAME_DIGITS 20
#define SEG_SUFFIX ".seg"
#define WRITE_IOV 64

/* ---- small helpers ----------------------------------------------------------- */

static void put_le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static uint32_t get_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void seg_path(char *buf, size_t cap, const char *dir, uint64_t base)
{
    snprintf(buf, cap, "%s/%020llu" SEG_SUFFIX, dir, (unsigned long long)base);
}

/* Read the whole file into a malloc'd buffer (*buf NULL when empty).
 * Returns 0, or -1 with errno set. */
static int read_file(const char *path, uint8_t **buf, size_t *len)
{
    *buf = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    size_t n = (size_t)sb.st_size;
    if (n == 0) {
        close(fd);
        return 0;
    }
    uint8_t *b = malloc(n);
    if (!b) {
        close(fd);
        errno = ENOMEM;
        return -1;
    }
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(fd, b + got, n - got, (off_t)got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            free(b);
            close(fd);
            errno = e;
            return -1;
        }
        if (r == 0)
            break; /* shrank meanwhile: keep what we have */
        got += (size_t)r;
    }
    close(fd);
    *buf = b;
    *len = got;
    return 0;
}

/* ---- segment listing -------------------------------------------------------------- */

typedef struct seg {
    uint64_t base;
    uint64_t size;
    time_t mtime;
} seg_t;

static int seg_cmp(const void *a, const void *b)
{
    uint64_t x = ((const seg_t *)a)->base, y = ((const seg_t *)b)->base;
    return x < y ? -1 : x > y;
}

/* Parse "<20 digits>.seg"; 1 on success. */
static int seg_name_parse(const char *name, uint64_t *base)
{
    if (strlen(name) != SEG_NAME_DIGITS + strlen(SEG_SUFFIX))
        return 0;
    if (strcmp(name + SEG_NAME_DIGITS, SEG_SUFFIX) != 0)
        return 0;
    uint64_t v = 0;
    for (int i = 0; i < SEG_NAME_DIGITS; i++) {
        if (name[i] < '0' || name[i] > '9')
            return 0;
        uint64_t d = (uint64_t)(name[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return 0;
        v = v * 10 + d;
    }
    *base = v;
    return 1;
}

/* Sorted segments of dir with sizes and mtimes (a file that vanished between
 * readdir and stat is left out). */
static int list_segments(const char *dir, seg_t **out, size_t *nout, recd_err_t *err)
{
    *out = NULL;
    *nout = 0;
    DIR *d = opendir(dir);
    if (!d)
        return recd_err_set(err, errno == ENOENT ? RECD_ENOENT : RECD_EIO,
                            "event log: cannot open directory %s: %s", dir, strerror(errno));
    seg_t *v = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    int rc = 0;
    while ((e = readdir(d)) != NULL) {
        uint64_t base;
        if (!seg_name_parse(e->d_name, &base))
            continue;
        char path[PATH_MAX];
        seg_path(path, sizeof path, dir, base);
        struct stat sb;
        if (stat(path, &sb) != 0) {
            if (errno == ENOENT)
                continue;
            rc = recd_err_set(err, RECD_EIO, "event log: stat %s: %s", path, strerror(errno));
            break;
        }
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 16;
            seg_t *nv = realloc(v, nc * sizeof *nv);
            if (!nv) {
                rc = recd_err_set(err, RECD_ENOMEM, "event log: out of memory");
                break;
            }
            v = nv;
            cap = nc;
        }
        v[n].base = base;
        v[n].size = (uint64_t)sb.st_size;
        v[n].mtime = sb.st_mtime;
        n++;
    }
    closedir(d);
    if (rc) {
        free(v);
        return rc;
    }
    if (n)
        qsort(v, n, sizeof *v, seg_cmp);
    *out = v;
    *nout = n;
    return 0;
}

/* ---- scanning ----------------------------------------------------------------- */

/* 1 if a complete record with a matching CRC starts at p; its payload length
 * in *n. */
static int rec_ok(const uint8_t *b, size_t len, size_t p, uint32_t maxrec, uint32_t *n)
{
    if (len - p < RECD_EVLOG_HEADER)
        return 0;
    uint32_t l = get_le32(b + p);
    if (l == 0 || l > maxrec || l > len - p - RECD_EVLOG_HEADER)
        return 0;
    if (recd_crc32c(0, b + p + RECD_EVLOG_HEADER, l) != get_le32(b + p + 4))
        return 0;
    *n = l;
    return 1;
}

typedef struct scan {
    size_t tail;              /* bytes of torn/corrupt tail */
    uint64_t records;         /* valid records */
    uint64_t corrupt_regions; /* skipped mid-segment regions */
    uint64_t corrupt_bytes;
} scan_t;

/* Walk the records of one segment (contents b[0..len), log offset base),
 * resynchronising after damage as described in events.h. A mid-segment
 * damaged region is an error unless skip. Returns 0, RECD_EIO, or the
 * callback's non-zero value. */
static int scan_segment(const char *path, const uint8_t *b, size_t len, uint64_t base,
                        uint64_t from, uint32_t maxrec, int skip, recd_evlog_cb cb, void *ctx,
                        scan_t *s, recd_err_t *err)
{
    memset(s, 0, sizeof *s);
    size_t p = 0;
    while (p < len) {
        uint32_t n;
        if (rec_ok(b, len, p, maxrec, &n)) {
            if (base + p >= from) {
                if (cb) {
                    int rc = cb(ctx, base + p, b + p + RECD_EVLOG_HEADER, n);
                    if (rc)
                        return rc;
                }
                s->records++;
            }
            p += RECD_EVLOG_HEADER + n;
            continue;
        }
        size_t q = p + 1;
        while (q < len && !rec_ok(b, len, q, maxrec, &n))
            q++;
        if (q >= len) {
            s->tail = len - p;
            break;
        }
        if (!skip)
            return recd_err_set(err, RECD_EIO,
                                "event log: %s: corrupt record at byte offset %zu (valid records "
                                "resume at byte offset %zu); refusing to continue (skip_corrupt "
                                "skips it)",
                                path, p, q);
        s->corrupt_regions++;
        s->corrupt_bytes += q - p;
        p = q;
    }
    return 0;
}

/* ---- readers ----------------------------------------------------------------- */

int recd_evlog_iterate(const char *dir, uint64_t from_offset, uint32_t max_record, int skip_corrupt,
                       recd_evlog_cb cb, void *ctx, recd_evlog_iter_stats_t *st, recd_err_t *err)
{
    recd_evlog_iter_stats_t dummy;
    if (!st)
        st = &dummy;
    memset(st, 0, sizeof *st);
    if (!dir)
        return recd_err_set(err, RECD_EINVAL, "event log: no directory");
    if (max_record == 0)
        max_record = RECD_EVLOG_MAX_RECORD;
    seg_t *segs;
    size_t nseg;
    int rc = list_segments(dir, &segs, &nseg, err);
    if (rc)
        return rc;
    int have_prev = 0;
    uint64_t prev_end = 0;
    for (size_t i = 0; i < nseg && rc == 0; i++) {
        if (i + 1 < nseg && segs[i + 1].base <= from_offset)
            continue; /* wholly before from_offset: not read */
        char path[PATH_MAX];
        seg_path(path, sizeof path, dir, segs[i].base);
        uint8_t *b;
        size_t len;
        if (read_file(path, &b, &len) != 0) {
            if (errno == ENOENT) {
                have_prev = 0; /* deleted by retention meanwhile */
                continue;
            }
            rc = recd_err_set(err, RECD_EIO, "event log: read %s: %s", path, strerror(errno));
            break;
        }
        if (have_prev && segs[i].base != prev_end) {
            if (!skip_corrupt) {
                free(b);
                rc = recd_err_set(err, RECD_EIO,
                                  "event log: %s starts at log offset %llu but the previous "
                                  "segment ends at %llu (a segment is missing or was truncated)",
                                  path, (unsigned long long)segs[i].base,
                                  (unsigned long long)prev_end);
                break;
            }
            st->corrupt_regions++;
        }
        have_prev = 1;
        prev_end = segs[i].base + len;
        st->segments++;
        st->bytes += len;
        scan_t s;
        rc = scan_segment(path, b, len, segs[i].base, from_offset, max_record, skip_corrupt, cb,
                          ctx, &s, err);
        free(b);
        st->records += s.records;
        st->corrupt_regions += s.corrupt_regions;
        st->corrupt_bytes += s.corrupt_bytes;
        if (rc)
            break;
        if (s.tail && i + 1 < nseg) {
            if (!skip_corrupt) {
                rc = recd_err_set(err, RECD_EIO,
                                  "event log: %s: corrupt or truncated record at byte offset %zu "
                                  "at the end of a segment that is not the last",
                                  path, len - s.tail);
                break;
            }
            st->corrupt_regions++;
            st->corrupt_bytes += s.tail;
        } else if (s.tail) {
            st->tail_bytes += s.tail;
        }
    }
    free(segs);
    return rc;
}

int recd_evlog_verify(const char *dir, uint32_t max_record, recd_evlog_iter_stats_t *st,
                      recd_err_t *err)
{
    return recd_evlog_iterate(dir, 0, max_record, 0, NULL, NULL, st, err);
}

/* ---- options ---------------------------------------------------------------------- */

void recd_evlog_opts_default(recd_evlog_opts_t *o)
{
    memset(o, 0, sizeof *o);
    o->fsync = RECD_EVLOG_FSYNC_INTERVAL;
    o->interval_ms = 100;
    o->segment_bytes = 64ull << 20;
    o->max_record = RECD_EVLOG_MAX_RECORD;
    o->queue_bytes = 16ull << 20;
}

int recd_evlog_fsync_parse(const char *s)
{
    if (!s)
        return -1;
    if (strcmp(s, "always") == 0)
        return RECD_EVLOG_FSYNC_ALWAYS;
    if (strcmp(s, "interval_ms") == 0 || strcmp(s, "interval") == 0)
        return RECD_EVLOG_FSYNC_INTERVAL;
    if (strcmp(s, "never") == 0)
        return RECD_EVLOG_FSYNC_NEVER;
    return -1;
}

const char *recd_evlog_fsync_name(recd_evlog_fsync_t p)
{
    switch (p) {
    case RECD_EVLOG_FSYNC_ALWAYS: return "always";
    case RECD_EVLOG_FSYNC_INTERVAL: return "interval_ms";
    case RECD_EVLOG_FSYNC_NEVER: return "never";
    }
    return "unknown";
}

/* ---- the log ------------------------------------------------------------------------ */

typedef struct batch {
    struct batch *next;
    uint64_t end;   /* log offset just past this batch */
    size_t size;    /* framed bytes in data */
    uint8_t data[]; /* records, framed */
} batch_t;

struct recd_evlog {
    char *dir;
    recd_evlog_opts_t o;
    int lock_fd;

    /* writer-owned after open (no lock needed) */
    int fd;      /* active (last) segment, O_APPEND */
    seg_t *segs; /* oldest first; the last is active */
    size_t nseg, capseg;
    uint64_t seg_total;    /* sum of segment sizes */
    uint64_t last_sync_ns; /* monotonic time of the last fsync */

    pthread_t thr;
    int thr_started;

    /* guarded by mu */
    pthread_mutex_t mu;
    pthread_cond_t work; /* writer: batches / flush / stop / deadline */
    pthread_cond_t done; /* appenders and waiters: progress or failure */
    batch_t *qhead, *qtail;
    uint64_t q_bytes, q_batches;
    uint64_t next_off, written_off, durable_off, flush_req;
    int stop;
    int failed, failed_errno;
    char failed_msg[256];
    recd_evlog_stats_t st; /* counters; offsets, queue and failure filled in on read */

    atomic_int inj_write, inj_fsync;
    int paused; /* test hook: writer leaves the queue alone; guarded by mu */
};

static void set_failed_locked(recd_evlog_t *log, int e, const char *msg)
{
    if (log->failed)
        return;
    log->failed = 1;
    log->failed_errno = e;
    snprintf(log->failed_msg, sizeof log->failed_msg, "%s", msg);
    recd_log_error("event log failed, no longer accepting events: %s", msg);
}

/* Progress or failure: wake waiters and tell the owner (opts.on_ack). */
static void progress_locked(recd_evlog_t *log)
{
    pthread_cond_broadcast(&log->done);
    if (log->o.on_ack)
        log->o.on_ack(log->o.on_ack_ctx);
}

static int do_fsync(recd_evlog_t *log, int fd)
{
    int e = atomic_exchange(&log->inj_fsync, 0);
    if (e) {
        errno = e;
        return -1;
    }
    return fsync(fd);
}

static int push_seg(recd_evlog_t *log, uint64_t base, uint64_t size, time_t mtime)
{
    if (log->nseg == log->capseg) {
        size_t nc = log->capseg ? log->capseg * 2 : 16;
        seg_t *nv = realloc(log->segs, nc * sizeof *nv);
        if (!nv)
            return -1;
        log->segs = nv;
        log->capseg = nc;
    }
    log->segs[log->nseg].base = base;
    log->segs[log->nseg].size = size;
    log->segs[log->nseg].mtime = mtime;
    log->nseg++;
    log->seg_total += size;
    return 0;
}

/* Delete the oldest segments beyond retain_bytes / retain_age_s, never the
 * active one. Returns how many were deleted. Writer (or open) only. */
static uint64_t apply_retention(recd_evlog_t *log)
{
    uint64_t deleted = 0;
    time_t now = time(NULL);
    while (log->nseg > 1) {
        seg_t *s = &log->segs[0];
        int over_size = log->o.retain_bytes && log->seg_total > log->o.retain_bytes;
        int too_old = log->o.retain_age_s && now - s->mtime > (time_t)log->o.retain_age_s;
        if (!over_size && !too_old)
            break;
        char path[PATH_MAX];
        seg_path(path, sizeof path, log->dir, s->base);
        if (unlink(path) != 0 && errno != ENOENT) {
            recd_log_warn("event log retention: unlink %s: %s", path, strerror(errno));
            break;
        }
        log->seg_total -= s->size;
        memmove(&log->segs[0], &log->segs[1], (log->nseg - 1) * sizeof *log->segs);
        log->nseg--;
        deleted++;
    }
    return deleted;
}

/* Create segment `base`, make it the active one. Writer (or open) only.
 * Returns 0 or -1 with errno and a message in msg. */
static int create_segment(recd_evlog_t *log, uint64_t base, char *msg, size_t cap)
{
    char path[PATH_MAX];
    seg_path(path, sizeof path, log->dir, base);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0640);
    if (fd < 0) {
        int e = errno;
        snprintf(msg, cap, "create segment %s: %s", path, strerror(e));
        errno = e;
        return -1;
    }
    if (recd_fsync_dir(log->dir) != 0) {
        int e = errno;
        snprintf(msg, cap, "fsync of directory %s: %s", log->dir, strerror(e));
        close(fd);
        errno = e;
        return -1;
    }
    if (push_seg(log, base, 0, time(NULL)) != 0) {
        close(fd);
        snprintf(msg, cap, "out of memory");
        errno = ENOMEM;
        return -1;
    }
    log->fd = fd;
    return 0;
}

/* fsync and close the active segment, create the next one. */
static int rotate(recd_evlog_t *log, char *msg, size_t cap)
{
    seg_t *cur = &log->segs[log->nseg - 1];
    char path[PATH_MAX];
    seg_path(path, sizeof path, log->dir, cur->base);
    if (do_fsync(log, log->fd) != 0) {
        int e = errno;
        snprintf(msg, cap, "fsync of %s: %s", path, strerror(e));
        errno = e;
        return -1;
    }
    close(log->fd);
    log->fd = -1;
    cur->mtime = time(NULL);
    return create_segment(log, cur->base + cur->size, msg, cap);
}

/* writev all of iov; -1 with errno on failure (short writes continue). */
static int write_all(recd_evlog_t *log, struct iovec *iov, int cnt)
{
    int e = atomic_exchange(&log->inj_write, 0);
    if (e) {
        errno = e;
        return -1;
    }
    while (cnt > 0) {
        ssize_t w = writev(log->fd, iov, cnt);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        size_t left = (size_t)w;
        while (cnt > 0 && left >= iov->iov_len) {
            left -= iov->iov_len;
            iov++;
            cnt--;
        }
        if (cnt > 0) {
            iov->iov_base = (uint8_t *)iov->iov_base + left;
            iov->iov_len -= left;
        }
    }
    return 0;
}

/* Write the batches in list order, rotating between batches as needed.
 * Returns 0 or -1 (errno and msg set); the active segment's size is updated
 * for what was written. */
static int write_batches(recd_evlog_t *log, batch_t *b, char *msg, size_t cap)
{
    struct iovec iov[WRITE_IOV];
    while (b) {
        seg_t *cur = &log->segs[log->nseg - 1];
        if (cur->size > 0 && cur->size + b->size > log->o.segment_bytes) {
            if (rotate(log, msg, cap) != 0)
                return -1;
            cur = &log->segs[log->nseg - 1];
        }
        /* gather batches that fit this segment */
        int cnt = 0;
        uint64_t sz = cur->size, total = 0;
        while (b && cnt < WRITE_IOV && (cnt == 0 || sz + b->size <= log->o.segment_bytes)) {
            iov[cnt].iov_base = b->data;
            iov[cnt].iov_len = b->size;
            cnt++;
            sz += b->size;
            total += b->size;
            b = b->next;
        }
        if (write_all(log, iov, cnt) != 0) {
            int e = errno;
            char path[PATH_MAX];
            seg_path(path, sizeof path, log->dir, cur->base);
            snprintf(msg, cap, "write to %s: %s", path, strerror(e));
            /* drop a partial write so the file ends at the last whole batch;
             * best effort (recovery would cut it anyway) */
            if (ftruncate(log->fd, (off_t)cur->size) != 0) {
            }
            errno = e;
            return -1;
        }
        cur->size += total;
        log->seg_total += total;
    }
    return 0;
}

static void free_batches(batch_t *b)
{
    while (b) {
        batch_t *n = b->next;
        free(b);
        b = n;
    }
}

static uint64_t mono_ns(void)
{
    return recd_time_mono_ns();
}

static void deadline_ts(struct timespec *ts, uint64_t abs_ns)
{
    ts->tv_sec = (time_t)(abs_ns / 1000000000ull);
    ts->tv_nsec = (long)(abs_ns % 1000000000ull);
}

static void *writer_main(void *arg)
{
    recd_evlog_t *log = arg;
    const uint64_t interval_ns = (uint64_t)log->o.interval_ms * 1000000ull;
    char msg[256];
    pthread_mutex_lock(&log->mu);
    for (;;) {
        /* wait for something to do */
        for (;;) {
            if (log->failed) {
                batch_t *drop = log->qhead;
                log->qhead = log->qtail = NULL;
                log->q_bytes = log->q_batches = 0;
                pthread_cond_broadcast(&log->done);
                if (drop) {
                    pthread_mutex_unlock(&log->mu);
                    free_batches(drop);
                    pthread_mutex_lock(&log->mu);
                    continue;
                }
                if (log->stop)
                    goto out;
                pthread_cond_wait(&log->work, &log->mu);
                continue;
            }
            if (log->qhead && !log->paused)
                break;
            if (log->flush_req > log->durable_off && log->written_off > log->durable_off)
                break;
            if (log->stop) {
                if (log->written_off > log->durable_off)
                    break;
                goto out;
            }
            if (log->o.fsync == RECD_EVLOG_FSYNC_INTERVAL && log->written_off > log->durable_off) {
                uint64_t deadline = log->last_sync_ns + interval_ns;
                if (mono_ns() >= deadline)
                    break;
                struct timespec ts;
                deadline_ts(&ts, deadline);
                pthread_cond_timedwait(&log->work, &log->mu, &ts);
                continue;
            }
            pthread_cond_wait(&log->work, &log->mu);
        }

        batch_t *list = NULL;
        if (!log->paused) {
            list = log->qhead;
            log->qhead = log->qtail = NULL;
            log->q_bytes = log->q_batches = 0;
        }
        pthread_mutex_unlock(&log->mu);

        int werr = 0, wrc = 0;
        uint64_t nseg_before = log->nseg;
        if (list) {
            wrc = write_batches(log, list, msg, sizeof msg);
            werr = errno;
        }
        uint64_t deleted = 0;
        if (log->nseg != nseg_before)
            deleted = apply_retention(log);
        free_batches(list);
        seg_t *cur = &log->segs[log->nseg - 1];
        uint64_t written = cur->base + cur->size;

        pthread_mutex_lock(&log->mu);
        log->written_off = written;
        log->st.segments_deleted += deleted;
        log->st.segments = log->nseg;
        log->st.bytes = log->seg_total;
        log->st.first_offset = log->segs[0].base;
        if (wrc != 0) {
            set_failed_locked(log, werr, msg);
            progress_locked(log);
            continue;
        }
        int sync = 0;
        if (log->written_off > log->durable_off) {
            if (log->o.fsync == RECD_EVLOG_FSYNC_ALWAYS || log->flush_req > log->durable_off ||
                log->stop)
                sync = 1;
            else if (log->o.fsync == RECD_EVLOG_FSYNC_INTERVAL &&
                     mono_ns() >= log->last_sync_ns + interval_ns)
                sync = 1;
        }
        progress_locked(log); /* written advanced (NEVER waiters) */
        if (!sync)
            continue;
        pthread_mutex_unlock(&log->mu);

        int src = do_fsync(log, log->fd);
        int serr = errno;
        log->last_sync_ns = mono_ns();
        double wall = recd_time_wall();

        pthread_mutex_lock(&log->mu);
        if (src != 0) {
            char path[PATH_MAX];
            seg_path(path, sizeof path, log->dir, cur->base);
            snprintf(msg, sizeof msg, "fsync of %s: %s", path, strerror(serr));
            set_failed_locked(log, serr, msg);
        } else {
            log->durable_off = written;
            log->st.fsyncs++;
            log->st.last_fsync_wall = wall;
        }
        progress_locked(log);
    }
out:
    pthread_mutex_unlock(&log->mu);
    return NULL;
}

static int init_sync(recd_evlog_t *log)
{
    pthread_condattr_t ca;
    if (pthread_condattr_init(&ca) != 0)
        return -1;
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    int rc = pthread_mutex_init(&log->mu, NULL);
    if (rc == 0 && pthread_cond_init(&log->work, &ca) != 0)
        rc = -1;
    if (rc == 0 && pthread_cond_init(&log->done, &ca) != 0)
        rc = -1;
    pthread_condattr_destroy(&ca);
    return rc;
}

static void evlog_free(recd_evlog_t *log)
{
    if (!log)
        return;
    if (log->fd >= 0)
        close(log->fd);
    if (log->lock_fd >= 0)
        close(log->lock_fd); /* releases the flock */
    free_batches(log->qhead);
    free(log->segs);
    free(log->dir);
    pthread_mutex_destroy(&log->mu);
    pthread_cond_destroy(&log->work);
    pthread_cond_destroy(&log->done);
    free(log);
}

static int check_opts(const recd_evlog_opts_t *o, recd_err_t *err)
{
    if (o->fsync != RECD_EVLOG_FSYNC_ALWAYS && o->fsync != RECD_EVLOG_FSYNC_INTERVAL &&
        o->fsync != RECD_EVLOG_FSYNC_NEVER)
        return recd_err_set(err, RECD_EINVAL, "event log: unknown fsync policy %d", (int)o->fsync);
    if (o->fsync == RECD_EVLOG_FSYNC_INTERVAL && (o->interval_ms < 1 || o->interval_ms > 3600000))
        return recd_err_set(err, RECD_EINVAL, "event log: interval_ms %u not in 1..3600000",
                            o->interval_ms);
    if (o->max_record < 1 || o->max_record > RECD_EVLOG_MAX_RECORD_LIMIT)
        return recd_err_set(err, RECD_EINVAL, "event log: max_record %u not in 1..%u",
                            o->max_record, RECD_EVLOG_MAX_RECORD_LIMIT);
    if (o->segment_bytes < 64)
        return recd_err_set(err, RECD_EINVAL, "event log: segment_bytes %llu below 64",
                            (unsigned long long)o->segment_bytes);
    if (o->queue_bytes < (uint64_t)o->max_record + RECD_EVLOG_HEADER)
        return recd_err_set(err, RECD_EINVAL,
                            "event log: queue_bytes %llu cannot hold one record of max_record %u",
                            (unsigned long long)o->queue_bytes, o->max_record);
    return 0;
}

int recd_evlog_open(const char *dir, const recd_evlog_opts_t *opts, recd_evlog_t **out,
                    recd_err_t *err)
{
    if (out)
        *out = NULL;
    if (!dir || !*dir || !out)
        return recd_err_set(err, RECD_EINVAL, "event log: no directory");
    recd_evlog_opts_t o;
    if (opts)
        o = *opts;
    else
        recd_evlog_opts_default(&o);
    int rc = check_opts(&o, err);
    if (rc)
        return rc;
    if (strlen(dir) > PATH_MAX - 64)
        return recd_err_set(err, RECD_EINVAL, "event log: directory name too long");

    recd_evlog_t *log = calloc(1, sizeof *log);
    if (!log)
        return recd_err_set(err, RECD_ENOMEM, "event log: out of memory");
    log->fd = -1;
    log->lock_fd = -1;
    log->o = o;
    if (init_sync(log) != 0) {
        free(log);
        return recd_err_set(err, RECD_ENOMEM, "event log: cannot create locks");
    }
    log->dir = strdup(dir);
    if (!log->dir) {
        evlog_free(log);
        return recd_err_set(err, RECD_ENOMEM, "event log: out of memory");
    }
    if (mkdir(dir, 0750) != 0 && errno != EEXIST) {
        rc = recd_err_set(err, RECD_EIO, "event log: mkdir %s: %s", dir, strerror(errno));
        goto fail;
    }
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/LOCK", dir);
    log->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
    if (log->lock_fd < 0) {
        rc = recd_err_set(err, RECD_EIO, "event log: open %s: %s", path, strerror(errno));
        goto fail;
    }
    if (flock(log->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        rc = recd_err_set(err, errno == EWOULDBLOCK ? RECD_EAGAIN : RECD_EIO,
                          "event log: %s is in use by another writer (%s)", dir, strerror(errno));
        goto fail;
    }

    seg_t *segs;
    size_t nseg;
    rc = list_segments(dir, &segs, &nseg, err);
    if (rc)
        goto fail;
    for (size_t i = 0; i < nseg; i++) {
        if (push_seg(log, segs[i].base, segs[i].size, segs[i].mtime) != 0) {
            free(segs);
            rc = recd_err_set(err, RECD_ENOMEM, "event log: out of memory");
            goto fail;
        }
    }
    free(segs);

    char msg[256];
    if (log->nseg == 0) {
        if (create_segment(log, 0, msg, sizeof msg) != 0) {
            rc = recd_err_set(err, RECD_EIO, "event log: %s", msg);
            goto fail;
        }
    } else {
        seg_t *last = &log->segs[log->nseg - 1];
        seg_path(path, sizeof path, dir, last->base);
        uint8_t *b;
        size_t len;
        if (read_file(path, &b, &len) != 0) {
            rc = recd_err_set(err, RECD_EIO, "event log: read %s: %s", path, strerror(errno));
            goto fail;
        }
        scan_t s;
        rc = scan_segment(path, b, len, last->base, 0, o.max_record, o.skip_corrupt, NULL, NULL, &s,
                          err);
        free(b);
        if (rc)
            goto fail;
        log->fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
        if (log->fd < 0) {
            rc = recd_err_set(err, RECD_EIO, "event log: open %s: %s", path, strerror(errno));
            goto fail;
        }
        if (s.tail) {
            size_t keep = len - s.tail;
            if (ftruncate(log->fd, (off_t)keep) != 0 || fsync(log->fd) != 0) {
                rc = recd_err_set(err, RECD_EIO, "event log: truncating the torn tail of %s: %s",
                                  path, strerror(errno));
                goto fail;
            }
            recd_log_warn("event log: %s: cut a torn or corrupt tail of %zu bytes at byte "
                          "offset %zu",
                          path, s.tail, keep);
        }
        if (s.corrupt_regions)
            recd_log_warn("event log: %s: skipping %llu corrupt regions (%llu bytes)", path,
                          (unsigned long long)s.corrupt_regions,
                          (unsigned long long)s.corrupt_bytes);
        log->seg_total -= last->size;
        last->size = len - s.tail;
        log->seg_total += last->size;
        log->st.records = s.records;
        log->st.recovered_truncated_bytes = s.tail;
        log->st.recovered_corrupt_regions = s.corrupt_regions;
        log->st.recovered_corrupt_bytes = s.corrupt_bytes;
    }
    log->st.segments_deleted = apply_retention(log);
    seg_t *cur = &log->segs[log->nseg - 1];
    log->next_off = log->written_off = log->durable_off = cur->base + cur->size;
    log->st.segments = log->nseg;
    log->st.bytes = log->seg_total;
    log->st.first_offset = log->segs[0].base;
    atomic_init(&log->inj_write, 0);
    atomic_init(&log->inj_fsync, 0);

    if (pthread_create(&log->thr, NULL, writer_main, log) != 0) {
        rc = recd_err_set(err, RECD_ERR, "event log: cannot start the writer thread");
        goto fail;
    }
    log->thr_started = 1;
    *out = log;
    return 0;
fail:
    evlog_free(log);
    return rc;
}

/* Acknowledged offset under the policy; mu held. */
static uint64_t acked_locked(const recd_evlog_t *log)
{
    return log->o.fsync == RECD_EVLOG_FSYNC_NEVER ? log->written_off : log->durable_off;
}

static int failed_err_locked(recd_evlog_t *log, recd_err_t *err)
{
    return recd_err_set(err, RECD_EIO, "event log failed: %s", log->failed_msg);
}

static int append_impl(recd_evlog_t *log, const struct iovec *recs, size_t n, uint64_t *ticket,
                       int wait, recd_err_t *err)
{
    if (!log || (!recs && n))
        return recd_err_set(err, RECD_EINVAL, "event log: bad arguments");
    if (n == 0)
        return recd_err_set(err, RECD_EINVAL, "event log: empty batch");
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (recs[i].iov_len == 0 || !recs[i].iov_base)
            return recd_err_set(err, RECD_EINVAL, "event log: record %zu is empty", i);
        if (recs[i].iov_len > log->o.max_record)
            return recd_err_set(err, RECD_EINVAL,
                                "event log: record %zu has %zu bytes, more than max_record %u", i,
                                recs[i].iov_len, log->o.max_record);
        total += RECD_EVLOG_HEADER + recs[i].iov_len;
    }
    if (total > log->o.queue_bytes)
        return recd_err_set(err, RECD_EINVAL,
                            "event log: batch of %llu bytes exceeds the queue bound of %llu",
                            (unsigned long long)total, (unsigned long long)log->o.queue_bytes);
    batch_t *b = malloc(sizeof *b + total);
    if (!b)
        return recd_err_set(err, RECD_ENOMEM, "event log: out of memory");
    b->next = NULL;
    b->size = total;
    uint8_t *p = b->data;
    for (size_t i = 0; i < n; i++) {
        uint32_t l = (uint32_t)recs[i].iov_len;
        put_le32(p, l);
        put_le32(p + 4, recd_crc32c(0, recs[i].iov_base, l));
        memcpy(p + RECD_EVLOG_HEADER, recs[i].iov_base, l);
        p += RECD_EVLOG_HEADER + l;
    }

    pthread_mutex_lock(&log->mu);
    int rc = 0;
    if (log->failed) {
        rc = failed_err_locked(log, err);
    } else if (log->stop) {
        rc = recd_err_set(err, RECD_EINVAL, "event log: closing");
    } else if (log->q_bytes + total > log->o.queue_bytes) {
        log->st.rejected_full++;
        rc = recd_err_set(err, RECD_EAGAIN,
                          "event log: write queue full (%llu of %llu bytes queued); retry later",
                          (unsigned long long)log->q_bytes, (unsigned long long)log->o.queue_bytes);
    }
    if (rc) {
        pthread_mutex_unlock(&log->mu);
        free(b);
        return rc;
    }
    if (log->qtail)
        log->qtail->next = b;
    else
        log->qhead = b;
    log->qtail = b;
    log->q_bytes += total;
    log->q_batches++;
    log->next_off += total;
    uint64_t end = b->end = log->next_off;
    log->st.records += n;
    pthread_cond_signal(&log->work);
    if (wait && log->o.fsync == RECD_EVLOG_FSYNC_ALWAYS) {
        while (log->durable_off < end && !log->failed)
            pthread_cond_wait(&log->done, &log->mu);
        if (log->durable_off < end)
            rc = failed_err_locked(log, err);
    }
    pthread_mutex_unlock(&log->mu);
    if (ticket)
        *ticket = end;
    return rc;
}

int recd_evlog_append(recd_evlog_t *log, const struct iovec *recs, size_t n, uint64_t *ticket,
                      recd_err_t *err)
{
    return append_impl(log, recs, n, ticket, 1, err);
}

int recd_evlog_append_nowait(recd_evlog_t *log, const struct iovec *recs, size_t n,
                             uint64_t *ticket, recd_err_t *err)
{
    return append_impl(log, recs, n, ticket, 0, err);
}

uint64_t recd_evlog_acked(recd_evlog_t *log, int *failed)
{
    pthread_mutex_lock(&log->mu);
    uint64_t a = acked_locked(log);
    if (failed)
        *failed = log->failed;
    pthread_mutex_unlock(&log->mu);
    return a;
}

int recd_evlog_wait_durable(recd_evlog_t *log, uint64_t ticket, int timeout_ms, recd_err_t *err)
{
    if (!log)
        return recd_err_set(err, RECD_EINVAL, "event log: bad arguments");
    uint64_t deadline = timeout_ms >= 0 ? mono_ns() + (uint64_t)timeout_ms * 1000000ull : 0;
    struct timespec ts;
    deadline_ts(&ts, deadline);
    int rc = 0;
    pthread_mutex_lock(&log->mu);
    if (ticket > log->next_off) {
        pthread_mutex_unlock(&log->mu);
        return recd_err_set(err, RECD_EINVAL, "event log: ticket %llu was never issued",
                            (unsigned long long)ticket);
    }
    while (acked_locked(log) < ticket && !log->failed) {
        if (timeout_ms < 0) {
            pthread_cond_wait(&log->done, &log->mu);
        } else if (pthread_cond_timedwait(&log->done, &log->mu, &ts) == ETIMEDOUT) {
            break;
        }
    }
    if (acked_locked(log) < ticket) {
        if (log->failed)
            rc = failed_err_locked(log, err);
        else
            rc = recd_err_set(err, RECD_EAGAIN, "event log: not durable after %d ms", timeout_ms);
    }
    pthread_mutex_unlock(&log->mu);
    return rc;
}

int recd_evlog_flush(recd_evlog_t *log, recd_err_t *err)
{
    if (!log)
        return recd_err_set(err, RECD_EINVAL, "event log: bad arguments");
    int rc = 0;
    pthread_mutex_lock(&log->mu);
    uint64_t target = log->next_off;
    if (log->flush_req < target)
        log->flush_req = target;
    pthread_cond_signal(&log->work);
    while (log->durable_off < target && !log->failed)
        pthread_cond_wait(&log->done, &log->mu);
    if (log->durable_off < target)
        rc = failed_err_locked(log, err);
    pthread_mutex_unlock(&log->mu);
    return rc;
}

void recd_evlog_stats(recd_evlog_t *log, recd_evlog_stats_t *st)
{
    pthread_mutex_lock(&log->mu);
    *st = log->st;
    st->next_offset = log->next_off;
    st->written_offset = log->written_off;
    st->durable_offset = log->durable_off;
    st->queue_batches = log->q_batches;
    st->queue_bytes = log->q_bytes;
    st->failed = log->failed;
    st->failed_errno = log->failed_errno;
    snprintf(st->failed_msg, sizeof st->failed_msg, "%s", log->failed_msg);
    pthread_mutex_unlock(&log->mu);
}

void recd_evlog_test_inject(recd_evlog_t *log, int write_errno, int fsync_errno)
{
    if (write_errno)
        atomic_store(&log->inj_write, write_errno);
    if (fsync_errno)
        atomic_store(&log->inj_fsync, fsync_errno);
}

void recd_evlog_test_pause(recd_evlog_t *log, int paused)
{
    pthread_mutex_lock(&log->mu);
    log->paused = paused ? 1 : 0;
    pthread_cond_signal(&log->work);
    pthread_mutex_unlock(&log->mu);
}

void recd_evlog_close(recd_evlog_t *log)
{
    if (!log)
        return;
    if (log->thr_started) {
        pthread_mutex_lock(&log->mu);
        log->stop = 1;
        log->paused = 0;
        pthread_cond_signal(&log->work);
        pthread_mutex_unlock(&log->mu);
        pthread_join(log->thr, NULL);
    }
    evlog_free(log);
}
