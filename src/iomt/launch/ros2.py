"""Build a ROS 2 LaunchDescription from a built-in topology (used by launch/*.launch.py).

Only importable on a ROS 2 machine (it needs ``launch`` and ``launch_ros``). Each process
of the plan becomes a ``launch_ros.actions.Node`` running the ``iomt-group`` executable,
so ``ros2 launch iomt scale_400.launch.py`` starts the same processes, with the same
nodes, as ``iomt launch scale_400`` -- on real rclpy by default (``runtime:=rclpy``, the
machine's RMW; ``runtime:=embedded`` for iomt's own Cyclone runtime). The bag recorder
always runs on the embedded runtime: it reads raw DDS. Experiment topologies (``scale_N``,
``case_study``) need their keystore before any node starts: it is provisioned here, in a fresh run
directory (``IOMT_RUN_DIR`` or ``~/.ros/iomt/<topology>-<time>``).
"""

from __future__ import annotations

import importlib
import json
import os
import time
from pathlib import Path
from typing import Any

from iomt.launch.provision import provision
from iomt.topology import load


def generate(topology: str, **options: Any) -> Any:
    # Imported by name: the repository's own launch/ directory would otherwise shadow the
    # ROS 2 `launch` package for type checkers run from the repository root.
    launch = importlib.import_module("launch")
    actions = importlib.import_module("launch.actions")
    substitutions = importlib.import_module("launch.substitutions")
    ros_actions = importlib.import_module("launch_ros.actions")

    plan = load(topology, **options)
    if plan.identities:
        run_dir = Path(
            os.environ.get("IOMT_RUN_DIR")
            or Path.home() / ".ros" / "iomt" / (f"{topology}-{time.strftime('%Y%m%d-%H%M%S')}")
        )
        options = {**options, "run_dir": str(run_dir)}
        plan = load(topology, **options)
        provision(plan)
    opts = [
        arg
        for key, value in sorted(options.items())
        for arg in ("--option", f"{key}={option_text(value)}")
    ]
    entities: list[Any] = [
        actions.DeclareLaunchArgument("dds_config", default_value="loopback"),
        actions.DeclareLaunchArgument("runtime", default_value="rclpy"),
    ]
    for proc in sorted(plan.processes, key=lambda p: p.stage):
        arguments = [
            "--topology",
            topology,
            "--process",
            proc.name,
            *opts,
            "--dds-config",
            substitutions.LaunchConfiguration("dds_config"),
            "--runtime",
            proc.runtime or substitutions.LaunchConfiguration("runtime"),
        ]
        entities.append(
            ros_actions.Node(
                package="iomt",
                executable="iomt-group",
                name=proc.name,
                output="screen",
                arguments=arguments,
            )
        )
    return launch.LaunchDescription(entities)


def option_text(value: Any) -> str:
    """An option as ``iomt-group --option key=value`` text that parses back to it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple | dict):
        return json.dumps(value)
    return str(value)
