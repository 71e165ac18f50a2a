"""Keys: loading, address derivation, signing, and that the secret never leaks into text."""
from __future__ import annotations

import copy
import logging
import pickle
import traceback

import pytest
from eth_account import Account
from eth_keys import keys as eth_keys
from hyperliquid.utils.signing import sign_l1_action
from hypothesis import given, settings
from hypothesis import strategies as st

from hlfast.keys import KeyLoadError, PrivateKey, generate_private_key, load_private_key, to_checksum_address
from hlfast.signer import Signer

SECRET_HEX = "0x0123456789012345678901234567890123456789012345678901234567890123"
SDK_TEST_ADDRESS = "0x14791697260E4c9A71f18484C9f997B308e59325"
DISTINCT_HEX = "0x9f3a6c1e5b7d2f408e1c3a5b7d9f1e2c4a6b8d0f1e3c5a7b9d1f3e5c7a9b1d3f"
MASTER = "0x1719884eb866cb12b2287399b15f7db5e7d775ea"


def _leaks(text: str, secret_hex: str) -> bool:
    body = secret_hex[2:].lower()
    low = text.lower()
    return any(body[i:i + 12] in low for i in range(0, len(body) - 12, 4))


def test_address_matches_eth_account():
    key = PrivateKey.from_hex(SECRET_HEX)
    assert key.address == SDK_TEST_ADDRESS
    other = PrivateKey.from_hex(DISTINCT_HEX)
    assert other.address == Account.from_key(DISTINCT_HEX).address
    assert not key.is_agent and key.account_address == key.address


def test_sign_digest_matches_eth_keys():
    key = PrivateKey.from_hex(DISTINCT_HEX)
    reference = eth_keys.PrivateKey(bytes.fromhex(DISTINCT_HEX[2:]))
    for i in range(20):
        digest = bytes([i]) * 32
        sig = reference.sign_msg_hash(digest)
        assert key.sign_digest(digest) == (sig.r, sig.s, sig.v + 27)


def test_load_from_env_and_file(monkeypatch, tmp_path):
    monkeypatch.setenv("HLFAST_PRIVATE_KEY", "  " + SECRET_HEX + "\n")
    monkeypatch.delenv("HLFAST_ACCOUNT_ADDRESS", raising=False)
    assert load_private_key().address == SDK_TEST_ADDRESS
    path = tmp_path / "key.hex"
    path.write_text(DISTINCT_HEX[2:] + "\n")
    assert load_private_key(key_file=path).address == Account.from_key(DISTINCT_HEX).address
    monkeypatch.setenv("HLFAST_ACCOUNT_ADDRESS", MASTER)
    agent = load_private_key()
    assert agent.is_agent and agent.account_address == to_checksum_address(MASTER)
    assert agent.address == SDK_TEST_ADDRESS


@pytest.mark.parametrize("bad", [
    DISTINCT_HEX[:-2],                # too short
    DISTINCT_HEX + "00",              # too long
    DISTINCT_HEX[:-1] + "g",          # not hex
    "0x" + "00" * 32,                 # zero
    "0x" + "ff" * 32,                 # above the curve order
])
def test_bad_keys_give_clear_errors_without_the_key(monkeypatch, bad):
    monkeypatch.setenv("HLFAST_PRIVATE_KEY", bad)
    with pytest.raises(KeyLoadError) as info:
        load_private_key()
    text = str(info.value) + "".join(traceback.format_exception(info.value))
    assert "HLFAST_PRIVATE_KEY" in str(info.value)
    assert not _leaks(text, bad if len(bad) >= 40 else DISTINCT_HEX)
    assert info.value.__cause__ is None


def test_missing_sources(monkeypatch, tmp_path):
    monkeypatch.delenv("HLFAST_PRIVATE_KEY", raising=False)
    with pytest.raises(KeyLoadError, match="HLFAST_PRIVATE_KEY is not set"):
        load_private_key()
    with pytest.raises(KeyLoadError, match="does not exist"):
        load_private_key(key_file=tmp_path / "absent")


def test_textual_forms_never_show_the_secret(caplog):
    key = PrivateKey.from_hex(DISTINCT_HEX, account_address=MASTER)
    signer = Signer(key, is_mainnet=False)
    forms = [repr(key), str(key), f"{key}", f"{key!r}", format(key, "x"), repr(signer), str([key]),
             str({"k": key})]
    for text in forms:
        assert not _leaks(text, DISTINCT_HEX)
    assert key.address in repr(key) and to_checksum_address(MASTER) in repr(key)
    logger = logging.getLogger("hlfast.test.keys")
    with caplog.at_level(logging.DEBUG):
        logger.info("key %s %r", key, key)
        logger.debug("signer %s", signer)
        try:
            raise RuntimeError(f"failed with {key}")
        except RuntimeError:
            logger.exception("boom")
    assert caplog.text and key.address in caplog.text
    assert not _leaks(caplog.text, DISTINCT_HEX)


def test_not_picklable_and_copies_are_the_same_key():
    key = PrivateKey.from_hex(DISTINCT_HEX)
    with pytest.raises(TypeError):
        pickle.dumps(key)
    with pytest.raises(TypeError):
        pickle.dumps({"wrapped": [key]})
    assert copy.copy(key) is key and copy.deepcopy(key) is key
    with pytest.raises(AttributeError):
        key.__dict__  # noqa: B018 - no instance dict to dump


def test_generate_private_key_is_random_and_usable():
    keys = {generate_private_key().address for _ in range(20)}
    assert len(keys) == 20
    key = generate_private_key()
    r, s, v = key.sign_digest(b"\x11" * 32)
    assert 0 < r and 0 < s and v in (27, 28)


def test_bad_account_address():
    with pytest.raises(KeyLoadError, match="account address"):
        PrivateKey.from_hex(SECRET_HEX, account_address="0x1234")


# ------------------------------------------------------------------------------- signing backends
wire = pytest.importorskip("hlfast.wire")
SECP256K1_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
SECRETS = st.integers(1, SECP256K1_ORDER - 1).map(lambda v: "0x" + v.to_bytes(32, "big").hex())


@settings(deadline=None, max_examples=60)
@given(SECRETS, st.lists(st.binary(min_size=32, max_size=32), min_size=1, max_size=4))
def test_direct_libsecp256k1_and_public_coincurve_sign_identically(secret_hex, digests):
    direct = PrivateKey.from_hex(secret_hex, backend="libsecp256k1")
    public = PrivateKey.from_hex(secret_hex, backend="coincurve")
    assert direct.backend == "libsecp256k1" and public.backend == "coincurve"
    assert public.digest_signer is None and direct.address == public.address
    reference = eth_keys.PrivateKey(bytes.fromhex(secret_hex[2:]))
    for digest in digests:
        raw = direct.sign_digest_raw(digest)
        assert raw == public.sign_digest_raw(digest)
        sig = reference.sign_msg_hash(digest)
        assert direct.sign_digest(digest) == public.sign_digest(digest) == (sig.r, sig.s, sig.v + 27)


def test_auto_backend_is_direct_in_this_build():
    assert PrivateKey.from_hex(SECRET_HEX).backend == "libsecp256k1"
    with pytest.raises(ValueError, match="backend"):
        PrivateKey.from_hex(SECRET_HEX, backend="openssl")


@pytest.mark.parametrize("failure", [AttributeError("no secp256k1_ecdsa_sign_recoverable"),
                                     ImportError("no coincurve._libsecp256k1")])
def test_missing_low_level_symbols_fall_back_to_coincurve(monkeypatch, failure):
    def unavailable():
        raise failure

    monkeypatch.setattr(wire, "_secp256k1_cache", None)
    monkeypatch.setattr(wire, "_load_secp256k1", unavailable)
    key = PrivateKey.from_hex(SECRET_HEX)
    assert key.backend == "coincurve" and key.digest_signer is None
    with pytest.raises(RuntimeError, match="not available"):
        PrivateKey.from_hex(SECRET_HEX, backend="libsecp256k1")
    signer = Signer(key, is_mainnet=False)
    assert signer.fast_path == "compiled+coincurve"
    payload = signer.sign_bulk_orders_ticks(0, [1], [1001], [0.5], None, 1, 1, 2, nonce=77)
    direct = Signer(PrivateKey.from_hex(SECRET_HEX, backend="coincurve"), is_mainnet=False, compiled=False)
    assert payload == direct.sign_bulk_orders_ticks(0, [1], [1001], [0.5], None, 1, 1, 2, nonce=77)
    assert payload["signature"] == sign_l1_action(Account.from_key(SECRET_HEX), payload["action"], None, 77,
                                                  None, False)


def test_direct_signer_never_shows_or_exports_the_secret():
    key = PrivateKey.from_hex(DISTINCT_HEX)
    direct = key.digest_signer
    assert direct is not None
    for text in (repr(direct), str(direct), repr(key), str(dir(direct))):
        assert not _leaks(text, DISTINCT_HEX)
    with pytest.raises(TypeError):
        pickle.dumps(direct)
    with pytest.raises(TypeError):
        copy.copy(direct)
    assert not hasattr(direct, "secret") and not hasattr(direct, "__dict__")
    with pytest.raises(ValueError) as info:
        direct.sign_digest(b"short")
    assert not _leaks("".join(traceback.format_exception(info.value)), DISTINCT_HEX)
