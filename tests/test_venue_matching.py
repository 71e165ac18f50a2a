"""Matching and ledger rules of the local venue, in-process against a scripted market source."""

from __future__ import annotations

import eth_account
import pytest
from hyperliquid.utils.signing import sign_l1_action
from hypothesis import given, settings
from hypothesis import strategies as st

from hlfast.venue.ledger import Fees
from hlfast.venue.server import Venue, VenueConfig
from tests.reference.venue_ledger import replay_fills
from tests.reference.venue_queue import ReferenceQueue
from tests.reference.venue_stub_source import ScriptedSource, ladder

pytestmark = pytest.mark.timeout(60)

KEY = "0x0123456789012345678901234567890123456789012345678901234567890123"
WALLET = eth_account.Account.from_key(KEY)
USER = WALLET.address.lower()
OTHER = "0x00000000000000000000000000000000000000aa"
NOW = 1_800_000_000_000
BEST_BID, BEST_ASK = 600000, 600050  # BTC 60000.0 / 60005.0 (ticks of 0.1)


def make_venue(queue_model: str = "risk_averse", **config) -> tuple[Venue, ScriptedSource]:
    source = ScriptedSource(["BTC", "ETH"])
    source.push({"BTC": ladder(BEST_BID, BEST_ASK, 0.5), "ETH": ladder(300000, 300010, 5.0)})
    cfg = VenueConfig(
        coins=("BTC", "ETH"), accounts=[(USER, 100_000.0), (OTHER, 100_000.0)], queue_model=queue_model, **config
    )
    venue = Venue(cfg, source)
    venue.step_block()
    return venue, source


def order(is_buy: bool, px: str, sz: str, tif: str = "Gtc", reduce_only: bool = False, asset: int = 0) -> dict:
    return {"a": asset, "b": is_buy, "p": px, "s": sz, "r": reduce_only, "t": {"limit": {"tif": tif}}}


def place(venue: Venue, wire: dict, user: str = USER):
    return venue.engine.place(user, wire, NOW)


def fills_of(venue: Venue, user: str = USER) -> list[dict]:
    acct = venue.ledger.find(user)
    return acct.fills if acct else []


def btc_book(bid_size_at_best: float, asks_from: int = BEST_ASK) -> tuple[list, list]:
    bids, asks = ladder(BEST_BID, asks_from, 0.5)
    bids[0] = (BEST_BID, bid_size_at_best, 1)
    return bids, asks


def test_queue_depletion_fills_only_after_size_ahead_traded():
    venue, source = make_venue()
    status = place(venue, order(True, "60000", "0.01", "Alo"))
    oid = status["resting"]["oid"]
    assert venue.engine.orders[oid].queue_ahead == 50_000  # 0.5 BTC displayed ahead
    source.push({"BTC": btc_book(0.2)}, {"BTC": [("A", BEST_BID, 0.3, False)]})
    venue.step_block()
    assert fills_of(venue) == []
    assert venue.engine.orders[oid].queue_ahead == 20_000
    source.push({"BTC": btc_book(0.1)}, {"BTC": [("A", BEST_BID, 0.205, False)]})
    venue.step_block()
    fills = fills_of(venue)
    assert [(f["px"], f["sz"], f["side"], f["crossed"]) for f in fills] == [("60000.0", "0.005", "B", False)]
    assert fills[0]["fee"] == "0.045"  # maker 1.5 bp of $300
    source.push({"BTC": btc_book(0.1)}, {"BTC": [("A", BEST_BID, 0.02, False)]})
    venue.step_block()
    assert [f["sz"] for f in fills_of(venue)] == ["0.005", "0.005"]
    assert oid not in venue.engine.orders
    assert venue.ledger.find(USER).history[oid][1] == "filled"


def test_risk_averse_snapshot_keeps_us_behind_cancels():
    venue, source = make_venue()
    oid = place(venue, order(True, "60000", "0.01", "Alo"))["resting"]["oid"]
    source.push({"BTC": btc_book(0.1)})  # 0.4 vanished with no trade: cancels, assumed behind us
    venue.step_block()
    assert venue.engine.orders[oid].queue_ahead == 10_000
    source.push({"BTC": btc_book(0.1)}, {"BTC": [("A", BEST_BID, 0.103, False)]})
    venue.step_block()
    assert [f["sz"] for f in fills_of(venue)] == ["0.003"]


def test_trade_through_and_book_through_fill_whole_order_at_our_price():
    venue, source = make_venue()
    ask_oid = place(venue, order(False, "60010", "0.02", "Alo"))["resting"]["oid"]
    bid_oid = place(venue, order(True, "59990", "0.01", "Alo"))["resting"]["oid"]
    source.push({}, {"BTC": [("B", 600110, 0.001, False)]})  # a buy printed above our ask
    venue.step_block()
    assert [(f["px"], f["sz"], f["side"]) for f in fills_of(venue)] == [("60010.0", "0.02", "A")]
    assert ask_oid not in venue.engine.orders
    bids, asks = ladder(599800, 599850, 0.5)  # the whole market moved below our bid
    source.push({"BTC": (bids, asks)})
    venue.step_block()
    assert [(f["px"], f["sz"], f["side"]) for f in fills_of(venue)][1] == ("59990.0", "0.01", "B")
    assert bid_oid not in venue.engine.orders


def test_alo_cross_rejected_with_bbo():
    venue, _ = make_venue()
    status = place(venue, order(True, "60005", "0.01", "Alo"))
    assert status == {
        "error": "Post only order would have immediately matched, bbo was 60000.0@60005.0. asset=0"
    }
    status = place(venue, order(False, "2999.9", "0.01", "Alo", asset=1))
    assert status == {"error": "Post only order would have immediately matched, bbo was 3000.0@3000.1. asset=1"}


def test_ioc_walks_displayed_book_and_consumes_it_until_next_snapshot():
    venue, source = make_venue()
    status = place(venue, order(True, "60006", "0.7", "Ioc"))
    assert status["filled"]["totalSz"] == "0.7"
    assert status["filled"]["avgPx"] == "60005.286"  # (0.5·60005 + 0.2·60006) / 0.7
    assert [(f["px"], f["sz"], f["crossed"]) for f in fills_of(venue)] == [
        ("60005.0", "0.5", True),
        ("60006.0", "0.2", True),
    ]
    assert place(venue, order(True, "60005", "0.1", "Ioc")) == {
        "error": "Order could not immediately match against any resting orders. asset=0"
    }
    book = venue.l2_book("BTC")
    assert book["levels"][1][0] == {"px": "60006.0", "sz": "0.3", "n": 1}
    trades = venue.engine.drain()[2]["BTC"]
    assert [(t["side"], t["px"], t["sz"], t["users"][0]) for t in trades] == [
        ("B", "60005.0", "0.5", USER),
        ("B", "60006.0", "0.2", USER),
    ]
    source.push({"BTC": ladder(BEST_BID, BEST_ASK, 0.5)})
    venue.step_block()
    assert place(venue, order(True, "60005", "0.1", "Ioc"))["filled"]["totalSz"] == "0.1"


def test_resting_orders_merged_into_published_book():
    venue, _ = make_venue()
    place(venue, order(True, "60000", "0.01", "Alo"))
    place(venue, order(True, "60002", "0.02", "Alo"))
    place(venue, order(True, "60002", "0.03", "Gtc"), user=OTHER)
    bids = venue.l2_book("BTC")["levels"][0]
    assert bids[0] == {"px": "60002.0", "sz": "0.05", "n": 2}
    assert bids[1] == {"px": "60000.0", "sz": "0.51", "n": 2}
    assert len(bids) == 20


@pytest.mark.parametrize(
    ("wire", "text"),
    [
        (order(True, "60000.05", "0.01"), "Order has invalid price."),
        (order(True, "60000.5", "0.01"), "Price must be divisible by tick size."),
        (order(True, "abc", "0.01"), "Order has invalid price."),
        (order(True, "60000", "0.000001"), "Order has invalid size."),
        (order(True, "60000", "0"), "Order has zero size."),
        (order(True, "60000", "0.0001"), "Order must have minimum value of $10."),
        (order(False, "60000", "0.01", "Gtc", True), "Reduce only order would increase position."),
        (order(True, "59000", "0.01", "Ioc"), "Order could not immediately match against any resting orders."),
        (order(True, "59000", "100"), "Insufficient margin to place order."),
    ],
)
def test_order_rule_strings(wire, text):
    venue, _ = make_venue()
    assert place(venue, wire) == {"error": f"{text} asset=0"}


def test_integer_prices_valid_beyond_five_figures():
    venue, _ = make_venue()
    assert "resting" in place(venue, order(True, "59999", "0.01", "Alo"))
    assert "resting" in place(venue, order(True, "59999.0", "0.01", "Alo"))


def test_user_orders_match_each_other_with_maker_and_taker_fees():
    venue, _ = make_venue(fees=Fees(maker=-0.0001, taker=0.0005))
    place(venue, order(True, "60002", "0.01", "Gtc"), user=OTHER)
    status = place(venue, order(False, "60002", "0.01", "Ioc"))
    assert status["filled"] == {"totalSz": "0.01", "avgPx": "60002.0", "oid": status["filled"]["oid"]}
    maker, taker = fills_of(venue, OTHER)[0], fills_of(venue, USER)[0]
    assert (maker["side"], maker["crossed"], maker["fee"]) == ("B", False, "-0.060002")
    assert (taker["side"], taker["crossed"], taker["fee"]) == ("A", True, "0.30001")
    assert maker["tid"] == taker["tid"]


def test_self_trade_cancels_own_resting_order():
    venue, _ = make_venue()
    oid = place(venue, order(True, "60002", "0.01", "Gtc"))["resting"]["oid"]
    status = place(venue, order(False, "60000", "0.01", "Ioc"))
    assert status["filled"]["avgPx"] == "60000.0"  # skipped our own bid, hit the market
    assert venue.ledger.find(USER).history[oid][1] == "selfTradeCanceled"


def test_reduce_only_shrinks_and_is_cancelled_when_position_closes():
    venue, _ = make_venue()
    place(venue, order(True, "60005", "0.01", "Ioc"))
    rest = place(venue, order(False, "60020", "0.05", "Gtc", True))
    oid = rest["resting"]["oid"]
    assert venue.engine.orders[oid].sz == 1_000  # shrunk to the 0.01 position
    closed = place(venue, order(False, "60000", "0.02", "Ioc", True))
    assert closed["filled"]["totalSz"] == "0.01"
    assert oid not in venue.engine.orders
    assert venue.ledger.find(USER).history[oid][1] == "reduceOnlyCanceled"
    assert venue.ledger.find(USER).positions["BTC"].szi == 0


@settings(deadline=None, max_examples=40)
@given(
    model=st.sampled_from(["risk_averse", "probabilistic"]),
    size_ahead=st.integers(1, 50_000),
    ours=st.integers(1_000, 5_000),
    events=st.lists(st.tuples(st.integers(0, 30_000), st.integers(1, 60_000)), min_size=1, max_size=8),
)
def test_queue_model_matches_reference(model, size_ahead, ours, events):
    venue, source = make_venue(model)
    source.push({"BTC": btc_book(size_ahead / 1e5)})
    venue.step_block()
    oid = place(venue, order(True, "60000", f"{ours / 1e5:.5f}", "Alo"))["resting"]["oid"]
    ref = ReferenceQueue(size_ahead, ours, model)
    shown_prev = size_ahead
    for traded, shown in events:
        if oid not in venue.engine.orders:
            break
        trades = [("A", BEST_BID, traded / 1e5, False)] if traded else []
        fill = ref.trade(traded) if traded else 0
        source.push({"BTC": btc_book(shown / 1e5)}, {"BTC": trades})
        venue.step_block()
        ref.snapshot(shown_prev, traded - fill, shown)
        shown_prev = shown
        got = [round(float(f["sz"]) * 1e5) for f in fills_of(venue)]
        assert got == ref.filled
        if oid in venue.engine.orders:
            assert venue.engine.orders[oid].queue_ahead == pytest.approx(ref.q, abs=1e-6)
            assert venue.engine.orders[oid].sz == ref.remaining


@settings(deadline=None, max_examples=30)
@given(st.lists(st.tuples(st.booleans(), st.integers(1, 60)), min_size=1, max_size=12))
def test_ledger_equals_sum_of_fills(trades):
    venue, source = make_venue()
    for is_buy, size in trades:
        px = "60100" if is_buy else "59900"
        place(venue, order(is_buy, px, f"{size / 1000:.3f}", "Ioc"))
        source.push({"BTC": ladder(BEST_BID, BEST_ASK, 0.5)})
        venue.step_block()
    acct = venue.ledger.find(USER)
    fills = [(1 if f["side"] == "B" else -1, float(f["px"]), float(f["sz"]), f["crossed"]) for f in acct.fills]
    fees = venue.config.fees
    pos, entry, realised, fee_total, volume = replay_fills(fills, fees.maker, fees.taker)
    szi = acct.positions["BTC"].szi / 1e5 if "BTC" in acct.positions else 0.0
    assert szi == pytest.approx(pos, abs=1e-9)
    assert sum(s * sz for s, _, sz, _ in fills) == pytest.approx(szi, abs=1e-9)
    assert acct.realised_pnl == pytest.approx(realised, abs=1e-6)
    assert sum(float(f["closedPnl"]) for f in acct.fills) == pytest.approx(realised, abs=1e-4)
    assert acct.fees_paid == pytest.approx(fee_total, abs=1e-6)
    assert acct.cum_volume == pytest.approx(volume, abs=1e-6)
    mark = venue.engine.books["BTC"].mid
    state = venue.ledger.clearinghouse_state(USER, venue.engine.marks(), NOW)
    expected_value = 100_000.0 + realised - fee_total + pos * (mark - entry)
    assert float(state["marginSummary"]["accountValue"]) == pytest.approx(expected_value, abs=1e-5)
    if pos:
        position = state["assetPositions"][0]["position"]
        assert float(position["entryPx"]) == pytest.approx(entry, rel=1e-9)


# ---- whole actions through Venue.exchange (signed like the SDK) ----------------------------------------------


def signed(action: dict, nonce: int, wallet=WALLET) -> dict:
    signature = sign_l1_action(wallet, action, None, nonce, None, False)
    return {"action": action, "nonce": nonce, "signature": signature, "vaultAddress": None, "expiresAfter": None}


def test_batch_over_200_refused_whole_and_free():
    venue, _ = make_venue()
    cancels = [{"a": 0, "o": i} for i in range(201)]
    nonce = NOW - 1000
    reply = venue.exchange(signed({"type": "cancel", "cancels": cancels}, nonce), NOW)
    assert reply == {"status": "err", "response": "Signed action over weight limit of 200."}
    assert venue.ledger.user_rate_limit(USER)["nRequestsUsed"] == 0
    reply = venue.exchange(signed({"type": "cancel", "cancels": cancels[:2]}, nonce + 1), NOW)
    statuses = reply["response"]["data"]["statuses"]
    assert statuses == [{"error": "Order was never placed, already canceled, or filled. asset=0"}] * 2
    assert venue.ledger.user_rate_limit(USER)["nRequestsUsed"] == 2


def test_address_budget_refusal_text_and_one_action_per_10s():
    venue, _ = make_venue(request_budget_base=3)
    nonce = NOW - 10_000
    batch = {"type": "order", "orders": [order(True, "59000", "0.01", "Alo")] * 4, "grouping": "na"}
    assert venue.exchange(signed(batch, nonce), NOW)["status"] == "ok"  # 4 used > cap 3 from now on
    first = venue.exchange(signed({"type": "noop"}, nonce + 1), NOW)
    assert first["status"] == "ok"  # one action per 10 s is still allowed
    refused = venue.exchange(signed({"type": "noop"}, nonce + 2), NOW + 1_000)
    assert refused == {
        "status": "err",
        "response": "Too many cumulative requests sent (5 > 3) for cumulative volume traded $0.00. "
        "Place taker orders to free up 1 request per USDC traded.",
    }
    assert venue.exchange(signed({"type": "noop"}, nonce + 3), NOW + 11_000)["status"] == "ok"


def test_modify_is_cancel_replace_with_new_oid_and_events_in_order():
    venue, _ = make_venue()
    oid = place(venue, order(True, "59990", "0.01", "Alo"))["resting"]["oid"]
    venue.engine.drain()
    action = {"type": "batchModify", "modifies": [{"oid": oid, "order": order(True, "59980", "0.02", "Alo")}]}
    reply = venue.exchange(signed(action, NOW - 5), NOW)
    new_oid = reply["response"]["data"]["statuses"][0]["resting"]["oid"]
    assert reply["response"]["type"] == "order" and new_oid != oid
    updates = venue.engine.drain()[0][USER]
    assert [(u["order"]["oid"], u["status"]) for u in updates] == [(new_oid, "open"), (oid, "canceled")]
    again = venue.exchange(signed(action, NOW - 4), NOW)
    assert again["response"]["data"]["statuses"] == [{"error": "Cannot modify canceled or filled order"}]
