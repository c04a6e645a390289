"""The bolster's signing key, as the ledger sees it.

BIoMT's local blockchain is "a centralized entity" owned by the facility's bolster; what makes
it a *blockchain* rather than a table is that every block header and every checkpoint is
signed by the bolster's key, so a cluster head, auditor or cloud server can check it without
trusting the bolster's disk. The ledger only needs three things from a key, captured by two
small protocols (any keystore object with these members fits):

* :class:`LedgerVerifier` -- ``verify(data, signature)`` raising
  :class:`~iomt.errors.AuthenticationError` on a bad signature, and ``public_key_bytes``
  (what auditors and cluster heads hold);
* :class:`LedgerSigner` -- a verifier that can also ``sign(data) -> signature`` (what the
  bolster holds; it re-checks its own signed head when it reopens a ledger).

:class:`Ed25519Signer` / :class:`Ed25519Verifier` implement them with pyca/cryptography
(``public_key_bytes`` is the raw 32-byte Ed25519 key). A ledger's *log id* is the SHA-256 of
its public key bytes (as RFC 6962 names a log by its key hash).
"""

from __future__ import annotations

import hashlib
from typing import Protocol, runtime_checkable

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from iomt.errors import AuthenticationError

__all__ = [
    "Ed25519Signer",
    "Ed25519Verifier",
    "LedgerSigner",
    "LedgerVerifier",
    "key_id",
]


@runtime_checkable
class LedgerVerifier(Protocol):
    """Checks signatures made by one public key; raises ``AuthenticationError`` if invalid."""

    @property
    def public_key_bytes(self) -> bytes: ...

    def verify(self, data: bytes, signature: bytes) -> None: ...


@runtime_checkable
class LedgerSigner(LedgerVerifier, Protocol):
    """The bolster's key: signs ledger structures, and checks what the ledger reads back."""

    def sign(self, data: bytes) -> bytes: ...


def key_id(public_key_bytes: bytes) -> bytes:
    """The 32-byte identifier of a key (and of the ledger it signs): SHA-256 of its bytes."""
    return hashlib.sha256(public_key_bytes).digest()


class Ed25519Verifier:
    """Ed25519 signature verification (RFC 8032) via pyca/cryptography."""

    __slots__ = ("_key", "_raw")

    def __init__(self, key: Ed25519PublicKey) -> None:
        self._key = key
        self._raw = key.public_bytes(Encoding.Raw, PublicFormat.Raw)

    @classmethod
    def from_public_bytes(cls, raw: bytes) -> Ed25519Verifier:
        try:
            return cls(Ed25519PublicKey.from_public_bytes(raw))
        except ValueError as exc:
            raise AuthenticationError("not a valid 32-byte Ed25519 public key") from exc

    @property
    def public_key_bytes(self) -> bytes:
        return self._raw

    def verify(self, data: bytes, signature: bytes) -> None:
        try:
            self._key.verify(signature, data)
        except InvalidSignature as exc:
            raise AuthenticationError("Ed25519 signature does not verify") from exc


class Ed25519Signer:
    """An Ed25519 private key that signs ledger structures (and verifies its own signatures)."""

    __slots__ = ("_key", "_verifier")

    def __init__(self, key: Ed25519PrivateKey) -> None:
        self._key = key
        self._verifier = Ed25519Verifier(key.public_key())

    @classmethod
    def generate(cls) -> Ed25519Signer:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_private_bytes(cls, raw: bytes) -> Ed25519Signer:
        """From the raw 32-byte seed (RFC 8032 private key)."""
        try:
            return cls(Ed25519PrivateKey.from_private_bytes(raw))
        except ValueError as exc:
            raise AuthenticationError("not a valid 32-byte Ed25519 private key") from exc

    def private_bytes(self) -> bytes:
        """The raw 32-byte seed; handle with the care of the key itself."""
        return self._key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())

    @property
    def public_key_bytes(self) -> bytes:
        return self._verifier.public_key_bytes

    @property
    def verifier(self) -> Ed25519Verifier:
        return self._verifier

    def sign(self, data: bytes) -> bytes:
        return self._key.sign(data)

    def verify(self, data: bytes, signature: bytes) -> None:
        self._verifier.verify(data, signature)
