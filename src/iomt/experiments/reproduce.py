"""``iomt reproduce``: each paper's experiments, at the paper's scale, in one command.

    reproduce(ReproduceConfig("bilal-hassan"))    # Table 2, Fig. 6, Fig. 7
    reproduce(ReproduceConfig("biomt"))           # Fig. 3, Fig. 4
    reproduce(ReproduceConfig("all"))

Bilal & Hassan: the sweep of 10, 20, 50, 100, 200 and 400 devices, each in the distributed
framework and the centralized baseline (and, with ``modes``, the no-security base), the
paper's 100,000 requests per run, every run recorded and audited from its bag. BIoMT: the
E3 run (Store / Access / Observe against the no-crypto base, bolster CPU per transaction).
Every run keeps its own directory (report.md, report.json, bag, logs, plots); this module
writes ``reproduce.md`` and ``reproduce.json`` beside them after every run (so an interrupted
sweep leaves what it finished, marked as partial), and the figures when the sweep ends or is
interrupted. The domain is checked for another ward once, before the first run: the sweep
holds it from then on, and each run's processes are gone before the next starts.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import platform
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from iomt.errors import ConfigurationError
from iomt.experiments import biomt as biomt_experiment
from iomt.experiments import sharing as sharing_experiment

PAPERS = ("bilal-hassan", "biomt", "all")
SCALES = (10, 20, 50, 100, 200, 400)
SHARING_MODES = ("distributed", "centralized", "base")
PAPER = sharing_experiment.PAPER


@dataclass(frozen=True)
class Run:
    """One run of the sweep."""

    kind: str  # "sharing" | "biomt"
    devices: int
    mode: str
    requests: int
    name: str  # its directory under the reproduce run directory

    @property
    def topology(self) -> str:
        return f"scale_{self.devices}"


@dataclass
class ReproduceConfig:
    paper: str = "all"
    requests: int = 100_000
    scales: tuple[int, ...] = SCALES
    modes: tuple[str, ...] = ("distributed", "centralized")
    concurrency: int = 1
    biomt_devices: int = 50
    biomt_ops: int = 2000
    biomt_requests: int = 2000
    seed: int = 0
    record: bool = True
    domain_id: int | None = None
    dds_config: str | None = None
    run_dir: Path | None = None
    timeout_s: float = 1800.0
    #: the providers' FHIR export at stop: not part of either paper's experiments, and at
    #: 100,000 requests most of a large ward's stopping time
    fhir: bool = False
    #: CPU placement of every sharing run's processes (iomt.launch.affinity: split or off,
    #: the same for the whole sweep so that its scales compare)
    cpus: str = "off"
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.paper not in PAPERS:
            raise ConfigurationError(f"paper must be one of {PAPERS}, not {self.paper!r}")
        if self.requests < 1 or self.concurrency < 1 or self.biomt_ops < 1:
            raise ConfigurationError("requests, concurrency and biomt ops must be at least 1")
        for n in self.scales:
            if n not in SCALES:
                raise ConfigurationError(f"no topology scale_{n}; scales are {SCALES}")
        for mode in self.modes:
            if mode not in SHARING_MODES:
                raise ConfigurationError(f"mode must be one of {SHARING_MODES}, not {mode!r}")
        if self.biomt_devices not in SCALES:
            raise ConfigurationError(f"no topology scale_{self.biomt_devices}")

    def resolved_run_dir(self) -> Path:
        return self.run_dir or Path("runs") / (
            f"reproduce-{self.paper}-{time.strftime('%Y%m%d-%H%M%S')}"
        )

    def runs(self) -> list[Run]:
        out: list[Run] = []
        if self.paper in ("bilal-hassan", "all"):
            for n in self.scales:
                for mode in self.modes:
                    out.append(Run("sharing", n, mode, self.requests, f"{mode}-{n}"))
        if self.paper in ("biomt", "all"):
            n = self.biomt_devices
            out.append(Run("biomt", n, "biomt", self.biomt_ops, f"biomt-{n}"))
        return out


Event = Callable[[str, Run, dict[str, Any]], None]


def reproduce(cfg: ReproduceConfig, *, on_event: Event | None = None) -> dict[str, Any]:
    """Run the sweep; returns the reproduce.json document. ``on_event(kind, run, data)`` is
    called with ``start``, ``progress`` (``data``: done, total) and ``done``."""
    root = cfg.resolved_run_dir()
    root.mkdir(parents=True, exist_ok=True)
    runs = cfg.runs()
    doc: dict[str, Any] = {
        "schema": "iomt.experiments.reproduce/1",
        "config": {**asdict(cfg), "run_dir": str(root)},
        "method": method(cfg),
        "planned": [asdict(r) for r in runs],
        "runs": [],
        "partial": True,
    }
    t0 = time.monotonic()
    # Each sharing run's bag is audited in a worker process at the lowest CPU priority while
    # the next run goes: the ward of a run at one request outstanding per provider leaves
    # CPU idle, which the audit (~30 s per 100,000 requests) takes without slowing the ward.
    auditor = ProcessPoolExecutor(
        max_workers=1,
        mp_context=multiprocessing.get_context("spawn"),  # the driver holds DDS threads
        initializer=_background,
    )
    pending: dict[int, Future[dict[str, Any]]] = {}

    def collect(block: bool) -> None:
        for i, future in list(pending.items()):
            if block or future.done():
                report = future.result()
                wall = doc["runs"][i]["wall_s"]
                doc["runs"][i] = summarize(runs[i], report)
                doc["runs"][i]["wall_s"] = wall
                del pending[i]
                _write(root, doc, figures=False)

    try:
        for i, run in enumerate(runs):
            if on_event is not None:
                on_event("start", run, {})
            started = time.monotonic()
            try:
                report = _one(cfg, run, root / run.name, on_event, check_domain=i == 0)
            except KeyboardInterrupt:
                doc["interrupted_in"] = run.name
                _write(root, doc, figures=True)
                raise
            entry = summarize(run, report)
            entry["wall_s"] = round(time.monotonic() - started, 1)
            doc["runs"].append(entry)
            if report.get("audit_pending"):
                pending[i] = auditor.submit(sharing_experiment.complete_audit, root / run.name)
            collect(block=False)
            doc["elapsed_s"] = round(time.monotonic() - t0, 1)
            _write(root, doc, figures=False)
            if on_event is not None:
                on_event("done", run, entry)
        try:
            collect(block=True)
        except KeyboardInterrupt:
            _write(root, doc, figures=True)
            raise
    finally:
        # interrupted: the audits still queued are left (each run's report says so; `iomt
        # bag audit` completes them); a running one stops with the interrupt
        auditor.shutdown(wait=not pending, cancel_futures=True)
    doc["partial"] = False
    doc["elapsed_s"] = round(time.monotonic() - t0, 1)
    _write(root, doc, figures=True)
    return doc


def _background() -> None:
    """The audit worker: lowest CPU priority, owner-only files."""
    os.nice(19)
    os.umask(0o077)


def _one(
    cfg: ReproduceConfig, run: Run, run_dir: Path, on_event: Event | None, *, check_domain: bool
) -> dict[str, Any]:
    def progress(done: int, total: int) -> None:
        if on_event is not None:
            on_event("progress", run, {"done": done, "total": total})

    if run.kind == "sharing":
        return sharing_experiment.run(
            sharing_experiment.ExperimentConfig(
                run.topology,
                mode=run.mode,
                requests=run.requests,
                seed=cfg.seed,
                concurrency=cfg.concurrency,
                domain_id=cfg.domain_id,
                dds_config=cfg.dds_config,
                run_dir=run_dir,
                record=cfg.record,
                timeout_s=cfg.timeout_s,
                extra={"fhir": cfg.fhir, **cfg.extra},
                audit_later=cfg.record,
                check_domain=check_domain,
                cpus=cfg.cpus,
            ),
            on_progress=lambda s: progress(int(s["done"]), int(s["total"])),
        )
    return biomt_experiment.run(
        biomt_experiment.BiomtConfig(
            run.topology,
            requests=cfg.biomt_requests,
            biomt_ops=run.requests,
            seed=cfg.seed,
            domain_id=cfg.domain_id,
            dds_config=cfg.dds_config,
            run_dir=run_dir,
            record=cfg.record,
            timeout_s=cfg.timeout_s,
            check_domain=check_domain,
        ),
        on_progress=lambda s: progress(int(s["biomt_done"]), int(s["biomt_total"] or 1)),
    )


def summarize(run: Run, report: dict[str, Any]) -> dict[str, Any]:
    """What the sweep's tables and figures need from one run's report."""
    entry: dict[str, Any] = {"run": asdict(run), "report": f"{run.name}/report.md"}
    if run.kind == "biomt":
        entry["delay_ms"] = report["delay_ms"]
        entry["bolster_cpu_per_tx"] = report["bolster_cpu_per_tx"]
        entry["timings"] = report["timings"]
        entry["target_overhead_p50_ms"] = report.get("target_overhead_p50_ms")
        entry["sharing"] = report.get("sharing")
        return entry
    traffic = report.get("traffic") or {}
    entry.update(
        {
            "requests": report["requests"],
            "access_time_ms": report["access_time_ms"],
            "data_transfer_time_ms": report["data_transfer_time_ms"],
            "readable_transmissions": traffic.get("readable_share"),
            "readable_requests": traffic.get("exposed_request_share"),
            "timings": report["timings"],
            "resources": report.get("resources"),
            "paper": report["paper"],
        }
    )
    return entry


def method(cfg: ReproduceConfig) -> dict[str, Any]:
    return {
        "paper_bilal_hassan": "two simulators (centralized: every device stores at one server; "
        "distributed: each device stores locally), 400 simulated heart-rate and "
        "blood-pressure devices, 20 % unable to encrypt, 100,000 data requests; Wireshark "
        "on the traffic for Fig. 6; mean times in Table 2; hardware, concurrency and the "
        "simulators' cryptography not stated",
        "paper_biomt": "delay per transaction type against a no-crypto base (Fig. 3, <= 11 ms "
        "at worst) and the bolster's power (Fig. 4); prototype hardware not stated",
        "here": "every device, wallet, provider, server, bolster, cluster head and cloud a "
        "node in real processes on real DDS (Cyclone, loopback) on one machine, real "
        "cryptography, the traffic recorded to a rosbag2 bag and audited from the bytes",
        "cores": os.cpu_count(),
        "machine": f"{platform.system()} {platform.machine()}, Python {platform.python_version()}",
        "outstanding_per_provider": cfg.concurrency,
        "recorder": cfg.record,
        "requests_per_run": cfg.requests,
        "fhir_export": cfg.fhir,
        "cpus": cfg.cpus,
    }


# --- outputs --------------------------------------------------------------------------------


def _write(root: Path, doc: dict[str, Any], *, figures: bool) -> None:
    """The sweep's files; ``figures``: draw them too -- at the end, or when interrupted
    (drawn after every run they cost seconds each on the sweep's clock)."""
    (root / "reproduce.json").write_text(json.dumps(doc, indent=2), encoding="utf-8")
    if figures:
        doc["figures"] = write_figures(doc, root)
    (root / "reproduce.json").write_text(json.dumps(doc, indent=2), encoding="utf-8")
    (root / "reproduce.md").write_text(render_markdown(doc), encoding="utf-8")


def _sharing(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for e in doc["runs"] if e["run"]["kind"] == "sharing"]


def _f(v: Any, digits: int = 3) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def render_markdown(doc: dict[str, Any]) -> str:
    m = doc["method"]
    cfg = doc["config"]
    lines = [f"# iomt reproduce {cfg['paper']}", ""]
    if doc.get("partial"):
        done = len(doc["runs"])
        lines += [
            f"**Partial**: {done} of {len(doc['planned'])} runs finished"
            + (f"; interrupted in `{doc['interrupted_in']}`" if doc.get("interrupted_in") else "")
            + ".",
            "",
        ]
    lines += [
        "## Method",
        "",
        f"* Bilal & Hassan: {m['paper_bilal_hassan']}.",
        f"* BIoMT: {m['paper_biomt']}.",
        f"* Here: {m['here']}; {m['cores']} cores ({m['machine']}); "
        f"{m['outstanding_per_provider']} request(s) outstanding per provider; "
        f"{m['requests_per_run']} requests per run; recorder {'on' if m['recorder'] else 'off'}"
        + (
            "; the providers' FHIR export on."
            if m.get("fhir_export")
            else "; the providers' FHIR export off (`--fhir` turns it on)."
        )
        + (
            " The providers' process and the processes answering it ran on separate halves "
            "of the CPUs (`--cpus split`)."
            if m.get("cpus", "off") == "split"
            else ""
        ),
        "* So absolute times are this machine's and include DDS, Python and real "
        "cryptography; compare the trends (with the device count, between the modes) with "
        "the paper's, and the readable shares, which the bags decide byte by byte.",
        "",
    ]
    runs = _sharing(doc)
    if runs:
        lines += _table2(runs) + _fig6(runs) + _throughput(runs)
    for e in doc["runs"]:
        if e["run"]["kind"] == "biomt":
            lines += _biomt(e)
    for fig in doc.get("figures") or []:
        lines += [f"![{Path(fig).stem}]({Path(fig).name})", ""]
    lines += [
        "Each run's own report: "
        + ", ".join(f"[{e['run']['name']}]({e['report']})" for e in doc["runs"]),
        "",
    ]
    return "\n".join(lines)


def _table2(runs: list[dict[str, Any]]) -> list[str]:
    lines = [
        "## Table 2: data-transfer time and access time (ms)",
        "",
        "| mode | devices | data transfer p50 / mean / p95 | paper | access p50 / mean / p95 "
        "| paper | requests | failed |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for e in runs:
        r, dt, a, p = e["run"], e["data_transfer_time_ms"], e["access_time_ms"], e["paper"]
        lines.append(
            f"| {r['mode']} | {r['devices']} | {_f(dt['p50'])} / {_f(dt['mean'])} / "
            f"{_f(dt['p95'])} | {_f(p['data_transfer_ms'])} | {_f(a['p50'])} / "
            f"{_f(a['mean'])} / {_f(a['p95'])} | {_f(p['access_ms'])} | "
            f"{e['requests']['total']} | {e['requests']['failed']} |"
        )
    return [*lines, ""]


def _fig6(runs: list[dict[str, Any]]) -> list[str]:
    lines = [
        "## Fig. 6: readable on the wire (from each run's recorded traffic)",
        "",
        "| mode | devices | requests whose reading crossed readable | reading-bearing "
        "transmissions readable | paper |",
        "|---|---|---|---|---|",
    ]
    for e in runs:
        r = e["run"]
        paper = PAPER["readable_share"].get(r["mode"])
        share = e.get("readable_requests")
        tx = e.get("readable_transmissions")
        lines.append(
            f"| {r['mode']} | {r['devices']} | "
            f"{'-' if share is None else f'{100 * share:.1f} %'} | "
            f"{'-' if tx is None else f'{100 * tx:.1f} %'} | "
            f"{'-' if paper is None else f'{100 * paper:.0f} % of requests'} |"
        )
    return [*lines, ""]


def _throughput(runs: list[dict[str, Any]]) -> list[str]:
    lines = [
        "## The runs themselves",
        "",
        "| mode | devices | requests/s | CPU ms per request (all processes) | memory PSS MiB "
        "| ready s | workload s | refused | failed |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for e in runs:
        r, t, q = e["run"], e["timings"], e["requests"]
        cpu = (e.get("resources") or {}).get("cpu_ms_per_request")
        lines.append(
            f"| {r['mode']} | {r['devices']} | {_f(q.get('per_second'), 1)} | {_f(cpu)} | "
            f"{_f(t.get('memory_pss_mib'), 0)} | {_f(t.get('ready_s'), 1)} | "
            f"{_f(t.get('workload_s'), 1)} | {q['refused']} | {q['failed']} |"
        )
    reasons: dict[str, int] = {}
    for e in runs:
        for table in ("refusals", "failures"):
            for reason, n in (e["requests"].get(table) or {}).items():
                key = f"{e['run']['name']}: {reason}"
                reasons[key] = reasons.get(key, 0) + n
    if reasons:
        lines += ["", "| refused or failed, by run and reason | n |", "|---|---|"]
        lines += [f"| {k} | {v} |" for k, v in sorted(reasons.items())]
    return [*lines, ""]


def _biomt(e: dict[str, Any]) -> list[str]:
    names = {"store": "Store", "access": "Access", "observe": "Observe", "update": "Observe update"}
    target = e.get("target_overhead_p50_ms") or biomt_experiment.TARGET_OVERHEAD_P50_MS
    lines = [
        f"## BIoMT Fig. 3: delay per transaction ({e['run']['devices']} devices)",
        "",
        "| transaction | base p50 ms | BIoMT p50 ms | overhead p50 ms | paper (worst) |",
        "|---|---|---|---|---|",
    ]
    for op, d in e["delay_ms"].items():
        over = d["overhead"]["p50_ms"]
        flag = (
            f" ⚠ misses {target:g} ms"
            if op != "update" and over is not None and over > target
            else ""
        )
        lines.append(
            f"| {names.get(op, op)} | {_f(d['base']['p50'])} | {_f(d['biomt']['p50'])} | "
            f"**{_f(over)}**{flag} | {biomt_experiment.PAPER['fig3_max_overhead_ms']:g} |"
        )
    lines += [
        "",
        "## BIoMT Fig. 4: bolster CPU per transaction (the measured stand-in for power)",
        "",
        "| transaction | base µs | BIoMT µs | increase | paper (Observe) |",
        "|---|---|---|---|---|",
    ]
    for op, c in e["bolster_cpu_per_tx"].items():
        inc = c["increase_pct"]
        lines.append(
            f"| {names.get(op, op)} | {_f(c['base']['mean_us'], 1)} | "
            f"{_f(c['biomt']['mean_us'], 1)} | {'-' if inc is None else f'+{inc:.0f} %'} | "
            f"{'+35 %' if op == 'observe' else ''} |"
        )
    return [*lines, ""]


def write_figures(doc: dict[str, Any], root: Path) -> list[str]:
    """Fig. 6 and Fig. 7 across the sweep, and BIoMT's Fig. 3 and Fig. 4 (PNG)."""
    import matplotlib  # noqa: PLC0415 (heavy: only when plotting)

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    written: list[str] = []
    runs = _sharing(doc)
    colors = {"distributed": "#c0392b", "centralized": "#2e86c1", "base": "#7f8c8d"}
    modes = [m for m in SHARING_MODES if any(e["run"]["mode"] == m for e in runs)]
    if runs:
        written.append(_plot_fig6(plt, runs, modes, colors, root))
        written.append(_plot_fig7(plt, runs, modes, colors, root))
    written += _plot_biomt_figures(doc, root)
    return written


def _plot_fig6(
    plt: Any, runs: list[dict[str, Any]], modes: list[str], colors: dict[str, str], root: Path
) -> str:
    fig, ax = plt.subplots(figsize=(7, 4))
    for mode in modes:
        pts: list[tuple[int, float]] = sorted(
            (int(e["run"]["devices"]), float(e["readable_requests"]))
            for e in runs
            if e["run"]["mode"] == mode and e.get("readable_requests") is not None
        )
        if pts:
            ax.plot(
                [p[0] for p in pts],
                [100 * p[1] for p in pts],
                "o-",
                color=colors[mode],
                label=f"{mode}: requests",
            )
        tx: list[tuple[int, float]] = sorted(
            (int(e["run"]["devices"]), float(e["readable_transmissions"]))
            for e in runs
            if e["run"]["mode"] == mode and e.get("readable_transmissions") is not None
        )
        if tx:
            ax.plot(
                [p[0] for p in tx],
                [100 * p[1] for p in tx],
                "s--",
                color=colors[mode],
                alpha=0.6,
                label=f"{mode}: transmissions",
            )
        paper = PAPER["readable_share"].get(mode)
        if paper is not None:
            ax.axhline(100 * paper, color=colors[mode], ls=":", lw=1)
            ax.text(10, 100 * paper + 1, f"paper, {mode}: {100 * paper:.0f} %", fontsize=7)
    ax.set_xscale("log")
    ax.set_xticks(list(SCALES), [str(n) for n in SCALES])
    ax.set_xlabel("devices")
    ax.set_ylabel("readable on the wire, %")
    ax.set_ylim(0, 100)
    ax.set_title("Fig. 6: share readable, judged from the recorded traffic")
    if ax.get_legend_handles_labels()[0]:  # none while every audit is still pending
        ax.legend(fontsize=7)
    fig.tight_layout()
    path = root / "fig6_readable.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return str(path)


def _plot_fig7(
    plt: Any, runs: list[dict[str, Any]], modes: list[str], colors: dict[str, str], root: Path
) -> str:
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, key, paper_key, title in (
        (axes[0], "data_transfer_time_ms", "data_transfer_ms", "data-transfer time"),
        (axes[1], "access_time_ms", "access_ms", "access time"),
    ):
        for mode in modes:
            times: list[tuple[int, float, float]] = sorted(
                (int(e["run"]["devices"]), float(e[key]["p50"]), float(e[key]["mean"]))
                for e in runs
                if e["run"]["mode"] == mode and e[key]["p50"] is not None
            )
            if times:
                ax.plot(
                    [p[0] for p in times],
                    [p[1] for p in times],
                    "o-",
                    color=colors[mode],
                    label=f"{mode} p50",
                )
                ax.plot(
                    [p[0] for p in times],
                    [p[2] for p in times],
                    "o:",
                    color=colors[mode],
                    alpha=0.5,
                    label=f"{mode} mean",
                )
            paper_pts = sorted(PAPER[paper_key].get(mode, {}).items())
            if paper_pts:
                ax.plot(
                    [p[0] for p in paper_pts],
                    [p[1] for p in paper_pts],
                    "x",
                    color=colors[mode],
                    markersize=8,
                    label=f"{mode}, paper",
                )
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks(list(SCALES), [str(n) for n in SCALES])
        ax.set_xlabel("devices")
        ax.set_ylabel("ms (log)")
        ax.set_title(f"Fig. 7: {title}")
        ax.legend(fontsize=7)
    fig.tight_layout()
    path = root / "fig7_times.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return str(path)


def _plot_biomt_figures(doc: dict[str, Any], root: Path) -> list[str]:
    """BIoMT's Fig. 3 and Fig. 4 of each BIoMT run, renamed to tell them apart."""
    written: list[str] = []
    for e in doc["runs"]:
        if e["run"]["kind"] == "biomt":
            report = {
                "topology": e["run"]["name"],
                "delay_ms": e["delay_ms"],
                "bolster_cpu_per_tx": e["bolster_cpu_per_tx"],
                "target_overhead_p50_ms": e.get("target_overhead_p50_ms"),
            }
            for path_str in biomt_experiment.write_plots(report, root):
                target = root / ("biomt_fig3_" if "delay" in path_str else "biomt_fig4_")
                final = Path(str(target) + Path(path_str).name)
                Path(path_str).replace(final)
                written.append(str(final))
    return written
