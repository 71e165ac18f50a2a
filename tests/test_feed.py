"""Websocket feed: framing, non-blocking reads of split frames, ping/pong, reconnect with backoff."""

from __future__ import annotations

import base64
import hashlib
import random
import socket
import threading
import time

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hlfast.feed import (
    OP_CLOSE,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    FrameDecoder,
    Poller,
    WsConnection,
    encode_client_frame,
    ws_url_from_base,
)

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def server_frame(payload: bytes, opcode: int = OP_TEXT, fin: bool = True) -> bytes:
    n = len(payload)
    head = bytearray([(0x80 if fin else 0) | opcode])
    if n < 126:
        head.append(n)
    elif n < 65536:
        head.append(126)
        head += n.to_bytes(2, "big")
    else:
        head.append(127)
        head += n.to_bytes(8, "big")
    return bytes(head) + payload


class TinyWsServer:
    """A minimal RFC 6455 server on loopback: records client frames, sends what the test asks."""

    def __init__(self) -> None:
        self.lsock = socket.socket()
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(8)
        self.port = self.lsock.getsockname()[1]
        self.clients: list[socket.socket] = []
        self.received: list[tuple[int, bytes]] = []
        self._stop = False
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def _accept_loop(self) -> None:
        while not self._stop:
            try:
                c, _ = self.lsock.accept()
            except OSError:
                return
            req = b""
            while b"\r\n\r\n" not in req:
                req += c.recv(4096)
            key = [ln.split(b":", 1)[1].strip() for ln in req.split(b"\r\n") if ln.lower().startswith(b"sec-websocket-key")][0]
            accept = base64.b64encode(hashlib.sha1(key + GUID.encode()).digest())
            c.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n")
            self.clients.append(c)
            threading.Thread(target=self._read_loop, args=(c,), daemon=True).start()

    def _read_loop(self, c: socket.socket) -> None:
        dec = FrameDecoder()
        out: list = []
        while True:
            try:
                data = c.recv(65536)
            except OSError:
                return
            if not data:
                return
            dec.feed(data, out)
            self.received.extend(out)
            out.clear()

    def texts(self) -> list[dict]:
        return [orjson.loads(p) for op, p in self.received if op == OP_TEXT]

    def send_raw(self, data: bytes, client: int = -1) -> None:
        self.clients[client].sendall(data)

    def drop(self, client: int = -1) -> None:
        self.clients[client].shutdown(socket.SHUT_RDWR)
        self.clients[client].close()

    def close(self) -> None:
        self._stop = True
        self.lsock.close()
        for c in self.clients:
            try:
                c.close()
            except OSError:
                pass


def wait_for(pred, timeout=3.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.005)
    return False


def read_until(conn: WsConnection, n: int, timeout: float = 3.0) -> list[bytes]:
    out: list[bytes] = []
    end = time.monotonic() + timeout
    while len(out) < n and time.monotonic() < end:
        conn.read_frames(out)
        time.sleep(0.001)
    return out


@pytest.fixture
def server():
    s = TinyWsServer()
    yield s
    s.close()


def test_ws_url_follows_the_sdk_rule():
    assert ws_url_from_base("http://127.0.0.1:8080") == "ws://127.0.0.1:8080/ws"
    assert ws_url_from_base("https://api.hyperliquid.xyz") == "wss://api.hyperliquid.xyz/ws"
    assert ws_url_from_base("ws://h:1/ws") == "ws://h:1/ws"


@given(st.binary(max_size=70000), st.integers(min_value=1, max_value=5000))
@settings(deadline=None, max_examples=40)
def test_client_frames_decode_to_the_payload_in_any_split(payload, chunk):
    frame = encode_client_frame(payload)
    assert frame[1] & 0x80  # client frames are masked
    dec = FrameDecoder()
    out: list = []
    for i in range(0, len(frame), chunk):
        dec.feed(frame[i:i + chunk], out)
    assert out == [(OP_TEXT, payload)]


def test_fragmented_and_control_frames_are_reassembled():
    dec = FrameDecoder()
    out: list = []
    data = (server_frame(b'{"a":', OP_TEXT, fin=False) + server_frame(b"ping", OP_PING)
            + server_frame(b'1}', 0, fin=True))
    dec.feed(data, out)
    assert out == [(OP_PING, b"ping"), (OP_TEXT, b'{"a":1}')]


def test_oversized_length_is_a_protocol_error():
    dec = FrameDecoder()
    assert dec.feed(bytes([0x81, 127]) + (1 << 40).to_bytes(8, "big"), []) == -1
    assert dec.errors == 1


def test_connect_subscribes_and_reads_split_frames_without_blocking(server):
    subs = [{"type": "l2Book", "coin": "BTC"}, {"type": "trades", "coin": "BTC"}]
    conn = WsConnection(server.url, "md", subs)
    assert conn.connect()
    assert conn.sock.gettimeout() == 0.0
    assert conn.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
    assert wait_for(lambda: len(server.texts()) == 2)
    assert [m["subscription"] for m in server.texts()] == subs
    # nothing pending: returns at once with nothing
    t0 = time.monotonic()
    assert conn.read_frames([]) == 0
    assert time.monotonic() - t0 < 0.5
    big = orjson.dumps({"channel": "l2Book", "data": {"x": "y" * 100_000}})
    frame = server_frame(big)
    server.send_raw(frame[:3])  # a header split mid-way
    time.sleep(0.02)
    out: list = []
    assert conn.read_frames(out) == 0 and conn.connected
    server.send_raw(frame[3:50000])
    time.sleep(0.02)
    assert conn.read_frames(out) == 0
    server.send_raw(frame[50000:] + server_frame(b'{"channel":"pong"}'))
    got = read_until(conn, 2)
    assert got == [big, b'{"channel":"pong"}']
    assert conn.frames_in == 2
    conn.close()


def test_server_ping_gets_a_pong_and_client_heartbeat_pings(server):
    now = [100.0]
    conn = WsConnection(server.url, "orders", [], heartbeat_s=5.0, pong_timeout_s=2.0, clock=lambda: now[0])
    assert conn.connect()
    server.send_raw(server_frame(b"hb", OP_PING))
    assert wait_for(lambda: (conn.read_frames([]) or True) and (OP_PONG, b"hb") in server.received)
    now[0] += 5.0
    conn.heartbeat(now[0])
    assert wait_for(lambda: {"method": "ping"} in server.texts())
    assert conn.ping_outstanding
    conn.on_pong()
    assert not conn.ping_outstanding and conn.last_rtt_ms >= 0
    # a ping that is never answered, on a quiet link, declares the link dead
    now[0] += 5.0
    conn.heartbeat(now[0])
    now[0] += 2.5
    conn.heartbeat(now[0])
    assert not conn.connected and conn.last_error == "pong timeout"


def test_drop_is_detected_then_reconnect_resubscribes_with_jittered_backoff(server):
    now = [0.0]
    subs = [{"type": "bbo", "coin": "BTC"}]
    conn = WsConnection(server.url, "md", subs, backoff_min_s=0.5, backoff_max_s=4.0,
                        rng=random.Random(7), clock=lambda: now[0])
    assert conn.connect()
    assert wait_for(lambda: len(server.texts()) == 1)
    server.drop()
    assert wait_for(lambda: (conn.read_frames([]) or True) and not conn.connected)
    assert 0.25 <= conn.next_attempt_at - now[0] <= 0.5  # equal jitter of the first delay
    assert not conn.due_for_reconnect(now[0])
    # failed attempts grow the delay up to the cap
    delays = []
    for _ in range(6):
        conn._schedule_retry(now[0])
        delays.append(conn.next_attempt_at - now[0])
    assert all(d <= 4.0 for d in delays) and delays[-1] >= 2.0
    now[0] = conn.next_attempt_at
    assert conn.due_for_reconnect(now[0])
    assert conn.connect()
    assert conn.reconnects == 1 and conn.failures == 0
    assert wait_for(lambda: len(server.texts()) == 2)
    assert server.texts()[-1] == {"method": "subscribe", "subscription": subs[0]}
    conn.close()
    assert (OP_CLOSE, b"\x03\xe8") in server.received or wait_for(lambda: (OP_CLOSE, b"\x03\xe8") in server.received)


def test_connect_failure_schedules_retry():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there
    conn = WsConnection(f"ws://127.0.0.1:{port}/ws", "md", connect_timeout_s=0.5, clock=lambda: 10.0)
    assert not conn.connect()
    assert conn.failures == 1 and conn.next_attempt_at > 10.0 and conn.last_error


def test_poller_reports_only_ready_connections(server):
    a = WsConnection(server.url, "a")
    b = WsConnection(server.url, "b")
    assert a.connect() and b.connect()
    assert wait_for(lambda: len(server.clients) == 2)
    poller = Poller([a, b])
    assert poller.poll(0) == []
    server.send_raw(server_frame(b'{"x":1}'), client=1)
    ready: list = []
    assert wait_for(lambda: bool(ready.extend(poller.poll(0)) or ready))
    assert ready == [b]
    out: list = []
    assert read_until(b, 1) == [b'{"x":1}'] or out
    a.close()
    b.close()
