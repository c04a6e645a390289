"""QoS as rosbag2 records it: discovered DDS writer QoS ⇄ ``offered_qos_profiles``.

``ros2 bag record`` stores, per topic, the QoS profiles its publishers offered (metadata.yaml
version 9 and the MCAP channel metadata); ``ros2 bag play`` offers them again. Durations
use ROS's representation, where "infinite" is ``{sec: 9223372036, nsec: 854775807}``
(the largest int64 nanosecond count, which is also what Cyclone DDS uses).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cyclonedds.core import Policy

from iomt.runtime import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

__all__ = ["offered_qos", "recording_profile", "replay_profile"]

_INFINITE_NS = 0x7FFF_FFFF_FFFF_FFFF


def _time(ns: int | None) -> Any:
    from rosbags.interfaces import QosTime  # noqa: PLC0415

    value = _INFINITE_NS if ns is None or ns < 0 else int(ns)
    return QosTime(value // 1_000_000_000, value % 1_000_000_000)


def offered_qos(dds_qos: Any) -> Any:
    """A rosbags ``Qos`` (what metadata.yaml records) from a discovered writer's DDS QoS."""
    from rosbags.interfaces import (  # noqa: PLC0415
        Qos,
        QosDurability,
        QosHistory,
        QosLiveliness,
        QosReliability,
    )

    def get(policy: Any) -> Any:
        try:
            return dds_qos[policy]
        except (ValueError, TypeError, KeyError):
            return None

    history = get(Policy.History)
    if history == Policy.History.KeepAll:
        hist, depth = QosHistory.KEEP_ALL, 0
    elif history is not None:
        hist, depth = QosHistory.KEEP_LAST, int(getattr(history, "depth", 1))
    else:
        hist, depth = QosHistory.KEEP_LAST, 1
    reliability = get(Policy.Reliability)
    rel = (
        QosReliability.BEST_EFFORT
        if reliability == Policy.Reliability.BestEffort
        else QosReliability.RELIABLE
    )
    durability = get(Policy.Durability)
    dur = (
        QosDurability.TRANSIENT_LOCAL
        if durability == Policy.Durability.TransientLocal
        else QosDurability.VOLATILE
    )
    liveliness = get(Policy.Liveliness)
    if isinstance(liveliness, Policy.Liveliness.ManualByTopic):
        live = QosLiveliness.MANUAL_BY_TOPIC
    elif isinstance(liveliness, Policy.Liveliness.ManualByParticipant):
        live = QosLiveliness.MANUAL_BY_NODE
    else:
        live = QosLiveliness.AUTOMATIC
    deadline = get(Policy.Deadline)
    lifespan = get(Policy.Lifespan)
    return Qos(
        history=hist,
        depth=depth,
        reliability=rel,
        durability=dur,
        deadline=_time(getattr(deadline, "deadline", None)),
        lifespan=_time(getattr(lifespan, "lifespan", None)),
        liveliness=live,
        liveliness_lease_duration=_time(getattr(liveliness, "lease_duration", None)),
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
