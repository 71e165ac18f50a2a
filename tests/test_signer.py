"""Signer: bit-identical to the SDK's sign_l1_action / float_to_wire, captured vectors, nonces, fast path."""
from __future__ import annotations

import json

import msgpack
import orjson
import pytest
from eth_account import Account
from hyperliquid.utils.signing import (
    float_to_wire,
    order_request_to_order_wire,
    order_wires_to_order_action,
    sign_l1_action,
)
from hyperliquid.utils.types import Cloid
from hypothesis import given, settings
from hypothesis import strategies as st

from hlfast import signer as signer_mod
from hlfast.keys import PrivateKey
from hlfast.signer import (
    AGENT_TYPEHASH,
    DOMAIN_SEPARATOR,
    CloidGenerator,
    ModifySpec,
    OrderSpec,
    Signer,
    action_digest,
    recover_signer,
    ticks_to_wire,
    ws_post_frame,
)
from tests.paths import HL_FIXTURES
from tests.reference import signing as ref

FIXTURE = HL_FIXTURES / "local_sdk_generated_exchange_requests.json"
SECRET = "0x0123456789012345678901234567890123456789012345678901234567890123"
KEY = PrivateKey.from_hex(SECRET)
WALLET = Account.from_key(SECRET)
wire = pytest.importorskip("hlfast.wire")


def _vectors():
    data = json.loads(FIXTURE.read_text())
    return [(v["label"], json.loads(v["request_body_raw"]), v) for v in data["vectors"]]


VECTORS = _vectors()


# ------------------------------------------------------------------------------- constants
def test_constants_from_first_principles():
    assert DOMAIN_SEPARATOR == ref.domain_separator()
    assert AGENT_TYPEHASH == ref.agent_typehash()


@settings(deadline=None, max_examples=200)
@given(st.binary(max_size=700))
def test_compiled_keccak_matches_reference(data):
    assert wire.keccak256(data) == ref.keccak256(data)


# ------------------------------------------------------------------------------- captured SDK vectors
@pytest.mark.parametrize("label,body,vector", VECTORS, ids=[v[0] for v in VECTORS])
def test_captured_vectors_signature_and_recovery(label, body, vector):
    signer = Signer(KEY, is_mainnet=False, vault_address=body["vaultAddress"])
    sig = signer.sign_action(body["action"], body["nonce"], body["expiresAfter"])
    assert sig == body["signature"]
    assert recover_signer(body, is_mainnet=False) == vector["expected_signer"]
    assert recover_signer(body, is_mainnet=True) == vector["recovered_with_source_a_mainnet"]


def _rebuild(label: str, body: dict) -> dict:
    """The same request through the hlfast builders, from the action's meaning."""
    expires = body["expiresAfter"]
    signer = Signer(KEY, is_mainnet=False, vault_address=body["vaultAddress"],
                    expires_after_ms=None if expires is None else expires - body["nonce"])
    action, nonce = body["action"], body["nonce"]
    kind = action["type"]
    if kind == "order" and "trigger" not in action["orders"][0]["t"]:
        specs = [OrderSpec(o["b"], o["p"], o["s"], o["r"], o["t"]["limit"]["tif"], o.get("c"))
                 for o in action["orders"]]
        return signer.bulk_orders(action["orders"][0]["a"], specs, nonce=nonce)
    if kind == "cancel":
        return signer.cancel(action["cancels"][0]["a"], [c["o"] for c in action["cancels"]], nonce=nonce)
    if kind == "cancelByCloid":
        return signer.cancel_by_cloid(action["cancels"][0]["asset"], [c["cloid"] for c in action["cancels"]],
                                      nonce=nonce)
    if kind == "batchModify":
        mods = []
        for m in action["modifies"]:
            o = m["order"]
            mods.append(ModifySpec(m["oid"], OrderSpec(o["b"], o["p"], o["s"], o["r"], o["t"]["limit"]["tif"],
                                                       o.get("c"))))
        return signer.batch_modify(action["modifies"][0]["order"]["a"], mods, nonce=nonce)
    if kind == "scheduleCancel":
        return signer.schedule_cancel(action.get("time"), nonce=nonce)
    if kind == "updateLeverage":
        return signer.update_leverage(action["asset"], action["leverage"], action["isCross"], nonce=nonce)
    return signer.payload(action, nonce)  # trigger orders go through the generic path


@pytest.mark.parametrize("label,body,vector", VECTORS, ids=[v[0] for v in VECTORS])
def test_builders_reproduce_captured_bodies_byte_for_byte(label, body, vector):
    rebuilt = _rebuild(label, body)
    # json.dumps with the SDK's separators reproduces the raw body only with identical key order
    assert json.dumps(rebuilt) == vector["request_body_raw"]


# ------------------------------------------------------------------------------- random actions vs SDK
ADDRESSES = st.binary(min_size=20, max_size=20).map(lambda b: "0x" + b.hex())
CLOIDS = st.binary(min_size=16, max_size=16).map(lambda b: "0x" + b.hex())
TIFS = st.sampled_from(["Alo", "Gtc", "Ioc"])


@st.composite
def order_requests(draw):
    px_dec = draw(st.integers(0, 6))
    ticks = draw(st.integers(1, 10**7))
    sz_dec = draw(st.integers(0, 5))
    lots = draw(st.integers(1, 10**7))
    if draw(st.booleans()):
        order_type = {"limit": {"tif": draw(TIFS)}}
    else:
        order_type = {"trigger": {"isMarket": draw(st.booleans()), "triggerPx": ticks / 10**px_dec * 1.01,
                                  "tpsl": draw(st.sampled_from(["tp", "sl"]))}}
        order_type["trigger"]["triggerPx"] = round(order_type["trigger"]["triggerPx"], px_dec)
    request = {"coin": "X", "is_buy": draw(st.booleans()), "sz": lots / 10**sz_dec, "limit_px": ticks / 10**px_dec,
               "order_type": order_type, "reduce_only": draw(st.booleans())}
    if draw(st.booleans()):
        request["cloid"] = Cloid.from_str(draw(CLOIDS))
    return request


@st.composite
def actions(draw):
    kind = draw(st.sampled_from(["order", "cancel", "cancelByCloid", "batchModify", "scheduleCancel",
                                 "updateLeverage", "noop"]))
    asset = draw(st.sampled_from([0, 1, 7, 10000, 110003]))
    if kind == "order":
        wires = [order_request_to_order_wire(o, asset) for o in draw(st.lists(order_requests(), min_size=1,
                                                                            max_size=12))]
        return order_wires_to_order_action(wires)
    if kind == "cancel":
        oids = draw(st.lists(st.integers(0, 2**63 - 1), min_size=1, max_size=10))
        return {"type": "cancel", "cancels": [{"a": asset, "o": o} for o in oids]}
    if kind == "cancelByCloid":
        cl = draw(st.lists(CLOIDS, min_size=1, max_size=10))
        return {"type": "cancelByCloid", "cancels": [{"asset": asset, "cloid": c} for c in cl]}
    if kind == "batchModify":
        mods = []
        for o in draw(st.lists(order_requests(), min_size=1, max_size=6)):
            target = draw(st.one_of(st.integers(0, 2**40), CLOIDS))
            mods.append({"oid": target, "order": order_request_to_order_wire(o, asset)})
        return {"type": "batchModify", "modifies": mods}
    if kind == "scheduleCancel":
        t = draw(st.one_of(st.none(), st.integers(1_600_000_000_000, 2_000_000_000_000)))
        return {"type": "scheduleCancel"} if t is None else {"type": "scheduleCancel", "time": t}
    if kind == "updateLeverage":
        return {"type": "updateLeverage", "asset": asset, "isCross": draw(st.booleans()),
                "leverage": draw(st.integers(1, 50))}
    return {"type": "noop"}


@settings(deadline=None, max_examples=120)
@given(actions(), st.integers(1_600_000_000_000, 2_000_000_000_000), st.booleans(),
       st.one_of(st.none(), ADDRESSES), st.one_of(st.none(), st.integers(1, 600_000)))
def test_random_actions_sign_like_the_sdk(action, nonce, is_mainnet, vault, window):
    signer = Signer(KEY, is_mainnet=is_mainnet, vault_address=vault, expires_after_ms=window)
    expires = None if window is None else nonce + window
    expected = sign_l1_action(WALLET, action, vault, nonce, expires, is_mainnet)
    payload = signer.payload(action, nonce)
    assert payload["signature"] == expected
    assert list(payload) == ["action", "nonce", "signature", "vaultAddress", "expiresAfter"]
    assert payload["vaultAddress"] == vault and payload["expiresAfter"] == expires
    assert recover_signer(payload, is_mainnet) == KEY.address
    packed = signer_mod._pack(action)
    assert action_digest(action, nonce, vault, expires, is_mainnet) == ref.l1_digest(
        packed, nonce, vault, expires, is_mainnet)
    vault_tail = b"\x00" if vault is None else b"\x01" + bytes.fromhex(vault[2:])
    assert wire.l1_digest(packed, nonce, vault_tail, expires, is_mainnet) == ref.l1_digest(
        packed, nonce, vault, expires, is_mainnet)


def test_short_r_or_s_is_formatted_like_the_sdk():
    signer = Signer(KEY, is_mainnet=True)
    action = {"type": "noop"}
    found = 0
    for nonce in range(1_700_000_000_000, 1_700_000_000_400):
        sig = signer.sign_action(action, nonce)
        if len(sig["r"]) < 66 or len(sig["s"]) < 66:
            assert sig == sign_l1_action(WALLET, action, None, nonce, None, True)
            found += 1
    assert found >= 3  # one in 16 signatures has a leading zero nibble in r or s


# ------------------------------------------------------------------------------- wire numbers
@settings(deadline=None, max_examples=400)
@given(st.integers(0, 8).flatmap(lambda d: st.tuples(st.integers(0, 10**(7 + d) - 1), st.just(d))))
def test_ticks_to_wire_equals_float_to_wire(case):
    # below 1e7 (every Hyperliquid price and size); above it float_to_wire itself prints float noise
    ticks, decimals = case
    expected = float_to_wire(ticks / 10**decimals)
    assert ticks_to_wire(ticks, decimals) == expected
    assert wire.ticks_to_wire(ticks, decimals) == expected
    assert ref.ticks_to_wire(ticks, decimals) == expected


@settings(deadline=None, max_examples=200)
@given(st.integers(-10**15, 10**15), st.integers(-6, 12))
def test_compiled_and_python_formatters_agree_everywhere(ticks, decimals):
    assert wire.ticks_to_wire(ticks, decimals) == ticks_to_wire(ticks, decimals) == ref.ticks_to_wire(ticks, decimals)


@st.composite
def tick_batches(draw):
    n = draw(st.integers(1, 25))
    sz_dec = draw(st.integers(0, 5))
    px_dec = 6 - sz_dec
    sides = draw(st.lists(st.sampled_from([1, -1]), min_size=n, max_size=n))
    ticks = draw(st.lists(st.integers(1, 10**(7 + px_dec) - 1), min_size=n, max_size=n))
    lots = draw(st.lists(st.integers(1, 10**6), min_size=n, max_size=n))
    cloids = draw(st.lists(st.one_of(st.none(), CLOIDS), min_size=n, max_size=n))
    return n, sz_dec, px_dec, sides, ticks, lots, cloids


@settings(deadline=None, max_examples=60)
@given(tick_batches(), TIFS, st.booleans(), st.integers(0, 200), st.booleans())
def test_fast_path_equals_sdk_order_path(batch, tif, reduce_only, asset, is_mainnet):
    n, sz_dec, px_dec, sides, ticks, lots, cloids = batch
    sizes = [lot / 10**sz_dec for lot in lots]
    signer = Signer(KEY, is_mainnet=is_mainnet)
    nonce = 1_750_000_000_000
    payload = signer.sign_bulk_orders_ticks(asset, sides, ticks, sizes, cloids, n, px_dec, sz_dec, tif,
                                            reduce_only, nonce=nonce)
    assert payload is not None, signer.last_error
    requests = []
    for i in range(n):
        req = {"coin": "X", "is_buy": sides[i] == 1, "sz": sizes[i], "limit_px": ticks[i] / 10**px_dec,
               "order_type": {"limit": {"tif": tif}}, "reduce_only": reduce_only}
        if cloids[i] is not None:
            req["cloid"] = Cloid.from_str(cloids[i])
        requests.append(req)
    sdk_action = order_wires_to_order_action([order_request_to_order_wire(r, asset) for r in requests])
    assert json.dumps(payload["action"]) == json.dumps(sdk_action)
    assert payload["signature"] == sign_l1_action(WALLET, sdk_action, None, nonce, None, is_mainnet)
    modify = signer.sign_batch_modify_ticks(asset, list(range(1, n + 1)), sides, ticks, sizes, cloids, n,
                                            px_dec, sz_dec, tif, reduce_only, nonce=nonce + 1)
    sdk_modify = {"type": "batchModify", "modifies": [{"oid": i + 1, "order": w}
                                                     for i, w in enumerate(sdk_action["orders"])]}
    assert json.dumps(modify["action"]) == json.dumps(sdk_modify)
    assert modify["signature"] == sign_l1_action(WALLET, sdk_modify, None, nonce + 1, None, is_mainnet)


def test_fast_cancels_match_builders():
    signer = Signer(KEY, is_mainnet=False)
    assert signer.sign_cancel_fast(3, [5, 6, 7], 2, nonce=10) == signer.cancel(3, [5, 6], nonce=10)
    cl = [CloidGenerator(prefix=1).next() for _ in range(2)]
    assert signer.sign_cancel_by_cloid_fast(3, cl, 2, nonce=11) == signer.cancel_by_cloid(3, cl, nonce=11)


def test_fast_path_refuses_bad_input_without_raising():
    signer = Signer(KEY, is_mainnet=False)
    good = dict(asset=0, sides=[1], px_ticks=[100], sizes=[0.01], cloids=None, n=1, px_decimals=1, sz_decimals=5)
    assert signer.sign_bulk_orders_ticks(**good) is not None
    bad_cases = [dict(n=0), dict(tif="Fok"), dict(sides=[0]), dict(sizes=[0.0]), dict(px_ticks=[-5]),
                 dict(n=2), dict(sizes=[float("nan")]), dict(px_decimals=12), dict(px_ticks=["x"])]
    for i, change in enumerate(bad_cases, 1):
        args = {**good, **change}
        tif = args.pop("tif", "Alo")
        assert signer.sign_bulk_orders_ticks(**args, tif=tif) is None
        assert signer.errors == i and signer.last_error
    assert signer.sign_cancel_fast(0, [1], 5) is None
    assert signer.sign_batch_modify_ticks(0, [], [1], [100], [0.01], None, 1, 1, 5) is None


def test_builders_reject_malformed_fields():
    signer = Signer(KEY, is_mainnet=False)
    with pytest.raises(ValueError, match="tif"):
        signer.bulk_orders(0, [OrderSpec(True, "1", "1", False, "Fok")])
    with pytest.raises(ValueError, match="cloid"):
        signer.cancel_by_cloid(0, ["0x12"])
    with pytest.raises(ValueError, match="vault_address"):
        Signer(KEY, is_mainnet=False, vault_address="0xabc")
    with pytest.raises(TypeError):
        Signer("0x" + "11" * 32, is_mainnet=False)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------- nonces, cloids, frames
def test_nonces_strictly_increase_under_a_frozen_or_backward_clock():
    now = [1_700_000_000_000]
    signer = Signer(KEY, is_mainnet=False, clock_ms=lambda: now[0])
    seen = [signer.next_nonce() for _ in range(1000)]
    assert seen == list(range(now[0], now[0] + 1000))
    now[0] -= 5000  # clock steps back
    assert signer.next_nonce() == seen[-1] + 1
    now[0] += 10**6  # and jumps forward
    assert signer.next_nonce() == now[0]
    payloads = [signer.noop() for _ in range(5)]
    nonces = [p["nonce"] for p in payloads]
    assert nonces == sorted(set(nonces)) and nonces[0] == now[0] + 1
    signer.cancel(0, [1], nonce=nonces[-1] + 100)  # an explicit nonce ahead of the counter
    assert signer.next_nonce() == nonces[-1] + 101


def test_expires_after_window_follows_the_nonce():
    signer = Signer(KEY, is_mainnet=False, expires_after_ms=30_000, clock_ms=lambda: 1_000)
    payload = signer.noop()
    assert payload["expiresAfter"] == payload["nonce"] + 30_000
    assert payload["signature"] == sign_l1_action(WALLET, {"type": "noop"}, None, payload["nonce"],
                                                  payload["nonce"] + 30_000, False)


def test_cloids_are_unique_and_well_formed():
    gen_a, gen_b = CloidGenerator(), CloidGenerator()
    ids = [gen_a.next() for _ in range(5000)] + [gen_b() for _ in range(5000)]
    assert len(set(ids)) == len(ids)
    for c in ids[:50] + ids[-50:]:
        assert Cloid.from_str(c).to_raw() == c and len(c) == 34


def test_ws_post_frame_carries_the_payload_in_order():
    signer = Signer(KEY, is_mainnet=False)
    payload = signer.cancel(0, [42], nonce=123)
    frame = ws_post_frame(payload, 7)
    decoded = orjson.loads(frame)
    assert decoded == {"method": "post", "id": 7, "request": {"type": "action", "payload": payload}}
    assert frame.index(b'"action"') < frame.index(b'"nonce"') < frame.index(b'"signature"') \
        < frame.index(b'"vaultAddress"') < frame.index(b'"expiresAfter"')
    assert recover_signer(decoded["request"]["payload"], False) == KEY.address


# ------------------------------------------------------------------------------- compiled packer and signer
PACKER = wire.ActionPacker()
INT64 = st.integers(-2**63, 2**63 - 1)
INT_EDGES = [0, 1, 127, 128, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**63 - 1, -1, -32, -33, -128, -129,
             -32768, -32769, -2**31, -2**31 - 1, -2**63]


@settings(deadline=None, max_examples=300)
@given(st.one_of(INT64, st.sampled_from(INT_EDGES)))
def test_compiled_int_encoding_equals_msgpack(value):
    assert wire.msgpack_int(value) == msgpack.packb(value)


LONG_TEXT = st.text(alphabet="0123456789abcdefx", min_size=0, max_size=300)


@st.composite
def packer_batches(draw):
    n = draw(st.one_of(st.integers(1, 20), st.sampled_from([15, 16, 199, 200])))
    sz_dec = draw(st.integers(0, 8))
    px_dec = draw(st.integers(0, 8))
    sides = [draw(st.sampled_from([1, -1])) for _ in range(n)]
    ticks = [draw(st.integers(1, 2**63 - 1)) for _ in range(n)]
    lots = [draw(st.integers(1, 10**12)) for _ in range(n)]
    cloids = draw(st.one_of(st.none(), st.lists(st.one_of(st.none(), CLOIDS, LONG_TEXT), min_size=n,
                                                 max_size=n)))
    targets = [draw(st.one_of(st.integers(0, 2**63 - 1), CLOIDS, LONG_TEXT)) for _ in range(n)]
    asset = draw(st.one_of(st.sampled_from([0, 1, 127, 128, 10000, 110003]), INT64))
    return n, sz_dec, px_dec, sides, ticks, lots, cloids, targets, asset


@settings(deadline=None, max_examples=150)
@given(packer_batches(), TIFS, st.booleans())
def test_packer_bytes_equal_msgpack_and_python_actions(batch, tif, reduce_only):
    n, sz_dec, px_dec, sides, ticks, lots, cloids, targets, asset = batch
    sizes = [lot / 10**sz_dec for lot in lots]
    python = Signer(KEY, is_mainnet=False, compiled=False)
    built = PACKER.order_action(asset, sides, ticks, sizes, cloids, n, px_dec, sz_dec, tif, reduce_only)
    assert built is not None
    action, packed = built
    assert packed == msgpack.packb(action)
    wires = python._tick_order_wires(asset, sides, ticks, sizes, cloids, n, px_dec, sz_dec, tif, reduce_only)
    expected = {"type": "order", "orders": wires, "grouping": "na"}
    assert packed == msgpack.packb(expected) and orjson.dumps(action) == orjson.dumps(expected)
    action, packed = PACKER.batch_modify_action(asset, targets, sides, ticks, sizes, cloids, n, px_dec, sz_dec,
                                                tif, reduce_only)
    expected = {"type": "batchModify", "modifies": [{"oid": t, "order": w} for t, w in zip(targets, wires, strict=True)]}
    assert packed == msgpack.packb(expected) and orjson.dumps(action) == orjson.dumps(expected)
    keys = [t for t in targets if isinstance(t, str)] or ["0x" + "0" * 32]
    action, packed = PACKER.cancel_by_cloid_action(asset, keys, len(keys))
    assert packed == msgpack.packb({"type": "cancelByCloid", "cancels": [{"asset": asset, "cloid": c}
                                                                          for c in keys]})
    assert action == msgpack.unpackb(packed)
    oids = [t for t in targets if isinstance(t, int)] or [0]
    action, packed = PACKER.cancel_action(asset, oids, len(oids))
    assert packed == msgpack.packb({"type": "cancel", "cancels": [{"a": asset, "o": o} for o in oids]})
    assert action == msgpack.unpackb(packed)


@settings(deadline=None, max_examples=40)
@given(tick_batches(), TIFS, st.booleans(), st.integers(0, 200), st.booleans(),
       st.one_of(st.none(), ADDRESSES), st.one_of(st.none(), st.integers(1, 600_000)))
def test_compiled_and_python_paths_give_identical_payloads(batch, tif, reduce_only, asset, is_mainnet, vault,
                                                           window):
    n, sz_dec, px_dec, sides, ticks, lots, cloids = batch
    sizes = [lot / 10**sz_dec for lot in lots]
    fast = Signer(KEY, is_mainnet=is_mainnet, vault_address=vault, expires_after_ms=window)
    slow = Signer(PrivateKey.from_hex(SECRET, backend="coincurve"), is_mainnet=is_mainnet, vault_address=vault,
                  expires_after_ms=window, compiled=False)
    assert fast.fast_path == "compiled+libsecp256k1" and slow.fast_path == "python+coincurve"
    nonce = 1_750_000_000_000
    calls = [
        lambda s: s.sign_bulk_orders_ticks(asset, sides, ticks, sizes, cloids, n, px_dec, sz_dec, tif, reduce_only,
                                           nonce=nonce),
        lambda s: s.sign_batch_modify_ticks(asset, list(range(7, 7 + n)), sides, ticks, sizes, cloids, n, px_dec,
                                            sz_dec, tif, reduce_only, nonce=nonce + 1),
        lambda s: s.sign_cancel_by_cloid_fast(asset, [c for c in cloids if c] or ["0x" + "1" * 32],
                                              max(1, sum(1 for c in cloids if c)), nonce=nonce + 2),
        lambda s: s.sign_cancel_fast(asset, ticks, n, nonce=nonce + 3),
    ]
    for call in calls:
        a, b = call(fast), call(slow)
        assert a is not None and b is not None
        assert orjson.dumps(a) == orjson.dumps(b)  # same JSON on the wire, signature included
        assert a["signature"] == sign_l1_action(WALLET, a["action"], vault, a["nonce"], a["expiresAfter"],
                                                is_mainnet)


def test_unusual_inputs_take_the_python_path_with_the_same_result():
    np = pytest.importorskip("numpy")
    fast, slow = Signer(KEY, is_mainnet=True), Signer(KEY, is_mainnet=True, compiled=False)
    cl = ["0x" + "ab" * 16, None]
    cases = [  # (sides, ticks, sizes, cloids): each one is refused by the packer, signed by the Python path
        ([1, -1], np.array([1001, 1002]), [0.5, 0.25], cl),       # numpy ints
        (np.array([1, -1]), [1001, 1002], np.array([0.5, 0.25]), cl),
        ([1, -1], [1001, 1002], [1, 2], cl),                      # int sizes
        ([1, -1], [1001.0, 1002.0], [0.5, 0.25], cl),             # float ticks (truncated by int())
        ([1, -1], [1001, 1002], [0.5, 0.25], ["0x" + "é" * 32, None]),  # non-ASCII cloid
    ]
    for sides, ticks, sizes, cloids in cases:
        assert PACKER.order_action(0, sides, ticks, sizes, cloids, 2, 1, 2, "Alo", False) is None
        a = fast.sign_bulk_orders_ticks(0, sides, ticks, sizes, cloids, 2, 1, 2, nonce=99)
        b = slow.sign_bulk_orders_ticks(0, sides, ticks, sizes, cloids, 2, 1, 2, nonce=99)
        assert a is not None and orjson.dumps(a) == orjson.dumps(b)
    assert PACKER.order_action(0, [1], [5], [0.5], None, 1, 1, 2, "Fok", False) is None
    assert PACKER.order_action(0, [1], [5], [0.5], None, 2, 1, 2, "Alo", False) is None  # arrays shorter than n
    assert PACKER.order_action(0, [True], [5], [0.5], None, 1, 1, 2, "Alo", False) is None
    assert PACKER.cancel_action(0, [2**64], 1) is None and PACKER.cancel_by_cloid_action(0, [7], 1) is None


def test_packed_bytes_reach_the_sign_hook():
    seen = []

    class Recording(Signer):
        def _sign_packed(self, packed, nonce, expires_after):
            seen.append((packed, nonce, expires_after))
            return super()._sign_packed(packed, nonce, expires_after)

    signer = Recording(KEY, is_mainnet=False, expires_after_ms=1000)
    payload = signer.sign_bulk_orders_ticks(0, [1], [1001], [0.5], None, 1, 1, 2, nonce=5)
    assert seen == [(msgpack.packb(payload["action"]), 5, 1005)]
    assert payload["signature"] == sign_l1_action(WALLET, payload["action"], None, 5, 1005, False)


def test_compiled_keccak_over_block_boundaries():
    for n in (0, 1, 135, 136, 137, 271, 272, 273, 1000, 4096):
        data = bytes(range(256)) * (n // 256) + bytes(range(n % 256))
        assert wire.keccak256(data) == ref.keccak256(data)


def test_packer_grows_its_buffer_and_survives_sequences_that_change_under_it():
    long_cloids = [f"0x{i:04x}" + "ab" * 2500 for i in range(200)]  # ~1 MB of msgpack, past the 64 KiB start
    sides, ticks, sizes = [1, -1] * 100, list(range(1, 201)), [0.5] * 200
    action, packed = PACKER.order_action(3, sides, ticks, sizes, long_cloids, 200, 1, 2, "Gtc", True)
    assert len(packed) > 10**6 and packed == msgpack.packb(action)
    action, packed = PACKER.batch_modify_action(3, long_cloids, sides, ticks, sizes, long_cloids, 200, 1, 2, "Gtc",
                                                True)
    assert packed == msgpack.packb(action)
    action, packed = PACKER.cancel_by_cloid_action(3, long_cloids, 200)
    assert packed == msgpack.packb(action)

    class Growing(list):
        """Each read returns a longer string than the last one."""

        reads = 0

        def __getitem__(self, i):
            Growing.reads += 1
            return "0x" + "f" * (10 * Growing.reads)

    for build in (lambda c: PACKER.order_action(0, [1] * 50, [5] * 50, [0.5] * 50, c, 50, 1, 2, "Alo", False),
                  lambda c: PACKER.batch_modify_action(0, c, [1] * 50, [5] * 50, [0.5] * 50, c, 50, 1, 2, "Alo",
                                                       False),
                  lambda c: PACKER.cancel_by_cloid_action(0, c, 50)):
        built = build(Growing([None] * 50))
        assert built is None or built[1] == msgpack.packb(built[0])
