"""The engine against the local venue over loopback (real sockets, venue in a child process)."""

from __future__ import annotations

import io
import logging
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from hlfast.config import load_config
from hlfast.engine import Engine, configure_logging
from hlfast.gateway import HttpClient
from hlfast.keys import generate_private_key
from hlfast.orders import OrderState
from hlfast.signer import OrderSpec
from hlfast.venue.process import VenueProcess

ROOT = Path(__file__).resolve().parents[1]

BASE = {
    "metrics": {"enabled": False},
    "engine": {"status_interval_s": 0, "heartbeat_s": 5, "gc_mode": "on", "reconnect_backoff_min_s": 0.05,
               "reconnect_backoff_max_s": 0.5},
    "quoting": {"levels": 3, "half_spread_mult": 0.2, "min_spread_bps": 0.5},
    "exchange": {"post_timeout_s": 2.0},
}


def merge(base: dict, extra: dict) -> dict:
    out = {k: dict(v) for k, v in base.items()}
    for section, values in extra.items():
        out.setdefault(section, {}).update(values)
    return out


def make_cfg(**sections):
    return load_config(env={}, overrides=merge(BASE, sections))


def open_orders(base_url: str, user: str) -> list[dict]:
    http = HttpClient(base_url)
    try:
        return http.info({"type": "openOrders", "user": user, "dex": ""})
    finally:
        http.close()


def venue_position(base_url: str, user: str, coin: str = "BTC") -> float:
    http = HttpClient(base_url)
    try:
        state = http.info({"type": "clearinghouseState", "user": user, "dex": ""})
    finally:
        http.close()
    for ap in state["assetPositions"]:
        if ap["position"]["coin"] == coin:
            return float(ap["position"]["szi"])
    return 0.0


@pytest.fixture(scope="module")
def venue():
    v = VenueProcess(block_ms=25, auto_fund=True, seed=3)
    v.start()
    yield v
    v.stop()


def start_engine(base_url: str, cfg, key=None) -> Engine:
    key = key or generate_private_key()
    eng = Engine(cfg, key, base_url=base_url)
    eng.setup()
    return eng


def orphans(eng: Engine, rows: list[dict]) -> list[dict]:
    """Venue orders the engine does not know (by oid or cloid)."""
    oids = {o.oid for o in eng.orders.live() if o.oid is not None}
    cloids = {o.cloid for o in eng.orders.live() if o.cloid is not None}
    return [r for r in rows if int(r["oid"]) not in oids and r.get("cloid") not in cloids]


def both_sides_resting(eng: Engine) -> bool:
    sides = {o.side for o in eng.orders.live() if o.acked and o.state != OrderState.PENDING_CANCEL}
    return sides == {1, -1}


def test_quotes_appear_on_both_sides_within_a_second(venue):
    eng = start_engine(venue.base_url, make_cfg())
    try:
        assert eng.step_for(1.0, lambda: both_sides_resting(eng))
        rows = open_orders(venue.base_url, eng.user)
        assert {r["side"] for r in rows} == {"B", "A"}
        mid = eng.book.mid()
        for r in rows:  # post-only quotes sit on the right side of the mid
            assert (float(r["limitPx"]) < mid) if r["side"] == "B" else (float(r["limitPx"]) > mid)
        assert eng.h_t2o.count > 0 and eng.h_t2o.quantile(0.5) > 0
    finally:
        summary = eng.shutdown()
    assert summary.resting_orders_at_exit == 0
    assert open_orders(venue.base_url, eng.user) == []


def test_fills_move_position_and_budget(venue):
    eng = start_engine(venue.base_url, make_cfg(quoting={"levels": 2, "half_spread_mult": 0.1,
                                                         "min_spread_bps": 0.1}))
    try:
        earned0 = eng.budget.earned
        assert eng.step_for(25.0, lambda: eng.orders.fills > 0), "no fill within 25 s"
        eng.step_for(0.3)
        assert eng.budget.earned > earned0  # fills earn execution tokens
        assert eng.orders.volume > 0
        assert abs(eng.position - venue_position(venue.base_url, eng.user)) < 1e-9
        assert eng.pipeline.position == pytest.approx(eng.position)
    finally:
        summary = eng.shutdown()
    assert summary.fills >= 1 and summary.volume > 0
    assert summary.resting_orders_at_exit == 0


def test_reduce_only_asymmetry_at_the_limit(venue):
    key = generate_private_key()
    cfg = make_cfg(risk={"max_position": 0.0015})
    # open a long of 0.002 BTC (beyond the 0.0015 limit, below the 2x runaway) with an IOC buy
    from hlfast.signer import Signer
    signer = Signer(key, is_mainnet=False)
    http = HttpClient(venue.base_url)
    mid = float(http.info({"type": "allMids", "dex": ""})["BTC"])
    reply = http.exchange(signer.bulk_orders(0, [OrderSpec(True, str(int(mid * 1.01)), "0.002", False, "Ioc")]))
    http.close()
    assert "filled" in reply["response"]["data"]["statuses"][0], reply
    eng = start_engine(venue.base_url, cfg, key)
    try:
        assert eng.position == pytest.approx(0.002)
        assert eng.step_for(2.0, lambda: any(o.acked for o in eng.orders.live()))
        eng.step_for(0.5)
        rows = open_orders(venue.base_url, eng.user)
        assert rows and all(r["side"] == "A" for r in rows)  # the increasing side is empty
        assert sum(float(r["sz"]) for r in rows) <= 0.002 + 1e-12  # never flips through zero
        assert eng.pipeline.side_caps() == (0.0, pytest.approx(0.002))
        assert eng.kill.quoting_allowed
    finally:
        eng.shutdown()


def test_kill_switch_trip_leaves_zero_resting_orders(venue, caplog):
    eng = start_engine(venue.base_url, make_cfg())
    try:
        assert eng.step_for(2.0, lambda: both_sides_resting(eng))
        with caplog.at_level(logging.ERROR, logger="hlfast.risk"):
            eng.trip_kill_switch("manual", "test trip")
        assert "KILL SWITCH manual" in caplog.text
        assert not eng.pipeline.quoting
        assert eng.step_for(3.0, lambda: not eng.orders.live() and not open_orders(venue.base_url, eng.user))
        eng.step_for(0.5)  # the loop goes on without quoting again
        assert open_orders(venue.base_url, eng.user) == []
        assert eng.summary().kill_switch.startswith("manual")
    finally:
        eng.shutdown()


def test_runaway_position_trips_and_cancels_in_the_same_iteration(venue):
    eng = start_engine(venue.base_url, make_cfg(risk={"max_position": 0.01}))
    try:
        assert eng.step_for(2.0, lambda: both_sides_resting(eng))
        # a real runaway: the account buys 5x the limit (an IOC sent with the engine's own signer)
        mid = eng.book.mid()
        reply = eng.http.exchange(eng.signer.bulk_orders(
            eng.asset, [OrderSpec(True, str(int(mid * 1.01)), "0.05", False, "Ioc")]))
        assert "filled" in reply["response"]["data"]["statuses"][0], reply
        assert eng.step_for(3.0, lambda: eng.kill.trip is not None)
        assert eng.kill.trip.reason == "position_runaway" and not eng.kill.trip.transient
        trip = eng.trips[-1]
        assert trip["reason"] == "position_runaway" and trip["cancels_sent"] == trip["live_orders"] > 0
        assert eng.position == pytest.approx(venue_position(venue.base_url, eng.user))  # judged on a true position
        assert eng.step_for(3.0, lambda: not open_orders(venue.base_url, eng.user))
        assert eng.summary().kill_switch_trips[-1]["reason"] == "position_runaway"
    finally:
        eng.shutdown()


def test_a_wrong_local_position_is_checked_against_the_exchange_before_a_runaway_trip(venue):
    eng = start_engine(venue.base_url, make_cfg(risk={"max_position": 0.01}))
    try:
        assert eng.step_for(2.0, lambda: both_sides_resting(eng))
        eng.position0 += 0.05  # as if a fill had been counted twice
        assert eng._check_risk(eng._clock()) is None  # the exchange disagrees: no permanent trip
        assert eng.kill.trips_by_reason["position_runaway"] == 0
        assert eng.position == pytest.approx(venue_position(venue.base_url, eng.user), abs=1e-9)
        assert eng.adjustment.adoptions == 1 and eng.adjustment.outstanding == pytest.approx(-0.05)
    finally:
        summary = eng.shutdown()
    assert summary.position_adjustments == 1


def test_forced_disconnects_resync_without_orphans_or_duplicates():
    with VenueProcess(block_ms=25, auto_fund=True, seed=5, faults="disconnect_every=1.5") as v:
        eng = start_engine(v.base_url, make_cfg())
        try:
            assert eng.step_for(6.0, lambda: eng.resyncs >= 2 and both_sides_resting(eng))
            assert sum(c.reconnects for c in eng.conns) >= 2
            # settle between two scheduled drops, then compare the venue with the engine's view
            eng.step_for(0.4)
            rows = open_orders(v.base_url, eng.user)
            assert rows and orphans(eng, rows) == []  # no orphan: every resting order is known to the engine
            keys = [(r["side"], r["limitPx"]) for r in rows]
            assert len(keys) == len(set(keys))  # no duplicate quotes at one price
            cloids = [r.get("cloid") for r in rows]
            assert len(cloids) == len(set(cloids))
        finally:
            summary = eng.shutdown()
        assert summary.reconnects >= 2 and summary.resting_orders_at_exit == 0


def test_malformed_frames_are_counted_and_the_loop_goes_on():
    with VenueProcess(block_ms=25, auto_fund=True, seed=7, faults="malformed=0.3") as v:
        eng = start_engine(v.base_url, make_cfg())
        try:
            eng.step_for(2.0)
            ticks = eng.ticks
            assert eng.malformed > 0
            eng.step_for(1.0)
            assert eng.ticks > ticks  # still processing frames
            assert both_sides_resting(eng)
        finally:
            summary = eng.shutdown()
        assert summary.malformed_frames > 0 and summary.resting_orders_at_exit == 0


def test_private_key_never_appears_in_logs_metrics_or_summary(venue):
    key = generate_private_key()
    secret = key._key.secret.hex()
    stream = io.StringIO()
    configure_logging("DEBUG", json_lines=False, stream=stream)
    eng = Engine(make_cfg(metrics={"enabled": True, "port": 0}), key, base_url=venue.base_url)
    try:
        eng.setup()
        eng._start_metrics()
        eng.step_for(1.5)
        exported = eng.metrics_exporter.render().decode()
        text = stream.getvalue() + exported + repr(eng.signer) + repr(key) + eng.status_line()
    finally:
        summary = eng.shutdown()
        logging.getLogger().handlers.clear()
    text += orjson.dumps(summary.to_dict()).decode() + summary.text() + stream.getvalue()
    assert "mm_position" in exported and "mm_impulse_budget_available" in exported
    assert "engine ready" in text
    low = text.lower()
    assert secret not in low and secret[:16] not in low


def test_hlfast_run_process_exits_zero_on_sigterm_with_zero_resting(venue, tmp_path):
    key = generate_private_key()
    cfg_file = tmp_path / "run.toml"
    cfg_file.write_text(f'[exchange]\nbase_url = "{venue.base_url}"\n[metrics]\nenabled = false\n'
                        '[engine]\nstatus_interval_s = 0\n[quoting]\nlevels = 3\n')
    env = dict(os.environ, HLFAST_PRIVATE_KEY="0x" + key._key.secret.hex(),
               PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen([sys.executable, "-m", "hlfast.cli", "run", "--config", str(cfg_file), "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=str(ROOT))
    try:
        end = time.monotonic() + 20
        while time.monotonic() < end and not open_orders(venue.base_url, key.address.lower()):
            assert proc.poll() is None, proc.stderr.read().decode()
            time.sleep(0.1)
        assert open_orders(venue.base_url, key.address.lower()), "the engine never quoted"
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err.decode()[-2000:]
    summary = orjson.loads(out.splitlines()[-1])
    assert summary["exit_reason"] == "SIGTERM"
    assert summary["resting_orders_at_exit"] == 0
    assert open_orders(venue.base_url, key.address.lower()) == []
    assert key._key.secret.hex() not in (out + err).decode().lower()


def test_stale_market_data_pulls_quotes_then_recovers_after_cooldown():
    cfg = make_cfg(risk={"stale_data_s": 0.4, "cooldown_s": 0.3})
    with VenueProcess(block_ms=25, auto_fund=True, seed=9, faults="stall=2.5:1.2") as v:
        eng = start_engine(v.base_url, cfg)
        try:
            assert eng.step_for(4.0, lambda: eng.kill.trip is not None), "no stale-data trip"
            assert eng.kill.trip.reason == "stale_data" and eng.kill.trip.transient
            assert eng.step_for(2.0, lambda: not open_orders(v.base_url, eng.user))
            assert eng.step_for(4.0, lambda: eng.kill.trip is None and both_sides_resting(eng))
            assert eng.kill.trips_by_reason["stale_data"] >= 1
        finally:
            eng.shutdown()


def test_lost_replies_are_resolved_by_resync():
    cfg = make_cfg(exchange={"post_timeout_s": 0.3})
    with VenueProcess(block_ms=25, auto_fund=True, seed=11, faults="lost_reply=0.3") as v:
        eng = start_engine(v.base_url, cfg)
        try:
            assert eng.step_for(8.0, lambda: eng.gateway.stats.timeouts >= 2 and eng.resyncs >= 1)
            eng.step_for(0.5)
            assert orphans(eng, open_orders(v.base_url, eng.user)) == []
        finally:
            summary = eng.shutdown()
        assert summary.post_timeouts >= 2 and summary.resting_orders_at_exit == 0


def test_hjb_validation_uses_the_configured_model(venue):
    eng = start_engine(venue.base_url, make_cfg(hjb={"phi": 0.002, "horizon_s": 120.0, "k_q_bps": 3.0}))
    try:
        assert eng.step_for(1.0, lambda: both_sides_resting(eng))
        assert eng.hjb_model.value_fn.phi == 0.002 and eng.hjb_model.value_fn.horizon_s == 120.0
        assert eng.hjb_model.k_q_bps == 3.0
        eng._validate_hjb()
        assert math.isfinite(eng.hjb_gap) and eng.hjb_gap >= 0.0  # the heuristic never beats the optimum
    finally:
        eng.shutdown()


def test_cascade_detector_takes_its_settings_from_config(venue):
    eng = start_engine(venue.base_url, make_cfg(risk={"cascade_cooldown_s": 7.5, "cascade_baseline_half_life_s": 90.0}))
    try:
        assert eng.pipeline.cascade.cooldown_s == 7.5
        assert eng.pipeline.cascade.baseline_half_life == 90.0
    finally:
        eng.shutdown()
