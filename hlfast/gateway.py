"""Order entry: signed actions over websocket ``post`` matched to replies by id, HTTP /exchange fallback.

A post whose reply does not come within ``post_timeout_s`` is reported as lost; the engine then
resyncs open orders from /info instead of guessing what happened to it.
"""

from __future__ import annotations

import http.client
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import orjson

from hlfast.feed import WsConnection


@dataclass(slots=True)
class PendingPost:
    post_id: int
    kind: str  # "order" | "cancel" | "cancelByCloid" | "batchModify" | "scheduleCancel" | "info" | ...
    sent_at: float
    sent_ns: int
    context: object = None
    n_items: int = 1


@dataclass(slots=True)
class PostReply:
    post_id: int
    kind: str
    ok: bool  # the action was accepted as a whole ("status":"ok")
    body: object  # the /exchange JSON (or the info data)
    context: object
    rtt_ms: float
    error: str = ""


@dataclass(slots=True)
class GatewayStats:
    posts: int = 0
    replies: int = 0
    timeouts: int = 0
    http_posts: int = 0
    http_errors: int = 0
    unmatched_replies: int = 0
    errors: int = 0
    by_kind: dict = field(default_factory=dict)


def post_frame(post_id: int, payload: dict | bytes, request_type: str = "action") -> bytes:
    """The ws post envelope around an /exchange body (dict or already-serialised JSON bytes)."""
    if isinstance(payload, bytes | bytearray):
        return b'{"method":"post","id":%d,"request":{"type":"%s","payload":%s}}' % (
            post_id, request_type.encode(), bytes(payload))
    return orjson.dumps({"method": "post", "id": post_id, "request": {"type": request_type, "payload": payload}})


def action_error(body: object) -> str:
    """The whole-action error text of an /exchange reply, or "" when it was accepted."""
    if isinstance(body, dict):
        if body.get("status") == "ok":
            return ""
        resp = body.get("response")
        return resp if isinstance(resp, str) else orjson.dumps(resp).decode()
    return str(body)


class HttpClient:
    """Keep-alive JSON POST client for /info and /exchange (stdlib, no per-request set-up)."""

    def __init__(self, base_url: str, timeout_s: float = 5.0) -> None:
        parts = urlsplit(base_url.rstrip("/"))
        self.scheme = parts.scheme
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port
        self.prefix = parts.path
        self.timeout_s = timeout_s
        self._conn: http.client.HTTPConnection | None = None

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            cls = http.client.HTTPSConnection if self.scheme == "https" else http.client.HTTPConnection
            self._conn = cls(self.host, self.port, timeout=self.timeout_s)
        return self._conn

    def post(self, path: str, body: dict | bytes) -> object:
        data = body if isinstance(body, bytes) else orjson.dumps(body)
        headers = {"Content-Type": "application/json"}
        for attempt in range(2):  # one retry on a stale keep-alive socket
            conn = self._connection()
            try:
                conn.request("POST", self.prefix + path, body=data, headers=headers)
                resp = conn.getresponse()
                raw = resp.read()
            except (OSError, http.client.HTTPException):
                self.close()
                if attempt:
                    raise
                continue
            if resp.status != 200:
                raise HttpError(resp.status, raw[:200].decode(errors="replace"))
            return orjson.loads(raw)
        raise HttpError(0, "unreachable")

    def info(self, body: dict) -> object:
        return self.post("/info", body)

    def exchange(self, payload: dict | bytes) -> object:
        return self.post("/exchange", payload)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class HttpError(Exception):
    def __init__(self, status: int, text: str) -> None:
        super().__init__(f"HTTP {status}: {text}")
        self.status = status
        self.text = text


class Gateway:
    """Sends signed actions and matches replies. Never raises into the loop: errors become replies."""

    def __init__(
        self,
        conn: WsConnection | None,
        http: HttpClient | None,
        *,
        order_path: str = "ws",
        post_timeout_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if order_path not in ("ws", "http"):
            raise ValueError(f"order_path must be 'ws' or 'http', got {order_path!r}")
        self.conn = conn
        self.http = http
        self.order_path = order_path
        self.post_timeout_s = post_timeout_s
        self._clock = clock
        self._next_id = 1
        self.pending: dict[int, PendingPost] = {}
        self.stats = GatewayStats()
        self._replies: list[PostReply] = []

    @property
    def in_flight(self) -> int:
        return len(self.pending)

    def send_action(self, payload: dict | bytes, kind: str, context: object = None, n_items: int = 1) -> int:
        """Send one signed /exchange body; returns its post id. The reply arrives via on_post/drain."""
        post_id = self._next_id
        self._next_id += 1
        self.stats.posts += 1
        self.stats.by_kind[kind] = self.stats.by_kind.get(kind, 0) + 1
        now_ns = time.perf_counter_ns()
        pending = PendingPost(post_id, kind, self._clock(), now_ns, context, n_items)
        if self.order_path == "ws" and self.conn is not None and self.conn.connected:
            self.pending[post_id] = pending
            if self.conn.send_text(post_frame(post_id, payload)):
                return post_id
            del self.pending[post_id]
        self._send_http(pending, payload)
        return post_id

    def _send_http(self, pending: PendingPost, payload: dict | bytes) -> None:
        if self.http is None:
            self.stats.errors += 1
            self._replies.append(PostReply(pending.post_id, pending.kind, False, None, pending.context, 0.0,
                                           "no order path available"))
            return
        self.stats.http_posts += 1
        try:
            body = self.http.exchange(payload)
        except (HttpError, OSError, http.client.HTTPException, ValueError) as exc:
            self.stats.http_errors += 1
            self._replies.append(PostReply(pending.post_id, pending.kind, False, None, pending.context, 0.0,
                                           f"http: {exc}"))
            return
        rtt = (time.perf_counter_ns() - pending.sent_ns) / 1e6
        err = action_error(body)
        self.stats.replies += 1
        self._replies.append(PostReply(pending.post_id, pending.kind, not err, body, pending.context, rtt, err))

    def on_post(self, data: object) -> PostReply | None:
        """Handle the data of a {"channel":"post"} frame; returns the matched reply (also queued)."""
        if not isinstance(data, dict):
            self.stats.unmatched_replies += 1
            return None
        post_id = data.get("id")
        pending = self.pending.pop(post_id, None) if isinstance(post_id, int) else None
        if pending is None:
            self.stats.unmatched_replies += 1
            return None
        rtt = (time.perf_counter_ns() - pending.sent_ns) / 1e6
        response = data.get("response")
        rtype = response.get("type") if isinstance(response, dict) else None
        payload = response.get("payload") if isinstance(response, dict) else None
        if rtype == "action":
            err = action_error(payload)
            reply = PostReply(post_id, pending.kind, not err, payload, pending.context, rtt, err)
        elif rtype == "info":
            reply = PostReply(post_id, pending.kind, True, payload, pending.context, rtt)
        else:
            self.stats.errors += 1
            reply = PostReply(post_id, pending.kind, False, payload, pending.context, rtt,
                              str(payload) if payload is not None else "malformed post reply")
        self.stats.replies += 1
        self._replies.append(reply)
        return reply

    def on_channel_error(self, text: str) -> PostReply | None:
        """A request-level {"channel":"error"} ending in "id=<n>" fails that post."""
        idx = text.rfind("id=")
        if idx < 0:
            return None
        try:
            post_id = int(text[idx + 3:].strip().rstrip("."))
        except ValueError:
            return None
        pending = self.pending.pop(post_id, None)
        if pending is None:
            return None
        self.stats.errors += 1
        reply = PostReply(post_id, pending.kind, False, None, pending.context, 0.0, text)
        self._replies.append(reply)
        return reply

    def expire(self, now: float) -> list[PendingPost]:
        """Posts whose reply is overdue (lost): removed and returned so the caller can resync."""
        if not self.pending:
            return []
        lost = [p for p in self.pending.values() if now - p.sent_at > self.post_timeout_s]
        for p in lost:
            del self.pending[p.post_id]
        self.stats.timeouts += len(lost)
        return lost

    def fail_all_pending(self) -> list[PendingPost]:
        """On a disconnect every in-flight post is unknown: hand them back for resync."""
        lost = list(self.pending.values())
        self.pending.clear()
        self.stats.timeouts += len(lost)
        return lost

    @property
    def has_replies(self) -> bool:
        return bool(self._replies)

    def drain(self) -> list[PostReply]:
        """Replies gathered since the last call (ws matches and HTTP results)."""
        if not self._replies:
            return []
        out = self._replies
        self._replies = []
        return out
