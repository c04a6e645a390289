"""The keystore: identities, the facility CA, the attribute authority, revocation — on disk.

Modelled on SROS2's keystore (``ros2 security create_keystore`` / ``create_enclave``): a
directory of standard files that ``iomt keystore create | add-identity | add-attributes |
revoke | list`` manages and nodes load at start-up::

    <root>/keystore.json                  facility name, format version
    <root>/revocation.json                the RevocationList (identities, serials, keys, tokens)
    <root>/ca/ca.key.pem                  facility CA private key (ECDSA P-256, PKCS#8)
    <root>/ca/ca.cert.pem                 self-signed CA certificate (X.509 v3)
    <root>/ca/crl.pem                     X.509 CRL of revoked certificate serials
    <root>/authority/fame.master.pem      the attribute authority's FAME master key
    <root>/authority/fame.public.pem      FAME public parameters (anyone may encrypt)
    <root>/identities/<name>/identity.key.pem     signing key (Ed25519 or ECDSA P-256)
    <root>/identities/<name>/identity.cert.pem    its certificate (digitalSignature, SAN URI)
    <root>/identities/<name>/encryption.key.pem   ECDH P-256 key for ``ecc`` / ``ecc-attr``
    <root>/identities/<name>/encryption.cert.pem  its certificate (keyAgreement)
    <root>/identities/<name>/attributes.key.pem   FAME attribute key (after add-attributes)
    <root>/identities/<name>/identity.json        name, URI, algorithm, roles, capability,
                                                  attributes, serials

Every identity certificate certifies the identity's **role** (device with its capability
class, wallet, provider, bolster, cluster head, cloud, admin, master, central) in its
ExtendedKeyUsage extension (:mod:`iomt.crypto.roles`): ``add_identity(role=...,
capability=...)`` writes it, :meth:`Keystore.set_roles` re-issues both certificates with a
new one (revoking the old serials as superseded), ``iomt keystore show`` displays it.

This is where BIoMT's bolster provisioning (ATS / SecGen / ID issue: attributes in, unique
identity out) and paper 1's "the user provides the key and the attributes" become real: the
CA certifies each device's keys, and the attribute authority issues FAME keys for the
attributes a device or clinician holds.

Every file and directory is created owner-only at creation time (``os.open(..., 0o600)``,
``os.mkdir(..., 0o700)``, written to a temporary name and renamed into place), never
``chmod``-ed afterwards. Private keys never appear in ``repr`` or in ``list`` output.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import re
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from iomt.clock import ClockS
from iomt.crypto.abe.fame import AttributeAuthority, FamePublicParams, FameUserKey
from iomt.crypto.ca import build_ca, issue_certificate
from iomt.crypto.errors import (
    CertificateError,
    CertificateRevokedError,
    KeyFormatError,
    KeystoreError,
)
from iomt.crypto.keys import EccPrivateKey, EccPublicKey
from iomt.crypto.revocation import RevocationEntry, RevocationKind, RevocationList
from iomt.crypto.roles import (
    CertifiedRole,
    Role,
    capability_of,
    parse_roles,
    role_extension,
    roles_of,
)
from iomt.crypto.sessions import CredentialValidator, HandshakeIdentity
from iomt.crypto.signing import (
    EcdsaP256Signer,
    Ed25519Signer,
    Signer,
    Verifier,
    load_signer_pem,
    verifier_from_key,
)

__all__ = ["Identity", "IdentityInfo", "Keystore"]

_FORMAT_VERSION = 1
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_SIGNING_ALGORITHMS = ("ed25519", "ecdsa-p256")
_FAME_MASTER = "IOMT FAME MASTER KEY"
_FAME_PUBLIC = "IOMT FAME PUBLIC PARAMETERS"
_FAME_USER = "IOMT FAME USER KEY"


# --- owner-only files ----------------------------------------------------------------


def _mkdir_private(path: Path) -> None:
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        raise KeystoreError(f"{path} already exists") from None
    except OSError as exc:
        raise KeystoreError(f"cannot create {path}: {exc.strerror}") from None


def _write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a 0600 temporary file and an atomic rename."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(tmp, flags, 0o600)
    except OSError as exc:
        raise KeystoreError(f"cannot create {tmp}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise KeystoreError(f"cannot write {path}: {exc.strerror}") from None


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise KeystoreError(f"{path} does not exist") from None
    except OSError as exc:
        raise KeystoreError(f"cannot read {path}: {exc.strerror}") from None


def _pem(label: str, data: bytes) -> bytes:
    body = base64.encodebytes(data).replace(b"\n", b"")
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return (
        f"-----BEGIN {label}-----\n".encode()
        + b"\n".join(lines)
        + f"\n-----END {label}-----\n".encode()
    )


def _unpem(label: str, text: bytes, path: Path) -> bytes:
    head, tail = f"-----BEGIN {label}-----".encode(), f"-----END {label}-----".encode()
    stripped = text.strip()
    if not stripped.startswith(head) or not stripped.endswith(tail):
        raise KeystoreError(f"{path} is not a {label} PEM file")
    try:
        return base64.b64decode(stripped[len(head) : -len(tail)], validate=False)
    except ValueError:
        raise KeystoreError(f"{path} has a corrupt base64 body") from None


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise KeystoreError(
            f"invalid identity name {name!r}: use 1-128 of [A-Za-z0-9._-], starting alphanumeric"
        )
    return name


# --- public views --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IdentityInfo:
    """What ``iomt keystore list`` shows: public facts only."""

    name: str
    uri: str
    algorithm: str
    attributes: tuple[str, ...]
    serials: tuple[int, ...]
    not_after: str
    fingerprint: str
    revoked: bool
    roles: tuple[str, ...] = ()
    capability: str | None = None

    @property
    def role_text(self) -> str:
        """``device (ecc)``, ``wallet``, ... or ``no role``."""
        return CertifiedRole(parse_roles(self.roles), capability_of(self.capability), "").describe()


@dataclass(frozen=True, slots=True, eq=False)
class Identity:
    """A loaded identity with its private keys. ``repr`` shows only public facts."""

    name: str
    uri: str
    signer: Signer
    certificate: x509.Certificate
    encryption_key: EccPrivateKey
    encryption_certificate: x509.Certificate
    attribute_key: FameUserKey | None

    @property
    def verifier(self) -> Verifier:
        return self.signer.verifier()

    @property
    def encryption_public_key(self) -> EccPublicKey:
        return self.encryption_key.public_key()

    def handshake_identity(self) -> HandshakeIdentity:
        """For sessions: the credential is this identity's DER certificate."""
        return HandshakeIdentity(
            self.name, self.signer, self.certificate.public_bytes(serialization.Encoding.DER)
        )

    def __repr__(self) -> str:
        attrs = sorted(self.attribute_key.attributes) if self.attribute_key else []
        return (
            f"Identity({self.name!r}, uri={self.uri!r}, {self.signer.algorithm}, "
            f"attributes={attrs}, <private keys redacted>)"
        )


# --- the keystore --------------------------------------------------------------------


#: certificates whose CA signature a keystore remembers having checked
CHECKED_CERTIFICATES_MAX = 4096


@dataclass(frozen=True, slots=True)
class _Checked:
    """A certificate's CA signature was found good: what it certifies."""

    cn: str
    serial: int
    not_before: dt.datetime
    not_after: dt.datetime
    key: Verifier | EccPublicKey
    fingerprint: str | None  # a signing key's, for revocation


class Keystore:
    """A keystore directory. Use ``Keystore.create(path)`` or ``Keystore.open(path)``."""

    def __init__(self, root: Path, meta: dict[str, Any], *, clock: ClockS = time.time) -> None:
        self.root = root
        self.facility = str(meta["facility"])
        self._clock = clock
        self._ca_cert = self._load_cert(root / "ca" / "ca.cert.pem")
        self._revocations = RevocationList.from_json(
            _read(root / "revocation.json").decode("utf-8", "replace")
        )
        self._public_params: FamePublicParams | None = None
        # DER credential -> what its CA signature check found (credential_validator)
        self._checked: dict[bytes, _Checked] = {}

    def __repr__(self) -> str:
        return f"Keystore({str(self.root)!r}, facility={self.facility!r})"

    # -- lifecycle --------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        path: str | os.PathLike[str],
        *,
        facility: str = "iomt",
        ca_validity_days: int = 3650,
        max_attribute_reuse: int = 2,
        clock: ClockS = time.time,
    ) -> Keystore:
        root = Path(path)
        _check_name(facility)
        if root.exists():
            if not root.is_dir() or any(root.iterdir()):
                raise KeystoreError(f"{root} exists and is not an empty directory")
            mode = root.stat().st_mode & 0o777
            if mode & 0o077:
                # we did not create it, so we cannot vouch for who else can read it
                raise KeystoreError(f"{root} exists with mode {mode:o}; remove it or chmod 700")
        else:
            _mkdir_private(root)
        for sub in ("ca", "authority", "identities"):
            _mkdir_private(root / sub)
        now = dt.datetime.fromtimestamp(clock(), dt.UTC)
        ca_key, ca_cert = build_ca(
            facility, now=now, validity_days=ca_validity_days, key_identifier=True
        )
        _write_private(
            root / "ca" / "ca.key.pem",
            ca_key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
        )
        _write_private(
            root / "ca" / "ca.cert.pem", ca_cert.public_bytes(serialization.Encoding.PEM)
        )
        authority = AttributeAuthority.setup(max_reuse=max_attribute_reuse)
        _write_private(
            root / "authority" / "fame.master.pem", _pem(_FAME_MASTER, authority.to_bytes())
        )
        _write_private(
            root / "authority" / "fame.public.pem",
            _pem(_FAME_PUBLIC, authority.public_params.to_bytes()),
        )
        _write_private(root / "revocation.json", RevocationList().to_json().encode())
        meta = {"version": _FORMAT_VERSION, "facility": facility, "created": clock()}
        _write_private(root / "keystore.json", json.dumps(meta, indent=2).encode())
        store = cls(root, meta, clock=clock)
        store._write_crl()
        return store

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, clock: ClockS = time.time) -> Keystore:
        root = Path(path)
        try:
            meta = json.loads(_read(root / "keystore.json"))
        except ValueError:
            raise KeystoreError(f"{root}/keystore.json is not JSON") from None
        if not isinstance(meta, dict) or meta.get("version") != _FORMAT_VERSION:
            raise KeystoreError(f"{root} is not an iomt keystore (format {_FORMAT_VERSION})")
        return cls(root, meta, clock=clock)

    # -- CA ---------------------------------------------------------------------------

    @property
    def ca_certificate(self) -> x509.Certificate:
        return self._ca_cert

    def ca_key_pem(self) -> bytes:
        """The facility CA's private key (PKCS#8 PEM), for a node that acts as the CA (a
        bolster issuing device certificates)."""
        return _read(self.root / "ca" / "ca.key.pem")

    def _ca_key(self) -> ec.EllipticCurvePrivateKey:
        try:
            key = serialization.load_pem_private_key(self.ca_key_pem(), password=None)
        except (ValueError, TypeError) as exc:
            raise KeystoreError(f"CA key unreadable: {exc}") from None
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise KeystoreError("CA key is not an ECDSA key")
        return key

    @staticmethod
    def _load_cert(path: Path) -> x509.Certificate:
        try:
            return x509.load_pem_x509_certificate(_read(path))
        except ValueError as exc:
            raise KeystoreError(f"{path} is not a PEM certificate: {exc}") from None

    def _issue_cert(
        self,
        *,
        name: str,
        uri: str,
        public_key: Any,
        signing: bool,
        validity_days: int,
        roles: x509.ExtendedKeyUsage | None = None,
    ) -> x509.Certificate:
        now = dt.datetime.fromtimestamp(self._clock(), dt.UTC)
        ca_key = self._ca_key()
        return issue_certificate(
            ca_key,
            self._ca_cert,
            common_name=name,
            uri=uri,
            public_key=public_key,
            not_before=now,
            not_after=now + dt.timedelta(days=validity_days),
            signing=signing,
            roles=roles,
            key_identifier=True,
        )

    def validate_certificate(
        self, certificate: x509.Certificate, *, name: str | None = None, signing: bool = True
    ) -> Verifier | EccPublicKey:
        """Check issuer signature, validity period, key usage, revocation (and CN == name).

        Returns the certified key: a Verifier for signing certificates, an EccPublicKey for
        key-agreement certificates. Raises CertificateError / CertificateRevokedError.
        """
        checked = self._check_issued(certificate, signing=signing)
        self._check_current(checked, name)
        return checked.key

    def _check_issued(self, certificate: x509.Certificate, *, signing: bool) -> _Checked:
        """What a certificate says once and for all: the CA's signature, its holder, its
        key usage and its key."""
        try:
            certificate.verify_directly_issued_by(self._ca_cert)
        except (ValueError, TypeError, InvalidSignature) as exc:
            raise CertificateError(f"not issued by the {self.facility} CA: {exc}") from None
        cns = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        try:
            usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
        except x509.ExtensionNotFound:
            raise CertificateError("certificate has no key usage") from None
        if (usage.digital_signature if signing else usage.key_agreement) is not True:
            raise CertificateError("certificate key usage does not allow this use")
        try:
            if signing:
                key: Verifier | EccPublicKey = verifier_from_key(certificate.public_key())
            else:
                pub = certificate.public_key()
                if not isinstance(pub, ec.EllipticCurvePublicKey):
                    raise CertificateError("key-agreement certificate does not hold a P-256 key")
                key = EccPublicKey(pub)
        except KeyFormatError as exc:
            raise CertificateError(f"unusable certified key: {exc}") from None
        return _Checked(
            cn=str(cns[0].value) if cns else "",
            serial=certificate.serial_number,
            not_before=certificate.not_valid_before_utc,
            not_after=certificate.not_valid_after_utc,
            key=key,
            fingerprint=key.fingerprint() if isinstance(key, Verifier) else None,
        )

    def _check_current(self, checked: _Checked, name: str | None) -> None:
        """What can change after a certificate was issued, or differs per use: the time,
        the name it is presented for, and revocation (of it, its holder or its key)."""
        now = dt.datetime.fromtimestamp(self._clock(), dt.UTC)
        if not checked.not_before <= now <= checked.not_after:
            raise CertificateError(
                f"certificate valid {checked.not_before:%Y-%m-%d} .. "
                f"{checked.not_after:%Y-%m-%d}, now {now:%Y-%m-%d %H:%M}"
            )
        if name is not None and checked.cn != name:
            raise CertificateError(f"certificate is for {checked.cn!r}, not {name!r}")
        if self._revocations.is_certificate_revoked(
            checked.serial
        ) or self._revocations.is_identity_revoked(checked.cn):
            raise CertificateRevokedError(f"certificate of {checked.cn!r} is revoked")
        if checked.fingerprint is not None and self._revocations.is_key_revoked(
            checked.fingerprint
        ):
            raise CertificateRevokedError(f"key of {checked.cn!r} is revoked")

    def credential_validator(self) -> CredentialValidator:
        """A session-handshake validator: the credential is a DER certificate from this CA.

        A certificate's CA signature, key usage and key are checked once per keystore (per
        process): a device process of 200 devices otherwise verified each provider's
        certificate 200 times, and each of the ward's first contacts paid for two ECDSA
        verifications. Its validity period, the name it is presented for and revocation
        are checked at every use."""

        def validate(name: str, credential: bytes) -> Verifier:
            checked = self._checked.get(credential)
            if checked is None:
                try:
                    cert = x509.load_der_x509_certificate(credential)
                except ValueError:
                    raise CertificateError("credential is not a DER certificate") from None
                checked = self._check_issued(cert, signing=True)
                if len(self._checked) >= CHECKED_CERTIFICATES_MAX:
                    self._checked.clear()  # a flood of certificates costs re-checks, not memory
                self._checked[credential] = checked
            self._check_current(checked, name)
            assert isinstance(checked.key, Verifier)
            return checked.key

        return validate

    # -- attribute authority ----------------------------------------------------------

    @property
    def public_params(self) -> FamePublicParams:
        if self._public_params is None:
            path = self.root / "authority" / "fame.public.pem"
            try:
                self._public_params = FamePublicParams.from_bytes(
                    _unpem(_FAME_PUBLIC, _read(path), path)
                )
            except KeyFormatError as exc:
                raise KeystoreError(f"{path}: {exc}") from None
        return self._public_params

    def authority(self) -> AttributeAuthority:
        """Load the FAME master key (only the authority's tooling should call this)."""
        path = self.root / "authority" / "fame.master.pem"
        try:
            return AttributeAuthority.from_bytes(_unpem(_FAME_MASTER, _read(path), path))
        except KeyFormatError as exc:
            raise KeystoreError(f"{path}: {exc}") from None

    # -- identities -------------------------------------------------------------------

    def _dir(self, name: str) -> Path:
        return self.root / "identities" / _check_name(name)

    def _meta(self, name: str) -> dict[str, Any]:
        path = self._dir(name) / "identity.json"
        if not path.exists():
            raise KeystoreError(f"no identity {name!r} in {self.root}")
        try:
            meta = json.loads(_read(path))
        except ValueError:
            raise KeystoreError(f"{path} is not JSON") from None
        if not isinstance(meta, dict):
            raise KeystoreError(f"{path} is malformed")
        return meta

    def add_identity(
        self,
        name: str,
        *,
        uri: str | None = None,
        algorithm: str = "ed25519",
        validity_days: int = 365,
        roles: Iterable[Role | str] = (),
        capability: Any = None,
    ) -> IdentityInfo:
        """Create keys and CA-issued certificates for a device, wallet, provider or bolster.

        ``roles`` (``device``, ``wallet``, ``provider`` ...; a device also needs its
        ``capability`` class ``none|symmetric|ecc|abe``) are certified in both certificates
        (:mod:`iomt.crypto.roles`). Without a role the identity can authenticate but is
        certified as nothing: peers that check roles (conversion) refuse it."""
        directory = self._dir(name)
        if algorithm not in _SIGNING_ALGORITHMS:
            raise KeystoreError(f"algorithm must be one of {', '.join(_SIGNING_ALGORITHMS)}")
        role_ext, role_meta = self._role_meta(roles, capability)
        uri = uri or f"iomt://{self.facility}/{name}"
        signer: Ed25519Signer | EcdsaP256Signer = (
            Ed25519Signer.generate() if algorithm == "ed25519" else EcdsaP256Signer.generate()
        )
        enc = EccPrivateKey.generate()
        cert = self._issue_cert(
            name=name,
            uri=uri,
            public_key=signer.raw.public_key(),
            signing=True,
            validity_days=validity_days,
            roles=role_ext,
        )
        enc_cert = self._issue_cert(
            name=name,
            uri=uri,
            public_key=enc.public_key().raw,
            signing=False,
            validity_days=validity_days,
            roles=role_ext,
        )
        _mkdir_private(directory)
        _write_private(directory / "identity.key.pem", signer.private_pem())
        _write_private(
            directory / "identity.cert.pem", cert.public_bytes(serialization.Encoding.PEM)
        )
        _write_private(directory / "encryption.key.pem", enc.to_pem())
        _write_private(
            directory / "encryption.cert.pem", enc_cert.public_bytes(serialization.Encoding.PEM)
        )
        meta = {
            "name": name,
            "uri": uri,
            "algorithm": algorithm,
            **role_meta,
            "attributes": [],
            "serials": [str(cert.serial_number), str(enc_cert.serial_number)],
            "validity_days": validity_days,
        }
        _write_private(directory / "identity.json", json.dumps(meta, indent=2).encode())
        return self.info(name)

    @staticmethod
    def _role_meta(
        roles: Iterable[Role | str], capability: Any
    ) -> tuple[x509.ExtendedKeyUsage | None, dict[str, Any]]:
        try:
            parsed = parse_roles(roles)
            cap = capability_of(capability)
            ext = role_extension(parsed, cap) if parsed or cap is not None else None
        except CertificateError as exc:
            raise KeystoreError(str(exc)) from None
        meta = {
            "roles": sorted(r.value for r in parsed),
            "capability": cap.name.lower() if cap is not None else None,
        }
        return ext, meta

    def set_roles(
        self, name: str, roles: Iterable[Role | str], capability: Any = None
    ) -> IdentityInfo:
        """Re-issue ``name``'s certificates (same keys, new serials) certifying ``roles``
        (and ``capability``); the old certificates are revoked as superseded, so the role
        they certified cannot be presented any more."""
        meta = self._meta(name)
        if self._revocations.is_identity_revoked(name):
            raise KeystoreError(f"identity {name!r} is revoked")
        role_ext, role_meta = self._role_meta(roles, capability)
        directory = self._dir(name)
        old = self.certificate(name)
        old_enc = self._load_cert(directory / "encryption.cert.pem")
        validity = int(meta.get("validity_days", 365))
        cert = self._issue_cert(
            name=name,
            uri=str(meta["uri"]),
            public_key=old.public_key(),
            signing=True,
            validity_days=validity,
            roles=role_ext,
        )
        enc_cert = self._issue_cert(
            name=name,
            uri=str(meta["uri"]),
            public_key=old_enc.public_key(),
            signing=False,
            validity_days=validity,
            roles=role_ext,
        )
        _write_private(
            directory / "identity.cert.pem", cert.public_bytes(serialization.Encoding.PEM)
        )
        _write_private(
            directory / "encryption.cert.pem", enc_cert.public_bytes(serialization.Encoding.PEM)
        )
        superseded = [str(s) for s in meta.get("serials", [])]
        meta.update(role_meta)
        meta["serials"] = [str(cert.serial_number), str(enc_cert.serial_number)]
        _write_private(directory / "identity.json", json.dumps(meta, indent=2).encode())
        for serial in superseded:
            self._revocations.revoke(
                RevocationKind.CERTIFICATE, serial, reason="superseded", at=self._clock()
            )
        _write_private(self.root / "revocation.json", self._revocations.to_json().encode())
        self._write_crl()
        return self.info(name)

    def role_of(self, certificate: x509.Certificate | bytes) -> CertifiedRole:
        """What a certificate certifies (:func:`iomt.crypto.roles.roles_of`); validate it
        first (``validate_certificate`` / ``credential_validator``)."""
        return roles_of(certificate)

    def names(self) -> list[str]:
        base = self.root / "identities"
        return sorted(p.name for p in base.iterdir() if (p / "identity.json").exists())

    def info(self, name: str) -> IdentityInfo:
        meta = self._meta(name)
        cert = self._load_cert(self._dir(name) / "identity.cert.pem")
        verifier = verifier_from_key(cert.public_key())
        serials = tuple(int(s) for s in meta.get("serials", []))
        revoked = (
            self._revocations.is_identity_revoked(name)
            or any(self._revocations.is_certificate_revoked(s) for s in serials)
            or self._revocations.is_key_revoked(verifier.fingerprint())
        )
        certified = roles_of(cert)  # what the certificate says, not the metadata
        return IdentityInfo(
            name=name,
            uri=str(meta["uri"]),
            algorithm=str(meta["algorithm"]),
            attributes=tuple(meta.get("attributes", [])),
            serials=serials,
            not_after=cert.not_valid_after_utc.isoformat(),
            fingerprint=verifier.fingerprint(),
            revoked=revoked,
            roles=tuple(sorted(r.value for r in certified.roles)),
            capability=(
                certified.capability.name.lower() if certified.capability is not None else None
            ),
        )

    def identities(self) -> list[IdentityInfo]:
        return [self.info(n) for n in self.names()]

    def identity(self, name: str) -> Identity:
        """Load an identity's keys and certificates (for the node that *is* this identity)."""
        meta = self._meta(name)
        directory = self._dir(name)
        try:
            signer = load_signer_pem(_read(directory / "identity.key.pem"))
            enc = EccPrivateKey.from_pem(_read(directory / "encryption.key.pem"))
            attr_path = directory / "attributes.key.pem"
            attribute_key = (
                FameUserKey.from_bytes(_unpem(_FAME_USER, _read(attr_path), attr_path))
                if attr_path.exists()
                else None
            )
        except KeyFormatError as exc:
            raise KeystoreError(f"identity {name!r}: {exc}") from None
        return Identity(
            name=name,
            uri=str(meta["uri"]),
            signer=signer,
            certificate=self._load_cert(directory / "identity.cert.pem"),
            encryption_key=enc,
            encryption_certificate=self._load_cert(directory / "encryption.cert.pem"),
            attribute_key=attribute_key,
        )

    def certificate(self, name: str) -> x509.Certificate:
        """An identity's public signing certificate (what peers of that identity hold)."""
        self._meta(name)
        return self._load_cert(self._dir(name) / "identity.cert.pem")

    def certificate_der(self, name: str) -> bytes:
        return self.certificate(name).public_bytes(serialization.Encoding.DER)

    def verifier(self, name: str) -> Verifier:
        """The validated public signing key of identity ``name`` (chain, validity,
        revocation checked now)."""
        key = self.validate_certificate(self.certificate(name), name=name, signing=True)
        assert isinstance(key, Verifier)
        return key

    def add_attributes(self, name: str, attributes: Iterable[str]) -> FameUserKey:
        """Issue a FAME key for the identity's attributes plus ``attributes``.

        FAME keys cannot be merged (each is randomized per issue), so the whole set is
        re-issued and replaces the previous key.
        """
        meta = self._meta(name)
        if self._revocations.is_identity_revoked(name):
            raise KeystoreError(f"identity {name!r} is revoked")
        wanted = sorted(set(meta.get("attributes", [])) | set(attributes))
        key = self.authority().keygen(wanted)
        directory = self._dir(name)
        _write_private(directory / "attributes.key.pem", _pem(_FAME_USER, key.to_bytes()))
        meta["attributes"] = wanted
        _write_private(directory / "identity.json", json.dumps(meta, indent=2).encode())
        return key

    # -- revocation -------------------------------------------------------------------

    @property
    def revocations(self) -> RevocationList:
        """The live list (token verifiers and certificate checks consult it)."""
        return self._revocations

    def revoke(
        self, kind: RevocationKind | str, value: str, *, reason: str = "unspecified"
    ) -> RevocationEntry:
        """Revoke an identity, certificate serial, key fingerprint or token id; persist it."""
        kind = RevocationKind(kind)
        if kind is RevocationKind.IDENTITY:
            meta = self._meta(value)
            for serial in meta.get("serials", []):
                self._revocations.revoke(
                    RevocationKind.CERTIFICATE, str(serial), reason=reason, at=self._clock()
                )
        elif kind is RevocationKind.CERTIFICATE and not value.isdigit():
            raise KeystoreError("certificate serials are decimal integers")
        elif kind in (RevocationKind.TOKEN, RevocationKind.KEY):
            try:
                bytes.fromhex(value)
            except ValueError:
                raise KeystoreError(f"{kind.value} ids are hex strings") from None
        entry = self._revocations.revoke(kind, value, reason=reason, at=self._clock())
        _write_private(self.root / "revocation.json", self._revocations.to_json().encode())
        self._write_crl()
        return entry

    def _write_crl(self) -> None:
        now = dt.datetime.fromtimestamp(self._clock(), dt.UTC)
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self._ca_cert.subject)
            .last_update(now)
            .next_update(now + dt.timedelta(days=7))
        )
        for entry in self._revocations:
            if entry.kind is RevocationKind.CERTIFICATE:
                builder = builder.add_revoked_certificate(
                    x509.RevokedCertificateBuilder()
                    .serial_number(int(entry.value))
                    .revocation_date(dt.datetime.fromtimestamp(entry.revoked_at, dt.UTC))
                    .build()
                )
        crl = builder.sign(self._ca_key(), hashes.SHA256())
        _write_private(self.root / "ca" / "crl.pem", crl.public_bytes(serialization.Encoding.PEM))
