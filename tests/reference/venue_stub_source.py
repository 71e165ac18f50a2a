"""A scripted market source for the venue tests: blocks are queued by the test, or a fixed book repeats."""

from __future__ import annotations

from collections import deque

from hlfast.venue.market import Block, CoinSpec, resolve_coins


def ladder(best_bid: int, best_ask: int, size: float, step: int = 10, depth: int = 20) -> tuple[list, list]:
    """A book with `depth` levels a side, `size` each, one order per level, `step` ticks apart."""
    bids = [(best_bid - i * step, size, 1) for i in range(depth)]
    asks = [(best_ask + i * step, size, 1) for i in range(depth)]
    return bids, asks


class ScriptedSource:
    """Yields queued blocks; when the queue is empty, repeats the last books with no trades."""

    def __init__(self, coins: list[str] | list[CoinSpec], start_ms: int = 1_700_000_000_000, block_ms: int = 50):
        self.coins = resolve_coins(coins)
        self.time_ms = start_ms
        self.block_ms = block_ms
        self.queue: deque[tuple[dict, dict]] = deque()
        self.books: dict = {}

    def push(self, books: dict | None = None, trades: dict | None = None) -> None:
        self.queue.append((books or {}, trades or {}))

    def next_block(self) -> Block:
        self.time_ms += self.block_ms
        books, trades = self.queue.popleft() if self.queue else ({}, {})
        self.books.update(books)
        full_trades = {c.name: list(trades.get(c.name, [])) for c in self.coins}
        return Block(self.time_ms, dict(self.books), full_trades)


def make_static(coins: list[str], seed: int, block_ms: int) -> ScriptedSource:
    """Factory for `source="py:tests.reference.venue_stub_source:make_static"`: BTC 60000.0/60001.0, ETH 3000.0/3000.1."""
    source = ScriptedSource(coins, block_ms=block_ms)
    tops = {"BTC": (600000, 600010, 0.5), "ETH": (300000, 300010, 5.0), "SOL": (15000, 15001, 50.0)}
    books = {}
    for spec in source.coins:
        bid, ask, size = tops[spec.name]
        books[spec.name] = ladder(bid, ask, size)
    source.push(books)
    return source
