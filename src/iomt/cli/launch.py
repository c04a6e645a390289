"""``iomt launch TOPOLOGY`` — bring up a built-in topology on DDS, run it, stop it.

What ``ros2 launch iomt <topology>.launch.py`` does on a ROS 2 machine, plus what an
operator wants to know. For the experiment topologies (``scale_N``) it is the paper's
experiment: provision the ward's keys, launch devices, wallets, providers (and the
central server in ``--mode centralized``) and a bag recorder, drive the providers'
requests to completion with a progress bar, stop, and write ``report.json``,
``report.md`` and the audit of the recorded traffic to the run directory. ``--mode
biomt`` adds BIoMT's bolsters, clusters, master bolster and cloud and runs experiment E3
(delay and bolster CPU per Store / Access / Observe against a no-crypto base; plots).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from iomt.cli.args import at_least, domain_id, non_negative_float, positive_float
from iomt.errors import ConfigurationError, TransportError


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from iomt.launch.affinity import CPU_POLICIES
    from iomt.topology import available

    parser = subparsers.add_parser(
        "launch",
        help="launch a built-in topology (scale_N runs the paper's experiment)",
        description=__doc__
        + "\ntopologies:\n"
        + "\n".join(f"  {name:14s} {summary}" for name, summary in available().items()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("topology", help="built-in topology name")
    parser.add_argument(
        "--mode",
        default="distributed",
        choices=("distributed", "centralized", "base", "biomt"),
        help="scale_N: the paper's framework, the centralized baseline, "
        "no security at all, or the framework with BIoMT's bolsters, clusters and cloud "
        "(experiment E3; default distributed)",
    )
    parser.add_argument(
        "--requests",
        type=at_least(1),
        default=2000,
        help="scale_N: data requests over all providers (default 2000)",
    )
    parser.add_argument(
        "--concurrency",
        type=at_least(1, 1000),
        default=4,
        help="scale_N: outstanding requests per provider (default 4)",
    )
    parser.add_argument(
        "--no-record", action="store_true", help="scale_N: do not record the traffic to a bag"
    )
    parser.add_argument(
        "--timeout",
        type=positive_float,
        default=900.0,
        help="scale_N: give up after this many seconds of workload",
    )
    parser.add_argument(
        "--domain", type=domain_id, default=None, help="DDS domain id (default: ROS_DOMAIN_ID or 0)"
    )
    parser.add_argument("--dds-config", default=None, help="loopback (default) | lan | XML")
    parser.add_argument(
        "--runtime",
        default="embedded",
        choices=("embedded", "rclpy"),
        help="embedded: iomt's own ROS 2 runtime on Cyclone DDS (no ROS install needed); "
        "rclpy: the same nodes on real rclpy and the machine's RMW (source a ROS 2 setup "
        "with iomt_interfaces first)",
    )
    parser.add_argument(
        "--duration",
        type=non_negative_float,
        default=5.0,
        help="other topologies: seconds to run after start-up (0: Ctrl-C)",
    )
    parser.add_argument(
        "--run-dir",
        type=Path,
        default=None,
        help="where keys, specs, logs, bag and reports go (default runs/<topology>-<mode>-<time>)",
    )
    parser.add_argument("--seed", type=at_least(0), default=0)
    parser.add_argument(
        "--hold",
        action="store_true",
        help="scale_N: keep the ward running after the workload until Ctrl-C "
        "(for ROS 2 tools and clinical robots), then stop and report",
    )
    parser.add_argument(
        "--robots",
        type=at_least(0),
        default=0,
        help="scale_N: provision N clinical robots (robot_0 ...) on patients' care teams, "
        "for ROS 2 nodes such as examples/clinical_robot",
    )
    parser.add_argument(
        "--devices",
        type=at_least(1),
        default=None,
        help="device count, for topologies that take one (fleet)",
    )
    parser.add_argument(
        "--biomt-ops",
        type=at_least(0),
        default=400,
        help="--mode biomt: Access/Observe operations over all physicians (default 400)",
    )
    parser.add_argument(
        "--synchronous",
        default="FULL",
        choices=("FULL", "NORMAL"),
        help="--mode biomt: SQLite durability of the ledgers (FULL: fsync per commit)",
    )
    parser.add_argument(
        "--max-restarts",
        type=at_least(0),
        default=5,
        help="restart a crashed process (with backoff) up to N times in a row before giving "
        "up on the ward; 0: any crash ends the run (default 5)",
    )
    parser.add_argument(
        "--place",
        action="append",
        default=[],
        type=placement,
        metavar="PATTERN=COMMAND",
        help="run the processes whose name matches PATTERN (fnmatch) under COMMAND, e.g. "
        "--place 'devices_*=ip netns exec host2' (with --dds-config lan); COMMAND must exec "
        "the container in place (repeatable)",
    )
    parser.add_argument(
        "--cpus",
        choices=CPU_POLICIES,
        default="auto",
        help="sharing wards: split pins the providers' process and the processes answering "
        "it (devices, or the central server) to separate halves of the CPUs; off pins "
        "nothing; auto splits while the workload keeps no more requests in flight than "
        "there are CPUs (default auto)",
    )
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.set_defaults(func=run)


def placement(text: str) -> tuple[str, list[str]]:
    """``PATTERN=COMMAND`` -> (pattern, argv prefix)."""
    import shlex

    pattern, sep, command = text.partition("=")
    try:
        prefix = shlex.split(command)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: {exc}") from None
    if not sep or not pattern.strip() or not prefix:
        raise argparse.ArgumentTypeError(f"expected PATTERN=COMMAND, got {text!r}")
    return pattern.strip(), prefix


def _restart_policy(args: argparse.Namespace) -> Any:
    from iomt.launch.service import RestartPolicy

    return RestartPolicy(max_restarts=args.max_restarts)


def preflight(args: argparse.Namespace) -> None:
    """What argparse cannot check alone, checked before anything is provisioned or
    launched: the domain ROS_DOMAIN_ID names, the DDS configuration, the topology."""
    from iomt.runtime.config import resolve_config, resolve_domain_id
    from iomt.topology import available

    resolve_domain_id(args.domain)
    resolve_config(args.dds_config)
    if args.topology not in available():
        raise ConfigurationError(
            f"unknown topology {args.topology!r}; available: {', '.join(available())}"
        )


def run(args: argparse.Namespace) -> int:
    preflight(args)
    if args.topology == "case_study":
        # the narrated Fig. 2 (what `iomt demo case-study` runs): it provisions its keys
        from iomt.cli import demo

        return demo.run(args)
    if args.topology.startswith("scale_") and args.mode == "biomt":
        return run_biomt(args)
    if args.topology.startswith("scale_"):
        return run_experiment(args)
    return run_plain(args)


def run_experiment(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from iomt.experiments.sharing import ExperimentConfig
    from iomt.experiments.sharing import run as run_sharing

    if args.run_dir is None:
        args.run_dir = (
            Path("runs") / f"{args.topology}-{args.mode}-{time.strftime('%Y%m%d-%H%M%S')}"
        )
    cfg = ExperimentConfig(
        args.topology,
        mode=args.mode,
        requests=args.requests,
        seed=args.seed,
        concurrency=args.concurrency,
        domain_id=args.domain,
        dds_config=args.dds_config,
        run_dir=args.run_dir,
        record=not args.no_record,
        timeout_s=args.timeout,
        runtime=args.runtime,
        hold=args.hold,
        extra={"robots": args.robots} if args.robots else {},
        restart=_restart_policy(args),
        placement=dict(args.place),
        cpus=args.cpus,
    )
    console = Console(stderr=True)
    console.print(
        f"[bold]{args.topology}[/] ({args.mode}): provisioning keys, launching, "
        f"{args.requests} requests"
    )
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[detail]}"),
        console=console,
        transient=False,
    ) as progress:
        task = progress.add_task("requests", total=args.requests, detail="starting")

        def on_progress(s: dict[str, Any]) -> None:
            progress.update(
                task,
                completed=s["done"],
                detail=(
                    f"shared {s['shared']} converted {s['converted']} refused {s['refused']} "
                    f"failed {s['failed']}"
                ),
            )

        try:
            report = run_sharing(cfg, on_progress=on_progress)
        except KeyboardInterrupt:
            progress.stop()
            where = cfg.run_dir
            console.print(
                f"[bold]interrupted[/]: the ward is stopped; partial report in {where}/report.md "
                f"(and report.json), traffic so far in {where}/bag, logs in {where}/logs"
            )
            return 130
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        from iomt.experiments.sharing import render_markdown

        print(render_markdown(report))
    return 0


def run_biomt(args: argparse.Namespace) -> int:
    """``scale_N --mode biomt``: experiment E3 (iomt.experiments.biomt)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from iomt.experiments.biomt import BiomtConfig, render_markdown
    from iomt.experiments.biomt import run as run_e3

    cfg = BiomtConfig(
        args.topology,
        requests=args.requests,
        biomt_ops=args.biomt_ops,
        seed=args.seed,
        concurrency=args.concurrency,
        synchronous=args.synchronous,
        domain_id=args.domain,
        dds_config=args.dds_config,
        run_dir=args.run_dir,
        record=not args.no_record,
        timeout_s=args.timeout,
        restart=_restart_policy(args),
        placement=dict(args.place),
    )
    console = Console(stderr=True)
    console.print(
        f"[bold]{args.topology}[/] (biomt): provisioning keys, launching bolsters, cloud and "
        f"ward; {args.requests} sharing requests, {args.biomt_ops} BIoMT operations"
    )
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=console,
        transient=False,
    ) as progress:
        sharing = progress.add_task("sharing", total=args.requests)
        biomt = progress.add_task("biomt", total=args.biomt_ops)

        def on_progress(s: dict[str, Any]) -> None:
            progress.update(sharing, completed=s["sharing_done"])
            progress.update(biomt, completed=s["biomt_done"])

        report = run_e3(cfg, on_progress=on_progress)
    print(json.dumps(report, indent=2) if args.json else render_markdown(report))
    return 0


def run_plain(args: argparse.Namespace) -> int:
    from rich.console import Console

    from iomt.launch.affinity import resolve_policy
    from iomt.launch.service import LaunchService, ensure_domain_free, total_pss_bytes
    from iomt.runtime import Context
    from iomt.runtime.graph import GraphReader
    from iomt.topology import load

    console = Console(stderr=True)
    options: dict[str, Any] = {"seed": args.seed}
    if args.devices is not None:
        options["devices"] = args.devices
    plan = load(args.topology, **options)
    run_dir = args.run_dir or Path("runs") / f"{args.topology}-{time.strftime('%Y%m%d-%H%M%S')}"
    ensure_domain_free(plan, domain_id=args.domain, dds_config=args.dds_config)
    summary: dict[str, Any] = {
        "topology": plan.topology,
        "processes": len(plan.processes),
        "nodes": plan.node_count,
        "run_dir": str(run_dir),
    }
    with LaunchService(
        plan,
        run_dir=run_dir,
        domain_id=args.domain,
        dds_config=args.dds_config,
        runtime=args.runtime,
        restart=_restart_policy(args),
        placement=dict(args.place),
        cpus=resolve_policy(args.cpus, outstanding=None),  # no workload: auto pins nothing
    ) as service:
        console.print(
            f"[bold]{plan.topology}[/]: {plan.description} — starting "
            f"{len(plan.processes)} processes, {plan.node_count} nodes"
        )
        t0 = time.monotonic()
        summary["ready_s"] = round(service.start(), 3)
        with Context(domain_id=args.domain, dds_config_name=args.dds_config) as ctx:
            reader = GraphReader(ctx)
            snap = reader.wait_until(lambda s: len(s.complete_node_names()) >= plan.node_count, 60)
            reader.close()
        summary["visible_nodes"] = len(snap.complete_node_names())
        summary["all_visible_s"] = round(time.monotonic() - t0, 3)
        summary["memory_pss_mib"] = round(total_pss_bytes(service.pids()) / 2**20, 1)
        console.print(
            f"up: {summary['visible_nodes']}/{plan.node_count} nodes visible in "
            f"the graph after {summary['all_visible_s']:.2f} s; "
            f"{summary['memory_pss_mib']:.0f} MiB"
        )
        if summary["visible_nodes"] < plan.node_count:
            raise TransportError(
                f"only {summary['visible_nodes']} of {plan.node_count} nodes became visible"
            )
        try:
            end = time.monotonic() + args.duration if args.duration > 0 else float("inf")
            while time.monotonic() < end:
                service.supervise()  # restarts what crashed; raises if it keeps crashing
                time.sleep(0.2)
        except KeyboardInterrupt:
            console.print("interrupted; stopping")
        codes = service.stop()
        summary["exit_codes"] = codes
        summary["supervision"] = service.supervision_report()
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        console.print(
            f"stopped cleanly: {all(c == 0 for c in codes.values())}; results in {run_dir}"
        )
    return 0 if all(c == 0 for c in codes.values()) else 1
