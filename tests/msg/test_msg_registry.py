"""The registry: names, DDS names, definitions, type hashes, and the vendored core types."""

from __future__ import annotations

import dataclasses
from typing import Any

import cyclonedds.idl.annotations as annotate
import pytest
from rosbags.typesys import Stores, get_types_from_msg, get_typestore

import iomt.msg
from iomt.errors import ConfigurationError
from iomt.msg import (
    BiomtTransaction,
    DataShare,
    DeviceInfoRequest,
    MessageInfo,
    ParticipantEntitiesInfo,
    ServiceInfo,
    Vitals,
)

JAZZY = get_typestore(Stores.ROS2_JAZZY)
VENDORED = [
    "builtin_interfaces/msg/Duration",
    "builtin_interfaces/msg/Time",
    "rmw_dds_common/msg/Gid",
    "rmw_dds_common/msg/NodeEntitiesInfo",
    "rmw_dds_common/msg/ParticipantEntitiesInfo",
]
ALL_MESSAGES = [i for i in iomt.msg.all_interfaces() if isinstance(i, MessageInfo)]
ALL_SERVICES = [i for i in iomt.msg.all_interfaces() if isinstance(i, ServiceInfo)]
PARTS = [p for s in ALL_SERVICES for p in (s.request, s.response)]
DELIMITER = "=" * 80


def test_all_interfaces_lists_every_type_once_sorted() -> None:
    names = [info.name for info in iomt.msg.all_interfaces()]
    assert names == sorted(set(names))
    assert set(names) >= {
        "iomt_interfaces/msg/BiomtTransaction",
        "iomt_interfaces/msg/ConversionRequest",
        "iomt_interfaces/msg/DeviceInfo",
        "iomt_interfaces/msg/Neighbour",
        "iomt_interfaces/msg/Registration",
        "iomt_interfaces/msg/SecureEnvelope",
        "iomt_interfaces/msg/Vitals",
        "iomt_interfaces/srv/DataShare",
        "iomt_interfaces/srv/DeviceInfoRequest",
        *VENDORED,
    }


@pytest.mark.parametrize("info", ALL_MESSAGES + PARTS, ids=lambda i: i.name)
def test_dds_names_follow_rmw_cyclonedds(info: MessageInfo) -> None:
    package, namespace, name = info.name.split("/")
    assert info.dds_name == f"{package}::{namespace}::dds_::{name}_"
    assert info.type.__idl_typename__ == info.dds_name
    assert iomt.msg.message_info(info.name) is info
    assert iomt.msg.message_info(info.type) is info
    assert iomt.msg.get_message_type(info.name) is info.type


@pytest.mark.parametrize("info", ALL_MESSAGES + PARTS, ids=lambda i: i.name)
def test_types_are_final_unkeyed_xcdr1(info: MessageInfo) -> None:
    meta = info.type.__idl__
    assert info.type.__idl_annotations__["extensibility"] == "final"
    assert meta.keyless
    assert meta.default_version == 1  # XCDR1, what rmw_cyclonedds_cpp speaks
    assert info.type().serialize()[:2] == b"\x00\x01"


@pytest.mark.parametrize("srv", ALL_SERVICES, ids=lambda i: i.name)
def test_service_descriptors(srv: ServiceInfo) -> None:
    desc = srv.type
    assert iomt.msg.get_service_type(srv.name) is desc
    assert iomt.msg.service_info(desc) is srv
    assert desc.ros_name == srv.name
    assert desc.Request is srv.request.type
    assert desc.Response is srv.response.type
    for wire, part in ((desc.RequestWire, srv.request), (desc.ResponseWire, srv.response)):
        assert wire.__idl_typename__ == part.dds_name
        fields = [f.name for f in dataclasses.fields(wire)]
        assert fields == ["client_guid", "seq", *(f.name for f in dataclasses.fields(part.type))]
    assert srv.text == srv.request.text + "---\n" + srv.response.text


def test_short_names_and_unknown_names() -> None:
    assert iomt.msg.get_message_type("iomt_interfaces/Vitals") is Vitals
    assert iomt.msg.get_service_type("iomt_interfaces/DataShare") is DataShare
    assert iomt.msg.message_info("iomt_interfaces/srv/DataShare_Request").type is DataShare.Request
    for bad in (
        "iomt_interfaces/msg/Nope",
        "Vitals",
        "iomt_interfaces/srv/DataShare",
        "",
        "a/b/c/d",
    ):
        with pytest.raises(ConfigurationError):
            iomt.msg.message_info(bad)
    with pytest.raises(ConfigurationError):
        iomt.msg.get_service_type("iomt_interfaces/msg/Vitals")
    with pytest.raises(ConfigurationError):
        iomt.msg.message_info(DataShare.RequestWire)  # wire samples are not ROS messages
    with pytest.raises(ConfigurationError):
        iomt.msg.service_info(Vitals)  # type: ignore[arg-type]


def test_constants_are_class_attributes_not_fields() -> None:
    assert [
        BiomtTransaction.ORIGIN,
        BiomtTransaction.REMOVE,
        BiomtTransaction.STORE,
        BiomtTransaction.ACCESS,
        BiomtTransaction.OBSERVE,
    ] == [0, 1, 2, 3, 4]
    assert (Vitals.KIND_HEART_RATE, Vitals.KIND_BLOOD_PRESSURE) == (0, 1)
    assert DataShare.Response.STATUS_REFUSED == DataShare.ResponseWire.STATUS_REFUSED == 2
    assert DeviceInfoRequest.Response.STATUS_OK == 0
    assert "ORIGIN" not in {f.name for f in dataclasses.fields(BiomtTransaction)}
    assert "type" in {f.name for f in dataclasses.fields(BiomtTransaction)}


def test_every_field_has_the_ros_default() -> None:
    v = Vitals(device_uri="x")
    assert (v.device_uri, v.patient_id, v.kind, v.seq, v.heart_rate_bpm) == ("x", "", 0, 0, 0.0)
    assert v.stamp == iomt.msg.Time(sec=0, nanosec=0)
    assert iomt.msg.Gid().data == bytes(16)
    a, b = iomt.msg.Registration(), iomt.msg.Registration()
    a.neighbours.append(iomt.msg.Neighbour(uri="n"))
    assert b.neighbours == []  # defaults are not shared


@pytest.mark.parametrize("name", VENDORED)
def test_vendored_types_are_ros2_jazzy(name: str) -> None:
    info = iomt.msg.message_info(name)
    parsed = get_types_from_msg(info.text, name)[name]
    assert parsed[1] == JAZZY.fielddefs[name][1]
    assert info.type_hash == JAZZY.hash_rihs01(name)


def test_known_jazzy_type_hashes() -> None:
    # As published by ROS 2 Jazzy (e.g. `ros2 topic info -v` on a Time topic).
    assert (
        iomt.msg.message_info("builtin_interfaces/msg/Time").type_hash
        == "RIHS01_b106235e25a4c5ed35098aa0a61a3ee9c9b18d197f398b0e4206cea9acf9c197"
    )
    assert ParticipantEntitiesInfo.__idl_typename__ == (
        "rmw_dds_common::msg::dds_::ParticipantEntitiesInfo_"
    )


@pytest.mark.parametrize("info", ALL_MESSAGES + PARTS, ids=lambda i: i.name)
def test_type_hashes_match_rosbags(info: MessageInfo) -> None:
    assert info.type_hash == STORE.hash_rihs01(info.name)
    assert info.type_hash.startswith("RIHS01_")
    assert len(info.type_hash) == len("RIHS01_") + 64


STORE = iomt.msg.rosbags_typestore()


def test_definition_concatenates_dependencies_like_rosbag2() -> None:
    info = iomt.msg.message_info("iomt_interfaces/srv/DataShare_Response")
    envelope = iomt.msg.message_info("iomt_interfaces/msg/SecureEnvelope")
    time = iomt.msg.message_info("builtin_interfaces/msg/Time")
    assert info.definition == (
        info.text
        + f"\n{DELIMITER}\nMSG: iomt_interfaces/SecureEnvelope\n"
        + envelope.text
        + f"\n{DELIMITER}\nMSG: builtin_interfaces/Time\n"
        + time.text
    )
    registration = iomt.msg.message_info("iomt_interfaces/msg/Registration").definition
    headers = [line for line in registration.splitlines() if line.startswith("MSG: ")]
    assert headers == [
        "MSG: builtin_interfaces/Time",
        "MSG: iomt_interfaces/Neighbour",
    ]  # sorted, once
    participant = iomt.msg.message_info(ParticipantEntitiesInfo).definition
    headers = [line for line in participant.splitlines() if line.startswith("MSG: ")]
    assert headers == ["MSG: rmw_dds_common/Gid", "MSG: rmw_dds_common/NodeEntitiesInfo"]


@pytest.mark.parametrize("info", ALL_MESSAGES + PARTS, ids=lambda i: i.name)
def test_definitions_parse_back_to_the_same_types(info: MessageInfo) -> None:
    """What a bag reader (rosbags, Foxglove) does with the MCAP schema we write."""
    package, _, short = info.name.split("/")
    parsed = get_types_from_msg(info.definition, f"{package}/msg/{short}")
    assert parsed.pop(f"{package}/msg/{short}")[1] == STORE.fielddefs[info.name][1]
    for dep, (_, fields) in parsed.items():
        assert fields == STORE.fielddefs[dep][1]
    assert DELIMITER not in info.text


def test_rosbags_typestore_is_fresh_and_complete() -> None:
    store = iomt.msg.rosbags_typestore()
    assert store is not STORE
    for info in ALL_MESSAGES + PARTS:
        assert info.name in store.fielddefs
    assert "sensor_msgs/msg/Image" in store.fielddefs  # Jazzy's own types stay


def test_octet_fields_keep_the_declared_idl_type() -> None:
    """``bytes`` in Python, ``sequence<uint8>`` in the XTypes type object (as a plain class)."""
    from cyclonedds.idl import make_idl_struct, types

    plain: Any = make_idl_struct(  # a hand-written class, the way cyclonedds' docs show
        "Plain",
        "iomt_interfaces::msg::dds_::DeviceInfo_",
        {"uri": str, "security_technique": str, "kind": types.uint8,
         "token": types.sequence[types.uint8],
         "device_certificate": types.sequence[types.uint8]},
    )  # fmt: skip
    Plain = annotate.final(plain)

    ours = iomt.msg.DeviceInfo(uri="u", kind=1, token=b"\x01\x02")
    assert (
        ours.serialize()
        == Plain(
            uri="u", security_technique="", kind=1, token=[1, 2], device_certificate=[]
        ).serialize()
    )
    assert Plain.__idl__.get_type_id() == iomt.msg.DeviceInfo.__idl__.get_type_id()
    assert iomt.msg.DeviceInfo.deserialize(ours.serialize()).token == b"\x01\x02"
