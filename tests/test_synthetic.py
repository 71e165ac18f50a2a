"""Synthetic market source: determinism, book validity, trade/book consistency, cascades, statistics."""

from __future__ import annotations

import math
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hlfast.venue.market import (
    DEFAULT_COINS,
    LIQUIDATOR_ADDRESS,
    MarketSource,
    block_to_json,
    book_problem,
    ceil_price,
    floor_price,
    is_valid_price,
    make_source,
    next_price_above,
    px_from_wire,
    px_to_wire,
    sz_to_wire,
)
from hlfast.venue.synthetic import SyntheticParams, SyntheticSource
from tests.reference import market_data as ref

COINS = [DEFAULT_COINS[c] for c in ("BTC", "ETH", "SOL")]
QUIET = SyntheticParams(jump_rate=0.0, cascade_rate=0.0, regime_rate=0.0)


def run(source: SyntheticSource, n: int) -> list:
    return [source.next_block() for _ in range(n)]


def touch_mid(block, coin: str) -> float:
    bids, asks = block.books[coin]
    return (bids[0][0] + asks[0][0]) / 2


# --- price grid and wire formatting against the Decimal reference -----------------------------------


@settings(deadline=None, max_examples=400)
@given(st.integers(1, 10**12), st.integers(0, 6))
def test_price_grid_matches_reference(px: int, pd: int) -> None:
    assert is_valid_price(px, pd) == ref.is_valid_price(ref.price_of(px, pd), pd)
    lo, hi = floor_price(px, pd), ceil_price(px, pd)
    assert ref.price_of(lo, pd) == ref.floor_to_grid(ref.price_of(px, pd), pd)
    assert ref.price_of(hi, pd) == ref.ceil_to_grid(ref.price_of(px, pd), pd)
    assert lo <= px <= hi and is_valid_price(lo, pd) and is_valid_price(hi, pd)
    assert px < next_price_above(lo, pd)  # nothing valid strictly between lo and px


@settings(deadline=None, max_examples=150)
@given(st.integers(1, 5 * 10**5), st.integers(0, 3))
def test_floor_and_ceil_skip_no_valid_price(px: int, pd: int) -> None:
    lo, hi = floor_price(px, pd), ceil_price(px, pd)
    assert not any(ref.is_valid_price(ref.price_of(y, pd), pd) for y in range(lo + 1, px + 1))
    assert not any(ref.is_valid_price(ref.price_of(y, pd), pd) for y in range(px, hi))


def test_known_hyperliquid_prices() -> None:
    btc, eth = DEFAULT_COINS["BTC"], DEFAULT_COINS["ETH"]
    assert is_valid_price(1050550, btc.px_decimals)  # 105055.0: integer, 6 significant figures
    assert not is_valid_price(1050555, btc.px_decimals)  # 105055.5
    assert not is_valid_price(617001, btc.px_decimals)  # 61700.1 has 6 significant figures
    assert is_valid_price(250010, eth.px_decimals) and not is_valid_price(250012, eth.px_decimals)
    assert px_to_wire(1050550, btc) == "105055.0"
    assert px_to_wire(1504700, DEFAULT_COINS["SOL"]) == "150.47"
    assert sz_to_wire(0.1428, btc) == "0.1428" and sz_to_wire(15.0, btc) == "15.0"


@settings(deadline=None, max_examples=300)
@given(st.integers(1, 10**10), st.sampled_from(COINS))
def test_wire_roundtrip(px: int, spec) -> None:
    text = px_to_wire(px, spec)
    assert Decimal(text) == ref.price_of(px, spec.px_decimals)
    assert px_from_wire(text, spec) == px


# --- determinism ----------------------------------------------------------------------------------


def test_same_seed_gives_identical_blocks_and_other_seed_differs() -> None:
    a = [block_to_json(b) for b in run(SyntheticSource(COINS, seed=7, block_ms=20), 400)]
    b = [block_to_json(b) for b in run(SyntheticSource(COINS, seed=7, block_ms=20), 400)]
    c = [block_to_json(b) for b in run(SyntheticSource(COINS, seed=8, block_ms=20), 400)]
    assert a == b
    assert a != c
    # make_source builds the same thing
    d = make_source("synthetic", ["BTC", "ETH", "SOL"], 7, 20)
    assert isinstance(d, MarketSource)
    assert [block_to_json(d.next_block()) for _ in range(400)] == a


def test_adding_a_coin_does_not_change_another_coins_path() -> None:
    alone = run(SyntheticSource([DEFAULT_COINS["BTC"]], seed=3, block_ms=50), 300)
    pair = run(SyntheticSource([DEFAULT_COINS["BTC"], DEFAULT_COINS["ETH"]], seed=3, block_ms=50), 300)
    assert [b.books["BTC"] for b in alone] == [b.books["BTC"] for b in pair]
    assert [b.trades["BTC"] for b in alone] == [b.trades["BTC"] for b in pair]


def test_block_times_follow_the_cadence() -> None:
    src = SyntheticSource(COINS, seed=1, block_ms=50, start_ms=1_000_000)
    times = [b.time_ms for b in run(src, 10)]
    assert times == [1_000_000 + 50 * (i + 1) for i in range(10)]


# --- book validity --------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1])
def test_books_are_valid_over_many_blocks(seed: int) -> None:
    src = SyntheticSource(COINS, seed=seed, block_ms=20, params=SyntheticParams(cascade_rate=0.05))
    for block in run(src, 1500):
        for spec in COINS:
            bids, asks = block.books[spec.name]
            assert book_problem(bids, asks, spec) is None
            assert len(bids) == 20 and len(asks) == 20
            assert bids[0][0] < asks[0][0]
            for px, sz, n in bids + asks:
                assert ref.is_valid_price(ref.price_of(px, spec.px_decimals), spec.px_decimals)
                assert sz > 0 and n >= 1
                assert Decimal(repr(sz)) == Decimal(repr(sz)).quantize(Decimal(1).scaleb(-spec.sz_decimals))


def test_books_are_valid_across_a_power_of_ten() -> None:
    """SOL near $100: the price grid switches between 0.01 and 0.001 inside one book."""
    from hlfast.venue.synthetic import DEFAULT_MODELS, CoinModel

    sol = DEFAULT_COINS["SOL"]
    model = DEFAULT_MODELS["SOL"]
    near = CoinModel(100.02, 2e-3, model.touch_notional, model.trade_rate, model.trade_notional,
                     model.order_notional)
    src = SyntheticSource([sol], seed=5, block_ms=100, models={"SOL": near})
    crossed_boundary = 0
    for block in run(src, 1500):
        bids, asks = block.books["SOL"]
        assert book_problem(bids, asks, sol) is None
        crossed_boundary += bids[-1][0] < 1_000_000 <= asks[-1][0]
    assert crossed_boundary > 0


def test_size_profile_grows_with_depth_and_spread_is_mostly_one_step() -> None:
    src = SyntheticSource([DEFAULT_COINS["BTC"]], seed=2, block_ms=100)
    near = far = 0.0
    one_step = 0
    blocks = run(src, 1500)
    for block in blocks:
        bids, asks = block.books["BTC"]
        near += sum(sz for _, sz, _ in bids[:5] + asks[:5])
        far += sum(sz for _, sz, _ in bids[15:] + asks[15:])
        one_step += asks[0][0] == next_price_above(bids[0][0], 1)
    assert far > 1.5 * near
    assert 0.8 < one_step / len(blocks) < 1.0  # mostly one step, sometimes wider


# --- trades ---------------------------------------------------------------------------------------


def test_trades_are_consistent_with_the_previous_book() -> None:
    src = SyntheticSource(COINS, seed=11, block_ms=50, params=SyntheticParams(cascade_rate=0.05))
    prev = None
    total = 0
    for block in run(src, 3000):
        for spec in COINS:
            trades = block.trades[spec.name]
            if prev is None:
                assert trades == []
                continue
            bids, asks = prev.books[spec.name]
            shown = {px: sz for px, sz, _ in bids + asks}
            taken: dict[int, float] = {}
            for side, px, sz, _liq in trades:
                assert side in ("B", "A") and sz > 0
                if side == "B":
                    assert px >= asks[0][0]  # at or through the ask
                else:
                    assert px <= bids[0][0]  # at or through the bid
                assert px in shown  # a displayed level of the book it traded against
                taken[px] = taken.get(px, 0.0) + sz
            for px, sz in taken.items():
                assert sz <= shown[px] + 1e-9
            total += len(trades)
        prev = block
    assert total > 500


def test_trade_counts_show_self_exciting_bursts() -> None:
    src = SyntheticSource([DEFAULT_COINS["BTC"]], seed=4, block_ms=100, params=QUIET)
    blocks = run(src, 6_000)
    per_second = [sum(len(b.trades["BTC"]) for b in blocks[i : i + 10]) for i in range(0, len(blocks), 10)]
    mean = sum(per_second) / len(per_second)
    var = sum((x - mean) ** 2 for x in per_second) / len(per_second)
    assert mean > 1.0
    assert var / mean > 1.5  # a Poisson process would give ≈ 1


def test_liquidation_cascades_are_flagged_one_sided_and_move_the_price() -> None:
    params = SyntheticParams(cascade_rate=1 / 20, jump_rate=0.0)
    src = SyntheticSource([DEFAULT_COINS["BTC"]], seed=9, block_ms=50, params=params)
    blocks = run(src, 6000)
    moves = {"B": [], "A": []}
    liquidation_prints = 0
    for prev, block in zip(blocks, blocks[1:], strict=False):
        liq_sides = {side for side, _px, _sz, liq in block.trades["BTC"] if liq}
        liquidation_prints += sum(liq for *_rest, liq in block.trades["BTC"])
        assert len(liq_sides) <= 1  # one cascade direction at a time
        if liq_sides:
            (side,) = liq_sides
            moves[side].append(touch_mid(block, "BTC") - touch_mid(prev, "BTC"))
    assert liquidation_prints > 50
    assert moves["A"] and moves["B"]
    assert sum(moves["A"]) / len(moves["A"]) < 0  # long liquidations (sells) push the price down
    assert sum(moves["B"]) / len(moves["B"]) > 0
    assert LIQUIDATOR_ADDRESS.startswith("0x") and len(LIQUIDATOR_ADDRESS) == 42


def test_regimes_switch() -> None:
    src = SyntheticSource([DEFAULT_COINS["ETH"]], seed=6, block_ms=500, params=SyntheticParams(regime_rate=0.05))
    seen = set()
    for _ in range(2000):
        src.next_block()
        seen.add(src.regime("ETH"))
    assert seen == {0, 1, 2}


# --- statistics -----------------------------------------------------------------------------------


def realised_vol(blocks: list, coin: str, block_ms: int, horizon_s: float = 1.0) -> float:
    step = int(horizon_s * 1000 / block_ms)
    mids = [touch_mid(b, coin) for b in blocks]
    rets = [math.log(mids[i + step] / mids[i]) for i in range(0, len(mids) - step, step)]
    return math.sqrt(sum(r * r for r in rets) / len(rets) / horizon_s)


@pytest.mark.parametrize("seed", [1])
def test_realised_vol_matches_the_configured_sigma(seed: int) -> None:
    from hlfast.venue.synthetic import DEFAULT_MODELS

    sigma = DEFAULT_MODELS["BTC"].sigma
    blocks = run(SyntheticSource([DEFAULT_COINS["BTC"]], seed=seed, block_ms=100, params=QUIET), 10_000)
    assert 0.75 * sigma < realised_vol(blocks, "BTC", 100) < 1.3 * sigma
    noisy = run(SyntheticSource([DEFAULT_COINS["BTC"]], seed=seed, block_ms=100), 10_000)
    assert 0.6 * sigma < realised_vol(noisy, "BTC", 100) < 2.5 * sigma


# --- errors ---------------------------------------------------------------------------------------


def test_make_source_errors_name_the_problem(tmp_path) -> None:
    with pytest.raises(ValueError, match="unknown market source 'csv:x'"):
        make_source("csv:x", ["BTC"], 0, 500)
    with pytest.raises(ValueError, match="unknown coin 'DOGE'"):
        make_source("synthetic", ["DOGE"], 0, 500)
    with pytest.raises(ValueError, match="block_ms must be > 0"):
        make_source("synthetic", ["BTC"], 0, 0)
    with pytest.raises(ValueError, match="needs a file"):
        make_source("replay:", ["BTC"], 0, 500)
    with pytest.raises(ValueError, match="not found"):
        make_source(f"replay:{tmp_path}/missing.gz", ["BTC"], 0, 500)
