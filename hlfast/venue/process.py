"""Run the local venue in this process (`run_venue`) or in a child process (`VenueProcess`)."""

from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import select
import signal
import subprocess
import sys
from collections.abc import Callable, Iterable
from dataclasses import asdict
from typing import Any

import orjson
from aiohttp import web

from hlfast.venue.faults import parse_fault_spec
from hlfast.venue.ledger import Fees
from hlfast.venue.server import VenueConfig, VenueServer, build_venue

log = logging.getLogger("hlfast.venue")
READY_TIMEOUT_S = 60.0
PR_SET_PDEATHSIG = 1  # prctl option: signal to receive when the parent dies
_PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run_venue(
    port: int = 0,
    host: str = "127.0.0.1",
    on_ready: Callable[[int], None] | None = None,
    **config: Any,
) -> None:
    """Serve the venue until SIGINT/SIGTERM. `on_ready(port)` is called once it accepts connections."""
    venue_config = VenueConfig(**config)
    asyncio.run(_serve(venue_config, host, port, on_ready))


async def _serve(config: VenueConfig, host: str, port: int, on_ready: Callable[[int], None] | None) -> None:
    venue = build_venue(config)
    server = VenueServer(venue)
    runner = web.AppRunner(server.app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_address=True)
    await site.start()
    bound = site._server.sockets[0].getsockname()[1] if site._server and site._server.sockets else port
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # not the main thread
            pass
    log.info("venue listening on http://%s:%d (coins %s)", host, bound, ",".join(s.name for s in venue.specs))
    if on_ready is not None:
        on_ready(bound)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def _die_with_parent(parent_pid: int) -> None:
    """End this process when the one that started it dies, even by SIGKILL (Linux: PR_SET_PDEATHSIG).

    The child runs in its own session so that a terminal Ctrl-C spares it; without this, a parent killed
    outright would leave it serving (and holding its port) forever."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent_pid:  # the parent died before the request took effect
        os._exit(0)


def _child_entry() -> None:
    """Entry point of the child process: config as JSON on stdin, "READY <port>" on stdout once serving."""
    config = orjson.loads(sys.stdin.buffer.read())
    _die_with_parent(config.pop("parent_pid"))
    host, port = config.pop("host"), config.pop("port")
    config["fees"] = Fees(*config["fees"])
    config["accounts"] = [tuple(a) for a in config["accounts"]]
    config["coins"] = tuple(config["coins"])
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s %(message)s")

    def ready(bound: int) -> None:
        sys.stdout.write(f"READY {bound}\n")
        sys.stdout.flush()

    run_venue(port=port, host=host, on_ready=ready, **config)


class VenueProcess:
    """The venue in a child process (a fresh interpreter), for tests, benchmarks and paper mode.

    `accounts` is a list of (address, usdc); `faults` a spec string (see hlfast.venue.faults); `fees` a
    Fees(maker, taker) or a (maker, taker) pair of fractions. Extra keyword arguments go to VenueConfig.
    """

    def __init__(
        self,
        port: int = 0,
        coins: Iterable[str] = ("BTC",),
        accounts: Iterable[tuple[str, float]] = (),
        auto_fund: bool = False,
        source: str = "synthetic",
        seed: int = 1,
        block_ms: int = 500,
        latency_ms: float = 0.0,
        faults: str | None = None,
        fees: Fees | tuple[float, float] | None = None,
        host: str = "127.0.0.1",
        show_log: bool = False,
        **extra: Any,
    ) -> None:
        if faults:
            parse_fault_spec(faults)  # fail here, in the caller, on a bad spec
        fee_obj = fees if isinstance(fees, Fees) else Fees(*fees) if fees is not None else Fees()
        self.host = host
        self.show_log = show_log
        self.port = port
        self.config = VenueConfig(
            coins=tuple(coins),
            accounts=[(str(a), float(u)) for a, u in accounts],
            auto_fund=auto_fund,
            source=source,
            seed=seed,
            block_ms=block_ms,
            latency_ms=latency_ms,
            faults=faults,
            fees=fee_obj,
            **extra,
        )
        self.process: subprocess.Popen[bytes] | None = None
        self.base_url: str | None = None

    def start(self) -> str:
        """Start the child and wait until it accepts connections; returns the base URL (no trailing slash)."""
        if self.process is not None:
            raise RuntimeError("venue already started")
        config = asdict(self.config)
        config["fees"] = [self.config.fees.maker, self.config.fees.taker]
        config.update(host=self.host, port=self.port, parent_pid=os.getpid())
        env = dict(os.environ)
        paths = [p or os.getcwd() for p in sys.path]
        env["PYTHONPATH"] = os.pathsep.join([_PACKAGE_ROOT, *paths])
        self.process = subprocess.Popen(
            [sys.executable, "-c", "from hlfast.venue.process import _child_entry; _child_entry()"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=None if self.show_log else subprocess.DEVNULL,
            env=env,
            # Its own session: a terminal Ctrl-C reaches the engine only, so the venue outlives it
            # and the engine can still cancel its orders; stop() ends the venue with SIGTERM.
            start_new_session=True,
        )
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(orjson.dumps(config))
        self.process.stdin.close()
        ready = select.select([self.process.stdout], [], [], READY_TIMEOUT_S)[0]
        line = self.process.stdout.readline().decode() if ready else ""
        if not line.startswith("READY "):
            code = self.process.poll()
            self.stop()
            raise RuntimeError(f"venue failed to start (exit code {code}); run with show_log=True for its log")
        self.port = int(line.split()[1])
        self.base_url = f"http://{self.host}:{self.port}"
        return self.base_url

    def stop(self, timeout: float = 5.0) -> None:
        proc = self.process
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout)
        if proc.stdout is not None:
            proc.stdout.close()
        self.process = None

    @property
    def ws_url(self) -> str:
        if self.base_url is None:
            raise RuntimeError("venue not started")
        return "ws" + self.base_url[len("http") :] + "/ws"

    def __enter__(self) -> VenueProcess:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
