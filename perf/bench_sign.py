"""Signing cost per action: hlfast's engine calls against the SDK's order-wire helpers + sign_l1_action.

Cases (BTC-like: price ticks of 0.1, lots of 1e-5, every order ALO with a cloid, mainnet, no vault):
  order_1, order_10        bulk order from side/tick/size arrays
  batch_modify_10          10 modifies addressed by cloid
  cancel_by_cloid_1, _10   cancels by cloid

Paths, timed call by call in this run (p50/p99 in µs):
  hlfast                   Signer.sign_*_ticks / sign_cancel_by_cloid_fast as the engine calls them
  hlfast_python            the same Signer with compiled=False and coincurve's public API (the fallback)
  sdk_coincurve            the SDK building the same action from order requests (order_request_to_order_wire,
                           Cloid objects) and signing it with sign_l1_action, eth_keys' coincurve backend
  sdk_pure_python          the same under ECC_BACKEND_CLASS=eth_keys.backends.NativeECCBackend (a subprocess)
  ecdsa_floor              one libsecp256k1 ecdsa_sign_recoverable on a 32-byte digest, called from C

Every case first checks that hlfast's payload signature equals the SDK's for the same action.
Usage: python perf/bench_sign.py [--json] [--n 3000] [--n-pure 60] [--root DIR]
(--root imports hlfast from another checkout, for before/after comparisons.)
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Hashable

from _bench import percentile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH_KEY = "0x" + "4f" * 32  # a throwaway key for timing only
PURE_BACKEND = "eth_keys.backends.NativeECCBackend"
NONCE = 1_750_000_000_000
ASSET, PX_DECIMALS, SZ_DECIMALS = 0, 1, 5
CASES = ("order_1", "order_10", "batch_modify_10", "cancel_by_cloid_1", "cancel_by_cloid_10")


def ladder(n: int) -> tuple[list[int], list[int], list[float], list[str]]:
    """n quotes around 100000.0: alternating sides, 10 ticks apart, sizes 0.01.., distinct cloids."""
    sides = [1 if i % 2 == 0 else -1 for i in range(n)]
    ticks = [999_990 - 10 * i if s > 0 else 1_000_010 + 10 * i for i, s in enumerate(sides)]
    sizes = [round(0.01 + 0.00013 * i, SZ_DECIMALS) for i in range(n)]
    cloids = [f"0x{0x5eed0000 + i:032x}" for i in range(n)]
    return sides, ticks, sizes, cloids


def quantiles(samples: list[int]) -> dict:
    """p50 / p99 in µs of samples in ns."""
    return {"p50": percentile(samples, 0.5) / 1e3, "p99": percentile(samples, 0.99) / 1e3, "n": len(samples)}


def time_interleaved(calls: dict[Hashable, Callable[[], object]], n: int, rounds: int = 6) -> dict[Hashable, dict]:
    """n timed calls of each function, taken in rounds that alternate between them, so a noisy stretch
    of a shared machine spreads over every path instead of landing on one."""
    for fn in calls.values():  # warm-up
        for _ in range(max(5, n // 20)):
            fn()
    clock = time.perf_counter_ns
    samples: dict[Hashable, list[int]] = {name: [] for name in calls}
    per_round = max(1, n // rounds)
    gc.collect()
    gc.disable()
    try:
        for _ in range(rounds):
            for name, fn in calls.items():
                out = samples[name]
                for _ in range(per_round):
                    t0 = clock()
                    fn()
                    out.append(clock() - t0)
    finally:
        gc.enable()
    return {name: quantiles(values) for name, values in samples.items()}


# ---------------------------------------------------------------------------------- SDK side
def sdk_calls() -> dict[str, Callable[[], dict]]:
    """Per case, a call building the action the SDK's way and signing it with sign_l1_action."""
    import eth_account
    from hyperliquid.utils.signing import (
        order_request_to_order_wire,
        order_wires_to_order_action,
        sign_l1_action,
    )
    from hyperliquid.utils.types import Cloid

    wallet = eth_account.Account.from_key(BENCH_KEY)

    def requests(n: int) -> list[dict]:
        sides, ticks, sizes, cloids = ladder(n)
        return [{"coin": "BTC", "is_buy": s > 0, "sz": z, "limit_px": t / 10**PX_DECIMALS,
                 "order_type": {"limit": {"tif": "Alo"}}, "reduce_only": False, "cloid": Cloid.from_str(c)}
                for s, t, z, c in zip(sides, ticks, sizes, cloids, strict=True)]

    def order(reqs: list[dict]) -> Callable[[], dict]:
        def call() -> dict:
            action = order_wires_to_order_action([order_request_to_order_wire(r, ASSET) for r in reqs])
            return sign_l1_action(wallet, action, None, NONCE, None, True)
        return call

    def modify(reqs: list[dict]) -> Callable[[], dict]:
        def call() -> dict:
            action = {"type": "batchModify", "modifies": [
                {"oid": r["cloid"].to_raw(), "order": order_request_to_order_wire(r, ASSET)} for r in reqs]}
            return sign_l1_action(wallet, action, None, NONCE, None, True)
        return call

    def cancel(cloids: list[Cloid]) -> Callable[[], dict]:
        def call() -> dict:
            action = {"type": "cancelByCloid", "cancels": [{"asset": ASSET, "cloid": c.to_raw()} for c in cloids]}
            return sign_l1_action(wallet, action, None, NONCE, None, True)
        return call

    return {"order_1": order(requests(1)), "order_10": order(requests(10)), "batch_modify_10": modify(requests(10)),
            "cancel_by_cloid_1": cancel([Cloid.from_str(c) for c in ladder(1)[3]]),
            "cancel_by_cloid_10": cancel([Cloid.from_str(c) for c in ladder(10)[3]])}


def _backend_name() -> str:
    from eth_keys.backends import get_backend

    return type(get_backend()).__name__


def sdk_times(n: int) -> dict:
    calls = sdk_calls()
    return {"backend": _backend_name(), "cases": time_interleaved(calls, n),
            "signatures": {name: calls[name]() for name in CASES}}


# ---------------------------------------------------------------------------------- hlfast side
def hlfast_calls(signer) -> dict[str, Callable[[], dict | None]]:
    o1, o10 = ladder(1), ladder(10)

    def order(q: tuple) -> Callable[[], dict | None]:
        sides, ticks, sizes, cloids = q
        return lambda: signer.sign_bulk_orders_ticks(ASSET, sides, ticks, sizes, cloids, len(sides), PX_DECIMALS,
                                                     SZ_DECIMALS, "Alo", False, nonce=NONCE)

    def modify(q: tuple) -> Callable[[], dict | None]:
        sides, ticks, sizes, cloids = q
        return lambda: signer.sign_batch_modify_ticks(ASSET, cloids, sides, ticks, sizes, cloids, len(sides),
                                                      PX_DECIMALS, SZ_DECIMALS, "Alo", False, nonce=NONCE)

    def cancel(cloids: list[str]) -> Callable[[], dict | None]:
        return lambda: signer.sign_cancel_by_cloid_fast(ASSET, cloids, len(cloids), nonce=NONCE)

    return {"order_1": order(o1), "order_10": order(o10), "batch_modify_10": modify(o10),
            "cancel_by_cloid_1": cancel(o1[3]), "cancel_by_cloid_10": cancel(o10[3])}


def make_signer(compiled: bool):
    from hlfast.keys import PrivateKey
    from hlfast.signer import Signer

    if compiled:
        return Signer(PrivateKey.from_hex(BENCH_KEY), is_mainnet=True)
    try:
        key = PrivateKey.from_hex(BENCH_KEY, backend="coincurve")
        return Signer(key, is_mainnet=True, compiled=False)
    except TypeError:  # a checkout without the switches
        return None


def ecdsa_floor(n: int) -> dict | None:
    from hlfast.keys import PrivateKey

    direct = getattr(PrivateKey.from_hex(BENCH_KEY), "digest_signer", None)
    if direct is None:
        return None
    digest = bytes(range(32))
    return time_interleaved({"ecdsa": lambda: direct.sign_digest(digest)}, n)["ecdsa"]


def run(args: argparse.Namespace) -> dict:
    from hyperliquid.utils.types import Cloid  # noqa: F401 - load the SDK before timing anything

    env = dict(os.environ, ECC_BACKEND_CLASS=PURE_BACKEND)
    proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--sdk-only", "--n", str(args.n_pure)],
                          env=env, capture_output=True, text=True, timeout=900, check=False)
    pure = json.loads(proc.stdout) if proc.returncode == 0 else {"error": proc.stderr[-800:]}
    fast_signer = make_signer(compiled=True)
    fast_calls = hlfast_calls(fast_signer)
    sdk = {"signatures": {name: fn() for name, fn in sdk_calls().items()}, "backend": _backend_name()}
    for name in CASES:  # trustworthy figures only: the signatures must be the SDK's
        if fast_calls[name]()["signature"] != sdk["signatures"][name]:
            raise SystemExit(f"{name}: hlfast signature differs from the SDK's")
        if "signatures" in pure and pure["signatures"][name] != sdk["signatures"][name]:
            raise SystemExit(f"{name}: pure-Python SDK signature differs")
    fallback = make_signer(compiled=False)
    slow_calls = hlfast_calls(fallback) if fallback is not None else None
    result: dict = {"path": getattr(fast_signer, "fast_path", "unknown"), "sdk_pure_backend": pure.get("backend"),
                    "sdk_coincurve_backend": sdk["backend"], "cases": {}}
    sdk_fns = sdk_calls()
    timed_calls = {("hlfast", name): fast_calls[name] for name in CASES}
    timed_calls.update({("sdk_coincurve", name): sdk_fns[name] for name in CASES})
    if slow_calls is not None:
        timed_calls.update({("hlfast_python", name): slow_calls[name] for name in CASES})
    timed = time_interleaved(timed_calls, args.n)
    for name in CASES:
        row = {"hlfast": timed[("hlfast", name)], "sdk_coincurve": timed[("sdk_coincurve", name)]}
        if slow_calls is not None:
            row["hlfast_python"] = timed[("hlfast_python", name)]
        if "cases" in pure:
            row["sdk_pure_python"] = pure["cases"][name]
        row["ratio_sdk_coincurve"] = row["sdk_coincurve"]["p50"] / row["hlfast"]["p50"]
        if "sdk_pure_python" in row:
            row["ratio_sdk_pure_python"] = row["sdk_pure_python"]["p50"] / row["hlfast"]["p50"]
        result["cases"][name] = row
    result["ecdsa_floor"] = ecdsa_floor(args.n)
    if "error" in pure:
        result["sdk_pure_python_error"] = pure["error"]
    return result


def print_table(result: dict) -> None:
    print(f"hlfast path: {result['path']}; SDK backends: {result['sdk_coincurve_backend']} / "
          f"{result['sdk_pure_backend']}")
    head = f"{'case':20s} {'hlfast':>15s} {'hlfast_python':>15s} {'sdk_coincurve':>15s} {'sdk_pure':>17s}" \
           f" {'x cc':>6s} {'x pure':>7s}"
    print(head + "\n" + "-" * len(head))
    fmt = lambda q: f"{q['p50']:6.1f} / {q['p99']:6.1f}" if q else "-"  # noqa: E731
    for name, row in result["cases"].items():
        pure = row.get("sdk_pure_python")
        pure_text = f"{pure['p50']:7.0f} / {pure['p99']:7.0f}" if pure else "-"
        print(f"{name:20s} {fmt(row['hlfast']):>15s} {fmt(row.get('hlfast_python')):>15s} "
              f"{fmt(row['sdk_coincurve']):>15s} {pure_text:>17s}"
              f" {row['ratio_sdk_coincurve']:5.1f}x {row.get('ratio_sdk_pure_python', float('nan')):6.0f}x")
    floor = result.get("ecdsa_floor")
    if floor:
        print(f"ECDSA alone (libsecp256k1 from C): {floor['p50']:.1f} / {floor['p99']:.1f} µs")
    print("(µs p50 / p99 per call; ratios are SDK p50 over hlfast p50)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--n", type=int, default=3000, help="calls per measurement")
    ap.add_argument("--n-pure", type=int, default=60, help="calls per case with the pure-Python ECC backend")
    ap.add_argument("--root", default=ROOT, help="checkout to import hlfast from")
    ap.add_argument("--sdk-only", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.sdk_only:  # child process: the SDK under the ECC backend the environment selects
        print(json.dumps(sdk_times(args.n)))
        return
    sys.path.insert(0, os.path.abspath(args.root))
    result = run(args)
    if args.json:
        print(json.dumps(result))
    else:
        print_table(result)


if __name__ == "__main__":
    main()
