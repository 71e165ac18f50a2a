"""Tick-to-order profile of the engine's hot path against two plain-Python reference pipelines.

The engine is the real one (hlfast.engine.Engine: kernels, order state machine, signer, gateway);
only its network boundary is replaced by in-memory connections (hlfast.memtransport) wired to the
local venue's own logic in this process (hlfast.venue: synthetic market or a recorded stream, order
matching, acks and user events).  Frames are handed to the engine's own per-frame method one at a
time, on a replay clock (frame times, not wall time), so no network noise enters and the strategy
sees the market at its real pace.

Measured, per market-data frame (a "tick"), with fixed-bucket histograms:
  hlfast total           frame handed to the engine -> engine returns (no-action / with-action ticks)
  hlfast tick-to-order   frame handed to the engine -> first signed action's bytes handed to send
  stages                 decode+book (the router's single pass over the bytes), estimators, quote,
                         reconcile, sign/serialise/send: a second pass over
                         the same frames (same seed, fresh engine) with the engine's per-frame code split
                         at its C calls (a small Cython helper compiled on first use); it must reproduce
                         the first pass's actions exactly, which is checked and printed
  allocation             net Python memory blocks over 10,000 steady-state no-action ticks
  references             the same frames through perf/reference_pipeline.py in subprocesses:
                         (a) eth_keys' pure-Python ECC backend, (b) the coincurve backend

One session by default: a fresh engine and venue, `--warmup` frames, then `--frames` measured frames.
`--session-frames N` splits the frames into sessions of N, each a fresh engine and venue seeded seed+k
with its own warm-up (for strategy settings that stop quoting after a while).  The impulse budget is
unbounded by default (`--budget unbounded`; the filter stays on) so ticks with an action are frequent
enough to measure.

Usage: python perf/tick_to_order.py [--frames 8000] [--session-frames 0] [--warmup 500] [--seed 1]
       [--levels 25] [--source synthetic|replay:FILE] [--budget unbounded|config] [--pin-core N]
       [--gc on|off|freeze] [--ref-sessions N] [--no-stages] [--no-reference] [--json]
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import importlib.util
import json
import logging
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from hlfast.config import load_config  # noqa: E402
from hlfast.engine import Engine  # noqa: E402
from hlfast.frames import CH_ORDER_UPDATES  # noqa: E402
from hlfast.histogram import LatencyHistogram  # noqa: E402
from hlfast.keys import PrivateKey  # noqa: E402
from hlfast.memtransport import MemoryConnection, MemoryPoller, MemoryVenue  # noqa: E402
from hlfast.recording import FrameWriter  # noqa: E402
from hlfast.venue.server import VenueConfig, build_venue  # noqa: E402

START_MS = 1_737_900_000_000          # replay clock origin for synthetic runs (fixed: same seed, same frames)
BENCH_KEY = bytes.fromhex("4f" * 32)  # a throwaway key: the venue is in-process, nothing leaves it
PURE_BACKEND = "eth_keys.backends.NativeECCBackend"
COINCURVE_BACKEND = "eth_keys.backends.CoinCurveECCBackend"
STAGES = ("decode+book", "estimators", "quote", "reconcile", "sign")   # the router decodes and applies in one pass
ALLOC_TICKS = 10_000
QUANTILES = (("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("p99.9", 0.999))


# ---------------------------------------------------------------------------------------------------
# the engine on the in-memory venue
# ---------------------------------------------------------------------------------------------------
class ReplayClock:
    """The engine's clock during a replay: the current frame's receive time."""

    __slots__ = ("ns",)

    def __init__(self, ns: int) -> None:
        self.ns = ns

    def __call__(self) -> float:
        return self.ns / 1e9


def bench_config(levels: int, budget: str, **engine: Any) -> Any:
    """The default configuration with metrics, status line and HJB validation off; `engine` overrides [engine]."""
    overrides: dict[str, dict[str, Any]] = {
        "metrics": {"enabled": False},
        "engine": {"status_interval_s": 0, "gc_mode": "on", "hjb_validate_s": 0, **engine},
        "quoting": {"levels": levels},
    }
    if budget == "unbounded":
        overrides["impulse"] = {"initial_tokens": 1e12, "max_tokens": 1e12}
    return load_config(env={}, overrides=overrides)


class Harness:
    """A set-up Engine whose websockets and HTTP client talk to a MemoryVenue in this process."""

    def __init__(self, *, seed: int = 1, levels: int = 25, source: str = "synthetic", budget: str = "unbounded",
                 block_ms: int = 100, coin: str = "BTC") -> None:
        self.cfg = bench_config(levels, budget)
        # a request budget that never binds: the venue's limiter works on wall time, which would make a replay
        # depend on how fast it runs
        venue = build_venue(VenueConfig(coins=(coin,), auto_fund=True, seed=seed, block_ms=block_ms,
                                        source=source, start_ms=START_MS, request_budget_base=1_000_000_000))
        self.venue = venue
        self.mv = MemoryVenue(venue)
        self.mv.step()  # a first block, so the book and mids exist at start-up
        self.clock = ReplayClock(venue.block_time_ms * 1_000_000)
        eng = Engine(self.cfg, PrivateKey(BENCH_KEY), base_url="http://memory.invalid", clock=self.clock)
        self.md = MemoryConnection("market", eng.md.subscriptions)
        self.oc = MemoryConnection("orders", eng.oc.subscriptions)
        for conn in (self.md, self.oc):
            self.mv.attach(conn)
        eng.md, eng.oc, eng.conns = self.md, self.oc, (self.md, self.oc)
        eng.poller = MemoryPoller(eng.conns)
        eng.http = self.mv.http
        eng.gateway.conn = self.oc
        eng.gateway.http = self.mv.http
        self.engine = eng
        eng.setup()
        self.settle()
        self._in_block = 0
        self._block_ns = self.clock.ns

    def settle(self) -> None:
        """Deliver what the engine sent to the venue, and the venue's replies to the engine, until quiet."""
        eng, oc, mv = self.engine, self.oc, self.mv
        while True:
            mv.deliver_sent()
            if not oc.inbox:
                return
            while oc.inbox:
                eng._on_user_frame(oc.inbox.popleft(), 0)

    def next_frame(self) -> tuple[int, bytes] | None:
        """The next market-data frame and its replay receive time (ns); None when the source ended."""
        md = self.md
        while not md.inbox:
            if not self.mv.step():
                if not md.inbox:
                    return None
            self._block_ns = max(self.venue.block_time_ms * 1_000_000, self.clock.ns + 1_000)
            self._in_block = 0
            self.settle()   # user events of the block (fills) reach the engine before its market frames
        self._in_block += 1
        return self._block_ns + 1_000 * (self._in_block - 1), md.inbox.popleft()

    def after_tick(self) -> None:
        """Acks and user events, then the loop's timers (what the engine does between frames)."""
        self.settle()
        eng = self.engine
        now = self.clock()
        if now >= eng._next["hk"]:
            eng._housekeeping(now)
            self.settle()

    def action_counts(self) -> dict[str, int]:
        return dict(self.engine.actions_by_type)

    def settings(self) -> dict[str, Any]:
        """The strategy's parameters and starting state, for the reference pipeline."""
        cfg, eng = self.cfg, self.engine
        q, imp, cal = cfg.quoting, cfg.impulse, cfg.calibration
        p = eng.pipeline
        out = {
            "coin": eng.coin, "asset": eng.asset, "sz_decimals": eng.sz_decimals, "levels": q.levels,
            "max_orders": 256, "gamma": q.gamma, "sigma_prior": q.sigma_prior, "kappa_prior": q.kappa_prior,
            "a_prior": q.a_prior, "fee_maker": q.fee_maker_bps * 1e-4, "min_spread": q.min_spread_bps * 1e-4,
            "horizon": q.horizon_s, "half_spread_mult": q.half_spread_mult, "skew_mult": q.skew_mult,
            "glft_mode": q.glft_mode, "leverage": q.leverage, "min_notional_safety": q.min_notional_safety,
            "user_cap": q.target_size, "max_position": cfg.risk.max_position,
            "account_value": p.account_value, "exch_cap_bid": p.exch_cap_bid, "exch_cap_ask": p.exch_cap_ask,
            "liquidators": sorted(eng.liquidators),
            "impulse": {"enabled": imp.enabled, "initial": imp.initial_tokens, "max_tokens": imp.max_tokens,
                        "reserve": imp.emergency_reserve, "reward_per_1000": imp.reward_per_1000,
                        "reward_floor": imp.reward_floor, "bulk_discount": imp.bulk_discount,
                        "threshold": imp.delta_lambda_threshold, "lock_threshold": imp.lock_threshold,
                        "lock_override_bps": imp.lock_override_bps, "horizon_s": imp.horizon_s,
                        "match_tolerance_ticks": imp.match_tolerance_ticks,
                        "match_tolerance_bps": imp.match_tolerance_bps, "size_tolerance": imp.size_tolerance},
            "calibration": {"enabled": cal.enabled, "target_fills_per_hour": cal.target_fills_per_hour,
                            "floor": cal.floor, "lookback_s": cal.lookback_s},
        }
        # newer options, passed on when this build has them
        if hasattr(imp, "refill_per_s"):
            out["impulse"]["refill_per_s"] = imp.refill_per_s
        if hasattr(cfg.risk, "cascade_baseline_half_life_s"):
            out["cascade_baseline_half_life_s"] = cfg.risk.cascade_baseline_half_life_s
        return out


def is_market_tick(channel: int) -> bool:
    return 0 < channel < CH_ORDER_UPDATES   # l2Book, trades, bbo


# ---------------------------------------------------------------------------------------------------
# histograms and GC control
# ---------------------------------------------------------------------------------------------------
def summary(h: LatencyHistogram) -> dict[str, float]:
    out: dict[str, float] = {"count": int(h.count)}
    for name, q in QUANTILES:
        out[name] = h.quantile(q) / 1e3
    out["max"] = h.max_ns / 1e3
    return out


class GcMode:
    """--gc on | off | freeze, applied around a measured section the way Engine.run applies it."""

    def __init__(self, mode: str) -> None:
        self.mode = mode

    def __enter__(self) -> GcMode:
        if self.mode in ("off", "freeze"):
            gc.collect()
            if self.mode == "freeze":
                gc.freeze()
            gc.disable()
        return self

    def between_frames(self, i: int) -> None:
        if self.mode == "freeze" and i % 20_000 == 19_999:
            gc.collect(0)   # young generation only, as the engine does in freeze mode

    def __exit__(self, *exc: object) -> None:
        if self.mode != "on":
            gc.enable()
        if self.mode == "freeze":
            gc.unfreeze()


# ---------------------------------------------------------------------------------------------------
# pass 1: the engine's own per-frame method, timed from outside
# ---------------------------------------------------------------------------------------------------
class EngineHists:
    """Histograms of pass 1, shared by all sessions of a run."""

    def __init__(self) -> None:
        self.no_action = LatencyHistogram()
        self.with_action = LatencyHistogram()
        self.tick_to_order = LatencyHistogram()
        self.ticks = 0

    def result(self, actions: dict[str, int]) -> dict[str, Any]:
        return {"ticks": self.ticks, "no_action": summary(self.no_action), "with_action": summary(self.with_action),
                "tick_to_order": summary(self.tick_to_order), "actions": actions}


def run_engine_pass(h: Harness, frames: int, warmup: int, hists: EngineHists, gc_mode: str = "on",
                    writer: FrameWriter | None = None) -> dict[str, int]:
    """Frames through Engine._on_market_frame; returns the session's action counts."""
    eng, oc = h.engine, h.oc
    on_market = eng._on_market_frame
    pipeline = eng.pipeline
    clock = time.perf_counter_ns
    h_none, h_action, h_t2o = hists.no_action, hists.with_action, hists.tick_to_order
    with GcMode(gc_mode) as gcm:
        for i in range(warmup + frames):
            item = h.next_frame()
            if item is None:
                break
            recv_ns, raw = item
            h.clock.ns = recv_ns
            oc.first_send_ns = 0
            t0 = clock()
            on_market(raw, recv_ns, True)
            t1 = clock()
            sent = oc.first_send_ns
            h.after_tick()
            if writer is not None:
                writer.write(recv_ns, raw)
            gcm.between_frames(i)
            if i < warmup or not is_market_tick(pipeline.channel):
                continue
            hists.ticks += 1
            if sent:
                h_t2o.record(sent - t0)
                h_action.record(t1 - t0)
            else:
                h_none.record(t1 - t0)
    return h.action_counts()


# ---------------------------------------------------------------------------------------------------
# pass 2: the same frames with the per-frame code split at its C calls
# ---------------------------------------------------------------------------------------------------
STAGE_HELPER = r'''
# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Pipeline.on_frame split at its C calls, with a clock read between stages."""
from posix.time cimport CLOCK_MONOTONIC, clock_gettime, timespec
from hlfast.frames cimport FR_CH_BBO, FR_CH_L2BOOK, FR_CH_TRADES, FrameRouter
from hlfast.pipeline cimport Pipeline
from hlfast.tape cimport Tape


cdef inline long long now_ns() noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return <long long>ts.tv_sec * 1000000000 + ts.tv_nsec


def staged_on_frame(Pipeline p, object raw, long long recv_ns, long long[::1] out) -> int:
    """Same effects as p.on_frame(raw, recv_ns, True); out = ns of decode+book (the router's one pass over
    the bytes), estimators, cycle, quote (a re-run of the cycle's quote from its inputs; 0 when the cycle
    did not quote)."""
    cdef int ch, n = 0
    cdef double t = recv_ns / 1e9
    cdef FrameRouter router = p.router
    cdef Tape tape = p.tape
    cdef long long a, c, d, e, seq, end
    out[0] = 0
    out[1] = 0
    out[2] = 0
    out[3] = 0
    p.n_actions = 0
    a = now_ns()
    ch = router.on_frame(raw)
    c = now_ns()
    p.channel = ch
    out[0] = c - a
    if FR_CH_L2BOOK <= ch <= FR_CH_BBO:
        p.md_frames += 1
        p.last_md_ns = recv_ns
    if ch == FR_CH_L2BOOK or ch == FR_CH_BBO:
        if router.applied != 0:
            return 0
        p.on_book_c(t, False)
        if not p.book.c_ready():              # no two-sided book: on_frame stops here too
            out[1] = now_ns() - c
            return 0
    elif ch == FR_CH_TRADES:
        if router.last_pushed <= 0 or tape is None:
            return 0
        seq = p.tape_seen
        if seq < tape.first_seq():
            seq = tape.first_seq()
        end = tape.total
        while seq < end:
            p.on_trade_c(t, tape.px_at(seq), tape.sz_at(seq), tape.side_at(seq), tape.liq_at(seq))
            seq += 1
        p.tape_seen = end
    elif not p.stale:
        return 0
    d = now_ns()
    out[1] = d - c
    n = p.cycle_c(t)
    e = now_ns()
    out[2] = e - d
    if p.quoting and not p.hold and p.book.c_ready():
        a = now_ns()
        p.quoter.compute(&p.qin)
        out[3] = now_ns() - a
    p.n_actions = n
    return n
'''


def load_stage_helper() -> Any:
    """Compile the stage helper against the in-place build (a few seconds once; cached by its source, the
    kernels' .pxd files and their built modules)."""
    from Cython.Build import cythonize
    from setuptools import Distribution, Extension

    pxd_root = os.path.join(ROOT, "build", "pxd")
    digest = hashlib.sha256(STAGE_HELPER.encode())
    for name in sorted(os.listdir(os.path.join(ROOT, "cext"))):
        if name.endswith(".pxd"):
            with open(os.path.join(ROOT, "cext", name), "rb") as fh:
                digest.update(fh.read())
        elif name.endswith(".pyx"):  # the kernel as built: after a rebuild the helper is rebuilt too
            stat = os.stat(importlib.import_module(f"hlfast.{name[:-4]}").__file__)
            digest.update(f"{name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    tag = digest.hexdigest()[:16]
    work = os.path.join(tempfile.gettempdir(), f"hlfast_stage_helper_{tag}")
    module = f"stage_helper_{tag}"
    os.makedirs(work, exist_ok=True)
    built = [f for f in os.listdir(work) if f.startswith(module) and f.endswith(".so")]
    if not built:
        build_dir = tempfile.mkdtemp(prefix="build_", dir=work)   # private: concurrent builds do not collide
        src = os.path.join(build_dir, module + ".pyx")
        with open(src, "w") as fh:
            fh.write(STAGE_HELPER)
        ext = Extension(module, [src], extra_compile_args=["-O1"])   # thin glue: build time matters more
        dist = Distribution({"ext_modules": cythonize([ext], include_path=[pxd_root], quiet=True)})
        cmd = dist.get_command_obj("build_ext")
        cmd.build_lib = build_dir
        cmd.build_temp = os.path.join(build_dir, "tmp")
        cmd.ensure_finalized()
        cmd.run()
        name = os.path.basename(cmd.get_ext_fullpath(module))
        os.replace(os.path.join(build_dir, name), os.path.join(work, name))   # atomic publish
        shutil.rmtree(build_dir, ignore_errors=True)
        built = [name]
    spec = importlib.util.spec_from_file_location(module, os.path.join(work, built[0]))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def staged_market_frame(eng: Engine, staged: Callable, out: Any) -> Callable[[bytes, int], tuple[int, int]]:
    """Engine._on_market_frame with the pipeline call replaced by the staged one; returns (n, sign ns)."""
    pipeline = eng.pipeline
    clock = time.perf_counter_ns

    def on_market(raw: bytes, recv_ns: int) -> tuple[int, int]:
        n = staged(pipeline, raw, recv_ns, out)
        t0 = clock()
        eng._after_market_frame(n, recv_ns)  # the engine's own tail: actions, pong, malformed count
        return n, clock() - t0 if n > 0 else 0

    return on_market


def new_stage_hists() -> dict[str, LatencyHistogram]:
    return {name: LatencyHistogram() for name in (*STAGES, "cycle")}


def run_stage_pass(h: Harness, frames: int, warmup: int, hists: dict[str, LatencyHistogram], helper: Any,
                   gc_mode: str = "on") -> dict[str, int]:
    """The same frames with the per-frame code split into stages; returns the session's action counts."""
    import numpy as np

    out = np.zeros(4, dtype=np.int64)
    on_market = staged_market_frame(h.engine, helper.staged_on_frame, out)
    pipeline = h.engine.pipeline
    with GcMode(gc_mode) as gcm:
        for i in range(warmup + frames):
            item = h.next_frame()
            if item is None:
                break
            recv_ns, raw = item
            h.clock.ns = recv_ns
            n, sign_ns = on_market(raw, recv_ns)
            h.after_tick()
            gcm.between_frames(i)
            if i < warmup or not is_market_tick(pipeline.channel):
                continue
            decode_book, estimators, cycle, quote = (int(x) for x in out)
            if decode_book:
                hists["decode+book"].record(decode_book)
            if estimators:
                hists["estimators"].record(estimators)
            if cycle:
                hists["cycle"].record(cycle)
            if quote:
                hists["quote"].record(quote)
                hists["reconcile"].record(max(0, cycle - quote))
            if n > 0:
                hists["sign"].record(sign_ns)
    return h.action_counts()


# ---------------------------------------------------------------------------------------------------
# allocation check
# ---------------------------------------------------------------------------------------------------
def allocation_check(h: Harness, ticks: int = ALLOC_TICKS) -> dict[str, Any]:
    """Net allocated blocks over `ticks` and `ticks`/10 no-action ticks (one book frame repeated on an advancing
    clock); the difference over the extra ticks is the per-tick growth (one-off cache fills cancel out)."""
    eng, oc = h.engine, h.oc
    raw = None
    for _ in range(10_000):
        item = h.next_frame()
        if item is None:
            break
        recv_ns, candidate = item
        h.clock.ns = recv_ns
        eng._on_market_frame(candidate, recv_ns, True)
        h.after_tick()
        if b'"l2Book"' in candidate[:40]:
            raw = candidate
            break
    if raw is None:
        return {"ticks": 0, "net_blocks": None, "ticks_with_action": 0}
    on_market = eng._on_market_frame
    clock = h.clock
    step_ns = 100_000   # 10,000 ticks = 1 s of replay time: timers (refits) rarely fall inside a window
    for _ in range(1_000):                      # reach the steady state of this frame
        clock.ns += step_ns
        on_market(raw, clock.ns, True)
        h.settle()
    sent_before = oc.frames_out

    def window(n: int) -> int:
        gc.collect()
        gc.disable()
        try:
            before = sys.getallocatedblocks()
            for _ in range(n):
                clock.ns += step_ns
                on_market(raw, clock.ns, True)
            return sys.getallocatedblocks() - before
        finally:
            gc.enable()

    attempts = 0
    while True:   # an action inside a window (the clock moved the quotes) spoils it: retry a few times
        attempts += 1
        short = window(ticks // 10)
        full = window(ticks)
        with_action = oc.frames_out - sent_before
        h.settle()
        sent_before = oc.frames_out
        if with_action == 0 or attempts == 5:
            break
    per_tick = (full - short) / (ticks - ticks // 10)
    return {"ticks": ticks, "net_blocks": full, "net_blocks_short": short, "short_ticks": ticks // 10,
            "per_tick": per_tick, "ticks_with_action": with_action, "attempts": attempts}


# ---------------------------------------------------------------------------------------------------
# the reference pipelines
# ---------------------------------------------------------------------------------------------------
def run_reference(backend: str, frames_files: list[str], settings_file: str, warmup: int, pin_core: int,
                  gc_mode: str) -> dict[str, Any]:
    env = dict(os.environ, ECC_BACKEND_CLASS=backend)
    env["PYTHONPATH"] = os.pathsep.join([ROOT, env.get("PYTHONPATH", "")])
    cmd = [sys.executable, os.path.join(ROOT, "perf", "reference_pipeline.py"), "--settings", settings_file,
           "--warmup", str(warmup), "--gc", gc_mode, "--json"]
    for path in frames_files:
        cmd += ["--frames-file", path]
    if pin_core >= 0:
        cmd += ["--pin-core", str(pin_core)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"reference pipeline ({backend}) failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def ratio(a: float, b: float) -> float:
    return round(a / b, 1) if b > 0 else float("nan")


# ---------------------------------------------------------------------------------------------------
# report
# ---------------------------------------------------------------------------------------------------
def machine() -> dict[str, Any]:
    model = ""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"cpu": model or platform.processor(), "cpus": os.cpu_count(), "python": platform.python_version(),
            "platform": platform.platform()}


def fmt_row(name: str, s: dict[str, float]) -> str:
    if not s.get("count"):
        return f"  {name:34s} (no samples)"
    return (f"  {name:34s} n={s['count']:<7d} p50 {s['p50']:8.1f}  p90 {s['p90']:8.1f}  p99 {s['p99']:8.1f}  "
            f"p99.9 {s['p99.9']:8.1f}  max {s['max']:9.1f}")


def print_report(res: dict[str, Any]) -> None:
    a = res["args"]
    print(f"tick-to-order: {a['frames']} frames in {a['sessions']} sessions (+{a['warmup']} warm-up frames each), "
          f"source {a['source']}, seed {a['seed']}, "
          f"levels {a['levels']}, budget {a['budget']}, gc {a['gc']}, pin-core {a['pin_core']}")
    m = res["machine"]
    print(f"machine: {m['cpu']} ({m['cpus']} cpus), Python {m['python']}")
    print("all figures in microseconds")
    hl = res["hlfast"]
    print(f"hlfast ({hl['ticks']} ticks; actions {hl['actions']})")
    print(fmt_row("no-action tick", hl["no_action"]))
    print(fmt_row("with-action tick (all actions sent)", hl["with_action"]))
    print(fmt_row("tick-to-signed-order", hl["tick_to_order"]))
    st = res.get("stages")
    if st:
        same = "yes" if st["same_actions"] else f"NO ({st['actions']})"
        print(f"hlfast stages (second pass, same frames; reproduced the first pass's actions: {same})")
        for name in (*STAGES, "cycle"):
            label = {"sign": "sign/serialise/send (all actions)", "cycle": "cycle (quote+reconcile, C)",
                     "quote": "quote (re-run from its inputs)", "reconcile": "reconcile (cycle - quote)"}.get(name, name)
            print(fmt_row(label, st["stages"][name]))
    al = res.get("allocation")
    if al:
        print(f"allocation (sys.getallocatedblocks, one book frame repeated): {al['net_blocks']:+d} net blocks over "
              f"{al['ticks']} no-action ticks, {al['net_blocks_short']:+d} over {al['short_ticks']} "
              f"-> {al['per_tick']:+.4f} per tick (actions during the check: {al['ticks_with_action']})")
    for key, label in (("reference_python", "reference (a) plain Python + SDK, pure-Python ECC"),
                       ("reference_sdk_coincurve", "reference (b) plain Python + SDK, coincurve ECC")):
        ref = res.get(key)
        if not ref:
            continue
        print(f"{label} [{ref['backend']}] ({ref['ticks']} ticks; actions {ref['actions']})")
        print(fmt_row("no-action tick", ref["no_action"]))
        print(fmt_row("with-action tick (all actions sent)", ref["with_action"]))
        print(fmt_row("tick-to-signed-order", ref["tick_to_order"]))
        for name, stage in ref["stages"].items():
            print(fmt_row(f"stage {name}", stage))
    if res.get("ratios"):
        same = "same frames" if a["ref_sessions"] == a["sessions"] else f"references on the first {a['ref_sessions']} sessions"
        print(f"speed-up of hlfast (ratios of p50s; {same}):")
        for k, v in res["ratios"].items():
            print(f"  {k:40s} {v:8.1f}x")
    targets = res.get("targets", {})
    if targets:
        print("targets: " + ", ".join(f"{k} {'met' if v else 'MISSED'}" for k, v in targets.items()))


def session_plan(frames: int, session_frames: int) -> list[int]:
    """Measured frames per session (the last one takes the remainder)."""
    if session_frames <= 0 or session_frames >= frames:
        return [frames]
    plan = [session_frames] * (frames // session_frames)
    if frames % session_frames:
        plan.append(frames % session_frames)
    return plan


def add_counts(total: dict[str, int], part: dict[str, int]) -> None:
    for k, v in part.items():
        total[k] = total.get(k, 0) + v


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Tick-to-order profile of hlfast vs plain-Python references.")
    ap.add_argument("--frames", type=int, default=8_000, help="measured market frames (all sessions)")
    ap.add_argument("--session-frames", type=int, default=0,
                    help="measured frames per session; each session is a fresh engine and venue (seed+k); "
                         "0 = one session")
    ap.add_argument("--warmup", type=int, default=500, help="frames processed before measuring, per session")
    ap.add_argument("--seed", type=int, default=1, help="synthetic market seed of the first session")
    ap.add_argument("--levels", type=int, default=25, help="ladder levels per side (quoting.levels)")
    ap.add_argument("--source", default="synthetic", help="'synthetic' or 'replay:FILE' (a recorded stream)")
    ap.add_argument("--budget", choices=("unbounded", "config"), default="unbounded",
                    help="impulse budget: unbounded (filter on, many action ticks) or as configured")
    ap.add_argument("--pin-core", type=int, default=-1, help="pin this process (and the references) to a core")
    ap.add_argument("--gc", choices=("on", "off", "freeze"), default="freeze", help="GC mode while measuring")
    ap.add_argument("--ref-sessions", type=int, default=0,
                    help="sessions given to the references (the first ones); 0 = all")
    ap.add_argument("--no-reference", action="store_true", help="skip the reference pipelines")
    ap.add_argument("--no-stages", action="store_true", help="skip the per-stage pass")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args(argv)
    logging.getLogger("hlfast").setLevel(logging.ERROR)   # kill-switch trips etc. are expected in a replay
    if args.pin_core >= 0:
        os.sched_setaffinity(0, {args.pin_core})
    plan = session_plan(args.frames, args.session_frames if args.source == "synthetic" else 0)
    res: dict[str, Any] = {"args": {"frames": args.frames, "sessions": len(plan), "warmup": args.warmup,
                                    "seed": args.seed, "levels": args.levels, "source": args.source,
                                    "budget": args.budget, "gc": args.gc, "pin_core": args.pin_core,
                                    "ref_sessions": min(args.ref_sessions, len(plan)) or len(plan)},
                           "machine": machine()}

    def harness(k: int) -> Harness:
        return Harness(seed=args.seed + k, levels=args.levels, source=args.source, budget=args.budget)

    with tempfile.TemporaryDirectory(prefix="hlfast_t2o_") as tmp:
        hists = EngineHists()
        actions: list[dict[str, int]] = []
        files: list[str] = []
        settings: dict[str, Any] = {}
        h = None
        for k, n in enumerate(plan):
            h = harness(k)
            settings = h.settings()
            files.append(os.path.join(tmp, f"session{k:04d}.gz"))
            with FrameWriter(files[-1]) as writer:
                actions.append(run_engine_pass(h, n, args.warmup, hists, args.gc, writer))
        total: dict[str, int] = {}
        for part in actions:
            add_counts(total, part)
        res["hlfast"] = hists.result(total)
        res["allocation"] = allocation_check(h)
        if not args.no_stages:
            helper = load_stage_helper()
            stage_hists = new_stage_hists()
            same = True
            for k, n in enumerate(plan):
                same &= run_stage_pass(harness(k), n, args.warmup, stage_hists, helper, args.gc) == actions[k]
            res["stages"] = {"stages": {name: summary(x) for name, x in stage_hists.items()}, "same_actions": same}
        if not args.no_reference:
            settings_file = os.path.join(tmp, "settings.json")
            with open(settings_file, "w") as fh:
                json.dump(settings, fh)
            ref_files = files[:args.ref_sessions] if args.ref_sessions > 0 else files
            for key, backend in (("reference_python", PURE_BACKEND), ("reference_sdk_coincurve", COINCURVE_BACKEND)):
                res[key] = run_reference(backend, ref_files, settings_file, args.warmup, args.pin_core, args.gc)
            hl = res["hlfast"]
            ratios = {}
            for key, tag in (("reference_python", "python"), ("reference_sdk_coincurve", "coincurve")):
                ref = res[key]
                for kind in ("no_action", "with_action", "tick_to_order"):
                    ratios[f"{tag}/hlfast {kind} p50"] = ratio(ref[kind]["p50"], hl[kind]["p50"])
            res["ratios"] = ratios
    hl = res["hlfast"]
    targets = {"no-action p50 <= 15us": hl["no_action"]["p50"] <= 15.0,
               "no-action p99 <= 40us": hl["no_action"]["p99"] <= 40.0,
               "tick-to-order p50 <= 120us": hl["tick_to_order"]["p50"] <= 120.0,
               "tick-to-order p99 <= 250us": hl["tick_to_order"]["p99"] <= 250.0}
    if "ratios" in res:
        targets[">= 30x vs (a) with action"] = res["ratios"]["python/hlfast with_action p50"] >= 30.0
        targets[">= 5x vs (b) with action"] = res["ratios"]["coincurve/hlfast with_action p50"] >= 5.0
    res["targets"] = targets
    if args.json:
        print(json.dumps(res))
    else:
        print_report(res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
