"""A run directory's data at rest: who may read it, and whether it is what was committed.

* :func:`exposed_paths` -- every file or directory under a run directory that anyone but
  its owner may read, write or enter. A run directory holds readings (devices' storage, the
  bag, FHIR bundles, results), keys (the keystore, bolsters' storage secrets) and ledgers:
  directories are 0700 and files 0600 (``iomt launch`` and its containers run with umask
  077; the keystore creates its files owner-only itself).
* :func:`audit_storage` -- every ledger against its bolster's public key
  (:func:`iomt.ledger.audit`), every bolster's local storage against its ledger
  (:func:`iomt.core.biomt.audit_local_storage`, with the bolster's storage secret), every
  device's readings against their MAC chain (:func:`iomt.nodes.device_storage.
  audit_device_storage`, with the key derived from the device's identity in the run's
  keystore). ``iomt audit RUN_DIR`` prints it.

What is not covered, and why: the centralized baseline's server database (plaintext and
unauthenticated by design: the paper's point about that system), the cloud's database
(anonymized copies of blocks whose originals the ledgers prove), and a rollback of a whole
store to an older state its writer really committed (see :mod:`iomt.ledger.record_chain`;
for ledgers, pass checkpoints cluster heads witnessed to :func:`iomt.ledger.audit`).
"""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

from iomt.core.biomt import Retention, audit_local_storage
from iomt.crypto.keystore import Keystore
from iomt.errors import IomtError
from iomt.ledger import SqliteStorage, TxType, audit
from iomt.nodes.device_storage import audit_device_storage, storage_secret

__all__ = ["at_rest_line", "at_rest_report", "audit_ledger_file", "audit_storage", "exposed_paths"]

_LEDGER_SUFFIX = ".ledger.sqlite"


def exposed_paths(root: Path) -> list[str]:
    """Paths under ``root`` (itself included) with any group or other permission bit."""
    out: list[str] = []
    for path in [root, *sorted(root.rglob("*"))]:
        try:
            st = path.lstat()
        except FileNotFoundError:  # a SQLite -shm/-wal removed meanwhile
            continue
        if stat.S_ISLNK(st.st_mode):
            continue
        if st.st_mode & 0o077:
            out.append(f"{path} {stat.S_IMODE(st.st_mode):o}")
    return out


def _retentions(run_dir: Path) -> dict[str, str]:
    """Each bolster's retention setting, from the launch specs of the run."""
    out: dict[str, str] = {}
    for spec in sorted((run_dir / "specs").glob("*.json")):
        try:
            nodes = json.loads(spec.read_text(encoding="utf-8")).get("nodes", [])
        except (OSError, ValueError):
            continue
        for node in nodes:
            if str(node.get("factory", "")).endswith(":bolster_node"):
                out[str(node["name"])] = str(node.get("params", {}).get("retention", "keep"))
    return out


def audit_ledger_file(
    path: Path, name: str, keystore: Keystore, retention: str = "keep"
) -> dict[str, Any]:
    """A bolster's (or the master's) ledger against its public key; then, if its storage
    secret is beside it, its local storage against the ledger."""
    row: dict[str, Any] = {"file": path.name}
    storage = SqliteStorage(path, check_same_thread=False)
    try:
        try:
            report = audit(storage, keystore.verifier(name).public_bytes())
        except IomtError as exc:
            row["audit"] = f"INVALID: {exc}"
            return row
        row.update(
            audit="valid",
            transactions=report.tree_size,
            blocks=report.block_height + 1,
            by_type={TxType(t).name: n for t, n in report.counts if n},
        )
        secret_path = path.parent / f"{name}.secret"
        if not secret_path.exists():
            return row
        try:
            local = audit_local_storage(
                storage, secret_path.read_bytes(), retention=Retention(retention)
            )
        except IomtError as exc:
            row["local_storage"] = {"audit": f"INVALID: {exc}"}
            return row
        row["local_storage"] = {
            "audit": "valid",
            "stores": local.stores,
            "present": local.present,
            "removed": local.removed,
            "evicted": local.evicted,
        }
        return row
    finally:
        storage.close()


def audit_storage(run_dir: Path, *, ledgers: bool = True) -> dict[str, Any]:
    """Audit every ledger, bolster local storage and device storage of a run directory.

    ``{"valid": bool, "ledgers": {name: row}, "devices": {"checked", "valid", "invalid":
    {name: reason}, "records", "plaintext"}, "not_covered": [...]}``; ``ledgers=False``
    leaves the ledgers out (a report that audited them already)."""
    storage_dir = run_dir / "storage"
    keystore = Keystore.open(run_dir / "keystore")
    names = set(keystore.names())
    retentions = _retentions(run_dir)
    ledger_rows: dict[str, Any] = {}
    devices: dict[str, Any] = {
        "checked": 0,
        "valid": 0,
        "invalid": {},
        "records": 0,
        "sealed": 0,
        "plaintext": 0,
    }
    not_covered: list[str] = []
    for path in sorted(storage_dir.glob("*")) if storage_dir.exists() else []:
        if path.name.endswith(_LEDGER_SUFFIX):
            if ledgers:
                name = path.name[: -len(_LEDGER_SUFFIX)]
                ledger_rows[name] = audit_ledger_file(
                    path, name, keystore, retentions.get(name, "keep")
                )
        elif path.suffix == ".db" and path.stem in names and path.stem != "central":
            devices["checked"] += 1
            try:
                identity = keystore.identity(path.stem)
                result = audit_device_storage(
                    path, store=identity.uri, secret=storage_secret(identity)
                )
            except IomtError as exc:
                devices["invalid"][path.stem] = f"INVALID: {exc}"
                continue
            devices["valid"] += 1
            devices["records"] += result.records
            devices["sealed"] += result.sealed
            devices["plaintext"] += result.plaintext
        elif path.suffix in (".db", ".sqlite"):
            not_covered.append(path.name)
    valid = not devices["invalid"] and all(
        row.get("audit") == "valid"
        and (row.get("local_storage") is None or row["local_storage"].get("audit") == "valid")
        for row in ledger_rows.values()
    )
    return {
        "valid": valid,
        "ledgers": ledger_rows,
        "devices": devices,
        "not_covered": not_covered,
    }


def at_rest_report(run_dir: Path, *, ledgers: bool = False) -> dict[str, Any]:
    """What a run's report says about its data at rest: the storage audit and every path
    readable by others than the owner (none expected)."""
    try:
        out = audit_storage(run_dir, ledgers=ledgers)
    except IomtError as exc:
        out = {"valid": False, "error": str(exc)}
    out["exposed"] = exposed_paths(run_dir)
    return out


def at_rest_line(at_rest: dict[str, Any] | None) -> str:
    """One line for a report's markdown."""
    if not at_rest:
        return "Data at rest: not checked."
    if "error" in at_rest:
        return f"Data at rest: INVALID ({at_rest['error']})."
    d = at_rest["devices"]
    invalid = ", ".join(f"{k}: {v}" for k, v in list(d["invalid"].items())[:3])
    return (
        f"Data at rest: device storage {d['valid']}/{d['checked']} valid"
        + (f" (INVALID: {invalid})" if invalid else "")
        + f", {d['records']} readings ({d['plaintext']} plaintext from devices that cannot "
        f"encrypt); {len(at_rest['exposed'])} paths readable by others than the owner."
    )
