"""The official hyperliquid-python-sdk trading against the venue over real sockets, unchanged."""

from __future__ import annotations

import time

import eth_account
import pytest
import requests
from hyperliquid.exchange import Exchange
from hyperliquid.info import Info
from hyperliquid.utils.error import ClientError, ServerError
from hyperliquid.utils.signing import sign_l1_action
from hyperliquid.utils.types import Cloid

from hlfast.venue.process import VenueProcess

pytestmark = pytest.mark.timeout(120)

KEY = "0x0123456789012345678901234567890123456789012345678901234567890123"
WALLET = eth_account.Account.from_key(KEY)
USER = WALLET.address


def _round_px(px: float) -> float:
    return round(float(f"{px:.5g}"), 1)


@pytest.fixture(scope="module")
def venue():
    with VenueProcess(coins=("BTC", "ETH"), accounts=[(USER, 100_000.0)], block_ms=40, seed=7) as proc:
        yield proc


@pytest.fixture(scope="module")
def exchange(venue):
    return Exchange(WALLET, venue.base_url)


@pytest.fixture(scope="module")
def info(venue):
    return Info(venue.base_url, skip_ws=True)


def _mid(info: Info, coin: str = "BTC") -> float:
    for _ in range(100):
        mids = info.all_mids()
        if coin in mids:
            return float(mids[coin])
        time.sleep(0.05)
    raise AssertionError("no mid published")


def _statuses(reply: dict) -> list:
    assert reply["status"] == "ok", reply
    return reply["response"]["data"]["statuses"]


def test_meta_and_book_shapes(info):
    meta = info.meta()
    assert [(u["name"], u["szDecimals"]) for u in meta["universe"]] == [("BTC", 5), ("ETH", 4)]
    _mid(info)
    book = info.l2_snapshot("BTC")
    bids, asks = book["levels"]
    assert len(bids) == 20 and len(asks) == 20
    assert float(bids[0]["px"]) < float(asks[0]["px"])
    assert all("." in lv["px"] and "." in lv["sz"] and isinstance(lv["n"], int) for lv in bids + asks)


def test_bulk_orders_cancel_and_open_orders(info, exchange):
    mid = _mid(info)
    px = _round_px(mid * 0.95)
    cloid = Cloid.from_int(7)
    orders = [
        {"coin": "BTC", "is_buy": True, "sz": 0.001, "limit_px": px, "order_type": {"limit": {"tif": "Alo"}},
         "reduce_only": False},
        {"coin": "BTC", "is_buy": True, "sz": 0.002, "limit_px": px, "order_type": {"limit": {"tif": "Gtc"}},
         "reduce_only": False, "cloid": cloid},
    ]
    first, second = _statuses(exchange.bulk_orders(orders))
    oid1 = first["resting"]["oid"]
    assert second["resting"] == {"oid": second["resting"]["oid"], "cloid": cloid.to_raw()}
    open_oids = {o["oid"] for o in info.open_orders(USER)}
    assert {oid1, second["resting"]["oid"]} <= open_oids
    assert _statuses(exchange.cancel("BTC", oid1)) == ["success"]
    assert _statuses(exchange.cancel("BTC", oid1)) == [
        {"error": "Order was never placed, already canceled, or filled. asset=0"}
    ]
    assert _statuses(exchange.cancel_by_cloid("BTC", cloid)) == ["success"]
    status = info.query_order_by_cloid(USER, cloid)
    assert status["status"] == "order" and status["order"]["status"] == "canceled"
    assert info.query_order_by_oid(USER, 1) == {"status": "unknownOid"}


def test_modify_order_gets_new_oid(info, exchange):
    px = _round_px(_mid(info) * 0.9)
    oid = _statuses(exchange.order("BTC", True, 0.001, px, {"limit": {"tif": "Alo"}}))[0]["resting"]["oid"]
    reply = exchange.modify_order(oid, "BTC", True, 0.002, px, {"limit": {"tif": "Alo"}})
    new_oid = _statuses(reply)[0]["resting"]["oid"]
    assert new_oid != oid
    rows = {o["oid"]: o for o in info.open_orders(USER)}
    assert oid not in rows and rows[new_oid]["sz"] == "0.002"
    bulk = exchange.bulk_modify_orders_new(
        [{"oid": new_oid, "order": {"coin": "BTC", "is_buy": True, "sz": 0.003, "limit_px": px,
                                    "order_type": {"limit": {"tif": "Alo"}}, "reduce_only": False, "cloid": None}}]
    )
    assert "resting" in _statuses(bulk)[0]
    assert exchange.schedule_cancel(int(time.time() * 1000) + 60_000)["status"] == "ok"
    assert exchange.schedule_cancel(None) == {"status": "ok", "response": {"type": "default"}}
    exchange.bulk_cancel([{"coin": "BTC", "oid": o["oid"]} for o in info.open_orders(USER)])
    assert info.open_orders(USER) == []


def test_market_open_and_close_round_trip(info, exchange):
    assert exchange.update_leverage(10, "BTC") == {"status": "ok", "response": {"type": "default"}}
    opened = _statuses(exchange.market_open("BTC", True, 0.01))[0]["filled"]
    assert opened["totalSz"] == "0.01"
    state = info.user_state(USER)
    position = state["assetPositions"][0]["position"]
    assert position["coin"] == "BTC" and position["szi"] == "0.01"
    assert position["leverage"] == {"type": "cross", "value": 10}
    closed = _statuses(exchange.market_close("BTC"))[0]["filled"]
    assert closed["totalSz"] == "0.01"
    assert info.user_state(USER)["assetPositions"] == []
    fills = info.user_fills(USER)
    assert [f["dir"] for f in fills[:2]] == ["Close Long", "Open Long"]
    assert all(f["crossed"] for f in fills[:2])
    limits = info.query_user_rate_limit(USER) if hasattr(info, "query_user_rate_limit") else info.post(
        "/info", {"type": "userRateLimit", "user": USER}
    )
    assert limits["nRequestsCap"] == 10_000 + int(float(limits["cumVlm"]))
    assert limits["nRequestsUsed"] > 0


def test_bad_signature_and_reused_nonce(venue):
    action = {"type": "noop"}
    nonce = int(time.time() * 1000)
    signature = sign_l1_action(WALLET, action, None, nonce, None, False)
    body = {"action": action, "nonce": nonce, "signature": signature, "vaultAddress": None, "expiresAfter": None}
    assert requests.post(venue.base_url + "/exchange", json=body).json() == {
        "status": "ok", "response": {"type": "default"}
    }
    assert requests.post(venue.base_url + "/exchange", json=body).json() == {
        "status": "err", "response": f"Invalid nonce: duplicate nonce {nonce}"
    }
    tampered = dict(body, nonce=nonce + 1)
    reply = requests.post(venue.base_url + "/exchange", json=tampered).json()
    assert reply["status"] == "err"
    assert reply["response"].startswith("User or API Wallet 0x") and reply["response"].endswith(" does not exist.")
    assert USER.lower() not in reply["response"]


def test_422_is_plain_text_and_sdk_raises_client_error(info, venue):
    reply = requests.post(venue.base_url + "/info", json={"type": "noSuchThing"})
    assert reply.status_code == 422
    assert reply.text == "Failed to deserialize the JSON body into the target type"
    with pytest.raises(ClientError) as excinfo:
        info.post("/info", {"type": "noSuchThing"})
    assert excinfo.value.status_code == 422 and excinfo.value.error_code is None


def test_sdk_approve_agent_then_agent_trades_for_master(info, exchange, venue):
    reply, agent_key = exchange.approve_agent("bot")
    assert reply == {"status": "ok", "response": {"type": "default"}}
    agent = eth_account.Account.from_key(agent_key)
    agent_exchange = Exchange(agent, venue.base_url)
    px = _round_px(_mid(info) * 0.9)
    oid = _statuses(agent_exchange.order("BTC", True, 0.001, px, {"limit": {"tif": "Alo"}}))[0]["resting"]["oid"]
    assert oid in {o["oid"] for o in info.open_orders(USER)}
    assert _statuses(agent_exchange.cancel("BTC", oid)) == ["success"]


def test_injected_http_faults_are_logged():
    with VenueProcess(accounts=[(USER, 1000.0)], block_ms=40, faults="http5xx=0.5,http429=0.5") as proc:
        info = Info(proc.base_url, skip_ws=True, meta={"universe": [{"name": "BTC", "szDecimals": 5}]},
                    spot_meta={"universe": [], "tokens": []})
        seen = {"5xx": 0, "429": 0}
        for _ in range(40):
            try:
                info.all_mids()
            except ServerError:
                seen["5xx"] += 1
            except ClientError as exc:
                assert exc.status_code == 429 and exc.error_code is None
                seen["429"] += 1
        stats = None
        for _ in range(50):  # the stats query itself can be hit by a fault
            reply = requests.post(proc.base_url + "/info", json={"type": "venueStats"})
            if reply.status_code == 200:
                stats = reply.json()
                break
        assert stats is not None
        counts = stats["faults"]["counts"]
        assert seen["5xx"] > 0 and seen["429"] > 0
        assert counts["http5xx"] >= seen["5xx"] and counts["http429"] >= seen["429"]
        assert {entry["kind"] for entry in stats["faults"]["log"]} >= {"http5xx", "http429"}
