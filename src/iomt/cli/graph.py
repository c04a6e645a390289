"""``iomt graph`` — what ``ros2 node list``, ``ros2 topic list -t``, ``ros2 service list -t``
and rqt_graph show, read from DDS discovery on the chosen domain.

    iomt graph                      nodes, topics and services as tables
    iomt graph --json               the same as JSON
    iomt graph --dot graph.dot      Graphviz source (nodes -> topics -> nodes)
    iomt graph --png graph.png      rendered with Graphviz's `dot`
    iomt graph --expect-nodes 400   wait until at least 400 nodes are visible

The picture groups what a ward repeats: nodes and topics that differ only in their numbers
(``/ward1/hr_0`` ... ``/ward1/hr_199``; ``/iomt/registration/c0_1`` ...) become one box with
a count, inside a cluster per namespace; services are folded away unless ``--services``.
``--expand`` draws every node and topic, as rqt_graph's "Nodes/Topics (all)" does.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from iomt.cli.args import at_least, domain_id, positive_float
from iomt.errors import ConfigurationError

if TYPE_CHECKING:
    from iomt.runtime.graph import GraphSnapshot


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "graph",
        help="show the node graph (nodes, topics, services) from DDS discovery",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--domain", type=domain_id, default=None, help="DDS domain id (default: ROS_DOMAIN_ID or 0)"
    )
    parser.add_argument("--dds-config", default=None, help="loopback (default) | lan | XML path")
    parser.add_argument(
        "--wait",
        type=positive_float,
        default=3.0,
        help="seconds to let discovery settle (default 3)",
    )
    parser.add_argument(
        "--expect-nodes",
        type=at_least(0),
        default=0,
        help="wait (up to --wait) until at least this many nodes are visible "
        "with all their endpoints",
    )
    out = parser.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print JSON")
    out.add_argument("--dot", metavar="FILE", help="write Graphviz source ('-' for stdout)")
    out.add_argument("--png", metavar="FILE", help="render a PNG with Graphviz")
    parser.add_argument(
        "--services", action="store_true", help="draw services too (folded away by default)"
    )
    parser.add_argument(
        "--expand", action="store_true", help="every node and topic, ungrouped (small graphs)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from iomt.runtime import Context
    from iomt.runtime.graph import GraphReader

    t0 = time.monotonic()
    with Context(domain_id=args.domain, dds_config_name=args.dds_config) as ctx:
        reader = GraphReader(ctx)
        if args.expect_nodes:
            snap = reader.wait_until(
                lambda s: len(s.complete_node_names()) >= args.expect_nodes, args.wait
            )
        else:
            snap = reader.settle(quiet_s=min(0.5, args.wait), timeout_s=args.wait)
        reader.close()
    elapsed = time.monotonic() - t0
    if args.json:
        data = snap.to_json()
        data["discovery_seconds"] = round(elapsed, 3)
        print(json.dumps(data, indent=2))
    elif args.dot:
        text = to_dot(snap, services=args.services, expand=args.expand)
        if args.dot == "-":
            sys.stdout.write(text)
        else:
            Path(args.dot).write_text(text, encoding="utf-8")
    elif args.png:
        render_png(to_dot(snap, services=args.services, expand=args.expand), Path(args.png))
        print(f"wrote {args.png} ({len(snap.node_names())} nodes)")
    else:
        print_tables(snap, elapsed)
    if args.expect_nodes and len(snap.complete_node_names()) < args.expect_nodes:
        print(
            f"iomt graph: only {len(snap.node_names())} of {args.expect_nodes} nodes "
            f"visible after {args.wait:g} s",
            file=sys.stderr,
        )
        return 1
    return 0


def print_tables(snap: GraphSnapshot, elapsed: float) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    nodes = Table(
        title=f"Nodes ({len(snap.node_names())}; {len(snap.participants)} "
        f"participants; discovery {elapsed:.1f} s)"
    )
    for col in ("node", "publishes", "subscribes", "serves", "calls"):
        nodes.add_column(col)
    for n in sorted(snap.nodes, key=lambda n: n.fqn):
        nodes.add_row(
            n.fqn,
            *("\n".join(sorted(t)) for t in (n.publishers, n.subscriptions, n.services, n.clients)),
        )
    console.print(nodes)
    topics = Table(title="Topics")
    for col in ("topic", "type", "publishers", "subscribers"):
        topics.add_column(col)
    for name, t in snap.topics().items():
        topics.add_row(
            name,
            ", ".join(sorted(t["types"])),
            str(len(t["publishers"])),
            str(len(t["subscribers"])),
        )
    console.print(topics)
    services = Table(title="Services")
    for col in ("service", "type", "servers", "clients"):
        services.add_column(col)
    for name, s in snap.services().items():
        services.add_row(
            name, ", ".join(sorted(s["types"])), str(len(s["servers"])), str(len(s["clients"]))
        )
    console.print(services)


def _quote(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


_DIGITS = re.compile(r"[0-9]+")


def fold(name: str) -> str:
    """A ROS name with every number after its first segment replaced by ``*``
    (``/ward1/hr_12`` -> ``/ward1/hr_*``; ``/iomt/registration/c0_1`` -> ``.../c*_*``)."""
    head, sep, rest = name.lstrip("/").partition("/")
    return "/" + head + sep + _DIGITS.sub("*", rest) if sep else name


def _namespace(fqn: str) -> str:
    """The top-level namespace (``/ward1`` of ``/ward1/dr_0/inbox``): one cluster each."""
    head, sep, _rest = fqn.lstrip("/").partition("/")
    return "/" + head if sep else "/"


def to_dot(snap: GraphSnapshot, *, services: bool = False, expand: bool = False) -> str:
    """rqt_graph's nodes-and-topics picture: ellipses for nodes, boxes for topics (octagons
    for services), one cluster per namespace; grouped unless ``expand``."""
    group = (lambda name: name) if expand else fold
    members: dict[str, set[str]] = {}  # group -> member names
    edges: dict[tuple[str, str, str], int] = {}  # (from id, to id, style) -> count

    def add(kind: str, name: str) -> str:
        key = f"{kind}:{group(name)}"
        members.setdefault(key, set()).add(name)
        return key

    for n in snap.nodes:
        node = add("n", n.fqn)
        links = [(add("t", t), node, "solid") for t in n.subscriptions]
        links += [(node, add("t", t), "solid") for t in n.publishers]
        if services:
            links += [(add("s", s), node, "dashed") for s in n.services]
            links += [(node, add("s", s), "dashed") for s in n.clients]
        for edge in links:
            edges[edge] = edges.get(edge, 0) + 1
    clusters: dict[str, list[str]] = {}
    for key in members:
        clusters.setdefault(_namespace(key.split(":", 1)[1]), []).append(key)
    shapes = {"n": "ellipse", "t": "box", "s": "octagon"}
    lines = [
        "digraph iomt {",
        "  rankdir=LR;",
        "  node [fontsize=10];",
        "  edge [arrowsize=0.6];",
    ]
    for i, (namespace, keys) in enumerate(sorted(clusters.items())):
        lines += [
            f"  subgraph cluster_{i} {{",
            f"    label={_quote(namespace)};",
            "    style=dashed;",
        ]
        for key in sorted(keys):
            kind, name = key.split(":", 1)
            count = len(members[key])
            label = _quote(name)
            if count > 1:  # the count on a second line (\\n: DOT's line break)
                label = label[:-1] + f'\\n({count})"'
            lines.append(
                f"    {_quote(key)} [label={label}, shape={shapes[kind]}"
                + (", peripheries=2" if count > 1 else "")
                + "];"
            )
        lines.append("  }")
    for (src, dst, style), count in sorted(edges.items()):
        attrs = [f"style={style}"] + ([f"label={_quote(str(count))}"] if count > 1 else [])
        lines.append(f"  {_quote(src)} -> {_quote(dst)} [{', '.join(attrs)}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def render_png(dot_source: str, path: Path) -> None:
    dot = shutil.which("dot")
    if dot is None:
        raise ConfigurationError(
            "--png needs Graphviz's `dot` (apt-get install graphviz; "
            "scripts/bootstrap.sh installs it); --dot writes the source"
        )
    with tempfile.NamedTemporaryFile("w", suffix=".dot", delete=False) as f:
        f.write(dot_source)
    try:
        subprocess.run(
            [dot, "-Tpng", "-o", str(path), f.name], check=True, timeout=120, capture_output=True
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        raise ConfigurationError(f"graphviz failed: {exc}") from exc
    finally:
        Path(f.name).unlink(missing_ok=True)
