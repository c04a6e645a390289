"""FHIR R4 export: vital-signs Observations built, checked against the profiles, bundled."""

from __future__ import annotations

import copy
import json
import math
import os
import re
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.observation import Observation
from fhir_vectors import params
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from iomt.cli import main as iomt_main
from iomt.core.fhir import (
    BP_PROFILE,
    HEARTRATE_PROFILE,
    VITALSIGNS_PROFILE,
    FhirDocumentError,
    FhirProfileError,
    FhirStorageError,
    InvalidVitalSignError,
    VitalSign,
    bundle_json,
    check_document,
    check_vital_signs_profile,
    fhir_id,
    observations_from_bundle_json,
    plausibility_warnings,
    profile_violations,
    to_observation,
)
from iomt.core.vitals import VitalKind, VitalsGenerator
from iomt.errors import LocalProtocolError, RemoteProtocolError, StorageError
from iomt.nodes.fhir_export import read_bundle, write_bundle  # the files: above the core

ROOT = Path(__file__).resolve().parents[2]
FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
T0 = 1_700_000_000_123_456_789  # 2023-11-14T22:13:20.123456789Z


def heart_rate(**changes: Any) -> VitalSign:
    fields: dict[str, Any] = {
        "device_uri": "iomt://ward1/hr_0003",
        "patient_id": "patient-42",
        "kind": int(VitalKind.HEART_RATE),
        "seq": 7,
        "time_ns": T0,
        "heart_rate_bpm": 72.5,
        "systolic_mmhg": 0.0,
        "diastolic_mmhg": 0.0,
        "sender_uri": "iomt://ward1/conv_1",
        "security_technique": "sym-aes",
    }
    return VitalSign(**(fields | changes))


def blood_pressure(**changes: Any) -> VitalSign:
    fields: dict[str, Any] = {
        "device_uri": "iomt://ward1/bp_0001",
        "kind": int(VitalKind.BLOOD_PRESSURE),
        "heart_rate_bpm": 0.0,
        "systolic_mmhg": 121.0,
        "diastolic_mmhg": 79.0,
        "security_technique": "cpabe",
    }
    return heart_rate(**(fields | changes))


def as_json(obs: Observation) -> dict[str, Any]:
    return json.loads(obs.model_dump_json())


def rules(violations: Any) -> set[str]:
    return {v.rule for v in violations}


# --- building -------------------------------------------------------------------------


def test_heart_rate_observation_follows_the_heartrate_profile() -> None:
    obs = to_observation(heart_rate())
    check_vital_signs_profile(obs)
    r = as_json(obs)
    assert r["meta"]["profile"] == [VITALSIGNS_PROFILE, HEARTRATE_PROFILE]
    assert r["status"] == "final"
    assert r["category"][0]["coding"][0] == {
        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
        "code": "vital-signs",
        "display": "Vital Signs",
    }
    assert r["code"]["coding"] == [
        {"system": "http://loinc.org", "code": "8867-4", "display": "Heart rate"}
    ]
    assert r["valueQuantity"] == {
        "value": 72.5,
        "unit": "/min",
        "system": "http://unitsofmeasure.org",
        "code": "/min",
    }
    assert "component" not in r
    assert r["subject"] == {"reference": "Patient/patient-42"}
    assert r["effectiveDateTime"] == "2023-11-14T22:13:20.123456Z"
    assert r["device"]["display"] == "iomt://ward1/hr_0003"
    assert r["device"]["reference"] == f"Device/{fhir_id('iomt://ward1/hr_0003')}"
    assert r["identifier"] == [{"system": "urn:iomt:reading", "value": "iomt://ward1/hr_0003#7"}]
    assert r["meta"]["tag"][0]["system"] == "urn:iomt:security-technique"
    assert r["meta"]["tag"][0]["code"] == "sym-aes"
    assert r["note"][0]["authorString"] == "iomt://ward1/conv_1"
    assert "sym-aes" in r["note"][0]["text"]
    assert Observation.model_validate_json(obs.model_dump_json()) == obs


def test_blood_pressure_observation_follows_the_bp_profile() -> None:
    obs = to_observation(blood_pressure())
    check_vital_signs_profile(obs)
    r = as_json(obs)
    assert r["meta"]["profile"] == [VITALSIGNS_PROFILE, BP_PROFILE]
    assert r["code"]["coding"] == [
        {
            "system": "http://loinc.org",
            "code": "85354-9",
            "display": "Blood pressure panel with all children optional",
        }
    ]
    assert not any(k.startswith("value") for k in r)
    systolic, diastolic = r["component"]
    assert systolic["code"]["coding"][0]["code"] == "8480-6"
    assert diastolic["code"]["coding"][0]["code"] == "8462-4"
    for component, value in ((systolic, 121), (diastolic, 79)):
        assert component["valueQuantity"] == {
            "value": value,
            "unit": "mm[Hg]",
            "system": "http://unitsofmeasure.org",
            "code": "mm[Hg]",
        }
    assert r["meta"]["tag"][0]["code"] == "cpabe"
    assert Observation.model_validate_json(obs.model_dump_json()) == obs


def test_generated_series_export_cleanly() -> None:
    for kind in VitalKind:
        gen = VitalsGenerator(kind, seed=3)
        for _ in range(20):
            r = gen.next()
            obs = to_observation(
                heart_rate(
                    kind=int(kind),
                    seq=r.seq,
                    heart_rate_bpm=r.heart_rate_bpm,
                    systolic_mmhg=r.systolic_mmhg,
                    diastolic_mmhg=r.diastolic_mmhg,
                )
            )
            assert profile_violations(obs) == ()
            assert plausibility_warnings(obs) == ()


def test_same_reading_gives_the_same_resource_so_duplicates_are_detectable() -> None:
    a, b = to_observation(heart_rate()), to_observation(heart_rate())
    assert a == b and a.id == b.id
    c = to_observation(heart_rate(seq=8))
    assert c.id != a.id
    assert as_json(c)["identifier"][0]["value"] == "iomt://ward1/hr_0003#8"


def test_explicit_observation_id() -> None:
    assert to_observation(heart_rate(), observation_id="obs-1.a").id == "obs-1.a"
    with pytest.raises(LocalProtocolError):
        to_observation(heart_rate(), observation_id="not an id")


def test_time_is_utc_floored_to_microseconds() -> None:
    assert as_json(to_observation(heart_rate(time_ns=0)))["effectiveDateTime"] == (
        "1970-01-01T00:00:00Z"
    )
    assert as_json(to_observation(heart_rate(time_ns=-1)))["effectiveDateTime"] == (
        "1969-12-31T23:59:59.999999Z"
    )


@pytest.mark.parametrize(
    ("reading", "match"),
    [
        (heart_rate(kind=2), "kind"),
        (heart_rate(heart_rate_bpm=math.nan), "finite"),
        (blood_pressure(diastolic_mmhg=math.inf), "finite"),
        (heart_rate(time_ns=10**30), "time"),
        (heart_rate(time_ns=-(10**20)), "time"),
        (heart_rate(patient_id=""), "patient"),
        (heart_rate(device_uri=""), "device_uri"),
        (heart_rate(device_uri="iomt://a b"), "device_uri"),
        (heart_rate(sender_uri="iomt://x\n"), "sender_uri"),
        (heart_rate(security_technique=""), "security_technique"),
        (heart_rate(device_uri="iomt://\ud800"), "device_uri"),
        (heart_rate(seq=-1), "seq"),
    ],
)
def test_inexpressible_readings_raise_a_typed_error(reading: VitalSign, match: str) -> None:
    with pytest.raises(InvalidVitalSignError, match=match) as info:
        to_observation(reading)
    assert isinstance(info.value, RemoteProtocolError)


def test_fields_of_the_other_kind_are_ignored() -> None:
    # A heart-rate reading's unused pressure fields may hold anything, even NaN: the
    # resource is exactly the one built without them, and conforms.
    hr = to_observation(heart_rate(systolic_mmhg=math.nan, diastolic_mmhg=math.inf))
    assert as_json(hr) == as_json(to_observation(heart_rate()))
    assert hr.valueQuantity.value == 72.5 and not hr.component  # type: ignore[union-attr]
    assert profile_violations(hr) == ()
    bp = to_observation(blood_pressure(heart_rate_bpm=math.nan))
    assert as_json(bp) == as_json(to_observation(blood_pressure()))
    assert bp.valueQuantity is None
    values = {c.code.coding[0].code: c.valueQuantity.value for c in bp.component}  # type: ignore[union-attr]
    assert values == {"8480-6": 121.0, "8462-4": 79.0}
    assert profile_violations(bp) == ()


# --- ids ------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["p1", "patient-42", "A.b-9", "x" * 64])
def test_valid_ids_are_kept(text: str) -> None:
    assert fhir_id(text) == text


@pytest.mark.parametrize(
    "text", ["patient_42", "a b", "", "x" * 65, "iomt://ward1/hr_0003", "ü", "h" + "0" * 32]
)
def test_invalid_ids_are_derived(text: str) -> None:
    derived = fhir_id(text)
    assert derived != text
    assert FHIR_ID.fullmatch(derived)
    assert fhir_id(text) == derived


def test_subject_uses_the_sanitized_patient_id() -> None:
    r = as_json(to_observation(heart_rate(patient_id="Jane Doe / MRN_0042")))
    reference = r["subject"]["reference"]
    assert reference == f"Patient/{fhir_id('Jane Doe / MRN_0042')}"
    assert FHIR_ID.fullmatch(reference.removeprefix("Patient/"))
    assert reference.endswith("MRN-0042")


@given(st.text(), st.text())
def test_fhir_id_is_valid_and_injective(a: str, b: str) -> None:
    assert FHIR_ID.fullmatch(fhir_id(a))
    if a != b:
        assert fhir_id(a) != fhir_id(b)


def test_derived_looking_ids_do_not_collide_with_their_source() -> None:
    derived = fhir_id("patient_42")
    assert fhir_id(derived) != derived


# --- profile rules, violated one at a time --------------------------------------------


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(r: dict[str, Any]) -> None:
        *parents, leaf = path.split(".")
        node: Any = r
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        if value is _DELETE:
            del node[int(leaf) if leaf.isdigit() else leaf]
        else:
            node[int(leaf) if leaf.isdigit() else leaf] = value

    return mutate


_DELETE = object()
_HR = "hr"
_BP = "bp"
_DAR = {
    "coding": [
        {"system": "http://terminology.hl7.org/CodeSystem/data-absent-reason", "code": "error"}
    ]
}

MUTATIONS: list[tuple[str, str, Callable[[dict[str, Any]], None], str]] = [
    ("status not in value set", _HR, _set("status", "done"), "status"),
    ("category removed", _HR, _set("category", _DELETE), "vs-category"),
    ("category code changed", _HR, _set("category.0.coding.0.code", "laboratory"), "vs-category"),
    ("code LOINC changed", _HR, _set("code.coding.0.code", "8310-5"), "code"),
    ("code system changed", _HR, _set("code.coding.0.system", "http://snomed.info/sct"), "code"),
    ("coding without system", _HR, _set("code.coding.0.system", _DELETE), "code-system"),
    ("subject removed", _HR, _set("subject", _DELETE), "subject"),
    ("subject a Device", _HR, _set("subject.reference", "Device/d1"), "subject"),
    ("device a Patient", _HR, _set("device.reference", "Patient/p1"), "device"),
    ("effective removed", _HR, _set("effectiveDateTime", _DELETE), "effective"),
    ("effective to the year", _HR, _set("effectiveDateTime", "2023"), "vs-1"),
    ("effective to the month", _HR, _set("effectiveDateTime", "2023-11"), "vs-1"),
    ("value removed", _HR, _set("valueQuantity", _DELETE), "vs-2"),
    ("value and dataAbsentReason", _HR, _set("dataAbsentReason", _DAR), "obs-6"),
    ("hr value removed", _HR, _set("valueQuantity.value", _DELETE), "quantity-value"),
    ("hr unit removed", _HR, _set("valueQuantity.unit", _DELETE), "quantity-unit"),
    ("hr system not UCUM", _HR, _set("valueQuantity.system", "http://example.org/u"), "ucum"),
    ("hr code not /min", _HR, _set("valueQuantity.code", "/s"), "hr-unit"),
    (
        "effective as instant",
        _HR,
        lambda r: r.update(effectiveInstant=r.pop("effectiveDateTime")),
        "effective",
    ),
    ("bp systolic removed", _BP, _set("component.0", _DELETE), "bp-systolic"),
    ("bp diastolic removed", _BP, _set("component.1", _DELETE), "bp-diastolic"),
    ("bp diastolic recoded", _BP, _set("component.1.code.coding.0.code", "8480-6"), "bp-systolic"),
    ("bp component value removed", _BP, _set("component.0.valueQuantity", _DELETE), "vs-3"),
    ("bp unit not mm[Hg]", _BP, _set("component.1.valueQuantity.code", "mmHg"), "bp-unit"),
    ("bp system not UCUM", _BP, _set("component.0.valueQuantity.system", "urn:x"), "ucum"),
    (
        "bp top-level value",
        _BP,
        _set(
            "valueQuantity",
            {"value": 1, "unit": "mm[Hg]", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"},
        ),
        "bp-value",
    ),
]


def _valid(kind: str) -> Observation:
    return to_observation(heart_rate() if kind == _HR else blood_pressure())


@pytest.mark.parametrize(
    ("kind", "mutate", "rule"), [pytest.param(k, m, r, id=n) for n, k, m, r in MUTATIONS]
)
def test_each_violated_rule_is_reported(
    kind: str, mutate: Callable[[dict[str, Any]], None], rule: str
) -> None:
    resource = as_json(_valid(kind))
    mutate(resource)
    obs = Observation.model_validate(resource)  # still a valid base Observation
    with pytest.raises(FhirProfileError) as info:
        check_vital_signs_profile(obs)
    assert rule in rules(info.value.violations)
    assert rule in str(info.value)
    assert isinstance(info.value, RemoteProtocolError)
    # The document checker finds the same rule in the same JSON.
    assert rule in rules(check_document(json.dumps(resource)).violations)


def test_missing_status_and_lossy_round_trip_are_reported() -> None:
    # fhir.resources refuses a missing status on parse; a copy can still lack it.
    obs = _valid(_HR).model_copy(update={"status": None})
    found = rules(profile_violations(obs))
    assert {"status", "json-round-trip"} <= found


def test_every_violation_is_listed_at_once() -> None:
    resource = as_json(_valid(_BP))
    resource["status"] = "done"
    del resource["subject"]
    resource["component"][1]["valueQuantity"]["code"] = "kPa"
    with pytest.raises(FhirProfileError) as info:
        check_vital_signs_profile(Observation.model_validate(resource))
    assert rules(info.value.violations) == {"status", "subject", "bp-unit"}
    paths = {v.path for v in info.value.violations}
    assert "Observation.component[1].valueQuantity.code" in paths


def test_implausible_values_warn_but_conform() -> None:
    obs = to_observation(heart_rate(heart_rate_bpm=400.0))
    check_vital_signs_profile(obs)
    (warning,) = plausibility_warnings(obs)
    assert "400" in warning and "8867-4" in warning
    obs = to_observation(blood_pressure(systolic_mmhg=-5.0))
    check_vital_signs_profile(obs)
    assert len(plausibility_warnings(obs)) == 1


# --- vectors --------------------------------------------------------------------------


@pytest.mark.parametrize("vector", params("observations"))
def test_vectors(vector: dict[str, Any]) -> None:
    check = check_document(json.dumps(vector["resource"]))
    assert sorted(rules(check.violations)) == vector["rules"]
    assert check.observations == 1


@pytest.mark.parametrize("vector", params("observations", parsed=True))
def test_vectors_through_the_model(vector: dict[str, Any]) -> None:
    obs = Observation.model_validate(vector["resource"])
    assert sorted(rules(profile_violations(obs))) == vector["rules"]


# --- hypothesis: any reading is an Observation or a typed error -----------------------

_texts = st.one_of(
    st.text(max_size=40),
    st.from_regex(r"iomt://[a-z0-9_/]{1,30}", fullmatch=True),
)
_floats = st.floats(allow_nan=True, allow_infinity=True)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    device_uri=_texts,
    patient_id=_texts,
    kind=st.one_of(st.sampled_from(list(VitalKind)), st.integers()),
    seq=st.one_of(st.integers(0, 2**32), st.integers()),
    time_ns=st.one_of(st.integers(), st.integers(-(10**19), 10**19)),
    hr=_floats,
    sys_=_floats,
    dia=_floats,
    sender=_texts,
    technique=st.one_of(st.sampled_from(["none", "sym-aes", "ecc", "cpabe"]), st.text(max_size=10)),
)
def test_any_reading_is_a_conforming_observation_or_a_typed_error(
    device_uri: str,
    patient_id: str,
    kind: int,
    seq: int,
    time_ns: int,
    hr: float,
    sys_: float,
    dia: float,
    sender: str,
    technique: str,
) -> None:
    reading = VitalSign(
        device_uri, patient_id, kind, seq, time_ns, hr, sys_, dia, sender, technique
    )
    try:
        obs = to_observation(reading)
    except InvalidVitalSignError:
        return
    assert profile_violations(obs) == ()
    assert Observation.model_validate_json(obs.model_dump_json()) == obs
    used = [hr] if kind == VitalKind.HEART_RATE else [sys_, dia]
    assert all(math.isfinite(x) for x in used)


@settings(max_examples=60, deadline=None)
@given(
    hr=st.floats(allow_nan=False, allow_infinity=False),
    sys_=st.floats(allow_nan=False, allow_infinity=False),
    dia=st.floats(allow_nan=False, allow_infinity=False),
    kind=st.sampled_from(list(VitalKind)),
)
def test_any_finite_value_is_exported_exactly(
    hr: float, sys_: float, dia: float, kind: VitalKind
) -> None:
    obs = to_observation(
        heart_rate(kind=int(kind), heart_rate_bpm=hr, systolic_mmhg=sys_, diastolic_mmhg=dia)
    )
    check_vital_signs_profile(obs)
    r = as_json(obs)
    if kind is VitalKind.HEART_RATE:
        assert float(r["valueQuantity"]["value"]) == hr
    else:
        assert [float(c["valueQuantity"]["value"]) for c in r["component"]] == [sys_, dia]


_json = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False) | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.binary(max_size=64), _json.map(json.dumps)))
def test_check_document_never_raises(data: bytes | str) -> None:
    check = check_document(data)
    assert check.observations >= 0
    assert all(v.rule and v.path and v.message for v in check.violations)


@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_check_document_survives_mutated_observations(data: st.DataObject) -> None:
    resource = as_json(_valid(data.draw(st.sampled_from([_HR, _BP]))))
    key = data.draw(st.sampled_from(sorted(set(resource) - {"resourceType"})))
    resource[key] = data.draw(_json)
    check = check_document(json.dumps(resource))
    assert check.observations == 1
    if not check.ok:
        assert all(v.rule and v.path and v.message for v in check.violations)


# --- bundles --------------------------------------------------------------------------


def test_bundle_round_trip(tmp_path: Path) -> None:
    observations = [to_observation(heart_rate(seq=i)) for i in range(3)]
    observations.append(to_observation(blood_pressure()))
    path = tmp_path / "export.json"
    write_bundle(observations, path)
    assert read_bundle(path) == observations
    doc = json.loads(path.read_text())
    assert doc["resourceType"] == "Bundle" and doc["type"] == "collection"
    assert len(doc["entry"]) == 4
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export.json"]
    assert check_document(path.read_bytes()).ok


def test_write_bundle_replaces_atomically(tmp_path: Path) -> None:
    path = tmp_path / "export.json"
    write_bundle([to_observation(heart_rate(seq=1))], path)
    write_bundle([to_observation(heart_rate(seq=2))], path)
    (obs,) = read_bundle(path)
    assert obs == to_observation(heart_rate(seq=2))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export.json"]


def test_empty_bundle(tmp_path: Path) -> None:
    write_bundle([], tmp_path / "empty.json")
    assert read_bundle(tmp_path / "empty.json") == []


def test_write_bundle_refuses_non_conforming_observations(tmp_path: Path) -> None:
    good = to_observation(heart_rate())
    resource = as_json(to_observation(blood_pressure()))
    del resource["component"][1]
    bad = Observation.model_validate(resource)
    path = tmp_path / "export.json"
    with pytest.raises(FhirProfileError) as info:
        write_bundle([good, bad], path)
    assert [v.path for v in info.value.violations] == ["Bundle.entry[1].resource.component"]
    assert not path.exists()
    assert list(tmp_path.iterdir()) == []


def test_storage_errors_are_typed(tmp_path: Path) -> None:
    with pytest.raises(FhirStorageError) as info:
        read_bundle(tmp_path / "missing.json")
    assert isinstance(info.value, StorageError)
    with pytest.raises(FhirStorageError):
        write_bundle([to_observation(heart_rate())], tmp_path / "no" / "such" / "dir.json")


@pytest.mark.parametrize(
    "text",
    [
        b"",
        b"\xff\xfe not json",
        b"[]",
        b'{"resourceType": "Observation", "status": "final", "code": {"text": "x"}}',
        b'{"resourceType": "Bundle", "type": "collection", "entry": [{"resource": '
        b'{"resourceType": "Patient"}}]}',
        b'{"resourceType": "Bundle", "type": "collection", "entry": [{"resource": '
        b'{"resourceType": "Nope"}}]}',
        b'{"resourceType": "Bundle", "entry": "not a list"}',
    ],
)
def test_reading_something_else_is_a_document_error(text: bytes) -> None:
    with pytest.raises(FhirDocumentError):
        observations_from_bundle_json(text)


def test_bundle_json_lists_violations_across_entries() -> None:
    bad = _valid(_HR).model_copy(update={"status": None})
    with pytest.raises(FhirProfileError) as info:
        bundle_json([_valid(_BP), bad])
    assert all(v.path.startswith("Bundle.entry[1].resource") for v in info.value.violations)


@pytest.mark.parametrize("count", [0, 1, 7])
def test_a_bundle_is_what_fhir_resources_writes_byte_for_byte(count: int) -> None:
    """bundle_json assembles the Bundle from each Observation's checked JSON; fhir.resources'
    own Bundle model, validated and dumped, gives exactly the same text."""
    items = [_valid(_HR if i % 2 else _BP) for i in range(count)]
    expected = Bundle.model_validate(
        {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": o} for o in items]}
    ).model_dump_json(indent=2)
    assert bundle_json(items) == expected + "\n"


def test_check_document_on_bundles() -> None:
    text = bundle_json([_valid(_HR), _valid(_BP)])
    check = check_document(text)
    assert check.ok and check.observations == 2
    doc = json.loads(text)
    doc["entry"][1]["resource"]["component"][0]["valueQuantity"]["code"] = "kPa"
    doc["entry"].append({"resource": {"resourceType": "Patient", "id": "p"}})
    check = check_document(json.dumps(doc))
    assert {(v.rule, v.path) for v in check.violations} == {
        ("bp-unit", "Bundle.entry[1].resource.component[0].valueQuantity.code"),
        ("resource-type", "Bundle.entry[2].resource"),
    }


# --- CLI ------------------------------------------------------------------------------


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    good = tmp_path / "good.json"
    write_bundle([_valid(_HR), _valid(_BP)], good)
    bad_resource = as_json(_valid(_HR))
    bad_resource["valueQuantity"]["code"] = "beats/min"
    bad_resource["effectiveDateTime"] = "2023"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(bad_resource))
    single = tmp_path / "single.json"
    single.write_text(_valid(_BP).model_dump_json())
    return {"good": good, "bad": bad, "single": single, "missing": tmp_path / "missing.json"}


def test_cli_validate_good(files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert iomt_main(["fhir", "validate", str(files["good"]), str(files["single"])]) == 0
    out = capsys.readouterr().out
    assert "2 observation(s) conform" in out and "1 observation(s) conform" in out


def test_cli_validate_bad(files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert iomt_main(["fhir", "validate", str(files["good"]), str(files["bad"])]) == 1
    out = capsys.readouterr().out
    assert "[hr-unit]" in out and "[vs-1]" in out
    assert "Observation.valueQuantity.code" in out


def test_cli_validate_unreadable(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert iomt_main(["fhir", "validate", str(files["bad"]), str(files["missing"])]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_cli_validate_json(files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert iomt_main(["fhir", "validate", "--json", str(files["good"]), str(files["bad"])]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report[0]["violations"] == [] and report[0]["observations"] == 2
    assert {v["rule"] for v in report[1]["violations"]} == {"hr-unit", "vs-1"}


def test_cli_entry_point(files: dict[str, Path]) -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    proc = subprocess.run(
        [sys.executable, "-m", "iomt", "fhir", "validate", str(files["bad"])],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 1, proc.stderr
    assert "[hr-unit]" in proc.stdout


def test_vector_resources_are_independent() -> None:
    # Guard against a test mutating the cached vectors.
    from fhir_vectors import load

    before = copy.deepcopy(load("observations"))
    for v in load("observations"):
        check_document(json.dumps(v["resource"]))
    assert load("observations") == before
