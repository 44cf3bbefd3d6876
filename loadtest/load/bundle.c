/* recd-load: manifest schema and items.tsv (see bundle.h). */
#include "bundle.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "recd/model.h"

static int fail(char *err, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, n, fmt, ap);
    va_end(ap);
    return -1;
}

static int has_manifest(const char *dir)
{
    char p[4096];
    struct stat st;
    if (snprintf(p, sizeof p, "%s/manifest.json", dir) >= (int)sizeof p)
        return 0;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* The version directory: path itself, or its highest numeric child. */
static char *resolve_dir(const char *path, char *err, size_t n)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        fail(err, n, "cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    if (!S_ISDIR(st.st_mode)) {
        fail(err, n, "%s is not a directory", path);
        return NULL;
    }
    if (has_manifest(path))
        return strdup(path);
    /* recd's own listing (version names as recd serves them), highest
     * first; the first with a manifest wins */
    int64_t vs[64];
    size_t nv = recd_model_list_versions(path, vs, sizeof vs / sizeof vs[0], 1);
    char *best_dir = NULL;
    for (size_t i = 0; i < nv && !best_dir; i++) {
        char sub[4096];
        if (snprintf(sub, sizeof sub, "%s/%lld", path, (long long)vs[i]) < (int)sizeof sub &&
            has_manifest(sub))
            best_dir = strdup(sub);
    }
    if (!best_dir)
        fail(err, n, "%s has no manifest.json and no numeric version directory with one", path);
    return best_dir;
}

static char *base_name(const char *p, int parent)
{
    char *tmp = strdup(p);
    if (!tmp)
        return NULL;
    size_t l = strlen(tmp);
    while (l > 1 && tmp[l - 1] == '/')
        tmp[--l] = '\0';
    if (parent) {
        char *s = strrchr(tmp, '/');
        if (s)
            *s = '\0';
        else
            strcpy(tmp, ".");
        l = strlen(tmp);
    }
    char *s = strrchr(tmp, '/');
    char *out = strdup(s ? s + 1 : tmp);
    free(tmp);
    return out;
}

static int load_fields(lg_bundle_t *b, json_t *m, char *err, size_t n)
{
    json_t *feats = json_object_get(m, "features");
    json_t *fields = feats ? json_object_get(feats, "fields") : NULL;
    if (!json_is_array(fields))
        return fail(err, n, "%s/manifest.json: features.fields is not an array", b->dir);
    size_t nf = json_array_size(fields);
    b->fields = calloc(nf ? nf : 1, sizeof *b->fields);
    if (!b->fields)
        return fail(err, n, "out of memory");
    for (size_t i = 0; i < nf; i++) {
        json_t *f = json_array_get(fields, i);
        lg_field_t *lf = &b->fields[i];
        const char *name = json_string_value(json_object_get(f, "name"));
        const char *src = json_string_value(json_object_get(f, "source"));
        const char *type = json_string_value(json_object_get(f, "type"));
        if (!name || !*name || !src || !type)
            return fail(err, n, "%s/manifest.json: features.fields[%zu] lacks name, source or type",
                        b->dir, i);
        if (strcmp(src, "user") == 0)
            lf->source = LG_SRC_USER;
        else if (strcmp(src, "item") == 0)
            lf->source = LG_SRC_ITEM;
        else if (strcmp(src, "context") == 0)
            lf->source = LG_SRC_CONTEXT;
        else
            return fail(err, n, "%s/manifest.json: features.fields[%zu].source: unknown \"%s\"",
                        b->dir, i, src);
        if (strcmp(type, "bucketized") == 0)
            lf->bucketized = 1;
        else if (strcmp(type, "categorical") != 0)
            return fail(err, n, "%s/manifest.json: features.fields[%zu].type: unknown \"%s\"",
                        b->dir, i, type);
        lf->name = strdup(name);
        b->nfields = i + 1;
        if (!lf->name)
            return fail(err, n, "out of memory");
        json_t *bounds = json_object_get(f, "boundaries");
        if (lf->bucketized) {
            if (!json_is_array(bounds))
                return fail(err, n, "%s/manifest.json: features.fields[%zu].boundaries missing",
                            b->dir, i);
            lf->nbounds = json_array_size(bounds);
            lf->bounds = calloc(lf->nbounds ? lf->nbounds : 1, sizeof *lf->bounds);
            if (!lf->bounds)
                return fail(err, n, "out of memory");
            for (size_t k = 0; k < lf->nbounds; k++) {
                json_t *v = json_array_get(bounds, k);
                if (!json_is_number(v))
                    return fail(err, n,
                                "%s/manifest.json: features.fields[%zu].boundaries[%zu] is not "
                                "a number",
                                b->dir, i, k);
                lf->bounds[k] = json_number_value(v);
            }
        }
        json_t *vals = json_object_get(f, "values");
        if (json_is_array(vals) && json_array_size(vals) > 0) {
            size_t nv = json_array_size(vals);
            lf->values = calloc(nv, sizeof *lf->values);
            if (!lf->values)
                return fail(err, n, "out of memory");
            for (size_t k = 0; k < nv; k++) {
                const char *s = json_string_value(json_array_get(vals, k));
                if (!s)
                    continue; /* informative only: skip what is not a string */
                if (!(lf->values[lf->nvalues] = strdup(s)))
                    return fail(err, n, "out of memory");
                lf->nvalues++;
            }
        }
    }
    return 0;
}

/* Split a line (NUL-terminated) into tab-separated cells in place. */
static size_t split_cells(char *line, char **cells, size_t max)
{
    size_t k = 0;
    char *c = line;
    for (;;) {
        char *tab = strchr(c, '\t');
        if (k < max)
            cells[k] = c;
        k++;
        if (!tab)
            break;
        *tab = '\0';
        c = tab + 1;
    }
    return k;
}

static int load_items(lg_bundle_t *b, long long n_items, char *err, size_t n)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/items.tsv", b->dir);
    FILE *f = fopen(path, "rb");
    if (!f)
        return fail(err, n, "cannot open %s: %s", path, strerror(errno));
    size_t cap = 1 << 16, len = 0;
    char *text = malloc(cap);
    while (text) {
        if (len + 4096 + 1 > cap) {
            char *t = realloc(text, cap * 2);
            if (!t) {
                free(text);
                text = NULL;
                break;
            }
            text = t;
            cap *= 2;
        }
        size_t got = fread(text + len, 1, cap - len - 1, f);
        len += got;
        if (got == 0)
            break;
    }
    int rerr = ferror(f);
    fclose(f);
    if (!text)
        return fail(err, n, "out of memory reading %s", path);
    if (rerr) {
        free(text);
        return fail(err, n, "cannot read %s", path);
    }
    text[len] = '\0';
    b->text = text;
    /* count lines for the arrays */
    size_t lines = 1;
    for (size_t i = 0; i < len; i++)
        lines += text[i] == '\n';
    b->ids = malloc(lines * sizeof *b->ids);
    if (!b->ids)
        return fail(err, n, "out of memory");
    char *p = text;
    size_t lineno = 0;
    long id_col = -1, pop_col = -1;
    size_t ncols = 0;
    char *cells[256];
    while (*p || p == text) {
        char *nl = strchr(p, '\n');
        if (nl)
            *nl = '\0';
        size_t l = strlen(p);
        if (l && p[l - 1] == '\r')
            p[--l] = '\0';
        lineno++;
        if (lineno == 1) {
            ncols = split_cells(p, cells, 256);
            for (size_t k = 0; k < ncols && k < 256; k++) {
                if (strcmp(cells[k], "id") == 0 && id_col < 0)
                    id_col = (long)k;
                if (strcmp(cells[k], "popularity") == 0 && pop_col < 0)
                    pop_col = (long)k;
            }
            if (id_col < 0)
                return fail(err, n, "%s: the header has no \"id\" column", path);
            if (pop_col >= 0 && !(b->popularity = malloc(lines * sizeof *b->popularity)))
                return fail(err, n, "out of memory");
        } else if (l > 0) {
            size_t k = split_cells(p, cells, 256);
            if (k != ncols)
                return fail(err, n, "%s line %zu: %zu columns, the header has %zu", path, lineno, k,
                            ncols);
            if (!*cells[id_col])
                return fail(err, n, "%s line %zu: empty id", path, lineno);
            b->ids[b->nitems] = cells[id_col];
            if (pop_col >= 0) {
                char *end;
                errno = 0;
                double v = strtod(cells[pop_col], &end);
                if (end == cells[pop_col] || *end || errno || !isfinite(v))
                    return fail(err, n, "%s line %zu: popularity \"%s\" is not a number", path,
                                lineno, cells[pop_col]);
                b->popularity[b->nitems] = v;
            }
            b->nitems++;
        }
        if (!nl)
            break;
        p = nl + 1;
    }
    if (lineno == 0 || id_col < 0)
        return fail(err, n, "%s: empty file", path);
    if (b->nitems == 0)
        return fail(err, n, "%s: no items", path);
    if (n_items >= 0 && (size_t)n_items != b->nitems)
        return fail(err, n, "%s: %zu items, the manifest's n_items is %lld", path, b->nitems,
                    n_items);
    return 0;
}

int lg_bundle_load(lg_bundle_t *b, const char *path, char *err, size_t n)
{
    memset(b, 0, sizeof *b);
    b->dir = resolve_dir(path, err, n);
    if (!b->dir)
        return -1;
    char mpath[4200];
    snprintf(mpath, sizeof mpath, "%s/manifest.json", b->dir);
    json_error_t je;
    json_t *m = json_load_file(mpath, 0, &je);
    if (!m)
        return fail(err, n, "%s line %d: %s", mpath, je.line, je.text);
    int rc = -1;
    if (!json_is_object(m)) {
        fail(err, n, "%s is not a JSON object", mpath);
        goto out;
    }
    const char *name = json_string_value(json_object_get(m, "name"));
    b->name = name ? strdup(name) : base_name(b->dir, 1);
    json_t *ver = json_object_get(m, "version");
    if (json_is_integer(ver)) {
        b->version = json_integer_value(ver);
    } else {
        char *bn = base_name(b->dir, 0);
        int64_t v = 0;
        b->version = bn && recd_model_version_name(bn, &v) ? v : 0;
        free(bn);
    }
    if (!b->name) {
        fail(err, n, "out of memory");
        goto out;
    }
    if (load_fields(b, m, err, n) < 0)
        goto out;
    json_t *ni = json_object_get(m, "n_items");
    if (load_items(b, json_is_integer(ni) ? json_integer_value(ni) : -1, err, n) < 0)
        goto out;
    rc = 0;
out:
    json_decref(m);
    return rc;
}

const lg_field_t *lg_bundle_field(const lg_bundle_t *b, const char *name)
{
    for (size_t i = 0; i < b->nfields; i++)
        if (strcmp(b->fields[i].name, name) == 0)
            return &b->fields[i];
    return NULL;
}

void lg_bundle_free(lg_bundle_t *b)
{
    for (size_t i = 0; i < b->nfields; i++) {
        free(b->fields[i].name);
        free(b->fields[i].bounds);
        for (size_t k = 0; k < b->fields[i].nvalues; k++)
            free(b->fields[i].values[k]);
        free(b->fields[i].values);
    }
    free(b->fields);
    free(b->ids);
    free(b->popularity);
    free(b->text);
    free(b->name);
    free(b->dir);
    memset(b, 0, sizeof *b);
}
