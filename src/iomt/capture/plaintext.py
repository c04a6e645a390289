"""Finding patient readings in bytes, as an eavesdropper without keys would.

Bilal & Hassan's Experiment 1 counts the transmissions whose vitals an observer on the
network (Wireshark, in the paper) can read. Here "readable" has one precise meaning: the
bytes contain a plausible ``iomt_interfaces/msg/Vitals`` in CDR — the exact plaintext every security
technique seals — whatever label the message carries. A plausible reading has

* a known ``kind`` (``KIND_HEART_RATE`` or ``KIND_BLOOD_PRESSURE``),
* a heart rate of 20-250 /min, or a systolic pressure of 50-260 and a diastolic pressure of
  30-160 mm[Hg] (NaN and infinities fail),
* a non-empty printable ASCII ``device_uri`` and a printable UTF-8 ``patient_id``,
* a valid ``builtin_interfaces/Time`` (nanoseconds below 10⁹), and CDR lengths that fit.

:func:`parse_vitals_sample` checks a whole sample (the message itself, or a byte field that
should hold a sealed reading). :func:`scan_vitals` looks for a reading anywhere inside larger
bytes (plaintext padded, wrapped or appended to something else): it anchors on the
``device_uri`` length field with one regular-expression pass, then parses around each
anchor, in both byte orders, with or without the 4-byte encapsulation header in front.
Ciphertext from an AEAD is indistinguishable from random bytes, which essentially never
satisfy all of the above (tests/capture checks random and sealed inputs).

Pure Python, no I/O: the audit feeds it bytes from a bag.
"""

from __future__ import annotations

import math
import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass

from iomt.errors import RemoteProtocolError

__all__ = [
    "KIND_BLOOD_PRESSURE",
    "KIND_HEART_RATE",
    "MAX_URI_BYTES",
    "NotVitalsError",
    "VitalsFinding",
    "parse_vitals_sample",
    "scan_vitals",
]

KIND_HEART_RATE = 0
KIND_BLOOD_PRESSURE = 1
#: Longest device_uri (and patient_id) accepted, in bytes without the terminating NUL.
MAX_URI_BYTES = 1024

HEART_RATE_RANGE = (20.0, 250.0)
SYSTOLIC_RANGE = (50.0, 260.0)
DIASTOLIC_RANGE = (30.0, 160.0)

_HEADER_LE = b"\x00\x01"
_HEADER_BE = b"\x00\x00"
_HEADER_SIZE = 4
_MAX_TRAILING_PADDING = 3
# Offset of device_uri's length field from the start of the Vitals body (after Time).
_URI_LENGTH_OFFSET = 8
# Anchors: a device_uri length of 2..1025 (one character at least, plus the NUL) followed
# by a printable character; zero-width so overlapping candidates are all seen.
_ANCHOR_LE = re.compile(rb"(?=[\x00-\xff][\x00-\x04]\x00\x00[\x21-\x7e])", re.DOTALL)
_ANCHOR_BE = re.compile(rb"(?=\x00\x00[\x00-\x04][\x00-\xff][\x21-\x7e])", re.DOTALL)


class NotVitalsError(RemoteProtocolError):
    """The bytes are not a plausible Vitals sample."""


@dataclass(frozen=True, slots=True)
class VitalsFinding:
    """A plausible reading found in bytes: where, and what an eavesdropper learns."""

    offset: int  # where the sample (its CDR header, or the body if headerless) begins
    end: int  # one past the last byte of the body
    has_header: bool
    big_endian: bool
    device_uri: str
    patient_id: str
    kind: int
    seq: int
    heart_rate_bpm: float
    systolic_mmhg: float
    diastolic_mmhg: float

    @property
    def reading_kind(self) -> str:
        return "heart_rate" if self.kind == KIND_HEART_RATE else "blood_pressure"


def parse_vitals_sample(data: bytes | bytearray | memoryview) -> VitalsFinding:
    """Parse ``data`` as one complete Vitals CDR sample (header + body, ≤ 3 padding bytes).

    Raises :class:`NotVitalsError` unless the whole of ``data`` is a plausible reading.
    """
    raw = bytes(data)
    if len(raw) < _HEADER_SIZE or raw[:2] not in (_HEADER_LE, _HEADER_BE):
        raise NotVitalsError("no plain-CDR encapsulation header")
    big = raw[:2] == _HEADER_BE
    finding = _parse_body(raw, _HEADER_SIZE, big_endian=big, has_header=True)
    if finding is None:
        raise NotVitalsError("not a plausible Vitals body")
    if len(raw) - finding.end > _MAX_TRAILING_PADDING:
        raise NotVitalsError(f"{len(raw) - finding.end} bytes after the Vitals body")
    return finding


def scan_vitals(
    data: bytes | bytearray | memoryview, *, headerless: bool = True
) -> Iterator[VitalsFinding]:
    """Every plausible reading embedded anywhere in ``data``, in order of offset.

    With ``headerless=False`` only samples preceded by a plain-CDR encapsulation header
    count (used on whole messages, whose own fields could otherwise line up like a body).
    """
    raw = bytes(data)
    found: list[VitalsFinding] = []
    for pattern, big in ((_ANCHOR_LE, False), (_ANCHOR_BE, True)):
        for match in pattern.finditer(raw):
            origin = match.start() - _URI_LENGTH_OFFSET
            if origin < 0:
                continue
            header = raw[origin - _HEADER_SIZE : origin] if origin >= _HEADER_SIZE else b""
            has_header = header[:2] == (_HEADER_BE if big else _HEADER_LE)
            if not has_header and not headerless:
                continue
            finding = _parse_body(raw, origin, big_endian=big, has_header=has_header)
            if finding is not None:
                found.append(finding)
    found.sort(key=lambda f: f.offset)
    yield from found


def _parse_body(
    raw: bytes, origin: int, *, big_endian: bool, has_header: bool
) -> VitalsFinding | None:
    """Parse a Vitals body starting at ``origin`` (CDR aligns relative to it); None if not one."""
    order = ">" if big_endian else "<"
    reader = _Reader(raw, origin, order)
    try:
        _sec, nanosec = reader.unpack("iI", 4)
        if nanosec >= 1_000_000_000:
            return None
        device_uri = reader.string(ascii_only=True)
        patient_id = reader.string(ascii_only=False)
        if not device_uri or device_uri[0] == " ":
            return None
        (kind,) = reader.unpack("B", 1)
        if kind not in (KIND_HEART_RATE, KIND_BLOOD_PRESSURE):
            return None
        (seq,) = reader.unpack("I", 4)
        heart_rate, systolic, diastolic = reader.unpack("fff", 4)
    except _NoMatch:
        return None
    if kind == KIND_HEART_RATE:
        plausible = _within(heart_rate, HEART_RATE_RANGE)
    else:
        plausible = _within(systolic, SYSTOLIC_RANGE) and _within(diastolic, DIASTOLIC_RANGE)
    if not plausible:
        return None
    return VitalsFinding(
        offset=origin - _HEADER_SIZE if has_header else origin,
        end=reader.pos,
        has_header=has_header,
        big_endian=big_endian,
        device_uri=device_uri,
        patient_id=patient_id,
        kind=int(kind),
        seq=int(seq),
        heart_rate_bpm=heart_rate,
        systolic_mmhg=systolic,
        diastolic_mmhg=diastolic,
    )


def _within(value: float, bounds: tuple[float, float]) -> bool:
    return math.isfinite(value) and bounds[0] <= value <= bounds[1]


class _NoMatch(Exception):
    """The bytes at this position cannot be a Vitals body (internal)."""


class _Reader:
    """A CDR reader over ``raw`` whose alignment is relative to ``origin``."""

    __slots__ = ("order", "origin", "pos", "raw")

    def __init__(self, raw: bytes, origin: int, order: str) -> None:
        self.raw = raw
        self.origin = origin
        self.pos = origin
        self.order = order

    def _align(self, size: int) -> None:
        rel = self.pos - self.origin
        self.pos = self.origin + (rel + size - 1) // size * size

    def unpack(self, fmt: str, align: int) -> tuple[float | int, ...]:
        self._align(align)
        size = struct.calcsize(self.order + fmt)
        if self.pos + size > len(self.raw):
            raise _NoMatch
        values = struct.unpack_from(self.order + fmt, self.raw, self.pos)
        self.pos += size
        return values

    def string(self, *, ascii_only: bool) -> str:
        (length,) = self.unpack("I", 4)
        if not 1 <= int(length) <= MAX_URI_BYTES + 1:
            raise _NoMatch
        end = self.pos + int(length)
        if end > len(self.raw) or self.raw[end - 1] != 0:
            raise _NoMatch
        body = self.raw[self.pos : end - 1]
        self.pos = end
        if ascii_only:
            if any(b < 0x20 or b > 0x7E for b in body):
                raise _NoMatch
            return body.decode("ascii")
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise _NoMatch from None
        if not text.isprintable():
            raise _NoMatch
        return text
