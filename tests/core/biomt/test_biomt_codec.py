"""Canonical encodings: vectors, round trips, and "any bytes -> a value or a typed error"."""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Any

import pytest
from biomt_vectors import error, load, message_type, to_json
from biomt_world import SECOND, World, heart_rate
from hypothesis import given, settings
from hypothesis import strategies as st

from iomt.core import biomt
from iomt.core.biomt import (
    BiomtDecodeError,
    Measurement,
    ObserveRequest,
    Threshold,
)
from iomt.core.biomt.bodies import decode_body
from iomt.core.biomt.codec import Message
from iomt.core.biomt.keys import SharedKey, StorageKeys
from iomt.core.biomt.provisioning import (
    DeviceAttributes,
    device_key,
    id_issue,
    response_key,
    secgen,
    transcript1,
    transcript2,
)
from iomt.core.biomt.session import attestation_digest


@pytest.mark.parametrize("case", load()["encodings"], ids=lambda c: c["type"])
def test_known_encodings(case: dict[str, Any]) -> None:
    cls = message_type(case["type"])
    raw = bytes.fromhex(case["hex"])
    value = cls.from_bytes(raw)
    assert to_json(value) == case["fields"]
    assert value.to_bytes() == raw


@pytest.mark.parametrize("case", load()["invalid"], ids=lambda c: c["why"])
def test_invalid_encodings(case: dict[str, Any]) -> None:
    with pytest.raises(error(case["error"])):
        message_type(case["type"]).from_bytes(bytes.fromhex(case["hex"]))


def test_known_derivations() -> None:
    d = load()["derivations"]
    attrs = DeviceAttributes.from_bytes(bytes.fromhex(d["attributes"]["hex"]))
    numbers = tuple((n, bytes.fromhex(v)) for n, v in d["numbers"])
    agreement = secgen(d["facility"], attrs, numbers, bytes.fromhex(d["signing_key"]))
    assert agreement.hex() == d["agreement"]
    assert id_issue(agreement) == d["pseudonym"]
    z = bytes.fromhex(d["z"])
    th1 = transcript1(bytes([3]) * 32, bytes([4]) * 32, "bolster-a", bytes([5]) * 32)
    assert th1.hex() == d["th1"]
    assert transcript2(th1, b"sealed-secrets").hex() == d["th2"]
    assert response_key(z, th1).hex() == d["response_key"]
    key = device_key(
        z,
        th1,
        pseudonym=d["pseudonym"],
        expires=1_702_592_000 * 10**9,
        device_cert_fp=bytes([6]) * 32,
        bolster_cert_fp=bytes([5]) * 32,
    )
    assert key.hex() == d["device_key"]
    assert SharedKey(key).key_id.hex() == d["key_id"]
    storage = StorageKeys(bytes.fromhex(d["storage_secret"]))
    name, pseudonym = d["requester_pseudonym"]
    assert storage.requester_pseudonym(name) == pseudonym
    ledger_id, device, cloud = d["cloud_pseudonym"]
    assert storage.cloud_pseudonym(bytes.fromhex(ledger_id), device) == cloud
    # what a session-authenticated request is recorded as, and the attestation chain
    recorded, attestation = (
        message_type(c["type"]).from_bytes(bytes.fromhex(c["hex"]))
        for c in load()["encodings"]
        if c["type"] in ("SessionAuthenticated", "SessionAttestation")
    )
    assert recorded.digest().hex() == d["session_authenticated_digest"]
    chain = ((3, recorded.digest()), (9, bytes([1]) * 32))
    digest = attestation_digest("bolster-a", "dr-alice", bytes(range(16)), chain)
    assert digest.hex() == d["attestation_digest"] == attestation.digest.hex()
    assert attestation_digest("bolster-a", "dr-alice", bytes(range(16)), chain[:1]) != digest
    # SecGen binds every input: another number, key or facility gives another agreement
    assert secgen("facility-b", attrs, numbers, bytes.fromhex(d["signing_key"])) != agreement
    other = ((numbers[0][0], bytes(32)), numbers[1])
    assert secgen(d["facility"], attrs, other, bytes.fromhex(d["signing_key"])) != agreement


def _all_messages() -> list[type[Message]]:
    out = []
    for module in (
        biomt,
        biomt.provisioning,
        biomt.bodies,
        biomt.cloud,
        biomt.cluster,
        biomt.master,
        biomt.session,
    ):
        for obj in vars(module).values():
            if isinstance(obj, type) and issubclass(obj, Message) and obj is not Message:
                out.append(obj)
    return sorted(set(out), key=lambda c: c.__name__)


MESSAGES = _all_messages()


@settings(max_examples=30, deadline=None)
@given(data=st.binary(max_size=300))
@pytest.mark.parametrize("cls", MESSAGES, ids=lambda c: c.__name__)
def test_any_bytes_decode_or_raise_a_typed_error(cls: type[Message], data: bytes) -> None:
    for candidate in (data, cls.TAG + data):
        with contextlib.suppress(BiomtDecodeError):
            cls.from_bytes(candidate)


def _real_messages() -> list[Message]:
    """One of every message the services exchange, from a real run."""
    w = World()
    dev = w.new_device()
    enrolment = dev.enrol(w.bolster.credentials, owner="patient-7", attributes={"a": "b"})
    prov_req = w.admin.approve(enrolment)
    provisioned = w.bolster.provision(prov_req)
    dev.complete(provisioned)
    peer = w.device("iomt://facility-a/p")
    obs_req = w.physician.observe(
        "bolster-a", [dev.pseudonym], duration=SECOND, threshold=Threshold("bpm", 1, 2)
    )
    sub = w.bolster.observe(obs_req)
    store_req = dev.store_request(heart_rate(70, w.clock()))
    stored = w.bolster.store(store_req)
    acc_req = w.physician.access("bolster-a", dev.pseudonym)
    comm_req = dev.communication_request(peer.pseudonym, lifetime=SECOND)
    hist_req = w.patient.history("bolster-a", dev.pseudonym)
    rem_req = w.admin.remove("bolster-a", peer.pseudonym, reason="x")
    doctor = w.user("dr-bob", "physician", attest_every=1)
    w.connect(doctor)
    s_acc = doctor.session_access("bolster-a", dev.pseudonym)
    s_acc_resp = w.bolster.session_request(s_acc)
    doctor.open_session(s_acc, s_acc_resp)
    s_obs = doctor.session_observe("bolster-a", [dev.pseudonym], duration=SECOND)
    s_att = doctor.attest("bolster-a")
    assert s_att is not None
    session_msgs: list[Message] = [
        s_acc,
        s_acc_resp,
        s_obs,
        w.bolster.session_request(s_obs),
        s_att,
        w.bolster.session_request(s_att),
    ]
    msgs: list[Message] = [
        *session_msgs,
        enrolment.submission,
        prov_req,
        provisioned,
        obs_req,
        sub,
        store_req,
        stored.receipt,
        *stored.updates,
        acc_req,
        w.bolster.access(acc_req),
        comm_req,
        w.bolster.setup_communication(comm_req),
        hist_req,
        w.bolster.history(hist_req),
        rem_req,
        w.bolster.remove(rem_req),
        w.bolster.credentials,
        w.bolster.own_origin(),
        w.bolster.origin_link(dev.pseudonym),
    ]
    return msgs


REAL = _real_messages()


@pytest.mark.parametrize("msg", REAL, ids=lambda m: type(m).__name__)
def test_real_messages_round_trip(msg: Message) -> None:
    raw = msg.to_bytes()
    assert type(msg).from_bytes(raw) == msg


@settings(max_examples=40, deadline=None)
@given(
    index=st.integers(0, len(REAL) - 1), position=st.integers(0, 10**6), value=st.integers(0, 255)
)
def test_corrupted_messages_decode_or_raise(index: int, position: int, value: int) -> None:
    raw = bytearray(REAL[index].to_bytes())
    raw[position % len(raw)] = value
    for candidate in (bytes(raw), bytes(raw[: position % len(raw)])):
        with contextlib.suppress(BiomtDecodeError):
            type(REAL[index]).from_bytes(candidate)


@settings(max_examples=40, deadline=None)
@given(data=st.binary(max_size=200))
def test_any_body_decodes_or_raises(data: bytes) -> None:
    with contextlib.suppress(BiomtDecodeError):
        decode_body(data)


_names = st.from_regex(r"[a-z][a-z0-9_]{0,15}", fullmatch=True)
_floats = st.floats(-1e6, 1e6, allow_nan=False)


@settings(max_examples=80, deadline=None)
@given(
    kind=_names,
    time=st.integers(0, 2**63 - 1),
    values=st.dictionaries(_names, _floats, min_size=1, max_size=16),
)
def test_measurement_round_trip(kind: str, time: int, values: dict[str, float]) -> None:
    m = Measurement(kind, time, tuple(values.items()))
    assert Measurement.from_bytes(m.to_bytes()) == m
    assert dict(m.values) == values


@settings(max_examples=40, deadline=None)
@given(
    devices=st.sets(st.text(min_size=1, max_size=20), min_size=1, max_size=8),
    interval=st.integers(0, 2**62),
    threshold=st.none() | st.tuples(_names, _floats, _floats),
)
def test_signed_bytes_cover_every_field_but_the_signature(
    devices: set[str], interval: int, threshold: tuple[str, float, float] | None
) -> None:
    th = None if threshold is None else Threshold(threshold[0], *sorted(threshold[1:]))
    req = ObserveRequest("b", "r", tuple(devices), th, interval, 1, bytes(16), 0, bytes(32))
    signed = dataclasses.replace(req, signature=b"x" * 64)
    assert signed.signed_bytes() == req.signed_bytes()
    assert ObserveRequest.from_bytes(signed.to_bytes()) == signed
    assert dataclasses.replace(req, interval=interval + 1).signed_bytes() != req.signed_bytes()
