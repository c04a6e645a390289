"""``iomt bag play``: publish a bag's topic messages to DDS again, with their original timing.

Like ``ros2 bag play``: one publisher per recorded topic, typed with the recorded type and
offering the recorded QoS (reliability and durability; history KEEP_ALL for reliable
topics so a fast replay never overwrites a sample before it is delivered), each message
published as the raw CDR stored in the bag, at its original offset from the first message
divided by ``rate``.

Services are not replayed: a recorded request would reach today's servers with a stale
token and nonce (the handshake refuses replays, which is the point), and a recorded reply
would match no waiting client. Their event channels (``…/_service_event``) and kept
malformed samples are listed as skipped.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from iomt.capture.bag import open_bag, read_messages
from iomt.capture.interfaces import SERVICE_EVENT_SUFFIX, CaptureTypes
from iomt.capture.qos import replay_profile
from iomt.capture.recorder import MALFORMED_SUFFIX
from iomt.errors import ConfigurationError
from iomt.runtime import Context, Node, Publisher

__all__ = ["PlayStats", "play"]

log = logging.getLogger(__name__)


@dataclass
class PlayStats:
    published: dict[str, int] = field(default_factory=dict)  # topic -> messages
    skipped: dict[str, str] = field(default_factory=dict)  # topic -> why not replayed
    order: list[str] = field(default_factory=list)  # the topic of each publish, in order

    @property
    def total(self) -> int:
        return sum(self.published.values())

    def to_json(self) -> dict[str, Any]:
        return {"published": dict(self.published), "skipped": dict(self.skipped)}


def play(
    bag_path: str | Path,
    *,
    rate: float = 1.0,
    topics: Iterable[str] | None = None,
    domain_id: int | None = None,
    dds_config: str | None = None,
    context: Context | None = None,
    wait_for_subscribers_s: float = 0.0,
    delay_s: float = 0.0,
    stop: threading.Event | None = None,
) -> PlayStats:
    """Replay the topic messages of ``bag_path``; returns what was published.

    ``context``: publish from an existing Context (else one is created on ``domain_id``).
    ``wait_for_subscribers_s``: before the first message, wait up to this long until every
    replayed topic has a matched subscriber. ``stop``: set it to end the replay early.
    """
    if not rate > 0:
        raise ConfigurationError(f"rate must be positive, got {rate}")
    bag = Path(bag_path)
    types = CaptureTypes()
    stats = PlayStats()
    plan = _replay_plan(bag, None if topics is None else set(topics), types, stats)
    owned = context is None
    ctx = context or Context(domain_id=domain_id, dds_config_name=dds_config)
    node = Node("iomt_bag_player", context=ctx)
    try:
        publishers: dict[str, Publisher[Any]] = {}
        for topic, (msgtype, offered) in plan.items():
            try:
                publishers[topic] = node.create_publisher(
                    types.message_class(msgtype), topic, replay_profile(offered)
                )
            except Exception as exc:  # cyclonedds refuses the type or the topic
                stats.skipped[topic] = f"cannot publish: {exc}"
        _wait_for_subscribers(publishers, wait_for_subscribers_s, stop)
        if delay_s > 0 and stop is not None:
            stop.wait(delay_s)
        elif delay_s > 0:
            time.sleep(delay_s)
        _replay(read_messages(bag, publishers), publishers, rate, stop, stats)
    finally:
        node.destroy_node()
        if owned:
            ctx.shutdown()
    return stats


def _replay_plan(
    bag: Path, wanted: set[str] | None, types: CaptureTypes, stats: PlayStats
) -> dict[str, tuple[str, list[Any]]]:
    """topic -> (type, offered QoS) of each topic to replay; the others go to
    ``stats.skipped`` with the reason."""
    plan: dict[str, tuple[str, list[Any]]] = {}
    with open_bag(bag) as reader:
        for c in reader.connections:
            if wanted is not None and c.topic not in wanted:
                continue
            if c.topic.endswith((SERVICE_EVENT_SUFFIX, MALFORMED_SUFFIX)):
                stats.skipped[c.topic] = "service traffic is not replayed"
            elif not types.knows_message(c.msgtype):
                stats.skipped[c.topic] = f"unknown type {c.msgtype}"
            elif c.topic in plan and plan[c.topic][0] != c.msgtype:
                stats.skipped[c.topic] = "more than one type on this topic"
            else:
                plan[c.topic] = (c.msgtype, list(c.ext.offered_qos_profiles))
    for topic in stats.skipped:
        plan.pop(topic, None)
    return plan


def _wait_for_subscribers(
    publishers: dict[str, Publisher[Any]], timeout_s: float, stop: threading.Event | None
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not (stop is not None and stop.is_set()):
        if all(p.get_subscription_count() > 0 for p in publishers.values()):
            return
        time.sleep(0.02)


def _replay(
    messages: Iterable[Any],
    publishers: dict[str, Publisher[Any]],
    rate: float,
    stop: threading.Event | None,
    stats: PlayStats,
) -> None:
    first: int | None = None
    start = time.monotonic()
    for msg in messages:
        if stop is not None and stop.is_set():
            return
        if first is None:
            first = msg.time_ns
            start = time.monotonic()
        due = start + (msg.time_ns - first) / 1e9 / rate
        pause = due - time.monotonic()
        if pause > 0:
            if stop is not None:
                if stop.wait(pause):
                    return
            else:
                time.sleep(pause)
        publishers[msg.topic].publish_raw(msg.data)
        stats.published[msg.topic] = stats.published.get(msg.topic, 0) + 1
        stats.order.append(msg.topic)
