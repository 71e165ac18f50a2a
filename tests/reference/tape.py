"""Plain-Python reference for hlfast.tape: same row checks and window rules, Python lists."""

from __future__ import annotations

import math

from tests.reference.book import NUM_NON_FINITE, NUM_OK, parse_double, parse_scaled

OK = 0
REJ_MISSING_KEY = 1
REJ_BAD_NUMBER = 2
REJ_NON_FINITE = 3
REJ_BAD_SIZE = 4
REJ_BAD_PRICE = 5
REJ_BAD_SIDE = 6
REJ_WRONG_COIN = 7
REJ_STALE = 8
REJ_BAD_SHAPE = 9

REJECT_NAMES = (
    "ok", "missing_key", "bad_number", "non_finite", "bad_size", "bad_price", "bad_side",
    "wrong_coin", "stale", "bad_shape",
)

Trade = tuple[float, int, float, int, int, bool]  # (time_s, px_ticks, sz, side, tid, is_liq)
_REQUIRED = ("coin", "side", "px", "sz", "time", "tid")


def _is_int64(obj: object) -> bool:
    return type(obj) is int and -(2**63) <= obj <= 2**63 - 1


class RefTape:
    def __init__(self, sz_decimals: int, capacity: int = 4096, liquidators: tuple = ()) -> None:
        self.px_decimals = 6 - sz_decimals
        self.ticks_per_unit = 10.0**self.px_decimals
        self.capacity = capacity
        self.liquidators = {a.lower() for a in liquidators}
        self.trades: list[Trade] = []  # every pushed trade; queries look at the last `capacity`
        self.rejects: dict[str, int] = {name: 0 for name in REJECT_NAMES[1:]}

    def _reject(self, code: int) -> int:
        self.rejects[REJECT_NAMES[code]] += 1
        return code

    @property
    def total(self) -> int:
        return len(self.trades)

    @property
    def retained(self) -> list[Trade]:
        return self.trades[-self.capacity:]

    def push(self, t: float, px_ticks: int, sz: float, side: int, tid: int, is_liq: bool = False) -> int:
        if not math.isfinite(t):
            return self._reject(REJ_NON_FINITE)
        if px_ticks <= 0:
            return self._reject(REJ_BAD_PRICE)
        if not math.isfinite(sz):
            return self._reject(REJ_NON_FINITE)
        if not sz > 0.0:
            return self._reject(REJ_BAD_SIZE)
        if side not in (1, -1):
            return self._reject(REJ_BAD_SIDE)
        if self.trades and t < self.trades[-1][0]:
            return self._reject(REJ_STALE)
        self.trades.append((t, px_ticks, sz, side, tid, bool(is_liq)))
        return OK

    def _is_liq(self, users: object) -> bool:
        if not self.liquidators or not isinstance(users, list):
            return False
        return any(isinstance(u, str) and u.isascii() and u.lower() in self.liquidators for u in users)

    def apply_row(self, row: object, coin: str) -> int:
        if not isinstance(row, dict):
            return self._reject(REJ_BAD_SHAPE)
        if any(k not in row for k in _REQUIRED):
            return self._reject(REJ_MISSING_KEY)
        if not isinstance(row["coin"], str) or row["coin"] != coin:
            return self._reject(REJ_WRONG_COIN)
        side = {"B": 1, "A": -1}.get(row["side"]) if isinstance(row["side"], str) else None
        if side is None:
            return self._reject(REJ_BAD_SIDE)
        status, px = parse_scaled(row["px"], self.px_decimals)
        if status != NUM_OK:
            return self._reject(REJ_NON_FINITE if status == NUM_NON_FINITE else REJ_BAD_NUMBER)
        if px <= 0:
            return self._reject(REJ_BAD_PRICE)
        status, sz = parse_double(row["sz"])
        if status != NUM_OK:
            return self._reject(REJ_NON_FINITE if status == NUM_NON_FINITE else REJ_BAD_NUMBER)
        if not _is_int64(row["time"]) or not _is_int64(row["tid"]):
            return self._reject(REJ_BAD_NUMBER)
        return self.push(row["time"] / 1000.0, px, sz, side, row["tid"], self._is_liq(row.get("users")))

    def apply_trades(self, data: object, coin: str) -> int:
        if not isinstance(data, list):
            self._reject(REJ_BAD_SHAPE)
            return 0
        return sum(1 for row in data if self.apply_row(row, coin) == OK)

    # --- window queries: now - window < t <= now, newest first ---
    def _in_window(self, now: float, window: float, side: int = 0) -> list[Trade]:
        lo = now - window
        return [tr for tr in reversed(self.retained) if lo < tr[0] <= now and (side == 0 or tr[3] == side)]

    def volume_in_window(self, now: float, window: float, side: int = 0) -> float:
        total = 0.0
        for tr in self._in_window(now, window, side):
            total += tr[2]
        return total

    def count_in_window(self, now: float, window: float, side: int = 0) -> int:
        return len(self._in_window(now, window, side))

    def flow_imbalance(self, now: float, window: float) -> float:
        buy = sell = 0.0
        for tr in self._in_window(now, window):
            if tr[3] > 0:
                buy += tr[2]
            else:
                sell += tr[2]
        if not buy + sell > 0.0:
            return 0.0
        return (buy - sell) / (buy + sell)

    def reject_counts(self) -> dict[str, int]:
        return dict(self.rejects)
