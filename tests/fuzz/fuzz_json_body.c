/*
 * recd_json_depth against jansson: for every document jansson accepts, the
 * scanner's depth equals the real nesting depth (capped at limit + 1), so
 * the depth check in front of the parser can never let a deeper document
 * through.
 */
#include <string.h>

#include <jansson.h>

#include "fuzz_common.h"
#include "recd/http.h"

static int jdepth(json_t *j)
{
    int best = 0;
    if (json_is_object(j)) {
        const char *k;
        json_t *v;
        json_object_foreach (j, k, v) {
            int d = jdepth(v);
            if (d > best)
                best = d;
        }
        return best + 1;
    }
    if (json_is_array(j)) {
        size_t i;
        json_t *v;
        json_array_foreach (j, i, v) {
            int d = jdepth(v);
            if (d > best)
                best = d;
        }
        return best + 1;
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size ? size : 1);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    int d32 = recd_json_depth(buf, size, 32);
    int dbig = recd_json_depth(buf, size, 5000);
    FUZZ_CHECK(d32 >= 0 && d32 <= 33);
    FUZZ_CHECK(dbig >= 0 && dbig <= 5001);
    FUZZ_CHECK(d32 == (dbig > 32 ? 33 : dbig));
    json_error_t je;
    json_t *j = json_loadb(buf, size, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
    if (j) {
        int real = jdepth(j);
        if (dbig != real)
            fprintf(stderr, "depth: scanner %d, jansson %d\n", dbig, real);
        FUZZ_CHECK(dbig == real);
        FUZZ_CHECK(d32 == (real > 32 ? 33 : real));
        json_decref(j);
    }
    free(buf);
    return 0;
}
