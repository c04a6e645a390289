"""The ledger's view of a key: iomt.crypto.signing's signers and verifiers, adapted."""

from __future__ import annotations

import pytest

from iomt.crypto.signing import EcdsaP256Signer, Ed25519Signer
from iomt.errors import AuthenticationError
from iomt.ledger import (
    LedgerKey,
    LedgerKeyVerifier,
    LedgerSigner,
    LedgerVerifier,
    ed25519_ledger_verifier,
    key_id,
)


@pytest.mark.parametrize("make", [Ed25519Signer.generate, EcdsaP256Signer.generate])
def test_a_crypto_signer_signs_for_the_ledger(make) -> None:  # type: ignore[no-untyped-def]
    signer = make()
    key = LedgerKey(signer)
    assert isinstance(key, LedgerSigner) and key.signer is signer
    assert key.public_key_bytes == signer.verifier().public_bytes()
    public = LedgerKeyVerifier(key.verifier)
    assert isinstance(public, LedgerVerifier) and not isinstance(public, LedgerSigner)
    public.verify(b"head", key.sign(b"head"))
    with pytest.raises(AuthenticationError):
        public.verify(b"other head", key.sign(b"head"))


def test_an_auditor_checks_with_the_raw_ed25519_key() -> None:
    key = LedgerKey(Ed25519Signer.from_private_bytes(bytes([7]) * 32))
    verifier = ed25519_ledger_verifier(key.public_key_bytes)
    assert key_id(verifier.public_key_bytes) == key_id(key.public_key_bytes)
    verifier.verify(b"x", key.sign(b"x"))
    with pytest.raises(AuthenticationError, match="does not verify"):
        verifier.verify(b"x", bytes(64))


@pytest.mark.parametrize("raw", [b"", bytes(31), bytes(33)])
def test_bytes_that_are_no_ed25519_key_are_an_authentication_error(raw: bytes) -> None:
    with pytest.raises(AuthenticationError, match="not a valid 32-byte Ed25519 public key"):
        ed25519_ledger_verifier(raw)
