/* recd-load: the request builder (see reqgen.h). */
#include "reqgen.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Streams of the run's seed (arrival.c uses stream 1). */
enum { STREAM_REQUESTS = 2, STREAM_USER_PERM = 3, STREAM_ITEM_SHUFFLE = 4, STREAM_MIX = 5 };

static int gerr(char *err, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int gerr(char *err, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, n, fmt, ap);
    va_end(ap);
    return -1;
}

/* Fisher-Yates over 0..n-1. */
static void shuffle(uint32_t *a, uint32_t n, recd_rng_t *r)
{
    for (uint32_t i = 0; i < n; i++)
        a[i] = i;
    for (uint32_t i = n; i > 1; i--) {
        uint32_t j = recd_rng_below(r, i);
        uint32_t t = a[i - 1];
        a[i - 1] = a[j];
        a[j] = t;
    }
}

typedef struct popidx {
    double pop;
    uint32_t idx;
} popidx_t;

static int by_pop_desc(const void *pa, const void *pb)
{
    const popidx_t *a = pa, *b = pb;
    if (a->pop != b->pop)
        return a->pop > b->pop ? -1 : 1;
    return a->idx < b->idx ? -1 : a->idx > b->idx;
}

/* rank → item index: popularity descending (ties by index) when the
 * column exists and is not constant, else a seeded shuffle. */
static int rank_items(lg_gen_t *g, uint64_t seed)
{
    const lg_bundle_t *b = g->b;
    uint32_t n = (uint32_t)b->nitems;
    g->item_of_rank = malloc(n * sizeof *g->item_of_rank);
    if (!g->item_of_rank)
        return -1;
    int constant = 1;
    for (uint32_t i = 1; b->popularity && i < n; i++)
        constant &= b->popularity[i] == b->popularity[0];
    if (g->s->items.by_popularity && b->popularity && !constant) {
        popidx_t *p = malloc(n * sizeof *p);
        if (!p)
            return -1;
        for (uint32_t i = 0; i < n; i++)
            p[i] = (popidx_t){b->popularity[i], i};
        qsort(p, n, sizeof *p, by_pop_desc);
        for (uint32_t i = 0; i < n; i++)
            g->item_of_rank[i] = p[i].idx;
        free(p);
        g->ranked_by_popularity = 1;
    } else {
        recd_rng_t r;
        recd_rng_seed_stream(&r, seed, STREAM_ITEM_SHUFFLE);
        shuffle(g->item_of_rank, n, &r);
    }
    return 0;
}

/* Render a scenario value (string or number) as JSON text for field f. */
static char *render_value(const lg_field_t *f, json_t *v, const char *path, char *err, size_t n)
{
    lg_buf_t b = {0};
    if (json_is_string(v)) {
        if (f->bucketized) {
            gerr(err, n, "scenario %s: field %s is bucketized: its values are numbers", path,
                 f->name);
            return NULL;
        }
        lg_buf_add_json_str(&b, json_string_value(v));
    } else if (json_is_integer(v)) {
        lg_buf_addi(&b, json_integer_value(v));
    } else {
        double d = json_real_value(v);
        if (!f->bucketized && d != floor(d)) {
            gerr(err, n, "scenario %s: field %s is categorical: numbers must be integers", path,
                 f->name);
            return NULL;
        }
        if (d == floor(d) && fabs(d) < 1e15)
            lg_buf_addi(&b, (int64_t)d);
        else
            lg_buf_printf(&b, "%.17g", d);
    }
    char *s = lg_buf_take(&b, NULL);
    if (!s)
        gerr(err, n, "out of memory");
    return s;
}

static void valgen_free(lg_valgen_t *v)
{
    for (size_t i = 0; i < v->nvals; i++)
        free(v->vals[i]);
    free(v->vals);
    memset(v, 0, sizeof *v);
}

/* The value generator of field f: from the scenario's spec (list or
 * range), else the manifest's "values", else v0..v9 (categorical) or the
 * boundaries' span (bucketized). */
static int make_valgen(lg_valgen_t *vg, const lg_field_t *f, json_t *spec, const char *path,
                       char *err, size_t n)
{
    memset(vg, 0, sizeof *vg);
    vg->field = f->name;
    if (spec && json_is_object(spec)) {
        vg->lo = json_integer_value(json_object_get(spec, "min"));
        vg->hi = json_integer_value(json_object_get(spec, "max"));
        return 0;
    }
    /* a bucketized field takes numbers: the manifest's (string) values do not apply */
    size_t cnt = spec ? json_array_size(spec) : f->bucketized ? 0 : f->nvalues ? f->nvalues : 10;
    if (cnt == 0) {
        /* bucketized without a spec: uniform over the boundaries' span */
        if (f->nbounds == 0) {
            vg->lo = 0;
            vg->hi = 100;
        } else {
            double lo = floor(f->bounds[0]) - 1, hi = ceil(f->bounds[f->nbounds - 1]);
            vg->lo = (long long)fmax(-1e12, fmin(1e12, lo));
            vg->hi = (long long)fmax((double)vg->lo, fmin(1e12, hi));
        }
        return 0;
    }
    vg->vals = calloc(cnt, sizeof *vg->vals);
    if (!vg->vals)
        return gerr(err, n, "out of memory");
    for (size_t i = 0; i < cnt; i++) {
        char *txt;
        if (spec) {
            char p[300];
            snprintf(p, sizeof p, "%s[%zu]", path, i);
            txt = render_value(f, json_array_get(spec, i), p, err, n);
        } else if (f->nvalues) {
            lg_buf_t b = {0};
            lg_buf_add_json_str(&b, f->values[i]);
            txt = lg_buf_take(&b, NULL);
            if (!txt)
                gerr(err, n, "out of memory");
        } else {
            lg_buf_t b = {0};
            lg_buf_printf(&b, "\"v%zu\"", i);
            txt = lg_buf_take(&b, NULL);
            if (!txt)
                gerr(err, n, "out of memory");
        }
        if (!txt)
            return -1;
        vg->vals[vg->nvals++] = txt;
    }
    return 0;
}

/* Value generators for every field of `source` (user_id excluded), and a
 * check that each key of spec names such a field. */
static int make_valgens(lg_gen_t *g, lg_src_t source, json_t *spec, const char *section,
                        lg_valgen_t **out, size_t *nout, char *err, size_t n)
{
    const lg_bundle_t *b = g->b;
    const char *k;
    json_t *v;
    json_object_foreach (spec, k, v) {
        const lg_field_t *f = lg_bundle_field(b, k);
        if (!f || f->source != source || (source == LG_SRC_USER && strcmp(k, "user_id") == 0)) {
            lg_buf_t names = {0};
            for (size_t i = 0; i < b->nfields; i++) {
                if (b->fields[i].source != source ||
                    (source == LG_SRC_USER && strcmp(b->fields[i].name, "user_id") == 0))
                    continue;
                lg_buf_adds(&names, names.len ? ", " : "");
                lg_buf_adds(&names, b->fields[i].name);
            }
            if (source == LG_SRC_USER && strcmp(k, "user_id") == 0)
                gerr(err, n, "scenario %s.%s: user_id is the request's user, not a feature",
                     section, k);
            else
                gerr(err, n, "scenario %s.%s: not a %s field of bundle %s (%s: %s)", section, k,
                     source == LG_SRC_USER ? "user" : "context", b->dir,
                     source == LG_SRC_USER ? "user fields" : "context fields",
                     names.len ? names.p : "none");
            lg_buf_free(&names);
            return -1;
        }
    }
    size_t cnt = 0;
    for (size_t i = 0; i < b->nfields; i++)
        cnt += b->fields[i].source == source &&
               !(source == LG_SRC_USER && strcmp(b->fields[i].name, "user_id") == 0);
    *out = calloc(cnt ? cnt : 1, sizeof **out);
    if (!*out)
        return gerr(err, n, "out of memory");
    for (size_t i = 0; i < b->nfields; i++) {
        const lg_field_t *f = &b->fields[i];
        if (f->source != source || (source == LG_SRC_USER && strcmp(f->name, "user_id") == 0))
            continue;
        char p[256];
        snprintf(p, sizeof p, "%s.%s", section, f->name);
        lg_valgen_t *vg = &(*out)[(*nout)++];
        if (make_valgen(vg, f, spec ? json_object_get(spec, f->name) : NULL, p, err, n) < 0)
            return -1;
    }
    return 0;
}

int lg_gen_init(lg_gen_t *g, const lg_scenario_t *s, const lg_bundle_t *b, uint64_t seed, char *err,
                size_t n)
{
    memset(g, 0, sizeof *g);
    g->s = s;
    g->b = b;
    if (b->nitems == 0 || b->nitems > UINT32_MAX / 2)
        return gerr(err, n, "scenario bundle: %zu items (need 1..%u)", b->nitems, UINT32_MAX / 2);
    recd_rng_seed_stream(&g->rng, seed, STREAM_REQUESTS);
    recd_rng_seed_stream(&g->mix_rng, seed, STREAM_MIX);
    if (lg_zipf_init(&g->users, s->users.count, s->users.zipf_s) < 0 ||
        lg_zipf_init(&g->items, b->nitems, s->items.zipf_s) < 0)
        return gerr(err, n, "out of memory");
    g->user_of_rank = malloc(s->users.count * sizeof *g->user_of_rank);
    g->seen = calloc(b->nitems, sizeof *g->seen);
    if (!g->user_of_rank || !g->seen || rank_items(g, seed) < 0)
        return gerr(err, n, "out of memory");
    recd_rng_t r;
    recd_rng_seed_stream(&r, seed, STREAM_USER_PERM);
    shuffle(g->user_of_rank, s->users.count, &r);
    if (make_valgens(g, LG_SRC_USER, s->features, "features", &g->ufeat, &g->nufeat, err, n) < 0 ||
        make_valgens(g, LG_SRC_CONTEXT, s->context, "context", &g->cfeat, &g->ncfeat, err, n) < 0)
        return -1;
    for (int e = 0; e < LG_EP_COUNT; e++)
        g->mix_total += s->mix[e];
    for (int t = 0; t < LG_EV_COUNT; t++)
        g->ev_total += s->ev_types[t];
    if (g->mix_total == 0 || g->ev_total == 0)
        return gerr(err, n, "scenario mix: the weights sum to 0");
    g->ln_median = log(s->history.median);
    return 0;
}

/* ---- drawing ---------------------------------------------------------------------- */

static int pick_weighted(recd_rng_t *r, const uint32_t *w, int n, uint32_t total)
{
    uint32_t x = recd_rng_below(r, total);
    for (int i = 0; i < n; i++) {
        if (x < w[i])
            return i;
        x -= w[i];
    }
    return n - 1;
}

static void valgen_pick(const lg_valgen_t *v, recd_rng_t *r, lg_buf_t *out)
{
    if (v->nvals) {
        lg_buf_adds(out, v->vals[recd_rng_below(r, (uint32_t)v->nvals)]);
    } else {
        uint64_t span = (uint64_t)(v->hi - v->lo) + 1;
        lg_buf_addi(out, v->lo + (int64_t)recd_rng_below64_fast(r, span));
    }
}

/* {"f1":v1,...} drawn with r. */
static void add_object(lg_buf_t *out, const lg_valgen_t *vg, size_t n, recd_rng_t *r)
{
    lg_buf_addc(out, '{');
    for (size_t i = 0; i < n; i++) {
        if (i)
            lg_buf_addc(out, ',');
        lg_buf_add_json_str(out, vg[i].field);
        lg_buf_addc(out, ':');
        valgen_pick(&vg[i], r, out);
    }
    lg_buf_addc(out, '}');
}

void lg_gen_user_features(const lg_gen_t *g, const char *user_id, lg_buf_t *out)
{
    recd_rng_t r;
    recd_rng_seed(&r, recd_fnv1a64(RECD_FNV1A64_INIT, user_id, strlen(user_id)));
    add_object(out, g->ufeat, g->nufeat, &r);
}

static void warm_user(lg_gen_t *g, lg_buf_t *out)
{
    size_t rank = lg_zipf_sample(&g->users, &g->rng);
    lg_buf_adds(out, g->s->users.prefix);
    lg_buf_addu(out, g->user_of_rank[rank]);
}

static const char *draw_item(lg_gen_t *g)
{
    return g->b->ids[g->item_of_rank[lg_zipf_sample(&g->items, &g->rng)]];
}

static void next_stamp(lg_gen_t *g)
{
    if (++g->stamp == 0) {
        memset(g->seen, 0, g->b->nitems * sizeof *g->seen);
        g->stamp = 1;
    }
}

/* A JSON array of up to n distinct items drawn from the item Zipf; gives
 * up on repeats after a bounded number of draws (small catalogs with a
 * steep Zipf), so the list can be shorter but never empty. */
static uint32_t add_item_list(lg_gen_t *g, lg_buf_t *out, uint32_t n)
{
    if (n > g->b->nitems)
        n = (uint32_t)g->b->nitems;
    next_stamp(g);
    uint32_t got = 0;
    uint64_t tries = 0, max_tries = 20 * (uint64_t)n + 100;
    lg_buf_addc(out, '[');
    while (got < n && tries++ < max_tries) {
        uint32_t idx = g->item_of_rank[lg_zipf_sample(&g->items, &g->rng)];
        if (g->seen[idx] == g->stamp)
            continue;
        g->seen[idx] = g->stamp;
        if (got++)
            lg_buf_addc(out, ',');
        lg_buf_add_json_str(out, g->b->ids[idx]);
    }
    lg_buf_addc(out, ']');
    return got;
}

static uint32_t history_len(lg_gen_t *g)
{
    double l = exp(g->ln_median + g->s->history.sigma * recd_rng_gauss(&g->rng));
    if (!(l >= 1.0))
        return 1;
    if (l >= (double)g->s->history.max)
        return g->s->history.max;
    return (uint32_t)lround(l);
}

static int pct(lg_gen_t *g, double p)
{
    return recd_rng_unit(&g->rng) * 100.0 < p;
}

/* "user_id", and for a warm user optionally "history"; then features and
 * context. The caller has opened the object. */
static void add_user_part(lg_gen_t *g, lg_request_t *r, int may_send_history)
{
    lg_buf_t *b = &r->body;
    lg_buf_t *u = &g->scratch;
    lg_buf_reset(u);
    r->cold = pct(g, g->s->users.cold_pct);
    if (r->cold) {
        lg_buf_adds(u, g->s->users.prefix);
        lg_buf_adds(u, "cold-");
        lg_buf_addu(u, g->cold_seq++);
    } else {
        warm_user(g, u);
    }
    lg_buf_adds(b, "\"user_id\":");
    lg_buf_add_json_str(b, u->p);
    if (!r->cold && may_send_history && pct(g, g->s->history.send_pct)) {
        lg_buf_adds(b, ",\"history\":");
        r->nhistory = add_item_list(g, b, history_len(g));
    }
    if (g->nufeat) {
        lg_buf_adds(b, ",\"features\":");
        lg_gen_user_features(g, u->p, b);
    }
    if (g->ncfeat) {
        lg_buf_adds(b, ",\"context\":");
        add_object(b, g->cfeat, g->ncfeat, &g->rng);
    }
}

static void add_event(lg_gen_t *g, lg_buf_t *b, int64_t now_s)
{
    lg_buf_adds(b, "{\"user_id\":");
    lg_buf_t *u = &g->scratch;
    lg_buf_reset(u);
    warm_user(g, u);
    lg_buf_add_json_str(b, u->p);
    lg_buf_adds(b, ",\"item_id\":");
    lg_buf_add_json_str(b, draw_item(g));
    int t = pick_weighted(&g->rng, g->s->ev_types, LG_EV_COUNT, g->ev_total);
    lg_buf_adds(b, ",\"type\":\"");
    lg_buf_adds(b, lg_event_types[t]);
    lg_buf_addc(b, '"');
    if (t == LG_EV_WATCH) {
        lg_buf_adds(b, ",\"value\":");
        lg_buf_addu(b, 1 + recd_rng_below(&g->rng, 3600));
    } else if (t == LG_EV_RATING) {
        lg_buf_adds(b, ",\"value\":");
        lg_buf_addu(b, 1 + recd_rng_below(&g->rng, 5));
    }
    lg_buf_adds(b, ",\"ts\":");
    lg_buf_addi(b, now_s);
    lg_buf_addc(b, '}');
}

int lg_gen_pick(lg_gen_t *g)
{
    return pick_weighted(&g->mix_rng, g->s->mix, LG_EP_COUNT, g->mix_total);
}

int lg_gen_next(lg_gen_t *g, lg_request_t *r, int64_t now_s)
{
    return lg_gen_build(g, lg_gen_pick(g), r, now_s);
}

int lg_gen_build(lg_gen_t *g, int ep, lg_request_t *r, int64_t now_s)
{
    const lg_scenario_t *s = g->s;
    lg_buf_reset(&r->path);
    lg_buf_reset(&r->body);
    r->nevents = 0;
    r->cold = 0;
    r->nhistory = 0;
    r->ep = ep;
    lg_buf_t *b = &r->body;
    switch (r->ep) {
    case LG_EP_RECOMMEND:
        r->method = "POST";
        lg_buf_adds(&r->path, "/v1/recommend");
        lg_buf_addc(b, '{');
        add_user_part(g, r, 1);
        lg_buf_printf(b, ",\"k\":%u,\"candidates\":%u}", s->rec_k, s->rec_candidates);
        break;
    case LG_EP_SCORE:
        r->method = "POST";
        lg_buf_adds(&r->path, "/v1/score");
        lg_buf_addc(b, '{');
        add_user_part(g, r, 0);
        lg_buf_adds(b, ",\"items\":");
        add_item_list(g, b, s->score_items);
        lg_buf_addc(b, '}');
        break;
    case LG_EP_SIMILAR:
        r->method = "GET";
        lg_buf_adds(&r->path, "/v1/similar/");
        lg_buf_add_url(&r->path, draw_item(g));
        lg_buf_printf(&r->path, "?k=%u", s->similar_k);
        break;
    case LG_EP_EVENTS:
        r->method = "POST";
        lg_buf_adds(&r->path, "/v1/events");
        lg_buf_adds(b, "{\"events\":[");
        for (uint32_t i = 0; i < s->ev_batch; i++) {
            if (i)
                lg_buf_addc(b, ',');
            add_event(g, b, now_s);
        }
        lg_buf_adds(b, "]}");
        r->nevents = s->ev_batch;
        break;
    default:
        r->method = "GET";
        lg_buf_adds(&r->path, "/healthz");
        break;
    }
    return r->path.oom || r->body.oom || g->scratch.oom ? -1 : 0;
}

void lg_request_http(const lg_request_t *r, const char *host, lg_buf_t *out)
{
    lg_buf_adds(out, r->method);
    lg_buf_addc(out, ' ');
    lg_buf_add(out, r->path.p, r->path.len);
    lg_buf_adds(out, " HTTP/1.1\r\nHost: ");
    lg_buf_adds(out, host);
    lg_buf_adds(out, "\r\nUser-Agent: recd-load\r\n");
    if (r->body.len) {
        lg_buf_adds(out, "Content-Type: application/json\r\nContent-Length: ");
        lg_buf_addu(out, r->body.len);
        lg_buf_adds(out, "\r\n\r\n");
        lg_buf_add(out, r->body.p, r->body.len);
    } else {
        lg_buf_adds(out, "\r\n");
    }
}

void lg_request_free(lg_request_t *r)
{
    lg_buf_free(&r->path);
    lg_buf_free(&r->body);
}

void lg_gen_free(lg_gen_t *g)
{
    for (size_t i = 0; i < g->nufeat; i++)
        valgen_free(&g->ufeat[i]);
    for (size_t i = 0; i < g->ncfeat; i++)
        valgen_free(&g->cfeat[i]);
    free(g->ufeat);
    free(g->cfeat);
    lg_zipf_free(&g->users);
    lg_zipf_free(&g->items);
    free(g->user_of_rank);
    free(g->item_of_rank);
    free(g->seen);
    lg_buf_free(&g->scratch);
    memset(g, 0, sizeof *g);
}
