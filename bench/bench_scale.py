"""400-node start-up time and memory (issue 2 targets).

    python bench/bench_scale.py [--devices 400] [--per-process 50] [--repeat 3] [--json]

Starts the `fleet` topology (example sensor nodes, packed --per-process to a container
process) and measures the time from spawning the processes until every node is visible
with all its endpoints in the DDS graph (read by an independent GraphReader, as `iomt
graph` does), and the total proportional memory (PSS) of the processes.
Targets: all visible <= 10 s; <= 1.5 GB total.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

TARGET_UP_S = 10.0
TARGET_MEM_MIB = 1536.0


def one_run(devices: int, per_process: int, domain: int) -> dict[str, float]:
    from iomt.launch.service import LaunchService, total_pss_bytes
    from iomt.runtime import Context
    from iomt.runtime.graph import GraphReader
    from iomt.topology import load

    plan = load("fleet", devices=devices, per_process=per_process)
    with (
        tempfile.TemporaryDirectory() as tmp,
        LaunchService(plan, run_dir=Path(tmp), domain_id=domain) as service,
        Context(domain_id=domain) as ctx,
    ):
        reader = GraphReader(ctx)
        t0 = time.monotonic()
        ready = service.start(ready_timeout_s=120)
        snap = reader.wait_until(lambda s: len(s.complete_node_names()) >= devices, 120)
        up = time.monotonic() - t0
        visible = len(snap.complete_node_names())
        time.sleep(1.0)  # let every process settle before reading memory
        mem = total_pss_bytes(service.pids()) / 2**20
        reader.close()
    return {
        "ready_s": ready,
        "all_visible_s": up,
        "visible": visible,
        "pss_mib": mem,
        "processes": len(plan.processes),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--devices", type=int, default=400)
    parser.add_argument("--per-process", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--domain", type=int, default=203)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    runs = [one_run(args.devices, args.per_process, args.domain) for _ in range(args.repeat)]
    up = statistics.median(r["all_visible_s"] for r in runs)
    mem = statistics.median(r["pss_mib"] for r in runs)
    result = {
        "devices": args.devices,
        "processes": runs[0]["processes"],
        "runs": runs,
        "all_visible_s_median": up,
        "pss_mib_median": mem,
        "up_ratio_to_target": up / TARGET_UP_S,
        "mem_ratio_to_target": mem / TARGET_MEM_MIB,
        "targets_met": up <= TARGET_UP_S
        and mem <= TARGET_MEM_MIB
        and all(r["visible"] >= args.devices for r in runs),
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for r in runs:
            print(
                f"  run: ready {r['ready_s']:.2f} s, all {r['visible']:.0f} visible "
                f"{r['all_visible_s']:.2f} s, {r['pss_mib']:.0f} MiB"
            )
        print(
            f"{args.devices} nodes in {runs[0]['processes']:.0f} processes: all visible in "
            f"{up:.2f} s (target <= {TARGET_UP_S:g} s, {up / TARGET_UP_S:.2f}x of target), "
            f"{mem:.0f} MiB PSS (target <= {TARGET_MEM_MIB:.0f} MiB, "
            f"{mem / TARGET_MEM_MIB:.2f}x) -> {'met' if result['targets_met'] else 'NOT met'}"
        )
    return 0 if result["targets_met"] else 1


if __name__ == "__main__":
    sys.exit(main())
