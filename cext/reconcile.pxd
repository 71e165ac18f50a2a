# Reconcile kernel: execution budget, impulse filter, diff of resting orders vs target ladder.
#
# Units: prices as int64 ticks (the coin's finest price unit), sizes in coin units, time in seconds,
# sigma per sqrt(second) (log-return units), fractions of price for distances, side +1 bid / -1 ask.
cimport cython

from hlfast.qpos cimport QueueTracker, execute_probability, touch_probability

cpdef enum:
    DECISION_SKIP = 0
    DECISION_UPDATE = 1
    DECISION_LOCKED = 2

cpdef enum:
    ACT_CANCEL = 0
    ACT_MODIFY = 1
    ACT_PLACE = 2

cpdef enum:
    SLOT_FREE = 0
    SLOT_RESTING = 1         # acked and resting: matched, modified, cancelled as needed
    SLOT_PENDING = 2         # sent, not acked: holds its target, only mandatory cancels touch it
    SLOT_CANCELLING = 3      # cancel in flight: not matched, still counts against the side cap


# Valid price step (5 significant figures, integer prices always valid) in finest-unit ticks.
cdef long long valid_tick_units(long long px_ticks, int sz_decimals) noexcept nogil


@cython.final
cdef class ExecutionBudget:
    cdef readonly double initial           # tokens at start (inf = unlimited, a rollback knob)
    cdef readonly double max_tokens        # earning stops at this balance
    cdef readonly double reserve           # tokens only emergency_spend may use
    cdef readonly double reward_per_1000   # tokens earned per $1000 filled
    cdef readonly double reward_floor      # minimum tokens per fill
    cdef readonly double bulk_discount     # cost of a batch of n actions = 1 + bulk_discount*(n - 1)
    cdef readonly bint enabled             # False: never gates (rollback knob), still counts spent
    cdef readonly double refill_per_s      # tokens added per second of time, up to max_tokens (0 = off)
    cdef readonly double available         # tokens now (negative after emergency spends = debt)
    cdef readonly double earned
    cdef readonly double refilled          # tokens added by the time refill
    cdef readonly double spent
    cdef double t_refill                   # time of the last refill, s (NaN before the first)
    cdef readonly long long skipped        # refused spends (and reconcile cycles that dropped actions)
    cdef readonly long long emergency_uses

    cpdef double on_fill(self, double notional) noexcept     # notional in USD; returns tokens earned
    cpdef double refill(self, double t) noexcept              # time in s; returns tokens added
    cpdef double cost(self, int n) noexcept                   # tokens for one batch of n actions
    cpdef bint can_afford(self, int n) noexcept
    cpdef bint spend(self, int n) noexcept                    # False (and skipped += 1) when short
    cpdef bint emergency_spend(self, int n) noexcept          # always charges; False if it went into debt
    cdef bint can_afford_cost(self, double tokens) noexcept
    cdef void charge(self, double tokens) noexcept


@cython.final
cdef class ImpulseFilter:
    cdef readonly double threshold          # relative P_fill gain needed to update (0.10)
    cdef readonly double lock_threshold     # P_cur above this locks the order (0.30; 1.0 disables)
    cdef readonly double lock_override_bps  # a price move at least this large overrides the lock (25)
    cdef double lock_override_frac
    cdef readonly bint enabled              # False: every decision is UPDATE
    # absolute P_fill gain also required to update (0 = the spec's rule; the relative gain of a tiny
    # probability far from the touch is large for a one-tick move)
    cdef readonly double min_gain
    cdef readonly long long updated
    cdef readonly long long skipped
    cdef readonly long long locked

    # price_move_frac = |new px - current px| / current px
    cpdef int decide(self, double p_cur, double p_new, double price_move_frac) noexcept


@cython.final
cdef class Reconciler:
    cdef readonly QueueTracker tracker
    cdef readonly ExecutionBudget budget
    cdef readonly ImpulseFilter impulse_filter
    cdef readonly int max_orders
    cdef readonly int max_levels            # per side
    cdef readonly int match_tolerance_ticks  # in valid price steps
    cdef readonly double match_tolerance_bps
    cdef readonly double size_tolerance     # relative size change treated as unchanged
    cdef readonly int sz_decimals
    cdef readonly double horizon            # s, fill-probability horizon H
    # True: an unmatched resting order moves onto an unmatched target (one optional modify) instead of
    # an optional cancel plus an optional place (see collect_side)
    cdef readonly bint reuse_unmatched

    # mirror of our orders, per slot
    cdef char* state                        # SLOT_*
    cdef int* o_side
    cdef long long* o_px
    cdef double* o_sz
    # slots not SLOT_FREE in ascending order (the diff walks these, not every slot)
    cdef int* live_slots
    cdef int n_live

    # scratch (one cycle)
    cdef int* side_slots                    # eligible order slots of the side being processed, best first
    cdef long long* side_key                # -side * px of side_slots (ascending = best first)
    cdef double side_rate                   # touch-volume rate of the side, read once per cycle
    cdef char* slot_used                    # matched / cancelled this cycle
    cdef int* mand_slot                     # mandatory cancels (slots)
    cdef int n_mand
    cdef int* mis_slot                      # mispriced resting orders of the side, best first
    cdef int* um_tgt                        # unmatched target indices of the side, best first
    cdef int* mmod_slot                     # mandatory modifies: a mispriced order moved onto a target
    cdef long long* mmod_px
    cdef double* mmod_sz
    cdef int n_mmod
    cdef int cand_cap
    cdef int* c_kind
    cdef int* c_slot
    cdef int* c_side
    cdef long long* c_px
    cdef double* c_sz
    cdef double* c_value
    cdef double* c_dsize                    # change of committed size on the side if accepted
    cdef char* c_taken
    cdef int* c_order
    cdef char* c_reuse                      # 1: a modify moving an unmatched order onto an unmatched target
    cdef int n_cand
    cdef double committed[2]                # per side (0 bid, 1 ask): size that stays resting

    # output of the last diff: n_actions entries, cancels first, then modifies, then places
    cdef readonly int n_actions
    cdef int* act_kind_c                    # ACT_*
    cdef int* act_slot_c                    # order slot, -1 for a place
    cdef int* act_side_c
    cdef long long* act_px_c                # ticks (cancel: the order's price)
    cdef double* act_sz_c                   # coin (cancel: the order's size)
    cdef signed char* act_mandatory_c
    cdef object kind_arr, slot_arr, side_arr, px_arr, sz_arr, mandatory_arr   # numpy owners of act_*

    # cumulative counters (one per decision)
    cdef readonly long long kept
    cdef readonly long long modified
    cdef readonly long long cancelled
    cdef readonly long long placed
    cdef readonly long long filter_skipped
    cdef readonly long long locked
    cdef readonly long long budget_skipped
    cdef readonly long long budget_skipped_cancels   # ... of which optional cancels
    cdef readonly long long budget_skipped_modifies  # ... optional modifies
    cdef readonly long long budget_skipped_places    # ... places
    cdef readonly long long reused          # optional modifies of unmatched orders onto unmatched targets
    cdef readonly long long mandatory_cancels
    cdef readonly long long mispriced       # orders priced through their side's target touch: mandatory
    cdef readonly long long mandatory_modifies  # ... of which moved onto an unmatched target
    cdef readonly long long cap_skipped     # places / size increases refused by the side cap
    cdef readonly long long targets_dropped  # invalid or crossing targets
    cdef readonly long long cycles
    cdef readonly long long rejected        # mirror calls with a bad slot / input
    # last cycle
    cdef readonly int last_kept
    cdef readonly int last_modified
    cdef readonly int last_cancelled
    cdef readonly int last_placed
    cdef readonly int last_filter_skipped
    cdef readonly int last_locked
    cdef readonly int last_budget_skipped
    cdef readonly int last_mandatory
    cdef readonly int last_mispriced

    cdef void mark_live(self, int slot) noexcept      # call before the slot's state leaves SLOT_FREE
    cdef void mark_free(self, int slot) noexcept      # call before the slot's state becomes SLOT_FREE
    cpdef int order_placed(self, int slot, int side, long long px_ticks, double sz, double displayed_at_px,
                           double t) noexcept
    cpdef int order_pending(self, int slot, int side, long long px_ticks, double sz) noexcept
    cpdef int order_cancelling(self, int slot) noexcept
    cpdef int order_resized(self, int slot, double sz) noexcept
    cpdef int order_gone(self, int slot) noexcept

    # diff_c: targets per side best first (bids descending, asks ascending; ticks, sizes), the book
    # side levels best first (for the displayed size at a target price), best bid/ask ticks (<= 0:
    # unknown), mid in ticks (double), sigma per sqrt(s), pull flags (cancel every order of that
    # side), and per-side caps on total resting size in coin (inf = none).  Orders priced through
    # their side's target touch by more than the match tolerance (or on a side with no target) get
    # a mandatory modify onto an unmatched target or a mandatory cancel.  Fills the action arrays
    # (mandatory first within each kind) and returns n_actions; never raises.  Python: diff(...).
    cdef int diff_c(self,
                    const long long* bid_px, const double* bid_sz, int n_bid,
                    const long long* ask_px, const double* ask_sz, int n_ask,
                    const long long* book_bid_px, const double* book_bid_sz, int n_book_bid,
                    const long long* book_ask_px, const double* book_ask_sz, int n_book_ask,
                    long long best_bid, long long best_ask, double mid_ticks, double sigma,
                    bint pull_bid, bint pull_ask, double max_bid_size, double max_ask_size) noexcept
    cdef void collect_side(self, int side, const long long* t_px, const double* t_sz, int n_t,
                           const long long* b_px, const double* b_sz, int n_b,
                           long long best_same, long long best_opposite, double mid_ticks, double sigma,
                           bint pull, double cap) noexcept
    cdef void add_candidate(self, int kind, int slot, int side, long long px, double sz, double value,
                            double dsize) noexcept
    cdef double order_fill_probability(self, int slot, int side, long long best_same, double sigma) noexcept
    cdef void emit(self, int kind, int slot, int side, long long px, double sz, bint mandatory) noexcept
