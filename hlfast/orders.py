"""Order state machine keyed by client order id (cloid), with exact fill accounting.

Every order the engine creates gets a cloid and a slot (0..max_orders-1, reused once the
order is terminal); an optional listener mirrors the live orders slot by slot (the reconcile
kernel implements it).  Inputs arrive from three unordered sources — action replies,
``orderUpdates`` and user fills — and from resync snapshots.  The machine is built so that
any interleaving, duplicate or stale copy of those inputs gives the same result:

* position, cash, fees, volume and realised PnL move only on fills, deduplicated by
  (tid, oid), whatever order the fills belong to (unknown orders included);
* terminal states are sticky: a late "resting" or "open" for a cancelled/filled order is stale;
* the remaining size of an order is the minimum of what the fills and the exchange imply;
* an order the exchange shows open but nobody tracks is adopted and queued for cancellation.

Sizes are ``Decimal`` internally (parsed from the wire strings) and floats at the API edge.
"""
from __future__ import annotations

import logging
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Sequence
from decimal import Context, Decimal, InvalidOperation, localcontext
from enum import IntEnum
from typing import Any, Protocol

from hlfast.signer import CloidGenerator

__all__ = ["OrderListener", "OrderState", "OrderStateMachine", "PositionAdjustment", "TrackedOrder", "LIVE_STATES",
           "REJECT_REASONS", "TERMINAL_STATES", "fill_key", "reject_reason"]

log = logging.getLogger(__name__)

_ZERO = Decimal(0)
_EXACT = Context(prec=60)  # wide enough that sums/products of wire decimals never round
_GONE_TEXTS = ("never placed", "already canceled", "canceled or filled", "cannot modify")
_SUSPECTS_MAX = 1024

# Exchange reject texts (protocol.md §3.5) and reject statuses (§2.1) -> a small fixed set of reason codes,
# so metric labels stay bounded (the texts carry prices, e.g. "bbo was 6005.1@6005.2").  Matched on the
# lower-cased text with spaces removed, first match wins ("Post only ..." and "badAloPxRejected" alike).
_REJECT_PATTERNS: tuple[tuple[str, str], ...] = (
    ("toomanycumulativerequests", "rate_limit"), ("ratelimit", "rate_limit"), ("http429", "rate_limit"),
    ("toomanyopenorders", "too_many_orders"),
    ("nonce", "nonce"),
    ("doesnotexist", "unknown_signer"), ("recoversigner", "unknown_signer"), ("mustdeposit", "unknown_signer"),
    ("postonly", "alo_cross"), ("badalopx", "alo_cross"),
    ("minimumvalue", "min_value"), ("mintradentl", "min_value"),
    ("ticksize", "tick"), ("tickrejected", "tick"),
    ("invalidprice", "invalid_price"),
    ("invalidsize", "invalid_size"), ("zerosize", "invalid_size"),
    ("openinterest", "open_interest"),
    ("oracle", "oracle"), ("awayfromthereference", "oracle"),
    ("reduceonly", "reduce_only"),
    ("margin", "margin"), ("maxposition", "margin"),
)
REJECT_REASONS = ("alo_cross", "min_value", "tick", "invalid_price", "invalid_size", "margin", "reduce_only",
                  "rate_limit", "nonce", "unknown_signer", "oracle", "open_interest", "too_many_orders", "other")


def reject_reason(text: str) -> str:
    """The reason code (one of REJECT_REASONS) of an exchange reject text or status."""
    flat = str(text).lower().replace(" ", "")
    for pattern, code in _REJECT_PATTERNS:
        if pattern in flat:
            return code
    return "other"


def fill_key(fill: dict) -> tuple:
    """What identifies one fill across userFills messages, snapshots and userFillsByTime rows."""
    oid = fill.get("oid")
    oid = None if oid is None else int(oid)
    tid = fill.get("tid")
    if tid is not None:
        return (tid, oid)
    return (fill.get("hash"), oid, fill.get("time"), fill["px"], fill["sz"])


class OrderState(IntEnum):
    PENDING_NEW = 0
    RESTING = 1
    PARTIALLY_FILLED = 2
    PENDING_MODIFY = 3
    PENDING_CANCEL = 4
    FILLED = 5
    CANCELLED = 6
    REJECTED = 7


LIVE_STATES = frozenset({OrderState.PENDING_NEW, OrderState.RESTING, OrderState.PARTIALLY_FILLED,
                         OrderState.PENDING_MODIFY, OrderState.PENDING_CANCEL})
TERMINAL_STATES = frozenset({OrderState.FILLED, OrderState.CANCELLED, OrderState.REJECTED})
_ON_BOOK = frozenset({OrderState.RESTING, OrderState.PARTIALLY_FILLED, OrderState.PENDING_MODIFY,
                      OrderState.PENDING_CANCEL})


class OrderListener(Protocol):
    """What the reconcile kernel implements to mirror live orders (sizes in coin units, t in s)."""

    def order_pending(self, slot: int, side: int, px_ticks: int, sz: float) -> None: ...

    def order_placed(self, slot: int, side: int, px_ticks: int, sz: float, displayed_at_px: float,
                     t: float) -> None: ...

    def order_resized(self, slot: int, sz: float) -> None: ...

    def order_gone(self, slot: int) -> None: ...


class TrackedOrder:
    """One order.  ``sz``/``filled`` describe its current incarnation (a modify starts a new one)."""

    __slots__ = ("slot", "cloid", "oid", "side", "px_ticks", "sz", "filled", "total_filled", "exch_remaining",
                 "state", "prev_state", "tif", "t_created", "t_changed", "acked", "adopted", "needs_cancel",
                 "inferred", "maybe_alive", "pending_px", "pending_sz", "old_oids", "reason")

    def __init__(self, slot: int, cloid: str | None, side: int, px_ticks: int, sz: Decimal, tif: str,
                 t: float) -> None:
        self.slot = slot
        self.cloid = cloid
        self.oid: int | None = None
        self.side = side
        self.px_ticks = px_ticks
        self.sz = sz
        self.filled = _ZERO
        self.total_filled = _ZERO
        self.exch_remaining = sz
        self.state = OrderState.PENDING_NEW
        self.prev_state = OrderState.PENDING_NEW
        self.tif = tif
        self.t_created = t
        self.t_changed = t
        self.acked = False  # the exchange has confirmed the order exists (ack, update or snapshot)
        self.adopted = False  # found on the exchange, not created here; to be cancelled
        self.needs_cancel = False  # a cancel must be (re)sent once the order is known to rest
        self.inferred = False  # terminal state deduced (cancel error, absent from snapshot), not reported
        self.maybe_alive = False  # ended without ever being confirmed: news of it resting revives it
        self.pending_px = 0
        self.pending_sz = _ZERO
        self.old_oids: list[int] = []
        self.reason = ""

    @property
    def remaining(self) -> Decimal:
        left = self.sz - self.filled
        return min(left, self.exch_remaining) if left > 0 else _ZERO

    def __repr__(self) -> str:
        return (f"TrackedOrder(slot={self.slot}, cloid={self.cloid}, oid={self.oid}, side={self.side}, "
                f"px_ticks={self.px_ticks}, sz={self.sz}, remaining={self.remaining}, state={self.state.name})")


def _status_kind(status: str) -> str:
    if status == "open":
        return "open"
    if status == "filled":
        return "filled"
    if status == "triggered":
        return "ignore"
    if status == "rejected" or status.endswith("Rejected"):
        return "rejected"
    return "cancelled"  # canceled, *Canceled, scheduledCancel, internalCancel …


_EXACT_LOTS = 2.0 ** 52  # lot counts below this are exact in a double
_ON_GRID = 1e-6  # lots; a size this close to a whole lot count is on the grid


class OrderStateMachine:
    """Tracks this engine's orders for one coin (``coin=None`` accepts every coin)."""

    def __init__(self, max_orders: int = 128, listener: OrderListener | None = None, *, coin: str | None = None,
                 px_decimals: int = 0, displayed_size: Callable[[int, int], float] | None = None,
                 sz_decimals: int = 8, pending_grace_s: float = 5.0, cloids: CloidGenerator | None = None,
                 history: int = 4096, fill_memory: int = 200_000) -> None:
        if max_orders <= 0:
            raise ValueError("max_orders must be positive")
        self.max_orders = max_orders
        self.listener = listener
        self.coin = coin
        self.px_scale = Decimal(10) ** px_decimals  # limitPx → ticks for adopted orders
        self.displayed_size = displayed_size  # (side, px_ticks) → book size at that price
        self.pending_grace_s = pending_grace_s
        self._lot = Decimal(1).scaleb(-sz_decimals)  # order sizes are kept on this grid
        self._lot_exp = -sz_decimals
        self._lots_per_unit = float(10 ** sz_decimals)
        self._cloids = cloids or CloidGenerator()
        self._free = list(range(max_orders - 1, -1, -1))  # pop() hands out the lowest slot first
        self._slots: list[TrackedOrder | None] = [None] * max_orders
        self._by_cloid: dict[str, TrackedOrder] = {}
        self._by_oid: dict[int, TrackedOrder] = {}
        self._replaced: dict[int, TrackedOrder] = {}  # oids of earlier incarnations of live orders
        self._live: set[TrackedOrder] = set()
        self._finished_cloid: OrderedDict[str, TrackedOrder] = OrderedDict()
        self._finished_oid: OrderedDict[int, TrackedOrder] = OrderedDict()
        self._history = history
        self._early_fills: OrderedDict[int, Decimal] = OrderedDict()  # fills whose oid no order claims yet
        self._fill_keys: set[tuple] = set()
        self._fill_order: deque[tuple] = deque()
        self._fill_memory = fill_memory
        self._cancel_queue: list[tuple[int | None, str | None]] = []
        # accounting (exact)
        self._position = _ZERO
        self._cost = _ZERO  # signed entry notional of the open position
        self._cash = _ZERO
        self._fees = _ZERO
        self._volume = _ZERO
        self._realized = _ZERO
        self._exchange_closed_pnl = _ZERO
        self._position_f = 0.0
        self._cash_f = 0.0
        # counters
        self.fills = 0
        self.duplicate_fills = 0
        self.unmatched_fills = 0
        self.other_coin_events = 0
        self.stale_events = 0
        self.bad_events = 0
        self.rejects = 0
        self.adopted = 0
        self.slots_exhausted = 0
        self.listener_errors = 0
        self.last_bad_event = ""
        self.last_reject = ""
        self.rejects_by_reason: dict[str, int] = {}
        self.known_fills = 0  # fills that predate the session, registered so replays are ignored
        # the exchange reported more filled than the fills received (a userFills message may be lost)
        self.fill_gap_events = 0
        self._suspects: dict[TrackedOrder, bool] = {}  # order -> ended by inference (fill unknown)

    # ================================================================== queries
    @property
    def position(self) -> float:
        return self._position_f

    @property
    def cash(self) -> float:
        """USD: −Σ side·px·sz − fees."""
        return self._cash_f

    @property
    def fees(self) -> float:
        """USD paid (negative = rebates earned)."""
        return float(self._fees)

    @property
    def volume(self) -> float:
        """USD notional traded."""
        return float(self._volume)

    @property
    def realized_pnl(self) -> float:
        """USD, average-cost method, before fees."""
        return float(self._realized)

    @property
    def exchange_closed_pnl(self) -> float:
        """Σ closedPnl reported on the fills (cross-check of realized_pnl)."""
        return float(self._exchange_closed_pnl)

    def exact(self) -> dict[str, Decimal]:
        return {"position": self._position, "cash": self._cash, "fees": self._fees, "volume": self._volume,
                "realized_pnl": self._realized, "cost_basis": self._cost}

    def unrealized_pnl(self, mark_px: float) -> float:
        return float(self._position) * mark_px - float(self._cost)

    def resting(self) -> list[TrackedOrder]:
        """Orders on the exchange's book (acked, not terminal), adopted ones included."""
        return [o for o in self._live if o.state in _ON_BOOK and o.acked]

    def live(self) -> list[TrackedOrder]:
        return list(self._live)

    def _pending_size(self, side: int) -> float:
        total = _ZERO
        for o in self._live:
            if o.side == side and not o.adopted:
                total += o.remaining
        return float(total)

    @property
    def pending_bid_size(self) -> float:
        """Size that could still buy: remaining size of every live bid (pending, resting or being changed)."""
        return self._pending_size(1)

    @property
    def pending_ask_size(self) -> float:
        return self._pending_size(-1)

    def count(self, state: OrderState) -> int:
        if state in LIVE_STATES:
            return sum(1 for o in self._live if o.state == state)
        return sum(1 for o in self._finished_cloid.values() if o.state == state)

    def counts(self) -> dict[str, int]:
        """Live orders by state, and terminal states over the remembered history."""
        out = {s.name: 0 for s in OrderState}
        for o in self._live:
            out[o.state.name] += 1
        for o in self._finished_cloid.values():
            out[o.state.name] += 1
        return out

    @property
    def free_slots(self) -> int:
        return len(self._free)

    def by_slot(self, slot: int) -> TrackedOrder | None:
        return self._slots[slot] if 0 <= slot < self.max_orders else None

    def by_oid(self, oid: int) -> TrackedOrder | None:
        return self._by_oid.get(oid) or self._replaced.get(oid) or self._finished_oid.get(oid)

    def by_cloid(self, cloid: str) -> TrackedOrder | None:
        return self._by_cloid.get(cloid) or self._finished_cloid.get(cloid)

    def drain_cancels(self) -> list[tuple[int | None, str | None]]:
        """(oid, cloid) of orders that must be cancelled (adopted unknowns, orders that outlived a cancel)."""
        out, self._cancel_queue = self._cancel_queue, []
        return out

    # ================================================================== internals
    def _notify(self, method: str, *args: Any) -> None:
        if self.listener is None:
            return
        try:
            getattr(self.listener, method)(*args)
        except Exception as exc:  # a listener bug must not corrupt the order books
            self.listener_errors += 1
            if self.listener_errors <= 3:
                log.error("order listener %s failed: %r", method, exc)

    def _bad(self, what: str, exc: BaseException | None = None) -> bool:
        self.bad_events += 1
        self.last_bad_event = what if exc is None else f"{what}: {type(exc).__name__}"
        return False

    def _displayed(self, rec: TrackedOrder, given: float | None) -> float:
        if given is not None:
            return given
        if self.displayed_size is not None:
            try:
                return float(self.displayed_size(rec.side, rec.px_ticks))
            except Exception:
                return 0.0
        return 0.0

    def _size(self, sz: float) -> Decimal:
        """The size on the lot grid (half-even), built from an integer lot count when sz is on the grid."""
        f = float(sz)
        scaled = f * self._lots_per_unit
        if f and -_EXACT_LOTS < scaled < _EXACT_LOTS:
            lots = round(scaled)
            if lots and -_ON_GRID < scaled - lots < _ON_GRID:  # far from a half lot: as quantizing repr(f)
                return Decimal(lots).scaleb(self._lot_exp)
        return Decimal(repr(f)).quantize(self._lot)

    def _set_oid(self, rec: TrackedOrder, oid: int) -> None:
        if rec.oid == oid:
            return
        if rec.oid is not None and self._by_oid.get(rec.oid) is rec:
            del self._by_oid[rec.oid]
        rec.oid = oid
        self._by_oid[oid] = rec
        early = self._early_fills.pop(oid, None)
        if early is not None:
            rec.filled += early
            rec.total_filled += early

    def _retire_oid(self, rec: TrackedOrder) -> None:
        """The current incarnation was replaced by a modify; later news about it is stale."""
        if rec.oid is not None:
            self._by_oid.pop(rec.oid, None)
            self._replaced[rec.oid] = rec
            rec.old_oids.append(rec.oid)
            rec.oid = None

    def _suspect(self, rec: TrackedOrder, uncertain: bool = False) -> None:
        """The order may have fills that never reached us; the engine checks the position soon."""
        if not uncertain and rec.sz - rec.exch_remaining <= rec.filled:
            return
        if rec not in self._suspects and len(self._suspects) < _SUSPECTS_MAX:
            self._suspects[rec] = uncertain
            self.fill_gap_events += 1
        elif uncertain:
            self._suspects[rec] = True

    def fills_possibly_missing(self) -> bool:
        """Whether some order still shows more filled (or possibly filled) than its fills explain."""
        for rec, uncertain in list(self._suspects.items()):
            explained = rec.filled >= rec.sz if uncertain else rec.filled >= rec.sz - rec.exch_remaining
            if explained:
                del self._suspects[rec]
        return bool(self._suspects)

    def clear_suspects(self) -> None:
        """The position was checked against the exchange: every earlier suspicion is settled."""
        self._suspects.clear()

    def _remember(self, store: OrderedDict, key: Any, rec: TrackedOrder) -> None:
        store[key] = rec
        if len(store) > self._history:
            store.popitem(last=False)

    def _finish(self, rec: TrackedOrder, state: OrderState, t: float, *, inferred: bool = False,
                reason: str = "") -> None:
        if rec.state in TERMINAL_STATES:
            return
        rec.maybe_alive = inferred and not rec.acked
        if state == OrderState.CANCELLED and rec.filled > 0 and rec.remaining <= 0:
            state = OrderState.FILLED
        if inferred and state == OrderState.CANCELLED and rec.filled < rec.sz:
            self._suspect(rec, uncertain=True)  # "cancelled or filled": its fills may have been lost
        rec.state = state
        rec.inferred = inferred
        rec.t_changed = t
        if reason:
            rec.reason = reason
        self._live.discard(rec)
        if rec.cloid is not None and self._by_cloid.get(rec.cloid) is rec:
            del self._by_cloid[rec.cloid]
            self._remember(self._finished_cloid, rec.cloid, rec)
        for oid in [rec.oid, *rec.old_oids]:
            if oid is None:
                continue
            if self._by_oid.get(oid) is rec:
                del self._by_oid[oid]
            if self._replaced.get(oid) is rec:
                del self._replaced[oid]
            self._remember(self._finished_oid, oid, rec)
        if rec.slot >= 0:
            self._slots[rec.slot] = None
            self._free.append(rec.slot)
            self._notify("order_gone", rec.slot)

    def _mark_on_book(self, rec: TrackedOrder, t: float, displayed_at_px: float | None) -> None:
        """The order is confirmed on the book; settle PENDING_NEW and re-queue wanted cancels."""
        was_acked = rec.acked
        rec.acked = True
        if rec.remaining <= 0:
            self._finish(rec, OrderState.FILLED, t)
            return
        if rec.state == OrderState.PENDING_NEW:
            rec.state = OrderState.PARTIALLY_FILLED if rec.filled > 0 else OrderState.RESTING
            rec.t_changed = t
            if rec.slot >= 0:
                self._notify("order_placed", rec.slot, rec.side, rec.px_ticks, float(rec.remaining),
                             self._displayed(rec, displayed_at_px), t)
        if rec.needs_cancel and (not was_acked or rec.state != OrderState.PENDING_CANCEL):
            # a cancel raced ahead of the order (or hit an older incarnation): send another one
            rec.needs_cancel = False
            rec.state = OrderState.PARTIALLY_FILLED if rec.filled > 0 else OrderState.RESTING
            self._cancel_queue.append((rec.oid, rec.cloid))

    def _resize(self, rec: TrackedOrder, before: Decimal, t: float) -> None:
        after = rec.remaining
        if after <= 0:
            self._finish(rec, OrderState.FILLED, t)
            return
        if after != before:
            if rec.state == OrderState.RESTING:
                rec.state = OrderState.PARTIALLY_FILLED
            if rec.slot >= 0:
                self._notify("order_resized", rec.slot, float(after))

    def _adopt(self, row: dict, t: float) -> TrackedOrder | None:
        """Track an open order nobody here created, and queue its cancellation."""
        oid = int(row["oid"])
        if oid in self._by_oid:
            return self._by_oid[oid]
        cloid = row.get("cloid")
        side = 1 if row.get("side") == "B" else -1
        px_ticks = int((Decimal(str(row.get("limitPx", "0"))) * self.px_scale).to_integral_value())
        sz = Decimal(str(row.get("sz", "0")))
        rec = TrackedOrder(-1, cloid, side, px_ticks, sz, "Gtc", t)
        rec.adopted = True
        rec.acked = True
        rec.state = OrderState.RESTING
        self._live.add(rec)
        self._set_oid(rec, oid)
        if cloid is not None and cloid not in self._by_cloid:
            self._by_cloid[cloid] = rec
        self.adopted += 1
        self._cancel_queue.append((oid, cloid))
        log.warning("adopting unknown open order oid=%s cloid=%s for cancellation", oid, cloid)
        return rec

    def _find(self, key: int | str) -> TrackedOrder | None:
        if isinstance(key, str):
            return self._by_cloid.get(key)
        return self._by_oid.get(key)

    def _resolve(self, cloid: str | None, oid: int | None) -> tuple[str, TrackedOrder | None]:
        """Classify an exchange report: current / incarnation (new oid of a pending modify) /
        replaced / finished / unknown."""
        if oid is not None:
            rec = self._by_oid.get(oid)
            if rec is not None:
                return "current", rec
            rec = self._replaced.get(oid)
            if rec is not None:
                return "replaced", rec
        if cloid is not None:
            rec = self._by_cloid.get(cloid)
            if rec is not None:
                if oid is None:
                    return "current", rec
                if rec.pending_sz > 0:  # a modify is outstanding and this oid is not the old one
                    return "incarnation", rec
                if rec.oid is None:
                    return "current", rec
                return "replaced", rec  # an oid never seen under a live cloid: an older incarnation
        if oid is not None and oid in self._finished_oid:
            return "finished", self._finished_oid[oid]
        if cloid is not None and cloid in self._finished_cloid:
            return "finished", self._finished_cloid[cloid]
        return "unknown", None

    def _new_incarnation(self, rec: TrackedOrder, oid: int, t: float) -> None:
        """A pending modify took effect: the order now lives under ``oid`` with the new price/size."""
        if rec.oid is not None and rec.oid != oid:
            self._retire_oid(rec)
        rec.px_ticks = rec.pending_px
        rec.sz = rec.pending_sz
        rec.filled = _ZERO
        rec.exch_remaining = rec.sz
        if rec.state == OrderState.PENDING_MODIFY:
            rec.state = OrderState.PENDING_NEW  # settled by _mark_on_book below
        elif rec.state == OrderState.PENDING_CANCEL:
            rec.needs_cancel = True  # the cancel may have hit the old incarnation only
            rec.acked = False
        self._set_oid(rec, oid)

    # ================================================================== engine-side events
    def accepts_order(self, side: int, sz: float) -> bool:
        """Whether new_order would take this side and size (a free slot aside)."""
        return (side == 1 or side == -1) and sz > 0 and self._size(sz) > 0

    def next_cloid(self) -> str:
        """Draw the next cloid, for an order signed before it is registered with new_order(cloid=...)."""
        return self._cloids.next()

    def new_order(self, side: int, px_ticks: int, sz: float, t: float, tif: str = "Alo",
                  cloid: str | None = None) -> tuple[int, str]:
        """Register an order about to be sent (or just sent, under a cloid from next_cloid()).

        Returns (slot, cloid), or (-1, "") when the order is refused or no slot is free."""
        size = self._size(sz) if sz > 0 else _ZERO
        if (side != 1 and side != -1) or size <= 0:
            self._bad(f"new_order with side={side} sz={sz}")
            return -1, ""
        if not self._free:
            self.slots_exhausted += 1
            return -1, ""
        slot = self._free.pop()
        if cloid is None:
            cloid = self._cloids.next()
        rec = TrackedOrder(slot, cloid, side, int(px_ticks), size, tif, t)
        self._slots[slot] = rec
        self._by_cloid[cloid] = rec
        self._live.add(rec)
        self._notify("order_pending", slot, side, rec.px_ticks, float(sz))
        return slot, cloid

    def on_cancel_sent(self, key: int | str, t: float = 0.0) -> bool:
        """A cancel for the order (cloid or oid) went out."""
        rec = self._find(key)
        if rec is None or rec.state in TERMINAL_STATES:
            return False
        if rec.state != OrderState.PENDING_CANCEL:
            rec.prev_state = rec.state
            rec.state = OrderState.PENDING_CANCEL
        rec.needs_cancel = False
        rec.t_changed = t
        return True

    def on_modify_sent(self, cloid: str, px_ticks: int, sz: float, t: float = 0.0) -> bool:
        """A batchModify for the order went out (the replacement keeps the same cloid)."""
        rec = self._by_cloid.get(cloid)
        if rec is None or rec.state not in (OrderState.RESTING, OrderState.PARTIALLY_FILLED) or not sz > 0:
            return False
        if self._size(sz) <= 0:
            return False
        rec.prev_state = rec.state
        rec.state = OrderState.PENDING_MODIFY
        rec.pending_px = int(px_ticks)
        rec.pending_sz = self._size(sz)
        rec.t_changed = t
        return True

    # ================================================================== action replies
    def on_place_status(self, cloid: str, status: Any, t: float = 0.0, displayed_at_px: float | None = None) -> bool:
        """One entry of an order reply's ``statuses`` for the order with this cloid."""
        try:
            rec = self._by_cloid.get(cloid)
            if rec is None:
                return self._late_reply(cloid, status, t)
            if isinstance(status, dict) and "resting" in status:
                self._set_oid(rec, int(status["resting"]["oid"]))
                self._mark_on_book(rec, t, displayed_at_px)
            elif isinstance(status, dict) and "filled" in status:
                filled = status["filled"]
                self._set_oid(rec, int(filled["oid"]))
                before = rec.remaining
                rec.exch_remaining = min(rec.exch_remaining, rec.sz - Decimal(str(filled["totalSz"])))
                self._suspect(rec)
                if rec.remaining <= 0 or rec.tif == "Ioc":
                    rec.acked = True
                    self._finish(rec, OrderState.FILLED, t)
                else:
                    self._mark_on_book(rec, t, displayed_at_px)
                    if rec.state not in TERMINAL_STATES:
                        self._resize(rec, before, t)
            elif isinstance(status, dict) and "error" in status:
                self._reject(rec, str(status["error"]), t)
            elif status in ("waitingForFill", "waitingForTrigger"):
                return True
            else:
                return self._bad(f"unknown place status {status!r}")
            return True
        except (KeyError, TypeError, ValueError, InvalidOperation) as exc:
            return self._bad("malformed place status", exc)

    def _count_reject(self, text: str) -> None:
        self.rejects += 1
        self.last_reject = text
        code = reject_reason(text)
        seen = self.rejects_by_reason.get(code, 0)
        self.rejects_by_reason[code] = seen + 1
        if not seen:  # the full text once per reason; counts go to metrics under the code
            log.warning("order rejected (%s, logged once per reason): %.300s", code, text)

    def _reject(self, rec: TrackedOrder, text: str, t: float) -> None:
        self._count_reject(text)
        if rec.filled > 0:  # it traded before the reject reached us: it existed after all
            self._finish(rec, OrderState.CANCELLED, t, reason=text)
        else:
            self._finish(rec, OrderState.REJECTED, t, reason=text)

    def _late_reply(self, cloid: str, status: Any, t: float) -> bool:
        rec = self._finished_cloid.get(cloid)
        oid = None
        if isinstance(status, dict):
            body = status.get("resting") or status.get("filled")
            if isinstance(body, dict) and "oid" in body:
                oid = int(body["oid"])
        if rec is None:
            self.stale_events += 1
            if oid is not None and isinstance(status, dict) and "resting" in status:
                self._adopt({"oid": oid, "cloid": cloid}, t)
            return False
        if oid is not None and rec.oid is None:
            rec.oid = oid
            self._remember(self._finished_oid, oid, rec)
        if oid is not None and "resting" in status and rec.maybe_alive:
            self._adopt({"oid": oid, "cloid": cloid, "side": "B" if rec.side == 1 else "A",
                         "limitPx": str(rec.px_ticks / self.px_scale), "sz": str(rec.remaining)}, t)
        self.stale_events += 1
        return False

    def on_place_batch_error(self, cloids: Iterable[str], text: str, t: float = 0.0) -> None:
        """The whole order action failed (``{"status":"err"}``): none of the orders exists."""
        for cloid in cloids:
            rec = self._by_cloid.get(cloid)
            if rec is not None and rec.state == OrderState.PENDING_NEW:
                self._reject(rec, text, t)

    def on_cancel_status(self, key: int | str, status: Any, t: float = 0.0) -> bool:
        """One entry of a cancel reply's ``statuses``: "success" or {"error": text}."""
        rec = self._find(key)
        if rec is None:
            self.stale_events += 1
            return False
        if status == "success":
            self._finish(rec, OrderState.CANCELLED, t)
            return True
        if not isinstance(status, dict) or "error" not in status:
            return self._bad(f"unknown cancel status {status!r}")
        text = str(status["error"])
        if rec.remaining <= 0:
            self._finish(rec, OrderState.FILLED, t)
        elif not rec.acked:
            # the cancel overtook the order; if the order lands after all it is cancelled again
            rec.needs_cancel = True
            if rec.state != OrderState.PENDING_CANCEL:
                rec.prev_state, rec.state = rec.state, OrderState.PENDING_CANCEL
        elif any(s in text for s in _GONE_TEXTS):
            self._finish(rec, OrderState.CANCELLED, t, inferred=True, reason=text)
        else:  # the order still rests; let the engine decide again
            if rec.state == OrderState.PENDING_CANCEL:
                rec.state = rec.prev_state if rec.prev_state in _ON_BOOK else OrderState.RESTING
            rec.reason = text
        return True

    def on_cancel_batch_error(self, keys: Iterable[int | str], text: str, t: float = 0.0) -> None:
        """The whole cancel action failed: the orders are as they were."""
        for key in keys:
            rec = self._find(key)
            if rec is not None and rec.state == OrderState.PENDING_CANCEL:
                rec.state = rec.prev_state
                rec.reason = text

    def on_modify_status(self, cloid: str, status: Any, t: float = 0.0, displayed_at_px: float | None = None) -> bool:
        """One entry of a batchModify reply's ``statuses`` for the order with this cloid."""
        try:
            rec = self._by_cloid.get(cloid)
            if rec is None:
                self.stale_events += 1
                return False
            if rec.state not in (OrderState.PENDING_MODIFY, OrderState.PENDING_CANCEL) or rec.pending_sz <= 0:
                self.stale_events += 1
                return False
            if isinstance(status, dict) and ("resting" in status or "filled" in status):
                body = status.get("resting") or status["filled"]
                oid = int(body["oid"])
                if oid != rec.oid or rec.state == OrderState.PENDING_MODIFY:
                    self._new_incarnation(rec, oid, t)
                rec.pending_sz = _ZERO
                if "filled" in status:
                    rec.exch_remaining = min(rec.exch_remaining, rec.sz - Decimal(str(body["totalSz"])))
                    self._suspect(rec)
                self._mark_on_book(rec, t, displayed_at_px)
            elif isinstance(status, dict) and "error" in status:
                self._modify_failed(rec, str(status["error"]), t)
            else:
                return self._bad(f"unknown modify status {status!r}")
            return True
        except (KeyError, TypeError, ValueError, InvalidOperation) as exc:
            return self._bad("malformed modify status", exc)

    def _modify_failed(self, rec: TrackedOrder, text: str, t: float) -> None:
        rec.pending_sz = _ZERO
        rec.reason = text
        if rec.oid is None or any(s in text.lower() for s in _GONE_TEXTS):
            # the old incarnation is gone (cancelled or filled) and no new one was made: a race, not a refusal
            self._finish(rec, OrderState.CANCELLED, t, inferred=True, reason=text)
            return
        self._count_reject(text)  # the exchange refused the new price/size: a reject like a refused place
        if rec.state == OrderState.PENDING_MODIFY:
            rec.state = rec.prev_state

    def on_modify_batch_error(self, cloids: Iterable[str], text: str, t: float = 0.0) -> None:
        """The whole batchModify failed: the orders are as they were."""
        for cloid in cloids:
            rec = self._by_cloid.get(cloid)
            if rec is not None and rec.state == OrderState.PENDING_MODIFY:
                rec.state = rec.prev_state
                rec.pending_sz = _ZERO
                rec.reason = text

    # whole /exchange replies, for the gateway -------------------------------------------------
    def on_order_response(self, cloids: Sequence[str], response: Any, t: float = 0.0) -> None:
        statuses = _statuses(response)
        if statuses is None:
            self.on_place_batch_error(cloids, _error_text(response), t)
            return
        self._per_item(cloids, statuses, self.on_place_status, t)

    def on_cancel_response(self, keys: Sequence[int | str], response: Any, t: float = 0.0) -> None:
        statuses = _statuses(response)
        if statuses is None:
            self.on_cancel_batch_error(keys, _error_text(response), t)
            return
        self._per_item(keys, statuses, self.on_cancel_status, t)

    def on_modify_response(self, cloids: Sequence[str], response: Any, t: float = 0.0) -> None:
        statuses = _statuses(response)
        if statuses is None:
            self.on_modify_batch_error(cloids, _error_text(response), t)
            return
        self._per_item(cloids, statuses, self.on_modify_status, t)

    def _per_item(self, keys: Sequence[Any], statuses: list, handler: Callable[..., bool], t: float) -> None:
        if len(statuses) == 1 and len(keys) > 1 and isinstance(statuses[0], dict) and "error" in statuses[0]:
            statuses = statuses * len(keys)  # one pre-validation error stands for the whole batch
        if len(statuses) != len(keys):
            self._bad(f"{len(statuses)} statuses for {len(keys)} items")
        for key, status in zip(keys, statuses, strict=False):
            handler(key, status, t)

    # ================================================================== exchange streams
    def on_order_update(self, ws_order: dict, t: float = 0.0) -> bool:
        """One element of an ``orderUpdates`` frame."""
        try:
            order = ws_order["order"]
            if self.coin is not None and order.get("coin") != self.coin:
                self.other_coin_events += 1
                return False
            oid = int(order["oid"])
            cloid = order.get("cloid")
            kind = _status_kind(str(ws_order["status"]))
            if kind == "ignore":
                return True
            where, rec = self._resolve(cloid, oid)
            if where == "unknown" or (where == "finished" and rec.maybe_alive):
                if kind == "open":
                    self._adopt(order, t)
                    return True
                self.stale_events += 1
                return False
            if where in ("replaced", "finished"):
                self.stale_events += 1
                return False
            if where == "incarnation":
                self._new_incarnation(rec, oid, t)
                rec.pending_sz = _ZERO
            if rec.oid is None:
                self._set_oid(rec, oid)
            if kind == "open":
                before = rec.remaining
                rec.exch_remaining = min(rec.exch_remaining, Decimal(str(order["sz"])))
                self._suspect(rec)
                self._mark_on_book(rec, t, None)
                if rec.state not in TERMINAL_STATES:
                    self._resize(rec, before, t)
            elif kind == "filled":
                rec.acked = True
                rec.exch_remaining = _ZERO
                self._suspect(rec)
                self._finish(rec, OrderState.FILLED, t)
            elif kind == "rejected":
                self._reject(rec, str(ws_order["status"]), t)
            elif rec.state == OrderState.PENDING_MODIFY and where == "current":
                self._retire_oid(rec)  # cancel-replace: the old oid goes, the new one follows
            else:
                self._finish(rec, OrderState.CANCELLED, t, reason=str(ws_order["status"]))
            return True
        except (KeyError, TypeError, ValueError, InvalidOperation) as exc:
            return self._bad("malformed order update", exc)

    def on_fill(self, fill: dict, t: float = 0.0) -> bool:
        """One user fill (userFills / userEvents).  Returns False for duplicates and bad input."""
        try:
            if self.coin is not None and fill.get("coin") != self.coin:
                self.other_coin_events += 1
                return False
            key = fill_key(fill)
            oid = key[1]
            if key in self._fill_keys:
                self.duplicate_fills += 1
                return False
            side_text = fill["side"]
            if side_text not in ("B", "A"):
                return self._bad(f"fill side {side_text!r}")
            side = 1 if side_text == "B" else -1
            px = Decimal(str(fill["px"]))
            sz = Decimal(str(fill["sz"]))
            fee = Decimal(str(fill.get("fee", "0")))
            closed = Decimal(str(fill.get("closedPnl", "0")))
            if not (px > 0 and sz > 0) or not fee.is_finite() or not closed.is_finite():
                return self._bad("fill with non-positive price/size or non-finite fee")
        except (KeyError, TypeError, ValueError, InvalidOperation) as exc:
            return self._bad("malformed fill", exc)
        self._remember_fill(key)
        self.fills += 1
        self._account(side, px, sz, fee, closed)
        self._attribute(fill.get("cloid"), oid, sz, t)
        return True

    def _remember_fill(self, key: tuple) -> None:
        self._fill_keys.add(key)
        self._fill_order.append(key)
        if len(self._fill_order) > self._fill_memory:
            self._fill_keys.discard(self._fill_order.popleft())

    def has_fill(self, fill: dict) -> bool:
        try:
            return fill_key(fill) in self._fill_keys
        except (KeyError, TypeError, ValueError):
            return False

    def mark_known_fills(self, fills: Iterable[Any]) -> int:
        """Register fills that predate the session (already in the start position): replays are duplicates."""
        n = 0
        for fill in fills:
            try:
                if not isinstance(fill, dict) or (self.coin is not None and fill.get("coin") != self.coin):
                    continue
                key = fill_key(fill)
            except (KeyError, TypeError, ValueError):
                continue
            if key not in self._fill_keys:
                self._remember_fill(key)
                n += 1
        self.known_fills += n
        return n

    def _account(self, side: int, px: Decimal, sz: Decimal, fee: Decimal, closed: Decimal) -> None:
        self._account_exact(side, px, sz, fee, closed)
        # float views, read on every risk pass: converted once per fill, not once per read
        self._position_f = float(self._position)
        self._cash_f = float(self._cash)

    def _account_exact(self, side: int, px: Decimal, sz: Decimal, fee: Decimal, closed: Decimal) -> None:
        with localcontext(_EXACT):
            self._cash -= side * px * sz + fee
            self._fees += fee
            self._volume += px * sz
            self._exchange_closed_pnl += closed
            pos = self._position
            if pos == 0 or (pos > 0) == (side > 0):
                self._position = pos + side * sz
                self._cost += side * sz * px
                return
            held = abs(pos)
            closing = min(sz, held)
            avg = self._cost / pos  # average entry price
            self._realized += (px - avg) * closing * (1 if pos > 0 else -1)
            left = held - closing
            self._cost = self._cost * left / held if left > 0 else _ZERO
            self._position = pos + side * closing
            rest = sz - closing
            if rest > 0:  # flipped through zero: the rest opens a new position at px
                self._position = side * rest
                self._cost = side * rest * px

    def _attribute(self, cloid: str | None, oid: int | None, sz: Decimal, t: float) -> None:
        where, rec = self._resolve(cloid, oid)
        if where == "current":
            if oid is not None and rec.oid is None:
                self._set_oid(rec, oid)
            before = rec.remaining
            rec.filled += sz
            rec.total_filled += sz
            if rec.state == OrderState.PENDING_NEW and rec.remaining > 0:
                return  # fill before ack: the ack (or an update) will put it on the book
            self._resize(rec, before, t)
        elif where == "incarnation":
            if oid is not None:  # fill on the replacement before the modify reply: keep it for the new oid
                self._early_fill(oid, sz)
        elif where == "finished":
            rec.total_filled += sz
            if oid is None or oid == rec.oid:
                rec.filled += sz
                if rec.state == OrderState.CANCELLED and rec.inferred and rec.sz - rec.filled <= 0:
                    rec.state = OrderState.FILLED  # the "cancelled" order had in fact filled
        elif where == "replaced":
            rec.total_filled += sz
        else:
            self.unmatched_fills += 1
            if oid is not None:
                self._early_fill(oid, sz)

    def _early_fill(self, oid: int, sz: Decimal) -> None:
        self._early_fills[oid] = self._early_fills.get(oid, _ZERO) + sz
        if len(self._early_fills) > self._history:
            self._early_fills.popitem(last=False)

    # ================================================================== resync
    def on_open_orders(self, snapshot: Iterable[dict], t: float = 0.0,
                       t_request: float | None = None) -> list[tuple[int | None, str | None]]:
        """Reconcile with an ``openOrders`` snapshot taken at ``t_request`` (engine seconds).

        Unknown open orders are adopted; tracked orders absent from it are marked gone (orders
        sent after the request, or pending for less than ``pending_grace_s``, are left alone).
        Returns (and clears) every (oid, cloid) that must now be cancelled.
        """
        seen: set[int] = set()
        for row in snapshot:
            try:
                if self.coin is not None and row.get("coin") != self.coin:
                    continue
                oid = int(row["oid"])
                cloid = row.get("cloid")
                seen.add(oid)
                where, rec = self._resolve(cloid, oid)
                if where == "incarnation":
                    self._new_incarnation(rec, oid, t)
                    rec.pending_sz = _ZERO
                    where = "current"
                if where == "current":
                    if rec.oid is None:
                        self._set_oid(rec, oid)
                    before = rec.remaining
                    rec.exch_remaining = min(rec.exch_remaining, Decimal(str(row["sz"])))
                    self._suspect(rec)
                    self._mark_on_book(rec, t, None)
                    if rec.state not in TERMINAL_STATES:
                        self._resize(rec, before, t)
                elif where == "finished" and t_request is not None and rec.t_changed > t_request:
                    continue  # it ended after the snapshot was taken
                else:
                    self._adopt(row, t)
            except (KeyError, TypeError, ValueError, InvalidOperation) as exc:
                self._bad("malformed open order", exc)
        for rec in list(self._live):
            if rec.oid is not None and rec.oid in seen:
                continue
            if not rec.acked or rec.oid is None:
                # never confirmed (or between incarnations): it may still be in flight
                gone = t_request is not None and rec.t_changed < t_request - self.pending_grace_s
            else:
                gone = t_request is None or rec.t_changed <= t_request
            if gone:
                self._finish(rec, OrderState.CANCELLED, t, inferred=True, reason="absent from open orders")
        return self.drain_cancels()


def _statuses(response: Any) -> list | None:
    try:
        if response.get("status") != "ok":
            return None
        return list(response["response"]["data"]["statuses"])
    except (AttributeError, KeyError, TypeError):
        return None


def _error_text(response: Any) -> str:
    if isinstance(response, dict):
        return str(response.get("response", response))
    return str(response)


class PositionAdjustment:
    """Position taken from the exchange because no fill explained it, netted against fills that arrive later.

    ``adopt(delta, as_of_ms, mark)`` records that the start position was moved by ``delta`` (coin units) at
    exchange time ``as_of_ms``; a fill first seen afterwards, executed at or before ``as_of_ms`` and in the
    same direction, is already part of that move: ``net`` returns how much of it to take back out of the
    start position, so the fill is not counted twice.  ``cost`` is the adopted size valued at the marks it
    was adopted at (USD), for PnL.
    """

    __slots__ = ("outstanding", "as_of_ms", "cost", "adoptions", "netted_fills")

    def __init__(self) -> None:
        self.outstanding = 0.0
        self.as_of_ms = 0
        self.cost = 0.0
        self.adoptions = 0
        self.netted_fills = 0

    def adopt(self, delta: float, as_of_ms: int, mark: float) -> None:
        if delta == 0:
            return
        self.adoptions += 1
        self.as_of_ms = max(self.as_of_ms, int(as_of_ms))
        if self.outstanding and (self.outstanding > 0) != (delta > 0):
            # an opposite move first cancels what is outstanding
            take = min(abs(delta), abs(self.outstanding))
            self._reduce(take if self.outstanding > 0 else -take)
            delta += take if delta < 0 else -take
        if delta:
            self.outstanding = round(self.outstanding + delta, 12)
            self.cost += delta * mark

    def net(self, signed_sz: float, time_ms: int) -> float:
        """The part of a newly seen fill (signed coin units) that the adoption already counted."""
        if not self.outstanding or time_ms > self.as_of_ms or signed_sz == 0:
            return 0.0
        if (signed_sz > 0) != (self.outstanding > 0):
            return 0.0
        take = min(abs(signed_sz), abs(self.outstanding))
        take = take if signed_sz > 0 else -take
        self._reduce(take)
        self.netted_fills += 1
        return take

    def _reduce(self, amount: float) -> None:
        share = amount / self.outstanding
        self.cost -= self.cost * share
        self.outstanding = round(self.outstanding - amount, 12)
        if self.outstanding == 0:
            self.cost = 0.0
