"""The engine: one thread, one busy loop (architecture.md).

frames -> kernels (Cython pipeline: book -> estimators -> quote -> reconcile) -> signed actions ->
websocket post.  Housekeeping runs between frames on timers: heartbeat, metrics snapshot, risk and
stale-data checks, the scheduleCancel dead-man's switch, exchange-limit and rate-limit refreshes, HJB
validation.  Nothing on the frame path raises: bad input is counted and the loop goes on.
"""

from __future__ import annotations

import gc
import logging
import math
import os
import signal
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

import orjson

from hlfast.book import Book
from hlfast.estimators import CascadeDetector, Drift, FillIntensity, LatencyEwma, Volatility
from hlfast.feed import Poller, WsConnection, ws_url_from_base
from hlfast.frames import (
    CH_ERROR,
    CH_MALFORMED,
    CH_ORDER_UPDATES,
    CH_PONG,
    CH_POST,
    CH_USER,
    CH_USER_FILLS,
    FrameRouter,
)
from hlfast.gateway import Gateway, HttpClient, HttpError, PostReply
from hlfast.histogram import LatencyHistogram
from hlfast.hjb import HjbModel, HjbState, ValueFunction
from hlfast.keys import PrivateKey
from hlfast.metrics import MetricsExporter
from hlfast.orders import REJECT_REASONS, OrderState, OrderStateMachine, PositionAdjustment
from hlfast.pipeline import Pipeline
from hlfast.quoting import Calibration, Quoter, TargetLiquidity
from hlfast.ratelimit import RateLimitTracker
from hlfast.reconcile import ACT_CANCEL, ACT_MODIFY, ExecutionBudget, ImpulseFilter, Reconciler
from hlfast.risk import ExchangeLimits, KillSwitch, RiskLimits, Trip, is_rate_limit_error, startup_cancel_all
from hlfast.signer import Signer
from hlfast.tape import Tape

log = logging.getLogger("hlfast.engine")

MAINNET_URL = "https://api.hyperliquid.xyz"
MAX_ORDERS = 256
MAX_IN_FLIGHT = 80  # of the exchange's 100 in-flight websocket posts
HOUSEKEEPING_S = 0.02  # timers are checked at most this often
RISK_CHECK_S = 0.05
PERIODIC_TIMERS = ("deadman", "rate", "limits", "hjb", "metrics", "status")
RATE_REFRESH_S = 60.0
SHUTDOWN_ACK_WAIT_S = 2.0
FILL_RATE_WINDOW_S = 600.0
STARTUP_ATTEMPTS = 5  # start-up / shutdown HTTP calls: attempts with backoff, then a clear error
STARTUP_BACKOFF_S = (0.2, 0.4, 0.8, 1.6)
FILL_PAGE_ROWS = 2000  # userFillsByTime returns at most this many rows per request
FILL_PAGES_MAX = 10
TRIP_HISTORY = 200
RESYNC_HISTORY = 10_000
# Prometheus `le` bounds for the latency histograms, seconds
LATENCY_BOUNDS_S = (5e-6, 1e-5, 2e-5, 5e-5, 1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 1e-2, 5e-2, 0.1, 0.5, 1.0)
LATENCY_BOUNDS_NS = tuple(int(b * 1e9) for b in LATENCY_BOUNDS_S)


class EngineError(RuntimeError):
    """Start-up could not complete (no meta, unknown coin, venue unreachable)."""


@dataclass
class Summary:
    seconds: float = 0.0
    coin: str = ""
    pnl: float = 0.0
    fees: float = 0.0
    cash: float = 0.0  # USD: -sum(side x px x sz) - fees over this session's fills
    fills: int = 0
    volume: float = 0.0
    position: float = 0.0
    actions: dict = field(default_factory=dict)
    action_items: dict = field(default_factory=dict)
    impulse: dict = field(default_factory=dict)
    ticks: int = 0
    quote_cycles: int = 0
    tick_to_order_us: dict = field(default_factory=dict)
    stage_us: dict = field(default_factory=dict)
    rejects: int = 0
    reconnects: int = 0
    malformed_frames: int = 0
    post_timeouts: int = 0
    resyncs: int = 0
    resync_ms: dict = field(default_factory=dict)  # count, failed, p50, max (milliseconds)
    rejects_by_reason: dict = field(default_factory=dict)  # reason code -> count (orders.REJECT_REASONS)
    kill_switch: str | None = None
    kill_switch_trips: list = field(default_factory=list)  # t (s since start), wall, reason, detail, ...
    duplicate_fills: int = 0  # fill messages ignored because the fill was already counted
    fills_recovered: int = 0  # missed fills fetched from userFillsByTime
    position_adjustments: int = 0  # times the exchange's position was adopted without fills explaining it
    resting_orders_at_exit: int = -1
    exit_reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}

    def text(self) -> str:
        t2o = self.tick_to_order_us
        lines = [
            f"session summary ({self.coin}, {self.seconds:.1f}s, exit: {self.exit_reason})",
            f"  pnl            {self.pnl:+.4f} USD (fees {self.fees:+.4f})",
            f"  fills          {self.fills}   volume {self.volume:,.2f} USD   position {self.position:+.6g}",
            "  actions        " + ", ".join(f"{k} {v}" for k, v in sorted(self.actions.items())),
            "  impulse        " + ", ".join(f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}"
                                             for k, v in self.impulse.items()),
            f"  ticks          {self.ticks}   quote cycles {self.quote_cycles}",
            f"  tick-to-order  p50 {t2o.get('p50', 0):.1f} us   p99 {t2o.get('p99', 0):.1f} us   "
            f"(n={t2o.get('count', 0)})",
            f"  rejects        {self.rejects}"
            + (" (" + ", ".join(f"{k} {v}" for k, v in sorted(self.rejects_by_reason.items())) + ")"
               if self.rejects_by_reason else "")
            + f"   reconnects {self.reconnects}   malformed frames {self.malformed_frames}   post timeouts "
            f"{self.post_timeouts}",
            f"  resyncs        {self.resyncs} (failed {self.resync_ms.get('failed', 0)}, p50 "
            f"{self.resync_ms.get('p50', 0.0):.1f} ms, max {self.resync_ms.get('max', 0.0):.1f} ms)   fills: "
            f"duplicates ignored {self.duplicate_fills}, recovered {self.fills_recovered}, position adjustments "
            f"{self.position_adjustments}",
            f"  kill switch    {self.kill_switch or 'not tripped'}"
            + (f" ({len(self.kill_switch_trips)} trips: "
               + ", ".join(f"{tr['reason']} at {tr['t']:.1f}s" for tr in self.kill_switch_trips[:5])
               + (", ..." if len(self.kill_switch_trips) > 5 else "") + ")" if self.kill_switch_trips else ""),
            f"  resting orders at exit {self.resting_orders_at_exit}",
        ]
        return "\n".join(lines)


def _hist_us(h: LatencyHistogram) -> dict[str, float]:
    return {"p50": h.quantile(0.5) / 1e3, "p99": h.quantile(0.99) / 1e3, "max": h.max_ns / 1e3,
            "count": int(h.count)}


class Engine:
    """One coin, one account, one loop."""

    def __init__(
        self,
        cfg: Any,
        key: PrivateKey,
        *,
        base_url: str | None = None,
        status_stream: TextIO | None = None,
        metrics_port: int | None = None,
        install_signals: bool = False,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.cfg = cfg
        self.coin: str = cfg.market.coin
        self.base_url = (base_url or cfg.exchange.base_url).rstrip("/")
        if not self.base_url:
            raise EngineError("no exchange base_url")
        self.is_mainnet = self.base_url == MAINNET_URL
        self._clock = clock
        vault = cfg.exchange.vault_address or None
        self.signer = Signer(key, is_mainnet=self.is_mainnet, vault_address=vault)
        # info queries take the account (master, vault or sub-account), never the agent's address
        self.user = (vault or cfg.exchange.account_address or key.account_address).lower()
        self.status_stream = status_stream
        self.install_signals = install_signals
        eng = cfg.engine
        self.http = HttpClient(self.base_url, timeout_s=max(2.0, cfg.exchange.post_timeout_s))
        ws_url = ws_url_from_base(self.base_url)
        common = dict(backoff_min_s=eng.reconnect_backoff_min_s, backoff_max_s=eng.reconnect_backoff_max_s,
                      heartbeat_s=eng.heartbeat_s)
        self.md = WsConnection(ws_url, "market", [{"type": "l2Book", "coin": self.coin},
                                                  {"type": "trades", "coin": self.coin}], **common)
        self.oc = WsConnection(ws_url, "orders", [{"type": "orderUpdates", "user": self.user},
                                                  {"type": "userFills", "user": self.user}], **common)
        self.conns = (self.md, self.oc)
        self.poller = Poller(self.conns)
        self.gateway = Gateway(self.oc, self.http, order_path=cfg.exchange.order_path,
                               post_timeout_s=cfg.exchange.post_timeout_s, clock=clock)
        self.rate = RateLimitTracker()
        self.kill = KillSwitch(RiskLimits.from_config(cfg.risk))
        self.exch_limits = ExchangeLimits()
        self.liquidators = frozenset(a.lower() for a in cfg.risk.liquidator_addresses)
        self.metrics_exporter: MetricsExporter | None = None
        self._metrics_port = metrics_port
        # histograms (fixed buckets, no allocation per sample)
        self.h_t2o = LatencyHistogram()
        self.h_decode = LatencyHistogram()
        self.h_sign = LatencyHistogram()
        self.h_rtt = LatencyHistogram()
        # counters
        self.malformed = 0
        self.resyncs = 0
        self.resyncs_failed = 0
        self._resync_ms: deque[float] = deque(maxlen=RESYNC_HISTORY)
        self.trips: deque[dict[str, Any]] = deque(maxlen=TRIP_HISTORY)
        self.fills_recovered = 0
        self.position_checks = 0
        self.adjustment = PositionAdjustment()
        self._fills_complete_ms = 0  # exchange ms up to which every fill is known to be counted
        self._newest_fill_ms = 0
        self._fill_check_at = math.inf
        self._last_fill_gap_events = 0
        self._runaway_verified_at = -math.inf
        self._reject_counts_seen: dict[str, int] = {}
        self.actions_by_type: dict[str, int] = {}
        self.items_by_type: dict[str, int] = {}
        self.rejects_by_reason: dict[str, int] = {}
        self.rejects = 0
        self._last_order_rejects = 0
        self.exit_reason = ""
        self._stop = False
        self._signals = 0
        self._needs_resync = False
        self._resync_pending_conn = False
        self._created_at = clock()
        self._fill_times: deque[float] = deque(maxlen=100_000)
        self._started_at = clock()
        self._session_start_ms = 0
        self._next = {"hk": 0.0, "risk": 0.0, "metrics": 0.0, "status": 0.0, "deadman": 0.0, "rate": 0.0,
                      "limits": 0.0, "hjb": 0.0}
        self._periodic_due = 0.0  # the earliest of PERIODIC_TIMERS
        self.hjb_gap = float("nan")
        self._deadman_failures = 0
        self._frames: list[bytes] = []
        self._retry_info = False
        self.pipeline: Pipeline | None = None
        self.orders: OrderStateMachine | None = None

    # =========================================================================================
    # start-up
    # =========================================================================================
    def _info(self, body: dict) -> Any:
        if self._retry_info:  # start-up: every request retried on its own, a 5xx must not end the start
            return self._retry(f"/info {body.get('type')} at {self.base_url}", lambda: self._info_once(body))
        return self._info_once(body)

    def _info_once(self, body: dict) -> Any:
        self.rate.record("info", 0, self._clock())
        return self.http.info(body)

    def _retry(self, what: str, call: Callable[[], Any], attempts: int = STARTUP_ATTEMPTS) -> Any:
        """Blocking HTTP work outside the loop (start-up, shutdown): retried with backoff on transport
        errors, 5xx and 429; an EngineError naming `what` once the attempts are used up."""
        last: BaseException | None = None
        for attempt in range(1, attempts + 1):
            try:
                return call()
            except HttpError as exc:
                if 400 <= exc.status < 500 and exc.status != 429:
                    raise EngineError(f"{what}: {exc}") from None  # the request itself is wrong: no retry
                last = exc
            except (OSError, ValueError) as exc:
                last = exc
            if attempt < attempts:
                delay = STARTUP_BACKOFF_S[min(attempt - 1, len(STARTUP_BACKOFF_S) - 1)]
                log.warning("%s failed (attempt %d of %d): %s; retrying in %.1fs", what, attempt, attempts, last,
                            delay)
                time.sleep(delay)
        raise EngineError(f"{what} failed after {attempts} attempts: {last}")

    def setup(self) -> None:
        """Meta, kernels, connections, cancel-all, position sync. Blocking; before the loop."""
        meta = self._retry(f"loading meta from {self.base_url}", lambda: self._info({"type": "meta", "dex": ""}))
        self._retry_info = True
        try:
            self._setup_after_meta(meta)
        finally:
            self._retry_info = False

    def _setup_after_meta(self, meta: Any) -> None:
        if not isinstance(meta, dict):
            raise EngineError(f"meta from {self.base_url} is not an object: {str(meta)[:100]}")
        names = [u.get("name") for u in meta.get("universe", [])]
        if self.coin not in names:
            raise EngineError(f"coin {self.coin!r} is not listed by {self.base_url} (has {', '.join(names[:10])})")
        self.asset = names.index(self.coin)
        info = meta["universe"][self.asset]
        self.sz_decimals = int(info["szDecimals"])
        self.px_decimals = 6 - self.sz_decimals
        self.max_leverage = float(info.get("maxLeverage", 50))
        self._build_kernels()
        # order/user stream first, so nothing that happens after cancel-all is missed
        self._session_start_ms = int(time.time() * 1000)
        for conn in (self.oc, self.md):
            for attempt in range(1, STARTUP_ATTEMPTS + 1):
                if conn.connect():
                    break
                if attempt == STARTUP_ATTEMPTS:
                    raise EngineError(f"cannot connect {conn.name} websocket {conn.url} after {attempt} attempts: "
                                      f"{conn.last_error}")
                time.sleep(STARTUP_BACKOFF_S[min(attempt - 1, len(STARTUP_BACKOFF_S) - 1)])
        lim = self.kill.limits
        clean, attempts = startup_cancel_all(self._fetch_open_orders, self._cancel_http,
                                             attempts=lim.cancel_all_attempts,
                                             interval_s=lim.cancel_all_interval_ms / 1000.0)
        if not clean:
            raise EngineError(f"open orders remain after {attempts} cancel-all attempts")
        if self.cfg.engine.dead_man_s > 0:
            self._arm_dead_man_http()
        self._sync_account(initial=True)
        # no order of ours rests now, so every fill the exchange lists is in the start position:
        # registered as known, a later snapshot replay of them is a duplicate, never a new fill
        known = self._info({"type": "userFills", "user": self.user})
        self.orders.mark_known_fills(known if isinstance(known, list) else ())
        if isinstance(known, list):
            self._fills_complete_ms = max((f["time"] for f in known if isinstance(f, dict)
                                           and isinstance(f.get("time"), int)), default=0)
        self._refresh_rate_limit(self._clock())
        self.pipeline.quoting = True
        log.info("engine ready: %s asset=%d szDecimals=%d account=%s position=%+.6g account_value=%.2f",
                 self.coin, self.asset, self.sz_decimals, self.user, self.position0, self.account_value0)

    def _build_kernels(self) -> None:
        cfg = self.cfg
        q, imp, cal = cfg.quoting, cfg.impulse, cfg.calibration
        self.book = Book(self.coin, self.sz_decimals)
        self.tape = Tape(self.sz_decimals, 4096, tuple(sorted(self.liquidators)))
        self.router = FrameRouter(self.book, self.tape, self.coin)
        self.user_router = FrameRouter(None, None, self.coin)  # decode + channel code for user streams
        self.quoter = Quoter(self.sz_decimals, q.levels, min_notional_safety=q.min_notional_safety)
        budget = ExecutionBudget(initial=imp.initial_tokens if imp.enabled else math.inf,
                                 max_tokens=imp.max_tokens, reserve=imp.emergency_reserve,
                                 reward_per_1000=imp.reward_per_1000, reward_floor=imp.reward_floor,
                                 bulk_discount=imp.bulk_discount, enabled=imp.enabled,
                                 refill_per_s=imp.refill_per_s)
        filt = ImpulseFilter(threshold=imp.delta_lambda_threshold,
                             lock_threshold=imp.lock_threshold if imp.enabled else 1.0,
                             lock_override_bps=imp.lock_override_bps, enabled=imp.enabled,
                             min_gain=imp.min_gain)
        self.reconciler = Reconciler(max_orders=MAX_ORDERS, max_levels=q.levels,
                                     match_tolerance_ticks=imp.match_tolerance_ticks,
                                     match_tolerance_bps=imp.match_tolerance_bps,
                                     size_tolerance=imp.size_tolerance, sz_decimals=self.sz_decimals,
                                     horizon=imp.horizon_s, budget=budget, impulse_filter=filt,
                                     reuse_unmatched=imp.reuse_unmatched)
        self.budget = budget
        hjb = cfg.hjb
        # rolling horizon: the inventory penalty accrues over the next hjb.horizon_s (state t = 0)
        self.hjb_model = HjbModel(ValueFunction(phi=hjb.phi, horizon_s=hjb.horizon_s), k_q_bps=hjb.k_q_bps,
                                  k_mu_s=hjb.k_mu_s, k_imb_bps=hjb.k_imb_bps)
        self.calibration = Calibration(target_fills_per_hour=cal.target_fills_per_hour, floor=cal.floor,
                                       lookback_s=cal.lookback_s, enabled=cal.enabled)
        self.pipeline = Pipeline(
            self.book, quoter=self.quoter, reconciler=self.reconciler, tape=self.tape, router=self.router,
            vol=Volatility(prior=q.sigma_prior),
            drift=Drift(shrink=q.drift_shrink),
            fill_intensity=FillIntensity(self.book.unit, kappa0=q.kappa_prior, a0=q.a_prior, blend=q.kappa_blend),
            cascade=CascadeDetector(baseline_half_life=cfg.risk.cascade_baseline_half_life_s,
                                    cooldown_s=cfg.risk.cascade_cooldown_s),
            latency=LatencyEwma(),
            target=TargetLiquidity(max_levels=q.levels, leverage=q.leverage,
                                   min_notional_safety=q.min_notional_safety),
            calibration=self.calibration,
            gamma=q.gamma, sigma_ref=q.sigma_prior, fee_maker=q.fee_maker_bps * 1e-4,
            min_spread=q.min_spread_bps * 1e-4, horizon=q.horizon_s, half_spread_mult=q.half_spread_mult,
            skew_mult=q.skew_mult, glft_mode=q.glft_mode,
            user_cap=q.target_size if q.target_size > 0 else math.inf,
            max_position=cfg.risk.max_position,
        )
        self.orders = OrderStateMachine(MAX_ORDERS, listener=self.reconciler, coin=self.coin,
                                        px_decimals=self.px_decimals, sz_decimals=self.sz_decimals,
                                        displayed_size=self._displayed_excluding_own)
        self.position0 = 0.0
        self.account_value0 = 0.0
        self.mid0 = 0.0

    def _displayed_excluding_own(self, side: int, px_ticks: int,
                                 own_sizes: dict[tuple[int, int], float] | None = None) -> float:
        """Displayed size at a price less our acked orders there: the book shows them once they rest, the
        queue ahead excludes them. own_sizes: _own_sizes(), when many prices are looked up at once."""
        shown = self.book.size_at(side, px_ticks)
        if own_sizes is not None:
            return max(0.0, shown - own_sizes.get((side, px_ticks), 0.0))
        own = 0.0
        for rec in self.orders.live():
            if rec.side == side and rec.px_ticks == px_ticks and rec.acked:
                own += float(rec.remaining)
        return max(0.0, shown - own)

    def _own_sizes(self) -> dict[tuple[int, int], float]:
        """Our acked orders' remaining size at each (side, price in ticks)."""
        sizes: dict[tuple[int, int], float] = {}
        for rec in self.orders.live():
            if rec.acked:
                key = (rec.side, rec.px_ticks)
                sizes[key] = sizes.get(key, 0.0) + float(rec.remaining)
        return sizes

    def _fetch_open_orders(self) -> list[dict]:
        rows = self._info({"type": "openOrders", "user": self.user, "dex": ""})
        return [r for r in rows if r.get("coin") == self.coin]

    def _cancel_http(self, rows: list[dict]) -> None:
        """Cancel these open-order rows by oid over HTTP (start-up / shutdown / resync path)."""
        for i in range(0, len(rows), 200):
            chunk = rows[i:i + 200]
            payload = self.signer.cancel(self.asset, [int(r["oid"]) for r in chunk])
            self.rate.record("cancel", len(chunk), self._clock())
            self._count_action("cancel", len(chunk))
            self.http.exchange(payload)

    def _clearinghouse(self) -> tuple[dict, float]:
        state = self._info({"type": "clearinghouseState", "user": self.user, "dex": ""})
        if not isinstance(state, dict):
            raise ValueError(f"clearinghouseState is not an object: {str(state)[:100]}")
        szi = 0.0
        for ap in state.get("assetPositions", ()):
            pos = ap.get("position", {})
            if pos.get("coin") == self.coin:
                szi = float(pos.get("szi", 0.0))
        return state, szi

    def _sync_account(self, initial: bool = False) -> None:
        """Position and account value from clearinghouseState; exchange limits from it.

        After start-up the local position must match the exchange's: when it does not, the missing
        fills are fetched and counted (see _reconcile_position)."""
        now = self._clock()
        state, szi = self._clearinghouse()
        account_value = float(state.get("marginSummary", {}).get("accountValue", 0.0))
        mid = self._mid_http() if initial or not self.book.n_bids else self.book.mid()
        if initial:
            self.position0 = szi
            self.account_value0 = account_value
            self.mid0 = mid
        else:
            state = self._reconcile_position(state, szi, mid)
        self.orders.clear_suspects()  # the position is now consistent with the exchange's
        lev = min(self.cfg.quoting.leverage, self.max_leverage)
        self.exch_limits.update_from_clearinghouse(state, self.coin, mid, lev, now)
        self._apply_state_to_pipeline(now)

    def _positions_agree(self, exchange: float) -> bool:
        return abs(self.position - exchange) <= 10 ** -self.sz_decimals / 2

    def _reconcile_position(self, state: dict, szi: float, mid: float) -> dict:
        """Make the local position the exchange's, with fills wherever fills can explain the difference.

        1. agree: nothing to do;
        2. fetch the fills since the last known one (userFillsByTime) and count the missing ones through
           the order state machine, which ignores every fill it already has (position, cash and fees
           exact; a later replay of them is a duplicate);
        3. still different: ask for the position again (a fill may have landed between the requests);
        4. only then adopt the exchange's position, remembering the adjustment so that a fill older than
           this check that still arrives later is netted against it instead of counted again.
        Returns the latest clearinghouseState."""
        self.position_checks += 1
        if self._positions_agree(szi):
            self._fills_complete_ms = max(self._fills_complete_ms, self._newest_fill_ms)
            return state
        local_before = self.position
        recovered = self._recover_fills()
        if self._positions_agree(szi):
            log.warning("position check: %d missed fills recovered from userFillsByTime (local %+.6g -> %+.6g, "
                        "exchange %+.6g)", recovered, local_before, self.position, szi)
            self._after_recovered_fills(recovered)
            return state
        state, szi = self._clearinghouse()
        if self._positions_agree(szi):
            if recovered:
                log.warning("position check: %d missed fills recovered from userFillsByTime", recovered)
            self._after_recovered_fills(recovered)
            return state
        as_of_ms = max(int(state.get("time", 0) or 0), int(time.time() * 1000), self._newest_fill_ms)
        delta = round(szi - self.position, 12)
        self.adjustment.adopt(delta, as_of_ms, mid)
        self.position0 += delta
        log.warning("position check: exchange position %+.6g differs from local %+.6g and %d recovered fills do "
                    "not explain it; adopting the exchange's (adjustment %+.6g, netted against older fills that "
                    "arrive later)", szi, self.position - delta, recovered, delta)
        self._after_recovered_fills(recovered)
        return state

    def _recover_fills(self) -> int:
        """Fetch this account's fills since the last one known and count those not seen yet."""
        start = self._fills_complete_ms  # every fill before it is accounted (the position agreed then)
        recovered = 0
        t = self._clock()
        for _ in range(FILL_PAGES_MAX):
            rows = self._info({"type": "userFillsByTime", "user": self.user, "startTime": start})
            if not isinstance(rows, list):
                raise ValueError(f"userFillsByTime is not a list: {str(rows)[:100]}")
            rows = [r for r in rows if isinstance(r, dict)]
            rows.sort(key=lambda r: r.get("time", 0) if isinstance(r.get("time"), int) else 0)
            for fill in rows:
                if self._on_fill(fill, t):
                    recovered += 1
            times = [r["time"] for r in rows if isinstance(r.get("time"), int)]
            if len(rows) < FILL_PAGE_ROWS or not times or max(times) <= start:
                break
            start = max(times)
        self.fills_recovered += recovered
        return recovered

    def _after_recovered_fills(self, n: int) -> None:
        self._fills_complete_ms = max(self._fills_complete_ms, self._newest_fill_ms)
        if n:
            self._apply_state_to_pipeline(self._clock())

    def _mid_http(self) -> float:
        mids = self._info({"type": "allMids", "dex": ""})
        try:
            return float(mids[self.coin])
        except (KeyError, TypeError, ValueError):
            raise EngineError(f"no mid for {self.coin}") from None

    def _refresh_rate_limit(self, now: float) -> None:
        try:
            self.rate.refresh(self._info({"type": "userRateLimit", "user": self.user}))
        except (OSError, HttpError, ValueError, EngineError) as exc:
            log.warning("userRateLimit refresh failed: %s", exc)

    # =========================================================================================
    # accounting views
    # =========================================================================================
    @property
    def position(self) -> float:
        return self.position0 + (self.orders.position if self.orders is not None else 0.0)

    @property
    def ticks(self) -> int:
        """Market-data frames received (l2Book, trades, bbo)."""
        return self.pipeline.md_frames if self.pipeline is not None else 0

    def last_market_data_at(self) -> float:
        """Clock time of the newest market-data frame (the engine's creation before any).

        recv_ns stamps and the engine's clock share one timebase: perf_counter_ns / perf_counter live,
        the simulated clock in backtests and harnesses."""
        last_ns = self.pipeline.last_md_ns if self.pipeline is not None else 0
        return last_ns * 1e-9 if last_ns else self._created_at

    def mark(self) -> float:
        mid = self.book.mid() if self.book.n_bids and self.book.n_asks else float("nan")
        return mid if math.isfinite(mid) else self.mid0

    def pnl(self) -> float:
        """Session PnL marked to mid, after fees (the start position is marked from its start mid)."""
        return self._pnl_at(self.mark())

    def _pnl_at(self, mid: float) -> float:
        o = self.orders
        adj = self.adjustment  # a position adopted without fills is valued from the mark it was adopted at
        return (o.cash + o.position * mid + self.position0 * (mid - self.mid0)
                - (adj.cost - adj.outstanding * self.mid0))

    def equity(self) -> float:
        return self.account_value0 + self.pnl()

    def resting_count(self) -> int:
        return sum(1 for r in self.orders.live() if r.state != OrderState.PENDING_NEW or r.acked)

    def _valuation(self) -> tuple[float, float]:
        """(mark, equity) with the mark taken once."""
        mark = self.mark()
        return mark, self.account_value0 + self._pnl_at(mark)

    def _apply_state_to_pipeline(self, now: float, equity: float | None = None) -> None:
        p = self.pipeline
        p.position = self.position
        p.account_value = max(0.0, self.equity() if equity is None else equity)
        p.exch_cap_bid, p.exch_cap_ask = self.exch_limits.caps(now)
        fill_times = self._fill_times
        while fill_times and fill_times[0] < now - FILL_RATE_WINDOW_S:
            fill_times.popleft()
        p.fill_rate = len(fill_times) / min(FILL_RATE_WINDOW_S, max(1.0, now - self._started_at))

    # =========================================================================================
    # the loop
    # =========================================================================================
    def run(self, seconds: float | None = None) -> Summary:
        """setup() must have run. Loops until `seconds` pass, a stop is requested, or a fatal error."""
        eng = self.cfg.engine
        if self.install_signals:
            self._install_signal_handlers()
        if eng.pin_core >= 0 and hasattr(os, "sched_setaffinity"):
            try:
                os.sched_setaffinity(0, {eng.pin_core})
            except OSError as exc:
                log.warning("cannot pin to core %d: %s", eng.pin_core, exc)
        if eng.gc_mode in ("off", "freeze"):
            gc.collect()
            if eng.gc_mode == "freeze":
                gc.freeze()  # start-up objects leave the collector's view
            gc.disable()
        if self._metrics_port is not None or self.cfg.metrics.enabled:
            self._start_metrics()
        timeout_ms = 0 if eng.read_mode == "busy" else int(eng.poll_timeout_ms)
        self._started_at = self._clock()
        deadline = self._started_at + seconds if seconds else math.inf
        self.exit_reason = "time limit"
        gc_every = 0
        try:
            while not self._stop:
                self._iterate(timeout_ms)
                now = self._clock()
                if now >= deadline:
                    break
                if eng.gc_mode == "off":
                    continue
                gc_every += 1
                if eng.gc_mode == "freeze" and gc_every >= 20000:
                    gc_every = 0
                    gc.collect(0)  # young generation only, between frames
        except KeyboardInterrupt:
            self.exit_reason = "interrupted"
        except Exception as exc:  # noqa: BLE001 - a bug must still end in cancel-all, not a crash
            log.exception("engine loop failed; cancelling everything")
            self.exit_reason = f"error: {type(exc).__name__}"
        finally:
            if eng.gc_mode != "on":
                gc.enable()
        return self.shutdown()

    def step_for(self, seconds: float, until: Callable[[], bool] | None = None) -> bool:
        """Run the loop for up to `seconds` without shutting down; stop early once `until()` is true.

        For tests and tools that need to look at the engine mid-run. Returns whether `until` held."""
        end = self._clock() + seconds
        while self._clock() < end and not self._stop:
            self._iterate(1)
            if until is not None and until():
                return True
        return until is not None and until()

    def _iterate(self, timeout_ms: int) -> None:
        ready = self.poller.poll(timeout_ms)
        if ready:
            frames = self._frames
            for conn in ready:
                conn.read_frames(frames)
                if not frames:
                    continue
                recv_ns = time.perf_counter_ns()
                if conn is self.md:
                    last = len(frames) - 1
                    for i, raw in enumerate(frames):
                        # a burst is applied whole; quotes are computed once, on its last frame
                        self._on_market_frame(raw, recv_ns, i == last)
                else:
                    for raw in frames:
                        self._on_user_frame(raw, recv_ns)
                frames.clear()
        now = self._clock()
        if self.gateway.has_replies:
            self._drain_replies(now)  # HTTP-path replies
        if now >= self._next["hk"]:
            self._housekeeping(now)

    # ---- market data (hot path) ------------------------------------------------------------
    def _on_market_frame(self, raw: bytes, recv_ns: int, run_cycle: bool = True) -> None:
        p = self.pipeline
        n = p.on_frame(raw, recv_ns, run_cycle)  # route + estimators + quote + reconcile, all in C
        if n > 0 or p.channel in (CH_PONG, CH_MALFORMED):
            self._after_market_frame(n, recv_ns)

    def _after_market_frame(self, n: int, recv_ns: int) -> None:
        """What a market frame leaves to Python: its n actions, a pong, a malformed frame.

        (Market-data frames are counted, and their time kept, by the pipeline.)"""
        if n > 0:
            self._send_actions(n, recv_ns)
        ch = self.pipeline.channel
        if ch == CH_PONG:
            self.md.on_pong()
        elif ch == CH_MALFORMED:
            self.malformed += 1

    # ---- actions ---------------------------------------------------------------------------
    def _send_actions(self, n: int, recv_ns: int) -> None:
        """Sign and send the cycle's actions: cancels, then modifies, then places.

        Each payload goes out before its bookkeeping. Replies are only read by the next poll, so the order
        state machine and the reconciler still learn of every sent order before any reply can arrive."""
        rec = self.reconciler
        orders = self.orders
        by_slot = orders.by_slot
        now = self._clock()
        t_sign = time.perf_counter_ns()
        cancel_keys: list[str] = []
        cancel_slots: list[int] = []
        mod_cloids: list[str] = []
        mod_slots: list[int] = []
        mod_sides: list[int] = []
        mod_px: list[int] = []
        mod_sz: list[float] = []
        p_sides: list[int] = []
        p_px: list[int] = []
        p_sz: list[float] = []
        pending_cancel = OrderState.PENDING_CANCEL
        for kind, slot, side, px, sz, _mandatory in rec.actions():  # one C call for the whole list
            if kind == ACT_CANCEL:
                o = by_slot(slot)
                if o is not None and o.cloid is not None and o.state != pending_cancel:
                    cancel_keys.append(o.cloid)
                    cancel_slots.append(slot)
            elif kind == ACT_MODIFY:
                o = by_slot(slot)
                if o is not None and o.cloid is not None:
                    mod_cloids.append(o.cloid)
                    mod_slots.append(slot)
                    mod_sides.append(side)
                    mod_px.append(px)
                    mod_sz.append(sz)
            else:
                p_sides.append(side)
                p_px.append(px)
                p_sz.append(sz)
        first = True
        n_cancel = len(cancel_keys)
        if n_cancel and self.rate.allow("cancel", n_cancel, now):
            payload = self.signer.sign_cancel_by_cloid_fast(self.asset, cancel_keys, n_cancel)
            if payload is not None:
                first = self._post(payload, "cancel", ("cancel", cancel_keys), n_cancel, recv_ns, t_sign, first)
                for i in range(n_cancel):
                    orders.on_cancel_sent(cancel_keys[i], now)
                    rec.order_cancelling(cancel_slots[i])
        if self.gateway.in_flight >= MAX_IN_FLIGHT:
            return  # the exchange allows 100 posts in flight; only cancels may queue beyond this
        n_mod = len(mod_cloids)
        if n_mod and self.rate.allow("modify", n_mod, now):
            payload = self.signer.sign_batch_modify_ticks(self.asset, mod_cloids, mod_sides, mod_px, mod_sz,
                                                          mod_cloids, n_mod, self.px_decimals, self.sz_decimals,
                                                          "Alo")
            if payload is not None:
                first = self._post(payload, "batchModify", ("modify", mod_cloids), n_mod, recv_ns, t_sign, first)
                for i in range(n_mod):
                    px = mod_px[i]
                    sz = mod_sz[i]
                    if orders.on_modify_sent(mod_cloids[i], px, sz, now):
                        rec.order_pending(mod_slots[i], mod_sides[i], px, sz)
        n_place = len(p_sides)
        if n_place and self.rate.allow("order", n_place, now):
            self._send_places(p_sides, p_px, p_sz, n_place, now, recv_ns, t_sign, first)

    def _send_places(self, sides: list[int], pxs: list[int], szs: list[float], n_place: int, now: float,
                     recv_ns: int, t_sign: int, first: bool) -> None:
        """Sign and send new orders under cloids drawn up front, then register them (same slots and cloids,
        in the same order, as registering first)."""
        orders = self.orders
        n_ok = 0
        limit = min(n_place, orders.free_slots)
        while n_ok < limit and orders.accepts_order(sides[n_ok], szs[n_ok]):
            n_ok += 1
        if n_ok:
            cloids = [orders.next_cloid() for _ in range(n_ok)]
            payload = self.signer.sign_bulk_orders_ticks(self.asset, sides, pxs, szs, cloids, n_ok,
                                                         self.px_decimals, self.sz_decimals, "Alo")
            if payload is not None:
                self._post(payload, "order", ("order", cloids), n_ok, recv_ns, t_sign, first)
            for i in range(n_ok):
                orders.new_order(sides[i], pxs[i], szs[i], now, cloid=cloids[i])
            if payload is None:
                orders.on_place_batch_error(cloids, self.signer.last_error, now)
        if n_ok < n_place:
            orders.new_order(sides[n_ok], pxs[n_ok], szs[n_ok], now)  # refused: counts why, as before

    def _post(self, payload: dict, kind: str, context: tuple, n_items: int, recv_ns: int, t_sign: int,
              first: bool) -> bool:
        if first:
            now_ns = time.perf_counter_ns()
            self.h_sign.record(now_ns - t_sign)
            if recv_ns:
                self.h_t2o.record(now_ns - recv_ns)
        self.gateway.send_action(payload, kind, context, n_items)
        self.rate.record("cancel" if kind == "cancel" else "modify" if kind == "batchModify" else
                         "schedule_cancel" if kind == "scheduleCancel" else kind, n_items, self._clock())
        self._count_action(kind, n_items)
        return False

    def _count_action(self, kind: str, n_items: int) -> None:
        self.actions_by_type[kind] = self.actions_by_type.get(kind, 0) + 1
        self.items_by_type[kind] = self.items_by_type.get(kind, 0) + n_items

    def cancel_all_live(self, reason: str) -> int:
        """Cancel every live order now (risk trip / shutdown), paid from the emergency budget."""
        orders, rec = self.orders, self.reconciler
        now = self._clock()
        keys, slots = [], []
        for o in orders.live():
            if o.cloid is None and o.oid is None:
                continue
            keys.append(o.cloid if o.cloid is not None else o.oid)
            slots.append(o.slot)
        if not keys:
            return 0
        self.budget.emergency_spend(len(keys))
        by_cloid = [k for k in keys if isinstance(k, str)]
        by_oid = [k for k in keys if isinstance(k, int)]
        for key, slot in zip(keys, slots, strict=True):
            orders.on_cancel_sent(key, now)
            if slot >= 0:
                rec.order_cancelling(slot)
        for i in range(0, len(by_cloid), 200):
            chunk = by_cloid[i:i + 200]
            payload = self.signer.sign_cancel_by_cloid_fast(self.asset, chunk, len(chunk))
            if payload is not None:
                self._post(payload, "cancel", ("cancel", chunk), len(chunk), 0, 0, False)
        for i in range(0, len(by_oid), 200):
            chunk = by_oid[i:i + 200]
            payload = self.signer.sign_cancel_fast(self.asset, chunk, len(chunk))
            if payload is not None:
                self._post(payload, "cancel", ("cancel", chunk), len(chunk), 0, 0, False)
        log.info("cancel-all (%s): %d orders", reason, len(keys))
        return len(keys)

    # ---- order / user streams ---------------------------------------------------------------
    def _on_user_frame(self, raw: bytes, recv_ns: int) -> None:
        ch = self.user_router.on_frame(raw)
        data = self.user_router.payload
        t = self._clock()
        if ch == CH_POST:
            self.gateway.on_post(data)
            self._drain_replies(t)
            return
        orders = self.orders
        position_before = orders.position
        if ch == CH_ORDER_UPDATES:
            if isinstance(data, list):
                for row in data:
                    orders.on_order_update(row, t)
        elif ch == CH_USER_FILLS:
            if isinstance(data, dict):
                for fill in data.get("fills", ()):
                    self._on_fill(fill, t)
        elif ch == CH_USER:
            if isinstance(data, dict):
                for fill in data.get("fills", ()):
                    self._on_fill(fill, t)
        elif ch == CH_PONG:
            self.oc.on_pong()
            return
        elif ch == CH_MALFORMED:
            self.malformed += 1
            return
        elif ch == CH_ERROR:
            if self.gateway.on_channel_error(str(data)) is None:
                log.warning("websocket error frame: %.200s", data)
            self._drain_replies(t)
            return
        else:
            return
        self._after_order_events(t, orders.position != position_before)

    def _on_fill(self, fill: Any, t: float) -> bool:
        """One fill from any source (stream, subscription snapshot, userFillsByTime); True if new.

        Fills from before the session were registered at start-up, so a snapshot's replay of them,
        like any other copy of a fill already counted, is ignored as a duplicate."""
        if not isinstance(fill, dict):
            self.malformed += 1
            return False
        if not self.orders.on_fill(fill, t):
            return False
        try:
            px, sz = float(fill["px"]), float(fill["sz"])
            notional = px * sz
            when = int(fill.get("time", 0))
        except (KeyError, TypeError, ValueError):
            notional, sz, when = 0.0, 0.0, 0
        if when > self._newest_fill_ms:
            self._newest_fill_ms = when
        if self.adjustment.outstanding:
            signed = sz if fill.get("side") == "B" else -sz
            taken = self.adjustment.net(signed, when)
            if taken:  # this fill is part of a position already adopted from the exchange
                self.position0 = round(self.position0 - taken, 12)
                log.info("fill tid=%s (%+.6g) was already in the adopted position; netted", fill.get("tid"),
                         signed)
        self.budget.on_fill(notional)
        self.calibration.on_fill(t)
        self.rate.on_volume(notional)
        self._fill_times.append(t)
        return True

    def _after_order_events(self, t: float, position_changed: bool) -> None:
        orders = self.orders
        if orders.rejects != self._last_order_rejects:
            new = orders.rejects - self._last_order_rejects
            self._last_order_rejects = orders.rejects
            self.rejects += new
            self.kill.on_reject(t, new)
            # reason codes (a fixed set) from the state machine; the texts are logged there once per code
            self.rejects_by_reason = dict(orders.rejects_by_reason)
            rate_limited = self.rejects_by_reason.get("rate_limit", 0)
            if rate_limited != self._reject_counts_seen.get("rate_limit", 0):
                self._reject_counts_seen["rate_limit"] = rate_limited
                self.kill.on_rate_limit_error(t)
        if orders.fill_gap_events != self._last_fill_gap_events:
            # the exchange says more was filled than the fills received: check soon, unless they arrive
            self._last_fill_gap_events = orders.fill_gap_events
            if self._fill_check_at == math.inf:
                self._fill_check_at = t + self.cfg.engine.fill_check_delay_s
        stale = orders.drain_cancels()
        if stale:
            self._cancel_keys([c if c is not None else o for o, c in stale])
        if position_changed:
            self._apply_state_to_pipeline(t)
            self._check_risk(t)
            if self.pipeline.quoting:
                n = self.pipeline.cycle(self._clock())
                if n > 0:
                    self._send_actions(n, 0)

    def _cancel_keys(self, keys: list) -> None:
        by_cloid = [k for k in keys if isinstance(k, str)]
        by_oid = [k for k in keys if isinstance(k, int)]
        now = self._clock()
        for k in keys:
            self.orders.on_cancel_sent(k, now)
        if by_cloid:
            payload = self.signer.sign_cancel_by_cloid_fast(self.asset, by_cloid[:200], len(by_cloid[:200]))
            if payload is not None:
                self._post(payload, "cancel", ("cancel", by_cloid[:200]), len(by_cloid[:200]), 0, 0, False)
        if by_oid:
            payload = self.signer.sign_cancel_fast(self.asset, by_oid[:200], len(by_oid[:200]))
            if payload is not None:
                self._post(payload, "cancel", ("cancel", by_oid[:200]), len(by_oid[:200]), 0, 0, False)

    def _drain_replies(self, t: float) -> None:
        for reply in self.gateway.drain():
            self._on_reply(reply, t)

    def _on_reply(self, reply: PostReply, t: float) -> None:
        self.h_rtt.record(int(reply.rtt_ms * 1e6))
        if reply.rtt_ms > 0:
            self.pipeline.latency.update(t, reply.rtt_ms)
        ctx = reply.context
        body = reply.body if reply.ok else {"status": "err", "response": reply.error}
        if reply.error and is_rate_limit_error(reply.error):
            self.rate.on_rate_limited(t)
            self.kill.on_rate_limit_error(t)
        elif reply.ok:
            self.rate.on_action_ok(t)
        if not reply.ok and reply.error:
            log.warning("%s action failed: %.200s", reply.kind, reply.error)
        position_before = self.orders.position
        if isinstance(ctx, tuple):
            what, keys = ctx
            if what == "order":
                self.orders.on_order_response(keys, body, t)
            elif what == "cancel":
                self.orders.on_cancel_response(keys, body, t)
            elif what == "modify":
                self.orders.on_modify_response(keys, body, t)
        elif ctx == "deadman":
            if not reply.ok:
                self._deadman_failures += 1
                if self._deadman_failures == 1:
                    log.warning("scheduleCancel refused: %.200s", reply.error)
            else:
                self._deadman_failures = 0
        if reply.body is None and not reply.ok and isinstance(ctx, tuple):
            self._needs_resync = True  # transport failure: the action's fate is unknown
        self._after_order_events(t, self.orders.position != position_before)

    # ---- risk ------------------------------------------------------------------------------
    def _check_risk(self, now: float, valuation: tuple[float, float] | None = None) -> Trip | None:
        """Step the kill switch; `valuation` is (mark, equity) when the caller has just computed it."""
        p = self.pipeline
        lim = self.kill.limits
        position = self.position
        if (lim.max_position > 0 and abs(position) > lim.runaway_mult * lim.max_position
                and (self.kill.trip is None or self.kill.trip.transient)
                and now - self._runaway_verified_at >= self.cfg.engine.runaway_verify_s):
            # a runaway is judged on a position the exchange confirms: a lost or replayed fill must not
            # stop the engine for good (the check recovers missing fills or adopts the exchange's)
            self._runaway_verified_at = now
            valuation = None  # the account sync below may change the position
            held, p.hold = p.hold, True
            try:
                self._sync_account()
            except (OSError, HttpError, ValueError, EngineError) as exc:
                log.warning("runaway check: exchange position unavailable (%s); judging the local one", exc)
            finally:
                p.hold = held
            position = self.position
        mark, equity = self._valuation() if valuation is None else valuation
        trip = self.kill.step(now, position=position, mid=mark, equity=equity,
                              last_market_data_at=self.last_market_data_at(), cascade_pull=bool(p.cascade.pull))
        if trip is not None:
            self._on_trip(trip)
        quoting = self.kill.quoting_allowed and not self._stop
        if quoting and not p.quoting:
            log.info("quoting resumes")
        p.quoting = quoting
        return trip

    def _on_trip(self, trip: Trip) -> None:
        self.pipeline.quoting = False
        live = len(self.orders.live()) if self.orders is not None else 0
        cancelled = self.cancel_all_live(f"kill switch {trip.reason}")
        self.trips.append({"t": round(trip.at - self._started_at, 3), "wall": round(time.time(), 3),
                           "reason": trip.reason, "detail": trip.detail, "transient": trip.transient,
                           "live_orders": live, "cancels_sent": cancelled,
                           "position": self.position if self.orders is not None else 0.0})

    def trip_kill_switch(self, reason: str = "manual", detail: str = "requested") -> None:
        """Trip the kill switch from outside the loop's checks (operator / tests)."""
        self._on_trip(self.kill.force(reason, detail, self._clock()))

    # ---- housekeeping ----------------------------------------------------------------------
    def _housekeeping(self, now: float) -> None:
        nxt = self._next
        nxt["hk"] = now + HOUSEKEEPING_S
        for conn in self.conns:
            if conn.connected:
                conn.heartbeat(now)
                conn.flush()
            elif conn.due_for_reconnect(now):
                self._reconnect(conn)
        lost = self.gateway.expire(now)
        if lost:
            log.warning("%d posts got no reply within %.1fs; resync", len(lost), self.gateway.post_timeout_s)
            self._needs_resync = True
        if self._needs_resync and self.oc.connected and self.md.connected:
            self._resync(now)
        if now >= self._fill_check_at:
            self._fill_check(now)
        if now >= nxt["risk"]:
            nxt["risk"] = now + RISK_CHECK_S
            valuation = self._valuation()  # one mark/pnl/equity per pass
            self._apply_state_to_pipeline(now, valuation[1])
            self._check_risk(now, valuation)
        if now >= self._periodic_due:
            self._periodic(now)

    def _periodic(self, now: float) -> None:
        """Timers seconds apart (dead-man's switch, rate-limit and account refresh, HJB validation, metrics,
        status line): the housekeeping pass looks at the earliest only. A disabled timer is looked at again
        a second later (its switch may be turned on meanwhile)."""
        nxt = self._next
        eng = self.cfg.engine
        if now >= nxt["deadman"]:
            if eng.dead_man_s > 0 and self._deadman_failures < 3:
                if nxt["deadman"] > 0:  # the first arming happened at start-up
                    self._arm_dead_man()
                nxt["deadman"] = now + max(1.0, eng.dead_man_s / 3.0)
            else:
                nxt["deadman"] = now + 1.0
        if now >= nxt["rate"]:
            nxt["rate"] = now + RATE_REFRESH_S
            if nxt["rate"] > RATE_REFRESH_S + 1:  # not on the first pass (setup just refreshed)
                self._refresh_rate_limit(now)
        if now >= nxt["limits"]:
            nxt["limits"] = now + eng.account_sync_s
            if now - self._started_at > 1.0:
                try:
                    self._sync_account()
                except (OSError, HttpError, ValueError, EngineError) as exc:
                    log.warning("account refresh failed: %s", exc)
        if now >= nxt["hjb"]:
            nxt["hjb"] = now + (eng.hjb_validate_s if eng.hjb_validate_s > 0 else 1.0)
            if eng.hjb_validate_s > 0:
                self._validate_hjb()
        if now >= nxt["metrics"]:
            nxt["metrics"] = now + (self.cfg.metrics.snapshot_interval_s if self.metrics_exporter is not None else 1.0)
            if self.metrics_exporter is not None:
                self.metrics_exporter.publish(self.snapshot(), self.debug_orders())
        if now >= nxt["status"]:
            shown = self.status_stream is not None and eng.status_interval_s > 0
            nxt["status"] = now + (eng.status_interval_s if shown else 1.0)
            if shown:
                self.status_stream.write("\r" + self.status_line() + "\x1b[K")
                self.status_stream.flush()
        self._periodic_due = min(nxt[k] for k in PERIODIC_TIMERS)

    def _fill_check(self, now: float) -> None:
        """A fill looked missing a moment ago: if it still does, check the position against the exchange."""
        self._fill_check_at = math.inf
        if not self.orders.fills_possibly_missing():
            return
        try:
            self._sync_account()
        except (OSError, HttpError, ValueError, EngineError) as exc:
            log.warning("position check failed (%s); retrying", exc)
            self._fill_check_at = now + self.cfg.engine.fill_check_delay_s
            return
        self._after_order_events(now, True)

    def _arm_dead_man(self) -> None:
        when = int(time.time() * 1000 + self.cfg.engine.dead_man_s * 1000)
        if self.cfg.engine.dead_man_s < 5.0:
            when = int(time.time() * 1000 + 5000)  # the exchange minimum
        payload = self.signer.schedule_cancel(when)
        self._count_action("scheduleCancel", 1)
        self.rate.record("schedule_cancel", 1, self._clock())
        self.gateway.send_action(payload, "scheduleCancel", "deadman", 1)

    def _arm_dead_man_http(self) -> None:
        """Arm the dead-man's switch before the first quote (blocking, start-up only)."""
        when = int(time.time() * 1000 + max(5.0, self.cfg.engine.dead_man_s) * 1000)
        self._count_action("scheduleCancel", 1)
        self.rate.record("schedule_cancel", 1, self._clock())
        try:
            reply = self.http.exchange(self.signer.schedule_cancel(when))
        except (OSError, HttpError, ValueError) as exc:
            log.warning("scheduleCancel at start-up failed: %s", exc)
            return
        if isinstance(reply, dict) and reply.get("status") != "ok":
            self._deadman_failures += 1
            log.warning("scheduleCancel refused: %.200s", reply.get("response"))

    def _validate_hjb(self) -> None:
        """Background check: the heuristic's objective gap to the continuous HJB optimum (bp/s)."""
        if not (self.book.n_bids and self.book.n_asks):
            return
        p = self.pipeline
        unit = max(p.target.min_size, 10 ** -self.sz_decimals)
        q_max = max(self.cfg.risk.max_position / unit, 1.0)
        base_bps = (self.quoter.delta_bid + self.quoter.delta_ask) * 1e4
        state = HjbState(q=self.position / unit, q_max=q_max, drift_bps_s=p.drift.mu * 1e4,
                         market_spread_bps=max(self.book.spread_bps(), 0.01), imbalance=self.book.imbalance(),
                         base_spread_bps=base_bps if base_bps > 0 else 4.0,
                         fee_taker_bps=self.cfg.quoting.fee_taker_bps)
        try:
            self.hjb_gap = float(self.hjb_model.heuristic_gap(state)[0])
        except (ValueError, ArithmeticError) as exc:
            log.debug("hjb validation skipped: %s", exc)

    # ---- reconnect and resync ---------------------------------------------------------------
    def _reconnect(self, conn: WsConnection) -> None:
        if conn is self.oc:
            for _ in self.gateway.fail_all_pending():
                pass
        ok = conn.connect()
        if ok:
            log.info("%s websocket reconnected (%d reconnects)", conn.name, conn.reconnects)
            self._needs_resync = True
        else:
            log.warning("%s websocket reconnect failed: %s; next try in %.2fs", conn.name, conn.last_error,
                        conn.next_attempt_at - self._clock())

    def _resync(self, now: float) -> None:
        """Open orders and position from /info: adopt-and-cancel unknown orders, drop vanished ones."""
        self._needs_resync = False
        self.resyncs += 1
        p = self.pipeline
        p.hold = True
        t0 = time.perf_counter()
        try:
            t_request = self._clock()
            rows = self._fetch_open_orders()
            to_cancel = self.orders.on_open_orders(rows, self._clock(), t_request)
            if to_cancel:
                log.info("resync: cancelling %d unknown/outlived orders", len(to_cancel))
                self._cancel_keys([c if c is not None else o for o, c in to_cancel])
            self._sync_account()
        except (OSError, HttpError, ValueError, EngineError) as exc:
            log.warning("resync failed (%s); retrying", exc)
            self._needs_resync = True
            self.resyncs_failed += 1
        finally:
            p.hold = False
            if not self._needs_resync:
                self._resync_ms.append((time.perf_counter() - t0) * 1e3)

    # ---- shutdown ---------------------------------------------------------------------------
    def request_stop(self, reason: str = "stop requested") -> None:
        self.exit_reason = reason
        self._stop = True
        if self.pipeline is not None:
            self.pipeline.quoting = False

    def _install_signal_handlers(self) -> None:
        def handler(signum: int, frame: object) -> None:
            self._signals += 1
            if self._signals > 1:
                os._exit(1)  # second signal: leave at once
            self.request_stop(signal.Signals(signum).name)

        signal.signal(signal.SIGINT, handler)
        signal.signal(signal.SIGTERM, handler)

    def shutdown(self) -> Summary:
        """Stop quoting, cancel all, wait for acks (bounded), verify over HTTP, summarise."""
        self._stop = True  # the loop's risk checks must not turn quoting back on while acks are awaited
        if self.pipeline is not None:
            self.pipeline.quoting = False
            self.pipeline.hold = True
        if not self.exit_reason:
            self.exit_reason = "stopped"
        if self.orders is not None:
            try:
                self.cancel_all_live("shutdown")
                end = self._clock() + SHUTDOWN_ACK_WAIT_S
                while self._clock() < end and (self.gateway.in_flight or any(
                        o.state == OrderState.PENDING_CANCEL for o in self.orders.live())):
                    self._iterate(1)
                lim = self.kill.limits
                clean, _ = startup_cancel_all(self._fetch_open_orders, self._cancel_http,
                                              attempts=lim.cancel_all_attempts,
                                              interval_s=lim.cancel_all_interval_ms / 1000.0)
                if not clean:
                    log.error("shutdown: open orders remain on the exchange")
                if self.cfg.engine.dead_man_s > 0:
                    try:
                        self.http.exchange(self.signer.schedule_cancel(None))
                    except (OSError, HttpError, ValueError):
                        pass
            except (OSError, HttpError, ValueError) as exc:
                log.error("shutdown cancel-all failed: %s", exc)
            if self.pipeline is not None and self.pipeline.cycles:
                # nothing rests now: a fill whose message was lost in the last moments is fetched here,
                # so the summary's position, cash and fees are the exchange's
                try:
                    self._retry("final position check", self._sync_account)
                except EngineError as exc:
                    log.warning("%s", exc)
        summary = self.summary()
        try:
            summary.resting_orders_at_exit = (len(self._retry("open orders at exit", self._fetch_open_orders))
                                              if self.orders is not None else 0)
        except EngineError as exc:
            log.warning("open orders at exit unknown: %s", exc)
            summary.resting_orders_at_exit = -1
        for conn in self.conns:
            conn.close()
        self.http.close()
        if self.metrics_exporter is not None:
            self.metrics_exporter.publish(self.snapshot(), self.debug_orders())
            self.metrics_exporter.stop()
        if self.status_stream is not None and self.cfg.engine.status_interval_s > 0:
            self.status_stream.write("\n")
            self.status_stream.flush()
        return summary

    # ---- reporting --------------------------------------------------------------------------
    def _start_metrics(self) -> None:
        m = self.cfg.metrics
        port = self._metrics_port if self._metrics_port is not None else m.port
        exporter = MetricsExporter(m.host, port)
        try:
            exporter.start()
        except OSError as exc:
            log.warning("metrics exporter not started on %s:%d: %s", m.host, port, exc)
            return
        self.metrics_exporter = exporter
        log.info("metrics on http://%s:%d/metrics", m.host, exporter.port)

    def impulse_counters(self) -> dict[str, Any]:
        rec, b = self.reconciler, self.budget
        return {"filter_skipped": rec.filter_skipped, "locked": rec.locked, "budget_skipped": rec.budget_skipped,
                "kept": rec.kept, "placed": rec.placed, "modified": rec.modified, "cancelled": rec.cancelled,
                "reused": rec.reused, "budget_available": round(b.available, 3),
                "budget_utilization": round(b.utilization, 4)}

    def summary(self) -> Summary:
        o = self.orders
        kill = self.kill.trip
        return Summary(
            seconds=self._clock() - self._started_at, coin=self.coin,
            pnl=self.pnl() if o is not None else 0.0, fees=o.fees if o is not None else 0.0,
            cash=o.cash if o is not None else 0.0,
            fills=o.fills if o is not None else 0, volume=o.volume if o is not None else 0.0,
            position=self.position if o is not None else 0.0,
            actions=dict(self.actions_by_type), action_items=dict(self.items_by_type),
            impulse=self.impulse_counters() if o is not None else {},
            ticks=self.ticks, quote_cycles=self.pipeline.cycles if self.pipeline is not None else 0,
            tick_to_order_us=_hist_us(self.h_t2o),
            stage_us={"decode": _hist_us(self.pipeline.hist_decode) if self.pipeline is not None else {},
                      "quote": _hist_us(self.pipeline.hist_quote) if self.pipeline is not None else {},
                      "sign": _hist_us(self.h_sign), "post_rtt": _hist_us(self.h_rtt)},
            rejects=self.rejects, reconnects=sum(c.reconnects for c in self.conns),
            malformed_frames=self.malformed, post_timeouts=self.gateway.stats.timeouts, resyncs=self.resyncs,
            resync_ms=self.resync_figures(), rejects_by_reason=dict(self.rejects_by_reason),
            kill_switch=f"{kill.reason}: {kill.detail}" if kill is not None else None,
            kill_switch_trips=list(self.trips),
            duplicate_fills=o.duplicate_fills if o is not None else 0, fills_recovered=self.fills_recovered,
            position_adjustments=self.adjustment.adoptions,
            exit_reason=self.exit_reason,
        )

    def resync_figures(self) -> dict[str, float]:
        """Resyncs: how many, how many failed, and the duration of the successful ones (ms)."""
        durations = sorted(self._resync_ms)
        n = len(durations)
        return {"count": self.resyncs, "failed": self.resyncs_failed,
                "p50": round(durations[n // 2], 3) if n else 0.0, "max": round(durations[-1], 3) if n else 0.0}

    def debug_orders(self) -> dict[str, Any]:
        """The orders this engine tracks (for /debug/orders): ids, states, prices; nothing secret."""
        live = self.orders.live() if self.orders is not None else []
        rows = [{"cloid": o.cloid, "oid": o.oid, "old_oids": list(o.old_oids), "side": o.side,
                 "px_ticks": o.px_ticks, "sz": str(o.sz), "remaining": str(o.remaining), "state": o.state.name,
                 "acked": o.acked, "adopted": o.adopted} for o in live]
        return {"t": time.time(), "coin": self.coin, "account": self.user,
                "quoting": bool(self.pipeline.quoting) if self.pipeline is not None else False,
                "cloids": [r["cloid"] for r in rows if r["cloid"]],
                "oids": [r["oid"] for r in rows if r["oid"] is not None], "orders": rows}

    def status_line(self) -> str:
        o = self.orders
        t2o = self.h_t2o
        state = "QUOTING" if self.pipeline.quoting else (f"HALT {self.kill.trip.reason}" if self.kill.trip
                                                         else "idle")
        return (f"t={self._clock() - self._started_at:6.1f}s mid={self.mark():.6g} pos={self.position:+.5g} "
                f"pnl={self.pnl():+.3f} fills={o.fills} rest={self.resting_count()} "
                f"act={sum(self.actions_by_type.values())} t2o p50={t2o.quantile(0.5) / 1e3:.0f}us "
                f"p99={t2o.quantile(0.99) / 1e3:.0f}us rej={self.rejects} "
                f"reconn={sum(c.reconnects for c in self.conns)} {state}")

    def snapshot(self) -> dict[str, Any]:
        """Plain values for the metrics exporter (built a few times a second, never per tick)."""
        now = self._clock()
        p, rec, b, cal = self.pipeline, self.reconciler, self.budget, self.calibration
        mid = self.mark()
        rate = self.rate
        cap_buy, cap_sell = self.exch_limits.caps(now)
        snap: dict[str, Any] = {
            "mm_position": self.position, "mm_position_value_usd": abs(self.position) * mid,
            "mm_pnl_usd": self.pnl(), "mm_fees_usd": self.orders.fees, "mm_volume_usd": self.orders.volume,
            "mm_fills": self.orders.fills, "mm_orders_resting": self.resting_count(), "mm_mid": mid,
            "mm_spread_bps": self.book.spread_bps() if self.book.n_bids and self.book.n_asks else 0.0,
            "mm_ticks": self.ticks, "mm_quote_cycles": p.cycles, "mm_rejects": self.rejects,
            "mm_ws_reconnects": sum(c.reconnects for c in self.conns), "mm_malformed_frames": self.malformed,
            "mm_post_timeouts": self.gateway.stats.timeouts, "mm_post_rtt_ms": p.latency.value_ms,
            "mm_kill_switch_active": 0 if self.kill.quoting_allowed else 1, "mm_quoting": int(p.quoting),
            "mm_rate_budget_remaining": rate.address_remaining, "mm_rate_budget_cap": rate.address_cap,
            "mm_rate_ip_headroom": 1.0 - rate.ip_weight_minute(now) / max(1, rate.ip_limit),
            "mm_rate_cancels_only": int(not rate.allow("order", 1, now)),
            "mm_impulse_budget_available": b.available, "mm_impulse_budget_utilization": b.utilization,
            "mm_impulse_filter_blocked": rec.filter_skipped, "mm_impulse_queue_locked": rec.locked,
            "mm_impulse_budget_skipped": rec.budget_skipped,
            "mm_calibration_gamma_mult": cal.multiplier(p.last_t),
            "mm_calibration_progress": cal.progress, "mm_calibration_fill_count": cal.fill_count,
            "mm_calibration_complete": int(cal.progress >= 0.95),
            "mm_exchange_limit_max_buy": cap_buy, "mm_exchange_limit_max_sell": cap_sell,
            "mm_exchange_limit_age_seconds": (now - self.exch_limits.updated_at
                                              if self.exch_limits.updated_at is not None else -1.0),
            "mm_exchange_limit_safety_factor": self.exch_limits.safety_factor(now),
            "mm_sigma": p.vol.sigma_eff, "mm_gamma_effective": p.gamma_eff,
            "mm_actions": dict(self.actions_by_type), "mm_action_items": dict(self.items_by_type),
            "mm_kill_switch_trips": {k: v for k, v in self.kill.trips_by_reason.items() if v},
            "mm_rejects_by_reason": {code: self.rejects_by_reason.get(code, 0) for code in REJECT_REASONS},
            "mm_resyncs": self.resyncs, "mm_resyncs_failed": self.resyncs_failed,
            "mm_duplicate_fills": self.orders.duplicate_fills, "mm_fills_recovered": self.fills_recovered,
            "mm_position_adjustments": self.adjustment.adoptions,
        }
        if math.isfinite(self.hjb_gap):
            snap["mm_hjb_heuristic_gap"] = self.hjb_gap
        for name, h in (("mm_tick_to_order_seconds", self.h_t2o), ("mm_stage_decode_seconds", self.h_decode),
                        ("mm_stage_quote_seconds", p.hist_quote), ("mm_stage_sign_seconds", self.h_sign),
                        ("mm_post_rtt_seconds", self.h_rtt)):
            snap[name] = (LATENCY_BOUNDS_S, h.cumulative(LATENCY_BOUNDS_NS), h.count, h.sum_ns / 1e9)
        return snap


def configure_logging(level: str = "INFO", json_lines: bool = False, stream: TextIO | None = None) -> None:
    """One line per record; `json_lines` writes one JSON object per line."""
    handler = logging.StreamHandler(stream or sys.stderr)
    if json_lines:
        class JsonFormatter(logging.Formatter):
            def format(self, record: logging.LogRecord) -> str:
                return orjson.dumps({"ts": round(record.created, 6), "level": record.levelname,
                                     "logger": record.name, "msg": record.getMessage()}).decode()

        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.addHandler(handler)
    root.setLevel(level)
