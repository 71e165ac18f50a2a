"""Volatility, SvStats, FillIntensity, Drift and LatencyEwma against the plain-Python references."""
from __future__ import annotations

import gzip
import math
import random

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hlfast.estimators import Drift, FillIntensity, LatencyEwma, SvStats, Volatility
from tests.paths import SHARED
from tests.reference.estimators import (
    DriftRef,
    FillIntensityRef,
    LatencyEwmaRef,
    SvStatsRef,
    VolatilityRef,
    expected_avg_variance,
    leverage_sigma,
    sv_batch,
)

BINANCE = SHARED / "data" / "binance" / "btcusdt_20240808.gz"
HL_STREAM = SHARED / "fixtures" / "hyperliquid" / "recorded_stream_btc_20250126.gz"


def close(a: float, b: float, rel: float = 1e-9, abs_tol: float = 0.0) -> bool:
    return abs(a - b) <= rel * max(abs(a), abs(b)) + abs_tol


def load_binance(max_s: float = 1e9) -> list[tuple[str, float, float, int]]:
    """Events ("mid", t, mid, 0) from bookTicker and ("trade", t, px, side) from trades, in file order."""
    if not BINANCE.exists():
        pytest.skip("Binance capture not available")
    out: list[tuple[str, float, float, int]] = []
    t0 = None
    with gzip.open(BINANCE, "rb") as f:
        for line in f:
            ts, _, body = line.partition(b" ")
            t = int(ts) * 1e-9
            t0 = t if t0 is None else t0
            if t - t0 > max_s:
                break
            if b"bookTicker" in body[:40]:
                d = orjson.loads(body)["data"]
                out.append(("mid", t, 0.5 * (float(d["b"]) + float(d["a"])), 0))
            elif b"@trade" in body[:40]:
                d = orjson.loads(body)["data"]
                out.append(("trade", t, float(d["p"]), -1 if d["m"] else 1))
    return out


@pytest.fixture(scope="module")
def binance_events() -> list[tuple[str, float, float, int]]:
    return load_binance()


# ----------------------------------------------------------------------------- Volatility
VOL_FIELDS = ("sigma_fast", "sigma_mid", "sigma_slow", "sigma_clean", "sigma_total", "jump_ratio", "sigma_eff")

price_step = st.tuples(
    st.floats(-0.01, 2.0),  # Δt (≤ 0 exercises the skip path)
    st.one_of(st.floats(-2e-3, 2e-3), st.sampled_from([math.nan, math.inf, -1.0, 0.0])),
)


@settings(deadline=None, max_examples=150)
@given(st.lists(price_step, max_size=120))
def test_volatility_matches_reference(steps: list[tuple[float, float]]) -> None:
    kern, ref = Volatility(warmup_s=5.0), VolatilityRef(warmup_s=5.0)
    t, logp = 0.0, math.log(100.0)
    for dt, r in steps:
        t += dt
        if math.isfinite(r) and abs(r) < 1:
            logp += r
            price = math.exp(logp)
        else:
            price = r  # NaN / inf / −1 / 0 are bad prices
        assert kern.update(t, price) == ref.update(t, price)
    for name in VOL_FIELDS:
        assert close(getattr(kern, name), getattr(ref, name), 1e-12), name
    assert (kern.warm, kern.samples, kern.rejected, kern.skipped) == (ref.warm, ref.samples, ref.rejected, ref.skipped)
    assert kern.last_return == pytest.approx(ref.last_return, rel=1e-12, abs=1e-300)


def test_volatility_real_binance_mids(binance_events) -> None:
    kern, ref = Volatility(), VolatilityRef()
    last_t = -1.0
    for kind, t, px, _ in binance_events:
        if kind == "mid" and t - last_t >= 0.1:  # book-update cadence, as the engine samples
            kern.update(t, px)
            ref.update(t, px)
            last_t = t
    for name in VOL_FIELDS:
        assert close(getattr(kern, name), getattr(ref, name), 1e-9), name
    assert kern.warm and kern.rejected == 0
    # BTC over 6 minutes: σ per √s between 1e-6 and 1e-3 (≈ 0.03 %–30 % daily).
    assert 1e-6 < kern.sigma_eff < 1e-3
    assert 1e-6 < kern.sigma_clean < 1e-3


def _drive(scale: float) -> Volatility:
    rng = random.Random(7)
    v = Volatility(warmup_s=0.0)
    t, lp = 0.0, math.log(50_000.0)
    for _ in range(400):
        t += rng.uniform(0.05, 1.0)
        lp += scale * rng.gauss(0.0, 1e-4)
        v.update(t, math.exp(lp))
    return v


@pytest.mark.parametrize("scale", [1.5, 3.0, 10.0])
def test_sigma_monotone_in_return_magnitude(scale: float) -> None:
    base, big = _drive(1.0), _drive(scale)
    for name in ("sigma_fast", "sigma_mid", "sigma_slow", "sigma_clean", "sigma_total"):
        assert getattr(big, name) > getattr(base, name), name
    assert big.sigma_eff >= base.sigma_eff


def test_volatility_warmup_uses_prior() -> None:
    v = Volatility(prior=3e-4, warmup_s=30.0)
    p = 100.0
    for i in range(60):  # 29.5 s of 0.5 s samples with 1e-3 moves
        p *= 1.001 if i % 2 else 0.999
        v.update(i * 0.5, p)
        assert not v.warm
        assert v.sigma_eff == 3e-4
    v.update(30.0, p * 1.001)
    assert v.warm
    assert v.sigma_eff != 3e-4 and v.sigma_eff <= 10 * 3e-4


def test_volatility_bad_inputs_counted_and_outputs_finite() -> None:
    v = Volatility(warmup_s=0.0)
    assert v.update(0.0, 100.0) == 0
    for bad in (math.nan, math.inf, -math.inf, 0.0, -5.0):
        assert v.update(1.0, bad) == 1
    assert v.update(math.nan, 100.0) == 1
    assert v.rejected == 6
    assert v.update(0.0, 100.5) == 2 and v.skipped == 1  # Δt = 0
    assert v.update(1.0, 100.1) == 0
    w = Volatility(warmup_s=0.0)
    w.update(0.0, 1e-300)
    assert w.update(1e-310, 1e300) == 1  # r²/Δt overflows: rejected, state untouched
    assert w.rejected == 1 and math.isfinite(w.sigma_fast)
    for name in VOL_FIELDS:
        assert math.isfinite(getattr(v, name))
    with pytest.raises(ValueError):
        Volatility(prior=0.0)
    with pytest.raises(ValueError):
        Volatility(hl_fast=math.nan)


def test_volatility_cap_floor_and_jump_ratio() -> None:
    v = Volatility(prior=2.5e-4, warmup_s=0.0)
    for i in range(200):
        v.update(i * 0.5, 100.0)  # no movement: σ decays toward 0, floored at 1e-7
    assert v.sigma_eff >= 1e-7
    v2 = Volatility(prior=2.5e-4, warmup_s=0.0)
    p = 100.0
    for i in range(100):
        p *= 1.0 + (1e-4 if i % 2 else -1e-4)
        v2.update(i * 0.5, p)
    calm_jr = v2.jump_ratio
    v2.update(50.0, p * 1.05)  # a 5 % jump: realised variance jumps, bipower barely moves
    assert v2.jump_ratio > calm_jr and v2.jump_ratio > 2.0
    assert v2.sigma_eff <= 10 * 2.5e-4


# ----------------------------------------------------------------------------- SvStats
def sv_close(kern: SvStats, ref: dict[str, float], scale: float) -> None:
    assert close(kern.theta, ref["theta"], 1e-9, 1e-12 * scale)
    assert close(kern.xi, ref["xi"], 1e-9, 1e-12 * scale)
    assert close(kern.acf1, ref["acf1"], 1e-9, 1e-12)
    assert close(kern.kappa_v, ref["kappa_v"], 1e-9, 1e-12)
    assert close(kern.rho, ref["rho"], 1e-9, 1e-12)


obs = st.tuples(st.floats(1e-10, 1e-6), st.floats(-1e-3, 1e-3))


@settings(deadline=None, max_examples=200)
@given(st.lists(obs, max_size=80), st.sampled_from([0.0, 3.0, 30.0, 300.0]))
def test_svstats_equals_batch(observations: list[tuple[float, float]], window: float) -> None:
    kern = SvStats(forget_window=window)
    for v, r in observations:
        kern.observe(v, r)
    vs = [o[0] for o in observations]
    rs = [o[1] for o in observations]
    assert kern.n == len(vs)
    sv_close(kern, sv_batch(vs, rs, window), max(vs, default=0.0))


@settings(deadline=None, max_examples=100)
@given(st.lists(st.tuples(st.floats(0.0, 2.5), st.floats(1e-10, 1e-6), st.floats(-2e-3, 2e-3)), max_size=120),
       st.sampled_from([0.0, 20.0]))
def test_svstats_clock_resampling_equals_batch(steps: list[tuple[float, float, float]], window: float) -> None:
    kern, ref = SvStats(forget_window=window), SvStatsRef(forget_window=window)
    t, lp = 1000.0, math.log(3000.0)
    for dt, var, r in steps:
        t += dt
        lp += r
        kern.update(t, var, math.exp(lp))
        ref.update(t, var, math.exp(lp))
    assert kern.n == len(ref.vs)
    sv_close(kern, ref.stats(), max(ref.vs, default=0.0))


def test_svstats_recovers_ar1_mean_reversion_and_leverage() -> None:
    # v_k = θ + ρ₁(v_{k−1} − θ) + noise, with returns negatively correlated with dv.
    rng = random.Random(3)
    theta, rho1 = 6e-8, math.exp(-0.2)
    sv = SvStats()
    v, lp = theta, math.log(100.0)
    for k in range(20000):
        z = rng.gauss(0.0, 1.0)
        v_new = max(1e-12, theta + rho1 * (v - theta) + 0.1 * theta * z)
        r = -0.6 * 2e-4 * z + 0.8 * rng.gauss(0.0, 2e-4)
        lp += r
        sv.update(float(k), v_new, math.exp(lp))
        v = v_new
    assert sv.n > 19000
    assert sv.kappa_v == pytest.approx(0.2, rel=0.15)
    assert sv.theta == pytest.approx(theta, rel=0.05)
    assert sv.rho < -0.4
    assert sv.xi > 0


def test_svstats_forgetting_tracks_regime_change() -> None:
    plain, forget = SvStats(), SvStats(forget_window=30.0)
    for k in range(600):
        v = 1e-8 if k < 300 else 1e-7
        for s in (plain, forget):
            s.observe(v * (1.0 + 0.01 * (k % 3)), 1e-4)
    assert abs(forget.theta - 1e-7) < abs(plain.theta - 1e-7)
    assert forget.theta == pytest.approx(1e-7, rel=0.05)


def test_svstats_expected_variance_and_leverage() -> None:
    sv = SvStats()
    rng = random.Random(1)
    v = 5e-8
    for _ in range(200):
        v = max(1e-10, 5e-8 + 0.8 * (v - 5e-8) + 5e-9 * rng.gauss(0, 1))
        sv.observe(v, -0.5 * (v - 5e-8) * 1e4 * 1e-4 + rng.gauss(0, 1e-5))
    for h in (0.0, 0.5, 10.0, 1e4):
        for v_now in (1e-8, 5e-8, 2e-7):
            assert sv.expected_avg_variance(h, v_now) == pytest.approx(
                expected_avg_variance(sv.theta, sv.kappa_v, h, v_now), rel=1e-12)
    assert sv.expected_avg_variance(0.0, 2e-7) == 2e-7
    assert sv.expected_avg_variance(1e9, 2e-7) == pytest.approx(sv.theta, rel=1e-6)
    assert sv.rho < 0  # returns fall when variance rises
    sigma = 2e-4
    down, up = sv.leverage_sigma(sigma, -3e-4), sv.leverage_sigma(sigma, 3e-4)
    assert down == pytest.approx(leverage_sigma(sv.rho, sigma, -3e-4)) and down > sigma
    assert up == sigma
    assert sv.leverage_sigma(sigma, -1.0) == pytest.approx(1.5 * sigma)  # capped at +50 %
    assert sv.leverage_sigma(0.0, -1.0) == 0.0
    assert sv.leverage_sigma(math.nan, 1.0) == 0.0


def test_svstats_bad_inputs() -> None:
    sv = SvStats()
    assert sv.update(0.0, 1e-8, 100.0) == 0
    for args in ((math.nan, 1e-8, 100.0), (1.0, -1e-8, 100.0), (1.0, math.nan, 100.0), (1.0, 1e-8, 0.0),
                 (1.0, 1e-8, math.inf)):
        assert sv.update(*args) == 1
    assert sv.rejected == 5 and sv.n == 0
    sv.observe(math.nan, 0.0)
    sv.observe(1e300, 0.0)
    assert sv.rejected == 7 and sv.n == 0
    assert sv.kappa_v == 0.1 and sv.theta == 0.0 and sv.rho == 0.0
    with pytest.raises(ValueError):
        SvStats(forget_window=-1.0)


# ----------------------------------------------------------------------------- FillIntensity
FI_FIELDS = ("kappa", "A", "kappa_bid", "A_bid", "kappa_ask", "A_ask", "confidence")

fi_event = st.tuples(
    st.floats(0.0, 1.5),             # Δt
    st.sampled_from(["mid", "buy", "sell"]),
    st.integers(-3, 40),             # trade offset from the mid in ticks, or mid move in ticks
)


def feed_fill_intensity(kern: FillIntensity, ref: FillIntensityRef, events: list[tuple[float, str, int]],
                        t0: float) -> None:
    """The same mid moves and trades (dt, "mid" | "buy" | "sell", ticks) into the kernel and its reference."""
    t, mid = t0, 3000.0
    for dt, kind, ticks in events:
        t += dt
        if kind == "mid":
            mid += 0.5 * (ticks % 5 - 2)
            kern.on_mid(t, mid)
            ref.on_mid(t, mid)
        else:
            side = 1 if kind == "buy" else -1
            px = mid + side * ticks * 0.5
            kern.on_trade(t, px, side)
            ref.on_trade(t, px, side)


@settings(deadline=None, max_examples=60)
@given(st.lists(fi_event, min_size=1, max_size=400))
def test_fill_intensity_matches_batch_reference(events: list[tuple[float, str, int]]) -> None:
    kern = FillIntensity(1.0, window=80.0, n_bins=20)
    ref = FillIntensityRef(1.0, window=80.0, n_bins=20)
    feed_fill_intensity(kern, ref, events, t0=500.0)
    if not ref.mids:
        return
    kern.refit()
    cb, cs = ref.counts()
    assert kern.counts(1) == cb and kern.counts(-1) == cs
    expect = ref.fit()
    assert kern.ready == expect["ready"]
    for name in FI_FIELDS:
        assert close(getattr(kern, name), expect[name], 1e-9), name


def test_fill_intensity_recovers_exponential_decay() -> None:
    # Per 100 ms step, with prob p the farthest trade reaches d ~ Exp(κ) beyond the mid on each side.
    rng = random.Random(11)
    mid, unit, kappa_true, p = 50_000.0, 1.0, 3000.0, 0.3
    fi = FillIntensity(unit, window=600.0)
    fi.on_mid(0.0, mid)
    for k in range(1, 6000):
        t = k * 0.1 + 0.05
        fi.on_mid(t - 0.01, mid)
        for side in (1, -1):
            if rng.random() < p:
                depth = rng.expovariate(kappa_true) * mid
                fi.on_trade(t, mid + side * depth, side)
    fi.on_mid(600.2, mid)
    fi.refit()
    assert fi.ready and fi.fits > 100
    assert fi.kappa == pytest.approx(kappa_true, rel=0.15)
    assert fi.kappa_bid == pytest.approx(kappa_true, rel=0.15)
    assert fi.kappa_ask == pytest.approx(kappa_true, rel=0.15)
    # Steps reaching ~0 depth ≈ p per 0.1 s; the grid starts at ½ tick so A ≈ p/step.
    assert fi.A == pytest.approx(p / 0.1, rel=0.2)
    assert 0.9 < fi.confidence <= 1.0


def test_fill_intensity_real_binance(binance_events) -> None:
    kern, ref = FillIntensity(0.1), FillIntensityRef(0.1)
    for kind, t, px, side in binance_events:
        if kind == "mid":
            kern.on_mid(t, px)
            ref.on_mid(t, px)
        else:
            kern.on_trade(t, px, side)
            ref.on_trade(t, px, side)
    kern.refit()
    expect = ref.fit()
    assert kern.ready and expect["ready"]
    for name in FI_FIELDS:
        assert close(getattr(kern, name), expect[name], 1e-9), name
    assert 50.0 <= kern.kappa <= 1e5 and 1e-3 <= kern.A <= 1e3
    assert 0.0 < kern.confidence <= 1.0
    assert kern.rejected == 0 and kern.out_of_order == 0


def test_fill_intensity_real_hyperliquid_stream() -> None:
    if not HL_STREAM.exists():
        pytest.skip("recorded stream not available")
    fi = FillIntensity(1.0)
    n_trades = 0
    with gzip.open(HL_STREAM, "rb") as f:
        for line in f:
            ts, _, body = line.partition(b" ")
            t = int(ts) * 1e-9
            frame = orjson.loads(body)
            if frame["channel"] == "l2Book":
                bids, asks = frame["data"]["levels"]
                fi.on_mid(t, 0.5 * (float(bids[0]["px"]) + float(asks[0]["px"])))
            elif frame["channel"] == "trades":
                for tr in frame["data"]:
                    fi.on_trade(t, float(tr["px"]), 1 if tr["side"] == "B" else -1)
                    n_trades += 1
    fi.refit()
    assert fi.trades == n_trades > 0 and fi.rejected == 0
    # 30 s of data: below the 60 s warm-up, and 10 trade-through steps are too few to blend in.
    assert not fi.ready and fi.kappa == 2000.0 and fi.A == 1.0 and fi.confidence == 0.0


def test_fill_intensity_warmup_no_trades_and_bad_inputs() -> None:
    fi = FillIntensity(0.1, kappa0=1500.0, a0=2.0)
    assert fi.on_trade(0.0, 100.0, 1) == 2 and fi.no_mid == 1  # no mid yet
    for k in range(1000):
        fi.on_mid(k * 0.1, 100.0)
    assert fi.fits > 0 and not fi.ready
    assert (fi.kappa, fi.A, fi.confidence) == (1500.0, 2.0, 0.0)
    for bad in ((math.nan, 100.0, 1), (1.0, -1.0, 1), (1.0, math.inf, -1), (1.0, 100.0, 0), (1.0, 100.0, 2)):
        assert fi.on_trade(*bad) == 1
    assert fi.on_mid(1.0, 0.0) == 1 and fi.on_mid(math.inf, 1.0) == 1 and fi.on_mid(1e300, 1.0) == 1
    assert fi.rejected == 8
    fi.on_mid(50.0, 100.0)  # time going backwards is absorbed and counted
    assert fi.out_of_order == 1
    with pytest.raises(ValueError):
        FillIntensity(0.0)
    with pytest.raises(ValueError):
        FillIntensity(1.0, n_bins=1)


def test_fill_intensity_window_evicts_old_steps() -> None:
    fi = FillIntensity(1.0, window=100.0)
    fi.on_mid(0.0, 1000.0)
    for k in range(1, 900):
        t = k * 0.1
        fi.on_trade(t, 1000.0 + 1 + (k % 7), 1)
        fi.on_trade(t, 1000.0 - 1 - (k % 5), -1)
    fi.on_mid(90.0, 1000.0)
    fi.refit()
    assert fi.ready and fi.counts(1)[0] > 0
    fi.on_mid(300.0, 1000.0)  # a 210 s gap: everything left the window
    fi.refit()
    assert sum(fi.counts(1)) == 0 and sum(fi.counts(-1)) == 0
    assert not fi.ready and fi.kappa == 2000.0


# ----------------------------------------------------------------------------- Drift / latency
@settings(deadline=None, max_examples=100)
@given(st.lists(st.tuples(st.floats(-0.1, 3.0), st.one_of(st.floats(-1e-3, 1e-3), st.just(math.nan))),
                max_size=100))
def test_drift_matches_reference(steps: list[tuple[float, float]]) -> None:
    kern, ref = Drift(half_life=10.0), DriftRef(half_life=10.0)
    t, lp = 0.0, math.log(2000.0)
    for dt, r in steps:
        t += dt
        price = math.nan if math.isnan(r) else math.exp(lp + r)
        if not math.isnan(r):
            lp += r
        got, want = kern.update(t, price), ref.update(t, price)
        # near the shrinkage threshold both are ~1e-16 of mu_raw: compare on that scale
        assert close(got, want, 1e-9, 1e-12 * abs(ref.mu_raw) + 1e-300)
        assert close(kern.mu_raw, ref.mu_raw, 1e-12, 1e-300)
    assert math.isfinite(kern.mu)


def test_drift_tracks_trend_and_ignores_bad() -> None:
    d = Drift(half_life=10.0)
    for k in range(2000):
        d.update(k * 0.1, 100.0 * math.exp(2e-5 * k * 0.1))
    assert d.mu_raw == pytest.approx(2e-5, rel=1e-6)
    # a noiseless trend: r²/Δt = μ²·Δt, so the shrinkage factor is 1 − Δt/(2τ)
    tau = 10.0 / math.log(2.0)
    assert d.mu == pytest.approx(2e-5 * (1.0 - 0.1 / (2.0 * tau)), rel=1e-6)
    assert d.mu_bps_s == pytest.approx(d.mu * 1e4, rel=1e-12)
    before = d.mu
    assert d.update(300.0, math.nan) == before and d.rejected == 1
    d.update(100.0, 1.0)  # Δt < 0: skipped
    assert d.skipped == 1 and d.mu == before
    with pytest.raises(ValueError):
        Drift(half_life=0.0)


@settings(deadline=None, max_examples=100)
@given(st.lists(st.tuples(st.floats(0.0, 60.0), st.one_of(st.floats(0.0, 1000.0), st.just(-1.0))), max_size=60))
def test_latency_matches_reference(samples: list[tuple[float, float]]) -> None:
    kern, ref = LatencyEwma(), LatencyEwmaRef()
    t = 0.0
    for dt, ms in samples:
        t += dt
        assert close(kern.update(t, ms), ref.update(t, ms), 1e-12)


def test_latency_initial_then_converges() -> None:
    lat = LatencyEwma(half_life=30.0, initial_ms=50.0)
    assert lat.value_ms == 50.0 and not lat.measured
    assert lat.update(0.0, 12.0) == 12.0 and lat.measured
    for k in range(1, 500):
        lat.update(k * 1.0, 30.0)
    assert lat.value_ms == pytest.approx(30.0, rel=1e-3)
    assert lat.update(600.0, math.nan) == pytest.approx(30.0, rel=1e-3) and lat.rejected == 1
    lat.update(600.0, -3.0)
    lat.update(601.0, 1e300)
    assert lat.rejected == 3 and lat.value_ms == pytest.approx(30.0, rel=1e-3)
