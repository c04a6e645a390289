"""ECDH private keys from raw bytes: what the protocol layers use instead of pyca directly."""

from __future__ import annotations

import pytest

from iomt.crypto.errors import KeyFormatError
from iomt.crypto.keys import EccCurve, EccPrivateKey, EccPublicKey


def test_an_x25519_key_from_32_bytes_is_that_key() -> None:
    # RFC 7748 section 6.1: Alice's private key and public key
    private = bytes.fromhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
    public = bytes.fromhex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
    key = EccPrivateKey.from_bytes(private, EccCurve.X25519)
    assert key.curve is EccCurve.X25519 and key.public_key().public_bytes() == public


def test_a_p256_key_from_its_scalar_agrees_with_its_peer() -> None:
    a = EccPrivateKey.from_bytes((7).to_bytes(32, "big"), EccCurve.P256)
    b = EccPrivateKey.generate()
    assert a.exchange(b.public_key()) == b.exchange(a.public_key())


@pytest.mark.parametrize(
    ("data", "curve"), [(b"short", EccCurve.X25519), (bytes(32), EccCurve.P256)]
)
def test_bytes_that_are_no_key_are_a_key_format_error(data: bytes, curve: EccCurve) -> None:
    with pytest.raises(KeyFormatError):
        EccPrivateKey.from_bytes(data, curve)


def test_a_low_order_x25519_share_is_refused() -> None:
    key = EccPrivateKey.from_bytes(bytes(range(32)), EccCurve.X25519)
    with pytest.raises(KeyFormatError):
        key.exchange(EccPublicKey.from_bytes(bytes(32), EccCurve.X25519))
