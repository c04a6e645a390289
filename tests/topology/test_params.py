"""Typed node parameters: checked and parsed when the plan is built, one default each."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import json
from typing import Any

import pytest

from iomt.errors import ConfigurationError
from iomt.launch.group import parse_options
from iomt.topology import available, load
from iomt.topology.params import (
    PARAMS,
    BolsterParams,
    Cluster,
    DeviceBiomt,
    DeviceParams,
    Params,
    PhysicianBiomt,
    VitalsSensorParams,
    WalletDevice,
    parse_value,
)
from iomt.topology.spec import LaunchPlan, NodeSpec, ProcessSpec

DEVICE = "iomt.nodes.device:device_node"
BOLSTER = "iomt.nodes.bolster:bolster_node"
SENSOR = "iomt.nodes.examples:vitals_sensor"


def _device(**params: Any) -> NodeSpec:
    base = {
        "keystore": "/tmp/ks",
        "capability": "ecc",
        "kind": "heart_rate",
        "x": 1.0,
        "y": 2.0,
        "wallet": "wallet_0",
    }
    return NodeSpec(DEVICE, "hr_0", "/ward1", {**base, **params})


def _bolster(**params: Any) -> NodeSpec:
    base = {"keystore": "/tmp/ks", "storage_dir": "/tmp/st", "users": [["admin", "admin"]]}
    return NodeSpec(BOLSTER, "bolster_0", "/ward1", {**base, **params})


def _nodes(plan: LaunchPlan) -> list[NodeSpec]:
    return [n for p in plan.processes for n in p.nodes]


# -- refused, naming the node and the key ------------------------------------------------------


def test_an_unknown_parameter_is_refused_naming_the_node_and_the_key() -> None:
    with pytest.raises(ConfigurationError, match=r"/ward1/hr_0: unknown parameter 'colour'"):
        _device(colour="red")


def test_a_wrong_type_is_refused_naming_the_node_and_the_key() -> None:
    with pytest.raises(ConfigurationError, match=r"/ward1/hr_0: parameter 'x' must be a float"):
        _device(x="near the bed")
    with pytest.raises(ConfigurationError, match=r"/ward1/hr_0: parameter 'seed' must be an int"):
        _device(seed=1.5)
    with pytest.raises(ConfigurationError, match=r"/ward1/hr_0: parameter 'capability'"):
        _device(capability="quantum")
    with pytest.raises(ConfigurationError, match=r"/ward1/hr_0: parameter 'providers'"):
        _device(providers=["dr_0", "dr_1", 3])


def test_a_missing_parameter_is_refused_naming_the_node_and_the_key() -> None:
    with pytest.raises(ConfigurationError, match=r"/ward1/hr_1: missing parameter 'wallet'"):
        NodeSpec(
            DEVICE,
            "hr_1",
            "/ward1",
            {"keystore": "k", "capability": "none", "kind": "heart_rate", "x": 0, "y": 0},
        )


def test_a_bad_synchronous_value_is_refused_not_taken_for_full() -> None:
    with pytest.raises(
        ConfigurationError,
        match=r"/ward1/bolster_0: parameter 'synchronous' must be one of 'FULL', 'NORMAL', "
        r"not 'OFF'",
    ):
        _bolster(synchronous="OFF")
    assert _bolster(synchronous="normal").params["synchronous"] == "NORMAL"
    with pytest.raises(ConfigurationError, match=r"topology scale_10: option 'synchronous'"):
        load("scale_10", mode="biomt", synchronous="OFF")


def test_an_unknown_node_factory_is_refused() -> None:
    with pytest.raises(ConfigurationError, match=r"/a/x: unknown node factory 'no.such:node'"):
        NodeSpec("no.such:node", "x", "/a")


def test_a_plan_is_checked_as_it_is_built() -> None:
    """A bad parameter never reaches a container: building the plan fails."""
    with pytest.raises(ConfigurationError, match="unknown parameter 'colour'"):
        LaunchPlan("t", "", (ProcessSpec("p", (NodeSpec(SENSOR, "s", "/demo", {"colour": 1}),)),))


# -- parsed by the field's type ----------------------------------------------------------------


def test_command_line_text_is_parsed_by_the_field_type() -> None:
    spec = NodeSpec(SENSOR, "s", "/demo", {"period_s": "0.5", "seed": "7", "kind": "HEART_RATE"})
    assert spec.params == VitalsSensorParams(kind="heart_rate", seed=7, period_s=0.5)
    assert isinstance(spec.params["period_s"], float)
    device = _device(x="1.25", providers="dr_0,dr_1", radio_range=12)
    assert device.params["x"] == 1.25
    assert device.params["providers"] == ("dr_0", "dr_1")
    assert device.params["radio_range"] == 12.0 and isinstance(device.params["radio_range"], float)


def test_topology_options_from_a_launch_file_are_parsed_by_type() -> None:
    """What ``iomt-group --option key=value`` hands the generator: text, parsed there."""
    options = parse_options(["start-delay-s=0.5", "record=false", "requests=20", "seed=3"])
    assert options == {"start_delay_s": "0.5", "record": "false", "requests": "20", "seed": "3"}
    plan = load("scale_10", **options)
    providers = [n for n in _nodes(plan) if n.name.startswith("dr_")]
    assert {p.params["start_delay_s"] for p in providers} == {0.5}
    assert sum(p.params["requests"] for p in providers) == 20
    assert "recorder" not in {p.name for p in plan.processes}
    assert plan == load("scale_10", start_delay_s=0.5, record=False, requests=20, seed=3)


def test_an_unknown_topology_option_is_refused() -> None:
    with pytest.raises(ConfigurationError, match=r"topology demo: unknown option 'devices'"):
        load("demo", devices=3)
    with pytest.raises(ConfigurationError, match=r"topology scale_10: unknown option 'colour'"):
        load("scale_10", colour="red")
    with pytest.raises(ConfigurationError, match=r"topology scale_10: unknown option 'colour'"):
        load("scale_10", mode="biomt", colour="red")
    with pytest.raises(ConfigurationError, match=r"topology fleet: option 'devices' must be an"):
        load("fleet", devices="many")


@pytest.mark.parametrize(
    ("value", "tp", "expected"),
    [
        ("true", bool, True),
        ("off", bool, False),
        ("-3", int, -3),
        ("2e-3", float, 0.002),
        ("a,b", tuple[str, ...], ("a", "b")),
        ('["a", "b"]', tuple[str, ...], ("a", "b")),
        ("", tuple[str, ...], ()),
        (None, int | None, None),
        ("4", int | None, 4),
        ("[0.2, 0, 0.6, 0.2]", tuple[float, ...], (0.2, 0.0, 0.6, 0.2)),
    ],
)
def test_parse_value(value: Any, tp: Any, expected: Any) -> None:
    assert parse_value(value, tp) == expected


@pytest.mark.parametrize(
    ("value", "tp"), [("maybe", bool), ("1.5", int), (True, int), (True, float), (3, str)]
)
def test_parse_value_refuses(value: Any, tp: Any) -> None:
    with pytest.raises(ValueError, match="must be"):
        parse_value(value, tp)


# -- one default each: the node takes its kind ------------------------------------------------

#: Node kinds whose constructor still declares every setting again as a keyword argument
#: with a default, held equal to the kind's fields below. Every other node takes its kind's
#: ``Params`` as its one ``config`` parameter and its factory builds it. This list must only
#: shrink: a kind converted and left here fails.
KEYWORD_DEFAULTS: set[str] = set()
#: The same for the sections a node hands on to a part of itself.
SECTIONS_ON_KEYWORDS: set[type[Params]] = set()

SECTIONS = {
    DeviceBiomt: "iomt.nodes.biomt_device:BiomtDeviceLink",
    PhysicianBiomt: "iomt.nodes.biomt_physician:BiomtPhysician",
    Cluster: "iomt.nodes.cluster_head:ClusterAgent",
}


def _constructor(factory: str) -> Any:
    """What declares a node's parameters: its factory, or the class the factory builds
    (``f(context, **params) -> Kind``)."""
    module, _, attr = factory.partition(":")
    fn = getattr(importlib.import_module(module), attr)
    sig = inspect.signature(fn)
    if any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()):
        return getattr(importlib.import_module(module), sig.return_annotation).__init__
    return fn


def _config_parameter(fn: Any, kind: type[Params]) -> str | None:
    """The parameter of ``fn`` annotated with ``kind`` (or ``kind | None``, or an alias)."""
    for p in inspect.signature(fn).parameters.values():
        names = str(p.annotation).split(" | ") if isinstance(p.annotation, str) else []
        if any(fn.__globals__.get(n.strip()) is kind for n in names) or p.annotation is kind:
            return p.name
    return None


def _keywords(fn: Any) -> dict[str, Any]:
    return {
        p.name: p.default
        for p in inspect.signature(fn).parameters.values()
        if p.kind is p.KEYWORD_ONLY and p.name not in ("name", "namespace")
    }


def _assert_same_defaults(kind: type[Params], declared: dict[str, Any]) -> None:
    fields = {f.name: f.default for f in dataclasses.fields(kind)}
    assert set(fields) <= set(declared), f"{kind.__name__}: {sorted(set(fields) - set(declared))}"
    for name, default in fields.items():
        if default is dataclasses.MISSING:
            assert declared[name] is inspect.Parameter.empty, f"{kind.__name__}.{name}"
        else:
            given = declared[name]
            assert default == (tuple(given) if isinstance(given, list) else given), (
                f"{kind.__name__}.{name}"
            )


@pytest.mark.parametrize("factory", sorted(PARAMS))
def test_each_kind_is_declared_once_its_node_takes_it_as_its_config(factory: str) -> None:
    kind = PARAMS[factory]
    constructor = _constructor(factory)
    config = _config_parameter(constructor, kind)
    declared = _keywords(constructor)
    if factory in KEYWORD_DEFAULTS:  # not converted yet: the defaults are held equal
        assert config is None, f"{factory} takes its {kind.__name__}: drop it from the list"
        assert set(declared) == {f.name for f in dataclasses.fields(kind)}
        _assert_same_defaults(kind, declared)
        return
    assert config is not None, f"{factory}'s node does not take its {kind.__name__}"
    assert set(declared) == {config}, f"{factory} declares settings again: {sorted(declared)}"


class _Unattached:
    """A context no node may reach: the factory refuses the parameters first."""

    def attach_node(self, node: Any) -> None:
        pass


@pytest.mark.parametrize("factory", sorted(set(PARAMS) - KEYWORD_DEFAULTS))
def test_a_node_factory_refuses_a_parameter_naming_the_node(factory: str) -> None:
    """What a container passes the factory is parsed into its kind, naming the node."""
    module, _, attr = factory.partition(":")
    make = getattr(importlib.import_module(module), attr)
    with pytest.raises(ConfigurationError, match=r"^node /ward1/x_0: unknown parameter 'colour'"):
        make(_Unattached(), name="x_0", namespace="/ward1", colour="red")


@pytest.mark.parametrize("section", sorted(SECTIONS, key=lambda s: s.__name__))
def test_a_nested_section_is_declared_once_what_the_node_hands_it_to_takes_it(
    section: type[Params],
) -> None:
    """A node hands its ``biomt`` / ``cluster`` section on to a part of itself, which takes
    the section itself -- or, until converted, its fields as keyword arguments with the
    same defaults."""
    module, _, attr = SECTIONS[section].partition(":")
    constructor = getattr(importlib.import_module(module), attr).__init__
    taken = _config_parameter(constructor, section)
    declared = _keywords(constructor)
    if section in SECTIONS_ON_KEYWORDS:
        assert taken is None, f"{attr} takes its {section.__name__}: drop it from the list"
        fields = {f.name: f.default for f in dataclasses.fields(section)}
        for name, default in fields.items():
            assert name in declared, f"{section.__name__}.{name}"
            if default is not dataclasses.MISSING:
                assert default == declared[name], f"{section.__name__}.{name}"
        return
    assert taken is not None, f"{attr} does not take its {section.__name__}"
    again = sorted(set(declared) & {f.name for f in dataclasses.fields(section)})
    assert not again, f"{attr} declares {section.__name__}'s settings again: {again}"


def test_a_nested_section_is_checked_too() -> None:
    with pytest.raises(
        ConfigurationError,
        match=r"/ward1/hr_0: parameter 'biomt' is not a valid DeviceBiomt: unknown parameter "
        r"'colour'",
    ):
        _device(biomt={"bolster": "b", "admin": "a", "colour": 1})
    with pytest.raises(ConfigurationError, match=r"bolster_0: parameter 'cluster' .* 'members'"):
        _bolster(cluster={"id": "c", "members": {"bolster_0": "first"}})
    assert _bolster(cluster={"id": "c", "members": {"bolster_0": "3"}}).params["cluster"] == (
        Cluster(id="c", members={"bolster_0": 3})
    )


def test_a_bolster_allows_the_node_s_request_rate() -> None:
    assert _bolster().params["request_rate"] == 1000.0


# -- as data: read like a mapping, round trip through a spec file ------------------------------


def test_params_read_as_the_keyword_arguments_they_stand_for() -> None:
    spec = _device(biomt={"bolster": "bolster_0", "admin": "admin"})
    params = spec.params
    assert isinstance(params, DeviceParams)
    assert params["x"] == 1.0 and params.get("colour") is None and "wallet" in params
    assert {**params}["capability"] == "ecc"
    assert set(params) == {f.name for f in dataclasses.fields(DeviceParams)}
    wallet = NodeSpec(
        "iomt.nodes.wallet:wallet_node",
        "wallet_0",
        "/ward1",
        {
            "keystore": "k",
            "patient_id": "p",
            "providers": [],
            "devices": [{"name": "hr_0", "technique": "ecc", "kind": 0}],
        },
    )
    assert wallet.params["devices"] == (WalletDevice(name="hr_0", technique="ecc", kind=0),)


def test_every_topology_s_specs_round_trip_through_json(tmp_path: Any) -> None:
    for name in available():
        options: dict[str, Any] = {"devices": 4} if name == "fleet" else {}
        if name == "case_study" or name.startswith("scale_"):
            options["run_dir"] = str(tmp_path)
        modes = ("distributed", "centralized", "biomt") if name == "scale_10" else (None,)
        for mode in modes:
            plan = load(name, **options, **({"mode": mode} if mode else {}))
            for node in _nodes(plan):
                raw = json.loads(json.dumps(node.to_json()))
                assert NodeSpec.from_json(raw) == node
                assert set(raw["params"]) == set(PARAMS[node.factory]._names())


def test_the_biomt_ward_types_its_bolsters() -> None:
    plan = load("scale_10", mode="biomt", synchronous="normal", run_dir="/tmp/unused")
    bolsters = [n.params for n in _nodes(plan) if n.factory == BOLSTER]
    assert bolsters and all(isinstance(b, BolsterParams) for b in bolsters)
    assert {b["synchronous"] for b in bolsters} == {"NORMAL"}
    assert plan.facts["biomt"]["synchronous"] == "NORMAL"
    # a ward on rclpy over Fast DDS records topics only, in either mode
    quiet = load("scale_10", mode="biomt", record_services="false", run_dir="/tmp/unused")
    assert quiet.process("recorder").nodes[0].params["services"] is False
