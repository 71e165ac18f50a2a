"""Engine recovery against the venue: lost fills, start-up and shutdown under HTTP 5xx, reject reason codes,
the summary's observability fields and /debug/orders."""

from __future__ import annotations

import logging
import urllib.error
import urllib.request

import orjson
import pytest

from hlfast.engine import Engine, EngineError
from hlfast.gateway import HttpClient, HttpError
from hlfast.keys import generate_private_key
from hlfast.orders import REJECT_REASONS
from hlfast.signer import OrderSpec, Signer
from hlfast.venue.process import VenueProcess
from tests.test_engine_live import both_sides_resting, make_cfg, open_orders, orphans, start_engine

CLOSE_QUOTES = {"levels": 2, "half_spread_mult": 0.1, "min_spread_bps": 0.1}


def venue_fills(base_url: str, user: str) -> list[dict]:
    http = HttpClient(base_url)
    try:
        return [f for f in http.info({"type": "userFillsByTime", "user": user, "startTime": 0}) if f["coin"] == "BTC"]
    finally:
        http.close()


def venue_position(base_url: str, user: str) -> float:
    http = HttpClient(base_url)
    try:
        state = http.info({"type": "clearinghouseState", "user": user, "dex": ""})
    finally:
        http.close()
    return sum(float(ap["position"]["szi"]) for ap in state["assetPositions"] if ap["position"]["coin"] == "BTC")


def hit_our_best_bid(base_url: str, user: str) -> dict:
    """Another account sells into our best bid with an IOC (all bids at or above our price): a fill for us now."""
    rows = [r for r in open_orders(base_url, user) if r["side"] == "B"]
    best = max(rows, key=lambda r: float(r["limitPx"]))
    px = float(best["limitPx"])
    taker = Signer(generate_private_key(), is_mainnet=False)
    http = HttpClient(base_url)
    try:
        book = http.info({"type": "l2Book", "coin": "BTC"})
        size = sum(float(level["sz"]) for level in book["levels"][0] if float(level["px"]) >= px)
        reply = http.exchange(taker.bulk_orders(0, [OrderSpec(False, best["limitPx"], f"{size:.5f}", False, "Ioc")]))
        assert "filled" in reply["response"]["data"]["statuses"][0], reply
    finally:
        http.close()
    assert venue_fills(base_url, user), "the IOC did not reach our bid"
    return best


def test_a_lost_fill_is_recovered_and_its_snapshot_replay_is_ignored():
    """The soak's double count: a userFills message is lost, the account check runs, then a reconnect's
    snapshot replays the fill.  Every user message is dropped here, so each fill is lost for sure."""
    cfg = make_cfg(quoting=CLOSE_QUOTES, risk={"max_position": 0.01})
    with VenueProcess(block_ms=25, auto_fund=True, seed=3, faults="drop_user=1.0") as v:
        eng = start_engine(v.base_url, cfg)
        try:
            assert eng.step_for(3.0, lambda: both_sides_resting(eng))
            hit_our_best_bid(v.base_url, eng.user)
            eng.step_for(0.3)
            assert eng.orders.fills == 0  # the fill message was lost
            eng._sync_account()  # the periodic account check: the exchange's position differs
            assert eng.fills_recovered >= 1 and eng.orders.fills >= 1  # ... and the fills fetched explain it
            assert eng.position == pytest.approx(venue_position(v.base_url, eng.user), abs=1e-12)
            assert eng.adjustment.adoptions == 0 and eng.position0 == 0.0
            duplicates = eng.orders.duplicate_fills
            eng.oc.mark_down("test: forced disconnect")
            assert eng.step_for(5.0, lambda: eng.oc.reconnects >= 1 and eng.orders.duplicate_fills > duplicates)
            assert eng.adjustment.adoptions == 0 and eng.position0 == 0.0
            assert eng.kill.trips_by_reason["position_runaway"] == 0
        finally:
            summary = eng.shutdown()
        # nothing rests any more: count what the last fills the stream lost, then compare with the ledger
        eng._recover_fills()
        fills = venue_fills(v.base_url, eng.user)
        assert eng.orders.fills == len(fills)  # every fill once: none missed, none twice
        assert eng.position == pytest.approx(venue_position(v.base_url, eng.user), abs=1e-12)
        assert eng.orders.fees == pytest.approx(sum(float(f["fee"]) for f in fills), abs=1e-9)
        cash = -sum((1 if f["side"] == "B" else -1) * float(f["px"]) * float(f["sz"]) + float(f["fee"]) for f in fills)
        assert eng.orders.cash == pytest.approx(cash, abs=1e-6)
        assert eng.adjustment.adoptions == 0 and eng.kill.trips_by_reason["position_runaway"] == 0
    assert summary.duplicate_fills >= 1 and summary.fills_recovered >= 1 and summary.position_adjustments == 0
    assert summary.resting_orders_at_exit == 0


def test_a_filled_update_without_its_fill_brings_the_fill_within_a_second():
    cfg = make_cfg(quoting=CLOSE_QUOTES, risk={"max_position": 0.01})
    with VenueProcess(block_ms=25, auto_fund=True, seed=3, faults="drop_user=1.0") as v:
        eng = start_engine(v.base_url, cfg)
        try:
            assert eng.step_for(3.0, lambda: both_sides_resting(eng))
            hit = hit_our_best_bid(v.base_url, eng.user)
            # the venue's own record of the order update the stream lost, delivered; its fill stays lost
            http = HttpClient(v.base_url)
            status = http.info({"type": "orderStatus", "user": eng.user, "oid": int(hit["oid"])})
            http.close()
            assert status["order"]["status"] == "filled", status
            eng._on_user_frame(orjson.dumps({"channel": "orderUpdates", "data": [status["order"]]}), 0)
            assert eng.orders.fill_gap_events >= 1 and eng.orders.fills == 0
            assert eng.step_for(3.0, lambda: eng.fills_recovered >= 1), "the missing fill was not fetched"
            ours = [f for f in venue_fills(v.base_url, eng.user) if f["oid"] == int(hit["oid"])]
            assert ours and all(eng.orders.has_fill(f) for f in ours) and eng.adjustment.adoptions == 0
        finally:
            eng.shutdown()


def test_setup_gives_a_clear_error_when_http_keeps_failing():
    with VenueProcess(block_ms=50, auto_fund=True, seed=1, faults="http5xx=1.0") as v:
        eng = Engine(make_cfg(), generate_private_key(), base_url=v.base_url)
        with pytest.raises(EngineError, match=r"loading meta .* failed after 5 attempts: HTTP 500"):
            eng.setup()
        eng.http.close()


def test_retry_backs_off_then_succeeds_and_does_not_retry_a_bad_request(caplog):
    eng = Engine(make_cfg(), generate_private_key(), base_url="http://127.0.0.1:9")
    calls = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise HttpError(502, "bad gateway")
        return "ok"

    with caplog.at_level(logging.WARNING, logger="hlfast.engine"):
        assert eng._retry("flaky call", flaky) == "ok"
    assert len(calls) == 3 and caplog.text.count("flaky call failed (attempt") == 2

    def bad_request() -> None:
        calls.append(1)
        raise HttpError(422, "Failed to deserialize the JSON body")

    calls.clear()
    with pytest.raises(EngineError, match="422"):
        eng._retry("bad call", bad_request)
    assert len(calls) == 1


def test_start_and_shutdown_survive_http_5xx(caplog):
    # only HTTP requests roll the fault dice here, so a seed fixes which requests fail
    cfg = make_cfg(quoting={"levels": 2, "half_spread_mult": 3.0})
    with VenueProcess(block_ms=25, auto_fund=True, seed=4, faults="http5xx=0.35") as v:
        with caplog.at_level(logging.WARNING):
            eng = start_engine(v.base_url, cfg)
            try:
                assert eng.step_for(3.0, lambda: both_sides_resting(eng))
            finally:
                summary = eng.shutdown()
        assert "/info openOrders at" in caplog.text and "failed (attempt 1 of 5)" in caplog.text  # met, retried
        assert summary.resting_orders_at_exit == 0
        for _ in range(20):
            try:
                assert open_orders(v.base_url, eng.user) == []
                break
            except HttpError:
                continue


def test_reject_texts_become_reason_codes_and_the_summary_reports_them():
    cfg = make_cfg(quoting=CLOSE_QUOTES)
    with VenueProcess(block_ms=25, auto_fund=True, seed=6, faults="reject_real=0.3") as v:
        eng = start_engine(v.base_url, cfg)
        try:
            # returns as soon as three reasons are seen; the bound only matters on a loaded machine
            assert eng.step_for(20.0, lambda: len(eng.rejects_by_reason) >= 3), eng.rejects_by_reason
            eng.trip_kill_switch("manual", "test trip")
            eng.step_for(0.3)
            snap = eng.snapshot()
        finally:
            summary = eng.shutdown()
    assert set(summary.rejects_by_reason) <= set(REJECT_REASONS)
    assert set(summary.rejects_by_reason) <= {"margin", "alo_cross", "tick", "min_value"}
    assert sum(summary.rejects_by_reason.values()) == summary.rejects
    assert set(snap["mm_rejects_by_reason"]) == set(REJECT_REASONS)  # a fixed label set, zeros included
    trip = summary.kill_switch_trips[0]
    assert trip["reason"] == "manual" and trip["detail"] == "test trip" and trip["wall"] > 0
    assert summary.resync_ms["count"] == summary.resyncs
    as_json = orjson.loads(orjson.dumps(summary.to_dict()))
    for key in ("rejects_by_reason", "kill_switch_trips", "resync_ms", "duplicate_fills", "fills_recovered",
                "position_adjustments"):
        assert key in as_json
    assert "manual at" in summary.text() and "alo_cross" in summary.text() or "margin" in summary.text()


def test_debug_orders_lists_the_tracked_orders_on_loopback():
    with VenueProcess(block_ms=25, auto_fund=True, seed=8, faults="disconnect_every=1.5") as v:
        key = generate_private_key()
        eng = Engine(make_cfg(metrics={"enabled": True, "port": 0, "snapshot_interval_s": 0.1}), key,
                     base_url=v.base_url)
        eng.setup()
        eng._start_metrics()
        try:
            assert eng.step_for(4.0, lambda: eng.resyncs >= 1 and both_sides_resting(eng))
            eng.step_for(0.3)
            url = f"http://127.0.0.1:{eng.metrics_exporter.port}"
            with urllib.request.urlopen(url + "/debug/orders", timeout=2) as resp:
                assert resp.headers["Content-Type"] == "application/json"
                body = resp.read()
            view = orjson.loads(body)
            assert view["coin"] == "BTC" and view["account"] == eng.user and view["quoting"] is True
            live = eng.orders.live()
            assert set(view["cloids"]) <= {o.cloid for o in live} | {None}
            assert view["orders"] and {r["state"] for r in view["orders"]} <= {
                "PENDING_NEW", "RESTING", "PARTIALLY_FILLED", "PENDING_MODIFY", "PENDING_CANCEL"}
            # the view explains every order resting at the venue that is older than the view
            rows = [r for r in open_orders(v.base_url, eng.user) if r["timestamp"] / 1000 <= view["t"]]
            known = set(view["oids"]) | {old for r in view["orders"] for old in r["old_oids"]}
            assert all(r["oid"] in known or r.get("cloid") in view["cloids"] for r in rows)
            assert orphans(eng, open_orders(v.base_url, eng.user)) == []
            assert key._key.secret.hex() not in body.decode().lower()
            metrics = urllib.request.urlopen(url + "/metrics", timeout=2).read().decode()
            assert "mm_resyncs " in metrics and 'mm_rejects_by_reason_total{reason="alo_cross"}' in metrics
            with pytest.raises(urllib.error.HTTPError, match="404"):
                urllib.request.urlopen(url + "/debug/secrets", timeout=2)
        finally:
            summary = eng.shutdown()
        assert summary.resyncs >= 1 and summary.resync_ms["max"] >= summary.resync_ms["p50"] > 0
