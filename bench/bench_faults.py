"""Fault drills: SIGKILL one process of a running ward and check the run completes.

    PYTHONPATH=src python bench/bench_faults.py [--topology scale_50] [--mode biomt]
        [--requests 20000] [--kill bolster_0 --kill devices_0 ...] [--at 0.3]
        [--signal KILL] [--launcher] [--json]

For each ``--kill`` target (a process name of the plan; default: a bolster that is its
cluster's head, the other bolster, the device group, the wallet group, the facility process
with the cloud, admin and master), one run of ``iomt launch`` as a real command: when the
providers' results files show ``--at`` of the requests done, the target process is sent
``--signal`` (SIGKILL: no goodbye, no flush); the launcher must restart it and finish. Then:

* the run's report: requests done/failed/refused, the supervisor's crashes and restarts
  (and how long the restart took to be READY), Stores acknowledged and found in the
  ledgers (``lost`` must be 0), every ledger and local storage audited, device storage;
* no process of the run outlives the launcher (``/proc`` scanned for the run directory).

``--launcher`` instead SIGKILLs ``iomt launch`` itself mid-run and checks every container
of the ward is gone within seconds (PR_SET_PDEATHSIG), then SIGTERMs a second launch and
checks the same.

Long (a 20,000-request run per target takes minutes on two cores): not in the test
command; ``tests/attacks/test_attack_crash.py`` runs short versions.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests")]
# the attack suite's helpers: the processes of a run (zombies left out), a container's pid,
# the requests its providers have recorded
from attacks.attack_wards import container_pid, processes_of, requests_done  # noqa: E402

DEFAULT_TARGETS = ("bolster_0", "bolster_1", "devices_0", "wallets_0", "facility")


class Isolation:
    """A network namespace of the drill's own (loopback up, nothing else): other test runs
    on this machine pick random DDS domains too, and one that lands on the drill's domain
    would join its ward. Removed afterwards."""

    def __init__(self, enabled: bool) -> None:
        self.name = f"iomt-drill-{random.SystemRandom().randrange(16**6):06x}" if enabled else ""

    def __enter__(self) -> Isolation:
        if self.name:
            subprocess.run(["ip", "netns", "add", self.name], check=True)
            subprocess.run(["ip", "-n", self.name, "link", "set", "lo", "up"], check=True)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.name:
            subprocess.run(["ip", "netns", "del", self.name], check=False)

    def prefix(self) -> list[str]:
        return ["ip", "netns", "exec", self.name] if self.name else []


def launch_cmd(args: argparse.Namespace, run_dir: Path, domain: int) -> list[str]:
    cmd = [
        *args.isolation.prefix(),
        sys.executable,
        "-m",
        "iomt",
        "launch",
        args.topology,
        "--mode",
        args.mode,
        "--requests",
        str(args.requests),
        "--domain",
        str(domain),
        "--run-dir",
        str(run_dir),
        "--timeout",
        str(args.timeout),
        "--json",
    ]
    if args.no_record:
        cmd.append("--no-record")
    return cmd


def env() -> dict[str, str]:
    e = dict(os.environ)
    e["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT / "src"), e.get("PYTHONPATH")) if p)
    e.pop("CYCLONEDDS_URI", None)
    return e


def wait_for(predicate: Any, timeout_s: float, poll_s: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(poll_s)
    return False


def drill(args: argparse.Namespace, target: str, base: Path) -> dict[str, Any]:
    run_dir = base / f"kill-{target}"
    domain = random.SystemRandom().randint(1, 230)
    t0 = time.monotonic()
    with (base / f"kill-{target}.stderr").open("wb") as err:
        launcher = subprocess.Popen(
            launch_cmd(args, run_dir, domain),
            stdout=subprocess.PIPE,
            stderr=err,
            env=env(),
            start_new_session=True,
        )
    row: dict[str, Any] = {"target": target, "domain": domain}
    try:
        at = int(args.at * args.requests)
        if not wait_for(lambda: requests_done(run_dir) >= at or launcher.poll() is not None, 900):
            row["error"] = f"never reached {at} requests"
            return row
        pid = container_pid(run_dir, target)
        if pid is None:
            row["error"] = f"no process {target}"
            return row
        row["killed_pid"] = pid
        row["killed_at_requests"] = requests_done(run_dir)
        row["killed_at_s"] = round(time.monotonic() - t0, 1)
        os.kill(pid, getattr(signal, f"SIG{args.signal}"))
        out, _ = launcher.communicate(timeout=args.timeout + 300)
        row["launcher_exit"] = launcher.returncode
        row["wall_s"] = round(time.monotonic() - t0, 1)
        time.sleep(1.0)
        row["orphans"] = sorted(processes_of(run_dir))
        if launcher.returncode != 0:
            row["error"] = (base / f"kill-{target}.stderr").read_text(errors="replace")[-2000:]
            return row
        report = json.loads(out)
        row.update(summarize(report))
    finally:
        if launcher.poll() is None:
            os.killpg(launcher.pid, signal.SIGKILL)
            launcher.wait(10)
    return row


def summarize(report: dict[str, Any]) -> dict[str, Any]:
    sup = report.get("supervision") or {}
    out: dict[str, Any] = {
        "crashes": sup.get("crashes"),
        "restarts": sup.get("restarts"),
        "events": [
            {k: e[k] for k in ("process", "exit", "at_s", "backoff_s", "ready_after_s")}
            for e in sup.get("events", [])
        ],
        "at_rest_valid": (report.get("at_rest") or {}).get("valid"),
        "exposed_paths": len((report.get("at_rest") or {}).get("exposed", [])),
    }
    if "sharing" in report:  # biomt
        s = report["sharing"]
        out["requests"] = {
            k: s[k] for k in ("requests", "shared", "converted", "refused", "failed")
        }
        out["stores"] = {k: report["stores"][k] for k in ("acknowledged", "in_ledgers", "lost")}
        out["ledgers"] = {
            name: [row.get("audit"), (row.get("local_storage") or {}).get("audit")]
            for name, row in report["ledgers"].items()
        }
        out["physicians"] = report["physicians"]["counts"]
    else:
        r = report["requests"]
        out["requests"] = {
            k: r.get(k) for k in ("total", "shared", "converted", "refused", "failed", "resent")
        }
    reasons = (report.get("requests") or {}).get("refusal_reasons")
    if reasons:
        out["reasons"] = reasons
    return out


def launcher_drill(args: argparse.Namespace, base: Path, sig: signal.Signals) -> dict[str, Any]:
    """Kill ``iomt launch`` itself mid-run: every container must go with it."""
    run_dir = base / f"launcher-{sig.name}"
    domain = random.SystemRandom().randint(1, 230)
    launcher = subprocess.Popen(
        launch_cmd(args, run_dir, domain),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env(),
        start_new_session=True,
    )
    row: dict[str, Any] = {"signal": sig.name}
    try:
        wait_for(lambda: requests_done(run_dir) >= min(200, args.requests // 10), 600)
        containers = [p for p, c in processes_of(run_dir).items() if "iomt.runtime.container" in c]
        row["containers"] = len(containers)
        t = time.monotonic()
        os.kill(launcher.pid, sig)
        launcher.wait(60)
        gone = wait_for(lambda: not processes_of(run_dir), 30, 0.05)
        row["all_gone"] = gone
        row["gone_after_s"] = round(time.monotonic() - t, 2)
        row["left"] = sorted(processes_of(run_dir))
        row["launcher_exit"] = launcher.returncode
    finally:
        for pid in processes_of(run_dir):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--topology", default="scale_50")
    parser.add_argument("--mode", default="biomt")
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--kill", action="append", default=[], metavar="PROCESS")
    parser.add_argument("--at", type=float, default=0.3, help="fraction of requests done")
    parser.add_argument("--signal", default="KILL")
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument("--no-record", action="store_true")
    parser.add_argument("--launcher", action="store_true", help="kill iomt launch itself")
    parser.add_argument("--base", type=Path, default=ROOT / "runs" / "faults")
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--no-isolate",
        action="store_true",
        help="run on the machine's loopback (default: a network namespace of its own)",
    )
    args = parser.parse_args()
    args.isolation = Isolation(not args.no_isolate and os.geteuid() == 0)
    base = args.base / time.strftime("%Y%m%d-%H%M%S")
    base.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    with args.isolation:
        run_all(args, base, rows)
    if args.json:
        print(json.dumps(rows, indent=2))
    (base / "faults.json").write_text(json.dumps(rows, indent=2), encoding="utf-8")
    failed = [
        r
        for r in rows
        if r.get("error")
        or r.get("orphans")
        or r.get("left")
        or (r.get("stores") or {}).get("lost")
        or r.get("all_gone") is False
    ]
    return 1 if failed else 0


def run_all(args: argparse.Namespace, base: Path, rows: list[dict[str, Any]]) -> None:
    if args.launcher:
        for sig in (signal.SIGKILL, signal.SIGTERM):
            rows.append(launcher_drill(args, base, sig))
            print(json.dumps(rows[-1]), flush=True)
    else:
        for target in args.kill or DEFAULT_TARGETS:
            rows.append(drill(args, target, base))
            print(json.dumps(rows[-1]), flush=True)


if __name__ == "__main__":
    sys.exit(main())
