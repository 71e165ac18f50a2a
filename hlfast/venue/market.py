"""Market data sources for the local venue and the backtester: the shared contract.

A source produces one :class:`Block` per exchange block.  Prices are integer ticks of the coin's
finest price unit ``10**-px_decimals`` (``px_decimals = 6 - szDecimals`` on Hyperliquid perps), sizes
are coin units rounded to ``szDecimals``.

Block semantics (both sources):
- ``trades[coin]`` are the trades executed *during* the block, in execution order, against the book
  published in the previous block (a buy prints at or above that book's best ask, a sell at or below
  its best bid).  Every source coin has an entry (possibly an empty list).
- ``books[coin]`` is the book *after* the block: (bids, asks), best first, at most 20 levels a side,
  each level ``(px_ticks, sz, n)``.  The synthetic source publishes every coin in every block; a
  replay publishes the coins whose snapshot arrived in that block.

Every published price is a valid Hyperliquid perp price (at most 5 significant figures and at most
``px_decimals`` decimals; integer prices are always valid); books are strictly monotone and never
crossed; sizes are > 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import orjson

# The address the venue publishes in a trade's ``users`` (on the liquidated side) for trades marked
# is_liquidation, so an engine can classify liquidations exactly as on Hyperliquid (where the
# liquidator vault's address appears).  Configure it as a liquidator address in the engine.
# It spells "LIQUIDATOR" in ASCII hex, so it cannot collide with a real key-derived address.
LIQUIDATOR_ADDRESS = "0x4c495155494441544f5200000000000000000000"

MAX_LEVELS = 20

Level = tuple[int, float, int]
BookSides = tuple[list[Level], list[Level]]
Trade = tuple[str, int, float, bool]


@dataclass(frozen=True)
class CoinSpec:
    name: str
    sz_decimals: int
    max_leverage: int

    @property
    def px_decimals(self) -> int:
        """Decimals of the finest price unit: a price in ticks is ``ticks * 10**-px_decimals``."""
        return 6 - self.sz_decimals


# Hyperliquid mainnet perp metadata (szDecimals, maxLeverage).
DEFAULT_COINS: dict[str, CoinSpec] = {
    "BTC": CoinSpec("BTC", 5, 40),
    "ETH": CoinSpec("ETH", 4, 25),
    "SOL": CoinSpec("SOL", 2, 20),
}


@dataclass
class Block:
    time_ms: int
    books: dict[str, BookSides]
    trades: dict[str, list[Trade]]
    # Receive time of the frame that completed the block (replay); 0 for synthetic blocks.
    recv_ns: int = field(default=0)


@runtime_checkable
class MarketSource(Protocol):
    coins: list[CoinSpec]

    def next_block(self) -> Block | None:
        """The next block, or None when a replay has ended."""
        ...


# ---------------------------------------------------------------------------------------------------
# Price grid.  In tick units the valid step at a price with d digits is 10**min(max(d - 5, 0), px_dec):
# five significant figures, never coarser than a whole unit (integer prices are always valid).

_POW10 = [10**i for i in range(40)]


def price_step(px_ticks: int, px_decimals: int) -> int:
    """The valid price increment (in ticks) at ``px_ticks``."""
    excess = len(str(px_ticks)) - 5
    if excess <= 0:
        return 1
    return _POW10[excess if excess < px_decimals else px_decimals]


def is_valid_price(px_ticks: int, px_decimals: int) -> bool:
    return px_ticks > 0 and px_ticks % price_step(px_ticks, px_decimals) == 0


def floor_price(px_ticks: int, px_decimals: int) -> int:
    """Largest valid price <= px_ticks (px_ticks >= 1)."""
    return px_ticks - px_ticks % price_step(px_ticks, px_decimals)


def ceil_price(px_ticks: int, px_decimals: int) -> int:
    """Smallest valid price >= px_ticks.  A carry into a new digit lands on a power of ten: valid."""
    step = price_step(px_ticks, px_decimals)
    return -(-px_ticks // step) * step


def next_price_below(px_ticks: int, px_decimals: int) -> int:
    return floor_price(px_ticks - 1, px_decimals)


def next_price_above(px_ticks: int, px_decimals: int) -> int:
    return ceil_price(px_ticks + 1, px_decimals)


# ---------------------------------------------------------------------------------------------------
# Wire formatting, as Hyperliquid prints book and trade numbers ("105055.0", "0.1428").


def px_to_wire(px_ticks: int, spec: CoinSpec) -> str:
    """Decimal string of a price in ticks, trailing zeros stripped but one decimal kept."""
    whole, frac = divmod(px_ticks, _POW10[spec.px_decimals])
    if spec.px_decimals == 0 or frac == 0:
        return f"{whole}.0"
    return f"{whole}.{frac:0{spec.px_decimals}d}".rstrip("0")


def sz_to_wire(sz: float, spec: CoinSpec) -> str:
    """Decimal string of a size rounded to szDecimals, trailing zeros stripped but one decimal kept."""
    text = f"{sz:.{spec.sz_decimals}f}"
    if "." not in text:
        return text + ".0"
    text = text.rstrip("0")
    return text + "0" if text.endswith(".") else text


def px_from_wire(text: str, spec: CoinSpec) -> int:
    """Ticks of a decimal price string (exact for any price with at most px_decimals decimals)."""
    return round(float(text) * _POW10[spec.px_decimals])


def book_problem(bids: list[Level], asks: list[Level], spec: CoinSpec) -> str | None:
    """Why a book breaks the Block invariants, or None when it is sound."""
    pd = spec.px_decimals
    for side, levels, sign in (("bid", bids, -1), ("ask", asks, 1)):
        if len(levels) > MAX_LEVELS:
            return f"{len(levels)} {side} levels (max {MAX_LEVELS})"
        prev = None
        for px, sz, n in levels:
            if not is_valid_price(px, pd):
                return f"invalid {side} price {px} ticks"
            if not sz > 0 or sz != sz or sz == float("inf"):
                return f"bad {side} size {sz!r} at {px}"
            if round(sz, spec.sz_decimals) != sz:
                return f"{side} size {sz!r} not rounded to {spec.sz_decimals} decimals"
            if n < 1:
                return f"{side} order count {n} at {px}"
            if prev is not None and (px - prev) * sign <= 0:
                return f"{side}s not strictly monotone at {px}"
            prev = px
    if bids and asks and bids[0][0] >= asks[0][0]:
        return f"crossed book {bids[0][0]} >= {asks[0][0]}"
    return None


def block_to_json(block: Block) -> bytes:
    """Canonical serialisation of a block (sorted coins), for determinism checks and debugging."""
    return orjson.dumps(
        {
            "time_ms": block.time_ms,
            "books": {c: [list(map(list, b)), list(map(list, a))] for c, (b, a) in sorted(block.books.items())},
            "trades": {c: [list(t) for t in ts] for c, ts in sorted(block.trades.items())},
        }
    )


def resolve_coins(coins: list[str] | list[CoinSpec]) -> list[CoinSpec]:
    """CoinSpecs for coin names (DEFAULT_COINS) or specs passed through; ValueError names unknown coins."""
    specs: list[CoinSpec] = []
    for coin in coins:
        if isinstance(coin, CoinSpec):
            specs.append(coin)
        elif coin in DEFAULT_COINS:
            specs.append(DEFAULT_COINS[coin])
        else:
            raise ValueError(f"unknown coin {coin!r}; known coins: {', '.join(DEFAULT_COINS)}")
    return specs


def make_source(
    spec: str, coins: list[str], seed: int, block_ms: int, *, start_ms: int | None = None
) -> MarketSource:
    """A market source from its command-line spec: ``"synthetic"`` or ``"replay:FILE"``.

    ``start_ms`` sets the synthetic source's first block time (default: a fixed epoch, so the same
    seed gives identical blocks; pass the wall clock when blocks must carry current times).
    A replay keeps the file's times and ignores ``seed``, ``block_ms`` and ``start_ms``.
    """
    if spec == "synthetic":
        from hlfast.venue.synthetic import SyntheticSource

        if block_ms <= 0:
            raise ValueError(f"block_ms must be > 0, got {block_ms}")
        kwargs = {} if start_ms is None else {"start_ms": start_ms}
        return SyntheticSource(resolve_coins(coins), seed=seed, block_ms=block_ms, **kwargs)
    if spec.startswith("replay:"):
        from hlfast.venue.replay import ReplaySource

        path = spec[len("replay:") :]
        if not path:
            raise ValueError("market source 'replay:' needs a file: replay:FILE")
        return ReplaySource(path, coins=list(coins) or None)
    raise ValueError(f"unknown market source {spec!r}; expected 'synthetic' or 'replay:FILE'")
