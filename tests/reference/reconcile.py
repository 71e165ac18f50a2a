"""Plain-Python reference of the execution budget, impulse filter and reconcile diff (sections 10-11)."""
from __future__ import annotations

import math
from dataclasses import dataclass

from tests.reference.qpos import QueueTrackerRef

DECISION_SKIP, DECISION_UPDATE, DECISION_LOCKED = 0, 1, 2
ACT_CANCEL, ACT_MODIFY, ACT_PLACE = 0, 1, 2
FREE, RESTING, PENDING, CANCELLING = 0, 1, 2, 3
CAP_SLACK = 1e-9


def valid_tick_ref(px_ticks: int, sz_decimals: int) -> int:
    """Smallest step that keeps a price at <= 5 significant figures (integers always valid), in ticks."""
    digits = len(str(px_ticks)) if px_ticks > 0 else 0
    return 10 ** max(0, min(digits - 5, 6 - sz_decimals))


class ExecutionBudgetRef:
    def __init__(self, initial=100.0, max_tokens=500.0, reserve=20.0, reward_per_1000=0.5, reward_floor=0.5,
                 bulk_discount=0.8, enabled=True, refill_per_s=1.0) -> None:
        self.initial, self.max_tokens, self.reserve = initial, max_tokens, reserve
        self.reward_per_1000, self.reward_floor, self.bulk_discount = reward_per_1000, reward_floor, bulk_discount
        self.enabled, self.refill_per_s = enabled, refill_per_s
        self.available = initial
        self.earned = self.spent = self.refilled = 0.0
        self.skipped = self.emergency_uses = 0
        self.t_refill: float | None = None

    def refill(self, t: float) -> float:
        """refill_per_s tokens per second since the last call, up to max_tokens."""
        if not math.isfinite(t):
            return 0.0
        if self.t_refill is None or t <= self.t_refill:
            if self.t_refill is None:
                self.t_refill = t
            return 0.0
        add = self.refill_per_s * (t - self.t_refill)
        self.t_refill = t
        if add <= 0 or not self.available < self.max_tokens:
            return 0.0
        if self.available + add >= self.max_tokens:
            add = self.max_tokens - self.available
            self.available = self.max_tokens
        else:
            self.available += add
        self.refilled += add
        return add

    def on_fill(self, notional: float) -> float:
        if not (notional >= 0 and math.isfinite(notional)):
            return 0.0
        earn = max(self.reward_floor, self.reward_per_1000 * notional / 1000.0)
        self.earned += earn
        if self.available < self.max_tokens:
            self.available = min(self.max_tokens, self.available + earn)
        return earn

    def cost(self, n: int) -> float:
        return 0.0 if n <= 0 else 1.0 + self.bulk_discount * (n - 1)

    def can_afford_cost(self, tokens: float) -> bool:
        return (not self.enabled) or self.available - tokens >= self.reserve

    def can_afford(self, n: int) -> bool:
        return self.can_afford_cost(self.cost(n))

    def charge(self, tokens: float) -> None:
        self.spent += tokens
        if self.enabled:
            self.available -= tokens

    def spend(self, n: int) -> bool:
        tokens = self.cost(n)
        if self.can_afford_cost(tokens):
            self.charge(tokens)
            return True
        self.skipped += 1
        return False

    def emergency_spend(self, n: int) -> bool:
        tokens = self.cost(n)
        covered = (not self.enabled) or self.available >= tokens
        self.emergency_uses += 1
        self.charge(tokens)
        return covered

    @property
    def utilization(self) -> float:
        base = self.earned + self.initial + self.refilled
        return self.spent / base if base > 0 and math.isfinite(base) else 0.0


class ImpulseFilterRef:
    def __init__(self, threshold=0.10, lock_threshold=0.30, lock_override_bps=25.0, enabled=True,
                 min_gain=0.0) -> None:
        self.threshold, self.lock_threshold = threshold, lock_threshold
        self.lock_override_frac = lock_override_bps * 1e-4
        self.enabled, self.min_gain = enabled, min_gain
        self.updated = self.skipped = self.locked = 0

    def decide(self, p_cur: float, p_new: float, move_frac: float) -> int:
        if not self.enabled:
            self.updated += 1
            return DECISION_UPDATE
        if p_cur > self.lock_threshold and abs(move_frac) < self.lock_override_frac:
            self.locked += 1
            return DECISION_LOCKED
        if (p_new - p_cur) / max(p_cur, 1e-9) > self.threshold and p_new - p_cur > self.min_gain:
            self.updated += 1
            return DECISION_UPDATE
        self.skipped += 1
        return DECISION_SKIP


@dataclass
class MirrorOrder:
    state: int
    side: int
    px: int
    sz: float


@dataclass
class Candidate:
    kind: int
    slot: int
    side: int
    px: int
    sz: float
    value: float
    dsize: float
    reuse: bool = False


class ReconcilerRef:
    def __init__(self, max_orders=128, max_levels=64, match_tolerance_ticks=3, match_tolerance_bps=2.0,
                 size_tolerance=0.10, sz_decimals=5, horizon=1.0, budget=None, impulse_filter=None,
                 vol_half_life=60.0, reuse_unmatched=True) -> None:
        self.max_orders, self.max_levels = max_orders, max_levels
        self.tol_ticks, self.tol_bps = match_tolerance_ticks, match_tolerance_bps
        self.size_tolerance, self.sz_decimals, self.horizon = size_tolerance, sz_decimals, horizon
        self.reuse_unmatched = reuse_unmatched
        self.tracker = QueueTrackerRef(max_orders, vol_half_life)
        self.budget = budget or ExecutionBudgetRef()
        self.impulse_filter = impulse_filter or ImpulseFilterRef()
        self.orders: dict[int, MirrorOrder] = {}
        self.counts = dict.fromkeys(
            ("kept", "modified", "cancelled", "placed", "filter_skipped", "locked", "budget_skipped",
             "mandatory_cancels", "mispriced", "mandatory_modifies", "cap_skipped", "targets_dropped",
             "budget_skipped_cancels", "budget_skipped_modifies", "budget_skipped_places", "reused"), 0)
        self.actions: list[tuple] = []

    def order_placed(self, slot, side, px, sz, displayed, t) -> int:
        if self.tracker.add(slot, side, px, sz, displayed, t) != 0:
            return -1
        self.orders[slot] = MirrorOrder(RESTING, side, px, sz)
        return 0

    def order_pending(self, slot, side, px, sz) -> int:
        self.tracker.remove(slot)
        self.orders[slot] = MirrorOrder(PENDING, side, px, sz)
        return 0

    def order_cancelling(self, slot) -> int:
        self.orders[slot].state = CANCELLING
        return 0

    def order_resized(self, slot, sz) -> int:
        self.orders[slot].sz = sz
        if self.orders[slot].state != PENDING:
            self.tracker.resize(slot, sz)
        return 0

    def order_gone(self, slot) -> int:
        self.orders.pop(slot, None)
        self.tracker.remove(slot)
        return 0

    def _tolerance(self, px: int) -> float:
        return max(self.tol_ticks * valid_tick_ref(px, self.sz_decimals), self.tol_bps * 1e-4 * px)

    @staticmethod
    def _crosses(side: int, px: int, best_opposite: int) -> bool:
        return best_opposite > 0 and (px >= best_opposite if side > 0 else px <= best_opposite)

    def _side(self, side, targets, book, best_same, best_opp, mid, sigma, pull, cap, mandatory, cands, mand_mods):
        c = self.counts
        mine = [(slot, o) for slot, o in sorted(self.orders.items()) if o.side == side]
        committed = sum(o.sz for _, o in mine)
        in_flight = sum(o.sz for _, o in mine if o.state == CANCELLING)
        valid = [tpx for tpx, tsz in targets[: self.max_levels]
                 if tpx > 0 and tsz > 0 and math.isfinite(tsz) and not self._crosses(side, tpx, best_opp)]
        touch = valid[0] if valid else None
        eligible, mispriced = [], []
        for slot, o in mine:
            if o.state == CANCELLING:
                continue
            if pull or self._crosses(side, o.px, best_opp):
                mandatory.append(slot)
                committed -= o.sz
            elif touch is None or side * (o.px - touch) > self._tolerance(touch):
                # priced through the target touch (or no target on the side): mispriced risk, moved
                # onto an unmatched target below, or cancelled (no target, or not acked yet)
                committed -= o.sz
                self.counts["mispriced"] += 1
                if touch is None or o.state == PENDING:
                    mandatory.append(slot)
                else:
                    mispriced.append(slot)
            else:
                eligible.append(slot)
        mispriced.sort(key=lambda s: -side * self.orders[s].px)
        eligible.sort(key=lambda s: -side * self.orders[s].px)  # best first, stable on slot
        limit = cap * (1 + CAP_SLACK) + 1e-12
        if committed > limit:
            kept_slots, cum = [], in_flight
            for slot in eligible:
                if cum + self.orders[slot].sz > limit:
                    mandatory.append(slot)
                    committed -= self.orders[slot].sz
                else:
                    cum += self.orders[slot].sz
                    kept_slots.append(slot)
            eligible = kept_slots
        if pull:
            return committed
        book_sz = dict(book)
        used: set[int] = set()
        unmatched: list[tuple[int, float]] = []
        t = self.tracker
        for tpx, tsz in targets[: self.max_levels]:
            if tpx <= 0 or not (tsz > 0 and math.isfinite(tsz)) or self._crosses(side, tpx, best_opp):
                c["targets_dropped"] += 1
                continue
            tol = self._tolerance(tpx)
            options = [(abs(self.orders[s].px - tpx), abs(self.orders[s].sz - tsz), s)
                       for s in eligible if s not in used and abs(self.orders[s].px - tpx) <= tol]
            shown = book_sz.get(tpx, 0.0)
            if not options:
                unmatched.append((tpx, tsz))
                continue
            slot = min(options)[2]
            used.add(slot)
            o = self.orders[slot]
            if o.state == PENDING or (o.px == tpx and abs(tsz - o.sz) <= self.size_tolerance * o.sz):
                c["kept"] += 1
                continue
            p_cur = t.fill_probability(slot, self.horizon, sigma, best_same)
            p_cur = 0.0 if math.isnan(p_cur) else p_cur
            if o.px == tpx and tsz < o.sz:
                cands.append(Candidate(ACT_MODIFY, slot, side, tpx, tsz, p_cur, tsz - o.sz))
                continue
            if o.px == tpx:
                shown = max(shown - o.sz, 0.0)
            p_new = t.fill_probability_new(side, tpx, shown, self.horizon, sigma, best_same)
            decision = self.impulse_filter.decide(p_cur, p_new, abs(tpx - o.px) / o.px)
            if decision == DECISION_LOCKED:
                c["locked"] += 1
            elif decision == DECISION_SKIP:
                c["filter_skipped"] += 1
            else:
                cands.append(Candidate(ACT_MODIFY, slot, side, tpx, tsz, p_new - p_cur, tsz - o.sz))
        for tpx, tsz in unmatched:
            if mispriced:
                slot = mispriced.pop(0)
                if committed + tsz <= limit:
                    mand_mods.append((slot, tpx, tsz))
                    committed += tsz
                    continue
                mandatory.append(slot)
            p_new = t.fill_probability_new(side, tpx, book_sz.get(tpx, 0.0), self.horizon, sigma, best_same)
            edge = abs(tpx - mid) / mid if mid > 0 else 0.0
            # the next unmatched acked order (best first) moves here instead: one modify, not cancel + place
            spare = next((s for s in eligible if s not in used and self.orders[s].state != PENDING), None)
            if self.reuse_unmatched and spare is not None:
                used.add(spare)
                o = self.orders[spare]
                p_cur = t.fill_probability(spare, self.horizon, sigma, best_same)
                p_cur = 0.0 if math.isnan(p_cur) else p_cur
                edge_cur = abs(o.px - mid) / mid if mid > 0 else 0.0
                cands.append(Candidate(ACT_MODIFY, spare, side, tpx, tsz, p_new * edge - p_cur * edge_cur,
                                       tsz - o.sz, reuse=True))
                continue
            cands.append(Candidate(ACT_PLACE, -1, side, tpx, tsz, p_new * edge, tsz))
        mandatory.extend(mispriced)
        for slot in eligible:
            if slot in used:
                continue
            o = self.orders[slot]
            if o.state == PENDING:
                c["kept"] += 1
                continue
            p_cur = t.fill_probability(slot, self.horizon, sigma, best_same)
            p_cur = 0.0 if math.isnan(p_cur) else p_cur
            cands.append(Candidate(ACT_CANCEL, slot, side, o.px, o.sz, -p_cur, -o.sz))
        return committed

    def diff(self, bids, asks, *, book_bids=(), book_asks=(), best_bid=0, best_ask=0, mid=0.0, sigma=0.0,
             pull_bid=False, pull_ask=False, max_bid_size=math.inf, max_ask_size=math.inf) -> list[tuple]:
        """bids/asks: [(px, sz)] best first; book_*: [(px, sz)].  Returns the action tuples."""
        mandatory: list[int] = []
        mand_mods: list[tuple[int, int, float]] = []
        cands: list[Candidate] = []
        committed = {
            1: self._side(1, list(bids), book_bids, best_bid, best_ask, mid, sigma, pull_bid, max_bid_size,
                          mandatory, cands, mand_mods),
            -1: self._side(-1, list(asks), book_asks, best_ask, best_bid, mid, sigma, pull_ask, max_ask_size,
                           mandatory, cands, mand_mods),
        }
        b = self.budget
        for n_mandatory in (len(mandatory), len(mand_mods)):
            if n_mandatory:
                if b.can_afford(n_mandatory):
                    b.spend(n_mandatory)
                else:
                    b.emergency_spend(n_mandatory)
        limits = {1: max_bid_size * (1 + CAP_SLACK) + 1e-12, -1: max_ask_size * (1 + CAP_SLACK) + 1e-12}
        batch = {ACT_CANCEL: len(mandatory), ACT_MODIFY: len(mand_mods), ACT_PLACE: 0}
        taken: set[int] = set()
        cost, dropped = 0.0, 0
        for i in sorted(range(len(cands)), key=lambda i: -cands[i].value):
            cand = cands[i]
            if cand.dsize > 0 and committed[cand.side] + cand.dsize > limits[cand.side]:
                self.counts["cap_skipped"] += 1
                continue
            step = 1.0 if batch[cand.kind] == 0 else b.bulk_discount
            if not b.can_afford_cost(cost + step):
                dropped += 1
                key = {ACT_CANCEL: "cancels", ACT_MODIFY: "modifies", ACT_PLACE: "places"}[cand.kind]
                self.counts[f"budget_skipped_{key}"] += 1
                continue
            cost += step
            batch[cand.kind] += 1
            committed[cand.side] += cand.dsize
            taken.add(i)
            self.counts["reused"] += cand.reuse
        self.counts["budget_skipped"] += dropped
        if dropped:
            b.skipped += 1
        if cost > 0:
            b.charge(cost)
        actions = [(ACT_CANCEL, s, self.orders[s].side, self.orders[s].px, self.orders[s].sz, True)
                   for s in mandatory]
        for kind in (ACT_CANCEL, ACT_MODIFY, ACT_PLACE):
            if kind == ACT_MODIFY:
                actions += [(ACT_MODIFY, slot, self.orders[slot].side, px, sz, True) for slot, px, sz in mand_mods]
            actions += [(c.kind, c.slot, c.side, c.px, c.sz, False)
                        for i, c in enumerate(cands) if i in taken and c.kind == kind]
        self.counts["mandatory_cancels"] += len(mandatory)
        self.counts["mandatory_modifies"] += len(mand_mods)
        self.counts["cancelled"] += sum(1 for a in actions if a[0] == ACT_CANCEL)
        self.counts["modified"] += sum(1 for a in actions if a[0] == ACT_MODIFY)
        self.counts["placed"] += sum(1 for a in actions if a[0] == ACT_PLACE)
        self.actions = actions
        return actions
