"""A device's ``~/data_share`` service over DDS (Bilal & Hassan, Alg. 1.4 / 2.2).

The decision is :meth:`iomt.core.device.DeviceCore.on_data_request`'s: share (seal for the
requester), refuse, or convert through a capable neighbour (Alg. 3, run by
:class:`~iomt.nodes.converting.ConversionOrders`). This module sends the answer with its
proof (:mod:`iomt.core.replies`); in base mode it answers in plaintext, without tokens or
proofs (the paper's lower bound), and in centralized mode it sends requesters to the
central server.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from iomt.core.device import DeviceCore, Refused, Shared
from iomt.core.listener import DataRequest, Refusal, name_of
from iomt.core.modes import Mode
from iomt.core.replies import ReplySigner, data_share_digest
from iomt.crypto.sessions import Session
from iomt.msg import DataShare, SecureEnvelope
from iomt.nodes import wire
from iomt.nodes.converting import ConversionOrders
from iomt.runtime import Node, Responder

__all__ = ["DataShareListener"]

_R = DataShare.Response


class DataShareListener:
    """Answers ``~/data_share`` for a device; ``orders`` runs the conversions (when the
    device shares), ``on_shared`` hears of every reading shared directly (BIoMT records it)."""

    def __init__(
        self, node: Node, core: DeviceCore, *, name: str, mode: Mode, replies: ReplySigner
    ) -> None:
        self._core = core
        self._name = name
        self._mode = mode
        self._replies = replies
        self.orders: ConversionOrders | None = None
        self.on_shared: Callable[[str, str], None] | None = None
        node.create_service(DataShare, "~/data_share", self._on_data_share, deferred=True)

    def _on_data_share(self, req: Any, responder: Responder) -> None:
        if self._mode is Mode.BASE:
            self._share_plaintext(req, responder)
            return
        request = wire.data_request_from_msg(req)
        if self._mode is Mode.CENTRALIZED:
            self.answer(
                responder,
                request,
                _R(status=_R.STATUS_REFUSED, reason="centralized mode: ask the central server"),
                None,
                authenticated=False,
            )
            return
        reply = self._core.on_data_request(request)
        if isinstance(reply, Shared):
            if self.on_shared is not None:
                self.on_shared(req.requester_uri, req.security_technique)
            self.answer(
                responder,
                request,
                _R(status=_R.STATUS_SHARED, envelope=wire.envelope_to_msg(reply.envelope)),
                self._core.session_of(request),
            )
        elif isinstance(reply, Refused):
            self.answer(
                responder,
                request,
                _R(status=_R.STATUS_REFUSED, reason=reply.reason),
                reply.session,
                authenticated=reply.session is not None,
                replay=reply.replay,
            )
        elif self.orders is not None:
            self.orders.run(reply, responder)

    def answer(
        self,
        responder: Responder,
        request: DataRequest,
        resp: Any,
        session: Session | None,
        *,
        authenticated: bool = True,
        replay: bool = False,
    ) -> None:
        """Send a DataShare answer with its proof: a MAC on the session the request came on
        (or, for a request that did not authenticate, on our session with whom it names:
        cheap, and bound to this request's digest); else our signature -- within the
        signature budget when nobody authenticated. A replay's refusal goes unproven."""
        if not replay:
            if session is None:
                session = self._core.channels.session(name_of(request.requester_uri))
            resp.proof = self._replies.prove(
                wire.data_share_statement(self._name, data_share_digest(request), resp),
                channels=self._core.channels,
                session=session,
                budgeted=not authenticated,
            )
        responder.send(resp)

    def _share_plaintext(self, req: Any, responder: Responder) -> None:
        latest = self._core.latest()
        if latest is None:
            responder.send(_R(status=_R.STATUS_REFUSED, reason=f"{Refusal.NO_DATA.value}"))
            return
        uri = self._core.config.uri
        env = SecureEnvelope(
            request_id=req.request_id,
            device_uri=uri,
            sender_uri=uri,
            recipient_uri=req.requester_uri,
            security_technique="none",
            seq=latest.seq,
            stamp=wire.time_msg(latest.stamp_ns),
            ciphertext=latest.cdr,
            signature_algorithm="none",
        )
        responder.send(_R(status=_R.STATUS_SHARED, envelope=env))
