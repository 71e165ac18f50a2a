"""Reliability soak: the engine in its own process against the local venue with fault injection on.

The venue runs in a child process with the fault injector on (disconnects, dropped / duplicated /
reordered user messages, delayed acks, lost replies, HTTP 5xx/429, per-order rejects, malformed
frames, market-data stalls longer than the stale threshold) and a synthetic market with frequent
liquidation cascades.  The engine is the product itself, `hlfast run`, in a second process, with the
soak's settings in a generated config file.  Everything is measured from outside: the venue is
sampled over /info (open orders 4×/s, position and account 1×/s), the engine over its metrics server
(`/debug/orders`, the orders it tracks, 4×/s for orphan detection; `/metrics` 1×/s) and /proc.  At
the end the engine gets SIGTERM and prints its `--json` summary (kill-switch trips with their times,
resyncs, rejects by reason, duplicate fills ignored); the venue's ledger is then compared with it.

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
import time
import tomllib
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
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
SHUTDOWN_WAIT_S = 30.0
STARTUP_WAIT_S = 90.0

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
# engine side: `hlfast run` with a generated config file
# =============================================================================================
def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value) if math.isfinite(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, str):
        return orjson.dumps(value).decode()  # a JSON string is a valid TOML basic string
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def to_toml(config: dict[str, dict[str, Any]]) -> str:
    """Sections of scalars and lists (the config schema's shape) as TOML text."""
    lines: list[str] = []
    for section, values in config.items():
        lines.append(f"[{section}]")
        lines.extend(f"{key} = {_toml_value(value)}" for key, value in values.items())
        lines.append("")
    return "\n".join(lines)


def _get_json(url: str, timeout: float = 1.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return orjson.loads(resp.read())


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
                      ("venue.log", "engine.log", "engine.out", "engine.toml", "metrics.txt")}
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

    def engine_config(self, base_url: str, metrics_port: int) -> dict:
        """The user's config file (if any) with the soak's settings and the venue's URL on top."""
        from hlfast.config import load_config

        user: dict = {}
        if self.opts.config_path:
            with open(self.opts.config_path, "rb") as fh:
                user = tomllib.load(fh)
        config = _merge(user, self.overrides(metrics_port), {"exchange": {"base_url": base_url}})
        config.get("exchange", {}).pop("key_file", None)  # the soak's throw-away key comes from the env
        config.get("exchange", {}).pop("key_env", None)
        load_config(None, env={}, overrides=config)  # fail here, in the driver, on a bad combination
        return config

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
        self.paths["engine.toml"].write_text(to_toml(self.engine_config(base_url, metrics_port)))
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
        env = {k: v for k, v in env.items() if not k.startswith("HLFAST_")}
        env["HLFAST_PRIVATE_KEY"] = "0x" + secret
        t_launch = time.monotonic()
        with open(self.paths["engine.out"], "wb") as out, open(self.paths["engine.log"], "wb") as err:
            proc = subprocess.Popen([sys.executable, "-m", "hlfast.cli", "run", "--config",
                                     str(self.paths["engine.toml"]), "--json"],
                                    stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env, cwd=str(ROOT))
        del env
        http = HttpClient(base_url, timeout_s=2.0)
        s = _Samples()
        engine_url = f"http://127.0.0.1:{metrics_port}"
        try:
            self._wait_running(proc, t_launch, engine_url)
            t0 = time.monotonic()
            deadline = t0 + opts.seconds
            next_fast = next_slow = t0
            metrics_url = engine_url + "/metrics"
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
                        self._sample_orders(http, HttpError, user, s, engine_url)
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

    def _wait_running(self, proc: subprocess.Popen, t_launch: float, engine_url: str) -> None:
        """Until the engine's metrics server answers (it starts with the loop, after set-up) or it exits."""
        while time.monotonic() - t_launch < STARTUP_WAIT_S:
            if proc.poll() is not None:
                return
            try:
                _get_json(engine_url + "/debug/orders", timeout=0.5)
                return
            except (OSError, ValueError):
                time.sleep(0.05)
        raise RuntimeError(f"the engine did not finish start-up within {STARTUP_WAIT_S:g} s; see "
                           + str(self.paths["engine.log"]))

    def _sample_orders(self, http: Any, http_error: type, user: str, s: _Samples, engine_url: str) -> None:
        try:  # the engine's view first: venue orders younger than the view are not judged
            tracked = _get_json(engine_url + "/debug/orders")
        except (OSError, ValueError):
            s.metrics_errors += 1
            tracked = {}
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
        s.orphans.observe(t_resp, rows, tracked)

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
        summary = _last_json_line(self.paths["engine.out"])
        log_scan = _scan_engine_log(self.paths["engine.log"])
        venue_log = self.paths["venue.log"].read_text(errors="replace")
        s.orphans.close_all()
        open_at_exit = [r for r in final.get("open", []) if r.get("coin") == opts.coin]
        # crashes: the engine died or hung, a traceback anywhere, the venue died
        trips = summary.get("kill_switch_trips") or []
        permanent = [t for t in trips if not t.get("transient")]
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
        for trip in trips:
            wall = trip["wall"]
            after = [(t1, n) for t0, t1, n in s.open_counts if t0 >= wall]
            zero_at = next((t1 for t1, n in after if n == 0), None)
            trip_rows.append({"reason": trip["reason"], "detail": trip["detail"], "t": trip["t"],
                              "live_orders_at_trip": trip.get("live_orders"),
                              "measured": bool(after),  # False: the run ended before the next sample
                              "time_to_zero_resting_s": None if zero_at is None else round(zero_at - wall, 3)})
        ttz = [r["time_to_zero_resting_s"] for r in trip_rows if r["time_to_zero_resting_s"] is not None]
        # fills: the venue's list against the engine's count (a fill counted twice, or adopted as a position
        # shift and counted again, also shows in the ledger drift below)
        venue_fills = final.get("fills", [])
        engine_fills = int(summary.get("fills") or 0)
        fills = {
            "venue": len(venue_fills), "engine": engine_fills,
            "duplicates_counted": max(0, engine_fills - len(venue_fills)),
            "missed": max(0, len(venue_fills) - engine_fills), "extra": max(0, engine_fills - len(venue_fills)),
            "duplicate_messages_ignored": summary.get("duplicate_fills"),
            "recovered_from_info": summary.get("fills_recovered"),
            "position_adjustments": summary.get("position_adjustments"),
        }
        # ledger: engine summary vs the venue after the engine's last resync
        venue_pos = _position(final.get("state", {}), opts.coin)
        v_cash = -sum((1 if f["side"] == "B" else -1) * float(f["px"]) * float(f["sz"]) + float(f["fee"])
                      for f in venue_fills)
        v_fees = sum(float(f["fee"]) for f in venue_fills)
        e_cash = float(summary.get("cash", "nan"))
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
        resync = summary.get("resync_ms") or {}
        warm = run_seconds * 0.25
        rss_tail = [(t, v) for t, v in s.rss if t >= warm]
        t2o = summary.get("tick_to_order_us", {})
        return {
            "seconds": round(run_seconds, 1), "seed": opts.seed, "faults": opts.faults, "coin": opts.coin,
            "block_ms": opts.block_ms, "cascade_every_s": opts.cascade_every_s,
            "hard_position_limit": self.hard_limit(),
            "crashes": n_crashes, "crash_detail": crashes,
            "restarts_needed": int(s.early_exit) + int(exit_code is None) + len(permanent),
            "setup_retries": log_scan["retries"], "setup_failures": log_scan["fatal"],
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
            "rejects": summary.get("rejects"), "rejects_by_reason": summary.get("rejects_by_reason") or {},
            "reconnects": summary.get("reconnects"),
            "resync": {"count": resync.get("count", 0), "p50": resync.get("p50", 0.0), "max": resync.get("max", 0.0),
                       "failed": resync.get("failed", 0), "unit": "ms"},
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
    out: dict[str, Any] = {"tracebacks": 0, "thread_exceptions": 0, "error_count": 0, "errors": [], "retries": 0,
                           "fatal": []}
    try:
        lines = path.read_bytes().splitlines()
    except OSError:
        return out
    for line in lines:
        if line.startswith(b"hlfast run:"):  # the product's one-line fatal error (start-up failed)
            out["fatal"].append(line.decode(errors="replace")[:300])
        if b"failed (attempt" in line:
            out["retries"] += 1
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
        ("position adopted without fills", not report["fills"]["position_adjustments"]),
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
        f"missed {f['missed']}, extra {f['extra']}, duplicate messages ignored {f['duplicate_messages_ignored']}, "
        f"recovered from /info {f['recovered_from_info']}, position adjustments {f['position_adjustments']}",
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
    parser.add_argument("--out-dir", help="keep the captured logs, metrics and engine config here")
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
