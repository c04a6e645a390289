"""ros2 launch iomt demo.launch.py — the `demo` topology of `iomt launch demo`.

Each process of the plan runs the `iomt-group` executable, which regenerates its share
of the (pure, seeded) plan and hosts those nodes on Cyclone DDS. Set RMW_IMPLEMENTATION=
rmw_cyclonedds_cpp for ROS 2 nodes that should talk to them.
"""

from iomt.launch.ros2 import generate


def generate_launch_description():
    return generate("demo")
