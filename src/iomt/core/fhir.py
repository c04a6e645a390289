"""FHIR R4 export of received vital signs: the provider's "exports FHIR" step.

In Bilal & Hassan's framework a healthcare provider asks a patient's devices for data,
opens what they send with the agreed security technique, verifies it, and hands it on to
clinical systems. This module is that last hop: a decrypted reading (``VitalSign``) becomes
an HL7 FHIR R4 ``Observation`` conforming to the vital-signs profiles

* heart rate: http://hl7.org/fhir/StructureDefinition/heartrate -- LOINC 8867-4,
  ``valueQuantity`` in UCUM ``/min``;
* blood pressure: http://hl7.org/fhir/StructureDefinition/bp -- LOINC panel 85354-9 with
  components systolic 8480-6 and diastolic 8462-4, each in UCUM ``mm[Hg]``;

both derived from http://hl7.org/fhir/StructureDefinition/vitalsigns. The resource is
built with ``fhir.resources``' R4B models (FHIR 4.3.0; the package ships no 4.0.1 models,
and Observation, Bundle and every datatype used here are unchanged between R4 and R4B, so
the JSON is valid R4). ``fhir.resources`` checks the base resource's datatypes but not
profiles, so ``check_vital_signs_profile`` checks the profile rules itself and lists every
violation at once.

How a reading arrived (who sealed it, with which security technique -- the paper's ST) is
kept on the resource: ``meta.tag`` carries the technique as a coding in system
``urn:iomt:security-technique`` (so a store can be queried for readings that travelled
unencrypted), and one ``note`` names the sender in ``authorString``. ``identifier``
``urn:iomt:reading|<device uri>#<seq>`` makes re-deliveries of one reading detectable.

Everything here is pure (sans-IO, like the rest of ``iomt.core``): ``bundle_json`` and
``observations_from_bundle_json`` turn Observations into a Bundle's JSON and back;
``iomt.nodes.fhir_export`` writes and reads the files (atomically).
Bad input from outside raises ``RemoteProtocolError`` subclasses: a reading that cannot be
expressed (``InvalidVitalSignError``), a resource that breaks the profile (``FhirProfileError``),
a document that is not FHIR (``FhirDocumentError``); ``FhirStorageError`` is what the file
functions raise when a file cannot be read or written.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeGuard

from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.observation import Observation
from pydantic import ValidationError

from iomt.core.vitals import VitalKind
from iomt.errors import LocalProtocolError, RemoteProtocolError, StorageError

__all__ = [
    "BP_PANEL_CODE",
    "BP_PROFILE",
    "DIASTOLIC_CODE",
    "HEARTRATE_PROFILE",
    "HEART_RATE_CODE",
    "LOINC",
    "READING_IDENTIFIER_SYSTEM",
    "SECURITY_TECHNIQUE_TAG_SYSTEM",
    "SYSTOLIC_CODE",
    "UCUM",
    "VITALSIGNS_PROFILE",
    "DocumentCheck",
    "FhirDocumentError",
    "FhirProfileError",
    "FhirStorageError",
    "InvalidVitalSignError",
    "ProfileViolation",
    "VitalSign",
    "bundle_json",
    "check_document",
    "check_vital_signs_profile",
    "fhir_id",
    "observations_from_bundle_json",
    "plausibility_warnings",
    "profile_violations",
    "to_observation",
]

VITALSIGNS_PROFILE = "http://hl7.org/fhir/StructureDefinition/vitalsigns"
HEARTRATE_PROFILE = "http://hl7.org/fhir/StructureDefinition/heartrate"
BP_PROFILE = "http://hl7.org/fhir/StructureDefinition/bp"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
READING_IDENTIFIER_SYSTEM = "urn:iomt:reading"
SECURITY_TECHNIQUE_TAG_SYSTEM = "urn:iomt:security-technique"

HEART_RATE_CODE = "8867-4"
BP_PANEL_CODE = "85354-9"
SYSTOLIC_CODE = "8480-6"
DIASTOLIC_CODE = "8462-4"
HEART_RATE_UNIT = "/min"
PRESSURE_UNIT = "mm[Hg]"

# http://hl7.org/fhir/ValueSet/observation-status (required binding in the profile).
OBSERVATION_STATUSES = frozenset(
    {
        "registered",
        "preliminary",
        "final",
        "amended",
        "corrected",
        "cancelled",
        "entered-in-error",
        "unknown",
    }
)

_FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
# A derived id: "h" + 32 hex digits of SHA-256, then an optional readable tail. Input that
# already looks like one is derived again, so the mapping stays injective.
_DERIVED_ID = re.compile(r"h[0-9a-f]{32}(?:-.*)?")
_SLUG_INVALID = re.compile(r"[^A-Za-z0-9.]+")
# vs-1: an effectiveDateTime must be precise to at least the day.
_DAY_PRECISION = re.compile(r"\d{4}-\d{2}-\d{2}")
_REFERENCE = re.compile(
    r"(?:[A-Za-z][A-Za-z0-9+.\-]*://\S+/)?(?P<type>[A-Z][A-Za-z]+)/[A-Za-z0-9\-.]{1,64}"
    r"(?:/_history/[A-Za-z0-9\-.]{1,64})?"
)
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)

# Physiological limits for warnings only: the profiles do not bound values, and a
# provider must not drop an alarming reading because it looks implausible.
_PLAUSIBLE = {
    HEART_RATE_CODE: (20.0, 300.0),
    SYSTOLIC_CODE: (40.0, 300.0),
    DIASTOLIC_CODE: (10.0, 200.0),
}


class InvalidVitalSignError(RemoteProtocolError):
    """A received reading cannot be expressed as a vital-signs Observation."""


@dataclass(frozen=True, slots=True)
class ProfileViolation:
    """One broken rule: ``rule`` names it (a profile invariant key such as ``vs-2`` or a
    short element name such as ``bp-unit``), ``path`` says where (FHIRPath-style)."""

    rule: str
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: [{self.rule}] {self.message}"


class FhirProfileError(RemoteProtocolError):
    """A resource breaks the vital-signs profile; ``violations`` lists every broken rule."""

    def __init__(self, violations: Sequence[ProfileViolation]) -> None:
        self.violations = tuple(violations)
        count = len(self.violations)
        super().__init__(
            f"{count} vital-signs profile violation{'s' if count != 1 else ''}: "
            + "; ".join(str(v) for v in self.violations)
        )


class FhirDocumentError(RemoteProtocolError):
    """A document is not a FHIR Bundle of Observations (or not JSON at all)."""


class FhirStorageError(StorageError):
    """A FHIR file could not be read or written."""


@dataclass(frozen=True, slots=True)
class VitalSign:
    """A decrypted, verified reading as the provider holds it.

    ``kind`` is a ``VitalKind`` value (0 heart rate, 1 blood pressure); only the fields of
    that kind are read. ``time_ns`` is the reading's stamp in nanoseconds since the Unix
    epoch (UTC). ``sender_uri`` sealed it -- the device itself, a converter or a server --
    with ``security_technique`` (``none``, ``sym-aes``, ``ecc``, ``cpabe``, ...).
    """

    device_uri: str
    patient_id: str
    kind: int
    seq: int
    time_ns: int
    heart_rate_bpm: float
    systolic_mmhg: float
    diastolic_mmhg: float
    sender_uri: str
    security_technique: str


# --- building ---------------------------------------------------------------------------


def fhir_id(text: str) -> str:
    """``text`` as a FHIR id (``[A-Za-z0-9\\-.]{1,64}``), deterministically.

    A valid id is kept as it is. Anything else -- a URI, an id with ``_`` or spaces, an
    over-long one -- becomes ``h`` + 32 hex digits of SHA-256(text) + ``-`` + a readable
    tail of its letters and digits, so distinct inputs never share an id.
    """
    if _FHIR_ID.fullmatch(text) and not _DERIVED_ID.fullmatch(text):
        return text
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    tail = _SLUG_INVALID.sub("-", text).strip("-.")[-30:].strip("-.")
    return f"h{digest}-{tail}" if tail else f"h{digest}"


def to_observation(v: VitalSign, *, observation_id: str | None = None) -> Observation:
    """The FHIR R4 vital-signs Observation for one received reading.

    ``observation_id`` defaults to an id derived from the reading's identifier, so the same
    reading always yields the same resource. Raises ``InvalidVitalSignError`` when the reading
    cannot be expressed (unknown kind, non-finite value, unrepresentable time, empty or
    control-character URIs, no patient), ``LocalProtocolError`` for an invalid
    ``observation_id``.
    """
    kind = _vital_kind(v.kind)
    device_uri = _token("device_uri", v.device_uri)
    sender_uri = _token("sender_uri", v.sender_uri)
    technique = _token("security_technique", v.security_technique)
    if not v.patient_id:
        raise InvalidVitalSignError("reading has no patient id; vital signs need a subject")
    if v.seq < 0:
        raise InvalidVitalSignError(f"reading seq must be >= 0, got {v.seq}")
    reading = f"{device_uri}#{v.seq}"
    if observation_id is None:
        observation_id = fhir_id(f"{READING_IDENTIFIER_SYSTEM}|{reading}")
    elif not _FHIR_ID.fullmatch(observation_id):
        raise LocalProtocolError(f"observation id {observation_id!r} is not a FHIR id")

    if kind is VitalKind.HEART_RATE:
        profile, code, display = HEARTRATE_PROFILE, HEART_RATE_CODE, "Heart rate"
        measured: dict[str, Any] = {
            "valueQuantity": _quantity("heart_rate_bpm", v.heart_rate_bpm, HEART_RATE_UNIT)
        }
    else:
        profile, code = BP_PROFILE, BP_PANEL_CODE
        display = "Blood pressure panel with all children optional"
        measured = {
            "component": [
                {
                    "code": _loinc(SYSTOLIC_CODE, "Systolic blood pressure"),
                    "valueQuantity": _quantity("systolic_mmhg", v.systolic_mmhg, PRESSURE_UNIT),
                },
                {
                    "code": _loinc(DIASTOLIC_CODE, "Diastolic blood pressure"),
                    "valueQuantity": _quantity("diastolic_mmhg", v.diastolic_mmhg, PRESSURE_UNIT),
                },
            ]
        }
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": observation_id,
        "meta": {
            "profile": [VITALSIGNS_PROFILE, profile],
            "tag": [
                {
                    "system": SECURITY_TECHNIQUE_TAG_SYSTEM,
                    "code": technique,
                    "display": f"received sealed with security technique {technique}",
                }
            ],
        },
        "identifier": [{"system": READING_IDENTIFIER_SYSTEM, "value": reading}],
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": OBSERVATION_CATEGORY,
                        "code": "vital-signs",
                        "display": "Vital Signs",
                    }
                ],
                "text": "Vital Signs",
            }
        ],
        "code": _loinc(code, display),
        "subject": {"reference": f"Patient/{fhir_id(v.patient_id)}"},
        "effectiveDateTime": _effective(v.time_ns),
        **measured,
        "device": {"reference": f"Device/{fhir_id(device_uri)}", "display": device_uri},
        "note": [
            {
                "authorString": sender_uri,
                "text": f"Received over iomt from {sender_uri}, "
                f"sealed with security technique {technique}.",
            }
        ],
    }
    try:
        return Observation.model_validate(resource)
    except ValidationError as exc:
        raise InvalidVitalSignError(
            f"reading is not expressible in FHIR: {_first_error(exc)}"
        ) from exc


def _vital_kind(kind: int) -> VitalKind:
    try:
        return VitalKind(kind)
    except ValueError:
        raise InvalidVitalSignError(f"unknown vital kind {kind!r}") from None


def _token(name: str, value: str) -> str:
    # URIs and codes: non-empty, no whitespace or control characters, valid UTF-8.
    if not value or any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        raise InvalidVitalSignError(f"{name} must be non-empty without whitespace, got {value!r}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidVitalSignError(f"{name} is not valid Unicode: {value!r}") from None
    return value


def _quantity(name: str, value: float, unit: str) -> dict[str, Any]:
    if not _is_number(value):
        raise InvalidVitalSignError(f"{name} must be a finite number, got {value!r}")
    return {"value": value, "unit": unit, "system": UCUM, "code": unit}


def _loinc(code: str, display: str) -> dict[str, Any]:
    return {"coding": [{"system": LOINC, "code": code, "display": display}], "text": display}


def _effective(time_ns: int) -> dt.datetime:
    try:
        # Floor to microseconds: the finest a datetime (and fhir.resources) keeps.
        return _EPOCH + dt.timedelta(microseconds=time_ns // 1000)
    except OverflowError:
        raise InvalidVitalSignError(f"reading time {time_ns} ns is outside years 1-9999") from None


# --- checking ---------------------------------------------------------------------------


def profile_violations(obs: Observation) -> tuple[ProfileViolation, ...]:
    """Every vital-signs profile rule ``obs`` breaks (empty when it conforms)."""
    return tuple(_observation_violations(obs, "Observation"))


def check_vital_signs_profile(obs: Observation) -> None:
    """Raise ``FhirProfileError`` listing every rule of the vital-signs profiles (vitalsigns
    plus heartrate or bp) that ``obs`` breaks, including a lossy JSON round trip."""
    violations = profile_violations(obs)
    if violations:
        raise FhirProfileError(violations)


def plausibility_warnings(obs: Observation) -> tuple[str, ...]:
    """Values outside physiological limits. Not profile rules: warn, never reject."""
    try:
        resource = json.loads(obs.model_dump_json())
    except (ValueError, TypeError):
        return ()
    return tuple(_plausibility(resource, "Observation"))


@dataclass(frozen=True, slots=True)
class DocumentCheck:
    """What ``check_document`` found: how many Observations, which rules they break, and
    plausibility warnings (which never make a document invalid)."""

    observations: int
    violations: tuple[ProfileViolation, ...]
    warnings: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.violations


def check_document(data: bytes | str) -> DocumentCheck:
    """Check a JSON document holding one Observation or a Bundle of Observations.

    Any input gives a ``DocumentCheck``, never an exception: text that is not JSON, not
    FHIR, or not an Observation is reported as a violation like any other.
    """
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        return DocumentCheck(0, (ProfileViolation("json", "$", f"not JSON: {exc}"),), ())
    if not isinstance(doc, dict):
        return DocumentCheck(0, (ProfileViolation("resource-type", "$", "not a JSON object"),), ())
    kind = doc.get("resourceType")
    if kind == "Observation":
        violations = _observation_document(doc, "Observation")
        return DocumentCheck(1, tuple(violations), tuple(_plausibility(doc, "Observation")))
    if kind != "Bundle":
        message = f"expected an Observation or a Bundle, got {kind!r}"
        return DocumentCheck(0, (ProfileViolation("resource-type", "$", message),), ())
    shell = {k: v for k, v in doc.items() if k != "entry"}
    violations = _schema_violations(Bundle, shell, "Bundle")[1]
    warnings: list[str] = []
    entries = doc.get("entry", [])
    if not isinstance(entries, list):
        violations.append(ProfileViolation("fhir-schema", "Bundle.entry", "must be a list"))
        entries = []
    for i, entry in enumerate(entries):
        base = f"Bundle.entry[{i}].resource"
        resource = entry.get("resource") if isinstance(entry, dict) else None
        kind = resource.get("resourceType") if isinstance(resource, dict) else None
        if not isinstance(resource, dict) or kind != "Observation":
            message = f"expected an Observation, got {kind!r}"
            violations.append(ProfileViolation("resource-type", base, message))
            continue
        violations += _observation_document(resource, base)
        warnings += _plausibility(resource, base)
    return DocumentCheck(len(entries), tuple(violations), tuple(warnings))


def _observation_document(resource: dict[str, Any], base: str) -> list[ProfileViolation]:
    # Profile rules on the JSON as given, then the base datatypes via fhir.resources, then
    # the round trip of what fhir.resources made of it.
    violations = _resource_violations(resource, base)
    obs, schema = _schema_violations(Observation, resource, base)
    if obs is None:
        return violations + schema
    return violations + _round_trip_violations(obs, base)


def _schema_violations(
    model: Any, data: dict[str, Any], base: str
) -> tuple[Any, list[ProfileViolation]]:
    """``data`` parsed by ``model``, or None and the datatype errors fhir.resources found."""
    try:
        return model.model_validate(data), []
    except ValidationError as exc:
        return None, [
            ProfileViolation("fhir-schema", _join(base, err["loc"]), err["msg"])
            for err in exc.errors()
        ]
    # fhir.resources raises KeyError for an unknown resourceType nested in a resource.
    except (KeyError, ValueError, TypeError, RecursionError) as exc:
        return None, [ProfileViolation("fhir-schema", base, f"not a FHIR R4 resource: {exc!r}")]


def _observation_violations(obs: Observation, base: str) -> list[ProfileViolation]:
    return _checked_resource(obs, base)[1]


def _checked_resource(
    obs: Observation, base: str
) -> tuple[dict[str, Any] | None, list[ProfileViolation]]:
    """The Observation's JSON object (serialized once) and what the profile and the JSON
    round trip find wrong with it."""
    try:
        text = obs.model_dump_json()
        resource = json.loads(text)
    except (ValueError, TypeError) as exc:
        return None, [ProfileViolation("json-round-trip", base, f"does not serialize: {exc}")]
    return resource, _resource_violations(resource, base) + _round_trip_violations(obs, base, text)


def _round_trip_violations(
    obs: Observation, base: str, text: str | None = None
) -> list[ProfileViolation]:
    try:
        again = Observation.model_validate_json(obs.model_dump_json() if text is None else text)
    except ValidationError as exc:
        return [
            ProfileViolation("json-round-trip", base, f"does not parse back: {_first_error(exc)}")
        ]
    except (KeyError, ValueError, TypeError) as exc:
        return [ProfileViolation("json-round-trip", base, f"does not serialize: {exc!r}")]
    if again != obs:
        return [ProfileViolation("json-round-trip", base, "parses back to a different resource")]
    return []


class _Violations(list[ProfileViolation]):
    """The violations found in one resource, each at a path under ``base``."""

    def __init__(self, base: str) -> None:
        super().__init__()
        self.base = base

    def bad(self, rule: str, where: str, message: str) -> None:
        self.append(ProfileViolation(rule, self.base + where, message))


def _resource_violations(r: Mapping[str, Any], base: str) -> list[ProfileViolation]:
    """The mechanically checkable rules of vitalsigns + heartrate / bp, on FHIR JSON."""
    out = _Violations(base)
    if r.get("resourceType") != "Observation":
        out.bad("resource-type", "", f"is a {r.get('resourceType')!r}, not an Observation")
        return list(out)
    _check_status(r, out)
    _check_category(r, out)
    is_hr, is_bp = _check_code(r, out)
    _check_references(r, out)
    _check_effective(r, out)
    values = _value_keys(r)
    components = _list(r.get("component"))
    _check_value_or_absence(r, values, components, out)
    if is_hr and not is_bp:
        _check_heart_rate(r, values, out)
    if is_bp and not is_hr:
        _check_blood_pressure(values, components, out)
    return list(out)


def _check_status(r: Mapping[str, Any], out: _Violations) -> None:
    status = r.get("status")
    if status is None:
        out.bad("status", ".status", "is required")
    elif not isinstance(status, str) or status not in OBSERVATION_STATUSES:
        out.bad("status", ".status", f"{status!r} is not an observation-status code")


def _check_category(r: Mapping[str, Any], out: _Violations) -> None:
    # Slice VSCat: exactly one category coded observation-category#vital-signs.
    found = sum(
        _has_coding(c, OBSERVATION_CATEGORY, "vital-signs") for c in _list(r.get("category"))
    )
    if found != 1:
        out.bad(
            "vs-category",
            ".category",
            f"needs exactly one {OBSERVATION_CATEGORY}#vital-signs category, found {found}",
        )


def _check_code(r: Mapping[str, Any], out: _Violations) -> tuple[bool, bool]:
    """Check the code; whether it is heart rate's, whether blood pressure's."""
    code = _dict(r.get("code"))
    for i, coding in enumerate(_list(code.get("coding"))):
        if not _dict(coding).get("system"):
            out.bad("code-system", f".code.coding[{i}]", "every coding needs a system")
    is_hr = _has_coding(code, LOINC, HEART_RATE_CODE)
    is_bp = _has_coding(code, LOINC, BP_PANEL_CODE)
    if is_hr == is_bp:
        out.bad(
            "code",
            ".code",
            f"needs exactly one of LOINC {HEART_RATE_CODE} (heart rate) or "
            f"{BP_PANEL_CODE} (blood pressure panel)",
        )
    return is_hr, is_bp


def _check_references(r: Mapping[str, Any], out: _Violations) -> None:
    if r.get("subject") is None:
        out.bad("subject", ".subject", "is required (a Patient reference)")
    elif not _references(r.get("subject"), {"Patient"}):
        out.bad("subject", ".subject", "must reference a Patient")
    if r.get("device") is not None and not _references(r.get("device"), {"Device", "DeviceMetric"}):
        out.bad("device", ".device", "must reference a Device or DeviceMetric")


def _check_effective(r: Mapping[str, Any], out: _Violations) -> None:
    effective = [k for k in r if k.startswith("effective") and r[k] is not None]
    if not effective:
        out.bad("effective", ".effective[x]", "is required (effectiveDateTime or effectivePeriod)")
    for key in effective:
        if key not in {"effectiveDateTime", "effectivePeriod"}:
            out.bad("effective", f".{key}", "vital signs take effectiveDateTime or effectivePeriod")
    if len(effective) > 1:
        out.bad("effective", ".effective[x]", "only one effective[x] may be present")
    when = r.get("effectiveDateTime")
    if when is not None and not (isinstance(when, str) and _DAY_PRECISION.match(when)):
        out.bad("vs-1", ".effectiveDateTime", f"{when!r} is not precise to the day")
    period = r.get("effectivePeriod")
    if period is not None and not (_dict(period).get("start") or _dict(period).get("end")):
        out.bad("effective", ".effectivePeriod", "needs a start or an end")


def _check_value_or_absence(
    r: Mapping[str, Any], values: Sequence[str], components: Sequence[Any], out: _Violations
) -> None:
    absent = r.get("dataAbsentReason") is not None
    if not components and not _list(r.get("hasMember")) and not values and not absent:
        out.bad("vs-2", "", "without component or hasMember, needs value[x] or dataAbsentReason")
    if values and absent:
        out.bad("obs-6", ".dataAbsentReason", "only allowed when value[x] is absent")
    for i, component in enumerate(components):
        c = _dict(component)
        if not _value_keys(c) and c.get("dataAbsentReason") is None:
            out.bad("vs-3", f".component[{i}]", "needs value[x] or dataAbsentReason")


def _check_heart_rate(r: Mapping[str, Any], values: Sequence[str], out: _Violations) -> None:
    for key in values:
        if key != "valueQuantity":
            out.bad("hr-value", f".{key}", "heart rate takes valueQuantity")
    if "valueQuantity" in values:
        out.extend(
            _quantity_violations(
                r["valueQuantity"], out.base + ".valueQuantity", HEART_RATE_UNIT, "hr-unit"
            )
        )


def _check_blood_pressure(
    values: Sequence[str], components: Sequence[Any], out: _Violations
) -> None:
    for key in values:
        out.bad("bp-value", f".{key}", "the panel has no value[x]; values go in components")
    for slice_code, rule, name in (
        (SYSTOLIC_CODE, "bp-systolic", "systolic"),
        (DIASTOLIC_CODE, "bp-diastolic", "diastolic"),
    ):
        matches = [
            i
            for i, c in enumerate(components)
            if _has_coding(_dict(c).get("code"), LOINC, slice_code)
        ]
        if len(matches) != 1:
            out.bad(
                rule,
                ".component",
                f"needs exactly one {name} component (LOINC {slice_code}), found {len(matches)}",
            )
        for i in matches:
            c = _dict(components[i])
            for key in _value_keys(c):
                if key != "valueQuantity":
                    out.bad(rule, f".component[{i}].{key}", f"{name} takes valueQuantity")
            if "valueQuantity" in c and c["valueQuantity"] is not None:
                out.extend(
                    _quantity_violations(
                        c["valueQuantity"],
                        f"{out.base}.component[{i}].valueQuantity",
                        PRESSURE_UNIT,
                        "bp-unit",
                    )
                )


def _quantity_violations(q: Any, path: str, unit: str, unit_rule: str) -> list[ProfileViolation]:
    q = _dict(q)
    out = []
    value = q.get("value")
    if value is None:
        out.append(ProfileViolation("quantity-value", f"{path}.value", "is required"))
    elif not _is_number(value):
        out.append(
            ProfileViolation("quantity-value", f"{path}.value", f"{value!r} is not a number")
        )
    if not q.get("unit"):
        out.append(ProfileViolation("quantity-unit", f"{path}.unit", "is required"))
    if q.get("system") != UCUM:
        out.append(ProfileViolation("ucum", f"{path}.system", f"must be {UCUM}"))
    if q.get("code") != unit:
        out.append(
            ProfileViolation(
                unit_rule, f"{path}.code", f"must be UCUM {unit!r}, got {q.get('code')!r}"
            )
        )
    return out


def _plausibility(r: Mapping[str, Any], base: str) -> list[str]:
    checks: list[tuple[str, str, Any]] = []
    if _has_coding(r.get("code"), LOINC, HEART_RATE_CODE):
        checks.append((HEART_RATE_CODE, f"{base}.valueQuantity", r.get("valueQuantity")))
    for i, component in enumerate(_list(r.get("component"))):
        c = _dict(component)
        for code in (SYSTOLIC_CODE, DIASTOLIC_CODE):
            if _has_coding(c.get("code"), LOINC, code):
                checks.append(
                    (code, f"{base}.component[{i}].valueQuantity", c.get("valueQuantity"))
                )
    out = []
    for code, path, quantity in checks:
        value = _dict(quantity).get("value")
        low, high = _PLAUSIBLE[code]
        if _is_number(value) and not low <= value <= high:
            unit = _dict(quantity).get("code")
            out.append(
                f"{path}: {value} {unit} is outside the plausible range {low:g}-{high:g} "
                f"(LOINC {code}); kept, since the profile does not bound it"
            )
    return out


def _is_number(x: object) -> TypeGuard[int | float]:
    # A finite JSON number; huge ints are finite (and would overflow math.isfinite).
    if isinstance(x, bool):
        return False
    return isinstance(x, int) or (isinstance(x, float) and math.isfinite(x))


def _has_coding(concept: Any, system: str, code: str) -> bool:
    return any(
        _dict(c).get("system") == system and _dict(c).get("code") == code
        for c in _list(_dict(concept).get("coding"))
    )


def _references(ref: Any, types: set[str]) -> bool:
    # A literal reference to one of ``types``, or any reference whose ``type`` says so.
    ref = _dict(ref)
    literal = ref.get("reference")
    if isinstance(literal, str):
        match = _REFERENCE.fullmatch(literal)
        if match:
            return match["type"] in types
    kind = ref.get("type")
    return (
        isinstance(kind, str)
        and kind in types
        and (literal is not None or ref.get("identifier") is not None)
    )


def _value_keys(element: Mapping[str, Any]) -> list[str]:
    return [k for k, v in element.items() if k.startswith("value") and v is not None]


def _list(x: Any) -> list[Any]:
    return x if isinstance(x, list) else []


def _dict(x: Any) -> dict[str, Any]:
    return x if isinstance(x, dict) else {}


def _join(base: str, loc: Iterable[int | str]) -> str:
    path = base
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def _first_error(exc: ValidationError) -> str:
    errors = exc.errors()
    if not errors:
        return str(exc)
    err = errors[0]
    return f"{_join('', err['loc']).lstrip('.')}: {err['msg']}"


# --- bundles ----------------------------------------------------------------------------


def bundle_json(observations: Iterable[Observation]) -> str:
    """A FHIR Bundle of type ``collection`` holding ``observations``, as JSON text.

    Every observation is checked first; ``FhirProfileError`` lists all violations across
    the bundle, so a non-conforming export is never produced.
    """
    resources: list[dict[str, Any] | None] = []
    violations: list[ProfileViolation] = []
    for i, obs in enumerate(observations):
        resource, found = _checked_resource(obs, f"Bundle.entry[{i}].resource")
        resources.append(resource)
        violations += found
    if violations:
        raise FhirProfileError(violations)
    # Each Observation is serialized once, for its check, and the Bundle assembled from
    # those objects: the same bytes as fhir.resources' Bundle.model_dump_json(indent=2)
    # (tested), without parsing and serializing every Observation twice more (the FHIR
    # export was most of a large run's stopping time).
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "collection"}
    if resources:  # fhir.resources leaves an empty list out
        bundle["entry"] = [{"resource": r} for r in resources]
    return json.dumps(bundle, indent=2) + "\n"


def observations_from_bundle_json(data: bytes | str) -> list[Observation]:
    """The Observations of a Bundle in JSON; ``FhirDocumentError`` if it is anything else.

    Parsing does not check the profile; run ``check_vital_signs_profile`` on the result.
    """
    try:
        bundle = Bundle.model_validate_json(data)
    except ValidationError as exc:
        raise FhirDocumentError(f"not a FHIR Bundle: {_first_error(exc)}") from exc
    # fhir.resources raises KeyError for an unknown resourceType inside an entry.
    except (KeyError, ValueError, TypeError) as exc:
        raise FhirDocumentError(f"not a FHIR Bundle: {exc!r}") from exc
    out: list[Observation] = []
    for i, entry in enumerate(bundle.entry or []):
        resource = entry.resource
        if not isinstance(resource, Observation):
            kind = type(resource).__name__ if resource is not None else "nothing"
            raise FhirDocumentError(f"Bundle.entry[{i}] holds {kind}, not an Observation")
        out.append(resource)
    return out
