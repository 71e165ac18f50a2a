"""Fuzzing the frame decoder: arbitrary bytes, arbitrary JSON and near-valid frames never raise,
every reject is counted by reason, and the Book / Tape state is untouched by a rejected frame.

Each example is checked against a plain-Python router built on the reference Book and Tape.
"""

from __future__ import annotations

import copy
import gzip
import json
import math
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hlfast import frames as fr
from hlfast.book import Book
from hlfast.frames import FrameRouter
from hlfast.tape import Tape
from tests.reference.book import RefBook
from tests.reference.tape import RefTape

FIX = Path(__file__).parent / "fixtures" / "hyperliquid"
COIN = "BTC"
SZ_DECIMALS = 5
MARKET_CODES = (fr.CH_L2BOOK, fr.CH_BBO, fr.CH_TRADES)
REJECT_INDEX = {name: i for i, name in enumerate(fr.REJECT_NAMES)}


def _recorded() -> list[bytes]:
    with gzip.open(FIX / "recorded_stream_btc_20250126.gz", "rb") as fh:
        return [line.rstrip(b"\n").split(b" ", 1)[1] for line in fh if line.strip()]


RECORDED = _recorded()
FIRST_BOOK = next(raw for raw in RECORDED if b'"l2Book"' in raw)
VALID_FRAMES: list[dict[str, Any]] = [
    orjson.loads(FIRST_BOOK),
    orjson.loads(next(raw for raw in RECORDED if b'"trades"' in raw)),
    {"channel": "bbo", "data": {"coin": COIN, "time": 2**62, "bbo": [
        {"px": "104000.0", "sz": "0.5", "n": 3}, {"px": "104001.0", "sz": "1.25", "n": 2}]}},
    {"channel": "orderUpdates", "data": [{"order": {"coin": COIN, "oid": 1}, "status": "open"}]},
    {"channel": "post", "data": {"id": 7, "response": {"type": "action", "payload": {"status": "ok"}}}},
    {"channel": "pong"},
]


# ---- reference router -------------------------------------------------------------------------------------


class RefRouter:
    """The routing rules of FrameRouter over the reference Book / Tape."""

    def __init__(self) -> None:
        self.book = RefBook(COIN, SZ_DECIMALS)
        self.tape = RefTape(SZ_DECIMALS)
        self.rejects = [0] * len(fr.REJECT_NAMES)
        self.malformed = self.book_updates = self.trades_pushed = 0
        self.payload: Any = None
        self.applied = 0

    def _malformed(self, reason: str) -> int:
        self.rejects[REJECT_INDEX[reason]] += 1
        self.malformed += 1
        return fr.CH_MALFORMED

    def on_frame(self, raw: Any) -> int:
        self.payload, self.applied = None, 0
        try:
            msg = orjson.loads(raw)
        except orjson.JSONDecodeError:
            if raw in (fr.BANNER, fr.BANNER.decode()):
                return self._malformed("banner")
            return self._malformed("invalid_json")
        return self._dispatch(msg)

    @staticmethod
    def _other_coin(obj: Any) -> bool:
        return isinstance(obj, dict) and isinstance(obj.get("coin"), str) and obj["coin"] != COIN

    def _dispatch(self, msg: Any) -> int:
        if not isinstance(msg, dict):
            return self._malformed("not_object")
        channel = msg.get("channel")
        if not isinstance(channel, str):
            return self._malformed("missing_channel")
        code = fr.CHANNEL_CODES.get(channel)
        if code is None:
            self.rejects[REJECT_INDEX["unknown_channel"]] += 1
            self.payload = msg.get("data")
            return fr.CH_UNKNOWN
        if code == fr.CH_PONG:
            return code
        if "data" not in msg:
            return self._malformed("missing_data")
        data = msg["data"]
        if code in (fr.CH_L2BOOK, fr.CH_BBO):
            if self._other_coin(data):
                self.rejects[REJECT_INDEX["wrong_coin"]] += 1
                self.applied = 7
                return code
            self.applied = self.book.apply_l2(data) if code == fr.CH_L2BOOK else self.book.apply_bbo(data)
            self.book_updates += self.applied == 0
            return code
        if code == fr.CH_TRADES:
            if isinstance(data, list) and data and self._other_coin(data[0]):
                self.rejects[REJECT_INDEX["wrong_coin"]] += 1
                self.applied = 7
                return code
            pushed = self.tape.apply_trades(data, COIN)
            self.applied = 0 if isinstance(data, list) and pushed == len(data) else 1
            self.trades_pushed += pushed
            return code
        self.payload = data
        return code


# ---- harness ----------------------------------------------------------------------------------------------


def _older_trades() -> bytes:
    frame = copy.deepcopy(VALID_FRAMES[1])
    for row in frame["data"]:
        row["time"] -= 3_600_000
    return orjson.dumps(frame)


OLDER_TRADES = _older_trades()


def _fresh() -> tuple[FrameRouter, RefRouter]:
    """A router (and its reference) holding a real book and an hour-old trade history."""
    router, ref = FrameRouter(Book(COIN, SZ_DECIMALS), Tape(SZ_DECIMALS)), RefRouter()
    for raw in (FIRST_BOOK, OLDER_TRADES):
        router.on_frame(raw)
        ref.on_frame(raw)
    return router, ref


def _state(router: FrameRouter) -> tuple:
    """Everything a frame may change in the market kernels (reject counters aside)."""
    book, tape = router.book, router.tape
    return (book.levels(), book.n_bids, book.n_asks, book.time_ms, book.updates,
            tape.total, tape.trades_since(0), router.book_updates, router.trade_updates, router.trades_pushed)


def _check_one(router: FrameRouter, ref: RefRouter, raw: Any) -> int:
    before = _state(router)
    frames, malformed = router.frames, router.malformed
    counts = router.reject_counts()
    code = router.on_frame(raw)  # must not raise, whatever raw is
    want = ref.on_frame(raw)
    assert code == want == router.channel
    assert router.frames == frames + 1
    assert [router.reject_counts()[n] for n in fr.REJECT_NAMES] == ref.rejects
    assert router.malformed == ref.malformed
    assert router.book.levels() == ref.book.levels() and router.book.time_ms == ref.book.time_ms
    assert router.tape.trades_since(0) == ref.tape.trades
    assert router.book_updates == ref.book_updates and router.trades_pushed == ref.trades_pushed
    rejected = code in (fr.CH_MALFORMED, fr.CH_UNKNOWN) or (code in MARKET_CODES and router.applied != 0)
    if code == fr.CH_MALFORMED:
        assert router.malformed == malformed + 1
        assert sum(router.reject_counts().values()) == sum(counts.values()) + 1
    if code in MARKET_CODES:
        assert router.payload is None and (router.applied == 0) == (ref.applied == 0)
        if code == fr.CH_TRADES:
            assert router.last_pushed == router.tape.total - before[5]
            rejected = router.last_pushed == 0
    else:
        assert router.payload is ref.payload or router.payload == ref.payload
    if rejected:
        assert _state(router) == before
    return code


# ---- strategies -------------------------------------------------------------------------------------------

NUMBERISH = [
    "NaN", "nan", "-inf", "Infinity", "sNaN", "1e5", "1E-3", "0x10", "1,000.0", " 1.0", "1.0 ", "", "-1", "+2.5",
    "0", "0.0", "-0.0", "١٢٣", "１２", "1.", ".5", "9" * 40, "9" * 19 + ".0", "98450.5", "98450.55", "1.2.3",
    "0.00001", "1e400", "--1", "⁵",
]
KEYS = ["channel", "data", "coin", "time", "levels", "bbo", "px", "sz", "n", "side", "tid", "users", "hash"]

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8), st.sampled_from(NUMBERISH),
    st.sampled_from([COIN, "ETH", "btc", "BTC ", "@1", 2**63, -(2**63) - 1, 2**64, math.nan, math.inf, -math.inf]),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=5)), inner, max_size=5),
    ),
    max_leaves=24,
)


def _encode(obj: Any, as_text: bool) -> bytes | str:
    # json (not orjson) so NaN / Infinity literals and integers beyond 64 bits reach the decoder
    text = json.dumps(obj, allow_nan=True)
    return text if as_text else text.encode()


def _paths(obj: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += _paths(v, prefix + (i,))
    return out


@st.composite
def near_valid_frames(draw: st.DrawFn) -> Any:
    """A real frame with 0-3 fields deleted, retyped or replaced by garbage (or by a value from the frame)."""
    frame = copy.deepcopy(VALID_FRAMES[draw(st.sampled_from([0, 0, 1, 1, 2, 2, 3, 4, 5]))])  # mostly market data
    keep_channel = draw(st.integers(0, 9)) > 0
    if frame.get("channel") in ("l2Book", "bbo") and draw(st.booleans()):
        frame["data"]["time"] = draw(st.sampled_from([2**62, frame["data"]["time"] + 1, 0, -1]))
    for _ in range(draw(st.integers(0, 3))):
        paths = [p for p in _paths(frame)[:0:-1] if not (keep_channel and p == ("channel",))]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = frame
        for step in path[:-1]:
            parent = parent[step]
        action = draw(st.sampled_from(["delete", "replace", "scalar", "swap"]))
        if action == "delete":
            del parent[path[-1]]
        elif action == "replace":
            parent[path[-1]] = draw(json_values)
        elif action == "scalar":
            parent[path[-1]] = draw(scalars)
        else:  # a valid value in the wrong place
            donor = draw(st.sampled_from(paths))
            value: Any = frame
            for step in donor:
                value = value[step]
            parent[path[-1]] = copy.deepcopy(value)
    return frame


raw_inputs = st.one_of(
    st.binary(max_size=96),
    st.text(st.characters(codec=None), max_size=32),  # includes lone surrogates
    st.sampled_from([fr.BANNER, fr.BANNER.decode(), fr.BANNER + b"\n", b"\xef\xbb\xbf{}", b"{}" * 2]),
    st.builds(lambda frame, cut: orjson.dumps(frame)[:cut], st.sampled_from(VALID_FRAMES), st.integers(0, 200)),
    st.builds(bytearray, st.binary(max_size=16)),
)


# ---- properties -------------------------------------------------------------------------------------------


@settings(deadline=None, max_examples=400)
@given(st.lists(raw_inputs, min_size=1, max_size=3))
def test_arbitrary_bytes_and_text_are_counted_and_change_nothing(raws):
    router, ref = _fresh()
    for raw in raws:
        _check_one(router, ref, raw)


@settings(deadline=None, max_examples=300)
@given(st.lists(st.tuples(json_values, st.booleans()), min_size=1, max_size=3))
def test_arbitrary_json_matches_reference_router(items):
    router, ref = _fresh()
    for obj, as_text in items:
        _check_one(router, ref, _encode(obj, as_text))


@settings(deadline=None, max_examples=600)
@given(st.lists(st.tuples(near_valid_frames(), st.booleans()), min_size=1, max_size=4))
def test_near_valid_frames_match_reference_router(items):
    router, ref = _fresh()
    for frame, as_text in items:
        _check_one(router, ref, _encode(frame, as_text))


@settings(deadline=None, max_examples=300)
@given(st.builds(lambda channel, data: {"channel": channel, "data": data},
                 st.sampled_from(list(fr.CHANNEL_CODES) + ["candle", "L2Book", ""]), json_values))
def test_right_channel_wrong_data_types(frame):
    router, ref = _fresh()
    _check_one(router, ref, _encode(frame, False))


@settings(deadline=None, max_examples=200)
@given(st.one_of(json_values, near_valid_frames()))
def test_router_without_kernels_hands_everything_over_without_raising(obj):
    router = FrameRouter(None, None, COIN)
    raw = _encode(obj, False)
    code = router.on_frame(raw)
    assert fr.CH_MALFORMED <= code <= fr.CH_ALL_MIDS and router.frames == 1
    if code not in (fr.CH_MALFORMED, fr.CH_PONG):
        assert router.payload == orjson.loads(raw).get("data")


def test_non_buffer_inputs_are_invalid_json():
    router, ref = _fresh()
    for raw in (None, 5, 1.5, [b"{}"], {"channel": "pong"}, object()):
        assert _check_one(router, ref, raw) == fr.CH_MALFORMED
    assert router.reject_counts()["invalid_json"] == 6


def test_buffer_types_decode_like_bytes():
    router, ref = _fresh()
    assert _check_one(router, ref, memoryview(b'{"channel":"pong"}')) == fr.CH_PONG
    assert _check_one(router, ref, bytearray(b'{"channel":"error","data":"x"}')) == fr.CH_ERROR
    assert router.payload == "x" and router.malformed == 0


@pytest.mark.parametrize("depth", [300, 700, 1030])
def test_deeply_nested_frames(depth):
    """Nesting up to orjson's limit (1024) reaches the kernels as a bad shape; beyond it, invalid JSON."""
    router, ref = _fresh()
    nested = "[" * depth + "]" * depth
    templates = ('{"channel":"l2Book","data":%s}', '{"channel":"trades","data":%s}',
                 '{"channel":"bbo","data":{"coin":"BTC","time":1,"bbo":%s}}',
                 '{"channel":"l2Book","data":{"coin":"BTC","time":9e18,"levels":[%s,[]]}}',
                 '{"channel":"trades","data":[{"coin":"BTC","side":"B","px":%s}]}', '{"channel":"post","data":%s}', "%s")
    for template in templates:
        code = _check_one(router, ref, (template % nested).encode())
        assert (code == fr.CH_MALFORMED) == (depth > 1000 or template == "%s")
    assert router.book_updates == 1 and router.tape.total == len(orjson.loads(OLDER_TRADES)["data"])


def test_each_reject_reason_is_reached_and_counted():
    router, ref = _fresh()
    samples = {
        "banner": fr.BANNER, "invalid_json": b'{"channel": NaN}', "not_object": b"[]",
        "missing_channel": b'{"channel": null, "data": {}}', "missing_data": b'{"channel": "bbo"}',
        "unknown_channel": b'{"channel": "candle", "data": 1}',
        "wrong_coin": b'{"channel": "l2Book", "data": {"coin": "ETH", "time": 1, "levels": [[], []]}}',
    }
    for reason, raw in samples.items():
        before = router.reject_counts()[reason]
        _check_one(router, ref, raw)
        assert router.reject_counts()[reason] == before + 1, reason
    assert set(router.reject_counts()) == set(samples)
