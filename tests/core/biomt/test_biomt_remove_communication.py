"""Remove (key revoked, header updated, records deleted) and communication setup."""

from __future__ import annotations

import dataclasses

import pytest
from biomt_world import SECOND, World, default_policy, heart_rate

from iomt.core.biomt import (
    DEVICE_ROLE,
    AccessDeniedError,
    CommunicationDeniedError,
    DeviceRemovedError,
    DeviceState,
    KeyExpiredError,
    Outcome,
    PairKeyStatus,
    ReceiptMismatchError,
    RemoveDeniedError,
    ReplayError,
    RequestAuthenticationError,
)
from iomt.crypto.errors import CertificateRevokedError
from iomt.crypto.techniques import AssociatedData, get_technique
from iomt.ledger import AccessRule, PrivacyHeader, TxType


def test_remove_revokes_and_forgets_the_device(any_world: World) -> None:
    w = any_world
    dev = w.device()
    for _ in range(3):
        w.store(dev, 70)
    observe = w.physician.observe("bolster-a", [dev.pseudonym], duration=3600 * SECOND)
    w.bolster.observe(observe)
    version = w.bolster.privacy_header.version
    req = w.admin.remove("bolster-a", dev.pseudonym, reason="broken")
    result = w.bolster.remove(req)
    w.admin.check_removed(req, result, bolster=w.bolster.verifier)
    assert result.records_deleted == 3
    assert result.transaction.tx_type is TxType.REMOVE
    assert result.policy_version > version
    assert not w.bolster.privacy_header.is_authorized(dev.pseudonym)
    assert w.bolster.local_storage.records(dev.pseudonym) == []
    assert w.bolster.subscriptions() == []
    # later Store (and any other communication) is refused with a typed error
    with pytest.raises(DeviceRemovedError):
        w.bolster.store(dev.store_request(heart_rate(70, w.clock())))
    dev.removed()
    assert dev.state is DeviceState.REMOVED
    with pytest.raises(DeviceRemovedError):
        w.bolster.remove(w.admin.remove("bolster-a", dev.pseudonym, reason="again"))
    # its certificate is revoked for everybody holding the facility's revocation list
    with pytest.raises(CertificateRevokedError):
        w.ca.anchor.validate(dev.credentials.certificate, now=w.clock())
    # its data can no longer be accessed
    with pytest.raises(AccessDeniedError):
        w.bolster.access(w.physician.access("bolster-a", dev.pseudonym))


def test_only_admin_or_owner_may_remove(world: World) -> None:
    dev = world.device(owner="patient-7")
    size = world.bolster.ledger.size
    with pytest.raises(RemoveDeniedError) as info:
        world.bolster.remove(world.physician.remove("bolster-a", dev.pseudonym, reason="x"))
    assert world.bolster.ledger.size == size + 1  # the attempt is logged
    assert info.value.transaction is not None
    with pytest.raises(RemoveDeniedError):
        world.bolster.remove(world.other_patient.remove("bolster-a", dev.pseudonym, reason="x"))
    world.bolster.remove(world.patient.remove("bolster-a", dev.pseudonym, reason="my device"))
    assert world.bolster.is_removed(dev.pseudonym)
    hreq = world.patient.history("bolster-a", dev.pseudonym)
    entries = world.patient.open_history(hreq, world.bolster.history(hreq)).entries
    removes = [(e.actor, e.outcome) for e in entries if e.tx_type is TxType.REMOVE]
    assert removes == [
        ("dr-alice", Outcome.DENIED),
        ("patient-9", Outcome.DENIED),
        ("patient-7", Outcome.GRANTED),
    ]


def test_remove_request_is_signed(world: World) -> None:
    dev = world.device()
    req = world.physician.remove("bolster-a", dev.pseudonym, reason="x")
    with pytest.raises(RequestAuthenticationError):
        world.bolster.remove(dataclasses.replace(req, requester="admin-1"))
    assert not world.bolster.is_removed(dev.pseudonym)


def _pair(world: World):  # type: ignore[no-untyped-def]
    a = world.device("iomt://facility-a/hr-1")
    b = world.device("iomt://facility-a/bp-2")
    return a, b


def test_communication_permitted_gives_both_the_same_key(any_world: World) -> None:
    w = any_world
    a, b = _pair(w)
    grant = w.bolster.setup_communication(
        a.communication_request(b.pseudonym, lifetime=60 * SECOND)
    )
    ka, kb = a.accept_pair_key(grant), b.accept_pair_key(grant)
    assert ka.key == kb.key and (ka.peer, kb.peer) == (b.pseudonym, a.pseudonym)
    assert grant.expires_at == w.clock() + 60 * SECOND
    assert grant.key_for_initiator != grant.key_for_peer
    assert w.bolster.pair_key_status(grant.grant_id) is PairKeyStatus.VALID
    # the key works for the devices' own channel
    sym = get_technique("sym-aes")
    aad = AssociatedData(a.pseudonym, b.pseudonym, a.pseudonym, 1)
    assert sym.open(sym.seal(b"hello", ka.key, aad), kb.key, aad) == b"hello"
    w.clock.advance(61 * SECOND)
    assert w.bolster.pair_key_status(grant.grant_id) is PairKeyStatus.EXPIRED
    with pytest.raises(KeyExpiredError):
        a.accept_pair_key(grant)
    assert w.bolster.pair_key_status(b"\x00" * 16) is PairKeyStatus.UNKNOWN


def test_communication_denied_marks_the_key_invalid() -> None:
    w = World()
    a, b = _pair(w)
    grant = w.bolster.setup_communication(
        a.communication_request(b.pseudonym, lifetime=60 * SECOND)
    )
    # the admin withdraws device-to-device access to b: the next setup is denied and the
    # pair's existing key is marked invalid
    w.bolster.set_rule(AccessRule(DEVICE_ROLE, TxType.ACCESS, frozenset({"dev-none"})))
    with pytest.raises(CommunicationDeniedError) as info:
        w.bolster.setup_communication(a.communication_request(b.pseudonym, lifetime=60 * SECOND))
    assert info.value.transaction is not None
    assert info.value.transaction.tx_type is TxType.ACCESS
    assert w.bolster.pair_key_status(grant.grant_id) is PairKeyStatus.INVALID


def test_communication_with_a_removed_device_is_denied(world: World) -> None:
    a, b = _pair(world)
    grant = world.bolster.setup_communication(a.communication_request(b.pseudonym, lifetime=SECOND))
    world.bolster.remove(world.admin.remove("bolster-a", b.pseudonym, reason="lost"))
    assert world.bolster.pair_key_status(grant.grant_id) is PairKeyStatus.INVALID
    with pytest.raises(CommunicationDeniedError, match="removed"):
        world.bolster.setup_communication(a.communication_request(b.pseudonym, lifetime=SECOND))
    with pytest.raises(DeviceRemovedError):
        world.bolster.setup_communication(b.communication_request(a.pseudonym, lifetime=SECOND))


def test_communication_needs_a_policy_rule() -> None:
    w = World(policy=PrivacyHeader(default_policy().facility_id, 1))
    a, b = _pair(w)
    with pytest.raises(CommunicationDeniedError, match="privacy header"):
        w.bolster.setup_communication(a.communication_request(b.pseudonym, lifetime=SECOND))
    with pytest.raises(CommunicationDeniedError, match="itself"):
        w.bolster.setup_communication(a.communication_request(a.pseudonym, lifetime=SECOND))


def test_communication_request_is_authenticated_and_fresh(world: World) -> None:
    a, b = _pair(world)
    req = a.communication_request(b.pseudonym, lifetime=SECOND)
    with pytest.raises(RequestAuthenticationError):
        world.bolster.setup_communication(dataclasses.replace(req, lifetime=10**15))
    world.bolster.setup_communication(req)
    with pytest.raises(ReplayError):
        world.bolster.setup_communication(req)
    c = world.device("iomt://facility-a/spo2-3")
    grant = world.bolster.setup_communication(a.communication_request(b.pseudonym, lifetime=SECOND))
    with pytest.raises(ReceiptMismatchError, match="not for this device"):
        c.accept_pair_key(grant)
