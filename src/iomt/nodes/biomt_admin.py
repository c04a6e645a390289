"""The facility admin node: approves device enrolments (BIoMT Table 1: Origin is generated
by an "Admin user").

A device enrolling at a bolster (``BiomtDevice.enrol``) produces a signed submission: its
URI, its owner, its attributes, its own keys. Before the bolster provisions it, an admin
must approve it: the device seals the submission to the admin's certified ECDH key (so its
URI, owner and attributes never cross the bus in clear) and calls ``~/approve``; the admin
opens it, checks the device's signature and that the (device URI, owner, bolster) triple is
in the facility's **inventory** -- the devices the facility actually deployed, for whom and
where -- and answers with a :class:`~iomt.core.biomt.ProvisionRequest`: the submission
sealed to the bolster and the admin's signature over its digest. The device takes that to
the bolster's ``~/provision``; the bolster verifies the admin signature against its user
list (role ``admin``) and logs the Origin with the admin's pseudonym as generator.

``~/credentials`` gives the admin's ECDH certificate (checked by devices against the
facility CA).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from iomt.core.biomt import BolsterCredentials, Enrolment, FacilityCA
from iomt.core.biomt.codec import Bytes, Message, Nested, tag
from iomt.core.biomt.provisioning import DeviceSubmission
from iomt.core.biomt.sealing import open_sealed
from iomt.crypto.ca import certificate_der
from iomt.crypto.signing import Ed25519Verifier
from iomt.crypto.techniques import AssociatedData
from iomt.errors import AuthenticationError, IomtError
from iomt.msg import BolsterService
from iomt.nodes.biomt_wire import ServiceReplies, status_of
from iomt.nodes.errors import NotInInventoryError
from iomt.nodes.identity import open_keystore, reply_signer
from iomt.nodes.params import AdminParams
from iomt.runtime import Node, RuntimeContext
from iomt.runtime.naming import node_fqn

__all__ = ["AdminNode", "ApprovalRequest", "admin_node", "approval_aad"]

_R = BolsterService.Response


@dataclass(frozen=True, slots=True)
class ApprovalRequest(Message):
    """A device's enrolment for an admin: the bolster it enrols at, and its submission
    sealed to the admin (ECIES, :func:`approval_aad`)."""

    bolster: BolsterCredentials
    sealed_submission: bytes

    TAG = tag("iomt/nodes/biomt/approval-request/v1")
    FIELDS = (("bolster", Nested(BolsterCredentials)), ("sealed_submission", Bytes()))


def approval_aad(admin: str, bolster_id: str) -> AssociatedData:
    return AssociatedData("device-enrolment-approval", admin, bolster_id, 0)


class AdminNode(Node):
    def __init__(
        self,
        context: RuntimeContext,
        *,
        name: str,
        namespace: str,
        config: AdminParams,
    ) -> None:
        super().__init__(name, context=context, namespace=namespace)
        self.config = config
        ks = open_keystore(config.keystore)
        self._identity = ks.identity(name)
        self._anchor = FacilityCA.from_keystore(ks).anchor
        self.inventory = set(config.inventory)  # (device URI, owner, bolster)
        self.approved: dict[str, str] = {}  # device URI -> bolster
        self.refused = 0
        # every answer signed (iomt.core.replies): an enrolling device has no key with us
        self.proofs = ServiceReplies(reply_signer(self._identity), "admin")
        self.create_service(BolsterService, "~/credentials", self._on_credentials)
        self.create_service(BolsterService, "~/approve", self._on_approve)

    def _on_credentials(self, req: Any, resp: Any) -> Any:
        resp.status = _R.STATUS_OK
        resp.body = certificate_der(self._identity.encryption_certificate)
        return self.proofs.prove("credentials", req, resp, authenticated=False)

    def _on_approve(self, req: Any, resp: Any) -> Any:
        try:
            resp.body = self.approve(ApprovalRequest.from_bytes(bytes(req.body))).to_bytes()
            resp.status = _R.STATUS_OK
        except IomtError as exc:
            self.refused += 1
            self.get_logger().warning("enrolment of %s refused: %s", req.requester, exc)
            resp.status, _ = status_of(exc)
            resp.reason = str(exc)
            return self.proofs.prove("approve", req, resp, authenticated=False)
        return self.proofs.prove("approve", req, resp)

    def approve(self, request: ApprovalRequest) -> Any:
        bolster = request.bolster
        try:
            raw = open_sealed(
                self._identity.encryption_key,
                request.sealed_submission,
                approval_aad(self.get_name(), bolster.bolster_id),
            )
        except AuthenticationError:
            raise AuthenticationError("enrolment is not sealed to this admin") from None
        sub = DeviceSubmission.from_bytes(raw)
        Ed25519Verifier.from_public_bytes(sub.signing_key).verify(
            sub.signed_bytes(), sub.device_signature
        )
        key = (sub.attributes.device_uri, sub.attributes.owner, sub.bolster_id)
        if sub.bolster_id != bolster.bolster_id or key not in self.inventory:
            raise NotInInventoryError(
                f"{sub.attributes.device_uri} for {sub.attributes.owner} at {sub.bolster_id} "
                "is not in the inventory"
            )
        now = time.time_ns()
        _, agreement_key = bolster.verify(self._anchor, now=now)
        approved = Enrolment(sub, bolster, agreement_key).approve(
            self.get_name(), self._identity.signer, time=now
        )
        self.approved[sub.attributes.device_uri] = sub.bolster_id
        return approved


def admin_node(
    context: RuntimeContext, *, name: str, namespace: str = "/", **params: Any
) -> AdminNode:
    config = AdminParams.from_mapping(params, node=node_fqn(namespace, name))
    return AdminNode(context, name=name, namespace=namespace, config=config)
