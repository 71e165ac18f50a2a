"""The backtester: the live engine's code over the in-process simulated venue."""

from __future__ import annotations

import io
import json
import math
import os
from contextlib import redirect_stdout
from dataclasses import replace
from decimal import Decimal

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hlfast import simfeed
from hlfast.backtest import (
    Backtest,
    Options,
    frames_from,
    load_frames,
    main,
    run_ab_impulse,
    run_backtest,
    synthetic_frames,
    with_impulse,
)
from hlfast.config import load_config
from hlfast.convert import main as convert_main
from hlfast.report import compare
from hlfast.simvenue import SimClock, SimVenue
from hlfast.venue.market import DEFAULT_COINS
from tests.reference import simfeed as ref

BTC = DEFAULT_COINS["BTC"]
FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")
HL_RECORDING = os.path.join(FIXTURES, "hl_recorded_btc_20250126.gz")
T0 = 1_700_000_000_000_000_000  # ns
WALL_KEYS = {"wall_s", "events_per_s", "speed_up", "speedup", "load_s"}


def book_frame(t_ns: int, best_bid: int, best_ask: int, sz: str = "1.0", depth: int = 5) -> tuple[int, bytes]:
    """A symmetric BTC l2Book frame: `depth` levels a side, one dollar apart, `sz` each."""
    def side(p0: int, step: int) -> list[dict]:
        return [{"px": f"{p0 + i * step}.0", "sz": sz, "n": 1} for i in range(depth)]

    data = {"coin": "BTC", "time": t_ns // 1_000_000, "levels": [side(best_bid, -1), side(best_ask, 1)]}
    return t_ns, orjson.dumps({"channel": "l2Book", "data": data})


def pinned_config(**quoting: object) -> object:
    """One level a side, 0.001 BTC, and a 50 bp floor that dominates the GLFT depth (~5 bp), so the
    quote is floor_valid(mid·(1 − 0.005)) / ceil_valid(mid·(1 + 0.005)) and can be worked out by hand."""
    q = {"levels": 1, "target_size": 0.001, "min_spread_bps": 50.0, **quoting}
    return load_config(None, env={}, overrides={"quoting": q})


@pytest.fixture(scope="module")
def synthetic():
    return synthetic_frames("BTC", seed=3, seconds=60.0, block_ms=100)


@pytest.fixture(scope="module")
def active_config():
    """Default strategy with quotes close enough to the touch that both A/B arms get fills."""
    return load_config(None, env={}, overrides={"quoting": {"half_spread_mult": 0.2, "levels": 5}})


def run_twice_equal(cfg, data, opt):
    a = run_backtest(cfg, data, BTC, opt)
    b = run_backtest(cfg, data, BTC, opt)
    return a, b


# ---------------------------------------------------------------------------------------------------
def test_hand_built_sequence_gives_the_fills_and_pnl_worked_out_by_hand():
    # t=0 book 100000/100001 (mid 100000.5): bid floor(99500.4975) = 99500 (tick 1 below 100000),
    #   ask ceil(100500.5025) on the 10-tick grid above 100000 = 100510.
    # t=1 the market drops to 99400/99401: the snapshot's asks cross our bid -> bought 0.001 at 99500
    #   (maker).  The engine re-quotes around 99400.5: ask ceil(99897.5025) = 99898.
    # t=2 the market is back at 100000/100001: its bids cross our ask -> sold 0.001 at 99898.
    frames = [book_frame(T0 + k * 1_000_000_000, b, a)
              for k, (b, a) in enumerate([(100000, 100001), (99400, 99401), (100000, 100001), (100000, 100001)])]
    bt = run_backtest(pinned_config(), frames_from(frames), BTC, Options(latency_ms=10.0))
    fills = [(f.side, f.px, f.sz, f.crossed) for f in bt.sim.fills]
    assert fills == [(1, 99500.0, 0.001, False), (-1, 99898.0, 0.001, False)]
    assert [round(f.t - T0 / 1e9, 6) for f in bt.sim.fills] == [1.0, 2.0]
    realised = (99898 - 99500) * 0.001
    fees = 0.00015 * (99500 * 0.001 + 99898 * 0.001)
    s = bt.summary
    assert s["pnl_realised"] == pytest.approx(realised, abs=1e-9)
    assert s["fees"] == pytest.approx(fees, abs=1e-6)
    assert s["pnl"] == pytest.approx(realised - fees, abs=1e-6)
    assert s["position"] == 0.0 and s["fills_by_side"] == {"buy": 1, "sell": 1}
    assert s["volume"] == pytest.approx(99.5 + 99.898)
    # the engine's own order state machine booked the same two fills
    assert bt.engine.orders.fills == 2 and bt.engine.orders.position == 0.0
    assert bt.engine.orders.realized_pnl == pytest.approx(realised)


def test_a_quote_rests_only_from_send_time_plus_latency():
    # the order for the t=0 book is sent at t=0; the crossing snapshot comes 100 ms later
    frames = [book_frame(T0, 100000, 100001), book_frame(T0 + 100_000_000, 99400, 99401),
              book_frame(T0 + 1_000_000_000, 99400, 99401)]
    slow = run_backtest(pinned_config(), frames_from(frames), BTC, Options(latency_ms=150.0))
    fast = run_backtest(pinned_config(), frames_from(frames), BTC, Options(latency_ms=50.0))
    assert [f.px for f in fast.sim.fills] == [99500.0]
    assert slow.sim.fills == []  # not at the venue yet when the market went through its price
    # the engine learns of the fill one latency after the venue booked it
    assert fast.engine.orders.fills == 1


def oscillating_market(n: int = 17) -> list[tuple[int, bytes]]:
    """Books stepping 60 bp down, back, up, back, once a second: every step fills one pinned quote."""
    pattern = [(100000, 100001), (99400, 99401), (100000, 100001), (100600, 100601)]
    return [book_frame(T0 + k * 1_000_000_000, *pattern[k % 4]) for k in range(n)]


def test_ledger_reconciles_exactly_with_the_list_of_fills():
    bt = run_backtest(pinned_config(), frames_from(oscillating_market()), BTC, Options(latency_ms=10.0))
    fills = bt.sim.fills
    assert len(fills) >= 12 and {f.side for f in fills} == {1, -1}
    lot = Decimal("0.00001")
    position = sum(Decimal(str(f.sz)) * f.side for f in fills)
    cash = -sum(Decimal(str(f.px)) * Decimal(str(f.sz)) * f.side for f in fills)
    fees = sum(Decimal(str(f.fee)) for f in fills)
    acct = bt.sim.ledger_account
    assert Decimal(acct.positions["BTC"].szi) * lot == position
    assert acct.fees_paid == pytest.approx(float(fees), abs=1e-6 * len(fills))
    # the engine's exact (Decimal) accounting from the userFills it received equals the fill list
    exact = bt.engine.orders.exact()
    assert exact["position"] == position
    assert exact["fees"] == fees
    assert exact["cash"] == cash - fees
    # the venue's PnL identity: realised − fees + unrealised at the mid == cash + position · mid
    # (fill rows carry fees rounded to 1e-6 USD, the venue ledger keeps them unrounded)
    mid = bt.sim.book.mid
    assert bt.summary["pnl"] == pytest.approx(float(cash - fees) + float(position) * mid, abs=1e-6 * len(fills))
    assert bt.summary["fills"] == len(fills)


def test_same_inputs_give_the_same_results(synthetic, active_config):
    opt = Options(latency_ms=20.0, cascade="liquidations")
    a, b = run_twice_equal(active_config, synthetic, opt)
    strip = lambda s: {k: v for k, v in s.items() if k not in WALL_KEYS}  # noqa: E731
    assert strip(a.summary) == strip(b.summary)
    assert [(f.t, f.side, f.px, f.sz) for f in a.sim.fills] == [(f.t, f.side, f.px, f.sz) for f in b.sim.fills]
    assert a.log.actions == b.log.actions
    assert a.summary["fills"] > 0 and a.summary["actions_total"] > 0
    # nonces come from the simulated clock: within the data's time span
    nonce = a.engine.signer.last_nonce
    assert synthetic.frames[0][0] // 1_000_000 <= nonce <= synthetic.frames[-1][0] // 1_000_000 + 10_000


def test_skipping_the_venue_for_trades_that_reach_none_of_our_orders_changes_nothing(synthetic, active_config):
    opt = Options(latency_ms=20.0, cascade="liquidations")
    fast = Backtest(active_config, synthetic, BTC, opt)
    fast.summary = fast.run()
    full = Backtest(active_config, synthetic, BTC, replace(opt, fast_path=False))
    full.sim._may_fill = lambda side, px: True  # every trade through MatchingEngine.on_block
    full.summary = full.run()
    assert [(f.t, f.side, f.px, f.sz) for f in fast.sim.fills] == [(f.t, f.side, f.px, f.sz) for f in full.sim.fills]
    assert fast.log.actions == full.log.actions
    assert fast.summary["pnl"] == full.summary["pnl"]


def test_impulse_ab_on_synthetic_data_sends_fewer_actions_with_the_filter_on(synthetic, active_config):
    runs = run_ab_impulse(active_config, synthetic, BTC, Options(latency_ms=20.0, cascade="liquidations"))
    on, off = runs["on"].summary, runs["off"].summary
    assert on["impulse_enabled"] and not off["impulse_enabled"]
    assert on["actions_total"] < off["actions_total"]
    imp = on["impulse"]
    assert imp["filter_skipped"] + imp["locked"] + imp["budget_skipped"] > 0
    assert off["impulse"]["filter_skipped"] == off["impulse"]["locked"] == off["impulse"]["budget_skipped"] == 0
    c = compare(on, off)
    assert 0.0 < c["actions_reduction"] <= 1.0
    assert c["actions_reduction"] == pytest.approx(1 - on["actions_total"] / off["actions_total"], abs=1e-4)


def test_summary_has_the_documented_keys_and_consistent_counts(synthetic, active_config):
    bt = run_backtest(active_config, synthetic, BTC, Options(latency_ms=20.0, cascade="liquidations"))
    s = bt.summary
    for key in ("pnl", "fees", "fills", "volume", "actions", "actions_per_min", "impulse", "events",
                "events_per_s", "speedup", "fill_rate_by_level", "adverse_selection", "sharpe", "inventory"):
        assert key in s, key
    assert sum(s["actions"].values()) == s["actions_total"] == len(bt.log.actions)
    assert s["actions_per_min"] == pytest.approx(s["actions_total"] / (s["market_s"] / 60), rel=1e-3)
    assert s["fills_by_side"]["buy"] + s["fills_by_side"]["sell"] == s["fills"]
    assert s["events"] == len(synthetic.frames)
    assert sum(v["quotes"] for v in s["fill_rate_by_level"].values()) == s["quotes"]
    assert s["inventory"]["max_abs"] >= s["inventory"]["mean_abs"] >= 0.0
    assert sum(c["n"] for c in s["calibration"]) <= s["quotes"]
    assert set(s["adverse_selection"]) == {"1s", "10s"}
    assert math.isfinite(s["sharpe"])


def test_bad_frames_are_counted_and_the_run_goes_on():
    frames = [book_frame(T0, 100000, 100001), (T0 + 1, b'{"channel":"l2Book","data":{"coin":"BTC"}}'),
              (T0 + 2, b"not json"), (T0 + 3, b'{"channel":"trades","data":[{"coin":"BTC","side":"X"}]}'),
              book_frame(T0 + 1_000_000_000, 100000, 100001)]
    bt = run_backtest(pinned_config(), frames_from(frames), BTC, Options(latency_ms=10.0))
    assert bt.sim.stats.bad_frames == 3
    assert bt.summary["venue"]["resting_at_end"] == 2  # still quoting both sides


def test_cli_json_on_the_real_recording(capsys):
    assert main(["--data", HL_RECORDING, "--json", "--no-progress", "--latency-ms", "20"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["coin"] == "BTC" and out["events"] == 55
    assert out["actions_total"] > 0 and out["latency_ms"] == 20.0
    assert out["venue"]["item_errors"] == 0 and out["engine"]["rejects"] == 0


def test_cli_ab_and_out_dir(tmp_path):
    buf = io.StringIO()
    with redirect_stdout(buf):
        rc = main(["--data", HL_RECORDING, "--ab", "impulse", "--out", str(tmp_path), "--no-progress"])
    assert rc == 0
    text = buf.getvalue()
    assert "ON" in text and "OFF" in text and "fewer with the filter on" in text
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert set(summary) == {"on", "off", "comparison"}
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return
    assert (tmp_path / "on_quotes.png").stat().st_size > 0
    assert (tmp_path / "off_fill_calibration.png").stat().st_size > 0


def test_cli_errors_are_clear(tmp_path, capsys):
    assert main(["--data", str(tmp_path / "missing.gz")]) == 2
    assert "not found" in capsys.readouterr().err


def test_signed_mode_verifies_every_action_in_the_venue():
    frames = [book_frame(T0 + k * 1_000_000_000, b, a)
              for k, (b, a) in enumerate([(100000, 100001), (99400, 99401), (100000, 100001)])]
    cfg = pinned_config()
    signed = run_backtest(cfg, frames_from(frames), BTC, Options(latency_ms=10.0, sign=True))
    plain = run_backtest(cfg, frames_from(frames), BTC, Options(latency_ms=10.0))
    assert signed.sim.stats.action_errors == 0 and signed.engine.signer.signed > 0
    assert [(f.side, f.px) for f in signed.sim.fills] == [(f.side, f.px) for f in plain.sim.fills]
    assert replace(Options(), sign=True).sign


def test_impulse_toggle_only_changes_the_impulse_section():
    cfg = load_config(None, env={})
    assert with_impulse(cfg, False).impulse.enabled is False
    assert with_impulse(cfg, False).quoting == cfg.quoting


# ---------------------------------------------------------------------------------------------------
# The venue's fast path (hlfast.simfeed scanner) against its general path (decode + venue code)
# ---------------------------------------------------------------------------------------------------
BINANCE_HEAD = os.path.join(FIXTURES, "binance_btcusdt_20240808_head3000.gz")
ACCOUNT = "0x" + "ab" * 20


@pytest.fixture(scope="module")
def converted_binance(tmp_path_factory):
    out = tmp_path_factory.mktemp("conv") / "btc100.gz"
    with redirect_stdout(io.StringIO()):
        assert convert_main(["--in", BINANCE_HEAD, "--out", str(out), "--cadence-ms", "100"]) == 0
    return load_frames(str(out))


def test_scanner_reads_every_real_frame_exactly_as_the_venue_decodes_it(converted_binance):
    recorded = load_frames(HL_RECORDING)
    scanner = simfeed.FrameScanner("BTC", BTC.sz_decimals)
    counts = {simfeed.TRADES: 0, simfeed.BOOK: 0}
    for _ns, raw in recorded.frames + converted_binance.frames:
        kind = scanner.scan(raw)
        assert kind in (simfeed.TRADES, simfeed.BOOK), raw[:120]  # the recorder's form is always taken
        counts[kind] += 1
        if kind == simfeed.TRADES:
            rows, time_ms = ref.read_trades(raw, "BTC", BTC.sz_decimals)
            assert [scanner.trade(i) for i in range(scanner.n_trades)] == rows
            assert scanner.time_ms == time_ms and scanner.last_px == rows[-1][1]
        else:
            bids, asks, time_ms = ref.read_book(raw, "BTC", BTC.sz_decimals)
            assert [scanner.level(0, i) for i in range(scanner.n_bids)] == bids
            assert [scanner.level(1, i) for i in range(scanner.n_asks)] == asks
            assert scanner.time_ms == time_ms
    assert counts[simfeed.TRADES] > 100 and counts[simfeed.BOOK] > 20


@pytest.mark.parametrize("raw", [
    b'{"channel": "trades","data":[{"coin":"BTC","px":"1.0","side":"B","sz":"1.0","time":1}]}',  # whitespace
    b'{"channel":"trades","data":[{"coin":"BTC","px":"1.0","side":"B","sz":"0.000001","time":1}]}',  # 6 dp
    b'{"channel":"trades","data":[{"coin":"BTC","px":"1.0","side":"B","sz":"0.0","time":1}]}',  # size 0
    b'{"channel":"trades","data":[{"coin":"ETH","px":"1.0","side":"B","sz":"1.0","time":1}]}',  # other coin
    b'{"channel":"trades","data":[{"coin":"BTC","px":"1e5","side":"B","sz":"1.0","time":1}]}',  # exponent
    b'{"channel":"trades","data":[{"coin":"BTC","px":"1.0","side":"B","sz":"1.0","time":"1"}]}',  # time text
    b'{"channel":"trades","data":[{"coin":"BTC","coin":"BTC","px":"1.0","side":"B","sz":"1.0","time":1}]}',
    b'{"channel":"trades","data":[]}',
    b'{"channel":"l2Book","data":{"coin":"\\u0042TC","time":1,"levels":[[],[]]}}',  # escape
    b'{"channel":"l2Book","data":{"coin":"BTC","time":1,"levels":[[{"px":"2.0","sz":"1","n":1}],'
    b'[{"px":"2.0","sz":"1","n":1}]]}}',  # crossed
    b'{"channel":"l2Book","data":{"coin":"BTC","time":1,"levels":[[{"px":"1.0","sz":"1","n":1},'
    b'{"px":"2.0","sz":"1","n":1}],[]]}}',  # bids not sorted
    b'{"channel":"l2Book","data":{"coin":"BTC","time":1,"levels":[[{"px":"1.0","sz":"1","n":1.0}],[]]}}',
    b'{"channel":"l2Book","data":{"coin":"BTC","time":1,"levels":[[],[],[]]}}',
    b'{"channel":"l2Book","data":{"coin":"BTC","time":1,"levels":[[],[]]}} ',
    b'{"channel":"bbo","data":{}}',
    "not bytes",
])
def test_scanner_leaves_every_other_form_to_the_general_path(raw):
    assert simfeed.FrameScanner("BTC", 5).scan(raw) == simfeed.OTHER


@settings(deadline=None, max_examples=300)
@given(st.integers(min_value=-(10**15), max_value=10**15), st.integers(min_value=0, max_value=8))
def test_c_formatting_of_scaled_integers_matches_the_venue(value, decimals):
    assert simfeed.format_scaled(value, decimals) == ref.format_scaled(value, decimals)


# ---- twin venues: the same frames through the fast path and the general path ----
def venue_state(sim: SimVenue) -> dict:
    book = sim.book
    orders = [(side, px, [(o.oid, o.sz, o.queue_ahead) for o in fifo])
              for side in (0, 1) for px, fifo in sorted(book.levels[side].items())]
    acct = sim.ledger_account
    return {"market": book.market, "prev": book.prev_display, "traded": book.traded_at, "mid": book.mid,
            "last_trade_px": book.last_trade_px, "time_ms": book.time_ms, "now_ms": sim.matching.now_ms,
            "block_time_ms": sim.venue.block_time_ms, "orders": orders, "stats": sim.stats,
            "has_book": sim.has_book, "to_engine": list(sim.to_engine), "fills": sim.fills,
            "ledger": (acct.realised_pnl, acct.fees_paid, {c: p.szi for c, p in acct.positions.items()})}


def level_text(px_dollars: float, sz: str, n: object) -> dict:
    return {"px": f"{px_dollars:.1f}", "sz": sz, "n": n}


SIZES = st.sampled_from(["0.001", "1.5", "0.12345", "2", "0.0", "10.10", "0.0000001", "3.000000"])
MUTATIONS = st.sampled_from([None] * 8 + ["space", "coin", "time_text", "extra_key", "unsorted", "crossed",
                                          "n_float", "deep"])


@st.composite
def book_frames(draw, mid: int) -> bytes:
    mutation = draw(MUTATIONS)
    n_bids = draw(st.integers(0, 22 if mutation == "deep" else 20))
    n_asks = draw(st.integers(0, 22 if mutation == "deep" else 20))
    step = draw(st.sampled_from([0.5, 1.0, 2.0]))
    shift = draw(st.integers(-25, 25))
    bid0, ask0 = mid + shift, mid + shift + draw(st.sampled_from([0.5, 1.0, 3.0]))
    bids = [level_text(bid0 - i * step, draw(SIZES), draw(st.integers(0, 9))) for i in range(n_bids)]
    asks = [level_text(ask0 + i * step, draw(SIZES), draw(st.integers(0, 9))) for i in range(n_asks)]
    if mutation == "unsorted" and len(bids) > 1:
        bids[0], bids[1] = bids[1], bids[0]
    if mutation == "crossed" and bids and asks:
        asks[0]["px"] = bids[0]["px"]
    if mutation == "n_float" and asks:
        asks[-1]["n"] = 2.0
    data: dict = {"coin": "ETH" if mutation == "coin" else "BTC", "levels": [bids, asks],
                  "time": draw(st.integers(1, 10**13))}
    if mutation == "time_text":
        data["time"] = str(data["time"])
    if mutation == "extra_key":
        data["spread"] = "1.0"
    raw = orjson.dumps({"channel": "l2Book", "data": data})
    return raw.replace(b'":', b'": ') if mutation == "space" else raw


@st.composite
def trade_frames(draw, mid: int) -> bytes:
    rows = []
    for _ in range(draw(st.integers(1, 3))):
        rows.append({"coin": draw(st.sampled_from(["BTC"] * 9 + ["ETH"])),
                     "side": draw(st.sampled_from(["B", "A", "B", "A", "X"])),
                     "px": f"{mid + draw(st.integers(-30, 30)) / 2:.1f}", "sz": draw(SIZES),
                     "time": draw(st.integers(1, 10**13)), "hash": "0x00", "tid": 7, "users": ["0x1", "0x2"]})
    return orjson.dumps({"channel": "trades", "data": rows})


@st.composite
def scenarios(draw):
    mid = draw(st.integers(60_000, 110_000))
    orders = draw(st.lists(st.tuples(st.booleans(), st.integers(-30, 30), st.integers(20, 400)), max_size=12))
    frames = draw(st.lists(st.one_of(book_frames(mid), trade_frames(mid)), min_size=1, max_size=5))
    return mid, orders, frames


def twin_venues(queue_model: str) -> list[SimVenue]:
    return [SimVenue(BTC, ACCOUNT, latency_ms=1.0, queue_model=queue_model, fast_path=fast,
                     clock=SimClock(T0)) for fast in (True, False)]


@settings(deadline=None, max_examples=250)
@given(scenarios(), st.sampled_from(["risk_averse", "probabilistic"]))
def test_fast_and_general_paths_leave_the_venue_in_the_same_state(scenario, queue_model):
    mid, orders, frames = scenario
    venues = twin_venues(queue_model)
    first = book_frame(T0, mid, mid + 1, sz="0.5", depth=20)[1]
    for sim in venues:
        sim.on_market_frame(first)
        for is_buy, offset, lots in orders:  # Gtc: orders that cross take the market levels
            wire = {"a": 0, "b": is_buy, "p": str(mid + offset), "s": f"{lots / 1e5:.5f}", "r": False,
                    "t": {"limit": {"tif": "Gtc"}}}
            sim.matching.place(sim.account, wire, T0 // 1_000_000)
        sim._after_event()
    assert venue_state(venues[0]) == venue_state(venues[1])
    for k, raw in enumerate(frames):
        outs = []
        for sim in venues:
            sim.clock.now_ns = T0 + (k + 1) * 1_000_000
            outs.append(sim.on_market_frame(raw))
        assert outs[0] == outs[1]
        assert venue_state(venues[0]) == venue_state(venues[1])


def test_fast_path_handles_the_rows_the_general_path_would(converted_binance, active_config):
    # the converted capture with quotes near the touch: fills, merged books and crossing snapshots
    opt = Options(latency_ms=20.0, cascade="liquidations", quiet_runs=False)  # every frame through Python
    runs = []
    for fast in (True, False):
        bt = Backtest(active_config, converted_binance, BTC, replace(opt, fast_path=fast))
        seen: list[bytes] = []
        on_market = bt.engine._on_market_frame
        bt.engine._on_market_frame = lambda raw, ns, cycle, seen=seen, f=on_market: (seen.append(raw),
                                                                                     f(raw, ns, cycle))
        bt.summary = bt.run()
        runs.append((bt, seen))
    (fast, fast_seen), (full, full_seen) = runs
    assert fast_seen == full_seen  # every frame the engine got, byte for byte
    assert fast.sim.stats == full.sim.stats and fast.sim.stats.merged_books > 0
    assert [(f.t, f.side, f.px, f.sz, f.fee, f.oid) for f in fast.sim.fills] == \
        [(f.t, f.side, f.px, f.sz, f.fee, f.oid) for f in full.sim.fills]
    assert fast.log.actions == full.log.actions
    strip = lambda s: {k: v for k, v in s.items() if k not in WALL_KEYS}  # noqa: E731
    assert strip(fast.summary) == strip(full.summary)


@pytest.mark.parametrize("interval_s", [2.0, 10.0])
def test_account_sync_interval_is_the_configured_one(synthetic, interval_s):
    cfg = load_config(None, env={}, overrides={"engine": {"account_sync_s": interval_s}})
    bt = Backtest(cfg, synthetic, BTC, Options(progress=False))
    synced: list[float] = []
    sync = bt.engine._sync_account
    bt.engine._sync_account = lambda initial=False: (synced.append(bt.clock.now_ns / 1e9), sync(initial))
    bt.run()
    periodic = [b - a for a, b in zip(synced[1:], synced[2:], strict=False)]  # after the start-up sync
    assert periodic and all(interval_s <= gap < interval_s + 0.2 for gap in periodic), periodic


@pytest.mark.parametrize("which", ["capture", "synthetic"])
def test_quiet_runs_in_c_change_nothing(which, converted_binance, synthetic, active_config):
    # runs of quiet trade frames through venue and pipeline in C (QuietRunner) vs every frame in Python
    data = converted_binance if which == "capture" else synthetic
    runs = []
    for quiet in (True, False):
        bt = Backtest(active_config, data, BTC, Options(latency_ms=20.0, cascade="liquidations", quiet_runs=quiet))
        bt.summary = bt.run()
        runs.append(bt)
    fast, slow = runs
    strip = lambda s: {k: v for k, v in s.items() if k not in WALL_KEYS}  # noqa: E731
    assert strip(fast.summary) == strip(slow.summary)
    assert fast.log.actions == slow.log.actions and fast.sim.stats == slow.sim.stats
    assert [(f.t, f.side, f.px, f.sz, f.oid) for f in fast.sim.fills] == \
        [(f.t, f.side, f.px, f.sz, f.oid) for f in slow.sim.fills]
    assert fast.summary["actions_total"] > 0 and (fast.summary["fills"] > 0 or which == "capture")
    assert fast.engine.pipeline.md_frames == slow.engine.pipeline.md_frames == fast.summary["events"]
    assert fast.quiet_frames > 0 and slow.quiet_frames == 0
