"""``iomt crypto``: the security techniques and their measured costs.

iomt crypto techniques [--json]      the paper's security techniques, by capability
iomt crypto bench [--json] [--quick] seal/open per technique, CP-ABE scaling, tokens,
                                     signatures, sessions (medians on this machine)
"""

# Handlers import their dependencies lazily so `iomt --help` stays fast.

from __future__ import annotations

import argparse
import json
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "crypto", help="security techniques and their benchmark", description=__doc__
    )
    sub = parser.add_subparsers(dest="crypto_command", metavar="ACTION")
    sub.required = True
    tech = sub.add_parser("techniques", help="list the security techniques")
    tech.add_argument("--json", action="store_true")
    tech.set_defaults(func=_techniques)
    bench = sub.add_parser("bench", help="measure every technique, tokens and sessions")
    bench.add_argument("--json", action="store_true", help="machine-readable output")
    bench.add_argument("--quick", action="store_true", help="fewer repetitions (smoke run)")
    bench.set_defaults(func=_bench)


def _techniques(args: argparse.Namespace) -> int:
    from iomt.crypto.techniques import TECHNIQUE_NAMES, get_technique

    techniques = [get_technique(n) for n in TECHNIQUE_NAMES]
    summaries = {
        t.name: (type(t).__doc__ or "").strip().splitlines()[0].replace("``", "")
        for t in techniques
    }
    if args.json:
        rows = [
            {
                "name": t.name,
                "capability": t.capability.name.lower(),
                "encrypts": t.encrypts,
                "weak": t.weak,
                "summary": summaries[t.name],
            }
            for t in techniques
        ]
        print(json.dumps(rows, indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title="security techniques (paper: ST)")
    for col in ("name", "capability", "weak", "construction"):
        table.add_column(col)
    for t in techniques:
        table.add_row(
            t.name,
            t.capability.name.lower(),
            "[red]WEAK[/red]" if t.weak else "",
            summaries[t.name],
        )
    Console().print(table)
    return 0


def _bench(args: argparse.Namespace) -> int:
    from iomt.crypto.benchmark import run_benchmarks

    report = run_benchmarks(quick=args.quick)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table

    console = Console()
    t1 = Table(title="security techniques: seal / open (median)")
    for col in ("technique", "record", "seal µs", "open µs", "overhead B"):
        t1.add_column(col, justify="right" if col != "technique" else "left")
    for r in report.techniques:
        name = f"{r.technique} [red](weak)[/red]" if r.weak else r.technique
        t1.add_row(
            name,
            f"{r.record_bytes} B",
            f"{r.seal_us:.1f}",
            f"{r.open_us:.1f}",
            str(r.overhead_bytes),
        )
    console.print(t1)
    t2 = Table(title="CP-ABE (FAME, BLS12-381) vs policy size n and shape")
    for col in ("technique", "policy", "n", "keygen ms", "enc ms", "dec ms", "bytes"):
        t2.add_column(col, justify="left" if col in ("technique", "policy") else "right")
    for a in report.abe:
        t2.add_row(
            a.technique,
            a.policy,
            str(a.attributes),
            f"{a.keygen_ms:.2f}",
            f"{a.encrypt_ms:.2f}",
            f"{a.decrypt_ms:.2f}",
            str(a.ciphertext_bytes),
        )
    console.print(t2)
    t3 = Table(title="signatures, tokens, sessions")
    for col in ("group", "operation", "median µs", "bytes"):
        t3.add_column(col, justify="right" if col in ("median µs", "bytes") else "left")
    for o in report.ops:
        t3.add_row(
            o.group,
            o.operation,
            f"{o.median_us:.1f}",
            "" if o.size_bytes is None else str(o.size_bytes),
        )
    console.print(t3)
    return 0
