"""The bolster's request checks at their edges: clock skew and key expiry to the
nanosecond, per-requester rate limits, exact refusal messages, and the evidence a logged
denial carries.

Written against mutation testing (docs/testing.md): each check here fails its test when it
is removed, inverted or moved by one."""

from __future__ import annotations

import dataclasses
import re

import pytest
from biomt_world import SECOND, World, default_policy, heart_rate

from iomt.core.biomt import (
    PATIENT_ROLE,
    AccessDeniedError,
    Bolster,
    BolsterConfig,
    CommunicationDeniedError,
    CostMeter,
    DeviceRemovedError,
    KeyExpiredError,
    ObserveDeniedError,
    Outcome,
    PairKeyStatus,
    ProvisioningError,
    RateLimitedError,
    RemoveDeniedError,
    ReplayError,
    RequestAuthenticationError,
    StaleRequestError,
    UnknownDeviceError,
    UnknownRequesterError,
)
from iomt.core.biomt.bodies import (
    AccessBody,
    CommunicationBody,
    ObserveBody,
    RemoveBody,
    decode_body,
)
from iomt.core.biomt.keys import StorageKeys, body_aad
from iomt.core.biomt.messages import Threshold
from iomt.core.biomt.session import (
    SessionAttestation,
    SessionOp,
    attestation_digest,
    session_id,
)
from iomt.crypto.revocation import RevocationKind
from iomt.ledger import AccessRule, MemoryStorage, PrivacyHeader, Transaction, TxType

SKEW = BolsterConfig().max_clock_skew


def raises(kind: type[Exception], message: str):  # type: ignore[no-untyped-def]
    return pytest.raises(kind, match=f"^{re.escape(message)}$")


def _body(world: World, tx: Transaction) -> object:
    keys = StorageKeys(world.identity.storage_secret)
    return decode_body(
        keys.open_body(tx.body, body_aad(tx.tx_type, tx.seq, tx.generator_id, tx.time))
    )


# -- freshness: accepted exactly at the skew, refused one nanosecond beyond ------------------


def test_a_signed_request_as_old_as_the_clock_skew_is_accepted(world: World) -> None:
    dev = world.device()
    ok = world.physician.access("bolster-a", dev.pseudonym)
    late = world.physician.access("bolster-a", dev.pseudonym)
    world.clock.advance(SKEW)
    world.bolster.access(ok)
    world.clock.advance(1)
    with raises(StaleRequestError, "request time outside the accepted clock skew"):
        world.bolster.access(late)


def test_a_communication_request_as_old_as_the_clock_skew_is_accepted(world: World) -> None:
    a = world.device("iomt://facility-a/hr-1")
    b = world.device("iomt://facility-a/bp-2")
    ok = a.communication_request(b.pseudonym, lifetime=60 * SECOND)
    world.clock.advance(SKEW)
    world.bolster.setup_communication(ok)
    late = b.communication_request(a.pseudonym, lifetime=60 * SECOND)
    world.clock.advance(SKEW + 1)
    with raises(StaleRequestError, "request time outside the accepted clock skew"):
        world.bolster.setup_communication(late)


def test_a_session_request_as_old_as_the_clock_skew_is_accepted(world: World) -> None:
    dev = world.device()
    world.connect(world.physician)
    ok = world.physician.session_access("bolster-a", dev.pseudonym)
    late = world.physician.session_access("bolster-a", dev.pseudonym)
    world.clock.advance(SKEW)
    world.bolster.session_request(ok)
    world.clock.advance(1)
    with raises(StaleRequestError, "request time outside the accepted clock skew"):
        world.bolster.session_request(late)


def _enrolment(world: World, uri: str = "iomt://facility-a/hr-1"):  # type: ignore[no-untyped-def]
    return world.new_device(uri).enrol(world.bolster.credentials, owner="patient-7", attributes={})


def test_an_enrolment_as_old_as_the_clock_skew_is_accepted(world: World) -> None:
    enrolment = _enrolment(world)
    world.clock.advance(SKEW)
    world.bolster.provision(world.admin.approve(enrolment))  # submission SKEW old
    approval = world.admin.approve(_enrolment(world, "iomt://facility-a/hr-2"))
    world.clock.advance(SKEW)
    world.bolster.provision(approval)  # approval SKEW old


@pytest.mark.parametrize("stale", ["submission", "approval"])
def test_an_enrolment_with_either_time_stale_is_refused(world: World, stale: str) -> None:
    if stale == "submission":
        enrolment = _enrolment(world)
        world.clock.advance(SKEW + 1)
        request = world.admin.approve(enrolment)
    else:
        request = world.admin.approve(_enrolment(world))
        world.clock.advance(SKEW + 1)
    with raises(StaleRequestError, "enrolment outside the accepted clock skew"):
        world.bolster.provision(request)


# -- keys: a shared or pairwise key is dead at its expiry instant -----------------------------


def test_a_store_at_the_instant_the_shared_key_expires_is_refused(world: World) -> None:
    dev = world.device()
    request = dev.store_request(heart_rate(70, world.clock()))
    world.clock.now = dev.credentials.key_expires
    with raises(KeyExpiredError, f"the shared key of {dev.pseudonym!r} expired"):
        world.bolster.store(request)


def test_a_pair_key_is_expired_at_its_expiry_instant(world: World) -> None:
    a = world.device("iomt://facility-a/hr-1")
    b = world.device("iomt://facility-a/bp-2")
    grant = world.bolster.setup_communication(a.communication_request(b.pseudonym, lifetime=10))
    world.clock.now = grant.expires_at - 1
    assert world.bolster.pair_key_status(grant.grant_id) is PairKeyStatus.VALID
    world.clock.now = grant.expires_at
    assert world.bolster.pair_key_status(grant.grant_id) is PairKeyStatus.EXPIRED


def test_communication_with_a_peer_whose_key_expires_now_is_refused(world: World) -> None:
    a = world.device("iomt://facility-a/hr-1")
    world.clock.advance(SECOND)  # b's key expires a second after a's
    b = world.device("iomt://facility-a/bp-2")
    world.clock.now = b.credentials.key_expires - SECOND
    with pytest.raises(KeyExpiredError):
        world.bolster.setup_communication(a.communication_request(b.pseudonym, lifetime=10))
    # the other way round: a is the peer, and its key expires exactly now
    request = b.communication_request(a.pseudonym, lifetime=10)
    with raises(CommunicationDeniedError, f"the key of {a.pseudonym!r} expired"):
        world.bolster.setup_communication(request)


# -- rate limits are per requester ------------------------------------------------------------


def _limited(**kw: float) -> World:
    return World(config=BolsterConfig(max_block_transactions=8, max_block_age=None, **kw))


def test_the_store_rate_limit_is_per_device() -> None:
    w = _limited(store_rate=1e-9, store_burst=1)
    a, b = w.device("iomt://facility-a/hr-1"), w.device("iomt://facility-a/bp-2")
    w.store(a, 70)
    with pytest.raises(RateLimitedError, match=f"^{re.escape(repr(a.pseudonym))} exceeds"):
        w.store(a, 71)
    w.store(b, 70)  # another device has its own budget


def test_the_request_rate_limit_is_per_user() -> None:
    w = _limited(request_rate=1e-9, request_burst=1)
    dev = w.device()
    w.bolster.access(w.physician.access("bolster-a", dev.pseudonym))
    with pytest.raises(RateLimitedError):
        w.bolster.access(w.physician.access("bolster-a", dev.pseudonym))
    w.bolster.access(w.patient.access("bolster-a", dev.pseudonym))


def test_the_session_request_rate_limit_is_per_user() -> None:
    w = _limited(request_rate=1e-9, request_burst=1)
    dev = w.device()
    w.connect(w.physician)
    w.connect(w.patient)
    w.bolster.session_request(w.physician.session_access("bolster-a", dev.pseudonym))
    with pytest.raises(RateLimitedError):
        w.bolster.session_request(w.physician.session_access("bolster-a", dev.pseudonym))
    w.bolster.session_request(w.patient.session_access("bolster-a", dev.pseudonym))


def test_the_communication_rate_limit_is_per_device() -> None:
    w = _limited(request_rate=1e-9, request_burst=1)
    a, b = w.device("iomt://facility-a/hr-1"), w.device("iomt://facility-a/bp-2")
    w.bolster.setup_communication(a.communication_request(b.pseudonym, lifetime=10))
    with pytest.raises(RateLimitedError):
        w.bolster.setup_communication(a.communication_request(b.pseudonym, lifetime=10))
    w.bolster.setup_communication(b.communication_request(a.pseudonym, lifetime=10))


# -- refusals say exactly why ---------------------------------------------------------------


def test_store_refusals_are_named(world: World) -> None:
    dev = world.device()
    request = dev.store_request(heart_rate(70, world.clock()))
    with raises(RequestAuthenticationError, "request is for bolster 'bolster-b'"):
        world.bolster.store(dataclasses.replace(request, bolster_id="bolster-b"))
    with raises(UnknownDeviceError, "no device 'dev-x' at 'bolster-a'"):
        world.bolster.store(dataclasses.replace(request, device="dev-x"))
    bad = dataclasses.replace(request, ciphertext=bytes(len(request.ciphertext)))
    with raises(RequestAuthenticationError, f"Store of {dev.pseudonym!r} does not authenticate"):
        world.bolster.store(bad)
    world.bolster.store(request)
    with raises(ReplayError, f"Store counter 1 of {dev.pseudonym!r} is not above 1"):
        world.bolster.store(request)


def test_requests_for_another_bolster_are_named(world: World) -> None:
    dev = world.device()
    req = world.physician.access("bolster-b", dev.pseudonym)
    with raises(RequestAuthenticationError, "request is for bolster 'bolster-b'"):
        world.bolster.access(req)
    comm = world.device("iomt://facility-a/bp-2").communication_request(dev.pseudonym, lifetime=1)
    with raises(RequestAuthenticationError, "request is for bolster 'bolster-b'"):
        world.bolster.setup_communication(dataclasses.replace(comm, bolster_id="bolster-b"))
    forged = dataclasses.replace(comm, lifetime=2)
    with raises(RequestAuthenticationError, f"request of {comm.initiator!r} does not authenticate"):
        world.bolster.setup_communication(forged)


def test_provisioning_refusals_are_named(world: World) -> None:
    request = world.admin.approve(_enrolment(world))
    with raises(ProvisioningError, "request is for bolster 'bolster-b'"):
        world.bolster.provision(dataclasses.replace(request, bolster_id="bolster-b"))
    sealed = bytearray(request.sealed_submission)
    sealed[-1] ^= 1
    with raises(ProvisioningError, "enrolment is not sealed to this bolster"):
        world.bolster.provision(dataclasses.replace(request, sealed_submission=bytes(sealed)))
    forged = dataclasses.replace(request, admin_signature=bytes(64))
    with pytest.raises(ProvisioningError, match=r"^enrolment does not verify: \S"):
        world.bolster.provision(forged)
    world.bolster.provision(request)


def test_an_enrolment_for_another_facility_is_refused() -> None:
    w = World()
    other = World(seed=2)
    enrolment = other.new_device().enrol(
        other.bolster.credentials, owner="patient-7", attributes={}
    )
    with raises(ProvisioningError, "enrolment is not sealed to this bolster"):
        w.bolster.provision(other.admin.approve(enrolment))


def test_a_pseudonym_collision_is_refused(world: World) -> None:
    dev = world.device()
    known = world.bolster._state.devices[dev.pseudonym]
    request = world.admin.approve(_enrolment(world, "iomt://facility-a/hr-2"))
    world.bolster._state.devices = _Everything(known)  # every pseudonym is taken
    with raises(ProvisioningError, "pseudonym collision; enrol again"):
        world.bolster.provision(request)


class _Everything(dict):  # type: ignore[type-arg]
    def __init__(self, value: object) -> None:
        super().__init__()
        self._value = value

    def __contains__(self, key: object) -> bool:
        return True


def test_a_removed_device_is_named(world: World) -> None:
    dev = world.device()
    world.bolster.remove(world.admin.remove("bolster-a", dev.pseudonym, reason="broken"))
    with raises(DeviceRemovedError, f"device {dev.pseudonym!r} was removed; its key is revoked"):
        world.bolster.store(dev.store_request(heart_rate(70, world.clock())))
    with raises(DeviceRemovedError, f"device {dev.pseudonym!r} was already removed"):
        world.bolster.remove(world.admin.remove("bolster-a", dev.pseudonym, reason="again"))


def test_history_of_someone_else_is_named(world: World) -> None:
    dev = world.device(owner="patient-7")
    req = world.other_patient.history("bolster-a", dev.pseudonym)
    with raises(AccessDeniedError, f"'patient-9' may not read the history of {dev.pseudonym!r}"):
        world.bolster.history(req)


def test_an_attestation_for_another_bolster_or_unsigned_is_named(world: World) -> None:
    dev = world.device()
    world.connect(world.physician)
    doctor = world.physician
    req = doctor.session_access("bolster-a", dev.pseudonym)
    doctor.open_session_access(req, world.bolster.session_request(req))
    seq = world.bolster.ledger.size - 1
    session = doctor.channels.session("bolster-a")
    assert session is not None
    sid = session_id(session, initiator=True)
    digest = attestation_digest("bolster-a", "dr-alice", sid, [(seq, bytes(32))])

    def send(att: SessionAttestation) -> None:
        r = doctor._session_request("bolster-a", SessionOp.ATTEST, att.to_bytes(), att)
        try:
            world.bolster.session_request(r)
        finally:
            doctor.forget(r)

    foreign = SessionAttestation("bolster-b", "dr-alice", sid, (seq,), digest, 1)
    foreign = dataclasses.replace(foreign, signature=doctor._signer.sign(foreign.signed_bytes()))
    with raises(RequestAuthenticationError, "attestation is for another bolster or user"):
        send(foreign)
    unsigned = SessionAttestation("bolster-a", "dr-alice", sid, (seq,), digest, 1, bytes(64))
    with raises(RequestAuthenticationError, "attestation signature of 'dr-alice' does not verify"):
        send(unsigned)


# -- denials are logged with their evidence ----------------------------------------------------


def test_a_denied_access_logs_nothing_served_and_the_reason(world: World) -> None:
    dev = world.device()
    req = world.insurer.access("bolster-a", dev.pseudonym)
    with pytest.raises(AccessDeniedError) as info:
        world.bolster.access(req)
    tx = info.value.transaction
    assert tx is not None and info.value.receipt is not None
    assert tx.signature == req.signature
    body = _body(world, tx)
    assert isinstance(body, AccessBody)
    assert (body.outcome, body.records, body.redirected) == (Outcome.DENIED, 0, 0)
    assert body.detail == str(info.value) and "insurer" in body.detail


def test_a_denied_observe_logs_no_subscription_and_the_reason(world: World) -> None:
    dev = world.device()
    req = world.insurer.observe("bolster-a", [dev.pseudonym], duration=SECOND, interval=5)
    with pytest.raises(ObserveDeniedError) as info:
        world.bolster.observe(req)
    tx, receipt = info.value.transaction, info.value.receipt
    assert tx is not None and receipt is not None and receipt.seq == tx.seq
    assert tx.signature == req.signature
    body = _body(world, tx)
    assert isinstance(body, ObserveBody)
    assert (body.outcome, body.expires_at, body.subscription_id, body.subscription_key) == (
        Outcome.DENIED,
        0,
        b"",
        b"",
    )
    assert body.interval == 5 and body.detail == str(info.value) and "insurer" in body.detail
    assert world.bolster.subscriptions() == []


def test_a_denied_removal_revokes_nothing_and_is_logged(world: World) -> None:
    dev = world.device()
    req = world.physician.remove("bolster-a", dev.pseudonym, reason="x")
    with raises(
        RemoveDeniedError,
        f"'dr-alice' may not remove {dev.pseudonym!r}: only an admin or its owner",
    ) as info:
        world.bolster.remove(req)
    tx, receipt = info.value.transaction, info.value.receipt
    assert tx is not None and receipt is not None and tx.signature == req.signature
    body = _body(world, tx)
    assert isinstance(body, RemoveBody)
    assert (body.outcome, body.certificate_serial, body.key_id) == (Outcome.DENIED, "", b"")


def _unauthorized_pair(world: World):  # type: ignore[no-untyped-def]
    a = world.device("iomt://facility-a/hr-1")
    b = world.device("iomt://facility-a/bp-2")
    return a, b


@pytest.mark.parametrize("who", ["initiator", "peer"])
def test_communication_needs_both_devices_authorized(world: World, who: str) -> None:
    a, b = _unauthorized_pair(world)
    grant = world.bolster.setup_communication(a.communication_request(b.pseudonym, lifetime=60))
    dropped = a if who == "initiator" else b
    ledger = world.bolster.ledger
    ledger.seal_block(ledger.privacy_header.without_device(dropped.pseudonym))
    request = a.communication_request(b.pseudonym, lifetime=60)
    with raises(
        CommunicationDeniedError, "both devices must be authorized in the privacy header"
    ) as info:
        world.bolster.setup_communication(request)
    tx, receipt = info.value.transaction, info.value.receipt
    assert tx is not None and receipt is not None and tx.signature == request.mac
    body = _body(world, tx)
    assert isinstance(body, CommunicationBody)
    assert (body.outcome, body.grant_id, body.expires_at) == (Outcome.DENIED, b"", 0)
    assert body.invalidated == (grant.grant_id,)
    assert world.bolster.pair_key_status(grant.grant_id) is PairKeyStatus.INVALID


def test_a_device_may_not_set_up_communication_with_itself(world: World) -> None:
    a = world.device()
    with raises(CommunicationDeniedError, "a device does not set up communication with itself"):
        world.bolster.setup_communication(a.communication_request(a.pseudonym, lifetime=60))


# -- the owner's rule still sets the floor ------------------------------------------------------


def test_an_owner_observing_is_held_to_the_rule_for_their_role() -> None:
    policy = PrivacyHeader(
        "facility-a",
        1,
        rules=(
            *default_policy().rules,
            AccessRule(PATIENT_ROLE, TxType.OBSERVE, all_devices=True, observe_interval=7 * SECOND),
        ),
    )
    w = World(policy=policy)
    dev = w.device(owner="patient-7")
    sub = w.bolster.observe(
        w.patient.observe("bolster-a", [dev.pseudonym], duration=60 * SECOND, interval=SECOND)
    )
    assert sub.interval == 7 * SECOND


# -- a user whose key is revoked loses the session at once -------------------------------------


def test_a_user_whose_key_is_revoked_loses_the_session(world: World) -> None:
    dev = world.device()
    world.connect(world.physician)
    user = world.users.get("dr-alice")
    world.ca.anchor.revocations.revoke(
        RevocationKind.KEY, user.fingerprint, reason="lost", at=world.clock() / 1e9
    )
    with raises(UnknownRequesterError, "'dr-alice': certificate of 'dr-alice' is revoked"):
        world.bolster.session_request(world.physician.session_access("bolster-a", dev.pseudonym))
    assert world.bolster._sessions.table.session("dr-alice") is None


def test_a_metered_bolster_refuses_like_any_other() -> None:
    w = World(meter=CostMeter())
    a = w.device("iomt://facility-a/hr-1")
    with pytest.raises(ObserveDeniedError):
        w.bolster.observe(w.insurer.observe("bolster-a", [a.pseudonym], duration=SECOND))
    with pytest.raises(CommunicationDeniedError):
        w.bolster.setup_communication(a.communication_request(a.pseudonym, lifetime=60))


def test_a_denied_observe_logs_the_threshold_it_asked_for(world: World) -> None:
    dev = world.device()
    band = Threshold("bpm", 40.0, 120.0)
    req = world.insurer.observe("bolster-a", [dev.pseudonym], duration=SECOND, threshold=band)
    with pytest.raises(ObserveDeniedError) as info:
        world.bolster.observe(req)
    assert info.value.transaction is not None
    body = _body(world, info.value.transaction)
    assert isinstance(body, ObserveBody) and body.threshold == band


def test_an_enrolment_sealed_to_this_bolster_for_another_facility_is_refused(
    world: World,
) -> None:
    request = world.admin.approve(_enrolment(world))
    elsewhere = Bolster.open(
        dataclasses.replace(world.identity, facility_id="facility-b"),
        MemoryStorage(),
        ca=world.ca,
        users=world.users,
        clock=world.clock,
        rng=world.rng,
    )
    with raises(ProvisioningError, "enrolment is for another bolster or facility"):
        elsewhere.provision(request)


def test_session_denials_await_attestation_and_attestations_do_not(world: World) -> None:
    dev = world.device()
    world.connect(world.insurer)
    session = world.insurer.channels.session("bolster-a")
    assert session is not None
    sid = session_id(session, initiator=True)
    req = world.insurer.session_access("bolster-a", dev.pseudonym)
    with pytest.raises(AccessDeniedError):
        world.bolster.session_request(req)
    assert world.bolster.unattested(sid) == 1  # the logged denial awaits the user's signature
    hist = world.insurer.session_history("bolster-a", dev.pseudonym)
    with pytest.raises(AccessDeniedError):
        world.bolster.session_request(hist)
    assert world.bolster.unattested(sid) == 1  # history is not logged, nothing to attest
    world.connect(world.physician)
    doctor = world.physician
    access = doctor.session_access("bolster-a", dev.pseudonym)
    doctor.open_session_access(access, world.bolster.session_request(access))
    mine = doctor.channels.session("bolster-a")
    assert mine is not None
    doctor_sid = session_id(mine, initiator=True)
    assert world.bolster.unattested(doctor_sid) == 1
    attestation = doctor.attest("bolster-a")
    assert attestation is not None
    doctor.check_session_attested(attestation, world.bolster.session_request(attestation))
    assert world.bolster.unattested(doctor_sid) == 0  # the attestation is not itself pending
