"""Fuzzing the frame decoder: arbitrary bytes, arbitrary JSON and near-valid frames never raise,
every reject is counted by reason, and the Book / Tape state is untouched by a rejected frame.

Each example is checked against a plain-Python router built on the reference Book and Tape, and
the router's raw-frame scanner against the same compiled router with the scanner off (the orjson
path): both must leave identical routers, books and tapes after every input.
"""

from __future__ import annotations

import copy
import gzip
import json
import math
import random
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
from tests.test_frames import Twin, router_state

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
        # The compiled router on its orjson path: the scanning router must match it field for field.
        self.orjson_path = FrameRouter(Book(COIN, SZ_DECIMALS), Tape(SZ_DECIMALS), scan=False)

    def _malformed(self, reason: str) -> int:
        self.rejects[REJECT_INDEX[reason]] += 1
        self.malformed += 1
        return fr.CH_MALFORMED

    def on_frame(self, raw: Any) -> int:
        self.orjson_path.on_frame(raw)
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
    assert router_state(router) == router_state(ref.orjson_path)
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


# ---- the raw-frame scanner on generated hot frames ------------------------------------------------------

FIRST_TRADES = next(raw for raw in RECORDED if b'"trades"' in raw)
BOOK_TIME = orjson.loads(FIRST_BOOK)["data"]["time"]
TRADE_TIME = orjson.loads(FIRST_TRADES)["data"][-1]["time"]
LIQUIDATOR = "0xLiq"


def _fresh_twin() -> Twin:
    twin = Twin(liquidators=(LIQUIDATOR,))
    assert twin.feed(FIRST_BOOK) and twin.feed(FIRST_TRADES)
    return twin


def _dump_spaced(obj: Any, rng: random.Random) -> str:
    """JSON with random JSON whitespace around every token."""
    def ws() -> str:
        return "".join(rng.choice(" \t\n\r") for _ in range(rng.choice([0, 0, 1, 2])))
    if isinstance(obj, dict):
        inner = ",".join(f"{ws()}{json.dumps(k)}{ws()}:{ws()}{_dump_spaced(v, rng)}{ws()}" for k, v in obj.items())
        return "{" + (inner or ws()) + "}"
    if isinstance(obj, list):
        return "[" + (",".join(f"{ws()}{_dump_spaced(v, rng)}{ws()}" for v in obj) or ws()) + "]"
    return json.dumps(obj)


ENCODERS = ("orjson", "json", "compact", "indent", "spaced", "spaced_str")


def _encode_any(obj: Any, how: str, rng: random.Random) -> bytes | str:
    if how == "orjson":
        return orjson.dumps(obj)
    if how == "json":
        return json.dumps(obj).encode()
    if how == "compact":
        return json.dumps(obj, separators=(",", ":")).encode()
    if how == "indent":
        return json.dumps(obj, indent=rng.choice([0, 1, 4])).encode()
    text = ("\n " if rng.random() < 0.3 else "") + _dump_spaced(obj, rng) + rng.choice(["", " ", "\r\n"])
    return text if how == "spaced_str" else text.encode()


@st.composite
def _ordered(draw: st.DrawFn, items: dict) -> dict:
    """The same members in a drawn order."""
    keys = draw(st.permutations(list(items)))
    return {k: items[k] for k in keys}


@st.composite
def _price_text(draw: st.DrawFn, ticks: int) -> str:
    text = f"{ticks // 10}.{ticks % 10}" + "0" * draw(st.integers(0, 2))
    if ticks % 10 == 0 and draw(st.integers(0, 4)) == 0:
        text = str(ticks // 10)  # integer text is valid too
    if draw(st.integers(0, 150)) == 0:
        text += "3"  # off BTC's grid
    return text


@st.composite
def _size_text(draw: st.DrawFn) -> str:
    units = draw(st.integers(0, 10**9))  # 0 is a bad size
    decimals = draw(st.integers(0, 9))
    if decimals == 0:
        return str(units)
    return f"{units // 10**decimals}.{units % 10**decimals:0{decimals}d}"


@st.composite
def _level(draw: st.DrawFn, ticks: int) -> dict:
    items = {"px": draw(_price_text(ticks)), "sz": draw(_size_text())}
    if draw(st.integers(0, 5)) > 0:
        items["n"] = draw(st.integers(0, 200))
    return draw(_ordered(items))


@st.composite
def _book_data(draw: st.DrawFn, bbo: bool) -> dict:
    best_bid = draw(st.integers(1_049_000, 1_051_000))
    best_ask = best_bid + draw(st.integers(-2, 30))  # <= 0 crosses
    coin = COIN if draw(st.integers(0, 15)) else draw(st.sampled_from(["ETH", "btc", "BTC "]))
    time = BOOK_TIME + draw(st.integers(-3, 10**6))  # < BOOK_TIME is stale
    if bbo:
        sides = [draw(st.none() | _level(best_bid)), draw(st.none() | _level(best_ask))]
        return draw(_ordered({"coin": coin, "time": time, "bbo": sides}))
    levels = []
    for start, sign in ((best_bid, -1), (best_ask, 1)):
        steps = draw(st.lists(st.integers(0, 60), min_size=0, max_size=10))  # 0: not monotonic
        side, px = [], start
        for i in range(draw(st.integers(0, 12)) and len(steps) + 1):  # sometimes an empty side
            side.append(draw(_level(px)))
            px += sign * steps[i] if i < len(steps) else 0
        levels.append(side)
    return draw(_ordered({"coin": coin, "time": time, "levels": levels}))


@st.composite
def _trade_rows(draw: st.DrawFn) -> list:
    rows, time = [], TRADE_TIME
    for _ in range(draw(st.integers(0, 6))):
        time += draw(st.integers(-1, 2000))  # -1: stale
        items = {
            "coin": COIN if draw(st.integers(0, 15)) else "ETH",
            "side": draw(st.sampled_from(["A", "B"] * 8 + ["S"])),
            "px": draw(_price_text(draw(st.integers(1_049_000, 1_051_000)))),
            "sz": draw(_size_text()),
            "time": time,
            "tid": draw(st.integers(0, 10**16)),
        }
        if draw(st.booleans()):
            items["hash"] = "0x" + draw(st.text("0123456789abcdef", min_size=0, max_size=64))
        if draw(st.booleans()):
            items["users"] = draw(st.lists(st.sampled_from(["0xabc", LIQUIDATOR.upper(), "0xliq", ""]), max_size=2))
        rows.append(draw(_ordered(items)))
    return rows


@st.composite
def hot_frames(draw: st.DrawFn) -> tuple[bytes | str, bool]:
    """(raw frame, clean): a clean frame is inside the scanner's subset whatever its content."""
    channel = draw(st.sampled_from(["l2Book", "l2Book", "bbo", "trades"]))
    data = draw(_trade_rows()) if channel == "trades" else draw(_book_data(channel == "bbo"))
    frame = {"channel": channel, "data": data}
    clean = True
    dirt = draw(st.integers(0, 12))
    if dirt == 1:
        frame = {"data": data, "channel": channel}
        clean = False
    elif dirt == 2:
        target = data[0] if channel == "trades" and data else data if isinstance(data, dict) else frame
        target["extra"] = draw(st.sampled_from([1, "x", None, [], {}]))
        clean = False
    elif dirt == 3 and channel != "trades":
        data["time"] = float(data["time"])
        clean = False
    rng = draw(st.randoms(use_true_random=False))
    return _encode_any(frame, draw(st.sampled_from(ENCODERS)), rng), clean


@settings(deadline=None, max_examples=200)
@given(st.lists(hot_frames(), min_size=1, max_size=4))
def test_generated_hot_frames_are_scanned_exactly_when_they_apply(frames):
    twin = _fresh_twin()
    for raw, clean in frames:
        handled = twin.feed(raw)  # identical to the orjson path, field for field
        applied = twin.slow.applied == 0 and twin.slow.channel in MARKET_CODES
        assert handled <= applied
        if clean:
            assert handled == applied, raw


MUTATION_BYTES = b' \t\n\r",:{}[]\\0123456789.-+eEnul\x00\x7f\x80\xc3\xa9\xff'


@st.composite
def mutated_hot_frames(draw: st.DrawFn) -> bytes:
    raw, _ = draw(hot_frames())
    data = bytearray(raw.encode() if isinstance(raw, str) else raw)
    for _ in range(draw(st.integers(1, 3))):
        i = draw(st.integers(0, len(data)))
        op = draw(st.sampled_from(["insert", "replace", "delete", "truncate", "repeat"]))
        byte = draw(st.sampled_from(MUTATION_BYTES))
        if op == "insert":
            data[i:i] = bytes([byte])
        elif op == "replace" and i < len(data):
            data[i] = byte
        elif op == "delete":
            del data[i:i + 1]
        elif op == "truncate":
            del data[i:]
        else:
            data[i:i] = data[i:i + draw(st.integers(1, 12))]
    return bytes(data)


@settings(deadline=None, max_examples=200)
@given(st.lists(mutated_hot_frames(), min_size=1, max_size=3))
def test_mutated_hot_frames_match_the_orjson_path(raws):
    twin = _fresh_twin()
    for raw in raws:
        twin.feed(raw)


@pytest.mark.parametrize("how", ENCODERS)
def test_recorded_stream_is_scanned_whatever_the_encoder(how):
    twin, rng = Twin(), random.Random(7)
    for raw in RECORDED:
        assert twin.feed(_encode_any(orjson.loads(raw), how, rng))
    assert twin.fast.scanned == len(RECORDED) and twin.fast.tape.total == 64
