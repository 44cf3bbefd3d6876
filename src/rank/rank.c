/* The ranker attached to a bundle: network ops by manifest "type", and the
 * output transform by "output" (rank.h). */
#include <stdlib.h>
#include <string.h>

#include "recd/nn.h"
#include "rank_int.h"

struct recd_ranker {
    const recd_rank_ops_t *ops;
    void *net;      /* owned; ops->free */
    int output_exp; /* "output": "exp" (else sigmoid) */
};

/* Every network type recd serves; a new one is one more entry. */
static const recd_rank_ops_t *const NETWORKS[] = {
    &recd_rank_deepfm_ops,
    &recd_rank_wide_deep_ops,
};

static void ranker_free(void *p)
{
    recd_ranker_t *r = p;
    if (!r)
        return;
    r->ops->free(r->net);
    free(r);
}

int recd_rank_attach(recd_bundle_t *b, recd_err_t *err)
{
    json_t *sec = json_object_get((json_t *)b->manifest, "ranker");
    if (!sec)
        return 0;
    if (!json_is_object(sec))
        return recd_err_set(err, RECD_EINVAL, "manifest.json: ranker: expected an object");
    const char *type = json_string_value(json_object_get(sec, "type"));
    const recd_rank_ops_t *ops = NULL;
    for (size_t i = 0; type && i < sizeof NETWORKS / sizeof NETWORKS[0]; i++)
        if (strcmp(NETWORKS[i]->type, type) == 0)
            ops = NETWORKS[i];
    if (!ops)
        return recd_err_set(err, RECD_EINVAL,
                            "manifest.json: ranker.type: unsupported \"%s\" (deepfm, wide_deep)",
                            type ? type : "(missing)");
    json_t *out = json_object_get(sec, "output");
    int output_exp = 0;
    if (out) {
        const char *s = json_string_value(out);
        if (s && strcmp(s, "exp") == 0)
            output_exp = 1;
        else if (!s || strcmp(s, "sigmoid") != 0)
            return recd_err_set(err, RECD_EINVAL,
                                "manifest.json: ranker.output: unsupported \"%s\" (sigmoid, exp)",
                                s ? s : "(not a string)");
    }
    recd_ranker_t *r = calloc(1, sizeof *r);
    if (!r)
        return recd_err_set(err, RECD_ENOMEM, "out of memory");
    r->ops = ops;
    r->output_exp = output_exp;
    r->net = ops->load(b, err);
    if (!r->net) {
        free(r);
        return err && err->code ? err->code : RECD_ERR;
    }
    if (b->ranker && b->ranker_free) /* re-attach (before publication only) */
        b->ranker_free(b->ranker);
    b->ranker = r;
    b->ranker_free = ranker_free;
    return 0;
}

const recd_ranker_t *recd_rank_of(const recd_bundle_t *b)
{
    return b && b->ranker_free == ranker_free ? b->ranker : NULL;
}

int recd_rank_score(const recd_ranker_t *r, const recd_bundle_t *b, const recd_overlay_t *o,
                    const recd_field_buckets_t *fields, const recd_candidate_t *c, size_t n,
                    recd_arena_t *a, float *scores, recd_rank_explain_t *explain, recd_err_t *err)
{
    return recd_rank_score_as(r, b, o, fields, c, n, a, RECD_RANK_OUTPUT_BUNDLE, scores, explain,
                              err);
}

int recd_rank_score_as(const recd_ranker_t *r, const recd_bundle_t *b, const recd_overlay_t *o,
                       const recd_field_buckets_t *fields, const recd_candidate_t *c, size_t n,
                       recd_arena_t *a, int output, float *scores, recd_rank_explain_t *explain,
                       recd_err_t *err)
{
    if (n == 0)
        return 0;
    int rc = r->ops->logits(r->net, b, o, fields, c, n, a, scores, explain, err);
    if (rc != 0)
        return rc;
    if (output == RECD_RANK_OUTPUT_EXP || (output == RECD_RANK_OUTPUT_BUNDLE && r->output_exp))
        recd_nn_exp(scores, n, scores);
    else
        recd_nn_sigmoid(scores, n, scores);
    return 0;
}

const char *recd_rank_type(const recd_ranker_t *r)
{
    return r->ops->type;
}
const char *recd_rank_output(const recd_ranker_t *r)
{
    return r->output_exp ? "exp" : "sigmoid";
}
