"""Plain-Python reference for the quoting kernel (algorithms.md sections 6-9).

Written for clarity, with the same floating-point operations in the same order as the kernel so
results can be compared exactly (prices, lots) or to 1e-12 (depths).  Also holds an independent
validator of Hyperliquid's order rules built on decimal strings.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import Decimal

KAPPA_MIN, KAPPA_MAX, GAMMA_MAX, A_MIN = 1.0, 1e9, 1e9, 1e-12
MAX_LOTS = 1e15


# ---------------------------------------------------------------- GLFT and effective gamma

def glft(gamma: float, sigma: float, A: float, kappa: float, fee_maker: float = 0.0,
         delta: float = 1.0, mode: str = "full") -> tuple[float, float]:
    kappa = min(max(kappa, KAPPA_MIN), KAPPA_MAX)
    gamma = min(max(gamma, 0.0), GAMMA_MAX)
    A = max(A, A_MIN)
    if not delta > 0:
        delta = 1.0
    x = gamma * delta / kappa
    if x > 1e-8:
        c1 = math.log1p(x) / x / kappa
        growth = math.exp((1.0 / x + 1.0) * math.log1p(x))
    else:   # series in x: ln(1+x)/x ~ 1 - x/2, (1+x)^(1/x+1) ~ e^(1 + x/2)
        c1 = (1.0 - 0.5 * x) / kappa
        growth = math.exp(1.0 + 0.5 * x)
    c2 = math.sqrt(gamma / (2.0 * A * delta * kappa) * growth)
    skew = sigma * c2
    if mode == "simple":
        return c1 + fee_maker, skew
    return c1 + 0.5 * delta * sigma * c2 + fee_maker, skew


def effective_gamma(gamma_base: float, sigma_eff: float, sigma_ref: float, toxicity: float = 1.0,
                    position: float = 0.0, max_position: float = 1.0, cascade_mult: float = 1.0,
                    calibration_mult: float = 1.0) -> float:
    fin = math.isfinite
    if not (fin(gamma_base) and gamma_base > 0):
        return 0.0
    vol = 1.0
    if fin(sigma_eff) and sigma_eff >= 0 and fin(sigma_ref) and sigma_ref > 0:
        vol = 1.0 + min(max((sigma_eff - sigma_ref) / sigma_ref, -0.5), 3.0)
    toxicity = toxicity if fin(toxicity) and toxicity > 0 else 1.0
    cascade_mult = cascade_mult if fin(cascade_mult) and cascade_mult > 0 else 1.0
    calibration_mult = calibration_mult if fin(calibration_mult) and calibration_mult > 0 else 1.0
    u = 1.0
    if fin(position) and fin(max_position) and max_position > 0:
        u = min(abs(position) / max_position, 1e6)
    g = gamma_base * vol * toxicity * (1.0 + 4.0 * u * u) * cascade_mult * calibration_mult
    return min(max(g, 0.05 * gamma_base), 20.0 * gamma_base)


# ---------------------------------------------------------------- Hyperliquid grid

def grid_unit(ticks: int, px_decimals: int) -> int:
    """5 significant figures of the tick count, never coarser than a whole price unit."""
    digits = len(str(ticks)) if ticks > 0 else 1
    return 10 ** min(max(digits - 5, 0), px_decimals)


def floor_tol(x: float) -> int:
    return math.floor(x + 1e-12 * abs(x))


def ceil_tol(x: float) -> int:
    return math.ceil(x - 1e-12 * abs(x))


def floor_valid(ticks: int, px_decimals: int) -> int:
    if ticks <= 0:
        return 0
    return ticks - ticks % grid_unit(ticks, px_decimals)


def ceil_valid(ticks: int, px_decimals: int) -> int:
    if ticks <= 0:
        return 0
    unit = grid_unit(ticks, px_decimals)
    return -(-ticks // unit) * unit


def sdk_round_px(px: float, sz_decimals: int) -> float:
    """The SDK example's price rounding (examples/rounding.py)."""
    if px > 100_000:
        return float(round(px))
    return round(float(f"{px:.5g}"), 6 - sz_decimals)


# ---------------------------------------------------------------- order validator (decimal strings)

def price_is_valid(px: str, sz_decimals: int) -> bool:
    d = Decimal(px)
    if d <= 0:
        return False
    exponent = d.normalize().as_tuple().exponent
    decimals = max(0, -exponent)
    if decimals > 6 - sz_decimals:
        return False
    if d == d.to_integral_value():
        return True
    return len(d.normalize().as_tuple().digits) <= 5


def size_is_valid(sz: str, sz_decimals: int) -> bool:
    d = Decimal(sz)
    return d > 0 and max(0, -d.normalize().as_tuple().exponent) <= sz_decimals


def order_problems(px: str, sz: str, sz_decimals: int, min_value: float = 10.0) -> list[str]:
    """Reasons Hyperliquid (with our safety margin in min_value) would refuse this order."""
    problems = []
    if not price_is_valid(px, sz_decimals):
        problems.append(f"invalid price {px}")
    if not size_is_valid(sz, sz_decimals):
        problems.append(f"invalid size {sz}")
    if Decimal(px) * Decimal(sz) < Decimal(repr(min_value)):
        problems.append(f"value {Decimal(px) * Decimal(sz)} < {min_value}")
    if px != px.strip() or sz.endswith(".") or (("." in px) and px.endswith("0")):
        problems.append(f"non-canonical wire string {px!r}")
    return problems


def ticks_to_decimal(ticks: int, px_decimals: int) -> str:
    return format(Decimal(ticks).scaleb(-px_decimals).normalize(), "f")


# ---------------------------------------------------------------- Quoter

@dataclass
class Ladder:
    rc: int = 0
    bids: list[tuple[int, int]] = field(default_factory=list)   # (px ticks, lots), best first
    asks: list[tuple[int, int]] = field(default_factory=list)
    bid_depths: list[float] = field(default_factory=list)
    ask_depths: list[float] = field(default_factory=list)
    half_spread_bid: float = 0.0
    half_spread_ask: float = 0.0
    skew_bid: float = 0.0
    skew_ask: float = 0.0
    delta_bid: float = 0.0
    delta_ask: float = 0.0
    cap_bid: float = 0.0
    cap_ask: float = 0.0
    bid_empty: int = 0      # SIDE_* reason the side is empty (0 = quoted)
    ask_empty: int = 0


SIDE_QUOTED, SIDE_INVALID, SIDE_NO_SIZE, SIDE_TOO_DEEP, SIDE_BELOW_MIN, SIDE_NO_PRICE = range(6)


def _inputs_valid(q: dict, px_scale: float) -> int:
    fin = math.isfinite
    if not (fin(q["microprice"]) and 1.0 <= q["microprice"] * px_scale < 9e15):
        return -1
    if not (q["best_bid"] >= 1 and q["best_ask"] > q["best_bid"]):
        return -1
    if not (fin(q["sigma"]) and q["sigma"] >= 0 and fin(q["A"]) and q["A"] > 0
            and fin(q["kappa_bid"]) and q["kappa_bid"] > 0 and fin(q["kappa_ask"]) and q["kappa_ask"] > 0
            and fin(q["gamma"]) and q["gamma"] >= 0 and fin(q["fee_maker"]) and abs(q["fee_maker"]) < 0.01
            and fin(q["drift"]) and fin(q["horizon"]) and q["horizon"] >= 0
            and fin(q["half_spread_mult"]) and q["half_spread_mult"] > 0
            and fin(q["skew_mult"]) and q["skew_mult"] >= 0
            and fin(q["min_spread"]) and q["min_spread"] >= 0 and fin(q["adverse_sel"])
            and q["glft_mode"] in ("full", "simple")):
        return -2
    if not (fin(q["position"]) and fin(q["max_position"]) and q["max_position"] > 0
            and fin(q["pending_bid"]) and q["pending_bid"] >= 0
            and fin(q["pending_ask"]) and q["pending_ask"] >= 0
            and q["q_bid"] >= 0 and q["q_ask"] >= 0
            and q["exch_cap_bid"] >= 0 and q["exch_cap_ask"] >= 0):
        return -3
    return 0


DEFAULTS = dict(sigma=2.5e-4, A=1.0, kappa_bid=2000.0, kappa_ask=None, drift=0.0, horizon=30.0,
                position=0.0, pending_bid=0.0, pending_ask=0.0, fee_maker=1.5e-4,
                q_bid=math.inf, q_ask=math.inf, exch_cap_bid=math.inf, exch_cap_ask=math.inf,
                half_spread_mult=1.0, skew_mult=1.0, unit_size=0.0, min_spread=0.0,
                adverse_sel=0.0, glft_mode="full")


def quote(sz_decimals: int, levels: int = 25, min_notional: float = 10.0,
          min_notional_safety: float = 1.5, max_depth: float = 0.02, weight_epsilon: float = 1e-6,
          drops: list | None = None, **inputs) -> Ladder:
    """Both sides of the ladder; drops, if given, collects (side, level, was_lightest) for every
    level the minimum-value loop removed, in order."""
    q = dict(DEFAULTS)
    q.update(inputs)
    if q["kappa_ask"] is None:
        q["kappa_ask"] = q["kappa_bid"]
    pd = 6 - sz_decimals
    px_scale = float(10 ** pd)
    sz_scale = float(10 ** sz_decimals)
    min_value = min_notional * min_notional_safety
    out = Ladder()
    out.rc = _inputs_valid(q, px_scale)
    if out.rc:
        out.bid_empty = out.ask_empty = SIDE_INVALID
        return out
    micro = q["microprice"]
    micro_ticks = micro * px_scale
    tick_frac = grid_unit(floor_tol(micro_ticks), pd) / micro_ticks
    depth_floor = max(max(q["min_spread"], tick_frac), q["fee_maker"] + 0.5e-4)
    unit = q["unit_size"]
    if not (math.isfinite(unit) and unit > 0):
        unit = min_notional * min_notional_safety / micro
    q_hat = q["position"] / unit
    hb, sb = glft(q["gamma"], q["sigma"], q["A"], q["kappa_bid"], q["fee_maker"], 1.0, q["glft_mode"])
    ha, sa = glft(q["gamma"], q["sigma"], q["A"], q["kappa_ask"], q["fee_maker"], 1.0, q["glft_mode"])
    out.half_spread_bid = hb * q["half_spread_mult"]
    out.half_spread_ask = ha * q["half_spread_mult"]
    out.skew_bid = sb * q["skew_mult"]
    out.skew_ask = sa * q["skew_mult"]
    drift_shift = 0.5 * q["drift"] * q["horizon"]
    out.delta_bid = max(out.half_spread_bid + out.skew_bid * q_hat - drift_shift, depth_floor)
    out.delta_ask = max(out.half_spread_ask - out.skew_ask * q_hat + drift_shift, depth_floor)

    p, m = q["position"], q["max_position"]
    if p >= 0:
        cb, ca = m - p - q["pending_bid"], p + m - q["pending_ask"]
    else:
        cb, ca = -p + m - q["pending_bid"], m + p - q["pending_ask"]
    cb, ca = max(cb, 0.0), max(ca, 0.0)
    if p > m:
        ca = min(ca, max(p - q["pending_ask"], 0.0))
    elif -p > m:
        cb = min(cb, max(-p - q["pending_bid"], 0.0))
    hard = {1: min(cb, q["exch_cap_bid"]), -1: min(ca, q["exch_cap_ask"])}
    out.cap_bid = min(hard[1], q["q_bid"])
    out.cap_ask = min(hard[-1], q["q_ask"])

    min_value_scaled = ceil_tol(min_notional * min_notional_safety * 1e6)
    for side in (1, -1):
        delta1 = out.delta_bid if side > 0 else out.delta_ask
        kappa = q["kappa_bid"] if side > 0 else q["kappa_ask"]
        total = out.cap_bid if side > 0 else out.cap_ask
        levels_out, depths_out, empty = _side(side, delta1, kappa, total, hard[side], micro_ticks, q, levels,
                                              pd, sz_scale, min_value, min_value_scaled, max_depth,
                                              weight_epsilon, drops)
        if side > 0:
            out.bids, out.bid_depths, out.bid_empty = levels_out, depths_out, empty
        else:
            out.asks, out.ask_depths, out.ask_empty = levels_out, depths_out, empty
    return out


def _side(side, delta1, kappa, total, hard_cap, micro_ticks, q, K, pd, sz_scale, min_value, min_value_scaled,
          max_depth, weight_epsilon, drops=None):
    if not total > 0:
        return [], [], SIDE_NO_SIZE
    if not delta1 <= max_depth:
        return [], [], SIDE_TOO_DEEP
    guard = floor_valid(q["best_ask"] - 1, pd) if side > 0 else ceil_valid(q["best_bid"] + 1, pd)
    if side > 0:
        touch_px = min(floor_valid(floor_tol(micro_ticks * (1.0 - delta1)), pd), guard)
        if touch_px <= 0:
            return [], [], SIDE_NO_PRICE
    else:
        touch_px = max(ceil_valid(ceil_tol(micro_ticks * (1.0 + delta1)), pd), guard)
    total_lots = floor_tol(min(total * sz_scale, MAX_LOTS))
    min_size_lots = -(-min_value_scaled // touch_px)     # the touch level's minimum, rounded up
    if total_lots < min_size_lots:
        # one minimum-size order requested (the section 8 fallback): one level rounded up to the lot
        if (total * sz_scale >= min_value * sz_scale / q["microprice"] * (1.0 - 1e-9)
                and floor_tol(min(hard_cap * sz_scale, MAX_LOTS)) >= min_size_lots):
            total_lots = min_size_lots
        else:
            return [], [], SIDE_BELOW_MIN
    k_used = min(K, total_lots // min_size_lots)
    tick_frac = grid_unit(floor_tol(micro_ticks), pd) / micro_ticks
    depth_k = min(max(5.0 * delta1, delta1 + K * tick_frac), max_depth)
    ratio = math.pow(depth_k / delta1, 1.0 / (K - 1)) if K > 1 else 1.0
    edge_cost = q["adverse_sel"] + q["fee_maker"]
    levels = []   # [px, depth, weight, min_lots]
    d = delta1
    for i in range(k_used):
        if i > 0:
            d = d * ratio
        if side > 0:
            px = min(floor_valid(floor_tol(micro_ticks * (1.0 - d)), pd), guard)
            if px <= 0:
                break
        else:
            px = max(ceil_valid(ceil_tol(micro_ticks * (1.0 + d)), pd), guard)
        w = math.exp(-kappa * (d - delta1)) * max(d - edge_cost, weight_epsilon)
        if levels and levels[-1][0] == px:
            levels[-1][2] += w
            continue
        levels.append([px, d, w, -(-min_value_scaled // px)])
    alive = [True] * len(levels)
    lots = [0] * len(levels)
    while levels:
        weight_sum = 0.0
        for i, lv in enumerate(levels):
            if alive[i]:
                weight_sum += lv[2]
        if not weight_sum > 0:
            return [], [], SIDE_BELOW_MIN
        worst = -1
        for i, lv in enumerate(levels):
            if not alive[i]:
                continue
            lots[i] = floor_tol(total_lots * lv[2] / weight_sum)
            if lots[i] < lv[3] and (worst < 0 or lv[2] <= levels[worst][2]):
                worst = i
        if worst < 0:
            break
        if drops is not None:
            lightest = min((i for i in range(len(levels)) if alive[i]), key=lambda i: (levels[i][2], -i))
            drops.append((side, worst, worst == lightest))
        alive[worst] = False
        if not any(alive):
            return [], [], SIDE_BELOW_MIN
    kept = [i for i in range(len(levels)) if alive[i]]
    return [(levels[i][0], lots[i]) for i in kept], [levels[i][1] for i in kept], SIDE_QUOTED


# ---------------------------------------------------------------- target liquidity

@dataclass
class Target:
    rc: int
    q_hard: float = 0.0
    q_soft: float = 0.0
    latency_penalty: float = 0.3
    q_target: float = 0.0
    min_size: float = 0.0
    n_levels: int = 0


def target_liquidity(account_value, microprice, gamma, sigma, fill_rate, latency_ms=50.0,
                     user_cap=math.inf, max_position=math.inf, unit_size=0.0, warm=True,
                     max_levels=25, leverage=5.0, loss_budget_frac=0.02, min_fill_rate=1 / 600,
                     min_notional=10.0, min_notional_safety=1.5) -> Target:
    fin = math.isfinite
    if not (fin(account_value) and account_value > 0 and fin(microprice) and microprice > 0
            and fin(gamma) and gamma >= 0 and fin(sigma) and sigma >= 0
            and user_cap >= 0 and max_position >= 0):
        return Target(rc=-1)
    t = Target(rc=0)
    t.min_size = min_notional * min_notional_safety / microprice
    t.q_hard = account_value * leverage * 0.5 / microprice
    rate = fill_rate if fin(fill_rate) and fill_rate > 0 else 0.0
    if not warm:
        rate = max(rate, min_fill_rate)
    if not (fin(unit_size) and microprice * unit_size > 0):
        unit_size = t.min_size
    gamma_usd = gamma / (microprice * unit_size)
    risk = gamma_usd * sigma * sigma * microprice * microprice
    t.q_soft = 0.5 * math.sqrt(2.0 * loss_budget_frac * account_value * rate / risk) if risk > 0 else math.inf
    if not (fin(latency_ms) and latency_ms > 0):
        latency_ms = 50.0
    t.latency_penalty = max(0.3, 1.0 - 0.5 * math.sqrt(latency_ms / 30.0))
    hard_cap = min(min(t.q_hard, user_cap), max_position)
    t.q_target = min(t.q_soft * t.latency_penalty, hard_cap)
    ratio = t.q_target / t.min_size * (1.0 + 1e-9)
    k = max_levels if ratio >= max_levels else math.floor(ratio) if ratio >= 1.0 else 0
    if k == 0 and hard_cap >= t.min_size:
        t.q_target = t.min_size
        k = 1
    t.n_levels = k
    return t


# ---------------------------------------------------------------- calibration controller

class Calibration:
    """Brute force: keeps every fill time and recounts the lookback window on each query."""

    def __init__(self, target_fills_per_hour=10.0, floor=0.3, lookback_s=900.0, enabled=True):
        self.f, self.m, self.lookback, self.enabled = target_fills_per_hour, floor, lookback_s, enabled
        self.fills: list[float] = []
        self.markouts = 0
        self.conf = 0.0

    def on_fill(self, t: float) -> None:
        if math.isfinite(t):
            self.fills.append(t)

    def on_markout(self) -> None:
        self.markouts += 1

    def set_kappa_confidence(self, c: float) -> None:
        if math.isfinite(c):
            self.conf = min(max(c, 0.0), 1.0)

    @property
    def progress(self) -> float:
        return 0.5 * (min(self.markouts / 20.0, 1.0) + min(self.conf / 0.5, 1.0))

    def multiplier(self, t: float) -> float:
        if not self.enabled or self.progress >= 0.95:
            return 1.0
        actual = sum(1 for x in self.fills if t - self.lookback < x)
        expected = self.f * self.lookback / 3600.0
        c = min(max(actual / expected, self.m), 1.0)
        return c + (1.0 - c) * self.progress
