"""Reconcile diff: exhaustive small cases and random cases vs the reference, mandatory cancels, caps."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hlfast.reconcile import (
    ACT_CANCEL,
    ACT_MODIFY,
    ACT_PLACE,
    SLOT_CANCELLING,
    SLOT_FREE,
    SLOT_PENDING,
    SLOT_RESTING,
    ExecutionBudget,
    ImpulseFilter,
    Reconciler,
    valid_tick,
)
from tests.reference.reconcile import ExecutionBudgetRef, ImpulseFilterRef, ReconcilerRef, valid_tick_ref

I64, F64 = np.int64, np.float64


def arrays(levels):
    return np.array([p for p, _ in levels], dtype=I64), np.array([s for _, s in levels], dtype=F64)


class Pair:
    """The kernel and the reference driven by the same calls."""

    def __init__(self, budget_kwargs=None, filter_kwargs=None, **kwargs):
        budget_kwargs = budget_kwargs or {}
        filter_kwargs = filter_kwargs or {}
        self.k = Reconciler(budget=ExecutionBudget(**budget_kwargs), impulse_filter=ImpulseFilter(**filter_kwargs),
                            **kwargs)
        self.r = ReconcilerRef(budget=ExecutionBudgetRef(**budget_kwargs),
                               impulse_filter=ImpulseFilterRef(**filter_kwargs), **kwargs)

    def __getattr__(self, name):
        # mirror calls (order_placed, order_pending, ...) go to both with equal return codes
        if name.startswith("order_"):
            return lambda *args: self.call(name, *args)
        raise AttributeError(name)

    def call(self, name, *args):
        a = getattr(self.k, name)(*args)
        b = getattr(self.r, name)(*args)
        assert a == b, name
        return a

    def trade(self, t, px, sz, aggressor):
        assert self.k.tracker.on_trade(t, px, sz, aggressor) == self.r.tracker.on_trade(t, px, sz, aggressor)

    def diff(self, bids, asks, book_bids=(), book_asks=(), **ctx):
        mid = ctx.pop("mid", 0.0)
        bb_px, bb_sz = arrays(book_bids)
        ba_px, ba_sz = arrays(book_asks)
        n = self.k.diff(*arrays(bids), *arrays(asks), book_bid_px=bb_px, book_bid_sz=bb_sz,
                        book_ask_px=ba_px, book_ask_sz=ba_sz, mid_ticks=mid, **ctx)
        expected = self.r.diff(bids, asks, book_bids=book_bids, book_asks=book_asks, mid=mid, **ctx)
        got = self.k.actions()
        assert n == len(got)
        assert [a[:4] + (a[5],) for a in got] == [e[:4] + (e[5],) for e in expected]
        for a, e in zip(got, expected, strict=True):
            assert a[4] == pytest.approx(e[4], rel=1e-12)
        counts = self.k.counters()
        for key, value in self.r.counts.items():
            assert counts[key] == value, key
        for attr in ("available", "spent", "skipped", "emergency_uses"):
            assert getattr(self.k.budget, attr) == pytest.approx(getattr(self.r.budget, attr), rel=1e-12), attr
        for attr in ("updated", "skipped", "locked"):
            assert getattr(self.k.impulse_filter, attr) == getattr(self.r.impulse_filter, attr), attr
        return got


def check_shape(actions):
    kinds = [a[0] for a in actions]
    assert kinds == sorted(kinds)  # cancels, then modifies, then places: one batch each
    for kind in set(kinds):  # within each batch the mandatory actions lead
        mandatory = [a[5] for a in actions if a[0] == kind]
        assert mandatory == sorted(mandatory, reverse=True)
    slots = [a[1] for a in actions if a[0] != ACT_PLACE]
    assert len(slots) == len(set(slots))  # one action per order at most


def test_valid_tick_matches_reference():
    for px in (1, 9, 12345, 99999, 100000, 950000, 1_000_000, 12_345_678, 10**12):
        for szd in range(7):
            assert valid_tick(px, szd) == valid_tick_ref(px, szd)
    assert valid_tick(1_000_000, 5) == 10   # BTC at $100,000: $1 steps (integer prices)
    assert valid_tick(950_000, 5) == 10     # BTC at $95,000: 5 significant figures -> $1
    assert valid_tick(300_000, 4) == 10     # ETH at $3,000.00: $0.1


BID_GRID = (1000, 999, 995, 990)
SIZES = (1.0, 0.5)


def order_sets():
    options = list(itertools.product(BID_GRID, SIZES))
    yield ()
    for n in (1, 2):
        yield from itertools.product(options, repeat=n)


def target_sets():
    yield ()
    for n in (1, 2):
        for prices in itertools.combinations(BID_GRID, n):  # already best first
            for sizes in itertools.product(SIZES, repeat=n):
                yield tuple(zip(prices, sizes, strict=True))


CONTEXTS = [
    dict(best_ask=0, pull_bid=False, max_bid_size=math.inf, budget={}),
    dict(best_ask=996, pull_bid=False, max_bid_size=math.inf, budget={}),
    dict(best_ask=1001, pull_bid=True, max_bid_size=math.inf, budget={}),
    dict(best_ask=1001, pull_bid=False, max_bid_size=1.2, budget={}),
    dict(best_ask=1001, pull_bid=False, max_bid_size=math.inf, budget={"initial": 21.5}),
    dict(best_ask=0, pull_bid=False, max_bid_size=math.inf, budget={"initial": 0.0}),
]


def test_exhaustive_small_cases_match_reference():
    book = [(1000, 2.0), (999, 1.0), (995, 3.0), (990, 0.5)]
    cases = 0
    for ctx in CONTEXTS:
        for orders in order_sets():
            for targets in target_sets():
                pair = Pair(budget_kwargs=ctx["budget"], max_orders=4, max_levels=4, sz_decimals=0)
                pair.trade(0.0, 1000, 60.0, -1)
                for slot, (px, sz) in enumerate(orders):
                    assert pair.call("order_placed", slot, 1, px, sz, dict(book).get(px, 0.0), 0.5) == 0
                pair.trade(1.0, 1000, 40.0, -1)
                actions = pair.diff(list(targets), [], book_bids=book, best_bid=1000, best_ask=ctx["best_ask"],
                                    mid=1000.5, sigma=3e-4, pull_bid=ctx["pull_bid"],
                                    max_bid_size=ctx["max_bid_size"])
                check_shape(actions)
                if ctx["pull_bid"]:
                    assert len(actions) == len(orders) and all(a[0] == ACT_CANCEL and a[5] for a in actions)
                cases += 1
    assert cases == len(CONTEXTS) * 73 * 33


side_orders = st.lists(st.tuples(st.integers(0, 30), st.sampled_from([0.1, 0.2, 0.25, 0.5]),
                                 st.sampled_from([SLOT_RESTING, SLOT_RESTING, SLOT_PENDING, SLOT_CANCELLING]),
                                 st.floats(0, 3)), max_size=7)
side_targets = st.lists(st.tuples(st.integers(0, 30), st.sampled_from([0.1, 0.2, 0.25, 0.5])), max_size=7)


@settings(deadline=None, max_examples=300)
@given(bids=side_orders, asks=side_orders, tb=side_targets, ta=side_targets,
       trades=st.lists(st.tuples(st.integers(-5, 5), st.floats(0.01, 60), st.sampled_from([1, -1])), max_size=6),
       sigma=st.floats(1e-5, 2e-3), initial=st.sampled_from([0.0, 21.0, 23.0, 100.0, math.inf]),
       enabled=st.booleans(), filter_on=st.booleans(), pulls=st.tuples(st.booleans(), st.booleans()),
       caps=st.tuples(st.sampled_from([math.inf, 0.3, 1.0]), st.sampled_from([math.inf, 0.3, 1.0])),
       spread=st.integers(-3, 6))
def test_random_cases_match_reference(bids, asks, tb, ta, trades, sigma, initial, enabled, filter_on, pulls,
                                      caps, spread):
    mid = 100_000
    best_bid, best_ask = mid - 3, mid + 3 + spread  # spread < -3 makes some orders cross
    pair = Pair(budget_kwargs={"initial": initial, "enabled": enabled}, filter_kwargs={"enabled": filter_on},
                max_orders=16, max_levels=8, sz_decimals=4)
    book_bids = [(best_bid - 4 * i, 0.3 + 0.1 * i) for i in range(8)]
    book_asks = [(best_ask + 4 * i, 0.2 + 0.1 * i) for i in range(8)]
    slot = 0
    for side, orders in ((1, bids), (-1, asks)):
        for offset, sz, state, shown in orders:
            px = best_bid - offset if side > 0 else best_ask + offset
            if state == SLOT_PENDING:
                pair.call("order_pending", slot, side, px, sz)
            else:
                pair.call("order_placed", slot, side, px, sz, shown, 0.0)
                if state == SLOT_CANCELLING:
                    pair.call("order_cancelling", slot)
            slot += 1
    for i, (offset, sz, aggressor) in enumerate(trades):
        pair.trade(0.1 * (i + 1), (best_ask if aggressor > 0 else best_bid) + offset, sz, aggressor)
    targets_b = sorted({best_bid - o: s for o, s in tb}.items(), reverse=True)
    targets_a = sorted({best_ask + o: s for o, s in ta}.items())
    actions = pair.diff(targets_b, targets_a, book_bids, book_asks, best_bid=best_bid, best_ask=best_ask,
                        mid=(best_bid + best_ask) / 2, sigma=sigma, pull_bid=pulls[0], pull_ask=pulls[1],
                        max_bid_size=caps[0], max_ask_size=caps[1])
    check_shape(actions)


def setup_resting(pair_or_k, levels, side=1, shown=1.0):
    for slot, (px, sz) in enumerate(levels):
        pair_or_k.order_placed(slot, side, px, sz, shown, 0.0)


def test_mandatory_cancels_never_skipped_even_with_an_empty_budget():
    k = Reconciler(budget=ExecutionBudget(initial=0.0))
    setup_resting(k, [(1000, 1.0), (999, 1.0)], side=1)
    k.order_placed(2, -1, 1003, 1.0, 1.0, 0.0)
    # the ask moved down to 999: both bids now cross; the ask side is pulled
    n = k.diff(np.array([990], dtype=I64), np.array([1.0]), np.array([1010], dtype=I64), np.array([1.0]),
               best_bid=998, best_ask=999, mid_ticks=998.5, sigma=1e-3, pull_ask=True)
    acts = k.actions()
    assert n == 3
    assert sorted(a[1] for a in acts) == [0, 1, 2]
    assert all(a[0] == ACT_CANCEL and a[5] for a in acts)
    assert k.budget.emergency_uses == 1
    assert k.budget.available == pytest.approx(-(1 + 0.8 * 2))  # went into debt, not skipped
    assert k.budget_skipped == 1 and k.last_budget_skipped == 1  # the optional bid place was dropped
    assert k.budget.skipped == 1
    assert k.mandatory_cancels == 3 and k.last_mandatory == 3


def test_pending_cancelling_and_steady_state():
    k = Reconciler()
    levels = [(1000, 1.0), (990, 1.0), (980, 1.0)]
    setup_resting(k, levels)
    bid_px, bid_sz = arrays(levels)
    empty_px, empty_sz = np.zeros(0, dtype=I64), np.zeros(0)
    assert k.diff(bid_px, bid_sz, empty_px, empty_sz, best_bid=1000, best_ask=1010, mid_ticks=1005,
                  sigma=1e-3) == 0
    assert k.last_kept == 3
    # within the 10 % size tolerance: kept
    assert k.diff(bid_px, bid_sz * 1.05, empty_px, empty_sz, best_bid=1000, best_ask=1010,
                  mid_ticks=1005, sigma=1e-3) == 0
    # a size-only decrease is a modify at the same price (queue priority kept)
    k.diff(bid_px, np.array([0.5, 1.0, 1.0]), empty_px, empty_sz, best_bid=1000, best_ask=1010,
           mid_ticks=1005, sigma=1e-3)
    assert k.actions() == [(ACT_MODIFY, 0, 1, 1000, 0.5, False)]
    # a pending order holds its target; a cancelling one is ignored and its target placed anew
    k.order_pending(0, 1, 1000, 1.0)
    k.order_cancelling(1)
    assert k.slot_state(0) == SLOT_PENDING and k.slot_state(1) == SLOT_CANCELLING
    k.diff(bid_px, bid_sz, empty_px, empty_sz, best_bid=1000, best_ask=1010, mid_ticks=1005, sigma=1e-3)
    assert k.actions() == [(ACT_PLACE, -1, 1, 990, 1.0, False)]
    k.order_gone(1)
    assert k.slot_state(1) == SLOT_FREE


def test_side_cap_cancels_deepest_and_blocks_places():
    k = Reconciler()
    setup_resting(k, [(990, 1.0), (1000, 1.0), (980, 1.0)])
    targets_px = np.array([1000, 990, 980, 970], dtype=I64)
    targets_sz = np.ones(4)
    k.diff(targets_px, targets_sz, np.zeros(0, dtype=I64), np.zeros(0), best_bid=1000, best_ask=1010,
           mid_ticks=1005, sigma=1e-3, max_bid_size=2.0)
    acts = k.actions()
    assert acts == [(ACT_CANCEL, 2, 1, 980, 1.0, True)]  # deepest goes; no place beyond the cap
    assert k.cap_skipped >= 1


def test_crossing_targets_are_dropped_not_placed():
    k = Reconciler()
    n = k.diff(np.array([1010, 1000], dtype=I64), np.ones(2), np.array([1000, 1011], dtype=I64), np.ones(2),
               best_bid=1000, best_ask=1010, mid_ticks=1005, sigma=1e-3)
    assert n == 2
    assert sorted((a[2], a[3]) for a in k.actions()) == [(-1, 1011), (1, 1000)]
    assert k.targets_dropped == 2


def test_bad_mirror_calls_are_counted():
    k = Reconciler(max_orders=4)
    assert k.order_placed(9, 1, 100, 1.0, 0.0, 0.0) == -1
    assert k.order_pending(0, 0, 100, 1.0) == -1
    assert k.order_cancelling(1) == -1
    assert k.order_resized(1, 1.0) == -1
    assert k.order_gone(-2) == -1
    assert k.rejected == 5
    # mismatched target arrays use the common length
    assert k.diff(np.array([100, 99], dtype=I64), np.array([1.0]), np.zeros(0, dtype=I64), np.zeros(0)) == 1


def test_python_views_of_the_action_list():
    k = Reconciler()
    k.diff(np.array([1000], dtype=I64), np.array([0.5]), np.array([1010], dtype=I64), np.array([0.25]),
           best_bid=1000, best_ask=1010, mid_ticks=1005, sigma=1e-3)
    assert list(k.act_kind) == [ACT_PLACE, ACT_PLACE]
    assert list(k.act_side) == [1, -1]
    assert list(k.act_px) == [1000, 1010]
    assert list(k.act_sz) == [0.5, 0.25]
    assert list(k.act_slot) == [-1, -1]
    assert list(k.act_mandatory) == [0, 0]


# ---------- stale orders priced through the new target touch ----------

def test_orders_priced_through_the_target_touch_are_mandatory_even_when_broke():
    """The model stepped back (the target touch moved away from the market): the old top orders now
    sit ahead of the new targets, and with the tokens spent they used to stay there until the market
    ran into them."""
    pair = Pair(budget_kwargs=dict(initial=0.0, refill_per_s=0.0))
    setup_resting(pair, [(100_000, 0.01), (99_990, 0.01), (99_900, 0.01)], side=1)
    pair.order_placed(3, -1, 100_020, 0.01, 1.0, 0.0)
    pair.order_placed(4, -1, 100_200, 0.01, 1.0, 0.0)
    # tolerance at 99_950: max(3 ticks, 2 bp = 19.99); at 100_060: max(3 x 10, 20.01) = 30
    bids = [(99_950, 0.01), (99_900, 0.01)]
    asks = [(100_060, 0.01), (100_200, 0.01)]
    acts = pair.diff(bids, asks, best_bid=100_000, best_ask=100_010, mid=100_005.0, sigma=1e-3)
    check_shape(acts)
    # 50 and 40 above, 40 below: mispriced.  The best of them moves onto the side's unmatched target
    # in one modify; with no unmatched target left the other bid is cancelled.
    assert [a for a in acts if a[5]] == [(ACT_CANCEL, 1, 1, 99_990, 0.01, True),
                                         (ACT_MODIFY, 0, 1, 99_950, 0.01, True),
                                         (ACT_MODIFY, 3, -1, 100_060, 0.01, True)]
    assert not [a for a in acts if not a[5]]  # nothing optional is affordable
    assert pair.k.mispriced == 3 and pair.k.last_mispriced == 3 and pair.k.mandatory_modifies == 2
    assert pair.k.budget.emergency_uses == 2  # charged, into debt, never skipped


def test_mispriced_ask_and_the_tolerance_edge():
    pair = Pair(budget_kwargs=dict(initial=0.0, refill_per_s=0.0))
    pair.order_placed(0, -1, 99_970, 0.01, 1.0, 0.0)   # exactly at the tolerance (30 ticks): not mispriced
    pair.order_placed(1, -1, 99_969, 0.01, 1.0, 0.0)   # one tick more: mispriced
    acts = pair.diff([], [(100_000, 0.01)], best_bid=99_900, best_ask=99_990, mid=99_945.0, sigma=1e-3)
    assert [(a[1], a[5]) for a in acts if a[5]] == [(1, True)]
    assert pair.k.last_mispriced == 1


def test_a_side_without_targets_is_cancelled_as_mandatory():
    pair = Pair(budget_kwargs=dict(initial=0.0, refill_per_s=0.0))
    setup_resting(pair, [(1000, 1.0), (990, 1.0)], side=1)
    pair.order_pending(2, 1, 980, 1.0)
    acts = pair.diff([], [(1010, 1.0)], best_bid=1000, best_ask=1010, mid=1005.0, sigma=1e-3)
    assert sorted(a[1] for a in acts if a[5]) == [0, 1, 2]
    # targets that are all invalid or crossing leave the side without a touch as well
    pair2 = Pair()
    setup_resting(pair2, [(1000, 1.0)], side=1)
    acts = pair2.diff([(1010, 1.0), (0, 1.0)], [], best_bid=1000, best_ask=1010, mid=1005.0, sigma=1e-3)
    assert [a[:2] for a in acts if a[5]] == [(ACT_CANCEL, 0)]


@settings(deadline=None, max_examples=150)
@given(shift=st.integers(-60, 60), n_orders=st.integers(1, 6), budget=st.sampled_from([0.0, 30.0, math.inf]),
       side=st.sampled_from([1, -1]))
def test_market_moves_never_leave_mispriced_orders(shift, n_orders, budget, side):
    """Whatever the budget, after a move no order is left priced through the new target touch."""
    pair = Pair(budget_kwargs=dict(initial=budget, refill_per_s=0.0))
    base = 100_000
    for slot in range(n_orders):
        pair.order_placed(slot, side, base - side * 10 * slot, 0.01, 0.5, 0.0)
    touch = base - side * shift
    targets = [(touch - side * 10 * j, 0.01) for j in range(4)]
    best_same, best_opp = touch, touch + side * 30
    kw = dict(best_bid=best_same if side > 0 else best_opp, best_ask=best_opp if side > 0 else best_same,
              mid=touch + side * 15.0, sigma=1e-3)
    acts = pair.diff(targets, [], **kw) if side > 0 else pair.diff([], targets, **kw)
    check_shape(acts)
    tol = max(3 * valid_tick(touch, 5), 2e-4 * touch)
    final = {slot: base - side * 10 * slot for slot in range(n_orders)}
    for kind, slot, _, px, _, mandatory in acts:
        if kind == ACT_CANCEL:
            del final[slot]
        elif kind == ACT_MODIFY:
            was_mispriced = side * (final[slot] - touch) > tol
            assert mandatory == was_mispriced
            final[slot] = px
    assert all(side * (px - touch) <= tol for px in final.values())


def test_a_mispriced_order_is_cancelled_when_its_move_would_break_the_side_cap():
    pair = Pair(budget_kwargs=dict(initial=0.0, refill_per_s=0.0))
    setup_resting(pair, [(1010, 1.0), (990, 1.0)], side=1)      # 1010 is 10 ticks through the touch 1000
    targets = [(1000, 1.0), (990, 1.0)]
    acts = pair.diff(targets, [], best_bid=1005, best_ask=1020, mid=1012.5, sigma=1e-3, max_bid_size=1.5)
    assert [a for a in acts if a[5]] == [(ACT_CANCEL, 0, 1, 1010, 1.0, True)]
    acts = pair.diff(targets, [], best_bid=1005, best_ask=1020, mid=1012.5, sigma=1e-3, max_bid_size=2.0)
    assert [a for a in acts if a[5]] == [(ACT_MODIFY, 0, 1, 1000, 1.0, True)]
