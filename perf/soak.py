"""Reliability soak: the engine in its own process against the local venue with fault injection on.

The venue runs in a child process with the fault injector on (disconnects, dropped / duplicated /
reordered user messages, delayed acks, lost replies, HTTP 5xx/429, per-order rejects, malformed
frames, market-data stalls longer than the stale threshold) and a synthetic market with frequent
liquidation cascades.  The engine runs in a second child process built from the normal config.
Everything is measured from outside: the venue is sampled over /info (open orders 4×/s, position
and account 1×/s), the engine over its Prometheus endpoint and /proc, plus a small read-only probe
in the engine process that publishes the order ids it tracks (for orphan detection), its kill-switch
trips, resync timings and the fills it accepted.  At the end the engine gets SIGTERM and prints its
`--json` summary; the venue's ledger is then compared with it.

    python perf/soak.py                     # 10 minutes, default fault rates
    python perf/soak.py --quick --json      # 40 s of trading (~45 s wall), the CI-sized run
    python perf/soak.py --seed 7 --fault reject=0.05 --fault stall=20:3 --minutes 30

Exit code 0 when every invariant holds (crashes, restarts, orphans at exit and older than 5 s,
position-limit breaches, duplicate fills, ledger drift, kill-switch trips that never reach zero
resting orders, private-key occurrences: all zero), 1 otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from hlfast.venue.faults import parse_fault_spec  # noqa: E402

# Fault rates per kind (see hlfast/venue/faults.py).  Probabilities apply per message / request / order.
DEFAULT_FAULTS = (
    "disconnect_every=60,disconnect=0.0002,drop_user=0.01,dup_user=0.02,reorder_user=0.02,http5xx=0.01,"
    "http429=0.01,reject=0.01,reject_real=0.01,ack_delay=0.01:1.5,lost_reply=0.005,malformed=0.002,stall=90:4,"
    "burst=120:20"
)
QUICK_FAULTS = (
    "disconnect_every=12,drop_user=0.02,dup_user=0.03,reorder_user=0.03,http5xx=0.02,http429=0.02,"
    "reject=0.02,reject_real=0.03,ack_delay=0.02:1.5,lost_reply=0.01,malformed=0.005,stall=20:3,burst=15:10"
)
CASCADE_ENV = "SOAK_CASCADE_EVERY_S"  # read by the venue child's market factory below
QUICK_SECONDS = 40.0
ORPHAN_LIMIT_S = 5.0
OPEN_ORDERS_EVERY_S = 0.25
SLOW_SAMPLE_EVERY_S = 1.0
PROBE_EVERY_S = 0.2
SHUTDOWN_WAIT_S = 30.0
SETUP_ATTEMPTS = 5

# Engine settings for the soak (on top of the defaults or a --config file): a small ladder close to
# the touch so fills happen, an execution budget that never binds so every quote update reaches the
# faulty order path, a stale threshold shorter than the injected stall, short cool-downs so
# quoting resumes within the run, and the venue's liquidator address so cascades are recognised.
SOAK_OVERRIDES: dict[str, dict[str, Any]] = {
    "engine": {"status_interval_s": 0, "read_mode": "blocking", "poll_timeout_ms": 1.0, "heartbeat_s": 5.0,
               "reconnect_backoff_min_s": 0.1, "reconnect_backoff_max_s": 2.0, "log_json": True,
               "log_level": "INFO", "hjb_validate_s": 30.0},
    "quoting": {"levels": 3, "half_spread_mult": 0.1, "min_spread_bps": 0.5},
    "impulse": {"initial_tokens": 1e6, "max_tokens": 1e6},
    "risk": {"max_position": 0.01, "stale_data_s": 2.0, "cooldown_s": 5.0, "cascade_cooldown_s": 5.0},
    "exchange": {"post_timeout_s": 2.0},
    "metrics": {"enabled": True, "host": "127.0.0.1", "snapshot_interval_s": 0.25},
}


# =============================================================================================
# venue side: the synthetic market with liquidation cascades every CASCADE_ENV seconds on average
# =============================================================================================
def cascade_market(coins: list[str], seed: int, block_ms: int) -> Any:
    """Market factory for the venue (``source="py:perf.soak:cascade_market"``)."""
    from hlfast.venue.market import resolve_coins
    from hlfast.venue.synthetic import SyntheticParams, SyntheticSource

    every = float(os.environ.get(CASCADE_ENV, "0") or 0)
    params = SyntheticParams(cascade_rate=1.0 / every) if every > 0 else SyntheticParams()
    return SyntheticSource(resolve_coins(coins), seed=seed, block_ms=block_ms,
                           start_ms=int(time.time() * 1000), params=params)


# =============================================================================================
# engine side: the engine plus a read-only probe, run in its own process
# =============================================================================================
@dataclass
class Probe:
    """What the engine process publishes for the soak (written to a JSON file by a side thread)."""

    phase: str = "setup"
    tracked: dict = field(default_factory=dict)  # {"t": wall s, "cloids": [...], "oids": [...]}
    trips: list = field(default_factory=list)  # [wall s, reason, detail, live orders at the trip]
    resyncs: list = field(default_factory=list)  # [wall s, duration s, ok]
    setup_failures: list = field(default_factory=list)
    fill_keys: list = field(default_factory=list)  # tid of every fill the engine accepted
    final: dict = field(default_factory=dict)


def _instrumented_engine_class() -> type:
    from hlfast.engine import Engine

    class ProbedEngine(Engine):
        """The engine, unchanged, with read-only hooks that copy what the soak needs into `probe`."""

        probe: Probe

        def _build_kernels(self) -> None:
            super()._build_kernels()
            accept = self.orders.on_fill
            keys = self.probe.fill_keys

            def on_fill(fill: Any, t: float = 0.0) -> bool:
                accepted = accept(fill, t)
                if accepted:
                    keys.append(fill.get("tid"))
                return accepted

            self.orders.on_fill = on_fill
            self._probe_next = 0.0

        def _resync(self, now: float) -> None:
            wall, t0 = time.time(), time.perf_counter()
            super()._resync(now)
            self.probe.resyncs.append([wall, time.perf_counter() - t0, not self._needs_resync])

        def _on_trip(self, trip: Any) -> None:
            live = len(self.orders.live())
            super()._on_trip(trip)
            self.probe.trips.append([time.time(), trip.reason, trip.detail, live])

        def _housekeeping(self, now: float) -> None:
            super()._housekeeping(now)
            if now >= self._probe_next:
                self._probe_next = now + PROBE_EVERY_S
                self.publish_tracked()

        def publish_tracked(self) -> None:
            live = self.orders.live()
            p = self.pipeline
            self.probe.tracked = {"t": time.time(), "cloids": [o.cloid for o in live if o.cloid],
                                  "oids": [o.oid for o in live if o.oid is not None],
                                  "states": [o.state.name for o in live], "quoting": bool(p.quoting),
                                  "hold": bool(p.hold), "quote_rc": p.last_rc, "in_flight": self.gateway.in_flight,
                                  "quote_levels": [self.quoter.n_bid, self.quoter.n_ask],
                                  "quote_depth": [self.quoter.delta_bid, self.quoter.delta_ask],
                                  "q_target": p.target.q_target, "sigma": p.vol.sigma_eff,
                                  "order_slots": sorted(o.slot for o in live),
                                  "reconciler_slots": [s for s in range(self.reconciler.max_orders)
                                                       if self.reconciler.slot_state(s)]}

    return ProbedEngine


def _write_json(path: str, obj: Any) -> None:
    tmp = path + ".tmp"
    with open(tmp, "wb") as fh:
        fh.write(orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY))
    os.replace(tmp, path)


def engine_child() -> int:
    """Entry point of the engine process: job JSON on stdin, summary JSON on stdout, JSON logs on stderr."""
    job = orjson.loads(sys.stdin.buffer.read())
    from hlfast.config import load_config
    from hlfast.engine import configure_logging
    from hlfast.keys import PrivateKey

    cfg = load_config(job.get("config_path"), env={}, overrides=job["overrides"])
    configure_logging(cfg.engine.log_level, cfg.engine.log_json)
    key = PrivateKey.from_hex(job.pop("secret"), origin="soak job")
    probe = Probe()
    state_path = job["state_path"]
    stop_writer = threading.Event()

    def writer() -> None:
        while not stop_writer.wait(0.5):
            try:
                _write_json(state_path, asdict(probe))
            except (OSError, TypeError, RuntimeError):
                pass  # a list grew while it was copied: the next round writes it

    threading.Thread(target=writer, name="soak-probe", daemon=True).start()
    engine_cls = _instrumented_engine_class()
    stop = {"signal": None}

    def early_signal(signum: int, frame: object) -> None:
        stop["signal"] = signal.Signals(signum).name

    signal.signal(signal.SIGTERM, early_signal)
    engine = None
    for attempt in range(1, SETUP_ATTEMPTS + 1):
        engine_cls.probe = probe
        engine = engine_cls(cfg, key, base_url=job["base_url"], install_signals=True,
                            metrics_port=job["metrics_port"])
        try:
            engine.setup()
            break
        except Exception as exc:  # noqa: BLE001 - any start-up failure is recorded, the attempt retried
            probe.setup_failures.append(f"attempt {attempt}: {type(exc).__name__}: {exc}")
            for conn in engine.conns:
                conn.close()
            engine.http.close()
            engine = None
            if stop["signal"]:
                break
            time.sleep(1.0)
    if engine is None:
        probe.phase = "setup failed"
        stop_writer.set()
        _write_json(state_path, asdict(probe))
        return 2
    probe.phase = "running"
    engine.publish_tracked()
    summary = engine.run(None) if not stop["signal"] else engine.shutdown()
    probe.phase = "done"
    o = engine.orders
    probe.final = {
        "rejects_by_reason": dict(engine.rejects_by_reason),
        "kill_trips_by_reason": {k: v for k, v in engine.kill.trips_by_reason.items() if v},
        "duplicate_fill_messages_ignored": o.duplicate_fills, "unmatched_fills": o.unmatched_fills,
        "adopted_orders": o.adopted, "bad_events": o.bad_events, "last_bad_event": o.last_bad_event,
        "exact": {k: str(v) for k, v in o.exact().items()}, "position0": engine.position0,
        "gateway": asdict(engine.gateway.stats),
    }
    stop_writer.set()
    _write_json(state_path, asdict(probe))
    sys.stdout.write(orjson.dumps(summary.to_dict()).decode() + "\n")
    sys.stdout.flush()
    return 0


# =============================================================================================
# the soak driver
# =============================================================================================
@dataclass
class SoakOptions:
    seconds: float = 600.0
    seed: int = 1
    faults: str = DEFAULT_FAULTS
    coin: str = "BTC"
    block_ms: int = 100
    cascade_every_s: float = 120.0
    usdc: float = 100_000.0
    config_path: str | None = None
    overrides: dict = field(default_factory=dict)
    out_dir: str | None = None  # keep logs here (default: a temporary directory, removed)
    busy: bool = False


def _merge(*layers: dict) -> dict:
    out: dict[str, dict] = {}
    for layer in layers:
        for section, values in layer.items():
            out.setdefault(section, {}).update(values)
    return out


def merge_faults(base: str, edits: list[str]) -> str:
    """Replace or add KEY=VALUE parts of a fault spec (validated by the venue's parser)."""
    parts: dict[str, str] = {}
    for part in [p for p in base.split(",") if p.strip()] + list(edits):
        key, _, value = part.partition("=")
        parts[key.strip()] = value.strip()
    spec = ",".join(f"{k}={v}" for k, v in parts.items() if v not in ("", "0"))
    parse_fault_spec(spec)
    return spec


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def _stderr_into(path: Path) -> Iterator[None]:
    """Point fd 2 at `path` while a child is spawned, so the child's log lands there."""
    sys.stderr.flush()
    saved = os.dup(2)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.dup2(fd, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(fd)


@contextlib.contextmanager
def _env(name: str, value: str) -> Iterator[None]:
    """Set an environment variable for a child spawned inside the block."""
    saved = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if saved is None:
            del os.environ[name]
        else:
            os.environ[name] = saved


def _rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status", "rb") as fh:
            for line in fh:
                if line.startswith(b"VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except (OSError, ValueError, IndexError):
        pass
    return float("nan")


def _read_probe(path: Path) -> dict:
    try:
        return orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return {}


def _parse_metrics(text: str) -> dict[str, float]:
    values: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line[0] == "#" or "{" in line:
            continue
        name, _, value = line.partition(" ")
        try:
            values[name] = float(value)
        except ValueError:
            continue
    return values


def _quantiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {"count": 0, "p50": 0.0, "max": 0.0}
    return {"count": len(values), "p50": statistics.median(values), "max": max(values)}


def _slope_per_hour(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (t seconds, value) scaled to one hour."""
    pts = [(t, v) for t, v in points if math.isfinite(v)]
    if len(pts) < 3:
        return 0.0
    mt = sum(t for t, _ in pts) / len(pts)
    mv = sum(v for _, v in pts) / len(pts)
    den = sum((t - mt) ** 2 for t, _ in pts)
    return 0.0 if den == 0 else 3600.0 * sum((t - mt) * (v - mv) for t, v in pts) / den


class OrphanTracker:
    """Orders resting at the venue that the engine does not track, as episodes from first to last sight."""

    def __init__(self) -> None:
        self.open: dict[int, list[float]] = {}  # oid -> [first seen, last seen]
        self.ages: list[float] = []
        self.samples_with_orphans = 0
        self.details: list[dict] = []

    def observe(self, t: float, rows: list[dict], tracked: dict) -> None:
        if not tracked:
            return
        seen_at = float(tracked.get("t", 0.0))
        oids, cloids = set(tracked.get("oids", ())), set(tracked.get("cloids", ()))
        now_untracked = set()
        for row in rows:
            if row.get("timestamp", 0) / 1000.0 > seen_at:  # younger than the engine's view: cannot judge
                continue
            oid = int(row["oid"])
            if oid in oids or (row.get("cloid") and row["cloid"] in cloids):
                continue
            now_untracked.add(oid)
            if oid not in self.open:
                self.open[oid] = [t, t]
                if len(self.details) < 20:
                    self.details.append({"t": round(t, 3), "row": row})
            self.open[oid][1] = t
        if now_untracked:
            self.samples_with_orphans += 1
        for oid in [o for o in self.open if o not in now_untracked]:
            first, last = self.open.pop(oid)
            self.ages.append(last - first + OPEN_ORDERS_EVERY_S)

    def close_all(self) -> None:
        for first, last in self.open.values():
            self.ages.append(last - first + OPEN_ORDERS_EVERY_S)
        self.open.clear()


class Soak:
    def __init__(self, opts: SoakOptions) -> None:
        self.opts = opts
        self.tmp = None if opts.out_dir else tempfile.TemporaryDirectory(prefix="hlfast-soak-")
        self.dir = Path(opts.out_dir or self.tmp.name)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.paths = {name: self.dir / name for name in
                      ("venue.log", "engine.log", "engine.out", "probe.json", "metrics.txt")}
        for p in self.paths.values():
            p.unlink(missing_ok=True)
        self._hard_limit: float | None = None

    def overrides(self, metrics_port: int) -> dict:
        from hlfast.venue.market import LIQUIDATOR_ADDRESS

        extra = {"market": {"coin": self.opts.coin}, "metrics": {"port": metrics_port},
                 "risk": {"liquidator_addresses": [LIQUIDATOR_ADDRESS]}}
        if self.opts.busy:
            extra["engine"] = {"read_mode": "busy"}
        return _merge(SOAK_OVERRIDES, extra, self.opts.overrides)

    # ---- the run ------------------------------------------------------------------------------
    def run(self) -> dict:
        from hlfast.gateway import HttpClient, HttpError
        from hlfast.keys import generate_private_key
        from hlfast.venue.process import VenueProcess

        opts = self.opts
        key = generate_private_key()
        secret = key._key.secret.hex()
        user = key.address.lower()
        venue = VenueProcess(coins=(opts.coin,), accounts=[(key.address, opts.usdc)], seed=opts.seed,
                             block_ms=opts.block_ms, faults=opts.faults or None, show_log=True,
                             source="py:perf.soak:cascade_market")
        with _stderr_into(self.paths["venue.log"]), _env(CASCADE_ENV, str(opts.cascade_every_s)):
            base_url = venue.start()
        metrics_port = _free_port()
        job = {"base_url": base_url, "secret": "0x" + secret, "overrides": self.overrides(metrics_port),
               "config_path": opts.config_path, "metrics_port": metrics_port,
               "state_path": str(self.paths["probe.json"])}
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
        env = {k: v for k, v in env.items() if not k.startswith("HLFAST_")}
        t_launch = time.monotonic()
        with open(self.paths["engine.out"], "wb") as out, open(self.paths["engine.log"], "wb") as err:
            proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--engine-child"],
                                    stdin=subprocess.PIPE, stdout=out, stderr=err, env=env, cwd=str(ROOT))
        proc.stdin.write(orjson.dumps(job))
        proc.stdin.close()
        del job
        http = HttpClient(base_url, timeout_s=2.0)
        s = _Samples()
        try:
            self._wait_running(proc, t_launch)
            t0 = time.monotonic()
            deadline = t0 + opts.seconds
            next_fast = next_slow = t0
            metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
            with open(self.paths["metrics.txt"], "ab") as metrics_log:
                while True:
                    now = time.monotonic()
                    if now >= deadline:
                        break
                    if proc.poll() is not None:
                        s.early_exit = True
                        break
                    if now >= next_fast:
                        next_fast += OPEN_ORDERS_EVERY_S
                        self._sample_orders(http, HttpError, user, s)
                    if now >= next_slow:
                        next_slow += SLOW_SAMPLE_EVERY_S
                        self._sample_slow(http, HttpError, user, s, proc.pid, venue, metrics_url, metrics_log,
                                          now - t0)
                    time.sleep(max(0.0, min(next_fast, next_slow) - time.monotonic()))
            run_seconds = time.monotonic() - t0
            shutdown_s, exit_code = self._stop_engine(proc)
            final = self._final_venue_state(http, HttpError, user, s)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            venue_alive = venue.process is not None and venue.process.poll() is None
            http.close()
            venue.stop()
        report = self._report(s, final, run_seconds, shutdown_s, exit_code, venue_alive, user)
        report["private_key"] = self._search_key(secret, report)
        return report

    def _wait_running(self, proc: subprocess.Popen, t_launch: float) -> None:
        while time.monotonic() - t_launch < 90:
            state = _read_probe(self.paths["probe.json"])
            if state.get("phase") in ("running", "setup failed") or proc.poll() is not None:
                return
            time.sleep(0.05)
        raise RuntimeError("the engine did not finish start-up within 90 s; see " + str(self.paths["engine.log"]))

    def _sample_orders(self, http: Any, http_error: type, user: str, s: _Samples) -> None:
        t_req = time.time()
        try:
            rows = http.info({"type": "openOrders", "user": user, "dex": ""})
        except http_error as exc:
            s.sampler_http_faults[str(exc.status)] = s.sampler_http_faults.get(str(exc.status), 0) + 1
            return
        except (OSError, ValueError):
            s.sampler_errors += 1
            return
        t_resp = time.time()
        rows = [r for r in rows if r.get("coin") == self.opts.coin]
        s.open_counts.append((t_req, t_resp, len(rows)))
        s.max_open = max(s.max_open, len(rows))
        s.orphans.observe(t_resp, rows, _read_probe(self.paths["probe.json"]).get("tracked", {}))

    def _sample_slow(self, http: Any, http_error: type, user: str, s: _Samples, pid: int, venue: Any,
                     metrics_url: str, metrics_log: Any, t_rel: float) -> None:
        s.rss.append((t_rel, _rss_mb(pid)))
        if venue.process is not None:
            s.venue_rss.append((t_rel, _rss_mb(venue.process.pid)))
        try:
            with urllib.request.urlopen(metrics_url, timeout=1.0) as resp:
                text = resp.read()
            metrics_log.write(text)
            s.metrics = _parse_metrics(text.decode(errors="replace"))
        except OSError:
            s.metrics_errors += 1
        try:
            state = http.info({"type": "clearinghouseState", "user": user, "dex": ""})
        except http_error as exc:
            s.sampler_http_faults[str(exc.status)] = s.sampler_http_faults.get(str(exc.status), 0) + 1
            return
        except (OSError, ValueError):
            s.sampler_errors += 1
            return
        pos = _position(state, self.opts.coin)
        s.max_abs_position = max(s.max_abs_position, abs(pos))
        if abs(pos) > self.hard_limit() + 1e-12:
            s.breaches.append((round(t_rel, 2), pos))
        last_open = s.open_counts[-1][2] if s.open_counts else 0
        s.quoting.append((t_rel, s.metrics.get("mm_quoting", 0.0) > 0, last_open))
        engine_pos = s.metrics.get("mm_position")
        if engine_pos is not None:
            s.drift.append((t_rel, engine_pos - pos))

    def hard_limit(self) -> float:
        """The position the kill switch treats as runaway: runaway_mult x max_position."""
        if self._hard_limit is None:
            from hlfast.config import load_config

            cfg = load_config(self.opts.config_path, env={}, overrides={"risk": self.overrides(0)["risk"]})
            self._hard_limit = cfg.risk.runaway_mult * cfg.risk.max_position
        return self._hard_limit

    def _stop_engine(self, proc: subprocess.Popen) -> tuple[float, int | None]:
        t = time.monotonic()
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(SHUTDOWN_WAIT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                return time.monotonic() - t, None
        return time.monotonic() - t, proc.returncode

    def _final_venue_state(self, http: Any, http_error: type, user: str, s: _Samples) -> dict:
        final: dict[str, Any] = {}
        for name, body in (("open", {"type": "openOrders", "user": user, "dex": ""}),
                           ("state", {"type": "clearinghouseState", "user": user, "dex": ""}),
                           ("stats", {"type": "venueStats"})):
            for _ in range(20):  # HTTP faults hit this client too
                try:
                    final[name] = http.info(body)
                    break
                except http_error as exc:
                    s.sampler_http_faults[str(exc.status)] = s.sampler_http_faults.get(str(exc.status), 0) + 1
                except (OSError, ValueError):
                    s.sampler_errors += 1
                time.sleep(0.05)
        final["fills"] = self._venue_fills(http, http_error, user, s)
        return final

    def _venue_fills(self, http: Any, http_error: type, user: str, s: _Samples) -> list[dict]:
        fills: dict[Any, dict] = {}
        start = s.session_start_ms
        for _ in range(1000):
            try:
                rows = http.info({"type": "userFillsByTime", "user": user, "startTime": start})
            except http_error as exc:
                s.sampler_http_faults[str(exc.status)] = s.sampler_http_faults.get(str(exc.status), 0) + 1
                time.sleep(0.05)
                continue
            new = [r for r in rows if r.get("coin") == self.opts.coin and r.get("tid") not in fills]
            for r in new:
                fills[r.get("tid")] = r
            if len(rows) < 2000 or not new:
                break
            start = max(int(r["time"]) for r in rows)
        return list(fills.values())

    # ---- the report ---------------------------------------------------------------------------
    def _report(self, s: _Samples, final: dict, run_seconds: float, shutdown_s: float, exit_code: int | None,
                venue_alive: bool, user: str) -> dict:
        opts = self.opts
        probe = _read_probe(self.paths["probe.json"])
        summary = _last_json_line(self.paths["engine.out"])
        log_scan = _scan_engine_log(self.paths["engine.log"])
        venue_log = self.paths["venue.log"].read_text(errors="replace")
        s.orphans.close_all()
        open_at_exit = [r for r in final.get("open", []) if r.get("coin") == opts.coin]
        # crashes: the engine died or hung, a traceback anywhere, the venue died
        trips = probe.get("trips", [])
        permanent = [t for t in trips if t[1] not in ("stale_data", "cascade_pull", "rate_limit")]
        crashes = {
            "engine_exit_code": exit_code, "engine_died_early": s.early_exit,
            "engine_tracebacks": log_scan["tracebacks"], "engine_thread_exceptions": log_scan["thread_exceptions"],
            "venue_tracebacks": venue_log.count("Traceback"), "venue_block_failures":
                venue_log.count("block processing failed"), "venue_died": not venue_alive,
        }
        n_crashes = (int(exit_code != 0) + log_scan["tracebacks"] + log_scan["thread_exceptions"]
                     + crashes["venue_tracebacks"] + crashes["venue_block_failures"] + int(not venue_alive))
        # kill-switch trips → time until the venue showed zero resting orders
        trip_rows = []
        for wall, reason, detail, live in trips:
            after = [(t1, n) for t0, t1, n in s.open_counts if t0 >= wall]
            zero_at = next((t1 for t1, n in after if n == 0), None)
            trip_rows.append({"reason": reason, "detail": detail, "live_orders_at_trip": live,
                              "measured": bool(after),  # False: the run ended before the next sample
                              "time_to_zero_resting_s": None if zero_at is None else round(zero_at - wall, 3)})
        ttz = [r["time_to_zero_resting_s"] for r in trip_rows if r["time_to_zero_resting_s"] is not None]
        # fills: the venue's list against what the engine accepted
        venue_fills = final.get("fills", [])
        venue_tids = {f.get("tid") for f in venue_fills}
        engine_keys = probe.get("fill_keys", [])
        engine_tids = set(engine_keys)
        fills = {
            "venue": len(venue_fills), "engine": len(engine_keys),
            "duplicates_counted": len(engine_keys) - len(engine_tids),
            "missed": len(venue_tids - engine_tids), "extra": len(engine_tids - venue_tids),
            "duplicate_messages_ignored": probe.get("final", {}).get("duplicate_fill_messages_ignored"),
        }
        # ledger: engine summary vs the venue after the engine's last resync
        venue_pos = _position(final.get("state", {}), opts.coin)
        v_cash = -sum((1 if f["side"] == "B" else -1) * float(f["px"]) * float(f["sz"]) + float(f["fee"])
                      for f in venue_fills)
        v_fees = sum(float(f["fee"]) for f in venue_fills)
        exact = probe.get("final", {}).get("exact", {})
        e_cash = float(exact.get("cash", "nan"))
        lot = 10.0 ** -_sz_decimals(opts.coin)
        ledger = {
            "venue_position": venue_pos, "engine_position": summary.get("position"),
            "position_drift": _diff(summary.get("position"), venue_pos),
            "cash_drift_usd": _diff(e_cash, v_cash), "fees_drift_usd": _diff(summary.get("fees"), v_fees),
            "sampled_drift_max": max((abs(d) for _, d in s.drift), default=0.0),
            "sampled_drift_longest_s": _longest_run(s.drift, lot / 2),
        }
        # faults the venue injected (minus the HTTP ones that hit this sampler, not the engine)
        counts = dict(final.get("stats", {}).get("faults", {}).get("counts", {}))
        for status, kind in (("500", "http5xx"), ("429", "http429")):
            if kind in counts:
                counts[kind] -= s.sampler_http_faults.get(status, 0)
        resyncs = probe.get("resyncs", [])
        warm = run_seconds * 0.25
        rss_tail = [(t, v) for t, v in s.rss if t >= warm]
        t2o = summary.get("tick_to_order_us", {})
        return {
            "seconds": round(run_seconds, 1), "seed": opts.seed, "faults": opts.faults, "coin": opts.coin,
            "block_ms": opts.block_ms, "cascade_every_s": opts.cascade_every_s,
            "hard_position_limit": self.hard_limit(),
            "crashes": n_crashes, "crash_detail": crashes,
            "restarts_needed": int(s.early_exit) + int(exit_code is None) + len(permanent),
            "setup_retries": len(probe.get("setup_failures", [])),
            "setup_failures": probe.get("setup_failures", []),
            "orphans": {"at_exit": len(open_at_exit), "episodes": len(s.orphans.ages),
                        "max_age_s": round(max(s.orphans.ages, default=0.0), 3),
                        "over_5s": sum(1 for a in s.orphans.ages if a > ORPHAN_LIMIT_S),
                        "samples_with_orphans": s.orphans.samples_with_orphans,
                        "first_seen": s.orphans.details[:5], "open_orders_samples": len(s.open_counts)},
            "resting_orders_at_exit_engine": summary.get("resting_orders_at_exit"),
            "position_breaches": len(s.breaches), "breach_samples": s.breaches[:10],
            "max_abs_position": s.max_abs_position,
            "ledger": ledger, "fills": fills,
            "kill_switch": {"trips": len(trip_rows), "by_reason": _count(r["reason"] for r in trip_rows),
                            "never_reached_zero": sum(1 for r in trip_rows
                                                      if r["measured"] and r["time_to_zero_resting_s"] is None),
                            "time_to_zero_p50_s": statistics.median(ttz) if ttz else None,
                            "time_to_zero_max_s": max(ttz) if ttz else None, "list": trip_rows[:50]},
            "quoting": _quoting_figures(s.quoting),
            "rejects": summary.get("rejects"), "rejects_by_reason": probe.get("final", {}).get("rejects_by_reason", {}),
            "reconnects": summary.get("reconnects"),
            "resync": {**{k: (round(v * 1e3, 3) if k != "count" else v)
                          for k, v in _quantiles([d for _, d, _ in resyncs]).items()},
                       "failed": sum(1 for _, _, ok in resyncs if not ok), "unit": "ms"},
            "post_timeouts": summary.get("post_timeouts"), "malformed_frames": summary.get("malformed_frames"),
            "rss_mb": {"engine_start": _first(s.rss), "engine_end": _last(s.rss),
                       "engine_growth_mb_per_hour": round(_slope_per_hour(rss_tail), 2),
                       "venue_start": _first(s.venue_rss), "venue_end": _last(s.venue_rss)},
            "tick_to_order_us": {"p50": t2o.get("p50"), "p99": t2o.get("p99"), "count": t2o.get("count")},
            "shutdown_s": round(shutdown_s, 3), "exit_reason": summary.get("exit_reason"),
            "engine_summary": {k: summary.get(k) for k in ("pnl", "fees", "fills", "volume", "ticks", "quote_cycles",
                                                           "actions", "kill_switch")},
            "engine_errors": log_scan["errors"][:10], "engine_error_count": log_scan["error_count"],
            "faults_injected": counts, "sampler": {"http_faults": s.sampler_http_faults,
                                                   "errors": s.sampler_errors, "metrics_errors": s.metrics_errors},
            "logs": str(self.dir) if self.tmp is None else None,
        }

    def _search_key(self, secret: str, report: dict) -> dict:
        """Occurrences of the private key (and of its first 16 hex digits) in everything captured."""
        needle, prefix = secret.lower(), secret.lower()[:16]
        full = partial = scanned = 0
        texts = [p.read_bytes() for p in self.paths.values() if p.exists()]
        texts.append(orjson.dumps(report))
        for raw in texts:
            text = raw.decode(errors="replace").lower()
            scanned += len(raw)
            full += text.count(needle)
            partial += text.count(prefix)
        return {"occurrences": full, "prefix_occurrences": partial, "files": len(texts), "bytes": scanned}

    def close(self) -> None:
        if self.tmp is not None:
            self.tmp.cleanup()


@dataclass
class _Samples:
    session_start_ms: int = 0
    open_counts: list = field(default_factory=list)  # (t request, t response, n) wall seconds
    max_open: int = 0
    orphans: OrphanTracker = field(default_factory=OrphanTracker)
    rss: list = field(default_factory=list)
    venue_rss: list = field(default_factory=list)
    metrics: dict = field(default_factory=dict)
    breaches: list = field(default_factory=list)
    drift: list = field(default_factory=list)
    quoting: list = field(default_factory=list)  # (t, engine says quoting, venue open orders)
    max_abs_position: float = 0.0
    early_exit: bool = False
    sampler_http_faults: dict = field(default_factory=dict)
    sampler_errors: int = 0
    metrics_errors: int = 0


def _position(state: Any, coin: str) -> float:
    if not isinstance(state, dict):
        return 0.0
    for ap in state.get("assetPositions", ()):
        pos = ap.get("position", {})
        if pos.get("coin") == coin:
            return float(pos.get("szi", 0.0))
    return 0.0


def _sz_decimals(coin: str) -> int:
    from hlfast.venue.market import resolve_coins

    return resolve_coins([coin])[0].sz_decimals


def _diff(a: Any, b: float) -> float | None:
    try:
        return round(float(a) - b, 9)
    except (TypeError, ValueError):
        return None


def _longest_run(series: list[tuple[float, float]], tolerance: float) -> float:
    """Longest stretch (seconds) over which consecutive samples all differ by more than `tolerance`."""
    longest, start = 0.0, None
    for t, d in series:
        if abs(d) > tolerance:
            start = t if start is None else start
            longest = max(longest, t - start)
        else:
            start = None
    return round(longest, 2)


def _quoting_figures(samples: list[tuple[float, bool, int]]) -> dict[str, float]:
    """Share of samples quoting / with orders resting, and the longest stretch quoting with nothing resting."""
    n = max(1, len(samples))
    longest, start = 0.0, None
    for t, quoting, resting in samples:
        if quoting and resting == 0:
            start = t if start is None else start
            longest = max(longest, t - start)
        else:
            start = None
    return {"engine_quoting_share": round(sum(1 for _, q, _ in samples if q) / n, 3),
            "venue_resting_share": round(sum(1 for _, _, r in samples if r > 0) / n, 3),
            "longest_quoting_without_orders_s": round(longest, 1)}


def _count(items: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for item in items:
        out[item] = out.get(item, 0) + 1
    return out


def _first(points: list[tuple[float, float]]) -> float | None:
    return round(points[0][1], 1) if points else None


def _last(points: list[tuple[float, float]]) -> float | None:
    return round(points[-1][1], 1) if points else None


def _last_json_line(path: Path) -> dict:
    try:
        lines = path.read_bytes().splitlines()
    except OSError:
        return {}
    for line in reversed(lines):
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if isinstance(obj, dict):
            return obj
    return {}


def _scan_engine_log(path: Path) -> dict:
    """Tracebacks, thread exceptions and ERROR records (other than kill-switch lines) in the engine's log."""
    out = {"tracebacks": 0, "thread_exceptions": 0, "error_count": 0, "errors": []}
    try:
        lines = path.read_bytes().splitlines()
    except OSError:
        return out
    for line in lines:
        if line.startswith(b"Traceback"):
            out["tracebacks"] += 1
        elif line.startswith(b"Exception in thread"):
            out["thread_exceptions"] += 1
        if not line.startswith(b"{"):
            continue
        try:
            rec = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if rec.get("level") in ("ERROR", "CRITICAL") and not str(rec.get("msg", "")).startswith("KILL SWITCH"):
            out["error_count"] += 1
            if len(out["errors"]) < 10:
                out["errors"].append(rec.get("msg"))
    return out


def failures(report: dict) -> list[str]:
    """The invariants that did not hold (empty = pass)."""
    checks = [
        ("crashes", report["crashes"] == 0),
        ("restarts needed", report["restarts_needed"] == 0),
        ("orphan orders at exit", report["orphans"]["at_exit"] == 0),
        (f"orphan orders older than {ORPHAN_LIMIT_S:g} s", report["orphans"]["over_5s"] == 0),
        ("position-limit breaches", report["position_breaches"] == 0),
        ("duplicate fills counted", report["fills"]["duplicates_counted"] == 0),
        ("fills counted that the venue does not have", report["fills"]["extra"] == 0),
        ("kill-switch trips that never reached zero resting orders", report["kill_switch"]["never_reached_zero"] == 0),
        ("position drift at exit", abs(report["ledger"]["position_drift"] or 0.0) < 1e-9
         and report["ledger"]["position_drift"] is not None),
        ("private key occurrences", report["private_key"]["occurrences"] == 0
         and report["private_key"]["prefix_occurrences"] == 0),
    ]
    return [name for name, ok in checks if not ok]


def format_report(r: dict) -> str:
    o, f, k, led, rss = r["orphans"], r["fills"], r["kill_switch"], r["ledger"], r["rss_mb"]
    ttz = (f"time to zero resting p50 {k['time_to_zero_p50_s']:.2f} s, max {k['time_to_zero_max_s']:.2f} s"
           if k["time_to_zero_p50_s"] is not None else "no trips")
    t2o = r["tick_to_order_us"]
    fail = failures(r)
    lines = [
        f"hlfast reliability soak: {r['seconds']:.0f} s, seed {r['seed']}, {r['coin']}, block {r['block_ms']} ms, "
        f"cascade every ~{r['cascade_every_s']:g} s",
        f"  faults            {r['faults']}",
        f"  crashes           {r['crashes']}   (engine exit code {r['crash_detail']['engine_exit_code']}, "
        f"venue alive {not r['crash_detail']['venue_died']})",
        f"  restarts needed   {r['restarts_needed']}   (setup retries {r['setup_retries']})",
        f"  orphan orders     at exit {o['at_exit']}; episodes {o['episodes']}, max age {o['max_age_s']:.2f} s, "
        f"older than {ORPHAN_LIMIT_S:g} s {o['over_5s']}  ({o['open_orders_samples']} samples)",
        f"  position limit    breaches {r['position_breaches']} (hard limit {r['hard_position_limit']:g}, "
        f"max |position| {r['max_abs_position']:g})",
        f"  ledger at exit    position drift {led['position_drift']}, cash drift {led['cash_drift_usd']} USD, "
        f"fees drift {led['fees_drift_usd']} USD; sampled drift max {led['sampled_drift_max']:g}, "
        f"longest {led['sampled_drift_longest_s']:g} s",
        f"  fills             venue {f['venue']}, engine {f['engine']}, duplicates counted {f['duplicates_counted']}, "
        f"missed {f['missed']}, extra {f['extra']}, duplicate messages ignored {f['duplicate_messages_ignored']}",
        f"  kill switch       {k['trips']} trips {k['by_reason']}; {ttz}; never zero {k['never_reached_zero']}",
        f"  quoting           engine quoting {r['quoting']['engine_quoting_share']:.0%} of samples, orders resting "
        f"{r['quoting']['venue_resting_share']:.0%}; longest stretch quoting with none resting "
        f"{r['quoting']['longest_quoting_without_orders_s']:.0f} s",
        f"  rejects           {r['rejects']} {r['rejects_by_reason']}",
        f"  reconnects        {r['reconnects']}; resyncs {r['resync']['count']} (p50 {r['resync']['p50']:.2f} ms, "
        f"max {r['resync']['max']:.2f} ms, failed {r['resync']['failed']}); post timeouts {r['post_timeouts']}; "
        f"malformed frames {r['malformed_frames']}",
        f"  RSS               engine {rss['engine_start']} -> {rss['engine_end']} MB "
        f"({rss['engine_growth_mb_per_hour']:+.1f} MB/h after warm-up); venue {rss['venue_start']} -> "
        f"{rss['venue_end']} MB",
        f"  tick-to-order     p50 {t2o['p50'] or 0:.1f} us, p99 {t2o['p99'] or 0:.1f} us (n={t2o['count']})",
        f"  private key       {r['private_key']['occurrences']} occurrences "
        f"({r['private_key']['prefix_occurrences']} of its first 16 hex digits) in {r['private_key']['files']} "
        f"captures, {r['private_key']['bytes'] / 1e6:.1f} MB",
        f"  faults injected   {r['faults_injected']}",
        f"  shutdown          {r['shutdown_s']:.2f} s after SIGTERM, exit reason {r['exit_reason']!r}",
    ]
    if r["engine_error_count"]:
        lines.append(f"  engine ERROR logs {r['engine_error_count']}: {r['engine_errors'][:3]}")
    if r["setup_failures"]:
        lines.append(f"  setup failures    {r['setup_failures']}")
    if r["logs"]:
        lines.append(f"  logs              {r['logs']}")
    lines.append("  verdict           " + ("PASS" if not fail else "FAIL: " + ", ".join(fail)))
    return "\n".join(lines)


def quick_options(seed: int = 1, **changes: Any) -> SoakOptions:
    """The CI-sized soak: 40 s of trading under dense faults (about 45 s wall with start-up and exit)."""
    return SoakOptions(**{"seconds": QUICK_SECONDS, "seed": seed, "faults": QUICK_FAULTS, "block_ms": 50,
                          "cascade_every_s": 8.0, **changes})


def run_soak(opts: SoakOptions) -> dict:
    soak = Soak(opts)
    try:
        return soak.run()
    finally:
        soak.close()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--engine-child"]:
        return engine_child()
    parser = argparse.ArgumentParser(prog="perf/soak.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="run length (default 10)")
    parser.add_argument("--seconds", type=float, help="run length in seconds (overrides --minutes)")
    parser.add_argument("--quick", action="store_true", help="40 s run with denser faults (the CI-sized soak)")
    parser.add_argument("--seed", type=int, default=1, help="market and fault-dice seed")
    parser.add_argument("--faults", help="full fault spec (default: the built-in rates; see hlfast/venue/faults.py)")
    parser.add_argument("--fault", action="append", default=[], metavar="KEY=VALUE",
                        help="change one fault rate, e.g. --fault reject=0.05 (repeatable; =0 removes it)")
    parser.add_argument("--cascade-every", type=float, help="mean seconds between liquidation cascades")
    parser.add_argument("--coin", default="BTC")
    parser.add_argument("--block-ms", type=int, help="venue block cadence")
    parser.add_argument("--config", help="engine TOML config (the soak's settings are applied on top)")
    parser.add_argument("--busy", action="store_true", help="engine in busy-poll mode (needs a free core)")
    parser.add_argument("--out-dir", help="keep the captured logs, metrics and probe here")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    base = args.faults if args.faults is not None else (QUICK_FAULTS if args.quick else DEFAULT_FAULTS)
    try:
        faults = merge_faults(base, args.fault)
    except ValueError as exc:
        parser.error(str(exc))
    opts = quick_options(args.seed) if args.quick else SoakOptions(seconds=args.minutes * 60.0, seed=args.seed)
    opts.faults, opts.coin, opts.config_path, opts.out_dir, opts.busy = (
        faults, args.coin, args.config, args.out_dir, args.busy)
    if args.seconds:
        opts.seconds = args.seconds
    if args.block_ms:
        opts.block_ms = args.block_ms
    if args.cascade_every:
        opts.cascade_every_s = args.cascade_every
    report = run_soak(opts)
    if args.json:
        sys.stdout.write(orjson.dumps(report).decode() + "\n")
    else:
        print(format_report(report))
    return 0 if not failures(report) else 1


if __name__ == "__main__":
    sys.exit(main())
