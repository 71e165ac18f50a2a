"""``hlfast convert``: a Binance USD-M capture → a Hyperliquid-shaped recording.

Input: hftbacktest-collector lines ``<receive_ns> <json>`` carrying ``<sym>@depth`` diffs,
``<sym>@bookTicker``, ``<sym>@trade`` and inline REST depth snapshots.  Output: the recording format
(:mod:`hlfast.recording`) with ``l2Book`` snapshot frames every ``cadence_ms`` of exchange time and
one ``trades`` frame per Binance trade, each stamped with the receive time of the input line that
produced it.

The book is rebuilt exactly as Binance specifies for a local order book: depth events are buffered
until a REST snapshot; events with ``u < lastUpdateId`` are dropped; the first applied event must
straddle ``lastUpdateId``; every later one must have ``pu`` equal to the previous ``u``.  A break is
a gap: snapshots stop until the next REST snapshot line re-synchronises the book.

Snapshots are aggregated onto Hyperliquid's valid price grid for the coin (bids floored, asks
ceiled, sizes summed then rounded to szDecimals, ``n`` = number of Binance levels merged), and trade
prices are moved onto the same grid on the side they hit (a buy is ceiled like an ask, a sell floored
like a bid).  Binance ``m`` (buyer is maker) means the aggressor sold: side ``"A"``.
"""

from __future__ import annotations

import argparse
import sys
from bisect import bisect_left, insort
from collections.abc import Iterable, Iterator

import orjson

from hlfast.recording import FrameReader, FrameWriter
from hlfast.venue.market import (
    DEFAULT_COINS,
    CoinSpec,
    ceil_price,
    floor_price,
    px_to_wire,
    sz_to_wire,
)

FIXED_DECIMALS = 8  # Binance decimal strings are held as integers of 1e-8
_FIXED = 10**FIXED_DECIMALS
ZERO_HASH = "0x" + "0" * 64
PLACEHOLDER_USERS = ["0x" + "0" * 40, "0x" + "0" * 40]


def to_fixed(text: str) -> int:
    """Exact integer of a non-negative decimal string in 1e-8 units (``"61800.20"`` → 6180020000000)."""
    whole, _, frac = text.partition(".")
    if len(frac) > FIXED_DECIMALS:
        if frac[FIXED_DECIMALS:].strip("0"):
            raise ValueError(f"{text!r} has more than {FIXED_DECIMALS} decimals")
        frac = frac[:FIXED_DECIMALS]
    return int(whole or "0") * _FIXED + int(frac.ljust(FIXED_DECIMALS, "0") or "0")


class GridMapper:
    """Fixed-point Binance prices and sizes → Hyperliquid ticks and rounded sizes for one coin."""

    def __init__(self, spec: CoinSpec) -> None:
        self.spec = spec
        self.px_unit = 10 ** (FIXED_DECIMALS - spec.px_decimals)  # fixed units per Hyperliquid tick
        self.sz_unit = 10 ** (FIXED_DECIMALS - spec.sz_decimals)

    def bid_ticks(self, px_fixed: int) -> int:
        return floor_price(max(px_fixed // self.px_unit, 1), self.spec.px_decimals)

    def ask_ticks(self, px_fixed: int) -> int:
        return ceil_price(max(-(-px_fixed // self.px_unit), 1), self.spec.px_decimals)

    def size_lots(self, qty_fixed: int) -> int:
        """Size in units of 10**-szDecimals, rounded half up."""
        return (qty_fixed + self.sz_unit // 2) // self.sz_unit

    def aggregate(
        self, levels: Iterable[tuple[int, int]], bids: bool, max_levels: int
    ) -> list[tuple[int, int, int]]:
        """Best-first (px_fixed, qty_fixed) levels → up to max_levels (px_ticks, size_lots, n) buckets.

        Buckets whose rounded size is zero are dropped.
        """
        to_ticks = self.bid_ticks if bids else self.ask_ticks
        out: list[tuple[int, int, int]] = []
        bucket = -1
        qty = 0
        count = 0
        for px, q in levels:
            ticks = to_ticks(px)
            if ticks != bucket:
                if count:
                    lots = self.size_lots(qty)
                    if lots > 0:
                        out.append((bucket, lots, count))
                        if len(out) == max_levels:
                            return out
                bucket, qty, count = ticks, 0, 0
            qty += q
            count += 1
        if count:
            lots = self.size_lots(qty)
            if lots > 0 and len(out) < max_levels:
                out.append((bucket, lots, count))
        return out


class BinanceBook:
    """Local Binance USD-M order book from a REST snapshot plus diff-depth events (fixed-point maps)."""

    def __init__(self) -> None:
        self.bids: dict[int, int] = {}
        self.asks: dict[int, int] = {}
        # Prices kept sorted ascending next to the maps, so a snapshot reads the top levels without
        # sorting thousands of far-away levels the diff stream accumulates.
        self.bid_prices: list[int] = []
        self.ask_prices: list[int] = []
        self.snapshot_id = -1
        self.last_u = -1  # u of the last applied event; -1 = snapshot loaded, no event applied yet
        self.synced = False

    def load_snapshot(self, snap: dict) -> None:
        self.bids = {to_fixed(p): to_fixed(q) for p, q in snap["bids"]}
        self.asks = {to_fixed(p): to_fixed(q) for p, q in snap["asks"]}
        for side in (self.bids, self.asks):
            for px in [px for px, q in side.items() if q == 0]:
                del side[px]
        self.bid_prices = sorted(self.bids)
        self.ask_prices = sorted(self.asks)
        self.snapshot_id = int(snap["lastUpdateId"])
        self.last_u = -1
        self.synced = True

    def check(self, event: dict) -> str:
        """Where a depthUpdate stands in the sequence: "ok" (next to apply), "stale" or "gap"."""
        if self.last_u < 0:
            if int(event["u"]) < self.snapshot_id:
                return "stale"
            if int(event["U"]) > self.snapshot_id:
                return "gap"
        elif int(event["pu"]) != self.last_u:
            return "gap"
        return "ok"

    def apply(self, event: dict) -> str:
        """Apply one depthUpdate: returns "applied", "stale" (dropped) or "gap" (book now unsynced)."""
        status = self.check(event)
        if status == "gap":
            self.synced = False
            return status
        if status == "stale":
            return status
        for side, prices, changes in (
            (self.bids, self.bid_prices, event["b"]),
            (self.asks, self.ask_prices, event["a"]),
        ):
            for p, q in changes:
                px, qty = to_fixed(p), to_fixed(q)
                if qty:
                    if px not in side:
                        insort(prices, px)
                    side[px] = qty
                elif side.pop(px, None) is not None:
                    del prices[bisect_left(prices, px)]
        self.last_u = int(event["u"])
        return "applied"

    def best_bid(self) -> int | None:
        return self.bid_prices[-1] if self.bid_prices else None

    def best_ask(self) -> int | None:
        return self.ask_prices[0] if self.ask_prices else None

    def iter_bids(self) -> Iterator[tuple[int, int]]:
        """(px_fixed, qty_fixed) best (highest) first."""
        bids = self.bids
        return ((px, bids[px]) for px in reversed(self.bid_prices))

    def iter_asks(self) -> Iterator[tuple[int, int]]:
        """(px_fixed, qty_fixed) best (lowest) first."""
        asks = self.asks
        return ((px, asks[px]) for px in self.ask_prices)


class _Converter:
    def __init__(self, writer: FrameWriter, spec: CoinSpec, symbol: str, cadence_ms: int, levels: int) -> None:
        self.writer = writer
        self.spec = spec
        self.grid = GridMapper(spec)
        self.symbol = symbol.upper()
        self.cadence_ms = cadence_ms
        self.levels = levels
        self.book = BinanceBook()
        self.buffer: list[dict] = []
        self.next_grid = -1  # next exchange-time grid point to publish; -1 = not yet known
        self.last_published = -1
        self.first_ns = -1
        self.last_ns = -1
        self.counts = {
            "lines": 0, "malformed": 0, "frames": 0, "books": 0, "trades": 0, "depth_events": 0,
            "depth_stale": 0, "gaps": 0, "snapshots_rest": 0, "grid_points_skipped": 0,
            "trades_before_book": 0, "trades_dropped": 0, "other_symbol": 0, "other_lines": 0,
            "ticker_checked": 0, "ticker_mismatch": 0,
        }

    # -- output ----------------------------------------------------------------------------------

    def _write(self, recv_ns: int, frame: dict) -> None:
        self.writer.write(recv_ns, orjson.dumps(frame))
        if self.first_ns < 0:
            self.first_ns = recv_ns
        self.last_ns = recv_ns
        self.counts["frames"] += 1

    def _levels_json(self, bids: bool) -> list[dict]:
        ordered = self.book.iter_bids() if bids else self.book.iter_asks()
        spec = self.spec
        scale = 10.0**spec.sz_decimals
        return [
            {"n": n, "px": px_to_wire(px, spec), "sz": sz_to_wire(lots / scale, spec)}
            for px, lots, n in self.grid.aggregate(ordered, bids, self.levels)
        ]

    def _publish_until(self, time_ms: int, recv_ns: int) -> None:
        """Snapshots for every grid point <= time_ms, from the book before the event at time_ms."""
        if self.next_grid > time_ms:
            return
        levels = [self._levels_json(True), self._levels_json(False)]
        while self.next_grid <= time_ms:
            data = {"coin": self.spec.name, "levels": levels, "time": self.next_grid}
            self._write(recv_ns, {"channel": "l2Book", "data": data})
            self.counts["books"] += 1
            self.last_published = self.next_grid
            self.next_grid += self.cadence_ms

    # -- input -----------------------------------------------------------------------------------

    def on_depth(self, event: dict, recv_ns: int) -> None:
        self.counts["depth_events"] += 1
        if not self.book.synced:
            self.buffer.append(event)
            return
        self._apply(event, recv_ns)

    def _apply(self, event: dict, recv_ns: int) -> None:
        time_ms = int(event["T"])
        status = self.book.check(event)
        if status == "ok" and self.book.last_u >= 0 and self.next_grid >= 0:
            # Grid points before this event: the book as of the previous event (never across a gap).
            self._publish_until(time_ms, recv_ns)
        status = self.book.apply(event)
        if status == "stale":
            self.counts["depth_stale"] += 1
        elif status == "gap":
            self.counts["gaps"] += 1
            self.next_grid = -1
            self.buffer = [event]
        elif self.next_grid < 0:
            self.next_grid = (time_ms // self.cadence_ms + 1) * self.cadence_ms
            if self.last_published >= 0:  # resynchronised after a gap
                missed = (self.next_grid - self.last_published) // self.cadence_ms - 1
                self.counts["grid_points_skipped"] += max(missed, 0)

    def on_rest_snapshot(self, snap: dict, recv_ns: int) -> None:
        self.counts["snapshots_rest"] += 1
        if self.book.synced and self.book.last_u >= 0:
            return  # already in sequence: a redundant snapshot changes nothing
        self.book.load_snapshot(snap)
        pending, self.buffer = self.buffer, []
        for event in pending:
            if not self.book.synced:
                self.buffer.append(event)
            else:
                self._apply(event, recv_ns)

    def on_trade(self, trade: dict, recv_ns: int) -> None:
        if trade.get("X", "MARKET") != "MARKET":  # liquidation / ADL prints are not market trades
            self.counts["trades_dropped"] += 1
            return
        if self.counts["books"] == 0:
            self.counts["trades_before_book"] += 1
            return
        seller_aggressed = bool(trade["m"])
        px_fixed = to_fixed(trade["p"])
        ticks = self.grid.bid_ticks(px_fixed) if seller_aggressed else self.grid.ask_ticks(px_fixed)
        lots = self.grid.size_lots(to_fixed(trade["q"]))
        if lots <= 0:
            self.counts["trades_dropped"] += 1
            return
        item = {
            "coin": self.spec.name,
            "hash": ZERO_HASH,
            "px": px_to_wire(ticks, self.spec),
            "side": "A" if seller_aggressed else "B",
            "sz": sz_to_wire(lots / 10.0**self.spec.sz_decimals, self.spec),
            "tid": int(trade["t"]),
            "time": int(trade["T"]),
            "users": PLACEHOLDER_USERS,
        }
        self._write(recv_ns, {"channel": "trades", "data": [item]})
        self.counts["trades"] += 1

    def on_ticker(self, ticker: dict) -> None:
        """Cross-check the rebuilt best bid/ask against bookTicker where both share an update id."""
        if not self.book.synced or int(ticker["u"]) != self.book.last_u:
            return
        self.counts["ticker_checked"] += 1
        if self.book.best_bid() != to_fixed(ticker["b"]) or self.book.best_ask() != to_fixed(ticker["a"]):
            self.counts["ticker_mismatch"] += 1

    def feed(self, recv_ns: int, raw: bytes) -> None:
        self.counts["lines"] += 1
        try:
            msg = orjson.loads(raw)
            stream = msg.get("stream")
            if stream is None:
                if "lastUpdateId" in msg:
                    self.on_rest_snapshot(msg, recv_ns)
                else:
                    self.counts["other_lines"] += 1
                return
            data = msg["data"]
            if str(data.get("s", "")).upper() != self.symbol:
                self.counts["other_symbol"] += 1
                return
            kind = data.get("e")
            if kind == "depthUpdate":
                self.on_depth(data, recv_ns)
            elif kind == "trade":
                self.on_trade(data, recv_ns)
            elif kind == "bookTicker":
                self.on_ticker(data)
            else:
                self.counts["other_lines"] += 1
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
            self.counts["malformed"] += 1


def convert_binance(
    in_path: str,
    out_path: str,
    coin: str = "BTC",
    cadence_ms: int = 100,
    levels: int = 20,
    symbol: str | None = None,
    spec: CoinSpec | None = None,
) -> dict:
    """Convert a Binance USD-M capture; returns the counts (frames, books, trades, gaps, span_s, ...)."""
    if cadence_ms <= 0:
        raise ValueError(f"cadence_ms must be > 0, got {cadence_ms}")
    if not 1 <= levels <= 20:
        raise ValueError(f"levels must be within 1..20 (Hyperliquid publishes 20), got {levels}")
    if spec is None:
        if coin not in DEFAULT_COINS:
            raise ValueError(f"unknown coin {coin!r}; known coins: {', '.join(DEFAULT_COINS)}")
        spec = DEFAULT_COINS[coin]
    reader = FrameReader(in_path)
    with FrameWriter(out_path) as writer:
        conv = _Converter(writer, spec, symbol or f"{spec.name}USDT", cadence_ms, levels)
        try:
            for recv_ns, raw in reader:
                conv.feed(recv_ns, raw)
        finally:
            reader.close()
    counts = dict(conv.counts)
    counts["malformed"] += reader.malformed
    counts["span_s"] = (conv.last_ns - conv.first_ns) / 1e9 if conv.first_ns >= 0 else 0.0
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="hlfast convert",
        description="Convert a Binance USD-M capture into Hyperliquid-shaped l2Book/trades recordings.",
    )
    parser.add_argument("--in", dest="in_path", required=True, help="Binance capture (.gz or plain)")
    parser.add_argument("--out", dest="out_path", required=True, help="output recording (.gz = gzip)")
    parser.add_argument("--coin", default="BTC", help="Hyperliquid coin whose price grid to use")
    parser.add_argument("--symbol", default=None, help="Binance symbol (default <COIN>USDT)")
    parser.add_argument("--cadence-ms", type=int, default=100, help="l2Book snapshot period (exchange time)")
    parser.add_argument("--levels", type=int, default=20, help="levels per side (max 20)")
    args = parser.parse_args(argv)
    try:
        counts = convert_binance(args.in_path, args.out_path, args.coin, args.cadence_ms, args.levels, args.symbol)
    except (OSError, ValueError) as exc:
        print(f"hlfast convert: {exc}", file=sys.stderr)
        return 2
    print(
        f"wrote {counts['frames']} frames to {args.out_path}: {counts['books']} l2Book, "
        f"{counts['trades']} trades, {counts['gaps']} gaps, span {counts['span_s']:.1f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
