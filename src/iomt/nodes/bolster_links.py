"""A bolster node's links upward: the cloud it pushes sealed blocks to, and the master
bolster whose shared chain holds its origin and its devices' (BIoMT §II).

Wiring only: :class:`CloudLink` runs :class:`~iomt.core.biomt.sync_client.CloudSyncClient`'s
pushes on ``<cloud>/put``, :class:`MasterLink` runs
:class:`~iomt.core.biomt.admission.MasterAdmission`'s requests on ``<master>/admit`` and
``<master>/chain``; every answer taken proves itself (:mod:`iomt.core.replies`).
"""

from __future__ import annotations

from typing import Any, Protocol

from iomt.core.biomt.admission import MasterAdmission, MasterReply, SendAdmit, SendChain
from iomt.core.biomt.master import BolsterOrigin, DeviceOriginLink
from iomt.core.biomt.sync_client import CloudSyncClient, SyncFailed
from iomt.core.replies import ReplyChecker
from iomt.errors import IomtError
from iomt.msg import BolsterService, CloudService
from iomt.nodes import biomt_wire as bw
from iomt.nodes.calls import Calls
from iomt.nodes.params import BolsterParams
from iomt.runtime import Client, Node

__all__ = ["CloudLink", "MasterLink", "OriginSource", "link_upward"]

#: how long a push, an admission or a chaining may take
CALL_TIMEOUT_S = 3.0


class CloudLink:
    def __init__(
        self,
        node: Node,
        sync: CloudSyncClient,
        *,
        cloud: str,
        calls: Calls,
        checker: ReplyChecker,
        period_s: float,
    ) -> None:
        self._node = node
        self._sync = sync
        self._cloud = cloud
        self._calls = calls
        self._checker = checker
        self._client = node.create_client(
            CloudService, f"{node.get_namespace()}/{cloud}/put".replace("//", "/")
        )
        node.create_timer(period_s, self.tick)

    def tick(self) -> None:
        try:
            pushes = self._sync.tick()
        except IomtError as exc:
            self._node.get_logger().error("cloud batches: %s", exc)
            return
        for push in pushes:
            put = CloudService.Request(requester=self._node.get_name(), body=push.batch.to_bytes())
            self._calls.call(
                self._client,
                put,
                timeout_s=CALL_TIMEOUT_S,
                on_done=self._answered,
                on_error=lambda exc: self._log(self._sync.on_lost(exc)),
                accept=bw.reply_check(self._checker, "cloud/put", self._cloud, put),
            )

    def _answered(self, resp: Any) -> None:
        try:
            body = bw.raise_for_cloud_status("cloud put", resp)
        except IomtError as exc:
            self._log(self._sync.on_refused(exc))
            return
        self._log(self._sync.on_ack(body))

    def _log(self, failures: list[SyncFailed]) -> None:
        for f in failures:
            if f.refused:
                self._node.get_logger().warning("cloud ack refused: %s", f.error)
            else:
                self._node.get_logger().info("cloud put: %s", f.error)


class OriginSource(Protocol):
    """What the master link needs of the bolster: its origin and its devices'."""

    def own_origin(self) -> BolsterOrigin: ...

    def origin_link(self, pseudonym: str) -> DeviceOriginLink: ...

    def devices(self) -> list[str]: ...


class MasterLink:
    def __init__(
        self,
        node: Node,
        admission: MasterAdmission,
        *,
        bolster: OriginSource,
        master: str,
        calls: Calls,
        checker: ReplyChecker,
        period_s: float = 0.5,
    ) -> None:
        self._node = node
        self._admission = admission
        self._bolster = bolster
        self._master = master
        self._calls = calls
        self._checker = checker
        base = f"{node.get_namespace().rstrip('/')}/{master}"
        self._admit = node.create_client(BolsterService, f"{base}/admit")
        self._chain = node.create_client(BolsterService, f"{base}/chain")
        node.create_timer(period_s, self.tick)

    def tick(self) -> None:
        for action in self._admission.tick():
            if isinstance(action, SendAdmit):
                self._call(self._admit, "admit", self._bolster.own_origin().to_bytes(), None)
            elif isinstance(action, SendChain):
                try:
                    link = self._bolster.origin_link(action.pseudonym)
                except IomtError as exc:
                    self._node.get_logger().warning(
                        "no origin link for %s: %s", action.pseudonym, exc
                    )
                    continue
                self._call(self._chain, "chain", link.to_bytes(), action.pseudonym)

    def _call(self, client: Client, op: str, body: bytes, pseudonym: str | None) -> None:
        """``admit`` our origin (``pseudonym`` None) or ``chain`` a device's."""
        admission = self._admission

        def answered(resp: Any) -> None:
            reason = str(resp.reason)
            reply = MasterReply.of(resp.status == BolsterService.Response.STATUS_OK, reason)
            if pseudonym is None:
                refusals = admission.on_admit_reply(reply, reason, self._bolster.devices())
            else:
                refusals = admission.on_chain_reply(pseudonym, reply, reason)
            for r in refusals:
                what = "our origin" if r.pseudonym is None else r.pseudonym
                self._node.get_logger().warning("master refused %s: %s", what, r.reason)

        def lost(_exc: Exception) -> None:
            if pseudonym is None:
                admission.on_admit_lost()
            else:
                admission.on_chain_lost(pseudonym)

        request = BolsterService.Request(requester=self._node.get_name(), body=body)
        self._calls.call(
            client,
            request,
            timeout_s=CALL_TIMEOUT_S,
            on_done=answered,
            on_error=lost,
            accept=bw.reply_check(self._checker, f"master/{op}", self._master, request),
        )


def link_upward(
    node: Node,
    config: BolsterParams,
    *,
    sync: CloudSyncClient,
    admission: MasterAdmission | None,
    bolster: OriginSource,
    calls: Calls,
    checker: ReplyChecker,
) -> None:
    """The links a bolster's parameters ask for: to its cloud, to its master bolster."""
    if config.cloud:
        CloudLink(
            node,
            sync,
            cloud=config.cloud,
            calls=calls,
            checker=checker,
            period_s=config.cloud_period_s,
        )
    if admission is not None:
        MasterLink(
            node, admission, bolster=bolster, master=config.master, calls=calls, checker=checker
        )
