"""Quoting kernel (hlfast.quoting): GLFT, ladder, limits, target liquidity, calibration controller."""
from __future__ import annotations

import gzip
import json
import math

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from hlfast.quoting import (
    Calibration,
    Quoter,
    TargetLiquidity,
    ceil_px_ticks,
    effective_gamma,
    floor_px_ticks,
    glft,
    px_wire,
    sz_wire,
)
from tests.paths import HL_FIXTURES
from tests.reference import quoting as ref

FIXTURES = HL_FIXTURES
SAFE_VALUE = 15.0   # $10 minimum x 1.5 safety

_quoters: dict[tuple, Quoter] = {}


def quoter(sz_decimals: int, levels: int = 25) -> Quoter:
    key = (sz_decimals, levels)
    if key not in _quoters:
        _quoters[key] = Quoter(sz_decimals, levels=levels)
    return _quoters[key]


def finite(x: float) -> bool:
    return math.isfinite(x)


def min_lots(px_ticks: int) -> int:
    """Smallest size in lots worth $15 at px_ticks (ticks x lots = USD x 1e6 for every perp)."""
    return -(-round(SAFE_VALUE * 1e6) // px_ticks)


def ladder_of(q: Quoter) -> tuple[list, list]:
    bids = list(zip(q.bid_px.tolist(), q.bid_lots.tolist(), strict=True))
    asks = list(zip(q.ask_px.tolist(), q.ask_lots.tolist(), strict=True))
    return bids, asks


def check_orders(q: Quoter, best_bid: int, best_ask: int, cap_bid: float, cap_ask: float) -> None:
    """Every emitted order is valid on Hyperliquid, post-only safe, monotone and within the caps."""
    szd, pd = q.sz_decimals, q.px_decimals
    for side, px, sz in ((1, q.bid_px, q.bid_sz), (-1, q.ask_px, q.ask_sz)):
        pxs, szs = px.tolist(), sz.tolist()
        for p, s in zip(pxs, szs, strict=True):
            assert finite(s) and s > 0
            assert ref.order_problems(px_wire(p, pd), sz_wire(s, szd), szd, SAFE_VALUE) == []
            assert (p < best_ask) if side > 0 else (p > best_bid)
        steps = [b - a for a, b in zip(pxs, pxs[1:], strict=False)]
        assert all((d < 0) if side > 0 else (d > 0) for d in steps)       # strictly monotone
        total = sum(szs)
        lots = (q.bid_lots if side > 0 else q.ask_lots).tolist()
        rounded_up_minimum = len(pxs) == 1 and lots[0] == min_lots(pxs[0])
        assert rounded_up_minimum or total <= (cap_bid if side > 0 else cap_ask) * (1 + 1e-9) + 1e-12
    for v in (q.delta_bid, q.delta_ask, q.half_spread_bid, q.skew_bid, q.cap_bid, q.cap_ask):
        assert finite(v)


# ---------------------------------------------------------------- strategies

@st.composite
def market(draw, sz_decimals=None):
    szd = draw(st.integers(0, 5)) if sz_decimals is None else sz_decimals
    micro = 10 ** draw(st.floats(-1.5, 5.3))
    micro = float(f"{micro:.9g}")
    spread_lo = draw(st.floats(0, 5e-4))
    spread_hi = draw(st.floats(0, 5e-4))
    bb = floor_px_ticks(micro * (1 - spread_lo), szd)
    ba = ceil_px_ticks(micro * (1 + spread_hi), szd)
    assume(bb >= 1)
    if ba <= bb:
        ba = ceil_px_ticks((bb + 1) / 10 ** (6 - szd), szd)
    if draw(st.booleans()) and draw(st.booleans()):   # stale microprice outside the touch
        micro *= 1 + draw(st.floats(-2e-3, 2e-3))
    return szd, micro, bb, ba


@st.composite
def quote_inputs(draw):
    szd, micro, bb, ba = draw(market())
    max_pos = draw(st.floats(20, 2e5)) / micro
    inputs = dict(
        microprice=micro, best_bid=bb, best_ask=ba, max_position=max_pos,
        gamma=draw(st.one_of(st.just(0.0), st.floats(1e-4, 1e4))),
        sigma=draw(st.floats(0, 5e-3)),
        A=draw(st.floats(1e-2, 100)),
        kappa_bid=draw(st.floats(10, 1e5)),
        kappa_ask=draw(st.floats(10, 1e5)),
        drift=draw(st.floats(-1e-4, 1e-4)),
        position=draw(st.floats(-2.5, 2.5)) * max_pos,
        pending_bid=draw(st.sampled_from([0.0, 0.1, 0.5])) * max_pos,
        pending_ask=draw(st.sampled_from([0.0, 0.1, 0.5])) * max_pos,
        fee_maker=draw(st.floats(-2e-4, 5e-4)),
        q_bid=draw(st.one_of(st.just(math.inf), st.floats(0, 1e5))) / micro,
        q_ask=draw(st.one_of(st.just(math.inf), st.floats(0, 1e5))) / micro,
        half_spread_mult=draw(st.floats(0.2, 3)),
        skew_mult=draw(st.floats(0, 3)),
        min_spread=draw(st.floats(0, 5e-4)),
        adverse_sel=draw(st.floats(0, 3e-4)),
        unit_size=draw(st.one_of(st.just(0.0), st.floats(1e-3, 10))),
        glft_mode=draw(st.sampled_from(["full", "simple"])),
    )
    return szd, inputs


# ---------------------------------------------------------------- GLFT

@settings(deadline=None, max_examples=300)
@given(gamma=st.floats(0, 1e6), sigma=st.floats(0, 1), A=st.floats(1e-9, 1e3),
       kappa=st.floats(1e-9, 1e8), fee=st.floats(-1e-3, 1e-3), mode=st.sampled_from(["full", "simple"]))
def test_glft_matches_reference_and_stays_finite(gamma, sigma, A, kappa, fee, mode) -> None:
    h, s = glft(gamma, sigma, A, kappa, fee, 1.0, mode)
    rh, rs = ref.glft(gamma, sigma, A, kappa, fee, 1.0, mode)
    assert h == pytest.approx(rh, rel=1e-12, abs=1e-18)
    assert s == pytest.approx(rs, rel=1e-12, abs=1e-18)
    assert finite(h) and finite(s) and s >= 0


def test_glft_limits() -> None:
    kappa, fee = 2000.0, 1.5e-4
    # gamma -> 0: the half-spread tends to 1/kappa + fee and the skew to 0, with no inf/NaN
    h0, s0 = glft(0.0, 2.5e-4, 1.0, kappa, fee)
    assert h0 == pytest.approx(1 / kappa + fee, rel=1e-12) and s0 == 0.0
    h_small, s_small = glft(1e-12, 2.5e-4, 1.0, kappa, fee)
    assert h_small == pytest.approx(h0, abs=1e-10) and 0 < s_small < 1e-9
    # the simple form is the seed's (1/gamma) ln(1 + gamma/kappa) + fee
    for gamma in (0.1, 10.0, 2000.0, 1e5):
        hs, _ = glft(gamma, 2.5e-4, 1.0, kappa, fee, 1.0, "simple")
        assert hs == pytest.approx(math.log(1 + gamma / kappa) / gamma + fee, rel=1e-12)
        # ... and the sigma-free limit of the full form
        hf, _ = glft(gamma, 0.0, 1.0, kappa, fee, 1.0, "full")
        assert hf == pytest.approx(hs, rel=1e-12)
    # kappa -> 0 and A -> 0 stay finite
    for args in ((1.0, 2.5e-4, 1.0, 0.0), (1.0, 2.5e-4, 1.0, 1e-300), (1e6, 2.5e-4, 0.0, 2000.0)):
        h, s = glft(*args)
        assert finite(h) and finite(s)
    with pytest.raises(ValueError):
        glft(1.0, 1e-4, 1.0, 2000.0, 0.0, 1.0, "bogus")


@settings(deadline=None, max_examples=200)
@given(gamma=st.floats(1e-4, 1e4), s1=st.floats(0, 1e-2), s2=st.floats(0, 1e-2),
       A=st.floats(1e-2, 100), kappa=st.floats(10, 1e5))
def test_glft_wider_with_higher_sigma(gamma, s1, s2, A, kappa) -> None:
    lo, hi = sorted((s1, s2))
    assert glft(gamma, lo, A, kappa)[0] <= glft(gamma, hi, A, kappa)[0]
    assert glft(gamma, lo, A, kappa)[1] <= glft(gamma, hi, A, kappa)[1]


@settings(deadline=None, max_examples=300)
@given(g=st.floats(-1, 1e4), se=st.floats(-1e-3, 1e-2), sr=st.floats(-1e-4, 1e-3), tox=st.floats(-1, 5),
       pos=st.floats(-10, 10), mp=st.floats(-1, 10), casc=st.floats(-1, 3), cal=st.floats(-1, 1.5))
def test_effective_gamma_matches_reference_and_clamps(g, se, sr, tox, pos, mp, casc, cal) -> None:
    v = effective_gamma(g, se, sr, tox, pos, mp, casc, cal)
    assert v == pytest.approx(ref.effective_gamma(g, se, sr, tox, pos, mp, casc, cal), rel=1e-12, abs=0)
    if g > 0:
        assert 0.05 * g * (1 - 1e-12) <= v <= 20 * g * (1 + 1e-12)
    else:
        assert v == 0.0


def test_effective_gamma_factors() -> None:
    base = effective_gamma(1.0, 1e-4, 1e-4)
    assert base == pytest.approx(1.0)
    assert effective_gamma(1.0, 2e-4, 1e-4) == pytest.approx(2.0)             # vol factor 1 + 1
    assert effective_gamma(1.0, 1e-4, 1e-4, position=0.5, max_position=1.0) == pytest.approx(2.0)
    assert effective_gamma(1.0, 1e-4, 1e-4, calibration_mult=0.3) == pytest.approx(0.3)
    assert effective_gamma(1.0, 1e-4, 1e-4, cascade_mult=100.0) == pytest.approx(20.0)   # clamp
    assert effective_gamma(1.0, math.nan, 1e-4, toxicity=math.nan) == pytest.approx(1.0)
    assert effective_gamma(math.nan, 1e-4, 1e-4) == 0.0


# ---------------------------------------------------------------- the ladder

@settings(deadline=None, max_examples=400)
@given(case=quote_inputs())
def test_quoter_matches_reference_and_emits_only_valid_orders(case) -> None:
    szd, inputs = case
    q = quoter(szd)
    rc = q.quote(**inputs)
    r = ref.quote(szd, **inputs)
    assert rc == r.rc == 0
    bids, asks = ladder_of(q)
    assert bids == r.bids and asks == r.asks
    assert q.bid_depth.tolist() == pytest.approx(r.bid_depths, rel=1e-12)
    for name in ("delta_bid", "delta_ask", "half_spread_bid", "half_spread_ask", "skew_bid",
                 "skew_ask", "cap_bid", "cap_ask"):
        assert getattr(q, name) == pytest.approx(getattr(r, name), rel=1e-12, abs=1e-300), name
    assert (q.bid_empty, q.ask_empty) == (r.bid_empty, r.ask_empty)
    assert (q.bid_empty == 0) == (q.n_bid > 0) and (q.ask_empty == 0) == (q.n_ask > 0)
    check_orders(q, inputs["best_bid"], inputs["best_ask"], q.cap_bid, q.cap_ask)
    assert q.bid_sz.tolist() == [lots / 10**szd for _, lots in bids]


def btc(q: Quoter | None = None, **kw) -> Quoter:
    q = q or quoter(5)
    inputs = dict(microprice=104321.37, best_bid=1043210, best_ask=1043220, max_position=0.05,
                  gamma=0.1)
    inputs.update(kw)
    assert q.quote(**inputs) == 0
    return q


def test_btc_ladder_shape() -> None:
    q = btc()
    assert q.n_bid >= 20 and q.n_ask >= 20     # a few deep levels may merge on the $1 grid
    assert q.bid_px[0] < 1043214 < q.ask_px[0]
    # touch first, geometric spacing out to the 200 bp cap
    assert 1 - q.bid_px[-1] / 1043213.7 <= 0.0201
    assert q.bid_depth[-1] <= 0.02 + 1e-15
    assert (q.bid_sz * q.bid_px / 10).min() >= SAFE_VALUE
    assert q.bid_sz.sum() <= 0.05 + 1e-12 and q.ask_sz.sum() <= 0.05 + 1e-12


@settings(deadline=None, max_examples=150)
@given(s1=st.floats(0, 3e-3), s2=st.floats(0, 3e-3), pos=st.floats(-0.04, 0.04))
def test_wider_with_higher_sigma(s1, s2, pos) -> None:
    lo, hi = sorted((s1, s2))
    a = btc(Quoter(5), sigma=lo, position=pos)
    b = btc(Quoter(5), sigma=hi, position=pos)
    assert a.delta_bid + a.delta_ask <= b.delta_bid + b.delta_ask + 1e-15
    assert a.half_spread <= b.half_spread


@settings(deadline=None, max_examples=150)
@given(p1=st.floats(-0.05, 0.05), p2=st.floats(-0.05, 0.05), gamma=st.floats(1e-3, 1e3))
def test_skew_direction_with_inventory(p1, p2, gamma) -> None:
    lo, hi = sorted((p1, p2))
    a = btc(Quoter(5), position=lo, gamma=gamma, drift=0.0)
    b = btc(Quoter(5), position=hi, gamma=gamma, drift=0.0)
    # longer -> ask closer (or equal at its floor), bid farther
    assert b.delta_ask <= a.delta_ask
    assert b.delta_bid >= a.delta_bid
    if b.n_ask and a.n_ask:
        assert b.ask_px[0] <= a.ask_px[0]
    if b.n_bid and a.n_bid:
        assert b.bid_px[0] <= a.bid_px[0]


def test_long_position_skews_quotes() -> None:
    q = btc(position=0.04, gamma=10.0)
    assert q.delta_ask < q.delta_bid
    q = btc(position=-0.04, gamma=10.0)
    assert q.delta_bid < q.delta_ask


def test_drift_moves_quotes_with_it() -> None:
    up = btc(Quoter(5), drift=2e-6, gamma=1.0)
    down = btc(Quoter(5), drift=-2e-6, gamma=1.0)
    assert up.delta_bid < down.delta_bid and up.delta_ask > down.delta_ask


def test_asymmetric_kappa_per_side() -> None:
    q = btc(kappa_bid=500.0, kappa_ask=20000.0)
    assert q.half_spread_bid > q.half_spread_ask
    assert q.delta_bid > q.delta_ask


def test_multipliers() -> None:
    base = btc(Quoter(5), gamma=5.0, position=0.02)
    wide = btc(Quoter(5), gamma=5.0, position=0.02, half_spread_mult=2.0, skew_mult=0.0)
    assert wide.half_spread_bid == pytest.approx(2 * base.half_spread_bid)
    assert wide.skew_bid == 0.0 and wide.delta_bid == pytest.approx(wide.half_spread_bid)


# ---------------------------------------------------------------- position limits

@pytest.mark.parametrize("sign", [1, -1])
def test_reduce_only_rule_at_and_beyond_the_limit(sign: int) -> None:
    m = 0.05
    inc_n, red_n = ("n_bid", "n_ask") if sign > 0 else ("n_ask", "n_bid")
    inc_cap, red_cap = ("cap_bid", "cap_ask") if sign > 0 else ("cap_ask", "cap_bid")
    red_sz = "ask_sz" if sign > 0 else "bid_sz"
    at = btc(Quoter(5), position=sign * m)
    assert getattr(at, inc_n) == 0 and getattr(at, inc_cap) == 0.0
    assert getattr(at, red_cap) == pytest.approx(2 * m)          # may go through to -M
    assert getattr(at, red_n) > 0
    beyond = btc(Quoter(5), position=sign * 1.6 * m)
    assert getattr(beyond, inc_n) == 0
    assert getattr(beyond, red_cap) == pytest.approx(1.6 * m)    # capped at |p|: no flip
    assert getattr(beyond, red_sz).sum() <= 1.6 * m + 1e-12
    pending = btc(Quoter(5), position=sign * 1.6 * m,
                  **({"pending_ask": 1.0 * m} if sign > 0 else {"pending_bid": 1.0 * m}))
    assert getattr(pending, red_cap) == pytest.approx(0.6 * m)
    inside = btc(Quoter(5), position=sign * 0.02)
    assert getattr(inside, inc_cap) == pytest.approx(0.03) and getattr(inside, red_cap) == pytest.approx(0.07)


@settings(deadline=None, max_examples=200)
@given(frac=st.floats(-3, 3), pend_b=st.floats(0, 0.1), pend_a=st.floats(0, 0.1))
def test_never_flips_through_zero_beyond_the_limit(frac, pend_b, pend_a) -> None:
    m = 0.05
    p = frac * m
    q = btc(Quoter(5), position=p, pending_bid=pend_b, pending_ask=pend_a)
    bids, asks = q.bid_sz.sum(), q.ask_sz.sum()
    # new orders never take the position past the limit, nor through zero once beyond it
    bid_bound = m if p >= -m else 0.0
    ask_bound = -m if p <= m else 0.0
    assert bids <= max(0.0, bid_bound - p - pend_b) + 1e-12
    assert asks <= max(0.0, p - pend_a - ask_bound) + 1e-12
    if p > m:
        assert q.n_bid == 0
    if p < -m:
        assert q.n_ask == 0


def test_exchange_caps_and_side_totals() -> None:
    q = btc(Quoter(5), exch_cap_bid=0.0, q_ask=0.001)
    assert q.n_bid == 0
    assert q.ask_sz.sum() <= 0.001 + 1e-15 and q.n_ask == 6   # floor(0.001 / 0.000144)


@settings(deadline=None, max_examples=150)
@given(q1=st.floats(0, 0.05), q2=st.floats(0, 0.05), pos=st.floats(-0.03, 0.03))
def test_fewer_levels_when_capital_shrinks(q1, q2, pos) -> None:
    lo, hi = sorted((q1, q2))
    a = btc(Quoter(5), q_bid=lo, q_ask=lo, position=pos)
    b = btc(Quoter(5), q_bid=hi, q_ask=hi, position=pos)
    assert a.n_bid <= b.n_bid and a.n_ask <= b.n_ask


# ---------------------------------------------------------------- post-only guard and merging

def test_post_only_guard_when_microprice_is_outside_the_touch() -> None:
    # microprice far above a stale best ask: raw bids would cross, they must stay below the ask
    q = btc(Quoter(5), microprice=104500.0, best_bid=1043210, best_ask=1043220)
    assert q.bid_px[0] == 1043210           # one valid tick below the best ask ($1 steps here)
    assert all(p < 1043220 for p in q.bid_px)
    q = btc(Quoter(5), microprice=104100.0, best_bid=1043210, best_ask=1043220)
    assert q.ask_px[0] == 1043220
    assert all(p > 1043210 for p in q.ask_px)
    check_orders(q, 1043210, 1043220, q.cap_bid, q.cap_ask)


def test_collapsed_levels_merge() -> None:
    # $1 price steps on BTC (~0.1 bp) and a tight ladder: many raw levels round to the same price
    q = btc(Quoter(5), gamma=1e4, kappa_bid=1e5, kappa_ask=1e5, sigma=0.0, fee_maker=-1e-4,
            q_bid=1.0, q_ask=1.0, max_position=1.0)
    r = ref.quote(5, microprice=104321.37, best_bid=1043210, best_ask=1043220, max_position=1.0,
                  gamma=1e4, kappa_bid=1e5, kappa_ask=1e5, sigma=0.0, fee_maker=-1e-4, q_bid=1.0, q_ask=1.0)
    bids, asks = ladder_of(q)
    assert bids == r.bids and asks == r.asks
    assert len(set(q.bid_px.tolist())) == q.n_bid and len(set(q.ask_px.tolist())) == q.n_ask
    check_orders(q, 1043210, 1043220, q.cap_bid, q.cap_ask)


def test_small_side_total_drops_levels_below_minimum_and_keeps_the_mass() -> None:
    min_size = SAFE_VALUE / 104321.37
    q = btc(Quoter(5), q_bid=3.5 * min_size, q_ask=0.9 * min_size)
    assert q.n_ask == 0                     # cannot fill even one level at $15
    assert 1 <= q.n_bid <= 3
    assert q.bid_sz.sum() >= 3.5 * min_size - q.n_bid * 1e-5 - 1e-12   # only floor-rounding is lost
    check_orders(q, 1043210, 1043220, q.cap_bid, q.cap_ask)


# ---------------------------------------------------------------- bad inputs

@pytest.mark.parametrize("bad, rc", [
    (dict(microprice=math.nan), -1), (dict(microprice=0.0), -1), (dict(microprice=-5.0), -1),
    (dict(microprice=1e-300), -1), (dict(microprice=math.inf), -1),
    (dict(best_bid=1043220, best_ask=1043220), -1), (dict(best_bid=0), -1),
    (dict(best_bid=1043230, best_ask=1043220), -1),
    (dict(sigma=math.nan), -2), (dict(sigma=-1e-4), -2), (dict(kappa_bid=0.0), -2),
    (dict(kappa_ask=math.inf), -2), (dict(A=0.0), -2), (dict(gamma=-1.0), -2), (dict(gamma=math.inf), -2),
    (dict(fee_maker=math.nan), -2), (dict(drift=math.inf), -2), (dict(half_spread_mult=0.0), -2),
    (dict(position=math.nan), -3), (dict(max_position=0.0), -3), (dict(max_position=math.inf), -3),
    (dict(pending_bid=-1.0), -3), (dict(q_bid=math.nan), -3), (dict(exch_cap_ask=-1.0), -3),
])
def test_invalid_inputs_give_empty_sides_and_a_code(bad: dict, rc: int) -> None:
    q = btc(Quoter(5))
    assert q.n_bid > 0
    before = q.n_invalid
    inputs = dict(microprice=104321.37, best_bid=1043210, best_ask=1043220, max_position=0.05, gamma=0.1)
    inputs.update(bad)
    assert q.quote(**inputs) == rc
    assert q.last_rc == rc and q.n_invalid == before + 1
    assert q.n_bid == 0 and q.n_ask == 0
    assert ref.quote(5, **inputs).rc == rc


@pytest.mark.parametrize("extreme", [
    dict(kappa_bid=1e-12, kappa_ask=1e-12), dict(gamma=0.0), dict(gamma=1e-300), dict(A=1e-300),
    dict(gamma=1e9, position=0.04), dict(sigma=0.0), dict(sigma=10.0), dict(kappa_bid=1e15),
    dict(q_bid=0.0, q_ask=0.0), dict(position=1e6), dict(max_position=1e-12), dict(unit_size=math.nan),
])
def test_extreme_limits_stay_finite_and_valid(extreme: dict) -> None:
    q = btc(Quoter(5), **extreme)
    check_orders(q, 1043210, 1043220, q.cap_bid, q.cap_ask)


def test_deep_touch_beyond_max_depth_leaves_the_side_empty() -> None:
    q = btc(Quoter(5), position=0.05, gamma=1e4, sigma=2e-3)
    assert q.n_bid == 0 and q.delta_bid > q.max_depth
    assert q.bid_empty == ref.SIDE_NO_SIZE        # at the limit: no capacity is checked first
    q = btc(Quoter(5), position=0.04, gamma=1e4, sigma=2e-3)
    assert q.n_bid == 0 and q.delta_bid > q.max_depth
    assert q.bid_empty == ref.SIDE_TOO_DEEP and q.ask_empty == ref.SIDE_QUOTED


# ---------------------------------------------------------------- the minimum-size level

@settings(deadline=None, max_examples=300)
@given(mkt=market(), gamma=st.floats(1e-3, 10), sigma=st.floats(1e-5, 2e-3), kappa=st.floats(200, 2e4),
       fee=st.floats(-1e-4, 3e-4), headroom=st.floats(1.2, 100))
def test_min_size_target_always_quotes_one_valid_level(mkt, gamma, sigma, kappa, fee, headroom) -> None:
    """Section 8's fallback (Q* = min_size when Q_soft is thin) must give a level on each side.

    The minimum at the microprice floored to the lot is worth less than $15 (and a bid sits below the
    microprice), so the ladder used to drop that only level and quote nothing."""
    szd, micro, bb, ba = mkt
    tl = TargetLiquidity()
    assert tl.compute(1e5, micro, gamma, sigma, 0.0, 50.0, math.inf, math.inf, 0.0, True) == 0
    assert tl.n_levels == 1 and tl.q_target == tl.min_size
    # limits that hold one minimum order rounded up at any ladder depth (≤ 2 %) plus a lot
    max_position = headroom * tl.min_size + 2 * 10.0 ** -szd
    inputs = dict(microprice=micro, best_bid=bb, best_ask=ba, max_position=max_position,
                  gamma=gamma, sigma=sigma, kappa_bid=kappa, fee_maker=fee, q_bid=tl.q_target,
                  q_ask=tl.q_target)
    q = quoter(szd)
    assert q.quote(**inputs) == 0
    r = ref.quote(szd, **inputs)
    assert ladder_of(q) == (r.bids, r.asks) and (q.bid_empty, q.ask_empty) == (r.bid_empty, r.ask_empty)
    for n, empty, delta in ((q.n_bid, q.bid_empty, q.delta_bid), (q.n_ask, q.ask_empty, q.delta_ask)):
        if delta <= q.max_depth and empty != ref.SIDE_NO_PRICE:
            assert n == 1 and empty == ref.SIDE_QUOTED
    requested = math.floor(tl.q_target * 10**szd + 1e-9)
    for px, lots in zip(q.bid_px.tolist() + q.ask_px.tolist(), q.bid_lots.tolist() + q.ask_lots.tolist(),
                        strict=True):
        assert min_lots(px) <= lots <= max(min_lots(px), requested)   # rounded up only to the minimum
    check_orders(q, bb, ba, q.cap_bid, q.cap_ask)


def test_min_size_level_on_the_real_capture_price() -> None:
    micro = 61_801.3                            # BTCUSDT 2024-08-08: $15 is 24.27 lots of 1e-5 BTC
    q = btc(Quoter(5), microprice=micro, best_bid=618010, best_ask=618020, q_bid=15.0 / micro,
            q_ask=15.0 / micro)
    assert q.n_bid == 1 and q.n_ask == 1 and q.n_min_rounded >= 2
    assert q.bid_lots[0] * q.bid_px[0] >= 15e6 and q.ask_lots[0] * q.ask_px[0] >= 15e6
    assert (q.bid_lots[0] - 1) * q.bid_px[0] < 15e6     # not a lot more than needed


def test_empty_side_reasons() -> None:
    min_size = SAFE_VALUE / 104321.37
    q = btc(Quoter(5), q_bid=0.0, q_ask=0.9 * min_size)
    assert (q.bid_empty, q.ask_empty) == (ref.SIDE_NO_SIZE, ref.SIDE_BELOW_MIN)
    # the limits cannot hold one rounded-up minimum: no order rather than one beyond the limit
    q = btc(Quoter(5), max_position=min_size, q_bid=min_size, q_ask=min_size)
    assert q.bid_empty == ref.SIDE_BELOW_MIN and q.n_bid == 0
    q = btc(Quoter(5), exch_cap_ask=0.5 * min_size, q_ask=min_size)
    assert q.ask_empty == ref.SIDE_BELOW_MIN and q.n_ask == 0
    q = btc(Quoter(5))
    assert (q.bid_empty, q.ask_empty) == (ref.SIDE_QUOTED, ref.SIDE_QUOTED)
    assert q.quote(microprice=math.nan, best_bid=1, best_ask=2, max_position=1.0, gamma=0.1) < 0
    assert (q.bid_empty, q.ask_empty) == (ref.SIDE_INVALID, ref.SIDE_INVALID)


def test_constructor_validation() -> None:
    for kw in (dict(sz_decimals=7), dict(sz_decimals=5, levels=0), dict(sz_decimals=5, max_depth=2.0),
               dict(sz_decimals=5, min_notional_safety=0.5)):
        with pytest.raises(ValueError):
            Quoter(**kw)


def test_outputs_are_read_only() -> None:
    q = btc()
    with pytest.raises(ValueError):
        q.bid_px[0] = 1


# ---------------------------------------------------------------- real data

def test_quotes_on_the_real_btc_recording_are_all_valid() -> None:
    q = Quoter(5)
    frames = 0
    with gzip.open(FIXTURES / "recorded_stream_btc_20250126.gz", "rt") as fh:
        for line in fh:
            frame = json.loads(line.split(" ", 1)[1])
            if frame["channel"] != "l2Book":
                continue
            bids, asks = frame["data"]["levels"]
            pb, pa = float(bids[0]["px"]), float(asks[0]["px"])
            qb, qa = float(bids[0]["sz"]), float(asks[0]["sz"])
            micro = (pa * qb + pb * qa) / (qb + qa)
            bb, ba = floor_px_ticks(pb, 5), floor_px_ticks(pa, 5)
            for position in (-0.08, 0.0, 0.03):
                inputs = dict(microprice=micro, best_bid=bb, best_ask=ba, max_position=0.05,
                              gamma=0.1, position=position)
                assert q.quote(**inputs) == 0
                r = ref.quote(5, **inputs)
                assert ladder_of(q) == (r.bids, r.asks)
                check_orders(q, bb, ba, q.cap_bid, q.cap_ask)
                assert q.n_bid + q.n_ask > 0
            frames += 1
    assert frames == 46


# ---------------------------------------------------------------- target liquidity

@settings(deadline=None, max_examples=300)
@given(av=st.floats(0, 1e6), s=st.floats(0.01, 2e5), g=st.floats(0, 1e4), sig=st.floats(0, 1e-2),
       rate=st.floats(0, 1), lat=st.floats(-1, 500), cap=st.one_of(st.just(math.inf), st.floats(0, 10)),
       mp=st.floats(0, 10), unit=st.floats(0, 1), warm=st.booleans())
def test_target_liquidity_matches_reference(av, s, g, sig, rate, lat, cap, mp, unit, warm) -> None:
    t = TargetLiquidity()
    rc = t.compute(av, s, g, sig, rate, lat, cap, mp, unit, warm)
    r = ref.target_liquidity(av, s, g, sig, rate, lat, cap, mp, unit, warm)
    assert rc == r.rc
    assert t.n_levels == r.n_levels
    for name in ("q_hard", "q_soft", "latency_penalty", "q_target", "min_size"):
        assert getattr(t, name) == pytest.approx(getattr(r, name), rel=1e-12), name
    assert 0 <= t.n_levels <= 25 and 0.3 <= t.latency_penalty <= 1
    if rc == 0 and t.n_levels:
        assert t.q_target >= t.min_size * (1 - 1e-9)


def test_target_liquidity_properties() -> None:
    t = TargetLiquidity()
    levels = []
    for av in (1e5, 1e4, 1e3, 100.0, 30.0, 5.0):
        assert t.compute(av, 100_000.0, 0.1, 2.5e-4, 0.01, 50.0) == 0
        levels.append(t.n_levels)
    assert levels == sorted(levels, reverse=True) and levels[0] == 25 and levels[-1] == 0
    # a thin Q_soft still quotes one level when the margin allows it (the seed's collapse fix)
    assert t.compute(1e4, 100_000.0, 1e6, 1e-2, 0.0, 50.0) == 0
    assert t.n_levels == 1 and t.q_target == pytest.approx(t.min_size)
    # latency penalty
    t.compute(1e4, 100_000.0, 0.1, 2.5e-4, 0.01, 30.0)
    assert t.latency_penalty == pytest.approx(0.5)
    t.compute(1e4, 100_000.0, 0.1, 2.5e-4, 0.01, 5000.0)
    assert t.latency_penalty == 0.3
    t.compute(1e4, 100_000.0, 0.1, 2.5e-4, 0.01, math.nan)
    assert t.latency_penalty == pytest.approx(1 - 0.5 * math.sqrt(50 / 30))
    assert t.compute(math.nan, 100_000.0, 0.1, 2.5e-4, 0.01) == -1 and t.n_levels == 0
    assert t.compute(1e4, 1e-300, 0.1, 2.5e-4, 0.01) == 0                       # absurd price: finite
    assert 0 <= t.n_levels <= 25 and finite(t.q_target)


# ---------------------------------------------------------------- calibration controller

@settings(deadline=None, max_examples=150)
@given(events=st.lists(st.tuples(st.sampled_from(["fill", "markout", "conf", "query"]),
                                 st.floats(0, 400), st.floats(-0.5, 1.5)), max_size=80),
       f=st.floats(0.5, 100), floor=st.floats(0, 1), lookback=st.floats(10, 2000), enabled=st.booleans())
def test_calibration_matches_brute_force(events, f, floor, lookback, enabled) -> None:
    c = Calibration(f, floor, lookback, enabled)
    r = ref.Calibration(f, floor, lookback, enabled)
    t = 0.0
    for kind, dt, x in events:
        t += dt
        if kind == "fill":
            c.on_fill(t)
            r.on_fill(t)
        elif kind == "markout":
            c.on_markout()
            r.on_markout()
        elif kind == "conf":
            c.set_kappa_confidence(x)
            r.set_kappa_confidence(x)
        m = c.multiplier(t)
        assert m == pytest.approx(r.multiplier(t), rel=1e-12)
        assert (floor if enabled else 1.0) - 1e-12 <= m <= 1.0
        assert c.progress == pytest.approx(r.progress, rel=1e-12)
    assert c.fill_count == len(r.fills)
    assert c.complete == (r.progress >= 0.95)


def test_calibration_behaviour() -> None:
    c = Calibration(target_fills_per_hour=10.0, floor=0.3, lookback_s=900.0)
    assert c.multiplier(0.0) == pytest.approx(0.3)          # no fills, nothing calibrated
    for i in range(3):
        c.on_fill(10.0 * i)
    assert c.multiplier(30.0) == 1.0                         # 3 >= 10 x 900/3600 = 2.5 expected
    assert c.multiplier(1000.0) == pytest.approx(0.3)         # those fills left the 900 s window
    assert c.recent_fills(1000.0) == 0
    c.set_kappa_confidence(0.25)                             # progress 0.25
    assert c.multiplier(1000.0) == pytest.approx(0.3 + 0.7 * 0.25)
    for _ in range(20):
        c.on_markout()
    c.set_kappa_confidence(0.9)
    assert c.complete and c.progress == 1.0 and c.multiplier(5000.0) == 1.0
    assert c.fill_count == 3
    c.on_fill(math.nan)
    assert c.n_bad_input == 1 and c.fill_count == 3
    off = Calibration(enabled=False)
    assert off.multiplier(0.0) == 1.0
    with pytest.raises(ValueError):
        Calibration(floor=2.0)
