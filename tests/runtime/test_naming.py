from __future__ import annotations

import pytest

from iomt.errors import ConfigurationError
from iomt.runtime import naming
from iomt.runtime._wire import csid_to_string, peek_header, user_data_id


@pytest.mark.parametrize(
    ("name", "ns", "expected"),
    [
        ("chatter", "/", "/chatter"),
        ("chatter", "/ward1", "/ward1/chatter"),
        ("/abs/topic", "/ward1", "/abs/topic"),
        ("~/data", "/ward1", "/ward1/dev/data"),
        ("~", "/", "/dev"),
    ],
)
def test_expand_topic_name_like_rcl(name: str, ns: str, expected: str) -> None:
    assert naming.expand_topic_name(name, node_name="dev", namespace=ns) == expected


@pytest.mark.parametrize("bad", ["", "a//b", "1abc", "a/", "a b", "/x/-y"])
def test_invalid_topic_names_raise(bad: str) -> None:
    with pytest.raises(ConfigurationError):
        naming.expand_topic_name(bad, node_name="dev", namespace="/")


def test_dds_mangling_matches_rmw() -> None:
    assert naming.topic_to_dds("/ward1/vitals") == "rt/ward1/vitals"
    assert naming.service_to_dds("/dev/share") == ("rq/dev/shareRequest", "rr/dev/shareReply")
    assert (
        naming.ros_type_to_dds("iomt_interfaces/msg/Vitals")
        == "iomt_interfaces::msg::dds_::Vitals_"
    )
    assert (
        naming.ros_type_to_dds("iomt_interfaces/srv/DataShare", "_Request")
        == "iomt_interfaces::srv::dds_::DataShare_Request_"
    )
    assert (
        naming.dds_type_to_ros("iomt_interfaces::srv::dds_::DataShare_Response_")
        == "iomt_interfaces/srv/DataShare"
    )
    assert naming.demangle_topic("rq/dev/shareRequest") == (
        naming.EndpointKind.SERVICE_REQUEST,
        "/dev/share",
    )
    assert naming.demangle_topic("ros_discovery_info") is None


def test_client_service_id_format_matches_rmw_csid_to_string() -> None:
    # rmw: std::hex, setw(2) on the first byte only (space fill), '.' between bytes.
    csid = bytes([0x01, 0x10, 0xAB, 0x00]) + bytes(range(12))
    assert csid_to_string(csid) == " 1.10.ab.0.0.1.2.3.4.5.6.7.8.9.a.b"
    assert user_data_id(b"clientid= 1.2;typehash=RIHS01_00;", "clientid") == " 1.2"
    assert user_data_id(b"enclave=/;", "clientid") is None


def test_peek_header_reads_little_and_big_endian() -> None:
    le = b"\x00\x01\x00\x00" + (7).to_bytes(8, "little") + (-2).to_bytes(8, "little", signed=True)
    be = b"\x00\x00\x00\x00" + (7).to_bytes(8, "big") + (3).to_bytes(8, "big", signed=True)
    assert peek_header(le) == (7, -2)
    assert peek_header(be) == (7, 3)
    with pytest.raises(ValueError):
        peek_header(b"\x00\x01\x00\x00")
