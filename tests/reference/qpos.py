"""Plain-Python reference of the queue-position tracker (algorithms.md section 10)."""
from __future__ import annotations

import math
from dataclasses import dataclass

RATE_FLOOR = 1e-6


def touch_probability(side: int, px: int, best_same: int, horizon: float, sigma: float) -> float:
    """1 at or inside the touch, else min(1, 2*Phi(-d / (sigma*sqrt(H)))) with d = |best - px| / best."""
    if best_same <= 0:
        return 1.0
    if (side > 0 and px >= best_same) or (side < 0 and px <= best_same):
        return 1.0
    distance = abs(best_same - px) / best_same
    if not (sigma > 0.0 and horizon > 0.0):
        return 0.0
    scale = sigma * math.sqrt(horizon)
    return min(1.0, math.erfc(distance / scale * 0.7071067811865476))


def execute_probability(queue_ahead: float, rate: float, horizon: float) -> float:
    """P(volume traded at our level over H, exponential with mean rate*H, exceeds the queue ahead)."""
    if queue_ahead <= 0.0:
        return 1.0
    if not horizon > 0.0:
        return 0.0
    return math.exp(-queue_ahead / (max(rate, RATE_FLOOR) * horizon))


@dataclass
class RefOrder:
    side: int
    px: int
    sz: float
    ahead: float
    others_last: float
    traded_since: float = 0.0


class QueueTrackerRef:
    def __init__(self, max_orders: int = 128, vol_half_life: float = 60.0) -> None:
        self.max_orders = max_orders
        self.tau = vol_half_life / math.log(2.0)
        self.now = -math.inf
        self.rate_acc = {1: 0.0, -1: 0.0}
        self.rate_t = {1: -math.inf, -1: -math.inf}
        self.orders: dict[int, RefOrder] = {}

    def _see(self, t: float) -> None:
        self.now = max(self.now, t)

    def add(self, slot: int, side: int, px: int, sz: float, displayed: float, t: float) -> int:
        if not 0 <= slot < self.max_orders or side not in (1, -1) or px <= 0 or not sz > 0:
            return -1
        displayed = max(displayed, 0.0)
        self.orders[slot] = RefOrder(side, px, sz, displayed, displayed)
        self._see(t)
        return 0

    def remove(self, slot: int) -> int:
        self.orders.pop(slot, None)
        return 0

    def resize(self, slot: int, sz: float) -> int:
        if slot not in self.orders or not sz > 0:
            return -1
        self.orders[slot].sz = sz
        return 0

    def advance(self, t: float) -> None:
        self._see(t)

    def touch_rate(self, side: int) -> float:
        age = self.now - self.rate_t[side]
        rate = self.rate_acc[side]
        if age > 0:
            rate *= math.exp(-age / self.tau)
        return max(rate, RATE_FLOOR)

    def on_trade(self, t: float, px: int, sz: float, aggressor: int) -> int:
        if aggressor not in (1, -1) or px <= 0 or not sz > 0:
            return -1
        self._see(t)
        passive = -aggressor
        age = t - self.rate_t[passive]
        if age > 0:
            self.rate_acc[passive] *= math.exp(-age / self.tau)
            self.rate_t[passive] = t
        self.rate_acc[passive] += sz / self.tau
        affected = 0
        for order in self.orders.values():
            if order.side != passive:
                continue
            if order.px == px:
                order.ahead = max(order.ahead - sz, 0.0)
                order.traded_since += sz
                affected += 1
            elif (passive > 0 and px < order.px) or (passive < 0 and px > order.px):
                order.ahead = 0.0
                affected += 1
        return affected

    def on_book(self, levels_px: list[int], levels_sz: list[float], side: int, best_opposite: int = 0) -> int:
        updated = 0
        by_price = dict(zip(levels_px, levels_sz, strict=True))
        for order in self.orders.values():
            if order.side != side:
                continue
            p = order.px
            if best_opposite > 0 and ((side > 0 and best_opposite <= p) or (side < 0 and best_opposite >= p)):
                order.ahead = order.others_last = order.traded_since = 0.0
                updated += 1
                continue
            if not levels_px:
                continue
            best, worst = levels_px[0], levels_px[-1]
            outside = (p > best or p < worst) if side > 0 else (p < best or p > worst)
            if outside:
                order.traded_since = 0.0
                continue
            displayed = by_price.get(p, 0.0)
            ours = sum(o.sz for o in self.orders.values() if o.side == side and o.px == p) if displayed > 0 else 0.0
            others = max(displayed - ours, 0.0)
            q = order.ahead
            q_new = q
            cancelled = (order.others_last - others) - order.traded_since
            if cancelled > 0 and q > 0:
                behind = max(order.others_last - order.traded_since - q, 0.0)
                denom = behind**2 + q**2
                p_back = behind**2 / denom if denom > 0 else 0.0
                q_new = q - (1.0 - p_back) * cancelled
            q_new = max(min(q_new, others), 0.0)
            order.ahead = min(q, q_new)
            order.others_last = others
            order.traded_since = 0.0
            updated += 1
        return updated

    def queue_ahead(self, slot: int) -> float:
        return self.orders[slot].ahead if slot in self.orders else math.nan

    def probability_touch(self, slot: int, horizon: float, sigma: float, best_same: int) -> float:
        o = self.orders[slot]
        return touch_probability(o.side, o.px, best_same, horizon, sigma)

    def probability_execute_given_touch(self, slot: int, horizon: float) -> float:
        o = self.orders[slot]
        return execute_probability(o.ahead, self.touch_rate(o.side), horizon)

    def fill_probability(self, slot: int, horizon: float, sigma: float, best_same: int) -> float:
        if slot not in self.orders:
            return math.nan
        return self.probability_touch(slot, horizon, sigma, best_same) * self.probability_execute_given_touch(
            slot, horizon
        )

    def fill_probability_new(
        self, side: int, px: int, displayed: float, horizon: float, sigma: float, best_same: int
    ) -> float:
        return touch_probability(side, px, best_same, horizon, sigma) * execute_probability(
            displayed, self.touch_rate(side), horizon
        )
