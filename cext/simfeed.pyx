# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Strict scanning of recorded market frames for the backtest's simulated venue.

The simulated venue reads every recorded frame before the engine does (trades deplete the queue ahead
of our orders, snapshots re-anchor it and are re-published with our orders merged in).  Decoding each
frame into dicts and walking them in Python cost more than the engine's own per-frame path; this kernel
reads the frames that ``hlfast record`` and ``hlfast convert`` write straight from the bytes into C
arrays, and writes the merged book back as bytes.

Only one exact form is taken: compact JSON (no whitespace), strings of printable ASCII without
escapes, canonical integers, prices and sizes as plain decimal strings with no more decimals than the
coin allows, levels strictly sorted, every trade row of our coin with side B/A and a positive size.
Any other frame gives ``SF_OTHER`` and the caller decodes it the general way, so what the venue does
never depends on which path read a frame.  On the frames taken, the values equal the general path's
exactly: a decimal with at most d decimals, scaled by 10**d, is an integer N < 2**50, and
``round(float(text) * 10**d)`` recovers N because the relative error of the two roundings (< 2**-52)
moves N by less than 0.25.

Levels and trade rows are first read by fused fast forms (hlfast.jsonscan) for the key orders
real frames come in (any order, in fact); on any other shape the general readers run from the
same byte, so the fast forms never change what is taken or the values read.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.dict cimport PyDict_Next
from cpython.list cimport PyList_Check, PyList_GET_ITEM, PyList_GET_SIZE
from cpython.exc cimport PyErr_Clear, PyErr_Occurred
from cpython.long cimport PyLong_AsLongLongAndOverflow
from cpython.ref cimport PyObject
from libc.limits cimport LLONG_MAX, LLONG_MIN
from libc.stdlib cimport free, realloc
from libc.string cimport memcmp, memcpy

from hlfast.decimal cimport DEC_OK, dec_parse_scaled
from hlfast.jsonscan cimport (
    JS_COMPACT,
    js_at,
    js_empty,
    js_eq,
    js_integer,
    js_is,
    js_key,
    js_next,
    js_open,
    js_quoted_double,
    js_quoted_is,
    js_quoted_scaled,
    js_skip_value,
    js_string,
    js_string_long,
    js_ws,
)

OTHER = SF_OTHER
TRADES = SF_TRADES
BOOK = SF_BOOK
TRADES_NOTED = SF_TRADES_NOTED
DEPTH = SF_DEPTH
PUBLISH_SAME = SF_PUBLISH_SAME
PUBLISH_NEW = SF_PUBLISH_NEW
PUBLISH_FALLBACK = SF_PUBLISH_FALLBACK

cdef long long EXACT_LIMIT = 1LL << 50  # scaled values at or above this are left to the general path
cdef long long[19] POW10 = [
    1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000, 1000000000, 10000000000,
    100000000000, 1000000000000, 10000000000000, 100000000000000, 1000000000000000,
    10000000000000000, 100000000000000000, 1000000000000000000,
]

cdef const char* TRADES_HEAD = b'{"channel":"trades","data":['
cdef const char* BOOK_HEAD = b'{"channel":"l2Book","data":{'
cdef Py_ssize_t HEAD_LEN = 28  # both heads
cdef const char* PUB_HEAD = b'{"channel":"l2Book","data":{"coin":'
cdef Py_ssize_t PUB_HEAD_LEN = 35
cdef Py_ssize_t NEW_LEVEL_MAX = 100  # bytes of one re-written level, at most


# ---- the strict JSON subset of hlfast.jsonscan, compact ---------------------------------------------
cdef inline bint _digit(char c) noexcept nogil:
    return b'0' <= c <= b'9'


cdef inline bint _decimal(const char* s, Py_ssize_t n, int decimals, long long* out) noexcept nogil:
    """Unsigned decimal text scaled by 10**decimals, exactly and below EXACT_LIMIT; False otherwise."""
    cdef long long x
    if n <= 0 or not _digit(s[0]) or dec_parse_scaled(s, n, decimals, &x) != DEC_OK or x >= EXACT_LIMIT:
        return False
    out[0] = x
    return True


cdef inline const char* _decimal_field(const char* p, const char* end, int decimals,
                                       long long* out) noexcept nogil:
    """A quoted decimal value as an integer count of 10^-decimals; NULL if malformed."""
    cdef const char* text
    cdef Py_ssize_t length
    p = js_string(p, end, &text, &length)
    if p == NULL or not _decimal(text, length, decimals, out):
        return NULL
    return p


cdef inline const char* _quoted_decimal(const char* p, const char* end, int decimals,
                                        long long* out) noexcept nogil:
    """_decimal_field's fast form (NULL: not the simple shape, or a value _decimal refuses)."""
    p = js_quoted_scaled(p, end, decimals, out)
    if p == NULL or out[0] >= EXACT_LIMIT:
        return NULL
    return p


cdef inline const char* _skip_strings(const char* p, const char* end) noexcept nogil:
    """js_skip_value's fast form for an array of strings (users): NULL for any other shape."""
    cdef const char* s
    cdef Py_ssize_t n
    if p >= end or p[0] != c'[':
        return NULL
    p += 1
    if p < end and p[0] == c']':
        return p + 1
    while True:
        p = js_string_long(p, end, &s, &n)
        if p == NULL or p >= end:
            return NULL
        if p[0] == c']':
            return p + 1
        if p[0] != c',':
            return NULL
        p += 1


cdef const char* _trade_row_compact(const char* p, const char* end, const char* coin,
                                    Py_ssize_t coin_len, int px_decimals, int sz_decimals,
                                    long long* px, long long* lots, int* side,
                                    long long* time_ms) noexcept nogil:
    """_trade_row's fast form: the recorder's rows (hash, tid and users known), keys in any order,
    each once; NULL for "not this shape"."""
    cdef int seen = 0
    cdef const char* s
    cdef Py_ssize_t n
    cdef long long tid  # read for its shape only (the general path skips it)
    cdef char c
    if p >= end or p[0] != c'{':
        return NULL
    p += 1
    while True:
        c = p[1] if end - p > 1 else 0
        if c == c'c' and not seen & 1 and js_at(p, end, b'"coin":', 7):
            seen |= 1
            p = js_quoted_is(p + 7, end, coin, coin_len)
        elif c == c's' and not seen & 2 and js_at(p, end, b'"side":"', 8):
            seen |= 2
            if end - p < 10 or p[9] != c'"' or (p[8] != c'B' and p[8] != c'A'):
                return NULL
            side[0] = 1 if p[8] == c'B' else -1
            p += 10
        elif c == c'p' and not seen & 4 and js_at(p, end, b'"px":', 5):
            seen |= 4
            p = _quoted_decimal(p + 5, end, px_decimals, px)
        elif c == c's' and not seen & 8 and js_at(p, end, b'"sz":', 5):
            seen |= 8
            p = _quoted_decimal(p + 5, end, sz_decimals, lots)
            if p == NULL or lots[0] <= 0:
                return NULL
        elif c == c't' and not seen & 16 and js_at(p, end, b'"time":', 7):
            seen |= 16
            p = js_integer(p + 7, end, time_ms)
        elif c == c't' and not seen & 32 and js_at(p, end, b'"tid":', 6):
            seen |= 32
            p = js_integer(p + 6, end, &tid)
        elif c == c'h' and not seen & 64 and js_at(p, end, b'"hash":', 7):
            seen |= 64
            p = js_string_long(p + 7, end, &s, &n)
        elif c == c'u' and not seen & 128 and js_at(p, end, b'"users":', 8):
            seen |= 128
            p = _skip_strings(p + 8, end)
        else:
            return NULL
        if p == NULL or p >= end:
            return NULL
        if p[0] == c'}':
            break
        if p[0] != c',':
            return NULL
        p += 1
    if seen & 31 != 31:
        return NULL
    return p + 1


cdef const char* _trade_row(const char* p, const char* end, const char* coin, Py_ssize_t coin_len,
                            int px_decimals, int sz_decimals, long long* px, long long* lots,
                            int* side, long long* time_ms) noexcept nogil:
    """One trade row with coin, side, px, sz and time, each once; NULL for anything else."""
    cdef const char* fast
    fast = _trade_row_compact(p, end, coin, coin_len, px_decimals, sz_decimals, px, lots, side, time_ms)
    if fast != NULL:
        return fast
    return _trade_row_general(p, end, coin, coin_len, px_decimals, sz_decimals, px, lots, side, time_ms)


cdef const char* _trade_row_general(const char* p, const char* end, const char* coin, Py_ssize_t coin_len,
                                    int px_decimals, int sz_decimals, long long* px, long long* lots,
                                    int* side, long long* time_ms) noexcept nogil:
    """_trade_row for any row of the subset: other keys skipped (scalars, flat arrays of scalars)."""
    cdef int seen = 0
    cdef const char* key
    cdef const char* text
    cdef Py_ssize_t key_len, length
    cdef bint done = False
    p = js_open(p, end, c'{', JS_COMPACT)
    if p == NULL:
        return NULL
    while not done:
        p = js_key(p, end, &key, &key_len, JS_COMPACT)
        if p == NULL:
            return NULL
        if js_is(key, key_len, b"coin"):
            if seen & 1:
                return NULL
            seen |= 1
            p = js_string(p, end, &text, &length)
            if p == NULL or not js_eq(text, length, coin, coin_len):
                return NULL
        elif js_is(key, key_len, b"side"):
            if seen & 2:
                return NULL
            seen |= 2
            p = js_string(p, end, &text, &length)
            if p == NULL or length != 1:
                return NULL
            if text[0] == b'B':
                side[0] = 1
            elif text[0] == b'A':
                side[0] = -1
            else:
                return NULL
        elif js_is(key, key_len, b"px"):
            if seen & 4:
                return NULL
            seen |= 4
            p = _decimal_field(p, end, px_decimals, px)
        elif js_is(key, key_len, b"sz"):
            if seen & 8:
                return NULL
            seen |= 8
            p = _decimal_field(p, end, sz_decimals, lots)
            if p == NULL or lots[0] <= 0:
                return NULL
        elif js_is(key, key_len, b"time"):
            if seen & 16:
                return NULL
            seen |= 16
            p = js_integer(p, end, time_ms)
        else:
            p = js_skip_value(p, end, JS_COMPACT)
        if p == NULL:  # px, time or a skipped value refused
            return NULL
        p = js_next(p, end, c'}', &done, JS_COMPACT)
        if p == NULL:
            return NULL
    if seen != 31:
        return NULL
    return p


cdef inline const char* _level_compact(const char* p, const char* end, int px_decimals, int sz_decimals,
                                       long long* px, long long* lots, long long* count) noexcept nogil:
    """_level's fast form: px, sz and n in any key order; NULL for "not this shape"."""
    cdef int seen = 0
    cdef char c
    if p >= end or p[0] != c'{':
        return NULL
    p += 1
    while True:
        c = p[1] if end - p > 1 else 0
        if c == c'p' and not seen & 1 and js_at(p, end, b'"px":', 5):
            seen |= 1
            p = _quoted_decimal(p + 5, end, px_decimals, px)
        elif c == c's' and not seen & 2 and js_at(p, end, b'"sz":', 5):
            seen |= 2
            p = _quoted_decimal(p + 5, end, sz_decimals, lots)
        elif c == c'n' and not seen & 4 and js_at(p, end, b'"n":', 4):
            seen |= 4
            p = js_integer(p + 4, end, count)
        else:
            return NULL
        if p == NULL or p >= end:
            return NULL
        if p[0] == c'}':
            break
        if p[0] != c',':
            return NULL
        p += 1
    if seen != 7:
        return NULL
    return p + 1


cdef const char* _level(const char* p, const char* end, int px_decimals, int sz_decimals,
                        long long* px, long long* lots, long long* count) noexcept nogil:
    """One book level: exactly the keys px, sz and n; NULL for anything else."""
    cdef const char* fast
    fast = _level_compact(p, end, px_decimals, sz_decimals, px, lots, count)
    if fast != NULL:
        return fast
    return _level_general(p, end, px_decimals, sz_decimals, px, lots, count)


cdef const char* _level_general(const char* p, const char* end, int px_decimals, int sz_decimals,
                                long long* px, long long* lots, long long* count) noexcept nogil:
    """_level for any level of the subset."""
    cdef int seen = 0
    cdef const char* key
    cdef Py_ssize_t key_len
    cdef bint done = False
    p = js_open(p, end, c'{', JS_COMPACT)
    if p == NULL:
        return NULL
    while not done:
        p = js_key(p, end, &key, &key_len, JS_COMPACT)
        if p == NULL:
            return NULL
        if js_is(key, key_len, b"px"):
            if seen & 1:
                return NULL
            seen |= 1
            p = _decimal_field(p, end, px_decimals, px)
            if p == NULL:
                return NULL
        elif js_is(key, key_len, b"sz"):
            if seen & 2:
                return NULL
            seen |= 2
            p = _decimal_field(p, end, sz_decimals, lots)
            if p == NULL:
                return NULL
        elif js_is(key, key_len, b"n"):
            if seen & 4:
                return NULL
            seen |= 4
            p = js_integer(p, end, count)
            if p == NULL:
                return NULL
        else:
            return NULL
        p = js_next(p, end, c'}', &done, JS_COMPACT)
        if p == NULL:
            return NULL
    if seen != 7:
        return NULL
    return p


cdef inline long long _ticks(PyObject* obj, bint* exact) noexcept:
    """An int key or size as long long; out-of-range values clamp (and clear `exact`), which keeps
    every comparison with prices and sizes below 2**50 right."""
    cdef int overflow = 0
    cdef long long v = PyLong_AsLongLongAndOverflow(<object>obj, &overflow)
    if overflow:
        exact[0] = False
        return LLONG_MAX if overflow > 0 else LLONG_MIN
    if v == -1 and PyErr_Occurred():
        PyErr_Clear()
        exact[0] = False
        return LLONG_MAX
    return v


# ---- writing ---------------------------------------------------------------------------------------
cdef inline Py_ssize_t _put_uint(char* out, unsigned long long v) noexcept nogil:
    cdef char tmp[24]
    cdef int n = 0, i
    while True:
        tmp[n] = <char>(48 + v % 10)
        n += 1
        v //= 10
        if v == 0:
            break
    for i in range(n):
        out[i] = tmp[n - 1 - i]
    return n


cdef inline Py_ssize_t _put_int(char* out, long long v) noexcept nogil:
    if v < 0:
        out[0] = b'-'
        return 1 + _put_uint(out + 1, <unsigned long long>0 - <unsigned long long>v)
    return _put_uint(out, <unsigned long long>v)


cdef Py_ssize_t _put_scaled(char* out, long long value, int decimals) noexcept nogil:
    """The venue's decimal text of value × 10**-decimals: shortest form, at least one decimal."""
    cdef Py_ssize_t n = 0
    cdef unsigned long long v, whole, frac, scale
    cdef int i, last
    cdef char digits[20]
    if value < 0:
        out[0] = b'-'
        n = 1
        v = <unsigned long long>0 - <unsigned long long>value
    else:
        v = <unsigned long long>value
    scale = <unsigned long long>POW10[decimals]
    whole = v // scale
    frac = v % scale
    n += _put_uint(out + n, whole)
    out[n] = b'.'
    n += 1
    if frac == 0:
        out[n] = b'0'
        return n + 1
    for i in range(decimals - 1, -1, -1):
        digits[i] = <char>(48 + frac % 10)
        frac //= 10
    last = decimals
    while last > 0 and digits[last - 1] == b'0':
        last -= 1
    memcpy(out + n, digits, last)
    return n + last


def format_scaled(long long value, int decimals) -> str:
    """The C formatting of a scaled integer (same text as hlfast.venue.ledger.format_scaled)."""
    cdef char out[48]
    if not 0 <= decimals <= 18:
        raise ValueError(f"decimals must be in [0, 18], got {decimals}")
    return out[:_put_scaled(out, value, decimals)].decode("ascii")


# ---- a view of the shared hlfast.jsonscan readers, for tests -----------------------------------------
def scan_json(bytes text, str reader, bint any_ws=False, int decimals=0, bytes expected=b"") -> tuple:
    """Run one hlfast.jsonscan reader at the start of text: (bytes consumed, value), or (-1, None)
    when it refuses.  reader: "ws"; "string" / "key" (value: the content bytes; a key is consumed up
    to its value); "integer" (value: int); "skip" (a skipped value); "open{" / "open[" (js_open then
    js_empty; value: done, the container was empty) and "next}" / "next]" (value: done, it closed).
    Fast forms: "string_long" (as "string"), "quoted_scaled" (value: the count of 10**-decimals),
    "quoted_double" (value: float), "quoted_is" (a string whose content is ``expected``)."""
    cdef const char* p = PyBytes_AS_STRING(text)
    cdef const char* end = p + PyBytes_GET_SIZE(text)
    cdef const char* q = NULL
    cdef const char* s = NULL
    cdef Py_ssize_t n = 0
    cdef long long v = 0
    cdef double x = 0.0
    cdef bint done = False
    value = None
    if reader == "ws":
        q = js_ws(p, end, any_ws)
    elif reader == "string" or reader == "key":
        q = js_string(p, end, &s, &n) if reader == "string" else js_key(p, end, &s, &n, any_ws)
        if q != NULL:
            value = s[:n]
    elif reader == "integer":
        q = js_integer(p, end, &v)
        value = v
    elif reader == "string_long":
        q = js_string_long(p, end, &s, &n)
        if q != NULL:
            value = s[:n]
    elif reader == "quoted_scaled":
        q = js_quoted_scaled(p, end, decimals, &v)
        value = v
    elif reader == "quoted_double":
        q = js_quoted_double(p, end, &x)
        value = x
    elif reader == "quoted_is":
        q = js_quoted_is(p, end, PyBytes_AS_STRING(expected), PyBytes_GET_SIZE(expected))
    elif reader == "skip":
        q = js_skip_value(p, end, any_ws)
    elif reader in ("open{", "open[", "next}", "next]"):
        if reader.startswith("open"):
            q = js_open(p, end, ord(reader[4]), any_ws)
            if q != NULL:
                q = js_empty(q, end, ord(reader[4]) + 2, &done)
        else:
            q = js_next(p, end, ord(reader[4]), &done, any_ws)
        value = done
    else:
        raise ValueError(f"unknown reader {reader!r}")
    return (-1, None) if q == NULL else (q - p, value)


# ---- the level and row readers one by one, for tests ------------------------------------------------
# form: 0 = as the scanner reads (fast form, else general), 1 = fast form only, 2 = general only.

def read_level(bytes text, int px_decimals, int sz_decimals, int form=0) -> tuple:
    """A level at the start of text: (bytes consumed, (px ticks, lots, n)), or (-1, None)."""
    cdef const char* p = PyBytes_AS_STRING(text)
    cdef const char* end = p + PyBytes_GET_SIZE(text)
    cdef const char* q
    cdef long long px = 0, lots = 0, count = 0
    if form == 1:
        q = _level_compact(p, end, px_decimals, sz_decimals, &px, &lots, &count)
    elif form == 2:
        q = _level_general(p, end, px_decimals, sz_decimals, &px, &lots, &count)
    else:
        q = _level(p, end, px_decimals, sz_decimals, &px, &lots, &count)
    return (-1, None) if q == NULL else (q - p, (px, lots, count))


def read_trade_row(bytes text, bytes coin, int px_decimals, int sz_decimals, int form=0) -> tuple:
    """A trade row at the start of text: (bytes consumed, (side, px ticks, lots, time)), or (-1, None)."""
    cdef const char* p = PyBytes_AS_STRING(text)
    cdef const char* end = p + PyBytes_GET_SIZE(text)
    cdef const char* q
    cdef long long px = 0, lots = 0, time_ms = 0
    cdef int side = 0
    cdef const char* c = PyBytes_AS_STRING(coin)
    cdef Py_ssize_t cn = PyBytes_GET_SIZE(coin)
    if form == 1:
        q = _trade_row_compact(p, end, c, cn, px_decimals, sz_decimals, &px, &lots, &side, &time_ms)
    elif form == 2:
        q = _trade_row_general(p, end, c, cn, px_decimals, sz_decimals, &px, &lots, &side, &time_ms)
    else:
        q = _trade_row(p, end, c, cn, px_decimals, sz_decimals, &px, &lots, &side, &time_ms)
    return (-1, None) if q == NULL else (q - p, (side, px, lots, time_ms))


# ---- the scanner -----------------------------------------------------------------------------------
cdef class FrameScanner:
    """Reads one coin's recorded trades and l2Book frames into C arrays (see the module docstring).

    ``scan(raw)`` classifies a frame; after ``SF_TRADES`` the rows are in ``trade(i)``, after
    ``SF_BOOK`` the levels in ``level(side, i)``.  ``install`` applies a scanned book to our resting
    orders (risk-averse queue cap), ``publish`` writes the book with our orders merged in."""

    def __cinit__(self, str coin, int sz_decimals):
        if not 0 <= sz_decimals <= 6:
            raise ValueError(f"sz_decimals must be in [0, 6], got {sz_decimals}")
        if not coin or not coin.isascii():
            raise ValueError(f"coin must be a non-empty ASCII name, got {coin!r}")
        self.coin = coin
        self.sz_decimals = sz_decimals
        self.px_decimals = 6 - sz_decimals
        self._coin_bytes = coin.encode("ascii")
        import orjson
        self._coin_json = orjson.dumps(coin)
        self._raw = b""
        self._buf = NULL
        self._cap = 0
        self._reserve(4096)

    def __dealloc__(self):
        free(self._buf)

    cdef int _reserve(self, Py_ssize_t size) except -1:
        cdef char* grown
        if size <= self._cap:
            return 0
        grown = <char*>realloc(self._buf, size)
        if grown == NULL:
            raise MemoryError()
        self._buf = grown
        self._cap = size
        return 0

    # ---- scanning ----
    cpdef int scan(self, object raw):
        """SF_TRADES, SF_BOOK, or SF_OTHER (decode it the general way)."""
        cdef const char* base
        cdef Py_ssize_t n
        if type(raw) is not bytes:
            return SF_OTHER
        base = PyBytes_AS_STRING(raw)
        n = PyBytes_GET_SIZE(raw)
        if n < HEAD_LEN + 2:
            return SF_OTHER
        if memcmp(base, TRADES_HEAD, HEAD_LEN) == 0:
            return self._scan_trades(base + HEAD_LEN, base + n)
        if memcmp(base, BOOK_HEAD, HEAD_LEN) == 0:
            self._raw = raw
            return self._scan_book(base, base + HEAD_LEN, base + n)
        return SF_OTHER

    cdef int _scan_trades(self, const char* p, const char* end) noexcept:
        cdef int k = 0, side = 0
        cdef long long t = 0
        cdef bint done = False
        cdef const char* coin = PyBytes_AS_STRING(self._coin_bytes)
        cdef Py_ssize_t coin_len = PyBytes_GET_SIZE(self._coin_bytes)
        while not done:  # the head took the '[': at least one row
            if k == SF_MAX_TRADES:
                return SF_OTHER
            p = _trade_row(p, end, coin, coin_len, self.px_decimals, self.sz_decimals,
                           &self._t_px[k], &self._t_lots[k], &side, &t)
            if p == NULL:
                return SF_OTHER
            self._t_side[k] = <signed char>side
            k += 1
            p = js_next(p, end, c']', &done, JS_COMPACT)
            if p == NULL:
                return SF_OTHER
        if end - p != 1 or p[0] != b'}':
            return SF_OTHER
        self.n_trades = k
        self.time_ms = t
        self.last_px = self._t_px[k - 1]
        return SF_TRADES

    cdef int _scan_book(self, const char* base, const char* p, const char* end) noexcept:
        cdef int seen = 0, side, k
        cdef const char* key
        cdef const char* text
        cdef Py_ssize_t key_len, length, time_start = 0, time_end = 0
        cdef long long t = 0, px = 0, lots = 0, count = 0
        cdef bint done = False, inner
        cdef const char* coin = PyBytes_AS_STRING(self._coin_bytes)
        cdef Py_ssize_t coin_len = PyBytes_GET_SIZE(self._coin_bytes)
        while not done:  # the head took the '{': at least one member
            p = js_key(p, end, &key, &key_len, JS_COMPACT)
            if p == NULL:
                return SF_OTHER
            if js_is(key, key_len, b"coin"):
                if seen & 1:
                    return SF_OTHER
                seen |= 1
                p = js_string(p, end, &text, &length)
                if p == NULL or not js_eq(text, length, coin, coin_len):
                    return SF_OTHER
            elif js_is(key, key_len, b"time"):
                if seen & 2:
                    return SF_OTHER
                seen |= 2
                time_start = p - base
                p = js_integer(p, end, &t)
                if p == NULL:
                    return SF_OTHER
                time_end = p - base
            elif js_is(key, key_len, b"levels"):
                if seen & 4:
                    return SF_OTHER
                seen |= 4
                p = js_open(p, end, c'[', JS_COMPACT)  # [bids, asks]
                if p == NULL:
                    return SF_OTHER
                for side in range(2):
                    if side == 1:
                        p = js_next(p, end, c']', &inner, JS_COMPACT)
                        if p == NULL or inner:
                            return SF_OTHER
                    self._side_start[side] = p - base
                    p = js_open(p, end, c'[', JS_COMPACT)
                    if p == NULL:
                        return SF_OTHER
                    p = js_empty(p, end, c']', &inner)
                    k = 0
                    while not inner:
                        if k == SF_DEPTH:
                            return SF_OTHER
                        self._lv_start[side][k] = p - base
                        p = _level(p, end, self.px_decimals, self.sz_decimals, &px, &lots, &count)
                        if p == NULL:
                            return SF_OTHER
                        if k > 0 and ((side == 0 and px >= self._px[0][k - 1])
                                      or (side == 1 and px <= self._px[1][k - 1])):
                            return SF_OTHER  # unsorted or repeated price
                        self._px[side][k] = px
                        self._lots[side][k] = lots
                        self._cnt[side][k] = count
                        self._lv_end[side][k] = p - base
                        k += 1
                        p = js_next(p, end, c']', &inner, JS_COMPACT)
                        if p == NULL:
                            return SF_OTHER
                    self._side_end[side] = p - base
                    self._n[side] = k
                p = js_next(p, end, c']', &inner, JS_COMPACT)
                if p == NULL or not inner:
                    return SF_OTHER
            else:
                p = js_skip_value(p, end, JS_COMPACT)
                if p == NULL:
                    return SF_OTHER
            p = js_next(p, end, c'}', &done, JS_COMPACT)
            if p == NULL:
                return SF_OTHER
        if seen != 7 or end - p != 1 or p[0] != b'}':
            return SF_OTHER
        if self._n[0] and self._n[1] and self._px[0][0] >= self._px[1][0]:
            return SF_OTHER  # crossed: the general path counts it as bad
        self.time_ms = t
        self._time_start = time_start
        self._time_end = time_end
        return SF_BOOK

    cpdef int scan_apply(self, object raw, tuple levels, tuple traded) except -2:
        """scan(), and for trades that reach none of our orders (levels: the venue's (bids, asks)
        {px: orders}) also add_traded() into traded (the venue's (bids, asks) {px: lots}):
        SF_TRADES_NOTED.  Trades that may fill us give SF_OTHER, with nothing changed."""
        cdef int kind = self.scan(raw)
        cdef dict bids, asks
        if kind != SF_TRADES:
            return kind
        bids = <dict?>levels[0]
        asks = <dict?>levels[1]
        if (bids or asks) and self.trades_reach(bids, asks):
            return SF_OTHER
        self.add_traded(<dict?>traded[0], <dict?>traded[1])
        return SF_TRADES_NOTED

    # ---- views for the caller and tests ----
    @property
    def n_bids(self) -> int:
        return self._n[0]

    @property
    def n_asks(self) -> int:
        return self._n[1]

    def trade(self, int i) -> tuple:
        """(side, px ticks, lots) of row i of the last trades scan."""
        if not 0 <= i < self.n_trades:
            raise IndexError(i)
        return self._t_side[i], self._t_px[i], self._t_lots[i]

    def level(self, int side, int i) -> tuple:
        """(px ticks, lots, n) of level i (best first) of side 0 = bids / 1 = asks of the last book scan."""
        if not 0 <= side <= 1 or not 0 <= i < self._n[side]:
            raise IndexError((side, i))
        return self._px[side][i], self._lots[side][i], self._cnt[side][i]

    def best(self, int side):
        """Best price (ticks) of a side of the last book scan, or None when the side is empty."""
        if not 0 <= side <= 1:
            raise IndexError(side)
        return self._px[side][0] if self._n[side] else None

    def market_side(self, int side) -> list:
        """The installed snapshot's side as the venue keeps it: [[px, lots, n], ...] best first."""
        cdef int i
        if not 0 <= side <= 1:
            raise IndexError(side)
        return [[self._ins_px[side][i], self._ins_lots[side][i], self._ins_cnt[side][i]]
                for i in range(self._ins_n[side])]

    def display_side(self, int side, bint installed=True) -> dict:
        """{px: lots} of the installed snapshot (or of the last scan with installed=False)."""
        cdef int i
        if not 0 <= side <= 1:
            raise IndexError(side)
        if installed:
            return {self._ins_px[side][i]: self._ins_lots[side][i] for i in range(self._ins_n[side])}
        return {self._px[side][i]: self._lots[side][i] for i in range(self._n[side])}

    # ---- trades ----
    cpdef bint trades_reach(self, dict bid_levels, dict ask_levels):
        """Could a row of the last trades scan fill one of our resting orders (asks for buys, bids
        for sells)?  Keys of the level dicts are prices in ticks."""
        cdef int k
        cdef long long max_buy = 0, min_sell = 0
        cdef bint has_buy = False, has_sell = False
        cdef Py_ssize_t pos = 0
        cdef PyObject* key
        cdef PyObject* value
        cdef bint exact = True
        for k in range(self.n_trades):
            if self._t_side[k] > 0:
                if not has_buy or self._t_px[k] > max_buy:
                    max_buy = self._t_px[k]
                has_buy = True
            else:
                if not has_sell or self._t_px[k] < min_sell:
                    min_sell = self._t_px[k]
                has_sell = True
        if has_buy and ask_levels:
            while PyDict_Next(ask_levels, &pos, &key, &value):
                if _ticks(key, &exact) <= max_buy:
                    return True
        pos = 0
        if has_sell and bid_levels:
            while PyDict_Next(bid_levels, &pos, &key, &value):
                if _ticks(key, &exact) >= min_sell:
                    return True
        return False

    cpdef int add_traded(self, dict traded_bid, dict traded_ask) except -1:
        """Note each row's lots as traded at its price (buys against asks, sells against bids)."""
        cdef int k
        cdef dict traded
        for k in range(self.n_trades):
            traded = traded_ask if self._t_side[k] > 0 else traded_bid
            px = self._t_px[k]
            traded[px] = traded.get(px, 0) + self._t_lots[k]
        return 0

    # ---- books ----
    cdef long long _shown_lots(self, int side, long long px) noexcept:
        cdef int i
        for i in range(self._n[side]):
            if self._px[side][i] == px:
                return self._lots[side][i]
        return 0

    cdef int _cap_queues(self, int side, dict levels) except -1:
        # risk-averse: displayed size that vanished came from behind us, queue_ahead <= displayed
        cdef long long best, px
        cdef double shown, ahead
        cdef Py_ssize_t pos = 0
        cdef PyObject* key
        cdef PyObject* value
        cdef bint exact = True
        if self._n[side] == 0:
            return 0
        best = self._px[side][0]
        while PyDict_Next(levels, &pos, &key, &value):
            px = _ticks(key, &exact)
            if (px > best) if side == 0 else (px < best):
                continue  # the level in front got consumed: queue position stays
            shown = <double>self._shown_lots(side, px)
            for o in <object>value:
                ahead = o.queue_ahead
                if shown < ahead:
                    o.queue_ahead = shown
        return 0

    cdef bint _crosses(self, int side, dict levels) noexcept:
        cdef long long opp_best, px
        cdef Py_ssize_t pos = 0
        cdef PyObject* key
        cdef PyObject* value
        cdef int opp = 1 - side
        cdef bint exact = True
        if self._n[opp] == 0:
            return False
        opp_best = self._px[opp][0]
        while PyDict_Next(levels, &pos, &key, &value):
            px = _ticks(key, &exact)
            if (px >= opp_best) if side == 0 else (px <= opp_best):
                return True
        return False

    cpdef int install(self, dict bid_levels, dict ask_levels, bint cap_queues) except -1:
        """Make the last book scan the installed snapshot.  With cap_queues, first cap the queue
        ahead of our orders at the displayed size (risk-averse model).  Returns bit 0: one of our bids
        is at or through the best ask, bit 1: one of our asks at or through the best bid."""
        cdef int side, flags = 0
        if cap_queues:
            if bid_levels:
                self._cap_queues(0, bid_levels)
            if ask_levels:
                self._cap_queues(1, ask_levels)
        for side in range(2):
            self._ins_n[side] = self._n[side]
            memcpy(self._ins_px[side], self._px[side], sizeof(long long) * self._n[side])
            memcpy(self._ins_lots[side], self._lots[side], sizeof(long long) * self._n[side])
            memcpy(self._ins_cnt[side], self._cnt[side], sizeof(long long) * self._n[side])
        if bid_levels and self._crosses(0, bid_levels):
            flags |= 1
        if ask_levels and self._crosses(1, ask_levels):
            flags |= 2
        return flags

    cdef Py_ssize_t _merge_side(self, int side, dict levels, Py_ssize_t at) except -2:
        """Write one side of the published book at `at`; -1 when it has a shape left to the caller."""
        cdef const char* raw = PyBytes_AS_STRING(self._raw)
        cdef char* out = self._buf
        cdef int nm = self._n[side], k = 0, i = 0, j = 0, written = 0, m
        cdef long long px, deepest = 0, lots, count, our_lots, mpx, opx
        cdef Py_ssize_t pos = 0, span, f, fifo_len
        cdef PyObject* key
        cdef PyObject* value
        cdef PyObject* fifo
        cdef bint take_market, take_ours, exact = True
        if not levels:
            span = self._side_end[side] - self._side_start[side]
            memcpy(out + at, raw + self._side_start[side], span)
            return at + span
        if nm == SF_DEPTH:
            deepest = self._px[side][nm - 1]
        while PyDict_Next(levels, &pos, &key, &value):
            px = _ticks(key, &exact)
            if not exact:
                return -1
            if nm == SF_DEPTH and ((px < deepest) if side == 0 else (px > deepest)):
                continue  # below the published depth
            if k == SF_MAX_OURS or not PyList_Check(<object>value):
                return -1
            m = k  # insertion sort, best first
            while m > 0 and ((self._our_px[m - 1] < px) if side == 0 else (self._our_px[m - 1] > px)):
                self._our_px[m] = self._our_px[m - 1]
                self._our_fifo[m] = self._our_fifo[m - 1]
                m -= 1
            self._our_px[m] = px
            self._our_fifo[m] = value
            k += 1
        out[at] = b'['
        at += 1
        while written < SF_DEPTH and (i < nm or j < k):
            take_market = take_ours = False
            if j == k:
                take_market = True
            elif i == nm:
                take_ours = True
            else:
                mpx = self._px[side][i]
                opx = self._our_px[j]
                if mpx == opx:
                    take_market = take_ours = True
                elif (mpx > opx) if side == 0 else (mpx < opx):
                    take_market = True
                else:
                    take_ours = True
            if written:
                out[at] = b','
                at += 1
            if take_ours:
                fifo = self._our_fifo[j]
                fifo_len = PyList_GET_SIZE(<object>fifo)
                our_lots = 0
                for f in range(fifo_len):
                    sz = (<object>PyList_GET_ITEM(<object>fifo, f)).sz
                    our_lots += _ticks(<PyObject*>sz, &exact)
                if not exact or our_lots >= EXACT_LIMIT:
                    return -1
                px = self._our_px[j]
                lots = our_lots
                count = fifo_len
                if take_market:
                    lots += self._lots[side][i]
                    count += self._cnt[side][i]
            if take_market and (not take_ours
                                or (lots == self._lots[side][i] and count == self._cnt[side][i])):
                span = self._lv_end[side][i] - self._lv_start[side][i]
                memcpy(out + at, raw + self._lv_start[side][i], span)
                at += span
            else:
                self._changed = True
                memcpy(out + at, b'{"px":"', 7)
                at += 7
                at += _put_scaled(out + at, px, self.px_decimals)
                memcpy(out + at, b'","sz":"', 8)
                at += 8
                at += _put_scaled(out + at, lots, self.sz_decimals)
                memcpy(out + at, b'","n":', 6)
                at += 6
                at += _put_int(out + at, count)
                out[at] = b'}'
                at += 1
            if take_market:
                i += 1
            if take_ours:
                j += 1
            written += 1
        out[at] = b']'
        if written != nm:
            self._changed = True
        return at + 1

    cpdef object publish(self, dict bid_levels, dict ask_levels):
        """The last scanned book (just installed) as the venue publishes it, our resting orders merged
        in (levels: {px: [orders with .sz lots]}).  Returns the new frame, or None with publish_status
        SF_PUBLISH_SAME (the recorded frame is it) or SF_PUBLISH_FALLBACK (merge it the general way)."""
        cdef Py_ssize_t at, raw_len = PyBytes_GET_SIZE(self._raw)
        cdef Py_ssize_t coin_len = PyBytes_GET_SIZE(self._coin_json)
        cdef Py_ssize_t time_len = self._time_end - self._time_start
        self._reserve(raw_len + coin_len + 2 * SF_DEPTH * NEW_LEVEL_MAX + 128)
        self._changed = False
        memcpy(self._buf, PUB_HEAD, PUB_HEAD_LEN)
        at = PUB_HEAD_LEN
        memcpy(self._buf + at, PyBytes_AS_STRING(self._coin_json), coin_len)
        at += coin_len
        memcpy(self._buf + at, b',"time":', 8)
        at += 8
        memcpy(self._buf + at, PyBytes_AS_STRING(self._raw) + self._time_start, time_len)
        at += time_len
        memcpy(self._buf + at, b',"levels":[', 11)
        at += 11
        at = self._merge_side(0, bid_levels, at)
        if at < 0:
            self.publish_status = SF_PUBLISH_FALLBACK
            return None
        self._buf[at] = b','
        at = self._merge_side(1, ask_levels, at + 1)
        if at < 0:
            self.publish_status = SF_PUBLISH_FALLBACK
            return None
        memcpy(self._buf + at, b']}}', 3)
        at += 3
        if not self._changed:
            self.publish_status = SF_PUBLISH_SAME
            return None
        self.publish_status = SF_PUBLISH_NEW
        return PyBytes_FromStringAndSize(self._buf, at)
