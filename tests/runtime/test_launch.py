"""Launch plans, the supervisor, and the ROS 2 launch files that render the same plans."""

from __future__ import annotations

import ast
import dataclasses
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from iomt.errors import ConfigurationError
from iomt.launch.service import LaunchService
from iomt.resources import share_dir
from iomt.topology import available, load
from iomt.topology.spec import LaunchPlan, NodeSpec, ProcessSpec
from runtime.helpers import write_spec


def test_plans_are_pure_and_seeded() -> None:
    assert load("fleet", devices=20, seed=3) == load("fleet", devices=20, seed=3)
    assert load("fleet", devices=20, seed=3) != load("fleet", devices=20, seed=4)
    plan = load("fleet", devices=120, per_process=50)
    assert [len(p.nodes) for p in plan.processes] == [50, 50, 20]


def test_duplicate_nodes_and_unknown_topologies_are_refused() -> None:
    node = NodeSpec("iomt.nodes.examples:vitals_sensor", "x", "/a")
    with pytest.raises(ConfigurationError, match="duplicate node /a/x"):
        LaunchPlan("t", "", (ProcessSpec("p", (node, node)),))
    with pytest.raises(ConfigurationError, match="unknown topology"):
        load("no_such_topology")


def test_every_built_in_topology_keeps_to_the_ward_namespaces(tmp_path: Path) -> None:
    """What ``iomt launch`` recognizes as another ward on its domain (ensure_domain_free)."""
    from iomt.topology import WARD_NAMESPACES

    for name in available():
        variants: list[dict[str, object]] = [{}]  # each topology with the options it takes
        if name == "fleet":
            variants = [{"devices": 4}]
        elif name == "case_study":
            variants = [{"run_dir": str(tmp_path)}]
        elif name.startswith("scale_"):
            variants = [
                {"mode": mode, "run_dir": str(tmp_path)}
                for mode in ("distributed", "centralized", "biomt")
            ]
        for options in variants:
            plan = load(name, **options)
            assert {n.namespace for p in plan.processes for n in p.nodes} <= set(WARD_NAMESPACES)


def test_every_ros2_launch_file_renders_a_known_topology() -> None:
    # ros2 launch itself cannot run here (no launch_ros); check what it would call.
    files = sorted(share_dir("launch").glob("*.launch.py"))
    assert files
    for path in files:
        tree = ast.parse(path.read_text())
        calls = [
            n
            for n in ast.walk(tree)
            if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "generate"
        ]
        assert len(calls) == 1, path
        name = calls[0].args[0].value  # type: ignore[attr-defined]
        assert name in available(), path
        assert load(name).node_count > 0
        assert path.name == f"{name}.launch.py"


@pytest.mark.dds
@pytest.mark.timeout(60)
def test_supervisor_starts_and_stops_the_demo(tmp_path: Path, domain_id: int) -> None:
    plan = load("demo")
    with LaunchService(plan, run_dir=tmp_path, domain_id=domain_id) as service:
        service.start(ready_timeout_s=30)  # raises unless every process reported READY
        assert [p.ready for p in service.processes] == [True, True]
        assert len(service.pids()) == 2
        codes = service.stop()
    assert codes == {"sensors": 0, "monitor": 0}
    spec = json.loads((tmp_path / "specs" / "sensors.json").read_text())
    assert [n["name"] for n in spec["nodes"]] == ["sensor_0", "sensor_1"]


@pytest.mark.dds
@pytest.mark.timeout(60)
def test_iomt_launch_reports_all_nodes_visible(tmp_path: Path, domain_id: int, procs) -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "iomt",
            "launch",
            "demo",
            "--duration",
            "1",
            "--domain",
            str(domain_id),
            "--run-dir",
            str(tmp_path),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=50,
        env=procs.env(),
        check=False,
    )
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert summary["visible_nodes"] == summary["nodes"] == 3
    assert set(summary["exit_codes"].values()) == {0}
    for log in (tmp_path / "logs").glob("*.log"):
        assert "Traceback" not in log.read_text(), log


def _cyclone_threads(pid: int) -> set[str]:
    names = {(t / "comm").read_text().strip() for t in Path(f"/proc/{pid}/task").iterdir()}
    return names & {"recv", "tev", "dq.builtins", "gc"}


@pytest.mark.dds
@pytest.mark.timeout(60)
def test_a_container_started_early_joins_dds_only_after_its_go(
    tmp_path: Path, domain_id: int, procs
) -> None:
    """A later stage's processes start with the first and import their node modules, but
    stay off DDS until the launcher's go file: the recorder is subscribed before anyone
    else is on the bus."""
    spec = tmp_path / "sensors.json"
    spec.write_text(json.dumps(load("demo").processes[0].to_json()), encoding="utf-8")
    go, ready = tmp_path / "stage_0.go", tmp_path / "sensors.ready"
    args = ["--spec", str(spec), "--domain", str(domain_id), "--ready-file", str(ready)]
    proc = procs.start("-m", "iomt.runtime.container", *args, "--start-after", str(go))
    time.sleep(2.0)  # long enough to import and, were it not waiting, to be READY
    assert proc.poll() is None and not ready.exists()
    assert _cyclone_threads(proc.pid) == set()
    go.write_text("GO\n")
    procs.wait_for_line(proc, "READY", 30)
    deadline = time.monotonic() + 10  # the file follows the line
    while not ready.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert ready.exists() and _cyclone_threads(proc.pid)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(10) == 0


@pytest.mark.timeout(60)
def test_a_container_waiting_for_its_go_stops_cleanly_or_refuses_a_bad_spec(
    tmp_path: Path, procs
) -> None:
    spec = tmp_path / "sensors.json"
    spec.write_text(json.dumps(load("demo").processes[0].to_json()), encoding="utf-8")
    never = str(tmp_path / "never.go")
    waiting = procs.start(
        "-m", "iomt.runtime.container", "--spec", str(spec), "--start-after", never
    )
    time.sleep(1.0)
    waiting.send_signal(signal.SIGTERM)
    assert waiting.wait(10) == 0
    raw = json.loads(spec.read_text())
    raw["nodes"][0]["factory"] = "iomt.nodes.nowhere:sensor"
    spec.write_text(json.dumps(raw), encoding="utf-8")
    bad = procs.start("-m", "iomt.runtime.container", "--spec", str(spec), "--start-after", never)
    _, err = bad.communicate(timeout=30)
    assert bad.returncode == 2 and "cannot load node factory" in err


@pytest.mark.dds
@pytest.mark.timeout(90)
def test_the_launcher_lets_a_later_stage_on_dds_only_once_the_earlier_is_ready(
    tmp_path: Path, domain_id: int
) -> None:
    demo = load("demo")
    first, second = demo.processes
    plan = dataclasses.replace(demo, processes=(dataclasses.replace(first, stage=-1), second))
    with LaunchService(plan, run_dir=tmp_path, domain_id=domain_id) as service:
        service.start(ready_timeout_s=30)
        later = [p for p in service.processes if p.spec.name == second.name]
        assert "--start-after" in later[0].popen.args
        go = tmp_path / "specs" / "stage_0.go"
        first_ready = (tmp_path / "specs" / f"{first.name}.ready").stat().st_mtime
        assert go.stat().st_mtime >= first_ready
        assert all(p.ready for p in service.processes)
        assert set(service.stop().values()) == {0}


def _warming_spec(path: Path, mark: Path, warm_after_s: float | None) -> Path:
    node = {
        "factory": "runtime.nodes:warming",
        "name": "warming",
        "namespace": "/w",
        "params": {"warm_after_s": warm_after_s, "mark": str(mark)},
    }
    return write_spec(path, [node])


def _start_warming(
    procs, tmp_path: Path, domain_id: int, warm_after_s: float | None, *extra: str
) -> tuple[subprocess.Popen[str], Path]:
    """A container of one node that is warm ``warm_after_s`` after it starts (never: None);
    the node writes the returned mark file when it is."""
    mark = tmp_path / "warm"
    spec = _warming_spec(tmp_path / "w.json", mark, warm_after_s)
    args = ["--spec", str(spec), "--domain", str(domain_id), *extra]
    return procs.start("-m", "iomt.runtime.container", *args), mark


@pytest.mark.dds
@pytest.mark.timeout(60)
def test_a_container_is_ready_only_once_every_node_is_warm(
    tmp_path: Path, domain_id: int, procs
) -> None:
    """A node still warming up (a device of the centralized baseline whose first upload
    the server has not answered) holds its process's READY back; the executor spins
    meanwhile, so the node's own timers and calls get it warm."""
    proc, mark = _start_warming(procs, tmp_path, domain_id, 1.0)
    procs.wait_for_line(proc, "READY", 30)
    assert mark.exists()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(10) == 0


@pytest.mark.dds
@pytest.mark.timeout(60)
def test_a_node_that_never_warms_holds_ready_back_only_until_the_bound(
    tmp_path: Path, domain_id: int, procs
) -> None:
    proc, _ = _start_warming(procs, tmp_path, domain_id, None, "--warm-up-timeout", "1")
    procs.wait_for_line(proc, "READY", 30)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert "1 node(s) still warming up: /w/warming" in err


@pytest.mark.dds
@pytest.mark.timeout(60)
def test_a_container_stopped_while_warming_up_exits_cleanly_without_ready(
    tmp_path: Path, domain_id: int, procs
) -> None:
    ready = tmp_path / "w.ready"
    proc, _ = _start_warming(procs, tmp_path, domain_id, None, "--ready-file", str(ready))
    time.sleep(2.0)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=10)
    assert proc.returncode == 0 and "READY" not in out and not ready.exists()


def test_bad_warm_up_timeouts_are_usage_errors(tmp_path: Path) -> None:
    spec = _warming_spec(tmp_path / "w.json", tmp_path / "warm", None)
    for bad in ("-1", "soon", "nan", "inf"):
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "iomt.runtime.container",
                "--spec",
                str(spec),
                "--warm-up-timeout",
                bad,
            ],
            check=False,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 2 and "expected seconds >= 0" in done.stderr, bad
