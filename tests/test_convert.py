"""Binance USD-M capture → Hyperliquid-shaped recording, checked against a Decimal reconstruction."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hlfast.convert import BinanceBook, GridMapper, convert_binance, main, to_fixed
from hlfast.recording import FrameWriter, iter_frames
from hlfast.venue.market import DEFAULT_COINS, book_problem
from hlfast.venue.replay import ReplaySource
from tests.reference import market_data as ref

FIXTURES = Path(__file__).parent / "fixtures"
SLICE = FIXTURES / "binance_btcusdt_20240808_head3000.gz"  # first 3,000 lines of the capture
BTC = DEFAULT_COINS["BTC"]


def read_output(path: Path) -> tuple[list, list, list[int]]:
    books, trades, stamps = [], [], []
    for ns, raw in iter_frames(path):
        stamps.append(ns)
        frame = orjson.loads(raw)
        if frame["channel"] == "l2Book":
            d = frame["data"]
            sides = [[(Decimal(lv["px"]), Decimal(lv["sz"]), lv["n"]) for lv in side] for side in d["levels"]]
            books.append((d["time"], sides[0], sides[1]))
        else:
            assert frame["channel"] == "trades" and len(frame["data"]) == 1
            t = frame["data"][0]
            assert t["coin"] == "BTC" and len(t["users"]) == 2 and t["hash"].startswith("0x")
            trades.append((t["side"], Decimal(t["px"]), Decimal(t["sz"]), t["tid"], t["time"]))
    return books, trades, stamps


@pytest.mark.parametrize("cadence_ms", [100, 500])
def test_slice_matches_a_direct_reconstruction(tmp_path: Path, cadence_ms: int) -> None:
    out = tmp_path / "hl.gz"
    counts = convert_binance(str(SLICE), str(out), "BTC", cadence_ms, 20)
    books, trades, stamps = read_output(out)
    expected = ref.binance_reference(str(SLICE), BTC.px_decimals, BTC.sz_decimals, cadence_ms, 20)

    assert len(books) == len(expected["books"]) == counts["books"] > 10
    for (t, bids, asks), (et, ebids, easks) in zip(books, expected["books"], strict=True):
        assert t == et and t % cadence_ms == 0
        assert bids == ebids and asks == easks
        assert len(bids) == len(asks) == 20
    assert trades == expected["trades"] and counts["trades"] == len(trades)

    checked, agreed = expected["ticker"]
    assert checked > 0 and agreed == checked  # the reference book itself agrees with bookTicker
    assert counts["ticker_checked"] > 0 and counts["ticker_mismatch"] == 0
    assert counts["gaps"] == 0 and counts["depth_stale"] == 4  # the 4 pre-snapshot events of this file
    assert stamps == sorted(stamps)
    assert counts["frames"] == len(stamps)


def test_output_is_valid_hyperliquid_data(tmp_path: Path) -> None:
    out = tmp_path / "hl.jsonl"
    convert_binance(str(SLICE), str(out), "BTC", 200, 20)
    source_stamps = {ns for ns, _ in iter_frames(SLICE)}
    src = ReplaySource(out)
    blocks = []
    while (b := src.next_block()) is not None:
        blocks.append(b)
    assert src.stats["invalid_books"] == 0 and src.stats["invalid_trades"] == 0
    assert all(book_problem(*b.books["BTC"], BTC) is None for b in blocks if "BTC" in b.books)
    assert all(ns in source_stamps for ns, _ in iter_frames(out))  # original receive timestamps
    first_bid, first_ask = blocks[0].books["BTC"][0][0][0], blocks[0].books["BTC"][1][0][0]
    assert first_bid % 10 == 0 and first_ask % 10 == 0  # $1 steps: BTC near 61,800 has 5 significant figures


def test_trade_sides_follow_the_buyer_maker_flag(tmp_path: Path) -> None:
    out = tmp_path / "hl.gz"
    convert_binance(str(SLICE), str(out), "BTC", 100, 20)
    _books, trades, _ = read_output(out)
    raw = {}
    for _ns, line in iter_frames(SLICE):
        msg = orjson.loads(line)
        if msg.get("stream", "").endswith("@trade"):
            raw[msg["data"]["t"]] = msg["data"]
    assert {"A", "B"} == {side for side, *_ in trades}
    for side, px, sz, tid, time_ms in trades:
        src = raw[tid]
        assert side == ("A" if src["m"] else "B")
        binance_px = Decimal(src["p"])
        assert (px <= binance_px) if side == "A" else (px >= binance_px)  # moved to the grid on the side hit
        assert abs(px - binance_px) < 1 and sz == Decimal(src["q"]) and time_ms == src["T"]


def write_lines(path: Path, msgs: list[dict]) -> None:
    with FrameWriter(path) as w:
        for i, msg in enumerate(msgs):
            w.write(1_000_000 + i, orjson.dumps(msg))


def depth(first: int, last: int, prev: int, t: int, bids=(), asks=()) -> dict:
    return {"stream": "btcusdt@depth@0ms", "data": {"e": "depthUpdate", "E": t, "T": t, "s": "BTCUSDT",
                                                   "U": first, "u": last, "pu": prev,
                                                   "b": [list(x) for x in bids], "a": [list(x) for x in asks]}}


def rest(last_id: int) -> dict:
    return {"lastUpdateId": last_id, "E": 0, "T": 0,
            "bids": [["100.10", "1.000"], ["100.00", "2.000"]], "asks": [["100.20", "1.500"], ["100.30", "0.500"]]}


def trade(tid: int, t: int, price: str, qty: str, maker_buyer: bool, kind: str = "MARKET") -> dict:
    return {"stream": "btcusdt@trade", "data": {"e": "trade", "E": t, "T": t, "s": "BTCUSDT", "t": tid,
                                               "p": price, "q": qty, "X": kind, "m": maker_buyer}}


def test_sequence_rules_gaps_and_resync(tmp_path: Path) -> None:
    path, out = tmp_path / "in.gz", tmp_path / "out.gz"
    write_lines(path, [
        depth(1, 5, 0, 900),  # buffered, then stale (u < lastUpdateId)
        depth(6, 12, 5, 950, bids=[("100.10", "3.000")]),  # straddles lastUpdateId=10: first applied
        rest(10),
        trade(1, 960, "100.20", "0.100", False),  # before any snapshot was published: skipped
        depth(13, 15, 12, 1020, asks=[("100.20", "0")]),  # publishes t=1000
        trade(2, 1030, "100.25", "0.200", True),
        depth(16, 18, 15, 1150),  # publishes t=1100
        depth(20, 22, 19, 1260),  # pu != previous u: gap, no publication until a new snapshot
        trade(3, 1270, "100.40", "0.300", False, kind="LIQUIDATION"),
        depth(23, 25, 22, 1280),  # buffered while unsynced
        rest(24),
        depth(26, 27, 25, 1420),  # publishes t=1300, t=1400 after resync
        {"stream": "ethusdt@trade", "data": {"e": "trade", "s": "ETHUSDT"}},
    ])
    counts = convert_binance(str(path), str(out), "BTC", 100, 20)
    books, trades, _ = read_output(out)
    assert [b[0] for b in books] == [1000, 1100, 1300, 1400]
    assert counts["gaps"] == 1 and counts["depth_stale"] == 2  # the gap event is stale after the resync
    assert counts["grid_points_skipped"] == 1  # t=1200 fell inside the gap
    assert counts["trades_before_book"] == 1 and counts["trades_dropped"] == 1 and counts["other_symbol"] == 1
    # BTC's finest unit is 0.1: at ~$100 these levels keep their Binance prices
    assert books[0][1] == [(Decimal("100.1"), Decimal("3"), 1), (Decimal("100.0"), Decimal("2"), 1)]
    # t=1000 is published before the event at T=1020 (which deletes 100.20) is applied
    assert books[0][2] == [(Decimal("100.2"), Decimal("1.5"), 1), (Decimal("100.3"), Decimal("0.5"), 1)]
    assert books[1][2] == [(Decimal("100.3"), Decimal("0.5"), 1)]
    assert trades == [("A", Decimal("100.2"), Decimal("0.2"), 2, 1030)]  # a sell at 100.25 floors to 100.2


def write_rest_first(path: Path, snap: dict) -> None:
    write_lines(path, [snap, depth(5, 11, 4, 10), depth(12, 13, 11, 120)])


def test_levels_merge_onto_the_grid(tmp_path: Path) -> None:
    path, out = tmp_path / "in.txt", tmp_path / "out.txt"
    snap = {"lastUpdateId": 10, "bids": [["61800.2", "1.001"], ["61800.1", "0.500"], ["61799.9", "0.250"],
                                         ["61750.0", "0.000004"]],
            "asks": [["61800.3", "2.000"], ["61800.9", "1.000"], ["61801.0", "0.125"], ["61802.5", "0.000004"]]}
    write_rest_first(path, snap)
    convert_binance(str(path), str(out), "BTC", 100, 20)
    books, _, _ = read_output(out)
    _t, bids, asks = books[0]
    # 0.000004 BTC rounds to 0.00000 at szDecimals 5: that level is dropped, not published as zero
    assert bids == [(Decimal("61800"), Decimal("1.501"), 2), (Decimal("61799"), Decimal("0.25"), 1)]
    assert asks == [(Decimal("61801"), Decimal("3.125"), 3)]


@settings(deadline=None, max_examples=200)
@given(st.lists(st.tuples(st.integers(10**4, 10**9), st.integers(1, 10**7)), min_size=1, max_size=60),
       st.booleans(), st.sampled_from(["BTC", "ETH", "SOL"]))
def test_grid_aggregation_matches_reference(levels, bids: bool, coin: str) -> None:
    spec = DEFAULT_COINS[coin]
    unique = {px: q for px, q in levels}
    ordered = sorted(unique.items(), reverse=bids)
    got = GridMapper(spec).aggregate([(px * 10**4, q * 10**3) for px, q in ordered], bids, 20)
    expected = ref.aggregate([(Decimal(px).scaleb(-4), Decimal(q).scaleb(-5)) for px, q in ordered], bids,
                             spec.px_decimals, spec.sz_decimals, 20)
    assert [(ref.price_of(px, spec.px_decimals), Decimal(lots).scaleb(-spec.sz_decimals), n)
            for px, lots, n in got] == expected


@settings(deadline=None, max_examples=200)
@given(st.decimals(min_value=0, max_value=10**9, places=8, allow_nan=False, allow_infinity=False))
def test_to_fixed_is_exact(value: Decimal) -> None:
    assert to_fixed(f"{value:f}") == int(value * 10**8)


def test_book_sequence_api() -> None:
    book = BinanceBook()
    book.load_snapshot(rest(10))
    assert book.apply(depth(1, 9, 0, 1)["data"]) == "stale"
    assert book.apply(depth(11, 12, 10, 1)["data"]) == "gap"  # first event must straddle 10
    book.load_snapshot(rest(10))
    assert book.apply(depth(9, 11, 8, 1, bids=[("100.15", "1")])["data"]) == "applied"
    assert book.best_bid() == to_fixed("100.15") and book.best_ask() == to_fixed("100.20")
    assert book.apply(depth(12, 13, 11, 2, asks=[("100.20", "0")])["data"]) == "applied"
    assert list(book.iter_asks()) == [(to_fixed("100.30"), to_fixed("0.5"))]
    assert book.apply(depth(15, 16, 14, 3)["data"]) == "gap" and not book.synced


def test_main_prints_a_summary(tmp_path: Path, capsys) -> None:
    out = tmp_path / "o.gz"
    assert main(["--in", str(SLICE), "--out", str(out), "--coin", "BTC", "--cadence-ms", "500"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith("wrote ") and "l2Book" in line and "trades" in line and "gaps" in line and "span" in line
    assert main(["--in", str(SLICE), "--out", str(out), "--coin", "NOPE"]) == 2
    assert "unknown coin 'NOPE'" in capsys.readouterr().err
    assert main(["--in", str(tmp_path / "missing.gz"), "--out", str(out)]) == 2
