"""ros2 launch iomt demo.launch.py — the `demo` topology of `iomt launch demo`.

Each process of the plan runs the `iomt-group` executable, which regenerates its share
of the (pure, seeded) plan and hosts those nodes on real rclpy with the machine's RMW
(`runtime:=embedded` for iomt's own runtime on Cyclone DDS).
"""

from iomt.launch.ros2 import generate


def generate_launch_description():
    return generate("demo")
