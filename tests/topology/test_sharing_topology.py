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
