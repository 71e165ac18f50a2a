"""Plain-Python reference for hlfast.book: the same checks, in the same order, with Decimal.

Numbers: ``[+-]?[0-9]+(\\.[0-9]+)?``; nan/snan/inf/infinity (any case, optional sign) are
non-finite; prices must land on the tick grid exactly (trailing zeros allowed).
"""

from __future__ import annotations

import math
import re
from decimal import Decimal

OK = 0
REJ_MISSING_KEY = 1
REJ_BAD_NUMBER = 2
REJ_EMPTY_SIDE = 3
REJ_CROSSED = 4
REJ_NON_FINITE = 5
REJ_TOO_MANY_LEVELS = 6
REJ_WRONG_COIN = 7
REJ_STALE = 8
REJ_NON_MONOTONIC = 9
REJ_BAD_SIZE = 10
REJ_BAD_PRICE = 11
REJ_BAD_SHAPE = 12

REJECT_NAMES = (
    "ok", "missing_key", "bad_number", "empty_side", "crossed", "non_finite",
    "too_many_levels", "wrong_coin", "stale", "non_monotonic", "bad_size", "bad_price",
    "bad_shape",
)

INT64_MAX = 2**63 - 1
_NUMBER = re.compile(r"[+-]?[0-9]+(\.[0-9]+)?")
_NON_FINITE_WORDS = {"nan", "snan", "inf", "infinity"}

# Number parse outcomes (mirrors the C helper's codes).
NUM_OK, NUM_BAD, NUM_NON_FINITE = 0, 1, 2

Level = tuple[int, float, int]  # (px_ticks, sz, n)


def _classify(text: object) -> int:
    if not isinstance(text, str) or not text.isascii():
        return NUM_BAD
    if _NUMBER.fullmatch(text):
        return NUM_OK
    word = text[1:] if text[:1] in ("+", "-") else text
    return NUM_NON_FINITE if word.lower() in _NON_FINITE_WORDS else NUM_BAD


def parse_scaled(text: object, decimals: int) -> tuple[int, int]:
    """(status, units of 10**-decimals); off-grid and out-of-int64 values are NUM_BAD."""
    status = _classify(text)
    if status != NUM_OK:
        return status, 0
    scaled = Decimal(text).scaleb(decimals)
    if scaled != scaled.to_integral_value():
        return NUM_BAD, 0
    value = int(scaled)
    if abs(value) > INT64_MAX:
        return NUM_BAD, 0
    return NUM_OK, value


def parse_double(text: object) -> tuple[int, float]:
    status = _classify(text)
    if status != NUM_OK:
        return status, 0.0
    if len(text) > 127:  # type: ignore[arg-type]
        return NUM_BAD, 0.0
    return NUM_OK, float(text)  # type: ignore[arg-type]


def _number_code(status: int) -> int:
    return REJ_NON_FINITE if status == NUM_NON_FINITE else REJ_BAD_NUMBER


def _is_int64(obj: object) -> bool:
    return type(obj) is int and -(2**63) <= obj <= INT64_MAX


def parse_level(level: object, px_decimals: int) -> tuple[int, Level | None]:
    if not isinstance(level, dict):
        return REJ_BAD_SHAPE, None
    if "px" not in level or "sz" not in level:
        return REJ_MISSING_KEY, None
    status, px = parse_scaled(level["px"], px_decimals)
    if status != NUM_OK:
        return _number_code(status), None
    if px <= 0:
        return REJ_BAD_PRICE, None
    status, sz = parse_double(level["sz"])
    if status != NUM_OK:
        return _number_code(status), None
    if not math.isfinite(sz):
        return REJ_NON_FINITE, None
    if not sz > 0.0:
        return REJ_BAD_SIZE, None
    n = level.get("n", 0)
    if not _is_int64(n) or not 0 <= n <= 2**31 - 1:
        return REJ_BAD_NUMBER, None
    return OK, (px, sz, n)


class RefBook:
    def __init__(self, coin: str, sz_decimals: int, capacity: int = 64) -> None:
        self.coin = coin
        self.sz_decimals = sz_decimals
        self.px_decimals = 6 - sz_decimals
        self.ticks_per_unit = 10.0**self.px_decimals
        self.capacity = capacity
        self.bids: list[Level] = []
        self.asks: list[Level] = []
        self.time_ms = -(2**63)
        self.updates = 0
        self.rejects: dict[str, int] = {name: 0 for name in REJECT_NAMES[1:]}

    # --- apply ---
    def _reject(self, code: int) -> int:
        self.rejects[REJECT_NAMES[code]] += 1
        return code

    def _check_header(self, data: object) -> tuple[int, int]:
        if not isinstance(data, dict):
            return REJ_BAD_SHAPE, 0
        if "coin" not in data:
            return REJ_MISSING_KEY, 0
        coin = data["coin"]
        if not isinstance(coin, str) or coin != self.coin:
            return REJ_WRONG_COIN, 0
        if "time" not in data:
            return REJ_MISSING_KEY, 0
        t = data["time"]
        if not _is_int64(t):
            return REJ_BAD_NUMBER, 0
        if t < self.time_ms:
            return REJ_STALE, 0
        return OK, t

    def _parse_side(self, levels: object, is_bid: bool) -> tuple[int, list[Level]]:
        if not isinstance(levels, list):
            return REJ_BAD_SHAPE, []
        if len(levels) > self.capacity:
            return REJ_TOO_MANY_LEVELS, []
        if not levels:
            return REJ_EMPTY_SIDE, []
        out: list[Level] = []
        for raw in levels:
            code, level = parse_level(raw, self.px_decimals)
            if code != OK:
                return code, []
            assert level is not None
            if out and ((is_bid and level[0] >= out[-1][0]) or (not is_bid and level[0] <= out[-1][0])):
                return REJ_NON_MONOTONIC, []
            out.append(level)
        return OK, out

    def apply_l2(self, data: object) -> int:
        code, t = self._check_header(data)
        if code != OK:
            return self._reject(code)
        assert isinstance(data, dict)
        if "levels" not in data:
            return self._reject(REJ_MISSING_KEY)
        levels = data["levels"]
        if not isinstance(levels, list) or len(levels) != 2:
            return self._reject(REJ_BAD_SHAPE)
        code, bids = self._parse_side(levels[0], True)
        if code != OK:
            return self._reject(code)
        code, asks = self._parse_side(levels[1], False)
        if code != OK:
            return self._reject(code)
        if bids[0][0] >= asks[0][0]:
            return self._reject(REJ_CROSSED)
        self.bids, self.asks, self.time_ms = bids, asks, t
        self.updates += 1
        return OK

    def apply_bbo(self, data: object) -> int:
        code, t = self._check_header(data)
        if code != OK:
            return self._reject(code)
        assert isinstance(data, dict)
        if "bbo" not in data:
            return self._reject(REJ_MISSING_KEY)
        bbo = data["bbo"]
        if not isinstance(bbo, list) or len(bbo) != 2:
            return self._reject(REJ_BAD_SHAPE)
        raw_bid, raw_ask = bbo
        if raw_bid is None and raw_ask is None:
            return self._reject(REJ_EMPTY_SIDE)
        bid = ask = None
        if raw_bid is not None:
            code, bid = parse_level(raw_bid, self.px_decimals)
            if code != OK:
                return self._reject(code)
        if raw_ask is not None:
            code, ask = parse_level(raw_ask, self.px_decimals)
            if code != OK:
                return self._reject(code)
        if bid is not None and ask is not None and bid[0] >= ask[0]:
            return self._reject(REJ_CROSSED)
        bids = [lv for lv in self.bids
                if not ((bid is not None and lv[0] >= bid[0]) or (ask is not None and lv[0] >= ask[0]))]
        asks = [lv for lv in self.asks
                if not ((ask is not None and lv[0] <= ask[0]) or (bid is not None and lv[0] <= bid[0]))]
        if bid is not None:
            bids.insert(0, bid)
        if ask is not None:
            asks.insert(0, ask)
        self.bids, self.asks = bids[: self.capacity], asks[: self.capacity]
        self.time_ms = t
        self.updates += 1
        return OK

    # --- queries ---
    @property
    def n_bids(self) -> int:
        return len(self.bids)

    @property
    def n_asks(self) -> int:
        return len(self.asks)

    def best_bid_ticks(self) -> int:
        return self.bids[0][0] if self.bids else 0

    def best_ask_ticks(self) -> int:
        return self.asks[0][0] if self.asks else 0

    def best_bid(self) -> float:
        return self.bids[0][0] / self.ticks_per_unit if self.bids else math.nan

    def best_ask(self) -> float:
        return self.asks[0][0] / self.ticks_per_unit if self.asks else math.nan

    def mid(self) -> float:
        if not self.bids or not self.asks:
            return math.nan
        return (self.bids[0][0] + self.asks[0][0]) / (2.0 * self.ticks_per_unit)

    def spread(self) -> float:
        if not self.bids or not self.asks:
            return math.nan
        a, b = self.asks[0][0], self.bids[0][0]
        return 2.0 * (a - b) / float(a + b)

    def spread_bps(self) -> float:
        return self.spread() * 1e4

    def microprice(self) -> float:
        if not self.bids or not self.asks:
            return math.nan
        (pb, qb, _), (pa, qa, _) = self.bids[0], self.asks[0]
        return (pa * qb + pb * qa) / ((qb + qa) * self.ticks_per_unit)

    def imbalance(self, k: int = 5) -> float:
        if not self.bids or not self.asks or k <= 0:
            return math.nan
        b = sum(lv[1] for lv in self.bids[:k])
        a = sum(lv[1] for lv in self.asks[:k])
        return b / (b + a)

    def weighted_imbalance(self, d0_bps: float = 10.0) -> float:
        mid = self.mid()
        if not math.isfinite(mid) or not d0_bps > 0.0:
            return math.nan
        b = a = 0.0
        for px, sz, _ in self.bids:
            b += sz * math.exp(-(abs(px / self.ticks_per_unit - mid) / mid * 1e4) / d0_bps)
        for px, sz, _ in self.asks:
            a += sz * math.exp(-(abs(px / self.ticks_per_unit - mid) / mid * 1e4) / d0_bps)
        if not b + a > 0.0:
            return math.nan
        return b / (b + a)

    def size_at(self, side: int, px_ticks: int) -> float:
        if side not in (1, -1):
            return math.nan
        for px, sz, _ in self.bids if side == 1 else self.asks:
            if px == px_ticks:
                return sz
        return 0.0

    def depth_within_bps(self, side: int, bps: float) -> float:
        mid = self.mid()
        if not math.isfinite(mid) or side not in (1, -1):
            return math.nan
        total = 0.0
        for px, sz, _ in self.bids if side == 1 else self.asks:
            d = (mid - px / self.ticks_per_unit) if side == 1 else (px / self.ticks_per_unit - mid)
            if d / mid * 1e4 > bps:
                break
            total += sz
        return total

    def ticks_to_px(self, ticks: int) -> float:
        return ticks / self.ticks_per_unit

    def px_to_ticks(self, px: float) -> int:
        x = px * self.ticks_per_unit
        if not math.isfinite(x) or abs(x) > 9.0e18:
            return 0
        return math.floor(x + 0.5)

    def levels(self) -> tuple[list[Level], list[Level]]:
        return list(self.bids), list(self.asks)

    def reject_counts(self) -> dict[str, int]:
        return dict(self.rejects)
