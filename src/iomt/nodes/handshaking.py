"""Session handshakes over the ``SessionHandshake`` service: opening them as the initiator
(:class:`SessionOpener`), answering them as the responder (:func:`handshake_responder`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from iomt.core.channels import HandshakeBusyError, HandshakeReplayError
from iomt.core.listener import name_of
from iomt.core.opening import (
    HandshakeAnswer,
    Ready,
    SessionOpening,
    StartHandshake,
    handshake_statement,
)
from iomt.core.replies import ReplyChecker, ReplySigner
from iomt.errors import IomtError
from iomt.msg import SessionHandshake
from iomt.nodes.calls import Calls
from iomt.runtime import Client, Node, Responder


class SessionOpener:
    """Opens sessions as the initiator over a peer's ``handshake`` service, once per peer,
    queueing everyone who needs the session while the handshake runs (the decisions are
    :class:`~iomt.core.opening.SessionOpening`'s; this runs its calls).

    Patient: a reply is taken only if it proves itself
    (:class:`~iomt.core.opening.HandshakeAttempt` decides); anything else is ignored and
    the call waits on.
    A handshake that times out is started again from message 1, with twice the timeout,
    up to ``attempts`` times; a proven refusal is final.
    """

    def __init__(
        self,
        node: Node,
        uri: str,
        channels: Any,
        calls: Calls,
        client_for: Callable[[str], Client],
        *,
        timeout_s: float = 2.0,
        attempts: int = 2,
    ) -> None:
        self._node = node
        self._uri = uri
        self._calls = calls
        self._client_for = client_for
        self._opening: SessionOpening[_Waiter] = SessionOpening(
            channels,
            timeout_s=timeout_s,
            attempts=attempts,
            initiator_uri=uri,
            refusals=ReplyChecker(channels.validate_peer),
        )

    def ensure(
        self, peer_uri: str, on_ready: Callable[[], None], on_error: Callable[[Exception], None]
    ) -> None:
        action = self._opening.ensure(peer_uri, (on_ready, on_error))
        if isinstance(action, Ready):
            on_ready()
        elif action is not None:
            self._handshake(action, self._client_for(peer_uri))

    def _handshake(self, start: StartHandshake, client: Client) -> None:
        peer_uri = start.peer_uri
        ok = SessionHandshake.Response.STATUS_OK

        def fail(exc: Exception) -> None:
            after = self._opening.failed(start, exc)
            if isinstance(after, StartHandshake):
                self._node.get_logger().info(
                    "handshake with %s: %s; trying again (%d/%d)",
                    peer_uri,
                    exc,
                    after.attempt,
                    self._opening.attempts,
                )
                self._handshake(after, client)
                return
            for _ok, err in after.waiters:
                err(exc)

        def accept_m2(resp: Any) -> bool:
            return attempt.take_answer2(_answer(resp))

        def after_m2(resp: Any) -> None:
            if resp.status != ok or attempt.message3 is None:
                fail(IomtError(f"{peer_uri} refused the handshake: {resp.reason}"))
                return
            self._calls.call(
                client,
                SessionHandshake.Request(initiator_uri=self._uri, message=attempt.message3),
                timeout_s=start.timeout_s,
                on_done=after_m4,
                on_error=fail,
                accept=accept_m4,
            )

        def accept_m4(resp: Any) -> bool:
            return attempt.take_answer4(_answer(resp))

        def after_m4(resp: Any) -> None:
            if resp.status != ok:
                fail(IomtError(f"{peer_uri} refused message 3: {resp.reason}"))
                return
            for done, _err in self._opening.opened(peer_uri).waiters:
                done()

        attempt = self._opening.attempt(start)
        self._calls.call(
            client,
            SessionHandshake.Request(initiator_uri=self._uri, message=attempt.message1),
            timeout_s=start.timeout_s,
            on_done=after_m2,
            on_error=fail,
            accept=accept_m2,
        )


_Waiter = tuple[Callable[[], None], Callable[[Exception], None]]


def _answer(resp: Any) -> HandshakeAnswer:
    return HandshakeAnswer(
        resp.status == SessionHandshake.Response.STATUS_OK,
        int(resp.status),
        str(resp.reason),
        bytes(resp.message),
        bytes(resp.proof),
    )


def handshake_responder(
    respond: Callable[..., bytes], server: str, replies: ReplySigner
) -> Callable[[Any, Responder], None]:
    """The (deferred) ``~/handshake`` service callback of a party answering handshakes:
    ``respond(initiator, message, source=...)`` is ``ChannelTable.respond`` (or the
    bolster's). Messages 2 and 4 prove themselves; a refusal is signed by us, within the
    signature budget -- except a busy one (the point is to do no work) and a replayed
    message 3's (its original has its answer): those carry no proof, so no initiator takes
    them."""

    def on_handshake(req: Any, responder: Responder) -> None:
        resp = SessionHandshake.Response()
        message = bytes(req.message)
        try:
            resp.message = respond(name_of(req.initiator_uri), message, source=responder.source)
            resp.status = SessionHandshake.Response.STATUS_OK
        except (HandshakeBusyError, HandshakeReplayError) as exc:
            resp.status = SessionHandshake.Response.STATUS_REFUSED
            resp.reason = str(exc)
        except IomtError as exc:
            resp.status = SessionHandshake.Response.STATUS_REFUSED
            resp.reason = str(exc)
            statement = handshake_statement(
                server,
                str(req.initiator_uri),
                message,
                int(resp.status),
                str(resp.reason),
                bytes(resp.message),
            )
            resp.proof = replies.sign(statement, budgeted=True)
        responder.send(resp)

    return on_handshake
