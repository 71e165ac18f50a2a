"""`hlfast paper | run | record`: each entry point takes argv and returns an exit code."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import time

import orjson

from hlfast.config import ConfigError, load_config
from hlfast.engine import MAINNET_URL, Engine, EngineError, configure_logging
from hlfast.feed import Poller, WsConnection, ws_url_from_base
from hlfast.keys import KeyLoadError, generate_private_key, load_private_key

log = logging.getLogger("hlfast.app")

MAINNET_WS = "wss://api.hyperliquid.xyz/ws"


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="FILE", help="TOML config file (env HLFAST_* and flags override it)")
    parser.add_argument("--log-json", action="store_true", help="one JSON object per log line")
    parser.add_argument("--log-level", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    parser.add_argument("--metrics-port", type=int, help="Prometheus port (0 = any free port)")


def _load(args: argparse.Namespace, overrides: dict) -> object:
    engine = overrides.setdefault("engine", {})
    if args.log_json:
        engine["log_json"] = True
    if args.log_level:
        engine["log_level"] = args.log_level
    if args.metrics_port is not None:
        overrides.setdefault("metrics", {})["port"] = args.metrics_port
    return load_config(args.config, overrides=overrides)


def main_paper(argv: list[str]) -> int:
    """Paper-trade against the embedded venue (synthetic market) in a child process."""
    parser = argparse.ArgumentParser(prog="hlfast paper", description=main_paper.__doc__)
    parser.add_argument("--seconds", type=float, help="run length (default: config paper.seconds, 60)")
    parser.add_argument("--coin", help="perp to quote (default BTC)")
    parser.add_argument("--seed", type=int, help="synthetic market seed")
    parser.add_argument("--block-ms", type=int, help="venue block cadence")
    parser.add_argument("--faults", help="venue fault-injection spec, e.g. 'disconnect_every=10,malformed=0.01'")
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON object on stdout")
    parser.add_argument("--no-status", action="store_true", help="no live status line")
    _common(parser)
    args = parser.parse_args(argv)
    overrides: dict = {"paper": {}, "market": {}}
    for name, section, key in (("seconds", "paper", "seconds"), ("seed", "paper", "seed"),
                               ("block_ms", "paper", "block_ms"), ("faults", "paper", "faults"),
                               ("coin", "market", "coin")):
        value = getattr(args, name)
        if value is not None:
            overrides[section][key] = value
    try:
        cfg = _load(args, overrides)
    except ConfigError as exc:
        print(f"hlfast paper: {exc}", file=sys.stderr)
        return 2
    configure_logging(cfg.engine.log_level if args.log_level or args.config else "WARNING", cfg.engine.log_json)
    from hlfast.venue.process import VenueProcess

    key = generate_private_key()  # throw-away: the venue funds it, nothing else ever sees it
    paper = cfg.paper
    venue = VenueProcess(coins=(cfg.market.coin,), accounts=[(key.address, paper.usdc)], seed=paper.seed,
                         block_ms=paper.block_ms, latency_ms=paper.latency_ms, faults=paper.faults or None)
    try:
        base_url = venue.start()
    except (RuntimeError, OSError) as exc:
        print(f"hlfast paper: the local venue did not start: {exc}", file=sys.stderr)
        return 1
    try:
        engine = Engine(cfg, key, base_url=base_url, install_signals=True,
                        status_stream=None if args.no_status else sys.stderr,
                        metrics_port=args.metrics_port)
        engine.setup()
        summary = engine.run(paper.seconds)
    except EngineError as exc:
        print(f"hlfast paper: {exc}", file=sys.stderr)
        return 1
    finally:
        venue.stop()
    if args.json:
        sys.stdout.write(orjson.dumps(summary.to_dict()).decode() + "\n")
    else:
        print(summary.text())
    return 0


def main_run(argv: list[str]) -> int:
    """Trade on testnet or mainnet (the URL is in the config)."""
    parser = argparse.ArgumentParser(prog="hlfast run", description=main_run.__doc__)
    parser.add_argument("--mainnet", action="store_true", help="required to trade on the mainnet URL")
    parser.add_argument("--seconds", type=float, help="stop after this long (default: until SIGINT/SIGTERM)")
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    _common(parser)
    args = parser.parse_args(argv)
    if not args.config:
        print("hlfast run: --config FILE is required", file=sys.stderr)
        return 2
    try:
        cfg = _load(args, {})
    except ConfigError as exc:
        print(f"hlfast run: {exc}", file=sys.stderr)
        return 2
    configure_logging(cfg.engine.log_level, cfg.engine.log_json)
    base_url = cfg.exchange.base_url.rstrip("/")
    if not base_url:
        print("hlfast run: exchange.base_url is empty (use `hlfast paper` for the local venue)", file=sys.stderr)
        return 2
    if base_url == MAINNET_URL and not args.mainnet:
        print(f"hlfast run: {base_url} is MAINNET; pass --mainnet to trade real funds", file=sys.stderr)
        return 2
    try:
        key = load_private_key(cfg.exchange.key_env, cfg.exchange.key_file or None,
                               account_address=cfg.exchange.account_address or None)
    except KeyLoadError as exc:
        print(f"hlfast run: {exc}", file=sys.stderr)
        return 2
    try:
        engine = Engine(cfg, key, base_url=base_url, install_signals=True,
                        status_stream=sys.stderr if cfg.engine.status_interval_s > 0 else None,
                        metrics_port=args.metrics_port)
        engine.setup()
        summary = engine.run(args.seconds)
    except EngineError as exc:
        print(f"hlfast run: {exc}", file=sys.stderr)
        return 1
    if args.json:
        sys.stdout.write(orjson.dumps(summary.to_dict()).decode() + "\n")
    else:
        print(summary.text())
    return 0


def main_record(argv: list[str]) -> int:
    """Record raw websocket frames with receive timestamps (`<ns> <frame>` lines; .gz compresses)."""
    parser = argparse.ArgumentParser(prog="hlfast record", description=main_record.__doc__)
    parser.add_argument("--coin", default="BTC")
    parser.add_argument("--out", required=True, metavar="FILE")
    parser.add_argument("--url", default=MAINNET_WS, help="websocket URL or HTTP base URL (default mainnet)")
    parser.add_argument("--seconds", type=float, default=0.0, help="stop after this long (0 = until SIGINT)")
    parser.add_argument("--bbo", action="store_true", help="also record the bbo channel")
    args = parser.parse_args(argv)
    configure_logging("INFO")
    url = args.url if args.url.startswith("ws") else ws_url_from_base(args.url)
    subs = [{"type": "l2Book", "coin": args.coin}, {"type": "trades", "coin": args.coin}]
    if args.bbo:
        subs.append({"type": "bbo", "coin": args.coin})
    conn = WsConnection(url, "record", subs, heartbeat_s=20.0)
    stop = {"flag": False}

    def on_signal(signum: int, frame: object) -> None:
        if stop["flag"]:
            sys.exit(1)
        stop["flag"] = True

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        return _record_loop(conn, args, stop, url)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _record_loop(conn: WsConnection, args: argparse.Namespace, stop: dict, url: str) -> int:
    from hlfast.recording import FrameWriter

    if not conn.connect():
        print(f"hlfast record: cannot connect to {url}: {conn.last_error}", file=sys.stderr)
        return 1
    poller = Poller([conn])
    frames: list[bytes] = []
    written = 0
    deadline = time.monotonic() + args.seconds if args.seconds > 0 else float("inf")
    with FrameWriter(args.out) as writer:
        while not stop["flag"] and time.monotonic() < deadline:
            now = time.monotonic()
            if not conn.connected:
                if conn.due_for_reconnect(now):
                    conn.connect()
                else:
                    time.sleep(0.05)
                continue
            for c in poller.poll(100):
                c.read_frames(frames)
            if frames:
                recv_ns = time.time_ns()
                for raw in frames:
                    if raw == b'{"channel":"pong"}':
                        conn.on_pong()
                        continue
                    writer.write(recv_ns, raw)
                    written += 1
                frames.clear()
            conn.heartbeat(now)
    conn.close()
    print(f"recorded {written} frames to {args.out} ({conn.reconnects} reconnects)", file=sys.stderr)
    return 0
