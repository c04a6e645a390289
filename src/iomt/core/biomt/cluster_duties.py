"""A bolster's part in its cluster, sans-IO: electing, witnessing and, once elected, heading
(BIoMT §II-A (4); docs/architecture.md, "Where each paper's algorithm lives").

:class:`ClusterDuties` composes the election (:class:`~.cluster.ClusterMember`), the witness
rounds (:class:`~.witnessing.WitnessRounds`) and the head's duties
(:class:`~.cluster.ClusterHead`, created when its member is elected) and decides what to do
on each input -- an election message, a tick, a witness round, a member's credentials or
checkpoint, a cosignature another witness published -- by returning actions:

* :class:`~.cluster.Outgoing` -- an election message to send;
* :class:`PersistElection` -- ``(term, voted_for)`` to keep (before anything is sent, so a
  restarted member never votes twice in one term);
* :class:`~.witnessing.FetchCredentials`, :class:`~.witnessing.AskCheckpoint` -- calls to
  make, whose answers come back through :meth:`ClusterDuties.credentials_answered` and
  :meth:`ClusterDuties.checkpoint_answered`;
* :class:`PublishCosignature`, :class:`HeadStatus` -- what the cluster hears of us;
* :class:`Note` -- what is worth a log line.

While its member is head, the duties run a :class:`~.cluster.ClusterHead`: the facility key
list (each member's certified ledger key, fetched from its ``~/credentials`` and checked
against the facility CA) and the user key list (the bolster's user directory); every round
it asks each member for a fresh signed checkpoint and a consistency proof from the last one
it cosigned, verifies both and cosigns. A member whose log was forked, rewritten or rolled
back cannot produce a valid proof: it is flagged (and stays flagged), and the status says
so. Every member also witnesses the head's checkpoints the same way, so the head's own log
is checked by others, not only by itself.

The node (iomt.nodes.cluster_head) converts messages at the bus and performs the actions.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from iomt.errors import IomtError
from iomt.ledger import Cosignature, ForkDetectedError, LedgerSigner, SignedTreeHead

from .clock import ClockNs, Rng
from .cluster import (
    CheckpointRequest,
    CheckpointSubmission,
    ClusterHead,
    ClusterMember,
    ElectionMessage,
    Outgoing,
)
from .errors import BiomtDecodeError, UnknownBolsterError
from .identity import BolsterCredentials, TrustAnchor, UserDirectory
from .witnessing import AskCheckpoint, FetchCredentials, Flagged, WitnessRounds

__all__ = [
    "CheckpointSource",
    "ClusterAction",
    "ClusterDuties",
    "HeadStatus",
    "Note",
    "PersistElection",
    "PublishCosignature",
]

#: longest flag reason a status carries
_REASON_CHARS = 200


class CheckpointSource(Protocol):
    """What the duties need of their own bolster: its certified key and its checkpoints."""

    @property
    def credentials(self) -> BolsterCredentials: ...

    def answer_checkpoint(self, request: CheckpointRequest) -> CheckpointSubmission: ...


@dataclass(frozen=True, slots=True)
class PersistElection:
    """Keep ``(term, voted_for)`` across restarts (durably, before sending what follows)."""

    state: tuple[int, str | None]


@dataclass(frozen=True, slots=True)
class PublishCosignature:
    """We cosigned ``bolster_id``'s checkpoint (as head, or as a member witnessing the head)."""

    term: int
    bolster_id: str
    checkpoint: SignedTreeHead
    cosignature: Cosignature


@dataclass(frozen=True, slots=True)
class HeadStatus:
    """The head announces itself: its term, the key-list sizes, whom it witnessed, whom it
    flagged and why (each reason cut to 200 characters)."""

    head: str
    term: int
    members: tuple[str, ...]
    users: int
    facilities: int
    witnessed: tuple[str, ...]
    flagged: tuple[str, ...]
    flag_reasons: tuple[str, ...]
    time: int  # ns, the duties' clock


@dataclass(frozen=True, slots=True)
class Note:
    """Worth a log line at ``level`` (a :mod:`logging` level)."""

    level: int
    message: str


ClusterAction = (
    Outgoing
    | PersistElection
    | FetchCredentials
    | AskCheckpoint
    | PublishCosignature
    | HeadStatus
    | Note
)


class ClusterDuties:
    """One bolster's election, witnessing and head duties (see the module docstring)."""

    def __init__(
        self,
        member: ClusterMember,
        members: Mapping[str, int],
        *,
        source: CheckpointSource,
        witness_key: LedgerSigner,
        anchor: TrustAnchor,
        users: UserDirectory,
        clock: ClockNs,
        rng: Rng,
        kinds: Mapping[int, type[ElectionMessage]],
    ) -> None:
        self.member = member
        self.me = member.member_id
        self.cluster_id = member.cluster_id
        if self.me not in members:
            raise IomtError(f"{self.me} is not a member of cluster {self.cluster_id}")
        self.members = dict(members)
        self._source = source
        self._witness_key = witness_key
        self._anchor = anchor
        self._users = users
        self._clock = clock
        self._rng = rng
        self._kinds = dict(kinds)
        # as a member, we witness the head's checkpoints (no membership: not as head)
        self.rounds = WitnessRounds(self.me, members, member, peer_witness=self._witness())
        self.head_terms: list[int] = []
        self.rejected = 0  # election and witness messages refused
        self.witnessed = 0  # checkpoints we cosigned
        self._last_status: int | None = None

    def _witness(self, membership: ClusterMember | None = None) -> ClusterHead:
        return ClusterHead(
            self.me,
            self._witness_key,
            anchor=self._anchor,
            users=self._users,
            clock=self._clock,
            rng=self._rng,
            membership=membership,
        )

    @property
    def head(self) -> ClusterHead | None:
        """Our head duties while our member is head."""
        return self.rounds.head

    # -- election ---------------------------------------------------------------------------

    def receive(self, sender: str, to: str, kind: int, body: bytes) -> list[ClusterAction]:
        """An election message of wire ``kind`` heard on the cluster's topic (``to`` empty:
        everyone)."""
        if sender == self.me or (to and to != self.me):
            return []
        cls = self._kinds.get(kind)
        try:
            if cls is None:
                raise BiomtDecodeError(f"unknown election message kind {kind}")
            out = self.member.receive(cls.from_bytes(body))
        except IomtError as exc:
            self.rejected += 1
            return [Note(logging.DEBUG, f"election message from {sender} refused: {exc}")]
        return [PersistElection(self.member.state), *out, *self._roles()]

    def tick(self) -> list[ClusterAction]:
        """Every ``tick_s``: heartbeats and elections; the head's status every heartbeat."""
        out = self.member.tick()
        actions: list[ClusterAction] = [PersistElection(self.member.state), *out]
        actions += self._roles()
        due = self._last_status is None or (
            self._clock() - self._last_status >= self.member.heartbeat_period
        )
        if self.head is not None and due:
            actions += self._status()
        return actions

    def _roles(self) -> list[ClusterAction]:
        if self.member.is_head and self.head is None:
            return self._become_head()
        if not self.member.is_head and self.head is not None:
            self.rounds.head = None
            return [Note(logging.WARNING, f"{self.me}: no longer cluster head")]
        return []

    def _become_head(self) -> list[ClusterAction]:
        head = self.rounds.head = self._witness(self.member)
        self.head_terms.append(self.member.term)
        note = Note(
            logging.WARNING,
            f"{self.me}: cluster head of {self.cluster_id} in term {self.member.term}",
        )
        head.register_bolster(self._source.credentials)
        for creds in self.rounds.credentials.values():
            head.register_bolster(creds)
        return [note, *self._status()]

    # -- witnessing -------------------------------------------------------------------------

    def witness_round(self) -> list[ClusterAction]:
        """Every ``checkpoint_period_s``: what to fetch and ask; our own checkpoint is
        answered here (by the source) rather than asked for."""
        actions: list[ClusterAction] = []
        for action in self.rounds.round():
            if isinstance(action, FetchCredentials):
                actions.append(action)
            elif isinstance(action, Flagged):
                actions.append(Note(logging.ERROR, f"{action.member} flagged: {action.error}"))
            elif not isinstance(action, AskCheckpoint):  # Skipped
                what = "cannot compare" if action.what == "compare" else "no checkpoint request for"
                actions.append(Note(logging.INFO, f"{what} {action.member}: {action.error}"))
            elif action.member == self.me:
                own = self._source.answer_checkpoint(action.request)
                actions += self._receive(action.witness, own)
            else:
                actions.append(action)
        return actions

    def credentials_answered(
        self, member: str, reply: bytes | IomtError | None
    ) -> list[ClusterAction]:
        """``member``'s ``~/credentials`` call ended: with a body, the error its status is,
        or no answer (None: fetched again next round)."""
        if reply is None:
            return []
        try:
            if isinstance(reply, IomtError):
                raise reply
            creds = BolsterCredentials.from_bytes(reply)
            if creds.bolster_id != member:
                raise UnknownBolsterError(f"credentials of {creds.bolster_id} from {member}")
            self.rounds.registered(member, creds)  # validated against the facility CA
        except IomtError as exc:
            return [Note(logging.WARNING, f"credentials of {member} refused: {exc}")]
        return []

    def checkpoint_answered(
        self, ask: AskCheckpoint, reply: bytes | IomtError | None
    ) -> list[ClusterAction]:
        """``ask``'s call ended: with a body, the error its status is, or no answer (None:
        asked again next round)."""
        self.rounds.answered(ask.member)
        if reply is None:
            return []
        try:
            if isinstance(reply, IomtError):
                raise reply
            submission = CheckpointSubmission.from_bytes(reply)
        except IomtError as exc:
            return [Note(logging.INFO, f"checkpoint of {ask.member}: {exc}")]
        return self._receive(ask.witness, submission)

    def _receive(
        self, witness: ClusterHead, submission: CheckpointSubmission
    ) -> list[ClusterAction]:
        bolster = submission.bolster_id
        try:
            cosig = witness.receive_checkpoint(submission)
        except ForkDetectedError as exc:
            return [Note(logging.ERROR, f"{bolster} flagged: {exc}"), *self._status()]
        except IomtError as exc:
            return [Note(logging.INFO, f"checkpoint of {bolster} refused: {exc}")]
        self.witnessed += 1
        return [PublishCosignature(self.member.term, bolster, submission.checkpoint, cosig)]

    def heard(self, witness: str, bolster_id: str, checkpoint: bytes) -> None:
        """Another witness cosigned ``bolster_id``'s checkpoint: compared with what we see
        once we are head."""
        if self.me in (witness, bolster_id) or bolster_id not in self.members:
            return
        try:
            self.rounds.heard[bolster_id] = SignedTreeHead.from_bytes(checkpoint)
        except IomtError:
            self.rejected += 1

    # -- what the cluster hears of us -------------------------------------------------------

    def _status(self) -> list[ClusterAction]:
        head = self.head
        if head is None:
            return []
        now = self._last_status = self._clock()
        flagged = sorted(head.flagged)
        return [
            HeadStatus(
                head=self.me,
                term=self.member.term,
                members=tuple(sorted(self.members)),
                users=len(head.user_keys()),
                facilities=len(head.facility_keys()),
                witnessed=tuple(b for b in sorted(self.members) if head.witnessed(b) is not None),
                flagged=tuple(flagged),
                flag_reasons=tuple(str(head.flagged[b])[:_REASON_CHARS] for b in flagged),
                time=now,
            )
        ]

    def summary(self) -> dict[str, Any]:
        """What a run's results say of this member."""
        return {
            "cluster": self.cluster_id,
            "term": self.member.term,
            "is_head": self.member.is_head,
            "head_terms": self.head_terms,
            "witnessed": self.witnessed,
            "flagged": sorted(self.head.flagged) if self.head is not None else [],
            "flagged_as_member": sorted(self.rounds.peer_witness.flagged),
            "rejected_messages": self.rejected,
        }
