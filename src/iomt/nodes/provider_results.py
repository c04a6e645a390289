"""What a provider keeps of its workload besides the results file's lines: the readings it
received, exported as FHIR R4 vital-signs Observations when the node stops; its progress as
published; and -- for a provider restarted after a crash -- the outcomes its previous run
already wrote."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

from iomt.core.workload import OUTCOMES, Workload
from iomt.errors import IomtError
from iomt.msg import Vitals, WorkloadProgress
from iomt.nodes import wire

__all__ = ["Observations", "finished_requests", "progress_of"]

_log = logging.getLogger(__name__)


class Observations:
    """The distinct readings a provider received, for its FHIR export (none without a path)."""

    def __init__(self, path: str | None, logger: Any = None) -> None:
        self.path = path
        self._log = logger if logger is not None else _log
        self._received: dict[bytes, tuple[bytes, str, str]] = {}

    def keep(self, cdr: bytes, sender: str, technique: str) -> None:
        # Kept raw, one per distinct reading (a reading asked for twice is one
        # Observation); turned into FHIR when the node stops, off the request path.
        if self.path is not None:
            self._received.setdefault(hashlib.sha256(cdr).digest(), (cdr, sender, technique))

    def observations(self) -> list[Any]:
        # fhir.resources (pydantic models) is imported when the provider exports, at stop
        from iomt.core.fhir import VitalSign, to_observation  # noqa: PLC0415

        out = []
        for cdr, sender, technique in self._received.values():
            try:
                v = Vitals.deserialize(cdr)
                out.append(
                    to_observation(
                        VitalSign(
                            v.device_uri,
                            v.patient_id or "unknown",
                            int(v.kind),
                            int(v.seq),
                            wire.time_ns(v.stamp),
                            # float32 on the wire: round to the sensors' resolution for export
                            round(float(v.heart_rate_bpm), 1),
                            round(float(v.systolic_mmhg)),
                            round(float(v.diastolic_mmhg)),
                            sender,
                            technique,
                        )
                    )
                )
            except IomtError as exc:
                self._log.warning("reading not exportable as FHIR: %s", exc)
        return out

    def export(self) -> None:
        # When the node stops, not when its workload ends: a FHIR export costs ~3 ms per
        # Observation (fhir.resources builds, checks and round-trips each one), and the
        # providers of a ward share one executor -- an export of a few thousand readings
        # on it would hold every other provider's requests for seconds (they timed out).
        if not self.path or not self._received:
            return
        from iomt.nodes.fhir_export import write_bundle  # noqa: PLC0415 (at stop only)

        path = Path(self.path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_bundle(self.observations(), path)
        except (OSError, IomtError) as exc:
            self._log.error("FHIR export to %s failed: %s", path, exc)


def progress_of(provider_uri: str, workload: Workload) -> WorkloadProgress:
    """The workload's progress as published on ``/iomt/progress``."""
    c = workload.counts
    return WorkloadProgress(
        provider_uri=provider_uri,
        requests_total=workload.total,
        requests_done=workload.done,
        shared=c["shared"],
        converted=c["converted"],
        refused=c["refused"],
        failed=c["failed"],
        finished=workload.finished,
    )


def finished_requests(path: str | None, provider_uri: str) -> list[str]:
    """The outcomes of the requests a previous run of this provider finished (in its
    results file), oldest first; [] for a fresh start. Its generator is seeded from their
    number (:func:`iomt.core.workload.workload_rng`)."""
    if not path or not Path(path).exists():
        return []
    out: list[str] = []
    with Path(path).open(encoding="utf-8") as f:
        for line in f:
            try:
                record = json.loads(line)
            except ValueError:  # a line cut short by the crash
                continue
            if (
                record.get("record") == "request"
                and record.get("provider") == provider_uri
                and record.get("outcome") in OUTCOMES
            ):
                out.append(record["outcome"])
    return out
