"""The bolster's signing key, as the ledger sees it.

BIoMT's local blockchain is "a centralized entity" owned by the facility's bolster; what makes
it a *blockchain* rather than a table is that every block header and every checkpoint is
signed by the bolster's key, so a cluster head, auditor or cloud server can check it without
trusting the bolster's disk. The ledger only needs three things from a key, captured by two
small protocols:

* :class:`LedgerVerifier` -- ``verify(data, signature)`` raising
  :class:`~iomt.errors.AuthenticationError` on a bad signature, and ``public_key_bytes``
  (what auditors and cluster heads hold);
* :class:`LedgerSigner` -- a verifier that can also ``sign(data) -> signature`` (what the
  bolster holds; it re-checks its own signed head when it reopens a ledger).

The keys themselves are :mod:`iomt.crypto.signing`'s (one Ed25519 implementation, and
ECDSA P-256 for keystore identities): :class:`LedgerKey` / :class:`LedgerKeyVerifier` show
a crypto signer / verifier to the ledger (``public_key_bytes`` is its ``public_bytes()``,
the raw 32-byte key for Ed25519). A ledger's *log id* is the SHA-256 of its public key
bytes (as RFC 6962 names a log by its key hash).
"""

from __future__ import annotations

import hashlib
from typing import Protocol, runtime_checkable

from iomt.crypto.errors import KeyFormatError
from iomt.crypto.signing import Ed25519Verifier, Signer, Verifier
from iomt.errors import AuthenticationError

__all__ = [
    "LedgerKey",
    "LedgerKeyVerifier",
    "LedgerSigner",
    "LedgerVerifier",
    "ed25519_ledger_verifier",
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


class LedgerKeyVerifier:
    """An :mod:`iomt.crypto.signing` verifier seen as a :class:`LedgerVerifier`."""

    __slots__ = ("_verifier",)

    def __init__(self, verifier: Verifier) -> None:
        self._verifier = verifier

    @property
    def public_key_bytes(self) -> bytes:
        return self._verifier.public_bytes()

    def verify(self, data: bytes, signature: bytes) -> None:
        self._verifier.verify(data, signature)  # InvalidSignatureError is an AuthenticationError

    @property
    def verifier(self) -> Verifier:
        return self._verifier

    def __repr__(self) -> str:
        return f"LedgerKeyVerifier({self._verifier!r})"


class LedgerKey(LedgerKeyVerifier):
    """A keystore signing key (Ed25519 or ECDSA P-256) that signs a ledger."""

    __slots__ = ("_signer",)

    def __init__(self, signer: Signer) -> None:
        super().__init__(signer.verifier())
        self._signer = signer

    def sign(self, data: bytes) -> bytes:
        return self._signer.sign(data)

    @property
    def signer(self) -> Signer:
        return self._signer

    def __repr__(self) -> str:
        return f"LedgerKey({self._signer!r})"


def ed25519_ledger_verifier(public_key_bytes: bytes) -> LedgerKeyVerifier:
    """The verifier of a raw 32-byte Ed25519 public key (what an auditor is given)."""
    try:
        return LedgerKeyVerifier(Ed25519Verifier.from_public_bytes(public_key_bytes))
    except KeyFormatError as exc:
        raise AuthenticationError("not a valid 32-byte Ed25519 public key") from exc
