"""Prometheus exporter reading a snapshot that the engine loop refreshes a few times a second.

The loop never touches prometheus-client objects: it builds a plain dict and hands it over with
one reference assignment (``publish``); the exporter's HTTP thread reads whatever snapshot is
current at scrape time.  Bound to 127.0.0.1 unless configured otherwise.

Paths: ``/metrics`` (Prometheus text) and ``/debug/orders`` (JSON: the orders the engine tracks,
answered to loopback clients only, whatever address the server is bound to).
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

# name -> help.  All exported as gauges so the names are exactly these (no _total suffix added).
GAUGES: dict[str, str] = {
    "mm_position": "signed position, coin units",
    "mm_position_value_usd": "|position| x mid, USD",
    "mm_pnl_usd": "session PnL (mark-to-mid, after fees), USD",
    "mm_fees_usd": "fees paid (negative = rebates), USD",
    "mm_volume_usd": "traded notional, USD",
    "mm_fills": "own fills this session",
    "mm_orders_resting": "own orders believed resting",
    "mm_mid": "mid price",
    "mm_spread_bps": "best ask - best bid, bp of mid",
    "mm_ticks": "market-data frames processed",
    "mm_quote_cycles": "quote/reconcile cycles run",
    "mm_rejects": "rejected order/cancel items",
    "mm_ws_reconnects": "websocket reconnects (all connections)",
    "mm_malformed_frames": "frames that could not be parsed",
    "mm_post_timeouts": "ws posts whose reply never came",
    "mm_post_rtt_ms": "websocket post round-trip EWMA, ms",
    "mm_kill_switch_active": "1 while the kill switch is tripped",
    "mm_quoting": "1 while quotes are live",
    "mm_rate_budget_remaining": "address request budget left (cap - used)",
    "mm_rate_budget_cap": "address request budget cap",
    "mm_rate_ip_headroom": "fraction of the per-IP weight budget left this minute",
    "mm_rate_cancels_only": "1 while only cancels may be sent",
    "mm_impulse_budget_available": "execution budget tokens available",
    "mm_impulse_budget_utilization": "spent / (earned + initial)",
    "mm_impulse_filter_blocked": "updates skipped by the delta-lambda filter",
    "mm_impulse_queue_locked": "updates skipped because the order was queue-locked",
    "mm_impulse_budget_skipped": "actions or cycles skipped for lack of budget",
    "mm_calibration_gamma_mult": "gamma multiplier of the calibration controller",
    "mm_calibration_progress": "calibration progress in [0, 1]",
    "mm_calibration_fill_count": "fills counted by the calibration controller",
    "mm_calibration_complete": "1 once calibrated",
    "mm_exchange_limit_max_buy": "exchange max buy size after the staleness factor, coin",
    "mm_exchange_limit_max_sell": "exchange max sell size after the staleness factor, coin",
    "mm_exchange_limit_age_seconds": "age of the exchange-limit snapshot",
    "mm_exchange_limit_safety_factor": "staleness factor applied to the exchange limits",
    "mm_hjb_heuristic_gap": "HJB heuristic value gap to the optimum (objective units)",
    "mm_sigma": "effective volatility per sqrt(s)",
    "mm_gamma_effective": "effective risk aversion",
    "mm_resyncs": "resyncs (open orders + position from /info)",
    "mm_resyncs_failed": "resyncs that failed and were retried",
    "mm_duplicate_fills": "fill messages ignored because the fill was already counted",
    "mm_fills_recovered": "missed fills fetched from userFillsByTime",
    "mm_position_adjustments": "times the exchange position was adopted without fills to explain it",
}

# name -> (help, label).  Exported as counters: name + "_total".
LABELED_COUNTERS: dict[str, tuple[str, str]] = {
    "mm_actions": ("API actions sent, by type", "type"),
    "mm_action_items": ("order/cancel/modify items sent, by type", "type"),
    "mm_kill_switch_trips": ("kill-switch trips, by reason", "reason"),
    "mm_rejects_by_reason": ("rejects, by reason code", "reason"),
}

# name -> help.  Values: (upper bounds in seconds, cumulative counts per bound, count, sum in seconds).
HISTOGRAMS: dict[str, str] = {
    "mm_tick_to_order_seconds": "frame received -> signed action handed to send",
    "mm_stage_decode_seconds": "frame parse into the kernels",
    "mm_stage_quote_seconds": "estimators + quote + reconcile",
    "mm_stage_sign_seconds": "action build + signing",
    "mm_post_rtt_seconds": "ws post round trip",
}


class SnapshotCollector(Collector):
    """Turns the current snapshot dict into metric families at scrape time."""

    def __init__(self) -> None:
        self.snapshot: dict[str, Any] = {}

    def collect(self) -> Iterator:
        snap = self.snapshot  # one read of the reference: a consistent snapshot
        for name, doc in GAUGES.items():
            if name in snap:
                yield GaugeMetricFamily(name, doc, value=float(snap[name]))
        for name, (doc, label) in LABELED_COUNTERS.items():
            values = snap.get(name)
            if values is None:
                continue
            fam = CounterMetricFamily(name, doc, labels=[label])
            for key, value in sorted(values.items()):
                fam.add_metric([str(key)], float(value))
            yield fam
        for name, doc in HISTOGRAMS.items():
            hist = snap.get(name)
            if hist is None:
                continue
            bounds, cumulative, count, total = hist
            buckets = [(f"{b:.9g}", float(c)) for b, c in zip(bounds, cumulative, strict=True)]
            buckets.append(("+Inf", float(count)))
            yield HistogramMetricFamily(name, doc, buckets=buckets, sum_value=float(total))


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


class _Handler(BaseHTTPRequestHandler):
    exporter: MetricsExporter  # set on the per-server subclass

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        path = self.path.split("?", 1)[0]
        if path in ("/metrics", "/"):
            self._reply(200, CONTENT_TYPE_LATEST, generate_latest(self.exporter.registry))
        elif path == "/debug/orders":
            if not _is_loopback(self.client_address[0]):
                self._reply(403, "text/plain", b"loopback only\n")
                return
            self._reply(200, "application/json", orjson.dumps(self.exporter.debug_orders))
        else:
            self._reply(404, "text/plain", b"not found\n")

    def _reply(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - scrapes are not logged
        return


class MetricsExporter:
    """Serves /metrics from a daemon thread; `publish` swaps in a new snapshot."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.requested_port = port
        self.registry = CollectorRegistry(auto_describe=False)
        self.collector = SnapshotCollector()
        self.registry.register(self.collector)
        self.port = 0
        self.debug_orders: dict[str, Any] = {}
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> int:
        handler = type("MetricsHandler", (_Handler,), {"exporter": self})
        server_cls = ThreadingHTTPServer
        if ":" in self.host:  # an IPv6 address
            server_cls = type("MetricsServer6", (ThreadingHTTPServer,), {"address_family": socket.AF_INET6})
        server = server_cls((self.host, self.requested_port), handler)
        server.daemon_threads = True
        thread = threading.Thread(target=server.serve_forever, name="metrics-http", daemon=True)
        thread.start()
        self._server, self._thread = server, thread
        self.port = server.server_address[1]
        return self.port

    def publish(self, snapshot: dict[str, Any], debug_orders: dict[str, Any] | None = None) -> None:
        self.collector.snapshot = snapshot
        if debug_orders is not None:
            self.debug_orders = debug_orders

    def render(self) -> bytes:
        """The exposition text for the current snapshot (what a scrape returns)."""
        return generate_latest(self.registry)

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
