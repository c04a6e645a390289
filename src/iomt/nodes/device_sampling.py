"""A device's readings: sampled, numbered and kept (Bilal & Hassan; the paper's Table 2).

:class:`Sampler` is what the device's sampling timer runs: the next seeded synthetic vital
sign, its reading number from local storage (numbers never repeat, across restarts too:
:mod:`iomt.nodes.device_storage`), then either kept locally -- recorded in the device's
core, which shares it, and appended (sealed, if the device can) to its storage -- or, in
``centralized`` mode, uploaded (:class:`~iomt.nodes.uploading.UploadLink`). It needs no
DDS of its own: the timer and the upload link are the node's.

Data-transfer time is measured here per reading kept locally (seal at rest, if the device
can, and store); the upload link measures an upload's, until the server stored it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from iomt.core.device import DeviceCore
from iomt.core.vitals import Reading, VitalKind, VitalsGenerator
from iomt.msg import Vitals
from iomt.nodes import wire
from iomt.nodes.device_storage import DeviceStorage
from iomt.nodes.uploading import UploadLink

__all__ = ["Sampler", "open_storage"]


def open_storage(
    storage_dir: str | None, name: str, uri: str, secret: bytes, *, seal: bool
) -> DeviceStorage:
    """``<storage_dir>/<name>.db`` (the directory owner-only), or in memory without one."""
    path = None
    if storage_dir:
        Path(storage_dir).mkdir(mode=0o700, parents=True, exist_ok=True)
        path = Path(storage_dir) / f"{name}.db"
    return DeviceStorage(path, store=uri, secret=secret, seal=seal)


class Sampler:
    """``sample()`` takes one reading. ``upload``: the centralized baseline's, which then
    gets every reading instead of local storage; ``on_reading(reading, time_ns)`` hears
    each reading kept locally (BIoMT stores it at the bolster too); ``transfer_us`` gets
    each one's data-transfer time."""

    def __init__(
        self,
        core: DeviceCore,
        storage: DeviceStorage,
        *,
        kind: VitalKind,
        seed: int,
        patient_id: str,
        transfer_us: list[int],
        upload: UploadLink | None = None,
        on_reading: Callable[[Reading, int], None] | None = None,
    ) -> None:
        self._core = core
        self._db = storage
        self._vitals = VitalsGenerator(kind, seed)
        self._uri = core.config.uri
        self._patient_id = patient_id
        self._transfer_us = transfer_us
        self._upload = upload
        self._on_reading = on_reading
        self.seq = storage.last_seq  # the latest reading's number

    def sample(self) -> None:
        r = self._vitals.next()
        self.seq = self._db.claim_seq()
        now = time.time_ns()
        msg = Vitals(
            stamp=wire.time_msg(now),
            device_uri=self._uri,
            patient_id=self._patient_id,
            kind=int(r.kind),
            seq=self.seq,
            heart_rate_bpm=r.heart_rate_bpm,
            systolic_mmhg=r.systolic_mmhg,
            diastolic_mmhg=r.diastolic_mmhg,
        )
        if self._upload is not None:
            self._upload.add(self.seq, msg)
            return
        t0 = time.perf_counter_ns()
        cdr = msg.serialize()
        self._core.record(self.seq, now, cdr)
        self._db.append(self.seq, now, cdr)
        self._transfer_us.append((time.perf_counter_ns() - t0) // 1000)
        if self._on_reading is not None:
            self._on_reading(r, now)
