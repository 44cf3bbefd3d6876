/*
 * recd model: the recd-bundle/1 format (see models/FORMAT.md), loading and
 * validation, the registry of named models, the live-item overlay, and the
 * bundle writer used by recd-train.
 *
 * Ownership: a loaded bundle is immutable and refcounted. Requests take one
 * reference for their whole duration (recd_model_acquire / _release); the
 * last release hands the bundle to a background thread that frees it, so
 * no event loop ever pays for munmap or index teardown.
 */
#ifndef RECD_MODEL_H
#define RECD_MODEL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "recd/ann.h"
#include "recd/core.h"

#define RECD_BUNDLE_FORMAT "recd-bundle/1"
#define RECD_TENSOR_ALIGN 64

typedef struct recd_tensor {
    const char *name;
    const float *data; /* into the mmap of tensors.bin */
    int ndim;          /* 1 or 2 */
    int64_t shape[2];  /* shape[1] = 1 for 1-D tensors */
    size_t count;      /* number of floats */
    uint64_t offset;   /* bytes into tensors.bin */
} recd_tensor_t;

typedef enum { RECD_SRC_USER = 0, RECD_SRC_ITEM = 1, RECD_SRC_CONTEXT = 2 } recd_feat_source_t;

/* One feature field of the manifest's schema. */
typedef struct recd_feature {
    char *name;
    recd_feat_source_t source;
    int bucketized;     /* else categorical */
    double *boundaries; /* ascending, for bucketized */
    size_t nboundaries;
    uint64_t buckets; /* hash space */
    int multi_valued;
    char *column;   /* items.tsv column of an item field ("id" for item_id) */
    int column_idx; /* resolved column index, -1 for non-item fields */
} recd_feature_t;

/* The value(s) of one feature field: bucket ids and the value texts they
 * were hashed from (texts are needed again for Wide&Deep crosses). n >= 1:
 * a missing value, null or an empty list is one value "". */
typedef struct recd_field_buckets {
    const uint64_t *b; /* [n] bucket ids */
    size_t n;
    const char *const *t; /* [n] value texts (not necessarily NUL-terminated); may be NULL */
    const uint32_t *tlen; /* [n] text lengths, NULL when t is NULL */
} recd_field_buckets_t;

/* An item-source field hashed for every bundle item at load (never per
 * request): item i's values are [off[i], off[i+1]). */
typedef struct recd_item_field {
    uint32_t *off;      /* [n_items + 1] */
    uint64_t *buckets;  /* [off[n_items]] */
    const char **texts; /* [off[n_items]] value texts (into items_text or text_pool) */
    uint32_t *tlen;     /* [off[n_items]] */
    char *text_pool;    /* bucket-index texts of bucketized fields */
} recd_item_field_t;

/* A dense layer y = act(x @ w + b), w [in, out] row-major. */
typedef struct recd_layer {
    const recd_tensor_t *w, *b;
    int in, out;
    int relu; /* else linear */
} recd_layer_t;

/* One part of the candidate tower's input, in manifest "input" order. */
typedef struct recd_cand_input {
    int is_history;             /* mean of cand.hist_emb rows */
    int feature;                /* index into bundle features (user field) */
    const recd_tensor_t *table; /* cand.field.<f> [buckets, E] */
} recd_cand_input_t;

/* One input field of the content model: its feature and its embedding
 * table content.emb.<f> [buckets_f, embed_dim]. */
typedef struct recd_content_field {
    int feature;                /* index into bundle features (an item-source field) */
    const recd_tensor_t *table; /* [buckets, embed_dim] */
    uint64_t missing;           /* bucket of the missing value "" */
} recd_content_field_t;

/* The optional content model (manifest section "content", models/FORMAT.md):
 * an MLP from an item's content features to its cand.item_emb vector, so an
 * item the catalog has never seen gets a retrieval vector (van den Oord,
 * Dieleman, Schrauwen, "Deep content-based music recommendation", NIPS
 * 2013: regress the latent factors from content). Immutable after load. */
typedef struct recd_content {
    size_t embed_dim;             /* E: width of each field vector */
    recd_content_field_t *fields; /* [nfields], in manifest order */
    size_t nfields;
    recd_layer_t *layers; /* [nlayers]; layers[0].in = E * nfields, last out = D */
    size_t nlayers;
    size_t max_width; /* widest layer input or output */
} recd_content_t;

/* A live item's hashed item-field values, immutable and refcounted so
 * overlay snapshots share it. */
typedef struct recd_live_item {
    _Atomic long refs;
    recd_field_buckets_t *fields; /* [nfeatures]; item-source entries set */
    void *storage;                /* one block behind fields */
} recd_live_item_t;

/* The live-item overlay: items added, replaced or deleted at run time on
 * top of an immutable bundle. A snapshot is immutable; updates publish a new
 * one (copy on write). Readers hold a reference for the request. */
typedef struct recd_overlay {
    _Atomic long refs;
    size_t n_items_base; /* bundle item count (bitmap length) */
    uint8_t *deleted;    /* n_items_base/8 bytes: base items removed or replaced; may be NULL */
    size_t n_deleted;    /* base items marked in `deleted` */
    size_t n_added;      /* live items */
    size_t cap_added;
    char **added_ids;        /* [n_added] */
    float *added_vecs;       /* [n_added, dim] */
    recd_live_item_t **live; /* [n_added] item-field values */
    uint64_t *added_hash;    /* open-addressing table of slots+1 (0 = empty), cap 2*n */
    size_t hash_cap;
} recd_overlay_t;

typedef struct recd_bundle {
    _Atomic long refs;
    char *name;
    int64_t version;
    char *dir; /* bundle directory */
    char *created;
    struct json_t *manifest;
    /* tensors */
    void *map; /* mmap of tensors.bin */
    size_t map_len;
    recd_tensor_t *tensors;
    size_t ntensors;
    /* items */
    size_t n_items;
    char *items_text; /* items.tsv contents; cells point into it */
    size_t ncols;
    char **col_names;        /* [ncols] */
    char **cells;            /* [n_items * ncols], NUL-terminated */
    double *popularity;      /* [n_items], 0 when the column is absent */
    uint32_t *by_popularity; /* item indices, popularity desc, ties by index */
    uint64_t *id_hash;       /* open addressing: (index+1), 0 = empty */
    size_t id_hash_cap;
    /* features */
    recd_feature_t *features;
    size_t nfeatures;
    recd_item_field_t *item_fields; /* [nfeatures]; filled for item-source fields only */
    /* candidate model */
    size_t dim;          /* D: item vectors, user vector */
    size_t embed_dim;    /* E: history and field embeddings */
    size_t hist_max_len; /* most recent history items used */
    const recd_tensor_t *item_emb, *hist_emb;
    recd_cand_input_t *inputs;
    size_t ninputs;
    recd_layer_t *tower;
    size_t ntower;
    /* ANN */
    recd_ann_spec_t ann_spec;
    recd_ann_t *ann;
    int ann_from_file; /* index.faiss was read (else built at load) */
    uint64_t ann_build_us;
    /* live items; guarded by overlay_lock for pointer swaps only */
    recd_overlay_t *overlay;
    void *overlay_lock; /* pthread_mutex_t*: protects the `overlay` pointer */
    void *writer_lock;  /* pthread_mutex_t*: serialises overlay writers */
    /* content model (cold-start item vectors); NULL when the bundle has none */
    recd_content_t *content;
    /* ranking network, attached by the loader's hook (src/rank), opaque here */
    void *ranker;
    void (*ranker_free)(void *ranker);
    /* accounting */
    uint64_t load_us;
    size_t bytes; /* tensors + items + index + tables */
} recd_bundle_t;

/* Loading options (from config). */
typedef struct recd_model_opts {
    const char *ann_factory; /* "" = manifest */
    int nprobe;              /* 0 = manifest */
    int ef_search;           /* 0 = manifest */
    int use_index_file;      /* read index.faiss when present */
    /* called after validation, before publication (e.g. to attach the
     * ranker); non-zero rejects the bundle with err. May be NULL. */
    int (*attach)(recd_bundle_t *b, recd_err_t *err);
} recd_model_opts_t;

/* Load and fully validate the bundle in dir (name and version are taken
 * from the manifest and must match the directory). Returns a new bundle
 * with one reference, or NULL with err naming the file, tensor and reason.
 * Thread-safe (no shared state). */
recd_bundle_t *recd_bundle_load(const char *dir, const recd_model_opts_t *opts, recd_err_t *err);
/* Drop a reference; the last one frees (on the caller's thread: use
 * recd_model_release on request paths). */
void recd_bundle_unref(recd_bundle_t *b);

/* Item index for an id, or -1 (base items only, ignoring the overlay). */
int64_t recd_bundle_item_index(const recd_bundle_t *b, const char *id, size_t len);
/* Tensor by name, or NULL. */
const recd_tensor_t *recd_bundle_tensor(const recd_bundle_t *b, const char *name);

/* Bucket of a value text for a field named `field` (FNV-1a-64 of
 * field + "\x1f" + text, mod buckets). */
uint64_t recd_feature_bucket(const char *field, size_t flen, const char *text, size_t tlen,
                             uint64_t buckets);
/* Bucket index of a number for a bucketized field: #{b : b <= v}. */
size_t recd_feature_bucketize(const recd_feature_t *f, double v);

/* ---- content model (src/model/content.c) ------------------------------------------ */

/* Parse and validate the manifest's "content" section (a JSON object) for
 * b, whose features, tensors and candidate model are already loaded, and
 * set b->content. Every failure names the key or tensor and the reason
 * (unknown type/activation/output, unknown, non-item or id field, missing
 * tensor, wrong shape, broken in/out chain, last out != candidate.dim).
 * Returns 0 or a RECD_E* code with err set. Called by recd_bundle_load. */
int recd_content_parse(recd_bundle_t *b, struct json_t *section, recd_err_t *err);
/* Free a parsed content model (NULL is fine). */
void recd_content_free(recd_content_t *c);
/* Floats of scratch recd_content_embed needs for b (0 without a content
 * model). */
size_t recd_content_scratch_floats(const recd_bundle_t *b);
/* Does a field's value set carry no information: n == 0, or every value
 * text is the missing text "" (null, "", an empty list)? A value set
 * without texts (t == NULL) and n >= 1 counts as given. */
int recd_content_value_missing(const recd_field_buckets_t *f);
/* The content model's vector for one item: fields[b->nfeatures] holds the
 * item's hashed values (the item-source entries a content field names are
 * read; n == 0 means missing and hashes as ""; buckets as computed with
 * recd_feature_bucket for this bundle's fields). Writes out[b->dim]; uses
 * scratch[recd_content_scratch_floats(b)], allocates nothing. Every
 * intermediate and output value must be finite. Returns 0; RECD_EINVAL
 * when b has no content model or a bucket is outside its table;
 * RECD_ERANGE when a value overflowed (out is then unspecified).
 * Thread-safe: reads only the immutable bundle. */
int recd_content_embed(const recd_bundle_t *b, const recd_field_buckets_t *fields, float *out,
                       float *scratch, recd_err_t *err);

/* ---- overlay ------------------------------------------------------------------ */
/* Current overlay snapshot with a new reference (never NULL for a loaded
 * bundle). Thread-safe. */
recd_overlay_t *recd_overlay_acquire(recd_bundle_t *b);
void recd_overlay_release(recd_overlay_t *o);
/* Is base item i deleted/replaced in o? */
static inline int recd_overlay_deleted(const recd_overlay_t *o, size_t i)
{
    return o->deleted && (o->deleted[i >> 3] >> (i & 7)) & 1;
}
/* Slot of a live item id in o, or -1. */
int64_t recd_overlay_find(const recd_overlay_t *o, const char *id, size_t len);
/* Add or replace an item with vector vec[dim]; delete an item. Both publish
 * a new snapshot atomically. item_fields: [b->nfeatures] values of the
 * item-source fields (copied; NULL or n == 0 entries = missing, hashed as
 * ""; item_id is the id itself). Thread-safe (writers serialise). Returns 0,
 * RECD_ENOENT (delete of an unknown id) or RECD_ENOMEM. *created tells
 * whether the id was new. */
int recd_overlay_put(recd_bundle_t *b, const char *id, const float *vec,
                     const recd_field_buckets_t *item_fields, int *created, recd_err_t *err);
int recd_overlay_delete(recd_bundle_t *b, const char *id, recd_err_t *err);
/* Values of item-source feature f of a candidate: base item `index`
 * (hashed at load) or live `slot` (hashed at PUT). Exactly one of index and
 * slot is >= 0. Thread-safe; out points into b or o. */
void recd_item_values(const recd_bundle_t *b, const recd_overlay_t *o, int64_t index, int64_t slot,
                      size_t f, recd_field_buckets_t *out);
/* Is an id servable (base and not deleted, or live)? */
int recd_overlay_item_known(const recd_bundle_t *b, const recd_overlay_t *o, const char *id,
                            size_t len, int64_t *base_index, int64_t *slot);

/* ---- registry ------------------------------------------------------------------ */

typedef struct recd_model_status {
    char name[64];
    int64_t version; /* 0 when nothing is loaded */
    size_t n_items, dim;
    char index[64]; /* factory string */
    int ann_from_file;
    double load_ms, ann_build_ms;
    size_t bytes;
    char last_error[512]; /* "" when the last load attempt succeeded */
    int64_t failed_version;
    /* swaps (recd_model_publish) */
    int64_t published;      /* versions published under this name so far */
    double loaded_at;       /* wall clock (epoch s) when the current version was published */
    int64_t last_from;      /* version replaced by the last publish (0 = none) */
    double last_swap_us;    /* time the last pointer swap held the entry lock */
    size_t waiting_to_free; /* retired versions still referenced (or queued to be freed) */
} recd_model_status_t;

/* Start the registry: the background free thread. */
int recd_model_registry_init(recd_err_t *err);
/* Load every model named in names (comma-separated; "" = every directory
 * in models_dir): for each, the highest version that validates. Failures
 * are logged and kept for /stats. Returns the number of names that have no
 * servable version (0 = all loaded). Call from one thread (the loader). */
int recd_model_registry_load(const char *models_dir, const char *names,
                             const recd_model_opts_t *opts);
/* Current bundle of a model with a new reference, or NULL. Thread-safe. */
recd_bundle_t *recd_model_acquire(const char *name);
/* Release a reference taken by acquire; the last release frees on the
 * background thread. Thread-safe. */
void recd_model_release(recd_bundle_t *b);
/* Publish b (takes the caller's reference) as the current version of its
 * name; the old one is released. Thread-safe. */
void recd_model_publish(recd_bundle_t *b);
/* Is s a version directory name (a positive decimal integer without a
 * leading zero, sign or space, within int64)? Sets *version when it is. */
int recd_model_version_name(const char *s, int64_t *version);
/* The cap highest versions of the model directory model_dir (entries whose
 * names recd_model_version_name accepts; with dirs_only, only those that
 * are directories or links to directories), highest first, in out. Every
 * entry is looked at, so out[0] is the highest version there is. Returns
 * how many were stored (<= cap); 0 when model_dir cannot be read. */
size_t recd_model_list_versions(const char *model_dir, int64_t *out, size_t cap, int dirs_only);
/* Record (msg != "") or clear (msg == "") the load failure shown in the
 * model's status (last_error, failed_version); creates the entry when the
 * name has none yet. Thread-safe. */
void recd_model_set_error(const char *name, int64_t version, const char *msg);
/* Retired versions of a model (replaced by a publish) that are not freed
 * yet because a request still holds them or the reaper has not run. name
 * NULL = all models. Thread-safe. */
size_t recd_model_waiting_to_free(const char *name);
/* Source of the /stats "models" section that recd_model_registry_init
 * registers: json replaces the registry's own object (name -> status) and
 * prom_extra appends lines after the registry's own model metrics. Either
 * may be NULL (the registry's own / nothing). Used by the lifecycle
 * manager while it runs. Thread-safe. */
void recd_model_registry_set_stats(struct json_t *(*json)(void),
                                   void (*prom_extra)(char **buf, size_t *len, size_t *cap));
/* Status of every registered model; returns the count (<= cap). */
size_t recd_model_status_list(recd_model_status_t *out, size_t cap);
/* Wait for the background frees to finish, release everything. */
void recd_model_registry_shutdown(void);

/* ---- writer (recd-train, generators) ---------------------------------------------- */

/* Is name a model name: 1..63 characters of [A-Za-z0-9._-], not starting
 * with '.' (one path component the manifest, the registry and URLs carry
 * unchanged)? NULL is not. */
int recd_model_name_ok(const char *name);

typedef struct recd_bundle_writer recd_bundle_writer_t;
/* Start writing <models_dir>/<name>/.tmp-<version>/ (a stale tmp dir is
 * replaced). name: 1..63 of [A-Za-z0-9._-], not starting with '.';
 * version >= 1 and not yet published. */
recd_bundle_writer_t *recd_bundle_writer_new(const char *models_dir, const char *name,
                                             int64_t version, recd_err_t *err);
/* Append a tensor (copied to tensors.bin at the next 64-byte boundary).
 * Refuses NaN/Inf values, duplicate names, ndim other than 1 or 2 and
 * non-positive dimensions. */
int recd_bundle_writer_tensor(recd_bundle_writer_t *w, const char *name, const float *data,
                              int ndim, const int64_t *shape, recd_err_t *err);
/* Path of a file inside the temporary directory (e.g. for index.faiss):
 * a writer-owned buffer valid until the next call, commit or abort; NULL
 * when too long. */
const char *recd_bundle_writer_path(recd_bundle_writer_t *w, const char *file);
/* Write items.tsv text as given. */
int recd_bundle_writer_items(recd_bundle_writer_t *w, const char *tsv, size_t len, recd_err_t *err);
/* Finish: write manifest.json = `manifest` (borrowed JSON object; this
 * adds "tensors", "tensor_alignment" and "files" with SHA-256 of every
 * file; the caller's object is not modified), fsync every file, rename to
 * <version>/ with RENAME_NOREPLACE (a published version is never replaced),
 * fsync <name>/. Fails if items.tsv was never written. On failure the tmp
 * dir is removed. Frees w either way. */
int recd_bundle_writer_commit(recd_bundle_writer_t *w, struct json_t *manifest, recd_err_t *err);
/* Abandon: remove the temporary directory, free w. */
void recd_bundle_writer_abort(recd_bundle_writer_t *w);

#endif
