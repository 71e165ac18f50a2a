"""Reference fill accounting with exact rationals (Fraction): position, cash, fees, volume, realised PnL."""
from __future__ import annotations

from fractions import Fraction


class Accounting:
    def __init__(self) -> None:
        self.position = Fraction(0)
        self.cash = Fraction(0)
        self.fees = Fraction(0)
        self.volume = Fraction(0)
        self.realized = Fraction(0)
        self.lots: list[tuple[Fraction, Fraction]] = []  # open (signed size, price); average cost below

    def fill(self, side: int, px: str, sz: str, fee: str = "0") -> None:
        p, q, f = Fraction(px), Fraction(sz), Fraction(fee)
        self.cash -= side * p * q + f
        self.fees += f
        self.volume += p * q
        pos = self.position
        if pos == 0 or (pos > 0) == (side > 0):
            self.lots.append((side * q, p))
            self.position += side * q
            return
        avg = sum(s * px_ for s, px_ in self.lots) / pos
        closing = min(q, abs(pos))
        self.realized += (p - avg) * closing * (1 if pos > 0 else -1)
        remaining = abs(pos) - closing
        self.lots = [(pos / abs(pos) * remaining, avg)] if remaining else []
        self.position = pos + side * closing
        rest = q - closing
        if rest:
            self.lots = [(side * rest, p)]
            self.position = side * rest
