"""Hyperliquid price/size rounding and wire strings (hlfast.quoting) against the SDK and the rules."""
from __future__ import annotations

import gzip
import json
import math
from decimal import Decimal

import pytest
from hyperliquid.utils.signing import float_to_wire
from hypothesis import given, settings
from hypothesis import strategies as st

from hlfast.quoting import (
    ceil_px_ticks,
    floor_px_ticks,
    floor_size,
    px_wire,
    round_size,
    sz_wire,
    tick_at,
)
from tests.paths import HL_FIXTURES
from tests.reference import quoting as ref

FIXTURES = HL_FIXTURES
SZ_DECIMALS = st.integers(min_value=0, max_value=6)


def _px_float(ticks: int, px_decimals: int) -> float:
    return ticks / 10**px_decimals


# ---------------------------------------------------------------- wire strings

@settings(deadline=None, max_examples=400)
@given(ticks=st.integers(min_value=0, max_value=10**13), px_decimals=st.integers(0, 6))
def test_px_wire_equals_sdk_float_to_wire(ticks: int, px_decimals: int) -> None:
    """Any price below 10^7 with <= 6 decimals (the SDK's own float path is inexact above)."""
    ticks = ticks // 10 ** (6 - px_decimals)
    assert px_wire(ticks, px_decimals) == float_to_wire(_px_float(ticks, px_decimals))


@settings(deadline=None, max_examples=400)
@given(sz=st.floats(min_value=0, max_value=1e6, allow_nan=False), sz_decimals=SZ_DECIMALS)
def test_sz_wire_equals_sdk_float_to_wire_of_rounded_size(sz: float, sz_decimals: int) -> None:
    assert sz_wire(sz, sz_decimals) == float_to_wire(round(sz, sz_decimals))


@settings(deadline=None, max_examples=400)
@given(sz=st.floats(min_value=0, max_value=1e8, allow_nan=False), sz_decimals=SZ_DECIMALS)
def test_round_size_matches_python_round(sz: float, sz_decimals: int) -> None:
    assert round_size(sz, sz_decimals) == round(sz, sz_decimals)


@settings(deadline=None, max_examples=300)
@given(lots=st.integers(min_value=1, max_value=10**10), sz_decimals=SZ_DECIMALS)
def test_floor_size_keeps_grid_values_and_never_rounds_up(lots: int, sz_decimals: int) -> None:
    sz = lots / 10**sz_decimals
    assert floor_size(sz, sz_decimals) == sz
    bumped = sz * (1 - 1e-6)
    assert floor_size(bumped, sz_decimals) <= bumped * (1 + 1e-12)


def test_wire_examples() -> None:
    assert px_wire(990000, 1) == "99000"
    assert px_wire(31005, 1) == "3100.5"
    assert px_wire(1234, 6) == "0.001234"
    assert px_wire(0, 4) == "0"
    assert sz_wire(0.0010, 5) == "0.001"
    assert sz_wire(1.0, 4) == "1"
    assert sz_wire(0.000019999999, 5) == "0.00002"
    with pytest.raises(ValueError):
        sz_wire(math.nan, 5)


def test_wire_strings_reproduce_sdk_generated_orders() -> None:
    """Every price/size string in the SDK's own /exchange bodies comes back byte for byte."""
    data = json.loads((FIXTURES / "local_sdk_generated_exchange_requests.json").read_text())
    sz_decimals = {i: u["szDecimals"] for i, u in enumerate(data["meta_used"]["universe"])}
    checked = 0
    for vector in data["vectors"]:
        action = json.loads(vector["request_body_raw"])["action"]
        orders = action.get("orders") or [m["order"] for m in action.get("modifies", [])]
        for order in orders:
            if order["a"] not in sz_decimals:
                continue   # spot: a different decimal rule
            szd = sz_decimals[order["a"]]
            ticks = int(Decimal(order["p"]).scaleb(6 - szd))
            assert px_wire(ticks, 6 - szd) == order["p"]
            assert sz_wire(float(order["s"]), szd) == order["s"]
            checked += 1
    assert checked >= 8


# ---------------------------------------------------------------- the price grid

@settings(deadline=None, max_examples=500)
@given(px=st.floats(min_value=1e-6, max_value=2e6, allow_nan=False), sz_decimals=SZ_DECIMALS)
def test_floor_and_ceil_bracket_px_on_the_valid_grid(px: float, sz_decimals: int) -> None:
    pd = 6 - sz_decimals
    lo, hi = floor_px_ticks(px, sz_decimals), ceil_px_ticks(px, sz_decimals)
    assert (lo, hi) == (ref.floor_valid(ref.floor_tol(px * 10**pd), pd),
                        ref.ceil_valid(ref.ceil_tol(px * 10**pd), pd))
    assert hi > 0
    assert ref.price_is_valid(px_wire(hi, pd), sz_decimals)
    tol = 1e-12 * px
    assert hi / 10**pd >= px - tol
    if lo > 0:
        assert ref.price_is_valid(px_wire(lo, pd), sz_decimals)
        assert lo / 10**pd <= px + tol
        assert lo <= hi
        if hi - lo <= 2000:   # nothing valid strictly between them
            assert not any(ref.price_is_valid(px_wire(t, pd), sz_decimals) for t in range(lo + 1, hi))


@settings(deadline=None, max_examples=500)
@given(px=st.floats(min_value=1e-3, max_value=2e6, allow_nan=False), sz_decimals=SZ_DECIMALS)
def test_sdk_rounding_lands_on_floor_or_ceil(px: float, sz_decimals: int) -> None:
    """The SDK example's round-to-nearest is always one of our two directed roundings."""
    pd = 6 - sz_decimals
    sdk = ref.sdk_round_px(px, sz_decimals)
    if sdk <= 0:
        return
    sdk_ticks = round(sdk * 10**pd)
    assert sdk_ticks in (floor_px_ticks(px, sz_decimals), ceil_px_ticks(px, sz_decimals))


@settings(deadline=None, max_examples=300)
@given(ticks=st.integers(min_value=1, max_value=10**9), sz_decimals=SZ_DECIMALS)
def test_tick_at_is_the_step_between_valid_prices(ticks: int, sz_decimals: int) -> None:
    pd = 6 - sz_decimals
    px = _px_float(ticks, pd)
    step = tick_at(px, sz_decimals)
    assert step == ref.grid_unit(ticks, pd)
    # the formula of the spec: 10^max(floor(log10 P) - 4, -(6 - szDecimals)), capped at 1.0
    expected = 10 ** min(max(len(str(ticks)) - 1 - pd - 4, -pd), 0)
    assert step == round(expected * 10**pd)


@pytest.mark.parametrize("px, sz_decimals, valid", [
    ("1234.5", 0, True), ("1234.56", 0, False), ("0.001234", 0, True), ("0.0012345", 0, False),
    ("0.01234", 1, True), ("0.012345", 1, False), ("123456", 0, True), ("12345.6", 0, False),
    ("105055", 5, True), ("105055.5", 5, False), ("3100.5", 4, True), ("3100.55", 4, False),
])
def test_protocol_examples(px: str, sz_decimals: int, valid: bool) -> None:
    assert ref.price_is_valid(px, sz_decimals) is valid
    pd = 6 - sz_decimals
    f = float(px)
    on_grid = floor_px_ticks(f, sz_decimals) == ceil_px_ticks(f, sz_decimals)
    assert on_grid is valid
    if valid:
        assert px_wire(floor_px_ticks(f, sz_decimals), pd) == px


def test_tick_examples() -> None:
    assert tick_at(104321.0, 5) == 10          # BTC above 100k: whole dollars (10 x $0.1 ticks)
    assert tick_at(99999.0, 5) == 10           # 5 significant figures: $1
    assert tick_at(9999.0, 5) == 1             # $0.1
    assert tick_at(3100.5, 4) == 10            # ETH: $0.1 = 10 x $0.01
    assert tick_at(999.99, 4) == 1
    assert floor_px_ticks(104321.7, 5) == 1043210
    assert ceil_px_ticks(104321.2, 5) == 1043220
    assert floor_px_ticks(0.1234, 0) == 123400      # 0.1234 * 1e6 is not exact in binary
    assert floor_px_ticks(-1.0, 5) == 0
    assert floor_px_ticks(math.nan, 5) == 0
    assert ceil_px_ticks(math.inf, 5) == 0


def test_real_book_prices_are_on_our_grid() -> None:
    """Every price in the real mainnet BTC recording is a fixed point of floor/ceil and px_wire."""
    n = 0
    with gzip.open(FIXTURES / "recorded_stream_btc_20250126.gz", "rt") as fh:
        for line in fh:
            frame = json.loads(line.split(" ", 1)[1])
            if frame["channel"] != "l2Book":
                continue
            for side in frame["data"]["levels"]:
                for level in side:
                    px = float(level["px"])
                    t = floor_px_ticks(px, 5)
                    assert t == ceil_px_ticks(px, 5) == round(px * 10)
                    assert Decimal(px_wire(t, 1)) == Decimal(level["px"])
                    assert sz_wire(float(level["sz"]), 5) == format(Decimal(level["sz"]).normalize(), "f")
                    n += 1
    assert n > 1000
