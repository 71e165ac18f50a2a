"""Per-update cost of the estimator and HJB kernels vs their plain-Python references.

Three figures per operation, all measured in this run on the same inputs:
  c_ns    the cdef method called from a compiled loop (what another kernel pays),
  py_ns   the Python wrapper called from a Python loop (orchestration/tests),
  ref_ns  the plain-Python reference (tests/reference/) called the same way,
as medians over batches (p50) with the p99 batch, and speed-up ratios ref/c and ref/py.

Usage: python perf/bench_estimators.py [--json] [--n 200000]
"""
from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import time
from array import array
from collections.abc import Callable

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from _bench import compile_harness, p50_p99  # noqa: E402

from hlfast.estimators import CascadeDetector, Drift, FillIntensity, Hawkes, LatencyEwma, SvStats, Volatility  # noqa: E402
from hlfast.hjb import HjbModel, HjbState, ValueFunction  # noqa: E402
from tests.reference import hjb as hjb_ref  # noqa: E402
from tests.reference.estimators import (  # noqa: E402
    CascadeDetectorRef,
    DriftRef,
    FillIntensityRef,
    HawkesRef,
    LatencyEwmaRef,
    SvStatsRef,
    VolatilityRef,
)

BATCH = 1000

HARNESS = r'''
# cython: language_level=3, boundscheck=False, wraparound=False
from time import perf_counter_ns
from hlfast.estimators cimport (Volatility, SvStats, FillIntensity, Hawkes, CascadeDetector, Drift,
                                LatencyEwma)
from hlfast.hjb cimport HjbModel, HjbState, HjbControl


def run(str name, object obj, double[:] t, double[:] x, double[:] y, int[:] side, int batch):
    cdef Py_ssize_t n = t.shape[0], i, b
    cdef list out = []
    cdef long long t0
    cdef Volatility vol
    cdef SvStats sv
    cdef FillIntensity fi
    cdef Hawkes hk
    cdef CascadeDetector cd
    cdef Drift dr
    cdef LatencyEwma lat
    cdef double sink = 0.0
    for b in range(0, n - batch + 1, batch):
        t0 = perf_counter_ns()
        if name == "Volatility.update":
            vol = obj
            for i in range(b, b + batch):
                vol.update_c(t[i], x[i])
        elif name == "SvStats.update":
            sv = obj
            for i in range(b, b + batch):
                sv.update_c(t[i], y[i], x[i])
        elif name == "FillIntensity.on_mid+on_trade":
            fi = obj
            for i in range(b, b + batch):
                if side[i] == 0:
                    fi.on_mid_c(t[i], x[i])
                else:
                    fi.on_trade_c(t[i], x[i], side[i])
        elif name == "FillIntensity.refit (70 bins)":
            fi = obj
            for i in range(b, b + batch):
                fi.refit_c()
        elif name == "Hawkes.on_event+intensity":
            hk = obj
            for i in range(b, b + batch):
                hk.on_event_c(t[i], y[i])
                sink += hk.intensity_c(t[i] + 0.5)
        elif name == "CascadeDetector.on_trade":
            cd = obj
            for i in range(b, b + batch):
                cd.on_trade_c(t[i], y[i], 1 if side[i] >= 0 else -1, side[i] == 0)
        elif name == "Drift.update":
            dr = obj
            for i in range(b, b + batch):
                dr.update_c(t[i], x[i])
        elif name == "LatencyEwma.update":
            lat = obj
            for i in range(b, b + batch):
                lat.update_c(t[i], y[i])
        out.append((perf_counter_ns() - t0) / batch)
    return out


def run_hjb(str name, HjbModel model, list states, int batch):
    cdef list out = []
    cdef HjbState s
    cdef HjbControl u
    cdef Py_ssize_t k, i
    cdef long long t0
    cdef double sink = 0.0
    for k in range(len(states)):
        s = states[k]
        t0 = perf_counter_ns()
        for i in range(batch):
            if name == "Hjb.optimize_control":
                u = model.optimize_control_c(s)
            elif name == "Hjb.continuous_optimum":
                u = model.continuous_optimum_c(s)
            elif name == "Hjb.apply_state_adjustments":
                u = model.apply_state_adjustments_c(s)
            else:
                u = model.continuous_optimum_c(s)
                sink += model.evaluate_c(&u, s)
            sink += u.bid_bps
        out.append((perf_counter_ns() - t0) / batch)
    return out
'''


def build_harness():
    """Compile the C-level harness against the in-place build (a few seconds)."""
    return compile_harness(HARNESS, "est_bench_harness")


def make_inputs(n: int, seed: int = 1) -> dict[str, array]:
    rng = random.Random(seed)
    t, x, y, side = array("d"), array("d"), array("d"), array("i")
    now, lp = 1.7e9, math.log(60_000.0)
    for k in range(n):
        now += rng.expovariate(20.0)
        lp += rng.gauss(0.0, 2e-5)
        kind = k % 3  # mids and trades interleaved
        mid = math.exp(lp)
        t.append(now)
        if kind == 0:
            x.append(mid)
            side.append(0)
        else:
            s = 1 if kind == 1 else -1
            x.append(mid + s * rng.expovariate(1.0 / 3.0))
            side.append(s)
        y.append(math.exp(rng.gauss(8.0, 1.5)) if kind else 6e-8 * (1.0 + 0.1 * rng.random()))
    return {"t": t, "x": x, "y": y, "side": side}


def py_loop(fn: Callable[[int], object], n: int, batch: int = BATCH) -> list[float]:
    out = []
    for b in range(0, n - batch + 1, batch):
        t0 = time.perf_counter_ns()
        for i in range(b, b + batch):
            fn(i)
        out.append((time.perf_counter_ns() - t0) / batch)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--n", type=int, default=200_000, help="updates per kernel measurement")
    args = ap.parse_args()
    n, n_ref = args.n, max(BATCH * 5, args.n // 10)
    inp = make_inputs(n)
    t, x, y, side = inp["t"], inp["x"], inp["y"], inp["side"]
    harness = build_harness()

    def cascade_py(obj):
        return lambda i: obj.on_trade(t[i], y[i], 1 if side[i] >= 0 else -1, side[i] == 0)

    def fill_py(obj):
        return lambda i: obj.on_mid(t[i], x[i]) if side[i] == 0 else obj.on_trade(t[i], x[i], side[i])

    def hawkes_py(obj):
        return lambda i: (obj.on_event(t[i], y[i]), obj.intensity(t[i] + 0.5))

    cases: list[tuple[str, Callable[[], object], Callable[[], object], Callable[[object], Callable[[int], object]], int]] = [
        ("Volatility.update", Volatility, VolatilityRef, lambda o: lambda i: o.update(t[i], x[i]), n_ref),
        ("SvStats.update", SvStats, SvStatsRef, lambda o: lambda i: o.update(t[i], y[i], x[i]), n_ref),
        ("FillIntensity.on_mid+on_trade", lambda: FillIntensity(0.1), lambda: FillIntensityRef(0.1), fill_py, n_ref),
        # The brute-force references are O(n) per query: measured on a short prefix.
        ("Hawkes.on_event+intensity", lambda: Hawkes(0.01, 0.5, 0.1), lambda: HawkesRef(0.01, 0.5, 0.1), hawkes_py,
         BATCH * 2),
        ("CascadeDetector.on_trade", CascadeDetector, CascadeDetectorRef, cascade_py, BATCH * 2),
        ("Drift.update", Drift, DriftRef, lambda o: lambda i: o.update(t[i], x[i]), n_ref),
        ("LatencyEwma.update", LatencyEwma, LatencyEwmaRef, lambda o: lambda i: o.update(t[i], y[i]), n_ref),
    ]
    results: dict[str, dict[str, float]] = {}
    filled = FillIntensity(0.1, window=600.0)  # a full window of synthetic trades to refit on
    for i in range(n):
        fill_py(filled)(i)
    refit = p50_p99(harness.run("FillIntensity.refit (70 bins)", filled, t[:20 * BATCH], x, y, side, 100))
    results["FillIntensity.refit (70 bins)"] = {"c_ns": refit["p50"], "c_p99_ns": refit["p99"]}
    for name, make, make_ref, pyfn, ref_n in cases:
        c = p50_p99(harness.run(name, make(), t, x, y, side, BATCH))
        py = p50_p99(py_loop(pyfn(make()), n))
        ref = p50_p99(py_loop(pyfn(make_ref()), ref_n))
        results[name] = {"c_ns": c["p50"], "c_p99_ns": c["p99"], "py_ns": py["p50"], "ref_ns": ref["p50"],
                         "ref_over_c": ref["p50"] / c["p50"], "ref_over_py": ref["p50"] / py["p50"]}

    rng = random.Random(3)
    model, params = HjbModel(ValueFunction(1e-4, 600.0)), hjb_ref.Params(phi=1e-4, horizon_s=600.0)
    ref_states = [hjb_ref.State(q=rng.uniform(-9, 9), q_max=10.0, drift_bps_s=rng.gauss(0, 1),
                                market_spread_bps=rng.uniform(0.1, 5), imbalance=rng.random(),
                                base_spread_bps=rng.uniform(2, 10), fee_taker_bps=4.5, t=rng.uniform(0, 600))
                  for _ in range(200)]
    states = [HjbState(s.q, s.q_max, s.drift_bps_s, s.market_spread_bps, s.imbalance, s.base_spread_bps,
                       s.fee_taker_bps, s.t) for s in ref_states]
    hjb_cases = [
        ("Hjb.optimize_control", model.optimize_control, lambda s: hjb_ref.optimize_grid(params, s)),
        ("Hjb.continuous_optimum", model.continuous_optimum, None),
        ("Hjb.apply_state_adjustments", model.apply_state_adjustments, lambda s: hjb_ref.heuristic(params, s)),
        ("Hjb.optimum+evaluate", None, None),
    ]
    for name, py_method, ref_fn in hjb_cases:
        c = p50_p99(harness.run_hjb(name, model, states, 200))
        row = {"c_ns": c["p50"], "c_p99_ns": c["p99"]}
        if py_method is not None:
            row["py_ns"] = p50_p99(py_loop(lambda i, m=py_method: m(states[i % 200]), 20 * BATCH))["p50"]
        if ref_fn is not None:
            row["ref_ns"] = p50_p99(py_loop(lambda i, f=ref_fn: f(ref_states[i % 200]), 2 * BATCH, 100))["p50"]
            row["ref_over_c"] = row["ref_ns"] / row["c_ns"]
        results[name] = row

    if args.json:
        print(json.dumps({"n": n, "batch": BATCH, "results": results}))
        return
    print(f"estimator/HJB kernels, {n} updates, medians over {BATCH}-op batches (ns/op)")
    print(f"{'operation':34} {'c p50':>8} {'c p99':>8} {'py p50':>8} {'ref p50':>10} {'ref/c':>8} {'ref/py':>7}")
    for name, r in results.items():
        print(f"{name:34} {_fmt(r, 'c_ns', 8)} {_fmt(r, 'c_p99_ns', 8)} {_fmt(r, 'py_ns', 8)} "
              f"{_fmt(r, 'ref_ns', 10)} {_fmt(r, 'ref_over_c', 7)}x {_fmt(r, 'ref_over_py', 6, '.1f')}x")


def _fmt(row: dict[str, float], key: str, width: int, spec: str = ".0f") -> str:
    return f"{row[key]:{width}{spec}}" if key in row else " " * (width - 1) + "-"


if __name__ == "__main__":
    main()
