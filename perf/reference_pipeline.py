"""The plain-Python reference strategy, timed per tick on a recorded frame stream.

The same strategy as the engine's hot path, built from the plain-Python reference kernels in
tests/reference (book, tape, estimators, quoting, queue tracker, reconcile) and the official SDK's
own order-wire helpers and `sign_l1_action` (eth_account / eth_keys).  The ECC backend is eth_keys'
choice, set with ECC_BACKEND_CLASS before this module is imported (perf/tick_to_order.py runs it in
a subprocess per backend).

Differences from the engine, on purpose: the reference has no venue, so its own actions are applied
to its order mirror at once (a place rests, a cancel is gone, a modify moves the order), and the
reference kernels' unbounded histories are trimmed to their windows between ticks (untimed) so the
reference's cost does not grow with the length of the run.

Usage (normally driven by tick_to_order.py):
  ECC_BACKEND_CLASS=eth_keys.backends.NativeECCBackend \
      python perf/reference_pipeline.py --frames-file F.gz --settings S.json [--warmup N] [--json]
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import sys
import time
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import orjson  # noqa: E402
from eth_account import Account  # noqa: E402
from hyperliquid.utils.signing import (  # noqa: E402
    order_request_to_order_wire,
    order_wires_to_order_action,
    sign_l1_action,
)
from hyperliquid.utils.types import Cloid  # noqa: E402

from hlfast.histogram import LatencyHistogram  # noqa: E402
from hlfast.recording import iter_frames  # noqa: E402
from tests.reference.book import RefBook  # noqa: E402
from tests.reference.estimators import (  # noqa: E402
    CascadeDetectorRef,
    DriftRef,
    FillIntensityRef,
    LatencyEwmaRef,
    VolatilityRef,
)
from tests.reference.quoting import Calibration, effective_gamma, quote, target_liquidity  # noqa: E402
from tests.reference.reconcile import (  # noqa: E402
    ACT_CANCEL,
    ACT_MODIFY,
    ACT_PLACE,
    ExecutionBudgetRef,
    ImpulseFilterRef,
    ReconcilerRef,
)
from tests.reference.tape import RefTape  # noqa: E402

STAGES = ("decode", "book", "estimators", "quote", "reconcile", "sign")
FILL_REFIT_S = 5.0          # the FillIntensity kernel's refit timer
HISTORY_TRIM_TICKS = 500    # trim the reference kernels' histories this often (untimed)
CASCADE_MEMORY_S = 6000.0   # cascade events kept: 10 baseline half-lives (the Hawkes term is long gone by then)


def side_capacity(position: float, max_position: float, side: int) -> float:
    """algorithms.md §7 side capacity (the same rule as the pipeline's)."""
    if position > max_position:
        return 0.0 if side > 0 else position
    if position < -max_position:
        return -position if side > 0 else 0.0
    return max_position - position if side > 0 else max_position + position


class ReferenceStrategy:
    """One coin, plain Python, same decisions as the engine's kernels; actions signed with the SDK."""

    def __init__(self, settings: dict[str, Any], private_key_hex: str) -> None:
        s = settings
        self.coin: str = s["coin"]
        self.asset: int = s["asset"]
        self.sz_decimals: int = s["sz_decimals"]
        self.px_decimals = 6 - self.sz_decimals
        self.px_scale = 10.0 ** self.px_decimals
        self.sz_scale = 10.0 ** self.sz_decimals
        self.levels: int = s["levels"]
        self.s = s
        self.book = RefBook(self.coin, self.sz_decimals)
        self.tape = RefTape(self.sz_decimals, 4096, tuple(s.get("liquidators", ())))
        self.vol = VolatilityRef(prior=s["sigma_prior"])
        self.drift = DriftRef()
        self.fi = FillIntensityRef(1.0 / self.px_scale, kappa0=s["kappa_prior"], a0=s["a_prior"])
        self.fit = {"A": s["a_prior"], "kappa_bid": s["kappa_prior"], "kappa_ask": s["kappa_prior"]}
        self.next_refit: float | None = None
        self.cascade_memory_s = 10.0 * s.get("cascade_baseline_half_life_s", CASCADE_MEMORY_S / 10.0)
        self.cascade = (CascadeDetectorRef(baseline_half_life=s["cascade_baseline_half_life_s"])
                        if "cascade_baseline_half_life_s" in s else CascadeDetectorRef())
        self.latency = LatencyEwmaRef()
        imp = s["impulse"]
        budget = ExecutionBudgetRef(initial=imp["initial"], max_tokens=imp["max_tokens"], reserve=imp["reserve"],
                                    reward_per_1000=imp["reward_per_1000"], reward_floor=imp["reward_floor"],
                                    bulk_discount=imp["bulk_discount"], enabled=imp["enabled"],
                                    **({"refill_per_s": imp["refill_per_s"]} if "refill_per_s" in imp else {}))
        filt = ImpulseFilterRef(threshold=imp["threshold"], lock_threshold=imp["lock_threshold"],
                                lock_override_bps=imp["lock_override_bps"], enabled=imp["enabled"])
        self.rec = ReconcilerRef(max_orders=s["max_orders"], max_levels=self.levels,
                                 match_tolerance_ticks=imp["match_tolerance_ticks"],
                                 match_tolerance_bps=imp["match_tolerance_bps"],
                                 size_tolerance=imp["size_tolerance"], sz_decimals=self.sz_decimals,
                                 horizon=imp["horizon_s"], budget=budget, impulse_filter=filt)
        cal = s["calibration"]
        self.cal = Calibration(target_fills_per_hour=cal["target_fills_per_hour"], floor=cal["floor"],
                               lookback_s=cal["lookback_s"], enabled=cal["enabled"])
        self.position = 0.0
        self.max_position: float = s["max_position"]
        self.account_value: float = s["account_value"]
        self.exch_cap_bid: float = s["exch_cap_bid"]
        self.exch_cap_ask: float = s["exch_cap_ask"]
        self.user_cap: float = s["user_cap"] if s["user_cap"] > 0 else math.inf
        self.tape_seen = 0
        self.wallet = Account.from_key(private_key_hex)
        self.is_mainnet = False
        self.nonce = 0
        self.post_id = 0
        self.cloid_counter = 0
        self.free_slots = list(range(s["max_orders"] - 1, -1, -1))
        self.cloid_of: dict[int, Cloid] = {}
        self.ticks = 0
        self.first_frame_ns = 0     # perf_counter_ns when the tick's first signed frame was ready
        self.actions_by_type: dict[str, int] = {}

    # ---- the tick ------------------------------------------------------------------------------
    def on_frame(self, raw: bytes, t: float, stamps: list[int]) -> list[bytes]:
        """Process one market frame; returns the post frames sent. stamps[i] = end of stage i (ns)."""
        clock = time.perf_counter_ns
        self.first_frame_ns = 0
        msg = orjson.loads(raw)
        stamps[0] = clock()
        channel = msg.get("channel") if isinstance(msg, dict) else None
        if channel == "l2Book":
            if self.book.apply_l2(msg.get("data")) != 0:
                return []
            stamps[1] = clock()
            b = self.book
            if not (b.n_bids and b.n_asks):
                return []
            micro = b.microprice()
            self.vol.update(t, micro)
            self.drift.update(t, micro)
            self.fi.on_mid(t, b.mid())
            self._maybe_refit(t)
            bids, asks = b.bids, b.asks
            self.rec.tracker.on_book([lv[0] for lv in bids], [lv[1] for lv in bids], 1, b.best_ask_ticks())
            self.rec.tracker.on_book([lv[0] for lv in asks], [lv[1] for lv in asks], -1, b.best_bid_ticks())
        elif channel == "trades":
            if self.tape.apply_trades(msg.get("data"), self.coin) <= 0:
                return []
            stamps[1] = clock()
            for _, px_ticks, sz, side, _, liq in self.tape.trades[self.tape_seen:]:
                px = px_ticks / self.px_scale
                self.fi.on_trade(t, px, side)
                self.cascade.on_trade(t, px * sz, side, liq)
                self.rec.tracker.on_trade(t, px_ticks, sz, side)
            self.tape_seen = self.tape.total
            self._maybe_refit(t)
        else:
            return []
        stamps[2] = clock()
        self.ticks += 1
        if not (self.book.n_bids and self.book.n_asks):
            return []
        actions = self._cycle(t, stamps)
        if not actions:
            stamps[5] = clock()
            return []
        frames = self._send(actions, t)
        stamps[5] = clock()
        return frames

    def _maybe_refit(self, t: float) -> None:
        if self.next_refit is None:
            self.next_refit = t + FILL_REFIT_S
        elif t >= self.next_refit and self.fi.mids:
            fit = self.fi.fit()
            self.fit = {"A": fit["A"], "kappa_bid": fit["kappa_bid"], "kappa_ask": fit["kappa_ask"]}
            self.next_refit = t + FILL_REFIT_S

    def _cycle(self, t: float, stamps: list[int]) -> list[tuple]:
        s, b = self.s, self.book
        refill = getattr(self.rec.budget, "refill", None)
        if refill is not None:
            refill(t)   # the budget's slow time refill, as the pipeline does each cycle
        sigma = self.vol.sigma_eff
        micro = b.microprice()
        cascade = self.cascade.out
        spread_mult = cascade.get("spread_mult", 1.0)
        size_factor = cascade.get("size_factor", 1.0)
        gamma = effective_gamma(s["gamma"], sigma, s["sigma_prior"], 1.0, self.position, self.max_position,
                                spread_mult, self.cal.multiplier(t))
        target = target_liquidity(self.account_value, micro, gamma, sigma, 0.0, self.latency.value_ms,
                                  self.user_cap, self.max_position, 0.0, self.vol.warm,
                                  max_levels=self.levels,
                                  leverage=s["leverage"], min_notional_safety=s["min_notional_safety"])
        q_side = target.q_target * size_factor
        ladder = quote(self.sz_decimals, self.levels, min_notional_safety=s["min_notional_safety"],
                       microprice=micro, best_bid=b.best_bid_ticks(), best_ask=b.best_ask_ticks(), sigma=sigma,
                       A=self.fit["A"], kappa_bid=self.fit["kappa_bid"], kappa_ask=self.fit["kappa_ask"],
                       drift=self.drift.mu, horizon=s["horizon"], position=self.position,
                       max_position=self.max_position, gamma=gamma, fee_maker=s["fee_maker"], q_bid=q_side,
                       q_ask=q_side, exch_cap_bid=self.exch_cap_bid, exch_cap_ask=self.exch_cap_ask,
                       half_spread_mult=s["half_spread_mult"], skew_mult=s["skew_mult"],
                       min_spread=s["min_spread"], glft_mode=s["glft_mode"])
        stamps[3] = time.perf_counter_ns()
        scale = self.sz_scale
        bids = [(px, lots / scale) for px, lots in ladder.bids] if ladder.rc == 0 else []
        asks = [(px, lots / scale) for px, lots in ladder.asks] if ladder.rc == 0 else []
        cap_bid = min(side_capacity(self.position, self.max_position, 1), self.exch_cap_bid)
        cap_ask = min(side_capacity(self.position, self.max_position, -1), self.exch_cap_ask)
        bb, ba = b.best_bid_ticks(), b.best_ask_ticks()
        actions = self.rec.diff(bids, asks, book_bids=[lv[:2] for lv in b.bids],
                                book_asks=[lv[:2] for lv in b.asks], best_bid=bb, best_ask=ba,
                                mid=0.5 * (bb + ba), sigma=sigma, max_bid_size=cap_bid, max_ask_size=cap_ask)
        stamps[4] = time.perf_counter_ns()
        return actions

    # ---- signing and sending (the SDK's own helpers) ---------------------------------------------
    def _order_request(self, side: int, px_ticks: int, sz: float, cloid: Cloid) -> dict:
        return {"coin": self.coin, "is_buy": side > 0, "sz": round(sz, self.sz_decimals),
                "limit_px": px_ticks / self.px_scale, "order_type": {"limit": {"tif": "Alo"}},
                "reduce_only": False, "cloid": cloid}

    def _sign_and_frame(self, action: dict) -> bytes:
        self.nonce = max(int(time.time() * 1000), self.nonce + 1)
        signature = sign_l1_action(self.wallet, action, None, self.nonce, None, self.is_mainnet)
        self.post_id += 1
        payload = {"action": action, "nonce": self.nonce, "signature": signature}
        frame = orjson.dumps({"method": "post", "id": self.post_id, "request": {"type": "action", "payload": payload}})
        if not self.first_frame_ns:
            self.first_frame_ns = time.perf_counter_ns()
        return frame

    def _send(self, actions: list[tuple], t: float) -> list[bytes]:
        cancels = [a for a in actions if a[0] == ACT_CANCEL and a[1] in self.cloid_of]
        modifies = [a for a in actions if a[0] == ACT_MODIFY and a[1] in self.cloid_of]
        places = [a for a in actions if a[0] == ACT_PLACE]
        frames: list[bytes] = []
        rec = self.rec
        if cancels:
            action = {"type": "cancelByCloid",
                      "cancels": [{"asset": self.asset, "cloid": self.cloid_of[a[1]].to_raw()} for a in cancels]}
            frames.append(self._sign_and_frame(action))
            for a in cancels:
                rec.order_gone(a[1])
                self.free_slots.append(a[1])
                del self.cloid_of[a[1]]
            self._count("cancel")
        if modifies:
            wires = [{"oid": self.cloid_of[a[1]].to_raw(),
                      "order": order_request_to_order_wire(
                          self._order_request(a[2], a[3], a[4], self.cloid_of[a[1]]), self.asset)}
                     for a in modifies]
            frames.append(self._sign_and_frame({"type": "batchModify", "modifies": wires}))
            for a in modifies:
                rec.order_gone(a[1])
                rec.order_placed(a[1], a[2], a[3], a[4], self._displayed(a[2], a[3]), t)
            self._count("batchModify")
        if places:
            wires, placed = [], []
            for a in places:
                if not self.free_slots:
                    break
                slot = self.free_slots.pop()
                self.cloid_counter += 1
                cloid = Cloid.from_int(self.cloid_counter)
                self.cloid_of[slot] = cloid
                wires.append(order_request_to_order_wire(self._order_request(a[2], a[3], a[4], cloid), self.asset))
                placed.append((slot, a))
            if wires:
                frames.append(self._sign_and_frame(order_wires_to_order_action(wires)))
                for slot, a in placed:
                    rec.order_placed(slot, a[2], a[3], a[4], self._displayed(a[2], a[3]), t)
                self._count("order")
        return frames

    def _displayed(self, side: int, px_ticks: int) -> float:
        for px, sz, _ in (self.book.bids if side > 0 else self.book.asks):
            if px == px_ticks:
                return sz
        return 0.0

    def _count(self, kind: str) -> None:
        self.actions_by_type[kind] = self.actions_by_type.get(kind, 0) + 1

    # ---- bounded memory for the clarity-first reference kernels (between ticks, untimed) ----------
    def trim_history(self, t: float) -> None:
        fi = self.fi
        keep_from = math.floor((t - fi.window - 1.0) / fi.step)
        if fi.mids and fi.mids[0][0] < keep_from:
            newer = [m for m in fi.mids if m[0] >= keep_from]
            older = [m for m in fi.mids if m[0] < keep_from]
            fi.mids = older[-1:] + newer   # the last older mid anchors the first step kept
        fi.trades = [x for x in fi.trades if x[0] >= keep_from]
        self.cascade.side_events = [e for e in self.cascade.side_events if e[0] >= t - self.cascade_memory_s]
        hawkes = self.cascade.hawkes
        events = getattr(hawkes, "events", None)
        if isinstance(events, list) and events and isinstance(events[0], tuple):
            hawkes.events = [e for e in events if e[0] >= t - self.cascade_memory_s]
        self.tape.trades = self.tape.trades[-self.tape.capacity:]
        self.tape_seen = self.tape.total
        self.cal.fills = [x for x in self.cal.fills if x > t - self.cal.lookback]


# ---- the timed replay ------------------------------------------------------------------------------
def hist_summary(h: LatencyHistogram) -> dict[str, float]:
    return {"count": int(h.count), "p50": h.quantile(0.5) / 1e3, "p90": h.quantile(0.9) / 1e3,
            "p99": h.quantile(0.99) / 1e3, "p99.9": h.quantile(0.999) / 1e3, "max": h.max_ns / 1e3}


def replay(settings: dict[str, Any], sessions: list[list[tuple[int, bytes]]], warmup: int, key_hex: str,
           gc_mode: str = "on") -> dict[str, Any]:
    """Each session (a frame list) from a fresh strategy; the first `warmup` frames of each are not recorded."""
    h_none, h_action, h_t2o = LatencyHistogram(), LatencyHistogram(), LatencyHistogram()
    h_stage = {name: LatencyHistogram() for name in STAGES}
    stamps = [0] * 6
    if gc_mode in ("off", "freeze"):
        gc.collect()
        if gc_mode == "freeze":
            gc.freeze()
        gc.disable()
    ticks = 0
    actions: dict[str, int] = {}
    for frames in sessions:
        strat = ReferenceStrategy(settings, key_hex)
        replay_session(strat, frames, warmup, h_none, h_action, h_t2o, h_stage, stamps)
        ticks += strat.ticks
        for k, v in strat.actions_by_type.items():
            actions[k] = actions.get(k, 0) + v
    if gc_mode != "on":
        gc.enable()
    import eth_keys

    backend = type(eth_keys.KeyAPI().backend).__name__
    return {"backend": backend, "ticks": ticks, "no_action": hist_summary(h_none),
            "with_action": hist_summary(h_action), "tick_to_order": hist_summary(h_t2o),
            "stages": {name: hist_summary(h) for name, h in h_stage.items()}, "actions": actions}


def replay_session(strat: ReferenceStrategy, frames: list[tuple[int, bytes]], warmup: int, h_none: LatencyHistogram,
                   h_action: LatencyHistogram, h_t2o: LatencyHistogram, h_stage: dict[str, LatencyHistogram],
                   stamps: list[int]) -> None:
    clock = time.perf_counter_ns
    for i, (recv_ns, raw) in enumerate(frames):
        for j in range(6):
            stamps[j] = 0
        t0 = clock()
        sent = strat.on_frame(raw, recv_ns / 1e9, stamps)
        t1 = clock()
        if i % HISTORY_TRIM_TICKS == HISTORY_TRIM_TICKS - 1:
            strat.trim_history(recv_ns / 1e9)
        if i < warmup or not stamps[2]:
            continue
        if sent:
            h_action.record(t1 - t0)
            h_t2o.record(strat.first_frame_ns - t0)   # frame in -> first signed action bytes
        else:
            h_none.record(t1 - t0)
        prev = t0
        for j, name in enumerate(STAGES):
            if stamps[j] and (sent or name != "sign"):
                h_stage[name].record(stamps[j] - prev)
                prev = stamps[j]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames-file", required=True, action="append",
                    help="recorded market frames (<recv_ns> <frame> lines); repeat for several sessions")
    ap.add_argument("--settings", required=True, help="strategy settings JSON written by tick_to_order.py")
    ap.add_argument("--warmup", type=int, default=0, help="frames processed before recording, per session")
    ap.add_argument("--pin-core", type=int, default=-1)
    ap.add_argument("--gc", choices=("on", "off", "freeze"), default="on")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    if args.pin_core >= 0 and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.pin_core})
    with open(args.settings, "rb") as fh:
        settings = json.load(fh)
    sessions = [list(iter_frames(path)) for path in args.frames_file]
    key_hex = "0x" + "5e" * 32   # a throwaway key: timing only, nothing is sent anywhere
    out = replay(settings, sessions, args.warmup, key_hex, args.gc)
    if args.json:
        print(json.dumps(out))
    else:
        for kind in ("no_action", "with_action", "tick_to_order"):
            h = out[kind]
            print(f"{kind:14s} n={h['count']:6d} p50 {h['p50']:9.1f} us  p99 {h['p99']:9.1f} us")
        print("backend", out["backend"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
