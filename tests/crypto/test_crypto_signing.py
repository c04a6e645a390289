"""Authenticity: signers, verifiers and the publish envelope that names its signer."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from iomt.crypto.errors import InvalidSignatureError, KeyFormatError
from iomt.crypto.signing import (
    ALGORITHMS,
    EcdsaP256Signer,
    Ed25519Signer,
    HmacSha256Key,
    SignedPayload,
    Signer,
    load_signer_pem,
    load_verifier_pem,
    verifier_from_public_bytes,
)


def _signers() -> list[Signer]:
    return [Ed25519Signer.generate(), EcdsaP256Signer.generate(), HmacSha256Key.generate()]


@pytest.mark.parametrize("signer", _signers(), ids=lambda s: s.algorithm)
@settings(deadline=None, max_examples=30)
@given(data=st.binary(max_size=512))
def test_sign_verify_round_trip(signer: Signer, data: bytes) -> None:
    sig = signer.sign(data)
    signer.verifier().verify(data, sig)
    with pytest.raises(InvalidSignatureError):
        signer.verifier().verify(data + b"\x00", sig)


@pytest.mark.parametrize("signer", _signers(), ids=lambda s: s.algorithm)
def test_any_flipped_signature_bit_is_refused(signer: Signer) -> None:
    data = b"heart_rate=72"
    sig = signer.sign(data)
    for i in range(len(sig) * 8):
        bad = bytearray(sig)
        bad[i // 8] ^= 1 << (i % 8)
        with pytest.raises(InvalidSignatureError):
            signer.verifier().verify(data, bytes(bad))


def test_algorithm_names_and_a_wrong_key() -> None:
    assert (
        tuple(s.algorithm for s in _signers())
        == ALGORITHMS
        == (
            "ed25519",
            "ecdsa-p256",
            "hmac-sha256",
        )
    )
    a, b = Ed25519Signer.generate(), Ed25519Signer.generate()
    with pytest.raises(InvalidSignatureError):
        b.verifier().verify(b"x", a.sign(b"x"))


def test_keys_load_from_pem_and_public_bytes() -> None:
    for signer in (Ed25519Signer.generate(), EcdsaP256Signer.generate()):
        again = load_signer_pem(signer.private_pem())
        assert again.verifier() == signer.verifier()
        pub = verifier_from_public_bytes(signer.algorithm, signer.verifier().public_bytes())
        pub.verify(b"m", again.sign(b"m"))
    with pytest.raises(KeyFormatError):
        load_signer_pem(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    with pytest.raises(KeyFormatError):
        load_verifier_pem(b"not a pem")
    with pytest.raises(KeyFormatError):
        verifier_from_public_bytes("ed25519", b"\x00" * 31)
    with pytest.raises(KeyFormatError):
        verifier_from_public_bytes("hmac-sha256", b"\x00" * 32)
    with pytest.raises(KeyFormatError):
        HmacSha256Key(b"short")


def test_signed_payload_names_its_signer_and_verifies() -> None:
    for signer in _signers():
        envelope = SignedPayload.create(b'{"hr":72}', signer_id="dev-001", signer=signer)
        decoded = SignedPayload.decode(envelope.encode())
        assert decoded == envelope
        assert decoded.signer == "dev-001"
        assert decoded.algorithm == signer.algorithm
        assert decoded.verify(signer.verifier()) == b'{"hr":72}'


def test_signed_payload_cannot_be_reattributed_or_retyped() -> None:
    dev, mallory = Ed25519Signer.generate(), EcdsaP256Signer.generate()
    envelope = SignedPayload.create(b"bp=120/80", signer_id="dev-001", signer=dev)
    # claiming another signer name breaks the signature (the name is signed)
    forged = SignedPayload("dev-002", envelope.algorithm, envelope.body, envelope.signature)
    with pytest.raises(InvalidSignatureError):
        forged.verify(dev.verifier())
    # a verifier of another algorithm is refused before any signature math
    with pytest.raises(InvalidSignatureError):
        envelope.verify(mallory.verifier())
    tampered = SignedPayload(envelope.signer, envelope.algorithm, b"bp=180/80", envelope.signature)
    with pytest.raises(InvalidSignatureError):
        tampered.verify(dev.verifier())


def test_every_flipped_envelope_byte_is_refused() -> None:
    dev = Ed25519Signer.generate()
    wire = SignedPayload.create(b"spo2=98", signer_id="dev-001", signer=dev).encode()
    for i in range(len(wire)):
        bad = bytearray(wire)
        bad[i] ^= 0x04
        with pytest.raises(InvalidSignatureError):
            SignedPayload.decode(bytes(bad)).verify(dev.verifier())


@settings(deadline=None, max_examples=200)
@given(st.binary(max_size=200))
def test_envelope_decode_fuzz(junk: bytes) -> None:
    for data in (junk, b"IS\x01" + junk):
        try:
            SignedPayload.decode(data)
        except InvalidSignatureError:
            continue


def test_reprs_hide_private_keys() -> None:
    for signer in _signers():
        assert "PRIVATE" not in repr(signer)
    secret = bytes(range(32))
    assert secret.hex()[:16] not in repr(HmacSha256Key(secret))
    assert "redacted" in repr(HmacSha256Key(secret))
