"""Experiment 1 judged from a bag: readable means a plausible Vitals is in the bytes."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from capture.bags import T0, service_event, write_bag
from capture.traffic import CONVERTER, PROVIDER, conversion, envelope, seal, vitals
from iomt.capture.audit import (
    AUDIT_SCHEMA,
    HOP_DEVICE_TO_CONVERTER,
    HOP_TO_REQUESTER,
    audit,
    load_keystore_verifier,
)
from iomt.capture.errors import BagReadError
from iomt.cli import main
from iomt.msg import ConversionRequest, DataShare, Registration, SecureEnvelope, Time, encode

VITALS, ENVELOPE, CONVERSION = (
    "iomt_interfaces/msg/Vitals",
    "iomt_interfaces/msg/SecureEnvelope",
    "iomt_interfaces/msg/ConversionRequest",
)
EVENT = "iomt_interfaces/srv/DataShare_Event"
INBOX, CONVERT, SHARE = (
    "/clinic/dr_a/inbox",
    "/ward/gw_1/convert",
    "/ward/hr_1/data_share/_service_event",
)

# The documented top-level keys of `iomt bag audit --json` (docs/capture.md).
AUDIT_KEYS = {
    "schema", "bag", "messages_scanned", "transmissions", "readable", "readable_share",
    "label_mismatches", "malformed", "by_kind", "by_topic", "by_technique", "by_sender",
    "by_device", "by_hop", "radio_map", "by_radio_hops", "readable_items",
    "readable_items_truncated", "unsigned_envelopes", "unsigned_conversion_requests",
    "unsigned_items", "signatures",
}  # fmt: skip


def _embedded_conversion() -> ConversionRequest:
    msg = conversion(6, plaintext=False)
    msg.payload = os.urandom(37) + encode(vitals(6)) + os.urandom(21)  # "sealed", but is not
    return msg


def _request(seq: int) -> bytes:
    msg = DataShare.Request(request_id=f"r{seq}", requester_uri=PROVIDER)
    return service_event("iomt_interfaces/srv/DataShare", msg, request=True, guid=7, seq=seq)


def _reply(seq: int, envelope_msg: SecureEnvelope | None = None) -> bytes:
    msg = (
        DataShare.Response(envelope=envelope_msg)
        if envelope_msg is not None
        else DataShare.Response(status=DataShare.Response.STATUS_REFUSED, reason="bad token")
    )
    return service_event("iomt_interfaces/srv/DataShare", msg, request=False, guid=7, seq=seq)


def _scenario() -> list[tuple[str, str, int, bytes]]:
    unsigned = envelope(9)
    unsigned.signature = b""
    lying = envelope(2, technique="ecc", sealed=False)
    sealed_reply = envelope(7)
    sealed_reply.recipient_uri = ""  # the recipient must come from the paired request
    # A registration whose position could line up like a heart rate: not a reading.
    registration = Registration(
        stamp=Time(sec=1),
        device_uri="iomt://ward/hr-9",
        security_technique="none",
        x=72.0,
        y=72.0,
        radio_range=30.0,
    )
    broken_envelope = b"\x00\x01\x00\x00\xff\xff\xff" + encode(vitals(10))  # plaintext inside
    broken_vitals = b"\x00\x01\x00\x00" + os.urandom(40)  # nothing readable
    entries: list[tuple[str, str, bytes]] = [
        ("/ward/vitals", VITALS, encode(vitals(0))),
        (INBOX, ENVELOPE, encode(envelope(1))),
        (INBOX, ENVELOPE, encode(lying)),
        (CONVERT, CONVERSION, encode(conversion(3, plaintext=True))),
        (CONVERT, CONVERSION, encode(conversion(4, plaintext=False))),
        (CONVERT, CONVERSION, encode(_embedded_conversion())),
        (SHARE, EVENT, _request(1)),
        (SHARE, EVENT, _reply(1, sealed_reply)),
        (SHARE, EVENT, _reply(2, envelope(8, technique="none", sealed=False))),
        (SHARE, EVENT, _reply(3)),
        (INBOX, ENVELOPE, encode(unsigned)),
        ("/ward/registration", "iomt_interfaces/msg/Registration", encode(registration)),
        (INBOX, ENVELOPE, broken_envelope),
        ("/ward/vitals", VITALS, broken_vitals),
    ]
    return [(topic, typ, T0 + i * 1000, data) for i, (topic, typ, data) in enumerate(entries)]


@pytest.fixture(scope="module")
def scenario_bag(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_bag(tmp_path_factory.mktemp("audit") / "bag", _scenario())


def test_counts_and_verdicts(scenario_bag: Path) -> None:
    report = audit(scenario_bag)
    assert report.messages_scanned == 14
    assert report.total == 11
    assert report.readable == 6
    readable = {(t.topic, t.evidence.split(" (")[0]) for t in report.readable_transmissions}
    assert readable == {
        ("/ward/vitals", "message"),
        (INBOX, "field ciphertext"),
        (CONVERT, "field payload"),
        (SHARE, "field envelope.ciphertext"),
        (INBOX, "raw bytes"),
    }
    embedded = [t for t in report.readable_transmissions if "embedded at 37" in t.evidence]
    assert len(embedded) == 1 and embedded[0].kind == CONVERSION


def test_labels_are_reported_never_believed(scenario_bag: Path) -> None:
    report = audit(scenario_bag)
    lying = [t for t in report.transmissions if t.technique == "ecc"]
    assert len(lying) == 1 and lying[0].readable
    assert report.to_json()["label_mismatches"] == 2  # the "ecc" envelope, the "sym-aes" payload
    by_technique = report.breakdown(lambda t: t.technique)
    assert by_technique["sym-aes"]["readable"] == 1  # the embedded conversion payload
    assert by_technique["none"] == {"transmissions": 2, "readable": 2, "readable_share": 1.0}


def test_breakdowns_by_hop_kind_and_sender(scenario_bag: Path) -> None:
    doc = audit(scenario_bag).to_json()
    assert doc["by_hop"][HOP_DEVICE_TO_CONVERTER] == {
        "transmissions": 3,
        "readable": 2,
        "readable_share": pytest.approx(2 / 3),
    }
    assert doc["by_hop"][HOP_TO_REQUESTER]["transmissions"] == 8
    assert doc["by_kind"]["iomt_interfaces/srv/DataShare_Response"] == {
        "transmissions": 2,
        "readable": 1,
        "readable_share": 0.5,
    }
    assert doc["by_kind"][VITALS]["transmissions"] == 2  # the malformed one is counted too
    assert doc["malformed"] == 2
    conversions = [i for i in doc["readable_items"] if i["kind"] == CONVERSION]
    assert {i["recipient"] for i in conversions} == {CONVERTER}


def test_data_share_replies_are_paired_with_their_request(scenario_bag: Path) -> None:
    report = audit(scenario_bag)
    replies = [
        t for t in report.transmissions if t.kind == "iomt_interfaces/srv/DataShare_Response"
    ]
    assert [t.recipient for t in replies] == [PROVIDER, PROVIDER]


def test_unsigned_envelopes_are_listed(scenario_bag: Path) -> None:
    doc = audit(scenario_bag).to_json()
    assert doc["unsigned_envelopes"] == 1
    assert doc["unsigned_conversion_requests"] == 0
    assert [i["topic"] for i in doc["unsigned_items"]] == [INBOX]


def test_json_is_stable_and_serializable(scenario_bag: Path) -> None:
    doc = audit(scenario_bag).to_json(max_items=2)
    assert set(doc) == AUDIT_KEYS
    assert doc["schema"] == AUDIT_SCHEMA
    assert doc["readable_share"] == pytest.approx(6 / 11)
    assert len(doc["readable_items"]) == 2 and doc["readable_items_truncated"]
    assert doc["signatures"] is None
    item = doc["readable_items"][0]
    assert set(item) == {
        "time_ns", "topic", "kind", "hop", "device", "sender", "recipient", "technique",
        "readable", "evidence", "reading_kind", "reading_seq", "malformed", "signed", "signature",
        "receiver", "producer", "hops",
    }  # fmt: skip
    json.dumps(doc)


def test_an_empty_bag_has_no_share(tmp_path: Path) -> None:
    bag = write_bag(tmp_path / "empty", [])
    report = audit(bag)
    assert report.total == 0 and report.readable_share is None


def test_cli_audit_json(scenario_bag: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bag", "audit", str(scenario_bag), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert (doc["transmissions"], doc["readable"]) == (11, 6)
    assert main(["bag", "audit", str(scenario_bag)]) == 0
    text = capsys.readouterr().out
    assert "Readable (no key):    6 (54.5 %)" in text


def test_missing_bag_is_a_bag_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(BagReadError):
        audit(tmp_path / "nope")
    assert main(["bag", "audit", str(tmp_path / "nope")]) == 2
    assert "cannot open bag" in capsys.readouterr().err


class _Ed25519Verifier:
    """What a keystore-backed verifier does: per-sender keys, signature over the fields."""

    def __init__(self, keys: Mapping[str, Any]) -> None:
        self.keys = keys

    def verify_signature(self, message_type: str, fields: Mapping[str, Any]) -> str:
        key = self.keys.get(fields["sender_uri"])
        if key is None:
            return "unverifiable"
        try:
            key.verify(fields["signature"], _signed_bytes(fields))
        except InvalidSignature:
            return "invalid"
        return "valid"


def _signed_bytes(fields: Mapping[str, Any]) -> bytes:
    return (
        "|".join([fields["request_id"], fields["device_uri"], fields["sender_uri"]]).encode()
        + fields["ciphertext"]
    )


def test_signatures_checked_by_a_verifier(tmp_path: Path) -> None:
    device_key = Ed25519PrivateKey.generate()
    good = envelope(1)
    good.signature = device_key.sign(
        _signed_bytes(
            {
                "request_id": good.request_id,
                "device_uri": good.device_uri,
                "sender_uri": good.sender_uri,
                "ciphertext": good.ciphertext,
            }
        )
    )
    tampered = envelope(1)
    tampered.signature = good.signature
    tampered.ciphertext = seal(encode(vitals(3)), 1)  # same signer, other content
    stranger = envelope(3)
    stranger.sender_uri = "iomt://elsewhere/x"
    bag = write_bag(
        tmp_path / "signed",
        [(INBOX, ENVELOPE, T0 + i, encode(m)) for i, m in enumerate([good, tampered, stranger])],
    )
    verifier = _Ed25519Verifier({good.sender_uri: device_key.public_key()})
    report = audit(bag, verifier=verifier)
    assert [t.signature for t in report.transmissions] == ["valid", "invalid", "unverifiable"]
    assert report.to_json()["signatures"] == {"valid": 1, "invalid": 1, "unverifiable": 1}


def test_a_missing_keystore_is_a_clear_error(tmp_path: Path) -> None:
    from iomt.errors import StorageError

    with pytest.raises(StorageError, match="keystore"):
        load_keystore_verifier(tmp_path / "nowhere")


def test_keystore_verifier_checks_real_signatures(tmp_path: Path) -> None:
    import dataclasses

    from core.sharing_world import build_world
    from iomt.core.device import Converting, Shared
    from iomt.nodes import wire

    w = build_world(tmp_path)
    w.announce_all()
    for name in w.devices:
        w.record(name)
    w.grant("dr_house")
    p = w.provider("dr_house")
    w.open_session(p.channels, w.device("hr_ecc").channels)
    verifier = load_keystore_verifier(tmp_path / "keystore")

    def verdict(msg: object, kind: str) -> str:
        return verifier.verify_signature(kind, dataclasses.asdict(msg))  # type: ignore[arg-type]

    direct = w.device("hr_ecc").on_data_request(p.data_request(w.device("hr_ecc").uri, "ecc"))
    assert isinstance(direct, Shared)
    assert verdict(wire.envelope_to_msg(direct.envelope), ENVELOPE) == "unverifiable"  # HMAC
    w.open_session(p.channels, w.device("hr_none").channels)
    d = w.device("hr_none")
    pending = d.on_data_request(p.data_request(d.uri, "ecc"))
    assert isinstance(pending, Converting)
    converter_uri = pending.plan.next()
    assert converter_uri is not None
    order = d.conversion_order(pending, converter_uri)
    assert verdict(wire.order_to_msg(order), "iomt_interfaces/msg/ConversionRequest") == "valid"
    converter = next(c for c in w.devices.values() if c.uri == converter_uri)
    converter.channels.drop("dr_house")  # no session with the requester: it signs
    env = converter.on_conversion(order, seq=1, stamp_ns=5)
    assert verdict(wire.envelope_to_msg(env), ENVELOPE) == "valid"
    forged = dataclasses.replace(env, ciphertext=env.ciphertext[:-1] + b"\x00")
    assert verdict(wire.envelope_to_msg(forged), ENVELOPE) == "invalid"


def test_sealed_envelope_with_a_hidden_plaintext_copy_is_readable(tmp_path: Path) -> None:
    leaky = envelope(5)
    leaky.signature = seal(b"x", 1) + encode(vitals(5))  # plaintext smuggled in the signature
    bag = write_bag(tmp_path / "leaky", [(INBOX, ENVELOPE, T0, encode(leaky))])
    (t,) = audit(bag).transmissions
    assert t.readable and t.evidence.startswith("field signature (embedded")


def test_conversion_request_type_is_known() -> None:
    assert SecureEnvelope.__idl_typename__ == "iomt_interfaces::msg::dds_::SecureEnvelope_"
