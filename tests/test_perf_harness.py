"""The perf harness: the engine's real per-frame code on the in-memory venue, the staged replica, the
plain-Python reference strategy, the allocation check and the loopback matcher (no timing asserts)."""

from __future__ import annotations

import logging
import os
import sys

import orjson
import pytest

from hlfast.memtransport import MemoryConnection, MemoryVenue
from hlfast.recording import FrameWriter, iter_frames
from hlfast.signer import recover_signer
from hlfast.venue.server import VenueConfig, VenueServer, build_venue

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "perf"))

import loopback  # noqa: E402
import reference_pipeline  # noqa: E402
import tick_to_order as t2o  # noqa: E402

LIVE_ACTION_KINDS = {"order", "cancel", "batchModify", "scheduleCancel"}   # what Engine posts
FRAMES = 300
WARMUP = 50


@pytest.fixture(scope="module", autouse=True)
def quiet_engine_logs():
    logger = logging.getLogger("hlfast")
    level = logger.level
    logger.setLevel(logging.ERROR)
    yield
    logger.setLevel(level)


@pytest.fixture(scope="module")
def first_pass(tmp_path_factory):
    """One session through Engine._on_market_frame, its frames recorded as the references read them."""
    path = tmp_path_factory.mktemp("t2o") / "frames.gz"
    h = t2o.Harness(seed=5, levels=5)
    hists = t2o.EngineHists()
    sent: list[bytes] = []
    original = h.mv.deliver_sent

    def capture() -> int:   # every frame the engine hands to its order connection
        for client, _ in h.mv.links:
            if client is h.oc:
                sent.extend(client.outbox)
        return original()

    h.mv.deliver_sent = capture
    with FrameWriter(path) as writer:
        actions = t2o.run_engine_pass(h, FRAMES, WARMUP, hists, "on", writer)
    return {"harness": h, "hists": hists, "actions": actions, "sent": sent, "path": path}


def test_engine_pass_runs_frames_end_to_end(first_pass):
    h, hists, actions = first_pass["harness"], first_pass["hists"], first_pass["actions"]
    assert hists.ticks == FRAMES
    assert hists.no_action.count + hists.with_action.count == FRAMES
    assert hists.with_action.count == hists.tick_to_order.count > 0
    assert set(actions) <= LIVE_ACTION_KINDS and actions.get("order", 0) > 0
    # a post-only price can meet a market that moved while the action was in flight; nothing else is refused
    assert set(h.engine.rejects_by_reason) <= {"alo_cross"} and h.engine.malformed == 0
    assert h.venue.actions >= sum(actions.values())   # every action reached the venue and was executed
    assert len(list(iter_frames(first_pass["path"]))) == FRAMES + WARMUP


def test_posts_are_the_live_wire_format_and_verify(first_pass):
    h = first_pass["harness"]
    posts = [orjson.loads(f) for f in first_pass["sent"] if f.startswith(b'{"method":"post"')]
    assert posts
    kinds = set()
    for msg in posts:
        assert msg["request"]["type"] == "action" and isinstance(msg["id"], int)
        payload = msg["request"]["payload"]
        kinds.add(payload["action"]["type"])
        # phantom-agent source "b" (not mainnet), exactly as the venue checks it
        assert recover_signer(payload, is_mainnet=False) == h.engine.signer.address
    assert kinds <= {"order", "cancelByCloid", "batchModify", "scheduleCancel"}
    assert "order" in kinds


def test_stage_pass_reproduces_the_engine_pass(first_pass):
    helper = t2o.load_stage_helper()
    hists = t2o.new_stage_hists()
    actions = t2o.run_stage_pass(t2o.Harness(seed=5, levels=5), FRAMES, WARMUP, hists, helper, "on")
    assert actions == first_pass["actions"]
    assert hists["decode+book"].count == FRAMES
    assert hists["sign"].count == first_pass["hists"].with_action.count
    assert hists["quote"].count > 0 and hists["reconcile"].count == hists["quote"].count


def test_no_net_allocation_per_no_action_tick():
    h = t2o.Harness(seed=7, levels=5)
    for _ in range(200):
        recv_ns, raw = h.next_frame()
        h.clock.ns = recv_ns
        h.engine._on_market_frame(raw, recv_ns, True)
        h.after_tick()
    res = t2o.allocation_check(h, ticks=3000)
    assert res["ticks_with_action"] == 0
    assert abs(res["per_tick"]) < 0.01, res


def test_reference_strategy_on_the_same_frames(first_pass):
    settings = first_pass["harness"].settings()
    frames = list(iter_frames(first_pass["path"]))
    out = reference_pipeline.replay(settings, [frames], WARMUP, "0x" + "5e" * 32)
    market = [raw for _, raw in frames if raw.startswith((b'{"channel":"l2Book"', b'{"channel":"trades"'))]
    assert out["ticks"] == len(market)
    assert out["no_action"]["count"] + out["with_action"]["count"] == FRAMES
    assert out["with_action"]["count"] == out["tick_to_order"]["count"] > 0
    assert out["stages"]["sign"]["count"] == out["with_action"]["count"]
    assert set(out["actions"]) <= {"order", "cancel", "batchModify"} and out["actions"]["order"] > 0


def test_reference_signs_like_the_sdk_and_the_venue_accepts_it(first_pass):
    settings = first_pass["harness"].settings()
    strat = reference_pipeline.ReferenceStrategy(settings, "0x" + "5e" * 32)
    stamps = [0] * 6
    sent: list[bytes] = []
    for recv_ns, raw in iter_frames(first_pass["path"]):
        sent += strat.on_frame(raw, recv_ns / 1e9, stamps)
        if len(sent) >= 3:
            break
    assert sent
    for frame in sent:
        payload = orjson.loads(frame)["request"]["payload"]
        assert recover_signer(payload, is_mainnet=False) == strat.wallet.address


def test_memory_venue_serves_http_and_ws_like_the_venue():
    venue = build_venue(VenueConfig(coins=("BTC",), auto_fund=True, seed=2, block_ms=100, start_ms=t2o.START_MS))
    mv = MemoryVenue(venue)
    md = MemoryConnection("market", [{"type": "l2Book", "coin": "BTC"}, {"type": "trades", "coin": "BTC"}])
    mv.attach(md)
    assert md.connect()
    mv.deliver_sent()
    channels = [orjson.loads(f)["channel"] for f in md.inbox]
    assert channels.count("subscriptionResponse") == 2
    md.inbox.clear()
    assert mv.step()
    frames = []
    assert md.read_frames(frames) == len(frames) > 0 and md.read_ns > 0
    assert {orjson.loads(f)["channel"] for f in frames} <= {"l2Book", "trades"}
    assert mv.http.info({"type": "meta"})["universe"][0]["name"] == "BTC"


def test_venue_stamps_actions_and_hands_them_out_once():
    venue = build_venue(VenueConfig(coins=("BTC",), seed=2, block_ms=100, start_ms=t2o.START_MS, stamp_frames=True))
    server = VenueServer(venue)
    server._stamp_action(b'{"method":"post","id":1,"request":{"type":"action","payload":{"action":{"type":"order"}}}}')
    server._stamp_action(b'{"method":"subscribe","subscription":{"type":"trades","coin":"BTC"}}')
    stamps = venue.info({"type": "venueStamps"})
    assert [s[0] for s in stamps] == ["order"] and stamps[0][1] > 0
    assert venue.info({"type": "venueStamps"}) == []


def test_loopback_attributes_each_action_to_the_frame_before_it():
    stamps = [["l2Book", 100], ["order", 130], ["cancelByCloid", 140], ["scheduleCancel", 150],
              ["trades", 200], ["l2Book", 210], ["batchModify", 260], ["l2Book", 300]]
    assert loopback.frame_to_action(stamps) == [30, 50]


def test_session_plan_covers_every_frame():
    assert t2o.session_plan(1000, 300) == [300, 300, 300, 100]
    assert t2o.session_plan(1000, 0) == [1000]
    assert sum(t2o.session_plan(20_000, 400)) == 20_000
