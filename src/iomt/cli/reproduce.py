"""``iomt reproduce bilal-hassan | biomt | all`` — the papers' experiments in one command.

Bilal & Hassan: 10, 20, 50, 100, 200 and 400 devices, each in the distributed framework and
the centralized baseline (``--modes ... base`` adds the no-security base), 100,000 requests
per run by default, every run recorded and audited: Table 2, Fig. 6 and Fig. 7. BIoMT: the
delay and bolster CPU per Store / Access / Observe against a no-crypto base (Fig. 3, Fig. 4).
Writes ``reproduce.md``, ``reproduce.json`` and the figures into one run directory, each
run's own report beside them; progress per run and overall, with the time left.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _domain(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 0 <= value <= 232:
        raise argparse.ArgumentTypeError(f"a ROS 2 domain id is 0..232, got {value}")
    return value


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from iomt.experiments.reproduce import PAPERS, SCALES, SHARING_MODES
    from iomt.launch.affinity import CPU_POLICIES

    parser = subparsers.add_parser(
        "reproduce",
        help="run a paper's experiments at the paper's scale (tables, figures, method)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("paper", choices=PAPERS)
    parser.add_argument(
        "--requests", type=_positive, default=100_000, help="requests per run (default 100,000)"
    )
    parser.add_argument(
        "--scales",
        type=int,
        nargs="+",
        choices=SCALES,
        default=list(SCALES),
        metavar="N",
        help=f"device counts (default {' '.join(map(str, SCALES))})",
    )
    parser.add_argument(
        "--modes",
        nargs="+",
        choices=SHARING_MODES,
        default=["distributed", "centralized"],
        help="Bilal & Hassan modes (default distributed centralized)",
    )
    parser.add_argument(
        "--concurrency",
        type=_positive,
        default=1,
        help="requests outstanding per provider (default 1, as the paper's per-request times)",
    )
    parser.add_argument("--biomt-ops", type=_positive, default=2000)
    parser.add_argument(
        "--biomt-devices", type=int, choices=SCALES, default=50, help="the BIoMT ward's size"
    )
    parser.add_argument("--no-record", action="store_true", help="do not record or audit")
    parser.add_argument(
        "--fhir",
        action="store_true",
        help="the providers also export what they received as FHIR bundles (off: not part "
        "of the papers' experiments)",
    )
    parser.add_argument(
        "--cpus",
        choices=[p for p in CPU_POLICIES if p != "auto"],
        default="off",
        help="split: every sharing run's providers' process and the processes answering it "
        "on separate halves of the CPUs; off: no pinning (default: one placement for the "
        "whole sweep, so the scales compare)",
    )
    parser.add_argument("--domain", type=_domain, default=None)
    parser.add_argument("--dds-config", default=None)
    parser.add_argument("--run-dir", type=Path, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from iomt.experiments.reproduce import ReproduceConfig, Run, reproduce

    run_dir = args.run_dir or Path("runs") / (
        f"reproduce-{args.paper}-{time.strftime('%Y%m%d-%H%M%S')}"
    )
    cfg = ReproduceConfig(
        args.paper,
        requests=args.requests,
        scales=tuple(args.scales),
        modes=tuple(args.modes),
        concurrency=args.concurrency,
        biomt_devices=args.biomt_devices,
        biomt_ops=args.biomt_ops,
        seed=args.seed,
        record=not args.no_record,
        fhir=args.fhir,
        cpus=args.cpus,
        domain_id=args.domain,
        dds_config=args.dds_config,
        run_dir=run_dir,
    )
    runs = cfg.runs()
    console = Console(stderr=True)
    console.print(
        f"[bold]reproduce {args.paper}[/]: {len(runs)} runs into {run_dir} "
        f"({', '.join(r.name for r in runs)})"
    )
    total = sum(r.requests for r in runs)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
    ) as progress:
        overall = progress.add_task("all runs", total=total)
        current: dict[str, Any] = {"task": None, "base": 0}

        def on_event(kind: str, r: Run, data: dict[str, Any]) -> None:
            if kind == "start":
                current["task"] = progress.add_task(f"{r.name:18s}", total=r.requests)
            elif kind == "progress" and current["task"] is not None:
                progress.update(current["task"], completed=data["done"])
                progress.update(overall, completed=current["base"] + data["done"])
            elif kind == "done":
                current["base"] += r.requests
                progress.update(overall, completed=current["base"])
                if current["task"] is not None:
                    progress.update(current["task"], completed=r.requests)

        try:
            doc = reproduce(cfg, on_event=on_event)
        except KeyboardInterrupt:
            progress.stop()
            console.print(
                f"[bold]interrupted[/]: partial results in {run_dir}/reproduce.md (runs "
                "finished so far, and the interrupted run's partial report in its directory)"
            )
            return 130
    console.print(
        f"done in {doc['elapsed_s'] / 60:.1f} min: {run_dir}/reproduce.md, reproduce.json, "
        + ", ".join(Path(f).name for f in doc.get("figures", []))
    )
    return 0
