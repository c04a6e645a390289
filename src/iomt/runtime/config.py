"""Domain id and Cyclone DDS configuration, resolved the way ROS 2 users expect.

Domain id: explicit argument, else ``ROS_DOMAIN_ID``, else 0 (as rmw does).
Configuration: explicit argument ("loopback", "lan", a path or an XML string), else
``CYCLONEDDS_URI`` if the user set it (Cyclone reads it itself, as under ROS 2), else the
loopback-only config shipped in ``config/``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from iomt.errors import ConfigurationError
from iomt.resources import share_file

# Highest domain id whose DDSI ports (7400 + 250 * id + ...) stay below 65536.
MAX_DOMAIN_ID = 232

NAMED_CONFIGS = {
    "loopback": "cyclonedds-loopback.xml",
    "lan": "cyclonedds-lan.xml",
}


@dataclass(frozen=True, slots=True)
class DdsSettings:
    domain_id: int
    # XML text to create the domain with, or None to let Cyclone read CYCLONEDDS_URI.
    config_xml: str | None
    config_source: str


def resolve_domain_id(domain_id: int | None = None) -> int:
    if domain_id is None:
        raw = os.environ.get("ROS_DOMAIN_ID", "").strip()
        if not raw:
            return 0
        try:
            domain_id = int(raw)
        except ValueError as exc:
            raise ConfigurationError(f"ROS_DOMAIN_ID={raw!r} is not an integer") from exc
    if not 0 <= domain_id <= MAX_DOMAIN_ID:
        raise ConfigurationError(f"domain id {domain_id} out of range 0..{MAX_DOMAIN_ID}")
    return domain_id


def resolve_config(config: str | None = None) -> tuple[str | None, str]:
    """Return (xml or None, human-readable source)."""
    if config is None:
        if os.environ.get("CYCLONEDDS_URI"):
            return None, "CYCLONEDDS_URI"
        config = "loopback"
    if config in NAMED_CONFIGS:
        path = share_file("config", NAMED_CONFIGS[config])
        return path.read_text(encoding="utf-8"), str(path)
    if config.lstrip().startswith("<"):
        return config, "inline XML"
    path = Path(config.removeprefix("file://"))
    if not path.is_file():
        raise ConfigurationError(f"DDS config {config!r}: no such file (or use loopback|lan)")
    return path.read_text(encoding="utf-8"), str(path)


def resolve(domain_id: int | None = None, config: str | None = None) -> DdsSettings:
    xml, source = resolve_config(config)
    return DdsSettings(resolve_domain_id(domain_id), xml, source)
