"""The patient's wallet node (Bilal & Hassan, Alg. 1.2): ``~/device_info``.

Holds the patient's consent and device list and issues per-device tokens to providers
whose certificate and proof check out (see ``iomt.core.handshake``). With ``biomt`` set
(``--mode biomt``), every token it issues is reported to the bolster of the patient's
devices and recorded there as an Access (:mod:`iomt.nodes.biomt_events`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from iomt.core.handshake import Consent, PatientDevice, RequestReplayedError, Wallet
from iomt.core.listener import name_of
from iomt.core.replies import ReplyChecker, device_info_digest
from iomt.crypto.tokens import TokenIssuer
from iomt.errors import IomtError
from iomt.msg import DeviceInfoRequest
from iomt.nodes import wire
from iomt.nodes.identity import open_keystore, reply_signer
from iomt.nodes.names import uri_of
from iomt.nodes.params import WalletParams
from iomt.runtime import Node, RuntimeContext
from iomt.runtime.naming import node_fqn

if TYPE_CHECKING:
    from iomt.nodes.biomt_events import EventReporter


class WalletNode(Node):
    def __init__(
        self,
        context: RuntimeContext,
        *,
        name: str,
        namespace: str,
        config: WalletParams,
    ) -> None:
        super().__init__(name, context=context, namespace=namespace)
        c = self.config = config
        facility = self.get_namespace().strip("/")
        ks = open_keystore(c.keystore)
        identity = ks.identity(name)
        self.wallet = Wallet(
            identity.uri,
            c.patient_id,
            TokenIssuer(identity.uri, identity.signer),
            [
                PatientDevice(
                    uri_of(facility, d.name), d.technique, d.kind, ks.certificate_der(d.name)
                )
                for d in c.devices
            ],
            Consent.read_vitals([uri_of(facility, p) for p in c.providers]),
            check_certificate=ks.credential_validator(),
            token_lifetime_s=c.token_lifetime_s,
        )
        self.name = name
        self.replies = reply_signer(identity)  # every answer signed, refusals included
        self.refused = 0
        self.events: EventReporter | None = None
        if c.biomt is not None:  # report token issues to the patient's bolster
            bolster = c.biomt.bolster
            from iomt.nodes.biomt_events import EventReporter  # noqa: PLC0415 (BIoMT only)

            self.events = EventReporter(
                self,
                reporter=name,
                signer=identity.signer,
                bolster_id=bolster,
                service=f"{self.get_namespace().rstrip('/')}/{bolster}/record",
                checker=ReplyChecker(ks.credential_validator()),
            )
        self.create_service(DeviceInfoRequest, "~/device_info", self._on_device_info)

    def _on_device_info(self, req: Any, resp: Any) -> Any:
        request = wire.token_request_from_msg(req)
        try:
            grants = self.wallet.handle(request)
        except IomtError as exc:
            self.refused += 1
            self.get_logger().warning("refused %s: %s", req.provider_uri, exc)
            resp.status = DeviceInfoRequest.Response.STATUS_REFUSED
            resp.reason = str(exc)
            if not isinstance(exc, RequestReplayedError):  # the original has its answer
                resp.proof = self.replies.sign(
                    wire.device_info_statement(self.name, device_info_digest(request), resp),
                    budgeted=True,
                )
            return resp
        if self.events is not None:
            for g in grants:
                self.events.add(
                    "token",
                    actor=name_of(req.provider_uri),
                    device_uri=g.uri,
                    technique=g.technique,
                    detail=f"token issued to {req.provider_uri}",
                )
        resp.status = DeviceInfoRequest.Response.STATUS_OK
        resp.devices = [wire.grant_to_msg(g) for g in grants]
        resp.proof = self.replies.sign(
            wire.device_info_statement(self.name, device_info_digest(request), resp)
        )
        return resp


def wallet_node(
    context: RuntimeContext, *, name: str, namespace: str = "/", **params: Any
) -> WalletNode:
    config = WalletParams.from_mapping(params, node=node_fqn(namespace, name))
    return WalletNode(context, name=name, namespace=namespace, config=config)
