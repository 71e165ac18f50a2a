"""`hlfast paper` end to end (venue child + engine over loopback) and `hlfast run`'s mainnet guard."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson

from hlfast.app import main_run

ROOT = Path(__file__).resolve().parents[1]
KEYS = ("pnl", "fills", "volume", "position", "actions", "impulse", "ticks", "tick_to_order_us", "rejects",
        "reconnects", "resting_orders_at_exit")


def test_hlfast_paper_json_summary():
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-m", "hlfast.cli", "paper", "--seconds", "4", "--block-ms", "25",
                           "--json", "--metrics-port", "0"],
                          capture_output=True, timeout=60, env=env, cwd=str(ROOT))
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    summary = orjson.loads(proc.stdout.splitlines()[-1])
    for key in KEYS:
        assert key in summary
    assert set(summary["tick_to_order_us"]) >= {"p50", "p99"}
    assert summary["tick_to_order_us"]["p50"] > 0
    assert summary["ticks"] > 50  # 4 s of 25 ms blocks
    assert summary["actions"].get("order", 0) >= 1
    assert {"filter_skipped", "locked", "budget_skipped"} <= set(summary["impulse"])
    assert summary["resting_orders_at_exit"] == 0
    assert "t=" in proc.stderr.decode()  # the live status line


def test_hlfast_run_refuses_mainnet_without_flag(tmp_path, capsys):
    cfg = tmp_path / "main.toml"
    cfg.write_text('[exchange]\nbase_url = "https://api.hyperliquid.xyz"\n')
    assert main_run(["--config", str(cfg)]) == 2
    assert "--mainnet" in capsys.readouterr().err
    assert main_run([]) == 2


def test_hlfast_record_writes_replayable_frames(tmp_path):
    from hlfast.app import main_record
    from hlfast.recording import FrameReader
    from hlfast.venue.process import VenueProcess

    out = tmp_path / "btc.jsonl.gz"
    with VenueProcess(block_ms=25) as v:
        assert main_record(["--coin", "BTC", "--out", str(out), "--url", v.base_url, "--seconds", "1.0"]) == 0
    reader = FrameReader(out)
    rows = list(reader)
    reader.close()
    channels = [orjson.loads(raw)["channel"] for _, raw in rows]
    assert channels.count("l2Book") >= 10 and reader.malformed == 0
    stamps = [ns for ns, _ in rows]
    assert stamps == sorted(stamps) and stamps[0] > 1.6e18  # wall-clock receive ns
