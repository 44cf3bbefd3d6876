/*
 * The systemd notification protocol, spoken directly (no libsystemd).
 *
 * A service started with Type=notify finds the path of an AF_UNIX datagram
 * socket in $NOTIFY_SOCKET and sends it newline-separated "KEY=value"
 * assignments (READY=1, STATUS=..., WATCHDOG=1, ...). A leading '@' in the
 * variable names a socket in the Linux abstract namespace: the '@' stands for
 * the NUL byte that starts the address, and the address length covers only
 * the name, never a trailing NUL.
 *
 * Nothing here keeps state between calls: every message opens a socket,
 * sends one datagram and closes it. Notifications are rare (start-up,
 * reloads, a watchdog ping every few seconds), so the extra syscalls cost
 * nothing that matters, and there is no descriptor to share between threads
 * or to leak across a fork.
 */
#include "recd/core.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>
#include <unistd.h>

/* Formatted messages up to this size are built on the stack. */
#define NOTIFY_STACK_BYTES 512

/* Fill *sa and *len from the value of $NOTIFY_SOCKET. Returns 0, or
 * RECD_EINVAL when the value is neither an absolute path nor '@'-prefixed,
 * or does not fit in sun_path. */
static int notify_addr(const char *e, struct sockaddr_un *sa, socklen_t *len)
{
    size_t n = strlen(e);

    memset(sa, 0, sizeof(*sa));
    sa->sun_family = AF_UNIX;
    if (e[0] == '@') {
        /* Abstract: sun_path = NUL + name; no terminator is counted. */
        if (n < 2 || n > sizeof(sa->sun_path))
            return RECD_EINVAL;
        memcpy(sa->sun_path + 1, e + 1, n - 1);
        *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
        return 0;
    }
    if (e[0] != '/')
        return RECD_EINVAL;
    /* Filesystem path: keep room for the terminating NUL. */
    if (n >= sizeof(sa->sun_path))
        return RECD_EINVAL;
    memcpy(sa->sun_path, e, n);
    *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
    return 0;
}

/* Send len bytes of msg as one datagram to the address in e. */
static int notify_send(const char *e, const char *msg, size_t len)
{
    struct sockaddr_un sa;
    socklen_t salen;
    ssize_t sent;
    int fd, rc;

    rc = notify_addr(e, &sa, &salen);
    if (rc != 0)
        return rc;
    fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return RECD_EIO;
    do {
        /* MSG_NOSIGNAL: a vanished manager must not kill us with SIGPIPE,
         * whatever the process's SIGPIPE disposition is at the time. */
        sent = sendto(fd, msg, len, MSG_NOSIGNAL, (const struct sockaddr *)&sa, salen);
    } while (sent < 0 && errno == EINTR);
    close(fd);
    /* A datagram is delivered whole or not at all. */
    return (sent >= 0 && (size_t)sent == len) ? 0 : RECD_EIO;
}

/* Contract: borrows state (a NUL-terminated, non-empty string, sent as is,
 * without a terminator). Returns 0 when $NOTIFY_SOCKET is unset or empty
 * (not running under a service manager that wants notifications) or when
 * the datagram was sent; RECD_EINVAL for a NULL or empty state or an address
 * that is not an absolute path / '@'-name or is longer than sun_path;
 * RECD_EIO when the socket cannot be created or the send fails (no listener,
 * permission denied, ...). Thread-safe as long as no thread changes the
 * environment concurrently (getenv). */
int recd_sd_notify(const char *state)
{
    const char *e;

    if (state == NULL || state[0] == '\0')
        return RECD_EINVAL;
    e = getenv("NOTIFY_SOCKET");
    if (e == NULL || e[0] == '\0')
        return 0;
    return notify_send(e, state, strlen(state));
}

/* Contract: as recd_sd_notify, with the message built from a printf format.
 * Nothing is formatted when $NOTIFY_SOCKET is unset. Long messages go
 * through a heap buffer: RECD_ENOMEM if that allocation fails, RECD_EINVAL
 * if the format fails or yields an empty string. Thread-safe (as above). */
int recd_sd_notifyf(const char *fmt, ...)
{
    char stackbuf[NOTIFY_STACK_BYTES];
    char *buf = stackbuf;
    const char *e;
    va_list ap;
    int n, rc;

    if (fmt == NULL)
        return RECD_EINVAL;
    e = getenv("NOTIFY_SOCKET");
    if (e == NULL || e[0] == '\0')
        return 0;

    va_start(ap, fmt);
    n = vsnprintf(stackbuf, sizeof(stackbuf), fmt, ap);
    va_end(ap);
    if (n <= 0)
        return RECD_EINVAL;
    if ((size_t)n >= sizeof(stackbuf)) {
        buf = malloc((size_t)n + 1);
        if (buf == NULL)
            return RECD_ENOMEM;
        va_start(ap, fmt);
        n = vsnprintf(buf, (size_t)n + 1, fmt, ap);
        va_end(ap);
        if (n <= 0) {
            free(buf);
            return RECD_EINVAL;
        }
    }
    rc = notify_send(e, buf, (size_t)n);
    if (buf != stackbuf)
        free(buf);
    return rc;
}

/* Parse s as a positive decimal number with digits only (no sign, spaces or
 * suffix) that fits in 64 bits. Returns 0 for anything else. */
static uint64_t parse_positive_u64(const char *s)
{
    uint64_t v = 0;

    if (s == NULL || *s == '\0')
        return 0;
    for (; *s != '\0'; s++) {
        unsigned d;

        if (*s < '0' || *s > '9')
            return 0;
        d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10)
            return 0; /* overflow */
        v = v * 10 + d;
    }
    return v;
}

/* Contract: the watchdog interval in microseconds that the service manager
 * expects WATCHDOG=1 within, or 0 when the watchdog is off for this process:
 * $WATCHDOG_USEC unset, not a positive decimal number, or $WATCHDOG_PID set
 * to anything but our pid (the variables were inherited from a parent that
 * the watchdog is meant for). Callers ping at half the interval. Reads the
 * environment only; thread-safe as recd_sd_notify. */
uint64_t recd_sd_watchdog_usec(void)
{
    const char *pid_s = getenv("WATCHDOG_PID");
    uint64_t usec = parse_positive_u64(getenv("WATCHDOG_USEC"));

    if (usec == 0)
        return 0;
    if (pid_s != NULL && parse_positive_u64(pid_s) != (uint64_t)getpid())
        return 0;
    return usec;
}
