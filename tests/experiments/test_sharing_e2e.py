"""Bilal & Hassan end to end: real processes on a private DDS domain, traffic recorded,
reports built from the results files and the bag."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from capture.readers import assert_every_reader_decodes
from iomt.experiments.case_study import run_case_study
from iomt.experiments.sharing import ExperimentConfig, run

pytestmark = [pytest.mark.dds, pytest.mark.slow]


def _run(
    tmp_path: Path, domain_id: int, mode: str, requests: int = 120, cpus: str = "auto"
) -> dict:  # type: ignore[type-arg]
    return run(
        ExperimentConfig(
            "scale_10",
            mode=mode,
            requests=requests,
            domain_id=domain_id,
            run_dir=tmp_path / mode,
            timeout_s=90,
            concurrency=2,
            cpus=cpus,
        )
    )


@pytest.mark.timeout(150)
def test_distributed_framework_end_to_end(tmp_path: Path, domain_id: int) -> None:
    report = _run(tmp_path, domain_id, "distributed", cpus="split")
    req = report["requests"]
    assert req["total"] == 120
    assert req["failed"] == 0, req
    assert req["shared"] > 0 and req["converted"] > 0
    # every refusal has a reason the paper names (no capable neighbour nearby)
    assert set(req["refusal_reasons"]) <= {"no-capable-neighbour", "conversion-failed"}
    assert report["access_time_ms"]["n"] == req["shared"] + req["converted"]
    assert report["data_transfer_time_ms"]["n"] > 0
    traffic = report["traffic"]
    # Judged from the bag: nothing readable reaches a requester; readable readings exist
    # only on incapable devices' first hop to their converter.
    assert traffic["by_hop"]["to_requester"]["readable"] == 0
    assert traffic["by_hop"]["to_requester"]["transmissions"] >= req["shared"] + req["converted"]
    readable_hops = {h for h, row in traffic["by_hop"].items() if row["readable"]}
    assert readable_hops <= {"device_to_converter"}
    # and measured on the ward's radio graph: from the reading's device to the node that
    # received it, always exactly one hop (tests/experiments/test_one_hop_e2e.py: why)
    radio_hops = {h for h, row in traffic["by_radio_hops"].items() if row["readable"]}
    assert radio_hops == {"1"}, traffic["by_radio_hops"]
    # the requests whose reading was exposed are those served through a plaintext hop
    assert 0 < traffic["exposed_request_share"] < 1
    assert traffic["requests_with_exposed_reading"] <= req["converted"]
    audit = json.loads((tmp_path / "distributed" / "audit.json").read_text())
    for item in audit["readable_items"]:
        assert item["technique"] == "none"  # the plaintext link, declared as such
    assert (tmp_path / "distributed" / "report.md").read_text().startswith("# scale_10")
    # what the run cost: CPU per request over every process, by kind; memory; start-up
    res = report["resources"]
    assert res["requests"] == 120 and res["requests_per_s"] > 0
    assert set(res["cpu_ms_per_request_by_kind"]) == {
        "devices",
        "wallets",
        "providers",
        "recorder",
        "driver",
    }
    assert res["cpu_ms_per_request"] == pytest.approx(
        sum(res["cpu_ms_per_request_by_kind"].values()), abs=0.01
    )
    assert res["cpu_ms_per_request_by_kind"]["providers"] > 0
    assert res["memory_pss_mib"] > 0 and res["ready_s"] > 0
    assert "## Cost of the run" in (tmp_path / "distributed" / "report.md").read_text()
    # --cpus split: the providers and the devices answering them on CPUs of their own
    placement = res["cpu_placement"]
    if len(os.sched_getaffinity(0)) >= 2:
        assert set(placement) == {"providers", "devices_0"}
        assert not set(placement["providers"]) & set(placement["devices_0"])
        assert "providers on CPU" in (tmp_path / "distributed" / "report.md").read_text()
    # the provider exported what it received as FHIR vital signs
    bundles = list((tmp_path / "distributed" / "fhir").glob("*.json"))
    assert bundles
    # and the bag opens in every independent reader (service events included)
    counts = assert_every_reader_decodes(tmp_path / "distributed" / "bag")
    assert counts.encodings.get("ros2idl", 0) > 0


@pytest.mark.timeout(150)
def test_centralized_baseline_end_to_end(tmp_path: Path, domain_id: int) -> None:
    report = _run(tmp_path, domain_id, "centralized", requests=80)
    req = report["requests"]
    assert req["total"] == 80 and req["failed"] == 0, req
    assert req["shared"] + req["refused"] == 80 and req["converted"] == 0
    traffic = report["traffic"]
    # The baseline's devices upload plaintext: that hop is readable, deliveries are not.
    assert (
        traffic["by_hop"]["device_to_server"]["readable"]
        == traffic["by_hop"]["device_to_server"]["transmissions"]
        > 0
    )
    assert traffic["by_hop"]["to_requester"]["readable"] == 0
    assert report["data_transfer_time_ms"]["n"] > 0
    assert report["uploads"]["dropped"] == 0
    # every reading the server handed out had crossed the network in plaintext before
    assert traffic["exposed_request_share"] == 1.0
    assert_every_reader_decodes(tmp_path / "centralized" / "bag")


@pytest.mark.timeout(150)
def test_base_mode_has_no_security_at_all(tmp_path: Path, domain_id: int) -> None:
    report = _run(tmp_path, domain_id, "base", requests=40)
    assert report["requests"]["shared"] == 40
    assert report["traffic"]["readable"] == report["traffic"]["transmissions"] > 0


@pytest.mark.timeout(120)
def test_case_study_as_running_nodes(tmp_path: Path, domain_id: int) -> None:
    told: list[tuple[str, str, str]] = []
    result = run_case_study(
        run_dir=tmp_path / "cs",
        domain_id=domain_id,
        say=lambda who, what, detail: told.append((who, what, detail)),
    )
    outcomes = [
        (r["device"].rsplit("/", 1)[-1], r["technique"], r["outcome"]) for r in result["requests"]
    ]
    assert outcomes == [
        ("hr_1", "ecc", "converted"),
        ("bp_1", "ecc", "shared"),
        ("bp_1", "cpabe", "converted"),
    ]
    whats = [w for _who, w, _d in told]
    for step in ("token request", "tokens", "data request", "conversion", "inbox", "shared"):
        assert step in whats, step
    plaintext = [d for who, w, d in told if w == "conversion" and "plaintext" in d]
    assert plaintext and who_is(told, plaintext[0]).startswith("hr_1 → ")
    # one Observation per distinct reading (bp_1's reading, asked for twice, may be one)
    assert 2 <= len(result["observations"]) <= 3
    assert {o["code"]["coding"][0]["code"] for o in result["observations"]} == {"8867-4", "85354-9"}


def who_is(told: list[tuple[str, str, str]], detail: str) -> str:
    return next(who for who, _w, d in told if d == detail)


@pytest.mark.timeout(150)
def test_iomt_launch_command_runs_the_experiment(tmp_path: Path, domain_id: int, procs) -> None:  # type: ignore[no-untyped-def]
    import subprocess
    import sys

    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "iomt",
            "launch",
            "scale_10",
            "--requests",
            "60",
            "--domain",
            str(domain_id),
            "--run-dir",
            str(tmp_path / "run"),
        ],
        capture_output=True,
        text=True,
        timeout=140,
        env=procs.env(),
        check=False,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.startswith("# scale_10 — distributed")
    assert "| access time |" in out.stdout and "judged from the recorded bag" in out.stdout
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert report["requests"]["total"] == 60
