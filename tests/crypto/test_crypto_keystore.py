"""The keystore: files and permissions, certificates, attribute keys, revocation, CLI."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from crypto_clock import FakeClock
from cryptography import x509

from iomt.cli import main as cli_main
from iomt.crypto.errors import (
    CertificateError,
    CertificateRevokedError,
    HandshakeError,
    KeystoreError,
    TokenRevokedError,
)
from iomt.crypto.keystore import Keystore
from iomt.crypto.revocation import RevocationKind
from iomt.crypto.roles import IOMT_OID_ARC, CertifiedRole, Role
from iomt.crypto.sessions import HandshakeInitiator, HandshakeResponder
from iomt.crypto.signing import Ed25519Signer, Verifier
from iomt.crypto.techniques import (
    AbePolicy,
    AssociatedData,
    Capability,
    EccAttrRecipient,
    EccAttrSecret,
    get_technique,
)
from iomt.crypto.tokens import TokenIssuer, TokenVerifier, make_proof
from iomt.errors import StorageError


@pytest.fixture
def store(tmp_path: Path, clock: FakeClock) -> Keystore:
    ks = Keystore.create(tmp_path / "ks", facility="F1", clock=clock)
    ks.add_identity("dev-001")
    ks.add_identity("dr-bob", algorithm="ecdsa-p256")
    ks.add_attributes("dr-bob", ["role:cardiologist", "facility:F1"])
    return ks


def test_files_and_directories_are_owner_only(store: Keystore) -> None:
    seen = 0
    for root, dirs, files in os.walk(store.root):
        for d in dirs:
            assert stat.S_IMODE(os.stat(Path(root, d)).st_mode) == 0o700, d
        for f in files:
            assert stat.S_IMODE(os.stat(Path(root, f)).st_mode) == 0o600, f
            seen += 1
    assert stat.S_IMODE(os.stat(store.root).st_mode) == 0o700
    assert seen >= 14
    assert not list(store.root.rglob("*.tmp"))


def test_private_keys_are_pkcs8_pem_and_never_in_reprs(store: Keystore) -> None:
    key_file = store.root / "identities" / "dev-001" / "identity.key.pem"
    assert key_file.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    ident = store.identity("dr-bob")
    text = repr(ident) + repr(store) + repr(store.authority()) + repr(ident.attribute_key)
    assert "PRIVATE" not in text
    assert "redacted" in repr(ident)


def test_open_round_trips_and_identities_are_certified(store: Keystore, clock: FakeClock) -> None:
    again = Keystore.open(store.root, clock=clock)
    assert again.names() == ["dev-001", "dr-bob"]
    bob = again.identity("dr-bob")
    assert bob.uri == "iomt://F1/dr-bob"
    assert bob.attribute_key is not None
    assert bob.attribute_key.attributes == {"role:cardiologist", "facility:F1"}
    assert again.validate_certificate(bob.certificate, name="dr-bob") == bob.verifier
    assert again.validate_certificate(bob.encryption_certificate, signing=False) == (
        bob.encryption_public_key
    )
    san = bob.certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert san.value.get_values_for_type(x509.UniformResourceIdentifier) == ["iomt://F1/dr-bob"]


def test_certificate_checks(store: Keystore, tmp_path: Path, clock: FakeClock) -> None:
    dev = store.identity("dev-001")
    with pytest.raises(CertificateError):
        store.validate_certificate(dev.certificate, name="dr-bob")
    with pytest.raises(CertificateError):  # a signing cert is not a key-agreement cert
        store.validate_certificate(dev.certificate, signing=False)
    other = Keystore.create(tmp_path / "other", facility="F2", clock=clock)
    other.add_identity("dev-001")
    with pytest.raises(CertificateError):
        store.validate_certificate(other.identity("dev-001").certificate)
    clock.advance(400 * 86400)
    with pytest.raises(CertificateError):
        store.validate_certificate(dev.certificate)


def test_attribute_keys_open_ecc_attr_records(store: Keystore) -> None:
    bob = store.identity("dr-bob")
    assert bob.attribute_key is not None
    aad = AssociatedData("dev-001", "dr-bob", "iomt://F1/dev-001", 1)
    policy = AbePolicy.parse(store.public_params, "role:cardiologist AND facility:F1")
    tech = get_technique("ecc-attr")
    sealed = tech.seal(b"ecg", EccAttrRecipient(bob.encryption_public_key, policy), aad)
    assert tech.open(sealed, EccAttrSecret(bob.encryption_key, bob.attribute_key), aad) == b"ecg"
    # add_attributes re-issues the whole set
    key = store.add_attributes("dr-bob", ["dept:icu"])
    assert key.attributes == {"role:cardiologist", "facility:F1", "dept:icu"}


def test_sessions_with_keystore_credentials_and_revocation(store: Keystore) -> None:
    validator = store.credential_validator()
    bob, dev = store.identity("dr-bob"), store.identity("dev-001")

    def handshake() -> str:
        i = HandshakeInitiator(bob.handshake_identity(), validator)
        r = HandshakeResponder(dev.handshake_identity(), validator)
        i.confirm(r.receive(i.receive(r.receive(i.start()))))
        return r.session.peer_name

    assert handshake() == "dr-bob"
    store.revoke(RevocationKind.IDENTITY, "dr-bob", reason="left the facility")
    with pytest.raises(HandshakeError) as info:
        handshake()
    assert isinstance(info.value.__cause__, CertificateRevokedError)


def test_revocation_is_persisted_with_a_crl_and_used_by_tokens(
    store: Keystore, clock: FakeClock
) -> None:
    wallet, requester = Ed25519Signer.generate(), Ed25519Signer.generate()
    issuer = TokenIssuer("wallet", wallet, clock=clock)
    verifier = TokenVerifier(
        {"wallet": wallet.verifier()}, clock=clock, revocations=store.revocations
    )
    token = issuer.issue("dev", "dr-bob", "read:vitals", requester.verifier(), 60)
    claims = verifier.verify(
        token, audience="dev", proof=make_proof(token, requester, challenge=b"c"), challenge=b"c"
    )
    store.revoke("token", claims.token_id.hex(), reason="patient withdrew consent")
    with pytest.raises(TokenRevokedError):
        verifier.verify(
            token,
            audience="dev",
            proof=make_proof(token, requester, challenge=b"c"),
            challenge=b"c",
        )
    serial = store.info("dev-001").serials[0]
    store.revoke("certificate", str(serial))
    reopened = Keystore.open(store.root, clock=clock)
    assert reopened.revocations.is_token_revoked(claims.token_id)
    assert reopened.info("dev-001").revoked
    crl = x509.load_pem_x509_crl((store.root / "ca" / "crl.pem").read_bytes())
    assert crl.get_revoked_certificate_by_serial_number(serial) is not None
    assert crl.is_signature_valid(store.ca_certificate.public_key())  # type: ignore[arg-type]
    with pytest.raises(CertificateRevokedError):
        reopened.validate_certificate(reopened.identity("dev-001").certificate)


def test_keystore_errors(store: Keystore, tmp_path: Path) -> None:
    with pytest.raises(KeystoreError):
        store.add_identity("dev-001")  # exists
    for bad in ("", "../x", "a/b", ".hidden", "x" * 200):
        with pytest.raises(KeystoreError):
            store.add_identity(bad)
    with pytest.raises(KeystoreError):
        store.identity("nobody")
    with pytest.raises(KeystoreError):
        Keystore.create(store.root)  # not empty
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    os.chmod(shared, 0o755)  # test setup: a directory someone else made readable
    with pytest.raises(KeystoreError):
        Keystore.create(shared)
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    Keystore.create(private)
    with pytest.raises(KeystoreError) as info:
        Keystore.open(tmp_path / "missing")
    assert isinstance(info.value, StorageError)
    with pytest.raises(KeystoreError):
        store.revoke("certificate", "not-a-number")
    with pytest.raises(KeystoreError):
        store.revoke("token", "zz")
    (store.root / "revocation.json").write_text("{not json")
    with pytest.raises(KeystoreError):
        Keystore.open(store.root)


@pytest.mark.parametrize(
    "path",
    [
        "identities/dr-bob/identity.key.pem",
        "identities/dr-bob/encryption.key.pem",
        "identities/dr-bob/attributes.key.pem",
        "identities/dr-bob/identity.json",
    ],
)
def test_corrupt_files_raise_keystore_errors(store: Keystore, path: str) -> None:
    target = store.root / path
    data = target.read_bytes()
    target.write_bytes(data[: len(data) // 2] + b"garbage")
    with pytest.raises(KeystoreError):
        store.identity("dr-bob")


def test_corrupt_authority_files(store: Keystore) -> None:
    (store.root / "authority" / "fame.public.pem").write_bytes(b"not pem")
    (store.root / "authority" / "fame.master.pem").write_bytes(
        b"-----BEGIN IOMT FAME MASTER KEY-----\nAAAA\n-----END IOMT FAME MASTER KEY-----\n"
    )
    reopened = Keystore.open(store.root)
    with pytest.raises(KeystoreError):
        _ = reopened.public_params
    with pytest.raises(KeystoreError):
        reopened.authority()


def test_cli_manages_a_keystore(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ks = str(tmp_path / "cli-ks")
    assert cli_main(["keystore", "create", ks, "--facility", "F9"]) == 0
    assert cli_main(["keystore", "add-identity", ks, "wallet-alice"]) == 0
    assert cli_main(["keystore", "add-identity", ks, "dev-7", "--algorithm", "ecdsa-p256"]) == 0
    assert cli_main(["keystore", "add-attributes", ks, "wallet-alice", "role:patient"]) == 0
    assert cli_main(["keystore", "revoke", ks, "--identity", "dev-7", "--reason", "lost"]) == 0
    capsys.readouterr()
    assert cli_main(["keystore", "list", ks, "--json"]) == 0
    out = capsys.readouterr().out
    doc = json.loads(out)
    by_name = {i["name"]: i for i in doc["identities"]}
    assert by_name["wallet-alice"]["attributes"] == ["role:patient"]
    assert by_name["dev-7"]["revoked"] is True
    assert by_name["dev-7"]["algorithm"] == "ecdsa-p256"
    assert cli_main(["keystore", "list", ks]) == 0
    out += capsys.readouterr().out
    assert "PRIVATE" not in out and "BEGIN" not in out
    assert cli_main(["keystore", "add-identity", ks, "bad/name"]) == 2  # typed error -> 2


def test_roles_are_certified_in_an_extended_key_usage(store: Keystore, clock: FakeClock) -> None:
    info = store.add_identity("hr-1", algorithm="ecdsa-p256", roles=["device"], capability="ecc")
    assert (info.roles, info.capability, info.role_text) == (("device",), "ecc", "device (ecc)")
    for name in ("identity.cert.pem", "encryption.cert.pem"):
        cert = x509.load_pem_x509_certificate((store.root / "identities/hr-1" / name).read_bytes())
        ext = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
        assert ext.critical  # the key serves these purposes only
        assert {o.dotted_string for o in ext.value} == {
            f"{IOMT_OID_ARC}.1.1",  # device
            f"{IOMT_OID_ARC}.2.2",  # capability class ECC
        }
    assert store.role_of(store.certificate("hr-1")) == CertifiedRole(
        frozenset({Role.DEVICE}), Capability.ECC, "F1"
    )
    # several roles; none at all certifies nothing
    head = store.add_identity("bolster-1", roles=["bolster", "cluster-head"])
    assert set(head.roles) == {"bolster", "cluster-head"}
    assert store.role_of(store.certificate("dev-001")).roles == frozenset()
    assert store.info("dev-001").role_text == "no role"
    for bad in (
        {"roles": ["device"]},  # a device needs its capability class
        {"roles": ["wallet"], "capability": "ecc"},  # a class is for devices only
        {"roles": ["janitor"]},
        {"roles": ["device"], "capability": "quantum"},
    ):
        with pytest.raises(KeystoreError):
            store.add_identity("x-" + str(len(str(bad))), **bad)  # type: ignore[arg-type]


def test_set_roles_reissues_and_revokes_the_old_certificates(
    store: Keystore, clock: FakeClock
) -> None:
    store.add_identity("hr-2", roles=["device"], capability="abe")
    old = store.certificate("hr-2")
    old_serials = store.info("hr-2").serials
    key_before = store.identity("hr-2").verifier
    info = store.set_roles("hr-2", ["device"], "none")
    assert info.role_text == "device (none)" and not info.revoked
    assert set(info.serials).isdisjoint(old_serials)
    assert store.identity("hr-2").verifier == key_before  # same keys, new certificates
    with pytest.raises(CertificateRevokedError):  # the old role cannot be presented
        store.validate_certificate(old, name="hr-2")
    store.validate_certificate(store.certificate("hr-2"), name="hr-2")
    reopened = Keystore.open(store.root, clock=clock)
    assert reopened.info("hr-2").capability == "none"
    assert all(reopened.revocations.is_certificate_revoked(s) for s in old_serials)
    store.revoke(RevocationKind.IDENTITY, "hr-2")
    with pytest.raises(KeystoreError, match="revoked"):
        store.set_roles("hr-2", ["device"], "ecc")


def test_cli_sets_and_shows_roles(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ks = str(tmp_path / "roles-ks")
    assert cli_main(["keystore", "create", ks, "--facility", "ward1"]) == 0
    assert (
        cli_main(
            ["keystore", "add-identity", ks, "hr_1", "--role", "device", "--capability", "ecc"]
        )
        == 0
    )
    assert cli_main(["keystore", "add-identity", ks, "wallet_1", "--role", "wallet"]) == 0
    assert cli_main(["keystore", "add-identity", ks, "x", "--role", "device"]) == 2
    capsys.readouterr()
    assert cli_main(["keystore", "show", ks, "hr_1"]) == 0
    out = capsys.readouterr().out
    assert "device (ecc)" in out and f"{IOMT_OID_ARC}.2.2 (capability ecc)" in out
    assert (
        cli_main(["keystore", "set-role", ks, "hr_1", "--role", "device", "--capability", "none"])
        == 0
    )
    assert "was device (ecc)" in capsys.readouterr().out
    assert cli_main(["keystore", "show", ks, "hr_1", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["role"] == "device (none)" and doc["capability"] == "none"
    assert cli_main(["keystore", "list", ks, "--json"]) == 0
    roles = {i["name"]: i["role"] for i in json.loads(capsys.readouterr().out)["identities"]}
    assert roles == {"hr_1": "device (none)", "wallet_1": "wallet"}
    assert cli_main(["keystore", "list", ks]) == 0
    assert "wallet" in capsys.readouterr().out


def test_a_remembered_certificate_is_still_checked_for_name_time_and_revocation(
    store: Keystore, clock: FakeClock
) -> None:
    """The CA signature of a credential is checked once; what can change is checked every
    time it is presented."""
    validator = store.credential_validator()
    cert = store.certificate_der("dr-bob")
    key = validator("dr-bob", cert)
    assert validator("dr-bob", cert) is key  # remembered: the same certified key
    with pytest.raises(CertificateError, match="not 'dev-001'"):
        validator("dev-001", cert)
    assert isinstance(validator("dr-bob", cert), Verifier)
    clock.advance(400 * 86400)  # past the certificate's validity
    with pytest.raises(CertificateError, match="valid"):
        validator("dr-bob", cert)
    clock.advance(-400 * 86400)
    store.revoke(RevocationKind.KEY, key.fingerprint(), reason="stolen")
    with pytest.raises(CertificateRevokedError):
        validator("dr-bob", cert)


def test_a_tampered_credential_is_refused_though_the_original_was_remembered(
    store: Keystore,
) -> None:
    validator = store.credential_validator()
    cert = store.certificate_der("dr-bob")
    validator("dr-bob", cert)
    tampered = bytearray(cert)
    tampered[-5] ^= 0x01  # inside the CA's signature
    with pytest.raises(CertificateError):
        validator("dr-bob", bytes(tampered))
