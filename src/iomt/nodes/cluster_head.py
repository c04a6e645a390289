"""The cluster layer on DDS: each bolster's membership, and the cluster head it may become.

BIoMT: "for each cluster, medical facilities elect a cluster head (CH), which communicates
with other CHs ... Each CH stores two types of public key lists: a list that contains the
public keys of users and a list of the public keys used by different facilities."
:class:`ClusterAgent` is composed into every bolster node of a cluster (it is handed the
node, the bolster's checkpoints and what it trusts, never the bolster node itself) and wires
:class:`~iomt.core.biomt.cluster_duties.ClusterDuties` -- the election, the witness rounds
and the head's duties, which decide what to do -- to the bus:

* ``/iomt/biomt/cluster/<id>/election`` -- the election's signed messages
  (``ClusterMessage``; ``to`` empty = everyone), ticked every ``tick_s``. ``(term,
  voted_for)`` is persisted (fsynced, atomically replaced) on every change, so a restarted
  member never votes twice in one term. Heartbeats every 0.5 s and a 1.5 s election timeout
  (defaults) give a new head about 2 s after the old one dies.
* each member's ``~/credentials`` and ``~/checkpoint`` -- called every
  ``checkpoint_period_s`` for a witness round (the head witnesses every member, every member
  witnesses the head);
* ``/iomt/biomt/cluster/<id>/witness`` -- the cosignatures: ours, and those that earlier
  heads published (compared with what a new head sees);
* ``/iomt/biomt/cluster/<id>/head`` -- the head announces itself, its term, the key-list
  sizes, what it witnessed and whom it flagged, every heartbeat.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from iomt.core.biomt import (
    SECOND,
    ClusterMember,
    Heartbeat,
    HeartbeatAck,
    Outgoing,
    VoteReply,
    VoteRequest,
)
from iomt.core.biomt.cluster_duties import (
    CheckpointSource,
    ClusterAction,
    ClusterDuties,
    HeadStatus,
    Note,
    PersistElection,
    PublishCosignature,
)
from iomt.core.biomt.identity import TrustAnchor, UserDirectory
from iomt.core.biomt.keys import LedgerKey
from iomt.core.biomt.witnessing import AskCheckpoint, FetchCredentials
from iomt.core.replies import ReplyChecker
from iomt.crypto.keystore import Identity, Keystore
from iomt.errors import IomtError
from iomt.msg import BolsterService, CheckpointWitness, ClusterHeadStatus, ClusterMessage
from iomt.nodes import biomt_wire as bw
from iomt.nodes.calls import Calls
from iomt.nodes.cluster_state import ElectionState
from iomt.nodes.params import Cluster
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


def _body(service: str, resp: Any) -> bytes | IomtError:
    """A reply's body, or the typed error its status is."""
    try:
        return bw.raise_for_status(service, resp)
    except IomtError as exc:
        return exc


class ClusterAgent:
    def __init__(  # noqa: PLR0913  (keyword-only: what the agent uses of its node, the bolster's cluster section and the election's timing)
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
        config: Cluster,
        tick_s: float = 0.1,
        heartbeat_s: float = 0.5,
        election_timeout_s: float = 1.5,
    ) -> None:
        self.node = node
        self._calls = calls
        self._checker = checker
        self.cluster_id = cid = config.id
        members = dict(config.members)
        self.me = node.get_name()
        self._state = ElectionState(state_path)
        term, voted_for = self._state.load()
        member = ClusterMember(
            cid,
            self.me,
            priority=int(members.get(self.me, 0)),  # not a member: refused by the duties
            signer=identity.signer,
            peers={m: (int(p), keystore.verifier(m)) for m, p in members.items() if m != self.me},
            clock=time.time_ns,
            heartbeat_period=round(heartbeat_s * SECOND),
            election_timeout=round(election_timeout_s * SECOND),
            term=term,
            voted_for=voted_for,
        )
        self.duties = ClusterDuties(
            member,
            members,
            source=ledger,
            witness_key=LedgerKey(identity.signer),
            anchor=anchor,
            users=users,
            clock=time.time_ns,
            rng=os.urandom,
            kinds=KINDS,
        )
        self._clients: dict[str, Client] = {}

        self._election_pub = node.create_publisher(
            ClusterMessage, cluster_topic(cid, "election"), 100
        )
        node.create_subscription(
            ClusterMessage, cluster_topic(cid, "election"), self._on_message, 100
        )
        self._status_pub = node.create_publisher(ClusterHeadStatus, cluster_topic(cid, "head"))
        self._witness_pub = node.create_publisher(
            CheckpointWitness, cluster_topic(cid, "witness"), 100
        )
        node.create_subscription(
            CheckpointWitness, cluster_topic(cid, "witness"), self._on_witness, 100
        )
        for m in members:
            if m != self.me:
                self._client(m, "credentials")
                self._client(m, "checkpoint")
        node.create_timer(tick_s, lambda: self._do(self.duties.tick()))
        node.create_timer(config.checkpoint_period_s, lambda: self._do(self.duties.witness_round()))

    def _on_message(self, msg: ClusterMessage) -> None:
        self._do(self.duties.receive(msg.sender, msg.to, int(msg.kind), bytes(msg.body)))

    def _on_witness(self, msg: CheckpointWitness) -> None:
        self.duties.heard(msg.witness, msg.bolster_id, bytes(msg.checkpoint))

    def _do(self, actions: list[ClusterAction]) -> None:
        for action in actions:
            if isinstance(action, PersistElection):
                self._state.save(action.state)
            elif isinstance(action, Outgoing):
                self._send(action)
            elif isinstance(action, Note):
                self.node.get_logger().log(action.level, "%s", action.message)
            elif isinstance(action, FetchCredentials):  # a nonce: the reply proves itself fresh
                answered = functools.partial(self.duties.credentials_answered, action.member)
                self._call(action.member, "credentials", os.urandom(16), answered)
            elif isinstance(action, AskCheckpoint):
                answered = functools.partial(self.duties.checkpoint_answered, action)
                self._call(action.member, "checkpoint", action.request.to_bytes(), answered)
            elif isinstance(action, PublishCosignature):
                self._publish_cosignature(action)
            else:
                self._publish_status(action)

    # -- the bus ----------------------------------------------------------------------------

    def _send(self, out: Outgoing) -> None:
        self._election_pub.publish(
            ClusterMessage(
                cluster_id=self.cluster_id,
                sender=self.me,
                to=out.to or "",
                kind=_KIND_OF[type(out.message)],
                body=out.message.to_bytes(),
            )
        )

    def _client(self, member: str, service: str) -> Client:
        key = f"{member}/{service}"
        client = self._clients.get(key)
        if client is None:
            ns = self.node.get_namespace().rstrip("/")
            client = self.node.create_client(BolsterService, f"{ns}/{member}/{service}")
            self._clients[key] = client
        return client

    def _call(
        self, member: str, service: str, body: bytes, answered: Callable[[Any], list[ClusterAction]]
    ) -> None:
        """Call ``member``'s ``~/<service>``; its answer (None: none) goes to ``answered``."""
        ask = BolsterService.Request(requester=self.me, body=body)
        self._calls.call(
            self._client(member, service),
            ask,
            timeout_s=2.0,
            on_done=lambda resp: self._do(answered(_body(service, resp))),
            on_error=lambda _exc: self._do(answered(None)),
            accept=bw.reply_check(self._checker, f"bolster/{service}", member, ask),
        )

    def _publish_cosignature(self, c: PublishCosignature) -> None:
        self._witness_pub.publish(
            CheckpointWitness(
                cluster_id=self.cluster_id,
                witness=self.me,
                term=c.term,
                bolster_id=c.bolster_id,
                tree_size=c.checkpoint.tree_size,
                checkpoint=c.checkpoint.to_bytes(),
                cosignature=c.cosignature.to_bytes(),
            )
        )

    def _publish_status(self, s: HeadStatus) -> None:
        self._status_pub.publish(
            ClusterHeadStatus(
                cluster_id=self.cluster_id,
                head=s.head,
                term=s.term,
                members=list(s.members),
                users=s.users,
                facilities=s.facilities,
                witnessed=list(s.witnessed),
                flagged=list(s.flagged),
                flag_reasons=list(s.flag_reasons),
                stamp=bw.time_msg(s.time),
            )
        )

    def summary(self) -> dict[str, Any]:
        return self.duties.summary()
