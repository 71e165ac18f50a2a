"""The local Hyperliquid-compatible venue: POST /info, POST /exchange and websocket /ws on one host:port.

`Venue` holds the protocol logic (no sockets): info queries, signed actions, market blocks. `VenueServer` wraps
it in an aiohttp application, runs the block clock and publishes frames. Each frame is serialised once with
orjson and the same bytes go to every subscriber; each connection has its own writer task, so a slow
client never blocks the block clock or another client.

Times: user-facing timestamps (orders, fills, nonces, scheduleCancel, expiresAfter) are the wall clock in ms;
market frames carry the source's block time.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import WSMsgType, web

from hlfast.venue.auth import Registry
from hlfast.venue.faults import FaultInjector, FaultSpec, parse_fault_spec
from hlfast.venue.ledger import Fees, Ledger, format_scaled, format_usd
from hlfast.venue.matching import ASK, BID, MatchingEngine

log = logging.getLogger("hlfast.venue")

MAX_BATCH = 200
BAD_BODY_TEXT = "Failed to deserialize the JSON body into the target type"
RECENT_TRADES_KEPT = 100
MAX_ROWS = 2_000
OUTBOX_LIMIT = 50_000
SCHEDULE_CANCEL_MIN_AHEAD_MS = 5_000
SCHEDULE_CANCEL_PER_DAY = 10
INFO_WEIGHT_2 = {"l2Book", "allMids", "clearinghouseState", "orderStatus", "spotClearinghouseState", "exchangeStatus"}
USER_CHANNELS = {"orderUpdates", "userFills", "userEvents"}


def now_ms() -> int:
    return int(time.time() * 1000)


def _echo(obj: Any) -> str:
    """A request echoed in an error text (orjson refuses nesting deeper than 254, which the parser accepts)."""
    try:
        return orjson.dumps(obj).decode()
    except TypeError:
        return "<nested too deeply>"


def _err(text: str) -> dict[str, Any]:
    return {"status": "err", "response": text}


def _ok(kind: str, statuses: list[Any] | None = None) -> dict[str, Any]:
    if statuses is None:
        return {"status": "ok", "response": {"type": kind}}
    return {"status": "ok", "response": {"type": kind, "data": {"statuses": statuses}}}


class BadRequest(Exception):
    """An /info or /exchange body that does not deserialise (HTTP 422, plain text)."""


@dataclass
class VenueConfig:
    coins: tuple[str, ...] = ("BTC",)
    accounts: list[tuple[str, float]] = field(default_factory=list)
    auto_fund: bool = False
    source: str = "synthetic"
    seed: int = 1
    block_ms: int = 500
    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    faults: str | FaultSpec | None = None
    fees: Fees = field(default_factory=Fees)
    queue_model: str = "risk_averse"
    signing_source: str = "b"
    request_budget_base: int = 10_000
    ip_weight_per_min: int = 0  # 0 = no IP weight limit
    start_ms: int | None = None  # first synthetic block time; None = wall clock
    stamp_frames: bool = False  # record market-frame send / action receipt times (perf/loopback.py)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _valid_aggregation(n_sig: Any, mantissa: Any) -> bool:
    """nSigFigs in {2..5} or null; mantissa in {1, 2, 5} or null, and only with nSigFigs 5."""
    if n_sig is not None and not (_is_int(n_sig) and 2 <= n_sig <= 5):
        return False
    if mantissa is not None and not (_is_int(mantissa) and mantissa in (1, 2, 5) and n_sig == 5):
        return False
    return True


def _aggregate(levels: list[tuple[int, int, int]], px_decimals: int, n_sig: int | None, mantissa: int | None,
               is_bid: bool) -> list[tuple[int, int, int]]:
    """Bucket levels to n_sig significant figures (× mantissa), bids floored and asks ceiled."""
    if not n_sig:
        return levels
    out: dict[int, list[int]] = {}
    for px, lots, n in levels:
        step = 10 ** max(len(str(px)) - n_sig, 0)
        if mantissa and n_sig == 5:
            step *= mantissa
        bucket = (px // step) * step if is_bid else -(-px // step) * step
        cell = out.setdefault(bucket, [0, 0])
        cell[0] += lots
        cell[1] += n
    prices = sorted(out, reverse=is_bid)
    return [(px, out[px][0], out[px][1]) for px in prices]


class Venue:
    """Protocol logic: accounts, matching, info views and action handling, independent of sockets."""

    def __init__(self, config: VenueConfig, source: Any) -> None:
        self.config = config
        self.source = source
        self.specs = list(source.coins)
        self.spec_by_name = {s.name: s for s in self.specs}
        self.registry = Registry(auto_fund=config.auto_fund, source=config.signing_source)
        for address, usdc in config.accounts:
            self.registry.add_account(address, usdc)
        self.ledger = Ledger(self.spec_by_name, config.fees, self.registry.deposits, config.request_budget_base)
        try:
            from hlfast.venue.market import LIQUIDATOR_ADDRESS
        except ImportError:  # pragma: no cover - the market module ships with the venue
            LIQUIDATOR_ADDRESS = "0x" + "00" * 20
        self.engine = MatchingEngine(self.specs, self.ledger, config.queue_model, LIQUIDATOR_ADDRESS)
        spec = config.faults
        self.faults = FaultInjector(spec if isinstance(spec, FaultSpec) else parse_fault_spec(spec), config.seed)
        self.recent_trades: dict[str, deque[dict[str, Any]]] = {
            s.name: deque(maxlen=RECENT_TRADES_KEPT) for s in self.specs
        }
        self.pending_trades: dict[str, list[dict[str, Any]]] = {}
        self.block_time_ms = 0
        self.blocks = 0
        self.actions = 0
        self.source_ended = False
        self.scheduled: set[str] = set()
        # (what, perf_counter_ns) when config.stamp_frames: "l2Book"/"trades" sent, or an action type received
        self.stamps: list[tuple[str, int]] = []
        self.day_volume: dict[str, float] = {s.name: 0.0 for s in self.specs}
        self._meta = {
            "universe": [
                {"name": s.name, "szDecimals": s.sz_decimals, "maxLeverage": int(s.max_leverage)} for s in self.specs
            ],
            "marginTables": [],
        }

    # ---- market ------------------------------------------------------------------------------------------

    def step_block(self) -> Any:
        """Pull and apply the next market block; returns it, or None when the source has ended."""
        if self.source_ended:
            return None
        block = self.source.next_block()
        if block is None:
            self.source_ended = True
            log.info("market source ended after %d blocks", self.blocks)
            return None
        self.blocks += 1
        self.block_time_ms = block.time_ms
        wall = now_ms()
        self.engine.on_block(block.time_ms, block.books, block.trades, wall)
        self._run_scheduled_cancels(wall)
        return block

    def _run_scheduled_cancels(self, wall_ms: int) -> None:
        for user in list(self.scheduled):
            acct = self.ledger.account(user)
            due = acct.scheduled_cancel_ms
            if due is None:
                self.scheduled.discard(user)
            elif wall_ms >= due:
                acct.scheduled_cancel_ms = None
                self.scheduled.discard(user)
                day = wall_ms // 86_400_000
                if acct.scheduled_cancel_day != day:
                    acct.scheduled_cancel_day, acct.scheduled_cancel_count = day, 0
                acct.scheduled_cancel_count += 1
                self.engine.cancel_all(user, wall_ms, "scheduledCancel")

    def mid_text(self, coin: str) -> str | None:
        book = self.engine.books[coin]
        if not book.mid:
            return None
        return format_usd(book.mid, book.px_decimals + 1)

    # ---- /info ---------------------------------------------------------------------------------------------

    def info(self, body: Any) -> Any:
        if not isinstance(body, dict) or not isinstance(body.get("type"), str):
            raise BadRequest(BAD_BODY_TEXT)
        handler = getattr(self, "_info_" + body["type"], None)
        if handler is None:
            raise BadRequest(BAD_BODY_TEXT)
        return handler(body)

    def _user(self, body: dict[str, Any]) -> str:
        user = body.get("user")
        if not isinstance(user, str) or not user.startswith("0x") or len(user) != 42:
            raise BadRequest(BAD_BODY_TEXT)
        return user.lower()

    def _info_meta(self, body: dict[str, Any]) -> Any:
        return self._meta

    def _info_spotMeta(self, body: dict[str, Any]) -> Any:
        return {"universe": [], "tokens": []}

    def _info_perpDexs(self, body: dict[str, Any]) -> Any:
        return [None]

    def _info_metaAndAssetCtxs(self, body: dict[str, Any]) -> Any:
        ctxs = []
        for s in self.specs:
            book = self.engine.books[s.name]
            mid = self.mid_text(s.name)
            bid, ask = book.best(BID), book.best(ASK)
            impact = (
                [format_scaled(bid, book.px_decimals), format_scaled(ask, book.px_decimals)]
                if bid is not None and ask is not None
                else None
            )
            ctxs.append(
                {
                    "dayNtlVlm": format_usd(self.day_volume.get(s.name, 0.0)),
                    "funding": "0.0",
                    "impactPxs": impact,
                    "markPx": mid or "0.0",
                    "midPx": mid,
                    "openInterest": "0.0",
                    "oraclePx": mid or "0.0",
                    "premium": "0.0",
                    "prevDayPx": mid or "0.0",
                    "dayBaseVlm": "0.0",
                }
            )
        return [self._meta, ctxs]

    def _info_allMids(self, body: dict[str, Any]) -> Any:
        mids = {}
        for s in self.specs:
            text = self.mid_text(s.name)
            if text is not None:
                mids[s.name] = text
        return mids

    def l2_book(self, coin: str, n_sig: int | None = None, mantissa: int | None = None) -> dict[str, Any]:
        book = self.engine.books[coin]
        sides = []
        for side_idx in (BID, ASK):
            levels = book.merged(side_idx)
            if n_sig:
                levels = _aggregate(levels, book.px_decimals, n_sig, mantissa, side_idx == BID)
            sides.append(
                [
                    {"px": format_scaled(px, book.px_decimals), "sz": format_scaled(lots, book.sz_decimals), "n": n}
                    for px, lots, n in levels
                ]
            )
        return {"coin": coin, "time": self.block_time_ms, "levels": sides}

    def _info_l2Book(self, body: dict[str, Any]) -> Any:
        coin, n_sig, mantissa = body.get("coin"), body.get("nSigFigs"), body.get("mantissa")
        if not isinstance(coin, str) or not _valid_aggregation(n_sig, mantissa):
            raise BadRequest(BAD_BODY_TEXT)
        if coin not in self.spec_by_name:
            return None
        return self.l2_book(coin, n_sig, mantissa)

    def _open_orders(self, user: str) -> list[Any]:
        return sorted((o for o in self.engine.orders.values() if o.user == user), key=lambda o: -o.oid)

    def _info_openOrders(self, body: dict[str, Any]) -> Any:
        user = self._user(body)
        return [self.engine._order_row(self.engine.books[o.coin], o) for o in self._open_orders(user)]

    def _info_frontendOpenOrders(self, body: dict[str, Any]) -> Any:
        user = self._user(body)
        return [self.engine.frontend_row(o) for o in self._open_orders(user)]

    def _info_clearinghouseState(self, body: dict[str, Any]) -> Any:
        return self.ledger.clearinghouse_state(self._user(body), self.engine.marks(), now_ms())

    def _info_spotClearinghouseState(self, body: dict[str, Any]) -> Any:
        self._user(body)
        return {"balances": []}

    def _info_userFills(self, body: dict[str, Any]) -> Any:
        acct = self.ledger.find(self._user(body))
        return list(reversed(acct.fills[-MAX_ROWS:])) if acct else []

    def _info_userFillsByTime(self, body: dict[str, Any]) -> Any:
        acct = self.ledger.find(self._user(body))
        start = body.get("startTime")
        end = body.get("endTime")
        if not _is_int(start) or not (end is None or _is_int(end)):
            raise BadRequest(BAD_BODY_TEXT)
        if acct is None:
            return []
        rows = [f for f in acct.fills if f["time"] >= start and (end is None or f["time"] <= end)]
        return rows[:MAX_ROWS]

    def _info_userRateLimit(self, body: dict[str, Any]) -> Any:
        return self.ledger.user_rate_limit(self._user(body))

    def _info_orderStatus(self, body: dict[str, Any]) -> Any:
        acct = self.ledger.find(self._user(body))
        key = body.get("oid")
        if acct is None:
            return {"status": "unknownOid"}
        oid = acct.cloid_oids.get(key) if isinstance(key, str) else key
        entry = acct.history.get(oid) if isinstance(oid, int) else None
        if entry is None:
            return {"status": "unknownOid"}
        row, status, ts = entry
        return {"status": "order", "order": {"order": row, "status": status, "statusTimestamp": ts}}

    def _info_historicalOrders(self, body: dict[str, Any]) -> Any:
        acct = self.ledger.find(self._user(body))
        if acct is None:
            return []
        return [
            {"order": row, "status": status, "statusTimestamp": ts}
            for row, status, ts in reversed(list(acct.history.values()))
        ]

    def _info_recentTrades(self, body: dict[str, Any]) -> Any:
        coin = body.get("coin")
        if not isinstance(coin, str):
            raise BadRequest(BAD_BODY_TEXT)
        if coin not in self.recent_trades:
            return []
        return list(self.recent_trades[coin])

    def _info_exchangeStatus(self, body: dict[str, Any]) -> Any:
        return {"time": now_ms(), "specialStatuses": None}

    def _info_venueStamps(self, body: dict[str, Any]) -> Any:
        """Venue-only extension: the send/receive stamps recorded so far (then cleared)."""
        out, self.stamps = self.stamps, []
        return out

    def _info_venueStats(self, body: dict[str, Any]) -> Any:
        """Venue-only extension: counters and the fault log, for tests and tooling."""
        return {
            "blocks": self.blocks,
            "actions": self.actions,
            "blockTime": self.block_time_ms,
            "sourceEnded": self.source_ended,
            "faults": self.faults.snapshot(),
        }

    # ---- /exchange -------------------------------------------------------------------------------------------

    def exchange(self, body: Any, wall_ms: int | None = None) -> dict[str, Any]:
        """Verify and execute one signed action; returns the JSON response (BadRequest → HTTP 422)."""
        if (
            not isinstance(body, dict)
            or not isinstance(body.get("action"), dict)
            or not isinstance(body["action"].get("type"), str)
            or "nonce" not in body
            or "signature" not in body
        ):
            raise BadRequest(BAD_BODY_TEXT)
        wall = now_ms() if wall_ms is None else wall_ms
        action = body["action"]
        kind = action["type"]
        handler = getattr(self, "_action_" + kind, None)
        if handler is None:
            raise BadRequest(BAD_BODY_TEXT)
        items = self._item_count(action)
        auth = self.registry.authenticate(body)
        if auth.error is not None:
            return _err(auth.error)
        if items > MAX_BATCH:
            return _err(f"Signed action over weight limit of {MAX_BATCH}.")
        nonce_error = self.registry.use_nonce(auth.signer, body["nonce"], wall)
        if nonce_error is not None:
            return _err(nonce_error)
        acct = self.ledger.account(auth.account)
        expires = body.get("expiresAfter")
        if expires is not None:
            if not isinstance(expires, int) or expires < wall:
                self.ledger.admit(acct, 5 * max(items, 1), False, wall)
                return _err(f"Signed action expired: expiresAfter {expires} < time {wall}")
        limited = self.ledger.admit(acct, items, kind in ("cancel", "cancelByCloid", "scheduleCancel"), wall)
        if limited is not None:
            return _err(limited)
        self.actions += 1
        response = handler(auth.account, action, wall)
        self._collect_action_trades()
        return response

    @staticmethod
    def _item_count(action: dict[str, Any]) -> int:
        for key in ("orders", "cancels", "modifies"):
            items = action.get(key)
            if isinstance(items, list):
                return len(items)
        return 1

    def _collect_action_trades(self) -> None:
        # public trades from taker actions are published with the next block, as on the real venue
        trades = self.engine.public_trades
        if trades:
            for coin, rows in trades.items():
                self.pending_trades.setdefault(coin, []).extend(rows)
            self.engine.public_trades = {}

    def _list(self, action: dict[str, Any], key: str, of_dicts: bool = False) -> list[Any]:
        """The action's item list; checked whole before any item runs, so a 422 never follows a partial batch."""
        items = action.get(key)
        if not isinstance(items, list) or (of_dicts and not all(isinstance(item, dict) for item in items)):
            raise BadRequest(BAD_BODY_TEXT)
        return items

    def _forced_reject(self, account: str, wire: Any) -> str | None:
        """An injected per-order reject text (None: no fault), with the book's bbo where the text needs it."""
        if not self.faults.active:
            return None
        text = self.faults.reject_text(account)
        if text is not None and "{bbo}" in text:
            asset = wire.get("a") if isinstance(wire, dict) else None
            bbo = "0.0@0.0"
            if isinstance(asset, int) and 0 <= asset < len(self.engine.by_asset):
                book = self.engine.by_asset[asset]
                bid, ask = book.best(BID), book.best(ASK)
                bbo = f"{format_scaled(bid or 0, book.px_decimals)}@{format_scaled(ask or 0, book.px_decimals)}"
            text = text.replace("{bbo}", bbo)
        return text

    def _action_order(self, account: str, action: dict[str, Any], wall: int) -> dict[str, Any]:
        statuses = []
        for wire in self._list(action, "orders"):
            statuses.append(self.engine.place(account, wire, wall, self._forced_reject(account, wire)))
        return _ok("order", statuses)

    def _action_cancel(self, account: str, action: dict[str, Any], wall: int) -> dict[str, Any]:
        statuses = []
        for item in self._list(action, "cancels", of_dicts=True):
            statuses.append(self.engine.cancel(account, item.get("a"), item.get("o"), wall))
        return _ok("cancel", statuses)

    def _action_cancelByCloid(self, account: str, action: dict[str, Any], wall: int) -> dict[str, Any]:
        statuses = []
        for item in self._list(action, "cancels", of_dicts=True):
            statuses.append(self.engine.cancel(account, item.get("asset"), item.get("cloid"), wall))
        return _ok("cancel", statuses)

    def _action_batchModify(self, account: str, action: dict[str, Any], wall: int) -> dict[str, Any]:
        statuses = []
        for item in self._list(action, "modifies", of_dicts=True):
            forced = self._forced_reject(account, item.get("order"))
            if forced is not None:
                statuses.append({"error": forced})
                continue
            statuses.append(self.engine.modify(account, item.get("oid"), item.get("order"), wall))
        return _ok("order", statuses)

    def _action_modify(self, account: str, action: dict[str, Any], wall: int) -> dict[str, Any]:
        status = self.engine.modify(account, action.get("oid"), action.get("order"), wall)
        if isinstance(status, dict) and "error" in status:
            return _err(status["error"])
        return _ok("default")

    def _action_scheduleCancel(self, account: str, action: dict[str, Any], wall: int) -> dict[str, Any]:
        acct = self.ledger.account(account)
        when = action.get("time")
        if when is None:
            acct.scheduled_cancel_ms = None
            self.scheduled.discard(account)
            return _ok("default")
        if not isinstance(when, int):
            raise BadRequest(BAD_BODY_TEXT)
        if when < wall + SCHEDULE_CANCEL_MIN_AHEAD_MS:
            return _err("Scheduled cancel time too early, must be at least 5 seconds from now.")
        if acct.scheduled_cancel_day == wall // 86_400_000 and acct.scheduled_cancel_count >= SCHEDULE_CANCEL_PER_DAY:
            return _err("Too many scheduled cancel triggers today.")
        acct.scheduled_cancel_ms = when
        self.scheduled.add(account)
        return _ok("default")

    def _action_updateLeverage(self, account: str, action: dict[str, Any], wall: int) -> dict[str, Any]:
        asset, leverage, is_cross = action.get("asset"), action.get("leverage"), action.get("isCross")
        if not isinstance(asset, int) or not 0 <= asset < len(self.specs) or not isinstance(leverage, int):
            raise BadRequest(BAD_BODY_TEXT)
        spec = self.specs[asset]
        if not 1 <= leverage <= int(spec.max_leverage):
            return _err("Invalid leverage value")
        self.ledger.account(account).leverage[spec.name] = (leverage, bool(is_cross))
        return _ok("default")

    def _action_noop(self, account: str, action: dict[str, Any], wall: int) -> dict[str, Any]:
        return _ok("default")

    def _action_approveAgent(self, account: str, action: dict[str, Any], wall: int) -> dict[str, Any]:
        error = self.registry.approve_agent(account, action)
        return _err(error) if error else _ok("default")


# ---- websocket side ------------------------------------------------------------------------------------------


class Connection:
    """One websocket client: its subscriptions and an outbox drained by its own writer task."""

    __slots__ = ("ws", "keys", "outbox", "wake", "writer", "held", "closed", "peer")

    def __init__(self, ws: web.WebSocketResponse, peer: str) -> None:
        self.ws = ws
        self.keys: dict[tuple, dict[str, Any]] = {}
        self.outbox: deque[tuple[float, bytes]] = deque()
        self.wake = asyncio.Event()
        self.writer: asyncio.Task | None = None
        self.held: bytes | None = None  # a user message held back by the reorder fault
        self.closed = False
        self.peer = peer


class VenueServer:
    """aiohttp application around a Venue, with the block clock and frame publishing."""

    def __init__(self, venue: Venue) -> None:
        self.venue = venue
        self.config = venue.config
        self.faults = venue.faults
        self.connections: set[Connection] = set()
        self.subs: dict[tuple, set[Connection]] = {}
        self.last_bbo: dict[str, Any] = {}
        self.frames_sent = 0
        self.started = time.monotonic()
        self.stall_logged = False
        self.last_scheduled_disconnect = self.started
        self.last_burst = self.started
        self.burst_left = 0  # market frames still to truncate in the current malformed burst
        self._ip_windows: dict[str, list[int]] = {}
        self._rng = random.Random(self.config.seed ^ 0x1A7E)
        self._block_task: asyncio.Task | None = None
        self.app = web.Application(client_max_size=8 * 1024 * 1024)
        self.app.router.add_post("/info", self.http_info)
        self.app.router.add_post("/exchange", self.http_exchange)
        self.app.router.add_get("/ws", self.ws_handler)
        self.app.on_startup.append(self._on_startup)
        self.app.on_shutdown.append(self._on_shutdown)

    # ---- lifecycle -------------------------------------------------------------------------------------------

    async def _on_startup(self, app: web.Application) -> None:
        self._block_task = asyncio.get_running_loop().create_task(self._block_loop())

    async def _on_shutdown(self, app: web.Application) -> None:
        if self._block_task is not None:
            self._block_task.cancel()
        for conn in list(self.connections):
            await conn.ws.close()

    def _delay(self) -> float:
        lat = self.config.latency_ms
        if self.config.jitter_ms:
            lat += self._rng.uniform(0.0, self.config.jitter_ms)
        return lat / 1000.0

    async def _block_loop(self) -> None:
        loop = asyncio.get_running_loop()
        period = self.config.block_ms / 1000.0
        next_at = loop.time()
        while True:
            try:
                self.step()
            except Exception:  # keep the venue serving whatever one block did
                log.exception("block processing failed")
            next_at += period
            delay = next_at - loop.time()
            if delay < -1.0:
                next_at = loop.time()
            await asyncio.sleep(max(0.0, delay))

    # ---- publishing ------------------------------------------------------------------------------------------

    def _send(self, conn: Connection, frame: bytes, user_message: bool = False) -> None:
        if conn.closed:
            return
        if self.faults.active:
            if user_message:
                if self.faults.roll("drop_user", conn.peer):
                    return
                if self.faults.roll("dup_user", conn.peer):
                    self._enqueue(conn, frame)
                if conn.held is None and self.faults.roll("reorder_user", conn.peer):
                    conn.held = frame
                    return
            elif self.burst_left > 0 or self.faults.roll("malformed", conn.peer):
                if self.burst_left > 0:
                    self.burst_left -= 1
                frame = frame[: max(1, len(frame) // 2)]
        self._enqueue(conn, frame)
        if user_message and conn.held is not None and conn.held is not frame:
            held, conn.held = conn.held, None
            self._enqueue(conn, held)

    def _enqueue(self, conn: Connection, frame: bytes) -> None:
        due = 0.0
        if self.config.latency_ms or self.config.jitter_ms:
            due = time.monotonic() + self._delay()
            if conn.outbox and conn.outbox[-1][0] > due:
                due = conn.outbox[-1][0]  # jitter must not reorder a connection's frames
        conn.outbox.append((due, frame))
        if len(conn.outbox) > OUTBOX_LIMIT:
            log.warning("closing slow websocket client %s (%d frames queued)", conn.peer, len(conn.outbox))
            conn.outbox.clear()
            self._close(conn)
            return
        conn.wake.set()

    async def _writer(self, conn: Connection) -> None:
        ws = conn.ws
        try:
            while not conn.closed:
                if not conn.outbox:
                    conn.wake.clear()
                    await conn.wake.wait()
                    continue
                due, frame = conn.outbox.popleft()
                if due:
                    wait = due - time.monotonic()
                    if wait > 0:
                        await asyncio.sleep(wait)
                await ws.send_frame(frame, WSMsgType.TEXT)
                self.frames_sent += 1
                if self.config.stamp_frames and frame.startswith(b'{"channel":"'):
                    channel = frame[12:frame.find(b'"', 12)].decode()
                    if channel in ("l2Book", "trades"):
                        self.venue.stamps.append((channel, time.perf_counter_ns()))
        except (ConnectionError, RuntimeError, asyncio.CancelledError):
            pass

    def _close(self, conn: Connection) -> None:
        if conn.closed:
            return
        conn.closed = True
        conn.wake.set()
        asyncio.get_running_loop().create_task(conn.ws.close())

    def publish(self, key: tuple, frame_obj: Any, user_message: bool = False) -> None:
        subscribers = self.subs.get(key)
        if not subscribers:
            return
        frame = orjson.dumps(frame_obj)
        for conn in tuple(subscribers):
            self._send(conn, frame, user_message)

    def publish_user_events(self) -> None:
        updates, fills, trades = self.venue.engine.drain()
        if trades:
            for coin, rows in trades.items():
                self.venue.pending_trades.setdefault(coin, []).extend(rows)
        for user, rows in updates.items():
            self.publish(("orderUpdates", user), {"channel": "orderUpdates", "data": rows}, True)
        for user, rows in fills.items():
            self.publish(("userFills", user), {"channel": "userFills", "data": {"user": user, "fills": rows}}, True)
            self.publish(("userEvents", user), {"channel": "user", "data": {"fills": rows}}, True)

    def step(self) -> None:
        """One block: apply it, then publish user events, trades, books, bbo and mids."""
        venue = self.venue
        block = venue.step_block()
        self.publish_user_events()
        for conn in self.connections:
            if conn.held is not None:  # a reordered user message goes out at the latest with the next block
                held, conn.held = conn.held, None
                self._enqueue(conn, held)
        self._maybe_disconnect()
        self._maybe_burst()
        if block is None:
            return
        elapsed = time.monotonic() - self.started
        if self.faults.active and self.faults.stalled(elapsed):
            if not self.stall_logged:
                self.faults.record("stall", f"market data paused {self.faults.spec.stall_s}s")
                self.stall_logged = True
            venue.pending_trades.clear()
            return
        self.stall_logged = False
        pending, venue.pending_trades = venue.pending_trades, {}
        for coin, rows in pending.items():
            venue.recent_trades[coin].extend(rows)
            venue.day_volume[coin] += sum(float(r["px"]) * float(r["sz"]) for r in rows)
            self.publish(("trades", coin), {"channel": "trades", "data": rows})
        for spec in venue.specs:
            coin = spec.name
            if coin not in block.books:
                continue
            self._publish_book(coin)
        if self.subs.get(("allMids",)):
            mids = venue._info_allMids({})
            self.publish(("allMids",), {"channel": "allMids", "data": {"mids": mids}})

    def _publish_book(self, coin: str) -> None:
        venue = self.venue
        book = venue.engine.books[coin]
        for key in [k for k in self.subs if k[0] == "l2Book" and k[1] == coin and self.subs[k]]:
            self.publish(key, {"channel": "l2Book", "data": venue.l2_book(coin, key[2], key[3])})
        bid = book.merged(BID, 1)
        ask = book.merged(ASK, 1)
        top = (bid[0] if bid else None, ask[0] if ask else None)
        if self.last_bbo.get(coin) != top:
            self.last_bbo[coin] = top
            levels = [
                None if lv is None else {
                    "px": format_scaled(lv[0], book.px_decimals), "sz": format_scaled(lv[1], book.sz_decimals),
                    "n": lv[2],
                }
                for lv in top
            ]
            self.publish(
                ("bbo", coin), {"channel": "bbo", "data": {"coin": coin, "time": venue.block_time_ms, "bbo": levels}}
            )

    def _maybe_burst(self) -> None:
        spec = self.faults.spec
        if spec.burst_every > 0 and time.monotonic() - self.last_burst >= spec.burst_every:
            self.last_burst = time.monotonic()
            self.burst_left = int(spec.burst_frames)
            self.faults.record("malformed_burst", f"next {self.burst_left} market frames truncated")

    def _maybe_disconnect(self) -> None:
        if not self.faults.active or not self.connections:
            return
        spec = self.faults.spec
        if spec.disconnect_every > 0 and time.monotonic() - self.last_scheduled_disconnect >= spec.disconnect_every:
            self.last_scheduled_disconnect = time.monotonic()
            for conn in list(self.connections):
                self.faults.record("disconnect", f"scheduled {conn.peer}")
                self._close(conn)
        if spec.disconnect > 0:
            for conn in list(self.connections):
                if self.faults.roll("disconnect", conn.peer):
                    self._close(conn)

    # ---- websocket handler -----------------------------------------------------------------------------------

    async def ws_handler(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(max_msg_size=4 * 1024 * 1024, autoping=True)
        await ws.prepare(request)
        conn = Connection(ws, str(request.remote))
        conn.writer = asyncio.get_running_loop().create_task(self._writer(conn))
        self.connections.add(conn)
        loop = asyncio.get_running_loop()
        try:
            async for msg in ws:
                if msg.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                    if self.config.stamp_frames:
                        self._stamp_action(msg.data)
                    if self.config.latency_ms or self.config.jitter_ms:
                        loop.call_later(self._delay(), self.on_ws_message, conn, msg.data)
                    else:
                        self.on_ws_message(conn, msg.data)
                elif msg.type == WSMsgType.ERROR:
                    break
        finally:
            conn.closed = True
            conn.wake.set()
            self.connections.discard(conn)
            for key in conn.keys:
                subscribers = self.subs.get(key)
                if subscribers is not None:
                    subscribers.discard(conn)
            if conn.writer is not None:
                conn.writer.cancel()
        return ws

    def _stamp_action(self, data: str | bytes) -> None:
        now = time.perf_counter_ns()
        raw = data.encode() if isinstance(data, str) else data
        at = raw.find(b'"action":{"type":"')
        if at >= 0:
            start = at + 18
            self.venue.stamps.append((raw[start:raw.find(b'"', start)].decode(errors="replace"), now))

    def _error_frame(self, conn: Connection, text: str) -> None:
        self._enqueue(conn, orjson.dumps({"channel": "error", "data": text}))

    def on_ws_message(self, conn: Connection, data: str | bytes) -> None:
        if conn.closed:
            return
        try:
            self._dispatch_ws(conn, data)
        except Exception:  # a request the handlers did not foresee must not drop the client's connection
            log.exception("websocket request failed")
            self._error_frame(conn, "Internal error while handling the request")

    def _dispatch_ws(self, conn: Connection, data: str | bytes) -> None:
        try:
            msg = orjson.loads(data)
            method = msg["method"] if isinstance(msg, dict) else None
        except (orjson.JSONDecodeError, KeyError, TypeError):
            method = None
            msg = None
        if method == "ping":
            self._enqueue(conn, b'{"channel":"pong"}')
        elif method == "post":
            self._ws_post(conn, msg)
        elif method in ("subscribe", "unsubscribe") and isinstance(msg.get("subscription"), dict):
            self._ws_subscription(conn, method, msg["subscription"])
        else:
            raw = data.decode(errors="replace") if isinstance(data, bytes) else data
            self._error_frame(conn, f"Error parsing JSON into valid websocket request: {raw}")

    def _normalise(self, sub: dict[str, Any]) -> tuple[tuple, dict[str, Any]] | None:
        kind = sub.get("type")
        venue = self.venue
        if not isinstance(kind, str) or ("coin" in sub and not isinstance(sub["coin"], str)):
            return None
        if kind == "l2Book":
            coin, n_sig, mantissa = sub.get("coin"), sub.get("nSigFigs"), sub.get("mantissa")
            if coin not in venue.spec_by_name or not _valid_aggregation(n_sig, mantissa):
                return None
            return ("l2Book", coin, n_sig, mantissa), {"type": kind, "coin": coin, "nSigFigs": n_sig, "mantissa": mantissa}
        if kind in ("trades", "bbo"):
            coin = sub.get("coin")
            if coin not in venue.spec_by_name:
                return None
            return (kind, coin), {"type": kind, "coin": coin}
        if kind == "allMids":
            return ("allMids",), {"type": kind}
        if kind in USER_CHANNELS:
            user = sub.get("user")
            if not isinstance(user, str) or not user.startswith("0x") or len(user) != 42:
                return None
            echo = {"type": kind, "user": user.lower()}
            if kind == "userFills" and "aggregateByTime" in sub:
                echo["aggregateByTime"] = bool(sub["aggregateByTime"])
            return (kind, user.lower()), echo
        return None

    def _ws_subscription(self, conn: Connection, method: str, sub: dict[str, Any]) -> None:
        raw = _echo(sub)
        normal = self._normalise(sub)
        if normal is None:
            self._error_frame(conn, f"Invalid subscription: {raw}")
            return
        key, echo = normal
        if method == "subscribe":
            if key in conn.keys:
                self._error_frame(conn, f"Already subscribed: {raw}")
                return
            conn.keys[key] = echo
            self.subs.setdefault(key, set()).add(conn)
        else:
            if key not in conn.keys:
                self._error_frame(conn, f"Already unsubscribed: {raw}")
                return
            del conn.keys[key]
            self.subs.get(key, set()).discard(conn)
        self._enqueue(
            conn, orjson.dumps({"channel": "subscriptionResponse", "data": {"method": method, "subscription": echo}})
        )
        if method == "subscribe":
            self._initial_snapshot(conn, key)

    def _initial_snapshot(self, conn: Connection, key: tuple) -> None:
        venue = self.venue
        kind = key[0]
        if kind == "userFills":
            acct = venue.ledger.find(key[1])
            fills = list(acct.fills[-MAX_ROWS:]) if acct else []
            data = {"isSnapshot": True, "user": key[1], "fills": fills}
            self._enqueue(conn, orjson.dumps({"channel": "userFills", "data": data}))
        elif kind == "l2Book" and venue.blocks:
            self._enqueue(conn, orjson.dumps({"channel": "l2Book", "data": venue.l2_book(key[1], key[2], key[3])}))

    def _ws_post(self, conn: Connection, msg: dict[str, Any]) -> None:
        req_id = msg.get("id")
        request = msg.get("request")
        if not isinstance(req_id, int) or not isinstance(request, dict):
            self._error_frame(conn, f"Error parsing JSON into valid websocket request: {_echo(msg)}")
            return
        kind = request.get("type")
        payload = request.get("payload")
        if kind == "info":
            try:
                data = self.venue.info(payload)
                response: dict[str, Any] = {"type": "info", "payload": {"type": payload["type"], "data": data}}
            except BadRequest as exc:
                response = {"type": "error", "payload": f"422 Unprocessable Entity: {exc}"}
            self._enqueue(conn, orjson.dumps({"channel": "post", "data": {"id": req_id, "response": response}}))
            return
        if kind != "action":
            self._error_frame(conn, f"Error parsing JSON into valid websocket request: {_echo(msg)}")
            return
        try:
            result = self.venue.exchange(payload)
            response = {"type": "action", "payload": result}
        except BadRequest as exc:
            response = {"type": "error", "payload": f"422 Unprocessable Entity: {exc}"}
        self._reply_post(conn, req_id, response)
        self.publish_user_events()  # after the reply: a client sees its ack before the order's events

    def _reply_post(self, conn: Connection, req_id: int, response: dict[str, Any]) -> None:
        frame = orjson.dumps({"channel": "post", "data": {"id": req_id, "response": response}})
        if self.faults.active:
            if self.faults.roll("lost_reply", f"ws post id={req_id}"):
                return
            delay = self.faults.ack_delay(f"ws post id={req_id}")
            if delay:
                asyncio.get_running_loop().call_later(delay, self._enqueue, conn, frame)
                return
        self._enqueue(conn, frame)

    # ---- HTTP handlers -----------------------------------------------------------------------------------------

    def _http_fault(self, request: web.Request) -> web.Response | None:
        if self.config.ip_weight_per_min:
            weight = 1
            window = self._ip_windows.setdefault(str(request.remote), [0, 0])
            minute = int(time.monotonic() // 60)
            if window[0] != minute:
                window[0], window[1] = minute, 0
            window[1] += weight
            if window[1] > self.config.ip_weight_per_min:
                return web.Response(status=429, text="Too many requests", content_type="text/plain")
        if self.faults.active:
            if self.faults.roll("http5xx", request.path):
                return web.Response(status=500, text="Internal Server Error", content_type="text/plain")
            if self.faults.roll("http429", request.path):
                return web.Response(status=429, text="Too many requests", content_type="text/plain")
        return None

    async def _read_json(self, request: web.Request) -> Any:
        raw = await request.read()
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise BadRequest(BAD_BODY_TEXT) from None

    @staticmethod
    def _json(obj: Any) -> web.Response:
        return web.Response(body=orjson.dumps(obj), content_type="application/json")

    async def http_info(self, request: web.Request) -> web.StreamResponse:
        if self.config.latency_ms or self.config.jitter_ms:
            await asyncio.sleep(self._delay())
        fault = self._http_fault(request)
        if fault is not None:
            return fault
        try:
            data = self.venue.info(await self._read_json(request))
        except BadRequest as exc:
            return web.Response(status=422, text=str(exc), content_type="text/plain")
        if self.config.latency_ms or self.config.jitter_ms:
            await asyncio.sleep(self._delay())
        return self._json(data)

    async def http_exchange(self, request: web.Request) -> web.StreamResponse:
        if self.config.latency_ms or self.config.jitter_ms:
            await asyncio.sleep(self._delay())
        fault = self._http_fault(request)
        if fault is not None:
            return fault
        try:
            result = self.venue.exchange(await self._read_json(request))
        except BadRequest as exc:
            return web.Response(status=422, text=str(exc), content_type="text/plain")
        self.publish_user_events()
        if self.faults.active:
            if self.faults.roll("lost_reply", "http /exchange"):
                if request.transport is not None:
                    request.transport.close()
                return web.Response(status=500)
            delay = self.faults.ack_delay("http /exchange")
            if delay:
                await asyncio.sleep(delay)
        if self.config.latency_ms or self.config.jitter_ms:
            await asyncio.sleep(self._delay())
        return self._json(result)


def build_venue(config: VenueConfig) -> Venue:
    from hlfast.venue.market import make_source

    start = config.start_ms if config.start_ms is not None else now_ms()
    if config.source.startswith("py:"):
        # "py:package.module:factory" → factory(coins, seed, block_ms): a scripted source for tests and tools
        module_name, _, attr = config.source[3:].rpartition(":")
        import importlib

        factory = getattr(importlib.import_module(module_name), attr)
        source = factory(list(config.coins), config.seed, config.block_ms)
    elif config.source == "synthetic":
        source = make_source("synthetic", list(config.coins), config.seed, config.block_ms, start_ms=start)
    else:
        source = make_source(config.source, list(config.coins), config.seed, config.block_ms)
    return Venue(config, source)

