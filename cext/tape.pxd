# cython: language_level=3
"""Ring buffer of public trades in preallocated C arrays.

Every pushed trade gets a sequence number (0, 1, 2, ...); ``total`` is the sequence of
the next trade.  The last ``capacity`` trades stay readable: seq in
[total - count, total).  Other kernels iterate new trades with the inline accessors:

    for seq in range(max(last_seen, tape.first_seq()), tape.total): tape.px_at(seq) ...
"""

from cpython.ref cimport PyObject

cdef enum:
    TAPE_OK = 0
    TAPE_REJ_MISSING_KEY = 1
    TAPE_REJ_BAD_NUMBER = 2
    TAPE_REJ_NON_FINITE = 3
    TAPE_REJ_BAD_SIZE = 4
    TAPE_REJ_BAD_PRICE = 5
    TAPE_REJ_BAD_SIDE = 6
    TAPE_REJ_WRONG_COIN = 7
    TAPE_REJ_STALE = 8          # older than the last pushed trade
    TAPE_REJ_BAD_SHAPE = 9
    TAPE_N_REJECT_REASONS = 10
    TAPE_MAX_LIQUIDATORS = 32
    TAPE_ADDR_MAX = 64


cdef class Tape:
    cdef readonly int sz_decimals
    cdef readonly int px_decimals        # 6 - sz_decimals; one tick = 10**-px_decimals
    cdef readonly double ticks_per_unit  # 10**px_decimals
    cdef readonly int capacity
    cdef readonly long long total        # trades ever pushed (= seq of the next one)
    cdef readonly long long rejects      # rows / pushes rejected (all reasons)
    cdef double* _t          # exchange time, seconds
    cdef long long* _px      # ticks
    cdef double* _sz         # coin units
    cdef signed char* _side  # +1 aggressor buy ("B"), -1 aggressor sell ("A")
    cdef long long* _tid
    cdef unsigned char* _liq
    cdef object _store       # owns the arrays above
    cdef long long[TAPE_N_REJECT_REASONS] _reject_counts
    cdef int _n_liq
    cdef int[TAPE_MAX_LIQUIDATORS] _liq_len
    cdef char[TAPE_MAX_LIQUIDATORS][TAPE_ADDR_MAX] _liq_addr  # lowercased

    cdef int _reject(self, int code) noexcept
    cdef bint _is_liquidator(self, PyObject* addr) noexcept
    cdef bint _any_liquidator(self, PyObject* users) noexcept
    cdef int _push(self, double t, long long px_ticks, double sz, int side, long long tid,
                   bint is_liq) noexcept
    cdef int _apply_row(self, PyObject* row, PyObject* coin) noexcept
    cpdef int push(self, double t, long long px_ticks, double sz, int side, long long tid,
                   bint is_liq=*)
    cpdef int apply_trades(self, object data, str coin)
    cpdef double volume_in_window(self, double now, double window, int side=*)
    cpdef long long count_in_window(self, double now, double window, int side=*)
    cpdef double flow_imbalance(self, double now, double window)

    # --- C accessors; seq must be in [first_seq(), total) (check with has_seq) ---
    cdef inline long long first_seq(self) noexcept:
        return self.total - self.capacity if self.total > self.capacity else 0

    cdef inline bint has_seq(self, long long seq) noexcept:
        return seq >= 0 and seq < self.total and seq >= self.total - self.capacity

    cdef inline double time_at(self, long long seq) noexcept:
        return self._t[seq % self.capacity]

    cdef inline long long px_at(self, long long seq) noexcept:
        return self._px[seq % self.capacity]

    cdef inline double sz_at(self, long long seq) noexcept:
        return self._sz[seq % self.capacity]

    cdef inline int side_at(self, long long seq) noexcept:
        return self._side[seq % self.capacity]

    cdef inline long long tid_at(self, long long seq) noexcept:
        return self._tid[seq % self.capacity]

    cdef inline bint liq_at(self, long long seq) noexcept:
        return self._liq[seq % self.capacity] != 0

    # Shared with the raw-frame scanner in hlfast.frames (ASCII text, no Python object).
    cdef bint _is_liquidator_text(self, const char* text, Py_ssize_t n) noexcept
