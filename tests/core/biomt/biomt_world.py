"""A small facility for the BIoMT core tests: CA, users, one bolster, devices, a fake clock.

Uniquely named (tests/ directories are not packages). Everything is deterministic: the clock
moves only when a test advances it, and keys come from a seeded RNG.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives.serialization import Encoding

from iomt.core.biomt import (
    ADMIN_ROLE,
    DEVICE_ROLE,
    PATIENT_ROLE,
    SECOND,
    BiomtDevice,
    Bolster,
    BolsterConfig,
    BolsterIdentity,
    CostMeter,
    FacilityCA,
    Measurement,
    Requester,
    UserDirectory,
    bolster_validator,
)
from iomt.crypto.keystore import Keystore
from iomt.crypto.signing import Ed25519Signer
from iomt.ledger import (
    AccessRule,
    LedgerStorage,
    MemoryStorage,
    PrivacyHeader,
    SqliteStorage,
    TxType,
)

START = 1_700_000_000 * SECOND
YEAR = 365 * 86_400 * SECOND
FACILITY = "facility-a"


class FakeClock:
    """Nanoseconds; moves only when told to."""

    def __init__(self, now: int = START) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now

    def advance(self, ns: int) -> None:
        self.now += ns


def default_policy() -> PrivacyHeader:
    return PrivacyHeader(
        FACILITY,
        1,
        rules=(
            AccessRule("physician", TxType.ACCESS, all_devices=True),
            AccessRule("physician", TxType.OBSERVE, all_devices=True, observe_interval=2 * SECOND),
            AccessRule(DEVICE_ROLE, TxType.ACCESS, all_devices=True),
        ),
    )


def _keystore(path: Path) -> Keystore:
    """The facility keystore at ``path`` (created, with bolster-a, on first use), its
    certificates issued at the fake clock's start."""
    clock = lambda: START / 1e9  # noqa: E731
    if not path.exists():
        ks = Keystore.create(path, facility=FACILITY, clock=clock)
        ks.add_identity("bolster-a")
    return Keystore.open(path, clock=clock)


def heart_rate(bpm: float, at: int) -> Measurement:
    return Measurement("heart_rate", at, (("bpm", bpm),))


class World:
    def __init__(
        self,
        *,
        db: Path | None = None,
        config: BolsterConfig | None = None,
        seed: int = 1,
        policy: PrivacyHeader | None = None,
        meter: CostMeter | None = None,
        keystore: Path | None = None,
    ) -> None:
        self.clock = FakeClock()
        self._random = random.Random(seed)
        self.rng: Callable[[int], bytes] = self._random.randbytes
        if keystore is None:
            self.ca = FacilityCA.generate(FACILITY, now=self.clock())
            self.users = UserDirectory(self.ca.anchor)
            self.identity = BolsterIdentity.generate(
                "bolster-a", self.ca, now=self.clock(), storage_secret=self.rng(32)
            )
        else:
            # CA and bolster keys on disk, so that another process (a bolster killed
            # mid-operation, then the one that reopens its ledger) can load the same ones
            ks = _keystore(keystore)
            self.ca = FacilityCA.from_keystore(ks)
            self.users = UserDirectory(self.ca.anchor)
            self.identity = BolsterIdentity.from_keystore(
                ks.identity("bolster-a"), facility_id=FACILITY, storage_secret=self.rng(32)
            )
        self.db = db
        self.config = config or BolsterConfig(max_block_transactions=8, max_block_age=None)
        self.policy = policy or default_policy()
        self.meter = meter
        self.opened: list[SqliteStorage] = []
        self.storage = self._storage()
        self.bolster = self.open_bolster()
        self.admin = self.user("admin-1", ADMIN_ROLE)
        self.patient = self.user("patient-7", PATIENT_ROLE)
        self.other_patient = self.user("patient-9", PATIENT_ROLE)
        self.physician = self.user("dr-alice", "physician")
        self.insurer = self.user("insurer-x", "insurer")

    def _storage(self) -> LedgerStorage:
        if self.db is None:
            return MemoryStorage()
        store = SqliteStorage(self.db)
        self.opened.append(store)
        return store

    def open_bolster(self) -> Bolster:
        return Bolster.open(
            self.identity,
            self.storage,
            ca=self.ca,
            users=self.users,
            policy=self.policy,
            config=self.config,
            clock=self.clock,
            rng=self.rng,
            meter=self.meter,
        )

    def restart(self) -> Bolster:
        """A new bolster object on the same ledger (SQLite: a fresh connection)."""
        if self.db is not None:
            self.storage.close()
            self.storage = self._storage()
        self.bolster = self.open_bolster()
        return self.bolster

    def close(self) -> None:
        for s in self.opened:
            s.close()

    def user(self, name: str, role: str, *, attest_every: int = 64) -> Requester:
        signer = Ed25519Signer.from_private_bytes(self.rng(32))
        cert = self.ca.issue(
            common_name=name,
            uri=f"iomt://{FACILITY}/{name}",
            public_key=signer.raw.public_key(),
            now=self.clock(),
            not_after=self.clock() + YEAR,
        )
        self.users.register(cert, role, now=self.clock())
        return Requester(
            name,
            signer,
            clock=self.clock,
            rng=self.rng,
            credential=cert.public_bytes(Encoding.DER),
            validate_bolster=bolster_validator(self.ca.anchor, self.clock),
            attest_every=attest_every,
        )

    def connect(self, user: Requester, bolster: Bolster | None = None) -> None:
        """Run the session handshake between ``user`` and the bolster."""
        b = bolster or self.bolster
        m2 = b.session_handshake(user.name, user.channels.start(b.bolster_id))
        m4 = b.session_handshake(user.name, user.channels.finish(b.bolster_id, m2))
        user.channels.confirm(b.bolster_id, m4)

    def new_device(self, uri: str = "iomt://facility-a/hr-1") -> BiomtDevice:
        return BiomtDevice(uri, anchor=self.ca.anchor, clock=self.clock, rng=self.rng)

    def device(
        self, uri: str = "iomt://facility-a/hr-1", *, owner: str = "patient-7"
    ) -> BiomtDevice:
        dev = self.new_device(uri)
        enrolment = dev.enrol(
            self.bolster.credentials,
            owner=owner,
            attributes={"kind": "heart_rate", "model": "HR-200", "serial": uri[-4:]},
        )
        dev.complete(self.bolster.provision(self.admin.approve(enrolment)))
        return dev

    def store(self, dev: BiomtDevice, bpm: float) -> None:
        result = self.bolster.store(dev.store_request(heart_rate(bpm, self.clock())))
        dev.check_store_receipt(result.receipt)
