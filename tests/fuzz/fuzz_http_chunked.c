/*
 * Fuzz the chunked-body decoder. The first byte picks the body limit, the
 * next two seed the sizes of the pieces the rest is fed in. Invariants: the
 * decoded total never exceeds the limit, consumed never exceeds what was
 * offered, and feeding in pieces gives the same outcome as one call.
 */
#include <string.h>

#include "fuzz_common.h"
#include "recd/http.h"

typedef struct outcome {
    int rc;
    size_t consumed;
    size_t out_len;
    int status;
} outcome_t;

static void decode(const char *in, size_t len, uint32_t seed, int64_t max, char *out, outcome_t *o)
{
    recd_http_chunked_t c;
    recd_http_chunked_init(&c);
    recd_http_limits_t l = {.max_header_bytes = 256, .max_headers = 16, .max_body_bytes = max};
    size_t off = 0, avail = 0;
    memset(o, 0, sizeof *o);
    for (;;) {
        size_t step = len; /* seed 0: everything at once */
        if (seed) {
            seed = seed * 1103515245u + 12345u;
            step = 1 + (seed >> 16) % 17;
        }
        avail = avail + step > len ? len : avail + step;
        size_t used = 0;
        recd_http_perr_t e;
        memset(&e, 0, sizeof e);
        o->rc = recd_http_chunked_feed(&c, in + off, avail - off, &used, out, (size_t)max,
                                       &o->out_len, &l, &e);
        FUZZ_CHECK(o->rc == 1 || o->rc == 0 || o->rc == -1);
        FUZZ_CHECK(used <= avail - off);
        FUZZ_CHECK(o->out_len <= (size_t)max);
        FUZZ_CHECK(c.total >= 0 && c.total <= max);
        FUZZ_CHECK((size_t)c.total == o->out_len);
        off += used;
        if (o->rc == -1) {
            FUZZ_CHECK(e.status >= 400 && e.status < 500 && e.code != NULL);
            o->status = e.status;
            break;
        }
        if (o->rc == 1 || (avail == len && used == 0))
            break;
    }
    o->consumed = off;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    int64_t max = 1 + data[0] * 4; /* 1 .. 1021 */
    uint32_t seed = (uint32_t)data[1] << 8 | data[2] | 1u;
    const char *in = (const char *)data + 3;
    size_t len = size - 3;
    char *copy = malloc(len ? len : 1);
    char *out1 = malloc((size_t)max), *out2 = malloc((size_t)max);
    if (!copy || !out1 || !out2)
        goto done;
    memcpy(copy, in, len);
    outcome_t a, b;
    decode(copy, len, seed, max, out1, &a);
    decode(copy, len, 0, max, out2, &b);
    FUZZ_CHECK(a.rc == b.rc);
    if (a.rc == 1) {
        FUZZ_CHECK(a.consumed == b.consumed);
        FUZZ_CHECK(a.out_len == b.out_len && memcmp(out1, out2, a.out_len) == 0);
    } else if (a.rc == -1) {
        FUZZ_CHECK(a.status == b.status);
    }
done:
    free(copy);
    free(out1);
    free(out2);
    return 0;
}
