"""Shared fixtures: a fresh DDS domain per test, and subprocesses that always get reaped."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_rng = random.SystemRandom()


@pytest.fixture
def domain_id() -> int:
    """A DDS domain of its own for this test (several test runs may share the machine)."""
    return _rng.randint(1, 230)


class Procs:
    """Starts child processes for a test and guarantees they are gone afterwards."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[str]] = []

    def env(self, **extra: str) -> dict[str, str]:
        env = dict(os.environ)
        paths = [str(ROOT / "src"), str(ROOT / "tests")]
        if env.get("PYTHONPATH"):
            paths.append(env["PYTHONPATH"])
        env["PYTHONPATH"] = os.pathsep.join(paths)
        env.pop("CYCLONEDDS_URI", None)
        env.update(extra)
        return env

    def start(self, *args: str, **extra_env: str) -> subprocess.Popen[str]:
        return self.start_with(sys.executable, *args, env=self.env(**extra_env))

    def start_with(
        self, executable: str, *args: str, env: dict[str, str], stdin: int | None = None
    ) -> subprocess.Popen[str]:
        """Start ``executable args`` (another interpreter, e.g. the ROS 2 peer's) in ``env``."""
        proc = subprocess.Popen(
            [executable, *args],
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            start_new_session=True,
        )
        self.procs.append(proc)
        return proc

    @staticmethod
    def wait_for_line(proc: subprocess.Popen[str], prefix: str, timeout_s: float) -> str:
        """Read stdout until a line starting with ``prefix``; fail on exit or timeout."""
        import selectors

        assert proc.stdout is not None
        sel = selectors.DefaultSelector()
        sel.register(proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if sel.select(timeout=max(0.0, deadline - time.monotonic())):
                line = proc.stdout.readline()
                if line.startswith(prefix):
                    return line
                if not line and proc.poll() is not None:
                    err = proc.stderr.read() if proc.stderr else ""
                    raise AssertionError(f"process exited {proc.returncode}: {err[-2000:]}")
        raise AssertionError(f"no {prefix!r} line within {timeout_s} s")

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 5
        for proc in self.procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
            for stream in (proc.stdout, proc.stderr):
                if stream:
                    stream.close()


@pytest.fixture
def procs() -> Iterator[Procs]:
    p = Procs()
    try:
        yield p
    finally:
        p.stop_all()
