"""The shared JSON scanning primitives (cext/jsonscan.pxd) against the plain-Python reference, and
against orjson: what they accept is valid JSON with the same value, and in the compact form it is
exactly what orjson writes back (the sim feed splices accepted bytes verbatim)."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hlfast.simfeed import scan_json
from tests.reference import jsonscan as ref

READERS = ("ws", "string", "key", "integer", "skip", "open{", "open[", "next}", "next]")
# JSON-ish bytes plus the edges of the subset: DEL, non-ASCII, controls, escapes, exponents.
ALPHABET = list(b' \t\n\r",:{}[]\\0123456789.-+eEtruefalsnxyz') + [0x00, 0x1F, 0x7F, 0x80, 0xC3, 0xFF]

texts = st.lists(st.sampled_from(ALPHABET), max_size=24).map(bytes)
printable = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=12)
unescaped = st.text(st.characters(min_codepoint=32, max_codepoint=126, exclude_characters='"\\'), max_size=12)
scalars = st.one_of(printable, st.integers(-(10**18) + 1, 10**18 - 1), st.booleans(), st.none())
in_subset_scalars = st.one_of(unescaped, st.integers(-(10**18) + 1, 10**18 - 1), st.booleans(), st.none())


@settings(deadline=None, max_examples=1500)
@given(st.sampled_from(READERS), texts, st.booleans())
def test_readers_match_the_reference(reader, text, any_ws):
    assert scan_json(text, reader, any_ws) == ref.read(text, reader, any_ws)


@settings(deadline=None, max_examples=300)
@given(st.sampled_from(READERS), st.one_of(scalars, st.lists(scalars, max_size=4)),
       st.sampled_from([b"", b",", b"}", b"]", b" ,"]), st.booleans())
def test_readers_match_the_reference_on_json_values(reader, value, tail, any_ws):
    text = orjson.dumps(value) + tail
    assert scan_json(text, reader, any_ws) == ref.read(text, reader, any_ws)


@settings(deadline=None, max_examples=500)
@given(texts, st.booleans())
def test_accepted_values_are_json_with_the_same_value(text, any_ws):
    used, content = scan_json(text, "string")
    if used >= 0:
        assert orjson.loads(text[:used]) == content.decode("ascii")
        assert orjson.dumps(content.decode("ascii")) == text[:used]
    used, number = scan_json(text, "integer")
    if used >= 0:
        assert orjson.dumps(orjson.loads(text[:used])) == text[:used] and orjson.loads(text[:used]) == number
    used, _ = scan_json(text, "skip", any_ws)
    if used >= 0:
        decoded = orjson.loads(text[:used])
        assert decoded is None or isinstance(decoded, bool | int | str | list)
        if not any_ws:  # compact: canonical bytes
            assert orjson.dumps(decoded) == text[:used]


@settings(deadline=None, max_examples=300)
@given(st.one_of(in_subset_scalars, st.lists(in_subset_scalars, max_size=5)))
def test_every_value_of_the_subset_is_taken_whole(value):
    text = orjson.dumps(value)
    assert scan_json(text + b",", "skip") == (len(text), None)
    if isinstance(value, str):
        assert scan_json(text, "string") == (len(text), value.encode())
    if isinstance(value, int) and not isinstance(value, bool):
        assert scan_json(text + b"}", "integer") == (len(text), value)


@pytest.mark.parametrize(("text", "reader", "any_ws", "expected"), [
    (b'"BTC"', "string", False, (5, b"BTC")),
    (b'"B\\u0054C"', "string", False, (-1, None)),            # escapes are left to the decoder
    (b'"caf\xc3\xa9"', "string", False, (-1, None)),           # non-ASCII
    (b'"a\x7fb"', "string", False, (-1, None)),                # DEL
    (b"0", "integer", False, (1, 0)),
    (b"-0", "integer", False, (-1, None)),                     # not canonical
    (b"012", "integer", False, (-1, None)),
    (b"9" * 18, "integer", False, (18, 10**18 - 1)),
    (b"1" + b"0" * 18, "integer", False, (-1, None)),          # 19 digits
    (b"-17,", "integer", False, (3, -17)),
    (b"1.0", "integer", False, (-1, None)),
    (b"1e3", "integer", False, (-1, None)),
    (b'"px" : "1"', "key", True, (7, b"px")),
    (b'"px" : "1"', "key", False, (-1, None)),                 # compact: no whitespace
    (b"[ ]", "open[", True, (3, True)),
    (b"[ ]", "open[", False, (1, False)),
    (b"{ } ", "open{", True, (3, True)),
    (b" ,  1", "next]", True, (4, False)),
    (b" ]", "next]", True, (2, True)),
    (b"}", "next]", True, (-1, None)),
    (b'[1,"a",null,true,false]x', "skip", False, (23, None)),
    (b"[[1]]", "skip", False, (-1, None)),                     # nested: not skipped
    (b"{}", "skip", False, (-1, None)),
    (b"[1,]", "skip", False, (-1, None)),
    (b"[ 1 , 2 ]", "skip", True, (9, None)),
    (b"[ 1 , 2 ]", "skip", False, (-1, None)),
    (b" \t\r\nx", "ws", True, (4, None)),
    (b" x", "ws", False, (0, None)),
])
def test_examples(text, reader, any_ws, expected):
    assert scan_json(text, reader, any_ws) == expected
    assert ref.read(text, reader, any_ws) == expected


def test_unknown_reader_is_an_error():
    with pytest.raises(ValueError, match="unknown reader"):
        scan_json(b"1", "float")
