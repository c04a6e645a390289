"""Where the CPU goes in a sharing run: per process kind, per thread, per stage.

    python bench/profile_sharing.py [--devices 400] [--requests 40000] [--concurrency 1]
                                    [--delay 15] [--duration 20] [--out DIR] [--domain 160]

Launches one experiment (recorder on) and, ``--delay`` seconds after the ward is READY,
samples it for ``--duration`` seconds:

* per thread CPU of every process (``/proc/<pid>/task``: the Python thread running the
  executor vs Cyclone's own threads — receive, timed events, delivery queues), and
* ``py-spy record`` of every process (raw collapsed stacks; needs ``pip install py-spy``
  in the venv, not a project dependency), folded into stages by the frames on the stack:
  CDR, DDS (cyclonedds calls), crypto, SQLite, recorder, registration, discovery/matching,
  executor, logging, timers, FHIR.

Writes ``DIR/<process>.txt`` (py-spy raw) and ``DIR/profile.json``; prints the tables.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import psutil

# (stage, substrings of a frame) -- the first stage whose pattern occurs on a stack, scanning
# from the innermost frame outwards, gets the sample (a stack in the recorder's bag writer
# that calls CDR code counts as CDR: the innermost match wins).
STAGES: list[tuple[str, tuple[str, ...]]] = [
    ("logging", ("logging/__init__.py",)),
    ("sqlite", ("sqlite3",)),
    ("fhir", ("fhir", "pydantic")),
    ("crypto", ("cryptography/", "iomt/crypto/", "hashlib", "hmac.py")),
    ("cdr", ("iomt/msg/_", "_support.py", "cyclonedds/idl")),
    (
        "matching",
        (
            "get_matched",
            "matched_subscriptions",
            "matched_publications",
            "_endpoint_id",
            "service_is_ready",
            "cqos_to_qos",
        ),
    ),
    (
        "dds-take-write",
        ("take_raw", "write_raw", "cyclonedds/pub.py", "cyclonedds/sub.py", "ddspy_"),
    ),
    ("dds-entities", ("cyclonedds/",)),
    ("recorder", ("iomt/capture/", "rosbags/")),
    ("registration", ("registration", "_on_registration", "_announce")),
    ("graph", ("_publish_graph", "context.py")),
    ("executor", ("executor.py", "timer.py", "waitable.py")),
]


def stage_of(stack: list[str]) -> str:
    for frame in reversed(stack):
        for stage, patterns in STAGES:
            if any(p in frame for p in patterns):
                return stage
    return "other"


def fold(path: Path) -> dict[str, Any]:
    stages: Counter[str] = Counter()
    self_time: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack_s, _, count_s = line.rpartition(" ")
        try:
            count = int(count_s)
        except ValueError:
            continue
        frames = [
            f
            for f in stack_s.split(";")
            if f and not f.startswith("process ") and not f.startswith("thread ")
        ]
        total += count
        stages[stage_of(frames)] += count
        if frames:
            self_time[frames[-1]] += count
        for f in set(frames):
            inclusive[f] += count
    return {"samples": total, "stages": stages, "self": self_time, "inclusive": inclusive}


CPROFILE_STAGES: list[tuple[str, tuple[str, ...]]] = [
    ("logging", ("logging/",)),
    ("sqlite", ("sqlite3",)),
    ("fhir", ("fhir", "pydantic")),
    ("recorder", ("iomt/capture/", "rosbags/", "ruamel", "yaml")),
    (
        "crypto",
        ("cryptography", "iomt/crypto/", "_hashlib", "hashlib", "hmac", "AESGCM", "_cffi_backend"),
    ),
    ("cdr", ("iomt/msg/", "cyclonedds/idl", "struct")),
    (
        "matching",
        (
            "get_matched",
            "_matched",
            "_endpoint_id",
            "service_is_ready",
            "cqos_to_qos",
            "user_data_id",
        ),
    ),
    ("dds", ("cyclonedds/", "iomt/runtime/_dds.py", "ctypes")),
    ("registration", ("core/registration.py", "_on_registration", "_announce", "_expire")),
    ("graph", ("runtime/context.py",)),
    ("executor", ("runtime/executor.py", "runtime/timer.py", "runtime/task.py")),
    ("runtime", ("iomt/runtime/",)),
    ("results", ("json/",)),
    ("protocol", ("iomt/core/", "iomt/nodes/")),
]


def _stage_of_func(func: tuple[str, int, str]) -> str | None:
    filename, _line, name = func
    text = f"{filename}:{name}"
    for stage, patterns in CPROFILE_STAGES:
        if any(p in text for p in patterns):
            return stage
    return None


def fold_cprofile(paths: list[Path]) -> dict[str, Any]:
    """CPU seconds (thread time) by stage and the top functions, over ``paths``."""
    import pstats

    stats = pstats.Stats(str(paths[0]))
    for extra in paths[1:]:
        stats.add(str(extra))
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    stages: Counter[str] = Counter()

    def stage(func: Any, depth: int = 0) -> str:
        found = _stage_of_func(func)
        if found is not None or depth > 6:
            return found or "other"
        callers = raw.get(func, (0, 0, 0, 0, {}))[4]
        if not callers:
            return "other"
        # a builtin (filename "~") or an unclassified frame: charged to its main caller's stage
        main = max(callers.items(), key=lambda kv: kv[1][2] if isinstance(kv[1], tuple) else 0)
        return stage(main[0], depth + 1)

    total = 0.0
    for func, (_cc, _nc, tt, _ct, _callers) in raw.items():
        stages[stage(func)] += tt
        total += tt
    top_self = sorted(raw.items(), key=lambda kv: -kv[1][2])[:25]
    top_cum = sorted(raw.items(), key=lambda kv: -kv[1][3])[:40]

    def label(func: Any) -> str:
        filename, line, name = func
        short = "/".join(filename.split("/")[-2:])
        return f"{name} ({short}:{line})"

    return {
        "cpu_s": total,
        "stages": stages,
        "self": [(label(f), v[2], v[1]) for f, v in top_self],
        "cum": [(label(f), v[3], v[1]) for f, v in top_cum],
    }


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds by thread name (threads of the same name summed)."""
    out: dict[str, float] = defaultdict(float)
    task = Path(f"/proc/{pid}/task")
    try:
        tids = list(task.iterdir())
    except OSError:
        return {}
    tick = 100.0
    for t in tids:
        try:
            name = (t / "comm").read_text().strip()
            fields = (t / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[name] += (int(fields[11]) + int(fields[12])) / tick
    return dict(out)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--devices", type=int, default=400)
    parser.add_argument("--mode", default="distributed")
    parser.add_argument("--requests", type=int, default=40_000)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--delay", type=float, default=15.0, help="s after READY")
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--rate", type=int, default=67)
    parser.add_argument("--pyspy", action="store_true", help="also py-spy (wall-clock) stacks")
    parser.add_argument("--no-cprofile", action="store_true")
    parser.add_argument("--perf", action="store_true", help="also perf record (native DSOs)")
    parser.add_argument("--extra", default="{}", help="topology parameters (JSON)")
    parser.add_argument("--dds-config", default=None, help="loopback | lan | path to XML")
    parser.add_argument("--no-record", action="store_true")
    parser.add_argument("--domain", type=int, default=160)
    parser.add_argument("--out", type=Path, default=Path("/tmp/iomt-profile"))
    args = parser.parse_args()

    from iomt.experiments.resources import process_kind
    from iomt.experiments.sharing import ExperimentConfig, run

    out = args.out
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    run_dir = out / "run"
    result: dict[str, Any] = {}
    if not args.no_cprofile:
        from iomt.runtime.container import PROFILE_ENV

        os.environ[PROFILE_ENV] = str(out / "cprofile")

    def experiment() -> None:
        try:
            result["report"] = run(
                ExperimentConfig(
                    f"scale_{args.devices}",
                    mode=args.mode,
                    requests=args.requests,
                    concurrency=args.concurrency,
                    domain_id=args.domain,
                    run_dir=run_dir,
                    record=not args.no_record,
                    timeout_s=3600,
                    dds_config=args.dds_config,
                    extra=json.loads(args.extra),
                )
            )
        except Exception as exc:
            result["error"] = repr(exc)

    th = threading.Thread(target=experiment, daemon=True)
    th.start()
    specs = run_dir / "specs"
    while th.is_alive():
        ready = list(specs.glob("*.ready")) if specs.exists() else []
        names = [p.stem for p in specs.glob("*.json")] if specs.exists() else []
        if names and len(ready) == len(names):
            break
        time.sleep(0.2)
    time.sleep(args.delay)
    pids: dict[str, int] = {}
    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmd = proc.info["cmdline"] or []
        for i, c in enumerate(cmd):
            if c == "--spec" and i + 1 < len(cmd) and cmd[i + 1].startswith(str(specs)):
                pids[Path(cmd[i + 1]).stem] = proc.info["pid"]
    before = {n: thread_cpu(p) for n, p in pids.items()}
    if not args.no_cprofile:
        for pid in pids.values():
            os.kill(pid, signal.SIGUSR1)
    perf = None
    if args.perf:
        perf = subprocess.Popen(
            [
                "perf",
                "record",
                "-e",
                "cpu-clock",
                "-F",
                "499",
                "-p",
                ",".join(str(p) for p in pids.values()),
                "-o",
                str(out / "perf.data"),
                "--",
                "sleep",
                str(args.duration),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    spies = []
    if args.pyspy:
        pyspy = Path(sys.executable).parent / "py-spy"
        for name, pid in pids.items():
            spies.append(
                subprocess.Popen(
                    [
                        str(pyspy),
                        "record",
                        "-p",
                        str(pid),
                        "-d",
                        str(int(args.duration)),
                        "-r",
                        str(args.rate),
                        "-f",
                        "raw",
                        "--nonblocking",
                        "-o",
                        str(out / f"{name}.txt"),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
    time.sleep(args.duration)
    after = {n: thread_cpu(p) for n, p in pids.items()}
    if not args.no_cprofile:
        for pid in pids.values():
            os.kill(pid, signal.SIGUSR2)
    for spy in spies:
        spy.wait()
    if perf is not None:
        perf.wait()
    th.join()

    # -- tables ----------------------------------------------------------------------------
    threads_by_kind: dict[str, Counter[str]] = defaultdict(Counter)
    for name in pids:
        kind = process_kind(name)
        for t, v in after.get(name, {}).items():
            threads_by_kind[kind][t] += v - before.get(name, {}).get(t, 0.0)
    stages_by_kind: dict[str, Counter[str]] = defaultdict(Counter)
    self_by_kind: dict[str, Counter[str]] = defaultdict(Counter)
    incl_by_kind: dict[str, Counter[str]] = defaultdict(Counter)
    samples_by_kind: Counter[str] = Counter()
    for name in pids:
        f = out / f"{name}.txt"
        if not f.exists():
            continue
        folded = fold(f)
        kind = process_kind(name)
        samples_by_kind[kind] += folded["samples"]
        stages_by_kind[kind].update(folded["stages"])
        self_by_kind[kind].update(folded["self"])
        incl_by_kind[kind].update(folded["inclusive"])
    cprof: dict[str, Any] = {}
    if not args.no_cprofile:
        by_kind_files: dict[str, list[Path]] = defaultdict(list)
        for name in pids:
            f = out / "cprofile" / f"{name}.prof"
            if f.exists():
                by_kind_files[process_kind(name)].append(f)
        cprof = {k: fold_cprofile(v) for k, v in sorted(by_kind_files.items())}
    perf_dso: dict[str, Counter[str]] = defaultdict(Counter)
    if perf is not None:
        kind_of_pid = {pid: process_kind(n) for n, pid in pids.items()}
        rep = subprocess.run(
            [
                "perf",
                "report",
                "-i",
                str(out / "perf.data"),
                "--sort",
                "pid,dso",
                "--stdio",
                "--no-children",
                "-g",
                "none",
                "--percent-limit",
                "0.3",
            ],
            capture_output=True,
            text=True,
            check=False,
        ).stdout
        for line in rep.splitlines():
            parts = line.split()
            if len(parts) >= 3 and parts[0].endswith("%") and ":" in parts[1]:
                pid = int(parts[1].split(":")[0])
                perf_dso[kind_of_pid.get(pid, "?")][parts[2]] += float(parts[0][:-1])
    report = result.get("report") or {}
    print(
        f"sampled {args.duration:g} s, {args.delay:g} s after READY; run: "
        f"{json.dumps((report.get('resources') or {}).get('requests_per_s'))} req/s, "
        f"{result.get('error', '')}"
    )
    print("\nCPU seconds by thread (during the sample), per process kind:")
    for kind, threads in sorted(threads_by_kind.items()):
        total = sum(threads.values())
        top = ", ".join(f"{t} {v:.2f}" for t, v in threads.most_common(6))
        print(f"  {kind:10s} {total:6.2f} s  ({top})")
    if cprof:
        print("\nExecutor-thread CPU by stage (cProfile, thread time; shares of the kind's total):")
        for kind, c in cprof.items():
            n = c["cpu_s"] or 1
            print(
                f"  {kind:10s} {c['cpu_s']:6.2f} s: "
                + ", ".join(
                    f"{s} {100 * v / n:.0f}%"
                    for s, v in c["stages"].most_common()
                    if v / n >= 0.005
                )
            )
        for kind, c in cprof.items():
            print(f"\n  {kind}: top self CPU (s, calls)")
            for label, t, calls in c["self"]:
                print(f"     {t:7.3f} {calls:8d}  {label}")
            print(f"  {kind}: top cumulative CPU (s, calls)")
            for label, t, calls in c["cum"]:
                print(f"     {t:7.3f} {calls:8d}  {label}")
    if perf_dso:
        print("\nNative CPU by library (perf, % of all samples of the run):")
        for kind, c in sorted(perf_dso.items()):
            print(f"  {kind:10s} " + ", ".join(f"{d} {v:.1f}%" for d, v in c.most_common(8)))
    print("\nPython samples by stage (py-spy, wall-clock active; share of the kind's samples):")
    for kind, stages in sorted(stages_by_kind.items()):
        n = samples_by_kind[kind] or 1
        print(
            f"  {kind:10s} " + ", ".join(f"{s} {100 * v / n:.0f}%" for s, v in stages.most_common())
        )
    print("\nTop self frames per kind:")
    for kind, c in sorted(self_by_kind.items()):
        n = samples_by_kind[kind] or 1
        print(f"  {kind}:")
        for frame, v in c.most_common(12):
            print(f"     {100 * v / n:5.1f}%  {frame}")
    print("\nTop inclusive frames per kind:")
    for kind, c in sorted(incl_by_kind.items()):
        n = samples_by_kind[kind] or 1
        print(f"  {kind}:")
        for frame, v in c.most_common(25):
            print(f"     {100 * v / n:5.1f}%  {frame}")
    (out / "profile.json").write_text(
        json.dumps(
            {
                "threads": {k: dict(v) for k, v in threads_by_kind.items()},
                "stages": {k: dict(v) for k, v in stages_by_kind.items()},
                "samples": dict(samples_by_kind),
                "cprofile": {
                    k: {
                        "cpu_s": v["cpu_s"],
                        "stages": dict(v["stages"]),
                        "self": v["self"],
                        "cum": v["cum"],
                    }
                    for k, v in cprof.items()
                },
                "perf_dso": {k: dict(v) for k, v in perf_dso.items()},
                "resources": report.get("resources"),
                "error": result.get("error"),
            },
            indent=1,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
