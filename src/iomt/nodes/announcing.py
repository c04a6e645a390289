"""Control registration (Bilal & Hassan, Alg. 2.1) on DDS: announcing, and hearing.

Registration topics are partitioned by area (:func:`~iomt.nodes.cells.cell_topic`): a
device announces on its cell's topic and hears the cells around it.
:class:`HeardAnnouncements` decodes what the devices of one process hear once for all of
them; :class:`Announcer` is one device's side.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from iomt.core.device import DeviceCore
from iomt.core.registration import (
    Announcement,
    CertificateCheck,
    RegistrationStatus,
    VerifiedAnnouncements,
)
from iomt.errors import IomtError
from iomt.msg import Registration
from iomt.nodes import wire
from iomt.nodes.cells import cell_of, cell_topic, nearby_cells
from iomt.runtime import DurabilityPolicy, HistoryPolicy, Node, QoSProfile

__all__ = ["ANNOUNCE_QOS", "HEAR_QOS", "Announcer", "HeardAnnouncements", "heard_in_process"]

ANNOUNCE_QOS = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
# KEEP_ALL: a reader that matches many announcing devices at once gets each one's latest
HEAR_QOS = QoSProfile(history=HistoryPolicy.KEEP_ALL, durability=DurabilityPolicy.TRANSIENT_LOCAL)
NEW_LISTENER_CHECK_S = 1.0
#: at most one extra announcement per this many seconds (see Announcer._announce_soon)
PROMPT_HOLDOFF_S = 5.0
#: how many 1-hop neighbours an announcement lists (NeighbourTable.advertised's default)
ADVERTISED_NEIGHBOURS = 8


class HeardAnnouncements:
    """What the devices of one process hear on the registration topics, decoded once.

    Every device subscribes to the cells around it, so an announcement reaches each of its
    hearers in the process as the same CDR bytes: it is decoded once (keyed by those bytes)
    and its signature verified once (``VerifiedAnnouncements``, keyed by the announcement and
    the key), and each hearer's table still decides for itself (range, expiry, its own
    neighbours). Certificates are checked once per (device, certificate) for the process, as
    each table did for itself. Bounded: the oldest entries go first.
    """

    def __init__(self, max_entries: int = 4096) -> None:
        self._max = max_entries
        self._decoded: dict[bytes, Announcement] = {}
        self._keys: dict[tuple[str, bytes], Any] = {}
        self.verified = VerifiedAnnouncements(2 * max_entries)

    def decode(self, cdr: bytes) -> Announcement:
        """The announcement in ``cdr``; RemoteProtocolError if it is malformed."""
        found = self._decoded.get(cdr)
        if found is None:
            found = wire.announcement_from_msg(Registration.deserialize(cdr))
            if len(self._decoded) >= self._max:
                del self._decoded[next(iter(self._decoded))]
            self._decoded[cdr] = found
        return found

    def certificate_check(self, check: CertificateCheck) -> CertificateCheck:
        """``check``, remembered for the process per (device, certificate) once it passed."""

        def checked(uri: str, certificate: bytes) -> Any:
            key = (uri, certificate)
            verifier = self._keys.get(key)
            if verifier is None:
                verifier = check(uri, certificate)  # raises: not remembered
                self._keys[key] = verifier
            return verifier

        return checked


_IN_PROCESS: dict[str, HeardAnnouncements] = {}  # per keystore (one CA) in this process


def heard_in_process(keystore: str) -> HeardAnnouncements:
    """The process's :class:`HeardAnnouncements` for devices of ``keystore``'s facility."""
    found = _IN_PROCESS.get(keystore)
    if found is None:
        found = _IN_PROCESS[keystore] = HeardAnnouncements()
    return found


class Announcer:
    """A device's announcements on its cell's registration topic, and what it hears on the
    cells around it, fed to its :class:`~iomt.core.device.DeviceCore` (Alg. 2.1).

    ``on_registered(announcement)`` is called for each neighbour that registered anew.
    """

    def __init__(
        self,
        node: Node,
        core: DeviceCore,
        heard: HeardAnnouncements,
        *,
        x: float,
        y: float,
        radio_range: float,
        period_s: float,
        seed: int,
        on_registered: Callable[[Announcement], None],
    ) -> None:
        self._node = node
        self._core = core
        self._uri = core.config.uri
        self._heard = heard
        self._on_registered = on_registered
        self.dropped = 0  # malformed announcements
        self.refused: dict[str, int] = {}  # per announcing device
        size = radio_range
        # A device's latest announcement stays available to devices that come into
        # hearing later (transient-local, the last one only), as a beacon would: an
        # announcement sent before a neighbour's reader matched is not lost for a
        # whole period (20 s) -- under load at start-up it sometimes was.
        self._pub = node.create_publisher(
            Registration, cell_topic(cell_of(x, y, size)), ANNOUNCE_QOS
        )
        # raw: the process decodes each announcement once for all its devices; shared: the
        # process's devices that hear a cell share one DDS reader of it
        on_cdr: Any = self._on_registration
        for cell in nearby_cells(x, y, size):
            node.create_subscription(
                Registration, cell_topic(cell), on_cdr, HEAR_QOS, raw=True, shared=True
            )
        node.create_timer(period_s, self._announce)
        node.create_timer(period_s, self._expire)
        # First announcement soon after start, not a whole period later.
        self._first = node.create_timer(0.2 + (seed % 10) * 0.05, self._announce_once)
        # A neighbour whose reader matched only after that (a busy start, a restarted
        # process) would otherwise wait a whole period to hear us: announce again
        # whenever more readers have matched than at the last announcement.
        self._heard_by = 0
        node.create_timer(NEW_LISTENER_CHECK_S, self._announce_to_new_listeners)
        # An extra announcement, soon, when a neighbour does not list us (it has just
        # started or was restarted after a crash): it learns about us within a second
        # instead of a whole period (20 s) later. At most one per PROMPT_HOLDOFF_S.
        self._prompt = node.create_timer(0.3 + (seed % 10) * 0.05, self._announce_prompted)
        self._prompt.cancel()
        self._prompt_after = 0.0

    def _announce_once(self) -> None:
        self._first.cancel()
        self._announce()

    def _announce(self) -> None:
        self._heard_by = self._pub.get_subscription_count()
        self._pub.publish(wire.announcement_to_msg(self._core.announcement(time.time_ns())))

    def _announce_to_new_listeners(self) -> None:
        if self._pub.get_subscription_count() > self._heard_by:
            self._announce()

    def _announce_prompted(self) -> None:
        self._prompt.cancel()
        self._announce()

    def _announce_soon(self) -> None:
        now = time.monotonic()
        if now < self._prompt_after:
            return
        self._prompt_after = now + PROMPT_HOLDOFF_S
        self._prompt.reset()

    def _expire(self) -> None:
        self._core.table.expire()

    def _on_registration(self, cdr: bytes) -> None:
        try:
            a = self._heard.decode(cdr)
        except IomtError as exc:
            self.dropped += 1
            self._node.get_logger().warning("dropped malformed announcement: %s", exc)
            return
        if a.device_uri == self._uri:
            return
        try:
            status = self._core.on_announcement(a)
        except IomtError as exc:
            # logged the first time and every 100th (a rogue announces every period)
            n = self.refused.get(a.device_uri, 0) + 1
            self.refused[a.device_uri] = n
            if n % 100 == 1:
                self._node.get_logger().warning(
                    "refused announcement from %s (%d so far): %s", a.device_uri, n, exc
                )
            return
        listed = [n for n in a.neighbours if n.hops == 1]
        if (
            status is RegistrationStatus.REGISTER
            and len(listed) < ADVERTISED_NEIGHBOURS
            and all(n.uri != self._uri for n in listed)
        ):
            # it lists fewer neighbours than it could, and not us: it does not know us
            self._announce_soon()
        if status is RegistrationStatus.REGISTER:
            self._on_registered(a)
