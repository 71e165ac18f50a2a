"""`hlfast venue`: serve the local Hyperliquid-compatible venue in the foreground."""

from __future__ import annotations

import argparse
import logging
import sys

from hlfast.venue.faults import parse_fault_spec
from hlfast.venue.ledger import Fees

DEFAULT_USDC = 100_000.0


def _account(text: str) -> tuple[str, float]:
    address, _, usdc = text.partition(":")
    if not (address.startswith("0x") and len(address) == 42):
        raise argparse.ArgumentTypeError(f"account {text!r}: expected 0x + 40 hex digits, optionally :USDC")
    try:
        int(address[2:], 16)
        balance = float(usdc) if usdc else DEFAULT_USDC
    except ValueError:
        raise argparse.ArgumentTypeError(f"account {text!r}: bad address or USDC amount") from None
    if balance < 0:
        raise argparse.ArgumentTypeError(f"account {text!r}: USDC must be >= 0")
    return address.lower(), balance


def _faults(text: str) -> str:
    try:
        parse_fault_spec(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hlfast venue", description="Local Hyperliquid-compatible venue.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080, help="0 picks a free port (printed at start)")
    parser.add_argument("--coins", default="BTC", help="comma separated, e.g. BTC,ETH")
    parser.add_argument("--account", action="append", type=_account, default=[], metavar="ADDRESS[:USDC]",
                        help=f"funded account, repeatable (default balance {DEFAULT_USDC:,.0f})")
    parser.add_argument("--auto-fund", action="store_true", help="fund any new signer")
    parser.add_argument("--source", default="synthetic", help="synthetic | replay:FILE")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--block-ms", type=int, default=500)
    parser.add_argument("--latency-ms", type=float, default=0.0, help="one-way delay per direction")
    parser.add_argument("--jitter-ms", type=float, default=0.0)
    parser.add_argument("--faults", type=_faults, default=None, metavar="SPEC")
    parser.add_argument("--maker-fee", type=float, default=Fees.maker, help="fraction; negative = rebate")
    parser.add_argument("--taker-fee", type=float, default=Fees.taker, help="fraction")
    parser.add_argument("--queue-model", choices=("risk_averse", "probabilistic"), default="risk_averse")
    parser.add_argument("--signing-source", choices=("a", "b"), default="b",
                        help='phantom agent source: "b" = what clients send for any non-mainnet URL')
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.block_ms <= 0:
        print("hlfast venue: --block-ms must be > 0", file=sys.stderr)
        return 2
    coins = tuple(c.strip() for c in args.coins.split(",") if c.strip())
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    from hlfast.venue.process import run_venue

    def ready(port: int) -> None:
        print(f"venue ready: http://{args.host}:{port}  (ws://{args.host}:{port}/ws)", flush=True)

    try:
        run_venue(
            port=args.port,
            host=args.host,
            on_ready=ready,
            coins=coins,
            accounts=args.account,
            auto_fund=args.auto_fund,
            source=args.source,
            seed=args.seed,
            block_ms=args.block_ms,
            latency_ms=args.latency_ms,
            jitter_ms=args.jitter_ms,
            faults=args.faults,
            fees=Fees(args.maker_fee, args.taker_fee),
            queue_model=args.queue_model,
            signing_source=args.signing_source,
        )
    except (ValueError, OSError) as exc:
        print(f"hlfast venue: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
