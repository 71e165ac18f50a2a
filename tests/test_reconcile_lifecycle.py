"""Many diff cycles over order lifecycles (slots freed, reused, switching side, sparse high slots) vs
the reference: the kernels walk only their live slots, and must decide exactly as a walk over all slots."""
from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hlfast.qpos import QueueTracker
from tests.reference.qpos import QueueTrackerRef
from tests.test_qpos import book_arrays
from tests.test_reconcile import Pair, check_shape

MAX_ORDERS = 64
SLOTS = st.sampled_from([0, 1, 2, 7, 31, 62, 63])
MID = 100_000

mirror_call = st.one_of(
    st.tuples(st.just("order_placed"), SLOTS, st.sampled_from([1, -1]), st.integers(2, 40),
              st.sampled_from([0.1, 0.2, 0.5]), st.floats(0, 3)),
    st.tuples(st.just("order_pending"), SLOTS, st.sampled_from([1, -1]), st.integers(2, 40),
              st.sampled_from([0.1, 0.2, 0.5])),
    st.tuples(st.just("order_cancelling"), SLOTS),
    st.tuples(st.just("order_resized"), SLOTS, st.sampled_from([0.05, 0.3])),
    st.tuples(st.just("order_gone"), SLOTS),
    st.tuples(st.just("trade"), st.integers(-10, 10), st.floats(0.01, 5), st.sampled_from([1, -1])),
    st.tuples(st.just("diff"), st.lists(st.integers(2, 40), max_size=5), st.lists(st.integers(2, 40), max_size=5),
              st.sampled_from([math.inf, 0.4])),
)


def price(side: int, offset: int) -> int:
    return MID - offset if side > 0 else MID + offset


@settings(deadline=None, max_examples=120)
@given(calls=st.lists(mirror_call, max_size=40), initial=st.sampled_from([0.0, 3.0, 100.0]))
def test_slot_lifecycles_over_many_cycles_match_reference(calls, initial):
    pair = Pair(budget_kwargs={"initial": initial}, max_orders=MAX_ORDERS, max_levels=5, sz_decimals=4)
    book_bids = [(MID - 1 - 3 * i, 0.4) for i in range(10)]
    book_asks = [(MID + 1 + 3 * i, 0.4) for i in range(10)]
    t = 0.0
    for call in calls:
        t += 0.5
        name = call[0]
        if name == "order_placed":
            _, slot, side, offset, sz, shown = call
            pair.call(name, slot, side, price(side, offset), sz, shown, t)
        elif name == "order_pending":
            _, slot, side, offset, sz = call
            pair.call(name, slot, side, price(side, offset), sz)
        elif name == "trade":
            _, offset, sz, aggressor = call
            pair.trade(t, MID + aggressor * (1 + offset), sz, aggressor)
        elif name == "diff":
            _, bids, asks, cap = call
            targets_b = [(p, 0.2) for p in sorted({price(1, o) for o in bids}, reverse=True)]
            targets_a = [(p, 0.2) for p in sorted({price(-1, o) for o in asks})]
            check_shape(pair.diff(targets_b, targets_a, book_bids, book_asks, best_bid=MID - 1, best_ask=MID + 1,
                                  mid=float(MID), sigma=5e-4, max_bid_size=cap, max_ask_size=cap))
        elif call[1] in pair.r.orders or name == "order_gone":
            pair.call(*call)         # the reference has no bad-call path: only calls on live slots
    for slot in range(MAX_ORDERS):
        ref_order = pair.r.orders.get(slot)
        assert pair.k.slot_state(slot) == (ref_order.state if ref_order else 0)


@settings(deadline=None, max_examples=150)
@given(events=st.lists(st.one_of(
    st.tuples(st.just("add"), SLOTS, st.sampled_from([1, -1]), st.integers(95, 105), st.floats(0.1, 3)),
    st.tuples(st.just("remove"), SLOTS),
    st.tuples(st.just("trade"), st.integers(95, 105), st.floats(0.01, 4), st.sampled_from([1, -1])),
    st.tuples(st.just("book"), st.sampled_from([1, -1]), st.lists(st.floats(0.0, 10), max_size=6))), max_size=40))
def test_tracker_on_sparse_slots_matches_reference(events):
    kernel, ref = QueueTracker(MAX_ORDERS), QueueTrackerRef(MAX_ORDERS)
    t = 0.0
    for ev in events:
        t += 0.25
        if ev[0] == "add":
            _, slot, side, px, shown = ev
            assert kernel.add(slot, side, px, 1.0, shown, t) == ref.add(slot, side, px, 1.0, shown, t)
        elif ev[0] == "remove":
            assert kernel.remove(ev[1]) == ref.remove(ev[1])
        elif ev[0] == "trade":
            _, px, sz, aggressor = ev
            assert kernel.on_trade(t, px, sz, aggressor) == ref.on_trade(t, px, sz, aggressor)
        else:
            _, side, sizes = ev
            px = [100 - side * i for i in range(len(sizes))]
            assert kernel.on_book(*book_arrays(px, sizes), side, 100 + side * 10) == ref.on_book(
                px, sizes, side, 100 + side * 10)
    assert kernel.n_active == len(ref.orders)
    for s in range(MAX_ORDERS):
        k, r = kernel.queue_ahead(s), ref.queue_ahead(s)
        assert (math.isnan(k) and math.isnan(r)) or k == pytest.approx(r, rel=1e-12, abs=1e-12)
