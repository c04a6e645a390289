"""Runtime support for the generated wire types: codec guards, octet fields, services.

The generated modules (``_iomt_interfaces.py``, ``_builtin_interfaces.py``,
``_rmw_dds_common.py``) are cyclonedds ``IdlStruct`` dataclasses whose
``serialize``/``deserialize`` are generated, straight-line codecs for little-endian XCDR1 (what
ROS 2 peers send). This module holds what they share:

* :func:`decode` / :func:`encode` — CDR bytes ⇄ message, with every failure mapped onto the
  iomt error tree; for generated types they call the generated codecs.
* The interpretive path (:func:`interpretive_decode`, :func:`interpretive_encode`,
  :func:`interpretive_deserialize`, :func:`interpretive_serialize`): cyclonedds' own IDL
  machinery, guarded. The generated codecs fall back to it for what they do not handle
  (big-endian samples, headerless data, XCDR2, a caller's Buffer), and the tests hold the two
  paths to identical results. cyclonedds' deserializer trusts its input: a truncated
  ``char[16]`` silently becomes a shorter ``bytes``, a string length of 0 walks the read
  position backwards, and a ``Gid[]`` whose declared length is 2**32-1 builds four billion
  empty Gids (``ros_discovery_info`` is readable and writable by anyone on the domain).
  :class:`_CheckedBuffer` turns every read past the end into an error, so decoding work and
  memory stay proportional to the sample's size, and declared bounds (``string<=256``,
  ``T[<=N]``) are enforced. The generated decoders do the same checks inline.
* :func:`prepare` — swaps cyclonedds' codec for ``uint8[]``/``uint8[<=N]`` fields from
  "list of ints" to ``bytes`` (for the interpretive path). The wire form is identical (uint32
  length, raw octets) and the declared IDL type (and so the XTypes type object) is untouched.
* :class:`ServiceType` — the protocol the generated service descriptors satisfy (rmw_cyclonedds
  puts ``{uint64 client_guid; int64 seq}`` before every request and reply body).
"""

from __future__ import annotations

import dataclasses
import re
import struct
import sys
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

import cyclonedds.idl.types as idl_types
from cyclonedds import idl
from cyclonedds.idl._machinery import BytesMachine, PlainCdrV2SequenceOfPrimitiveMachine
from cyclonedds.idl._support import Buffer, Endianness
from cyclonedds.idl._type_normalize import get_extended_type_hints

from iomt.errors import LocalProtocolError, ProtocolError, RemoteProtocolError

__all__ = [
    "CDR_BE",
    "CDR_LE",
    "DECODE_ERRORS",
    "ENCODE_ERRORS",
    "FAST_ENDIANNESS",
    "Malformed",
    "MessageInfo",
    "ServiceInfo",
    "ServiceType",
    "bad_string",
    "beyond_end",
    "cannot_encode",
    "decode",
    "encode",
    "interpretive_decode",
    "interpretive_deserialize",
    "interpretive_encode",
    "interpretive_serialize",
    "join_service_sample",
    "malformed",
    "prepare",
    "rosbag2_definition",
    "split_service_sample",
    "trailing_bytes",
]

MsgT = TypeVar("MsgT", bound=idl.IdlStruct)
ReqT = TypeVar("ReqT", bound=idl.IdlStruct)
RespT = TypeVar("RespT", bound=idl.IdlStruct)
ReqWireT = TypeVar("ReqWireT", bound=idl.IdlStruct)
RespWireT = TypeVar("RespWireT", bound=idl.IdlStruct)

#: RTPS encapsulation identifiers of plain CDR (XCDR1), the only ones ROS 2 peers send.
CDR_BE = b"\x00\x00"
CDR_LE = b"\x00\x01"
_ENCAPSULATION_HEADER_SIZE = 4
# Cyclone pads a serialized sample to a multiple of 4; anything longer is not our type.
_MAX_TRAILING_PADDING = 3


class _Truncated(Exception):
    """A read went past the end of the sample (internal; surfaced as RemoteProtocolError)."""


class _CheckedBuffer(Buffer):
    """A cyclonedds read buffer that refuses to read past the end of the sample.

    ``Buffer.read_bytes`` slices, so it never fails on its own; ``read``/``read_multi`` use
    ``struct.unpack_from``, which already checks the length before allocating.
    """

    def read_bytes(self, length: int) -> bytes:
        if length < 0 or self._pos + length > self._size:
            raise _Truncated(f"{length} bytes at offset {self._pos} of {self._size}")
        return super().read_bytes(length)


class Malformed(Exception):
    """A sample breaks its type's CDR layout (raised by the generated decoders).

    Internal: the generated ``deserialize`` surfaces it as :class:`RemoteProtocolError`.
    """


# What decoding raises on bad input, found by fuzzing (tests/msg/test_msg_malformed.py):
# struct.error for short reads, UnicodeDecodeError (a ValueError) for bad strings,
# OverflowError for absurd struct formats, the _Truncated guard above and the generated
# decoders' Malformed.
DECODE_ERRORS: tuple[type[Exception], ...] = (
    Malformed,
    _Truncated,
    struct.error,
    ValueError,
    OverflowError,
    IndexError,
    MemoryError,
)
# What the generated encoders raise on values that do not fit the wire type: struct.error
# (integer out of range, not a number), OverflowError (float32 out of range), TypeError
# (``bytes`` field holding a list), AttributeError (``str`` field holding bytes),
# UnicodeEncodeError (a ValueError: lone surrogates).
ENCODE_ERRORS: tuple[type[Exception], ...] = (
    struct.error,
    OverflowError,
    TypeError,
    AttributeError,
    ValueError,
)
#: ``endianness`` arguments the generated ``serialize`` handles itself (little-endian; None is
#: cyclonedds' "native").
FAST_ENDIANNESS: tuple[Endianness | None, ...] = (
    (None, Endianness.Little) if sys.byteorder == "little" else (Endianness.Little,)
)
_FAST_TYPES: set[type] = set()


def decode(msg_type: type[MsgT], data: bytes | bytearray | memoryview) -> MsgT:
    """Decode one serialized sample (4-byte encapsulation header + XCDR1 body).

    Any malformed input — truncated, random, a non-CDR1 encapsulation, a declared length
    longer than the sample, a bound exceeded, invalid UTF-8 — raises
    :class:`iomt.errors.RemoteProtocolError`; nothing else escapes. Generated types decode
    with their generated ``deserialize``; any other IdlStruct with :func:`interpretive_decode`.
    """
    if msg_type in _FAST_TYPES:
        return msg_type.deserialize(data)  # type: ignore[arg-type]  # any bytes-like works
    return interpretive_decode(msg_type, data)


def encode(msg: idl.IdlStruct) -> bytes:
    """Serialize ``msg`` as a little-endian XCDR1 sample (what a ROS 2 peer expects).

    Out-of-range integers, exceeded bounds and wrong value types raise
    :class:`iomt.errors.LocalProtocolError`.
    """
    if type(msg) in _FAST_TYPES:
        return msg.serialize(endianness=Endianness.Little, use_version_2=False)
    return interpretive_encode(msg)


def interpretive_decode(msg_type: type[MsgT], data: bytes | bytearray | memoryview) -> MsgT:
    """:func:`decode` through cyclonedds' IDL interpreter (the guarded reference path)."""
    raw = bytes(data)
    name = msg_type.__idl_typename__
    if len(raw) < _ENCAPSULATION_HEADER_SIZE:
        raise RemoteProtocolError(f"{name}: sample of {len(raw)} bytes has no CDR header")
    if raw[:2] not in (CDR_LE, CDR_BE):
        raise RemoteProtocolError(
            f"{name}: encapsulation {raw[:2].hex()} is not plain CDR (0000 or 0001)"
        )
    buffer = _CheckedBuffer(raw, align_offset=_ENCAPSULATION_HEADER_SIZE)
    return _decode_buffer(msg_type, buffer, len(raw), has_header=True, use_version_2=None)


def interpretive_deserialize(
    msg_type: type[MsgT],
    data: bytes | bytearray | memoryview,
    *,
    has_header: bool = True,
    use_version_2: bool | None = None,
) -> MsgT:
    """``IdlStruct.deserialize`` through cyclonedds' interpreter: its signature, guarded.

    The generated ``deserialize`` falls back to this for what it does not decode itself
    (big-endian samples, headerless data, a forced XCDR version), so that cyclonedds'
    ``DataReader.take()`` raises ``RemoteProtocolError`` for a malformed sample instead of a
    bare exception or an unbounded allocation, whatever the encoding.
    """
    if has_header:
        if use_version_2 is not None:
            raise LocalProtocolError("use_version_2 cannot be forced when a header is present")
        return interpretive_decode(msg_type, data)
    raw = bytes(data)
    if not raw:
        raise RemoteProtocolError(f"{msg_type.__idl_typename__}: empty sample")
    buffer = _CheckedBuffer(raw, align_offset=0)
    return _decode_buffer(
        msg_type, buffer, len(raw), has_header=False, use_version_2=bool(use_version_2)
    )


def _decode_buffer(
    msg_type: type[MsgT],
    buffer: _CheckedBuffer,
    size: int,
    *,
    has_header: bool,
    use_version_2: bool | None,
) -> MsgT:
    name = msg_type.__idl_typename__
    codec: Any = msg_type.__idl__  # cyclonedds' IDL object: loosely typed internals
    try:
        msg: MsgT = codec.deserialize(buffer, has_header=has_header, use_version_2=use_version_2)
    except DECODE_ERRORS as exc:
        raise RemoteProtocolError(f"{name}: malformed CDR ({type(exc).__name__}: {exc})") from exc
    end = buffer.tell()
    if end > size:  # alignment padding that was skipped, not read, at the very end
        raise RemoteProtocolError(f"{name}: sample truncated ({size} bytes, needs {end})")
    if size - end > _MAX_TRAILING_PADDING:
        raise RemoteProtocolError(f"{name}: {size - end} unexpected bytes after the sample")
    _check_bounds(msg, RemoteProtocolError)
    return msg


def interpretive_encode(msg: idl.IdlStruct) -> bytes:
    """:func:`encode` through cyclonedds' IDL interpreter (the reference path)."""
    return interpretive_serialize(msg, None, Endianness.Little, use_version_2=False)


def interpretive_serialize(
    msg: idl.IdlStruct,
    buffer: Buffer | None,
    endianness: Endianness | None,
    use_version_2: bool | None,
) -> bytes:
    """``IdlStruct.serialize`` through cyclonedds' interpreter, with bounds checked.

    The generated ``serialize`` falls back to this for what it does not encode itself
    (big-endian, XCDR2, a caller's Buffer). Values that do not fit raise LocalProtocolError.
    """
    _check_bounds(msg, LocalProtocolError)
    codec: Any = type(msg).__idl__  # cyclonedds' IDL object: loosely typed internals
    try:
        data: bytes = codec.serialize(
            msg, buffer=buffer, endianness=endianness, use_version_2=use_version_2
        )
    except Exception as exc:  # cyclonedds raises a bare Exception("Failed to encode member …")
        cause = exc.__cause__ or exc
        raise LocalProtocolError(
            f"{type(msg).__idl_typename__}: cannot encode ({exc}; {cause})"
        ) from exc
    return data


# --- errors of the generated codecs -----------------------------------------------------------


def malformed(cls: type[idl.IdlStruct], exc: Exception, data: bytes) -> RemoteProtocolError:
    """The error a generated decoder raises for ``exc`` (one of :data:`DECODE_ERRORS`)."""
    name = cls.__idl_typename__
    if len(data) < _ENCAPSULATION_HEADER_SIZE:
        return RemoteProtocolError(f"{name}: sample of {len(data)} bytes has no CDR header")
    if isinstance(exc, Malformed):
        return RemoteProtocolError(f"{name}: malformed CDR ({exc})")
    return RemoteProtocolError(f"{name}: malformed CDR ({type(exc).__name__}: {exc})")


def trailing_bytes(cls: type[idl.IdlStruct], size: int, end: int) -> RemoteProtocolError:
    """More than Cyclone's padding (to a multiple of 4) after a decoded sample."""
    return RemoteProtocolError(
        f"{cls.__idl_typename__}: {size - end} unexpected bytes after the sample"
    )


def bad_string(path: str, data: bytes, pos: int, length: int) -> Malformed:
    """Why the CDR string at ``pos`` (``length`` bytes including its NUL) is not one."""
    if length == 0:
        return Malformed(f"{path}: string length 0 at offset {pos} (a CDR string ends in NUL)")
    if length > len(data) - pos:
        return beyond_end(path, pos, length, len(data))
    return Malformed(f"{path}: string at offset {pos} is not NUL-terminated")


def beyond_end(path: str, pos: int, length: int, size: int) -> Malformed:
    """A declared length (bytes, or elements of at least one byte) past the sample's end."""
    return Malformed(f"{path}: {length} declared at offset {pos}, the sample ends at {size}")


def cannot_encode(msg: idl.IdlStruct, exc: Exception) -> LocalProtocolError:
    """The error a generated encoder raises for ``exc`` (one of :data:`ENCODE_ERRORS`)."""
    return LocalProtocolError(
        f"{type(msg).__idl_typename__}: cannot encode ({type(exc).__name__}: {exc})"
    )


# --- bounds -----------------------------------------------------------------------------------

_Check = Callable[[Any, type[ProtocolError]], None]
_BOUND_CHECKS: dict[type, tuple[tuple[str, _Check], ...]] = {}


def _check_bounds(msg: idl.IdlStruct, error: type[ProtocolError]) -> None:
    checks = _BOUND_CHECKS.get(type(msg))
    if checks is None:
        checks = _build_bound_checks(type(msg))
    for field, check in checks:
        check(getattr(msg, field), error)


def _build_bound_checks(cls: type[idl.IdlStruct]) -> tuple[tuple[str, _Check], ...]:
    checks = tuple(
        (name, check)
        for name, hint in get_extended_type_hints(cls).items()
        if (check := _check_for(hint, f"{cls.__idl_typename__}.{name}")) is not None
    )
    _BOUND_CHECKS[cls] = checks
    return checks


def _check_for(hint: Any, where: str) -> _Check | None:
    if isinstance(hint, idl_types.bounded_str):
        bound = hint.max_length

        def check_str(value: Any, error: type[ProtocolError]) -> None:
            if len(value.encode("utf-8")) > bound:
                raise error(f"{where}: string longer than {bound} bytes")

        return check_str
    if isinstance(hint, (idl_types.sequence, idl_types.array)):
        inner = _check_for(hint.subtype, f"{where}[]")
        limit = hint.max_length if isinstance(hint, idl_types.sequence) else None
        if inner is None and limit is None:
            return None

        def check_seq(value: Any, error: type[ProtocolError]) -> None:
            if limit is not None and len(value) > limit:
                raise error(f"{where}: {len(value)} elements exceed the bound {limit}")
            if inner is not None:
                for item in value:
                    inner(item, error)

        return check_seq
    if isinstance(hint, type) and issubclass(hint, idl.IdlStruct):
        nested = _BOUND_CHECKS.get(hint)
        if nested is None:
            nested = _build_bound_checks(hint)
        if not nested:
            return None
        nested_checks = nested

        def check_struct(value: Any, error: type[ProtocolError]) -> None:
            for field, check in nested_checks:
                check(getattr(value, field), error)

        return check_struct
    return None


# --- octets -----------------------------------------------------------------------------------


def prepare(*classes: type[idl.IdlStruct]) -> None:
    """Register generated classes; build cyclonedds' codecs, ``uint8[]`` fields as ``bytes``.

    Called once by each generated module, for its classes in definition order. Registered
    classes have generated codecs: :func:`decode`/:func:`encode` call them.
    """
    for cls in classes:
        _FAST_TYPES.add(cls)
        meta: Any = cls.__idl__  # cyclonedds' IDL object: loosely typed internals
        meta.populate()
        for machine in (meta.v1_machine, meta.v2_machine):
            members = machine.members_machines
            for field, member in members.items():
                if isinstance(member, PlainCdrV2SequenceOfPrimitiveMachine) and member.code == "B":
                    # Same octets on the wire: align 4, uint32 length, raw bytes.
                    members[field] = _octets_machine(member.max_length)
        _build_bound_checks(cls)


def _octets_machine(bound: int | None) -> Any:
    return BytesMachine(bound=bound)  # type: ignore[no-untyped-call]


# --- services ---------------------------------------------------------------------------------


class ServiceType(Protocol[ReqT, RespT, ReqWireT, RespWireT]):
    """What the runtime needs from a generated service descriptor (e.g. ``DataShare``).

    ``RequestWire``/``ResponseWire`` are the DDS sample types of the ``rq/…Request`` and
    ``rr/…Reply`` topics: ``client_guid: uint64, seq: int64`` followed by the request or
    response fields, under the DDS type name of the service request/response. The
    ``*_to_wire``/``*_from_wire`` helpers copy field references, never re-serialize.
    """

    @property
    def ros_name(self) -> str: ...

    @property
    def RequestWire(self) -> type[ReqWireT]: ...

    @property
    def ResponseWire(self) -> type[RespWireT]: ...

    def request_to_wire(self, msg: ReqT, client_guid: int, seq: int) -> ReqWireT: ...

    def request_from_wire(self, wire: ReqWireT) -> tuple[ReqT, int, int]: ...

    def response_to_wire(self, msg: RespT, client_guid: int, seq: int) -> RespWireT: ...

    def response_from_wire(self, wire: RespWireT) -> tuple[RespT, int, int]: ...


_SERVICE_HEADER_SIZE = 16  # rmw_cyclonedds: uint64 client_guid, int64 seq


def split_service_sample(data: bytes | bytearray | memoryview) -> tuple[int, int, bytes]:
    """``(client_guid, seq, body)`` of a serialized rq/rr sample, without decoding the body.

    ``body`` is a complete sample of the plain request/response type (the encapsulation
    header followed by the body), e.g. for recording service traffic under the ROS type name
    ``pkg/srv/Name_Request``. A sample too short for the header raises RemoteProtocolError.
    """
    raw = bytes(data)
    end = _ENCAPSULATION_HEADER_SIZE + _SERVICE_HEADER_SIZE
    if len(raw) < end or raw[:2] not in (CDR_LE, CDR_BE):
        raise RemoteProtocolError(f"not a service sample: {len(raw)} bytes, header {raw[:4].hex()}")
    order = "<" if raw[:2] == CDR_LE else ">"
    client_guid, seq = struct.unpack_from(order + "Qq", raw, _ENCAPSULATION_HEADER_SIZE)
    return client_guid, seq, raw[:_ENCAPSULATION_HEADER_SIZE] + raw[end:]


def join_service_sample(body: bytes | bytearray | memoryview, client_guid: int, seq: int) -> bytes:
    """The rq/rr sample carrying ``body`` (a plain request/response sample) under rmw's header."""
    raw = bytes(body)
    if len(raw) < _ENCAPSULATION_HEADER_SIZE or raw[:2] not in (CDR_LE, CDR_BE):
        raise LocalProtocolError("body is not a CDR sample")
    order = "<" if raw[:2] == CDR_LE else ">"
    try:
        header = struct.pack(order + "Qq", client_guid, seq)
    except struct.error as exc:
        raise LocalProtocolError(f"client_guid/seq out of range: {exc}") from exc
    return raw[:_ENCAPSULATION_HEADER_SIZE] + header + raw[_ENCAPSULATION_HEADER_SIZE:]


# --- registry records -------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class MessageInfo:
    """One message type: a ``pkg/msg/Name``, or a service's ``pkg/srv/Name_Request``/``_Response``.

    ``definition`` is the complete message definition in rosbag2's ``ros2msg`` encoding (the
    type's text, then each dependency after an 80-``=`` line and ``MSG: pkg/Name``), which is
    what rosbag2 writes into MCAP schemas and ``ros2 bag info``/Foxglove read back.
    """

    name: str
    dds_name: str
    type: type[idl.IdlStruct]
    text: str
    definition: str
    type_hash: str


@dataclasses.dataclass(frozen=True, slots=True)
class ServiceInfo:
    """One service type ``pkg/srv/Name`` with its request and response messages."""

    name: str
    type: Any  # the generated descriptor class; a ServiceType
    text: str
    request: MessageInfo
    response: MessageInfo


# --- rosbag2 message definitions --------------------------------------------------------------

_DELIMITER = "=" * 80 + "\n"
# rosbag2_cpp LocalMessageDefinitionSource: a field type at the start of a line.
_FIELD_TYPE = re.compile(r"(?:^|\n)\s*([a-zA-Z0-9_/]+)(?:\[[^\]]*\])?\s+")
_PRIMITIVES = frozenset({
    "bool", "byte", "char", "float32", "float64", "string",
    "int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64",
})  # fmt: skip


def _dependencies(text: str, package: str) -> list[str]:
    deps: set[str] = set()
    for match in _FIELD_TYPE.finditer(text):
        typ = match.group(1)
        if typ in _PRIMITIVES:
            continue
        deps.add(typ if "/" in typ else f"{package}/{typ}")
    return sorted(deps)


def rosbag2_definition(name: str, texts: dict[str, str]) -> str:
    """The ``ros2msg`` complete definition of ``name`` as rosbag2 (Jazzy) builds it.

    ``texts`` maps ``pkg/msg/Name`` (and ``pkg/srv/Name_Request``…) to interface file text.
    Dependencies are visited in sorted order, each once, depth first — the same walk as
    rosbag2_cpp's ``LocalMessageDefinitionSource::get_full_text``.
    """
    seen: set[str] = set()

    def append(type_name: str, text: str) -> str:
        package = type_name.split("/", 1)[0]
        result = text
        for dep in _dependencies(text, package):
            if dep in seen:
                continue
            seen.add(dep)
            pkg, _, short = dep.partition("/")
            dep_text = texts.get(f"{pkg}/msg/{short}")
            if dep_text is None:
                raise LookupError(f"{type_name} depends on {dep}, which is not known")
            result += "\n" + _DELIMITER + f"MSG: {dep}\n" + append(dep, dep_text)
        return result

    return append(name, texts[name])
