/*
 * The subset of the FAISS C API (the headers in faiss/c_api/) that src/ann calls,
 * implemented on the FAISS C++ library. Compiled only when the system has
 * no libfaiss_c (Debian ships the C API headers and libfaiss.a, not the C
 * API library). Including the official headers makes the compiler check
 * every signature against them.
 *
 * Each entry point catches every C++ exception, keeps its message for
 * faiss_get_last_error() (thread-local, like the official library) and
 * returns the official error codes: FAISS_EXCEPT (-2) for
 * faiss::FaissException, STD_EXCEPT (-4) for other std::exception (also
 * std::bad_alloc), UNKNOWN_EXCEPT (-1) for anything else.
 */
#include <faiss/c_api/AutoTune_c.h>
#include <faiss/c_api/IndexFlat_c.h>
#include <faiss/c_api/IndexIVFFlat_c.h>
#include <faiss/c_api/IndexIVF_c.h>
#include <faiss/c_api/Index_c.h>
#include <faiss/c_api/error_c.h>
#include <faiss/c_api/index_factory_c.h>
#include <faiss/c_api/index_io_c.h>

#include <faiss/AutoTune.h>
#include <faiss/IndexFlat.h>
#include <faiss/IndexIVF.h>
#include <faiss/IndexIVFFlat.h>
#include <faiss/impl/FaissException.h>
#include <faiss/index_factory.h>
#include <faiss/index_io.h>

#include <exception>
#include <string>

namespace
{

thread_local std::string last_error;
thread_local bool have_error = false;

/* Run f, translating exceptions into a C API error code. */
template <typename F> int guarded(F f)
{
    try {
        f();
        return OK;
    } catch (const faiss::FaissException &e) {
        last_error = e.what();
        have_error = true;
        return FAISS_EXCEPT;
    } catch (const std::exception &e) {
        last_error = e.what();
        have_error = true;
        return STD_EXCEPT;
    } catch (...) {
        last_error = "unknown C++ exception";
        have_error = true;
        return UNKNOWN_EXCEPT;
    }
}

faiss::Index *cxx(FaissIndex *p)
{
    return reinterpret_cast<faiss::Index *>(p);
}

const faiss::Index *cxx(const FaissIndex *p)
{
    return reinterpret_cast<const faiss::Index *>(p);
}

FaissIndex *c_handle(faiss::Index *p)
{
    return reinterpret_cast<FaissIndex *>(p);
}

} // namespace

extern "C" {

/* The message of the last failed call on this thread, NULL if none. The
 * pointer stays valid until the next failing call on the same thread. */
const char *faiss_get_last_error()
{
    return have_error ? last_error.c_str() : nullptr;
}

int faiss_index_factory(FaissIndex **p_index, int d, const char *description,
                        FaissMetricType metric)
{
    return guarded([&] {
        *p_index =
            c_handle(faiss::index_factory(d, description, static_cast<faiss::MetricType>(metric)));
    });
}

int faiss_Index_train(FaissIndex *index, idx_t n, const float *x)
{
    return guarded([&] { cxx(index)->train(n, x); });
}

int faiss_Index_add(FaissIndex *index, idx_t n, const float *x)
{
    return guarded([&] { cxx(index)->add(n, x); });
}

int faiss_Index_search(const FaissIndex *index, idx_t n, const float *x, idx_t k, float *distances,
                       idx_t *labels)
{
    return guarded([&] { cxx(index)->search(n, x, k, distances, labels); });
}

int faiss_Index_d(const FaissIndex *index)
{
    return cxx(index)->d;
}

int faiss_Index_is_trained(const FaissIndex *index)
{
    return cxx(index)->is_trained ? 1 : 0;
}

idx_t faiss_Index_ntotal(const FaissIndex *index)
{
    return cxx(index)->ntotal;
}

FaissMetricType faiss_Index_metric_type(const FaissIndex *index)
{
    return static_cast<FaissMetricType>(cxx(index)->metric_type);
}

void faiss_Index_free(FaissIndex *index)
{
    delete cxx(index);
}

FaissIndexFlat *faiss_IndexFlat_cast(FaissIndex *index)
{
    return dynamic_cast<faiss::IndexFlat *>(cxx(index)) ? index : nullptr;
}

void faiss_IndexFlat_xb(FaissIndexFlat *index, float **p_xb, size_t *p_size)
{
    /* IndexFlat keeps its vectors as raw code bytes; report them as floats */
    auto *f = static_cast<faiss::IndexFlat *>(cxx(index));
    *p_xb = f->get_xb();
    if (p_size)
        *p_size = f->codes.size() / sizeof(float);
}

FaissIndexIVF *faiss_IndexIVF_cast(FaissIndex *index)
{
    return dynamic_cast<faiss::IndexIVF *>(cxx(index)) ? index : nullptr;
}

FaissIndexIVFFlat *faiss_IndexIVFFlat_cast(FaissIndex *index)
{
    return dynamic_cast<faiss::IndexIVFFlat *>(cxx(index)) ? index : nullptr;
}

size_t faiss_IndexIVF_nlist(const FaissIndexIVF *index)
{
    return reinterpret_cast<const faiss::IndexIVF *>(index)->nlist;
}

int faiss_write_index_fname(const FaissIndex *idx, const char *fname)
{
    return guarded([&] { faiss::write_index(cxx(idx), fname); });
}

int faiss_read_index_fname(const char *fname, int io_flags, FaissIndex **p_out)
{
    return guarded([&] { *p_out = c_handle(faiss::read_index(fname, io_flags)); });
}

int faiss_ParameterSpace_new(FaissParameterSpace **space)
{
    return guarded(
        [&] { *space = reinterpret_cast<FaissParameterSpace *>(new faiss::ParameterSpace()); });
}

void faiss_ParameterSpace_free(FaissParameterSpace *space)
{
    delete reinterpret_cast<faiss::ParameterSpace *>(space);
}

int faiss_ParameterSpace_set_index_parameter(const FaissParameterSpace *space, FaissIndex *index,
                                             const char *name, double value)
{
    return guarded([&] {
        reinterpret_cast<const faiss::ParameterSpace *>(space)->set_index_parameter(cxx(index),
                                                                                    name, value);
    });
}

} // extern "C"
