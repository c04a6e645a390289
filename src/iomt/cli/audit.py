"""``iomt audit RUN_DIR`` — is a run's data at rest what was committed, and private?

Audits every bolster's ledger against its public key, every bolster's local storage against
its ledger, every device's stored readings against their MAC chain, and lists every file or
directory of the run that someone other than its owner could read. Exit code 0 when all is
valid and private, 1 otherwise (2 for a run directory that cannot be read). See
``iomt.experiments.at_rest``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "audit",
        help="audit a run directory's ledgers, local storage and file permissions",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("run_dir", type=Path, help="a run directory (runs/<...>)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from iomt.errors import ConfigurationError
    from iomt.experiments.at_rest import audit_storage, exposed_paths

    run_dir: Path = args.run_dir
    if not (run_dir / "keystore").is_dir():
        raise ConfigurationError(f"{run_dir} is not a run directory (no keystore)")
    result: dict[str, Any] = audit_storage(run_dir)
    result["exposed"] = exposed_paths(run_dir)
    ok = result["valid"] and not result["exposed"]
    if args.json:
        print(json.dumps(result, indent=2))
        return 0 if ok else 1
    for name, row in result["ledgers"].items():
        local = row.get("local_storage")
        print(
            f"ledger {name}: {row.get('audit')}"
            + (
                f", {row['transactions']} transactions in {row['blocks']} blocks"
                if "transactions" in row
                else ""
            )
            + (
                ""
                if local is None
                else f"; local storage {local['audit']}"
                + (
                    f" ({local['present']} records, {local['removed']} removed, "
                    f"{local['evicted']} evicted)"
                    if local["audit"] == "valid"
                    else ""
                )
            )
        )
    d = result["devices"]
    print(
        f"device storage: {d['valid']}/{d['checked']} valid, {d['records']} readings "
        f"({d['sealed']} sealed, {d['plaintext']} plaintext from devices that cannot encrypt)"
    )
    for name, reason in d["invalid"].items():
        print(f"  {name}: {reason}")
    if result["not_covered"]:
        print(f"not covered (by design, see iomt.experiments.at_rest): {result['not_covered']}")
    if result["exposed"]:
        print(f"readable by others than the owner ({len(result['exposed'])}):")
        for line in result["exposed"][:20]:
            print(f"  {line}")
    print("VALID" if ok else "INVALID")
    return 0 if ok else 1
