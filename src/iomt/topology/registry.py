"""Built-in topologies by name: ``load("demo")`` -> LaunchPlan."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from iomt.errors import ConfigurationError
from iomt.topology.sharing import case_study_plan, sharing_plan
from iomt.topology.spec import LaunchPlan, NodeSpec, ProcessSpec, split_into_groups

Generator = Callable[..., LaunchPlan]

#: Every namespace the built-in topologies put nodes in (tests/runtime/test_launch.py keeps
#: this true): nodes there belong to an iomt ward, whatever its topology.
WARD_NAMESPACES = ("/demo", "/fleet", "/iomt", "/ward1")
_REGISTRY: dict[str, tuple[Generator, str]] = {}


def register(name: str, summary: str) -> Callable[[Generator], Generator]:
    def wrap(fn: Generator) -> Generator:
        _REGISTRY[name] = (fn, summary)
        return fn

    return wrap


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


@register("demo", "two sensors in one process, a monitor in another (runtime smoke test)")
def demo(*, seed: int = 0, **_ignored: Any) -> LaunchPlan:
    sensors = [
        NodeSpec(
            "iomt.nodes.examples:vitals_sensor",
            f"sensor_{i}",
            "/demo",
            {"kind": kind, "seed": seed + i, "period_s": 0.2},
        )
        for i, kind in enumerate(("heart_rate", "blood_pressure"))
    ]
    monitor = NodeSpec(
        "iomt.nodes.examples:vitals_monitor",
        "monitor",
        "/demo",
        {"topics": [f"/demo/{s.name}/vitals" for s in sensors]},
    )
    return LaunchPlan(
        "demo",
        "runtime smoke test: 2 sensors, 1 monitor, 2 processes",
        (ProcessSpec("sensors", tuple(sensors)), ProcessSpec("monitor", (monitor,))),
        {"seed": seed},
    )


@register("fleet", "N example sensors packed 50 per process, with a monitor (--devices N)")
def fleet(
    *, devices: int = 400, per_process: int = 50, seed: int = 0, **_ignored: Any
) -> LaunchPlan:
    sensors = [
        NodeSpec(
            "iomt.nodes.examples:vitals_sensor",
            f"sensor_{i}",
            "/fleet",
            {
                "kind": "heart_rate" if i % 2 == 0 else "blood_pressure",
                "seed": seed + i,
                "period_s": 1.0,
            },
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


def _register_scales() -> None:
    for n in (10, 20, 50, 100, 200, 400):
        register(
            f"scale_{n}",
            f"Bilal & Hassan: {n} devices, 20 % unable to encrypt "
            "(--mode distributed|centralized|base|biomt)",
        )(lambda n=n, **opts: sharing_plan(n, **opts))


_register_scales()
register("case_study", "Fig. 2: a patient's two devices, a bedside converter, a doctor")(
    case_study_plan
)
