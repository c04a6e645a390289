"""A provider's workload as its node builds it, without DDS: resumed where its results file
says it was, with the generator of the seed and that count; a script named by device; base
mode drawing its own request ids."""

from __future__ import annotations

import json
from pathlib import Path

from iomt.core.workload import Issue, Workload, workload_rng
from iomt.nodes.params import ProviderParams
from iomt.nodes.provider_setup import provider_workload

ME = "iomt://ward1/dr_0"


def _build(results: str | None, **kw: object) -> Workload:
    params: dict[str, object] = {
        "keystore": "ks",
        "wallets": (),
        "mode": "distributed",
        "results": results,
        "requests": 5,
        "concurrency": 2,
        "seed": 3,
    }
    params.update(kw)
    return provider_workload(ME, "ward1", ProviderParams.from_mapping(params))


def test_a_restarted_provider_resumes_from_its_results_file(tmp_path: Path) -> None:
    path = tmp_path / "results.jsonl"
    lines = [{"record": "request", "provider": ME, "outcome": o} for o in ("shared", "failed")]
    path.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    w = _build(str(path))
    assert (w.issued, w.counts["shared"], w.counts["failed"]) == (2, 1, 1)
    assert w.rng.random() == workload_rng(3, 2).random()
    assert list(w.techniques) == ["ecc"]


def test_a_script_names_devices_of_the_facility_and_base_mode_draws_ids() -> None:
    w = _build(None, script=[["hr_0", "aes"]], mode="base")
    assert list(w.script) == [("iomt://ward1/hr_0", "aes")]
    (issue,) = w.begin(["iomt://ward1/hr_0"])
    assert isinstance(issue, Issue) and not issue.request.request_id.startswith("issued-")
