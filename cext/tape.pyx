# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Trade tape: a fixed ring of the last ``capacity`` public trades.

Rows of a Hyperliquid ``trades`` frame are converted in C (prices to int64 ticks, sizes
to double, no Python float per row).  A bad row is counted by reason and skipped;
the rows around it are still pushed.  Times must not go backwards: an older trade
than the last one pushed is rejected as stale (replays after a reconnect).
"""

from cython.view cimport array as cvarray
from libc.math cimport NAN, isfinite

from hlfast.decimal cimport (
    DEC_NON_FINITE,
    DEC_OK,
    PyObject,
    c_dict_next,
    c_is_dict,
    c_is_list,
    c_is_str,
    c_list_item,
    c_list_len,
    c_str_data,
    c_str_is_compact_ascii,
    c_str_len,
    dec_lower,
    dec_obj_double,
    dec_obj_int64,
    dec_obj_scaled,
    dec_str_equal,
    dec_text_of,
)

REJ_MISSING_KEY = TAPE_REJ_MISSING_KEY
REJ_BAD_NUMBER = TAPE_REJ_BAD_NUMBER
REJ_NON_FINITE = TAPE_REJ_NON_FINITE
REJ_BAD_SIZE = TAPE_REJ_BAD_SIZE
REJ_BAD_PRICE = TAPE_REJ_BAD_PRICE
REJ_BAD_SIDE = TAPE_REJ_BAD_SIDE
REJ_WRONG_COIN = TAPE_REJ_WRONG_COIN
REJ_STALE = TAPE_REJ_STALE
REJ_BAD_SHAPE = TAPE_REJ_BAD_SHAPE

# Index = reject code.
REJECT_NAMES = (
    "ok", "missing_key", "bad_number", "non_finite", "bad_size", "bad_price", "bad_side",
    "wrong_coin", "stale", "bad_shape",
)

MAX_LIQUIDATORS = TAPE_MAX_LIQUIDATORS


cdef inline int _number_code(int dec_rc) noexcept:
    if dec_rc == DEC_NON_FINITE:
        return TAPE_REJ_NON_FINITE
    return TAPE_REJ_BAD_NUMBER


cdef struct _RowFields:
    PyObject* coin
    PyObject* side
    PyObject* px
    PyObject* sz
    PyObject* time
    PyObject* tid
    PyObject* users


cdef inline void _row_fields(PyObject* row, _RowFields* f) noexcept:
    """Pick the fields out of a trade row by walking its dict (no hashing)."""
    cdef Py_ssize_t pos = 0
    cdef PyObject* key
    cdef PyObject* value
    cdef const char* k
    cdef Py_ssize_t n
    while c_dict_next(row, &pos, &key, &value):
        if not c_is_str(key) or not c_str_is_compact_ascii(key):
            continue
        k = <const char*>c_str_data(key)
        n = c_str_len(key)
        if n == 2:
            if k[0] == c'p' and k[1] == c'x':
                f.px = value
            elif k[0] == c's' and k[1] == c'z':
                f.sz = value
        elif n == 3:
            if k[0] == c't' and k[1] == c'i' and k[2] == c'd':
                f.tid = value
        elif n == 4:
            if k[0] == c'c' and k[1] == c'o' and k[2] == c'i' and k[3] == c'n':
                f.coin = value
            elif k[0] == c's' and k[1] == c'i' and k[2] == c'd' and k[3] == c'e':
                f.side = value
            elif k[0] == c't' and k[1] == c'i' and k[2] == c'm' and k[3] == c'e':
                f.time = value
        elif n == 5:
            if (k[0] == c'u' and k[1] == c's' and k[2] == c'e' and k[3] == c'r'
                    and k[4] == c's'):
                f.users = value


cdef inline int _side_of(PyObject* obj) noexcept:
    """"B" -> +1 (aggressor buy), "A" -> -1 (aggressor sell), else 0."""
    cdef const char* k
    if not c_is_str(obj) or not c_str_is_compact_ascii(obj) or c_str_len(obj) != 1:
        return 0
    k = <const char*>c_str_data(obj)
    if k[0] == c'B':
        return 1
    if k[0] == c'A':
        return -1
    return 0


cdef class Tape:
    """Last ``capacity`` trades of one coin; prices in ticks of 10**-(6 - sz_decimals)."""

    def __cinit__(self, int sz_decimals, int capacity=4096, tuple liquidators=()):
        cdef int i, j
        cdef bytes addr
        if sz_decimals < 0 or sz_decimals > 6:
            raise ValueError(f"sz_decimals must be in [0, 6], got {sz_decimals}")
        if capacity < 1 or capacity > (1 << 24):
            raise ValueError(f"capacity must be in [1, {1 << 24}], got {capacity}")
        if len(liquidators) > TAPE_MAX_LIQUIDATORS:
            raise ValueError(f"at most {TAPE_MAX_LIQUIDATORS} liquidator addresses")
        self.sz_decimals = sz_decimals
        self.px_decimals = 6 - sz_decimals
        self.ticks_per_unit = 10.0 ** self.px_decimals
        self.capacity = capacity
        self.total = 0
        self.rejects = 0
        t = cvarray(shape=(capacity,), itemsize=sizeof(double), format="d")
        px = cvarray(shape=(capacity,), itemsize=sizeof(long long), format="q")
        sz = cvarray(shape=(capacity,), itemsize=sizeof(double), format="d")
        side = cvarray(shape=(capacity,), itemsize=sizeof(signed char), format="b")
        tid = cvarray(shape=(capacity,), itemsize=sizeof(long long), format="q")
        liq = cvarray(shape=(capacity,), itemsize=sizeof(unsigned char), format="B")
        self._store = (t, px, sz, side, tid, liq)
        self._t = <double*>t.data
        self._px = <long long*>px.data
        self._sz = <double*>sz.data
        self._side = <signed char*>side.data
        self._tid = <long long*>tid.data
        self._liq = <unsigned char*>liq.data
        for i in range(TAPE_N_REJECT_REASONS):
            self._reject_counts[i] = 0
        self._n_liq = 0
        for a in liquidators:
            if not isinstance(a, str) or not 0 < len(a) < TAPE_ADDR_MAX or not a.isascii():
                raise ValueError(f"liquidator address must be a short ASCII str, got {a!r}")
            addr = a.lower().encode("ascii")
            for j in range(len(addr)):
                self._liq_addr[self._n_liq][j] = addr[j]
            self._liq_len[self._n_liq] = len(addr)
            self._n_liq += 1

    cdef int _reject(self, int code) noexcept:
        self._reject_counts[code] += 1
        self.rejects += 1
        return code

    cdef bint _is_liquidator(self, PyObject* addr) noexcept:
        cdef const char* text
        cdef Py_ssize_t n
        if dec_text_of(addr, &text, &n) != DEC_OK:
            return False
        return self._is_liquidator_text(text, n)

    cdef bint _is_liquidator_text(self, const char* text, Py_ssize_t n) noexcept:
        """ASCII address text equals a configured liquidator (case-insensitive)."""
        cdef int i
        cdef Py_ssize_t j
        for i in range(self._n_liq):
            if self._liq_len[i] != n:
                continue
            for j in range(n):
                if dec_lower(text[j]) != self._liq_addr[i][j]:
                    break
            else:
                return True
        return False

    cdef bint _any_liquidator(self, PyObject* users) noexcept:
        cdef Py_ssize_t i
        if self._n_liq == 0 or users == NULL or not c_is_list(users):
            return False
        for i in range(c_list_len(users)):
            if self._is_liquidator(c_list_item(users, i)):
                return True
        return False

    cdef int _push(self, double t, long long px_ticks, double sz, int side, long long tid,
                   bint is_liq) noexcept:
        cdef long long slot
        if not isfinite(t):
            return self._reject(TAPE_REJ_NON_FINITE)
        if px_ticks <= 0:
            return self._reject(TAPE_REJ_BAD_PRICE)
        if not isfinite(sz):
            return self._reject(TAPE_REJ_NON_FINITE)
        if not sz > 0.0:
            return self._reject(TAPE_REJ_BAD_SIZE)
        if side != 1 and side != -1:
            return self._reject(TAPE_REJ_BAD_SIDE)
        if self.total > 0 and t < self._t[(self.total - 1) % self.capacity]:
            return self._reject(TAPE_REJ_STALE)
        slot = self.total % self.capacity
        self._t[slot] = t
        self._px[slot] = px_ticks
        self._sz[slot] = sz
        self._side[slot] = <signed char>side
        self._tid[slot] = tid
        self._liq[slot] = 1 if is_liq else 0
        self.total += 1
        return TAPE_OK

    cpdef int push(self, double t, long long px_ticks, double sz, int side, long long tid,
                   bint is_liq=False):
        """Append one trade (t seconds, px ticks, sz coin, side +1/-1); 0 or a REJ_* code."""
        return self._push(t, px_ticks, sz, side, tid, is_liq)

    cdef int _apply_row(self, PyObject* row, PyObject* coin) noexcept:
        cdef _RowFields f
        cdef int side
        cdef int rc
        cdef long long px = 0
        cdef double sz = 0.0
        cdef long long t_ms = 0
        cdef long long tid = 0
        if not c_is_dict(row):
            return self._reject(TAPE_REJ_BAD_SHAPE)
        f.coin = NULL
        f.side = NULL
        f.px = NULL
        f.sz = NULL
        f.time = NULL
        f.tid = NULL
        f.users = NULL
        _row_fields(row, &f)
        if (f.coin == NULL or f.side == NULL or f.px == NULL or f.sz == NULL
                or f.time == NULL or f.tid == NULL):
            return self._reject(TAPE_REJ_MISSING_KEY)
        if not dec_str_equal(f.coin, coin):
            return self._reject(TAPE_REJ_WRONG_COIN)
        side = _side_of(f.side)
        if side == 0:
            return self._reject(TAPE_REJ_BAD_SIDE)
        rc = dec_obj_scaled(f.px, self.px_decimals, &px)
        if rc != DEC_OK:
            return self._reject(_number_code(rc))
        if px <= 0:
            return self._reject(TAPE_REJ_BAD_PRICE)
        rc = dec_obj_double(f.sz, &sz)
        if rc != DEC_OK:
            return self._reject(_number_code(rc))
        if dec_obj_int64(f.time, &t_ms) != DEC_OK or dec_obj_int64(f.tid, &tid) != DEC_OK:
            return self._reject(TAPE_REJ_BAD_NUMBER)
        return self._push(t_ms / 1000.0, px, sz, side, tid, self._any_liquidator(f.users))

    cpdef int apply_trades(self, object data, str coin):
        """Push every valid row of a ``trades`` data list for ``coin``; returns how many."""
        cdef PyObject* rows = <PyObject*>data
        cdef Py_ssize_t i
        cdef int pushed = 0
        if coin is None or not c_is_list(rows):
            self._reject(TAPE_REJ_BAD_SHAPE)
            return 0
        for i in range(c_list_len(rows)):
            if self._apply_row(c_list_item(rows, i), <PyObject*>coin) == TAPE_OK:
                pushed += 1
        return pushed

    # --- queries over the retained trades with now - window < t <= now ---
    cpdef double volume_in_window(self, double now, double window, int side=0):
        """Traded size in the window; side +1 buys, -1 sells, 0 both."""
        cdef long long seq = self.total - 1
        cdef long long first = self.first_seq()
        cdef double lo = now - window
        cdef double total = 0.0
        cdef double t
        cdef long long slot
        while seq >= first:
            slot = seq % self.capacity
            t = self._t[slot]
            if t <= lo:
                break
            if t <= now and (side == 0 or self._side[slot] == side):
                total += self._sz[slot]
            seq -= 1
        return total

    cpdef long long count_in_window(self, double now, double window, int side=0):
        """Number of trades in the window; side +1 buys, -1 sells, 0 both."""
        cdef long long seq = self.total - 1
        cdef long long first = self.first_seq()
        cdef double lo = now - window
        cdef long long count = 0
        cdef double t
        cdef long long slot
        while seq >= first:
            slot = seq % self.capacity
            t = self._t[slot]
            if t <= lo:
                break
            if t <= now and (side == 0 or self._side[slot] == side):
                count += 1
            seq -= 1
        return count

    cpdef double flow_imbalance(self, double now, double window):
        """(buy volume - sell volume) / (buy + sell) in the window; 0 when no trades."""
        cdef long long seq = self.total - 1
        cdef long long first = self.first_seq()
        cdef double lo = now - window
        cdef double buy = 0.0
        cdef double sell = 0.0
        cdef double t
        cdef long long slot
        while seq >= first:
            slot = seq % self.capacity
            t = self._t[slot]
            if t <= lo:
                break
            if t <= now:
                if self._side[slot] > 0:
                    buy += self._sz[slot]
                else:
                    sell += self._sz[slot]
            seq -= 1
        if not buy + sell > 0.0:
            return 0.0
        return (buy - sell) / (buy + sell)

    # --- Python-side accessors ---
    @property
    def count(self) -> int:
        """Trades currently retained (<= capacity)."""
        return self.total if self.total < self.capacity else self.capacity

    @property
    def oldest_seq(self) -> int:
        return self.first_seq()

    @property
    def last_px_ticks(self) -> int:
        """Price of the last trade in ticks, 0 before the first."""
        return self._px[(self.total - 1) % self.capacity] if self.total > 0 else 0

    @property
    def last_px(self) -> float:
        return self._px[(self.total - 1) % self.capacity] / self.ticks_per_unit if self.total > 0 else NAN

    @property
    def last_time(self) -> float:
        """Exchange time of the last trade in seconds, NaN before the first."""
        return self._t[(self.total - 1) % self.capacity] if self.total > 0 else NAN

    @property
    def last_sz(self) -> float:
        return self._sz[(self.total - 1) % self.capacity] if self.total > 0 else NAN

    @property
    def last_side(self) -> int:
        return self._side[(self.total - 1) % self.capacity] if self.total > 0 else 0

    def trade(self, long long seq) -> tuple:
        """(time_s, px_ticks, sz, side, tid, is_liq) of a retained seq; IndexError otherwise."""
        if not self.has_seq(seq):
            raise IndexError(f"seq {seq} not retained (have [{self.first_seq()}, {self.total}))")
        return (self.time_at(seq), self.px_at(seq), self.sz_at(seq), self.side_at(seq),
                self.tid_at(seq), self.liq_at(seq))

    def trades_since(self, long long seq) -> list:
        """Retained trades with sequence >= seq, oldest first (copies; not for the hot path)."""
        cdef long long s = max(seq, self.first_seq())
        return [self.trade(i) for i in range(s, self.total)]

    def reject_counts(self) -> dict:
        return {REJECT_NAMES[i]: self._reject_counts[i] for i in range(1, TAPE_N_REJECT_REASONS)}

    def __repr__(self) -> str:
        return f"Tape(total={self.total}, count={self.count}, last_px={self.last_px})"
