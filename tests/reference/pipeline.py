"""Plain-Python composition of the kernels, step for step what cext/pipeline.pyx does in C.

The kernels themselves are checked against their own references; this one checks the wiring:
which estimator sees which price at which time, the gamma/target/quote inputs, the §7 side caps,
and the reconcile call.
"""

from __future__ import annotations

import math

import numpy as np
import orjson

from hlfast.quoting import effective_gamma


def side_capacity(position: float, max_position: float, side: int) -> float:
    """algorithms.md §7: |p| <= M -> bid M - p, ask M + p; beyond M the increasing side is 0 and the
    reducing side is capped at |p|."""
    if not (math.isfinite(position) and math.isfinite(max_position) and max_position >= 0):
        return 0.0
    if position > max_position:
        return 0.0 if side > 0 else position
    if position < -max_position:
        return -position if side > 0 else 0.0
    return max_position - position if side > 0 else max_position + position


class PipelineRef:
    def __init__(self, *, book, tape, quoter, reconciler, vol, drift, fill_intensity, cascade, latency, target,
                 calibration, gamma, sigma_ref, fee_maker, min_spread, horizon, max_position, account_value,
                 coin="BTC"):
        self.book, self.tape, self.quoter, self.rec = book, tape, quoter, reconciler
        self.vol, self.drift, self.fi, self.cascade = vol, drift, fill_intensity, cascade
        self.latency, self.target, self.cal = latency, target, calibration
        self.gamma, self.sigma_ref, self.fee_maker = gamma, sigma_ref, fee_maker
        self.min_spread, self.horizon = min_spread, horizon
        self.max_position, self.account_value = max_position, account_value
        self.coin = coin
        self.position = 0.0
        self.exch_cap_bid = self.exch_cap_ask = math.inf
        self.quoting = True
        self.tape_seen = tape.total

    def on_frame(self, raw: bytes, t: float) -> int:
        msg = orjson.loads(raw)
        if msg.get("channel") == "l2Book":
            if self.book.apply_l2(msg["data"]) != 0:
                return 0
            b = self.book
            if not (b.n_bids and b.n_asks):
                return 0
            micro = b.microprice()
            self.vol.update(t, micro)
            self.drift.update(t, micro)
            self.fi.on_mid(t, b.mid())
            self.rec.tracker.on_book(np.asarray(b.bids_px()), np.asarray(b.bids_sz()), 1, b.best_ask_ticks())
            self.rec.tracker.on_book(np.asarray(b.asks_px()), np.asarray(b.asks_sz()), -1, b.best_bid_ticks())
            return self.cycle(t)
        if msg.get("channel") == "trades":
            if self.tape.apply_trades(msg["data"], self.coin) <= 0:
                return 0
            for _, px_ticks, sz, side, _, liq in self.tape.trades_since(self.tape_seen):
                px = px_ticks / self.book.ticks_per_unit
                self.fi.on_trade(t, px, side)
                self.cascade.on_trade(t, px * sz, side, liq)
                self.rec.tracker.on_trade(t, px_ticks, sz, side)
            self.tape_seen = self.tape.total
            return self.cycle(t)
        return 0

    def cycle(self, t: float) -> int:
        b, q = self.book, self.quoter
        sigma = self.vol.sigma_eff
        micro = b.microprice()
        gamma = effective_gamma(self.gamma, sigma, self.sigma_ref, 1.0, self.position, self.max_position,
                                self.cascade.spread_mult, self.cal.multiplier(t))
        self.target.compute(self.account_value, micro, gamma, sigma, 0.0, self.latency.value_ms, math.inf,
                            self.max_position, 0.0, self.vol.warm)
        q_side = self.target.q_target * self.cascade.size_factor
        rc = q.quote(microprice=micro, best_bid=b.best_bid_ticks(), best_ask=b.best_ask_ticks(), sigma=sigma,
                     A=self.fi.A, kappa_bid=self.fi.kappa_bid, kappa_ask=self.fi.kappa_ask, drift=self.drift.mu,
                     horizon=self.horizon, position=self.position, max_position=self.max_position,
                     pending_bid=0.0, pending_ask=0.0, gamma=gamma, fee_maker=self.fee_maker, q_bid=q_side,
                     q_ask=q_side, exch_cap_bid=self.exch_cap_bid, exch_cap_ask=self.exch_cap_ask,
                     half_spread_mult=1.0, skew_mult=1.0, unit_size=0.0, min_spread=self.min_spread,
                     adverse_sel=0.0, glft_mode="full")
        empty_px, empty_sz = np.zeros(0, dtype=np.int64), np.zeros(0)
        bid_px, bid_sz = (np.array(q.bid_px, dtype=np.int64), np.array(q.bid_sz)) if rc == 0 else (empty_px, empty_sz)
        ask_px, ask_sz = (np.array(q.ask_px, dtype=np.int64), np.array(q.ask_sz)) if rc == 0 else (empty_px, empty_sz)
        cap_bid = min(side_capacity(self.position, self.max_position, 1), self.exch_cap_bid)
        cap_ask = min(side_capacity(self.position, self.max_position, -1), self.exch_cap_ask)
        bb, ba = b.best_bid_ticks(), b.best_ask_ticks()
        return self.rec.diff(bid_px, bid_sz, ask_px, ask_sz,
                             book_bid_px=np.asarray(b.bids_px()), book_bid_sz=np.asarray(b.bids_sz()),
                             book_ask_px=np.asarray(b.asks_px()), book_ask_sz=np.asarray(b.asks_sz()),
                             best_bid=bb, best_ask=ba, mid_ticks=0.5 * (bb + ba), sigma=sigma,
                             pull_bid=False, pull_ask=False, max_bid_size=cap_bid, max_ask_size=cap_ask)
