"""EIP-712 signing of Hyperliquid L1 actions and the /exchange payload builders.

The digest is computed directly (protocol.md §3.6) with the domain separator and the
Agent type hash precomputed, and signed with libsecp256k1 through coincurve.  The output
is bit-identical to ``hyperliquid.utils.signing.sign_l1_action`` for the same inputs.

With the compiled kernel (hlfast.wire) the engine's actions are packed to msgpack straight from
their arrays, and digest, signature and its hex text come from one C call
(:class:`hlfast.wire.Secp256k1Signer`); without it, or for unusual input, the Python path below
produces the same bytes.

Engine fast path: :meth:`Signer.sign_bulk_orders_ticks` (and ``sign_batch_modify_ticks``)
take integer price ticks and coin sizes and return the signed payload, or ``None`` with
``last_error`` set when the input is unusable — they never raise.
"""
from __future__ import annotations

import os
import re
import struct
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NamedTuple

import coincurve
import msgpack
import orjson

from hlfast.keys import PrivateKey, keccak256, to_checksum_address

try:  # optional compiled digest, number text and action packer (cext/wire.pyx); same bytes as the pure path
    from hlfast.wire import ActionPacker as _ActionPacker
    from hlfast.wire import l1_digest as _compiled_l1_digest
    from hlfast.wire import ticks_to_wire as _compiled_ticks_to_wire
except ImportError:  # pragma: no cover - depends on the build
    _ActionPacker = None
    _compiled_l1_digest = None
    _compiled_ticks_to_wire = None

__all__ = [
    "AGENT_TYPEHASH",
    "DOMAIN_SEPARATOR",
    "CloidGenerator",
    "OrderSpec",
    "ModifySpec",
    "Signer",
    "action_digest",
    "recover_signer",
    "size_to_wire",
    "ticks_to_wire",
    "ws_post_frame",
]

# keccak256 of the EIP-712 domain {name:"Exchange", version:"1", chainId:1337, verifyingContract:0x0}
DOMAIN_SEPARATOR = bytes.fromhex("d79297fcdf2ffcd4ae223d01edaa2ba214ff8f401d7c9300d995d17c82aa4040")
# keccak256("Agent(string source,bytes32 connectionId)")
AGENT_TYPEHASH = bytes.fromhex("26f05c2f7239b6983075e58321292d77b3aa173d19b27257ac96ab362570f508")
_SOURCE_HASH = {True: keccak256(b"a"), False: keccak256(b"b")}
_EIP712_PREFIX = b"\x19\x01" + DOMAIN_SEPARATOR

_TIFS = ("Alo", "Gtc", "Ioc")
_CLOID = re.compile(r"^0x[0-9a-fA-F]{32}$")
_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
_pack = msgpack.Packer().pack
_u64 = struct.Struct(">Q").pack
_POW10 = [10**k for k in range(19)]


# ---------------------------------------------------------------------------------- wire numbers
def ticks_to_wire(ticks: int, decimals: int) -> str:
    """Decimal string of ``ticks × 10^-decimals`` with no exponent and no trailing zeros.

    Equals the SDK's ``float_to_wire`` of the same value for every ``decimals`` ≤ 8.
    """
    if decimals <= 0:
        return str(ticks * _POW10[-decimals])
    sign = ""
    if ticks < 0:
        sign, ticks = "-", -ticks
    whole, frac = divmod(ticks, _POW10[decimals])
    if frac == 0:
        return f"{sign}{whole}"
    return f"{sign}{whole}.{frac:0{decimals}d}".rstrip("0")


_fmt_ticks = ticks_to_wire if _compiled_ticks_to_wire is None else _compiled_ticks_to_wire


def size_to_wire(sz: float, sz_decimals: int) -> str:
    """Size rounded to the nearest lot (10^-sz_decimals) and written like ``float_to_wire``."""
    return ticks_to_wire(round(sz * _POW10[sz_decimals]), sz_decimals)


# ---------------------------------------------------------------------------------- digest
def _l1_digest_py(packed_action: bytes, nonce: int, vault_tail: bytes, expires_after: int | None,
                  is_mainnet: bool) -> bytes:
    data = packed_action + _u64(nonce) + vault_tail
    if expires_after is not None:
        data += b"\x00" + _u64(expires_after)
    connection_id = keccak256(data)
    struct_hash = keccak256(AGENT_TYPEHASH + _SOURCE_HASH[is_mainnet] + connection_id)
    return keccak256(_EIP712_PREFIX + struct_hash)


def _vault_tail(vault_address: str | None) -> bytes:
    if vault_address is None:
        return b"\x00"
    return b"\x01" + bytes.fromhex(vault_address[2:] if vault_address.startswith("0x") else vault_address)


def action_digest(action: dict, nonce: int, vault_address: str | None, expires_after: int | None,
                  is_mainnet: bool) -> bytes:
    """The 32-byte EIP-712 digest that an L1 action is signed over."""
    return _l1_digest_py(_pack(action), nonce, _vault_tail(vault_address), expires_after, is_mainnet)


def recover_signer(payload: dict, is_mainnet: bool) -> str:
    """Checksummed address that signed an /exchange payload (what the venue does on receipt)."""
    sig = payload["signature"]
    r, s, v = int(sig["r"], 16), int(sig["s"], 16), int(sig["v"])
    digest = action_digest(payload["action"], payload["nonce"], payload.get("vaultAddress"),
                           payload.get("expiresAfter"), is_mainnet)
    raw = r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes([v - 27])
    public = coincurve.PublicKey.from_signature_and_message(raw, digest, hasher=None)
    return to_checksum_address("0x" + keccak256(public.format(compressed=False)[1:])[-20:].hex())


def ws_post_frame(payload: dict, req_id: int) -> bytes:
    """The websocket ``post`` frame carrying an /exchange payload."""
    return orjson.dumps({"method": "post", "id": req_id, "request": {"type": "action", "payload": payload}})


# ---------------------------------------------------------------------------------- cloids
class CloidGenerator:
    """Unique client order ids: a random 64-bit per-process prefix followed by a 64-bit counter."""

    __slots__ = ("_prefix", "_counter")

    def __init__(self, prefix: int | None = None, start: int = 0) -> None:
        self._prefix = f"0x{(int.from_bytes(os.urandom(8), 'big') if prefix is None else prefix):016x}"
        self._counter = start

    def next(self) -> str:
        self._counter += 1
        return f"{self._prefix}{self._counter:016x}"

    __call__ = next


# ---------------------------------------------------------------------------------- order specs
class OrderSpec(NamedTuple):
    """One order for :meth:`Signer.bulk_orders`; ``px``/``sz`` are wire strings."""

    is_buy: bool
    px: str
    sz: str
    reduce_only: bool = False
    tif: str = "Alo"
    cloid: str | None = None


class ModifySpec(NamedTuple):
    """One entry of a batchModify: the order to replace (oid int or cloid hex) and its new form."""

    oid: int | str
    order: OrderSpec


def _order_wire(asset: int, o: OrderSpec) -> dict:
    if o.tif not in _TIFS:
        raise ValueError(f"tif must be one of {_TIFS}, got {o.tif!r}")
    wire = {"a": asset, "b": bool(o.is_buy), "p": o.px, "s": o.sz, "r": bool(o.reduce_only),
            "t": {"limit": {"tif": o.tif}}}
    if o.cloid is not None:
        if not _CLOID.match(o.cloid):
            raise ValueError(f"cloid must be 0x followed by 32 hex digits, got {o.cloid!r}")
        wire["c"] = o.cloid
    return wire


# ---------------------------------------------------------------------------------- signer
class Signer:
    """Signs L1 actions for one key and builds complete /exchange payloads.

    ``expires_after_ms`` (if set) is a validity window: each payload carries
    ``expiresAfter = nonce + expires_after_ms``.
    """

    def __init__(self, key: PrivateKey, *, is_mainnet: bool, vault_address: str | None = None,
                 expires_after_ms: int | None = None, clock_ms: Callable[[], int] | None = None,
                 compiled: bool = True) -> None:
        if not isinstance(key, PrivateKey):
            raise TypeError("key must be a hlfast.keys.PrivateKey")
        if vault_address is not None and not _ADDRESS.match(vault_address):
            raise ValueError("vault_address must be 0x followed by 40 hex digits")
        if expires_after_ms is not None and expires_after_ms <= 0:
            raise ValueError("expires_after_ms must be positive")
        self._key = key
        self.is_mainnet = bool(is_mainnet)
        self.vault_address = vault_address
        self.expires_after_ms = expires_after_ms
        self._vault_tail = _vault_tail(vault_address)
        self._clock_ms = clock_ms or (lambda: time.time_ns() // 1_000_000)
        self._last_nonce = 0
        use_c = compiled and _compiled_l1_digest is not None
        self._digest = _compiled_l1_digest if use_c else _l1_digest_py
        # fused digest + ECDSA + hex text in C when the key signs through libsecp256k1 directly
        direct = key.digest_signer if use_c else None
        self._sign_l1 = None if direct is None else direct.sign_l1
        self._packer = _ActionPacker() if use_c and _ActionPacker is not None else None
        self.signed = 0  # actions signed
        self.errors = 0  # fast-path calls refused for bad input
        self.last_error = ""

    def __repr__(self) -> str:
        return (f"Signer(address={self._key.address}, is_mainnet={self.is_mainnet}, "
                f"vault_address={self.vault_address})")

    @property
    def address(self) -> str:
        return self._key.address

    @property
    def account_address(self) -> str:
        """The account traded for (differs from ``address`` for an agent key)."""
        return self._key.account_address

    @property
    def last_nonce(self) -> int:
        return self._last_nonce

    @property
    def fast_path(self) -> str:
        """Which signing path is in use: "compiled+<key backend>" or "python+<key backend>"."""
        return ("compiled+" if self._packer is not None else "python+") + self._key.backend

    # ------------------------------------------------------------------ nonces and signatures
    def next_nonce(self) -> int:
        """Strictly increasing per signer: max(now_ms, last + 1)."""
        now = self._clock_ms()
        nonce = now if now > self._last_nonce else self._last_nonce + 1
        self._last_nonce = nonce
        return nonce

    def expires_for(self, nonce: int) -> int | None:
        return None if self.expires_after_ms is None else nonce + self.expires_after_ms

    def _sign_packed(self, packed: bytes, nonce: int, expires_after: int | None) -> dict:
        if self._sign_l1 is not None:
            sig = self._sign_l1(packed, nonce, self._vault_tail, expires_after, self.is_mainnet)
            self.signed += 1
            return sig
        digest = self._digest(packed, nonce, self._vault_tail, expires_after, self.is_mainnet)
        sig = self._key.sign_digest_raw(digest)
        self.signed += 1
        # hex() of the integers drops leading zeros, exactly as the SDK's to_hex does
        return {"r": hex(int.from_bytes(sig[:32], "big")), "s": hex(int.from_bytes(sig[32:64], "big")),
                "v": sig[64] + 27}

    def sign_action(self, action: dict, nonce: int, expires_after: int | None | bool = True) -> dict:
        """Signature ``{"r","s","v"}`` of an action.

        ``expires_after=True`` applies the signer's window; pass None or an absolute ms time to override.
        """
        if expires_after is True:
            expires_after = self.expires_for(nonce)
        return self._sign_packed(_pack(action), nonce, expires_after)

    def payload(self, action: dict, nonce: int | None = None) -> dict:
        """Sign ``action`` and wrap it in the /exchange envelope, keys in the SDK's order."""
        return self._payload_packed(action, _pack(action), nonce)

    def _payload_packed(self, action: dict, packed: bytes, nonce: int | None) -> dict:
        # packed must be msgpack.packb(action)
        if nonce is None:
            nonce = self.next_nonce()
        elif nonce > self._last_nonce:  # keep next_nonce() above every nonce used
            self._last_nonce = nonce
        expires = None if self.expires_after_ms is None else nonce + self.expires_after_ms
        return {"action": action, "nonce": nonce, "signature": self._sign_packed(packed, nonce, expires),
                "vaultAddress": self.vault_address, "expiresAfter": expires}

    # ------------------------------------------------------------------ builders (wire strings in)
    def bulk_orders(self, asset: int, orders: Iterable[OrderSpec | tuple], grouping: Any = "na",
                    nonce: int | None = None) -> dict:
        wires = [_order_wire(asset, o if isinstance(o, OrderSpec) else OrderSpec(*o)) for o in orders]
        return self.payload({"type": "order", "orders": wires, "grouping": grouping}, nonce)

    def cancel(self, asset: int, oids: Iterable[int], nonce: int | None = None) -> dict:
        return self.payload({"type": "cancel", "cancels": [{"a": asset, "o": int(o)} for o in oids]}, nonce)

    def cancel_by_cloid(self, asset: int, cloids: Iterable[str], nonce: int | None = None) -> dict:
        cancels = []
        for c in cloids:
            if not _CLOID.match(c):
                raise ValueError(f"cloid must be 0x followed by 32 hex digits, got {c!r}")
            cancels.append({"asset": asset, "cloid": c})
        return self.payload({"type": "cancelByCloid", "cancels": cancels}, nonce)

    def batch_modify(self, asset: int, modifies: Iterable[ModifySpec | tuple], nonce: int | None = None) -> dict:
        wires = []
        for m in modifies:
            oid, order = m
            order = order if isinstance(order, OrderSpec) else OrderSpec(*order)
            if isinstance(oid, str) and not _CLOID.match(oid):
                raise ValueError(f"modify target must be an oid or a 0x cloid, got {oid!r}")
            wires.append({"oid": oid, "order": _order_wire(asset, order)})
        return self.payload({"type": "batchModify", "modifies": wires}, nonce)

    def schedule_cancel(self, time_ms: int | None, nonce: int | None = None) -> dict:
        action: dict = {"type": "scheduleCancel"}
        if time_ms is not None:
            action["time"] = int(time_ms)
        return self.payload(action, nonce)

    def update_leverage(self, asset: int, leverage: int, is_cross: bool = True, nonce: int | None = None) -> dict:
        return self.payload({"type": "updateLeverage", "asset": asset, "isCross": bool(is_cross),
                             "leverage": int(leverage)}, nonce)

    def noop(self, nonce: int | None = None) -> dict:
        """Burns a nonce; signing it with an in-flight action's nonce invalidates that action."""
        return self.payload({"type": "noop"}, nonce)

    # ------------------------------------------------------------------ engine fast path
    def _fail(self, message: str) -> None:
        self.errors += 1
        self.last_error = message
        return None

    def _tick_order_wires(self, asset: int, sides: Sequence[int], px_ticks: Sequence[int],
                          sizes: Sequence[float], cloids: Sequence[str | None] | None, n: int,
                          px_decimals: int, sz_decimals: int, tif: str, reduce_only: bool) -> list | None:
        if tif not in _TIFS:
            return self._fail(f"unknown tif {tif!r}")
        if n <= 0 or n > 200:
            return self._fail(f"batch of {n} orders (must be 1..200)")
        if not (0 <= px_decimals <= 8 and 0 <= sz_decimals <= 8):
            return self._fail("decimals must lie in 0..8")
        lot = _POW10[sz_decimals]
        reduce_only = bool(reduce_only)
        wires = []
        fmt = _fmt_ticks
        try:
            for i in range(n):
                ticks = int(px_ticks[i])
                lots = round(sizes[i] * lot)
                if ticks <= 0 or lots <= 0:
                    return self._fail(f"order {i}: price ticks {ticks} and lots {lots} must be positive")
                side = sides[i]
                if side != 1 and side != -1:
                    return self._fail(f"order {i}: side must be +1 or -1, got {side}")
                wire = {"a": asset, "b": True if side == 1 else False, "p": fmt(ticks, px_decimals),
                        "s": fmt(lots, sz_decimals), "r": reduce_only, "t": {"limit": {"tif": tif}}}
                if cloids is not None and cloids[i] is not None:
                    wire["c"] = cloids[i]
                wires.append(wire)
        except (IndexError, TypeError, ValueError, OverflowError) as exc:
            return self._fail(f"bad order input: {type(exc).__name__}")
        return wires

    def sign_bulk_orders_ticks(self, asset: int, sides: Sequence[int], px_ticks: Sequence[int],
                               sizes: Sequence[float], cloids: Sequence[str | None] | None, n: int,
                               px_decimals: int, sz_decimals: int, tif: str = "Alo",
                               reduce_only: bool = False, nonce: int | None = None) -> dict | None:
        """Signed ``order`` payload for n orders given as arrays (side ±1, price ticks of
        10^-px_decimals, size in coin units rounded to 10^-sz_decimals, cloid hex or None).

        Returns None (``errors`` incremented, ``last_error`` set) on unusable input.
        """
        if self._packer is not None:
            built = self._packer.order_action(asset, sides, px_ticks, sizes, cloids, n, px_decimals, sz_decimals,
                                              tif, reduce_only)
            if built is not None:
                return self._payload_packed(built[0], built[1], nonce)
        wires = self._tick_order_wires(asset, sides, px_ticks, sizes, cloids, n, px_decimals, sz_decimals,
                                       tif, reduce_only)
        if wires is None:
            return None
        return self.payload({"type": "order", "orders": wires, "grouping": "na"}, nonce)

    def sign_batch_modify_ticks(self, asset: int, targets: Sequence[int | str], sides: Sequence[int],
                                px_ticks: Sequence[int], sizes: Sequence[float],
                                cloids: Sequence[str | None] | None, n: int, px_decimals: int,
                                sz_decimals: int, tif: str = "Alo", reduce_only: bool = False,
                                nonce: int | None = None) -> dict | None:
        """Signed ``batchModify`` payload; ``targets[i]`` is the oid (int) or cloid of the order replaced."""
        if self._packer is not None:
            built = self._packer.batch_modify_action(asset, targets, sides, px_ticks, sizes, cloids, n,
                                                     px_decimals, sz_decimals, tif, reduce_only)
            if built is not None:
                return self._payload_packed(built[0], built[1], nonce)
        wires = self._tick_order_wires(asset, sides, px_ticks, sizes, cloids, n, px_decimals, sz_decimals,
                                       tif, reduce_only)
        if wires is None:
            return None
        try:
            modifies = [{"oid": targets[i], "order": wires[i]} for i in range(n)]
        except (IndexError, TypeError):
            return self._fail("targets shorter than n")
        return self.payload({"type": "batchModify", "modifies": modifies}, nonce)

    def sign_cancel_fast(self, asset: int, oids: Sequence[int], n: int, nonce: int | None = None) -> dict | None:
        """Signed ``cancel`` payload for the first n oids; None on unusable input."""
        if self._packer is not None:
            built = self._packer.cancel_action(asset, oids, n)
            if built is not None:
                return self._payload_packed(built[0], built[1], nonce)
        if n <= 0 or n > 200:
            return self._fail(f"batch of {n} cancels (must be 1..200)")
        try:
            cancels = [{"a": asset, "o": int(oids[i])} for i in range(n)]
        except (IndexError, TypeError, ValueError):
            return self._fail("bad cancel input")
        return self.payload({"type": "cancel", "cancels": cancels}, nonce)

    def sign_cancel_by_cloid_fast(self, asset: int, cloids: Sequence[str], n: int,
                                  nonce: int | None = None) -> dict | None:
        """Signed ``cancelByCloid`` payload for the first n cloids; None on unusable input."""
        if self._packer is not None:
            built = self._packer.cancel_by_cloid_action(asset, cloids, n)
            if built is not None:
                return self._payload_packed(built[0], built[1], nonce)
        if n <= 0 or n > 200:
            return self._fail(f"batch of {n} cancels (must be 1..200)")
        try:
            cancels = [{"asset": asset, "cloid": cloids[i]} for i in range(n)]
        except (IndexError, TypeError):
            return self._fail("bad cancel input")
        return self.payload({"type": "cancelByCloid", "cancels": cancels}, nonce)

    ws_post_frame = staticmethod(ws_post_frame)
