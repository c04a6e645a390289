"""BIoMT's local storage: the bolster's backup copy of device data.

The paper's bolster has two entities: the local blockchain and "local storage for storing data
locally as a backup drive. Close by authorized users can access local data in case of no
connection to the global cloud storage." A device "should authenticate with the bolster and
sends a store transaction to permit the storage process"; a Remove transaction is to "remove
all the notations for the data associated with this device".

So records are keyed by device and by the sequence number of the Store transaction that
carried them (pass ``local_record=`` to :meth:`Ledger.append` to commit both together), hold
caller-encrypted bytes, and are deleted per device on removal. They live in the same backend
(the same SQLite file) as the ledger. Unlike the ledger they are deletable by design, so they
are *not* covered by the ledger's signatures; integrity of a record comes from its Store
transaction (e.g. the body carries the record's hash) and its encryption.
"""

from __future__ import annotations

from collections.abc import Iterable

from .storage import LedgerStorage, StoredRecord

__all__ = ["LocalStorage", "StoredRecord"]


class LocalStorage:
    """Device data records kept by a bolster, on a ledger storage backend."""

    __slots__ = ("_storage",)

    def __init__(self, storage: LedgerStorage) -> None:
        self._storage = storage

    def put(self, device_id: str, seq: int, data: bytes) -> StoredRecord:
        """Store ``data`` (encrypted by the caller) for the Store transaction ``seq``.

        Raises :class:`~iomt.ledger.errors.LedgerStateError` if the record exists.
        """
        record = StoredRecord(device_id, seq, data)
        self._storage.put_record(record)
        return record

    def get(self, device_id: str, seq: int) -> StoredRecord:
        """Raises :class:`~iomt.ledger.errors.RecordNotFoundError` if absent."""
        return self._storage.get_record(device_id, seq)

    def records(self, device_id: str) -> list[StoredRecord]:
        """All records of a device, in sequence order."""
        return list(self._storage.iter_records(device_id))

    def devices(self) -> list[str]:
        """Devices with at least one stored record."""
        return self._storage.record_devices()

    def delete_device(self, device_id: str) -> int:
        """Delete every record of a removed device; return how many there were."""
        return self._storage.delete_records(device_id)

    def delete(self, device_id: str, seqs: Iterable[int]) -> int:
        """Delete some records of a device in one commit (e.g. evicted after a cloud sync);
        return how many existed."""
        return self._storage.delete_records(device_id, seqs)
