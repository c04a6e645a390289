"""What a device node is built from: its protocol core (:class:`~iomt.core.device.DeviceCore`)
made from its parameters and its keystore identity, and the record it leaves in the run's
results when it stops."""

from __future__ import annotations

from typing import Any

from iomt.core.channels import ChannelTable
from iomt.core.device import DeviceConfig, DeviceCore
from iomt.core.listener import name_of
from iomt.core.registration import NeighbourTable
from iomt.core.vitals import VitalKind
from iomt.crypto.keystore import Identity, Keystore
from iomt.crypto.techniques import Capability
from iomt.crypto.tokens import TokenVerifier
from iomt.nodes.announcing import HeardAnnouncements
from iomt.nodes.device_config import CAPABILITIES, DeviceNodeConfig
from iomt.nodes.names import uri_of

__all__ = ["device_core", "device_record"]


def device_core(
    c: DeviceNodeConfig,
    keystore: Keystore,
    identity: Identity,
    heard: HeardAnnouncements,
    *,
    facility: str,
) -> DeviceCore:
    """The device's core: its neighbour table checks certificates once per process
    (``heard``), and it takes the tokens its patient's wallet signs."""
    validator = keystore.credential_validator()
    capability = CAPABILITIES[c.capability]
    config = DeviceConfig(
        identity.uri,
        capability,
        int(VitalKind.parse(c.kind)),
        c.x,
        c.y,
        c.radio_range,
        c.announce_period_s,
        c.policy,
    )
    return DeviceCore(
        config,
        signer=identity.signer,
        certificate=keystore.certificate_der(identity.name),
        channels=ChannelTable(identity.handshake_identity(), validator),
        table=NeighbourTable(
            identity.uri,
            c.x,
            c.y,
            c.radio_range,
            check_certificate=heard.certificate_check(
                lambda uri, cert: validator(name_of(uri), cert)
            ),
            verified=heard.verified,
        ),
        tokens=TokenVerifier(
            {uri_of(facility, c.wallet): keystore.verifier(c.wallet)},
            revocations=keystore.revocations,
        ),
        abe_params=keystore.public_params if capability >= Capability.ABE else None,
    )


def device_record(
    core: DeviceCore, *, mode: str, refused_announcements: dict[str, int], transfer_us: list[int]
) -> dict[str, Any]:
    """The device's line in the run's results (what the experiments' reports read)."""
    return {
        "record": "device",
        "device": core.uri,
        "mode": mode,
        "capability": core.config.capability.name.lower(),
        "technique": core.config.technique,
        "neighbours": len(core.table),
        "refused_announcements": refused_announcements,
        "counters": core.counters,
        "data_transfer_us": transfer_us,
    }
