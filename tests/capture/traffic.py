"""Deterministic iomt traffic for the capture tests: the same i gives the same bytes.

Sealing uses AES-GCM from ``cryptography`` directly (a fixed test key, the nonce derived from
i), so a test can recompute exactly what a node published and what the bag must hold.
"""

from __future__ import annotations

import struct

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from iomt.msg import ConversionRequest, SecureEnvelope, Time, Vitals, encode

KEY = bytes(range(16))
DEVICE = "iomt://ward-3/hr-1"
CUFF = "iomt://ward-3/bp-2"
PROVIDER = "iomt://clinic/dr-a"
CONVERTER = "iomt://ward-3/gw-1"


def vitals(i: int) -> Vitals:
    if i % 2:
        return Vitals(
            stamp=Time(sec=1_700_000_000 + i, nanosec=i),
            device_uri=CUFF,
            patient_id="patient-7",
            kind=Vitals.KIND_BLOOD_PRESSURE,
            seq=i,
            systolic_mmhg=110.0 + i % 40,
            diastolic_mmhg=70.0 + i % 20,
        )
    return Vitals(
        stamp=Time(sec=1_700_000_000 + i, nanosec=i),
        device_uri=DEVICE,
        patient_id="patient-7",
        kind=Vitals.KIND_HEART_RATE,
        seq=i,
        heart_rate_bpm=60.0 + i % 50,
    )


def seal(plaintext: bytes, i: int) -> bytes:
    """AES-128-GCM with a nonce from i: real ciphertext, reproducible for the test."""
    return AESGCM(KEY).encrypt(struct.pack(">4xQ", i), plaintext, b"iomt")


def envelope(i: int, *, technique: str = "sym-aes", sealed: bool = True) -> SecureEnvelope:
    v = vitals(i)
    body = encode(v)
    return SecureEnvelope(
        request_id=f"req-{i}",
        device_uri=v.device_uri,
        sender_uri=v.device_uri,
        recipient_uri=PROVIDER,
        security_technique=technique,
        seq=i,
        stamp=v.stamp,
        ciphertext=seal(body, i) if sealed else body,
        signature_algorithm="hmac-sha256",
        signature=bytes([i % 256]) * 32,
    )


def conversion(i: int, *, plaintext: bool) -> ConversionRequest:
    body = encode(vitals(i))
    return ConversionRequest(
        request_id=f"conv-{i}",
        device_uri=DEVICE,
        converter_uri=CONVERTER,
        requester_uri=PROVIDER,
        requested_technique="ecc",
        link_technique="none" if plaintext else "sym-aes",
        payload=body if plaintext else seal(body, i),
        signature_algorithm="ed25519",
        signature=b"\x01" * 64,
    )


def padded(cdr: bytes) -> bytes:
    """What a reader receives: Cyclone pads every sample to a multiple of 4 bytes."""
    return cdr.ljust((len(cdr) + 3) & ~3, b"\0")
