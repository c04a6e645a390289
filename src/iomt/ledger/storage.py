"""Where a bolster's ledger and local storage live: one interface, two backends.

The ledger core (:mod:`iomt.ledger.ledger`) never touches files; it talks to a
:class:`LedgerStorage`. Every *write* is one method that is atomic and durable when it
returns (a transaction row, its new Merkle nodes, the new signed tree head -- and, when the
append fills a block, the sealed block -- commit together or not at all), so a crash at any
instant leaves a state the bolster signed. Reads return the library's frozen values; a row
that no longer parses is reported as the integrity error it is.

:class:`MemoryStorage` keeps everything in Python objects (tests, simulations, benchmarks'
baseline); :class:`~iomt.ledger.sqlite.SqliteStorage` keeps it in one SQLite file in WAL mode.

The same backend also holds BIoMT's *local storage* ("for storing data locally as a backup
drive", read by "close by authorized users ... in case of no connection to the global cloud
storage"): opaque encrypted records keyed by device and the sequence number of the Store
transaction that carried them, deleted per device when the device is removed.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from types import TracebackType

from .blocks import Block
from .checkpoints import SignedTreeHead
from .encoding import check_u64
from .errors import LedgerLookupError, LedgerStateError, LedgerStorageError, RecordNotFoundError
from .merkle import NodeKey
from .transactions import Transaction, TxType

__all__ = [
    "FORMAT",
    "LedgerMeta",
    "LedgerStorage",
    "MemoryStorage",
    "NewNode",
    "StoredRecord",
]

#: Storage format identifier, checked when a store is opened.
FORMAT = "iomt-ledger/1"

#: A Merkle node to persist: ``(level, index, hash)``.
NewNode = tuple[int, int, bytes]


@dataclass(frozen=True, slots=True)
class LedgerMeta:
    """What a store says about the ledger it holds."""

    public_key: bytes
    format: str = FORMAT


@dataclass(frozen=True, slots=True)
class StoredRecord:
    """One local-storage record: encrypted device data kept by the bolster."""

    device_id: str
    seq: int
    data: bytes

    def __post_init__(self) -> None:
        if not isinstance(self.device_id, str) or not self.device_id:
            raise ValueError("device_id must be a non-empty string")
        check_u64("seq", self.seq)
        if not isinstance(self.data, bytes):
            raise ValueError("record data must be bytes")


class LedgerStorage(ABC):
    """Persistence for one bolster's ledger and local storage."""

    # -- lifecycle ---------------------------------------------------------------------------

    @abstractmethod
    def read_meta(self) -> LedgerMeta | None:
        """The ledger's metadata, or ``None`` if this store holds no ledger yet."""

    @abstractmethod
    def initialize(self, meta: LedgerMeta, genesis: Block, head: SignedTreeHead) -> None:
        """Atomically create a ledger: metadata, genesis block and first signed head."""

    def close(self) -> None:  # noqa: B027 - optional hook, nothing to release by default
        """Release resources; the store must not be used afterwards."""

    def __enter__(self) -> LedgerStorage:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- atomic writes -----------------------------------------------------------------------

    @abstractmethod
    def commit_append(
        self,
        tx: Transaction,
        nodes: Sequence[NewNode],
        head: SignedTreeHead,
        *,
        block: Block | None = None,
        record: StoredRecord | None = None,
    ) -> None:
        """Durably store one transaction with its new Merkle nodes and the new signed head,
        plus the block it completes and its local-storage record, if any -- all or nothing.
        Raises :class:`LedgerStorageError` if ``tx.seq`` is taken (a second writer)."""

    @abstractmethod
    def commit_block(self, block: Block, head: SignedTreeHead) -> None:
        """Durably store a sealed block and the signed head naming it, together."""

    # -- ledger reads ------------------------------------------------------------------------

    @abstractmethod
    def transaction_count(self) -> int:
        """How many transaction rows are stored."""

    @abstractmethod
    def get_transaction(self, seq: int) -> Transaction:
        """Raises :class:`LedgerLookupError` if there is no transaction ``seq``."""

    @abstractmethod
    def iter_transactions(
        self,
        start: int = 0,
        stop: int | None = None,
        *,
        generator_id: str | None = None,
        tx_type: TxType | None = None,
    ) -> Iterator[Transaction]:
        """Stored transactions with ``start <= seq < stop``, in sequence order, filtered."""

    @abstractmethod
    def get_nodes(self, keys: Iterable[NodeKey]) -> dict[NodeKey, bytes]:
        """The stored Merkle nodes among ``keys`` (missing ones are absent from the result)."""

    @abstractmethod
    def node_count(self) -> int:
        """How many Merkle nodes (leaves included) are stored."""

    @abstractmethod
    def block_count(self) -> int:
        """How many block rows are stored."""

    @abstractmethod
    def get_block(self, index: int) -> Block:
        """Raises :class:`LedgerLookupError` if there is no block ``index``."""

    @abstractmethod
    def iter_blocks(self, start: int = 0) -> Iterator[Block]:
        """Stored blocks from ``start``, in index order."""

    @abstractmethod
    def latest_head(self) -> SignedTreeHead | None:
        """The signed tree head written by the last commit (``None`` before initialize)."""

    # -- local storage -----------------------------------------------------------------------

    @abstractmethod
    def put_record(self, record: StoredRecord) -> None:
        """Durably store a record; :class:`LedgerStateError` if (device, seq) exists."""

    @abstractmethod
    def get_record(self, device_id: str, seq: int) -> StoredRecord:
        """Raises :class:`RecordNotFoundError` if absent."""

    @abstractmethod
    def iter_records(self, device_id: str) -> Iterator[StoredRecord]:
        """A device's records in sequence order."""

    @abstractmethod
    def record_devices(self) -> list[str]:
        """Devices that have at least one record, sorted."""

    @abstractmethod
    def delete_records(self, device_id: str, seqs: Iterable[int] | None = None) -> int:
        """Durably delete the records of a device (all, or those with sequence numbers in
        ``seqs``); return how many were deleted."""


class MemoryStorage(LedgerStorage):
    """Everything in process memory: nothing survives the process (tests, simulations).

    Writes validate first and mutate last, so a failed write changes nothing.
    """

    def __init__(self) -> None:
        self._meta: LedgerMeta | None = None
        self._txs: list[Transaction] = []
        self._by_generator: dict[str, list[int]] = {}
        self._nodes: dict[NodeKey, bytes] = {}
        self._blocks: list[Block] = []
        self._head: SignedTreeHead | None = None
        self._records: dict[str, dict[int, StoredRecord]] = {}

    def read_meta(self) -> LedgerMeta | None:
        return self._meta

    def initialize(self, meta: LedgerMeta, genesis: Block, head: SignedTreeHead) -> None:
        if self._meta is not None:
            raise LedgerStorageError("store already holds a ledger")
        self._meta, self._blocks, self._head = meta, [genesis], head

    def commit_append(
        self,
        tx: Transaction,
        nodes: Sequence[NewNode],
        head: SignedTreeHead,
        *,
        block: Block | None = None,
        record: StoredRecord | None = None,
    ) -> None:
        if tx.seq != len(self._txs):
            raise LedgerStorageError(
                f"append of seq {tx.seq} but the store holds {len(self._txs)} transactions"
            )
        if block is not None and block.index != len(self._blocks):
            raise LedgerStorageError(f"block {block.index} out of order")
        if record is not None and record.seq in self._records.get(record.device_id, {}):
            raise LedgerStorageError(f"record ({record.device_id!r}, {record.seq}) exists")
        self._txs.append(tx)
        self._by_generator.setdefault(tx.generator_id, []).append(tx.seq)
        for level, index, h in nodes:
            self._nodes[level, index] = h
        if block is not None:
            self._blocks.append(block)
        if record is not None:
            self._records.setdefault(record.device_id, {})[record.seq] = record
        self._head = head

    def commit_block(self, block: Block, head: SignedTreeHead) -> None:
        if block.index != len(self._blocks):
            raise LedgerStorageError(f"block {block.index} out of order")
        self._blocks.append(block)
        self._head = head

    def transaction_count(self) -> int:
        return len(self._txs)

    def get_transaction(self, seq: int) -> Transaction:
        if not 0 <= seq < len(self._txs):
            raise LedgerLookupError(f"no transaction {seq}")
        return self._txs[seq]

    def iter_transactions(
        self,
        start: int = 0,
        stop: int | None = None,
        *,
        generator_id: str | None = None,
        tx_type: TxType | None = None,
    ) -> Iterator[Transaction]:
        stop = len(self._txs) if stop is None else min(stop, len(self._txs))
        seqs: Iterable[int]
        if generator_id is not None:
            seqs = (s for s in self._by_generator.get(generator_id, ()) if start <= s < stop)
        else:
            seqs = range(max(start, 0), stop)
        for s in seqs:
            tx = self._txs[s]
            if tx_type is None or tx.tx_type == tx_type:
                yield tx

    def get_nodes(self, keys: Iterable[NodeKey]) -> dict[NodeKey, bytes]:
        nodes = self._nodes
        return {k: nodes[k] for k in keys if k in nodes}

    def node_count(self) -> int:
        return len(self._nodes)

    def block_count(self) -> int:
        return len(self._blocks)

    def get_block(self, index: int) -> Block:
        if not 0 <= index < len(self._blocks):
            raise LedgerLookupError(f"no block {index}")
        return self._blocks[index]

    def iter_blocks(self, start: int = 0) -> Iterator[Block]:
        yield from self._blocks[max(start, 0) :]

    def latest_head(self) -> SignedTreeHead | None:
        return self._head

    def put_record(self, record: StoredRecord) -> None:
        device = self._records.setdefault(record.device_id, {})
        if record.seq in device:
            raise LedgerStateError(f"record ({record.device_id!r}, {record.seq}) exists")
        device[record.seq] = record

    def get_record(self, device_id: str, seq: int) -> StoredRecord:
        try:
            return self._records[device_id][seq]
        except KeyError:
            raise RecordNotFoundError(f"no record ({device_id!r}, {seq})") from None

    def iter_records(self, device_id: str) -> Iterator[StoredRecord]:
        device = self._records.get(device_id, {})
        for seq in sorted(device):
            yield device[seq]

    def record_devices(self) -> list[str]:
        return sorted(d for d, recs in self._records.items() if recs)

    def delete_records(self, device_id: str, seqs: Iterable[int] | None = None) -> int:
        if seqs is None:
            return len(self._records.pop(device_id, {}))
        device = self._records.get(device_id, {})
        return sum(device.pop(seq, None) is not None for seq in set(seqs))
