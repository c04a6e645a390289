"""Framework initialization: ATS, SecGen, ID issue, key establishment, Origin."""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path

import pytest
from biomt_world import FACILITY, SECOND, World, heart_rate
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from iomt.core.biomt import (
    ADMIN_ROLE,
    PATIENT_ROLE,
    BiomtDevice,
    BiomtStateError,
    Bolster,
    BolsterIdentity,
    DeviceState,
    FacilityCA,
    ProvisioningError,
    ReplayError,
    Requester,
    StaleRequestError,
    UserDirectory,
)
from iomt.core.biomt.identity import AGREEMENT_OID, certificate_agreement
from iomt.core.biomt.provisioning import (
    DeviceAttributes,
    id_issue,
    secgen,
)
from iomt.crypto.errors import CertificateError
from iomt.crypto.keystore import Keystore
from iomt.errors import LedgerVerificationError
from iomt.ledger import MemoryStorage, TxType


def test_provisioning_gives_a_certified_pseudonymous_identity(world: World) -> None:
    dev = world.device("iomt://facility-a/hr-0001")
    creds = dev.credentials
    assert dev.state is DeviceState.ACTIVE
    # the identity: CN = pseudonym derived from the agreement, SAN = the device URI
    assert creds.pseudonym == id_issue(creds.agreement)
    cert = creds.certificate
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == creds.pseudonym
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == ["iomt://facility-a/hr-0001"]
    assert certificate_agreement(cert) == creds.agreement
    assert cert.extensions.get_extension_for_oid(AGREEMENT_OID).critical is False
    world.ca.anchor.validate(cert, now=world.clock(), name=creds.pseudonym)
    # the device can open its agreement: SecGen over its attributes and ATS numbers
    attrs = DeviceAttributes.of(
        "iomt://facility-a/hr-0001",
        "patient-7",
        {"kind": "heart_rate", "model": "HR-200", "serial": "0001"},
    )
    assert secgen(FACILITY, attrs, creds.numbers, dev.signing_key) == creds.agreement
    # the privacy header admits the pseudonym, and an Origin recorded it
    assert world.bolster.privacy_header.is_authorized(creds.pseudonym)
    origin = world.bolster.ledger.get_transaction(0)
    assert origin.tx_type is TxType.ORIGIN
    assert origin.generator_id == world.bolster.requester_pseudonym("admin-1")
    # the shared key expires with the certificate
    assert creds.key_expires == world.clock() + world.config.key_lifetime


def test_nothing_secret_or_identifying_is_in_clear(world: World) -> None:
    dev = world.new_device("iomt://facility-a/hr-0002")
    enrolment = dev.enrol(world.bolster.credentials, owner="patient-7", attributes={"ward": "icu"})
    request = world.admin.approve(enrolment)
    provisioned = world.bolster.provision(request)
    creds = dev.complete(provisioned)
    wire = request.to_bytes() + provisioned.to_bytes()
    for secret in (
        b"iomt://facility-a/hr-0002",
        b"patient-7",
        b"icu",
        creds.pseudonym.encode(),
        creds.certificate.public_bytes(Encoding.DER),
        *(number for _, number in creds.numbers),
        creds.agreement,
    ):
        assert secret not in wire
    # the Origin body is encrypted: not even the pseudonym or the URI is readable
    body = world.bolster.ledger.get_transaction(0).body
    for secret in (b"hr-0002", b"patient-7", creds.pseudonym.encode()):
        assert secret not in body


def test_the_shared_key_never_reaches_the_disk_in_clear(tmp_path: Path) -> None:
    w = World(db=tmp_path / "b.db")
    dev = w.device()
    w.clock.advance(SECOND)
    w.store(dev, 72.5)
    key = dev._shared().secret_bytes()
    w.storage.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file())
    assert key not in raw
    assert b"iomt://facility-a/hr-1" not in raw
    assert b"patient-7" not in raw
    w.close()


def test_reprovisioning_gives_an_unlinkable_identity(world: World) -> None:
    a = world.device("iomt://facility-a/hr-1")
    b = world.device("iomt://facility-a/hr-1")
    assert a.pseudonym != b.pseudonym
    assert a.credentials.agreement != b.credentials.agreement


def test_only_an_admin_may_approve(world: World) -> None:
    dev = world.new_device()
    enrolment = dev.enrol(world.bolster.credentials, owner="patient-7", attributes={})
    with pytest.raises(ProvisioningError, match="not an admin"):
        world.bolster.provision(world.physician.approve(enrolment))
    size = world.bolster.ledger.size
    forged = dataclasses.replace(world.admin.approve(enrolment), admin="patient-7")
    with pytest.raises(ProvisioningError):
        world.bolster.provision(forged)
    assert world.bolster.ledger.size == size


def test_owner_must_be_a_registered_user(world: World) -> None:
    dev = world.new_device()
    enrolment = dev.enrol(world.bolster.credentials, owner="nobody", attributes={})
    with pytest.raises(ProvisioningError, match="owner"):
        world.bolster.provision(world.admin.approve(enrolment))


def test_provisioning_request_cannot_be_replayed_or_delayed(world: World) -> None:
    dev = world.new_device()
    request = world.admin.approve(
        dev.enrol(world.bolster.credentials, owner="patient-7", attributes={})
    )
    world.bolster.provision(request)
    with pytest.raises(ReplayError):
        world.bolster.provision(request)
    late = world.admin.approve(
        world.new_device().enrol(world.bolster.credentials, owner="patient-7", attributes={})
    )
    world.clock.advance(world.config.max_clock_skew + SECOND)
    with pytest.raises(StaleRequestError):
        world.bolster.provision(late)


def test_tampered_enrolment_is_refused(world: World) -> None:
    request = world.admin.approve(
        world.new_device().enrol(world.bolster.credentials, owner="patient-7", attributes={})
    )
    sealed = bytearray(request.sealed_submission)
    sealed[-1] ^= 1
    with pytest.raises(ProvisioningError):
        world.bolster.provision(dataclasses.replace(request, sealed_submission=bytes(sealed)))
    with pytest.raises(ProvisioningError):
        world.bolster.provision(dataclasses.replace(request, bolster_id="bolster-b"))


def test_device_rejects_an_answer_not_signed_by_its_bolster(world: World) -> None:
    dev = world.new_device()
    enrolment = dev.enrol(world.bolster.credentials, owner="patient-7", attributes={})
    provisioned = world.bolster.provision(world.admin.approve(enrolment))
    bad = bytearray(provisioned.signature)
    bad[0] ^= 1
    with pytest.raises(ProvisioningError, match="did not sign"):
        dev.complete(dataclasses.replace(provisioned, signature=bytes(bad)))
    assert dev.state is DeviceState.ENROLLING  # unchanged: the real answer still works
    sealed = bytearray(provisioned.sealed)
    sealed[3] ^= 1
    with pytest.raises(ProvisioningError):
        dev.complete(dataclasses.replace(provisioned, sealed=bytes(sealed)))
    dev.complete(provisioned)
    assert dev.state is DeviceState.ACTIVE


def test_device_rejects_an_answer_to_another_enrolment(world: World) -> None:
    dev = world.new_device()
    other = world.new_device("iomt://facility-a/hr-9")
    dev.enrol(world.bolster.credentials, owner="patient-7", attributes={})
    theirs = world.bolster.provision(
        world.admin.approve(
            other.enrol(world.bolster.credentials, owner="patient-7", attributes={})
        )
    )
    with pytest.raises(ProvisioningError, match="another enrolment"):
        dev.complete(theirs)


def test_device_checks_the_origin_receipt(world: World) -> None:
    dev = world.new_device()
    enrolment = dev.enrol(world.bolster.credentials, owner="patient-7", attributes={})
    provisioned = world.bolster.provision(world.admin.approve(enrolment))
    relabelled = dataclasses.replace(provisioned.origin, tx_type=TxType.STORE)
    with pytest.raises(LedgerVerificationError):
        dev.complete(dataclasses.replace(provisioned, origin=relabelled))
    assert dev.state is DeviceState.ENROLLING
    dev.complete(provisioned)


def test_device_refuses_a_bolster_the_ca_did_not_certify(world: World) -> None:
    rogue_ca = FacilityCA.generate(FACILITY, now=world.clock())
    rogue = BolsterIdentity.generate(
        "bolster-a", rogue_ca, now=world.clock(), storage_secret=bytes(32)
    )
    with pytest.raises(CertificateError):
        world.new_device().enrol(rogue.credentials(), owner="patient-7", attributes={})


def test_device_state_machine_refuses_illegal_calls(world: World) -> None:
    dev = world.new_device()
    with pytest.raises(BiomtStateError):
        dev.store_request(heart_rate(70, world.clock()))
    assert dev.state is DeviceState.NEW
    with pytest.raises(BiomtStateError):
        dev.removed()
    assert dev.state is DeviceState.NEW
    world_dev = world.device()
    with pytest.raises(BiomtStateError):
        world_dev.enrol(world.bolster.credentials, owner="patient-7", attributes={})
    assert world_dev.state is DeviceState.ACTIVE


def test_bolster_from_a_keystore(tmp_path: Path) -> None:
    """Deployment path: CA and bolster identity from ``iomt keystore`` files."""
    ks = Keystore.create(tmp_path / "ks", facility=FACILITY)
    ks.add_identity("bolster-a", algorithm="ed25519")
    ks.add_identity("admin-1")
    ks.add_identity("patient-7")
    ca = FacilityCA.from_keystore(ks)
    identity = BolsterIdentity.from_keystore(
        ks.identity("bolster-a"), facility_id=FACILITY, storage_secret=bytes(range(32))
    )
    now = time.time_ns()
    clock = lambda: now  # noqa: E731
    users = UserDirectory(ca.anchor)
    users.register(ks.identity("admin-1").certificate, ADMIN_ROLE, now=now)
    users.register(ks.identity("patient-7").certificate, PATIENT_ROLE, now=now)
    bolster = Bolster.open(identity, MemoryStorage(), ca=ca, users=users, clock=clock)
    admin = Requester("admin-1", ks.identity("admin-1").signer, clock=clock, rng=os.urandom)
    dev = BiomtDevice("iomt://facility-a/bp-1", anchor=ca.anchor, clock=clock, rng=os.urandom)
    dev.complete(
        bolster.provision(
            admin.approve(dev.enrol(bolster.credentials, owner="patient-7", attributes={}))
        )
    )
    assert bolster.devices() == [dev.pseudonym]
