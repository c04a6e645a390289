"""Topologies of Bilal & Hassan's experiments: N devices, 20 % unable to encrypt.

A pure, seeded generator: the same (N, seed, mode) always gives the same ward. Patients
lie in beds at random positions; each has a heart-rate sensor and a blood-pressure cuff
next to them and a wallet; every patient consents to every provider. Capability classes
are dealt out 20 % none (cannot encrypt), 20 % symmetric-only, 40 % ECC, 20 % ABE.

The ward grows more slowly than the device count (side 12 m x N^(1/3)), so devices get
more neighbours within radio range as N grows — the effect behind the paper's Fig. 6
("more chances to find a nearby secure device"). Registration uses the paper's 20 s
period after two quick start-up announcements.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from iomt.errors import ConfigurationError
from iomt.topology.spec import LaunchPlan, NodeSpec, ProcessSpec, split_into_groups

FACILITY = "ward1"
NAMESPACE = f"/{FACILITY}"
POLICY = "role:cardiologist AND facility:F1"
PROVIDER_ATTRIBUTES = ("role:cardiologist", "facility:F1")
CAPABILITY_SHARES = (("none", 0.2), ("symmetric", 0.2), ("ecc", 0.4), ("abe", 0.2))
TECHNIQUES = ("ecc",) * 7 + ("cpabe",) * 2 + ("ecc-attr",)
MODES = ("distributed", "centralized", "base")
RADIO_RANGE_M = 10.0


@dataclass(frozen=True)
class Identity:
    name: str
    attributes: tuple[str, ...] = ()


def deal_capabilities(n: int, rng: random.Random) -> list[str]:
    counts = [round(n * share) for _name, share in CAPABILITY_SHARES]
    counts[2] += n - sum(counts)  # rounding goes to ECC
    deck = [name for (name, _), k in zip(CAPABILITY_SHARES, counts, strict=True) for _ in range(k)]
    rng.shuffle(deck)
    return deck


def sharing_plan(
    devices: int,
    *,
    mode: str = "distributed",
    seed: int = 0,
    run_dir: str = "runs/current",
    requests: int = 2000,
    providers: int | None = None,
    concurrency: int = 4,
    devices_per_process: int = 50,
    announce_period_s: float = 20.0,
    sample_period_s: float = 1.0,
    start_delay_s: float = 3.0,
    record: bool = True,
    **_ignored: Any,
) -> LaunchPlan:
    if devices < 2:
        raise ConfigurationError("a sharing topology needs at least 2 devices")
    if mode not in MODES:
        raise ConfigurationError(f"mode must be one of {MODES}, not {mode!r}")
    rng = random.Random(seed)
    run = Path(run_dir)
    keystore = str(run / "keystore")
    side = 12.0 * devices ** (1 / 3)
    n_patients = math.ceil(devices / 2)
    n_providers = providers or max(2, devices // 25)
    capabilities = deal_capabilities(devices, rng)
    provider_names = [f"dr_{j}" for j in range(n_providers)]
    wallet_names = [f"wallet_{i}" for i in range(n_patients)]
    own = {"none": "none", "symmetric": "sym-aes", "ecc": "ecc", "abe": "cpabe"}

    device_nodes: list[NodeSpec] = []
    wallet_nodes: list[NodeSpec] = []
    k = 0
    for i in range(n_patients):
        bed_x, bed_y = rng.uniform(0, side), rng.uniform(0, side)
        mine = []
        for kind in ("heart_rate", "blood_pressure"):
            if k >= devices:
                break
            name = f"{'hr' if kind == 'heart_rate' else 'bp'}_{i}"
            x = min(max(bed_x + rng.uniform(-1.0, 1.0), 0.0), side)
            y = min(max(bed_y + rng.uniform(-1.0, 1.0), 0.0), side)
            device_nodes.append(
                NodeSpec(
                    "iomt.nodes.device:device_node",
                    name,
                    NAMESPACE,
                    {
                        "keystore": keystore,
                        "capability": capabilities[k],
                        "kind": kind,
                        "x": round(x, 2),
                        "y": round(y, 2),
                        "wallet": wallet_names[i],
                        "patient_id": f"patient-{i}",
                        "radio_range": RADIO_RANGE_M,
                        "announce_period_s": announce_period_s,
                        "sample_period_s": sample_period_s,
                        "policy": POLICY,
                        "mode": mode,
                        "seed": seed * 100_003 + k,
                        "storage_dir": str(run / "storage"),
                        "results": str(run / "results" / "devices.jsonl"),
                    },
                )
            )
            mine.append(
                {
                    "name": name,
                    "technique": own[capabilities[k]],
                    "kind": 0 if kind == "heart_rate" else 1,
                }
            )
            k += 1
        wallet_nodes.append(
            NodeSpec(
                "iomt.nodes.wallet:wallet_node",
                wallet_names[i],
                NAMESPACE,
                {
                    "keystore": keystore,
                    "patient_id": f"patient-{i}",
                    "devices": mine,
                    "providers": provider_names,
                },
            )
        )
    per_provider = requests // n_providers
    provider_nodes = [
        NodeSpec(
            "iomt.nodes.provider:provider_node",
            p,
            NAMESPACE,
            {
                "keystore": keystore,
                "wallets": wallet_names,
                "requests": per_provider + (1 if j < requests % n_providers else 0),
                "concurrency": concurrency,
                "techniques": list(TECHNIQUES),
                "mode": mode,
                "seed": seed * 7919 + j,
                "start_delay_s": start_delay_s,
                "results": str(run / "results" / f"{p}.jsonl"),
                "fhir": str(run / "fhir" / f"{p}.json"),
            },
        )
        for j, p in enumerate(provider_names)
    ]

    processes = split_into_groups(device_nodes, devices_per_process, "devices_")
    processes += split_into_groups(wallet_nodes, 100, "wallets_")
    processes.append(ProcessSpec("providers", tuple(provider_nodes)))
    identities = [Identity(n.name) for n in device_nodes + wallet_nodes] + [
        Identity(p, PROVIDER_ATTRIBUTES) for p in provider_names
    ]
    if mode == "centralized":
        processes.append(
            ProcessSpec(
                "central",
                (
                    NodeSpec(
                        "iomt.nodes.central:central_node",
                        "central",
                        NAMESPACE,
                        {
                            "keystore": keystore,
                            "wallets": wallet_names,
                            "policy": POLICY,
                            "storage_dir": str(run / "storage"),
                            "results": str(run / "results" / "central.jsonl"),
                        },
                    ),
                ),
            )
        )
        identities.append(Identity("central"))
    if record:
        processes.append(
            ProcessSpec(
                "recorder",
                (
                    NodeSpec(
                        "iomt.capture.recorder:recorder_node",
                        "recorder",
                        "/iomt",
                        {"output": str(run / "bag")},
                    ),
                ),
            )
        )
    return LaunchPlan(
        f"scale_{devices}",
        f"{devices} devices ({mode}), {n_patients} patients, "
        f"{n_providers} providers, {requests} requests",
        tuple(processes),
        {
            "devices": devices,
            "mode": mode,
            "seed": seed,
            "requests": requests,
            "providers": provider_names,
            "facility": FACILITY,
            "run_dir": str(run),
            "keystore": keystore,
            "side_m": round(side, 1),
            "radio_range_m": RADIO_RANGE_M,
            "capabilities": {c: capabilities.count(c) for c, _ in CAPABILITY_SHARES},
            "identities": [(i.name, list(i.attributes)) for i in identities],
            "record": record,
        },
    )
