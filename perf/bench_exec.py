"""Execution-path costs: reconcile diff, queue-tracker snapshot update, signing a 10-order bulk.

Figures (medians p50 and p99 over single calls, all measured in this run):
  reconcile   25 x 2 target levels against 50 resting orders, four scenarios; the cdef diff_c called
              from a compiled loop (c), the Python diff() wrapper (py) and the plain-Python reference (ref)
  queue       QueueTracker.on_book on a 20-level snapshot, both sides, 50 tracked orders (c / py / ref)
  sign        a 10-order bulk order: hlfast Signer (from ticks, and from the action dict) vs the SDK's
              sign_l1_action with the coincurve backend and with the pure-Python eth_keys backend
              (ECC_BACKEND_CLASS=eth_keys.backends.NativeECCBackend, run in a subprocess)

Usage: python perf/bench_exec.py [--json] [--n 20000]
"""
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from _bench import call_ns, compile_harness, p50_p99  # noqa: E402

from hlfast.qpos import QueueTracker  # noqa: E402
from hlfast.reconcile import ExecutionBudget, Reconciler  # noqa: E402
from tests.reference.qpos import QueueTrackerRef  # noqa: E402
from tests.reference.reconcile import ExecutionBudgetRef, ReconcilerRef  # noqa: E402

BENCH_KEY = "0x" + "4f" * 32   # a throwaway key for timing only
PURE_BACKEND = "eth_keys.backends.NativeECCBackend"

HARNESS = r'''
# cython: language_level=3, boundscheck=False, wraparound=False
from posix.time cimport clock_gettime, timespec, CLOCK_MONOTONIC
from hlfast.qpos cimport QueueTracker
from hlfast.reconcile cimport Reconciler


cdef inline long long now_ns() noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return ts.tv_sec * 1000000000LL + ts.tv_nsec


def time_diff(Reconciler rec, long long[::1] bpx, double[::1] bsz, long long[::1] apx, double[::1] asz,
              long long[::1] bbpx, double[::1] bbsz, long long[::1] bapx, double[::1] basz,
              long long best_bid, long long best_ask, double mid, double sigma, int n, long long[::1] out):
    cdef int i
    cdef long long t0
    for i in range(n):
        t0 = now_ns()
        rec.diff_c(&bpx[0], &bsz[0], bpx.shape[0], &apx[0], &asz[0], apx.shape[0],
                   &bbpx[0], &bbsz[0], bbpx.shape[0], &bapx[0], &basz[0], bapx.shape[0],
                   best_bid, best_ask, mid, sigma, False, False, 1e300, 1e300)
        out[i] = now_ns() - t0


def time_book(QueueTracker tracker, long long[::1] bpx, double[::1] bsz, long long[::1] apx,
              double[::1] asz, long long best_bid, long long best_ask, int n, long long[::1] out):
    cdef int i
    cdef long long t0
    for i in range(n):
        t0 = now_ns()
        tracker.on_book_c(&bpx[0], &bsz[0], bpx.shape[0], 1, best_ask)
        tracker.on_book_c(&apx[0], &asz[0], apx.shape[0], -1, best_bid)
        out[i] = now_ns() - t0
'''


def build_harness():
    """Compile the C-level timing loop against the in-place build (a few seconds)."""
    return compile_harness(HARNESS, "exec_bench_harness")


# ------------------------------------------------------------------ reconcile / queue scenarios
BEST_BID, BEST_ASK = 1_000_000, 1_000_010   # BTC at $100,000 in 0.1 ticks; valid step 10 ticks
STEP = 10
SIGMA = 1e-4
LEVELS = 25


def ladder(shift_steps: int) -> tuple[np.ndarray, np.ndarray]:
    depth = np.round(np.geomspace(2, 60, LEVELS)).astype(np.int64) + np.arange(LEVELS)  # distinct steps
    bids = (BEST_BID - STEP * depth + STEP * shift_steps).astype(np.int64)
    asks = (BEST_ASK + STEP * depth + STEP * shift_steps).astype(np.int64)
    return bids, asks


def book() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    bpx = BEST_BID - STEP * np.arange(20, dtype=np.int64)
    apx = BEST_ASK + STEP * np.arange(20, dtype=np.int64)
    return bpx, rng.exponential(0.5, 20), apx, rng.exponential(0.5, 20)


def seeded(rec):
    """50 resting orders on the unshifted ladder, touch-volume history on both sides."""
    bids, asks = ladder(0)
    bpx, bsz, apx, asz = book()
    shown = dict(zip(bpx.tolist(), bsz.tolist(), strict=True)) | dict(zip(apx.tolist(), asz.tolist(), strict=True))
    for i in range(20):
        rec.tracker.on_trade(0.05 * i, BEST_BID, 0.2, -1)
        rec.tracker.on_trade(0.05 * i, BEST_ASK, 0.2, 1)
    for i in range(LEVELS):
        rec.order_placed(i, 1, int(bids[i]), 0.01, shown.get(int(bids[i]), 0.0), 1.0)
        rec.order_placed(LEVELS + i, -1, int(asks[i]), 0.01, shown.get(int(asks[i]), 0.0), 1.0)
    return rec


SCENARIOS = {"steady": 0, "shift_1_step": 1, "shift_3_steps": 3, "move_5bp": 50}


def bench_reconcile(harness, n: int) -> dict:
    bpx, bsz, apx, asz = book()
    out = {}
    for name, shift in SCENARIOS.items():
        tb, ta = ladder(shift)
        sizes = np.full(LEVELS, 0.01)
        best_bid, best_ask = BEST_BID + STEP * shift, BEST_ASK + STEP * shift
        book_b, book_a = bpx + STEP * shift, apx + STEP * shift
        mid = (best_bid + best_ask) / 2
        rec = seeded(Reconciler(budget=ExecutionBudget(initial=math.inf)))
        row = {}
        if harness is not None:
            samples = np.zeros(n, dtype=np.int64)
            harness.time_diff(rec, tb, sizes, ta, sizes, book_b, bsz, book_a, asz, best_bid, best_ask, mid, SIGMA,
                              n, samples)
            row["c_ns"] = p50_p99(samples)
        row["py_ns"] = p50_p99(call_ns(
            lambda rec=rec, tb=tb, ta=ta, sizes=sizes, book_b=book_b, book_a=book_a, bb=best_bid, ba=best_ask,
            mid=mid: rec.diff(tb, sizes, ta, sizes, book_bid_px=book_b, book_bid_sz=bsz, book_ask_px=book_a,
                              book_ask_sz=asz, best_bid=bb, best_ask=ba, mid_ticks=mid, sigma=SIGMA), n))
        row["actions"] = rec.n_actions
        row["decisions_last_cycle"] = {"kept": rec.last_kept, "modified": rec.last_modified,
                                       "cancelled": rec.last_cancelled, "placed": rec.last_placed,
                                       "filter_skipped": rec.last_filter_skipped, "locked": rec.last_locked}
        ref = seeded(ReconcilerRef(budget=ExecutionBudgetRef(initial=math.inf)))
        bids_l = list(zip(tb.tolist(), sizes.tolist(), strict=True))
        asks_l = list(zip(ta.tolist(), sizes.tolist(), strict=True))
        bb_l = list(zip(book_b.tolist(), bsz.tolist(), strict=True))
        ba_l = list(zip(book_a.tolist(), asz.tolist(), strict=True))
        row["ref_ns"] = p50_p99(call_ns(
            lambda ref=ref, bids_l=bids_l, asks_l=asks_l, bb_l=bb_l, ba_l=ba_l, bb=best_bid, ba=best_ask, mid=mid:
            ref.diff(bids_l, asks_l, book_bids=bb_l, book_asks=ba_l, best_bid=bb, best_ask=ba, mid=mid,
                     sigma=SIGMA), max(200, n // 20)))
        base = row.get("c_ns", row["py_ns"])["p50"]
        row["ratio_ref_over_c"] = row["ref_ns"]["p50"] / base
        row["ratio_ref_over_py"] = row["ref_ns"]["p50"] / row["py_ns"]["p50"]
        out[name] = row
    return out


def bench_queue(harness, n: int) -> dict:
    bpx, bsz, apx, asz = book()
    tracker = QueueTracker(128)
    ref = QueueTrackerRef(128)
    bids, asks = ladder(0)
    for i in range(LEVELS):
        for t in (tracker, ref):
            t.add(i, 1, int(bids[i]), 0.01, 1.0, 0.0)
            t.add(LEVELS + i, -1, int(asks[i]), 0.01, 1.0, 0.0)
    row = {}
    if harness is not None:
        samples = np.zeros(n, dtype=np.int64)
        harness.time_book(tracker, bpx, bsz, apx, asz, BEST_BID, BEST_ASK, n, samples)
        row["c_ns"] = p50_p99(samples)

    def py_update():
        tracker.on_book(bpx, bsz, 1, BEST_ASK)
        tracker.on_book(apx, asz, -1, BEST_BID)

    row["py_ns"] = p50_p99(call_ns(py_update, n))
    bl, bs, al, as_ = bpx.tolist(), bsz.tolist(), apx.tolist(), asz.tolist()

    def ref_update():
        ref.on_book(bl, bs, 1, BEST_ASK)
        ref.on_book(al, as_, -1, BEST_BID)

    row["ref_ns"] = p50_p99(call_ns(ref_update, max(200, n // 20)))
    row["ratio_ref_over_c"] = row["ref_ns"]["p50"] / row.get("c_ns", row["py_ns"])["p50"]
    row["trade_py_ns"] = p50_p99(call_ns(lambda: tracker.on_trade(5.0, BEST_BID, 0.001, -1), n))
    return row


# ------------------------------------------------------------------ signing
def bulk_action_and_ticks():
    sides = [1 if i % 2 == 0 else -1 for i in range(10)]
    ticks = [BEST_BID - 10 * i if s > 0 else BEST_ASK + 10 * i for i, s in enumerate(sides)]
    sizes = [0.01 + 0.001 * i for i in range(10)]
    cloids = [f"0x{i:032x}" for i in range(1, 11)]
    return sides, ticks, sizes, cloids


def sdk_sign_times(n: int) -> dict:
    """Time the SDK's sign_l1_action on the same 10-order action (run also under the pure backend)."""
    import eth_account
    from hyperliquid.utils.signing import sign_l1_action

    from hlfast.keys import PrivateKey
    from hlfast.signer import Signer

    sides, ticks, sizes, cloids = bulk_action_and_ticks()
    signer = Signer(PrivateKey.from_hex(BENCH_KEY), is_mainnet=True)
    payload = signer.sign_bulk_orders_ticks(0, sides, ticks, sizes, cloids, 10, 1, 5, nonce=1_700_000_000_000)
    action = payload["action"]
    wallet = eth_account.Account.from_key(BENCH_KEY)
    sig = sign_l1_action(wallet, action, None, 1_700_000_000_000, None, True)
    samples = call_ns(lambda: sign_l1_action(wallet, action, None, 1_700_000_000_000, None, True), n)
    return {"ns": p50_p99(samples), "identical_signature": sig == payload["signature"]}


def bench_sign(n: int) -> dict | None:
    try:
        from hlfast.keys import PrivateKey
        from hlfast.signer import Signer
    except ImportError:
        return None
    sides, ticks, sizes, cloids = bulk_action_and_ticks()
    signer = Signer(PrivateKey.from_hex(BENCH_KEY), is_mainnet=True)
    fast = p50_p99(call_ns(lambda: signer.sign_bulk_orders_ticks(0, sides, ticks, sizes, cloids, 10, 1, 5), n))
    action = signer.sign_bulk_orders_ticks(0, sides, ticks, sizes, cloids, 10, 1, 5)["action"]
    from_dict = p50_p99(call_ns(lambda: signer.sign_action(action, 1_700_000_000_000), n))
    sdk_cc = sdk_sign_times(max(200, n // 10))
    env = dict(os.environ, ECC_BACKEND_CLASS=PURE_BACKEND)
    proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--sdk-only", "--n", str(max(100, n // 50))],
                          env=env, capture_output=True, text=True, timeout=600, check=False)
    sdk_pure = json.loads(proc.stdout) if proc.returncode == 0 else {"error": proc.stderr[-500:]}
    out = {"hlfast_from_ticks_ns": fast, "hlfast_sign_action_ns": from_dict, "sdk_coincurve": sdk_cc,
           "sdk_pure_python": sdk_pure}
    out["ratio_sdk_coincurve_over_hlfast"] = sdk_cc["ns"]["p50"] / fast["p50"]
    if "ns" in sdk_pure:
        out["ratio_sdk_pure_over_hlfast"] = sdk_pure["ns"]["p50"] / fast["p50"]
    return out


# ------------------------------------------------------------------ main
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--n", type=int, default=20_000, help="calls per measurement")
    ap.add_argument("--sdk-only", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.sdk_only:  # child process: the SDK under whatever ECC backend the environment selects
        print(json.dumps(sdk_sign_times(args.n)))
        return
    try:
        harness = build_harness()
    except Exception as exc:  # no compiler: report the Python-level figures only
        print(f"C harness unavailable ({type(exc).__name__}); Python-level figures only", file=sys.stderr)
        harness = None
    result = {"reconcile": bench_reconcile(harness, args.n), "queue_on_book_20_levels_both_sides":
              bench_queue(harness, args.n), "sign_bulk_10": bench_sign(max(1000, args.n // 10)),
              "targets": {"reconcile_p50_us": 5.0, "sign_p50_us": 100.0, "sign_speedup_vs_sdk": 5.0}}
    if args.json:
        print(json.dumps(result))
        return
    print("reconcile 25x2 targets vs 50 resting orders (ns/op p50 / p99)")
    for name, row in result["reconcile"].items():
        c = row.get("c_ns", {"p50": float("nan"), "p99": float("nan")})
        print(f"  {name:14s} c {c['p50']:8.0f} / {c['p99']:8.0f}   py {row['py_ns']['p50']:8.0f} / "
              f"{row['py_ns']['p99']:8.0f}   ref {row['ref_ns']['p50']:9.0f}   ref/c {row['ratio_ref_over_c']:6.0f}x"
              f"   actions {row['actions']:3d}  {row['decisions_last_cycle']}")
    q = result["queue_on_book_20_levels_both_sides"]
    c = q.get("c_ns", {"p50": float("nan"), "p99": float("nan")})
    print(f"queue tracker on_book, 20 levels x 2 sides, 50 orders: c {c['p50']:.0f} / {c['p99']:.0f} ns   "
          f"py {q['py_ns']['p50']:.0f} / {q['py_ns']['p99']:.0f} ns   ref {q['ref_ns']['p50']:.0f} ns   "
          f"ref/c {q['ratio_ref_over_c']:.0f}x;  on_trade py {q['trade_py_ns']['p50']:.0f} ns")
    s = result["sign_bulk_10"]
    if s is None:
        print("sign: hlfast.signer not available")
    else:
        pure = s["sdk_pure_python"]
        print(f"sign 10-order bulk (us p50 / p99): hlfast from ticks {s['hlfast_from_ticks_ns']['p50'] / 1e3:.1f} / "
              f"{s['hlfast_from_ticks_ns']['p99'] / 1e3:.1f}, hlfast sign_action "
              f"{s['hlfast_sign_action_ns']['p50'] / 1e3:.1f}; SDK coincurve "
              f"{s['sdk_coincurve']['ns']['p50'] / 1e3:.1f} (identical: {s['sdk_coincurve']['identical_signature']}, "
              f"{s['ratio_sdk_coincurve_over_hlfast']:.1f}x)")
        if "ns" in pure:
            print(f"  SDK pure-Python backend {pure['ns']['p50'] / 1e3:.1f} us (identical: "
                  f"{pure['identical_signature']}, {s['ratio_sdk_pure_over_hlfast']:.1f}x)")
        else:
            print(f"  SDK pure-Python backend failed: {pure.get('error', '')}")


if __name__ == "__main__":
    main()
