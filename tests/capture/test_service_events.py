"""Service events assembled around iomt's own encoding are what rosbags writes.

The recorder builds a ``<pkg>/srv/<Name>_Event`` sample for every rq/rr sample it takes.
For responses, and for requests whose type has no 8-byte member, the body's CDR is the same
wherever it lands in the event, and the event is assembled around iomt's re-encoding of the
decoded body; these tests hold that to rosbags' own serialization of the same event, for
every iomt service and arbitrary values."""

from __future__ import annotations

from typing import Any

import pytest
from cyclonedds.idl._support import Endianness
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from iomt.capture.interfaces import REQUEST_RECEIVED, RESPONSE_SENT, CaptureTypes
from iomt.msg import encode, join_service_sample
from iomt.msg._support import interpretive_serialize
from msg.msg_values import message_strategy, to_cdds

TYPES = CaptureTypes()
SERVICES = sorted(TYPES._services)


@pytest.mark.parametrize("service", SERVICES)
@pytest.mark.parametrize("is_request", [True, False])
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), guid=st.integers(0, 2**64 - 1), seq=st.integers(-(2**63), 2**63 - 1))
def test_the_event_is_what_rosbags_serializes(
    service: str, is_request: bool, data: Any, guid: int, seq: int
) -> None:
    info = TYPES._services[service]
    part = info.request if is_request else info.response
    value = data.draw(message_strategy(part.name))
    msg = to_cdds(part.name, value)
    stamp = data.draw(st.integers(0, 2**31 * 10**9 - 1))
    kind = REQUEST_RECEIVED if is_request else RESPONSE_SENT
    for body in (encode(msg), interpretive_serialize(msg, None, Endianness.Big, False)):
        # as Cyclone sends it: padded to a multiple of 4
        sample = join_service_sample(body, guid, seq)
        sample = sample.ljust((len(sample) + 3) & ~3, b"\0")
        ours = TYPES.encode_service_event(
            service, event_type=kind, stamp_ns=stamp, sample=sample, is_request=is_request
        )
        theirs = TYPES.event_by_rosbags(
            service,
            event_type=kind,
            stamp_ns=stamp,
            client_guid=guid,
            seq=seq,
            body=body,
            is_request=is_request,
        )
        assert ours == theirs


def test_alignment_classes() -> None:
    # a request body moves from offset 16 to 44: only types without 8-byte members keep
    # their encoding there (iomt's requests today); a response moves from 16 to 48
    requests = {s: TYPES._max_alignment(TYPES._services[s].request.name) for s in SERVICES}
    assert requests["iomt_interfaces/srv/DataShare"] == 4
    assert TYPES._max_alignment("iomt_interfaces/srv/DataShare_Response") == 8
    assert TYPES._max_alignment("iomt_interfaces/msg/SecureEnvelope") == 8
    assert TYPES._max_alignment("builtin_interfaces/msg/Time") == 4
