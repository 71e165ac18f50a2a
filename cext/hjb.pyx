# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""HJB market-making module (algorithms.md §12): value function, fill-rate models, control
evaluation, the 5×5 grid optimiser, the fast heuristic and the closed-form optimum.

Objective rate of a control u = (δ^b, δ^a, ν^b, ν^a), in bp of notional per second:
  J(u) = λ^b(δ^b)[δ^b + ΔV⁺ + μ̂h] + λ^a(δ^a)[δ^a + ΔV⁻ − μ̂h]
       + ν^b[ΔV⁺ − s_m/2 − fee_t + μ̂h] + ν^a[ΔV⁻ − s_m/2 − fee_t − μ̂h] − φQ²
with λ^b(δ) = λ₀·2(1 − I)·e^{−β·max(δ − s_m/2, 0)}, λ^a(δ) = λ₀·2I·e^{−β·max(δ − s_m/2, 0)}.
V is taken directly in bp of notional (φ in bp per unit² per second).

Inputs are sanitised, not trusted: NaN drift/fee/time → 0, NaN or out-of-range imbalance →
clamped (NaN → ½), non-positive market spread → 0, q_max ≤ 0 → no urgency, t beyond the
horizon → T − t = 0. No NaN reaches a control or a value.
"""
from libc.math cimport exp, fabs, isfinite

cdef double GRID_MULTIPLIERS[5]
GRID_MULTIPLIERS[:] = [0.5, 0.75, 1.0, 1.25, 1.5]


cdef inline double _finite_or(double x, double fallback) noexcept nogil:
    return x if isfinite(x) else fallback


cdef inline double _clamp(double x, double lo, double hi) noexcept nogil:
    return lo if x < lo else (hi if x > hi else x)


cdef double BIG = 1e9  # inputs are clamped to ±BIG so products never reach inf − inf


cdef _Clean _clean(HjbState s) noexcept:
    cdef _Clean c
    cdef double qmax = s.q_max
    c.q = _clamp(_finite_or(s.q, 0.0), -BIG, BIG)
    c.urgency = fabs(c.q) / qmax if (isfinite(qmax) and qmax > 0.0) else 0.0
    c.drift = _clamp(_finite_or(s.drift_bps_s, 0.0), -BIG, BIG)
    c.half_market = 0.0
    if isfinite(s.market_spread_bps) and s.market_spread_bps > 0.0:
        c.half_market = 0.5 * min(s.market_spread_bps, BIG)
    c.imbalance = _clamp(_finite_or(s.imbalance, 0.5), 0.0, 1.0)
    # Without a usable base spread, quote the market spread (at least 1 bp) as the base.
    if isfinite(s.base_spread_bps) and s.base_spread_bps > 0.0:
        c.base_half = 0.5 * min(s.base_spread_bps, BIG)
    else:
        c.base_half = c.half_market if c.half_market > 0.5 else 0.5
    c.fee = _clamp(_finite_or(s.fee_taker_bps, 0.0), -BIG, BIG)
    c.t = _finite_or(s.t, 0.0)
    return c


cdef class HjbState:
    """Market/inventory state for the HJB module (see hjb.pxd for units)."""

    def __init__(self, double q=0.0, double q_max=1.0, double drift_bps_s=0.0, double market_spread_bps=1.0,
                 double imbalance=0.5, double base_spread_bps=4.0, double fee_taker_bps=4.5, double t=0.0):
        self.q = q
        self.q_max = q_max
        self.drift_bps_s = drift_bps_s
        self.market_spread_bps = market_spread_bps
        self.imbalance = imbalance
        self.base_spread_bps = base_spread_bps
        self.fee_taker_bps = fee_taker_bps
        self.t = t

    def __repr__(self) -> str:
        return (f"HjbState(q={self.q}, q_max={self.q_max}, drift_bps_s={self.drift_bps_s}, "
                f"market_spread_bps={self.market_spread_bps}, imbalance={self.imbalance}, "
                f"base_spread_bps={self.base_spread_bps}, fee_taker_bps={self.fee_taker_bps}, t={self.t})")


cdef class ValueFunction:
    """V(Q, t) = −φ·Q²·(T − t), in bp of notional.

    The spec's optional cache by Q is not kept: V is three multiplications, cheaper than
    any lookup.
    """

    def __init__(self, double phi=0.01, double horizon_s=86400.0):
        if not (isfinite(phi) and phi >= 0.0):
            raise ValueError(f"phi must be finite and >= 0, got {phi!r}")
        if not (isfinite(horizon_s) and horizon_s > 0.0):
            raise ValueError(f"horizon_s must be finite and > 0, got {horizon_s!r}")
        self.phi = phi
        self.horizon_s = horizon_s

    cdef double _remaining(self, double t) noexcept nogil:
        cdef double r = self.horizon_s - t
        return r if r > 0.0 else 0.0

    cdef double value_c(self, double q, double t) noexcept nogil:
        return -self.phi * q * q * self._remaining(t)

    cdef double dv_plus_c(self, double q, double t) noexcept nogil:
        # V(q + 1) − V(q) = −φ(2q + 1)(T − t)
        return -self.phi * (2.0 * q + 1.0) * self._remaining(t)

    cdef double dv_minus_c(self, double q, double t) noexcept nogil:
        # V(q − 1) − V(q) = −φ(1 − 2q)(T − t)
        return -self.phi * (1.0 - 2.0 * q) * self._remaining(t)

    def value(self, double q, double t) -> float:
        return self.value_c(_finite_or(q, 0.0), _finite_or(t, 0.0))

    def delta_plus(self, double q, double t) -> float:
        return self.dv_plus_c(_finite_or(q, 0.0), _finite_or(t, 0.0))

    def delta_minus(self, double q, double t) -> float:
        return self.dv_minus_c(_finite_or(q, 0.0), _finite_or(t, 0.0))


cdef inline tuple _as_tuple(HjbControl u):
    return (u.bid_bps, u.ask_bps, u.taker_buy, u.taker_sell)


cdef class HjbModel:
    """Fill-rate model, objective and the three controllers (grid, heuristic, closed form).

    Grid depths are multiples {0.5, 0.75, 1, 1.25, 1.5} of the base half-spread (base/2);
    the taker leg (rate `taker_rate`) is tried only on the reducing side when urgency
    |Q|/Q_max exceeds `urgency_threshold`. The continuous optimum searches the same taker
    set, so it is an upper bound of the grid.
    """

    def __init__(self, ValueFunction value_fn=None, double lambda0=1.0, double beta=0.1,
                 double as_horizon_s=1.0, double taker_rate=0.5, double urgency_threshold=0.7,
                 double k_q_bps=2.0, double k_mu_s=1.0, double k_imb_bps=1.0):
        for name, val in (("lambda0", lambda0), ("beta", beta)):
            if not (isfinite(val) and val > 0.0):
                raise ValueError(f"{name} must be finite and > 0, got {val!r}")
        for name, val in (("as_horizon_s", as_horizon_s), ("taker_rate", taker_rate),
                          ("urgency_threshold", urgency_threshold), ("k_q_bps", k_q_bps),
                          ("k_mu_s", k_mu_s), ("k_imb_bps", k_imb_bps)):
            if not (isfinite(val) and val >= 0.0):
                raise ValueError(f"{name} must be finite and >= 0, got {val!r}")
        self.value_fn = value_fn if value_fn is not None else ValueFunction()
        self.lambda0 = lambda0
        self.beta = beta
        self.as_horizon_s = as_horizon_s
        self.taker_rate = taker_rate
        self.urgency_threshold = urgency_threshold
        self.k_q_bps = k_q_bps
        self.k_mu_s = k_mu_s
        self.k_imb_bps = k_imb_bps
        for i in range(5):
            self.grid[i] = GRID_MULTIPLIERS[i]

    cdef double _rate(self, int side, double depth, const _Clean* c) noexcept:
        cdef double share = 2.0 * (1.0 - c.imbalance) if side == 1 else 2.0 * c.imbalance
        cdef double beyond = depth - c.half_market
        if beyond < 0.0:
            beyond = 0.0
        return self.lambda0 * share * exp(-self.beta * beyond)

    cdef double maker_rate_c(self, int side, double depth_bps, HjbState s) noexcept:
        cdef _Clean c = _clean(s)
        if not isfinite(depth_bps):
            return 0.0
        return self._rate(side, depth_bps, &c)

    cdef double _evaluate(self, const HjbControl* u, const _Clean* c) noexcept:
        cdef ValueFunction vf = self.value_fn
        cdef double dvp = vf.dv_plus_c(c.q, c.t)
        cdef double dvm = vf.dv_minus_c(c.q, c.t)
        cdef double mh = c.drift * self.as_horizon_s
        cdef double j = 0.0
        # A depth beyond ±BIG (or NaN) means "not quoting" that side: no fills.
        if fabs(u.bid_bps) <= BIG:
            j += self._rate(1, u.bid_bps, c) * (u.bid_bps + dvp + mh)
        if fabs(u.ask_bps) <= BIG:
            j += self._rate(-1, u.ask_bps, c) * (u.ask_bps + dvm - mh)
        if u.taker_buy != 0.0:
            j += u.taker_buy * (dvp - c.half_market - c.fee + mh)
        if u.taker_sell != 0.0:
            j += u.taker_sell * (dvm - c.half_market - c.fee - mh)
        return j - vf.phi * c.q * c.q

    cdef double evaluate_c(self, const HjbControl* u, HjbState s) noexcept:
        cdef _Clean c = _clean(s)
        return self._evaluate(u, &c)

    cdef void _taker_options(self, const _Clean* c, double* buy, double* sell, int* n) noexcept:
        # Option 0: no taker. Option 1 (urgent only): taker on the reducing side.
        buy[0] = 0.0
        sell[0] = 0.0
        n[0] = 1
        if c.urgency > self.urgency_threshold:
            buy[1] = self.taker_rate if c.q < 0.0 else 0.0
            sell[1] = self.taker_rate if c.q > 0.0 else 0.0
            n[0] = 2

    cdef HjbControl optimize_control_c(self, HjbState s) noexcept:
        cdef _Clean c = _clean(s)
        cdef HjbControl best, u
        cdef double best_j = -1e300, j
        cdef double buy[2]
        cdef double sell[2]
        cdef int n_taker, i, k, m
        self._taker_options(&c, buy, sell, &n_taker)
        best.bid_bps = best.ask_bps = c.base_half
        best.taker_buy = best.taker_sell = 0.0
        for i in range(5):
            for k in range(5):
                for m in range(n_taker):
                    u.bid_bps = self.grid[i] * c.base_half
                    u.ask_bps = self.grid[k] * c.base_half
                    u.taker_buy = buy[m]
                    u.taker_sell = sell[m]
                    j = self._evaluate(&u, &c)
                    if j > best_j:
                        best_j = j
                        best = u
        return best

    cdef HjbControl continuous_optimum_c(self, HjbState s) noexcept:
        cdef _Clean c = _clean(s)
        cdef ValueFunction vf = self.value_fn
        cdef double mh = c.drift * self.as_horizon_s
        cdef double cb = vf.dv_plus_c(c.q, c.t) + mh
        cdef double ca = vf.dv_minus_c(c.q, c.t) - mh
        cdef HjbControl u, v
        cdef double buy[2]
        cdef double sell[2]
        cdef int n_taker
        # argmax_δ e^{−β·max(δ − s_m/2, 0)}(δ + c): below the touch the rate is flat and the
        # edge grows, beyond it the first-order condition gives δ = 1/β − c.
        u.bid_bps = max(c.half_market, 1.0 / self.beta - cb)
        u.ask_bps = max(c.half_market, 1.0 / self.beta - ca)
        u.taker_buy = u.taker_sell = 0.0
        self._taker_options(&c, buy, sell, &n_taker)
        if n_taker == 2:
            v = u
            v.taker_buy = buy[1]
            v.taker_sell = sell[1]
            if self._evaluate(&v, &c) > self._evaluate(&u, &c):
                return v
        return u

    cdef HjbControl apply_state_adjustments_c(self, HjbState s) noexcept:
        cdef _Clean c = _clean(s)
        cdef HjbControl u
        cdef double qn = 0.0
        cdef double tilt = self.k_imb_bps * (2.0 * c.imbalance - 1.0)
        cdef double buy[2]
        cdef double sell[2]
        cdef int n_taker
        if c.urgency > 0.0:
            qn = _clamp(c.q * c.urgency / fabs(c.q), -1.0, 1.0)  # q/q_max, clamped
        # Long → wider bid, tighter ask; drift up → tighter bid, wider ask;
        # bid-heavy book (I > ½) → tighter ask, wider bid.
        u.bid_bps = c.base_half + self.k_q_bps * qn - self.k_mu_s * c.drift + tilt
        u.ask_bps = c.base_half - self.k_q_bps * qn + self.k_mu_s * c.drift - tilt
        # Never inside the market: each depth at least the market half-spread.
        if u.bid_bps < c.half_market:
            u.bid_bps = c.half_market
        if u.ask_bps < c.half_market:
            u.ask_bps = c.half_market
        self._taker_options(&c, buy, sell, &n_taker)
        u.taker_buy = buy[n_taker - 1]
        u.taker_sell = sell[n_taker - 1]
        return u

    # ---- Python API ---------------------------------------------------------------------
    def maker_rate(self, int side, double depth_bps, HjbState state) -> float:
        """λ^b (side +1) or λ^a (side −1) at depth_bps from mid, fills/s."""
        return self.maker_rate_c(side, depth_bps, state)

    def evaluate_control(self, control, HjbState state) -> float:
        """J(u) for u = (bid_bps, ask_bps, taker_buy, taker_sell), bp/s."""
        cdef HjbControl u
        u.bid_bps, u.ask_bps, u.taker_buy, u.taker_sell = [float(x) for x in control]
        if not (fabs(u.taker_buy) <= BIG and fabs(u.taker_sell) <= BIG):
            raise ValueError("taker rates must be finite and within ±1e9")
        return self.evaluate_c(&u, state)

    def optimize_control(self, HjbState state) -> tuple:
        """Best control on the 5×5 grid (× taker option when urgent)."""
        return _as_tuple(self.optimize_control_c(state))

    def continuous_optimum(self, HjbState state) -> tuple:
        """Closed-form optimum: δ* = max(s_m/2, 1/β − c) per side, best taker option."""
        return _as_tuple(self.continuous_optimum_c(state))

    def apply_state_adjustments(self, HjbState state) -> tuple:
        """Fast heuristic control (no optimisation)."""
        return _as_tuple(self.apply_state_adjustments_c(state))

    def heuristic_gap(self, HjbState state) -> tuple:
        """(J* − J_heuristic, J* − J_grid) in bp/s; both ≥ 0 up to rounding."""
        cdef _Clean c = _clean(state)
        cdef HjbControl opt = self.continuous_optimum_c(state)
        cdef HjbControl heur = self.apply_state_adjustments_c(state)
        cdef HjbControl grid = self.optimize_control_c(state)
        cdef double j_opt = self._evaluate(&opt, &c)
        return (j_opt - self._evaluate(&heur, &c), j_opt - self._evaluate(&grid, &c))


_default_model = None


def heuristic_gap(HjbState state, HjbModel model=None) -> tuple:
    """(heuristic gap, grid gap) to the continuous optimum, bp/s, for `model` (default params)."""
    global _default_model
    if model is None:
        if _default_model is None:
            _default_model = HjbModel()
        model = _default_model
    return model.heuristic_gap(state)
