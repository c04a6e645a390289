"""One ward over three hosts on a LAN (``--dds-config lan``), one host cut off for 10 s.

The hosts are network namespaces on a bridge that this test creates and removes
(tests/netns.py: addresses that exist only inside them). ``iomt launch`` runs on host 0
with the providers and the bag recorder, and places the wallets on host 1 and the devices
on host 2 (``--place``). Mid-run, host 2's cable is pulled for 10 s and plugged back in:
the requests that needed it fail (and the report counts them), requests resume once it is
back, the run completes, no process had to be restarted, and every reading the devices
committed is still in their storage, unaltered (the audit of their MAC chains).
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest

from iomt.experiments.at_rest import audit_storage
from netns import lan

pytestmark = [pytest.mark.dds, pytest.mark.slow]

REQUESTS = 1500
CUT_AFTER = 200  # requests done when the cable is pulled
CUT_S = 10.0


def _requests(run_dir: Path) -> list[dict]:  # type: ignore[type-arg]
    out = []
    for f in sorted((run_dir / "results").glob("dr_*.jsonl")):
        for line in f.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
            except ValueError:  # a line being written
                continue
            if record.get("record") == "request":
                out.append(record)
    return out


def _commands_in(namespace: str) -> list[str]:
    """The command lines of the processes in a network namespace."""
    pids = subprocess.run(
        ["ip", "netns", "pids", namespace], capture_output=True, text=True, check=False
    ).stdout.split()
    out = []
    for pid in pids:
        try:
            out.append(Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode())
        except OSError:
            continue
    return out


def _wait(predicate, timeout_s: float) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


@pytest.mark.timeout(300)
def test_a_ward_over_three_hosts_rides_out_a_host_cut_off(
    tmp_path: Path,
    domain_id: int,
    procs,  # type: ignore[no-untyped-def]
) -> None:
    run_dir = tmp_path / "run"
    with lan(3) as net:
        cmd = [
            *net.exec_prefix(0),
            sys.executable,
            "-m",
            "iomt",
            "launch",
            "scale_10",
            "--requests",
            str(REQUESTS),
            "--concurrency",
            "2",
            "--dds-config",
            "lan",
            "--domain",
            str(domain_id),
            "--run-dir",
            str(run_dir),
            "--timeout",
            "200",
            "--max-restarts",
            "0",  # nothing may crash here: a restart would hide a fault
            "--place",
            f"wallets_*={shlex.join(net.exec_prefix(1))}",
            "--place",
            f"devices_*={shlex.join(net.exec_prefix(2))}",
            "--json",
        ]
        launcher = procs.start_with(cmd[0], *cmd[1:], env=procs.env())
        _wait(lambda: len(_requests(run_dir)) >= CUT_AFTER or launcher.poll() is not None, 150)
        assert launcher.poll() is None, launcher.stderr.read() if launcher.stderr else ""
        # the processes run where they were placed
        assert any("specs/devices_0.json" in c for c in _commands_in(net.namespaces[2]))
        assert any("specs/wallets_0.json" in c for c in _commands_in(net.namespaces[1]))
        t_cut = time.time_ns()
        net.cut(2)
        time.sleep(CUT_S)
        net.restore(2)
        t_restore = time.time_ns()
        out, err = launcher.communicate(timeout=220)
        left = _commands_in(net.namespaces[1]) + _commands_in(net.namespaces[2])
    assert launcher.returncode == 0, err[-3000:]
    assert not left, left
    report = json.loads(out)

    requests = _requests(run_dir)
    assert len(requests) == REQUESTS == report["requests"]["total"]
    ok = {"shared", "converted"}
    second = 1_000_000_000
    before = [r for r in requests if r["end_ns"] < t_cut]
    # (an answer already on its way when the cable was pulled still completes)
    during = [r for r in requests if t_cut + second <= r["end_ns"] < t_restore]
    after = [r for r in requests if r["end_ns"] >= t_restore]
    # while host 2 was off the LAN nothing reached a device: what finished then failed
    # (timeouts) -- and the report counts every one of them
    assert before and all(r["outcome"] in ok for r in before)
    assert during and all(r["outcome"] == "failed" for r in during), [
        (r["outcome"], (r["end_ns"] - t_cut) / second) for r in during if r["outcome"] in ok
    ][:5]
    failed = [r for r in requests if r["outcome"] == "failed"]
    assert report["requests"]["failed"] == len(failed) >= len(during)
    # failures cluster in the cut (a request sent just before it times out just after)
    late = [r for r in failed if r["end_ns"] > t_restore + 5 * second]
    assert not late, late[:3]
    # and once the cable was back in, requests resumed and completed
    assert sum(r["outcome"] in ok for r in after) >= REQUESTS // 2
    # no process died; nothing the devices committed was lost or altered
    assert report["supervision"]["crashes"] == 0
    assert set(report["exit_codes"].values()) == {0}
    storage = audit_storage(run_dir)
    assert storage["valid"], storage
    assert storage["devices"]["valid"] == storage["devices"]["checked"] == 10
    # the recorder on host 0 heard the providers' side throughout
    assert report["traffic"]["by_hop"]["to_requester"]["readable"] == 0
