"""Fault injection for the local venue: every injected fault is counted and logged so tests can assert on it.

Spec string (comma separated, all optional, off by default):
    disconnect=P        close each websocket with probability P per block
    disconnect_every=S  close every websocket each S seconds (scheduled)
    drop_user=P         drop a user message (orderUpdates, userFills, user)
    dup_user=P          send a user message twice
    reorder_user=P      hold a user message back and send it after the next one on that connection
    http5xx=P           answer an HTTP request with 500 before handling it
    http429=P           answer an HTTP request with 429 (plain text) before handling it
    reject=P            reject an order inside an accepted action (per-order error)
    reject_real=P       reject an order with one of the exchange's own per-order texts (margin, ALO cross,
                        tick, min value), chosen at random
    ack_delay=P:S       delay an action reply by S seconds
    lost_reply=P        handle an action but never send its reply (HTTP: the connection is dropped)
    malformed=P         replace an outgoing market frame with a truncated, unparsable one
    stall=PERIOD:S      every PERIOD seconds, publish no market data for S seconds
    burst=PERIOD:N      every PERIOD seconds, truncate the next N outgoing market frames (a malformed burst)
"""

from __future__ import annotations

import logging
import random
from collections import deque
from dataclasses import dataclass, fields
from typing import Any

log = logging.getLogger("hlfast.venue.faults")

PROBABILITY_KEYS = (
    "disconnect", "drop_user", "dup_user", "reorder_user", "http5xx", "http429", "reject", "lost_reply", "malformed",
    "reject_real",
)
FAULT_LOG_SIZE = 10_000
REJECT_TEXT = "Order rejected by venue fault injection."
# The exchange's per-order texts (protocol.md §3.5); "{bbo}" is filled with the book's "<bid>@<ask>".
REAL_REJECT_TEXTS = (
    "Insufficient margin to place order.",
    "Post only order would have immediately matched, bbo was {bbo}.",
    "Price must be divisible by tick size.",
    "Order must have minimum value of $10.",
)


@dataclass(frozen=True)
class FaultSpec:
    disconnect: float = 0.0
    disconnect_every: float = 0.0
    drop_user: float = 0.0
    dup_user: float = 0.0
    reorder_user: float = 0.0
    http5xx: float = 0.0
    http429: float = 0.0
    reject: float = 0.0
    ack_delay: float = 0.0
    ack_delay_s: float = 0.0
    lost_reply: float = 0.0
    malformed: float = 0.0
    stall_every: float = 0.0
    stall_s: float = 0.0
    reject_real: float = 0.0
    burst_every: float = 0.0
    burst_frames: float = 0.0

    @property
    def active(self) -> bool:
        return any(getattr(self, f.name) for f in fields(self))


def _probability(key: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"fault {key}: {text!r} is not a number") from None
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"fault {key}: probability {value} outside [0, 1]")
    return value


def _probability_free(key: str, text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"fault {key}: {text!r} is not a number") from None


def _pair(key: str, text: str) -> tuple[float, float]:
    first, sep, second = text.partition(":")
    if not sep:
        raise ValueError(f"fault {key}: expected two numbers A:B, got {text!r}")
    try:
        return float(first), float(second)
    except ValueError:
        raise ValueError(f"fault {key}: {text!r} is not A:B with numbers") from None


def parse_fault_spec(text: str | None) -> FaultSpec:
    """Parse a spec like ``disconnect=0.01,ack_delay=0.05:1.5,stall=30:5``; ValueError names the bad part."""
    if not text:
        return FaultSpec()
    values: dict[str, float] = {}
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        key, sep, raw = part.partition("=")
        key = key.strip()
        raw = raw.strip()
        if not sep:
            raise ValueError(f"fault {part!r}: expected key=value")
        if key in PROBABILITY_KEYS:
            values[key] = _probability(key, raw)
        elif key == "disconnect_every":
            values[key] = _probability_free(key, raw)
            if values[key] <= 0:
                raise ValueError("fault disconnect_every: period must be > 0")
        elif key == "ack_delay":
            p, delay = _pair(key, raw)
            values["ack_delay"] = _probability(key, str(p))
            if delay < 0:
                raise ValueError("fault ack_delay: delay must be >= 0")
            values["ack_delay_s"] = delay
        elif key == "stall":
            period, length = _pair(key, raw)
            if period <= 0 or length < 0 or length >= period:
                raise ValueError("fault stall: need PERIOD > 0 and 0 <= SECONDS < PERIOD")
            values["stall_every"], values["stall_s"] = period, length
        elif key == "burst":
            period, count = _pair(key, raw)
            if period <= 0 or count < 1 or count != int(count):
                raise ValueError("fault burst: need PERIOD > 0 and a whole number of frames N >= 1")
            values["burst_every"], values["burst_frames"] = period, count
        else:
            known = ", ".join(PROBABILITY_KEYS + ("disconnect_every", "ack_delay", "stall", "burst"))
            raise ValueError(f"unknown fault {key!r}; known: {known}")
    return FaultSpec(**values)


class FaultInjector:
    """Seeded dice for each fault kind, plus the counters and the log of what was injected."""

    def __init__(self, spec: FaultSpec | str | None = None, seed: int = 1) -> None:
        self.spec = spec if isinstance(spec, FaultSpec) else parse_fault_spec(spec)
        self.active = self.spec.active
        self._rng = random.Random(seed ^ 0x5EED_FA17)
        self.counts: dict[str, int] = {}
        self.log: deque[dict[str, Any]] = deque(maxlen=FAULT_LOG_SIZE)

    def record(self, kind: str, detail: str = "") -> None:
        self.counts[kind] = self.counts.get(kind, 0) + 1
        self.log.append({"kind": kind, "detail": detail, "n": self.counts[kind]})
        log.warning("injected fault %s %s", kind, detail)

    def roll(self, kind: str, detail: str = "") -> bool:
        """True (and recorded) with the spec's probability for `kind`."""
        p = getattr(self.spec, kind)
        if p <= 0.0 or self._rng.random() >= p:
            return False
        self.record(kind, detail)
        return True

    def reject_text(self, detail: str = "") -> str | None:
        """The error text of an injected per-order reject, or None (reject first, then reject_real)."""
        if self.roll("reject", detail):
            return REJECT_TEXT
        if self.spec.reject_real <= 0.0 or self._rng.random() >= self.spec.reject_real:
            return None
        text = self._rng.choice(REAL_REJECT_TEXTS)
        self.record("reject_real", text.split(",")[0])
        return text

    def ack_delay(self, detail: str = "") -> float:
        """Seconds to hold an action reply back (0 when no delay is injected)."""
        if self.spec.ack_delay <= 0.0 or self._rng.random() >= self.spec.ack_delay:
            return 0.0
        self.record("ack_delay", detail)
        return self.spec.ack_delay_s

    def stalled(self, elapsed_s: float) -> bool:
        """Whether market data is stalled at `elapsed_s` seconds since start."""
        if self.spec.stall_every <= 0.0:
            return False
        return elapsed_s % self.spec.stall_every >= self.spec.stall_every - self.spec.stall_s

    def snapshot(self) -> dict[str, Any]:
        return {"counts": dict(self.counts), "log": list(self.log)[-200:]}
