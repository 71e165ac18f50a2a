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

    cdef int _malformed(self, int reason) noexcept
    cpdef int on_frame(self, object raw)
    cpdef int on_message(self, object msg)
    cdef int _dispatch(self, object msg)
