"""`hlfast paper`'s first minute, through the engine's decision code (the backtester on the venue's market).

The default engine on the default synthetic market must quote near the fee floor and get filled within
60 s; the market without sweeps and the estimators without their warm-up behaviour (κ prior until 60 s,
raw drift) is the configuration that got no fills at all.
"""
from __future__ import annotations

import pytest

from hlfast.backtest import Options, run_backtest, synthetic_frames
from hlfast.config import load_config
from hlfast.venue.market import DEFAULT_COINS
from hlfast.venue.synthetic import SyntheticParams

SEEDS = (1, 2, 3, 4, 5)


def first_minutes(cfg: object = None, params: SyntheticParams | None = None) -> list[dict]:
    cfg = cfg or load_config(None, env={})
    out = []
    for seed in SEEDS:
        data = synthetic_frames("BTC", seed=seed, seconds=60.0, block_ms=100, params=params)
        out.append(run_backtest(cfg, data, DEFAULT_COINS["BTC"], Options()).summary)
    return out


def test_default_engine_is_filled_in_its_first_minute() -> None:
    runs = first_minutes()
    fills = [s["fills"] for s in runs]
    assert sum(fills) >= 10 and sum(1 for f in fills if f > 0) >= 3, fills
    volume = sum(s["volume"] for s in runs)
    fees = sum(s["fees"] for s in runs)
    pnl = sum(s["pnl"] for s in runs)
    # maker fees are 1.5 bp of volume; what the quotes earn over the mid at fill time is eaten by the
    # sweeps' permanent impact, not multiplied: the loss stays within fees plus 5 bp of volume
    assert fees == pytest.approx(1.5e-4 * volume, rel=0.05)
    assert pnl > -(fees + 5e-4 * volume)
    n = sum(s["adverse_selection"]["1s"]["n"] for s in runs)
    markout = sum(s["adverse_selection"]["1s"]["n"] * s["adverse_selection"]["1s"]["markout_bps"] for s in runs) / n
    assert -3.0 < markout < 3.0


def test_without_sweeps_and_warm_up_the_first_minute_has_no_fills() -> None:
    cfg = load_config(None, env={}, overrides={"quoting": {"kappa_blend": False, "drift_shrink": False}})
    fills = [s["fills"] for s in first_minutes(cfg, SyntheticParams(sweep_rate=0.0))]
    assert sum(fills) <= 2, fills
