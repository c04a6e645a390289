"""Conversion, the converting side (Bilal & Hassan, Alg. 3), on DDS: a capable device's
``~/convert`` service. It converts a neighbour's reading into the requested technique and
publishes the envelope to the requester's ``inbox``; its answer (published or refused) lets
the asking device try the next converter, and carries its proof (:mod:`iomt.core.replies`).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from iomt.core.conversion import ConversionOrder
from iomt.core.device import DeviceCore
from iomt.core.listener import name_of
from iomt.core.replies import ReplySigner, convert_digest
from iomt.crypto.errors import SessionReplayError
from iomt.crypto.sessions import Session
from iomt.errors import IomtError
from iomt.msg import Convert, SecureEnvelope
from iomt.nodes import wire
from iomt.nodes.common import SessionOpener, fqn_of
from iomt.runtime import HistoryPolicy, Node, Publisher, QoSProfile

__all__ = ["INBOX_QOS", "ConvertService"]

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
            pub = self._node.create_publisher(SecureEnvelope, topic, INBOX_QOS)
            self._inboxes[requester_uri] = pub
        return pub
