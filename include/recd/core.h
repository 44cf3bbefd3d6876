/*
 * recd core: error codes, error messages, clocks, logging, request ids,
 * per-request arenas, hashing and the systemd notify protocol.
 *
 * Every other module may include this header; it includes nothing of recd.
 */
#ifndef RECD_CORE_H
#define RECD_CORE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#define RECD_VERSION "0.1.0"

/* Return codes: 0 on success, one of these (negative) on failure. */
enum {
    RECD_OK = 0,
    RECD_ERR = -1,    /* generic failure, message in recd_err_t */
    RECD_ENOMEM = -2, /* allocation failed */
    RECD_EINVAL = -3, /* bad argument or input */
    RECD_EIO = -4,    /* I/O error, errno-derived message */
    RECD_EAGAIN = -5, /* need more input / try again */
    RECD_ERANGE = -6, /* value out of bounds */
    RECD_ENOENT = -7, /* not found */
};

/* An error message filled in by the function that failed. Callers may pass
 * NULL when they do not want the text. */
typedef struct recd_err {
    int code;      /* RECD_E* */
    char msg[512]; /* NUL-terminated, human readable */
} recd_err_t;

/* Fill err (may be NULL) with code and a printf-style message; returns
 * code so callers can write `return recd_err_set(err, RECD_EINVAL, ...)`. */
int recd_err_set(recd_err_t *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- time ---------------------------------------------------------------- */

/* Monotonic clock in microseconds / nanoseconds; thread-safe. */
uint64_t recd_time_mono_us(void);
uint64_t recd_time_mono_ns(void);
/* Wall clock, seconds since the epoch, with fraction. */
double recd_time_wall(void);
/* "YYYY-MM-DDTHH:MM:SSZ" (UTC) of now, or of $SOURCE_DATE_EPOCH when it is
 * set to a non-negative integer (reproducible artefacts): the "created"
 * stamp of bundles and datasets. cap >= 21. */
void recd_time_created_utc(char *buf, size_t cap);

/* ---- logging --------------------------------------------------------------
 * One line per event: "2026-11-28T01:29:21.123456Z info [rid] message\n".
 * Each line is written with a single write(2), so lines from different
 * threads never interleave. Thread-safe. */
typedef enum {
    RECD_LOG_DEBUG = 0,
    RECD_LOG_INFO = 1,
    RECD_LOG_WARN = 2,
    RECD_LOG_ERROR = 3,
} recd_log_level_t;

/* Parse "debug"/"info"/"warn"/"error"; returns -1 if unknown. */
int recd_log_level_parse(const char *s);
const char *recd_log_level_name(recd_log_level_t level);
/* Set the minimum level that is written (atomic; any thread). */
void recd_log_set_level(recd_log_level_t level);
recd_log_level_t recd_log_get_level(void);
/* Direct output to path (append, created 0640) or to stderr when path is
 * NULL or "". Re-opening the same path is how SIGUSR1 log rotation works:
 * the new file replaces the old descriptor atomically (dup2), so concurrent
 * writers never see a closed descriptor. Returns 0 or RECD_EIO. */
int recd_log_open(const char *path, recd_err_t *err);
/* Write one line. rid may be NULL. */
void recd_log_write(recd_log_level_t level, const char *rid, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void recd_log_vwrite(recd_log_level_t level, const char *rid, const char *fmt, va_list ap);

#define recd_log_debug(...) recd_log_write(RECD_LOG_DEBUG, NULL, __VA_ARGS__)
#define recd_log_info(...) recd_log_write(RECD_LOG_INFO, NULL, __VA_ARGS__)
#define recd_log_warn(...) recd_log_write(RECD_LOG_WARN, NULL, __VA_ARGS__)
#define recd_log_error(...) recd_log_write(RECD_LOG_ERROR, NULL, __VA_ARGS__)

/* ---- request ids ----------------------------------------------------------
 * Ids are 16 lowercase hex digits: splitmix64(seed ^ (worker << 48) ^ seq).
 * splitmix64 is a bijection on 64-bit values, so ids are unique within a
 * process for (worker < 65536, seq < 2^48); the seed is random per process.
 */
#define RECD_REQID_MAX 128 /* longest client-supplied X-Request-Id accepted */

typedef struct recd_reqid_gen {
    uint64_t seed;   /* random per process */
    uint64_t worker; /* worker index */
    uint64_t seq;    /* next sequence number */
} recd_reqid_gen_t;

/* Initialise a generator for one thread; seed 0 draws a random seed. */
void recd_reqid_init(recd_reqid_gen_t *g, uint64_t seed, unsigned worker);
/* Write the next id into out (at least 17 bytes); not thread-safe (one
 * generator per thread). */
void recd_reqid_next(recd_reqid_gen_t *g, char out[17]);
/* True if a client-supplied id may be echoed: 1..RECD_REQID_MAX bytes of
 * visible ASCII other than '"' and '\\'. */
int recd_reqid_valid(const char *s, size_t len);

/* ---- arena ----------------------------------------------------------------
 * Bump allocator for request-scoped memory, freed in one go. Not
 * thread-safe; one per request. */
typedef struct recd_arena_chunk recd_arena_chunk_t;
typedef struct recd_arena {
    recd_arena_chunk_t *head; /* current chunk */
    size_t chunk_size;        /* bytes per new chunk */
    size_t used;              /* bytes handed out since the last reset */
} recd_arena_t;

void recd_arena_init(recd_arena_t *a, size_t chunk_size);
/* 16-byte aligned; NULL on out of memory. */
void *recd_arena_alloc(recd_arena_t *a, size_t n);
char *recd_arena_strndup(recd_arena_t *a, const char *s, size_t n);
/* Free all chunks but the first, keep it for reuse. */
void recd_arena_reset(recd_arena_t *a);
void recd_arena_free(recd_arena_t *a);

/* ---- hashing -------------------------------------------------------------- */
/* FNV-1a 64-bit over len bytes, continuing from h (start with
 * RECD_FNV1A64_INIT). */
#define RECD_FNV1A64_INIT 0xcbf29ce484222325ULL
uint64_t recd_fnv1a64(uint64_t h, const void *data, size_t len);

/* ---- pseudo-random numbers ------------------------------------------------
 * One deterministic generator for the whole code base (synthetic data,
 * weight initialisation, shuffling, negative sampling): xoshiro256** by
 * Blackman & Vigna ("Scrambled Linear Pseudorandom Number Generators",
 * ACM TOMS 2021), its state filled with successive outputs of splitmix64
 * by Steele, Lea & Flood ("Fast Splittable Pseudorandom Number
 * Generators", OOPSLA 2014), which never yields the all-zero state.
 * Outputs are part of the training contract: the same seed gives the same
 * numbers on every platform, so nothing here may change a single bit.
 * Not for secrets. One generator per thread (no locking). */
typedef struct recd_rng {
    uint64_t s[4];
} recd_rng_t;

/* splitmix64: advance *state by the golden-ratio increment and return the
 * mixed new value (a bijection of it). */
uint64_t recd_splitmix64(uint64_t *state);
/* Fill r with four successive splitmix64 draws starting from seed. */
void recd_rng_seed(recd_rng_t *r, uint64_t seed);
/* Stream `stream` of seed `seed`: recd_rng_seed(r, seed ^ stream *
 * 0xd1342543de82ef95), so different streams of one seed are independent
 * (stream 0 is recd_rng_seed(r, seed)). */
void recd_rng_seed_stream(recd_rng_t *r, uint64_t seed, uint64_t stream);
/* Standard normal by Marsaglia's polar method (rejection; log and sqrt),
 * one value per call, nothing cached. */
double recd_rng_gauss(recd_rng_t *r);

/* Next 64 random bits (xoshiro256**). */
static inline uint64_t recd_rng_next(recd_rng_t *r)
{
    uint64_t *s = r->s;
    uint64_t x = s[1] * 5;
    uint64_t out = ((x << 7) | (x >> 57)) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = (s[3] << 45) | (s[3] >> 19);
    return out;
}

/* Uniform double in [0, 1): the top 53 bits of one draw. */
static inline double recd_rng_unit(recd_rng_t *r)
{
    return (double)(recd_rng_next(r) >> 11) * 0x1.0p-53;
}

/* Uniform double in (0, 1), never 0 or 1 (safe under log): the top 53 bits
 * of one draw plus one half, scaled. */
static inline double recd_rng_open(recd_rng_t *r)
{
    return ((double)(recd_rng_next(r) >> 11) + 0.5) * 0x1.0p-53;
}

/* Unbiased uniform integer in [0, n), n > 0: Lemire's multiply-shift on the
 * top 32 bits of a draw, with rejection ("Fast Random Integer Generation in
 * an Interval", ACM TOMS 2019). Usually one draw, occasionally more. */
static inline uint32_t recd_rng_below(recd_rng_t *r, uint32_t n)
{
    uint64_t m = (recd_rng_next(r) >> 32) * (uint64_t)n;
    uint32_t lo = (uint32_t)m;
    if (lo < n) {
        uint32_t t = (uint32_t)-n % n;
        while (lo < t) {
            m = (recd_rng_next(r) >> 32) * (uint64_t)n;
            lo = (uint32_t)m;
        }
    }
    return (uint32_t)(m >> 32);
}

/* Uniform integer in [0, n), n > 0, from exactly one draw: the top 32 bits
 * times n, shifted down 32 (multiply-shift without rejection; each value's
 * probability is off by less than 2^-32). */
static inline uint32_t recd_rng_below_fast(recd_rng_t *r, uint32_t n)
{
    return (uint32_t)(((recd_rng_next(r) >> 32) * (uint64_t)n) >> 32);
}

/* Uniform integer in [0, n), n > 0, from exactly one draw: all 64 bits times
 * n, shifted down 64 (128-bit multiply-shift without rejection; bias below
 * n / 2^64). Not the same numbers as recd_rng_below_fast. */
static inline uint64_t recd_rng_below64_fast(recd_rng_t *r, uint64_t n)
{
    __extension__ typedef unsigned __int128 recd_u128_t;
    return (uint64_t)(((recd_u128_t)recd_rng_next(r) * n) >> 64);
}

/* ---- systemd notify (sd_notify protocol, no libsystemd) -------------------
 * Sends state (e.g. "READY=1\nSTATUS=serving") to $NOTIFY_SOCKET when it is
 * set; a no-op returning 0 otherwise. Thread-safe. */
int recd_sd_notify(const char *state);
int recd_sd_notifyf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Watchdog interval from $WATCHDOG_USEC (and $WATCHDOG_PID when set, which
 * must equal our pid); 0 when the watchdog is off. */
uint64_t recd_sd_watchdog_usec(void);

/* ---- build ----------------------------------------------------------------- */
const char *recd_build_git(void);      /* short commit id or "unknown" */
const char *recd_build_compiler(void); /* e.g. "gcc 12.2.0" */

/* ---- file system ---------------------------------------------------------- */
/* rm -rf path: removes a file, or a directory and everything below it,
 * without following symbolic links (a link is removed, not its target).
 * Stops at the first entry it cannot remove. Returns 0 when nothing is
 * left (also when path did not exist), -1 with errno set otherwise. */
int recd_remove_tree(const char *path);
/* fsync the directory path (so renames and creations in it are durable).
 * Returns 0, or -1 with errno set (errno is that of open or fsync). */
int recd_fsync_dir(const char *path);

/* ---- process -------------------------------------------------------------- */
/* Resident set size in bytes from /proc/self/statm; 0 if unknown. */
uint64_t recd_proc_rss_bytes(void);

#endif
