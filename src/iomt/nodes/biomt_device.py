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
   alternating order, so both delays are measured on the same path in the same run.
3. **Events**: its direct shares and conversion orders are reported to the bolster
   (:class:`~iomt.nodes.biomt_events.EventReporter`; queued on the sharing path, signed and
   sent by a timer).

If the bolster answers that the device was removed, the device forgets its key and stops
storing (:meth:`BiomtDevice.removed`).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from iomt.core.biomt import (
    BiomtDevice,
    DeviceRemovedError,
    DeviceState,
    FacilityCA,
    Measurement,
    StoreReceipt,
)
from iomt.core.listener import name_of
from iomt.core.replies import ReplyChecker
from iomt.core.uploads import StoreBacklog
from iomt.core.vitals import Reading, VitalKind
from iomt.crypto.keystore import Identity, Keystore
from iomt.errors import IomtError
from iomt.msg import BolsterService
from iomt.nodes import biomt_wire as bw
from iomt.nodes.biomt_events import EventReporter
from iomt.nodes.biomt_provisioning import ProvisioningLink
from iomt.nodes.calls import Calls
from iomt.runtime import Client, Node

__all__ = ["BiomtDeviceLink", "measurement_of"]


def measurement_of(reading: Reading, time_ns: int) -> Measurement:
    """A sampled vital sign as the bolster stores it (kind and values from the facility
    vocabulary the cloud anonymization keeps)."""
    if reading.kind is VitalKind.HEART_RATE:
        return Measurement("heart_rate", time_ns, (("bpm", reading.heart_rate_bpm),))
    return Measurement(
        "blood_pressure",
        time_ns,
        (("systolic", reading.systolic_mmhg), ("diastolic", reading.diastolic_mmhg)),
    )


class BiomtDeviceLink:
    def __init__(  # noqa: PLR0913  (keyword-only: the device's BIoMT parameters and its node's collaborators)
        self,
        node: Node,
        *,
        keystore: Keystore,
        identity: Identity,
        calls: Calls,
        kind: str,
        owner: str,
        bolster: str,
        admin: str,
        base: bool = True,
        ack_log: str | None = None,
        report_period_s: float = 0.5,
        store_timeout_s: float = 2.0,
        max_in_flight: int = 4,
        enrol_retry_s: float = 1.0,
        max_unstored: int = 256,
    ) -> None:
        self._node = node
        self._calls = calls
        self._uri = identity.uri
        self._bolster_id = bolster
        self._anchor = FacilityCA.from_keystore(keystore).anchor
        # every answer must prove itself (iomt.core.replies): the bolster's Store answers by
        # our shared key, the rest by the bolster's or the admin's certified signature
        self._checker = ReplyChecker(keystore.credential_validator())
        self.device = BiomtDevice(
            self._uri, anchor=self._anchor, clock=time.time_ns, rng=os.urandom
        )
        ns = node.get_namespace().rstrip("/")

        def client(peer: str, service: str) -> Client:
            return node.create_client(BolsterService, f"{ns}/{peer}/{service}")

        self._store = client(bolster, "store")
        self._base_store = client(bolster, "base/store") if base else None
        self.events = EventReporter(
            node,
            reporter=identity.name,
            signer=identity.signer,
            bolster_id=bolster,
            service=f"{ns}/{bolster}/record",
            calls=calls,
            period_s=report_period_s,
            paused=True,  # until provisioned: the bolster attributes events by device
            checker=self._checker,
        )
        if ack_log:
            Path(ack_log).parent.mkdir(parents=True, exist_ok=True)
        self._ack_log = Path(ack_log).open("a", encoding="utf-8") if ack_log else None  # noqa: SIM115
        self._store_timeout_s = store_timeout_s
        self._flip = False
        self.enrolled_s: float | None = None
        self._t_start = time.monotonic()
        self.store_us: list[int] = []
        self.base_store_us: list[int] = []
        self.counts = {"acknowledged": 0, "refused": 0, "base_acknowledged": 0}
        # Stores in flight, and those that got no answer (iomt.core.uploads.StoreBacklog)
        self.stores: StoreBacklog[Measurement] = StoreBacklog(
            max_in_flight=max_in_flight, capacity=max_unstored
        )
        # 1. framework initialization (iomt.nodes.biomt_provisioning)
        self.provisioning = ProvisioningLink(
            node,
            self.device,
            calls=calls,
            checker=self._checker,
            anchor=self._anchor,
            client=client,
            bolster=bolster,
            admin=admin,
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

    def _provisioned(self) -> None:
        self.enrolled_s = time.monotonic() - self._t_start
        self.events.paused = False
        self._node.get_logger().info("provisioned as %s", self.device.pseudonym)

    # -- 2. Store ---------------------------------------------------------------------------

    def on_reading(self, reading: Reading, time_ns: int) -> None:
        if not self.active or not self.stores.may_send():
            return
        measurement = measurement_of(reading, time_ns)
        self._flip = not self._flip
        if self._flip:
            self._store_biomt(measurement)
            self._store_base(measurement)
        else:
            self._store_base(measurement)
            self._store_biomt(measurement)

    def _store_biomt(self, measurement: Measurement, *, retry: bool = False) -> None:
        t0 = time.perf_counter_ns()
        try:
            request = self.device.store_request(measurement)
        except IomtError as exc:
            self._node.get_logger().warning("cannot store: %s", exc)
            return
        self.stores.sent()

        def done(resp: Any) -> None:
            try:
                receipt = StoreReceipt.from_bytes(bw.raise_for_status("store", resp))
                self.device.check_store_receipt(receipt)
            except DeviceRemovedError:
                self.stores.on_refused()
                self.counts["refused"] += 1
                if self.active:
                    self.device.removed()
                    self._node.get_logger().warning("removed by the bolster; key forgotten")
                return
            except IomtError as exc:
                self.stores.on_refused()
                self.counts["refused"] += 1
                self._node.get_logger().warning("Store %d refused: %s", request.counter, exc)
                return
            again = self.stores.on_stored(active=self.active)
            if not retry:  # a retry's delay includes the outage: not the paper's Store delay
                self.store_us.append((time.perf_counter_ns() - t0) // 1000)
            self.counts["acknowledged"] += 1
            if self._ack_log is not None:
                tx = receipt.transaction
                self._ack_log.write(
                    json.dumps(
                        {
                            "device": receipt.device,
                            "counter": receipt.counter,
                            "seq": tx.seq,
                            "tag": tx.signature.hex(),
                        }
                    )
                    + "\n"
                )
                self._ack_log.flush()
            for kept in again:
                self._store_biomt(kept.measurement, retry=True)

        def failed(exc: Exception) -> None:
            self.stores.on_lost(measurement)

        store = BolsterService.Request(requester=request.device, body=request.to_bytes())
        self._calls.call(
            self._store,
            store,
            timeout_s=self._store_timeout_s,
            on_done=done,
            on_error=failed,
            # MAC'd under our shared key's reply subkey: a forged REMOVED cannot make us
            # forget the key
            accept=bw.reply_check(
                self._checker,
                "bolster/store",
                self._bolster_id,
                store,
                mac_key=self.device.reply_key,
            ),
        )

    def _store_base(self, measurement: Measurement) -> None:
        if self._base_store is None:
            return
        t0 = time.perf_counter_ns()
        body = measurement.to_bytes()

        def done(resp: Any) -> None:
            if resp.status == BolsterService.Response.STATUS_OK:
                self.base_store_us.append((time.perf_counter_ns() - t0) // 1000)
                self.counts["base_acknowledged"] += 1

        self._calls.call(
            self._base_store,
            BolsterService.Request(requester=self.device.pseudonym, body=body),
            timeout_s=self._store_timeout_s,
            on_done=done,
            on_error=lambda exc: None,
        )

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
        return {
            "pseudonym": self.pseudonym,
            "state": self.device.state.value,
            "enrolled_s": None if self.enrolled_s is None else round(self.enrolled_s, 3),
            "store_us": self.store_us,
            "base_store_us": self.base_store_us,
            "counts": {**self._counts(), "unstored": len(self.stores)},
            "events": self.events.counts,
        }

    def _counts(self) -> dict[str, int]:
        c, s = self.counts, self.stores.counts
        return {
            "acknowledged": c["acknowledged"],
            "refused": c["refused"],
            **s,  # failed, skipped, retried, dropped
            "base_acknowledged": c["base_acknowledged"],
            "enrol_attempts": self.provisioning.attempts,
        }

    def close(self) -> None:
        if self._ack_log is not None:
            self._ack_log.close()
            self._ack_log = None
