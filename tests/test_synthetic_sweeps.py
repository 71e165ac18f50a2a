"""Sweeps in the synthetic market: the trade-through profile of the real BTC capture, σ kept, impact kept."""
from __future__ import annotations

import math
import random
from dataclasses import replace

import pytest

from hlfast.venue.market import DEFAULT_COINS
from hlfast.venue.synthetic import SyntheticParams, SyntheticSource, sweep_variance_rate

BTC = DEFAULT_COINS["BTC"]
NO_SWEEPS = SyntheticParams(sweep_rate=0.0)


def reach_per_step(src: SyntheticSource, seconds: float) -> list[float]:
    """Per block (100 ms): the farthest trade past the previous book's mid, in bp, each side separately."""
    out: list[float] = []
    mid = None
    for _ in range(int(seconds * 1000 / src.block_ms)):
        block = src.next_block()
        if mid is not None:
            far = {"B": 0.0, "A": 0.0}
            for side, px, _sz, _liq in block.trades["BTC"]:
                reach = (px - mid) / mid if side == "B" else (mid - px) / mid
                far[side] = max(far[side], reach * 1e4)
            out.extend(far.values())
        bids, asks = block.books["BTC"]
        mid = 0.5 * (bids[0][0] + asks[0][0])
    return out


def survival(reaches: list[float], bps: float) -> int:
    return sum(1 for r in reaches if r >= bps)


@pytest.fixture(scope="module")
def profiles() -> tuple[list[float], list[float]]:
    with_sweeps, without = [], []
    for seed in (1, 2):
        with_sweeps += reach_per_step(SyntheticSource([BTC], seed=seed, block_ms=100), 300.0)
        without += reach_per_step(SyntheticSource([BTC], seed=seed, block_ms=100, params=NO_SWEEPS), 300.0)
    return with_sweeps, without


def test_trade_through_profile_has_the_capture_shape(profiles) -> None:
    with_sweeps, without = profiles
    first = survival(with_sweeps, 0.25)  # one level past the touch
    # BTCUSDT 2024-08-08 on the $1 grid: ≥ 1/2/3 bp in 45/13/6 % of the steps reaching 0.25 bp
    assert 0.2 < survival(with_sweeps, 1.0) / first < 0.6
    assert 0.06 < survival(with_sweeps, 2.0) / first < 0.3
    assert 0.02 < survival(with_sweeps, 3.0) / first < 0.2
    # without sweeps a quote at the 2 bp fee floor is (almost) never traded through
    assert survival(without, 2.0) < 0.1 * survival(with_sweeps, 2.0)
    # a sweep reaches at most the 20 published levels (≈ 3.3 bp at $1 steps plus gaps)
    assert max(with_sweeps) < 5.0


def test_sweep_prints_are_displayed_levels_within_their_size() -> None:
    src = SyntheticSource([BTC], seed=7, block_ms=100, params=SyntheticParams(sweep_rate=3.0))
    prev = src.next_block()
    deep = 0
    for _ in range(600):
        block = src.next_block()
        bids, asks = prev.books["BTC"]
        shown = {px: sz for px, sz, _n in bids + asks}
        for side, px, sz, _liquidation in block.trades["BTC"]:
            assert px in shown and 0 < sz <= shown[px] + 1e-9
            assert (px >= asks[0][0]) if side == "B" else (px <= bids[0][0])
            deep += (px - asks[0][0] >= 60) if side == "B" else (bids[0][0] - px >= 60)  # ≥ 6 levels
        prev = block
    assert deep > 50


def test_sweeps_keep_sigma_and_their_impact_stays() -> None:
    """Paired paths without jumps or cascades: σ within 25 %; the fair price keeps ~70 % of a sweep's reach."""
    quiet = SyntheticParams(jump_rate=0.0, cascade_rate=0.0)

    def realised_sigma(params: SyntheticParams) -> float:
        r2, n = 0.0, 0
        for seed in (1, 2, 3):
            src = SyntheticSource([BTC], seed=seed, block_ms=100, params=params)
            prev = math.log(src.fair_mid("BTC"))
            for k in range(3000):
                src.next_block()
                if k % 10 == 9:
                    now = math.log(src.fair_mid("BTC"))
                    r2 += (now - prev) ** 2
                    n += 1
                    prev = now
        return math.sqrt(r2 / n)

    ratio = realised_sigma(quiet) / realised_sigma(replace(quiet, sweep_rate=0.0))
    assert 0.8 < ratio < 1.25

    # impact: the signed fair move of blocks holding a deep sweep, over that sweep's reach
    src = SyntheticSource([BTC], seed=11, block_ms=100, params=replace(quiet, sweep_rate=2.0))
    prev_block = src.next_block()
    moves = []
    for _ in range(3000):
        before = src.fair_mid("BTC")
        block = src.next_block()
        bids, asks = prev_block.books["BTC"]
        mid = 0.5 * (bids[0][0] + asks[0][0]) / 10.0
        buys = [px / 10.0 for s, px, _sz, _l in block.trades["BTC"] if s == "B"]
        sells = [px / 10.0 for s, px, _sz, _l in block.trades["BTC"] if s == "A"]
        if buys and not sells and max(buys) / mid - 1 > 2e-4:
            moves.append(math.log(src.fair_mid("BTC") / before) / math.log(max(buys) / mid))
        prev_block = block
    assert len(moves) > 20
    assert 0.4 < sum(moves) / len(moves) < 1.0


def test_sweep_variance_rate_matches_monte_carlo() -> None:
    for params in (SyntheticParams(), SyntheticParams(sweep_tail=2.0), SyntheticParams(sweep_tail=1.6, sweep_max_bps=8)):
        rng = random.Random(1)
        draws = 200_000
        total = 0.0
        for _ in range(draws):
            u = 1.0 - rng.random()
            reach = min(params.sweep_min_bps * u ** (-1.0 / params.sweep_tail), params.sweep_max_bps) * 1e-4
            total += (params.sweep_impact * reach) ** 2
        assert sweep_variance_rate(params) == pytest.approx(params.sweep_rate * total / draws, rel=0.03)
    assert sweep_variance_rate(NO_SWEEPS) == 0.0

