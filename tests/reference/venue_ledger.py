"""Plain-Python reference ledger: average-cost position, realised PnL and fees from a list of fills."""

from __future__ import annotations


def replay_fills(fills: list[tuple[int, float, float, bool]], maker_fee: float, taker_fee: float):
    """fills = [(side ±1, px, sz, crossed)] → (position, entry_px, realised_pnl, fees, volume)."""
    pos = 0.0
    entry = 0.0
    realised = 0.0
    fees = 0.0
    volume = 0.0
    for side, px, sz, crossed in fills:
        fees += px * sz * (taker_fee if crossed else maker_fee)
        volume += px * sz
        if pos == 0 or (pos > 0) == (side > 0):
            entry = (entry * abs(pos) + px * sz) / (abs(pos) + sz)
            pos += side * sz
            continue
        closing = min(sz, abs(pos))
        realised += (px - entry) * closing * (1 if pos > 0 else -1)
        new_pos = pos + side * sz
        if abs(new_pos) < 1e-12:
            pos, entry = 0.0, 0.0
        elif (new_pos > 0) != (pos > 0):
            pos, entry = new_pos, px
        else:
            pos = new_pos
    return pos, entry, realised, fees, volume
