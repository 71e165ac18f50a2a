"""Signature recovery, accounts, API wallets and nonces, the way Hyperliquid checks them.

L1 actions are hashed from the action *as received*: the JSON is parsed with key order preserved and the
strings untouched, msgpack-encoded, followed by the nonce, the vault flag and the optional expiresAfter.
The phantom agent source is "b" (what any client signing for a non-mainnet URL uses) unless configured "a".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgpack
from coincurve import PublicKey
from Crypto.Hash import keccak

ZERO_ADDRESS_WORD = bytes(32)
NONCE_SET_SIZE = 100
NONCE_WINDOW_PAST_MS = 2 * 86_400_000
NONCE_WINDOW_FUTURE_MS = 86_400_000
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def keccak256(data: bytes) -> bytes:
    return keccak.new(data=data, digest_bits=256).digest()


def _domain_separator(name: str, version: str, chain_id: int) -> bytes:
    type_hash = keccak256(
        b"EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
    )
    return keccak256(
        type_hash
        + keccak256(name.encode())
        + keccak256(version.encode())
        + chain_id.to_bytes(32, "big")
        + ZERO_ADDRESS_WORD
    )


L1_DOMAIN_SEPARATOR = _domain_separator("Exchange", "1", 1337)
AGENT_TYPE_HASH = keccak256(b"Agent(string source,bytes32 connectionId)")
APPROVE_AGENT_TYPE_HASH = keccak256(
    b"HyperliquidTransaction:ApproveAgent(string hyperliquidChain,address agentAddress,string agentName,uint64 nonce)"
)
_SOURCE_HASHES = {"a": keccak256(b"a"), "b": keccak256(b"b")}
_ADDRESS_CACHE: dict[bytes, str] = {}  # uncompressed public key → address: signers repeat


class SignatureError(ValueError):
    """The signature object cannot be parsed or does not recover to a public key."""


def action_connection_id(
    action: Any, nonce: int, vault_address: str | None, expires_after: int | None
) -> bytes:
    """keccak(msgpack(action) ‖ nonce ‖ vault flag [‖ 0x00 ‖ expiresAfter]) with the action as received."""
    data = msgpack.packb(action)
    data += nonce.to_bytes(8, "big")
    if vault_address is None:
        data += b"\x00"
    elif not isinstance(vault_address, str):
        raise TypeError("vaultAddress is not a string")
    else:
        data += b"\x01" + bytes.fromhex(vault_address[2:] if vault_address.startswith("0x") else vault_address)
    if expires_after is not None:
        data += b"\x00" + int(expires_after).to_bytes(8, "big")
    return keccak256(data)


def l1_digest(connection_id: bytes, source: str = "b") -> bytes:
    struct_hash = keccak256(AGENT_TYPE_HASH + _SOURCE_HASHES[source] + connection_id)
    return keccak256(b"\x19\x01" + L1_DOMAIN_SEPARATOR + struct_hash)


def _address_word(address: str) -> bytes:
    raw = bytes.fromhex(address[2:] if address.startswith("0x") else address)
    if len(raw) != 20:
        raise SignatureError("bad address")
    return bytes(12) + raw


def approve_agent_digest(action: dict[str, Any]) -> bytes:
    """EIP-712 digest of a user-signed approveAgent (domain HyperliquidSignTransaction, chain signatureChainId)."""
    chain_id = int(str(action["signatureChainId"]), 16)
    struct_hash = keccak256(
        APPROVE_AGENT_TYPE_HASH
        + keccak256(str(action["hyperliquidChain"]).encode())
        + _address_word(str(action["agentAddress"]))
        + keccak256(str(action.get("agentName") or "").encode())
        + int(action["nonce"]).to_bytes(32, "big")
    )
    domain = _domain_separator("HyperliquidSignTransaction", "1", chain_id)
    return keccak256(b"\x19\x01" + domain + struct_hash)


def _sig_int(value: Any) -> int:
    """r or s: hex text (with or without 0x) or a JSON integer; anything else is unparsable."""
    if isinstance(value, bool):
        raise TypeError("boolean signature component")
    if isinstance(value, int):
        return value
    if not isinstance(value, str):
        raise TypeError("signature component is not a string")
    return int(value, 16)


def recover_address(digest: bytes, signature: Any) -> str:
    """ecrecover → lowercase 0x address. r and s may be shorter than 64 hex digits (leading zeros dropped)."""
    try:
        r = _sig_int(signature["r"])
        s = _sig_int(signature["s"])
        v = signature["v"]
    except (KeyError, TypeError, ValueError) as exc:
        raise SignatureError("unparsable signature") from exc
    if not isinstance(v, int) or isinstance(v, bool):  # "27", 27.0 or false are not a recovery id
        raise SignatureError("unparsable signature")
    if v >= 27:
        v -= 27
    if v not in (0, 1) or not (0 < r < SECP256K1_N) or not (0 < s < SECP256K1_N):
        raise SignatureError("signature out of range")
    try:
        public_key = PublicKey.from_signature_and_message(
            r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes([v]), digest, hasher=None
        )
    except Exception as exc:  # coincurve raises plain Exception on a point that does not recover
        raise SignatureError("no public key recovers") from exc
    point = public_key.format(compressed=False)
    address = _ADDRESS_CACHE.get(point)
    if address is None:
        address = "0x" + keccak256(point[1:])[-20:].hex()
        if len(_ADDRESS_CACHE) > 10_000:
            _ADDRESS_CACHE.clear()
        _ADDRESS_CACHE[point] = address
    return address


def recover_l1_signer(body: dict[str, Any], source: str = "b") -> str:
    """Recover the signer of an /exchange body (action, nonce, signature, vaultAddress, expiresAfter)."""
    try:
        connection_id = action_connection_id(
            body["action"], int(body["nonce"]), body.get("vaultAddress"), body.get("expiresAfter")
        )
    except (KeyError, TypeError, ValueError, OverflowError) as exc:
        raise SignatureError("unhashable action") from exc
    return recover_address(l1_digest(connection_id, source), body.get("signature"))


class NonceSet:
    """The 100 highest nonces of one signer: a new one must be unused and above the smallest kept."""

    __slots__ = ("_sorted", "_members")

    def __init__(self) -> None:
        self._sorted: list[int] = []
        self._members: set[int] = set()

    def check_and_add(self, nonce: int, now_ms: int) -> str | None:
        """Return an error text, or None after recording the nonce."""
        if nonce in self._members:
            return f"Invalid nonce: duplicate nonce {nonce}"
        low_bound = now_ms - NONCE_WINDOW_PAST_MS
        if nonce <= low_bound:
            return f"Invalid nonce: nonce too low {nonce} < {low_bound}"
        if nonce >= now_ms + NONCE_WINDOW_FUTURE_MS:
            return f"Invalid nonce: nonce too high {nonce} > {now_ms + NONCE_WINDOW_FUTURE_MS}"
        if len(self._sorted) >= NONCE_SET_SIZE:
            smallest = self._sorted[0]
            if nonce < smallest:
                return f"Invalid nonce: nonce too low {nonce} < {smallest}"
            self._members.discard(self._sorted.pop(0))
        _insort(self._sorted, nonce)
        self._members.add(nonce)
        return None


def _insort(values: list[int], item: int) -> None:
    # nonces almost always arrive increasing: append is the common case
    if not values or item > values[-1]:
        values.append(item)
        return
    lo, hi = 0, len(values)
    while lo < hi:
        mid = (lo + hi) // 2
        if values[mid] < item:
            lo = mid + 1
        else:
            hi = mid
    values.insert(lo, item)


@dataclass
class AuthResult:
    """Outcome of authenticating one /exchange body: the account acted for, or the error text."""

    account: str | None
    signer: str | None
    error: str | None


@dataclass
class Registry:
    """Declared accounts (address → USDC deposit), approved agents (agent → master) and per-signer nonces."""

    auto_fund: bool = False
    default_usdc: float = 100_000.0
    source: str = "b"
    deposits: dict[str, float] = field(default_factory=dict)
    agents: dict[str, str] = field(default_factory=dict)
    agent_names: dict[str, str] = field(default_factory=dict)
    vault_owners: dict[str, str] = field(default_factory=dict)
    nonces: dict[str, NonceSet] = field(default_factory=dict)

    def add_account(self, address: str, usdc: float | None = None) -> str:
        key = address.lower()
        self.deposits[key] = self.default_usdc if usdc is None else float(usdc)
        return key

    def account_of(self, signer: str) -> str | None:
        if signer in self.agents:
            return self.agents[signer]
        if signer in self.deposits:
            return signer
        return None

    def authenticate(self, body: dict[str, Any]) -> AuthResult:
        """Recover the signer and map it to the account it acts for (nonces are checked by use_nonce)."""
        action = body.get("action")
        if not isinstance(action, dict):
            return AuthResult(None, None, "Unable to recover signer.")
        try:
            if action.get("type") == "approveAgent":
                signer = recover_address(approve_agent_digest(action), body.get("signature"))
            else:
                signer = recover_l1_signer(body, self.source)
        except (SignatureError, KeyError, TypeError, ValueError, OverflowError, RecursionError):
            # OverflowError: a negative or oversized chain id / nonce in a user-signed action;
            # RecursionError: str() of a field nested ~1000 deep
            return AuthResult(None, None, "Unable to recover signer.")
        account = self.account_of(signer)
        if account is None:
            if not self.auto_fund:
                return AuthResult(None, signer, f"User or API Wallet {signer} does not exist.")
            account = self.add_account(signer)
        if self.deposits.get(account, 0.0) <= 0.0:
            return AuthResult(None, signer, f"Must deposit before performing actions. User: {account}")
        vault = body.get("vaultAddress")
        if vault is not None:
            vault_key = str(vault).lower()
            # a vault or sub-account must itself be a declared account the signer's account controls
            if vault_key not in self.deposits or (vault_key != account and self.vault_owners.get(vault_key) != account):
                return AuthResult(None, signer, f"User or API Wallet {vault_key} does not exist.")
            account = vault_key
        return AuthResult(account, signer, None)

    def use_nonce(self, signer: str, nonce: Any, now_ms: int) -> str | None:
        """Consume a nonce of `signer`; returns the error text when it is reused or outside the window."""
        if not isinstance(nonce, int) or isinstance(nonce, bool) or not 0 <= nonce < 1 << 64:
            return f"Invalid nonce: {nonce}"
        return self.nonces.setdefault(signer, NonceSet()).check_and_add(nonce, now_ms)

    def approve_agent(self, account: str, action: dict[str, Any]) -> str | None:
        """Register an API wallet for `account`; returns an error text or None."""
        expected_chain = "Mainnet" if self.source == "a" else "Testnet"
        if action.get("hyperliquidChain") != expected_chain:
            return f"User or API Wallet {account} does not exist."
        try:
            agent = str(action["agentAddress"]).lower()
            _address_word(agent)
        except (KeyError, SignatureError, ValueError):
            return "Invalid agent address."
        if agent in self.deposits:
            return "Agent address is already a user."
        self.agents[agent] = account
        self.agent_names[agent] = str(action.get("agentName") or "")
        return None
