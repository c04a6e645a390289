"""Topologies of Bilal & Hassan's experiments: N devices, 20 % unable to encrypt.

A pure, seeded generator: the same (N, seed, mode) always gives the same ward. Patients
lie in beds at random positions; each has a heart-rate sensor and a blood-pressure cuff
next to them and a wallet. Each patient is under a care team of ``care_team`` providers
(4 by default: every provider up to 100 devices) and consents to that team only — least
privilege, and what keeps 400-device wards affordable: a provider holds tokens, sessions
and service endpoints for its own patients, not for the whole ward. As in the paper's
experiments, 20 % of the devices cannot encrypt and the others can apply what providers
ask for (Alg. 1.3 asks for "ECC"): capability classes are dealt 20 % none, 60 % ECC,
20 % ABE by default (``capability_mix`` deals symmetric-only devices too), and providers
ask for ``ecc`` (``techniques`` adds CP-ABE or ECC+attributes to the mix).

The ward grows more slowly than the device count (side 12 m x N^(1/3)), so devices get
more neighbours within radio range as N grows — the effect behind the paper's Fig. 6
("more chances to find a nearby secure device"). Registration uses the paper's 20 s
period after two quick start-up announcements.
"""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Literal

from iomt.core.modes import Mode
from iomt.errors import ConfigurationError
from iomt.topology.params import (
    CapabilityClass,
    CentralParams,
    DeviceParams,
    ProviderParams,
    VitalKindName,
    WalletDevice,
    WalletParams,
)
from iomt.topology.spec import Identity, LaunchPlan, NodeSpec, ProcessSpec, split_into_groups
from iomt.topology.ward import (
    FACILITY,
    NAMESPACE,
    POLICY,
    PROVIDER_ATTRIBUTES,
    RADIO_RANGE_M,
    expected_endpoints,
    recorder_process,
)

CAPABILITY_CLASSES: tuple[CapabilityClass, ...] = ("none", "symmetric", "ecc", "abe")
PAPER_MIX = (0.2, 0.0, 0.6, 0.2)
TECHNIQUES = ("ecc",)
#: the modes of Bilal & Hassan's experiments (``biomt``: iomt.topology.biomt)
SharingMode = Literal["distributed", "centralized", "base"]
MODES: tuple[SharingMode, ...] = ("distributed", "centralized", "base")
CARE_TEAM = 4
DEVICES_PER_PROCESS = 200
WALLETS_PER_PROCESS = 200
REQUESTS = 2000
CONCURRENCY = 4
SAMPLE_PERIOD_S = 1.0
START_DELAY_S = 3.0
ANNOUNCE_PERIOD_S = 20.0  # the paper's registration period
#: the case study's conversion deadline (its first order to a converter waits for discovery)
CASE_STUDY_CONVERT_TIMEOUT_S = 5.0


def deal_capabilities(
    n: int, rng: random.Random, mix: tuple[float, ...] = PAPER_MIX
) -> list[CapabilityClass]:
    """Deal capability classes to ``n`` devices in the proportions of ``mix``."""
    if len(mix) != len(CAPABILITY_CLASSES) or any(m < 0 for m in mix) or not sum(mix):
        raise ConfigurationError(f"capability mix needs {len(CAPABILITY_CLASSES)} shares")
    total = sum(mix)
    counts = [round(n * m / total) for m in mix]
    counts[2] += n - sum(counts)  # rounding goes to ECC
    deck = [name for name, k in zip(CAPABILITY_CLASSES, counts, strict=True) for _ in range(k)]
    rng.shuffle(deck)
    return deck


def sharing_plan(  # noqa: PLR0913  (its keyword-only arguments are the topology's options)
    devices: int,
    *,
    mode: SharingMode = "distributed",
    seed: int = 0,
    run_dir: str = "runs/current",
    requests: int = REQUESTS,
    providers: int | None = None,
    concurrency: int = CONCURRENCY,
    care_team: int = CARE_TEAM,
    devices_per_process: int | None = None,
    wallets_per_process: int = WALLETS_PER_PROCESS,
    announce_period_s: float = ANNOUNCE_PERIOD_S,
    sample_period_s: float = SAMPLE_PERIOD_S,
    start_delay_s: float = START_DELAY_S,
    record: bool = True,
    record_services: bool = True,
    capability_mix: tuple[float, ...] = PAPER_MIX,
    techniques: tuple[str, ...] = TECHNIQUES,
    robots: int = 0,
    fhir: bool = True,
) -> LaunchPlan:
    """``fhir=False``: the providers keep their results but write no FHIR bundle at stop
    (~2 ms of CPU per distinct reading received). ``robots``: identities ``robot_0`` … for
    clinical robots outside the plan (they run their own ROS 2 nodes, e.g.
    examples/clinical_robot); robot j is on patient j's care team.
    ``record_services=False`` records topics only (a ward on the rclpy runtime over
    Fast DDS: its service samples carry no request header to pair replies by)."""
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
    capabilities = deal_capabilities(devices, rng, tuple(capability_mix))
    provider_names = [f"dr_{j}" for j in range(n_providers)]
    wallet_names = [f"wallet_{i}" for i in range(n_patients)]
    own = {"none": "none", "symmetric": "sym-aes", "ecc": "ecc", "abe": "cpabe"}
    team_size = max(1, min(care_team, n_providers))
    # Patient i's care team: providers i, i+1, ... (mod n). Its wallet consents to them
    # alone, so a provider holds tokens for (and endpoints to) its own patients only.
    teams = [
        [provider_names[(i + t) % n_providers] for t in range(team_size)] for i in range(n_patients)
    ]
    if robots < 0:
        raise ConfigurationError(f"robots must be >= 0, got {robots}")
    robot_names = [f"robot_{j}" for j in range(robots)]
    for j, robot in enumerate(robot_names):
        teams[j % n_patients].append(robot)

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
                    DeviceParams(
                        keystore=keystore,
                        capability=capabilities[k],
                        kind=kind,
                        x=round(x, 2),
                        y=round(y, 2),
                        wallet=wallet_names[i],
                        patient_id=f"patient-{i}",
                        radio_range=RADIO_RANGE_M,
                        announce_period_s=announce_period_s,
                        sample_period_s=sample_period_s,
                        policy=POLICY,
                        mode=Mode(mode),
                        seed=seed * 100_003 + k,
                        storage_dir=str(run / "storage"),
                        providers=tuple(teams[i]),
                        results=str(run / "results" / "devices.jsonl"),
                    ),
                )
            )
            mine.append(
                WalletDevice(
                    name=name,
                    technique=own[capabilities[k]],
                    kind=0 if kind == "heart_rate" else 1,
                )
            )
            k += 1
        wallet_nodes.append(
            NodeSpec(
                "iomt.nodes.wallet:wallet_node",
                wallet_names[i],
                NAMESPACE,
                WalletParams(
                    keystore=keystore,
                    patient_id=f"patient-{i}",
                    devices=tuple(mine),
                    providers=tuple(teams[i]),
                ),
            )
        )
    per_provider = requests // n_providers
    provider_nodes = [
        NodeSpec(
            "iomt.nodes.provider:provider_node",
            p,
            NAMESPACE,
            ProviderParams(
                keystore=keystore,
                wallets=tuple(w for i, w in enumerate(wallet_names) if p in teams[i]),
                # which devices its patients have: endpoints made at start-up (a hint)
                devices=tuple(
                    d["name"]
                    for i, w in enumerate(wallet_nodes)
                    if p in teams[i]
                    for d in w.params["devices"]
                ),
                requests=per_provider + (1 if j < requests % n_providers else 0),
                concurrency=concurrency,
                techniques=tuple(techniques),
                mode=mode,
                seed=seed * 7919 + j,
                start_delay_s=start_delay_s,
                results=str(run / "results" / f"{p}.jsonl"),
                fhir=str(run / "fhir" / f"{p}.json") if fhir else None,
            ),
        )
        for j, p in enumerate(provider_names)
    ]

    # Neighbours share a process: devices are packed along a Hilbert curve over the radio
    # cells, so most hearers of an announcement (and most converters of a device) live in
    # the announcing device's own process -- the process decodes and verifies it once,
    # and DDS delivers it locally instead of to every device process of the ward.
    # 200 devices and 200 wallets per process: every process (a DDS participant) keeps
    # what discovery told it about every endpoint of the ward (~2 KiB each) on top of the
    # interpreter and matches each of them, so at 400 devices fewer, larger processes
    # save memory and start-up CPU: 2 device processes instead of 4 (100 per process)
    # took 1-1.7 s less to become ready and 140-165 MiB less PSS, at the same requests/s,
    # CPU per request and access time (docs/sharing.md).
    processes = split_into_groups(
        sorted(device_nodes, key=lambda d: _hilbert_key(d, side)),
        devices_per_process or DEVICES_PER_PROCESS,
        "devices_",
    )
    processes += split_into_groups(wallet_nodes, wallets_per_process, "wallets_")
    # In the centralized baseline a device's process is READY only once the server answered
    # its first upload (DeviceNode.warming_up), and the providers join a stage later: the
    # workload never asks the server for a device it has heard nothing from yet.
    providers_stage = 1 if mode == "centralized" else 0
    processes.append(ProcessSpec("providers", tuple(provider_nodes), stage=providers_stage))
    identities = [Identity(n.name) for n in device_nodes + wallet_nodes] + [
        Identity(p, PROVIDER_ATTRIBUTES) for p in provider_names + robot_names
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
                        CentralParams(
                            keystore=keystore,
                            wallets=tuple(wallet_names),
                            policy=POLICY,
                            storage_dir=str(run / "storage"),
                            results=str(run / "results" / "central.jsonl"),
                        ),
                    ),
                ),
            )
        )
        identities.append(Identity("central"))
    if record:
        processes.append(
            recorder_process(
                run,
                device_nodes,
                wallet_nodes,
                provider_nodes,
                central=mode == "centralized",
                services=record_services,
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
            "care_team": team_size,
            "facility": FACILITY,
            "run_dir": str(run),
            "keystore": keystore,
            "side_m": round(side, 1),
            "radio_range_m": RADIO_RANGE_M,
            "capabilities": {c: capabilities.count(c) for c in CAPABILITY_CLASSES},
            "techniques": list(techniques),
            "device_names": [d.name for d in device_nodes],
            "robots": robot_names,
            "record": record,
        },
        tuple(identities),
    )


def _hilbert_key(node: NodeSpec, side: float) -> tuple[int, str]:
    """Position of a device along a Hilbert curve filling the ward (a 64 x 64 grid)."""
    n = 64
    x = min(max(int(float(node.params["x"]) / side * n), 0), n - 1)
    y = min(max(int(float(node.params["y"]) / side * n), 0), n - 1)
    return hilbert_index(n, x, y), node.name


def hilbert_index(n: int, x: int, y: int) -> int:
    """Index of cell (x, y) along the Hilbert curve filling an n x n grid (n a power of 2)."""
    d = 0
    s = n // 2
    while s > 0:
        rx = 1 if x & s else 0
        ry = 1 if y & s else 0
        d += s * s * ((3 * rx) ^ ry)
        if ry == 0:  # rotate the quadrant
            if rx == 1:
                x, y = s - 1 - x, s - 1 - y
            x, y = y, x
        s //= 2
    return d


def case_study_plan(
    *,
    run_dir: str = "runs/case-study",
    mode: SharingMode = "distributed",
    seed: int = 0,
    record: bool = False,
) -> LaunchPlan:
    """Fig. 2 of the paper as running nodes: a patient visits a doctor.

    Patient 1 wears a heart-rate sensor that cannot encrypt (``hr_1``) and a
    blood-pressure cuff that can do ECC (``bp_1``); next to the bed stands another
    patient's ventilator that can do CP-ABE (``vent_2``). Dr House asks patient 1's
    wallet for device info and tokens, then asks ``hr_1`` for its reading in ECC (it must
    convert: ``bp_1`` does it), ``bp_1`` in ECC (shared directly) and ``bp_1`` in CP-ABE
    (converted by ``vent_2``).
    """
    run = Path(run_dir)
    keystore = str(run / "keystore")

    def device(
        name: str,
        capability: CapabilityClass,
        kind: VitalKindName,
        at: tuple[float, float],
        patient: int,
        seed: int,
    ) -> NodeSpec:
        return NodeSpec(
            "iomt.nodes.device:device_node",
            name,
            NAMESPACE,
            DeviceParams(
                keystore=keystore,
                capability=capability,
                kind=kind,
                x=at[0],
                y=at[1],
                wallet=f"wallet_p{patient}",
                patient_id=f"patient-{patient}",
                radio_range=RADIO_RANGE_M,
                announce_period_s=20.0,
                sample_period_s=1.0,
                policy=POLICY,
                mode=Mode(mode),
                seed=seed,
                storage_dir=str(run / "storage"),
                results=str(run / "results" / "devices.jsonl"),
                # A device's first order to a converter also waits for discovery to match
                # the converter's service (its client is made then); on a loaded machine
                # that alone took over the default 1 s, and the demo's one CP-ABE request
                # was refused ("no response in time").
                convert_timeout_s=CASE_STUDY_CONVERT_TIMEOUT_S,
            ),
        )

    def wallet(patient: int, providers: tuple[str, ...], *mine: WalletDevice) -> NodeSpec:
        return NodeSpec(
            "iomt.nodes.wallet:wallet_node",
            f"wallet_p{patient}",
            NAMESPACE,
            WalletParams(
                keystore=keystore,
                patient_id=f"patient-{patient}",
                providers=providers,
                devices=mine,
            ),
        )

    devices = [
        device("hr_1", "none", "heart_rate", (1.0, 1.0), 1, seed + 1),
        device("bp_1", "ecc", "blood_pressure", (1.5, 1.2), 1, seed + 2),
        device("vent_2", "abe", "heart_rate", (4.0, 2.0), 2, seed + 3),
    ]
    wallets = [
        wallet(
            1,
            ("dr_house",),
            WalletDevice(name="hr_1", technique="none", kind=0),
            WalletDevice(name="bp_1", technique="ecc", kind=1),
        ),
        wallet(2, (), WalletDevice(name="vent_2", technique="cpabe", kind=0)),
    ]
    doctor = NodeSpec(
        "iomt.nodes.provider:provider_node",
        "dr_house",
        NAMESPACE,
        ProviderParams(
            keystore=keystore,
            wallets=("wallet_p1",),
            mode=mode,
            start_delay_s=2.5,
            script=(("hr_1", "ecc"), ("bp_1", "ecc"), ("bp_1", "cpabe")),
            results=str(run / "results" / "dr_house.jsonl"),
            fhir=str(run / "fhir" / "dr_house.json"),
        ),
    )
    processes = [
        ProcessSpec("patient_1", (devices[0], devices[1], wallets[0])),
        ProcessSpec("bedside", (devices[2], wallets[1])),
        ProcessSpec("doctor", (doctor,)),
    ]
    if record:
        processes.append(recorder_process(run, devices, wallets, [doctor], central=False))
    expect = expected_endpoints(devices, wallets, [doctor], central=False)
    identities = [Identity(n) for n in ("hr_1", "bp_1", "vent_2", "wallet_p1", "wallet_p2")]
    identities.append(Identity("dr_house", PROVIDER_ATTRIBUTES))
    return LaunchPlan(
        "case_study",
        "Fig. 2: a patient's devices, a bedside converter, a doctor",
        tuple(processes),
        {
            "devices": 3,
            "mode": mode,
            "seed": seed,
            "requests": 3,
            "providers": ["dr_house"],
            "facility": FACILITY,
            "run_dir": str(run),
            "keystore": keystore,
            "device_names": [d.name for d in devices],
            "expect": expect,
            "record": record,
        },
        tuple(identities),
    )
