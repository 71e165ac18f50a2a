# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Route Hyperliquid websocket frames: one decode, then a channel switch.

l2Book / bbo / trades for the router's coin are applied straight into the Book and
Tape kernels; every other channel's decoded ``data`` is left in ``payload`` for the
Python layer.  Malformed frames are counted by reason and never raise.

The hot frames are first offered to a C scanner that reads the raw bytes directly
(no Python object per level or trade).  It accepts only a strict subset of JSON --
that of hlfast.jsonscan (printable ASCII strings without escapes, canonical integers of
at most 18 digits) with any whitespace, the known keys of each object once each,
"channel" before "data" -- and only frames
the kernels would apply in full.  Anything else (other channels, unknown keys,
rejects of any kind, other coins) leaves every state untouched and takes the orjson
path, which decides exactly as before.

Levels and trade rows in compact form (any key order) are read by fused fast forms first
(hlfast.jsonscan); on any other shape the key-order-agnostic readers run from the same byte,
so the fast forms never change what is accepted or what it means.
"""

from libc.math cimport INFINITY, isfinite
from libc.stdlib cimport free, malloc
from orjson import loads as _loads

from hlfast.book cimport BOOK_REJ_WRONG_COIN, Book
from hlfast.decimal cimport (
    DEC_OK,
    PyObject,
    c_bytes_data,
    c_bytes_len,
    c_dict_get,
    c_is_bytes_exact,
    c_is_dict,
    c_is_list,
    c_is_str_exact,
    c_list_item,
    c_list_len,
    c_str_data,
    c_str_is_compact_ascii,
    c_str_len,
    dec_parse_double,
    dec_parse_scaled,
)
from hlfast.jsonscan cimport (
    JS_ANY_WS,
    js_at,
    js_empty,
    js_eq,
    js_integer,
    js_is,
    js_key,
    js_literal,
    js_next,
    js_open,
    js_quoted_double,
    js_quoted_is,
    js_quoted_scaled,
    js_string,
    js_string_long,
    js_ws,
)
from hlfast.tape cimport Tape

CH_MALFORMED = FR_CH_MALFORMED
CH_UNKNOWN = FR_CH_UNKNOWN
CH_L2BOOK = FR_CH_L2BOOK
CH_TRADES = FR_CH_TRADES
CH_BBO = FR_CH_BBO
CH_ORDER_UPDATES = FR_CH_ORDER_UPDATES
CH_USER_FILLS = FR_CH_USER_FILLS
CH_USER = FR_CH_USER
CH_POST = FR_CH_POST
CH_PONG = FR_CH_PONG
CH_SUB_RESPONSE = FR_CH_SUB_RESPONSE
CH_ERROR = FR_CH_ERROR
CH_ALL_MIDS = FR_CH_ALL_MIDS
SCAN_MAX_TRADES = FR_SCAN_MAX_TRADES

# Wire channel name -> code ("user" is the channel of the userEvents subscription).
CHANNEL_CODES = {
    "l2Book": FR_CH_L2BOOK,
    "trades": FR_CH_TRADES,
    "bbo": FR_CH_BBO,
    "orderUpdates": FR_CH_ORDER_UPDATES,
    "userFills": FR_CH_USER_FILLS,
    "user": FR_CH_USER,
    "post": FR_CH_POST,
    "pong": FR_CH_PONG,
    "subscriptionResponse": FR_CH_SUB_RESPONSE,
    "error": FR_CH_ERROR,
    "allMids": FR_CH_ALL_MIDS,
}
cdef dict _CODES = CHANNEL_CODES

# Index = FR_REJ_* reason.
REJECT_NAMES = (
    "banner", "invalid_json", "not_object", "missing_channel", "missing_data",
    "unknown_channel", "wrong_coin",
)

BANNER = b"Websocket connection established."

cdef str K_CHANNEL = "channel"
cdef str K_DATA = "data"
cdef str K_COIN = "coin"


cdef inline bint _other_coin(PyObject* obj, str coin) noexcept:
    """obj is a dict whose str ``coin`` differs from ours (other shapes: let the kernel judge)."""
    cdef PyObject* c
    if not c_is_dict(obj):
        return False
    c = c_dict_get(obj, <PyObject*>K_COIN)
    if c == NULL or not isinstance(<object>c, str):
        return False
    return <object>c != coin


# ---- raw-frame scanner: the strict JSON subset of hlfast.jsonscan, any whitespace --------------
# Readers start on the value's first byte and return the position just past it, or NULL when
# the input is outside the subset (the caller then falls back to orjson).

cdef long long INT_N_MAX = 2147483647LL


cdef inline const char* _level_compact(const char* p, const char* end, int px_decimals,
                                       long long* px, double* sz, int* count) noexcept nogil:
    """_level's fast form: compact ``{px, sz[, n]}`` in any key order, or NULL for "not this shape"."""
    cdef long long n = 0
    cdef int seen = 0
    cdef char c
    if p >= end or p[0] != c'{':
        return NULL
    p += 1
    while True:
        c = p[1] if end - p > 1 else 0
        if c == c'p' and not seen & 1 and js_at(p, end, b'"px":', 5):
            seen |= 1
            p = js_quoted_scaled(p + 5, end, px_decimals, px)
            if p == NULL or px[0] <= 0:
                return NULL
        elif c == c's' and not seen & 2 and js_at(p, end, b'"sz":', 5):
            seen |= 2
            p = js_quoted_double(p + 5, end, sz)
            if p == NULL or not isfinite(sz[0]) or not sz[0] > 0.0:
                return NULL
        elif c == c'n' and not seen & 4 and js_at(p, end, b'"n":', 4):
            seen |= 4
            p = js_integer(p + 4, end, &n)
            if p == NULL or n < 0 or n > INT_N_MAX:
                return NULL
        else:
            return NULL
        if p >= end:
            return NULL
        if p[0] == c'}':
            break
        if p[0] != c',':
            return NULL
        p += 1
    if seen & 3 != 3:
        return NULL
    count[0] = <int>n
    return p + 1


cdef const char* _level(const char* p, const char* end, int px_decimals,
                        long long* px, double* sz, int* count) noexcept nogil:
    """``{px, sz[, n]}`` that the Book would accept: px > 0 on the grid, 0 < sz finite."""
    cdef const char* fast = _level_compact(p, end, px_decimals, px, sz, count)
    if fast != NULL:
        return fast
    return _level_general(p, end, px_decimals, px, sz, count)


cdef const char* _level_general(const char* p, const char* end, int px_decimals,
                                long long* px, double* sz, int* count) noexcept nogil:
    """_level for any shape of the subset (whitespace, any key order)."""
    cdef const char* k
    cdef const char* s
    cdef Py_ssize_t kn, sn
    cdef long long n = 0
    cdef int seen = 0
    cdef bint done = False
    p = js_open(p, end, c'{', JS_ANY_WS)
    if p == NULL:
        return NULL
    while not done:
        p = js_key(p, end, &k, &kn, JS_ANY_WS)
        if p == NULL:
            return NULL
        if js_is(k, kn, b"px") and not seen & 1:
            seen |= 1
            p = js_string(p, end, &s, &sn)
            if p == NULL or dec_parse_scaled(s, sn, px_decimals, px) != DEC_OK or px[0] <= 0:
                return NULL
        elif js_is(k, kn, b"sz") and not seen & 2:
            seen |= 2
            p = js_string(p, end, &s, &sn)
            if p == NULL or dec_parse_double(s, sn, sz) != DEC_OK or not isfinite(sz[0]) or not sz[0] > 0.0:
                return NULL
        elif js_is(k, kn, b"n") and not seen & 4:
            seen |= 4
            p = js_integer(p, end, &n)
            if p == NULL or n < 0 or n > INT_N_MAX:
                return NULL
        else:
            return NULL
        p = js_next(p, end, c'}', &done, JS_ANY_WS)
        if p == NULL:
            return NULL
    if seen & 3 != 3:
        return NULL
    count[0] = <int>n
    return p


cdef inline const char* _touch(const char* p, const char* end, int px_decimals, bint* has,
                               long long* px, double* sz, int* count) noexcept nogil:
    """One side of a bbo: null (has = False) or a level."""
    cdef const char* q = js_literal(p, end, b"null")
    has[0] = q == NULL
    return _level(p, end, px_decimals, px, sz, count) if has[0] else q


cdef const char* _side(const char* p, const char* end, int px_decimals, int capacity, bint is_bid,
                       long long* px, double* sz, int* cnt, int* count) noexcept nogil:
    """A non-empty side, strictly monotonic best first, into the given scratch arrays."""
    cdef int i = 0
    cdef bint done = False
    p = js_open(p, end, c'[', JS_ANY_WS)
    if p == NULL:
        return NULL
    while not done:
        if i >= capacity:
            return NULL
        p = _level(p, end, px_decimals, &px[i], &sz[i], &cnt[i])
        if p == NULL:
            return NULL
        if i > 0 and ((is_bid and px[i] >= px[i - 1]) or (not is_bid and px[i] <= px[i - 1])):
            return NULL
        i += 1
        p = js_next(p, end, c']', &done, JS_ANY_WS)
        if p == NULL:
            return NULL
    count[0] = i
    return p


cdef class FrameRouter:
    """Dispatch frames of one coin's market-data / user connection.

    ``scan=False`` turns the raw-frame scanner off (every frame decoded by orjson); the
    results are the same either way, ``scanned`` counts the frames the scanner handled.
    """

    def __cinit__(self, Book book, Tape tape, str coin=None, bint scan=True):
        if coin is None:
            if book is None:
                raise ValueError("coin is required when book is None")
            coin = book.coin
        elif book is not None and coin != book.coin:
            raise ValueError(f"coin {coin!r} does not match book coin {book.coin!r}")
        self.book = book
        self.tape = tape
        self.coin = coin
        self.payload = None
        self.channel = FR_CH_UNKNOWN
        self.applied = 0
        self.last_pushed = 0
        self.frames = 0
        self.book_updates = 0
        self.trade_updates = 0
        self.trades_pushed = 0
        self.malformed = 0
        cdef int i
        for i in range(FR_N_REJECT_REASONS):
            self._reject_counts[i] = 0
        # The scanner compares the coin byte for byte, so it needs an ASCII name.
        self.scan = scan and coin.isascii()
        self.scanned = 0
        self._coin_text = coin.encode("ascii") if self.scan else None
        self._trades = NULL
        if self.scan and tape is not None:
            self._trades = <ScanTrade*>malloc(FR_SCAN_MAX_TRADES * sizeof(ScanTrade))
            if self._trades == NULL:
                raise MemoryError("trade row buffer")

    def __dealloc__(self):
        free(self._trades)

    cdef int _malformed(self, int reason) noexcept:
        self._reject_counts[reason] += 1
        self.malformed += 1
        self.channel = FR_CH_MALFORMED
        return FR_CH_MALFORMED

    cpdef int on_frame(self, object raw):
        """Decode one raw frame (bytes or str) and dispatch it; returns the channel code."""
        cdef PyObject* r = <PyObject*>raw
        cdef const char* text
        cdef int code
        self.frames += 1
        self.payload = None
        self.applied = 0
        self.last_pushed = 0
        if self.scan:
            if c_is_bytes_exact(r):
                text = c_bytes_data(r)
                code = self._scan(text, text + c_bytes_len(r))
            elif c_is_str_exact(r) and c_str_is_compact_ascii(r):
                # A compact ASCII str's characters are exactly its UTF-8 bytes.
                text = <const char*>c_str_data(r)
                code = self._scan(text, text + c_str_len(r))
            else:
                code = FR_SCAN_FALLBACK
            if code != FR_SCAN_FALLBACK:
                self.scanned += 1
                return code
        try:
            msg = _loads(raw)
        except Exception:
            if raw == BANNER or raw == "Websocket connection established.":
                return self._malformed(FR_REJ_BANNER)
            return self._malformed(FR_REJ_INVALID_JSON)
        return self._dispatch(msg)

    cpdef int on_message(self, object msg):
        """Dispatch an already-decoded frame object (replay / tests)."""
        self.frames += 1
        self.payload = None
        self.applied = 0
        self.last_pushed = 0
        return self._dispatch(msg)

    cdef int _dispatch(self, object msg):
        cdef PyObject* m = <PyObject*>msg
        cdef PyObject* ch
        cdef PyObject* data
        cdef PyObject* code_obj
        cdef int code
        cdef int pushed
        if not c_is_dict(m):
            return self._malformed(FR_REJ_NOT_OBJECT)
        ch = c_dict_get(m, <PyObject*>K_CHANNEL)
        if ch == NULL or not isinstance(<object>ch, str):
            return self._malformed(FR_REJ_MISSING_CHANNEL)
        data = c_dict_get(m, <PyObject*>K_DATA)
        code_obj = c_dict_get(<PyObject*>_CODES, ch)
        if code_obj == NULL:
            self._reject_counts[FR_REJ_UNKNOWN_CHANNEL] += 1
            self.channel = FR_CH_UNKNOWN
            self.payload = <object>data if data != NULL else None
            return FR_CH_UNKNOWN
        code = <int><object>code_obj
        if code == FR_CH_PONG:
            self.channel = code
            return code
        if data == NULL:
            return self._malformed(FR_REJ_MISSING_DATA)
        self.channel = code
        if code == FR_CH_L2BOOK or code == FR_CH_BBO:
            if self.book is None:
                self.payload = <object>data
                return code
            if _other_coin(data, self.coin):
                self._reject_counts[FR_REJ_WRONG_COIN] += 1
                self.applied = BOOK_REJ_WRONG_COIN
                return code
            if code == FR_CH_L2BOOK:
                self.applied = self.book.apply_l2(<object>data)
            else:
                self.applied = self.book.apply_bbo(<object>data)
            if self.applied == 0:
                self.book_updates += 1
            return code
        if code == FR_CH_TRADES:
            if self.tape is None:
                self.payload = <object>data
                return code
            if c_is_list(data) and c_list_len(data) > 0 and _other_coin(c_list_item(data, 0), self.coin):
                self._reject_counts[FR_REJ_WRONG_COIN] += 1
                self.applied = BOOK_REJ_WRONG_COIN
                return code
            pushed = self.tape.apply_trades(<object>data, self.coin)
            self.last_pushed = pushed
            self.applied = 0 if c_is_list(data) and pushed == c_list_len(data) else 1
            if pushed > 0:
                self.trade_updates += 1
                self.trades_pushed += pushed
            return code
        self.payload = <object>data
        return code

    # ---- raw-frame scanner ---------------------------------------------------------------------
    cdef int _scan(self, const char* p, const char* end) noexcept:
        """Apply a hot frame straight from its bytes; FR_SCAN_FALLBACK leaves all state as it was.

        Everything is read and checked before anything is committed, so a frame the
        scanner gives up on (anywhere, even in its last byte) is still whole for orjson.
        """
        cdef const char* k
        cdef const char* s
        cdef Py_ssize_t kn, sn
        cdef int code, i
        cdef int rows = 0
        cdef bint done
        cdef ScanBook sb
        cdef ScanTrade* row
        # The compact heads first (same position and code as the general reading below).
        if self.tape is not None and js_at(p, end, b'{"channel":"trades","data":', 27):
            code = FR_CH_TRADES
            p += 27
        elif self.book is not None and js_at(p, end, b'{"channel":"l2Book","data":', 27):
            code = FR_CH_L2BOOK
            p += 27
        else:
            p = js_open(js_ws(p, end, JS_ANY_WS), end, c'{', JS_ANY_WS)
            if p == NULL:
                return FR_SCAN_FALLBACK
            p = js_key(p, end, &k, &kn, JS_ANY_WS)
            if p == NULL or not js_is(k, kn, b"channel"):
                return FR_SCAN_FALLBACK
            p = js_string(p, end, &s, &sn)
            if p == NULL:
                return FR_SCAN_FALLBACK
            if js_is(s, sn, b"l2Book") and self.book is not None:
                code = FR_CH_L2BOOK
            elif js_is(s, sn, b"bbo") and self.book is not None:
                code = FR_CH_BBO
            elif js_is(s, sn, b"trades") and self.tape is not None:
                code = FR_CH_TRADES
            else:
                return FR_SCAN_FALLBACK
            p = js_next(p, end, c'}', &done, JS_ANY_WS)
            if p == NULL or done:
                return FR_SCAN_FALLBACK
            p = js_key(p, end, &k, &kn, JS_ANY_WS)
            if p == NULL or not js_is(k, kn, b"data"):
                return FR_SCAN_FALLBACK
        if code == FR_CH_TRADES:
            p = self._scan_trades(p, end, &rows)
        else:
            p = self._scan_book(p, end, code == FR_CH_BBO, &sb)
        if p == NULL:
            return FR_SCAN_FALLBACK
        p = js_next(p, end, c'}', &done, JS_ANY_WS)
        if p == NULL or not done or js_ws(p, end, JS_ANY_WS) != end:
            return FR_SCAN_FALLBACK
        # Commit: the same kernel steps and router counters as the decoded path.
        self.channel = code
        if code == FR_CH_TRADES:
            for i in range(rows):
                row = &self._trades[i]
                self.tape._push(row.t, row.px, row.sz, row.side, row.tid, row.liq)
            self.last_pushed = rows
            if rows > 0:
                self.trade_updates += 1
                self.trades_pushed += rows
            return code
        if code == FR_CH_L2BOOK:
            self.book._commit_l2(sb.n_bids, sb.n_asks, sb.time_ms)
        else:
            self.book._commit_bbo(sb.has_bid, sb.bid_px, sb.bid_sz, sb.bid_n,
                                  sb.has_ask, sb.ask_px, sb.ask_sz, sb.ask_n, sb.time_ms)
        self.book_updates += 1
        return code

    cdef const char* _scan_book(self, const char* p, const char* end, bint is_bbo,
                                ScanBook* out) noexcept:
        """l2Book / bbo data: our coin, a time not older than the book's, levels that apply."""
        cdef const char* k
        cdef const char* s
        cdef Py_ssize_t kn, sn
        cdef int seen = 0
        cdef bint done = False
        cdef bint inner
        cdef PyObject* coin = <PyObject*>self._coin_text
        out.n_bids = out.n_asks = 0
        out.has_bid = out.has_ask = False
        out.bid_px = out.ask_px = 0
        out.bid_sz = out.ask_sz = 0.0
        out.bid_n = out.ask_n = 0
        p = js_open(p, end, c'{', JS_ANY_WS)
        if p == NULL:
            return NULL
        while not done:
            p = js_key(p, end, &k, &kn, JS_ANY_WS)
            if p == NULL:
                return NULL
            if js_is(k, kn, b"coin") and not seen & 1:
                seen |= 1
                p = js_string(p, end, &s, &sn)
                if p == NULL or not js_eq(s, sn, c_bytes_data(coin), c_bytes_len(coin)):
                    return NULL
            elif js_is(k, kn, b"time") and not seen & 2:
                seen |= 2
                p = js_integer(p, end, &out.time_ms)
                if p == NULL:
                    return NULL
            elif not is_bbo and js_is(k, kn, b"levels") and not seen & 4:
                seen |= 4
                p = js_open(p, end, c'[', JS_ANY_WS)  # [bids, asks]
                if p == NULL:
                    return NULL
                p = _side(p, end, self.book.px_decimals, self.book.capacity, True,
                          self.book._sbid_px, self.book._sbid_sz, self.book._sbid_n, &out.n_bids)
                if p == NULL:
                    return NULL
                p = js_next(p, end, c']', &inner, JS_ANY_WS)
                if p == NULL or inner:
                    return NULL
                p = _side(p, end, self.book.px_decimals, self.book.capacity, False,
                          self.book._sask_px, self.book._sask_sz, self.book._sask_n, &out.n_asks)
                if p == NULL:
                    return NULL
                p = js_next(p, end, c']', &inner, JS_ANY_WS)
                if p == NULL or not inner or self.book._sbid_px[0] >= self.book._sask_px[0]:
                    return NULL
            elif is_bbo and js_is(k, kn, b"bbo") and not seen & 4:
                seen |= 4
                p = js_open(p, end, c'[', JS_ANY_WS)  # [bid or null, ask or null]
                if p == NULL:
                    return NULL
                p = _touch(p, end, self.book.px_decimals, &out.has_bid, &out.bid_px, &out.bid_sz, &out.bid_n)
                if p == NULL:
                    return NULL
                p = js_next(p, end, c']', &inner, JS_ANY_WS)
                if p == NULL or inner:
                    return NULL
                p = _touch(p, end, self.book.px_decimals, &out.has_ask, &out.ask_px, &out.ask_sz, &out.ask_n)
                if p == NULL:
                    return NULL
                p = js_next(p, end, c']', &inner, JS_ANY_WS)
                if p == NULL or not inner or not (out.has_bid or out.has_ask):
                    return NULL
                if out.has_bid and out.has_ask and out.bid_px >= out.ask_px:
                    return NULL
            else:
                return NULL
            p = js_next(p, end, c'}', &done, JS_ANY_WS)
            if p == NULL:
                return NULL
        if seen != 7 or out.time_ms < self.book.time_ms:
            return NULL
        return p

    cdef const char* _scan_trades(self, const char* p, const char* end, int* rows) noexcept:
        """trades data: every row of our coin and pushable, times never going backwards."""
        cdef double last_t = -INFINITY
        cdef int i = 0
        cdef bint done
        if self.tape.total > 0:
            last_t = self.tape._t[(self.tape.total - 1) % self.tape.capacity]
        p = js_open(p, end, c'[', JS_ANY_WS)
        if p == NULL:
            return NULL
        p = js_empty(p, end, c']', &done)
        while not done:
            if i >= FR_SCAN_MAX_TRADES:
                return NULL
            p = self._scan_row(p, end, &self._trades[i])
            if p == NULL or self._trades[i].t < last_t:
                return NULL
            last_t = self._trades[i].t
            i += 1
            p = js_next(p, end, c']', &done, JS_ANY_WS)
            if p == NULL:
                return NULL
        rows[0] = i
        return p

    cdef const char* _scan_row(self, const char* p, const char* end, ScanTrade* row) noexcept:
        """One trade row with coin, side, px, sz, time, tid (hash and users optional)."""
        cdef const char* fast = _row_compact(self, p, end, row)
        if fast != NULL:
            return fast
        return _row_general(self, p, end, row)

    def reject_counts(self) -> dict:
        """Frames counted by reason (malformed ones plus unknown channel / wrong coin)."""
        return {REJECT_NAMES[i]: self._reject_counts[i] for i in range(FR_N_REJECT_REASONS)}

    def __repr__(self) -> str:
        return (f"FrameRouter({self.coin!r}, frames={self.frames}, book_updates={self.book_updates}, "
                f"trade_updates={self.trade_updates}, malformed={self.malformed})")


cdef inline const char* _row_compact(FrameRouter router, const char* p, const char* end,
                                     ScanTrade* row) noexcept:
    """_scan_row's fast form: a compact row, keys in any order, or NULL for "not this shape"."""
    cdef const char* s
    cdef Py_ssize_t sn
    cdef int seen = 0
    cdef long long t_ms = 0
    cdef char c
    cdef PyObject* coin = <PyObject*>router._coin_text
    row.liq = False
    if p >= end or p[0] != c'{':
        return NULL
    p += 1
    while True:
        c = p[1] if end - p > 1 else 0
        if c == c'c' and not seen & 1 and js_at(p, end, b'"coin":', 7):
            seen |= 1
            p = js_quoted_is(p + 7, end, c_bytes_data(coin), c_bytes_len(coin))
        elif c == c's' and not seen & 2 and js_at(p, end, b'"side":"', 8):
            seen |= 2
            if end - p < 10 or p[9] != c'"' or (p[8] != c'B' and p[8] != c'A'):
                return NULL
            row.side = 1 if p[8] == c'B' else -1
            p += 10
        elif c == c'p' and not seen & 4 and js_at(p, end, b'"px":', 5):
            seen |= 4
            p = js_quoted_scaled(p + 5, end, router.tape.px_decimals, &row.px)
            if p == NULL or row.px <= 0:
                return NULL
        elif c == c's' and not seen & 8 and js_at(p, end, b'"sz":', 5):
            seen |= 8
            p = js_quoted_double(p + 5, end, &row.sz)
            if p == NULL or not isfinite(row.sz) or not row.sz > 0.0:
                return NULL
        elif c == c't' and not seen & 16 and js_at(p, end, b'"time":', 7):
            seen |= 16
            p = js_integer(p + 7, end, &t_ms)
            row.t = t_ms / 1000.0
        elif c == c't' and not seen & 32 and js_at(p, end, b'"tid":', 6):
            seen |= 32
            p = js_integer(p + 6, end, &row.tid)
        elif c == c'h' and not seen & 64 and js_at(p, end, b'"hash":', 7):
            seen |= 64
            p = js_string_long(p + 7, end, &s, &sn)
        elif c == c'u' and not seen & 128 and js_at(p, end, b'"users":[', 9):
            seen |= 128
            p += 9
            if p < end and p[0] == c']':
                p += 1
            else:
                while True:
                    p = js_string_long(p, end, &s, &sn)
                    if p == NULL or p >= end:
                        return NULL
                    if router.tape._n_liq > 0 and router.tape._is_liquidator_text(s, sn):
                        row.liq = True
                    if p[0] == c']':
                        p += 1
                        break
                    if p[0] != c',':
                        return NULL
                    p += 1
        else:
            return NULL
        if p == NULL or p >= end:
            return NULL
        if p[0] == c'}':
            break
        if p[0] != c',':
            return NULL
        p += 1
    if seen & 63 != 63:
        return NULL
    return p + 1


cdef const char* _row_general(FrameRouter router, const char* p, const char* end, ScanTrade* row) noexcept:
    """_scan_row for any shape of the subset (whitespace, any key order)."""
    cdef const char* k
    cdef const char* s
    cdef Py_ssize_t kn, sn
    cdef int seen = 0
    cdef long long t_ms = 0
    cdef bint done = False
    cdef bint users_done
    cdef PyObject* coin = <PyObject*>router._coin_text
    row.liq = False
    p = js_open(p, end, c'{', JS_ANY_WS)
    if p == NULL:
        return NULL
    while not done:
        p = js_key(p, end, &k, &kn, JS_ANY_WS)
        if p == NULL:
            return NULL
        if js_is(k, kn, b"coin") and not seen & 1:
            seen |= 1
            p = js_string(p, end, &s, &sn)
            if p == NULL or not js_eq(s, sn, c_bytes_data(coin), c_bytes_len(coin)):
                return NULL
        elif js_is(k, kn, b"side") and not seen & 2:
            seen |= 2
            p = js_string(p, end, &s, &sn)
            if p == NULL or sn != 1 or (s[0] != c'B' and s[0] != c'A'):
                return NULL
            row.side = 1 if s[0] == c'B' else -1
        elif js_is(k, kn, b"px") and not seen & 4:
            seen |= 4
            p = js_string(p, end, &s, &sn)
            if p == NULL or dec_parse_scaled(s, sn, router.tape.px_decimals, &row.px) != DEC_OK \
                    or row.px <= 0:
                return NULL
        elif js_is(k, kn, b"sz") and not seen & 8:
            seen |= 8
            p = js_string(p, end, &s, &sn)
            if p == NULL or dec_parse_double(s, sn, &row.sz) != DEC_OK or not isfinite(row.sz) \
                    or not row.sz > 0.0:
                return NULL
        elif js_is(k, kn, b"time") and not seen & 16:
            seen |= 16
            p = js_integer(p, end, &t_ms)
            if p == NULL:
                return NULL
            row.t = t_ms / 1000.0
        elif js_is(k, kn, b"tid") and not seen & 32:
            seen |= 32
            p = js_integer(p, end, &row.tid)
            if p == NULL:
                return NULL
        elif js_is(k, kn, b"hash") and not seen & 64:
            seen |= 64
            p = js_string(p, end, &s, &sn)
            if p == NULL:
                return NULL
        elif js_is(k, kn, b"users") and not seen & 128:
            seen |= 128
            p = js_open(p, end, c'[', JS_ANY_WS)
            if p == NULL:
                return NULL
            p = js_empty(p, end, c']', &users_done)
            while not users_done:
                p = js_string(p, end, &s, &sn)
                if p == NULL:
                    return NULL
                if router.tape._n_liq > 0 and router.tape._is_liquidator_text(s, sn):
                    row.liq = True
                p = js_next(p, end, c']', &users_done, JS_ANY_WS)
                if p == NULL:
                    return NULL
        else:
            return NULL
        p = js_next(p, end, c'}', &done, JS_ANY_WS)
        if p == NULL:
            return NULL
    if seen & 63 != 63:
        return NULL
    return p


# ---- the level and row readers one by one, for tests ----------------------------------------------
# form: 0 = as the scanner reads (fast form, else general), 1 = fast form only, 2 = general only.

def read_level(bytes text, int px_decimals, int form=0) -> tuple:
    """A level at the start of text: (bytes consumed, px ticks, sz, n), or (-1, None, None, None)."""
    cdef const char* p = c_bytes_data(<PyObject*>text)
    cdef const char* end = p + c_bytes_len(<PyObject*>text)
    cdef const char* q
    cdef long long px = 0
    cdef double sz = 0.0
    cdef int n = 0
    if form == 1:
        q = _level_compact(p, end, px_decimals, &px, &sz, &n)
    elif form == 2:
        q = _level_general(p, end, px_decimals, &px, &sz, &n)
    else:
        q = _level(p, end, px_decimals, &px, &sz, &n)
    return (-1, None, None, None) if q == NULL else (q - p, px, sz, n)


def read_row(FrameRouter router, bytes text, int form=0) -> tuple:
    """A trade row at the start of text, read for router (its coin, tape and liquidators):
    (bytes consumed, (t, px ticks, sz, side, tid, liq)), or (-1, None)."""
    cdef const char* p = c_bytes_data(<PyObject*>text)
    cdef const char* end = p + c_bytes_len(<PyObject*>text)
    cdef const char* q
    cdef ScanTrade row
    if router.tape is None or not router.scan:
        raise ValueError("read_row needs a scanning router with a tape")
    row.t = row.sz = 0.0
    row.px = row.tid = 0
    row.side = row.liq = 0
    if form == 1:
        q = _row_compact(router, p, end, &row)
    elif form == 2:
        q = _row_general(router, p, end, &row)
    else:
        q = router._scan_row(p, end, &row)
    if q == NULL:
        return (-1, None)
    return (q - p, (row.t, row.px, row.sz, row.side, row.tid, bool(row.liq)))
