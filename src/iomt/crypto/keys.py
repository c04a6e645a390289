"""Key material for the symmetric and ECC security techniques.

``SymmetricKey`` is the paper's pre-shared (or session-established) secret of the symmetric
techniques; technique-specific keys are derived from it with HKDF so one secret used by
both ``sym-aes`` and ``sym-3des`` never feeds two algorithms the same key bytes.
``EccPrivateKey`` / ``EccPublicKey`` are the recipient's key-agreement pair for ECIES
(``ecc``) and for the ECC half of ``ecc-attr``: NIST P-256 by default (the curve hospital
PKI and DDS-Security use), X25519 allowed.

Private material never appears in ``repr``; it leaves the object only through the
explicitly named ``secret_bytes()`` / ``to_pem()`` that the keystore uses to write 0600 files.
"""

from __future__ import annotations

import enum
import hmac
import os

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, x25519

from iomt.crypto.errors import KeyFormatError
from iomt.crypto.primitives import hkdf_sha256, sha256

__all__ = ["EccCurve", "EccPrivateKey", "EccPublicKey", "SymmetricKey", "X25519PrivateKey"]

#: pyca's X25519 private key, for annotations of code that holds one (the protocol layers
#: reach pyca/cryptography only through iomt.crypto).
X25519PrivateKey = x25519.X25519PrivateKey


class SymmetricKey:
    """A shared secret (16-64 bytes) for ``sym-aes`` / ``sym-3des`` and HMAC links."""

    __slots__ = ("_derived", "_key")

    MIN_SIZE = 16
    MAX_SIZE = 64

    def __init__(self, key: bytes) -> None:
        if not isinstance(key, bytes) or not self.MIN_SIZE <= len(key) <= self.MAX_SIZE:
            raise KeyFormatError(
                f"symmetric keys are {self.MIN_SIZE}..{self.MAX_SIZE} bytes of secret data"
            )
        self._key = key
        self._derived: dict[tuple[bytes, int], bytes] = {}

    @classmethod
    def generate(cls, size: int = 32) -> SymmetricKey:
        return cls(os.urandom(size))

    @classmethod
    def from_bytes(cls, key: bytes) -> SymmetricKey:
        return cls(bytes(key))

    def secret_bytes(self) -> bytes:
        """The raw secret, for storing in the keystore. Never log it."""
        return self._key

    def derive(self, label: bytes, length: int) -> bytes:
        """HKDF-SHA256(key, info=label) — cached, since links reuse one key for many records."""
        cached = self._derived.get((label, length))
        if cached is None:
            cached = hkdf_sha256(self._key, salt=None, info=label, length=length)
            self._derived[(label, length)] = cached
        return cached

    @property
    def key_id(self) -> str:
        """A public handle (first 8 bytes of SHA-256 of a derived identifier) for logs."""
        return self.derive(b"iomt/key-id/v1", 8).hex()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SymmetricKey):
            return NotImplemented
        return hmac.compare_digest(self._key, other._key)

    def __hash__(self) -> int:
        return hash(self.key_id)

    def __repr__(self) -> str:
        return f"SymmetricKey(<redacted {len(self._key) * 8}-bit>, id={self.key_id})"


class EccCurve(enum.StrEnum):
    """Curves allowed for ECIES key agreement."""

    P256 = "p256"
    X25519 = "x25519"


_P256 = ec.SECP256R1()


class EccPublicKey:
    """A recipient's ECDH public key (P-256 or X25519)."""

    __slots__ = ("_encoded", "_key", "curve")

    def __init__(self, key: ec.EllipticCurvePublicKey | x25519.X25519PublicKey) -> None:
        if isinstance(key, ec.EllipticCurvePublicKey):
            if not isinstance(key.curve, ec.SECP256R1):
                raise KeyFormatError(f"unsupported curve {key.curve.name}")
            self.curve = EccCurve.P256
        elif isinstance(key, x25519.X25519PublicKey):
            self.curve = EccCurve.X25519
        else:
            raise KeyFormatError(f"not an ECDH public key: {type(key).__name__}")
        self._key = key
        self._encoded: bytes | None = None

    @classmethod
    def from_bytes(cls, data: bytes, curve: EccCurve = EccCurve.P256) -> EccPublicKey:
        """P-256: X9.62 compressed (33 B) or uncompressed (65 B) point; X25519: 32 bytes."""
        try:
            if curve is EccCurve.P256:
                return cls(ec.EllipticCurvePublicKey.from_encoded_point(_P256, bytes(data)))
            return cls(x25519.X25519PublicKey.from_public_bytes(bytes(data)))
        except (ValueError, TypeError) as exc:
            raise KeyFormatError(f"not a {curve} public key: {exc}") from None

    @classmethod
    def from_pem(cls, pem: bytes) -> EccPublicKey:
        try:
            key = serialization.load_pem_public_key(pem)
        except (ValueError, TypeError) as exc:
            raise KeyFormatError(f"not a PEM public key: {exc}") from None
        if not isinstance(key, ec.EllipticCurvePublicKey | x25519.X25519PublicKey):
            raise KeyFormatError(f"PEM holds a {type(key).__name__}, not an ECDH key")
        return cls(key)

    @property
    def raw(self) -> ec.EllipticCurvePublicKey | x25519.X25519PublicKey:
        """The underlying pyca/cryptography key (for certificates)."""
        return self._key

    def public_bytes(self) -> bytes:
        """Compact encoding: compressed point for P-256, raw 32 bytes for X25519."""
        if self._encoded is None:
            if isinstance(self._key, ec.EllipticCurvePublicKey):
                self._encoded = self._key.public_bytes(
                    serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint
                )
            else:
                self._encoded = self._key.public_bytes(
                    serialization.Encoding.Raw, serialization.PublicFormat.Raw
                )
        return self._encoded

    def to_pem(self) -> bytes:
        return self._key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def fingerprint(self) -> str:
        return sha256(self.curve.encode() + b":" + self.public_bytes()).hex()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, EccPublicKey):
            return NotImplemented
        return self.curve == other.curve and self.public_bytes() == other.public_bytes()

    def __hash__(self) -> int:
        return hash((self.curve, self.public_bytes()))

    def __repr__(self) -> str:
        return f"EccPublicKey({self.curve}, {self.fingerprint()[:16]})"


class EccPrivateKey:
    """A recipient's ECDH private key. ``repr`` shows only the public fingerprint."""

    __slots__ = ("_key", "_public", "curve")

    def __init__(self, key: ec.EllipticCurvePrivateKey | x25519.X25519PrivateKey) -> None:
        if isinstance(key, ec.EllipticCurvePrivateKey):
            if not isinstance(key.curve, ec.SECP256R1):
                raise KeyFormatError(f"unsupported curve {key.curve.name}")
            self.curve = EccCurve.P256
        elif isinstance(key, x25519.X25519PrivateKey):
            self.curve = EccCurve.X25519
        else:
            raise KeyFormatError(f"not an ECDH private key: {type(key).__name__}")
        self._key = key
        self._public = EccPublicKey(key.public_key())

    @classmethod
    def generate(cls, curve: EccCurve = EccCurve.P256) -> EccPrivateKey:
        if curve is EccCurve.P256:
            return cls(ec.generate_private_key(_P256))
        return cls(x25519.X25519PrivateKey.generate())

    @classmethod
    def from_bytes(cls, data: bytes, curve: EccCurve) -> EccPrivateKey:
        """From raw private bytes (e.g. an injected RNG's): X25519's 32-byte key, or
        P-256's 32-byte big-endian scalar."""
        try:
            if curve is EccCurve.P256:
                return cls(ec.derive_private_key(int.from_bytes(data, "big"), _P256))
            return cls(x25519.X25519PrivateKey.from_private_bytes(bytes(data)))
        except (ValueError, TypeError) as exc:
            raise KeyFormatError(f"not a {curve} private key: {exc}") from None

    @classmethod
    def from_pem(cls, pem: bytes) -> EccPrivateKey:
        try:
            key = serialization.load_pem_private_key(pem, password=None)
        except (ValueError, TypeError) as exc:
            raise KeyFormatError(f"not an unencrypted PEM private key: {exc}") from None
        if not isinstance(key, ec.EllipticCurvePrivateKey | x25519.X25519PrivateKey):
            raise KeyFormatError(f"PEM holds a {type(key).__name__}, not an ECDH key")
        return cls(key)

    def public_key(self) -> EccPublicKey:
        return self._public

    def exchange(self, peer: EccPublicKey) -> bytes:
        """The raw ECDH shared secret (feed it to HKDF, never use it as a key)."""
        try:
            if isinstance(self._key, ec.EllipticCurvePrivateKey):
                if not isinstance(peer.raw, ec.EllipticCurvePublicKey):
                    raise KeyFormatError("peer key is not on P-256")
                return self._key.exchange(ec.ECDH(), peer.raw)
            if not isinstance(peer.raw, x25519.X25519PublicKey):
                raise KeyFormatError("peer key is not an X25519 key")
            return self._key.exchange(peer.raw)
        except ValueError as exc:  # e.g. X25519 low-order point: all-zero shared secret
            raise KeyFormatError(f"ECDH failed: {exc}") from None

    def to_pem(self) -> bytes:
        """PKCS#8 PEM (unencrypted; the keystore writes it 0600). Never log it."""
        return self._key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def __repr__(self) -> str:
        return f"EccPrivateKey({self.curve}, public={self._public.fingerprint()[:16]})"
