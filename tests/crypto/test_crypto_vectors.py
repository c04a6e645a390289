"""Known-answer and invalid vectors, checked through iomt's own wrappers."""

from __future__ import annotations

import pytest
from crypto_vectors import error, load, params, unhex
from cryptography.hazmat.primitives.asymmetric import ec, x25519

from iomt.crypto.keys import EccPrivateKey, EccPublicKey, SymmetricKey
from iomt.crypto.primitives import AesGcm, hkdf_expand, hkdf_extract, hkdf_sha256
from iomt.crypto.signing import EcdsaP256Verifier, Ed25519Signer, Ed25519Verifier
from iomt.crypto.techniques import NO_KEY, AbePolicy, AssociatedData, get_technique
from iomt.crypto.tokens import TokenVerifier


@pytest.mark.parametrize("v", params("aes_gcm", valid=True))
def test_aes_gcm_known_answers(v: dict) -> None:
    aead = AesGcm(unhex(v["key"]))
    sealed = aead.encrypt(unhex(v["iv"]), unhex(v["pt"]), unhex(v["aad"]))
    assert sealed == unhex(v["ct"] + v["tag"])
    assert aead.decrypt(unhex(v["iv"]), sealed, unhex(v["aad"])) == unhex(v["pt"])


@pytest.mark.parametrize("v", params("aes_gcm", valid=False))
def test_aes_gcm_invalid_cases_are_refused(v: dict) -> None:
    aead = AesGcm(unhex(v["key"]))
    with pytest.raises(error(v["error"])):
        aead.decrypt(unhex(v["iv"]), unhex(v["ct"] + v["tag"]), unhex(v["aad"]))


@pytest.mark.parametrize("v", params("hkdf_sha256"))
def test_hkdf_rfc5869(v: dict) -> None:
    ikm, salt, info = unhex(v["ikm"]), unhex(v["salt"]), unhex(v["info"])
    prk = hkdf_extract(salt, ikm)
    assert prk == unhex(v["prk"])
    assert hkdf_expand(prk, info, v["length"]) == unhex(v["okm"])
    assert hkdf_sha256(ikm, salt=salt or None, info=info, length=v["length"]) == unhex(v["okm"])


@pytest.mark.parametrize("v", params("ed25519", valid=True))
def test_ed25519_rfc8032(v: dict) -> None:
    signer = Ed25519Signer.from_private_bytes(unhex(v["secret"]))
    assert signer.verifier().public_bytes() == unhex(v["public"])
    assert signer.sign(unhex(v["message"])) == unhex(v["signature"])
    Ed25519Verifier.from_public_bytes(unhex(v["public"])).verify(
        unhex(v["message"]), unhex(v["signature"])
    )


@pytest.mark.parametrize("v", params("ed25519", valid=False))
def test_ed25519_invalid_signatures(v: dict) -> None:
    with pytest.raises(error(v["error"])):
        Ed25519Verifier.from_public_bytes(unhex(v["public"])).verify(
            unhex(v["message"]), unhex(v["signature"])
        )


@pytest.mark.parametrize("v", params("ecdsa_p256"))
def test_ecdsa_p256_rfc6979(v: dict) -> None:
    verifier = EcdsaP256Verifier.from_public_bytes(unhex(v["public"]))
    if v["valid"]:
        verifier.verify(unhex(v["message"]), unhex(v["signature"]))
    else:
        with pytest.raises(error(v["error"])):
            verifier.verify(unhex(v["message"]), unhex(v["signature"]))


@pytest.mark.parametrize("v", params("x25519"))
def test_x25519_rfc7748(v: dict) -> None:
    priv = EccPrivateKey(x25519.X25519PrivateKey.from_private_bytes(unhex(v["scalar"])))
    peer = EccPublicKey.from_bytes(unhex(v["u"]), priv.curve)
    if v["valid"]:
        assert priv.exchange(peer) == unhex(v["shared"])
    else:
        with pytest.raises(error(v["error"])):
            priv.exchange(peer)


def _rfc8392_verifier(now: float) -> TokenVerifier:
    a3 = load("cwt")["rfc8392_a3"]
    key = a3["key"]
    pub = ec.EllipticCurvePublicNumbers(
        int(key["x"], 16), int(key["y"], 16), ec.SECP256R1()
    ).public_key()
    return TokenVerifier(
        {a3["issuer"]: EcdsaP256Verifier(pub)},
        clock=lambda: now,
        key_ids={a3["issuer"]: unhex(key["kid"])},
    )


def test_rfc8392_a3_token_verifies_through_our_cose_layer() -> None:
    a3 = load("cwt")["rfc8392_a3"]
    claims = _rfc8392_verifier(a3["claims"]["iat"]).decode(unhex(a3["token"]))
    expected = a3["claims"]
    assert claims == {
        1: expected["iss"],
        2: expected["sub"],
        3: expected["aud"],
        4: expected["exp"],
        5: expected["nbf"],
        6: expected["iat"],
        7: unhex(expected["cti"]),
    }


@pytest.mark.parametrize(
    ("offset", "error_name"),
    [
        (-1, "TokenNotYetValidError"),  # before nbf
        (0, "TokenMalformedError"),  # in its window: signature and time pass, but no cnf/scope
        (None, "TokenExpiredError"),  # at exp
    ],
)
def test_rfc8392_a3_token_time_checks(offset: int | None, error_name: str) -> None:
    a3 = load("cwt")["rfc8392_a3"]
    c = a3["claims"]
    now = c["exp"] if offset is None else c["nbf"] + offset
    verifier = _rfc8392_verifier(now)
    with pytest.raises(error(error_name)):
        verifier.verify(unhex(a3["token"]), audience=c["aud"], proof=b"", challenge=b"")


@pytest.mark.parametrize("v", params("cwt", key="invalid"))
def test_invalid_tokens_are_refused(v: dict) -> None:
    a3 = load("cwt")["rfc8392_a3"]
    verifier = _rfc8392_verifier(a3["claims"]["iat"])
    with pytest.raises(error(v["error"])):
        verifier.decode(unhex(v["token"]))


@pytest.fixture(scope="module")
def any_keys(request: pytest.FixtureRequest) -> dict:
    from iomt.crypto.abe.fame import AttributeAuthority
    from iomt.crypto.techniques import EccAttrSecret

    auth = AttributeAuthority.setup()
    fame_key = auth.keygen(["a", "b"])
    ecc = EccPrivateKey.generate()
    sym = SymmetricKey(bytes(32))
    return {
        "none": NO_KEY,
        "sym-3des": sym,
        "sym-aes": sym,
        "ecc": ecc,
        "cpabe": fame_key,
        "ecc-attr": EccAttrSecret(ecc, fame_key),
        "_policy": AbePolicy.parse(auth.public_params, "a"),
    }


@pytest.mark.parametrize("v", params("ciphertexts_invalid"))
def test_invalid_ciphertexts_are_refused(v: dict, any_keys: dict) -> None:
    aad = AssociatedData("s", "r", "d", 0)
    with pytest.raises(error(v["error"])):
        get_technique(v["technique"]).open(unhex(v["ciphertext"]), any_keys[v["technique"]], aad)
