"""Experiment E3 — BIoMT's Fig. 3 and Fig. 4, measured for real on DDS.

    report = run(BiomtConfig("scale_10", biomt_ops=400))

Seliem & Elgazzar report, for the Store, Access and Observe transactions, the end-to-end
delay their framework adds over "the state-of-the-art network deployment techniques, with
no cryptography deployed" (Fig. 3: at most 11 ms) and the extra power the bolster draws
(Fig. 4: Observe costs most, about +12.25 mW, ~35 %). Here, in one run of
``iomt launch scale_N --mode biomt``:

* **delay** is measured client-side, end to end over DDS, per transaction: by each device
  for its Store (seal, call, check the receipt) and by each physician for Access and
  Observe -- on a user session by default (protect the query, call, open the answer, check
  the receipt's structure; the receipts are settled by the physician's attestations every
  64 answers, off the request path), or with ``extra={"biomt_sessions": False}`` on the
  signed path (sign, call, check the receipt, open the ECIES-sealed data or key) -- and for
  the same operations on the no-crypto base
  (:class:`~iomt.core.biomt.BaseBolster` behind the same bolster node and service path),
  interleaved in alternating order. Observe *updates* are timed from the reading's time to
  the observer holding the opened reading. Overhead = BIoMT - base (p50 and mean).
* **bolster CPU time per transaction** (the measured stand-in for Fig. 4's power: a
  gateway's extra power is proportional to its extra CPU work) is the bolster executor
  thread's CPU time around each handler (decode, core, ledger, publish, reply), for both
  paths, with the core's cost-meter split into crypto / ledger / policy / other.

The run also exercises the rest of the system and the report says what happened: the
sharing framework's requests (Bilal & Hassan) and what of them was recorded on the ledgers,
one patient's ``history`` read back over DDS, every bolster's ledger audited from its
SQLite file, the ``~/ledger`` streams in the recorded bag compared with the ledgers, the
cluster heads and the checkpoints they cosigned, the cloud, and the bag audit (what an
eavesdropper could read). Output: ``report.json``, ``report.md`` and PNG plots in the run
directory.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from iomt.capture import RadioMap, read_messages
from iomt.capture import audit as bag_audit
from iomt.capture import info as bag_info
from iomt.core.biomt import CloudSyncStatus, HistoryResult, Requester
from iomt.core.replies import ReplyChecker
from iomt.crypto.keystore import Keystore
from iomt.errors import ConfigurationError, IomtError, TransportError
from iomt.experiments.at_rest import at_rest_line, at_rest_report, audit_ledger_file
from iomt.experiments.sharing import _read_jsonl
from iomt.experiments.stats import percentile, summarize_ms
from iomt.launch.provision import provision
from iomt.launch.service import (
    LaunchService,
    RestartPolicy,
    ensure_domain_free,
    private_files,
    supervision_line,
    total_pss_bytes,
)
from iomt.ledger import SqliteStorage, TxType
from iomt.msg import BiomtProgress, BiomtTransaction, BolsterService, WorkloadProgress
from iomt.nodes import biomt_wire as bw
from iomt.runtime import Client, Context, Executor, Node
from iomt.topology import LaunchPlan, load

__all__ = ["PAPER", "BiomtConfig", "build_report", "read_history", "render_markdown", "run"]

PAPER: dict[str, Any] = {
    "fig3_max_overhead_ms": 11.0,
    "fig4_observe_increase_mw": 12.25,
    "fig4_observe_increase_pct": 35.0,
}
OPS = ("store", "access", "observe", "update")
TARGET_OVERHEAD_P50_MS = 1.0
#: how long the end of a run waits for the bolsters' cloud sync to catch up: a block seals
#: at most 2 s after its first transaction and is pushed within 1 s (the topology's
#: defaults), and a push that got no answer is sent again a round later
CLOUD_DRAIN_TIMEOUT_S = 20.0


@dataclass
class BiomtConfig:
    topology: str = "scale_10"
    requests: int = 200
    biomt_ops: int = 400
    seed: int = 0
    concurrency: int = 2
    synchronous: str = "FULL"
    domain_id: int | None = None
    dds_config: str | None = None
    run_dir: Path | None = None
    record: bool = True
    timeout_s: float = 600.0
    extra: dict[str, Any] = field(default_factory=dict)
    # crashed processes are restarted (iomt.launch.service); NO_RESTARTS: a crash ends the run
    restart: RestartPolicy = field(default_factory=RestartPolicy)
    placement: dict[str, list[str]] = field(default_factory=dict)
    check_domain: bool = True

    def resolved_run_dir(self) -> Path:
        return self.run_dir or Path("runs") / (
            f"{self.topology}-biomt-{time.strftime('%Y%m%d-%H%M%S')}"
        )


def plan_for(cfg: BiomtConfig, run_dir: Path) -> LaunchPlan:
    plan = load(
        cfg.topology,
        mode="biomt",
        seed=cfg.seed,
        run_dir=str(run_dir),
        requests=cfg.requests,
        concurrency=cfg.concurrency,
        biomt_ops=cfg.biomt_ops,
        synchronous=cfg.synchronous,
        record=cfg.record,
        **cfg.extra,
    )
    if "biomt" not in plan.facts:
        raise ConfigurationError(f"{cfg.topology} is not a BIoMT topology (scale_N)")
    return plan


ProgressCallback = Callable[[dict[str, Any]], None]


class _Watcher:
    """Follows both workloads' progress, and reads a patient's history at the end."""

    def __init__(self, domain_id: int | None, dds_config: str | None) -> None:
        self.ctx = Context(domain_id=domain_id, dds_config_name=dds_config)
        self.node = Node("experiment_driver", context=self.ctx, namespace="/iomt")
        self.sharing: dict[str, dict[str, Any]] = {}
        self.biomt: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

        def on_sharing(msg: WorkloadProgress) -> None:
            with self._lock:
                self.sharing[msg.provider_uri] = {
                    "done": int(msg.requests_done),
                    "total": int(msg.requests_total),
                    "finished": bool(msg.finished),
                }

        def on_biomt(msg: BiomtProgress) -> None:
            with self._lock:
                self.biomt[msg.node] = {
                    "done": int(msg.done),
                    "total": int(msg.total),
                    "failed": int(msg.failed),
                    "finished": bool(msg.finished),
                }

        self.node.create_subscription(WorkloadProgress, "/iomt/progress", on_sharing)
        self.node.create_subscription(BiomtProgress, "/iomt/biomt/progress", on_biomt)
        self.executor = Executor(self.ctx)
        self.executor.add_node(self.node)
        self.executor.spin_in_thread("biomt-progress")

    def snapshot(self, providers: int) -> dict[str, Any]:
        with self._lock:
            s, b = list(self.sharing.values()), list(self.biomt.values())
        return {
            "providers": providers,
            "sharing_done": sum(v["done"] for v in s),
            "sharing_total": sum(v["total"] for v in s),
            "sharing_finished": sum(1 for v in s if v["finished"]),
            "biomt_done": sum(v["done"] for v in b),
            "biomt_total": sum(v["total"] for v in b),
            "biomt_failed": sum(v["failed"] for v in b),
            "biomt_finished": sum(1 for v in b if v["finished"]),
        }

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        self.executor.close()
        self.ctx.shutdown()


def _proven_answer(
    client: Client,
    ask: Any,
    checker: ReplyChecker,
    keystore: Keystore,
    bolster: str,
    op: str,
    timeout_s: float,
) -> bytes:
    """``ask`` on ``bolster``'s ``op``: the body of its answer to this request whose proof
    verifies against its key (iomt.core.replies); a refusal or no answer raises."""
    accept = bw.reply_check(checker, f"bolster/{op}", bolster, ask, key=keystore.verifier(bolster))
    return bw.raise_for_status(op, client.call(ask, timeout_s, accept))


def read_history(
    node: Node, keystore: Keystore, patient: str, bolster: str, namespace: str = "/ward1"
) -> list[dict[str, Any]]:
    """What a patient sees: their devices' history at ``bolster``, fetched over DDS with
    the patient's own key (signed request, answer sealed to a one-time key)."""
    requester = Requester(
        patient, keystore.identity(patient).signer, clock=time.time_ns, rng=os.urandom
    )
    # the client lives as long as the node (an executor may be spinning it right now)
    client = node.create_client(BolsterService, f"{namespace}/{bolster}/history")
    if not client.wait_for_service(10.0):
        raise TransportError(f"{bolster}/history is not available")
    request = requester.history(bolster, patient)
    ask = BolsterService.Request(requester=patient, body=request.to_bytes())
    checker = ReplyChecker(keystore.credential_validator())
    answer = _proven_answer(client, ask, checker, keystore, bolster, "history", 10.0)
    result = HistoryResult.from_bytes(answer)
    payload = requester.open_history(request, result)
    return [
        {
            "seq": e.seq,
            "type": e.tx_type.name,
            "time": e.time,
            "actor": e.actor,
            "role": e.role,
            "device": e.device,
            "outcome": e.outcome.name,
            "records": e.records,
            "detail": e.detail,
            "evidence": e.evidence.name,
        }
        for e in payload.entries
    ]


def drain_cloud_sync(
    node: Node,
    keystore: Keystore,
    bolsters: list[str],
    *,
    timeout_s: float = CLOUD_DRAIN_TIMEOUT_S,
    namespace: str = "/ward1",
) -> dict[str, Any]:
    """Wait until every bolster's cloud holds what its ledger held when the wait began
    (sealed, pushed and acknowledged), asking each bolster's ``~/cloud_status`` and taking
    only its signed answers: the report then says what reached the cloud, not where a sync
    round happened to be when the ward stopped. A bolster that has not caught up within
    ``timeout_s`` (or does not answer) is reported as lagging; the run goes on."""
    checker = ReplyChecker(keystore.credential_validator())
    t0 = time.monotonic()
    deadline = t0 + timeout_s
    clients = {
        b: node.create_client(BolsterService, f"{namespace}/{b}/cloud_status") for b in bolsters
    }
    targets: dict[str, int] = {}
    last: dict[str, CloudSyncStatus | str] = {}
    waiting = set(bolsters)
    found: set[str] = set()
    while waiting and time.monotonic() < deadline:
        for b in sorted(waiting):
            # a fresh nonce as body: an earlier answer's proof does not fit this request
            ask = BolsterService.Request(requester=node.get_name(), body=os.urandom(16))
            left = max(0.1, min(5.0, deadline - time.monotonic()))
            if b not in found:
                if not clients[b].wait_for_service(left):
                    last[b] = f"{b}/cloud_status is not available"
                    continue
                found.add(b)
            try:
                answer = _proven_answer(clients[b], ask, checker, keystore, b, "cloud_status", left)
                status = CloudSyncStatus.from_bytes(answer)
            except IomtError as exc:
                last[b] = str(exc)
                continue
            last[b] = status
            targets.setdefault(b, status.transactions)
            if status.synced >= targets[b]:
                waiting.discard(b)
        if waiting:
            time.sleep(0.25)
    out: dict[str, Any] = {"waited_s": round(time.monotonic() - t0, 3), "bolsters": {}}
    for b in bolsters:
        seen = last.get(b)
        row: dict[str, Any] = {"caught_up": b not in waiting, "target": targets.get(b)}
        if isinstance(seen, CloudSyncStatus):
            row.update(transactions=seen.transactions, sealed=seen.sealed, synced=seen.synced)
        elif seen is not None:
            row["error"] = seen
        out["bolsters"][b] = row
    return out


def run(cfg: BiomtConfig, *, on_progress: ProgressCallback | None = None) -> dict[str, Any]:
    """Provision, launch, drive, stop, report (see the module doc). Everything the run
    writes is owner-only (umask 077 meanwhile): readings, keys, ledgers, bags."""
    with private_files():
        return _run(cfg, on_progress=on_progress)


def _run(cfg: BiomtConfig, *, on_progress: ProgressCallback | None = None) -> dict[str, Any]:
    run_dir = cfg.resolved_run_dir()
    plan = plan_for(cfg, run_dir)
    if cfg.check_domain:
        ensure_domain_free(plan, domain_id=cfg.domain_id, dds_config=cfg.dds_config)
    t0 = time.monotonic()
    keystore = provision(plan)
    timings: dict[str, float] = {"provision_s": round(time.monotonic() - t0, 3)}
    providers = list(plan.facts["physicians"])
    watcher = _Watcher(cfg.domain_id, cfg.dds_config)
    history: list[dict[str, Any]] = []
    patient = ""
    try:
        with LaunchService(
            plan,
            run_dir=run_dir,
            domain_id=cfg.domain_id,
            dds_config=cfg.dds_config,
            restart=cfg.restart,
            placement=cfg.placement,
        ) as service:
            timings["ready_s"] = round(service.start(ready_timeout_s=180), 3)
            t_work = time.monotonic()
            deadline = t_work + cfg.timeout_s
            while True:
                snap = watcher.snapshot(len(providers))
                if on_progress is not None:
                    on_progress(snap)
                if snap["sharing_finished"] == len(providers) and snap["biomt_finished"] == len(
                    providers
                ):
                    break
                service.supervise()  # restarts what crashed; raises if it keeps crashing
                if time.monotonic() > deadline:
                    raise TransportError(
                        f"workload not finished within {cfg.timeout_s:g} s: {snap}"
                    )
                time.sleep(0.2)
            timings["workload_s"] = round(time.monotonic() - t_work, 3)
            service.settle()  # a process restarting now comes back before the ward stops
            # let the last event batches reach the ledgers before the patient looks
            time.sleep(1.5)
            cloud_sync = drain_cloud_sync(
                watcher.node, keystore, list(plan.facts["biomt"]["bolsters"])
            )
            timings["cloud_drain_s"] = cloud_sync["waited_s"]
            patient, patient_bolster = _pick_patient(plan, run_dir)
            try:
                history = read_history(watcher.node, keystore, patient, patient_bolster)
            except IomtError as exc:
                history = [{"error": str(exc)}]
            timings["memory_pss_mib"] = round(total_pss_bytes(service.pids()) / 2**20, 1)
            codes = service.stop(timeout_s=30)
            supervision = service.supervision_report()
    finally:
        watcher.close()
    report = build_report(plan, run_dir, timings, codes, keystore, history, patient)
    report["supervision"] = supervision
    report["cloud_sync"] = cloud_sync
    (run_dir / "report.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    (run_dir / "report.md").write_text(render_markdown(report), encoding="utf-8")
    return report


def _pick_patient(plan: LaunchPlan, run_dir: Path) -> tuple[str, str]:
    """A patient whose device had a reading converted, if any (their history then shows
    every kind of sharing event), and the bolster of their devices."""
    converted = [
        r["device"]
        for f in sorted((run_dir / "results").glob("dr_*.jsonl"))
        for r in _read_jsonl(f)
        if r.get("record") == "request" and r.get("outcome") == "converted"
    ]
    index = converted[0].rsplit("_", 1)[1] if converted else "0"
    for bolster, devices in plan.facts["biomt"]["bolsters"].items():
        if any(d.rsplit("_", 1)[1] == index for d in devices):
            return f"wallet_{index}", bolster
    raise ConfigurationError(f"no bolster serves patient {index}")


# --- the report ------------------------------------------------------------------------


def _overhead(biomt: dict[str, Any], base: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k in ("p50", "p95", "mean"):
        a, b = biomt.get(k), base.get(k)
        out[f"{k}_ms"] = None if a is None or b is None else round(a - b, 4)
    return out


def _cpu(values_us: list[int]) -> dict[str, Any]:
    v = sorted(values_us)
    if not v:
        return {"n": 0, "mean_us": None, "p50_us": None}
    return {
        "n": len(v),
        "mean_us": round(sum(v) / len(v), 1),
        "p50_us": percentile([float(x) for x in v], 50),
    }


def _merge_lists(records: list[dict[str, Any]], key: str) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for r in records:
        for op, values in (r.get(key) or {}).items():
            out.setdefault(op, []).extend(values)
    return out


def _merge_phases(records: list[dict[str, Any]], key: str) -> dict[str, dict[str, float]]:
    """Count-weighted mean of each bolster's median phase times, per operation."""
    acc: dict[str, dict[str, float]] = {}
    weights: dict[str, int] = {}
    for r in records:
        for op, row in (r.get(key) or {}).items():
            n = int(row["count"])
            slot = acc.setdefault(op, {})
            for k, v in row.items():
                if k.endswith("_us"):
                    slot[k] = slot.get(k, 0.0) + n * float(v)
            weights[op] = weights.get(op, 0) + n
    return {
        op: {"count": weights[op], **{k: round(v / weights[op], 1) for k, v in row.items()}}
        for op, row in acc.items()
        if weights[op]
    }


def _ledgers(plan: LaunchPlan, run_dir: Path, keystore: Keystore) -> dict[str, Any]:
    """Every bolster's ledger audited against its public key, and its local storage
    against its ledger (iomt.experiments.at_rest)."""
    out: dict[str, Any] = {}
    for bolster in plan.facts["biomt"]["bolsters"]:
        path = run_dir / "storage" / f"{bolster}.ledger.sqlite"
        if not path.exists():
            out[bolster] = {"error": "no ledger file"}
            continue
        out[bolster] = audit_ledger_file(
            path, bolster, keystore, str(plan.facts["biomt"].get("retention", "keep"))
        )
    return out


def _acknowledged(plan: LaunchPlan, run_dir: Path) -> dict[str, Any]:
    """Every Store a bolster acknowledged (the devices' ack logs: pseudonym, ledger seq,
    tag), looked up in the stored ledgers: what a crash must never lose."""
    acks = [
        a for f in sorted((run_dir / "results" / "acks").glob("*.jsonl")) for a in _read_jsonl(f)
    ]
    stored: dict[tuple[str, int], bytes] = {}
    for bolster in plan.facts["biomt"]["bolsters"]:
        path = run_dir / "storage" / f"{bolster}.ledger.sqlite"
        if not path.exists():
            continue
        storage = SqliteStorage(path, check_same_thread=False)
        try:
            for tx in storage.iter_transactions(0, None, tx_type=TxType.STORE):
                stored[(tx.generator_id, tx.seq)] = bytes(tx.signature)
        finally:
            storage.close()
    lost = [
        a
        for a in acks
        if stored.get((str(a["device"]), int(a["seq"]))) != bytes.fromhex(str(a["tag"]))
    ]
    return {
        "acknowledged": len(acks),
        "in_ledgers": len(acks) - len(lost),
        "lost": len(lost),
        "lost_sample": lost[:5],
    }


def _ledger_streams(plan: LaunchPlan, run_dir: Path) -> dict[str, Any]:
    """The ``~/ledger`` messages in the bag, compared with each stored ledger."""
    bag = run_dir / "bag"
    out: dict[str, Any] = {}
    if not (bag / "metadata.yaml").exists():  # no bag, or one a crashed recorder left open
        return out
    ns = "/ward1"
    for bolster in plan.facts["biomt"]["bolsters"]:
        topic = f"{ns}/{bolster}/ledger"
        recorded = [BiomtTransaction.deserialize(m.data) for m in read_messages(bag, [topic])]
        path = run_dir / "storage" / f"{bolster}.ledger.sqlite"
        storage = SqliteStorage(path, check_same_thread=False)
        try:
            stored = {
                (tx.generator_id, bytes(tx.body), bytes(tx.signature))
                for tx in storage.iter_transactions(0, None)
            }
            total = storage.transaction_count()
        finally:
            storage.close()
        matching = sum(
            1 for m in recorded if (m.sender_id, bytes(m.body), bytes(m.signature)) in stored
        )
        out[bolster] = {"recorded": len(recorded), "ledger": total, "matching": matching}
    return out


def _delay_ms(devices: list[dict[str, Any]], physicians: list[dict[str, Any]]) -> dict[str, Any]:
    """Each operation's delay, over BIoMT and over the base path: Stores from the
    devices, the physicians' operations from theirs."""
    delays: dict[str, dict[str, list[int]]] = {op: {"biomt": [], "base": []} for op in OPS}
    for d in devices:
        link = d.get("biomt") or {}
        delays["store"]["biomt"] += link.get("store_us", [])
        delays["store"]["base"] += link.get("base_store_us", [])
    for phys in physicians:
        for op in ("access", "observe", "update"):
            for path in ("biomt", "base"):
                delays[op][path] += phys["delays_us"][op][path]
    delay_ms: dict[str, Any] = {}
    for op in OPS:
        b, s = summarize_ms(delays[op]["biomt"]), summarize_ms(delays[op]["base"])
        delay_ms[op] = {"biomt": b, "base": s, "overhead": _overhead(b, s)}
    return delay_ms


def build_report(
    plan: LaunchPlan,
    run_dir: Path,
    timings: dict[str, float],
    exit_codes: dict[str, int | None],
    keystore: Keystore,
    history: list[dict[str, Any]],
    patient: str,
) -> dict[str, Any]:
    results = run_dir / "results"
    devices = [r for r in _read_jsonl(results / "devices.jsonl") if r.get("record") == "device"]
    physicians: list[dict[str, Any]] = []
    requests: list[dict[str, Any]] = []
    for file in sorted(results.glob("dr_*.jsonl")):
        for r in _read_jsonl(file):
            if r.get("record") == "physician":
                physicians.append(r)
            elif r.get("record") == "request":
                requests.append(r)
    bolsters = [
        r
        for b in plan.facts["biomt"]["bolsters"]
        for r in _read_jsonl(results / f"{b}.jsonl")
        if r.get("record") == "bolster"
    ]
    clouds = [r for r in _read_jsonl(results / "cloud.jsonl") if r.get("record") == "cloud"]
    masters = [r for r in _read_jsonl(results / "master.jsonl") if r.get("record") == "master"]

    delay_ms = _delay_ms(devices, physicians)
    cpu = _merge_lists(bolsters, "cpu_us")
    cpu_report: dict[str, Any] = {}
    for op in ("store", "access", "observe"):
        b, s = _cpu(cpu.get(op, [])), _cpu(cpu.get(f"base/{op}", []))
        increase = (
            None
            if not (b["mean_us"] and s["mean_us"])
            else round(100 * (b["mean_us"] - s["mean_us"]) / s["mean_us"], 1)
        )
        cpu_report[op] = {"biomt": b, "base": s, "increase_pct": increase}
    server_wall = _merge_lists(bolsters, "wall_us")

    outcomes = Counter(r["outcome"] for r in requests)
    events: Counter[str] = Counter()
    for d in devices:
        for k, v in ((d.get("biomt") or {}).get("events") or {}).items():
            events[f"device_{k}"] += v
    sharing_in_history = Counter(
        h["detail"].split(" ", 1)[0]
        for h in history
        if "sharing framework" in str(h.get("detail", ""))
    )
    report: dict[str, Any] = {
        "schema": "iomt.experiments.biomt/1",
        "topology": plan.topology,
        "mode": "biomt",
        "devices": int(plan.facts["devices"]),
        "facts": {k: v for k, v in plan.facts.items() if k != "expect"},
        "timings": timings,
        "exit_codes": exit_codes,
        "delay_ms": delay_ms,
        "server_wall_ms": {op: summarize_ms(v) for op, v in sorted(server_wall.items())},
        "bolster_cpu_per_tx": cpu_report,
        "phases_us": _merge_phases(bolsters, "phases"),
        "base_phases_us": _merge_phases(bolsters, "base_phases"),
        "target_overhead_p50_ms": TARGET_OVERHEAD_P50_MS,
        "paper": PAPER,
        "provisioning": {
            "devices": len(devices),
            "provisioned": sum(1 for d in devices if (d.get("biomt") or {}).get("pseudonym")),
            "enrol_ms": summarize_ms(
                1e6 * d["biomt"]["enrolled_s"]
                for d in devices
                if (d.get("biomt") or {}).get("enrolled_s") is not None
            ),
            "stores_acknowledged": sum(
                (d.get("biomt") or {}).get("counts", {}).get("acknowledged", 0) for d in devices
            ),
        },
        # from the devices' ack logs (flushed per Store: they survive a device crash too)
        "stores": _acknowledged(plan, run_dir),
        "physicians": {
            "sessions": bool(physicians) and all(p.get("sessions") for p in physicians),
            "counts": dict(sum((Counter(p["counts"]) for p in physicians), Counter())),
            "errors": dict(sum((Counter(p["errors"]) for p in physicians), Counter())),
        },
        "sharing": {
            "requests": len(requests),
            **{k: outcomes.get(k, 0) for k in ("shared", "converted", "refused", "failed")},
            "refusal_reasons": dict(
                Counter(
                    str(r.get("reason", "")).split(":", 1)[0]
                    for r in requests
                    if r["outcome"] in ("refused", "failed")
                ).most_common()
            ),
            "resent": sum(1 for r in requests if r.get("resent")),
            "device_events": dict(events),
        },
        "history": {
            "patient": patient,
            "entries": len(history),
            "by_type": dict(Counter(h.get("type", "?") for h in history)),
            "by_evidence": dict(Counter(h.get("evidence", "?") for h in history)),
            "sharing_events": dict(sharing_in_history),
            "sample": history[:12],
        },
        "ledgers": _ledgers(plan, run_dir, keystore),
        "ledger_streams": _ledger_streams(plan, run_dir),
        "clusters": [b.get("cluster") for b in bolsters],
        "cloud": clouds[0] if clouds else None,
        "master": masters[0] if masters else None,
        "bolsters": [
            {
                k: b[k]
                for k in (
                    "bolster",
                    "synchronous",
                    "transactions",
                    "blocks",
                    "devices",
                    "cloud",
                    "master",
                    "outcomes",
                    "process_cpu_s",
                )
                if k in b
            }
            for b in bolsters
        ],
    }
    bag = run_dir / "bag"
    if (bag / "metadata.yaml").exists():  # not a bag a crashed recorder left open
        radio = RadioMap.from_plan(plan)
        radio.save(run_dir / "radio.json")
        audited = bag_audit(bag, radio=radio).to_json(max_items=20)
        report["traffic"] = {
            k: audited.get(k)
            for k in (
                "messages_scanned",
                "transmissions",
                "readable",
                "readable_share",
                "by_hop",
                "by_radio_hops",
            )
        }
        summary = bag_info(bag)
        report["traffic"]["ledger_messages"] = sum(
            t.count for t in summary.topics if t.type == "iomt_interfaces/msg/BiomtTransaction"
        )
        (run_dir / "audit.json").write_text(json.dumps(audited, indent=2), encoding="utf-8")
    report["plots"] = write_plots(report, run_dir / "plots")
    # data at rest: the devices' stored readings against their MAC chains, file modes (the
    # ledgers and the bolsters' local storage are under "ledgers")
    report["at_rest"] = at_rest_report(run_dir)
    return report


# --- plots and markdown ----------------------------------------------------------------


def write_plots(report: dict[str, Any], out: Path) -> list[str]:
    """Fig. 3 and Fig. 4 as measured: delay and bolster CPU per transaction type, base vs
    BIoMT (PNG, matplotlib's Agg backend). Returns the files written."""
    import matplotlib  # noqa: PLC0415 (heavy: only when plotting)

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    out.mkdir(parents=True, exist_ok=True)
    written: list[str] = []
    labels = ["Store", "Access", "Observe", "Observe update"]
    ops = list(OPS)
    x = list(range(len(ops)))
    width = 0.38

    def bars(
        ax: Any, series: dict[str, list[float | None]], errs: dict[str, list[list[float]]] | None
    ) -> None:
        for i, (name, color) in enumerate((("base", "#9aa5b1"), ("biomt", "#c0392b"))):
            values = [v or 0.0 for v in series[name]]
            pos = [p + (i - 0.5) * width for p in x]
            ax.bar(
                pos,
                values,
                width,
                label="no-crypto base" if name == "base" else "BIoMT",
                color=color,
                yerr=None if errs is None else errs[name],
                capsize=3,
            )
            for px, v in zip(pos, values, strict=True):  # the median, readable at any scale
                if v > 0:
                    ax.annotate(
                        f"{v:.2f}",
                        (px, v),
                        textcoords="offset points",
                        xytext=(0, 2),
                        ha="center",
                        fontsize=7,
                    )

    fig, ax = plt.subplots(figsize=(7, 4))
    d = report["delay_ms"]
    series = {p: [d[op][p]["p50"] for op in ops] for p in ("base", "biomt")}
    errs = {  # one-sided: from the p50 bar up to the p95
        p: [
            [0.0] * len(ops),
            [max(0.0, (d[op][p]["p95"] or 0.0) - (d[op][p]["p50"] or 0.0)) for op in ops],
        ]
        for p in ("base", "biomt")
    }
    bars(ax, series, errs)
    ax.set_yscale("log")  # p95 whiskers of hundreds of ms would flatten medians of a few ms
    paper_ms = PAPER["fig3_max_overhead_ms"]
    ax.axhline(paper_ms, color="black", ls="--", lw=1, label=f"paper: {paper_ms:g} ms at worst")
    ax.set_xticks(x, labels)
    ax.set_ylabel("end-to-end delay, ms (log; p50 bar, whisker to p95)")
    ax.set_title(f"{report['topology']}: delay per transaction (cf. Fig. 3)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = out / "delay_per_transaction.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    written.append(str(path))

    fig, ax = plt.subplots(figsize=(7, 4))
    c = report["bolster_cpu_per_tx"]
    cops = ["store", "access", "observe"]
    xs = list(range(len(cops)))
    for i, (name, color) in enumerate((("base", "#9aa5b1"), ("biomt", "#c0392b"))):
        values = [c[op][name]["mean_us"] or 0.0 for op in cops]
        ax.bar(
            [p + (i - 0.5) * width for p in xs],
            values,
            width,
            color=color,
            label="no-crypto base" if name == "base" else "BIoMT",
        )
    ax.set_xticks(xs, ["Store", "Access", "Observe"])
    ax.set_ylabel("bolster CPU time per transaction, µs (mean)")
    ax.set_title("bolster CPU per transaction (stand-in for Fig. 4's power)")
    ax.legend()
    fig.tight_layout()
    path = out / "bolster_cpu_per_transaction.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    written.append(str(path))
    return written


def _miss(d: dict[str, Any], r: dict[str, Any], op: str) -> str:
    """A flag on a Store/Access/Observe row whose p50 overhead misses the target."""
    overhead = d["overhead"]["p50_ms"]
    target = r.get("target_overhead_p50_ms", TARGET_OVERHEAD_P50_MS)
    if op == "update" or overhead is None or overhead <= target:
        return ""
    return f" ⚠ misses {target:g} ms"


def _f(v: Any, digits: int = 3) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def render_markdown(r: dict[str, Any]) -> str:
    b = r["facts"]["biomt"]
    lines = [
        f"# {r['topology']} — BIoMT (E3)",
        "",
        f"{r['devices']} devices on {len(b['bolsters'])} bolsters "
        f"({', '.join(f'{k}: {len(v)}' for k, v in b['bolsters'].items())}), "
        f"clusters {b['clusters']}, master `{b['master'] or '-'}`, ledger SQLite "
        f"synchronous={b['synchronous']}; physicians on "
        + ("user sessions" if b.get("sessions", True) else "signed requests")
        + f"; run dir `{r['facts'].get('run_dir')}`.",
        "",
        "## Delay per transaction (client-side, end to end over DDS) — cf. Fig. 3",
        "",
        "| transaction | base p50 | BIoMT p50 | base p95 | BIoMT p95 | overhead p50 "
        "| overhead mean | n (BIoMT/base) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    names = {"store": "Store", "access": "Access", "observe": "Observe", "update": "Observe update"}
    for op in OPS:
        d = r["delay_ms"][op]
        lines.append(
            f"| {names[op]} | {_f(d['base']['p50'])} | {_f(d['biomt']['p50'])} | "
            f"{_f(d['base']['p95'])} | {_f(d['biomt']['p95'])} | "
            f"**{_f(d['overhead']['p50_ms'])}**{_miss(d, r, op)} | "
            f"{_f(d['overhead']['mean_ms'])} | {d['biomt']['n']}/{d['base']['n']} |"
        )
    lines += [
        "",
        f"Milliseconds. The paper: at most {PAPER['fig3_max_overhead_ms']:g} ms overhead; "
        f"target here: p50 overhead <= {r['target_overhead_p50_ms']:g} ms per Store, Access "
        "and Observe.",
        "",
        "## Bolster CPU time per transaction — stand-in for Fig. 4",
        "",
        "| transaction | base mean µs | BIoMT mean µs | increase | n |",
        "|---|---|---|---|---|",
    ]
    for op in ("store", "access", "observe"):
        c = r["bolster_cpu_per_tx"][op]
        inc = c["increase_pct"]
        lines.append(
            f"| {names[op]} | {_f(c['base']['mean_us'], 1)} | {_f(c['biomt']['mean_us'], 1)} | "
            f"{'-' if inc is None else f'+{inc:.0f} %'} | {c['biomt']['n']} |"
        )
    lines += [
        "",
        f"The paper: Observe costs most, +{PAPER['fig4_observe_increase_mw']} mW "
        f"(~{PAPER['fig4_observe_increase_pct']:g} %) over the base.",
        "",
        "Where the bolster's time goes (core cost meter, medians, µs):",
        "",
        "| operation | n | total | crypto | ledger | policy | other |",
        "|---|---|---|---|---|---|---|",
    ]
    for op, row in sorted(r["phases_us"].items()):
        lines.append(
            f"| {op} | {row['count']} | {_f(row.get('median_us'), 1)} | "
            f"{_f(row.get('crypto_us'), 1)} | {_f(row.get('ledger_us'), 1)} | "
            f"{_f(row.get('policy_us'), 1)} | {_f(row.get('other_us'), 1)} |"
        )
    s, h, pv = r["sharing"], r["history"], r["provisioning"]
    st = r.get("stores") or {}
    lines += [
        "",
        "## The rest of the run",
        "",
        f"* Provisioning: {pv['provisioned']}/{pv['devices']} devices provisioned through "
        f"admin approval (p50 {_f(pv['enrol_ms']['p50'], 0)} ms after start); "
        f"{pv['stores_acknowledged']} Stores acknowledged.",
        f"* Acknowledged Stores in the ledgers: {st.get('in_ledgers', '-')} of "
        f"{st.get('acknowledged', '-')} (lost: {st.get('lost', '-')}).",
        f"* Sharing framework: {s['requests']} requests — shared {s['shared']}, converted "
        f"{s['converted']}, refused {s['refused']}, failed {s['failed']}; device events "
        f"{s['device_events']}.",
        f"* Patient `{h['patient']}` read {h['entries']} history entries: {h['by_type']}; "
        f"evidence {h.get('by_evidence', {})}; sharing events among them: "
        f"{h['sharing_events']}.",
        f"* Physicians: {r['physicians']['counts']}; errors {r['physicians']['errors'] or 'none'}.",
    ]
    for name, row in r["ledgers"].items():
        stream = r["ledger_streams"].get(name)
        local = row.get("local_storage") or {}
        lines.append(
            f"* Ledger `{name}`: audit {row.get('audit')}, {row.get('transactions')} "
            f"transactions in {row.get('blocks')} blocks {row.get('by_type', '')}; local "
            f"storage {local.get('audit', '-')} ({local.get('present', '-')} records)"
            + (
                f"; ~/ledger in the bag: {stream['matching']}/{stream['ledger']} transactions"
                if stream
                else ""
            )
        )
    for c in r["clusters"]:
        if c:
            lines.append(
                f"* Cluster `{c['cluster']}` member term {c['term']}, head: {c['is_head']}, "
                f"checkpoints cosigned {c['witnessed']}, flagged {c['flagged'] or 'none'}."
            )
    if r.get("cloud"):
        lines.append(f"* Cloud: {r['cloud']}.")
    sync = r.get("cloud_sync")
    if sync:
        lagging = sorted(b for b, row in sync["bolsters"].items() if not row["caught_up"])
        lines.append(
            f"* Cloud sync at the end of the run: what every bolster's ledger held when the "
            f"workload ended is sealed and in the cloud (waited {sync['waited_s']} s)."
            if not lagging
            else f"* Cloud sync at the end of the run: **{', '.join(lagging)} had not caught "
            f"up** after {sync['waited_s']} s ({ {b: sync['bolsters'][b] for b in lagging} })."
        )
    if r.get("master"):
        lines.append(f"* Master bolster: {r['master']}.")
    t = r.get("traffic")
    if t:
        lines.append(
            f"* Bag audit: {t['readable']} of {t['transmissions']} "
            f"reading-bearing transmissions readable without a key (by hop: {t['by_hop']}); "
            f"{t['ledger_messages']} ledger transactions recorded."
        )
    lines += [
        f"* {supervision_line(r.get('supervision'))}",
        f"* {at_rest_line(r.get('at_rest'))}",
        "",
        f"Plots: {', '.join(r['plots']) or '(matplotlib unavailable)'}",
        "",
        f"Timings: {r['timings']}",
        "",
    ]
    return "\n".join(lines)
