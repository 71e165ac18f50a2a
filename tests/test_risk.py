"""Kill switch reasons (algorithms.md §13), exchange-limit staleness, rate budget, start-up cancel-all."""

from __future__ import annotations

import logging

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hlfast.config import load_config
from hlfast.risk import (
    ExchangeLimits,
    KillSwitch,
    RiskLimits,
    WindowCounter,
    is_rate_limit_error,
    startup_cancel_all,
)

LIMITS = RiskLimits(max_position=1.0, max_position_value_usd=100_000.0, max_daily_loss_usd=500.0,
                    max_drawdown_pct=5.0, stale_data_s=10.0, cooldown_s=30.0)


def healthy(**kw):
    state = dict(position=0.0, mid=100.0, equity=10_000.0, last_market_data_at=0.0)
    state.update(kw)
    return state


def test_limits_come_from_the_config_section():
    cfg = load_config(env={}, overrides={"risk": {"max_position": 0.3, "reject_storm_count": 4}})
    lim = RiskLimits.from_config(cfg.risk)
    assert lim.max_position == 0.3 and lim.reject_storm_count == 4
    assert lim.cancel_all_attempts == 5 and lim.cancel_all_interval_ms == 500.0


def test_runaway_trips_just_above_twice_the_limit_and_needs_restart(caplog):
    ks = KillSwitch(LIMITS)
    assert ks.step(1.0, **healthy(position=2.0, last_market_data_at=1.0)) is None  # exactly 2x: not yet
    with caplog.at_level(logging.ERROR, logger="hlfast.risk"):
        trip = ks.step(1.0, **healthy(position=-2.0001, last_market_data_at=1.0))
    assert trip is not None and trip.reason == "position_runaway" and not trip.transient
    assert "2.0001" in caplog.text and "max_position 1" in caplog.text  # one line with the numbers
    assert not ks.quoting_allowed
    # a permanent trip never clears, even when everything is healthy for long
    for t in range(2, 200, 10):
        assert ks.step(float(t), **healthy(last_market_data_at=float(t))) is None
    assert not ks.quoting_allowed


def test_stale_data_is_transient_and_recovers_after_cooldown_once_healthy():
    ks = KillSwitch(LIMITS)
    trip = ks.step(10.5, **healthy(last_market_data_at=0.0))
    assert trip.reason == "stale_data" and trip.transient
    assert ks.step(20.0, **healthy(last_market_data_at=19.0)) is None  # healthy from t=20
    assert not ks.quoting_allowed
    assert ks.step(49.0, **healthy(last_market_data_at=48.5)) is None
    assert not ks.quoting_allowed  # 29 s healthy
    ks.step(50.0, **healthy(last_market_data_at=49.5))
    assert ks.quoting_allowed


def test_permanent_reason_overrides_a_transient_trip():
    ks = KillSwitch(LIMITS)
    ks.step(11.0, **healthy(last_market_data_at=0.0))
    trip = ks.step(12.0, **healthy(position=5.0, last_market_data_at=0.0))
    assert trip.reason == "position_runaway" and not ks.trip.transient


def test_drawdown_and_daily_loss():
    ks = KillSwitch(LIMITS)
    assert ks.step(0.0, **healthy(equity=10_000.0)) is None
    assert ks.step(0.0, **healthy(equity=10_400.0)) is None  # new peak
    trip = ks.step(0.0, **healthy(equity=10_400.0 * 0.949))
    assert trip.reason == "drawdown"
    ks2 = KillSwitch(RiskLimits(max_daily_loss_usd=100.0, max_drawdown_pct=50.0))
    ks2.step(0.0, **healthy(equity=1000.0))
    assert ks2.step(0.0, **healthy(equity=899.0)).reason == "daily_loss"


def test_drawdown_is_ignored_below_one_dollar_peak():
    ks = KillSwitch(RiskLimits(max_daily_loss_usd=1e9))
    assert ks.step(0.0, **healthy(equity=0.9)) is None
    assert ks.step(0.0, **healthy(equity=0.1)) is None


def test_reject_storm_and_rate_limit_windows():
    ks = KillSwitch(LIMITS)
    ks.on_reject(0.0, 9)
    assert ks.step(1.0, **healthy(last_market_data_at=1.0)) is None
    ks.on_reject(1.0)
    assert ks.step(1.0, **healthy(last_market_data_at=1.0)).reason == "reject_storm"
    ks2 = KillSwitch(LIMITS)
    for t in (0.0, 1.0, 2.0):
        ks2.on_rate_limit_error(t)
    assert ks2.step(3.0, **healthy(last_market_data_at=3.0)) is None  # 3 is allowed, > 3 trips
    ks2.on_rate_limit_error(3.0)
    trip = ks2.step(3.0, **healthy(last_market_data_at=3.0))
    assert trip.reason == "rate_limit" and trip.transient
    # the old errors leave the 60 s window
    assert ks2.rate_limit_errors.count(61.5) == 2  # those at t=2 and t=3 remain


def test_cascade_pull_is_transient():
    ks = KillSwitch(LIMITS)
    trip = ks.step(0.0, **healthy(cascade_pull=True))
    assert trip.reason == "cascade_pull" and trip.transient


@given(st.lists(st.floats(min_value=0, max_value=100, allow_nan=False), max_size=60),
       st.floats(min_value=0, max_value=120, allow_nan=False))
@settings(deadline=None, max_examples=150)
def test_window_counter_matches_brute_force(times, now):
    times = sorted(times)
    wc = WindowCounter(10.0)
    for t in times:
        wc.add(t)
    now = max([now] + times)
    assert wc.count(now) == sum(1 for t in times if t > now - 10.0)
    assert wc.total == len(times)


def test_exchange_limits_degrade_with_age_and_are_zero_until_known():
    ex = ExchangeLimits()
    assert ex.caps(0.0) == (0.0, 0.0) and not ex.initialized
    assert ex.update_from_active_asset_data({"maxTradeSzs": ["2.5", "1.5"]}, 100.0)
    assert ex.caps(220.0) == (2.5, 1.5)
    assert ex.caps(220.1) == (1.25, 0.75)
    assert ex.caps(400.0) == (1.25, 0.75)
    assert ex.caps(400.1) == (0.0, 0.0)
    assert not ex.update_from_active_asset_data({"nothing": 1}, 500.0)


def test_exchange_limits_from_clearinghouse_state():
    ex = ExchangeLimits()
    state = {"withdrawable": "1000.0",
             "assetPositions": [{"type": "oneWay", "position": {"coin": "BTC", "szi": "0.5"}}]}
    assert ex.update_from_clearinghouse(state, "BTC", 100.0, 5.0, 0.0)
    assert ex.max_buy == pytest.approx(50.0) and ex.max_sell == pytest.approx(50.5)


def test_rate_limit_error_texts():
    assert is_rate_limit_error("Too many cumulative requests sent (10001 > 10000) for cumulative volume")
    assert not is_rate_limit_error("Order must have minimum value of $10.")


def test_startup_cancel_all_retries_until_clean():
    book = [["a", "b", "c"], ["c"], []]  # what the exchange shows on each fetch
    cancelled, sleeps = [], []
    ok, attempts = startup_cancel_all(lambda: book.pop(0), cancelled.append, attempts=5, interval_s=0.5,
                                      sleep=sleeps.append)
    assert ok and attempts == 3
    assert cancelled == [["a", "b", "c"], ["c"]]
    assert sleeps == [0.5, 0.5]


def test_startup_cancel_all_gives_up_after_five_attempts_and_survives_errors():
    calls = {"fetch": 0, "cancel": 0}

    def fetch():
        calls["fetch"] += 1
        if calls["fetch"] == 2:
            raise ConnectionError("boom")
        return ["stuck"]

    def cancel(orders):
        calls["cancel"] += 1

    sleeps = []
    ok, attempts = startup_cancel_all(fetch, cancel, sleep=sleeps.append)
    assert not ok and attempts == 5
    assert calls["cancel"] == 4 and len(sleeps) == 5 and set(sleeps) == {0.5}


def test_startup_cancel_all_retries_the_final_check_after_a_5xx():
    from hlfast.gateway import HttpError

    shown = [["a"], ["a"], ["a"], ["a"], ["a"], "5xx", "5xx", []]  # the last cancel lands; the check first fails

    def fetch():
        item = shown.pop(0)
        if item == "5xx":
            raise HttpError(500, "Internal Server Error")
        return item

    sleeps = []
    ok, attempts = startup_cancel_all(fetch, lambda orders: None, attempts=5, interval_s=0.5, sleep=sleeps.append)
    assert ok and attempts == 5 and shown == [] and len(sleeps) == 7
