/* Warm-up of both stages: retrieval, then ranking of what it returned. */
#include "recd/rank.h"

int recd_rank_warmup(const recd_bundle_t *b, size_t rounds, recd_err_t *err)
{
    int rc = recd_candgen_warmup(b, rounds, err);
    const recd_ranker_t *rr = recd_rank_of(b);
    if (rc < 0 || !rr)
        return rc;
    recd_arena_t a;
    recd_arena_init(&a, 1 << 16);
    recd_overlay_t *o = recd_overlay_acquire((recd_bundle_t *)b);
    for (size_t r = 0; r < rounds && rc == 0; r++) {
        recd_field_buckets_t *fb = recd_candgen_missing_fields(b, &a);
        size_t n = b->n_items < 300 ? b->n_items : 300;
        recd_candidate_t *c = recd_arena_alloc(&a, (n + 1) * sizeof *c);
        float *scores = recd_arena_alloc(&a, (n + 1) * sizeof *scores);
        if (!fb || !c || !scores) {
            rc = recd_err_set(err, RECD_ENOMEM, "out of memory");
            break;
        }
        for (size_t i = 0; i < n; i++)
            c[i] = (recd_candidate_t){(int64_t)((r * 7919 + i * 104729) % b->n_items), -1, 0.0f};
        rc = recd_rank_score(rr, b, o, fb, c, n, &a, scores, NULL, err);
        recd_arena_reset(&a);
    }
    recd_overlay_release(o);
    recd_arena_free(&a);
    return rc;
}
