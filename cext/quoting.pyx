# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Quoting kernel: GLFT touch depths, the K-level ladder with sizes, Hyperliquid rounding,
model-derived target liquidity and the calibration-aware fill-rate controller.

See algorithms.md sections 6-9 and quoting.pxd for the units of every field.  Nothing on the
hot path allocates: Quoter writes into arrays created once in __init__.
"""
from cpython.unicode cimport PyUnicode_DecodeASCII
from libc.math cimport exp, log1p, sqrt, pow, isfinite, fabs, INFINITY
from libc.math cimport floor as c_floor
from libc.stdint cimport int64_t, INT64_MIN, INT64_MAX
from libc.stdio cimport snprintf
from libc.stdlib cimport strtod

from hlfast.decimal cimport dec_format_scaled

import numpy as np

# kappa is clamped into this range before use so the kappa -> 0 and kappa -> inf limits stay finite
cdef double KAPPA_MIN = 1.0
cdef double KAPPA_MAX = 1e9
cdef double GAMMA_MAX = 1e9
cdef double A_MIN = 1e-12
# lots are kept well inside int64 even for absurd side totals
cdef double MAX_LOTS = 1e15
# ladder capacity per side (Quoter's per-side scratch on the C stack is sized by it)
cdef enum:
    MAX_LEVELS = 1000


# ---------------------------------------------------------------- GLFT (section 6)

cdef GlftSide glft_c(double gamma, double sigma, double A, double kappa, double delta,
                     double fee, int mode) noexcept nogil:
    cdef GlftSide out
    cdef double x, c1, growth, c2
    if kappa < KAPPA_MIN:
        kappa = KAPPA_MIN
    elif kappa > KAPPA_MAX:
        kappa = KAPPA_MAX
    if gamma < 0.0:
        gamma = 0.0
    elif gamma > GAMMA_MAX:
        gamma = GAMMA_MAX
    if A < A_MIN:
        A = A_MIN
    if not delta > 0.0:
        delta = 1.0
    x = gamma * delta / kappa
    if x > 1e-8:
        c1 = log1p(x) / x / kappa                       # (1/(gD)) ln(1 + gD/k)
        growth = exp((1.0 / x + 1.0) * log1p(x))        # (1 + gD/k)^(k/(gD) + 1)
    else:
        # gamma -> 0: second-order series (error ~x^2), keeps 1/x from overflowing
        c1 = (1.0 - 0.5 * x) / kappa
        growth = exp(1.0 + 0.5 * x)
    c2 = sqrt(gamma / (2.0 * A * delta * kappa) * growth)
    out.skew = sigma * c2
    if mode == GLFT_SIMPLE:
        out.half_spread = c1 + fee
    else:
        out.half_spread = c1 + 0.5 * delta * sigma * c2 + fee
    return out


cpdef tuple glft(double gamma, double sigma, double A, double kappa, double fee_maker=0.0,
                 double delta=1.0, str mode="full"):
    """(half_spread, skew) as fractions; skew is per order unit of inventory."""
    cdef GlftSide s = glft_c(gamma, sigma, A, kappa, delta, fee_maker, _mode_code(mode))
    return (s.half_spread, s.skew)


cdef inline double _dmin(double a, double b) noexcept nogil:
    return a if a < b else b


cdef inline double _dmax(double a, double b) noexcept nogil:
    return a if a > b else b


cdef inline double _clamp(double x, double lo, double hi) noexcept nogil:
    if x < lo:
        return lo
    if x > hi:
        return hi
    return x


cdef double effective_gamma_c(double gamma_base, double sigma_eff, double sigma_ref,
                              double toxicity, double position, double max_position,
                              double cascade_mult, double calibration_mult) noexcept nogil:
    cdef double vol = 1.0, u = 1.0, g
    if not (isfinite(gamma_base) and gamma_base > 0.0):
        return 0.0
    if isfinite(sigma_eff) and sigma_eff >= 0.0 and isfinite(sigma_ref) and sigma_ref > 0.0:
        vol = 1.0 + _clamp((sigma_eff - sigma_ref) / sigma_ref, -0.5, 3.0)
    if not (isfinite(toxicity) and toxicity > 0.0):
        toxicity = 1.0
    if not (isfinite(cascade_mult) and cascade_mult > 0.0):
        cascade_mult = 1.0
    if not (isfinite(calibration_mult) and calibration_mult > 0.0):
        calibration_mult = 1.0
    if isfinite(position) and isfinite(max_position) and max_position > 0.0:
        u = _dmin(fabs(position) / max_position, 1e6)     # keeps 1 + 4u^2 finite
    g = gamma_base * vol * toxicity * (1.0 + 4.0 * u * u) * cascade_mult * calibration_mult
    return _clamp(g, 0.05 * gamma_base, 20.0 * gamma_base)


cpdef double effective_gamma(double gamma_base, double sigma_eff, double sigma_ref,
                             double toxicity=1.0, double position=0.0, double max_position=1.0,
                             double cascade_mult=1.0, double calibration_mult=1.0):
    """gamma_base x vol x toxicity x (1 + 4u^2) x cascade x calibration, clamped to
    [0.05, 20] x gamma_base; 0 when gamma_base is not a positive number."""
    return effective_gamma_c(gamma_base, sigma_eff, sigma_ref, toxicity, position,
                             max_position, cascade_mult, calibration_mult)


cdef int _mode_code(str mode) except -1:
    if mode == "full":
        return GLFT_FULL
    if mode == "simple":
        return GLFT_SIMPLE
    raise ValueError(f"glft_mode must be 'full' or 'simple', got {mode!r}")


# ---------------------------------------------------------------- rounding and wire strings

cpdef long long tick_at(double px, int sz_decimals):
    """Valid price step at px, in ticks of 10^-(6 - szDecimals)."""
    cdef int pd = 6 - sz_decimals
    cdef double t = px * <double>pow10_i(pd)
    if not (t >= 1.0 and t < 9e15):
        return 1
    return grid_unit(floor_tol(t), pd)


cpdef long long floor_px_ticks(double px, int sz_decimals):
    """Largest valid Hyperliquid price <= px, in ticks (0 if none)."""
    cdef int pd = 6 - sz_decimals
    cdef double t = px * <double>pow10_i(pd)
    if not (t > 0.0 and t < 9e15):
        return 0
    return floor_valid(floor_tol(t), pd)


cpdef long long ceil_px_ticks(double px, int sz_decimals):
    """Smallest valid Hyperliquid price >= px, in ticks (0 if px is not positive)."""
    cdef int pd = 6 - sz_decimals
    cdef double t = px * <double>pow10_i(pd)
    if not (t > 0.0 and t < 9e15):
        return 0
    return ceil_valid(ceil_tol(t), pd)


cpdef double round_size(double sz, int sz_decimals):
    """Nearest multiple of 10^-szDecimals, ties as Python's round() (exact binary value)."""
    cdef char buf[64]
    if not (isfinite(sz) and fabs(sz) < 1e15):
        return 0.0
    snprintf(buf, 64, b"%.*f", sz_decimals, sz)
    return strtod(buf, NULL)


cpdef double floor_size(double sz, int sz_decimals):
    """Largest multiple of 10^-szDecimals <= sz (with 1e-12 relative slack for float noise)."""
    cdef double scale = <double>pow10_i(sz_decimals)
    if not (isfinite(sz) and sz > 0.0 and sz * scale < MAX_LOTS):
        return 0.0
    return floor_tol(sz * scale) / scale


cdef inline int _decimal_buf(int64_t units, int decimals, char* out) noexcept nogil:
    """Write units x 10^-decimals as the shortest decimal, no exponent or trailing zeros (NUL-terminated)."""
    cdef int n = <int>dec_format_scaled(units, decimals, out)
    out[n] = 0
    return n


cdef int px_wire_buf(int64_t ticks, int px_decimals, char* out) noexcept nogil:
    """Wire string of a price in ticks into out (>= 32 bytes); returns its length."""
    return _decimal_buf(ticks, px_decimals, out)


cdef int sz_wire_buf(int64_t lots, int sz_decimals, char* out) noexcept nogil:
    """Wire string of a size in lots into out (>= 32 bytes); returns its length."""
    return _decimal_buf(lots, sz_decimals, out)


cpdef str px_wire(long long ticks, int px_decimals):
    """The SDK's float_to_wire string of ticks x 10^-px_decimals."""
    cdef char buf[32]
    cdef int n = _decimal_buf(ticks, px_decimals, buf)
    return PyUnicode_DecodeASCII(buf, n, NULL)


cpdef str sz_wire(double sz, int sz_decimals):
    """The SDK's float_to_wire string of sz rounded to szDecimals."""
    cdef char buf[32]
    cdef double scaled
    cdef int n
    if not (isfinite(sz) and fabs(sz) < MAX_LOTS):
        raise ValueError("size is not a finite number of coins")
    scaled = round_size(sz, sz_decimals) * <double>pow10_i(sz_decimals)
    n = _decimal_buf(<int64_t>(scaled + 0.5 if scaled >= 0 else scaled - 0.5), sz_decimals, buf)
    return PyUnicode_DecodeASCII(buf, n, NULL)


# ---------------------------------------------------------------- fast grid rounding (Quoter hot path)
# Same results as floor_tol/ceil_tol/floor_valid/ceil_valid in quoting.pxd, without their libm
# floor/ceil calls, the per-call decade search and the division by a run-time power of ten.

cdef extern from *:
    """
    #include <math.h>
    #include <stdint.h>
    /* (int64_t)floor(x) / (int64_t)ceil(x) by truncation; outside +-9.2e18 (and NaN) use libm so
       every input gives the libm result.  Non-negative x (all of the ladder's) floors by truncation
       alone. */
    static inline int64_t hlq_floor_i64(double x) {
        if (x >= 0.0 && x < 9.2e18) return (int64_t)x;
        if (x > -9.2e18 && x < 0.0) { int64_t t = (int64_t)x; return t - ((double)t > x); }
        return (int64_t)floor(x);
    }
    static inline int64_t hlq_ceil_i64(double x) {
        if (x >= -9.2e18 && x < 9.2e18) { int64_t t = (int64_t)x; return t + ((double)t < x); }
        return (int64_t)ceil(x);
    }
    static const int64_t hlq_pow10[7] = {1, 10, 100, 1000, 10000, 100000, 1000000};
    /* t mod 10^e for t > 0, with a constant divisor per case (a multiply, not a division) */
    static inline int64_t hlq_mod_pow10(int64_t t, int e) {
        uint64_t u = (uint64_t)t;
        switch (e) {
        case 0: return 0;
        case 1: return (int64_t)(u % 10u);
        case 2: return (int64_t)(u % 100u);
        case 3: return (int64_t)(u % 1000u);
        case 4: return (int64_t)(u % 10000u);
        case 5: return (int64_t)(u % 100000u);
        case 6: return (int64_t)(u % 1000000u);
        default: { int64_t p = 1; while (e-- > 0) p *= 10; return t % p; }
        }
    }
    /* 10^e for 0 <= e <= 6 (px_decimals never exceeds 6) */
    static inline int64_t hlq_grid_unit(int e) {
        return (e >= 0 && e <= 6) ? hlq_pow10[e] : 1;
    }
    /* lots < ceil(v / px) for lots >= 0, px >= 1, v >= 1, without the division */
    static inline int hlq_below_min(int64_t lots, int64_t px, int64_t v) {
        return (__int128)lots * (__int128)px < (__int128)v;
    }
    """
    int64_t hlq_floor_i64(double x) noexcept nogil
    int64_t hlq_ceil_i64(double x) noexcept nogil
    int64_t hlq_mod_pow10(int64_t t, int e) noexcept nogil
    int64_t hlq_grid_unit(int e) noexcept nogil
    bint hlq_below_min(int64_t lots, int64_t px, int64_t v) noexcept nogil


cdef inline int64_t _floor_tol(double x) noexcept nogil:
    return hlq_floor_i64(x + 1e-12 * fabs(x))


cdef inline int64_t _ceil_tol(double x) noexcept nogil:
    return hlq_ceil_i64(x - 1e-12 * fabs(x))


cdef struct _Grid:
    # the grid unit is 10^e for every price in [lo, hi): one decade, or everything below 10^5
    # ticks (e = 0) or at or above 10^(4 + px_decimals) (e = px_decimals)
    int64_t lo
    int64_t hi
    int e
    int pd


cdef inline void _grid_init(_Grid* g, int pd) noexcept nogil:
    g.pd = pd
    g.lo = 1
    g.hi = 0        # empty range: the first use locates the decade
    g.e = 0


cdef void _grid_locate(_Grid* g, int64_t ticks) noexcept nogil:
    """Decade of ticks, as grid_unit finds it: one more digit of the unit per power of ten >= 10^5."""
    cdef int e = 0
    cdef int64_t lo = INT64_MIN, hi = 100000
    while ticks >= hi and e < g.pd:
        e += 1
        lo = hi
        hi *= 10
    if e == g.pd:
        hi = INT64_MAX
    g.lo = lo
    g.hi = hi
    g.e = e


cdef inline int _grid_exp(_Grid* g, int64_t ticks) noexcept nogil:
    """log10 of grid_unit(ticks, pd)."""
    if ticks < g.lo or ticks >= g.hi:
        _grid_locate(g, ticks)
    return g.e


cdef inline int64_t _grid_floor(_Grid* g, int64_t ticks) noexcept nogil:
    """floor_valid(ticks, pd)."""
    if ticks <= 0:
        return 0
    return ticks - hlq_mod_pow10(ticks, _grid_exp(g, ticks))


cdef inline int64_t _grid_ceil(_Grid* g, int64_t ticks) noexcept nogil:
    """ceil_valid(ticks, pd)."""
    cdef int e
    cdef int64_t rem
    if ticks <= 0:
        return 0
    e = _grid_exp(g, ticks)
    rem = hlq_mod_pow10(ticks, e)
    if rem:
        ticks += hlq_grid_unit(e) - rem
    return ticks


# ---------------------------------------------------------------- Quoter (sections 6-7)

cdef double _running_scan(const double* weight, const signed char* alive, double* prefix,
                          int* lightest, int start, int n) noexcept nogil:
    """For each level i >= start: prefix[i], the alive weights up to i added in index order, and
    lightest[i], the alive level up to i of least weight (the highest index among equal ones, -1
    if none).  Entries before start are kept, so after a drop only the levels from it on are redone
    and every sum is the same sequence of additions as a fresh one.  Returns the total."""
    cdef int i, best = -1
    cdef double w, s = 0.0, best_w = INFINITY
    if start > 0:
        s = prefix[start - 1]
        best = lightest[start - 1]
        if best >= 0:
            best_w = weight[best]
    for i in range(start, n):
        if alive[i]:
            w = weight[i]
            s += w
            if w <= best_w:
                best_w = w
                best = i
        prefix[i] = s
        lightest[i] = best
    return s


cdef int _validate(QuoteInputs* q, double px_scale) noexcept nogil:
    if not (isfinite(q.microprice) and q.microprice * px_scale >= 1.0 and q.microprice * px_scale < 9e15):
        return QUOTE_BAD_MARKET
    if not (q.best_bid >= 1 and q.best_ask > q.best_bid):
        return QUOTE_BAD_MARKET
    if not (isfinite(q.sigma) and q.sigma >= 0.0 and isfinite(q.A) and q.A > 0.0
            and isfinite(q.kappa_bid) and q.kappa_bid > 0.0
            and isfinite(q.kappa_ask) and q.kappa_ask > 0.0
            and isfinite(q.gamma) and q.gamma >= 0.0
            and isfinite(q.fee_maker) and fabs(q.fee_maker) < 0.01
            and isfinite(q.drift) and isfinite(q.horizon) and q.horizon >= 0.0
            and isfinite(q.half_spread_mult) and q.half_spread_mult > 0.0
            and isfinite(q.skew_mult) and q.skew_mult >= 0.0
            and isfinite(q.min_spread) and q.min_spread >= 0.0
            and isfinite(q.adverse_sel)
            and (q.glft_mode == GLFT_FULL or q.glft_mode == GLFT_SIMPLE)):
        return QUOTE_BAD_MODEL
    # +inf is allowed for side totals and exchange caps ("no cap"); NaN and negatives are not
    if not (isfinite(q.position) and isfinite(q.max_position) and q.max_position > 0.0
            and isfinite(q.pending_bid) and q.pending_bid >= 0.0
            and isfinite(q.pending_ask) and q.pending_ask >= 0.0
            and q.q_bid >= 0.0 and q.q_ask >= 0.0
            and q.exch_cap_bid >= 0.0 and q.exch_cap_ask >= 0.0):
        return QUOTE_BAD_LIMITS
    return QUOTE_OK


cdef class Quoter:
    """Both sides of a K-level ladder from plain inputs, rounded to Hyperliquid's rules."""

    def __init__(self, int sz_decimals, int levels=25, double min_notional=10.0,
                 double min_notional_safety=1.5, double max_depth=0.02,
                 double weight_epsilon=1e-6):
        cdef int64_t[::1] i64
        cdef double[::1] f64
        cdef signed char[::1] flags
        if not 0 <= sz_decimals <= 6:
            raise ValueError(f"sz_decimals must be in [0, 6], got {sz_decimals}")
        if not 1 <= levels <= MAX_LEVELS:
            raise ValueError(f"levels must be in [1, {MAX_LEVELS}], got {levels}")
        if not (min_notional > 0 and min_notional_safety >= 1):
            raise ValueError("min_notional must be > 0 and min_notional_safety >= 1")
        if not (0 < max_depth < 1):
            raise ValueError(f"max_depth must be a fraction in (0, 1), got {max_depth}")
        if not weight_epsilon > 0:
            raise ValueError("weight_epsilon must be > 0")
        self.sz_decimals = sz_decimals
        self.px_decimals = 6 - sz_decimals
        self.levels = levels
        self.min_notional = min_notional
        self.min_notional_safety = min_notional_safety
        self.max_depth = max_depth
        self.weight_epsilon = weight_epsilon
        self.px_scale = <double>pow10_i(self.px_decimals)
        self.sz_scale = <double>pow10_i(sz_decimals)
        # price ticks x size lots = USD x 10^6 for every perp
        self.min_value_scaled = ceil_tol(min_notional * min_notional_safety * 1e6)
        names_i64 = ("bid_px", "bid_lots", "ask_px", "ask_lots", "px")
        names_f64 = ("bid_sz", "bid_depth", "ask_sz", "ask_depth", "depth", "weight")
        arrays = {n: np.zeros(levels, dtype=np.int64) for n in names_i64}
        arrays.update({n: np.zeros(levels, dtype=np.float64) for n in names_f64})
        arrays["alive"] = np.zeros(levels, dtype=np.int8)
        self._arrays = arrays
        i64 = arrays["bid_px"]
        self.bid_px_c = &i64[0]
        i64 = arrays["bid_lots"]
        self.bid_lots_c = &i64[0]
        i64 = arrays["ask_px"]
        self.ask_px_c = &i64[0]
        i64 = arrays["ask_lots"]
        self.ask_lots_c = &i64[0]
        i64 = arrays["px"]
        self._px = &i64[0]
        f64 = arrays["bid_sz"]
        self.bid_sz_c = &f64[0]
        f64 = arrays["bid_depth"]
        self.bid_depth_c = &f64[0]
        f64 = arrays["ask_sz"]
        self.ask_sz_c = &f64[0]
        f64 = arrays["ask_depth"]
        self.ask_depth_c = &f64[0]
        f64 = arrays["depth"]
        self._depth = &f64[0]
        f64 = arrays["weight"]
        self._weight = &f64[0]
        flags = arrays["alive"]
        self._alive = &flags[0]
        for name in ("bid_px", "bid_lots", "bid_sz", "bid_depth",
                     "ask_px", "ask_lots", "ask_sz", "ask_depth"):
            view = arrays[name].view()
            view.flags.writeable = False
            arrays[name + "_ro"] = view
        # defaults for requote() before the first quote(); quote() overwrites every field
        self._in.sigma = 2.5e-4
        self._in.A = 1.0
        self._in.kappa_bid = 2000.0
        self._in.kappa_ask = 2000.0
        self._in.horizon = 30.0
        self._in.fee_maker = 1.5e-4
        self._in.q_bid = INFINITY
        self._in.q_ask = INFINITY
        self._in.exch_cap_bid = INFINITY
        self._in.exch_cap_ask = INFINITY
        self._in.half_spread_mult = 1.0
        self._in.skew_mult = 1.0
        self._in.glft_mode = GLFT_FULL

    cdef int compute(self, QuoteInputs* q) noexcept:
        """Fill both sides from q; returns QUOTE_OK or a negative code with both sides empty."""
        cdef int rc
        cdef double micro_ticks, tick_frac, depth_floor, unit, q_hat, drift_shift
        cdef double db, da, p, m, cb, ca
        cdef GlftSide gb, ga
        cdef _Grid grid
        self.n_bid = 0
        self.n_ask = 0
        rc = _validate(q, self.px_scale)
        self.last_rc = rc
        if rc != QUOTE_OK:
            self.bid_empty = SIDE_INVALID
            self.ask_empty = SIDE_INVALID
            self.n_invalid += 1
            self.half_spread_bid = 0.0
            self.half_spread_ask = 0.0
            self.skew_bid = 0.0
            self.skew_ask = 0.0
            self.delta_bid = 0.0
            self.delta_ask = 0.0
            self.cap_bid = 0.0
            self.cap_ask = 0.0
            return rc
        micro_ticks = q.microprice * self.px_scale
        _grid_init(&grid, self.px_decimals)
        tick_frac = hlq_grid_unit(_grid_exp(&grid, _floor_tol(micro_ticks))) / micro_ticks
        depth_floor = _dmax(_dmax(q.min_spread, tick_frac), q.fee_maker + 0.5e-4)
        unit = q.unit_size
        if not (isfinite(unit) and unit > 0.0):
            unit = self.min_notional * self.min_notional_safety / q.microprice
        q_hat = q.position / unit
        gb = glft_c(q.gamma, q.sigma, q.A, q.kappa_bid, 1.0, q.fee_maker, q.glft_mode)
        if q.kappa_ask == q.kappa_bid:      # a pure function of the same arguments
            ga = gb
        else:
            ga = glft_c(q.gamma, q.sigma, q.A, q.kappa_ask, 1.0, q.fee_maker, q.glft_mode)
        self.half_spread_bid = gb.half_spread * q.half_spread_mult
        self.half_spread_ask = ga.half_spread * q.half_spread_mult
        self.skew_bid = gb.skew * q.skew_mult
        self.skew_ask = ga.skew * q.skew_mult
        drift_shift = 0.5 * q.drift * q.horizon
        db = self.half_spread_bid + self.skew_bid * q_hat - drift_shift
        da = self.half_spread_ask - self.skew_ask * q_hat + drift_shift
        self.delta_bid = _dmax(db, depth_floor)
        self.delta_ask = _dmax(da, depth_floor)

        # asymmetric limits: the reducing side may go up to |p| + M, the increasing side to M - |p|
        p = q.position
        m = q.max_position
        if p >= 0.0:
            cb = m - p - q.pending_bid
            ca = p + m - q.pending_ask
        else:
            cb = -p + m - q.pending_bid
            ca = m + p - q.pending_ask
        cb = _dmax(cb, 0.0)
        ca = _dmax(ca, 0.0)
        if p > m:           # beyond the limit: only reduce, and never through zero
            ca = _dmin(ca, _dmax(p - q.pending_ask, 0.0))
        elif -p > m:
            cb = _dmin(cb, _dmax(-p - q.pending_bid, 0.0))
        # the hard caps (limits, exchange) bound any rounding up of the soft side total q_side
        cb = _dmin(cb, q.exch_cap_bid)
        ca = _dmin(ca, q.exch_cap_ask)
        self.cap_bid = _dmin(cb, q.q_bid)
        self.cap_ask = _dmin(ca, q.q_ask)

        self.n_bid = self._side(1, self.delta_bid, q.kappa_bid, self.cap_bid, cb, micro_ticks, q)
        self.n_ask = self._side(-1, self.delta_ask, q.kappa_ask, self.cap_ask, ca, micro_ticks, q)
        return QUOTE_OK

    cdef int _side(self, int side, double delta1, double kappa, double size_total,
                   double hard_cap, double micro_ticks, QuoteInputs* q) noexcept:
        # Hot loop: scratch arrays through locals (with -fno-strict-aliasing every store through
        # self's arrays would otherwise reload the pointers), the grid unit kept per decade.
        cdef int K = self.levels, k_used, m, n, i, worst, alive
        cdef int64_t total_lots, min_size_lots, guard, px, lots
        cdef int64_t min_value = self.min_value_scaled
        cdef double tick_frac, depth_k, ratio, d, w, weight_sum, edge_cost, min_request_lots
        cdef double total_d, weight_epsilon = self.weight_epsilon, sz_scale = self.sz_scale
        cdef double prefix[MAX_LEVELS]
        cdef int lightest_upto[MAX_LEVELS]
        cdef int lightest
        cdef _Grid grid
        cdef int64_t* px_a = self._px
        cdef double* depth_a = self._depth
        cdef double* weight_a = self._weight
        cdef signed char* alive_a = self._alive
        cdef int64_t* out_px
        cdef int64_t* out_lots
        cdef double* out_sz
        cdef double* out_depth
        cdef int* empty = &self.bid_empty if side > 0 else &self.ask_empty
        empty[0] = SIDE_QUOTED
        if not (size_total > 0.0):
            empty[0] = SIDE_NO_SIZE
            return 0
        if not (delta1 <= self.max_depth):
            empty[0] = SIDE_TOO_DEEP
            return 0
        _grid_init(&grid, self.px_decimals)
        if side > 0:
            guard = _grid_floor(&grid, q.best_ask - 1)     # post-only: strictly below the best ask
            px = _grid_floor(&grid, _floor_tol(micro_ticks * (1.0 - delta1)))
            if px > guard:
                px = guard
            if px <= 0:
                empty[0] = SIDE_NO_PRICE
                return 0
        else:
            guard = _grid_ceil(&grid, q.best_bid + 1)      # post-only: strictly above the best bid
            px = _grid_ceil(&grid, _ceil_tol(micro_ticks * (1.0 + delta1)))
            if px < guard:
                px = guard
        total_lots = _floor_tol(_dmin(size_total * sz_scale, MAX_LOTS))
        # the touch level's minimum in lots, rounded UP: a bid sits below the microprice, so the
        # minimum at the microprice floored to the lot is always short of the $10 x safety value
        min_size_lots = (min_value + px - 1) // px
        if total_lots < min_size_lots:
            # a side total of one minimum-size order (section 8's fallback) is quoted as one level
            # rounded up to a valid size, as long as the position and exchange limits hold it
            min_request_lots = (self.min_notional * self.min_notional_safety * sz_scale
                                / q.microprice)
            if (size_total * sz_scale >= min_request_lots * (1.0 - 1e-9)
                    and _floor_tol(_dmin(hard_cap * sz_scale, MAX_LOTS)) >= min_size_lots):
                total_lots = min_size_lots
                self.n_min_rounded += 1
            else:
                empty[0] = SIDE_BELOW_MIN
                return 0
        # levels the side total can fill at the exchange minimum (K' of section 8)
        k_used = K
        if total_lots // min_size_lots < k_used:
            k_used = <int>(total_lots // min_size_lots)

        # geometric depths delta1 .. delta_K (spacing fixed by K so fewer levels stay near the touch)
        tick_frac = hlq_grid_unit(_grid_exp(&grid, _floor_tol(micro_ticks))) / micro_ticks
        depth_k = _dmin(_dmax(5.0 * delta1, delta1 + K * tick_frac), self.max_depth)
        ratio = pow(depth_k / delta1, 1.0 / (K - 1)) if K > 1 else 1.0
        edge_cost = q.adverse_sel + q.fee_maker
        # 1) each level's depth, price and exp argument (level i in slot i of the scratch arrays)
        m = 0
        d = delta1
        for i in range(k_used):
            if i > 0:
                d = d * ratio
            if side > 0:
                px = _grid_floor(&grid, _floor_tol(micro_ticks * (1.0 - d)))
                if px > guard:
                    px = guard
                if px <= 0:
                    break
            else:
                px = _grid_ceil(&grid, _ceil_tol(micro_ticks * (1.0 + d)))
                if px < guard:
                    px = guard
            px_a[i] = px
            depth_a[i] = d
            weight_a[i] = -kappa * (d - delta1)
            m += 1
        # 2) the exp calls back to back, where the CPU can overlap them (their latency dominated
        # the ladder when they sat between the rounding steps).  At the touch d == delta1 and
        # exp(-0.0) is exactly 1: no call.
        for i in range(1, m):
            weight_a[i] = exp(weight_a[i])
        # 3) sizes follow lambda(d) x edge (A cancels in the normalisation); a level whose price
        # collapsed onto the previous one merges into it.  Compaction in place: slot n <= i.
        n = 0
        for i in range(m):
            px = px_a[i]
            d = depth_a[i]
            w = _dmax(d - edge_cost, weight_epsilon)
            if i > 0:
                w = weight_a[i] * w
            if n > 0 and px_a[n - 1] == px:
                weight_a[n - 1] += w
                continue
            px_a[n] = px
            depth_a[n] = d
            weight_a[n] = w
            alive_a[n] = 1
            n += 1

        # Drop the lightest level that cannot reach the minimum value and give its mass to the rest,
        # until every level left reaches it.  Each pass's weight sum is the alive weights added in
        # index order, as a fresh sum; the running sums and running lightest levels are kept per
        # level, so a drop redoes only the levels after it (bit-identical).  The level dropped is
        # the lightest short one (ties: the highest index): when the lightest level of all is
        # short it is that one, found without sizing the others, else a full pass sizes every
        # level and picks it as before.
        weight_sum = _running_scan(weight_a, alive_a, prefix, lightest_upto, 0, n)
        if side > 0:
            out_px = self.bid_px_c
            out_lots = self.bid_lots_c
            out_sz = self.bid_sz_c
            out_depth = self.bid_depth_c
        else:
            out_px = self.ask_px_c
            out_lots = self.ask_lots_c
            out_sz = self.ask_sz_c
            out_depth = self.ask_depth_c
        total_d = <double>total_lots
        alive = n
        while True:
            if not weight_sum > 0.0:
                empty[0] = SIDE_BELOW_MIN
                return 0
            worst = -1
            lightest = lightest_upto[n - 1]       # >= 0: some alive weight makes the sum > 0
            if lightest >= 0 and hlq_below_min(_floor_tol(total_d * weight_a[lightest] / weight_sum),
                                               px_a[lightest], min_value):
                worst = lightest
            else:
                # the full pass writes the outputs as it goes: when it finds no short level they
                # are the result (entries past the count are scratch, as the contract says)
                k_used = 0
                for i in range(n):
                    if not alive_a[i]:
                        continue
                    lots = _floor_tol(total_d * weight_a[i] / weight_sum)   # w/w may be 1 - 1ulp
                    out_px[k_used] = px_a[i]
                    out_lots[k_used] = lots
                    out_sz[k_used] = lots / sz_scale
                    out_depth[k_used] = depth_a[i]
                    k_used += 1
                    # lots < ceil(min_value / px): the level is short of the minimum order value
                    if hlq_below_min(lots, px_a[i], min_value):
                        if worst < 0 or weight_a[i] <= weight_a[worst]:
                            worst = i
            if worst < 0:
                break
            alive_a[worst] = 0
            alive -= 1
            if alive == 0:      # unreachable: total_lots >= k_used x the touch minimum (see above)
                empty[0] = SIDE_BELOW_MIN
                return 0
            weight_sum = _running_scan(weight_a, alive_a, prefix, lightest_upto, worst, n)

        return k_used

    # ---- Python API (tests, orchestration) ----

    def quote(self, *, double microprice, long long best_bid, long long best_ask,
              double max_position, double gamma, double sigma=2.5e-4, double A=1.0,
              double kappa_bid=2000.0, kappa_ask=None, double drift=0.0, double horizon=30.0,
              double position=0.0, double pending_bid=0.0, double pending_ask=0.0,
              double fee_maker=1.5e-4, double q_bid=float("inf"), double q_ask=float("inf"),
              double exch_cap_bid=float("inf"), double exch_cap_ask=float("inf"),
              double half_spread_mult=1.0, double skew_mult=1.0, double unit_size=0.0,
              double min_spread=0.0, double adverse_sel=0.0, str glft_mode="full") -> int:
        """Set every input and compute; returns the compute return code (0 = quoted)."""
        self._in.microprice = microprice
        self._in.best_bid = best_bid
        self._in.best_ask = best_ask
        self._in.sigma = sigma
        self._in.A = A
        self._in.kappa_bid = kappa_bid
        self._in.kappa_ask = kappa_bid if kappa_ask is None else float(kappa_ask)
        self._in.drift = drift
        self._in.horizon = horizon
        self._in.position = position
        self._in.max_position = max_position
        self._in.pending_bid = pending_bid
        self._in.pending_ask = pending_ask
        self._in.gamma = gamma
        self._in.fee_maker = fee_maker
        self._in.q_bid = q_bid
        self._in.q_ask = q_ask
        self._in.exch_cap_bid = exch_cap_bid
        self._in.exch_cap_ask = exch_cap_ask
        self._in.half_spread_mult = half_spread_mult
        self._in.skew_mult = skew_mult
        self._in.unit_size = unit_size
        self._in.min_spread = min_spread
        self._in.adverse_sel = adverse_sel
        self._in.glft_mode = _mode_code(glft_mode)
        return self.compute(&self._in)

    def set_market(self, double microprice, long long best_bid, long long best_ask) -> None:
        """Update only the market fields of the stored inputs (use requote() after)."""
        self._in.microprice = microprice
        self._in.best_bid = best_bid
        self._in.best_ask = best_ask

    def set_model(self, double sigma, double A, double kappa_bid, double kappa_ask,
                  double drift, double gamma) -> None:
        """Update only the model fields of the stored inputs (use requote() after)."""
        self._in.sigma = sigma
        self._in.A = A
        self._in.kappa_bid = kappa_bid
        self._in.kappa_ask = kappa_ask
        self._in.drift = drift
        self._in.gamma = gamma

    def requote(self) -> int:
        """Compute again from the stored inputs."""
        return self.compute(&self._in)

    @property
    def bid_px(self):
        return self._arrays["bid_px_ro"][:self.n_bid]

    @property
    def bid_sz(self):
        return self._arrays["bid_sz_ro"][:self.n_bid]

    @property
    def bid_lots(self):
        return self._arrays["bid_lots_ro"][:self.n_bid]

    @property
    def bid_depth(self):
        return self._arrays["bid_depth_ro"][:self.n_bid]

    @property
    def ask_px(self):
        return self._arrays["ask_px_ro"][:self.n_ask]

    @property
    def ask_sz(self):
        return self._arrays["ask_sz_ro"][:self.n_ask]

    @property
    def ask_lots(self):
        return self._arrays["ask_lots_ro"][:self.n_ask]

    @property
    def ask_depth(self):
        return self._arrays["ask_depth_ro"][:self.n_ask]

    @property
    def half_spread(self) -> float:
        """Mean of the two sides' GLFT half-spreads (they differ only through kappa)."""
        return 0.5 * (self.half_spread_bid + self.half_spread_ask)

    @property
    def skew(self) -> float:
        """Mean of the two sides' skew per order unit."""
        return 0.5 * (self.skew_bid + self.skew_ask)

    def orders(self) -> list:
        """[(side, px_ticks, lots), ...] bids then asks, best first."""
        cdef int i
        out = []
        for i in range(self.n_bid):
            out.append((1, self.bid_px_c[i], self.bid_lots_c[i]))
        for i in range(self.n_ask):
            out.append((-1, self.ask_px_c[i], self.ask_lots_c[i]))
        return out

    def __repr__(self) -> str:
        return (f"Quoter(sz_decimals={self.sz_decimals}, levels={self.levels}, "
                f"n_bid={self.n_bid}, n_ask={self.n_ask}, last_rc={self.last_rc})")


# ---------------------------------------------------------------- target liquidity (section 8)

cdef class TargetLiquidity:
    """Side total Q* and the number of levels K' it can fill at the exchange minimum."""

    def __init__(self, int max_levels=25, double leverage=5.0, double loss_budget_frac=0.02,
                 double min_fill_rate=1.0 / 600.0, double min_notional=10.0,
                 double min_notional_safety=1.5):
        if not max_levels >= 1:
            raise ValueError("max_levels must be >= 1")
        if not (leverage > 0 and loss_budget_frac > 0 and min_fill_rate >= 0):
            raise ValueError("leverage and loss_budget_frac must be > 0, min_fill_rate >= 0")
        if not (min_notional > 0 and min_notional_safety >= 1):
            raise ValueError("min_notional must be > 0 and min_notional_safety >= 1")
        self.max_levels = max_levels
        self.leverage = leverage
        self.loss_budget_frac = loss_budget_frac
        self.min_fill_rate = min_fill_rate
        self.min_notional = min_notional
        self.min_notional_safety = min_notional_safety

    cdef int compute_c(self, double account_value, double microprice, double gamma, double sigma,
                       double fill_rate, double latency_ms, double user_cap, double max_position,
                       double unit_size, bint warm) noexcept:
        cdef double rate, gamma_usd, risk, hard_cap, ratio
        cdef int64_t k
        self.q_hard = 0.0
        self.q_soft = 0.0
        self.q_target = 0.0
        self.n_levels = 0
        self.min_size = 0.0
        if not (isfinite(account_value) and account_value > 0.0
                and isfinite(microprice) and microprice > 0.0
                and isfinite(gamma) and gamma >= 0.0 and isfinite(sigma) and sigma >= 0.0
                and user_cap >= 0.0 and max_position >= 0.0):
            self.latency_penalty = 0.3
            return -1
        self.min_size = self.min_notional * self.min_notional_safety / microprice
        self.q_hard = account_value * self.leverage * 0.5 / microprice
        rate = fill_rate if (isfinite(fill_rate) and fill_rate > 0.0) else 0.0
        if not warm:
            rate = _dmax(rate, self.min_fill_rate)
        if not (isfinite(unit_size) and microprice * unit_size > 0.0):
            unit_size = self.min_size
        # gamma is per fractional depth per order unit; per USD of P&L it is gamma/(S x Delta)
        gamma_usd = gamma / (microprice * unit_size)
        risk = gamma_usd * sigma * sigma * microprice * microprice
        if risk > 0.0:
            self.q_soft = 0.5 * sqrt(2.0 * self.loss_budget_frac * account_value * rate / risk)
        else:
            self.q_soft = INFINITY
        if not (isfinite(latency_ms) and latency_ms > 0.0):
            latency_ms = 50.0
        self.latency_penalty = _dmax(0.3, 1.0 - 0.5 * sqrt(latency_ms / 30.0))
        hard_cap = _dmin(_dmin(self.q_hard, user_cap), max_position)
        self.q_target = _dmin(self.q_soft * self.latency_penalty, hard_cap)
        ratio = self.q_target / self.min_size * (1.0 + 1e-9)
        if ratio >= self.max_levels:
            k = self.max_levels
        elif ratio >= 1.0:
            k = <int64_t>c_floor(ratio)
        else:
            k = 0       # also NaN
        if k == 0 and hard_cap >= self.min_size:
            self.q_target = self.min_size
            k = 1
        self.n_levels = <int>k
        return 0

    def compute(self, double account_value, double microprice, double gamma, double sigma,
                double fill_rate, double latency_ms=50.0, double user_cap=float("inf"),
                double max_position=float("inf"), double unit_size=0.0, bint warm=True) -> int:
        """Fill q_hard, q_soft, latency_penalty, q_target, min_size, n_levels; -1 on bad input."""
        return self.compute_c(account_value, microprice, gamma, sigma, fill_rate, latency_ms,
                              user_cap, max_position, unit_size, warm)


# ---------------------------------------------------------------- calibration controller (section 9)

cdef class Calibration:
    """gamma multiplier that tightens quotes while fills are scarce and calibration is young."""

    def __init__(self, double target_fills_per_hour=10.0, double floor=0.3,
                 double lookback_s=900.0, bint enabled=True, int capacity=4096):
        cdef double[::1] ring
        if not (target_fills_per_hour > 0 and 0 <= floor <= 1 and lookback_s > 0):
            raise ValueError("need target_fills_per_hour > 0, 0 <= floor <= 1, lookback_s > 0")
        if capacity < 1:
            raise ValueError("capacity must be >= 1")
        self.target_fills_per_hour = target_fills_per_hour
        self.floor = floor
        self.lookback_s = lookback_s
        self.enabled = enabled
        self._cap = capacity
        self._ring = np.zeros(capacity, dtype=np.float64)
        ring = self._ring
        self._ts = &ring[0]

    cdef void on_fill_c(self, double t) noexcept:
        if not isfinite(t):
            self.n_bad_input += 1
            return
        self.fill_count += 1
        if self._len == self._cap:       # full: the oldest falls out (count saturates far above target)
            self._head = (self._head + 1) % self._cap
            self._len -= 1
        self._ts[(self._head + self._len) % self._cap] = t
        self._len += 1

    cdef double progress_c(self) noexcept:
        return 0.5 * (_dmin(self.markout_count / 20.0, 1.0) + _dmin(self.kappa_confidence / 0.5, 1.0))

    cdef double multiplier_c(self, double t) noexcept:
        cdef double progress, expected, c
        if not self.enabled:
            return 1.0
        progress = self.progress_c()
        if progress >= 0.95:
            return 1.0
        if not isfinite(t):
            self.n_bad_input += 1
            return 1.0
        while self._len > 0 and self._ts[self._head] <= t - self.lookback_s:
            self._head = (self._head + 1) % self._cap
            self._len -= 1
        expected = self.target_fills_per_hour * self.lookback_s / 3600.0
        c = _clamp(self._len / expected, self.floor, 1.0)
        return c + (1.0 - c) * progress

    def on_fill(self, double t) -> None:
        self.on_fill_c(t)

    def on_markout(self) -> None:
        self.markout_count += 1

    def set_kappa_confidence(self, double c) -> None:
        if not isfinite(c):
            self.n_bad_input += 1
            return
        self.kappa_confidence = _clamp(c, 0.0, 1.0)

    def multiplier(self, double t) -> float:
        """gamma multiplier at time t (drops fills older than the lookback)."""
        return self.multiplier_c(t)

    def recent_fills(self, double t) -> int:
        """Fills inside (t - lookback, t]."""
        cdef int i, n = 0
        for i in range(self._len):
            if self._ts[(self._head + i) % self._cap] > t - self.lookback_s:
                n += 1
        return n

    @property
    def progress(self) -> float:
        return self.progress_c()

    @property
    def complete(self) -> bool:
        return self.progress_c() >= 0.95
