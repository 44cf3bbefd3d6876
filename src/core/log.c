/* One-line-per-event logging to stderr or a file. */
#include "recd/core.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static _Atomic int log_level = RECD_LOG_INFO;
static _Atomic int log_fd = 2; /* stderr until a file is opened */

static const char *const level_names[] = {"debug", "info", "warn", "error"};

int recd_log_level_parse(const char *s)
{
    for (int i = 0; i < 4; i++)
        if (s && strcmp(s, level_names[i]) == 0)
            return i;
    return -1;
}

const char *recd_log_level_name(recd_log_level_t level)
{
    return (unsigned)level < 4 ? level_names[level] : "?";
}

void recd_log_set_level(recd_log_level_t level)
{
    atomic_store(&log_level, (int)level);
}
recd_log_level_t recd_log_get_level(void)
{
    return (recd_log_level_t)atomic_load(&log_level);
}

int recd_log_open(const char *path, recd_err_t *err)
{
    int cur = atomic_load(&log_fd);
    if (!path || !*path) {
        if (cur != 2) {
            /* point the log descriptor back at stderr, atomically */
            if (dup2(2, cur) < 0)
                return recd_err_set(err, RECD_EIO, "log: dup2: %s", strerror(errno));
        }
        return 0;
    }
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0)
        return recd_err_set(err, RECD_EIO, "log.file: cannot open '%s': %s", path, strerror(errno));
    if (cur == 2) {
        atomic_store(&log_fd, fd);
        return 0;
    }
    /* dup2 replaces the old file under the same number: concurrent writers
     * see either the old or the new file, never a closed descriptor. */
    if (dup3(fd, cur, O_CLOEXEC) < 0) {
        int e = errno;
        close(fd);
        return recd_err_set(err, RECD_EIO, "log: dup3: %s", strerror(e));
    }
    close(fd);
    return 0;
}

void recd_log_vwrite(recd_log_level_t level, const char *rid, const char *fmt, va_list ap)
{
    if ((int)level < atomic_load_explicit(&log_level, memory_order_relaxed))
        return;
    char line[2048];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ %s ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     ts.tv_nsec / 1000, recd_log_level_name(level));
    if (rid && *rid)
        n += snprintf(line + n, sizeof line - (size_t)n, "[%s] ", rid);
    int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    if (m < 0)
        m = 0;
    size_t len = (size_t)n + (size_t)m;
    if (len > sizeof line - 2)
        len = sizeof line - 2;
    /* one event, one line: fold any newline the message carried */
    for (size_t i = (size_t)n; i < len; i++)
        if (line[i] == '\n' || line[i] == '\r')
            line[i] = ' ';
    line[len++] = '\n';
    ssize_t w = write(atomic_load_explicit(&log_fd, memory_order_relaxed), line, len);
    (void)w; /* nowhere left to report a failing log write */
}

void recd_log_write(recd_log_level_t level, const char *rid, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    recd_log_vwrite(level, rid, fmt, ap);
    va_end(ap);
}
