"""BIoMT for a sharing-framework device (``--mode biomt``): provisioning, Store, events.

Composed into :class:`iomt.nodes.device.DeviceNode` when it runs in ``biomt`` mode; the
device keeps doing everything Bilal & Hassan's framework does, and additionally:

1. **Framework initialization** at start-up: enrolment through the admin, provisioning at
   the bolster, retried every ``enrol_retry_s`` (:mod:`iomt.nodes.biomt_provisioning`).
2. **Store**: every reading the device samples is sealed under its shared key with the
   next counter and sent to ``~/store``; the receipt is checked (our Store, in a tree head
   the bolster signed). With ``ack_log`` set, every acknowledged Store is appended (and
   flushed) to that JSON-lines file: pseudonym, counter, ledger sequence number and the
   AEAD tag the ledger must carry -- what a crash test holds the bolster to.
   The same reading also goes to ``~/base/store`` (the paper's no-crypto base), in
   alternating order, so both delays are measured on the same path in the same run
   (:mod:`iomt.nodes.biomt_storing`; what to store and what an answer means:
   :mod:`iomt.core.biomt.storing`).
3. **Events**: its direct shares and conversion orders are reported to the bolster
   (:class:`~iomt.nodes.biomt_events.EventReporter`; queued on the sharing path, signed and
   sent by a timer).

If the bolster answers that the device was removed, the device forgets its key and stops
storing (:meth:`BiomtDevice.removed`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from iomt.core.biomt import BiomtDevice, DeviceState, FacilityCA, Measurement
from iomt.core.biomt.storing import DeviceStores
from iomt.core.listener import name_of
from iomt.core.replies import ReplyChecker
from iomt.core.uploads import StoreBacklog
from iomt.core.vitals import Reading
from iomt.crypto.keystore import Identity, Keystore
from iomt.msg import BolsterService
from iomt.nodes.biomt_events import EventReporter
from iomt.nodes.biomt_provisioning import ProvisioningLink
from iomt.nodes.biomt_storing import StoreLink
from iomt.nodes.calls import Calls
from iomt.nodes.params import DeviceBiomt
from iomt.runtime import Client, Node

__all__ = ["BiomtDeviceLink"]


class BiomtDeviceLink:
    """``on_reading(reading, time_ns)``: a sampled reading, to store at the bolster."""

    on_reading: Callable[[Reading, int], None]

    def __init__(  # noqa: PLR0913  (keyword-only: its node's collaborators, the device's BIoMT section and the link's pacing)
        self,
        node: Node,
        *,
        keystore: Keystore,
        identity: Identity,
        calls: Calls,
        kind: str,
        owner: str,
        config: DeviceBiomt,
        report_period_s: float = 0.5,
        max_in_flight: int = 4,
        enrol_retry_s: float = 1.0,
        max_unstored: int = 256,
    ) -> None:
        self._node = node
        self._uri = identity.uri
        bolster = config.bolster
        anchor = FacilityCA.from_keystore(keystore).anchor
        # every answer must prove itself (iomt.core.replies): the bolster's Store answers by
        # our shared key, the rest by the bolster's or the admin's certified signature
        checker = ReplyChecker(keystore.credential_validator())
        self.device = BiomtDevice(self._uri, anchor=anchor, clock=time.time_ns, rng=os.urandom)
        ns = node.get_namespace().rstrip("/")

        # the process's devices share one DDS client per service (iomt.runtime.shared): the
        # bolster and the admin bound nothing per request writer
        def client(peer: str, service: str) -> Client:
            return node.create_client(BolsterService, f"{ns}/{peer}/{service}", shared=True)

        # 2. Store (iomt.nodes.biomt_storing)
        self._stores = DeviceStores(self.device, max_in_flight=max_in_flight, capacity=max_unstored)
        self._storing = StoreLink(
            node,
            self._stores,
            calls=calls,
            checker=checker,
            client=client,
            bolster=bolster,
            base=config.base,
            ack_log=config.ack_log,
            timeout_s=config.store_timeout_s,
        )
        self.on_reading = self._storing.on_reading
        # Stores in flight, and those that got no answer (iomt.core.uploads.StoreBacklog)
        self.stores: StoreBacklog[Measurement] = self._stores.backlog
        self.store_us = self._storing.store_us
        self.base_store_us = self._storing.base_store_us
        # 3. events
        self.events = EventReporter(
            node,
            reporter=identity.name,
            signer=identity.signer,
            bolster_id=bolster,
            service=f"{ns}/{bolster}/record",
            calls=calls,
            period_s=report_period_s,
            paused=True,  # until provisioned: the bolster attributes events by device
            checker=checker,
        )
        self.enrolled_s: float | None = None
        self._t_start = time.monotonic()
        # 1. framework initialization (iomt.nodes.biomt_provisioning)
        self.provisioning = ProvisioningLink(
            node,
            self.device,
            calls=calls,
            checker=checker,
            anchor=anchor,
            client=client,
            bolster=bolster,
            admin=config.admin,
            owner=owner,
            kind=kind,
            retry_s=enrol_retry_s,
            on_provisioned=self._provisioned,
        )

    @property
    def active(self) -> bool:
        return self.device.state is DeviceState.ACTIVE

    @property
    def pseudonym(self) -> str | None:
        return self.device.pseudonym if self.active else None

    @property
    def counts(self) -> dict[str, int]:
        """Stores acknowledged and refused, and base Stores acknowledged."""
        return {**self._stores.counts, "base_acknowledged": self._storing.base_acknowledged}

    def _provisioned(self) -> None:
        self.enrolled_s = time.monotonic() - self._t_start
        self.events.paused = False
        self._node.get_logger().info("provisioned as %s", self.device.pseudonym)

    # -- 3. events --------------------------------------------------------------------------

    def shared(self, requester_uri: str, technique: str) -> None:
        self.events.add(
            "share",
            actor=name_of(requester_uri),
            device_uri=self._uri,
            technique=technique,
            detail=f"reading sealed for {requester_uri}",
        )

    def converted(self, requester_uri: str, converter_uri: str, technique: str) -> None:
        self.events.add(
            "conversion",
            actor=name_of(requester_uri),
            device_uri=self._uri,
            technique=technique,
            detail=f"converted by {converter_uri} for {requester_uri}",
        )

    def summary(self) -> dict[str, Any]:
        c, s = self._stores.counts, self.stores.counts
        return {
            "pseudonym": self.pseudonym,
            "state": self.device.state.value,
            "enrolled_s": None if self.enrolled_s is None else round(self.enrolled_s, 3),
            "store_us": self.store_us,
            "base_store_us": self.base_store_us,
            "counts": {
                "acknowledged": c["acknowledged"],
                "refused": c["refused"],
                **s,  # failed, skipped, retried, dropped
                "base_acknowledged": self._storing.base_acknowledged,
                "enrol_attempts": self.provisioning.attempts,
                "unstored": len(self.stores),
            },
            "events": self.events.counts,
        }

    def close(self) -> None:
        self._storing.close()
