"""Plain-Python reference of the pipeline's log-linear latency histogram."""

from __future__ import annotations

import math

SUB_BITS = 3
SUB = 8
BUCKETS = 512


def bucket_of(ns: int) -> int:
    if ns < SUB:
        return ns
    shift = ns.bit_length() - 1 - SUB_BITS
    return min(BUCKETS - 1, SUB + shift * SUB + ((ns >> shift) - SUB))


def bucket_upper(idx: int) -> int:
    if idx < SUB:
        return idx + 1
    shift, rem = divmod(idx - SUB, SUB)
    return (SUB + rem + 1) << shift


def exact_quantile(samples: list[int], q: float) -> int:
    """Nearest-rank quantile of the raw samples."""
    s = sorted(samples)
    if q <= 0:
        return s[0]
    if q >= 1:
        return s[-1]
    rank = max(1, math.ceil(q * len(s)))
    return s[rank - 1]


def histogram_quantile(samples: list[int], q: float) -> int:
    """What the bucketed histogram must answer: the exact quantile's bucket upper bound, clamped."""
    s = sorted(samples)
    if q <= 0:
        return s[0]
    if q >= 1:
        return s[-1]
    v = exact_quantile(samples, q)
    return max(s[0], min(s[-1], bucket_upper(bucket_of(v)) - 1))
