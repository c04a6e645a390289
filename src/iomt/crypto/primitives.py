"""Thin, typed wrappers over pyca/cryptography's primitives used by every technique.

AES-GCM (NIST SP 800-38D), HKDF-SHA256 (RFC 5869) and HMAC-SHA256 (RFC 2104) are called
through these few functions so that (a) library exceptions become :mod:`iomt.crypto.errors`
types in one place and (b) the known-answer vectors in ``tests/vectors/crypto`` exercise
exactly the code paths the techniques use.
"""

from __future__ import annotations

import hashlib
import hmac

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF, HKDFExpand

from iomt.crypto.errors import DecryptionError, KeyFormatError

__all__ = [
    "GCM_NONCE_SIZE",
    "GCM_TAG_SIZE",
    "AesGcm",
    "hkdf_expand",
    "hkdf_extract",
    "hkdf_sha256",
    "hmac_sha256",
    "sha256",
]

GCM_NONCE_SIZE = 12
GCM_TAG_SIZE = 16


class AesGcm:
    """AES-GCM with a 96-bit nonce and 128-bit tag; a failed open raises ``DecryptionError``."""

    __slots__ = ("_aead", "_key_size")

    def __init__(self, key: bytes) -> None:
        if not isinstance(key, bytes) or len(key) not in (16, 24, 32):
            raise KeyFormatError("AES-GCM keys are 16, 24 or 32 bytes")
        self._aead = AESGCM(key)
        self._key_size = len(key)

    def __repr__(self) -> str:
        return f"AesGcm(<{self._key_size * 8}-bit key>)"

    def encrypt(self, nonce: bytes, plaintext: bytes, associated_data: bytes) -> bytes:
        """Ciphertext || 16-byte tag."""
        return self._aead.encrypt(nonce, plaintext, associated_data)

    def decrypt(self, nonce: bytes, ciphertext: bytes, associated_data: bytes) -> bytes:
        if len(nonce) != GCM_NONCE_SIZE:
            raise DecryptionError("AES-GCM nonce must be 12 bytes")
        if len(ciphertext) < GCM_TAG_SIZE:
            raise DecryptionError("AES-GCM ciphertext shorter than its tag")
        try:
            return self._aead.decrypt(nonce, ciphertext, associated_data)
        except InvalidTag:
            raise DecryptionError("AES-GCM tag does not verify") from None


def hkdf_sha256(ikm: bytes, *, salt: bytes | None, info: bytes, length: int) -> bytes:
    """RFC 5869 HKDF (extract then expand) with SHA-256."""
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(ikm)


def hkdf_extract(salt: bytes, ikm: bytes) -> bytes:
    """RFC 5869 HKDF-Extract: PRK = HMAC-SHA256(salt, IKM); an empty salt means 32 zeros."""
    return hmac.digest(salt or bytes(32), ikm, "sha256")


def hkdf_expand(prk: bytes, info: bytes, length: int) -> bytes:
    """RFC 5869 HKDF-Expand with SHA-256."""
    return HKDFExpand(algorithm=hashes.SHA256(), length=length, info=info).derive(prk)


def hmac_sha256(key: bytes, data: bytes) -> bytes:
    return hmac.digest(key, data, "sha256")


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()
