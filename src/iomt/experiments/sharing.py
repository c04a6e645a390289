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
import os
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from iomt.capture import RadioMap, audit
from iomt.errors import ConfigurationError, TransportError
from iomt.experiments import resources
from iomt.experiments.at_rest import at_rest_line, at_rest_report
from iomt.experiments.stats import summarize_ms
from iomt.launch.affinity import resolve_policy
from iomt.launch.provision import provision
from iomt.launch.service import (
    LaunchService,
    RestartPolicy,
    ensure_domain_free,
    private_files,
    supervision_line,
)
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
    # Keep the ward up after the workload, until Ctrl-C (for ROS 2 tools and robots to use)
    hold: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    # crashed processes are restarted (iomt.launch.service); NO_RESTARTS: a crash ends the run
    restart: RestartPolicy = field(default_factory=RestartPolicy)
    # process-name pattern -> command prefix running it elsewhere (LaunchService.placement)
    placement: dict[str, list[str]] = field(default_factory=dict)
    # refuse a domain where another ward runs (iomt.launch.service.ensure_domain_free)
    check_domain: bool = True
    #: leave the bag's audit (Fig. 6's numbers) to ``complete_audit``: ``iomt reproduce``
    #: runs it at the lowest CPU priority while the next run goes
    audit_later: bool = False
    #: CPU placement of the ward's processes (iomt.launch.affinity: auto, split or off)
    cpus: str = "auto"

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
        # Fast DDS carries a service request's identity outside the payload: on the rclpy
        # runtime the recorder keeps to topics (docs/ros2.md).
        record_services=cfg.runtime == "embedded",
        **cfg.extra,
    )
    if not plan.identities:
        raise ConfigurationError(f"{cfg.topology} is not an experiment topology (scale_N)")
    return plan


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
    """Run the experiment and write its reports. On Ctrl-C or SIGTERM (KeyboardInterrupt)
    the ward is stopped, a partial report is written from what finished, and the
    interrupt is raised again with ``report["interrupted"]`` set in the files. Everything
    the run writes is owner-only (umask 077 meanwhile): readings, keys, ledgers, bags."""
    with private_files():
        return _run(cfg, on_progress=on_progress)


def _run(cfg: ExperimentConfig, *, on_progress: ProgressCallback | None = None) -> dict[str, Any]:
    run_dir = cfg.resolved_run_dir()
    plan = plan_for(cfg, run_dir)
    if cfg.check_domain:
        ensure_domain_free(plan, domain_id=cfg.domain_id, dds_config=cfg.dds_config)
    t0 = time.monotonic()
    provision(plan)
    provision_s = time.monotonic() - t0
    providers = list(plan.facts["providers"])
    driver_cpu0 = resources.cpu_sample_of_driver()
    watcher = _ProgressWatcher(cfg.domain_id, cfg.dds_config)
    timings: dict[str, float] = {"provision_s": round(provision_s, 3)}
    interrupted = False
    codes: dict[str, int | None] = {}
    cpu: dict[str, Any] = {}
    pss: dict[str, float] = {}
    try:
        with LaunchService(
            plan,
            run_dir=run_dir,
            domain_id=cfg.domain_id,
            dds_config=cfg.dds_config,
            runtime=cfg.runtime,
            restart=cfg.restart,
            placement=cfg.placement,
            cpus=resolve_policy(cfg.cpus, outstanding=len(providers) * cfg.concurrency),
        ) as service:
            timings["ready_s"] = round(service.start(ready_timeout_s=180), 3)
            cpu.update(at_ready=resources.cpu_sample(service), placement=service.cpu_placement)
            t_work = time.monotonic()
            cpu["t_ready"] = t_work
            try:
                _follow(cfg, service, watcher, providers, t_work, on_progress)
            except KeyboardInterrupt:
                interrupted = True
            timings["workload_s"] = round(time.monotonic() - t_work, 3)
            cpu["at_end"] = resources.cpu_sample(service)
            if not interrupted:
                service.settle()  # a process restarting now comes back before the ward stops
                pss = resources.pss_by_process(service)
                timings["memory_pss_mib"] = round(sum(pss.values()), 1)
                if cfg.hold:
                    _hold(service)
            # Providers write their FHIR bundles as they stop (~3 ms per distinct reading).
            t_stop = time.monotonic()
            codes = service.stop(timeout_s=30 + 0.005 * cfg.requests)
            timings["stop_s"] = round(time.monotonic() - t_stop, 3)
            supervision = service.supervision_report()
    finally:
        watcher.close()
    report = build_report(plan, run_dir, timings, codes, audit_bag=not cfg.audit_later)
    report["method"] = method_note(cfg, plan)
    report["supervision"] = supervision
    if interrupted:
        report["interrupted"] = True
    if "at_end" in cpu:
        report["resources"] = _resources(report, run_dir, timings, cpu, pss, driver_cpu0)
    _write_report(report, run_dir)
    if interrupted:
        raise KeyboardInterrupt
    return report


def _resources(
    report: dict[str, Any],
    run_dir: Path,
    timings: dict[str, float],
    cpu: dict[str, Any],
    pss: dict[str, float],
    driver_cpu0: float,
) -> dict[str, Any]:
    """The ward's CPU and memory from the samples taken at ready and at the end."""
    summary = resources.summarize(
        at_ready=cpu["at_ready"],
        at_end=cpu["at_end"],
        driver_at_start=driver_cpu0,
        requests=int(report["requests"]["total"]),
        workload_s=timings["workload_s"],
        ready_s=timings["ready_s"],
        pss_mib=pss,
    )
    summary["warmup_s"] = _warmup(run_dir, cpu["t_ready"])
    summary["cpu_placement"] = {k: list(v) for k, v in cpu["placement"].items()}
    return summary


def _write_report(report: dict[str, Any], run_dir: Path) -> None:
    report["plots"] = write_plots(report, run_dir / "plots")
    (run_dir / "report.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    (run_dir / "report.md").write_text(render_markdown(report), encoding="utf-8")


def _follow(
    cfg: ExperimentConfig,
    service: LaunchService,
    watcher: _ProgressWatcher,
    providers: list[str],
    t_work: float,
    on_progress: ProgressCallback | None,
) -> None:
    """Wait until every provider finished its workload (or raise why not)."""
    deadline = t_work + cfg.timeout_s
    while True:
        snap = watcher.snapshot()
        summary = _progress_summary(snap, providers, cfg.requests)
        if on_progress is not None:
            on_progress(summary)
        if summary["finished"] == len(providers):
            return
        service.supervise()  # restarts what crashed; raises if it keeps crashing
        if time.monotonic() > deadline:
            raise TransportError(f"workload not finished within {cfg.timeout_s:g} s: {summary}")
        time.sleep(0.2)


def method_note(cfg: ExperimentConfig, plan: LaunchPlan) -> dict[str, Any]:
    """How this run differs from the paper's simulators (printed next to the paper's numbers)."""
    return {
        "paper": "two simulators (centralized, distributed), 400 simulated devices, 100,000 "
        "data requests; Table 2 gives mean times in ms, no hardware or concurrency stated",
        "processes": len(plan.processes),
        "cores": os.cpu_count(),
        "providers": len(plan.facts["providers"]),
        "outstanding_per_provider": cfg.concurrency,
        "recorder": bool(cfg.record),
        "runtime": cfg.runtime,
        "crypto": "on: CWT tokens with proof of possession, sessions, ECIES / CP-ABE sealing, "
        "ECDSA / Ed25519 / HMAC on every envelope"
        if plan.facts["mode"] != "base"
        else "off (the no-security base)",
        "access_time": "provider: from sending the request to holding the verified, decrypted "
        "reading",
        "data_transfer_time": "device: from sampling a reading to having it stored "
        "(distributed: sealed in local storage; centralized: upload acknowledged)",
    }


def _hold(service: LaunchService) -> None:
    """Keep the ward running (and supervised) until Ctrl-C."""
    try:
        while True:
            service.supervise()
            time.sleep(0.5)
    except KeyboardInterrupt:
        return


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


def _request_records(run_dir: Path) -> list[dict[str, Any]]:
    return [
        r
        for p in sorted((run_dir / "results").glob("dr_*.jsonl"))
        for r in _read_jsonl(p)
        if r.get("record") == "request"
    ]


def build_report(
    plan: LaunchPlan,
    run_dir: Path,
    timings: dict[str, float],
    exit_codes: dict[str, int | None],
    *,
    audit_bag: bool = True,
) -> dict[str, Any]:
    """The run's report from its results files, with the bag's audit (``audit_bag``) or a
    note that ``complete_audit`` is still to add it."""
    results = run_dir / "results"
    requests = _request_records(run_dir)
    devices = [r for r in _read_jsonl(results / "devices.jsonl") if r.get("record") == "device"]
    outcomes = Counter(r["outcome"] for r in requests)
    ok = [r for r in requests if r["outcome"] in ("shared", "converted")]
    reasons = Counter(
        r.get("reason", "").split(":", 1)[0]
        for r in requests
        if r["outcome"] in ("refused", "failed")
    )
    refusals = Counter(_reason(r) for r in requests if r["outcome"] == "refused")
    failures = Counter(_reason(r) for r in requests if r["outcome"] == "failed")
    workload_s = timings.get("workload_s")
    n = int(plan.facts["devices"])
    mode = str(plan.facts["mode"])
    report: dict[str, Any] = {
        "schema": "iomt.experiments.sharing/1",
        "topology": plan.topology,
        "mode": mode,
        "devices": n,
        "facts": dict(plan.facts),
        "timings": timings,
        "exit_codes": exit_codes,
        "requests": {
            "total": len(requests),
            **{k: outcomes.get(k, 0) for k in ("shared", "converted", "refused", "failed")},
            "refusal_reasons": dict(reasons.most_common()),
            "refusals": dict(refusals.most_common()),
            "failures": dict(failures.most_common()),
            "per_second": round(len(requests) / workload_s, 1) if workload_s else None,
            # sent again on a new session: the device had been restarted and lost ours
            "resent": sum(1 for r in requests if r.get("resent")),
            # replies the providers' calls ignored: not proven to be the server's answer
            "rejected_replies": sum(
                int(r.get("rejected_replies", 0))
                for p in sorted(results.glob("dr_*.jsonl"))
                for r in _read_jsonl(p)
                if r.get("record") == "provider"
            ),
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
    if (bag / "metadata.yaml").exists():  # not a bag a crashed recorder left open
        # Hop distances are measured on the ward's radio graph (where the topology placed
        # the devices), kept next to the bag for `iomt bag audit --radio`.
        radio = RadioMap.from_plan(plan)
        radio.save(run_dir / "radio.json")
        if audit_bag:
            _add_traffic(report, run_dir, radio, ok)
        else:
            report["audit_pending"] = True
    # data at rest: the devices' stored readings against their MAC chains, file modes
    report["at_rest"] = at_rest_report(run_dir)
    return report


def _add_traffic(
    report: dict[str, Any], run_dir: Path, radio: RadioMap, ok: list[dict[str, Any]]
) -> None:
    """Audit the run's bag (what crossed the wire readable, judged from the bytes) into
    ``report["traffic"]`` and ``audit.json``."""
    bag = run_dir / "bag"
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


def complete_audit(run_dir: Path) -> dict[str, Any]:
    """Add the bag's audit to a report written with ``audit_later``: the traffic section,
    ``audit.json``, the plots and both report files. Returns the completed report."""
    report: dict[str, Any] = json.loads((run_dir / "report.json").read_text(encoding="utf-8"))
    if report.pop("audit_pending", False):
        ok = [r for r in _request_records(run_dir) if r["outcome"] in ("shared", "converted")]
        _add_traffic(report, run_dir, RadioMap.load(run_dir / "radio.json"), ok)
        report["plots"] = write_plots(report, run_dir / "plots")
        (run_dir / "report.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
        (run_dir / "report.md").write_text(render_markdown(report), encoding="utf-8")
    return report


_IDS = re.compile(r"\b[0-9a-f]{16,}\b|\bissued-[0-9]+\b")


def _reason(record: dict[str, Any]) -> str:
    """A refusal or failure reason with request ids left out, so equal causes group."""
    return _IDS.sub("…", str(record.get("reason", "")) or "(no reason given)")


def _fmt(v: Any, unit: str = "") -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3f}{unit}"
    return f"{v}{unit}"


_TIMING_LABELS = {
    "provision_s": "provisioning keys (s)",
    "ready_s": "start-up until every process was READY (s)",
    "workload_s": "workload (s)",
    "memory_pss_mib": "memory, all processes (PSS, MiB)",
    "stop_s": "stopping, FHIR export included (s)",
}


def _traffic_lines(r: dict[str, Any]) -> list[str]:
    """The report's section on what crossed the wire readable (from the bag's audit)."""
    lines: list[str] = []
    paper = r["paper"]
    traffic = r.get("traffic")
    if r.get("audit_pending"):
        lines += [
            "",
            "The bag's audit (what crossed the wire readable) is still running; this report "
            "is rewritten with it (or run `iomt bag audit` on the bag).",
        ]
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
    return lines


def render_markdown(r: dict[str, Any]) -> str:
    req = r["requests"]
    a, dt = r["access_time_ms"], r["data_transfer_time_ms"]
    paper = r["paper"]
    lines = [f"# {r['topology']} — {r['mode']}", ""]
    if r.get("interrupted"):
        lines += [
            "**Interrupted** (Ctrl-C or SIGTERM): the ward was stopped before its workload "
            "finished; this report covers what was done until then.",
            "",
        ]
    lines += [
        f"{r['devices']} devices ({r['facts'].get('capabilities')}), {req['total']} requests; "
        f"run dir `{r['facts'].get('run_dir')}`.",
        "",
        "| requests | shared | converted | refused | failed | per second |",
        "|---|---|---|---|---|---|",
        f"| {req['total']} | {req['shared']} | {req['converted']} | {req['refused']} | "
        f"{req['failed']} | {_fmt(req.get('per_second'))} |",
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
    method = r.get("method")
    if method:
        lines += [
            "",
            f"*Method.* The paper: {method['paper']}. Here: real processes "
            f"({method['processes']}) on this machine's {method['cores']} cores, "
            f"{method['providers']} providers with {method['outstanding_per_provider']} "
            f"request(s) outstanding each, the {method['runtime']} runtime, crypto "
            f"{method['crypto']}, the bag recorder "
            f"{'on' if method['recorder'] else 'off'}. Access time: "
            f"{method['access_time']}. Data-transfer time: {method['data_transfer_time']}. "
            "Times include queueing behind the other outstanding requests and whatever "
            "else the machine runs; the paper's simulators' absolute numbers are not "
            "comparable one to one, its trends are.",
        ]
    uploads = r.get("uploads")
    if uploads:
        lines += [
            "",
            f"Uploads to the central server: {uploads['retried']} retried, "
            f"{uploads['dropped']} dropped unacknowledged (backlog full), "
            f"{uploads['unacknowledged']} still unacknowledged at shutdown.",
        ]
    for title, table in (
        ("Refused (the ward said no)", req.get("refusals")),
        ("Failed (no valid answer)", req.get("failures")),
    ):
        if table:
            lines += ["", f"| {title} | n |", "|---|---|"]
            lines += [f"| {reason} | {n} |" for reason, n in table.items()]
    lines += _traffic_lines(r)
    lines += resources.render_lines(r.get("resources") or {})
    lines += [
        "",
        supervision_line(r.get("supervision")),
        "",
        at_rest_line(r.get("at_rest")),
    ]
    lines += ["", "## Run", "", "| | |", "|---|---|"]
    for key, value in r["timings"].items():
        lines.append(f"| {_TIMING_LABELS.get(key, key)} | {_fmt(value)} |")
    for plot in r.get("plots") or []:
        lines += ["", f"![{Path(plot).stem}](plots/{Path(plot).name})"]
    lines.append("")
    return "\n".join(lines)


def write_plots(report: dict[str, Any], out: Path) -> list[str]:
    """This run's access-time distribution and what an eavesdropper could read, per hop
    (PNG, matplotlib's Agg backend). Returns the files written."""
    import matplotlib  # noqa: PLC0415 (heavy: only when plotting)

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    run_dir = Path(str(report["facts"].get("run_dir", out.parent)))
    ok = [
        r
        for p in sorted((run_dir / "results").glob("dr_*.jsonl"))
        for r in _read_jsonl(p)
        if r.get("record") == "request" and r.get("outcome") in ("shared", "converted")
    ]
    if not ok:
        return []
    out.mkdir(parents=True, exist_ok=True)
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for outcome, color in (("shared", "#2e86c1"), ("converted", "#c0392b")):
        values = sorted(r["access_us"] / 1000 for r in ok if r["outcome"] == outcome)
        if values:
            ys = [(i + 1) / len(values) for i in range(len(values))]
            left.step(values, ys, where="post", color=color, label=f"{outcome} ({len(values)})")
    if report["paper"].get("access_ms"):
        left.axvline(report["paper"]["access_ms"], color="black", ls="--", lw=1)
        left.text(report["paper"]["access_ms"], 0.02, " paper (mean)", fontsize=8)
    left.set_xscale("log")
    left.set_xlabel("access time, ms (log)")
    left.set_ylabel("share of requests")
    left.set_title(f"{report['topology']} {report['mode']}: access time")
    left.legend(loc="lower right")
    traffic = report.get("traffic") or {}
    hops = traffic.get("by_hop") or {}
    names = list(hops)
    right.bar(names, [hops[h]["transmissions"] for h in names], color="#d5d8dc", label="all")
    right.bar(names, [hops[h]["readable"] for h in names], color="#c0392b", label="readable")
    right.set_title("reading-bearing transmissions, judged from the bag")
    right.tick_params(axis="x", labelrotation=15)
    right.legend()
    fig.tight_layout()
    path = out / "access_and_traffic.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [str(path)]
