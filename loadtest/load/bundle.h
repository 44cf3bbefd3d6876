/*
 * recd-load: what the load generator reads from a model bundle
 * (recd-bundle/1, ../shared/BUNDLE.md): the manifest's feature schema and
 * name/version, and items.tsv's `id` and optional `popularity` columns.
 * Tensors are never read.
 */
#ifndef RECD_LOAD_BUNDLE_H
#define RECD_LOAD_BUNDLE_H

#include <stddef.h>

typedef enum { LG_SRC_USER = 0, LG_SRC_ITEM = 1, LG_SRC_CONTEXT = 2 } lg_src_t;

/* One features.fields entry of the manifest. */
typedef struct lg_field {
    char *name;
    lg_src_t source;
    int bucketized; /* type "bucketized" (else categorical) */
    double *bounds; /* boundaries of a bucketized field */
    size_t nbounds;
    char **values; /* the informative "values" list (strings), or NULL */
    size_t nvalues;
} lg_field_t;

typedef struct lg_bundle {
    char *dir;         /* the version directory read */
    char *name;        /* manifest "name" (else the model directory's name) */
    long long version; /* manifest "version" (else the directory's number) */
    size_t nitems;
    char **ids;         /* nitems item ids, pointing into text */
    double *popularity; /* nitems values, or NULL without the column */
    char *text;         /* items.tsv contents, cells NUL-terminated in place */
    lg_field_t *fields;
    size_t nfields;
} lg_bundle_t;

/* Load the bundle at path: a version directory holding manifest.json, or a
 * model directory whose highest numeric subdirectory holding a
 * manifest.json is used. 0, or -1 with a message in err (no prefix; the
 * caller names the option or scenario key). b is zeroed first and needs
 * lg_bundle_free() either way. */
int lg_bundle_load(lg_bundle_t *b, const char *path, char *err, size_t errlen);
/* The field called name, or NULL. */
const lg_field_t *lg_bundle_field(const lg_bundle_t *b, const char *name);
/* Release everything; b is zeroed. */
void lg_bundle_free(lg_bundle_t *b);

#endif
