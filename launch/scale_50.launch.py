"""ros2 launch iomt scale_50.launch.py — Bilal & Hassan's experiment with 50 devices.

The same plan as `iomt launch scale_50`: devices (20 % unable to encrypt), wallets,
providers and a bag recorder; each process runs the `iomt-group` executable. The run's
keystore is provisioned first, in IOMT_RUN_DIR (default ~/.ros/iomt/scale_50-<time>).
Nodes run on real rclpy with the machine's RMW (`runtime:=embedded`: iomt's own runtime).
"""

from iomt.launch.ros2 import generate


def generate_launch_description():
    return generate("scale_50")
