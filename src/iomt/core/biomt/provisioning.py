"""Framework initialization: ATS, SecGen, ID issue and key establishment (BIoMT §II-C).

The paper: "each device submits its attributes to be mapped into numbers using ATS. Then,
the SecGen uses the attribute number and other information to create the agreement and form
the policy header. Then, each device obtains a unique identity (shared public key) based on
the agreement and the attribute number. Finally, the encrypted shared key stored in an
origin transaction is added to the block." Made concrete:

**ATS** (:func:`ats`) -- each attribute gets a 256-bit number drawn
from the bolster's RNG. The numbers travel only inside the AEAD-sealed provisioning response
and are kept by the device alone (the bolster forgets them): they are the opening of the
security agreement, and they make it *hiding* -- the agreement reveals nothing about the
attributes, and a re-provisioned device gets an unlinkable new identity.

**SecGen** (:func:`secgen`) -- SHA-256 over a domain-separated, length-prefixed
encoding of (facility, device URI, owner, device public key, every attribute name, value and
number). The agreement hash goes into the Origin body; the device's **pseudonym**
(:func:`id_issue`, a hash of the agreement) is what the privacy header authorizes,
what the ledger names as the Store generator and what requesters ask for.

**ID issue** -- the facility CA certifies the device's own Ed25519 key under the pseudonym
(see :mod:`~iomt.core.biomt.identity`), valid until the shared key expires.

**Key establishment** -- authenticated ephemeral ECDH (X25519) bound to both certificates::

    device -> bolster  ProvisionRequest = ECIES(bolster ECDH key, DeviceSubmission)
                         + admin's signature over the submission digest
         DeviceSubmission = attributes, device signing key, device X25519 share, nonce, time,
                            signed by the device key (proof of possession)
    bolster -> device  Provisioned = bolster X25519 share,
                         AES-GCM(K_resp, {pseudonym, certificate, ATS numbers, agreement,
                                          key id, expiry}),  Sig_bolster(TH2)

    Z      = X25519(bolster share, device share)
    TH1    = H(submission digest, bolster share, bolster id, bolster cert fingerprint)
    K_resp = HKDF(Z, salt=TH1, "provision/response")      TH2 = H(TH1, H(sealed))
    K      = HKDF(Z, salt=TH1, "device-key" | pseudonym | expiry | device cert fp | bolster cert fp)

The bolster's signature over TH2 covers the sealed secrets, so it authenticates the key id
(key confirmation) and everything the key derivation is bound to.

The device checks the bolster's certificate against the facility CA and its signature over
TH2 before opening anything, then that its certificate certifies *its* key under the
pseudonym the agreement it can recompute yields, and that the key id matches (key
confirmation). Nothing secret crosses the wire in clear: attributes are sealed to the
bolster, numbers and certificate (which links pseudonym and URI) to the device.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass

from iomt.crypto.encoding import lp32, u32
from iomt.crypto.errors import KeyFormatError
from iomt.crypto.keys import EccCurve, EccPrivateKey, EccPublicKey, X25519PrivateKey
from iomt.crypto.primitives import hkdf_sha256, sha256
from iomt.ledger import Receipt, Transaction

from .clock import Rng
from .codec import TEXT, U64, Bytes, Message, Nested, Seq, Text, Tuple, tag
from .errors import ProvisioningError
from .messages import RECEIPT, SIGNATURE, TRANSACTION

__all__ = [
    "ATS_NUMBER_SIZE",
    "ENROLMENT_AAD",
    "Approval",
    "DeviceAttributes",
    "DeviceSubmission",
    "ProvisionRequest",
    "ProvisionSecrets",
    "Provisioned",
    "ats",
    "device_key",
    "id_issue",
    "response_key",
    "secgen",
    "transcript1",
    "transcript2",
    "x25519_shared",
]

ATS_NUMBER_SIZE = 32
#: What a sealed enrolment is bound to (with the bolster id as its recipient).
ENROLMENT_AAD = "device-enrolment"
_ATTR_RE = re.compile(r"[a-z][a-z0-9_.-]{0,63}")
_MAX_ATTRIBUTES = 32


def _require(cond: bool, message: str) -> None:
    if not cond:
        raise ValueError(message)


@dataclass(frozen=True, slots=True)
class DeviceAttributes(Message):
    """What a device submits: its URI, its owner (a registered patient) and attributes."""

    device_uri: str
    owner: str
    attributes: tuple[tuple[str, str], ...]

    TAG = tag("iomt/biomt/device-attributes/v1")
    FIELDS = (
        ("device_uri", Text(max_size=512)),
        ("owner", Text(max_size=256)),
        ("attributes", Seq(Tuple(Text(max_size=64), Text(max_size=256)), max_items=32)),
    )

    def __post_init__(self) -> None:
        _require(isinstance(self.device_uri, str) and 0 < len(self.device_uri) <= 512, "uri")
        _require(isinstance(self.owner, str) and 0 < len(self.owner) <= 256, "owner")
        attrs = tuple(sorted((str(n), str(v)) for n, v in self.attributes))
        _require(len(attrs) <= _MAX_ATTRIBUTES, f"at most {_MAX_ATTRIBUTES} attributes")
        for i, (n, v) in enumerate(attrs):
            _require(bool(_ATTR_RE.fullmatch(n)), f"attribute name {n!r} is not a plain name")
            _require(len(v.encode()) <= 256, f"attribute {n!r} is too long")
            _require(i == 0 or attrs[i - 1][0] != n, f"attribute {n!r} given twice")
        object.__setattr__(self, "attributes", attrs)

    @classmethod
    def of(cls, device_uri: str, owner: str, attributes: Mapping[str, str]) -> DeviceAttributes:
        return cls(device_uri, owner, tuple(attributes.items()))


# --- ATS, SecGen, ID issue -----------------------------------------------------------


def ats(attributes: DeviceAttributes, rng: Rng) -> tuple[tuple[str, bytes], ...]:
    """ATS: a fresh random 256-bit number per attribute."""
    return tuple((name, bytes(rng(ATS_NUMBER_SIZE))) for name, _ in attributes.attributes)


def secgen(
    facility_id: str,
    attributes: DeviceAttributes,
    numbers: tuple[tuple[str, bytes], ...],
    signing_key: bytes,
) -> bytes:
    """SecGen: the agreement hash over (facility, device, owner, key, attributes, numbers)."""
    by_name = dict(numbers)
    if sorted(by_name) != [n for n, _ in attributes.attributes] or len(by_name) != len(numbers):
        raise ProvisioningError("attribute numbers do not match the attributes")
    h = hashlib.sha256(tag("iomt/biomt/secgen/v1"))
    for part in (facility_id.encode(), attributes.device_uri.encode(), attributes.owner.encode()):
        h.update(lp32(part))
    h.update(lp32(signing_key))
    h.update(u32(len(numbers)))
    for name, value in attributes.attributes:
        number = by_name[name]
        if len(number) != ATS_NUMBER_SIZE:
            raise ProvisioningError("attribute numbers are 32 bytes")
        h.update(lp32(name.encode()) + lp32(value.encode()) + number)
    return h.digest()


def id_issue(agreement: bytes) -> str:
    """ID issue: the device's pseudonymous identity, derived from its agreement."""
    return "dev-" + sha256(tag("iomt/biomt/pseudonym/v1") + agreement)[:16].hex()


# --- messages ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DeviceSubmission(Message):
    """The device's enrolment, signed by its own key (proof of possession)."""

    bolster_id: str
    facility_id: str
    attributes: DeviceAttributes
    signing_key: bytes
    exchange_key: bytes
    nonce: bytes
    time: int
    device_signature: bytes = b""

    TAG = tag("iomt/biomt/device-submission/v1")
    FIELDS = (
        ("bolster_id", TEXT),
        ("facility_id", TEXT),
        ("attributes", Nested(DeviceAttributes)),
        ("signing_key", Bytes(size=32)),
        ("exchange_key", Bytes(size=32)),
        ("nonce", Bytes(size=16)),
        ("time", U64),
        ("device_signature", SIGNATURE),
    )
    SIGNATURE = "device_signature"

    def digest(self) -> bytes:
        return sha256(self.signed_bytes())


@dataclass(frozen=True, slots=True)
class Approval(Message):
    """What an admin signs to approve an enrolment (Table 1: Origin's generator)."""

    bolster_id: str
    submission_digest: bytes
    admin: str
    time: int

    TAG = tag("iomt/biomt/provision-approval/v1")
    FIELDS = (
        ("bolster_id", TEXT),
        ("submission_digest", Bytes(size=32)),
        ("admin", TEXT),
        ("time", U64),
    )


@dataclass(frozen=True, slots=True)
class ProvisionRequest(Message):
    """``sealed_submission`` = ECIES(bolster ECDH key, DeviceSubmission); the admin's
    signature is over the :class:`Approval` of the submission's digest."""

    bolster_id: str
    sealed_submission: bytes
    admin: str
    time: int
    admin_signature: bytes

    TAG = tag("iomt/biomt/provision-request/v1")
    FIELDS = (
        ("bolster_id", TEXT),
        ("sealed_submission", Bytes(max_size=1 << 16)),
        ("admin", TEXT),
        ("time", U64),
        ("admin_signature", SIGNATURE),
    )


@dataclass(frozen=True, slots=True)
class ProvisionSecrets(Message):
    """Sealed to the device: its identity and the opening of its agreement."""

    pseudonym: str
    certificate: bytes
    numbers: tuple[tuple[str, bytes], ...]
    agreement: bytes
    key_id: bytes
    key_expires: int

    TAG = tag("iomt/biomt/provision-secrets/v1")
    FIELDS = (
        ("pseudonym", TEXT),
        ("certificate", Bytes(max_size=16384)),
        ("numbers", Seq(Tuple(Text(max_size=64), Bytes(size=ATS_NUMBER_SIZE)), max_items=32)),
        ("agreement", Bytes(size=32)),
        ("key_id", Bytes(size=16)),
        ("key_expires", U64),
    )


@dataclass(frozen=True, slots=True)
class Provisioned(Message):
    """The bolster's answer: its X25519 share, the sealed secrets, its signature over TH2,
    and the Origin transaction that recorded the device (with its receipt)."""

    bolster_id: str
    submission_digest: bytes
    exchange_key: bytes
    sealed: bytes
    signature: bytes
    origin: Transaction
    origin_receipt: Receipt

    TAG = tag("iomt/biomt/provisioned/v1")
    FIELDS = (
        ("bolster_id", TEXT),
        ("submission_digest", Bytes(size=32)),
        ("exchange_key", Bytes(size=32)),
        ("sealed", Bytes(max_size=1 << 16)),
        ("signature", SIGNATURE),
        ("origin", TRANSACTION),
        ("origin_receipt", RECEIPT),
    )


# --- key establishment ---------------------------------------------------------------


def x25519_shared(private: EccPrivateKey | X25519PrivateKey, public: bytes) -> bytes:
    key = private if isinstance(private, EccPrivateKey) else EccPrivateKey(private)
    try:
        return key.exchange(EccPublicKey.from_bytes(public, EccCurve.X25519))
    except KeyFormatError:  # malformed or low-order share: all-zero secret
        raise ProvisioningError("X25519 share is invalid or of low order") from None


def transcript1(
    submission_digest: bytes, bolster_share: bytes, bolster_id: str, bolster_cert_fp: bytes
) -> bytes:
    return sha256(
        tag("iomt/biomt/provision/th1")
        + submission_digest
        + bolster_share
        + lp32(bolster_id.encode())
        + bolster_cert_fp
    )


def transcript2(th1: bytes, sealed: bytes) -> bytes:
    return sha256(tag("iomt/biomt/provision/th2") + th1 + sha256(sealed))


def response_key(z: bytes, th1: bytes) -> bytes:
    return hkdf_sha256(z, salt=th1, info=b"iomt/biomt/provision/response/v1", length=32)


def device_key(
    z: bytes,
    th1: bytes,
    *,
    pseudonym: str,
    expires: int,
    device_cert_fp: bytes,
    bolster_cert_fp: bytes,
) -> bytes:
    """The shared key, bound to the transcript and to both certificates."""
    info = (
        b"iomt/biomt/device-key/v1"
        + lp32(pseudonym.encode())
        + expires.to_bytes(8, "big")
        + device_cert_fp
        + bolster_cert_fp
    )
    return hkdf_sha256(z, salt=th1, info=info, length=32)
