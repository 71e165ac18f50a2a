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


# ---- the raw-frame scanner must agree with the orjson path on every input ---------------------------------

HOT = {"l2Book", "bbo", "trades"}


def router_state(r: FrameRouter) -> tuple:
    """Every observable of a router and its kernels (reject counters and payload included)."""
    out: tuple = (r.channel, r.applied, r.last_pushed, r.frames, r.book_updates, r.trade_updates,
                  r.trades_pushed, r.malformed, r.reject_counts(), r.payload)
    if r.book is not None:
        b = r.book
        out += (b.levels(), b.n_bids, b.n_asks, b.time_ms, b.updates, b.rejects, b.reject_counts())
    if r.tape is not None:
        t = r.tape
        out += (t.total, t.rejects, t.reject_counts(), t.trades_since(0))
    return out


class Twin:
    """The same kernels behind a scanning router and an orjson-only router, fed the same frames."""

    def __init__(self, coin: str = "BTC", sz_decimals: int = 5, liquidators: tuple = (),
                 book: bool = True, tape: bool = True) -> None:
        def make(scan: bool) -> FrameRouter:
            return FrameRouter(Book(coin, sz_decimals) if book else None,
                               Tape(sz_decimals, liquidators=liquidators) if tape else None, coin, scan=scan)
        self.fast, self.slow = make(True), make(False)

    def feed(self, raw) -> bool:
        """Apply raw to both; assert identical results; True when the scanner handled it."""
        before = self.fast.scanned
        code = self.fast.on_frame(raw)
        assert code == self.slow.on_frame(raw)
        assert router_state(self.fast) == router_state(self.slow)
        assert self.slow.scanned == 0
        return self.fast.scanned == before + 1


def test_scanner_handles_every_recorded_frame_identically():
    twin = Twin()
    assert all(twin.feed(raw) for raw in recorded_lines())
    assert twin.fast.scanned == 55 and twin.fast.tape.total == 64 and twin.fast.book.updates == 46


def test_scanner_on_official_frames_and_str_input():
    frames = json.loads((FIX / "official_order_book_server_ws_frames.json").read_text())["frames"]
    twin = Twin()
    handled = [twin.feed(orjson.dumps(f)) for f in frames]
    assert handled == [False, True, True, False]  # subscription ack and client message go to orjson
    assert twin.fast.book.n_bids == 20 and twin.fast.tape.total == 1
    assert twin.feed(json.dumps(frames[1], indent=2))  # compact ASCII str: scanned too
    assert not twin.feed(json.dumps(frames[1]).replace('"BTC"', '"BTC\u00e9"'))  # non-ASCII str: orjson


def _wrap(channel: str, data) -> dict:
    return {"channel": channel, "data": data}


@pytest.mark.parametrize(("file", "key", "coin", "sz_decimals", "applied"), [
    ("nautilus_ws_book_data.json", None, "BTC", 4, 6),
    ("nautilus_ws_book_data.json", None, "BTC", 5, 4),          # off BTC's grid below the touch
    ("nautilus_http_l2_book_snapshot.json", None, "BTC", 4, 6),  # no "n"
    ("nautilus_http_l2_book_btc.json", None, "BTC", 5, 6),
    ("sdk_cassette_l2_book_dydx.json", "response", "DYDX", 1, 6),
])
def test_scanner_on_fixture_books(file, key, coin, sz_decimals, applied):
    data = json.loads((FIX / file).read_text())
    data = data[key] if key else data
    twin = Twin(coin, sz_decimals)
    top = {"coin": data["coin"], "time": data["time"], "bbo": [data["levels"][0][0], data["levels"][1][0]]}
    frames = [_wrap("l2Book", data), _wrap("bbo", top), _wrap("bbo", {**top, "bbo": [None, top["bbo"][1]]})]
    for frame in frames:
        for raw in (orjson.dumps(frame), json.dumps(frame, indent=3).encode()):
            # these frames are all inside the scanner's subset: it handles exactly those that apply
            assert twin.feed(raw) == (twin.slow.applied == 0)
    assert twin.fast.book.updates == twin.fast.scanned == applied


def test_scanner_on_fixture_trades_and_liquidators():
    rows = json.loads((FIX / "nautilus_http_recent_trades_btc.json").read_text())
    twin = Twin(liquidators=("0xSELLER2",))
    assert not twin.feed(orjson.dumps(_wrap("trades", rows)))  # newest first: later rows are stale
    assert twin.fast.tape.total == 1
    oldest_first = sorted(rows, key=lambda row: row["time"])
    twin = Twin(liquidators=("0xSELLER2",))
    assert twin.feed(orjson.dumps(_wrap("trades", oldest_first)))
    assert [t[5] for t in twin.fast.tape.trades_since(0)] == [row["users"][1] == "0xseller2" for row in oldest_first]
    assert twin.feed(b'{"channel":"trades","data":[]}') and twin.fast.last_pushed == 0


def test_scanner_covers_only_its_subset():
    twin = Twin()
    book = json.loads(recorded_lines()[0])
    data = book["data"]
    assert twin.feed(b" \r\n" + orjson.dumps(book) + b"\t\n")
    outside = [
        orjson.dumps({"data": data, "channel": "l2Book"}),                        # data before channel
        orjson.dumps({**book, "extra": 1}),                                       # unknown top-level key
        orjson.dumps(_wrap("l2Book", {**data, "spread": "1"})),                    # unknown data key
        orjson.dumps(book).replace(b'"coin":"BTC"', b'"coin":"B\\u0054C"'),        # escape
        orjson.dumps(book).replace(b'"coin":"BTC"', b'"coin":"BTC","coin":"BTC"'),  # duplicate key
        orjson.dumps(_wrap("l2Book", {**data, "time": data["time"] * 10**6})),      # > 18 digits
        orjson.dumps(_wrap("l2Book", {**data, "time": float(data["time"])})),       # float time
        orjson.dumps(_wrap("l2Book", {**data, "coin": "ETH"})),                     # other coin
        orjson.dumps(_wrap("l2Book", {**data, "time": 1})),                         # stale
        orjson.dumps(book) + b"x",                                                # trailing garbage
        orjson.dumps(book)[:-1],                                                  # truncated
        b'\xef\xbb\xbf' + orjson.dumps(book),                                     # BOM
    ]
    for raw in outside:
        assert not twin.feed(raw), raw[:60]
    assert twin.fast.scanned == 1 and twin.fast.frames == 1 + len(outside)


def test_scanner_off_for_missing_kernels_and_non_ascii_coin():
    raw = recorded_lines()[0]
    no_book = Twin(book=False)
    assert not no_book.feed(raw) and no_book.fast.payload == json.loads(raw)["data"]
    assert no_book.feed(next(line for line in recorded_lines() if b'"trades"' in line))  # tape still fed
    assert not FrameRouter(None, Tape(5), "BTC\u00e9").scan
    assert not FrameRouter(Book("BTC", 5), Tape(5), scan=False).scan


def test_scanner_falls_back_on_more_rows_than_it_buffers():
    row = {"coin": "BTC", "side": "B", "px": "100.0", "sz": "0.1", "time": 1, "tid": 1}
    twin = Twin()
    assert not twin.feed(orjson.dumps(_wrap("trades", [row] * (fr.SCAN_MAX_TRADES + 1))))
    assert twin.feed(orjson.dumps(_wrap("trades", [row] * fr.SCAN_MAX_TRADES)))
    assert twin.fast.tape.total == 2 * fr.SCAN_MAX_TRADES + 1
