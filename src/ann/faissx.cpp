/*
 * FAISS operations beyond the C API (see faissx.h). Always compiled, with
 * or without the official libfaiss_c: only FAISS C++ and OpenMP here.
 */
#include "faissx.h"

#include <omp.h>

#include <faiss/IndexHNSW.h>
#include <faiss/IndexIVF.h>

namespace
{

faiss::Index *cxx(FaissIndex *idx)
{
    return reinterpret_cast<faiss::Index *>(idx);
}

const faiss::Index *cxx(const FaissIndex *idx)
{
    return reinterpret_cast<const faiss::Index *>(idx);
}

} // namespace

extern "C" int recd_faissx_ivf_set_kmeans_seed(FaissIndex *idx, int seed)
{
    auto *ivf = dynamic_cast<faiss::IndexIVF *>(cxx(idx));
    if (!ivf)
        return -1;
    ivf->cp.seed = seed;
    ivf->cp.min_points_per_centroid = 0;
    return 0;
}

extern "C" int recd_faissx_hnsw_set_ef_construction(FaissIndex *idx, int ef)
{
    auto *h = dynamic_cast<faiss::IndexHNSW *>(cxx(idx));
    if (!h)
        return -1;
    h->hnsw.efConstruction = ef;
    return 0;
}

extern "C" int recd_faissx_hnsw_flat_m(const FaissIndex *idx)
{
    auto *h = dynamic_cast<const faiss::IndexHNSWFlat *>(cxx(idx));
    if (!h)
        return 0;
    /* level 0 has 2*M links, every level above M */
    return h->hnsw.nb_neighbors(1);
}

extern "C" void recd_faissx_omp_single_thread(void)
{
    /* omp_get_max_threads() reads the same per-thread value, so the store
     * (which allocates libgomp's per-thread state the first time) happens
     * once per thread. */
    if (omp_get_max_threads() != 1)
        omp_set_num_threads(1);
}
