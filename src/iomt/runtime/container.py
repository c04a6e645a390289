"""Component container: many nodes in one process, one Context, one Executor.

A container is started with a list of node specs (JSON: factory, name, namespace,
params). Each factory is a dotted path ``package.module:Callable`` called as
``factory(context, name=..., namespace=..., **params)`` and returning a Node. That keeps
the runtime ignorant of what the nodes are; the topology layer decides, and has checked
``params`` already: they are every field of the node kind's typed parameters
(iomt.topology.params), as JSON.

    python -m iomt.runtime.container --spec group-3.json [--domain N] [--dds-config lan]
                                     [--runtime embedded|rclpy]

The container prints ``READY <n_nodes>`` on stdout once every node exists, none is still
warming up (``Node.warming_up``, at most ``WARM_UP_TIMEOUT_S``) and the graph has been
announced, then spins until SIGINT/SIGTERM, when it destroys its nodes and its
participant so peers see it leave at once instead of after the lease expires.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from iomt.errors import ConfigurationError, IomtError
from iomt.runtime.api import RuntimeContext
from iomt.runtime.context import Context
from iomt.runtime.node import Node

RUNTIMES = ("embedded", "rclpy")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ContainerNode:
    factory: str
    name: str
    namespace: str = "/"
    params: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> ContainerNode:
        try:
            return cls(
                str(raw["factory"]),
                str(raw["name"]),
                str(raw.get("namespace", "/")),
                dict(raw.get("params", {})),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigurationError(f"bad node spec {raw!r}: {exc}") from exc


def load_factory(path: str) -> Any:
    module_name, sep, attr = path.partition(":")
    if not sep:
        raise ConfigurationError(f"factory {path!r} must look like package.module:Callable")
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigurationError(f"cannot load node factory {path!r}: {exc}") from exc


def make_context(
    runtime: str = "embedded", *, domain_id: int | None = None, dds_config: str | None = None
) -> RuntimeContext:
    """The process's runtime: the embedded one on Cyclone DDS, or real rclpy."""
    if runtime == "embedded":
        return Context(domain_id=domain_id, dds_config_name=dds_config)
    if runtime == "rclpy":
        try:
            from iomt.runtime.rclpy_runtime import RclpyContext  # noqa: PLC0415
        except ImportError as exc:
            raise ConfigurationError(
                f"the rclpy runtime needs ROS 2's rclpy ({exc}): source a ROS 2 setup file "
                "(or .venv-ros2/setup.sh from scripts/ros2.sh)"
            ) from exc
        return RclpyContext(domain_id=domain_id, dds_config=dds_config)
    raise ConfigurationError(f"unknown runtime {runtime!r}; choose one of {', '.join(RUNTIMES)}")


class Container:
    def __init__(self, context: RuntimeContext) -> None:
        self.context = context
        self.executor = context.create_executor()
        self.nodes: list[Node] = []

    def add(self, spec: ContainerNode) -> Node:
        factory = load_factory(spec.factory)
        node = factory(self.context, name=spec.name, namespace=spec.namespace, **spec.params)
        if not isinstance(node, Node):
            raise ConfigurationError(f"{spec.factory} returned {type(node).__name__}, not a Node")
        self.nodes.append(node)
        self.executor.add_node(node)
        return node

    def add_all(self, specs: Sequence[ContainerNode]) -> None:
        with self.context.graph_batch():
            for spec in specs:
                self.add(spec)

    def shutdown(self) -> None:
        self.executor.shutdown()
        for node in reversed(self.nodes):
            try:
                node.destroy_node()
            except Exception:
                log.exception("destroying %s failed", node.get_fully_qualified_name())
        self.nodes.clear()
        self.context.shutdown()


#: the longest a process holds READY back for nodes still warming up (Node.warming_up)
WARM_UP_TIMEOUT_S = 30.0


def _warm_up(
    container: Container, stop: threading.Event, timeout_s: float = WARM_UP_TIMEOUT_S
) -> None:
    """Spin until no node is warming up, the bound passes (READY then, with a warning
    naming the nodes: a later stage must not wait forever on one) or we are stopped."""
    deadline = time.monotonic() + timeout_s
    while not stop.is_set():
        cold = [n.get_fully_qualified_name() for n in container.nodes if n.warming_up()]
        if not cold:
            return
        if time.monotonic() >= deadline:
            shown = ", ".join(cold[:5]) + (f" and {len(cold) - 5} more" if len(cold) > 5 else "")
            log.warning(
                "READY after %g s with %d node(s) still warming up: %s", timeout_s, len(cold), shown
            )
            return
        container.executor.spin_once(0.05)


#: how often a process started early looks for its go file (--start-after)
GO_POLL_S = 0.005

PR_SET_PDEATHSIG = 1
#: set by the launcher (iomt.launch.service.LAUNCHER_PID_ENV): the pid we must not outlive
LAUNCHER_PID_ENV = "IOMT_LAUNCHER_PID"


def die_with_launcher() -> bool:
    """Ask the kernel for SIGTERM when our parent (the launcher) dies, however it dies
    (SIGKILL included), and return False if it has died already.

    ``PR_SET_PDEATHSIG`` only covers a parent that dies *after* the call: a launcher killed
    between our fork and this call has already handed us to init (or a subreaper), so the
    parent is then checked against the pid the launcher put in ``IOMT_LAUNCHER_PID``. Without
    that variable (a container started by hand, or by ros2 launch) nothing is done. Linux
    only; elsewhere the launcher's own stop is all there is.
    """
    expected = os.environ.get(LAUNCHER_PID_ENV, "")
    if not expected.isdigit():
        return True
    if sys.platform.startswith("linux"):
        import ctypes  # noqa: PLC0415 (Linux only)

        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
            log.warning("prctl(PR_SET_PDEATHSIG) failed: errno %d", ctypes.get_errno())
    return os.getppid() == int(expected)


def _cpu_list(text: str) -> frozenset[int]:
    """``"0,2"`` -> {0, 2} (argparse reports anything else as a usage error)."""
    try:
        cpus = frozenset(int(part) for part in text.split(","))
    except ValueError:
        cpus = frozenset()
    if not cpus or min(cpus) < 0:
        raise argparse.ArgumentTypeError(f"expected CPU numbers like 0,1, got {text!r}")
    return cpus


def _non_negative_s(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected seconds >= 0, got {text!r}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    if not die_with_launcher():
        print("container: the launcher is gone; not starting", file=sys.stderr)
        return 3
    parser = argparse.ArgumentParser(
        prog="python -m iomt.runtime.container", description="Host iomt nodes in one process."
    )
    parser.add_argument("--spec", required=True, help='JSON file: {"nodes": [...]}')
    parser.add_argument("--domain", type=int, default=None, help="DDS domain (ROS_DOMAIN_ID)")
    parser.add_argument("--dds-config", default=None, help="loopback | lan | path to XML")
    parser.add_argument(
        "--runtime", default="embedded", choices=RUNTIMES, help="embedded (Cyclone) or rclpy"
    )
    parser.add_argument("--log-level", default="WARNING")
    parser.add_argument(
        "--ready-file", default=None, help="also write READY to this file (for supervisors)"
    )
    parser.add_argument(
        "--start-after",
        default=None,
        help="import the node modules, then wait until this file exists before joining "
        "DDS (a launcher's go for this process's stage)",
    )
    parser.add_argument(
        "--warm-up-timeout",
        type=_non_negative_s,
        default=WARM_UP_TIMEOUT_S,
        help="hold READY back at most this long (s) for nodes still warming up",
    )
    parser.add_argument(
        "--cpus",
        default=None,
        type=_cpu_list,
        help="run only on these CPUs, e.g. 0,1 (set before any thread starts, so every "
        "thread of the process inherits it)",
    )
    args = parser.parse_args(argv)
    if args.cpus is not None:
        try:
            os.sched_setaffinity(0, args.cpus)
        except OSError as exc:
            print(f"container: --cpus {sorted(args.cpus)}: {exc}", file=sys.stderr)
            return 2
    # Nodes write readings, ledgers and keys: owner-only, whoever started the container.
    os.umask(0o077)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        raw = json.loads(Path(args.spec).read_text(encoding="utf-8"))
        specs = [ContainerNode.from_json(n) for n in raw["nodes"]]
    except (OSError, ValueError, KeyError, IomtError) as exc:
        print(f"container: {exc}", file=sys.stderr)
        return 2
    domain_id = args.domain if args.domain is not None else raw.get("domain_id")
    return run(
        specs,
        domain_id=domain_id,
        dds_config=args.dds_config,
        ready_file=args.ready_file,
        runtime=args.runtime,
        start_after=args.start_after,
        warm_up_timeout_s=args.warm_up_timeout,
    )


def _wait_for_go(specs: Sequence[ContainerNode], go: Path, stop: threading.Event) -> bool:
    """Import the nodes' modules (most of a process's own start-up), then wait for ``go``;
    False if told to stop first."""
    for factory in {spec.factory for spec in specs}:
        load_factory(factory)
    while not go.exists():
        if stop.wait(GO_POLL_S):
            return False
    return True


def run(
    specs: Sequence[ContainerNode],
    *,
    domain_id: int | None = None,
    dds_config: str | None = None,
    ready_file: str | None = None,
    runtime: str = "embedded",
    start_after: str | None = None,
    warm_up_timeout_s: float = WARM_UP_TIMEOUT_S,
) -> int:
    """Host ``specs`` until SIGINT/SIGTERM; returns the process exit code."""
    stop = threading.Event()
    container: Container | None = None

    def on_signal(_signum: int, _frame: object) -> None:
        stop.set()
        if container is not None:
            container.executor.wake()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    if start_after is not None:
        try:
            if not _wait_for_go(specs, Path(start_after), stop):
                return 0
        except IomtError as exc:
            print(f"container: {exc}", file=sys.stderr)
            return 2
    try:
        context = make_context(runtime, domain_id=domain_id, dds_config=dds_config)
    except IomtError as exc:
        print(f"container: {exc}", file=sys.stderr)
        return 2
    container = Container(context)
    profile_dir = os.environ.get(PROFILE_ENV)
    startup_profile = None
    if profile_dir:
        startup_profile = _install_profiler(Path(profile_dir), ready_file)
    try:
        container.add_all(specs)
    except IomtError as exc:
        print(f"container: {exc}", file=sys.stderr)
        container.shutdown()
        return 2
    # The nodes' long-lived objects (endpoints, keys, tables) need not be scanned by
    # every garbage collection; with hundreds of nodes in one process that scan dominated.
    gc.freeze()
    if startup_profile is not None:
        startup_profile()
    try:
        _serve(container, stop, ready_file, warm_up_timeout_s)
    finally:
        container.shutdown()
    return 0


def _serve(
    container: Container, stop: threading.Event, ready_file: str | None, warm_up_timeout_s: float
) -> None:
    """Announce READY once warm, then spin until stopped."""
    _warm_up(container, stop, warm_up_timeout_s)
    if stop.is_set():
        return
    print(f"READY {len(container.nodes)}", flush=True)
    if ready_file:
        Path(ready_file).write_text(f"READY {len(container.nodes)}\n", encoding="utf-8")
    pause = max((node.spin_pause_s for node in container.nodes), default=0.0)
    while not stop.is_set():
        container.executor.spin_once(0.5)
        if pause:
            stop.wait(pause)


#: A directory: SIGUSR1 starts a CPU-time cProfile of the executor thread, SIGUSR2 stops it
#: and writes ``<dir>/<ready-file stem or pid>.prof`` (bench/profile_sharing.py uses it).
#: With ``IOMT_PROFILE_STARTUP=1`` as well, the start-up (nodes made until READY) is profiled
#: into ``<name>.startup.prof``.
PROFILE_ENV = "IOMT_PROFILE_DIR"
PROFILE_STARTUP_ENV = "IOMT_PROFILE_STARTUP"


def _install_profiler(directory: Path, ready_file: str | None) -> Callable[[], None] | None:
    """Install the signal handlers; returns what ends the start-up profile, if one runs."""
    import cProfile  # noqa: PLC0415 (profiling only)
    import time  # noqa: PLC0415

    # thread_time: CPU seconds of this (the executor's) thread, not wall time, so a
    # callback waiting for a core on a busy machine is not charged for the wait.
    profiler = cProfile.Profile(time.thread_time)
    name = Path(ready_file).stem if ready_file else str(os.getpid())

    def start(_signum: int, _frame: object) -> None:
        profiler.enable()

    def stop(_signum: int, _frame: object) -> None:
        profiler.disable()
        directory.mkdir(parents=True, exist_ok=True)
        profiler.dump_stats(str(directory / f"{name}.prof"))

    signal.signal(signal.SIGUSR1, start)
    signal.signal(signal.SIGUSR2, stop)
    if not os.environ.get(PROFILE_STARTUP_ENV):
        return None
    startup = cProfile.Profile(time.thread_time)
    startup.enable()

    def ready() -> None:
        startup.disable()
        directory.mkdir(parents=True, exist_ok=True)
        startup.dump_stats(str(directory / f"{name}.startup.prof"))

    return ready


if __name__ == "__main__":
    sys.exit(main())
