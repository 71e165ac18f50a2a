"""`hlfast bench NAME [args]`: run perf/<NAME>.py (or perf/bench_<NAME>.py) from the source tree."""

from __future__ import annotations

import pathlib
import runpy
import sys

PERF_DIR = pathlib.Path(__file__).resolve().parents[1] / "perf"


def main(argv: list[str]) -> int:
    scripts = sorted(p.stem for p in PERF_DIR.glob("*.py")) if PERF_DIR.is_dir() else []
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: hlfast bench NAME [script options]\n\navailable: " + (", ".join(scripts) or "none"))
        return 0 if argv else 2
    name = argv[0]
    for candidate in (name, f"bench_{name}"):
        path = PERF_DIR / f"{candidate}.py"
        if path.is_file():
            sys.argv = [str(path), *argv[1:]]
            runpy.run_path(str(path), run_name="__main__")
            return 0
    print(f"hlfast bench: no script {name!r} in {PERF_DIR}; available: {', '.join(scripts) or 'none'}",
          file=sys.stderr)
    return 2
