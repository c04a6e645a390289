"""Example nodes (like ros2/examples' talker and listener) used by the ``demo`` and
``fleet`` topologies: they exercise the runtime with realistic traffic. They publish
plaintext readings on purpose; the paper's devices (``iomt.nodes.device``) never do.
"""

from __future__ import annotations

from typing import Any

from iomt.core.vitals import VitalKind, VitalsGenerator
from iomt.msg import Time, Vitals
from iomt.nodes.params import VitalsMonitorParams, VitalsSensorParams
from iomt.runtime import Node, RuntimeContext
from iomt.runtime.naming import node_fqn

__all__ = ["VitalsMonitor", "VitalsSensor", "vitals_monitor", "vitals_sensor"]


class VitalsSensor(Node):
    """Publishes a seeded generator's readings on ``~/vitals`` every ``period_s``."""

    def __init__(
        self, context: RuntimeContext, *, name: str, namespace: str, config: VitalsSensorParams
    ) -> None:
        super().__init__(name, context=context, namespace=namespace)
        self.config = config
        self._gen = VitalsGenerator(VitalKind.parse(config.kind), config.seed)
        self._pub = self.create_publisher(Vitals, "~/vitals")
        self.uri = f"iomt://{self.get_fully_qualified_name().lstrip('/')}"
        self.create_timer(config.period_s, self._tick)

    def _tick(self) -> None:
        r = self._gen.next()
        now = self.now_ns()
        self._pub.publish(
            Vitals(
                stamp=Time(sec=now // 10**9, nanosec=now % 10**9),
                device_uri=self.uri,
                patient_id="",
                kind=int(r.kind),
                seq=r.seq,
                heart_rate_bpm=r.heart_rate_bpm,
                systolic_mmhg=r.systolic_mmhg,
                diastolic_mmhg=r.diastolic_mmhg,
            )
        )


class VitalsMonitor(Node):
    """Logs the readings of ``topics`` and counts them per device."""

    def __init__(
        self, context: RuntimeContext, *, name: str, namespace: str, config: VitalsMonitorParams
    ) -> None:
        super().__init__(name, context=context, namespace=namespace)
        self.config = config
        self.counts: dict[str, int] = {}
        for topic in config.topics:
            self.create_subscription(Vitals, topic, self._on_vitals)

    def _on_vitals(self, msg: Vitals) -> None:
        self.counts[msg.device_uri] = self.counts.get(msg.device_uri, 0) + 1
        self.get_logger().info(
            "%s #%d hr=%.1f bp=%.0f/%.0f",
            msg.device_uri,
            msg.seq,
            msg.heart_rate_bpm,
            msg.systolic_mmhg,
            msg.diastolic_mmhg,
        )


def vitals_sensor(
    context: RuntimeContext, *, name: str, namespace: str = "/", **params: Any
) -> VitalsSensor:
    config = VitalsSensorParams.from_mapping(params, node=node_fqn(namespace, name))
    return VitalsSensor(context, name=name, namespace=namespace, config=config)


def vitals_monitor(
    context: RuntimeContext, *, name: str, namespace: str = "/", **params: Any
) -> VitalsMonitor:
    config = VitalsMonitorParams.from_mapping(params, node=node_fqn(namespace, name))
    return VitalsMonitor(context, name=name, namespace=namespace, config=config)
