"""Impulse control: execution budget accounting, the filter's behaviour table, filter on vs off."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hlfast.reconcile import (
    ACT_CANCEL,
    ACT_MODIFY,
    ACT_PLACE,
    DECISION_LOCKED,
    DECISION_SKIP,
    DECISION_UPDATE,
    ExecutionBudget,
    ImpulseFilter,
    Reconciler,
)
from tests.reference.reconcile import ExecutionBudgetRef, ImpulseFilterRef

I64 = np.int64
EMPTY_PX, EMPTY_SZ = np.zeros(0, dtype=I64), np.zeros(0)


# ---------- execution budget ----------

def test_budget_defaults_earn_spend_reserve():
    b = ExecutionBudget()
    assert (b.available, b.max_tokens, b.reserve) == (100.0, 500.0, 20.0)
    assert b.cost(0) == 0.0 and b.cost(1) == 1.0 and b.cost(10) == pytest.approx(1 + 0.8 * 9)
    assert b.on_fill(100.0) == 0.5            # floor 0.5 per fill
    assert b.on_fill(10_000.0) == 5.0         # 0.5 per $1000
    assert b.available == pytest.approx(105.5) and b.earned == pytest.approx(5.5)
    assert b.spend(1) and b.available == pytest.approx(104.5)
    # 84.5 spendable above the reserve: a bulk of 106 (85 tokens) is refused, 105 (84.2) goes
    assert not b.spend(106) and b.skipped == 1
    assert b.spend(105) and b.available == pytest.approx(104.5 - 84.2)
    assert not b.can_afford(1)                # 20.3 left, reserve 20
    assert not b.spend(1) and b.skipped == 2
    assert b.emergency_spend(3)               # dips into the reserve
    assert b.emergency_uses == 1 and b.available == pytest.approx(20.3 - 2.6)
    assert b.utilization == pytest.approx(b.spent / (100.0 + 5.5))
    for _ in range(1000):
        b.on_fill(1e6)
    assert b.available == 500.0               # capped at max_tokens


def test_budget_spend_refuses_exactly_at_the_reserve_boundary():
    b = ExecutionBudget(initial=21.0)
    assert b.can_afford(1) and not b.can_afford(2)
    assert b.spend(1) and not b.spend(1)
    assert b.spent == 1.0 and b.skipped == 1


def test_budget_rollback_knobs():
    unlimited = ExecutionBudget(initial=math.inf)
    assert unlimited.spend(10_000) and unlimited.available == math.inf
    unlimited.on_fill(1e6)
    assert unlimited.available == math.inf and unlimited.utilization == 0.0
    off = ExecutionBudget(initial=0.0, enabled=False)
    assert off.can_afford(1000) and off.spend(1000) and off.skipped == 0
    assert off.available == 0.0 and off.spent == pytest.approx(1 + 0.8 * 999)
    assert off.emergency_spend(1)
    with pytest.raises(ValueError, match="bulk_discount"):
        ExecutionBudget(bulk_discount=1.5)
    with pytest.raises(ValueError, match="initial"):
        ExecutionBudget(initial=-1.0)


def test_budget_time_refill():
    b = ExecutionBudget(initial=100.0, refill_per_s=0.5)
    assert b.refill(1000.0) == 0.0 and b.available == 100.0        # the first call only starts the clock
    assert b.refill(1010.0) == pytest.approx(5.0) and b.available == pytest.approx(105.0)
    assert b.refill(1005.0) == 0.0 and b.refill(math.nan) == 0.0   # time going back / bad input: nothing
    assert b.refill(1006.0) == 0.0                                 # ... and the clock did not move back
    assert b.refill(1012.0) == pytest.approx(1.0)
    assert not b.emergency_spend(200)                              # deep into debt (−54.2)
    assert b.available < 0
    b.refill(1012.0 + 2 * 80.0)                                    # debt is paid back by time too
    assert b.available == pytest.approx(106.0 - (1 + 0.8 * 199) + 80.0)
    b.refill(1e9)
    assert b.available == 500.0 and b.refilled == pytest.approx(500.0 - 106.0 + (1 + 0.8 * 199) + 6.0)
    assert b.utilization == pytest.approx(b.spent / (100.0 + b.refilled))
    # rollback: no refill; unlimited and disabled budgets are untouched
    for kw in (dict(refill_per_s=0.0), dict(initial=math.inf), dict(initial=0.0, enabled=False, refill_per_s=0.0)):
        other = ExecutionBudget(**kw)
        before = other.available
        other.refill(0.0)
        other.refill(1e6)
        assert other.available == before and other.refilled == 0.0
    with pytest.raises(ValueError, match="refill_per_s"):
        ExecutionBudget(refill_per_s=-0.1)
    with pytest.raises(ValueError, match="refill_per_s"):
        ExecutionBudget(refill_per_s=math.inf)


budget_op = st.one_of(
    st.tuples(st.just("fill"), st.floats(-10, 5e6, allow_nan=False)),
    st.tuples(st.sampled_from(["spend", "emergency", "afford"]), st.integers(-1, 40)),
    st.tuples(st.just("refill"), st.one_of(st.floats(-5, 600, allow_nan=False), st.just(math.nan))),
)


@settings(deadline=None, max_examples=200)
@given(ops=st.lists(budget_op, max_size=60), initial=st.sampled_from([0.0, 20.0, 100.0, math.inf]),
       enabled=st.booleans(), discount=st.sampled_from([0.0, 0.5, 0.8, 1.0]),
       refill=st.sampled_from([0.0, 0.2, 3.0]))
def test_budget_matches_reference(ops, initial, enabled, discount, refill):
    k = ExecutionBudget(initial=initial, enabled=enabled, bulk_discount=discount, refill_per_s=refill)
    r = ExecutionBudgetRef(initial=initial, enabled=enabled, bulk_discount=discount, refill_per_s=refill)
    t = 0.0
    for op, arg in ops:
        if op == "refill":
            t = arg if math.isnan(arg) else t + arg      # a negative step: time going back
            assert k.refill(t) == pytest.approx(r.refill(t), rel=1e-12)
            if math.isnan(t):
                t = 0.0
        elif op == "fill":
            assert k.on_fill(arg) == r.on_fill(arg)
        elif op == "spend":
            assert k.spend(arg) == r.spend(arg)
        elif op == "emergency":
            assert k.emergency_spend(arg) == r.emergency_spend(arg)
        else:
            assert k.can_afford(arg) == r.can_afford(arg)
        for attr in ("available", "earned", "refilled", "spent", "skipped", "emergency_uses", "utilization"):
            assert getattr(k, attr) == pytest.approx(getattr(r, attr), rel=1e-12), attr
        if enabled and math.isfinite(initial):
            assert k.available <= max(initial, 500.0)


# ---------- impulse filter ----------

@pytest.mark.parametrize(
    "p_cur, p_new, move, expected",
    [
        (0.50, 0.90, 0.0010, DECISION_LOCKED),   # likely fill, small move: keep the queue
        (0.50, 0.90, 0.0030, DECISION_UPDATE),   # a > 25 bp move overrides the lock
        (0.50, 0.20, 0.0030, DECISION_SKIP),     # override, but the new spot is worse
        (0.05, 0.06, 0.0001, DECISION_UPDATE),   # +20 % fill probability
        (0.05, 0.052, 0.0001, DECISION_SKIP),    # +4 %: not worth an action
        (0.05, 0.01, 0.0001, DECISION_SKIP),     # moving away from the touch never pays by itself
        (0.0, 1e-6, 0.0001, DECISION_UPDATE),    # from nothing: the floor keeps the ratio finite
        (0.30, 0.45, 0.0001, DECISION_UPDATE),   # exactly at the lock threshold: not locked
    ],
)
def test_filter_decision_table(p_cur, p_new, move, expected):
    f, r = ImpulseFilter(), ImpulseFilterRef()
    assert f.decide(p_cur, p_new, move) == expected == r.decide(p_cur, p_new, move)
    assert (f.updated, f.skipped, f.locked) == (r.updated, r.skipped, r.locked)
    assert f.updated + f.skipped + f.locked == 1


def test_filter_rollback_knobs():
    never_locks = ImpulseFilter(lock_threshold=1.0)
    assert never_locks.decide(1.0, 1.0, 0.0) == DECISION_SKIP
    assert never_locks.locked == 0
    off = ImpulseFilter(enabled=False)
    assert off.decide(0.9, 0.1, 0.0) == DECISION_UPDATE and off.updated == 1


# ---------- the behaviour table through the reconciler (BTC-like numbers) ----------

BEST_BID, BEST_ASK = 1_000_000, 1_000_010   # $100,000.0 / $100,001.0 in 0.1 ticks; valid step 10 ticks
SIGMA = 2.5e-4                             # per sqrt(s)


def one_order_cycle(order_px, target_px, queue_ahead, target_shown, best_ask=BEST_ASK, **kwargs):
    k = Reconciler(**kwargs)
    for i in range(10):  # touch rate ~1 BTC/s on the bid side (EWMA time constant 86.6 s)
        k.tracker.on_trade(0.1 * i, BEST_BID, 8.66, -1)
    k.order_placed(0, 1, order_px, 0.01, queue_ahead, 1.0)
    book_px = np.array([BEST_BID - 10 * i for i in range(20)], dtype=I64)
    book_sz = np.full(20, target_shown)
    k.diff(np.array([target_px], dtype=I64), np.array([0.01]), EMPTY_PX, EMPTY_SZ, book_bid_px=book_px,
           book_bid_sz=book_sz, best_bid=BEST_BID, best_ask=best_ask, mid_ticks=(BEST_BID + best_ask) / 2,
           sigma=SIGMA)
    return k


def test_high_fill_probability_orders_are_locked():
    k = one_order_cycle(BEST_BID, BEST_BID - 10, queue_ahead=0.2, target_shown=0.5)
    assert k.tracker.fill_probability(0, 1.0, SIGMA, BEST_BID) > 0.3
    assert k.last_locked == 1 and k.n_actions == 0


def test_one_tick_moves_are_skipped():
    # an order 5 steps below the touch; the target moves one step ($1 = 0.1 bp) closer
    k = one_order_cycle(BEST_BID - 50, BEST_BID - 40, queue_ahead=2.0, target_shown=2.0)
    assert k.tracker.fill_probability(0, 1.0, SIGMA, BEST_BID) < 0.3
    assert k.last_filter_skipped == 1 and k.n_actions == 0
    # and one step away
    k = one_order_cycle(BEST_BID - 50, BEST_BID - 60, queue_ahead=2.0, target_shown=2.0)
    assert k.last_filter_skipped == 1 and k.n_actions == 0


def test_large_moves_override_the_lock():
    wide_ask = BEST_BID + 4_000   # a 40 bp wide market
    k = one_order_cycle(BEST_BID, BEST_BID + 3_000, queue_ahead=0.5, target_shown=0.5, best_ask=wide_ask,
                        match_tolerance_bps=50.0)
    assert k.tracker.fill_probability(0, 1.0, SIGMA, BEST_BID) > 0.3
    assert k.last_locked == 0 and k.last_modified == 1   # a 30 bp move inside the spread
    assert k.actions() == [(ACT_MODIFY, 0, 1, BEST_BID + 3_000, 0.01, False)]
    # the same order and a 10 bp improvement stays locked
    k = one_order_cycle(BEST_BID, BEST_BID + 100, queue_ahead=0.5, target_shown=0.5, best_ask=wide_ask,
                        match_tolerance_bps=50.0)
    assert k.last_locked == 1 and k.n_actions == 0


def test_budget_gates_optional_actions_by_value():
    # 3 places wanted, 2 tokens above the reserve: value = P_new * edge, so the touch level (edge 0.05 bp)
    # is the one dropped
    k = Reconciler(budget=ExecutionBudget(initial=22.0))
    n = k.diff(np.array([BEST_BID, BEST_BID - 10, BEST_BID - 20], dtype=I64), np.full(3, 0.01), EMPTY_PX,
               EMPTY_SZ, best_bid=BEST_BID, best_ask=BEST_ASK, mid_ticks=(BEST_BID + BEST_ASK) / 2, sigma=SIGMA)
    assert n == 2
    assert [(a[0], a[3]) for a in k.actions()] == [(ACT_PLACE, BEST_BID - 10), (ACT_PLACE, BEST_BID - 20)]
    assert k.last_budget_skipped == 1 and k.budget.skipped == 1
    assert k.budget.available == pytest.approx(22.0 - 1.8)


# ---------- a simulated session: filter on vs off ----------

def simulate(filter_on: bool, steps: int = 600, seed: int = 11, min_gain: float = 0.0, sigma: float = SIGMA,
             dt: float = 0.5):
    """BTC-like session: 0.5 s book snapshots, a 10-level ladder 1..10 bp from mid, venue acks at once."""
    rng = np.random.default_rng(seed)
    k = Reconciler(max_orders=64, budget=ExecutionBudget(initial=math.inf),
                   impulse_filter=ImpulseFilter(enabled=filter_on, min_gain=min_gain))
    levels, step_ticks = 10, 10
    mid = 1_000_005.0
    depths = 1e-4 * np.geomspace(1.0, 10.0, levels)
    slot_free = list(range(64))[::-1]
    resting_size: dict[int, float] = {}   # displayed size per price level, persistent between snapshots
    actions = crossings = 0
    for i in range(steps):
        t = i * dt
        mid *= math.exp(sigma * math.sqrt(dt) * rng.standard_normal())
        best_bid = int(mid // step_ticks) * step_ticks
        if best_bid >= mid:
            best_bid -= step_ticks
        best_ask = best_bid + step_ticks
        book_bid_px = best_bid - step_ticks * np.arange(20, dtype=I64)
        book_ask_px = best_ask + step_ticks * np.arange(20, dtype=I64)
        for px in np.concatenate([book_bid_px, book_ask_px]):
            px = int(px)
            size = resting_size.get(px, rng.exponential(0.5))
            resting_size[px] = max(0.001, size * math.exp(0.2 * rng.standard_normal()))
        book_bid_sz = np.array([resting_size[int(p)] for p in book_bid_px])
        book_ask_sz = np.array([resting_size[int(p)] for p in book_ask_px])
        for _ in range(rng.poisson(1.0)):
            aggressor = 1 if rng.random() < 0.5 else -1
            k.tracker.on_trade(t, best_ask if aggressor > 0 else best_bid, rng.exponential(0.3), aggressor)
        k.tracker.on_book(book_bid_px, book_bid_sz, 1, best_ask)
        k.tracker.on_book(book_ask_px, book_ask_sz, -1, best_bid)
        bid_px = np.unique((np.floor(mid * (1 - depths) / step_ticks) * step_ticks).astype(I64))[::-1].copy()
        ask_px = np.unique((np.ceil(mid * (1 + depths) / step_ticks) * step_ticks).astype(I64)).copy()
        bid_px = bid_px[bid_px < best_ask]
        ask_px = ask_px[ask_px > best_bid]
        k.diff(bid_px, np.full(len(bid_px), 0.01), ask_px, np.full(len(ask_px), 0.01),
               book_bid_px=book_bid_px, book_bid_sz=book_bid_sz, book_ask_px=book_ask_px,
               book_ask_sz=book_ask_sz, best_bid=best_bid, best_ask=best_ask, mid_ticks=mid, sigma=sigma)
        for kind, slot, side, px, sz, mandatory in k.actions():  # the venue acks at once
            actions += 1
            if kind == ACT_CANCEL:
                k.order_gone(slot)
                slot_free.append(slot)
                crossings += mandatory   # the market reached the order
            elif kind == ACT_MODIFY:
                k.order_placed(slot, side, px, sz, resting_size.get(px, 0.0), t)
            else:
                k.order_placed(slot_free.pop(), side, px, sz, resting_size.get(px, 0.0), t)
    return actions, k, crossings


def test_filter_cuts_actions_in_a_simulated_session():
    # BTC-like: sigma 1e-4 /sqrt(s) (~3 % a day), one reconcile per 0.5 s snapshot, 5 minutes
    off_actions, off, off_crossed = simulate(filter_on=False, sigma=1e-4)
    on_actions, on, on_crossed = simulate(filter_on=True, sigma=1e-4)
    gain_actions, gain, gain_crossed = simulate(filter_on=True, sigma=1e-4, min_gain=0.01)
    assert off.filter_skipped == 0 and off.locked == 0
    assert on.filter_skipped > 0 and on.locked > 0
    # the spec's rule: relative gain > 10 % (deep orders still chase one-tick moves toward the touch)
    assert on_actions < 0.75 * off_actions, (on_actions, off_actions)
    # with an absolute floor on the gain the saving is large
    assert gain_actions < 0.4 * off_actions, (gain_actions, off_actions)
    # the ladder is still worked and the market still reaches our orders
    for run, crossed in ((off, off_crossed), (on, on_crossed), (gain, gain_crossed)):
        assert run.placed > 0 and run.cancelled > 0 and crossed > 0


def test_min_gain_requires_an_absolute_improvement():
    f, r = ImpulseFilter(min_gain=0.01), ImpulseFilterRef(min_gain=0.01)
    for p_cur, p_new, expected in ((1e-6, 1e-3, DECISION_SKIP), (0.05, 0.07, DECISION_UPDATE)):
        assert f.decide(p_cur, p_new, 1e-5) == expected == r.decide(p_cur, p_new, 1e-5)
    with pytest.raises(ValueError, match="min_gain"):
        ImpulseFilter(min_gain=-1.0)
