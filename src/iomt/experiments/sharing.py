"""Bilal & Hassan's experiments, run for real: provision a ward, launch it on DDS, drive
the providers' workload, record the traffic, and report.

    report = run(ExperimentConfig("scale_50", mode="distributed", requests=2000))

1. ``provision``: a keystore for the run (facility CA, an identity per node, CP-ABE
   attribute keys for providers), created before any node starts.
2. Launch every process of the plan (devices, wallets, providers, the central server in
   the centralized mode, and a bag recorder) with ``LaunchService``.
3. Follow ``/iomt/progress`` until every provider finished its requests (or a deadline).
4. Stop everything cleanly: devices write their data-transfer times, the recorder closes
   its bag.
5. Report: outcomes and refusal reasons, access time and data-transfer time (p50, p95,
   p99, mean), and the share of reading-bearing transmissions an eavesdropper could read,
   judged from the recorded bag by ``iomt.capture.audit`` — not from the nodes' counters.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from iomt.capture import RadioMap, audit
from iomt.crypto.keystore import Keystore
from iomt.errors import ConfigurationError, TransportError
from iomt.experiments import resources
from iomt.experiments.stats import summarize_ms
from iomt.launch.service import LaunchService
from iomt.msg import WorkloadProgress
from iomt.runtime import Context, Executor, Node
from iomt.topology import LaunchPlan, load

PAPER: dict[str, Any] = {
    # Table 2 (ms) and Experiment 1 of Bilal & Hassan, for the report's comparison column.
    "data_transfer_ms": {
        "centralized": {10: 0.290, 20: 0.381, 50: 0.553, 100: 0.674, 200: 0.8055, 400: 0.9379},
        "distributed": {10: 0.336, 20: 0.3231, 50: 0.3937, 100: 0.4307, 200: 0.46075, 400: 0.46075},
    },
    "access_ms": {
        "centralized": {10: 0.193, 20: 0.271, 50: 0.480, 100: 0.587, 200: 0.7305, 400: 0.8696},
        "distributed": {10: 0.423, 20: 0.4204, 50: 0.4904, 100: 0.5303, 200: 0.564, 400: 0.60319},
    },
    "readable_share": {"centralized": 0.80, "distributed": 0.20},
}


@dataclass
class ExperimentConfig:
    topology: str
    mode: str = "distributed"
    requests: int = 2000
    seed: int = 0
    concurrency: int = 4
    domain_id: int | None = None
    dds_config: str | None = None
    run_dir: Path | None = None
    record: bool = True
    timeout_s: float = 600.0
    runtime: str = "embedded"
    extra: dict[str, Any] = field(default_factory=dict)

    def resolved_run_dir(self) -> Path:
        return self.run_dir or Path("runs") / (
            f"{self.topology}-{self.mode}-{time.strftime('%Y%m%d-%H%M%S')}"
        )


def plan_for(cfg: ExperimentConfig, run_dir: Path) -> LaunchPlan:
    plan = load(
        cfg.topology,
        mode=cfg.mode,
        seed=cfg.seed,
        run_dir=str(run_dir),
        requests=cfg.requests,
        concurrency=cfg.concurrency,
        record=cfg.record,
        **cfg.extra,
    )
    if "identities" not in plan.facts:
        raise ConfigurationError(f"{cfg.topology} is not an experiment topology (scale_N)")
    return plan


def provision(plan: LaunchPlan) -> Keystore:
    """Create the run's keystore with every identity the plan's nodes will load."""
    path = Path(str(plan.facts["keystore"]))
    if path.exists():
        raise ConfigurationError(f"{path} exists: use a fresh run directory")
    path.parent.mkdir(parents=True, exist_ok=True)
    ks = Keystore.create(path, facility=str(plan.facts["facility"]))
    devices = set(plan.facts.get("device_names", ()))
    for name, attributes in plan.facts["identities"]:
        # Devices sign with ECDSA P-256: its verification (~65 µs here) is cheaper than
        # Ed25519's (~100 µs), and converters and providers verify device signatures on
        # the request path (orders from devices that cannot encrypt, origin proofs).
        ks.add_identity(name, algorithm="ecdsa-p256" if name in devices else "ed25519")
        if attributes:
            ks.add_attributes(name, attributes)
    return ks


ProgressCallback = Callable[[dict[str, Any]], None]


class _ProgressWatcher:
    """Follows /iomt/progress in-process (a Node of its own on the experiment's domain)."""

    def __init__(self, domain_id: int | None, dds_config: str | None) -> None:
        self.ctx = Context(domain_id=domain_id, dds_config_name=dds_config)
        self.node = Node("experiment_driver", context=self.ctx, namespace="/iomt")
        self.latest: dict[str, Any] = {}
        self._lock = threading.Lock()

        def on_progress(msg: WorkloadProgress) -> None:
            with self._lock:
                self.latest[msg.provider_uri] = {
                    "total": int(msg.requests_total),
                    "done": int(msg.requests_done),
                    "shared": int(msg.shared),
                    "converted": int(msg.converted),
                    "refused": int(msg.refused),
                    "failed": int(msg.failed),
                    "finished": bool(msg.finished),
                }

        self.node.create_subscription(WorkloadProgress, "/iomt/progress", on_progress)
        self.executor = Executor(self.ctx)
        self.executor.add_node(self.node)
        self.executor.spin_in_thread("progress")

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {k: dict(v) for k, v in self.latest.items()}

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        self.executor.close()
        self.ctx.shutdown()


def run(cfg: ExperimentConfig, *, on_progress: ProgressCallback | None = None) -> dict[str, Any]:
    run_dir = cfg.resolved_run_dir()
    plan = plan_for(cfg, run_dir)
    t0 = time.monotonic()
    provision(plan)
    provision_s = time.monotonic() - t0
    providers = list(plan.facts["providers"])
    driver_cpu0 = resources.cpu_sample_of_driver()
    watcher = _ProgressWatcher(cfg.domain_id, cfg.dds_config)
    timings: dict[str, float] = {"provision_s": round(provision_s, 3)}
    cpu: dict[str, Any] = {}
    try:
        with LaunchService(
            plan,
            run_dir=run_dir,
            domain_id=cfg.domain_id,
            dds_config=cfg.dds_config,
            runtime=cfg.runtime,
        ) as service:
            timings["ready_s"] = round(service.start(ready_timeout_s=180), 3)
            cpu["at_ready"] = resources.cpu_sample(service)
            t_work = time.monotonic()
            cpu["t_ready"] = t_work
            deadline = t_work + cfg.timeout_s
            while True:
                snap = watcher.snapshot()
                summary = _progress_summary(snap, providers, cfg.requests)
                if on_progress is not None:
                    on_progress(summary)
                if summary["finished"] == len(providers):
                    break
                dead = service.dead()
                if dead:
                    raise TransportError(f"{dead[0].spec.name} died:\n{dead[0].log_tail()}")
                if time.monotonic() > deadline:
                    raise TransportError(
                        f"workload not finished within {cfg.timeout_s:g} s: {summary}"
                    )
                time.sleep(0.2)
            timings["workload_s"] = round(time.monotonic() - t_work, 3)
            cpu["at_end"] = resources.cpu_sample(service)
            pss = resources.pss_by_process(service)
            timings["memory_pss_mib"] = round(sum(pss.values()), 1)
            # Providers write their FHIR bundles as they stop (~3 ms per distinct reading).
            t_stop = time.monotonic()
            codes = service.stop(timeout_s=30 + 0.005 * cfg.requests)
            timings["stop_s"] = round(time.monotonic() - t_stop, 3)
    finally:
        watcher.close()
    report = build_report(plan, run_dir, timings, codes)
    report["resources"] = resources.summarize(
        at_ready=cpu["at_ready"],
        at_end=cpu["at_end"],
        driver_at_start=driver_cpu0,
        requests=int(report["requests"]["total"]),
        workload_s=timings["workload_s"],
        ready_s=timings["ready_s"],
        pss_mib=pss,
    )
    report["resources"]["warmup_s"] = _warmup(run_dir, cpu["t_ready"])
    (run_dir / "report.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    (run_dir / "report.md").write_text(render_markdown(report), encoding="utf-8")
    return report


def _progress_summary(snap: dict[str, Any], providers: list[str], total: int) -> dict[str, Any]:
    done = sum(v["done"] for v in snap.values())
    return {
        "providers": len(providers),
        "reporting": len(snap),
        "finished": sum(1 for v in snap.values() if v["finished"]),
        "done": done,
        "total": total,
        **{
            k: sum(v[k] for v in snap.values())
            for k in ("shared", "converted", "refused", "failed")
        },
    }


def _warmup(run_dir: Path, t_ready: float) -> dict[str, Any]:
    """When the last provider reached each phase, in seconds after the ward was READY
    (asking the wallets, holding every grant, sending requests), and its wallet retries."""
    records = [
        r
        for p in sorted((run_dir / "results").glob("dr_*.jsonl"))
        for r in _read_jsonl(p)
        if r.get("record") == "provider"
    ]
    out: dict[str, Any] = {}
    for phase in ("asking_wallets", "grants_in", "requesting"):
        times = [r["monotonic"][phase] for r in records if phase in r.get("monotonic", {})]
        if times:
            out[phase] = round(max(times) - t_ready, 3)
    out["wallet_retries"] = sum(int(r.get("wallet_retries", 0)) for r in records)
    return out


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            out.append(json.loads(line))
    return out


def build_report(
    plan: LaunchPlan, run_dir: Path, timings: dict[str, float], exit_codes: dict[str, int | None]
) -> dict[str, Any]:
    results = run_dir / "results"
    requests = [
        r
        for p in sorted(results.glob("dr_*.jsonl"))
        for r in _read_jsonl(p)
        if r.get("record") == "request"
    ]
    devices = [r for r in _read_jsonl(results / "devices.jsonl") if r.get("record") == "device"]
    outcomes = Counter(r["outcome"] for r in requests)
    ok = [r for r in requests if r["outcome"] in ("shared", "converted")]
    reasons = Counter(
        r.get("reason", "").split(":", 1)[0]
        for r in requests
        if r["outcome"] in ("refused", "failed")
    )
    n = int(plan.facts["devices"])
    mode = str(plan.facts["mode"])
    report: dict[str, Any] = {
        "schema": "iomt.experiments.sharing/1",
        "topology": plan.topology,
        "mode": mode,
        "devices": n,
        "facts": {k: v for k, v in plan.facts.items() if k != "identities"},
        "timings": timings,
        "exit_codes": exit_codes,
        "requests": {
            "total": len(requests),
            **{k: outcomes.get(k, 0) for k in ("shared", "converted", "refused", "failed")},
            "refusal_reasons": dict(reasons.most_common()),
        },
        "access_time_ms": summarize_ms(r["access_us"] for r in ok),
        "access_time_ms_by_path": {
            path: summarize_ms(r["access_us"] for r in ok if r["outcome"] == path)
            for path in ("shared", "converted")
        },
        "access_time_ms_by_technique": {
            t: summarize_ms(r["access_us"] for r in ok if r["technique"] == t)
            for t in sorted({r["technique"] for r in ok})
        },
        "data_transfer_time_ms": summarize_ms(
            us for d in devices for us in d.get("data_transfer_us", [])
        ),
        "devices_reporting": len(devices),
        **(
            {
                "uploads": {
                    k: sum(d["uploads"][k] for d in devices if "uploads" in d)
                    for k in ("retried", "dropped", "unacknowledged")
                }
            }
            if mode == "centralized"
            else {}
        ),
        "paper": {
            "access_ms": PAPER["access_ms"].get(mode, {}).get(n),
            "data_transfer_ms": PAPER["data_transfer_ms"].get(mode, {}).get(n),
            "readable_share": PAPER["readable_share"].get(mode),
        },
    }
    bag = run_dir / "bag"
    if bag.exists():
        # Hop distances are measured on the ward's radio graph (where the topology placed
        # the devices), kept next to the bag for `iomt bag audit --radio`.
        radio = RadioMap.from_plan(plan)
        radio.save(run_dir / "radio.json")
        report_ = audit(bag, radio=radio)
        audited = report_.to_json(max_items=50)
        exposed = {(t.device, t.reading_seq) for t in report_.readable_transmissions}
        linked = [r for r in ok if "seq" in r]
        hit = sum((r["device"], r["seq"]) in exposed for r in linked)
        report["traffic"] = {
            k: audited.get(k)
            for k in (
                "messages_scanned",
                "transmissions",
                "readable",
                "readable_share",
                "by_hop",
                "by_radio_hops",
                "by_kind",
                "by_technique",
                "unsigned_envelopes",
                "label_mismatches",
            )
        }
        # The paper's framing ("x % of the requests were transferred in plain text"): of
        # the requests answered, how many got a reading that crossed the network readable
        # somewhere (matched by device and sequence number to the bag's readable findings).
        report["traffic"]["requests_answered"] = len(linked)
        report["traffic"]["requests_with_exposed_reading"] = hit
        report["traffic"]["exposed_request_share"] = hit / len(linked) if linked else None
        (run_dir / "audit.json").write_text(json.dumps(audited, indent=2), encoding="utf-8")
    return report


def _fmt(v: Any, unit: str = "") -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3f}{unit}"
    return f"{v}{unit}"


def render_markdown(r: dict[str, Any]) -> str:
    req = r["requests"]
    a, dt = r["access_time_ms"], r["data_transfer_time_ms"]
    paper = r["paper"]
    lines = [
        f"# {r['topology']} — {r['mode']}",
        "",
        f"{r['devices']} devices, {req['total']} requests "
        f"({r['facts'].get('capabilities')}); run dir `{r['facts'].get('run_dir')}`.",
        "",
        "| requests | shared | converted | refused | failed |",
        "|---|---|---|---|---|",
        f"| {req['total']} | {req['shared']} | {req['converted']} | {req['refused']} | "
        f"{req['failed']} |",
        "",
        "| time (ms) | p50 | p95 | p99 | mean | n | paper (mean) |",
        "|---|---|---|---|---|---|---|",
        f"| access time | {_fmt(a['p50'])} | {_fmt(a['p95'])} | {_fmt(a['p99'])} | "
        f"{_fmt(a['mean'])} | {a['n']} | {_fmt(paper['access_ms'])} |",
        f"| data-transfer time | {_fmt(dt['p50'])} | {_fmt(dt['p95'])} | {_fmt(dt['p99'])} | "
        f"{_fmt(dt['mean'])} | {dt['n']} | {_fmt(paper['data_transfer_ms'])} |",
    ]
    for path, s in r["access_time_ms_by_path"].items():
        if s["n"]:
            lines.append(
                f"| access, {path} | {_fmt(s['p50'])} | {_fmt(s['p95'])} | "
                f"{_fmt(s['p99'])} | {_fmt(s['mean'])} | {s['n']} | |"
            )
    uploads = r.get("uploads")
    if uploads:
        lines += [
            "",
            f"Uploads to the central server: {uploads['retried']} retried, "
            f"{uploads['dropped']} dropped unacknowledged (backlog full), "
            f"{uploads['unacknowledged']} still unacknowledged at shutdown.",
        ]
    if req["refusal_reasons"]:
        lines += [
            "",
            "Refusals and failures: "
            + ", ".join(f"{k or '(none)'} {v}" for k, v in req["refusal_reasons"].items()),
        ]
    traffic = r.get("traffic")
    if traffic:
        share = traffic.get("readable_share")
        lines += [
            "",
            "## Traffic (judged from the recorded bag)",
            "",
            f"{traffic['readable']} of {traffic['transmissions']} reading-bearing "
            f"transmissions readable without a key"
            + ("" if share is None else f" ({100 * share:.1f} %)")
            + ".",
            "",
            f"Requests whose reading crossed the network readable somewhere: "
            f"{traffic.get('requests_with_exposed_reading')} of "
            f"{traffic.get('requests_answered')}"
            + (
                ""
                if traffic.get("exposed_request_share") is None
                else f" ({100 * traffic['exposed_request_share']:.1f} %)"
            )
            + f"; the paper reports {_fmt(paper['readable_share'])} of requests in "
            "plain text for this mode.",
            "",
            "| hop | transmissions | readable |",
            "|---|---|---|",
        ]
        for hop, row in (traffic.get("by_hop") or {}).items():
            lines.append(f"| {hop} | {row['transmissions']} | {row['readable']} |")
        radio_hops = traffic.get("by_radio_hops") or {}
        if radio_hops:
            lines += [
                "",
                "Readable transmissions by radio hops from the reading's device to the node "
                "that received it (off-map: a provider or server): "
                + ", ".join(f"{k} {row['readable']}" for k, row in radio_hops.items())
                + ".",
            ]
    lines += resources.render_lines(r.get("resources") or {})
    lines += ["", f"Timings: {r['timings']}", ""]
    return "\n".join(lines)
