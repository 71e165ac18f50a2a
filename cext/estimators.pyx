# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Market-state estimators (algorithms.md §2–§5) as C-speed cdef classes.

Each estimator is O(1) per update with state preallocated at construction; the only
O(grid) work is FillIntensity's refit on its timer. Bad inputs (NaN, inf, ≤ 0 where a
positive value is required) are ignored and counted, never propagated into outputs.
"""
from libc.math cimport exp, expm1, fabs, floor, isfinite, log, sqrt, M_PI, INFINITY
from libc.stdlib cimport calloc, free

cdef double LN2 = 0.6931471805599453
# Sanity bounds beyond which an input is corrupt, not a market event; they keep squares and
# running sums far from overflow (inf − inf would turn into NaN on the next update).
cdef double MAX_VARIANCE = 1e6      # per s (σ = 1000 per √s)
cdef double MAX_ABS_TIME = 1e12     # s
cdef double MAX_MARK = 1e12         # Hawkes mark
cdef double MAX_LATENCY_MS = 1e9


cdef inline double _clamp(double x, double lo, double hi) noexcept nogil:
    if x < lo:
        return lo
    if x > hi:
        return hi
    return x


cdef inline double _ewma_alpha(double dt, double tau) noexcept nogil:
    # Weight of a sample that covers dt seconds in an EWMA with time constant tau.
    return 1.0 - exp(-dt / tau)


cdef inline bint _bad_positive(double x) noexcept nogil:
    return not isfinite(x) or x <= 0.0


def _check_positive(name: str, value: float) -> None:
    if not (value > 0.0 and value < INFINITY):
        raise ValueError(f"{name} must be a finite positive number, got {value!r}")


# ---------------------------------------------------------------------------------------
# §2 Volatility
# ---------------------------------------------------------------------------------------
cdef class Volatility:
    """EWMA realised and bipower variance per second at three half-lives, blended into σ_eff.

    Choices where the spec is silent: the bipower estimate runs at the mid half-life and the
    jump ratio compares it with the mid-half-life realised variance; all EWMAs start at
    prior² so early estimates lean on the prior instead of a single noisy return.
    """

    def __init__(self, double prior=2.5e-4, double hl_fast=5.0, double hl_mid=30.0,
                 double hl_slow=300.0, double warmup_s=30.0):
        _check_positive("prior", prior)
        _check_positive("hl_fast", hl_fast)
        _check_positive("hl_mid", hl_mid)
        _check_positive("hl_slow", hl_slow)
        if not (warmup_s >= 0.0 and isfinite(warmup_s)):
            raise ValueError(f"warmup_s must be finite and >= 0, got {warmup_s!r}")
        self.prior = prior
        self.hl_fast = hl_fast
        self.hl_mid = hl_mid
        self.hl_slow = hl_slow
        self.warmup_s = warmup_s
        self.tau_fast = hl_fast / LN2
        self.tau_mid = hl_mid / LN2
        self.tau_slow = hl_slow / LN2
        self.var_fast = prior * prior
        self.var_mid = prior * prior
        self.var_slow = prior * prior
        self.bipower = prior * prior
        self.warm = False
        self.samples = 0
        self.rejected = 0
        self.skipped = 0
        self.last_return = 0.0
        self.last_t = 0.0
        self.first_t = 0.0
        self.has_prev = False
        self.has_ret_prev = False
        self._refresh()

    cdef int update_c(self, double t, double price) noexcept nogil:
        cdef double lp, r, dt, a, x, bp
        if not isfinite(t) or _bad_positive(price):
            self.rejected += 1
            return REJECTED
        lp = log(price)
        if not self.has_prev:
            self.has_prev = True
            self.log_prev = lp
            self.last_t = t
            self.first_t = t
            return ACCEPTED
        dt = t - self.last_t
        if dt <= 0.0:
            self.skipped += 1
            return SKIPPED
        r = lp - self.log_prev
        x = r * r / dt
        bp = (M_PI / 2.0) * fabs(r) * fabs(self.ret_prev) / dt if self.has_ret_prev else 0.0
        if not isfinite(x) or not isfinite(bp):  # degenerate Δt: would poison every EWMA
            self.rejected += 1
            return REJECTED
        self.var_fast += _ewma_alpha(dt, self.tau_fast) * (x - self.var_fast)
        a = _ewma_alpha(dt, self.tau_mid)
        self.var_mid += a * (x - self.var_mid)
        self.var_slow += _ewma_alpha(dt, self.tau_slow) * (x - self.var_slow)
        if self.has_ret_prev:
            self.bipower += a * (bp - self.bipower)
        self.ret_prev = r
        self.has_ret_prev = True
        self.log_prev = lp
        self.last_t = t
        self.last_return = r
        self.samples += 1
        if not self.warm and t - self.first_t >= self.warmup_s:
            self.warm = True
        self._refresh()
        return ACCEPTED

    cdef void _refresh(self) noexcept nogil:
        cdef double ratio, w, wj, jr, eff
        self.sigma_fast = sqrt(self.var_fast)
        self.sigma_mid = sqrt(self.var_mid)
        self.sigma_slow = sqrt(self.var_slow)
        self.sigma_clean = sqrt(self.bipower)
        ratio = self.sigma_fast / self.sigma_slow if self.sigma_slow > 0.0 else 1.0
        # Spec blend: lean on the fast estimate only when it runs 1.5x above the slow one.
        if ratio > 1.5:
            w = _clamp((ratio - 1.0) / 3.0, 0.0, 0.7)
        else:
            w = 0.2
        self.sigma_total = w * self.sigma_fast + (1.0 - w) * self.sigma_slow
        if self.bipower > 1e-30:
            jr = _clamp(self.var_mid / self.bipower, 0.1, 100.0)
        else:
            jr = 1.0
        self.jump_ratio = jr
        wj = _clamp(1.0 - 1.0 / jr, 0.0, 0.85)
        eff = (1.0 - wj) * self.sigma_clean + wj * self.sigma_total
        if not self.warm:
            eff = self.prior
        self.sigma_eff = _clamp(eff, 1e-7, 10.0 * self.prior)

    def update(self, double t, double price) -> int:
        """Feed one microprice sample; returns 0 accepted, 1 rejected, 2 skipped (Δt ≤ 0)."""
        return self.update_c(t, price)

    @property
    def variance(self) -> float:
        """σ_total² (variance per second): the input SvStats resamples."""
        return self.sigma_total * self.sigma_total


# ---------------------------------------------------------------------------------------
# §3 Stochastic-volatility statistics
# ---------------------------------------------------------------------------------------
cdef class SvStats:
    """Welford statistics of the 1 s variance series: θ, ξ, κ_v, ρ (optionally forgetting).

    Observation k carries weight λ^(n−k) (λ = e^{−1/window}, 1 without forgetting); every
    accumulator decays by λ before the new point is added, which keeps it equal to the
    batch weighted statistics. Sample variances use the reliability-weight denominator
    W − ΣW²/W (n − 1 without forgetting). The lag-1 autocorrelation is the textbook ACF
    Σ(v_k − v̄)(v_{k−1} − v̄)/Σ(v_k − v̄)² around the running mean; its centred sums are
    shifted exactly whenever the mean moves, so no raw power sums are formed.
    """

    def __init__(self, double forget_window=0.0, double kappa_v_prior=0.1):
        if not (forget_window >= 0.0 and isfinite(forget_window)):
            raise ValueError(f"forget_window must be finite and >= 0, got {forget_window!r}")
        _check_positive("kappa_v_prior", kappa_v_prior)
        self.forget_window = forget_window
        self.lam = exp(-1.0 / forget_window) if forget_window > 0.0 else 1.0
        self.kappa_v_prior = kappa_v_prior
        self.reset()

    def reset(self) -> None:
        self.n = 0
        self.n_pairs = 0
        self.theta = 0.0
        self.xi = 0.0
        self.acf1 = 0.0
        self.kappa_v = self.kappa_v_prior
        self.rho = 0.0
        self.rejected = 0
        self.started = False
        self.has_prev_v = False
        self.w_v = self.w2_v = self.mean_v = self.m2_v = 0.0
        self.w_p = self.lag_c = self.lag_sa = self.lag_sb = 0.0
        self.w_d = self.w2_d = self.mean_r = self.mean_dv = 0.0
        self.m2_r = self.m2_dv = self.c_rdv = 0.0

    cdef int update_c(self, double t, double variance, double price) noexcept nogil:
        cdef double r
        if (not isfinite(t) or not isfinite(variance) or variance < 0.0 or variance > MAX_VARIANCE
                or _bad_positive(price)):
            self.rejected += 1
            return REJECTED
        if not self.started:
            self.started = True
            self.next_obs_t = t + 1.0
            self.obs_price = price
            return ACCEPTED
        if t < self.next_obs_t:
            return SKIPPED
        r = log(price / self.obs_price)
        self.observe_c(variance, r)
        self.obs_price = price
        # After a gap take one observation and restart the grid: back-filling copies of a
        # stale value would fabricate zero variance changes.
        if t >= self.next_obs_t + 1.0:
            self.next_obs_t = t + 1.0
        else:
            self.next_obs_t += 1.0
        return ACCEPTED

    cdef void observe_c(self, double v, double r) noexcept nogil:
        cdef double lam = self.lam
        cdef double w_new, dmean, mean_new, a, b, dv, dr, ddv, denom, var_r, var_dv, floor_var
        if lam != 1.0:
            self.w_v *= lam
            self.w2_v *= lam * lam
            self.m2_v *= lam
            self.w_p *= lam
            self.lag_c *= lam
            self.lag_sa *= lam
            self.lag_sb *= lam
            self.w_d *= lam
            self.w2_d *= lam * lam
            self.m2_r *= lam
            self.m2_dv *= lam
            self.c_rdv *= lam
        # Weighted Welford on v (new weight 1).
        w_new = self.w_v + 1.0
        dmean = (v - self.mean_v) / w_new
        mean_new = self.mean_v + dmean
        self.m2_v += (v - self.mean_v) * (v - mean_new)
        # Re-centre the lag-1 sums on the new mean before adding the new pair.
        self.lag_c += -dmean * (self.lag_sa + self.lag_sb) + dmean * dmean * self.w_p
        self.lag_sa -= dmean * self.w_p
        self.lag_sb -= dmean * self.w_p
        self.mean_v = mean_new
        self.w_v = w_new
        self.w2_v += 1.0
        if self.has_prev_v:
            a = v - mean_new
            b = self.prev_v - mean_new
            self.lag_c += a * b
            self.lag_sa += a
            self.lag_sb += b
            self.w_p += 1.0
            # Bivariate Welford on (r_k, dv_k): the leverage pair of the same step.
            dv = v - self.prev_v
            self.w_d += 1.0
            self.w2_d += 1.0
            dr = r - self.mean_r
            ddv = dv - self.mean_dv
            self.mean_r += dr / self.w_d
            self.mean_dv += ddv / self.w_d
            self.m2_r += dr * (r - self.mean_r)
            self.m2_dv += ddv * (dv - self.mean_dv)
            self.c_rdv += dr * (dv - self.mean_dv)
            self.n_pairs += 1
        self.prev_v = v
        self.has_prev_v = True
        self.n += 1
        # Outputs.
        self.theta = self.mean_v
        if self.n_pairs >= 2:
            denom = self.w_d - self.w2_d / self.w_d
            self.xi = sqrt(self.m2_dv / denom) if denom > 0.0 and self.m2_dv > 0.0 else 0.0
        # A series whose spread is at rounding level relative to its mean has no defined
        # autocorrelation or variance changes: floor both at a 1e-10 relative sd.
        floor_var = (1e-10 * self.mean_v) * (1e-10 * self.mean_v)
        if self.n >= 3 and self.m2_v > 0.0 and self.m2_v / self.w_v > floor_var:
            self.acf1 = self.lag_c / self.m2_v
            # clamp(−ln ρ₁, 0.01, 5) extended continuously: ρ₁ ≤ 0 → 5, ρ₁ ≥ 1 → 0.01.
            if self.acf1 <= 0.0:
                self.kappa_v = 5.0
            else:
                self.kappa_v = _clamp(-log(self.acf1), 0.01, 5.0)
        else:
            self.acf1 = 0.0
            self.kappa_v = self.kappa_v_prior
        if self.n >= 3:
            var_r = self.m2_r / self.w_d
            var_dv = self.m2_dv / self.w_d
            # The spec's 1e-18 floor suits r; v itself is O(1e-8) so dv variances are
            # legitimately O(1e-18): dv uses the relative floor instead.
            if var_r > 1e-18 and var_dv > floor_var and self.m2_dv > 0.0:
                self.rho = _clamp(self.c_rdv / sqrt(self.m2_r * self.m2_dv), -0.95, 0.95)
            else:
                self.rho = 0.0

    cdef double expected_avg_variance_c(self, double h, double v) noexcept nogil:
        cdef double k = self.kappa_v * h
        if not isfinite(h) or not isfinite(v) or self.n == 0:
            return v if isfinite(v) else self.theta
        if k <= 1e-12:
            return v
        return self.theta + (v - self.theta) * (1.0 - exp(-k)) / k

    cdef double leverage_sigma_c(self, double sigma, double r) noexcept nogil:
        if not isfinite(sigma) or sigma <= 0.0 or not isfinite(r):
            return sigma if isfinite(sigma) else 0.0
        if r * self.rho > 0.0:
            return sigma * (1.0 + min(0.5, 0.2 * fabs(r) / sigma))
        return sigma

    def update(self, double t, double variance, double price) -> int:
        """Feed the current σ_total² and price; observes once per 1 s of clock."""
        return self.update_c(t, variance, price)

    def observe(self, double v, double r) -> None:
        """Add one 1 s observation directly (variance v, return r over that second)."""
        if not isfinite(v) or v < 0.0 or v > MAX_VARIANCE or not isfinite(r):
            self.rejected += 1
            return
        self.observe_c(v, r)

    def expected_avg_variance(self, double h, double v) -> float:
        """E[mean variance over the next h seconds | current variance v]."""
        return self.expected_avg_variance_c(h, v)

    def leverage_sigma(self, double sigma, double r) -> float:
        """σ raised when the last return r has the variance-raising sign (r·ρ > 0)."""
        return self.leverage_sigma_c(sigma, r)


# ---------------------------------------------------------------------------------------
# §4 Fill intensity λ(δ) = A e^{−κδ} by the trade-through estimator
# ---------------------------------------------------------------------------------------
cdef double LOG_A_MIN = log(1e-3)         # A bounds [1e-3, 1e3] in log units
cdef double LOG_A_MAX = log(1e3)
# A fit blended in before ready must rest on this many steps that traded through the first grid
# point (both sides together): a handful of prints says little about the decay.
cdef double BLEND_MIN_STEPS = 20.0


cdef class FillIntensity:
    """Trade-through fill-intensity estimator with O(1) updates and an O(n_bins) refit.

    Every `step` seconds the farthest reach of aggressive buys above / sells below the
    step-start mid is recorded in ticks as a bin index k (= number of grid points
    (j + ½)·unit it reached). Only steps that reached something are stored, in a ring;
    histograms over k make the refit a suffix sum. Sell aggressors fill bids (κ_bid),
    buy aggressors fill asks (κ_ask); the pooled fit averages both sides' counts.
    confidence = R² of the pooled fit × window coverage (0 until ready).
    Until the window holds min_window seconds (not ready), `blend` shrinks the pooled fit
    towards the prior in log κ and log A with weight covered/min_window (`weight`) once
    20 steps traded through the first grid point; the sides follow the pooled values
    until ready. blend=False keeps the prior until ready.
    """

    def __cinit__(self, double unit, double kappa0=2000.0, double a0=1.0, double window=600.0,
                  double step=0.1, double refit_s=5.0, int n_bins=70, bint blend=True,
                  double min_window=60.0):
        _check_positive("unit", unit)
        _check_positive("kappa0", kappa0)
        _check_positive("a0", a0)
        _check_positive("window", window)
        _check_positive("step", step)
        _check_positive("refit_s", refit_s)
        _check_positive("min_window", min_window)
        if n_bins < 3 or n_bins > 10000:
            raise ValueError(f"n_bins must be in [3, 10000], got {n_bins}")
        self.blend = blend
        self.min_window = min_window
        self.weight = 0.0
        self.unit = unit
        self.kappa0 = kappa0
        self.a0 = a0
        self.window = window
        self.step = step
        self.refit_s = refit_s
        self.n_bins = n_bins
        self.window_steps = <long long>floor(window / step + 0.5)
        if self.window_steps < 1:
            self.window_steps = 1
        self.ring_cap = self.window_steps + 2
        self.ring_step = <long long*>calloc(self.ring_cap, sizeof(long long))
        self.ring_buy = <int*>calloc(self.ring_cap, sizeof(int))
        self.ring_sell = <int*>calloc(self.ring_cap, sizeof(int))
        self.hist_buy = <long long*>calloc(n_bins + 1, sizeof(long long))
        self.hist_sell = <long long*>calloc(n_bins + 1, sizeof(long long))
        self.cnt_buy = <double*>calloc(n_bins, sizeof(double))
        self.cnt_sell = <double*>calloc(n_bins, sizeof(double))
        if (self.ring_step == NULL or self.ring_buy == NULL or self.ring_sell == NULL
                or self.hist_buy == NULL or self.hist_sell == NULL
                or self.cnt_buy == NULL or self.cnt_sell == NULL):
            raise MemoryError("FillIntensity buffers")
        self.kappa = self.kappa_bid = self.kappa_ask = kappa0
        self.A = self.A_bid = self.A_ask = a0
        self.confidence = 0.0
        self.covered_s = 0.0
        self.ready = False
        self.started = False
        self.has_mid = False
        self.has_step_mid = False
        self.reach_buy = 0
        self.reach_sell = 0

    def __dealloc__(self):
        free(self.ring_step)
        free(self.ring_buy)
        free(self.ring_sell)
        free(self.hist_buy)
        free(self.hist_sell)
        free(self.cnt_buy)
        free(self.cnt_sell)

    cdef void _advance(self, double t) noexcept nogil:
        cdef long long s = <long long>floor(t / self.step)
        cdef long long idx
        if not self.started:
            self.started = True
            self.cur_step = s
            self.first_step = s
            self.next_refit = t + self.refit_s
            self.step_mid = self.mid
            self.has_step_mid = self.has_mid
            return
        if s < self.cur_step:
            self.out_of_order += 1
            return
        if s > self.cur_step:
            if self.reach_buy > 0 or self.reach_sell > 0:
                if self.ring_len == self.ring_cap:  # cannot happen: one entry per step
                    self._pop()
                idx = (self.ring_head + self.ring_len) % self.ring_cap
                self.ring_step[idx] = self.cur_step
                self.ring_buy[idx] = self.reach_buy
                self.ring_sell[idx] = self.reach_sell
                self.ring_len += 1
                self.hist_buy[self.reach_buy] += 1
                self.hist_sell[self.reach_sell] += 1
            self.reach_buy = 0
            self.reach_sell = 0
            self.cur_step = s
            # The mid in force at the step boundary: the last one seen before this event.
            self.step_mid = self.mid
            self.has_step_mid = self.has_mid
            while self.ring_len > 0 and self.ring_step[self.ring_head] < s - self.window_steps:
                self._pop()
        if t >= self.next_refit:
            self.refit_c()
            self.next_refit = t + self.refit_s

    cdef void _pop(self) noexcept nogil:
        cdef long long h = self.ring_head
        self.hist_buy[self.ring_buy[h]] -= 1
        self.hist_sell[self.ring_sell[h]] -= 1
        self.ring_head = (h + 1) % self.ring_cap
        self.ring_len -= 1

    cdef int on_mid_c(self, double t, double mid) noexcept nogil:
        if not isfinite(t) or fabs(t) > MAX_ABS_TIME or _bad_positive(mid):
            self.rejected += 1
            return REJECTED
        self._advance(t)
        self.mid = mid
        self.has_mid = True
        if not self.has_step_mid:  # first mid ever: it anchors the step it arrives in
            self.step_mid = mid
            self.has_step_mid = True
        return ACCEPTED

    cdef int on_trade_c(self, double t, double px, int side) noexcept nogil:
        cdef double reach
        cdef int k
        if not isfinite(t) or fabs(t) > MAX_ABS_TIME or _bad_positive(px) or (side != 1 and side != -1):
            self.rejected += 1
            return REJECTED
        self._advance(t)
        self.trades += 1
        if not self.has_step_mid:
            self.no_mid += 1
            return SKIPPED
        reach = (px - self.step_mid) / self.unit if side == 1 else (self.step_mid - px) / self.unit
        if reach < 0.5:
            return ACCEPTED
        # Grid points (j + ½) ≤ reach, capped at n_bins (reached the whole grid).
        if reach - 0.5 >= self.n_bins:
            k = self.n_bins
        else:
            k = <int>floor(reach - 0.5) + 1
            if k > self.n_bins:
                k = self.n_bins
        if side == 1:
            if k > self.reach_buy:
                self.reach_buy = k
        elif k > self.reach_sell:
            self.reach_sell = k
        return ACCEPTED

    cdef void refit_c(self) noexcept nogil:
        cdef int j, m_b, m_s, m_p
        cdef long long acc_b = 0, acc_s = 0
        cdef double covered, tick_frac, r2, ka, la
        self.fits += 1
        covered = <double>(self.cur_step - self.first_step)
        if covered > <double>self.window_steps:
            covered = <double>self.window_steps
        covered *= self.step
        self.covered_s = covered
        if covered <= 0.0 or not self.has_mid:
            return
        # Suffix sums: cnt[j] = #steps whose reach index ≥ j + 1.
        for j in range(self.n_bins - 1, -1, -1):
            acc_b += self.hist_buy[j + 1]
            acc_s += self.hist_sell[j + 1]
            self.cnt_buy[j] = <double>acc_b
            self.cnt_sell[j] = <double>acc_s
        tick_frac = self.unit / self.mid
        m_b = _fit(self.cnt_buy, NULL, self.n_bins, covered, tick_frac, &ka, &la, &r2)
        if m_b >= 3 and covered >= self.min_window:
            self.kappa_ask = _clamp(ka, 50.0, 1e5)
            self.A_ask = _clamp(exp(la), 1e-3, 1e3)
        m_s = _fit(self.cnt_sell, NULL, self.n_bins, covered, tick_frac, &ka, &la, &r2)
        if m_s >= 3 and covered >= self.min_window:
            self.kappa_bid = _clamp(ka, 50.0, 1e5)
            self.A_bid = _clamp(exp(la), 1e-3, 1e3)
        m_p = _fit(self.cnt_buy, self.cnt_sell, self.n_bins, covered, tick_frac, &ka, &la, &r2)
        self.ready = m_p >= 3 and covered >= self.min_window
        if self.ready:
            self.kappa = _clamp(ka, 50.0, 1e5)
            self.A = _clamp(exp(la), 1e-3, 1e3)
            self.confidence = _clamp(r2, 0.0, 1.0) * min(1.0, covered / self.window)
            self.weight = 1.0
        else:
            # Before the window is long enough the prior stands for min_window seconds of data: a
            # decaying fit (κ > 0) on ≥ 3 bins and ≥ BLEND_MIN_STEPS trade-through steps gets weight
            # covered/min_window in log κ and log A, so the quotes move from the prior to the fit
            # smoothly instead of jumping at min_window.
            self.weight = 0.0
            self.kappa = self.kappa0
            self.A = self.a0
            if (self.blend and m_p >= 3 and ka > 0.0
                    and self.cnt_buy[0] + self.cnt_sell[0] >= BLEND_MIN_STEPS):
                self.weight = covered / self.min_window
                self.kappa = exp(self.weight * log(_clamp(ka, 50.0, 1e5))
                                 + (1.0 - self.weight) * log(self.kappa0))
                self.A = exp(self.weight * _clamp(la, LOG_A_MIN, LOG_A_MAX)
                             + (1.0 - self.weight) * log(self.a0))
            self.confidence = 0.0
        # A side without its own fit follows the pooled (blended or prior) values.
        if m_b < 3 or covered < self.min_window:
            self.kappa_ask = self.kappa
            self.A_ask = self.A
        if m_s < 3 or covered < self.min_window:
            self.kappa_bid = self.kappa
            self.A_bid = self.A

    def on_mid(self, double t, double mid) -> int:
        """Mid-price update (price units)."""
        return self.on_mid_c(t, mid)

    def on_trade(self, double t, double px, int side) -> int:
        """Public trade at px; side +1 aggressive buy, −1 aggressive sell."""
        return self.on_trade_c(t, px, side)

    def refit(self) -> None:
        """Refit now (the engine relies on the 5 s timer inside the updates)."""
        self.refit_c()

    def counts(self, int side) -> list:
        """Steps in the window reaching each grid point: side +1 buys (asks), −1 sells, 0 mean."""
        cdef list out = []
        cdef long long acc_b = 0, acc_s = 0
        cdef int j
        cdef list rb = [0.0] * self.n_bins
        cdef list rs = [0.0] * self.n_bins
        for j in range(self.n_bins - 1, -1, -1):
            acc_b += self.hist_buy[j + 1]
            acc_s += self.hist_sell[j + 1]
            rb[j] = float(acc_b)
            rs[j] = float(acc_s)
        for j in range(self.n_bins):
            out.append(rb[j] if side == 1 else rs[j] if side == -1 else 0.5 * (rb[j] + rs[j]))
        return out


cdef int _fit(double* cnt_a, double* cnt_b, int n, double covered, double tick_frac,
              double* kappa, double* log_a, double* r2) noexcept nogil:
    """OLS of ln λ_j on δ_j over bins with count > 0; returns the number of bins used.

    With cnt_b the pooled per-side count (cnt_a + cnt_b)/2 is fitted. Two passes (means,
    then centred sums) avoid the cancellation of raw power sums.
    """
    cdef int j, m = 0
    cdef double c, dx, dy, sx = 0.0, sy = 0.0, vxx = 0.0, vxy = 0.0, vyy = 0.0
    cdef double mx, my, slope
    for j in range(n):
        c = cnt_a[j] if cnt_b == NULL else 0.5 * (cnt_a[j] + cnt_b[j])
        if c > 0.0:
            m += 1
            sx += (j + 0.5) * tick_frac
            sy += log(c / covered)
    if m < 2:
        return m
    mx = sx / m
    my = sy / m
    for j in range(n):
        c = cnt_a[j] if cnt_b == NULL else 0.5 * (cnt_a[j] + cnt_b[j])
        if c > 0.0:
            dx = (j + 0.5) * tick_frac - mx
            dy = log(c / covered) - my
            vxx += dx * dx
            vxy += dx * dy
            vyy += dy * dy
    if vxx <= 0.0:
        return 0
    slope = vxy / vxx
    kappa[0] = -slope
    log_a[0] = my - slope * mx
    r2[0] = (vxy * vxy) / (vxx * vyy) if vyy > 0.0 else 1.0
    return m


# ---------------------------------------------------------------------------------------
# §5 Hawkes and the liquidation-cascade detector
# ---------------------------------------------------------------------------------------
cdef class Hawkes:
    """λ(t) = μ + Σ α·s_i·e^{−β(t − t_i)}, kept as a decayed running sum S.

    An event older than the last one is applied at t_last (counted in out_of_order);
    a query before t_last answers for t_last. Both keep S equal to the brute-force sum.
    """

    def __init__(self, double mu=0.01, double alpha=0.5, double beta=0.1):
        _check_positive("mu", mu)
        _check_positive("beta", beta)
        if not (alpha >= 0.0 and isfinite(alpha)):
            raise ValueError(f"alpha must be finite and >= 0, got {alpha!r}")
        self.mu = mu
        self.alpha = alpha
        self.beta = beta
        self.excitation = 0.0
        self.t_last = 0.0
        self.started = False

    cdef int on_event_c(self, double t, double s) noexcept nogil:
        if not isfinite(t) or _bad_positive(s) or s > MAX_MARK:
            self.rejected += 1
            return REJECTED
        if not self.started:
            self.started = True
            self.t_last = t
        elif t > self.t_last:
            self.excitation *= exp(-self.beta * (t - self.t_last))
            self.t_last = t
        elif t < self.t_last:
            self.out_of_order += 1
        self.excitation += self.alpha * s
        self.events += 1
        return ACCEPTED

    cdef double intensity_c(self, double t) noexcept nogil:
        if not self.started or not isfinite(t) or t <= self.t_last:
            return self.mu + self.excitation
        return self.mu + self.excitation * exp(-self.beta * (t - self.t_last))

    def on_event(self, double t, double s) -> int:
        """Add an event of mark s (> 0) at time t."""
        return self.on_event_c(t, s)

    def intensity(self, double t) -> float:
        """λ(t) without mutating the state."""
        return self.intensity_c(t)


cdef class CascadeDetector:
    """Liquidation-cascade detector on a Hawkes intensity of liquidation-like trades.

    Events: trades flagged as liquidations, plus (fallback) trades whose notional exceeds a
    streaming 99th percentile. The percentile is tracked in log-notional by stochastic
    approximation, q += η·scale·(p − 1{x ≤ q}) with scale an EWMA absolute deviation; it
    settles where P(x > q) = 1 − p and is trusted after `quantile_min_trades` trades.
    direction: −1 longs liquidated (sell flow), +1 shorts liquidated (buy flow), 0 mixed/none,
    from the β-decayed share (> 0.7) of each side. A cascade stays `active` for cooldown_s
    after the ratio last exceeded 3.

    Baseline: a fixed μ makes R = λ/μ ≫ 5 forever on a tape whose large trades arrive faster
    than μ, so the ratio is taken against this market's normal intensity instead:
    baseline = μ + (α/β)·m̂, the long-run mean of λ when marks arrive at m̂ per second.
    m̂ = Σ s_i·e^{−(t − t_i)/τ} / (τ·(1 − e^{−e/τ})) is an EWMA of the mark rate (τ from
    baseline_half_life) divided by the weight it has accumulated since the first trade
    (e = max(t − t_first, 1/β)), so it is unbiased from the start and is the plain average
    rate while e ≪ τ. A burst lifts λ at the Hawkes speed (half-life ln2/β ≈ 7 s) but the
    baseline only at τ, so R measures the burst against the last ~10 minutes.
    baseline_half_life = 0 restores the fixed μ.
    """

    def __init__(self, double mu=0.01, double alpha=0.5, double beta=0.1,
                 double size_scale=10000.0, double warmup_s=60.0, double cooldown_s=0.0,
                 double quantile_p=0.99, long long quantile_min_trades=200,
                 double baseline_half_life=600.0):
        _check_positive("size_scale", size_scale)
        if not (baseline_half_life >= 0.0 and isfinite(baseline_half_life)):
            raise ValueError(f"baseline_half_life must be finite and >= 0, got {baseline_half_life!r}")
        if not (warmup_s >= 0.0 and isfinite(warmup_s)):
            raise ValueError(f"warmup_s must be finite and >= 0, got {warmup_s!r}")
        if not (cooldown_s >= 0.0 and isfinite(cooldown_s)):
            raise ValueError(f"cooldown_s must be finite and >= 0, got {cooldown_s!r}")
        if not (0.5 < quantile_p < 1.0):
            raise ValueError(f"quantile_p must be in (0.5, 1), got {quantile_p!r}")
        self.hawkes = Hawkes(mu, alpha, beta)
        self.size_scale = size_scale
        self.warmup_s = warmup_s
        self.cooldown_s = cooldown_s
        self.quantile_p = quantile_p
        self.quantile_min_trades = quantile_min_trades
        self.baseline_half_life = baseline_half_life
        self.base_tau = baseline_half_life / LN2
        self.base_mass = 0.0
        self.baseline = mu
        self.event_rate = 0.0
        self.started = False
        self.hot_until = -INFINITY
        self._quiet_outputs()

    cdef void _quiet_outputs(self) noexcept nogil:
        self.ratio = 1.0
        self.severity = 0.0
        self.size_factor = 1.0
        self.spread_mult = 1.0
        self.active = False
        self.pull = False
        self.direction = 0

    cdef int on_trade_c(self, double t, double notional, int side, bint is_liquidation) noexcept nogil:
        cdef double lx, mark, decay
        cdef bint large
        if (not isfinite(t) or _bad_positive(notional) or notional / self.size_scale > MAX_MARK
                or (side != 1 and side != -1)):
            self.rejected += 1
            return REJECTED
        if not self.started:
            self.started = True
            self.t_first = t
            self.t_sides = t
            self.t_base = t
        self.trades += 1
        lx = log(notional)
        large = self.trades > self.quantile_min_trades and lx > self.log_q
        self._track_quantile(lx)
        if is_liquidation or large:
            mark = notional / self.size_scale
            if mark < 0.01:
                mark = 0.01
            self.hawkes.on_event_c(t, mark)
            if t > self.t_base:     # a late event counts at the latest time seen, as in the Hawkes sum
                if self.base_tau > 0.0:
                    self.base_mass *= exp(-(t - self.t_base) / self.base_tau)
                self.t_base = t
            self.base_mass += mark
            if t > self.t_sides:
                decay = exp(-self.hawkes.beta * (t - self.t_sides))
                self.sell_w *= decay
                self.buy_w *= decay
                self.t_sides = t
            if side == -1:
                self.sell_w += mark
            else:
                self.buy_w += mark
            self.events += 1
            if is_liquidation:
                self.liquidations += 1
            else:
                self.large_trades += 1
        self.update_c(t)
        return ACCEPTED

    cdef void _track_quantile(self, double lx) noexcept nogil:
        cdef double eta = 0.05, a = 0.01
        if self.trades == 1:
            self.q_mean = lx
            self.q_scale = 1.0
            self.log_q = lx
            return
        self.q_mean += a * (lx - self.q_mean)
        self.q_scale += a * (fabs(lx - self.q_mean) - self.q_scale)
        if self.q_scale < 1e-3:
            self.q_scale = 1e-3
        if lx <= self.log_q:
            self.log_q -= eta * self.q_scale * (1.0 - self.quantile_p)
        else:
            self.log_q += eta * self.q_scale * self.quantile_p

    cdef double baseline_c(self, double t) noexcept nogil:
        """λ̄(t) = μ + (α/β)·m̂(t); sets event_rate (m̂). μ alone when the baseline is off."""
        cdef double tq, mass, elapsed, weight
        cdef double beta = self.hawkes.beta
        if self.base_tau <= 0.0 or not self.started:
            self.event_rate = 0.0
            return self.hawkes.mu
        tq = t if t > self.t_base else self.t_base
        mass = self.base_mass * exp(-(tq - self.t_base) / self.base_tau)
        elapsed = tq - self.t_first
        if elapsed < 1.0 / beta:        # no rate is measurable faster than the excitation decays
            elapsed = 1.0 / beta
        weight = -self.base_tau * expm1(-elapsed / self.base_tau)
        self.event_rate = mass / weight
        return self.hawkes.mu + self.hawkes.alpha / beta * self.event_rate

    cdef void update_c(self, double t) noexcept nogil:
        cdef double r, sev, decay, sw, bw, share
        if not isfinite(t):
            return
        self.baseline = self.baseline_c(t)
        if not self.started or t - self.t_first < self.warmup_s:
            self.warm = False
            self._quiet_outputs()
            return
        self.warm = True
        r = self.hawkes.intensity_c(t) / self.baseline
        self.ratio = r
        sev = _clamp((r - 1.0) / 4.0, 0.0, 1.0)
        self.severity = sev
        if r > 3.0:
            self.hot_until = t + self.cooldown_s
        self.active = r > 3.0 or t < self.hot_until
        self.pull = r >= 5.0
        if r <= 3.0:
            self.size_factor = 1.0
        elif r >= 5.0:
            self.size_factor = 0.0
        else:
            self.size_factor = (5.0 - r) / 2.0
        self.spread_mult = 1.0 + 2.0 * sev
        decay = exp(-self.hawkes.beta * (t - self.t_sides)) if t > self.t_sides else 1.0
        sw = self.sell_w * decay
        bw = self.buy_w * decay
        if sw + bw <= 1e-12:
            self.direction = 0
        else:
            share = sw / (sw + bw)
            self.direction = -1 if share > 0.7 else (1 if share < 0.3 else 0)

    def on_trade(self, double t, double notional, int side, bint is_liquidation) -> int:
        """Public trade: USD notional, aggressor side ±1, liquidation flag."""
        return self.on_trade_c(t, notional, side, is_liquidation)

    def update(self, double t) -> None:
        """Recompute the outputs for time t (decay only; no state change)."""
        self.update_c(t)

    @property
    def direction_name(self) -> str:
        if self.direction == -1:
            return "long"
        if self.direction == 1:
            return "short"
        return "both" if self.events > 0 else "none"

    @property
    def notional_quantile(self) -> float:
        """Current streaming estimate of the quantile_p trade notional (USD)."""
        return exp(self.log_q) if self.trades > 0 else 0.0


# ---------------------------------------------------------------------------------------
# Microprice drift and websocket latency
# ---------------------------------------------------------------------------------------
cdef class Drift:
    """Short-horizon drift μ̂: EWMA (time half-life) of microprice log-return per second.

    μ_raw ← μ_raw + α(Δt)·(r/Δt − μ_raw); for small Δt the step is ≈ r/τ, so a burst of
    updates cannot blow up the estimate. With no drift its sampling variance is σ²/(2τ)
    (σ² = v, the EWMA of r²/Δt): at a 10 s half-life ≈ (4.6e-5/s)² for σ = 2.5e-4/√s,
    i.e. ±7 bp of quote shift over a 30 s horizon from noise alone. `mu` is therefore the
    positive-part James–Stein shrinkage μ_raw·max(0, 1 − se²/μ_raw²), se² = v/(2τ): a drift
    within its own noise moves the quotes little, a clear trend passes almost unchanged.
    shrink=False reports μ_raw as mu.
    """

    def __init__(self, double half_life=10.0, bint shrink=True):
        _check_positive("half_life", half_life)
        self.half_life = half_life
        self.shrink = shrink
        self.tau = half_life / LN2
        self.mu = 0.0
        self.mu_raw = 0.0
        self.var_rate = 0.0
        self.noise_sd = 0.0
        self.has_prev = False

    cdef int update_c(self, double t, double price) noexcept nogil:
        cdef double lp, dt, x, a, se2, m2
        if not isfinite(t) or _bad_positive(price):
            self.rejected += 1
            return REJECTED
        lp = log(price)
        if not self.has_prev:
            self.has_prev = True
            self.log_prev = lp
            self.last_t = t
            return ACCEPTED
        dt = t - self.last_t
        if dt <= 0.0:
            self.skipped += 1
            return SKIPPED
        x = (lp - self.log_prev) / dt
        if not isfinite(x):  # degenerate Δt
            self.rejected += 1
            return REJECTED
        a = _ewma_alpha(dt, self.tau)
        self.mu_raw += a * (x - self.mu_raw)
        self.var_rate += a * (x * x * dt - self.var_rate)
        se2 = self.var_rate / (2.0 * self.tau)
        self.noise_sd = sqrt(se2)
        m2 = self.mu_raw * self.mu_raw
        if not self.shrink:
            self.mu = self.mu_raw
        elif m2 > se2:
            self.mu = self.mu_raw * (1.0 - se2 / m2)
        else:
            self.mu = 0.0
        self.log_prev = lp
        self.last_t = t
        self.samples += 1
        return ACCEPTED

    def update(self, double t, double price) -> float:
        """Feed a microprice sample; returns μ̂ (fraction of price per second)."""
        self.update_c(t, price)
        return self.mu

    @property
    def mu_bps_s(self) -> float:
        return self.mu * 1e4


cdef class LatencyEwma:
    """EWMA of websocket round-trip latency (ms) with a time half-life.

    The first measurement replaces the placeholder `initial_ms`. Each later sample gets
    weight max(1 − e^{−Δt/τ}, min_alpha) so back-to-back acks still move the estimate.
    """

    def __init__(self, double half_life=30.0, double initial_ms=50.0, double min_alpha=0.05):
        _check_positive("half_life", half_life)
        _check_positive("initial_ms", initial_ms)
        if not (0.0 < min_alpha <= 1.0):
            raise ValueError(f"min_alpha must be in (0, 1], got {min_alpha!r}")
        self.half_life = half_life
        self.initial_ms = initial_ms
        self.min_alpha = min_alpha
        self.tau = half_life / LN2
        self.value_ms = initial_ms
        self.measured = False

    cdef int update_c(self, double t, double latency_ms) noexcept nogil:
        cdef double a, dt
        if not isfinite(t) or not isfinite(latency_ms) or latency_ms < 0.0 or latency_ms > MAX_LATENCY_MS:
            self.rejected += 1
            return REJECTED
        if not self.measured:
            self.measured = True
            self.value_ms = latency_ms
        else:
            dt = t - self.last_t
            a = _ewma_alpha(dt, self.tau) if dt > 0.0 else 0.0
            if a < self.min_alpha:
                a = self.min_alpha
            self.value_ms += a * (latency_ms - self.value_ms)
        if not self.samples or t > self.last_t:
            self.last_t = t
        self.samples += 1
        return ACCEPTED

    def update(self, double t, double latency_ms) -> float:
        """Feed one round-trip measurement (ms); returns the smoothed value (ms)."""
        self.update_c(t, latency_ms)
        return self.value_ms
