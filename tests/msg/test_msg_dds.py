"""The generated types on a real (in-process) Cyclone DDS domain.

Checks what only DDS can show: every type (plain and wire) creates topics, the plain and wire
classes of one service share a DDS type name in one process without conflict, and samples
travel through cyclonedds' writer and reader — whose ``take()`` calls our guarded
``deserialize`` — intact, including odd-sized ``bytes`` fields the C layer pads.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import pytest
from cyclonedds.core import Policy, Qos
from cyclonedds.domain import DomainParticipant
from cyclonedds.pub import DataWriter
from cyclonedds.sub import DataReader
from cyclonedds.topic import Topic
from cyclonedds.util import duration

import iomt.msg
from iomt.msg import DataShare, MessageInfo, SecureEnvelope

pytestmark = [pytest.mark.dds, pytest.mark.timeout(60)]

RELIABLE = Qos(
    Policy.Reliability.Reliable(duration(seconds=1)),
    Policy.Durability.Volatile,
    Policy.History.KeepLast(10),
)


@pytest.fixture(scope="module")
def participant() -> Iterator[DomainParticipant]:
    # A domain of its own per process, so parallel test runs do not meet.
    yield DomainParticipant(100 + os.getpid() % 100)


def take_one(reader: DataReader[Any], timeout: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        samples = reader.take(1)
        if samples:
            return samples[0]
        time.sleep(0.005)
    raise AssertionError("no sample within the timeout")


def test_every_type_creates_topics_plain_and_wire_side_by_side(
    participant: DomainParticipant,
) -> None:
    infos = [i for i in iomt.msg.all_interfaces() if isinstance(i, MessageInfo)]
    classes: list[Any] = [i.type for i in infos]
    for srv in (i for i in iomt.msg.all_interfaces() if not isinstance(i, MessageInfo)):
        classes += [
            srv.request.type,
            srv.response.type,
            srv.type.RequestWire,
            srv.type.ResponseWire,
        ]
    for n, cls in enumerate(classes):
        topic = Topic(participant, f"rt/iomt_msg_test/types_{n}", cls)
        assert topic.typename == cls.__idl_typename__


def test_service_samples_travel_through_cyclonedds(participant: DomainParticipant) -> None:
    request_topic = Topic(participant, "rq/iomt_msg_test/data_shareRequest", DataShare.RequestWire)
    reply_topic = Topic(participant, "rr/iomt_msg_test/data_shareReply", DataShare.ResponseWire)
    # The plain class with the same DDS type name, on a topic of its own, in the same process.
    plain_topic = Topic(participant, "rt/iomt_msg_test/plain_request", DataShare.Request)
    writers = [
        DataWriter(participant, t, RELIABLE) for t in (request_topic, reply_topic, plain_topic)
    ]
    readers = [
        DataReader(participant, t, RELIABLE) for t in (request_topic, reply_topic, plain_topic)
    ]
    deadline = time.monotonic() + 10  # only against a hang
    while not all(w.get_matched_subscriptions() for w in writers):
        assert time.monotonic() < deadline, "writers never matched their readers"
        time.sleep(0.005)

    request = DataShare.Request(
        request_id="r-1", requester_uri="iomt://provider/7", security_technique="ecc",
        token=b"\x01" * 197, nonce=os.urandom(13), proof=b"", requester_key=b"\x04" * 65,
    )  # fmt: skip
    reply = DataShare.Response(
        status=DataShare.Response.STATUS_SHARED,
        envelope=SecureEnvelope(request_id="r-1", ciphertext=os.urandom(1001), seq=2**64 - 1),
    )
    guid = 0xFEDC_BA98_7654_3210
    writers[0].write(DataShare.to_wire(request, guid, 1))
    writers[1].write(DataShare.to_wire(reply, guid, 1))
    writers[2].write(request)

    got_request, g1, s1 = DataShare.from_wire(take_one(readers[0]))
    got_reply, g2, s2 = DataShare.from_wire(take_one(readers[1]))
    got_plain = take_one(readers[2])
    assert (g1, s1, g2, s2) == (guid, 1, guid, 1)
    assert got_request == request
    assert got_reply == reply
    assert isinstance(got_reply.envelope.ciphertext, bytes)
    assert got_plain == request
    # Nothing crossed between the wire and the plain topic.
    assert readers[0].take(10) == [] and readers[2].take(10) == []
