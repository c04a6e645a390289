"""A bolster node's user sessions (BIoMT's users, on sessions rather than per-request
signatures): ``~/handshake``, and Access, Observe and History on a session -- to the same
services as their signed forms, told apart by the request's tag
(:func:`~iomt.core.biomt.user_sessions.is_session_request`) -- and ``~/attest``.

A session request's answer is MAC'd on the user's session, its refusals too: the session
is found before the request is checked.
"""

from __future__ import annotations

import time
from typing import Any

from iomt.core.biomt import Bolster, SessionOp, SessionRequest
from iomt.core.biomt.user_sessions import expect_operation, is_session_request
from iomt.errors import IomtError
from iomt.nodes import biomt_wire as bw
from iomt.nodes.bolster_costs import Handler, ServiceCosts
from iomt.nodes.bolster_feed import Answers, LedgerFeed
from iomt.runtime import Node, Responder

__all__ = ["SessionServices"]


class SessionServices:
    def __init__(
        self,
        node: Node,
        bolster: Bolster,
        *,
        answers: Answers,
        feed: LedgerFeed,
        costs: ServiceCosts,
    ) -> None:
        self._node = node
        self._bolster = bolster
        self._answers = answers
        self._feed = feed
        self._costs = costs

    def handshake(self, initiator: str, message: bytes, *, source: Any = None) -> bytes:
        """``~/handshake``'s messages 1 and 3 (its thread CPU time counted as ``handshake``)."""
        c0 = time.thread_time_ns()
        try:
            return self._bolster.session_handshake(initiator, message, source=source)
        except IomtError as exc:
            self._node.get_logger().info("handshake from %s refused: %s", initiator, exc)
            raise
        finally:
            self._costs.add_cpu("handshake", time.thread_time_ns() - c0)

    def or_signed(self, kind: SessionOp, signed: Handler) -> Handler:
        """The handler of a service that takes ``kind`` on a session or ``signed``."""

        def run(req: Any, responder: Responder) -> int | None:
            body = bytes(req.body)
            if is_session_request(body):
                return self._on_session(kind, body, responder)
            return signed(req, responder)

        return run

    def on_attest(self, req: Any, responder: Responder) -> int | None:
        return self._on_session(SessionOp.ATTEST, bytes(req.body), responder)

    def _on_session(self, kind: SessionOp, body: bytes, responder: Responder) -> int | None:
        try:
            request = SessionRequest.from_bytes(body)
            if isinstance(responder, bw.ProvingResponder):  # MAC'd on the user's session
                responder.channels = self._bolster.session_channels
                responder.session = self._bolster.session_of(request)
            expect_operation(request, kind)
            response = self._bolster.session_request(request)
        except IomtError as exc:
            return self._answers.refuse(responder, kind.name.lower(), exc)
        self._answers.answer(responder, response.to_bytes())
        self._feed.publish_new(self._bolster.last_append)
        return None
