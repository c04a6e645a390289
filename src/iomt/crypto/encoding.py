"""The one canonical byte encoding of everything signed, MACed, hashed or used as AAD.

Every layer that signs or MACs bytes (the tokens and sessions here, the core's request
and registration transcripts, the BIoMT codec, the ledger's structures) builds them from
these functions, so there is one ``lp32`` and one ``tag`` to audit. Fields are
length-prefixed, so two different field tuples can never encode to the same bytes
(the ambiguity of plain concatenation — ``"ab" + "c" == "a" + "bc"`` — is what lets an
attacker move bytes between fields). ``Reader`` parses the same framing and raises the
caller's typed error on any truncation or trailing garbage, never ``IndexError`` or
``struct.error``.
"""

from __future__ import annotations

import struct

from iomt.errors import IomtError

__all__ = ["Reader", "lp16", "lp32", "tag", "u8", "u16", "u32", "u64"]

_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")


def u8(value: int) -> bytes:
    return bytes((value,))


def u16(value: int) -> bytes:
    return _U16.pack(value)


def u32(value: int) -> bytes:
    return _U32.pack(value)


def u64(value: int) -> bytes:
    return _U64.pack(value)


def lp16(data: bytes) -> bytes:
    """``len(data)`` as 2 bytes big-endian, then ``data`` (wire fields, < 64 KiB)."""
    if len(data) > 0xFFFF:
        raise ValueError("field longer than 65535 bytes")
    return _U16.pack(len(data)) + data


def lp32(data: bytes) -> bytes:
    """``len(data)`` as 4 bytes big-endian, then ``data`` (transcripts, signed blobs)."""
    return _U32.pack(len(data)) + data


def tag(name: str) -> bytes:
    """The domain-separation prefix of a structure: a length byte, then its ASCII name
    (a block header can never be mistaken for a checkpoint, nor one message for another)."""
    raw = name.encode("ascii")
    if not 0 < len(raw) < 256:
        raise ValueError("tag names are 1..255 ASCII bytes")
    return bytes([len(raw)]) + raw


class Reader:
    """A cursor over untrusted bytes; every shortfall raises ``error(message)``."""

    __slots__ = ("_data", "_error", "_pos")

    def __init__(self, data: bytes, error: type[IomtError]) -> None:
        if not isinstance(data, bytes | bytearray | memoryview):
            raise error(f"expected bytes, got {type(data).__name__}")
        self._data = bytes(data)
        self._pos = 0
        self._error = error

    @property
    def remaining(self) -> int:
        return len(self._data) - self._pos

    def take(self, n: int) -> bytes:
        if n < 0 or self._pos + n > len(self._data):
            raise self._truncated(n)
        out = self._data[self._pos : self._pos + n]
        self._pos += n
        return out

    def u8(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        return int(_U16.unpack(self.take(2))[0])

    def u32(self) -> int:
        return int(_U32.unpack(self.take(4))[0])

    def u64(self) -> int:
        return int(_U64.unpack(self.take(8))[0])

    def lp16(self) -> bytes:
        return self.take(self.u16())

    def lp32(self) -> bytes:
        return self.take(self.u32())

    def rest(self) -> bytes:
        out = self._data[self._pos :]
        self._pos = len(self._data)
        return out

    def end(self) -> None:
        if self._pos != len(self._data):
            raise self._trailing()

    # A layer with richer errors (the ledger's carry offsets) overrides these two.
    def _truncated(self, n: int) -> IomtError:
        return self._error(f"truncated: wanted {n} bytes, {self.remaining} left")

    def _trailing(self) -> IomtError:
        return self._error(f"{self.remaining} trailing bytes")
