"""The eavesdropper's test: which bytes hold a readable (plausible) Vitals reading."""

from __future__ import annotations

import contextlib
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from capture.traffic import seal
from capture.vectors import load
from iomt.capture.plaintext import NotVitalsError, parse_vitals_sample, scan_vitals
from iomt.errors import RemoteProtocolError
from iomt.msg import Time, Vitals, encode

CASES = load("plaintext")


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_vectors(case: dict) -> None:  # type: ignore[type-arg]
    data, expect, mode = case["data"], case["expect"], case["mode"]
    if expect is None:
        if mode in ("sample", "both"):
            with pytest.raises(NotVitalsError):
                parse_vitals_sample(data)
        if mode in ("scan", "both"):
            assert list(scan_vitals(data)) == []
        return
    found = parse_vitals_sample(data) if mode == "sample" else next(iter(scan_vitals(data)))
    for key, value in expect.items():
        assert getattr(found, key) == value, key


def test_not_vitals_is_a_remote_protocol_error() -> None:
    assert issubclass(NotVitalsError, RemoteProtocolError)


URI = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=200)
PATIENT = st.text(st.characters(categories=("L", "N", "P", "S")), max_size=40)
STAMP = st.builds(Time, sec=st.integers(-(2**31), 2**31 - 1), nanosec=st.integers(0, 999_999_999))
plausible = st.one_of(
    st.builds(
        Vitals,
        stamp=STAMP,
        device_uri=URI,
        patient_id=PATIENT,
        kind=st.just(Vitals.KIND_HEART_RATE),
        seq=st.integers(0, 2**32 - 1),
        heart_rate_bpm=st.floats(20, 250, width=32),
    ),
    st.builds(
        Vitals,
        device_uri=URI,
        kind=st.just(Vitals.KIND_BLOOD_PRESSURE),
        systolic_mmhg=st.floats(50, 260, width=32),
        diastolic_mmhg=st.floats(30, 160, width=32),
    ),
)


@settings(max_examples=150, deadline=None)
@given(v=plausible, prefix=st.binary(max_size=40), suffix=st.binary(max_size=40))
def test_every_plausible_reading_is_found_exactly_and_embedded(
    v: Vitals, prefix: bytes, suffix: bytes
) -> None:
    data = encode(v)
    found = parse_vitals_sample(data)
    assert (found.device_uri, found.patient_id, found.kind, found.seq) == (
        v.device_uri,
        v.patient_id,
        v.kind,
        v.seq,
    )
    embedded = [f for f in scan_vitals(prefix + data + suffix) if f.offset == len(prefix)]
    assert embedded and embedded[0].device_uri == v.device_uri and embedded[0].has_header
    headerless = prefix + data[4:] + suffix
    # found without its header -- or, when the bytes before it happen to be a CDR header
    # (hypothesis found prefix = 00 01 00 00), as the headered sample those bytes complete
    assert any(
        (f.offset == len(prefix) and not f.has_header)
        or (f.offset == len(prefix) - 4 and f.has_header and f.device_uri == v.device_uri)
        for f in scan_vitals(headerless)
    )
    assert not any(f.offset == len(prefix) for f in scan_vitals(headerless, headerless=False))


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=600))
def test_arbitrary_bytes_never_raise(data: bytes) -> None:
    with contextlib.suppress(NotVitalsError):
        parse_vitals_sample(data)
    for finding in scan_vitals(data):  # structured garbage may parse; it must stay in bounds
        assert 0 <= finding.offset < finding.end <= len(data)
        assert finding.kind in (0, 1) and finding.device_uri


def test_sealed_readings_are_not_readable() -> None:
    plain = encode(Vitals(device_uri="iomt://ward/hr-1", kind=0, heart_rate_bpm=72.0))
    for i in range(300):
        assert list(scan_vitals(seal(plain, i))) == []
        assert list(scan_vitals(os.urandom(len(plain) + 16))) == []
