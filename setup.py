"""setuptools shim: pip builds from pyproject.toml; colcon (ament_python) runs this file.

Besides the Python package it installs the ROS 2 resources of the package `iomt`
(package.xml, launch/, config/) to share/iomt, and registers the package in
the ament index, so `ros2 launch iomt scale_400.launch.py` finds them after `colcon build`.
The same directories are copied into the wheel as `iomt/share/*` so that a plain
`pip install` finds its DDS configs and launch files without ROS 2.
"""

from __future__ import annotations

import shutil
from glob import glob
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

# The interfaces are the ROS 2 package iomt_interfaces (its own directory, built by colcon).
SHARED_DIRS = ("config", "launch")


class BuildPyWithShare(build_py):
    def run(self) -> None:
        super().run()
        root = Path(__file__).parent
        for d in SHARED_DIRS:
            if (root / d).is_dir():
                shutil.copytree(
                    root / d, Path(self.build_lib) / "iomt" / "share" / d, dirs_exist_ok=True
                )


setup(
    cmdclass={"build_py": BuildPyWithShare},
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/iomt"]),
        ("share/iomt", ["package.xml"]),
        *[(f"share/iomt/{d}", sorted(glob(f"{d}/*.*"))) for d in SHARED_DIRS],
    ],
)
