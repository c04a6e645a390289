"""ros2 launch iomt fleet.launch.py — the `fleet` topology of `iomt launch fleet`.

Each process of the plan runs the `iomt-group` executable, which regenerates its share
of the (pure, seeded) plan and hosts those nodes on real rclpy with the machine's RMW
(`runtime:=embedded` for iomt's own runtime on Cyclone DDS).
"""

from iomt.launch.ros2 import generate


def generate_launch_description():
    return generate("fleet")
