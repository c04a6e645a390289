"""Finding: bad input at the door.

The outside test found ``--requests -5`` accepted (the launch then hung until ``--timeout``,
900 s, with the cause only in a log), ``--concurrency 0`` and ``fleet --devices -3``
accepted, and ``--domain 300`` refused only after the ward's keys were provisioned. Each of
those, and every other numeric option of the commands, now fails at the door: exit code 2,
one line on stderr naming the option, and nothing provisioned or launched (the run
directory is never created).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from iomt.cli import main
from iomt.cli.args import MAX_DOMAIN_ID
from iomt.runtime.config import MAX_DOMAIN_ID as RUNTIME_MAX_DOMAIN_ID

# (argv after `iomt`, the option the one-line error must name)
LAUNCH = ["launch", "scale_10"]
IOMT = [sys.executable, "-m", "iomt"]
BAD: list[tuple[list[str], str]] = [
    # the outside test's findings
    ([*LAUNCH, "--requests", "-5"], "--requests"),
    ([*LAUNCH, "--concurrency", "0"], "--concurrency"),
    (["launch", "fleet", "--devices", "-3"], "--devices"),
    ([*LAUNCH, "--domain", "300"], "--domain"),
    # the rest of `iomt launch`
    ([*LAUNCH, "--requests", "0"], "--requests"),
    ([*LAUNCH, "--requests", "1e3"], "--requests"),
    ([*LAUNCH, "--concurrency", "100000"], "--concurrency"),
    ([*LAUNCH, "--timeout", "0"], "--timeout"),
    ([*LAUNCH, "--timeout", "-1"], "--timeout"),
    ([*LAUNCH, "--timeout", "inf"], "--timeout"),
    ([*LAUNCH, "--timeout", "nan"], "--timeout"),
    ([*LAUNCH, "--domain", "-1"], "--domain"),
    ([*LAUNCH, "--domain", "233"], "--domain"),
    ([*LAUNCH, "--duration", "-1"], "--duration"),
    ([*LAUNCH, "--seed", "-1"], "--seed"),
    ([*LAUNCH, "--robots", "-1"], "--robots"),
    ([*LAUNCH, "--biomt-ops", "-1", "--mode", "biomt"], "--biomt-ops"),
    ([*LAUNCH, "--max-restarts", "-1"], "--max-restarts"),
    # the other commands with numbers
    (["graph", "--domain", "300"], "--domain"),
    (["graph", "--wait", "0"], "--wait"),
    (["graph", "--expect-nodes", "-1"], "--expect-nodes"),
    (["demo", "case-study", "--domain", "999"], "--domain"),
    (["bag", "record", "-o", "x", "--domain", "300"], "--domain"),
    (["bag", "record", "-o", "x", "--duration", "0"], "--duration"),
    (["bag", "play", "x", "--rate", "0"], "--rate"),
    (["bag", "play", "x", "--rate", "-2"], "--rate"),
    (["bag", "play", "x", "--delay", "-1"], "--delay"),
    (["bag", "play", "x", "--wait-for-subscribers", "-1"], "--wait-for-subscribers"),
    (["bag", "play", "x", "--domain", "-4"], "--domain"),
    (["bag", "audit", "x", "--max-items", "-1"], "--max-items"),
    (["keystore", "create", "ks", "--max-attribute-reuse", "0"], "--max-attribute-reuse"),
    (["keystore", "add-identity", "ks", "dev", "--days", "0"], "--days"),
]


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    try:
        code = main(argv)
    except SystemExit as exc:
        code = int(exc.code or 0)
    return code, capsys.readouterr().err.strip().splitlines()


@pytest.mark.parametrize(("argv", "option"), BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_numbers_are_refused_at_the_door(
    argv: list[str], option: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = tmp_path / "run"
    extra = ["--run-dir", str(run_dir)] if argv[0] == "launch" else []
    code, err = _run(argv + extra, capsys)
    assert code == 2
    assert len(err) == 1, err
    assert option in err[0] and "error" in err[0]
    assert not run_dir.exists()


@pytest.mark.parametrize(
    ("env", "argv", "needle"),
    [
        ({"ROS_DOMAIN_ID": "300"}, [*LAUNCH], "300"),
        ({"ROS_DOMAIN_ID": "ward"}, [*LAUNCH], "ROS_DOMAIN_ID"),
        ({}, [*LAUNCH, "--dds-config", "/nonexistent/cyclone.xml"], "no such file"),
        ({}, ["launch", "scale_7"], "unknown topology"),
    ],
)
def test_what_argparse_cannot_see_is_checked_before_provisioning(
    env: dict[str, str],
    argv: list[str],
    needle: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    run_dir = tmp_path / "run"
    code, err = _run([*argv, "--run-dir", str(run_dir)], capsys)
    assert code == 2
    assert len(err) == 1 and needle in err[0], err
    assert not run_dir.exists()


@pytest.mark.timeout(60)
def test_the_real_command_exits_at_once(tmp_path: Path) -> None:
    """The finding as reported: `iomt launch scale_10 --requests -5` hung for 900 s."""
    run_dir = tmp_path / "run"
    proc = subprocess.run(
        [*IOMT, "launch", "scale_10", "--requests", "-5", "--run-dir", str(run_dir)],
        capture_output=True,
        text=True,
        timeout=50,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "iomt launch: error: argument --requests: must be at least 1, got -5 "
        "(see iomt launch --help)"
    ]
    assert proc.stdout == ""
    assert not run_dir.exists()


def test_good_values_still_parse() -> None:
    from iomt.cli import build_parser

    good = ["--requests", "1", "--concurrency", "1", "--domain", "0", "--timeout", "0.5"]
    args = build_parser().parse_args([*LAUNCH, *good, "--duration", "0", "--max-restarts", "0"])
    assert (args.requests, args.concurrency, args.domain, args.timeout) == (1, 1, 0, 0.5)
    assert build_parser().parse_args([*LAUNCH, "--domain", "232"]).domain == 232


def test_the_cli_domain_limit_is_the_runtime_one() -> None:
    assert MAX_DOMAIN_ID == RUNTIME_MAX_DOMAIN_ID
