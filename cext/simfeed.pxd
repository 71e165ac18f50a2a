# cython: language_level=3
"""Strict scanning of recorded market frames for the backtest's simulated venue (see simfeed.pyx)."""

from cpython.ref cimport PyObject

cdef enum:
    SF_OTHER = 0        # not in the strict form: the caller decodes the frame the general way
    SF_TRADES = 1       # a trades frame: every row our coin, side B/A, size > 0
    SF_BOOK = 2         # an l2Book frame of our coin: <= SF_DEPTH levels a side, sorted, not crossed
    SF_TRADES_NOTED = 3  # scan_apply(): trades that reach none of our orders, their volume noted
    SF_MAX_TRADES = 64  # rows per trades frame the fast path takes
    SF_DEPTH = 20       # levels per side (the venue publishes 20)
    SF_MAX_OURS = 256   # our price levels per side the fast publication handles
    SF_PUBLISH_SAME = 0       # publish(): the recorded frame is what the venue publishes
    SF_PUBLISH_NEW = 1        # publish(): a new frame with our orders merged in
    SF_PUBLISH_FALLBACK = -1  # publish(): shape not handled here (caller merges the general way)


cdef class FrameScanner:
    cdef readonly str coin
    cdef readonly int px_decimals           # a tick is 10**-px_decimals (6 - szDecimals)
    cdef readonly int sz_decimals           # a lot is 10**-sz_decimals
    cdef bytes _coin_bytes                  # the coin's name, ASCII
    cdef bytes _coin_json                   # the coin as a JSON string, quotes included

    # ---- the last SF_TRADES scan, in frame order ----
    cdef readonly int n_trades
    cdef readonly long long time_ms         # the last row's "time" (trades) or the book's "time"
    cdef readonly long long last_px         # ticks of the last trade row
    cdef long long[SF_MAX_TRADES] _t_px     # ticks
    cdef long long[SF_MAX_TRADES] _t_lots   # lots (> 0)
    cdef signed char[SF_MAX_TRADES] _t_side  # +1 aggressor bought ("B"), -1 sold ("A")

    # ---- the last SF_BOOK scan: levels best first, index 0 = bids, 1 = asks ----
    cdef int[2] _n
    cdef long long[2][SF_DEPTH] _px         # ticks
    cdef long long[2][SF_DEPTH] _lots       # lots
    cdef long long[2][SF_DEPTH] _cnt        # "n": orders at the level
    cdef Py_ssize_t[2][SF_DEPTH] _lv_start  # byte span of each level object in the frame
    cdef Py_ssize_t[2][SF_DEPTH] _lv_end
    cdef Py_ssize_t[2] _side_start          # byte span of each side's array
    cdef Py_ssize_t[2] _side_end
    cdef Py_ssize_t _time_start             # byte span of the "time" digits
    cdef Py_ssize_t _time_end
    cdef bytes _raw                         # the frame the spans point into

    # ---- the installed snapshot (copied from the scan by install()) ----
    cdef int[2] _ins_n
    cdef long long[2][SF_DEPTH] _ins_px
    cdef long long[2][SF_DEPTH] _ins_lots
    cdef long long[2][SF_DEPTH] _ins_cnt

    # ---- publication ----
    cdef readonly int publish_status        # SF_PUBLISH_* of the last publish()
    cdef char* _buf
    cdef Py_ssize_t _cap
    cdef bint _changed                      # publish(): a level differs from the recorded one
    cdef long long[SF_MAX_OURS] _our_px     # scratch: our price levels of one side, sorted best first
    cdef PyObject* _our_fifo[SF_MAX_OURS]   # borrowed from the caller's dict during publish()

    cdef int _scan_trades(self, const char* p, const char* end) noexcept
    cdef int _scan_book(self, const char* base, const char* p, const char* end) noexcept
    cdef long long _shown_lots(self, int side, long long px) noexcept
    cdef int _cap_queues(self, int side, dict levels) except -1
    cdef bint _crosses(self, int side, dict levels) noexcept
    cdef int _reserve(self, Py_ssize_t size) except -1
    cdef Py_ssize_t _merge_side(self, int side, dict levels, Py_ssize_t at) except -2

    cpdef int scan(self, object raw)
    cpdef int scan_apply(self, object raw, tuple levels, tuple traded) except -2
    cpdef bint trades_reach(self, dict bid_levels, dict ask_levels)
    cpdef int add_traded(self, dict traded_bid, dict traded_ask) except -1
    cpdef int install(self, dict bid_levels, dict ask_levels, bint cap_queues) except -1
    cpdef object publish(self, dict bid_levels, dict ask_levels)
