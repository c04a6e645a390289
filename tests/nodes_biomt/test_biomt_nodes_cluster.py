"""Cluster layer over DDS in one process: a deterministic head witnesses its members'
checkpoints, and a member whose log was rolled back is flagged on the bus."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from iomt.core.biomt import Requester
from iomt.core.biomt.keys import LedgerKeyVerifier
from iomt.ledger import SignedTreeHead, verify_checkpoint
from iomt.msg import BolsterService, CheckpointWitness, ClusterHeadStatus
from iomt.nodes.bolster import BolsterNode
from iomt.nodes.cluster_head import cluster_topic
from iomt.nodes.params import BolsterParams
from iomt.runtime import Context, Executor, Node

from .biomt_nodes_world import NS, USERS, make_keystore, wait_for

pytestmark = [pytest.mark.dds]

MEMBERS = {"bolster_a": 3, "bolster_b": 2, "bolster_c": 1}


def _bolster(ctx: Context, root: Path, name: str, storage: str) -> BolsterNode:
    return BolsterNode(
        ctx,
        name=name,
        namespace=NS,
        config=BolsterParams.from_mapping(
            {
                "keystore": str(root / "keystore"),
                "storage_dir": str(root / storage),
                "users": USERS,
                "synchronous": "NORMAL",
                "cluster": {"id": "c0", "members": MEMBERS, "checkpoint_period_s": 0.3},
            }
        ),
    )


@pytest.mark.timeout(60)
def test_head_witnesses_checkpoints_and_flags_a_rolled_back_log(
    tmp_path: Path, domain_id: int
) -> None:
    ks = make_keystore(tmp_path)
    ctx = Context(domain_id=domain_id)
    ex = Executor(ctx)
    bolsters = {n: _bolster(ctx, tmp_path, n, "storage") for n in MEMBERS}
    me = Node("watcher", context=ctx, namespace="/iomt")
    statuses: list[ClusterHeadStatus] = []
    witnessed: list[CheckpointWitness] = []
    me.create_subscription(ClusterHeadStatus, cluster_topic("c0", "head"), statuses.append)
    me.create_subscription(CheckpointWitness, cluster_topic("c0", "witness"), witnessed.append, 100)
    for n in [*bolsters.values(), me]:
        ex.add_node(n)
    ex.spin_in_thread()
    try:
        # deterministic: the highest-priority member stands first and wins
        first = wait_for(lambda: statuses, 10, "a head")[0]
        assert (first.head, first.members) == ("bolster_a", sorted(MEMBERS))
        assert first.users == len(USERS)
        # log three (denied) Accesses at bolster_c, and wait until the head cosigned them
        nosy = Requester(
            "researcher", ks.identity("researcher").signer, clock=time.time_ns, rng=os.urandom
        )
        client = me.create_client(BolsterService, f"{NS}/bolster_c/access")
        assert client.wait_for_service(5)
        for _ in range(3):
            resp = client.call(
                BolsterService.Request(body=nosy.access("bolster_c", "dev-x").to_bytes()), 5
            )
            assert resp.status == BolsterService.Response.STATUS_DENIED
        seen = wait_for(
            lambda: [w for w in witnessed if w.bolster_id == "bolster_c" and w.tree_size >= 3],
            10,
            "a cosigned checkpoint of bolster_c at size 3",
        )[0]
        sth = SignedTreeHead.from_bytes(bytes(seen.checkpoint))
        verify_checkpoint(sth, LedgerKeyVerifier(ks.verifier("bolster_c")))
        assert {w.bolster_id for w in witnessed} == set(MEMBERS)
        # the head cosigns the members; the members cosign the head
        assert all(w.witness == "bolster_a" for w in witnessed if w.bolster_id != "bolster_a")
        wait_for(
            lambda: (
                {w.witness for w in witnessed if w.bolster_id == "bolster_a"}
                >= {"bolster_b", "bolster_c"}
            ),
            10,
            "the members witnessing the head",
        )

        # roll bolster_c's ledger back: same keys, an empty log in its place
        ex.remove_node(bolsters["bolster_c"])
        bolsters["bolster_c"].destroy_node()
        (tmp_path / "storage" / "bolster_c.ledger.sqlite").unlink()
        for suffix in ("-wal", "-shm"):
            (tmp_path / "storage" / f"bolster_c.ledger.sqlite{suffix}").unlink(missing_ok=True)
        bolsters["bolster_c"] = _bolster(ctx, tmp_path, "bolster_c", "storage")
        ex.add_node(bolsters["bolster_c"])
        flagged = wait_for(
            lambda: [s for s in statuses if "bolster_c" in s.flagged], 10, "bolster_c flagged"
        )[0]
        assert flagged.head == "bolster_a"
        assert "roll" in flagged.flag_reasons[list(flagged.flagged).index("bolster_c")]
    finally:
        ex.shutdown()
        for n in [*bolsters.values(), me]:
            n.destroy_node()
        ex.close()
        ctx.shutdown()
