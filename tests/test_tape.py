"""hlfast.tape.Tape against real trade payloads and the plain-Python reference."""

from __future__ import annotations

import gzip
import json
import math
from decimal import Decimal
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hlfast import tape as tp
from tests.reference.tape import RefTape

Tape = tp.Tape

FIX = Path(__file__).parent / "fixtures" / "hyperliquid"


def recorded_trade_frames() -> list[list[dict]]:
    with gzip.open(FIX / "recorded_stream_btc_20250126.gz", "rt") as fh:
        frames = [json.loads(line.split(" ", 1)[1]) for line in fh if line.strip()]
    return [f["data"] for f in frames if f["channel"] == "trades"]


def expected_row(row: dict, px_decimals: int, liq: bool = False) -> tuple:
    return (row["time"] / 1000.0, int(Decimal(row["px"]).scaleb(px_decimals)), float(Decimal(row["sz"])),
            1 if row["side"] == "B" else -1, row["tid"], liq)


def same(a: float, b: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-12)


def assert_same(kt: Tape, rt: RefTape) -> None:
    assert kt.total == rt.total
    assert kt.count == len(rt.retained)
    assert kt.trades_since(0) == rt.retained
    assert kt.reject_counts() == rt.reject_counts()
    if rt.trades:
        last = rt.trades[-1]
        assert (kt.last_time, kt.last_px_ticks, kt.last_sz, kt.last_side) == (last[0], last[1], last[2], last[3])


# --------------------------------------------------------------------------- real payloads

def test_official_trades_frame_decodes_exactly():
    frames = json.loads((FIX / "official_order_book_server_ws_frames.json").read_text())["frames"]
    rows = frames[2]["data"]
    tape = Tape(5)
    assert tape.apply_trades(rows, "BTC") == 1
    assert tape.trade(0) == expected_row(rows[0], 1)
    assert tape.last_px == 106296.0 and tape.last_side == -1
    assert tape.last_time == 1751430933.565


def test_recorded_stream_trades_decode_exactly():
    tape = Tape(5)
    rtape = RefTape(5)
    expected = []
    for rows in recorded_trade_frames():
        rows = orjson.loads(orjson.dumps(rows))
        assert tape.apply_trades(rows, "BTC") == len(rows)
        assert rtape.apply_trades(rows, "BTC") == len(rows)
        expected += [expected_row(r, 1) for r in rows]
    assert tape.total == len(expected) == 64
    assert tape.trades_since(0) == expected
    assert_same(tape, rtape)
    assert sum(tape.reject_counts().values()) == 0


def test_recent_trades_and_liquidator_flag_case_insensitive():
    rows = json.loads((FIX / "nautilus_http_recent_trades_btc.json").read_text())
    liquidator = rows[0]["users"][1].upper()
    tape = Tape(5, liquidators=(liquidator,))
    rtape = RefTape(5, liquidators=(liquidator,))
    rows = sorted(rows, key=lambda r: r["time"])
    assert tape.apply_trades(rows, "BTC") == len(rows) == rtape.apply_trades(rows, "BTC")
    flags = [tape.trade(i)[5] for i in range(tape.total)]
    assert flags == [liquidator.lower() in [u.lower() for u in r["users"]] for r in rows]
    assert any(flags)
    assert_same(tape, rtape)


# --------------------------------------------------------------------------- malformed rows

def row(t: int = 1000, px: str = "100.5", sz: str = "0.5", side: str = "B", tid: int = 7, coin: str = "BTC") -> dict:
    return {"coin": coin, "side": side, "px": px, "sz": sz, "time": t, "hash": "0x0", "tid": tid,
            "users": ["0xa", "0xb"]}


def without(key: str) -> dict:
    r = row()
    del r[key]
    return r


BAD_ROWS = {
    "missing_key": [without(k) for k in ("coin", "side", "px", "sz", "time", "tid")],
    "bad_number": [row(px="1o0"), row(sz="0.5.0"), row(px="100.55"), row(px=""),
                   {**row(), "time": 1000.0}, {**row(), "tid": "7"}, {**row(), "px": 100.5}],
    "non_finite": [row(px="inf"), row(sz="NaN"), row(sz="-infinity")],
    "bad_size": [row(sz="0"), row(sz="-0.1")],
    "bad_price": [row(px="0.0"), row(px="-5")],
    "bad_side": [row(side="b"), row(side="Buy"), {**row(), "side": 1}],
    "wrong_coin": [row(coin="ETH"), {**row(), "coin": None}],
    "stale": [row(t=999)],
    "bad_shape": [["BTC", "B"], None, "row"],
}


@pytest.mark.parametrize("reason", sorted(BAD_ROWS))
def test_bad_rows_are_counted_and_good_rows_around_them_kept(reason):
    bad = BAD_ROWS[reason]
    tape, rtape = Tape(5, capacity=8), RefTape(5, capacity=8)
    rows = [row(t=1000, tid=1)] + bad + [row(t=1001, tid=2)]
    assert tape.apply_trades(rows, "BTC") == 2
    assert rtape.apply_trades(rows, "BTC") == 2
    counts = tape.reject_counts()
    assert counts[reason] == len(bad)
    assert sum(counts.values()) == len(bad) == tape.rejects
    assert [t[4] for t in tape.trades_since(0)] == [1, 2]
    assert_same(tape, rtape)


def test_non_list_data_and_push_validation():
    tape, rtape = Tape(5), RefTape(5)
    for junk in (None, {"coin": "BTC"}, "x", 5):
        assert tape.apply_trades(junk, "BTC") == 0 == rtape.apply_trades(junk, "BTC")
    assert tape.reject_counts()["bad_shape"] == 4
    cases = [(1.0, 10, 1.0, 1, 1), (math.nan, 10, 1.0, 1, 2), (2.0, 0, 1.0, 1, 3), (2.0, 10, math.inf, 1, 4),
             (2.0, 10, 0.0, 1, 5), (2.0, 10, 1.0, 0, 6), (0.5, 10, 1.0, -1, 7), (2.0, 11, 2.0, -1, 8)]
    for args in cases:
        assert tape.push(*args) == rtape.push(*args)
    assert tape.total == 2
    assert_same(tape, rtape)
    assert tape.push(3.0, 12, 1.0, 1, 9, True) == 0 and tape.trade(2)[5] is True


# --------------------------------------------------------------------------- ring and windows

def test_ring_wraps_and_sequence_numbers_stay_monotonic():
    tape = Tape(5, capacity=4)
    for i in range(10):
        assert tape.push(float(i), 100 + i, 1.0 + i, 1 if i % 2 else -1, i) == 0
    assert tape.total == 10 and tape.count == 4 and tape.oldest_seq == 6
    assert [t[4] for t in tape.trades_since(0)] == [6, 7, 8, 9]
    assert [t[4] for t in tape.trades_since(8)] == [8, 9]
    assert tape.trades_since(10) == []
    with pytest.raises(IndexError):
        tape.trade(5)
    with pytest.raises(IndexError):
        tape.trade(10)
    # Only retained trades count in windows.
    assert tape.count_in_window(9.0, 100.0) == 4
    assert tape.volume_in_window(9.0, 100.0) == 7.0 + 8.0 + 9.0 + 10.0


def test_window_bounds_and_flow_imbalance():
    tape = Tape(5)
    for t, side, sz in ((1.0, 1, 1.0), (2.0, -1, 3.0), (3.0, 1, 2.0), (4.0, 1, 0.5)):
        assert tape.push(t, 100, sz, side, 0) == 0
    # (now - window, now]: t = 2 excluded at window 1 from now = 3, t = 4 excluded as future
    assert tape.count_in_window(3.0, 1.0) == 1
    assert tape.volume_in_window(3.0, 2.0) == 5.0
    assert tape.volume_in_window(3.0, 2.0, 1) == 2.0 and tape.volume_in_window(3.0, 2.0, -1) == 3.0
    assert tape.count_in_window(10.0, 100.0, -1) == 1
    assert tape.flow_imbalance(4.0, 10.0) == pytest.approx((3.5 - 3.0) / 6.5)
    assert tape.flow_imbalance(100.0, 1.0) == 0.0
    empty = Tape(5)
    assert empty.flow_imbalance(1.0, 1.0) == 0.0 and empty.volume_in_window(1.0, 1.0) == 0.0
    assert math.isnan(empty.last_time) and empty.last_px_ticks == 0 and math.isnan(empty.last_px)


def test_constructor_validates():
    with pytest.raises(ValueError):
        Tape(9)
    with pytest.raises(ValueError):
        Tape(5, capacity=0)
    with pytest.raises(ValueError):
        Tape(5, liquidators=(123,))
    with pytest.raises(ValueError):
        Tape(5, liquidators=tuple(f"0x{i}" for i in range(tp.MAX_LIQUIDATORS + 1)))
    assert Tape(4).px_decimals == 2 and Tape(5).capacity == 4096


# --------------------------------------------------------------------------- hypothesis vs reference

LIQ = "0x" + "ab" * 20


@st.composite
def trade_rows(draw, t0: int):
    sz_decimals = 5
    t = t0
    rows = []
    for _ in range(draw(st.integers(0, 12))):
        t += draw(st.integers(-5, 400))  # occasional step back: stale
        r = row(t=t, px=f"{Decimal(draw(st.integers(-2, 10**7))).scaleb(-1):f}",
                sz=f"{Decimal(draw(st.integers(-1, 10**6))).scaleb(-sz_decimals):f}",
                side=draw(st.sampled_from(["B", "A", "B", "A", "X"])), tid=draw(st.integers(0, 2**50)),
                coin=draw(st.sampled_from(["BTC"] * 6 + ["ETH"])))
        r["users"] = [draw(st.sampled_from(["0x1", LIQ.upper(), "0x2"])), "0x3"]
        if draw(st.integers(0, 15)) == 0:
            r.pop(draw(st.sampled_from(["px", "sz", "tid", "side"])))
        rows.append(r)
    return rows, t


@st.composite
def trade_streams(draw):
    t = draw(st.integers(0, 10**12))
    frames = []
    for _ in range(draw(st.integers(1, 8))):
        rows, t = draw(trade_rows(t))
        frames.append(rows)
    queries = draw(st.lists(st.tuples(st.floats(-2.0, 6.0), st.floats(0.0, 5.0), st.sampled_from([0, 1, -1])),
                            max_size=6))
    return draw(st.integers(1, 20)), frames, queries


@settings(deadline=None, max_examples=120, suppress_health_check=[HealthCheck.too_slow])
@given(trade_streams())
def test_kernel_matches_reference_on_generated_streams(case):
    capacity, frames, queries = case
    tape, rtape = Tape(5, capacity=capacity, liquidators=(LIQ,)), RefTape(5, capacity=capacity, liquidators=(LIQ,))
    for rows in frames:
        rows = orjson.loads(orjson.dumps(rows))
        assert tape.apply_trades(rows, "BTC") == rtape.apply_trades(rows, "BTC")
        assert_same(tape, rtape)
        if not rtape.trades:
            continue
        last = rtape.trades[-1][0]
        for offset, window, side in queries:
            now = last + offset
            assert same(tape.volume_in_window(now, window, side), rtape.volume_in_window(now, window, side))
            assert tape.count_in_window(now, window, side) == rtape.count_in_window(now, window, side)
            assert same(tape.flow_imbalance(now, window), rtape.flow_imbalance(now, window))
