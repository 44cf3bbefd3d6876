/*
 * Unit tests for the sd_notify client in src/core/sdnotify.c: messages are
 * received byte for byte on real AF_UNIX datagram sockets (filesystem path
 * and abstract namespace), and the watchdog variables are parsed strictly.
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

#include <setjmp.h> /* cmocka needs these three before its header */
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

/* A bound receiving socket and the $NOTIFY_SOCKET value that reaches it. */
typedef struct listener {
    int fd;
    char dir[32];  /* temp dir holding a path socket, "" for abstract */
    char path[64]; /* socket file, "" for abstract */
    char env[128]; /* value for NOTIFY_SOCKET */
} listener_t;

static void listener_open_path(listener_t *l)
{
    struct sockaddr_un sa;

    memset(l, 0, sizeof(*l));
    snprintf(l->dir, sizeof(l->dir), "/tmp/recd-sdnotify-XXXXXX");
    assert_non_null(mkdtemp(l->dir));
    snprintf(l->path, sizeof(l->path), "%s/notify", l->dir);
    snprintf(l->env, sizeof(l->env), "%s", l->path);

    l->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert_true(l->fd >= 0);
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", l->path);
    assert_int_equal(bind(l->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
}

static void listener_open_abstract(listener_t *l)
{
    struct sockaddr_un sa;
    size_t n;

    memset(l, 0, sizeof(*l));
    snprintf(l->env, sizeof(l->env), "@recd-sdnotify-test-%ld-%d", (long)getpid(), rand());
    n = strlen(l->env);

    l->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert_true(l->fd >= 0);
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    /* sun_path[0] stays NUL; the name follows without a terminator, and the
     * address length must match what the sender computes exactly. */
    memcpy(sa.sun_path + 1, l->env + 1, n - 1);
    assert_int_equal(bind(l->fd, (struct sockaddr *)&sa,
                          (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n)),
                     0);
}

static void listener_close(listener_t *l)
{
    close(l->fd);
    if (l->path[0] != '\0')
        unlink(l->path);
    if (l->dir[0] != '\0')
        rmdir(l->dir);
    unsetenv("NOTIFY_SOCKET");
}

/* Receive one queued datagram (sendto on a local datagram socket has
 * queued it before returning) and compare it with want, length included. */
static void expect_datagram(listener_t *l, const char *want)
{
    size_t wlen = strlen(want);
    char *buf = malloc(wlen + 64);
    ssize_t got;

    assert_non_null(buf);
    got = recv(l->fd, buf, wlen + 64, MSG_DONTWAIT);
    assert_true(got >= 0);
    assert_int_equal((size_t)got, wlen);
    assert_memory_equal(buf, want, wlen);
    free(buf);
}

static void expect_no_datagram(listener_t *l)
{
    char buf[16];

    assert_int_equal(recv(l->fd, buf, sizeof(buf), MSG_DONTWAIT), -1);
    assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
}

static void test_path_socket(void **state)
{
    listener_t l;

    (void)state;
    listener_open_path(&l);
    assert_int_equal(setenv("NOTIFY_SOCKET", l.env, 1), 0);
    assert_int_equal(recd_sd_notify("READY=1\nSTATUS=x"), 0);
    expect_datagram(&l, "READY=1\nSTATUS=x");
    expect_no_datagram(&l);
    listener_close(&l);
}

static void test_abstract_socket(void **state)
{
    listener_t l;

    (void)state;
    listener_open_abstract(&l);
    assert_int_equal(setenv("NOTIFY_SOCKET", l.env, 1), 0);
    assert_int_equal(recd_sd_notify("WATCHDOG=1"), 0);
    expect_datagram(&l, "WATCHDOG=1");
    listener_close(&l);
}

static void test_notifyf(void **state)
{
    listener_t l;
    char big[3000];

    (void)state;
    listener_open_path(&l);
    assert_int_equal(setenv("NOTIFY_SOCKET", l.env, 1), 0);
    assert_int_equal(recd_sd_notifyf("STATUS=serving %d models on %s", 2, "127.0.0.1:8080"), 0);
    expect_datagram(&l, "STATUS=serving 2 models on 127.0.0.1:8080");

    /* Longer than the stack buffer: goes through the heap path. */
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(recd_sd_notifyf("STATUS=%s", big), 0);
    {
        char want[sizeof(big) + 8];
        snprintf(want, sizeof(want), "STATUS=%s", big);
        expect_datagram(&l, want);
    }
    listener_close(&l);
}

static void test_unset_is_noop(void **state)
{
    (void)state;
    unsetenv("NOTIFY_SOCKET");
    assert_int_equal(recd_sd_notify("READY=1"), 0);
    assert_int_equal(recd_sd_notifyf("STATUS=%d", 1), 0);
    assert_int_equal(setenv("NOTIFY_SOCKET", "", 1), 0);
    assert_int_equal(recd_sd_notify("READY=1"), 0);
    unsetenv("NOTIFY_SOCKET");
}

static void test_bad_arguments(void **state)
{
    char longpath[200];

    (void)state;
    assert_int_equal(recd_sd_notify(NULL), RECD_EINVAL);
    assert_int_equal(recd_sd_notify(""), RECD_EINVAL);

    /* Longer than sun_path (108 bytes on Linux). */
    memset(longpath, 'a', sizeof(longpath) - 1);
    longpath[0] = '/';
    longpath[sizeof(longpath) - 1] = '\0';
    assert_int_equal(setenv("NOTIFY_SOCKET", longpath, 1), 0);
    assert_int_equal(recd_sd_notify("READY=1"), RECD_EINVAL);
    longpath[0] = '@';
    assert_int_equal(setenv("NOTIFY_SOCKET", longpath, 1), 0);
    assert_int_equal(recd_sd_notify("READY=1"), RECD_EINVAL);

    /* Neither absolute nor abstract, or an empty abstract name. */
    assert_int_equal(setenv("NOTIFY_SOCKET", "relative/notify", 1), 0);
    assert_int_equal(recd_sd_notify("READY=1"), RECD_EINVAL);
    assert_int_equal(setenv("NOTIFY_SOCKET", "@", 1), 0);
    assert_int_equal(recd_sd_notify("READY=1"), RECD_EINVAL);
    unsetenv("NOTIFY_SOCKET");
}

static void test_no_listener_is_eio(void **state)
{
    listener_t l;

    (void)state;
    /* Bind, then close and unlink: the path no longer reaches anyone. */
    listener_open_path(&l);
    close(l.fd);
    unlink(l.path);
    assert_int_equal(setenv("NOTIFY_SOCKET", l.path, 1), 0);
    assert_int_equal(recd_sd_notify("READY=1"), RECD_EIO);
    assert_int_equal(setenv("NOTIFY_SOCKET", "@recd-sdnotify-nobody-listens-here", 1), 0);
    assert_int_equal(recd_sd_notify("READY=1"), RECD_EIO);
    rmdir(l.dir);
    unsetenv("NOTIFY_SOCKET");
}

static void test_watchdog_bad_values(void **state)
{
    static const char *const bad[] = {
        "",    "abc", "0",   "12x", "x12",  " 12",
        "12 ", "+12", "-12", "1.5", "0x10", "18446744073709551616", /* 2^64: overflows */
    };
    size_t i;

    (void)state;
    unsetenv("WATCHDOG_PID");
    unsetenv("WATCHDOG_USEC");
    assert_int_equal(recd_sd_watchdog_usec(), 0);
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(setenv("WATCHDOG_USEC", bad[i], 1), 0);
        if (recd_sd_watchdog_usec() != 0)
            fail_msg("WATCHDOG_USEC=\"%s\" accepted", bad[i]);
    }
    unsetenv("WATCHDOG_USEC");
}

static void test_watchdog_good(void **state)
{
    char pid[32];

    (void)state;
    unsetenv("WATCHDOG_PID");
    assert_int_equal(setenv("WATCHDOG_USEC", "30000000", 1), 0);
    assert_int_equal(recd_sd_watchdog_usec(), 30000000);
    assert_int_equal(setenv("WATCHDOG_USEC", "18446744073709551615", 1), 0);
    assert_true(recd_sd_watchdog_usec() == UINT64_MAX);

    assert_int_equal(setenv("WATCHDOG_USEC", "2500000", 1), 0);
    snprintf(pid, sizeof(pid), "%ld", (long)getpid());
    assert_int_equal(setenv("WATCHDOG_PID", pid, 1), 0);
    assert_int_equal(recd_sd_watchdog_usec(), 2500000);
    unsetenv("WATCHDOG_PID");
    unsetenv("WATCHDOG_USEC");
}

static void test_watchdog_pid_mismatch(void **state)
{
    char pid[32];

    (void)state;
    assert_int_equal(setenv("WATCHDOG_USEC", "2500000", 1), 0);
    snprintf(pid, sizeof(pid), "%ld", (long)getpid() + 1);
    assert_int_equal(setenv("WATCHDOG_PID", pid, 1), 0);
    assert_int_equal(recd_sd_watchdog_usec(), 0);
    assert_int_equal(setenv("WATCHDOG_PID", "abc", 1), 0);
    assert_int_equal(recd_sd_watchdog_usec(), 0);
    assert_int_equal(setenv("WATCHDOG_PID", "", 1), 0);
    assert_int_equal(recd_sd_watchdog_usec(), 0);
    unsetenv("WATCHDOG_PID");
    unsetenv("WATCHDOG_USEC");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_path_socket),
        cmocka_unit_test(test_abstract_socket),
        cmocka_unit_test(test_notifyf),
        cmocka_unit_test(test_unset_is_noop),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_no_listener_is_eio),
        cmocka_unit_test(test_watchdog_bad_values),
        cmocka_unit_test(test_watchdog_good),
        cmocka_unit_test(test_watchdog_pid_mismatch),
    };

    srand((unsigned)getpid());
    return cmocka_run_group_tests(tests, NULL, NULL);
}
