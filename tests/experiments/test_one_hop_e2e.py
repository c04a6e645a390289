"""The one-hop claim end to end: real processes on a private DDS domain, the traffic
recorded, and every readable reading followed by where its sender and receiver stand on
the ward's radio graph — not by the kind of message or the topic that carried it.

The ward (radio range 10 m; a link needs both ends within range)::

    bp_2 ecc (0, 14)                            two hops above hr_0, through bp_0
      |
    bp_0 ecc (0, 6)
      |
    hr_0 none (0, 0)       hr_1 none (40, 0) -- bp_1 sym (48, 0) -- hr_2 ecc (56, 0)

hr_0 cannot encrypt and has a capable converter one hop away (bp_0) and another two hops
away (bp_2). hr_1 cannot encrypt and its only capable converter, hr_2, is two hops away
(bp_1 can only do symmetric cryptography, so it cannot convert to ECC): hr_1 knows hr_2
from bp_1's announcements, and must refuse rather than send its reading there. hr_3 and
bp_3 stand apart and share directly.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from iomt.capture import RadioMap, audit
from iomt.experiments.sharing import ExperimentConfig, run
from iomt.topology import registry
from iomt.topology.sharing import sharing_plan
from iomt.topology.spec import LaunchPlan, NodeSpec, ProcessSpec
from iomt.topology.ward import recorder_process

pytestmark = [pytest.mark.dds, pytest.mark.slow]

TOPOLOGY = "test_one_hop_ward"
LAYOUT = {  # name: (capability class, x, y)
    "hr_0": ("none", 0.0, 0.0),
    "bp_0": ("ecc", 0.0, 6.0),
    "bp_2": ("ecc", 0.0, 14.0),
    "hr_1": ("none", 40.0, 0.0),
    "bp_1": ("symmetric", 48.0, 0.0),
    "hr_2": ("ecc", 56.0, 0.0),
    "hr_3": ("abe", 80.0, 80.0),
    "bp_3": ("ecc", 83.0, 80.0),
}
OWN = {"none": "none", "symmetric": "sym-aes", "ecc": "ecc", "abe": "cpabe"}
DEVICE_NODE = "iomt.nodes.device:device_node"
WALLET_NODE = "iomt.nodes.wallet:wallet_node"
PROVIDER_NODE = "iomt.nodes.provider:provider_node"


def _uri(name: str) -> str:
    return f"iomt://ward1/{name}"


def one_hop_ward(**options: Any) -> LaunchPlan:
    """``scale_N``'s ward of 8 devices, re-laid out as above; announcements every second so
    the 2-hop knowledge is there before the first request."""
    options["announce_period_s"] = 1.0
    plan = sharing_plan(len(LAYOUT), **options)

    def placed(node: NodeSpec) -> NodeSpec:
        if node.factory == DEVICE_NODE:
            capability, x, y = LAYOUT[node.name]
            return replace(node, params={**node.params, "capability": capability, "x": x, "y": y})
        if node.factory == WALLET_NODE:
            devices = [
                {**d, "technique": OWN[LAYOUT[d["name"]][0]]} for d in node.params["devices"]
            ]
            return replace(node, params={**node.params, "devices": devices})
        return node

    processes = [
        replace(p, nodes=tuple(placed(n) for n in p.nodes))
        for p in plan.processes
        if p.name != "recorder"
    ]
    nodes = [n for p in processes for n in p.nodes]

    def of(factory: str) -> list[NodeSpec]:
        return [n for n in nodes if n.factory == factory]

    recorder: ProcessSpec = recorder_process(
        Path(str(plan.facts["run_dir"])),
        of(DEVICE_NODE),
        of(WALLET_NODE),
        of(PROVIDER_NODE),
        central=False,
    )
    capabilities = Counter(c for c, _x, _y in LAYOUT.values())
    return LaunchPlan(
        plan.topology,
        "one-hop ward: incapable devices with converters one and two hops away",
        (*processes, recorder),
        {**plan.facts, "capabilities": dict(capabilities)},
        plan.identities,
    )


@pytest.fixture
def ward() -> Iterator[str]:
    registry.register(TOPOLOGY, "test: converters one and two hops away")(one_hop_ward)
    try:
        yield TOPOLOGY
    finally:
        registry._REGISTRY.pop(TOPOLOGY, None)


def _requests(run_dir: Path) -> list[dict[str, Any]]:
    return [
        json.loads(line)
        for path in sorted((run_dir / "results").glob("dr_*.jsonl"))
        for line in path.read_text().splitlines()
        if line.strip() and json.loads(line).get("record") == "request"
    ]


@pytest.mark.timeout(120)
def test_plaintext_crosses_exactly_one_radio_hop_and_never_reaches_a_requester(
    tmp_path: Path, domain_id: int, ward: str
) -> None:
    run_dir = tmp_path / "run"
    report = run(
        ExperimentConfig(
            ward,
            mode="distributed",
            requests=64,
            domain_id=domain_id,
            run_dir=run_dir,
            timeout_s=60,
            concurrency=2,
        )
    )
    assert report["requests"]["failed"] == 0, report["requests"]

    # The premise, from the ward as it ran: who is linked to whom.
    radio = RadioMap.load(run_dir / "radio.json")
    assert radio.hops(_uri("hr_0"), _uri("bp_0")) == 1
    assert radio.hops(_uri("hr_0"), _uri("bp_2")) == 2
    assert radio.hops(_uri("hr_1"), _uri("bp_1")) == 1
    assert radio.hops(_uri("hr_1"), _uri("hr_2")) == 2

    # The eavesdropper's audit, on the whole bag, with hops on the radio graph.
    judged = audit(run_dir / "bag", radio=radio)
    incapable = {_uri(n) for n, (c, _x, _y) in LAYOUT.items() if c == "none"}
    requesters = {_uri(p) for p in report["facts"]["providers"]}
    readable = judged.readable_transmissions
    assert readable, "hr_0's conversions put its plaintext on the air"
    for t in readable:
        where = (t.topic, t.producer, t.sender, t.receiver, t.hops)
        assert t.producer in incapable, where  # only a device that cannot encrypt
        assert t.sender == t.producer, where  # straight from that device
        assert t.receiver not in requesters, where  # never to whoever asked
        assert t.receiver in radio, where  # to a device on the radio graph ...
        assert t.hops == 1, where  # ... exactly one hop away
        assert t.producer != _uri("hr_1"), where  # hr_1 has no 1-hop converter
    # what reached the requesters was sealed
    delivered = [t for t in judged.transmissions if t.receiver in requesters]
    assert delivered and not any(t.readable for t in delivered)
    # the experiment's own report says the same
    by_hops = report["traffic"]["by_radio_hops"]
    assert {k for k, row in by_hops.items() if row["readable"]} == {"1"}, by_hops

    # What the devices did (after the audit, which judges from the traffic alone): hr_0
    # converted through its 1-hop neighbour; hr_1, whose only capable converter is two hops
    # away, refused every time.
    outcomes: dict[str, Counter[str]] = {}
    for r in _requests(run_dir):
        reason = r.get("reason", "").split(":", 1)[0]
        outcomes.setdefault(r["device"], Counter())[f"{r['outcome']} {reason}".strip()] += 1
    assert outcomes[_uri("hr_0")]["converted"] > 0, outcomes
    assert set(outcomes[_uri("hr_1")]) == {"refused no-capable-neighbour"}, outcomes
