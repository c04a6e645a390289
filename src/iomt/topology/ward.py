"""What the sharing ward and the BIoMT ward built on it share: the facility's names, the
providers' attributes, and the bag recorder that is subscribed before anyone talks."""

from __future__ import annotations

import math
from pathlib import Path

from iomt.topology.params import RecorderParams
from iomt.topology.spec import NodeSpec, ProcessSpec

FACILITY = "ward1"
NAMESPACE = f"/{FACILITY}"
POLICY = "role:cardiologist AND facility:F1"
PROVIDER_ATTRIBUTES = ("role:cardiologist", "facility:F1")
RADIO_RANGE_M = 10.0


def expected_endpoints(
    devices: list[NodeSpec], wallets: list[NodeSpec], providers: list[NodeSpec], *, central: bool
) -> list[list[str]]:
    """Every topic and service the ward's nodes will use, for a recorder to subscribe to
    before they exist (``[ros name, pkg/msg|srv/Type]``)."""
    out: list[list[str]] = []
    cells: set[str] = set()
    for d in devices:
        base = f"{NAMESPACE}/{d.name}"
        out += [
            [f"{base}/data_share", "iomt_interfaces/srv/DataShare"],
            [f"{base}/handshake", "iomt_interfaces/srv/SessionHandshake"],
        ]
        if d.params.get("capability") != "none":
            out.append([f"{base}/convert", "iomt_interfaces/srv/Convert"])
        size = float(d.params.get("radio_range", RADIO_RANGE_M))
        cx, cy = math.floor(float(d.params["x"]) / size), math.floor(float(d.params["y"]) / size)
        cells.add(f"/iomt/registration/c{cx}_{cy}".replace("-", "m"))
    out += [[c, "iomt_interfaces/msg/Registration"] for c in sorted(cells)]
    out += [
        [f"{NAMESPACE}/{w.name}/device_info", "iomt_interfaces/srv/DeviceInfoRequest"]
        for w in wallets
    ]
    out += [
        [f"{NAMESPACE}/{p.name}/inbox", "iomt_interfaces/msg/SecureEnvelope"] for p in providers
    ]
    out += [
        [f"{NAMESPACE}/{p.name}/handshake", "iomt_interfaces/srv/SessionHandshake"]
        for p in providers
    ]
    if central:
        out += [
            [f"{NAMESPACE}/central/{s}", t]
            for s, t in (
                ("upload", "iomt_interfaces/srv/Upload"),
                ("fetch", "iomt_interfaces/srv/DataShare"),
                ("handshake", "iomt_interfaces/srv/SessionHandshake"),
            )
        ]
    return out


def recorder_process(
    run: Path,
    devices: list[NodeSpec],
    wallets: list[NodeSpec],
    providers: list[NodeSpec],
    *,
    central: bool,
    services: bool = True,
) -> ProcessSpec:
    """The bag recorder, started (stage -1) before everyone else and already subscribed."""
    return ProcessSpec(
        "recorder",
        (
            NodeSpec(
                "iomt.capture.recorder:recorder_node",
                "recorder",
                "/iomt",
                RecorderParams(
                    output=str(run / "bag"),
                    services=services,
                    expect=tuple(
                        (n, t)
                        for n, t in expected_endpoints(devices, wallets, providers, central=central)
                    ),
                ),
            ),
        ),
        stage=-1,
        restart=False,
        runtime="embedded",
    )
