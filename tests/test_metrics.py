"""Prometheus exporter: loopback bind, spec metric names, snapshot swap, histogram export."""

from __future__ import annotations

import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from hlfast.histogram import LatencyHistogram
from hlfast.metrics import GAUGES, MetricsExporter

SPEC_NAMES = [
    "mm_impulse_budget_available", "mm_impulse_budget_utilization", "mm_impulse_filter_blocked",
    "mm_impulse_queue_locked", "mm_impulse_budget_skipped", "mm_calibration_gamma_mult",
    "mm_calibration_progress", "mm_calibration_fill_count", "mm_calibration_complete",
    "mm_exchange_limit_max_buy", "mm_exchange_limit_max_sell", "mm_hjb_heuristic_gap",
]


def parse(text: bytes) -> dict:
    out = {}
    for fam in text_string_to_metric_families(text.decode()):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_spec_names_are_declared():
    for name in SPEC_NAMES:
        assert name in GAUGES


def test_exporter_binds_loopback_and_serves_the_current_snapshot():
    exp = MetricsExporter()  # default host
    port = exp.start()
    try:
        assert exp.host == "127.0.0.1" and exp._server.server_address[0] == "127.0.0.1"
        hist = LatencyHistogram()
        for ns in (5_000, 12_000, 40_000, 900_000):
            hist.record(ns)
        bounds_s = [1e-5, 5e-5, 1e-3]
        snap = {name: float(i) for i, name in enumerate(SPEC_NAMES)}
        snap["mm_position"] = -0.25
        snap["mm_actions"] = {"order": 7, "cancel": 3}
        snap["mm_tick_to_order_seconds"] = (bounds_s, hist.cumulative([int(b * 1e9) for b in bounds_s]),
                                            hist.count, hist.sum_ns / 1e9)
        exp.publish(snap)
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read()
        got = parse(body)
        for i, name in enumerate(SPEC_NAMES):
            assert got[(name, ())] == float(i)
        assert got[("mm_position", ())] == -0.25
        assert got[("mm_actions_total", (("type", "order"),))] == 7
        assert got[("mm_actions_total", (("type", "cancel"),))] == 3
        assert got[("mm_tick_to_order_seconds_bucket", (("le", "1e-05"),))] == 1
        assert got[("mm_tick_to_order_seconds_bucket", (("le", "5e-05"),))] == 3
        assert got[("mm_tick_to_order_seconds_bucket", (("le", "+Inf"),))] == 4
        assert got[("mm_tick_to_order_seconds_count", ())] == 4
        # a new snapshot replaces the old one wholesale
        exp.publish({"mm_position": 1.5})
        got2 = parse(urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read())
        assert got2[("mm_position", ())] == 1.5
        assert ("mm_actions_total", (("type", "order"),)) not in got2
    finally:
        exp.stop()


def test_debug_orders_is_json_for_loopback_and_unknown_paths_are_404():
    import urllib.error

    import orjson
    import pytest

    from hlfast.metrics import _is_loopback

    exp = MetricsExporter()
    port = exp.start()
    try:
        view = {"t": 1.5, "coin": "BTC", "oids": [7], "cloids": ["0x" + "ab" * 16], "orders": [{"oid": 7}]}
        exp.publish({"mm_position": 0.5}, view)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/debug/orders", timeout=5) as resp:
            assert resp.headers["Content-Type"] == "application/json"
            assert orjson.loads(resp.read()) == view
        exp.publish({"mm_position": 0.25})  # a metrics-only publish keeps the last orders view
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/debug/orders", timeout=5) as resp:
            assert orjson.loads(resp.read())["oids"] == [7]
        with pytest.raises(urllib.error.HTTPError, match="404"):
            urllib.request.urlopen(f"http://127.0.0.1:{port}/debug/nothing", timeout=5)
        assert parse(urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read())[
            ("mm_position", ())] == 0.25
    finally:
        exp.stop()
    assert _is_loopback("127.0.0.1") and _is_loopback("::1") and _is_loopback("127.8.9.10")
    assert not _is_loopback("10.0.0.2") and not _is_loopback("192.168.1.4") and not _is_loopback("garbage")
