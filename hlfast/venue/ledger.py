"""Accounts of the local venue: positions, entry price, margin, PnL, fees, request budget, fills, order history.

Sizes are integer lots (10^-szDecimals coin), prices integer ticks (10^-(6 - szDecimals) USD), so lots × ticks
is a notional in micro-USD exactly. Money (balance, PnL, fees) is kept as float USD.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

REQUEST_BUDGET_BASE = 10_000
RATE_LIMITED_INTERVAL_MS = 10_000
ORDER_HISTORY_PER_USER = 2_000
FILLS_KEPT_PER_USER = 10_000
DEFAULT_LEVERAGE = 20


def format_scaled(value: int, decimals: int) -> str:
    """Integer count of 10^-decimals units → venue-style decimal string: shortest form, at least one decimal."""
    sign = "-" if value < 0 else ""
    whole, frac = divmod(abs(value), 10**decimals) if decimals else (abs(value), 0)
    if frac == 0:
        return f"{sign}{whole}.0"
    return f"{sign}{whole}.{str(frac).rjust(decimals, '0').rstrip('0')}"


def format_usd(value: float, decimals: int = 6) -> str:
    """Float → venue-style string rounded to `decimals` places ("0.0", "-0.012639", "246.125")."""
    text = f"{value:.{decimals}f}".rstrip("0")
    if text.endswith("."):
        text += "0"
    return "0.0" if text in ("-0.0", "") else text


@dataclass(frozen=True)
class Fees:
    """Fee rates as fractions of notional; a negative maker rate is a rebate."""

    maker: float = 0.00015
    taker: float = 0.00045


@dataclass(slots=True)
class Position:
    szi: int = 0  # signed lots
    entry_px: float = 0.0  # price units
    cum_funding: float = 0.0


@dataclass
class Account:
    address: str
    deposit: float
    balance: float  # deposit + realised PnL − fees
    realised_pnl: float = 0.0
    fees_paid: float = 0.0
    cum_volume: float = 0.0
    n_requests: int = 0
    last_limited_action_ms: int = -(10**15)
    positions: dict[str, Position] = field(default_factory=dict)
    leverage: dict[str, tuple[int, bool]] = field(default_factory=dict)  # coin → (value, is_cross)
    open_notional: dict[str, int] = field(default_factory=dict)  # coin → micro-USD of resting increasing orders
    fills: list[dict[str, Any]] = field(default_factory=list)  # oldest first
    history: OrderedDict[int, list[Any]] = field(default_factory=OrderedDict)  # oid → [order row, status, ts]
    cloid_oids: dict[str, int] = field(default_factory=dict)
    scheduled_cancel_ms: int | None = None
    scheduled_cancel_day: int = -1
    scheduled_cancel_count: int = 0


class Ledger:
    """Per-account state and the accounting of fills."""

    def __init__(
        self,
        coin_specs: dict[str, Any],
        fees: Fees | None = None,
        deposits: dict[str, float] | None = None,
        request_budget_base: int = REQUEST_BUDGET_BASE,
    ) -> None:
        self.coin_specs = coin_specs
        self.fees = fees or Fees()
        self.deposits = deposits if deposits is not None else {}
        self.request_budget_base = request_budget_base
        self.accounts: dict[str, Account] = {}

    def account(self, address: str) -> Account:
        key = address.lower()
        acct = self.accounts.get(key)
        if acct is None:
            deposit = float(self.deposits.get(key, 0.0))
            acct = Account(address=key, deposit=deposit, balance=deposit)
            self.accounts[key] = acct
        return acct

    def find(self, address: Any) -> Account | None:
        """The account if it exists: traded already, or declared with a deposit at start."""
        if address is None:
            return None
        key = str(address).lower()
        if key not in self.accounts and key in self.deposits:
            return self.account(key)
        return self.accounts.get(key)

    # ---- leverage and margin -------------------------------------------------------------------------

    def leverage_of(self, acct: Account, coin: str) -> tuple[int, bool]:
        got = acct.leverage.get(coin)
        if got is None:
            return min(DEFAULT_LEVERAGE, int(self.coin_specs[coin].max_leverage)), True
        return got

    def account_value(self, acct: Account, marks: dict[str, float]) -> float:
        value = acct.balance
        for coin, pos in acct.positions.items():
            if pos.szi:
                scale = 10 ** self.coin_specs[coin].sz_decimals
                value += pos.szi / scale * (marks.get(coin, pos.entry_px) - pos.entry_px)
        return value

    def margin_used(self, acct: Account, marks: dict[str, float]) -> float:
        used = 0.0
        for coin, pos in acct.positions.items():
            if pos.szi:
                scale = 10 ** self.coin_specs[coin].sz_decimals
                used += abs(pos.szi) / scale * marks.get(coin, pos.entry_px) / self.leverage_of(acct, coin)[0]
        for coin, micro in acct.open_notional.items():
            if micro:
                used += micro * 1e-6 / self.leverage_of(acct, coin)[0]
        return used

    def free_margin(self, acct: Account, marks: dict[str, float]) -> float:
        return self.account_value(acct, marks) - self.margin_used(acct, marks)

    # ---- request budget ------------------------------------------------------------------------------

    def request_cap(self, acct: Account) -> int:
        return self.request_budget_base + int(acct.cum_volume)

    def admit(self, acct: Account, n_items: int, cancels_only: bool, now_ms: int) -> str | None:
        """Charge `n_items` to the address budget; once over the cap, one action per 10 s (refusals are free)."""
        cap = self.request_cap(acct)
        limit = min(cap + 100_000, cap * 2) if cancels_only else cap
        if acct.n_requests > limit:
            if now_ms - acct.last_limited_action_ms < RATE_LIMITED_INTERVAL_MS:
                return (
                    f"Too many cumulative requests sent ({acct.n_requests} > {cap}) for cumulative volume traded "
                    f"${acct.cum_volume:.2f}. Place taker orders to free up 1 request per USDC traded."
                )
            acct.last_limited_action_ms = now_ms
        acct.n_requests += n_items
        return None

    # ---- fills -----------------------------------------------------------------------------------------

    def apply_fill(
        self,
        acct: Account,
        coin: str,
        side: int,
        px_ticks: int,
        lots: int,
        crossed: bool,
        oid: int,
        cloid: str | None,
        tid: int,
        trade_hash: str,
        time_ms: int,
    ) -> dict[str, Any]:
        """Update position, PnL, fees and volume for one fill; return the WsFill row."""
        spec = self.coin_specs[coin]
        px_dec = 6 - spec.sz_decimals
        scale = 10**spec.sz_decimals
        px = px_ticks / 10**px_dec
        pos = acct.positions.get(coin)
        if pos is None:
            pos = acct.positions[coin] = Position()
        start = pos.szi
        signed = side * lots
        closed_pnl = 0.0
        if start == 0 or (start > 0) == (side > 0):
            total = abs(start) + lots
            pos.entry_px = (pos.entry_px * abs(start) + px * lots) / total
            direction = "Open Long" if side > 0 else "Open Short"
        else:
            closing = min(lots, abs(start))
            closed_pnl = (px - pos.entry_px) * closing / scale * (1 if start > 0 else -1)
            if lots > abs(start):
                direction = "Long > Short" if start > 0 else "Short > Long"
                pos.entry_px = px
            else:
                direction = "Close Long" if start > 0 else "Close Short"
                if lots == abs(start):
                    pos.entry_px = 0.0
        pos.szi = start + signed
        notional = px_ticks * lots * 1e-6
        fee = notional * (self.fees.taker if crossed else self.fees.maker)
        acct.balance += closed_pnl - fee
        acct.realised_pnl += closed_pnl
        acct.fees_paid += fee
        acct.cum_volume += notional
        row: dict[str, Any] = {
            "coin": coin,
            "px": format_scaled(px_ticks, px_dec),
            "sz": format_scaled(lots, spec.sz_decimals),
            "side": "B" if side > 0 else "A",
            "time": time_ms,
            "startPosition": format_scaled(start, spec.sz_decimals),
            "dir": direction,
            "closedPnl": format_usd(closed_pnl),
            "hash": trade_hash,
            "oid": oid,
            "crossed": crossed,
            "fee": format_usd(fee),
            "tid": tid,
        }
        if cloid is not None:
            row["cloid"] = cloid
        row["feeToken"] = "USDC"
        row["twapId"] = None
        acct.fills.append(row)
        if len(acct.fills) > FILLS_KEPT_PER_USER:
            del acct.fills[: len(acct.fills) - FILLS_KEPT_PER_USER]
        return row

    # ---- order history (orderStatus / historicalOrders) -------------------------------------------------

    def remember_order(self, acct: Account, oid: int, row: dict[str, Any], status: str, ts: int) -> None:
        acct.history[oid] = [row, status, ts]
        cloid = row.get("cloid")
        if cloid:
            acct.cloid_oids[cloid] = oid
        while len(acct.history) > ORDER_HISTORY_PER_USER:
            _, (old_row, _, _) = acct.history.popitem(last=False)
            old_cloid = old_row.get("cloid")
            if old_cloid and acct.cloid_oids.get(old_cloid) is not None and acct.cloid_oids[old_cloid] not in acct.history:
                del acct.cloid_oids[old_cloid]

    def set_order_status(self, acct: Account, oid: int, status: str, ts: int, sz_text: str | None = None) -> None:
        entry = acct.history.get(oid)
        if entry is not None:
            entry[1] = status
            entry[2] = ts
            if sz_text is not None:
                entry[0]["sz"] = sz_text

    # ---- /info views -------------------------------------------------------------------------------------

    def clearinghouse_state(self, address: Any, marks: dict[str, float], now_ms: int) -> dict[str, Any]:
        acct = self.find(address)
        positions: list[dict[str, Any]] = []
        total_ntl = total_margin = maintenance = signed_ntl = 0.0
        value = acct.balance if acct else 0.0
        if acct is not None:
            for coin, pos in acct.positions.items():
                if not pos.szi:
                    continue
                spec = self.coin_specs[coin]
                scale = 10**spec.sz_decimals
                size = pos.szi / scale
                mark = marks.get(coin, pos.entry_px)
                lev, is_cross = self.leverage_of(acct, coin)
                ntl = abs(size) * mark
                upnl = size * (mark - pos.entry_px)
                margin = ntl / lev
                value += upnl
                total_ntl += ntl
                total_margin += margin
                signed_ntl += size * mark
                maintenance += ntl / (2 * int(spec.max_leverage))
                leverage: dict[str, Any] = {"type": "cross" if is_cross else "isolated", "value": lev}
                if not is_cross:
                    leverage["rawUsd"] = format_usd(margin - size * pos.entry_px)
                positions.append(
                    {
                        "type": "oneWay",
                        "position": {
                            "coin": coin,
                            "szi": format_scaled(pos.szi, spec.sz_decimals),
                            "leverage": leverage,
                            "entryPx": format_usd(pos.entry_px, 6 - spec.sz_decimals + 2),
                            "positionValue": format_usd(ntl),
                            "unrealizedPnl": format_usd(upnl),
                            "returnOnEquity": format_usd(upnl / (abs(size) * pos.entry_px / lev) if pos.entry_px else 0.0),
                            "liquidationPx": None,
                            "marginUsed": format_usd(margin),
                            "maxLeverage": int(spec.max_leverage),
                            "cumFunding": {
                                "allTime": format_usd(pos.cum_funding),
                                "sinceOpen": format_usd(pos.cum_funding),
                                "sinceChange": format_usd(pos.cum_funding),
                            },
                        },
                    }
                )
        summary = {
            "accountValue": format_usd(value),
            "totalNtlPos": format_usd(total_ntl),
            "totalRawUsd": format_usd(value - signed_ntl),
            "totalMarginUsed": format_usd(total_margin),
        }
        return {
            "assetPositions": positions,
            "marginSummary": summary,
            "crossMarginSummary": dict(summary),
            "crossMaintenanceMarginUsed": format_usd(maintenance),
            "withdrawable": format_usd(max(0.0, value - total_margin)),
            "time": now_ms,
        }

    def user_rate_limit(self, address: Any) -> dict[str, Any]:
        acct = self.find(address)
        if acct is None:
            return {"cumVlm": "0.0", "nRequestsUsed": 0, "nRequestsCap": self.request_budget_base, "nRequestsSurplus": 0}
        return {
            "cumVlm": format_usd(acct.cum_volume),
            "nRequestsUsed": acct.n_requests,
            "nRequestsCap": self.request_cap(acct),
            "nRequestsSurplus": 0,
        }
