"""``iomt bag record | info | audit | play`` — rosbag2 bags of iomt traffic.

``record`` is ``ros2 bag record --all --all-services`` for an iomt graph (MCAP, metadata
version 9); ``info`` and ``play`` mirror ``ros2 bag info``/``play``; ``audit`` is the
paper's Experiment 1 judged from the bag: how many reading-bearing transmissions an
eavesdropper could read without a key. See docs/capture.md.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from typing import Any

from iomt.cli.args import at_least, domain_id, non_negative_float, positive_float


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "bag",
        help="record, inspect, audit and replay rosbag2 bags of iomt traffic",
        description="Record, inspect, audit and replay rosbag2 (MCAP) bags of iomt traffic.",
    )
    verbs = parser.add_subparsers(dest="verb", metavar="VERB")
    verbs.required = True

    rec = verbs.add_parser(
        "record",
        help="record topics and services to a bag",
        description="Record every iomt topic and service (or the named ones) into a new bag "
        "directory. Stops on SIGINT/SIGTERM or after --duration; the bag is complete then.",
    )
    rec.add_argument("-o", "--output", required=True, help="bag directory to create")
    rec.add_argument("--domain", type=domain_id, default=None, help="DDS domain (ROS_DOMAIN_ID)")
    rec.add_argument("--dds-config", default=None, help="loopback | lan | path to XML")
    rec.add_argument("--duration", type=positive_float, default=None, help="stop after S seconds")
    which = rec.add_mutually_exclusive_group()
    which.add_argument(
        "--topics", nargs="+", metavar="NAME", help="only these topics/services (ROS names)"
    )
    which.add_argument(
        "-a", "--all", action="store_true", help="every topic and service (the default)"
    )
    rec.add_argument("--no-services", action="store_true", help="do not record services")
    rec.set_defaults(func=_record)

    inf = verbs.add_parser("info", help="summarize a bag (like ros2 bag info)")
    inf.add_argument("bag", help="bag directory or .mcap file")
    inf.add_argument("--json", action="store_true", help="machine-readable output")
    inf.set_defaults(func=_info)

    aud = verbs.add_parser(
        "audit",
        help="Experiment 1: which recorded readings could an eavesdropper read?",
        description="Count the transmissions in a bag that carry a patient reading and decide, "
        "without any key and without trusting technique labels, which are readable.",
    )
    aud.add_argument("bag", help="bag directory or .mcap file")
    aud.add_argument("--json", action="store_true", help="machine-readable output (stable)")
    aud.add_argument(
        "--max-items", type=at_least(0), default=None, help="cap the listed transmissions in --json"
    )
    aud.add_argument(
        "--keystore", default=None, help="also verify signatures with keys from this keystore"
    )
    aud.add_argument(
        "--radio",
        default=None,
        metavar="FILE",
        help="the run's radio map (radio.json): report each transmission's radio hop distance",
    )
    aud.set_defaults(func=_audit)

    ply = verbs.add_parser(
        "play",
        help="replay a bag's topics (like ros2 bag play)",
        description="Publish a bag's topic messages with their original timing. Services are "
        "not replayed.",
    )
    ply.add_argument("bag", help="bag directory or .mcap file")
    ply.add_argument("--rate", type=positive_float, default=1.0, help="playback speed factor")
    ply.add_argument("--topics", nargs="+", metavar="NAME", help="only these topics")
    ply.add_argument("--domain", type=domain_id, default=None, help="DDS domain (ROS_DOMAIN_ID)")
    ply.add_argument("--dds-config", default=None, help="loopback | lan | path to XML")
    ply.add_argument(
        "--delay", type=non_negative_float, default=0.0, help="wait S seconds before playing"
    )
    ply.add_argument(
        "--wait-for-subscribers",
        type=non_negative_float,
        default=0.0,
        metavar="S",
        help="wait up to S seconds for a subscriber on every topic first",
    )
    ply.set_defaults(func=_play)


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()

    def on_signal(_signum: int, _frame: object) -> None:
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    return stop


def _record(args: argparse.Namespace) -> int:
    from iomt.capture import RecorderParams, record

    stop = _stop_on_signals()

    def ready(_recorder: Any) -> None:
        print(f"RECORDING {args.output}", flush=True)

    config = RecorderParams(
        output=str(args.output), topics=args.topics, services=not args.no_services
    )
    stats = record(
        config,
        domain_id=args.domain,
        dds_config=args.dds_config,
        duration_s=args.duration,
        stop=stop,
        on_ready=ready,
    )
    print(f"STOPPED {json.dumps(stats.to_json(), sort_keys=True)}", flush=True)
    return 0


def _info(args: argparse.Namespace) -> int:
    from iomt.capture.bag import info

    summary = info(args.bag)
    if args.json:
        print(json.dumps(summary.to_json(), indent=2, sort_keys=True))
    else:
        print(summary.render())
    return 0


def _audit(args: argparse.Namespace) -> int:
    from iomt.capture.audit import audit, load_keystore_verifier
    from iomt.capture.radio import RadioMap

    verifier = load_keystore_verifier(args.keystore) if args.keystore else None
    radio = RadioMap.load(args.radio) if args.radio else None
    report = audit(args.bag, verifier=verifier, radio=radio)
    if args.json:
        print(json.dumps(report.to_json(max_items=args.max_items), indent=2, sort_keys=True))
    else:
        print(report.render())
    return 0


def _play(args: argparse.Namespace) -> int:
    from iomt.capture.player import play

    stop = _stop_on_signals()
    stats = play(
        args.bag,
        rate=args.rate,
        topics=args.topics,
        domain_id=args.domain,
        dds_config=args.dds_config,
        wait_for_subscribers_s=args.wait_for_subscribers,
        delay_s=args.delay,
        stop=stop,
    )
    for topic, count in sorted(stats.published.items()):
        print(f"published {count} on {topic}")
    for topic, why in sorted(stats.skipped.items()):
        print(f"skipped {topic}: {why}", file=sys.stderr)
    return 0
