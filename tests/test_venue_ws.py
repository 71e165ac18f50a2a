"""Websocket side of the venue: SDK subscriptions, raw protocol frames, post, determinism and faults."""

from __future__ import annotations

import threading
import time

import eth_account
import orjson
import pytest
import requests
import websocket
from hyperliquid.exchange import Exchange
from hyperliquid.info import Info
from hyperliquid.utils.signing import sign_l1_action

from hlfast.venue.process import VenueProcess
from hlfast.venue.server import Venue, VenueConfig, VenueServer, build_venue

pytestmark = pytest.mark.timeout(120)

KEY = "0x0123456789012345678901234567890123456789012345678901234567890123"
WALLET = eth_account.Account.from_key(KEY)
USER = WALLET.address


@pytest.fixture(scope="module")
def venue():
    with VenueProcess(coins=("BTC", "ETH"), accounts=[(USER, 100_000.0)], block_ms=30, seed=3) as proc:
        yield proc


def connect(venue) -> websocket.WebSocket:
    return websocket.create_connection(venue.ws_url, timeout=5)


def recv_until(ws: websocket.WebSocket, predicate, limit: float = 5.0) -> dict:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        frame = orjson.loads(ws.recv())
        if predicate(frame):
            return frame
    raise AssertionError("expected frame not received")


def signed(action: dict, nonce: int) -> dict:
    signature = sign_l1_action(WALLET, action, None, nonce, None, False)
    return {"action": action, "nonce": nonce, "signature": signature, "vaultAddress": None, "expiresAfter": None}


def test_sdk_subscriptions_receive_book_trades_fills_and_order_updates(venue):
    info = Info(venue.base_url, skip_ws=False)
    got: dict[str, list] = {"l2Book": [], "trades": [], "userFills": [], "orderUpdates": [], "user": []}
    done = threading.Event()

    def keep(channel):
        def callback(msg):
            got[channel].append(msg)
            if got["userFills"][1:] and got["orderUpdates"] and got["trades"] and got["l2Book"]:
                done.set()
        return callback

    try:
        info.subscribe({"type": "l2Book", "coin": "BTC"}, keep("l2Book"))
        info.subscribe({"type": "trades", "coin": "BTC"}, keep("trades"))
        info.subscribe({"type": "userFills", "user": USER}, keep("userFills"))
        info.subscribe({"type": "orderUpdates", "user": USER}, keep("orderUpdates"))
        info.subscribe({"type": "userEvents", "user": USER}, keep("user"))
        deadline = time.monotonic() + 5
        while not got["userFills"] and time.monotonic() < deadline:
            time.sleep(0.02)
        exchange = Exchange(WALLET, venue.base_url)
        filled = exchange.market_open("ETH", False, 0.01)["response"]["data"]["statuses"][0]["filled"]
        assert done.wait(10), {k: len(v) for k, v in got.items()}
    finally:
        info.disconnect_websocket()
    snapshot = got["userFills"][0]["data"]
    assert snapshot["isSnapshot"] is True and snapshot["user"] == USER.lower()
    stream = [f for m in got["userFills"][1:] for f in m["data"]["fills"]]
    assert any(f["oid"] == filled["oid"] and f["coin"] == "ETH" and f["side"] == "A" for f in stream)
    assert any(u["order"]["oid"] == filled["oid"] for m in got["orderUpdates"] for u in m["data"])
    assert any(f["oid"] == filled["oid"] for m in got["user"] for f in m["data"]["fills"])
    book = got["l2Book"][-1]["data"]
    assert book["coin"] == "BTC" and len(book["levels"][0]) == 20 and len(book["levels"][1]) == 20
    trade = got["trades"][-1]["data"][0]
    assert set(trade) == {"coin", "side", "px", "sz", "time", "hash", "tid", "users"} and len(trade["users"]) == 2


def test_subscription_acks_errors_and_ping(venue):
    ws = connect(venue)
    try:
        ws.send(orjson.dumps({"method": "subscribe", "subscription": {"type": "l2Book", "coin": "BTC"}}))
        ack = recv_until(ws, lambda f: f["channel"] == "subscriptionResponse")
        assert ack["data"] == {
            "method": "subscribe",
            "subscription": {"type": "l2Book", "coin": "BTC", "nSigFigs": None, "mantissa": None},
        }
        ws.send(orjson.dumps({"method": "subscribe", "subscription": {"type": "l2Book", "coin": "BTC"}}))
        err = recv_until(ws, lambda f: f["channel"] == "error")
        assert err["data"] == 'Already subscribed: {"type":"l2Book","coin":"BTC"}'
        ws.send(orjson.dumps({"method": "subscribe", "subscription": {"type": "l2Book", "coin": "DOGE"}}))
        err = recv_until(ws, lambda f: f["channel"] == "error")
        assert err["data"] == 'Invalid subscription: {"type":"l2Book","coin":"DOGE"}'
        ws.send(orjson.dumps({"method": "unsubscribe", "subscription": {"type": "trades", "coin": "BTC"}}))
        err = recv_until(ws, lambda f: f["channel"] == "error")
        assert err["data"] == 'Already unsubscribed: {"type":"trades","coin":"BTC"}'
        ws.send("not json")
        err = recv_until(ws, lambda f: f["channel"] == "error")
        assert err["data"] == "Error parsing JSON into valid websocket request: not json"
        ws.send('{"method":"ping"}')
        assert recv_until(ws, lambda f: f["channel"] == "pong") == {"channel": "pong"}
        book = recv_until(ws, lambda f: f["channel"] == "l2Book")["data"]
        assert book["coin"] == "BTC" and isinstance(book["time"], int)
        ws.send(orjson.dumps({"method": "unsubscribe", "subscription": {"type": "l2Book", "coin": "BTC"}}))
        ack = recv_until(ws, lambda f: f["channel"] == "subscriptionResponse")
        assert ack["data"]["method"] == "unsubscribe"
    finally:
        ws.close()


def test_post_info_and_action_with_envelope_and_merged_book(venue):
    ws = connect(venue)
    try:
        request = {"type": "info", "payload": {"type": "l2Book", "coin": "BTC"}}
        ws.send(orjson.dumps({"method": "post", "id": 1, "request": request}))
        reply = recv_until(ws, lambda f: f["channel"] == "post")
        assert reply["data"]["id"] == 1 and reply["data"]["response"]["type"] == "info"
        payload = reply["data"]["response"]["payload"]
        assert payload["type"] == "l2Book" and payload["data"]["coin"] == "BTC"
        px = float(payload["data"]["levels"][0][5]["px"])  # 6th bid: stays inside the top 20 for a while
        px_text = f"{px:.1f}".rstrip("0").rstrip(".")
        ws.send(orjson.dumps({"method": "subscribe", "subscription": {"type": "orderUpdates", "user": USER}}))
        recv_until(ws, lambda f: f["channel"] == "subscriptionResponse")
        wire = {"a": 0, "b": True, "p": px_text, "s": "0.123", "r": False, "t": {"limit": {"tif": "Alo"}}}
        body = signed({"type": "order", "orders": [wire], "grouping": "na"}, int(time.time() * 1000))
        ws.send(orjson.dumps({"method": "post", "id": 2, "request": {"type": "action", "payload": body}}))
        reply = recv_until(ws, lambda f: f["channel"] == "post")
        assert reply["data"]["id"] == 2 and reply["data"]["response"]["type"] == "action"
        oid = reply["data"]["response"]["payload"]["response"]["data"]["statuses"][0]["resting"]["oid"]
        update = recv_until(ws, lambda f: f["channel"] == "orderUpdates")
        assert update["data"][0]["order"]["oid"] == oid and update["data"][0]["status"] == "open"
        book = requests.post(venue.base_url + "/info", json={"type": "l2Book", "coin": "BTC"}).json()
        level = next((lv for lv in book["levels"][0] if float(lv["px"]) == px), None)
        if level is None:  # the market ran through our bid meanwhile: then we were filled
            status = requests.post(venue.base_url + "/info", json={"type": "orderStatus", "user": USER, "oid": oid})
            assert status.json()["order"]["status"] == "filled"
        else:
            assert float(level["sz"]) >= 0.123 and level["n"] >= 1
        ws.send(orjson.dumps({"method": "post", "id": 3, "request": {"type": "action", "payload": body}}))
        reply = recv_until(ws, lambda f: f["channel"] == "post")
        assert reply["data"]["response"]["payload"] == {
            "status": "err", "response": f"Invalid nonce: duplicate nonce {body['nonce']}"
        }
        cancel = signed({"type": "cancel", "cancels": [{"a": 0, "o": oid}]}, body["nonce"] + 1)
        ws.send(orjson.dumps({"method": "post", "id": 4, "request": {"type": "action", "payload": cancel}}))
        reply = recv_until(ws, lambda f: f["channel"] == "post")
        assert reply["data"]["response"]["payload"]["response"]["data"]["statuses"] == ["success"]
    finally:
        ws.close()


class _Capture:
    """Stands in for a websocket connection: keeps the frames the server would send."""

    def __init__(self) -> None:
        self.frames: list[bytes] = []
        self.closed = False
        self.held = None
        self.peer = "capture"


def _frame_stream(seed: int, blocks: int) -> list[bytes]:
    config = VenueConfig(coins=("BTC", "ETH"), seed=seed, block_ms=50, start_ms=1_700_000_000_000)
    server = VenueServer(build_venue(config))
    capture = _Capture()
    server._enqueue = lambda conn, frame: capture.frames.append(frame)  # type: ignore[method-assign]
    for key in [("l2Book", "BTC", None, None), ("l2Book", "ETH", None, None), ("trades", "BTC"), ("trades", "ETH"),
                ("bbo", "BTC"), ("allMids",)]:
        server.subs[key] = {capture}  # type: ignore[arg-type]
    for _ in range(blocks):
        server.step()
    return capture.frames


def test_same_seed_gives_byte_identical_frame_stream():
    first = _frame_stream(11, 150)
    assert first == _frame_stream(11, 150)
    assert first != _frame_stream(12, 150)
    channels = {orjson.loads(f)["channel"] for f in first}
    assert channels == {"l2Book", "trades", "bbo", "allMids"}


def test_ws_faults_are_injected_and_logged():
    with VenueProcess(accounts=[(USER, 1000.0)], block_ms=20, faults="malformed=0.3,disconnect_every=1.0") as proc:
        ws = websocket.create_connection(proc.ws_url, timeout=5)
        ws.send(orjson.dumps({"method": "subscribe", "subscription": {"type": "l2Book", "coin": "BTC"}}))
        malformed = 0
        closed = False
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                frame = ws.recv()
            except (websocket.WebSocketConnectionClosedException, ConnectionError):
                closed = True
                break
            if not frame:
                closed = True
                break
            try:
                orjson.loads(frame)
            except orjson.JSONDecodeError:
                malformed += 1
        ws.close()
        stats = requests.post(proc.base_url + "/info", json={"type": "venueStats"}).json()
    counts = stats["faults"]["counts"]
    assert closed and counts.get("disconnect", 0) >= 1
    assert malformed > 0 and counts["malformed"] >= malformed
    assert any(entry["kind"] == "malformed" for entry in stats["faults"]["log"])


def test_user_message_faults_drop_and_duplicate():
    source = "py:tests.reference.venue_stub_source:make_static"
    config = VenueConfig(coins=("BTC",), accounts=[(USER, 100_000.0)], faults="drop_user=0.3,dup_user=0.3", seed=5,
                         source=source)
    server = VenueServer(build_venue(config))
    sent: list[bytes] = []
    server._enqueue = lambda conn, frame: sent.append(frame)  # type: ignore[method-assign]

    class _Conn:
        closed = False
        held = None
        peer = "test"

    key = ("orderUpdates", USER.lower())
    server.subs[key] = {_Conn()}  # type: ignore[arg-type]
    venue: Venue = server.venue
    venue.step_block()
    for i in range(60):
        wire = {"a": 0, "b": True, "p": "59000", "s": "0.01", "r": False, "t": {"limit": {"tif": "Alo"}}}
        venue.engine.place(USER.lower(), wire, 1_800_000_000_000 + i)
        server.publish_user_events()
    counts = venue.faults.counts
    assert counts["drop_user"] > 0 and counts["dup_user"] > 0
    assert len(sent) == 60 - counts["drop_user"] + counts["dup_user"]


def test_action_faults_reject_and_lost_reply_are_logged():
    with VenueProcess(accounts=[(USER, 100_000.0)], block_ms=50, faults="reject=1.0,lost_reply=0.5",
                      source="py:tests.reference.venue_stub_source:make_static") as proc:
        ws = websocket.create_connection(proc.ws_url, timeout=2)
        nonce = int(time.time() * 1000)
        wire = {"a": 0, "b": True, "p": "59000", "s": "0.01", "r": False, "t": {"limit": {"tif": "Alo"}}}
        for i in range(20):
            body = signed({"type": "order", "orders": [wire], "grouping": "na"}, nonce + i)
            ws.send(orjson.dumps({"method": "post", "id": i, "request": {"type": "action", "payload": body}}))
        replies = []
        try:
            while len(replies) < 20:
                msg = orjson.loads(ws.recv())
                if msg["channel"] == "post":
                    replies.append(msg["data"])
        except websocket.WebSocketTimeoutException:
            pass
        ws.close()
        stats = requests.post(proc.base_url + "/info", json={"type": "venueStats"}).json()
    counts = stats["faults"]["counts"]
    assert counts["reject"] == 20
    assert counts["lost_reply"] == 20 - len(replies) > 0
    for reply in replies:
        statuses = reply["response"]["payload"]["response"]["data"]["statuses"]
        assert statuses == [{"error": "Order rejected by venue fault injection. asset=0"}]


def test_latency_applies_per_direction_and_http_lost_reply_drops_connection():
    with VenueProcess(accounts=[(USER, 100_000.0)], block_ms=50, latency_ms=30.0, faults="lost_reply=1.0",
                      source="py:tests.reference.venue_stub_source:make_static") as proc:
        ws = websocket.create_connection(proc.ws_url, timeout=5)
        t0 = time.perf_counter()
        ws.send('{"method":"ping"}')
        recv_until(ws, lambda f: f["channel"] == "pong")
        assert time.perf_counter() - t0 >= 0.06  # 30 ms in, 30 ms out
        ws.close()
        with pytest.raises(requests.ConnectionError):
            requests.post(proc.base_url + "/exchange", json=signed({"type": "noop"}, int(time.time() * 1000)))
        stats = requests.post(proc.base_url + "/info", json={"type": "venueStats"}).json()
    assert stats["actions"] == 1 and stats["faults"]["counts"]["lost_reply"] == 1
