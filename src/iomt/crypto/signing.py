"""Authenticity: the paper's "HMAC/digital signature" added by the publish module.

Three algorithms behind one ``Signer`` / ``Verifier`` pair of interfaces:

* ``ed25519`` — RFC 8032 EdDSA; the default for device and wallet identities.
* ``ecdsa-p256`` — ECDSA over NIST P-256 with SHA-256 (FIPS 186-5); signatures are the
  fixed 64-byte ``r || s`` form used by COSE/JOSE, not DER, so sizes are predictable.
* ``hmac-sha256`` — RFC 2104 MAC for symmetric links (devices that share a key but cannot
  afford a signature); the same object signs and verifies.

``SignedPayload`` is the envelope a publisher emits: it names its signer and algorithm and
signs a domain-separated, length-prefixed encoding of (signer, algorithm, body), so a
verifier always knows whose key to use and a signature cannot be replayed as another
signer's or under another algorithm.
"""

from __future__ import annotations

import abc
import hmac
import os
from dataclasses import dataclass
from typing import ClassVar

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from iomt.crypto.encoding import Reader, lp16, lp32
from iomt.crypto.errors import InvalidSignatureError, KeyFormatError
from iomt.crypto.primitives import sha256

__all__ = [
    "ALGORITHMS",
    "EcdsaP256Signer",
    "EcdsaP256Verifier",
    "Ed25519Signer",
    "Ed25519Verifier",
    "HmacSha256Key",
    "SignedPayload",
    "Signer",
    "Verifier",
    "load_signer_pem",
    "load_verifier_pem",
    "verifier_from_public_bytes",
]

ALGORITHMS: tuple[str, ...] = ("ed25519", "ecdsa-p256", "hmac-sha256")
_P256 = ec.SECP256R1()
_P256_ORDER_BYTES = 32


class Verifier(abc.ABC):
    """Checks signatures (or MACs) of one key; ``verify`` raises, never returns False."""

    algorithm: ClassVar[str]

    @abc.abstractmethod
    def verify(self, data: bytes, signature: bytes) -> None:
        """Raise ``InvalidSignatureError`` unless ``signature`` is valid for ``data``."""

    @abc.abstractmethod
    def public_bytes(self) -> bytes:
        """A compact public encoding (raw Ed25519 key, compressed P-256 point)."""

    def fingerprint(self) -> str:
        """SHA-256 over algorithm and public bytes, hex: names a key in logs and lists."""
        return sha256(self.algorithm.encode() + b":" + self.public_bytes()).hex()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Verifier):
            return NotImplemented
        return self.algorithm == other.algorithm and hmac.compare_digest(
            self.public_bytes(), other.public_bytes()
        )

    def __hash__(self) -> int:
        return hash((self.algorithm, self.public_bytes()))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.fingerprint()[:16]})"


class Signer(abc.ABC):
    """Produces signatures (or MACs) with one private key."""

    algorithm: ClassVar[str]

    @abc.abstractmethod
    def sign(self, data: bytes) -> bytes: ...

    @abc.abstractmethod
    def verifier(self) -> Verifier:
        """The matching verifier (for HMAC: the same key)."""

    @abc.abstractmethod
    def private_pem(self) -> bytes:
        """PKCS#8 PEM for the keystore's 0600 files. Never log it."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(public={self.verifier().fingerprint()[:16]})"


# --- Ed25519 -------------------------------------------------------------------------


class Ed25519Verifier(Verifier):
    algorithm = "ed25519"
    __slots__ = ("_key",)

    def __init__(self, key: ed25519.Ed25519PublicKey) -> None:
        self._key = key

    @classmethod
    def from_public_bytes(cls, data: bytes) -> Ed25519Verifier:
        try:
            return cls(ed25519.Ed25519PublicKey.from_public_bytes(bytes(data)))
        except (ValueError, TypeError) as exc:
            raise KeyFormatError(f"not an Ed25519 public key: {exc}") from None

    @property
    def raw(self) -> ed25519.Ed25519PublicKey:
        return self._key

    def verify(self, data: bytes, signature: bytes) -> None:
        if len(signature) != 64:
            raise InvalidSignatureError("Ed25519 signatures are 64 bytes")
        try:
            self._key.verify(bytes(signature), data)
        except InvalidSignature:
            raise InvalidSignatureError("Ed25519 signature does not verify") from None

    def public_bytes(self) -> bytes:
        return self._key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


class Ed25519Signer(Signer):
    algorithm = "ed25519"
    __slots__ = ("_key", "_verifier")

    def __init__(self, key: ed25519.Ed25519PrivateKey) -> None:
        self._key = key
        self._verifier = Ed25519Verifier(key.public_key())

    @classmethod
    def generate(cls) -> Ed25519Signer:
        return cls(ed25519.Ed25519PrivateKey.generate())

    @classmethod
    def from_private_bytes(cls, seed: bytes) -> Ed25519Signer:
        """From the 32-byte RFC 8032 secret key (seed)."""
        try:
            return cls(ed25519.Ed25519PrivateKey.from_private_bytes(bytes(seed)))
        except (ValueError, TypeError) as exc:
            raise KeyFormatError(f"not an Ed25519 private key: {exc}") from None

    @property
    def raw(self) -> ed25519.Ed25519PrivateKey:
        return self._key

    def sign(self, data: bytes) -> bytes:
        return self._key.sign(data)

    def verifier(self) -> Ed25519Verifier:
        return self._verifier

    def private_pem(self) -> bytes:
        return _pkcs8(self._key)


# --- ECDSA P-256 ---------------------------------------------------------------------


class EcdsaP256Verifier(Verifier):
    algorithm = "ecdsa-p256"
    __slots__ = ("_key",)

    def __init__(self, key: ec.EllipticCurvePublicKey) -> None:
        if not isinstance(key.curve, ec.SECP256R1):
            raise KeyFormatError(f"ECDSA key on {key.curve.name}, expected P-256")
        self._key = key

    @classmethod
    def from_public_bytes(cls, data: bytes) -> EcdsaP256Verifier:
        try:
            return cls(ec.EllipticCurvePublicKey.from_encoded_point(_P256, bytes(data)))
        except (ValueError, TypeError) as exc:
            raise KeyFormatError(f"not a P-256 public key: {exc}") from None

    @property
    def raw(self) -> ec.EllipticCurvePublicKey:
        return self._key

    def verify(self, data: bytes, signature: bytes) -> None:
        if len(signature) != 2 * _P256_ORDER_BYTES:
            raise InvalidSignatureError("ECDSA P-256 signatures are 64 bytes (r || s)")
        r = int.from_bytes(signature[:32], "big")
        s = int.from_bytes(signature[32:], "big")
        try:
            self._key.verify(encode_dss_signature(r, s), data, ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            raise InvalidSignatureError("ECDSA P-256 signature does not verify") from None

    def public_bytes(self) -> bytes:
        return self._key.public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint
        )


class EcdsaP256Signer(Signer):
    algorithm = "ecdsa-p256"
    __slots__ = ("_key", "_verifier")

    def __init__(self, key: ec.EllipticCurvePrivateKey) -> None:
        if not isinstance(key.curve, ec.SECP256R1):
            raise KeyFormatError(f"ECDSA key on {key.curve.name}, expected P-256")
        self._key = key
        self._verifier = EcdsaP256Verifier(key.public_key())

    @classmethod
    def generate(cls) -> EcdsaP256Signer:
        return cls(ec.generate_private_key(_P256))

    @property
    def raw(self) -> ec.EllipticCurvePrivateKey:
        return self._key

    def sign(self, data: bytes) -> bytes:
        r, s = decode_dss_signature(self._key.sign(data, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")

    def verifier(self) -> EcdsaP256Verifier:
        return self._verifier

    def private_pem(self) -> bytes:
        return _pkcs8(self._key)


# --- HMAC-SHA256 ---------------------------------------------------------------------


class HmacSha256Key(Signer, Verifier):
    """A symmetric link's MAC key: signs and verifies. ``public_bytes`` is a key id only."""

    algorithm = "hmac-sha256"
    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        if not isinstance(key, bytes) or len(key) < 16:
            raise KeyFormatError("HMAC-SHA256 keys must be at least 16 bytes")
        self._key = key

    @classmethod
    def generate(cls) -> HmacSha256Key:
        return cls(os.urandom(32))

    def sign(self, data: bytes) -> bytes:
        return hmac.digest(self._key, data, "sha256")

    def verify(self, data: bytes, signature: bytes) -> None:
        if not hmac.compare_digest(hmac.digest(self._key, data, "sha256"), bytes(signature)):
            raise InvalidSignatureError("HMAC-SHA256 tag does not verify")

    def verifier(self) -> HmacSha256Key:
        return self

    def public_bytes(self) -> bytes:
        # A MAC key has no public half: expose a one-way identifier, never the key.
        return hmac.digest(self._key, b"iomt/hmac-key-id/v1", "sha256")[:16]

    def private_pem(self) -> bytes:
        raise KeyFormatError("HMAC keys are shared secrets; store them with the link, not as PEM")

    def __repr__(self) -> str:
        return f"HmacSha256Key(<redacted>, id={self.public_bytes().hex()[:16]})"


# --- loading -------------------------------------------------------------------------


def _pkcs8(key: ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def load_signer_pem(pem: bytes) -> Ed25519Signer | EcdsaP256Signer:
    """An Ed25519 or ECDSA P-256 signer from an unencrypted PKCS#8 PEM."""
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise KeyFormatError(f"not an unencrypted PEM private key: {exc}") from None
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return Ed25519Signer(key)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return EcdsaP256Signer(key)
    raise KeyFormatError(f"PEM holds a {type(key).__name__}, not a signing key")


def verifier_from_key(key: object) -> Ed25519Verifier | EcdsaP256Verifier:
    """Wrap a pyca public key (e.g. a certificate's) as a Verifier."""
    if isinstance(key, ed25519.Ed25519PublicKey):
        return Ed25519Verifier(key)
    if isinstance(key, ec.EllipticCurvePublicKey):
        return EcdsaP256Verifier(key)
    raise KeyFormatError(f"{type(key).__name__} is not an Ed25519 or P-256 signing key")


def load_verifier_pem(pem: bytes) -> Ed25519Verifier | EcdsaP256Verifier:
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, TypeError) as exc:
        raise KeyFormatError(f"not a PEM public key: {exc}") from None
    return verifier_from_key(key)


def verifier_from_public_bytes(algorithm: str, data: bytes) -> Ed25519Verifier | EcdsaP256Verifier:
    if algorithm == "ed25519":
        return Ed25519Verifier.from_public_bytes(data)
    if algorithm == "ecdsa-p256":
        return EcdsaP256Verifier.from_public_bytes(data)
    raise KeyFormatError(f"no public-key verifier for algorithm {algorithm!r}")


# --- the publish envelope ------------------------------------------------------------

_ENVELOPE_MAGIC = b"\x49\x53\x01"  # "IS" v1
_ENVELOPE_CONTEXT = b"iomt/signed-payload/v1"


def _to_be_signed(signer: str, algorithm: str, body: bytes) -> bytes:
    return _ENVELOPE_CONTEXT + lp32(signer.encode()) + lp32(algorithm.encode()) + lp32(body)


@dataclass(frozen=True, slots=True)
class SignedPayload:
    """A published payload that names its signer: ``decode(...).verify(key_of(signer))``."""

    signer: str
    algorithm: str
    body: bytes
    signature: bytes

    @classmethod
    def create(cls, body: bytes, *, signer_id: str, signer: Signer) -> SignedPayload:
        sig = signer.sign(_to_be_signed(signer_id, signer.algorithm, body))
        return cls(signer=signer_id, algorithm=signer.algorithm, body=body, signature=sig)

    def encode(self) -> bytes:
        return (
            _ENVELOPE_MAGIC
            + lp16(self.signer.encode())
            + lp16(self.algorithm.encode())
            + lp32(self.body)
            + lp16(self.signature)
        )

    @classmethod
    def decode(cls, data: bytes) -> SignedPayload:
        r = Reader(data, InvalidSignatureError)
        if r.take(3) != _ENVELOPE_MAGIC:
            raise InvalidSignatureError("not a signed payload (bad magic)")
        try:
            signer = r.lp16().decode()
            algorithm = r.lp16().decode()
        except UnicodeDecodeError:
            raise InvalidSignatureError("signer or algorithm is not UTF-8") from None
        body = r.lp32()
        signature = r.lp16()
        r.end()
        if algorithm not in ALGORITHMS:
            raise InvalidSignatureError(f"unknown signature algorithm {algorithm!r}")
        return cls(signer=signer, algorithm=algorithm, body=body, signature=signature)

    def verify(self, verifier: Verifier) -> bytes:
        """Check the signature with the signer's key; return the body."""
        if verifier.algorithm != self.algorithm:
            raise InvalidSignatureError(
                f"payload signed with {self.algorithm}, key is {verifier.algorithm}"
            )
        verifier.verify(_to_be_signed(self.signer, self.algorithm, self.body), self.signature)
        return self.body
