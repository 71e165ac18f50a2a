"""Incremental Hawkes intensity and the liquidation-cascade detector vs brute-force references."""
from __future__ import annotations

import gzip
import math
import random

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hlfast.estimators import CascadeDetector, Hawkes
from tests.paths import SHARED
from tests.reference.estimators import CascadeDetectorRef, HawkesRef

BINANCE = SHARED / "data" / "binance" / "btcusdt_20240808.gz"
HL_STREAM = SHARED / "fixtures" / "hyperliquid" / "recorded_stream_btc_20250126.gz"


def rel_close(a: float, b: float, rel: float = 1e-9) -> bool:
    return abs(a - b) <= rel * max(abs(a), abs(b))


# "event" ops add a mark after dt (dt < 0 = out of order); "query" ops ask λ at t + dt.
op = st.tuples(
    st.sampled_from(["event", "query"]),
    st.floats(-2.0, 30.0),
    st.one_of(st.floats(0.01, 50.0), st.sampled_from([math.nan, 0.0, -1.0, math.inf])),
)


@settings(deadline=None, max_examples=300)
@given(st.lists(op, max_size=150), st.floats(0.001, 1.0), st.floats(0.0, 2.0), st.floats(0.01, 2.0))
def test_hawkes_equals_brute_force(ops, mu: float, alpha: float, beta: float) -> None:
    kern, ref = Hawkes(mu, alpha, beta), HawkesRef(mu, alpha, beta)
    t = 100.0
    for kind, dt, s in ops:
        if kind == "event":
            t += dt
            assert kern.on_event(t, s) == ref.on_event(t, s)
        else:
            q = t + dt
            assert rel_close(kern.intensity(q), ref.intensity(q))
    assert kern.events == len(ref.events)
    assert rel_close(kern.intensity(t + 1.0), ref.intensity(t + 1.0))


def test_hawkes_decay_half_life_and_no_mutation() -> None:
    h = Hawkes(mu=0.01, alpha=0.5, beta=0.1)
    assert h.intensity(5.0) == 0.01  # no events: baseline
    h.on_event(10.0, 2.0)
    assert h.intensity(10.0) == pytest.approx(0.01 + 1.0)
    half = 10.0 + math.log(2.0) / 0.1
    assert h.intensity(half) == pytest.approx(0.01 + 0.5, rel=1e-12)
    for _ in range(3):  # queries never change the state
        assert h.intensity(half) == pytest.approx(0.01 + 0.5, rel=1e-12)
    assert h.excitation == pytest.approx(1.0) and h.t_last == 10.0
    assert h.intensity(1e9) == pytest.approx(0.01)  # decays to the baseline, no underflow NaN


def test_hawkes_bad_inputs_and_out_of_order() -> None:
    h = Hawkes()
    for t, s in ((math.nan, 1.0), (1.0, math.nan), (1.0, 0.0), (1.0, -2.0), (math.inf, 1.0), (1.0, 1e300)):
        assert h.on_event(t, s) == 1
    assert h.rejected == 6 and h.events == 0 and h.intensity(1.0) == 0.01
    h.on_event(10.0, 1.0)
    h.on_event(8.0, 1.0)  # late event: applied at t_last
    assert h.out_of_order == 1 and h.intensity(10.0) == pytest.approx(0.01 + 1.0)
    assert h.intensity(math.nan) == pytest.approx(0.01 + 1.0)
    with pytest.raises(ValueError):
        Hawkes(mu=0.0)
    with pytest.raises(ValueError):
        Hawkes(beta=-1.0)


# ----------------------------------------------------------------------------- cascade detector
CASCADE_OUT = ("ratio", "severity", "size_factor", "spread_mult")

trade = st.tuples(
    st.floats(0.0, 5.0),                         # Δt
    st.floats(math.log(50.0), math.log(5e6)),    # log notional
    st.sampled_from([1, -1]),
    st.booleans(),                               # liquidation flag
)


@settings(deadline=None, max_examples=100)
@given(st.lists(trade, max_size=300), st.sampled_from([0.0, 5.0]), st.sampled_from([0.0, 20.0, 600.0]))
def test_cascade_matches_reference(trades, cooldown: float, baseline_half_life: float) -> None:
    kw = dict(mu=0.05, alpha=0.8, beta=0.2, size_scale=10000.0, warmup_s=10.0, cooldown_s=cooldown,
              quantile_min_trades=20, baseline_half_life=baseline_half_life)
    kern, ref = CascadeDetector(**kw), CascadeDetectorRef(**kw)
    t = 0.0
    for dt, lx, side, liq in trades:
        t += dt
        kern.on_trade(t, math.exp(lx), side, liq)
        ref.on_trade(t, math.exp(lx), side, liq)
        for name in CASCADE_OUT:
            assert rel_close(getattr(kern, name), ref.out[name]), name
        assert (kern.active, kern.pull, kern.direction) == (ref.out["active"], ref.out["pull"], ref.out["direction"])
    assert kern.log_q == pytest.approx(ref.log_q, rel=1e-12, abs=1e-12)
    later = t + 3.0
    kern.update(later)
    assert rel_close(kern.ratio, ref.update(later)["ratio"])
    assert rel_close(kern.baseline, ref.baseline(later))


def _severity_at_rate(rate: float) -> CascadeDetector:
    det = CascadeDetector(baseline_half_life=0.0)  # the fixed-μ ratio
    n = int(120 * rate)
    for k in range(n + 1):  # mark floor 0.01: stationary R ≈ 1 + α·0.01·rate/(β·μ) = 1 + 5·rate
        det.on_trade(k / rate, 100.0, -1, True)
    det.update(120.0)
    return det


def test_cascade_severity_monotone_in_event_rate() -> None:
    rates = [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0]
    dets = [_severity_at_rate(r) for r in rates]
    for lo, hi in zip(dets, dets[1:], strict=False):
        assert hi.ratio > lo.ratio
        assert hi.severity >= lo.severity
        assert hi.spread_mult >= lo.spread_mult
        assert hi.size_factor <= lo.size_factor
    assert dets[0].severity < 0.5 and not dets[0].pull
    assert dets[-1].severity == 1.0 and dets[-1].pull and dets[-1].size_factor == 0.0


def test_cascade_thresholds_and_outputs() -> None:
    # One liquidation of notional 6e4 ⇒ mark 6, excitation α·6 = 3 at the event: R = (0.01 + 3)/0.01.
    det = CascadeDetector(mu=1.0, alpha=0.5, beta=0.1, warmup_s=0.0, baseline_half_life=0.0)
    det.on_trade(0.0, 60_000.0, -1, True)
    assert det.ratio == pytest.approx(4.0)
    assert det.active and not det.pull
    assert det.severity == pytest.approx(0.75)
    assert det.size_factor == pytest.approx(0.5)
    assert det.spread_mult == pytest.approx(2.5)
    assert det.direction == -1 and det.direction_name == "long"
    det.on_trade(0.0, 60_000.0, 1, True)   # R = 7: pull
    assert det.pull and det.size_factor == 0.0 and det.severity == 1.0
    assert det.direction == 0 and det.direction_name == "both"
    det.update(1000.0)                      # long after: quiet again
    assert det.ratio == pytest.approx(1.0) and not det.active and det.size_factor == 1.0


def test_cascade_warmup_keeps_outputs_quiet() -> None:
    det = CascadeDetector(warmup_s=60.0, baseline_half_life=0.0)
    for k in range(50):
        det.on_trade(k * 1.0, 1e6, 1, True)
        assert not det.warm and det.ratio == 1.0 and det.severity == 0.0 and not det.pull
    det.update(60.0)
    assert det.warm and det.pull and det.direction == 1 and det.direction_name == "short"


def test_cascade_cooldown_holds_active() -> None:
    det = CascadeDetector(mu=1.0, alpha=0.5, beta=1.0, warmup_s=0.0, cooldown_s=30.0, baseline_half_life=0.0)
    det.on_trade(0.0, 60_000.0, -1, True)
    assert det.active
    det.update(10.0)                        # R back near 1, still inside the cool-down
    assert det.ratio < 1.01 and det.active and not det.pull
    det.update(31.0)
    assert not det.active


def test_cascade_streaming_quantile_flags_about_one_percent() -> None:
    rng = random.Random(5)
    det = CascadeDetector()
    n, flagged_late = 40_000, 0
    for k in range(n):
        before = det.large_trades
        det.on_trade(k * 0.05, math.exp(rng.gauss(8.0, 1.5)), 1 if k % 2 else -1, False)
        if k >= n // 2:
            flagged_late += det.large_trades - before
    true_q99 = math.exp(8.0 + 1.5 * 2.3263)
    assert det.notional_quantile == pytest.approx(true_q99, rel=0.35)
    assert 0.005 < flagged_late / (n // 2) < 0.02
    assert det.liquidations == 0 and det.events == det.large_trades


def test_cascade_bad_inputs() -> None:
    det = CascadeDetector(warmup_s=0.0)
    for args in ((math.nan, 1e4, 1, True), (1.0, math.nan, 1, True), (1.0, 0.0, 1, True),
                 (1.0, -5.0, -1, True), (1.0, 1e4, 0, True), (1.0, 1e300, 1, True)):
        assert det.on_trade(*args) == 1
    assert det.rejected == 6 and det.events == 0 and det.trades == 0
    det.update(math.nan)
    assert det.ratio == 1.0 and det.direction_name == "none"
    with pytest.raises(ValueError):
        CascadeDetector(size_scale=0.0)
    for bad in (-1.0, math.nan, math.inf):
        with pytest.raises(ValueError):
            CascadeDetector(baseline_half_life=bad)


def test_cascade_on_real_trade_streams() -> None:
    """Real BTC tapes without liquidation flags: only the large-trade fallback fires."""
    if not BINANCE.exists() or not HL_STREAM.exists():
        pytest.skip("shared data not available")
    kern, ref = CascadeDetector(), CascadeDetectorRef()
    n = 0
    with gzip.open(BINANCE, "rb") as f:
        for line in f:
            if b"@trade" not in line[:80]:
                continue
            ts, _, body = line.partition(b" ")
            d = orjson.loads(body)["data"]
            t, notional, side = int(ts) * 1e-9, float(d["p"]) * float(d["q"]), -1 if d["m"] else 1
            kern.on_trade(t, notional, side, False)
            ref.on_trade(t, notional, side, False)
            n += 1
            if n >= 4000:
                break
    assert kern.trades == n and kern.rejected == 0 and kern.liquidations == 0
    assert 0 < kern.large_trades < 0.05 * n
    assert rel_close(kern.ratio, ref.out["ratio"]) and kern.direction == ref.out["direction"]
    assert math.isfinite(kern.ratio) and 0.0 <= kern.severity <= 1.0
    hl = CascadeDetector(warmup_s=0.0)
    with gzip.open(HL_STREAM, "rb") as f:
        for line in f:
            ts, _, body = line.partition(b" ")
            frame = orjson.loads(body)
            if frame["channel"] == "trades":
                for tr in frame["data"]:
                    hl.on_trade(int(ts) * 1e-9, float(tr["px"]) * float(tr["sz"]), 1 if tr["side"] == "B" else -1,
                                False)
    assert hl.trades > 0 and hl.rejected == 0 and hl.events == 0 and hl.ratio == 1.0


# ----------------------------------------------------------------------------- adaptive baseline
def _busy_tape(det: CascadeDetector, rng: random.Random, t0: float, t1: float, rate: float) -> list[bool]:
    """Liquidation-flagged events at `rate`/s with log-normal notionals; det.pull once per second."""
    pulls, t, next_sample = [], t0, t0 + 1.0
    while True:
        t += rng.expovariate(rate)
        while next_sample <= min(t, t1):
            det.update(next_sample)
            pulls.append(det.pull)
            next_sample += 1.0
        if t >= t1:
            return pulls
        det.on_trade(t, 20_000.0 * math.exp(0.8 * rng.gauss(0.0, 1.0)), rng.choice((1, -1)), True)


def test_baseline_rate_is_unbiased_from_the_start() -> None:
    det = CascadeDetector(mu=0.01, alpha=0.5, beta=0.1, warmup_s=0.0, baseline_half_life=600.0)
    for k in range(31):                     # mark 2 every second: 2 marks/s
        det.on_trade(float(k), 20_000.0, 1, True)
    # the EWMA weight since the first trade is τ·(1 − e^{−30/τ}); the decayed mass matches it closely
    assert det.event_rate == pytest.approx(2.0 * 31 / 30, rel=0.03)
    assert det.baseline == pytest.approx(0.01 + 0.5 / 0.1 * det.event_rate, rel=1e-12)
    assert 0.5 < det.ratio < 1.5           # a steady stream is the norm, not a cascade
    quiet = CascadeDetector(baseline_half_life=600.0)
    quiet.update(100.0)
    assert quiet.baseline == 0.01 and quiet.event_rate == 0.0


def test_busy_tape_is_not_a_cascade_but_a_burst_on_it_is() -> None:
    rng = random.Random(11)
    adaptive, fixed = CascadeDetector(), CascadeDetector(baseline_half_life=0.0)
    steady_a = _busy_tape(adaptive, random.Random(11), 0.0, 900.0, 0.5)
    steady_f = _busy_tape(fixed, rng, 0.0, 900.0, 0.5)
    # after warm-up: the fixed μ = 0.01/s sees R ≈ 1 + α·s̄·0.5/(β·μ) ≫ 5 forever
    assert sum(steady_f[60:]) / len(steady_f[60:]) > 0.95
    assert sum(steady_a[60:]) / len(steady_a[60:]) < 0.03
    burst = _busy_tape(adaptive, random.Random(12), 900.0, 915.0, 8.0)   # 16× the normal rate for 15 s
    assert any(burst) and adaptive.ratio > 5.0
    after = _busy_tape(adaptive, random.Random(13), 915.0, 1100.0, 0.5)
    assert not any(after[60:])              # back to normal once the excitation decays


def test_cascade_trips_on_synthetic_liquidation_cascades() -> None:
    """The venue's synthetic market: every large liquidation burst pulls, the tape between them does not."""
    from hlfast.venue.market import DEFAULT_COINS
    from hlfast.venue.synthetic import SyntheticParams, SyntheticSource

    src = SyntheticSource([DEFAULT_COINS["BTC"]], seed=4, block_ms=100,
                          params=SyntheticParams(cascade_rate=1.0 / 300.0))
    det = CascadeDetector()
    bursts: list[list[float]] = []          # [start, liquidation trades, max ratio]
    last_liq, quiet_pulled, quiet_s, t = -math.inf, 0, 0, 0.0
    for _ in range(12_000):                 # 1200 s
        block = src.next_block()
        t = block.time_ms / 1000.0
        for side, px, sz, liquidation in block.trades["BTC"]:
            det.on_trade(t, px * sz, 1 if side == "B" else -1, liquidation)
            if liquidation:
                if t - last_liq > 10.0:
                    bursts.append([t, 0, 0.0])
                bursts[-1][1] += 1
                last_liq = t
        det.update(t)
        if bursts and t - bursts[-1][0] < 20.0:
            bursts[-1][2] = max(bursts[-1][2], det.ratio)
        elif det.warm:
            quiet_s += 1
            quiet_pulled += det.pull
    large = [b for b in bursts if b[1] >= 15 and b[0] - bursts[0][0] > 60.0]
    assert large, "the seed must hold a large cascade after warm-up"
    assert all(b[2] >= 5.0 for b in large), large
    assert det.liquidations > 0 and quiet_pulled / quiet_s < 0.01


def test_cascade_on_real_capture_is_not_a_permanent_pull() -> None:
    """BTCUSDT 2024-08-08 (~60 trades/s): the fixed μ pulls for good, the adaptive baseline briefly."""
    if not BINANCE.exists():
        pytest.skip("shared data not available")
    adaptive, fixed = CascadeDetector(), CascadeDetector(baseline_half_life=0.0)
    last, warm_s, pulled_s, fixed_pulled_s = None, 0.0, 0.0, 0.0
    with gzip.open(BINANCE, "rb") as f:
        for line in f:
            if b"@trade" not in line[:80]:
                continue
            ts, _, body = line.partition(b" ")
            d = orjson.loads(body)["data"]
            t = int(ts) * 1e-9
            if last is not None and adaptive.warm:
                warm_s += t - last
                pulled_s += (t - last) * adaptive.pull
                fixed_pulled_s += (t - last) * fixed.pull
            for det in (adaptive, fixed):
                det.on_trade(t, float(d["p"]) * float(d["q"]), -1 if d["m"] else 1, False)
            last = t
    assert warm_s > 200.0
    assert fixed_pulled_s / warm_s > 0.99
    assert 0.0 < pulled_s / warm_s < 0.10    # the 25 bp sell-off around t ≈ 220 s still trips it
    assert adaptive.baseline > 100 * adaptive.hawkes.mu
