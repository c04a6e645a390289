"""What a device node is told: :class:`DeviceNodeConfig`, the keyword parameters of
:class:`iomt.nodes.device.DeviceNode`, is the device kind's typed parameters
(:class:`iomt.nodes.params.DeviceParams`): the one declaration of each setting, its type
and its default, which the topology's plans hold too."""

from __future__ import annotations

from iomt.crypto.techniques import Capability
from iomt.nodes.params import DeviceParams

__all__ = ["CAPABILITIES", "DeviceNodeConfig"]

#: a capability class by the name ``DeviceParams.capability`` gives it
CAPABILITIES = {c.name.lower(): c for c in Capability}

DeviceNodeConfig = DeviceParams
