"""Benchmark the market-data kernels on a real 20 x 20 Hyperliquid l2Book frame.

Prints orjson decode, Book.apply_l2, the plain-Python reference's apply of the same decoded
object, and FrameRouter.on_frame (decode + apply), as ns/op medians over batches plus
per-call p50/p99; ``--json`` prints one JSON object instead.

    python perf/bench_book.py [--json] [--quick]
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hlfast import book, frames, tape  # noqa: E402
from tests.reference.book import RefBook  # noqa: E402

FRAME_FILE = ROOT / "tests" / "fixtures" / "hyperliquid" / "official_order_book_server_ws_frames.json"


def load_frame() -> bytes:
    """The real 20-level BTC frame as raw websocket bytes."""
    captured = json.loads(FRAME_FILE.read_text())["frames"]
    frame = next(f for f in captured if f.get("channel") == "l2Book")
    assert len(frame["data"]["levels"][0]) == len(frame["data"]["levels"][1]) == 20
    return orjson.dumps(frame)


def batch_ns(fn: Callable[[], object], batch: int, repeats: int) -> list[float]:
    """ns/op of each batch of `batch` calls."""
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter_ns()
        for _ in range(batch):
            fn()
        out.append((time.perf_counter_ns() - t0) / batch)
    return out


def call_ns(fn: Callable[[], object], calls: int) -> list[int]:
    """Individually timed calls (includes ~30-50 ns of timer overhead each)."""
    clock = time.perf_counter_ns
    out = [0] * calls
    for i in range(calls):
        t0 = clock()
        fn()
        out[i] = clock() - t0
    return out


def percentile(values: list, q: float) -> float:
    ordered = sorted(values)
    return float(ordered[min(len(ordered) - 1, int(q * len(ordered)))])


def measure(fn: Callable[[], object], batch: int, repeats: int, calls: int) -> dict:
    fn()
    batches = batch_ns(fn, batch, repeats)
    single = call_ns(fn, calls)
    return {
        "median_ns": statistics.median(batches),
        "min_ns": min(batches),
        "p50_ns": percentile(single, 0.50),
        "p99_ns": percentile(single, 0.99),
    }


def run(quick: bool) -> dict:
    raw = load_frame()
    data = orjson.loads(raw)["data"]
    kbook = book.Book("BTC", 5)
    ref = RefBook("BTC", 5)
    router = frames.FrameRouter(book.Book("BTC", 5), tape.Tape(5))
    assert kbook.apply_l2(data) == 0 and ref.apply_l2(data) == 0 and router.on_frame(raw) == 1
    assert kbook.levels() == ref.levels()

    scale = 0.1 if quick else 1.0
    batch, repeats, calls = int(2000 * scale) or 1, 31, int(20000 * scale) or 1
    gc.disable()
    try:
        results = {
            "orjson_decode": measure(lambda: orjson.loads(raw), batch, repeats, calls),
            "kernel_apply": measure(lambda: kbook.apply_l2(data), batch, repeats, calls),
            "reference_apply": measure(lambda: ref.apply_l2(data), max(1, batch // 20), repeats,
                                       max(1, calls // 20)),
            "router_on_frame": measure(lambda: router.on_frame(raw), batch, repeats, calls),
            "microprice": measure(kbook.microprice, batch, repeats, calls),
            "weighted_imbalance": measure(kbook.weighted_imbalance, batch, repeats, calls),
        }
    finally:
        gc.enable()
    kernel = results["kernel_apply"]["median_ns"]
    return {
        "frame": "l2Book BTC 20x20 (official_order_book_server_ws_frames.json)",
        "frame_bytes": len(raw),
        "results": results,
        "ratio_reference_over_kernel": results["reference_apply"]["median_ns"] / kernel,
        "target_apply_ns": 3000.0,
        "apply_within_target": kernel <= 3000.0,
        "ratio_within_target": results["reference_apply"]["median_ns"] / kernel >= 10.0,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--quick", action="store_true", help="10x fewer iterations")
    args = parser.parse_args(argv)
    report = run(args.quick)
    if args.json:
        print(json.dumps(report))
        return 0
    print(f"{report['frame']}, {report['frame_bytes']} bytes")
    print(f"{'stage':<20} {'median ns/op':>13} {'min':>9} {'p50':>9} {'p99':>9}")
    for name, r in report["results"].items():
        print(f"{name:<20} {r['median_ns']:>13.0f} {r['min_ns']:>9.0f} {r['p50_ns']:>9.0f} {r['p99_ns']:>9.0f}")
    print(f"reference / kernel apply: {report['ratio_reference_over_kernel']:.1f}x "
          f"(target >= 10x: {'met' if report['ratio_within_target'] else 'NOT met'}); "
          f"apply <= 3 us: {'met' if report['apply_within_target'] else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
