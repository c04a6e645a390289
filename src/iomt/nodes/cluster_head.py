"""The cluster layer on DDS: each bolster's membership, and the cluster head it may become.

BIoMT: "for each cluster, medical facilities elect a cluster head (CH), which communicates
with other CHs ... Each CH stores two types of public key lists: a list that contains the
public keys of users and a list of the public keys used by different facilities."
:class:`ClusterAgent` is composed into every bolster node of a cluster (it is handed the
node, the bolster's checkpoints and what it trusts, never the bolster node itself) and wires
the sans-IO objects of :mod:`iomt.core.biomt.cluster` to the bus:

* **election** -- :class:`~iomt.core.biomt.ClusterMember` (Raft-style terms, pre-vote,
  leader stickiness, signed messages) ticked every ``tick_s``; its messages travel on
  ``/iomt/biomt/cluster/<id>/election`` (``ClusterMessage``; ``to`` empty = everyone).
  ``(term, voted_for)`` is persisted (fsynced, atomically replaced) on every change, so a
  restarted member never votes twice in one term. Heartbeats every 0.5 s and a 1.5 s
  election timeout (defaults) give a new head about 2 s after the old one dies.
* **cross-signing** -- every member also witnesses the head's checkpoints the same way
  (so the head's own log is checked by others, not only by itself).
* **head duties** -- while its member is head, the agent runs a
  :class:`~iomt.core.biomt.ClusterHead`: the facility key list (each member's certified
  ledger key, fetched from its ``~/credentials`` and checked against the facility CA) and
  the user key list (the bolster's user directory); every ``checkpoint_period_s`` it asks
  each member's ``~/checkpoint`` for a fresh signed checkpoint and a consistency proof from
  the last one it cosigned, verifies both, cosigns, and publishes the cosignature on
  ``/iomt/biomt/cluster/<id>/witness``. A member whose log was forked, rewritten or rolled
  back cannot produce a valid proof: it is flagged (and stays flagged). Checkpoints that
  *earlier* heads cosigned (heard on the witness topic) are compared with what the new
  head sees (:meth:`ClusterHead.compare`), so a member showing two heads two histories is
  caught too.
* **status** -- the head announces itself, its term, the key-list sizes, what it witnessed
  and whom it flagged on ``/iomt/biomt/cluster/<id>/head`` every heartbeat.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Protocol

from iomt.core.biomt import (
    SECOND,
    BolsterCredentials,
    CheckpointRequest,
    CheckpointSubmission,
    ClusterHead,
    ClusterMember,
    Heartbeat,
    HeartbeatAck,
    Outgoing,
    VoteReply,
    VoteRequest,
)
from iomt.core.biomt.identity import TrustAnchor, UserDirectory
from iomt.core.biomt.keys import LedgerKey
from iomt.core.biomt.witnessing import (
    AskCheckpoint,
    FetchCredentials,
    Flagged,
    Skipped,
    WitnessRounds,
)
from iomt.core.replies import ReplyChecker
from iomt.crypto.keystore import Identity, Keystore
from iomt.errors import IomtError
from iomt.ledger import ForkDetectedError, SignedTreeHead
from iomt.msg import BolsterService, CheckpointWitness, ClusterHeadStatus, ClusterMessage
from iomt.nodes import biomt_wire as bw
from iomt.nodes.calls import Calls
from iomt.nodes.cluster_state import ElectionState
from iomt.runtime import Client, Node

__all__ = ["KINDS", "CheckpointSource", "ClusterAgent", "cluster_topic"]

KINDS: dict[int, Any] = {
    ClusterMessage.HEARTBEAT: Heartbeat,
    ClusterMessage.HEARTBEAT_ACK: HeartbeatAck,
    ClusterMessage.VOTE_REQUEST: VoteRequest,
    ClusterMessage.VOTE_REPLY: VoteReply,
}
_KIND_OF = {cls: kind for kind, cls in KINDS.items()}


def cluster_topic(cluster_id: str, what: str) -> str:
    return f"/iomt/biomt/cluster/{cluster_id}/{what}"


class CheckpointSource(Protocol):
    """What the agent needs of its own bolster: its certified key and its checkpoints."""

    @property
    def credentials(self) -> BolsterCredentials: ...

    def answer_checkpoint(self, request: CheckpointRequest) -> CheckpointSubmission: ...


class ClusterAgent:
    def __init__(  # noqa: PLR0913  (keyword-only: the cluster section of the bolster's parameters and what the agent uses of its node)
        self,
        node: Node,
        *,
        ledger: CheckpointSource,
        anchor: TrustAnchor,
        users: UserDirectory,
        calls: Calls,
        checker: ReplyChecker,
        keystore: Keystore,
        identity: Identity,
        state_path: Path,
        id: str,
        members: dict[str, int],
        tick_s: float = 0.1,
        heartbeat_s: float = 0.5,
        election_timeout_s: float = 1.5,
        checkpoint_period_s: float = 2.0,
    ) -> None:
        self.node = node
        self._ledger = ledger
        self._anchor = anchor
        self._users = users
        self._calls = calls
        self._checker = checker
        self.cluster_id = id
        self.me = node.get_name()
        if self.me not in members:
            raise IomtError(f"{self.me} is not a member of cluster {id}")
        self.members = dict(members)
        self._identity = identity
        self._state = ElectionState(state_path)
        term, voted_for = self._state.load()
        peers = {m: (int(p), keystore.verifier(m)) for m, p in members.items() if m != self.me}
        self.member = ClusterMember(
            id,
            self.me,
            priority=int(members[self.me]),
            signer=identity.signer,
            peers=peers,
            clock=time.time_ns,
            heartbeat_period=round(heartbeat_s * SECOND),
            election_timeout=round(election_timeout_s * SECOND),
            term=term,
            voted_for=voted_for,
        )
        self.rounds = WitnessRounds(
            self.me,
            members,
            self.member,
            # as a member, we witness the head's checkpoints (membership=None: not as head)
            peer_witness=ClusterHead(
                self.me,
                LedgerKey(identity.signer),
                anchor=anchor,
                users=users,
                clock=time.time_ns,
                rng=os.urandom,
            ),
        )
        self.head_terms: list[int] = []
        self.rejected = 0
        self._clients: dict[str, Client] = {}
        self._last_status = 0.0
        self._heartbeat_s = heartbeat_s
        self.witnessed = 0

        self._election_pub = node.create_publisher(
            ClusterMessage, cluster_topic(id, "election"), 100
        )
        node.create_subscription(
            ClusterMessage, cluster_topic(id, "election"), self._on_message, 100
        )
        self._status_pub = node.create_publisher(ClusterHeadStatus, cluster_topic(id, "head"))
        self._witness_pub = node.create_publisher(
            CheckpointWitness, cluster_topic(id, "witness"), 100
        )
        node.create_subscription(
            CheckpointWitness, cluster_topic(id, "witness"), self._on_witness, 100
        )
        for m in members:
            if m != self.me:
                self._client(m, "credentials")
                self._client(m, "checkpoint")
        node.create_timer(tick_s, self._tick)
        node.create_timer(checkpoint_period_s, self._witness_round)

    # -- election ---------------------------------------------------------------------------

    def _send(self, out: list[Outgoing]) -> None:
        for o in out:
            self._election_pub.publish(
                ClusterMessage(
                    cluster_id=self.cluster_id,
                    sender=self.me,
                    to=o.to or "",
                    kind=_KIND_OF[type(o.message)],
                    body=o.message.to_bytes(),
                )
            )

    def _on_message(self, msg: ClusterMessage) -> None:
        if msg.sender == self.me or (msg.to and msg.to != self.me):
            return
        cls = KINDS.get(int(msg.kind))
        try:
            if cls is None:
                raise bw.MalformedResponseError(f"unknown election message kind {msg.kind}")
            out = self.member.receive(cls.from_bytes(bytes(msg.body)))
        except IomtError as exc:
            self.rejected += 1
            self.node.get_logger().debug("election message from %s refused: %s", msg.sender, exc)
            return
        self._state.save(self.member.state)
        self._send(out)
        self._roles()

    def _tick(self) -> None:
        self._send(self.member.tick())
        self._state.save(self.member.state)
        self._roles()
        if self.head is not None and time.monotonic() - self._last_status >= self._heartbeat_s:
            self._publish_status()

    def _roles(self) -> None:
        if self.member.is_head and self.head is None:
            self._become_head()
        elif not self.member.is_head and self.head is not None:
            self.node.get_logger().warning("%s: no longer cluster head", self.me)
            self.rounds.head = None

    @property
    def head(self) -> ClusterHead | None:
        return self.rounds.head

    # -- head duties ------------------------------------------------------------------------

    def _client(self, member: str, service: str) -> Client:
        key = f"{member}/{service}"
        client = self._clients.get(key)
        if client is None:
            ns = self.node.get_namespace().rstrip("/")
            client = self.node.create_client(BolsterService, f"{ns}/{member}/{service}")
            self._clients[key] = client
        return client

    def _become_head(self) -> None:
        head = self.rounds.head = ClusterHead(
            self.me,
            LedgerKey(self._identity.signer),
            anchor=self._anchor,
            users=self._users,
            clock=time.time_ns,
            rng=os.urandom,
            membership=self.member,
        )
        self.head_terms.append(self.member.term)
        self.node.get_logger().warning(
            "%s: cluster head of %s in term %d", self.me, self.cluster_id, self.member.term
        )
        head.register_bolster(self._ledger.credentials)
        for creds in self.rounds.credentials.values():
            head.register_bolster(creds)
        self._publish_status()

    def _register(self, member: str) -> None:
        """Fetch a member's credentials (once) and add it to the facility key list."""

        def done(resp: Any) -> None:
            try:
                creds = BolsterCredentials.from_bytes(bw.raise_for_status("credentials", resp))
                if creds.bolster_id != member:
                    raise bw.BolsterRefusedError(f"credentials of {creds.bolster_id} from {member}")
                self.rounds.registered(member, creds)  # validated against the facility CA
            except IomtError as exc:
                self.node.get_logger().warning("credentials of %s refused: %s", member, exc)

        ask = BolsterService.Request(requester=self.me, body=os.urandom(16))
        self._calls.call(
            self._client(member, "credentials"),
            ask,
            timeout_s=2.0,
            on_done=done,
            on_error=lambda exc: None,
            accept=bw.reply_check(self._checker, "bolster/credentials", member, ask),
        )

    def _witness_round(self) -> None:
        log = self.node.get_logger()
        for action in self.rounds.round():
            if isinstance(action, FetchCredentials):
                self._register(action.member)
            elif isinstance(action, Flagged):
                log.error("%s flagged: %s", action.member, action.error)
            elif isinstance(action, Skipped):
                what = "cannot compare" if action.what == "compare" else "no checkpoint request for"
                log.info("%s %s: %s", what, action.member, action.error)
            elif action.member == self.me:
                self._receive(action.witness, self._ledger.answer_checkpoint(action.request))
            else:
                self._ask_checkpoint(action)

    def _ask_checkpoint(self, action: AskCheckpoint) -> None:
        member = action.member

        def done(resp: Any) -> None:
            self.rounds.answered(member)
            try:
                sub = CheckpointSubmission.from_bytes(bw.raise_for_status("checkpoint", resp))
            except IomtError as exc:
                self.node.get_logger().info("checkpoint of %s: %s", member, exc)
                return
            self._receive(action.witness, sub)

        ask = BolsterService.Request(requester=self.me, body=action.request.to_bytes())
        self._calls.call(
            self._client(member, "checkpoint"),
            ask,
            timeout_s=2.0,
            on_done=done,
            on_error=lambda _exc: self.rounds.answered(member),
            accept=bw.reply_check(self._checker, "bolster/checkpoint", member, ask),
        )

    def _receive(self, witness: ClusterHead, submission: CheckpointSubmission) -> None:
        try:
            cosig = witness.receive_checkpoint(submission)
        except ForkDetectedError as exc:
            self.node.get_logger().error("%s flagged: %s", submission.bolster_id, exc)
            self._publish_status()
            return
        except IomtError as exc:
            self.node.get_logger().info("checkpoint of %s refused: %s", submission.bolster_id, exc)
            return
        self.witnessed += 1
        sth = submission.checkpoint
        self._witness_pub.publish(
            CheckpointWitness(
                cluster_id=self.cluster_id,
                witness=self.me,
                term=self.member.term,
                bolster_id=submission.bolster_id,
                tree_size=sth.tree_size,
                checkpoint=sth.to_bytes(),
                cosignature=cosig.to_bytes(),
            )
        )

    def _on_witness(self, msg: CheckpointWitness) -> None:
        # what other witnesses cosigned: compared with what we see once we are head
        if self.me in (msg.witness, msg.bolster_id) or msg.bolster_id not in self.members:
            return
        try:
            self.rounds.heard[str(msg.bolster_id)] = SignedTreeHead.from_bytes(
                bytes(msg.checkpoint)
            )
        except IomtError:
            self.rejected += 1

    def _publish_status(self) -> None:
        head = self.head
        if head is None:
            return
        self._last_status = time.monotonic()
        flagged = sorted(head.flagged)
        now = time.time_ns()
        self._status_pub.publish(
            ClusterHeadStatus(
                cluster_id=self.cluster_id,
                head=self.me,
                term=self.member.term,
                members=sorted(self.members),
                users=len(head.user_keys()),
                facilities=len(head.facility_keys()),
                witnessed=sorted(b for b in self.members if head.witnessed(b) is not None),
                flagged=flagged,
                flag_reasons=[str(head.flagged[b])[:200] for b in flagged],
                stamp=bw.time_msg(now),
            )
        )

    def summary(self) -> dict[str, Any]:
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
