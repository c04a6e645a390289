"""Fixtures of the attack suite (helpers in attack_wards.py)."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator

import pytest
from attack_wards import (
    REQUESTS,
    AttackedRun,
    Launch,
    container_pid,
    exposed,
    processes_of,
    requests_done,
    wait_for,
)

from domains import fresh_domain
from netns import isolated


@pytest.fixture
def netns() -> Iterator[list[str]]:
    with isolated() as prefix:
        yield prefix


@pytest.fixture
def launches() -> Iterator[list[Launch]]:
    started: list[Launch] = []
    yield started
    for launch in started:
        launch.kill()


@pytest.fixture(scope="session")
def attacked_biomt_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AttackedRun]:
    run_dir = tmp_path_factory.mktemp("attacked") / "run"
    domain = fresh_domain()
    t0 = time.monotonic()
    with isolated() as prefix:
        launch = Launch(
            prefix,
            "scale_10",
            "--mode",
            "biomt",
            "--requests",
            str(REQUESTS),
            "--biomt-ops",
            "120",
            "--domain",
            str(domain),
            "--run-dir",
            str(run_dir),
            "--timeout",
            "240",
            "--json",
        )
        killed: list[tuple[str, int, int]] = []
        seen: list[str] = []
        files = 0
        try:
            for process, at in (("bolster_0", REQUESTS // 5), ("devices_0", REQUESTS // 2)):
                wait_for(
                    lambda at=at: requests_done(run_dir) >= at or launch.popen.poll() is not None,
                    240,
                    f"{at} requests",
                )
                assert launch.popen.poll() is None, launch.popen.stderr.read()  # type: ignore[union-attr]
                # what an attacker on the machine sees while the ward runs: nothing but
                # the owner may read the run directory, ledgers, storage, bag, keys
                seen += exposed(run_dir)
                files += sum(1 for _ in run_dir.rglob("*"))
                pid = container_pid(run_dir, process)
                assert pid is not None, process
                os.kill(pid, signal.SIGKILL)
                killed.append((process, pid, requests_done(run_dir)))
            code, out, err = launch.finish(300)
            time.sleep(0.5)
            left = processes_of(run_dir)  # before the clean-up below kills any
        finally:
            launch.kill()
    report = json.loads(out) if code == 0 else {}
    yield AttackedRun(run_dir, code, report, err, killed, seen, files, left, time.monotonic() - t0)
