"""QoS as rosbag2 records it: discovered DDS writer QoS ⇄ ``offered_qos_profiles``.

``ros2 bag record`` stores, per topic, the QoS profiles its publishers offered (metadata.yaml
version 9 and the MCAP channel metadata); ``ros2 bag play`` offers them again. Durations
use ROS's representation, where "infinite" is ``{sec: 9223372036, nsec: 854775807}``
(the largest int64 nanosecond count, which is also what Cyclone DDS uses).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from iomt.runtime import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from iomt.runtime.tap import WriterQoS

__all__ = ["offered_qos", "recording_profile", "replay_profile"]

_INFINITE_NS = 0x7FFF_FFFF_FFFF_FFFF


def _time(ns: int | None) -> Any:
    from rosbags.interfaces import QosTime  # noqa: PLC0415

    value = _INFINITE_NS if ns is None or ns < 0 else int(ns)
    return QosTime(value // 1_000_000_000, value % 1_000_000_000)


def offered_qos(writer: WriterQoS) -> Any:
    """A rosbags ``Qos`` (what metadata.yaml records) from a discovered writer's QoS."""
    from rosbags.interfaces import (  # noqa: PLC0415
        Qos,
        QosDurability,
        QosHistory,
        QosLiveliness,
        QosReliability,
    )

    live = {
        "manual_by_topic": QosLiveliness.MANUAL_BY_TOPIC,
        "manual_by_participant": QosLiveliness.MANUAL_BY_NODE,
    }.get(writer.liveliness, QosLiveliness.AUTOMATIC)
    return Qos(
        history=QosHistory.KEEP_ALL
        if writer.history is HistoryPolicy.KEEP_ALL
        else QosHistory.KEEP_LAST,
        depth=writer.depth,
        reliability=QosReliability.BEST_EFFORT
        if writer.reliability is ReliabilityPolicy.BEST_EFFORT
        else QosReliability.RELIABLE,
        durability=QosDurability.TRANSIENT_LOCAL
        if writer.durability is DurabilityPolicy.TRANSIENT_LOCAL
        else QosDurability.VOLATILE,
        deadline=_time(writer.deadline_ns),
        lifespan=_time(writer.lifespan_ns),
        liveliness=live,
        liveliness_lease_duration=_time(writer.lease_ns),
        avoid_ros_namespace_conventions=False,
    )


def recording_profile(offered: Sequence[Any]) -> QoSProfile:
    """The reader QoS ``ros2 bag record`` picks: what every known writer can match.

    Reliable only if every writer is reliable (a reliable reader does not match a
    best-effort writer), transient-local only if every writer is; KEEP_ALL so the reader
    never overwrites a sample it has not taken yet.
    """
    from rosbags.interfaces import QosDurability, QosReliability  # noqa: PLC0415

    reliable = all(q.reliability != QosReliability.BEST_EFFORT for q in offered)
    transient = bool(offered) and all(
        q.durability == QosDurability.TRANSIENT_LOCAL for q in offered
    )
    return QoSProfile(
        history=HistoryPolicy.KEEP_ALL,
        reliability=ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT,
        durability=DurabilityPolicy.TRANSIENT_LOCAL if transient else DurabilityPolicy.VOLATILE,
    )


def replay_profile(offered: Sequence[Any]) -> QoSProfile:
    """The writer QoS ``iomt bag play`` offers: the recorded one, never dropping on bursts."""
    from rosbags.interfaces import QosDurability, QosReliability  # noqa: PLC0415

    if not offered:
        return QoSProfile(history=HistoryPolicy.KEEP_ALL)
    first = offered[0]
    best_effort = first.reliability == QosReliability.BEST_EFFORT
    return QoSProfile(
        depth=max(1, int(first.depth)),
        history=HistoryPolicy.KEEP_LAST if best_effort else HistoryPolicy.KEEP_ALL,
        reliability=ReliabilityPolicy.BEST_EFFORT if best_effort else ReliabilityPolicy.RELIABLE,
        durability=(
            DurabilityPolicy.TRANSIENT_LOCAL
            if first.durability == QosDurability.TRANSIENT_LOCAL
            else DurabilityPolicy.VOLATILE
        ),
    )
