"""Plain-Python statement of the JSON subset the raw-frame scanners take (hlfast.jsonscan).

Each reader looks at ``text`` from offset ``i`` and returns ``(end offset, value)`` or None when
the input is outside the subset.  ``any_ws``: JSON whitespace may stand between tokens.
"""

from __future__ import annotations

import re

WHITESPACE = b" \t\n\r"
STRING = re.compile(rb'"([\x20\x21\x23-\x5b\x5d-\x7e]*)"')  # printable ASCII but '"' and '\'
INTEGER = re.compile(rb"-?(0|[1-9][0-9]{0,17})(?![0-9.eE])")
CLOSING = {ord("{"): ord("}"), ord("["): ord("]")}


def ws(text: bytes, i: int, any_ws: bool) -> int:
    while any_ws and i < len(text) and text[i] in WHITESPACE:
        i += 1
    return i


def string(text: bytes, i: int) -> tuple[int, bytes] | None:
    m = STRING.match(text, i)
    return (m.end(), m.group(1)) if m else None


def integer(text: bytes, i: int) -> tuple[int, int] | None:
    m = INTEGER.match(text, i)
    if m is None or m.group(0) == b"-0":
        return None
    return m.end(), int(m.group(0))


def key(text: bytes, i: int, any_ws: bool) -> tuple[int, bytes] | None:
    got = string(text, i)
    if got is None:
        return None
    j = ws(text, got[0], any_ws)
    if text[j:j + 1] != b":":
        return None
    return ws(text, j + 1, any_ws), got[1]


def open_container(text: bytes, i: int, opener: int, any_ws: bool) -> tuple[int, bool] | None:
    """(position, empty): past the opener (and the closer too when the container is empty)."""
    if i >= len(text) or text[i] != opener:
        return None
    j = ws(text, i + 1, any_ws)
    if j < len(text) and text[j] == CLOSING[opener]:
        return j + 1, True
    return j, False


def next_member(text: bytes, i: int, closer: int, any_ws: bool) -> tuple[int, bool] | None:
    """(position, closed): after ',' the next member, after the closer the byte past it."""
    j = ws(text, i, any_ws)
    if j >= len(text):
        return None
    if text[j] == closer:
        return j + 1, True
    if text[j] != ord(","):
        return None
    return ws(text, j + 1, any_ws), False


def scalar(text: bytes, i: int) -> int | None:
    for word in (b"true", b"false", b"null"):
        if text.startswith(word, i):
            return i + len(word)
    got = string(text, i) or integer(text, i)
    return got[0] if got else None


def skip_value(text: bytes, i: int, any_ws: bool) -> int | None:
    """A scalar or a flat array of scalars."""
    if not text.startswith(b"[", i):
        return scalar(text, i)
    got = open_container(text, i, ord("["), any_ws)
    assert got is not None
    j, closed = got
    while not closed:
        end = scalar(text, j)
        step = None if end is None else next_member(text, end, ord("]"), any_ws)
        if step is None:
            return None
        j, closed = step
    return j


def read(text: bytes, reader: str, any_ws: bool) -> tuple[int, object]:
    """The reference answer in the form of hlfast.simfeed.scan_json."""
    got: tuple[int, object] | int | None
    if reader == "ws":
        got = (ws(text, 0, any_ws), None)
    elif reader == "string":
        got = string(text, 0)
    elif reader == "key":
        got = key(text, 0, any_ws)
    elif reader == "integer":
        got = integer(text, 0)
    elif reader == "skip":
        end = skip_value(text, 0, any_ws)
        got = None if end is None else (end, None)
    elif reader.startswith("open"):
        got = open_container(text, 0, ord(reader[4]), any_ws)
    else:
        got = next_member(text, 0, ord(reader[4]), any_ws)
    return (-1, None) if got is None else got


# ---- fast forms: the simple shapes they take (anything else is left to the general readers) ----
PLAIN_DECIMAL = re.compile(rb'"([0-9]+)(?:\.([0-9]+))?"')


def quoted_scaled(text: bytes, i: int, decimals: int) -> tuple[int, int] | None:
    """'"<digits>[.<digits>]"' with at most 18 - decimals integer digits and no non-zero digit past
    ``decimals``: (end, count of 10**-decimals)."""
    m = PLAIN_DECIMAL.match(text, i)
    if m is None or decimals < 0 or len(m.group(1)) + decimals > 18:
        return None
    frac = (m.group(2) or b"").decode()
    if frac[decimals:].strip("0"):
        return None
    return m.end(), int(m.group(1).decode() + frac[:decimals].ljust(decimals, "0"))


def quoted_double(text: bytes, i: int) -> tuple[int, float] | None:
    """'"<digits>[.<digits>]"' of at most 19 digits that are, as one integer, <= 2**53:
    (end, the correctly rounded value)."""
    m = PLAIN_DECIMAL.match(text, i)
    if m is None:
        return None
    whole, frac = m.group(1), m.group(2) or b""
    if len(whole) + len(frac) > 19 or int(whole + frac) > 2**53:
        return None
    return m.end(), int(whole + frac) / 10 ** len(frac)  # int / int rounds correctly


def quoted_is(text: bytes, i: int, expected: bytes) -> int | None:
    got = string(text, i)
    return got[0] if got is not None and got[1] == expected else None
