"""``iomt fhir``: check FHIR exports against the vital-signs profiles.

iomt fhir validate FILE...   each FILE holds a Bundle of Observations or one Observation;
                             prints every profile violation (and plausibility warnings).
                             Exit 0 all conform, 1 some violation, 2 a file was unreadable.
"""

# Handlers import their dependencies lazily so `iomt --help` stays fast.

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "fhir",
        help="check FHIR vital-signs exports",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="fhir_command", metavar="ACTION")
    sub.required = True
    validate = sub.add_parser(
        "validate", help="check Bundles / Observations against the vital-signs profiles"
    )
    validate.add_argument("files", nargs="+", metavar="FILE", type=Path)
    validate.add_argument("--json", action="store_true", help="machine-readable output")
    validate.set_defaults(func=_validate)


def _validate(args: argparse.Namespace) -> int:
    from iomt.core.fhir import check_document

    status = 0
    report: list[dict[str, Any]] = []
    for path in args.files:
        try:
            data = path.read_bytes()
        except OSError as exc:
            status = 2
            report.append({"file": str(path), "error": str(exc)})
            if not args.json:
                print(f"{path}: cannot read: {exc}", file=sys.stderr)
            continue
        check = check_document(data)
        if not check.ok:
            status = max(status, 1)
        report.append(
            {
                "file": str(path),
                "observations": check.observations,
                "violations": [
                    {"rule": v.rule, "path": v.path, "message": v.message} for v in check.violations
                ],
                "warnings": list(check.warnings),
            }
        )
        if args.json:
            continue
        for violation in check.violations:
            print(f"{path}: {violation}")
        for warning in check.warnings:
            print(f"{path}: warning: {warning}")
        if check.ok:
            print(f"{path}: ok, {check.observations} observation(s) conform")
        else:
            print(f"{path}: {len(check.violations)} violation(s)")
    if args.json:
        print(json.dumps(report, indent=2))
    return status
