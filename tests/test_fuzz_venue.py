"""Fuzzing the venue's endpoints over real sockets: POST /info, POST /exchange and the websocket.

One venue runs in this process (its event loop in a thread) so a known-good account's full state can
be read between requests. Garbage goes in from a second, funded "fuzz" account and from nobody at all;
the server must answer each request in Hyperliquid's error shapes, log no error, keep every connection
open, and leave the known-good account exactly as it was. Afterwards that account still trades.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
import threading
import time
from collections.abc import Callable
from typing import Any

import eth_account
import orjson
import pytest
import requests
import websocket
from aiohttp import web
from hyperliquid.utils.signing import float_to_wire, sign_l1_action
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from hlfast.venue.server import BAD_BODY_TEXT, VenueConfig, VenueServer, build_venue

pytestmark = pytest.mark.timeout(180)

GOOD_WALLET = eth_account.Account.from_key("0x" + "5a" * 32)
FUZZ_WALLET = eth_account.Account.from_key("0x" + "a5" * 32)
GOOD = GOOD_WALLET.address.lower()
FUZZ = FUZZ_WALLET.address.lower()
STRANGER = "0x" + "77" * 20
ETH = 1  # the known-good account trades only ETH; fuzzed orders never name asset 1
MARKET_CHANNELS = {"l2Book", "trades", "bbo", "allMids", "orderUpdates", "userFills", "user"}
WS_PARSE_ERROR = "Error parsing JSON into valid websocket request: "
SUB_ERRORS = ("Invalid subscription: ", "Already subscribed: ", "Already unsubscribed: ")


def fuzz(examples: int) -> settings:
    return settings(deadline=None, max_examples=examples,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


# ---- the venue, in-process -------------------------------------------------------------------------------


class ErrorLog(logging.Handler):
    """Collects every ERROR record (aiohttp's 'Error handling request', the venue's log.exception)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(f"{record.name}: {record.getMessage()} {record.exc_text or ''}")

    def format_all(self) -> str:
        return "\n".join(self.records)[-4000:]


class LiveVenue:
    """VenueServer on 127.0.0.1 with its event loop in a thread; `call` runs a function on that loop."""

    def __init__(self, **config: Any) -> None:
        self.venue = build_venue(VenueConfig(**config))
        self.server = VenueServer(self.venue)
        self.loop = asyncio.new_event_loop()
        self.runner: web.AppRunner | None = None
        self.port = 0
        self._ready = threading.Event()
        self.thread = threading.Thread(target=self._run, name="venue-loop", daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._start())
        self._ready.set()
        self.loop.run_forever()

    async def _start(self) -> None:
        self.runner = web.AppRunner(self.server.app, access_log=None, handle_signals=False)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]

    def start(self) -> None:
        self.thread.start()
        assert self._ready.wait(30), "venue did not start"

    def call(self, fn: Callable[[], Any]) -> Any:
        async def run() -> Any:
            return fn()

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(10)

    def stop(self) -> None:
        assert self.runner is not None
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"


class Observer:
    """A bystander websocket subscribed to BTC books: it must keep receiving whatever the fuzzer does."""

    def __init__(self, url: str) -> None:
        self.ws = websocket.create_connection(url, timeout=0.5)
        self.ws.send(orjson.dumps({"method": "subscribe", "subscription": {"type": "l2Book", "coin": "BTC"}}))
        self.frames = 0
        self.closed = False
        self.bad: list[str] = []
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._read, name="ws-observer", daemon=True)
        self.thread.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                raw = self.ws.recv()
            except websocket.WebSocketTimeoutException:
                continue
            except (websocket.WebSocketException, OSError):
                self.closed = True
                return
            if not raw:
                self.closed = True
                return
            frame = orjson.loads(raw)
            if frame.get("channel") not in ("l2Book", "subscriptionResponse"):
                self.bad.append(raw[:200])
            self.frames += 1

    def close(self) -> None:
        self._stop.set()
        self.thread.join(5)
        self.ws.close()


class Nonces:
    """Strictly increasing wall-clock nonces."""

    def __init__(self) -> None:
        self.last = 0

    def __call__(self) -> int:
        self.last = max(self.last + 1, int(time.time() * 1000))
        return self.last


next_nonce = Nonces()


class Deep:
    """A list (or dict) nested `depth` levels: spliced into the JSON text, since both encoders recurse."""

    def __init__(self, depth: int, as_dict: bool) -> None:
        self.depth = depth
        self.as_dict = as_dict
        self.token = f"@@deep{depth}{'d' if as_dict else 'l'}@@"

    def __repr__(self) -> str:
        return f"Deep({self.depth}, as_dict={self.as_dict})"

    def text(self) -> str:
        return '{"x":' * self.depth + "null" + "}" * self.depth if self.as_dict else "[" * self.depth + "]" * self.depth

    def value(self) -> Any:
        out: Any = None if self.as_dict else []
        for _ in range(self.depth - (0 if self.as_dict else 1)):
            out = {"x": out} if self.as_dict else [out]
        return out


def materialised(obj: Any) -> Any:
    """obj with every Deep marker replaced by the nested value it stands for."""
    if isinstance(obj, Deep):
        return obj.value()
    if isinstance(obj, dict):
        return {k: materialised(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [materialised(v) for v in obj]
    return obj


def to_json(obj: Any) -> str:
    # the stdlib encoder: NaN / Infinity literals and integers beyond 64 bits reach the server as sent
    text = json.dumps(obj, allow_nan=True, default=lambda deep: deep.token)
    if "@@deep" not in text:
        return text
    return re.sub(r'"@@deep(\d+)([dl])@@"', lambda m: Deep(int(m[1]), m[2] == "d").text(), text)


def signed(wallet: Any, action: Any, vault: str | None = None, expires: int | None = None) -> dict[str, Any]:
    nonce = next_nonce()
    signature = sign_l1_action(wallet, materialised(action), vault, nonce, expires, False)
    return {"action": action, "nonce": nonce, "signature": signature, "vaultAddress": vault, "expiresAfter": expires}


def good_state(live: LiveVenue) -> dict[str, Any]:
    """Everything the venue keeps about the known-good account (read on the venue's loop)."""

    def read() -> dict[str, Any]:
        venue = live.venue
        acct = venue.ledger.find(GOOD)
        assert acct is not None
        orders = sorted(
            (o.oid, o.coin, o.side, o.px, o.sz, o.orig_sz, o.cloid, o.tif, o.reduce_only, o.timestamp)
            for o in venue.engine.orders.values() if o.user == GOOD
        )
        return {
            "money": (acct.deposit, acct.balance, acct.realised_pnl, acct.fees_paid, acct.cum_volume),
            "requests": (acct.n_requests, acct.last_limited_action_ms),
            "positions": {c: (p.szi, p.entry_px, p.cum_funding) for c, p in acct.positions.items()},
            "leverage": dict(acct.leverage),
            "open_notional": dict(acct.open_notional),
            "fills": [dict(f) for f in acct.fills],
            "history": [(oid, entry[1], entry[2]) for oid, entry in acct.history.items()],
            "cloids": dict(acct.cloid_oids),
            "scheduled": (acct.scheduled_cancel_ms, acct.scheduled_cancel_day, acct.scheduled_cancel_count),
            "orders": orders,
            "open_count": venue.engine.open_count.get(GOOD),
            "nonces": list(venue.registry.nonces[GOOD]._sorted),
            "deposits": venue.registry.deposits.get(GOOD),
            "agents": sorted(a for a, master in venue.registry.agents.items() if master == GOOD),
            "vault_owners": dict(venue.registry.vault_owners),
            "scheduled_users": GOOD in venue.scheduled,
        }

    return live.call(read)


# ---- module fixtures -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def errors():
    handler = ErrorLog()
    root = logging.getLogger()
    root.addHandler(handler)
    yield handler
    root.removeHandler(handler)


@pytest.fixture(scope="module")
def live(errors):
    venue = LiveVenue(coins=("BTC", "ETH"), accounts=[(GOOD, 100_000.0), (FUZZ, 2_000.0)], block_ms=100, seed=11)
    venue.start()
    yield venue
    venue.stop()


@pytest.fixture(scope="module")
def http(live):
    with requests.Session() as session:
        yield session


def post(http: requests.Session, live: LiveVenue, path: str, body: bytes) -> requests.Response:
    return http.post(live.url + path, data=body, headers={"Content-Type": "application/json"}, timeout=10)


def mid(http: requests.Session, live: LiveVenue, coin: str) -> float:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        mids = post(http, live, "/info", b'{"type":"allMids"}').json()
        if coin in mids:
            return float(mids[coin])
        time.sleep(0.05)
    raise AssertionError("no mid published")


def px_wire(px: float) -> str:
    return float_to_wire(round(float(f"{px:.5g}"), 2))


@pytest.fixture(scope="module")
def baseline(live, http):
    """The known-good account holds an ETH position and a far resting ETH bid; its state is recorded."""
    eth_mid = mid(http, live, "ETH")
    size = float_to_wire(round(60.0 / eth_mid, 4))
    buy = {"type": "order", "orders": [{"a": ETH, "b": True, "p": px_wire(eth_mid * 1.05), "s": size, "r": False,
                                        "t": {"limit": {"tif": "Ioc"}}}], "grouping": "na"}
    reply = post(http, live, "/exchange", orjson.dumps(signed(GOOD_WALLET, buy))).json()
    assert "filled" in reply["response"]["data"]["statuses"][0], reply
    rest = {"type": "order", "orders": [{"a": ETH, "b": True, "p": px_wire(eth_mid * 0.5), "s": size, "r": False,
                                         "t": {"limit": {"tif": "Gtc"}}, "c": "0x" + "0c" * 16}], "grouping": "na"}
    reply = post(http, live, "/exchange", orjson.dumps(signed(GOOD_WALLET, rest))).json()
    assert "resting" in reply["response"]["data"]["statuses"][0], reply
    state = good_state(live)
    assert state["positions"]["ETH"][0] > 0 and len(state["orders"]) == 1
    return state


@pytest.fixture(scope="module")
def observer(live, baseline):
    obs = Observer(live.ws_url)
    yield obs
    obs.close()


@pytest.fixture(scope="module")
def fuzz_ws(live, baseline):
    ws = websocket.create_connection(live.ws_url, timeout=10)
    yield ws
    ws.close()


def assert_unharmed(live: LiveVenue, baseline: dict[str, Any], errors: ErrorLog, observer: Observer) -> None:
    """No error logged by the server for this request, the known-good account as recorded, no one disconnected."""
    if errors.records:
        text = errors.format_all()
        errors.records.clear()  # report this example only, not every one after it
        raise AssertionError(text)
    assert good_state(live) == baseline
    assert not observer.closed and not observer.bad, observer.bad
    assert live.thread.is_alive()


# ---- strategies ------------------------------------------------------------------------------------------

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**63), 2**64 - 1), st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=10),
    st.sampled_from(["NaN", "inf", "-1", "0", "1e5", "0x1b", "", "١٢٣", "9" * 5000, "1.0.0", GOOD, FUZZ, STRANGER,
                     "BTC", "ETH", 2**63, 2**64 - 1, -(2**63), 2**70, -(2**70), math.nan, math.inf]),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=4)),
    max_leaves=12,
)
# Values of the wrong type for any field: containers (unhashable), numbers, strings, null, and nesting near
# the parser's depth limit of 1024 (deeper than orjson can write back, about as deep as str() can go).
wrong_types = st.one_of(
    st.lists(scalars, max_size=2), st.dictionaries(st.text(max_size=3), scalars, max_size=2), scalars, json_values,
    st.builds(Deep, st.sampled_from([300, 900, 1000, 1015, 1030]), st.booleans()),
)


def _not_eth(value: Any) -> bool:
    return not (isinstance(value, int | float) and value == ETH)


def weighted(*choices: tuple[int, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """Draw from one of the strategies with the given relative weights."""
    return st.sampled_from([strategy for weight, strategy in choices for _ in range(weight)]).flatmap(lambda s: s)


def pick(samples: list[Any], weight: int = 1) -> st.SearchStrategy[Any]:
    """One of `samples` (near-valid values) `weight` times in weight + 1, a value of any type otherwise."""
    return weighted((weight, st.sampled_from(samples)), (1, wrong_types))


def near(valid: list[Any], odd: list[Any], weight: int = 6) -> st.SearchStrategy[Any]:
    """Mostly a valid value, sometimes an odd one of the right type, sometimes any type at all."""
    return weighted((weight, st.sampled_from(valid)), (1, st.sampled_from(odd)), (1, wrong_types))


def shape(kinds: list[str], required: dict[str, Any], optional: dict[str, Any] | None = None,
          kind_key: str = "type") -> st.SearchStrategy[dict[str, Any]]:
    """A request of one of `kinds` with its fields (each near-valid or of a wrong type)."""
    return st.fixed_dictionaries({kind_key: st.sampled_from(kinds), **required}, optional=optional or {})


users = near([GOOD, GOOD_WALLET.address, FUZZ, STRANGER], ["0x", "0x" + "zz" * 20, "0X" + "11" * 20, GOOD[:-1]], 3)
coins = near(["BTC", "ETH"], ["SOL", "btc", "", "@1", "BTC/USDC"], 3)
n_sig_figs = near([None, 2, 3, 4, 5], [0, 1, 6, -1, -(10**9), 10**9, 2.0, "5", True], 3)
mantissas = near([None, 1, 2, 5], [0, 10, -1, 10**18, "2", 2.5, True], 3)
times = near([0, int(time.time() * 1000) - 60_000, int(time.time() * 1000) + 86_400_000],
             [-1, 2**63, 1.5, "0", None], 3)
# oids count up from 1_000_000 (the known-good account holds the first two)
oids = st.one_of(st.integers(999_990, 1_000_010), st.integers(1_000_000, 1_003_000),
                 pick(["0x" + "0c" * 16, "0x" + "ab" * 16, -1, 2**64 - 1, 1.0]))
USER_INFO = ["openOrders", "frontendOpenOrders", "clearinghouseState", "spotClearinghouseState", "userFills",
             "userFillsByTime", "userRateLimit", "orderStatus", "historicalOrders"]
OTHER_INFO = ["meta", "spotMeta", "perpDexs", "metaAndAssetCtxs", "allMids", "exchangeStatus", "venueStats",
              "candleSnapshot", "", "L2Book", "__init__", "_user", "info"]
info_bodies = weighted(
    (3, shape(["l2Book"], {"coin": coins}, {"nSigFigs": n_sig_figs, "mantissa": mantissas})),
    (4, shape(USER_INFO, {"user": users}, {"startTime": times, "endTime": times, "oid": oids,
                                           "aggregateByTime": wrong_types})),
    (1, shape(["recentTrades", "candleSnapshot", "l2Book"], {"coin": coins})),
    (2, st.fixed_dictionaries({"type": pick(OTHER_INFO + USER_INFO, weight=4)},
                              optional={"user": users, "coin": coins, "dex": pick(["", "xyz"]),
                                        "req": wrong_types})),
)

assets = weighted((8, st.just(0)), (1, st.sampled_from([2, -1, 2**63, "0", None, True, 0.5])),
                  (1, wrong_types.filter(_not_eth)))
prices = near(["59000", "59500", "60000", "60500", "61000", "30000", "90000", "60000.5"],
              ["60000.50", "1", "0", "-1", "1e5", "NaN", "0.000001", "9" * 5000, "1" + "0" * 40, "1.", ".5", "6e4",
               "123456", "12345.6", 60000, " 60000", "6" * 4400 + ".5", "60000.55"])
sizes = near(["0.001", "0.0002", "0.002", "0.00100"],
             ["0.0001", "0", "-0.001", "1e-3", "0.000001", "100000", "9" * 5000, 1, "1" + "0" * 40])
tifs = near([{"limit": {"tif": t}} for t in ("Gtc", "Ioc", "Alo")],
            [{"limit": {"tif": t}} for t in ("gtc", "FrontendMarket", None)]
            + [{"trigger": {"isMarket": True, "triggerPx": "1", "tpsl": "tp"}}, {"limit": {}}, {}, "Gtc",
               {"limit": {"tif": ["Gtc"]}}])
cloids = pick(["0x" + "0c" * 16, "0x" + "ab" * 16, "0x" + "cd" * 16, "0x1", "", None, 7], weight=2)
order_wires = weighted(
    (3, st.fixed_dictionaries({"a": assets, "b": pick([True, False, True, False, 1, "true", None], weight=4),
                               "p": prices, "s": sizes, "r": pick([False, False, False, True, None, 0], weight=4),
                               "t": tifs}, optional={"c": cloids})),
    (3, st.fixed_dictionaries({"a": assets, "b": st.booleans(), "p": prices, "s": sizes, "r": st.just(False),
                               "t": tifs})),
    (1, wrong_types),
)
cancels = weighted((5, st.fixed_dictionaries({"a": st.one_of(st.sampled_from([0, ETH]), assets), "o": oids})),
                   (1, wrong_types))
cloid_cancels = weighted((5, st.fixed_dictionaries({"asset": st.sampled_from([0, ETH]), "cloid": cloids})),
                         (1, wrong_types))
modifies = weighted((5, st.fixed_dictionaries({"oid": oids, "order": order_wires})), (1, wrong_types))


def items(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """A batch: mostly well-formed entries, sometimes with one garbage entry after valid ones."""
    junk_tail = st.lists(strategy, min_size=1, max_size=2).flatmap(lambda head: wrong_types.map(
        lambda junk: [*head, junk]))
    return weighted((6, st.lists(strategy, min_size=1, max_size=3)), (1, st.just([])), (1, junk_tail),
                    (1, wrong_types))


orders = shape(["order"], {"orders": items(order_wires)}, {"grouping": pick(["na", "normalTpsl", {"p": 1}], weight=3)})
actions = weighted(
    (8, orders),
    (3, shape(["cancel"], {"cancels": items(cancels)})),
    (2, shape(["cancelByCloid"], {"cancels": items(cloid_cancels)})),
    (3, shape(["batchModify"], {"modifies": items(modifies)})),
    (2, shape(["modify"], {"oid": oids, "order": order_wires})),
    (1, shape(["scheduleCancel"], {}, {"time": times})),
    (1, shape(["updateLeverage"], {"asset": assets, "isCross": wrong_types,
                                   "leverage": pick([1, 5, 0, 100, -1, "5"])})),
    (1, shape(["noop"], {}, {"x": wrong_types})),
    (1, shape(["approveAgent"], {
        "signatureChainId": pick(["0x66eee", "0x1", "-0x1", "0x" + "f" * 80, "zz"]),
        "hyperliquidChain": pick(["Testnet", "Mainnet"]), "agentAddress": users,
        "agentName": pick(["", "bot", None]), "nonce": pick([1, -1, 2**70, "1", 2**64 - 1])})),
    (1, st.fixed_dictionaries({"type": pick(["usdSend", "withdraw3", "", "Order", "__class__"])},
                              optional={"orders": items(order_wires)})),
    (1, json_values),
)
signatures = st.one_of(
    st.fixed_dictionaries({"r": pick(["0x1", "0x" + "f" * 64, "0x" + "f" * 70, "-0x1", "0", 1, "zz"]),
                           "s": pick(["0x1", "0x2", "0x" + "0" * 64, 2**256, "0x"]),
                           "v": pick([27, 28, 0, 1, 29, "27", "0x1b", -27, 10**30])}),
    wrong_types,
)
vaults = pick([None, GOOD, FUZZ, STRANGER, "0x12", "nothex", 5])
envelopes = st.fixed_dictionaries(
    {"action": actions, "nonce": pick([1, 2**63, 2**64 - 1, -1, "1", 1.5, int(time.time() * 1000)]),
     "signature": signatures},
    optional={"vaultAddress": vaults, "expiresAfter": pick([None, 0, -1, 2**64, "1", 1.5])},
)


def body_bytes(obj: Any) -> bytes:
    return to_json(obj).encode()


raw_bodies = st.one_of(
    st.binary(max_size=64),
    st.sampled_from([b"", b"{", b"null", b"[]", b'{"type":', b"\xff\xfe{}", b'{"type":"meta"}' * 2]),
)


# ---- response shapes ---------------------------------------------------------------------------------------


def check_422(resp: requests.Response) -> None:
    assert resp.status_code == 422, (resp.status_code, resp.text[:300])
    assert resp.headers["Content-Type"].startswith("text/plain") and resp.text == BAD_BODY_TEXT


def check_info_reply(resp: requests.Response) -> None:
    if resp.status_code == 422:
        check_422(resp)
        return
    assert resp.status_code == 200, (resp.status_code, resp.text[:300])
    assert resp.headers["Content-Type"].startswith("application/json")
    orjson.loads(resp.content)


def check_action_result(result: Any, may_succeed: bool) -> None:
    assert isinstance(result, dict) and result.get("status") in ("ok", "err"), result
    if result["status"] == "err":
        assert isinstance(result["response"], str) and result["response"], result
        return
    assert may_succeed, result
    response = result["response"]
    assert response["type"] in ("order", "cancel", "default"), result
    for status in response.get("data", {}).get("statuses", []):
        assert status == "success" or (
            isinstance(status, dict) and len(status) == 1 and next(iter(status)) in ("resting", "filled", "error")
        ), result


def check_exchange_reply(resp: requests.Response, may_succeed: bool) -> None:
    if resp.status_code == 422:
        check_422(resp)
        return
    assert resp.status_code == 200, (resp.status_code, resp.text[:300])
    check_action_result(orjson.loads(resp.content), may_succeed)


def outcome(resp: requests.Response) -> str:
    """A label for hypothesis statistics: how far into the venue the request got."""
    if resp.status_code != 200:
        return str(resp.status_code)
    result = resp.json()
    if result["status"] == "err":
        return "err " + result["response"].split(":")[0][:40]
    statuses = result["response"].get("data", {}).get("statuses", [])
    return "ok " + ",".join(sorted({s if isinstance(s, str) else next(iter(s)) for s in statuses}))


def fuzz_signed(action: Any, vault: Any, expires: Any) -> dict[str, Any]:
    """An envelope signed by the fuzz account (any vault); unsignable values go out with a junk signature."""
    try:
        return signed(FUZZ_WALLET, action, vault, expires)
    except Exception:  # noqa: BLE001 - the SDK cannot pack some garbage; the server must still cope
        return {"action": action, "nonce": next_nonce(), "signature": {"r": "0x1", "s": "0x1", "v": 27},
                "vaultAddress": vault, "expiresAfter": expires}


# ---- HTTP ----------------------------------------------------------------------------------------------------


@fuzz(800)
@given(body=weighted((6, info_bodies), (1, json_values), (1, raw_bodies)))
def test_info_answers_json_or_422(live, http, baseline, errors, observer, body):
    raw = body if isinstance(body, bytes) else body_bytes(body)
    resp = post(http, live, "/info", raw)
    check_info_reply(resp)
    event(str(resp.status_code))
    assert_unharmed(live, baseline, errors, observer)


@fuzz(800)
@given(body=weighted((6, envelopes), (1, json_values), (1, raw_bodies)))
def test_exchange_garbage_envelopes_never_act(live, http, baseline, errors, observer, body):
    raw = body if isinstance(body, bytes) else body_bytes(body)
    check_exchange_reply(post(http, live, "/exchange", raw), may_succeed=False)
    assert_unharmed(live, baseline, errors, observer)


@fuzz(100)
@given(sabotage=st.sampled_from(["r", "s", "v", "nonce", "vault", "expires", "action"]), junk=scalars)
def test_good_actions_with_garbage_signatures_or_tampered_fields_never_act(
    live, http, baseline, errors, observer, sabotage, junk
):
    cancel = {"type": "cancel", "cancels": [{"a": ETH, "o": baseline["orders"][0][0]}]}
    body = signed(GOOD_WALLET, cancel)
    if sabotage in ("r", "s", "v"):
        original = body["signature"][sabotage]
        # the same recovery id spelled 0/1 instead of 27/28 is not garbage
        assume(not (sabotage == "v" and type(junk) is int and junk % 27 == original % 27 and junk in (0, 1, 27, 28)))
        body["signature"][sabotage] = junk
    elif sabotage == "nonce":
        body["nonce"] = body["nonce"] + 1
    elif sabotage == "vault":
        body["vaultAddress"] = GOOD
    elif sabotage == "expires":
        body["expiresAfter"] = next_nonce() + 60_000
    else:
        body["action"]["cancels"][0]["o"] += 1
    check_exchange_reply(post(http, live, "/exchange", body_bytes(body)), may_succeed=False)
    assert_unharmed(live, baseline, errors, observer)


@fuzz(600)
@given(action=actions, vault=st.sampled_from([None] * 8 + [GOOD, STRANGER]),
       expires=st.sampled_from([None] * 8 + [0, 2**62]))
def test_exchange_signed_garbage_actions_answer_in_shape(live, http, baseline, errors, observer, action, vault,
                                                         expires):
    body = fuzz_signed(action, vault, expires)
    resp = post(http, live, "/exchange", body_bytes(body))
    check_exchange_reply(resp, may_succeed=vault is None and expires != 0)
    event(outcome(resp))
    assert_unharmed(live, baseline, errors, observer)


def test_signed_garbage_reaches_the_action_handlers(live, http, baseline, errors):
    """The signed fuzz is not all stopped at signature recovery: the fuzz account's signature is accepted."""
    statuses = []
    for action in ({"type": "order", "orders": [{"a": 0, "b": True, "p": "1.5.1", "s": "1", "r": False,
                                                 "t": {"limit": {"tif": "Gtc"}}}], "grouping": "na"},
                   {"type": "cancel", "cancels": [{"a": ETH, "o": baseline["orders"][0][0]}]},
                   {"type": "updateLeverage", "asset": 0, "isCross": True, "leverage": 10**6}):
        reply = post(http, live, "/exchange", body_bytes(fuzz_signed(action, None, None))).json()
        statuses.append(reply)
    assert statuses[0]["response"]["data"]["statuses"] == [{"error": "Order has invalid price. asset=0"}]
    # the fuzz account cannot cancel the known-good account's order
    assert statuses[1]["response"]["data"]["statuses"][0]["error"].startswith("Order was never placed")
    assert statuses[2] == {"status": "err", "response": "Invalid leverage value"}
    assert good_state(live) == baseline and not errors.records


@pytest.mark.parametrize("depth", [300, 1000])
def test_fields_nested_to_the_parser_limit(live, http, baseline, errors, observer, depth):
    """Nesting orjson parses but cannot write back (> 254) or str() cannot print (~1000) is still answered."""
    deep = Deep(depth, as_dict=False)
    check_422(post(http, live, "/info", body_bytes({"type": "l2Book", "coin": deep})))
    check_422(post(http, live, "/info", body_bytes({"type": "userFillsByTime", "user": GOOD, "startTime": deep})))
    wire = {"a": deep, "b": True, "p": "60000", "s": "0.001", "r": False, "t": {"limit": {"tif": "Gtc"}}}
    for action in ({"type": "order", "orders": [wire], "grouping": "na"},
                   {"type": "cancel", "cancels": [{"a": deep, "o": 1}]}):
        reply = post(http, live, "/exchange", body_bytes(fuzz_signed(action, None, None))).json()
        [status] = reply["response"]["data"]["statuses"]
        assert status["error"].startswith(("Order has invalid asset. asset=", "Order was never placed")), reply
    approve = {"type": "approveAgent", "signatureChainId": "0x66eee", "hyperliquidChain": "Testnet",
               "agentAddress": deep, "agentName": "", "nonce": 1}
    unsigned = {"action": approve, "nonce": 1, "signature": {"r": "0x1", "s": "0x1", "v": 27}}
    reply = post(http, live, "/exchange", body_bytes(unsigned)).json()
    assert reply == {"status": "err", "response": "Unable to recover signer."}
    assert_unharmed(live, baseline, errors, observer)


def test_oversized_body_is_refused(live, http, baseline, errors, observer):
    resp = post(http, live, "/info", b'{"type":"meta","pad":"' + b"x" * (9 * 1024 * 1024) + b'"}')
    assert resp.status_code == 413
    assert post(http, live, "/info", b'{"type":"meta"}').status_code == 200
    assert_unharmed(live, baseline, errors, observer)


# ---- websocket ---------------------------------------------------------------------------------------------


def _expectation(raw: str | bytes) -> tuple[str, int]:
    """What the server owes a message: ("pong" | "post" | "sub" | "error", post id)."""
    try:
        msg = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return "error", 0
    method = msg.get("method") if isinstance(msg, dict) else None
    if method == "ping":
        return "pong", 0
    if method == "post":
        request, req_id = msg.get("request"), msg.get("id")
        if isinstance(req_id, int) and isinstance(request, dict) and request.get("type") in ("info", "action"):
            return "post", req_id
        return "error", 0
    if method in ("subscribe", "unsubscribe") and isinstance(msg.get("subscription"), dict):
        return "sub", 0
    return "error", 0


def ws_exchange(ws: websocket.WebSocket, raw: str | bytes) -> list[dict[str, Any]]:
    """Send one message then a ping; return the non-market frames received before our pong."""
    kind, _ = _expectation(raw)
    if isinstance(raw, bytes):
        ws.send_binary(raw)
    else:
        ws.send(raw)
    ws.send('{"method":"ping"}')
    pongs_due = 2 if kind == "pong" else 1
    got: list[dict[str, Any]] = []
    while pongs_due:
        frame = orjson.loads(ws.recv())
        assert isinstance(frame, dict) and isinstance(frame.get("channel"), str), frame
        if frame["channel"] == "pong":
            pongs_due -= 1
        elif frame["channel"] not in MARKET_CHANNELS:
            got.append(frame)
    return got


def check_ws_reply(raw: str | bytes, got: list[dict[str, Any]]) -> None:
    kind, req_id = _expectation(raw)
    if kind == "pong":
        assert got == []
        return
    assert len(got) == 1, got
    frame = got[0]
    if kind == "error":
        assert frame["channel"] == "error" and frame["data"].startswith(WS_PARSE_ERROR), frame
    elif kind == "sub":
        assert frame["channel"] in ("subscriptionResponse", "error"), frame
        if frame["channel"] == "error":
            assert frame["data"].startswith(SUB_ERRORS), frame
        else:
            assert frame["data"]["method"] in ("subscribe", "unsubscribe"), frame
    else:
        assert frame["channel"] == "post" and frame["data"]["id"] == req_id, frame
        response = frame["data"]["response"]
        assert response["type"] in ("info", "action", "error"), frame
        if response["type"] == "error":
            assert response["payload"] == f"422 Unprocessable Entity: {BAD_BODY_TEXT}", frame
        elif response["type"] == "action":
            check_action_result(response["payload"], may_succeed=True)


subscriptions = weighted(
    (3, shape(["l2Book"], {"coin": coins}, {"nSigFigs": n_sig_figs, "mantissa": mantissas})),
    (3, shape(["trades", "bbo", "l2Book", "candle"], {"coin": coins}, {"interval": pick(["1m", 5])})),
    (3, shape(["orderUpdates", "userFills", "userEvents", "notification"], {"user": users},
              {"aggregateByTime": wrong_types})),
    (2, st.fixed_dictionaries({"type": pick(["allMids", "", "trades"], weight=3)},
                              optional={"coin": coins, "user": users, "dex": wrong_types})),
    (1, wrong_types),
)
post_requests = weighted(
    (3, st.builds(lambda body: {"type": "info", "payload": body}, info_bodies)),
    (2, st.builds(lambda body: {"type": "action", "payload": body}, envelopes)),
    (3, st.builds(lambda action: {"type": "action", "payload": fuzz_signed(action, None, None)}, actions)),
    (1, st.fixed_dictionaries({"type": pick(["info", "action", "subscribe"])}, optional={"payload": wrong_types})),
    (1, wrong_types),
)
post_ids = near([1, 0, 2**64 - 1, 12345], [-1, -(2**63), "1", 1.0, None, True], 3)
ws_messages = weighted(
    (4, shape(["subscribe", "unsubscribe"], {"subscription": subscriptions}, kind_key="method")),
    (4, shape(["post"], {"id": post_ids, "request": post_requests}, kind_key="method")),
    (1, st.fixed_dictionaries(
        {"method": pick(["subscribe", "unsubscribe", "post", "ping", "pong", "Subscribe", ""])},
        optional={"subscription": subscriptions, "id": post_ids, "request": post_requests},
    )),
    (1, json_values),
)


@fuzz(700)
@given(msg=weighted((6, ws_messages), (1, json_values.map(lambda v: {"method": "post", "id": 9, "request": v}))),
       as_binary=st.booleans())
def test_websocket_messages_answered_in_shape(live, baseline, errors, observer, fuzz_ws, msg, as_binary):
    raw: str | bytes = to_json(msg)
    if as_binary:
        raw = raw.encode()
    got = ws_exchange(fuzz_ws, raw)
    check_ws_reply(raw, got)
    event(" ".join(f"{f['channel']} {str(f['data'])[:24]}" for f in got) if got else "pong")
    assert_unharmed(live, baseline, errors, observer)


@fuzz(300)
@given(raw=st.one_of(st.binary(max_size=64), st.text(max_size=32), st.sampled_from(
    [b"", "", "{", '{"method":"subscribe"', "\x00", b"\xff\xfe", "null", "[]", '"ping"', '{"method":null}'])))
def test_websocket_raw_garbage_answered_with_error_frames(live, baseline, errors, observer, fuzz_ws, raw):
    check_ws_reply(raw, ws_exchange(fuzz_ws, raw))
    assert_unharmed(live, baseline, errors, observer)


def test_nested_subscription_and_post_get_error_frames(live, baseline, errors, observer, fuzz_ws):
    for depth in (300, 1000):
        deep = Deep(depth, as_dict=True)
        for msg in ({"method": "subscribe", "subscription": {"type": "l2Book", "coin": deep}},
                    {"method": "subscribe", "subscription": {"type": deep}},
                    {"method": "post", "id": 3, "request": deep},
                    {"method": "post", "id": deep, "request": {"type": "info", "payload": {"type": "meta"}}},
                    {"method": "post", "id": 5, "request": {"type": "info", "payload": {"type": "l2Book",
                                                                                         "coin": deep}}}):
            raw = to_json(msg)
            check_ws_reply(raw, ws_exchange(fuzz_ws, raw))
    assert_unharmed(live, baseline, errors, observer)


@pytest.mark.parametrize("frame", [b"\xff\xfe", b"x" * (5 * 1024 * 1024)], ids=["invalid-utf8", "over-4MiB"])
def test_protocol_violations_close_only_that_connection(live, baseline, errors, observer, fuzz_ws, frame):
    bad = websocket.create_connection(live.ws_url, timeout=5)
    closed = False
    try:
        bad.send(frame, opcode=websocket.ABNF.OPCODE_TEXT)
        for _ in range(100):  # anything but a close (or a reset) is a failure
            if not bad.recv():
                closed = True
                break
    except websocket.WebSocketTimeoutException:
        closed = False  # still open: the violation was ignored
    except (websocket.WebSocketException, ConnectionError):
        closed = True
    bad.close()
    assert closed
    assert ws_exchange(fuzz_ws, '{"method":"ping"}') == []
    assert_unharmed(live, baseline, errors, observer)


# ---- afterwards --------------------------------------------------------------------------------------------


def test_known_good_account_unchanged_and_still_trading(live, http, baseline, errors, observer, fuzz_ws):
    assert_unharmed(live, baseline, errors, observer)
    frames_before = observer.frames
    # the public views agree with the recorded state
    open_orders = post(http, live, "/info", orjson.dumps({"type": "openOrders", "user": GOOD})).json()
    assert [o["oid"] for o in open_orders] == [baseline["orders"][0][0]]
    state = post(http, live, "/info", orjson.dumps({"type": "clearinghouseState", "user": GOOD})).json()
    [position] = state["assetPositions"]
    assert position["position"]["coin"] == "ETH"
    assert float(position["position"]["szi"]) == baseline["positions"]["ETH"][0] / 1e4
    # a new order over HTTP rests, and its cancel over websocket post succeeds
    eth_mid = mid(http, live, "ETH")
    order = {"type": "order", "orders": [{"a": ETH, "b": True, "p": px_wire(eth_mid * 0.6),
                                          "s": float_to_wire(round(60.0 / eth_mid, 4)), "r": False,
                                          "t": {"limit": {"tif": "Alo"}}}], "grouping": "na"}
    order_body = signed(GOOD_WALLET, order)
    reply = post(http, live, "/exchange", orjson.dumps(order_body)).json()
    oid = reply["response"]["data"]["statuses"][0]["resting"]["oid"]
    cancel = signed(GOOD_WALLET, {"type": "cancel", "cancels": [{"a": ETH, "o": oid}]})
    [frame] = ws_exchange(fuzz_ws, orjson.dumps({"method": "post", "id": 4242,
                                                  "request": {"type": "action", "payload": cancel}}).decode())
    assert frame["data"] == {"id": 4242, "response": {"type": "action", "payload": {
        "status": "ok", "response": {"type": "cancel", "data": {"statuses": ["success"]}}}}}
    after = good_state(live)
    assert after["orders"] == baseline["orders"] and after["positions"] == baseline["positions"]
    assert after["nonces"] == baseline["nonces"] + [order_body["nonce"], cancel["nonce"]]
    deadline = time.monotonic() + 5
    while observer.frames == frames_before and time.monotonic() < deadline:
        time.sleep(0.02)
    assert observer.frames > frames_before and not observer.closed
    assert not errors.records, errors.format_all()
