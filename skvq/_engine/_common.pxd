# cython: language_level=3
"""What the compiled modules of the engine share: OpenMP, prefetching, and
the squared distance every one of them computes."""

cdef extern from *:
    """
    #ifdef _OPENMP
    #include <omp.h>
    #else
    static int omp_get_max_threads(void) { return 1; }
    #endif
    #if defined(__GNUC__) || defined(__clang__)
    #define skvq_prefetch(address) __builtin_prefetch(address)
    #else
    #define skvq_prefetch(address) ((void) (address))
    #endif
    """
    int omp_get_max_threads() nogil
    void skvq_prefetch(const void* address) nogil

# Units of work of the threads: so many chunks, in a fixed split, that the
# threads share the work evenly and the result does not depend on their
# number; every parallel loop hands them out as threads ask (a dynamic
# schedule): when the cores are shared and a thread waits for one, the
# others take its share instead of leaving it to the end.
cdef enum:
    CHUNKS = 32


cdef inline double sq_distance(
    const double* x, const double* y, Py_ssize_t d
) noexcept nogil:
    """Squared Euclidean distance, summed feature by feature from the first."""
    cdef Py_ssize_t f
    cdef double diff, total = 0.0
    if d == 3:  # colors, unrolled
        diff = x[0] - y[0]
        total = diff * diff
        diff = x[1] - y[1]
        total += diff * diff
        diff = x[2] - y[2]
        return total + diff * diff
    for f in range(d):
        diff = x[f] - y[f]
        total += diff * diff
    return total
