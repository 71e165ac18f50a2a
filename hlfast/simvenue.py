"""An in-process simulated exchange for backtests: the local venue's matching, queue and ledger code
driven by a simulated clock, with order latency both ways and no sockets.

Time model (all times are the simulated clock, integer ns since the epoch of the recording):
- a market frame received at ``r`` is applied to the venue at ``r`` (trades deplete the queue ahead of
  our orders and fill them; a snapshot re-anchors queue positions and fills orders it crossed), then the
  engine receives it at ``r`` (the book with our resting orders merged in, as the venue publishes it);
- an action the engine sends at ``t`` reaches the venue at ``t + latency`` and is executed against the
  venue's state at that moment; its reply and the order/fill events it causes reach the engine at
  ``t + 2·latency``; fills caused by market events at ``r`` reach the engine at ``r + latency``.

Both queues (engine → venue and venue → engine) are FIFO in time because the latency is constant and
the venue handles events in time order, so no heap is needed.  Nothing here reads the wall clock.

Speed: recorded frames in the recorder's compact form are read by a C scanner (hlfast.simfeed) instead
of being decoded into dicts; trades that reach none of our orders only note their volume, snapshots cap
our queues and are re-published from the recorded bytes, and the venue's market levels are built as
Python lists only when venue code asks for them.  Every other frame takes the general path (decode,
then the venue's own code); both paths leave the venue in the same state (tested).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from hlfast.gateway import Gateway, PostReply
from hlfast.simfeed import BOOK, PUBLISH_FALLBACK, TRADES_NOTED, FrameScanner
from hlfast.venue.ledger import Fees, format_scaled
from hlfast.venue.market import LIQUIDATOR_ADDRESS, CoinSpec
from hlfast.venue.matching import ASK, BID, BOOK_DEPTH, TID_MASK, CoinBook, MatchingEngine
from hlfast.venue.server import MAX_BATCH, BadRequest, Venue, VenueConfig

SIGNATURE_PLACEHOLDER = {"r": "0x0", "s": "0x0", "v": 27}
CANCEL_KINDS = ("cancel", "cancelByCloid", "scheduleCancel")


class SimClock:
    """The simulated clock: integer ns, advanced only by the backtest loop."""

    __slots__ = ("now_ns",)

    def __init__(self, start_ns: int = 0) -> None:
        self.now_ns = start_ns

    def seconds(self) -> float:
        return self.now_ns / 1e9

    def ms(self) -> int:
        return self.now_ns // 1_000_000


class SimCoinBook(CoinBook):
    """The venue's coin book whose market levels can stay in the scanner's C arrays.

    After a snapshot installed by the scanner, ``market`` (the [px, lots, n] lists the venue's code
    reads and, for taker orders, consumes) and ``prev_display`` are built on first use; a snapshot
    installed by the venue's own code sets them directly."""

    def __init__(self, spec: Any, asset: int) -> None:
        self.scanner: FrameScanner | None = None
        self._market: tuple[list, list] | None = None
        self._prev_display: tuple[dict, dict] | None = None
        super().__init__(spec, asset)

    @property
    def market(self) -> tuple[list, list]:
        market = self._market
        if market is None:
            market = self._market = (self.scanner.market_side(BID), self.scanner.market_side(ASK))
        return market

    @market.setter
    def market(self, value: tuple[list, list]) -> None:
        self._market = value

    @property
    def prev_display(self) -> tuple[dict, dict]:
        prev = self._prev_display
        if prev is None:
            prev = self._prev_display = (self.scanner.display_side(BID), self.scanner.display_side(ASK))
        return prev

    @prev_display.setter
    def prev_display(self, value: tuple[dict, dict]) -> None:
        self._prev_display = value

    def installed_by_scanner(self) -> None:
        """The scanner's installed snapshot is now the market: forget the lists built from the last one."""
        self._market = None
        self._prev_display = None


class SimMatching(MatchingEngine):
    """The venue's matching engine with cheap trade ids, no public-trade prints and SimCoinBooks.

    The engine under test reads the recorded trades themselves, so the venue's own prints are not
    needed; ids only have to be unique per fill (the venue hashes a counter with keccak, ~40 us)."""

    def __init__(self, coin_specs: list[Any], ledger: Any, queue_model: str = "risk_averse",
                 liquidator: str = LIQUIDATOR_ADDRESS) -> None:
        super().__init__(coin_specs, ledger, queue_model, liquidator)
        for asset, spec in enumerate(coin_specs):
            book = SimCoinBook(spec, asset)
            self.books[spec.name] = book
            self.by_asset[asset] = book

    def _trade_ids(self, coin: str) -> tuple[int, str]:
        seq = self.next_trade
        self.next_trade += 1
        return seq & TID_MASK, f"0x{seq:064x}"

    def _publish_trade(self, book: CoinBook, aggressor: int, px: int, lots: int, buyer: str, seller: str,
                       tid: int, trade_hash: str, time_ms: int) -> None:
        book.last_trade_px = px / book.px_scale


class _NoSource:
    """The venue pulls no blocks: the backtest pushes market events into its matching engine."""

    def __init__(self, specs: list[CoinSpec]) -> None:
        self.coins = specs

    def next_block(self) -> None:
        return None


@dataclass(slots=True)
class SimFill:
    """One of our fills as the venue booked it (sizes in coin, prices in price units, fee in USD)."""

    t: float  # s, venue time of the fill
    side: int  # +1 buy / -1 sell
    px: float
    sz: float
    fee: float  # USD, negative = rebate
    crossed: bool
    oid: int
    cloid: str | None


@dataclass
class SimStats:
    actions: int = 0  # actions executed by the venue
    action_errors: int = 0  # whole-action errors (bad body, weight, rate limit)
    item_errors: int = 0  # per-order/cancel error statuses
    by_kind: dict = field(default_factory=dict)
    market_frames: int = 0
    bad_frames: int = 0
    merged_books: int = 0  # book frames re-published with our orders merged in


class SimVenue:
    """One coin, one account; the venue's `Venue` (info views, action handlers, matching, ledger)."""

    def __init__(self, spec: CoinSpec, account: str, *, deposit: float = 100_000.0, latency_ms: float = 0.0,
                 fees: Fees | None = None, queue_model: str = "risk_averse", verify_signatures: bool = False,
                 clock: SimClock | None = None, request_budget_base: int = 10_000, fast_path: bool = True) -> None:
        if latency_ms < 0:
            raise ValueError(f"latency_ms must be >= 0, got {latency_ms}")
        self.spec = spec
        self.coin = spec.name
        self.account = account.lower()
        self.clock = clock or SimClock()
        self.latency_ns = int(round(latency_ms * 1e6))
        self.verify_signatures = verify_signatures
        config = VenueConfig(coins=(spec.name,), accounts=[(self.account, deposit)], fees=fees or Fees(),
                             queue_model=queue_model, signing_source="b", request_budget_base=request_budget_base)
        self.venue = Venue(config, _NoSource([spec]))
        self.matching = self.venue.engine = SimMatching(self.venue.specs, self.venue.ledger, queue_model,
                                                        LIQUIDATOR_ADDRESS)
        self.book = self.matching.books[spec.name]
        self.scanner = self.book.scanner = FrameScanner(spec.name, spec.sz_decimals)
        self.fast_path = fast_path  # False: every frame decoded and applied by the venue's own code
        self.risk_averse = queue_model == "risk_averse"
        self.ledger_account = self.venue.ledger.account(self.account)
        self.px_scale = 10 ** spec.px_decimals
        self.sz_decimals = spec.sz_decimals
        self.to_venue: deque[tuple[int, int, Any]] = deque()  # (arrival ns, post id, /exchange body)
        self.to_engine: deque[tuple[int, bytes]] = deque()  # (arrival ns, ws frame)
        self.fills: list[SimFill] = []
        self.stats = SimStats()
        self.has_book = False

    # ---- market side ------------------------------------------------------------------------------
    def on_market_frame(self, raw: bytes) -> bytes | None:
        """Apply one recorded market frame at the current time.

        Returns the frame the engine should receive: the raw bytes, a re-published book with our resting
        orders merged in, or None for a frame the venue does not carry (other channels, other coins)."""
        if self.fast_path:
            book = self.book
            return self.after_scan(self.scanner.scan_apply(raw, book.levels, book.traded_at), raw)
        return self._decoded_frame(raw)

    def after_scan(self, kind: int, raw: bytes) -> bytes | None:
        """on_market_frame's rest once the scanner has applied raw (kind: what scan_apply returned)."""
        if kind == TRADES_NOTED:
            self.trades_noted(1)
            return raw
        if kind == BOOK:
            return self._scanned_book(raw)
        return self._decoded_frame(raw)

    def trades_noted(self, frames: int) -> None:
        """Bookkeeping of the last `frames` trade frames the scanner noted, at the current time.

        Trades that reach none of our orders: their volume was noted for the queue model by the scanner,
        and the last trade price moves, as MatchingEngine.on_block does with them (tested equal)."""
        self.stats.market_frames += frames
        self.matching.now_ms = self.clock.now_ns // 1_000_000
        book = self.book
        book.time_ms = self.scanner.time_ms
        book.last_trade_px = self.scanner.last_px / book.px_scale

    def _scanned_book(self, raw: bytes) -> bytes:
        """A snapshot read by the scanner: MatchingEngine.on_block's snapshot install, then publication."""
        sc = self.scanner
        book = self.book
        m = self.matching
        time_ms = sc.time_ms
        self.stats.market_frames += 1
        self.venue.block_time_ms = time_ms
        m.now_ms = self.clock.ms()
        book.time_ms = time_ms
        levels = book.levels
        best_bid, best_ask = sc.best(BID), sc.best(ASK)
        if self.risk_averse:
            crossed = sc.install(levels[BID], levels[ASK], True)
        else:
            for side_idx, best in ((BID, best_bid), (ASK, best_ask)):
                if levels[side_idx]:
                    m._reanchor_queues(book, side_idx, sc.display_side(side_idx, False), best)
            crossed = sc.install(levels[BID], levels[ASK], False)
        book.installed_by_scanner()
        book.traded_at = ({}, {})
        if best_bid is not None and best_ask is not None:
            book.mid = (best_bid + best_ask) / 2 / book.px_scale
        elif book.last_trade_px:
            book.mid = book.last_trade_px
        if crossed:
            m._fill_crossed(book, best_bid, best_ask)
        self.has_book = best_bid is not None and best_ask is not None
        self._after_event()
        if not levels[BID] and not levels[ASK]:
            return raw
        out = sc.publish(levels[BID], levels[ASK])
        if out is not None:
            self.stats.merged_books += 1
            return out
        if sc.publish_status == PUBLISH_FALLBACK:
            return self._merged_frame(orjson.loads(raw)["data"], raw, time_ms)
        return raw

    def _decoded_frame(self, raw: bytes) -> bytes | None:
        """The general path: decode the frame and apply it with the venue's own code."""
        try:
            frame = orjson.loads(raw)
            channel = frame.get("channel")
            data = frame.get("data")
            if channel == "trades":
                return raw if self._on_trades(data) else None
            if channel == "l2Book":
                return self._on_book(data, raw)
        except (orjson.JSONDecodeError, AttributeError, KeyError, TypeError, ValueError, IndexError):
            self.stats.bad_frames += 1
            return None
        return raw if channel in ("bbo", "allMids") else None

    def _on_trades(self, data: list) -> bool:
        scale = self.px_scale
        trades = []
        time_ms = 0
        for tr in data:
            if tr.get("coin") != self.coin:
                continue
            side = tr["side"]
            sz = round(float(tr["sz"]), self.sz_decimals)
            if side not in ("B", "A") or not sz > 0:
                self.stats.bad_frames += 1
                continue
            time_ms = int(tr["time"])
            trades.append((side, round(float(tr["px"]) * scale), sz, False))
        if not trades:
            return False
        self.stats.market_frames += 1
        if any(self._may_fill(side, px) for side, px, _sz, _liq in trades):
            self.matching.on_block(time_ms, {}, {self.coin: trades}, self.clock.ms())
            self._after_event()
        else:
            self._untouched_trades(trades, time_ms)
        return True

    def _may_fill(self, side: str, px: int) -> bool:
        """Could a trade at px (aggressor side "B"/"A") reach one of our resting orders?"""
        ours = self.book.levels[ASK if side == "B" else BID]
        if not ours:
            return False
        return min(ours) <= px if side == "B" else max(ours) >= px

    def _untouched_trades(self, trades: list, time_ms: int) -> None:
        # What MatchingEngine.on_block does for trades that reach none of our orders: the traded volume
        # at each price is noted for the queue model and the last trade price moves (tested equal).
        book = self.book
        self.matching.now_ms = self.clock.ms()
        book.time_ms = time_ms
        for side, px, sz, _liq in trades:
            lots = int(round(sz * book.lot_scale))
            if lots <= 0:
                continue
            traded = book.traded_at[ASK if side == "B" else BID]
            traded[px] = traded.get(px, 0) + lots
            book.last_trade_px = px / book.px_scale

    def _on_book(self, data: dict, raw: bytes) -> bytes | None:
        if data.get("coin") != self.coin:
            return None
        scale = self.px_scale
        bids_raw, asks_raw = data["levels"]
        bids = [(round(float(lv["px"]) * scale), float(lv["sz"]), lv["n"]) for lv in bids_raw]
        asks = [(round(float(lv["px"]) * scale), float(lv["sz"]), lv["n"]) for lv in asks_raw]
        if bids and asks and bids[0][0] >= asks[0][0]:
            self.stats.bad_frames += 1  # a crossed snapshot breaks the venue's invariants: skip it
            return None
        time_ms = int(data["time"])
        self.stats.market_frames += 1
        self.venue.block_time_ms = time_ms
        self.matching.on_block(time_ms, {self.coin: (bids, asks)}, {}, self.clock.ms())
        self.has_book = bool(bids and asks)
        self._after_event()
        levels = self.book.levels
        if not levels[BID] and not levels[ASK]:
            return raw
        return self._merged_frame(data, raw, time_ms)

    def _merged_frame(self, data: dict, raw: bytes, time_ms: int) -> bytes:
        """The book as the venue publishes it (our resting orders merged in), reusing unchanged levels."""
        book = self.book
        sides = []
        changed = False
        for side_idx in (BID, ASK):
            shown = data["levels"][side_idx]
            if not book.levels[side_idx]:
                sides.append(shown)
                continue
            market = book.market[side_idx]
            if len(market) >= BOOK_DEPTH and len(market) == len(shown):
                deepest = market[BOOK_DEPTH - 1][0]
                ours = book.levels[side_idx]
                if (max(ours) < deepest) if side_idx == BID else (min(ours) > deepest):
                    sides.append(shown)  # all our orders sit below the published depth
                    continue
            index = {lv[0]: i for i, lv in enumerate(market)}
            out = []
            for px, lots, n in book.merged(side_idx):
                i = index.get(px)
                if i is not None and market[i][1] == lots and market[i][2] == n:
                    out.append(shown[i])
                else:
                    changed = True
                    out.append({"px": format_scaled(px, book.px_decimals), "sz": format_scaled(lots, book.sz_decimals),
                                "n": n})
            changed = changed or len(out) != len(shown)
            sides.append(out)
        if not changed:
            return raw
        self.stats.merged_books += 1
        return orjson.dumps({"channel": "l2Book", "data": {"coin": self.coin, "time": time_ms, "levels": sides}})

    # ---- order entry ------------------------------------------------------------------------------
    def submit(self, post_frame: bytes) -> bool:
        """A ws ``post`` frame from the engine: it reaches the venue one latency later."""
        try:
            msg = orjson.loads(post_frame)
            post_id = msg["id"]
            body = msg["request"]["payload"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return False
        self.to_venue.append((self.clock.now_ns + self.latency_ns, post_id, body))
        return True

    def execute(self, body: Any) -> dict[str, Any]:
        """Execute one /exchange body now (signature checked only with verify_signatures)."""
        wall = self.clock.ms()
        if self.verify_signatures:
            try:
                response = self.venue.exchange(body, wall_ms=wall)
            except BadRequest as exc:
                response = {"status": "err", "response": f"422 Unprocessable Entity: {exc}"}
        else:
            response = self._execute_unsigned(body, wall)
        self._count(body, response)
        return response

    def _execute_unsigned(self, body: Any, wall: int) -> dict[str, Any]:
        # Venue.exchange without the signature recovery (~120 us an action): the same rate-limit
        # accounting and the same per-action handlers.
        action = body.get("action") if isinstance(body, dict) else None
        kind = action.get("type") if isinstance(action, dict) else None
        handler = getattr(self.venue, f"_action_{kind}", None) if isinstance(kind, str) else None
        if handler is None:
            return {"status": "err", "response": "422 Unprocessable Entity: bad action"}
        items = Venue._item_count(action)
        if items > MAX_BATCH:
            return {"status": "err", "response": f"Signed action over weight limit of {MAX_BATCH}."}
        limited = self.venue.ledger.admit(self.ledger_account, items, kind in CANCEL_KINDS, wall)
        if limited is not None:
            return {"status": "err", "response": limited}
        self.venue.actions += 1
        try:
            response = handler(self.account, action, wall)
        except BadRequest as exc:
            response = {"status": "err", "response": f"422 Unprocessable Entity: {exc}"}
        self.matching.public_trades = {}  # our own trades are not replayed to the engine's tape
        return response

    def _count(self, body: Any, response: dict[str, Any]) -> None:
        st = self.stats
        st.actions += 1
        kind = body.get("action", {}).get("type", "?") if isinstance(body, dict) else "?"
        st.by_kind[kind] = st.by_kind.get(kind, 0) + 1
        if response.get("status") != "ok":
            st.action_errors += 1
            return
        data = response.get("response", {}).get("data") if isinstance(response.get("response"), dict) else None
        for status in (data or {}).get("statuses", ()):
            if isinstance(status, dict) and "error" in status:
                st.item_errors += 1

    def run_action(self, arrival_ns: int, post_id: int, body: Any) -> None:
        """Execute a queued action at its arrival time; the reply and events go back one latency later."""
        self.clock.now_ns = arrival_ns
        response = self.execute(body)
        back = arrival_ns + self.latency_ns
        self.to_engine.append((back, orjson.dumps(
            {"channel": "post", "data": {"id": post_id, "response": {"type": "action", "payload": response}}})))
        self._after_event()

    def _after_event(self) -> None:
        """Turn the matching engine's user events into ws frames for the engine, one latency later."""
        m = self.matching
        if not m.order_updates and not m.user_fills:
            return
        updates, fills, _trades = m.drain()
        if not updates and not fills:
            return
        back = self.clock.now_ns + self.latency_ns
        user = self.account
        rows = updates.get(user)
        if rows:
            self.to_engine.append((back, orjson.dumps({"channel": "orderUpdates", "data": rows})))
        rows = fills.get(user)
        if rows:
            t = self.clock.now_ns / 1e9
            for r in rows:
                self.fills.append(SimFill(t, 1 if r["side"] == "B" else -1, float(r["px"]), float(r["sz"]),
                                          float(r["fee"]), bool(r["crossed"]), int(r["oid"]), r.get("cloid")))
            self.to_engine.append((back, orjson.dumps(
                {"channel": "userFills", "data": {"user": user, "fills": rows}})))

    # ---- views ------------------------------------------------------------------------------------
    def info(self, body: Any) -> Any:
        return self.venue.info(body)

    def mid(self) -> float:
        return self.book.mid

    def position(self) -> float:
        pos = self.ledger_account.positions.get(self.coin)
        return pos.szi / 10**self.sz_decimals if pos else 0.0

    def resting(self) -> int:
        return sum(len(fifo) for side in self.book.levels for fifo in side.values())


# ---- the engine's transport, in process ---------------------------------------------------------------
class SimConnection:
    """Stands in for a WsConnection: always connected; the orders connection posts into the venue."""

    def __init__(self, name: str, venue: SimVenue | None) -> None:
        self.name = name
        self.url = f"sim://{name}"
        self.venue = venue
        self.connected = True
        self.reconnects = 0
        self.last_error = ""
        self.next_attempt_at = 0.0
        self.sent = 0

    def connect(self) -> bool:
        self.connected = True
        return True

    def send_text(self, payload: bytes) -> bool:
        self.sent += 1
        return self.venue.submit(payload) if self.venue is not None else True

    def send_json(self, obj: object) -> bool:
        return self.send_text(orjson.dumps(obj))

    def flush(self) -> bool:
        return True

    def heartbeat(self, now: float) -> None:
        return None

    def due_for_reconnect(self, now: float) -> bool:
        return False

    def on_pong(self) -> None:
        return None

    def read_frames(self, out: list) -> int:
        return 0

    def close(self) -> None:
        self.connected = False


class SimHttp:
    """Stands in for the HTTP client: /info views and blocking /exchange calls (start-up, resync)."""

    def __init__(self, venue: SimVenue) -> None:
        self.venue = venue

    def info(self, body: dict) -> Any:
        try:
            return self.venue.info(body)
        except BadRequest as exc:
            raise ValueError(str(exc)) from None

    def exchange(self, payload: dict | bytes) -> Any:
        body = orjson.loads(payload) if isinstance(payload, bytes | bytearray) else payload
        response = self.venue.execute(body)
        self.venue._after_event()
        return response

    def close(self) -> None:
        return None


@dataclass(slots=True)
class ActionRecord:
    t: float  # s, sim time the engine sent it
    kind: str
    n_items: int


class SimGateway(Gateway):
    """The engine's Gateway over a SimConnection; round-trip times from the simulated clock.

    ``on_sent`` is called for every action with (t, kind, n_items, context) for the backtest's log."""

    def __init__(self, conn: SimConnection, http: SimHttp, clock: Callable[[], float], *,
                 post_timeout_s: float = 5.0,
                 on_sent: Callable[[float, str, int, object], None] | None = None) -> None:
        super().__init__(conn, http, order_path="ws", post_timeout_s=post_timeout_s, clock=clock)
        self.on_sent = on_sent

    def send_action(self, payload: dict | bytes, kind: str, context: object = None, n_items: int = 1) -> int:
        if self.on_sent is not None:
            self.on_sent(self._clock(), kind, n_items, context)
        return super().send_action(payload, kind, context, n_items)

    def on_post(self, data: object) -> PostReply | None:
        post_id = data.get("id") if isinstance(data, dict) else None
        pending = self.pending.get(post_id) if isinstance(post_id, int) else None
        reply = super().on_post(data)
        if reply is not None and pending is not None:
            reply.rtt_ms = (self._clock() - pending.sent_at) * 1e3  # not the wall clock: deterministic
        return reply
