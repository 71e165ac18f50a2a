"""The reliability soak: the quick run (engine process vs a faulty venue) asserts the zeros; helpers checked alone."""

from __future__ import annotations

import pytest

from hlfast.keys import generate_private_key
from hlfast.orders import REJECT_REASONS
from hlfast.venue.faults import REAL_REJECT_TEXTS, FaultInjector, parse_fault_spec
from hlfast.venue.server import Connection, VenueConfig, VenueServer, build_venue
from perf import soak
from tests.test_venue_auth import NOW, USER, signed


def test_orphan_tracker_times_untracked_orders_and_ignores_young_ones():
    tracker = soak.OrphanTracker()
    tracked = {"t": 100.0, "oids": [1], "cloids": ["0xaa"]}
    rows = [
        {"oid": 1, "timestamp": 90_000},  # tracked by oid
        {"oid": 2, "timestamp": 90_000, "cloid": "0xaa"},  # tracked by cloid (a modify's new oid)
        {"oid": 3, "timestamp": 90_000},  # orphan
        {"oid": 4, "timestamp": 100_500},  # placed after the engine's view was taken: not judged
    ]
    tracker.observe(101.0, rows, tracked)
    tracker.observe(104.0, rows, tracked)
    assert set(tracker.open) == {3} and tracker.samples_with_orphans == 2
    tracker.observe(107.0, rows[:2], tracked)  # oid 3 cancelled
    assert tracker.open == {} and tracker.ages == [pytest.approx(3.0 + soak.OPEN_ORDERS_EVERY_S)]
    adopted = {"t": 110.0, "oids": [1, 5], "cloids": []}
    tracker.observe(111.0, [{"oid": 5, "timestamp": 105_000}], {"t": 110.0, "oids": [1], "cloids": []})
    tracker.observe(112.0, [{"oid": 5, "timestamp": 105_000}], adopted)  # adopted by the engine
    assert tracker.open == {} and len(tracker.ages) == 2


def test_engine_config_is_written_as_toml_the_config_loader_reads(tmp_path):
    import tomllib

    from hlfast.config import load_config

    user = tmp_path / "user.toml"
    user.write_text('[quoting]\nlevels = 7\ngamma = 0.2\n[exchange]\nkey_file = "/secret/key"\n')
    run = soak.Soak(soak.SoakOptions(out_dir=str(tmp_path / "out"), config_path=str(user)))
    config = run.engine_config("http://127.0.0.1:5", 9100)
    text = soak.to_toml(config)
    cfg = load_config(None, env={}, overrides=tomllib.loads(text))
    assert cfg.quoting.levels == soak.SOAK_OVERRIDES["quoting"]["levels"] and cfg.quoting.gamma == 0.2
    assert cfg.exchange.base_url == "http://127.0.0.1:5" and cfg.metrics.port == 9100
    assert cfg.exchange.key_file == "" and "secret" not in text  # the throw-away key comes from the env
    assert cfg.risk.liquidator_addresses and cfg.risk.max_position == 0.01


def test_merge_faults_replaces_adds_and_removes_keys():
    spec = soak.merge_faults("disconnect_every=10,reject=0.01", ["reject=0.2", "stall=30:4", "disconnect_every=0"])
    assert spec == "reject=0.2,stall=30:4"
    with pytest.raises(ValueError, match="unknown fault"):
        soak.merge_faults("", ["explode=1"])


def test_longest_drift_run_and_slope():
    series = [(0.0, 0.0), (1.0, 0.002), (2.0, 0.002), (3.0, 0.002), (4.0, 0.0), (5.0, 0.003)]
    assert soak._longest_run(series, 1e-5) == 2.0
    assert soak._slope_per_hour([(0.0, 10.0), (1800.0, 11.0), (3600.0, 12.0)]) == pytest.approx(2.0)


def test_key_search_finds_a_planted_key(tmp_path):
    key = generate_private_key()
    secret = key._key.secret.hex()
    probe = soak.Soak(soak.SoakOptions(out_dir=str(tmp_path)))
    probe.paths["engine.log"].write_text(f"oops {secret.upper()} and {secret[:16]}\n")
    found = probe._search_key(secret, {"text": "clean"})
    assert found["occurrences"] == 1 and found["prefix_occurrences"] == 2 and found["files"] == 2


def test_fault_spec_parses_burst_and_real_rejects():
    spec = parse_fault_spec("burst=30:5,reject_real=0.25")
    assert (spec.burst_every, spec.burst_frames, spec.reject_real) == (30.0, 5.0, 0.25) and spec.active
    for bad in ("burst=30", "burst=0:5", "burst=30:0", "burst=30:2.5", "reject_real=2"):
        with pytest.raises(ValueError, match="fault"):
            parse_fault_spec(bad)


def test_real_rejects_use_the_exchange_texts_and_are_counted():
    injector = FaultInjector("reject_real=0.5", seed=3)
    texts = [injector.reject_text("u") for _ in range(400)]
    chosen = [t for t in texts if t is not None]
    assert 120 < len(chosen) < 280 and set(chosen) == set(REAL_REJECT_TEXTS)
    assert injector.counts["reject_real"] == len(chosen) and "reject" not in injector.counts


def test_real_reject_reaches_the_order_status_with_the_book_bbo():
    venue = build_venue(VenueConfig(accounts=[(USER, 100_000.0)], faults="reject_real=1.0", seed=2))
    for _ in range(3):
        venue.step_block()
    wire = {"a": 0, "b": True, "p": "50000", "s": "0.001", "r": False, "t": {"limit": {"tif": "Alo"}}}
    action = {"type": "order", "orders": [wire], "grouping": "na"}
    errors = [venue.exchange(signed(action, NOW + i), NOW + i)["response"]["data"]["statuses"][0]["error"]
              for i in range(40)]
    assert all(e.endswith(" asset=0") for e in errors)
    assert {e.split(",")[0].split(" asset=")[0] for e in errors} == {t.split(",")[0] for t in REAL_REJECT_TEXTS}
    alo = next(e for e in errors if e.startswith("Post only"))
    assert "{bbo}" not in alo and "@" in alo and not alo.split("bbo was ")[1].startswith("0.0@")


def test_malformed_burst_truncates_the_next_market_frames_only():
    server = VenueServer(build_venue(VenueConfig(faults="burst=5:2", seed=1)))
    conn = Connection(None, "peer")
    server.last_burst -= 10.0
    server._maybe_burst()
    assert server.burst_left == 2 and server.faults.counts["malformed_burst"] == 1
    frame = b'{"channel":"l2Book","data":{"coin":"BTC"}}'
    server._send(conn, b'{"channel":"userFills","data":{}}', user_message=True)  # user frames are untouched
    for _ in range(3):
        server._send(conn, frame)
    sent = [f for _, f in conn.outbox]
    assert sent[0].startswith(b'{"channel":"userFills"') and sent[0].endswith(b"}")
    assert sent[1] == sent[2] == frame[: len(frame) // 2] and sent[3] == frame and server.burst_left == 0


@pytest.mark.timeout(60)
def test_quick_soak_holds_every_invariant():
    report = soak.run_soak(soak.quick_options(seed=1))
    text = soak.format_report(report)
    assert soak.failures(report) == [], text
    # the zeros
    assert report["crashes"] == 0 and report["restarts_needed"] == 0, text
    assert report["orphans"]["at_exit"] == 0 and report["orphans"]["over_5s"] == 0, text
    assert report["position_breaches"] == 0, text
    assert report["fills"]["duplicates_counted"] == 0 and report["fills"]["extra"] == 0, text
    assert report["ledger"]["position_drift"] == 0.0, text
    assert report["private_key"]["occurrences"] == 0 and report["private_key"]["bytes"] > 10_000, text
    # ... and the run really was hostile and really was watched
    faults = report["faults_injected"]
    assert faults.get("disconnect", 0) >= 2 and faults.get("stall", 0) >= 1, text
    assert faults.get("malformed_burst", 0) >= 1 and report["malformed_frames"] >= 10, text
    assert report["reconnects"] >= 2 and report["resync"]["count"] >= 1, text
    assert report["kill_switch"]["by_reason"].get("stale_data", 0) >= 1, text
    assert report["kill_switch"]["never_reached_zero"] == 0, text
    assert report["orphans"]["open_orders_samples"] >= 100, text
    assert report["tick_to_order_us"]["count"] > 0, text
    assert report["exit_reason"] == "SIGTERM", text
    # measured through the product: its summary's trips, resyncs and reject reason codes, /debug/orders
    assert all(trip["t"] >= 0 and trip["detail"] for trip in report["kill_switch"]["list"]), text
    assert set(report["rejects_by_reason"]) <= set(REJECT_REASONS) and report["rejects"] >= 1, text
    assert sum(report["rejects_by_reason"].values()) == report["rejects"], text
    assert report["fills"]["position_adjustments"] == 0, text
    assert report["resync"]["max"] >= report["resync"]["p50"] > 0, text
