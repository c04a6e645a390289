"""Finding 2 of issue 11: any certified identity could pose as a converter.

The attack: patient 1's wallet -- a certified identity of the facility, but no device --
announces itself as an ECC converter right next to hr_0, a device that cannot encrypt, and
serves ``convert``. Registration used to check only the CA chain and the name, so hr_0
took the wallet for its nearest capable neighbour and sent it patient 0's readings in
plaintext (the outside test counted 4,134 in 25 s).

Now the CA certifies each identity's role in its certificate (iomt.crypto.roles), and a
device registers -- and hands plaintext to -- only a neighbour certified a capable device
of the facility: the wallet's announcements are refused and logged, its ``convert`` is
never called, and hr_0's readings go through its real converter.

The ward (radio range 10 m)::

    bp_0 ecc (0, 6)        the real converter
    hr_0 none (0, 0)       wallet_1 announces at (0.5, 0), nearer than bp_0
                                                hr_1 ecc (40, 0) -- bp_1 ecc (43, 0)
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from iomt.experiments.sharing import ExperimentConfig, run
from iomt.topology import registry
from iomt.topology.sharing import sharing_plan
from iomt.topology.spec import LaunchPlan, NodeSpec

pytestmark = [pytest.mark.dds, pytest.mark.slow]

FORGERS = Path(__file__).with_name("forgers.py")
TOPOLOGY = "test_rogue_converter_ward"
LAYOUT = {
    "hr_0": ("none", 0.0, 0.0),
    "bp_0": ("ecc", 0.0, 6.0),
    "hr_1": ("ecc", 40.0, 0.0),
    "bp_1": ("ecc", 43.0, 0.0),
}
OWN = {"none": "none", "symmetric": "sym-aes", "ecc": "ecc", "abe": "cpabe"}


def rogue_ward(**options: Any) -> LaunchPlan:
    options["announce_period_s"] = 1.0
    plan = sharing_plan(len(LAYOUT), **options)

    def placed(node: NodeSpec) -> NodeSpec:
        if node.factory.endswith("device_node"):
            capability, x, y = LAYOUT[node.name]
            return replace(node, params={**node.params, "capability": capability, "x": x, "y": y})
        if node.factory.endswith("wallet_node"):
            devices = [
                {**d, "technique": OWN[LAYOUT[d["name"]][0]]} for d in node.params["devices"]
            ]
            return replace(node, params={**node.params, "devices": devices})
        return node

    processes = tuple(
        replace(p, nodes=tuple(placed(n) for n in p.nodes))
        for p in plan.processes
        if p.name != "recorder"
    )
    return LaunchPlan(plan.topology, "rogue converter ward", processes, plan.facts, plan.identities)


@pytest.fixture
def ward() -> Iterator[str]:
    registry.register(TOPOLOGY, "test: a wallet posing as a converter")(rogue_ward)
    try:
        yield TOPOLOGY
    finally:
        registry._REGISTRY.pop(TOPOLOGY, None)


@pytest.mark.timeout(120)
def test_a_wallet_posing_as_a_converter_gets_no_plaintext(
    procs: Any, tmp_path: Path, domain_id: int, ward: str
) -> None:
    run_dir = tmp_path / "ward"
    rogue = procs.start(
        str(FORGERS),
        "rogue-converter",
        "--domain",
        str(domain_id),
        "--keystore",
        str(run_dir / "keystore"),
        "--identity",
        "wallet_1",  # patient 1's wallet, next to patient 0's incapable hr_0
        "--x",
        "0.5",
        "--y",
        "0.0",
    )
    report = run(
        ExperimentConfig(
            ward,
            requests=80,
            domain_id=domain_id,
            run_dir=run_dir,
            timeout_s=80,
            concurrency=2,
            record=False,
        )
    )
    rogue.terminate()
    out, err = rogue.communicate(timeout=20)
    stats = [json.loads(x[6:]) for x in out.splitlines() if x.startswith("STATS ")]
    assert stats, err[-2000:]
    stolen = stats[-1]
    # the rogue was there all along, announcing itself next to hr_0, which heard it ...
    assert stolen.get("announcements", 0) >= 3, stolen
    devices = {
        r["device"]: r
        for r in map(json.loads, (run_dir / "results" / "devices.jsonl").read_text().splitlines())
        if r.get("record") == "device"
    }
    heard = devices["iomt://ward1/hr_0"]["refused_announcements"]
    assert heard.get("iomt://ward1/wallet_1", 0) >= 1, heard
    # ... and got nothing: not one order, not one plaintext reading
    assert stolen.get("orders", 0) == 0 and stolen.get("plaintext readings", 0) == 0, stolen
    # hr_0's readings went through its real converter, and nothing failed
    req = report["requests"]
    assert req["failed"] == 0 and req["converted"] > 0, req
    converters = {
        r.get("sender")
        for p in sorted((run_dir / "results").glob("dr_*.jsonl"))
        for r in map(json.loads, p.read_text().splitlines())
        if r.get("outcome") == "converted"
    }
    assert converters == {"iomt://ward1/bp_0"}, converters
    # the refusals are logged by the devices that heard the rogue
    logs = "".join(p.read_text() for p in (run_dir / "logs").glob("*.log"))
    assert "registration of iomt://ward1/wallet_1 refused" in logs
    assert "certified as wallet, not as a device" in logs
