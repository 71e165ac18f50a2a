"""Matching for the local venue: our orders against a displayed market book that we do not own.

Model (per coin, per side):
- The market source publishes a full book each block; our resting orders sit in a FIFO per price level, each with
  `queue_ahead` = displayed market size at its price when it arrived.
- A market trade at our price first depletes the queue ahead of each of our orders, the excess fills us. A trade
  through our price, or a new snapshot whose opposite best price reaches ours, fills us at our price (as maker).
- On a snapshot, displayed size that vanished beyond the traded volume is cancellation: "risk_averse" assumes it
  all came from behind us (queue_ahead ← min(queue_ahead, displayed)); "probabilistic" attributes a share
  1 − p_back, p_back = b²/(b² + f²), to the front.
- Crossing IOC/GTC orders take the displayed market size (removed until the next snapshot) and other accounts'
  resting orders, level by level; the taker's own resting orders met on the way are cancelled (selfTradeCanceled).
- Our resting orders are merged into the published book (size and `n` added at their level).
Prices are int ticks (10^-(6 - szDecimals)), sizes int lots (10^-szDecimals).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from hlfast.venue.auth import keccak256
from hlfast.venue.ledger import Ledger, format_scaled, format_usd

BOOK_DEPTH = 20
MAX_NUMBER_CHARS = 64  # longer decimal text is no price or size (and int() refuses > 4300 digits)
MIN_ORDER_MICRO_USD = 10_000_000  # $10: lots × ticks is micro-USD
MAX_OPEN_ORDERS = 1_000
TID_MASK = (1 << 50) - 1
CROWD_SIZE = 64
BID, ASK = 0, 1

ERR_PRICE = "Order has invalid price."
ERR_TICK = "Price must be divisible by tick size."
ERR_SIZE = "Order has invalid size."
ERR_ZERO = "Order has zero size."
ERR_MIN_VALUE = "Order must have minimum value of $10."
ERR_MARGIN = "Insufficient margin to place order."
ERR_REDUCE_ONLY = "Reduce only order would increase position."
ERR_IOC = "Order could not immediately match against any resting orders."
ERR_CANCEL = "Order was never placed, already canceled, or filled."
ERR_MODIFY = "Cannot modify canceled or filled order"
ERR_TOO_MANY = "Too many open orders."
ERR_TRIGGER = "Trigger orders are not supported by this venue."
ERR_TIF = "Order has invalid tif."
ERR_ASSET = "Order has invalid asset."


def parse_scaled(value: Any, decimals: int) -> int | None:
    """Decimal text → integer count of 10^-decimals, or None if malformed, negative or too precise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        text = str(value)
    elif isinstance(value, str):
        text = value
    else:
        return None
    if not text.isascii() or len(text) > MAX_NUMBER_CHARS:
        return None
    whole, _, frac = text.partition(".")
    if not whole.isdigit() or (frac and not frac.isdigit()):
        return None
    frac = frac.rstrip("0")
    if len(frac) > decimals:
        return None
    return int(whole) * 10**decimals + (int(frac.ljust(decimals, "0")) if frac else 0)


def shown(value: Any) -> str:
    """A client's value for an error text; str() of JSON nested ~1000 deep hits the recursion limit."""
    try:
        return str(value)
    except RecursionError:
        return "<nested too deeply>"


def check_price(value: Any, px_decimals: int) -> tuple[int, str | None]:
    """Hyperliquid's rule: ≤ px_decimals decimals and ≤ 5 significant figures unless integer; > 0."""
    ticks = parse_scaled(value, px_decimals)
    if ticks is None or ticks <= 0:
        return 0, ERR_PRICE
    if ticks % 10**px_decimals and len(str(ticks).rstrip("0")) > 5:
        return 0, ERR_TICK
    return ticks, None


def _crowd_address(index: int) -> str:
    return "0x" + keccak256(b"hlfast-venue-crowd-%d" % index)[-20:].hex()


CROWD = [_crowd_address(i) for i in range(CROWD_SIZE)]


@dataclass(slots=True)
class RestingOrder:
    oid: int
    user: str
    coin: str
    side: int  # +1 bid, -1 ask
    px: int  # ticks
    sz: int  # lots remaining
    orig_sz: int
    cloid: str | None
    tif: str
    reduce_only: bool
    timestamp: int
    queue_ahead: float  # market lots ahead of us at px


class CoinBook:
    """Displayed market book of one coin plus our resting orders, both sides."""

    def __init__(self, spec: Any, asset: int) -> None:
        self.spec = spec
        self.coin: str = spec.name
        self.asset = asset
        self.sz_decimals: int = spec.sz_decimals
        self.px_decimals: int = 6 - spec.sz_decimals
        self.lot_scale = 10**spec.sz_decimals
        self.px_scale = 10**self.px_decimals
        self.market: tuple[list[list[int]], list[list[int]]] = ([], [])  # [px, lots, n], best first
        self.prev_display: tuple[dict[int, int], dict[int, int]] = ({}, {})
        self.traded_at: tuple[dict[int, int], dict[int, int]] = ({}, {})
        self.levels: tuple[dict[int, list[RestingOrder]], dict[int, list[RestingOrder]]] = ({}, {})
        self.mid: float = 0.0
        self.last_trade_px: float = 0.0
        self.time_ms: int = 0

    def market_display(self, side_idx: int, px: int) -> int:
        for level in self.market[side_idx]:
            if level[0] == px:
                return level[1]
        return 0

    def best(self, side_idx: int) -> int | None:
        """Best price on a side, market and resting orders merged."""
        market = self.market[side_idx]
        ours = self.levels[side_idx]
        best = market[0][0] if market else None
        if ours:
            mine = max(ours) if side_idx == BID else min(ours)
            if best is None or (mine > best if side_idx == BID else mine < best):
                best = mine
        return best

    def merged(self, side_idx: int, depth: int = BOOK_DEPTH) -> list[tuple[int, int, int]]:
        """Top `depth` levels (px, lots, n) with our resting orders added at their level."""
        market = self.market[side_idx]
        ours = self.levels[side_idx]
        if not ours:
            return [(lv[0], lv[1], lv[2]) for lv in market[:depth]]
        merged: dict[int, list[int]] = {lv[0]: [lv[1], lv[2]] for lv in market[: depth + len(ours)]}
        for px, fifo in ours.items():
            cell = merged.setdefault(px, [0, 0])
            cell[0] += sum(o.sz for o in fifo)
            cell[1] += len(fifo)
        prices = sorted(merged, reverse=side_idx == BID)[:depth]
        return [(px, merged[px][0], merged[px][1]) for px in prices]

    def update_mid(self) -> None:
        bids, asks = self.market
        if bids and asks:
            self.mid = (bids[0][0] + asks[0][0]) / 2 / self.px_scale
        elif self.last_trade_px:
            self.mid = self.last_trade_px


class MatchingEngine:
    """Order entry, cancels, modifies and block processing; collects user events and public trades."""

    def __init__(
        self, coin_specs: list[Any], ledger: Ledger, queue_model: str = "risk_averse", liquidator: str = CROWD[0]
    ) -> None:
        if queue_model not in ("risk_averse", "probabilistic"):
            raise ValueError(f"queue_model must be risk_averse or probabilistic, got {queue_model!r}")
        self.ledger = ledger
        self.queue_model = queue_model
        self.books: dict[str, CoinBook] = {}
        self.by_asset: list[CoinBook] = []
        for asset, spec in enumerate(coin_specs):
            book = CoinBook(spec, asset)
            self.books[spec.name] = book
            self.by_asset.append(book)
        self.liquidator = liquidator.lower()
        self.orders: dict[int, RestingOrder] = {}
        self.open_count: dict[str, int] = {}
        self.next_oid = 1_000_000
        self.next_trade = 1
        # events drained by the server after each action and block
        self.order_updates: dict[str, list[dict[str, Any]]] = {}
        self.user_fills: dict[str, list[dict[str, Any]]] = {}
        self.public_trades: dict[str, list[dict[str, Any]]] = {}
        self.now_ms = 0

    # ---- events ------------------------------------------------------------------------------------------

    def drain(self) -> tuple[dict[str, list], dict[str, list], dict[str, list]]:
        out = (self.order_updates, self.user_fills, self.public_trades)
        self.order_updates, self.user_fills, self.public_trades = {}, {}, {}
        return out

    def marks(self) -> dict[str, float]:
        return {coin: book.mid for coin, book in self.books.items() if book.mid}

    def _order_row(self, book: CoinBook, o: RestingOrder) -> dict[str, Any]:
        row: dict[str, Any] = {
            "coin": book.coin,
            "side": "B" if o.side > 0 else "A",
            "limitPx": format_scaled(o.px, book.px_decimals),
            "sz": format_scaled(o.sz, book.sz_decimals),
            "oid": o.oid,
            "timestamp": o.timestamp,
            "origSz": format_scaled(o.orig_sz, book.sz_decimals),
        }
        if o.cloid is not None:
            row["cloid"] = o.cloid
        if o.reduce_only:
            row["reduceOnly"] = True
        return row

    def frontend_row(self, o: RestingOrder) -> dict[str, Any]:
        book = self.books[o.coin]
        row = self._order_row(book, o)
        row.pop("cloid", None)
        row.pop("reduceOnly", None)
        row.update(
            {
                "triggerCondition": "N/A",
                "isTrigger": False,
                "triggerPx": "0.0",
                "children": [],
                "isPositionTpsl": False,
                "reduceOnly": o.reduce_only,
                "orderType": "Limit",
                "tif": o.tif,
                "cloid": o.cloid,
            }
        )
        return row

    def _status(self, book: CoinBook, o: RestingOrder, status: str) -> None:
        acct = self.ledger.account(o.user)
        self.ledger.set_order_status(acct, o.oid, status, self.now_ms, format_scaled(o.sz, book.sz_decimals))
        self.order_updates.setdefault(o.user, []).append(
            {"order": self._order_row(book, o), "status": status, "statusTimestamp": self.now_ms}
        )

    def _trade_ids(self, coin: str) -> tuple[int, str]:
        seq = self.next_trade
        self.next_trade += 1
        digest = keccak256(b"%s:%d" % (coin.encode(), seq))
        return int.from_bytes(digest[:8], "big") & TID_MASK, "0x" + digest.hex()

    def _publish_trade(
        self, book: CoinBook, aggressor: int, px: int, lots: int, buyer: str, seller: str, tid: int, trade_hash: str,
        time_ms: int,
    ) -> None:
        self.public_trades.setdefault(book.coin, []).append(
            {
                "coin": book.coin,
                "side": "B" if aggressor > 0 else "A",
                "px": format_scaled(px, book.px_decimals),
                "sz": format_scaled(lots, book.sz_decimals),
                "time": time_ms,
                "hash": trade_hash,
                "tid": tid,
                "users": [buyer, seller],
            }
        )
        book.last_trade_px = px / book.px_scale

    def _fill(self, book: CoinBook, user: str, side: int, px: int, lots: int, crossed: bool, oid: int,
              cloid: str | None, tid: int, trade_hash: str) -> None:
        acct = self.ledger.account(user)
        row = self.ledger.apply_fill(
            acct, book.coin, side, px, lots, crossed, oid, cloid, tid, trade_hash, self.now_ms
        )
        self.user_fills.setdefault(user, []).append(row)

    # ---- resting order bookkeeping -------------------------------------------------------------------------

    @staticmethod
    def _increase_notional(o: RestingOrder) -> int:
        return 0 if o.reduce_only else o.px * o.sz

    def _rest(self, book: CoinBook, o: RestingOrder) -> None:
        side_idx = BID if o.side > 0 else ASK
        o.queue_ahead = float(book.market_display(side_idx, o.px))
        book.levels[side_idx].setdefault(o.px, []).append(o)
        self.orders[o.oid] = o
        self.open_count[o.user] = self.open_count.get(o.user, 0) + 1
        acct = self.ledger.account(o.user)
        acct.open_notional[book.coin] = acct.open_notional.get(book.coin, 0) + self._increase_notional(o)

    def _unrest(self, book: CoinBook, o: RestingOrder) -> int:
        """Remove from the book; returns its index in the level FIFO (to reinsert on a failed modify)."""
        side_idx = BID if o.side > 0 else ASK
        fifo = book.levels[side_idx].get(o.px)
        index = 0
        if fifo is not None:
            index = fifo.index(o)
            del fifo[index]
            if not fifo:
                del book.levels[side_idx][o.px]
        if self.orders.pop(o.oid, None) is not None:
            self.open_count[o.user] -= 1
        acct = self.ledger.account(o.user)
        acct.open_notional[book.coin] = acct.open_notional.get(book.coin, 0) - self._increase_notional(o)
        return index

    def _maker_fill(self, book: CoinBook, o: RestingOrder, lots: int, px: int, aggressor_user: str,
                    tid: int, trade_hash: str) -> None:
        acct = self.ledger.account(o.user)
        if not o.reduce_only:
            acct.open_notional[book.coin] = acct.open_notional.get(book.coin, 0) - o.px * lots
        o.sz -= lots
        self._fill(book, o.user, o.side, px, lots, False, o.oid, o.cloid, tid, trade_hash)
        buyer, seller = (o.user, aggressor_user) if o.side > 0 else (aggressor_user, o.user)
        self._publish_trade(book, -o.side, px, lots, buyer, seller, tid, trade_hash, book.time_ms or self.now_ms)
        if o.sz == 0:
            self._unrest(book, o)
            self._status(book, o, "filled")

    def _sync_reduce_only(self, user: str, book: CoinBook) -> None:
        """Shrink resting reduce-only orders to the position; cancel them when it closes or flips."""
        acct = self.ledger.account(user)
        pos = acct.positions.get(book.coin)
        szi = pos.szi if pos else 0
        for side_idx in (BID, ASK):
            for fifo in list(book.levels[side_idx].values()):
                for o in list(fifo):
                    if o.user != user or not o.reduce_only:
                        continue
                    if szi == 0 or (szi > 0) == (o.side > 0):
                        self._unrest(book, o)
                        self._status(book, o, "reduceOnlyCanceled")
                    elif o.sz > abs(szi):
                        o.sz = abs(szi)

    # ---- order entry ---------------------------------------------------------------------------------------

    def place(self, user: str, wire: Any, now_ms: int, forced_error: str | None = None) -> Any:
        """Validate and execute one OrderWire; returns its status entry for `statuses`."""
        self.now_ms = now_ms
        if not isinstance(wire, dict):
            return {"error": ERR_ASSET}
        asset = wire.get("a")
        if not isinstance(asset, int) or isinstance(asset, bool) or not 0 <= asset < len(self.by_asset):
            return {"error": f"{ERR_ASSET} asset={shown(asset)}"}
        book = self.by_asset[asset]
        suffix = f" asset={asset}"
        if forced_error is not None:
            return {"error": forced_error + suffix}
        order_type = wire.get("t")
        limit = order_type.get("limit") if isinstance(order_type, dict) else None
        if not isinstance(limit, dict):
            return {"error": (ERR_TRIGGER if isinstance(order_type, dict) and "trigger" in order_type else ERR_TIF) + suffix}
        tif = limit.get("tif")
        if tif not in ("Gtc", "Ioc", "Alo"):
            return {"error": ERR_TIF + suffix}
        px, err = check_price(wire.get("p"), book.px_decimals)
        if err:
            return {"error": err + suffix}
        lots = parse_scaled(wire.get("s"), book.sz_decimals)
        if lots is None:
            return {"error": ERR_SIZE + suffix}
        if lots == 0:
            return {"error": ERR_ZERO + suffix}
        is_buy = wire.get("b")
        if not isinstance(is_buy, bool):
            return {"error": ERR_SIZE + suffix}
        side = 1 if is_buy else -1
        reduce_only = wire.get("r") is True
        cloid = wire.get("c")
        if cloid is not None and not isinstance(cloid, str):
            return {"error": f"Invalid cloid.{suffix}"}
        acct = self.ledger.account(user)
        pos = acct.positions.get(book.coin)
        szi = pos.szi if pos else 0
        orig_lots = lots
        closes_all = False
        if reduce_only:
            if szi == 0 or (szi > 0) == (side > 0):
                return {"error": ERR_REDUCE_ONLY + suffix}
            if lots >= abs(szi):
                lots = abs(szi)
                closes_all = True
        elif szi and (szi > 0) != (side > 0) and lots == abs(szi):
            closes_all = True
        if px * lots < MIN_ORDER_MICRO_USD and not closes_all:
            return {"error": ERR_MIN_VALUE + suffix}
        opposite = ASK if side > 0 else BID
        best_opp = book.best(opposite)
        crosses = best_opp is not None and (px >= best_opp if side > 0 else px <= best_opp)
        if tif == "Alo" and crosses:
            bid, ask = book.best(BID), book.best(ASK)
            bbo = f"{format_scaled(bid or 0, book.px_decimals)}@{format_scaled(ask or 0, book.px_decimals)}"
            return {"error": f"Post only order would have immediately matched, bbo was {bbo}.{suffix}"}
        if tif == "Ioc" and not crosses:
            return {"error": ERR_IOC + suffix}
        if tif != "Ioc" and self.open_count.get(user, 0) >= MAX_OPEN_ORDERS:
            return {"error": ERR_TOO_MANY + suffix}
        if not reduce_only:
            increase = lots - (abs(szi) if szi and (szi > 0) != (side > 0) else 0)
            if increase > 0:
                lev = self.ledger.leverage_of(acct, book.coin)[0]
                if px * increase * 1e-6 / lev > self.ledger.free_margin(acct, self.marks()) + 1e-9:
                    return {"error": ERR_MARGIN + suffix}
        oid = self.next_oid
        self.next_oid += 1
        order = RestingOrder(oid, user, book.coin, side, px, lots, orig_lots, cloid, tif, reduce_only, now_ms, 0.0)
        self.ledger.remember_order(acct, oid, self.frontend_row(order), "open", now_ms)
        filled_lots = 0
        notional = 0
        if crosses:
            filled_lots, notional = self._take(book, order)
        if filled_lots:
            self._sync_reduce_only(user, book)
        if order.sz and tif != "Ioc":
            self._rest(book, order)
            self._status(book, order, "open")
            status: dict[str, Any] = {"oid": oid}
            if cloid is not None:
                status["cloid"] = cloid
            return {"resting": status}
        if filled_lots == 0:
            self.ledger.set_order_status(acct, oid, "iocCancelRejected", now_ms)
            return {"error": ERR_IOC + suffix}
        if tif == "Ioc" and order.sz:
            self.ledger.set_order_status(acct, oid, "canceled", now_ms)
        else:
            self._status(book, order, "filled")
        avg = notional / filled_lots / book.px_scale
        filled: dict[str, Any] = {
            "totalSz": format_scaled(filled_lots, book.sz_decimals),
            "avgPx": format_usd(avg, book.px_decimals + 2),
            "oid": oid,
        }
        if cloid is not None:
            filled["cloid"] = cloid
        return {"filled": filled}

    def _take(self, book: CoinBook, order: RestingOrder) -> tuple[int, int]:
        """Fill a crossing order level by level; returns (lots filled, Σ px·lots)."""
        side = order.side
        opp = ASK if side > 0 else BID
        market = book.market[opp]
        ours = book.levels[opp]
        filled = 0
        notional = 0
        while order.sz > 0:
            candidates = []
            if market:
                candidates.append(market[0][0])
            if ours:
                candidates.append(min(ours) if opp == ASK else max(ours))
            if not candidates:
                break
            px = min(candidates) if opp == ASK else max(candidates)
            if (side > 0 and px > order.px) or (side < 0 and px < order.px):
                break
            level = market[0] if market and market[0][0] == px else None
            own = [o for o in ours.get(px, ()) if o.user == order.user]
            for o in own:
                self._unrest(book, o)
                self._status(book, o, "selfTradeCanceled")
            fifo = ours.get(px, [])
            market_size = level[1] if level else 0
            market_taken, maker_fills = self._consume_level(fifo, market_size, order.sz)
            if market_taken:
                tid, trade_hash = self._trade_ids(book.coin)
                crowd = CROWD[tid % CROWD_SIZE]
                self._fill(book, order.user, side, px, market_taken, True, order.oid, order.cloid, tid, trade_hash)
                buyer, seller = (order.user, crowd) if side > 0 else (crowd, order.user)
                self._publish_trade(book, side, px, market_taken, buyer, seller, tid, trade_hash, self.now_ms)
                order.sz -= market_taken
                filled += market_taken
                notional += market_taken * px
                book.traded_at[opp][px] = book.traded_at[opp].get(px, 0) + market_taken
                level[1] -= market_taken
                if level[1] <= 0:
                    market.pop(0)
            for maker, lots in maker_fills:
                tid, trade_hash = self._trade_ids(book.coin)
                self._fill(book, order.user, side, px, lots, True, order.oid, order.cloid, tid, trade_hash)
                self._maker_fill(book, maker, lots, px, order.user, tid, trade_hash)
                self._sync_reduce_only(maker.user, book)
                order.sz -= lots
                filled += lots
                notional += lots * px
            if not market_taken and not maker_fills and not own:
                break
        return filled, notional

    def _consume_level(self, fifo: list[RestingOrder], market_size: float, volume: int) -> tuple[int, list]:
        """Split `volume` traded at one level between market size and our FIFO by queue position.

        Returns (market lots consumed, [(order, lots)]). Each order's queue_ahead drops by the market volume
        consumed. `market_size` may be float("inf") for a trade printed by the market itself.
        """
        left = volume
        market_taken = 0
        fills: list[tuple[RestingOrder, int]] = []
        for o in fifo:
            if left <= 0:
                break
            ahead = max(0.0, min(o.queue_ahead, market_size) - market_taken)
            take = min(left, math.ceil(ahead - 1e-9))
            market_taken += take
            left -= take
            if left <= 0:
                break
            lots = min(o.sz, left)
            fills.append((o, lots))
            left -= lots
        if left > 0 and market_size > market_taken:
            take = int(min(left, market_size - market_taken))
            market_taken += take
        for o in fifo:
            o.queue_ahead = max(0.0, o.queue_ahead - market_taken)
        return market_taken, fills

    # ---- cancels and modifies --------------------------------------------------------------------------------

    def _find(self, user: str, key: Any, asset: int | None = None) -> RestingOrder | None:
        if isinstance(key, str):
            acct = self.ledger.account(user)
            oid = acct.cloid_oids.get(key)
            o = self.orders.get(oid) if oid is not None else None
        elif isinstance(key, int) and not isinstance(key, bool):
            o = self.orders.get(key)
        else:
            return None
        if o is None or o.user != user:
            return None
        if asset is not None and self.books[o.coin].asset != asset:
            return None
        return o

    def cancel(self, user: str, asset: Any, key: Any, now_ms: int, status: str = "canceled") -> Any:
        self.now_ms = now_ms
        o = self._find(user, key, asset if isinstance(asset, int) else -1)
        if o is None:
            return {"error": f"{ERR_CANCEL} asset={shown(asset)}"}
        book = self.books[o.coin]
        self._unrest(book, o)
        self._status(book, o, status)
        return "success"

    def cancel_all(self, user: str, now_ms: int, status: str) -> int:
        self.now_ms = now_ms
        mine = [o for o in self.orders.values() if o.user == user]
        for o in mine:
            book = self.books[o.coin]
            self._unrest(book, o)
            self._status(book, o, status)
        return len(mine)

    def modify(self, user: str, key: Any, wire: Any, now_ms: int) -> Any:
        """Cancel-replace: the new order gets a new oid; `open` (new) is reported before `canceled` (old)."""
        self.now_ms = now_ms
        old = self._find(user, key)
        if old is None:
            return {"error": ERR_MODIFY}
        book = self.books[old.coin]
        side_idx = BID if old.side > 0 else ASK
        index = self._unrest(book, old)
        status = self.place(user, wire, now_ms)
        if isinstance(status, dict) and "error" in status:
            fifo = book.levels[side_idx].setdefault(old.px, [])
            fifo.insert(min(index, len(fifo)), old)
            self.orders[old.oid] = old
            self.open_count[user] = self.open_count.get(user, 0) + 1
            acct = self.ledger.account(user)
            acct.open_notional[book.coin] = acct.open_notional.get(book.coin, 0) + self._increase_notional(old)
            return status
        self._status(book, old, "canceled")
        return status

    # ---- market blocks ---------------------------------------------------------------------------------------

    def on_block(self, time_ms: int, books: dict[str, Any], trades: dict[str, Any], now_ms: int) -> None:
        """Apply one market block: trades against our queue, then the new snapshot, then crossing fills."""
        self.now_ms = now_ms
        for coin, coin_trades in trades.items():
            book = self.books.get(coin)
            if book is not None:
                book.time_ms = time_ms
                for trade in coin_trades:
                    self._market_trade(book, trade)
        for coin, (bids, asks) in books.items():
            book = self.books.get(coin)
            if book is not None:
                book.time_ms = time_ms
                self._install_snapshot(book, bids, asks)

    def _market_trade(self, book: CoinBook, trade: Any) -> None:
        side_text, px, sz, is_liquidation = trade
        aggressor = 1 if side_text == "B" else -1
        lots = int(round(sz * book.lot_scale))
        if lots <= 0:
            return
        resting_idx = ASK if aggressor > 0 else BID
        tid, trade_hash = self._trade_ids(book.coin)
        aggressor_user = self.liquidator if is_liquidation else CROWD[tid % CROWD_SIZE]
        passive_user = CROWD[(tid >> 7) % CROWD_SIZE]
        ours = book.levels[resting_idx]
        touched = []
        if ours:
            # strictly through our price: the whole level was taken, we fill completely at our price
            for opx in sorted(ours, reverse=resting_idx == BID):
                if (aggressor > 0 and opx < px) or (aggressor < 0 and opx > px):
                    touched.append(opx)
        for opx in touched:
            for o in list(ours.get(opx, [])):
                t, h = self._trade_ids(book.coin)
                self._maker_fill(book, o, o.sz, opx, aggressor_user, t, h)
                self._sync_reduce_only(o.user, book)
        remaining = lots
        fifo = ours.get(px)
        if fifo:
            _, fills = self._consume_level(list(fifo), float("inf"), lots)
            for o, f in fills:
                t, h = self._trade_ids(book.coin)
                self._maker_fill(book, o, f, px, aggressor_user, t, h)
                self._sync_reduce_only(o.user, book)
                remaining -= f
        traded = book.traded_at[resting_idx]
        traded[px] = traded.get(px, 0) + remaining
        if remaining > 0:
            buyer, seller = (aggressor_user, passive_user) if aggressor > 0 else (passive_user, aggressor_user)
            self._publish_trade(book, aggressor, px, remaining, buyer, seller, tid, trade_hash, book.time_ms)

    def _install_snapshot(self, book: CoinBook, bids: Any, asks: Any) -> None:
        scale = book.lot_scale
        new = (
            [[int(px), int(round(sz * scale)), int(n)] for px, sz, n in bids],
            [[int(px), int(round(sz * scale)), int(n)] for px, sz, n in asks],
        )
        for side_idx in (BID, ASK):
            if book.levels[side_idx]:
                self._reanchor_queues(book, side_idx, {lv[0]: lv[1] for lv in new[side_idx]},
                                      new[side_idx][0][0] if new[side_idx] else None)
        book.market = new
        book.prev_display = ({lv[0]: lv[1] for lv in new[BID]}, {lv[0]: lv[1] for lv in new[ASK]})
        book.traded_at = ({}, {})
        book.update_mid()
        self._fill_crossed(book, new[BID][0][0] if new[BID] else None, new[ASK][0][0] if new[ASK] else None)

    def _reanchor_queues(self, book: CoinBook, side_idx: int, display: dict[int, int], market_best: int | None) -> None:
        """Queue ahead of our orders on one side after a snapshot showing `display` ({px: lots})."""
        ours = book.levels[side_idx]
        prev = book.prev_display[side_idx]
        traded = book.traded_at[side_idx]
        for px, fifo in ours.items():
            if market_best is None or (px > market_best if side_idx == BID else px < market_best):
                continue  # the level in front got consumed: queue position stays
            shown = display.get(px, 0)
            behind_total = prev.get(px, 0) - traded.get(px, 0)
            cancelled = behind_total - shown
            for o in fifo:
                if self.queue_model == "probabilistic" and cancelled > 0:
                    front = o.queue_ahead
                    back = max(0.0, behind_total - front)
                    p_back = back * back / (back * back + front * front) if back + front > 0 else 1.0
                    o.queue_ahead = max(0.0, front - (1.0 - p_back) * cancelled)
                o.queue_ahead = min(o.queue_ahead, float(shown))

    def _fill_crossed(self, book: CoinBook, best_bid: int | None, best_ask: int | None) -> None:
        """The market moved through our price (new best prices): fill the whole order at our price."""
        for side_idx, opp_best in ((BID, best_ask), (ASK, best_bid)):
            ours = book.levels[side_idx]
            if not ours or opp_best is None:
                continue
            crossed = [px for px in ours if (px >= opp_best if side_idx == BID else px <= opp_best)]
            for px in sorted(crossed, reverse=side_idx == BID):
                for o in list(ours.get(px, [])):
                    tid, trade_hash = self._trade_ids(book.coin)
                    self._maker_fill(book, o, o.sz, px, CROWD[tid % CROWD_SIZE], tid, trade_hash)
                    self._sync_reduce_only(o.user, book)
