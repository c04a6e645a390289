"""``iomt-group``: run one process of a built-in topology (what ROS 2 launch files start).

    iomt-group --topology scale_400 --process devices_3 [--option key=value ...]

The plan is regenerated from the same pure, seeded generator the ``iomt launch``
supervisor uses, so a ROS 2 launch file needs no spec files on disk.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from iomt.errors import IomtError
from iomt.runtime.container import ContainerNode, run
from iomt.topology import load


def parse_options(pairs: Sequence[str]) -> dict[str, str]:
    """``key=value`` pairs as text: the topology parses each by its option's type."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"--option expects key=value, got {pair!r}")
        out[key.replace("-", "_")] = value
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="iomt-group", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--topology", required=True)
    parser.add_argument("--process", required=True)
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--domain", type=int, default=None)
    parser.add_argument("--dds-config", default=None)
    parser.add_argument("--runtime", default="embedded", choices=("embedded", "rclpy"))
    # ROS 2 launch appends --ros-args ...; accept and ignore it.
    args, _ros_args = parser.parse_known_args(argv)
    os.umask(0o077)  # nodes write readings, ledgers and keys: owner-only
    try:
        plan = load(args.topology, **parse_options(args.option))
        proc = plan.process(args.process)
    except IomtError as exc:
        print(f"iomt-group: {exc}", file=sys.stderr)
        return 2
    # as a spec file would carry them: the nodes get the values a supervisor's would
    specs = [ContainerNode.from_json(n.to_json()) for n in proc.nodes]
    return run(specs, domain_id=args.domain, dds_config=args.dds_config, runtime=args.runtime)


if __name__ == "__main__":
    sys.exit(main())
