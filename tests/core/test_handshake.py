"""The wallet's side of Alg. 1.1-1.2 on its own: every refusal, and what a grant carries.

Written against mutation testing (docs/testing.md)."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest

from core.sharing_world import World, build_world, der
from iomt.core.handshake import (
    Consent,
    TokenRequest,
    Wallet,
    new_token_request,
)
from iomt.crypto.errors import CertificateError
from iomt.crypto.tokens import EXP, IAT, TokenIssuer, TokenVerifier
from iomt.errors import AuthenticationError, AuthorizationError, RemoteProtocolError


@pytest.fixture
def world(tmp_path: Path) -> World:
    return build_world(tmp_path)


def raises(kind: type[Exception], message: str):  # type: ignore[no-untyped-def]
    return pytest.raises(kind, match=f"^{re.escape(message)}$")


def _request(world: World, provider: str = "dr_house", **changes: object) -> TokenRequest:
    p = world.provider(provider)
    req = p.token_request(world.wallet.wallet_uri)
    if changes:
        req = replace(req, **changes).signed_by(world.keystore.identity(provider).signer)
    return req


def test_a_provider_presenting_its_own_certificate_under_anothers_uri_is_refused(
    world: World,
) -> None:
    # mallory holds a valid certificate of the facility CA, but it does not name dr_house
    mallory = world.keystore.identity("mallory")
    dr_house = world.provider("dr_house").uri
    req = new_token_request(world.wallet.wallet_uri, dr_house, der(mallory), mallory.signer)
    with pytest.raises(CertificateError):
        world.wallet.handle(req)
    assert world.wallet.issued == 0


def test_a_request_for_another_wallet_is_not_authorized(world: World) -> None:
    req = _request(world, wallet_uri="iomt://ward1/wallet_p2")
    with raises(AuthorizationError, "request is for wallet iomt://ward1/wallet_p2"):
        world.wallet.handle(req)


@pytest.mark.parametrize(("size", "ok"), [(15, False), (16, True), (64, True), (65, False)])
def test_a_request_nonce_is_16_to_64_bytes(world: World, size: int, ok: bool) -> None:
    req = _request(world, nonce=bytes(range(size)))
    if ok:
        assert len(world.wallet.handle(req)) == len(world.devices)
    else:
        with raises(RemoteProtocolError, "nonce must be 16..64 bytes"):
            world.wallet.handle(req)


def test_a_request_for_no_scope_is_a_protocol_error(world: World) -> None:
    with raises(RemoteProtocolError, "no scopes requested"):
        world.wallet.handle(_request(world, scopes=()))


def test_consent_is_needed_for_every_requested_scope(world: World) -> None:
    req = _request(world, scopes=("vitals:read", "vitals:write"))
    with raises(
        AuthorizationError,
        f"patient patient-1 has not consented to {req.provider_uri} for vitals:read, vitals:write",
    ):
        world.wallet.handle(req)
    assert Consent.read_vitals(["a"]).allows("a", ("vitals:read",))
    assert not Consent.read_vitals(["a"]).allows("b", ("vitals:read",))


def test_a_replayed_request_is_refused(world: World) -> None:
    req = _request(world)
    world.wallet.handle(req)
    with raises(AuthenticationError, "request nonce already used (replay)"):
        world.wallet.handle(req)


def test_each_grant_describes_its_device_and_carries_a_token_for_it(world: World) -> None:
    grants = world.wallet.handle(_request(world))
    grants += world.wallet.handle(_request(world))
    assert world.wallet.issued == 2 * len(world.devices)
    devices = {d.uri: d for d in world.wallet.devices}
    verifier = TokenVerifier({world.wallet_identity.uri: world.wallet_identity.verifier})
    for g in grants:
        d = devices[g.uri]
        assert (g.technique, g.kind, g.device_certificate) == (d.technique, d.kind, d.certificate)
        assert verifier.decode(g.token)[3] == g.uri  # aud


def test_tokens_live_an_hour_by_default(world: World) -> None:
    w = world.wallet
    wallet = Wallet(
        w.wallet_uri,
        w.patient_id,
        TokenIssuer(world.wallet_identity.uri, world.wallet_identity.signer, clock=world.clock),
        w.devices,
        w.consent,
        check_certificate=world.check(),
        clock=world.clock,
    )
    world.clock.t = float(int(world.clock.t))
    token = wallet.handle(_request(world))[0].token
    claims = TokenVerifier({world.wallet_identity.uri: world.wallet_identity.verifier}).decode(
        token
    )
    assert claims[EXP] - claims[IAT] == 3600
    assert wallet.token_lifetime_s == 3600.0


def test_a_token_request_carries_a_fresh_32_byte_nonce_and_signs_a_fixed_encoding(
    world: World,
) -> None:
    ident = world.keystore.identity("dr_house")
    req = new_token_request("w", "p", b"C", ident.signer, scopes=("a", "bc"))
    assert len(req.nonce) == 32
    assert new_token_request("w", "p", b"C", ident.signer).nonce != req.nonce
    assert replace(req, nonce=b"N").signed_bytes() == (
        b"iomt/device-info-request/v1"
        b"\x00\x00\x00\x01w\x00\x00\x00\x01p\x00\x00\x00\x01C"
        b"\x00\x00\x00\x02\x00\x00\x00\x01a\x00\x00\x00\x02bc"
        b"\x00\x00\x00\x01N"
    )
    ident.signer.verifier().verify(req.signed_bytes(), req.proof)
