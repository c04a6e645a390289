"""What a provider keeps besides its results lines, without DDS: a restarted provider reads
the outcomes its previous run wrote (its own only, a line cut short by the crash skipped);
each distinct reading is one Observation, exported as FHIR only when there is a path."""

from __future__ import annotations

import json
from pathlib import Path

from iomt.msg import Vitals
from iomt.nodes import wire
from iomt.nodes.provider_results import Observations, finished_requests

ME = "iomt://w/dr_0"


def test_a_fresh_start_has_no_finished_requests(tmp_path: Path) -> None:
    assert finished_requests(None, ME) == []
    assert finished_requests(str(tmp_path / "absent.jsonl"), ME) == []


def test_a_restart_reads_its_own_finished_requests_in_order(tmp_path: Path) -> None:
    path = tmp_path / "results.jsonl"
    lines = [
        {"record": "request", "provider": ME, "outcome": "shared"},
        {"record": "request", "provider": "iomt://w/dr_1", "outcome": "failed"},
        {"record": "provider", "provider": ME},
        {"record": "request", "provider": ME, "outcome": "refused"},
        {"record": "request", "provider": ME},  # no outcome: not a finished request
    ]
    text = "".join(json.dumps(x) + "\n" for x in lines) + '{"record": "requ'  # cut short
    path.write_text(text, encoding="utf-8")
    assert finished_requests(str(path), ME) == ["shared", "refused"]


def _cdr(seq: int) -> bytes:
    return Vitals(
        stamp=wire.time_msg(1_700_000_000 * 10**9),
        device_uri="iomt://w/hr_0",
        patient_id="p-0",
        kind=0,
        seq=seq,
        heart_rate_bpm=71.0,
        systolic_mmhg=0.0,
        diastolic_mmhg=0.0,
    ).serialize()


def test_each_distinct_reading_is_one_observation(tmp_path: Path) -> None:
    kept = Observations(str(tmp_path / "fhir.json"))
    kept.keep(_cdr(1), "iomt://w/hr_0", "ecc")
    kept.keep(_cdr(1), "iomt://w/conv_0", "aes")  # the same reading asked for twice
    kept.keep(_cdr(2), "iomt://w/hr_0", "ecc")
    assert len(kept.observations()) == 2
    kept.export()
    assert (tmp_path / "fhir.json").exists()


def test_without_a_path_nothing_is_kept_or_written(tmp_path: Path) -> None:
    kept = Observations(None)
    kept.keep(_cdr(1), "iomt://w/hr_0", "ecc")
    assert kept.observations() == []
    kept.export()
    assert list(tmp_path.iterdir()) == []
