"""Writes tests/vectors/capture/plaintext.json (run once; the file is checked in).

PYTHONPATH=src:tests python tests/capture/make_vectors.py
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

from capture.traffic import seal, vitals
from iomt.msg import Registration, SecureEnvelope, Time, Vitals, encode

OUT = Path(__file__).resolve().parents[1] / "vectors" / "capture" / "plaintext.json"


def be_sample(v: Vitals) -> bytes:
    """A big-endian CDR Vitals sample, laid out by hand (iomt writes little-endian)."""

    def string(s: str, pos: int) -> tuple[bytes, int]:
        raw = s.encode() + b"\0"
        pad = (-pos) % 4
        out = b"\0" * pad + struct.pack(">I", len(raw)) + raw
        return out, pos + len(out)

    body = struct.pack(">iI", v.stamp.sec, v.stamp.nanosec)
    pos = len(body)
    for s in (v.device_uri, v.patient_id):
        chunk, pos = string(s, pos)
        body += chunk
    body += bytes([v.kind])
    pos += 1
    body += b"\0" * ((-pos) % 4)
    body += struct.pack(">Ifff", v.seq, v.heart_rate_bpm, v.systolic_mmhg, v.diastolic_mmhg)
    return b"\x00\x00\x00\x00" + body


def main() -> None:
    hr, bp = vitals(0), vitals(1)
    rnd = bytes.fromhex("5b1c0e7a9d2f44e1c3a8b6f0d9e27c15") * 4
    cases = [
        {
            "name": "heart rate, little-endian",
            "hex": encode(hr).hex(),
            "mode": "sample",
            "expect": {"device_uri": hr.device_uri, "kind": 0, "heart_rate_bpm": 60.0},
        },
        {
            "name": "blood pressure, little-endian",
            "hex": encode(bp).hex(),
            "mode": "sample",
            "expect": {"device_uri": bp.device_uri, "kind": 1, "systolic_mmhg": 111.0},
        },
        {
            "name": "heart rate, big-endian",
            "hex": be_sample(hr).hex(),
            "mode": "sample",
            "expect": {"device_uri": hr.device_uri, "kind": 0, "heart_rate_bpm": 60.0},
        },
        {
            "name": "padded to 4 bytes",
            "hex": (encode(hr) + b"\0\0\0").hex(),
            "mode": "sample",
            "expect": {"device_uri": hr.device_uri, "kind": 0},
        },
        {
            "name": "embedded with header",
            "hex": (rnd[:13] + encode(bp) + rnd).hex(),
            "mode": "scan",
            "expect": {"device_uri": bp.device_uri, "kind": 1, "offset": 13},
        },
        {
            "name": "embedded without header",
            "hex": (rnd[:7] + encode(hr)[4:] + rnd).hex(),
            "mode": "scan",
            "expect": {"device_uri": hr.device_uri, "kind": 0, "offset": 7},
        },
        {
            "name": "embedded big-endian",
            "hex": (rnd[:5] + be_sample(bp) + rnd[:9]).hex(),
            "mode": "scan",
            "expect": {"device_uri": bp.device_uri, "kind": 1, "offset": 5},
        },
    ]
    invalid = {
        "heart rate too low": Vitals(device_uri="iomt://x", kind=0, heart_rate_bpm=12.0),
        "heart rate too high": Vitals(device_uri="iomt://x", kind=0, heart_rate_bpm=251.0),
        "heart rate NaN": Vitals(device_uri="iomt://x", kind=0, heart_rate_bpm=float("nan")),
        "heart rate infinite": Vitals(device_uri="iomt://x", kind=0, heart_rate_bpm=float("inf")),
        "systolic too high": Vitals(
            device_uri="iomt://x", kind=1, systolic_mmhg=300.0, diastolic_mmhg=80.0
        ),
        "diastolic too low": Vitals(
            device_uri="iomt://x", kind=1, systolic_mmhg=120.0, diastolic_mmhg=10.0
        ),
        "blood pressure kind with only a heart rate": Vitals(
            device_uri="iomt://x", kind=1, heart_rate_bpm=70.0
        ),
        "unknown kind": Vitals(device_uri="iomt://x", kind=2, heart_rate_bpm=70.0),
        "empty device_uri": Vitals(device_uri="", kind=0, heart_rate_bpm=70.0),
        "control character in device_uri": Vitals(
            device_uri="iomt://x\x07", kind=0, heart_rate_bpm=70.0
        ),
        "non-printable patient_id": Vitals(
            device_uri="iomt://x", patient_id="p\n1", kind=0, heart_rate_bpm=70.0
        ),
    }
    for name, v in invalid.items():
        cases.append({"name": name, "hex": encode(v).hex(), "mode": "both", "expect": None})
    good = encode(hr)
    bad_time = bytearray(good)
    bad_time[8:12] = struct.pack("<I", 1_000_000_000)
    cases += [
        {
            "name": "nanoseconds out of range",
            "hex": bytes(bad_time).hex(),
            "mode": "both",
            "expect": None,
        },
        {"name": "truncated by one byte", "hex": good[:-1].hex(), "mode": "sample", "expect": None},
        {
            "name": "trailing bytes",
            "hex": (good + b"\0" * 8).hex(),
            "mode": "sample",
            "expect": None,
        },
        {
            "name": "no encapsulation header",
            "hex": good[4:].hex(),
            "mode": "sample",
            "expect": None,
        },
        {
            "name": "XCDR2 encapsulation",
            "hex": (b"\x00\x07\x00\x00" + good[4:]).hex(),
            "mode": "sample",
            "expect": None,
        },
        {
            "name": "AES-GCM sealed reading",
            "hex": seal(good, 3).hex(),
            "mode": "both",
            "expect": None,
        },
        {"name": "random bytes", "hex": os.urandom(512).hex(), "mode": "both", "expect": None},
        {"name": "empty", "hex": "", "mode": "both", "expect": None},
        {
            "name": "registration whose fields line up like a reading",
            "mode": "sample",
            "hex": encode(
                Registration(
                    stamp=Time(sec=1, nanosec=2),
                    device_uri="iomt://ward/hr-9",
                    security_technique="none",
                    x=72.0,
                    y=72.0,
                    radio_range=30.0,
                )
            ).hex(),
            "expect": None,
        },
        {
            "name": "sealed envelope",
            "mode": "sample",
            "hex": encode(
                SecureEnvelope(
                    device_uri=hr.device_uri,
                    sender_uri=hr.device_uri,
                    security_technique="sym-aes",
                    ciphertext=seal(good, 4),
                )
            ).hex(),
            "expect": None,
        },
    ]
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"cases": cases}, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
