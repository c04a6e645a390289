"""Malformed samples: any bytes decode to a message or raise RemoteProtocolError, nothing else.

cyclonedds' deserializer trusts its input (a truncated ``char[16]`` silently shortens, a
declared ``Gid[]`` length allocates that many Gids however few bytes follow). iomt.msg.decode
— and the generated ``deserialize`` that cyclonedds' DataReader calls — must turn every such
input into a typed error with work proportional to the sample's size.
"""

from __future__ import annotations

import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from msg_values import STORE, message_strategy, to_cdds

import iomt.msg
from iomt.errors import LocalProtocolError, RemoteProtocolError
from iomt.msg import (
    Gid,
    NodeEntitiesInfo,
    ParticipantEntitiesInfo,
    SecureEnvelope,
    Vitals,
    decode,
    encode,
)
from iomt.msg._support import interpretive_decode

MESSAGE_TYPES = sorted(
    (
        iomt.msg.message_info(name).type
        for name in STORE.fielddefs
        if name.startswith(("iomt_interfaces/", "rmw_dds_common/", "builtin_interfaces/"))
    ),
    key=lambda t: t.__idl_typename__,
)
HEADER_LE = b"\x00\x01\x00\x00"
# Nested message types (e.g. ClusterHeadStatus) draw large samples by nature.
fuzz = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
# Every prefix of a sample is decoded: fewer, still rich, samples.
truncations = settings(fuzz, max_examples=12)


def decode_or_reject(msg_type: type, data: bytes) -> None:
    """The property: a message of the right type, or RemoteProtocolError."""
    try:
        msg = decode(msg_type, data)
    except RemoteProtocolError:
        return
    assert type(msg) is msg_type


def rich_sample(name: str, data: st.DataObject) -> bytes:
    return encode(to_cdds(name, data.draw(message_strategy(name))))


def evil_participant_info(count: int, *, little: bool = True) -> bytes:
    """A ros_discovery_info sample declaring ``count`` writer Gids and carrying none."""
    u32 = struct.Struct("<I" if little else ">I").pack
    node = (
        u32(2) + b"/\x00\x00\x00"  # node_namespace "/"
        + u32(2) + b"n\x00\x00\x00"  # node_name "n"
        + u32(0)  # reader_gid_seq: empty
        + u32(count)  # writer_gid_seq: `count` Gids follow (they don't)
    )  # fmt: skip
    header = HEADER_LE if little else b"\x00\x00\x00\x00"
    return header + bytes(16) + u32(1) + node


@pytest.mark.parametrize("msg_type", MESSAGE_TYPES, ids=lambda t: t.__idl_typename__)
@truncations
@given(data=st.data())
def test_every_truncation_is_rejected(msg_type: type, data: st.DataObject) -> None:
    name = iomt.msg.message_info(msg_type).name
    sample = rich_sample(name, data)
    assert type(decode(msg_type, sample)) is msg_type
    for cut in range(len(sample)):
        with pytest.raises(RemoteProtocolError):
            decode(msg_type, sample[:cut])


@pytest.mark.parametrize("msg_type", MESSAGE_TYPES, ids=lambda t: t.__idl_typename__)
@fuzz
@given(body=st.binary(max_size=300), little=st.booleans())
def test_random_bodies_decode_or_raise_remote_protocol_error(
    msg_type: type, body: bytes, little: bool
) -> None:
    decode_or_reject(msg_type, (HEADER_LE if little else b"\x00\x00\x00\x00") + body)


@pytest.mark.parametrize("msg_type", MESSAGE_TYPES, ids=lambda t: t.__idl_typename__)
@fuzz
@given(data=st.data())
def test_corrupted_samples_decode_or_raise_remote_protocol_error(
    msg_type: type, data: st.DataObject
) -> None:
    name = iomt.msg.message_info(msg_type).name
    sample = bytearray(rich_sample(name, data))
    for _ in range(data.draw(st.integers(1, 8))):
        pos = data.draw(st.integers(4, len(sample) - 1)) if len(sample) > 4 else 0
        sample[pos] = data.draw(st.integers(0, 255))
    decode_or_reject(msg_type, bytes(sample))


@fuzz
@given(raw=st.binary(max_size=64))
def test_any_bytes_at_all(raw: bytes) -> None:
    decode_or_reject(Vitals, raw)
    decode_or_reject(ParticipantEntitiesInfo, raw)


@pytest.mark.parametrize(
    "header",
    [b"\x00\x06\x00\x00", b"\x00\x07\x00\x00", b"\x00\x02\x00\x00", b"\x00\x03\x00\x00",
     b"\x00\x0a\x00\x00", b"\x01\x01\x00\x00", b"\xff\xff\x00\x00"],
    ids=["xcdr2-be", "xcdr2-le", "pl-cdr-be", "pl-cdr-le", "pl-cdr2", "bad", "garbage"],
)  # fmt: skip
def test_encapsulations_other_than_plain_cdr_are_rejected(header: bytes) -> None:
    sample = encode(Vitals(device_uri="x"))
    with pytest.raises(RemoteProtocolError, match="not plain CDR"):
        decode(Vitals, header + sample[4:])


@pytest.mark.parametrize("raw", [b"", b"\x00", b"\x00\x01\x00"])
def test_samples_shorter_than_the_header_are_rejected(raw: bytes) -> None:
    with pytest.raises(RemoteProtocolError, match="no CDR header"):
        decode(Vitals, raw)


def test_alignment_padding_after_the_sample_is_accepted_but_not_more() -> None:
    sample = encode(SecureEnvelope(ciphertext=b"abc"))
    assert decode(SecureEnvelope, sample + b"\x00\x00\x00").ciphertext == b"abc"
    with pytest.raises(RemoteProtocolError, match="unexpected bytes"):
        decode(SecureEnvelope, sample + b"\x00" * 4)


def test_raw_cyclonedds_allocates_per_declared_element() -> None:
    """Upstream behaviour that motivates the guard: 48 bytes become N empty Gids."""
    count = 20_000
    raw = ParticipantEntitiesInfo.__idl__.deserialize(evil_participant_info(count))
    gids = raw.node_entities_info_seq[0].writer_gid_seq
    assert len(gids) == count
    assert gids[-1].data == b""  # not even the right size: read_bytes slices past the end


@pytest.fixture
def gids_built(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts Gid constructions (the decoders build elements through ``Gid.__init__``)."""
    built = [0]
    init = Gid.__init__

    def counting_init(self: Gid, *args: object, **kwargs: object) -> None:
        built[0] += 1
        init(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Gid, "__init__", counting_init)
    return built


def test_gid_counting_sees_every_decoded_gid(gids_built: list[int]) -> None:
    """The control for the test below: a valid sample builds exactly its Gids."""
    node = NodeEntitiesInfo(node_name="n", writer_gid_seq=[Gid(bytes([i]) * 16) for i in range(3)])
    sample = encode(ParticipantEntitiesInfo(node_entities_info_seq=[node]))
    gids_built[0] = 0
    decode(ParticipantEntitiesInfo, sample)
    interpretive_decode(ParticipantEntitiesInfo, sample)
    assert gids_built[0] == 2 * 4  # the participant's own gid and 3 writer gids, per path


@pytest.mark.parametrize("count", [1, 20_000, 2**32 - 1])
def test_huge_declared_sequence_is_rejected_before_building_elements(
    count: int, gids_built: list[int]
) -> None:
    sample = evil_participant_info(count)
    with pytest.raises(RemoteProtocolError, match="malformed CDR"):
        decode(ParticipantEntitiesInfo, sample)
    # The DataReader path (cyclonedds calls deserialize) is guarded the same way.
    with pytest.raises(RemoteProtocolError):
        ParticipantEntitiesInfo.deserialize(sample)
    # The generated decoder compares the declared count with the bytes left before building
    # anything; nested messages are built after their fields are read, so not even the
    # participant's own gid was built.
    assert gids_built[0] == 0
    # The interpretive path (big-endian samples take it) builds the participant's gid, then
    # the first missing writer Gid stops decoding.
    with pytest.raises(RemoteProtocolError, match="malformed CDR"):
        interpretive_decode(ParticipantEntitiesInfo, sample)
    big = evil_participant_info(count, little=False)
    with pytest.raises(RemoteProtocolError, match="malformed CDR"):
        ParticipantEntitiesInfo.deserialize(big)
    assert gids_built[0] == 2


@pytest.mark.parametrize(
    ("field", "length"),
    [("ciphertext", 2**32 - 1), ("ciphertext", 1000), ("request_id", 2**32 - 1), ("request_id", 0)],
)
def test_lengths_beyond_the_sample_or_zero_string_length_are_rejected(
    field: str, length: int
) -> None:
    if field == "request_id":  # the first field: uint32 length, then bytes + NUL
        sample = HEADER_LE + struct.pack("<I", length) + b"x\x00\x00\x00"
    else:  # all strings empty, seq 0, stamp 0, then the ciphertext length
        prefix = HEADER_LE + (struct.pack("<I", 1) + b"\x00\x00\x00\x00") * 5
        sample = prefix + bytes(8 + 8) + struct.pack("<I", length) + b"abc"
    with pytest.raises(RemoteProtocolError):
        decode(SecureEnvelope, sample)


def test_invalid_utf8_is_rejected() -> None:
    stamp = bytes(8)
    device_uri = struct.pack("<I", 3) + b"\xff\xfe\x00"  # not UTF-8
    with pytest.raises(RemoteProtocolError, match="UnicodeDecodeError"):
        decode(Vitals, HEADER_LE + stamp + device_uri + bytes(40))


def test_declared_bounds_are_enforced_both_ways() -> None:
    long_name = "n" * 257
    with pytest.raises(LocalProtocolError, match="longer than 256"):
        encode(NodeEntitiesInfo(node_name=long_name))
    # A peer that ignores the bound: same layout, unbounded string.
    body = (
        struct.pack("<I", 2) + b"/\x00\x00\x00"
        + struct.pack("<I", 258) + long_name.encode() + b"\x00" + b"\x00" * 2
        + struct.pack("<I", 0) + struct.pack("<I", 0)
    )  # fmt: skip
    with pytest.raises(RemoteProtocolError, match="longer than 256"):
        decode(NodeEntitiesInfo, HEADER_LE + body)
    nested = HEADER_LE + bytes(16) + struct.pack("<I", 1) + body
    with pytest.raises(RemoteProtocolError, match="node_name"):
        decode(ParticipantEntitiesInfo, nested)
    # Multi-byte characters count as bytes, as on the wire.
    with pytest.raises(LocalProtocolError):
        encode(NodeEntitiesInfo(node_name="é" * 129))
    assert decode(NodeEntitiesInfo, encode(NodeEntitiesInfo(node_name="é" * 128))).node_name


@pytest.mark.parametrize(
    "msg",
    [Vitals(kind=256), Vitals(seq=-1), Gid(data=b"short"), SecureEnvelope(seq=2**64)],
    ids=["uint8-overflow", "uint32-negative", "char16-short", "uint64-overflow"],
)
def test_unencodable_values_raise_local_protocol_error(msg: object) -> None:
    with pytest.raises(LocalProtocolError, match="cannot encode"):
        encode(msg)  # type: ignore[arg-type]


def test_headerless_deserialize_is_guarded_too() -> None:
    body = encode(Vitals(device_uri="dev"))[4:]
    assert Vitals.deserialize(body, has_header=False).device_uri == "dev"
    with pytest.raises(RemoteProtocolError):
        Vitals.deserialize(body[:-1], has_header=False)
    with pytest.raises(RemoteProtocolError):
        Vitals.deserialize(b"", has_header=False)
    with pytest.raises(LocalProtocolError):
        Vitals.deserialize(HEADER_LE + body, use_version_2=True)
