/*
 * DeepFM: Guo, Tang, Ye, Li, He, "DeepFM: A Factorization-Machine based
 * Neural Network for CTR Prediction" (IJCAI 2017). The FM component shares
 * the field embeddings with the deep component:
 *   logit = bias + sum_f w_f + 1/2 (|sum_f v_f|^2 - sum_f |v_f|^2) + deep
 * with the pairwise term by the sum-of-squares identity of Rendle's
 * factorization machines (ICDM 2010). The user/context share of sum_f v_f
 * and sum_f |v_f|^2 is accumulated once per request; each candidate adds
 * its item fields to a copy.
 */
#include <stdlib.h>
#include <string.h>

#include "recd/nn.h"
#include "rank_int.h"

static void *deepfm_load(const recd_bundle_t *b, recd_err_t *err)
{
    rank_net_t *net = calloc(1, sizeof *net);
    if (!net) {
        recd_err_set(err, RECD_ENOMEM, "out of memory");
        return NULL;
    }
    json_t *r = json_object_get((json_t *)b->manifest, "ranker");
    if (rank_net_init(net, b, r, err) != 0) {
        rank_net_clear(net);
        free(net);
        return NULL;
    }
    return net;
}

static void deepfm_free(void *p)
{
    if (!p)
        return;
    rank_net_clear(p);
    free(p);
}

static int deepfm_logits(const void *p, const recd_bundle_t *b, const recd_overlay_t *o,
                         const recd_field_buckets_t *fields, const recd_candidate_t *c, size_t n,
                         recd_arena_t *a, float *logits, recd_rank_explain_t *explain,
                         recd_err_t *err)
{
    const rank_net_t *net = p;
    rank_pass_t pass;
    int rc = rank_net_forward(net, b, o, fields, c, n, a, &pass, err);
    if (rc != 0)
        return rc;
    size_t k = net->k, ki = k * net->ni;
    float *su = recd_arena_alloc(a, 2 * k * sizeof(float));
    if (!su)
        return recd_err_set(err, RECD_ENOMEM, "out of memory (ranker scratch)");
    float *s = su + k, squ = 0.0f;
    memset(su, 0, k * sizeof *su);
    recd_nn_fm_accum(pass.xu, net->nu, k, su, &squ);
    for (size_t i = 0; i < n; i++) {
        float sq = squ;
        memcpy(s, su, k * sizeof *s);
        recd_nn_fm_accum(pass.xi + i * ki, net->ni, k, s, &sq);
        float fm = recd_nn_fm_pairwise(s, k, sq);
        logits[i] = net->bias + pass.lin[i] + fm + pass.deep[i];
        if (explain)
            explain[i] = (recd_rank_explain_t){.bias = net->bias,
                                               .first_order = pass.lin[i],
                                               .second_order = fm,
                                               .deep = pass.deep[i],
                                               .logit = logits[i]};
    }
    return 0;
}

const recd_rank_ops_t recd_rank_deepfm_ops = {
    .type = "deepfm",
    .load = deepfm_load,
    .logits = deepfm_logits,
    .free = deepfm_free,
};
