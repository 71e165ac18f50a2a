"""Quoter ladder construction on its harder paths, against the plain-Python reference, exactly.

The kernel builds each side with a per-decade grid unit, batched exp calls, running weight sums
kept per level and a lightest-first minimum-value check.  These tests drive the inputs that make
those paths matter: ladders crossing a power of ten, many collapsing levels, side totals so small
that most levels are dropped, and a heavier level dropped while the lightest one is kept.
"""
from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hlfast.quoting import Quoter
from tests.reference import quoting as ref
from tests.test_quoting import check_orders

_quoters: dict[tuple, Quoter] = {}


def quoter(sz_decimals: int, levels: int, max_depth: float, weight_epsilon: float = 1e-6) -> Quoter:
    key = (sz_decimals, levels, max_depth, weight_epsilon)
    if key not in _quoters:
        _quoters[key] = Quoter(sz_decimals, levels=levels, max_depth=max_depth, weight_epsilon=weight_epsilon)
    return _quoters[key]


def assert_same_as_reference(q: Quoter, r: ref.Ladder, sz_decimals: int) -> None:
    """Prices, lots, sizes, depths and empty-side reasons identical to the reference."""
    assert q.last_rc == r.rc
    assert list(zip(q.bid_px.tolist(), q.bid_lots.tolist(), strict=True)) == r.bids
    assert list(zip(q.ask_px.tolist(), q.ask_lots.tolist(), strict=True)) == r.asks
    assert q.bid_depth.tolist() == r.bid_depths and q.ask_depth.tolist() == r.ask_depths
    assert (q.bid_empty, q.ask_empty) == (r.bid_empty, r.ask_empty)
    assert q.bid_sz.tolist() == [lots / 10**sz_decimals for _, lots in r.bids]
    assert q.ask_sz.tolist() == [lots / 10**sz_decimals for _, lots in r.asks]
    for name in ("delta_bid", "delta_ask", "half_spread_bid", "half_spread_ask", "skew_bid", "skew_ask",
                 "cap_bid", "cap_ask"):
        assert getattr(q, name) == getattr(r, name), name


def book_around(micro: float, sz_decimals: int, spread: float) -> tuple[int, int]:
    ticks = micro * 10 ** (6 - sz_decimals)
    bb = max(1, math.floor(ticks * (1 - spread)))
    return bb, max(bb + 1, math.ceil(ticks * (1 + spread)))


# ---------------------------------------------------------------- minimum-value drops

@st.composite
def thin_sides(draw):
    """Side totals of a few minimum orders spread over many levels, with edge costs that make the
    levels near the touch light: most levels are dropped, in every order."""
    szd = draw(st.integers(0, 5))
    micro = float(f"{10 ** draw(st.floats(-2, 5.3)):.9g}")
    min_size = 15.0 / micro
    bb, ba = book_around(micro, szd, draw(st.floats(1e-6, 1e-3)))
    ctor = dict(sz_decimals=szd, levels=draw(st.integers(2, 60)), max_depth=draw(st.floats(0.05, 0.9)),
                weight_epsilon=10 ** draw(st.floats(-12, -3)))
    max_position = min_size * draw(st.floats(1, 60))
    inputs = dict(microprice=micro, best_bid=bb, best_ask=ba, max_position=max_position,
                  gamma=10 ** draw(st.floats(-3, 0.7)), sigma=draw(st.floats(1e-5, 2e-3)),
                  kappa_bid=10 ** draw(st.floats(0.7, 3.5)), kappa_ask=10 ** draw(st.floats(0.7, 3.5)),
                  position=max_position * draw(st.floats(-1.2, 1.2)), adverse_sel=draw(st.floats(0, 0.3)),
                  fee_maker=draw(st.floats(-1e-4, 3e-4)), min_spread=draw(st.floats(0, 0.02)))
    return ctor, inputs


@settings(deadline=None, max_examples=250)
@given(case=thin_sides())
def test_thin_sides_drop_the_same_levels_as_the_reference(case) -> None:
    ctor, inputs = case
    q = quoter(**ctor)
    q.quote(**inputs)
    r = ref.quote(ctor["sz_decimals"], levels=ctor["levels"], max_depth=ctor["max_depth"],
                  weight_epsilon=ctor["weight_epsilon"], **inputs)
    assert_same_as_reference(q, r, ctor["sz_decimals"])
    check_orders(q, inputs["best_bid"], inputs["best_ask"], q.cap_bid, q.cap_ask)


def test_a_heavier_short_level_is_dropped_while_the_lightest_is_kept() -> None:
    # On this grid (sz_decimals 2) the deeper asks need fewer lots for the minimum value, so the
    # lightest level reaches it while a heavier one nearer the touch does not.
    inputs = dict(microprice=92.39515279410661, best_bid=923942, best_ask=923961,
                  max_position=7.110168829962408, gamma=0.035083885037973925, sigma=0.0003798095461752957,
                  kappa_bid=5.253813512041809, kappa_ask=61.49830114754637, position=0.9652604497882844,
                  adverse_sel=0.2560176659596131, fee_maker=0.00017941764554488634,
                  min_spread=0.0054138020784429645)
    ctor = dict(sz_decimals=2, levels=9, max_depth=0.8704415100306407, weight_epsilon=7.274871553894064e-06)
    drops: list = []
    r = ref.quote(ctor["sz_decimals"], levels=ctor["levels"], max_depth=ctor["max_depth"],
                  weight_epsilon=ctor["weight_epsilon"], drops=drops, **inputs)
    assert any(not was_lightest for _, _, was_lightest in drops)      # the path under test
    assert any(was_lightest for _, _, was_lightest in drops)
    q = quoter(**ctor)
    assert q.quote(**inputs) == 0
    assert q.n_bid > 0 and q.n_ask > 0
    assert_same_as_reference(q, r, ctor["sz_decimals"])


def test_btc_recording_drops_match_the_reference() -> None:
    # the benchmark's inputs: the bid side drops its deepest levels one by one
    q = quoter(5, 25, 0.02)
    drops: list = []
    for micro in (104321.37, 99999.95, 100000.04, 104998.5):
        bb, ba = book_around(micro, 5, 5e-6)
        kw = dict(microprice=micro, best_bid=bb, best_ask=ba, max_position=0.05, gamma=0.1, position=0.01,
                  min_spread=1e-4)
        q.quote(**kw)
        r = ref.quote(5, drops=drops, **kw)
        assert_same_as_reference(q, r, 5)
    assert drops and all(side == 1 for side, _, _ in drops)


@settings(deadline=None, max_examples=80)
@given(szd=st.integers(0, 5), micro=st.floats(0.5, 2e5), levels=st.integers(2, 40), mins=st.floats(1, 30),
       max_depth=st.floats(0.05, 0.9))
def test_equal_weights_drop_the_deepest_first_like_the_reference(szd, micro, levels, mins, max_depth) -> None:
    # kappa ~ 0 makes every exp exactly 1 and a large epsilon floors every edge: all weights tie,
    # so the order among equal weights decides which levels survive
    micro = float(f"{micro:.9g}")
    bb, ba = book_around(micro, szd, 1e-5)
    inputs = dict(microprice=micro, best_bid=bb, best_ask=ba, max_position=15.0 / micro * mins, gamma=0.01,
                  kappa_bid=1e-300, kappa_ask=1e-300, adverse_sel=0.5)
    q = quoter(szd, levels, max_depth, weight_epsilon=0.25)
    q.quote(**inputs)
    r = ref.quote(szd, levels=levels, max_depth=max_depth, weight_epsilon=0.25, **inputs)
    assert_same_as_reference(q, r, szd)


@pytest.mark.parametrize("szd, levels, max_depth, inputs", [
    (1, 8, 0.8729556914953507, dict(microprice=0.0682070513659149, best_bid=6820, best_ask=6822,
                                     max_position=6893.014159113394, gamma=0.9155848861362437, kappa_bid=1e-300,
                                     kappa_ask=10.0, adverse_sel=0.5, position=-39.498505282944386)),
    (0, 38, 0.803112444628607, dict(microprice=0.0075772040752831804, best_bid=7576, best_ask=7578,
                                    max_position=37123.03057496527, gamma=0.7522339321782616, kappa_bid=1.0,
                                    kappa_ask=1e-300, adverse_sel=0.5, position=-4976.6216338040185)),
])
def test_ties_among_short_levels_on_a_coarse_grid(szd, levels, max_depth, inputs) -> None:
    # equal weights on merged levels, several of them short: which tied level goes first matters
    q = quoter(szd, levels, max_depth, weight_epsilon=0.25)
    q.quote(**inputs)
    r = ref.quote(szd, levels=levels, max_depth=max_depth, weight_epsilon=0.25, **inputs)
    assert r.bids and r.asks
    assert_same_as_reference(q, r, szd)


# ---------------------------------------------------------------- grid unit across a power of ten

@st.composite
def across_a_decade(draw):
    """Microprices just above or below a power of ten in ticks, where the 5-significant-figure
    unit changes inside the ladder (bids crossing down, asks crossing up)."""
    szd = draw(st.integers(0, 5))
    pd = 6 - szd
    exponent = draw(st.integers(5, 5 + pd))
    ticks = 10**exponent * (1 + draw(st.floats(-0.03, 0.03)))
    micro = ticks / 10**pd
    bb, ba = book_around(micro, szd, draw(st.floats(1e-7, 1e-4)))
    inputs = dict(microprice=micro, best_bid=bb, best_ask=ba, max_position=draw(st.floats(100, 1e6)) / micro,
                  gamma=10 ** draw(st.floats(-3, 1)), sigma=draw(st.floats(0, 2e-3)),
                  kappa_bid=10 ** draw(st.floats(1, 4)), kappa_ask=10 ** draw(st.floats(1, 4)),
                  position=0.0, min_spread=draw(st.floats(0, 5e-3)))
    ctor = dict(sz_decimals=szd, levels=draw(st.integers(1, 40)), max_depth=draw(st.floats(0.01, 0.2)))
    return ctor, inputs


@settings(deadline=None, max_examples=250)
@given(case=across_a_decade())
def test_ladders_across_a_power_of_ten_match_the_reference(case) -> None:
    ctor, inputs = case
    q = quoter(**ctor)
    q.quote(**inputs)
    r = ref.quote(ctor["sz_decimals"], levels=ctor["levels"], max_depth=ctor["max_depth"], **inputs)
    assert_same_as_reference(q, r, ctor["sz_decimals"])
    check_orders(q, inputs["best_bid"], inputs["best_ask"], q.cap_bid, q.cap_ask)


def test_both_grid_units_appear_in_one_ladder() -> None:
    # szDecimals 5 (0.1 ticks): 5 significant figures give $1 steps from 10,000 up and $0.1 below,
    # so bids from 10,020 down change unit inside the ladder
    q = quoter(5, 25, 0.02)
    kw = dict(microprice=10020.0, best_bid=100199, best_ask=100201, max_position=5.0, gamma=0.1, min_spread=1e-4)
    assert q.quote(**kw) == 0
    pxs = q.bid_px.tolist()
    assert any(p >= 100_000 for p in pxs) and any(p < 100_000 for p in pxs)
    assert all(p % 10 == 0 for p in pxs if p >= 100_000)       # $1 steps from 10,000 up
    assert any(p % 10 for p in pxs if p < 100_000)             # $0.1 steps below it
    assert_same_as_reference(q, ref.quote(5, **kw), 5)


# ---------------------------------------------------------------- many levels, collapsing prices

@settings(deadline=None, max_examples=60)
@given(levels=st.integers(50, 300), ticks=st.floats(20, 5e4), max_depth=st.floats(0.01, 0.5),
       kappa=st.floats(1, 500), total_mins=st.floats(1, 400), adverse_sel=st.floats(0, 0.05))
def test_many_levels_on_a_coarse_grid_merge_like_the_reference(levels, ticks, max_depth, kappa, total_mins,
                                                                adverse_sel) -> None:
    # few ticks between the touch and max_depth: most geometric levels round onto the same price
    micro = ticks / 10**6
    bb, ba = book_around(micro, 0, 1e-3)
    inputs = dict(microprice=micro, best_bid=bb, best_ask=ba, max_position=15.0 / micro * total_mins,
                  gamma=0.01, kappa_bid=kappa, kappa_ask=kappa, adverse_sel=adverse_sel)
    q = quoter(0, levels, max_depth)
    q.quote(**inputs)
    r = ref.quote(0, levels=levels, max_depth=max_depth, **inputs)
    assert_same_as_reference(q, r, 0)


def test_results_do_not_depend_on_the_previous_compute() -> None:
    # per-compute scratch (grid decade, running sums) starts afresh: A, B, A gives A twice
    q = quoter(5, 25, 0.02)
    a = dict(microprice=100000.5, best_bid=1000004, best_ask=1000006, max_position=0.05, gamma=0.1,
             position=0.01, min_spread=1e-4)
    b = dict(microprice=9.87654, best_bid=98765, best_ask=98766, max_position=3.0, gamma=5.0,
             position=-2.9, adverse_sel=0.01)
    q.quote(**a)
    first = (q.orders(), q.bid_sz.tolist(), q.ask_sz.tolist(), q.bid_depth.tolist(), q.ask_depth.tolist())
    q.quote(**b)
    assert q.orders() != first[0]
    q.quote(**a)
    assert (q.orders(), q.bid_sz.tolist(), q.ask_sz.tolist(), q.bid_depth.tolist(), q.ask_depth.tolist()) == first
