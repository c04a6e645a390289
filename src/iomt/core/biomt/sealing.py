"""Sealing responses to a requester: ECIES (the ``ecc`` technique) to a one-time X25519 key.

Every user request carries a fresh ``response_key``; the bolster (or cloud) seals what it
returns to that key with :mod:`iomt.crypto.techniques`' ``ecc`` (ephemeral ECDH + HKDF +
AES-256-GCM), authenticated together with who sent it to whom, about which device, and the
request nonce -- so a sealed answer cannot be replayed as the answer to another request.
The requester's private half lives only as long as the request is pending (forward
secrecy: a later compromise of the requester's signing key opens nothing).
"""

from __future__ import annotations

from iomt.crypto.keys import EccCurve, EccPrivateKey, EccPublicKey
from iomt.crypto.techniques import AssociatedData, get_technique

from .clock import Rng

__all__ = ["ephemeral_key", "open_sealed", "response_aad", "seal_to"]

_ECC = get_technique("ecc")


def ephemeral_key(rng: Rng) -> tuple[EccPrivateKey, bytes]:
    """A fresh X25519 key pair: (private, 32-byte public)."""
    private = EccPrivateKey.from_bytes(rng(32), EccCurve.X25519)
    return private, private.public_key().public_bytes()


def response_aad(
    sender: str, recipient: str, device: str, seq: int, nonce: bytes
) -> AssociatedData:
    return AssociatedData(sender, recipient, device, seq, request_id=nonce.hex())


def seal_to(public: bytes | EccPublicKey, plaintext: bytes, aad: AssociatedData) -> bytes:
    """ECIES to an X25519 key given as raw bytes, or to any :class:`EccPublicKey`."""
    key = (
        public
        if isinstance(public, EccPublicKey)
        else EccPublicKey.from_bytes(public, EccCurve.X25519)
    )
    return _ECC.seal(plaintext, key, aad)


def open_sealed(private: EccPrivateKey, sealed: bytes, aad: AssociatedData) -> bytes:
    """Raises :class:`~iomt.crypto.errors.DecryptionError` (an AuthenticationError)."""
    return _ECC.open(sealed, private, aad)
