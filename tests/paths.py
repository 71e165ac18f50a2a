"""Where the tests find the shared payloads: ../shared beside the repository (as in CI)."""

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("HLFAST_SHARED_DIR", REPO.parent / "shared"))
HL_FIXTURES = SHARED / "fixtures" / "hyperliquid"
BINANCE_DATA = SHARED / "data" / "binance"
