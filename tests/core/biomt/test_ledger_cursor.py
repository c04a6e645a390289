"""A bolster's recorders get every appended transaction once: what a request appended,
what a denial or a policy block appended beside it, and after a restart only what is new."""

from __future__ import annotations

import pytest
from biomt_world import SECOND, World, heart_rate

from iomt.core.biomt import AccessDeniedError
from iomt.core.biomt.feed import LedgerCursor


def test_every_appended_transaction_is_owed_once(world: World) -> None:
    cursor = LedgerCursor(world.bolster.ledger)
    assert cursor.appended() == []
    dev = world.device()  # an Origin, and a policy block beside it
    origin = cursor.appended()
    assert [tx.seq for tx in origin] == list(range(world.bolster.ledger.size))
    assert cursor.appended() == []
    world.clock.advance(SECOND)
    result = world.bolster.store(dev.store_request(heart_rate(70, world.clock())))
    receipt = result.receipt
    known = (receipt.transaction, receipt.receipt.block_index)
    assert cursor.appended(known) == [receipt.transaction]
    assert cursor.position == world.bolster.ledger.size


def test_a_denial_is_owed_too(world: World) -> None:
    dev = world.device()
    cursor = LedgerCursor(world.bolster.ledger)
    req = world.insurer.access("bolster-a", dev.pseudonym)
    with pytest.raises(AccessDeniedError) as info:
        world.bolster.access(req)
    assert [tx.seq for tx in cursor.appended()] == [info.value.transaction.seq]  # type: ignore[union-attr]


def test_a_known_transaction_that_is_not_the_only_one_owed_is_read_back(world: World) -> None:
    cursor = LedgerCursor(world.bolster.ledger)
    dev = world.device()
    world.clock.advance(SECOND)
    result = world.bolster.store(dev.store_request(heart_rate(70, world.clock())))
    known = (result.receipt.transaction, result.receipt.receipt.block_index)
    owed = cursor.appended(known)
    assert [tx.seq for tx in owed] == list(range(world.bolster.ledger.size))
    assert owed[-1] == result.receipt.transaction


def test_a_restarted_bolster_owes_only_what_is_new(world: World) -> None:
    dev = world.device()
    cursor = LedgerCursor(world.restart().ledger)
    assert cursor.position == world.bolster.ledger.size
    assert cursor.appended() == []
    world.clock.advance(SECOND)
    world.store(dev, 71)
    assert len(cursor.appended()) == 1
