"""examples/clinical_robot against a running ward: tokens, sealed readings, republished.

The robot is plain rclpy plus iomt's sans-IO library; the ward runs on the rclpy runtime
(Fast DDS) with the robot provisioned on patient 0's care team. A stock ROS 2 node echoes
what the robot republishes; the values must be plausible vitals of patient 0 only.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from domains import fresh_domain
from ros2.wards import nodes_of, ward

pytestmark = [pytest.mark.dds, pytest.mark.slow, pytest.mark.timeout(600)]

ROBOT = Path(__file__).resolve().parents[2] / "examples" / "clinical_robot" / "clinical_robot.py"
TOPICS = {
    "/patient_0/vitals/heart_rate": (20.0, 250.0),
    "/patient_0/vitals/blood_pressure/systolic": (50.0, 260.0),
    "/patient_0/vitals/blood_pressure/diastolic": (30.0, 160.0),
}


def test_the_clinical_robot_reads_its_patients_vitals_end_to_end(
    ros2: Any, procs: Any, tmp_path: Path
) -> None:
    domain = fresh_domain()
    with ward(tmp_path / "ward", domain, runtime="rclpy", peer=ros2, robots=1) as (plan, _svc):
        devices = {
            n.name: n.params["capability"] for n in nodes_of(plan) if n.name in ("hr_0", "bp_0")
        }
        spec = tmp_path / "echo.json"
        spec.write_text(
            json.dumps([{"topic": t, "type": "std_msgs/msg/Float32", "count": 3} for t in TOPICS])
        )
        echo = ros2.start(procs, domain, "echo", "--spec", str(spec), "--timeout", "120")
        procs.wait_for_line(echo, '{"subscribed"', 60)
        robot = procs.start_with(
            ros2.python,
            str(ROBOT),
            "--ros-args",
            "-p",
            f"keystore:={plan.facts['keystore']}",
            "-p",
            "identity:=robot_0",
            "-p",
            "wallet:=wallet_0",
            "-p",
            "period_s:=0.5",
            "--log-level",
            "info",
            env=ros2.with_domain(domain),
        )
        received = json.loads(procs.wait_for_line(echo, '{"received"', 150))["received"]
        time.sleep(0.5)
        robot.terminate()
        _out, err = robot.communicate(timeout=30)
    for topic, (lo, hi) in TOPICS.items():
        values = [m["data"] for m in received[topic]]
        assert len(values) >= 3 and all(lo <= v <= hi for v in values), (topic, values, err[-2000:])
    assert "rejected" not in err and "refused" not in err, err[-2000:]
    # a device that cannot encrypt is read through a converter: its plaintext crossed one
    # hop, and the robot verified the device's own signature on the converted reading
    for name, capability in devices.items():
        uri = f"iomt://ward1/{name}"
        how = "via a converter" if capability == "none" else "from the device"
        assert f"{uri} #" in err and how in err, (name, capability, err[-2000:])
