"""A device node's parameters as one typed config (no DDS): the device kind's typed
parameters themselves, so each setting has one declaration and one default; what a node
spec passes is parsed by type, unknown, missing or ill-typed keys are a ConfigurationError
naming the node and the key."""

from __future__ import annotations

import typing

import pytest

from iomt.core.modes import Mode
from iomt.errors import ConfigurationError
from iomt.nodes.device import DeviceNodeConfig
from iomt.nodes.device_config import CAPABILITIES
from iomt.nodes.params import CapabilityClass, DeviceBiomt, DeviceParams
from iomt.topology import params as topology_params

REQUIRED = {
    "keystore": "ks",
    "capability": "none",
    "kind": "heart_rate",
    "x": 0.0,
    "y": 1.0,
    "wallet": "wallet_0",
}


def test_the_config_is_the_one_declaration_the_plans_hold_too() -> None:
    assert DeviceNodeConfig is DeviceParams
    assert topology_params.PARAMS["iomt.nodes.device:device_node"] is DeviceParams
    assert topology_params.DeviceParams is DeviceParams
    assert set(typing.get_args(CapabilityClass)) == set(CAPABILITIES)


def test_a_node_specs_parameters_make_the_config() -> None:
    c = DeviceNodeConfig.from_mapping(
        {**REQUIRED, "mode": "centralized", "providers": ["dr_0"], "biomt": None}
    )
    assert c.mode is Mode.CENTRALIZED and c.providers == ("dr_0",) and c.biomt is None
    assert c.upload_timeout_s == 10.0 and c.storage_dir is None  # the defaults
    assert c.mode is DeviceNodeConfig.from_mapping({**REQUIRED, "mode": c.mode}).mode
    assert DeviceNodeConfig.from_mapping({**REQUIRED, "mode": "BIoMT"}).mode is Mode.BIOMT
    assert DeviceNodeConfig.from_mapping({**REQUIRED, "providers": None}).providers is None
    # what the node hands its BIoMT link, as keyword arguments
    b = DeviceNodeConfig.from_mapping({**REQUIRED, "biomt": {"bolster": "b0", "admin": "a"}})
    assert b.biomt == DeviceBiomt(bolster="b0", admin="a")
    assert dict(b.biomt or {}) == {
        "bolster": "b0",
        "admin": "a",
        "base": True,
        "ack_log": None,
        "store_timeout_s": 2.0,
    }
    # round trip through a spec file's JSON
    assert DeviceNodeConfig.from_mapping(b.to_json()) == b
    assert b.to_json()["mode"] == "distributed"


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({**REQUIRED, "colour": "red"}, r"node /w/hr_0: unknown parameter 'colour'"),
        ({k: v for k, v in REQUIRED.items() if k != "wallet"}, "missing parameter 'wallet'"),
        ({**REQUIRED, "mode": "cloud"}, r"parameter 'mode' must be one of .*'distributed'"),
        ({**REQUIRED, "capability": "quantum"}, r"parameter 'capability' must be one of"),
        ({**REQUIRED, "x": "near"}, r"parameter 'x' must be a float"),
    ],
)
def test_bad_parameters_are_configuration_errors(params: dict[str, object], match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        DeviceNodeConfig.from_mapping(params, node="/w/hr_0")
