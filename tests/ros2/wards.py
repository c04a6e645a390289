"""A running ward for the ROS 2 tests: a scale_N plan, provisioned and launched."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from iomt.launch.provision import provision
from iomt.launch.service import LaunchService
from iomt.topology import LaunchPlan, load
from iomt.topology.spec import NodeSpec


@contextlib.contextmanager
def ward(
    run_dir: Path,
    domain_id: int,
    *,
    runtime: str = "embedded",
    peer: Any = None,
    mode: str = "distributed",
    devices: int = 10,
    requests: int = 20,
    robots: int = 0,
    record: bool = True,
) -> Iterator[tuple[LaunchPlan, LaunchService]]:
    plan = load(
        f"scale_{devices}",
        mode=mode,
        run_dir=str(run_dir),
        requests=requests,
        concurrency=1,
        record=record,
        record_services=runtime == "embedded",
        robots=robots,
        start_delay_s=1.0,
    )
    provision(plan)
    service = LaunchService(
        plan,
        run_dir=run_dir,
        domain_id=domain_id,
        runtime=runtime,
        python=peer.python if peer is not None else None,
        extra_env=peer.env if peer is not None else None,
    )
    try:
        service.start(ready_timeout_s=120)
        yield plan, service
    finally:
        service.stop()


def nodes_of(plan: LaunchPlan) -> list[NodeSpec]:
    return [n for p in plan.processes for n in p.nodes]


def fqn(node: NodeSpec) -> str:
    return f"{node.namespace.rstrip('/')}/{node.name}"
