"""How a ward shares data: the paper's framework, its baselines, and BIoMT on top."""

from __future__ import annotations

from enum import StrEnum

from iomt.errors import ConfigurationError

__all__ = ["Mode"]


class Mode(StrEnum):
    """A ward's sharing mode (str-valued: what options, results and reports carry)."""

    #: Bilal & Hassan's framework: devices share (and convert) for themselves
    DISTRIBUTED = "distributed"
    #: the baseline: devices upload in plaintext to a central server that does the sharing
    CENTRALIZED = "centralized"
    #: no security at all: plaintext answers, no tokens (a lower bound)
    BASE = "base"
    #: the framework as in DISTRIBUTED, plus BIoMT's bolsters and ledger
    BIOMT = "biomt"

    @classmethod
    def parse(cls, value: str | Mode) -> Mode:
        try:
            return cls(value)
        except ValueError:
            names = ", ".join(m.value for m in cls)
            raise ConfigurationError(f"mode must be one of {names}, not {value!r}") from None

    @property
    def shares(self) -> bool:
        """Devices run the paper's framework (announce, answer data_share, convert)."""
        return self in (Mode.DISTRIBUTED, Mode.BIOMT)

    @property
    def secured(self) -> bool:
        """Anything is authenticated or encrypted at all."""
        return self is not Mode.BASE
