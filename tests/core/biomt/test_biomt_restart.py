"""The bolster core on SQLite survives re-open: nothing acknowledged is lost."""

from __future__ import annotations

from pathlib import Path

import pytest
from biomt_world import SECOND, World, heart_rate

from iomt.core.biomt import (
    BodyUnreadableError,
    Bolster,
    BolsterIdentity,
    DeviceRemovedError,
    PairKeyStatus,
    ReplayError,
)
from iomt.ledger import Ledger


def test_restart_keeps_devices_keys_counters_subscriptions_and_grants(tmp_path: Path) -> None:
    w = World(db=tmp_path / "b.db")
    a = w.device("iomt://facility-a/hr-1")
    b = w.device("iomt://facility-a/hr-2")
    gone = w.device("iomt://facility-a/hr-3")
    for _ in range(4):
        w.clock.advance(SECOND)
        w.store(a, 70)
    replayed = a.store_request(heart_rate(70, w.clock()))
    w.bolster.store(replayed)
    sub_req = w.physician.observe("bolster-a", [a.pseudonym], duration=3600 * SECOND)
    sub = w.bolster.observe(sub_req)
    observer = w.physician.open_subscription(sub_req, sub, bolster=w.bolster.verifier)
    grant = w.bolster.setup_communication(
        a.communication_request(b.pseudonym, lifetime=600 * SECOND)
    )
    w.bolster.remove(w.admin.remove("bolster-a", gone.pseudonym, reason="broken"))
    size, root = w.bolster.ledger.size, w.bolster.ledger.root

    bolster = w.restart()
    assert (bolster.ledger.size, bolster.ledger.root) == (size, root)
    assert bolster.devices() == sorted([a.pseudonym, b.pseudonym])
    # the counter survived: the old request is still a replay, the next one works
    with pytest.raises(ReplayError):
        bolster.store(replayed)
    w.clock.advance(3 * SECOND)
    result = bolster.store(a.store_request(heart_rate(71, w.clock())))
    a.check_store_receipt(result.receipt)
    # the subscription and its key survived
    (update,) = result.updates
    assert observer.open(update).value("bpm") == 71
    assert bolster.pair_key_status(grant.grant_id) is PairKeyStatus.VALID
    with pytest.raises(DeviceRemovedError):
        bolster.store(gone.store_request(heart_rate(70, w.clock())))
    # the data is all there
    req = w.physician.access("bolster-a", a.pseudonym)
    payload = w.physician.open_access(req, bolster.access(req), bolster=bolster.verifier)
    assert len(payload.records) == 6
    assert bolster.ledger.verify_chain().tree_size == bolster.ledger.size
    w.close()


def test_restart_completes_an_interrupted_origin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Crash after the Origin commit, before the block admitting the device."""
    w = World(db=tmp_path / "b.db")
    dev = w.new_device()
    request = w.admin.approve(dev.enrol(w.bolster.credentials, owner="patient-7", attributes={}))

    def crash(self: Ledger, *a: object, **k: object) -> None:
        raise KeyboardInterrupt("power cut")

    monkeypatch.setattr(Ledger, "seal_block", crash)
    with pytest.raises(KeyboardInterrupt):
        w.bolster.provision(request)
    monkeypatch.undo()
    bolster = w.restart()
    (pseudonym,) = bolster.devices()
    assert bolster.privacy_header.is_authorized(pseudonym)
    w.close()


def test_restart_completes_an_interrupted_remove(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = World(db=tmp_path / "b.db")
    dev = w.device()
    w.store(dev, 70)

    def crash(self: Ledger, *a: object, **k: object) -> None:
        raise KeyboardInterrupt("power cut")

    monkeypatch.setattr(Ledger, "seal_block", crash)
    with pytest.raises(KeyboardInterrupt):
        w.bolster.remove(w.admin.remove("bolster-a", dev.pseudonym, reason="x"))
    monkeypatch.undo()
    assert w.bolster.local_storage.records(dev.pseudonym)  # not yet deleted
    bolster = w.restart()
    assert bolster.is_removed(dev.pseudonym)
    assert not bolster.privacy_header.is_authorized(dev.pseudonym)
    assert bolster.local_storage.records(dev.pseudonym) == []
    w.close()


def test_a_wrong_storage_secret_cannot_read_the_ledger(tmp_path: Path) -> None:
    w = World(db=tmp_path / "b.db")
    w.device()
    wrong = BolsterIdentity(
        w.identity.bolster_id,
        w.identity.facility_id,
        w.identity.signer,
        w.identity.signing_certificate,
        w.identity.agreement_key,
        w.identity.agreement_certificate,
        bytes(32),
    )
    with pytest.raises(BodyUnreadableError):
        Bolster.open(wrong, w.storage, ca=w.ca, users=w.users, clock=w.clock, rng=w.rng)
    w.close()
