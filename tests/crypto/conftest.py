from __future__ import annotations

import pytest
from crypto_clock import FakeClock

from iomt.crypto.abe.fame import AttributeAuthority


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(scope="session")
def authority() -> AttributeAuthority:
    return AttributeAuthority.setup()
