"""BolsterConfig: one default per setting, typed errors."""

from __future__ import annotations

import dataclasses

import pytest

from iomt.core.biomt import BolsterConfig
from iomt.core.biomt.config import DEFAULT_REQUEST_RATE
from iomt.errors import ConfigurationError


@pytest.mark.parametrize(
    "name",
    [
        "key_lifetime",
        "max_clock_skew",
        "max_observe_duration",
        "session_lifetime",
        "max_unattested",
        "max_pair_key_lifetime",
    ],
)
@pytest.mark.parametrize("value", [0, -1])
def test_a_non_positive_time_or_bound_is_a_configuration_error(name: str, value: int) -> None:
    with pytest.raises(ConfigurationError, match=f"{name} must be positive"):
        BolsterConfig(**{name: value})  # type: ignore[arg-type]


def test_the_request_rate_default_is_the_nodes() -> None:
    config = BolsterConfig()
    assert config.request_rate == DEFAULT_REQUEST_RATE == 1000.0
    assert config.request_burst == 2 * DEFAULT_REQUEST_RATE


def test_a_config_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        BolsterConfig().request_rate = 1.0  # type: ignore[misc]
