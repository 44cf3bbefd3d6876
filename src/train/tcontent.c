/*
 * The content model: the cold-start idea of van den Oord, Dieleman,
 * Schrauwen, "Deep content-based music recommendation" (NIPS 2013) —
 * learn to predict an item's latent factors from its content, on items
 * whose factors are known, then use it for items nobody has interacted
 * with yet. Here the content is the item's hashed content fields (genres,
 * year, title words, tags; each the mean of its values' embeddings), the
 * network a ReLU MLP with a linear output, the target the candidate
 * model's output embedding cand.item_emb, the loss the squared error
 * weighted by log(1 + training interactions) (well-observed items have
 * better-estimated factors).
 */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "recd/model.h"

struct tf_content {
    tf_content_opts_t o;
    size_t D, K, nin;
    int field_of[TF_MAX_FIELDS];
    recd_param_t *tab[TF_MAX_FIELDS];
    recd_param_t *w[TF_MAX_LAYERS + 1], *b[TF_MAX_LAYERS + 1];
    size_t in[TF_MAX_LAYERS + 1], out[TF_MAX_LAYERS + 1];
    size_t nlayers;
    double valid_mse, target_ms;
    int epochs;
};

void tf_content_defaults(tf_content_opts_t *o)
{
    memset(o, 0, sizeof *o);
    o->embed_dim = 32;
    o->hidden[0] = 256;
    o->nhidden = 1;
    o->lr = 2e-3f;
    o->l2_emb = 1e-5f;
    o->batch = 64;
    o->max_epochs = 40;
    o->patience = 4;
    o->min_count = 3;
    o->seed = 1;
}

void tf_content_free(tf_content_t *m)
{
    if (!m)
        return;
    for (size_t j = 0; j < TF_MAX_FIELDS; j++)
        recd_param_free(m->tab[j]);
    for (size_t l = 0; l <= TF_MAX_LAYERS; l++) {
        recd_param_free(m->w[l]);
        recd_param_free(m->b[l]);
    }
    free(m);
}

void tf_content_summary(const tf_content_t *m, double *valid_mse, double *target_ms, int *epochs)
{
    *valid_mse = m->valid_mse;
    *target_ms = m->target_ms;
    *epochs = m->epochs;
}

static void content_input(const tf_content_t *m, const tf_schema_t *s, uint32_t item, float *x)
{
    size_t K = m->K;
    memset(x, 0, K * m->nin * sizeof *x);
    for (size_t j = 0; j < m->nin; j++)
        tf_field_mean(&s->f[m->field_of[j]], item, m->tab[j]->w, K, x + j * K);
}

void tf_content_embed(const tf_content_t *m, const tf_schema_t *s, uint32_t item, float *out)
{
    size_t mx = m->in[0];
    for (size_t l = 0; l < m->nlayers; l++)
        mx = m->out[l] > mx ? m->out[l] : mx;
    float *x = malloc(2 * mx * sizeof *x);
    if (!x) {
        memset(out, 0, m->D * sizeof *out);
        return;
    }
    float *y = x + mx;
    content_input(m, s, item, x);
    for (size_t l = 0; l < m->nlayers; l++) {
        int last = l + 1 == m->nlayers;
        recd_nn_dense(m->w[l]->w, m->b[l]->w, (int)m->in[l], (int)m->out[l], !last, x,
                      last ? out : y);
        float *t = x;
        x = y;
        y = t;
    }
    free(x < y ? x : y);
}

/* Weighted squared error of the model on items[0..n). */
static double eval_mse(const tf_content_t *m, const tf_schema_t *s, const uint32_t *items,
                       size_t n, const float *target, const float *wt)
{
    float *p = malloc(m->D * sizeof *p);
    double se = 0, ws = 0;
    for (size_t i = 0; p && i < n; i++) {
        tf_content_embed(m, s, items[i], p);
        double e = 0;
        for (size_t d = 0; d < m->D; d++) {
            double x = (double)p[d] - target[(size_t)items[i] * m->D + d];
            e += x * x;
        }
        se += wt[items[i]] * e;
        ws += wt[items[i]];
    }
    free(p);
    return ws > 0 ? se / ws : 0;
}

tf_content_t *tf_content_fit(const tf_content_opts_t *o, const tf_schema_t *s, size_t n_items,
                             const float *target, size_t D, const uint32_t *count,
                             recd_err_t *err)
{
    if (o->embed_dim == 0 || o->batch == 0 || o->nhidden >= TF_MAX_LAYERS) {
        recd_err_set(err, RECD_EINVAL, "content model: bad options");
        return NULL;
    }
    tf_content_t *m = calloc(1, sizeof *m);
    if (!m) {
        recd_err_set(err, RECD_ENOMEM, "out of memory");
        return NULL;
    }
    m->o = *o;
    m->D = D;
    m->K = o->embed_dim;
    for (size_t i = 0; i < s->nf; i++)
        if (s->f[i].uses_content && s->f[i].source == TF_SRC_ITEM)
            m->field_of[m->nin++] = (int)i;
    if (m->nin == 0) {
        tf_content_free(m);
        recd_err_set(err, RECD_EINVAL, "content model: the dataset has no content columns "
                                       "(genres, year, title, tags)");
        return NULL;
    }
    size_t K = m->K;
    m->nlayers = o->nhidden + 1;
    size_t prev = K * m->nin, maxw = prev;
    for (size_t l = 0; l < m->nlayers; l++) {
        m->in[l] = prev;
        m->out[l] = l < o->nhidden ? o->hidden[l] : D;
        prev = m->out[l];
        maxw = prev > maxw ? prev : maxw;
    }
    int ok = 1;
    recd_param_t *ps[TF_MAX_FIELDS + 2 * TF_MAX_LAYERS + 2];
    size_t nps = 0;
    uint64_t seed = o->seed * 7919ULL + 5;
    for (size_t j = 0; ok && j < m->nin; j++) {
        char name[96];
        snprintf(name, sizeof name, "content.emb.%s", s->f[m->field_of[j]].name);
        ok &= (m->tab[j] = recd_param_new(name, s->f[m->field_of[j]].buckets, K, 1,
                                          RECD_OPT_ADAM)) != NULL;
        if (ok) {
            recd_nn_init_normal(m->tab[j]->w, m->tab[j]->rows * K, 0.05f, seed + j);
            m->tab[j]->l2 = o->l2_emb;
            ps[nps++] = m->tab[j];
        }
    }
    for (size_t l = 0; ok && l < m->nlayers; l++) {
        char name[64];
        snprintf(name, sizeof name, "content.%zu.w", l);
        ok &= (m->w[l] = recd_param_new(name, m->in[l], m->out[l], 0, RECD_OPT_ADAM)) != NULL;
        snprintf(name, sizeof name, "content.%zu.b", l);
        ok &= (m->b[l] = recd_param_new(name, m->out[l], 1, 0, RECD_OPT_ADAM)) != NULL;
        if (ok) {
            recd_nn_init_glorot(m->w[l]->w, m->in[l], m->out[l], seed + 100 + l);
            m->w[l]->l2 = m->b[l]->l2 = 0;
            ps[nps++] = m->w[l];
            ps[nps++] = m->b[l];
        }
    }
    /* the live model's weights where the shapes agree */
    size_t warm_copied = 0;
    for (size_t j = 0; ok && o->warm && j < m->nin; j++)
        warm_copied += tf_warm_copy(o->warm, m->tab[j]->name, m->tab[j]->w, m->tab[j]->rows, K, 0);
    for (size_t l = 0; ok && o->warm && l < m->nlayers; l++) {
        warm_copied += tf_warm_copy(o->warm, m->w[l]->name, m->w[l]->w, m->in[l], m->out[l], 0);
        warm_copied += tf_warm_copy(o->warm, m->b[l]->name, m->b[l]->w, m->out[l], 1, 0);
    }
    /* items with enough interactions, 10% of them for validation */
    uint32_t *items = malloc((n_items ? n_items : 1) * sizeof *items);
    float *wt = malloc((n_items ? n_items : 1) * sizeof *wt);
    size_t B = o->batch, L = m->nlayers;
    float *act[TF_MAX_LAYERS + 1] = {0};
    float *d0 = malloc(B * maxw * sizeof *d0), *d1 = malloc(B * maxw * sizeof *d1);
    recd_param_snapshot_t snap = {0};
    ok &= items && wt && d0 && d1;
    for (size_t l = 0; ok && l <= L; l++)
        ok &= (act[l] = malloc(B * (l == 0 ? m->in[0] : m->out[l - 1]) * sizeof(float))) != NULL;
    if (!ok) {
        recd_err_set(err, RECD_ENOMEM, "out of memory (content model)");
        goto fail;
    }
    size_t n = 0;
    double ms = 0;
    for (size_t i = 0; i < n_items; i++) {
        wt[i] = (float)log1p((double)count[i]);
        if (count[i] >= o->min_count)
            items[n++] = (uint32_t)i;
    }
    if (n < 10 && warm_copied == nps) {
        /* too little to learn from, but a complete model to keep */
        m->valid_mse = NAN;
        goto out;
    }
    if (n < 10) {
        recd_err_set(err, RECD_EINVAL,
                     "content model: only %zu items have %u or more training interactions", n,
                     o->min_count);
        goto fail;
    }
    recd_rng_t rng;
    recd_rng_seed_stream(&rng, o->seed, 11);
    for (size_t i = n; i > 1; i--) {
        size_t j = recd_rng_below(&rng, (uint32_t)i);
        uint32_t t = items[i - 1];
        items[i - 1] = items[j];
        items[j] = t;
    }
    size_t nval = n / 10, ntr = n - nval;
    const uint32_t *val = items + ntr;
    double wsum = 0;
    for (size_t i = 0; i < n; i++) {
        for (size_t d = 0; d < D; d++) {
            double x = target[(size_t)items[i] * D + d];
            ms += wt[items[i]] * x * x;
        }
        wsum += wt[items[i]];
    }
    m->target_ms = wsum > 0 ? ms / wsum : 0;
    recd_opt_t opt;
    recd_opt_init(&opt, RECD_OPT_ADAM);
    opt.lr = o->lr;
    double best = INFINITY;
    int bad = 0;
    for (int ep = 1; ep <= o->max_epochs; ep++) {
        if (TF_CANCELLED(o->cancel, o->cancel_ctx)) {
            recd_err_set(err, RECD_EAGAIN, "content model: cancelled");
            goto fail;
        }
        uint64_t t0 = recd_time_mono_us();
        for (size_t i = ntr; i > 1; i--) {
            size_t j = recd_rng_below(&rng, (uint32_t)i);
            uint32_t t = items[i - 1];
            items[i - 1] = items[j];
            items[j] = t;
        }
        double loss = 0, wl = 0;
        for (size_t b0 = 0; b0 < ntr; b0 += B) {
            size_t nb = ntr - b0 < B ? ntr - b0 : B;
            for (size_t i = 0; i < nb; i++)
                content_input(m, s, items[b0 + i], act[0] + i * m->in[0]);
            for (size_t l = 0; l < L; l++)
                recd_nn_dense_batch(m->w[l]->w, m->b[l]->w, (int)m->in[l], (int)m->out[l],
                                    l + 1 < L, act[l], nb, act[l + 1]);
            /* weighted squared error; gradient (p - t) * w / sum w */
            double bw = 0;
            for (size_t i = 0; i < nb; i++)
                bw += wt[items[b0 + i]];
            float *dy = d0;
            for (size_t i = 0; i < nb; i++) {
                const float *t = target + (size_t)items[b0 + i] * D;
                float *p = act[L] + i * D, wi = wt[items[b0 + i]];
                for (size_t d = 0; d < D; d++) {
                    float e = p[d] - t[d];
                    loss += wi * e * e;
                    dy[i * D + d] = (float)(wi * e / bw);
                }
                wl += wi;
            }
            float *dx = d1;
            for (size_t l = L; l-- > 0;) {
                recd_nn_dense_batch_backward(m->w[l]->w, (int)m->in[l], (int)m->out[l], l + 1 < L,
                                             act[l], act[l + 1], dy, nb, m->w[l]->g, m->b[l]->g,
                                             dx);
                float *t = dy;
                dy = dx;
                dx = t;
            }
            for (size_t i = 0; i < nb; i++) {
                uint32_t it = items[b0 + i];
                for (size_t j = 0; j < m->nin; j++)
                    tf_field_scatter(&s->f[m->field_of[j]], it, m->tab[j], K,
                                     dy + i * m->in[0] + j * K);
            }
            recd_opt_step(&opt, ps, nps);
        }
        double vmse = eval_mse(m, s, val, nval, target, wt);
        double sec = (double)(recd_time_mono_us() - t0) / 1e6;
        m->epochs = ep;
        tf_progress(o->verbose, "content", ep, o->max_epochs, wl > 0 ? loss / wl : 0,
                    "valid MSE", vmse, sec > 0 ? (double)ntr / sec : 0,
                    sec * (o->max_epochs - ep));
        if (vmse < best) {
            best = vmse;
            bad = 0;
            if (recd_param_snapshot_save(&snap, ps, nps) != 0) {
                recd_err_set(err, RECD_ENOMEM, "out of memory (content model snapshot)");
                goto fail;
            }
        } else if (++bad >= o->patience) {
            break;
        }
    }
    recd_param_snapshot_restore(&snap, ps);
    m->valid_mse = best;
    goto out;
fail:
    tf_content_free(m);
    m = NULL;
out:
    recd_param_snapshot_free(&snap);
    for (size_t l = 0; l <= L; l++)
        free(act[l]);
    free(d0);
    free(d1);
    free(items);
    free(wt);
    return m;
}


json_t *tf_content_write(const tf_content_t *m, const tf_schema_t *s, struct recd_bundle_writer *w,
                         recd_err_t *err)
{
    json_t *fields = json_array(), *layers = json_array();
    if (!fields || !layers)
        goto oom;
    for (size_t j = 0; j < m->nin; j++) {
        const char *f = s->f[m->field_of[j]].name;
        char name[96];
        snprintf(name, sizeof name, "content.emb.%s", f);
        if (tf_put(w, name, m->tab[j]->w, (int64_t)m->tab[j]->rows, (int64_t)m->K, err))
            goto fail;
        json_array_append_new(fields, json_pack("{s:s, s:s}", "name", f, "tensor", name));
    }
    for (size_t l = 0; l < m->nlayers; l++) {
        char wn[64], bn[64];
        snprintf(wn, sizeof wn, "content.%zu.w", l);
        snprintf(bn, sizeof bn, "content.%zu.b", l);
        if (tf_put(w, wn, m->w[l]->w, (int64_t)m->in[l], (int64_t)m->out[l], err) ||
            tf_put(w, bn, m->b[l]->w, (int64_t)m->out[l], 0, err))
            goto fail;
        json_array_append_new(
            layers, json_pack("{s:s, s:s, s:I, s:I, s:s}", "w", wn, "b", bn, "in",
                              (json_int_t)m->in[l], "out", (json_int_t)m->out[l], "activation",
                              l + 1 < m->nlayers ? "relu" : "linear"));
    }
    json_t *c = json_pack("{s:s, s:I, s:o, s:o, s:s}", "type", "mlp", "embed_dim",
                          (json_int_t)m->K, "fields", fields, "layers", layers, "output",
                          "cand.item_emb");
    if (!c)
        recd_err_set(err, RECD_ENOMEM, "out of memory (manifest)");
    return c;
oom:
    recd_err_set(err, RECD_ENOMEM, "out of memory (manifest)");
fail:
    json_decref(fields);
    json_decref(layers);
    return NULL;
}
