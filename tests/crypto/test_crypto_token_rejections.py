"""Token rejections named exactly, and the boundaries of every token check.

Written against mutation testing (docs/testing.md): a device reports why it refused a token,
so each rejection's message is part of the contract, and each bound (nonce sizes, validity
window with leeway, replay-cache expiry) is tested on both sides of its edge."""

from __future__ import annotations

import re
from typing import Any

import cbor2
import pytest
from crypto_clock import FakeClock

from iomt.crypto.errors import (
    KeyFormatError,
    TokenError,
    TokenIssuerError,
    TokenMalformedError,
    TokenNotYetValidError,
    TokenProofError,
    TokenReplayedError,
    TokenRevokedError,
    TokenSignatureError,
)
from iomt.crypto.revocation import RevocationKind, RevocationList
from iomt.crypto.signing import EcdsaP256Signer, Ed25519Signer, HmacSha256Key
from iomt.crypto.tokens import (
    ReplayCache,
    TokenIssuer,
    TokenVerifier,
    make_proof,
)

DEVICE = "iomt://F1/dev-001"
WALLET = "wallet:patient-7"
WALLET_KEY = Ed25519Signer.from_private_bytes(bytes([3]) * 32)
HOLDER = Ed25519Signer.from_private_bytes(bytes([4]) * 32)
NOW = 1_700_000_000


def raises(kind: type[Exception], message: str):  # type: ignore[no-untyped-def]
    return pytest.raises(kind, match=f"^{re.escape(message)}$")


def _claims(**changes: Any) -> dict[int, Any]:
    claims: dict[int, Any] = {
        1: WALLET,
        2: "provider:dr-bob",
        3: DEVICE,
        4: NOW + 60,
        5: NOW,
        6: NOW,
        7: b"token-id",
        8: {1: {1: 1, -1: 6, -2: HOLDER.verifier().public_bytes()}},
        9: "read:vitals",
    }
    for key, value in changes.items():
        k = int(key.removeprefix("c"))
        if value is None:
            claims.pop(k, None)
        else:
            claims[k] = value
    return claims


def _sign(
    claims: dict[int, Any],
    protected_header: dict[int, Any] | None = None,
    unprotected: dict[int, Any] | None = None,
) -> bytes:
    """A COSE_Sign1 over any claims map, signed by the wallet (the issuer would refuse to
    write most of these claims, so the test signs them itself)."""
    protected = cbor2.dumps({1: -8} if protected_header is None else protected_header)
    payload = cbor2.dumps(claims)
    signature = WALLET_KEY.sign(cbor2.dumps(["Signature1", protected, b"", payload]))
    header = {4: b"w"} if unprotected is None else unprotected
    return cbor2.dumps(cbor2.CBORTag(18, [protected, header, payload, signature]))


def _verifier(clock: FakeClock | None = None, **kw: Any) -> TokenVerifier:
    return TokenVerifier(
        {WALLET: WALLET_KEY.verifier()},
        clock=clock or FakeClock(NOW + 1),
        key_ids={WALLET: b"w"},
        **kw,
    )


def _present(token: bytes, verifier: TokenVerifier | None = None, **kw: Any) -> object:
    proof = kw.pop("proof", None)
    if proof is None:
        proof = make_proof(token, HOLDER, challenge=b"c", request=b"r")
    return (verifier or _verifier()).verify(
        token, audience=DEVICE, proof=proof, challenge=b"c", request=b"r", **kw
    )


# -- the claims --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"c4": None}, "exp claim missing or not a finite number"),
        ({"c4": True}, "exp claim missing or not a finite number"),
        ({"c4": float("inf")}, "exp claim missing or not a finite number"),
        ({"c4": "soon"}, "exp claim missing or not a finite number"),
        ({"c5": None}, "nbf claim missing or not a finite number"),
        ({"c5": float("-inf")}, "nbf claim missing or not a finite number"),
        ({"c3": None}, "aud claim missing or not text"),
        ({"c3": b"iomt://F1/dev-001"}, "aud claim missing or not text"),
        ({"c2": None}, "sub claim missing or not text"),
        ({"c6": None}, "iat claim missing or not a finite number"),
        ({"c7": None}, "cti claim missing or not bytes"),
        ({"c7": b""}, "cti claim missing or not bytes"),
        ({"c7": 5}, "cti claim missing or not bytes"),
        ({"c8": None}, "cnf claim missing or not a COSE_Key confirmation"),
        ({"c8": {2: b"x"}}, "cnf claim missing or not a COSE_Key confirmation"),
        ({"c-65600": 1}, "single-use claim is not a boolean"),
        ({"c9": None}, "scope claim missing or not text"),
        ({"c8": {1: [1, 6]}}, "cnf COSE_Key is not a map"),
        ({"c8": {1: {1: 1, -1: 6}}}, "cnf OKP key without x"),
        ({"c8": {1: {1: 1, -1: 1, -2: b"x" * 32}}}, "unsupported cnf key type kty=1 crv=1"),
        ({"c8": {1: {1: 2, -1: 6, -2: b"x" * 32}}}, "unsupported cnf key type kty=2 crv=6"),
        ({"c8": {1: {1: 2, -1: 1, -2: b"x" * 32}}}, "cnf EC2 key without 32-byte x and y"),
        ({"c8": {1: {1: 2, -1: 1, -2: "x", -3: b"y" * 32}}}, "cnf EC2 key without 32-byte x and y"),
        (
            {"c8": {1: {1: 2, -1: 1, -2: b"x" * 31, -3: b"y" * 32}}},
            "cnf EC2 key without 32-byte x and y",
        ),
        (
            {"c8": {1: {1: 1, -1: 6, -2: b"k" * 31}}},
            None,
        ),  # "cnf key is not a valid public key: ..."
    ],
)
def test_a_token_with_a_bad_claim_is_malformed_and_says_which(
    changes: dict[str, Any], message: str | None
) -> None:
    token = _sign(_claims(**changes))
    if message is None:
        with pytest.raises(TokenMalformedError, match=r"^cnf key is not a valid public key: \S"):
            _present(token)
    else:
        with raises(TokenMalformedError, message):
            _present(token)


def test_an_ecdsa_confirmation_key_confirms() -> None:
    holder = EcdsaP256Signer.generate()
    n = holder.verifier().raw.public_numbers()
    cnf = {1: {1: 2, -1: 1, -2: n.x.to_bytes(32, "big"), -3: n.y.to_bytes(32, "big")}}
    token = _sign(_claims(c8=cnf))
    proof = make_proof(token, holder, challenge=b"c", request=b"r")
    claims = _present(token, proof=proof)
    assert claims.confirmation == holder.verifier()  # type: ignore[attr-defined]


def test_an_hmac_key_cannot_be_a_confirmation_key() -> None:
    issuer = TokenIssuer(WALLET, WALLET_KEY)
    with raises(KeyFormatError, "hmac-sha256 keys cannot be CWT confirmation keys"):
        issuer.issue(DEVICE, "s", "read:vitals", HmacSha256Key.generate(), 60)


# -- the COSE structure ------------------------------------------------------------------------


def _sign1(value: Any, *, tag: int = 18) -> bytes:
    return cbor2.dumps(cbor2.CBORTag(tag, value))


@pytest.mark.parametrize(
    ("token", "message"),
    [
        (_sign(_claims()) + b"\x00", "trailing bytes after the COSE message"),
        (_sign1([b"", {}, b"", b""], tag=17), "not a COSE_Sign1 message"),
        (cbor2.dumps([b"", {}, b"", b""]), "not a COSE_Sign1 message"),
        (_sign1([b"", {}, b""]), "COSE_Sign1 is not a 4-element array"),
        (_sign1({1: 2}), "COSE_Sign1 is not a 4-element array"),
        (_sign1([b"", {}, "payload", b""]), "COSE_Sign1 fields have the wrong types"),
        (_sign1([b"", [], b"\xa0", b""]), "COSE_Sign1 unprotected header is not a map"),
        (_sign1([b"", {}, cbor2.dumps([1]), b""]), "protected header or claims are not maps"),
        (_sign1([b"", {4: "kid"}, cbor2.dumps({1: WALLET}), b""]), "kid is not a byte string"),
        (_sign1([b"", {}, cbor2.dumps({1: 7}), b""]), "iss claim missing or not text"),
        (b"", "token must be 1..4096 bytes"),
        (b"\x00", "not a COSE_Sign1 message"),  # one byte is not too short to be looked at
        (b"\x00" * 4096, "trailing bytes after the COSE message"),  # nor 4096 too long
        (b"\x00" * 4097, "token must be 1..4096 bytes"),
        (b"\x1c", "not CBOR: CBORDecodeValueError"),
        (b"\x5a\x00", "not CBOR: CBORDecodeEOF"),
    ],
)
def test_a_structurally_bad_token_is_malformed_and_says_why(token: bytes, message: str) -> None:
    with raises(TokenMalformedError, message):
        _present(token)


def test_the_key_id_may_sit_in_the_protected_header_but_must_be_there() -> None:
    protected = _sign(_claims(), protected_header={1: -8, 4: b"w"}, unprotected={})
    assert _present(protected).token_id == b"token-id"  # type: ignore[attr-defined]
    with raises(TokenMalformedError, f"key id b'' is not the key id of issuer {WALLET!r}"):
        _present(_sign(_claims(), unprotected={}))
    with raises(TokenMalformedError, f"key id b'x' is not the key id of issuer {WALLET!r}"):
        _present(_sign(_claims(), protected_header={1: -8, 4: b"x"}, unprotected={4: b"w"}))


def test_a_token_with_a_bad_signature_says_so() -> None:
    token = bytearray(_sign(_claims()))
    token[-1] ^= 1
    with raises(TokenSignatureError, "COSE_Sign1 signature does not verify"):
        _present(bytes(token))


def test_a_cose_library_failure_is_reported_as_malformed_with_its_type(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    verifier = _verifier()

    def broken(*_args: object, **_kw: object) -> object:
        raise KeyError("surprise")

    monkeypatch.setattr(verifier._ctx, "decode", broken)
    with raises(TokenMalformedError, "not a valid COSE_Sign1 CWT: KeyError"):
        _present(_sign(_claims()), verifier)


def test_a_cwt_tagged_token_is_accepted() -> None:
    token = _sign(_claims())
    tagged = cbor2.dumps(cbor2.CBORTag(61, cbor2.loads(token)))
    assert _present(tagged).token_id == b"token-id"  # type: ignore[attr-defined]


# -- issuing ------------------------------------------------------------------------------------


def test_a_token_may_live_less_than_a_second_but_not_zero() -> None:
    issuer = TokenIssuer(WALLET, WALLET_KEY, clock=FakeClock(NOW))
    issuer.issue(DEVICE, "s", "read:vitals", HOLDER.verifier(), 0.5)
    with raises(ValueError, "token lifetime must be positive"):
        issuer.issue(DEVICE, "s", "read:vitals", HOLDER.verifier(), 0)


@pytest.mark.parametrize("scope", ["", [], ["read:vitals", ""], ["read vitals"]])
def test_a_scope_is_one_or_more_non_empty_words(scope: str | list[str]) -> None:
    issuer = TokenIssuer(WALLET, WALLET_KEY)
    with raises(ValueError, "scope must be one or more non-empty words"):
        issuer.issue(DEVICE, "s", scope, HOLDER.verifier(), 60)


# -- proofs ---------------------------------------------------------------------------------------


def test_a_proof_carries_a_fresh_16_byte_nonce() -> None:
    token = _sign(_claims())
    a = make_proof(token, HOLDER, challenge=b"c")
    b = make_proof(token, HOLDER, challenge=b"c")
    assert a[:3] == b"\x01\x00\x10" and a[3:19] != b[3:19]


@pytest.mark.parametrize(("size", "ok"), [(7, False), (8, True), (64, True), (65, False)])
def test_a_proof_nonce_is_8_to_64_bytes(size: int, ok: bool) -> None:
    token = _sign(_claims())
    proof = make_proof(token, HOLDER, challenge=b"c", request=b"r", nonce=b"n" * size)
    if ok:
        _present(token, proof=proof)
    else:
        with raises(TokenProofError, "proof nonce must be 8..64 bytes"):
            _present(token, proof=proof)


def test_a_bad_proof_says_why() -> None:
    token = _sign(_claims())
    good = make_proof(token, HOLDER, challenge=b"c", request=b"r", nonce=b"n" * 16)
    with raises(TokenProofError, "unknown proof version"):
        _present(token, proof=b"\x02" + good[1:])
    thief = make_proof(token, Ed25519Signer.generate(), challenge=b"c", request=b"r")
    with raises(TokenProofError, "presenter did not prove possession of the cnf key"):
        _present(token, proof=thief)
    verifier = _verifier()
    _present(token, verifier, proof=good)
    with raises(TokenReplayedError, "proof nonce already seen for this token"):
        _present(token, verifier, proof=good)


# -- validity window and replays --------------------------------------------------------------


def test_leeway_also_admits_a_token_that_is_not_quite_valid_yet() -> None:
    token = _sign(_claims(c5=NOW + 20))
    _present(token, _verifier(FakeClock(NOW + 1), leeway=30))
    with raises(TokenNotYetValidError, f"token valid from {NOW + 20}, now {NOW + 1}"):
        _present(token, _verifier(FakeClock(NOW + 1), leeway=10))


def test_a_proof_is_remembered_as_long_as_leeway_keeps_its_token_valid() -> None:
    token = _sign(_claims())  # exp = NOW + 60
    clock = FakeClock(NOW + 1)
    verifier = _verifier(clock, leeway=30)
    proof = make_proof(token, HOLDER, challenge=b"c", request=b"r")
    _present(token, verifier, proof=proof)
    clock.now = NOW + 80  # expired, but within the leeway
    with pytest.raises(TokenReplayedError):
        _present(token, verifier, proof=proof)


def test_each_single_use_token_is_spent_on_its_own() -> None:
    verifier = _verifier()
    first = _sign(_claims(c7=b"first", **{"c-65600": True}))
    second = _sign(_claims(c7=b"second", **{"c-65600": True}))
    _present(first, verifier)
    _present(second, verifier)
    with raises(TokenReplayedError, f"single-use token {b'first'.hex()} was already used"):
        _present(first, verifier)


def test_a_single_use_token_over_a_channel_is_spent_once() -> None:
    verifier = _verifier()
    token = _sign(_claims(**{"c-65600": True}))
    verifier.verify_holder(token, audience=DEVICE, holder=HOLDER.verifier())
    with pytest.raises(TokenReplayedError):
        verifier.verify_holder(token, audience=DEVICE, holder=HOLDER.verifier())
    with raises(TokenError, "token is bound to another key than the channel's peer"):
        verifier.verify_holder(token, audience=DEVICE, holder=WALLET_KEY.verifier())


def test_a_revoked_token_says_so() -> None:
    revocations = RevocationList()
    revocations.revoke(RevocationKind.TOKEN, b"token-id".hex(), reason="lost", at=0)
    with raises(TokenRevokedError, f"token {b'token-id'.hex()} or its holder is revoked"):
        _present(_sign(_claims()), _verifier(revocations=revocations))


def test_a_replay_cache_entry_lives_up_to_and_including_its_expiry() -> None:
    cache = ReplayCache()
    assert cache.add(b"k", until=10.0, now=5.0)
    assert not cache.add(b"k", until=20.0, now=10.0)
    assert cache.add(b"k", until=20.0, now=10.5)
    assert len(cache) == 1


def test_a_full_replay_cache_keeps_entries_that_expire_now() -> None:
    cache = ReplayCache(capacity=1)
    assert cache.add(b"a", until=10.0, now=0.0)
    with raises(TokenReplayedError, "replay cache full; refusing until entries expire"):
        cache.add(b"b", until=20.0, now=10.0)
    assert cache.add(b"b", until=20.0, now=10.5)


def test_an_untrusted_or_unusable_issuer_is_named() -> None:
    rogue = Ed25519Signer.generate()
    verifier = TokenVerifier({"wallet:mallory": rogue.verifier()}, key_ids={"wallet:mallory": b"w"})
    with raises(TokenIssuerError, f"issuer {WALLET!r} is not trusted here"):
        _present(_sign(_claims()), verifier)
    hmac_issuer = TokenVerifier({WALLET: HmacSha256Key.generate()}, key_ids={WALLET: b"w"})
    with pytest.raises(
        TokenIssuerError, match=rf"^issuer {re.escape(repr(WALLET))} has no CWT-capable key: \S"
    ):
        _present(_sign(_claims()), hmac_issuer)


def test_claims_that_do_not_parse_the_same_twice_are_malformed() -> None:
    # NaN is not equal to itself: the COSE library's parse and ours cannot agree
    with raises(TokenMalformedError, "claims differ between parses"):
        _present(_sign(_claims(c5=float("nan"))))
