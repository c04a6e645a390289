"""Bilal & Hassan, distributed vs centralized in the same run (issue 4 targets).

    python bench/bench_sharing.py [--devices 50] [--requests 2000] [--concurrency 1]
                                  [--no-record] [--json]

Runs the scale_N topology once per mode (distributed, centralized, and the no-security
base for reference), each a full launch with real processes on DDS, and prints access
time and data-transfer time (p50, p95, mean), with the distributed/centralized ratios,
and the readable share of reading-bearing transmissions judged from each recorded bag.
Targets: distributed access p50 <= 0.5 ms (encryption on, 50 devices); readable vitals
only on incapable devices' first hop (device -> converter).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

TARGET_ACCESS_P50_MS = 0.5


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", type=int, default=50)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--modes", nargs="+", default=["distributed", "centralized", "base"])
    parser.add_argument("--no-record", action="store_true")
    parser.add_argument("--domain", type=int, default=204)
    parser.add_argument("--keep", type=Path, default=None, help="keep run dirs here")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from iomt.experiments.sharing import ExperimentConfig, run

    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        for mode in args.modes:
            report = run(ExperimentConfig(
                f"scale_{args.devices}", mode=mode, requests=args.requests,
                concurrency=args.concurrency, domain_id=args.domain,
                run_dir=root / f"{mode}", record=not args.no_record, timeout_s=900))
            results[mode] = report
    out: dict[str, Any] = {"devices": args.devices, "requests": args.requests,
                           "concurrency": args.concurrency, "modes": {}}
    for mode, r in results.items():
        traffic = r.get("traffic") or {}
        out["modes"][mode] = {
            "requests": r["requests"], "access_ms": r["access_time_ms"],
            "access_ms_by_path": r["access_time_ms_by_path"],
            "data_transfer_ms": r["data_transfer_time_ms"],
            "readable_share": traffic.get("readable_share"),
            "readable_by_hop": {h: row["readable"] for h, row in
                                (traffic.get("by_hop") or {}).items()},
            "transmissions_by_hop": {h: row["transmissions"] for h, row in
                                     (traffic.get("by_hop") or {}).items()},
        }
    d, c = out["modes"].get("distributed"), out["modes"].get("centralized")
    if d and c:
        out["ratio_access_p50_distributed_over_centralized"] = (
            d["access_ms"]["p50"] / c["access_ms"]["p50"])
        out["ratio_data_transfer_p50_distributed_over_centralized"] = (
            d["data_transfer_ms"]["p50"] / c["data_transfer_ms"]["p50"])
    if d:
        hops = {h for h, n in d["readable_by_hop"].items() if n}
        out["target_access_p50_ms"] = TARGET_ACCESS_P50_MS
        out["access_target_met"] = d["access_ms"]["p50"] <= TARGET_ACCESS_P50_MS
        out["readable_only_first_hop"] = (None if args.no_record
                                          else hops <= {"device_to_converter"})
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    print(f"{args.devices} devices, {args.requests} requests, concurrency "
          f"{args.concurrency} per provider")
    print(f"{'mode':12s} {'access p50':>10s} {'p95':>8s} {'mean':>8s} {'transfer p50':>12s} "
          f"{'readable':>9s}  outcomes")
    for mode, m in out["modes"].items():
        share = m["readable_share"]
        print(f"{mode:12s} {m['access_ms']['p50']:10.3f} {m['access_ms']['p95']:8.3f} "
              f"{m['access_ms']['mean']:8.3f} {m['data_transfer_ms']['p50']:12.3f} "
              f"{'-' if share is None else f'{100 * share:8.1f}%'}  "
              f"{ {k: v for k, v in m['requests'].items() if k != 'refusal_reasons'} } "
              f"readable by hop {m['readable_by_hop']}")
    if "ratio_access_p50_distributed_over_centralized" in out:
        print(f"distributed/centralized: access p50 "
              f"{out['ratio_access_p50_distributed_over_centralized']:.2f}x, data transfer p50 "
              f"{out['ratio_data_transfer_p50_distributed_over_centralized']:.2f}x")
    if d:
        print(f"target distributed access p50 <= {TARGET_ACCESS_P50_MS} ms: "
              f"{'met' if out['access_target_met'] else 'NOT met'} "
              f"({d['access_ms']['p50']:.3f} ms); readable only on the first hop: "
              f"{out['readable_only_first_hop']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
