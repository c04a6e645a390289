"""``iomt reproduce`` and the reports: a shortened sweep end to end, an interrupted run's
partial report, the case study from ``iomt launch``, and the report rendering itself."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from iomt.errors import ConfigurationError
from iomt.experiments.biomt import render_markdown as render_biomt
from iomt.experiments.reproduce import ReproduceConfig

pytestmark = [pytest.mark.dds, pytest.mark.slow]


def _iomt(procs, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:  # type: ignore[no-untyped-def]
    return subprocess.run(
        [sys.executable, "-m", "iomt", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=procs.env(),
        check=False,
    )


@pytest.mark.timeout(300)
def test_reproduce_writes_tables_figures_and_each_runs_report(
    procs, tmp_path: Path, domain_id: int
) -> None:  # type: ignore[no-untyped-def]
    out = _iomt(
        procs,
        "reproduce", "all", "--requests", "40", "--scales", "10", "--biomt-ops", "20",
        "--biomt-devices", "10", "--domain", str(domain_id), "--run-dir", str(tmp_path),
        timeout=280,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    doc = json.loads((tmp_path / "reproduce.json").read_text())
    assert doc["partial"] is False
    assert [e["run"]["name"] for e in doc["runs"]] == [
        "distributed-10",
        "centralized-10",
        "biomt-10",
    ]
    md = (tmp_path / "reproduce.md").read_text()
    assert "## Method" in md and "## Table 2" in md and "## Fig. 6" in md
    assert "| distributed | 10 |" in md and "| centralized | 10 |" in md
    assert "0.423" in md  # the paper's access time at 10 devices, beside the measured one
    assert "## BIoMT Fig. 3" in md and "## BIoMT Fig. 4" in md
    for fig in ("fig6_readable.png", "fig7_times.png"):
        assert (tmp_path / fig).read_bytes().startswith(b"\x89PNG")
    assert len(doc["figures"]) == 4
    for name in ("distributed-10", "centralized-10", "biomt-10"):
        assert (tmp_path / name / "report.md").is_file()
        assert (tmp_path / name / "bag").is_dir()  # every run recorded and audited
    assert all(e["requests"]["total"] == 40 for e in doc["runs"][:2])
    # the bags were audited (in the background worker) into the sweep and each run's report
    for e in doc["runs"][:2]:
        name = e["run"]["name"]
        report = json.loads((tmp_path / name / "report.json").read_text())
        assert "audit_pending" not in report and report["traffic"]["transmissions"] > 0, name
        assert (tmp_path / name / "audit.json").is_file()
        assert not any((tmp_path / name / "fhir").glob("*.json"))  # FHIR export off
        assert e["readable_transmissions"] == report["traffic"]["readable_share"]
    assert doc["runs"][0]["readable_requests"] is not None


@pytest.mark.timeout(200)
def test_an_interrupted_sweep_keeps_what_it_finished_with_its_figures_and_checks_the_domain_once(
    tmp_path: Path, domain_id: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    from iomt.experiments import reproduce as sweep
    from iomt.experiments import sharing

    checked: list[int | None] = []
    real_check = sharing.ensure_domain_free

    def counting_check(*args, **kwargs):  # type: ignore[no-untyped-def]
        checked.append(kwargs.get("domain_id"))
        return real_check(*args, **kwargs)

    monkeypatch.setattr(sharing, "ensure_domain_free", counting_check)

    def interrupt_the_second_run(kind: str, run: sweep.Run, data: dict[str, int]) -> None:
        if kind == "progress" and run.name == "centralized-10" and data["done"] > 0:
            raise KeyboardInterrupt

    cfg = ReproduceConfig(
        "bilal-hassan", requests=40, scales=(10,), record=False, domain_id=domain_id,
        run_dir=tmp_path,
    )  # fmt: skip
    with pytest.raises(KeyboardInterrupt):
        sweep.reproduce(cfg, on_event=interrupt_the_second_run)
    doc = json.loads((tmp_path / "reproduce.json").read_text())
    assert doc["partial"] is True and doc["interrupted_in"] == "centralized-10"
    assert [e["run"]["name"] for e in doc["runs"]] == ["distributed-10"]
    assert doc["runs"][0]["requests"]["total"] == 40
    for fig in ("fig6_readable.png", "fig7_times.png"):  # drawn when the sweep was stopped
        assert (tmp_path / fig).read_bytes().startswith(b"\x89PNG")
    assert "distributed-10" in (tmp_path / "reproduce.md").read_text()
    # the run it stopped kept its partial report
    report = json.loads((tmp_path / "centralized-10" / "report.json").read_text())
    assert report["interrupted"] is True
    assert checked == [domain_id]  # before the first run only: the sweep holds the domain


@pytest.mark.timeout(200)
def test_sigterm_during_a_run_writes_a_partial_report_and_stops_the_ward(
    procs, tmp_path: Path, domain_id: int
) -> None:  # type: ignore[no-untyped-def]
    launcher = procs.start(
        "-m", "iomt", "launch", "scale_10", "--requests", "200000", "--domain",
        str(domain_id), "--run-dir", str(tmp_path), "--timeout", "600",
    )  # fmt: skip
    results = tmp_path / "results"
    deadline = time.monotonic() + 120
    while not any(p.stat().st_size > 0 for p in results.glob("dr_*.jsonl")):
        assert time.monotonic() < deadline, "the workload never started"
        assert launcher.poll() is None, launcher.stderr.read()
        time.sleep(0.2)
    children = [c.pid for c in psutil.Process(launcher.pid).children(recursive=True)]
    assert children
    os.kill(launcher.pid, signal.SIGTERM)
    _out, err = launcher.communicate(timeout=120)
    assert launcher.returncode == 130, err[-2000:]
    assert "partial report" in err
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["interrupted"] is True and 0 < report["requests"]["total"] < 200000
    assert "**Interrupted**" in (tmp_path / "report.md").read_text()
    assert not [pid for pid in children if psutil.pid_exists(pid)]


@pytest.mark.timeout(120)
def test_iomt_launch_case_study_runs_fig_2(procs, tmp_path: Path, domain_id: int) -> None:  # type: ignore[no-untyped-def]
    out = _iomt(
        procs, "launch", "case_study", "--domain", str(domain_id), "--run-dir", str(tmp_path),
        timeout=110,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    assert "What Dr House decrypted and verified" in out.stdout
    assert (tmp_path / "fhir" / "dr_house.json").is_file()


def test_reproduce_refuses_bad_configurations_before_running() -> None:
    for bad in (
        {"paper": "nobody"},
        {"requests": 0},
        {"scales": (30,)},
        {"modes": ("sideways",)},
    ):
        with pytest.raises(ConfigurationError, match=r"must|no topology|at least"):
            ReproduceConfig(**bad)  # type: ignore[arg-type]


def test_biomt_report_flags_rows_that_miss_the_target() -> None:
    def delay(base: float, biomt: float) -> dict[str, object]:
        s = {"p50": None, "p95": None, "n": 1, "mean": None}
        return {
            "base": {**s, "p50": base},
            "biomt": {**s, "p50": biomt},
            "overhead": {"p50_ms": round(biomt - base, 3), "mean_ms": None},
        }

    cpu = {"base": {"mean_us": 1.0}, "biomt": {"mean_us": 2.0, "n": 1}, "increase_pct": 100.0}
    report = {
        "topology": "scale_10",
        "devices": 10,
        "facts": {
            "biomt": {"bolsters": {}, "clusters": [], "master": "", "synchronous": "FULL"},
            "run_dir": ".",
        },
        "delay_ms": {
            "store": delay(1.0, 1.5),
            "access": delay(1.0, 3.0),
            "observe": delay(1.0, 1.9),
            "update": delay(1.0, 9.0),
        },
        "target_overhead_p50_ms": 1.0,
        "bolster_cpu_per_tx": {op: cpu for op in ("store", "access", "observe")},
        "phases_us": {},
        "sharing": {"requests": 0, "shared": 0, "converted": 0, "refused": 0, "failed": 0,
                    "device_events": {}},
        "history": {"patient": "p", "entries": 0, "by_type": {}, "sharing_events": {}},
        "provisioning": {"provisioned": 0, "devices": 0, "enrol_ms": {"p50": None},
                         "stores_acknowledged": 0},
        "physicians": {"counts": {}, "errors": {}},
        "ledgers": {}, "ledger_streams": {}, "clusters": [], "plots": [], "timings": {},
    }  # fmt: skip
    text = render_biomt(report)
    delay_table = text.split("## Delay per transaction", 1)[1].split("\n## ", 1)[0]
    rows = {
        line.split("|")[1].strip(): line
        for line in delay_table.splitlines()
        if line.startswith("| ")
    }
    assert "misses" not in rows["Store"] and "misses" not in rows["Observe"]
    assert "misses 1 ms" in rows["Access"]
    assert "misses" not in rows["Observe update"]  # no target for updates
