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
#include <stdlib.h>

#define FUZZ_CHECK(cond)                                                                 \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond); \
            abort();                                                                     \
        }                                                                                \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
