/*
 * recd durable event log: append-only, CRC-framed segment files with a
 * writer thread, group commit, rotation, retention and crash recovery.
 *
 * ---- on-disk format --------------------------------------------------------
 * A log is a directory of segment files named "<20 decimal digits>.seg"; the
 * number is the segment's start offset: the logical byte offset, in the
 * concatenation of every segment ever written, of its first byte. Segment k+1
 * starts where segment k ends, so a record's (segment base + position) is a
 * stable, unique, increasing "log offset" that survives rotation and
 * retention. Other names in the directory are ignored (a "LOCK" file holds
 * the writer's flock).
 *
 * Each segment is a sequence of records, with no file header:
 *
 *     [u32 length, little endian][u32 crc32c(payload), little endian][payload]
 *
 * 1 <= length <= max_record (default 1 MiB). A length of 0 is invalid, so a
 * zero-filled tail (blocks allocated but never written before a crash) is
 * never mistaken for records. CRC32C is the Castagnoli polynomial (iSCSI,
 * RFC 3720), reflected, initial value and final xor 0xFFFFFFFF.
 *
 * A batch is never split across segments; a segment is rotated before a
 * batch that would take it past segment_bytes (so a segment only exceeds it
 * when one batch alone does). The old segment is fsynced before the next one
 * is created (under every policy), the new one is created O_EXCL and the
 * directory fsynced, so every segment but the last is complete on disk.
 *
 * ---- recovery (recd_evlog_open) ---------------------------------------------
 * Only the LAST segment is scanned at open. Scanning walks records from byte 0.
 * At a position p where no valid record starts (short header, length 0 or
 * over max_record, payload past the end of file, or CRC mismatch) the scanner
 * looks for the next byte offset q > p at which a complete record with a
 * matching CRC starts ("resynchronisation"):
 *   - no such q: [p, EOF) is a torn or corrupt TAIL; it is cut off with
 *     ftruncate + fsync and counted in stats.recovered_truncated_bytes;
 *   - q exists: [p, q) is corruption in the MIDDLE of the segment (valid data
 *     follows it, so it cannot be an interrupted append). Open fails with
 *     RECD_EIO naming the file and byte offset p, unless opts.skip_corrupt is
 *     set, in which case the region is left in place, skipped by every reader
 *     and counted (stats.recovered_corrupt_regions / _bytes).
 * Resynchronisation costs one length check per byte and one CRC per plausible
 * length, so it is cheap on zeros and random garbage; it only runs where the
 * file is already damaged. Earlier segments are not read at open: check them
 * with recd_evlog_verify / recd_evlog_iterate.
 *
 * ---- durability -------------------------------------------------------------
 * recd_evlog_append frames and copies the batch in the caller (CRCs are
 * computed there), queues it for the writer thread and returns a ticket: the
 * log offset just past the batch. The writer takes every queued batch at
 * once, writes them with writev and, per policy, fsyncs once for all of them
 * (group commit):
 *   ALWAYS    fsync after every write round; append returns only after the
 *             fsync covering its batch (or with the error that stopped it).
 *             Power loss loses nothing that was acknowledged.
 *   INTERVAL  append returns once queued; the writer writes at once and
 *             fsyncs at most every interval_ms (immediately if the last fsync
 *             is older than that). recd_evlog_wait_durable(ticket) blocks until
 *             the covering fsync. Power loss loses at most what was not yet
 *             covered by an fsync (<= interval_ms of appends); waiters are
 *             never told "durable" early.
 *   NEVER     no fsync except at rotation, recd_evlog_flush and close;
 *             wait_durable waits only until the batch was written to the
 *             kernel. Survives a process crash, not power loss.
 *
 * The queue is bounded (queue_bytes of framed data): when a batch does not
 * fit, append returns RECD_EAGAIN at once ("try again later"; a server answers
 * 503 + Retry-After) and nothing of the batch is written.
 *
 * A write or fsync error is never retried: the log enters a failed state
 * (stats.failed, failed_errno, failed_msg), queued batches are dropped (their
 * appenders / waiters get RECD_EIO) and every later append fails with RECD_EIO.
 * After an fsync error the page cache state is unknown (Linux may have dropped
 * the dirty pages), so only data acknowledged before the failure is promised.
 * Reopening the log runs recovery again.
 *
 * ---- threads and locking ----------------------------------------------------
 * One mutex guards the queue, the offsets (next/written/durable), the failed
 * state and the stats; two condition variables: `work` (writer waits for
 * batches, a flush request, stop or its fsync deadline) and `done` (appenders
 * and waiters wait for written/durable offsets to advance or failure). The
 * segment fd and segment list are touched only by the writer thread after
 * open returns (and by open/close before it starts / after it is joined); the
 * writer does all I/O without holding the mutex. append, wait_durable, flush
 * and stats may be called from any thread; open and close from one.
 */
#ifndef RECD_EVENTS_H
#define RECD_EVENTS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "recd/core.h"

/* ---- CRC32C ---------------------------------------------------------------- */

/* CRC32C (Castagnoli) of len bytes, continuing from crc (start with 0):
 * recd_crc32c(0, "123456789", 9) == 0xE3069283. Uses the SSE4.2 crc32
 * instruction when the CPU has it (checked once at run time), else a table. */
uint32_t recd_crc32c(uint32_t crc, const void *data, size_t len);
/* The portable table implementation (slice-by-8), same results. */
uint32_t recd_crc32c_sw(uint32_t crc, const void *data, size_t len);
/* 1 if recd_crc32c uses the SSE4.2 instruction on this CPU. */
int recd_crc32c_hw_available(void);

/* ---- options ---------------------------------------------------------------- */

#define RECD_EVLOG_HEADER 8u                   /* bytes of framing per record */
#define RECD_EVLOG_MAX_RECORD (1u << 20)       /* default payload bound, 1 MiB */
#define RECD_EVLOG_MAX_RECORD_LIMIT (1u << 30) /* largest max_record accepted */

typedef enum {
    RECD_EVLOG_FSYNC_ALWAYS = 0,
    RECD_EVLOG_FSYNC_INTERVAL = 1,
    RECD_EVLOG_FSYNC_NEVER = 2,
} recd_evlog_fsync_t;

typedef struct recd_evlog_opts {
    recd_evlog_fsync_t fsync;
    uint32_t interval_ms;   /* INTERVAL: most frequent fsync, default 100, >= 1 */
    uint64_t segment_bytes; /* rotate before a batch would pass this; default 64 MiB */
    uint64_t retain_bytes;  /* delete oldest segments while the total is over; 0 = no limit */
    uint64_t retain_age_s;  /* delete segments last written longer ago; 0 = no limit */
                            /* (retention runs at open and after each rotation) */
    uint32_t max_record;    /* payload bound; default RECD_EVLOG_MAX_RECORD */
    uint64_t queue_bytes;   /* bound of queued framed bytes; default 16 MiB */
    int skip_corrupt;       /* skip (and count) mid-segment corruption instead of failing */
    /* Called by the writer thread each time the acknowledged offset
     * (recd_evlog_acked) advances and when the log fails, so an event loop
     * can answer requests waiting for durability without blocking. It runs
     * with the log's lock held: it must be short (e.g. event_active) and
     * must not call into the log. NULL: no callback. */
    void (*on_ack)(void *ctx);
    void *on_ack_ctx;
} recd_evlog_opts_t;

/* Fill o with the defaults above (fsync INTERVAL, 100 ms). */
void recd_evlog_opts_default(recd_evlog_opts_t *o);
/* "always" / "interval_ms" / "never" -> policy, -1 if unknown. */
int recd_evlog_fsync_parse(const char *s);
const char *recd_evlog_fsync_name(recd_evlog_fsync_t p);

/* ---- the log ---------------------------------------------------------------- */

typedef struct recd_evlog recd_evlog_t;

typedef struct recd_evlog_stats {
    uint64_t records;                   /* records in the last segment at open + appended since */
    uint64_t bytes;                     /* bytes on disk over all segments (written, not queued) */
    uint64_t segments;                  /* segment files */
    uint64_t first_offset;              /* log offset of the oldest retained segment */
    uint64_t next_offset;               /* offset the next accepted batch starts at */
    uint64_t written_offset;            /* everything below was written to the kernel */
    uint64_t durable_offset;            /* everything below was covered by an fsync */
    uint64_t recovered_truncated_bytes; /* torn tail cut at open */
    uint64_t recovered_corrupt_regions; /* mid-segment regions skipped at open */
    uint64_t recovered_corrupt_bytes;
    uint64_t fsyncs;        /* fsync calls on segments */
    double last_fsync_wall; /* wall-clock time of the last fsync, 0 if none */
    uint64_t queue_batches; /* queued, not yet written */
    uint64_t queue_bytes;
    uint64_t rejected_full;    /* appends refused with RECD_EAGAIN */
    uint64_t segments_deleted; /* by retention since open */
    int failed;                /* 1 once a write/fsync/rotation failed */
    int failed_errno;
    char failed_msg[256];
} recd_evlog_stats_t;

/* Open (creating dir and a first segment "00000000000000000000.seg" when
 * there is none) the log in dir, run recovery on the last segment as
 * described above, take an exclusive flock on dir/LOCK (a second open of the
 * same directory fails with RECD_EAGAIN) and start the writer thread. opts
 * NULL means defaults. Returns 0, RECD_EINVAL (bad options), RECD_EIO
 * (I/O failure or mid-segment corruption: file and offset in err),
 * RECD_EAGAIN (locked) or RECD_ENOMEM. */
int recd_evlog_open(const char *dir, const recd_evlog_opts_t *opts, recd_evlog_t **out,
                    recd_err_t *err);

/* Append n >= 1 records (each 1..max_record bytes) as one batch. On success
 * *ticket (may be NULL) is the log offset just past the batch. Under ALWAYS
 * the call returns after the covering fsync. Returns 0, RECD_EINVAL (n = 0,
 * empty or oversized record, batch bigger than the whole queue, log closing),
 * RECD_EAGAIN (queue full: nothing queued, retry later), RECD_EIO (the log is
 * in the failed state, or failed before this batch was durable) or
 * RECD_ENOMEM. Thread-safe. */
int recd_evlog_append(recd_evlog_t *log, const struct iovec *recs, size_t n, uint64_t *ticket,
                      recd_err_t *err);

/* recd_evlog_append that never waits, whatever the policy: the batch is
 * queued (or refused: RECD_EAGAIN, RECD_EIO, RECD_EINVAL as above) and the
 * caller learns that it is acknowledged when recd_evlog_acked() reaches
 * *ticket (opts.on_ack tells when to look). For event loops. */
int recd_evlog_append_nowait(recd_evlog_t *log, const struct iovec *recs, size_t n,
                             uint64_t *ticket, recd_err_t *err);

/* The acknowledged offset under the policy (everything below it is
 * fsynced; for NEVER: written); *failed (may be NULL) is set to 1 once the
 * log has failed, after which nothing more will be acknowledged. */
uint64_t recd_evlog_acked(recd_evlog_t *log, int *failed);

/* Block until the data below ticket is acknowledged under the policy
 * (fsynced; for NEVER: written), for at most timeout_ms (< 0: no limit).
 * Returns 0, RECD_EAGAIN on timeout, RECD_EIO if the log failed first.
 * Thread-safe. */
int recd_evlog_wait_durable(recd_evlog_t *log, uint64_t ticket, int timeout_ms, recd_err_t *err);

/* Write everything queued and fsync it now (whatever the policy), then
 * return: 0 or RECD_EIO. Thread-safe. */
int recd_evlog_flush(recd_evlog_t *log, recd_err_t *err);

/* Snapshot of the counters; thread-safe. */
void recd_evlog_stats(recd_evlog_t *log, recd_evlog_stats_t *st);

/* Stop the writer after it wrote and fsynced the queue (unless failed),
 * release the lock and free. NULL is a no-op. No other call may run on log
 * concurrently or afterwards. */
void recd_evlog_close(recd_evlog_t *log);

/* Test hook: the writer's next write (write_errno != 0) and/or next fsync
 * (fsync_errno != 0) fails with that errno instead of calling the kernel,
 * exactly as a real failure would (failed state, nothing retried). For unit
 * tests of the error paths; 0 leaves that hook unchanged. Thread-safe. */
void recd_evlog_test_inject(recd_evlog_t *log, int write_errno, int fsync_errno);
/* Test hook: while paused (non-zero) the writer leaves queued batches in the
 * queue, so tests can fill it deterministically; close unpauses. Do not
 * combine with ALWAYS appends or flush from the pausing thread (they would
 * wait for the writer). Thread-safe. */
void recd_evlog_test_pause(recd_evlog_t *log, int paused);

/* ---- reading ------------------------------------------------------------------
 * Readers work on the directory alone (read-only, no lock), so they can run
 * on a stopped log (recdctl events dump|verify, replay at start before the
 * log is opened) or beside a live one in the same process. */

/* Called per record in log order; offset is the record's log offset (of its
 * header). Return 0 to continue, non-zero to stop iterating (that value is
 * returned by recd_evlog_iterate). */
typedef int (*recd_evlog_cb)(void *ctx, uint64_t offset, const void *payload, uint32_t len);

typedef struct recd_evlog_iter_stats {
    uint64_t segments;        /* segment files read */
    uint64_t records;         /* valid records delivered (at or after from_offset) */
    uint64_t bytes;           /* bytes read */
    uint64_t corrupt_regions; /* damaged regions skipped (skip_corrupt) */
    uint64_t corrupt_bytes;
    uint64_t tail_bytes; /* torn tail of the last segment (not an error: crash
                          * not yet recovered, or a concurrent append) */
} recd_evlog_iter_stats_t;

/* Every record of every segment of dir with a log offset >= from_offset
 * (0: all), oldest first, each CRC checked. Segments wholly before
 * from_offset are not read; the segment holding it is checked from its start
 * (records before from_offset are verified but not delivered). max_record 0
 * means RECD_EVLOG_MAX_RECORD. A damaged region (in the middle of any
 * segment, or at the end of a segment other than the last) and a gap between
 * consecutive segments (start offset != previous start + size) are errors
 * (RECD_EIO naming file and offset) unless skip_corrupt, when they are
 * skipped and counted. A segment deleted meanwhile (retention) is skipped.
 * Reads each segment whole into memory (at most segment_bytes plus one
 * batch). st may be NULL. Returns 0, the callback's non-zero value,
 * RECD_ENOENT (no such directory), RECD_EIO or RECD_ENOMEM. */
int recd_evlog_iterate(const char *dir, uint64_t from_offset, uint32_t max_record, int skip_corrupt,
                       recd_evlog_cb cb, void *ctx, recd_evlog_iter_stats_t *st, recd_err_t *err);

/* recd_evlog_iterate without a callback and without skip_corrupt: 0 if every
 * record of every segment checks out (a torn tail of the last segment is
 * counted in st->tail_bytes and still returns 0), else RECD_EIO with the first
 * damaged file and offset. */
int recd_evlog_verify(const char *dir, uint32_t max_record, recd_evlog_iter_stats_t *st,
                      recd_err_t *err);

#endif
