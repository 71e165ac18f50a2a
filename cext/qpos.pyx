# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Queue-position tracker (algorithms.md section 10).

Q_a per resting order: set at the placement ack from the displayed size at our price, reduced by trades
at that price and by the share of cancels attributed to the front of the queue, zeroed when the market
trades or quotes through our price, never increased.  A per-side EWMA of aggressive volume per second
gives P_exec|touch; a driftless Gaussian hitting probability gives P_touch.
"""
cimport cython
from libc.math cimport INFINITY, NAN, erfc, exp, isfinite, log, sqrt
from libc.stdlib cimport calloc, free

cdef double RATE_FLOOR = 1e-6          # coin/s, floor of the touch-volume rate (spec)
cdef double INV_SQRT2 = 0.7071067811865476


cdef inline int side_index(int side) noexcept nogil:
    return 0 if side > 0 else 1


cdef double touch_probability(int side, long long px_ticks, long long best_same_ticks,
                              double horizon, double sigma) noexcept nogil:
    cdef double distance, scale
    if best_same_ticks <= 0:
        return 1.0
    if side > 0:
        if px_ticks >= best_same_ticks:
            return 1.0
        distance = <double>(best_same_ticks - px_ticks) / <double>best_same_ticks
    else:
        if px_ticks <= best_same_ticks:
            return 1.0
        distance = <double>(px_ticks - best_same_ticks) / <double>best_same_ticks
    if not (sigma > 0.0 and horizon > 0.0):
        return 0.0
    scale = sigma * sqrt(horizon)
    # 2*Phi(-x) = erfc(x / sqrt 2)
    return min(1.0, erfc(distance / scale * INV_SQRT2))


cdef double execute_probability(double queue_ahead, double rate, double horizon) noexcept nogil:
    if queue_ahead <= 0.0:
        return 1.0
    if not horizon > 0.0:
        return 0.0
    if rate < RATE_FLOOR:
        rate = RATE_FLOOR
    return exp(-queue_ahead / (rate * horizon))


@cython.final
cdef class QueueTracker:
    """Queue position and fill probability of up to `max_orders` resting orders (one per slot)."""

    def __cinit__(self, int max_orders=128, double vol_half_life=60.0):
        if max_orders <= 0:
            raise ValueError(f"max_orders must be positive, got {max_orders}")
        if not (vol_half_life > 0.0 and isfinite(vol_half_life)):
            raise ValueError(f"vol_half_life must be a positive number of seconds, got {vol_half_life}")
        self.max_orders = max_orders
        self.vol_half_life = vol_half_life
        self.vol_tau = vol_half_life / log(2.0)
        self.now = -INFINITY
        self.rate_acc[0] = 0.0
        self.rate_acc[1] = 0.0
        self.rate_t[0] = -INFINITY
        self.rate_t[1] = -INFINITY
        self.active = <char*>calloc(max_orders, sizeof(char))
        self.side_of = <int*>calloc(max_orders, sizeof(int))
        self.px_of = <long long*>calloc(max_orders, sizeof(long long))
        self.sz_of = <double*>calloc(max_orders, sizeof(double))
        self.ahead = <double*>calloc(max_orders, sizeof(double))
        self.others_last = <double*>calloc(max_orders, sizeof(double))
        self.traded_since = <double*>calloc(max_orders, sizeof(double))
        self.placed_at = <double*>calloc(max_orders, sizeof(double))
        self.scratch_slots = <int*>calloc(max_orders, sizeof(int))
        self.scratch_key = <long long*>calloc(max_orders, sizeof(long long))
        self.side_live = <int*>calloc(2 * max_orders, sizeof(int))
        self.n_side_live[0] = 0
        self.n_side_live[1] = 0
        if (not self.active or not self.side_of or not self.px_of or not self.sz_of or not self.ahead
                or not self.others_last or not self.traded_since or not self.placed_at
                or not self.scratch_slots or not self.scratch_key or not self.side_live):
            raise MemoryError()

    def __dealloc__(self):
        free(self.active)
        free(self.side_of)
        free(self.px_of)
        free(self.sz_of)
        free(self.ahead)
        free(self.others_last)
        free(self.traded_since)
        free(self.placed_at)
        free(self.scratch_slots)
        free(self.scratch_key)
        free(self.side_live)

    cdef bint bad_slot(self, int slot) noexcept:
        return slot < 0 or slot >= self.max_orders

    cdef void link(self, int slot, int index) noexcept:
        cdef int* live = self.side_live + index * self.max_orders
        cdef int k = self.n_side_live[index]
        while k > 0 and live[k - 1] > slot:
            live[k] = live[k - 1]
            k -= 1
        live[k] = slot
        self.n_side_live[index] += 1

    cdef void unlink(self, int slot, int index) noexcept:
        cdef int* live = self.side_live + index * self.max_orders
        cdef int n = self.n_side_live[index]
        cdef int k = 0
        while k < n and live[k] != slot:
            k += 1
        if k == n:
            return
        while k + 1 < n:
            live[k] = live[k + 1]
            k += 1
        self.n_side_live[index] = n - 1

    cdef void see_time(self, double t) noexcept:
        if t > self.now:
            self.now = t

    cpdef int add(self, int slot, int side, long long px_ticks, double sz, double displayed_at_px,
                  double t) noexcept:
        if (self.bad_slot(slot) or (side != 1 and side != -1) or px_ticks <= 0 or not sz > 0.0
                or not isfinite(sz) or not isfinite(displayed_at_px) or not isfinite(t)):
            self.rejected += 1
            return -1
        if displayed_at_px < 0.0:
            displayed_at_px = 0.0
        if not self.active[slot]:
            self.n_active += 1
            self.link(slot, side_index(side))
        elif self.side_of[slot] != side:
            self.unlink(slot, side_index(self.side_of[slot]))
            self.link(slot, side_index(side))
        self.active[slot] = 1
        self.side_of[slot] = side
        self.px_of[slot] = px_ticks
        self.sz_of[slot] = sz
        self.ahead[slot] = displayed_at_px
        self.others_last[slot] = displayed_at_px
        self.traded_since[slot] = 0.0
        self.placed_at[slot] = t
        self.see_time(t)
        return 0

    cpdef int remove(self, int slot) noexcept:
        if self.bad_slot(slot):
            self.rejected += 1
            return -1
        if self.active[slot]:
            self.active[slot] = 0
            self.n_active -= 1
            self.unlink(slot, side_index(self.side_of[slot]))
        return 0

    cpdef int resize(self, int slot, double new_sz) noexcept:
        if self.bad_slot(slot) or not self.active[slot] or not new_sz > 0.0 or not isfinite(new_sz):
            self.rejected += 1
            return -1
        self.sz_of[slot] = new_sz
        return 0

    cpdef void advance(self, double t) noexcept:
        if isfinite(t):
            self.see_time(t)

    cdef double rate_now(self, int index) noexcept:
        cdef double age = self.now - self.rate_t[index]
        cdef double rate = self.rate_acc[index]
        if age > 0.0:
            rate = rate * exp(-age / self.vol_tau)
        return rate if rate > RATE_FLOOR else RATE_FLOOR

    cpdef double touch_rate(self, int side) noexcept:
        return self.rate_now(side_index(side))

    cpdef int on_trade(self, double t, long long px_ticks, double sz, int aggressor_side) noexcept:
        cdef int passive, index, slot, k, affected = 0
        cdef int* live
        cdef double age, q
        cdef long long p
        if (aggressor_side != 1 and aggressor_side != -1) or px_ticks <= 0 or not sz > 0.0 \
                or not isfinite(sz) or not isfinite(t):
            self.rejected += 1
            return -1
        self.see_time(t)
        passive = -aggressor_side
        index = side_index(passive)
        # exponentially weighted volume per second: sum(sz_i * e^{-(t - t_i)/tau}) / tau
        age = t - self.rate_t[index]
        if age > 0.0:  # a late trade (age <= 0) is counted at the last update time
            self.rate_acc[index] = self.rate_acc[index] * exp(-age / self.vol_tau)
            self.rate_t[index] = t
        self.rate_acc[index] += sz / self.vol_tau
        live = self.side_live + index * self.max_orders
        for k in range(self.n_side_live[index]):
            slot = live[k]
            p = self.px_of[slot]
            if p == px_ticks:
                q = self.ahead[slot] - sz
                self.ahead[slot] = q if q > 0.0 else 0.0
                self.traded_since[slot] += sz
                affected += 1
            elif (passive > 0 and px_ticks < p) or (passive < 0 and px_ticks > p):
                # the aggressor swept through our level: nothing is left in front of us
                self.ahead[slot] = 0.0
                affected += 1
        return affected

    cdef int on_book_c(self, const long long* px, const double* sz, int n, int side,
                       long long best_opposite_ticks) noexcept:
        cdef int slot, i, j, run_end, k = 0, level = 0, updated = 0, m
        cdef int* live
        cdef long long p, key
        cdef double displayed, ours, others, cancelled, q, q_new, behind, front2, behind2, p_back
        if side != 1 and side != -1 or n < 0:
            self.rejected += 1
            return -1
        # our orders on this side, best first (key = -side * px ascending), so one merge walk over the
        # levels finds every price and sums our own size per price
        live = self.side_live + side_index(side) * self.max_orders
        for m in range(self.n_side_live[side_index(side)]):
            slot = live[m]
            key = -side * self.px_of[slot]
            j = k - 1
            while j >= 0 and self.scratch_key[j] > key:
                self.scratch_key[j + 1] = self.scratch_key[j]
                self.scratch_slots[j + 1] = self.scratch_slots[j]
                j -= 1
            self.scratch_key[j + 1] = key
            self.scratch_slots[j + 1] = slot
            k += 1
        i = 0
        while i < k:
            p = self.px_of[self.scratch_slots[i]]
            ours = 0.0
            run_end = i
            while run_end < k and self.scratch_key[run_end] == self.scratch_key[i]:
                ours += self.sz_of[self.scratch_slots[run_end]]
                run_end += 1
            if best_opposite_ticks > 0 and ((side > 0 and best_opposite_ticks <= p)
                                            or (side < 0 and best_opposite_ticks >= p)):
                # the opposite side quotes through our price: the level in front of us is gone
                for j in range(i, run_end):
                    slot = self.scratch_slots[j]
                    self.ahead[slot] = 0.0
                    self.others_last[slot] = 0.0
                    self.traded_since[slot] = 0.0
                    updated += 1
                i = run_end
                continue
            if n == 0:
                i = run_end
                continue
            if (side > 0 and (p > px[0] or p < px[n - 1])) or (side < 0 and (p < px[0] or p > px[n - 1])):
                # better than the best (level in front consumed, Q_a stays) or beyond the displayed
                # depth (no information): keep Q_a and the baseline.
                for j in range(i, run_end):
                    self.traded_since[self.scratch_slots[j]] = 0.0
                i = run_end
                continue
            while level < n and -side * px[level] < self.scratch_key[i]:
                level += 1
            displayed = sz[level] if (level < n and px[level] == p) else 0.0
            if not isfinite(displayed) or displayed < 0.0:
                self.rejected += run_end - i
                i = run_end
                continue
            others = displayed - ours
            if others < 0.0:
                others = 0.0
            for j in range(i, run_end):
                slot = self.scratch_slots[j]
                q = self.ahead[slot]
                q_new = q
                cancelled = (self.others_last[slot] - others) - self.traded_since[slot]
                if cancelled > 0.0 and q > 0.0:
                    behind = self.others_last[slot] - self.traded_since[slot] - q
                    if behind < 0.0:
                        behind = 0.0
                    front2 = q * q
                    behind2 = behind * behind
                    # both squares can underflow for dust queues: then nothing measurable is behind us
                    p_back = behind2 / (behind2 + front2) if behind2 + front2 > 0.0 else 0.0
                    q_new = q - (1.0 - p_back) * cancelled
                if q_new > others:
                    q_new = others
                if q_new < 0.0:
                    q_new = 0.0
                if q_new < q:
                    self.ahead[slot] = q_new
                self.others_last[slot] = others
                self.traded_since[slot] = 0.0
                updated += 1
            i = run_end
        return updated

    def on_book(self, const long long[::1] px not None, const double[::1] sz not None, int side,
                long long best_opposite_ticks=0) -> int:
        """Apply one side of a book snapshot (best first, sizes including ours)."""
        if px.shape[0] != sz.shape[0]:
            self.rejected += 1
            return -1
        if px.shape[0] == 0:
            return self.on_book_c(NULL, NULL, 0, side, best_opposite_ticks)
        return self.on_book_c(&px[0], &sz[0], <int>px.shape[0], side, best_opposite_ticks)

    cpdef double probability_touch(self, int slot, double horizon, double sigma,
                                   long long best_same_ticks) noexcept:
        if self.bad_slot(slot) or not self.active[slot]:
            return NAN
        return touch_probability(self.side_of[slot], self.px_of[slot], best_same_ticks, horizon, sigma)

    cpdef double probability_execute_given_touch(self, int slot, double horizon) noexcept:
        if self.bad_slot(slot) or not self.active[slot]:
            return NAN
        return execute_probability(self.ahead[slot], self.rate_now(side_index(self.side_of[slot])), horizon)

    cpdef double fill_probability(self, int slot, double horizon, double sigma,
                                  long long best_same_ticks) noexcept:
        if self.bad_slot(slot) or not self.active[slot]:
            return NAN
        return (touch_probability(self.side_of[slot], self.px_of[slot], best_same_ticks, horizon, sigma)
                * execute_probability(self.ahead[slot], self.rate_now(side_index(self.side_of[slot])),
                                      horizon))

    cpdef double fill_probability_new(self, int side, long long px_ticks, double displayed_at_px,
                                      double horizon, double sigma, long long best_same_ticks) noexcept:
        if side != 1 and side != -1:
            return NAN
        return (touch_probability(side, px_ticks, best_same_ticks, horizon, sigma)
                * execute_probability(displayed_at_px, self.rate_now(side_index(side)), horizon))

    cpdef bint should_refresh(self, int slot, long long new_px_ticks, double displayed_at_new_px,
                              double horizon, double sigma, long long best_same_ticks,
                              double threshold=0.10) noexcept:
        cdef double p_cur, p_new
        if self.bad_slot(slot) or not self.active[slot]:
            return False
        p_cur = self.fill_probability(slot, horizon, sigma, best_same_ticks)
        p_new = self.fill_probability_new(self.side_of[slot], new_px_ticks, displayed_at_new_px,
                                          horizon, sigma, best_same_ticks)
        return (p_new - p_cur) / max(p_cur, 1e-9) > threshold

    cpdef double queue_ahead(self, int slot) noexcept:
        if self.bad_slot(slot) or not self.active[slot]:
            return NAN
        return self.ahead[slot]

    def is_active(self, int slot) -> bool:
        return not self.bad_slot(slot) and self.active[slot] != 0

    def order_side(self, int slot) -> int:
        return self.side_of[slot] if self.is_active(slot) else 0

    def order_px(self, int slot) -> int:
        return self.px_of[slot] if self.is_active(slot) else 0

    def order_sz(self, int slot) -> float:
        return self.sz_of[slot] if self.is_active(slot) else 0.0

    def placed_time(self, int slot) -> float:
        return self.placed_at[slot] if self.is_active(slot) else NAN

    def __repr__(self) -> str:
        return (f"QueueTracker(max_orders={self.max_orders}, active={self.n_active}, "
                f"rate_bid={self.touch_rate(1):.6g}, rate_ask={self.touch_rate(-1):.6g})")
