"""Signer recovery, API wallets and nonces of the local venue."""

from __future__ import annotations

import json

import eth_account
import orjson
import pytest
from hyperliquid.utils.signing import sign_agent, sign_l1_action
from hypothesis import given, settings
from hypothesis import strategies as st

from hlfast.venue.auth import (
    NONCE_SET_SIZE,
    NonceSet,
    Registry,
    approve_agent_digest,
    recover_address,
    recover_l1_signer,
)
from hlfast.venue.server import Venue, VenueConfig
from tests.paths import HL_FIXTURES
from tests.reference.venue_stub_source import make_static

pytestmark = pytest.mark.timeout(60)

FIXTURE = str(HL_FIXTURES / "local_sdk_generated_exchange_requests.json")
KEY = "0x0123456789012345678901234567890123456789012345678901234567890123"
WALLET = eth_account.Account.from_key(KEY)
USER = WALLET.address.lower()
NOW = 1_795_292_373_000


def _vectors() -> list[dict]:
    with open(FIXTURE) as fh:
        return json.load(fh)["vectors"]


VECTORS = _vectors()


def test_fixture_has_16_vectors():
    assert len(VECTORS) == 16


@pytest.mark.parametrize("vector", VECTORS, ids=[v["label"] for v in VECTORS])
def test_sdk_vectors_recover_to_their_signer(vector):
    body = orjson.loads(vector["request_body_raw"])
    assert recover_l1_signer(body, "b") == vector["expected_signer"].lower()
    assert recover_l1_signer(body, "a") == vector["recovered_with_source_a_mainnet"].lower()


def test_key_order_and_number_text_are_part_of_the_hash():
    body = orjson.loads(VECTORS[0]["request_body_raw"])
    wire = body["action"]["orders"][0]
    reordered = dict(body, action=dict(body["action"], orders=[dict(sorted(wire.items()))]))
    assert recover_l1_signer(reordered) != USER
    retexted = dict(body, action=dict(body["action"], orders=[dict(wire, p=wire["p"] + ".0")]))
    assert recover_l1_signer(retexted) != USER


def test_short_hex_r_s_are_accepted():
    action = {"type": "noop"}
    for nonce in range(NOW, NOW + 40):  # some signature component will have a leading zero nibble
        sig = sign_l1_action(WALLET, action, None, nonce, None, False)
        short = {"r": hex(int(sig["r"], 16)), "s": hex(int(sig["s"], 16)), "v": sig["v"]}
        body = {"action": action, "nonce": nonce, "signature": short, "vaultAddress": None, "expiresAfter": None}
        assert recover_l1_signer(body) == USER


def test_approve_agent_digest_matches_sdk_signature():
    agent = eth_account.Account.create()
    action = {"type": "approveAgent", "agentAddress": agent.address, "agentName": "bot", "nonce": NOW}
    signature = sign_agent(WALLET, action, False)  # adds signatureChainId and hyperliquidChain
    assert recover_address(approve_agent_digest(action), signature) == USER
    unnamed = {"type": "approveAgent", "agentAddress": agent.address, "agentName": "", "nonce": NOW + 1}
    signature = sign_agent(WALLET, unnamed, False)
    del unnamed["agentName"]  # the SDK drops an empty name after signing
    assert recover_address(approve_agent_digest(unnamed), signature) == USER


def _reference_nonces(sequence: list[int], now_ms: int) -> list[bool]:
    kept: list[int] = []
    verdicts = []
    for n in sequence:
        ok = n not in kept and now_ms - 2 * 86_400_000 < n < now_ms + 86_400_000
        ok = ok and (len(kept) < NONCE_SET_SIZE or n > min(kept))
        if ok:
            kept.append(n)
            if len(kept) > NONCE_SET_SIZE:
                kept.remove(min(kept))
        verdicts.append(ok)
    return verdicts


@settings(deadline=None, max_examples=60)
@given(st.lists(st.integers(NOW - 300, NOW + 300), min_size=1, max_size=250))
def test_nonce_set_matches_reference(sequence):
    nonces = NonceSet()
    got = [nonces.check_and_add(n, NOW) is None for n in sequence]
    assert got == _reference_nonces(sequence, NOW)


def test_nonce_error_texts():
    nonces = NonceSet()
    assert nonces.check_and_add(NOW, NOW) is None
    assert nonces.check_and_add(NOW, NOW) == f"Invalid nonce: duplicate nonce {NOW}"
    for i in range(1, NONCE_SET_SIZE + 1):
        assert nonces.check_and_add(NOW + i, NOW) is None
    assert nonces.check_and_add(NOW - 5, NOW) == f"Invalid nonce: nonce too low {NOW - 5} < {NOW + 1}"
    old = NOW - 3 * 86_400_000
    assert nonces.check_and_add(old, NOW).startswith(f"Invalid nonce: nonce too low {old} < ")


# ---- through Venue.exchange ------------------------------------------------------------------------------------


def make_venue(**config) -> Venue:
    config.setdefault("accounts", [(USER, 100_000.0)])
    cfg = VenueConfig(coins=("BTC",), **config)
    venue = Venue(cfg, make_static(["BTC"], 1, 50))
    venue.step_block()
    return venue


def signed(action: dict, nonce: int, wallet=WALLET) -> dict:
    signature = sign_l1_action(wallet, action, None, nonce, None, False)
    return {"action": action, "nonce": nonce, "signature": signature, "vaultAddress": None, "expiresAfter": None}


def test_tampered_signature_reports_the_garbage_signer():
    venue = make_venue()
    body = signed({"type": "noop"}, NOW)
    body["action"] = {"type": "noop", "x": 1}  # signed bytes no longer match
    reply = venue.exchange(body, NOW)
    recovered = recover_l1_signer(body)
    assert recovered != USER
    assert reply == {"status": "err", "response": f"User or API Wallet {recovered} does not exist."}


def test_unparsable_signature_and_unknown_and_unfunded_signers():
    venue = make_venue()
    body = signed({"type": "noop"}, NOW)
    body["signature"] = {"r": "0xzz", "s": "0x1", "v": 27}
    assert venue.exchange(body, NOW) == {"status": "err", "response": "Unable to recover signer."}
    stranger = eth_account.Account.create()
    reply = venue.exchange(signed({"type": "noop"}, NOW, stranger), NOW)
    assert reply["response"] == f"User or API Wallet {stranger.address.lower()} does not exist."
    unfunded = Registry()
    unfunded.add_account(stranger.address, 0.0)
    result = unfunded.authenticate(signed({"type": "noop"}, NOW, stranger))
    assert result.error == f"Must deposit before performing actions. User: {stranger.address.lower()}"


def test_reused_nonce_rejected():
    venue = make_venue()
    body = signed({"type": "noop"}, NOW)
    assert venue.exchange(body, NOW) == {"status": "ok", "response": {"type": "default"}}
    assert venue.exchange(body, NOW) == {"status": "err", "response": f"Invalid nonce: duplicate nonce {NOW}"}


def test_auto_fund_accepts_new_signers():
    venue = make_venue(auto_fund=True)
    stranger = eth_account.Account.create()
    assert venue.exchange(signed({"type": "noop"}, NOW, stranger), NOW)["status"] == "ok"
    assert venue.registry.deposits[stranger.address.lower()] == 100_000.0


def test_approved_agent_trades_for_its_master():
    venue = make_venue()
    agent = eth_account.Account.create()
    action = {"type": "approveAgent", "agentAddress": agent.address, "agentName": "mm", "nonce": NOW}
    signature = sign_agent(WALLET, action, False)
    body = {"action": action, "nonce": NOW, "signature": signature, "vaultAddress": None, "expiresAfter": None}
    assert venue.exchange(body, NOW) == {"status": "ok", "response": {"type": "default"}}
    order = {"a": 0, "b": True, "p": "59000", "s": "0.01", "r": False, "t": {"limit": {"tif": "Alo"}}}
    reply = venue.exchange(signed({"type": "order", "orders": [order], "grouping": "na"}, NOW + 1, agent), NOW)
    oid = reply["response"]["data"]["statuses"][0]["resting"]["oid"]
    assert venue.engine.orders[oid].user == USER
    assert venue.info({"type": "openOrders", "user": agent.address}) == []  # queried by agent: empty
    assert [o["oid"] for o in venue.info({"type": "openOrders", "user": USER})] == [oid]
    # nonces are per signer: the master may reuse the agent's nonce
    assert venue.exchange(signed({"type": "noop"}, NOW + 1), NOW)["status"] == "ok"


def test_mainnet_source_option_recovers_mainnet_signatures():
    venue = make_venue(signing_source="a")
    signature = sign_l1_action(WALLET, {"type": "noop"}, None, NOW, None, True)
    body = {"action": {"type": "noop"}, "nonce": NOW, "signature": signature, "vaultAddress": None, "expiresAfter": None}
    assert venue.exchange(body, NOW)["status"] == "ok"
