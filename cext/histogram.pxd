# Fixed latency histograms. Units: integer nanoseconds (perf_counter_ns differences).
cimport cython
from libc.stdint cimport int64_t, uint64_t

# Log-linear buckets: values < 8 ns exact, then 8 sub-buckets per power of two (<= 12.5 % wide).
cdef enum:
    HIST_SUB_BITS = 3
    HIST_SUB = 8
    HIST_BUCKETS = 512


@cython.final
cdef class LatencyHistogram:
    cdef uint64_t* counts            # HIST_BUCKETS counters
    cdef readonly uint64_t count     # samples recorded
    cdef readonly uint64_t rejected  # negative samples refused
    cdef readonly double sum_ns      # sum of samples, ns
    cdef readonly int64_t min_ns     # smallest sample (0 when empty)
    cdef readonly int64_t max_ns     # largest sample (0 when empty)

    cdef void record_c(self, int64_t ns) noexcept nogil
    cdef int64_t quantile_c(self, double q) noexcept nogil
