"""Channels: authenticated sessions between two parties, so later requests are symmetric.

A provider opens a session with each device it asks (and a device with each converter it
uses) by the three-message handshake of ``iomt.crypto.sessions`` (SIGMA-I: ephemeral
X25519, identities proven by certificates from the facility CA). After that a request
costs one AES-GCM ``protect`` and ``unprotect`` (about 2 µs each here) instead of a
signature and its verification (about 0.13 ms), and the session exports the keys that
authenticate envelopes (HMAC) and, for ``sym-aes``, seal them.

``ChannelTable`` keeps the sessions of one party, by peer name, on both sides of the
handshake. It is sans-IO: it turns handshake bytes into handshake bytes.

**Answering handshakes cannot be exhausted.** The responder side keeps no state for a
handshake until message 3 proves the initiator read message 2: its state rides in a
cookie inside message 2 (:class:`~iomt.crypto.sessions.StatelessResponder`), so there is no
table of unfinished handshakes to fill. What a message 1 still costs (a key exchange and a
signature) is bounded per source and overall (:class:`HandshakeLimits`): a source is who
wrote the request as the transport says (a DDS writer), not whom the request names, so a
flood from one source -- under any names -- spends that source's budget only, and a
source that has been quiet (its budget full: every legitimate initiator, which starts a
handshake or two per peer) is admitted even when the shared budget is spent.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass

from iomt.clock import ClockS
from iomt.crypto.errors import InvalidSignatureError
from iomt.crypto.keys import SymmetricKey
from iomt.crypto.sessions import (
    CookieJar,
    CredentialValidator,
    HandshakeIdentity,
    HandshakeInitiator,
    Session,
    SessionPolicy,
    StatelessResponder,
    addressed_to,
    is_handshake_start,
    record_session_id,
)
from iomt.crypto.signing import HmacSha256Key, Verifier
from iomt.errors import AuthenticationError, LocalProtocolError, RemoteProtocolError

_MAX_SESSIONS_PER_PEER = 4
ENVELOPE_MAC_LABEL = "iomt/envelope-mac/v1"
REPLY_MAC_LABEL = "iomt/reply-mac/v1"
SYM_AES_LABEL = "iomt/sym-aes/v1"


class HandshakeReplayError(RemoteProtocolError):
    """A message 3 whose handshake already completed (an eavesdropper's copy): refused,
    and -- since the original already has its answer -- never answered with a proof."""


class HandshakeBusyError(RemoteProtocolError):
    """A message 1 beyond its source's (or the responder's) handshake budget: not answered
    with work. The initiator may try again later."""


@dataclass(frozen=True, slots=True)
class HandshakeLimits:
    """Work bounds on answering message 1 (each costs a key exchange and a signature).

    * per source: ``per_source_rate`` per second, bursts of ``per_source_burst``;
    * shared: ``shared_rate`` / ``shared_burst`` for sources that are already spending;
      a source whose own budget is full (quiet until now) does not need it;
    * ceiling: ``ceiling_rate`` / ``ceiling_burst`` for everyone, quiet or not -- the most
      CPU a responder ever spends on handshakes;
    * ``max_sources`` budgets are kept (least recently used first out).
    """

    per_source_rate: float = 2.0
    per_source_burst: float = 8.0
    shared_rate: float = 100.0
    shared_burst: float = 200.0
    ceiling_rate: float = 1000.0
    ceiling_burst: float = 1000.0
    max_sources: int = 4096


class _Bucket:
    __slots__ = ("burst", "last", "rate", "tokens")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate, self.burst, self.tokens, self.last = rate, burst, burst, now

    def refill(self, now: float) -> float:
        if now > self.last:
            self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
            self.last = now
        return self.tokens


class HandshakeGate:
    """Admits message 1s under :class:`HandshakeLimits` (sans-IO; the clock is injected)."""

    def __init__(self, limits: HandshakeLimits, clock: ClockS) -> None:
        self.limits = limits
        self._clock = clock
        now = clock()
        self._shared = _Bucket(limits.shared_rate, limits.shared_burst, now)
        self._ceiling = _Bucket(limits.ceiling_rate, limits.ceiling_burst, now)
        self._sources: OrderedDict[Hashable, _Bucket] = OrderedDict()
        self.admitted = 0
        self.refused = 0

    def admit(self, source: Hashable) -> bool:
        now = self._clock()
        lim = self.limits
        bucket = self._sources.get(source)
        if bucket is None:
            bucket = _Bucket(lim.per_source_rate, lim.per_source_burst, now)
            self._sources[source] = bucket
            while len(self._sources) > lim.max_sources:
                self._sources.popitem(last=False)
        else:
            self._sources.move_to_end(source)
        own = bucket.refill(now)
        quiet = own >= bucket.burst - 1e-9
        shared = self._shared.refill(now) >= 1.0
        if own < 1.0 or self._ceiling.refill(now) < 1.0 or not (shared or quiet):
            self.refused += 1
            return False
        bucket.tokens -= 1.0
        self._ceiling.tokens -= 1.0
        if shared:
            self._shared.tokens -= 1.0
        self.admitted += 1
        return True


class ChannelTable:
    def __init__(
        self,
        identity: HandshakeIdentity,
        validate_peer: CredentialValidator,
        *,
        policy: SessionPolicy | None = None,
        clock: ClockS = time.time,
        limits: HandshakeLimits | None = None,
    ) -> None:
        self.identity = identity
        self._validate = validate_peer
        self.policy = policy or SessionPolicy()
        self._clock = clock
        self._sessions: dict[str, Session] = {}
        self._by_id: dict[bytes, Session] = {}
        self._initiating: dict[str, HandshakeInitiator] = {}
        self._confirming: dict[str, HandshakeInitiator] = {}
        self._responder = StatelessResponder(
            identity,
            validate_peer,
            policy=self.policy,
            clock=clock,
            cookies=CookieJar(period=self.policy.handshake_timeout, clock=clock),
        )
        self.gate = HandshakeGate(limits or HandshakeLimits(), clock)
        # message 3s completed, by our connection id, until their cookies expire (replays)
        self._completed: OrderedDict[bytes, float] = OrderedDict()
        self._mac_keys: dict[bytes, HmacSha256Key] = {}
        self._reply_keys: dict[bytes, HmacSha256Key] = {}
        self._older: dict[str, list[Session]] = {}
        self.handshakes_completed = 0

    # -- initiator ------------------------------------------------------------------------

    def start(self, peer: str) -> bytes:
        """Message 1 of a new handshake with ``peer`` (replacing an unfinished one)."""
        init = HandshakeInitiator(
            self.identity,
            self._validate,
            policy=self.policy,
            clock=self._clock,
            expected_peer=peer,
        )
        m1 = init.start()
        self._initiating[peer] = init
        return m1

    def finish(self, peer: str, m2: bytes) -> bytes:
        """Feed the responder's message 2; returns message 3. A message 2 that does not
        verify (forged, or another handshake's) raises and changes nothing.

        The session is not used until :meth:`confirm` (the responder's message 4): a record
        or MAC sent on it before then may reach a responder that never completes the
        handshake (message 3 lost or refused), which could not check it.
        """
        init = self._initiating.get(peer)
        if init is None:
            raise LocalProtocolError(f"no handshake in progress with {peer}")
        m3 = init.receive(m2)  # refuses a message 2 signed by anyone but ``peer``
        del self._initiating[peer]
        self._confirming[peer] = init
        return m3

    def confirm(self, peer: str, m4: bytes) -> Session:
        """The responder's message 4 (its key confirmation): the session with ``peer`` is
        ready. A message 4 that does not verify raises and changes nothing."""
        init = self._confirming.get(peer)
        if init is None:
            raise LocalProtocolError(f"no finished handshake with {peer} to confirm")
        session = init.confirm(m4)
        del self._confirming[peer]
        self._install(session)
        return session

    def validate_peer(self, name: str, credential: bytes) -> Verifier:
        """``name``'s verifier from its credential (the handshake's validator)."""
        return self._validate(name, credential)

    def abandon(self, peer: str) -> None:
        """Forget an unfinished or unconfirmed handshake with ``peer`` (live sessions stay)."""
        self._initiating.pop(peer, None)
        self._confirming.pop(peer, None)

    # -- responder ------------------------------------------------------------------------

    def respond(self, initiator: str, message: bytes, *, source: Hashable | None = None) -> bytes:
        """Feed message 1 (returns message 2) or message 3 (returns message 4: the session
        is ready). Nothing is kept between the two (the state is in message 2's cookie).

        ``source`` is who wrote the request as the transport tells it (a DDS writer handle):
        message 1s are admitted per source (:class:`HandshakeLimits`); without one, per
        claimed initiator name (weaker: a flood naming a victim spends the victim's
        budget). Over budget: :class:`HandshakeBusyError`, before any work. A message 3
        replayed (its connection id already completed) is refused.
        """
        if is_handshake_start(message):
            key: Hashable = ("source", source) if source is not None else ("name", initiator)
            if not self.gate.admit(key):
                raise HandshakeBusyError(f"handshake budget of {initiator!r} spent; try later")
            return self._responder.answer(message, initiator)
        c_r = addressed_to(message)
        now = self._clock()
        while self._completed and next(iter(self._completed.values())) <= now:
            self._completed.popitem(last=False)
        if c_r in self._completed or c_r in self._by_id:
            raise HandshakeReplayError("message 3 replayed: that handshake is complete")
        session, m4 = self._responder.complete(message, initiator)
        if session.peer_name != initiator:
            raise AuthenticationError(f"{initiator} completed a handshake as {session.peer_name}")
        self._completed[c_r] = now + self.policy.handshake_timeout
        self._install(session)
        return m4

    # -- sessions -------------------------------------------------------------------------

    def _install(self, session: Session) -> None:
        # Two parties may open sessions with each other at the same moment (a converter
        # with a provider that is about to ask it directly): each side then holds two.
        # Records on every live one are accepted (by connection id); we send on the
        # newest. Older ones are kept until they expire, a few per peer at most.
        peer = session.peer_name
        self._sessions[peer] = session
        self._by_id[session.local_id] = session
        older = self._older.setdefault(peer, [])
        older.append(session)
        while len(older) > _MAX_SESSIONS_PER_PEER:
            gone = older.pop(0)
            self._by_id.pop(gone.local_id, None)
            self._mac_keys.pop(gone.local_id, None)
            self._reply_keys.pop(gone.local_id, None)
        self.handshakes_completed += 1

    def session(self, peer: str) -> Session | None:
        """The live session with ``peer``, if any (expired ones are dropped)."""
        s = self._sessions.get(peer)
        if s is not None and s.is_expired:
            self.drop(peer)
            return None
        return s

    def session_by_id(self, local_id: bytes) -> Session | None:
        s = self._by_id.get(local_id)
        return None if s is None or s.is_expired else s

    def session_of_record(self, record: bytes) -> Session:
        """The session a protected record was sent on; SessionError if unknown."""
        s = self._by_id.get(record_session_id(record))
        if s is None or s.is_expired:
            raise AuthenticationError("record for no live session")
        return s

    def drop(self, peer: str) -> None:
        self._sessions.pop(peer, None)
        for s in self._older.pop(peer, []):
            self._by_id.pop(s.local_id, None)
            self._mac_keys.pop(s.local_id, None)
            self._reply_keys.pop(s.local_id, None)

    def mac_verifier(self, peer: str) -> Verifier | None:
        """What checks a MAC from ``peer``: any of our live sessions with it. Two parties
        that opened sessions with each other at the same moment may each send on a
        different one for a while; a MAC from either is theirs.

        That includes a session we initiated and finished but whose confirmation is still
        on its way: the responder holds it as soon as it accepted message 3 and may MAC
        with it at once (a converter publishing to a provider that just opened a session
        with it), before our confirmation arrives. Accepting such a MAC is safe -- only the
        authenticated peer holds the key -- we just do not send on that session yet."""
        sessions = [*self._older.get(peer, ())]
        confirming = self._confirming.get(peer)
        if confirming is not None:
            sessions.append(confirming.pending_session)
        keys = [self.mac_key(s) for s in sessions if not s.is_expired]
        if not keys:
            return None
        return keys[0] if len(keys) == 1 else AnyOfMacs(keys[::-1])

    def reply_key(self, session: Session) -> HmacSha256Key:
        """The key of ``session`` that authenticates service replies (iomt.core.replies)."""
        key = self._reply_keys.get(session.local_id)
        if key is None:
            key = HmacSha256Key(session.symmetric_key(REPLY_MAC_LABEL).secret_bytes())
            self._reply_keys[session.local_id] = key
        return key

    def mac_key(self, session: Session) -> HmacSha256Key:
        key = self._mac_keys.get(session.local_id)
        if key is None:
            key = HmacSha256Key(session.symmetric_key(ENVELOPE_MAC_LABEL).secret_bytes())
            self._mac_keys[session.local_id] = key
        return key

    @staticmethod
    def link_key(session: Session) -> SymmetricKey:
        """The key ``sym-aes`` seals under on this link."""
        return session.symmetric_key(SYM_AES_LABEL)

    def __len__(self) -> int:
        return len(self._sessions)


class AnyOfMacs(Verifier):
    """Accepts a MAC made with any of a few keys (the live sessions with one peer)."""

    algorithm = "hmac-sha256"

    def __init__(self, keys: list[HmacSha256Key]) -> None:
        self._keys = keys

    def verify(self, data: bytes, signature: bytes) -> None:
        for key in self._keys:
            try:
                key.verify(data, signature)
            except InvalidSignatureError:
                continue
            return
        raise InvalidSignatureError("HMAC-SHA256 tag does not verify with any session key")

    def public_bytes(self) -> bytes:
        return b"".join(k.public_bytes() for k in self._keys)
