"""A ward's sharing mode: parsed once, compared as an enum, still the same strings."""

from __future__ import annotations

import json

import pytest

from iomt.core.modes import Mode
from iomt.errors import ConfigurationError


def test_modes_are_the_strings_options_and_reports_carry() -> None:
    assert [m.value for m in Mode] == ["distributed", "centralized", "base", "biomt"]
    assert Mode.parse("biomt") is Mode.BIOMT and Mode.parse(Mode.BASE) is Mode.BASE
    assert Mode.CENTRALIZED == "centralized"
    assert json.dumps({"mode": Mode.DISTRIBUTED}) == '{"mode": "distributed"}'


def test_what_each_mode_runs() -> None:
    assert {m for m in Mode if m.shares} == {Mode.DISTRIBUTED, Mode.BIOMT}
    assert {m for m in Mode if not m.secured} == {Mode.BASE}


def test_an_unknown_mode_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="mode must be one of"):
        Mode.parse("cloud")
