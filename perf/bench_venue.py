"""Throughput and loopback latency of the local venue.

Measures, against a venue child process on 127.0.0.1:
- actions/s accepted over websocket `post` (pipelined, up to 64 in flight) and serial request latency p50/p99;
- actions/s over HTTP /exchange (one keep-alive session, serial) with p50/p99 latency;
- frames/s published (l2Book snapshots and everything else) with a client connected, at a 2 ms block clock.
Actions alternate an ALO order far from the market and its cancelByCloid; all are signed ahead of time.

    python perf/bench_venue.py [--json] [--actions N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from pathlib import Path

import orjson
import requests
import websocket
from coincurve import PrivateKey

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _bench import percentile  # noqa: E402

from hlfast.venue.auth import action_connection_id, keccak256, l1_digest  # noqa: E402
from hlfast.venue.process import VenueProcess  # noqa: E402

KEY = bytes.fromhex("0123456789012345678901234567890123456789012345678901234567890123")
PRIVATE = PrivateKey(KEY)
ADDRESS = "0x" + keccak256(PRIVATE.public_key.format(compressed=False)[1:])[-20:].hex()
WINDOW = 64


def sign_body(action: dict, nonce: int) -> dict:
    digest = l1_digest(action_connection_id(action, nonce, None, None), "b")
    sig = PRIVATE.sign_recoverable(digest, hasher=None)
    signature = {"r": "0x" + sig[:32].hex(), "s": "0x" + sig[32:64].hex(), "v": 27 + sig[64]}
    return {"action": action, "nonce": nonce, "signature": signature, "vaultAddress": None, "expiresAfter": None}


def make_actions(count: int, nonce0: int, cloid0: int) -> list[dict]:
    bodies = []
    for i in range(count // 2):
        cloid = f"0x{cloid0 + i:032x}"
        wire = {"a": 0, "b": True, "p": "30000", "s": "0.001", "r": False, "t": {"limit": {"tif": "Alo"}}, "c": cloid}
        bodies.append(sign_body({"type": "order", "orders": [wire], "grouping": "na"}, nonce0 + 2 * i))
        bodies.append(sign_body({"type": "cancelByCloid", "cancels": [{"asset": 0, "cloid": cloid}]}, nonce0 + 2 * i + 1))
    return bodies


def accepted(reply: dict) -> bool:
    if reply.get("status") != "ok":
        return False
    statuses = reply["response"].get("data", {}).get("statuses", [])
    return all(not (isinstance(s, dict) and "error" in s) for s in statuses)


def bench_ws(url: str, bodies: list[dict], serial: int) -> dict:
    ws = websocket.create_connection(url, timeout=10)
    frames = [orjson.dumps({"method": "post", "id": i, "request": {"type": "action", "payload": b}})
              for i, b in enumerate(bodies)]
    latencies = []
    for frame in frames[:serial]:
        t0 = time.perf_counter_ns()
        ws.send(frame)
        while orjson.loads(ws.recv())["channel"] != "post":
            pass
        latencies.append((time.perf_counter_ns() - t0) / 1000.0)
    rest = frames[serial:]
    in_flight = threading.Semaphore(WINDOW)
    ok = 0

    def sender() -> None:
        for frame in rest:
            in_flight.acquire()
            ws.send(frame)

    t0 = time.perf_counter()
    thread = threading.Thread(target=sender, daemon=True)
    thread.start()
    received = 0
    while received < len(rest):
        msg = orjson.loads(ws.recv())
        if msg["channel"] != "post":
            continue
        received += 1
        in_flight.release()
        ok += accepted(msg["data"]["response"]["payload"])
    elapsed = time.perf_counter() - t0
    thread.join()
    ws.close()
    return {
        "ws_actions_per_s": received / elapsed,
        "ws_accepted": ok,
        "ws_sent": len(rest),
        "ws_p50_us": statistics.median(latencies),
        "ws_p99_us": percentile(latencies, 0.99),
    }


def bench_http(base_url: str, bodies: list[dict]) -> dict:
    session = requests.Session()
    latencies = []
    ok = 0
    t0 = time.perf_counter()
    for body in bodies:
        data = orjson.dumps(body)
        t1 = time.perf_counter_ns()
        reply = session.post(base_url + "/exchange", data=data, headers={"Content-Type": "application/json"})
        latencies.append((time.perf_counter_ns() - t1) / 1000.0)
        ok += accepted(reply.json())
    elapsed = time.perf_counter() - t0
    return {
        "http_actions_per_s": len(bodies) / elapsed,
        "http_accepted": ok,
        "http_sent": len(bodies),
        "http_p50_us": statistics.median(latencies),
        "http_p99_us": percentile(latencies, 0.99),
    }


def bench_frames(seconds: float) -> dict:
    with VenueProcess(coins=("BTC", "ETH"), block_ms=2, seed=1) as venue:
        ws = websocket.create_connection(venue.ws_url, timeout=10)
        for sub in ({"type": "l2Book", "coin": "BTC"}, {"type": "l2Book", "coin": "ETH"},
                    {"type": "trades", "coin": "BTC"}, {"type": "bbo", "coin": "BTC"}, {"type": "allMids"}):
            ws.send(orjson.dumps({"method": "subscribe", "subscription": sub}))
        books = frames = 0
        deadline = time.perf_counter() + 0.5
        while time.perf_counter() < deadline:  # warm up
            ws.recv()
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            raw = ws.recv()
            frames += 1
            if raw.startswith('{"channel":"l2Book"'):
                books += 1
        elapsed = time.perf_counter() - t0
        ws.close()
    return {"book_snapshots_per_s": books / elapsed, "frames_per_s": frames / elapsed}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--actions", type=int, default=4000, help="actions over ws post (HTTP gets half)")
    parser.add_argument("--seconds", type=float, default=3.0, help="frame-rate measurement window")
    args = parser.parse_args(argv)
    nonce0 = int(time.time() * 1000)
    ws_bodies = make_actions(args.actions, nonce0, 1)
    http_bodies = make_actions(args.actions // 2, nonce0 + args.actions + 10, 10**9)
    serial = min(500, len(ws_bodies) // 4)
    with VenueProcess(coins=("BTC",), accounts=[(ADDRESS, 1e9)], block_ms=500, seed=1) as venue:
        result = {"actions": args.actions}
        result.update(bench_ws(venue.ws_url, ws_bodies, serial))
        result.update(bench_http(venue.base_url, http_bodies))
    result.update(bench_frames(args.seconds))
    if args.json:
        print(orjson.dumps(result).decode())
        return 0
    print(f"ws post   : {result['ws_actions_per_s']:8.0f} actions/s accepted {result['ws_accepted']}/{result['ws_sent']}"
          f"  (pipelined, {WINDOW} in flight; target >= 2000)")
    print(f"ws post   : serial latency p50 {result['ws_p50_us']:7.0f} us  p99 {result['ws_p99_us']:7.0f} us")
    print(f"http      : {result['http_actions_per_s']:8.0f} actions/s accepted {result['http_accepted']}/"
          f"{result['http_sent']}  latency p50 {result['http_p50_us']:7.0f} us  p99 {result['http_p99_us']:7.0f} us")
    print(f"published : {result['book_snapshots_per_s']:8.0f} l2Book snapshots/s (2 coins, target >= 200), "
          f"{result['frames_per_s']:.0f} frames/s total")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
