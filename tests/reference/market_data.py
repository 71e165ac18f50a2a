"""Plain reference implementations for the market-data code, written with Decimal for clarity.

- Hyperliquid perp price rules straight from the spec: a price is valid when it is an integer, or when
  it has at most 5 significant figures and at most ``6 - szDecimals`` decimals.
- The Binance USD-M local book recipe (snapshot + diff stream) and the Hyperliquid-grid snapshots
  built from it, used to check hlfast.convert.
"""

from __future__ import annotations

import gzip
import json
import math
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal


def price_of(px_ticks: int, px_decimals: int) -> Decimal:
    return Decimal(px_ticks).scaleb(-px_decimals)


def is_valid_price(price: Decimal, px_decimals: int) -> bool:
    if price <= 0:
        return False
    if price == price.to_integral_value():
        return True
    sign, digits, exponent = price.normalize().as_tuple()
    decimals = -exponent if exponent < 0 else 0
    significant = len(digits) if exponent < 0 else len(digits) + exponent
    return decimals <= px_decimals and significant <= 5


def tick_at(price: Decimal, px_decimals: int) -> Decimal:
    """10^max(floor(log10 P) - 4, -px_decimals), never coarser than 1 (integers are always valid)."""
    exponent = max(math.floor(price.log10()) - 4, -px_decimals)
    return Decimal(1).scaleb(min(exponent, 0))


def floor_to_grid(price: Decimal, px_decimals: int) -> Decimal:
    finest = Decimal(1).scaleb(-px_decimals)
    price = price.quantize(finest, rounding=ROUND_FLOOR)
    tick = tick_at(price, px_decimals)
    return (price / tick).to_integral_value(rounding=ROUND_FLOOR) * tick


def ceil_to_grid(price: Decimal, px_decimals: int) -> Decimal:
    finest = Decimal(1).scaleb(-px_decimals)
    price = price.quantize(finest, rounding=ROUND_CEILING)
    tick = tick_at(price, px_decimals)
    return (price / tick).to_integral_value(rounding=ROUND_CEILING) * tick


def read_lines(path: str) -> list[tuple[int, dict]]:
    opener = gzip.open if path.endswith(".gz") else open
    out = []
    with opener(path, "rt") as f:
        for line in f:
            stamp, _, body = line.partition(" ")
            out.append((int(stamp), json.loads(body)))
    return out


def aggregate(levels: list[tuple[Decimal, Decimal]], bids: bool, px_decimals: int, sz_decimals: int,
              depth: int) -> list[tuple[Decimal, Decimal, int]]:
    """Best-first Binance levels → Hyperliquid buckets (price, size rounded half up, merged count)."""
    lot = Decimal(1).scaleb(-sz_decimals)
    out: list[tuple[Decimal, Decimal, int]] = []
    current: list = []  # [price, size, count] of the bucket being filled

    def close() -> None:
        size = current[1].quantize(lot, rounding=ROUND_HALF_UP)
        if size > 0:
            out.append((current[0], size, current[2]))

    for px, qty in levels:
        key = floor_to_grid(px, px_decimals) if bids else ceil_to_grid(px, px_decimals)
        if current and key != current[0]:
            close()
            if len(out) == depth:
                return out
            current = []
        if not current:
            current = [key, Decimal(0), 0]
        current[1] += qty
        current[2] += 1
    if current and len(out) < depth:
        close()
    return out


def binance_reference(path: str, px_decimals: int, sz_decimals: int, cadence_ms: int, depth: int) -> dict:
    """Rebuild the book by the Binance recipe; snapshots at grid points; trades mapped to HL fields.

    Returns {"books": [(time, bids, asks)], "trades": [(side, px, sz, tid, time)], "ticker": (checked, ok)}.
    """
    bids: dict[Decimal, Decimal] = {}
    asks: dict[Decimal, Decimal] = {}
    buffered: list[dict] = []
    snapshot_id = None
    last_u = None
    next_grid = None
    books = []
    trades = []
    checked = agreed = 0

    def snapshot(time_ms: int) -> None:
        b = aggregate(sorted(bids.items(), reverse=True), True, px_decimals, sz_decimals, depth)
        a = aggregate(sorted(asks.items()), False, px_decimals, sz_decimals, depth)
        books.append((time_ms, b, a))

    def apply(ev: dict) -> None:
        nonlocal last_u, next_grid
        if last_u is None:
            if ev["u"] < snapshot_id:
                return
            assert ev["U"] <= snapshot_id <= ev["u"]
        else:
            assert ev["pu"] == last_u
            while next_grid is not None and ev["T"] >= next_grid:
                snapshot(next_grid)
                next_grid += cadence_ms
        for side, changes in ((bids, ev["b"]), (asks, ev["a"])):
            for p, q in changes:
                if Decimal(q) == 0:
                    side.pop(Decimal(p), None)
                else:
                    side[Decimal(p)] = Decimal(q)
        if last_u is None:
            next_grid = (ev["T"] // cadence_ms + 1) * cadence_ms
        last_u = ev["u"]

    for _ns, msg in read_lines(path):
        if "lastUpdateId" in msg:
            snapshot_id = msg["lastUpdateId"]
            bids = {Decimal(p): Decimal(q) for p, q in msg["bids"] if Decimal(q) != 0}
            asks = {Decimal(p): Decimal(q) for p, q in msg["asks"] if Decimal(q) != 0}
            for ev in buffered:
                apply(ev)
            buffered = []
            continue
        data = msg["data"]
        if data["e"] == "depthUpdate":
            if snapshot_id is None:
                buffered.append(data)
            else:
                apply(data)
        elif data["e"] == "trade" and books:
            seller = data["m"]
            px = Decimal(data["p"])
            grid_px = floor_to_grid(px, px_decimals) if seller else ceil_to_grid(px, px_decimals)
            sz = Decimal(data["q"]).quantize(Decimal(1).scaleb(-sz_decimals), rounding=ROUND_HALF_UP)
            trades.append(("A" if seller else "B", grid_px, sz, data["t"], data["T"]))
        elif data["e"] == "bookTicker" and last_u is not None and data["u"] == last_u:
            checked += 1
            agreed += max(bids) == Decimal(data["b"]) and min(asks) == Decimal(data["a"])
    return {"books": books, "trades": trades, "ticker": (checked, agreed)}
