"""Roles in certificates: what the facility CA says an identity *is*.

A certificate from the facility CA proves a name holds a key; it does not say whether the
holder is a device, a patient's wallet or a provider -- and an identity that is not a
capable device must never receive another device's plaintext for conversion (Bilal &
Hassan, Alg. 3). So the CA writes each identity's role, and for a device its capability
class, into its certificates, in a standard X.509 extension: **ExtendedKeyUsage**
(RFC 5280 §4.2.1.12), one key purpose per role and one per capability class, under an
OID arc of iomt's own that needs no registration (ITU-T X.667: ``2.25.<UUID as an
integer>``)::

    2.25.250397464272406764688407871930808979648   iomt (UUID bc60cc25-4bae-4a2f-8e9a-a8fc45f8d0c0)
    <arc>.1.<n>   role: 1 device, 2 wallet, 3 provider, 4 bolster, 5 cluster-head, 6 cloud,
                  7 admin, 8 master, 9 central
    <arc>.2.<n>   a device's capability class: 0 none, 1 symmetric, 2 ecc, 3 abe

The extension is marked critical: the key may be used for these purposes only (a
general-purpose verifier will not take an iomt device certificate for TLS). A certificate
without it certifies no role at all. ``openssl x509 -text`` shows the OIDs under
"X509v3 Extended Key Usage"; ``iomt keystore show`` names them.

Reading a role never replaces validating the certificate (chain, validity, revocation,
name): :func:`roles_of` only reads, on a certificate the caller has already validated.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography import x509
from cryptography.x509.oid import NameOID, ObjectIdentifier

from iomt.crypto.errors import CertificateError
from iomt.crypto.techniques import Capability, techniques_for

__all__ = [
    "CAPABILITY_OIDS",
    "IOMT_OID_ARC",
    "ROLE_OIDS",
    "CertifiedRole",
    "Role",
    "capability_of",
    "parse_roles",
    "role_extension",
    "roles_of",
]

#: iomt's OID arc: 2.25 + the UUID bc60cc25-4bae-4a2f-8e9a-a8fc45f8d0c0 as an integer.
IOMT_OID_ARC = "2.25.250397464272406764688407871930808979648"


class Role(enum.Enum):
    """What an identity is, as the facility CA certifies it."""

    DEVICE = "device"
    WALLET = "wallet"
    PROVIDER = "provider"
    BOLSTER = "bolster"
    CLUSTER_HEAD = "cluster-head"
    CLOUD = "cloud"
    ADMIN = "admin"
    MASTER = "master"
    CENTRAL = "central"


_ROLE_NUMBERS = {
    Role.DEVICE: 1,
    Role.WALLET: 2,
    Role.PROVIDER: 3,
    Role.BOLSTER: 4,
    Role.CLUSTER_HEAD: 5,
    Role.CLOUD: 6,
    Role.ADMIN: 7,
    Role.MASTER: 8,
    Role.CENTRAL: 9,
}
ROLE_OIDS: dict[Role, ObjectIdentifier] = {
    role: ObjectIdentifier(f"{IOMT_OID_ARC}.1.{n}") for role, n in _ROLE_NUMBERS.items()
}
CAPABILITY_OIDS: dict[Capability, ObjectIdentifier] = {
    c: ObjectIdentifier(f"{IOMT_OID_ARC}.2.{int(c)}") for c in Capability
}
_ROLE_OF_OID = {oid: role for role, oid in ROLE_OIDS.items()}
_CAPABILITY_OF_OID = {oid: c for c, oid in CAPABILITY_OIDS.items()}


def parse_roles(values: Iterable[Role | str]) -> frozenset[Role]:
    """Role names (``device``, ``cluster-head`` ...) to roles; CertificateError if unknown."""
    out = set()
    for v in values:
        try:
            out.add(v if isinstance(v, Role) else Role(str(v).strip().lower()))
        except ValueError:
            known = ", ".join(r.value for r in Role)
            raise CertificateError(f"unknown role {v!r} (known: {known})") from None
    return frozenset(out)


def capability_of(value: Capability | str | None) -> Capability | None:
    """``"ecc"`` / ``Capability.ECC`` / None -> the capability class."""
    if value is None or isinstance(value, Capability):
        return value
    try:
        return Capability[str(value).strip().upper()]
    except KeyError:
        known = ", ".join(c.name.lower() for c in Capability)
        raise CertificateError(f"unknown capability class {value!r} (known: {known})") from None


@dataclass(frozen=True, slots=True)
class CertifiedRole:
    """The roles (and, for a device, the capability class) one certificate certifies."""

    roles: frozenset[Role]
    capability: Capability | None
    facility: str = ""

    def has(self, role: Role) -> bool:
        return role in self.roles

    @property
    def is_device(self) -> bool:
        return Role.DEVICE in self.roles and self.capability is not None

    def can_convert(self, technique: str) -> bool:
        """A device able to convert for a neighbour into ``technique``: certified a device,
        with a capability class above NONE that applies that technique."""
        if not self.is_device or self.capability is None or self.capability <= Capability.NONE:
            return False
        return technique in techniques_for(self.capability) and technique != "none"

    def describe(self) -> str:
        if not self.roles:
            return "no role"
        names = sorted(r.value for r in self.roles)
        if self.capability is not None:
            names = [
                f"{n} ({self.capability.name.lower()})" if n == Role.DEVICE.value else n
                for n in names
            ]
        return ", ".join(names)


def role_extension(
    roles: Iterable[Role | str],
    capability: Capability | str | None = None,
    *,
    require_capability: bool = True,
) -> x509.ExtendedKeyUsage:
    """The ExtendedKeyUsage extension certifying ``roles`` (and a device's capability).
    ``require_capability=False`` lets a CA that does not know a device's class (BIoMT's
    pseudonymous device identities) certify only that it is a device: such a certificate
    is not :attr:`CertifiedRole.is_device` and never converts."""
    parsed = parse_roles(roles)
    cap = capability_of(capability)
    if cap is not None and Role.DEVICE not in parsed:
        raise CertificateError("a capability class is certified for devices only")
    if Role.DEVICE in parsed and cap is None and require_capability:
        raise CertificateError("a device's certificate needs its capability class")
    usages = [ROLE_OIDS[r] for r in sorted(parsed, key=lambda r: _ROLE_NUMBERS[r])]
    if cap is not None:
        usages.append(CAPABILITY_OIDS[cap])
    if not usages:
        raise CertificateError("no role to certify")
    return x509.ExtendedKeyUsage(usages)


def roles_of(certificate: x509.Certificate | bytes) -> CertifiedRole:
    """What ``certificate`` certifies (no extension: no role). It must already have been
    validated by the caller; CertificateError only for bytes that are not a certificate or
    an extension that does not parse."""
    if isinstance(certificate, bytes | bytearray | memoryview):
        try:
            certificate = x509.load_der_x509_certificate(bytes(certificate))
        except ValueError:
            raise CertificateError("not a DER certificate") from None
    try:
        usage = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        usage = x509.ExtendedKeyUsage([])
    except ValueError as exc:  # a malformed extension
        raise CertificateError(f"unreadable extended key usage: {exc}") from None
    roles = frozenset(_ROLE_OF_OID[o] for o in usage if o in _ROLE_OF_OID)
    caps = [_CAPABILITY_OF_OID[o] for o in usage if o in _CAPABILITY_OF_OID]
    if len(caps) > 1:
        raise CertificateError("certificate names more than one capability class")
    orgs = certificate.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    facility = str(orgs[0].value) if orgs else ""
    return CertifiedRole(roles, caps[0] if caps else None, facility)
