"""FHIR bundles on disk: the provider's export files (``iomt.core.fhir`` builds them).

The pure halves -- ``bundle_json`` (check every Observation against the vital-signs
profiles, then the Bundle's JSON) and ``observations_from_bundle_json`` -- live in the
sans-IO core; this module is the file IO around them, used by the provider node and the
CLI. Failures raise ``iomt.core.fhir.FhirStorageError``.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from fhir.resources.R4B.observation import Observation

from iomt.core.fhir import FhirStorageError, bundle_json, observations_from_bundle_json

__all__ = ["read_bundle", "write_bundle"]


def write_bundle(observations: Iterable[Observation], path: str | os.PathLike[str]) -> None:
    """Write ``observations`` as a FHIR collection Bundle (JSON) to ``path``, atomically.

    The file appears whole or not at all (temp file in the same directory, fsync, rename)
    and is created readable by its owner only: it holds patient data.
    """
    data = bundle_json(observations).encode("utf-8")
    target = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise FhirStorageError(f"cannot write {target}: {exc}") from exc
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise FhirStorageError(f"cannot write {target}: {exc}") from exc
    # Make the rename itself durable.
    with contextlib.suppress(OSError):
        dir_fd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def read_bundle(path: str | os.PathLike[str]) -> list[Observation]:
    """The Observations of the Bundle in ``path`` (see ``observations_from_bundle_json``)."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise FhirStorageError(f"cannot read {path}: {exc}") from exc
    return observations_from_bundle_json(data)
