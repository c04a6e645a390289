"""Cluster-head failover across processes: kill the head's process, and a new head is
elected within seconds, in a higher term, as seen on the bus."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from iomt.msg import ClusterHeadStatus
from iomt.nodes.cluster_head import cluster_topic
from iomt.runtime import Context, Executor, Node

from .biomt_nodes_world import NS, USERS, make_keystore, wait_for

pytestmark = [pytest.mark.dds, pytest.mark.slow]

MEMBERS = {"bolster_a": 3, "bolster_b": 2, "bolster_c": 1}


@pytest.mark.timeout(90)
def test_head_killed_new_head_elected_within_seconds(
    tmp_path: Path, domain_id: int, procs: Any
) -> None:
    make_keystore(tmp_path, [*MEMBERS, "admin", "dr_a", "wallet_p", "wallet_q", "researcher"])
    started = {}
    for name in MEMBERS:
        spec = tmp_path / f"{name}.json"
        spec.write_text(
            json.dumps(
                {
                    "nodes": [
                        {
                            "factory": "iomt.nodes.bolster:bolster_node",
                            "name": name,
                            "namespace": NS,
                            "params": {
                                "keystore": str(tmp_path / "keystore"),
                                "storage_dir": str(tmp_path / "storage"),
                                "users": USERS,
                                "cluster": {
                                    "id": "c0",
                                    "members": MEMBERS,
                                    "checkpoint_period_s": 0.5,
                                },
                            },
                        }
                    ]
                }
            )
        )
        started[name] = procs.start(
            "-m", "iomt.runtime.container", "--spec", str(spec), "--domain", str(domain_id)
        )
    ctx = Context(domain_id=domain_id)
    node = Node("watcher", context=ctx, namespace="/iomt")
    statuses: list[tuple[float, ClusterHeadStatus]] = []
    lock = threading.Lock()

    def on_status(msg: ClusterHeadStatus) -> None:
        with lock:
            statuses.append((time.monotonic(), msg))

    node.create_subscription(ClusterHeadStatus, cluster_topic("c0", "head"), on_status)
    ex = Executor(ctx)
    ex.add_node(node)
    ex.spin_in_thread()
    try:
        for proc in started.values():
            procs.wait_for_line(proc, "READY", 30)

        def heads() -> list[ClusterHeadStatus]:
            with lock:
                return [m for _, m in statuses]

        # quiet start-up: the highest-priority member is head, and witnesses everyone
        first = wait_for(
            lambda: [s for s in heads() if len(s.witnessed) == 3], 15, "a head witnessing all"
        )[0]
        assert first.head == "bolster_a"
        assert sorted(first.witnessed) == sorted(MEMBERS)
        old_term = first.term

        os.killpg(started["bolster_a"].pid, signal.SIGKILL)
        # The survivors notice the silence and elect the next in rank in a later term. The
        # wait only guards against a hang: how fast this goes (about 1.5 s here) is a
        # measurement (docs/biomt_nodes.md), not a pass/fail threshold on a shared machine.
        new = wait_for(
            lambda: [
                (t, s) for t, s in list(statuses) if s.head != "bolster_a" and s.term > old_term
            ],
            30,
            "a new head after the old one's process was killed",
        )[0]
        _t_new, status = new
        assert status.head == "bolster_b"  # the next in rank stands first
        # the new head holds the key lists and witnesses the survivors
        wait_for(
            lambda: [
                s
                for s in heads()
                if s.head == "bolster_b" and {"bolster_b", "bolster_c"} <= set(s.witnessed)
            ],
            10,
            "the new head witnessing the surviving members",
        )
        # never two heads in one term
        by_term: dict[int, set[str]] = {}
        for s in heads():
            by_term.setdefault(int(s.term), set()).add(s.head)
        assert all(len(h) == 1 for h in by_term.values()), by_term
        # done: the survivors need no graceful exit (their writers would linger for acks
        # from the dead member until its lease expires)
        for name in ("bolster_b", "bolster_c"):
            os.killpg(started[name].pid, signal.SIGKILL)
    finally:
        ex.shutdown()
        node.destroy_node()
        ex.close()
        ctx.shutdown()
