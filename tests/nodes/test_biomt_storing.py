"""A BIoMT device's Stores on the wire, without DDS (fake calls, the bolster's core as the
server): the Store and the base store take turns going first; an acknowledged Store is
timed and written to the ack log, a retry is not timed; a removal is told once."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from core.biomt.biomt_world import World
from iomt.core.biomt import StoreRequest
from iomt.core.biomt.storing import DeviceStores
from iomt.core.replies import ReplyChecker
from iomt.core.vitals import Reading, VitalKind
from iomt.msg import BolsterService
from iomt.nodes.biomt_storing import StoreLink

_R = BolsterService.Response
HR = Reading(VitalKind.HEART_RATE, 1, heart_rate_bpm=70.0)


class FakeLogger:
    def __init__(self) -> None:
        self.warnings: list[str] = []

    def warning(self, msg: str, *args: Any) -> None:
        self.warnings.append(msg % args)


class FakeNode:
    def __init__(self) -> None:
        self.log = FakeLogger()

    def get_logger(self) -> FakeLogger:
        return self.log


class FakeCalls:
    def __init__(self) -> None:
        self.made: list[dict[str, Any]] = []

    def call(self, client: str, request: Any, **kw: Any) -> None:
        self.made.append({"client": client, "request": request, **kw})

    def take(self) -> list[dict[str, Any]]:
        made, self.made = self.made, []
        return made


@pytest.fixture
def world() -> Any:
    w = World()
    yield w
    w.close()


def _link(world: World, tmp_path: Path) -> tuple[StoreLink, DeviceStores, FakeCalls, FakeNode]:
    stores = DeviceStores(world.device())
    node, calls = FakeNode(), FakeCalls()
    link = StoreLink(
        node,  # type: ignore[arg-type]
        stores,
        calls=calls,  # type: ignore[arg-type]
        checker=ReplyChecker(lambda *a: None),
        client=lambda peer, service: f"{peer}/{service}",  # type: ignore[arg-type,return-value]
        bolster="bolster-a",
        base=True,
        ack_log=str(tmp_path / "acks" / "hr.jsonl"),
        timeout_s=2.0,
    )
    return link, stores, calls, node


def _ok(world: World, call: dict[str, Any]) -> None:
    """The bolster stores what ``call`` carries and answers OK."""
    request = StoreRequest.from_bytes(bytes(call["request"].body))
    receipt = world.bolster.store(request).receipt
    call["on_done"](_R(status=_R.STATUS_OK, body=list(receipt.to_bytes())))


def test_stores_and_base_stores_alternate_and_are_timed(world: World, tmp_path: Path) -> None:
    link, stores, calls, _ = _link(world, tmp_path)
    link.on_reading(HR, world.clock())
    first = calls.take()
    assert [c["client"] for c in first] == ["bolster-a/store", "bolster-a/base/store"]
    link.on_reading(HR, world.clock())
    second = calls.take()
    assert [c["client"] for c in second] == ["bolster-a/base/store", "bolster-a/store"]
    assert all(c["timeout_s"] == 2.0 for c in first + second)
    assert first[0]["accept"] is not None  # the Store's answer must prove itself
    _ok(world, first[0])
    second[0]["on_done"](_R(status=_R.STATUS_OK))
    first[1]["on_done"](_R(status=_R.STATUS_UNAVAILABLE))
    assert len(link.store_us) == 1 and len(link.base_store_us) == 1
    assert (stores.counts["acknowledged"], link.base_acknowledged) == (1, 1)
    lines = (tmp_path / "acks" / "hr.jsonl").read_text().splitlines()
    assert [json.loads(line)["counter"] for line in lines] == [1]
    link.close()


def test_a_lost_store_goes_again_and_its_delay_is_not_the_papers(
    world: World, tmp_path: Path
) -> None:
    link, stores, calls, _ = _link(world, tmp_path)
    link.on_reading(HR, world.clock())
    lost = calls.take()[0]
    lost["on_error"](TimeoutError("no answer"))
    assert len(stores.backlog) == 1
    link.on_reading(HR, world.clock())
    store = calls.take()[1]
    _ok(world, store)
    retry = calls.take()
    assert [c["client"] for c in retry] == ["bolster-a/store"]
    _ok(world, retry[0])
    assert stores.counts["acknowledged"] == 2 and len(link.store_us) == 1
    link.close()


def test_a_removal_is_told_once_and_stops_the_stores(world: World, tmp_path: Path) -> None:
    link, stores, calls, node = _link(world, tmp_path)
    link.on_reading(HR, world.clock())
    link.on_reading(HR, world.clock())
    a, _, _, b = calls.take()
    a["on_done"](_R(status=_R.STATUS_REFUSED, reason="stale"))
    for call in (b, b):
        call["on_done"](_R(status=_R.STATUS_REMOVED, reason="removed"))
    assert node.log.warnings == [
        "Store 1 refused: store: stale",
        "removed by the bolster; key forgotten",
    ]
    assert not stores.active
    link.on_reading(HR, world.clock())
    assert calls.take() == []
    link.close()
