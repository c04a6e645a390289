"""Example nodes (like ros2/examples' talker and listener) used by the ``demo`` and
``fleet`` topologies: they exercise the runtime with realistic traffic. They publish
plaintext readings on purpose; the paper's devices (``iomt.nodes.device``) never do.
"""

from __future__ import annotations

from collections.abc import Sequence

from iomt.core.vitals import VitalKind, VitalsGenerator
from iomt.msg import Time, Vitals
from iomt.runtime import Node, RuntimeContext


def vitals_sensor(
    context: RuntimeContext,
    *,
    name: str,
    namespace: str = "/",
    kind: str = "heart_rate",
    seed: int = 0,
    period_s: float = 1.0,
) -> Node:
    node = Node(name, context=context, namespace=namespace)
    gen = VitalsGenerator(VitalKind.parse(kind), seed)
    pub = node.create_publisher(Vitals, "~/vitals")
    uri = f"iomt://{node.get_fully_qualified_name().lstrip('/')}"

    def tick() -> None:
        r = gen.next()
        now = node.now_ns()
        pub.publish(
            Vitals(
                stamp=Time(sec=now // 10**9, nanosec=now % 10**9),
                device_uri=uri,
                patient_id="",
                kind=int(r.kind),
                seq=r.seq,
                heart_rate_bpm=r.heart_rate_bpm,
                systolic_mmhg=r.systolic_mmhg,
                diastolic_mmhg=r.diastolic_mmhg,
            )
        )

    node.create_timer(period_s, tick)
    return node


def vitals_monitor(
    context: RuntimeContext, *, name: str, namespace: str = "/", topics: Sequence[str] = ()
) -> Node:
    node = Node(name, context=context, namespace=namespace)
    counts: dict[str, int] = {}

    def on_vitals(msg: Vitals) -> None:
        counts[msg.device_uri] = counts.get(msg.device_uri, 0) + 1
        node.get_logger().info(
            "%s #%d hr=%.1f bp=%.0f/%.0f",
            msg.device_uri,
            msg.seq,
            msg.heart_rate_bpm,
            msg.systolic_mmhg,
            msg.diastolic_mmhg,
        )

    for topic in topics:
        node.create_subscription(Vitals, topic, on_vitals)
    node.counts = counts  # type: ignore[attr-defined]
    return node
