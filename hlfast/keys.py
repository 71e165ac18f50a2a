"""Private-key handling: load, hold and use a secp256k1 key without ever exposing it.

The secret lives only inside a ``coincurve.PrivateKey`` (and, on the fast path, in the C memory
of a :class:`hlfast.wire.Secp256k1Signer`); every textual form of :class:`PrivateKey` shows the
derived address, never the key, and error messages built here describe what is wrong with a key
without quoting it.

Signing backends: ``"libsecp256k1"`` calls coincurve's bundled libsecp256k1 through its C function
pointers (no per-call wrapper); ``"coincurve"`` uses coincurve's public API. Both give the same
bytes (RFC 6979 nonces); ``"auto"`` takes the first when the compiled kernel and the library's
symbols are present and it passes a self-check against the second.
"""
from __future__ import annotations

import os
import re
import secrets
from pathlib import Path

import coincurve
from Crypto.Hash import keccak

try:  # compiled direct path (cext/wire.pyx)
    from hlfast.wire import Secp256k1Signer as _Secp256k1Signer
except ImportError:  # pragma: no cover - depends on the build
    _Secp256k1Signer = None

__all__ = [
    "KeyLoadError",
    "PrivateKey",
    "generate_private_key",
    "load_private_key",
    "to_checksum_address",
    "keccak256",
]

_SECP256K1_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_HEX_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
BACKENDS = ("auto", "libsecp256k1", "coincurve")
_SELF_CHECK_DIGEST = keccak.new(digest_bits=256, data=b"hlfast signing self-check").digest()


class KeyLoadError(ValueError):
    """A key could not be loaded; the message never contains key material."""


def keccak256(data: bytes) -> bytes:
    return keccak.new(digest_bits=256, data=data).digest()


def to_checksum_address(address: str) -> str:
    """EIP-55 mixed-case form of a 0x-prefixed 20-byte hex address."""
    if not _HEX_ADDRESS.match(address):
        raise ValueError(f"not a 0x-prefixed 20-byte hex address: {address!r}")
    lower = address[2:].lower()
    digest = keccak256(lower.encode("ascii")).hex()
    return "0x" + "".join(c.upper() if int(d, 16) >= 8 else c for c, d in zip(lower, digest[:40], strict=True))


def _parse_secret(text: str, origin: str) -> bytes:
    """Turn 0x-hex text into 32 secret bytes; errors name the origin, never the content."""
    cleaned = text.strip()
    if cleaned.startswith(("0x", "0X")):
        cleaned = cleaned[2:]
    if len(cleaned) != 64:
        raise KeyLoadError(f"{origin}: expected 64 hex digits (32 bytes), got {len(cleaned)} characters")
    try:
        secret = bytes.fromhex(cleaned)
    except ValueError:
        raise KeyLoadError(f"{origin}: key is not valid hexadecimal") from None
    value = int.from_bytes(secret, "big")
    if not 0 < value < _SECP256K1_ORDER:
        raise KeyLoadError(f"{origin}: key is outside the secp256k1 range")
    return secret


class PrivateKey:
    """A signing key. ``address`` is the signer; ``account_address`` the account it trades for.

    With an agent (API wallet) key the account address is the master account and differs
    from the signer address; otherwise both are the same.
    """

    __slots__ = ("_key", "_direct", "_address", "_account_address")

    def __init__(self, secret: bytes, *, account_address: str | None = None, backend: str = "auto") -> None:
        if not isinstance(secret, (bytes, bytearray)) or len(secret) != 32:
            raise KeyLoadError("private key must be 32 bytes")
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        value = int.from_bytes(secret, "big")
        if not 0 < value < _SECP256K1_ORDER:
            raise KeyLoadError("private key is outside the secp256k1 range")
        self._key = coincurve.PrivateKey(bytes(secret))
        self._direct = None if backend == "coincurve" else _direct_signer(self._key, bytes(secret))
        if backend == "libsecp256k1" and self._direct is None:
            raise RuntimeError("the direct libsecp256k1 signing path is not available in this build")
        public = self._key.public_key.format(compressed=False)[1:]
        self._address = to_checksum_address("0x" + keccak256(public)[-20:].hex())
        if account_address is None:
            self._account_address = self._address
        else:
            if not _HEX_ADDRESS.match(account_address):
                raise KeyLoadError("account address must be 0x followed by 40 hex digits")
            self._account_address = to_checksum_address(account_address)

    @classmethod
    def from_hex(cls, text: str, *, account_address: str | None = None, origin: str = "key",
                 backend: str = "auto") -> PrivateKey:
        return cls(_parse_secret(text, origin), account_address=account_address, backend=backend)

    @property
    def backend(self) -> str:
        """The signing path in use: "libsecp256k1" (direct C calls) or "coincurve" (public API)."""
        return "coincurve" if self._direct is None else "libsecp256k1"

    @property
    def digest_signer(self) -> object | None:
        """The compiled :class:`hlfast.wire.Secp256k1Signer` for this key, or None on the coincurve path."""
        return self._direct

    @property
    def address(self) -> str:
        """Checksummed address of the signing key."""
        return self._address

    @property
    def account_address(self) -> str:
        """Checksummed address of the trading account (the master account for an agent key)."""
        return self._account_address

    @property
    def is_agent(self) -> bool:
        return self._account_address != self._address

    def sign_digest(self, digest32: bytes) -> tuple[int, int, int]:
        """ECDSA-sign a 32-byte digest (no hashing); returns (r, s, v) with low s and v in {27, 28}."""
        sig = self.sign_digest_raw(digest32)
        return int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:64], "big"), sig[64] + 27

    def sign_digest_raw(self, digest32: bytes) -> bytes:
        """65 bytes r ‖ s ‖ recovery id (0/1), for callers that format the signature themselves."""
        if self._direct is not None:
            return self._direct.sign_digest(bytes(digest32))
        return self._key.sign_recoverable(digest32, hasher=None)

    def __repr__(self) -> str:
        if self.is_agent:
            return f"PrivateKey(address={self._address}, account={self._account_address})"
        return f"PrivateKey(address={self._address})"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)

    def __reduce__(self):  # pickling would write the secret wherever the bytes go
        raise TypeError("PrivateKey cannot be pickled")

    def __copy__(self) -> PrivateKey:
        return self

    def __deepcopy__(self, memo: dict) -> PrivateKey:
        return self

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PrivateKey) and other._address == self._address

    def __hash__(self) -> int:
        return hash(self._address)


def _direct_signer(key: coincurve.PrivateKey, secret: bytes) -> object | None:
    """The compiled direct signer if this build has it and it agrees with coincurve; else None."""
    if _Secp256k1Signer is None:
        return None
    try:
        direct = _Secp256k1Signer(secret)
    except (ImportError, AttributeError, RuntimeError, ValueError, TypeError):
        return None  # coincurve without the low-level symbols (or another layout)
    if direct.sign_digest(_SELF_CHECK_DIGEST) != key.sign_recoverable(_SELF_CHECK_DIGEST, hasher=None):
        return None
    return direct


def load_private_key(
    env_var: str = "HLFAST_PRIVATE_KEY",
    key_file: str | os.PathLike[str] | None = None,
    *,
    account_address: str | None = None,
    account_env_var: str = "HLFAST_ACCOUNT_ADDRESS",
) -> PrivateKey:
    """Load a 0x-hex key from ``key_file`` if given, else from the environment variable.

    ``account_address`` (or the ``account_env_var`` variable) names the master account when
    the key is an agent (API wallet) key.
    """
    if key_file is not None:
        path = Path(key_file)
        try:
            text = path.read_text(encoding="ascii")
        except FileNotFoundError:
            raise KeyLoadError(f"key file {path} does not exist") from None
        except UnicodeDecodeError:
            raise KeyLoadError(f"key file {path} is not ASCII hex text") from None
        except OSError as exc:
            raise KeyLoadError(f"key file {path} cannot be read: {exc.strerror}") from None
        origin = f"key file {path}"
    else:
        text = os.environ.get(env_var, "")
        if not text.strip():
            raise KeyLoadError(f"environment variable {env_var} is not set (expected a 0x-hex private key)")
        origin = f"environment variable {env_var}"
    if account_address is None:
        account_address = os.environ.get(account_env_var) or None
    return PrivateKey.from_hex(text, account_address=account_address, origin=origin)


def generate_private_key(*, account_address: str | None = None) -> PrivateKey:
    """A fresh random key, for paper trading and tests."""
    while True:
        secret = secrets.token_bytes(32)
        if 0 < int.from_bytes(secret, "big") < _SECP256K1_ORDER:
            return PrivateKey(secret, account_address=account_address)
