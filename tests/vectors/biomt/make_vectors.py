"""Regenerate biomt.json: known encodings, key derivations and invalid inputs of the BIoMT
core. Run from the repository root: ``PYTHONPATH=src python tests/vectors/biomt/make_vectors.py``.

The file pins the wire formats and derivations (a change is a format change and must be
deliberate); invalid cases name the error they must raise.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import struct
from pathlib import Path
from typing import Any

from iomt.core.biomt import (
    AccessQuery,
    AnonymizedRecord,
    CloudAddress,
    Evidence,
    HistoryEntry,
    Measurement,
    Outcome,
    SessionAttestation,
    SessionAuthenticated,
    SessionOp,
    Threshold,
)
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
from iomt.ledger import TxType

OUT = Path(__file__).with_name("biomt.json")


def to_json(value: Any) -> Any:
    if isinstance(value, bytes):
        return {"hex": value.hex()}
    if isinstance(value, enum.Enum):
        return value.name
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple | list):
        return [to_json(v) for v in value]
    return value


def encoding(value: Any) -> dict[str, Any]:
    return {"type": type(value).__name__, "hex": value.to_bytes().hex(), "fields": to_json(value)}


def main() -> None:
    m = Measurement(
        "blood_pressure", 1_700_000_000_123_456_789, (("systolic", 121.5), ("diastolic", 79.0))
    )
    address = CloudAddress(bytes(range(32)), 12, bytes(range(100, 132)))
    encodings = [
        encoding(m),
        encoding(Threshold("bpm", 50.0, 120.0)),
        encoding(address),
        encoding(
            DeviceAttributes.of(
                "iomt://facility-a/hr-1", "patient-7", {"kind": "heart_rate", "ward": "icu"}
            )
        ),
        encoding(
            AnonymizedRecord(
                "anon-" + "ab" * 16,
                1_699_999_200,
                3600,
                "heart_rate",
                (("bpm", 72.0),),
                bytes(32),
                3,
                bytes(range(32)),
            )
        ),
        encoding(
            HistoryEntry(
                5,
                TxType.ACCESS,
                10**18,
                "dr-alice",
                "physician",
                "dev-1",
                Outcome.DENIED,
                0,
                "no rule",
                Evidence.SESSION,
            )
        ),
    ]
    query = AccessQuery("dev-1", 0, 2**63 - 1, 10)
    recorded = SessionAuthenticated(
        "bolster-a",
        "dr-alice",
        SessionOp.ACCESS,
        10**18,
        bytes(range(16)),
        7,
        bytes([8]) * 32,
        query.to_bytes(),
    )
    chain = ((3, recorded.digest()), (9, bytes([1]) * 32))
    attestation = SessionAttestation(
        "bolster-a",
        "dr-alice",
        bytes(range(16)),
        (3, 9),
        attestation_digest("bolster-a", "dr-alice", bytes(range(16)), chain),
        10**18 + 1,
        bytes([2]) * 64,
    )
    encodings += [encoding(query), encoding(recorded), encoding(attestation)]

    attrs = DeviceAttributes.of(
        "iomt://facility-a/hr-1", "patient-7", {"kind": "heart_rate", "serial": "0001"}
    )
    numbers = (("kind", bytes([1]) * 32), ("serial", bytes([2]) * 32))
    signing_key = bytes(range(32))
    agreement = secgen("facility-a", attrs, numbers, signing_key)
    pseudonym = id_issue(agreement)
    z = bytes([9]) * 32
    th1 = transcript1(bytes([3]) * 32, bytes([4]) * 32, "bolster-a", bytes([5]) * 32)
    th2 = transcript2(th1, b"sealed-secrets")
    key = device_key(
        z,
        th1,
        pseudonym=pseudonym,
        expires=1_702_592_000 * 10**9,
        device_cert_fp=bytes([6]) * 32,
        bolster_cert_fp=bytes([5]) * 32,
    )
    storage = StorageKeys(bytes([7]) * 32)
    derivations = {
        "facility": "facility-a",
        "attributes": encoding(attrs),
        "numbers": [[n, v.hex()] for n, v in numbers],
        "signing_key": signing_key.hex(),
        "agreement": agreement.hex(),
        "pseudonym": pseudonym,
        "z": z.hex(),
        "th1": th1.hex(),
        "th2": th2.hex(),
        "response_key": response_key(z, th1).hex(),
        "device_key": key.hex(),
        "key_id": SharedKey(key).key_id.hex(),
        "storage_secret": (bytes([7]) * 32).hex(),
        "requester_pseudonym": ["dr-alice", storage.requester_pseudonym("dr-alice")],
        "cloud_pseudonym": [
            address.ledger_id.hex(),
            pseudonym,
            storage.cloud_pseudonym(address.ledger_id, pseudonym),
        ],
        "session_authenticated_digest": recorded.digest().hex(),
        "attestation_digest": attestation.digest.hex(),
    }

    history_hex = encodings[5]["hex"]
    good = m.to_bytes()
    tag_len = 1 + good[0]
    nan = bytearray(good)
    nan[-8:] = struct.pack(">d", float("nan"))
    bad_kind = good[:tag_len] + b"\x00\x00\x00\x02\xff\xfe" + good[tag_len + 4 + 14 :]
    invalid = [
        {"type": "Measurement", "why": "trailing byte", "hex": (good + b"\x00").hex()},
        {"type": "Measurement", "why": "truncated", "hex": good[:-1].hex()},
        {
            "type": "Measurement",
            "why": "wrong structure tag",
            "hex": Threshold("bpm", 1, 2).to_bytes().hex(),
        },
        {"type": "Measurement", "why": "NaN value", "hex": bytes(nan).hex()},
        {"type": "Measurement", "why": "kind is not UTF-8", "hex": bad_kind.hex()},
        {"type": "Measurement", "why": "empty input", "hex": ""},
        {
            "type": "Threshold",
            "why": "low above high",
            "hex": Threshold("bpm", 1, 2).to_bytes()[:-16].hex()
            + struct.pack(">dd", 5.0, 1.0).hex(),
        },
        {"type": "CloudAddress", "why": "hash too short", "hex": address.to_bytes()[:-1].hex()},
        {
            "type": "HistoryEntry",
            "why": "unknown transaction type",
            "hex": _replace_byte(history_hex, _tx_type_offset(), 9),
        },
        {
            "type": "HistoryEntry",
            "why": "unknown evidence kind",
            "hex": _replace_byte(history_hex, -1, 9),
        },
        {
            "type": "SessionAttestation",
            "why": "transaction numbers not increasing",
            "hex": bytes.fromhex(attestation.to_bytes().hex())
            .replace(
                bytes.fromhex("0000000000000003" + "0000000000000009"),
                bytes.fromhex("0000000000000009" + "0000000000000003"),
            )
            .hex(),
        },
        {
            "type": "SessionAuthenticated",
            "why": "session id too short",
            "hex": recorded.to_bytes()[: len(SessionAuthenticated.TAG) + 60].hex(),
        },
    ]
    for case in invalid:
        case["error"] = "BiomtDecodeError"
    doc = {
        "source": "generated by tests/vectors/biomt/make_vectors.py from the iomt BIoMT core",
        "vectors": {"encodings": encodings, "derivations": derivations, "invalid": invalid},
    }
    OUT.write_text(json.dumps(doc, indent=1) + "\n")


def _tx_type_offset() -> int:
    return len(HistoryEntry.TAG) + 8  # after the tag and the u64 seq


def _replace_byte(hex_: str, offset: int, value: int) -> str:
    raw = bytearray(bytes.fromhex(hex_))
    raw[offset] = value
    return raw.hex()


if __name__ == "__main__":
    main()
