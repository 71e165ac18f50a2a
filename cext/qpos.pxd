# Queue-position tracker: size ahead of each resting order, touch-volume rate, fill probabilities.
#
# Units: time in seconds; prices as int64 ticks (the coin's finest price unit); sizes in coin units;
# sigma per sqrt(second) in log-return units; side +1 = bid, -1 = ask.  Fractional distances are
# ratios of tick counts, so no tick size is needed here.
#
# Orders live in slots 0..max_orders-1 assigned by the order state machine.  Calls with a bad slot or
# non-finite input change nothing, return -1 (or NaN for probabilities) and count in `rejected`.
cimport cython


@cython.final
cdef class QueueTracker:
    cdef readonly int max_orders
    cdef readonly double vol_half_life     # s, half-life of the touch-volume EWMA
    cdef double vol_tau                    # s, e-folding time = half-life / ln 2
    cdef readonly double now               # s, latest event time seen (add / on_trade / advance)
    cdef readonly int n_active
    cdef readonly long long rejected       # calls refused for bad slot / bad input
    # touch-volume rate per passive side, index 0 = bids (hit by sell aggressors), 1 = asks
    cdef double rate_acc[2]                # coin/s, value at rate_t
    cdef double rate_t[2]                  # s, time rate_acc refers to
    # per-slot state (C arrays of max_orders)
    cdef char* active
    cdef int* side_of                      # +1 / -1
    cdef long long* px_of                  # ticks
    cdef double* sz_of                     # coin
    cdef double* ahead                     # coin, queue ahead Q_a
    cdef double* others_last               # coin, displayed size at px excluding ours at the last snapshot
    cdef double* traded_since              # coin, traded at px on our side since the last snapshot
    cdef double* placed_at                 # s
    cdef int* scratch_slots                # on_book: this side's orders, best first
    # active slots per side (index 0 bids, 1 asks), ascending slot order: side_live[index * max_orders + k]
    # for k < n_side_live[index]; trades and snapshots visit only these, not every slot
    cdef int* side_live
    cdef int n_side_live[2]
    cdef long long* scratch_key            # on_book: -side * px of scratch_slots

    cdef bint bad_slot(self, int slot) noexcept
    cdef void link(self, int slot, int index) noexcept     # into side_live[index], keeping slot order
    cdef void unlink(self, int slot, int index) noexcept
    cdef void see_time(self, double t) noexcept
    cdef double rate_now(self, int index) noexcept   # index 0 bids / 1 asks, decayed to `now`, floored

    # add(slot, side, px_ticks, sz, displayed_at_px, t): placement ack; displayed_at_px = displayed size
    # at px_ticks on our side EXCLUDING this order (the book before it joined) -> initial Q_a.  0 / -1.
    cpdef int add(self, int slot, int side, long long px_ticks, double sz, double displayed_at_px,
                  double t) noexcept
    cpdef int remove(self, int slot) noexcept
    # resize keeps the queue position (a size decrease on the venue keeps priority).
    cpdef int resize(self, int slot, double new_sz) noexcept
    # on_trade(t, px_ticks, sz, aggressor_side): aggressor +1 buy (hits asks), -1 sell (hits bids).
    # Depletes Q_a at px on the passive side, zeroes it for orders the trade went through, feeds the
    # passive side's touch-volume EWMA.  Returns the number of our orders affected, -1 on bad input.
    cpdef int on_trade(self, double t, long long px_ticks, double sz, int aggressor_side) noexcept
    # on_book_c(px, sz, n, side, best_opposite_ticks): one side of a snapshot, best first (bids
    # descending, asks ascending), displayed sizes INCLUDING our own orders.  best_opposite_ticks <= 0
    # means unknown.  Applies the cancel-attribution rule; Q_a never increases.  Python: on_book(...).
    cdef int on_book_c(self, const long long* px, const double* sz, int n, int side,
                       long long best_opposite_ticks) noexcept
    cpdef void advance(self, double t) noexcept
    # current touch-volume rate (coin/s) of a passive side (+1 bids / -1 asks), decayed to `now`, floor 1e-6
    cpdef double touch_rate(self, int side) noexcept
    # P_touch(H): 1 at/inside the touch, else min(1, 2*Phi(-d/(sigma*sqrt(H)))), d = |best - px|/best.
    # best_same_ticks = best price on the order's own side (<= 0: unknown -> treated as at the touch).
    cpdef double probability_touch(self, int slot, double horizon, double sigma,
                                   long long best_same_ticks) noexcept
    # P_exec|touch(H) = exp(-Q_a / (v_side * H))
    cpdef double probability_execute_given_touch(self, int slot, double horizon) noexcept
    cpdef double fill_probability(self, int slot, double horizon, double sigma,
                                  long long best_same_ticks) noexcept
    # P_fill of a fresh order joining the back of the level: Q_a = displayed_at_px
    cpdef double fill_probability_new(self, int side, long long px_ticks, double displayed_at_px,
                                      double horizon, double sigma, long long best_same_ticks) noexcept
    # True when a fresh order at new_px_ticks would raise P_fill by more than `threshold` (relative).
    cpdef bint should_refresh(self, int slot, long long new_px_ticks, double displayed_at_new_px,
                              double horizon, double sigma, long long best_same_ticks,
                              double threshold=*) noexcept
    cpdef double queue_ahead(self, int slot) noexcept


# Shared maths (also used by the reconciler).
cdef double touch_probability(int side, long long px_ticks, long long best_same_ticks,
                              double horizon, double sigma) noexcept nogil
cdef double execute_probability(double queue_ahead, double rate, double horizon) noexcept nogil
