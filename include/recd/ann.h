/*
 * recd ann: approximate nearest-neighbour search over item vectors with
 * FAISS, inner-product metric. This module is the only one that talks to
 * FAISS, and it does so only through the FAISS C API (headers in faiss/c_api/);
 * when libfaiss_c is not available the project's own src/ann/faiss_c.cpp
 * implements the few C API functions used here on top of libfaiss.a.
 *
 * An index is immutable once built or loaded: searches from any number of
 * threads at once are safe. Live catalog changes are layered above this
 * module (src/model overlay), never by mutating an index in place.
 */
#ifndef RECD_ANN_H
#define RECD_ANN_H

#include <stddef.h>
#include <stdint.h>

#include "recd/core.h"

typedef enum {
    RECD_ANN_FLAT = 1, /* exact, brute force */
    RECD_ANN_IVF = 2,  /* "IVF<nlist>,Flat": k-means coarse quantiser */
    RECD_ANN_HNSW = 3, /* "HNSW<M>": graph */
} recd_ann_kind_t;

typedef struct recd_ann_spec {
    recd_ann_kind_t kind;
    int nlist;            /* IVF: number of lists */
    int nprobe;           /* IVF: lists visited per query */
    int M;                /* HNSW: links per node */
    int ef_search;        /* HNSW: search beam width */
    int ef_construction;  /* HNSW: build beam width (0 = FAISS default) */
    uint64_t kmeans_seed; /* IVF: k-means seed */
} recd_ann_spec_t;

/* Parse a FAISS factory string: "Flat", "IVF<nlist>,Flat" (nlist >= 1),
 * "HNSW<M>" (M 2..512); nothing else (no spaces, no other FAISS forms).
 * Fills kind and nlist/M; the other fields get defaults that the caller may
 * override: nprobe 16, ef_search 64, ef_construction 0 (FAISS's 40),
 * kmeans_seed 1234 (FAISS's own default; bundles name theirs). Returns 0
 * or RECD_EINVAL with a message quoting the string. spec is written only
 * on success. Thread-safe. */
int recd_ann_spec_parse(const char *factory, recd_ann_spec_t *spec, recd_err_t *err);
/* The factory string of a spec, e.g. "IVF1024,Flat": a static string or
 * buf (cap >= 24 is enough). Thread-safe. */
const char *recd_ann_spec_factory(const recd_ann_spec_t *spec, char *buf, size_t cap);

typedef struct recd_ann recd_ann_t;

/* Build an index over n vectors of dimension d (row-major, borrowed for the
 * duration of the call; FAISS copies them). FAISS id = row index. IVF is
 * trained on all n vectors (nlist <= n required, else RECD_EINVAL; FAISS
 * itself subsamples beyond 256 vectors per list) with spec->kmeans_seed
 * (<= INT_MAX). spec is copied; nprobe > nlist is clamped to nlist (see
 * recd_ann_get_spec). Returns a new index the caller frees with
 * recd_ann_free, or NULL and fills err. Builds share nothing, so several
 * may run at once on different threads; training and HNSW insertion use
 * FAISS's OpenMP with the calling thread's thread count (all cores unless
 * OMP_NUM_THREADS or omp_set_num_threads says otherwise), so build on a
 * background thread, never on an event loop. */
recd_ann_t *recd_ann_build(const recd_ann_spec_t *spec, const float *vecs, size_t n, size_t d,
                           recd_err_t *err);
/* Read an index written by FAISS (faiss_write_index_fname, or Python's
 * faiss.write_index) and check that it matches: metric inner product,
 * dimension d, n vectors, and the kind of spec (Flat / IVF<nlist>,Flat with
 * the same nlist / HNSW<M> with flat storage and the same M). Search
 * parameters come from spec. Returns a new index, or NULL and err naming
 * the file and the mismatch (RECD_ENOENT/RECD_EIO when the file cannot be
 * opened, RECD_EINVAL when it is not a valid FAISS index or does not
 * match). The file's integrity is the caller's business (bundle SHA-256):
 * FAISS trusts the sizes stored in the file. Thread-safe like build. */
recd_ann_t *recd_ann_load(const char *path, const recd_ann_spec_t *spec, size_t n, size_t d,
                          recd_err_t *err);
/* Write the index (FAISS format) to path, truncating it; no fsync, no
 * rename: the caller publishes the file (write to a temporary name, fsync,
 * rename). 0 or RECD_EIO. Thread-safe (reads the index only). */
int recd_ann_save(const recd_ann_t *a, const char *path, recd_err_t *err);

/* Top-k by inner product for nq queries (row-major nq x d, borrowed).
 * Fills scores[nq*k] and ids[nq*k] (caller's arrays) best first; missing
 * results get id -1 and score -INFINITY (k > n, or an IVF probe / HNSW beam
 * that found fewer than k). nq == 0 or k == 0 does nothing. Thread-safe;
 * runs on the calling thread only: it sets the calling thread's OpenMP
 * thread count to 1 (per-thread in libgomp) before calling FAISS. Returns
 * 0 or RECD_ERR (RECD_EINVAL for bad arguments). */
int recd_ann_search(const recd_ann_t *a, const float *q, size_t nq, size_t k, float *scores,
                    int64_t *ids, recd_err_t *err);

/* Accessors; thread-safe. get_spec returns the effective spec (nprobe
 * clamped), owned by the index. */
size_t recd_ann_dim(const recd_ann_t *a);
size_t recd_ann_count(const recd_ann_t *a);
const recd_ann_spec_t *recd_ann_get_spec(const recd_ann_t *a);
/* Approximate memory held by the index, bytes: n*d*4 for the vectors plus
 * an estimate of the IVF lists (ids, centroids, vector growth slack) or the
 * HNSW graph (about (2M+1) int32 links per node). */
size_t recd_ann_bytes(const recd_ann_t *a);
/* Free the index; NULL is fine. No search may be running on it. */
void recd_ann_free(recd_ann_t *a);

#endif
