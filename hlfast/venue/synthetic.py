"""Seeded synthetic market: the venue's default source and a backtest input.

Per coin, every block (``block_ms``):
- a *fair* log-mid moves with Heston-like stochastic variance (mean-reverting, vol of vol, leverage
  correlation ρ < 0), a common market factor shared by all coins, Poisson jumps, and a three-state
  volatility regime (calm / normal / stressed) that switches at random;
- trades are drawn first and executed against the book published in the previous block: a Hawkes
  process (baseline × regime, self-exciting) gives the count, sides lean towards this block's move,
  sizes are log-normal in notional; a trade larger than the touch walks the book, printing one
  trade per level it takes;
- sweeps: aggressive orders that walk the book several levels deep at once, with a reach (in bp of the
  mid) drawn from a Pareto tail; makers pull most of the liquidity in the sweep's path, so only a share
  of each level trades; most of the move stays (permanent impact), and the diffusion's variance is
  reduced by what the sweeps' impact adds, so σ stays near its calibrated value (within ~10 %);
- liquidation cascades start at random: for a few seconds bursts of same-side aggressive trades
  marked ``is_liquidation`` sweep the book, excite the Hawkes intensity and drag the fair price;
- the new book is laid on the valid price grid around the fair mid (spread one step, sometimes
  wider): each price keeps its resting size between blocks (depleted by trades, refilled towards a
  target that grows with depth, with a persistent per-price factor, gaps, and walls at round prices).

Only ``random.Random`` streams seeded from ``seed`` are used: one for the common factor and two per
coin (sweeps draw from their own), so the same seed gives identical blocks, and adding a coin does not
change another coin's path.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from hlfast.venue.market import (
    MAX_LEVELS,
    Block,
    CoinSpec,
    Level,
    Trade,
    floor_price,
    next_price_above,
    next_price_below,
    price_step,
)


@dataclass(frozen=True)
class CoinModel:
    """Per-coin market character (prices in USD, sizes derived from notionals)."""

    start_px: float
    sigma: float  # volatility per √s (log-return units) in the normal regime
    touch_notional: float  # mean resting USD at the touch; deeper levels grow from it
    trade_rate: float  # Hawkes baseline: background trades per second
    trade_notional: float  # median trade notional (USD)
    order_notional: float  # typical resting order (USD), sets the level's order count n


DEFAULT_MODELS: dict[str, CoinModel] = {
    "BTC": CoinModel(60_000.0, 1.5e-4, 40_000.0, 2.0, 800.0, 15_000.0),
    "ETH": CoinModel(3_000.0, 2.0e-4, 30_000.0, 1.5, 600.0, 10_000.0),
    "SOL": CoinModel(150.0, 3.0e-4, 15_000.0, 1.2, 400.0, 5_000.0),
}


@dataclass(frozen=True)
class SyntheticParams:
    """Dynamics shared by all coins.  Rates are per second, returns are log fractions."""

    var_reversion: float = 1.0 / 120.0  # κ_v of the variance
    vol_of_vol: float = 0.08  # ξ / √θ (per √s): stationary sd of v ≈ 0.5 θ
    leverage_rho: float = -0.5  # corr(return shock, variance shock)
    market_beta: float = 0.7  # loading of every coin on the common factor
    jump_rate: float = 1.0 / 600.0
    jump_sd: float = 0.0015
    regime_rate: float = 1.0 / 240.0  # switch intensity out of the current regime
    regime_vol: tuple[float, float, float] = (0.7, 1.0, 1.6)  # σ multiplier: calm, normal, stressed
    regime_flow: tuple[float, float, float] = (0.7, 1.0, 1.8)  # trade-rate multiplier
    regime_wide: tuple[float, float, float] = (0.01, 0.03, 0.15)  # P(spread wider than one step)
    hawkes_alpha: float = 1.2  # intensity added per trade (branching ratio α/β = 0.6)
    hawkes_beta: float = 2.0  # decay of the excitation
    flow_tilt: float = 0.3  # P(buy) = 0.5 + tilt·tanh(return shock)
    trade_size_sd: float = 1.3  # log-normal sd of trade notional
    cascade_rate: float = 1.0 / 900.0
    cascade_mean_s: float = 2.5
    cascade_drift: float = 0.001  # fair-price drift per second while a cascade runs
    cascade_trade_rate: float = 6.0  # liquidation trades per second during a cascade
    cascade_notional: float = 20_000.0  # median liquidation trade notional
    refill_tau: float = 2.0  # seconds for a level to close 63 % of the gap to its target size
    level_factor_sd: float = 0.5  # log-normal sd of a price's persistent size factor
    depth_growth: float = 0.2  # target size ∝ 1 + growth · (steps from the touch)
    size_jitter: float = 0.15  # per-block multiplicative noise on resting size
    gap_prob: float = 0.12  # P(an empty price inside the book), never at the touch
    # Sweeps, calibrated on the real BTC capture (shared/data/binance, BTCUSDT 2024-08-08 on Hyperliquid's
    # $1 grid).  Per 100 ms step, trades reached past the step-start mid by ≥ 0.5/1/2/3 bp in 83/45/13/6 %
    # as many steps as reached the first level past the touch (0.25 bp); the background flow alone gave
    # 37/11/0.3/0 %, so a quote at the 2 bp fee floor was almost never traded through.  With the sweeps
    # (5 seeds × 300 s): 66/33/14/9 %, at this market's own trade rate, USD volume ≈ $19k/s (≈ $11k/s
    # without).  One second after a sweep of ≥ 2 bp the capture's mid had kept a median 73 % of its reach
    # (64 % after 5 s; 28 sweeps): the permanent impact.  The reach's Pareto exponent fits the 1 → 3 bp decay.
    sweep_rate: float = 0.3  # sweeps per second, both sides (× the regime's flow multiplier)
    sweep_min_bps: float = 0.75  # Pareto scale of the reach
    sweep_tail: float = 1.2  # Pareto exponent of the reach
    sweep_max_bps: float = 4.0  # cap on the drawn reach: about the 20 published levels of BTC at $1 steps
    sweep_fill_share: float = 0.03  # share of each level in the path that trades; the rest is pulled
    sweep_impact: float = 0.7  # share of the realised reach the fair price keeps


class _CoinState:
    """Mutable per-coin state; resting sizes live in price → [size, factor, order_size] maps."""

    __slots__ = (
        "spec", "model", "rng", "scale", "lot", "log_mid", "var", "regime", "excitation",
        "cascade_left", "cascade_side", "bid_state", "ask_state", "bids", "asks", "sweep_var", "sweep_rng",
    )

    def __init__(self, spec: CoinSpec, model: CoinModel, rng: random.Random) -> None:
        self.spec = spec
        self.model = model
        self.rng = rng
        self.scale = 10.0**spec.px_decimals
        self.lot = 10.0**-spec.sz_decimals
        self.log_mid = math.log(model.start_px)
        self.var = model.sigma * model.sigma
        self.regime = 1
        self.excitation = 0.0
        self.cascade_left = 0.0
        self.cascade_side = 0
        self.bid_state: dict[int, list[float]] = {}
        self.ask_state: dict[int, list[float]] = {}
        self.bids: list[Level] = []
        self.asks: list[Level] = []
        self.sweep_var = 0.0  # variance per second the sweeps' impact adds (normal regime)
        self.sweep_rng = rng  # replaced by the source: sweeps draw from their own stream


def sweep_variance_rate(p: SyntheticParams) -> float:
    """Variance per second (log-return units) the sweeps' permanent impact adds in the normal regime.

    E[min(R, c)²] of the Pareto reach R (scale r0, exponent β, cap c) is
    r0² + 2·r0^β·(c^(2−β) − r0^(2−β))/(2 − β), or r0² + 2·r0²·ln(c/r0) at β = 2.
    """
    r0, beta, cap = p.sweep_min_bps * 1e-4, p.sweep_tail, max(p.sweep_max_bps, p.sweep_min_bps) * 1e-4
    if abs(beta - 2.0) < 1e-12:
        second_moment = r0 * r0 + 2.0 * r0 * r0 * math.log(cap / r0)
    else:
        second_moment = r0 * r0 + 2.0 * r0**beta * (cap ** (2.0 - beta) - r0 ** (2.0 - beta)) / (2.0 - beta)
    return p.sweep_rate * p.sweep_impact**2 * second_moment


def _poisson(rng: random.Random, lam: float) -> int:
    if lam <= 0.0:
        return 0
    if lam > 30.0:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit = math.exp(-lam)
    count = 0
    prod = rng.random()
    while prod > limit:
        count += 1
        prod *= rng.random()
    return count


class SyntheticSource:
    """Deterministic synthetic blocks for ``coins``; see the module docstring for the model."""

    def __init__(
        self,
        coins: list[CoinSpec],
        seed: int = 0,
        block_ms: int = 500,
        start_ms: int = 1_735_689_600_000,
        params: SyntheticParams | None = None,
        models: dict[str, CoinModel] | None = None,
    ) -> None:
        if block_ms <= 0:
            raise ValueError(f"block_ms must be > 0, got {block_ms}")
        if not coins:
            raise ValueError("the synthetic source needs at least one coin")
        table = {**DEFAULT_MODELS, **(models or {})}
        missing = [c.name for c in coins if c.name not in table]
        if missing:
            raise ValueError(f"no synthetic model for coin(s) {', '.join(missing)}; pass models=")
        self.coins = list(coins)
        self.seed = seed
        self.block_ms = block_ms
        self.params = params or SyntheticParams()
        self.time_ms = start_ms
        self.blocks = 0
        self._dt = block_ms / 1000.0
        self._market_rng = random.Random(f"hlfast-synthetic:{seed}:market")
        self._states = [
            _CoinState(c, table[c.name], random.Random(f"hlfast-synthetic:{seed}:{c.name}")) for c in coins
        ]
        sweep_var = sweep_variance_rate(self.params)
        for st in self._states:
            st.sweep_var = sweep_var
            # a stream of its own: sweeps never take draws from the coin's flow/cascade/book stream
            st.sweep_rng = random.Random(f"hlfast-synthetic:{seed}:{st.spec.name}:sweeps")

    def fair_mid(self, coin: str) -> float:
        """The latent fair price (USD) behind the published book."""
        for st in self._states:
            if st.spec.name == coin:
                return math.exp(st.log_mid)
        raise KeyError(coin)

    def regime(self, coin: str) -> int:
        """0 calm, 1 normal, 2 stressed."""
        for st in self._states:
            if st.spec.name == coin:
                return st.regime
        raise KeyError(coin)

    def next_block(self) -> Block:
        self.time_ms += self.block_ms
        market_shock = self._market_rng.gauss(0.0, 1.0)
        books = {}
        trades = {}
        for st in self._states:
            trades[st.spec.name] = self._step(st, market_shock)
            books[st.spec.name] = (st.bids, st.asks)
        self.blocks += 1
        return Block(self.time_ms, books, trades)

    # -- one coin, one block -----------------------------------------------------------------------

    def _step(self, st: _CoinState, market_shock: float) -> list[Trade]:
        p = self.params
        rng = st.rng
        dt = self._dt
        model = st.model

        if rng.random() < p.regime_rate * dt:
            st.regime = (st.regime + 1 + (rng.random() < 0.5)) % 3

        # Heston-like variance, full truncation Euler; the return uses the variance at the start.
        theta = (model.sigma * p.regime_vol[st.regime]) ** 2
        beta = p.market_beta
        z_ret = beta * market_shock + math.sqrt(1.0 - beta * beta) * rng.gauss(0.0, 1.0)
        rho = p.leverage_rho
        z_var = rho * z_ret + math.sqrt(1.0 - rho * rho) * rng.gauss(0.0, 1.0)
        var = st.var
        # sweeps move the fair price too: the diffusion keeps the rest of the variance (at least a quarter)
        var_diffusive = max(var - st.sweep_var * p.regime_flow[st.regime], 0.25 * var)
        ret = -0.5 * var_diffusive * dt + math.sqrt(var_diffusive * dt) * z_ret
        var += p.var_reversion * (theta - var) * dt + p.vol_of_vol * math.sqrt(theta * var * dt) * z_var
        st.var = max(var, 1e-4 * theta)

        if rng.random() < p.jump_rate * dt:
            ret += rng.gauss(0.0, p.jump_sd)

        liquidations = 0
        if st.cascade_left > 0.0:
            ret += st.cascade_side * p.cascade_drift * dt
            st.cascade_left -= dt
            liquidations = _poisson(rng, p.cascade_trade_rate * dt)
        elif rng.random() < p.cascade_rate * dt:
            st.cascade_side = 1 if rng.random() < 0.5 else -1
            st.cascade_left = rng.expovariate(1.0 / p.cascade_mean_s)
            liquidations = 1 + _poisson(rng, p.cascade_trade_rate * dt)

        # Trades of this block against the previous book (none before the first book exists).
        prints: list[Trade] = []
        count = _poisson(rng, (model.trade_rate * p.regime_flow[st.regime] + st.excitation) * dt)
        if st.bids:
            px_usd = math.exp(st.log_mid)
            p_buy = 0.5 + p.flow_tilt * math.tanh(z_ret)
            for _ in range(count):
                notional = model.trade_notional * math.exp(p.trade_size_sd * rng.gauss(0.0, 1.0))
                self._execute(st, 1 if rng.random() < p_buy else -1, notional / px_usd, False, prints)
            for _ in range(liquidations):
                notional = p.cascade_notional * math.exp(0.8 * rng.gauss(0.0, 1.0))
                self._execute(st, st.cascade_side, notional / px_usd, True, prints)
            sweep_rng = st.sweep_rng
            for _ in range(_poisson(sweep_rng, p.sweep_rate * p.regime_flow[st.regime] * dt)):
                side = 1 if sweep_rng.random() < p_buy else -1
                u = 1.0 - sweep_rng.random()
                reach = min(p.sweep_min_bps * u ** (-1.0 / p.sweep_tail), p.sweep_max_bps)
                realised = self._sweep(st, side, reach * 1e-4, prints)
                ret += side * p.sweep_impact * realised
        # Each trade adds α/β expected offspring in total, whatever the block length.
        decay = math.exp(-p.hawkes_beta * dt)
        kick = p.hawkes_alpha * (1.0 - decay) / (p.hawkes_beta * dt)
        st.excitation = min(st.excitation * decay + kick * (count + liquidations), 50.0 * model.trade_rate)

        st.log_mid += ret
        self._rebuild_book(st)
        return prints

    def _execute(self, st: _CoinState, side: int, qty: float, liquidation: bool, out: list[Trade]) -> None:
        """Walk the previous book from the touch; one print per level taken."""
        szd = st.spec.sz_decimals
        qty = max(round(qty, szd), st.lot)
        levels = st.asks if side > 0 else st.bids
        state = st.ask_state if side > 0 else st.bid_state
        tag = "B" if side > 0 else "A"
        for px, _sz, _n in levels:
            entry = state[px]
            avail = round(entry[0], szd)
            if avail < st.lot:
                continue
            take = avail if avail < qty else qty
            entry[0] -= take
            out.append((tag, px, take, liquidation))
            qty = round(qty - take, szd)
            if qty < st.lot:
                return

    def _sweep(self, st: _CoinState, side: int, reach: float, out: list[Trade]) -> float:
        """Take every level of the previous book within ``reach`` (fraction) of the fair mid on one side.

        Makers pull most of each level in front of the sweep: a share trades (one print per level, at
        least one lot) and the level is left empty, to refill over the next blocks.  Returns the realised
        reach, the log distance from the fair mid to the last level taken (0 if none was in range).
        """
        p = self.params
        szd = st.spec.sz_decimals
        levels = st.asks if side > 0 else st.bids
        state = st.ask_state if side > 0 else st.bid_state
        tag = "B" if side > 0 else "A"
        mid_ticks = math.exp(st.log_mid) * st.scale
        limit = mid_ticks * math.exp(reach) if side > 0 else mid_ticks * math.exp(-reach)
        last_px = 0
        for px, _sz, _n in levels:
            if (px > limit) if side > 0 else (px < limit):
                break
            entry = state[px]
            avail = round(entry[0], szd)
            if avail < st.lot:
                continue
            take = min(avail, max(round(avail * p.sweep_fill_share, szd), st.lot))
            entry[0] = 0.0
            out.append((tag, px, take, False))
            last_px = px
        if last_px == 0:
            return 0.0
        return abs(math.log(last_px / mid_ticks))

    def _rebuild_book(self, st: _CoinState) -> None:
        p = self.params
        rng = st.rng
        pd = st.spec.px_decimals
        fair = math.exp(st.log_mid) * st.scale
        best_bid = floor_price(max(int(fair), 1), pd)
        best_ask = next_price_above(best_bid, pd)
        if rng.random() < p.regime_wide[2 if st.cascade_left > 0.0 else st.regime]:
            for _ in range(1 + int(rng.random() * 2.0)):
                if rng.random() < 0.5:
                    best_ask = next_price_above(best_ask, pd)
                elif best_bid > 1:
                    best_bid = next_price_below(best_bid, pd)
        base = st.model.touch_notional * st.scale / fair
        order_size = st.model.order_notional * st.scale / fair
        refill = 1.0 - math.exp(-self._dt / p.refill_tau)
        jitter = p.size_jitter * math.sqrt(min(self._dt, 1.0))
        st.bids, st.bid_state = self._side(st, best_bid, -1, st.bid_state, base, order_size, refill, jitter)
        st.asks, st.ask_state = self._side(st, best_ask, 1, st.ask_state, base, order_size, refill, jitter)

    def _side(
        self,
        st: _CoinState,
        px: int,
        direction: int,
        old: dict[int, list[float]],
        base: float,
        order_size: float,
        refill: float,
        jitter: float,
    ) -> tuple[list[Level], dict[int, list[float]]]:
        p = self.params
        rng = st.rng
        pd = st.spec.px_decimals
        szd = st.spec.sz_decimals
        lot = st.lot
        growth = p.depth_growth
        new: dict[int, list[float]] = {}
        levels: list[Level] = []
        steps = 0
        while len(levels) < MAX_LEVELS and steps < 10 * MAX_LEVELS and px > 0:
            target = base * (1.0 + growth * steps)
            entry = old.get(px)
            if entry is None:
                if steps and rng.random() < p.gap_prob:
                    factor = 0.0
                else:
                    factor = math.exp(p.level_factor_sd * rng.gauss(0.0, 1.0))
                    step = price_step(px, pd)
                    if px % (100 * step) == 0:  # resting walls at round prices
                        factor *= 4.0
                    elif px % (10 * step) == 0:
                        factor *= 2.0
                entry = [target * factor * (0.3 + 0.7 * rng.random()), factor, order_size * (0.5 + rng.random())]
            else:
                size = entry[0]
                size += refill * (target * entry[1] - size)
                entry[0] = size * (1.0 + jitter * (rng.random() - 0.5))
            new[px] = entry
            sz = round(entry[0], szd)
            if sz >= lot:
                levels.append((px, sz, 1 + int(sz / entry[2])))
            steps += 1
            px = next_price_above(px, pd) if direction > 0 else next_price_below(px, pd)
        return levels, new
