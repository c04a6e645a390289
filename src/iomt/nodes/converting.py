"""Conversion (Bilal & Hassan, Alg. 3) on DDS, both sides.

:class:`ConvertService` is a capable device's ``~/convert`` service: it converts a
neighbour's reading into the requested technique and publishes the envelope to the
requester's ``inbox``; its answer (published or refused) lets the asking device try the
next converter, and carries its proof (:mod:`iomt.core.replies`). :class:`ConversionOrders`
is the asking device's side.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from iomt.core.conversion import ConversionOrder, ConvertReply
from iomt.core.device import Converting, DeviceCore
from iomt.core.listener import DataRequest, Refusal, name_of
from iomt.core.replies import ReplyChecker, ReplySigner, convert_digest
from iomt.crypto.errors import SessionReplayError
from iomt.crypto.sessions import Session
from iomt.crypto.techniques import Capability
from iomt.errors import IomtError
from iomt.msg import Convert, DataShare, SecureEnvelope
from iomt.nodes import wire
from iomt.nodes.calls import Calls
from iomt.nodes.handshaking import SessionOpener
from iomt.nodes.names import fqn_of
from iomt.runtime import Client, HistoryPolicy, Node, Publisher, QoSProfile, Responder

__all__ = ["INBOX_QOS", "ConversionOrders", "ConvertService"]

INBOX_QOS = QoSProfile(history=HistoryPolicy.KEEP_ALL)
#: a requester that refused a session is not asked again for this long
SESSION_BACKOFF_S = 30.0


class ConvertService:
    def __init__(
        self,
        node: Node,
        core: DeviceCore,
        *,
        name: str,
        replies: ReplySigner,
        sessions: SessionOpener,
        inboxes: Iterable[str] = (),
    ) -> None:
        """``inboxes``: requesters whose inboxes are made up front (in a small ward, so
        nothing is published before it matched; in a large one lazily, on first use)."""
        self._node = node
        self._core = core
        self._name = name
        self._replies = replies
        self._sessions = sessions
        self._inboxes: dict[str, Publisher[SecureEnvelope]] = {}
        self._converted_seq = 0
        self._session_backoff: dict[str, float] = {}
        node.create_service(Convert, "~/convert", self._on_convert)
        for requester_uri in inboxes:
            self._inbox(requester_uri)

    def _on_convert(self, req: Any, resp: Any) -> Any:
        order = wire.order_from_msg(req.request)
        self._converted_seq += 1
        try:
            envelope = self._core.on_conversion(order, self._converted_seq, time.time_ns())
        except SessionReplayError as exc:  # the original order has its answer
            resp.status = Convert.Response.STATUS_REFUSED
            resp.reason = str(exc)
            return resp
        except IomtError as exc:
            resp.status = Convert.Response.STATUS_REFUSED
            resp.reason = str(exc)
            return self._prove_convert(order, resp, authenticated=False)
        self._inbox(order.requester_uri).publish(wire.envelope_to_msg(envelope))
        if envelope.signature_algorithm != "hmac-sha256":
            self._open_requester_session(order.requester_uri)
        resp.status = Convert.Response.STATUS_PUBLISHED
        return self._prove_convert(order, resp, authenticated=True)

    def _prove_convert(self, order: ConversionOrder, resp: Any, *, authenticated: bool) -> Any:
        """A MAC on our session with the ordering device when there is one (it is what the
        order came on, or what the device holds with us), else our signature."""
        session: Session | None = self._core.channels.session(name_of(order.device_uri))
        resp.proof = self._replies.prove(
            wire.convert_statement(self._name, convert_digest(order), resp),
            channels=self._core.channels,
            session=session,
            budgeted=not authenticated,
        )
        return resp

    def _open_requester_session(self, requester_uri: str) -> None:
        """After the first conversion for a requester, open a session with it in the
        background: later envelopes for it are HMAC'd instead of signed (symmetric). A
        requester that refuses is not asked again for a while."""
        now = time.monotonic()
        if self._session_backoff.get(requester_uri, 0.0) > now:
            return
        self._session_backoff[requester_uri] = now + SESSION_BACKOFF_S

        def failed(exc: Exception) -> None:
            self._node.get_logger().info("no session with %s: %s", requester_uri, exc)

        self._sessions.ensure(requester_uri, lambda: None, failed)

    def _inbox(self, requester_uri: str) -> Publisher[SecureEnvelope]:
        pub = self._inboxes.get(requester_uri)
        if pub is None:
            topic = f"{fqn_of(requester_uri)}/inbox"
            # shared: the process's converters answering this requester share one writer
            pub = self._node.create_publisher(SecureEnvelope, topic, INBOX_QOS, shared=True)
            self._inboxes[requester_uri] = pub
        return pub


#: sends a DataShare answer with its proof: (responder, request, response, session)
Answer = Callable[[Responder, DataRequest, Any, "Session | None"], None]


class ConversionOrders:
    """Conversion, the asking side (Alg. 3): the plan's capable neighbours are asked in
    turn, the next one when a converter refuses or stays silent; a converter that refuses
    for want of our session makes us open a new one, and one that stays silent is taken as
    gone until it announces again. Only a converter's proven answer is taken."""

    def __init__(
        self,
        core: DeviceCore,
        *,
        calls: Calls,
        sessions: SessionOpener,
        checker: ReplyChecker,
        client_for: Callable[[str], Client],
        timeout_s: float,
        answer: Answer,
        on_converted: Callable[[str, str, str], None] | None = None,
    ) -> None:
        self._core = core
        self._calls = calls
        self._sessions = sessions
        self._checker = checker
        self._client_for = client_for
        self._timeout_s = timeout_s
        self._answer = answer
        self._on_converted = on_converted

    def run(self, pending: Converting, responder: Responder) -> None:
        """Order the plan's next converter, or answer that conversion failed."""
        uri = pending.plan.next()
        if uri is None:
            self._answer(
                responder,
                pending.request,
                DataShare.Response(
                    status=DataShare.Response.STATUS_REFUSED,
                    reason=f"{Refusal.CONVERSION_FAILED.value}: {pending.plan.explain()}",
                ),
                pending.decision.session,
            )
            return

        def failed(exc: Exception, uri: str = uri) -> None:
            pending.plan.failed(uri, str(exc))
            self.run(pending, responder)

        if self._core.config.capability > Capability.NONE:
            self._sessions.ensure(
                uri, lambda: self._send_order(pending, uri, responder, failed), failed
            )
        else:
            # Without a session an incapable device signs its order; with one it MACs it.
            # Either way the order goes now; a failed handshake is no reason to wait.
            self._sessions.ensure(uri, lambda: None, lambda _exc: None)
            self._send_order(pending, uri, responder, failed)

    def _send_order(
        self,
        pending: Converting,
        uri: str,
        responder: Responder,
        failed: Callable[[Exception], None],
    ) -> None:
        try:
            order = self._core.conversion_order(pending, uri)
        except IomtError as exc:
            failed(exc)
            return

        def done(resp: Any) -> None:
            reply = ConvertReply.of(resp.status == Convert.Response.STATUS_PUBLISHED, resp.reason)
            if reply is ConvertReply.PUBLISHED:
                if self._on_converted is not None:
                    self._on_converted(order.requester_uri, uri, order.requested_technique)
                self._answer(
                    responder,
                    pending.request,
                    DataShare.Response(
                        status=DataShare.Response.STATUS_CONVERTING, converter_uri=uri
                    ),
                    pending.decision.session,
                )
            else:
                if reply is ConvertReply.LOST_SESSION:  # a new one next time
                    self._core.channels.drop(name_of(uri))
                failed(IomtError(f"refused: {resp.reason}"))

        def error(exc: Exception) -> None:
            # A converter that stays silent is treated as gone until it announces again.
            self._core.table.forget(uri)
            failed(exc)

        self._calls.call(
            self._client_for(uri),
            Convert.Request(request=wire.order_to_msg(order)),
            timeout_s=self._timeout_s,
            on_done=done,
            on_error=error,
            accept=self._convert_reply_check(uri, order),
        )

    def _convert_reply_check(self, converter_uri: str, order: ConversionOrder) -> Any:
        """Only the converter's proven answer to this order: a MAC under our session with
        it, or its signature with the key it registered (or a certificate for its name)."""
        server = name_of(converter_uri)
        request_digest = convert_digest(order)
        neighbour = self._core.table.one_hop(converter_uri)
        key = neighbour.verifier if neighbour is not None else None

        def accept(resp: Any) -> bool:
            return self._checker.accepts(
                bytes(resp.proof),
                lambda: wire.convert_statement(server, request_digest, resp),
                server=server,
                channels=self._core.channels,
                key=key,
            )

        return accept
