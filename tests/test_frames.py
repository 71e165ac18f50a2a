"""hlfast.frames.FrameRouter over the real recorded stream and every channel's payloads."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hlfast import book as bk
from hlfast import frames as fr
from hlfast import tape as tp
from tests.reference.book import RefBook
from tests.reference.tape import RefTape

Book, Tape, FrameRouter, REJ_WRONG_COIN = bk.Book, tp.Tape, fr.FrameRouter, bk.REJ_WRONG_COIN

FIX = Path(__file__).parent / "fixtures" / "hyperliquid"


def recorded_lines() -> list[bytes]:
    with gzip.open(FIX / "recorded_stream_btc_20250126.gz", "rb") as fh:
        return [line.rstrip(b"\n").split(b" ", 1)[1] for line in fh if line.strip()]


def quoted(label_start: str) -> dict:
    items = json.loads((FIX / "real_exchange_and_ws_responses_quoted.json").read_text())["items"]
    return next(it["body"] for it in items if it["label"].startswith(label_start))


def router(coin: str = "BTC") -> FrameRouter:
    return FrameRouter(Book(coin, 5), Tape(5))


def test_whole_recorded_stream_matches_reference():
    r = router()
    rbook, rtape = RefBook("BTC", 5), RefTape(5)
    codes = []
    for raw in recorded_lines():
        code = r.on_frame(raw)
        codes.append(code)
        msg = json.loads(raw)
        if msg["channel"] == "l2Book":
            assert rbook.apply_l2(msg["data"]) == 0 and r.applied == 0
            assert r.book.levels() == rbook.levels()
        else:
            assert rtape.apply_trades(msg["data"], "BTC") == len(msg["data"]) == r.last_pushed
        assert r.payload is None
    assert codes.count(fr.CH_L2BOOK) == 46 and codes.count(fr.CH_TRADES) == 9
    assert (r.frames, r.book_updates, r.trade_updates, r.trades_pushed) == (55, 46, 9, 64)
    assert r.tape.trades_since(0) == rtape.trades
    assert r.malformed == 0 and sum(r.reject_counts().values()) == 0
    assert r.book.microprice() == pytest.approx(rbook.microprice(), rel=1e-15)


def test_official_frames_route_to_their_channels():
    frames = json.loads((FIX / "official_order_book_server_ws_frames.json").read_text())["frames"]
    r = router()
    assert r.on_frame(orjson.dumps(frames[0])) == fr.CH_SUB_RESPONSE
    assert r.payload == frames[0]["data"]
    assert r.on_frame(orjson.dumps(frames[1])) == fr.CH_L2BOOK and r.applied == 0 and r.book.n_bids == 20
    assert r.on_frame(orjson.dumps(frames[2])) == fr.CH_TRADES and r.last_pushed == 1 and r.tape.total == 1
    # The client subscribe message has no channel.
    assert r.on_frame(orjson.dumps(frames[3])) == fr.CH_MALFORMED
    assert r.reject_counts()["missing_channel"] == 1


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        (lambda: json.loads((FIX / "nautilus_ws_user_fill_liquidation.json").read_text()), fr.CH_USER),
        (lambda: json.loads((FIX / "nautilus_ws_allmids.json").read_text()), fr.CH_ALL_MIDS),
        (lambda: quoted("websocket post response"), fr.CH_POST),
        (lambda: quoted("docs example: subscription ack"), fr.CH_SUB_RESPONSE),
        (lambda: {"channel": "orderUpdates", "data": [quoted("orderUpdates element")]}, fr.CH_ORDER_UPDATES),
        (lambda: {"channel": "userFills", "data": {"user": "0x1", "isSnapshot": True, "fills": []}}, fr.CH_USER_FILLS),
        (lambda: {"channel": "error", "data": "Invalid subscription: {}"}, fr.CH_ERROR),
    ],
)
def test_user_and_control_channels_leave_data_in_payload(frame, code):
    msg = frame()
    r = router()
    assert r.on_frame(orjson.dumps(msg)) == code
    assert r.channel == code and r.payload == msg["data"]
    assert r.book.updates == 0 and r.tape.total == 0 and r.malformed == 0


def test_pong_and_str_input():
    r = router()
    assert r.on_frame(orjson.dumps(quoted("docs example: pong"))) == fr.CH_PONG
    assert r.payload is None and r.malformed == 0
    assert r.on_frame('{"channel":"pong"}') == fr.CH_PONG


def test_bbo_frame_applies_to_book():
    r = router()
    msg = {"channel": "bbo", "data": {"coin": "BTC", "time": 5, "bbo": [
        {"px": "100.0", "sz": "1", "n": 1}, {"px": "100.5", "sz": "2", "n": 1}]}}
    assert r.on_frame(orjson.dumps(msg)) == fr.CH_BBO and r.applied == 0
    assert r.book.best_bid_ticks() == 1000 and r.book.best_ask_ticks() == 1005 and r.book_updates == 1


MALFORMED = [
    (b"Websocket connection established.", "banner"),
    ("Websocket connection established.", "banner"),
    (b"", "invalid_json"),
    (b"{\"channel\":", "invalid_json"),
    (b"\xff\xfe", "invalid_json"),
    (b"[1, 2]", "not_object"),
    (b"null", "not_object"),
    (b"\"l2Book\"", "not_object"),
    (b"{\"data\": {}}", "missing_channel"),
    (b"{\"channel\": 5, \"data\": {}}", "missing_channel"),
    (b"{\"channel\": \"l2Book\"}", "missing_data"),
    (b"{\"channel\": \"trades\"}", "missing_data"),
]


@pytest.mark.parametrize(("raw", "reason"), MALFORMED)
def test_malformed_frames_are_counted_and_change_nothing(raw, reason):
    r = router()
    lines = recorded_lines()
    r.on_frame(lines[0])
    levels, total = r.book.levels(), r.tape.total
    assert r.on_frame(raw) == fr.CH_MALFORMED
    assert r.reject_counts()[reason] == 1 and r.malformed == 1
    assert r.book.levels() == levels and r.tape.total == total and r.payload is None


def test_unknown_channel_and_wrong_coin_are_counted_and_ignored():
    r = router()
    r.on_frame(recorded_lines()[0])
    levels = r.book.levels()
    assert r.on_frame(b'{"channel":"candle","data":{"s":"BTC"}}') == fr.CH_UNKNOWN
    assert r.reject_counts()["unknown_channel"] == 1 and r.payload == {"s": "BTC"}
    eth_book = {"channel": "l2Book", "data": {"coin": "ETH", "time": 1, "levels": [[], []]}}
    eth_bbo = {"channel": "bbo", "data": {"coin": "ETH", "time": 1, "bbo": [None, None]}}
    eth_trades = {"channel": "trades", "data": [{"coin": "ETH", "side": "B", "px": "1.0", "sz": "1",
                                                 "time": 1, "tid": 1, "users": []}]}
    assert r.on_frame(orjson.dumps(eth_book)) == fr.CH_L2BOOK and r.applied == REJ_WRONG_COIN
    assert r.on_frame(orjson.dumps(eth_bbo)) == fr.CH_BBO and r.applied == REJ_WRONG_COIN
    assert r.on_frame(orjson.dumps(eth_trades)) == fr.CH_TRADES and r.applied == REJ_WRONG_COIN
    assert r.reject_counts()["wrong_coin"] == 3
    assert r.book.levels() == levels and r.tape.total == 0
    assert sum(r.book.reject_counts().values()) == 0  # the router filtered them, not the book


def test_kernel_rejects_are_reported_in_applied():
    r = router()
    crossed = {"channel": "l2Book", "data": {"coin": "BTC", "time": 1, "levels": [
        [{"px": "101.0", "sz": "1", "n": 1}], [{"px": "100.0", "sz": "1", "n": 1}]]}}
    assert r.on_frame(orjson.dumps(crossed)) == fr.CH_L2BOOK
    assert r.applied != 0 and r.book_updates == 0 and r.book.reject_counts()["crossed"] == 1
    bad_row = {"channel": "trades", "data": [{"coin": "BTC", "side": "Q", "px": "1.0", "sz": "1", "time": 1,
                                              "tid": 1, "users": []}]}
    assert r.on_frame(orjson.dumps(bad_row)) == fr.CH_TRADES
    assert r.applied != 0 and r.last_pushed == 0 and r.trade_updates == 0


def test_router_without_kernels_hands_market_data_to_python():
    r = FrameRouter(None, None, "BTC")
    raw = recorded_lines()[0]
    assert r.on_frame(raw) == fr.CH_L2BOOK and r.payload == json.loads(raw)["data"]
    with pytest.raises(ValueError):
        FrameRouter(None, None)
    with pytest.raises(ValueError):
        FrameRouter(Book("BTC", 5), None, "ETH")


def test_on_message_dispatches_decoded_objects():
    r = router()
    assert r.on_message(json.loads(recorded_lines()[0])) == fr.CH_L2BOOK and r.book.updates == 1
    assert r.on_message([1]) == fr.CH_MALFORMED and r.frames == 2


@settings(deadline=None, max_examples=150)
@given(st.one_of(
    st.binary(max_size=64),
    st.builds(lambda ch, data: json.dumps({"channel": ch, "data": data}).encode(),
              st.sampled_from(list(fr.CHANNEL_CODES) + ["x"]),
              st.recursive(st.one_of(st.none(), st.integers(), st.text(max_size=5)),
                           lambda c: st.one_of(st.lists(c, max_size=3), st.dictionaries(
                               st.sampled_from(["coin", "time", "levels", "bbo", "px", "sz", "side"]), c,
                               max_size=4)), max_leaves=10)),
))
def test_arbitrary_frames_never_raise(raw):
    r = router()
    code = r.on_frame(raw)
    assert fr.CH_MALFORMED <= code <= fr.CH_ALL_MIDS
    assert r.frames == 1
