"""Plain-Python references for action signing: number text, keccak digest, EIP-712 constants."""
from __future__ import annotations

from decimal import Decimal

from Crypto.Hash import keccak


def keccak256(data: bytes) -> bytes:
    return keccak.new(digest_bits=256, data=data).digest()


def ticks_to_wire(ticks: int, decimals: int) -> str:
    """ticks × 10^-decimals as the shortest plain decimal text (via Decimal, no formatting tricks)."""
    value = Decimal(ticks).scaleb(-decimals).normalize()
    text = f"{value:f}"
    return "0" if text in ("-0", "0") else text


def domain_separator(name: str = "Exchange", version: str = "1", chain_id: int = 1337,
                     verifying_contract: bytes = bytes(20)) -> bytes:
    """EIP-712 domain separator built from the type string."""
    type_hash = keccak256(b"EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)")
    return keccak256(type_hash + keccak256(name.encode()) + keccak256(version.encode())
                     + chain_id.to_bytes(32, "big") + bytes(12) + verifying_contract)


def agent_typehash() -> bytes:
    return keccak256(b"Agent(string source,bytes32 connectionId)")


def l1_digest(packed_action: bytes, nonce: int, vault_address: str | None, expires_after: int | None,
              is_mainnet: bool) -> bytes:
    """protocol.md §3.6 steps 1–7, written out step by step."""
    data = packed_action + nonce.to_bytes(8, "big")
    data += b"\x00" if vault_address is None else b"\x01" + bytes.fromhex(vault_address[2:])
    if expires_after is not None:
        data += b"\x00" + expires_after.to_bytes(8, "big")
    connection_id = keccak256(data)
    source = b"a" if is_mainnet else b"b"
    struct_hash = keccak256(agent_typehash() + keccak256(source) + connection_id)
    return keccak256(b"\x19\x01" + domain_separator() + struct_hash)
