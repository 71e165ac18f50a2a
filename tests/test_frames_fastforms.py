"""The scanners' fast forms (compact levels and trade rows read in one fused pass) against their
general readers: on every input the scanner's answer equals the general reader's, a fast form that
answers gives exactly the general answer, and the canonical shapes real frames have (Hyperliquid's
key order and the recorder's sorted one) are taken by the fast forms.  Also the fused hlfast.jsonscan
readers against the plain-Python reference."""

from __future__ import annotations

import gzip
import json
from decimal import Decimal
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hlfast import frames as fr
from hlfast import simfeed as sf
from hlfast.book import Book
from hlfast.tape import Tape
from tests.reference import jsonscan as ref

FIX = Path(__file__).parent / "fixtures" / "hyperliquid"
COIN = "BTC"
SZ_DECIMALS = 5
PX_DECIMALS = 6 - SZ_DECIMALS
LIQUIDATOR = "0x" + "7" * 40
SPECIAL_BYTES = [0x22, 0x5C, 0x00, 0x1F, 0x20, 0x21, 0x5B, 0x5D, 0x7E, 0x7F, 0x80, 0xA2, 0xDC, 0xFF]
MUTATION_BYTES = b' \t",:{}[]\\0123456789.-+eExnu\x00\x1f\x7f\x80\xff'
TAILS = [b"", b",", b"}", b"]", b" ", b"}]"]


def _router() -> fr.FrameRouter:
    return fr.FrameRouter(Book(COIN, SZ_DECIMALS), Tape(SZ_DECIMALS, liquidators=(LIQUIDATOR,)), COIN)


ROUTER = _router()


def _same(a: tuple, b: tuple) -> bool:
    """Tuples equal, floats bit for bit."""
    return repr(a) == repr(b)


# ---- hlfast.jsonscan fast readers against the reference ---------------------------------------------------
digits = st.text("0123456789", max_size=21)
junk = st.sampled_from(["", "", "", "-", "+", "e5", "x", ".", " ", "\\", '"', "\x7f", "\u00e9"])


@st.composite
def decimal_texts(draw: st.DrawFn) -> bytes:
    """A quoted decimal, often plain, sometimes bent at a random place."""
    text = draw(digits)
    if draw(st.booleans()):
        text += "." + draw(digits)
    cut = draw(st.integers(0, len(text)))
    text = text[:cut] + draw(junk) + text[cut:]
    quote = '"' if draw(st.integers(0, 9)) else ""
    return ('"' + text + quote).encode() + draw(st.sampled_from(TAILS))


@settings(deadline=None, max_examples=1500)
@given(decimal_texts(), st.integers(0, 8))
def test_quoted_decimals_match_the_reference_and_the_general_readers(text, decimals):
    got = sf.scan_json(text, "quoted_scaled", decimals=decimals)
    want = ref.quoted_scaled(text, 0, decimals)
    assert got == ((-1, None) if want is None else want)
    if want is not None:  # what the fast form takes, the general readers take with the same value
        end, content = ref.string(text, 0)
        assert end == want[0] and Decimal(content.decode()).scaleb(decimals) == want[1]
    got = sf.scan_json(text, "quoted_double")
    want = ref.quoted_double(text, 0)
    assert _same(got, (-1, None) if want is None else want)
    if want is not None:
        assert want[1] == float(ref.string(text, 0)[1])


def test_quoted_decimal_edges():
    assert sf.scan_json(b'"61801.0"', "quoted_scaled", decimals=1) == (9, 618010)
    assert sf.scan_json(b'"61801"', "quoted_scaled", decimals=1) == (7, 618010)
    assert sf.scan_json(b'"0.016"', "quoted_scaled", decimals=5) == (7, 1600)
    assert sf.scan_json(b'"0.0160"', "quoted_scaled", decimals=3) == (8, 16)
    assert sf.scan_json(b'"0.0161"', "quoted_scaled", decimals=3) == (-1, None)   # off the grid
    assert sf.scan_json(b'"61801."', "quoted_scaled", decimals=1) == (-1, None)
    assert sf.scan_json(b'".5"', "quoted_scaled", decimals=1) == (-1, None)
    assert sf.scan_json(b'"-1.0"', "quoted_scaled", decimals=1) == (-1, None)     # left to the general reader
    assert sf.scan_json(b'"' + b"9" * 17 + b'"', "quoted_scaled", decimals=1) == (19, 10**18 - 10)
    assert sf.scan_json(b'"' + b"9" * 18 + b'"', "quoted_scaled", decimals=1) == (-1, None)
    assert sf.scan_json(b'"9007199254740992"', "quoted_double") == (18, 2.0**53)
    assert sf.scan_json(b'"9007199254740993"', "quoted_double") == (-1, None)
    assert sf.scan_json(b'"0.1"', "quoted_double") == (5, 0.1)
    assert sf.scan_json(b'"1.0', "quoted_double") == (-1, None)


byte_texts = st.lists(st.sampled_from(list(b'"\\ax09') + SPECIAL_BYTES), max_size=40).map(bytes)


@settings(deadline=None, max_examples=1500)
@given(byte_texts, st.sampled_from(TAILS))
def test_long_string_reader_is_the_string_reader(content, tail):
    text = b'"' + content + b'"' + tail
    assert sf.scan_json(text, "string_long") == sf.scan_json(text, "string") == ref.read(text, "string", False)


@pytest.mark.parametrize("special", SPECIAL_BYTES)
def test_long_string_reader_around_word_boundaries(special):
    for length in range(0, 26):
        for at in range(-1, length):
            body = bytearray(b"0x" + b"ab" * 13)[:length]
            if at >= 0:
                body[at] = special
            for text in (b'"' + bytes(body) + b'","x"', b'"' + bytes(body)):
                want = ref.read(text, "string", False)
                assert sf.scan_json(text, "string_long") == want, (text, want)
                assert sf.scan_json(text, "string") == want


@settings(deadline=None, max_examples=500)
@given(byte_texts, st.sampled_from([b"BTC", b"ETH", b"", b'B"C', b"B\\C", b"k\x7f"]), st.sampled_from(TAILS))
def test_quoted_is_matches_string_and_compare(content, expected, tail):
    for text in (b'"' + content + b'"' + tail, b'"' + expected + b'"' + tail, b'"' + expected + content):
        want = ref.quoted_is(text, 0, expected)
        assert sf.scan_json(text, "quoted_is", expected=expected) == ((-1, None) if want is None else (want, None))


# ---- levels ------------------------------------------------------------------------------------------------
@st.composite
def _price(draw: st.DrawFn) -> str:
    ticks = draw(st.integers(1, 10**7))
    return f"{ticks // 10}.{ticks % 10}" if draw(st.integers(0, 9)) else str(ticks // 10)


@st.composite
def _size(draw: st.DrawFn) -> str:
    units = draw(st.integers(0, 10**8))
    decimals = draw(st.integers(0, 7))
    return str(units) if decimals == 0 else f"{units // 10**decimals}.{units % 10**decimals:0{decimals}d}"


@st.composite
def level_items(draw: st.DrawFn) -> dict:
    items = {"px": draw(_price()), "sz": draw(_size()), "n": draw(st.integers(0, 3000))}
    order = draw(st.sampled_from([("px", "sz", "n"), ("n", "px", "sz")]) | st.permutations(list(items)))
    if draw(st.integers(0, 9)) == 0:
        order = order[:-1]  # a key missing
    return {k: items[k] for k in order}


def _mutate(draw: st.DrawFn, raw: bytes) -> bytes:
    data = bytearray(raw)
    for _ in range(draw(st.integers(0, 2))):
        i = draw(st.integers(0, len(data)))
        op = draw(st.sampled_from(["insert", "replace", "delete", "repeat", "escape"]))
        byte = draw(st.sampled_from(MUTATION_BYTES))
        if op == "insert":
            data[i:i] = bytes([byte])
        elif op == "replace" and i < len(data):
            data[i] = byte
        elif op == "delete":
            del data[i:i + 1]
        elif op == "repeat":
            data[i:i] = data[i:i + draw(st.integers(1, 9))]
        elif i < len(data) and 0x20 <= data[i] < 0x7F:
            data[i:i + 1] = b"\\u%04x" % data[i]
    return bytes(data)


@st.composite
def level_texts(draw: st.DrawFn) -> tuple[bytes, bool]:
    raw = orjson.dumps(draw(level_items()))
    mutated = _mutate(draw, raw)
    return mutated + draw(st.sampled_from(TAILS)), mutated == raw


@settings(deadline=None, max_examples=1000)
@given(level_texts())
def test_engine_level_reader_answers_as_the_general_one(case):
    text, canonical = case
    general = fr.read_level(text, PX_DECIMALS, 2)
    assert _same(fr.read_level(text, PX_DECIMALS, 0), general)
    fast = fr.read_level(text, PX_DECIMALS, 1)
    assert fast[0] == -1 or _same(fast, general)
    if canonical and general[0] != -1:
        assert fast[0] != -1  # compact, keys in any order, plain values: the fast form decides


@settings(deadline=None, max_examples=1000)
@given(level_texts())
def test_venue_level_reader_answers_as_the_general_one(case):
    text, canonical = case
    general = sf.read_level(text, PX_DECIMALS, SZ_DECIMALS, 2)
    assert sf.read_level(text, PX_DECIMALS, SZ_DECIMALS, 0) == general
    fast = sf.read_level(text, PX_DECIMALS, SZ_DECIMALS, 1)
    assert fast[0] == -1 or fast == general
    if canonical:
        assert fast == general  # compact with px, sz and n in any order: the fast form decides


# ---- trade rows --------------------------------------------------------------------------------------------
ADDRESSES = ["0x" + "ab" * 20, LIQUIDATOR, "0x", "", "0x" + "c" * 37]


@st.composite
def row_items(draw: st.DrawFn) -> dict:
    items = {
        "coin": draw(st.sampled_from([COIN] * 12 + ["ETH", "BTCX", "BT"])),
        "side": draw(st.sampled_from(["B", "A"] * 6 + ["S", "BB", ""])),
        "px": draw(_price()),
        "sz": draw(_size()),
        "time": draw(st.integers(0, 2 * 10**12)),
        "tid": draw(st.integers(0, 10**15)),
        "hash": "0x" + draw(st.text("0123456789abcdef", max_size=70)),
        "users": draw(st.lists(st.sampled_from(ADDRESSES), max_size=3)),
    }
    hl = ["coin", "side", "px", "sz", "time", "hash", "tid", "users"]
    order = draw(st.sampled_from([hl, sorted(hl)]) | st.permutations(hl))
    if draw(st.integers(0, 7)) == 0:
        order = [k for k in order if k not in draw(st.sets(st.sampled_from(hl), max_size=2))]
    return {k: items[k] for k in order}


@st.composite
def row_texts(draw: st.DrawFn) -> tuple[bytes, bool]:
    raw = orjson.dumps(draw(row_items()))
    mutated = _mutate(draw, raw)
    return mutated + draw(st.sampled_from(TAILS)), mutated == raw


@settings(deadline=None, max_examples=700)
@given(row_texts())
def test_engine_row_reader_answers_as_the_general_one(case):
    text, canonical = case
    general = fr.read_row(ROUTER, text, 2)
    assert _same(fr.read_row(ROUTER, text, 0), general)
    fast = fr.read_row(ROUTER, text, 1)
    assert fast[0] == -1 or _same(fast, general)
    if canonical and general[0] != -1:
        assert fast[0] != -1


@settings(deadline=None, max_examples=700)
@given(row_texts())
def test_venue_row_reader_answers_as_the_general_one(case):
    text, canonical = case
    general = sf.read_trade_row(text, COIN.encode(), PX_DECIMALS, SZ_DECIMALS, 2)
    assert sf.read_trade_row(text, COIN.encode(), PX_DECIMALS, SZ_DECIMALS, 0) == general
    fast = sf.read_trade_row(text, COIN.encode(), PX_DECIMALS, SZ_DECIMALS, 1)
    assert fast[0] == -1 or fast == general
    if canonical and general[0] != -1:
        assert fast == general


def test_liquidator_flag_and_values_of_a_canonical_row():
    row = {"coin": COIN, "side": "A", "px": "61800.0", "sz": "0.244", "time": 1723161256671,
           "hash": "0x" + "0" * 64, "tid": 5266583941, "users": ["0x" + "ab" * 20, LIQUIDATOR]}
    text = orjson.dumps(row)
    assert fr.read_row(ROUTER, text, 1) == (len(text), (1723161256.671, 618000, 0.244, -1, 5266583941, True))
    assert sf.read_trade_row(text, b"BTC", PX_DECIMALS, SZ_DECIMALS, 1) == (len(text), (-1, 618000, 24400,
                                                                                          1723161256671))
    with pytest.raises(ValueError, match="scanning router"):
        fr.read_row(fr.FrameRouter(Book(COIN, SZ_DECIMALS), None, COIN), text)


# ---- the real frames take the fast forms -------------------------------------------------------------------
def _real_books_and_trades() -> tuple[list, list]:
    with gzip.open(FIX / "recorded_stream_btc_20250126.gz", "rb") as fh:
        frames = [orjson.loads(line.split(b" ", 1)[1]) for line in fh if line.strip()]
    official = json.loads((FIX / "official_order_book_server_ws_frames.json").read_text())["frames"]
    frames += [f for f in official if f.get("channel") in ("l2Book", "trades")]
    levels = [lv for f in frames if f["channel"] == "l2Book" for side in f["data"]["levels"] for lv in side]
    rows = [r for f in frames if f["channel"] == "trades" for r in f["data"]]
    return levels, rows


def test_every_real_level_and_row_is_read_by_the_fast_forms():
    levels, rows = _real_books_and_trades()
    orders = {tuple(lv) for lv in levels} | {tuple(r) for r in rows}
    assert ("n", "px", "sz") in orders and ("px", "sz", "n") in orders  # both canonical orders seen
    assert len(levels) > 1000 and len(rows) > 50
    for lv in levels:
        text = orjson.dumps(lv)
        fast = fr.read_level(text, PX_DECIMALS, 1)
        assert fast[0] == len(text) and _same(fast, fr.read_level(text, PX_DECIMALS, 2))
        assert fast[1] == round(float(lv["px"]) * 10) and fast[2] == float(lv["sz"]) and fast[3] == lv["n"]
        assert sf.read_level(text, PX_DECIMALS, SZ_DECIMALS, 1) == sf.read_level(text, PX_DECIMALS, SZ_DECIMALS, 2)
    for r in rows:
        text = orjson.dumps(r)
        fast = fr.read_row(ROUTER, text, 1)
        assert fast[0] == len(text) and _same(fast, fr.read_row(ROUTER, text, 2))
        assert fast[1][0] == r["time"] / 1000.0 and fast[1][1] == round(float(r["px"]) * 10)
        venue = sf.read_trade_row(text, b"BTC", PX_DECIMALS, SZ_DECIMALS, 1)
        assert venue[0] == len(text) and venue == sf.read_trade_row(text, b"BTC", PX_DECIMALS, SZ_DECIMALS, 2)
