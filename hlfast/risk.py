"""Kill switch, exchange position limits, start-up cancel-all (algorithms.md §13).

The rate budget itself is hlfast.ratelimit.RateLimitTracker; rate-limit replies feed the kill switch here.

Everything here is O(1) per call (bounded deques) and never raises into the loop: checks return
a reason (or None) and the engine acts on it in the same iteration.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger("hlfast.risk")

# Reasons that clear by themselves after the cool-down once the condition is gone.
TRANSIENT_REASONS = frozenset({"stale_data", "cascade_pull", "rate_limit"})
ALL_REASONS = (
    "daily_loss", "drawdown", "position_runaway", "position_value", "stale_data",
    "rate_limit", "cascade_pull", "reject_storm", "manual",
)


@dataclass(frozen=True, slots=True)
class RiskLimits:
    max_position: float = 0.01  # coin units
    max_position_value_usd: float = 1_000.0
    max_daily_loss_usd: float = 500.0
    max_drawdown_pct: float = 5.0
    runaway_mult: float = 2.0
    stale_data_s: float = 10.0
    rate_limit_errors_max: int = 3
    rate_limit_window_s: float = 60.0
    reject_storm_count: int = 10
    reject_storm_window_s: float = 10.0
    cooldown_s: float = 30.0
    cancel_all_attempts: int = 5
    cancel_all_interval_ms: float = 500.0

    @classmethod
    def from_config(cls, risk_cfg: object) -> RiskLimits:
        """Take every field the config section has; keep defaults for the rest."""
        kwargs = {}
        for name in cls.__dataclass_fields__:
            if hasattr(risk_cfg, name):
                kwargs[name] = getattr(risk_cfg, name)
        return cls(**kwargs)


@dataclass(slots=True)
class Trip:
    reason: str
    detail: str
    at: float
    transient: bool


class WindowCounter:
    """Events within a trailing time window (bounded memory: at most `cap` timestamps)."""

    __slots__ = ("window_s", "_times", "total")

    def __init__(self, window_s: float, cap: int = 1024) -> None:
        self.window_s = window_s
        self._times: deque[float] = deque(maxlen=cap)
        self.total = 0

    def add(self, now: float, n: int = 1) -> None:
        for _ in range(n):
            self._times.append(now)
        self.total += n

    def count(self, now: float) -> int:
        t = self._times
        cutoff = now - self.window_s
        while t and t[0] <= cutoff:
            t.popleft()
        return len(t)


class KillSwitch:
    """Evaluates the §13 reasons; remembers the active trip and when transient ones may clear."""

    def __init__(self, limits: RiskLimits, logger: logging.Logger | None = None) -> None:
        self.limits = limits
        self.log = logger or log
        self.trip: Trip | None = None
        self.trips_by_reason: dict[str, int] = dict.fromkeys(ALL_REASONS, 0)
        self.rejects = WindowCounter(limits.reject_storm_window_s)
        self.rate_limit_errors = WindowCounter(limits.rate_limit_window_s)
        self.peak_equity = 0.0
        self.day_start_equity: float | None = None
        self._healthy_since: float | None = None

    # ---- event feeds ----------------------------------------------------------------------
    def on_reject(self, now: float, n: int = 1) -> None:
        self.rejects.add(now, n)

    def on_rate_limit_error(self, now: float) -> None:
        self.rate_limit_errors.add(now)

    # ---- evaluation -----------------------------------------------------------------------
    def evaluate(
        self,
        now: float,
        *,
        position: float,
        mid: float,
        equity: float,
        last_market_data_at: float,
        cascade_pull: bool = False,
    ) -> str | None:
        """The first violated reason (most severe first) or None. Does not trip by itself."""
        lim = self.limits
        if self.day_start_equity is None and equity > 0:
            self.day_start_equity = equity
        if equity > self.peak_equity:
            self.peak_equity = equity
        if lim.max_position > 0 and abs(position) > lim.runaway_mult * lim.max_position:
            return "position_runaway"
        if mid > 0 and lim.max_position_value_usd > 0 and abs(position) * mid > 2.0 * lim.max_position_value_usd:
            return "position_value"
        if self.day_start_equity is not None and self.day_start_equity - equity > lim.max_daily_loss_usd:
            return "daily_loss"
        if self.peak_equity >= 1.0 and (self.peak_equity - equity) > lim.max_drawdown_pct / 100.0 * self.peak_equity:
            return "drawdown"
        if self.rejects.count(now) >= lim.reject_storm_count:
            return "reject_storm"
        if self.rate_limit_errors.count(now) > lim.rate_limit_errors_max:
            return "rate_limit"
        if now - last_market_data_at > lim.stale_data_s:
            return "stale_data"
        if cascade_pull:
            return "cascade_pull"
        return None

    def detail(self, reason: str, *, position: float, mid: float, equity: float, last_market_data_at: float,
               now: float) -> str:
        lim = self.limits
        if reason == "position_runaway":
            return f"|position| {abs(position):.6g} > {lim.runaway_mult:g} x max_position {lim.max_position:g}"
        if reason == "position_value":
            return f"position value ${abs(position) * mid:,.2f} > 2 x ${lim.max_position_value_usd:,.2f}"
        if reason == "daily_loss":
            return f"loss ${(self.day_start_equity or 0.0) - equity:,.2f} > ${lim.max_daily_loss_usd:,.2f}"
        if reason == "drawdown":
            dd = 100.0 * (self.peak_equity - equity) / self.peak_equity
            return f"drawdown {dd:.2f}% of peak ${self.peak_equity:,.2f} > {lim.max_drawdown_pct:g}%"
        if reason == "reject_storm":
            return f"{self.rejects.count(now)} rejects in {lim.reject_storm_window_s:g}s"
        if reason == "rate_limit":
            return f"{self.rate_limit_errors.count(now)} rate-limit errors in {lim.rate_limit_window_s:g}s"
        if reason == "stale_data":
            return f"no market data for {now - last_market_data_at:.1f}s > {lim.stale_data_s:g}s"
        if reason == "cascade_pull":
            return "liquidation cascade intensity at pull level"
        return reason

    def step(self, now: float, *, position: float, mid: float, equity: float, last_market_data_at: float,
             cascade_pull: bool = False) -> Trip | None:
        """Evaluate and update the trip state. Returns a NEW trip (act on it now) or None."""
        reason = self.evaluate(now, position=position, mid=mid, equity=equity,
                               last_market_data_at=last_market_data_at, cascade_pull=cascade_pull)
        if self.trip is not None:
            if self.trip.transient:
                if reason is None:
                    if self._healthy_since is None:
                        self._healthy_since = now
                    if now - self._healthy_since >= self.limits.cooldown_s:
                        self.log.warning("risk: quoting resumes after %s (healthy for %.0fs)",
                                         self.trip.reason, now - self._healthy_since)
                        self.trip = None
                        self._healthy_since = None
                    return None
                self._healthy_since = None
                if reason in TRANSIENT_REASONS:
                    return None
                # a permanent reason overrides a transient trip
            else:
                return None
        if reason is None:
            return None
        detail = self.detail(reason, position=position, mid=mid, equity=equity,
                             last_market_data_at=last_market_data_at, now=now)
        return self.force(reason, detail, now)

    def force(self, reason: str, detail: str, now: float) -> Trip:
        trip = Trip(reason, detail, now, reason in TRANSIENT_REASONS)
        self.trip = trip
        self._healthy_since = None
        self.trips_by_reason[reason] = self.trips_by_reason.get(reason, 0) + 1
        self.log.error("KILL SWITCH %s: %s (%s)", reason, detail,
                       "auto-recovers after cool-down" if trip.transient else "restart required")
        return trip

    @property
    def quoting_allowed(self) -> bool:
        return self.trip is None


class ExchangeLimits:
    """Max buy/sell sizes the exchange allows, scaled down as the snapshot ages; zero until known."""

    def __init__(self, fresh_s: float = 120.0, degraded_s: float = 300.0) -> None:
        self.fresh_s = fresh_s
        self.degraded_s = degraded_s
        self.max_buy = 0.0
        self.max_sell = 0.0
        self.updated_at: float | None = None

    @property
    def initialized(self) -> bool:
        return self.updated_at is not None

    def update(self, max_buy: float, max_sell: float, now: float) -> None:
        if not (math.isfinite(max_buy) and math.isfinite(max_sell)):
            return
        self.max_buy = max(0.0, max_buy)
        self.max_sell = max(0.0, max_sell)
        self.updated_at = now

    def update_from_active_asset_data(self, data: dict, now: float) -> bool:
        """activeAssetData: {maxTradeSzs:[buy, sell], availableToTrade:[buy, sell], ...}."""
        try:
            szs = data.get("maxTradeSzs") or data.get("availableToTrade")
            self.update(float(szs[0]), float(szs[1]), now)
            return True
        except (AttributeError, TypeError, ValueError, IndexError):
            return False

    def update_from_clearinghouse(self, state: dict, coin: str, mid: float, leverage: float, now: float) -> bool:
        """Derive buy/sell capacity from free collateral × leverage (plus the position that can be closed)."""
        try:
            withdrawable = float(state.get("withdrawable", 0.0))
            position = 0.0
            for ap in state.get("assetPositions", ()):
                pos = ap.get("position", {})
                if pos.get("coin") == coin:
                    position = float(pos.get("szi", 0.0))
        except (AttributeError, TypeError, ValueError):
            return False
        if mid <= 0:
            return False
        free = max(0.0, withdrawable) * leverage / mid
        self.update(free + max(0.0, -position), free + max(0.0, position), now)
        return True

    def safety_factor(self, now: float) -> float:
        if self.updated_at is None:
            return 0.0
        age = now - self.updated_at
        if age <= self.fresh_s:
            return 1.0
        if age <= self.degraded_s:
            return 0.5
        return 0.0

    def caps(self, now: float) -> tuple[float, float]:
        f = self.safety_factor(now)
        return self.max_buy * f, self.max_sell * f


RATE_LIMIT_MARKERS = ("Too many cumulative requests", "rate limit", "Rate limit", "429")


def is_rate_limit_error(text: str) -> bool:
    return any(m in text for m in RATE_LIMIT_MARKERS)


def startup_cancel_all(
    fetch_open_orders: Callable[[], list],
    cancel_orders: Callable[[list], object],
    *,
    attempts: int = 5,
    interval_s: float = 0.5,
    sleep: Callable[[float], None] = time.sleep,
    logger: logging.Logger | None = None,
) -> tuple[bool, int]:
    """Fetch open orders → bulk cancel → repeat (at most `attempts`, `interval_s` apart) until none remain.

    Returns (clean, attempts_used). Exceptions from the callables count as a failed attempt.
    """
    lg = logger or log
    for attempt in range(1, attempts + 1):
        try:
            orders = fetch_open_orders()
            if not orders:
                return True, attempt
            lg.info("cancel-all: attempt %d cancels %d open orders", attempt, len(orders))
            cancel_orders(orders)
        except Exception as exc:  # noqa: BLE001 - any failure is one failed attempt, retried below
            lg.warning("cancel-all: attempt %d failed: %s", attempt, exc)
        sleep(interval_s)
    for _ in range(attempts):  # the final check is retried too: one 5xx must not leave the outcome unknown
        try:
            return (not fetch_open_orders()), attempts
        except Exception as exc:  # noqa: BLE001
            lg.warning("cancel-all: final open-orders check failed: %s", exc)
            sleep(interval_s)
    return False, attempts
