"""The headline claim, proven on the sans-IO core: an incapable device's plaintext crosses
at most one hop (Alg. 3 with the link rules of docs/sharing.md).

Every world here has a capable converter two hops away from the incapable device — one the
device knows about (from a neighbour's announcement) and that could apply the requested
technique — so that only the one-hop rule keeps the plaintext from going there. Each test
first checks that the two-hop converter is really on offer; otherwise it would prove
nothing. Three places enforce the rule, and each has its tests:

* the planner (``conversion.plan``): an incapable device's candidates are 1-hop only;
* the device's fallback (``ConversionPlan.next`` after failures, ``DeviceCore``): when the
  1-hop converters fail or there are none, it refuses rather than go further;
* the converter (``conversion.accept``): an order from anything but a registered 1-hop
  neighbour is refused, even when the converter knows the device's key.

A line of devices, radio range 8 (a link needs both ends within range)::

    near_ecc (0, 5)
       |
    hr_none (0, 0) ---- relay (6, 0) ---- far_ecc (12, 0)

hr_none hears near_ecc (5) and relay (6), not far_ecc (12); relay hears far_ecc (6) and
advertises it, so hr_none knows far_ecc as a 2-hop neighbour that applies ECC. relay cannot
convert to ECC (symmetric only). bp_sym (0, 1) is a symmetric device beside hr_none: it may
use 2-hop converters (its hop is protected by a session), which shows the world offers them.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from core.sharing_world import World, build_world
from iomt.core import conversion
from iomt.core.conversion import ConversionRefusedError
from iomt.core.device import Converting, Refused
from iomt.crypto.techniques import Capability

LINE = {
    "hr_none": (Capability.NONE, 0.0, 0.0),
    "bp_sym": (Capability.SYMMETRIC, 0.0, 1.0),
    "near_ecc": (Capability.ECC, 0.0, 5.0),
    "relay": (Capability.SYMMETRIC, 6.0, 0.0),
    "far_ecc": (Capability.ECC, 12.0, 0.0),
}
FAR_ONLY = {name: spec for name, spec in LINE.items() if name != "near_ecc"}


def _world(tmp_path: Path, devices: dict[str, tuple[Capability, float, float]]) -> World:
    w = build_world(tmp_path, devices)
    w.announce_all()
    for name in w.devices:
        w.record(name)
    w.grant("dr_house")
    return w


@pytest.fixture
def line(tmp_path: Path) -> World:
    return _world(tmp_path, LINE)


@pytest.fixture
def far_only(tmp_path: Path) -> World:
    return _world(tmp_path, FAR_ONLY)


def _uri(w: World, name: str) -> str:
    return w.device(name).uri


def _hops(w: World, device: str, other: str) -> int | None:
    """How far ``device``'s own table puts ``other`` (None: unknown)."""
    by_uri = {n.uri: n.hops for n in w.device(device).table.neighbours()}
    return by_uri.get(_uri(w, other))


def _assert_two_hop_converter_on_offer(w: World) -> None:
    """The premise: far_ecc is known to hr_none, 2 hops away, able to apply ECC."""
    assert _hops(w, "hr_none", "far_ecc") == 2
    assert _hops(w, "hr_none", "relay") == 1
    offered = [n.uri for n in w.device("hr_none").table.converters_for("ecc")]
    assert _uri(w, "far_ecc") in offered


def _ask(w: World, device: str, technique: str = "ecc"):  # type: ignore[no-untyped-def]
    w.open_session(w.provider("dr_house").channels, w.device(device).channels)
    p, d = w.provider("dr_house"), w.device(device)
    return d.on_data_request(p.data_request(d.uri, technique))


# -- the planner -----------------------------------------------------------------------------


def test_plaintext_never_travels_more_than_one_hop(line: World) -> None:
    _assert_two_hop_converter_on_offer(line)
    d = line.device("hr_none")
    plan = conversion.plan(d.table, "ecc", can_encrypt=False)
    assert plan.candidates == [_uri(line, "near_ecc")]
    assert all(d.table.one_hop(uri) is not None for uri in plan.candidates)
    # the same table, for a device that could protect the hop, does offer the 2-hop one
    assert conversion.plan(d.table, "ecc", can_encrypt=True).candidates == [
        _uri(line, "near_ecc"),
        _uri(line, "far_ecc"),
    ]


def test_incapable_device_plans_its_conversion_through_one_hop_neighbours_only(
    line: World,
) -> None:
    reply = _ask(line, "hr_none")
    assert isinstance(reply, Converting), reply
    assert reply.plan.candidates == [_uri(line, "near_ecc")]


def test_a_device_that_can_encrypt_may_use_a_two_hop_converter(line: World) -> None:
    # The control: bp_sym hears relay too, and its plan reaches far_ecc.
    assert _hops(line, "bp_sym", "far_ecc") == 2
    reply = _ask(line, "bp_sym")
    assert isinstance(reply, Converting), reply
    assert reply.plan.candidates == [_uri(line, "near_ecc"), _uri(line, "far_ecc")]


# -- the device's fallback -------------------------------------------------------------------


def test_incapable_device_falls_back_to_no_one_when_its_one_hop_converters_fail(
    line: World,
) -> None:
    reply = _ask(line, "hr_none")
    assert isinstance(reply, Converting), reply
    first = reply.plan.next()
    assert first == _uri(line, "near_ecc")
    reply.plan.failed(first, "timeout")
    assert reply.plan.next() is None  # not far_ecc: the plaintext would cross two hops
    assert "near_ecc: timeout" in reply.plan.explain()


def test_incapable_device_with_only_two_hop_converters_refuses(far_only: World) -> None:
    _assert_two_hop_converter_on_offer(far_only)
    reply = _ask(far_only, "hr_none")
    assert isinstance(reply, Refused), reply
    assert reply.reason.startswith("no-capable-neighbour"), reply.reason
    assert far_only.device("hr_none").counters["converting"] == 0


def test_a_forgotten_converter_is_not_replaced_by_a_two_hop_one(line: World) -> None:
    # A converter that stayed silent is forgotten (the node does this on a timeout); the
    # next request must not reach past it.
    d = line.device("hr_none")
    d.table.forget(_uri(line, "near_ecc"))
    reply = _ask(line, "hr_none")
    assert isinstance(reply, Refused), reply
    assert reply.reason.startswith("no-capable-neighbour"), reply.reason


# -- the converter's acceptance --------------------------------------------------------------


def _order_for(w: World, converter: str) -> conversion.ConversionOrder:
    """hr_none's (signed, plaintext) order addressed to ``converter``."""
    reply = _ask(w, "hr_none")
    assert isinstance(reply, Converting), reply
    order = w.device("hr_none").conversion_order(reply, _uri(w, converter))
    assert order.link_technique == conversion.LINK_NONE
    assert order.payload == w.device("hr_none").latest().cdr  # type: ignore[union-attr]
    return order


def test_converter_accepts_a_plaintext_order_from_its_one_hop_neighbour(line: World) -> None:
    order = _order_for(line, "near_ecc")
    near = line.device("near_ecc")
    neighbour = near.table.one_hop(_uri(line, "hr_none"))
    assert neighbour is not None and neighbour.hops == 1
    reading = conversion.accept(
        order,
        converter_uri=near.uri,
        applicable=near.config.applicable,
        neighbour=neighbour,
        session=None,
    )
    assert reading == order.payload


def test_converter_refuses_a_plaintext_order_that_crossed_two_hops(line: World) -> None:
    # hr_none itself will not address its plaintext to a converter two hops away ...
    reply = _ask(line, "hr_none")
    assert isinstance(reply, Converting)
    with pytest.raises(ConversionRefusedError, match="not a 1-hop neighbour"):
        line.device("hr_none").conversion_order(reply, _uri(line, "far_ecc"))
    # ... and an order relayed there (re-addressed on the way) is refused by the converter
    order = dataclasses.replace(_order_for(line, "near_ecc"), converter_uri=_uri(line, "far_ecc"))
    far = line.device("far_ecc")
    # far_ecc knows hr_none only as a 2-hop neighbour (through relay's announcement) ...
    two_hop = next(n for n in far.table.neighbours() if n.uri == _uri(line, "hr_none"))
    assert two_hop.hops == 2 and far.table.one_hop(two_hop.uri) is None
    with pytest.raises(ConversionRefusedError, match="not a registered neighbour"):
        far.on_conversion(order, seq=1, stamp_ns=1)
    assert far.counters["conversion_refused"] == 1
    # ... and refuses even if it held the device's key for that entry: the hop count decides.
    keyed = dataclasses.replace(
        two_hop,
        verifier=line.device("near_ecc").table.one_hop(two_hop.uri).verifier,  # type: ignore[union-attr]
    )
    assert keyed.verifier is not None
    with pytest.raises(ConversionRefusedError, match="not a registered neighbour"):
        conversion.accept(
            order,
            converter_uri=far.uri,
            applicable=far.config.applicable,
            neighbour=keyed,
            session=None,
        )
