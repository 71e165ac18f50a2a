"""The `hlfast` console script: one subcommand per job, each implemented in its own module."""

from __future__ import annotations

import importlib
import sys

# subcommand -> (module, function, one-line help). Each function takes argv and returns an exit code.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "paper": ("hlfast.app", "main_paper", "paper-trade against the embedded local venue (the main job)"),
    "run": ("hlfast.app", "main_run", "trade on testnet/mainnet with a config file"),
    "venue": ("hlfast.venue.cli", "main", "run the local Hyperliquid-compatible venue"),
    "record": ("hlfast.app", "main_record", "record raw websocket frames to a replay file"),
    "convert": ("hlfast.convert", "main", "convert the Binance capture to Hyperliquid-shaped frames"),
    "backtest": ("hlfast.backtest", "main", "replay recorded frames through the engine's decision code"),
    "bench": ("hlfast.bench", "main", "run the perf/ benchmark scripts"),
}

USAGE = "usage: hlfast <command> [options]\n\ncommands:\n" + "\n".join(
    f"  {name:<9} {help_}" for name, (_, _, help_) in COMMANDS.items()
) + "\n\n`hlfast <command> --help` shows a command's options."


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"hlfast: unknown command {name!r}\n\n{USAGE}", file=sys.stderr)
        return 2
    module_name, func_name, _ = COMMANDS[name]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise
        print(f"hlfast {name}: not available in this build yet ({module_name} is not implemented)",
              file=sys.stderr)
        return 2
    return int(getattr(module, func_name)(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
