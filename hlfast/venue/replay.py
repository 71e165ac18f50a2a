"""Replay a recorded Hyperliquid stream (``hlfast record`` / converted Binance data) as Blocks.

Frames are read in file (receive) order.  ``l2Book`` snapshots with the same exchange ``time`` form
one block (one snapshot per coin); ``trades`` are attached to the first block whose time is at or
after the trade's time, so a block's trades precede its book, as on the exchange.  Blocks are held
in a short reorder window of exchange time (``reorder_ms``) and released in time order.  Other
channels are ignored.

Nothing in a bad file raises: duplicate or stale snapshots, snapshots that break the Block
invariants, bad JSON and unknown coins are counted in ``stats`` and skipped.
"""

from __future__ import annotations

import logging
import os
from collections import deque

import orjson

from hlfast.recording import FrameReader
from hlfast.venue.market import (
    DEFAULT_COINS,
    LIQUIDATOR_ADDRESS,
    MAX_LEVELS,
    Block,
    CoinSpec,
    Level,
    Trade,
    book_problem,
    is_valid_price,
)

log = logging.getLogger(__name__)

_SCAN_FRAMES = 2000  # frames read up front to learn which coins the file carries


def _coin_of(frame: dict) -> str | None:
    channel = frame.get("channel")
    data = frame.get("data")
    if channel == "l2Book" and isinstance(data, dict):
        return data.get("coin")
    if channel == "trades" and isinstance(data, list) and data and isinstance(data[0], dict):
        return data[0].get("coin")
    return None


def scan_coins(path: str | os.PathLike[str], max_frames: int = _SCAN_FRAMES) -> list[str]:
    """Coins seen in the first ``max_frames`` frames, in order of first appearance."""
    seen: dict[str, None] = {}
    reader = FrameReader(path)
    try:
        for i, (_ns, raw) in enumerate(reader):
            if i >= max_frames:
                break
            try:
                coin = _coin_of(orjson.loads(raw))
            except orjson.JSONDecodeError:
                continue
            if isinstance(coin, str):
                seen.setdefault(coin, None)
    finally:
        reader.close()
    return list(seen)


class ReplaySource:
    """MarketSource over a recording.  ``coins`` filters (names or CoinSpecs); None = all known coins."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        coins: list[str] | list[CoinSpec] | None = None,
        specs: dict[str, CoinSpec] | None = None,
        liquidators: frozenset[str] = frozenset({LIQUIDATOR_ADDRESS}),
        reorder_ms: int = 1000,
    ) -> None:
        if not os.path.exists(path):
            raise ValueError(f"replay file not found: {path}")
        self.path = str(path)
        table = {**DEFAULT_COINS, **(specs or {})}
        for c in coins or ():
            if isinstance(c, CoinSpec):
                table[c.name] = c
        in_file = scan_coins(path)
        if not in_file:
            raise ValueError(f"replay file {path} has no l2Book or trades frames in its first {_SCAN_FRAMES}")
        if coins:
            wanted = [c.name if isinstance(c, CoinSpec) else c for c in coins]
            chosen = [c for c in wanted if c in in_file]
            if not chosen:
                raise ValueError(f"replay file {path} carries {in_file}, none of the requested coins {wanted}")
            absent = [c for c in wanted if c not in in_file]
            if absent:
                log.warning("replay file %s has no data for %s; replaying %s", path, absent, chosen)
        else:
            chosen = [c for c in in_file if c in table]
            if chosen and len(chosen) < len(in_file):
                log.warning("replay file %s: no coin spec for %s; replaying %s",
                            path, [c for c in in_file if c not in table], chosen)
            if not chosen:
                chosen = in_file
        unknown = [c for c in chosen if c not in table]
        if unknown:
            raise ValueError(f"replay file {path}: no coin spec (szDecimals) for {unknown}; pass specs=")
        self.coins: list[CoinSpec] = [table[c] for c in chosen]
        self._specs = {c.name: c for c in self.coins}
        self._scale = {c.name: 10 ** c.px_decimals for c in self.coins}
        self._liquidators = liquidators
        self._reorder_ms = reorder_ms
        self._reader = FrameReader(path)
        self._pending: dict[int, Block] = {}  # exchange time -> block being assembled
        self._trades: list[tuple[int, str, Trade]] = []  # (time, coin, trade) not yet in a block
        self._ready: deque[Block] = deque()
        self._last_book: dict[str, int] = {}
        self._released_ms = -1
        self._max_ms = -1
        self._done = False
        self.stats = {
            "frames": 0, "books": 0, "trades": 0, "blocks": 0, "other_channels": 0, "other_coins": 0,
            "bad_json": 0, "bad_frames": 0, "duplicate_books": 0, "stale_books": 0, "late_books": 0,
            "invalid_books": 0, "invalid_trades": 0,
        }

    @property
    def malformed_lines(self) -> int:
        return self._reader.malformed

    def next_block(self) -> Block | None:
        while not self._ready:
            if self._done:
                return None
            self._pull()
        self.stats["blocks"] += 1
        return self._ready.popleft()

    # -- reading ---------------------------------------------------------------------------------

    def _pull(self) -> None:
        """Read frames until at least one block can be released (or the file ends)."""
        for recv_ns, raw in self._reader:
            self.stats["frames"] += 1
            try:
                frame = orjson.loads(raw)
                channel = frame.get("channel") if isinstance(frame, dict) else None
            except orjson.JSONDecodeError:
                self.stats["bad_json"] += 1
                continue
            try:
                if channel == "l2Book":
                    self._on_book(frame["data"], recv_ns)
                elif channel == "trades":
                    self._on_trades(frame["data"])
                else:
                    self.stats["other_channels"] += 1
                    continue
            except (KeyError, TypeError, ValueError, IndexError, AttributeError):
                self.stats["bad_frames"] += 1
                continue
            if self._release(final=False):
                return
        self._done = True
        self._reader.close()
        self._release(final=True)

    def _on_book(self, data: dict, recv_ns: int) -> None:
        coin = data["coin"]
        spec = self._specs.get(coin)
        if spec is None:
            self.stats["other_coins"] += 1
            return
        time_ms = int(data["time"])
        last = self._last_book.get(coin, -1)
        if time_ms == last:
            self.stats["duplicate_books"] += 1
            return
        if time_ms < last:
            self.stats["stale_books"] += 1
            return
        if time_ms <= self._released_ms:
            self.stats["late_books"] += 1
            return
        scale = self._scale[coin]
        szd = spec.sz_decimals
        bids_raw, asks_raw = data["levels"]
        bids: list[Level] = [
            (round(float(lv["px"]) * scale), round(float(lv["sz"]), szd), int(lv["n"]))
            for lv in bids_raw[:MAX_LEVELS]
        ]
        asks: list[Level] = [
            (round(float(lv["px"]) * scale), round(float(lv["sz"]), szd), int(lv["n"]))
            for lv in asks_raw[:MAX_LEVELS]
        ]
        problem = book_problem(bids, asks, spec)
        if problem is not None:
            self.stats["invalid_books"] += 1
            if self.stats["invalid_books"] == 1:
                log.warning("replay %s: skipping an invalid %s book at %d (%s)", self.path, coin, time_ms, problem)
            return
        self._last_book[coin] = time_ms
        block = self._pending.get(time_ms)
        if block is None:
            block = self._pending[time_ms] = Block(time_ms, {}, {c.name: [] for c in self.coins}, recv_ns)
        block.books[coin] = (bids, asks)
        block.recv_ns = max(block.recv_ns, recv_ns)
        self.stats["books"] += 1
        if time_ms > self._max_ms:
            self._max_ms = time_ms

    def _on_trades(self, data: list) -> None:
        liquidators = self._liquidators
        for tr in data:
            coin = tr["coin"]
            spec = self._specs.get(coin)
            if spec is None:
                self.stats["other_coins"] += 1
                continue
            side = tr["side"]
            px = round(float(tr["px"]) * self._scale[coin])
            sz = round(float(tr["sz"]), spec.sz_decimals)
            if side not in ("B", "A") or not sz > 0 or not is_valid_price(px, spec.px_decimals):
                self.stats["invalid_trades"] += 1
                continue
            users = tr.get("users") or ()
            liquidation = any(u in liquidators for u in users)
            self._trades.append((int(tr["time"]), coin, (side, px, sz, liquidation)))
            self.stats["trades"] += 1

    def _release(self, final: bool) -> bool:
        """Move blocks older than the reorder window (all of them when final) to the ready queue."""
        if not self._pending and not (final and self._trades):
            return False
        horizon = self._max_ms - self._reorder_ms
        times = sorted(t for t in self._pending if final or t < horizon)
        for time_ms in times:
            block = self._pending.pop(time_ms)
            self._attach_trades(block)
            self._ready.append(block)
            self._released_ms = time_ms
        if final and self._trades:
            # Trades after the last snapshot: one closing block at the last trade time.
            last = max(self._released_ms, max(t for t, _c, _tr in self._trades))
            block = Block(last, {}, {c.name: [] for c in self.coins}, 0)
            self._attach_trades(block)
            self._ready.append(block)
        return bool(self._ready)

    def _attach_trades(self, block: Block) -> None:
        if not self._trades:
            return
        keep: list[tuple[int, str, Trade]] = []
        for item in self._trades:
            if item[0] <= block.time_ms:
                block.trades[item[1]].append(item[2])
            else:
                keep.append(item)
        self._trades = keep
