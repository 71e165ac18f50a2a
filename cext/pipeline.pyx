# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""The engine's per-tick hot path in C: one call per market-data frame."""
from libc.math cimport INFINITY, isfinite
from posix.time cimport CLOCK_MONOTONIC, clock_gettime, timespec

from hlfast.book cimport Book
from hlfast.estimators cimport CascadeDetector, Drift, FillIntensity, LatencyEwma, Volatility
from hlfast.frames cimport FR_CH_BBO, FR_CH_L2BOOK, FR_CH_TRADES, FrameRouter
from hlfast.quoting cimport (GLFT_FULL, GLFT_SIMPLE, QUOTE_OK, Calibration, Quoter, TargetLiquidity,
                             effective_gamma_c)
from hlfast.reconcile cimport Reconciler
from hlfast.tape cimport Tape

PIPE_NOT_READY = PIPE_RC_NOT_READY
PIPE_NOT_QUOTING = PIPE_RC_NOT_QUOTING


cdef inline int64_t now_ns() noexcept nogil:
    # the same clock as time.perf_counter_ns() on Linux, so stage stamps line up with Python's
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return <int64_t>ts.tv_sec * 1000000000 + ts.tv_nsec


cdef inline double side_capacity(double position, double max_position, int side) noexcept nogil:
    """Total resting size allowed on a side (algorithms.md §7 asymmetric limits).

    |p| <= M: bid M - p, ask M + p.  Beyond the limit the increasing side is empty and the reducing
    side is capped at |p| (never flip through zero in one go)."""
    if not (isfinite(position) and isfinite(max_position) and max_position >= 0.0):
        return 0.0
    if position > max_position:
        return 0.0 if side > 0 else position
    if position < -max_position:
        return -position if side > 0 else 0.0
    return max_position - position if side > 0 else max_position + position


def capacity(double position, double max_position, int side) -> float:
    """Python view of the §7 side capacity (for tests)."""
    return side_capacity(position, max_position, side)


cdef class Pipeline:
    """book -> estimators -> quote -> reconcile, in C calls; returns the number of actions."""

    def __init__(self, Book book, *, Quoter quoter, Reconciler reconciler, Tape tape=None,
                 FrameRouter router=None, Volatility vol=None,
                 Drift drift=None, FillIntensity fill_intensity=None, CascadeDetector cascade=None,
                 LatencyEwma latency=None, TargetLiquidity target=None, Calibration calibration=None,
                 double gamma=0.1, double sigma_ref=2.5e-4, double fee_maker=1.5e-4,
                 double min_spread=1e-4, double horizon=30.0, double half_spread_mult=1.0,
                 double skew_mult=1.0, str glft_mode="full", double user_cap=INFINITY,
                 double max_position=0.0, double account_value=0.0):
        if book.sz_decimals != quoter.sz_decimals:
            raise ValueError("book and quoter disagree on sz_decimals")
        if glft_mode not in ("full", "simple"):
            raise ValueError(f"glft_mode must be 'full' or 'simple', got {glft_mode!r}")
        if router is not None and (router.book is not book or router.tape is not tape):
            raise ValueError("the router must feed this pipeline's book and tape")
        self.book = book
        self.tape = tape
        self.router = router
        self.quoter = quoter
        self.reconciler = reconciler
        self.vol = vol if vol is not None else Volatility(prior=sigma_ref)
        self.drift = drift if drift is not None else Drift()
        self.fill_intensity = (fill_intensity if fill_intensity is not None
                               else FillIntensity(book.unit))
        self.cascade = cascade if cascade is not None else CascadeDetector()
        self.latency = latency if latency is not None else LatencyEwma()
        self.target = target if target is not None else TargetLiquidity(max_levels=quoter.levels)
        self.calibration = calibration if calibration is not None else Calibration()
        self.hist_quote = LatencyHistogram()
        self.hist_decode = LatencyHistogram()
        self.tape_seen = tape.total if tape is not None else 0
        self.gamma_base = gamma
        self.sigma_ref = sigma_ref
        self.toxicity = 1.0
        self.fee_maker = fee_maker
        self.min_spread = min_spread
        self.horizon = horizon
        self.half_spread_mult = half_spread_mult
        self.skew_mult = skew_mult
        self.glft_mode = GLFT_FULL if glft_mode == "full" else GLFT_SIMPLE
        self.user_cap = user_cap if user_cap > 0.0 else INFINITY
        self.max_position = max_position
        self.account_value = account_value
        self.position = 0.0
        self.fill_rate = 0.0
        self.exch_cap_bid = 0.0
        self.exch_cap_ask = 0.0
        self.quoting = False
        self.pull_bid = False
        self.pull_ask = False
        self.hold = False
        self.last_rc = PIPE_RC_NOT_READY

    # ---- hot path --------------------------------------------------------------------------------
    cpdef int on_frame(self, object raw, long long recv_ns, bint run_cycle=True):
        """One market-data frame: route it into the book/tape, run the kernels; returns n_actions.

        recv_ns is the perf_counter_ns() stamp taken when the frame left the socket.  With
        run_cycle=False only the book, tape and estimators are updated (`stale` is set): the engine
        passes it for all but the last frame of a burst read at once, so quotes are computed once,
        from the newest state."""
        cdef int ch, n = 0
        cdef double t = recv_ns / 1e9
        cdef Tape tape = self.tape
        cdef long long seq, end
        self.n_actions = 0
        if self.router is None:
            self.channel = 0
            return 0
        ch = self.router.on_frame(raw)
        self.channel = ch
        if FR_CH_L2BOOK <= ch <= FR_CH_BBO:     # market data arrived, whatever its fate: staleness clock
            self.md_frames += 1
            self.last_md_ns = recv_ns
        if ch == FR_CH_L2BOOK or ch == FR_CH_BBO:
            if self.router.applied != 0:
                return 0
            self.hist_decode.record_c(now_ns() - recv_ns)
            n = self.on_book_c(t, run_cycle)
        elif ch == FR_CH_TRADES:
            if self.router.last_pushed <= 0 or tape is None:
                return 0
            self.hist_decode.record_c(now_ns() - recv_ns)
            seq = self.tape_seen
            if seq < tape.first_seq():
                seq = tape.first_seq()   # more trades than the ring holds arrived at once
            end = tape.total
            while seq < end:
                self.on_trade_c(t, tape.px_at(seq), tape.sz_at(seq), tape.side_at(seq), tape.liq_at(seq))
                seq += 1
            self.tape_seen = end
            if run_cycle:
                n = self.cycle_c(t)
            else:
                self.stale = True
        elif run_cycle and self.stale:
            n = self.cycle_c(t)
        self.n_actions = n
        return n

    cdef int on_book_c(self, double t, bint run_cycle) noexcept:
        """After a book update: feed the estimators and the queue tracker, then (optionally) a cycle."""
        cdef Book b = self.book
        cdef double micro, mid
        self.book_ticks += 1
        if not b.c_ready():
            self.not_ready += 1
            self.last_rc = PIPE_RC_NOT_READY
            return 0
        micro = b.c_microprice()
        mid = b.c_mid()
        self.vol.update_c(t, micro)
        self.drift.update_c(t, micro)
        self.fill_intensity.on_mid_c(t, mid)
        self.reconciler.tracker.on_book_c(b.bid_px, b.bid_sz, b.n_bids, 1, b.ask_px[0])
        self.reconciler.tracker.on_book_c(b.ask_px, b.ask_sz, b.n_asks, -1, b.bid_px[0])
        if not run_cycle:
            self.stale = True
            return 0
        return self.cycle_c(t)

    cdef int on_trade_c(self, double t, long long px_ticks, double sz, int aggressor_side,
                        bint is_liquidation) noexcept:
        """One public trade (aggressor +1 buy / -1 sell). No cycle: call cycle_c after the batch."""
        cdef double px = px_ticks / self.book.ticks_per_unit
        self.trade_ticks += 1
        self.fill_intensity.on_trade_c(t, px, aggressor_side)
        self.cascade.on_trade_c(t, px * sz, aggressor_side, is_liquidation)
        self.reconciler.tracker.on_trade(t, px_ticks, sz, aggressor_side)
        return 0

    cdef int cycle_c(self, double t) noexcept:
        cdef int64_t t0 = now_ns()
        cdef Book b = self.book
        cdef Quoter qt = self.quoter
        cdef FillIntensity fi = self.fill_intensity
        cdef double micro, sigma, cal, gamma, q_side, cap_bid, cap_ask
        cdef int n_bid = 0, n_ask = 0, n, rc
        cdef long long best_bid = 0, best_ask = 0
        cdef double mid_ticks = 0.0
        cdef bint ready = b.c_ready()
        if self.hold:
            return 0
        self.stale = False
        self.cycles += 1
        self.last_t = t
        self.reconciler.budget.refill(t)    # slow time refill of the execution budget
        sigma = self.vol.sigma_eff
        if ready:
            best_bid = b.bid_px[0]
            best_ask = b.ask_px[0]
            mid_ticks = 0.5 * (best_bid + best_ask)
        if self.quoting and ready:
            micro = b.c_microprice()
            cal = self.calibration.multiplier_c(t)
            gamma = effective_gamma_c(self.gamma_base, sigma, self.sigma_ref, self.toxicity,
                                      self.position, self.max_position, self.cascade.spread_mult, cal)
            self.gamma_eff = gamma
            self.target.compute_c(self.account_value, micro, gamma, sigma, self.fill_rate,
                                  self.latency.value_ms, self.user_cap, self.max_position, 0.0,
                                  self.vol.warm)
            q_side = self.target.q_target * self.cascade.size_factor
            self.qin.microprice = micro
            self.qin.best_bid = best_bid
            self.qin.best_ask = best_ask
            self.qin.sigma = sigma
            self.qin.A = fi.A
            self.qin.kappa_bid = fi.kappa_bid
            self.qin.kappa_ask = fi.kappa_ask
            self.qin.drift = self.drift.mu
            self.qin.horizon = self.horizon
            self.qin.position = self.position
            self.qin.max_position = self.max_position
            self.qin.pending_bid = 0.0      # the reconciler owns in-flight sizes (its side caps)
            self.qin.pending_ask = 0.0
            self.qin.gamma = gamma
            self.qin.fee_maker = self.fee_maker
            self.qin.q_bid = q_side
            self.qin.q_ask = q_side
            self.qin.exch_cap_bid = self.exch_cap_bid
            self.qin.exch_cap_ask = self.exch_cap_ask
            self.qin.half_spread_mult = self.half_spread_mult
            self.qin.skew_mult = self.skew_mult
            self.qin.unit_size = 0.0
            self.qin.min_spread = self.min_spread
            self.qin.adverse_sel = 0.0
            self.qin.glft_mode = self.glft_mode
            rc = qt.compute(&self.qin)
            self.last_rc = rc
            if rc == QUOTE_OK:
                n_bid = qt.n_bid
                n_ask = qt.n_ask
        elif not ready:
            self.not_ready += 1
            self.last_rc = PIPE_RC_NOT_READY
        else:
            self.last_rc = PIPE_RC_NOT_QUOTING
        cap_bid = side_capacity(self.position, self.max_position, 1)
        cap_ask = side_capacity(self.position, self.max_position, -1)
        if self.exch_cap_bid < cap_bid:
            cap_bid = self.exch_cap_bid
        if self.exch_cap_ask < cap_ask:
            cap_ask = self.exch_cap_ask
        if not self.quoting:
            # nothing may rest: every order is a mandatory cancel on both sides
            n = self.reconciler.diff_c(<const long long*>qt.bid_px_c, qt.bid_sz_c, 0,
                                       <const long long*>qt.ask_px_c, qt.ask_sz_c, 0,
                                       b.bid_px, b.bid_sz, b.n_bids, b.ask_px, b.ask_sz, b.n_asks,
                                       best_bid, best_ask, mid_ticks, sigma, True, True, 0.0, 0.0)
        else:
            n = self.reconciler.diff_c(<const long long*>qt.bid_px_c, qt.bid_sz_c, n_bid,
                                       <const long long*>qt.ask_px_c, qt.ask_sz_c, n_ask,
                                       b.bid_px, b.bid_sz, b.n_bids, b.ask_px, b.ask_sz, b.n_asks,
                                       best_bid, best_ask, mid_ticks, sigma,
                                       self.pull_bid, self.pull_ask, cap_bid, cap_ask)
        if n > 0:
            self.action_cycles += 1
        self.hist_quote.record_c(now_ns() - t0)
        return n

    # ---- Python entry points (tests, orchestration) ----------------------------------------------
    def on_book(self, double t, bint run_cycle=True) -> int:
        return self.on_book_c(t, run_cycle)

    def on_trade(self, double t, long long px_ticks, double sz, int aggressor_side,
                 bint is_liquidation=False) -> int:
        return self.on_trade_c(t, px_ticks, sz, aggressor_side, is_liquidation)

    def cycle(self, double t) -> int:
        return self.cycle_c(t)

    def side_caps(self) -> tuple:
        """(bid, ask) total resting size allowed now: §7 limits and the exchange caps."""
        cdef double cb = side_capacity(self.position, self.max_position, 1)
        cdef double ca = side_capacity(self.position, self.max_position, -1)
        return (min(cb, self.exch_cap_bid), min(ca, self.exch_cap_ask))
