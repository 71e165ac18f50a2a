"""Brute-force reference for the IP weight window and the address budget."""
from __future__ import annotations


def exchange_weight(n_items: int) -> int:
    return 1 + n_items // 40


def ip_weight(events: list[tuple[float, int]], t: float, window_s: float = 60.0) -> int:
    """Sum of weights of events in (t − window, t]."""
    return sum(w for te, w in events if t - window_s < te <= t)


def backoff_delay(k: int, base: float = 10.0, factor: float = 1.5, cap: float = 60.0) -> float:
    return min(cap, base * factor**k)
