"""The paper's security techniques (ST): one interface, a registry by name.

Bilal & Hassan's security layer (§III-D) offers symmetric (DES/3DES), CP-ABE, ECC and a
hybrid "ECC + attributes" (ABECC); devices announce which one they can apply, the listener
(Alg. 2.2) serves data when requester and device share a technique and otherwise asks a
capable neighbour to convert (Alg. 3). Every technique here implements

    seal(plaintext, recipient, aad) -> bytes      open(ciphertext, secret, aad) -> bytes

where ``aad`` (``AssociatedData``: sender, recipient, device, sequence number, optional
request id) is authenticated but not carried — the opener rebuilds it from the message it
arrived in, so a ciphertext cannot be replayed into another conversation.

=============  ==========  ======================================================
name           capability  construction
=============  ==========  ======================================================
``none``       NONE        plaintext, framed (a device that cannot encrypt)
``sym-3des``   SYMMETRIC   3DES-CBC + HMAC-SHA256, encrypt-then-MAC. WEAK: paper
                           fidelity only (64-bit blocks, 112-bit security); never
                           a default
``sym-aes``    SYMMETRIC   AES-256-GCM under a key derived from a pre-shared or
                           session-established secret
``ecc``        ECC         ECIES: ephemeral ECDH (P-256 or X25519) + HKDF-SHA256 +
                           AES-256-GCM
``cpabe``      ABE         FAME CP-ABE KEM on BLS12-381 + HKDF + AES-256-GCM
``ecc-attr``   ABE         ABECC: data key = HKDF(ECDH secret || FAME key); needs
                           the recipient's ECC private key AND satisfying
                           attribute keys — either alone fails
=============  ==========  ======================================================

Wire format: ``0x01 || technique code || body``. The header (and for the hybrid ones the
whole KEM header) is part of the AEAD associated data, so swapping headers, techniques or
policies breaks the tag.
"""

from __future__ import annotations

import abc
import enum
import hmac
import os
from dataclasses import dataclass
from typing import ClassVar, TypeVar

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, modes

from iomt.crypto.abe.fame import (
    FameCiphertext,
    FamePublicParams,
    FameUserKey,
    decapsulate,
    encapsulate,
)
from iomt.crypto.abe.policy import Policy
from iomt.crypto.encoding import Reader, lp32, u64
from iomt.crypto.errors import (
    DecryptionError,
    KeyFormatError,
    MalformedCiphertextError,
    UnknownTechniqueError,
    WrongKeyTypeError,
)
from iomt.crypto.keys import EccCurve, EccPrivateKey, EccPublicKey, SymmetricKey
from iomt.crypto.primitives import GCM_NONCE_SIZE, GCM_TAG_SIZE, AesGcm, hkdf_sha256, sha256

__all__ = [
    "NO_KEY",
    "TECHNIQUE_NAMES",
    "AbePolicy",
    "AssociatedData",
    "Capability",
    "CpAbeTechnique",
    "EccAttrRecipient",
    "EccAttrSecret",
    "EccTechnique",
    "NoKey",
    "PlaintextTechnique",
    "RecipientKey",
    "RecipientSecret",
    "SecurityTechnique",
    "SymAesTechnique",
    "SymTripleDesTechnique",
    "get_technique",
    "technique_of",
    "techniques_for",
]

_VERSION = 0x01
_ZERO_NONCE = bytes(GCM_NONCE_SIZE)  # safe only under a key used exactly once (KEM keys)


class Capability(enum.IntEnum):
    """What a device can apply, ordered: a class can apply every technique at or below it."""

    NONE = 0
    SYMMETRIC = 1
    ECC = 2
    ABE = 3


@dataclass(frozen=True, slots=True)
class AssociatedData:
    """What a ciphertext is bound to; authenticated, not transmitted inside it."""

    sender: str
    recipient: str
    device: str
    seq: int
    request_id: str | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.seq < 1 << 64:
            raise ValueError("seq must fit in 64 unsigned bits")

    def encode(self) -> bytes:
        """Canonical, injective encoding: tagged, length-prefixed fields."""
        rid = b"\x00" if self.request_id is None else b"\x01" + lp32(self.request_id.encode())
        return (
            b"iomt/aad/v1"
            + lp32(self.sender.encode())
            + lp32(self.recipient.encode())
            + lp32(self.device.encode())
            + u64(self.seq)
            + rid
        )


# --- key material per technique ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NoKey:
    """The key of ``none``: there is none."""


NO_KEY = NoKey()


@dataclass(frozen=True, slots=True, eq=False)
class AbePolicy:
    """Encrypt-to-policy: an access policy plus the attribute authority's public params."""

    params: FamePublicParams
    policy: Policy

    @classmethod
    def parse(cls, params: FamePublicParams, policy: str) -> AbePolicy:
        return cls(params, Policy.parse(policy))


@dataclass(frozen=True, slots=True, eq=False)
class EccAttrRecipient:
    """ABECC recipient: the recipient's ECC public key and the policy its opener must meet."""

    ecc: EccPublicKey
    abe: AbePolicy


@dataclass(frozen=True, slots=True, eq=False)
class EccAttrSecret:
    """ABECC opener: the recipient's ECC private key and its attribute key."""

    ecc: EccPrivateKey
    abe: FameUserKey

    def __repr__(self) -> str:
        return f"EccAttrSecret({self.ecc!r}, {self.abe!r})"


RecipientKey = NoKey | SymmetricKey | EccPublicKey | AbePolicy | EccAttrRecipient
RecipientSecret = NoKey | SymmetricKey | EccPrivateKey | FameUserKey | EccAttrSecret


# --- the interface -------------------------------------------------------------------


class SecurityTechnique(abc.ABC):
    """One of the paper's security techniques. Stateless; safe to share."""

    name: ClassVar[str]
    code: ClassVar[int]
    weak: ClassVar[bool] = False
    capability: ClassVar[Capability]
    encrypts: ClassVar[bool] = True

    @property
    def header(self) -> bytes:
        return bytes((_VERSION, self.code))

    @abc.abstractmethod
    def seal(self, plaintext: bytes, recipient: RecipientKey, aad: AssociatedData) -> bytes:
        """Encrypt (and authenticate) ``plaintext`` for ``recipient``, bound to ``aad``."""

    @abc.abstractmethod
    def open(self, ciphertext: bytes, secret: RecipientSecret, aad: AssociatedData) -> bytes:
        """Return the plaintext or raise a DecryptionError / PolicyNotSatisfiedError."""

    def _body(self, ciphertext: bytes) -> Reader:
        r = Reader(ciphertext, MalformedCiphertextError)
        if r.take(2) != self.header:
            raise MalformedCiphertextError(f"not a {self.name} ciphertext")
        return r

    def __repr__(self) -> str:
        return f"<SecurityTechnique {self.name}{' (weak)' if self.weak else ''}>"


_K = TypeVar("_K")


def _expect(value: object, kind: type[_K], technique: str) -> _K:
    if not isinstance(value, kind):
        raise WrongKeyTypeError(f"{technique} needs a {kind.__name__}, got {type(value).__name__}")
    return value


class PlaintextTechnique(SecurityTechnique):
    """``none``: the device cannot encrypt. Readable on the wire by design."""

    name = "none"
    code = 0x00
    capability = Capability.NONE
    encrypts = False

    def seal(self, plaintext: bytes, recipient: RecipientKey, aad: AssociatedData) -> bytes:
        _expect(recipient, NoKey, self.name)
        return self.header + plaintext

    def open(self, ciphertext: bytes, secret: RecipientSecret, aad: AssociatedData) -> bytes:
        _expect(secret, NoKey, self.name)
        return self._body(ciphertext).rest()


class SymTripleDesTechnique(SecurityTechnique):
    """``sym-3des``: 3DES-CBC + HMAC-SHA256 (encrypt-then-MAC). WEAK — paper fidelity only."""

    name = "sym-3des"
    code = 0x01
    weak = True
    capability = Capability.SYMMETRIC
    _IV = 8
    _MAC = 32

    def _keys(self, key: SymmetricKey) -> tuple[bytes, bytes]:
        material = key.derive(b"iomt/sym-3des/v1", 24 + 32)
        return material[:24], material[24:]

    def seal(self, plaintext: bytes, recipient: RecipientKey, aad: AssociatedData) -> bytes:
        k_enc, k_mac = self._keys(_expect(recipient, SymmetricKey, self.name))
        iv = os.urandom(self._IV)
        padder = padding.PKCS7(64).padder()
        padded = padder.update(plaintext) + padder.finalize()
        enc = Cipher(TripleDES(k_enc), modes.CBC(iv)).encryptor()
        body = iv + enc.update(padded) + enc.finalize()
        tag = hmac.digest(k_mac, self.header + lp32(aad.encode()) + body, "sha256")
        return self.header + body + tag

    def open(self, ciphertext: bytes, secret: RecipientSecret, aad: AssociatedData) -> bytes:
        k_enc, k_mac = self._keys(_expect(secret, SymmetricKey, self.name))
        r = self._body(ciphertext)
        rest = r.rest()
        if len(rest) < self._IV + 8 + self._MAC or (len(rest) - self._IV - self._MAC) % 8:
            raise MalformedCiphertextError("3DES ciphertext has a bad length")
        body, tag = rest[: -self._MAC], rest[-self._MAC :]
        expected = hmac.digest(k_mac, self.header + lp32(aad.encode()) + body, "sha256")
        if not hmac.compare_digest(expected, tag):
            raise DecryptionError("HMAC-SHA256 over the 3DES ciphertext does not verify")
        dec = Cipher(TripleDES(k_enc), modes.CBC(body[: self._IV])).decryptor()
        padded = dec.update(body[self._IV :]) + dec.finalize()
        unpadder = padding.PKCS7(64).unpadder()
        try:
            return unpadder.update(padded) + unpadder.finalize()
        except ValueError:  # only reachable with the right MAC key: a sender bug
            raise DecryptionError("bad 3DES padding under a valid MAC") from None


class SymAesTechnique(SecurityTechnique):
    """``sym-aes``: AES-256-GCM under HKDF(pre-shared secret, "iomt/sym-aes/v1")."""

    name = "sym-aes"
    code = 0x02
    capability = Capability.SYMMETRIC

    def _aead(self, key: SymmetricKey) -> AesGcm:
        return AesGcm(key.derive(b"iomt/sym-aes/v1", 32))

    def seal(self, plaintext: bytes, recipient: RecipientKey, aad: AssociatedData) -> bytes:
        aead = self._aead(_expect(recipient, SymmetricKey, self.name))
        nonce = os.urandom(GCM_NONCE_SIZE)
        return self.header + nonce + aead.encrypt(nonce, plaintext, self.header + aad.encode())

    def open(self, ciphertext: bytes, secret: RecipientSecret, aad: AssociatedData) -> bytes:
        aead = self._aead(_expect(secret, SymmetricKey, self.name))
        r = self._body(ciphertext)
        nonce = r.take(GCM_NONCE_SIZE)
        body = r.rest()
        if len(body) < GCM_TAG_SIZE:
            raise MalformedCiphertextError("AES-GCM ciphertext shorter than its tag")
        return aead.decrypt(nonce, body, self.header + aad.encode())


_CURVE_CODES = {EccCurve.P256: 0x01, EccCurve.X25519: 0x02}
_CURVE_BY_CODE = {v: k for k, v in _CURVE_CODES.items()}
_POINT_SIZES = {EccCurve.P256: 33, EccCurve.X25519: 32}


def _ecies_encap(recipient: EccPublicKey) -> tuple[bytes, bytes]:
    """(encapsulation = curve code || ephemeral public, raw ECDH secret)."""
    eph = EccPrivateKey.generate(recipient.curve)
    enc = bytes((_CURVE_CODES[recipient.curve],)) + eph.public_key().public_bytes()
    return enc, eph.exchange(recipient)


def _ecies_read(r: Reader) -> tuple[bytes, EccPublicKey]:
    code = r.u8()
    curve = _CURVE_BY_CODE.get(code)
    if curve is None:
        raise MalformedCiphertextError(f"unknown curve code {code}")
    point = r.take(_POINT_SIZES[curve])
    try:
        return bytes((code,)) + point, EccPublicKey.from_bytes(point, curve)
    except KeyFormatError:
        raise MalformedCiphertextError("ephemeral key is not a valid curve point") from None


def _ecies_decap(secret: EccPrivateKey, ephemeral: EccPublicKey) -> bytes:
    if ephemeral.curve != secret.curve:
        raise DecryptionError(f"ciphertext is for {ephemeral.curve}, key is {secret.curve}")
    try:
        return secret.exchange(ephemeral)
    except KeyFormatError:
        raise DecryptionError("ECDH with the ephemeral key failed") from None


class EccTechnique(SecurityTechnique):
    """``ecc``: ECIES — ephemeral ECDH, HKDF-SHA256 bound to both public keys, AES-256-GCM."""

    name = "ecc"
    code = 0x03
    capability = Capability.ECC

    def _aead(self, shared: bytes, enc: bytes, recipient: EccPublicKey) -> AesGcm:
        info = b"iomt/ecc/v1" + lp32(enc) + lp32(recipient.public_bytes())
        return AesGcm(hkdf_sha256(shared, salt=None, info=info, length=32))

    def seal(self, plaintext: bytes, recipient: RecipientKey, aad: AssociatedData) -> bytes:
        pub = _expect(recipient, EccPublicKey, self.name)
        enc, shared = _ecies_encap(pub)
        head = self.header + enc
        return head + self._aead(shared, enc, pub).encrypt(
            _ZERO_NONCE, plaintext, head + aad.encode()
        )

    def open(self, ciphertext: bytes, secret: RecipientSecret, aad: AssociatedData) -> bytes:
        key = _expect(secret, EccPrivateKey, self.name)
        r = self._body(ciphertext)
        enc, eph = _ecies_read(r)
        body = r.rest()
        if len(body) < GCM_TAG_SIZE:
            raise MalformedCiphertextError("ECIES ciphertext shorter than its tag")
        shared = _ecies_decap(key, eph)
        aead = self._aead(shared, enc, key.public_key())
        return aead.decrypt(_ZERO_NONCE, body, self.header + enc + aad.encode())


class CpAbeTechnique(SecurityTechnique):
    """``cpabe``: FAME KEM under the policy, HKDF over K and the header, AES-256-GCM."""

    name = "cpabe"
    code = 0x04
    capability = Capability.ABE

    def seal(self, plaintext: bytes, recipient: RecipientKey, aad: AssociatedData) -> bytes:
        target = _expect(recipient, AbePolicy, self.name)
        k_abe, fame_ct = encapsulate(target.params, target.policy)
        head = self.header + fame_ct.to_bytes()
        aead = AesGcm(_kdf(b"iomt/cpabe/v1", k_abe, head))
        return head + aead.encrypt(_ZERO_NONCE, plaintext, head + aad.encode())

    def open(self, ciphertext: bytes, secret: RecipientSecret, aad: AssociatedData) -> bytes:
        key = _expect(secret, FameUserKey, self.name)
        r = self._body(ciphertext)
        fame_ct = FameCiphertext.read(r)
        body = r.rest()
        if len(body) < GCM_TAG_SIZE:
            raise MalformedCiphertextError("CP-ABE ciphertext shorter than its tag")
        head = ciphertext[: len(ciphertext) - len(body)]
        k_abe = decapsulate(fame_ct, key)
        aead = AesGcm(_kdf(b"iomt/cpabe/v1", k_abe, head))
        return aead.decrypt(_ZERO_NONCE, body, head + aad.encode())


class EccAttrTechnique(SecurityTechnique):
    """``ecc-attr`` (ABECC): k = HKDF(k_ecc || k_abe); both halves are needed to open."""

    name = "ecc-attr"
    code = 0x05
    capability = Capability.ABE

    def seal(self, plaintext: bytes, recipient: RecipientKey, aad: AssociatedData) -> bytes:
        target = _expect(recipient, EccAttrRecipient, self.name)
        enc, k_ecc = _ecies_encap(target.ecc)
        k_abe, fame_ct = encapsulate(target.abe.params, target.abe.policy)
        head = self.header + enc + fame_ct.to_bytes()
        key = _kdf(b"iomt/ecc-attr/v1", lp32(k_ecc) + k_abe, head + target.ecc.public_bytes())
        return head + AesGcm(key).encrypt(_ZERO_NONCE, plaintext, head + aad.encode())

    def open(self, ciphertext: bytes, secret: RecipientSecret, aad: AssociatedData) -> bytes:
        opener = _expect(secret, EccAttrSecret, self.name)
        r = self._body(ciphertext)
        _, eph = _ecies_read(r)
        fame_ct = FameCiphertext.read(r)
        body = r.rest()
        if len(body) < GCM_TAG_SIZE:
            raise MalformedCiphertextError("ECC+attributes ciphertext shorter than its tag")
        head = ciphertext[: len(ciphertext) - len(body)]
        k_abe = decapsulate(fame_ct, opener.abe)  # policy check first: the cheap refusal
        k_ecc = _ecies_decap(opener.ecc, eph)
        key = _kdf(
            b"iomt/ecc-attr/v1", lp32(k_ecc) + k_abe, head + opener.ecc.public_key().public_bytes()
        )
        return AesGcm(key).decrypt(_ZERO_NONCE, body, head + aad.encode())


def _kdf(label: bytes, ikm: bytes, header: bytes) -> bytes:
    # Salt = hash of everything public in the KEM header: a mauled header gives another key.
    return hkdf_sha256(ikm, salt=sha256(header), info=label, length=32)


# --- registry ------------------------------------------------------------------------

_REGISTRY: dict[str, SecurityTechnique] = {
    t.name: t
    for t in (
        PlaintextTechnique(),
        SymTripleDesTechnique(),
        SymAesTechnique(),
        EccTechnique(),
        CpAbeTechnique(),
        EccAttrTechnique(),
    )
}
_BY_CODE = {t.code: t for t in _REGISTRY.values()}

TECHNIQUE_NAMES: tuple[str, ...] = tuple(_REGISTRY)


def get_technique(name: str) -> SecurityTechnique:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownTechniqueError(
            f"unknown security technique {name!r}; known: {', '.join(TECHNIQUE_NAMES)}"
        ) from None


def techniques_for(capability: Capability) -> tuple[str, ...]:
    """Names of the techniques a device of this capability class can apply."""
    return tuple(t.name for t in _REGISTRY.values() if t.capability <= capability)


def technique_of(ciphertext: bytes) -> str:
    """Which technique sealed these bytes (from the header); MalformedCiphertext if none."""
    if len(ciphertext) < 2 or ciphertext[0] != _VERSION or ciphertext[1] not in _BY_CODE:
        raise MalformedCiphertextError("no security-technique header")
    return _BY_CODE[ciphertext[1]].name
