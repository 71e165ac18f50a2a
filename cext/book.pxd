# cython: language_level=3
"""One coin's L2 book: levels in preallocated C arrays, prices as int64 ticks.

Other kernels read the live arrays (best level first) and the inline helpers below
at C speed after ``from hlfast.book cimport Book``.
"""

from cpython.ref cimport PyObject
from libc.math cimport NAN

# Reject codes returned by apply_l2 / apply_bbo (0 = applied).
cdef enum:
    BOOK_OK = 0
    BOOK_REJ_MISSING_KEY = 1
    BOOK_REJ_BAD_NUMBER = 2
    BOOK_REJ_EMPTY_SIDE = 3
    BOOK_REJ_CROSSED = 4
    BOOK_REJ_NON_FINITE = 5
    BOOK_REJ_TOO_MANY_LEVELS = 6
    BOOK_REJ_WRONG_COIN = 7
    BOOK_REJ_STALE = 8
    BOOK_REJ_NON_MONOTONIC = 9
    BOOK_REJ_BAD_SIZE = 10
    BOOK_REJ_BAD_PRICE = 11
    BOOK_REJ_BAD_SHAPE = 12
    BOOK_N_REJECT_REASONS = 13


cdef class Book:
    # --- identity / units ---
    cdef readonly str coin
    cdef readonly int sz_decimals
    cdef readonly int px_decimals       # 6 - sz_decimals; one tick = 10**-px_decimals
    cdef readonly double unit           # price of one tick
    cdef readonly double ticks_per_unit  # 10**px_decimals (exact), prices = ticks / this
    cdef readonly int capacity          # max levels per side
    # --- state ---
    cdef readonly int n_bids
    cdef readonly int n_asks
    cdef readonly long long time_ms     # exchange time of the last applied snapshot/bbo
    cdef readonly long long updates     # applied l2Book snapshots + bbo frames
    cdef readonly long long rejects     # total rejected frames (all reasons)
    # Live level arrays, best first (valid for [0, n_bids) / [0, n_asks)).
    cdef long long* bid_px
    cdef double* bid_sz
    cdef int* bid_n
    cdef long long* ask_px
    cdef double* ask_sz
    cdef int* ask_n
    # Scratch arrays a frame is parsed into before being swapped live.
    cdef long long* _sbid_px
    cdef double* _sbid_sz
    cdef int* _sbid_n
    cdef long long* _sask_px
    cdef double* _sask_sz
    cdef int* _sask_n
    # Storage owners (memoryview slices handed to Python keep them alive).
    cdef long long[:, ::1] _px_store
    cdef double[:, ::1] _sz_store
    cdef int[:, ::1] _n_store
    cdef int _bid_row
    cdef int _ask_row
    cdef long long[BOOK_N_REJECT_REASONS] _reject_counts

    cdef void _bind(self) noexcept
    cdef int _reject(self, int code) noexcept
    cdef int _check_header(self, PyObject* d, long long* t) noexcept
    cdef void _swap_bids(self) noexcept
    cdef void _swap_asks(self) noexcept
    cdef int _parse_side(self, PyObject* levels, bint is_bid, int* count) noexcept
    cpdef int apply_l2(self, object data)
    cpdef int apply_bbo(self, object data)

    cpdef long long best_bid_ticks(self)
    cpdef long long best_ask_ticks(self)
    cpdef double best_bid(self)
    cpdef double best_ask(self)
    cpdef double mid(self)
    cpdef double spread(self)
    cpdef double spread_bps(self)
    cpdef double microprice(self)
    cpdef double imbalance(self, int k=*)
    cpdef double weighted_imbalance(self, double d0_bps=*)
    cpdef double size_at(self, int side, long long px_ticks)
    cpdef double depth_within_bps(self, int side, double bps)
    cpdef double ticks_to_px(self, long long ticks)
    cpdef long long px_to_ticks(self, double px)

    # --- C fast paths (no dispatch, never raise); prices in price units, NaN when empty ---
    cdef inline bint c_ready(self) noexcept:
        return self.n_bids > 0 and self.n_asks > 0

    cdef inline double c_best_bid(self) noexcept:
        if self.n_bids == 0:
            return NAN
        return self.bid_px[0] / self.ticks_per_unit

    cdef inline double c_best_ask(self) noexcept:
        if self.n_asks == 0:
            return NAN
        return self.ask_px[0] / self.ticks_per_unit

    cdef inline double c_mid(self) noexcept:
        if self.n_bids == 0 or self.n_asks == 0:
            return NAN
        return (self.bid_px[0] + self.ask_px[0]) / (2.0 * self.ticks_per_unit)

    cdef inline double c_microprice(self) noexcept:
        # (P_ask*B_1 + P_bid*A_1) / (B_1 + A_1): leans toward the side with less size.
        if self.n_bids == 0 or self.n_asks == 0:
            return NAN
        return ((self.ask_px[0] * self.bid_sz[0] + self.bid_px[0] * self.ask_sz[0])
                / ((self.bid_sz[0] + self.ask_sz[0]) * self.ticks_per_unit))

    # --- commit steps shared by apply_l2 / apply_bbo and the raw-frame scanner in hlfast.frames ---
    cdef int _commit_l2(self, int nb, int na, long long t) noexcept
    cdef int _commit_bbo(self, bint has_b, long long bpx, double bsz, int bn,
                         bint has_a, long long apx, double asz, int an, long long t) noexcept
