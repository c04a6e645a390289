"""Byte-identical CDR: cyclonedds (the generated types) against rosbags, for every interface.

rosbags is an independent implementation of ROS 2 message parsing and CDR; where both agree
byte for byte, a ROS 2 Jazzy peer (rmw_cyclonedds_cpp) reads what we write and vice versa.
Service samples are checked against rmw_cyclonedds' framing: the encapsulation header, then
``{uint64 client_guid; int64 seq}``, then the request/response body as rosbags encodes it.
"""

from __future__ import annotations

import struct
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from msg_values import (
    STORE,
    canonical,
    default_value,
    message_strategy,
    to_cdds,
    to_rosbags,
)

import iomt.msg
from iomt.errors import LocalProtocolError, RemoteProtocolError
from iomt.msg import decode

MESSAGES = sorted(
    name
    for name in STORE.fielddefs
    if name.startswith(("iomt_interfaces/", "builtin_interfaces/", "rmw_dds_common/"))
)
SERVICES = sorted(info.name for info in iomt.msg.all_interfaces() if "/srv/" in info.name)
HEADER_LE = b"\x00\x01\x00\x00"

examples = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def test_every_interface_is_covered() -> None:
    registered = {info.name for info in iomt.msg.all_interfaces()}
    parts = {f"{s}_{p}" for s in SERVICES for p in ("Request", "Response")}
    assert registered - set(SERVICES) | parts == set(MESSAGES)
    assert len(MESSAGES) >= 16


def check_same_bytes(name: str, value: dict[str, Any]) -> bytes:
    cdds = to_cdds(name, value)
    ours = iomt.msg.encode(cdds)
    theirs = bytes(STORE.serialize_cdr(to_rosbags(name, value), name, little_endian=True))
    assert ours == theirs
    assert cdds.serialize() == ours  # what cyclonedds' DataWriter puts on the wire
    # Each side reads the other's bytes back to the same value.
    assert canonical(name, decode(type(cdds), theirs)) == canonical(name, value)
    assert canonical(name, STORE.deserialize_cdr(ours, name)) == canonical(name, value)
    return ours


@pytest.mark.parametrize("name", MESSAGES)
def test_default_message_matches_rosbags(name: str) -> None:
    cls = iomt.msg.message_info(name).type
    assert canonical(name, cls()) == canonical(name, default_value(name))
    assert check_same_bytes(name, default_value(name)) == cls().serialize()


@pytest.mark.parametrize("name", MESSAGES)
@examples
@given(data=st.data())
def test_message_matches_rosbags(name: str, data: st.DataObject) -> None:
    check_same_bytes(name, data.draw(message_strategy(name)))


@pytest.mark.parametrize("name", MESSAGES)
@examples
@given(data=st.data())
def test_big_endian_samples_decode(name: str, data: st.DataObject) -> None:
    value = data.draw(message_strategy(name))
    big = bytes(STORE.serialize_cdr(to_rosbags(name, value), name, little_endian=False))
    assert big[:2] == b"\x00\x00"
    cls = iomt.msg.message_info(name).type
    assert canonical(name, decode(cls, big)) == canonical(name, value)


GUIDS = st.integers(0, 2**64 - 1)
SEQS = st.integers(-(2**63), 2**63 - 1)


@pytest.mark.parametrize("service", SERVICES)
@pytest.mark.parametrize("part", ["Request", "Response"])
@examples
@given(data=st.data(), client_guid=GUIDS, seq=SEQS)
def test_service_wire_is_rmw_header_plus_body(
    service: str, part: str, data: st.DataObject, client_guid: int, seq: int
) -> None:
    name = f"{service}_{part}"
    value = data.draw(message_strategy(name))
    srv = iomt.msg.get_service_type(service)
    msg = to_cdds(name, value)
    wire = (
        srv.request_to_wire(msg, client_guid, seq)
        if part == "Request"
        else (srv.response_to_wire(msg, client_guid, seq))
    )
    wire_type = srv.RequestWire if part == "Request" else srv.ResponseWire
    assert type(wire) is wire_type
    assert (
        wire_type.__idl_typename__
        == type(msg).__idl_typename__
        == (iomt.msg.message_info(name).dds_name)
    )
    body = bytes(STORE.serialize_cdr(to_rosbags(name, value), name, little_endian=True))
    sample = iomt.msg.encode(wire)
    # 16 is a multiple of 8, so the body keeps its alignment after the header.
    assert sample == HEADER_LE + struct.pack("<Qq", client_guid, seq) + body[4:]
    assert wire.serialize() == sample

    back, guid_back, seq_back = srv.from_wire(decode(wire_type, sample))
    assert (guid_back, seq_back) == (client_guid, seq)
    assert type(back) is type(msg)
    assert canonical(name, back) == canonical(name, value)
    # The body after the header is exactly the rosbags body: rosbags reads it back.
    assert canonical(name, STORE.deserialize_cdr(HEADER_LE + sample[20:], name)) == (
        canonical(name, value)
    )


@pytest.mark.parametrize("service", SERVICES)
def test_to_wire_dispatches_on_message_type(service: str) -> None:
    srv = iomt.msg.get_service_type(service)
    request, response = srv.RequestWire, srv.ResponseWire
    req_plain = iomt.msg.message_info(f"{service}_Request").type()
    resp_plain = iomt.msg.message_info(f"{service}_Response").type()
    to_wire: Any = srv.to_wire  # not part of the runtime's ServiceType protocol
    from_wire: Any = srv.from_wire
    assert isinstance(to_wire(req_plain, 7, 8), request)
    assert isinstance(to_wire(resp_plain, 7, 8), response)
    assert from_wire(to_wire(resp_plain, 7, 8)) == (resp_plain, 7, 8)
    assert from_wire(to_wire(req_plain, 2**64 - 1, -1)) == (req_plain, 2**64 - 1, -1)


def test_wire_helpers_share_field_values_without_copying() -> None:
    envelope = iomt.msg.SecureEnvelope(ciphertext=b"\x01" * 1024)
    reply = iomt.msg.DataShare.Response(
        status=iomt.msg.DataShare.Response.STATUS_SHARED, envelope=envelope
    )
    wire = iomt.msg.DataShare.to_wire(reply, client_guid=1, seq=1)
    assert wire.envelope is envelope
    back, _, _ = iomt.msg.DataShare.from_wire(wire)
    assert back.envelope is envelope
    assert back == reply


@pytest.mark.parametrize("little", [True, False])
@examples
@given(data=st.data(), client_guid=GUIDS, seq=SEQS)
def test_split_and_join_service_samples(
    little: bool, data: st.DataObject, client_guid: int, seq: int
) -> None:
    name = "iomt_interfaces/srv/DataShare_Response"
    value = data.draw(message_strategy(name))
    body = bytes(STORE.serialize_cdr(to_rosbags(name, value), name, little_endian=little))
    sample = iomt.msg.join_service_sample(body, client_guid, seq)
    assert iomt.msg.split_service_sample(sample) == (client_guid, seq, body)
    wire, guid_back, seq_back = iomt.msg.DataShare.from_wire(
        decode(iomt.msg.DataShare.ResponseWire, sample)
    )
    assert (guid_back, seq_back) == (client_guid, seq)
    assert canonical(name, wire) == canonical(name, value)
    if little:
        assert sample == iomt.msg.encode(iomt.msg.DataShare.to_wire(wire, client_guid, seq))


@pytest.mark.parametrize("raw", [b"", HEADER_LE + bytes(15), b"\x00\x07\x00\x00" + bytes(16)])
def test_split_rejects_what_is_not_a_service_sample(raw: bytes) -> None:
    with pytest.raises(RemoteProtocolError):
        iomt.msg.split_service_sample(raw)


def test_join_rejects_bad_bodies_and_header_values() -> None:
    with pytest.raises(LocalProtocolError):
        iomt.msg.join_service_sample(b"\x01", 1, 1)
    with pytest.raises(LocalProtocolError):
        iomt.msg.join_service_sample(HEADER_LE, 2**64, 1)
