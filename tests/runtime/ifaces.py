"""Interfaces used only by the runtime tests (in the style the code generator emits)."""

from dataclasses import dataclass

import cyclonedds.idl.annotations as annotate
from cyclonedds.idl import IdlStruct
from cyclonedds.idl.types import int64, uint64


@dataclass
@annotate.final
class Chatter(IdlStruct, typename="iomt_test::msg::dds_::Chatter_"):
    seq: int64 = 0
    text: str = ""


@dataclass
@annotate.final
class AddTwoInts_Request(IdlStruct, typename="iomt_test::srv::dds_::AddTwoInts_Request_plain_"):
    a: int64 = 0
    b: int64 = 0


@dataclass
@annotate.final
class AddTwoInts_Response(IdlStruct, typename="iomt_test::srv::dds_::AddTwoInts_Response_plain_"):
    total: int64 = 0


@dataclass
@annotate.final
class AddTwoInts_RequestWire(IdlStruct, typename="iomt_test::srv::dds_::AddTwoInts_Request_"):
    client_guid: uint64 = 0
    seq: int64 = 0
    a: int64 = 0
    b: int64 = 0


@dataclass
@annotate.final
class AddTwoInts_ResponseWire(IdlStruct, typename="iomt_test::srv::dds_::AddTwoInts_Response_"):
    client_guid: uint64 = 0
    seq: int64 = 0
    total: int64 = 0


class AddTwoInts:
    """Service descriptor shaped like the ones iomt.msg.codegen generates."""

    ros_name = "iomt_test/srv/AddTwoInts"
    Request = AddTwoInts_Request
    Response = AddTwoInts_Response
    RequestWire = AddTwoInts_RequestWire
    ResponseWire = AddTwoInts_ResponseWire

    @staticmethod
    def request_to_wire(
        msg: AddTwoInts_Request, client_guid: int, seq: int
    ) -> AddTwoInts_RequestWire:
        return AddTwoInts_RequestWire(client_guid=client_guid, seq=seq, a=msg.a, b=msg.b)

    @staticmethod
    def request_from_wire(wire: AddTwoInts_RequestWire) -> tuple[AddTwoInts_Request, int, int]:
        return AddTwoInts_Request(a=wire.a, b=wire.b), wire.client_guid, wire.seq

    @staticmethod
    def response_to_wire(
        msg: AddTwoInts_Response, client_guid: int, seq: int
    ) -> AddTwoInts_ResponseWire:
        return AddTwoInts_ResponseWire(client_guid=client_guid, seq=seq, total=msg.total)

    @staticmethod
    def response_from_wire(wire: AddTwoInts_ResponseWire) -> tuple[AddTwoInts_Response, int, int]:
        return AddTwoInts_Response(total=wire.total), wire.client_guid, wire.seq


@dataclass
@annotate.final
class Echo_Request(IdlStruct, typename="iomt_test::srv::dds_::Echo_Request_plain_"):
    text: str = ""


@dataclass
@annotate.final
class Echo_Response(IdlStruct, typename="iomt_test::srv::dds_::Echo_Response_plain_"):
    text: str = ""


@dataclass
@annotate.final
class Echo_RequestWire(IdlStruct, typename="iomt_test::srv::dds_::Echo_Request_"):
    client_guid: uint64 = 0
    seq: int64 = 0
    text: str = ""


@dataclass
@annotate.final
class Echo_ResponseWire(IdlStruct, typename="iomt_test::srv::dds_::Echo_Response_"):
    client_guid: uint64 = 0
    seq: int64 = 0
    text: str = ""


class Echo:
    ros_name = "iomt_test/srv/Echo"
    Request = Echo_Request
    Response = Echo_Response
    RequestWire = Echo_RequestWire
    ResponseWire = Echo_ResponseWire

    @staticmethod
    def request_to_wire(msg: Echo_Request, client_guid: int, seq: int) -> Echo_RequestWire:
        return Echo_RequestWire(client_guid=client_guid, seq=seq, text=msg.text)

    @staticmethod
    def request_from_wire(wire: Echo_RequestWire) -> tuple[Echo_Request, int, int]:
        return Echo_Request(text=wire.text), wire.client_guid, wire.seq

    @staticmethod
    def response_to_wire(msg: Echo_Response, client_guid: int, seq: int) -> Echo_ResponseWire:
        return Echo_ResponseWire(client_guid=client_guid, seq=seq, text=msg.text)

    @staticmethod
    def response_from_wire(wire: Echo_ResponseWire) -> tuple[Echo_Response, int, int]:
        return Echo_Response(text=wire.text), wire.client_guid, wire.seq
