"""Fixtures for the ledger tests: every ledger test runs on both storage backends."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from iomt.crypto.signing import Ed25519Signer
from iomt.ledger import (
    AccessRule,
    Ledger,
    LedgerKey,
    LedgerStorage,
    MemoryStorage,
    PrivacyHeader,
    SqliteStorage,
    TxType,
)

START = 1_700_000_000_000_000_000  # ns


class FakeClock:
    """An injectable clock: nanoseconds, advancing by ``step`` per reading."""

    def __init__(self, start: int = START, step: int = 1_000_000) -> None:
        self.now = start
        self.step = step

    def __call__(self) -> int:
        value = self.now
        self.now += self.step
        return value

    def advance(self, ns: int) -> None:
        self.now += ns


class Backend:
    """Opens (and re-opens) one store of a given kind; closes what it opened."""

    def __init__(self, kind: str, path: Path) -> None:
        self.kind = kind
        self.path = path
        self._memory: MemoryStorage | None = None
        self._opened: list[SqliteStorage] = []

    def open(self) -> LedgerStorage:
        if self.kind == "memory":
            if self._memory is None:
                self._memory = MemoryStorage()
            return self._memory
        store = SqliteStorage(self.path)
        self._opened.append(store)
        return store

    def close_all(self) -> None:
        for store in self._opened:
            store.close()
        self._opened.clear()


@pytest.fixture(params=["memory", "sqlite"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    b = Backend(request.param, tmp_path / "ledger.db")
    yield b
    b.close_all()


@pytest.fixture
def signer() -> LedgerKey:
    return LedgerKey(Ed25519Signer.from_private_bytes(bytes([7]) * 32))


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def policy() -> PrivacyHeader:
    return PrivacyHeader(
        facility_id="facility-test",
        version=1,
        authorized_devices=frozenset({"dev-hr-1", "dev-bp-2"}),
        rules=(
            AccessRule("physician", TxType.ACCESS, all_devices=True),
            AccessRule(
                "physician", TxType.OBSERVE, frozenset({"dev-hr-1"}), observe_interval=10**9
            ),
            AccessRule("insurer", TxType.ACCESS, frozenset({"dev-bp-2"})),
        ),
    )


@pytest.fixture
def ledger(backend: Backend, signer: LedgerKey, clock: FakeClock, policy: PrivacyHeader) -> Ledger:
    return Ledger.open(
        backend.open(), signer, privacy_header=policy, clock=clock, max_block_transactions=4
    )
