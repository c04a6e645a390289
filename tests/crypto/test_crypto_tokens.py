"""Access tokens (RFC 8392 CWT, RFC 8747 proof of possession): every rejection case."""

from __future__ import annotations

import pytest
from crypto_clock import FakeClock
from hypothesis import given, settings
from hypothesis import strategies as st

from iomt.crypto.errors import (
    KeyFormatError,
    TokenAudienceError,
    TokenError,
    TokenExpiredError,
    TokenIssuerError,
    TokenMalformedError,
    TokenNotYetValidError,
    TokenProofError,
    TokenReplayedError,
    TokenRevokedError,
    TokenScopeError,
    TokenSignatureError,
)
from iomt.crypto.revocation import RevocationKind, RevocationList
from iomt.crypto.signing import EcdsaP256Signer, Ed25519Signer, HmacSha256Key, Signer
from iomt.crypto.tokens import ReplayCache, TokenIssuer, TokenVerifier, make_proof
from iomt.errors import AuthorizationError

DEVICE = "iomt://F1/dev-001"
WALLET = "wallet:patient-7"


class World:
    def __init__(self, clock: FakeClock, wallet: Signer | None = None) -> None:
        self.clock = clock
        self.wallet = wallet or Ed25519Signer.generate()
        self.requester = Ed25519Signer.generate()
        self.revocations = RevocationList()
        self.issuer = TokenIssuer(WALLET, self.wallet, clock=clock)
        self.verifier = TokenVerifier(
            {WALLET: self.wallet.verifier()}, clock=clock, revocations=self.revocations
        )

    def token(self, **kw: object) -> bytes:
        args: dict = {
            "audience": DEVICE,
            "subject": "provider:dr-bob",
            "scope": "read:vitals",
            "confirmation_key": self.requester.verifier(),
            "lifetime": 300,
        }
        args.update(kw)
        return self.issuer.issue(**args)

    def present(self, token: bytes, *, key: Signer | None = None, **kw: object):
        challenge = kw.pop("challenge", b"challenge-1")
        request = kw.pop("request", b"GET vitals")
        proof = kw.pop(
            "proof",
            make_proof(token, key or self.requester, challenge=challenge, request=request),
        )
        return self.verifier.verify(
            token,
            audience=kw.pop("audience", DEVICE),
            proof=proof,
            challenge=kw.pop("verify_challenge", challenge),
            request=kw.pop("verify_request", request),
            **kw,
        )


@pytest.fixture
def world(clock: FakeClock) -> World:
    return World(clock)


def test_a_valid_token_verifies(world: World) -> None:
    token = world.token()
    claims = world.present(token, scope="read:vitals")
    assert claims.issuer == WALLET
    assert claims.audience == DEVICE
    assert claims.subject == "provider:dr-bob"
    assert claims.scope == frozenset({"read:vitals"})
    assert claims.confirmation == world.requester.verifier()
    assert claims.expires_at == world.clock.now + 300
    assert len(claims.token_id) == 16


@pytest.mark.parametrize("alg", [Ed25519Signer, EcdsaP256Signer])
def test_both_signature_algorithms_issue_and_confirm(clock: FakeClock, alg: type) -> None:
    w = World(clock, wallet=alg.generate())
    w.requester = alg.generate()
    assert w.present(w.token()).confirmation == w.requester.verifier()


def test_expired_and_not_yet_valid(world: World) -> None:
    token = world.token()
    world.clock.advance(299)
    world.present(token)
    world.clock.advance(1)
    with pytest.raises(TokenExpiredError):
        world.present(token)
    later = world.token(not_before=world.clock.now + 60)
    with pytest.raises(TokenNotYetValidError):
        world.present(later)
    world.clock.advance(60)
    world.present(later)


def test_leeway_tolerates_skew(clock: FakeClock) -> None:
    w = World(clock)
    w.verifier = TokenVerifier({WALLET: w.wallet.verifier()}, clock=clock, leeway=30)
    token = w.token()
    clock.advance(310)
    w.present(token)
    clock.advance(30)
    with pytest.raises(TokenExpiredError):
        w.present(token)


def test_wrong_audience(world: World) -> None:
    with pytest.raises(TokenAudienceError):
        world.present(world.token(), audience="iomt://F1/dev-002")


def test_wrong_issuer(world: World, clock: FakeClock) -> None:
    rogue = TokenIssuer("wallet:mallory", Ed25519Signer.generate(), clock=clock)
    token = rogue.issue(DEVICE, "provider:dr-bob", "read:vitals", world.requester.verifier(), 300)
    with pytest.raises(TokenIssuerError):
        world.present(token)
    # a rogue key claiming to be the trusted wallet fails the signature check
    impostor = TokenIssuer(WALLET, Ed25519Signer.generate(), clock=clock)
    token = impostor.issue(
        DEVICE, "provider:dr-bob", "read:vitals", world.requester.verifier(), 300
    )
    with pytest.raises(TokenSignatureError):
        world.present(token)


@pytest.mark.parametrize("what", ["token", "subject", "key"])
def test_revoked(world: World, what: str) -> None:
    token = world.token()
    claims = world.present(token)
    kind, value = {
        "token": (RevocationKind.TOKEN, claims.token_id.hex().upper()),
        "subject": (RevocationKind.IDENTITY, "provider:dr-bob"),
        "key": (RevocationKind.KEY, world.requester.verifier().fingerprint()),
    }[what]
    world.revocations.revoke(kind, value, reason="test", at=world.clock())
    with pytest.raises(TokenRevokedError):
        world.present(token)


def test_single_use_tokens_and_proof_nonces_do_not_replay(world: World) -> None:
    once = world.token(single_use=True)
    world.present(once)
    with pytest.raises(TokenReplayedError):
        world.present(once)  # a fresh proof does not help: the cti is spent
    many = world.token()
    proof = make_proof(many, world.requester, challenge=b"c", request=b"r")
    world.present(many, proof=proof, challenge=b"c", request=b"r")
    with pytest.raises(TokenReplayedError):
        world.present(many, proof=proof, challenge=b"c", request=b"r")
    world.present(many, challenge=b"c", request=b"r")  # a new nonce is fine


def test_a_failed_presentation_does_not_spend_a_single_use_token(world: World) -> None:
    once = world.token(single_use=True)
    with pytest.raises(TokenProofError):
        world.present(once, key=Ed25519Signer.generate())
    world.present(once)


@pytest.mark.parametrize(
    "kw",
    [
        {"key": "thief"},
        {"verify_challenge": b"challenge-2"},
        {"verify_request": b"DELETE vitals"},
        {"proof": b""},
        {"proof": b"\x01\x00\x10" + b"n" * 16 + b"\x00\x40" + b"s" * 64},
        {"proof": b"\x02garbage"},
    ],
    ids=["other-key", "other-challenge", "other-request", "empty", "forged", "garbage"],
)
def test_presenter_must_prove_possession(world: World, kw: dict) -> None:
    if kw.get("key") == "thief":
        kw["key"] = Ed25519Signer.generate()
    with pytest.raises(TokenProofError):
        world.present(world.token(), **kw)


def test_proof_is_bound_to_the_token(world: World) -> None:
    a, b = world.token(), world.token()
    proof = make_proof(a, world.requester, challenge=b"c", request=b"r")
    with pytest.raises(TokenProofError):
        world.present(b, proof=proof, challenge=b"c", request=b"r")


def test_scope_is_an_authorization_error(world: World) -> None:
    token = world.token(scope=["read:vitals", "read:bp"])
    world.present(token, scope="read:bp")
    with pytest.raises(TokenScopeError) as info:
        world.present(token, scope="write:config")
    assert isinstance(info.value, AuthorizationError)


def test_every_flipped_token_byte_is_refused(world: World) -> None:
    token = world.token()
    for i in range(len(token)):
        bad = bytearray(token)
        bad[i] ^= 0x01
        with pytest.raises(TokenError):
            world.present(bytes(bad))
    with pytest.raises(TokenMalformedError):
        world.present(token + b"\x00")  # trailing bytes are not ignored


@settings(deadline=None, max_examples=200)
@given(st.binary(max_size=300))
def test_garbage_tokens_raise_token_errors(junk: bytes) -> None:
    verifier = TokenVerifier({WALLET: Ed25519Signer.generate().verifier()})
    for data in (junk, b"\xd2\x84" + junk, b"\xd8\x3d\xd2\x84" + junk):
        with pytest.raises(TokenError):
            verifier.verify(data, audience=DEVICE, proof=b"", challenge=b"")


def test_issuer_and_confirmation_key_types(world: World) -> None:
    with pytest.raises(KeyFormatError):
        TokenIssuer(WALLET, HmacSha256Key.generate())
    with pytest.raises(KeyFormatError):
        world.token(confirmation_key=HmacSha256Key.generate())
    with pytest.raises(ValueError):
        world.token(lifetime=0)


def test_replay_cache_fails_closed_when_full(clock: FakeClock) -> None:
    cache = ReplayCache(capacity=2)
    assert cache.add(b"a", until=clock() + 10, now=clock())
    assert cache.add(b"b", until=clock() + 10, now=clock())
    assert not cache.add(b"a", until=clock() + 10, now=clock())
    with pytest.raises(TokenReplayedError):
        cache.add(b"c", until=clock() + 10, now=clock())
    clock.advance(11)  # entries expire and make room
    assert cache.add(b"c", until=clock() + 10, now=clock())


def test_missing_claims_are_malformed(world: World) -> None:
    import cwt

    from iomt.crypto.tokens import _cose_signing_key

    key = _cose_signing_key(world.wallet, WALLET.encode())
    now = int(world.clock())
    base = {1: WALLET, 2: "s", 3: DEVICE, 4: now + 60, 5: now, 6: now, 7: b"id", 9: "read:vitals"}
    base[8] = {1: {1: 1, -1: 6, -2: world.requester.verifier().public_bytes()}}
    for drop in (2, 7, 8, 9):
        claims = {k: v for k, v in base.items() if k != drop}
        token = cwt.CWT.new().encode_and_sign(claims, key)
        with pytest.raises(TokenMalformedError):
            world.present(token)
    odd = dict(base)
    odd[8] = {1: {1: 2, -1: 1, -2: b"x" * 32, -3: b"y" * 32}}  # not a curve point
    with pytest.raises(TokenMalformedError):
        world.present(cwt.CWT.new().encode_and_sign(odd, key))


def test_a_seeded_token_and_proof_match_the_known_answer() -> None:
    """Pins the claims map, its COSE_Sign1 encoding and the proof-of-possession message:
    the same keys, clock and token id give exactly these bytes."""
    wallet = Ed25519Signer.from_private_bytes(bytes([3]) * 32)
    holder = Ed25519Signer.from_private_bytes(bytes([4]) * 32)
    issuer = TokenIssuer(
        WALLET, wallet, clock=lambda: 1_700_000_000.5, rng=lambda n: bytes(range(n))
    )
    token = issuer.issue(
        DEVICE, "provider:dr-bob", "read:vitals", holder.verifier(), 300, single_use=True
    )
    assert token.hex() == (
        "d28443a10127a1045077616c6c65743a70617469656e742d375899aa017077616c6c65743a70617469656e74"
        "2d37026f70726f76696465723a64722d626f620371696f6d743a2f2f46312f6465762d303031041a6553f22d"
        "051a6553f100061a6553f1000750000102030405060708090a0b0c0d0e0f08a101a301012006215820ca93ac"
        "1705187071d67b83c7ff0efe8108e8ec4530575d7726879333dbdabe7c096b726561643a766974616c733a00"
        "01003ff55840cb5ffad736923c477d1de977ba0f8095f36fab677a66c9f5e996307883dc1c9c5b0157e097cc"
        "2314db007258525832582c43d61cce6603b3402786787ac82903"
    )
    proof = make_proof(
        token, holder, challenge=b"challenge-1", request=b"GET vitals", nonce=b"n" * 16
    )
    assert proof.hex() == (
        "0100106e6e6e6e6e6e6e6e6e6e6e6e6e6e6e6e00405b42f5f17f3fdbd49d7274b17f0c3b045f2f23285624c6"
        "54c706e346f7973cefc31fce14ff918eb1aa889d72e5828782ce66ecb837b96d99a066ae21395ee505"
    )
    clock = FakeClock(1_700_000_100.0)
    claims = TokenVerifier({WALLET: wallet.verifier()}, clock=clock).verify(
        token, audience=DEVICE, proof=proof, challenge=b"challenge-1", request=b"GET vitals"
    )
    assert (claims.issued_at, claims.not_before, claims.expires_at) == (
        1_700_000_000.0,
        1_700_000_000.0,
        1_700_000_301.0,
    )
    assert claims.token_id == bytes(range(16)) and claims.single_use
