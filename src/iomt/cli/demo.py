"""``iomt demo case-study`` — the paper's Fig. 2 flow, live on DDS, step by step."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from iomt.cli.args import domain_id


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("demo", help="run a narrated demonstration")
    parser.add_argument(
        "scenario", choices=("case-study",), help="case-study: Bilal & Hassan's Fig. 2"
    )
    parser.add_argument("--domain", type=domain_id, default=None)
    parser.add_argument("--dds-config", default=None)
    parser.add_argument("--run-dir", type=Path, default=None)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from iomt.experiments.case_study import run_case_study

    console = Console()
    t0 = time.monotonic()
    run_dir = args.run_dir or Path("runs") / f"case-study-{time.strftime('%Y%m%d-%H%M%S')}"

    def say(who: str, what: str, detail: str) -> None:
        console.print(
            f"[dim]{time.monotonic() - t0:7.3f}[/] [bold]{who:24s}[/] [cyan]{what:14s}[/] {detail}",
            highlight=False,
        )

    console.print(
        "[bold]Case study (Fig. 2):[/] patient 1 wears hr_1 (cannot encrypt) and "
        "bp_1 (ECC); vent_2 (CP-ABE) stands at the bedside; Dr House asks.\n"
    )
    result = run_case_study(
        run_dir=run_dir, domain_id=args.domain, dds_config=args.dds_config, say=say
    )
    console.print("\n[bold]What Dr House decrypted and verified[/] (FHIR R4 vital signs):")
    for obs in result["observations"]:
        code = obs["code"]["coding"][0]
        if "valueQuantity" in obs:
            q = obs["valueQuantity"]
            value = f"{q['value']} {q['unit']}"
        else:
            value = "/".join(f"{c['valueQuantity']['value']}" for c in obs["component"]) + " mm[Hg]"
        console.print(
            f"  {obs['device']['display']}: {code['display']} (LOINC {code['code']}) "
            f"= {value}; {obs['note'][0]['text'] if obs.get('note') else ''}"
        )
    for r in result["requests"]:
        console.print(
            f"  request to {r['device'].rsplit('/', 1)[-1]} in {r['technique']}: "
            f"{r['outcome']} in {r['access_us'] / 1000:.1f} ms"
        )
    console.print(
        f"\nTraffic recorded to {result['bag']} (iomt bag audit {result['bag']}); "
        f"FHIR bundle {result['fhir']}."
    )
    return 0
