"""BIoMT topologies (Seliem & Elgazzar) joined with the sharing framework: ``scale_N --mode biomt``.

A pure, seeded generator on top of :func:`iomt.topology.sharing.sharing_plan`: the same
ward (patients with a heart-rate sensor and a blood-pressure cuff, wallets, providers, 20 %
of devices unable to encrypt), with BIoMT's layers added --

* **facility layer**: one bolster per ``devices_per_bolster`` devices (a patient's devices
  share one), each in its own process (a gateway is a machine of its own), its ledger and
  local storage in ``<run>/storage``; an ``admin`` who approves enrolments against the
  facility's inventory;
* **cluster layer**: bolsters grouped into clusters of ``bolsters_per_cluster``, each
  electing a head (priority by index: deterministic in a quiet cluster);
* **multiple bolsters**: a ``master`` bolster with the shared chain of origins, when there
  is more than one bolster;
* **cloud layer**: one ``cloud``;
* devices in ``biomt`` mode (provisioned at start-up, every reading stored at their
  bolster, their shares and conversions recorded there), wallets reporting the tokens they
  issue, providers acting as physicians (Access / Observe workload, and the no-crypto
  base in the same run).

Users in the bolsters' user list (keystore identities): ``admin`` (admin), each provider
(physician), each wallet (patient: the owner of the patient's devices). Processes start in
stages: the recorder (-1), the facility and bolsters (0), the ward (1).
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

from iomt.errors import ConfigurationError
from iomt.topology.params import (
    AccessRule,
    AdminParams,
    BolsterParams,
    CloudParams,
    Cluster,
    DeviceBiomt,
    MasterParams,
    PhysicianBiomt,
    RecorderParams,
    Retention,
    Synchronous,
    WalletBiomt,
)
from iomt.topology.sharing import (
    ANNOUNCE_PERIOD_S,
    CARE_TEAM,
    CONCURRENCY,
    PAPER_MIX,
    REQUESTS,
    SAMPLE_PERIOD_S,
    START_DELAY_S,
    TECHNIQUES,
    WALLETS_PER_PROCESS,
    sharing_plan,
)
from iomt.topology.spec import Identity, LaunchPlan, NodeSpec, ProcessSpec
from iomt.topology.ward import FACILITY, NAMESPACE, expected_endpoints

__all__ = ["BOLSTER_SERVICES", "biomt_endpoints", "biomt_plan", "bolster_spec"]

BOLSTER_SERVICES = (
    "provision",
    "store",
    "access",
    "observe",
    "remove",
    "communication",
    "pair_key_status",
    "history",
    "devices",
    "credentials",
    "checkpoint",
    "record",
    "attest",
    "base/store",
    "base/access",
    "base/observe",
)
PHYSICIAN_ROLE = "physician"
#: devices per process of a BIoMT ward unless told (the sharing ward's default is 200)
DEVICES_PER_PROCESS = 50


def bolster_spec(
    name: str,
    run: Path,
    *,
    users: list[list[str]],
    observers: list[str],
    synchronous: Synchronous = "FULL",
    retention: Retention = "keep",
    cloud: str = "cloud",
    master: str = "",
    cluster: Cluster | None = None,
    observe_interval_s: float = 0.25,
) -> NodeSpec:
    return NodeSpec(
        "iomt.nodes.bolster:bolster_node",
        name,
        NAMESPACE,
        BolsterParams(
            keystore=str(run / "keystore"),
            storage_dir=str(run / "storage"),
            users=tuple((u, r) for u, r in users),
            rules=(
                AccessRule(role=PHYSICIAN_ROLE, action="access"),
                AccessRule(
                    role=PHYSICIAN_ROLE, action="observe", observe_interval_s=observe_interval_s
                ),
            ),
            observers=tuple(observers),
            synchronous=synchronous,
            retention=retention,
            cloud=cloud,
            master=master,
            cluster=cluster,
            results=str(run / "results" / f"{name}.jsonl"),
        ),
    )


def _with(spec: NodeSpec, **params: Any) -> NodeSpec:
    return NodeSpec(
        spec.factory, spec.name, spec.namespace, dataclasses.replace(spec.typed(), **params)
    )


def biomt_plan(  # noqa: PLR0913  (its keyword-only arguments are the topology's options)
    devices: int,
    *,
    seed: int = 0,
    run_dir: str = "runs/current",
    requests: int = REQUESTS,
    providers: int | None = None,
    concurrency: int = CONCURRENCY,
    care_team: int = CARE_TEAM,
    devices_per_process: int | None = None,
    wallets_per_process: int = WALLETS_PER_PROCESS,
    announce_period_s: float = ANNOUNCE_PERIOD_S,
    capability_mix: tuple[float, ...] = PAPER_MIX,
    techniques: tuple[str, ...] = TECHNIQUES,
    robots: int = 0,
    devices_per_bolster: int = 25,
    bolsters_per_cluster: int = 3,
    biomt_ops: int = 400,
    synchronous: Synchronous = "FULL",
    retention: Retention = "keep",
    observe_interval_s: float = 0.25,
    observe_duration_s: float = 3.0,
    sample_period_s: float = SAMPLE_PERIOD_S,
    start_delay_s: float = START_DELAY_S,
    record: bool = True,
    record_services: bool = True,
    biomt_sessions: bool = True,
) -> LaunchPlan:
    """The sharing ward (its options as in :func:`~iomt.topology.sharing.sharing_plan`,
    ``devices_per_process`` 50 unless given) with BIoMT's layers on top."""
    if devices_per_bolster < 2:
        raise ConfigurationError("a bolster serves at least one patient's two devices")
    if str(synchronous).upper() not in ("FULL", "NORMAL"):
        raise ConfigurationError(f"synchronous must be FULL or NORMAL, not {synchronous!r}")
    synchronous = "NORMAL" if synchronous.upper() == "NORMAL" else "FULL"
    ward = sharing_plan(
        devices,
        mode="distributed",
        seed=seed,
        run_dir=run_dir,
        requests=requests,
        providers=providers,
        concurrency=concurrency,
        care_team=care_team,
        devices_per_process=devices_per_process or DEVICES_PER_PROCESS,
        wallets_per_process=wallets_per_process,
        announce_period_s=announce_period_s,
        sample_period_s=sample_period_s,
        start_delay_s=start_delay_s,
        record=False,
        capability_mix=capability_mix,
        techniques=techniques,
        robots=robots,
    )
    run = Path(run_dir)
    n_bolsters = max(1, math.ceil(devices / devices_per_bolster))
    bolster_names = [f"bolster_{b}" for b in range(n_bolsters)]
    provider_names = list(ward.facts["providers"])
    wallets = [n for p in ward.processes for n in p.nodes if n.name.startswith("wallet_")]
    ward_devices = [n for p in ward.processes for n in p.nodes if "device_node" in n.factory]
    providers_specs = [n for p in ward.processes for n in p.nodes if "provider_node" in n.factory]

    def bolster_of(patient: int) -> str:
        return bolster_names[min(2 * patient // devices_per_bolster, n_bolsters - 1)]

    users = (
        [["admin", "admin"]]
        + [[p, PHYSICIAN_ROLE] for p in provider_names]
        + [[w.name, "patient"] for w in wallets]
    )
    by_bolster: dict[str, list[str]] = {b: [] for b in bolster_names}
    inventory: list[list[str]] = []
    new_devices: list[NodeSpec] = []
    for d in ward_devices:
        patient = int(str(d.params["wallet"]).rsplit("_", 1)[1])
        bolster = bolster_of(patient)
        by_bolster[bolster].append(d.name)
        inventory.append([f"iomt://{FACILITY}/{d.name}", str(d.params["wallet"]), bolster])
        # Every Store the bolster acknowledged is logged by the device (pseudonym, counter,
        # ledger seq, tag): what the report holds the ledgers to ("acknowledged, lost").
        new_devices.append(
            _with(
                d,
                mode="biomt",
                biomt=DeviceBiomt(
                    bolster=bolster,
                    admin="admin",
                    ack_log=str(run / "results" / "acks" / f"{d.name}.jsonl"),
                ),
            )
        )
    new_wallets = [
        _with(w, biomt=WalletBiomt(bolster=bolster_of(int(w.name.rsplit("_", 1)[1]))))
        for w in wallets
    ]
    new_providers = [
        _with(
            p,
            mode="biomt",
            biomt=PhysicianBiomt(
                bolsters=tuple(bolster_names),
                cloud="cloud",
                ops=biomt_ops // len(providers_specs)
                + (1 if j < biomt_ops % len(providers_specs) else 0),
                min_devices=devices,
                observe_duration_s=observe_duration_s,
                observe_interval_s=observe_interval_s,
                sessions=biomt_sessions,
            ),
        )
        for j, p in enumerate(providers_specs)
    ]
    replaced = {n.name: n for n in new_devices + new_wallets + new_providers}

    clusters: dict[str, list[str]] = {}
    for b, name in enumerate(bolster_names):
        clusters.setdefault(f"cluster_{b // bolsters_per_cluster}", []).append(name)
    master = "master" if n_bolsters > 1 else ""
    bolster_procs = []
    for b, name in enumerate(bolster_names):
        cid = f"cluster_{b // bolsters_per_cluster}"
        members = clusters[cid]
        spec = bolster_spec(
            name,
            run,
            users=users,
            observers=provider_names,
            synchronous=synchronous,
            retention=retention,
            master=master,
            observe_interval_s=observe_interval_s,
            cluster=Cluster(
                id=cid,
                # earlier bolsters rank higher: the same head after every quiet start-up
                members={m: len(members) - i for i, m in enumerate(members)},
            ),
        )
        bolster_procs.append(ProcessSpec(name, (spec,), stage=0))
    facility = [
        NodeSpec(
            "iomt.nodes.biomt_admin:admin_node",
            "admin",
            NAMESPACE,
            AdminParams(
                keystore=str(run / "keystore"),
                inventory=tuple((uri, owner, b) for uri, owner, b in inventory),
            ),
        ),
        NodeSpec(
            "iomt.nodes.cloud:cloud_node",
            "cloud",
            NAMESPACE,
            CloudParams(
                keystore=str(run / "keystore"),
                storage_dir=str(run / "storage"),
                users=tuple((u, r) for u, r in users),
                synchronous=synchronous,
                results=str(run / "results" / "cloud.jsonl"),
            ),
        ),
    ]
    if master:
        facility.append(
            NodeSpec(
                "iomt.nodes.biomt_master:master_node",
                master,
                NAMESPACE,
                MasterParams(
                    keystore=str(run / "keystore"),
                    storage_dir=str(run / "storage"),
                    synchronous=synchronous,
                    results=str(run / "results" / "master.jsonl"),
                ),
            )
        )
    processes = [ProcessSpec("facility", tuple(facility), stage=0), *bolster_procs]
    for proc in ward.processes:
        processes.append(
            ProcessSpec(proc.name, tuple(replaced.get(n.name, n) for n in proc.nodes), stage=1)
        )
    identities = ward.identities + tuple(
        Identity(n) for n in [*bolster_names, "admin", "cloud", *([master] if master else [])]
    )
    expect = expected_endpoints(new_devices, new_wallets, new_providers, central=False)
    expect += biomt_endpoints(bolster_names, provider_names, list(clusters), master=master)
    if record:
        processes.append(
            ProcessSpec(
                "recorder",
                (
                    NodeSpec(
                        "iomt.capture.recorder:recorder_node",
                        "recorder",
                        "/iomt",
                        RecorderParams(
                            output=str(run / "bag"),
                            services=record_services,
                            expect=tuple((n, t) for n, t in expect),
                        ),
                    ),
                ),
                stage=-1,
                restart=False,
            )
        )
    facts = dict(ward.facts)
    facts.update(
        {
            "mode": "biomt",
            "record": record,
            "expect": expect,
            "physicians": provider_names,
            "biomt": {
                "bolsters": by_bolster,
                "clusters": clusters,
                "master": master,
                "cloud": "cloud",
                "admin": "admin",
                "ops": biomt_ops,
                "synchronous": synchronous,
                "sessions": biomt_sessions,
                "retention": retention,
                "observe_interval_s": observe_interval_s,
                "sample_period_s": sample_period_s,
                "users": users,
            },
        }
    )
    return LaunchPlan(
        f"scale_{devices}",
        f"{devices} devices (biomt), {n_bolsters} bolsters in {len(clusters)} clusters, "
        f"{len(provider_names)} physicians, {requests} sharing requests, {biomt_ops} "
        "BIoMT operations",
        tuple(processes),
        facts,
        identities,
    )


def biomt_endpoints(
    bolsters: list[str], observers: list[str], clusters: list[str], *, master: str = ""
) -> list[list[str]]:
    """Every BIoMT topic and service of the plan, for the recorder to subscribe to first."""
    out: list[list[str]] = []
    for b in bolsters:
        out += [
            [f"{NAMESPACE}/{b}/{s}", "iomt_interfaces/srv/BolsterService"] for s in BOLSTER_SERVICES
        ]
        out.append([f"{NAMESPACE}/{b}/handshake", "iomt_interfaces/srv/SessionHandshake"])
        out.append([f"{NAMESPACE}/{b}/ledger", "iomt_interfaces/msg/BiomtTransaction"])
    for o in observers:
        for topic in ("observe_updates", "base/observe_updates"):
            out.append([f"{NAMESPACE}/{o}/{topic}", "iomt_interfaces/msg/BiomtObserveUpdate"])
    for c in clusters:
        base = f"/iomt/biomt/cluster/{c}"
        out += [
            [f"{base}/election", "iomt_interfaces/msg/ClusterMessage"],
            [f"{base}/head", "iomt_interfaces/msg/ClusterHeadStatus"],
            [f"{base}/witness", "iomt_interfaces/msg/CheckpointWitness"],
        ]
    out += [
        [f"{NAMESPACE}/cloud/put", "iomt_interfaces/srv/CloudService"],
        [f"{NAMESPACE}/cloud/get", "iomt_interfaces/srv/CloudService"],
        [f"{NAMESPACE}/admin/approve", "iomt_interfaces/srv/BolsterService"],
        [f"{NAMESPACE}/admin/credentials", "iomt_interfaces/srv/BolsterService"],
        ["/iomt/biomt/progress", "iomt_interfaces/msg/BiomtProgress"],
    ]
    if master:
        out += [
            [f"{NAMESPACE}/{master}/admit", "iomt_interfaces/srv/BolsterService"],
            [f"{NAMESPACE}/{master}/chain", "iomt_interfaces/srv/BolsterService"],
            [f"{NAMESPACE}/{master}/ledger", "iomt_interfaces/msg/BiomtTransaction"],
        ]
    return out
