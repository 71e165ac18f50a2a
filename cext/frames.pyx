# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Route Hyperliquid websocket frames: one orjson decode, then a channel switch.

l2Book / bbo / trades for the router's coin are applied straight into the Book and
Tape kernels; every other channel's decoded ``data`` is left in ``payload`` for the
Python layer.  Malformed frames are counted by reason and never raise.
"""

from orjson import loads as _loads

from hlfast.book cimport BOOK_REJ_WRONG_COIN, Book
from hlfast.decimal cimport PyObject, c_dict_get, c_is_dict, c_is_list, c_list_item, c_list_len
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


cdef class FrameRouter:
    """Dispatch frames of one coin's market-data / user connection."""

    def __cinit__(self, Book book, Tape tape, str coin=None):
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

    cdef int _malformed(self, int reason) noexcept:
        self._reject_counts[reason] += 1
        self.malformed += 1
        self.channel = FR_CH_MALFORMED
        return FR_CH_MALFORMED

    cpdef int on_frame(self, object raw):
        """Decode one raw frame (bytes or str) and dispatch it; returns the channel code."""
        self.frames += 1
        self.payload = None
        self.applied = 0
        self.last_pushed = 0
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

    def reject_counts(self) -> dict:
        """Frames counted by reason (malformed ones plus unknown channel / wrong coin)."""
        return {REJECT_NAMES[i]: self._reject_counts[i] for i in range(FR_N_REJECT_REASONS)}

    def __repr__(self) -> str:
        return (f"FrameRouter({self.coin!r}, frames={self.frames}, book_updates={self.book_updates}, "
                f"trade_updates={self.trade_updates}, malformed={self.malformed})")
