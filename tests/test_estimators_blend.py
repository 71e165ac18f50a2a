"""FillIntensity before it is ready: the fit shrunk towards the prior by window coverage (and the strict prior)."""
from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hlfast.estimators import FillIntensity
from tests.reference.estimators import FillIntensityRef
from tests.test_estimators import feed_fill_intensity

FIELDS = ("kappa", "A", "kappa_bid", "A_bid", "kappa_ask", "A_ask", "confidence", "weight")

event = st.tuples(
    st.floats(0.0, 0.6),             # Δt
    st.sampled_from(["mid", "buy", "sell"]),
    st.integers(-3, 40),             # trade offset from the mid in half ticks, or a mid move
)


def close(a: float, b: float, rel: float = 1e-9) -> bool:
    return abs(a - b) <= rel * max(abs(a), abs(b))


@settings(deadline=None, max_examples=60)
@given(st.lists(event, min_size=1, max_size=300), st.booleans())
def test_blend_matches_reference(events: list[tuple[float, str, int]], blend: bool) -> None:
    # min_window 20 s inside an 80 s window: the runs cover blending, ready and evicted states
    kern = FillIntensity(1.0, window=80.0, n_bins=20, blend=blend, min_window=20.0)
    ref = FillIntensityRef(1.0, window=80.0, n_bins=20, blend=blend, min_window=20.0)
    feed_fill_intensity(kern, ref, events, t0=100.0)
    if not ref.mids:
        return
    kern.refit()
    expect = ref.fit()
    assert kern.ready == expect["ready"]
    for name in FIELDS:
        assert close(getattr(kern, name), expect[name]), name
    assert 0.0 <= kern.weight <= 1.0
    if not blend and not kern.ready:
        assert (kern.kappa, kern.A, kern.weight) == (2000.0, 1.0, 0.0)


def exponential_market(fi: FillIntensity, seconds: float, kappa_true: float, seed: int) -> list[tuple[float, float]]:
    """Per 100 ms step each side reaches Exp(κ) beyond the mid with prob. 0.3; (t, κ) after every refit."""
    rng = random.Random(seed)
    mid = 50_000.0
    fi.on_mid(0.0, mid)
    path = []
    fits = fi.fits
    for k in range(1, int(seconds * 10)):
        t = k * 0.1 + 0.05
        fi.on_mid(t - 0.01, mid)
        for side in (1, -1):
            if rng.random() < 0.3:
                fi.on_trade(t, mid + side * rng.expovariate(kappa_true) * mid, side)
        if fi.fits != fits:
            fits = fi.fits
            path.append((fi.covered_s, fi.kappa, fi.weight))
    return path


def test_blend_moves_from_the_prior_to_the_fit_without_a_jump() -> None:
    kappa_true = 8000.0
    fi = FillIntensity(1.0, kappa0=2000.0)
    path = exponential_market(fi, 120.0, kappa_true, seed=5)
    before = [(c, k, w) for c, k, w in path if c < 60.0]
    assert before and fi.ready and fi.weight == 1.0
    assert fi.kappa == pytest.approx(kappa_true, rel=0.25)
    for covered, kappa, weight in before:
        assert weight == pytest.approx(covered / 60.0)
        # a geometric mean of the prior and a fit near the truth: between the two in log space
        assert 2000.0 * 0.9 <= kappa <= kappa_true * 1.5
        assert fi.confidence > 0.0  # (ready now) while blending the confidence stayed 0
    # the weight grows with coverage, and the last blended κ is already close to the ready fit
    assert [w for _, _, w in before] == sorted(w for _, _, w in before)
    last_blend = before[-1][1]
    first_ready = next(k for c, k, _ in path if c >= 60.0)
    assert abs(math.log(first_ready / last_blend)) < 0.25
    # the strict §4 behaviour keeps the prior until ready, then jumps to the fit
    strict = FillIntensity(1.0, kappa0=2000.0, blend=False)
    strict_path = exponential_market(strict, 120.0, kappa_true, seed=5)
    assert all(k == 2000.0 and w == 0.0 for c, k, w in strict_path if c < 60.0)
    assert strict.kappa == fi.kappa


def test_flat_or_rising_fit_keeps_the_prior() -> None:
    # every trade reaches exactly one tick: one plateau, slope 0 → no decaying fit to trust yet
    fi = FillIntensity(1.0, kappa0=1500.0, a0=2.0)
    fi.on_mid(0.0, 1000.0)
    for k in range(1, 300):
        t = k * 0.1
        fi.on_mid(t, 1000.0)
        fi.on_trade(t + 0.01, 1001.0, 1)
    fi.refit()
    assert not fi.ready and fi.covered_s < 60.0
    assert (fi.kappa, fi.A, fi.weight, fi.confidence) == (1500.0, 2.0, 0.0, 0.0)


def test_blend_options_are_validated() -> None:
    with pytest.raises(ValueError):
        FillIntensity(1.0, min_window=0.0)
    with pytest.raises(ValueError):
        FillIntensity(1.0, min_window=math.nan)
    fi = FillIntensity(1.0, blend=False, min_window=30.0)
    assert fi.min_window == 30.0 and not fi.blend and fi.weight == 0.0


# ----------------------------------------------------------------------------- drift shrinkage
def test_drift_shrinks_noise_and_keeps_a_clear_trend() -> None:
    from hlfast.estimators import Drift

    sigma, dt = 2e-4, 0.1
    rng = random.Random(3)
    noise, raw_noise = Drift(10.0), Drift(10.0, shrink=False)
    lp, shrunk_sq, raw_sq, n = math.log(60_000.0), 0.0, 0.0, 0
    for k in range(1, 6000):
        lp += sigma * math.sqrt(dt) * rng.gauss(0.0, 1.0)
        noise.update(k * dt, math.exp(lp))
        raw_noise.update(k * dt, math.exp(lp))
        if k > 600:
            shrunk_sq += noise.mu**2
            raw_sq += raw_noise.mu**2
            n += 1
    tau = 10.0 / math.log(2.0)
    # without drift the raw estimate's rms is its sampling sd σ/√(2τ), and the estimator knows it
    assert math.sqrt(raw_sq / n) == pytest.approx(sigma / math.sqrt(2.0 * tau), rel=0.25)
    assert noise.noise_sd == pytest.approx(sigma / math.sqrt(2.0 * tau), rel=0.25)
    assert raw_noise.mu_raw == noise.mu_raw and raw_noise.mu == raw_noise.mu_raw
    assert math.sqrt(shrunk_sq / n) < 0.5 * math.sqrt(raw_sq / n)
    # a drift of 5 noise sds comes through nearly whole
    trend = Drift(10.0)
    drift = 5.0 * sigma / math.sqrt(2.0 * tau)
    lp = math.log(60_000.0)
    kept = []
    for k in range(1, 6000):
        lp += drift * dt + sigma * math.sqrt(dt) * rng.gauss(0.0, 1.0)
        trend.update(k * dt, math.exp(lp))
        if k > 600:
            kept.append(trend.mu / drift)
    assert 0.75 < sum(kept) / len(kept) < 1.1
    assert abs(trend.mu) <= abs(trend.mu_raw)
