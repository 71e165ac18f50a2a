# Market-state estimators (algorithms.md §2–§5): volatility, stochastic-vol stats, fill
# intensity, Hawkes cascade detector, microprice drift and websocket latency.
#
# Every class keeps its state in C fields/arrays allocated at construction. The cdef
# `*_c` methods are the hot-path entry points for other kernels (C doubles in, an int
# status out: 0 accepted, 1 rejected input, 2 skipped e.g. non-increasing time); they
# never raise. Units: time s, prices in price units (double), σ per √s in log-return
# units, depths and drifts as fractions of price.

cdef enum UpdateStatus:
    ACCEPTED = 0
    REJECTED = 1
    SKIPPED = 2


cdef class Volatility:
    cdef readonly double prior           # σ prior per √s, used before warm-up
    cdef readonly double hl_fast, hl_mid, hl_slow, warmup_s
    cdef double tau_fast, tau_mid, tau_slow
    cdef readonly double var_fast, var_mid, var_slow   # EWMA r²/Δt (variance per s)
    cdef readonly double bipower                       # EWMA (π/2)|r||r_prev|/Δt, τ_mid
    cdef readonly double sigma_fast, sigma_mid, sigma_slow
    cdef readonly double sigma_clean     # √bipower (jump-robust)
    cdef readonly double sigma_total     # fast/slow blend
    cdef readonly double jump_ratio      # var_mid/bipower clamped [0.1, 100]
    cdef readonly double sigma_eff       # what quoting uses (prior until warm)
    cdef readonly bint warm
    cdef readonly long long samples      # accepted returns
    cdef readonly long long rejected     # NaN/inf/≤0 price or non-finite time
    cdef readonly long long skipped      # Δt ≤ 0
    cdef readonly double last_return, last_t, first_t
    cdef double log_prev, ret_prev
    cdef bint has_prev, has_ret_prev

    cdef int update_c(self, double t, double price) noexcept nogil
    cdef void _refresh(self) noexcept nogil


cdef class SvStats:
    cdef readonly double forget_window   # s (= observations); 0 disables forgetting
    cdef readonly double lam             # per-observation weight decay e^{-1/window}
    cdef readonly double kappa_v_prior
    cdef readonly long long n            # variance observations
    cdef readonly double theta           # mean variance (per s)
    cdef readonly double xi              # sd of 1 s variance change
    cdef readonly double acf1            # lag-1 autocorrelation of v (0 until n ≥ 3)
    cdef readonly double kappa_v         # mean reversion per s, clamp [0.01, 5]
    cdef readonly double rho             # corr(r_k, dv_k), clamp [-0.95, 0.95]
    cdef readonly long long rejected
    cdef bint started, has_prev_v
    cdef double next_obs_t, obs_price, prev_v
    cdef double w_v, w2_v, mean_v, m2_v
    cdef double w_p, lag_c, lag_sa, lag_sb
    cdef double w_d, w2_d, mean_r, mean_dv, m2_r, m2_dv, c_rdv
    cdef long long n_pairs

    cdef int update_c(self, double t, double variance, double price) noexcept nogil
    cdef void observe_c(self, double v, double r) noexcept nogil
    cdef double expected_avg_variance_c(self, double h, double v) noexcept nogil
    cdef double leverage_sigma_c(self, double sigma, double r) noexcept nogil


cdef class FillIntensity:
    cdef readonly double unit            # price tick in price units (BTC 0.1)
    cdef readonly double kappa0, a0, window, step, refit_s
    cdef readonly int n_bins
    cdef readonly double kappa, A        # pooled per-side λ(δ) = A e^{-κδ}, δ fraction
    cdef readonly double kappa_bid, A_bid   # from sell aggressors (fill our bids)
    cdef readonly double kappa_ask, A_ask   # from buy aggressors (fill our asks)
    cdef readonly double confidence      # 0..1: R² × window coverage (0 until ready)
    cdef readonly double covered_s       # seconds of closed steps in the window
    cdef readonly bint ready
    cdef readonly double min_window      # s of window needed before the fit stands alone (60)
    cdef readonly bint blend             # before ready: blend the fit with the prior (else prior only)
    cdef readonly double weight          # fit's weight in log κ, log A: 1 ready, covered/min_window blending
    cdef readonly long long trades, rejected, no_mid, out_of_order, fits
    cdef readonly double mid
    cdef double step_mid, next_refit
    cdef long long cur_step, first_step, window_steps
    cdef int reach_buy, reach_sell
    cdef bint started, has_mid, has_step_mid
    cdef long long* ring_step
    cdef int* ring_buy
    cdef int* ring_sell
    cdef long long ring_cap, ring_head, ring_len
    cdef long long* hist_buy
    cdef long long* hist_sell
    cdef double* cnt_buy
    cdef double* cnt_sell

    cdef void _advance(self, double t) noexcept nogil
    cdef void _pop(self) noexcept nogil
    cdef int on_mid_c(self, double t, double mid) noexcept nogil
    cdef int on_trade_c(self, double t, double px, int side) noexcept nogil
    cdef void refit_c(self) noexcept nogil


cdef class Hawkes:
    cdef readonly double mu, alpha, beta
    cdef readonly double excitation      # S at t_last
    cdef readonly double t_last
    cdef readonly long long events, rejected, out_of_order
    cdef bint started

    cdef int on_event_c(self, double t, double s) noexcept nogil
    cdef double intensity_c(self, double t) noexcept nogil


cdef class CascadeDetector:
    cdef readonly Hawkes hawkes
    cdef readonly double size_scale, warmup_s, cooldown_s, quantile_p
    cdef readonly long long quantile_min_trades
    cdef readonly double ratio, severity, size_factor, spread_mult
    cdef readonly bint active, pull, warm
    cdef readonly int direction          # -1 longs liquidated (sell flow), +1 shorts, 0 both/none
    cdef readonly long long trades, events, liquidations, large_trades, rejected
    cdef readonly double log_q           # streaming log-notional quantile
    # adaptive baseline (0 half-life = the fixed mu): ratio = lambda / baseline,
    # baseline = mu + (alpha/beta) x event_rate, the long-run mean of lambda at this market's rate
    cdef readonly double baseline_half_life   # s (0 = off)
    cdef readonly double baseline             # lambda-bar at the last update, per s (>= mu)
    cdef readonly double event_rate           # bias-corrected EWMA of event marks per s
    cdef double base_tau, base_mass, t_base
    cdef double q_scale, q_mean, t_first, t_sides, sell_w, buy_w, hot_until
    cdef bint started

    cdef int on_trade_c(self, double t, double notional, int side, bint is_liquidation) noexcept nogil
    cdef void _track_quantile(self, double lx) noexcept nogil
    cdef void _quiet_outputs(self) noexcept nogil
    cdef double baseline_c(self, double t) noexcept nogil
    cdef void update_c(self, double t) noexcept nogil


cdef class Drift:
    cdef readonly double half_life
    cdef readonly bint shrink            # report the shrunk estimate in mu (else mu = mu_raw)
    cdef readonly double mu              # drift used for quoting, fraction/s: mu_raw shrunk by its noise
    cdef readonly double mu_raw          # EWMA of log-return per s (fraction/s)
    cdef readonly double var_rate        # EWMA of r²/Δt, same half-life (variance per s)
    cdef readonly double noise_sd        # sampling sd of mu_raw under no drift: √(var_rate / 2τ)
    cdef readonly long long samples, rejected, skipped
    cdef readonly double last_t
    cdef double tau, log_prev
    cdef bint has_prev

    cdef int update_c(self, double t, double price) noexcept nogil


cdef class LatencyEwma:
    cdef readonly double half_life, initial_ms, min_alpha
    cdef readonly double value_ms
    cdef readonly bint measured
    cdef readonly long long samples, rejected
    cdef readonly double last_t
    cdef double tau

    cdef int update_c(self, double t, double latency_ms) noexcept nogil
