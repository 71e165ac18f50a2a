"""Replay source: the real mainnet recording, synthetic → recording → replay, and bad input."""

from __future__ import annotations

import gzip
import json
import logging
from decimal import Decimal
from pathlib import Path

import orjson
import pytest

from hlfast.recording import FrameWriter
from hlfast.venue.market import (
    DEFAULT_COINS,
    LIQUIDATOR_ADDRESS,
    Block,
    CoinSpec,
    MarketSource,
    book_problem,
    make_source,
    px_to_wire,
    sz_to_wire,
)
from hlfast.venue.replay import ReplaySource
from hlfast.venue.synthetic import SyntheticParams, SyntheticSource

FIXTURES = Path(__file__).parent / "fixtures"
REAL = FIXTURES / "hl_recorded_btc_20250126.gz"
BTC = DEFAULT_COINS["BTC"]


def drain(source: MarketSource) -> list[Block]:
    out = []
    while (block := source.next_block()) is not None:
        out.append(block)
    return out


def real_frames() -> list[tuple[int, dict]]:
    with gzip.open(REAL, "rt") as f:
        return [(int(a), json.loads(b)) for a, b in (line.split(" ", 1) for line in f)]


def ticks(text: str, spec: CoinSpec = BTC) -> int:
    return int((Decimal(text) * 10**spec.px_decimals).to_integral_exact())


# --- the real recording ----------------------------------------------------------------------------


def test_real_recording_replays_as_it_is() -> None:
    frames = real_frames()
    books = [f["data"] for _, f in frames if f["channel"] == "l2Book"]
    trades = [t for _, f in frames if f["channel"] == "trades" for t in f["data"]]
    unique_times = sorted({b["time"] for b in books})
    assert len(books) == 46 and len(unique_times) == 45 and len(trades) == 64

    src = make_source(f"replay:{REAL}", [], 0, 500)
    assert [c.name for c in src.coins] == ["BTC"]
    blocks = drain(src)
    assert src.next_block() is None  # stays ended
    assert [b.time_ms for b in blocks] == unique_times
    assert src.stats["duplicate_books"] == 1 and src.stats["books"] == 45 and src.stats["trades"] == 64

    def levels(side: list[dict]) -> list[tuple]:
        return [(ticks(lv["px"]), float(lv["sz"]), lv["n"]) for lv in side]

    first, last = books[0], books[-1]
    assert blocks[0].books["BTC"] == (levels(first["levels"][0]), levels(first["levels"][1]))
    assert blocks[-1].books["BTC"] == (levels(last["levels"][0]), levels(last["levels"][1]))
    assert blocks[0].books["BTC"][0][0] == (1050550, 3.03622, 5)
    assert blocks[0].recv_ns == 1737918843893903000

    replayed = [t for b in blocks for t in b.trades["BTC"]]
    expected = [(t["side"], ticks(t["px"]), float(t["sz"]), False) for t in trades]
    assert replayed == expected  # all of them, in file order
    for block in blocks:
        assert book_problem(*block.books["BTC"], BTC) is None
        assert len(block.books["BTC"][0]) == len(block.books["BTC"][1]) == 20
    # a block's trades happened at or before its time
    by_block = {b.time_ms: len(b.trades["BTC"]) for b in blocks if b.trades["BTC"]}
    assert by_block[1737918868269] == 22 and by_block[1737918865847] == 7


def test_trades_attach_to_the_first_block_at_or_after_their_time() -> None:
    frames = real_frames()
    src = ReplaySource(REAL)
    blocks = drain(src)
    trade_times = [t["time"] for _, f in frames if f["channel"] == "trades" for t in f["data"]]
    i = 0
    prev_time = None
    for block in blocks:
        for _ in block.trades["BTC"]:
            assert trade_times[i] <= block.time_ms
            if prev_time is not None and i >= 30:  # the first 30 are the subscription's history
                assert trade_times[i] > prev_time
            i += 1
        prev_time = block.time_ms
    assert i == len(trade_times)


# --- synthetic → recording → replay ----------------------------------------------------------------


def write_blocks(path: Path, blocks: list[Block], specs: list[CoinSpec]) -> None:
    """Hyperliquid-shaped frames for blocks: trades frame first, then one l2Book per coin."""
    with FrameWriter(path) as writer:
        for i, block in enumerate(blocks):
            ns = block.time_ms * 1_000_000 + 1
            for spec in specs:
                rows = [
                    {"coin": spec.name, "side": side, "px": px_to_wire(px, spec), "sz": sz_to_wire(sz, spec),
                     "time": block.time_ms - 1, "tid": i, "hash": "0x" + "0" * 64,
                     "users": [LIQUIDATOR_ADDRESS if liq and side == "A" else "0x" + "1" * 40,
                               LIQUIDATOR_ADDRESS if liq and side == "B" else "0x" + "2" * 40]}
                    for side, px, sz, liq in block.trades[spec.name]
                ]
                if rows:
                    writer.write(ns, orjson.dumps({"channel": "trades", "data": rows}))
            for spec in specs:
                bids, asks = block.books[spec.name]
                levels = [[{"n": n, "px": px_to_wire(px, spec), "sz": sz_to_wire(sz, spec)} for px, sz, n in side]
                          for side in (bids, asks)]
                data = {"coin": spec.name, "levels": levels, "time": block.time_ms}
                writer.write(ns + 2, orjson.dumps({"channel": "l2Book", "data": data}))
            writer.write(ns + 3, b'{"channel":"pong"}')


def test_synthetic_blocks_survive_record_and_replay(tmp_path: Path) -> None:
    specs = [DEFAULT_COINS[c] for c in ("BTC", "ETH", "SOL")]
    src = SyntheticSource(specs, seed=21, block_ms=50, params=SyntheticParams(cascade_rate=0.1))
    blocks = [src.next_block() for _ in range(600)]
    assert any(liq for b in blocks for ts in b.trades.values() for *_x, liq in ts)
    path = tmp_path / "synthetic.gz"
    write_blocks(path, blocks, specs)
    replay = ReplaySource(path, coins=["BTC", "ETH", "SOL"])
    back = drain(replay)
    assert [b.time_ms for b in back] == [b.time_ms for b in blocks]
    assert [b.books for b in back] == [b.books for b in blocks]
    assert [b.trades for b in back] == [b.trades for b in blocks]
    assert replay.stats["other_channels"] == 600


def test_coin_filter_and_reordering(tmp_path: Path) -> None:
    eth = DEFAULT_COINS["ETH"]
    path = tmp_path / "two.txt"

    def book(coin: str, t: int, bid: str, ask: str) -> bytes:
        return orjson.dumps({"channel": "l2Book", "data": {"coin": coin, "time": t, "levels": [
            [{"px": bid, "sz": "1.0", "n": 1}], [{"px": ask, "sz": "2.0", "n": 2}]]}})

    with FrameWriter(path) as w:
        w.write(1, book("BTC", 1000, "60000.0", "60001.0"))
        w.write(2, book("BTC", 1500, "60001.0", "60002.0"))
        w.write(3, book("ETH", 1000, "3000.0", "3000.1"))  # late, still inside the reorder window
        w.write(4, book("ETH", 1500, "3000.1", "3000.2"))
        w.write(5, book("ETH", 1200, "3000.1", "3000.2"))  # older than ETH's last snapshot: stale
        w.write(6, book("BTC", 4000, "60003.0", "60004.0"))
        w.write(7, book("ETH", 1700, "3000.1", "3000.2"))  # after the released blocks: still in order
    src = ReplaySource(path)
    blocks = drain(src)
    assert src.stats["stale_books"] == 1 and src.stats["late_books"] == 0
    assert [b.time_ms for b in blocks] == [1000, 1500, 1700, 4000]
    assert sorted(blocks[0].books) == ["BTC", "ETH"] and sorted(blocks[1].books) == ["BTC", "ETH"]
    assert blocks[0].books["ETH"] == ([(300000, 1.0, 1)], [(300010, 2.0, 2)])

    only_eth = ReplaySource(path, coins=["ETH"])
    assert only_eth.coins == [eth]
    assert [sorted(b.books) for b in drain(only_eth)] == [["ETH"], ["ETH"], ["ETH"]]
    with pytest.raises(ValueError, match="none of the requested coins"):
        ReplaySource(path, coins=["SOL"])


def test_bad_input_is_counted_not_raised(tmp_path: Path, caplog) -> None:
    path = tmp_path / "bad.txt"
    good = real_frames()[0][1]
    lines = [
        b"not a frame line",
        b'10 {"channel":"l2Book","data":',  # bad JSON
        b'11 {"channel":"l2Book","data":{"coin":"BTC"}}',  # missing fields
        b'12 {"channel":"subscriptionResponse","data":{}}',
        b'13 {"channel":"l2Book","data":{"coin":"BTC","time":5,"levels":[[{"px":"60001.0","sz":"1","n":1}],'
        b'[{"px":"60000.0","sz":"1","n":1}]]}}',  # crossed
        b'14 {"channel":"l2Book","data":{"coin":"BTC","time":6,"levels":[[{"px":"60000.5","sz":"1","n":1}],'
        b'[{"px":"60002.0","sz":"1","n":1}]]}}',  # 6 significant figures
        b'15 {"channel":"trades","data":[{"coin":"BTC","side":"X","px":"60000.0","sz":"1","time":1}]}',
        b"16 " + orjson.dumps(good),
        b'17 {"channel":"l2Book","data":{"coin":"BTC","time":1,"levels":[[],[]]}}',  # stale
        b'18 {"channel":"l2Book","data":{"coin":"DOGE","time":1,"levels":[[],[]]}}',  # not replayed
    ]
    path.write_bytes(b"\n".join(lines) + b"\n")
    with caplog.at_level(logging.WARNING):
        src = ReplaySource(path)
        blocks = drain(src)
    assert len(blocks) == 1 and blocks[0].books["BTC"][0][0] == (1050550, 3.03622, 5)
    s = src.stats
    assert s["bad_json"] == 1 and s["bad_frames"] == 1 and s["other_channels"] == 1
    assert s["invalid_books"] == 2 and s["invalid_trades"] == 1 and s["stale_books"] == 1
    assert s["other_coins"] == 1 and src.malformed_lines == 1


def test_replay_of_unknown_coin_needs_a_spec(tmp_path: Path) -> None:
    path = tmp_path / "x.txt"
    path.write_text('1 {"channel":"l2Book","data":{"coin":"DOGE","time":1,"levels":[[],[]]}}\n')
    with pytest.raises(ValueError, match="no coin spec"):
        ReplaySource(path)
    src = ReplaySource(path, specs={"DOGE": CoinSpec("DOGE", 0, 10)})
    assert [b.books for b in drain(src)] == [{"DOGE": ([], [])}]
