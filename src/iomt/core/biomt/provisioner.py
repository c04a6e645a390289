"""The bolster's side of Framework initialization: ATS, SecGen, ID issue, key
establishment and the **Origin** transaction (the protocol: :mod:`.provisioning`).

An enrolment is accepted when it is sealed to this bolster, addressed to it and its
facility, fresh, signed by the device's own key (proof of possession) and approved by an
admin user, for a registered owner, and not seen before. The device then gets its ATS
numbers, agreement, pseudonym, certificate and shared key sealed under the key
establishment's response key; the Origin body (the shared key in it, encrypted like every
body) is logged and a block admits the pseudonym to the privacy header.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

from iomt.crypto.ca import certificate_der
from iomt.crypto.keys import EccCurve, EccPrivateKey
from iomt.crypto.primitives import AesGcm
from iomt.crypto.roles import Role, role_extension
from iomt.crypto.signing import Ed25519Verifier
from iomt.crypto.techniques import AssociatedData
from iomt.errors import AuthenticationError
from iomt.ledger import TxType

from .bodies import OriginBody
from .checks import RequestChecks
from .costs import Phase
from .errors import ProvisioningError, StaleRequestError, UnknownRequesterError
from .identity import ADMIN_ROLE, User
from .keys import SharedKey, fingerprint
from .provisioning import (
    ENROLMENT_AAD,
    Approval,
    DeviceSubmission,
    Provisioned,
    ProvisionRequest,
    ProvisionSecrets,
    ats,
    device_key,
    id_issue,
    response_key,
    secgen,
    transcript1,
    transcript2,
    x25519_shared,
)
from .sealing import open_sealed
from .state import BolsterState

__all__ = ["Provisioner"]


@dataclass(frozen=True, slots=True)
class _Initialized:
    """What ATS, SecGen, ID issue and key establishment produced for one device."""

    pseudonym: str
    agreement: bytes
    certificate_serial: str
    certificate_fingerprint: bytes
    shared: SharedKey
    expires: int
    share: bytes
    sealed: bytes
    signature: bytes


class Provisioner:
    """Admits devices: :meth:`provision` answers an admin-approved enrolment."""

    #: the steps whose time goes to a phase of the cost meter (:mod:`.metering`)
    PHASES: ClassVar[Mapping[str, Phase]] = {
        "_open_enrolment": Phase.CRYPTO,
        "_verify": Phase.CRYPTO,
        "_initialize": Phase.CRYPTO,
    }

    def __init__(self, state: BolsterState, checks: RequestChecks) -> None:
        self._state = state
        self._checks = checks
        self._cert_fp = fingerprint(state.identity.credentials().signing_certificate)

    def provision(self, request: ProvisionRequest) -> Provisioned:
        """ATS, SecGen, ID issue, key establishment, Origin."""
        state = self._state
        now = state.clock()
        if request.bolster_id != state.bolster_id:
            raise ProvisioningError(f"request is for bolster {request.bolster_id!r}")
        sub = self._open_enrolment(request)
        if (sub.bolster_id, sub.facility_id) != (state.bolster_id, state.facility_id):
            raise ProvisioningError("enrolment is for another bolster or facility")
        skew = state.config.max_clock_skew
        if abs(sub.time - now) > skew or abs(request.time - now) > skew:
            raise StaleRequestError("enrolment outside the accepted clock skew")
        if sub.attributes.owner not in state.users:
            raise ProvisioningError(f"owner {sub.attributes.owner!r} is not a registered user")
        digest = sub.digest()
        admin = self._verify(request, sub, digest, now)
        if admin.role != ADMIN_ROLE:
            raise ProvisioningError(f"{request.admin!r} is not an admin user")
        self._checks.once(b"p" + sub.nonce, sub.time, now)

        device = self._initialize(sub, digest, now)
        body = OriginBody(
            pseudonym=device.pseudonym,
            device_uri=sub.attributes.device_uri,
            owner=sub.attributes.owner,
            admin=admin.name,
            agreement=device.agreement,
            certificate_fingerprint=device.certificate_fingerprint,
            certificate_serial=device.certificate_serial,
            signing_key=sub.signing_key,
            key_id=device.shared.key_id,
            shared_key=device.shared.secret_bytes(),
            key_expires=device.expires,
            submission_digest=digest,
        )
        tx, receipt = state.append(
            TxType.ORIGIN,
            state.requester_pseudonym(admin.name),
            body,
            signature=request.admin_signature,
        )
        state.register(body, tx.seq)
        state.seal_block(state.ledger.privacy_header.with_device(device.pseudonym))
        return Provisioned(
            state.bolster_id,
            digest,
            device.share,
            device.sealed,
            device.signature,
            tx,
            receipt,
        )

    def _open_enrolment(self, request: ProvisionRequest) -> DeviceSubmission:
        aad = AssociatedData(ENROLMENT_AAD, self._state.bolster_id, "", 0)
        try:
            raw = open_sealed(self._state.identity.agreement_key, request.sealed_submission, aad)
        except AuthenticationError:
            raise ProvisioningError("enrolment is not sealed to this bolster") from None
        return DeviceSubmission.from_bytes(raw)

    def _verify(
        self, request: ProvisionRequest, sub: DeviceSubmission, digest: bytes, now: int
    ) -> User:
        """The device's proof of possession and the admin's approval; returns the admin."""
        try:
            Ed25519Verifier.from_public_bytes(sub.signing_key).verify(
                sub.signed_bytes(), sub.device_signature
            )
            approval = Approval(self._state.bolster_id, digest, request.admin, request.time)
            return self._state.users.authenticate(
                request.admin, approval.to_bytes(), request.admin_signature, now=now
            )
        except (AuthenticationError, UnknownRequesterError) as exc:
            raise ProvisioningError(f"enrolment does not verify: {exc}") from None

    def _initialize(self, sub: DeviceSubmission, digest: bytes, now: int) -> _Initialized:
        state = self._state
        numbers = ats(sub.attributes, state.rng)
        agreement = secgen(state.facility_id, sub.attributes, numbers, sub.signing_key)
        pseudonym = id_issue(agreement)
        if pseudonym in state.devices:
            raise ProvisioningError("pseudonym collision; enrol again")
        expires = now + state.config.key_lifetime
        cert = state.ca.issue(
            common_name=pseudonym,
            uri=sub.attributes.device_uri,
            public_key=Ed25519Verifier.from_public_bytes(sub.signing_key),
            now=now,
            not_after=expires,
            agreement=agreement,
            # a device, its capability class unknown here: it never converts on this
            roles=role_extension([Role.DEVICE], require_capability=False),
        )
        cert_der = certificate_der(cert)
        cert_fp = fingerprint(cert_der)

        # key establishment
        eph = EccPrivateKey.from_bytes(state.rng(32), EccCurve.X25519)
        share = eph.public_key().public_bytes()
        z = x25519_shared(eph, sub.exchange_key)
        th1 = transcript1(digest, share, state.bolster_id, self._cert_fp)
        shared = SharedKey(
            device_key(
                z,
                th1,
                pseudonym=pseudonym,
                expires=expires,
                device_cert_fp=cert_fp,
                bolster_cert_fp=self._cert_fp,
            )
        )
        secrets_ = ProvisionSecrets(pseudonym, cert_der, numbers, agreement, shared.key_id, expires)
        sealed = AesGcm(response_key(z, th1)).encrypt(bytes(12), secrets_.to_bytes(), th1)
        signature = state.identity.signer.sign(transcript2(th1, sealed))
        return _Initialized(
            pseudonym,
            agreement,
            str(cert.serial_number),
            cert_fp,
            shared,
            expires,
            share,
            sealed,
            signature,
        )
