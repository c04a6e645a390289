"""User sessions: one handshake, then Access / Observe / history as session records.

What must hold: the session authenticates every request and answer (forged, replayed,
re-labelled or swapped records are refused and nothing is logged); an expired or forgotten
session forces a new handshake; denials are still logged with evidence; the ledger records
exactly what authenticated each request, and the user's signed attestation makes it
transferable; nothing is attested before the receipts' tree heads are verified.
"""

from __future__ import annotations

import dataclasses

import pytest
from biomt_world import SECOND, World, heart_rate

from iomt.core.biomt import (
    AccessDeniedError,
    AttestationMismatchError,
    AttestationRequiredError,
    BiomtDecodeError,
    BiomtDevice,
    BiomtStateError,
    BolsterConfig,
    Evidence,
    ObserveDeniedError,
    Outcome,
    ReceiptMismatchError,
    ReplayError,
    RequestAuthenticationError,
    Requester,
    SessionAttestation,
    SessionAuthenticated,
    SessionOp,
    SessionResponse,
    SessionResult,
    StaleRequestError,
    UnknownRequesterError,
    UnknownSessionError,
)
from iomt.core.biomt.bodies import AccessBody, AttestationBody, ObserveBody, decode_body
from iomt.core.biomt.keys import LedgerKeyVerifier, StorageKeys, body_aad
from iomt.core.biomt.session import attestation_digest, session_id
from iomt.core.biomt.user_sessions import expect_operation, is_session_request
from iomt.errors import AuthenticationError, LedgerVerificationError, RemoteProtocolError
from iomt.ledger import (
    CheckpointSignatureError,
    TxType,
    root_from_inclusion_proof,
    verify_receipt,
)


def _body(world: World, seq: int) -> object:
    tx = world.bolster.ledger.get_transaction(seq)
    keys = StorageKeys(world.identity.storage_secret)
    return decode_body(
        keys.open_body(tx.body, body_aad(tx.tx_type, tx.seq, tx.generator_id, tx.time))
    )


def _ready(world: World) -> BiomtDevice:
    dev = world.device()
    for bpm in (70, 71, 72):
        world.clock.advance(SECOND)
        world.store(dev, bpm)
    world.connect(world.physician)
    return dev


def _bolster_session(world: World, user: str):  # type: ignore[no-untyped-def]
    return world.bolster._sessions.table.session(user)


def test_access_observe_history_over_a_session(any_world: World) -> None:
    w = any_world
    dev = _ready(w)
    doctor = w.physician
    req = doctor.session_access("bolster-a", dev.pseudonym)
    payload = doctor.open_session_access(req, w.bolster.session_request(req))
    assert [r.measurement.value("bpm") for r in payload.records] == [70, 71, 72]
    # the ledger records the session record and its tag, never a signature
    tx = w.bolster.ledger.get_transaction(w.bolster.ledger.size - 1)
    assert (tx.tx_type, tx.signature) == (TxType.ACCESS, req.auth_tag)
    body = _body(w, tx.seq)
    assert isinstance(body, AccessBody) and body.outcome is Outcome.GRANTED
    recorded = SessionAuthenticated.from_bytes(body.request)
    assert (recorded.requester, recorded.operation, recorded.number) == (
        "dr-alice",
        SessionOp.ACCESS,
        req.number,
    )
    session = doctor.channels.session("bolster-a")
    assert session is not None
    assert recorded.session_id == session_id(session, initiator=True)
    # Observe: the subscription key comes inside the session answer
    oreq = doctor.session_observe("bolster-a", [dev.pseudonym], duration=10 * SECOND)
    observer = doctor.open_session_subscription(oreq, w.bolster.session_request(oreq))
    w.clock.advance(3 * SECOND)
    updates = w.bolster.store(dev.store_request(heart_rate(90, w.clock()))).updates
    assert [observer.open(u).value("bpm") for u in updates] == [90]
    # the patient's history, on the patient's own session
    w.connect(w.patient)
    hreq = w.patient.session_history("bolster-a", dev.pseudonym)
    entries = w.patient.open_session_history(hreq, w.bolster.session_request(hreq)).entries
    kinds = {(e.tx_type, e.evidence) for e in entries}
    assert {
        (TxType.ORIGIN, Evidence.SIGNATURE),
        (TxType.STORE, Evidence.DEVICE_KEY),
        (TxType.ACCESS, Evidence.SESSION),
        (TxType.OBSERVE, Evidence.SESSION),
    } == kinds
    # each receipt's structure was checked on arrival; the head signatures settle in a batch
    assert doctor.unsettled_receipts == 2
    assert doctor.settle_receipts() == 2
    assert doctor.unsettled_receipts == 0


def test_signed_and_session_paths_live_side_by_side(world: World) -> None:
    dev = _ready(world)
    doctor = world.physician
    signed = doctor.access("bolster-a", dev.pseudonym)
    a = doctor.open_access(signed, world.bolster.access(signed), bolster=world.bolster.verifier)
    req = doctor.session_access("bolster-a", dev.pseudonym)
    b = doctor.open_session_access(req, world.bolster.session_request(req))
    assert a == b
    hreq = world.patient.history("bolster-a", dev.pseudonym)
    evidence = [
        e.evidence
        for e in world.patient.open_history(hreq, world.bolster.history(hreq)).entries
        if e.tx_type is TxType.ACCESS
    ]
    assert evidence == [Evidence.SIGNATURE, Evidence.SESSION]


def test_a_replayed_session_request_is_refused_and_not_logged(world: World) -> None:
    dev = _ready(world)
    req = world.physician.session_access("bolster-a", dev.pseudonym)
    world.bolster.session_request(req)
    size = world.bolster.ledger.size
    with pytest.raises(ReplayError, match="already received"):  # answered without a proof
        world.bolster.session_request(req)
    # older records fall out of the window: refused too
    for _ in range(70):
        r = world.physician.session_access("bolster-a", dev.pseudonym)
        world.physician.open_session_access(r, world.bolster.session_request(r))
    size = world.bolster.ledger.size
    with pytest.raises(ReplayError):
        world.bolster.session_request(req)
    assert world.bolster.ledger.size == size


def test_a_request_on_another_users_session_is_refused(world: World) -> None:
    dev = _ready(world)
    world.connect(world.insurer)
    req = world.physician.session_access("bolster-a", dev.pseudonym)
    size = world.bolster.ledger.size
    # the insurer relabels the physician's record as its own (or the other way round)
    with pytest.raises(RequestAuthenticationError, match="another user"):
        world.bolster.session_request(dataclasses.replace(req, requester="insurer-x"))
    # a record re-wrapped in another header fails its associated data
    theirs = world.insurer.session_access("bolster-a", dev.pseudonym)
    with pytest.raises(RequestAuthenticationError, match="another user"):
        world.bolster.session_request(dataclasses.replace(theirs, requester="dr-alice"))
    for changed in (
        dataclasses.replace(req, operation=SessionOp.OBSERVE),
        dataclasses.replace(req, time=req.time + 1),
        dataclasses.replace(req, record=req.record[:-1] + bytes([req.record[-1] ^ 1])),
    ):
        with pytest.raises(RequestAuthenticationError):
            world.bolster.session_request(changed)
    assert world.bolster.ledger.size == size
    # the untouched request still goes through (nothing above consumed its number)
    world.physician.open_session_access(req, world.bolster.session_request(req))


def test_header_checks_before_the_session(world: World) -> None:
    dev = _ready(world)
    req = world.physician.session_access("bolster-a", dev.pseudonym)
    with pytest.raises(RequestAuthenticationError, match="for bolster"):
        world.bolster.session_request(dataclasses.replace(req, bolster_id="bolster-b"))
    world.clock.advance(31 * SECOND)
    with pytest.raises(StaleRequestError):
        world.bolster.session_request(req)


def test_tampered_swapped_or_replayed_answers_are_refused(world: World) -> None:
    dev = _ready(world)
    doctor = world.physician
    one = doctor.session_access("bolster-a", dev.pseudonym)
    two = doctor.session_access("bolster-a", dev.pseudonym, limit=1)
    r1, r2 = world.bolster.session_request(one), world.bolster.session_request(two)
    flipped = dataclasses.replace(
        r1, record=r1.record[:40] + bytes([r1.record[40] ^ 1]) + r1.record[41:]
    )
    with pytest.raises(RequestAuthenticationError):
        doctor.open_session_access(one, flipped)
    # the answer to the other request, as is or relabelled
    with pytest.raises(ReceiptMismatchError):
        doctor.open_session_access(one, r2)
    with pytest.raises(RequestAuthenticationError):
        doctor.open_session_access(one, dataclasses.replace(r2, request_tag=one.auth_tag))
    # the genuine answers still open, in any order; an answer is accepted once
    assert len(doctor.open_session_access(two, r2).records) == 1
    assert len(doctor.open_session_access(one, r1).records) == 3
    with pytest.raises(ReplayError):
        doctor.open_session_access(one, r1)


def test_an_answer_must_carry_our_logged_transaction(world: World) -> None:
    """A bolster (or anyone with its session) that answers with another transaction, or a
    receipt for another leaf, is caught on arrival -- without the head signature."""
    dev = _ready(world)
    doctor = world.physician
    req = doctor.session_access("bolster-a", dev.pseudonym)
    resp = world.bolster.session_request(req)
    session = _bolster_session(world, "dr-alice")
    previous = world.bolster.ledger.get_transaction(0)

    def reanswer(result: SessionResult) -> SessionResponse:
        record = session.protect(result.to_bytes(), resp.signed_bytes())
        return dataclasses.replace(resp, record=record)

    plain = SessionResult.from_bytes(
        # the bolster's own view of what it sent: re-open it with the user's keys
        doctor.channels.session("bolster-a").unprotect(resp.record, resp.signed_bytes())  # type: ignore[union-attr]
    )
    with pytest.raises(ReceiptMismatchError):
        doctor.open_session_access(req, reanswer(dataclasses.replace(plain, transaction=previous)))
    assert plain.receipt is not None
    bad_root = dataclasses.replace(plain.receipt, root=bytes(32))
    with pytest.raises(LedgerVerificationError):
        doctor.open_session_access(req, reanswer(dataclasses.replace(plain, receipt=bad_root)))


def test_session_expiry_forces_a_new_handshake(world: World) -> None:
    w = World(
        config=BolsterConfig(
            max_block_transactions=8, max_block_age=None, session_lifetime=60 * SECOND
        )
    )
    try:
        dev = _ready(w)
        doctor = w.physician
        # the user's own session lives as long as the bolster's, by default an hour: make
        # the bolster's the shorter, so the bolster is the one that refuses
        req = doctor.session_access("bolster-a", dev.pseudonym)
        w.clock.advance(61 * SECOND)
        fresh = dataclasses.replace(req, time=w.clock())
        with pytest.raises(RequestAuthenticationError):
            w.bolster.session_request(fresh)
        stale_but_signed = doctor.session_access("bolster-a", dev.pseudonym)
        with pytest.raises(UnknownSessionError):
            w.bolster.session_request(stale_but_signed)
        doctor.forget(stale_but_signed)
        doctor.channels.drop("bolster-a")
        with pytest.raises(BiomtStateError):
            doctor.session_access("bolster-a", dev.pseudonym)
        w.connect(doctor)
        again = doctor.session_access("bolster-a", dev.pseudonym)
        assert len(doctor.open_session_access(again, w.bolster.session_request(again)).records) == 3
    finally:
        w.close()


def test_the_users_session_expires_on_its_side_too(world: World) -> None:
    dev = _ready(world)
    world.clock.advance(3601 * SECOND)  # the default SessionPolicy lifetime on the user's side
    with pytest.raises(BiomtStateError):
        world.physician.session_access("bolster-a", dev.pseudonym)


def test_a_restarted_bolster_knows_no_sessions(tmp_path) -> None:  # type: ignore[no-untyped-def]
    w = World(db=tmp_path / "b.db")
    try:
        dev = _ready(w)
        req = w.physician.session_access("bolster-a", dev.pseudonym)
        w.physician.open_session_access(req, w.bolster.session_request(req))
        before = w.bolster.ledger.size - 1
        w.restart()
        req = w.physician.session_access("bolster-a", dev.pseudonym)
        with pytest.raises(UnknownSessionError):
            w.bolster.session_request(req)
        w.physician.forget(req)
        w.physician.channels.drop("bolster-a")
        w.connect(w.physician)
        req = w.physician.session_access("bolster-a", dev.pseudonym)
        assert (
            len(w.physician.open_session_access(req, w.bolster.session_request(req)).records) == 3
        )
        # the new session's requests are attested first; the old session's the bolster no
        # longer knows: refused, and dropped (they stay session-only evidence)
        doctor = w.physician
        areq = doctor.attest("bolster-a")
        assert areq is not None
        assert doctor.check_session_attested(areq, w.bolster.session_request(areq)) == 1
        old = doctor.attest("bolster-a")
        assert old is not None
        with pytest.raises(AttestationMismatchError):
            w.bolster.session_request(old)
        doctor.forget(old, requeue=False)
        assert doctor.unattested("bolster-a") == 0 and doctor.attest("bolster-a") is None
        hreq = w.patient.history("bolster-a", dev.pseudonym)
        evidence = {
            e.seq: e.evidence for e in w.patient.open_history(hreq, w.bolster.history(hreq)).entries
        }
        assert evidence[before] is Evidence.SESSION
        assert evidence[w.bolster.ledger.size - 2] is Evidence.ATTESTED
    finally:
        w.close()


def test_only_registered_users_with_their_certificate_get_a_session(world: World) -> None:
    # a stranger with a CA certificate that is not in the user directory
    stranger = world.user("mallory", "physician")
    world.users.remove("mallory")
    m2 = world.bolster.session_handshake("mallory", stranger.channels.start("bolster-a"))
    m3 = stranger.channels.finish("bolster-a", m2)
    with pytest.raises(AuthenticationError, match="not a registered user"):
        world.bolster.session_handshake("mallory", m3)
    assert _bolster_session(world, "mallory") is None
    # a user completing the handshake under another user's name
    m2 = world.bolster.session_handshake("dr-alice", world.insurer.channels.start("bolster-a"))
    m3 = world.insurer.channels.finish("bolster-a", m2)
    with pytest.raises((AuthenticationError, RemoteProtocolError)):
        world.bolster.session_handshake("dr-alice", m3)


def test_a_revoked_user_loses_the_session(world: World) -> None:
    dev = _ready(world)
    world.users.revoke("dr-alice", at=world.clock())
    req = world.physician.session_access("bolster-a", dev.pseudonym)
    size = world.bolster.ledger.size
    with pytest.raises(UnknownRequesterError):
        world.bolster.session_request(req)
    assert world.bolster.ledger.size == size


def test_a_denial_on_a_session_is_logged_with_evidence(world: World) -> None:
    dev = _ready(world)
    world.connect(world.insurer)
    req = world.insurer.session_access("bolster-a", dev.pseudonym)
    with pytest.raises(AccessDeniedError) as info:
        world.bolster.session_request(req)
    tx, receipt = info.value.transaction, info.value.receipt
    assert tx is not None and receipt is not None
    assert (tx.tx_type, tx.signature) == (TxType.ACCESS, req.auth_tag)
    body = _body(world, tx.seq)
    assert isinstance(body, AccessBody) and body.outcome is Outcome.DENIED
    assert SessionAuthenticated.from_bytes(body.request).requester == "insurer-x"
    # the user checks it in full (it did not come on the session) and keeps it to attest
    world.insurer.session_denied(req, tx, receipt)
    assert world.insurer.unattested("bolster-a") == 1
    oreq = world.insurer.session_observe("bolster-a", [dev.pseudonym], duration=SECOND)
    with pytest.raises(ObserveDeniedError) as oinfo:
        world.bolster.session_request(oreq)
    assert oinfo.value.transaction is not None
    assert isinstance(_body(world, oinfo.value.transaction.seq), ObserveBody)
    # a denial for someone else's request is not accepted as ours
    other = world.insurer.session_access("bolster-a", dev.pseudonym)
    with pytest.raises(ReceiptMismatchError):
        world.insurer.session_denied(other, tx, receipt)
    hreq = world.patient.history("bolster-a", dev.pseudonym)
    denied = [
        e
        for e in world.patient.open_history(hreq, world.bolster.history(hreq)).entries
        if e.outcome is Outcome.DENIED
    ]
    assert [(e.actor, e.evidence) for e in denied] == [
        ("insurer-x", Evidence.SESSION),
        ("insurer-x", Evidence.SESSION),
    ]


def test_history_of_someone_else_is_refused_on_a_session(world: World) -> None:
    dev = _ready(world)
    req = world.physician.session_history("bolster-a", dev.pseudonym)
    size = world.bolster.ledger.size
    with pytest.raises(AccessDeniedError) as info:
        world.bolster.session_request(req)
    assert info.value.transaction is None
    assert world.bolster.ledger.size == size


def test_attestation_makes_session_entries_transferable(world: World) -> None:
    dev = _ready(world)
    doctor = world.physician
    seqs = []
    for _ in range(3):
        req = doctor.session_access("bolster-a", dev.pseudonym)
        doctor.open_session_access(req, world.bolster.session_request(req))
        seqs.append(world.bolster.ledger.size - 1)
    assert doctor.unattested("bolster-a") == 3 and doctor.unsettled_receipts == 3
    areq = doctor.attest("bolster-a")
    assert areq is not None
    # its answer proves all three in the attestation's signed head: settled, one signature
    assert doctor.check_session_attested(areq, world.bolster.session_request(areq)) == 3
    assert doctor.unattested("bolster-a") == 0
    assert (doctor.unsettled_receipts, doctor.receipts_settled) == (0, 3)
    # an auditor with the body key re-verifies it without trusting the bolster: the user's
    # signature over the chain of the recorded requests
    tx = world.bolster.ledger.get_transaction(world.bolster.ledger.size - 1)
    body = _body(world, tx.seq)
    assert isinstance(body, AttestationBody) and list(body.seqs) == seqs
    doctor_key = world.users.get("dr-alice").verifier
    doctor_key.verify(body.request, tx.signature)
    chain = []
    for s in body.seqs:
        b = _body(world, s)
        assert isinstance(b, AccessBody)
        chain.append((s, SessionAuthenticated.from_bytes(b.request).digest()))
    assert attestation_digest("bolster-a", "dr-alice", body.session_id, chain) == body.digest
    hreq = world.patient.history("bolster-a", dev.pseudonym)
    accesses = [
        e
        for e in world.patient.open_history(hreq, world.bolster.history(hreq)).entries
        if e.tx_type is TxType.ACCESS
    ]
    assert {e.evidence for e in accesses} == {Evidence.ATTESTED}
    assert all(f"transaction {tx.seq}" in e.detail for e in accesses)


def test_a_wrong_or_foreign_attestation_is_refused(world: World) -> None:
    dev = _ready(world)
    doctor = world.physician
    req = doctor.session_access("bolster-a", dev.pseudonym)
    doctor.open_session_access(req, world.bolster.session_request(req))
    seq = world.bolster.ledger.size - 1
    session = doctor.channels.session("bolster-a")
    assert session is not None
    sid = session_id(session, initiator=True)
    signer = doctor._signer

    def send(att: SessionAttestation) -> None:
        r = doctor._session_request("bolster-a", SessionOp.ATTEST, att.to_bytes(), att)
        try:
            world.bolster.session_request(r)
        finally:
            doctor.forget(r)

    def signed(att: SessionAttestation) -> SessionAttestation:
        return dataclasses.replace(att, signature=signer.sign(att.signed_bytes()))

    good_digest = attestation_digest("bolster-a", "dr-alice", sid, [(seq, bytes(32))])
    size = world.bolster.ledger.size
    # a digest over something the bolster did not log
    with pytest.raises(AttestationMismatchError):
        send(signed(SessionAttestation("bolster-a", "dr-alice", sid, (seq,), good_digest, 1)))
    # a transaction that is not an unattested request of this session
    with pytest.raises(AttestationMismatchError):
        send(signed(SessionAttestation("bolster-a", "dr-alice", sid, (0,), good_digest, 1)))
    # not signed by the user
    with pytest.raises(RequestAuthenticationError):
        send(SessionAttestation("bolster-a", "dr-alice", sid, (seq,), good_digest, 1, bytes(64)))
    # another user's session
    world.connect(world.insurer)
    other = world.insurer.channels.session("bolster-a")
    assert other is not None
    with pytest.raises(AttestationMismatchError):
        send(
            signed(
                SessionAttestation(
                    "bolster-a",
                    "dr-alice",
                    session_id(other, initiator=True),
                    (seq,),
                    good_digest,
                    1,
                )
            )
        )
    assert world.bolster.ledger.size == size
    # the genuine one still goes through
    areq = doctor.attest("bolster-a")
    assert areq is not None
    doctor.check_session_attested(areq, world.bolster.session_request(areq))


def test_unattested_requests_are_bounded(world: World) -> None:
    w = World(config=BolsterConfig(max_block_transactions=64, max_block_age=None, max_unattested=4))
    try:
        dev = _ready(w)
        doctor = w.physician
        for _ in range(4):
            r = doctor.session_access("bolster-a", dev.pseudonym)
            doctor.open_session_access(r, w.bolster.session_request(r))
        size = w.bolster.ledger.size
        blocked = doctor.session_access("bolster-a", dev.pseudonym)
        with pytest.raises(AttestationRequiredError):
            w.bolster.session_request(blocked)
        doctor.forget(blocked)
        assert w.bolster.ledger.size == size
        areq = doctor.attest("bolster-a")
        assert areq is not None
        doctor.check_session_attested(areq, w.bolster.session_request(areq))
        r = doctor.session_access("bolster-a", dev.pseudonym)
        doctor.open_session_access(r, w.bolster.session_request(r))
    finally:
        w.close()


def test_a_lost_attestation_answer_puts_its_entries_back(world: World) -> None:
    dev = _ready(world)
    doctor = world.physician
    r = doctor.session_access("bolster-a", dev.pseudonym)
    doctor.open_session_access(r, world.bolster.session_request(r))
    areq = doctor.attest("bolster-a")
    assert areq is not None and doctor.unattested("bolster-a") == 0
    doctor.forget(areq)  # e.g. the call timed out before the bolster got it
    assert doctor.unattested("bolster-a") == 1
    again = doctor.attest("bolster-a")
    assert again is not None
    doctor.check_session_attested(again, world.bolster.session_request(again))


def _opened(world: World, resp: SessionResponse) -> SessionResult:
    """The answer as the user's session opens it (uses up its record number)."""
    user_side = world.physician.channels.session("bolster-a")
    assert user_side is not None
    return SessionResult.from_bytes(user_side.unprotect(resp.record, resp.signed_bytes()))


def _reanswer(world: World, resp: SessionResponse, result: SessionResult) -> SessionResponse:
    """What a bolster could answer on the session instead: the user cannot tell on
    arrival, unless the structure of the receipt gives it away."""
    record = _bolster_session(world, "dr-alice").protect(result.to_bytes(), resp.signed_bytes())
    return dataclasses.replace(resp, record=record)


def test_a_bad_head_is_caught_when_receipts_are_settled_on_demand(world: World) -> None:
    dev = _ready(world)
    doctor = world.physician
    req = doctor.session_access("bolster-a", dev.pseudonym)
    resp = world.bolster.session_request(req)
    plain = _opened(world, resp)
    assert plain.receipt is not None
    head = plain.receipt.checkpoint
    forged = dataclasses.replace(
        plain.receipt, checkpoint=dataclasses.replace(head, signature=bytes(len(head.signature)))
    )
    lying = _reanswer(world, resp, dataclasses.replace(plain, receipt=forged))
    doctor.open_session_access(req, lying)  # the structure is fine: accepted on arrival
    with pytest.raises(CheckpointSignatureError):
        doctor.settle_receipts()
    assert doctor.unsettled_receipts == 1
    # the genuine receipt verifies in full
    verify_receipt(
        plain.receipt, LedgerKeyVerifier(world.bolster.verifier), transaction=plain.transaction
    )


def test_an_answer_the_bolster_did_not_log_is_caught_at_attestation(world: World) -> None:
    """A bolster that answers with a transaction other than the one it logged (a receipt
    made up to match it) passes the arrival check, but the attestation's answer must prove
    that very leaf in a signed head -- and cannot."""
    dev = _ready(world)
    doctor = world.physician
    req = doctor.session_access("bolster-a", dev.pseudonym)
    resp = world.bolster.session_request(req)
    plain = _opened(world, resp)
    assert plain.transaction is not None and plain.receipt is not None
    tx = dataclasses.replace(plain.transaction, time=plain.transaction.time + 1)
    leaf = tx.leaf_hash()
    proof = plain.receipt.inclusion_proof
    root = root_from_inclusion_proof(proof.leaf_index, proof.tree_size, leaf, proof.path)
    receipt = dataclasses.replace(
        plain.receipt,
        leaf_hash=leaf,
        root=root,
        checkpoint=dataclasses.replace(plain.receipt.checkpoint, root_hash=root),
    )
    lying = _reanswer(world, resp, dataclasses.replace(plain, transaction=tx, receipt=receipt))
    doctor.open_session_access(req, lying)
    areq = doctor.attest("bolster-a")
    assert areq is not None
    with pytest.raises(LedgerVerificationError):
        doctor.check_session_attested(areq, world.bolster.session_request(areq))
    assert doctor.unsettled_receipts == 1  # still unsettled: no signed head covers it


def test_an_unknown_session_record_is_refused(world: World) -> None:
    dev = _ready(world)
    req = world.physician.session_access("bolster-a", dev.pseudonym)
    bogus = dataclasses.replace(req, record=req.record[:2] + bytes(8) + req.record[10:])
    with pytest.raises(UnknownSessionError):
        world.bolster.session_request(bogus)
    # a requester with no credential has no sessions at all
    plain = Requester("dr-alice", world.physician._signer, clock=world.clock, rng=world.rng)
    with pytest.raises(BiomtStateError):
        plain.session_access("bolster-a", dev.pseudonym)


def test_a_session_request_is_told_from_a_signed_one_by_its_tag(world: World) -> None:
    """Access, Observe and History take both on one service: the tag decides the path."""
    dev = _ready(world)
    session = world.physician.session_access("bolster-a", dev.pseudonym)
    signed = world.physician.access("bolster-a", dev.pseudonym)
    assert is_session_request(session.to_bytes())
    assert not is_session_request(signed.to_bytes())
    assert not is_session_request(b"")


def test_a_session_request_on_another_operations_service_is_malformed(world: World) -> None:
    dev = _ready(world)
    req = world.physician.session_access("bolster-a", dev.pseudonym)
    expect_operation(req, SessionOp.ACCESS)
    with pytest.raises(BiomtDecodeError, match="a ACCESS session request on ~/observe"):
        expect_operation(req, SessionOp.OBSERVE)
