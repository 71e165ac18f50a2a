"""Cost of one full quote cycle: estimator updates + effective gamma + GLFT + 25-level ladder on both
sides + Hyperliquid rounding + wire strings, vs the same cycle through the plain-Python references.

One cycle, on each book of the real BTC recording (fixtures/hyperliquid, cycled with t += 0.1 s):
  Volatility.update, Drift.update, CascadeDetector.update   (when hlfast.estimators is built)
  Calibration.multiplier, effective_gamma, Quoter.compute     (GLFT + ladder + rounding to ticks/lots)
  px/sz wire strings of every emitted order
Figures (ns per cycle, this run, same inputs):
  c      the cdef path from a compiled loop, each cycle timed alone (p50/p99)
  py     the Python wrappers from a Python loop (orchestration cost)
  ref    the plain-Python references (tests/reference/) + the SDK's float_to_wire
and the ratios ref/c, ref/py.  Also the Quoter alone (c) and the reference quote alone.

Usage: python perf/bench_quote.py [--json] [--n 100000]
"""
from __future__ import annotations

import argparse
import gzip
import importlib.util
import json
import os
import sys
import time
from array import array

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from _bench import compile_harness, p50_p99  # noqa: E402
from hyperliquid.utils.signing import float_to_wire  # noqa: E402

from hlfast.quoting import Calibration, Quoter, effective_gamma, floor_px_ticks, px_wire, sz_wire  # noqa: E402
from tests.reference import quoting as ref  # noqa: E402

HAS_ESTIMATORS = importlib.util.find_spec("hlfast.estimators") is not None
RECORDING = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "hl_recorded_btc_20250126.gz")
SZ_DECIMALS = 5
GAMMA_BASE, SIGMA_REF, MAX_POSITION, POSITION = 0.1, 2.5e-4, 0.05, 0.01

HARNESS = r'''
# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
from libc.math cimport INFINITY
from posix.time cimport clock_gettime, timespec, CLOCK_MONOTONIC
from hlfast.quoting cimport (Quoter, QuoteInputs, Calibration, effective_gamma_c, px_wire_buf,
                             sz_wire_buf, GLFT_FULL)
ESTIMATOR_CIMPORT


cdef inline long long now_ns() noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return ts.tv_sec * 1000000000LL + ts.tv_nsec


def run(Quoter q, Calibration cal, ESTIMATOR_ARGS double[:] t, double[:] micro,
        long long[:] bb, long long[:] ba, double gamma_base, double sigma_ref, double position,
        double max_position, bint full_cycle, long long[:] out_ns):
    cdef QuoteInputs inp
    cdef Py_ssize_t i, n = t.shape[0]
    cdef int k
    cdef long long t0
    cdef char buf[32]
    cdef long long sink = 0
    cdef double sigma = sigma_ref, drift = 0.0, spread_mult = 1.0
    inp.sigma = sigma_ref
    inp.A = 1.0
    inp.kappa_bid = 2000.0
    inp.kappa_ask = 2000.0
    inp.drift = 0.0
    inp.horizon = 30.0
    inp.position = position
    inp.max_position = max_position
    inp.pending_bid = 0.0
    inp.pending_ask = 0.0
    inp.gamma = gamma_base
    inp.fee_maker = 1.5e-4
    inp.q_bid = INFINITY
    inp.q_ask = INFINITY
    inp.exch_cap_bid = INFINITY
    inp.exch_cap_ask = INFINITY
    inp.half_spread_mult = 1.0
    inp.skew_mult = 1.0
    inp.unit_size = 0.0
    inp.min_spread = 1e-4
    inp.adverse_sel = 0.0
    inp.glft_mode = GLFT_FULL
    for i in range(n):
        t0 = now_ns()
        inp.microprice = micro[i]
        inp.best_bid = bb[i]
        inp.best_ask = ba[i]
        if full_cycle:
ESTIMATOR_UPDATES
            inp.sigma = sigma
            inp.drift = drift
            inp.gamma = effective_gamma_c(gamma_base, sigma, sigma_ref, 1.0, position, max_position,
                                          spread_mult, cal.multiplier_c(t[i]))
        q.compute(&inp)
        if full_cycle:
            for k in range(q.n_bid):
                sink += px_wire_buf(q.bid_px_c[k], q.px_decimals, buf)
                sink += sz_wire_buf(q.bid_lots_c[k], q.sz_decimals, buf)
            for k in range(q.n_ask):
                sink += px_wire_buf(q.ask_px_c[k], q.px_decimals, buf)
                sink += sz_wire_buf(q.ask_lots_c[k], q.sz_decimals, buf)
        out_ns[i] = now_ns() - t0
    return sink
'''

ESTIMATOR_PARTS = {
    True: ("from hlfast.estimators cimport Volatility, Drift, CascadeDetector",
           "Volatility vol, Drift dr, CascadeDetector cd,",
           "            vol.update_c(t[i], micro[i])\n"
           "            dr.update_c(t[i], micro[i])\n"
           "            cd.update_c(t[i])\n"
           "            sigma = vol.sigma_eff\n"
           "            drift = dr.mu\n"
           "            spread_mult = cd.spread_mult"),
    False: ("", "", "            pass"),
}


def build_harness():
    """Compile the C-level loop against the in-place build (a few seconds)."""

    cimport_line, args, updates = ESTIMATOR_PARTS[HAS_ESTIMATORS]
    source = (HARNESS.replace("ESTIMATOR_CIMPORT", cimport_line).replace("ESTIMATOR_ARGS ", args + " ")
              .replace("ESTIMATOR_UPDATES", updates))
    return compile_harness(source, "quote_bench_harness")


def load_books() -> list[tuple[float, int, int]]:
    """(microprice, best bid ticks, best ask ticks) of every l2Book frame in the recording."""
    books = []
    with gzip.open(RECORDING, "rt") as fh:
        for line in fh:
            frame = json.loads(line.split(" ", 1)[1])
            if frame["channel"] != "l2Book":
                continue
            bids, asks = frame["data"]["levels"]
            pb, pa, qb, qa = (float(bids[0]["px"]), float(asks[0]["px"]), float(bids[0]["sz"]),
                              float(asks[0]["sz"]))
            books.append(((pa * qb + pb * qa) / (qb + qa), floor_px_ticks(pb, SZ_DECIMALS),
                          floor_px_ticks(pa, SZ_DECIMALS)))
    return books


def make_inputs(n: int) -> tuple[array, array, array, array]:
    books = load_books()
    t, micro, bb, ba = array("d"), array("d"), array("q"), array("q")
    for i in range(n):
        m, b, a = books[i % len(books)]
        t.append(1.7e9 + 0.1 * i)
        micro.append(m)
        bb.append(b)
        ba.append(a)
    return t, micro, bb, ba


def estimators():
    if not HAS_ESTIMATORS:
        return ()
    from hlfast.estimators import CascadeDetector, Drift, Volatility
    return Volatility(), Drift(), CascadeDetector()


def c_cycle(harness, n: int, t, micro, bb, ba, full: bool) -> dict[str, float]:
    out = array("q", bytes(8 * n))
    harness.run(Quoter(SZ_DECIMALS), Calibration(), *estimators(), t, micro, bb, ba, GAMMA_BASE, SIGMA_REF,
                POSITION, MAX_POSITION, full, out)
    return p50_p99(out[n // 10:])   # the first tenth warms caches and the estimators


def py_cycle(n: int, t, micro, bb, ba) -> dict[str, float]:
    q, cal = Quoter(SZ_DECIMALS), Calibration()
    est = estimators()
    q.quote(microprice=micro[0], best_bid=bb[0], best_ask=ba[0], max_position=MAX_POSITION, gamma=GAMMA_BASE,
            position=POSITION, min_spread=1e-4)
    samples = []
    clock = time.perf_counter_ns
    for i in range(n):
        t0 = clock()
        ti, m = t[i], micro[i]
        sigma, drift, spread_mult = SIGMA_REF, 0.0, 1.0
        if est:
            vol, dr, cd = est
            vol.update(ti, m)
            dr.update(ti, m)
            cd.update(ti)
            sigma, drift, spread_mult = vol.sigma_eff, dr.mu, cd.spread_mult
        gamma = effective_gamma(GAMMA_BASE, sigma, SIGMA_REF, 1.0, POSITION, MAX_POSITION, spread_mult,
                                cal.multiplier(ti))
        q.set_model(sigma, 1.0, 2000.0, 2000.0, drift, gamma)
        q.set_market(m, bb[i], ba[i])
        q.requote()
        for px, sz in zip(q.bid_px.tolist(), q.bid_sz.tolist(), strict=True):
            px_wire(px, 1)
            sz_wire(sz, SZ_DECIMALS)
        for px, sz in zip(q.ask_px.tolist(), q.ask_sz.tolist(), strict=True):
            px_wire(px, 1)
            sz_wire(sz, SZ_DECIMALS)
        samples.append(clock() - t0)
    return p50_p99(samples[n // 10:])


def ref_cycle(n: int, t, micro, bb, ba, full: bool) -> dict[str, float]:
    cal = ref.Calibration()
    est = ()
    if HAS_ESTIMATORS:
        from tests.reference.estimators import CascadeDetectorRef, DriftRef, VolatilityRef
        est = (VolatilityRef(), DriftRef(), CascadeDetectorRef())
    samples = []
    clock = time.perf_counter_ns
    for i in range(n):
        t0 = clock()
        ti, m = t[i], micro[i]
        sigma, drift, gamma = SIGMA_REF, 0.0, GAMMA_BASE
        if full:
            spread_mult = 1.0
            if est:
                vol, dr, cd = est
                vol.update(ti, m)
                dr.update(ti, m)
                spread_mult = cd.update(ti)["spread_mult"]
                sigma, drift = vol.sigma_eff, dr.mu
            gamma = ref.effective_gamma(GAMMA_BASE, sigma, SIGMA_REF, 1.0, POSITION, MAX_POSITION, spread_mult,
                                        cal.multiplier(ti))
        lad = ref.quote(SZ_DECIMALS, microprice=m, best_bid=bb[i], best_ask=ba[i], max_position=MAX_POSITION,
                        gamma=gamma, sigma=sigma, drift=drift, position=POSITION, min_spread=1e-4)
        if full:
            for px, lots in lad.bids + lad.asks:
                float_to_wire(px / 10)
                float_to_wire(lots / 10**SZ_DECIMALS)
        samples.append(clock() - t0)
    return p50_p99(samples[n // 10:])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--n", type=int, default=100_000, help="cycles for the compiled path")
    args = ap.parse_args()
    n, n_py, n_ref = args.n, max(2000, args.n // 5), max(500, args.n // 50)
    t, micro, bb, ba = make_inputs(n)
    harness = build_harness()

    q = Quoter(SZ_DECIMALS)
    q.quote(microprice=micro[0], best_bid=bb[0], best_ask=ba[0], max_position=MAX_POSITION, gamma=GAMMA_BASE,
            position=POSITION, min_spread=1e-4)
    levels = (q.n_bid, q.n_ask)
    c_full = c_cycle(harness, n, t, micro, bb, ba, True)
    c_quote = c_cycle(harness, n, t, micro, bb, ba, False)
    py_full = py_cycle(n_py, t, micro, bb, ba)
    ref_full = ref_cycle(n_ref, t, micro, bb, ba, True)
    ref_quote = ref_cycle(n_ref, t, micro, bb, ba, False)
    results = {
        "full_cycle": {"c_ns": c_full["p50"], "c_p99_ns": c_full["p99"], "py_ns": py_full["p50"],
                       "py_p99_ns": py_full["p99"], "ref_ns": ref_full["p50"], "ref_p99_ns": ref_full["p99"],
                       "ref_over_c": ref_full["p50"] / c_full["p50"], "ref_over_py": ref_full["p50"] / py_full["p50"]},
        "quoter_only": {"c_ns": c_quote["p50"], "c_p99_ns": c_quote["p99"], "ref_ns": ref_quote["p50"],
                        "ref_p99_ns": ref_quote["p99"], "ref_over_c": ref_quote["p50"] / c_quote["p50"]},
    }
    target = {"p50_le_5us": c_full["p50"] <= 5000, "ratio_ge_20x": results["full_cycle"]["ref_over_c"] >= 20}
    if args.json:
        print(json.dumps({"n": n, "n_py": n_py, "n_ref": n_ref, "levels": levels, "estimators": HAS_ESTIMATORS,
                          "results": results, "target_met": target}))
        return
    print(f"quote cycle on the real BTC recording, ladder {levels[0]}+{levels[1]} levels, "
          f"estimators {'included' if HAS_ESTIMATORS else 'not built (omitted)'}; ns per cycle")
    print(f"{'cycle':14} {'c p50':>8} {'c p99':>8} {'py p50':>8} {'ref p50':>10} {'ref p99':>10} {'ref/c':>7} {'ref/py':>7}")
    for name, r in results.items():
        py = f"{r['py_ns']:8.0f}" if "py_ns" in r else "       -"
        rpy = f"{r['ref_over_py']:6.1f}x" if "ref_over_py" in r else "      -"
        print(f"{name:14} {r['c_ns']:8.0f} {r['c_p99_ns']:8.0f} {py} {r['ref_ns']:10.0f} {r['ref_p99_ns']:10.0f} "
              f"{r['ref_over_c']:6.0f}x {rpy}")
    print(f"target: c p50 <= 5 us: {target['p50_le_5us']}; ref/c >= 20x: {target['ratio_ge_20x']}")


if __name__ == "__main__":
    main()
