"""Generate iomt's Python wire types from its ROS 2 interface files.

    python -m iomt.msg.codegen            # regenerate src/iomt/msg/_<package>.py
    python -m iomt.msg.codegen --check    # exit 1 if the checked-in modules are stale

The ``.msg``/``.srv`` files are the single source of truth for what goes on the wire: the
repository's ``iomt_interfaces/msg/`` and ``iomt_interfaces/srv/`` (ROS 2 package
``iomt_interfaces``) and the vendored core types under
``src/iomt/msg/interfaces/<package>/msg/`` (``builtin_interfaces``, ``rmw_dds_common``).
rosbags parses them (``get_types_from_msg``); this module only maps the parse onto
cyclonedds ``IdlStruct`` dataclasses that rmw_cyclonedds_cpp peers accept:

* final (non-appendable), unkeyed structs, so cyclonedds writes plain XCDR1 like ROS 2;
* DDS type names ``pkg::msg::dds_::Name_`` and ``pkg::srv::dds_::Name_Request_``/``_Response_``;
* each service also gets ``Name_RequestWire``/``Name_ResponseWire`` (rmw's
  ``{uint64 client_guid; int64 seq}`` header, then the body) and a descriptor class ``Name``;
* every class gets generated ``serialize``/``deserialize`` methods: straight-line codecs for
  little-endian XCDR1 with every length, bound and padding byte checked (see "fast CDR
  codecs" below), falling back to cyclonedds' interpreter for other encodings.

The output is formatted with ruff so it is stable under ``ruff format``. This file needs only
the standard library and rosbags, so ``python src/iomt/msg/codegen.py`` still works when the
generated modules are broken and ``import iomt.msg`` fails.
"""

from __future__ import annotations

import abc
import argparse
import dataclasses
import difflib
import itertools
import keyword
import re
import subprocess
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Self

from rosbags.typesys import Stores, TypesysError, get_types_from_msg, get_typestore
from rosbags.typesys.msg import MSGParser

HERE = Path(__file__).resolve().parent
VENDORED = HERE / "interfaces"
PACKAGE = "iomt_interfaces"
INTERFACES_DIR = PACKAGE  # the ROS 2 interface package, at the repository root

# rosbags' field descriptor node types (rosbags.interfaces.Nodetype).
_BASE, _NAME, _ARRAY, _SEQUENCE = 1, 2, 3, 4
_OCTET = frozenset({"uint8", "byte", "char"})  # rosidl maps all three to IDL uint8/octet
_INTS = frozenset(
    {"int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "byte", "char"}
)
_SIZED = {
    "byte": "uint8",
    "char": "uint8",
    **{t: t for t in ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64")},
    "float32": "float32",
    "float64": "float64",
}
# Names the generated classes need for themselves (cyclonedds methods, the DataReader's
# sample_info attribute, the service header fields).
_RESERVED_FIELDS = frozenset(
    {"serialize", "deserialize", "serialize_key", "deserialize_key", "sample_info"}
)
_WIRE_HEADER = (("client_guid", "_types.uint64"), ("seq", "_types.int64"))


class CodegenError(Exception):
    """An interface file cannot be turned into a wire type."""


@dataclasses.dataclass(frozen=True)
class Source:
    package: str
    kind: str  # "msg" | "srv"
    name: str
    display: str  # path shown in the generated header, relative to the repository
    text: str


@dataclasses.dataclass
class Field:
    name: str
    desc: Any
    default: Any
    comment: str


@dataclasses.dataclass
class Struct:
    ros_name: str  # iomt_interfaces/msg/Vitals, iomt_interfaces/srv/DataShare_Request
    package: str
    class_name: str
    dds_name: str
    text: str
    doc: str
    constants: list[tuple[str, str, Any]]
    fields: list[Field]
    deps: list[str]  # ros names of nested types


@dataclasses.dataclass
class Service:
    ros_name: str
    package: str
    name: str
    text: str
    doc: str
    request: Struct
    response: Struct


# --- reading -----------------------------------------------------------------------------------


def find_root(start: Path = HERE) -> Path:
    for candidate in (start, *start.parents):
        package = candidate / INTERFACES_DIR
        if (package / "package.xml").is_file() and (package / "msg").is_dir():
            return candidate
    raise CodegenError(f"no repository root ({INTERFACES_DIR}/package.xml + msg/) above {start}")


def discover(root: Path) -> list[Source]:
    sources: list[Source] = []
    for pkg_dir in sorted(p for p in VENDORED.iterdir() if p.is_dir()):
        for path in sorted((pkg_dir / "msg").glob("*.msg")):
            # Shown as in the repository, wherever the package is installed.
            display = "src/iomt/msg/" + path.relative_to(HERE).as_posix()
            sources.append(Source(pkg_dir.name, "msg", path.stem, display, _read(path)))
    for kind in ("msg", "srv"):
        for path in sorted((root / INTERFACES_DIR / kind).glob(f"*.{kind}")):
            display = f"{INTERFACES_DIR}/{kind}/{path.name}"
            sources.append(Source(PACKAGE, kind, path.stem, display, _read(path)))
    return sources


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def split_service(text: str, where: str) -> tuple[str, str]:
    """Split ``.srv`` text at its ``---`` line (rosidl: exactly one, alone on its line)."""
    lines = text.splitlines(keepends=True)
    cuts = [i for i, line in enumerate(lines) if line.rstrip("\r\n") == "---"]
    if len(cuts) != 1:
        raise CodegenError(f"{where}: a service needs exactly one '---' line, found {len(cuts)}")
    return "".join(lines[: cuts[0]]), "".join(lines[cuts[0] + 1 :])


def parse(sources: Sequence[Source]) -> tuple[list[Struct], list[Service]]:
    structs: list[Struct] = []
    services: list[Service] = []
    for src in sources:
        if src.kind == "msg":
            structs.append(_parse_struct(src.package, "msg", src.name, src.text, src.display))
            continue
        req_text, resp_text = split_service(src.text, src.display)
        request = _parse_struct(src.package, "srv", f"{src.name}_Request", req_text, src.display)
        response = _parse_struct(src.package, "srv", f"{src.name}_Response", resp_text, src.display)
        for part in (request, response):
            clash = {f.name for f in part.fields} & {name for name, _ in _WIRE_HEADER}
            if clash:
                raise CodegenError(f"{src.display}: fields {sorted(clash)} clash with rmw's header")
        services.append(
            Service(
                ros_name=f"{src.package}/srv/{src.name}",
                package=src.package,
                name=src.name,
                text=src.text,
                doc=_leading_comment(src.text),
                request=request,
                response=response,
            )
        )
    _check_references(structs)
    return structs, services


def _parse_struct(package: str, namespace: str, name: str, text: str, where: str) -> Struct:
    # rosbags resolves relative type names against the owner's package, so parse service parts
    # under a msg name too and rename after.
    parse_name = f"{package}/msg/{name}"
    try:
        typesdict = get_types_from_msg(text, parse_name)
        (message,) = MSGParser(f"MSG: {parse_name}\n{text}").specification()
    except TypesysError as exc:
        raise CodegenError(f"{where}: {exc}") from exc
    constants, field_descs = typesdict[parse_name]
    if not field_descs:
        # rosidl gives an empty structure a hidden uint8 member on the wire; not modelled here.
        raise CodegenError(f"{where}: {name} has no fields, which iomt cannot put on the wire")
    defaults = {f.name: f.value for f in message.fields}
    comments = _field_comments(text)
    fields: list[Field] = []
    for field_name, desc in field_descs:
        if keyword.iskeyword(field_name) or field_name in _RESERVED_FIELDS:
            raise CodegenError(f"{where}: field name {field_name!r} is reserved in Python/iomt")
        _check_supported(desc, f"{where}: {field_name}")
        fields.append(
            Field(field_name, desc, defaults.get(field_name), comments.get(field_name, ""))
        )
    ros_name = f"{package}/{namespace}/{name}"
    return Struct(
        ros_name=ros_name,
        package=package,
        class_name=name,
        dds_name=f"{package}::{namespace}::dds_::{name}_",
        text=text,
        doc=_leading_comment(text),
        constants=[(c[0], c[1], c[2]) for c in constants],
        fields=fields,
        deps=sorted({d for f in fields if (d := _nested_name(f.desc))}),
    )


def _check_supported(desc: Any, where: str) -> None:
    if desc[0] == _BASE:
        base = desc[1][0]
        if base not in _SIZED and base not in ("bool", "string"):
            raise CodegenError(f"{where}: type {base!r} is not supported on the ROS 2 wire here")
    elif desc[0] in (_ARRAY, _SEQUENCE):
        if desc[0] == _ARRAY and desc[1][1] < 1:
            raise CodegenError(f"{where}: an array needs at least one element")
        _check_supported(desc[1][0], where)


def _nested_name(desc: Any) -> str | None:
    if desc[0] == _NAME:
        return str(desc[1])
    if desc[0] in (_ARRAY, _SEQUENCE):
        return _nested_name(desc[1][0])
    return None


def _check_references(structs: Iterable[Struct]) -> None:
    known = {s.ros_name for s in structs}
    for s in structs:
        for dep in s.deps:
            if dep not in known:
                raise CodegenError(f"{s.ros_name} uses {dep}, which has no interface file")


_COMMENT_LINE = re.compile(r"^\s*#\s?(.*)$")
_FIELD_COMMENT = re.compile(r"^\s*\S+\s+([a-z][a-z0-9_]*)\s*(?:\S.*?)?#\s?(.*)$")


def _leading_comment(text: str) -> str:
    lines: list[str] = []
    for line in text.splitlines():
        match = _COMMENT_LINE.match(line)
        if not match:
            break
        lines.append(match.group(1).rstrip())
    return "\n".join(lines).strip()


def _field_comments(text: str) -> dict[str, str]:
    comments: dict[str, str] = {}
    for line in text.splitlines():
        if _COMMENT_LINE.match(line) or "=" in line.split("#", 1)[0]:
            continue
        match = _FIELD_COMMENT.match(line)
        if match:
            comments[match.group(1)] = match.group(2).strip()
    return comments


# --- type hashes -------------------------------------------------------------------------------


def type_hashes(structs: Sequence[Struct]) -> dict[str, str]:
    """RIHS01 hash of every struct, via a rosbags ROS 2 Jazzy type store.

    Registering the vendored types into the Jazzy store also proves they match Jazzy: rosbags
    refuses a name it already knows with a different field list.
    """
    store = get_typestore(Stores.ROS2_JAZZY)
    typesdict: dict[str, Any] = {}
    for s in structs:
        parse_name = f"{s.package}/msg/{s.class_name}"
        typesdict[s.ros_name] = get_types_from_msg(s.text, parse_name)[parse_name]
    try:
        store.register(typesdict)
    except TypesysError as exc:
        raise CodegenError(f"interface files disagree with ROS 2 Jazzy: {exc}") from exc
    return {s.ros_name: store.hash_rihs01(s.ros_name) for s in structs}


# --- emitting ----------------------------------------------------------------------------------


class _Module:
    """Emits one generated module: the types of one ROS 2 package."""

    def __init__(
        self,
        package: str,
        *,
        sources: Sequence[Source],
        structs: Sequence[Struct],
        services: Sequence[Service],
        hashes: dict[str, str],
        owner: dict[str, Struct],
    ) -> None:
        self.package = package
        self.sources = sources
        self.structs = structs
        self.services = services
        self.hashes = hashes
        self.owner = owner
        self.imports: set[str] = set()
        self.out: list[str] = []
        self.consts = _Constants()

    # references -------------------------------------------------------------------------------

    def ref(self, ros_name: str) -> str:
        target = self.owner[ros_name]
        if target.package == self.package:
            return target.class_name
        self.imports.add(target.package)
        return f"_{target.package}.{target.class_name}"

    def annotation(self, desc: Any) -> str:  # noqa: PLR0911  (one case per IDL type kind)
        kind, arg = desc
        if kind == _BASE:
            base, bound = arg
            if base == "bool":
                return "bool"
            if base == "string":
                return f"_types.bounded_str[{bound}]" if bound else "str"
            return f"_types.{_SIZED[base]}"
        if kind == _NAME:
            return self.ref(arg)
        inner, size = arg
        if inner[0] == _BASE and inner[1][0] in _OCTET:
            container = "array" if kind == _ARRAY else "sequence"
            size_arg = f", {size}" if size else ""
            return f"_typing.Annotated[bytes, _types.{container}(_types.uint8{size_arg})]"
        element = self.annotation(inner)
        if kind == _ARRAY:
            return f"_types.array[{element}, {size}]"
        return f"_types.sequence[{element}, {size}]" if size else f"_types.sequence[{element}]"

    def default(  # noqa: PLR0911  (one case per IDL type kind)
        self, desc: Any, value: Any
    ) -> str:
        kind, arg = desc
        if kind == _BASE:
            base = arg[0]
            if value is not None:
                return repr(bool(value)) if base == "bool" else repr(value)
            if base == "bool":
                return "False"
            if base == "string":
                return '""'
            return "0" if base in _INTS else "0.0"
        if kind == _NAME:
            return f"_dataclasses.field(default_factory={self.ref(arg)})"
        inner, size = arg
        octets = inner[0] == _BASE and inner[1][0] in _OCTET
        if value is not None:
            items = list(value)
            if octets:
                return f"bytes({items!r})"
            return f"_dataclasses.field(default_factory=lambda: {items!r})"
        if kind == _SEQUENCE:
            return 'b""' if octets else "_dataclasses.field(default_factory=list)"
        if octets:
            return f"bytes({size})"
        if inner[0] == _NAME:
            return (
                f"_dataclasses.field(default_factory=lambda: "
                f"[{self.ref(inner[1])}() for _ in range({size})])"
            )
        return f"_dataclasses.field(default_factory=lambda: [{self.default(inner, None)}] * {size})"

    # blocks -----------------------------------------------------------------------------------

    def emit(self, *lines: str) -> None:
        self.out.extend(lines)

    def constants_mixin(self, s: Struct) -> str | None:
        if not s.constants:
            return None
        name = f"_{s.class_name}Constants"
        self.emit("", "", f"class {name}:")
        self.emit(f'    """Constants of {s.ros_name}."""', "")
        for cname, ctype, value in s.constants:
            py = "bool" if ctype == "bool" else "str" if ctype == "string" else None
            if py is None:
                py = "int" if ctype in _INTS else "float"
            literal = repr(bool(value)) if py == "bool" else repr(value)
            self.emit(f"    {cname}: _typing.ClassVar[{py}] = {literal}")
        return name

    def struct(
        self, s: Struct, *, class_name: str, mixin: str | None, header: bool, doc: str
    ) -> None:
        bases = "_idl.IdlStruct" + (f", {mixin}" if mixin else "")
        self.emit(
            "",
            "",
            "@_dataclasses.dataclass",
            "@_annotate.final",
            f'class {class_name}({bases}, typename="{s.dds_name}"):',
        )
        self.emit(*_docstring(doc, indent="    "), "")
        if header:
            for name, annotation in _WIRE_HEADER:
                self.emit(f"    {name}: {annotation} = 0")
        for f in s.fields:
            if f.comment:
                self.emit(f"    # {f.comment}")
            self.emit(
                f"    {f.name}: {self.annotation(f.desc)} = {self.default(f.desc, f.default)}"
            )
        wire_fields = [*(_HEADER_DESCS if header else ()), *((f.name, f.desc) for f in s.fields)]
        self.codecs(wire_fields, s.dds_name)

    def codecs(self, fields: Sequence[tuple[str, Any]], dds_name: str) -> None:
        """The generated ``serialize`` and ``deserialize`` of a class with ``fields``."""
        encoder = _Encoder(self, self.consts, itertools.count(), {0}, 3, dds_name)
        encoder.fields(fields, "self", "")
        encoder.flush()
        decoder = _Decoder(self, self.consts, itertools.count(), {0}, 3, dds_name)
        values = decoder.fields(fields, "")
        decoder.flush()
        decoder.emit(f"msg = cls({', '.join(values)})")
        self.emit(
            "",
            "    def serialize(",
            "        self,",
            "        buffer: _Buffer | None = None,",
            "        endianness: _Endianness | None = None,",
            "        use_version_2: bool | None = None,",
            "    ) -> bytes:",
            '        """This message as a CDR sample; values that do not fit raise',
            "        LocalProtocolError.",
            "",
            "        Little-endian XCDR1 (the default, what ROS 2 peers read) is generated code;",
            "        anything else (big-endian, XCDR2, a given Buffer) goes through cyclonedds.",
            '        """',
            "        if (",
            "            buffer is not None",
            "            or use_version_2",
            "            or endianness not in _support.FAST_ENDIANNESS",
            "        ):",
            "            return _support.interpretive_serialize(",
            "                self, buffer, endianness, use_version_2",
            "            )",
            '        buf = bytearray(b"\\x00\\x01\\x00\\x00")',
            "        try:",
            *encoder.lines,
            "        except _support.ENCODE_ERRORS as exc:",
            "            raise _support.cannot_encode(self, exc) from exc",
            "        return bytes(buf)",
            "",
            "    @classmethod",
            "    def deserialize(",
            "        cls, data: bytes, has_header: bool = True, use_version_2: bool | None = None",
            "    ) -> _typing.Self:",
            '        """Decode a CDR sample; malformed input raises RemoteProtocolError.',
            "",
            "        Little-endian XCDR1 is generated code, with every length, bound and the",
            "        padding checked; other encodings go through cyclonedds' interpreter, guarded.",
            '        """',
            '        if not has_header or use_version_2 is not None or data[:2] != b"\\x00\\x01":',
            "            return _support.interpretive_deserialize(",
            "                cls, data, has_header=has_header, use_version_2=use_version_2",
            "            )",
            "        if data.__class__ is not bytes:",
            "            data = bytes(data)",
            "        size = len(data)",
            "        pos = 4",
            "        try:",
            *decoder.lines,
            "        except _support.DECODE_ERRORS as exc:",
            "            raise _support.malformed(cls, exc, data) from exc",
            "        if size - pos > 3:  # Cyclone pads a sample to a multiple of 4, no more",
            "            raise _support.trailing_bytes(cls, size, pos)",
            "        return msg",
        )

    def service(self, srv: Service) -> None:
        req, resp = srv.request, srv.response
        names = {
            "req": req.class_name,
            "resp": resp.class_name,
            "req_wire": f"{req.class_name}Wire",
            "resp_wire": f"{resp.class_name}Wire",
        }
        for part, wire in ((req, names["req_wire"]), (resp, names["resp_wire"])):
            direction = "request" if part is req else "reply"
            topic = "rq/<service>Request" if part is req else "rr/<service>Reply"
            self.struct(
                part,
                class_name=wire,
                mixin=f"_{part.class_name}Constants" if part.constants else None,
                header=True,
                doc=(
                    f"The DDS sample of one {srv.ros_name} {direction}, on {topic}.\n\n"
                    f"rmw_cyclonedds' header (the requesting client's guid and its sequence\n"
                    f"number) followed by the fields of {part.ros_name}; the same DDS type\n"
                    f"name, so ROS 2 peers match it. Build it with {srv.name}.to_wire()."
                ),
            )
        rw, pw = names["req_wire"], names["resp_wire"]
        self.emit("", "", f"class {srv.name}:")
        self.emit(
            *_docstring(
                f"{srv.ros_name}: descriptor, as rclpy's service classes.\n\n"
                + (f"{srv.doc}\n\n" if srv.doc else "")
                + f"``{srv.name}.Request``/``{srv.name}.Response`` are the messages user code\n"
                f"handles; ``RequestWire``/``ResponseWire`` are what travels on the rq/rr\n"
                f"topics. ``to_wire``/``from_wire`` move between them without serializing.",
                indent="    ",
            ),
            "",
            f'    ros_name: _typing.ClassVar[str] = "{srv.ros_name}"',
            f"    Request: _typing.TypeAlias = {names['req']}",
            f"    Response: _typing.TypeAlias = {names['resp']}",
            f"    RequestWire: _typing.ClassVar[type[{rw}]] = {rw}",
            f"    ResponseWire: _typing.ClassVar[type[{pw}]] = {pw}",
        )
        for part, plain, wire, role in (
            (req, names["req"], names["req_wire"], "request"),
            (resp, names["resp"], names["resp_wire"], "response"),
        ):
            to_args = ", ".join(f"{f.name}=msg.{f.name}" for f in part.fields)
            from_args = ", ".join(f"{f.name}=wire.{f.name}" for f in part.fields)
            self.emit(
                "",
                "    @staticmethod",
                f"    def {role}_to_wire(msg: {plain}, client_guid: int, seq: int) -> {wire}:",
                f'        """The {role} sample for the wire, carrying rmw\'s header."""',
                f"        return {wire}(client_guid=client_guid, seq=seq, {to_args})",
                "",
                "    @staticmethod",
                f"    def {role}_from_wire(wire: {wire}) -> tuple[{plain}, int, int]:",
                f'        """The {role} message, client guid and sequence number of a sample."""',
                f"        return {plain}({from_args}), wire.client_guid, wire.seq",
            )
        r, p = names["req"], names["resp"]
        self.emit(
            "",
            "    @_typing.overload",
            "    @staticmethod",
            f"    def to_wire(msg: {r}, client_guid: int, seq: int) -> {rw}: ...",
            "",
            "    @_typing.overload",
            "    @staticmethod",
            f"    def to_wire(msg: {p}, client_guid: int, seq: int) -> {pw}: ...",
            "",
            "    @staticmethod",
            f"    def to_wire(msg: {r} | {p}, client_guid: int, seq: int) -> {rw} | {pw}:",
            '        """``msg`` with rmw\'s header: the sample to write on rq/… or rr/…."""',
            f"        if isinstance(msg, {r}):",
            f"            return {srv.name}.request_to_wire(msg, client_guid, seq)",
            f"        return {srv.name}.response_to_wire(msg, client_guid, seq)",
            "",
            "    @_typing.overload",
            "    @staticmethod",
            f"    def from_wire(wire: {rw}) -> tuple[{r}, int, int]: ...",
            "",
            "    @_typing.overload",
            "    @staticmethod",
            f"    def from_wire(wire: {pw}) -> tuple[{p}, int, int]: ...",
            "",
            "    @staticmethod",
            f"    def from_wire(wire: {rw} | {pw}) -> tuple[{r}, int, int] | tuple[{p}, int, int]:",
            '        """(message, client_guid, seq) of a sample read from rq/… or rr/…."""',
            f"        if isinstance(wire, {rw}):",
            f"            return {srv.name}.request_from_wire(wire)",
            f"        return {srv.name}.response_from_wire(wire)",
        )

    def render(self) -> str:
        body_classes: list[str] = []
        for s in _toposort(self.structs):
            mixin = self.constants_mixin(s)
            doc = f"{s.ros_name} (DDS type ``{s.dds_name}``)."
            if s.doc:
                doc += f"\n\n{s.doc}"
            self.struct(s, class_name=s.class_name, mixin=mixin, header=False, doc=doc)
            body_classes.append(s.class_name)
        for srv in self.services:
            for part in (srv.request, srv.response):
                mixin = self.constants_mixin(part)
                role = part.class_name.rsplit("_", 1)[1].lower()
                doc = f"{part.ros_name}: the {role} of {srv.ros_name} (user side)."
                self.struct(part, class_name=part.class_name, mixin=mixin, header=False, doc=doc)
                body_classes.append(part.class_name)
            self.service(srv)
            body_classes += [f"{srv.request.class_name}Wire", f"{srv.response.class_name}Wire"]
        structs_all = [*self.structs, *(p for s in self.services for p in (s.request, s.response))]
        self.emit("", "", f"_support.prepare({', '.join(body_classes)})")
        self.emit(
            "", "#: Interface text of every type, as in its .msg/.srv file (service parts split)."
        )
        self.emit("TEXTS: dict[str, str] = {")
        for s in self.structs:
            self.emit(f"    {s.ros_name!r}: {_text_literal(s.text)},")
        for srv in self.services:
            self.emit(f"    {srv.ros_name!r}: {_text_literal(srv.text)},")
            for part in (srv.request, srv.response):
                self.emit(f"    {part.ros_name!r}: {_text_literal(part.text)},")
        self.emit("}", "", "#: RIHS01 type hashes (ROS 2 type description hashes), by rosbags.")
        self.emit("TYPE_HASHES: dict[str, str] = {")
        for s in structs_all:
            self.emit(f"    {s.ros_name!r}: {self.hashes[s.ros_name]!r},")
        self.emit("}", "", "MESSAGES: dict[str, type[_idl.IdlStruct]] = {")
        for s in structs_all:
            self.emit(f"    {s.ros_name!r}: {s.class_name},")
        self.emit("}", "")
        self.emit(
            "SERVICES: dict[str, _support.ServiceType["
            "_typing.Any, _typing.Any, _typing.Any, _typing.Any]] = {"
        )
        for srv in self.services:
            self.emit(f"    {srv.ros_name!r}: {srv.name},")
        self.emit("}")

        names = sorted(
            [s.class_name for s in structs_all]
            + [
                n
                for srv in self.services
                for n in (
                    srv.name,
                    f"{srv.request.class_name}Wire",
                    f"{srv.response.class_name}Wire",
                )
            ]
        )
        files = ", ".join(src.display for src in self.sources)
        body = "\n".join(self.out)
        constants = self.consts.render(body)
        errors = [
            f"{error} as {alias}"
            for error, alias in (
                ("LocalProtocolError", "_LocalError"),
                ("RemoteProtocolError", "_RemoteError"),
            )
            if re.search(rf"\b{alias}\b", body)
        ]
        head = [
            # straight-line codecs: one statement, and a branch per bounded field
            "# ruff: noqa: E501, PLR0912, PLR0915",
            f"# generated by iomt.msg.codegen from {files} — do not edit",
            f'"""Wire types of ROS 2 package ``{self.package}``, generated from its interfaces.',
            "",
            "Each message is a final, unkeyed cyclonedds IdlStruct (plain XCDR1, as",
            "rmw_cyclonedds_cpp writes) named by its DDS type. Every field has its ROS default.",
            "``uint8[]`` fields are ``bytes``. ``serialize``/``deserialize`` are generated",
            "straight-line codecs for little-endian XCDR1 using the precompiled layouts at the",
            "end (``_P``: pack, ``_U``: unpack, ``_N``: sizes; ``_P4_xI`` is a tuple of layouts",
            "of a NUL then a uint32, one per body offset modulo 4, as padding depends on it).",
            "Regenerate with ``python -m iomt.msg.codegen``; import from ``iomt.msg``.",
            '"""',
            "",
            "import dataclasses as _dataclasses",
            "import struct as _struct",
            "import typing as _typing",
            "",
            "import cyclonedds.idl as _idl",
            "import cyclonedds.idl.annotations as _annotate",
            "import cyclonedds.idl.types as _types",
            "from cyclonedds.idl._support import Buffer as _Buffer",
            "from cyclonedds.idl._support import Endianness as _Endianness",
            "",
        ]
        head += [f"from iomt.errors import {error}" for error in errors]
        imported = sorted(self.imports)
        head.append(
            "from iomt.msg import " + ", ".join(sorted(["_support", *(f"_{p}" for p in imported)]))
        )
        head += ["", "__all__ = [", *(f'    "{n}",' for n in names), "]"]
        # Last: the codecs look them up when called, and a diff then leads with the classes.
        tail = ["", "# Precompiled CDR layouts of the generated codecs above.", *constants]
        return "\n".join([*head, body, *tail]) + "\n"


def _docstring(text: str, indent: str) -> list[str]:
    text = text.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
    lines = text.splitlines() or [""]
    if len(lines) == 1:
        return [f'{indent}"""{lines[0]}"""']
    return [
        f'{indent}"""{lines[0]}',
        *[f"{indent}{line}" if line else "" for line in lines[1:]],
        f'{indent}"""',
    ]


def _text_literal(text: str) -> str:
    parts = text.splitlines(keepends=True) or [""]
    if len(parts) == 1:
        return repr(parts[0])
    return "(\n" + "\n".join(f"        {part!r}" for part in parts) + "\n    )"


def _toposort(structs: Sequence[Struct]) -> list[Struct]:
    by_name = {s.ros_name: s for s in structs}
    done: dict[str, None] = {}

    def visit(s: Struct, path: tuple[str, ...]) -> None:
        if s.ros_name in done:
            return
        if s.ros_name in path:
            raise CodegenError(f"recursive types: {' -> '.join((*path, s.ros_name))}")
        for dep in s.deps:
            if dep in by_name:
                visit(by_name[dep], (*path, s.ros_name))
        done[s.ros_name] = None

    for s in sorted(structs, key=lambda s: s.ros_name):
        visit(s, ())
    return [by_name[n] for n in done]


# --- fast CDR codecs ---------------------------------------------------------------------------
#
# Every class gets generated ``serialize``/``deserialize`` methods for little-endian XCDR1 (what
# ROS 2 peers send), in the spirit of rosbags.serde: the field walk happens here, once, and
# the methods are straight-line code. Consecutive fixed-size fields (and the length words of
# strings and sequences) become a single precompiled struct.pack / unpack_from call. CDR aligns
# each primitive to its size, counted from the start of the body (after the 4-byte header),
# so padding depends on where the variable-length fields before it ended: the writer tracks
# the set of possible body offsets modulo 8 and, where they are not known statically, emits
# one precompiled layout per possible offset, picked at run time by the current offset.

_CDR_PRIMITIVES = {  # ROS base type -> (struct format code, size = alignment)
    "bool": ("?", 1),
    "byte": ("B", 1),
    "char": ("B", 1),
    "int8": ("b", 1),
    "uint8": ("B", 1),
    "int16": ("h", 2),
    "uint16": ("H", 2),
    "int32": ("i", 4),
    "uint32": ("I", 4),
    "int64": ("q", 8),
    "uint64": ("Q", 8),
    "float32": ("f", 4),
    "float64": ("d", 8),
}
_ANYWHERE = frozenset(range(8))  # body offset modulo 8 after variable-length data
_HEADER_DESCS = (("client_guid", (_BASE, ("uint64", 0))), ("seq", (_BASE, ("int64", 0))))
# Runtime alignment of the absolute position ``pos`` (the body starts at 4) to 2, 4, 8.
_ALIGN = {2: "pos += pos & 1", 4: "pos = (pos + 3) & -4", 8: "pos = ((pos + 3) & -8) + 4"}


@dataclasses.dataclass(frozen=True)
class _Item:
    """One fixed-size piece of a packed group."""

    code: str  # struct format: "I", "16s", "3d", "x" (a string's NUL)
    align: int
    size: int
    value: str = ""  # the encoder's argument expression, or the decoder's target variable
    count: int = 1  # values packed/unpacked (a primitive array's length; a pad's 0)


def _layout(items: Sequence[_Item], start: int) -> tuple[str, int]:
    """The struct format of ``items`` placed at body offset ``start``, and its size."""
    fmt, offset = "<", start
    for item in items:
        pad = -offset % item.align
        fmt += "x" * pad + item.code
        offset += pad + item.size
    return fmt, offset - start


def _offset_index(position: str, modulus: int) -> str:
    """The body offset of absolute ``position`` modulo ``modulus`` (2, 4 or 8)."""
    if modulus == 8:
        return f"({position} + 4) & 7"
    return f"{position} & {modulus - 1}"


def _codes(items: Sequence[_Item]) -> str:
    """The item formats of a group, which determine its layout at any offset."""
    return "".join(item.code for item in items)


def _is_octets(desc: Any) -> bool:
    return bool(desc[0] == _BASE and desc[1][0] in _OCTET)


def _is_primitive(desc: Any) -> bool:
    return bool(desc[0] == _BASE and desc[1][0] != "string")


class _Constants:
    """Module-level Struct layouts shared by the generated codecs of a module.

    Names are derived from content, so editing one interface renames nothing elsewhere:
    ``_P_BxxxI`` packs ``<BxxxI``; ``_P4_xI`` is the table of packers for a NUL then a uint32,
    indexed by the body offset modulo 4; ``_U``/``_N`` are unpackers and their sizes; ``?``
    (bool) is spelled ``T``.
    """

    def __init__(self) -> None:
        self.definitions: dict[str, str] = {}

    def get(self, name: str, definition: str) -> str:
        name = name.replace("?", "T")
        known = self.definitions.setdefault(name, definition)
        if known != definition:  # cannot happen: a name determines its layouts
            raise CodegenError(f"two layouts named {name}: {known} and {definition}")
        return name

    def render(self, body: str) -> list[str]:
        """Definitions of the constants ``body`` uses, sorted by name."""
        return [
            f"{name} = {definition}"
            for name, definition in sorted(self.definitions.items())
            if re.search(rf"\b{name}\b", body)
        ]


class _CodecWriter(abc.ABC):
    """The body of one generated method: lines, fresh local names, pending fixed items.

    ``residues`` are the possible body offsets modulo 8 at the current point of the code.
    """

    def __init__(
        self,
        module: _Module,
        consts: _Constants,
        names: Iterator[int],
        residues: Iterable[int],
        indent: int,
        top: str,
    ) -> None:
        self.module = module
        self.consts = consts
        self.names = names
        self.residues = frozenset(residues)
        self.indent = indent
        self.top = top  # DDS name of the class the method belongs to, for error messages
        self.lines: list[str] = []
        self.pending: list[_Item] = []

    def emit(self, *lines: str) -> None:
        self.lines.extend("    " * self.indent + line for line in lines)

    def fresh(self, hint: str) -> str:
        return f"{hint}_{next(self.names)}"

    def fork(self, residues: Iterable[int]) -> Self:
        return type(self)(self.module, self.consts, self.names, residues, self.indent + 1, self.top)

    def loop_body(self, body: Callable[[Self], str]) -> tuple[Self, str]:
        """Emit ``body`` for a loop, at a fixed point of the offsets an iteration can start at.

        Leaves in ``self.residues`` the offsets after the loop, for any number of iterations.
        """
        entry = set(self.residues)
        while True:
            sub = self.fork(entry)
            result = body(sub)
            sub.flush()
            if sub.residues <= entry:
                self.residues = frozenset(entry)
                return sub, result
            entry |= sub.residues

    def plan(self, items: Sequence[_Item]) -> tuple[int, dict[int, tuple[str, int]], set[int]]:
        modulus = max(item.align for item in items)
        layouts = {start: _layout(items, start) for start in range(modulus)}
        return modulus, layouts, {r % modulus for r in self.residues}

    def advance(self, layouts: dict[int, tuple[str, int]], modulus: int) -> None:
        self.residues = frozenset((r + layouts[r % modulus][1]) % 8 for r in self.residues)

    def after_primitive_sequence(self, size: int) -> None:
        """Offsets after ``count`` elements of ``size`` bytes, aligned only if count > 0."""
        align = min(size, 8)
        aligned = {(r + -r % align) % 8 for r in self.residues}
        filled = {(r + k * size) % 8 for r in aligned for k in range(8)}
        self.residues = self.residues | frozenset(filled)

    @abc.abstractmethod
    def flush(self) -> None:
        """Emit the pending fixed items as one pack/unpack call."""

    def min_size(self, desc: Any) -> int:
        """A lower bound of the wire size of a value (for sequence length checks)."""
        kind, arg = desc
        if kind == _BASE:
            return 5 if arg[0] == "string" else _CDR_PRIMITIVES[arg[0]][1]
        if kind == _NAME:
            return sum(self.min_size(f.desc) for f in self.module.owner[arg].fields)
        inner, size = arg
        return size * self.min_size(inner) if kind == _ARRAY else 4


class _Encoder(_CodecWriter):
    """Emits ``serialize``: appends to the bytearray ``buf`` (which starts with the header)."""

    def flush(self) -> None:
        if not self.pending:
            return
        items, self.pending = self.pending, []
        modulus, layouts, starts = self.plan(items)
        args = ", ".join(item.value for item in items if item.count)
        if len(starts) == 1:
            fmt, size = layouts[starts.pop()]
            if args:
                pack = self.consts.get(f"_P_{fmt[1:]}", f'_struct.Struct("{fmt}").pack')
                self.emit(f"buf += {pack}({args})")
            else:
                self.emit(f"buf += {bytes(size)!r}")
        else:
            table = ", ".join(f'_struct.Struct("{layouts[r][0]}").pack' for r in range(modulus))
            pack = self.consts.get(f"_P{modulus}_{_codes(items)}", f"({table})")
            self.emit(f"buf += {pack}[{_offset_index('len(buf)', modulus)}]({args})")
        self.advance(layouts, modulus)

    def fields(self, fields: Sequence[tuple[str, Any]], obj: str, path: str) -> None:
        for name, desc in fields:
            self.value(desc, f"{obj}.{name}", f"{path}{name}", name)

    def value(  # noqa: PLR0912  (one case per IDL type kind)
        self, desc: Any, expr: str, path: str, hint: str
    ) -> None:
        kind, arg = desc
        problem = f"{self.top}: cannot encode ({path}: "
        if kind == _BASE:
            if arg[0] == "string":
                self.string(expr, arg[1], problem, hint)
            else:
                code, size = _CDR_PRIMITIVES[arg[0]]
                self.pending.append(_Item(code, size, size, expr))
            return
        value = expr
        if not expr.isidentifier():
            value = self.fresh(hint)
            self.emit(f"{value} = {expr}")
        if kind == _NAME:
            nested = self.module.owner[arg]
            self.fields([(f.name, f.desc) for f in nested.fields], value, f"{path}.")
            return
        inner, size = arg
        if kind == _ARRAY:
            self.emit(
                f"if len({value}) != {size}:",
                f'    raise _LocalError(f"{problem}{{len({value})}} elements, not {size})")',
            )
            if _is_octets(inner):
                self.pending.append(_Item(f"{size}s", 1, size, value))
            elif _is_primitive(inner):
                code, width = _CDR_PRIMITIVES[inner[1][0]]
                self.pending.append(_Item(f"{size}{code}", width, size * width, f"*{value}", size))
            else:
                self.flush()
                self.loop(value, inner, f"{path}[]", hint)
            return
        if size:
            self.emit(
                f"if len({value}) > {size}:",
                f'    raise _LocalError(f"{problem}{{len({value})}} elements exceed the bound'
                f' {size})")',
            )
        self.pending.append(_Item("I", 4, 4, f"len({value})"))
        self.flush()
        if _is_octets(inner):
            self.emit(f"buf += {value}")
            self.residues = _ANYWHERE
        elif _is_primitive(inner):
            code, width = _CDR_PRIMITIVES[inner[1][0]]
            self.emit(f"if {value}:")
            if width == 8 and any(r % 8 for r in self.residues):
                zeros = self.consts.get("_ZEROS", "bytes(8)")
                self.emit(f"    buf += {zeros}[: (4 - len(buf)) & 7]")
            self.emit(f'    buf += _struct.pack(f"<{{len({value})}}{code}", *{value})')
            self.after_primitive_sequence(width)
        else:
            self.loop(value, inner, f"{path}[]", hint)

    def string(self, expr: str, bound: int, problem: str, hint: str) -> None:
        encoded = self.fresh(hint)
        self.emit(f"{encoded} = {expr}.encode()")
        if bound:
            self.emit(
                f"if len({encoded}) > {bound}:",
                f'    raise _LocalError("{problem}string longer than {bound} bytes)")',
            )
        self.pending.append(_Item("I", 4, 4, f"len({encoded}) + 1"))
        self.flush()
        self.emit(f"buf += {encoded}")
        self.residues = _ANYWHERE
        self.pending.append(_Item("x", 1, 1, count=0))  # the NUL, packed with what follows

    def loop(self, sequence: str, inner: Any, path: str, hint: str) -> None:
        item = self.fresh(f"{hint}_item")

        def body(sub: _Encoder) -> str:
            sub.value(inner, item, path, hint)
            return item

        sub, _ = self.loop_body(body)
        self.emit(f"for {item} in {sequence}:")
        self.lines += sub.lines


class _Decoder(_CodecWriter):
    """Emits ``deserialize``: reads ``data`` (bytes, ``size`` long) from position ``pos``."""

    def flush(self) -> None:
        if not self.pending:
            return
        items, self.pending = self.pending, []
        modulus, layouts, starts = self.plan(items)
        if len(starts) > 1 and items[0].align == modulus:
            # Align once at run time; the rest of the group then has a single layout.
            self.emit(_ALIGN[modulus])
            self.residues = frozenset((r + -r % modulus) % 8 for r in self.residues)
            starts = {0}
        if len(starts) == 1:
            fmt, size = layouts[starts.pop()]
            unpack = self.consts.get(f"_U_{fmt[1:]}", f'_struct.Struct("{fmt}").unpack_from')
            call, step = f"{unpack}(data, pos)", str(size)
        else:
            table = ", ".join(
                f'_struct.Struct("{layouts[r][0]}").unpack_from' for r in range(modulus)
            )
            sizes = ", ".join(str(layouts[r][1]) for r in range(modulus))
            codes = _codes(items)
            unpack = self.consts.get(f"_U{modulus}_{codes}", f"({table})")
            steps = self.consts.get(f"_N{modulus}_{codes}", f"({sizes})")
            at = self.fresh("at")
            self.emit(f"{at} = {_offset_index('pos', modulus)}")
            call, step = f"{unpack}[{at}](data, pos)", f"{steps}[{at}]"
        targets = [item for item in items if item.count]
        if all(item.count == 1 for item in targets):
            if len(targets) == 1:
                self.emit(f"{targets[0].value} = {call}[0]")
            else:
                self.emit(f"{', '.join(item.value for item in targets)} = {call}")
        else:
            values = self.fresh("fixed")
            self.emit(f"{values} = {call}")
            index = 0
            for item in targets:
                if item.count == 1:
                    self.emit(f"{item.value} = {values}[{index}]")
                else:
                    self.emit(f"{item.value} = list({values}[{index} : {index + item.count}])")
                index += item.count
        self.emit(f"pos += {step}")
        self.advance(layouts, modulus)

    def fields(self, fields: Sequence[tuple[str, Any]], path: str) -> list[str]:
        """Emit the decoding of ``fields``; the expressions of their values."""
        return [self.value(desc, f"{path}{name}", name) for name, desc in fields]

    def take(self, item: _Item) -> str:
        self.pending.append(item)
        return item.value

    def value(  # noqa: PLR0911  (one case per IDL type kind)
        self, desc: Any, path: str, hint: str
    ) -> str:
        kind, arg = desc
        where = f"{self.top}.{path}"
        if kind == _BASE:
            if arg[0] == "string":
                return self.string(arg[1], path, where, hint)
            code, size = _CDR_PRIMITIVES[arg[0]]
            return self.take(_Item(code, size, size, self.fresh(hint)))
        if kind == _NAME:
            nested = self.module.owner[arg]
            values = self.fields([(f.name, f.desc) for f in nested.fields], f"{path}.")
            return f"{self.module.ref(arg)}({', '.join(values)})"
        inner, size = arg
        if kind == _ARRAY:
            if _is_octets(inner):
                return self.take(_Item(f"{size}s", 1, size, self.fresh(hint)))
            if _is_primitive(inner):
                code, width = _CDR_PRIMITIVES[inner[1][0]]
                target = self.fresh(hint)
                return self.take(_Item(f"{size}{code}", width, size * width, target, size))
            self.flush()
            return self.loop(str(size), inner, f"{path}[]", hint)
        count = self.take(_Item("I", 4, 4, self.fresh(f"n_{hint}")))
        self.flush()
        if size:
            self.emit(
                f"if {count} > {size}:",
                f'    raise _RemoteError(f"{where}: {{{count}}} elements exceed the bound {size}")',
            )
        value = self.fresh(hint)
        if _is_octets(inner):
            self.emit(
                f"if {count} > size - pos:",
                f'    raise _support.beyond_end("{path}", pos, {count}, size)',
                f"{value} = data[pos : pos + {count}]",
                f"pos += {count}",
            )
            self.residues = _ANYWHERE
            return value
        if _is_primitive(inner):
            code, width = _CDR_PRIMITIVES[inner[1][0]]
            self.emit(f"if {count}:")
            if width == 8 and any(r % 8 for r in self.residues):
                self.emit(f"    {_ALIGN[8]}")
            self.emit(
                f"    if {count} > (size - pos) // {width}:",
                f'        raise _support.beyond_end("{path}", pos, {count}, size)',
                f'    {value} = list(_struct.unpack_from(f"<{{{count}}}{code}", data, pos))',
                f"    pos += {count} * {width}",
                "else:",
                f"    {value} = []",
            )
            self.after_primitive_sequence(width)
            return value
        self.emit(
            f"if {count} > (size - pos) // {self.min_size(inner)}:",
            f'    raise _support.beyond_end("{path}", pos, {count}, size)',
        )
        return self.loop(count, inner, f"{path}[]", hint)

    def string(self, bound: int, path: str, where: str, hint: str) -> str:
        length = self.take(_Item("I", 4, 4, self.fresh(f"n_{hint}")))
        self.flush()
        value = self.fresh(hint)
        self.emit(
            f"if not 0 < {length} <= size - pos or data[pos + {length} - 1]:",
            f'    raise _support.bad_string("{path}", data, pos, {length})',
        )
        if bound:
            self.emit(
                f"if {length} > {bound + 1}:",
                f'    raise _RemoteError("{where}: string longer than {bound} bytes")',
            )
        self.emit(f"{value} = data[pos : pos + {length} - 1].decode()", f"pos += {length}")
        self.residues = _ANYWHERE
        return value

    def loop(self, count: str, inner: Any, path: str, hint: str) -> str:
        items = self.fresh(hint)
        element = (
            self.module.ref(inner[1]) if inner[0] == _NAME else "str"
        )  # sequences of primitives never loop

        def body(sub: _Decoder) -> str:
            return sub.value(inner, path, hint)

        sub, value = self.loop_body(body)
        sub.emit(f"{items}.append({value})")
        self.emit(f"{items}: list[{element}] = []", f"for _ in range({count}):")
        self.lines += sub.lines
        return items


# --- driver ------------------------------------------------------------------------------------


def generate(root: Path) -> dict[Path, str]:
    """Map each generated module path to its (ruff-formatted) text."""
    sources = discover(root)
    structs, services = parse(sources)
    all_structs = [*structs, *(p for s in services for p in (s.request, s.response))]
    hashes = type_hashes(all_structs)
    owner = {s.ros_name: s for s in all_structs}
    outputs: dict[Path, str] = {}
    for package in sorted({src.package for src in sources}):
        module = _Module(
            package,
            sources=[src for src in sources if src.package == package],
            structs=[s for s in structs if s.package == package],
            services=[s for s in services if s.package == package],
            hashes=hashes,
            owner=owner,
        )
        path = HERE / f"_{package}.py"
        outputs[path] = _ruff_format(module.render(), path, root)
    return outputs


def _ruff_format(code: str, path: Path, root: Path) -> str:
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "ruff", "format", "--stdin-filename", str(path), "-"],
            input=code,
            capture_output=True,
            text=True,
            cwd=root,
            check=False,
            timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise CodegenError(f"cannot run ruff to format {path.name}: {exc}") from exc
    if proc.returncode != 0:
        raise CodegenError(f"ruff format failed on {path.name}:\n{proc.stderr}")
    return proc.stdout


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m iomt.msg.codegen", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--check", action="store_true", help="fail if checked-in output is stale")
    parser.add_argument("--root", type=Path, help="repository root (default: found upward)")
    args = parser.parse_args(argv)
    try:
        root = args.root.resolve() if args.root else find_root()
        outputs = generate(root)
    except CodegenError as exc:
        print(f"codegen: error: {exc}", file=sys.stderr)
        return 2
    stale = [p for p, text in outputs.items() if not p.is_file() or _read(p) != text]
    extra = sorted(
        p
        for p in HERE.glob("_*.py")
        if p.name not in ("_support.py", "__init__.py")
        and p not in outputs
        and "generated by iomt.msg.codegen" in _read(p)[:300]
    )
    if args.check:
        for path in stale:
            old = _read(path).splitlines(keepends=True) if path.is_file() else []
            diff = difflib.unified_diff(
                old, outputs[path].splitlines(keepends=True), str(path), "generated"
            )
            sys.stdout.writelines(list(diff)[:40])
        for path in extra:
            print(f"{path}: generated module without an interface package")
        if stale or extra:
            print(
                f"codegen: {len(stale) + len(extra)} module(s) out of date; "
                "run python -m iomt.msg.codegen",
                file=sys.stderr,
            )
            return 1
        return 0
    for path in stale:
        path.write_text(outputs[path], encoding="utf-8")
        print(f"wrote {path.relative_to(root) if path.is_relative_to(root) else path}")
    for path in extra:
        path.unlink()
        print(f"removed {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
