"""Locate the ROS 2 resources shipped with iomt (config/, launch/).

Installed from a wheel they live in the package as ``iomt/share/<dir>``; from a source
checkout or an editable install they are the repository's top-level directories; after
``colcon build`` they are in ``<prefix>/share/iomt/<dir>``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from iomt.errors import ConfigurationError

_PACKAGE_DIR = Path(__file__).resolve().parent


def share_dir(kind: str) -> Path:
    """Directory of resource ``kind`` ("config" or "launch")."""
    candidates = [
        _PACKAGE_DIR / "share" / kind,
        _PACKAGE_DIR.parent.parent / kind,  # src/iomt -> repository root
        Path(sys.prefix) / "share" / "iomt" / kind,
    ]
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    raise ConfigurationError(
        f"iomt resource directory {kind!r} not found (looked in "
        + ", ".join(str(c) for c in candidates)
        + ")"
    )


def share_file(kind: str, name: str) -> Path:
    path = share_dir(kind) / name
    if not path.is_file():
        raise ConfigurationError(f"iomt resource {kind}/{name} not found at {path}")
    return path
