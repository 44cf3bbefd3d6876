/*
 * A/B experiments: parsing and validation of experiment definitions, the
 * bucket layout and user assignment. See include/recd/ab.h for the layout
 * and its movement guarantee.
 */
#include "recd/ab.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers --------------------------------------------------------------- */

static int name_ok(const char *s, size_t len)
{
    if (len == 0 || len > RECD_AB_NAME_MAX)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.'))
            return 0;
    }
    return 1;
}

static int salt_ok(const char *s, size_t len)
{
    if (len == 0 || len > RECD_AB_SALT_MAX)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (s[i] < 0x20 || s[i] > 0x7e)
            return 0;
    return 1;
}

/* Copy a validated name field; error names path.key. */
static int get_name(const json_t *v, const char *path, const char *key, char *dst, recd_err_t *err)
{
    if (!json_is_string(v))
        return recd_err_set(err, RECD_EINVAL, "%s.%s: must be a string", path, key);
    const char *s = json_string_value(v);
    size_t len = json_string_length(v);
    if (!name_ok(s, len) || strlen(s) != len)
        return recd_err_set(err, RECD_EINVAL, "%s.%s: must be 1..%d characters of [A-Za-z0-9_.-]",
                            path, key, RECD_AB_NAME_MAX);
    memcpy(dst, s, len);
    dst[len] = '\0';
    return 0;
}

/* An integer in [lo, hi]; error names path.key. */
static int get_int(const json_t *v, const char *path, const char *key, json_int_t lo, json_int_t hi,
                   json_int_t *out, recd_err_t *err)
{
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
        return recd_err_set(err, RECD_EINVAL, "%s.%s: must be an integer in [%lld, %lld]", path,
                            key, (long long)lo, (long long)hi);
    *out = json_integer_value(v);
    return 0;
}

/* ---- variants -------------------------------------------------------------- */

static int variant_parse(const json_t *j, const char *path, recd_ab_variant_t *v, recd_err_t *err)
{
    memset(v, 0, sizeof *v);
    v->rank = -1;
    if (!json_is_object(j))
        return recd_err_set(err, RECD_EINVAL, "%s: must be an object", path);
    const char *key;
    json_t *val;
    int have_name = 0, have_weight = 0;
    json_object_foreach ((json_t *)j, key, val) {
        json_int_t n;
        int rc;
        if (strcmp(key, "name") == 0) {
            rc = get_name(val, path, key, v->name, err);
            have_name = 1;
        } else if (strcmp(key, "weight") == 0) {
            rc = get_int(val, path, key, 0, RECD_AB_MAX_WEIGHT, &n, err);
            v->weight = (uint32_t)n;
            have_weight = 1;
        } else if (strcmp(key, "model") == 0) {
            rc = get_name(val, path, key, v->model, err);
        } else if (strcmp(key, "version") == 0) {
            rc = get_int(val, path, key, 1, INT64_MAX, &n, err);
            v->version = n;
        } else if (strcmp(key, "candidates") == 0) {
            rc = get_int(val, path, key, 1, RECD_AB_MAX_CANDIDATES, &n, err);
            v->candidates = (int32_t)n;
        } else if (strcmp(key, "rank") == 0) {
            if (!json_is_boolean(val))
                return recd_err_set(err, RECD_EINVAL, "%s.rank: must be true or false", path);
            v->rank = json_is_true(val) ? 1 : 0;
            rc = 0;
        } else if (strcmp(key, "score") == 0) {
            const char *s = json_string_value(val);
            if (s && strcmp(s, "pctr") == 0)
                v->score = RECD_AB_SCORE_PCTR;
            else if (s && strcmp(s, "watch_time") == 0)
                v->score = RECD_AB_SCORE_WATCH_TIME;
            else
                return recd_err_set(err, RECD_EINVAL,
                                    "%s.score: must be \"pctr\" or \"watch_time\"", path);
            rc = 0;
        } else {
            return recd_err_set(err, RECD_EINVAL, "%s.%s: unknown key", path, key);
        }
        if (rc)
            return rc;
    }
    if (!have_name)
        return recd_err_set(err, RECD_EINVAL, "%s.name: missing", path);
    if (!have_weight)
        return recd_err_set(err, RECD_EINVAL, "%s.weight: missing", path);
    if (v->version && !v->model[0])
        return recd_err_set(err, RECD_EINVAL, "%s.version: a pinned version needs \"model\"", path);
    return 0;
}

/* ---- layout ---------------------------------------------------------------- */

int recd_ab_exp_layout(recd_ab_exp_t *exp, recd_err_t *err)
{
    uint64_t total = 0;
    for (size_t i = 0; i < exp->n_variants; i++)
        total += exp->variants[i].weight;
    if (total == 0)
        return recd_err_set(err, RECD_EINVAL, "weights must sum to more than 0");
    uint64_t cum = 0;
    uint32_t lo = 0;
    for (size_t i = 0; i < exp->n_variants; i++) {
        cum += exp->variants[i].weight;
        uint32_t hi = (uint32_t)(cum * RECD_AB_BUCKETS / total);
        exp->variants[i].bucket_lo = lo;
        exp->variants[i].bucket_hi = hi;
        lo = hi;
    }
    return 0;
}

/* ---- experiments ----------------------------------------------------------- */

int recd_ab_exp_parse(const json_t *j, const char *path, recd_ab_exp_t *out, recd_err_t *err)
{
    if (!path || !*path)
        path = "experiment";
    memset(out, 0, sizeof *out);
    if (!json_is_object(j))
        return recd_err_set(err, RECD_EINVAL, "%s: must be an object", path);
    const char *key;
    json_t *val;
    const json_t *variants = NULL;
    int have_name = 0, have_salt = 0;
    json_object_foreach ((json_t *)j, key, val) {
        if (strcmp(key, "name") == 0) {
            int rc = get_name(val, path, key, out->name, err);
            if (rc)
                return rc;
            have_name = 1;
        } else if (strcmp(key, "salt") == 0) {
            const char *s = json_string_value(val);
            size_t len = s ? json_string_length(val) : 0;
            if (!s || !salt_ok(s, len) || strlen(s) != len)
                return recd_err_set(err, RECD_EINVAL,
                                    "%s.salt: must be a string of 1..%d printable ASCII "
                                    "characters",
                                    path, RECD_AB_SALT_MAX);
            memcpy(out->salt, s, len);
            out->salt[len] = '\0';
            out->salt_len = len;
            have_salt = 1;
        } else if (strcmp(key, "variants") == 0) {
            variants = val;
        } else {
            return recd_err_set(err, RECD_EINVAL, "%s.%s: unknown key", path, key);
        }
    }
    if (!have_name)
        return recd_err_set(err, RECD_EINVAL, "%s.name: missing", path);
    if (!have_salt)
        return recd_err_set(err, RECD_EINVAL, "%s.salt: missing", path);
    if (!variants)
        return recd_err_set(err, RECD_EINVAL, "%s.variants: missing", path);
    if (!json_is_array(variants) || json_array_size(variants) < 1 ||
        json_array_size(variants) > RECD_AB_MAX_VARIANTS)
        return recd_err_set(err, RECD_EINVAL, "%s.variants: must be an array of 1..%d variants",
                            path, RECD_AB_MAX_VARIANTS);
    size_t n = json_array_size(variants);
    for (size_t i = 0; i < n; i++) {
        char vpath[512];
        snprintf(vpath, sizeof vpath, "%s.variants[%zu]", path, i);
        int rc = variant_parse(json_array_get(variants, i), vpath, &out->variants[i], err);
        if (rc)
            return rc;
        for (size_t k = 0; k < i; k++)
            if (strcmp(out->variants[k].name, out->variants[i].name) == 0)
                return recd_err_set(err, RECD_EINVAL,
                                    "%s.name: duplicate variant name \"%s\" (also variants[%zu])",
                                    vpath, out->variants[i].name, k);
    }
    out->n_variants = n;
    recd_err_t lerr;
    if (recd_ab_exp_layout(out, &lerr))
        return recd_err_set(err, RECD_EINVAL, "%s.variants: weights must sum to more than 0", path);
    return 0;
}

int recd_ab_set_parse(const json_t *j, const char *path, recd_ab_set_t *out, recd_err_t *err)
{
    if (!path || !*path)
        path = "experiments";
    out->n = 0;
    out->exps = NULL;
    if (!j || json_is_null(j))
        return 0;
    if (!json_is_array(j) || json_array_size(j) > RECD_AB_MAX_EXPERIMENTS)
        return recd_err_set(err, RECD_EINVAL, "%s: must be an array of at most %d experiments",
                            path, RECD_AB_MAX_EXPERIMENTS);
    size_t n = json_array_size(j);
    if (n == 0)
        return 0;
    recd_ab_exp_t *exps = calloc(n, sizeof *exps);
    if (!exps)
        return recd_err_set(err, RECD_ENOMEM, "%s: out of memory", path);
    for (size_t i = 0; i < n; i++) {
        char epath[512];
        snprintf(epath, sizeof epath, "%s[%zu]", path, i);
        int rc = recd_ab_exp_parse(json_array_get(j, i), epath, &exps[i], err);
        if (rc) {
            free(exps);
            return rc;
        }
        for (size_t k = 0; k < i; k++)
            if (strcmp(exps[k].name, exps[i].name) == 0) {
                recd_err_set(err, RECD_EINVAL,
                             "%s.name: duplicate experiment name \"%s\" (also %s[%zu])", epath,
                             exps[i].name, path, k);
                free(exps);
                return RECD_EINVAL;
            }
    }
    out->n = n;
    out->exps = exps;
    return 0;
}

void recd_ab_set_free(recd_ab_set_t *s)
{
    if (!s)
        return;
    free(s->exps);
    s->exps = NULL;
    s->n = 0;
}

const recd_ab_exp_t *recd_ab_set_find(const recd_ab_set_t *s, const char *name, size_t len)
{
    if (!s || !name)
        return NULL;
    for (size_t i = 0; i < s->n; i++)
        if (strlen(s->exps[i].name) == len && memcmp(s->exps[i].name, name, len) == 0)
            return &s->exps[i];
    return NULL;
}

/* ---- assignment ------------------------------------------------------------ */

uint32_t recd_ab_bucket(const char *salt, size_t salt_len, const char *user_id, size_t len)
{
    uint64_t h = recd_fnv1a64(RECD_FNV1A64_INIT, salt, salt_len);
    h = recd_fnv1a64(h, ":", 1);
    h = recd_fnv1a64(h, user_id, len);
    return (uint32_t)(h % RECD_AB_BUCKETS);
}

size_t recd_ab_variant_of_bucket(const recd_ab_exp_t *exp, uint32_t bucket)
{
    /* at most 16 variants: a linear scan over the upper bounds */
    for (size_t i = 0; i < exp->n_variants; i++)
        if (bucket < exp->variants[i].bucket_hi)
            return i;
    return exp->n_variants ? exp->n_variants - 1 : 0; /* unreachable for valid input */
}

size_t recd_ab_assign(const recd_ab_exp_t *exp, const char *user_id, size_t len)
{
    return recd_ab_variant_of_bucket(exp, recd_ab_bucket(exp->salt, exp->salt_len, user_id, len));
}

int recd_ab_variant_by_name(const recd_ab_exp_t *exp, const char *name, size_t len)
{
    if (!name)
        return -1;
    for (size_t i = 0; i < exp->n_variants; i++)
        if (strlen(exp->variants[i].name) == len && memcmp(exp->variants[i].name, name, len) == 0)
            return (int)i;
    return -1;
}
