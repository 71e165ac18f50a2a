"""Backtest summaries: the numbers, a text table, the impulse-control A/B columns, and PNG plots.

matplotlib is an optional extra (``pip install matplotlib``): it is imported only when plots are
written, and its absence is reported in one line instead of failing the run.

Definitions (all from the simulated run):
- PnL is the venue ledger's: realised (closed, before fees) − fees + unrealised at the market mid.
  ``fees`` is USD paid (negative = rebates earned).
- A *quote* is one order the engine sent to a price (a place, or a modify to a new price); its level
  is the index of that price among the quoter's targets (0 = best).  Fill rate per level = quotes that
  got at least one fill / quotes sent.
- Adverse selection at h: for each of our fills, side × (mid(t + h) − mid(t)) / mid(t) in bp
  (negative = the market moved against the fill) and the markout side × (mid(t + h) − px) / px.
- Sharpe: mean / std of the PnL increments sampled every second, scaled by √(86 400) (one day).
- Calibration: predicted P(fill within H) of each quote when sent vs whether it filled within
  latency + H.
"""

from __future__ import annotations

import bisect
import math
import os
from typing import Any

import orjson

CALIBRATION_BINS = (0.0, 0.01, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0001)


# ---------------------------------------------------------------------------------------------------
# Summary
# ---------------------------------------------------------------------------------------------------
def summarize(bt: Any) -> dict[str, Any]:
    """The summary dict of a finished Backtest (see the module docstring for the definitions)."""
    eng, sim, log_ = bt.engine, bt.sim, bt.log
    cfg = bt.cfg
    acct = sim.ledger_account
    market_s = max(bt.t_last - bt.t_first, 1e-9)
    minutes = market_s / 60.0
    fills = sim.fills
    buys = [f for f in fills if f.side > 0]
    sells = [f for f in fills if f.side < 0]
    volume = sum(f.px * f.sz for f in fills)
    total = bt.mark_to_market()
    pos = acct.positions.get(bt.spec.name)
    unreal = total - (acct.realised_pnl - acct.fees_paid)

    actions: dict[str, int] = {}
    items: dict[str, int] = {}
    for _t, kind, n in log_.actions:
        actions[kind] = actions.get(kind, 0) + 1
        items[kind] = items.get(kind, 0) + n
    n_actions = len(log_.actions)
    per_min_series = _per_minute([t for t, _k, _n in log_.actions], bt.t_first, market_s)

    impulse = eng.impulse_counters() if eng.orders is not None else {}
    updates = impulse.get("modified", 0) + impulse.get("placed", 0) + impulse.get("cancelled", 0)
    held = impulse.get("filter_skipped", 0) + impulse.get("locked", 0) + impulse.get("budget_skipped", 0)
    if impulse:
        impulse["held_share"] = round(held / (held + updates), 4) if held + updates else 0.0

    levels, calibration, quotes_total, quotes_filled = _quote_outcomes(bt)
    wall = max(bt.wall_s, 1e-9)
    summary: dict[str, Any] = {
        "coin": bt.spec.name,
        "data": bt.data.path,
        "label": bt.opt.label,
        "latency_ms": bt.opt.latency_ms,
        "queue_model": bt.opt.queue_model,
        "impulse_enabled": bool(cfg.impulse.enabled),
        "market_s": round(market_s, 3),
        "pnl": round(total, 6),
        "pnl_realised": round(acct.realised_pnl, 6),
        "pnl_unrealised": round(unreal, 6),
        "fees": round(acct.fees_paid, 6),
        "pnl_engine_view": round(eng.pnl(), 6) if eng.orders is not None else 0.0,
        "fills": len(fills),
        "fills_by_side": {"buy": len(buys), "sell": len(sells)},
        "maker_fills": sum(1 for f in fills if not f.crossed),
        "volume": round(volume, 4),
        "volume_coin": round(sum(f.sz for f in fills), 8),
        "position": (pos.szi / 10**bt.spec.sz_decimals) if pos else 0.0,
        "inventory": _inventory(bt),
        "quotes": quotes_total,
        "fill_rate": round(quotes_filled / quotes_total, 5) if quotes_total else 0.0,
        "fill_rate_by_level": levels,
        "actions": actions,
        "action_items": items,
        "actions_total": n_actions,
        "actions_per_min": round(n_actions / minutes, 3),
        "actions_per_min_by_type": {k: round(v / minutes, 3) for k, v in actions.items()},
        "actions_per_min_series": per_min_series,
        "impulse": impulse,
        "adverse_selection": _adverse_selection(bt),
        "sharpe": _sharpe(log_.path_pnl),
        "calibration": calibration,
        "venue": {"actions": sim.stats.actions, "action_errors": sim.stats.action_errors,
                  "item_errors": sim.stats.item_errors, "merged_books": sim.stats.merged_books,
                  "bad_frames": sim.stats.bad_frames, "resting_at_end": sim.resting()},
        "engine": {"rejects": eng.rejects, "quote_cycles": eng.pipeline.cycles if eng.pipeline else 0,
                   "ticks": eng.ticks, "malformed_frames": eng.malformed,
                   "kill_switch": (f"{eng.kill.trip.reason}: {eng.kill.trip.detail}"
                                   if eng.kill.trip is not None else None),
                   "rejects_by_reason": dict(eng.rejects_by_reason)},
        "events": bt.events,
        "wall_s": round(bt.wall_s, 4),
        "events_per_s": round(bt.events / wall, 1),
        "speedup": round(market_s / wall, 1),
    }
    return summary


def _per_minute(times: list[float], t0: float, span_s: float) -> list[int]:
    n = max(1, math.ceil(span_s / 60.0))
    out = [0] * n
    for t in times:
        i = int((t - t0) // 60.0)
        out[min(max(i, 0), n - 1)] += 1
    return out


def _inventory(bt: Any) -> dict[str, float]:
    """Max and time-weighted mean |position| (coin) from the venue's fills, the truth of the run."""
    t0, t1 = bt.t_first, max(bt.t_last, bt.t_first + 1e-9)
    pos = 0.0
    last_t = t0
    area = 0.0
    peak = 0.0
    for f in bt.sim.fills:
        t = min(max(f.t, t0), t1)
        area += abs(pos) * (t - last_t)
        last_t = t
        pos += f.side * f.sz
        peak = max(peak, abs(pos))
    area += abs(pos) * (t1 - last_t)
    return {"max_abs": round(peak, 8), "mean_abs": round(area / (t1 - t0), 8), "final": round(pos, 8)}


def _mid_at(mid_t: Any, mid: Any, t: float) -> float:
    """Last market mid at or before t (nan before the first)."""
    i = bisect.bisect_right(mid_t, t) - 1
    return mid[i] if i >= 0 else math.nan


def _adverse_selection(bt: Any) -> dict[str, dict[str, float]]:
    mid_t, mid = bt.log.mid_t, bt.log.mid
    out = {}
    end = mid_t[-1] if len(mid_t) else -math.inf
    for h in (1.0, 10.0):
        moves, marks = [], []
        for f in bt.sim.fills:
            if f.t + h > end:
                continue  # no mid that far ahead
            m0 = _mid_at(mid_t, mid, f.t)
            m1 = _mid_at(mid_t, mid, f.t + h)
            if not (m0 > 0 and m1 > 0):
                continue
            moves.append(f.side * (m1 - m0) / m0 * 1e4)
            marks.append(f.side * (m1 - f.px) / f.px * 1e4)
        out[f"{h:g}s"] = {"n": len(moves),
                          "mid_move_bps": round(sum(moves) / len(moves), 4) if moves else 0.0,
                          "markout_bps": round(sum(marks) / len(marks), 4) if marks else 0.0}
    return out


def _sharpe(pnl: Any) -> float:
    if len(pnl) < 3:
        return 0.0
    diffs = [pnl[i] - pnl[i - 1] for i in range(1, len(pnl))]
    mean = sum(diffs) / len(diffs)
    var = sum((d - mean) ** 2 for d in diffs) / (len(diffs) - 1)
    if var <= 0.0:
        return 0.0
    return round(mean / math.sqrt(var) * math.sqrt(86_400.0), 4)


def _quote_outcomes(bt: Any) -> tuple[dict[str, dict[str, float]], list[dict[str, float]], int, int]:
    """Per-level quote counts and fill rates, and the P(fill) calibration table."""
    quotes = bt.log.quotes
    first_fill: dict[str, list[float]] = {}
    for f in bt.sim.fills:
        if f.cloid is not None:
            first_fill.setdefault(f.cloid, []).append(f.t)
    horizon = bt.cfg.impulse.horizon_s
    latency = bt.opt.latency_ms / 1e3
    per_level: dict[int, list[int]] = {}
    bins = [[0, 0.0, 0] for _ in range(len(CALIBRATION_BINS) - 1)]  # n, Σ predicted, filled within H
    total = filled_total = 0
    for cloid, records in quotes.items():
        times = first_fill.get(cloid, [])
        for k, rec in enumerate(records):
            end = records[k + 1].t if k + 1 < len(records) else math.inf
            j = bisect.bisect_left(times, rec.t)
            hit = times[j] if j < len(times) and times[j] < end else math.inf
            filled = hit < math.inf
            cell = per_level.setdefault(rec.level, [0, 0])
            cell[0] += 1
            cell[1] += int(filled)
            total += 1
            filled_total += int(filled)
            if rec.p_fill == rec.p_fill:
                b = min(max(bisect.bisect_right(CALIBRATION_BINS, rec.p_fill) - 1, 0), len(bins) - 1)
                bins[b][0] += 1
                bins[b][1] += rec.p_fill
                bins[b][2] += int(hit <= rec.t + latency + horizon)
    levels = {str(lv): {"quotes": q, "filled": f, "rate": round(f / q, 5) if q else 0.0}
              for lv, (q, f) in sorted(per_level.items())}
    calibration = [{"lo": CALIBRATION_BINS[i], "hi": min(CALIBRATION_BINS[i + 1], 1.0), "n": n,
                    "predicted": round(s / n, 5) if n else 0.0, "realised": round(h / n, 5) if n else 0.0}
                   for i, (n, s, h) in enumerate(bins)]
    return levels, calibration, total, filled_total


# ---------------------------------------------------------------------------------------------------
# Text
# ---------------------------------------------------------------------------------------------------
def _rows(s: dict[str, Any]) -> list[tuple[str, str]]:
    imp = s.get("impulse", {})
    inv = s["inventory"]
    adv = s["adverse_selection"]
    lv = s["fill_rate_by_level"]
    top = ", ".join(f"L{k} {v['rate']:.1%}/{v['quotes']}" for k, v in list(lv.items())[:4])
    return [
        ("impulse control", "on" if s["impulse_enabled"] else "off"),
        ("PnL (USD)", f"{s['pnl']:+.4f}"),
        ("  realised", f"{s['pnl_realised']:+.4f}"),
        ("  unrealised", f"{s['pnl_unrealised']:+.4f}"),
        ("  fees (− = rebate)", f"{s['fees']:+.4f}"),
        ("volume (USD)", f"{s['volume']:,.2f}"),
        ("fills buy / sell", f"{s['fills_by_side']['buy']} / {s['fills_by_side']['sell']}"),
        ("quotes sent", f"{s['quotes']}"),
        ("fill rate (quotes filled)", f"{s['fill_rate']:.2%}"),
        ("fill rate by level", top or "-"),
        ("|inventory| max / mean", f"{inv['max_abs']:.5g} / {inv['mean_abs']:.5g}"),
        ("API actions", f"{s['actions_total']}"),
        ("  by type", ", ".join(f"{k} {v}" for k, v in sorted(s["actions"].items())) or "-"),
        ("actions / min", f"{s['actions_per_min']:.1f}"),
        ("impulse updated", f"{imp.get('modified', 0)} modified, {imp.get('placed', 0)} placed, "
                            f"{imp.get('cancelled', 0)} cancelled"),
        ("impulse skipped / locked", f"{imp.get('filter_skipped', 0)} / {imp.get('locked', 0)}"),
        ("impulse budget-skipped", f"{imp.get('budget_skipped', 0)}"),
        ("held share", f"{imp.get('held_share', 0.0):.1%}"),
        ("adverse sel. 1 s (bp)", f"{adv['1s']['mid_move_bps']:+.3f} (markout {adv['1s']['markout_bps']:+.3f})"),
        ("adverse sel. 10 s (bp)", f"{adv['10s']['mid_move_bps']:+.3f} (markout {adv['10s']['markout_bps']:+.3f})"),
        ("Sharpe (1 s, daily)", f"{s['sharpe']:+.3f}"),
        ("rejects", f"{s['engine']['rejects']}"),
        ("events / wall s", f"{s['events']:,} / {s['wall_s']:.3f}"),
        ("events/s, speed-up", f"{s['events_per_s']:,.0f}/s, {s['speedup']:,.0f}x market time"),
    ]


def table(s: dict[str, Any]) -> str:
    head = (f"backtest {s['coin']} {s['data']}  {s['market_s']:.1f} s of market data, latency "
            f"{s['latency_ms']:g} ms, queue {s['queue_model']}")
    rows = _rows(s)
    width = max(len(k) for k, _ in rows)
    return "\n".join([head] + [f"  {k:<{width}}  {v}" for k, v in rows])


def compare(on: dict[str, Any], off: dict[str, Any]) -> dict[str, float]:
    """The A/B deltas: action reduction and the relative change in fill rate and fills (on vs off)."""
    def rel(a: float, b: float) -> float | None:
        return round((a - b) / b, 4) if b else None  # undefined against zero

    return {
        "actions_reduction": round(1.0 - on["actions_total"] / off["actions_total"], 4) if off["actions_total"] else 0.0,
        "action_items_reduction": round(1.0 - sum(on["action_items"].values()) / sum(off["action_items"].values()), 4)
        if sum(off["action_items"].values()) else 0.0,
        "fill_rate_change": rel(on["fill_rate"], off["fill_rate"]),
        "fills_change": rel(on["fills"], off["fills"]),
        "volume_change": rel(on["volume"], off["volume"]),
        "pnl_difference": round(on["pnl"] - off["pnl"], 6),
    }


def ab_table(on: dict[str, Any], off: dict[str, Any]) -> str:
    rows_on, rows_off = _rows(on), _rows(off)
    width = max(len(k) for k, _ in rows_on)
    col = max(max(len(v) for _, v in rows_on), 12)
    head = (f"impulse-control A/B: {on['coin']} {on['data']}  {on['market_s']:.1f} s, latency "
            f"{on['latency_ms']:g} ms, queue {on['queue_model']}")
    lines = [head, f"  {'':<{width}}  {'ON':<{col}}  OFF"]
    for (k, a), (_, b) in zip(rows_on, rows_off, strict=True):
        lines.append(f"  {k:<{width}}  {a:<{col}}  {b}")
    c = compare(on, off)

    def pct(x: float | None) -> str:
        return "n/a (zero without the filter)" if x is None else f"{x:+.1%}"

    lines.append(f"  => API actions {c['actions_reduction']:.1%} fewer with the filter on (items "
                 f"{c['action_items_reduction']:.1%}); fill rate {pct(c['fill_rate_change'])}, fills "
                 f"{pct(c['fills_change'])}, PnL {c['pnl_difference']:+.4f} USD")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------------------------
def jsonable(obj: Any) -> Any:
    """The summary without the bulky series (the per-minute action counts stay)."""
    if isinstance(obj, dict):
        return {k: jsonable(v) for k, v in obj.items() if not k.startswith("_")}
    return obj


def write_outputs(out_dir: str, result: dict[str, Any], ab: bool = False,
                  runs: dict[str, Any] | None = None) -> list[str]:
    """summary.json and, when matplotlib is installed, PNG plots; returns notes for the user."""
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, "summary.json")
    with open(path, "wb") as fh:
        fh.write(orjson.dumps(jsonable(result), option=orjson.OPT_INDENT_2))
    notes = [f"wrote {path}"]
    if runs is None:
        return notes
    try:
        import matplotlib
    except ImportError:
        notes.append("plots skipped: matplotlib is not installed (pip install matplotlib)")
        return notes
    matplotlib.use("Agg")
    for name, bt in runs.items():
        for written in plot_run(bt, out_dir, prefix=f"{name}_" if ab else ""):
            notes.append(f"wrote {written}")
    return notes


def plot_run(bt: Any, out_dir: str, prefix: str = "") -> list[str]:
    """The five plots of one run; returns the files written."""
    import matplotlib.pyplot as plt

    log_ = bt.log
    t0 = bt.t_first
    written = []

    def save(fig: Any, name: str) -> None:
        path = os.path.join(out_dir, f"{prefix}{name}.png")
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)

    mt = [t - t0 for t in log_.mid_t]
    fig, ax = plt.subplots(figsize=(11, 4.5))
    ax.plot(mt, list(log_.mid), lw=0.8, color="black", label="mid")
    ax.plot(mt, list(log_.bid_q), lw=0.6, color="tab:green", label="our best bid")
    ax.plot(mt, list(log_.ask_q), lw=0.6, color="tab:red", label="our best ask")
    for side, colour, marker in ((1, "tab:green", "^"), (-1, "tab:red", "v")):
        fs = [f for f in bt.sim.fills if f.side == side]
        ax.scatter([f.t - t0 for f in fs], [f.px for f in fs], s=14, c=colour, marker=marker,
                   label="buy fills" if side > 0 else "sell fills", zorder=3)
    ax.set_xlabel("s")
    ax.set_ylabel("price")
    ax.legend(loc="best", fontsize=8)
    save(fig, "quotes")

    pt = [t - t0 for t in log_.path_t]
    fig, ax = plt.subplots(figsize=(11, 3))
    ax.step(pt, list(log_.path_pos), where="post")
    ax.set_xlabel("s")
    ax.set_ylabel(f"position ({bt.spec.name})")
    save(fig, "inventory")

    fig, ax = plt.subplots(figsize=(11, 3))
    ax.plot(pt, list(log_.path_pnl))
    ax.set_xlabel("s")
    ax.set_ylabel("PnL (USD)")
    save(fig, "pnl")

    series = _per_minute([t for t, _k, _n in log_.actions], t0, max(bt.t_last - t0, 1e-9))
    fig, ax = plt.subplots(figsize=(11, 3))
    ax.bar(range(len(series)), series)
    ax.set_xlabel("minute")
    ax.set_ylabel("API actions")
    save(fig, "actions_per_min")

    _, calibration, _, _ = _quote_outcomes(bt)
    rows = [c for c in calibration if c["n"]]
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot([0, 1], [0, 1], ls="--", color="grey")
    ax.scatter([c["predicted"] for c in rows], [c["realised"] for c in rows], s=[10 + c["n"] ** 0.5 * 4 for c in rows])
    ax.set_xlabel("predicted P(fill within H)")
    ax.set_ylabel("realised")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    save(fig, "fill_calibration")
    return written
