"""Plain-Python reference of the HJB module (algorithms.md §12), plus a dense brute-force optimiser."""
from __future__ import annotations

import math
from dataclasses import dataclass

GRID = (0.5, 0.75, 1.0, 1.25, 1.5)


@dataclass
class State:
    q: float = 0.0
    q_max: float = 1.0
    drift_bps_s: float = 0.0
    market_spread_bps: float = 1.0
    imbalance: float = 0.5
    base_spread_bps: float = 4.0
    fee_taker_bps: float = 4.5
    t: float = 0.0


@dataclass
class Params:
    phi: float = 0.01
    horizon_s: float = 86400.0
    lambda0: float = 1.0
    beta: float = 0.1
    as_horizon_s: float = 1.0
    taker_rate: float = 0.5
    urgency_threshold: float = 0.7
    k_q_bps: float = 2.0
    k_mu_s: float = 1.0
    k_imb_bps: float = 1.0


def value(p: Params, q: float, t: float) -> float:
    return -p.phi * q * q * max(p.horizon_s - t, 0.0)


def dv_plus(p: Params, q: float, t: float) -> float:
    return value(p, q + 1.0, t) - value(p, q, t)


def dv_minus(p: Params, q: float, t: float) -> float:
    return value(p, q - 1.0, t) - value(p, q, t)


def maker_rate(p: Params, s: State, side: int, depth: float) -> float:
    share = 2.0 * (1.0 - s.imbalance) if side == 1 else 2.0 * s.imbalance
    return p.lambda0 * share * math.exp(-p.beta * max(depth - s.market_spread_bps / 2.0, 0.0))


def evaluate(p: Params, s: State, u: tuple[float, float, float, float]) -> float:
    bid, ask, nu_b, nu_a = u
    dvp, dvm = dv_plus(p, s.q, s.t), dv_minus(p, s.q, s.t)
    mh = s.drift_bps_s * p.as_horizon_s
    half = s.market_spread_bps / 2.0
    j = maker_rate(p, s, 1, bid) * (bid + dvp + mh) + maker_rate(p, s, -1, ask) * (ask + dvm - mh)
    j += nu_b * (dvp - half - s.fee_taker_bps + mh) + nu_a * (dvm - half - s.fee_taker_bps - mh)
    return j - p.phi * s.q * s.q


def taker_options(p: Params, s: State) -> list[tuple[float, float]]:
    opts = [(0.0, 0.0)]
    if s.q_max > 0 and abs(s.q) / s.q_max > p.urgency_threshold:
        opts.append((p.taker_rate if s.q < 0 else 0.0, p.taker_rate if s.q > 0 else 0.0))
    return opts


def optimize_grid(p: Params, s: State) -> tuple[float, float, float, float]:
    half = s.base_spread_bps / 2.0
    cands = [(mb * half, ma * half, tb, ta) for mb in GRID for ma in GRID for tb, ta in taker_options(p, s)]
    return max(cands, key=lambda u: evaluate(p, s, u))


def brute_force(p: Params, s: State, max_bps: float = 400.0, step: float = 0.01) -> float:
    """Best J over a dense depth grid per side (the objective is separable per side)."""
    depths = [k * step for k in range(int(max_bps / step) + 1)]
    mh = s.drift_bps_s * p.as_horizon_s
    c_bid, c_ask = dv_plus(p, s.q, s.t) + mh, dv_minus(p, s.q, s.t) - mh
    bid = max(depths, key=lambda d: maker_rate(p, s, 1, d) * (d + c_bid))
    ask = max(depths, key=lambda d: maker_rate(p, s, -1, d) * (d + c_ask))
    return max(evaluate(p, s, (bid, ask, tb, ta)) for tb, ta in taker_options(p, s))


def heuristic(p: Params, s: State) -> tuple[float, float, float, float]:
    half = s.base_spread_bps / 2.0
    qn = max(-1.0, min(1.0, s.q / s.q_max)) if s.q_max > 0 else 0.0
    tilt = p.k_imb_bps * (2.0 * s.imbalance - 1.0)
    bid = half + p.k_q_bps * qn - p.k_mu_s * s.drift_bps_s + tilt
    ask = half - p.k_q_bps * qn + p.k_mu_s * s.drift_bps_s - tilt
    floor = s.market_spread_bps / 2.0
    tb, ta = taker_options(p, s)[-1]
    return max(bid, floor), max(ask, floor), tb, ta
