/*
 * Shared bits of the fuzz targets. Invariant failures abort() so libFuzzer
 * (and the plain replay driver) report them as crashes, independent of
 * NDEBUG.
 */
#ifndef RECD_FUZZ_COMMON_H
#define RECD_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#define FUZZ_CHECK(cond)                                                                 \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond); \
            abort();                                                                     \
        }                                                                                \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* FUZZ_VERBOSE=1: targets print each input's outcome (to check seeds). */
static inline int fuzz_verbose(void)
{
    static int v = -1;
    if (v < 0) {
        const char *e = getenv("FUZZ_VERBOSE");
        v = e && *e && *e != '0';
    }
    return v;
}

/* Write a file for targets that feed files to a loader: a new file each
 * time (ext4 flushes a file truncated to zero and rewritten when it is
 * closed, which would make every input wait for the disk). Aborts on error. */
static inline void fuzz_write_file(const char *path, const uint8_t *p, size_t n)
{
    unlink(path);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        perror(path);
        abort();
    }
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w <= 0) {
            perror(path);
            abort();
        }
        p += w;
        n -= (size_t)w;
    }
    close(fd);
}

#endif
