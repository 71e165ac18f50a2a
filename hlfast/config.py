"""Configuration: a TOML file plus ``HLFAST_<SECTION>_<KEY>`` environment variables.

Every option is declared once, below, with its type, default, allowed range and a one-line
description; the README's option table is generated from the same declarations
(``python -m hlfast.config --markdown``).  Loading produces frozen dataclasses.  An unknown
section or key, a wrong type or an out-of-range value raises :class:`ConfigError` naming the key
and what is allowed.

Precedence: defaults < TOML file < environment < explicit overrides (CLI flags).
"""

from __future__ import annotations

import math
import os
import sys
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, make_dataclass
from typing import Any

ENV_PREFIX = "HLFAST_"


class ConfigError(ValueError):
    """A configuration value is unknown, of the wrong type or out of range."""


@dataclass(frozen=True)
class Option:
    name: str
    kind: type  # bool, int, float, str or list (of str)
    default: Any
    doc: str
    lo: float | None = None
    hi: float | None = None
    choices: tuple[str, ...] | None = None

    def allowed(self) -> str:
        if self.choices:
            return "one of " + ", ".join(repr(c) for c in self.choices)
        if self.kind is bool:
            return "true or false"
        if self.kind is list:
            return "a list of strings"
        lo = "-inf" if self.lo is None else f"{self.lo:g}"
        hi = "inf" if self.hi is None else f"{self.hi:g}"
        if self.kind is str:
            return "a string"
        return f"{self.kind.__name__} in [{lo}, {hi}]"


def _o(name: str, kind: type, default: Any, doc: str, lo: float | None = None, hi: float | None = None,
       choices: tuple[str, ...] | None = None) -> Option:
    return Option(name, kind, default, doc, lo, hi, choices)


INF = math.inf

SCHEMA: dict[str, tuple[str, list[Option]]] = {
    "exchange": ("Where to trade and with which key.", [
        _o("base_url", str, "", "HTTP base URL (no trailing slash); empty = the embedded local venue"),
        _o("account_address", str, "", "account (master) address when trading with an agent/API-wallet key; empty = the key's own address"),
        _o("key_env", str, "HLFAST_PRIVATE_KEY", "environment variable holding the private key (0x-hex)"),
        _o("key_file", str, "", "file holding the private key; used when the env variable is unset"),
        _o("vault_address", str, "", "act for this vault/sub-account (empty = none)"),
        _o("order_path", str, "ws", "how actions are sent: websocket post or HTTP /exchange", choices=("ws", "http")),
        _o("post_timeout_s", float, 5.0, "seconds to wait for an action reply before resyncing", 0.1, 120),
    ]),
    "market": ("What to quote.", [
        _o("coin", str, "BTC", "perp to quote (one engine process per coin)"),
    ]),
    "engine": ("The busy loop.", [
        _o("read_mode", str, "busy", "poll sockets with zero timeout (busy) or block with a timeout", choices=("busy", "blocking")),
        _o("poll_timeout_ms", float, 1.0, "timeout of a blocking poll", 0, 1000),
        _o("pin_core", int, -1, "pin the process to this CPU core (-1 = no pinning)", -1, 4095),
        _o("gc_mode", str, "freeze", "garbage collector in the loop", choices=("on", "off", "freeze")),
        _o("heartbeat_s", float, 20.0, "websocket ping interval", 1, 55),
        _o("status_interval_s", float, 1.0, "live status line interval (0 = off)", 0, 3600),
        _o("hjb_validate_s", float, 60.0, "HJB heuristic-vs-optimum validation interval (0 = off)", 0, 86400),
        _o("dead_man_s", float, 10.0, "scheduleCancel horizon kept armed ahead of now (0 = off; venue minimum is 5)", 0, 3600),
        _o("account_sync_s", float, 10.0, "account check interval: exchange limits, and the position against the "
           "exchange's (limits older than 120 s are halved, algorithms.md §13)", 1, 120),
        _o("fill_check_delay_s", float, 1.0, "grace before a fill that looks missing is checked against the exchange "
           "(a userFills message may trail its orderUpdates)", 0.05, 60),
        _o("runaway_verify_s", float, 5.0, "at most one exchange check of a runaway position per this many seconds",
           0.5, 600),
        _o("reconnect_backoff_min_s", float, 0.2, "first reconnect delay", 0.01, 60),
        _o("reconnect_backoff_max_s", float, 10.0, "largest reconnect delay", 0.1, 600),
        _o("log_json", bool, False, "one JSON object per log line"),
        _o("log_level", str, "INFO", "log level", choices=("DEBUG", "INFO", "WARNING", "ERROR")),
    ]),
    "quoting": ("GLFT quotes and the ladder (algorithms.md §6–§8).", [
        _o("levels", int, 25, "ladder levels per side", 1, 64),
        _o("glft_mode", str, "full", "GLFT closed form: full (A, κ, σ) or the simple ln(1+γ/κ)/γ limit", choices=("full", "simple")),
        _o("gamma", float, 0.1, "base risk aversion γ", 1e-6, 1e3),
        _o("half_spread_mult", float, 1.0, "multiplier on the GLFT half-spread", 0.1, 20),
        _o("skew_mult", float, 1.0, "multiplier on the inventory skew", 0, 20),
        _o("fee_maker_bps", float, 1.5, "maker fee in bp (negative = rebate)", -10, 50),
        _o("fee_taker_bps", float, 4.5, "taker fee in bp", -10, 100),
        _o("min_spread_bps", float, 1.0, "floor on each side's touch depth in bp", 0, 1000),
        _o("horizon_s", float, 30.0, "holding horizon T for the drift term", 0.1, 86400),
        _o("target_size", float, 0.0, "user cap on the quoted size per side in coin units (0 = model-derived only)", 0, INF),
        _o("leverage", float, 5.0, "leverage used for the margin-solvency size bound", 1, 100),
        _o("sigma_prior", float, 2.5e-4, "σ prior per √s (fraction) used during warm-up", 1e-7, 0.1),
        _o("kappa_prior", float, 2000.0, "fill-intensity decay κ prior (per fractional depth)", 50, 1e5),
        _o("a_prior", float, 1.0, "fill intensity at zero depth A prior (fills/s)", 1e-3, 1e3),
        _o("min_notional_safety", float, 1.5, "each level's value ≥ $10 × this", 1, 10),
        _o("kappa_blend", bool, True, "before the κ/A fit is ready (60 s), blend a provisional fit with the priors "
           "by window coverage instead of quoting on the priors (false = algorithms.md §4 as written)"),
        _o("drift_shrink", bool, True, "shrink the drift estimate toward 0 by its own noise (James–Stein), so "
           "sampling noise does not skew the quotes (false = the raw EWMA drift)"),
    ]),
    "impulse": ("Statistical impulse control (algorithms.md §10–§11).", [
        _o("enabled", bool, True, "filter updates by fill-probability gain and gate them by the token budget"),
        _o("initial_tokens", float, 100.0, "execution budget at start (inf = unlimited)", 0, INF),
        _o("max_tokens", float, 500.0, "execution budget cap", 1, INF),
        _o("emergency_reserve", float, 20.0, "tokens only risk cancels may use", 0, INF),
        _o("reward_per_1000", float, 0.5, "tokens earned per $1000 filled", 0, 1000),
        _o("reward_floor", float, 0.5, "minimum tokens earned per fill", 0, 1000),
        _o("bulk_discount", float, 0.8, "cost of each extra item in a bulk action", 0, 1),
        _o("refill_per_s", float, 2.0, "tokens added per second of time, up to max_tokens (0 = fills only, the "
           "rollback). Fills alone leave a maker that is not being filled without tokens, unable to move its orders. "
           "The refill, not the filter, sets the sustained action rate; at 2/s the fills stay within 10 % of the "
           "unfiltered engine's over four synthetic markets (−4 %; +36 % on the BTCUSDT capture) with 75–87 % "
           "fewer actions; 1.5/s loses 22 % of the synthetic fills (sweep in perf/BACKTEST.md)", 0, 1000),
        _o("reuse_unmatched", bool, True, "move a leftover resting order to an unmatched target (one modify) "
           "instead of cancel + place: half the items when the ladder shifts, and the side's size stays committed "
           "(false = algorithms.md §11 as written)"),
        _o("delta_lambda_threshold", float, 0.10, "update only if the relative fill-probability gain Δλ exceeds this", 0, 100),
        _o("min_gain", float, 0.01, "… and the absolute P(fill) gain exceeds this (0 = the relative rule alone; "
           "deep orders otherwise chase one-tick moves)", 0, 1),
        _o("lock_threshold", float, 0.30, "lock orders whose P(fill) exceeds this (1.0 = never lock)", 0, 1),
        _o("lock_override_bps", float, 25.0, "a locked order still moves when the price moved more than this", 0, 10000),
        _o("horizon_s", float, 1.0, "fill-probability horizon H", 0.01, 600),
        _o("match_tolerance_ticks", int, 3, "match resting orders to targets within this many ticks", 0, 10000),
        _o("match_tolerance_bps", float, 2.0, "… or within this many bp, whichever is larger", 0, 10000),
        _o("size_tolerance", float, 0.10, "relative size change below which a matched order is kept", 0, 1),
    ]),
    "calibration": ("Calibration-aware fill-rate controller (algorithms.md §9).", [
        _o("enabled", bool, True, "scale γ by observed vs target fill rate while calibrating"),
        _o("target_fills_per_hour", float, 10.0, "target fill rate", 0.01, 1e6),
        _o("floor", float, 0.3, "lowest γ multiplier", 0.01, 1),
        _o("lookback_s", float, 900.0, "fill-count lookback", 1, 86400),
    ]),
    "hjb": ("HJB optimal-control validation (algorithms.md §12); depths in bp, inventory in order units.", [
        _o("phi", float, 0.01, "inventory penalty φ (bp per unit² per second)", 0, 1e3),
        _o("horizon_s", float, 60.0, "rolling horizon T − t over which the inventory penalty accrues", 1, 86400),
        _o("k_q_bps", float, 2.0, "heuristic: bp of skew per unit of normalised inventory", 0, 1000),
        _o("k_mu_s", float, 1.0, "heuristic: seconds of drift folded into the quotes", 0, 3600),
        _o("k_imb_bps", float, 1.0, "heuristic: bp of tightening per unit of book imbalance", 0, 1000),
    ]),
    "risk": ("Kill switch and limits (algorithms.md §13).", [
        _o("max_position", float, 0.05, "position limit in coin units (asymmetric reduce-only beyond)", 0, INF),
        _o("max_position_value_usd", float, 20000.0, "position value limit; the kill switch trips at 2×", 0, INF),
        _o("max_daily_loss_usd", float, 500.0, "kill switch: session loss", 0, INF),
        _o("max_drawdown_pct", float, 5.0, "kill switch: drawdown from peak equity in percent", 0, 100),
        _o("runaway_mult", float, 2.0, "kill switch: |position| > this × max_position", 1, 100),
        _o("stale_data_s", float, 10.0, "kill switch (transient): no market data for this long", 0.1, 3600),
        _o("rate_limit_errors_max", int, 3, "kill switch (transient): rate-limit replies in 60 s", 1, 10000),
        _o("reject_storm_count", int, 10, "kill switch: rejects within reject_storm_window_s", 1, 100000),
        _o("reject_storm_window_s", float, 10.0, "window for reject_storm_count", 0.1, 3600),
        _o("cooldown_s", float, 30.0, "transient trips recover after this long once healthy", 0, 86400),
        _o("cascade_cooldown_s", float, 0.0, "the cascade detector holds its state this long after the trigger "
           "(0: recovery is left to the kill switch's cooldown_s)", 0, 3600),
        _o("cascade_baseline_half_life_s", float, 600.0, "half-life of the cascade detector's baseline (the event rate "
           "its intensity ratio is measured against); 0 = the fixed μ = 0.01/s, which a busy tape exceeds for ever",
           0, 86400),
        _o("cancel_all_attempts", int, 5, "start-up/shutdown cancel-all attempts", 1, 100),
        _o("cancel_all_interval_ms", float, 500.0, "delay between cancel-all attempts", 0, 60000),
        _o("liquidator_addresses", list, ["0x4c495155494441544f5200000000000000000000"],
           "trade users that mark a trade as a liquidation (feeds the cascade detector); the default is "
           "the embedded venue's liquidator, on Hyperliquid list the liquidator addresses seen in `users`"),
    ]),
    "metrics": ("Prometheus exporter.", [
        _o("enabled", bool, True, "serve /metrics"),
        _o("host", str, "127.0.0.1", "bind address (keep loopback unless you mean it)"),
        _o("port", int, 9464, "port (0 = pick a free one)", 0, 65535),
        _o("snapshot_interval_s", float, 0.25, "how often the loop refreshes the exported snapshot", 0.01, 60),
    ]),
    "paper": ("`hlfast paper`: the embedded venue.", [
        _o("seconds", float, 60.0, "run length", 1, 7 * 86400),
        _o("seed", int, 1, "synthetic market seed", 0, 2**63 - 1),
        _o("block_ms", int, 100, "venue block cadence", 1, 10000),
        _o("latency_ms", float, 0.0, "simulated one-way latency", 0, 10000),
        _o("usdc", float, 100000.0, "paper account balance", 0, INF),
        _o("faults", str, "", "venue fault-injection spec (empty = none)"),
    ]),
}


def _section_class(section: str, options: list[Option]) -> type:
    cls_fields = []
    for opt in options:
        default = opt.default
        if isinstance(default, list):
            cls_fields.append((opt.name, tuple, field(default=tuple(default))))
        else:
            cls_fields.append((opt.name, opt.kind, field(default=default)))
    return make_dataclass(section.capitalize() + "Config", cls_fields, frozen=True)


SECTION_CLASSES = {name: _section_class(name, opts) for name, (_, opts) in SCHEMA.items()}
ExchangeConfig = SECTION_CLASSES["exchange"]
MarketConfig = SECTION_CLASSES["market"]
EngineConfig = SECTION_CLASSES["engine"]
QuotingConfig = SECTION_CLASSES["quoting"]
ImpulseConfig = SECTION_CLASSES["impulse"]
CalibrationConfig = SECTION_CLASSES["calibration"]
HjbConfig = SECTION_CLASSES["hjb"]
RiskConfig = SECTION_CLASSES["risk"]
MetricsConfig = SECTION_CLASSES["metrics"]
PaperConfig = SECTION_CLASSES["paper"]


@dataclass(frozen=True)
class Config:
    exchange: Any = field(default_factory=ExchangeConfig)
    market: Any = field(default_factory=MarketConfig)
    engine: Any = field(default_factory=EngineConfig)
    quoting: Any = field(default_factory=QuotingConfig)
    impulse: Any = field(default_factory=ImpulseConfig)
    calibration: Any = field(default_factory=CalibrationConfig)
    hjb: Any = field(default_factory=HjbConfig)
    risk: Any = field(default_factory=RiskConfig)
    metrics: Any = field(default_factory=MetricsConfig)
    paper: Any = field(default_factory=PaperConfig)


_OPTIONS = {(s, o.name): o for s, (_, opts) in SCHEMA.items() for o in opts}


def _coerce(opt: Option, key: str, value: Any, from_env: bool) -> Any:
    """Return value as opt.kind, or raise ConfigError naming key and the allowed values."""
    bad = ConfigError(f"config key {key!r}: {value!r} is not valid; allowed: {opt.allowed()}")
    if from_env and isinstance(value, str):
        text = value.strip()
        if opt.kind is bool:
            if text.lower() in ("1", "true", "yes", "on"):
                return True
            if text.lower() in ("0", "false", "no", "off"):
                return False
            raise bad
        if opt.kind is int:
            try:
                value = int(text, 0)
            except ValueError:
                raise bad from None
        elif opt.kind is float:
            try:
                value = float(text)
            except ValueError:
                raise bad from None
        elif opt.kind is list:
            value = [part.strip() for part in text.split(",") if part.strip()]
    if opt.kind is bool:
        if not isinstance(value, bool):
            raise bad
        return value
    if opt.kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad
    elif opt.kind is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise bad
        value = float(value)
        if math.isnan(value):
            raise bad
    elif opt.kind is str:
        if not isinstance(value, str):
            raise bad
        if opt.choices and value not in opt.choices:
            raise bad
        return value
    elif opt.kind is list:
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            raise bad
        return tuple(value)
    if (opt.lo is not None and value < opt.lo) or (opt.hi is not None and value > opt.hi):
        raise bad
    return value


def _merge(values: dict[str, dict[str, Any]], data: Mapping[str, Any], origin: str) -> None:
    if not isinstance(data, Mapping):
        raise ConfigError(f"{origin}: expected a table of sections, got {type(data).__name__}")
    for section, table in data.items():
        if section not in SCHEMA:
            raise ConfigError(f"{origin}: unknown section [{section}]; allowed: {', '.join(SCHEMA)}")
        if not isinstance(table, Mapping):
            raise ConfigError(f"{origin}: [{section}] must be a table, got {type(table).__name__}")
        for key, value in table.items():
            opt = _OPTIONS.get((section, key))
            if opt is None:
                known = ", ".join(o.name for o in SCHEMA[section][1])
                raise ConfigError(f"{origin}: unknown key {section}.{key}; keys of [{section}]: {known}")
            values[section][key] = _coerce(opt, f"{section}.{key}", value, from_env=False)


def env_name(section: str, key: str) -> str:
    return f"{ENV_PREFIX}{section.upper()}_{key.upper()}"


def load_config(path: str | os.PathLike | None = None, env: Mapping[str, str] | None = None,
                overrides: Mapping[str, Mapping[str, Any]] | None = None) -> Config:
    """Load defaults, then the TOML file, then HLFAST_* env variables, then overrides."""
    values: dict[str, dict[str, Any]] = {s: {} for s in SCHEMA}
    if path is not None:
        try:
            with open(path, "rb") as fh:
                data = tomllib.load(fh)
        except FileNotFoundError:
            raise ConfigError(f"config file {os.fspath(path)!r} does not exist") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {os.fspath(path)!r} is not valid TOML: {exc}") from None
        _merge(values, data, os.fspath(path))
    env = os.environ if env is None else env
    section_prefixes = {f"{ENV_PREFIX}{s.upper()}_": s for s in SCHEMA}
    for name, raw in env.items():
        if not name.startswith(ENV_PREFIX):
            continue
        for prefix, section in section_prefixes.items():
            if name.startswith(prefix):
                key = name[len(prefix):].lower()
                opt = _OPTIONS.get((section, key))
                if opt is None:
                    known = ", ".join(env_name(section, o.name) for o in SCHEMA[section][1])
                    raise ConfigError(f"environment: unknown variable {name}; known for [{section}]: {known}")
                values[section][key] = _coerce(opt, name, raw, from_env=True)
                break
        # Other HLFAST_* names (the private key variable, build switches) are not options.
    if overrides:
        _merge(values, overrides, "override")
    sections = {s: SECTION_CLASSES[s](**values[s]) for s in SCHEMA}
    cfg = Config(**sections)
    _check_consistency(cfg)
    return cfg


def _check_consistency(cfg: Config) -> None:
    if cfg.impulse.emergency_reserve > cfg.impulse.max_tokens:
        raise ConfigError("impulse.emergency_reserve must be ≤ impulse.max_tokens")
    if cfg.engine.reconnect_backoff_min_s > cfg.engine.reconnect_backoff_max_s:
        raise ConfigError("engine.reconnect_backoff_min_s must be ≤ engine.reconnect_backoff_max_s")
    if cfg.exchange.base_url.endswith("/"):
        raise ConfigError("exchange.base_url must not end with '/' (the API paths are appended to it)")


def markdown_table() -> str:
    """The README's option reference, generated from SCHEMA."""
    lines = []
    for section, (doc, options) in SCHEMA.items():
        lines.append(f"**[{section}]** — {doc}\n")
        lines.append("| key | default | allowed | env | meaning |")
        lines.append("|---|---|---|---|---|")
        for o in options:
            default = o.default if not isinstance(o.default, list) else ",".join(o.default)
            if isinstance(default, bool):
                default = str(default).lower()
            lines.append(f"| `{o.name}` | `{default}` | {o.allowed()} | `{env_name(section, o.name)}` | {o.doc} |")
        lines.append("")
    return "\n".join(lines)


def option_names() -> list[str]:
    return [f"{s}.{o.name}" for s, (_, opts) in SCHEMA.items() for o in opts]


def as_dict(cfg: Config) -> dict[str, dict[str, Any]]:
    return {f.name: {g.name: getattr(getattr(cfg, f.name), g.name) for g in fields(getattr(cfg, f.name))}
            for f in fields(cfg)}


if __name__ == "__main__":  # python -m hlfast.config --markdown
    if "--markdown" in sys.argv:
        print(markdown_table())
