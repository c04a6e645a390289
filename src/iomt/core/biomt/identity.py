"""Identities: BIoMT's "ID issue", the facility CA, the user list and bolster credentials.

The paper's identity issue "takes the attribute number and its associated hash value to
generate a unique identity for the smart medical device", combining ECC key establishment
with an identity-based credential. Here the credential is an X.509 certificate from the
facility CA (the keystore's CA, :mod:`iomt.crypto.keystore`):

* subject CN = the device's **pseudonym** (derived from its security agreement, see
  :mod:`~iomt.core.biomt.provisioning`), O = facility; SAN URI = the device's URI;
* the device's own Ed25519 key (it proved possession when it enrolled);
* a non-critical extension carrying the 32-byte agreement hash, so the certificate names
  the agreement it was issued for;
* valid until the shared key expires.

:class:`TrustAnchor` validates certificates (chain to the CA, validity at the injected
time, key usage, CN, revocation) without the CA's private key -- what devices, cloud and
cluster heads hold. :class:`FacilityCA` adds issuing. :class:`UserDirectory` is the
"list that contains the public keys of users" (the paper's cluster heads hold it; bolsters
keep a copy): each user's validated certificate and role (``admin``, ``patient``,
``physician`` ...), used to authenticate signed requests.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import NameOID

from iomt.crypto.errors import (
    CertificateError,
    CertificateRevokedError,
    InvalidSignatureError,
    KeyFormatError,
)
from iomt.crypto.keys import EccPrivateKey, EccPublicKey
from iomt.crypto.revocation import RevocationKind, RevocationList
from iomt.crypto.roles import Role, role_extension
from iomt.crypto.signing import Ed25519Signer, Signer, Verifier, verifier_from_key

from .codec import TEXT, Bytes, Message, tag
from .errors import RequestAuthenticationError, UnknownRequesterError
from .keys import fingerprint

if TYPE_CHECKING:
    from iomt.crypto.keystore import Identity, Keystore

__all__ = [
    "ADMIN_ROLE",
    "AGREEMENT_OID",
    "DEVICE_ROLE",
    "PATIENT_ROLE",
    "BolsterCredentials",
    "BolsterIdentity",
    "FacilityCA",
    "TrustAnchor",
    "User",
    "UserDirectory",
    "certificate_from_der",
    "ns_to_datetime",
]

#: Generator of Origin and Remove transactions (Table 1: "Admin user").
ADMIN_ROLE = "admin"
#: Owners of devices; may always read their own devices' data and history.
PATIENT_ROLE = "patient"
#: The privacy-header role that grants device-to-device communication setups.
DEVICE_ROLE = "device"

#: UUID-based OID (ITU-T X.667, arc 2.25) for the agreement-hash extension.
AGREEMENT_OID = x509.ObjectIdentifier("2.25.228191430613637213880651442370402377497")

_ROLE_RE = re.compile(r"[a-z][a-z0-9_-]{0,63}")
_CLOCK_SKEW = dt.timedelta(minutes=5)


def ns_to_datetime(ns: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ns / 1e9, dt.UTC)


def certificate_from_der(der: bytes) -> x509.Certificate:
    try:
        return x509.load_der_x509_certificate(der)
    except ValueError:
        raise CertificateError("not a DER X.509 certificate") from None


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def _common_name(cert: x509.Certificate) -> str:
    cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(cns[0].value) if cns else ""


def _uris(cert: x509.Certificate) -> list[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [str(u) for u in san.get_values_for_type(x509.UniformResourceIdentifier)]


class TrustAnchor:
    """Validates certificates issued by one facility CA (no private key needed)."""

    __slots__ = ("certificate", "revocations")

    def __init__(self, certificate: x509.Certificate, revocations: RevocationList | None = None):
        self.certificate = certificate
        self.revocations = RevocationList() if revocations is None else revocations

    @property
    def facility(self) -> str:
        orgs = self.certificate.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
        return str(orgs[0].value) if orgs else ""

    def check_chain(self, cert: x509.Certificate) -> None:
        """Only the CA's signature (the expensive part): done once per certificate."""
        try:
            cert.verify_directly_issued_by(self.certificate)
        except (ValueError, TypeError, InvalidSignature) as exc:
            raise CertificateError(f"not issued by the facility CA: {exc}") from None

    def check_status(self, cert: x509.Certificate, *, now: int, fingerprint_: str = "") -> None:
        """The cheap checks, repeated on every use: validity period and revocation."""
        when = ns_to_datetime(now)
        if not cert.not_valid_before_utc <= when <= cert.not_valid_after_utc:
            raise CertificateError(
                f"certificate of {_common_name(cert)!r} is valid "
                f"{cert.not_valid_before_utc:%Y-%m-%d %H:%M} .. "
                f"{cert.not_valid_after_utc:%Y-%m-%d %H:%M}, not at {when:%Y-%m-%d %H:%M}"
            )
        cn = _common_name(cert)
        rl = self.revocations
        if (
            rl.is_certificate_revoked(cert.serial_number)
            or rl.is_identity_revoked(cn)
            or (fingerprint_ and rl.is_key_revoked(fingerprint_))
        ):
            raise CertificateRevokedError(f"certificate of {cn!r} is revoked")

    def validate(
        self,
        cert: x509.Certificate,
        *,
        now: int,
        name: str | None = None,
        uri: str | None = None,
    ) -> Verifier:
        """A signing certificate: chain, validity, key usage, CN/URI, revocation -> its key."""
        self.check_chain(cert)
        self._usage(cert, signing=True)
        self._names(cert, name, uri)
        try:
            key = verifier_from_key(cert.public_key())
        except KeyFormatError as exc:
            raise CertificateError(f"unusable certified key: {exc}") from None
        self.check_status(cert, now=now, fingerprint_=key.fingerprint())
        return key

    def validate_agreement(
        self, cert: x509.Certificate, *, now: int, name: str | None = None
    ) -> EccPublicKey:
        """A key-agreement certificate (a bolster's ECDH key) -> its public key."""
        self.check_chain(cert)
        self._usage(cert, signing=False)
        self._names(cert, name, None)
        self.check_status(cert, now=now)
        pub = cert.public_key()
        if not isinstance(pub, ec.EllipticCurvePublicKey):
            raise CertificateError("key-agreement certificate does not hold a P-256 key")
        try:
            return EccPublicKey(pub)
        except KeyFormatError as exc:
            raise CertificateError(str(exc)) from None

    @staticmethod
    def _usage(cert: x509.Certificate, *, signing: bool) -> None:
        try:
            usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
        except x509.ExtensionNotFound:
            raise CertificateError("certificate has no key usage") from None
        if (usage.digital_signature if signing else usage.key_agreement) is not True:
            raise CertificateError("certificate key usage does not allow this use")

    @staticmethod
    def _names(cert: x509.Certificate, name: str | None, uri: str | None) -> None:
        if name is not None and _common_name(cert) != name:
            raise CertificateError(f"certificate is for {_common_name(cert)!r}, not {name!r}")
        if uri is not None and uri not in _uris(cert):
            raise CertificateError(f"certificate does not name {uri!r}")


class FacilityCA(TrustAnchor):
    """The facility CA: validates, and issues device identities (BIoMT's ID issue)."""

    __slots__ = ("_key",)

    def __init__(
        self,
        key: ec.EllipticCurvePrivateKey,
        certificate: x509.Certificate,
        revocations: RevocationList | None = None,
    ) -> None:
        super().__init__(certificate, revocations)
        self._key = key

    def __repr__(self) -> str:
        return f"FacilityCA({self.facility!r}, <private key redacted>)"

    @classmethod
    def generate(cls, facility: str, *, now: int, validity_days: int = 3650) -> FacilityCA:
        """A fresh CA in memory (simulations, tests; deployments use the keystore's)."""
        key = ec.generate_private_key(ec.SECP256R1())
        when = ns_to_datetime(now)
        name = x509.Name(
            [
                x509.NameAttribute(NameOID.COMMON_NAME, f"{facility} CA"),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, facility),
            ]
        )
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(when - _CLOCK_SKEW)
            .not_valid_after(when + dt.timedelta(days=validity_days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_key_usage(cert_sign=True), critical=True)
            .sign(key, hashes.SHA256())
        )
        return cls(key, cert)

    @classmethod
    def from_pem(
        cls, key_pem: bytes, cert_pem: bytes, revocations: RevocationList | None = None
    ) -> FacilityCA:
        try:
            key = serialization.load_pem_private_key(key_pem, password=None)
            cert = x509.load_pem_x509_certificate(cert_pem)
        except (ValueError, TypeError) as exc:
            raise KeyFormatError(f"CA key or certificate unreadable: {exc}") from None
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise KeyFormatError("the facility CA key must be ECDSA P-256")
        return cls(key, cert, revocations)

    @classmethod
    def from_keystore(cls, keystore: Keystore) -> FacilityCA:
        """The keystore's CA, sharing its live revocation list (read once at start-up)."""
        key_pem = keystore.ca_key_pem()
        cert_pem = keystore.ca_certificate.public_bytes(serialization.Encoding.PEM)
        return cls.from_pem(key_pem, cert_pem, keystore.revocations)

    @property
    def anchor(self) -> TrustAnchor:
        """What to give devices and peers: the certificate and revocation list, no key."""
        return TrustAnchor(self.certificate, self.revocations)

    def issue(
        self,
        *,
        common_name: str,
        uri: str,
        public_key: ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey,
        now: int,
        not_after: int,
        signing: bool = True,
        agreement: bytes | None = None,
        roles: x509.ExtendedKeyUsage | None = None,
    ) -> x509.Certificate:
        """Issue a certificate (device identities, and bolsters/users without a keystore);
        ``roles`` certifies the holder's role (iomt.crypto.roles; critical)."""
        start = ns_to_datetime(now)
        end = min(ns_to_datetime(not_after), self.certificate.not_valid_after_utc)
        if end <= start:
            raise CertificateError("certificate would expire before it is valid")
        builder = (
            x509.CertificateBuilder()
            .subject_name(
                x509.Name(
                    [
                        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
                        x509.NameAttribute(NameOID.ORGANIZATION_NAME, self.facility),
                    ]
                )
            )
            .issuer_name(self.certificate.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(start - _CLOCK_SKEW)
            .not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(signing=signing), critical=True)
            .add_extension(
                x509.SubjectAlternativeName([x509.UniformResourceIdentifier(uri)]), critical=False
            )
        )
        if roles is not None:
            builder = builder.add_extension(roles, critical=True)
        if agreement is not None:
            # DER OCTET STRING holding the 32-byte agreement hash
            value = bytes((0x04, len(agreement))) + agreement
            builder = builder.add_extension(
                x509.UnrecognizedExtension(AGREEMENT_OID, value), critical=False
            )
        return builder.sign(self._key, hashes.SHA256())


def _key_usage(*, signing: bool = False, cert_sign: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=signing,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=not signing and not cert_sign,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def certificate_agreement(cert: x509.Certificate) -> bytes:
    """The agreement hash a device certificate was issued for (CertificateError if none)."""
    try:
        ext = cert.extensions.get_extension_for_oid(AGREEMENT_OID).value
    except x509.ExtensionNotFound:
        raise CertificateError("certificate carries no security agreement") from None
    raw = ext.value if isinstance(ext, x509.UnrecognizedExtension) else b""
    if len(raw) != 34 or raw[:2] != b"\x04\x20":
        raise CertificateError("malformed agreement extension")
    return raw[2:]


# --- users ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class User:
    """A registered user: a validated signing certificate and a role."""

    name: str
    role: str
    verifier: Verifier
    certificate: x509.Certificate

    @property
    def fingerprint(self) -> str:
        return self.verifier.fingerprint()


class UserDirectory:
    """The user public-key list: who may send signed requests, and in which role."""

    __slots__ = ("_anchor", "_users")

    def __init__(self, anchor: TrustAnchor) -> None:
        self._anchor = anchor
        self._users: dict[str, User] = {}

    @property
    def anchor(self) -> TrustAnchor:
        return self._anchor

    def register(self, certificate: x509.Certificate | bytes, role: str, *, now: int) -> User:
        """Admit a user whose certificate the facility CA issued (CN = user name)."""
        cert = certificate_from_der(certificate) if isinstance(certificate, bytes) else certificate
        if not isinstance(role, str) or not _ROLE_RE.fullmatch(role):
            raise ValueError(f"invalid role {role!r}")
        verifier = self._anchor.validate(cert, now=now)
        name = _common_name(cert)
        user = User(name, role, verifier, cert)
        self._users[name] = user
        return user

    def remove(self, name: str) -> None:
        self._users.pop(name, None)

    def get(self, name: str) -> User:
        try:
            return self._users[name]
        except KeyError:
            raise UnknownRequesterError(f"{name!r} is not a registered user") from None

    def __contains__(self, name: object) -> bool:
        return name in self._users

    def __iter__(self) -> Iterator[User]:
        return iter(sorted(self._users.values(), key=lambda u: u.name))

    def __len__(self) -> int:
        return len(self._users)

    def authenticate(self, name: str, data: bytes, signature: bytes, *, now: int) -> User:
        """The user ``name``, if ``signature`` is theirs over ``data`` and their certificate
        is still valid and unrevoked; :class:`UnknownRequesterError` /
        :class:`RequestAuthenticationError` otherwise."""
        user = self.get(name)
        try:
            self._anchor.check_status(user.certificate, now=now, fingerprint_=user.fingerprint)
        except CertificateError as exc:
            raise UnknownRequesterError(f"{name!r}: {exc}") from None
        try:
            user.verifier.verify(data, signature)
        except InvalidSignatureError:
            raise RequestAuthenticationError(f"signature of {name!r} does not verify") from None
        return user

    def revoke(self, name: str, *, at: int, reason: str = "unspecified") -> None:
        """Revoke the user's certificate in the shared revocation list and drop them."""
        user = self.get(name)
        self._anchor.revocations.revoke(
            RevocationKind.CERTIFICATE,
            str(user.certificate.serial_number),
            reason=reason,
            at=at / 1e9,
        )
        self._users.pop(name, None)


# --- bolsters ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BolsterCredentials(Message):
    """What a bolster publishes: its name, facility and two CA-issued certificates."""

    bolster_id: str
    facility_id: str
    signing_certificate: bytes
    agreement_certificate: bytes

    TAG = tag("iomt/biomt/bolster-credentials/v1")
    FIELDS = (
        ("bolster_id", TEXT),
        ("facility_id", TEXT),
        ("signing_certificate", Bytes(max_size=16384)),
        ("agreement_certificate", Bytes(max_size=16384)),
    )

    def verify(self, anchor: TrustAnchor, *, now: int) -> tuple[Verifier, EccPublicKey]:
        """The bolster's signing verifier and ECDH key, both certified for ``bolster_id``."""
        signing = anchor.validate(
            certificate_from_der(self.signing_certificate), now=now, name=self.bolster_id
        )
        agreement = anchor.validate_agreement(
            certificate_from_der(self.agreement_certificate), now=now, name=self.bolster_id
        )
        return signing, agreement

    @property
    def signing_fingerprint(self) -> bytes:
        return fingerprint(self.signing_certificate)


@dataclass(frozen=True, slots=True, eq=False)
class BolsterIdentity:
    """A bolster's private side: signing key (ledger, receipts, responses), ECDH key
    (sealed enrolments), their certificates and the root of its storage keys."""

    bolster_id: str
    facility_id: str
    signer: Signer
    signing_certificate: x509.Certificate
    agreement_key: EccPrivateKey
    agreement_certificate: x509.Certificate
    storage_secret: bytes

    def __post_init__(self) -> None:
        if len(self.storage_secret) < 32:
            raise ValueError("storage_secret must be at least 32 bytes")

    def __repr__(self) -> str:
        return f"BolsterIdentity({self.bolster_id!r}, {self.facility_id!r}, <keys redacted>)"

    @classmethod
    def from_keystore(
        cls, identity: Identity, *, facility_id: str, storage_secret: bytes
    ) -> BolsterIdentity:
        """From a keystore identity (``iomt keystore add-identity bolster-a``)."""
        return cls(
            bolster_id=identity.name,
            facility_id=facility_id,
            signer=identity.signer,
            signing_certificate=identity.certificate,
            agreement_key=identity.encryption_key,
            agreement_certificate=identity.encryption_certificate,
            storage_secret=storage_secret,
        )

    @classmethod
    def generate(
        cls,
        bolster_id: str,
        ca: FacilityCA,
        *,
        now: int,
        storage_secret: bytes,
        validity: int = 365 * 86400 * 10**9,
    ) -> BolsterIdentity:
        """Fresh keys certified by ``ca`` (simulations and tests)."""
        signer = Ed25519Signer.generate()
        agreement = EccPrivateKey.generate()
        uri = f"iomt://{ca.facility}/{bolster_id}"
        signing_cert = ca.issue(
            common_name=bolster_id,
            uri=uri,
            public_key=signer.raw.public_key(),
            now=now,
            not_after=now + validity,
            roles=role_extension([Role.BOLSTER]),
        )
        raw = agreement.public_key().raw
        assert isinstance(raw, ec.EllipticCurvePublicKey)
        agreement_cert = ca.issue(
            common_name=bolster_id,
            uri=uri,
            public_key=raw,
            now=now,
            not_after=now + validity,
            signing=False,
            roles=role_extension([Role.BOLSTER]),
        )
        return cls(
            bolster_id,
            ca.facility,
            signer,
            signing_cert,
            agreement,
            agreement_cert,
            storage_secret,
        )

    def credentials(self) -> BolsterCredentials:
        return BolsterCredentials(
            self.bolster_id,
            self.facility_id,
            _der(self.signing_certificate),
            _der(self.agreement_certificate),
        )
