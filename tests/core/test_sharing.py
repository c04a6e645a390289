"""Bilal & Hassan's framework without DDS: every branch of Alg. 1-3, and the attacks."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from core.sharing_world import World, build_world, der
from iomt.core.conversion import ConversionRefusedError
from iomt.core.device import Converting, Refused, Shared
from iomt.core.handshake import new_token_request
from iomt.core.listener import DataRequest
from iomt.core.registration import RegistrationStatus
from iomt.crypto.errors import (
    CertificateError,
    DecryptionError,
    InvalidSignatureError,
    PolicyNotSatisfiedError,
)
from iomt.errors import AuthenticationError, AuthorizationError, LocalProtocolError


@pytest.fixture
def world(tmp_path: Path) -> World:
    w = build_world(tmp_path)
    w.announce_all()
    for name in w.devices:
        w.record(name)
    return w


def _session(w: World, provider: str, device: str) -> None:
    w.open_session(w.provider(provider).channels, w.device(device).channels)


def _ask(w: World, provider: str, device: str, technique: str):  # type: ignore[no-untyped-def]
    p, d = w.provider(provider), w.device(device)
    return p, d, d.on_data_request(p.data_request(d.uri, technique))


# -- Alg. 1.1 / 1.2: handshake with the wallet ------------------------------------------


def test_wallet_issues_a_token_per_device_to_a_consented_provider(world: World) -> None:
    world.grant("dr_house")
    grants = world.provider("dr_house").grants
    assert set(grants) == {d.uri for d in world.devices.values()}
    assert {g.technique for g in grants.values()} == {"none", "sym-aes", "ecc", "cpabe"}


def test_wallet_refuses_a_provider_without_consent(world: World) -> None:
    with pytest.raises(AuthorizationError, match="not consented"):
        world.wallet.handle(world.provider("mallory").token_request(world.wallet.wallet_uri))


def test_wallet_refuses_a_forged_or_foreign_certificate(world: World, tmp_path: Path) -> None:
    p = world.provider("dr_house")
    req = p.token_request(world.wallet.wallet_uri)
    # signed by another key than the certified one
    mallory = world.keystore.identity("mallory")
    forged = new_token_request(world.wallet.wallet_uri, p.uri, p.certificate, mallory.signer)
    with pytest.raises(InvalidSignatureError):
        world.wallet.handle(forged)
    # a certificate from another facility's CA
    from iomt.crypto.keystore import Keystore

    other = Keystore.create(tmp_path / "other", facility="elsewhere")
    other.add_identity("dr_house")
    fake = other.identity("dr_house")
    with pytest.raises(CertificateError):
        world.wallet.handle(
            new_token_request(world.wallet.wallet_uri, p.uri, der(fake), fake.signer)
        )
    # a replayed request
    world.wallet.handle(req)
    with pytest.raises(AuthenticationError, match="replay"):
        world.wallet.handle(req)


def test_wallet_refuses_requests_for_another_wallet_and_revoked_providers(world: World) -> None:
    p = world.provider("dr_house")
    with pytest.raises(AuthorizationError):
        world.wallet.handle(p.token_request("iomt://ward1/someone_else"))
    world.keystore.revoke("identity", "dr_house")
    with pytest.raises(CertificateError, match="revoked"):
        world.wallet.handle(p.token_request(world.wallet.wallet_uri))


# -- Alg. 1.3/1.4 + 2.2: the listener ----------------------------------------------------


@pytest.mark.parametrize(
    ("device", "technique"),
    [
        ("hr_ecc", "ecc"),
        ("bp_abe", "cpabe"),
        ("bp_abe", "ecc-attr"),
        ("bp_abe", "ecc"),
        ("bp_sym", "sym-aes"),
        ("hr_ecc", "sym-aes"),
    ],
)
def test_share_directly_when_the_device_can_apply_the_technique(
    world: World, device: str, technique: str
) -> None:
    world.grant("dr_house")
    _session(world, "dr_house", device)
    p, d, reply = _ask(world, "dr_house", device, technique)
    assert isinstance(reply, Shared)
    env = reply.envelope
    assert env.signature_algorithm == "hmac-sha256" and env.sender_uri == d.uri
    got = p.receive(env)
    assert got.reading_cdr == d.latest().cdr and not got.converted  # type: ignore[union-attr]


def test_requests_over_a_session_cost_one_header_open_per_data_key(world: World) -> None:
    world.grant("dr_house")
    _session(world, "dr_house", "hr_ecc")
    for _ in range(5):
        world.record("hr_ecc")
        p, _d, reply = _ask(world, "dr_house", "hr_ecc", "ecc")
        assert isinstance(reply, Shared)
        p.receive(reply.envelope)
    assert world.device("hr_ecc").sealer.keys_created == 1
    assert world.provider("dr_house").opener.headers_opened == 1


def test_proof_of_possession_without_a_session(world: World) -> None:
    world.grant("dr_house")
    p, d, reply = _ask(world, "dr_house", "hr_ecc", "ecc")
    assert isinstance(reply, Shared)
    assert reply.envelope.signature_algorithm == "ecdsa-p256"  # the device's certified key
    assert p.receive(reply.envelope).device_uri == d.uri


def test_a_replayed_request_is_refused(world: World) -> None:
    world.grant("dr_house")
    _session(world, "dr_house", "hr_ecc")
    p, d = world.provider("dr_house"), world.device("hr_ecc")
    req = p.data_request(d.uri, "ecc")
    assert isinstance(d.on_data_request(req), Shared)
    again = d.on_data_request(req)
    assert isinstance(again, Refused) and again.reason.startswith("bad-proof")
    # and without a session: the proof nonce is remembered
    p.channels.drop("hr_ecc")
    req = p.data_request(d.uri, "ecc")
    assert req.proof_type == "pop"
    assert isinstance(d.on_data_request(req), Shared)
    again = d.on_data_request(req)
    assert isinstance(again, Refused) and again.reason.startswith("invalid-token")
    assert again.replay  # the original has its answer: this refusal goes unproven


def _tamper(data: bytes) -> bytes:
    return data[:-5] + bytes([data[-5] ^ 1]) + data[-4:]


@pytest.mark.parametrize("attack", ["forged", "expired", "wrong-audience", "stolen"])
def test_bad_tokens_are_refused(world: World, attack: str) -> None:
    world.wallet.token_lifetime_s = 60.0  # shorter than the session's lifetime
    world.grant("dr_house")
    world.grant("dr_other")
    _session(world, "dr_house", "hr_ecc")
    _session(world, "dr_other", "hr_ecc")
    p, d = world.provider("dr_house"), world.device("hr_ecc")
    req = p.data_request(d.uri, "ecc")
    if attack == "forged":
        # a flipped signature byte, presented with a valid proof over the forged bytes
        p.grants[d.uri] = dataclasses.replace(p.grants[d.uri], token=_tamper(req.token))
        req = p.data_request(d.uri, "ecc")
    elif attack == "expired":
        world.clock.advance(120.0)
    elif attack == "wrong-audience":
        # a valid token, but for another of the patient's devices
        other = p.grants[world.device("bp_abe").uri].token
        grant = p.grants[d.uri]
        p.grants[d.uri] = dataclasses.replace(grant, token=other)
        req = p.data_request(d.uri, "ecc")
    elif attack == "stolen":
        # dr_other presents dr_house's token over its own (authentic) session
        thief = world.provider("dr_other")
        grant = thief.grants[d.uri]
        thief.grants[d.uri] = dataclasses.replace(grant, token=p.grants[d.uri].token)
        req = thief.data_request(d.uri, "ecc")
    reply = d.on_data_request(req)
    assert isinstance(reply, Refused)
    assert reply.reason.startswith("invalid-token"), reply.reason
    detail = {
        "forged": "signature",
        "expired": "expired",
        "wrong-audience": "is for",
        "stolen": "bound to another key",
    }[attack]
    assert detail in reply.reason, reply.reason


def test_request_naming_another_requester_than_the_session_peer_is_refused(world: World) -> None:
    world.grant("dr_house")
    _session(world, "dr_house", "hr_ecc")
    p, d = world.provider("dr_house"), world.device("hr_ecc")
    req = p.data_request(d.uri, "ecc")
    spoofed = dataclasses.replace(req, requester_uri=world.provider("dr_other").uri)
    reply = d.on_data_request(spoofed)
    assert isinstance(reply, Refused) and reply.reason.startswith("bad-proof")


def test_unknown_technique_and_missing_data_are_refused(world: World) -> None:
    world.grant("dr_house")
    _session(world, "dr_house", "hr_ecc")
    _p, _d, reply = _ask(world, "dr_house", "hr_ecc", "rot13")
    assert isinstance(reply, Refused) and reply.reason.startswith("unknown-technique")
    world.device("hr_ecc").readings.clear()
    _p, _d, reply = _ask(world, "dr_house", "hr_ecc", "ecc")
    assert isinstance(reply, Refused) and reply.reason.startswith("no-data")


# -- Alg. 3: conversion --------------------------------------------------------------------


def _convert(world: World, device: str, technique: str):  # type: ignore[no-untyped-def]
    p, d, reply = _ask(world, "dr_house", device, technique)
    assert isinstance(reply, Converting), reply
    return p, d, reply


def test_incapable_device_converts_through_a_one_hop_neighbour(world: World) -> None:
    world.grant("dr_house")
    _session(world, "dr_house", "hr_none")
    p, d, pending = _convert(world, "hr_none", "ecc")
    converter_uri = pending.plan.next()
    assert converter_uri is not None
    converter = next(c for c in world.devices.values() if c.uri == converter_uri)
    assert d.table.one_hop(converter_uri) is not None  # plaintext crosses one hop only
    order = d.conversion_order(pending, converter_uri)
    assert order.link_technique == "none" and order.payload == d.latest().cdr  # type: ignore[union-attr]
    env = converter.on_conversion(order, seq=7, stamp_ns=1)
    got = p.receive(env)
    assert got.converted and got.sender_uri == converter_uri and got.device_uri == d.uri
    assert got.reading_cdr == d.latest().cdr  # type: ignore[union-attr]


def test_symmetric_device_protects_the_hop_with_a_session(world: World) -> None:
    world.grant("dr_house")
    _session(world, "dr_house", "bp_sym")
    p, d, pending = _convert(world, "bp_sym", "cpabe")
    converter_uri = pending.plan.next()
    converter = next(c for c in world.devices.values() if c.uri == converter_uri)
    with pytest.raises(Exception, match="no session with converter"):
        d.conversion_order(pending, converter_uri)  # type: ignore[arg-type]
    world.open_session(d.channels, converter.channels)
    order = d.conversion_order(pending, converter_uri)  # type: ignore[arg-type]
    assert order.link_technique == "session"
    assert d.latest().cdr not in order.payload  # type: ignore[union-attr]
    env = converter.on_conversion(order, seq=1, stamp_ns=1)
    assert p.receive(env).technique == "cpabe"


def test_conversion_picks_the_lowest_hop_and_falls_back(world: World) -> None:
    world.grant("dr_house")
    _session(world, "dr_house", "hr_none")
    _p, d, pending = _convert(world, "hr_none", "ecc")
    hops = {c: d.table.one_hop(c) for c in pending.plan.candidates}
    assert all(n is not None and n.hops == 1 for n in hops.values())
    first = pending.plan.next()
    pending.plan.failed(first, "timeout")  # type: ignore[arg-type]
    second = pending.plan.next()
    assert second not in (None, first)


def test_no_capable_neighbour_is_a_clear_refusal(world: World) -> None:
    world.grant("dr_house")
    _session(world, "dr_house", "far_ecc")
    # far_ecc hears nobody, and cannot apply cpabe itself
    _p, _d, reply = _ask(world, "dr_house", "far_ecc", "cpabe")
    assert isinstance(reply, Refused)
    assert reply.reason.startswith("no-capable-neighbour")


def test_converter_refuses_orders_from_unregistered_devices(world: World) -> None:
    world.grant("dr_house")
    _session(world, "dr_house", "hr_none")
    _p, d, pending = _convert(world, "hr_none", "ecc")
    converter = world.device("far_ecc")  # never heard hr_none
    with pytest.raises(ConversionRefusedError, match="not a 1-hop neighbour"):
        d.conversion_order(pending, converter.uri)  # nor will hr_none send its plaintext there
    near = pending.plan.next()
    order = dataclasses.replace(d.conversion_order(pending, near), converter_uri=converter.uri)
    with pytest.raises(ConversionRefusedError, match="not a registered neighbour"):
        converter.on_conversion(order, seq=1, stamp_ns=1)


def test_a_device_impersonating_another_is_caught(world: World) -> None:
    world.grant("dr_house")
    _session(world, "dr_house", "hr_none")
    p, d, pending = _convert(world, "hr_none", "ecc")
    converter_uri = pending.plan.next()
    converter = next(c for c in world.devices.values() if c.uri == converter_uri)
    # mallory signs an order claiming to be hr_none, with a made-up reading
    mallory = world.keystore.identity("mallory")
    order = d.conversion_order(pending, converter_uri)  # type: ignore[arg-type]
    fake = dataclasses.replace(order, payload=b"fabricated").signed_by(mallory.signer)
    with pytest.raises(AuthenticationError):
        converter.on_conversion(fake, seq=1, stamp_ns=1)
    # a converter that invents the reading itself cannot forge the device's signature
    honest = converter.on_conversion(order, seq=1, stamp_ns=1)
    from iomt.core import publish

    lie, _ = (
        publish.Sealer(converter.uri).seal(
            b"fabricated",
            technique="ecc",
            recipient_uri=p.uri,
            recipient_key=p._encryption_key.public_key(),
            device_uri=d.uri,
            request_id=honest.request_id,
            seq=honest.seq,
        ),
        None,
    )
    forged = dataclasses.replace(honest, key_header=lie[0], ciphertext=lie[1]).signed_by(
        world.keystore.identity(converter.uri.rsplit("/", 1)[-1]).signer
    )
    with pytest.raises(InvalidSignatureError):
        p.receive(forged)


# The one-hop claim (an incapable device's plaintext crosses at most one hop) is proven in
# test_one_hop.py, on worlds with converters one and two hops away.


# -- publish: tampering --------------------------------------------------------------------


@pytest.mark.parametrize("field_name", ["ciphertext", "signature", "key_header"])
def test_tampered_envelopes_are_rejected(world: World, field_name: str) -> None:
    world.grant("dr_house")
    _session(world, "dr_house", "bp_abe")
    p, _d, reply = _ask(world, "dr_house", "bp_abe", "cpabe")
    assert isinstance(reply, Shared)
    env = reply.envelope
    bad = dataclasses.replace(env, **{field_name: _tamper(getattr(env, field_name))})
    with pytest.raises(AuthenticationError):
        p.receive(bad)
    # authentic bytes still open afterwards
    assert p.receive(env).technique == "cpabe"


def test_provider_rejects_envelopes_it_did_not_ask_for(world: World) -> None:
    world.grant("dr_house")
    world.grant("dr_other")
    _session(world, "dr_house", "hr_ecc")
    _session(world, "dr_other", "hr_ecc")
    _p, _d, reply = _ask(world, "dr_other", "hr_ecc", "ecc")
    assert isinstance(reply, Shared)
    with pytest.raises(AuthenticationError, match="no outstanding request"):
        world.provider("dr_house").receive(reply.envelope)
    env = dataclasses.replace(reply.envelope, recipient_uri=world.provider("dr_house").uri)
    with pytest.raises(AuthenticationError):
        world.provider("dr_house").receive(env)


def test_cpabe_without_the_attributes_cannot_open(world: World) -> None:
    # mallory is certified but holds no attribute keys; give her a token anyway by consent
    world.wallet.consent.providers[world.provider("mallory").uri] = frozenset({"vitals:read"})  # type: ignore[index]
    world.grant("mallory")
    _session(world, "mallory", "bp_abe")
    m, _d, reply = _ask(world, "mallory", "bp_abe", "cpabe")
    assert isinstance(reply, Shared)
    with pytest.raises(LocalProtocolError, match="needs attribute keys this provider lacks"):
        m.receive(reply.envelope)


def test_cpabe_with_attributes_outside_the_policy_cannot_open(world: World) -> None:
    # mallory holds attribute keys from the facility, but not those the policy asks for
    # (role:cardiologist AND facility:F1): FAME decryption itself must fail.
    world.keystore.add_attributes("mallory", ["role:nurse", "facility:F1"])
    key = world.keystore.identity("mallory").attribute_key
    assert key is not None
    world.provider("mallory")._attribute_key = key
    world.wallet.consent.providers[world.provider("mallory").uri] = frozenset({"vitals:read"})  # type: ignore[index]
    world.grant("mallory")
    _session(world, "mallory", "bp_abe")
    m, _d, reply = _ask(world, "mallory", "bp_abe", "cpabe")
    assert isinstance(reply, Shared)
    with pytest.raises(PolicyNotSatisfiedError):
        m.receive(reply.envelope)


# -- Alg. 2.1: control registration ---------------------------------------------------------


def test_registration_by_radio_range_and_expiry(world: World) -> None:
    d = world.device("hr_none")
    assert d.table.one_hop(world.device("hr_ecc").uri) is not None
    assert d.table.one_hop(world.device("far_ecc").uri) is None
    far = world.device("far_ecc").announcement(0)
    assert d.on_announcement(far) is RegistrationStatus.NOT_REGISTER
    world.clock.advance(3 * 5.0 + 1)
    assert set(d.table.expire()) == {world.device(n).uri for n in ("bp_sym", "hr_ecc", "bp_abe")}
    assert d.table.converters_for("ecc") == []


def test_forged_announcements_are_rejected(world: World) -> None:
    d = world.device("hr_none")
    real = world.device("hr_ecc").announcement(0)
    moved = dataclasses.replace(real, convertible=("ecc", "cpabe", "ecc-attr"))
    with pytest.raises(InvalidSignatureError):
        d.on_announcement(moved)
    mallory = world.keystore.identity("mallory")
    impostor = dataclasses.replace(real, signature=b"").signed_by(mallory.signer)
    with pytest.raises(AuthenticationError):
        d.on_announcement(impostor)


def test_only_an_incapable_device_prepares_its_nearest_converters(world: World) -> None:
    ann = {n: world.device(n).announcement(0) for n in ("bp_sym", "hr_ecc", "bp_abe")}
    none, sym = world.device("hr_none"), world.device("bp_sym")
    # hr_none's capable neighbours, nearest first: hr_ecc (4 m), bp_abe (7.1 m); bp_sym
    # (3 m) converts nothing
    assert none.prepares_converter(ann["hr_ecc"], among=1)
    assert not none.prepares_converter(ann["bp_abe"], among=1)
    assert none.prepares_converter(ann["bp_abe"], among=2)
    assert not none.prepares_converter(ann["bp_sym"], among=3)
    # a device that can encrypt asks a converter only for what it lacks: made when needed
    assert not sym.prepares_converter(ann["hr_ecc"], among=3)
    world.clock.advance(3 * 5.0 + 1)  # an expired neighbour is no plan's first choice
    assert not none.prepares_converter(ann["hr_ecc"], among=3)


def test_two_hop_neighbours_come_from_advertised_lists(world: World) -> None:
    from iomt.core.registration import Announcement, NeighbourTable

    ks, check = world.keystore, world.keystore.credential_validator()

    def ann(name: str, x: float, neighbours=()) -> Announcement:  # type: ignore[no-untyped-def]
        ident = ks.identity(name)
        return Announcement(
            ident.uri, "ecc", ("sym-aes",), x, 0.0, 8.0, 5.0, der(ident), tuple(neighbours)
        ).signed_by(ident.signer)

    # a line: A(0) -- B(6) -- C(12); radio range 8: A hears B, B hears C, A never hears C
    a = NeighbourTable(
        "iomt://ward1/A",
        0.0,
        0.0,
        8.0,
        clock=world.clock,
        check_certificate=lambda uri, cert: check(uri.rsplit("/", 1)[-1], cert),
    )
    c_ann = ann("far_ecc", 12.0)
    assert a.on_announcement(c_ann) is RegistrationStatus.NOT_REGISTER
    b_table = NeighbourTable(
        "iomt://ward1/B", 6.0, 0.0, 8.0, clock=world.clock, check_certificate=a._check
    )
    assert b_table.on_announcement(c_ann) is RegistrationStatus.REGISTER
    b_ann = ann("hr_ecc", 6.0, b_table.advertised())
    assert a.on_announcement(b_ann) is RegistrationStatus.REGISTER
    by_uri = {n.uri: n for n in a.neighbours()}
    assert by_uri[c_ann.device_uri].hops == 2
    assert by_uri[c_ann.device_uri].via == b_ann.device_uri
    assert [n.uri for n in a.converters_for("ecc")] == [b_ann.device_uri, c_ann.device_uri]
    assert [n.uri for n in a.converters_for("ecc", max_hops=1)] == [b_ann.device_uri]


def test_decrypting_with_the_wrong_key_fails(world: World) -> None:
    world.grant("dr_house")
    world.grant("dr_other")
    _session(world, "dr_house", "hr_ecc")
    p, d, reply = _ask(world, "dr_house", "hr_ecc", "ecc")
    assert isinstance(reply, Shared)
    other = world.provider("dr_other")
    other._outstanding[reply.envelope.request_id] = (d.uri, "ecc")
    other.channels = p.channels  # even with the HMAC key, the data key is sealed to p
    env = dataclasses.replace(reply.envelope, recipient_uri=other.uri)
    with pytest.raises((DecryptionError, AuthenticationError)):
        other.receive(env)


def test_data_requests_bind_every_field(world: World) -> None:
    world.grant("dr_house")
    _session(world, "dr_house", "hr_ecc")
    p, d = world.provider("dr_house"), world.device("hr_ecc")
    req = p.data_request(d.uri, "ecc")
    changes: list[dict[str, object]] = [
        {"request_id": req.request_id + "x"},
        {"requester_uri": world.provider("dr_other").uri},
        {"technique": "none"},
        {"requester_key": b"\x02" * 33},
        {"nonce": b"x" * 16},
        {"token": _tamper(req.token)},
    ]
    unbound = {f.name for f in dataclasses.fields(DataRequest)} - {
        "proof",  # the tag itself (tampering with it: test_a_replayed_request_is_refused)
        "proof_type",  # selects how the proof is checked, not what it covers
        *(k for c in changes for k in c),
    }
    assert not unbound, f"fields no test changes: {sorted(unbound)}"
    for change in changes:
        reply = d.on_data_request(dataclasses.replace(req, **change))  # type: ignore[arg-type]
        assert isinstance(reply, Refused), change
        # the session's AEAD tag covers every field: a change breaks the proof
        assert reply.reason.startswith("bad-proof"), (change, reply.reason)
    # and the untouched request still goes through
    assert isinstance(d.on_data_request(req), Shared)


def test_session_link_orders_are_authenticated_by_the_session(world: World) -> None:
    world.grant("dr_house")
    _session(world, "dr_house", "bp_sym")
    _p, d, pending = _convert(world, "bp_sym", "cpabe")
    converter_uri = pending.plan.next()
    converter = next(c for c in world.devices.values() if c.uri == converter_uri)
    world.open_session(d.channels, converter.channels)
    order = d.conversion_order(pending, converter_uri)  # type: ignore[arg-type]
    assert order.signature == b"" and order.signature_algorithm == "session-aead"
    # The device's proof of origin is a MAC under its session with the requester.
    assert order.origin_signature[0] == 0x01
    for change in (
        {"requester_uri": world.provider("dr_other").uri},
        {"requested_technique": "ecc"},
        {"payload": _tamper(order.payload)},
    ):
        with pytest.raises(AuthenticationError):
            converter.on_conversion(dataclasses.replace(order, **change), seq=1, stamp_ns=1)  # type: ignore[arg-type]
    # A converter cannot pass off another device's session-link order as signed.
    signed = dataclasses.replace(order, link_technique="none", payload=b"x").signed_by(
        world.keystore.identity("mallory").signer
    )
    with pytest.raises(AuthenticationError):
        converter.on_conversion(signed, seq=1, stamp_ns=1)


def test_a_converter_with_a_session_to_the_requester_publishes_with_an_hmac(world: World) -> None:
    world.grant("dr_house")
    _session(world, "dr_house", "hr_none")
    p, d, pending = _convert(world, "hr_none", "ecc")
    converter_uri = pending.plan.next()
    converter = next(c for c in world.devices.values() if c.uri == converter_uri)
    first = converter.on_conversion(d.conversion_order(pending, converter_uri), 1, 1)  # type: ignore[arg-type]
    assert first.signature_algorithm == "ecdsa-p256" and first.sender_certificate
    assert p.receive(first).converted
    # the converter opens a session with the provider (the node does this after a first
    # conversion); from then on its envelopes are HMAC'd: symmetric on both sides
    world.open_session(converter.channels, p.channels)
    world.record("hr_none")
    _p, _d, pending = _convert(world, "hr_none", "ecc")
    env = converter.on_conversion(d.conversion_order(pending, converter_uri), 2, 2)  # type: ignore[arg-type]
    assert env.signature_algorithm == "hmac-sha256" and not env.sender_certificate
    got = p.receive(env)
    assert got.converted and got.reading_cdr == d.latest().cdr  # type: ignore[union-attr]
    # the HMAC does not replace the device's own proof: a converter still cannot invent
    world.record("hr_none")
    _p, _d, pending = _convert(world, "hr_none", "ecc")
    real = converter.on_conversion(d.conversion_order(pending, converter_uri), 3, 3)  # type: ignore[arg-type]
    session = converter.channels.session("dr_house")
    assert session is not None
    # a dishonest converter swaps the reading and HMACs its own envelope: the device's
    # proof of origin no longer matches what the provider decrypts
    lie = converter.sealer.seal(
        b"fabricated",
        technique="ecc",
        recipient_uri=p.uri,
        recipient_key=world.keystore.identity("dr_house").encryption_key.public_key(),
        device_uri=d.uri,
        request_id=real.request_id,
        seq=real.seq,
    )
    forged = dataclasses.replace(real, key_header=lie[0], ciphertext=lie[1]).signed_by(
        converter.channels.mac_key(session)
    )
    with pytest.raises(AuthenticationError):
        p.receive(forged)


def test_crossing_handshakes_leave_both_sessions_usable(world: World) -> None:
    a, b = world.device("hr_ecc"), world.device("bp_abe")
    ca, cb = a.channels, b.channels
    # both open a session with the other at the same moment
    a1 = ca.start("bp_abe")
    b1 = cb.start("hr_ecc")
    a2 = cb.respond("hr_ecc", a1)
    b2 = ca.respond("bp_abe", b1)
    a3 = ca.finish("bp_abe", a2)
    b3 = cb.finish("hr_ecc", b2)
    a4 = cb.respond("hr_ecc", a3)
    b4 = ca.respond("bp_abe", b3)
    ca.confirm("bp_abe", a4)
    cb.confirm("hr_ecc", b4)
    for sender, receiver, peer in ((ca, cb, "bp_abe"), (cb, ca, "hr_ecc")):
        session = sender.session(peer)
        assert session is not None
        record = session.protect(b"hello", aad=b"x")
        assert receiver.session_of_record(record).unprotect(record, aad=b"x") == b"hello"


def test_an_incapable_device_macs_its_order_once_it_has_a_session(world: World) -> None:
    world.grant("dr_house")
    _session(world, "dr_house", "hr_none")
    _p, d, pending = _convert(world, "hr_none", "ecc")
    converter_uri = pending.plan.next()
    converter = next(c for c in world.devices.values() if c.uri == converter_uri)
    signed = d.conversion_order(pending, converter_uri)  # type: ignore[arg-type]
    assert signed.signature_algorithm == "ecdsa-p256"  # no session yet: a signature
    world.open_session(d.channels, converter.channels)
    order = d.conversion_order(pending, converter_uri)  # type: ignore[arg-type]
    # still plaintext on the hop (the device cannot encrypt), but authenticated by a MAC
    assert order.link_technique == "none" and order.payload == d.latest().cdr  # type: ignore[union-attr]
    assert order.signature_algorithm == "hmac-sha256"
    converter.on_conversion(order, 1, 1)
    with pytest.raises(AuthenticationError):
        converter.on_conversion(dataclasses.replace(order, payload=b"\x00" + order.payload), 2, 2)
    # another device cannot pass a MAC'd order off as hr_none's without hr_none's session
    other = world.device("bp_sym")
    world.open_session(other.channels, converter.channels)
    forged = dataclasses.replace(order, signature=b"").signed_by(
        other.channels.mac_key(other.channels.session(converter.uri.rsplit("/", 1)[-1]))
    )  # type: ignore[arg-type]
    with pytest.raises(AuthenticationError):
        converter.on_conversion(forged, 3, 3)


def test_an_initiator_uses_a_session_only_once_the_responder_confirmed_it(
    world: World,
) -> None:
    a, b = world.device("hr_ecc"), world.device("bp_abe")
    ca, cb = a.channels, b.channels
    m2 = cb.respond("hr_ecc", ca.start("bp_abe"))
    m3 = ca.finish("bp_abe", m2)
    # message 3 in flight (or lost): nothing may be sent on the session yet (MACs from
    # the responder are accepted already: the next test)
    assert ca.session("bp_abe") is None
    # lost for good: the opener abandons it, and there is nothing left to confirm
    ca.abandon("bp_abe")
    with pytest.raises(LocalProtocolError):
        ca.confirm("bp_abe", b"")
    assert ca.mac_verifier("bp_abe") is None
    # a second attempt that is confirmed is usable on both sides
    m2 = cb.respond("hr_ecc", ca.start("bp_abe"))
    m3 = ca.finish("bp_abe", m2)
    m4 = cb.respond("hr_ecc", m3)
    session = ca.confirm("bp_abe", m4)
    assert ca.session("bp_abe") is session
    record = session.protect(b"hi", aad=b"")
    assert cb.session_of_record(record).unprotect(record, aad=b"") == b"hi"


def test_a_mac_from_a_responder_verifies_before_our_confirmation_arrives(world: World) -> None:
    """The responder holds the session once it accepted message 3 and may MAC with it at
    once (a converter publishing to the provider that is opening a session with it); the
    initiator accepts that MAC before its confirmation arrives, without sending on the
    session itself. Nobody else's MAC verifies, and an abandoned handshake's does not."""
    a, b = world.device("hr_ecc"), world.device("bp_abe")
    ca, cb = a.channels, b.channels
    m2 = cb.respond("hr_ecc", ca.start("bp_abe"))
    m3 = ca.finish("bp_abe", m2)
    assert cb.respond("hr_ecc", m3)  # message 4: the responder holds the session now
    tag = cb.mac_key(cb.session("hr_ecc")).sign(b"envelope")  # type: ignore[arg-type]
    assert ca.session("bp_abe") is None  # we do not send on it yet
    verifier = ca.mac_verifier("bp_abe")
    assert verifier is not None
    verifier.verify(b"envelope", tag)
    with pytest.raises(AuthenticationError):
        verifier.verify(b"another envelope", tag)
    # a third party with its own session with us cannot pass its MAC off as bp_abe's
    other = world.device("bp_sym")
    world.open_session(ca, other.channels)
    forged = other.channels.mac_key(other.channels.session("hr_ecc")).sign(b"envelope")  # type: ignore[arg-type]
    with pytest.raises(AuthenticationError):
        verifier.verify(b"envelope", forged)
    # abandoned (the confirmation never came): its MACs are no longer accepted
    ca.abandon("bp_abe")
    assert ca.mac_verifier("bp_abe") is None
    # confirmed instead: the same key, now a live session
    m2 = cb.respond("hr_ecc", ca.start("bp_abe"))
    m3 = ca.finish("bp_abe", m2)
    m4 = cb.respond("hr_ecc", m3)
    tag = cb.mac_key(cb.session("hr_ecc")).sign(b"envelope")  # type: ignore[arg-type]
    ca.mac_verifier("bp_abe").verify(b"envelope", tag)  # type: ignore[union-attr]
    ca.confirm("bp_abe", m4)
    ca.mac_verifier("bp_abe").verify(b"envelope", tag)  # type: ignore[union-attr]
