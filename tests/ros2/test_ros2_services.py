"""Services both ways with a stock ROS 2 peer, iomt's nodes on the rclpy runtime.

Services cannot cross between iomt's embedded runtime (rmw_cyclonedds' request header in the
payload) and Fast DDS (the request identity in the RTPS message), as between any
rmw_cyclonedds and rmw_fastrtps nodes (ros2/rmw_cyclonedds#184). So a ward that must serve
stock ROS 2 clients runs its nodes on real rclpy (``iomt launch ... --runtime rclpy``): the
same node code, on ROS 2's own middleware. Here every iomt service type of three wards
(distributed, centralized, BIoMT) answers a stock rclpy client, which knows nothing of
iomt's keys and so gets the ward's refusal with its reason; the authorized path, tokens and
sealed readings, is examples/clinical_robot (test_clinical_robot.py).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from domains import fresh_domain
from ros2.wards import nodes_of, ward

pytestmark = [pytest.mark.dds, pytest.mark.slow, pytest.mark.timeout(600)]

HERE = Path(__file__).parent
STRANGER = "iomt://ward1/stranger"
NONCE = list(range(16))


@pytest.fixture(scope="module")
def distributed(ros2: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    domain = fresh_domain()
    with ward(tmp_path_factory.mktemp("distributed"), domain, runtime="rclpy", peer=ros2) as (
        plan,
        _service,
    ):
        yield plan, domain


def _call(peer: Any, domain: int, service: str, srv_type: str, request: dict[str, Any]) -> Any:
    (doc,) = peer.run(
        domain,
        "call",
        "--service",
        service,
        "--type",
        f"iomt_interfaces/srv/{srv_type}",
        "--request",
        json.dumps(request),
        "--timeout",
        "60",
        timeout_s=120,
    )
    return doc["response"]


def test_a_stock_client_gets_answers_from_a_distributed_wards_services(
    ros2: Any, distributed: Any
) -> None:
    plan, domain = distributed
    (recorder,) = [n for n in nodes_of(plan) if n.name == "recorder"]
    converter = next(n for n, t in recorder.params["expect"] if t.endswith("/srv/Convert"))
    wallet = _call(
        ros2,
        domain,
        "/ward1/wallet_0/device_info",
        "DeviceInfoRequest",
        {
            "wallet_uri": "iomt://ward1/wallet_0",
            "provider_uri": STRANGER,
            "scopes": ["vitals:read"],
            "nonce": NONCE,
        },
    )
    assert wallet["status"] == 1 and wallet["reason"] and not wallet["devices"]
    assert wallet["proof"]  # signed: every reply proves who sent it (issue 11)
    share = _call(
        ros2,
        domain,
        "/ward1/hr_0/data_share",
        "DataShare",
        {
            "request_id": "r1",
            "requester_uri": STRANGER,
            "security_technique": "ecc",
            "proof_type": "pop",
            "token": [0xA0],
        },
    )
    assert share["status"] == 2 and share["reason"].startswith("invalid-token")
    assert share["envelope"]["ciphertext"] == [] and share["proof"]
    for peer_node in ("/ward1/hr_0", "/ward1/dr_0"):
        handshake = _call(
            ros2,
            domain,
            f"{peer_node}/handshake",
            "SessionHandshake",
            {"initiator_uri": STRANGER, "message": [1, 2, 3]},
        )
        assert handshake["status"] == 1 and handshake["message"] == [] and handshake["proof"]
    convert = _call(
        ros2,
        domain,
        converter,
        "Convert",
        {
            "request": {
                "request_id": "c1",
                "converter_uri": "iomt://ward1/" + converter.split("/")[2],
            }
        },
    )
    assert convert["status"] == 1 and convert["reason"] and convert["proof"]


def test_a_stock_client_gets_answers_from_the_central_server(ros2: Any, tmp_path: Path) -> None:
    domain = fresh_domain()
    with ward(tmp_path, domain, runtime="rclpy", peer=ros2, mode="centralized", record=False):
        upload = _call(
            ros2,
            domain,
            "/ward1/central/upload",
            "Upload",
            {"reading": {"device_uri": "iomt://ward1/forged", "heart_rate_bpm": 80.0}},
        )
        assert upload["status"] == 1 and "unknown device" in upload["reason"]
        fetch = _call(
            ros2,
            domain,
            "/ward1/central/fetch",
            "DataShare",
            {"request_id": "f1", "requester_uri": STRANGER, "security_technique": "ecc"},
        )
        assert fetch["status"] == 2 and fetch["reason"]


def test_a_stock_client_gets_answers_from_bolster_and_cloud_services(
    ros2: Any, tmp_path: Path
) -> None:
    domain = fresh_domain()
    with ward(tmp_path, domain, runtime="rclpy", peer=ros2, mode="biomt", record=False) as (
        plan,
        _service,
    ):
        bolster = next(n for n in nodes_of(plan) if n.factory.endswith(":bolster_node"))
        store = _call(
            ros2,
            domain,
            f"{bolster.namespace}/{bolster.name}/store",
            "BolsterService",
            {"requester": "stranger", "body": [1, 2, 3]},
        )
        assert store["status"] == 5, store  # STATUS_MALFORMED: not a StoreRequest
        cloud = _call(
            ros2, domain, "/ward1/cloud/get", "CloudService", {"requester": "x", "body": [1]}
        )
        assert cloud["status"] == 3, cloud  # STATUS_MALFORMED


def test_an_iomt_client_calls_a_stock_ros2_service(ros2: Any, procs: Any, ros_domain: int) -> None:
    server = ros2.start(
        procs,
        ros_domain,
        "serve",
        "--service",
        "/robot/echo",
        "--type",
        "iomt_interfaces/srv/DataShare",
        "--timeout",
        "120",
    )
    procs.wait_for_line(server, '{"serving"', 60)
    out = subprocess.run(
        [
            ros2.python,
            str(HERE / "iomt_on_rclpy.py"),
            "call",
            "--service",
            "/robot/echo",
            "--calls",
            "3",
        ],
        env=ros2.with_domain(ros_domain),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    doc = json.loads(out.stdout.strip().splitlines()[-1])
    assert doc["reasons"] == [f"rclpy:from-iomt-{i}" for i in range(3)]
