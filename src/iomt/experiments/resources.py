"""What a run cost: CPU per request (summed over every process), memory, start-up.

The experiment driver samples every process's CPU time (user + system, all threads) when
the ward is READY and when the workload ends; the difference, divided by the requests
answered, is the CPU a request cost the whole run — including what grows with the ward
(discovery, registration, timers, the recorder), not only the request path. Processes are
grouped by kind: their launch name without its group number (``devices_3`` -> ``devices``).
The driver itself (the process following ``/iomt/progress``) counts as ``driver``.
"""

from __future__ import annotations

import os
from collections import defaultdict
from typing import Any

import psutil

from iomt.launch.service import LaunchService
from iomt.topology.spec import process_kind

DRIVER = "driver"


def cpu_sample_of_driver() -> float:
    """CPU seconds this process (the experiment driver) has used so far."""
    t = psutil.Process(os.getpid()).cpu_times()
    return float(t.user + t.system)


def cpu_sample(service: LaunchService) -> dict[str, float]:
    """CPU seconds used so far by each live process of the run, and by this driver."""
    out = service.cpu_seconds()
    out[DRIVER] = cpu_sample_of_driver()
    return out


def pss_by_process(service: LaunchService) -> dict[str, float]:
    """PSS (MiB) of each live process of the run."""
    out: dict[str, float] = {}
    for p in service.processes:
        if p.popen.poll() is None:
            try:
                out[p.spec.name] = psutil.Process(p.popen.pid).memory_full_info().pss / 2**20
            except (psutil.Error, AttributeError):
                continue
    return out


def _by_kind(values: dict[str, float]) -> dict[str, float]:
    out: dict[str, float] = defaultdict(float)
    for name, v in values.items():
        out[process_kind(name)] += v
    return dict(sorted(out.items()))


def summarize(
    *,
    at_ready: dict[str, float],
    at_end: dict[str, float],
    driver_at_start: float,
    requests: int,
    workload_s: float | None,
    ready_s: float | None,
    pss_mib: dict[str, float],
) -> dict[str, Any]:
    """The report's ``resources`` section.

    ``at_ready``/``at_end``: :func:`cpu_sample` when the ward was READY and when the workload
    ended; ``driver_at_start``: the driver's CPU seconds before it launched anything (start-up
    CPU is what every process used until READY)."""
    workload = {
        name: max(0.0, at_end[name] - at_ready.get(name, 0.0))
        for name in at_end
        if name in at_ready
    }
    startup = dict(at_ready)
    startup[DRIVER] = max(0.0, at_ready.get(DRIVER, 0.0) - driver_at_start)
    by_kind = _by_kind(workload)
    total = sum(workload.values())
    per_request = (lambda s: round(1000 * s / requests, 3)) if requests else (lambda _s: None)
    processes: dict[str, int] = defaultdict(int)
    for name in at_end:
        processes[process_kind(name)] += 1
    return {
        "requests": requests,
        "workload_s": workload_s,
        "requests_per_s": round(requests / workload_s, 1) if workload_s and requests else None,
        "ready_s": ready_s,
        "cpu_s_startup": round(sum(startup.values()), 2),
        "cpu_s_startup_by_kind": {k: round(v, 2) for k, v in _by_kind(startup).items()},
        "cpu_s_workload": round(total, 2),
        "cpu_ms_per_request": per_request(total),
        "cpu_ms_per_request_by_kind": {k: per_request(v) for k, v in by_kind.items()},
        "cpu_s_workload_by_kind": {k: round(v, 2) for k, v in by_kind.items()},
        "cpu_share_of_cores": (round(total / workload_s / (os.cpu_count() or 1), 3))
        if workload_s
        else None,
        "processes_by_kind": dict(sorted(processes.items())),
        "memory_pss_mib": round(sum(pss_mib.values()), 1),
        "memory_pss_mib_by_kind": {k: round(v, 1) for k, v in _by_kind(pss_mib).items()},
    }


def render_lines(res: dict[str, Any]) -> list[str]:
    """Markdown lines for a report's ``resources`` section."""
    if not res:
        return []

    def f(v: Any, fmt: str = ".2f") -> str:
        return "-" if v is None else format(v, fmt)

    kinds = list(res.get("cpu_ms_per_request_by_kind", {}))
    lines = [
        "",
        "## Cost of the run",
        "",
        f"{res['requests']} requests in {f(res['workload_s'], '.1f')} s of workload "
        f"({f(res['requests_per_s'], '.0f')} requests/s); ready in {f(res['ready_s'], '.1f')} s; "
        f"{f(res['memory_pss_mib'], '.0f')} MiB PSS.",
        "",
        "| CPU | total | " + " | ".join(kinds) + " |",
        "|---|---|" + "---|" * len(kinds),
        f"| ms per request | {f(res['cpu_ms_per_request'], '.3f')} | "
        + " | ".join(f(res["cpu_ms_per_request_by_kind"][k], ".3f") for k in kinds)
        + " |",
        f"| s during the workload | {f(res['cpu_s_workload'])} | "
        + " | ".join(f(res["cpu_s_workload_by_kind"][k]) for k in kinds)
        + " |",
        f"| processes | {sum(res['processes_by_kind'].values())} | "
        + " | ".join(str(res["processes_by_kind"].get(k, 0)) for k in kinds)
        + " |",
        f"| PSS (MiB) | {f(res['memory_pss_mib'], '.0f')} | "
        + " | ".join(f(res["memory_pss_mib_by_kind"].get(k), ".0f") for k in kinds)
        + " |",
        "",
        f"Start-up used {f(res['cpu_s_startup'], '.1f')} CPU s; during the workload the run "
        f"kept {f(res['cpu_share_of_cores'], '.0%')} of the machine's cores busy.",
    ]
    placement = res.get("cpu_placement")
    if placement is not None:
        pinned = ", ".join(
            f"{name} on CPU {','.join(map(str, cpus))}" for name, cpus in sorted(placement.items())
        )
        lines += [
            "",
            f"CPUs (--cpus): {pinned}; every other process on any."
            if pinned
            else "CPUs (--cpus): no process pinned.",
        ]
    warmup = res.get("warmup_s") or {}
    if "requesting" in warmup:
        lines += [
            "",
            f"Warm-up (the last provider, seconds after READY): asking the wallets "
            f"{f(warmup.get('asking_wallets'), '.1f')}, every grant in "
            f"{f(warmup.get('grants_in'), '.1f')}, first request "
            f"{f(warmup.get('requesting'), '.1f')}; {warmup.get('wallet_retries', 0)} "
            "wallet asks repeated.",
        ]
    return lines
