"""Identities: BIoMT's "ID issue", the facility CA, the user list and bolster credentials.

The paper's identity issue "takes the attribute number and its associated hash value to
generate a unique identity for the smart medical device", combining ECC key establishment
with an identity-based credential. Here the credential is an X.509 certificate from the
facility CA (the keystore's CA, built and issued by :mod:`iomt.crypto.ca`):

* subject CN = the device's **pseudonym** (derived from its security agreement, see
  :mod:`~iomt.core.biomt.provisioning`), O = facility; SAN URI = the device's URI;
* the device's own Ed25519 key (it proved possession when it enrolled);
* a non-critical extension carrying the 32-byte agreement hash, so the certificate names
  the agreement it was issued for;
* valid until the shared key expires.

:class:`TrustAnchor` validates certificates without the CA's private key -- what devices,
cloud and cluster heads hold -- and :class:`FacilityCA` adds issuing; both live in
:mod:`iomt.crypto.ca` and are re-exported here. :class:`UserDirectory` is the
"list that contains the public keys of users" (the paper's cluster heads hold it; bolsters
keep a copy): each user's validated certificate and role (``admin``, ``patient``,
``physician`` ...), used to authenticate signed requests.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from iomt.crypto.ca import (
    AGREEMENT_OID,
    Certificate,
    FacilityCA,
    TrustAnchor,
    certificate_agreement,
    certificate_der,
    certificate_from_der,
    common_name,
    ns_to_datetime,
)
from iomt.crypto.errors import CertificateError, InvalidSignatureError
from iomt.crypto.keys import EccPrivateKey, EccPublicKey
from iomt.crypto.revocation import RevocationKind
from iomt.crypto.roles import Role, role_extension
from iomt.crypto.signing import Ed25519Signer, Signer, Verifier

from .codec import TEXT, Bytes, Message, tag
from .errors import RequestAuthenticationError, UnknownRequesterError
from .keys import fingerprint

if TYPE_CHECKING:
    from iomt.crypto.keystore import Identity

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
    "certificate_agreement",
    "certificate_from_der",
    "ns_to_datetime",
]

#: Generator of Origin and Remove transactions (Table 1: "Admin user").
ADMIN_ROLE = "admin"
#: Owners of devices; may always read their own devices' data and history.
PATIENT_ROLE = "patient"
#: The privacy-header role that grants device-to-device communication setups.
DEVICE_ROLE = "device"

_ROLE_RE = re.compile(r"[a-z][a-z0-9_-]{0,63}")


# --- users ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class User:
    """A registered user: a validated signing certificate and a role."""

    name: str
    role: str
    verifier: Verifier
    certificate: Certificate

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

    def register(self, certificate: Certificate | bytes, role: str, *, now: int) -> User:
        """Admit a user whose certificate the facility CA issued (CN = user name)."""
        cert = certificate_from_der(certificate) if isinstance(certificate, bytes) else certificate
        if not isinstance(role, str) or not _ROLE_RE.fullmatch(role):
            raise ValueError(f"invalid role {role!r}")
        verifier = self._anchor.validate(cert, now=now)
        name = common_name(cert)
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
    signing_certificate: Certificate
    agreement_key: EccPrivateKey
    agreement_certificate: Certificate
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
            public_key=signer.verifier(),
            now=now,
            not_after=now + validity,
            roles=role_extension([Role.BOLSTER]),
        )
        agreement_cert = ca.issue(
            common_name=bolster_id,
            uri=uri,
            public_key=agreement.public_key(),
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
            certificate_der(self.signing_certificate),
            certificate_der(self.agreement_certificate),
        )
