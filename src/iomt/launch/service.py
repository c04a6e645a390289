"""LaunchService: start every process of a LaunchPlan, supervise them, stop them cleanly.

Each process is a component container (``python -m iomt.runtime.container``) fed the
JSON of its ProcessSpec; its output goes to ``<run_dir>/logs/<process>.log``. ``start``
returns once every container has reported READY (all its nodes exist and are announced)
or raises with the failing process's log tail; ``stop`` sends SIGTERM (containers destroy
their participants so peers see them leave at once) and SIGKILLs what does not exit.

**Supervision.** ``supervise()`` (called by whoever runs the ward, a few times a second)
restarts a process that died, after a backoff (``RestartPolicy``: 0.5 s, doubling, at most
10 s), with the same spec: the same node names, the same keystore, and the durable state
its nodes keep on disk (a bolster's ledger, a device's readings, a provider's results). A
process that crashes ``max_restarts`` times in a row (a restart that stays up
``stable_s`` starts the count again) is given up on, and ``supervise`` raises. Every crash
is kept in ``crashes`` (process, exit code or signal, when, how long it had been up, the
backoff, how long the restart took to be READY again) for the run's report. A process
whose spec says ``restart=False`` (the bag recorder: a bag cannot be appended to after a
crash) is left dead and listed in ``lost``.

**No orphans.** Every container is told the launcher's pid (``IOMT_LAUNCHER_PID``) and asks
the kernel for SIGTERM when its parent dies (``PR_SET_PDEATHSIG``, checked against the pid
to close the race with a launcher that died first): SIGKILL the launcher and its ward
stops with it. PDEATHSIG follows the *thread* that started the child: start and supervise
from one long-lived thread (the main thread, as ``iomt launch`` does).

**CPUs.** ``cpus="split"`` pins the providers' process and the processes answering it to
disjoint halves of the CPUs (:mod:`iomt.launch.affinity`; ``cpu_placement`` says which);
each container pins itself before it starts a thread (``--cpus``), restarts included.

**Placement.** ``placement`` maps process-name patterns (fnmatch) to a command prefix that
runs the container elsewhere: ``{"devices_*": ["ip", "netns", "exec", "host2"]}``. The
prefix must exec the container in place (``ip netns exec``, ``nsenter``, ``chroot``: the
container stays the launcher's child), or the launcher can neither supervise nor reap it.
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import psutil

from iomt.errors import ConfigurationError, TransportError
from iomt.launch.affinity import cpu_plan
from iomt.topology.registry import WARD_NAMESPACES
from iomt.topology.spec import LaunchPlan, ProcessSpec

log = logging.getLogger(__name__)

#: the environment variable a container checks its parent against (see the module doc)
LAUNCHER_PID_ENV = "IOMT_LAUNCHER_PID"


@dataclass(frozen=True)
class RestartPolicy:
    """When a crashed process is started again (``max_restarts=0``: never)."""

    max_restarts: int = 5
    backoff_s: float = 0.5
    max_backoff_s: float = 10.0
    stable_s: float = 30.0

    def __post_init__(self) -> None:
        if self.max_restarts < 0 or self.backoff_s < 0 or self.max_backoff_s < self.backoff_s:
            raise ConfigurationError(f"bad restart policy {self}")

    def backoff(self, crashes_in_a_row: int) -> float:
        return float(min(self.max_backoff_s, self.backoff_s * 2 ** (crashes_in_a_row - 1)))


NO_RESTARTS = RestartPolicy(max_restarts=0)


@dataclass
class Crash:
    """One unplanned exit of a supervised process."""

    process: str
    pid: int
    exit_code: int  # negative: killed by that signal
    at_s: float  # since the launch started
    uptime_s: float
    in_a_row: int
    backoff_s: float | None  # None: not restarted (given up, or restart=False)
    restarted_pid: int | None = None
    ready_after_s: float | None = None  # from the crash until READY again
    seen_at: float = 0.0  # wall clock (time.time) when the crash was noticed

    @property
    def signal_name(self) -> str | None:
        if self.exit_code >= 0:
            return None
        try:
            return signal.Signals(-self.exit_code).name
        except ValueError:
            return f"signal {-self.exit_code}"

    def to_json(self) -> dict[str, Any]:
        return {
            "process": self.process,
            "pid": self.pid,
            "exit": self.signal_name or self.exit_code,
            "at_s": round(self.at_s, 3),
            "uptime_s": round(self.uptime_s, 3),
            "in_a_row": self.in_a_row,
            "backoff_s": self.backoff_s,
            "restarted_pid": self.restarted_pid,
            "ready_after_s": None if self.ready_after_s is None else round(self.ready_after_s, 3),
        }


@dataclass
class RunningProcess:
    spec: ProcessSpec
    popen: subprocess.Popen[bytes]
    log_path: Path
    ready_path: Path
    started_at: float = field(default_factory=time.monotonic)
    restarts: int = 0
    in_a_row: int = 0
    restart_at: float | None = None  # a restart is due then
    pending: Crash | None = None  # the crash whose restart is not READY yet

    @property
    def ready(self) -> bool:
        return self.ready_path.exists()

    @property
    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


class LaunchService:
    def __init__(  # noqa: PLR0913  (keyword-only after the plan: how each process is run)
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
        restart: RestartPolicy = NO_RESTARTS,
        placement: Mapping[str, Sequence[str]] | None = None,
        cpus: str = "off",
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
        self.restart = restart
        self.placement = {k: list(v) for k, v in (placement or {}).items()}
        # process name -> the CPUs it is pinned to (iomt.launch.affinity; the others: any)
        self.cpu_placement = cpu_plan((p.name for p in plan.processes), cpus)
        self.processes: list[RunningProcess] = []
        # a later stage's processes wait for this file before joining DDS (start())
        self._go_files: dict[str, Path] = {}
        self.crashes: list[Crash] = []
        self.lost: list[str] = []
        self.restart_count = 0
        self._env: dict[str, str] = {}
        self._t0 = time.monotonic()
        self._stopping = False

    def start(self, ready_timeout_s: float = 60.0) -> float:
        """Start all processes, each stage on DDS once the one before is READY; return
        seconds until all were READY."""
        make_private_dir(self.run_dir)
        make_private_dir(self.run_dir / "specs")
        make_private_dir(self.run_dir / "logs")
        self._env = dict(os.environ, **self.extra_env)
        self._env[LAUNCHER_PID_ENV] = str(os.getpid())
        t0 = self._t0 = time.monotonic()
        deadline = t0 + ready_timeout_s
        stages = sorted({p.stage for p in self.plan.processes})
        # Every process starts at once, but a later stage's only imports its node modules
        # and waits for its go file before it joins DDS: the start-up's Python work runs
        # while the earlier stage (the recorder) subscribes, on the core it leaves idle.
        for stage in stages[1:]:
            go = self.run_dir / "specs" / f"stage_{stage}.go"
            go.unlink(missing_ok=True)
            for proc in self.plan.processes:
                if proc.stage == stage:
                    self._go_files[proc.name] = go
        started = {
            stage: [self._spawn(proc) for proc in self.plan.processes if proc.stage == stage]
            for stage in stages
        }
        for stage in stages:
            if stage != stages[0]:
                (self.run_dir / "specs" / f"stage_{stage}.go").write_text("GO\n", encoding="utf-8")
            self._wait_ready(started[stage], deadline, ready_timeout_s)
        return time.monotonic() - t0

    def prefix_for(self, name: str) -> list[str]:
        for pattern, prefix in self.placement.items():
            if fnmatch.fnmatchcase(name, pattern):
                return list(prefix)
        return []

    def _command(self, proc: ProcessSpec, spec_path: Path, ready_path: Path) -> list[str]:
        cmd = [
            *self.prefix_for(proc.name),
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
        if proc.name in self.cpu_placement:
            cmd += ["--cpus", ",".join(map(str, self.cpu_placement[proc.name]))]
        if proc.name in self._go_files:
            cmd += ["--start-after", str(self._go_files[proc.name])]
        return cmd

    def _popen(
        self, proc: ProcessSpec, *, restart: int = 0
    ) -> tuple[subprocess.Popen[bytes], Path, Path]:
        spec_path = self.run_dir / "specs" / f"{proc.name}.json"
        if not restart:
            spec_path.write_text(json.dumps(proc.to_json(), indent=1), encoding="utf-8")
        log_path = self.run_dir / "logs" / f"{proc.name}.log"
        ready_path = self.run_dir / "specs" / f"{proc.name}.ready"
        ready_path.unlink(missing_ok=True)
        # a restart appends to the same log: the crash and what led to it stay readable
        with log_path.open("ab" if restart else "wb") as out:
            if restart:
                out.write(f"\n--- iomt launch: restart {restart} of {proc.name} ---\n".encode())
                out.flush()
            popen = subprocess.Popen(
                self._command(proc, spec_path, ready_path),
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self._env,
                start_new_session=True,
            )
        return popen, log_path, ready_path

    def _spawn(self, proc: ProcessSpec) -> RunningProcess:
        popen, log_path, ready_path = self._popen(proc)
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
            time.sleep(0.01)

    # -- supervision ------------------------------------------------------------------------

    def supervise(self) -> list[Crash]:
        """One round of supervision: note processes that died, restart those whose backoff
        has passed, note restarts that became READY. Returns the crashes found now; raises
        TransportError when a process crashed more than ``max_restarts`` times in a row."""
        if self._stopping:
            return []
        now = time.monotonic()
        found: list[Crash] = []
        for p in self.processes:
            if p.restart_at is not None:
                if now >= p.restart_at:
                    self._restart(p, now)
                continue
            self._note_ready(p)
            code = p.popen.poll()
            if code is None or p.spec.name in self.lost:
                continue
            uptime = now - p.started_at
            if uptime >= self.restart.stable_s:
                p.in_a_row = 0
            p.in_a_row += 1
            crash = Crash(p.spec.name, p.popen.pid, code, now - self._t0, uptime, p.in_a_row, None)
            crash.seen_at = time.time()
            self.crashes.append(crash)
            found.append(crash)
            if not p.spec.restart:
                self.lost.append(p.spec.name)
                log.error(
                    "%s exited with %s; not restarted (restart=False)",
                    p.spec.name,
                    crash.signal_name or code,
                )
                continue
            if p.in_a_row > self.restart.max_restarts:
                raise TransportError(
                    f"{p.spec.name} died ({crash.signal_name or code}) "
                    + (
                        f"{p.in_a_row} times in a row; giving up"
                        if self.restart.max_restarts
                        else "and restarts are off"
                    )
                    + f":\n{p.log_tail()}"
                )
            crash.backoff_s = self.restart.backoff(p.in_a_row)
            p.restart_at = now + crash.backoff_s
            p.pending = crash
            log.warning(
                "%s (pid %d) exited with %s after %.1f s; restarting in %.1f s (%d in a row)",
                p.spec.name,
                p.popen.pid,
                crash.signal_name or code,
                uptime,
                crash.backoff_s,
                p.in_a_row,
            )
        return found

    def settle(self, timeout_s: float = 30.0) -> bool:
        """Supervise until no restart is pending (every restarted process READY again), at
        most ``timeout_s``: a run that ends while a process is coming back would lose what
        that process writes when it stops. Returns whether all settled."""
        deadline = time.monotonic() + timeout_s
        while True:
            self.supervise()
            if all(p.pending is None for p in self.processes):
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.1)

    def _unnoticed_crashes(self) -> None:
        """Record crashes supervise() had no chance to see (a process that died just before
        the stop): they belong in the report even if nothing restarts them now."""
        now = time.monotonic()
        for p in self.processes:
            code = p.popen.poll()
            if code is None or p.restart_at is not None or p.spec.name in self.lost:
                continue
            if p.pending is not None and p.pending.restarted_pid != p.popen.pid:
                continue
            if any(c.pid == p.popen.pid for c in self.crashes):
                continue
            crash = Crash(
                p.spec.name, p.popen.pid, code, now - self._t0, now - p.started_at, 0, None
            )
            crash.seen_at = time.time()
            self.crashes.append(crash)
            log.error("%s had exited with %s before the stop", p.spec.name, code)

    @staticmethod
    def _note_ready(p: RunningProcess) -> None:
        """A restarted process wrote its READY file: note how long after the crash."""
        if p.pending is None or p.restart_at is not None:
            return
        try:
            ready_at = p.ready_path.stat().st_mtime
        except FileNotFoundError:
            return
        p.pending.ready_after_s = max(0.0, ready_at - p.pending.seen_at)
        p.pending = None

    def _restart(self, p: RunningProcess, now: float) -> None:
        p.restarts += 1
        self.restart_count += 1
        p.popen, p.log_path, p.ready_path = self._popen(p.spec, restart=p.restarts)
        p.started_at = now
        p.restart_at = None
        if p.pending is not None:
            p.pending.restarted_pid = p.popen.pid

    def supervision_report(self) -> dict[str, Any]:
        """What a run's report says about crashes and restarts."""
        return {
            "policy": {
                "max_restarts": self.restart.max_restarts,
                "backoff_s": self.restart.backoff_s,
                "max_backoff_s": self.restart.max_backoff_s,
            },
            "crashes": len(self.crashes),
            "restarts": self.restart_count,
            "lost": list(self.lost),
            "events": [c.to_json() for c in self.crashes],
        }

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
        if not self._stopping:
            for p in self.processes:
                self._note_ready(p)
            self._unnoticed_crashes()
        self._stopping = True
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


def wards_on_domain(
    namespaces: Sequence[str],
    *,
    domain_id: int | None = None,
    dds_config: str | None = None,
    wait_s: float = 1.5,
) -> tuple[list[str], int]:
    """What already runs on the domain, from DDS discovery (``wait_s`` at most): the nodes
    in any of ``namespaces`` (another ward's, or orphans of an earlier run), and how many
    other participants there are at all."""
    from iomt.runtime.context import Context  # noqa: PLC0415 (DDS only when asked)
    from iomt.runtime.graph import GraphReader, GraphSnapshot  # noqa: PLC0415

    prefixes = tuple(ns.rstrip("/") + "/" for ns in namespaces)

    def ours(snap: GraphSnapshot) -> list[str]:
        return [n for n in snap.node_names() if n.startswith(prefixes)]

    with Context(domain_id=domain_id, dds_config_name=dds_config) as ctx:
        reader = GraphReader(ctx)
        try:
            snap = reader.wait_until(lambda s: bool(ours(s)), wait_s)
        finally:
            reader.close()
        own = ctx.gid
    others = sum(1 for gid in snap.participants if gid != own)
    return ours(snap), others


def ensure_domain_free(
    plan: LaunchPlan,
    *,
    domain_id: int | None = None,
    dds_config: str | None = None,
    wait_s: float = 1.5,
) -> None:
    """Refuse to start ``plan`` on a domain where another ward's nodes (or an earlier
    run's orphans) are alive -- nodes in the plan's namespaces or in any a built-in
    topology uses; a ROS 2 robot or tool in its own namespace is welcome. Two wards on one
    domain answer each other's requests (the outside test saw a run "succeed" with 610
    bad-proof refusals and half its requests missing). Call before provisioning."""
    from iomt.runtime.config import resolve_domain_id  # noqa: PLC0415

    namespaces = sorted(
        {n.namespace for p in plan.processes for n in p.nodes} | set(WARD_NAMESPACES)
    )
    found, _others = wards_on_domain(
        namespaces, domain_id=domain_id, dds_config=dds_config, wait_s=wait_s
    )
    if found:
        domain = resolve_domain_id(domain_id)
        sample = ", ".join(found[:4]) + (", ..." if len(found) > 4 else "")
        raise ConfigurationError(
            f"DDS domain {domain} is in use: {len(found)} nodes of another ward are running "
            f"there ({sample}); stop that ward, or choose a free domain with --domain N "
            "(or ROS_DOMAIN_ID)"
        )


def supervision_line(report: Mapping[str, Any] | None) -> str:
    """One line for a run report: crashes, restarts, what was lost."""
    if not report:
        return "Supervision: not recorded."
    if not report["crashes"]:
        return "Supervision: no process crashed."
    events = "; ".join(
        f"{e['process']} {e['exit']} at {e['at_s']:.1f} s"
        + (
            f", READY again {e['ready_after_s']:.1f} s later"
            if e.get("ready_after_s") is not None
            else ""
        )
        for e in report["events"][:6]
    )
    return (
        f"Supervision: {report['crashes']} crash(es), {report['restarts']} restart(s)"
        + (f", not restarted: {', '.join(report['lost'])}" if report["lost"] else "")
        + f" ({events})."
    )


@contextlib.contextmanager
def private_files() -> Iterator[None]:
    """Files and directories created meanwhile (by this process and the processes it
    starts) are owner-only: umask 077, restored afterwards."""
    previous = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(previous)


def make_private_dir(path: Path) -> Path:
    """Create ``path`` (and missing parents) owner-only, or make an existing one so: a run
    directory holds readings, keys, ledgers and bags."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if path.stat().st_mode & 0o077:
        path.chmod(0o700)
    return path


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
