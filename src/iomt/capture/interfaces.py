"""What the capture layer knows about types: channels, service events, DDS classes.

A rosbag2 channel needs a ROS type name, its complete ``ros2msg`` definition and its RIHS01
hash; a DDS reader or writer needs a cyclonedds class under the right DDS type name. This
module gives both for every iomt interface (from :mod:`iomt.msg`'s registry, the single
source of truth) and for every other ROS 2 Jazzy type rosbags knows (classes built from
rosbags' field definitions, so a foreign ``std_msgs/msg/String`` topic is recorded too).

Services are recorded as ROS 2 Jazzy's ``ros2 bag record --all-services`` records them: one
channel ``/<service>/_service_event`` of type ``<pkg>/srv/<Name>_Event``::

    service_msgs/ServiceEventInfo info       # event_type, stamp, client_gid, sequence_number
    <pkg>/<Name>_Request[<=1] request
    <pkg>/<Name>_Response[<=1] response

Jazzy's rcl generates that type for every service; iomt has no rcl, so the event types are
defined here (in a rosbags type store, from the same registry) and their RIHS01 hashes are
computed by rosbags. ``service_msgs/msg/ServiceEventInfo`` is restated field by field from
ROS 2 Jazzy (ros2/rcl_interfaces), as iomt.msg restates its vendored types.

The definition written for an event channel is the complete ``ros2msg`` text of the event
message (the three fields above, then each dependency once), which Foxglove-style readers
parse. Jazzy's rosbag2 writes the ``.srv`` text after an ``SRV:`` line instead, which
readers cannot turn into a decoder (ros2/rosbag2#2365); we write the message form.
"""

from __future__ import annotations

import functools
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import iomt.msg
from iomt.errors import (
    ConfigurationError,
    LocalProtocolError,
    ProtocolError,
    RemoteProtocolError,
)
from iomt.msg import ServiceInfo, decode, encode, message_info, split_service_sample
from iomt.msg.dynamic import struct_class

if TYPE_CHECKING:
    from rosbags.typesys.store import Typestore

__all__ = [
    "REQUEST_RECEIVED",
    "REQUEST_SENT",
    "RESPONSE_RECEIVED",
    "RESPONSE_SENT",
    "SERVICE_EVENT_INFO",
    "SERVICE_EVENT_SUFFIX",
    "CaptureTypes",
    "ChannelType",
    "client_gid_bytes",
    "dds_type_to_ros",
    "ros_type_to_dds",
]

SERVICE_EVENT_INFO = "service_msgs/msg/ServiceEventInfo"
REQUEST_SENT = 0
REQUEST_RECEIVED = 1
RESPONSE_SENT = 2
RESPONSE_RECEIVED = 3

#: The topic suffix under which Jazzy records a service's events.
SERVICE_EVENT_SUFFIX = "/_service_event"

_DELIMITER = "=" * 80 + "\n"


@dataclass(frozen=True, slots=True)
class ChannelType:
    """What a rosbag2 connection records about its type."""

    name: str  # pkg/msg/Name, or pkg/srv/Name_Event for a service's events
    definition: str  # complete definition: ros2msg, or ros2idl for service events
    type_hash: str  # RIHS01_<sha256 hex>


def ros_type_to_dds(ros_type: str, suffix: str = "") -> str:
    """``pkg/msg/Name`` → ``pkg::msg::dds_::Name_`` (``suffix`` e.g. ``_Request``)."""
    parts = ros_type.split("/")
    if len(parts) != 3:
        raise ConfigurationError(f"invalid interface type {ros_type!r}: expected pkg/msg/Name")
    return f"{parts[0]}::{parts[1]}::dds_::{parts[2]}{suffix}_"


def dds_type_to_ros(dds_type: str) -> str | None:
    """``pkg::msg::dds_::Name_`` → ``pkg/msg/Name``; ``pkg::srv::dds_::Name_Request_`` →
    ``pkg/srv/Name_Request``. ``None`` for a DDS type that is not a ROS 2 type."""
    parts = dds_type.split("::")
    if len(parts) != 4 or parts[2] != "dds_" or not parts[3].endswith("_") or len(parts[3]) < 2:
        return None
    return f"{parts[0]}/{parts[1]}/{parts[3][:-1]}"


# ServiceEventInfo in XCDR1: uint8 event_type, (pad 3), int32 sec, uint32 nanosec,
# char[16] client_gid, (pad 4), int64 sequence_number -- 40 bytes from the stream start.
_EVENT_INFO = struct.Struct("<BxxxiI16s4xq")
_U32 = struct.Struct("<I")
_ALIGN = {
    "bool": 1, "byte": 1, "char": 1, "int8": 1, "uint8": 1, "string": 4, "wstring": 4,
    "int16": 2, "uint16": 2, "int32": 4, "uint32": 4, "float32": 4,
    "int64": 8, "uint64": 8, "float64": 8,
}  # fmt: skip


def _event_around(
    event_type: int, stamp_ns: int, client_guid: int, seq: int, body: bytes, *, is_request: bool
) -> bytes:
    """A service event sample holding one request or one response ``body`` (XCDR1, without
    its encapsulation header, encoded at an offset congruent to where it lands here)."""
    sec, nanosec = divmod(stamp_ns, 1_000_000_000)
    info = _EVENT_INFO.pack(event_type, sec, nanosec, client_gid_bytes(client_guid), seq)
    if is_request:
        # request[1] at 40: its length, the body at 44; response[0] aligned to 4 after it
        pad = -len(body) % 4
        parts = [CDR_LE_HEADER, info, _U32.pack(1), body, bytes(pad), _U32.pack(0)]
    else:
        # request[0] at 40, response[1] at 44: its length, the body at 48
        parts = [CDR_LE_HEADER, info, _U32.pack(0), _U32.pack(1), body]
    return b"".join(parts)


CDR_LE_HEADER = b"\x00\x01\x00\x00"


def _alignment_of(fielddefs: Any, node: Any, depth: int = 0) -> int:
    from rosbags.interfaces import Nodetype  # noqa: PLC0415  (rosbags loads lazily)

    kind, desc = node
    if depth > 32:
        return 8  # not expected; assume the worst
    if kind == Nodetype.BASE:
        return _ALIGN.get(desc[0], 8)
    if kind == Nodetype.NAME:
        fields = fielddefs[desc][1]
        return max((_alignment_of(fielddefs, f[1], depth + 1) for f in fields), default=1)
    if kind in (Nodetype.SEQUENCE,):
        return max(4, _alignment_of(fielddefs, desc[0], depth + 1))
    if kind == Nodetype.ARRAY:
        return _alignment_of(fielddefs, desc[0], depth + 1)
    return 8


def client_gid_bytes(client_guid: int) -> bytes:
    """The 16-byte ``client_gid`` of a service event, from rmw_cyclonedds' 64-bit client id.

    rmw_cyclonedds_cpp fills a request's ``writer_guid`` with the 8-byte client id of the
    request header (little-endian on the machines ROS 2 runs on) followed by zeros, and that
    is what a Jazzy server's service introspection puts into ``client_gid``.
    """
    return struct.pack("<Q", client_guid & 0xFFFF_FFFF_FFFF_FFFF) + bytes(8)


class CaptureTypes:
    """Type knowledge for recording, reading and replaying bags. Build once and keep.

    Holds a rosbags type store (ROS 2 Jazzy + every iomt type + an ``<pkg>/srv/<Name>_Event``
    for every iomt service) and caches channel metadata and cyclonedds classes.
    """

    def __init__(self) -> None:
        self.store: Typestore = iomt.msg.rosbags_typestore()
        self._services: dict[str, ServiceInfo] = {}
        for record in iomt.msg.all_interfaces():
            if isinstance(record, ServiceInfo):
                self._services[record.name] = record
        self._register_events()
        self._channel_types: dict[str, ChannelType] = {}
        self._classes: dict[str, Any] = {}
        self._alignments: dict[str, int] = {}

    # -- names ---------------------------------------------------------------------------------

    def knows_message(self, ros_type: str) -> bool:
        """Whether a topic of this ROS type can be recorded (an iomt or a Jazzy message)."""
        return "/msg/" in ros_type and ros_type in self.store.fielddefs

    def knows_service(self, service_type: str) -> bool:
        return service_type in self._services

    @staticmethod
    def event_type_name(service_type: str) -> str:
        return f"{service_type}_Event"

    def service_of_event(self, event_type: str) -> str | None:
        """``pkg/srv/Name_Event`` → ``pkg/srv/Name`` when it is a known service."""
        if not event_type.endswith("_Event"):
            return None
        name = event_type.removesuffix("_Event")
        return name if name in self._services else None

    def service_of_dds_types(self, dds_type: str) -> tuple[str, bool] | None:
        """``(pkg/srv/Name, is_request)`` of an rq/rr DDS type, if it is a known service."""
        ros = dds_type_to_ros(dds_type)
        if ros is None or "/srv/" not in ros:
            return None
        for suffix, is_request in (("_Request", True), ("_Response", False)):
            if ros.endswith(suffix) and ros.removesuffix(suffix) in self._services:
                return ros.removesuffix(suffix), is_request
        return None

    # -- channels ------------------------------------------------------------------------------

    def channel_type(self, ros_type: str) -> ChannelType:
        """Definition and hash for a message type or a service event type."""
        cached = self._channel_types.get(ros_type)
        if cached is not None:
            return cached
        service = self.service_of_event(ros_type)
        if service is not None:
            definition, type_hash = self._event_idl(ros_type)
            result = ChannelType(ros_type, definition, type_hash)
        elif ros_type.startswith("iomt_interfaces/") or ros_type in _iomt_vendored():
            info = message_info(ros_type)
            result = ChannelType(info.name, info.definition, info.type_hash)
        elif self.knows_message(ros_type):
            definition, _ = self.store.generate_msgdef(ros_type, ros_version=2)
            result = ChannelType(ros_type, definition, self.store.hash_rihs01(ros_type))
        else:
            raise ConfigurationError(f"no definition known for type {ros_type!r}")
        self._channel_types[ros_type] = result
        return result

    def _register_events(self) -> None:
        from rosbags.interfaces import Nodetype  # noqa: PLC0415  (rosbags loads lazily)

        types: dict[str, Any] = {}
        for name in self._services:
            types[self.event_type_name(name)] = (
                [],
                [
                    ("info", (Nodetype.NAME, SERVICE_EVENT_INFO)),
                    ("request", (Nodetype.SEQUENCE, ((Nodetype.NAME, f"{name}_Request"), 1))),
                    ("response", (Nodetype.SEQUENCE, ((Nodetype.NAME, f"{name}_Response"), 1))),
                ],
            )
        self.store.register(types)

    def _event_idl(self, event_type: str) -> tuple[str, str]:
        """A service event's ``ros2idl`` definition (the event, then each dependency once,
        as rosbag2 writes IDL), and its RIHS01 hash computed from that IDL.

        Not ``ros2msg``: a message definition cannot name a ``pkg/srv/..._Event`` type
        (rosbags files it under ``pkg/srv/msg/...``, so AnyReader cannot open the bag), and
        rosidl turns ``char`` into ``uint8`` on its way to IDL -- which is why ROS 2's hash
        of ``service_msgs/msg/ServiceEventInfo`` (``char[16] client_gid``) is the IDL one.
        """
        from rosbags.typesys import Stores, get_types_from_idl, get_typestore  # noqa: PLC0415

        order = [event_type, *_nested_types(self.store, event_type)]
        texts = [(name, idl_struct(self.store, name)) for name in order]
        store = get_typestore(Stores.EMPTY)
        for _name, text in texts:
            store.register(get_types_from_idl(text))
        definition = "".join(f"{_DELIMITER}IDL: {name}\n{text}" for name, text in texts)
        return definition, store.hash_rihs01(event_type)

    # -- service events --------------------------------------------------------------------

    def encode_service_event(
        self,
        service: str,
        *,
        event_type: int,
        stamp_ns: int,
        sample: bytes,
        is_request: bool,
    ) -> bytes:
        """A ``<pkg>/srv/<Name>_Event`` sample from one rq/rr sample as seen on the wire.

        The body is checked with iomt's bounded decoder first (it is network input).
        CDR aligns relative to the stream start, so a body moved to another offset may
        need other padding: inside the event a response body starts at offset 48 and a
        request body at 44 (against 16 in the rq/rr sample). Where that cannot change the
        encoding -- a response (48 and 16 agree modulo 8), or a request whose type has no
        8-byte member -- the event is assembled around iomt's own re-encoding of the body
        (its generated codec: canonical XCDR1, byte for byte what rosbags writes; tested);
        otherwise rosbags re-serializes the decoded body inside the event.
        Malformed samples raise :class:`~iomt.errors.RemoteProtocolError`.
        """
        client_guid, seq, body = split_service_sample(sample)
        info = self._services[service]
        part = info.request if is_request else info.response
        # bounded, strict: RemoteProtocolError for anything malformed
        msg = decode(part.type, body)
        if not is_request or self._max_alignment(part.name) <= 4:
            try:
                canonical = encode(msg)[4:]
                return _event_around(
                    event_type, stamp_ns, client_guid, seq, canonical, is_request=is_request
                )
            except (ProtocolError, struct.error):
                pass  # not expressible this way: rosbags below says why
        return self.event_by_rosbags(
            service,
            event_type=event_type,
            stamp_ns=stamp_ns,
            client_guid=client_guid,
            seq=seq,
            body=body,
            is_request=is_request,
        )

    def event_by_rosbags(
        self,
        service: str,
        *,
        event_type: int,
        stamp_ns: int,
        client_guid: int,
        seq: int,
        body: bytes,
        is_request: bool,
    ) -> bytes:
        """The service event of ``body`` (a plain request/response sample), by rosbags."""
        info = self._services[service]
        part = info.request if is_request else info.response
        try:
            ros_msg = self.store.deserialize_cdr(body, part.name)
        except Exception as exc:  # rosbags raises assorted errors on bytes it cannot parse
            raise RemoteProtocolError(f"{part.name}: {exc}") from exc
        types: Any = self.store.types
        import numpy as np  # noqa: PLC0415  (rosbags' char arrays are numpy arrays)

        event = types[self.event_type_name(service)](
            info=types[SERVICE_EVENT_INFO](
                event_type=event_type,
                stamp=types["builtin_interfaces/msg/Time"](
                    sec=stamp_ns // 1_000_000_000, nanosec=stamp_ns % 1_000_000_000
                ),
                client_gid=np.frombuffer(client_gid_bytes(client_guid), dtype=np.uint8),
                sequence_number=seq,
            ),
            request=[ros_msg] if is_request else [],
            response=[] if is_request else [ros_msg],
        )
        try:
            data: bytes = bytes(self.store.serialize_cdr(event, self.event_type_name(service)))
        except Exception as exc:
            raise LocalProtocolError(f"cannot encode a {service} event: {exc}") from exc
        return data

    def _max_alignment(self, ros_type: str) -> int:
        """The largest CDR alignment of any member of ``ros_type`` (1, 2, 4 or 8)."""
        found = self._alignments.get(ros_type)
        if found is None:
            from rosbags.interfaces import Nodetype  # noqa: PLC0415

            found = self._alignments[ros_type] = _alignment_of(
                self.store.fielddefs, (Nodetype.NAME, ros_type)
            )
        return found

    def decode(self, data: bytes, ros_type: str) -> Any:
        """Decode a recorded message with rosbags; malformed data raises RemoteProtocolError."""
        try:
            return self.store.deserialize_cdr(data, ros_type)
        except Exception as exc:  # rosbags raises assorted errors on bytes it cannot parse
            raise RemoteProtocolError(f"{ros_type}: cannot decode ({exc})") from exc

    # -- DDS classes -----------------------------------------------------------------------

    def message_class(self, ros_type: str) -> Any:
        """The cyclonedds class for a topic of this type (iomt's generated one if it has it)."""
        cls = self._classes.get(ros_type)
        if cls is None:
            try:
                cls = iomt.msg.get_message_type(ros_type)
            except ConfigurationError:
                if not self.knows_message(ros_type):
                    raise
                cls = self._build_class(ros_type)
            self._classes[ros_type] = cls
        return cls

    def service_wire_classes(self, service: str) -> tuple[Any, Any]:
        """The rq/rr sample classes (``{client_guid, seq}`` + body) of a known service."""
        srv = self._services[service].type
        return srv.RequestWire, srv.ResponseWire

    def _build_class(self, ros_type: str) -> Any:
        """A final DDS struct with the fields rosbags knows for ``ros_type``."""
        try:
            _, fields = self.store.fielddefs[ros_type]
        except KeyError as exc:
            raise ConfigurationError(f"unknown message type {ros_type!r}") from exc
        return struct_class(
            ros_type.rsplit("/", 1)[1],
            ros_type_to_dds(ros_type),
            fields,
            self.message_class,
            owner=ros_type,
        )


@functools.cache
def _iomt_vendored() -> frozenset[str]:
    """ROS core types iomt.msg vendors (its definitions match Jazzy's fields)."""
    names: set[str] = set()
    for record in iomt.msg.all_interfaces():
        names.add(record.name)
    return frozenset(names)


# rosidl_adapter's mapping of .msg primitive types onto IDL ones.
_IDL_BASES = {
    "bool": "boolean",
    "byte": "octet",
    "char": "uint8",
    "float32": "float",
    "float64": "double",
}


def _idl_field_type(desc: Any) -> tuple[str, str]:
    """(IDL type, declarator suffix) of a rosbags field descriptor."""
    from rosbags.interfaces import Nodetype  # noqa: PLC0415

    kind, arg = desc
    if kind == Nodetype.BASE:
        base, bound = arg
        idl = _IDL_BASES.get(base, base)
        return (f"{idl}<{bound}>" if bound and base in ("string", "wstring") else idl), ""
    if kind == Nodetype.NAME:
        return "::".join(arg.split("/")), ""
    inner, size = arg
    element, _ = _idl_field_type(inner)
    if kind == Nodetype.ARRAY:
        return element, f"[{size}]"
    return (f"sequence<{element}, {size}>" if size else f"sequence<{element}>"), ""


def _idl_literal(ctype: str, value: Any) -> str:
    if ctype == "string":
        return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'
    if ctype == "bool":
        return "TRUE" if value else "FALSE"
    return repr(value)


def idl_struct(store: Any, name: str) -> str:
    """The IDL of one type of a rosbags type store, as rosidl would write it."""
    constants, fields = store.fielddefs[name]
    package, namespace, short = name.split("/")
    lines = [f"module {package} {{", f"  module {namespace} {{"]
    if constants:
        lines.append(f"    module {short}_Constants {{")
        for cname, ctype, value in constants:
            idl = _IDL_BASES.get(ctype, ctype)
            lines.append(f"      const {idl} {cname} = {_idl_literal(ctype, value)};")
        lines.append("    };")
    lines.append(f"    struct {short} {{")
    for field_name, desc in fields:
        idl, suffix = _idl_field_type(desc)
        lines.append(f"      {idl} {field_name}{suffix};")
    lines += ["    };", "  };", "};"]
    return "\n".join(lines) + "\n"


def _nested_types(store: Any, name: str) -> list[str]:
    """Every type ``name`` uses, depth first, each once."""
    from rosbags.interfaces import Nodetype  # noqa: PLC0415

    found: list[str] = []

    def walk(current: str) -> None:
        for _field, desc in store.fielddefs[current][1]:
            inner = desc
            while inner[0] in (Nodetype.ARRAY, Nodetype.SEQUENCE):
                inner = inner[1][0]
            if inner[0] == Nodetype.NAME and inner[1] not in found:
                found.append(inner[1])
                walk(inner[1])

    walk(name)
    return found
