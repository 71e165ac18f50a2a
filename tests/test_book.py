"""hlfast.book.Book against real payloads (exact decimal decode) and the plain-Python reference."""

from __future__ import annotations

import copy
import gc
import gzip
import json
import math
from decimal import Decimal
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hlfast import book as bk
from tests.reference.book import RefBook

Book, format_ticks, parse_ticks = bk.Book, bk.format_ticks, bk.parse_ticks

FIX = Path(__file__).parent / "fixtures" / "hyperliquid"


def load(name: str):
    return json.loads((FIX / name).read_text())


def recorded_frames() -> list[dict]:
    with gzip.open(FIX / "recorded_stream_btc_20250126.gz", "rt") as fh:
        return [json.loads(line.split(" ", 1)[1]) for line in fh if line.strip()]


def decimal_ticks(text: str, px_decimals: int) -> int:
    value = Decimal(text).scaleb(px_decimals)
    assert value == value.to_integral_value()
    return int(value)


def assert_decodes_exactly(book: Book, data: dict) -> None:
    """Every level equals the Decimal reading of its text (ticks exact, size the nearest double)."""
    bids, asks = data["levels"]
    assert (book.n_bids, book.n_asks) == (len(bids), len(asks))
    assert book.time_ms == data["time"]
    for levels, px_view, sz_view, n_view in (
        (bids, book.bids_px(), book.bids_sz(), book.bids_n()),
        (asks, book.asks_px(), book.asks_sz(), book.asks_n()),
    ):
        assert memoryview(px_view).tolist() == [decimal_ticks(lv["px"], book.px_decimals) for lv in levels]
        assert memoryview(sz_view).tolist() == [float(Decimal(lv["sz"])) for lv in levels]
        assert memoryview(n_view).tolist() == [lv.get("n", 0) for lv in levels]
    assert book.best_bid() == float(Decimal(bids[0]["px"]))
    assert book.best_ask() == float(Decimal(asks[0]["px"]))


def state(book) -> tuple:
    return book.levels(), book.time_ms, book.updates


def same(a: float, b: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-15)


def assert_same_queries(kb: Book, rb: RefBook) -> None:
    assert kb.levels() == rb.levels()
    assert (kb.n_bids, kb.n_asks, kb.time_ms, kb.updates) == (rb.n_bids, rb.n_asks, rb.time_ms, rb.updates)
    assert kb.best_bid_ticks() == rb.best_bid_ticks()
    assert kb.best_ask_ticks() == rb.best_ask_ticks()
    for name in ("best_bid", "best_ask", "mid", "spread", "spread_bps", "microprice"):
        assert same(getattr(kb, name)(), getattr(rb, name)()), name
    for k in (0, 1, 3, 5, 20):
        assert same(kb.imbalance(k), rb.imbalance(k))
    for d0 in (0.0, 1.0, 10.0, 50.0):
        assert same(kb.weighted_imbalance(d0), rb.weighted_imbalance(d0))
    probes = {lv[0] for lv in rb.bids + rb.asks} | {lv[0] + 1 for lv in rb.bids} | {0, 1}
    for side in (1, -1, 0):
        for px in probes:
            assert same(kb.size_at(side, px), rb.size_at(side, px))
        for bps in (0.0, 0.5, 2.0, 10.0, 1e4):
            assert same(kb.depth_within_bps(side, bps), rb.depth_within_bps(side, bps))
    mid = rb.mid()
    for px in (mid, 0.0, 123.456, math.nan, math.inf):
        assert kb.px_to_ticks(px) == rb.px_to_ticks(px)
    assert kb.reject_counts() == rb.reject_counts()


# --------------------------------------------------------------------------- real payloads

def test_official_20_level_frame_decodes_exactly():
    frame = load("official_order_book_server_ws_frames.json")["frames"][1]
    assert frame["channel"] == "l2Book"
    book = Book("BTC", 5)
    assert book.apply_l2(frame["data"]) == 0
    assert_decodes_exactly(book, frame["data"])
    assert book.n_bids == book.n_asks == 20
    assert book.best_bid_ticks() == 1062170 and book.best_ask_ticks() == 1062330
    assert book.unit == pytest.approx(0.1) and book.px_decimals == 1


@pytest.mark.parametrize(
    ("fixture", "coin", "sz_decimals"),
    [
        ("nautilus_ws_book_data.json", "BTC", 4),  # synthetic 2-decimal prices: needs a 0.01 grid
        ("nautilus_http_l2_book_snapshot.json", "BTC", 4),
        ("nautilus_http_l2_book_btc.json", "BTC", 5),  # no `n` in the levels
        ("sdk_cassette_l2_book_dydx.json", "DYDX", 1),
    ],
)
def test_http_and_synthetic_books_decode_exactly(fixture, coin, sz_decimals):
    data = load(fixture)
    data = data.get("response", data)
    book = Book(coin, sz_decimals)
    assert book.apply_l2(data) == 0, book.reject_counts()
    assert_decodes_exactly(book, data)


def test_off_grid_synthetic_prices_are_rejected_on_the_btc_grid():
    # "98449.75" has a non-zero digit below BTC's 0.1 tick.
    book = Book("BTC", 5)
    assert book.apply_l2(load("nautilus_ws_book_data.json")) == bk.REJ_BAD_NUMBER
    assert book.reject_counts()["bad_number"] == 1 and book.n_bids == 0


def test_recorded_stream_every_snapshot_decodes_exactly():
    book = Book("BTC", 5)
    rbook = RefBook("BTC", 5)
    n = 0
    for frame in recorded_frames():
        if frame["channel"] != "l2Book":
            continue
        data = orjson.loads(orjson.dumps(frame["data"]))
        assert book.apply_l2(data) == 0
        assert rbook.apply_l2(data) == 0
        assert_decodes_exactly(book, data)
        assert_same_queries(book, rbook)
        n += 1
    assert n == 46 and book.updates == 46


# --------------------------------------------------------------------------- malformed classes

def good_frame(t: int = 1000, coin: str = "BTC") -> dict:
    return {
        "coin": coin,
        "time": t,
        "levels": [
            [{"px": "100.5", "sz": "1.5", "n": 2}, {"px": "100.4", "sz": "2", "n": 1}, {"px": "100.0", "sz": "0.25", "n": 3}],
            [{"px": "100.6", "sz": "0.5", "n": 1}, {"px": "100.9", "sz": "3", "n": 4}],
        ],
    }


def mutate(path: tuple, value=None, delete: bool = False):
    def apply(frame: dict) -> dict:
        node = frame
        for key in path[:-1]:
            node = node[key]
        if delete:
            del node[path[-1]]
        else:
            node[path[-1]] = value
        return frame
    return apply


MALFORMED = {
    "missing_coin": (mutate(("coin",), delete=True), bk.REJ_MISSING_KEY),
    "missing_time": (mutate(("time",), delete=True), bk.REJ_MISSING_KEY),
    "missing_levels": (mutate(("levels",), delete=True), bk.REJ_MISSING_KEY),
    "missing_px": (mutate(("levels", 0, 1, "px"), delete=True), bk.REJ_MISSING_KEY),
    "missing_sz": (mutate(("levels", 1, 0, "sz"), delete=True), bk.REJ_MISSING_KEY),
    "px_not_numeric": (mutate(("levels", 0, 0, "px"), "100.5x"), bk.REJ_BAD_NUMBER),
    "px_empty": (mutate(("levels", 0, 0, "px"), ""), bk.REJ_BAD_NUMBER),
    "px_exponent": (mutate(("levels", 1, 1, "px"), "1.009e2"), bk.REJ_BAD_NUMBER),
    "px_off_grid": (mutate(("levels", 0, 0, "px"), "100.55"), bk.REJ_BAD_NUMBER),
    "px_as_float": (mutate(("levels", 0, 0, "px"), 100.5), bk.REJ_BAD_NUMBER),
    "px_overflow": (mutate(("levels", 1, 1, "px"), "9" * 30), bk.REJ_BAD_NUMBER),
    "sz_not_numeric": (mutate(("levels", 1, 0, "sz"), "0.5.1"), bk.REJ_BAD_NUMBER),
    "n_as_str": (mutate(("levels", 1, 0, "n"), "1"), bk.REJ_BAD_NUMBER),
    "n_negative": (mutate(("levels", 1, 0, "n"), -1), bk.REJ_BAD_NUMBER),
    "time_as_str": (mutate(("time",), "1000"), bk.REJ_BAD_NUMBER),
    "time_as_float": (mutate(("time",), 1000.0), bk.REJ_BAD_NUMBER),
    "empty_bids": (mutate(("levels", 0), []), bk.REJ_EMPTY_SIDE),
    "empty_asks": (mutate(("levels", 1), []), bk.REJ_EMPTY_SIDE),
    "crossed": (mutate(("levels", 1, 0, "px"), "100.5"), bk.REJ_CROSSED),
    "crossed_through": (mutate(("levels", 0, 0, "px"), "101.0"), bk.REJ_CROSSED),
    "px_nan": (mutate(("levels", 0, 0, "px"), "NaN"), bk.REJ_NON_FINITE),
    "sz_inf": (mutate(("levels", 0, 2, "sz"), "inf"), bk.REJ_NON_FINITE),
    "sz_neg_infinity": (mutate(("levels", 1, 1, "sz"), "-Infinity"), bk.REJ_NON_FINITE),
    "sz_huge": (mutate(("levels", 1, 1, "sz"), "9" * 400), bk.REJ_BAD_NUMBER),
    "wrong_coin": (mutate(("coin",), "ETH"), bk.REJ_WRONG_COIN),
    "coin_not_str": (mutate(("coin",), 1), bk.REJ_WRONG_COIN),
    "stale": (mutate(("time",), 999), bk.REJ_STALE),
    "bids_ascending": (mutate(("levels", 0, 1, "px"), "100.6"), bk.REJ_NON_MONOTONIC),
    "bids_duplicate": (mutate(("levels", 0, 1, "px"), "100.5"), bk.REJ_NON_MONOTONIC),
    "asks_descending": (mutate(("levels", 1, 1, "px"), "100.5"), bk.REJ_NON_MONOTONIC),
    "asks_not_increasing": (mutate(("levels", 1, 1, "px"), "100.6"), bk.REJ_NON_MONOTONIC),
    "sz_zero": (mutate(("levels", 0, 0, "sz"), "0.000"), bk.REJ_BAD_SIZE),
    "sz_negative": (mutate(("levels", 1, 0, "sz"), "-0.5"), bk.REJ_BAD_SIZE),
    "sz_negative_long": (mutate(("levels", 1, 0, "sz"), "-1000000000000000.0"), bk.REJ_BAD_SIZE),
    "px_zero": (mutate(("levels", 0, 2, "px"), "0"), bk.REJ_BAD_PRICE),
    "px_negative": (mutate(("levels", 0, 2, "px"), "-1.0"), bk.REJ_BAD_PRICE),
    "levels_one_side": (mutate(("levels",), [[]]), bk.REJ_BAD_SHAPE),
    "levels_dict": (mutate(("levels",), {"bids": [], "asks": []}), bk.REJ_BAD_SHAPE),
    "level_is_list": (mutate(("levels", 0, 0), ["100.5", "1.5", 2]), bk.REJ_BAD_SHAPE),
    "side_is_none": (mutate(("levels", 1), None), bk.REJ_BAD_SHAPE),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_frame_is_counted_and_leaves_book_unchanged(case):
    make_bad, expected = MALFORMED[case]
    book = Book("BTC", 5, capacity=8)
    rbook = RefBook("BTC", 5, capacity=8)
    assert book.apply_l2(good_frame(1000)) == 0 and rbook.apply_l2(good_frame(1000)) == 0
    before = state(book)
    counts = book.reject_counts()
    bad = make_bad(good_frame(1000))
    assert book.apply_l2(bad) == expected
    assert rbook.apply_l2(bad) == expected
    assert state(book) == before
    name = bk.REJECT_NAMES[expected]
    after = book.reject_counts()
    assert after[name] == counts[name] + 1
    assert sum(after.values()) == sum(counts.values()) + 1 == book.rejects
    assert_same_queries(book, rbook)
    # The book still takes the next good frame.
    assert book.apply_l2(good_frame(1001)) == 0 and book.time_ms == 1001


def test_too_many_levels_and_non_dict_data():
    book = Book("BTC", 5, capacity=4)
    frame = good_frame()
    frame["levels"][1] = [{"px": f"{101 + i}.0", "sz": "1", "n": 1} for i in range(5)]
    assert book.apply_l2(frame) == bk.REJ_TOO_MANY_LEVELS
    for junk in (None, 1, "x", [], [frame], b"{}", 3.5):
        assert book.apply_l2(junk) == bk.REJ_BAD_SHAPE
        assert book.apply_bbo(junk) == bk.REJ_BAD_SHAPE
    assert book.reject_counts()["too_many_levels"] == 1
    assert book.reject_counts()["bad_shape"] == 14
    assert book.n_bids == 0 and math.isnan(book.mid())


def test_equal_time_is_accepted_and_levels_replace_wholesale():
    book = Book("BTC", 5)
    assert book.apply_l2(good_frame(5)) == 0
    frame = good_frame(5)
    frame["levels"][0] = frame["levels"][0][:1]
    assert book.apply_l2(frame) == 0
    assert book.n_bids == 1 and book.updates == 2


# --------------------------------------------------------------------------- bbo

def bbo(t: int, bid, ask, coin: str = "BTC") -> dict:
    def level(x):
        return None if x is None else {"px": x[0], "sz": x[1], "n": x[2]}
    return {"coin": coin, "time": t, "bbo": [level(bid), level(ask)]}


def books_with_frame():
    book, rbook = Book("BTC", 5, capacity=4), RefBook("BTC", 5, capacity=4)
    assert book.apply_l2(good_frame(10)) == 0 and rbook.apply_l2(good_frame(10)) == 0
    return book, rbook


@pytest.mark.parametrize(
    ("frame", "bids", "asks"),
    [
        # same touch prices, new sizes
        (bbo(11, ("100.5", "9", 7), ("100.6", "8", 6)),
         [(1005, 9.0, 7), (1004, 2.0, 1), (1000, 0.25, 3)], [(1006, 8.0, 6), (1009, 3.0, 4)]),
        # ask backs off: the level in between goes, the bid keeps its price
        (bbo(11, ("100.5", "1", 1), ("100.7", "2", 2)),
         [(1005, 1.0, 1), (1004, 2.0, 1), (1000, 0.25, 3)], [(1007, 2.0, 2), (1009, 3.0, 4)]),
        # bid drops: levels above the new best bid go
        (bbo(11, ("100.1", "4", 1), None),
         [(1001, 4.0, 1), (1000, 0.25, 3)], [(1006, 0.5, 1), (1009, 3.0, 4)]),
        # bid lifts through the old asks: the crossed asks are dropped
        (bbo(11, ("100.8", "1", 1), None),
         [(1008, 1.0, 1), (1005, 1.5, 2), (1004, 2.0, 1), (1000, 0.25, 3)], [(1009, 3.0, 4)]),
        # ask drops through the bids
        (bbo(11, None, ("100.2", "1", 1)),
         [(1000, 0.25, 3)], [(1002, 1.0, 1), (1006, 0.5, 1), (1009, 3.0, 4)]),
    ],
)
def test_bbo_updates_the_touch(frame, bids, asks):
    book, rbook = books_with_frame()
    assert book.apply_bbo(frame) == 0 and rbook.apply_bbo(frame) == 0
    assert book.levels() == (bids, asks)
    assert book.best_bid_ticks() < book.best_ask_ticks()
    assert book.time_ms == 11 and book.updates == 2
    assert_same_queries(book, rbook)


def test_bbo_insert_at_capacity_drops_the_deepest_level():
    book, rbook = books_with_frame()  # capacity 4, 3 bids
    for frame in (bbo(11, ("100.55", "1", 1), None),):
        assert book.apply_bbo(frame) == rbook.apply_bbo(frame) == bk.REJ_BAD_NUMBER  # off grid
    steps = [bbo(12, ("100.51", "1", 1), None)]
    book2 = Book("BTC", 4, capacity=4)  # 0.01 grid
    rbook2 = RefBook("BTC", 4, capacity=4)
    frame = good_frame(10)
    frame["levels"][0].append({"px": "99.9", "sz": "1", "n": 1})
    assert book2.apply_l2(frame) == 0 and rbook2.apply_l2(frame) == 0
    for step in steps:
        assert book2.apply_bbo(step) == 0 and rbook2.apply_bbo(step) == 0
    assert book2.n_bids == 4 and book2.levels()[0][0] == (10051, 1.0, 1)
    assert book2.levels()[0][-1][0] == 10000  # 99.90 fell off
    assert_same_queries(book2, rbook2)


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        (bbo(11, None, None), bk.REJ_EMPTY_SIDE),
        (bbo(11, ("100.7", "1", 1), ("100.7", "1", 1)), bk.REJ_CROSSED),
        (bbo(9, ("100.5", "1", 1), None), bk.REJ_STALE),
        (bbo(11, ("100.5", "0", 1), None), bk.REJ_BAD_SIZE),
        (bbo(11, None, ("nan", "1", 1)), bk.REJ_NON_FINITE),
        (bbo(11, None, ("1x", "1", 1)), bk.REJ_BAD_NUMBER),
        (bbo(11, ("100.5", "1", 1), None, coin="ETH"), bk.REJ_WRONG_COIN),
        ({"coin": "BTC", "time": 11}, bk.REJ_MISSING_KEY),
        ({"coin": "BTC", "time": 11, "bbo": [None]}, bk.REJ_BAD_SHAPE),
        ({"coin": "BTC", "time": 11, "bbo": [["100.5", "1", 1], None]}, bk.REJ_BAD_SHAPE),
        ({"coin": "BTC", "time": 11, "bbo": [{"sz": "1"}, None]}, bk.REJ_MISSING_KEY),
    ],
)
def test_bad_bbo_is_counted_and_leaves_book_unchanged(frame, code):
    book, rbook = books_with_frame()
    before = state(book)
    assert book.apply_bbo(frame) == code and rbook.apply_bbo(frame) == code
    assert state(book) == before
    assert book.reject_counts()[bk.REJECT_NAMES[code]] == 1 and book.rejects == 1
    assert_same_queries(book, rbook)


# --------------------------------------------------------------------------- queries

def test_queries_on_a_known_book():
    book = Book("BTC", 5)
    assert book.apply_l2(good_frame()) == 0
    assert book.best_bid() == 100.5 and book.best_ask() == 100.6
    assert book.mid() == pytest.approx(100.55)
    assert book.spread() == pytest.approx(0.1 / 100.55)
    assert book.spread_bps() == pytest.approx(1e4 * 0.1 / 100.55)
    # ask 100.6 * B1 1.5 + bid 100.5 * A1 0.5 over 2.0: leans to the ask (bigger bid queue)
    assert book.microprice() == pytest.approx((100.6 * 1.5 + 100.5 * 0.5) / 2.0)
    assert book.imbalance(1) == pytest.approx(1.5 / 2.0)
    assert book.imbalance(5) == pytest.approx(3.75 / 7.25)
    d = [abs(p - 100.55) / 100.55 * 1e4 for p in (100.5, 100.4, 100.0, 100.6, 100.9)]
    w = [s * math.exp(-x / 10.0) for s, x in zip((1.5, 2, 0.25, 0.5, 3), d, strict=True)]
    assert book.weighted_imbalance() == pytest.approx(sum(w[:3]) / sum(w))
    assert book.size_at(1, 1004) == 2.0 and book.size_at(1, 1003) == 0.0 and book.size_at(-1, 1009) == 3.0
    assert book.size_at(-1, 1004) == 0.0 and math.isnan(book.size_at(0, 1004))
    assert book.depth_within_bps(1, 0.0) == 0.0
    assert book.depth_within_bps(1, 5.0) == 1.5  # 100.5 is 4.97 bp below mid
    assert book.depth_within_bps(1, 15.0) == 3.5
    assert book.depth_within_bps(-1, 100.0) == 3.5
    assert book.ticks_to_px(1005) == 100.5 and book.px_to_ticks(100.549) == 1005 and book.px_to_ticks(100.55) == 1006
    assert book.time == pytest.approx(1.0)


def test_empty_book_answers_nan_and_never_raises():
    book = Book("BTC", 5)
    for value in (book.best_bid(), book.best_ask(), book.mid(), book.spread(), book.spread_bps(),
                  book.microprice(), book.imbalance(), book.weighted_imbalance(),
                  book.depth_within_bps(1, 10.0), book.time):
        assert math.isnan(value)
    assert book.best_bid_ticks() == 0 and book.best_ask_ticks() == 0
    assert len(book.bids_px()) == 0 and book.levels() == ([], [])
    assert book.size_at(1, 100) == 0.0


def test_clear_and_reset_time():
    book = Book("BTC", 5)
    assert book.apply_l2(good_frame(50)) == 0
    book.clear()
    assert book.n_bids == 0 and book.apply_l2(good_frame(40)) == bk.REJ_STALE
    book.clear(reset_time=True)
    assert book.apply_l2(good_frame(40)) == 0


def test_views_outlive_the_book_and_follow_updates():
    book = Book("BTC", 5)
    assert book.apply_l2(good_frame()) == 0
    view = book.bids_px()
    assert memoryview(view).tolist() == [1005, 1004, 1000]
    del book
    gc.collect()
    assert memoryview(view).tolist() == [1005, 1004, 1000]  # storage kept alive by the view


def test_constructor_validates():
    with pytest.raises(ValueError):
        Book("BTC", 7)
    with pytest.raises(ValueError):
        Book("BTC", 5, capacity=0)
    with pytest.raises(ValueError):
        Book("", 5)
    book = Book("ETH", 4, capacity=20)
    assert (book.coin, book.sz_decimals, book.px_decimals, book.capacity) == ("ETH", 4, 2, 20)
    assert book.unit == 0.01 and "ETH" in repr(book)


# --------------------------------------------------------------------------- decimal helpers

@pytest.mark.parametrize(
    ("text", "decimals", "expected"),
    [("98450.50", 1, 984505), ("98450.55", 1, None), ("106217.0", 1, 1062170), ("106217", 1, 1062170),
     ("0.00001", 5, 1), ("0.000010", 5, 1), ("-12.5", 1, -125), ("+3", 0, 3), ("1.", 2, None),
     (".5", 2, None), ("1e3", 0, None), (" 1", 0, None), ("1_000", 0, None), ("", 0, None),
     ("9223372036854775807", 0, 2**63 - 1), ("9223372036854775808", 0, None),
     ("922337203685477580.7", 1, 2**63 - 1), ("000000000000000000000012.50", 2, 1250)],
)
def test_parse_ticks(text, decimals, expected):
    assert parse_ticks(text, decimals) == expected


@pytest.mark.parametrize("text", ["12345678901234567890.123", "0.1000000000000000055511151231257827",
                                  "9007199254740993", "123456789.987654321", "0.00000000000000000000001"])
def test_long_sizes_round_like_float(text):
    book = Book("BTC", 5)
    frame = {"coin": "BTC", "time": 1, "levels": [[{"px": "1", "sz": text}], [{"px": "2", "sz": "1"}]]}
    assert book.apply_l2(frame) == 0
    assert book.bids_sz()[0] == float(text)


@settings(deadline=None, max_examples=300)
@given(st.integers(-(2**63) + 1, 2**63 - 1), st.integers(0, 18))
def test_format_ticks_matches_decimal_normalize(value, decimals):
    text = format_ticks(value, decimals)
    assert text == f"{Decimal(value).scaleb(-decimals).normalize():f}"
    assert parse_ticks(text, decimals) == value


# --------------------------------------------------------------------------- hypothesis vs reference

NUMBERISH = st.text(alphabet="0123456789.-+eEnaifINFty _", max_size=12)


@settings(deadline=None, max_examples=400)
@given(px=st.one_of(NUMBERISH, st.from_regex(r"[0-9]{1,8}(\.[0-9]{1,8})?", fullmatch=True)),
       sz=st.one_of(NUMBERISH, st.from_regex(r"-?[0-9]{1,25}(\.[0-9]{1,25})?", fullmatch=True)),
       sz_decimals=st.sampled_from([0, 1, 4, 5]))
def test_level_text_parsing_matches_reference(px, sz, sz_decimals):
    frame = {"coin": "X", "time": 1, "levels": [[{"px": px, "sz": sz, "n": 1}], [{"px": "99999999", "sz": "1", "n": 1}]]}
    book, rbook = Book("X", sz_decimals), RefBook("X", sz_decimals)
    code = book.apply_l2(frame)
    assert code == rbook.apply_l2(frame)
    if code == 0:
        assert book.levels() == rbook.levels()
        assert book.bids_sz()[0] == float(Decimal(sz))  # correctly rounded double


def price_text(ticks: int, px_decimals: int, style: int) -> str:
    text = f"{Decimal(ticks).scaleb(-px_decimals):f}" if px_decimals else str(ticks)
    if style == 1 and "." not in text:
        text += ".0"
    elif style == 2:
        text += ("" if "." in text else ".") + "00"
    return text


@st.composite
def book_frames(draw, sz_decimals: int, capacity: int, t: int):
    px_decimals = 6 - sz_decimals
    mid = draw(st.integers(10, 10**7))
    n_bids = draw(st.integers(1, capacity))
    n_asks = draw(st.integers(1, capacity))
    gaps = st.integers(1, 50)
    bids, asks = [], []
    px = mid - draw(gaps)
    for _ in range(n_bids):
        if px <= 0:
            break
        bids.append(px)
        px -= draw(gaps)
    px = mid + draw(gaps)
    for _ in range(n_asks):
        asks.append(px)
        px += draw(gaps)

    def level(ticks: int) -> dict:
        size = draw(st.integers(1, 10**9))
        lv = {"px": price_text(ticks, px_decimals, draw(st.integers(0, 2))),
              "sz": f"{Decimal(size).scaleb(-sz_decimals):f}"}
        if draw(st.booleans()):
            lv["n"] = draw(st.integers(0, 500))
        return lv

    return {"coin": "BTC", "time": t, "levels": [[level(p) for p in bids], [level(p) for p in asks]]}


BREAKERS = [
    lambda f: f.update(coin="ETH"),
    lambda f: f.update(time=f["time"] - 10**6),
    lambda f: f["levels"][0].clear(),
    lambda f: f["levels"][1].reverse() if len(f["levels"][1]) > 1 else f["levels"][1].clear(),
    lambda f: f["levels"][1][0].update(px=f["levels"][0][0]["px"]),
    lambda f: f["levels"][0][-1].update(sz="NaN"),
    lambda f: f["levels"][0][0].update(sz="0"),
    lambda f: f["levels"][1][-1].update(px="abc"),
    lambda f: f["levels"][1][-1].update(px=f["levels"][1][-1]["px"] + ("" if "." in f["levels"][1][-1]["px"] else ".") + "0000007"),
    lambda f: f["levels"][0].append({"px": "1", "sz": "1"}),  # may be too many levels, or fine
    lambda f: f["levels"][0][0].pop("sz"),
    lambda f: f.pop("levels"),
]


@st.composite
def frame_sequences(draw):
    sz_decimals = draw(st.sampled_from([0, 1, 2, 4, 5]))
    capacity = draw(st.integers(1, 24))
    steps = []
    t = draw(st.integers(0, 10**12))
    for _ in range(draw(st.integers(1, 8))):
        t += draw(st.integers(0, 1000))
        kind = draw(st.integers(0, 3))
        frame = draw(book_frames(sz_decimals, capacity, t))
        if kind == 1:  # a broken snapshot (a breaker that needs a level the frame lacks leaves it intact)
            try:
                draw(st.sampled_from(BREAKERS))(frame)
            except IndexError:
                pass
            steps.append(("l2", frame))
        elif kind == 2 and "levels" in frame:  # a bbo built from a snapshot's touch
            bid, ask = frame["levels"][0][:1], frame["levels"][1][:1]
            side = draw(st.integers(0, 2))
            steps.append(("bbo", {"coin": "BTC", "time": t, "bbo": [
                bid[0] if bid and side != 1 else None, ask[0] if ask and side != 0 else None]}))
        else:
            steps.append(("l2", frame))
    return sz_decimals, capacity, steps


@settings(deadline=None, max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(frame_sequences())
def test_kernel_matches_reference_on_generated_streams(case):
    sz_decimals, capacity, steps = case
    book, rbook = Book("BTC", sz_decimals, capacity=capacity), RefBook("BTC", sz_decimals, capacity=capacity)
    for kind, frame in steps:
        data = orjson.loads(orjson.dumps(frame))
        before = state(book)
        if kind == "l2":
            code, rcode = book.apply_l2(data), rbook.apply_l2(copy.deepcopy(data))
        else:
            code, rcode = book.apply_bbo(data), rbook.apply_bbo(copy.deepcopy(data))
        assert code == rcode
        if code != 0:
            assert state(book) == before
        else:
            assert book.best_bid_ticks() < book.best_ask_ticks() or not (book.n_bids and book.n_asks)
        assert_same_queries(book, rbook)
    # Views agree with levels.
    bids, asks = book.levels()
    assert memoryview(book.bids_px()).tolist() == [lv[0] for lv in bids]
    assert memoryview(book.asks_sz()).tolist() == [lv[1] for lv in asks]
    assert memoryview(book.asks_n()).tolist() == [lv[2] for lv in asks]


@settings(deadline=None, max_examples=200)
@given(st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=6)),
    lambda children: st.one_of(st.lists(children, max_size=3),
                               st.dictionaries(st.sampled_from(["coin", "time", "levels", "bbo", "px", "sz", "n"]),
                                               children, max_size=4)),
    max_leaves=12))
def test_arbitrary_objects_never_raise(obj):
    book = Book("BTC", 5)
    assert book.apply_l2(obj) in range(0, len(bk.REJECT_NAMES))
    assert book.apply_bbo(obj) in range(0, len(bk.REJECT_NAMES))
    assert book.apply_l2(obj) == RefBook("BTC", 5).apply_l2(obj)
