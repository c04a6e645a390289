"""CPU placement (``--cpus``): which processes are pinned where, and that a container's
every thread -- Cyclone's included -- really runs only on its CPUs (read from /proc)."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from iomt.errors import ConfigurationError
from iomt.launch.affinity import cpu_plan, resolve_policy
from iomt.launch.service import LaunchService
from iomt.topology import load

DISTRIBUTED = ["devices_0", "devices_1", "wallets_0", "providers", "recorder"]
CENTRALIZED = ["devices_0", "wallets_0", "providers", "central", "recorder"]


def test_split_gives_the_askers_and_the_answerers_halves_of_their_own() -> None:
    plan = cpu_plan(DISTRIBUTED, "split", available={0, 1})
    assert plan == {"providers": (0,), "devices_0": (1,), "devices_1": (1,)}
    # wallets and the recorder are on no request's path: free to run anywhere
    four = cpu_plan(DISTRIBUTED, "split", available={4, 5, 6, 7})
    assert four == {"providers": (4, 5), "devices_0": (6, 7), "devices_1": (6, 7)}


def test_in_the_centralized_baseline_the_server_answers_and_the_devices_are_free() -> None:
    assert cpu_plan(CENTRALIZED, "split", available={0, 1}) == {
        "providers": (0,),
        "central": (1,),
    }


@pytest.mark.parametrize(
    ("names", "available"),
    [
        (DISTRIBUTED, {0}),  # one CPU: nothing to split
        (["facility", "bolster_0", "bolster_1"], {0, 1}),  # a BIoMT ward: no providers
        (["providers", "recorder"], {0, 1}),  # nobody answering
        (["patient_1", "bedside", "doctor"], {0, 1}),  # the case study
    ],
)
def test_nothing_is_pinned_without_both_sides_or_two_cpus(
    names: list[str], available: set[int]
) -> None:
    assert cpu_plan(names, "split", available=available) == {}


def test_off_pins_nothing_and_an_unknown_policy_is_refused() -> None:
    assert cpu_plan(DISTRIBUTED, "off", available={0, 1}) == {}
    for bad in ("spread", "auto"):  # auto is resolved first, against the workload
        with pytest.raises(ConfigurationError, match=f"CPU policy '{bad}'"):
            cpu_plan(DISTRIBUTED, bad, available={0, 1})
    with pytest.raises(ConfigurationError, match="CPU policy 'spread'"):
        resolve_policy("spread", outstanding=2)


@pytest.mark.parametrize(
    ("outstanding", "cpus", "policy"),
    [
        (2, 2, "split"),  # 2 providers x 1 outstanding on 2 cores: latency-bound
        (1, 2, "split"),
        (16, 2, "off"),  # 16 providers: the scheduler's balancing wins
        (128, 2, "off"),  # 16 x 8: saturated
        (4, 4, "split"),
        (None, 2, "off"),  # no workload known
        (0, 2, "off"),
    ],
)
def test_auto_splits_only_while_the_requests_in_flight_fit_the_cpus(
    outstanding: int | None, cpus: int, policy: str
) -> None:
    available = set(range(cpus))
    assert resolve_policy("auto", outstanding=outstanding, available=available) == policy
    assert resolve_policy("off", outstanding=outstanding, available=available) == "off"
    assert resolve_policy("split", outstanding=outstanding, available=available) == "split"


def test_the_launcher_tells_each_pinned_container_its_cpus(tmp_path: Path) -> None:
    plan = load("scale_10", run_dir=str(tmp_path / "run"))
    service = LaunchService(plan, run_dir=tmp_path / "run", cpus="split")
    pinned = service.cpu_placement
    if len(os.sched_getaffinity(0)) < 2:
        assert pinned == {}
        return
    by_name = {p.name: p for p in plan.processes}
    assert set(pinned) == {"providers", "devices_0"}
    spec, ready = tmp_path / "s.json", tmp_path / "s.ready"
    providers = service._command(by_name["providers"], spec, ready)
    assert providers[providers.index("--cpus") + 1] == ",".join(map(str, pinned["providers"]))
    assert "--cpus" not in service._command(by_name["wallets_0"], spec, ready)
    assert LaunchService(plan, run_dir=tmp_path / "run").cpu_placement == {}


def _threads_cpus(pid: int) -> dict[str, str]:
    out = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        status = (task / "status").read_text()
        name = (task / "comm").read_text().strip()
        allowed = next(
            line.split(":", 1)[1].strip()
            for line in status.splitlines()
            if line.startswith("Cpus_allowed_list:")
        )
        out[f"{name}/{task.name}"] = allowed
    return out


def test_every_thread_of_a_pinned_container_runs_on_its_cpu_only(
    procs, tmp_path: Path, domain_id: int
) -> None:
    cpu = max(os.sched_getaffinity(0))
    spec = tmp_path / "t.json"
    spec.write_text(
        json.dumps(
            {"nodes": [{"factory": "runtime.nodes:talker", "name": "pinned", "namespace": "/a"}]}
        )
    )
    proc = procs.start(
        "-m",
        "iomt.runtime.container",
        "--spec",
        str(spec),
        "--domain",
        str(domain_id),
        "--cpus",
        str(cpu),
    )
    procs.wait_for_line(proc, "READY", 20)
    threads = _threads_cpus(proc.pid)
    # the interpreter's thread and Cyclone's (receive, timed events, delivery...)
    assert len(threads) > 3
    assert set(threads.values()) == {str(cpu)}, threads
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(10) == 0


@pytest.mark.parametrize(
    ("value", "why"),
    [("one", "expected CPU numbers like 0,1"), ("4096", "--cpus [4096]: ")],
)
def test_a_container_refuses_cpus_it_cannot_have(
    procs, tmp_path: Path, value: str, why: str
) -> None:
    spec = tmp_path / "t.json"
    spec.write_text(json.dumps({"nodes": []}))
    proc = procs.start("-m", "iomt.runtime.container", "--spec", str(spec), "--cpus", value)
    _out, err = proc.communicate(timeout=20)
    assert proc.returncode == 2
    assert why in err
