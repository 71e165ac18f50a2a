"""Rate-limit tracker arithmetic: batch weights, sliding IP window, address budget, headroom, back-off."""
from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from hlfast.ratelimit import RateLimitTracker, is_address_rate_limit
from tests.paths import HL_FIXTURES
from tests.reference import ratelimit as ref

FIX = HL_FIXTURES


def test_exchange_weights():
    for n in [0, 1, 39, 40, 41, 79, 80, 199, 200]:
        assert RateLimitTracker.exchange_weight(n) == ref.exchange_weight(n)
    assert [RateLimitTracker.exchange_weight(n) for n in (1, 79, 80)] == [1, 2, 3]
    tracker = RateLimitTracker()
    assert tracker.weight("info", 0) == 20 and tracker.weight("info", 0, weight=2) == 2


@settings(deadline=None, max_examples=150)
@given(st.lists(st.tuples(st.floats(0, 5, allow_nan=False), st.sampled_from(["order", "cancel", "info"]),
                          st.integers(1, 120)), max_size=80))
def test_ip_window_matches_brute_force(steps):
    tracker = RateLimitTracker()
    t, events, used = 0.0, [], 0
    for dt, kind, n in steps:
        t += dt
        tracker.record(kind, n, t)
        w = 20 if kind == "info" else ref.exchange_weight(n)
        events.append((t, w))
        used += 0 if kind == "info" else n
        assert tracker.ip_weight_minute(t) == ref.ip_weight(events, t)
    assert tracker.address_used == used
    assert tracker.ip_weight_minute(t + 60.001) == 0


def test_ip_budget_and_headroom():
    tracker = RateLimitTracker()
    for i in range(1130):
        tracker.record("order", 1, 0.0 + i * 1e-3)
    t = 2.0
    assert tracker.ip_weight_minute(t) == 1130
    assert tracker.allow("order", 1, t)  # 69 left after it, above 60 (5 %)
    tracker.record("order", 1, t)
    for _ in range(9):
        tracker.record("order", 1, t)
    assert tracker.ip_weight_minute(t) == 1140
    assert not tracker.allow("order", 1, t) and not tracker.allow("modify", 1, t)
    assert not tracker.allow("info", 0, t)
    assert tracker.allow("cancel", 1, t)  # cancels use the headroom
    for _ in range(60):
        tracker.record("cancel", 1, t)
    assert not tracker.allow("cancel", 1, t)  # the hard 1200 applies to everything
    assert tracker.denied["order"] == 1 and tracker.denied["cancel"] == 1
    assert tracker.allow("order", 1, 60.0 + 0.5)  # the early events left the window


def test_address_budget_headroom_and_cancel_cap():
    tracker = RateLimitTracker(ip_weight_per_minute=10**9)
    assert (tracker.address_cap, tracker.cancel_cap) == (10_000, 20_000)
    tracker.record("order", 9_400, 0.0)
    assert tracker.allow("order", 100, 1.0)  # leaves exactly 500 = 5 %
    assert not tracker.allow("order", 101, 1.0)
    assert tracker.allow("cancel", 10_000, 1.0)
    tracker.on_volume(2_000.7)  # own fills buy budget
    assert tracker.address_cap == 12_000 and tracker.allow("order", 1_000, 1.0)
    tracker.record("cancel", 24_000 - 9_400, 2.0)
    assert tracker.address_used == 24_000 and tracker.cancel_cap == 24_000
    assert not tracker.allow("cancel", 1, 5.0)  # over the cancel cap: one action per 10 s
    assert tracker.allow("cancel", 1, 12.0)
    assert not tracker.allow("order", 1, 100.0)


def test_refresh_from_real_replies():
    cassette = json.loads((FIX / "sdk_cassette_user_rate_limit.json").read_text())["response"]
    tracker = RateLimitTracker()
    tracker.record("order", 5, 0.0)
    assert tracker.refresh(cassette)
    assert tracker.address_used == 36_589_831_368 and tracker.address_cap == 170_043_731_737
    assert abs(tracker.cum_volume - 170_043_721_737.45) < 1
    tracker.record("order", 3, 1.0)
    assert tracker.address_used == 36_589_831_371
    docs = json.loads((FIX / "real_exchange_and_ws_responses_quoted.json").read_text())["items"][24]["body"]
    assert tracker.refresh(docs) and tracker.address_cap == 2_864_574 and tracker.address_remaining == 2_861_684
    tracker.on_volume(10.5)
    assert tracker.address_cap == 2_864_584
    assert not tracker.refresh({"cumVlm": "x"}) and not tracker.refresh({}) and tracker.bad_refreshes == 2
    assert tracker.address_cap == 2_864_584  # a bad reply changes nothing


def test_backoff_schedule_and_scope():
    tracker = RateLimitTracker()
    expected_until, t = [], 0.0
    for k in range(7):
        until = tracker.on_rate_limited(t)
        assert until == t + ref.backoff_delay(k)
        expected_until.append(until)
        t = until
    assert expected_until[-1] - expected_until[-2] == 60.0  # capped
    t = expected_until[-1] - 1
    assert not tracker.allow("order", 1, t) and tracker.allow("cancel", 1, t)
    tracker.on_action_ok(t)  # still backing off: the level is kept
    assert tracker.backoff_level == 7
    tracker.on_action_ok(expected_until[-1])
    assert tracker.backoff_level == 0 and tracker.on_rate_limited(1000.0) == 1010.0
    tracker.on_rate_limited(1001.0, scope="ip")  # HTTP 429: nothing goes out
    assert not tracker.allow("cancel", 1, 1005.0)
    tracker.on_rate_limited(1002.0)  # a later address refusal does not weaken it
    assert tracker.backoff_scope == "ip"
    assert tracker.rate_limited == 10


def test_refusal_text_and_figures():
    items = json.loads((FIX / "real_exchange_and_ws_responses_quoted.json").read_text())["items"]
    assert is_address_rate_limit(items[11]["body"]["response"])
    assert not is_address_rate_limit(items[19]["body"]["response"])
    tracker = RateLimitTracker()
    tracker.record("order", 3, 1.0)
    figs = tracker.figures(2.0)
    assert figs["address_used"] == 3 and figs["ip_weight_minute"] == 1 and figs["address_cap"] == 10_000
    assert abs(figs["address_headroom"] - 0.9997) < 1e-12 and figs["backing_off"] is False
