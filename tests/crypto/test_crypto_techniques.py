"""The security techniques: round trips, binding, tampering, wrong keys, policies, collusion."""

from __future__ import annotations

import os
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from iomt.crypto.abe.fame import AttributeAuthority, FamePublicParams, FameUserKey
from iomt.crypto.errors import (
    DecryptionError,
    KeyFormatError,
    MalformedCiphertextError,
    PolicyNotSatisfiedError,
    PolicySyntaxError,
    UnknownTechniqueError,
    WrongKeyTypeError,
)
from iomt.crypto.keys import EccCurve, EccPrivateKey, EccPublicKey, SymmetricKey
from iomt.crypto.techniques import (
    NO_KEY,
    TECHNIQUE_NAMES,
    AbePolicy,
    AssociatedData,
    Capability,
    EccAttrRecipient,
    EccAttrSecret,
    get_technique,
    technique_of,
    techniques_for,
)
from iomt.errors import AuthenticationError, AuthorizationError, ConfigurationError

AAD = AssociatedData("provider:dr-bob", "provider:dr-bob", "iomt://F1/dev-001", 7, "req-1")
POLICY = "role:cardiologist AND facility:F1"
HOLDER = ["role:cardiologist", "facility:F1"]
# what opening tampered bytes may raise: a failed open, or (if the tampered byte was in
# the policy) a policy the key no longer satisfies — always typed, never anything else
TAMPER_ERRORS = (DecryptionError, PolicyNotSatisfiedError)


@pytest.fixture(scope="module")
def material(authority: AttributeAuthority) -> dict:
    ecc = EccPrivateKey.generate()
    sym = SymmetricKey.generate()
    policy = AbePolicy.parse(authority.public_params, POLICY)
    user = authority.keygen(HOLDER)
    return {
        "none": (NO_KEY, NO_KEY),
        "sym-3des": (sym, sym),
        "sym-aes": (sym, sym),
        "ecc": (ecc.public_key(), ecc),
        "cpabe": (policy, user),
        "ecc-attr": (EccAttrRecipient(ecc.public_key(), policy), EccAttrSecret(ecc, user)),
    }


def _seal_open(material: dict, name: str, plaintext: bytes, aad: AssociatedData) -> bytes:
    tech = get_technique(name)
    recipient, secret = material[name]
    return tech.open(tech.seal(plaintext, recipient, aad), secret, aad)


ads = st.builds(
    AssociatedData,
    st.text(max_size=20),
    st.text(max_size=20),
    st.text(max_size=20),
    st.integers(0, 2**64 - 1),
    st.none() | st.text(max_size=20),
)


@pytest.mark.parametrize("name", ["none", "sym-3des", "sym-aes", "ecc"])
@settings(deadline=None, max_examples=60)
@given(plaintext=st.binary(max_size=2048), aad=ads)
def test_round_trip_fast_techniques(material: dict, name: str, plaintext: bytes, aad) -> None:
    assert _seal_open(material, name, plaintext, aad) == plaintext


@pytest.mark.parametrize("name", ["cpabe", "ecc-attr"])
@settings(deadline=None, max_examples=6)
@given(plaintext=st.binary(max_size=1024), aad=ads)
def test_round_trip_abe_techniques(material: dict, name: str, plaintext: bytes, aad) -> None:
    assert _seal_open(material, name, plaintext, aad) == plaintext


@settings(deadline=None)
@given(ads, ads)
def test_associated_data_encoding_is_injective(a: AssociatedData, b: AssociatedData) -> None:
    assert (a.encode() == b.encode()) == (a == b)


def test_x25519_recipients_work(material: dict) -> None:
    key = EccPrivateKey.generate(EccCurve.X25519)
    tech = get_technique("ecc")
    assert tech.open(tech.seal(b"hr=72", key.public_key(), AAD), key, AAD) == b"hr=72"
    with pytest.raises(DecryptionError):  # a P-256 key cannot open an X25519 ciphertext
        tech.open(tech.seal(b"hr=72", key.public_key(), AAD), material["ecc"][1], AAD)


@pytest.mark.parametrize("name", [n for n in TECHNIQUE_NAMES if n != "none"])
@pytest.mark.parametrize(
    "change",
    [
        {"sender": "provider:eve"},
        {"recipient": "provider:eve"},
        {"device": "iomt://F1/dev-002"},
        {"seq": 8},
        {"request_id": None},
        {"request_id": "req-2"},
    ],
    ids=lambda c: next(iter(c)),
)
def test_ciphertext_is_bound_to_its_associated_data(material: dict, name: str, change) -> None:
    tech = get_technique(name)
    recipient, secret = material[name]
    sealed = tech.seal(b"systolic=120", recipient, AAD)
    with pytest.raises(DecryptionError):
        tech.open(sealed, secret, replace(AAD, **change))


def test_none_is_plaintext_on_the_wire_and_the_others_are_not(material: dict) -> None:
    record = os.urandom(64)
    for name in TECHNIQUE_NAMES:
        tech = get_technique(name)
        sealed = tech.seal(record, material[name][0], AAD)
        assert (record in sealed) is (not tech.encrypts), name
        assert technique_of(sealed) == name


@pytest.mark.parametrize("name", [n for n in TECHNIQUE_NAMES if n != "none"])
def test_every_flipped_byte_is_refused(material: dict, name: str) -> None:
    tech = get_technique(name)
    recipient, secret = material[name]
    sealed = tech.seal(b"heart_rate=72;spo2=98", recipient, AAD)
    # all positions for the small formats; a stride through the (large) ABE headers
    step = 1 if len(sealed) < 200 else 37
    positions = sorted({*range(0, len(sealed), step), len(sealed) - 1})
    for i in positions:
        bad = bytearray(sealed)
        bad[i] ^= 0x01
        with pytest.raises(TAMPER_ERRORS):
            tech.open(bytes(bad), secret, AAD)


@pytest.mark.parametrize("name", TECHNIQUE_NAMES)
def test_every_truncation_is_refused(material: dict, name: str) -> None:
    tech = get_technique(name)
    recipient, secret = material[name]
    sealed = tech.seal(b"diastolic=80", recipient, AAD)
    step = 1 if len(sealed) < 200 else 41
    for cut in range(0, len(sealed) - (len(b"diastolic=80") + 1 if name == "none" else 0), step):
        if name == "none" and cut >= 2:
            continue  # a truncated plaintext frame is still a (shorter) plaintext frame
        with pytest.raises(TAMPER_ERRORS):
            tech.open(sealed[:cut], secret, AAD)


@pytest.mark.parametrize("name", TECHNIQUE_NAMES)
@settings(deadline=None, max_examples=80)
@given(junk=st.binary(max_size=600))
def test_garbage_is_refused_with_a_typed_error(material: dict, name: str, junk: bytes) -> None:
    tech = get_technique(name)
    secret = material[name][1]
    for data in (junk, tech.header + junk):
        try:
            tech.open(data, secret, AAD)
        except (AuthenticationError, AuthorizationError):
            continue
        assert name == "none" and data.startswith(tech.header)


def test_wrong_keys_are_refused(authority: AttributeAuthority, material: dict) -> None:
    other_sym = SymmetricKey.generate()
    other_ecc = EccPrivateKey.generate()
    other_authority = AttributeAuthority.setup()
    foreign_user = other_authority.keygen(HOLDER)
    cases = {
        "sym-3des": other_sym,
        "sym-aes": other_sym,
        "ecc": other_ecc,
        "cpabe": foreign_user,
        "ecc-attr": EccAttrSecret(other_ecc, material["ecc-attr"][1].abe),
    }
    for name, wrong in cases.items():
        tech = get_technique(name)
        sealed = tech.seal(b"x", material[name][0], AAD)
        with pytest.raises(DecryptionError):
            tech.open(sealed, wrong, AAD)


def test_unsatisfied_policy_is_an_authorization_error(
    authority: AttributeAuthority, material: dict
) -> None:
    nurse = authority.keygen(["role:nurse", "facility:F1"])
    ecc = material["ecc"][1]
    for name, secret in (("cpabe", nurse), ("ecc-attr", EccAttrSecret(ecc, nurse))):
        tech = get_technique(name)
        sealed = tech.seal(b"x", material[name][0], AAD)
        with pytest.raises(PolicyNotSatisfiedError) as info:
            tech.open(sealed, secret, AAD)
        assert isinstance(info.value, AuthorizationError)


def test_ecc_attr_needs_both_halves(authority: AttributeAuthority, material: dict) -> None:
    tech = get_technique("ecc-attr")
    recipient, secret = material["ecc-attr"]
    sealed = tech.seal(b"bp=120/80", recipient, AAD)
    # attributes alone (another ECC key) and the ECC key alone (no matching attributes)
    with pytest.raises(DecryptionError):
        tech.open(sealed, EccAttrSecret(EccPrivateKey.generate(), secret.abe), AAD)
    with pytest.raises(PolicyNotSatisfiedError):
        tech.open(sealed, EccAttrSecret(secret.ecc, authority.keygen(["role:nurse"])), AAD)
    # and neither half's technique opens it on its own
    with pytest.raises(MalformedCiphertextError):
        get_technique("cpabe").open(sealed, secret.abe, AAD)
    with pytest.raises(MalformedCiphertextError):
        get_technique("ecc").open(sealed, secret.ecc, AAD)


def test_colluding_users_cannot_combine_attribute_keys(authority: AttributeAuthority) -> None:
    """FAME keys are randomized per user: halves of two keys do not make a key."""
    policy = AbePolicy.parse(authority.public_params, "role:cardiologist AND facility:F1")
    alice = authority.keygen(["role:cardiologist"])
    bob = authority.keygen(["facility:F1"])
    tech = get_technique("cpabe")
    sealed = tech.seal(b"ecg", policy, AAD)
    for own in (alice, bob):
        with pytest.raises(PolicyNotSatisfiedError):
            tech.open(sealed, own, AAD)
    merged = {**alice.k, **bob.k}
    for base in (alice, bob):
        colluded = FameUserKey(
            base.params_id, alice.attributes | bob.attributes, base.k0, base.kp, merged
        )
        with pytest.raises(DecryptionError):
            tech.open(sealed, colluded, AAD)
    # sanity: an honestly issued key for the union opens it
    assert tech.open(sealed, authority.keygen(["role:cardiologist", "facility:F1"]), AAD) == b"ecg"


def test_threshold_and_repeated_attribute_policies(authority: AttributeAuthority) -> None:
    tech = get_technique("cpabe")
    cases = [
        (
            "2 of (role:doctor, dept:icu, shift:night) AND facility:F1",
            ["dept:icu", "shift:night", "facility:F1"],
            ["role:doctor", "facility:F1"],
        ),
        (
            "(role:doctor AND facility:F1) OR (role:nurse AND facility:F1)",
            ["role:nurse", "facility:F1"],
            ["role:nurse", "facility:F2"],
        ),
    ]
    for text, good, bad in cases:
        policy = AbePolicy.parse(authority.public_params, text)
        sealed = tech.seal(b"spo2=97", policy, AAD)
        assert tech.open(sealed, authority.keygen(good), AAD) == b"spo2=97"
        with pytest.raises(PolicyNotSatisfiedError):
            tech.open(sealed, authority.keygen(bad), AAD)


def test_and_joined_attributes_travel_as_one_row(authority: AttributeAuthority) -> None:
    tech = get_technique("cpabe")
    attrs = [f"attr:{i}" for i in range(10)]
    user = authority.keygen(attrs)
    sizes = {}
    for shape, text in (("and", " AND ".join(attrs)), ("or", " OR ".join(attrs))):
        sealed = tech.seal(b"x", AbePolicy.parse(authority.public_params, text), AAD)
        assert tech.open(sealed, user, AAD) == b"x"
        sizes[shape] = len(sealed) - len(text)
    assert sizes["or"] - sizes["and"] == 9 * 3 * 48  # nine fewer 3-point G1 rows


def test_policies_beyond_the_reuse_bound_are_refused(authority: AttributeAuthority) -> None:
    policy = AbePolicy.parse(authority.public_params, "(a AND b) OR (a AND c) OR (a AND d)")
    with pytest.raises(PolicySyntaxError):
        get_technique("cpabe").seal(b"x", policy, AAD)


def test_wrong_key_types_are_a_local_error(material: dict) -> None:
    for name in TECHNIQUE_NAMES:
        tech = get_technique(name)
        wrong = material["sym-aes"][0] if name == "none" else NO_KEY
        with pytest.raises(WrongKeyTypeError):
            tech.seal(b"x", wrong, AAD)
        sealed = tech.seal(b"x", material[name][0], AAD)
        with pytest.raises(WrongKeyTypeError):
            tech.open(sealed, wrong, AAD)
        with pytest.raises(WrongKeyTypeError):  # a public key where the secret belongs
            tech.open(sealed, material["ecc"][0], AAD)


def test_registry_and_capabilities() -> None:
    assert TECHNIQUE_NAMES == ("none", "sym-3des", "sym-aes", "ecc", "cpabe", "ecc-attr")
    assert [n for n in TECHNIQUE_NAMES if get_technique(n).weak] == ["sym-3des"]
    assert techniques_for(Capability.NONE) == ("none",)
    assert techniques_for(Capability.SYMMETRIC) == ("none", "sym-3des", "sym-aes")
    assert techniques_for(Capability.ECC) == ("none", "sym-3des", "sym-aes", "ecc")
    assert techniques_for(Capability.ABE) == TECHNIQUE_NAMES
    with pytest.raises(UnknownTechniqueError) as info:
        get_technique("des")
    assert isinstance(info.value, ConfigurationError)
    with pytest.raises(MalformedCiphertextError):
        technique_of(b"\x01\x99")


def test_fame_keys_and_params_serialize(authority: AttributeAuthority) -> None:
    user = authority.keygen(HOLDER)
    restored_user = FameUserKey.from_bytes(user.to_bytes())
    restored_params = FamePublicParams.from_bytes(authority.public_params.to_bytes())
    restored_authority = AttributeAuthority.from_bytes(authority.to_bytes())
    assert restored_params.params_id == authority.public_params.params_id
    assert restored_authority.public_params.params_id == authority.public_params.params_id
    tech = get_technique("cpabe")
    sealed = tech.seal(b"t=36.6", AbePolicy.parse(restored_params, POLICY), AAD)
    assert tech.open(sealed, restored_user, AAD) == b"t=36.6"
    assert tech.open(sealed, restored_authority.keygen(HOLDER), AAD) == b"t=36.6"


@settings(deadline=None, max_examples=40)
@given(junk=st.binary(max_size=400), which=st.sampled_from(["user", "params", "master"]))
def test_malformed_key_bytes_raise_key_format_error(junk: bytes, which: str) -> None:
    loader = {
        "user": FameUserKey.from_bytes,
        "params": FamePublicParams.from_bytes,
        "master": AttributeAuthority.from_bytes,
    }[which]
    magic = {"user": b"IFU\x01", "params": b"IFP\x01", "master": b"IFM\x01"}[which]
    for data in (junk, magic + junk):
        with pytest.raises(KeyFormatError):
            loader(data)


@settings(deadline=None, max_examples=100)
@given(junk=st.binary(max_size=80), curve=st.sampled_from(list(EccCurve)))
def test_malformed_public_keys_raise_key_format_error(junk: bytes, curve: EccCurve) -> None:
    try:
        key = EccPublicKey.from_bytes(junk, curve)
    except KeyFormatError:
        return
    assert key.curve is curve


def test_reprs_hide_secrets(authority: AttributeAuthority) -> None:
    sym = SymmetricKey(bytes(range(32)))
    ecc = EccPrivateKey.generate()
    user = authority.keygen(HOLDER)
    assert bytes(range(32)).hex() not in repr(sym)
    assert "redacted" in repr(sym)
    assert "PRIVATE" not in repr(ecc)
    assert "redacted" in repr(user) and "redacted" in repr(authority)
    assert "redacted" in repr(EccAttrSecret(ecc, user))
