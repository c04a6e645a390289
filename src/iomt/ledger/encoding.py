"""Canonical binary encoding of ledger structures (what gets hashed and signed).

Every hashed or signed value has exactly one encoding, so a hash or signature commits to the
value and not to a serializer's whims: big-endian fixed-width integers, length-prefixed byte
strings and UTF-8 text, fields in a fixed order, sets sorted, and a leading tag naming the
structure and its version (domain separation: a block header can never be mistaken for a
checkpoint or a transaction). Decoders are strict: anything that does not re-encode to the
same bytes (trailing bytes, short reads, bad UTF-8, out-of-range values) raises
:class:`~iomt.ledger.errors.LedgerDecodeError`. The framing itself (``tag``, ``lp32``, the
integers, and the ``Reader`` cursor) is :mod:`iomt.crypto.encoding`'s, the one encoder of
signed bytes; this module adds the ledger's field kinds and errors that carry offsets.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from itertools import pairwise

from iomt.crypto import encoding
from iomt.crypto.encoding import lp32, tag, u32, u64

from .errors import LedgerDecodeError

__all__ = ["MAX_BYTES", "Reader", "Writer", "check_u64", "tag"]

#: Upper bound for any one length-prefixed field (16 MiB): bounds memory on hostile input.
MAX_BYTES = 1 << 24

_U8 = struct.Struct(">B")


class Writer:
    """Appends canonical fields to a buffer."""

    __slots__ = ("_parts",)

    def __init__(self, prefix: bytes = b"") -> None:
        self._parts: list[bytes] = [prefix] if prefix else []

    def u8(self, value: int) -> Writer:
        self._parts.append(_U8.pack(value))
        return self

    def u32(self, value: int) -> Writer:
        self._parts.append(u32(value))
        return self

    def u64(self, value: int) -> Writer:
        self._parts.append(u64(value))
        return self

    def fixed(self, value: bytes, size: int) -> Writer:
        if len(value) != size:
            raise ValueError(f"expected {size} bytes, got {len(value)}")
        self._parts.append(value)
        return self

    def blob(self, value: bytes) -> Writer:
        if len(value) > MAX_BYTES:
            raise ValueError(f"field longer than {MAX_BYTES} bytes")
        self._parts.append(lp32(value))
        return self

    def text(self, value: str) -> Writer:
        return self.blob(value.encode("utf-8"))

    def texts(self, values: Iterable[str]) -> Writer:
        """A set of strings: count, then each string, sorted by its UTF-8 bytes."""
        raws = sorted(v.encode("utf-8") for v in values)
        self.u32(len(raws))
        for raw in raws:
            self.blob(raw)
        return self

    def hashes(self, values: Iterable[bytes], size: int = 32) -> Writer:
        """A list (order kept) of fixed-size hashes."""
        items = list(values)
        self.u32(len(items))
        for item in items:
            self.fixed(item, size)
        return self

    def getvalue(self) -> bytes:
        return b"".join(self._parts)


class Reader(encoding.Reader):
    """Reads canonical fields; every problem is a :class:`LedgerDecodeError` naming the
    structure (``what``) and, for short or long input, the offsets."""

    __slots__ = ("_what",)

    def __init__(self, data: bytes, what: str) -> None:
        if not isinstance(data, bytes | bytearray | memoryview):
            raise LedgerDecodeError(f"{what}: expected bytes, got {type(data).__name__}")
        super().__init__(data, LedgerDecodeError)
        self._what = what

    def _truncated(self, n: int) -> LedgerDecodeError:
        return LedgerDecodeError(
            f"{self._what}: truncated (needed {n} bytes at offset {self._pos})",
            expected=self._pos + n,
            computed=len(self._data),
        )

    def _trailing(self) -> LedgerDecodeError:
        return LedgerDecodeError(
            f"{self._what}: {len(self._data) - self._pos} trailing bytes",
            expected=self._pos,
            computed=len(self._data),
        )

    def expect_tag(self, prefix: bytes) -> None:
        got = self.take(len(prefix))
        if got != prefix:
            raise LedgerDecodeError(
                f"{self._what}: wrong structure tag", expected=prefix, computed=got
            )

    def fixed(self, size: int) -> bytes:
        return self.take(size)

    def blob(self) -> bytes:
        size = self.u32()
        if size > MAX_BYTES:
            raise LedgerDecodeError(f"{self._what}: field of {size} bytes exceeds the limit")
        return self.take(size)

    def text(self) -> str:
        raw = self.blob()
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise LedgerDecodeError(f"{self._what}: text field is not UTF-8") from exc

    def texts(self) -> frozenset[str]:
        count = self.u32()
        raws = [self.blob() for _ in range(count)]
        if any(a >= b for a, b in pairwise(raws)):
            raise LedgerDecodeError(f"{self._what}: set not sorted or has duplicates")
        try:
            return frozenset(raw.decode("utf-8") for raw in raws)
        except UnicodeDecodeError as exc:
            raise LedgerDecodeError(f"{self._what}: text field is not UTF-8") from exc

    def hashes(self, size: int = 32) -> tuple[bytes, ...]:
        count = self.u32()
        if count * size > len(self._data) - self._pos:
            raise LedgerDecodeError(f"{self._what}: hash list longer than the input")
        return tuple(self.take(size) for _ in range(count))


def check_u64(name: str, value: int) -> None:
    """Reject values outside 0..2**63-1 (what SQLite's INTEGER and our encodings can hold)."""
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < (1 << 63):
        raise ValueError(f"{name} must be an int in [0, 2**63), got {value!r}")
