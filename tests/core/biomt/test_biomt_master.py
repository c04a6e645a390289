"""Several bolsters: the master bolster's shared chain of origins."""

from __future__ import annotations

import dataclasses

import pytest
from biomt_world import World

from iomt.core.biomt import (
    BiomtStateError,
    Bolster,
    BolsterIdentity,
    MasterBolster,
    ProvisioningError,
    UnknownBolsterError,
)
from iomt.core.biomt.keys import LedgerKey
from iomt.crypto.signing import Ed25519Signer
from iomt.ledger import MemoryStorage, TxType, audit


def _second_bolster(world: World) -> Bolster:
    identity = BolsterIdentity.generate(
        "bolster-b", world.ca, now=world.clock(), storage_secret=world.rng(32)
    )
    return Bolster.open(
        identity,
        MemoryStorage(),
        ca=world.ca,
        users=world.users,
        policy=world.policy,
        clock=world.clock,
        rng=world.rng,
    )


def _master(world: World) -> MasterBolster:
    return MasterBolster.open(
        MemoryStorage(),
        LedgerKey(Ed25519Signer.from_private_bytes(world.rng(32))),
        facility_id="facility-a",
        anchor=world.ca.anchor,
        clock=world.clock,
    )


def test_device_origins_are_chained_to_their_bolster_origin(world: World) -> None:
    master = _master(world)
    b = _second_bolster(world)
    member_a, _ = master.admit(world.bolster.own_origin())
    member_b, _ = master.admit(b.own_origin())
    assert member_a.origin_hash != member_b.origin_hash
    assert master.ledger.privacy_header.authorized_devices == {"bolster-a", "bolster-b"}
    dev = world.device()
    master.chain_device(world.bolster.origin_link(dev.pseudonym))
    body, member = master.device_chain("bolster-a", dev.pseudonym)
    assert body.bolster_origin_hash == member.origin_hash == member_a.origin_hash
    assert body.device_origin_leaf == world.bolster.ledger.get_transaction(0).leaf_hash()
    assert all(tx.tx_type is TxType.ORIGIN for tx in master.ledger.transactions())
    audit(master.ledger.storage, master.ledger.public_key_bytes)
    # the shared chain survives a restart of the master
    again = MasterBolster(master.ledger, anchor=world.ca.anchor, clock=world.clock)
    assert again.device_chain("bolster-a", dev.pseudonym)[0] == body
    with pytest.raises(BiomtStateError):
        again.chain_device(world.bolster.origin_link(dev.pseudonym))


def test_master_refuses_forged_origins_and_links(world: World) -> None:
    master = _master(world)
    origin = world.bolster.own_origin()
    with pytest.raises(ProvisioningError):
        master.admit(dataclasses.replace(origin, facility_id="facility-z"))
    impostor = Ed25519Signer.generate()
    with pytest.raises(ProvisioningError):
        master.admit(dataclasses.replace(origin, public_key=impostor.verifier().public_bytes()))
    master.admit(origin)
    with pytest.raises(BiomtStateError):
        master.admit(origin)
    dev = world.device()
    world.store(dev, 70)
    link = world.bolster.origin_link(dev.pseudonym)
    store_tx = world.bolster.ledger.get_transaction(1)
    forged = dataclasses.replace(link, origin=store_tx)
    forged = dataclasses.replace(
        forged, signature=world.identity.signer.sign(forged.signed_bytes())
    )
    with pytest.raises(ProvisioningError):
        master.chain_device(forged)
    with pytest.raises(ProvisioningError):
        master.chain_device(dataclasses.replace(link, device="dev-other"))
    with pytest.raises(UnknownBolsterError):
        master.chain_device(dataclasses.replace(link, bolster_id="bolster-z"))
    master.chain_device(link)
