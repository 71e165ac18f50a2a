# HJB market-making module (algorithms.md §12). Units: depths in bp from mid, time in s,
# inventory in order units, drift in bp/s, rates in fills (or taker units) per second,
# objective J in bp of notional per second.

cdef struct HjbControl:
    double bid_bps       # maker bid depth below mid
    double ask_bps       # maker ask depth above mid
    double taker_buy     # taker buy rate (units/s), lifts the ask
    double taker_sell    # taker sell rate (units/s), hits the bid


cdef struct _Clean:
    # A sanitised HjbState (see hjb.pyx): depths as half-spreads, urgency = |q|/q_max.
    double q, urgency, drift, half_market, imbalance, base_half, fee, t


cdef class HjbState:
    cdef public double q                  # inventory, order units (+ long)
    cdef public double q_max              # inventory limit, order units (> 0)
    cdef public double drift_bps_s        # μ̂
    cdef public double market_spread_bps  # s_m, full spread of the book
    cdef public double imbalance          # I ∈ [0, 1], bid share of top-of-book size
    cdef public double base_spread_bps    # our base full spread
    cdef public double fee_taker_bps
    cdef public double t                  # seconds into the value-function horizon


cdef class ValueFunction:
    cdef readonly double phi              # inventory penalty, bp per unit² per s
    cdef readonly double horizon_s        # T

    cdef double _remaining(self, double t) noexcept nogil
    cdef double value_c(self, double q, double t) noexcept nogil
    cdef double dv_plus_c(self, double q, double t) noexcept nogil
    cdef double dv_minus_c(self, double q, double t) noexcept nogil


cdef class HjbModel:
    cdef readonly ValueFunction value_fn
    cdef readonly double lambda0          # fills/s at the touch with I = ½
    cdef readonly double beta             # fill-rate decay per bp beyond the touch
    cdef readonly double as_horizon_s     # adverse-selection horizon h
    cdef readonly double taker_rate       # taker units/s when the taker leg is on
    cdef readonly double urgency_threshold
    cdef readonly double k_q_bps          # heuristic: depth shift per unit of q/q_max
    cdef readonly double k_mu_s           # heuristic: depth shift per bp/s of drift
    cdef readonly double k_imb_bps        # heuristic: depth shift per unit of (2I − 1)
    cdef double grid[5]                   # multipliers of the base half-spread

    cdef double _rate(self, int side, double depth, const _Clean* c) noexcept
    cdef double _evaluate(self, const HjbControl* u, const _Clean* c) noexcept
    cdef void _taker_options(self, const _Clean* c, double* buy, double* sell, int* n) noexcept
    cdef double maker_rate_c(self, int side, double depth_bps, HjbState s) noexcept
    cdef double evaluate_c(self, const HjbControl* u, HjbState s) noexcept
    cdef HjbControl optimize_control_c(self, HjbState s) noexcept
    cdef HjbControl apply_state_adjustments_c(self, HjbState s) noexcept
    cdef HjbControl continuous_optimum_c(self, HjbState s) noexcept
