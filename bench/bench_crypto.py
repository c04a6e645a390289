"""Security-layer benchmark: the measurements of ``iomt crypto bench``, checked against targets.

    python bench/bench_crypto.py [--json] [--quick]

Every figure is a median on this machine, printed with its target and its ratio to the
AES-GCM baseline (``sym-aes`` seal+open of a 64-byte record) measured in the same run, so
a noisy, shared box shows up as a shifted baseline rather than as a silent regression.
Exit status 1 if any target is missed.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass

from iomt.crypto.benchmark import BenchReport, run_benchmarks


@dataclass(frozen=True)
class Check:
    name: str
    value_us: float
    target_us: float

    @property
    def ok(self) -> bool:
        return self.value_us <= self.target_us


def checks(report: BenchReport) -> list[Check]:
    ecc = report.technique("ecc", 64)
    and10 = report.abe_row("cpabe", "and", 10)
    or10 = report.abe_row("cpabe", "or", 10)
    return [
        Check("ecc seal+open, 64 B record", ecc.seal_us + ecc.open_us, 200.0),
        Check(
            "session protect, 64 B request", report.op("session", "protect 64 B").median_us, 20.0
        ),
        Check(
            "session unprotect, 64 B request",
            report.op("session", "unprotect 64 B").median_us,
            20.0,
        ),
        # encryption is dearest when every attribute is its own row (OR), decryption when
        # every attribute is needed (AND); threshold policies are reported, not targeted
        Check("cpabe encrypt, 10 attributes, OR (10 rows)", or10.encrypt_ms * 1000, 8000.0),
        Check("cpabe encrypt, 10 attributes, AND", and10.encrypt_ms * 1000, 8000.0),
        Check("cpabe decrypt, 10 attributes, AND (all needed)", and10.decrypt_ms * 1000, 5000.0),
        Check("cpabe decrypt, 10 attributes, OR", or10.decrypt_ms * 1000, 5000.0),
        Check("token issue", report.op("token", "issue").median_us, 200.0),
        Check(
            "token verify (incl. proof of possession)",
            report.op("token", "verify (with proof of possession)").median_us,
            300.0,
        ),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    args = parser.parse_args(argv)

    report = run_benchmarks(quick=args.quick)
    aes = report.technique("sym-aes", 64)
    baseline = aes.seal_us + aes.open_us
    results = checks(report)

    if args.json:
        doc = report.to_dict()
        doc["baseline_us"] = {"sym-aes seal+open 64 B": baseline}
        doc["checks"] = [
            {
                "name": c.name,
                "value_us": c.value_us,
                "target_us": c.target_us,
                "ok": c.ok,
                "x_baseline": c.value_us / baseline,
            }
            for c in results
        ]
        print(json.dumps(doc, indent=2))
        return 0 if all(c.ok for c in results) else 1

    print(f"baseline: sym-aes (AES-256-GCM) seal+open 64 B = {baseline:.1f} µs\n")
    print(
        f"{'technique':<10} {'record':>7} {'seal µs':>10} {'open µs':>10} "
        f"{'x base':>8} {'overhead B':>11}"
    )
    for r in report.techniques:
        flag = "  (weak)" if r.weak else ""
        ratio = (r.seal_us + r.open_us) / baseline
        print(
            f"{r.technique:<10} {r.record_bytes:>6}B {r.seal_us:>10.1f} {r.open_us:>10.1f} "
            f"{ratio:>8.1f} {r.overhead_bytes:>11}{flag}"
        )
    print(
        f"\n{'ABE':<10} {'policy':<10} {'n':>3} {'keygen ms':>10} {'encrypt ms':>11} "
        f"{'decrypt ms':>11} {'ct bytes':>9}"
    )
    for a in report.abe:
        print(
            f"{a.technique:<10} {a.policy:<10} {a.attributes:>3} {a.keygen_ms:>10.2f} "
            f"{a.encrypt_ms:>11.2f} {a.decrypt_ms:>11.2f} {a.ciphertext_bytes:>9}"
        )
    print(f"\n{'operation':<46} {'median µs':>10} {'x base':>8} {'bytes':>6}")
    for o in report.ops:
        size = "" if o.size_bytes is None else str(o.size_bytes)
        print(
            f"{o.group + ': ' + o.operation:<46} {o.median_us:>10.1f} "
            f"{o.median_us / baseline:>8.1f} {size:>6}"
        )
    print(f"\n{'target':<48} {'measured':>12} {'target':>10} {'x base':>8}  result")
    for c in results:
        print(
            f"{c.name:<48} {c.value_us:>10.1f}µs {c.target_us:>8.0f}µs "
            f"{c.value_us / baseline:>8.1f}  {'ok' if c.ok else 'MISSED'}"
        )
    return 0 if all(c.ok for c in results) else 1


if __name__ == "__main__":
    sys.exit(main())
