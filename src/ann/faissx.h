/*
 * Private to src/ann: the few FAISS operations that the FAISS C API cannot
 * express. Implemented in faissx.cpp on the FAISS C++ library, which is
 * linked in both configurations (the official libfaiss_c sits on top of
 * libfaiss too), so these work whichever C API implementation is linked.
 * A FaissIndex* from either C API is a faiss::Index* underneath; that is
 * how the official C API defines its handles.
 *
 * Names carry the recd_faissx_ prefix and stay out of the faiss_* C API
 * namespace on purpose. None of these throw; all are thread-safe on
 * different indexes; the setters must not race with searches on the same
 * index (recd only calls them while building).
 */
#ifndef RECD_ANN_FAISSX_H
#define RECD_ANN_FAISSX_H

#include <faiss/c_api/Index_c.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Seed of the k-means run by train() of an IVF index (FAISS's
 * ClusteringParameters::seed, default 1234). Also turns off FAISS's own
 * fprintf(stderr) warning about fewer than 39 training points per list
 * (min_points_per_centroid, used for nothing else): ann.c reports that
 * through recd's log instead. Returns 0, or -1 when idx is not an IVF
 * index. */
int recd_faissx_ivf_set_kmeans_seed(FaissIndex *idx, int seed);

/* Build-time beam width of an HNSW index (hnsw.efConstruction, FAISS
 * default 40); call before adding vectors. Returns 0, or -1 when idx is not
 * an HNSW index. */
int recd_faissx_hnsw_set_ef_construction(FaissIndex *idx, int ef);

/* M of an IndexHNSWFlat (links per node above level 0), 0 when idx is not
 * an HNSW index with flat storage. */
int recd_faissx_hnsw_flat_m(const FaissIndex *idx);

/* Keep the calling thread's OpenMP parallel regions at one thread. The
 * OpenMP thread count (nthreads-var) is a per-thread setting in libgomp, so
 * this has to run on each thread that calls into FAISS; it is a store to a
 * thread-local variable after the first call on a thread, cheap enough for
 * every search. */
void recd_faissx_omp_single_thread(void);

#ifdef __cplusplus
}
#endif

#endif
