"""The generated codecs against cyclonedds' interpreter (the path they replaced) and rosbags.

The generated ``serialize``/``deserialize`` are the hot path (cyclonedds' DataWriter.write and
DataReader.take call them). The interpretive path they replaced is kept as their fallback and
as the reference here, so a codegen mistake cannot hide: for hypothesis values of every type
— messages, service parts and the rq/rr wire types — both paths produce the same bytes and
decode any sample to the same value; and fuzzed samples (random, truncated, mutated, length
words replaced by odd values) are accepted by both with the same value or rejected by both.
The one sanctioned difference: a string whose last byte is not NUL is rejected by the
generated decoder (as Cyclone's C deserializer does), where the interpreter drops the byte.

iomt's own interfaces do not use every CDR shape (no float64[] or bool[3] or string<=N[<=M]),
so a synthetic interface set with all of them is generated in a temporary repository and
held to the interpreter and to rosbags the same way.
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cyclonedds.idl._support import Buffer, Endianness
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from msg_values import (
    BASE,
    NAME,
    OCTETS,
    STORE,
    canonical,
    fields_of,
    iomt_class,
    message_strategy,
    to_cdds,
    to_rosbags,
)
from rosbags.typesys import Stores, get_types_from_msg, get_typestore

import iomt.msg
from iomt.errors import LocalProtocolError, RemoteProtocolError
from iomt.msg import (
    Gid,
    NodeEntitiesInfo,
    Registration,
    SecureEnvelope,
    Time,
    Vitals,
    codegen,
    decode,
    encode,
)
from iomt.msg._support import interpretive_decode, interpretive_encode

ROOT = Path(__file__).resolve().parents[2]
MESSAGES = sorted(
    name
    for name in STORE.fielddefs
    if name.startswith(("iomt_interfaces/", "builtin_interfaces/", "rmw_dds_common/"))
)
SERVICES = sorted(info.name for info in iomt.msg.all_interfaces() if "/srv/" in info.name)
WIRES = [(service, part) for service in SERVICES for part in ("Request", "Response")]
examples = settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
fuzz = settings(examples, max_examples=25)

# No scalar ``byte``: rosbags packs it as a signed int8, rosidl (and iomt) as an unsigned octet.
ALL_SHAPES = {
    "Inner": "uint8 tag\nfloat64 value\nstring name\nint16[] shorts\n",
    "AllShapes": (
        "bool b\nchar c\nint8 i8\nuint8 u8\nint16 i16\nuint16 u16\n"
        "int32 i32\nuint32 u32\nint64 i64\nuint64 u64\nfloat32 f32\nfloat64 f64\n"
        "string s\nstring<=5 bounded\n"
        "bool[3] bools\nint16[2] shorts\nfloat64[3] doubles\nuint8[4] octets\n"
        "string[2] strings\nstring<=3[2] bounded_strings\nInner[2] inners\n"
        "uint8 odd\n"
        "bool[] bool_seq\nint16[] short_seq\nuint32[<=3] bounded_uints\nfloat64[] double_seq\n"
        "int64[<=2] bounded_longs\n"
        "uint8[] octet_seq\nuint8[<=4] bounded_octets\nstring[] string_seq\n"
        "string<=4[<=3] bounded_string_seq\nInner[] inner_seq\nInner[<=2] bounded_inners\n"
        "Inner inner\nbuiltin_interfaces/Time stamp\nuint8 last\n"
    ),
}
# The same layout without bounds: what a peer that ignores them sends.
ALL_SHAPES["AllShapesLoose"] = re.sub(r"<=\d+", "", ALL_SHAPES["AllShapes"])


# --- helpers --------------------------------------------------------------------------------


def octets_are_bytes(name: str, msg: Any, store: Any = STORE) -> bool:
    """Every uint8[]/char[N] field of ``msg`` (nested too) is a ``bytes``."""
    for field, (kind, arg) in fields_of(name, store):
        value = getattr(msg, field)
        if kind == NAME and not octets_are_bytes(arg, value, store):
            return False
        if kind in (3, 4):
            inner = arg[0]
            if inner[0] == BASE and inner[1][0] in OCTETS and type(value) is not bytes:
                return False
            if inner[0] == NAME and not all(octets_are_bytes(inner[1], v, store) for v in value):
                return False
    return True


def outcome(decoder: Any, msg_type: type, sample: bytes) -> tuple[str, Any]:
    """("ok", the value as the interpreter encodes it) or ("rejected", the error message)."""
    try:
        msg = decoder(msg_type, sample)
    except RemoteProtocolError as exc:
        return "rejected", str(exc)
    assert type(msg) is msg_type
    return "ok", interpretive_encode(msg)


def fast_decode(msg_type: Any, sample: bytes) -> Any:
    return msg_type.deserialize(sample)


def check_decoders_agree(msg_type: type, sample: bytes) -> None:
    fast = outcome(fast_decode, msg_type, sample)
    reference = outcome(interpretive_decode, msg_type, sample)
    if fast[0] == "ok":
        assert reference == fast
    elif reference[0] == "ok":
        assert "is not NUL-terminated" in fast[1], fast[1]


@st.composite
def mutated(draw: st.DrawFn, sample: bytes) -> bytes:
    """``sample`` with bytes overwritten, a 4-byte word replaced, cut or extended."""
    data = bytearray(sample)
    for _ in range(draw(st.integers(0, 3))):
        if len(data) > 4:
            data[draw(st.integers(4, len(data) - 1))] = draw(st.integers(0, 255))
    if len(data) >= 8 and draw(st.booleans()):  # a length word, most likely
        at = draw(st.integers(1, len(data) // 4 - 1)) * 4
        word = draw(st.sampled_from([0, 1, 2, 3, 4, 5, 16, 255, 256, 257, 2**31, 2**32 - 1]))
        data[at : at + 4] = struct.pack("<I", word)
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]
    data += draw(st.binary(max_size=6))
    return bytes(data)


def wire_sample_of(service: str, part: str, data: st.DataObject) -> tuple[Any, str]:
    name = f"{service}_{part}"
    msg = to_cdds(name, data.draw(message_strategy(name)))
    guid, seq = data.draw(st.integers(0, 2**64 - 1)), data.draw(st.integers(-(2**63), 2**63 - 1))
    srv: Any = iomt.msg.get_service_type(service)
    return srv.to_wire(msg, guid, seq), name


def as_dds_writes(sample: bytes) -> bytes:
    """What Cyclone delivers: the sample padded to a multiple of 4 (cyclonedds' DataWriter)."""
    return sample.ljust((len(sample) + 3) & ~3, b"\0")


# --- iomt's interfaces: the generated path equals the interpretive one ----------------------


@pytest.mark.parametrize("name", MESSAGES)
@examples
@given(data=st.data())
def test_generated_codec_matches_the_interpreter(name: str, data: st.DataObject) -> None:
    value = data.draw(message_strategy(name))
    msg = to_cdds(name, value)
    cls = type(msg)
    sample = msg.serialize()
    assert sample == interpretive_encode(msg) == encode(msg)
    for delivered in (sample, as_dds_writes(sample)):
        fast = cls.deserialize(delivered)
        assert type(fast) is cls
        assert canonical(name, fast) == canonical(name, value)
        assert canonical(name, interpretive_decode(cls, delivered)) == canonical(name, value)
        assert octets_are_bytes(name, fast)
    assert canonical(name, decode(cls, bytearray(sample))) == canonical(name, value)
    assert canonical(name, cls.deserialize(memoryview(sample))) == canonical(name, value)


@pytest.mark.parametrize(("service", "part"), WIRES)
@examples
@given(data=st.data())
def test_generated_wire_codec_matches_the_interpreter(
    service: str, part: str, data: st.DataObject
) -> None:
    wire, name = wire_sample_of(service, part, data)
    cls = type(wire)
    sample = wire.serialize()
    assert sample == interpretive_encode(wire)
    back = cls.deserialize(as_dds_writes(sample))
    assert interpretive_encode(back) == sample
    assert (back.client_guid, back.seq) == (wire.client_guid, wire.seq)
    assert canonical(name, back) == canonical(name, wire)
    assert interpretive_encode(interpretive_decode(cls, sample)) == sample


# --- fuzzing: both decoders accept the same samples, with the same values --------------------

ALL_CLASSES = sorted(
    [iomt.msg.message_info(name).type for name in MESSAGES]
    + [getattr(iomt.msg.get_service_type(service), f"{part}Wire") for service, part in WIRES],
    key=lambda cls: (cls.__idl_typename__, cls.__name__),
)


def rich_sample(cls: Any, data: st.DataObject) -> bytes:
    if cls.__name__.endswith("Wire"):
        service, part = cls.__name__.removesuffix("Wire").rsplit("_", 1)
        wire, _ = wire_sample_of(f"iomt_interfaces/srv/{service}", part, data)
        return bytes(wire.serialize())
    name = iomt.msg.message_info(cls).name
    return bytes(to_cdds(name, data.draw(message_strategy(name))).serialize())


@pytest.mark.parametrize("cls", ALL_CLASSES, ids=lambda cls: cls.__name__)
@fuzz
@given(data=st.data())
def test_decoders_agree_on_mutated_samples(cls: type, data: st.DataObject) -> None:
    check_decoders_agree(cls, data.draw(mutated(rich_sample(cls, data))))


@pytest.mark.parametrize("cls", ALL_CLASSES, ids=lambda cls: cls.__name__)
@fuzz
@given(body=st.binary(max_size=200))
def test_decoders_agree_on_random_bodies(cls: type, body: bytes) -> None:
    check_decoders_agree(cls, b"\x00\x01\x00\x00" + body)


def test_unterminated_strings_are_rejected_by_the_generated_decoder_only() -> None:
    sample = bytearray(Vitals(device_uri="abc").serialize())
    nul = 4 + 8 + 4 + 3  # header, stamp, length word, "abc"
    assert sample[nul - 3 : nul + 1] == b"abc\x00"
    sample[nul] = ord("d")
    with pytest.raises(RemoteProtocolError, match="device_uri: string at offset 16 is not NUL"):
        Vitals.deserialize(bytes(sample))
    assert interpretive_decode(Vitals, bytes(sample)).device_uri == "abc"  # "d" silently dropped


@pytest.mark.parametrize(
    ("sample", "error"),
    [
        (b"\x00\x01\x00\x00" + bytes(8) + struct.pack("<I", 0) + bytes(40), "string length 0"),
        (b"\x00\x01\x00\x00" + bytes(8) + struct.pack("<I", 99) + bytes(40), "99 declared"),
        (b"\x00\x01\x00", "no CDR header"),
        (Vitals().serialize() + bytes(4), "4 unexpected bytes"),
    ],
    ids=["zero-length-string", "string-past-end", "short", "trailing"],
)
def test_generated_decoder_errors_say_what_is_wrong(sample: bytes, error: str) -> None:
    with pytest.raises(RemoteProtocolError, match=error):
        Vitals.deserialize(sample)


# --- what the generated path hands to cyclonedds ---------------------------------------------


def test_other_encodings_and_buffers_go_through_the_interpreter() -> None:
    msg = SecureEnvelope(request_id="r", seq=7, stamp=Time(sec=1), ciphertext=b"\x01\x02\x03")
    codec: Any = SecureEnvelope.__idl__
    big = msg.serialize(endianness=Endianness.Big)
    assert big[:2] == b"\x00\x00"
    assert big == codec.serialize(msg, endianness=Endianness.Big)
    assert SecureEnvelope.deserialize(big) == msg
    xcdr2 = msg.serialize(use_version_2=True)
    assert xcdr2 == codec.serialize(msg, use_version_2=True)
    assert xcdr2[:2] == b"\x00\x07"
    assert SecureEnvelope.deserialize(xcdr2[4:], has_header=False, use_version_2=True) == msg
    assert msg.serialize(buffer=Buffer()) == codec.serialize(msg, buffer=Buffer())
    little = msg.serialize(use_version_2=False, endianness=Endianness.Little)
    assert little == msg.serialize() == codec.serialize(msg, use_version_2=False)
    assert SecureEnvelope.deserialize(little[4:], has_header=False) == msg
    with pytest.raises(RemoteProtocolError, match="not plain CDR"):
        SecureEnvelope.deserialize(xcdr2)  # ROS 2 peers never send it
    with pytest.raises(LocalProtocolError):
        SecureEnvelope.deserialize(little, use_version_2=False)


@pytest.mark.parametrize(
    ("msg", "error"),
    [
        (Vitals(device_uri=b"x"), "AttributeError"),
        (Vitals(seq=1.5), "error: required argument is not an integer"),
        (Vitals(kind=-1), "error: ubyte format requires 0 <= number <= 255"),
        (Vitals(heart_rate_bpm=1e39), "OverflowError"),
        (Vitals(patient_id="\ud800"), "UnicodeEncodeError"),
        (SecureEnvelope(stamp=None), "AttributeError"),
        (Registration(neighbours=[None]), "AttributeError"),
        (Gid(data=b"x" * 17), r"data: 17 elements, not 16\)"),
        (
            NodeEntitiesInfo(writer_gid_seq=[Gid(data=b"")]),
            r"writer_gid_seq\[\]\.data: 0 elements, not 16",
        ),
        (NodeEntitiesInfo(node_namespace="/" * 257), "node_namespace: string longer than 256"),
    ],
    ids=lambda v: v if isinstance(v, str) else type(v).__name__,
)
def test_values_that_do_not_fit_raise_local_protocol_error(msg: Any, error: str) -> None:
    with pytest.raises(LocalProtocolError, match="cannot encode") as info:
        msg.serialize()
    assert info.match(error)
    with pytest.raises(LocalProtocolError):
        encode(msg)
    with pytest.raises(LocalProtocolError):  # the interpreter refuses them too
        interpretive_encode(msg)


def test_octet_fields_take_bytes_like_values_only() -> None:
    """The interpreter also took a list of ints for uint8[]; the generated encoder does not."""
    as_list = SecureEnvelope(ciphertext=[1, 2])
    with pytest.raises(LocalProtocolError, match="TypeError"):
        as_list.serialize()
    for value in (bytearray(b"\x01\x02"), memoryview(b"\x01\x02")):
        sample = SecureEnvelope(ciphertext=value).serialize()
        assert sample == SecureEnvelope(ciphertext=b"\x01\x02").serialize()


# --- every CDR shape, in a generated module of its own ---------------------------------------


@pytest.fixture(scope="module")
def all_shapes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Any, str]]:
    """The all-shapes interfaces as iomt_interfaces/msg types: (module, rosbags store, text)."""
    root = tmp_path_factory.mktemp("all_shapes")
    package = root / "iomt_interfaces"
    (package / "msg").mkdir(parents=True)
    (package / "srv").mkdir()
    for name, text in ALL_SHAPES.items():
        (package / "msg" / f"{name}.msg").write_text(text)
    shutil.copy(ROOT / "iomt_interfaces" / "package.xml", package / "package.xml")
    shutil.copy(ROOT / "pyproject.toml", root / "pyproject.toml")
    text = codegen.generate(root)[Path(codegen.__file__).parent / "_iomt_interfaces.py"]
    module = types.ModuleType("iomt_all_shapes_probe")
    sys.modules[module.__name__] = module  # dataclasses look their module up
    try:
        exec(compile(text, "all_shapes", "exec", dont_inherit=True), module.__dict__)
        store = get_typestore(Stores.ROS2_JAZZY)
        typesdict: dict[str, Any] = {}
        for name, msg_text in ALL_SHAPES.items():
            typesdict.update(get_types_from_msg(msg_text, f"iomt_interfaces/msg/{name}"))
        store.register(typesdict)
        yield module, store, text
    finally:
        del sys.modules[module.__name__]


def shape_classes(module: Any) -> Any:
    def classes(name: str) -> Any:
        if name.startswith("iomt_interfaces/msg/"):
            return getattr(module, name.rsplit("/", 1)[1])
        return iomt_class(name)

    return classes


@pytest.mark.parametrize("name", ["iomt_interfaces/msg/AllShapes", "iomt_interfaces/msg/Inner"])
@settings(examples, max_examples=50)
@given(data=st.data())
def test_every_cdr_shape_matches_the_interpreter_and_rosbags(
    all_shapes: tuple[Any, Any, str], name: str, data: st.DataObject
) -> None:
    module, store, _ = all_shapes
    value = data.draw(message_strategy(name, store=store))
    msg = to_cdds(name, value, store, shape_classes(module))
    cls = type(msg)
    sample = msg.serialize()
    assert sample == interpretive_encode(msg)
    rosbags = to_rosbags(name, value, store)
    assert sample == bytes(store.serialize_cdr(rosbags, name, little_endian=True))
    for delivered in (sample, as_dds_writes(sample)):
        back = cls.deserialize(delivered)
        assert canonical(name, back, store) == canonical(name, value, store)
        assert octets_are_bytes(name, back, store)
        assert interpretive_encode(interpretive_decode(cls, delivered)) == sample
    big = bytes(store.serialize_cdr(rosbags, name, little_endian=False))
    assert canonical(name, cls.deserialize(big), store) == canonical(name, value, store)


@settings(fuzz, max_examples=100)
@given(data=st.data())
def test_every_cdr_shape_decoders_agree_on_mutated_samples(
    all_shapes: tuple[Any, Any, str], data: st.DataObject
) -> None:
    module, store, _ = all_shapes
    name = "iomt_interfaces/msg/AllShapes"
    msg = to_cdds(
        name, data.draw(message_strategy(name, store=store)), store, shape_classes(module)
    )
    check_decoders_agree(type(msg), data.draw(mutated(msg.serialize())))


def test_every_cdr_shape_checks_bounds_both_ways(all_shapes: tuple[Any, Any, str]) -> None:
    module, _, _ = all_shapes
    for field, value in [
        ("bounded", "abcdef"),
        ("bounded_uints", [1, 2, 3, 4]),
        ("bounded_longs", [1, 2, 3]),
        ("bounded_octets", b"12345"),
        ("bounded_string_seq", ["a", "b", "c", "d"]),
        ("bounded_string_seq", ["abcde"]),
        ("bounded_strings", ["abcd", ""]),
        ("bounded_inners", [module.Inner()] * 3),
    ]:
        with pytest.raises(LocalProtocolError, match=field):
            module.AllShapes(**{field: value}).serialize()
        # A peer that ignores the bound: the same layout, unbounded.
        sample = module.AllShapesLoose(**{field: value}).serialize()
        with pytest.raises(RemoteProtocolError, match=field):
            module.AllShapes.deserialize(sample)
        with pytest.raises(RemoteProtocolError, match=field):
            interpretive_decode(module.AllShapes, sample)
    for field, value in [("bools", [True]), ("doubles", [0.0] * 4), ("octets", b"123")]:
        with pytest.raises(LocalProtocolError, match=rf"{field}: \d elements, not"):
            module.AllShapes(**{field: value}).serialize()


def test_generated_all_shapes_module_passes_ruff(
    all_shapes: tuple[Any, Any, str], tmp_path: Path
) -> None:
    _, _, text = all_shapes
    path = tmp_path / "_iomt.py"
    path.write_text(text)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "ruff",
            "check",
            "--config",
            str(ROOT / "pyproject.toml"),
            str(path),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
