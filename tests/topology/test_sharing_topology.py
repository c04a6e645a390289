"""The sharing topologies: who consents to whom, and how big each provider's panel is."""

from __future__ import annotations

import pytest

from iomt.topology.sharing import sharing_plan


def _nodes(plan, prefix: str) -> list:  # type: ignore[no-untyped-def]
    return [n for p in plan.processes for n in p.nodes if n.name.startswith(prefix)]


@pytest.mark.parametrize("devices", [10, 50, 100, 400])
def test_each_patient_consents_to_a_care_team_only(devices: int) -> None:
    plan = sharing_plan(devices, run_dir="/tmp/unused")
    wallets = _nodes(plan, "wallet_")
    providers = _nodes(plan, "dr_")
    team = plan.facts["care_team"]
    assert team == min(4, len(providers))
    for w in wallets:
        assert len(w.params["providers"]) == team == len(set(w.params["providers"]))
        # a provider asks exactly the wallets that consent to it
        for p in providers:
            assert (p.name in w.params["providers"]) == (w.name in p.params["wallets"])
    # the devices send inbox envelopes to their patient's team only
    by_wallet = {w.name: w.params["providers"] for w in wallets}
    for d in _nodes(plan, "hr_") + _nodes(plan, "bp_"):
        assert d.params["providers"] == by_wallet[d.params["wallet"]]
    # every patient is cared for, and the panels are balanced
    panels = [len(p.params["wallets"]) for p in providers]
    assert sum(panels) == team * len(wallets)
    assert max(panels) - min(panels) <= team


def test_a_provider_without_patients_is_allowed() -> None:
    plan = sharing_plan(4, providers=6, care_team=1, run_dir="/tmp/unused")
    panels = {p.name: p.params["wallets"] for p in _nodes(plan, "dr_")}
    assert sorted(len(w) for w in panels.values()) == [0, 0, 0, 0, 1, 1]


def test_a_process_hosts_neighbours() -> None:
    """Devices are packed into processes along a Hilbert curve: a device's radio neighbours
    are mostly in its own process (so announcements are decoded, verified and delivered
    there), far more than if the ward were split at random."""
    import math

    from iomt.topology.sharing import hilbert_index

    n = 16
    cells = {hilbert_index(n, x, y): (x, y) for x in range(n) for y in range(n)}
    assert sorted(cells) == list(range(n * n))
    # consecutive cells along the curve are adjacent
    assert all(
        abs(cells[i][0] - cells[i + 1][0]) + abs(cells[i][1] - cells[i + 1][1]) == 1
        for i in range(n * n - 1)
    )
    plan = sharing_plan(400, run_dir="/tmp/unused")
    groups = [p for p in plan.processes if p.name.startswith("devices_")]
    assert [len(p.nodes) for p in groups] == [200] * 2
    where = {d.name: p.name for p in groups for d in p.nodes}
    pos = {d.name: (d.params["x"], d.params["y"]) for p in groups for d in p.nodes}
    pairs = [
        (a, b)
        for a in pos
        for b in pos
        if a < b and math.dist(pos[a], pos[b]) <= plan.facts["radio_range_m"]
    ]
    same = sum(where[a] == where[b] for a, b in pairs) / len(pairs)
    assert same > 0.85  # a random split would give 1/2


def test_without_fhir_the_providers_export_nothing() -> None:
    with_export = sharing_plan(10)
    without = sharing_plan(10, fhir=False)
    providers = [n for p in with_export.processes for n in p.nodes if n.name.startswith("dr_")]
    assert providers and all(n.params["fhir"] for n in providers)
    assert all(
        n.params["fhir"] is None
        for p in without.processes
        for n in p.nodes
        if n.name.startswith("dr_")
    )


@pytest.mark.parametrize("mode", ["distributed", "centralized", "base"])
def test_centralized_providers_start_a_stage_after_the_devices_uploads(mode: str) -> None:
    """In the centralized baseline a device's process is READY once the server answered its
    first upload, and the providers join only then: none is asked for before."""
    plan = sharing_plan(10, mode=mode, run_dir="/tmp/unused")
    stage = {p.name: p.stage for p in plan.processes}
    later = 1 if mode == "centralized" else 0
    assert stage["providers"] == later
    assert {s for n, s in stage.items() if n.startswith(("devices_", "wallets_"))} == {0}
    assert stage.get("central", 0) == 0 and stage["recorder"] == -1
