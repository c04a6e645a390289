"""What a device node is told: :class:`DeviceNodeConfig`, the keyword parameters of
:class:`iomt.nodes.device.DeviceNode` (held equal to the topology's typed parameters by
tests/topology/test_params.py)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from iomt.core.modes import Mode
from iomt.crypto.techniques import Capability
from iomt.errors import ConfigurationError

__all__ = ["CAPABILITIES", "DeviceNodeConfig"]

CAPABILITIES = {c.name.lower(): c for c in Capability}


@dataclass(frozen=True)
class DeviceNodeConfig:
    """What a device node is told (the keyword parameters of :class:`DeviceNode`)."""

    keystore: str
    capability: str
    kind: str
    x: float
    y: float
    wallet: str
    patient_id: str = ""
    radio_range: float = 10.0
    announce_period_s: float = 20.0
    sample_period_s: float = 1.0
    policy: str = ""
    mode: Mode = Mode.DISTRIBUTED
    seed: int = 0
    central: str = "central"
    storage_dir: str | None = None
    results: str | None = None
    convert_timeout_s: float = 1.0
    # Long: a server that is behind still stores what it answers late, and a reading
    # retried too early is only a duplicate in its queue (measured at 400 devices).
    upload_timeout_s: float = 10.0
    providers: tuple[str, ...] | None = None  # normalized to a tuple
    biomt: Mapping[str, Any] | None = None  # mode biomt only; normalized to a dict

    def __post_init__(self) -> None:
        object.__setattr__(self, "mode", Mode.parse(self.mode))
        object.__setattr__(self, "providers", tuple(self.providers or ()))
        object.__setattr__(self, "biomt", dict(self.biomt or {}))
        if self.capability not in CAPABILITIES:
            raise ConfigurationError(f"capability must be one of {list(CAPABILITIES)}")

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> DeviceNodeConfig:
        """From a node spec's keyword parameters."""
        unknown = sorted(set(params) - {f.name for f in fields(cls)})
        if unknown:
            raise ConfigurationError(f"unknown device parameters: {', '.join(unknown)}")
        try:
            return cls(**params)
        except TypeError as exc:  # a required one missing
            raise ConfigurationError(f"device parameters: {exc}") from exc
