"""The facility CA: one builder of CA and end-entity certificates, and their validation.

The facility's X.509 PKI is used two ways: the keystore (:mod:`iomt.crypto.keystore`)
builds the CA on disk and issues node identities, and a BIoMT bolster holding the CA key
(:class:`FacilityCA`) issues device identities in memory (BIoMT's "ID issue"). Both build
their certificates with :func:`build_ca` and :func:`issue_certificate`, so a certificate
has one shape whoever issued it; the keystore's also carry key identifiers (RFC 5280
4.2.1.1-2). :class:`TrustAnchor` validates certificates (chain to the CA, validity at the
injected time, key usage, CN, revocation) without the CA's private key -- what devices,
cloud and cluster heads hold.
"""

from __future__ import annotations

import datetime as dt
from typing import Protocol

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509 import Certificate, ExtendedKeyUsage
from cryptography.x509.oid import NameOID

from iomt.crypto.errors import CertificateError, CertificateRevokedError, KeyFormatError
from iomt.crypto.keys import EccPublicKey
from iomt.crypto.revocation import RevocationList
from iomt.crypto.signing import EcdsaP256Verifier, Ed25519Verifier, Verifier, verifier_from_key

__all__ = [
    "AGREEMENT_OID",
    "CLOCK_SKEW",
    "CaKeystore",
    "Certificate",
    "ExtendedKeyUsage",
    "FacilityCA",
    "TrustAnchor",
    "build_ca",
    "certificate_agreement",
    "certificate_der",
    "certificate_from_der",
    "common_name",
    "issue_certificate",
    "ns_to_datetime",
]

#: UUID-based OID (ITU-T X.667, arc 2.25) for the agreement-hash extension.
AGREEMENT_OID = x509.ObjectIdentifier("2.25.228191430613637213880651442370402377497")

#: Certificates start this long before their issue time, for peers whose clocks lag.
CLOCK_SKEW = dt.timedelta(minutes=5)


class CaKeystore(Protocol):
    """What :meth:`FacilityCA.from_keystore` reads (a :class:`~iomt.crypto.keystore.Keystore`)."""

    @property
    def ca_certificate(self) -> x509.Certificate: ...

    @property
    def revocations(self) -> RevocationList: ...

    def ca_key_pem(self) -> bytes: ...


def ns_to_datetime(ns: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ns / 1e9, dt.UTC)


PublicKey = ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey | Verifier | EccPublicKey


def _pyca_public(key: PublicKey) -> ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey:
    if isinstance(key, Ed25519Verifier | EcdsaP256Verifier):
        return key.raw
    if isinstance(key, EccPublicKey):
        raw = key.raw
        if not isinstance(raw, ec.EllipticCurvePublicKey):
            raise KeyFormatError("only P-256 agreement keys are certified")
        return raw
    if isinstance(key, ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey):
        return key
    raise KeyFormatError(f"{type(key).__name__} cannot be certified")


def _name(common_name: str, facility: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, facility),
        ]
    )


def build_ca(
    facility: str, *, now: dt.datetime, validity_days: int, key_identifier: bool = False
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A fresh self-signed P-256 facility CA: (private key, certificate)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name(f"{facility} CA", facility)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + dt.timedelta(days=validity_days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
    )
    if key_identifier:
        builder = builder.add_extension(
            x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
        )
    return key, builder.sign(key, hashes.SHA256())


def issue_certificate(  # noqa: PLR0913  (one keyword per certificate field)
    ca_key: ec.EllipticCurvePrivateKey,
    ca_certificate: x509.Certificate,
    *,
    common_name: str,
    uri: str,
    public_key: PublicKey,
    not_before: dt.datetime,
    not_after: dt.datetime,
    signing: bool,
    roles: x509.ExtendedKeyUsage | None = None,
    agreement: bytes | None = None,
    key_identifier: bool = False,
) -> x509.Certificate:
    """An end-entity certificate for ``common_name`` in the CA's facility, valid from
    ``not_before`` (less the clock skew) until ``not_after`` or the CA's own expiry;
    ``roles`` certifies the holder's role (iomt.crypto.roles; critical), ``agreement``
    names the BIoMT security agreement a device identity was issued for."""
    orgs = ca_certificate.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name, str(orgs[0].value) if orgs else ""))
        .issuer_name(ca_certificate.subject)
        .public_key(_pyca_public(public_key))
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before - CLOCK_SKEW)
        .not_valid_after(min(not_after, ca_certificate.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(signing=signing), critical=True)
        .add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier(uri)]), critical=False
        )
    )
    if key_identifier:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
    if roles is not None:
        # critical: the certified key may serve these purposes only (RFC 5280 4.2.1.12)
        builder = builder.add_extension(roles, critical=True)
    if agreement is not None:
        # DER OCTET STRING holding the 32-byte agreement hash
        value = bytes((0x04, len(agreement))) + agreement
        builder = builder.add_extension(
            x509.UnrecognizedExtension(AGREEMENT_OID, value), critical=False
        )
    return builder.sign(ca_key, hashes.SHA256())


def certificate_from_der(der: bytes) -> x509.Certificate:
    try:
        return x509.load_der_x509_certificate(der)
    except ValueError:
        raise CertificateError("not a DER X.509 certificate") from None


def certificate_der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def common_name(cert: x509.Certificate) -> str:
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
                f"certificate of {common_name(cert)!r} is valid "
                f"{cert.not_valid_before_utc:%Y-%m-%d %H:%M} .. "
                f"{cert.not_valid_after_utc:%Y-%m-%d %H:%M}, not at {when:%Y-%m-%d %H:%M}"
            )
        cn = common_name(cert)
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
        if name is not None and common_name(cert) != name:
            raise CertificateError(f"certificate is for {common_name(cert)!r}, not {name!r}")
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
        key, cert = build_ca(facility, now=ns_to_datetime(now), validity_days=validity_days)
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
    def from_keystore(cls, keystore: CaKeystore) -> FacilityCA:
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
        public_key: PublicKey,
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
        return issue_certificate(
            self._key,
            self.certificate,
            common_name=common_name,
            uri=uri,
            public_key=public_key,
            not_before=start,
            not_after=end,
            signing=signing,
            roles=roles,
            agreement=agreement,
        )


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
