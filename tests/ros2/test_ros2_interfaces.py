"""iomt_interfaces built by colcon from PyPI's ROS 2 wheels: rosidl's own type hashes.

rosidl writes every type's RIHS01 hash (and those of the types it uses) into
``share/iomt_interfaces/<msg|srv>/<Name>.json``. iomt's generated wire types, and the
service event types its recorder writes into bags, must carry exactly those hashes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import iomt.msg
from iomt.capture.interfaces import CaptureTypes

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def _rosidl_hashes(ros2: Any) -> dict[str, str]:
    share = Path(ros2.env["AMENT_PREFIX_PATH"].split(":")[0]) / "share" / "iomt_interfaces"
    hashes: dict[str, str] = {}
    for path in sorted(share.glob("*/*.json")):
        for entry in json.loads(path.read_text())["type_hashes"]:
            hashes[entry["type_name"]] = entry["hash_string"]
    return hashes


def test_iomt_type_hashes_are_rosidls(ros2: Any) -> None:
    rosidl = _rosidl_hashes(ros2)
    ours = {
        info.name: info.type_hash
        for record in iomt.msg.all_interfaces()
        for info in (
            [record.request, record.response]
            if isinstance(record, iomt.msg.ServiceInfo)
            else [record]
        )
        if info.name.startswith("iomt_interfaces/")
    }
    assert len(ours) == 13 + 2 * 7
    assert {name: rosidl[name] for name in ours} == ours


def test_recorded_service_event_hashes_are_rosidls(ros2: Any) -> None:
    rosidl = _rosidl_hashes(ros2)
    types = CaptureTypes()
    services = [r.name for r in iomt.msg.all_interfaces() if isinstance(r, iomt.msg.ServiceInfo)]
    for service in services:
        event = types.event_type_name(service)
        assert types.channel_type(event).type_hash == rosidl[event], event
    assert (
        types.channel_type("iomt_interfaces/srv/DataShare_Event").type_hash
        == rosidl["iomt_interfaces/srv/DataShare_Event"]
    )
