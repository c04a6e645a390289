"""What the attack suite shares: wards run as real ``iomt launch`` commands in a network
namespace of their own (no other test run's DDS traffic can reach them), processes found
by their run directory, and one BIoMT ward attacked mid-run (SIGKILLs), whose run
directory the data-at-rest attacks then work on."""

from __future__ import annotations

import contextlib
import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def launch_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(ROOT / "src"), str(ROOT / "tests"), env.get("PYTHONPATH")) if p
    )
    env.pop("CYCLONEDDS_URI", None)
    return env


def processes_of(run_dir: Path) -> dict[int, str]:
    """pid -> command line of every live process whose command line names ``run_dir``."""
    out: dict[int, str] = {}
    needle = str(run_dir)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "cmdline").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if needle.encode() in raw and state != "Z":
            out[int(entry.name)] = raw.replace(b"\0", b" ").decode(errors="replace")
    return out


def container_pid(run_dir: Path, process: str) -> int | None:
    spec = f"{run_dir}/specs/{process}.json"
    for pid, cmd in processes_of(run_dir).items():
        if spec in cmd and "iomt.runtime.container" in cmd:
            return pid
    return None


def wait_for(predicate: Callable[[], object], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def written_since(path: Path, t: float) -> bool:
    try:
        return path.stat().st_mtime > t
    except FileNotFoundError:
        return False


def requests_done(run_dir: Path) -> int:
    n = 0
    for f in (run_dir / "results").glob("dr_*.jsonl"):
        with contextlib.suppress(OSError):
            n += f.read_text(encoding="utf-8", errors="replace").count('"record":"request"')
    return n


def exposed(root: Path) -> list[str]:
    out = []
    for path in [root, *root.rglob("*")]:
        with contextlib.suppress(FileNotFoundError):
            mode = path.lstat().st_mode
            if not stat.S_ISLNK(mode) and mode & 0o077:
                out.append(f"{path.relative_to(root)} {stat.S_IMODE(mode):o}")
    return out


class Launch:
    """``iomt launch ...`` as a real command in a namespace of its own; killed (and its
    process group) if still running at the end."""

    def __init__(self, prefix: list[str], *args: str) -> None:
        self.run_dir = Path(args[args.index("--run-dir") + 1]) if "--run-dir" in args else None
        self.popen = subprocess.Popen(
            [*prefix, sys.executable, "-m", "iomt", "launch", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=launch_env(),
            start_new_session=True,
        )

    def finish(self, timeout_s: float) -> tuple[int, str, str]:
        out, err = self.popen.communicate(timeout=timeout_s)
        return self.popen.returncode, out, err

    def kill(self) -> None:
        """The launcher, and anything of its ward still running (which a failing test may
        have left: the containers run in sessions of their own)."""
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(10)
        if self.run_dir is not None:
            for pid in processes_of(self.run_dir):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


@dataclass
class AttackedRun:
    """A BIoMT ward (scale_10 --mode biomt) whose bolster and device group were SIGKILLed
    mid-run, and what was seen while it ran."""

    run_dir: Path
    returncode: int
    report: dict[str, Any]
    stderr: str
    killed: list[tuple[str, int, int]]  # (process, pid, requests done at the kill)
    exposed_while_running: list[str] = field(default_factory=list)
    files_while_running: int = 0
    left_after: dict[int, str] = field(default_factory=dict)
    seconds: float = 0.0


REQUESTS = 2000
