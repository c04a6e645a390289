"""Built-in topologies by name: ``load("demo")`` -> LaunchPlan.

A generator's keyword-only parameters are its options, typed: ``load`` parses each option
by its annotation (``"0.5"`` from a command line becomes ``0.5``), and an option the
generator does not take is a ConfigurationError, as is a value of the wrong type.
"""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable, Mapping
from typing import Any

from iomt.errors import ConfigurationError
from iomt.topology.biomt import biomt_plan
from iomt.topology.params import (
    VitalKindName,
    VitalsMonitorParams,
    VitalsSensorParams,
    parse_value,
)
from iomt.topology.sharing import case_study_plan, sharing_plan
from iomt.topology.spec import LaunchPlan, NodeSpec, ProcessSpec, split_into_groups

Generator = Callable[..., LaunchPlan]

#: Every namespace the built-in topologies put nodes in (tests/runtime/test_launch.py keeps
#: this true): nodes there belong to an iomt ward, whatever its topology.
WARD_NAMESPACES = ("/demo", "/fleet", "/iomt", "/ward1")
_REGISTRY: dict[str, tuple[Generator, str]] = {}
KINDS: tuple[VitalKindName, ...] = ("heart_rate", "blood_pressure")


def register(name: str, summary: str) -> Callable[[Generator], Generator]:
    """Register ``fn`` under ``name``: its keyword-only parameters are its typed options
    (a generator that takes ``**options`` checks them itself)."""

    def wrap(fn: Generator) -> Generator:
        _REGISTRY[name] = (fn if _takes_any(fn) else _typed(name, fn), summary)
        return fn

    return wrap


def _takes_any(fn: Generator) -> bool:
    return any(p.kind is p.VAR_KEYWORD for p in inspect.signature(fn).parameters.values())


def available() -> dict[str, str]:
    return {name: summary for name, (_fn, summary) in sorted(_REGISTRY.items())}


def load(name: str, **options: Any) -> LaunchPlan:
    try:
        fn, _summary = _REGISTRY[name]
    except KeyError:
        raise ConfigurationError(
            f"unknown topology {name!r}; available: {', '.join(sorted(_REGISTRY))}"
        ) from None
    return fn(**options)


@functools.cache
def _options_of(fn: Generator) -> dict[str, Any]:
    """A generator's options: its keyword-only parameters and their types."""
    hints = typing.get_type_hints(fn)
    return {
        p.name: hints[p.name]
        for p in inspect.signature(fn).parameters.values()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    }


def call_with_options(
    fn: Generator, topology: str, options: Mapping[str, Any], *args: Any
) -> LaunchPlan:
    """``fn(*args, **options)``, each option parsed by its type; refuses unknown ones."""
    known = _options_of(fn)
    parsed: dict[str, Any] = {}
    for key, value in options.items():
        if key not in known:
            raise ConfigurationError(
                f"topology {topology}: unknown option {key!r} (known: {', '.join(sorted(known))})"
            )
        try:
            parsed[key] = parse_value(value, known[key])
        except ValueError as exc:
            raise ConfigurationError(f"topology {topology}: option {key!r} {exc}") from None
    return fn(*args, **parsed)


def _typed(name: str, fn: Generator) -> Generator:
    def generate(**options: Any) -> LaunchPlan:
        return call_with_options(fn, name, options)

    return generate


@register("demo", "two sensors in one process, a monitor in another (runtime smoke test)")
def demo(*, seed: int = 0) -> LaunchPlan:
    sensors = [
        NodeSpec(
            "iomt.nodes.examples:vitals_sensor",
            f"sensor_{i}",
            "/demo",
            VitalsSensorParams(kind=kind, seed=seed + i, period_s=0.2),
        )
        for i, kind in enumerate(KINDS)
    ]
    monitor = NodeSpec(
        "iomt.nodes.examples:vitals_monitor",
        "monitor",
        "/demo",
        VitalsMonitorParams(topics=tuple(f"/demo/{s.name}/vitals" for s in sensors)),
    )
    return LaunchPlan(
        "demo",
        "runtime smoke test: 2 sensors, 1 monitor, 2 processes",
        (ProcessSpec("sensors", tuple(sensors)), ProcessSpec("monitor", (monitor,))),
        {"seed": seed},
    )


@register("fleet", "N example sensors packed 50 per process, with a monitor (--devices N)")
def fleet(*, devices: int = 400, per_process: int = 50, seed: int = 0) -> LaunchPlan:
    sensors = [
        NodeSpec(
            "iomt.nodes.examples:vitals_sensor",
            f"sensor_{i}",
            "/fleet",
            VitalsSensorParams(
                kind=KINDS[i % 2],
                seed=seed + i,
                period_s=1.0,
            ),
        )
        for i in range(devices)
    ]
    procs = split_into_groups(sensors, per_process, "sensors_")
    return LaunchPlan(
        f"fleet_{devices}",
        f"{devices} example sensors",
        tuple(procs),
        {"devices": devices, "seed": seed},
    )


def _scale(n: int) -> Generator:
    """``scale_N``: the sharing ward, or with ``mode="biomt"`` the BIoMT ward built on it
    (each generator's own options)."""
    name = f"scale_{n}"

    def generate(**options: Any) -> LaunchPlan:
        if str(options.get("mode", "")).lower() == "biomt":
            options = {k: v for k, v in options.items() if k != "mode"}
            return call_with_options(biomt_plan, name, options, n)
        return call_with_options(sharing_plan, name, options, n)

    return generate


for _n in (10, 20, 50, 100, 200, 400):
    register(
        f"scale_{_n}",
        f"Bilal & Hassan: {_n} devices, 20 % unable to encrypt "
        "(--mode distributed|centralized|base|biomt)",
    )(_scale(_n))
register("case_study", "Fig. 2: a patient's two devices, a bedside converter, a doctor")(
    case_study_plan
)
