"""Publish (§III-E) on its own: envelopes, origin proofs, data-key reuse and its limits.

Written against mutation testing (docs/testing.md): each authentication check, each key
reuse bound and each encoding is pinned by a test that fails when it is broken."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from iomt.core.publish import (
    ORIGIN_MAC,
    ORIGIN_SIGNATURE,
    Envelope,
    Opener,
    Sealer,
    describe,
    needs_link_key,
    origin_message,
    origin_proof,
    recipient_key_for,
    requester_public_key,
    verify_origin,
)
from iomt.crypto.abe import AttributeAuthority
from iomt.crypto.errors import DecryptionError, InvalidSignatureError, MalformedCiphertextError
from iomt.crypto.keys import EccPrivateKey, SymmetricKey
from iomt.crypto.signing import EcdsaP256Signer, Ed25519Signer, HmacSha256Key
from iomt.crypto.techniques import (
    NO_KEY,
    AbePolicy,
    AssociatedData,
    EccAttrRecipient,
    RecipientKey,
    get_technique,
)
from iomt.errors import AuthenticationError, LocalProtocolError

DEVICE, SENDER, ME = "iomt://w/dev", "iomt://w/conv", "iomt://w/dr"


def raises(kind: type[Exception], message: str):  # type: ignore[no-untyped-def]
    return pytest.raises(kind, match=f"^{re.escape(message)}$")


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def _envelope(**changes: object) -> Envelope:
    fields: dict = {
        "request_id": "r",
        "device_uri": DEVICE,
        "sender_uri": SENDER,
        "recipient_uri": ME,
        "security_technique": "ecc",
        "seq": 7,
        "stamp_ns": 9,
        "key_header": b"H",
        "ciphertext": b"C",
        "sender_certificate": b"cert",
        "origin_signature": b"origin",
    }
    fields.update(changes)
    return Envelope(**fields)


# -- envelopes ------------------------------------------------------------------------------


def test_an_envelope_signs_a_fixed_encoding_of_every_field_but_its_signature() -> None:
    def lp(b: bytes) -> bytes:
        return len(b).to_bytes(4, "big") + b

    env = _envelope(stamp_ns=-1, signature=b"S", signature_algorithm="ed25519")
    expected = (
        b"iomt/envelope/v1"
        + b"".join(lp(s) for s in (b"r", DEVICE.encode(), SENDER.encode(), ME.encode()))
        + lp(b"ecc")
        + lp(b"ed25519")
        + (7).to_bytes(8, "big")
        + b"\xff" * 8  # a negative stamp is its 64-bit two's complement
        + lp(b"H")
        + lp(b"C")
        + lp(b"cert")
        + lp(b"origin")
    )
    assert env.signed_bytes() == expected
    assert env.signed_bytes("hmac-sha256") == expected.replace(lp(b"ed25519"), lp(b"hmac-sha256"))


@pytest.mark.parametrize("signer", [Ed25519Signer, EcdsaP256Signer, HmacSha256Key])
def test_a_signed_envelope_verifies_and_any_changed_field_does_not(signer: type) -> None:
    key = signer.generate()
    env = _envelope().signed_by(key)
    assert env.signature_algorithm == key.algorithm
    env.verify(key.verifier())
    for name, value in [
        ("request_id", "r2"),
        ("device_uri", "iomt://w/other"),
        ("seq", 8),
        ("stamp_ns", 10),
        ("key_header", b"h"),
        ("ciphertext", b"c"),
        ("sender_certificate", b"c2"),
        ("origin_signature", b"o2"),
    ]:
        with pytest.raises(InvalidSignatureError):
            replace(env, **{name: value}).verify(key.verifier())


def test_an_unauthenticated_envelope_is_refused() -> None:
    with raises(AuthenticationError, "envelope r is not authenticated"):
        _envelope().verify(Ed25519Signer.generate().verifier())


def test_an_envelope_authenticated_with_another_algorithm_is_refused() -> None:
    env = _envelope().signed_by(HmacSha256Key.generate())
    with raises(
        AuthenticationError, "envelope r authenticated with 'hmac-sha256', expected 'ed25519'"
    ):
        env.verify(Ed25519Signer.generate().verifier())


def test_describe_never_shows_the_ciphertext() -> None:
    env = _envelope(ciphertext=b"secret reading").signed_by(HmacSha256Key.generate())
    assert describe(env) == {
        "request_id": "r",
        "device": DEVICE,
        "sender": SENDER,
        "technique": "ecc",
        "auth": "hmac-sha256",
        "bytes": 14,
    }


# -- origin proofs ----------------------------------------------------------------------------


def test_an_origin_message_is_a_fixed_encoding() -> None:
    assert origin_message("r", "d", b"xy") == (
        b"iomt/origin-signature/v1\x00\x00\x00\x01r\x00\x00\x00\x01d\x00\x00\x00\x02xy"
    )


def test_an_origin_proof_is_a_mac_with_a_session_else_a_signature() -> None:
    msg = origin_message("r", DEVICE, b"reading")
    mac, signer = HmacSha256Key.generate(), Ed25519Signer.generate()
    by_mac = origin_proof(msg, mac=mac, signer=signer)
    assert by_mac == bytes([ORIGIN_MAC]) + mac.sign(msg)
    by_sig = origin_proof(msg, mac=None, signer=signer)
    assert by_sig[0] == ORIGIN_SIGNATURE
    signer.verifier().verify(msg, by_sig[1:])
    verify_origin(by_mac, msg, mac=mac, device_key=None)
    verify_origin(by_sig, msg, mac=None, device_key=signer.verifier())
    with pytest.raises(InvalidSignatureError):
        verify_origin(by_mac, msg + b"!", mac=mac, device_key=None)
    with pytest.raises(InvalidSignatureError):
        verify_origin(by_sig, msg + b"!", mac=None, device_key=signer.verifier())


@pytest.mark.parametrize(
    ("proof", "mac", "key"),
    [
        (bytes([ORIGIN_MAC]) + b"x" * 32, False, True),  # a MAC, but we hold no session key
        (bytes([ORIGIN_SIGNATURE]) + b"x" * 64, True, False),  # a signature, but no device key
        (bytes([3]) + b"x" * 64, True, True),  # an unknown kind
    ],
)
def test_an_origin_proof_of_a_kind_we_hold_no_key_for_is_refused(
    proof: bytes, mac: bool, key: bool
) -> None:
    with raises(AuthenticationError, "origin proof of a kind we hold no key for"):
        verify_origin(
            proof,
            b"m",
            mac=HmacSha256Key.generate() if mac else None,
            device_key=Ed25519Signer.generate().verifier() if key else None,
        )


def test_a_missing_origin_proof_is_refused() -> None:
    with raises(AuthenticationError, "no origin proof from the device"):
        verify_origin(b"", b"m", mac=HmacSha256Key.generate(), device_key=None)


# -- sealing and opening ---------------------------------------------------------------------


def _seal(sealer: Sealer, key: RecipientKey, technique: str = "sym-aes", **kw: object):  # type: ignore[no-untyped-def]
    args: dict = {
        "technique": technique,
        "recipient_uri": ME,
        "recipient_key": key,
        "device_uri": DEVICE,
        "request_id": "r",
        "seq": 7,
    }
    args.update(kw)
    header, ct = sealer.seal(b"reading", **args)
    return _envelope(
        sender_uri=sealer.sender_uri,
        security_technique=args["technique"],
        recipient_uri=args["recipient_uri"],
        device_uri=args["device_uri"],
        request_id=args["request_id"],
        seq=args["seq"],
        key_header=header,
        ciphertext=ct,
    )


def test_a_sealed_reading_opens_only_for_its_exact_context() -> None:
    key = SymmetricKey.generate()
    env = _seal(Sealer(SENDER), key)
    assert len(env.ciphertext) == 12 + len(b"reading") + 16
    opener = Opener(ME)
    assert opener.open(env, key) == b"reading"  # the data key is cached from here on
    for name, value in [
        ("sender_uri", "iomt://w/x"),
        ("device_uri", "iomt://w/x"),
        ("seq", 8),
        ("request_id", "r2"),
    ]:
        with raises(
            DecryptionError,
            f"envelope {replace(env, **{name: value}).request_id}: tag does not verify",
        ):
            opener.open(replace(env, **{name: value}), key)


def test_a_data_key_is_reused_up_to_its_use_limit() -> None:
    sealer = Sealer(SENDER, max_uses=2)
    key = SymmetricKey.generate()
    headers = [_seal(sealer, key).key_header for _ in range(5)]
    assert headers[0] == headers[1] != headers[2] == headers[3] != headers[4]
    assert sealer.keys_created == 3


def test_a_data_key_is_reused_up_to_its_age_limit() -> None:
    clock = Clock()
    sealer = Sealer(SENDER, clock=clock, max_age_s=10.0)
    key = SymmetricKey.generate()
    first = _seal(sealer, key).key_header
    clock.t += 10.0  # exactly the age limit: still the same key
    assert _seal(sealer, key).key_header == first
    clock.t += 0.001
    assert _seal(sealer, key).key_header != first
    assert sealer.keys_created == 2
    assert (Sealer(SENDER).max_uses, Sealer(SENDER).max_age_s) == (1000, 600.0)


def test_each_recipient_key_gets_its_own_data_key() -> None:
    sealer = Sealer(SENDER)
    a, b = SymmetricKey.generate(), SymmetricKey.generate()
    assert _seal(sealer, a).key_header != _seal(sealer, b).key_header
    assert _seal(sealer, a, recipient_uri="iomt://w/other").key_header != (
        _seal(sealer, a).key_header
    )
    e1, e2 = EccPrivateKey.generate().public_key(), EccPrivateKey.generate().public_key()
    h1 = _seal(sealer, e1, "ecc").key_header
    assert _seal(sealer, e1, "ecc").key_header == h1
    assert _seal(sealer, e2, "ecc").key_header != h1
    assert sealer.keys_created == 5


@pytest.fixture(scope="module")
def abe() -> AttributeAuthority:
    return AttributeAuthority.setup()


def test_policies_and_attribute_recipients_get_their_own_data_keys(
    abe: AttributeAuthority,
) -> None:
    sealer = Sealer(SENDER)
    p1 = AbePolicy.parse(abe.public_params, "role:a")
    p2 = AbePolicy.parse(abe.public_params, "role:b")
    e1, e2 = EccPrivateKey.generate().public_key(), EccPrivateKey.generate().public_key()
    headers = {
        _seal(sealer, p1, "cpabe").key_header,
        _seal(sealer, p1, "cpabe").key_header,
        _seal(sealer, p2, "cpabe").key_header,
        _seal(sealer, EccAttrRecipient(e1, p1), "ecc-attr").key_header,
        _seal(sealer, EccAttrRecipient(e1, p1), "ecc-attr").key_header,
        _seal(sealer, EccAttrRecipient(e2, p1), "ecc-attr").key_header,
        _seal(sealer, EccAttrRecipient(e1, p2), "ecc-attr").key_header,
    }
    assert len(headers) == sealer.keys_created == 5


def test_technique_none_is_framed_plaintext_with_no_key_header() -> None:
    env = _seal(Sealer(SENDER), NO_KEY, "none")
    assert env.key_header == b"" and b"reading" in env.ciphertext
    assert Opener(ME).open(env, NO_KEY) == b"reading"
    with raises(MalformedCiphertextError, "technique none carries no key header"):
        Opener(ME).open(replace(env, key_header=b"H"), NO_KEY)


def test_an_envelope_for_another_recipient_is_not_opened() -> None:
    key = SymmetricKey.generate()
    env = _seal(Sealer(SENDER), key, recipient_uri="iomt://w/other")
    with raises(DecryptionError, f"envelope is for iomt://w/other, not {ME}"):
        Opener(ME).open(env, key)


def test_an_opener_opens_each_header_once_within_its_cache() -> None:
    key = SymmetricKey.generate()
    s1, s2 = Sealer(SENDER), Sealer(SENDER)
    one, two = _seal(s1, key), _seal(s2, key)
    opener = Opener(ME, max_cached=1)
    for env in (one, one, two, two, one):
        assert opener.open(env, key) == b"reading"
    assert opener.headers_opened == 3  # one, two (evicting one), one again
    big = Opener(ME)
    for env in (one, two, one, two):
        big.open(env, key)
    assert big.headers_opened == 2


def test_a_data_key_of_the_wrong_size_is_malformed() -> None:
    key = SymmetricKey.generate()
    aad = AssociatedData(SENDER, ME, "", 0, "iomt/data-key/v1")
    header = get_technique("sym-aes").seal(b"k" * 31, key, aad)
    env = replace(_seal(Sealer(SENDER), key), key_header=header)
    with raises(MalformedCiphertextError, "data key has the wrong size"):
        Opener(ME).open(env, key)


def test_a_ciphertext_shorter_than_nonce_and_tag_is_malformed() -> None:
    key = SymmetricKey.generate()
    env = _seal(Sealer(SENDER), key)
    with raises(MalformedCiphertextError, "ciphertext too short"):
        Opener(ME).open(replace(env, ciphertext=env.ciphertext[:27]), key)
    with raises(DecryptionError, "envelope r: tag does not verify"):
        Opener(ME).open(replace(env, ciphertext=env.ciphertext[:28]), key)


# -- what sealing needs ------------------------------------------------------------------------


def test_each_technique_seals_to_what_it_needs(abe: AttributeAuthority) -> None:
    ecc = EccPrivateKey.generate().public_key()
    policy = AbePolicy.parse(abe.public_params, "role:a")
    link = SymmetricKey.generate()
    kw = {"requester_key": ecc, "policy": policy, "link_key": link}
    assert recipient_key_for("none", **kw) is NO_KEY
    assert recipient_key_for("sym-aes", **kw) is link
    assert recipient_key_for("sym-3des", **kw) is link
    assert recipient_key_for("ecc", **kw) is ecc
    assert recipient_key_for("cpabe", **kw) is policy
    both = recipient_key_for("ecc-attr", **kw)
    assert isinstance(both, EccAttrRecipient) and (both.ecc, both.abe) == (ecc, policy)
    assert needs_link_key("sym-aes") and needs_link_key("sym-3des")
    assert not needs_link_key("ecc") and not needs_link_key("none")
    assert requester_public_key(ecc.public_bytes()) == ecc


@pytest.mark.parametrize(
    ("technique", "missing", "message"),
    [
        ("sym-aes", "link_key", "sym-aes needs a key shared with the requester"),
        ("sym-3des", "link_key", "sym-3des needs a key shared with the requester"),
        ("ecc", "requester_key", "ecc needs the requester's encryption key"),
        ("cpabe", "policy", "cpabe needs the device's access policy"),
        ("ecc-attr", "requester_key", "ecc-attr needs the requester's key and a policy"),
        ("ecc-attr", "policy", "ecc-attr needs the requester's key and a policy"),
        ("rot13", "", "no recipient key rule for technique 'rot13'"),
    ],
)
def test_sealing_without_what_a_technique_needs_is_refused(
    abe: AttributeAuthority, technique: str, missing: str, message: str
) -> None:
    kw: dict = {
        "requester_key": EccPrivateKey.generate().public_key(),
        "policy": AbePolicy.parse(abe.public_params, "role:a"),
        "link_key": SymmetricKey.generate(),
    }
    if missing:
        kw[missing] = None
    with raises(LocalProtocolError, message):
        recipient_key_for(technique, **kw)
