"""Unmatched resting orders move onto unmatched targets (one modify instead of cancel + place)."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hlfast.reconcile import ACT_CANCEL, ACT_MODIFY, ACT_PLACE, ExecutionBudget, Reconciler
from tests.reference.reconcile import ExecutionBudgetRef
from tests.test_reconcile import Pair, check_shape, setup_resting

# BTC-like grid in finest ticks: valid step 10 at 1,000,000 (5 significant figures); the match
# tolerance is max(3 steps, 2 bp) = 200 ticks, so a 500-tick shift leaves every order unmatched
BEST_BID, BEST_ASK = 1_000_000, 1_000_010
MID = (BEST_BID + BEST_ASK) / 2
SIGMA = 1e-4
CTX = dict(best_bid=BEST_BID, best_ask=BEST_ASK, mid=MID, sigma=SIGMA)


def test_a_shifted_ladder_is_moved_by_modifies_not_cancel_and_place():
    pair = Pair()
    setup_resting(pair, [(BEST_BID - 1000, 0.01), (BEST_BID - 1100, 0.01)])
    targets = [(BEST_BID - 500, 0.01), (BEST_BID - 600, 0.01)]     # stepped 10 bp toward the touch
    acts = pair.diff(targets, [], **CTX)
    assert [(a[0], a[1], a[3], a[5]) for a in acts] == [
        (ACT_MODIFY, 0, BEST_BID - 500, False), (ACT_MODIFY, 1, BEST_BID - 600, False)]  # best onto best
    assert pair.k.reused == 2 and pair.k.cancelled == 0 and pair.k.placed == 0
    # the rollback: cancel the stale orders, place the new ones
    off = Pair(reuse_unmatched=False)
    setup_resting(off, [(BEST_BID - 1000, 0.01), (BEST_BID - 1100, 0.01)])
    acts = off.diff(targets, [], **CTX)
    assert sorted(a[0] for a in acts) == [ACT_CANCEL, ACT_CANCEL, ACT_PLACE, ACT_PLACE]
    assert off.k.reused == 0


def test_a_stale_order_no_longer_blocks_the_side_cap():
    # cap = one order's size, one token above the reserve: a cancel ranked last held the cap and the place
    # was refused; the reuse modify keeps the committed size and quotes the target in one action
    for reuse, expected in ((True, [(ACT_MODIFY, BEST_BID - 500)]), (False, [(ACT_CANCEL, BEST_BID - 1000)])):
        pair = Pair(budget_kwargs=dict(initial=21.0, refill_per_s=0.0), reuse_unmatched=reuse)
        setup_resting(pair, [(BEST_BID - 1000, 0.01)])
        acts = pair.diff([(BEST_BID - 500, 0.01)], [], max_bid_size=0.01, **CTX)
        assert [(a[0], a[3]) for a in acts] == expected
        assert pair.k.cap_skipped == (0 if reuse else 1)


def test_pending_orders_are_not_reused_and_surplus_orders_are_cancelled():
    pair = Pair()
    pair.order_pending(0, 1, BEST_BID - 1000, 0.01)                  # not acked: cannot be modified
    pair.order_placed(1, 1, BEST_BID - 1200, 0.01, 1.0, 0.0)
    pair.order_placed(2, 1, BEST_BID - 1300, 0.01, 1.0, 0.0)
    acts = pair.diff([(BEST_BID - 500, 0.01)], [], **CTX)
    # slot 1 (best acked) moves onto the target; slot 2 is surplus: an optional cancel; slot 0 kept
    assert sorted((a[0], a[1]) for a in acts) == [(ACT_CANCEL, 2), (ACT_MODIFY, 1)]
    assert pair.k.last_kept == 1


def test_reuse_is_valued_as_the_place_less_the_order_it_gives_up():
    # budget for one optional action: the touch target's move beats a deep one (P_new x edge ranking)
    pair = Pair(budget_kwargs=dict(initial=21.0, refill_per_s=0.0))
    setup_resting(pair, [(BEST_BID - 3000, 0.01), (BEST_BID - 3100, 0.01)])
    acts = pair.diff([(BEST_BID - 20, 0.01), (BEST_BID - 2000, 0.01)], [], **CTX)
    assert [(a[0], a[1], a[3]) for a in acts] == [(ACT_MODIFY, 0, BEST_BID - 20)]
    assert pair.k.budget_skipped_modifies == 1 and pair.k.budget_skipped == 1


@settings(deadline=None, max_examples=150)
@given(orders=st.lists(st.tuples(st.integers(0, 60), st.sampled_from([0.01, 0.02])), max_size=6),
       targets=st.lists(st.tuples(st.integers(0, 60), st.sampled_from([0.01, 0.02])), max_size=6),
       initial=st.sampled_from([20.0, 22.5, 100.0, math.inf]), cap=st.sampled_from([math.inf, 0.03, 0.05]),
       reuse=st.booleans())
def test_random_ladders_match_the_reference(orders, targets, initial, cap, reuse):
    pair = Pair(budget_kwargs=dict(initial=initial, refill_per_s=0.0), reuse_unmatched=reuse)
    prices = {}
    for slot, (offset, sz) in enumerate(orders):
        prices[slot] = BEST_BID - 100 * offset
        pair.order_placed(slot, 1, prices[slot], sz, 0.5, 0.0)
    tgt = sorted({BEST_BID - 100 * o: s for o, s in targets}.items(), reverse=True)
    acts = pair.diff(tgt, [], max_bid_size=cap, **CTX)
    check_shape(acts)
    k = pair.k
    assert k.budget_skipped == k.budget_skipped_cancels + k.budget_skipped_modifies + k.budget_skipped_places
    if not reuse:
        assert k.reused == 0
    resting = sum(sz for _, sz in orders)
    after = resting + sum(a[4] - (0.0 if a[0] == ACT_PLACE else dict(enumerate(o[1] for o in orders))[a[1]])
                          for a in acts if a[0] != ACT_CANCEL) - sum(a[4] for a in acts if a[0] == ACT_CANCEL)
    assert after <= max(cap, resting) * (1 + 1e-9) + 1e-12   # never grows a side beyond its cap


def test_refill_stops_exactly_at_the_cap():
    # available + (max - available) can round one ulp above max; the balance must stop at max
    for cls in (ExecutionBudget, ExecutionBudgetRef):
        b = cls(initial=0.0, refill_per_s=3.0)
        b.emergency_spend(20)
        b.refill(0.0)
        b.refill(173.0)
        assert b.available == 500.0


def test_counters_expose_reuse_and_budget_skips_by_kind():
    k = Reconciler()
    names = k.counters()
    for key in ("reused", "budget_skipped_cancels", "budget_skipped_modifies", "budget_skipped_places"):
        assert names[key] == 0
    assert Reconciler(reuse_unmatched=False).reuse_unmatched is False
    with pytest.raises(AttributeError):
        k.reuse_unmatched = False   # fixed at construction (read-only)
    assert np.asarray(k.act_kind).size == 0
