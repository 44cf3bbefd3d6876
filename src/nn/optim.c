/* Optimisers (Adam, lazy Adam for sparse tables, Adagrad), trainable
 * parameters and deterministic weight initialisation.
 *
 * The update loops run in blocks of 8 (see grad.c for why); the square
 * roots go through SSE where there is SSE, because a scalar sqrtf may set
 * errno and so keeps GCC from vectorising a loop that calls it. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SSE__)
#include <xmmintrin.h>
#endif

#include "recd/core.h"
#include "recd/nn.h"

/* d[0..8) = sqrt(d[0..8)); the inputs are >= 0 */
static inline void sqrt8(float *d)
{
#if defined(__SSE__)
    _mm_storeu_ps(d, _mm_sqrt_ps(_mm_loadu_ps(d)));
    _mm_storeu_ps(d + 4, _mm_sqrt_ps(_mm_loadu_ps(d + 4)));
#else
    for (int j = 0; j < 8; j++)
        d[j] = sqrtf(d[j]);
#endif
}

/* One Adam update's constants: Algorithm 1 of Kingma & Ba with the bias
 * corrections folded in, w -= (lr / bc1) * m / (sqrt(v / bc2) + eps) where
 * bc = 1 - beta^t. */
typedef struct adam_k {
    float b1, c1, b2, c2; /* beta1, 1 - beta1, beta2, 1 - beta2 */
    float a;              /* lr / (1 - beta1^t) */
    float ib2;            /* 1 / (1 - beta2^t) */
    float eps, l2;
} adam_k_t;

/* log(beta1), log(beta2): computed once per step, so that a sparse table's
 * rows, each at its own t, pay two exp() each and no pow() */
typedef struct adam_logs {
    double lb1, lb2;
} adam_logs_t;

static adam_logs_t adam_logs(const recd_opt_t *o)
{
    adam_logs_t l = {log((double)o->beta1), log((double)o->beta2)};
    return l;
}

static adam_k_t adam_consts(const recd_opt_t *o, const adam_logs_t *l, int64_t t, float l2)
{
    /* 1 - beta^t = -expm1(t log beta), accurate when beta^t is near 1 */
    double bc1 = -expm1((double)t * l->lb1);
    double bc2 = -expm1((double)t * l->lb2);
    adam_k_t k = {
        .b1 = o->beta1,
        .c1 = 1.0f - o->beta1,
        .b2 = o->beta2,
        .c2 = 1.0f - o->beta2,
        .a = (float)((double)o->lr / bc1),
        .ib2 = (float)(1.0 / bc2),
        .eps = o->eps,
        .l2 = l2,
    };
    return k;
}

/* Adam over n contiguous weights; zeroes their gradient. */
static void adam_span(float *restrict w, float *restrict g, float *restrict m, float *restrict v,
                      size_t n, const adam_k_t *kp)
{
    const adam_k_t k = *kp;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        float d[8];
        for (size_t j = 0; j < 8; j++) {
            float gj = g[i + j] + k.l2 * w[i + j];
            float mj = k.b1 * m[i + j] + k.c1 * gj;
            float vj = k.b2 * v[i + j] + k.c2 * gj * gj;
            m[i + j] = mj;
            v[i + j] = vj;
            d[j] = vj * k.ib2;
        }
        sqrt8(d);
        for (size_t j = 0; j < 8; j++) {
            w[i + j] -= k.a * m[i + j] / (d[j] + k.eps);
            g[i + j] = 0.0f;
        }
    }
    for (; i < n; i++) {
        float gi = g[i] + k.l2 * w[i];
        m[i] = k.b1 * m[i] + k.c1 * gi;
        v[i] = k.b2 * v[i] + k.c2 * gi * gi;
        w[i] -= k.a * m[i] / (sqrtf(v[i] * k.ib2) + k.eps);
        g[i] = 0.0f;
    }
}

/* Adagrad over n contiguous weights: acc += g^2, w -= lr g / (sqrt(acc) +
 * eps); zeroes their gradient. */
static void adagrad_span(float *restrict w, float *restrict g, float *restrict acc, size_t n,
                         float lr, float eps, float l2)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        float d[8];
        for (size_t j = 0; j < 8; j++) {
            float gj = g[i + j] + l2 * w[i + j];
            g[i + j] = gj;
            acc[i + j] += gj * gj;
            d[j] = acc[i + j];
        }
        sqrt8(d);
        for (size_t j = 0; j < 8; j++) {
            w[i + j] -= lr * g[i + j] / (d[j] + eps);
            g[i + j] = 0.0f;
        }
    }
    for (; i < n; i++) {
        float gi = g[i] + l2 * w[i];
        acc[i] += gi * gi;
        w[i] -= lr * gi / (sqrtf(acc[i]) + eps);
        g[i] = 0.0f;
    }
}

void recd_opt_init(recd_opt_t *o, recd_opt_kind_t kind)
{
    memset(o, 0, sizeof *o);
    o->kind = kind;
    o->beta1 = 0.9f;
    o->beta2 = 0.999f;
    if (kind == RECD_OPT_ADAGRAD) {
        o->lr = 0.05f;
        o->eps = 1e-10f;
    } else {
        o->lr = 1e-3f;
        o->eps = 1e-8f;
    }
    o->l2 = 0.0f;
    o->step = 0;
}

recd_param_t *recd_param_new(const char *name, size_t rows, size_t cols, int sparse,
                             recd_opt_kind_t kind)
{
    if (rows == 0 || cols == 0 || cols > SIZE_MAX / sizeof(float) / rows)
        return NULL;
    if (sparse && rows > UINT32_MAX)
        return NULL;
    if (kind != RECD_OPT_ADAM && kind != RECD_OPT_ADAGRAD)
        return NULL;
    recd_param_t *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    snprintf(p->name, sizeof p->name, "%s", name ? name : "");
    size_t count = rows * cols;
    p->rows = rows;
    p->cols = cols;
    p->sparse = sparse ? 1 : 0;
    p->kind = kind;
    p->l2 = -1.0f;
    /* calloc: a large embedding table's untouched state stays untouched
     * zero pages */
    p->w = calloc(count, sizeof *p->w);
    p->g = calloc(count, sizeof *p->g);
    p->m = calloc(count, sizeof *p->m);
    int ok = p->w && p->g && p->m;
    if (kind == RECD_OPT_ADAM) {
        p->v = calloc(count, sizeof *p->v);
        ok = ok && p->v;
    }
    if (p->sparse) {
        p->touched = calloc(rows, sizeof *p->touched);
        p->mark = calloc(rows, sizeof *p->mark);
        ok = ok && p->touched && p->mark;
        if (kind == RECD_OPT_ADAM) {
            p->row_step = calloc(rows, sizeof *p->row_step);
            ok = ok && p->row_step;
        }
    }
    if (!ok) {
        recd_param_free(p);
        return NULL;
    }
    return p;
}

void recd_param_free(recd_param_t *p)
{
    if (!p)
        return;
    if (!p->borrowed)
        free(p->w);
    free(p->g);
    free(p->m);
    free(p->v);
    free(p->row_step);
    free(p->touched);
    free(p->mark);
    free(p);
}

float *recd_param_row_grad(recd_param_t *p, size_t row)
{
    if (row >= p->rows)
        return NULL;
    if (p->sparse && !p->mark[row]) {
        p->mark[row] = 1;
        p->touched[p->ntouched++] = (uint32_t)row;
    }
    return p->g + row * p->cols;
}

static void step_dense(const recd_opt_t *o, recd_param_t *p, float l2)
{
    size_t count = p->rows * p->cols;
    if (o->kind == RECD_OPT_ADAM) {
        adam_logs_t lg = adam_logs(o);
        adam_k_t k = adam_consts(o, &lg, o->step, l2);
        adam_span(p->w, p->g, p->m, p->v, count, &k);
    } else {
        adagrad_span(p->w, p->g, p->m, count, o->lr, o->eps, l2);
    }
}

static void step_sparse(const recd_opt_t *o, recd_param_t *p, float l2)
{
    size_t cols = p->cols;
    adam_k_t k = {0};
    int64_t kt = 0; /* the row step k was computed for (0: none yet) */
    adam_logs_t lg = adam_logs(o);
    for (size_t i = 0; i < p->ntouched; i++) {
        size_t r = p->touched[i];
        size_t off = r * cols;
        if (o->kind == RECD_OPT_ADAM) {
            int64_t t = ++p->row_step[r];
            if (t != kt) {
                k = adam_consts(o, &lg, t, l2);
                kt = t;
            }
            adam_span(p->w + off, p->g + off, p->m + off, p->v + off, cols, &k);
        } else {
            adagrad_span(p->w + off, p->g + off, p->m + off, cols, o->lr, o->eps, l2);
        }
        p->mark[r] = 0;
    }
    p->ntouched = 0;
}

int recd_opt_step(recd_opt_t *o, recd_param_t *const *ps, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (ps[i] && ps[i]->kind != o->kind)
            return -1;
    o->step += 1;
    for (size_t i = 0; i < n; i++) {
        recd_param_t *p = ps[i];
        if (!p)
            continue;
        float l2 = p->l2 >= 0.0f ? p->l2 : o->l2;
        if (p->sparse)
            step_sparse(o, p, l2);
        else
            step_dense(o, p, l2);
    }
    return 0;
}

/* ---- initialisation ---------------------------------------------------------- */

/* Both initialisers draw from the shared xoshiro256** (Blackman & Vigna),
 * its state filled by splitmix64 (Steele et al.) from the seed alone
 * (recd_rng_seed in recd/core.h). */

void recd_nn_init_normal(float *w, size_t n, float std, uint64_t seed)
{
    recd_rng_t r;
    recd_rng_seed(&r, seed);
    /* Box & Muller (1958): two independent normals per pair of uniforms */
    for (size_t i = 0; i < n; i += 2) {
        double u1 = 1.0 - recd_rng_unit(&r); /* (0, 1]: log is finite */
        double u2 = recd_rng_unit(&r);
        double rad = sqrt(-2.0 * log(u1)) * (double)std;
        double th = 6.283185307179586 * u2;
        w[i] = (float)(rad * cos(th));
        if (i + 1 < n)
            w[i + 1] = (float)(rad * sin(th));
    }
}

void recd_nn_init_glorot(float *w, size_t in, size_t out, uint64_t seed)
{
    if (in + out == 0)
        return;
    recd_rng_t r;
    recd_rng_seed(&r, seed);
    double a = sqrt(6.0 / (double)(in + out));
    size_t n = in * out;
    for (size_t i = 0; i < n; i++)
        w[i] = (float)((2.0 * recd_rng_unit(&r) - 1.0) * a);
}

/* ---- snapshots -------------------------------------------------------------------- */

int recd_param_snapshot_save(recd_param_snapshot_t *s, recd_param_t *const *ps, size_t n)
{
    if (!s->w) {
        float **w = calloc(n ? n : 1, sizeof *w);
        if (!w)
            return -1;
        for (size_t i = 0; i < n; i++)
            if (!(w[i] = malloc(ps[i]->rows * ps[i]->cols * sizeof(float)))) {
                for (size_t j = 0; j < i; j++)
                    free(w[j]);
                free(w);
                return -1;
            }
        s->w = w;
        s->n = n;
    }
    for (size_t i = 0; i < s->n; i++)
        memcpy(s->w[i], ps[i]->w, ps[i]->rows * ps[i]->cols * sizeof(float));
    return 0;
}

void recd_param_snapshot_restore(const recd_param_snapshot_t *s, recd_param_t *const *ps)
{
    for (size_t i = 0; s->w && i < s->n; i++)
        memcpy(ps[i]->w, s->w[i], ps[i]->rows * ps[i]->cols * sizeof(float));
}

void recd_param_snapshot_free(recd_param_snapshot_t *s)
{
    for (size_t i = 0; s->w && i < s->n; i++)
        free(s->w[i]);
    free(s->w);
    s->w = NULL;
    s->n = 0;
}
