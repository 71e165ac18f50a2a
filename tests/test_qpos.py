"""Queue-position tracker: kernel vs plain-Python reference, queue maths properties, real BTC stream."""
from __future__ import annotations

import gzip
import math

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hlfast.qpos import QueueTracker
from tests.paths import HL_FIXTURES
from tests.reference.qpos import QueueTrackerRef, execute_probability, touch_probability

STREAM = HL_FIXTURES / "recorded_stream_btc_20250126.gz"
BTC_UNITS_PER_PRICE = 10  # szDecimals 5 -> finest price unit 0.1


def book_arrays(px: list[int], sz: list[float]) -> tuple[np.ndarray, np.ndarray]:
    return np.asarray(px, dtype=np.int64), np.asarray(sz, dtype=np.float64)


# ---------- queue maths ----------

@settings(deadline=None, max_examples=200)
@given(q1=st.floats(0, 50), q2=st.floats(0, 50), h1=st.floats(0.01, 100), h2=st.floats(0.01, 100),
       trade=st.floats(0.001, 10))
def test_execute_probability_monotone_in_queue_and_horizon(q1, q2, h1, h2, trade):
    tracker = QueueTracker(4)
    tracker.on_trade(0.0, 1000, trade, -1)  # feeds the bid touch rate
    tracker.add(0, 1, 1000, 1.0, q1, 0.0)
    tracker.add(1, 1, 1000, 1.0, q2, 0.0)
    lo, hi = sorted((q1, q2))
    slot_lo, slot_hi = (0, 1) if q1 <= q2 else (1, 0)
    assert tracker.probability_execute_given_touch(slot_lo, h1) >= tracker.probability_execute_given_touch(
        slot_hi, h1)
    h_lo, h_hi = sorted((h1, h2))
    assert tracker.probability_execute_given_touch(slot_lo, h_lo) <= tracker.probability_execute_given_touch(
        slot_lo, h_hi)
    rate = tracker.touch_rate(1)
    for slot, q in ((slot_lo, lo), (slot_hi, hi)):
        assert tracker.probability_execute_given_touch(slot, h1) == pytest.approx(
            execute_probability(q, rate, h1), rel=1e-12, abs=1e-300)


def test_execute_probability_matches_integrated_exponential():
    # brute force: P(V > Q) for V ~ Exp(mean v*H) by midpoint quadrature of the density
    tracker = QueueTracker(2)
    tracker.on_trade(0.0, 500, 3.0, 1)  # ask side volume
    rate = tracker.touch_rate(-1)
    horizon = 2.0
    mean = rate * horizon
    for q in (0.0, 0.01, 0.05, 0.1):
        tracker.add(0, -1, 500, 1.0, q, 0.0)
        upper = q + 60 * mean
        n = 200_000
        width = (upper - q) / n
        v = q + (np.arange(n) + 0.5) * width
        integral = float(np.sum(np.exp(-v / mean) / mean) * width)
        assert tracker.probability_execute_given_touch(0, horizon) == pytest.approx(integral, rel=1e-6)


def test_touch_probability_matches_brownian_hitting_simulation():
    # brute force: fraction of discretised driftless log-price paths that reach the bid within H
    rng = np.random.default_rng(7)
    sigma, horizon, steps, paths = 3e-4, 1.0, 2000, 4000
    best, px = 1_000_000, 999_700  # 3 bp below the touch
    dt = horizon / steps
    incr = rng.standard_normal((paths, steps)) * sigma * math.sqrt(dt)
    path_min = np.minimum.accumulate(np.cumsum(incr, axis=1), axis=1)[:, -1]
    distance = (best - px) / best
    simulated = float(np.mean(path_min <= -distance))
    tracker = QueueTracker(1)
    tracker.add(0, 1, px, 1.0, 0.0, 0.0)
    analytic = tracker.probability_touch(0, horizon, sigma, best)
    # the discrete walk misses crossings between steps, so it sits slightly below the continuous value
    assert analytic == pytest.approx(touch_probability(1, px, best, horizon, sigma), rel=1e-12)
    assert simulated < analytic < simulated + 0.06


@settings(deadline=None, max_examples=200)
@given(side=st.sampled_from([1, -1]), offset=st.integers(-50, 500), extra=st.integers(1, 200),
       sigma=st.floats(1e-6, 1e-2), h=st.floats(0.05, 10))
def test_touch_probability_properties(side, offset, extra, sigma, h):
    best = 100_000
    tracker = QueueTracker(2)
    near = best - side * offset
    far = near - side * extra
    tracker.add(0, side, near, 1.0, 0.0, 0.0)
    tracker.add(1, side, far, 1.0, 0.0, 0.0)
    p_near = tracker.probability_touch(0, h, sigma, best)
    p_far = tracker.probability_touch(1, h, sigma, best)
    assert 0.0 <= p_far <= p_near <= 1.0
    if offset <= 0:
        assert p_near == 1.0  # at or inside the touch
    assert tracker.probability_touch(1, h, sigma * 2, best) >= p_far
    assert tracker.probability_touch(1, h * 2, sigma, best) >= p_far
    assert p_far == pytest.approx(touch_probability(side, far, best, h, sigma), rel=1e-12, abs=1e-300)


def test_touch_probability_degenerate_inputs():
    tracker = QueueTracker(1)
    tracker.add(0, 1, 990, 1.0, 0.0, 0.0)
    assert tracker.probability_touch(0, 1.0, 0.0, 1000) == 0.0
    assert tracker.probability_touch(0, 0.0, 1e-3, 1000) == 0.0
    assert tracker.probability_touch(0, 1.0, 1e-3, 0) == 1.0  # unknown touch: treated as at the touch
    assert math.isnan(tracker.fill_probability(5, 1.0, 1e-3, 1000))


# ---------- queue-ahead bookkeeping ----------

def test_queue_ahead_trades_cancels_and_reset():
    tracker = QueueTracker(8)
    assert tracker.add(0, 1, 1000, 1.0, 10.0, 0.0) == 0
    assert tracker.queue_ahead(0) == 10.0
    assert tracker.on_trade(1.0, 1000, 6.0, -1) == 1  # sell aggressor hits our bid level
    assert tracker.queue_ahead(0) == 4.0
    # displayed 5 = 4 others + our 1: the 6 traded explain the whole drop, no cancel
    tracker.on_book(*book_arrays([1001, 1000, 999], [2.0, 5.0, 3.0]), 1, 1002)
    assert tracker.queue_ahead(0) == 4.0
    # 2 cancelled, nothing traded, nobody behind us: all attributed to the front
    tracker.on_book(*book_arrays([1001, 1000, 999], [2.0, 3.0, 3.0]), 1, 1002)
    assert tracker.queue_ahead(0) == pytest.approx(2.0)
    # a level that grows never pushes us back
    tracker.on_book(*book_arrays([1001, 1000, 999], [2.0, 9.0, 3.0]), 1, 1002)
    assert tracker.queue_ahead(0) == pytest.approx(2.0)
    # asks: a buy sweep through our price leaves nothing in front of us
    tracker.add(2, -1, 3000, 1.0, 10.0, 2.0)
    tracker.add(3, -1, 3001, 1.0, 5.0, 2.0)
    tracker.on_trade(2.5, 3000, 6.0, 1)
    assert tracker.queue_ahead(2) == 4.0 and tracker.queue_ahead(3) == 5.0
    tracker.on_trade(3.0, 3002, 0.5, 1)
    assert tracker.queue_ahead(2) == 0.0 and tracker.queue_ahead(3) == 0.0
    # the opposite side quoting through our bid resets it too
    tracker.add(4, 1, 500, 1.0, 7.0, 3.0)
    tracker.on_book(*book_arrays([500], [8.0]), 1, 500)
    assert tracker.queue_ahead(4) == 0.0


def test_cancel_attribution_uses_p_back():
    tracker = QueueTracker(2)
    tracker.add(1, 1, 2000, 1.0, 4.0, 0.0)                     # 4 in front of us
    tracker.on_book(*book_arrays([2000], [1.0 + 10.0]), 1, 0)  # 6 joined behind us
    assert tracker.queue_ahead(1) == 4.0
    tracker.on_book(*book_arrays([2000], [1.0 + 5.0]), 1, 0)   # 5 cancelled, none traded
    p_back = 6.0**2 / (6.0**2 + 4.0**2)
    assert tracker.queue_ahead(1) == pytest.approx(4.0 - (1.0 - p_back) * 5.0)
    # cancels explained by trades at our price are not double counted
    tracker.on_trade(1.0, 2000, 1.0, -1)
    q = tracker.queue_ahead(1)
    tracker.on_book(*book_arrays([2000], [1.0 + 4.0]), 1, 0)
    assert tracker.queue_ahead(1) == pytest.approx(q)


def test_level_better_than_best_keeps_queue_and_beyond_depth_is_ignored():
    tracker = QueueTracker(2)
    tracker.add(0, 1, 1005, 1.0, 3.0, 0.0)   # above the displayed best bid
    tracker.add(1, 1, 900, 1.0, 3.0, 0.0)    # below the displayed depth
    tracker.on_book(*book_arrays([1000, 999], [1.0, 1.0]), 1, 1010)
    assert tracker.queue_ahead(0) == 3.0
    assert tracker.queue_ahead(1) == 3.0
    # a level inside the depth that vanished leaves nothing in front
    tracker.add(1, 1, 999, 1.0, 3.0, 0.0)
    tracker.on_book(*book_arrays([1000, 998], [1.0, 1.0]), 1, 1010)
    assert tracker.queue_ahead(1) == 0.0


def test_bad_input_is_counted_not_raised():
    tracker = QueueTracker(4)
    assert tracker.add(7, 1, 100, 1.0, 0.0, 0.0) == -1
    assert tracker.add(0, 2, 100, 1.0, 0.0, 0.0) == -1
    assert tracker.add(0, 1, 100, float("nan"), 0.0, 0.0) == -1
    assert tracker.on_trade(0.0, 100, -1.0, 1) == -1
    assert tracker.resize(3, 1.0) == -1
    assert tracker.remove(-1) == -1
    assert tracker.rejected == 6
    assert tracker.n_active == 0
    assert tracker.on_book(np.zeros(2, dtype=np.int64), np.zeros(1), 1, 0) == -1
    assert tracker.on_book(np.zeros(0, dtype=np.int64), np.zeros(0), 1, 0) == 0
    assert math.isnan(tracker.queue_ahead(0))


def test_touch_rate_ewma_half_life():
    tracker = QueueTracker(1, vol_half_life=60.0)
    assert tracker.touch_rate(1) == 1e-6  # floor before any trade
    tracker.on_trade(10.0, 100, 2.0, -1)
    tau = 60.0 / math.log(2.0)
    assert tracker.touch_rate(1) == pytest.approx(2.0 / tau)
    assert tracker.touch_rate(-1) == 1e-6
    tracker.advance(70.0)
    assert tracker.touch_rate(1) == pytest.approx(1.0 / tau)  # one half-life later


# ---------- random sequences vs the reference ----------

event = st.one_of(
    st.tuples(st.just("add"), st.integers(0, 5), st.sampled_from([1, -1]), st.integers(95, 105),
              st.floats(0.1, 3), st.floats(0, 20)),
    st.tuples(st.just("trade"), st.integers(95, 105), st.floats(0.01, 8), st.sampled_from([1, -1])),
    st.tuples(st.just("book"), st.sampled_from([1, -1]), st.lists(st.floats(0.0, 20), min_size=0, max_size=6),
              st.integers(0, 4), st.integers(0, 110)),
    st.tuples(st.just("remove"), st.integers(0, 5)),
    st.tuples(st.just("resize"), st.integers(0, 5), st.floats(0.1, 3)),
)


@settings(deadline=None, max_examples=300)
@given(events=st.lists(event, max_size=40), sigma=st.floats(1e-5, 1e-2))
def test_random_sequences_match_reference(events, sigma):
    kernel, ref = QueueTracker(6), QueueTrackerRef(6)
    t = 0.0
    for ev in events:
        t += 0.25
        if ev[0] == "add":
            _, slot, side, px, sz, shown = ev
            assert kernel.add(slot, side, px, sz, shown, t) == ref.add(slot, side, px, sz, shown, t)
        elif ev[0] == "trade":
            _, px, sz, aggressor = ev
            assert kernel.on_trade(t, px, sz, aggressor) == ref.on_trade(t, px, sz, aggressor)
        elif ev[0] == "book":
            _, side, sizes, start, best_opp = ev
            base = 100 + start if side > 0 else 100 - start
            px = [base - side * i for i in range(len(sizes))]
            before = {s: kernel.queue_ahead(s) for s in range(6)}
            got = kernel.on_book(*book_arrays(px, sizes), side, best_opp)
            assert got == ref.on_book(px, sizes, side, best_opp)
            for s in range(6):  # never increases
                if not math.isnan(before[s]):
                    assert kernel.queue_ahead(s) <= before[s]
        elif ev[0] == "remove":
            kernel.remove(ev[1])
            ref.remove(ev[1])
        else:
            _, slot, sz = ev
            assert kernel.resize(slot, sz) == ref.resize(slot, sz)
        for s in range(6):
            k, r = kernel.queue_ahead(s), ref.queue_ahead(s)
            assert (math.isnan(k) and math.isnan(r)) or k == pytest.approx(r, rel=1e-12, abs=1e-12)
            if not math.isnan(k):
                assert k >= 0.0
                best = 100
                assert kernel.fill_probability(s, 1.0, sigma, best) == pytest.approx(
                    ref.fill_probability(s, 1.0, sigma, best), rel=1e-9, abs=1e-300)
        for side in (1, -1):
            assert kernel.touch_rate(side) == pytest.approx(ref.touch_rate(side), rel=1e-12)


# ---------- the real mainnet BTC stream ----------

def load_stream() -> list[tuple[float, str, object]]:
    frames = []
    with gzip.open(STREAM, "rt") as fh:
        for line in fh:
            stamp, raw = line.split(" ", 1)
            msg = orjson.loads(raw)
            frames.append((int(stamp) / 1e9, msg["channel"], msg["data"]))
    return frames


def ticks(px: str) -> int:
    return round(float(px) * BTC_UNITS_PER_PRICE)


def test_real_btc_stream_matches_reference_and_invariants():
    frames = load_stream()
    assert sum(1 for f in frames if f[1] == "l2Book") == 46
    kernel, ref = QueueTracker(16), QueueTrackerRef(16)
    placed = False
    n_trades = 0
    for t, channel, data in frames:
        if channel == "trades":
            for tr in data:
                aggressor = 1 if tr["side"] == "B" else -1
                args = (t, ticks(tr["px"]), float(tr["sz"]), aggressor)
                assert kernel.on_trade(*args) == ref.on_trade(*args)
                n_trades += 1
            continue
        bids, asks = data["levels"]
        if not placed:  # join five displayed levels per side at the first snapshot
            for i in range(5):
                for slot, side, level in ((i, 1, bids[2 * i]), (8 + i, -1, asks[2 * i])):
                    args = (slot, side, ticks(level["px"]), 0.001, float(level["sz"]), t)
                    assert kernel.add(*args) == 0 and ref.add(*args) == 0
            placed = True
            continue
        before = [kernel.queue_ahead(s) for s in range(16)]
        for side, levels, opposite in ((1, bids, asks), (-1, asks, bids)):
            px = [ticks(lv["px"]) for lv in levels]
            sz = [float(lv["sz"]) for lv in levels]
            best_opp = ticks(opposite[0]["px"])
            assert kernel.on_book(*book_arrays(px, sz), side, best_opp) == ref.on_book(px, sz, side, best_opp)
        for s in range(16):
            k = kernel.queue_ahead(s)
            assert (math.isnan(k) and math.isnan(ref.queue_ahead(s))) or k == pytest.approx(
                ref.queue_ahead(s), rel=1e-12, abs=1e-12)
            if not math.isnan(k):
                assert 0.0 <= k <= before[s]
    assert n_trades > 0
    assert kernel.touch_rate(-1) > 1e-6  # buy aggressors fed the ask side
    # at least one queue moved on real data
    starts = [float(lv["sz"]) for lv in frames[0][2]["levels"][0][0:10:2]]
    assert any(kernel.queue_ahead(i) < starts[i] for i in range(5)) or any(
        kernel.queue_ahead(8 + i) < float(frames[0][2]["levels"][1][2 * i]["sz"]) for i in range(5))


def test_fill_probability_new_and_should_refresh():
    tracker, ref = QueueTracker(2), QueueTrackerRef(2)
    for t in (tracker, ref):
        t.on_trade(0.0, 1000, 50.0, -1)      # bid touch rate ~0.58 coin/s
        t.add(0, 1, 990, 1.0, 2.0, 0.5)       # 1 % below the touch, 2 coin ahead
    sigma = 5e-3
    p_cur = tracker.fill_probability(0, 1.0, sigma, 1000)
    assert p_cur == pytest.approx(ref.fill_probability(0, 1.0, sigma, 1000), rel=1e-12)
    p_touch_level = tracker.fill_probability_new(1, 1000, 0.5, 1.0, sigma, 1000)
    assert p_touch_level == pytest.approx(ref.fill_probability_new(1, 1000, 0.5, 1.0, sigma, 1000), rel=1e-12)
    assert p_touch_level > 1.1 * p_cur
    assert tracker.should_refresh(0, 1000, 0.5, 1.0, sigma, 1000)               # a short queue at the touch
    assert not tracker.should_refresh(0, 989, 2.0, 1.0, sigma, 1000)            # one tick worse
    assert not tracker.should_refresh(0, 1000, 0.5, 1.0, sigma, 1000, threshold=1e9)
    assert not tracker.should_refresh(1, 1000, 0.5, 1.0, sigma, 1000)           # empty slot
    assert math.isnan(tracker.fill_probability_new(0, 1000, 0.5, 1.0, sigma, 1000))
