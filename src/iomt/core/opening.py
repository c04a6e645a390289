"""Opening sessions as the initiator, sans-IO: once per peer, everyone who needs the session
waiting on the one handshake, a handshake that timed out started again.

:class:`SessionOpening` decides; the node's :class:`~iomt.nodes.handshaking.SessionOpener` runs
the calls. ``ensure`` returns :class:`Ready` (a session is there) or
:class:`StartHandshake` (run one, with :class:`HandshakeAttempt`), or nothing (one is
running: the waiter joins it); the outcome of a handshake is fed back with ``opened`` or
``failed``, which give the waiters back (:class:`Ready`, :class:`Failed`) or ask for the
next attempt. A handshake that timed out, or whose every answer failed its proof, is started
again from message 1 with twice the timeout, up to ``attempts`` times (a peer still being
discovered, or busy: at 400 devices on two cores, warm-up costs a handshake or two per
thousand requests); a proven refusal is final.

What the initiator takes from the peer is decided here too: :meth:`HandshakeAttempt.take_answer2`
and :meth:`~HandshakeAttempt.take_answer4` take a :class:`HandshakeAnswer` only if it
proves itself -- a message 2 signed by the peer over our message 1, a message 4 confirming
the session, or a refusal whose proof (over :func:`handshake_statement`) is the peer's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from iomt.crypto.sessions import Session
from iomt.errors import IomtError, ReplyRejectedError, ServiceTimeoutError

from .listener import name_of
from .replies import ReplyStatement, digest, handshake_digest

__all__ = [
    "Failed",
    "HandshakeAnswer",
    "HandshakeAttempt",
    "InitiatorChannels",
    "OpeningAction",
    "Ready",
    "SessionOpening",
    "StartHandshake",
    "handshake_statement",
]

W = TypeVar("W")


class InitiatorChannels(Protocol):
    """The initiator's half of :class:`~iomt.core.channels.ChannelTable`."""

    def session(self, peer: str) -> Session | None: ...

    def start(self, peer: str) -> bytes: ...

    def finish(self, peer: str, m2: bytes) -> bytes: ...

    def confirm(self, peer: str, m4: bytes) -> Session: ...

    def abandon(self, peer: str) -> None: ...


class RefusalCheck(Protocol):
    """Does a refusal's proof come from the peer? (:class:`~iomt.core.replies.ReplyChecker`)"""

    def accepts(self, proof: bytes, statement: ReplyStatement) -> bool: ...


@dataclass(frozen=True, slots=True)
class HandshakeAnswer:
    """A ``SessionHandshake`` response as the initiator reads it."""

    ok: bool  # the status is OK: ``message`` is message 2 or 4
    status: int
    reason: str
    message: bytes
    proof: bytes


def handshake_statement(
    server: str, initiator_uri: str, message: bytes, status: int, reason: str, answer: bytes
) -> ReplyStatement:
    """What a ``SessionHandshake`` reply's proof covers (refusals; an answer's message 2 or
    4 proves itself)."""
    return ReplyStatement(
        "handshake",
        server,
        handshake_digest(initiator_uri, message),
        status,
        reason,
        digest("handshake/reply", answer),
    )


@dataclass(frozen=True)
class StartHandshake:
    """Run attempt number ``attempt`` of a handshake with ``peer_uri``."""

    peer_uri: str
    attempt: int
    timeout_s: float


@dataclass(frozen=True)
class Ready(Generic[W]):
    """The session with ``peer_uri`` is there: these waiters may go on."""

    peer_uri: str
    waiters: tuple[W, ...]


@dataclass(frozen=True)
class Failed(Generic[W]):
    """No session with ``peer_uri``: these waiters get ``error``."""

    peer_uri: str
    waiters: tuple[W, ...]
    error: Exception


OpeningAction = StartHandshake | Ready[W] | Failed[W]


class SessionOpening(Generic[W]):
    """``initiator_uri`` and ``refusals`` check a peer's refusals; without them no refusal
    is taken (each is waited out to the deadline)."""

    def __init__(
        self,
        channels: InitiatorChannels,
        *,
        timeout_s: float = 2.0,
        attempts: int = 2,
        initiator_uri: str = "",
        refusals: RefusalCheck | None = None,
    ) -> None:
        self._channels = channels
        self._initiator_uri = initiator_uri
        self._refusals = refusals
        self._timeout = timeout_s
        self.attempts = attempts
        self._waiting: dict[str, list[W]] = {}

    def ensure(self, peer_uri: str, waiter: W) -> Ready[W] | StartHandshake | None:
        peer = name_of(peer_uri)
        if self._channels.session(peer) is not None:
            return Ready(peer_uri, (waiter,))
        waiters = self._waiting.get(peer)
        if waiters is not None:
            waiters.append(waiter)
            return None
        self._waiting[peer] = [waiter]
        return StartHandshake(peer_uri, 1, self._timeout)

    def attempt(self, start: StartHandshake) -> HandshakeAttempt:
        """The handshake's messages, starting with a fresh message 1."""
        return HandshakeAttempt(
            self._channels,
            name_of(start.peer_uri),
            initiator_uri=self._initiator_uri,
            refusals=self._refusals,
        )

    def opened(self, peer_uri: str) -> Ready[W]:
        return Ready(peer_uri, tuple(self._waiting.pop(name_of(peer_uri), [])))

    def failed(self, start: StartHandshake, error: Exception) -> StartHandshake | Failed[W]:
        peer = name_of(start.peer_uri)
        self._channels.abandon(peer)
        retry = isinstance(error, ServiceTimeoutError | ReplyRejectedError)
        if retry and start.attempt < self.attempts:
            return StartHandshake(
                start.peer_uri, start.attempt + 1, self._timeout * 2**start.attempt
            )
        return Failed(start.peer_uri, tuple(self._waiting.pop(peer, [])), error)

    def waiting(self, peer_uri: str) -> int:
        return len(self._waiting.get(name_of(peer_uri), ()))


class HandshakeAttempt:
    """One attempt's messages. Patient: an answer that does not verify (forged, or another
    handshake's) is not taken, so the caller waits on for the peer's own."""

    def __init__(
        self,
        channels: InitiatorChannels,
        peer: str,
        *,
        initiator_uri: str = "",
        refusals: RefusalCheck | None = None,
    ) -> None:
        self._channels = channels
        self._initiator_uri = initiator_uri
        self._refusals = refusals
        self.peer = peer
        self.message1 = channels.start(peer)
        self.message3: bytes | None = None

    def take_answer2(self, answer: HandshakeAnswer) -> bool:
        """The answer to message 1: message 2, or a refusal the peer proves."""
        if not answer.ok:
            return self._refusal_proven(self.message1, answer)
        return self.take_message2(answer.message)

    def take_answer4(self, answer: HandshakeAnswer) -> bool:
        """The answer to message 3: message 4, or a refusal the peer proves."""
        if not answer.ok:
            return self.message3 is not None and self._refusal_proven(self.message3, answer)
        return self.take_message4(answer.message)

    def _refusal_proven(self, message: bytes, answer: HandshakeAnswer) -> bool:
        if self._refusals is None:
            return False
        statement = handshake_statement(
            self.peer, self._initiator_uri, message, answer.status, answer.reason, answer.message
        )
        return self._refusals.accepts(answer.proof, statement)

    def take_message2(self, message2: bytes) -> bool:
        if self.message3 is not None:  # a second valid message 2 (a replayed message 1's)
            return False
        try:
            self.message3 = self._channels.finish(self.peer, message2)
        except IomtError:
            return False
        return True

    def take_message4(self, message4: bytes) -> bool:
        try:
            self._channels.confirm(self.peer, message4)
        except IomtError:
            return False
        return True
