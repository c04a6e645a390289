"""The listener (Alg. 2.2) on its own: what each decision carries, and why a request is refused.

Written against mutation testing (docs/testing.md): every check of ``iomt.core.listener``
has a test here or in test_sharing.py that fails when the check is broken."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from core.sharing_world import World, build_world
from iomt.core.listener import (
    PROOF_POP,
    PROOF_SESSION,
    DataRequest,
    Decision,
    Listener,
    Outcome,
    Refusal,
    name_of,
)
from iomt.crypto.sessions import Session
from iomt.crypto.signing import Verifier
from iomt.crypto.tokens import TokenClaims, TokenIssuer, TokenVerifier


@pytest.fixture
def world(tmp_path: Path) -> World:
    w = build_world(tmp_path)
    w.wallet.token_lifetime_s = 60.0  # shorter than a session
    w.grant("dr_house")
    return w


class CountingVerifier(TokenVerifier):
    """Counts the signature verifications a listener asks for."""

    holder_checks = 0

    def verify_holder(
        self, token: bytes, *, audience: str, holder: Verifier, scope: str | None = None
    ) -> TokenClaims:
        self.holder_checks += 1
        return super().verify_holder(token, audience=audience, holder=holder, scope=scope)


def _listener(world: World, device: str = "hr_ecc") -> tuple[Listener, CountingVerifier]:
    d = world.device(device)
    verifier = CountingVerifier(
        {world.wallet_identity.uri: world.wallet_identity.verifier}, clock=world.clock
    )
    return Listener(d.uri, d.config.applicable, verifier, clock=world.clock), verifier


def _open_session(world: World, provider: str = "dr_house", device: str = "hr_ecc") -> None:
    world.open_session(world.provider(provider).channels, world.device(device).channels)


def _request(
    world: World, technique: str = "ecc", *, provider: str = "dr_house", device: str = "hr_ecc"
) -> tuple[DataRequest, Session | None]:
    """A provider's request and the session the device finds for it (None without one)."""
    req = world.provider(provider).data_request(world.device(device).uri, technique)
    if req.proof_type != PROOF_SESSION:
        return req, None
    return req, world.device(device).channels.session_of_record(req.proof)


def _token_with_scope(world: World, scope: str, device: str = "hr_ecc") -> bytes:
    wallet = world.wallet_identity
    issuer = TokenIssuer(wallet.uri, wallet.signer, clock=world.clock)
    return issuer.issue(
        world.device(device).uri,
        "patient-1",
        scope,
        world.keystore.identity("dr_house").signer.verifier(),
        60.0,
    )


def _use_token(world: World, token: bytes, device: str = "hr_ecc") -> None:
    p = world.provider("dr_house")
    uri = world.device(device).uri
    p.grants[uri] = dataclasses.replace(p.grants[uri], token=token)


# -- what a decision carries ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("technique", "outcome", "reason"),
    [
        ("ecc", Outcome.SHARE, ""),
        ("cpabe", Outcome.CONVERT, "cpabe not applicable here"),
        ("rot13", Outcome.REFUSE, "unknown-technique: 'rot13'"),
    ],
)
def test_a_decision_on_a_valid_token_carries_its_claims_and_session(
    world: World, technique: str, outcome: Outcome, reason: str
) -> None:
    _open_session(world)
    listener, _ = _listener(world)
    req, session = _request(world, technique)
    assert session is not None
    decision = listener.decide(req, session)
    assert decision.outcome is outcome
    assert decision.reason == reason
    assert decision.session is session
    assert decision.claims is not None
    assert decision.claims.audience == world.device("hr_ecc").uri
    assert "vitals:read" in decision.claims.scope


# -- why a request is refused ---------------------------------------------------------------


@pytest.mark.parametrize("proof", [PROOF_SESSION, PROOF_POP])
def test_a_token_without_the_vitals_read_scope_is_not_authorized(world: World, proof: str) -> None:
    if proof == PROOF_SESSION:
        _open_session(world)
    _use_token(world, _token_with_scope(world, "vitals:write"))
    listener, _ = _listener(world)
    req, session = _request(world)
    assert req.proof_type == proof
    decision = listener.decide(req, session)
    assert decision == Decision(
        Outcome.REFUSE, "not-authorized: token grants ['vitals:write'], not 'vitals:read'"
    )


def test_a_session_proof_without_a_session_is_a_bad_proof(world: World) -> None:
    _open_session(world)
    listener, _ = _listener(world)
    req, _session = _request(world)
    assert listener.decide(req, None) == Decision(
        Outcome.REFUSE, "bad-proof: no session for this request"
    )


def test_a_request_claiming_another_requester_than_the_session_peer_is_a_bad_proof(
    world: World,
) -> None:
    _open_session(world)
    listener, _ = _listener(world)
    req, session = _request(world)
    other = world.provider("dr_other").uri
    decision = listener.decide(dataclasses.replace(req, requester_uri=other), session)
    assert decision == Decision(
        Outcome.REFUSE, f"bad-proof: session is with dr_house, request claims {other}"
    )


def test_a_session_proof_carrying_content_is_a_bad_proof(world: World) -> None:
    _open_session(world)
    listener, _ = _listener(world)
    req, session = _request(world)
    assert session is not None
    provider_session = world.provider("dr_house").channels.session("hr_ecc")
    assert provider_session is not None
    stuffed = provider_session.protect(b"extra", aad=req.bound_bytes())
    decision = listener.decide(dataclasses.replace(req, proof=stuffed), session)
    assert decision == Decision(
        Outcome.REFUSE, "bad-proof: session proof carries unexpected content"
    )


def test_an_unknown_proof_type_is_a_bad_proof(world: World) -> None:
    listener, _ = _listener(world)
    req, _session = _request(world)
    decision = listener.decide(dataclasses.replace(req, proof_type="magic"), None)
    assert decision == Decision(Outcome.REFUSE, "bad-proof: unknown proof type 'magic'")


def test_a_replayed_request_is_refused_as_a_replay_saying_why(world: World) -> None:
    """On a session its window refuses the record again; without one, the proof nonce."""
    _open_session(world)
    listener, _ = _listener(world)
    req, session = _request(world)
    assert req.proof_type == PROOF_SESSION
    assert listener.decide(req, session).outcome is Outcome.SHARE
    again = listener.decide(req, session)
    assert again == Decision(
        Outcome.REFUSE, "bad-proof: record 0 was already received", replay=True
    )
    assert (again.refusal, again.detail) == (Refusal.BAD_PROOF, "record 0 was already received")
    world.provider("dr_house").channels.drop("hr_ecc")
    req, session = _request(world)
    assert req.proof_type == PROOF_POP and session is None
    assert listener.decide(req, None).outcome is Outcome.SHARE
    again = listener.decide(req, None)
    assert again == Decision(
        Outcome.REFUSE, "invalid-token: proof nonce already seen for this token", replay=True
    )
    assert (again.refusal, again.detail) == (
        Refusal.INVALID_TOKEN,
        "proof nonce already seen for this token",
    )


def test_a_refusal_code_is_read_from_before_the_first_colon_of_its_reason() -> None:
    """Details name URIs, which hold colons of their own."""
    reason = "bad-proof: session is with dr_house, request claims iomt://ward1/x: y"
    assert Refusal.of(reason) is Refusal.BAD_PROOF
    decision = Decision.refuse(Refusal.NOT_AUTHORIZED, "iomt://ward1/x: no")
    assert decision.reason == "not-authorized: iomt://ward1/x: no"
    assert decision.detail == "iomt://ward1/x: no"
    assert Refusal.of(decision.reason) is decision.refusal is Refusal.NOT_AUTHORIZED


# -- the per-session token cache --------------------------------------------------------------


def test_a_session_verifies_its_token_once_until_it_expires(world: World) -> None:
    _open_session(world)
    listener, verifier = _listener(world)
    first = listener.decide(*_request(world))
    assert first.outcome is Outcome.SHARE and first.claims is not None
    for _ in range(3):
        assert listener.decide(*_request(world)).outcome is Outcome.SHARE
    assert verifier.holder_checks == 1
    # at the very second the token expires, the cached verification no longer counts
    world.clock.t = first.claims.expires_at
    late = listener.decide(*_request(world))
    assert late.outcome is Outcome.REFUSE and late.reason.startswith("invalid-token")
    assert verifier.holder_checks == 2


def test_a_cached_verification_does_not_vouch_for_another_token(world: World) -> None:
    _open_session(world)
    listener, _ = _listener(world)
    assert listener.decide(*_request(world)).outcome is Outcome.SHARE
    # same session, a token for another of the patient's devices
    other = world.provider("dr_house").grants[world.device("bp_abe").uri].token
    _use_token(world, other)
    decision = listener.decide(*_request(world))
    assert decision.outcome is Outcome.REFUSE
    assert decision.reason.startswith("invalid-token") and "is for" in decision.reason


# -- the wire contract ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("uri", "name"),
    [
        ("iomt://ward1/dr_house", "dr_house"),
        ("iomt://ward1/dr_house/", "dr_house"),
        ("iomt://ward1/box_X/", "box_X"),
        ("dr_house", "dr_house"),
    ],
)
def test_name_of_is_the_last_path_segment_of_a_uri(uri: str, name: str) -> None:
    assert name_of(uri) == name


def test_a_request_proof_covers_every_field_but_itself_in_a_fixed_encoding() -> None:
    req = DataRequest("r1", "iomt://w/p", "ecc", b"tok", b"nonce", "session", b"PROOF", b"key")
    assert req.bound_bytes() == (
        b"iomt/data-request/v1"
        b"\x00\x00\x00\x02r1"
        b"\x00\x00\x00\x0aiomt://w/p"
        b"\x00\x00\x00\x03ecc"
        b"\x00\x00\x00\x03tok"
        b"\x00\x00\x00\x05nonce"
        b"\x00\x00\x00\x07session"
        b"\x00\x00\x00\x03key"
    )
