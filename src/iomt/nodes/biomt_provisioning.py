"""A BIoMT device's framework initialization over DDS (Seliem & Elgazzar, BIoMT §II).

At start-up, and again every ``retry_s`` until it is done (the bolster or the admin may not
be up yet): fetch the bolster's credentials (``~/credentials``, checked against the facility
CA) and the admin's ECDH certificate; enrol (:meth:`BiomtDevice.enrol`: a fresh Ed25519 key
and ephemeral X25519 share, signed); seal the submission to the admin and ask for approval
(``<admin>/approve``); take the approved request to the bolster's ``~/provision``; check the
answer (:meth:`BiomtDevice.complete`: the bolster's signature, the Origin's receipt, the
certificate, the agreement, key confirmation). Every answer must prove itself: a fresh
nonce as the body of each credentials request binds the signed answer to it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from iomt.core.biomt import (
    BiomtDevice,
    BolsterCredentials,
    DeviceState,
    Provisioned,
    ProvisionRequest,
)
from iomt.core.biomt.identity import TrustAnchor, certificate_from_der
from iomt.core.biomt.sealing import seal_to
from iomt.core.replies import ReplyChecker
from iomt.errors import IomtError
from iomt.msg import BolsterService
from iomt.nodes import biomt_wire as bw
from iomt.nodes.biomt_admin import ApprovalRequest, approval_aad
from iomt.nodes.calls import Calls
from iomt.runtime import Client, Node

__all__ = ["ProvisioningLink"]


class ProvisioningLink:
    """Enrols ``device`` through ``admin`` at ``bolster``; ``on_provisioned`` runs once."""

    def __init__(  # noqa: PLR0913  (keyword-only: the node's collaborators, named at the one call)
        self,
        node: Node,
        device: BiomtDevice,
        *,
        calls: Calls,
        checker: ReplyChecker,
        anchor: TrustAnchor,
        client: Callable[[str, str], Client],
        bolster: str,
        admin: str,
        owner: str,
        kind: str,
        retry_s: float,
        on_provisioned: Callable[[], None],
    ) -> None:
        self._node = node
        self._device = device
        self._calls = calls
        self._checker = checker
        self._anchor = anchor
        self._uri = device.device_uri
        self._bolster_id = bolster
        self._admin = admin
        self._owner = owner
        self._kind = kind
        self._on_provisioned = on_provisioned
        self._credentials = client(bolster, "credentials")
        self._provision = client(bolster, "provision")
        self._admin_credentials = client(admin, "credentials")
        self._approve = client(admin, "approve")
        self._enrolling = False
        self.attempts = 0
        self._retry = node.create_timer(retry_s, self._enrol)
        self._first = node.create_timer(0.05, self._enrol_once)

    def _enrol_once(self) -> None:
        self._first.cancel()
        self._enrol()

    def _enrol(self) -> None:
        if self._device.state in (DeviceState.ACTIVE, DeviceState.REMOVED):
            self._retry.cancel()
            return
        if self._enrolling:
            return
        self._enrolling = True
        self.attempts += 1
        got: dict[str, bytes] = {}

        def fail(exc: Exception) -> None:
            if self._enrolling:
                self._enrolling = False
                self._node.get_logger().info("enrolment not done yet: %s", exc)

        def have(which: str, resp: Any) -> None:
            try:
                got[which] = bw.raise_for_status(which, resp)
            except IomtError as exc:
                fail(exc)
                return
            if len(got) == 2:
                self._submit(got["bolster"], got["admin"], fail)

        # a fresh nonce as the body: the (signed) answer is bound to this very request
        ask_bolster = BolsterService.Request(requester=self._uri, body=os.urandom(16))
        ask_admin = BolsterService.Request(requester=self._uri, body=os.urandom(16))
        self._calls.call(
            self._credentials,
            ask_bolster,
            timeout_s=2.0,
            on_done=lambda r: have("bolster", r),
            on_error=fail,
            accept=self._check("bolster/credentials", self._bolster_id, ask_bolster),
        )
        self._calls.call(
            self._admin_credentials,
            ask_admin,
            timeout_s=2.0,
            on_done=lambda r: have("admin", r),
            on_error=fail,
            accept=self._check("admin/credentials", self._admin, ask_admin),
        )

    def _check(self, operation: str, server: str, request: Any) -> Any:
        return bw.reply_check(self._checker, operation, server, request)

    def _submit(
        self, bolster_raw: bytes, admin_raw: bytes, fail: Callable[[Exception], None]
    ) -> None:
        try:
            creds = BolsterCredentials.from_bytes(bolster_raw)
            if creds.bolster_id != self._bolster_id:
                raise bw.BolsterRefusedError(f"{self._bolster_id} answered as {creds.bolster_id}")
            admin_key = self._anchor.validate_agreement(
                certificate_from_der(admin_raw), now=time.time_ns(), name=self._admin
            )
            enrolment = self._device.enrol(
                creds, owner=self._owner, attributes={"kind": self._kind}
            )
            sealed = seal_to(
                admin_key,
                enrolment.submission.to_bytes(),
                approval_aad(self._admin, creds.bolster_id),
            )
        except IomtError as exc:
            fail(exc)
            return

        def approved(resp: Any) -> None:
            try:
                request = ProvisionRequest.from_bytes(bw.raise_for_status("approve", resp))
            except IomtError as exc:
                fail(exc)
                return
            provision = BolsterService.Request(requester=self._uri, body=request.to_bytes())
            self._calls.call(
                self._provision,
                provision,
                timeout_s=3.0,
                on_done=provisioned,
                on_error=fail,
                accept=self._check("bolster/provision", self._bolster_id, provision),
            )

        def provisioned(resp: Any) -> None:
            try:
                self._device.complete(
                    Provisioned.from_bytes(bw.raise_for_status("provision", resp))
                )
            except IomtError as exc:
                fail(exc)
                return
            self._enrolling = False
            self._retry.cancel()
            self._on_provisioned()

        approve = BolsterService.Request(
            requester=self._uri, body=ApprovalRequest(creds, sealed).to_bytes()
        )
        self._calls.call(
            self._approve,
            approve,
            timeout_s=3.0,
            on_done=approved,
            on_error=fail,
            accept=self._check("admin/approve", self._admin, approve),
        )
