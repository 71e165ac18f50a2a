"""Plain-Python reading of recorded market frames, the way the simulated venue's general path reads them.

Values use the venue's own expressions (``round(float(px) * 10**px_decimals)`` for ticks, sizes
``round(float(sz), sz_decimals)`` for trades and ``int(round(float(sz) * 10**sz_decimals))`` lots for
books), so a scanner that agrees with this agrees with the venue.
"""

from __future__ import annotations

from typing import Any

import orjson


def read_trades(raw: bytes, coin: str, sz_decimals: int) -> tuple[list[tuple[int, int, int]], int] | None:
    """([(side, px ticks, lots)], time of the last row) when every row is a valid trade of `coin`."""
    try:
        frame = orjson.loads(raw)
        if frame.get("channel") != "trades":
            return None
        rows = []
        time_ms = 0
        px_scale = 10 ** (6 - sz_decimals)
        for tr in frame["data"]:
            if tr.get("coin") != coin or tr["side"] not in ("B", "A"):
                return None
            sz = round(float(tr["sz"]), sz_decimals)
            if not sz > 0:
                return None
            time_ms = int(tr["time"])
            lots = int(round(sz * 10**sz_decimals))
            rows.append((1 if tr["side"] == "B" else -1, round(float(tr["px"]) * px_scale), lots))
        return (rows, time_ms) if rows else None
    except (orjson.JSONDecodeError, AttributeError, KeyError, TypeError, ValueError):
        return None


def read_book(raw: bytes, coin: str, sz_decimals: int) -> tuple[list[Any], list[Any], int] | None:
    """(bids, asks, time) with levels (px ticks, lots, n), best first, for an l2Book frame of `coin`."""
    try:
        frame = orjson.loads(raw)
        if frame.get("channel") != "l2Book":
            return None
        data = frame["data"]
        if data.get("coin") != coin:
            return None
        px_scale = 10 ** (6 - sz_decimals)
        lot_scale = 10**sz_decimals
        sides = [[(round(float(lv["px"]) * px_scale), int(round(float(lv["sz"]) * lot_scale)), int(lv["n"]))
                  for lv in side] for side in data["levels"]]
        bids, asks = sides
        return bids, asks, int(data["time"])
    except (orjson.JSONDecodeError, AttributeError, KeyError, TypeError, ValueError):
        return None


def format_scaled(value: int, decimals: int) -> str:
    """value × 10**-decimals as the venue writes it: shortest form, at least one decimal."""
    sign = "-" if value < 0 else ""
    whole, frac = divmod(abs(value), 10**decimals)
    if frac == 0:
        return f"{sign}{whole}.0"
    return f"{sign}{whole}.{str(frac).rjust(decimals, '0').rstrip('0')}"
