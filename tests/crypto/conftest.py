from __future__ import annotations

import pytest

from iomt.crypto.abe.fame import AttributeAuthority


class FakeClock:
    """An injectable clock: ``clock()`` returns the current time, ``advance`` moves it."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(scope="session")
def authority() -> AttributeAuthority:
    return AttributeAuthority.setup()
