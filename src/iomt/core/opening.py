"""Opening sessions as the initiator, sans-IO: once per peer, everyone who needs the session
waiting on the one handshake, a handshake that timed out started again.

:class:`SessionOpening` decides; the node's :class:`~iomt.nodes.common.SessionOpener` runs
the calls. ``ensure`` returns :class:`Ready` (a session is there) or
:class:`StartHandshake` (run one, with :class:`HandshakeAttempt`), or nothing (one is
running: the waiter joins it); the outcome of a handshake is fed back with ``opened`` or
``failed``, which give the waiters back (:class:`Ready`, :class:`Failed`) or ask for the
next attempt. A handshake that timed out, or whose every answer failed its proof, is started
again from message 1 with twice the timeout, up to ``attempts`` times (a peer still being
discovered, or busy: at 400 devices on two cores, warm-up costs a handshake or two per
thousand requests); a proven refusal is final.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from iomt.crypto.sessions import Session
from iomt.errors import IomtError, ReplyRejectedError, ServiceTimeoutError

from .listener import name_of

__all__ = [
    "Failed",
    "HandshakeAttempt",
    "InitiatorChannels",
    "OpeningAction",
    "Ready",
    "SessionOpening",
    "StartHandshake",
]

W = TypeVar("W")


class InitiatorChannels(Protocol):
    """The initiator's half of :class:`~iomt.core.channels.ChannelTable`."""

    def session(self, peer: str) -> Session | None: ...

    def start(self, peer: str) -> bytes: ...

    def finish(self, peer: str, m2: bytes) -> bytes: ...

    def confirm(self, peer: str, m4: bytes) -> Session: ...

    def abandon(self, peer: str) -> None: ...


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
    def __init__(
        self, channels: InitiatorChannels, *, timeout_s: float = 2.0, attempts: int = 2
    ) -> None:
        self._channels = channels
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
        return HandshakeAttempt(self._channels, name_of(start.peer_uri))

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

    def __init__(self, channels: InitiatorChannels, peer: str) -> None:
        self._channels = channels
        self.peer = peer
        self.message1 = channels.start(peer)
        self.message3: bytes | None = None

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
