"""Plain-Python reference of the venue's queue model for ONE resting order at one price.

State: queue_ahead (market lots ahead), remaining (our lots). Events:
- trade(lots) at our price: the first `queue_ahead` lots go to the market ahead of us, the rest fills us;
- snapshot(prev_display, traded, shown): cancellations c = prev_display − traded − shown; risk-averse keeps us
  behind everything cancelled (q = min(q, shown)); probabilistic first takes (1 − p_back)·c off the front,
  p_back = b²/(b² + f²) with b = prev_display − traded − q, f = q.
"""

from __future__ import annotations

import math


class ReferenceQueue:
    def __init__(self, queue_ahead: float, remaining: int, model: str = "risk_averse") -> None:
        self.q = float(queue_ahead)
        self.remaining = remaining
        self.model = model
        self.filled: list[int] = []

    def trade(self, lots: int) -> int:
        ahead = math.ceil(self.q - 1e-9)
        to_market = min(lots, ahead)
        fill = min(self.remaining, lots - to_market)
        self.q = max(0.0, self.q - to_market)
        self.remaining -= fill
        if fill:
            self.filled.append(fill)
        return fill

    def snapshot(self, prev_display: int, traded: int, shown: int) -> None:
        behind_total = prev_display - traded
        cancelled = behind_total - shown
        if self.model == "probabilistic" and cancelled > 0:
            front = self.q
            back = max(0.0, behind_total - front)
            p_back = back * back / (back * back + front * front) if back + front > 0 else 1.0
            self.q = max(0.0, front - (1.0 - p_back) * cancelled)
        self.q = min(self.q, float(shown))
