"""`hlfast backtest`: replay recorded frames through the live engine's own loop code and kernels.

The engine under test is :class:`hlfast.engine.Engine` itself: market frames go through its
``_on_market_frame`` (FrameRouter → Pipeline: book → estimators → quote → reconcile, in C), actions
through its ``_send_actions`` (OrderStateMachine, Signer builders, Gateway), replies and user events
through ``_on_user_frame`` and its housekeeping (risk, account sync) on the simulated clock.  Only
the transport is replaced: an in-process :class:`hlfast.simvenue.SimVenue` (the local venue's
matching, queue and ledger code) with order latency both ways.  Nothing in the simulated path reads
the wall clock, so the same inputs give the same results; the wall clock only times the run.
"""

from __future__ import annotations

import argparse
import gc
import logging
import math
import os
import sys
import time
from array import array
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any, TextIO

import orjson

from hlfast.config import Config, ConfigError, load_config
from hlfast.engine import Engine
from hlfast.estimators import CascadeDetector
from hlfast.keys import PrivateKey
from hlfast.pipeline import Pipeline
from hlfast.recording import iter_frames
from hlfast.replay import STOP_BEFORE, STOP_END, STOP_ENGINE, QuietRunner
from hlfast.signer import Signer
from hlfast.simvenue import SIGNATURE_PLACEHOLDER, SimClock, SimConnection, SimGateway, SimHttp, SimVenue
from hlfast.venue.ledger import Fees
from hlfast.venue.market import DEFAULT_COINS, CoinSpec
from hlfast.venue.replay import scan_coins
from hlfast.venue.synthetic import SyntheticParams, SyntheticSource

log = logging.getLogger("hlfast.backtest")

# A fixed throw-away key: the simulated venue funds it; nothing leaves the process.
BACKTEST_KEY_HEX = "0x" + "5a" * 32
DEFAULT_LATENCY_MS = 50.0
DEFAULT_BURST_US = 50.0
SAMPLE_S = 1.0  # PnL / inventory path sampling period (simulated seconds)
MARKOUT_HORIZONS_S = (1.0, 10.0)
PROGRESS_EVERY_S = 0.5
INF_NS = 1 << 62
CASCADE_MODES = ("engine", "liquidations")
NO_FALLBACK_TRADES = 1 << 62  # quantile_min_trades that never arrives: no p99-notional fallback events


class UnsignedSigner(Signer):
    """The engine's Signer with the secp256k1 signature replaced by a placeholder.

    Action building, nonces (from the simulated clock) and payload layout are the real ones; only the
    ~70 us elliptic-curve signature is skipped, since the in-process venue does not verify it."""

    def _sign_packed(self, packed: bytes, nonce: int, expires_after: int | None) -> dict:
        self.signed += 1
        return dict(SIGNATURE_PLACEHOLDER)


class BacktestEngine(Engine):
    """The live Engine with its sockets swapped for the simulated venue (composition, not a rewrite)."""

    def __init__(self, cfg: Any, key: PrivateKey, sim: SimVenue, *, sign: bool = False,
                 cascade: str = "engine",
                 on_sent: Callable[[float, str, int, object], None] | None = None) -> None:
        if cascade not in CASCADE_MODES:
            raise ValueError(f"cascade must be one of {CASCADE_MODES}, got {cascade!r}")
        self.cascade_mode = cascade
        clock = sim.clock
        super().__init__(cfg, key, base_url="http://sim.invalid", clock=clock.seconds)
        signer_cls = Signer if sign else UnsignedSigner
        self.signer = signer_cls(key, is_mainnet=False, vault_address=cfg.exchange.vault_address or None,
                                 clock_ms=clock.ms)
        self.sim = sim
        self.http = SimHttp(sim)
        self.md = SimConnection("market", None)
        self.oc = SimConnection("orders", sim)
        self.conns = ()  # in process: no connection to keep alive, flush or reconnect
        self.poller = None
        self.gateway = SimGateway(self.oc, self.http, clock.seconds, post_timeout_s=cfg.exchange.post_timeout_s,
                                  on_sent=on_sent)

    def _build_kernels(self) -> None:
        super()._build_kernels()
        if self.cascade_mode == "engine":
            return
        # What-if: the same pipeline and kernels, but a cascade detector fed by flagged liquidations only
        # (its p99-notional fallback disabled).  Off by default: the default run is the live engine's.
        p = self.pipeline
        self.pipeline = Pipeline(
            p.book, quoter=p.quoter, reconciler=p.reconciler, tape=p.tape, router=p.router, vol=p.vol,
            drift=p.drift, fill_intensity=p.fill_intensity,
            cascade=CascadeDetector(quantile_min_trades=NO_FALLBACK_TRADES), latency=p.latency,
            target=p.target, calibration=p.calibration, gamma=p.gamma_base, sigma_ref=p.sigma_ref,
            fee_maker=p.fee_maker, min_spread=p.min_spread, horizon=p.horizon,
            half_spread_mult=p.half_spread_mult, skew_mult=p.skew_mult, glft_mode=self.cfg.quoting.glft_mode,
            user_cap=p.user_cap, max_position=p.max_position)

    def on_user(self, raw: bytes, recv_ns: int) -> None:
        self._on_user_frame(raw, recv_ns)

    def tick_housekeeping(self, now: float) -> None:
        if now >= self._next["hk"]:
            self._housekeeping(now)


def backtest_config(cfg: Config) -> Config:
    """The config the backtest runs with: no dead-man's switch traffic, no exporter, no status line."""
    return replace(cfg, engine=replace(cfg.engine, dead_man_s=0.0, status_interval_s=0.0, gc_mode="on"),
                   metrics=replace(cfg.metrics, enabled=False))


# ---------------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------------
@dataclass
class MarketData:
    frames: list[tuple[int, bytes]]
    path: str
    load_s: float
    malformed_lines: int

    @property
    def span_s(self) -> float:
        return (self.frames[-1][0] - self.frames[0][0]) / 1e9 if len(self.frames) > 1 else 0.0


def load_frames(path: str) -> MarketData:
    """All frames of a recording (``hlfast record`` / ``hlfast convert`` format), in file order."""
    if not os.path.exists(path):
        raise ValueError(f"data file not found: {path}")
    t0 = time.perf_counter()
    reader = iter_frames(path)
    frames = list(reader)
    if not frames:
        raise ValueError(f"{path} holds no frames")
    return MarketData(frames, path, time.perf_counter() - t0, reader.malformed)


def synthetic_frames(coin: str = "BTC", seed: int = 1, seconds: float = 120.0, block_ms: int = 100,
                     start_ms: int = 1_735_689_600_000, params: SyntheticParams | None = None) -> MarketData:
    """A seeded synthetic market (hlfast.venue.synthetic) as recorded frames: per block, one ``trades``
    frame (the block's trades) 1 ms before its ``l2Book`` snapshot, stamped with the block time."""
    from hlfast.venue.market import LIQUIDATOR_ADDRESS, px_to_wire, sz_to_wire

    spec = DEFAULT_COINS[coin]
    source = SyntheticSource([spec], seed=seed, block_ms=block_ms, start_ms=start_ms, params=params)
    crowd = "0x" + "11" * 20
    frames: list[tuple[int, bytes]] = []
    tid = 0
    for _ in range(max(1, int(seconds * 1000 / block_ms))):
        block = source.next_block()
        t_ns = block.time_ms * 1_000_000
        rows = []
        for side, px, sz, liquidation in block.trades[coin]:
            tid += 1
            users = [crowd, LIQUIDATOR_ADDRESS] if liquidation else [crowd, crowd]
            rows.append({"coin": coin, "side": side, "px": px_to_wire(px, spec), "sz": sz_to_wire(sz, spec),
                         "time": block.time_ms, "hash": f"0x{tid:064x}", "tid": tid, "users": users})
        if rows:
            frames.append((t_ns - 1_000_000, orjson.dumps({"channel": "trades", "data": rows})))
        bids, asks = block.books[coin]
        levels = [[{"px": px_to_wire(px, spec), "sz": sz_to_wire(sz, spec), "n": n} for px, sz, n in side]
                  for side in (bids, asks)]
        frames.append((t_ns, orjson.dumps({"channel": "l2Book",
                                           "data": {"coin": coin, "time": block.time_ms, "levels": levels}})))
    return MarketData(frames, f"synthetic:{coin}:seed{seed}:{seconds:g}s", 0.0, 0)


def coin_spec(path: str, coin: str | None) -> CoinSpec:
    if coin is None:
        coins = scan_coins(path)
        if not coins:
            raise ValueError(f"{path}: no l2Book or trades frames to learn the coin from; pass --coin")
        coin = coins[0]
    spec = DEFAULT_COINS.get(coin)
    if spec is None:
        raise ValueError(f"unknown coin {coin!r}; known: {', '.join(DEFAULT_COINS)}")
    return spec


# ---------------------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------------------
@dataclass
class Options:
    latency_ms: float = DEFAULT_LATENCY_MS
    queue_model: str = "risk_averse"
    burst_us: float = DEFAULT_BURST_US
    deposit: float = 100_000.0
    sign: bool = False
    cascade: str = "engine"
    progress: bool = False
    label: str = ""
    fast_path: bool = True  # False: the venue decodes every frame and applies it with its own code
    quiet_runs: bool = True  # with fast_path: runs of quiet trade frames through venue and pipeline in C


@dataclass
class QuoteRecord:
    t: float  # s, sent
    side: int
    level: int  # ladder level of the target it was placed for (0 = best)
    p_fill: float  # predicted P(fill within H) of a fresh order at that price when it was sent


@dataclass
class RunLog:
    actions: list[tuple[float, str, int]] = field(default_factory=list)
    quotes: dict[str, list[QuoteRecord]] = field(default_factory=dict)  # cloid -> its quotes, in time order
    mid_t: array = field(default_factory=lambda: array("d"))
    mid: array = field(default_factory=lambda: array("d"))
    bid_q: array = field(default_factory=lambda: array("d"))  # our best bid (nan = none)
    ask_q: array = field(default_factory=lambda: array("d"))
    path_t: array = field(default_factory=lambda: array("d"))
    path_pnl: array = field(default_factory=lambda: array("d"))
    path_pos: array = field(default_factory=lambda: array("d"))


class Backtest:
    """One replay of `data` through a fresh engine and venue."""

    def __init__(self, cfg: Config, data: MarketData, spec: CoinSpec, options: Options | None = None) -> None:
        self.cfg = backtest_config(cfg)
        if self.cfg.market.coin != spec.name:
            self.cfg = replace(self.cfg, market=replace(self.cfg.market, coin=spec.name))
        self.data = data
        self.spec = spec
        self.opt = options or Options()
        self.key = PrivateKey.from_hex(BACKTEST_KEY_HEX)
        fees = Fees(maker=self.cfg.quoting.fee_maker_bps * 1e-4, taker=self.cfg.quoting.fee_taker_bps * 1e-4)
        self.clock = SimClock(data.frames[0][0])
        self.sim = SimVenue(spec, self.key.account_address, deposit=self.opt.deposit,
                            latency_ms=self.opt.latency_ms, fees=fees, queue_model=self.opt.queue_model,
                            verify_signatures=self.opt.sign, clock=self.clock, fast_path=self.opt.fast_path)
        self.log = RunLog()
        self.engine = BacktestEngine(self.cfg, self.key, self.sim, sign=self.opt.sign, cascade=self.opt.cascade,
                                     on_sent=self._on_sent)
        self.started = False
        self.events = 0
        self.quiet_frames = 0  # frames taken through venue and pipeline by QuietRunner
        self.wall_s = 0.0
        self.t_first = data.frames[0][0] / 1e9
        self.t_last = self.t_first
        self.summary: dict[str, Any] = {}

    # ---- hooks -----------------------------------------------------------------------------------
    def _on_sent(self, t: float, kind: str, n_items: int, context: object) -> None:
        self.log.actions.append((t, kind, n_items))
        if not isinstance(context, tuple) or context[0] not in ("order", "modify"):
            return
        eng = self.engine
        orders = eng.orders
        quoter = eng.quoter
        tracker = eng.reconciler.tracker
        sigma = eng.pipeline.vol.sigma_eff
        horizon = self.cfg.impulse.horizon_s
        book = eng.book
        own_sizes = eng._own_sizes()
        for cloid in context[1]:
            rec = orders.by_cloid(cloid)
            if rec is None:
                continue
            side = rec.side
            px = rec.pending_px if context[0] == "modify" and rec.pending_px else rec.px_ticks
            targets = quoter.bid_px if side > 0 else quoter.ask_px
            level = _level_of(targets, px, side)
            best_same = book.best_bid_ticks() if side > 0 else book.best_ask_ticks()
            displayed = eng._displayed_excluding_own(side, px, own_sizes)
            p = tracker.fill_probability_new(side, px, displayed, horizon, sigma, best_same)
            self.log.quotes.setdefault(cloid, []).append(QuoteRecord(t, side, level, p))

    # ---- the loop --------------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        frames = self.data.frames
        n = len(frames)
        eng, sim, clock = self.engine, self.sim, self.clock
        burst_ns = int(self.opt.burst_us * 1e3)
        next_sample = -math.inf
        progress = Progress(n, self.opt.label) if self.opt.progress else None
        gc_was = gc.isenabled()
        gc.collect()
        gc.disable()
        # per frame: a handful of Python operations besides the venue's and the engine's own work; runs of
        # quiet trade frames go through venue and pipeline in C (QuietRunner) when the fast path is on
        to_venue, to_engine = sim.to_venue, sim.to_engine
        on_market_frame, after_scan = sim.on_market_frame, sim.after_scan
        on_market, timers = eng._on_market_frame, eng._next
        sample_book, deliver_until = self._sample_book, self._deliver_until
        quiet = QuietRunner(frames, burst_ns) if self.opt.fast_path and self.opt.quiet_runs else None
        book, scanner = sim.book, sim.scanner
        chunk = 4096 if progress is not None else n
        events = 0
        i = 0
        t0 = time.perf_counter()
        try:
            while i < n:
                stop = STOP_BEFORE
                if quiet is not None and self.started:
                    due = min(to_venue[0][0] if to_venue else INF_NS, to_engine[0][0] if to_engine else INF_NS)
                    i = quiet.run(i, min(n, i + chunk), due, min(timers["hk"], next_sample), scanner,
                                  book.levels, book.traded_at, eng.pipeline)
                    if quiet.noted:
                        events += quiet.noted
                        clock.now_ns = quiet.last_ns
                        sim.trades_noted(quiet.noted)
                    stop = quiet.stop
                    if stop == STOP_END:
                        if progress is not None:
                            progress.update(i, frames[i - 1][0])
                        continue
                ns, raw = frames[i]
                if stop >= STOP_ENGINE:  # frame i went through venue and pipeline in C
                    out = raw
                    if stop == STOP_ENGINE:
                        eng._after_market_frame(quiet.n_actions, ns)
                else:
                    if stop == STOP_BEFORE:
                        if to_venue or to_engine:
                            deliver_until(ns)
                        clock.now_ns = ns
                        out = on_market_frame(raw)
                    else:  # STOP_SCANNED: the venue's scanner applied it already
                        clock.now_ns = ns
                        out = after_scan(quiet.scan_kind, raw)
                    if out is not None:
                        events += 1
                    if out is None or not (self.started or sim.has_book):  # not ours, or no book yet
                        i += 1
                        continue
                    if not self.started:
                        eng.setup()
                        self.started = True
                    next_ns = frames[i + 1][0] if i + 1 < n else INF_NS
                    on_market(out, ns, next_ns - ns > burst_ns)
                now = ns / 1e9
                if now >= timers["hk"]:  # BacktestEngine.tick_housekeeping, inlined
                    eng._housekeeping(now)
                if out is not raw or raw[12:18] == b"l2Book":
                    sample_book(now)
                if now >= next_sample:
                    next_sample = now + SAMPLE_S
                    self._sample_path(now)
                if progress is not None and (i & 255) == 0:
                    progress.update(i, ns)
                i += 1
            deliver_until(INF_NS - 1)
        finally:
            self.wall_s = time.perf_counter() - t0
            self.events = events
            self.quiet_frames = quiet.total_noted if quiet is not None else 0
            if gc_was:
                gc.enable()
            if progress is not None:
                progress.done(n)
        self.t_last = frames[-1][0] / 1e9
        if self.started:
            self._sample_path(max(self.t_last, clock.now_ns / 1e9))
        from hlfast.report import summarize

        return summarize(self)

    def _deliver_until(self, limit_ns: int) -> None:
        """Events in flight (actions to the venue, replies/fills to the engine) due by limit_ns, in order."""
        sim, eng, clock = self.sim, self.engine, self.clock
        to_venue, to_engine = sim.to_venue, sim.to_engine
        while to_venue or to_engine:
            tv = to_venue[0][0] if to_venue else INF_NS
            te = to_engine[0][0] if to_engine else INF_NS
            if tv <= te:
                if tv > limit_ns:
                    return
                arrival, post_id, body = to_venue.popleft()
                sim.run_action(arrival, post_id, body)
            else:
                if te > limit_ns:
                    return
                arrival, frame = to_engine.popleft()
                clock.now_ns = arrival
                eng.on_user(frame, arrival)
                eng.tick_housekeeping(arrival / 1e9)

    def _sample_book(self, now: float) -> None:
        """The market mid and our best bid/ask resting at the venue (the simulated account is its only user)."""
        book = self.sim.book
        mid = book.mid
        if not mid:
            return
        log_ = self.log
        log_.mid_t.append(now)
        log_.mid.append(mid)
        bids, asks = book.levels
        log_.bid_q.append(max(bids) / book.px_scale if bids else math.nan)
        log_.ask_q.append(min(asks) / book.px_scale if asks else math.nan)

    def _sample_path(self, now: float) -> None:
        if not self.started:
            return
        log_ = self.log
        log_.path_t.append(now)
        log_.path_pnl.append(self.mark_to_market())
        log_.path_pos.append(self.sim.position())

    def mark_to_market(self) -> float:
        """Venue ledger PnL at the market mid: realised − fees + unrealised, USD."""
        acct = self.sim.ledger_account
        pos = acct.positions.get(self.spec.name)
        mid = self.sim.book.mid
        unreal = 0.0
        if pos is not None and pos.szi and mid:
            unreal = pos.szi / 10**self.spec.sz_decimals * (mid - pos.entry_px)
        return acct.realised_pnl - acct.fees_paid + unreal


def _level_of(targets: Any, px: int, side: int) -> int:
    """Index of px among the quoter's targets (best first); nearest target when not exact."""
    best_i, best_d = 0, math.inf
    for i, tp in enumerate(targets):
        d = abs(int(tp) - px)
        if d == 0:
            return i
        if d < best_d:
            best_i, best_d = i, d
    return best_i


class Progress:
    """A one-line progress bar on stderr: share done, events/s, ETA (wall clock, display only)."""

    def __init__(self, total: int, label: str = "", stream: TextIO | None = None) -> None:
        self.total = max(1, total)
        self.label = label
        self.stream = stream or sys.stderr
        self.t0 = time.perf_counter()
        self.next_at = self.t0 + PROGRESS_EVERY_S

    def update(self, done: int, sim_ns: int) -> None:
        now = time.perf_counter()
        if now < self.next_at:
            return
        self.next_at = now + PROGRESS_EVERY_S
        self._write(done, now)

    def _write(self, done: int, now: float) -> None:
        elapsed = max(now - self.t0, 1e-9)
        frac = done / self.total
        rate = done / elapsed
        eta = (self.total - done) / rate if rate > 0 else math.inf
        width = 30
        bar = "#" * int(frac * width) + "." * (width - int(frac * width))
        label = f"{self.label} " if self.label else ""
        self.stream.write(f"\r{label}[{bar}] {frac:6.1%} {done:,}/{self.total:,} ev  {rate:,.0f} ev/s  "
                          f"ETA {eta:5.1f}s\x1b[K")
        self.stream.flush()

    def done(self, n: int) -> None:
        self._write(n, time.perf_counter())
        self.stream.write("\n")
        self.stream.flush()


# ---------------------------------------------------------------------------------------------------
# Entry points
# ---------------------------------------------------------------------------------------------------
def run_backtest(cfg: Config, data: MarketData, spec: CoinSpec, options: Options | None = None) -> Backtest:
    """One backtest; the finished Backtest carries `summary` (see hlfast.report.summarize)."""
    bt = Backtest(cfg, data, spec, options)
    bt.summary = bt.run()
    bt.summary["load_s"] = round(data.load_s, 4)
    return bt


def with_impulse(cfg: Config, enabled: bool) -> Config:
    return replace(cfg, impulse=replace(cfg.impulse, enabled=enabled))


def run_ab_impulse(cfg: Config, data: MarketData, spec: CoinSpec,
                   options: Options | None = None) -> dict[str, Backtest]:
    """The same data with impulse control on and off (everything else equal)."""
    opt = options or Options()
    return {name: run_backtest(with_impulse(cfg, enabled), data, spec, replace(opt, label=f"impulse {name}"))
            for name, enabled in (("on", True), ("off", False))}


def _synthetic_arg(text: str, coin: str) -> tuple[MarketData, CoinSpec]:
    """``synthetic[:SECONDS[:SEED]]`` -> the seeded synthetic market as frames."""
    parts = text.split(":")
    if parts[0] != "synthetic" or len(parts) > 3:
        raise ValueError(f"--data {text!r}: expected a file or synthetic[:SECONDS[:SEED]]")
    try:
        seconds = float(parts[1]) if len(parts) > 1 else 300.0
        seed = int(parts[2]) if len(parts) > 2 else 1
    except ValueError:
        raise ValueError(f"--data {text!r}: SECONDS must be a number and SEED an integer") from None
    if coin not in DEFAULT_COINS:
        raise ValueError(f"unknown coin {coin!r}; known: {', '.join(DEFAULT_COINS)}")
    return synthetic_frames(coin, seed=seed, seconds=seconds), DEFAULT_COINS[coin]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hlfast backtest", description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, metavar="FILE",
                   help="recorded frames (`hlfast record` / `hlfast convert` format, .gz or plain), or "
                        "synthetic[:SECONDS[:SEED]] for the venue's seeded synthetic market")
    p.add_argument("--coin", help="coin to trade (default: the first coin in the file)")
    p.add_argument("--config", metavar="FILE", help="TOML config (env HLFAST_* apply too)")
    p.add_argument("--latency-ms", type=float, default=DEFAULT_LATENCY_MS,
                   help=f"one-way order latency, ms (default {DEFAULT_LATENCY_MS:g})")
    p.add_argument("--queue-model", choices=("risk_averse", "probabilistic"), default="risk_averse",
                   help="how the venue attributes displayed-size decreases to our queue")
    p.add_argument("--burst-us", type=float, default=DEFAULT_BURST_US,
                   help="frames closer than this are one read: quotes are computed on the last only")
    p.add_argument("--deposit", type=float, default=100_000.0, help="account balance, USD")
    p.add_argument("--sign", action="store_true",
                   help="sign every action (secp256k1) and verify signatures in the venue (slower)")
    p.add_argument("--cascade", choices=CASCADE_MODES, default="engine",
                   help="what-if: 'liquidations' feeds the cascade detector flagged liquidations only "
                        "(no p99-notional fallback); default: the engine's detector as configured")
    p.add_argument("--ab", choices=("impulse",), help="A/B: run with impulse control on and off")
    p.add_argument("--out", metavar="DIR", help="write summary.json and PNG plots here")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    prog = p.add_mutually_exclusive_group()
    prog.add_argument("--progress", action="store_true", default=None, help="progress bar on stderr")
    prog.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")
    try:
        cfg = load_config(args.config)
        if args.data.startswith("synthetic"):
            data, spec = _synthetic_arg(args.data, args.coin or cfg.market.coin)
        else:
            data = load_frames(args.data)
            spec = coin_spec(args.data, args.coin)
    except (ConfigError, ValueError, OSError, KeyError) as exc:
        print(f"hlfast backtest: {exc}", file=sys.stderr)
        return 2
    if args.latency_ms < 0 or args.burst_us < 0:
        print("hlfast backtest: --latency-ms and --burst-us must be >= 0", file=sys.stderr)
        return 2
    progress = args.progress if args.progress is not None else (sys.stderr.isatty() and data.span_s > 60)
    opt = Options(latency_ms=args.latency_ms, queue_model=args.queue_model, burst_us=args.burst_us,
                  deposit=args.deposit, sign=args.sign, cascade=args.cascade, progress=progress)
    from hlfast import report

    if args.ab:
        runs = run_ab_impulse(cfg, data, spec, opt)
        on, off = runs["on"].summary, runs["off"].summary
        result: dict[str, Any] = {"on": on, "off": off, "comparison": report.compare(on, off)}
        text = report.ab_table(on, off)
    else:
        runs = {"run": run_backtest(cfg, data, spec, opt)}
        result = runs["run"].summary
        text = report.table(result)
    if args.out:
        try:
            notes = report.write_outputs(args.out, result, ab=bool(args.ab), runs=runs)
        except OSError as exc:
            print(f"hlfast backtest: cannot write to {args.out}: {exc}", file=sys.stderr)
            return 1
        for note in notes:
            print(note, file=sys.stderr)
    if args.json:
        sys.stdout.write(orjson.dumps(report.jsonable(result)).decode() + "\n")
    else:
        print(text)
    return 0


def frames_from(pairs: Iterable[tuple[int, bytes]], path: str = "<memory>") -> MarketData:
    """MarketData from (receive_ns, raw frame) pairs already in memory (tests, tools)."""
    frames = list(pairs)
    if not frames:
        raise ValueError("no frames")
    return MarketData(frames, path, 0.0, 0)


__all__ = ["Backtest", "BacktestEngine", "MarketData", "Options", "load_frames", "main", "run_ab_impulse",
           "run_backtest", "frames_from", "coin_spec"]
