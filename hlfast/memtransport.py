"""In-memory stand-ins for the engine's network boundary, wired to the local venue's own logic.

`MemoryConnection` replaces `hlfast.feed.WsConnection` (frames in, bytes out, no socket),
`MemoryPoller` replaces `hlfast.feed.Poller`, `MemoryHttp` replaces `hlfast.gateway.HttpClient`.
`MemoryVenue` runs the venue's protocol (`Venue`) and frame publishing (`VenueServer`) without an
event loop or sockets: a block is stepped on demand, frames land in the subscribed connections'
inboxes, and what the engine sends is handled by the venue when `deliver_sent()` is called.

This lets the perf harness and the backtester drive the engine's real per-frame code with no network
noise and a replay clock. Each connection stamps `perf_counter_ns()` when frames are read and when
bytes are handed to `send_text`, so tick-to-order can be measured from outside the engine.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

import orjson

from hlfast.venue.server import BadRequest, Connection, Venue, VenueServer

__all__ = ["MemoryConnection", "MemoryHttp", "MemoryPoller", "MemoryVenue"]


class MemoryConnection:
    """The subset of WsConnection the engine uses, backed by an inbox and an outbox of frames."""

    def __init__(self, name: str, subscriptions: Iterable[dict] = (), url: str = "memory://") -> None:
        self.name = name
        self.url = url
        self.subscriptions = list(subscriptions)
        self.inbox: deque[bytes] = deque()     # server -> client frames not yet read
        self.outbox: list[bytes] = []          # client -> server frames not yet delivered
        self.connected = False
        self.connects = 0
        self.reconnects = 0
        self.failures = 0
        self.next_attempt_at = 0.0
        self.last_error = ""
        self.frames_in = 0
        self.frames_out = 0
        self.last_rtt_ms = -1.0
        self.ping_outstanding = False
        # perf_counter_ns stamps: the last read, and the first send since the last read (0 = none)
        self.read_ns = 0
        self.first_send_ns = 0
        self.on_connect: Callable[[MemoryConnection], None] | None = None

    # ---- lifecycle (WsConnection API) ----------------------------------------------------------
    def fileno(self) -> int:
        return -1

    def connect(self) -> bool:
        if self.connected:
            self.reconnects += 1
        self.connected = True
        self.connects += 1
        self.inbox.clear()
        self.outbox.clear()
        if self.on_connect is not None:
            self.on_connect(self)
        for sub in self.subscriptions:
            self.send_json({"method": "subscribe", "subscription": sub})
        return True

    def mark_down(self, reason: str) -> None:
        self.last_error = reason
        self.connected = False

    def close(self) -> None:
        self.connected = False
        self.next_attempt_at = float("inf")

    def due_for_reconnect(self, now: float) -> bool:
        return not self.connected and now >= self.next_attempt_at

    # ---- output --------------------------------------------------------------------------------
    def send_json(self, obj: object) -> bool:
        return self.send_text(orjson.dumps(obj))

    def send_text(self, payload: bytes) -> bool:
        if not self.connected:
            return False
        if not self.first_send_ns:
            self.first_send_ns = time.perf_counter_ns()
        self.outbox.append(payload)
        self.frames_out += 1
        return True

    def flush(self) -> bool:
        return True

    @property
    def wants_write(self) -> bool:
        return False

    def take_sent(self) -> list[bytes]:
        """Frames the client sent since the last call (oldest first)."""
        out, self.outbox = self.outbox, []
        return out

    # ---- input ---------------------------------------------------------------------------------
    def push(self, frame: bytes) -> None:
        self.inbox.append(frame)

    def read_frames(self, out: list) -> int:
        n = len(self.inbox)
        if not self.connected or n == 0:
            return 0
        inbox = self.inbox
        for _ in range(n):
            out.append(inbox.popleft())
        self.frames_in += n
        self.read_ns = time.perf_counter_ns()
        self.first_send_ns = 0
        return n

    # ---- heartbeat: there is no link to lose ----------------------------------------------------
    def on_pong(self) -> None:
        self.ping_outstanding = False

    def heartbeat(self, now: float) -> None:
        return None


class MemoryPoller:
    """Poller over MemoryConnections: the connected ones with frames waiting."""

    def __init__(self, conns: Iterable[MemoryConnection]) -> None:
        self.conns = list(conns)

    def poll(self, timeout_ms: int) -> list[MemoryConnection]:
        return [c for c in self.conns if c.connected and c.inbox]


class MemoryHttp:
    """HttpClient's info/exchange answered by a Venue in this process (user events are published)."""

    def __init__(self, venue: MemoryVenue) -> None:
        self.venue = venue
        self.requests = 0

    def info(self, body: dict) -> object:
        self.requests += 1
        return _roundtrip(self.venue.venue.info(body))

    def exchange(self, payload: dict | bytes) -> object:
        self.requests += 1
        body = orjson.loads(payload) if isinstance(payload, bytes | bytearray) else payload
        try:
            result = self.venue.venue.exchange(body)
        except BadRequest as exc:
            from hlfast.gateway import HttpError

            raise HttpError(422, str(exc)) from None
        self.venue.server.publish_user_events()
        self.venue.pump()
        return _roundtrip(result)

    def post(self, path: str, body: dict | bytes) -> object:
        return self.info(body) if path == "/info" else self.exchange(body)  # type: ignore[arg-type]

    def close(self) -> None:
        return None


def _roundtrip(obj: Any) -> Any:
    # what a client gets is a fresh decode of the JSON, never the venue's own objects
    return orjson.loads(orjson.dumps(obj))


class MemoryVenue:
    """The venue's logic and publishing with in-memory subscribers instead of websockets."""

    def __init__(self, venue: Venue) -> None:
        self.venue = venue
        self.server = VenueServer(venue)   # its aiohttp app is built but never started
        self.links: list[tuple[MemoryConnection, Connection]] = []
        self.http = MemoryHttp(self)

    def attach(self, client: MemoryConnection) -> None:
        """Serve this connection: its subscriptions and posts go to the venue when it connects."""
        client.on_connect = self._on_connect

    def _on_connect(self, client: MemoryConnection) -> None:
        self.links = [(c, s) for c, s in self.links if c is not client]
        for conn in list(self.server.connections):
            if conn.peer == f"memory:{id(client)}":
                self._drop(conn)
        server_side = Connection(None, f"memory:{id(client)}")  # type: ignore[arg-type]
        self.server.connections.add(server_side)
        self.links.append((client, server_side))

    def _drop(self, conn: Connection) -> None:
        conn.closed = True
        self.server.connections.discard(conn)
        for key in conn.keys:
            self.server.subs.get(key, set()).discard(conn)

    def step(self) -> bool:
        """One market block (trades, books, user events) into the inboxes; False once the source ended."""
        self.server.step()
        self.pump()
        return not self.venue.source_ended

    def deliver_sent(self) -> int:
        """Hand every frame the clients sent to the venue (replies and user events land in inboxes)."""
        n = 0
        for client, server_side in self.links:
            for frame in client.take_sent():
                self.server.on_ws_message(server_side, frame)
                n += 1
        if n:
            self.pump()
        return n

    def pump(self) -> int:
        """Move frames the venue queued for each connection into the client's inbox."""
        n = 0
        for client, server_side in self.links:
            outbox = server_side.outbox
            while outbox:
                client.push(outbox.popleft()[1])
                n += 1
            if server_side.held is not None:   # no reorder fault in memory: deliver at once
                client.push(server_side.held)
                server_side.held = None
                n += 1
        return n
