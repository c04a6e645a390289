"""A device node's parameters as one typed config (no DDS): what a node spec passes is
taken as before, unknown or missing keys are a ConfigurationError."""

from __future__ import annotations

import pytest

from iomt.core.modes import Mode
from iomt.errors import ConfigurationError
from iomt.nodes.device import DeviceNodeConfig

REQUIRED = {
    "keystore": "ks",
    "capability": "none",
    "kind": "heart_rate",
    "x": 0.0,
    "y": 1.0,
    "wallet": "wallet_0",
}


def test_a_node_specs_parameters_make_the_config() -> None:
    c = DeviceNodeConfig.from_params(
        {**REQUIRED, "mode": "centralized", "providers": ["dr_0"], "biomt": None}
    )
    assert c.mode is Mode.CENTRALIZED and c.providers == ("dr_0",) and dict(c.biomt) == {}
    assert c.upload_timeout_s == 10.0 and c.storage_dir is None  # the defaults
    assert DeviceNodeConfig.from_params({**REQUIRED, "providers": None}).providers == ()


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({**REQUIRED, "colour": "red"}, "unknown device parameters: colour"),
        ({k: v for k, v in REQUIRED.items() if k != "wallet"}, "wallet"),
        ({**REQUIRED, "mode": "cloud"}, "mode must be one of"),
        ({**REQUIRED, "capability": "quantum"}, "capability must be one of"),
    ],
)
def test_bad_parameters_are_configuration_errors(params: dict[str, object], match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        DeviceNodeConfig.from_params(params)
