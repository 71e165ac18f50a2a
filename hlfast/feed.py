"""Websocket connections polled by the engine's single loop.

The handshake is done by websocket-client (TCP_NODELAY, UTF-8 validation skipped); after it the
socket is switched to non-blocking mode and frames are read and written here, so a half-arrived
frame or a full send buffer never blocks the loop: partial input stays in the read buffer and
unsent output in an outbox flushed when the socket is writable.  No threads.
"""

from __future__ import annotations

import os
import random
import select
import socket
import ssl
import time
from collections.abc import Callable, Iterable

import orjson
import websocket

OP_CONT = 0x0
OP_TEXT = 0x1
OP_BINARY = 0x2
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA

READ_CHUNK = 1 << 18
MAX_FRAME_BYTES = 1 << 24  # a frame larger than this is a protocol error, not a book
PING_FRAME = b'{"method":"ping"}'


def ws_url_from_base(base_url: str) -> str:
    """The SDK's rule: http(s)://host[:port] -> ws(s)://host[:port]/ws (no trailing slash)."""
    base = base_url.rstrip("/")
    if base.startswith("ws://") or base.startswith("wss://"):
        return base if base.endswith("/ws") else base + "/ws"
    return "ws" + base[len("http"):] + "/ws"


def encode_client_frame(payload: bytes, opcode: int = OP_TEXT) -> bytes:
    """A masked, unfragmented client frame (RFC 6455 §5.2)."""
    n = len(payload)
    head = bytearray([0x80 | opcode])
    if n < 126:
        head.append(0x80 | n)
    elif n < 65536:
        head.append(0x80 | 126)
        head += n.to_bytes(2, "big")
    else:
        head.append(0x80 | 127)
        head += n.to_bytes(8, "big")
    key = os.urandom(4)
    head += key
    if n == 0:
        return bytes(head)
    # XOR the payload with the repeated key as one big integer: no per-byte Python loop.
    reps = (n + 3) // 4
    mask = int.from_bytes((key * reps)[:n], "little")
    masked = (int.from_bytes(payload, "little") ^ mask).to_bytes(n, "little")
    return bytes(head) + masked


class FrameDecoder:
    """Incremental decoder of server->client frames (unmasked; masked accepted too)."""

    __slots__ = ("_buf", "_frag", "_frag_op", "errors")

    def __init__(self) -> None:
        self._buf = bytearray()
        self._frag: bytearray | None = None
        self._frag_op = OP_TEXT
        self.errors = 0

    def reset(self) -> None:
        self._buf.clear()
        self._frag = None

    def feed(self, data: bytes, out: list) -> int:
        """Append data; push each complete (opcode, payload bytes) to out. Returns -1 on a protocol error."""
        buf = self._buf
        buf += data
        off = 0
        end = len(buf)
        count = 0
        while end - off >= 2:
            b0 = buf[off]
            b1 = buf[off + 1]
            fin = b0 & 0x80
            op = b0 & 0x0F
            masked = b1 & 0x80
            n = b1 & 0x7F
            hdr = 2
            if n == 126:
                if end - off < 4:
                    break
                n = int.from_bytes(buf[off + 2:off + 4], "big")
                hdr = 4
            elif n == 127:
                if end - off < 10:
                    break
                n = int.from_bytes(buf[off + 2:off + 10], "big")
                hdr = 10
            if n > MAX_FRAME_BYTES:
                self.errors += 1
                self.reset()
                return -1
            key_at = off + hdr
            if masked:
                hdr += 4
            if end - off < hdr + n:
                break
            start = off + hdr
            payload = bytes(buf[start:start + n])
            if masked:
                key = bytes(buf[key_at:key_at + 4])
                mask = int.from_bytes((key * ((n + 3) // 4))[:n], "little")
                payload = (int.from_bytes(payload, "little") ^ mask).to_bytes(n, "little")
            off = start + n
            if op == OP_CONT:
                if self._frag is None:
                    self.errors += 1
                    continue
                self._frag += payload
                if fin:
                    out.append((self._frag_op, bytes(self._frag)))
                    self._frag = None
                    count += 1
            elif op in (OP_TEXT, OP_BINARY) and not fin:
                self._frag = bytearray(payload)
                self._frag_op = op
            else:
                out.append((op, payload))
                count += 1
        if off:
            del buf[:off]
        return count


class WsConnection:
    """One websocket: connect + subscribe, non-blocking frame I/O, heartbeat, reconnect schedule."""

    def __init__(
        self,
        url: str,
        name: str,
        subscriptions: Iterable[dict] = (),
        *,
        connect_timeout_s: float = 5.0,
        backoff_min_s: float = 0.25,
        backoff_max_s: float = 30.0,
        heartbeat_s: float = 20.0,
        pong_timeout_s: float = 10.0,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self.name = name
        self.subscriptions = list(subscriptions)
        self.connect_timeout_s = connect_timeout_s
        self.backoff_min_s = backoff_min_s
        self.backoff_max_s = backoff_max_s
        self.heartbeat_s = heartbeat_s
        self.pong_timeout_s = pong_timeout_s
        self._rng = rng or random.Random()
        self._clock = clock
        self._ws: websocket.WebSocket | None = None
        self.sock: socket.socket | None = None
        self._decoder = FrameDecoder()
        self._outbox = bytearray()
        self._frames: list = []
        self.connected = False
        self.connects = 0
        self.reconnects = 0
        self.failures = 0  # consecutive failed attempts, drives the backoff
        self.next_attempt_at = 0.0
        self.last_recv_at = 0.0
        self.last_ping_at = 0.0
        self.ping_outstanding = False
        self.ping_sent_ns = 0
        self.last_rtt_ms = -1.0
        self.frames_in = 0
        self.bytes_in = 0
        self.protocol_errors = 0
        self.last_error = ""

    # ---- connection lifecycle -------------------------------------------------------------
    def fileno(self) -> int:
        return self.sock.fileno() if self.sock is not None else -1

    def connect(self) -> bool:
        """Blocking handshake (bounded by connect_timeout_s), then non-blocking; sends the subscriptions."""
        self._drop_socket()
        now = self._clock()
        try:
            ws = websocket.create_connection(
                self.url,
                timeout=self.connect_timeout_s,
                sockopt=((socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),),
                skip_utf8_validation=True,
                enable_multithread=False,
                suppress_origin=True,
            )
        except (OSError, websocket.WebSocketException, ValueError) as exc:
            self.last_error = f"{type(exc).__name__}: {exc}"
            self._schedule_retry(now)
            return False
        self._ws = ws
        self.sock = ws.sock
        self.sock.setblocking(False)
        self._decoder.reset()
        self._outbox.clear()
        self.connected = True
        if self.connects:
            self.reconnects += 1
        self.connects += 1
        self.failures = 0
        self.last_recv_at = now
        self.last_ping_at = now
        self.ping_outstanding = False
        for sub in self.subscriptions:
            self.send_json({"method": "subscribe", "subscription": sub})
        return True

    def _schedule_retry(self, now: float) -> None:
        # Exponential backoff with equal jitter: half fixed, half random, so a fleet does not reconnect in step.
        delay = min(self.backoff_max_s, self.backoff_min_s * (2.0 ** min(self.failures, 30)))
        self.failures += 1
        self.next_attempt_at = now + delay * 0.5 + self._rng.uniform(0.0, delay * 0.5)

    def mark_down(self, reason: str) -> None:
        """Drop the socket and schedule a reconnect attempt."""
        if self.connected:
            self.last_error = reason
        self._drop_socket()
        self._schedule_retry(self._clock())

    def _drop_socket(self) -> None:
        self.connected = False
        if self._ws is not None:
            try:
                self._ws.shutdown()
            except Exception:  # noqa: BLE001 - a dead socket may fail to close; nothing to do
                pass
        self._ws = None
        self.sock = None
        self._outbox.clear()
        self._decoder.reset()

    def close(self) -> None:
        if self.connected and self.sock is not None:
            try:
                self.sock.setblocking(True)
                self.sock.settimeout(0.2)
                self.sock.sendall(encode_client_frame(b"\x03\xe8", OP_CLOSE))
            except OSError:
                pass
        self._drop_socket()
        self.next_attempt_at = float("inf")

    def due_for_reconnect(self, now: float) -> bool:
        return not self.connected and now >= self.next_attempt_at

    # ---- output ---------------------------------------------------------------------------
    def send_json(self, obj: object) -> bool:
        return self.send_text(orjson.dumps(obj))

    def send_text(self, payload: bytes) -> bool:
        """Queue one text frame and try to write it now. False if the connection is down."""
        if not self.connected:
            return False
        self._outbox += encode_client_frame(payload)
        return self.flush()

    def flush(self) -> bool:
        if not self._outbox:
            return True
        try:
            sent = self.sock.send(self._outbox)
        except (BlockingIOError, ssl.SSLWantWriteError, ssl.SSLWantReadError):
            return True
        except OSError as exc:
            self.mark_down(f"send: {exc}")
            return False
        del self._outbox[:sent]
        return True

    @property
    def wants_write(self) -> bool:
        return bool(self._outbox)

    # ---- input ----------------------------------------------------------------------------
    def read_frames(self, out: list) -> int:
        """Drain the socket; append each complete text/binary payload (bytes) to out.

        Handles ping (answers pong), pong and close frames itself. Returns the number appended;
        on a closed or broken connection marks it down (returns what was read before that).
        """
        if not self.connected:
            return 0
        frames = self._frames
        sock = self.sock
        alive = True
        while True:
            try:
                data = sock.recv(READ_CHUNK)
            except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
                break
            except OSError as exc:
                self.mark_down(f"recv: {exc}")
                alive = False
                break
            if not data:
                self.mark_down("closed by peer")
                alive = False
                break
            self.bytes_in += len(data)
            if self._decoder.feed(data, frames) < 0:
                self.protocol_errors += 1
                self.mark_down("protocol error")
                alive = False
                break
            if len(data) < READ_CHUNK and not (isinstance(sock, ssl.SSLSocket) and sock.pending()):
                break
        count = 0
        if frames:
            self.last_recv_at = self._clock()
            for op, payload in frames:
                if op == OP_TEXT or op == OP_BINARY:
                    out.append(payload)
                    count += 1
                elif op == OP_PING and alive:
                    self._outbox += encode_client_frame(payload, OP_PONG)
                    self.flush()
                elif op == OP_CLOSE and alive:
                    self.mark_down("close frame")
                    alive = False
            frames.clear()
            self.frames_in += count
        return count

    # ---- heartbeat ------------------------------------------------------------------------
    def on_pong(self) -> None:
        if self.ping_outstanding:
            self.last_rtt_ms = (time.perf_counter_ns() - self.ping_sent_ns) / 1e6
        self.ping_outstanding = False

    def heartbeat(self, now: float) -> None:
        """Ping when idle for heartbeat_s; declare the link dead if the pong is pong_timeout_s late."""
        if not self.connected:
            return
        if self.ping_outstanding:
            if now - self.last_ping_at > self.pong_timeout_s and now - self.last_recv_at > self.pong_timeout_s:
                self.mark_down("pong timeout")
            return
        if now - self.last_ping_at >= self.heartbeat_s:
            self.last_ping_at = now
            self.ping_outstanding = True
            self.ping_sent_ns = time.perf_counter_ns()
            self.send_text(PING_FRAME)


class Poller:
    """select.poll over the live connections; zero timeout in busy mode."""

    def __init__(self, conns: Iterable[WsConnection]) -> None:
        self.conns = list(conns)
        self._poll = select.poll()
        self._registered: dict[int, tuple[WsConnection, int]] = {}
        self._last_state: list | None = None

    def _sync(self) -> None:
        # cheap change check first: the registrations only move on (re)connects and full send buffers
        state = [(c.sock, c.wants_write) if c.connected else None for c in self.conns]
        if state == self._last_state:
            return
        self._last_state = state
        wanted = {}
        for c in self.conns:
            if c.connected:
                fd = c.fileno()
                wanted[fd] = (c, select.POLLIN | (select.POLLOUT if c.wants_write else 0))
        for fd in list(self._registered):
            if fd not in wanted:
                try:
                    self._poll.unregister(fd)
                except (KeyError, ValueError, OSError):
                    pass
                del self._registered[fd]
        for fd, (c, mask) in wanted.items():
            prev = self._registered.get(fd)
            if prev is None or prev[0] is not c:
                if prev is not None:
                    self._poll.unregister(fd)
                self._poll.register(fd, mask)
            elif prev[1] != mask:
                self._poll.modify(fd, mask)
            self._registered[fd] = (c, mask)

    def poll(self, timeout_ms: int) -> list[WsConnection]:
        """Connections with input (or errors) ready; flushes writable outboxes on the way."""
        self._sync()
        if not self._registered:
            if timeout_ms > 0:
                time.sleep(timeout_ms / 1000.0)
            return []
        ready = []
        for fd, ev in self._poll.poll(timeout_ms):
            entry = self._registered.get(fd)
            if entry is None:
                continue
            conn = entry[0]
            if ev & select.POLLOUT:
                conn.flush()
            if ev & (select.POLLIN | select.POLLERR | select.POLLHUP):
                ready.append(conn)
        return ready
