"""End-to-end latency over real sockets: venue sends a market frame -> venue receives the engine's action.

The local venue runs in its own process (hlfast.venue.process.VenueProcess) with `stamp_frames` on:
it stamps perf_counter_ns (CLOCK_MONOTONIC, one clock for the whole host) when each l2Book/trades
frame has been written to the engine's socket and when each signed action arrives.  The engine is
the real one, started and run as `hlfast paper` runs it.  A sample is the time from the last market
frame sent to the first order/cancel/batchModify received after it (scheduleCancel, a timer, is not
counted; an action is attributed to the market frame before it).

Runs twice: the engine unpinned, then the engine pinned to one core and the venue to the other.

Usage: python perf/loopback.py [--seconds 20] [--block-ms 50] [--levels 25] [--seed 1] [--json]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from hlfast.engine import Engine  # noqa: E402
from hlfast.gateway import HttpClient  # noqa: E402
from hlfast.histogram import LatencyHistogram  # noqa: E402
from hlfast.keys import generate_private_key  # noqa: E402
from hlfast.venue.process import VenueProcess  # noqa: E402

ACTION_KINDS = ("order", "cancel", "cancelByCloid", "batchModify", "modify")
MARKET = ("l2Book", "trades")


def frame_to_action(stamps: list[list]) -> list[int]:
    """ns from the last market frame sent to the first quoting action received after it."""
    samples: list[int] = []
    last_frame_ns = 0
    for what, ns in sorted(stamps, key=lambda s: s[1]):
        if what in MARKET:
            last_frame_ns = ns
        elif what in ACTION_KINDS and last_frame_ns:
            samples.append(ns - last_frame_ns)
            last_frame_ns = 0   # later actions of the same tick are not new samples
    return samples


def run_once(seconds: float, block_ms: int, levels: int, seed: int, pin: bool, budget: str) -> dict[str, Any]:
    from perf.tick_to_order import bench_config, summary

    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    pin = pin and len(cores) >= 2
    with VenueProcess(block_ms=block_ms, auto_fund=True, seed=seed, stamp_frames=True) as venue:
        if pin:
            os.sched_setaffinity(venue.process.pid, {cores[1]})
        cfg = bench_config(levels, budget, pin_core=cores[0] if pin else -1, gc_mode="freeze")
        engine = Engine(cfg, generate_private_key(), base_url=venue.base_url)
        engine.setup()
        summary_obj = engine.run(seconds)
        http = HttpClient(venue.base_url)
        try:
            stamps = http.info({"type": "venueStamps"})
        finally:
            http.close()
    if pin and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, set(cores))    # undo the engine's pinning of this process
    hist = LatencyHistogram()
    for ns in frame_to_action(stamps):
        hist.record(ns)
    return {"pinned": pin, "frame_to_action": summary(hist),
            "frames_sent": sum(1 for s in stamps if s[0] in MARKET),
            "actions_received": sum(1 for s in stamps if s[0] in ACTION_KINDS),
            "engine_tick_to_order": summary_obj.tick_to_order_us, "ticks": summary_obj.ticks,
            "rejects": summary_obj.rejects}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Frame-sent -> action-received latency over loopback sockets.")
    ap.add_argument("--seconds", type=float, default=20.0, help="engine run time per configuration")
    ap.add_argument("--block-ms", type=int, default=50, help="venue block interval")
    ap.add_argument("--levels", type=int, default=25)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--budget", choices=("unbounded", "config"), default="unbounded")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    logging.getLogger("hlfast").setLevel(logging.ERROR)
    runs = {"unpinned": run_once(args.seconds, args.block_ms, args.levels, args.seed, False, args.budget),
            "pinned": run_once(args.seconds, args.block_ms, args.levels, args.seed, True, args.budget)}
    if args.json:
        print(json.dumps(runs))
        return 0
    print(f"loopback: venue process -> engine -> venue, {args.seconds:g}s per run, block {args.block_ms} ms, "
          f"levels {args.levels}; microseconds")
    for name, r in runs.items():
        s = r["frame_to_action"]
        label = name if r["pinned"] or name == "unpinned" else f"{name} (not possible: one core)"
        print(f"  {label:9s} frame sent -> action received  n={s['count']:<5d} p50 {s['p50']:8.1f}  "
              f"p90 {s['p90']:8.1f}  p99 {s['p99']:8.1f}  p99.9 {s['p99.9']:8.1f}  max {s['max']:9.1f}   "
              f"(frames {r['frames_sent']}, actions {r['actions_received']}, rejects {r['rejects']}; "
              f"engine's own tick-to-order p50 {r['engine_tick_to_order'].get('p50', 0):.1f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
