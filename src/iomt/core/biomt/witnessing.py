"""Who witnesses whom in a cluster, and when (BIoMT's cluster heads), sans-IO.

Every ``checkpoint_period_s`` a witness round runs: the head witnesses every member (itself
included); a member witnesses the head, so the head's own log is checked by others too. A
member is first registered (its certified ledger key fetched from its ``~/credentials``),
then asked for a fresh signed checkpoint and a consistency proof, one request at a time per
member. A flagged member (its log forked, rewritten or rolled back) is not asked again.
Before a new head asks, what earlier heads cosigned for a member (heard on the witness
topic) is compared with what it sees, so a member showing two heads two histories is caught.

:class:`WitnessRounds` plans a round and returns what to do (:class:`FetchCredentials`,
:class:`AskCheckpoint`) and what happened that is worth a log line (:class:`Flagged`,
:class:`Skipped`); the node makes the calls and feeds the answers to the witness
(:meth:`~iomt.core.biomt.ClusterHead.receive_checkpoint`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from iomt.errors import IomtError
from iomt.ledger import ForkDetectedError, SignedTreeHead

from .cluster import CheckpointRequest, ClusterHead, ClusterMember
from .identity import BolsterCredentials

__all__ = [
    "AskCheckpoint",
    "FetchCredentials",
    "Flagged",
    "Skipped",
    "WitnessAction",
    "WitnessRounds",
]


@dataclass(frozen=True, slots=True)
class FetchCredentials:
    """Fetch ``member``'s credentials (it is not registered yet)."""

    member: str


@dataclass(frozen=True, slots=True)
class AskCheckpoint:
    """Ask ``member`` for this checkpoint (``witness`` takes the answer); a remote member's
    request is outstanding until :meth:`WitnessRounds.answered`."""

    member: str
    witness: ClusterHead
    request: CheckpointRequest


@dataclass(frozen=True, slots=True)
class Flagged:
    """Comparing what an earlier head cosigned with what we see caught a fork."""

    member: str
    error: ForkDetectedError


@dataclass(frozen=True, slots=True)
class Skipped:
    """No comparison or no checkpoint request for ``member`` this round (why: ``error``)."""

    member: str
    what: str  # "compare" | "request"
    error: IomtError


WitnessAction = FetchCredentials | AskCheckpoint | Flagged | Skipped


@dataclass
class WitnessRounds:
    me: str
    members: Iterable[str]
    member: ClusterMember
    #: as a member, we witness the head's checkpoints (not as head)
    peer_witness: ClusterHead
    head: ClusterHead | None = None
    credentials: dict[str, BolsterCredentials] = field(default_factory=dict)
    #: what other witnesses cosigned: compared with what we see once we are head
    heard: dict[str, SignedTreeHead] = field(default_factory=dict)
    _busy: set[str] = field(init=False, default_factory=set)

    def __post_init__(self) -> None:
        self.members = list(self.members)

    def registered(self, member: str, credentials: BolsterCredentials) -> None:
        """``member``'s credentials, validated (against the facility CA) by the witnesses."""
        for witness in (self.head, self.peer_witness):
            if witness is not None:
                witness.register_bolster(credentials)
        self.credentials[member] = credentials

    def answered(self, member: str) -> None:
        """``member``'s checkpoint call ended (answered or not)."""
        self._busy.discard(member)

    def round(self) -> list[WitnessAction]:
        """The head witnesses every member (itself included); a member witnesses the head."""
        if self.head is not None:
            witness, targets = self.head, list(self.members)
        elif self.member.leader not in (None, self.me):
            witness, targets = self.peer_witness, [str(self.member.leader)]
        else:
            return []
        actions: list[WitnessAction] = []
        for member in targets:
            if member != self.me and member not in self.credentials:
                actions.append(FetchCredentials(member))
                continue
            if member in witness.flagged or member in self._busy:
                continue
            if witness is self.head:
                actions += self._compare_heard(witness, member)
                if member in witness.flagged:
                    continue
            try:
                request = witness.request_checkpoint(member)
            except IomtError as exc:
                actions.append(Skipped(member, "request", exc))
                continue
            if member != self.me:
                self._busy.add(member)
            actions.append(AskCheckpoint(member, witness, request))
        return actions

    def _compare_heard(self, head: ClusterHead, member: str) -> list[WitnessAction]:
        heard = self.heard.pop(member, None)
        if heard is None:
            return []
        try:
            head.compare(member, heard)
        except ForkDetectedError as exc:
            return [Flagged(member, exc)]
        except IomtError as exc:
            return [Skipped(member, "compare", exc)]
        return []
