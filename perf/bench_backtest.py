"""Backtest replay speed, three paths in the same run (interleaved):

- fast: the venue's C frame scanner, and runs of quiet trade frames through venue and pipeline in C;
- python loop: the venue's C frame scanner, every frame through the Python replay loop;
- general: every frame decoded and applied by the venue's own code.

    python perf/bench_backtest.py --data /tmp/btc100.gz [--runs 3] [--json]

Prints the median wall and CPU time, events/s and × market time of each path, the ratios, and where the
python-loop path's CPU time goes (the venue, the engine's own calls, the replay loop), measured by timing
each call in one extra run.  All paths must give the same summary (checked).
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hlfast.backtest import (  # noqa: E402
    Backtest,
    BacktestEngine,
    Options,
    _synthetic_arg,
    coin_spec,
    load_frames,
)
from hlfast.config import load_config  # noqa: E402
from hlfast.simvenue import SimVenue  # noqa: E402

WALL_KEYS = {"wall_s", "events_per_s", "speedup", "load_s"}
TIMED = ((SimVenue, "on_market_frame", "venue: market frames"), (SimVenue, "run_action", "venue: actions"),
         (BacktestEngine, "_on_market_frame", "engine: market frames (+ sending actions)"),
         (BacktestEngine, "_housekeeping", "engine: housekeeping"), (BacktestEngine, "on_user", "engine: user frames"),
         (Backtest, "_sample_book", "backtest: book samples"), (Backtest, "_sample_path", "backtest: PnL samples"))


def run_once(cfg: Any, data: Any, spec: Any, opt: Options) -> tuple[dict, float]:
    bt = Backtest(cfg, data, spec, opt)
    cpu0 = time.process_time()
    summary = bt.run()
    return summary, time.process_time() - cpu0


def breakdown(cfg: Any, data: Any, spec: Any, opt: Options) -> dict[str, float]:
    """CPU seconds spent in each timed call over one fast-path run (plus the rest: the replay loop).

    CPU time, not wall time: on a shared machine the wall clock also counts time the process waited."""
    spent: dict[str, float] = {}
    saved = [(cls, name, getattr(cls, name)) for cls, name, _label in TIMED]
    clock = time.process_time

    def timed(func: Any, label: str) -> Any:
        def call(*args: Any) -> Any:
            t0 = clock()
            try:
                return func(*args)
            finally:
                spent[label] = spent.get(label, 0.0) + clock() - t0
        return call

    try:
        for (cls, name, label), (_c, _n, func) in zip(TIMED, saved, strict=True):
            setattr(cls, name, timed(func, label))
        _summary, cpu = run_once(cfg, data, spec, opt)
    finally:
        for cls, name, func in saved:
            setattr(cls, name, func)
    spent["replay loop and the rest"] = cpu - sum(spent.values())
    spent["total (with the timing's own cost)"] = cpu
    return {k: round(v, 4) for k, v in spent.items()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default="synthetic:345:1", help="recording, or synthetic[:SECONDS[:SEED]]")
    p.add_argument("--runs", type=int, default=3, help="runs of each path (median reported)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    args = p.parse_args(argv)
    logging.disable(logging.CRITICAL)
    cfg = load_config(None)
    if args.data.startswith("synthetic"):
        data, spec = _synthetic_arg(args.data, cfg.market.coin)
    else:
        data, spec = load_frames(args.data), coin_spec(args.data, None)
    paths = {"fast": Options(), "python loop": Options(quiet_runs=False), "general": Options(fast_path=False)}
    results: dict[str, list] = {name: [] for name in paths}
    summaries: dict[str, bytes] = {}
    for _ in range(max(1, args.runs)):
        for name, opt in paths.items():
            summary, cpu = run_once(cfg, data, spec, opt)
            results[name].append((summary["wall_s"], cpu, summary["events_per_s"], summary["speedup"]))
            summaries[name] = orjson.dumps({k: v for k, v in summary.items() if k not in WALL_KEYS},
                                           option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
    identical = len(set(summaries.values())) == 1
    med = {name: {"wall_s": statistics.median(r[0] for r in rows), "cpu_s": statistics.median(r[1] for r in rows),
                  "events_per_s": statistics.median(r[2] for r in rows),
                  "x_market_time": statistics.median(r[3] for r in rows)}
           for name, rows in results.items()}
    fast_summary = orjson.loads(summaries["fast"])
    out = {"data": data.path, "events": fast_summary["events"], "market_s": fast_summary["market_s"],
           "runs": args.runs, **med,
           "fast_vs_python_loop": round(med["python loop"]["wall_s"] / med["fast"]["wall_s"], 2),
           "fast_vs_general": round(med["general"]["wall_s"] / med["fast"]["wall_s"], 2),
           "summaries_identical": identical,
           "python_loop_breakdown_cpu_s": breakdown(cfg, data, spec, paths["python loop"])}
    if args.json:
        sys.stdout.write(orjson.dumps(out).decode() + "\n")
    else:
        print(f"{out['data']}: {out['events']:,} events, {out['market_s']:.1f} s of market, median of {args.runs}")
        for name in paths:
            m = med[name]
            print(f"  {name:12s} wall {m['wall_s']:.3f} s  cpu {m['cpu_s']:.3f} s  {m['events_per_s']:>9,.0f} ev/s  "
                  f"{m['x_market_time']:>7,.0f}x market time")
        print(f"  fast vs python loop {out['fast_vs_python_loop']:.2f}x, vs general {out['fast_vs_general']:.2f}x;"
              f"   summaries identical: {identical}")
        print("  where the python loop's CPU time goes (one timed run):")
        for label, secs in out["python_loop_breakdown_cpu_s"].items():
            print(f"    {label:45s} {secs:.3f} s")
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
