/* recd-load: scenario files (see scenario.h). */
#include "scenario.h"

#include "bundle.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const lg_ep_names[LG_EP_COUNT] = {"recommend", "score", "similar", "events", "healthz"};
const char *const lg_event_types[LG_EV_COUNT] = {"impression", "click", "watch", "rating",
                                                 "purchase"};

typedef struct pctx {
    char *err;
    size_t errlen;
} pctx_t;

static int perr(pctx_t *c, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int perr(pctx_t *c, const char *path, const char *fmt, ...)
{
    int n = snprintf(c->err, c->errlen, "scenario %s: ", path);
    if (n >= 0 && (size_t)n < c->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->err + n, c->errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* "parent.key" (or "key" at the top). */
static void join(char *out, size_t n, const char *parent, const char *key)
{
    if (parent && *parent)
        snprintf(out, n, "%s.%s", parent, key);
    else
        snprintf(out, n, "%s", key);
}

/* Every key of obj must be in allowed (NULL-terminated). */
static int check_keys(pctx_t *c, json_t *obj, const char *path, const char *const *allowed)
{
    const char *k;
    json_t *v;
    json_object_foreach (obj, k, v) {
        int ok = 0;
        for (const char *const *a = allowed; *a; a++)
            ok |= strcmp(*a, k) == 0;
        if (!ok) {
            char p[256];
            join(p, sizeof p, path, k);
            return perr(c, p, "unknown key");
        }
    }
    return 0;
}

/* A section object (absent → NULL, fine). */
static int section(pctx_t *c, json_t *root, const char *key, json_t **out)
{
    *out = json_object_get(root, key);
    if (*out && !json_is_object(*out))
        return perr(c, key, "must be an object");
    return 0;
}

static int get_uint(pctx_t *c, json_t *obj, const char *path, const char *key, uint32_t lo,
                    uint32_t hi, uint32_t *out)
{
    json_t *v = obj ? json_object_get(obj, key) : NULL;
    if (!v)
        return 0;
    char p[256];
    join(p, sizeof p, path, key);
    if (!json_is_integer(v) || json_integer_value(v) < (json_int_t)lo ||
        json_integer_value(v) > (json_int_t)hi)
        return perr(c, p, "must be an integer %u..%u", lo, hi);
    *out = (uint32_t)json_integer_value(v);
    return 0;
}

static int get_num(pctx_t *c, json_t *obj, const char *path, const char *key, double lo, double hi,
                   double *out)
{
    json_t *v = obj ? json_object_get(obj, key) : NULL;
    if (!v)
        return 0;
    char p[256];
    join(p, sizeof p, path, key);
    double d = json_number_value(v);
    if (!json_is_number(v) || !(d >= lo && d <= hi))
        return perr(c, p, "must be a number %g..%g", lo, hi);
    *out = d;
    return 0;
}

/* Structure of a feature/context spec: a non-empty list of strings or
 * numbers, or {"min": int, "max": int} with min <= max. */
static int check_values(pctx_t *c, json_t *obj, const char *path)
{
    if (!obj)
        return 0;
    if (!json_is_object(obj))
        return perr(c, path, "must be an object of field name to values");
    const char *k;
    json_t *v;
    json_object_foreach (obj, k, v) {
        char p[256];
        join(p, sizeof p, path, k);
        if (json_is_array(v)) {
            if (json_array_size(v) == 0)
                return perr(c, p, "the list of values is empty");
            size_t i;
            json_t *e;
            json_array_foreach (v, i, e) {
                if (!json_is_string(e) && !json_is_number(e)) {
                    char pe[300];
                    snprintf(pe, sizeof pe, "%s[%zu]", p, i);
                    return perr(c, pe, "must be a string or a number");
                }
            }
        } else if (json_is_object(v)) {
            static const char *const keys[] = {"min", "max", NULL};
            if (check_keys(c, v, p, keys) < 0)
                return -1;
            json_int_t mm[2];
            for (int j = 0; j < 2; j++) {
                char pk[300];
                join(pk, sizeof pk, p, keys[j]);
                json_t *x = json_object_get(v, keys[j]);
                if (!x)
                    return perr(c, pk, "missing");
                if (!json_is_integer(x) || json_integer_value(x) < -1000000000 ||
                    json_integer_value(x) > 1000000000)
                    return perr(c, pk, "must be an integer -1000000000..1000000000");
                mm[j] = json_integer_value(x);
            }
            if (mm[0] > mm[1]) {
                char pk[300];
                join(pk, sizeof pk, p, "max");
                return perr(c, pk, "must be >= min");
            }
        } else {
            return perr(c, p, "must be a list of values or {\"min\": m, \"max\": n}");
        }
    }
    return 0;
}

static int parse_mix(pctx_t *c, lg_scenario_t *s, json_t *root)
{
    json_t *mix = json_object_get(root, "mix");
    if (!mix)
        return perr(c, "mix", "missing (e.g. {\"recommend\": 80, \"events\": 20})");
    if (!json_is_object(mix))
        return perr(c, "mix", "must be an object of endpoint name to integer weight");
    if (json_object_size(mix) == 0)
        return perr(c, "mix", "needs at least one of recommend, score, similar, events, healthz");
    const char *k;
    json_t *v;
    uint64_t total = 0;
    json_object_foreach (mix, k, v) {
        char p[256];
        join(p, sizeof p, "mix", k);
        int e = -1;
        for (int i = 0; i < LG_EP_COUNT; i++)
            if (strcmp(lg_ep_names[i], k) == 0)
                e = i;
        if (e < 0)
            return perr(c, p, "unknown endpoint (recommend, score, similar, events, healthz)");
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 1000000)
            return perr(c, p, "weight must be an integer >= 0 (at most 1000000)");
        s->in_mix[e] = 1;
        s->mix[e] = (uint32_t)json_integer_value(v);
        total += s->mix[e];
    }
    if (total == 0)
        return perr(c, "mix", "the weights sum to 0");
    return 0;
}

static int parse_events(pctx_t *c, lg_scenario_t *s, json_t *ev)
{
    static const char *const keys[] = {"batch", "types", NULL};
    if (!ev)
        return 0;
    if (check_keys(c, ev, "events", keys) < 0 ||
        get_uint(c, ev, "events", "batch", 1, 100000, &s->ev_batch) < 0)
        return -1;
    json_t *types = json_object_get(ev, "types");
    if (!types)
        return 0;
    if (!json_is_object(types))
        return perr(c, "events.types", "must be an object of event type to integer weight");
    uint32_t w[LG_EV_COUNT] = {0};
    uint64_t total = 0;
    const char *k;
    json_t *v;
    json_object_foreach (types, k, v) {
        char p[256];
        join(p, sizeof p, "events.types", k);
        int t = -1;
        for (int i = 0; i < LG_EV_COUNT; i++)
            if (strcmp(lg_event_types[i], k) == 0)
                t = i;
        if (t < 0)
            return perr(c, p, "unknown event type (impression, click, watch, rating, purchase)");
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 1000000)
            return perr(c, p, "weight must be an integer >= 0 (at most 1000000)");
        w[t] = (uint32_t)json_integer_value(v);
        total += w[t];
    }
    if (total == 0)
        return perr(c, "events.types", "the weights sum to 0");
    memcpy(s->ev_types, w, sizeof w);
    return 0;
}

static void defaults(lg_scenario_t *s)
{
    s->users.count = 5000;
    s->users.zipf_s = 0.9;
    s->users.cold_pct = 10;
    s->items.zipf_s = 1.1;
    s->items.by_popularity = 1;
    s->history.send_pct = 50;
    s->history.median = 20;
    s->history.sigma = 1.0;
    s->history.max = 200;
    s->rec_k = 10;
    s->rec_candidates = 300;
    s->score_items = 50;
    s->similar_k = 10;
    s->ev_batch = 10;
    static const uint32_t types[LG_EV_COUNT] = {70, 20, 5, 3, 2};
    memcpy(s->ev_types, types, sizeof types);
}

int lg_scenario_from_json(lg_scenario_t *s, json_t *root, const char *default_name, char *err,
                          size_t errlen)
{
    pctx_t c = {err, errlen};
    memset(s, 0, sizeof *s);
    defaults(s);
    if (!json_is_object(root))
        return perr(&c, "(root)", "must be a JSON object");
    static const char *const top[] = {"name",   "description", "bundle",    "mix",   "users",
                                      "items",  "history",     "recommend", "score", "similar",
                                      "events", "features",    "context",   NULL};
    if (check_keys(&c, root, "", top) < 0)
        return -1;
    json_t *v = json_object_get(root, "name");
    if (v && (!json_is_string(v) || !*json_string_value(v)))
        return perr(&c, "name", "must be a non-empty string");
    s->name = strdup(v ? json_string_value(v) : default_name ? default_name : "scenario");
    v = json_object_get(root, "description");
    if (v && !json_is_string(v))
        return perr(&c, "description", "must be a string");
    v = json_object_get(root, "bundle");
    if (v && (!json_is_string(v) || !*json_string_value(v)))
        return perr(&c, "bundle", "must be a non-empty string (a model or version directory)");
    if (v)
        s->bundle = strdup(json_string_value(v));
    s->users.prefix = strdup("u");
    if (!s->name || (v && !s->bundle) || !s->users.prefix)
        return perr(&c, "(root)", "out of memory");
    if (parse_mix(&c, s, root) < 0)
        return -1;

    json_t *sec;
    static const char *const users_keys[] = {"count", "prefix", "zipf_s", "cold_pct", NULL};
    if (section(&c, root, "users", &sec) < 0 ||
        (sec && (check_keys(&c, sec, "users", users_keys) < 0 ||
                 get_uint(&c, sec, "users", "count", 1, 10000000, &s->users.count) < 0 ||
                 get_num(&c, sec, "users", "zipf_s", 0, 10, &s->users.zipf_s) < 0 ||
                 get_num(&c, sec, "users", "cold_pct", 0, 100, &s->users.cold_pct) < 0)))
        return -1;
    if (sec && (v = json_object_get(sec, "prefix"))) {
        const char *p = json_string_value(v);
        if (!p || strlen(p) > 64)
            return perr(&c, "users.prefix", "must be a string of at most 64 bytes");
        for (const char *q = p; *q; q++)
            if ((unsigned char)*q < 0x20 || *q == 0x7f)
                return perr(&c, "users.prefix", "must not contain control characters");
        free(s->users.prefix);
        if (!(s->users.prefix = strdup(p)))
            return perr(&c, "users.prefix", "out of memory");
    }

    static const char *const items_keys[] = {"zipf_s", "by", NULL};
    if (section(&c, root, "items", &sec) < 0 ||
        (sec && (check_keys(&c, sec, "items", items_keys) < 0 ||
                 get_num(&c, sec, "items", "zipf_s", 0, 10, &s->items.zipf_s) < 0)))
        return -1;
    if (sec && (v = json_object_get(sec, "by"))) {
        const char *by = json_string_value(v);
        if (by && strcmp(by, "popularity") == 0)
            s->items.by_popularity = 1;
        else if (by && strcmp(by, "shuffle") == 0)
            s->items.by_popularity = 0;
        else
            return perr(&c, "items.by", "must be \"popularity\" or \"shuffle\"");
    }

    static const char *const hist_keys[] = {"send_pct", "median", "sigma", "max", NULL};
    if (section(&c, root, "history", &sec) < 0 ||
        (sec && (check_keys(&c, sec, "history", hist_keys) < 0 ||
                 get_num(&c, sec, "history", "send_pct", 0, 100, &s->history.send_pct) < 0 ||
                 get_num(&c, sec, "history", "median", 1, 100000, &s->history.median) < 0 ||
                 get_num(&c, sec, "history", "sigma", 0, 10, &s->history.sigma) < 0 ||
                 get_uint(&c, sec, "history", "max", 1, 100000, &s->history.max) < 0)))
        return -1;

    static const char *const rec_keys[] = {"k", "candidates", NULL};
    if (section(&c, root, "recommend", &sec) < 0 ||
        (sec && (check_keys(&c, sec, "recommend", rec_keys) < 0 ||
                 get_uint(&c, sec, "recommend", "k", 1, 1000, &s->rec_k) < 0 ||
                 get_uint(&c, sec, "recommend", "candidates", 1, 10000, &s->rec_candidates) < 0)))
        return -1;
    if (s->rec_candidates < s->rec_k)
        return perr(&c, "recommend.candidates", "must be >= recommend.k (%u)", s->rec_k);

    static const char *const score_keys[] = {"items", NULL};
    if (section(&c, root, "score", &sec) < 0 ||
        (sec && (check_keys(&c, sec, "score", score_keys) < 0 ||
                 get_uint(&c, sec, "score", "items", 1, 10000, &s->score_items) < 0)))
        return -1;

    static const char *const sim_keys[] = {"k", NULL};
    if (section(&c, root, "similar", &sec) < 0 ||
        (sec && (check_keys(&c, sec, "similar", sim_keys) < 0 ||
                 get_uint(&c, sec, "similar", "k", 1, 1000, &s->similar_k) < 0)))
        return -1;

    if (section(&c, root, "events", &sec) < 0 || parse_events(&c, s, sec) < 0)
        return -1;

    json_t *f = json_object_get(root, "features"), *x = json_object_get(root, "context");
    if (check_values(&c, f, "features") < 0 || check_values(&c, x, "context") < 0)
        return -1;
    s->features = json_incref(f);
    s->context = json_incref(x);
    return 0;
}

int lg_scenario_load(lg_scenario_t *s, const char *path, char *err, size_t errlen)
{
    memset(s, 0, sizeof *s);
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "--scenario: cannot open %s: %s", path, strerror(errno));
        return LG_EXIT_USAGE;
    }
    json_error_t je;
    json_t *root = json_loadf(f, JSON_REJECT_DUPLICATES, &je);
    fclose(f);
    if (!root) {
        snprintf(err, errlen, "scenario %s line %d column %d: %s", path, je.line, je.column,
                 je.text);
        return LG_EXIT_RUNTIME;
    }
    /* the default name: base name without .json */
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    char name[256];
    snprintf(name, sizeof name, "%s", base);
    size_t l = strlen(name);
    if (l > 5 && strcmp(name + l - 5, ".json") == 0)
        name[l - 5] = '\0';
    int rc = lg_scenario_from_json(s, root, name, err, errlen);
    json_decref(root);
    return rc < 0 ? LG_EXIT_RUNTIME : LG_EXIT_OK;
}

int lg_scenario_bundle(const lg_scenario_t *s, const char *override, lg_bundle_t *b, char *err,
                       size_t errlen)
{
    memset(b, 0, sizeof *b);
    const char *path = override ? override : s->bundle;
    if (!path) {
        snprintf(err, errlen,
                 "scenario bundle: missing (give it in the scenario or with --bundle)");
        return LG_EXIT_RUNTIME;
    }
    char msg[900];
    if (lg_bundle_load(b, path, msg, sizeof msg) < 0) {
        snprintf(err, errlen, "%s: %s", override ? "--bundle" : "scenario bundle", msg);
        return override ? LG_EXIT_USAGE : LG_EXIT_RUNTIME;
    }
    return LG_EXIT_OK;
}

void lg_scenario_free(lg_scenario_t *s)
{
    free(s->name);
    free(s->bundle);
    free(s->users.prefix);
    json_decref(s->features);
    json_decref(s->context);
    memset(s, 0, sizeof *s);
}
