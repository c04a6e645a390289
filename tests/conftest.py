"""Shared fixtures: a fresh DDS domain per test, and subprocesses that always get reaped.

scripts/test.sh runs the suite on two pytest-xdist workers (``--dist loadfile``): a test
file runs on one worker, so its module-scoped fixture (often a whole ward) starts once. A
session-scoped fixture starts once per worker that needs it. Hypothesis has no deadline:
tests check behaviour, and a second worker on two cores makes any example's time wander."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from domains import fresh_domain

ROOT = Path(__file__).resolve().parents[1]

settings.register_profile("iomt", deadline=None)
settings.load_profile("iomt")


@pytest.fixture
def domain_id() -> int:
    """A DDS domain of its own for this test (several test runs may share the machine)."""
    return fresh_domain()


class _Proc(subprocess.Popen[str]):
    """A child whose stdout ``wait_for_line`` reads by bytes: what it read past its line is
    ``pending``, given back first by ``communicate``."""

    pending = ""

    def communicate(
        self, input: str | None = None, timeout: float | None = None
    ) -> tuple[str, str]:
        out, err = super().communicate(input, timeout)
        if self.pending:
            out, self.pending = self.pending + (out or ""), ""
        return out, err


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
        proc = _Proc(
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
        """Read stdout until a line starting with ``prefix``; fail on exit or timeout.

        Reads the pipe's bytes itself (a text stream's ``readline`` reads ahead: a line that
        arrived with the one before it would wait in its buffer, unseen by ``select``, until
        the process writes again). What is read past the line is kept for the next call and
        for ``communicate``."""
        import selectors

        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        sel = selectors.DefaultSelector()
        sel.register(fd, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout_s
        try:
            while True:
                pending = getattr(proc, "pending", "")
                while "\n" in pending:
                    line, pending = pending.split("\n", 1)
                    proc.pending = pending  # type: ignore[attr-defined]
                    if line.startswith(prefix):
                        return line + "\n"
                if time.monotonic() >= deadline:
                    raise AssertionError(f"no {prefix!r} line within {timeout_s} s")
                if not sel.select(timeout=max(0.0, deadline - time.monotonic())):
                    continue
                data = os.read(fd, 65536)
                if not data:
                    proc.wait(timeout=5)
                    err = proc.stderr.read() if proc.stderr else ""
                    raise AssertionError(f"process exited {proc.returncode}: {err[-2000:]}")
                proc.pending = pending + data.decode(errors="replace")  # type: ignore[attr-defined]
        finally:
            sel.close()

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
