# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Fixed latency histograms: no allocation per sample.

Log-linear buckets (exact below 8 ns, then 8 per power of two), so recording a sample is a
count-leading-zeros and an increment; quantiles return the bucket's upper bound clamped to the
observed max (an over-estimate of at most one bucket width, 12.5 %).
"""
from libc.stdint cimport int64_t, uint64_t
from libc.stdlib cimport calloc, free
from libc.string cimport memset

cdef extern from *:
    """
    static inline int hlfast_msb64(unsigned long long v) { return 63 - __builtin_clzll(v); }
    """
    int hlfast_msb64(unsigned long long v) nogil


cdef inline int bucket_of(int64_t ns) noexcept nogil:
    cdef int msb, shift
    if ns < HIST_SUB:
        return <int>ns
    msb = hlfast_msb64(<unsigned long long>ns)
    shift = msb - HIST_SUB_BITS
    return HIST_SUB + shift * HIST_SUB + <int>((ns >> shift) - HIST_SUB)


cdef inline int64_t bucket_upper(int idx) noexcept nogil:
    """Exclusive upper bound of bucket idx, ns."""
    cdef int shift, mant
    if idx < HIST_SUB:
        return idx + 1
    shift = (idx - HIST_SUB) // HIST_SUB
    mant = HIST_SUB + (idx - HIST_SUB) % HIST_SUB
    return (<int64_t>(mant + 1)) << shift


cdef class LatencyHistogram:
    def __cinit__(self):
        self.counts = <uint64_t*>calloc(HIST_BUCKETS, sizeof(uint64_t))
        if self.counts == NULL:
            raise MemoryError()

    def __dealloc__(self):
        free(self.counts)

    cdef void record_c(self, int64_t ns) noexcept nogil:
        cdef int idx
        if ns < 0:
            self.rejected += 1
            return
        idx = bucket_of(ns)
        if idx >= HIST_BUCKETS:
            idx = HIST_BUCKETS - 1
        self.counts[idx] += 1
        if self.count == 0 or ns < self.min_ns:
            self.min_ns = ns
        if ns > self.max_ns:
            self.max_ns = ns
        self.count += 1
        self.sum_ns += <double>ns

    cdef int64_t quantile_c(self, double q) noexcept nogil:
        cdef uint64_t rank, seen = 0
        cdef int i
        cdef int64_t upper
        if self.count == 0:
            return 0
        if q <= 0.0:
            return self.min_ns
        if q >= 1.0:
            return self.max_ns
        # nearest-rank: the smallest value with at least ceil(q*count) samples at or below it
        rank = <uint64_t>(q * <double>self.count)
        if <double>rank < q * <double>self.count:
            rank += 1
        if rank < 1:
            rank = 1
        for i in range(HIST_BUCKETS):
            seen += self.counts[i]
            if seen >= rank:
                upper = bucket_upper(i) - 1
                if upper > self.max_ns:
                    upper = self.max_ns
                if upper < self.min_ns:
                    upper = self.min_ns
                return upper
        return self.max_ns

    def record(self, long long ns) -> None:
        """Add one sample (ns). Negative samples are refused and counted in `rejected`."""
        self.record_c(ns)

    def quantile(self, double q) -> int:
        """Nearest-rank q-quantile, as the bucket's inclusive upper bound clamped to [min, max], ns."""
        return self.quantile_c(q)

    def reset(self) -> None:
        memset(self.counts, 0, HIST_BUCKETS * sizeof(uint64_t))
        self.count = 0
        self.rejected = 0
        self.sum_ns = 0.0
        self.min_ns = 0
        self.max_ns = 0

    def cumulative(self, bounds_ns) -> list:
        """Counts of samples whose bucket lies entirely at or below each bound (for Prometheus `le`)."""
        cdef list out = []
        cdef uint64_t seen = 0
        cdef int i = 0
        cdef long long b
        for b in bounds_ns:
            while i < HIST_BUCKETS and bucket_upper(i) - 1 <= b:
                seen += self.counts[i]
                i += 1
            out.append(seen)
        return out

    def bucket_counts(self) -> list:
        return [self.counts[i] for i in range(HIST_BUCKETS)]

    @staticmethod
    def bucket_index(long long ns) -> int:
        return bucket_of(ns) if ns >= 0 else -1

    @staticmethod
    def bucket_bound(int idx) -> int:
        """Exclusive upper bound of bucket idx, ns."""
        return bucket_upper(idx)
