"""Cluster layer: electing a cluster head, and what the head does (BIoMT §II-A (4)).

"For each cluster, medical facilities elect a cluster head (CH), which communicates with
other CHs ... Each CH stores two types of public key lists: a list that contains the public
keys of users and a list of the public keys used by different facilities." The paper gives
no election algorithm and no CH duty beyond the key lists; here:

**Election** (:class:`ClusterMember`, one per bolster) -- Raft's leader election (terms,
one vote per member per term, a majority of the configured cluster to win) with the two
safeguards of Ongaro's thesis §9.6: *pre-vote* (a member asks whether it could win before it
increments its term, so a member cut off by a partition cannot inflate terms and depose a
working head when it returns) and *leader stickiness* (members that hear a live head ignore
vote requests). The head sends signed heartbeats every ``heartbeat_period``; a member that
hears none for ``election_timeout`` stands for election, staggered by rank -- the member
with the highest ``(priority, id)`` among the others stands first, so in a quiet cluster the
outcome is deterministic. A head that has not heard a majority acknowledge within the
timeout steps down (its lease lapsed), so an isolated old head stops acting as head. Safety:
at most one head per term (majority votes, one vote per term); liveness: a new head within
about ``election_timeout`` + a few message delays after the head dies, provided a majority
is alive and connected. Every election message is signed by its member's key.

The object is sans-IO: ``tick()`` (from a timer) and ``receive(message)`` return the
messages to send (``Outgoing``: to one member, or to all). A member's ``(term, voted_for)``
must survive its restarts for the one-vote rule to hold across them (``state`` / the
``term``/``voted_for`` constructor arguments).

**Cluster head duties** (:class:`ClusterHead`) -- it keeps the facility public-key list
(registered bolsters' certified ledger keys) and the user list
(:class:`~iomt.core.biomt.identity.UserDirectory`); it asks each bolster for a checkpoint
with a consistency proof from the last one it cosigned, verifies both
(:func:`iomt.ledger.detect_fork`), and cosigns. A bolster whose log was forked, rewritten or
rolled back cannot produce a valid proof: the head raises
:class:`~iomt.ledger.ForkDetectedError` carrying both signed checkpoints as evidence, flags
the bolster and refuses its later checkpoints. Heads exchange what they cosigned
(:meth:`ClusterHead.compare`) so a bolster showing different heads different histories is
caught as well.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, replace

from iomt.crypto.signing import Signer, Verifier
from iomt.errors import AuthenticationError
from iomt.ledger import (
    ConsistencyProof,
    Cosignature,
    ForkDetectedError,
    LedgerSigner,
    SignedTreeHead,
    cosign,
    detect_fork,
    key_id,
    verify_checkpoint,
)

from .clock import SECOND, ClockNs, Rng
from .codec import BOOL, U64, Blob, Message, tag
from .errors import (
    BolsterFlaggedError,
    NotLeaderError,
    RequestAuthenticationError,
    StaleRequestError,
    UnknownBolsterError,
)
from .identity import BolsterCredentials, TrustAnchor, UserDirectory
from .keys import LedgerKeyVerifier
from .messages import ID, NONCE, SIGNATURE

__all__ = [
    "CheckpointRequest",
    "CheckpointSubmission",
    "ClusterHead",
    "ClusterMember",
    "ElectionRole",
    "Heartbeat",
    "HeartbeatAck",
    "Outgoing",
    "VoteReply",
    "VoteRequest",
]

_STH = Blob(SignedTreeHead.from_bytes)


# --- election messages ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Heartbeat(Message):
    cluster_id: str
    term: int
    leader: str
    time: int
    signature: bytes = b""

    TAG = tag("iomt/biomt/cluster/heartbeat/v1")
    FIELDS = (
        ("cluster_id", ID),
        ("term", U64),
        ("leader", ID),
        ("time", U64),
        ("signature", SIGNATURE),
    )
    SIGNATURE = "signature"

    @property
    def sender(self) -> str:
        return self.leader


@dataclass(frozen=True, slots=True)
class HeartbeatAck(Message):
    cluster_id: str
    term: int
    sender: str
    leader: str
    time: int
    signature: bytes = b""

    TAG = tag("iomt/biomt/cluster/heartbeat-ack/v1")
    FIELDS = (
        ("cluster_id", ID),
        ("term", U64),
        ("sender", ID),
        ("leader", ID),
        ("time", U64),
        ("signature", SIGNATURE),
    )
    SIGNATURE = "signature"


@dataclass(frozen=True, slots=True)
class VoteRequest(Message):
    cluster_id: str
    term: int
    candidate: str
    pre_vote: bool
    time: int
    signature: bytes = b""

    TAG = tag("iomt/biomt/cluster/vote-request/v1")
    FIELDS = (
        ("cluster_id", ID),
        ("term", U64),
        ("candidate", ID),
        ("pre_vote", BOOL),
        ("time", U64),
        ("signature", SIGNATURE),
    )
    SIGNATURE = "signature"

    @property
    def sender(self) -> str:
        return self.candidate


@dataclass(frozen=True, slots=True)
class VoteReply(Message):
    cluster_id: str
    term: int
    sender: str
    candidate: str
    pre_vote: bool
    granted: bool
    time: int
    signature: bytes = b""

    TAG = tag("iomt/biomt/cluster/vote-reply/v1")
    FIELDS = (
        ("cluster_id", ID),
        ("term", U64),
        ("sender", ID),
        ("candidate", ID),
        ("pre_vote", BOOL),
        ("granted", BOOL),
        ("time", U64),
        ("signature", SIGNATURE),
    )
    SIGNATURE = "signature"


ElectionMessage = Heartbeat | HeartbeatAck | VoteRequest | VoteReply


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A message to send: to member ``to``, or to every other member if ``to`` is None."""

    to: str | None
    message: ElectionMessage


class ElectionRole(enum.Enum):
    FOLLOWER = "follower"
    PRE_CANDIDATE = "pre-candidate"
    CANDIDATE = "candidate"
    LEADER = "leader"


_F, _P, _C, _L = (
    ElectionRole.FOLLOWER,
    ElectionRole.PRE_CANDIDATE,
    ElectionRole.CANDIDATE,
    ElectionRole.LEADER,
)

# (role, event) -> next role; anything absent is illegal.
_TRANSITIONS: dict[tuple[ElectionRole, str], ElectionRole] = {
    (_F, "election-timeout"): _P,
    (_P, "election-timeout"): _P,
    (_C, "election-timeout"): _P,
    (_P, "pre-vote-quorum"): _C,
    (_C, "vote-quorum"): _L,
    (_L, "lease-lost"): _F,
    **{(r, "higher-term"): _F for r in ElectionRole},
    **{(r, "heard-leader"): _F for r in (_F, _P, _C)},
}


class ClusterMember:
    """One bolster's view of its cluster's election (see the module docstring)."""

    def __init__(
        self,
        cluster_id: str,
        member_id: str,
        *,
        priority: int,
        signer: Signer,
        peers: Mapping[str, tuple[int, Verifier]],
        clock: ClockNs,
        heartbeat_period: int = SECOND // 2,
        election_timeout: int = 3 * SECOND // 2,
        term: int = 0,
        voted_for: str | None = None,
    ) -> None:
        if member_id in peers:
            raise ValueError("a member is not its own peer")
        if election_timeout <= 2 * heartbeat_period:
            raise ValueError("the election timeout must exceed two heartbeat periods")
        self.cluster_id = cluster_id
        self.member_id = member_id
        self.priority = priority
        self._signer = signer
        self._peers = {name: (prio, ver) for name, (prio, ver) in peers.items()}
        self._clock = clock
        self.heartbeat_period = heartbeat_period
        self.election_timeout = election_timeout
        self.role = ElectionRole.FOLLOWER
        self.term = term
        self.voted_for = voted_for
        self.leader: str | None = None
        now = clock()
        self._last_contact = now  # last heartbeat from a head (or start-up)
        self._election_started = now
        self._last_heartbeat_sent = 0
        self._became_leader = 0
        self._acks: dict[str, int] = {}
        self._votes: set[str] = set()

    # -- state ------------------------------------------------------------------------

    @property
    def cluster_size(self) -> int:
        return len(self._peers) + 1

    @property
    def quorum(self) -> int:
        return self.cluster_size // 2 + 1

    @property
    def is_head(self) -> bool:
        return self.role is ElectionRole.LEADER

    @property
    def state(self) -> tuple[int, str | None]:
        """``(term, voted_for)``: persist it to keep the one-vote-per-term rule on restart."""
        return self.term, self.voted_for

    def _rank(self, member: str) -> tuple[int, str]:
        prio = self.priority if member == self.member_id else self._peers[member][0]
        return prio, member

    def _stagger(self) -> int:
        """Members ranked above us (other than the head we lost) stand first."""
        mine = self._rank(self.member_id)
        above = sum(1 for p in self._peers if p != self.leader and self._rank(p) > mine)
        return above * self.heartbeat_period

    def _go(self, event: str) -> None:
        nxt = _TRANSITIONS.get((self.role, event))
        if nxt is None:
            raise NotLeaderError(f"{self.member_id}: {event} not allowed as {self.role.value}")
        self.role = nxt

    def _sign(self, msg: ElectionMessage) -> ElectionMessage:
        return replace(msg, signature=self._signer.sign(msg.signed_bytes()))

    def _leader_alive(self, now: int) -> bool:
        # A live head is heard every heartbeat period; a window shorter than the election
        # timeout lets the first member to time out collect votes from the others, whose
        # last contact may lag its own by a message delay.
        window = self.election_timeout - self.heartbeat_period
        return self.leader is not None and now - self._last_contact < window

    # -- time -------------------------------------------------------------------------

    def tick(self) -> list[Outgoing]:
        """Advance timers: heartbeats as head, elections as anybody else."""
        now = self._clock()
        out: list[Outgoing] = []
        if self.role is ElectionRole.LEADER:
            live = 1 + sum(1 for t in self._acks.values() if now - t < self.election_timeout)
            if now - self._became_leader >= self.election_timeout and live < self.quorum:
                self._go("lease-lost")
                self.leader = None
                self._last_contact = now
                return out
            if now - self._last_heartbeat_sent >= self.heartbeat_period:
                self._last_heartbeat_sent = now
                out.append(
                    Outgoing(
                        None, self._sign(Heartbeat(self.cluster_id, self.term, self.member_id, now))
                    )
                )
            return out
        since = self._last_contact if self.role is ElectionRole.FOLLOWER else self._election_started
        if now - since >= self.election_timeout + self._stagger():
            out.extend(self._start_pre_vote(now))
        return out

    def _start_pre_vote(self, now: int) -> list[Outgoing]:
        self._go("election-timeout")
        self._election_started = now
        self._votes = {self.member_id}
        if self.quorum == 1:
            return self._start_election(now)
        req = VoteRequest(self.cluster_id, self.term + 1, self.member_id, True, now)
        return [Outgoing(None, self._sign(req))]

    def _start_election(self, now: int) -> list[Outgoing]:
        self._go("pre-vote-quorum")
        self.term += 1
        self.voted_for = self.member_id
        self.leader = None
        self._votes = {self.member_id}
        self._election_started = now
        if len(self._votes) >= self.quorum:
            return self._become_leader(now)
        req = VoteRequest(self.cluster_id, self.term, self.member_id, False, now)
        return [Outgoing(None, self._sign(req))]

    def _become_leader(self, now: int) -> list[Outgoing]:
        self._go("vote-quorum")
        self.leader = self.member_id
        self._became_leader = now
        self._acks = {}
        self._last_heartbeat_sent = now
        hb = Heartbeat(self.cluster_id, self.term, self.member_id, now)
        return [Outgoing(None, self._sign(hb))]

    def _adopt(self, term: int) -> None:
        if term > self.term:
            self._go("higher-term")
            self.term = term
            self.voted_for = None
            self.leader = None

    # -- messages ---------------------------------------------------------------------

    def receive(self, message: ElectionMessage) -> list[Outgoing]:
        """Handle a peer's message; raises for unsigned, foreign or unknown senders."""
        if message.cluster_id != self.cluster_id:
            raise RequestAuthenticationError(f"message for cluster {message.cluster_id!r}")
        sender = message.sender
        peer = self._peers.get(sender)
        if peer is None:
            raise UnknownBolsterError(f"{sender!r} is not a member of {self.cluster_id!r}")
        try:
            peer[1].verify(message.signed_bytes(), message.signature)
        except AuthenticationError as exc:
            raise RequestAuthenticationError(f"election message from {sender!r}: {exc}") from None
        now = self._clock()
        if isinstance(message, Heartbeat):
            return self._on_heartbeat(message, now)
        if isinstance(message, HeartbeatAck):
            self._on_ack(message, now)
            return []
        if isinstance(message, VoteRequest):
            return self._on_vote_request(message, now)
        return self._on_vote_reply(message, now)

    def _on_heartbeat(self, hb: Heartbeat, now: int) -> list[Outgoing]:
        if hb.term < self.term:
            # a stale head: tell it our term so it steps down
            ack = HeartbeatAck(self.cluster_id, self.term, self.member_id, hb.leader, now)
            return [Outgoing(hb.leader, self._sign(ack))]
        self._adopt(hb.term)
        if self.role is not ElectionRole.FOLLOWER:
            if self.role is ElectionRole.LEADER:  # same term, two heads: cannot happen
                raise NotLeaderError(f"two heads claim term {hb.term}")
            self._go("heard-leader")
        self.leader = hb.leader
        self._last_contact = now
        ack = HeartbeatAck(self.cluster_id, self.term, self.member_id, hb.leader, now)
        return [Outgoing(hb.leader, self._sign(ack))]

    def _on_ack(self, ack: HeartbeatAck, now: int) -> None:
        if ack.term > self.term:
            self._adopt(ack.term)
            self._last_contact = now
            return
        if self.role is ElectionRole.LEADER and ack.term == self.term:
            self._acks[ack.sender] = now

    def _on_vote_request(self, req: VoteRequest, now: int) -> list[Outgoing]:
        # stickiness: while a head is alive, nobody else gets a vote (pre or real)
        sticky = self._leader_alive(now) and req.candidate != self.leader
        if self.role is ElectionRole.LEADER:
            sticky = True
        if req.pre_vote:
            granted = not sticky and req.term > self.term
        elif sticky or req.term < self.term:
            granted = False
        else:
            self._adopt(req.term)
            granted = self.voted_for in (None, req.candidate)
            if granted:
                self.voted_for = req.candidate
                self._last_contact = now  # give the candidate time to win
        reply = VoteReply(
            self.cluster_id,
            req.term if req.pre_vote else self.term,
            self.member_id,
            req.candidate,
            req.pre_vote,
            granted,
            now,
        )
        return [Outgoing(req.candidate, self._sign(reply))]

    def _on_vote_reply(self, reply: VoteReply, now: int) -> list[Outgoing]:
        if reply.candidate != self.member_id:
            return []
        if not reply.pre_vote and reply.term > self.term:
            self._adopt(reply.term)
            return []
        if not reply.granted:
            return []
        if (
            reply.pre_vote
            and self.role is ElectionRole.PRE_CANDIDATE
            and reply.term == self.term + 1
        ):
            self._votes.add(reply.sender)
            if len(self._votes) >= self.quorum:
                return self._start_election(now)
        elif not reply.pre_vote and self.role is ElectionRole.CANDIDATE and reply.term == self.term:
            self._votes.add(reply.sender)
            if len(self._votes) >= self.quorum:
                return self._become_leader(now)
        return []


# --- checkpoint witnessing -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CheckpointRequest(Message):
    """A cluster head asks a bolster for a checkpoint and a proof from ``from_size``."""

    head_id: str
    bolster_id: str
    from_size: int
    nonce: bytes

    TAG = tag("iomt/biomt/cluster/checkpoint-request/v1")
    FIELDS = (("head_id", ID), ("bolster_id", ID), ("from_size", U64), ("nonce", NONCE))


@dataclass(frozen=True, slots=True)
class CheckpointSubmission(Message):
    """A bolster's fresh signed checkpoint and its consistency proof from ``from_size``."""

    bolster_id: str
    request_nonce: bytes
    checkpoint: SignedTreeHead
    proof: ConsistencyProof

    TAG = tag("iomt/biomt/cluster/checkpoint-submission/v1")
    FIELDS = (
        ("bolster_id", ID),
        ("request_nonce", NONCE),
        ("checkpoint", _STH),
        ("proof", Blob(ConsistencyProof.from_bytes)),
    )


@dataclass(frozen=True, slots=True)
class Witnessed:
    """The latest checkpoint a head cosigned for a bolster."""

    checkpoint: SignedTreeHead
    cosignature: Cosignature


class ClusterHead:
    """The head's duties: key lists, checkpoint verification, cosigning, fork flags."""

    def __init__(
        self,
        head_id: str,
        witness: LedgerSigner,
        *,
        anchor: TrustAnchor,
        users: UserDirectory,
        clock: ClockNs,
        rng: Rng,
        membership: ClusterMember | None = None,
        max_checkpoint_age: int = 60 * SECOND,
    ) -> None:
        self.head_id = head_id
        self._witness = witness
        self._anchor = anchor
        self.users = users
        self._clock = clock
        self._rng = rng
        self._membership = membership
        self._max_age = max_checkpoint_age
        self._facilities: dict[str, tuple[str, LedgerKeyVerifier]] = {}
        self._witnessed: dict[str, Witnessed] = {}
        self._pending: dict[str, CheckpointRequest] = {}
        self.flagged: dict[str, ForkDetectedError] = {}

    @property
    def witness_id(self) -> bytes:
        return key_id(self._witness.public_key_bytes)

    def _require_head(self) -> None:
        if self._membership is not None and not self._membership.is_head:
            raise NotLeaderError(
                f"{self.head_id} is not the cluster head (term {self._membership.term})"
            )

    # -- key lists --------------------------------------------------------------------

    def register_bolster(self, credentials: BolsterCredentials) -> None:
        """Add a facility's bolster to the facility public-key list (certificate checked)."""
        verifier, _ = credentials.verify(self._anchor, now=self._clock())
        self._facilities[credentials.bolster_id] = (
            credentials.facility_id,
            LedgerKeyVerifier(verifier),
        )

    def facility_keys(self) -> dict[str, bytes]:
        """The facility public-key list: bolster id -> ledger public key."""
        return {b: v.public_key_bytes for b, (_, v) in sorted(self._facilities.items())}

    def user_keys(self) -> dict[str, tuple[str, bytes]]:
        """The user public-key list: name -> (role, public key)."""
        return {u.name: (u.role, u.verifier.public_bytes()) for u in self.users}

    def _facility(self, bolster_id: str) -> LedgerKeyVerifier:
        try:
            return self._facilities[bolster_id][1]
        except KeyError:
            raise UnknownBolsterError(f"{bolster_id!r} is not in the facility key list") from None

    # -- checkpoints ------------------------------------------------------------------

    def witnessed(self, bolster_id: str) -> Witnessed | None:
        return self._witnessed.get(bolster_id)

    def request_checkpoint(self, bolster_id: str) -> CheckpointRequest:
        self._require_head()
        self._facility(bolster_id)
        if bolster_id in self.flagged:
            raise BolsterFlaggedError(f"{bolster_id!r} is flagged")
        last = self._witnessed.get(bolster_id)
        req = CheckpointRequest(
            self.head_id, bolster_id, last.checkpoint.tree_size if last else 0, self._rng(16)
        )
        self._pending[bolster_id] = req
        return req

    def receive_checkpoint(self, submission: CheckpointSubmission) -> Cosignature:
        """Verify and cosign; flag the bolster (and raise) on a fork, rewrite or rollback."""
        self._require_head()
        bolster = submission.bolster_id
        verifier = self._facility(bolster)
        if bolster in self.flagged:
            raise BolsterFlaggedError(f"{bolster!r} was flagged: {self.flagged[bolster]}")
        pending = self._pending.get(bolster)
        if pending is None or pending.nonce != submission.request_nonce:
            raise RequestAuthenticationError("checkpoint submission answers no pending request")
        new = submission.checkpoint
        verify_checkpoint(new, verifier)
        now = self._clock()
        if abs(now - new.time) > self._max_age:
            raise StaleRequestError(f"checkpoint of {bolster!r} is not fresh")
        last = self._witnessed.get(bolster)
        if last is not None:
            old = last.checkpoint
            try:
                if new.tree_size < old.tree_size:
                    raise ForkDetectedError(
                        f"{bolster!r} rolled its ledger back from {old.tree_size} to "
                        f"{new.tree_size} transactions",
                        first=old,
                        second=new,
                        expected=old.tree_size,
                        computed=new.tree_size,
                    )
                detect_fork(old, new, submission.proof, verifier)
            except ForkDetectedError as exc:
                self.flagged[bolster] = exc
                self._pending.pop(bolster, None)
                raise
        cosig = cosign(new, self._witness, time=now)
        self._witnessed[bolster] = Witnessed(new, cosig)
        self._pending.pop(bolster, None)
        return cosig

    def compare(self, bolster_id: str, other: SignedTreeHead) -> None:
        """Peering: check a checkpoint another head witnessed against ours.

        Two checkpoints of one size with different roots (or one block height with different
        block hashes) are a fork by themselves; the bolster is flagged. Different sizes need
        a consistency proof from the bolster (the next :meth:`request_checkpoint`).
        """
        verifier = self._facility(bolster_id)
        verify_checkpoint(other, verifier)
        mine = self._witnessed.get(bolster_id)
        if mine is None:
            return
        a = mine.checkpoint
        same_tree = a.tree_size == other.tree_size and a.root_hash != other.root_hash
        same_block = a.block_height == other.block_height and a.block_hash != other.block_hash
        if same_tree or same_block:
            exc = ForkDetectedError(
                f"{bolster_id!r} showed two heads different histories",
                first=a,
                second=other,
                expected=a.root_hash,
                computed=other.root_hash,
            )
            self.flagged[bolster_id] = exc
            raise exc
