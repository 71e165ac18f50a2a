# cython: language_level=3
"""Frame dispatch: raw websocket frame -> channel code, market data applied in C."""

from hlfast.book cimport Book
from hlfast.tape cimport Tape

cdef enum:
    FR_CH_MALFORMED = -1
    FR_CH_UNKNOWN = 0
    FR_CH_L2BOOK = 1
    FR_CH_TRADES = 2
    FR_CH_BBO = 3
    FR_CH_ORDER_UPDATES = 4
    FR_CH_USER_FILLS = 5
    FR_CH_USER = 6
    FR_CH_POST = 7
    FR_CH_PONG = 8
    FR_CH_SUB_RESPONSE = 9
    FR_CH_ERROR = 10
    FR_CH_ALL_MIDS = 11

    FR_REJ_BANNER = 0
    FR_REJ_INVALID_JSON = 1
    FR_REJ_NOT_OBJECT = 2
    FR_REJ_MISSING_CHANNEL = 3
    FR_REJ_MISSING_DATA = 4
    FR_REJ_UNKNOWN_CHANNEL = 5
    FR_REJ_WRONG_COIN = 6
    FR_N_REJECT_REASONS = 7

    # Raw-frame scanner: "not handled, nothing changed" (never a channel code) and the
    # most rows of one trades frame it buffers (longer frames take the orjson path).
    FR_SCAN_FALLBACK = -2
    FR_SCAN_MAX_TRADES = 1024


# One trade row of a scanned frame, held until every row of the frame is known good.
cdef struct ScanTrade:
    double t            # exchange time, seconds
    long long px        # ticks
    double sz           # coin units
    long long tid
    int side            # +1 aggressor buy, -1 aggressor sell
    bint liq            # a configured liquidator is among the users


# What a scanned l2Book / bbo frame holds until the whole frame has been read.
cdef struct ScanBook:
    long long time_ms
    int n_bids          # l2Book: levels written to the book's scratch arrays
    int n_asks
    bint has_bid        # bbo: which sides carry a level
    bint has_ask
    long long bid_px    # bbo touch (ticks, coin units, order count)
    double bid_sz
    int bid_n
    long long ask_px
    double ask_sz
    int ask_n


cdef class FrameRouter:
    cdef readonly Book book            # may be None: l2Book/bbo then go to payload
    cdef readonly Tape tape            # may be None: trades then go to payload
    cdef readonly str coin
    cdef readonly object payload       # decoded `data` of the last non-market frame
    cdef readonly int channel          # code of the last frame
    cdef readonly int applied          # last kernel result: 0 = applied, else reject code
    cdef readonly int last_pushed      # trades pushed by the last trades frame
    cdef readonly long long frames
    cdef readonly long long book_updates
    cdef readonly long long trade_updates   # trades frames that pushed >= 1 trade
    cdef readonly long long trades_pushed
    cdef readonly long long malformed
    cdef long long[FR_N_REJECT_REASONS] _reject_counts
    # --- raw-frame scanner (declared last: the fields above keep their offsets) ---
    cdef readonly bint scan            # l2Book/bbo/trades parsed straight from the frame bytes
    cdef readonly long long scanned    # frames handled by the scanner (no orjson decode)
    cdef bytes _coin_text              # the coin as ASCII bytes (scanning is off otherwise)
    cdef ScanTrade* _trades            # FR_SCAN_MAX_TRADES rows when a tape is attached

    cdef int _malformed(self, int reason) noexcept
    cpdef int on_frame(self, object raw)
    cpdef int on_message(self, object msg)
    cdef int _dispatch(self, object msg)
    cdef int _scan(self, const char* p, const char* end) noexcept
    cdef const char* _scan_book(self, const char* p, const char* end, bint is_bbo,
                                ScanBook* out) noexcept
    cdef const char* _scan_trades(self, const char* p, const char* end, int* rows) noexcept
    cdef const char* _scan_row(self, const char* p, const char* end, ScanTrade* row) noexcept
