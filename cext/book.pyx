# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""L2 order book for one coin, applied straight from orjson-parsed Hyperliquid frames.

``l2Book`` frames are full snapshots: a frame is parsed into scratch arrays and swapped
live only when every check passes, so a rejected frame leaves the book untouched.
Decimal text is converted in C from the str's UTF-8 buffer (no Python float per level).
"""

from cython.view cimport array as cvarray
from libc.limits cimport LLONG_MIN
from libc.math cimport NAN, exp, fabs, floor, isfinite

from hlfast.decimal cimport (
    DEC_NON_FINITE,
    DEC_OK,
    PyObject,
    c_dict_get,
    c_dict_next,
    c_is_dict,
    c_is_list,
    c_list_item,
    c_list_len,
    c_str_data,
    c_str_is_compact_ascii,
    c_str_len,
    c_is_str,
    dec_format_scaled,
    dec_obj_double,
    dec_obj_int64,
    dec_obj_scaled,
    dec_parse_scaled,
    dec_str_equal,
)

REJ_MISSING_KEY = BOOK_REJ_MISSING_KEY
REJ_BAD_NUMBER = BOOK_REJ_BAD_NUMBER
REJ_EMPTY_SIDE = BOOK_REJ_EMPTY_SIDE
REJ_CROSSED = BOOK_REJ_CROSSED
REJ_NON_FINITE = BOOK_REJ_NON_FINITE
REJ_TOO_MANY_LEVELS = BOOK_REJ_TOO_MANY_LEVELS
REJ_WRONG_COIN = BOOK_REJ_WRONG_COIN
REJ_STALE = BOOK_REJ_STALE
REJ_NON_MONOTONIC = BOOK_REJ_NON_MONOTONIC
REJ_BAD_SIZE = BOOK_REJ_BAD_SIZE
REJ_BAD_PRICE = BOOK_REJ_BAD_PRICE
REJ_BAD_SHAPE = BOOK_REJ_BAD_SHAPE

# Index = reject code.
REJECT_NAMES = (
    "ok", "missing_key", "bad_number", "empty_side", "crossed", "non_finite",
    "too_many_levels", "wrong_coin", "stale", "non_monotonic", "bad_size", "bad_price",
    "bad_shape",
)

MAX_CAPACITY = 4096

# Interned keys: dict lookups hit the identity fast path.
cdef str K_COIN = "coin"
cdef str K_TIME = "time"
cdef str K_LEVELS = "levels"
cdef str K_BBO = "bbo"

cdef long long INT_N_MAX = 2147483647LL


cdef inline int _number_code(int dec_rc) noexcept:
    if dec_rc == DEC_NON_FINITE:
        return BOOK_REJ_NON_FINITE
    return BOOK_REJ_BAD_NUMBER


cdef inline void _level_fields(PyObject* level, PyObject** o_px, PyObject** o_sz,
                               PyObject** o_n) noexcept:
    """Find px/sz/n by walking the (tiny) dict: no hashing, key text compared in C."""
    cdef Py_ssize_t pos = 0
    cdef PyObject* key
    cdef PyObject* value
    cdef const char* k
    while c_dict_next(level, &pos, &key, &value):
        if not c_is_str(key) or not c_str_is_compact_ascii(key):
            continue
        k = <const char*>c_str_data(key)
        if c_str_len(key) == 2:
            if k[0] == c'p' and k[1] == c'x':
                o_px[0] = value
            elif k[0] == c's' and k[1] == c'z':
                o_sz[0] = value
        elif c_str_len(key) == 1 and k[0] == c'n':
            o_n[0] = value


cdef int _parse_level(PyObject* level, int px_decimals,
                      long long* px, double* sz, int* n) noexcept:
    """One ``{px, sz, n}`` level; ``n`` is optional (some HTTP captures drop it)."""
    cdef PyObject* o_px = NULL
    cdef PyObject* o_sz = NULL
    cdef PyObject* o_n = NULL
    cdef int rc
    cdef long long count = 0
    if not c_is_dict(level):
        return BOOK_REJ_BAD_SHAPE
    _level_fields(level, &o_px, &o_sz, &o_n)
    if o_px == NULL or o_sz == NULL:
        return BOOK_REJ_MISSING_KEY
    rc = dec_obj_scaled(o_px, px_decimals, px)
    if rc != DEC_OK:
        return _number_code(rc)
    if px[0] <= 0:
        return BOOK_REJ_BAD_PRICE
    rc = dec_obj_double(o_sz, sz)
    if rc != DEC_OK:
        return _number_code(rc)
    if not isfinite(sz[0]):
        return BOOK_REJ_NON_FINITE
    if not sz[0] > 0.0:
        return BOOK_REJ_BAD_SIZE
    if o_n != NULL:
        if dec_obj_int64(o_n, &count) != DEC_OK or count < 0 or count > INT_N_MAX:
            return BOOK_REJ_BAD_NUMBER
    n[0] = <int>count
    return BOOK_OK


cdef class Book:
    """Top-of-book state for ``coin``.  Prices are int64 ticks of 10**-(6 - sz_decimals)."""

    def __cinit__(self, str coin, int sz_decimals, int capacity=64):
        if not coin:
            raise ValueError("coin must be a non-empty string")
        if sz_decimals < 0 or sz_decimals > 6:
            raise ValueError(f"sz_decimals must be in [0, 6], got {sz_decimals}")
        if capacity < 1 or capacity > MAX_CAPACITY:
            raise ValueError(f"capacity must be in [1, {MAX_CAPACITY}], got {capacity}")
        self.coin = coin
        self.sz_decimals = sz_decimals
        self.px_decimals = 6 - sz_decimals
        self.ticks_per_unit = 10.0 ** self.px_decimals
        self.unit = 1.0 / self.ticks_per_unit
        self.capacity = capacity
        # Rows 0/1: bid buffers (live + scratch); rows 2/3: ask buffers.
        self._px_store = cvarray(shape=(4, capacity), itemsize=sizeof(long long), format="q")
        self._sz_store = cvarray(shape=(4, capacity), itemsize=sizeof(double), format="d")
        self._n_store = cvarray(shape=(4, capacity), itemsize=sizeof(int), format="i")
        self._px_store[:, :] = 0
        self._sz_store[:, :] = 0.0
        self._n_store[:, :] = 0
        self._bid_row = 0
        self._ask_row = 2
        self._bind()
        self.n_bids = 0
        self.n_asks = 0
        self.time_ms = LLONG_MIN
        self.updates = 0
        self.rejects = 0
        cdef int i
        for i in range(BOOK_N_REJECT_REASONS):
            self._reject_counts[i] = 0

    cdef void _bind(self) noexcept:
        cdef int sb = 1 - self._bid_row
        cdef int sa = 5 - self._ask_row
        self.bid_px = &self._px_store[self._bid_row, 0]
        self.bid_sz = &self._sz_store[self._bid_row, 0]
        self.bid_n = &self._n_store[self._bid_row, 0]
        self.ask_px = &self._px_store[self._ask_row, 0]
        self.ask_sz = &self._sz_store[self._ask_row, 0]
        self.ask_n = &self._n_store[self._ask_row, 0]
        self._sbid_px = &self._px_store[sb, 0]
        self._sbid_sz = &self._sz_store[sb, 0]
        self._sbid_n = &self._n_store[sb, 0]
        self._sask_px = &self._px_store[sa, 0]
        self._sask_sz = &self._sz_store[sa, 0]
        self._sask_n = &self._n_store[sa, 0]

    cdef void _swap_bids(self) noexcept:
        self._bid_row = 1 - self._bid_row
        self._bind()

    cdef void _swap_asks(self) noexcept:
        self._ask_row = 5 - self._ask_row
        self._bind()

    cdef int _reject(self, int code) noexcept:
        self._reject_counts[code] += 1
        self.rejects += 1
        return code

    cdef int _check_header(self, PyObject* d, long long* t) noexcept:
        """coin, then time (int ms, not older than the last applied frame)."""
        cdef PyObject* o
        if not c_is_dict(d):
            return BOOK_REJ_BAD_SHAPE
        o = c_dict_get(d, <PyObject*>K_COIN)
        if o == NULL:
            return BOOK_REJ_MISSING_KEY
        if not dec_str_equal(o, <PyObject*>self.coin):
            return BOOK_REJ_WRONG_COIN
        o = c_dict_get(d, <PyObject*>K_TIME)
        if o == NULL:
            return BOOK_REJ_MISSING_KEY
        if dec_obj_int64(o, t) != DEC_OK:
            return BOOK_REJ_BAD_NUMBER
        if t[0] < self.time_ms:
            return BOOK_REJ_STALE
        return BOOK_OK

    cdef int _parse_side(self, PyObject* levels, bint is_bid, int* count) noexcept:
        """Parse one side into its scratch arrays; strictly monotonic, best first."""
        cdef Py_ssize_t n, i
        cdef int rc
        cdef long long* px = self._sbid_px if is_bid else self._sask_px
        cdef double* sz = self._sbid_sz if is_bid else self._sask_sz
        cdef int* cnt = self._sbid_n if is_bid else self._sask_n
        if not c_is_list(levels):
            return BOOK_REJ_BAD_SHAPE
        n = c_list_len(levels)
        if n > self.capacity:
            return BOOK_REJ_TOO_MANY_LEVELS
        if n == 0:
            return BOOK_REJ_EMPTY_SIDE
        for i in range(n):
            rc = _parse_level(c_list_item(levels, i), self.px_decimals, &px[i], &sz[i], &cnt[i])
            if rc != BOOK_OK:
                return rc
            if i > 0 and ((is_bid and px[i] >= px[i - 1]) or (not is_bid and px[i] <= px[i - 1])):
                return BOOK_REJ_NON_MONOTONIC
        count[0] = <int>n
        return BOOK_OK

    cpdef int apply_l2(self, object data):
        """Apply an ``l2Book`` data object; 0 on success, else a REJ_* code (book unchanged)."""
        cdef PyObject* d = <PyObject*>data
        cdef PyObject* levels
        cdef long long t = 0
        cdef int nb = 0
        cdef int na = 0
        cdef int rc = self._check_header(d, &t)
        if rc != BOOK_OK:
            return self._reject(rc)
        levels = c_dict_get(d, <PyObject*>K_LEVELS)
        if levels == NULL:
            return self._reject(BOOK_REJ_MISSING_KEY)
        if not c_is_list(levels) or c_list_len(levels) != 2:
            return self._reject(BOOK_REJ_BAD_SHAPE)
        rc = self._parse_side(c_list_item(levels, 0), True, &nb)
        if rc != BOOK_OK:
            return self._reject(rc)
        rc = self._parse_side(c_list_item(levels, 1), False, &na)
        if rc != BOOK_OK:
            return self._reject(rc)
        if self._sbid_px[0] >= self._sask_px[0]:
            return self._reject(BOOK_REJ_CROSSED)
        return self._commit_l2(nb, na, t)

    cdef int _commit_l2(self, int nb, int na, long long t) noexcept:
        """Swap fully checked scratch sides (nb bids, na asks) live as the snapshot at t."""
        self._bid_row = 1 - self._bid_row
        self._ask_row = 5 - self._ask_row
        self._bind()
        self.n_bids = nb
        self.n_asks = na
        self.time_ms = t
        self.updates += 1
        return BOOK_OK

    cpdef int apply_bbo(self, object data):
        """Apply a ``bbo`` data object: replace/insert the touch on each non-null side.

        Levels the new touch supersedes are dropped (bids above a new best bid, asks
        below a new best ask, and levels of the other side it would cross), so the book
        never ends crossed.  A null side leaves that side's levels as they were apart
        from that pruning; both null is REJ_EMPTY_SIDE.
        """
        cdef PyObject* d = <PyObject*>data
        cdef PyObject* bbo
        cdef PyObject* lvl_b
        cdef PyObject* lvl_a
        cdef long long t = 0
        cdef long long bpx = 0
        cdef long long apx = 0
        cdef double bsz = 0.0
        cdef double asz = 0.0
        cdef int bn = 0
        cdef int an = 0
        cdef bint has_b, has_a
        cdef int rc = self._check_header(d, &t)
        if rc != BOOK_OK:
            return self._reject(rc)
        bbo = c_dict_get(d, <PyObject*>K_BBO)
        if bbo == NULL:
            return self._reject(BOOK_REJ_MISSING_KEY)
        if not c_is_list(bbo) or c_list_len(bbo) != 2:
            return self._reject(BOOK_REJ_BAD_SHAPE)
        lvl_b = c_list_item(bbo, 0)
        lvl_a = c_list_item(bbo, 1)
        has_b = lvl_b != <PyObject*>None
        has_a = lvl_a != <PyObject*>None
        if not has_b and not has_a:
            return self._reject(BOOK_REJ_EMPTY_SIDE)
        if has_b:
            rc = _parse_level(lvl_b, self.px_decimals, &bpx, &bsz, &bn)
            if rc != BOOK_OK:
                return self._reject(rc)
        if has_a:
            rc = _parse_level(lvl_a, self.px_decimals, &apx, &asz, &an)
            if rc != BOOK_OK:
                return self._reject(rc)
        if has_b and has_a and bpx >= apx:
            return self._reject(BOOK_REJ_CROSSED)
        return self._commit_bbo(has_b, bpx, bsz, bn, has_a, apx, asz, an, t)

    cdef int _commit_bbo(self, bint has_b, long long bpx, double bsz, int bn,
                         bint has_a, long long apx, double asz, int an, long long t) noexcept:
        """Merge a checked, uncrossed touch (a side is absent when has_* is False) at t."""
        cdef int nb = 0
        cdef int na = 0
        cdef int i
        # Bids: new touch first, then surviving live levels strictly below it (or,
        # without a new bid, live levels strictly below a new best ask).
        if has_b:
            self._sbid_px[0] = bpx
            self._sbid_sz[0] = bsz
            self._sbid_n[0] = bn
            nb = 1
        for i in range(self.n_bids):
            if nb >= self.capacity:
                break
            if (has_b and self.bid_px[i] >= bpx) or (has_a and self.bid_px[i] >= apx):
                continue
            self._sbid_px[nb] = self.bid_px[i]
            self._sbid_sz[nb] = self.bid_sz[i]
            self._sbid_n[nb] = self.bid_n[i]
            nb += 1
        if has_a:
            self._sask_px[0] = apx
            self._sask_sz[0] = asz
            self._sask_n[0] = an
            na = 1
        for i in range(self.n_asks):
            if na >= self.capacity:
                break
            if (has_a and self.ask_px[i] <= apx) or (has_b and self.ask_px[i] <= bpx):
                continue
            self._sask_px[na] = self.ask_px[i]
            self._sask_sz[na] = self.ask_sz[i]
            self._sask_n[na] = self.ask_n[i]
            na += 1
        self._bid_row = 1 - self._bid_row
        self._ask_row = 5 - self._ask_row
        self._bind()
        self.n_bids = nb
        self.n_asks = na
        self.time_ms = t
        self.updates += 1
        return BOOK_OK

    def clear(self, bint reset_time=False) -> None:
        """Drop all levels (e.g. on reconnect); reset_time also accepts older frames again."""
        self.n_bids = 0
        self.n_asks = 0
        if reset_time:
            self.time_ms = LLONG_MIN

    def reject_counts(self) -> dict:
        """Rejected frames by reason name."""
        return {REJECT_NAMES[i]: self._reject_counts[i] for i in range(1, BOOK_N_REJECT_REASONS)}

    # --- level arrays (views into live storage; valid until the next apply) ---
    def bids_px(self):
        return self._px_store[self._bid_row, :self.n_bids]

    def bids_sz(self):
        return self._sz_store[self._bid_row, :self.n_bids]

    def bids_n(self):
        return self._n_store[self._bid_row, :self.n_bids]

    def asks_px(self):
        return self._px_store[self._ask_row, :self.n_asks]

    def asks_sz(self):
        return self._sz_store[self._ask_row, :self.n_asks]

    def asks_n(self):
        return self._n_store[self._ask_row, :self.n_asks]

    def levels(self) -> tuple:
        """(bids, asks) as lists of (px_ticks, sz, n), best first (copies; for tests/tools)."""
        bids = [(self.bid_px[i], self.bid_sz[i], self.bid_n[i]) for i in range(self.n_bids)]
        asks = [(self.ask_px[i], self.ask_sz[i], self.ask_n[i]) for i in range(self.n_asks)]
        return bids, asks

    @property
    def time(self) -> float:
        """Exchange time of the last applied frame in seconds (NaN before the first)."""
        if self.updates == 0 or self.time_ms == LLONG_MIN:
            return NAN
        return self.time_ms / 1000.0

    # --- queries (NaN when the book cannot answer) ---
    cpdef long long best_bid_ticks(self):
        """Best bid in ticks, 0 when there is no bid."""
        return self.bid_px[0] if self.n_bids > 0 else 0

    cpdef long long best_ask_ticks(self):
        """Best ask in ticks, 0 when there is no ask."""
        return self.ask_px[0] if self.n_asks > 0 else 0

    cpdef double best_bid(self):
        return self.c_best_bid()

    cpdef double best_ask(self):
        return self.c_best_ask()

    cpdef double mid(self):
        return self.c_mid()

    cpdef double spread(self):
        """(ask - bid) / mid as a fraction of price."""
        if self.n_bids == 0 or self.n_asks == 0:
            return NAN
        return 2.0 * (self.ask_px[0] - self.bid_px[0]) / <double>(self.ask_px[0] + self.bid_px[0])

    cpdef double spread_bps(self):
        return self.spread() * 1e4

    cpdef double microprice(self):
        return self.c_microprice()

    cpdef double imbalance(self, int k=5):
        """B_k / (B_k + A_k) over the top k levels of each side."""
        cdef double b = 0.0
        cdef double a = 0.0
        cdef int i
        if self.n_bids == 0 or self.n_asks == 0 or k <= 0:
            return NAN
        for i in range(min(k, self.n_bids)):
            b += self.bid_sz[i]
        for i in range(min(k, self.n_asks)):
            a += self.ask_sz[i]
        return b / (b + a)

    cpdef double weighted_imbalance(self, double d0_bps=10.0):
        """Imbalance with each level weighted by exp(-d/d0), d = distance from mid in bp."""
        cdef double mid = self.c_mid()
        cdef double b = 0.0
        cdef double a = 0.0
        cdef double d
        cdef int i
        if not isfinite(mid) or not d0_bps > 0.0:
            return NAN
        for i in range(self.n_bids):
            d = fabs(self.bid_px[i] / self.ticks_per_unit - mid) / mid * 1e4
            b += self.bid_sz[i] * exp(-d / d0_bps)
        for i in range(self.n_asks):
            d = fabs(self.ask_px[i] / self.ticks_per_unit - mid) / mid * 1e4
            a += self.ask_sz[i] * exp(-d / d0_bps)
        if not b + a > 0.0:
            return NAN
        return b / (b + a)

    cpdef double size_at(self, int side, long long px_ticks):
        """Displayed size at a price on one side (+1 bids, -1 asks); 0 when no level."""
        cdef int i
        if side == 1:
            for i in range(self.n_bids):
                if self.bid_px[i] == px_ticks:
                    return self.bid_sz[i]
                if self.bid_px[i] < px_ticks:
                    break
            return 0.0
        if side == -1:
            for i in range(self.n_asks):
                if self.ask_px[i] == px_ticks:
                    return self.ask_sz[i]
                if self.ask_px[i] > px_ticks:
                    break
            return 0.0
        return NAN

    cpdef double depth_within_bps(self, int side, double bps):
        """Cumulative size of the levels on one side within ``bps`` of mid."""
        cdef double mid = self.c_mid()
        cdef double total = 0.0
        cdef double d
        cdef int i
        if not isfinite(mid) or (side != 1 and side != -1):
            return NAN
        if side == 1:
            for i in range(self.n_bids):
                d = (mid - self.bid_px[i] / self.ticks_per_unit) / mid * 1e4
                if d > bps:
                    break
                total += self.bid_sz[i]
        else:
            for i in range(self.n_asks):
                d = (self.ask_px[i] / self.ticks_per_unit - mid) / mid * 1e4
                if d > bps:
                    break
                total += self.ask_sz[i]
        return total

    cpdef double ticks_to_px(self, long long ticks):
        return ticks / self.ticks_per_unit

    cpdef long long px_to_ticks(self, double px):
        """Nearest tick (half rounds up); 0 for non-finite or out-of-range input."""
        cdef double x = px * self.ticks_per_unit
        if not isfinite(x) or fabs(x) > 9.0e18:
            return 0
        return <long long>floor(x + 0.5)

    def __repr__(self) -> str:
        return (f"Book({self.coin!r}, bids={self.n_bids}, asks={self.n_asks}, "
                f"bid={self.best_bid()}, ask={self.best_ask()}, updates={self.updates})")


# --- decimal helpers exposed for tests and tools ---
def parse_ticks(str text, int decimals):
    """Decimal text -> int units of 10**-decimals, or None when malformed/off-grid."""
    cdef long long v = 0
    cdef bytes raw = text.encode("utf-8")
    if dec_parse_scaled(raw, len(raw), decimals, &v) != DEC_OK:
        return None
    return v


def format_ticks(long long ticks, int decimals) -> str:
    """int units of 10**-decimals -> shortest plain decimal text ("106217", "0.001")."""
    cdef char[32] buf
    cdef Py_ssize_t n
    if decimals < 0 or decimals > 18:
        raise ValueError("decimals must be in [0, 18]")
    n = dec_format_scaled(ticks, decimals, buf)
    return buf[:n].decode("ascii")
