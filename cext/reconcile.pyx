# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Statistical impulse control and the reconcile diff (algorithms.md sections 10 and 11).

ExecutionBudget is a token bucket for API actions earned by filled volume; ImpulseFilter decides
whether moving an order buys enough fill probability; Reconciler matches resting orders to the target
ladder and emits the smallest affordable set of cancels, modifies and places.
"""
cimport cython
from libc.math cimport INFINITY, NAN, fabs, isfinite
from libc.stdlib cimport calloc, free

import numpy as np

from hlfast.qpos cimport QueueTracker, execute_probability, touch_probability

cdef double P_FLOOR = 1e-9          # denominator floor of the relative fill-probability change
cdef double CAP_SLACK = 1e-9        # relative slack on side caps (sizes are floored decimals)


cdef long long valid_tick_units(long long px_ticks, int sz_decimals) noexcept nogil:
    # 5 significant figures of the price: in finest units that is 10^(digits(px_ticks) - 5), never
    # coarser than one whole price unit (integer prices are always valid).  One step per power of
    # ten at or above 10^5 the price reaches, capped at 10^(6 - sz_decimals): no division per call.
    cdef int cap_exponent = 6 - sz_decimals
    cdef int exponent = 0
    cdef long long step = 1
    cdef long long threshold = 100000
    while exponent < cap_exponent and px_ticks >= threshold:
        step *= 10
        exponent += 1
        if threshold == 1000000000000000000LL:     # 10^18: no larger power of ten fits in an int64
            break
        threshold *= 10
    return step


def valid_tick(long long px_ticks, int sz_decimals) -> int:
    """Valid price step at px_ticks, in finest-unit ticks."""
    return valid_tick_units(px_ticks, sz_decimals)


cdef inline bint crosses(int side, long long px, long long best_opposite) noexcept nogil:
    """A side's price at or through the other side's best (best_opposite 0 = none)."""
    return best_opposite > 0 and ((side > 0 and px >= best_opposite) or (side < 0 and px <= best_opposite))


cdef inline bint target_unusable(int side, long long px, double sz, long long best_opposite) noexcept nogil:
    return px <= 0 or not (sz > 0.0 and isfinite(sz)) or crosses(side, px, best_opposite)


cdef inline double match_tolerance(long long px, long long ticks, double bps, int sz_decimals) noexcept nogil:
    """How far (finest-unit ticks) an order may sit from a target and still match it: the larger of
    `ticks` valid price steps and `bps` of the price."""
    return max(<double>(ticks * valid_tick_units(px, sz_decimals)), bps * 1e-4 * <double>px)


cdef inline double displayed_at(const long long* px, const double* sz, int n, int side,
                                long long p) noexcept nogil:
    cdef int lo = 0, hi = n - 1, mid
    cdef double s
    while lo <= hi:
        mid = (lo + hi) >> 1
        if px[mid] == p:
            s = sz[mid]
            return s if (s > 0.0 and isfinite(s)) else 0.0
        if (side > 0 and px[mid] > p) or (side < 0 and px[mid] < p):
            lo = mid + 1
        else:
            hi = mid - 1
    return 0.0


@cython.final
cdef class ExecutionBudget:
    """Token bucket for API actions: earned by fills, spent per batch, with an emergency reserve.

    Fills alone leave a market maker that is not getting filled with no tokens for ever, and then
    no way to move stale orders; refill(t) adds refill_per_s tokens per second of (engine) time up
    to max_tokens, which also pays back emergency debt.
    """

    def __cinit__(self, double initial=100.0, double max_tokens=500.0, double reserve=20.0,
                  double reward_per_1000=0.5, double reward_floor=0.5, double bulk_discount=0.8,
                  bint enabled=True, double refill_per_s=1.0):
        if not initial >= 0.0:
            raise ValueError(f"initial tokens must be >= 0 (inf allowed), got {initial}")
        if not (max_tokens > 0.0):
            raise ValueError(f"max_tokens must be > 0, got {max_tokens}")
        if not (reserve >= 0.0 and isfinite(reserve)):
            raise ValueError(f"reserve must be a finite number >= 0, got {reserve}")
        if not (reward_per_1000 >= 0.0 and isfinite(reward_per_1000)):
            raise ValueError(f"reward_per_1000 must be a finite number >= 0, got {reward_per_1000}")
        if not (reward_floor >= 0.0 and isfinite(reward_floor)):
            raise ValueError(f"reward_floor must be a finite number >= 0, got {reward_floor}")
        if not (0.0 <= bulk_discount <= 1.0):
            raise ValueError(f"bulk_discount must be in [0, 1], got {bulk_discount}")
        if not (refill_per_s >= 0.0 and isfinite(refill_per_s)):
            raise ValueError(f"refill_per_s must be a finite number >= 0, got {refill_per_s}")
        self.initial = initial
        self.max_tokens = max_tokens
        self.reserve = reserve
        self.reward_per_1000 = reward_per_1000
        self.reward_floor = reward_floor
        self.bulk_discount = bulk_discount
        self.enabled = enabled
        self.refill_per_s = refill_per_s
        self.t_refill = NAN
        self.available = initial

    cpdef double refill(self, double t) noexcept:
        cdef double add
        if not isfinite(t):
            return 0.0
        if not (t > self.t_refill):             # first call (NaN) or time did not advance
            if self.t_refill != self.t_refill:
                self.t_refill = t
            return 0.0
        add = self.refill_per_s * (t - self.t_refill)
        self.t_refill = t
        if add <= 0.0 or not (self.available < self.max_tokens):
            return 0.0
        if self.available + add >= self.max_tokens:
            add = self.max_tokens - self.available
            self.available = self.max_tokens    # exactly the cap (available + add may round above it)
        else:
            self.available += add
        self.refilled += add
        return add

    cpdef double on_fill(self, double notional) noexcept:
        cdef double earn
        if not (notional >= 0.0 and isfinite(notional)):
            return 0.0
        earn = max(self.reward_floor, self.reward_per_1000 * notional / 1000.0)
        self.earned += earn
        if self.available < self.max_tokens:   # an infinite balance stays infinite
            self.available = min(self.max_tokens, self.available + earn)
        return earn

    cpdef double cost(self, int n) noexcept:
        if n <= 0:
            return 0.0
        return 1.0 + self.bulk_discount * (n - 1)

    cdef bint can_afford_cost(self, double tokens) noexcept:
        return (not self.enabled) or self.available - tokens >= self.reserve

    cdef void charge(self, double tokens) noexcept:
        self.spent += tokens
        if self.enabled:
            self.available -= tokens

    cpdef bint can_afford(self, int n) noexcept:
        return self.can_afford_cost(self.cost(n))

    cpdef bint spend(self, int n) noexcept:
        cdef double tokens = self.cost(n)
        if self.can_afford_cost(tokens):
            self.charge(tokens)
            return True
        self.skipped += 1
        return False

    cpdef bint emergency_spend(self, int n) noexcept:
        cdef double tokens = self.cost(n)
        cdef bint covered = (not self.enabled) or self.available >= tokens
        self.emergency_uses += 1
        self.charge(tokens)
        return covered

    @property
    def utilization(self) -> float:
        cdef double base = self.earned + self.initial + self.refilled
        if base > 0.0 and isfinite(base):
            return self.spent / base
        return 0.0

    def __repr__(self) -> str:
        return (f"ExecutionBudget(available={self.available:.2f}, earned={self.earned:.2f}, "
                f"refilled={self.refilled:.2f}, spent={self.spent:.2f}, skipped={self.skipped}, "
                f"emergency_uses={self.emergency_uses}, "
                f"enabled={bool(self.enabled)})")


@cython.final
cdef class ImpulseFilter:
    """Update an order only when the move raises its fill probability enough; lock likely fills."""

    def __cinit__(self, double threshold=0.10, double lock_threshold=0.30, double lock_override_bps=25.0,
                  bint enabled=True, double min_gain=0.0):
        if not isfinite(threshold):
            raise ValueError(f"threshold must be finite, got {threshold}")
        if not (lock_threshold >= 0.0):
            raise ValueError(f"lock_threshold must be >= 0 (1.0 disables locking), got {lock_threshold}")
        if not (lock_override_bps >= 0.0):
            raise ValueError(f"lock_override_bps must be >= 0, got {lock_override_bps}")
        self.threshold = threshold
        self.lock_threshold = lock_threshold
        self.lock_override_bps = lock_override_bps
        self.lock_override_frac = lock_override_bps * 1e-4
        if not (min_gain >= 0.0):
            raise ValueError(f"min_gain must be >= 0, got {min_gain}")
        self.enabled = enabled
        self.min_gain = min_gain

    cpdef int decide(self, double p_cur, double p_new, double price_move_frac) noexcept:
        if not self.enabled:
            self.updated += 1
            return DECISION_UPDATE
        if p_cur > self.lock_threshold and fabs(price_move_frac) < self.lock_override_frac:
            self.locked += 1
            return DECISION_LOCKED
        if (p_new - p_cur) / max(p_cur, P_FLOOR) > self.threshold and p_new - p_cur > self.min_gain:
            self.updated += 1
            return DECISION_UPDATE
        self.skipped += 1
        return DECISION_SKIP

    def __repr__(self) -> str:
        return (f"ImpulseFilter(updated={self.updated}, skipped={self.skipped}, locked={self.locked}, "
                f"enabled={bool(self.enabled)})")


cdef inline const long long* ll_ptr(const long long[::1] view) noexcept:
    return &view[0] if view is not None and view.shape[0] > 0 else NULL


cdef inline const double* d_ptr(const double[::1] view) noexcept:
    return &view[0] if view is not None and view.shape[0] > 0 else NULL


cdef inline int pair_len(const long long[::1] px, const double[::1] sz) noexcept:
    if px is None or sz is None:
        return 0
    return <int>min(px.shape[0], sz.shape[0])


@cython.final
cdef class Reconciler:
    """Mirror of our resting orders (by slot) and the diff against the target ladder."""

    def __cinit__(self, int max_orders=128, int max_levels=64, int match_tolerance_ticks=3,
                  double match_tolerance_bps=2.0, double size_tolerance=0.10, int sz_decimals=5,
                  double horizon=1.0, QueueTracker tracker=None, ExecutionBudget budget=None,
                  ImpulseFilter impulse_filter=None, double vol_half_life=60.0, bint reuse_unmatched=True):
        cdef int[::1] int_view
        cdef long long[::1] ll_view
        cdef double[::1] d_view
        cdef signed char[::1] c_view
        if max_orders <= 0 or max_levels <= 0:
            raise ValueError(f"max_orders and max_levels must be positive, got {max_orders}, {max_levels}")
        if match_tolerance_ticks < 0 or not (match_tolerance_bps >= 0.0):
            raise ValueError("match tolerances must be >= 0")
        if not (size_tolerance >= 0.0):
            raise ValueError(f"size_tolerance must be >= 0, got {size_tolerance}")
        if not (0 <= sz_decimals <= 6):
            raise ValueError(f"sz_decimals must be in [0, 6], got {sz_decimals}")
        if not (horizon > 0.0 and isfinite(horizon)):
            raise ValueError(f"horizon must be a positive number of seconds, got {horizon}")
        if tracker is not None and tracker.max_orders < max_orders:
            raise ValueError("tracker.max_orders is smaller than max_orders")
        self.tracker = tracker if tracker is not None else QueueTracker(max_orders, vol_half_life)
        self.budget = budget if budget is not None else ExecutionBudget()
        self.impulse_filter = impulse_filter if impulse_filter is not None else ImpulseFilter()
        self.max_orders = max_orders
        self.max_levels = max_levels
        self.match_tolerance_ticks = match_tolerance_ticks
        self.match_tolerance_bps = match_tolerance_bps
        self.size_tolerance = size_tolerance
        self.sz_decimals = sz_decimals
        self.horizon = horizon
        self.reuse_unmatched = reuse_unmatched
        self.cand_cap = max_orders + 2 * max_levels
        self.state = <char*>calloc(max_orders, sizeof(char))
        self.o_side = <int*>calloc(max_orders, sizeof(int))
        self.o_px = <long long*>calloc(max_orders, sizeof(long long))
        self.o_sz = <double*>calloc(max_orders, sizeof(double))
        self.live_slots = <int*>calloc(max_orders, sizeof(int))
        self.n_live = 0
        self.side_slots = <int*>calloc(max_orders, sizeof(int))
        self.side_key = <long long*>calloc(max_orders, sizeof(long long))
        self.slot_used = <char*>calloc(max_orders, sizeof(char))
        self.mand_slot = <int*>calloc(max_orders, sizeof(int))
        self.mis_slot = <int*>calloc(max_orders, sizeof(int))
        self.um_tgt = <int*>calloc(max_levels, sizeof(int))
        self.mmod_slot = <int*>calloc(max_orders, sizeof(int))
        self.mmod_px = <long long*>calloc(max_orders, sizeof(long long))
        self.mmod_sz = <double*>calloc(max_orders, sizeof(double))
        self.c_kind = <int*>calloc(self.cand_cap, sizeof(int))
        self.c_slot = <int*>calloc(self.cand_cap, sizeof(int))
        self.c_side = <int*>calloc(self.cand_cap, sizeof(int))
        self.c_px = <long long*>calloc(self.cand_cap, sizeof(long long))
        self.c_sz = <double*>calloc(self.cand_cap, sizeof(double))
        self.c_value = <double*>calloc(self.cand_cap, sizeof(double))
        self.c_dsize = <double*>calloc(self.cand_cap, sizeof(double))
        self.c_taken = <char*>calloc(self.cand_cap, sizeof(char))
        self.c_order = <int*>calloc(self.cand_cap, sizeof(int))
        self.c_reuse = <char*>calloc(self.cand_cap, sizeof(char))
        if (not self.state or not self.o_side or not self.o_px or not self.o_sz or not self.side_slots
                or not self.live_slots
                or not self.side_key or not self.slot_used or not self.mand_slot or not self.c_kind
                or not self.mis_slot or not self.um_tgt or not self.mmod_slot or not self.mmod_px
                or not self.mmod_sz
                or not self.c_slot or not self.c_side or not self.c_px or not self.c_sz
                or not self.c_value or not self.c_dsize or not self.c_taken or not self.c_order
                or not self.c_reuse):
            raise MemoryError()
        # the action list lives in numpy arrays so Python callers get views without copies
        self.kind_arr = np.zeros(self.cand_cap, dtype=np.intc)
        self.slot_arr = np.zeros(self.cand_cap, dtype=np.intc)
        self.side_arr = np.zeros(self.cand_cap, dtype=np.intc)
        self.px_arr = np.zeros(self.cand_cap, dtype=np.int64)
        self.sz_arr = np.zeros(self.cand_cap, dtype=np.float64)
        self.mandatory_arr = np.zeros(self.cand_cap, dtype=np.int8)
        int_view = self.kind_arr
        self.act_kind_c = &int_view[0]
        int_view = self.slot_arr
        self.act_slot_c = &int_view[0]
        int_view = self.side_arr
        self.act_side_c = &int_view[0]
        ll_view = self.px_arr
        self.act_px_c = &ll_view[0]
        d_view = self.sz_arr
        self.act_sz_c = &d_view[0]
        c_view = self.mandatory_arr
        self.act_mandatory_c = &c_view[0]

    def __dealloc__(self):
        free(self.state)
        free(self.o_side)
        free(self.o_px)
        free(self.o_sz)
        free(self.live_slots)
        free(self.side_slots)
        free(self.side_key)
        free(self.slot_used)
        free(self.mand_slot)
        free(self.mis_slot)
        free(self.um_tgt)
        free(self.mmod_slot)
        free(self.mmod_px)
        free(self.mmod_sz)
        free(self.c_kind)
        free(self.c_slot)
        free(self.c_side)
        free(self.c_px)
        free(self.c_sz)
        free(self.c_value)
        free(self.c_dsize)
        free(self.c_taken)
        free(self.c_order)
        free(self.c_reuse)

    # ---- mirror of our orders (driven by the order state machine) ----

    cdef void mark_live(self, int slot) noexcept:
        cdef int k = self.n_live
        if self.state[slot] != SLOT_FREE:
            return
        while k > 0 and self.live_slots[k - 1] > slot:
            self.live_slots[k] = self.live_slots[k - 1]
            k -= 1
        self.live_slots[k] = slot
        self.n_live += 1

    cdef void mark_free(self, int slot) noexcept:
        cdef int k = 0, n = self.n_live
        if self.state[slot] == SLOT_FREE:
            return
        while k < n and self.live_slots[k] != slot:
            k += 1
        if k == n:
            return
        while k + 1 < n:
            self.live_slots[k] = self.live_slots[k + 1]
            k += 1
        self.n_live = n - 1

    cpdef int order_placed(self, int slot, int side, long long px_ticks, double sz, double displayed_at_px,
                           double t) noexcept:
        """Acked and resting; displayed_at_px = displayed size at px excluding this order."""
        if self.tracker.add(slot, side, px_ticks, sz, displayed_at_px, t) != 0 or slot >= self.max_orders:
            self.rejected += 1
            return -1
        self.mark_live(slot)
        self.state[slot] = SLOT_RESTING
        self.o_side[slot] = side
        self.o_px[slot] = px_ticks
        self.o_sz[slot] = sz
        return 0

    cpdef int order_pending(self, int slot, int side, long long px_ticks, double sz) noexcept:
        """Sent, not acked yet (a new order or a modify in flight)."""
        if (slot < 0 or slot >= self.max_orders or (side != 1 and side != -1) or px_ticks <= 0
                or not (sz > 0.0 and isfinite(sz))):
            self.rejected += 1
            return -1
        self.tracker.remove(slot)
        self.mark_live(slot)
        self.state[slot] = SLOT_PENDING
        self.o_side[slot] = side
        self.o_px[slot] = px_ticks
        self.o_sz[slot] = sz
        return 0

    cpdef int order_cancelling(self, int slot) noexcept:
        """A cancel is in flight: stop matching the order but keep counting it against the cap."""
        if slot < 0 or slot >= self.max_orders or self.state[slot] == SLOT_FREE:
            self.rejected += 1
            return -1
        self.state[slot] = SLOT_CANCELLING
        return 0

    cpdef int order_resized(self, int slot, double sz) noexcept:
        """Size changed in place (partial fill or size-only decrease): queue position kept."""
        if slot < 0 or slot >= self.max_orders or self.state[slot] == SLOT_FREE \
                or not (sz > 0.0 and isfinite(sz)):
            self.rejected += 1
            return -1
        self.o_sz[slot] = sz
        if self.state[slot] != SLOT_PENDING:
            self.tracker.resize(slot, sz)
        return 0

    cpdef int order_gone(self, int slot) noexcept:
        """Filled, cancelled or rejected: the slot is free."""
        if slot < 0 or slot >= self.max_orders:
            self.rejected += 1
            return -1
        self.mark_free(slot)
        self.state[slot] = SLOT_FREE
        self.tracker.remove(slot)
        return 0

    def slot_state(self, int slot) -> int:
        if slot < 0 or slot >= self.max_orders:
            return SLOT_FREE
        return self.state[slot]

    # ---- the diff ----

    cdef void add_candidate(self, int kind, int slot, int side, long long px, double sz, double value,
                            double dsize) noexcept:
        cdef int i = self.n_cand
        if i >= self.cand_cap:
            return
        self.c_kind[i] = kind
        self.c_slot[i] = slot
        self.c_side[i] = side
        self.c_px[i] = px
        self.c_sz[i] = sz
        self.c_value[i] = value
        self.c_dsize[i] = dsize
        self.c_taken[i] = 0
        self.c_reuse[i] = 0
        self.n_cand = i + 1

    cdef double order_fill_probability(self, int slot, int side, long long best_same, double sigma) noexcept:
        # P_fill of a resting order; 0 when the tracker does not know it (e.g. its add was refused)
        cdef QueueTracker tracker = self.tracker
        if not tracker.active[slot]:
            return 0.0
        return (touch_probability(side, tracker.px_of[slot], best_same, self.horizon, sigma)
                * execute_probability(tracker.ahead[slot], self.side_rate, self.horizon))

    cdef void emit(self, int kind, int slot, int side, long long px, double sz, bint mandatory) noexcept:
        cdef int i = self.n_actions
        if i >= self.cand_cap:
            return
        self.act_kind_c[i] = kind
        self.act_slot_c[i] = slot
        self.act_side_c[i] = side
        self.act_px_c[i] = px
        self.act_sz_c[i] = sz
        self.act_mandatory_c[i] = mandatory
        self.n_actions = i + 1

    cdef void collect_side(self, int side, const long long* t_px, const double* t_sz, int n_t,
                           const long long* b_px, const double* b_sz, int n_b,
                           long long best_same, long long best_opposite, double mid_ticks, double sigma,
                           bint pull, double cap) noexcept:
        cdef int side_idx = 0 if side > 0 else 1
        cdef int slot, i, j, k, n = 0, best_slot, lo, hi, mid, n_mis = 0, n_um = 0
        cdef char st
        cdef long long p, tpx, tkey, tmp_key, touch = 0
        cdef double committed = 0.0, in_flight = 0.0, cap_limit, cum, tsz, osz, tol, dist, dsz
        cdef double touch_tol = 0.0, edge_cur
        cdef int spare = 0                  # scan position over this side's orders for unmatched ones
        cdef double best_dist = 0.0, best_dsz = 0.0, shown, p_cur, p_new, edge
        cdef int decision
        cdef QueueTracker tracker = self.tracker
        self.side_rate = tracker.touch_rate(side)
        # the side's target touch: its best valid target (0 = the side has none)
        if not pull:
            for j in range(min(n_t, self.max_levels)):
                tpx = t_px[j]
                tsz = t_sz[j]
                if target_unusable(side, tpx, tsz, best_opposite):
                    continue
                touch = tpx
                touch_tol = match_tolerance(tpx, self.match_tolerance_ticks, self.match_tolerance_bps,
                                            self.sz_decimals)
                break
        # pass 1: this side's orders; pulled side or crossing orders are mandatory cancels.  Orders
        # priced through the target touch by more than the match tolerance (a bid above the target
        # best bid, an ask below the target best ask), or on a side with no target, are mispriced:
        # the market moved or the model stepped back, and such an order is the next adverse fill.
        # They must be fixed whatever the budget: moved onto an unmatched target (one modify keeps
        # the ladder quoted), or cancelled when none is left or the order is not acked yet.
        for i in range(self.n_live):
            slot = self.live_slots[i]
            st = self.state[slot]
            if self.o_side[slot] != side:
                continue
            committed += self.o_sz[slot]
            if st == SLOT_CANCELLING:
                in_flight += self.o_sz[slot]
                continue
            p = self.o_px[slot]
            if pull or crosses(side, p, best_opposite):
                self.mand_slot[self.n_mand] = slot
                self.n_mand += 1
                committed -= self.o_sz[slot]
                continue
            if touch == 0 or <double>(side * (p - touch)) > touch_tol:
                self.last_mispriced += 1
                committed -= self.o_sz[slot]
                if touch == 0 or st == SLOT_PENDING:
                    self.mand_slot[self.n_mand] = slot
                    self.n_mand += 1
                else:       # best first (key -side * px ascending), ties by slot
                    j = n_mis - 1
                    while j >= 0 and -side * self.o_px[self.mis_slot[j]] > -side * p:
                        self.mis_slot[j + 1] = self.mis_slot[j]
                        j -= 1
                    self.mis_slot[j + 1] = slot
                    n_mis += 1
                continue
            # insertion into best-first order (key = -side * px ascending), ties by slot
            tmp_key = -side * p
            j = n - 1
            while j >= 0 and self.side_key[j] > tmp_key:
                self.side_key[j + 1] = self.side_key[j]
                self.side_slots[j + 1] = self.side_slots[j]
                j -= 1
            self.side_key[j + 1] = tmp_key
            self.side_slots[j + 1] = slot
            self.slot_used[slot] = 0
            n += 1
        # side cap on total resting size: keep the best-priced orders that fit, cancel the rest
        cap_limit = cap * (1.0 + CAP_SLACK) + 1e-12
        if committed > cap_limit:
            cum = in_flight
            k = 0
            for i in range(n):
                slot = self.side_slots[i]
                if cum + self.o_sz[slot] > cap_limit:
                    self.mand_slot[self.n_mand] = slot
                    self.n_mand += 1
                    committed -= self.o_sz[slot]
                else:
                    cum += self.o_sz[slot]
                    self.side_slots[k] = slot
                    self.side_key[k] = self.side_key[i]
                    k += 1
            n = k
        if pull:
            self.committed[side_idx] = committed
            return
        # pass 2: greedy match, targets best first, nearest unmatched order within tolerance
        # (ties: smaller size difference, then lower slot); orders are sorted, so search outward
        for j in range(min(n_t, self.max_levels)):
            tpx = t_px[j]
            tsz = t_sz[j]
            if target_unusable(side, tpx, tsz, best_opposite):
                self.targets_dropped += 1
                continue
            tol = match_tolerance(tpx, self.match_tolerance_ticks, self.match_tolerance_bps, self.sz_decimals)
            tkey = -side * tpx
            lo = 0
            hi = n
            while lo < hi:
                mid = (lo + hi) >> 1
                if self.side_key[mid] < tkey:
                    lo = mid + 1
                else:
                    hi = mid
            best_slot = -1
            i = lo
            while i < n:
                dist = <double>(self.side_key[i] - tkey)
                if dist > tol or (best_slot >= 0 and dist > best_dist):
                    break
                slot = self.side_slots[i]
                if not self.slot_used[slot]:
                    dsz = fabs(self.o_sz[slot] - tsz)
                    if (best_slot < 0 or dist < best_dist or (dist == best_dist and (
                            dsz < best_dsz or (dsz == best_dsz and slot < best_slot)))):
                        best_slot = slot
                        best_dist = dist
                        best_dsz = dsz
                i += 1
            i = lo - 1
            while i >= 0:
                dist = <double>(tkey - self.side_key[i])
                if dist > tol or (best_slot >= 0 and dist > best_dist):
                    break
                slot = self.side_slots[i]
                if not self.slot_used[slot]:
                    dsz = fabs(self.o_sz[slot] - tsz)
                    if (best_slot < 0 or dist < best_dist or (dist == best_dist and (
                            dsz < best_dsz or (dsz == best_dsz and slot < best_slot)))):
                        best_slot = slot
                        best_dist = dist
                        best_dsz = dsz
                i -= 1
            if best_slot < 0:
                self.um_tgt[n_um] = j
                n_um += 1
                continue
            slot = best_slot
            self.slot_used[slot] = 1
            if self.state[slot] == SLOT_PENDING:
                self.last_kept += 1
                continue
            p = self.o_px[slot]
            osz = self.o_sz[slot]
            if p == tpx and fabs(tsz - osz) <= self.size_tolerance * osz:
                self.last_kept += 1
                continue
            p_cur = self.order_fill_probability(slot, side, best_same, sigma)
            if p == tpx and tsz < osz:
                # a size-only decrease keeps queue priority: no fill probability at stake
                self.add_candidate(ACT_MODIFY, slot, side, tpx, tsz, p_cur, tsz - osz)
                continue
            shown = displayed_at(b_px, b_sz, n_b, side, tpx) if n_b > 0 else 0.0
            if p == tpx:
                shown = shown - osz if shown > osz else 0.0   # a replacement joins behind the others
            p_new = (touch_probability(side, tpx, best_same, self.horizon, sigma)
                     * execute_probability(shown, self.side_rate, self.horizon))
            decision = self.impulse_filter.decide(p_cur, p_new, fabs(<double>(tpx - p)) / <double>p)
            if decision == DECISION_LOCKED:
                self.last_locked += 1
            elif decision == DECISION_SKIP:
                self.last_filter_skipped += 1
            else:
                self.add_candidate(ACT_MODIFY, slot, side, tpx, tsz, p_new - p_cur, tsz - osz)
        # mispriced orders move onto the unmatched targets, best onto best, within the side cap.  The
        # rest of the targets take the side's unmatched resting orders, best onto best, as optional
        # modifies (reuse_unmatched), else become optional places worth P_new x edge.  Reuse is one
        # action where a cancel plus a place is two, and it keeps the side's committed size: as a
        # cancel ranked last by value, a stale order held the side cap while the place it blocked
        # waited (measured on the BTCUSDT capture: 10,248 cap-refused places and 72,712 budget-dropped
        # cancels in 8,823 cycles).  Its value is the place's P_new x edge less the order's own.
        k = 0
        for i in range(n_um):
            j = self.um_tgt[i]
            tpx = t_px[j]
            tsz = t_sz[j]
            if k < n_mis:
                slot = self.mis_slot[k]
                k += 1
                if committed + tsz <= cap_limit:
                    self.mmod_slot[self.n_mmod] = slot
                    self.mmod_px[self.n_mmod] = tpx
                    self.mmod_sz[self.n_mmod] = tsz
                    self.n_mmod += 1
                    committed += tsz
                    continue
                self.mand_slot[self.n_mand] = slot
                self.n_mand += 1
            shown = displayed_at(b_px, b_sz, n_b, side, tpx) if n_b > 0 else 0.0
            p_new = (touch_probability(side, tpx, best_same, self.horizon, sigma)
                     * execute_probability(shown, self.side_rate, self.horizon))
            edge = fabs(<double>tpx - mid_ticks) / mid_ticks if mid_ticks > 0.0 else 0.0
            if self.reuse_unmatched:
                while spare < n and (self.slot_used[self.side_slots[spare]]
                                     or self.state[self.side_slots[spare]] == SLOT_PENDING):
                    spare += 1
                if spare < n:
                    slot = self.side_slots[spare]
                    spare += 1
                    self.slot_used[slot] = 1
                    p_cur = self.order_fill_probability(slot, side, best_same, sigma)
                    edge_cur = (fabs(<double>self.o_px[slot] - mid_ticks) / mid_ticks
                                if mid_ticks > 0.0 else 0.0)
                    self.add_candidate(ACT_MODIFY, slot, side, tpx, tsz, p_new * edge - p_cur * edge_cur,
                                       tsz - self.o_sz[slot])
                    self.c_reuse[self.n_cand - 1] = 1
                    continue
            self.add_candidate(ACT_PLACE, -1, side, tpx, tsz, p_new * edge, tsz)
        while k < n_mis:
            self.mand_slot[self.n_mand] = self.mis_slot[k]
            self.n_mand += 1
            k += 1
        self.committed[side_idx] = committed
        # pass 3: unmatched orders become optional cancels worth -P_fill
        for i in range(n):
            slot = self.side_slots[i]
            if self.slot_used[slot]:
                continue
            if self.state[slot] == SLOT_PENDING:
                self.last_kept += 1
                continue
            self.add_candidate(ACT_CANCEL, slot, side, self.o_px[slot], self.o_sz[slot],
                               -self.order_fill_probability(slot, side, best_same, sigma), -self.o_sz[slot])

    cdef int diff_c(self,
                    const long long* bid_px, const double* bid_sz, int n_bid,
                    const long long* ask_px, const double* ask_sz, int n_ask,
                    const long long* book_bid_px, const double* book_bid_sz, int n_book_bid,
                    const long long* book_ask_px, const double* book_ask_sz, int n_book_ask,
                    long long best_bid, long long best_ask, double mid_ticks, double sigma,
                    bint pull_bid, bint pull_ask, double max_bid_size, double max_ask_size) noexcept:
        cdef int i, j, k, x, kind, side_idx, dropped = 0, n_optional_cancels = 0
        cdef int batch[3]
        cdef double cap_limit[2]
        cdef double optional_cost = 0.0, step
        cdef ExecutionBudget budget = self.budget
        self.n_actions = 0
        self.n_mand = 0
        self.n_mmod = 0
        self.n_cand = 0
        self.last_kept = 0
        self.last_modified = 0
        self.last_cancelled = 0
        self.last_placed = 0
        self.last_filter_skipped = 0
        self.last_locked = 0
        self.last_budget_skipped = 0
        self.last_mandatory = 0
        self.last_mispriced = 0
        self.cycles += 1
        if n_bid > self.max_levels:
            self.targets_dropped += n_bid - self.max_levels
        if n_ask > self.max_levels:
            self.targets_dropped += n_ask - self.max_levels
        if bid_px == NULL or bid_sz == NULL:
            n_bid = 0
        if ask_px == NULL or ask_sz == NULL:
            n_ask = 0
        if book_bid_px == NULL or book_bid_sz == NULL:
            n_book_bid = 0
        if book_ask_px == NULL or book_ask_sz == NULL:
            n_book_ask = 0
        if max_bid_size != max_bid_size or max_bid_size < 0.0:
            max_bid_size = 0.0
        if max_ask_size != max_ask_size or max_ask_size < 0.0:
            max_ask_size = 0.0
        self.collect_side(1, bid_px, bid_sz, n_bid, book_bid_px, book_bid_sz, n_book_bid,
                          best_bid, best_ask, mid_ticks, sigma, pull_bid, max_bid_size)
        self.collect_side(-1, ask_px, ask_sz, n_ask, book_ask_px, book_ask_sz, n_book_ask,
                          best_ask, best_bid, mid_ticks, sigma, pull_ask, max_ask_size)
        # mandatory cancels and modifies go out whatever the budget says
        if self.n_mand > 0:
            if budget.can_afford(self.n_mand):
                budget.spend(self.n_mand)
            else:
                budget.emergency_spend(self.n_mand)
        if self.n_mmod > 0:
            if budget.can_afford(self.n_mmod):
                budget.spend(self.n_mmod)
            else:
                budget.emergency_spend(self.n_mmod)
        # optional actions by value, best first (stable insertion sort of indices)
        for i in range(self.n_cand):
            x = i
            j = i - 1
            while j >= 0 and self.c_value[self.c_order[j]] < self.c_value[x]:
                self.c_order[j + 1] = self.c_order[j]
                j -= 1
            self.c_order[j + 1] = x
        cap_limit[0] = max_bid_size * (1.0 + CAP_SLACK) + 1e-12
        cap_limit[1] = max_ask_size * (1.0 + CAP_SLACK) + 1e-12
        batch[ACT_CANCEL] = self.n_mand
        batch[ACT_MODIFY] = self.n_mmod
        batch[ACT_PLACE] = 0
        for k in range(self.n_cand):
            i = self.c_order[k]
            kind = self.c_kind[i]
            side_idx = 0 if self.c_side[i] > 0 else 1
            if self.c_dsize[i] > 0.0 and self.committed[side_idx] + self.c_dsize[i] > cap_limit[side_idx]:
                self.cap_skipped += 1
                continue
            step = 1.0 if batch[kind] == 0 else budget.bulk_discount
            if not budget.can_afford_cost(optional_cost + step):
                self.last_budget_skipped += 1
                dropped += 1
                if kind == ACT_CANCEL:
                    self.budget_skipped_cancels += 1
                elif kind == ACT_MODIFY:
                    self.budget_skipped_modifies += 1
                else:
                    self.budget_skipped_places += 1
                continue
            optional_cost += step
            batch[kind] += 1
            self.committed[side_idx] += self.c_dsize[i]
            self.c_taken[i] = 1
        if dropped > 0:
            budget.skipped += 1
        if optional_cost > 0.0:
            budget.charge(optional_cost)
        # the action list: cancels, modifies, places (mandatory first within each kind)
        for i in range(self.n_mand):
            x = self.mand_slot[i]
            self.emit(ACT_CANCEL, x, self.o_side[x], self.o_px[x], self.o_sz[x], True)
        self.last_mandatory = self.n_mand
        for kind in range(3):
            if kind == ACT_MODIFY:
                for i in range(self.n_mmod):
                    x = self.mmod_slot[i]
                    self.emit(ACT_MODIFY, x, self.o_side[x], self.mmod_px[i], self.mmod_sz[i], True)
                self.last_modified += self.n_mmod
            for i in range(self.n_cand):
                if self.c_taken[i] and self.c_kind[i] == kind:
                    self.emit(kind, self.c_slot[i], self.c_side[i], self.c_px[i], self.c_sz[i], False)
                    if kind == ACT_CANCEL:
                        n_optional_cancels += 1
                    elif kind == ACT_MODIFY:
                        self.last_modified += 1
                        self.reused += self.c_reuse[i]
                    else:
                        self.last_placed += 1
        self.last_cancelled = self.n_mand + n_optional_cancels
        self.kept += self.last_kept
        self.modified += self.last_modified
        self.cancelled += self.last_cancelled
        self.placed += self.last_placed
        self.filter_skipped += self.last_filter_skipped
        self.locked += self.last_locked
        self.budget_skipped += self.last_budget_skipped
        self.mandatory_cancels += self.last_mandatory
        self.mispriced += self.last_mispriced
        self.mandatory_modifies += self.n_mmod
        return self.n_actions

    def diff(self, const long long[::1] bid_px, const double[::1] bid_sz,
             const long long[::1] ask_px, const double[::1] ask_sz, *,
             const long long[::1] book_bid_px=None, const double[::1] book_bid_sz=None,
             const long long[::1] book_ask_px=None, const double[::1] book_ask_sz=None,
             long long best_bid=0, long long best_ask=0, double mid_ticks=0.0, double sigma=0.0,
             bint pull_bid=False, bint pull_ask=False, double max_bid_size=INFINITY,
             double max_ask_size=INFINITY) -> int:
        """Diff the resting orders against per-side targets (best first); returns n_actions."""
        return self.diff_c(ll_ptr(bid_px), d_ptr(bid_sz), pair_len(bid_px, bid_sz),
                           ll_ptr(ask_px), d_ptr(ask_sz), pair_len(ask_px, ask_sz),
                           ll_ptr(book_bid_px), d_ptr(book_bid_sz), pair_len(book_bid_px, book_bid_sz),
                           ll_ptr(book_ask_px), d_ptr(book_ask_sz), pair_len(book_ask_px, book_ask_sz),
                           best_bid, best_ask, mid_ticks, sigma, pull_bid, pull_ask,
                           max_bid_size, max_ask_size)

    # ---- the last action list, as numpy views (valid until the next diff) ----

    @property
    def act_kind(self):
        return self.kind_arr[:self.n_actions]

    @property
    def act_slot(self):
        return self.slot_arr[:self.n_actions]

    @property
    def act_side(self):
        return self.side_arr[:self.n_actions]

    @property
    def act_px(self):
        return self.px_arr[:self.n_actions]

    @property
    def act_sz(self):
        return self.sz_arr[:self.n_actions]

    @property
    def act_mandatory(self):
        return self.mandatory_arr[:self.n_actions]

    def actions(self) -> list:
        """The last action list as (kind, slot, side, px_ticks, sz, mandatory) tuples."""
        return [(self.act_kind_c[i], self.act_slot_c[i], self.act_side_c[i], self.act_px_c[i],
                 self.act_sz_c[i], bool(self.act_mandatory_c[i])) for i in range(self.n_actions)]

    def counters(self) -> dict:
        return {
            "kept": self.kept, "modified": self.modified, "cancelled": self.cancelled,
            "placed": self.placed, "filter_skipped": self.filter_skipped, "locked": self.locked,
            "budget_skipped": self.budget_skipped, "budget_skipped_cancels": self.budget_skipped_cancels,
            "budget_skipped_modifies": self.budget_skipped_modifies,
            "budget_skipped_places": self.budget_skipped_places, "reused": self.reused,
            "mandatory_cancels": self.mandatory_cancels,
            "mispriced": self.mispriced, "mandatory_modifies": self.mandatory_modifies,
            "cap_skipped": self.cap_skipped, "targets_dropped": self.targets_dropped,
            "cycles": self.cycles, "rejected": self.rejected,
        }

    def __repr__(self) -> str:
        return f"Reconciler(max_orders={self.max_orders}, max_levels={self.max_levels}, {self.counters()})"
