"""A plan's keys (iomt.launch.provision) and the options a ROS 2 launch file hands on."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from iomt.crypto.keystore import Keystore
from iomt.errors import ConfigurationError
from iomt.launch.group import parse_options
from iomt.launch.provision import identity_roles, provision
from iomt.launch.ros2 import option_text
from iomt.topology import load


def test_a_plan_s_identities_are_provisioned_with_their_roles(tmp_path: Path) -> None:
    plan = load("case_study", run_dir=str(tmp_path / "run"))
    provision(plan)
    ks = Keystore.open(tmp_path / "run" / "keystore")
    assert sorted(ks.names()) == sorted(i.name for i in plan.identities)
    assert ks.info("hr_1").roles == ("device",) and ks.info("hr_1").capability == "none"
    assert ks.info("bp_1").algorithm == "ecdsa-p256"  # devices sign with P-256
    assert ks.info("wallet_p1").roles == ("wallet",)
    doctor = ks.info("dr_house")
    assert doctor.roles == ("provider",) and doctor.algorithm == "ed25519"
    assert {"role:cardiologist", "facility:F1"} <= set(doctor.attributes)
    with pytest.raises(ConfigurationError, match="exists: use a fresh run directory"):
        provision(plan)


def test_a_plan_without_identities_needs_no_keystore() -> None:
    with pytest.raises(ConfigurationError, match="needs no keystore"):
        provision(load("demo"))


def test_roles_come_from_the_nodes_the_plan_runs() -> None:
    plan = load("scale_50", mode="biomt", robots=1, run_dir="/tmp/unused")
    roles = identity_roles(plan)
    assert roles["bolster_0"] == (("bolster", "cluster-head"), None)
    assert roles["master"] == (("master",), None)
    assert roles["robot_0"] == (("provider",), None)
    devices = [n for p in plan.processes for n in p.nodes if n.name.startswith(("hr_", "bp_"))]
    for d in devices:
        assert roles[d.name] == (("device",), d.params["capability"])
    assert set(roles) <= {i.name for i in plan.identities}


def test_launch_file_options_survive_the_command_line() -> None:
    """ros2.generate renders options as ``--option k=v`` text for iomt-group, which the
    topology parses back to the same plan."""
    options = {
        "run_dir": "/tmp/unused",
        "record": False,
        "techniques": ("ecc", "cpabe"),
        "capability_mix": (0.2, 0.2, 0.4, 0.2),
        "start_delay_s": 0.5,
        "providers": 3,
    }
    text = [f"{k}={option_text(v)}" for k, v in options.items()]
    assert load("scale_20", **parse_options(text)) == load("scale_20", **options)


def test_iomt_group_refuses_a_bad_option_before_starting_anything(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from iomt.launch import group

    umask = os.umask(0o022)  # iomt-group sets the process's; this one is pytest's
    try:
        for option, says in (
            ("devices=3", "topology demo: unknown option 'devices'"),
            ("seed=0.5", "topology demo: option 'seed' must be an int, not '0.5'"),
        ):
            argv = ["--topology", "demo", "--process", "sensors", "--option", option]
            assert group.main(argv) == 2
            assert says in capsys.readouterr().err
    finally:
        os.umask(umask)
