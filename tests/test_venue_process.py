"""The venue child process: it never outlives the process that started it."""

from __future__ import annotations

import os
import subprocess
import sys
import time

PARENT = """
import sys
from hlfast.venue.process import VenueProcess
venue = VenueProcess(block_ms=200)
venue.start()
print(venue.process.pid, flush=True)
sys.stdin.read()
"""


def alive(pid: int) -> bool:
    """Running (a zombie waiting for a reaper counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_the_venue_ends_when_its_parent_is_killed_outright():
    parent = subprocess.Popen([sys.executable, "-c", PARENT], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    try:
        child = int(parent.stdout.readline())
        assert alive(child)
    finally:
        parent.kill()  # SIGKILL: no chance to stop the venue itself
        parent.wait()
    deadline = time.monotonic() + 10.0
    while alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(child)
