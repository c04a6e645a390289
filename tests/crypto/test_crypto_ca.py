"""The facility CA: one builder for the keystore's CA on disk and a bolster's in memory."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509

from iomt.crypto.ca import (
    CLOCK_SKEW,
    FacilityCA,
    build_ca,
    certificate_agreement,
    common_name,
    issue_certificate,
)
from iomt.crypto.errors import CertificateError
from iomt.crypto.keys import EccPrivateKey
from iomt.crypto.keystore import Keystore
from iomt.crypto.signing import Ed25519Signer

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
NOW_NS = int(NOW.timestamp()) * 10**9


def _extensions(cert: x509.Certificate) -> list[str]:
    return [e.oid.dotted_string for e in cert.extensions]


def test_a_ca_is_a_self_signed_p256_ca_of_its_facility() -> None:
    key, cert = build_ca("ward-1", now=NOW, validity_days=10)
    assert cert.issuer == cert.subject and common_name(cert) == "ward-1 CA"
    assert cert.not_valid_before_utc == NOW - CLOCK_SKEW
    assert cert.not_valid_after_utc == NOW + dt.timedelta(days=10)
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    cert.verify_directly_issued_by(cert)
    assert key.curve.name == "secp256r1"


def test_the_keystore_ca_is_the_same_builder_with_key_identifiers(tmp_path: Path) -> None:
    _, bare = build_ca("ward-1", now=NOW, validity_days=10)
    _, keyed = build_ca("ward-1", now=NOW, validity_days=10, key_identifier=True)
    ski = x509.SubjectKeyIdentifier.oid.dotted_string
    assert _extensions(keyed) == [*_extensions(bare), ski]
    on_disk = Keystore.create(tmp_path / "ks", facility="ward-1").ca_certificate
    assert _extensions(on_disk) == _extensions(keyed)
    assert on_disk.subject == keyed.subject


def test_an_issued_certificate_chains_names_its_holder_and_ends_with_the_ca() -> None:
    key, ca = build_ca("ward-1", now=NOW, validity_days=10)
    holder = Ed25519Signer.generate()
    cert = issue_certificate(
        key,
        ca,
        common_name="dev-1",
        uri="iomt://ward-1/dev-1",
        public_key=holder.verifier(),
        not_before=NOW,
        not_after=NOW + dt.timedelta(days=365),
        signing=True,
        agreement=bytes(32),
    )
    cert.verify_directly_issued_by(ca)
    assert common_name(cert) == "dev-1" and certificate_agreement(cert) == bytes(32)
    assert cert.not_valid_after_utc == ca.not_valid_after_utc  # capped by the CA
    assert cert.not_valid_before_utc == NOW - CLOCK_SKEW
    keyed = issue_certificate(
        key,
        ca,
        common_name="dev-1",
        uri="iomt://ward-1/dev-1",
        public_key=holder.verifier(),
        not_before=NOW,
        not_after=NOW + dt.timedelta(days=1),
        signing=True,
        key_identifier=True,
    )
    aki = x509.AuthorityKeyIdentifier.oid.dotted_string
    assert aki in _extensions(keyed) and aki not in _extensions(cert)


def test_the_facility_ca_issues_signing_and_agreement_certificates_it_validates() -> None:
    ca = FacilityCA.generate("ward-1", now=NOW_NS)
    signer, agreement = Ed25519Signer.generate(), EccPrivateKey.generate()
    later = NOW_NS + 86400 * 10**9
    signing = ca.issue(
        common_name="b", uri="iomt://ward-1/b", public_key=signer.verifier(), now=NOW_NS,
        not_after=later,
    )  # fmt: skip
    sealing = ca.issue(
        common_name="b", uri="iomt://ward-1/b", public_key=agreement.public_key(), now=NOW_NS,
        not_after=later, signing=False,
    )  # fmt: skip
    assert ca.anchor.validate(signing, now=NOW_NS, name="b") == signer.verifier()
    assert ca.anchor.validate_agreement(sealing, now=NOW_NS) == agreement.public_key()
    with pytest.raises(CertificateError, match="expire before"):
        ca.issue(
            common_name="b", uri="u", public_key=signer.verifier(), now=later, not_after=NOW_NS
        )
