"""The bolster's services on their own: each a sans-IO object over one shared state.

The facade (:class:`Bolster`) is tested by the other suites; here each service is built
directly on a :class:`BolsterState`, as the facade builds it, to show what it needs and
what it changes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from biomt_world import FACILITY, World, default_policy, heart_rate

from iomt.core.biomt import (
    SECOND,
    AccessDeniedError,
    BiomtDevice,
    BolsterConfig,
    ProvisioningError,
    RemoveDeniedError,
    ReplayError,
    RequestAuthenticationError,
    StaleRequestError,
)
from iomt.core.biomt.checks import RequestChecks
from iomt.core.biomt.cloud import CloudAck
from iomt.core.biomt.cloud_sync import CloudSync
from iomt.core.biomt.config import Retention
from iomt.core.biomt.history import History
from iomt.core.biomt.keys import LedgerKey
from iomt.core.biomt.pair_keys import PairKeys, PairKeyStatus
from iomt.core.biomt.provisioner import Provisioner
from iomt.core.biomt.provisioning import DeviceAttributes, ats, id_issue, secgen
from iomt.core.biomt.records import Records
from iomt.core.biomt.removal import Removal
from iomt.core.biomt.state import BolsterState
from iomt.core.biomt.user_sessions import SessionService
from iomt.ledger import Ledger, MemoryStorage, TxType


@dataclass
class Services:
    world: World
    state: BolsterState
    checks: RequestChecks
    provisioner: Provisioner
    records: Records
    removal: Removal
    pair_keys: PairKeys
    history: History
    cloud: CloudSync

    def device(self, uri: str = "iomt://facility-a/hr-1") -> BiomtDevice:
        dev = self.world.new_device(uri)
        enrolment = dev.enrol(
            self.world.bolster.credentials, owner="patient-7", attributes={"kind": "hr"}
        )
        dev.complete(self.provisioner.provision(self.world.admin.approve(enrolment)))
        return dev


def _state(w: World, storage: MemoryStorage, config: BolsterConfig) -> BolsterState:
    ledger = Ledger.open(
        storage,
        LedgerKey(w.identity.signer),
        privacy_header=None if storage.read_meta() else default_policy(),
        clock=w.clock,
        max_block_transactions=config.max_block_transactions,
        max_block_age=config.max_block_age,
    )
    return BolsterState(
        identity=w.identity,
        ledger=ledger,
        ca=w.ca,
        users=w.users,
        config=config,
        clock=w.clock,
        rng=w.rng,
    )


def _services(w: World, storage: MemoryStorage, config: BolsterConfig) -> Services:
    state = _state(w, storage, config)
    checks = RequestChecks(state)
    return Services(
        w,
        state,
        checks,
        Provisioner(state, checks),
        Records(state, checks),
        Removal(state, checks),
        PairKeys(state, checks),
        History(state, checks),
        CloudSync(state, None),
    )


@pytest.fixture
def services() -> Iterator[Services]:
    w = World()
    yield _services(w, MemoryStorage(), BolsterConfig(max_block_transactions=4, max_block_age=None))
    w.close()


def test_the_provisioner_runs_ats_secgen_and_id_issue(services: Services) -> None:
    dev = services.device()
    creds = dev.credentials
    attrs = DeviceAttributes.of(dev.device_uri, "patient-7", {"kind": "hr"})
    assert creds.pseudonym == id_issue(creds.agreement)
    assert [name for name, _ in creds.numbers] == ["kind"]
    assert secgen(FACILITY, attrs, creds.numbers, dev.signing_key) == creds.agreement
    record = services.state.devices[creds.pseudonym]
    assert record.owner == "patient-7" and record.origin_seq == 0
    assert services.state.ledger.privacy_header.is_authorized(creds.pseudonym)


def test_ats_draws_one_fresh_number_per_attribute(services: Services) -> None:
    attrs = DeviceAttributes.of("iomt://x", "p", {"a": "1", "b": "2"})
    first, second = ats(attrs, services.world.rng), ats(attrs, services.world.rng)
    assert [n for n, _ in first] == ["a", "b"]
    assert first != second
    assert secgen(FACILITY, attrs, first, bytes(32)) != secgen(FACILITY, attrs, second, bytes(32))


def test_the_provisioner_refuses_an_enrolment_for_another_bolster(services: Services) -> None:
    w = services.world
    request = w.admin.approve(
        w.new_device().enrol(w.bolster.credentials, owner="patient-7", attributes={})
    )
    other = Provisioner(_state(World(seed=2), MemoryStorage(), BolsterConfig()), services.checks)
    with pytest.raises(ProvisioningError):
        other.provision(request)


def test_records_store_and_access_change_only_the_shared_state(services: Services) -> None:
    w, state = services.world, services.state
    dev = services.device()
    for bpm in (70, 71):
        w.clock.advance(SECOND)
        result = services.records.store(dev.store_request(heart_rate(bpm, w.clock())))
        dev.check_store_receipt(result.receipt)
    record = state.devices[dev.pseudonym]
    assert record.last_counter == 2 and len(record.seqs) == 2
    assert set(state.recent) == {(dev.pseudonym, s) for s in record.seqs}
    req = w.physician.access("bolster-a", dev.pseudonym)
    payload = w.physician.open_access(req, services.records.access(req), bolster=w.bolster.verifier)
    assert [r.measurement.value("bpm") for r in payload.records] == [70, 71]
    denied = w.insurer.access("bolster-a", dev.pseudonym)
    with pytest.raises(AccessDeniedError) as info:
        services.records.access(denied)
    assert info.value.transaction is not None
    assert info.value.transaction.tx_type is TxType.ACCESS


def test_the_request_checks_go_in_order(services: Services) -> None:
    w = services.world
    req = w.physician.access("bolster-b", "dev-x")
    with pytest.raises(RequestAuthenticationError, match="request is for bolster 'bolster-b'"):
        services.checks.authenticate(req, w.clock())
    req = w.physician.access("bolster-a", "dev-x")
    with pytest.raises(StaleRequestError):
        services.checks.authenticate(req, w.clock() + 31 * SECOND)
    user = services.checks.authenticate(req, w.clock())
    assert user.name == "dr-alice"
    with pytest.raises(ReplayError, match="nonce already used"):
        services.checks.authenticate(req, w.clock())


def test_removal_completes_idempotently(services: Services) -> None:
    w, state = services.world, services.state
    dev = services.device()
    services.records.store(dev.store_request(heart_rate(70, w.clock())))
    with pytest.raises(RemoveDeniedError):
        services.removal.remove(w.other_patient.remove("bolster-a", dev.pseudonym, reason="x"))
    result = services.removal.remove(w.patient.remove("bolster-a", dev.pseudonym, reason="lost"))
    assert result.records_deleted == 1
    record = state.devices[dev.pseudonym]
    assert record.removed and not state.recent
    assert not state.ledger.privacy_header.is_authorized(dev.pseudonym)
    blocks = state.ledger.block_count
    assert services.removal.complete(record) == 0  # as a replay would repeat it
    assert state.ledger.block_count == blocks


def test_pair_keys_are_granted_and_their_status_follows_the_state(services: Services) -> None:
    w, state = services.world, services.state
    a = services.device("iomt://facility-a/hr-1")
    b = services.device("iomt://facility-a/hr-2")
    assert services.pair_keys.status(b"\x00" * 16) is PairKeyStatus.UNKNOWN
    grant = services.pair_keys.setup_communication(
        a.communication_request(b.pseudonym, lifetime=60 * SECOND)
    )
    assert services.pair_keys.status(grant.grant_id) is PairKeyStatus.VALID
    state.mark_removed(state.devices[b.pseudonym], w.clock())
    assert services.pair_keys.status(grant.grant_id) is PairKeyStatus.INVALID


def test_history_is_for_the_owner_or_an_admin(services: Services) -> None:
    w = services.world
    dev = services.device()
    user = w.users.get("patient-7")
    payload = services.history.serve(user, dev.pseudonym)
    assert [e.tx_type for e in payload.entries] == [TxType.ORIGIN]
    with pytest.raises(AccessDeniedError):
        services.history.serve(w.users.get("dr-alice"), dev.pseudonym)


def test_cloud_sync_without_a_cloud_key_trusts_no_ack(services: Services) -> None:
    w = services.world
    dev = services.device()
    for bpm in range(70, 74):
        services.records.store(dev.store_request(heart_rate(bpm, w.clock())))
    (batch, *_) = services.cloud.batches()
    assert len(batch.records) == 4
    ack = CloudAck("cloud-1", batch.ledger_id, batch.block_index, batch.block_hash, 4)
    with pytest.raises(RequestAuthenticationError, match="no cloud key configured"):
        services.cloud.synced(ack)


def test_replay_rebuilds_the_state_the_services_left() -> None:
    w = World()
    storage = MemoryStorage()
    config = BolsterConfig(max_block_transactions=4, max_block_age=None)
    live = _services(w, storage, config)
    a = live.device("iomt://facility-a/hr-1")
    b = live.device("iomt://facility-a/hr-2")
    for bpm in (70, 71, 72):
        live.records.store(a.store_request(heart_rate(bpm, w.clock())))
    live.pair_keys.setup_communication(a.communication_request(b.pseudonym, lifetime=SECOND))
    live.records.observe(w.physician.observe("bolster-a", [a.pseudonym], duration=60 * SECOND))
    live.removal.remove(w.admin.remove("bolster-a", b.pseudonym, reason="gone"))

    replayed = _state(w, storage, config)
    assert [d.pseudonym for d in replayed.replay()] == [b.pseudonym]

    def view(s: BolsterState) -> object:
        return (
            {p: (d.owner, d.last_counter, d.removed, list(d.seqs)) for p, d in s.devices.items()},
            {p: sorted(ds) for p, ds in s.owned.items()},
            {g: (x.initiator, x.peer, x.expires_at, x.valid) for g, x in s.grants.items()},
            sorted(sub.subscription_id for sub in s.engine),
            s.blocks,
        )

    live_view = view(live.state)
    live_view[0][b.pseudonym] = (*live_view[0][b.pseudonym][:3], [])  # type: ignore[index]
    assert view(replayed) == live_view
    w.close()


def test_cloud_sync_replay_marks_evicted_blocks() -> None:
    w = World()
    storage = MemoryStorage()
    config = BolsterConfig(
        retention=Retention.EVICT_AFTER_SYNC, max_block_transactions=4, max_block_age=None
    )
    live = _services(w, storage, config)
    dev = live.device()
    for bpm in range(70, 78):
        live.records.store(dev.store_request(heart_rate(bpm, w.clock())))
    sealed = [i for i, (_, count, _) in enumerate(live.state.blocks) if count]
    victim = sealed[-1]
    first, count, _ = live.state.blocks[victim]
    seqs = [
        tx.seq
        for tx in live.state.ledger.transactions(start=first, stop=first + count)
        if tx.tx_type is TxType.STORE
    ]
    live.state.local.delete(dev.pseudonym, seqs)  # as an eviction after the cloud's ack

    replayed = _state(w, storage, config)
    replayed.replay()
    cloud = CloudSync(replayed, None)
    cloud.replay()
    assert replayed.synced == {victim}
    w.close()


@pytest.mark.parametrize(
    "service",
    [BolsterState, RequestChecks, Provisioner, Records, PairKeys, History, SessionService],
)
def test_every_metered_step_is_a_method_of_its_service(service: type) -> None:
    assert service.PHASES  # type: ignore[attr-defined]
    for name in service.PHASES:  # type: ignore[attr-defined]
        assert callable(getattr(service, name)), name
