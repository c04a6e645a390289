"""A BIoMT device's Stores over DDS: its bolster's ``~/store`` and ``~/base/store``.

What to store and what an answer means is :class:`iomt.core.biomt.storing.DeviceStores`'s;
this module makes the calls, checks every answer's proof, and measures the delays: the
paper's Store delay from sending to a checked receipt (a retry's includes the outage, so it
is not counted), the base store's to its OK. With ``ack_log`` set, every acknowledged
Store is appended (and flushed) to that JSON-lines file
(:func:`~iomt.core.biomt.storing.ack_entry`) -- what a crash test holds the bolster to.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from iomt.core.biomt.messages import Measurement
from iomt.core.biomt.storing import (
    DeviceStores,
    StoreAcknowledged,
    StoreAnswer,
    StoreRefused,
    ack_entry,
)
from iomt.core.replies import ReplyChecker
from iomt.core.vitals import Reading
from iomt.errors import IomtError
from iomt.msg import BolsterService
from iomt.nodes import biomt_wire as bw
from iomt.nodes.calls import Calls
from iomt.runtime import Client, Node

__all__ = ["StoreLink"]

_OK = BolsterService.Response.STATUS_OK


class StoreLink:
    """``client(peer, service)`` makes a client of the bolster's ``service``; ``base``:
    store at the base store too."""

    def __init__(
        self,
        node: Node,
        stores: DeviceStores,
        *,
        calls: Calls,
        checker: ReplyChecker,
        client: Callable[[str, str], Client],
        bolster: str,
        base: bool,
        ack_log: str | None,
        timeout_s: float,
    ) -> None:
        self._log = node.get_logger()
        self._stores = stores
        self._device = stores.device
        self._calls = calls
        self._checker = checker
        self._bolster = bolster
        self._timeout_s = timeout_s
        self._store = client(bolster, "store")
        self._base_store = client(bolster, "base/store") if base else None
        if ack_log:
            Path(ack_log).parent.mkdir(parents=True, exist_ok=True)
        self._ack_log = Path(ack_log).open("a", encoding="utf-8") if ack_log else None  # noqa: SIM115
        self.store_us: list[int] = []
        self.base_store_us: list[int] = []
        self.base_acknowledged = 0

    def on_reading(self, reading: Reading, time_ns: int) -> None:
        order = self._stores.on_reading(reading, time_ns)
        if order is None:
            return
        if order.biomt_first:
            self._store_biomt(order.measurement)
            self._store_base(order.measurement)
        else:
            self._store_base(order.measurement)
            self._store_biomt(order.measurement)

    def _store_biomt(self, measurement: Measurement, *, retry: bool = False) -> None:
        t0 = time.perf_counter_ns()
        try:
            request = self._stores.request(measurement)
        except IomtError as exc:
            self._log.warning("cannot store: %s", exc)
            return

        def done(resp: Any) -> None:
            answer: StoreAnswer
            try:
                answer = self._stores.on_answer(bw.raise_for_status("store", resp))
            except IomtError as exc:
                answer = self._stores.on_refused(exc)
            if isinstance(answer, StoreAcknowledged):
                if not retry:  # a retry's delay includes the outage: not the paper's Store delay
                    self.store_us.append((time.perf_counter_ns() - t0) // 1000)
                self._acknowledged(answer)
            elif isinstance(answer, StoreRefused):
                self._log.warning("Store %d refused: %s", request.counter, answer.error)
            elif answer.now:
                self._log.warning("removed by the bolster; key forgotten")

        def failed(exc: Exception) -> None:
            self._stores.on_lost(measurement)

        store = BolsterService.Request(requester=request.device, body=request.to_bytes())
        self._calls.call(
            self._store,
            store,
            timeout_s=self._timeout_s,
            on_done=done,
            on_error=failed,
            # MAC'd under our shared key's reply subkey: a forged REMOVED cannot make us
            # forget the key
            accept=bw.reply_check(
                self._checker,
                "bolster/store",
                self._bolster,
                store,
                mac_key=self._device.reply_key,
            ),
        )

    def _acknowledged(self, answer: StoreAcknowledged) -> None:
        if self._ack_log is not None:
            self._ack_log.write(json.dumps(ack_entry(answer.receipt)) + "\n")
            self._ack_log.flush()
        for kept in answer.retries:
            self._store_biomt(kept.measurement, retry=True)

    def _store_base(self, measurement: Measurement) -> None:
        if self._base_store is None:
            return
        t0 = time.perf_counter_ns()
        body = measurement.to_bytes()

        def done(resp: Any) -> None:
            if resp.status == _OK:
                self.base_store_us.append((time.perf_counter_ns() - t0) // 1000)
                self.base_acknowledged += 1

        self._calls.call(
            self._base_store,
            BolsterService.Request(requester=self._device.pseudonym, body=body),
            timeout_s=self._timeout_s,
            on_done=done,
            on_error=lambda exc: None,
        )

    @property
    def rejected(self) -> int:
        """Answers to our Stores ignored for not proving they were the bolster's."""
        return int(getattr(self._store, "rejected", 0))

    def close(self) -> None:
        if self._ack_log is not None:
            self._ack_log.close()
            self._ack_log = None
