"""Canonical binary encoding of BIoMT messages and transaction bodies.

Every request the bolster authenticates is signed or MACed over bytes, and every transaction
body is encrypted bytes, so each value needs exactly one encoding. A message class declares
a structure tag and an ordered field list; :class:`Message` encodes and decodes it:
big-endian fixed-width integers, length-prefixed byte strings and UTF-8 text, sequences with
a count, nested messages length-prefixed. Decoding is strict and total: any input either
yields a value (whose constructor validated it) or raises
:class:`~iomt.core.biomt.errors.BiomtDecodeError` -- never ``IndexError`` or ``ValueError``.

Nodes carry these bytes in ``uint8[]`` fields; they never need to know the layout.
"""

from __future__ import annotations

import math
import struct
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from enum import IntEnum
from typing import Any, ClassVar, Generic, Protocol, Self, TypeVar

from iomt.crypto.encoding import Reader, lp32, tag, u32
from iomt.errors import IomtError

from .errors import BiomtDecodeError

__all__ = [
    "BOOL",
    "F64",
    "TEXT",
    "TEXTS",
    "U8",
    "U32",
    "U64",
    "Blob",
    "Bytes",
    "Enum",
    "Field",
    "Message",
    "Nested",
    "Optional",
    "Seq",
    "Text",
    "Tuple",
    "tag",
]

T = TypeVar("T")
E = TypeVar("E", bound=IntEnum)

#: Bound on any one length-prefixed field: bounds memory on hostile input.
MAX_FIELD = 1 << 24
_DOUBLE = struct.Struct(">d")


class Field(ABC, Generic[T]):
    """How one field is written and read."""

    @abstractmethod
    def write(self, out: list[bytes], value: T) -> None: ...

    @abstractmethod
    def read(self, r: Reader) -> T: ...


class _Int(Field[int]):
    def __init__(self, size: int) -> None:
        self._size = size
        self._max = 1 << (8 * size) if size < 8 else 1 << 63

    def write(self, out: list[bytes], value: int) -> None:
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < self._max:
            raise ValueError(f"{value!r} does not fit an unsigned {8 * self._size}-bit field")
        out.append(value.to_bytes(self._size, "big"))

    def read(self, r: Reader) -> int:
        value = int.from_bytes(r.take(self._size), "big")
        if value >= self._max:
            raise BiomtDecodeError(f"integer {value} out of range")
        return value


class _Bool(Field[bool]):
    def write(self, out: list[bytes], value: bool) -> None:
        out.append(b"\x01" if value else b"\x00")

    def read(self, r: Reader) -> bool:
        b = r.u8()
        if b > 1:
            raise BiomtDecodeError("boolean byte must be 0 or 1")
        return b == 1


class _F64(Field[float]):
    """IEEE 754 binary64; NaN and infinities are refused (they break comparisons)."""

    def write(self, out: list[bytes], value: float) -> None:
        if not math.isfinite(value):
            raise ValueError("floats must be finite")
        out.append(_DOUBLE.pack(float(value)))

    def read(self, r: Reader) -> float:
        value = float(_DOUBLE.unpack(r.take(8))[0])
        if not math.isfinite(value):
            raise BiomtDecodeError("non-finite float")
        return value


class Bytes(Field[bytes]):
    """A byte string: fixed ``size``, or length-prefixed up to ``max_size``."""

    def __init__(self, *, size: int | None = None, max_size: int = MAX_FIELD) -> None:
        self._size = size
        self._max = max_size

    def write(self, out: list[bytes], value: bytes) -> None:
        if not isinstance(value, bytes):
            raise ValueError("expected bytes")
        if self._size is not None:
            if len(value) != self._size:
                raise ValueError(f"expected {self._size} bytes, got {len(value)}")
            out.append(value)
            return
        if len(value) > self._max:
            raise ValueError(f"field of {len(value)} bytes exceeds {self._max}")
        out.append(lp32(value))

    def read(self, r: Reader) -> bytes:
        if self._size is not None:
            return r.take(self._size)
        size = r.u32()
        if size > self._max:
            raise BiomtDecodeError(f"field of {size} bytes exceeds {self._max}")
        return r.take(size)


class Text(Field[str]):
    """UTF-8 text, length-prefixed, at most ``max_size`` bytes."""

    def __init__(self, max_size: int = 4096) -> None:
        self._bytes = Bytes(max_size=max_size)

    def write(self, out: list[bytes], value: str) -> None:
        if not isinstance(value, str):
            raise ValueError("expected str")
        self._bytes.write(out, value.encode("utf-8"))

    def read(self, r: Reader) -> str:
        try:
            return self._bytes.read(r).decode("utf-8")
        except UnicodeDecodeError:
            raise BiomtDecodeError("text field is not UTF-8") from None


class Seq(Field[tuple[T, ...]]):
    """A sequence (order kept): a count, then each item."""

    def __init__(self, item: Field[T], *, max_items: int = 4096) -> None:
        self._item = item
        self._max = max_items

    def write(self, out: list[bytes], value: tuple[T, ...]) -> None:
        items = tuple(value)
        if len(items) > self._max:
            raise ValueError(f"{len(items)} items exceed {self._max}")
        out.append(u32(len(items)))
        for item in items:
            self._item.write(out, item)

    def read(self, r: Reader) -> tuple[T, ...]:
        count = r.u32()
        if count > self._max or count > r.remaining:
            raise BiomtDecodeError(f"sequence of {count} items is too long")
        return tuple(self._item.read(r) for _ in range(count))


class Tuple(Field[tuple[Any, ...]]):
    """A fixed group of fields (e.g. a ``(name, value)`` pair)."""

    def __init__(self, *items: Field[Any]) -> None:
        self._items = items

    def write(self, out: list[bytes], value: tuple[Any, ...]) -> None:
        if len(value) != len(self._items):
            raise ValueError(f"expected a {len(self._items)}-tuple")
        for f, v in zip(self._items, value, strict=True):
            f.write(out, v)

    def read(self, r: Reader) -> tuple[Any, ...]:
        return tuple(f.read(r) for f in self._items)


class Optional(Field[T | None]):
    """A presence byte, then the value if present."""

    def __init__(self, item: Field[T]) -> None:
        self._item = item

    def write(self, out: list[bytes], value: T | None) -> None:
        if value is None:
            out.append(b"\x00")
        else:
            out.append(b"\x01")
            self._item.write(out, value)

    def read(self, r: Reader) -> T | None:
        flag = r.u8()
        if flag > 1:
            raise BiomtDecodeError("presence byte must be 0 or 1")
        return self._item.read(r) if flag else None


class Enum(Field[E]):
    """An ``IntEnum`` member as one byte."""

    def __init__(self, cls: type[E]) -> None:
        self._cls = cls

    def write(self, out: list[bytes], value: E) -> None:
        out.append(bytes((int(self._cls(value)),)))

    def read(self, r: Reader) -> E:
        raw = r.u8()
        try:
            return self._cls(raw)
        except ValueError:
            raise BiomtDecodeError(f"{raw} is not a {self._cls.__name__}") from None


class _Encodable(Protocol):
    def to_bytes(self) -> bytes: ...


class Blob(Field[T]):
    """A value of another layer that has ``to_bytes`` / ``from_bytes`` (transactions,
    checkpoints, proofs), length-prefixed; its decode errors become ``BiomtDecodeError``."""

    def __init__(self, decode: Callable[[bytes], T], *, max_size: int = MAX_FIELD) -> None:
        self._decode = decode
        self._bytes = Bytes(max_size=max_size)

    def write(self, out: list[bytes], value: T) -> None:
        encodable: _Encodable = value  # type: ignore[assignment]
        self._bytes.write(out, encodable.to_bytes())

    def read(self, r: Reader) -> T:
        raw = self._bytes.read(r)
        try:
            return self._decode(raw)
        except BiomtDecodeError:
            raise
        except (IomtError, ValueError, TypeError) as exc:
            raise BiomtDecodeError(f"embedded value: {exc}") from None


M = TypeVar("M", bound="Message")


class Nested(Field[M]):
    """Another :class:`Message`, length-prefixed."""

    def __init__(self, cls: type[M]) -> None:
        self._cls = cls

    def write(self, out: list[bytes], value: M) -> None:
        out.append(lp32(value.to_bytes()))

    def read(self, r: Reader) -> M:
        size = r.u32()
        if size > MAX_FIELD:
            raise BiomtDecodeError("nested message too long")
        return self._cls.from_bytes(r.take(size))


U8 = _Int(1)
U32 = _Int(4)
U64 = _Int(8)
BOOL = _Bool()
F64 = _F64()
TEXT = Text()
TEXTS = Seq(Text(), max_items=4096)


class Message:
    """Mixin for frozen dataclasses with a canonical encoding.

    Subclasses set ``TAG`` (from :func:`tag`) and ``FIELDS`` (``(name, Field)`` pairs in
    wire order). Signed messages also set ``SIGNATURE`` to the name of the (last) field
    that carries the signature or tag; :meth:`signed_bytes` is the encoding of every other
    field under a distinct tag, so a signature over one message type can never verify as
    another's.
    """

    __slots__ = ()

    TAG: ClassVar[bytes]
    FIELDS: ClassVar[tuple[tuple[str, Field[Any]], ...]]
    SIGNATURE: ClassVar[str | None] = None

    def _encode(self, prefix: bytes, fields: Sequence[tuple[str, Field[Any]]]) -> bytes:
        out = [prefix]
        for name, f in fields:
            try:
                f.write(out, getattr(self, name))
            except (ValueError, TypeError, OverflowError) as exc:
                raise ValueError(f"{type(self).__name__}.{name}: {exc}") from None
        return b"".join(out)

    def to_bytes(self) -> bytes:
        return self._encode(self.TAG, self.FIELDS)

    def signed_bytes(self) -> bytes:
        """What the generator signs or MACs: every field but the signature, re-tagged."""
        if self.SIGNATURE is None:
            raise TypeError(f"{type(self).__name__} is not a signed message")
        fields = [(n, f) for n, f in self.FIELDS if n != self.SIGNATURE]
        return self._encode(b"\x00signed" + self.TAG, fields)

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        r = Reader(data, BiomtDecodeError)
        if r.take(len(cls.TAG)) != cls.TAG:
            raise BiomtDecodeError(f"not a {cls.__name__} (wrong structure tag)")
        values = {name: f.read(r) for name, f in cls.FIELDS}
        r.end()
        factory: Callable[..., Self] = cls
        try:
            return factory(**values)
        except (ValueError, TypeError) as exc:
            raise BiomtDecodeError(f"{cls.__name__}: {exc}") from None
