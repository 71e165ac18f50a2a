"""Order state machine: odd orderings, duplicates, resync, exact accounting and interleaving invariance."""
from __future__ import annotations

import json
import random
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hlfast.orders import (
    LIVE_STATES,
    REJECT_REASONS,
    OrderState,
    OrderStateMachine,
    PositionAdjustment,
    reject_reason,
)
from hlfast.signer import CloidGenerator
from tests.paths import HL_FIXTURES
from tests.reference.accounting import Accounting

FIX = HL_FIXTURES
NEVER_PLACED = {"error": "Order was never placed, already canceled, or filled. asset=0"}
S = OrderState


class MirrorListener:
    """Mirrors live orders by slot the way the reconcile kernel does; asserts the call protocol."""

    def __init__(self) -> None:
        self.slots: dict[int, dict] = {}
        self.placed_calls = 0

    def order_pending(self, slot, side, px_ticks, sz):
        assert slot not in self.slots
        self.slots[slot] = {"side": side, "px": px_ticks, "sz": sz, "placed": False}

    def order_placed(self, slot, side, px_ticks, sz, displayed_at_px, t):
        assert slot in self.slots and sz > 0
        self.slots[slot].update(side=side, px=px_ticks, sz=sz, placed=True, displayed=displayed_at_px, t=t)
        self.placed_calls += 1

    def order_resized(self, slot, sz):
        assert slot in self.slots and sz > 0
        self.slots[slot]["sz"] = sz

    def order_gone(self, slot):
        assert slot in self.slots
        del self.slots[slot]


def machine(**kw) -> tuple[OrderStateMachine, MirrorListener]:
    listener = MirrorListener()
    sm = OrderStateMachine(max_orders=kw.pop("max_orders", 16), listener=listener, coin="BTC", px_decimals=1,
                           sz_decimals=5, cloids=CloidGenerator(prefix=7), **kw)
    return sm, listener


def check_mirror(sm: OrderStateMachine, listener: MirrorListener) -> None:
    assert sm.listener_errors == 0
    live = {o.slot: o for o in sm.live() if o.slot >= 0}
    assert set(live) == set(listener.slots)
    for slot, o in live.items():
        if listener.slots[slot]["placed"] and o.state != S.PENDING_NEW:
            assert abs(listener.slots[slot]["sz"] - float(o.remaining)) < 1e-12
    assert sm.free_slots + len(live) == sm.max_orders


def fill(oid, sz, px="100000.0", side="B", tid=None, cloid=None, fee="0.01", coin="BTC"):
    f = {"coin": coin, "px": px, "sz": sz, "side": side, "time": 1, "oid": oid, "fee": fee,
         "tid": tid if tid is not None else oid * 1000 + int(Decimal(sz) * 10**5), "hash": "0x00",
         "closedPnl": "0.0"}
    if cloid is not None:
        f["cloid"] = cloid
    return f


def update(oid, status, sz="0.01", cloid=None, side="B", px="100000.0", coin="BTC"):
    order = {"coin": coin, "side": side, "limitPx": px, "sz": sz, "oid": oid, "timestamp": 1, "origSz": sz}
    if cloid is not None:
        order["cloid"] = cloid
    return {"order": order, "status": status, "statusTimestamp": 2}


def resting(oid):
    return {"resting": {"oid": oid}}


# ---------------------------------------------------------------------------------------------- sequences
def test_happy_path_place_partial_fill_fill():
    sm, li = machine(displayed_size=lambda side, px: 2.5)
    slot, cloid = sm.new_order(1, 1_000_000, 0.01, t=1.0)
    assert slot == 0 and cloid.startswith("0x") and len(cloid) == 34
    assert sm.by_slot(0).state == S.PENDING_NEW and sm.pending_bid_size == 0.01 and sm.pending_ask_size == 0
    assert sm.on_place_status(cloid, resting(11), t=1.1)
    assert li.slots[0] == {"side": 1, "px": 1_000_000, "sz": 0.01, "placed": True, "displayed": 2.5, "t": 1.1}
    assert sm.on_fill(fill(11, "0.004", cloid=cloid))
    assert sm.by_oid(11).state == S.PARTIALLY_FILLED and li.slots[0]["sz"] == 0.006
    assert sm.on_fill(fill(11, "0.006"))
    assert sm.by_cloid(cloid).state == S.FILLED and 0 not in li.slots and sm.free_slots == 16
    assert sm.position == 0.01 and sm.volume == 1000.0 and sm.fees == 0.02 and sm.cash == -1000.02
    check_mirror(sm, li)


def test_fill_before_ack_then_ack():
    sm, li = machine()
    slot, cloid = sm.new_order(-1, 1_000_000, 0.01, t=0)
    sm.on_fill(fill(21, "0.003", side="A", cloid=cloid))
    assert sm.by_cloid(cloid).state == S.PENDING_NEW and sm.pending_ask_size == 0.007
    sm.on_place_status(cloid, resting(21), t=1)
    o = sm.by_oid(21)
    assert o.state == S.PARTIALLY_FILLED and li.slots[slot]["sz"] == 0.007 and li.slots[slot]["placed"]
    assert sm.position == -0.003
    check_mirror(sm, li)


def test_fill_without_cloid_before_ack_is_claimed_by_the_oid():
    sm, li = machine()
    slot, cloid = sm.new_order(1, 1_000_000, 0.01, t=0)
    sm.on_fill(fill(31, "0.002"))  # no cloid, oid unknown yet
    assert sm.unmatched_fills == 1 and sm.position == 0.002
    sm.on_place_status(cloid, resting(31))
    assert float(sm.by_oid(31).remaining) == 0.008 and li.slots[slot]["sz"] == 0.008
    check_mirror(sm, li)


def test_complete_fill_before_ack_then_stale_ack():
    sm, li = machine()
    slot, cloid = sm.new_order(1, 1_000_000, 0.01, t=0)
    sm.on_fill(fill(41, "0.01", cloid=cloid))
    assert sm.by_cloid(cloid).state == S.FILLED and slot not in li.slots
    assert not sm.on_place_status(cloid, resting(41))
    assert sm.by_cloid(cloid).state == S.FILLED and sm.drain_cancels() == [] and sm.stale_events == 1
    check_mirror(sm, li)


def test_ack_after_cancel_success_is_stale():
    sm, li = machine()
    slot, cloid = sm.new_order(1, 1_000_000, 0.01, t=0)
    assert sm.on_cancel_sent(cloid)
    assert sm.by_cloid(cloid).state == S.PENDING_CANCEL
    sm.on_cancel_status(cloid, "success")
    sm.on_place_status(cloid, resting(51))
    sm.on_order_update(update(51, "open", cloid=cloid))
    assert sm.by_cloid(cloid).state == S.CANCELLED and sm.drain_cancels() == [] and not sm.live()
    check_mirror(sm, li)


def test_cancel_that_overtook_the_order_is_sent_again():
    sm, li = machine()
    slot, cloid = sm.new_order(1, 1_000_000, 0.01, t=0)
    sm.on_cancel_sent(cloid)
    sm.on_cancel_status(cloid, NEVER_PLACED)  # the order had not landed yet
    assert sm.by_cloid(cloid).state == S.PENDING_CANCEL and sm.by_cloid(cloid).needs_cancel
    sm.on_place_status(cloid, resting(61))
    assert sm.drain_cancels() == [(61, cloid)] and sm.by_oid(61).state == S.RESTING
    sm.on_cancel_sent(61)
    sm.on_cancel_status(61, "success")
    assert sm.by_oid(61).state == S.CANCELLED and not sm.live()
    check_mirror(sm, li)


def test_cancel_of_an_already_filled_order():
    sm, li = machine()
    slot, cloid = sm.new_order(1, 1_000_000, 0.01, t=0)
    sm.on_place_status(cloid, resting(71))
    sm.on_cancel_sent(cloid)
    sm.on_cancel_status(cloid, NEVER_PLACED)  # reply first, fill later
    o = sm.by_cloid(cloid)
    assert o.state == S.CANCELLED and o.inferred and slot not in li.slots
    sm.on_fill(fill(71, "0.01", cloid=cloid))
    assert o.state == S.FILLED and sm.position == 0.01
    # the other order: fill first, then the cancel error
    slot2, cloid2 = sm.new_order(-1, 1_000_100, 0.02, t=0)
    sm.on_place_status(cloid2, resting(72))
    sm.on_fill(fill(72, "0.02", side="A"))
    sm.on_cancel_sent(cloid2)  # too late: refused, the order is already terminal
    assert sm.by_cloid(cloid2).state == S.FILLED and not sm.on_cancel_sent(cloid2)
    assert not sm.on_cancel_status(cloid2, NEVER_PLACED)
    assert abs(sm.position - (-0.01)) < 1e-15
    check_mirror(sm, li)


def test_reject_and_batch_error_with_real_replies():
    items = json.loads((FIX / "real_exchange_and_ws_responses_quoted.json").read_text())["items"]
    reduce_only_reject, rate_limited = items[1]["body"], items[11]["body"]
    sm, li = machine()
    _, c1 = sm.new_order(1, 1_000_000, 0.01, t=0)
    sm.on_order_response([c1], reduce_only_reject)
    o = sm.by_cloid(c1)
    assert o.state == S.REJECTED and o.reason.startswith("Reduce only order would increase position.")
    assert sm.rejects == 1 and sm.last_reject.endswith("asset=4")
    c2 = sm.new_order(1, 1_000_000, 0.01, t=0)[1]
    c3 = sm.new_order(-1, 1_000_100, 0.01, t=0)[1]
    sm.on_order_response([c2, c3], rate_limited)
    assert sm.by_cloid(c2).state == sm.by_cloid(c3).state == S.REJECTED and "Too many" in sm.last_reject
    assert not sm.live() and sm.counts()["REJECTED"] == 3
    check_mirror(sm, li)


def test_real_order_replies_resting_filled_ioc_partial():
    items = json.loads((FIX / "real_exchange_and_ws_responses_quoted.json").read_text())["items"]
    sm, li = machine()
    _, c_rest = sm.new_order(-1, 28260, 0.0009, t=0)
    sm.on_order_response([c_rest], items[7]["body"])
    assert sm.by_oid(62088976113).state == S.RESTING
    _, c_ioc = sm.new_order(1, 2876, 200.0, t=0, tif="Ioc")
    sm.on_order_response([c_ioc], items[5]["body"])  # totalSz 136 of 200: the rest is cancelled
    assert sm.by_oid(62014694776).state == S.FILLED and sm.by_cloid(c_ioc) not in sm.live()
    _, c_cancel = sm.new_order(1, 1, 1.0, t=0)
    sm.on_place_status(c_cancel, resting(5))
    sm.on_cancel_sent(c_rest)
    sm.on_cancel_sent(c_cancel)
    sm.on_cancel_response([c_rest, c_cancel], {"status": "ok", "response": {"type": "cancel", "data": {
        "statuses": items[2]["body"]["response"]["data"]["statuses"][:2]}}})
    assert sm.by_cloid(c_rest).state == S.CANCELLED and sm.by_cloid(c_cancel).state == S.CANCELLED
    check_mirror(sm, li)


def test_cancel_batch_error_restores_orders():
    sm, li = machine()
    _, cloid = sm.new_order(1, 1_000_000, 0.01, t=0)
    sm.on_place_status(cloid, resting(81))
    sm.on_cancel_sent(cloid)
    sm.on_cancel_response([cloid], {"status": "err", "response": "Signed action over weight limit of 200."})
    assert sm.by_cloid(cloid).state == S.RESTING
    check_mirror(sm, li)


def test_unknown_open_order_is_adopted_and_cancelled():
    sm, li = machine()
    assert sm.on_order_update(update(999, "open", sz="0.5", side="A", px="101000.0"))
    adopted = sm.by_oid(999)
    assert adopted.adopted and adopted.slot == -1 and adopted.px_ticks == 1_010_000 and adopted.side == -1
    assert sm.drain_cancels() == [(999, None)] and sm.adopted == 1
    assert sm.pending_ask_size == 0  # not ours: not counted as quoting capacity
    assert adopted in sm.resting()
    sm.on_cancel_sent(999)
    sm.on_cancel_status(999, "success")
    assert adopted.state == S.CANCELLED and not sm.live()
    check_mirror(sm, li)


def test_duplicate_and_out_of_order_updates():
    sm, li = machine()
    _, cloid = sm.new_order(1, 1_000_000, 0.01, t=0)
    sm.on_order_update(update(91, "canceled", cloid=cloid))  # cancel seen before open
    sm.on_order_update(update(91, "open", cloid=cloid))
    sm.on_place_status(cloid, resting(91))
    assert sm.by_cloid(cloid).state == S.CANCELLED and sm.drain_cancels() == []
    f = fill(92, "0.004")
    assert sm.on_fill(f) and not sm.on_fill(f) and not sm.on_fill(dict(f))
    assert sm.duplicate_fills == 2 and sm.position == 0.004
    check_mirror(sm, li)


def test_modify_is_cancel_replace_in_any_order():
    for order in ["status_first", "updates_first", "old_cancel_first"]:
        sm, li = machine()
        slot, cloid = sm.new_order(1, 1_000_000, 0.01, t=0)
        sm.on_place_status(cloid, resting(100))
        assert sm.on_modify_sent(cloid, 999_990, 0.02, t=1)
        assert sm.by_cloid(cloid).state == S.PENDING_MODIFY
        events = [("status", resting(101)), ("update", update(101, "open", sz="0.02", cloid=cloid)),
                  ("update", update(100, "canceled", cloid=cloid))]
        if order == "updates_first":
            events = events[1:] + events[:1]
        elif order == "old_cancel_first":
            events = [events[2], events[0], events[1]]
        for kind, ev in events:
            if kind == "status":
                sm.on_modify_status(cloid, ev, t=2)
            else:
                sm.on_order_update(ev, t=2)
        o = sm.by_cloid(cloid)
        assert (o.state, o.oid, o.px_ticks, o.remaining) == (S.RESTING, 101, 999_990, Decimal("0.02")), order
        assert li.slots[slot]["px"] == 999_990 and li.slots[slot]["sz"] == 0.02
        assert sm.by_oid(100) is o and 100 in o.old_oids
        sm.on_fill(fill(100, "0.001"))  # a late fill of the old incarnation moves position only
        assert o.remaining == Decimal("0.02") and sm.position == 0.001
        check_mirror(sm, li)


def test_modify_errors():
    sm, li = machine()
    _, c1 = sm.new_order(1, 1_000_000, 0.01, t=0)
    sm.on_place_status(c1, resting(110))
    sm.on_modify_sent(c1, 999_000, 0.01)
    sm.on_modify_status(c1, {"error": "Post only order would have immediately matched, bbo was 1@2. asset=0"})
    assert sm.by_cloid(c1).state == S.RESTING and sm.by_cloid(c1).px_ticks == 1_000_000
    # a refused modify is a reject like a refused place (the reject-storm guard counts it) ...
    assert sm.rejects == 1 and sm.rejects_by_reason == {"alo_cross": 1}
    sm.on_modify_sent(c1, 999_000, 0.01)
    sm.on_modify_status(c1, {"error": "Cannot modify canceled or filled order"})
    assert sm.by_cloid(c1).state == S.CANCELLED
    assert sm.rejects == 1  # ... a modify that raced a fill or cancel is not
    _, c2 = sm.new_order(1, 1_000_000, 0.01, t=0)
    assert not sm.on_modify_sent(c2, 1, 0.01)  # not acked yet: refused
    sm.on_place_status(c2, resting(111))
    sm.on_modify_sent(c2, 999_000, 0.01)
    sm.on_modify_response([c2], {"status": "err", "response": "Too many cumulative requests sent"})
    assert sm.by_cloid(c2).state == S.RESTING
    check_mirror(sm, li)


def test_resync_marks_absent_orders_gone_and_adopts_unknowns():
    sm, li = machine()
    _, c_rest = sm.new_order(1, 1_000_000, 0.01, t=0)
    sm.on_place_status(c_rest, resting(120), t=1)
    _, c_gone = sm.new_order(1, 999_000, 0.01, t=0)
    sm.on_place_status(c_gone, resting(121), t=1)
    _, c_old_pending = sm.new_order(-1, 1_001_000, 0.01, t=0)
    _, c_new_pending = sm.new_order(-1, 1_002_000, 0.01, t=19)
    snapshot = [{"coin": "BTC", "side": "B", "limitPx": "100000.0", "sz": "0.006", "oid": 120, "cloid": c_rest},
                {"coin": "BTC", "side": "A", "limitPx": "100500.0", "sz": "0.1", "oid": 555},
                {"coin": "ETH", "side": "A", "limitPx": "3000.0", "sz": "1.0", "oid": 556}]
    to_cancel = sm.on_open_orders(snapshot, t=20, t_request=20)
    assert to_cancel == [(555, None)]
    assert sm.by_cloid(c_rest).state == S.PARTIALLY_FILLED and sm.by_cloid(c_rest).remaining == Decimal("0.006")
    assert sm.by_cloid(c_gone).state == S.CANCELLED and sm.by_cloid(c_gone).inferred
    assert sm.by_cloid(c_old_pending).state == S.CANCELLED  # pending for 20 s: it never landed
    assert sm.by_cloid(c_new_pending).state == S.PENDING_NEW  # may still be in flight
    # a stale "open" for an order confirmed gone is ignored ...
    sm.on_order_update(update(121, "open", cloid=c_gone))
    assert sm.drain_cancels() == [] and sm.by_oid(121).state == S.CANCELLED
    # ... but the never-confirmed order landing after all is adopted for cancellation, never left untracked
    sm.on_place_status(c_old_pending, resting(122))
    assert sm.drain_cancels() == [(122, c_old_pending)] and sm.by_oid(122).adopted
    check_mirror(sm, li)


def test_real_open_orders_snapshot_adopts_everything_unknown():
    rows = json.loads((FIX / "sdk_cassette_open_orders.json").read_text())["response"]
    sm = OrderStateMachine(max_orders=8)  # every coin
    to_cancel = sm.on_open_orders(rows)
    assert len(to_cancel) == len(rows) == len({r["oid"] for r in rows})
    assert len(sm.resting()) == len(rows) and sm.bad_events == 0
    sm.on_open_orders([])  # all gone at the next resync
    assert not sm.live()


def test_real_fills_with_cloid_and_rebates():
    fills = json.loads((FIX / "nautilus_http_user_fills_with_cloid.json").read_text())
    sm = OrderStateMachine(coin="BTC", px_decimals=1, sz_decimals=5)
    for f in fills:
        assert sm.on_fill(f)
    ref = Accounting()
    for f in fills:
        ref.fill(1 if f["side"] == "B" else -1, f["px"], f["sz"], f["fee"])
    ex = sm.exact()
    assert Fraction(ex["position"]) == ref.position == Fraction("0.00551")
    assert Fraction(ex["fees"]) == ref.fees < 0 and Fraction(ex["cash"]) == ref.cash
    assert sm.unmatched_fills == 2  # fills for orders this machine never sent still count


def test_fills_for_unknown_orders_and_other_coins():
    sm, _ = machine()
    sm.on_fill(fill(7, "0.5", side="A"))
    sm.on_fill(fill(8, "0.5", coin="ETH"))
    assert sm.position == -0.5 and sm.other_coin_events == 1


def test_bad_input_is_counted_never_raised():
    sm, li = machine()
    bad_inputs = [
        lambda: sm.on_fill({"coin": "BTC"}),
        lambda: sm.on_fill(fill(1, "abc", tid=5)),
        lambda: sm.on_fill({**fill(1, "0.1", tid=6), "side": "X"}),
        lambda: sm.on_fill(fill(1, "-0.1", tid=7)),
        lambda: sm.on_order_update({"order": {"coin": "BTC"}}),
        lambda: sm.on_order_update("garbage"),
        lambda: sm.on_place_status(sm.new_order(1, 1, 0.01, 0)[1], {"resting": {}}),
        lambda: sm.on_place_status(sm.new_order(1, 1, 0.01, 0)[1], 42),
    ]
    for i, call in enumerate(bad_inputs, 1):
        assert call() is False
        assert sm.bad_events == i
    assert sm.position == 0
    assert sm.new_order(0, 1, 0.01, 0) == (-1, "") and sm.new_order(1, 1, 0.0, 0) == (-1, "")
    assert sm.new_order(1, 1, 1e-9, 0) == (-1, "")  # below one lot
    check_mirror(sm, li)


def test_slots_are_bounded_and_reused():
    sm, li = machine(max_orders=3)
    cl = [sm.new_order(1, 10, 0.01, 0)[1] for _ in range(3)]
    assert sm.new_order(1, 10, 0.01, 0) == (-1, "") and sm.slots_exhausted == 1
    sm.on_place_status(cl[1], {"error": "Insufficient margin to place order. asset=0"})
    slot, _ = sm.new_order(1, 10, 0.01, 0)
    assert slot == 1
    check_mirror(sm, li)


def test_listener_failure_is_contained():
    class Broken:
        def order_pending(self, *a):
            raise RuntimeError("kernel bug")

    sm = OrderStateMachine(listener=Broken())
    slot, cloid = sm.new_order(1, 10, 0.01, 0)
    assert slot == 0 and sm.listener_errors == 1 and sm.by_cloid(cloid).state == S.PENDING_NEW


# ---------------------------------------------------------------------------------------------- accounting
FILL_STEPS = st.lists(st.tuples(st.sampled_from([1, -1]), st.integers(1, 2_000_000), st.integers(1, 500),
                                st.integers(-50, 200)), min_size=1, max_size=60)


@settings(deadline=None, max_examples=150)
@given(FILL_STEPS)
def test_accounting_matches_exact_reference(steps):
    sm = OrderStateMachine()
    ref = Accounting()
    for i, (side, ticks, lots, fee_micro) in enumerate(steps):
        px, sz, fee = f"{ticks / 10:.1f}", f"{lots / 1000:.3f}", f"{fee_micro / 10**6:.6f}"
        sm.on_fill({"coin": "BTC", "px": px, "sz": sz, "side": "B" if side == 1 else "A", "tid": i, "oid": 1,
                    "fee": fee})
        ref.fill(side, px, sz, fee)
    ex = sm.exact()
    assert Fraction(ex["position"]) == ref.position
    assert Fraction(ex["cash"]) == ref.cash and Fraction(ex["fees"]) == ref.fees
    assert Fraction(ex["volume"]) == ref.volume
    assert abs(Fraction(ex["realized_pnl"]) - ref.realized) < Fraction(1, 10**30)
    # cash before fees = realised PnL − cost of the open position
    assert abs(Fraction(ex["cash"]) + ref.fees - (Fraction(ex["realized_pnl"]) - Fraction(ex["cost_basis"]))) \
        < Fraction(1, 10**30)


# ---------------------------------------------------------------------------------------------- interleavings
FATES = ["cancelled", "filled", "rejected", "open", "ioc_filled", "cancel_lost_to_fill", "modified"]
NEW_OID = 500  # the replacement of order oid is oid + NEW_OID


def scenario(fates: list[str], rng: random.Random):
    """Per order: (side, size in lots, fills in lots, exchange-side events, engine events in causal order)."""
    plan = []
    for i, fate in enumerate(fates):
        oid = 1000 + i
        side = rng.choice([1, -1])
        lots = rng.randint(2, 40)
        if fate in ("filled", "ioc_filled", "cancel_lost_to_fill"):
            cut = rng.randint(1, lots - 1)
            fills = [cut, lots - cut]
        elif fate in ("cancelled", "open"):
            fills = [rng.randint(1, lots - 1)] if rng.random() < 0.6 else []
        else:
            fills = []
        if fate == "modified":  # (old fills, new size, new fills)
            new_lots = rng.randint(2, 40)
            fills = ([rng.randint(1, lots - 1)] if rng.random() < 0.5 else [], new_lots,
                     [rng.randint(1, new_lots - 1)] if rng.random() < 0.5 else [])
        plan.append((fate, oid, side, lots, fills))
    return plan


def events_for(plan, cloids):
    """Exchange-side events (any order) and causal chains: lists of stages, each stage a list of
    events in any order, the stages in order."""
    free, chains = [], []
    for (fate, oid, side, lots, fills), cloid in zip(plan, cloids, strict=True):
        sz = f"{lots / 1000:.3f}"
        sd = "B" if side == 1 else "A"
        if fate == "modified":
            old_fills, new_lots, new_fills = fills
            new_sz = f"{new_lots / 1000:.3f}"
            fill_events = [("fill", {"coin": "BTC", "px": "100000.0", "sz": f"{f / 1000:.3f}", "side": sd,
                                     "tid": o * 10 + k, "oid": o, "cloid": cloid, "fee": "0.01"})
                           for o, group in ((oid, old_fills), (oid + NEW_OID, new_fills)) for k, f in enumerate(group)]
            free.append(("update", update(oid, "open", sz=sz, cloid=cloid, side=sd)))
            free.extend(fill_events[:len(old_fills)])
            after = [("modify_status", (cloid, resting(oid + NEW_OID))),
                     ("update", update(oid, "canceled", sz=sz, cloid=cloid, side=sd)),
                     ("update", update(oid + NEW_OID, "open", sz=new_sz, cloid=cloid, side=sd))]
            after.extend(fill_events[len(old_fills):])
            chains.append([[("place", (cloid, resting(oid)))], [("modify_sent", (cloid, 990_000, new_lots / 1000))],
                           after])
            continue
        for k, f in enumerate(fills):
            free.append(("fill", {"coin": "BTC", "px": "100000.0", "sz": f"{f / 1000:.3f}", "side": sd,
                                  "tid": oid * 10 + k, "oid": oid, "cloid": cloid, "fee": "0.01"}))
        upd = lambda status, s=sz, o=oid, c=cloid, d=sd: ("update", update(o, status, sz=s, cloid=c, side=d))  # noqa: E731
        if fate == "rejected":
            free.append(("place", (cloid, {"error": "Insufficient margin to place order. asset=0"})))
            free.append(upd("perpMarginRejected"))
        elif fate == "ioc_filled":
            free.append(("place", (cloid, {"filled": {"totalSz": sz, "avgPx": "100000", "oid": oid}})))
            free.append(upd("filled"))
        else:
            free.append(("place", (cloid, resting(oid))))
            free.append(upd("open"))
            if fate == "filled":
                free.append(upd("filled"))
            elif fate == "cancelled":
                free.append(upd("canceled"))
                chains.append([[("cancel_sent", cloid)], [("cancel_status", (cloid, "success"))]])
            elif fate == "cancel_lost_to_fill":
                free.append(upd("filled"))
                chains.append([[("cancel_sent", cloid)], [("cancel_status", (cloid, NEVER_PLACED))]])
    return free, chains


def interleave(free, chains, rng, duplicates):
    events = list(free)
    rng.shuffle(events)
    for stages in chains:
        chain = []
        for stage in stages:
            stage = list(stage)
            rng.shuffle(stage)
            chain.extend(stage)
        positions = sorted(rng.randint(0, len(events)) for _ in chain)
        for offset, (pos, ev) in enumerate(zip(positions, chain, strict=True)):
            events.insert(pos + offset, ev)
    for _ in range(duplicates):
        events.insert(rng.randint(0, len(events)), rng.choice(free))
    return events


def run(plan, events_fn, seed, duplicates):
    sm, li = machine(max_orders=len(plan) + 1)
    cloids = []
    for _, _, side, lots, _ in plan:
        slot, cloid = sm.new_order(side, 1_000_000, lots / 1000, t=0, tif="Alo")
        cloids.append(cloid)
    free, chains = events_fn(plan, cloids)
    rng = random.Random(seed)
    for kind, ev in interleave(free, chains, rng, duplicates):
        if kind == "fill":
            sm.on_fill(ev)
        elif kind == "update":
            sm.on_order_update(ev)
        elif kind == "place":
            sm.on_place_status(*ev)
        elif kind == "cancel_sent":
            sm.on_cancel_sent(ev)
        elif kind == "cancel_status":
            sm.on_cancel_status(*ev)
        elif kind == "modify_sent":
            assert sm.on_modify_sent(*ev)
        elif kind == "modify_status":
            sm.on_modify_status(*ev)
        check_mirror(sm, li)
    return sm, li, cloids


@settings(deadline=None, max_examples=60)
@given(st.lists(st.sampled_from(FATES), min_size=1, max_size=8), st.integers(0, 2**32), st.integers(0, 6))
def test_any_interleaving_gives_the_same_outcome(fates, seed, duplicates):
    plan = scenario(fates, random.Random(seed))
    def filled_lots(fate, fills):
        return sum(fills[0]) + sum(fills[2]) if fate == "modified" else sum(fills)

    expected_position = sum(Fraction(side * filled_lots(fate, fills), 1000) for fate, _, side, _, fills in plan)
    outcomes = []
    for run_seed in (seed, seed + 1, seed + 2):
        sm, li, cloids = run(plan, events_for, run_seed, duplicates)
        assert Fraction(sm.exact()["position"]) == expected_position
        assert sm.bad_events == 0
        final = []
        for (fate, oid, _side, lots, fills), cloid in zip(plan, cloids, strict=True):
            o = sm.by_cloid(cloid)
            assert o is not None  # never untracked
            want = {"cancelled": S.CANCELLED, "filled": S.FILLED, "rejected": S.REJECTED,
                    "ioc_filled": S.FILLED, "cancel_lost_to_fill": S.FILLED}.get(fate)
            if fate == "open":
                assert o.state == (S.PARTIALLY_FILLED if fills else S.RESTING)
                assert o.remaining == Decimal(lots - sum(fills)) / 1000 and o.oid == oid
            elif fate == "modified":
                _, new_lots, new_fills = fills
                assert o.state == (S.PARTIALLY_FILLED if new_fills else S.RESTING), o
                assert o.remaining == Decimal(new_lots - sum(new_fills)) / 1000 and o.oid == oid + NEW_OID
                assert o.px_ticks == 990_000
            else:
                assert o.state == want, (fate, o)
            final.append((o.state, o.remaining if o.state in LIVE_STATES else None))
        # the exchange's open set after a resync equals what the machine tracks
        truth_open = [{"coin": "BTC", "side": "B" if side == 1 else "A", "limitPx": "100000.0",
                       "sz": f"{(lots - sum(fills)) / 1000:.3f}", "oid": oid, "cloid": cloid}
                      for (fate, oid, side, lots, fills), cloid in zip(plan, cloids, strict=True) if fate == "open"]
        truth_open += [{"coin": "BTC", "side": "B" if side == 1 else "A", "limitPx": "99000.0",
                        "sz": f"{(fills[1] - sum(fills[2])) / 1000:.3f}", "oid": oid + NEW_OID, "cloid": cloid}
                       for (fate, oid, side, lots, fills), cloid in zip(plan, cloids, strict=True)
                       if fate == "modified"]
        sm.drain_cancels()
        assert sm.on_open_orders(truth_open) == []
        assert sorted(o.oid for o in sm.live()) == sorted(r["oid"] for r in truth_open)
        check_mirror(sm, li)
        outcomes.append(final)
    assert outcomes[0] == outcomes[1] == outcomes[2]


# ---------------------------------------------------------------------------------------------- reject reasons
def test_real_reject_texts_map_to_a_fixed_set_of_reason_codes():
    items = json.loads((FIX / "real_exchange_and_ws_responses_quoted.json").read_text())["items"]
    expected = {1: "reduce_only", 6: "min_value", 11: "rate_limit", 12: "unknown_signer", 13: "alo_cross",
                14: "margin", 15: "unknown_signer", 17: "unknown_signer", 19: "nonce", 21: "invalid_price",
                3: "other", 4: "other", 20: "other"}
    for i, code in expected.items():
        body = items[i]["body"]
        text = json.dumps(body)
        assert reject_reason(text) == code, (i, text)
    docs = json.loads((FIX / "nautilus_exchange_error_messages.json").read_text())["errors"]
    codes = {reject_reason(e["message"]) for e in docs}
    assert codes <= set(REJECT_REASONS) and {"tick", "min_value", "margin", "reduce_only", "alo_cross",
                                             "open_interest", "oracle"} <= codes
    # reject statuses of orderUpdates map to the same codes as the texts
    for status, code in (("badAloPxRejected", "alo_cross"), ("minTradeNtlRejected", "min_value"),
                         ("tickRejected", "tick"), ("perpMarginRejected", "margin"),
                         ("reduceOnlyRejected", "reduce_only"), ("tooManyOpenOrdersRejected", "too_many_orders"),
                         ("oracleRejected", "oracle"), ("openInterestIncreaseRejected", "open_interest"),
                         ("rejected", "other")):
        assert reject_reason(status) == code


@settings(deadline=None, max_examples=200)
@given(bid=st.decimals(min_value=Decimal("0.001"), max_value=Decimal("200000"), places=3),
       spread=st.decimals(min_value=Decimal("0.001"), max_value=Decimal("50"), places=3),
       asset=st.integers(min_value=0, max_value=300))
def test_prices_in_reject_texts_never_make_new_reasons(bid, spread, asset):
    text = f"Post only order would have immediately matched, bbo was {bid}@{bid + spread}. asset={asset}"
    assert reject_reason(text) == "alo_cross"


def test_rejects_are_counted_by_code_and_logged_once_per_code(caplog):
    sm, li = machine()
    with caplog.at_level("WARNING", logger="hlfast.orders"):
        for px in ("6005.1@6005.2", "6006.0@6006.1", "7000.0@7000.5"):
            cloid = sm.new_order(1, 1_000_000, 0.01, t=0)[1]
            sm.on_place_status(cloid, {"error": f"Post only order would have immediately matched, bbo was {px}."})
        cloid = sm.new_order(1, 1_000_000, 0.01, t=0)[1]
        sm.on_place_status(cloid, {"error": "Insufficient margin to place order. asset=0"})
    assert sm.rejects_by_reason == {"alo_cross": 3, "margin": 1} and sm.rejects == 4
    assert caplog.text.count("order rejected (alo_cross") == 1 and "bbo was 6005.1@6005.2" in caplog.text
    assert caplog.text.count("order rejected (margin") == 1
    check_mirror(sm, li)


# ---------------------------------------------------------------------------------------------- missing fills
def test_known_fills_from_before_the_session_are_duplicates_and_move_nothing():
    sm, _ = machine()
    past = [fill(1, "0.01", tid=5), fill(2, "0.02", side="A", tid=6), fill(3, "0.01", coin="ETH", tid=7)]
    assert sm.mark_known_fills(past + [None, {"coin": "BTC"}]) == 2  # other coins and junk skipped
    assert sm.mark_known_fills(past) == 0 and sm.known_fills == 2
    assert not sm.on_fill(past[0]) and not sm.on_fill(past[1])  # a snapshot replaying them
    assert sm.position == 0 and sm.fills == 0 and sm.duplicate_fills == 2
    assert sm.has_fill(past[0]) and not sm.has_fill(fill(9, "0.01", tid=99))
    assert sm.on_fill(fill(9, "0.01", tid=99)) and sm.position == 0.01


def test_a_filled_update_without_its_fill_is_suspected_until_the_fill_arrives():
    sm, li = machine()
    _, cloid = sm.new_order(1, 1_000_000, 0.01, t=0)
    sm.on_place_status(cloid, resting(11))
    assert not sm.fills_possibly_missing()
    sm.on_order_update(update(11, "open", sz="0.006", cloid=cloid))  # 0.004 traded, no fill seen yet
    assert sm.fill_gap_events == 1 and sm.fills_possibly_missing()
    sm.on_fill(fill(11, "0.004", cloid=cloid, tid=1))
    assert not sm.fills_possibly_missing()
    sm.on_order_update(update(11, "filled", sz="0.0", cloid=cloid))  # the rest traded: its fill is late
    assert sm.by_oid(11).state == S.FILLED and sm.fill_gap_events == 2 and sm.fills_possibly_missing()
    assert sm.position == 0.004
    sm.on_fill(fill(11, "0.006", cloid=cloid, tid=2))
    assert not sm.fills_possibly_missing() and sm.position == 0.01
    check_mirror(sm, li)


def test_an_order_gone_by_inference_is_suspected_until_the_position_is_checked():
    sm, li = machine()
    _, cloid = sm.new_order(-1, 1_000_000, 0.01, t=0)
    sm.on_place_status(cloid, resting(12))
    sm.on_cancel_sent(cloid)
    sm.on_cancel_status(cloid, NEVER_PLACED)  # "... already canceled, or filled": which one?
    assert sm.by_oid(12).state == S.CANCELLED and sm.fills_possibly_missing() and sm.fill_gap_events == 1
    sm.clear_suspects()  # the engine compared the position with the exchange's
    assert not sm.fills_possibly_missing()
    check_mirror(sm, li)


# ---------------------------------------------------------------------------------------------- adjustments
def test_a_position_adjustment_is_netted_against_older_fills_only_once():
    adj = PositionAdjustment()
    adj.adopt(-0.02, as_of_ms=1_000, mark=100.0)  # exchange showed 0.02 more short than the fills explained
    assert adj.outstanding == -0.02 and adj.cost == pytest.approx(-2.0)
    assert adj.net(0.01, 900) == 0.0  # a buy does not explain a missing sell
    assert adj.net(-0.01, 1_001) == 0.0  # a sell after the check is a new trade
    assert adj.net(-0.015, 990) == pytest.approx(-0.015) and adj.outstanding == pytest.approx(-0.005)
    assert adj.cost == pytest.approx(-0.5)
    assert adj.net(-0.01, 995) == pytest.approx(-0.005) and adj.outstanding == 0 and adj.cost == 0
    assert adj.net(-0.01, 995) == 0.0 and adj.netted_fills == 2
    adj.adopt(0.01, as_of_ms=2_000, mark=110.0)
    adj.adopt(-0.004, as_of_ms=2_100, mark=111.0)  # an opposite move first reduces what is outstanding
    assert adj.outstanding == pytest.approx(0.006) and adj.cost == pytest.approx(0.66)
    assert adj.as_of_ms == 2_100 and adj.adoptions == 3


@settings(deadline=None, max_examples=200)
@given(side=st.sampled_from([1, -1]), lots=st.lists(st.integers(1, 50), min_size=1, max_size=8),
       late=st.lists(st.booleans(), min_size=8, max_size=8), newer=st.lists(st.integers(1, 50), max_size=3))
def test_adopting_then_receiving_the_missing_fills_counts_each_once(side, lots, late, newer):
    """Fills lost on one side, adopted as one adjustment: whichever of them turn up later (and any trades
    after the check) leave the position at the exchange's, never above it."""
    adj = PositionAdjustment()
    true_move = side * sum(lots) / 1000
    adj.adopt(true_move, as_of_ms=10_000, mark=50.0)
    position0, counted = true_move, 0.0
    arrived = [side * n / 1000 for n, comes in zip(lots, late, strict=False) if comes]
    for signed in arrived:
        counted += signed
        position0 -= adj.net(signed, 9_000)
    after = [side * n / 1000 for n in newer]  # trades after the check are new, never netted
    for signed in after:
        counted += signed
        position0 -= adj.net(signed, 11_000)
    assert position0 + counted == pytest.approx(true_move + sum(after), abs=1e-12)
    assert adj.outstanding == pytest.approx(true_move - sum(arrived), abs=1e-12)


@settings(deadline=None, max_examples=400)
@given(sz_decimals=st.integers(0, 8),
       sz=st.one_of(st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False),
                    st.integers(-10**9, 10**9).map(lambda n: n / 1000.0)))
def test_size_from_lots_equals_quantizing_the_repr(sz_decimals, sz):
    sm = OrderStateMachine(8, sz_decimals=sz_decimals)
    lot = Decimal(1).scaleb(-sz_decimals)
    expected = Decimal(repr(float(sz))).quantize(lot)
    got = sm._size(sz)
    assert got == expected and str(got) == str(expected)


def test_an_order_signed_before_it_is_registered_keeps_its_cloid():
    sm = OrderStateMachine(2, sz_decimals=3)
    assert sm.accepts_order(1, 0.01) and not sm.accepts_order(0, 0.01) and not sm.accepts_order(1, 0.0001)
    cloid = sm.next_cloid()
    slot, got = sm.new_order(1, 600000, 0.01, 0.0, cloid=cloid)
    assert got == cloid and slot >= 0
    assert sm.by_cloid(cloid).slot == slot
    assert sm.next_cloid() != cloid
