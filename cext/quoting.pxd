# cython: language_level=3
"""Quoting kernel: GLFT quotes, the ladder, Hyperliquid rounding, target liquidity and the
calibration controller (algorithms.md sections 6-9).

Units: prices as int64 ticks (1 tick = 10^-(6 - szDecimals)), depths/spreads/drifts as fractions
of price, sigma per sqrt(second) in log-return units, sizes in coin units, time in seconds.
"""
from libc.math cimport floor, ceil, fabs
from libc.stdint cimport int64_t

# glft_mode values
cdef enum:
    GLFT_FULL = 0
    GLFT_SIMPLE = 1

# Quoter.compute return codes (0 = quoted; negative = both sides left empty)
cdef enum:
    QUOTE_OK = 0
    QUOTE_BAD_MARKET = -1   # microprice / best bid / best ask missing, crossed or non-finite
    QUOTE_BAD_MODEL = -2    # sigma, A, kappa, gamma, fee, drift, horizon or multipliers invalid
    QUOTE_BAD_LIMITS = -3   # position, max position, pending sizes, side totals or caps invalid

# Why a side came out empty (Quoter.bid_empty / ask_empty); the model wanting no quote is not silent
cdef enum:
    SIDE_QUOTED = 0
    SIDE_INVALID = 1        # compute refused the inputs (see last_rc)
    SIDE_NO_SIZE = 2        # side total is 0: position limit, exchange cap, target or cascade factor
    SIDE_TOO_DEEP = 3       # the GLFT touch depth lies beyond max_depth
    SIDE_BELOW_MIN = 4      # side total below one minimum-value order, or the limits cannot hold one
    SIDE_NO_PRICE = 5       # no valid price (a bid at or below zero)

cdef struct QuoteInputs:
    double microprice        # size-weighted touch price, price units (> 0)
    int64_t best_bid         # best bid, ticks (>= 1)
    int64_t best_ask         # best ask, ticks (> best_bid)
    double sigma             # volatility per sqrt(s), log-return units (>= 0)
    double A                 # fill intensity at zero depth, fills/s (> 0)
    double kappa_bid         # fill-intensity decay per fractional depth, bid side (> 0)
    double kappa_ask         # same, ask side
    double drift             # expected microprice drift mu, fraction per second
    double horizon           # holding horizon T for the drift term, seconds (default 30)
    double position          # signed position, coins (+ long)
    double max_position      # position limit M, coins (> 0)
    double pending_bid       # own bid size in flight that this ladder does not replace, coins
    double pending_ask       # same for asks
    double gamma             # effective risk aversion (per fractional depth per order unit, >= 0)
    double fee_maker         # maker fee as a fraction of notional (negative = rebate)
    double q_bid             # side total wanted on the bid (section 8), coins (+inf = no cap)
    double q_ask             # side total wanted on the ask, coins
    double exch_cap_bid      # exchange limit on new buys (max trade size), coins (+inf = none)
    double exch_cap_ask      # exchange limit on new sells, coins
    double half_spread_mult  # multiplier on the GLFT half-spread (default 1)
    double skew_mult         # multiplier on the GLFT skew (default 1)
    double unit_size         # order unit Delta in coins for q_hat = position/Delta (<= 0: min order size)
    double min_spread        # floor on each side's touch depth, fraction
    double adverse_sel       # expected adverse selection per fill, fraction (size weights)
    int glft_mode            # GLFT_FULL or GLFT_SIMPLE


cdef struct GlftSide:
    double half_spread       # h, fraction (includes fee)
    double skew              # s = sigma*c2, fraction per order unit of inventory


cdef GlftSide glft_c(double gamma, double sigma, double A, double kappa, double delta,
                     double fee, int mode) noexcept nogil
cdef double effective_gamma_c(double gamma_base, double sigma_eff, double sigma_ref,
                              double toxicity, double position, double max_position,
                              double cascade_mult, double calibration_mult) noexcept nogil


# ---- Hyperliquid price/size grid (perps: price decimals = 6 - szDecimals) ----

cdef inline int64_t pow10_i(int n) noexcept nogil:
    cdef int64_t p = 1
    while n > 0:
        p *= 10
        n -= 1
    return p


cdef inline int64_t grid_unit(int64_t ticks, int px_decimals) noexcept nogil:
    """Valid price step at `ticks`, in ticks: 5 significant figures, integer prices always valid."""
    cdef int64_t unit = 1
    cdef int64_t n = ticks
    cdef int64_t cap = pow10_i(px_decimals)
    while n >= 100000 and unit < cap:
        n = n // 10
        unit *= 10
    return unit


# A price or size computed in floating point can land a hair off a grid point
# (0.1234 * 1e5 = 12339.999999999998 must floor to 12340): allow 1e-12 relative slack.
cdef inline int64_t floor_tol(double x) noexcept nogil:
    return <int64_t>floor(x + 1e-12 * fabs(x))


cdef inline int64_t ceil_tol(double x) noexcept nogil:
    return <int64_t>ceil(x - 1e-12 * fabs(x))


cdef inline int64_t floor_valid(int64_t ticks, int px_decimals) noexcept nogil:
    """Largest valid price <= ticks (0 when ticks <= 0: no valid positive price)."""
    if ticks <= 0:
        return 0
    return ticks - ticks % grid_unit(ticks, px_decimals)


cdef inline int64_t ceil_valid(int64_t ticks, int px_decimals) noexcept nogil:
    """Smallest valid price >= ticks (a carry into the next decade lands on a power of ten)."""
    cdef int64_t unit, rem
    if ticks <= 0:
        return 0
    unit = grid_unit(ticks, px_decimals)
    rem = ticks % unit
    if rem:
        ticks += unit - rem
    return ticks


cpdef long long tick_at(double px, int sz_decimals)
cpdef long long floor_px_ticks(double px, int sz_decimals)
cpdef long long ceil_px_ticks(double px, int sz_decimals)
cpdef double round_size(double sz, int sz_decimals)
cpdef double floor_size(double sz, int sz_decimals)
cdef int px_wire_buf(int64_t ticks, int px_decimals, char* out) noexcept nogil
cdef int sz_wire_buf(int64_t lots, int sz_decimals, char* out) noexcept nogil


cdef class Quoter:
    cdef readonly int sz_decimals           # coin's szDecimals
    cdef readonly int px_decimals           # 6 - szDecimals
    cdef readonly int levels                # K, ladder capacity per side
    cdef readonly double min_notional       # exchange minimum order value, USD
    cdef readonly double min_notional_safety
    cdef readonly double max_depth          # deepest ladder level, fraction (default 0.02)
    cdef readonly double weight_epsilon     # edge floor in the size weights, fraction
    cdef double px_scale                    # 10^px_decimals (ticks per price unit)
    cdef double sz_scale                    # 10^sz_decimals (lots per coin)
    cdef int64_t min_value_scaled           # min order value in tick*lot units

    # results of the last compute (valid entries: [0, n_bid) / [0, n_ask), best first)
    cdef readonly int n_bid
    cdef readonly int n_ask
    cdef readonly int last_rc               # return code of the last compute
    cdef readonly long n_invalid            # computes refused for invalid inputs
    cdef readonly double half_spread_bid    # GLFT h x half_spread_mult, fraction
    cdef readonly double half_spread_ask
    cdef readonly double skew_bid           # GLFT s x skew_mult, fraction per order unit
    cdef readonly double skew_ask
    cdef readonly double delta_bid          # touch depth after floor, fraction of microprice
    cdef readonly double delta_ask
    cdef readonly double cap_bid            # side size after limits and caps, coins
    cdef readonly double cap_ask
    cdef readonly int bid_empty             # SIDE_* reason of the last compute (SIDE_QUOTED if quoted)
    cdef readonly int ask_empty
    cdef readonly long n_min_rounded        # sides quoted at one level rounded up to the minimum
    cdef int64_t* bid_px_c                  # ticks, strictly decreasing
    cdef double* bid_sz_c                   # coins, floored to szDecimals
    cdef int64_t* bid_lots_c                # size in lots (10^-szDecimals coins)
    cdef double* bid_depth_c                # fractional depth of each level below microprice
    cdef int64_t* ask_px_c                  # ticks, strictly increasing
    cdef double* ask_sz_c
    cdef int64_t* ask_lots_c
    cdef double* ask_depth_c

    # scratch (one side at a time)
    cdef double* _depth
    cdef double* _weight
    cdef int64_t* _px
    cdef signed char* _alive
    cdef object _arrays
    cdef QuoteInputs _in

    cdef int compute(self, QuoteInputs* q) noexcept
    cdef int _side(self, int side, double delta1, double kappa, double size_total,
                   double hard_cap, double micro_ticks, QuoteInputs* q) noexcept


cdef class TargetLiquidity:
    cdef readonly int max_levels            # K
    cdef readonly double leverage
    cdef readonly double loss_budget_frac   # L = loss_budget_frac x account value
    cdef readonly double min_fill_rate      # floor on fills/s while not warm (1/600)
    cdef readonly double min_notional
    cdef readonly double min_notional_safety
    cdef readonly double q_hard             # margin-solvent size, coins
    cdef readonly double q_soft             # GLFT risk-budget size, coins
    cdef readonly double latency_penalty    # in [0.3, 1]
    cdef readonly double q_target           # Q*, coins
    cdef readonly double min_size           # min order size at the microprice, coins
    cdef readonly int n_levels              # K'

    cdef int compute_c(self, double account_value, double microprice, double gamma, double sigma,
                       double fill_rate, double latency_ms, double user_cap, double max_position,
                       double unit_size, bint warm) noexcept


cdef class Calibration:
    cdef readonly double target_fills_per_hour
    cdef readonly double floor
    cdef readonly double lookback_s
    cdef readonly bint enabled
    cdef readonly long fill_count           # fills seen since start
    cdef readonly long markout_count        # fills whose 1 s markout was measured
    cdef readonly double kappa_confidence   # kappa-fit confidence in [0, 1]
    cdef readonly long n_bad_input
    cdef double* _ts                        # ring of fill times inside the lookback
    cdef object _ring
    cdef int _cap
    cdef int _head
    cdef int _len

    cdef void on_fill_c(self, double t) noexcept
    cdef double progress_c(self) noexcept
    cdef double multiplier_c(self, double t) noexcept
