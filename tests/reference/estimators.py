"""Plain-Python reference estimators (algorithms.md §2–§5).

Recursive estimators (volatility, drift, latency) restate the formulas step by step;
SvStats, FillIntensity and Hawkes are brute-force batch computations over the full
history, which is what the O(1) kernels must reproduce.
"""
from __future__ import annotations

import math

LN2 = math.log(2.0)


def _clamp(x: float, lo: float, hi: float) -> float:
    return lo if x < lo else hi if x > hi else x


def _finite_positive(x: float) -> bool:
    return math.isfinite(x) and x > 0.0


class VolatilityRef:
    def __init__(self, prior: float = 2.5e-4, hl_fast: float = 5.0, hl_mid: float = 30.0,
                 hl_slow: float = 300.0, warmup_s: float = 30.0) -> None:
        self.prior = prior
        self.taus = (hl_fast / LN2, hl_mid / LN2, hl_slow / LN2)
        self.warmup_s = warmup_s
        self.var = [prior * prior] * 3
        self.bipower = prior * prior
        self.prev: tuple[float, float] | None = None  # (t, log price)
        self.first_t = 0.0
        self.ret_prev: float | None = None
        self.warm = False
        self.samples = self.rejected = self.skipped = 0
        self.last_return = 0.0

    def update(self, t: float, price: float) -> int:
        if not math.isfinite(t) or not _finite_positive(price):
            self.rejected += 1
            return 1
        lp = math.log(price)
        if self.prev is None:
            self.prev = (t, lp)
            self.first_t = t
            return 0
        dt = t - self.prev[0]
        if dt <= 0.0:
            self.skipped += 1
            return 2
        r = lp - self.prev[1]
        alphas = [1.0 - math.exp(-dt / tau) for tau in self.taus]
        self.var = [v + a * (r * r / dt - v) for v, a in zip(self.var, alphas, strict=True)]
        if self.ret_prev is not None:
            self.bipower += alphas[1] * ((math.pi / 2.0) * abs(r) * abs(self.ret_prev) / dt - self.bipower)
        self.ret_prev = r
        self.prev = (t, lp)
        self.last_return = r
        self.samples += 1
        if t - self.first_t >= self.warmup_s:
            self.warm = True
        return 0

    @property
    def sigma_fast(self) -> float:
        return math.sqrt(self.var[0])

    @property
    def sigma_mid(self) -> float:
        return math.sqrt(self.var[1])

    @property
    def sigma_slow(self) -> float:
        return math.sqrt(self.var[2])

    @property
    def sigma_clean(self) -> float:
        return math.sqrt(self.bipower)

    @property
    def sigma_total(self) -> float:
        ratio = self.sigma_fast / self.sigma_slow if self.sigma_slow > 0 else 1.0
        w = _clamp((ratio - 1.0) / 3.0, 0.0, 0.7) if ratio > 1.5 else 0.2
        return w * self.sigma_fast + (1.0 - w) * self.sigma_slow

    @property
    def jump_ratio(self) -> float:
        return _clamp(self.var[1] / self.bipower, 0.1, 100.0) if self.bipower > 1e-30 else 1.0

    @property
    def sigma_eff(self) -> float:
        if not self.warm:
            eff = self.prior
        else:
            wj = _clamp(1.0 - 1.0 / self.jump_ratio, 0.0, 0.85)
            eff = (1.0 - wj) * self.sigma_clean + wj * self.sigma_total
        return _clamp(eff, 1e-7, 10.0 * self.prior)


def _weighted_mean_m2(xs: list[float], ws: list[float]) -> tuple[float, float, float, float]:
    """(W, ΣW², weighted mean, Σw(x − mean)²) by two passes."""
    w = sum(ws)
    w2 = sum(x * x for x in ws)
    mean = sum(wi * xi for wi, xi in zip(ws, xs, strict=True)) / w
    m2 = sum(wi * (xi - mean) ** 2 for wi, xi in zip(ws, xs, strict=True))
    return w, w2, mean, m2


def sv_batch(vs: list[float], rs: list[float], forget_window: float = 0.0,
             kappa_v_prior: float = 0.1) -> dict[str, float]:
    """Batch weighted statistics of 1 s observations (v_k, r_k); weight λ^(n−k)."""
    n = len(vs)
    lam = math.exp(-1.0 / forget_window) if forget_window > 0 else 1.0
    ws = [lam ** (n - 1 - k) for k in range(n)]
    out = {"theta": 0.0, "xi": 0.0, "acf1": 0.0, "kappa_v": kappa_v_prior, "rho": 0.0}
    if n == 0:
        return out
    _, _, theta, m2_v = _weighted_mean_m2(vs, ws)
    out["theta"] = theta
    dvs = [vs[k] - vs[k - 1] for k in range(1, n)]
    dws = ws[1:]
    pr = rs[1:]
    if len(dvs) >= 2:
        w, w2, _, m2_dv = _weighted_mean_m2(dvs, dws)
        denom = w - w2 / w
        out["xi"] = math.sqrt(m2_dv / denom) if denom > 0 and m2_dv > 0 else 0.0
    floor_var = (1e-10 * theta) ** 2  # rounding-level spread counts as constant
    if n >= 3 and m2_v > 0 and m2_v / sum(ws) > floor_var:
        lag = sum(ws[k] * (vs[k] - theta) * (vs[k - 1] - theta) for k in range(1, n))
        acf1 = lag / m2_v
        out["acf1"] = acf1
        out["kappa_v"] = 5.0 if acf1 <= 0 else _clamp(-math.log(acf1), 0.01, 5.0)
    if n >= 3:
        w, _, mean_r, m2_r = _weighted_mean_m2(pr, dws)
        _, _, mean_dv, m2_dv = _weighted_mean_m2(dvs, dws)
        cov = sum(wi * (a - mean_r) * (b - mean_dv) for wi, a, b in zip(dws, pr, dvs, strict=True))
        if m2_r / w > 1e-18 and m2_dv / w > floor_var and m2_dv > 0:
            out["rho"] = _clamp(cov / math.sqrt(m2_r * m2_dv), -0.95, 0.95)
    return out


class SvStatsRef:
    """Resamples on the 1 s clock like the kernel and keeps every observation."""

    def __init__(self, forget_window: float = 0.0, kappa_v_prior: float = 0.1) -> None:
        self.forget_window = forget_window
        self.kappa_v_prior = kappa_v_prior
        self.vs: list[float] = []
        self.rs: list[float] = []
        self.next_obs_t: float | None = None
        self.obs_price = 0.0

    def update(self, t: float, variance: float, price: float) -> int:
        if not (math.isfinite(t) and math.isfinite(variance) and variance >= 0 and _finite_positive(price)):
            return 1
        if self.next_obs_t is None:
            self.next_obs_t = t + 1.0
            self.obs_price = price
            return 0
        if t < self.next_obs_t:
            return 2
        self.vs.append(variance)
        self.rs.append(math.log(price / self.obs_price))
        self.obs_price = price
        self.next_obs_t = t + 1.0 if t >= self.next_obs_t + 1.0 else self.next_obs_t + 1.0
        return 0

    def stats(self) -> dict[str, float]:
        return sv_batch(self.vs, self.rs, self.forget_window, self.kappa_v_prior)


def expected_avg_variance(theta: float, kappa_v: float, h: float, v: float) -> float:
    k = kappa_v * h
    if k <= 1e-12:
        return v
    return theta + (v - theta) * (1.0 - math.exp(-k)) / k


def leverage_sigma(rho: float, sigma: float, r: float) -> float:
    if sigma <= 0:
        return sigma
    return sigma * (1.0 + min(0.5, 0.2 * abs(r) / sigma)) if r * rho > 0 else sigma


def _ols(xs: list[float], ys: list[float]) -> tuple[float, float, float]:
    """(κ = −slope, ln A = intercept, R²) of ys on xs."""
    m = len(xs)
    mx = sum(xs) / m
    my = sum(ys) / m
    vxx = sum((x - mx) ** 2 for x in xs)
    vxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    vyy = sum((y - my) ** 2 for y in ys)
    slope = vxy / vxx
    return -slope, my - slope * mx, (vxy * vxy) / (vxx * vyy) if vyy > 0 else 1.0


class FillIntensityRef:
    """Keeps every mid and trade; `fit()` recomputes the trade-through fit from scratch.

    Times must be non-decreasing (the kernel counts and absorbs out-of-order input).
    """

    def __init__(self, unit: float, kappa0: float = 2000.0, a0: float = 1.0, window: float = 600.0,
                 step: float = 0.1, n_bins: int = 70, blend: bool = True, min_window: float = 60.0) -> None:
        self.unit, self.kappa0, self.a0, self.window, self.step, self.n_bins = unit, kappa0, a0, window, step, n_bins
        self.blend, self.min_window = blend, min_window
        self.window_steps = max(1, math.floor(window / step + 0.5))
        self.mids: list[tuple[int, float]] = []      # (step, mid) in arrival order
        self.trades: list[tuple[int, float, int, float | None]] = []  # (step, px, side, step-start mid)
        self.first_step: int | None = None
        self.last_step = 0

    def _step_of(self, t: float) -> int:
        s = math.floor(t / self.step)
        if self.first_step is None:
            self.first_step = s
        self.last_step = s
        return s

    def on_mid(self, t: float, mid: float) -> None:
        if math.isfinite(t) and _finite_positive(mid):
            self.mids.append((self._step_of(t), mid))

    def on_trade(self, t: float, px: float, side: int) -> None:
        if math.isfinite(t) and _finite_positive(px) and side in (1, -1):
            step = self._step_of(t)
            self.trades.append((step, px, side, self._step_mid(step)))

    def _step_mid(self, step: int) -> float | None:
        """Mid in force when `step` began: the last mid from an earlier step."""
        for s, m in reversed(self.mids):
            if s < step:
                return m
        return self.mids[0][1] if self.mids else None  # the first mid anchors its own step

    def counts(self) -> tuple[list[float], list[float]]:
        now = self.last_step
        reach: dict[tuple[int, int], int] = {}
        for step, px, side, mid0 in self.trades:
            if step >= now or step < now - self.window_steps:
                continue
            if mid0 is None:
                continue
            ticks = (px - mid0) / self.unit if side == 1 else (mid0 - px) / self.unit
            if ticks < 0.5:
                continue
            k = min(self.n_bins, math.floor(ticks - 0.5) + 1)
            reach[(step, side)] = max(reach.get((step, side), 0), k)
        cb = [float(sum(1 for (_, sd), k in reach.items() if sd == 1 and k >= j + 1)) for j in range(self.n_bins)]
        cs = [float(sum(1 for (_, sd), k in reach.items() if sd == -1 and k >= j + 1)) for j in range(self.n_bins)]
        return cb, cs

    def fit(self) -> dict[str, float]:
        cb, cs = self.counts()
        covered = min(self.last_step - (self.first_step or 0), self.window_steps) * self.step
        mid = self.mids[-1][1]
        tick_frac = self.unit / mid
        out: dict[str, float] = {"kappa": self.kappa0, "A": self.a0, "ready": False, "confidence": 0.0,
                                 "weight": 0.0}

        def side_fit(cnt: list[float]) -> tuple[int, float, float, float]:
            pts = [((j + 0.5) * tick_frac, math.log(c / covered)) for j, c in enumerate(cnt) if c > 0]
            if len(pts) < 2:
                return len(pts), 0.0, 0.0, 0.0
            k, la, r2 = _ols([p[0] for p in pts], [p[1] for p in pts])
            return len(pts), k, la, r2

        m, k, la, r2 = side_fit([0.5 * (a + b) for a, b in zip(cb, cs, strict=True)])
        if m >= 3 and covered >= self.min_window:
            out.update(kappa=_clamp(k, 50.0, 1e5), A=_clamp(math.exp(la), 1e-3, 1e3), ready=True,
                       confidence=_clamp(r2, 0.0, 1.0) * min(1.0, covered / self.window), weight=1.0)
        elif self.blend and m >= 3 and k > 0.0 and cb[0] + cs[0] >= 20:
            # shrinkage towards the prior: geometric mean with weight covered / min_window
            w = covered / self.min_window
            out.update(kappa=self.kappa0 ** (1.0 - w) * _clamp(k, 50.0, 1e5) ** w,
                       A=self.a0 ** (1.0 - w) * _clamp(math.exp(la), 1e-3, 1e3) ** w, weight=w)
        for name, cnt in (("ask", cb), ("bid", cs)):
            m, k, la, _ = side_fit(cnt)
            if m >= 3 and covered >= self.min_window:
                out[f"kappa_{name}"] = _clamp(k, 50.0, 1e5)
                out[f"A_{name}"] = _clamp(math.exp(la), 1e-3, 1e3)
            else:
                out[f"kappa_{name}"] = out["kappa"]
                out[f"A_{name}"] = out["A"]
        return out


class HawkesRef:
    """Brute force: λ(t) = μ + Σ α·s_i·e^{−β(t − t_i)} over every stored event (O(n))."""

    def __init__(self, mu: float = 0.01, alpha: float = 0.5, beta: float = 0.1) -> None:
        self.mu, self.alpha, self.beta = mu, alpha, beta
        self.events: list[tuple[float, float]] = []
        self.t_last = -math.inf

    def on_event(self, t: float, s: float) -> int:
        if not math.isfinite(t) or not _finite_positive(s) or s > 1e12:
            return 1
        self.t_last = max(self.t_last, t)  # a late event is applied at the latest time seen
        self.events.append((self.t_last, s))
        return 0

    def intensity(self, t: float) -> float:
        t = max(t, self.t_last) if self.events else t
        return self.mu + sum(self.alpha * s * math.exp(-self.beta * (t - ti)) for ti, s in self.events)


class CascadeDetectorRef:
    """Restatement of the cascade detector on top of the brute-force Hawkes sum.

    The adaptive baseline is summed over every stored event too: μ + (α/β)·Σ s_i·e^{−(t − t_i)/τ}
    divided by the weight τ·(1 − e^{−e/τ}) accumulated since the first trade, e ≥ 1/β."""

    def __init__(self, mu: float = 0.01, alpha: float = 0.5, beta: float = 0.1, size_scale: float = 10000.0,
                 warmup_s: float = 60.0, cooldown_s: float = 0.0, quantile_p: float = 0.99,
                 quantile_min_trades: int = 200, baseline_half_life: float = 600.0) -> None:
        self.hawkes = HawkesRef(mu, alpha, beta)
        self.tau = baseline_half_life / math.log(2.0)
        self.t_base = -math.inf
        self.size_scale, self.warmup_s, self.cooldown_s = size_scale, warmup_s, cooldown_s
        self.p, self.min_trades = quantile_p, quantile_min_trades
        self.t_first: float | None = None
        self.trades = 0
        self.log_q = self.q_mean = 0.0
        self.q_scale = 1.0
        self.side_events: list[tuple[float, float, int]] = []
        self.hot_until = -math.inf
        self.out: dict[str, float] = {}

    def on_trade(self, t: float, notional: float, side: int, is_liquidation: bool) -> None:
        if not (math.isfinite(t) and _finite_positive(notional) and side in (1, -1)):
            return
        if self.t_first is None:
            self.t_first = self.t_base = t
        self.trades += 1
        lx = math.log(notional)
        large = self.trades > self.min_trades and lx > self.log_q
        if self.trades == 1:
            self.q_mean, self.q_scale, self.log_q = lx, 1.0, lx
        else:
            self.q_mean += 0.01 * (lx - self.q_mean)
            self.q_scale = max(1e-3, self.q_scale + 0.01 * (abs(lx - self.q_mean) - self.q_scale))
            self.log_q += 0.05 * self.q_scale * (self.p if lx > self.log_q else -(1.0 - self.p))
        if is_liquidation or large:
            mark = max(notional / self.size_scale, 0.01)
            self.hawkes.on_event(t, mark)
            self.t_base = max(self.t_base, t)
            self.side_events.append((self.hawkes.t_last, mark, side, self.t_base))
        self.update(t)

    def baseline(self, t: float) -> float:
        h = self.hawkes
        if self.tau <= 0 or self.t_first is None:
            return h.mu
        tq = max(t, self.t_base)
        mass = sum(m * math.exp(-(tq - tb) / self.tau) for _, m, _, tb in self.side_events)
        elapsed = max(tq - self.t_first, 1.0 / h.beta)
        return h.mu + h.alpha / h.beta * mass / (self.tau * (1.0 - math.exp(-elapsed / self.tau)))

    def update(self, t: float) -> dict[str, float]:
        if self.t_first is None or t - self.t_first < self.warmup_s:
            self.out = dict(ratio=1.0, severity=0.0, size_factor=1.0, spread_mult=1.0, active=False,
                            pull=False, direction=0)
            return self.out
        r = self.hawkes.intensity(t) / self.baseline(t)
        sev = _clamp((r - 1.0) / 4.0, 0.0, 1.0)
        if r > 3.0:
            self.hot_until = t + self.cooldown_s
        tq = max(t, self.hawkes.t_last)
        sw = sum(m * math.exp(-self.hawkes.beta * (tq - ti)) for ti, m, sd, _ in self.side_events if sd == -1)
        bw = sum(m * math.exp(-self.hawkes.beta * (tq - ti)) for ti, m, sd, _ in self.side_events if sd == 1)
        direction = 0
        if sw + bw > 1e-12:
            share = sw / (sw + bw)
            direction = -1 if share > 0.7 else 1 if share < 0.3 else 0
        self.out = dict(ratio=r, severity=sev, size_factor=1.0 if r <= 3 else 0.0 if r >= 5 else (5.0 - r) / 2.0,
                        spread_mult=1.0 + 2.0 * sev, active=r > 3.0 or t < self.hot_until, pull=r >= 5.0,
                        direction=direction)
        return self.out


class DriftRef:
    def __init__(self, half_life: float = 10.0, shrink: bool = True) -> None:
        self.tau = half_life / LN2
        self.shrink = shrink
        self.mu_raw = 0.0
        self.var_rate = 0.0
        self.mu = 0.0
        self.prev: tuple[float, float] | None = None

    def update(self, t: float, price: float) -> float:
        if not (math.isfinite(t) and _finite_positive(price)):
            return self.mu
        lp = math.log(price)
        if self.prev is None:
            self.prev = (t, lp)
            return self.mu
        dt = t - self.prev[0]
        if dt <= 0:
            return self.mu
        x = (lp - self.prev[1]) / dt
        alpha = 1.0 - math.exp(-dt / self.tau)
        self.mu_raw += alpha * (x - self.mu_raw)
        self.var_rate += alpha * (x * x * dt - self.var_rate)
        noise_var = self.var_rate / (2.0 * self.tau)  # sampling variance of mu_raw with no drift
        if not self.shrink:
            self.mu = self.mu_raw
        else:  # positive-part James–Stein
            self.mu = self.mu_raw * max(0.0, 1.0 - noise_var / self.mu_raw**2) if self.mu_raw**2 > noise_var else 0.0
        self.prev = (t, lp)
        return self.mu


class LatencyEwmaRef:
    def __init__(self, half_life: float = 30.0, initial_ms: float = 50.0, min_alpha: float = 0.05) -> None:
        self.tau = half_life / LN2
        self.value_ms = initial_ms
        self.min_alpha = min_alpha
        self.last_t: float | None = None

    def update(self, t: float, latency_ms: float) -> float:
        if not (math.isfinite(t) and math.isfinite(latency_ms) and latency_ms >= 0):
            return self.value_ms
        if self.last_t is None:
            self.value_ms = latency_ms
            self.last_t = t
            return self.value_ms
        dt = t - self.last_t
        a = max(1.0 - math.exp(-dt / self.tau) if dt > 0 else 0.0, self.min_alpha)
        self.value_ms += a * (latency_ms - self.value_ms)
        self.last_t = max(self.last_t, t)
        return self.value_ms
