"""Client-side view of Hyperliquid's rate limits (protocol.md §5, algorithms.md §13).

* Address budget: cap = 10,000 + cumulative USD volume; every order, cancel or modify item
  costs 1.  Refreshed from a ``userRateLimit`` reply and counted locally in between.
  Cancels have the higher cap min(cap + 100,000, 2·cap).
* IP weight: 1,200 per sliding minute; an /exchange action weighs 1 + floor(n/40), /info
  requests their documented weight (20 unless told).
* Headroom rule: when less than 5 % of either budget would remain, only cancels go out.
* After a rate-limit refusal: back off 10 s × 1.5^k, capped at 60 s (cancels still pass an
  address back-off; nothing passes an IP back-off).
"""
from __future__ import annotations

import math
from collections import deque
from typing import Any

__all__ = ["RateLimitTracker", "ACTION_KINDS", "is_address_rate_limit"]

# kinds of request; "cancel" and "schedule_cancel" are the protective ones that survive low headroom
ACTION_KINDS = frozenset({"order", "modify", "cancel", "schedule_cancel", "leverage", "noop"})
_PROTECTIVE = frozenset({"cancel", "schedule_cancel"})
_KINDS = ACTION_KINDS | {"info"}


def is_address_rate_limit(error_text: str) -> bool:
    """True for the exchange's address-budget refusal ("Too many cumulative requests sent …")."""
    return "Too many cumulative requests" in error_text


class RateLimitTracker:
    def __init__(self, *, initial_budget: int = 10_000, ip_weight_per_minute: int = 1200,
                 headroom_fraction: float = 0.05, window_s: float = 60.0, backoff_base_s: float = 10.0,
                 backoff_factor: float = 1.5, backoff_max_s: float = 60.0, over_cap_interval_s: float = 10.0,
                 default_info_weight: int = 20) -> None:
        self.initial_budget = initial_budget
        self.ip_limit = ip_weight_per_minute
        self.headroom_fraction = headroom_fraction
        self.window_s = window_s
        self.backoff_base_s = backoff_base_s
        self.backoff_factor = backoff_factor
        self.backoff_max_s = backoff_max_s
        self.over_cap_interval_s = over_cap_interval_s
        self.default_info_weight = default_info_weight
        self.cum_volume = 0.0  # USD, as last reported plus local fills since
        self.address_used = 0  # requests counted against the address budget
        self._reported_cap: int | None = None
        self._volume_at_refresh = 0.0
        self._ip_events: deque[tuple[float, int]] = deque()
        self._ip_sum = 0
        self.last_action_t = -math.inf
        self.backoff_until = -math.inf
        self.backoff_scope = ""  # "address" or "ip" while backing off
        self.backoff_level = 0  # k in 10 s × 1.5^k
        self.rate_limited = 0  # refusals reported by the exchange
        self.denied: dict[str, int] = {k: 0 for k in sorted(_KINDS)}
        self.refreshes = 0
        self.bad_refreshes = 0

    # ------------------------------------------------------------------ figures
    @property
    def address_cap(self) -> int:
        if self._reported_cap is not None:
            return self._reported_cap + int(self.cum_volume - self._volume_at_refresh)
        return self.initial_budget + int(self.cum_volume)

    @property
    def cancel_cap(self) -> int:
        cap = self.address_cap
        return min(cap + 100_000, 2 * cap)

    @property
    def address_remaining(self) -> int:
        return self.address_cap - self.address_used

    @property
    def address_headroom(self) -> float:
        """Fraction of the address cap still unused (negative when over the cap)."""
        cap = self.address_cap
        return self.address_remaining / cap if cap > 0 else 0.0

    def ip_weight_minute(self, t: float) -> int:
        """IP weight spent in the sliding window ending at t."""
        events = self._ip_events
        horizon = t - self.window_s
        while events and events[0][0] <= horizon:
            self._ip_sum -= events.popleft()[1]
        return self._ip_sum

    @staticmethod
    def exchange_weight(n_items: int) -> int:
        return 1 + max(n_items, 0) // 40

    def weight(self, kind: str, n_items: int, weight: int | None = None) -> int:
        if weight is not None:
            return weight
        if kind == "info":
            return self.default_info_weight
        return self.exchange_weight(n_items)

    def figures(self, t: float) -> dict[str, Any]:
        """Snapshot for metrics."""
        return {"address_used": self.address_used, "address_cap": self.address_cap,
                "address_remaining": self.address_remaining, "address_headroom": self.address_headroom,
                "cancel_cap": self.cancel_cap, "cum_volume": self.cum_volume,
                "ip_weight_minute": self.ip_weight_minute(t), "ip_limit": self.ip_limit,
                "backoff_until": self.backoff_until, "backoff_level": self.backoff_level,
                "backing_off": t < self.backoff_until, "rate_limited": self.rate_limited,
                "denied": dict(self.denied)}

    # ------------------------------------------------------------------ decisions
    def allow(self, kind: str, n_items: int, t: float, weight: int | None = None) -> bool:
        """May a request of this kind with n_items orders/cancels go out at time t?  (No side effects
        except the denial counters.)"""
        if kind not in _KINDS:
            kind = "order"  # unknown kinds get the strictest treatment
        ok = self._allowed(kind, n_items, t, self.weight(kind, n_items, weight))
        if not ok:
            self.denied[kind] += 1
        return ok

    def _allowed(self, kind: str, n_items: int, t: float, w: int) -> bool:
        protective = kind in _PROTECTIVE
        if t < self.backoff_until and (self.backoff_scope == "ip" or not protective):
            return False
        ip_after = self.ip_limit - self.ip_weight_minute(t) - w
        if ip_after < 0:
            return False
        if not protective and ip_after < self.headroom_fraction * self.ip_limit:
            return False
        if kind == "info":
            return True
        used_after = self.address_used + max(n_items, 1)
        if protective:
            if used_after <= self.cancel_cap:
                return True
            return t - self.last_action_t >= self.over_cap_interval_s
        cap = self.address_cap
        return cap - used_after >= self.headroom_fraction * cap

    # ------------------------------------------------------------------ bookkeeping
    def record(self, kind: str, n_items: int, t: float, weight: int | None = None) -> None:
        """A request went out: charge the IP window and (for actions) the address budget."""
        w = self.weight(kind, n_items, weight)
        self.ip_weight_minute(t)  # evict first so the window stays short
        self._ip_events.append((t, w))
        self._ip_sum += w
        if kind != "info":
            self.address_used += max(n_items, 1)
            self.last_action_t = t

    def on_expired_reject(self, n_items: int) -> None:
        """An action refused for a stale expiresAfter costs 5× (1× already recorded)."""
        self.address_used += 4 * max(n_items, 1)

    def on_volume(self, usd: float) -> None:
        """Own fill volume since the last refresh: each USD traded buys one request."""
        if usd > 0 and math.isfinite(usd):
            self.cum_volume += usd

    def refresh(self, reply: dict) -> bool:
        """Replace the local count with a ``userRateLimit`` reply {cumVlm, nRequestsUsed, nRequestsCap}."""
        try:
            cum_volume = float(reply["cumVlm"])
            used = int(reply["nRequestsUsed"])
            cap = int(reply["nRequestsCap"]) if "nRequestsCap" in reply else None
        except (KeyError, TypeError, ValueError):
            self.bad_refreshes += 1
            return False
        if not math.isfinite(cum_volume) or used < 0:
            self.bad_refreshes += 1
            return False
        self.cum_volume = cum_volume
        self._volume_at_refresh = cum_volume
        self.address_used = used
        self._reported_cap = cap
        self.refreshes += 1
        return True

    def on_rate_limited(self, t: float, scope: str = "address") -> float:
        """The exchange refused a request for rate limits (scope "address" or "ip", i.e. HTTP 429).
        Returns the time until which non-protective requests are held back."""
        self.rate_limited += 1
        if scope == "ip" or t >= self.backoff_until:  # an IP back-off is never weakened to an address one
            self.backoff_scope = scope
        delay = min(self.backoff_max_s, self.backoff_base_s * self.backoff_factor ** self.backoff_level)
        self.backoff_level += 1
        self.backoff_until = max(self.backoff_until, t + delay)
        return self.backoff_until

    def on_action_ok(self, t: float) -> None:
        """An action was accepted: once the back-off has expired, the next refusal starts at 10 s again."""
        if t >= self.backoff_until:
            self.backoff_level = 0
            self.backoff_scope = ""
