"""LaunchService: start every process of a LaunchPlan, watch them, stop them cleanly.

Each process is a component container (``python -m iomt.runtime.container``) fed the
JSON of its ProcessSpec; its output goes to ``<run_dir>/logs/<process>.log``. ``start``
returns once every container has reported READY (all its nodes exist and are announced)
or raises with the failing process's log tail; ``stop`` sends SIGTERM (containers destroy
their participants so peers see them leave at once) and SIGKILLs what does not exit.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import psutil

from iomt.errors import ConfigurationError, TransportError
from iomt.topology.spec import LaunchPlan, ProcessSpec

log = logging.getLogger(__name__)


@dataclass
class RunningProcess:
    spec: ProcessSpec
    popen: subprocess.Popen[bytes]
    log_path: Path
    ready_path: Path

    @property
    def ready(self) -> bool:
        return self.ready_path.exists()

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


class LaunchService:
    def __init__(
        self,
        plan: LaunchPlan,
        *,
        run_dir: Path,
        domain_id: int | None = None,
        dds_config: str | None = None,
        log_level: str = "WARNING",
        extra_env: dict[str, str] | None = None,
        runtime: str = "embedded",
        python: str | None = None,
    ) -> None:
        self.plan = plan
        self.runtime = runtime
        # The interpreter of the containers (one that can import rclpy, for that runtime).
        self.python = python or sys.executable
        self.run_dir = run_dir
        self.domain_id = domain_id
        self.dds_config = dds_config
        self.log_level = log_level
        self.extra_env = extra_env or {}
        self.processes: list[RunningProcess] = []

    def start(self, ready_timeout_s: float = 60.0) -> float:
        """Start all processes, stage by stage; return seconds until all were READY."""
        (self.run_dir / "specs").mkdir(parents=True, exist_ok=True)
        (self.run_dir / "logs").mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, **self.extra_env)
        t0 = time.monotonic()
        deadline = t0 + ready_timeout_s
        for stage in sorted({p.stage for p in self.plan.processes}):
            started = [
                self._spawn(proc, env) for proc in self.plan.processes if proc.stage == stage
            ]
            self._wait_ready(started, deadline, ready_timeout_s)
        return time.monotonic() - t0

    def _spawn(self, proc: ProcessSpec, env: dict[str, str]) -> RunningProcess:
        spec_path = self.run_dir / "specs" / f"{proc.name}.json"
        spec_path.write_text(json.dumps(proc.to_json(), indent=1), encoding="utf-8")
        log_path = self.run_dir / "logs" / f"{proc.name}.log"
        ready_path = self.run_dir / "specs" / f"{proc.name}.ready"
        ready_path.unlink(missing_ok=True)
        cmd = [
            self.python,
            "-m",
            "iomt.runtime.container",
            "--spec",
            str(spec_path),
            "--log-level",
            self.log_level,
            "--ready-file",
            str(ready_path),
            "--runtime",
            proc.runtime or self.runtime,
        ]
        if self.domain_id is not None:
            cmd += ["--domain", str(self.domain_id)]
        if self.dds_config:
            cmd += ["--dds-config", self.dds_config]
        with log_path.open("wb") as out:
            popen = subprocess.Popen(
                cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        running = RunningProcess(proc, popen, log_path, ready_path)
        self.processes.append(running)
        return running

    def _wait_ready(
        self, started: list[RunningProcess], deadline: float, ready_timeout_s: float
    ) -> None:
        while not all(p.ready for p in started):
            for p in started:
                if p.popen.poll() is not None:
                    self.stop()
                    raise TransportError(
                        f"process {p.spec.name} exited with {p.popen.returncode}:\n{p.log_tail()}"
                    )
            if time.monotonic() > deadline:
                waiting = [p.spec.name for p in started if not p.ready]
                self.stop()
                raise TransportError(f"not READY within {ready_timeout_s:g} s: {waiting}")
            time.sleep(0.05)

    def dead(self) -> list[RunningProcess]:
        return [p for p in self.processes if p.popen.poll() is not None]

    def pids(self) -> list[int]:
        return [p.popen.pid for p in self.processes if p.popen.poll() is None]

    def cpu_seconds(self) -> dict[str, float]:
        """CPU time (user + system, seconds) each live process has used so far, by name.

        Sampled at two moments, the difference is what each process spent in between
        (the experiments report CPU per request that way)."""
        out: dict[str, float] = {}
        for p in self.processes:
            if p.popen.poll() is None:
                out[p.spec.name] = process_cpu_seconds(p.popen.pid)
        return out

    def stop(self, timeout_s: float = 10.0) -> dict[str, int | None]:
        """Stop stage by stage, the last-started first (a recorder, started first, stops
        last and so hears everything the others said before they left)."""
        codes: dict[str, int | None] = {}
        for stage in sorted({p.spec.stage for p in self.processes}, reverse=True):
            group = [p for p in self.processes if p.spec.stage == stage]
            for p in group:
                if p.popen.poll() is None:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(p.popen.pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout_s
            for p in group:
                try:
                    codes[p.spec.name] = p.popen.wait(max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    log.warning("%s did not stop in %g s; killing it", p.spec.name, timeout_s)
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(p.popen.pid, signal.SIGKILL)
                    codes[p.spec.name] = p.popen.wait(5)
        self.processes.clear()
        return codes

    def __enter__(self) -> LaunchService:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of one process (its threads included); 0 if it is gone."""
    try:
        t = psutil.Process(pid).cpu_times()
    except psutil.Error:
        return 0.0
    return float(t.user + t.system)


def total_pss_bytes(pids: list[int]) -> int:
    """Proportional set size of the given processes (shared pages counted fairly)."""
    total = 0
    for pid in pids:
        try:
            total += psutil.Process(pid).memory_full_info().pss
        except (psutil.Error, AttributeError) as exc:
            raise ConfigurationError(f"cannot read memory of pid {pid}: {exc}") from exc
    return total
