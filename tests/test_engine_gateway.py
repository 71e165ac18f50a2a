"""Order gateway against the venue: ws post matched by id, HTTP fallback, lost replies expire."""

from __future__ import annotations

import time

import orjson
import pytest

from hlfast.feed import Poller, WsConnection
from hlfast.gateway import Gateway, HttpClient, action_error, post_frame
from hlfast.keys import generate_private_key
from hlfast.signer import Signer
from hlfast.venue.process import VenueProcess


def pump(conn: WsConnection, gw: Gateway, seconds: float, until=None) -> None:
    poller = Poller([conn])
    frames: list[bytes] = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for c in poller.poll(5):
            c.read_frames(frames)
        for raw in frames:
            msg = orjson.loads(raw)
            if msg.get("channel") == "post":
                gw.on_post(msg["data"])
            elif msg.get("channel") == "error":
                gw.on_channel_error(msg["data"])
        frames.clear()
        if until is not None and until():
            return


def test_post_frame_envelope_from_dict_and_bytes():
    payload = {"action": {"type": "noop"}, "nonce": 5}
    a = orjson.loads(post_frame(7, payload))
    b = orjson.loads(post_frame(7, orjson.dumps(payload)))
    assert a == b == {"method": "post", "id": 7, "request": {"type": "action", "payload": payload}}
    assert action_error({"status": "ok", "response": {}}) == ""
    assert action_error({"status": "err", "response": "Invalid nonce"}) == "Invalid nonce"


def test_ws_posts_are_matched_by_id_and_http_is_the_fallback():
    key = generate_private_key()
    signer = Signer(key, is_mainnet=False)
    with VenueProcess(block_ms=50, accounts=[(key.address, 10_000.0)]) as v:
        conn = WsConnection(v.ws_url, "orders")
        assert conn.connect()
        http = HttpClient(v.base_url)
        gw = Gateway(conn, http, post_timeout_s=2.0)
        ids = [gw.send_action(signer.noop(), "noop", context=i) for i in range(3)]
        assert gw.in_flight == 3 and len(set(ids)) == 3
        pump(conn, gw, 3.0, lambda: gw.in_flight == 0)
        replies = gw.drain()
        assert sorted(r.context for r in replies) == [0, 1, 2]
        assert all(r.ok and r.kind == "noop" and r.rtt_ms > 0 for r in replies)
        assert {r.post_id for r in replies} == set(ids)
        # an action the venue refuses comes back as a failed reply with the venue's text
        bad = signer.noop(nonce=1)  # correctly signed, but far outside the nonce window
        gw.send_action(bad, "noop", context="bad")
        pump(conn, gw, 3.0, lambda: gw.in_flight == 0)
        (reply,) = gw.drain()
        assert not reply.ok and "nonce" in reply.error.lower()
        # with the socket down the same call goes over HTTP /exchange
        conn.close()
        gw.send_action(signer.noop(), "noop", context="http")
        (reply,) = gw.drain()
        assert reply.ok and reply.context == "http" and gw.stats.http_posts == 1
        http.close()


def test_lost_replies_expire_and_unknown_ids_are_counted():
    key = generate_private_key()
    signer = Signer(key, is_mainnet=False)
    with VenueProcess(block_ms=50, accounts=[(key.address, 10_000.0)], faults="lost_reply=1.0") as v:
        conn = WsConnection(v.ws_url, "orders")
        assert conn.connect()
        now = [0.0]
        gw = Gateway(conn, None, post_timeout_s=1.0, clock=lambda: now[0])
        gw.send_action(signer.noop(), "noop", context="lost")
        pump(conn, gw, 0.5)
        assert gw.expire(0.9) == []
        (lost,) = gw.expire(1.1)
        assert lost.context == "lost" and gw.stats.timeouts == 1 and gw.in_flight == 0
        assert gw.on_post({"id": 12345, "response": {"type": "action", "payload": {}}}) is None
        assert gw.stats.unmatched_replies == 1
        conn.close()


def test_no_order_path_gives_a_failed_reply_not_an_exception():
    gw = Gateway(None, None)
    gw.send_action({"action": {}}, "order", context="x")
    (reply,) = gw.drain()
    assert not reply.ok and reply.error == "no order path available"
    with pytest.raises(ValueError):
        Gateway(None, None, order_path="carrier-pigeon")
