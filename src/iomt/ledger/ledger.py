"""The bolster's local blockchain: append-only, signed, provable.

BIoMT's bolster holds "a private and secure block role": a *local blockchain* ("a centralized
entity that allows the authorized owner ... to add/remove devices through creating new
transactions ... or control through the policy header") that it maintains "through creating
and appending blocks to the chain". :class:`Ledger` is that chain, sans-IO (storage and clock
are injected; nothing here opens a file, a socket or reads the wall clock by itself):

* :meth:`Ledger.append` adds a transaction (Table 1: Origin, Remove, Store, Access, Observe)
  with its caller-encrypted body, gives it the next global sequence number (its Merkle leaf
  index) and returns a :class:`~iomt.ledger.receipts.Receipt` -- only after the storage
  committed it durably -- holding an inclusion proof and the signed tree head it is in.
  Appends are ``O(log n)``: the tree's right edge (:class:`~iomt.ledger.merkle.Frontier`)
  lives in memory and is rebuilt from stored nodes on open.
* Transactions are grouped into blocks. A block is sealed automatically when it holds
  ``max_block_transactions`` or its first transaction is ``max_block_age`` old (checked on
  append and by :meth:`Ledger.seal_if_due`, which a node calls from a timer), or explicitly
  by :meth:`Ledger.seal_block`, which is also how the owner changes the privacy header:
  the policy in force is the one in the latest block. Block 0 (genesis) carries the initial
  policy.
* Every commit also stores a new signed tree head, so even transactions not yet in a sealed
  block are covered by the bolster's signature, and :func:`~iomt.ledger.audit.audit` can tell
  any change to the stored ledger from what the bolster signed.
* :meth:`Ledger.inclusion_proof`, :meth:`Ledger.consistency_proof` and
  :meth:`Ledger.checkpoint` serve cluster heads and auditors; the verifiers are pure
  functions in :mod:`iomt.ledger.merkle` and :mod:`iomt.ledger.checkpoints`.

A ledger object assumes it is the only writer of its storage (one bolster process); it is not
thread-safe. A second writer is detected by the storage (the sequence number is taken) and
the append fails without changing anything.
"""

from __future__ import annotations

import hmac
import time as _time
from collections.abc import Iterator, Sequence

from iomt.clock import ClockNs

from .audit import AuditReport, audit
from .blocks import GENESIS_PREV_HASH, Block, BlockHeader
from .checkpoints import SignedTreeHead, sign_tree_head, verify_checkpoint
from .errors import (
    BlockSequenceError,
    KeyMismatchError,
    LedgerLookupError,
    LedgerStateError,
    MerkleNodeError,
    TreeHeadMismatchError,
)
from .merkle import (
    EMPTY_ROOT,
    ConsistencyProof,
    Frontier,
    InclusionProof,
    NodeKey,
    consistency_ranges,
    fold_range,
    hashes_for,
    inclusion_ranges,
    range_nodes,
    root_of,
)
from .policy import PrivacyHeader
from .receipts import Receipt
from .signing import LedgerSigner, key_id
from .storage import FORMAT, LedgerMeta, LedgerStorage, StoredRecord
from .transactions import Transaction, TxType

__all__ = ["DEFAULT_MAX_BLOCK_TRANSACTIONS", "ClockNs", "Ledger"]

#: A clock returns nanoseconds since the Unix epoch.

DEFAULT_MAX_BLOCK_TRANSACTIONS = 256


class Ledger:
    """One bolster's local blockchain over a :class:`~iomt.ledger.storage.LedgerStorage`.

    Create or reopen with :meth:`open`.
    """

    def __init__(
        self,
        *,
        storage: LedgerStorage,
        signer: LedgerSigner,
        frontier: Frontier,
        last_block: Block,
        block_count: int,
        head: SignedTreeHead,
        pending: list[bytes],
        clock: ClockNs,
        max_block_transactions: int,
        max_block_age: int | None,
    ) -> None:
        self._storage = storage
        self._signer = signer
        self._log_id = key_id(signer.public_key_bytes)
        self._frontier = frontier
        self._last_block = last_block
        self._last_block_hash = last_block.hash()
        self._block_count = block_count
        self._head = head
        self._pending = pending
        self._pending_since: int | None = last_block.header.time if pending else None
        self._clock = clock
        self._max_txs = max_block_transactions
        self._max_age = max_block_age

    # -- construction ------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        storage: LedgerStorage,
        signer: LedgerSigner,
        *,
        privacy_header: PrivacyHeader | None = None,
        clock: ClockNs = _time.time_ns,
        max_block_transactions: int = DEFAULT_MAX_BLOCK_TRANSACTIONS,
        max_block_age: int | None = None,
    ) -> Ledger:
        """Open the ledger in ``storage``, creating it (with a genesis block carrying
        ``privacy_header``) if the storage is empty.

        ``max_block_age`` is in nanoseconds. Reopening checks the stored signed head against
        the key and the stored tree (cheaply: ``O(log n)`` nodes), not the whole history --
        that is :func:`~iomt.ledger.audit.audit`.
        """
        if not isinstance(max_block_transactions, int) or max_block_transactions < 1:
            raise ValueError("max_block_transactions must be a positive int")
        if max_block_age is not None and max_block_age <= 0:
            raise ValueError("max_block_age must be positive (nanoseconds) or None")
        meta = storage.read_meta()
        if meta is None:
            if privacy_header is None:
                raise LedgerStateError("a new ledger needs the facility's initial privacy header")
            cls._initialize(storage, signer, privacy_header, clock())
            meta = storage.read_meta()
            assert meta is not None
        if meta.format != FORMAT:
            raise LedgerStateError(f"storage holds ledger format {meta.format!r}, not {FORMAT}")
        if meta.public_key != signer.public_key_bytes:
            raise KeyMismatchError(
                "this ledger was created under another bolster key",
                expected=meta.public_key,
                computed=signer.public_key_bytes,
            )
        head = storage.latest_head()
        if head is None:
            raise TreeHeadMismatchError("storage holds no signed tree head")
        verify_checkpoint(head, signer)

        size = storage.transaction_count()
        if head.tree_size != size:
            raise TreeHeadMismatchError(
                "stored transactions do not match the latest signed tree head",
                expected=head.tree_size,
                computed=size,
            )
        keys = Frontier.keys_for(size)
        nodes = storage.get_nodes(keys)
        _require_nodes(keys, nodes)
        frontier = Frontier(size, [nodes[k] for k in keys])
        if not hmac.compare_digest(frontier.root(), head.root_hash):
            raise TreeHeadMismatchError(
                "stored tree does not match the latest signed tree head",
                expected=head.root_hash,
                computed=frontier.root(),
            )

        block_count = storage.block_count()
        if block_count != head.block_height or block_count == 0:
            raise BlockSequenceError(
                "stored blocks do not match the latest signed tree head",
                expected=head.block_height,
                computed=block_count,
            )
        last_block = storage.get_block(block_count - 1)
        if not hmac.compare_digest(last_block.hash(), head.block_hash):
            raise BlockSequenceError(
                "latest stored block is not the one the signed tree head names",
                block_index=block_count - 1,
                expected=head.block_hash,
                computed=last_block.hash(),
            )
        if privacy_header is not None and privacy_header != last_block.privacy_header:
            raise LedgerStateError(
                "the ledger exists and has another privacy header; change it with seal_block()"
            )
        first_pending = last_block.header.tree_size
        pending_keys = [(0, s) for s in range(first_pending, size)]
        pending_nodes = storage.get_nodes(pending_keys)
        _require_nodes(pending_keys, pending_nodes)
        return cls(
            storage=storage,
            signer=signer,
            frontier=frontier,
            last_block=last_block,
            block_count=block_count,
            head=head,
            pending=[pending_nodes[k] for k in pending_keys],
            clock=clock,
            max_block_transactions=max_block_transactions,
            max_block_age=max_block_age,
        )

    @staticmethod
    def _initialize(
        storage: LedgerStorage, signer: LedgerSigner, policy: PrivacyHeader, now: int
    ) -> None:
        log_id = key_id(signer.public_key_bytes)
        header = BlockHeader(
            log_id=log_id,
            index=0,
            prev_hash=GENESIS_PREV_HASH,
            first_seq=0,
            tx_count=0,
            tx_root=EMPTY_ROOT,
            tree_size=0,
            tree_root=EMPTY_ROOT,
            time=now,
            privacy_header_hash=policy.digest(),
        )
        genesis = Block(header, signer.sign(header.signed_bytes()), policy)
        head = sign_tree_head(
            signer,
            tree_size=0,
            root_hash=EMPTY_ROOT,
            block_height=1,
            block_hash=header.hash(),
            time=now,
        )
        storage.initialize(LedgerMeta(signer.public_key_bytes), genesis, head)

    # -- state -------------------------------------------------------------------------------

    @property
    def storage(self) -> LedgerStorage:
        return self._storage

    @property
    def log_id(self) -> bytes:
        """SHA-256 of the bolster's public key: names this ledger in checkpoints and blocks."""
        return self._log_id

    @property
    def public_key_bytes(self) -> bytes:
        return self._signer.public_key_bytes

    @property
    def size(self) -> int:
        """Number of transactions (the Merkle tree size)."""
        return self._frontier.size

    @property
    def root(self) -> bytes:
        """Current Merkle root over all transactions."""
        return self._head.root_hash

    @property
    def block_count(self) -> int:
        return self._block_count

    @property
    def latest_block(self) -> Block:
        return self._last_block

    @property
    def privacy_header(self) -> PrivacyHeader:
        """The policy in force: the privacy header of the latest block."""
        return self._last_block.privacy_header

    @property
    def pending_count(self) -> int:
        """Transactions appended (and committed) but not yet in a sealed block."""
        return len(self._pending)

    @property
    def latest_head(self) -> SignedTreeHead:
        """The signed tree head stored by the last commit."""
        return self._head

    # -- appending ---------------------------------------------------------------------------

    def append(
        self,
        tx_type: TxType | int,
        generator_id: str,
        body: bytes,
        *,
        time: int,
        signature: bytes = b"",
        local_record: bytes | None = None,
    ) -> Receipt:
        """Append a transaction; return its receipt once it is durably committed.

        ``body`` is stored as given (encrypt it first); ``time`` is the transaction's time in
        ns; ``signature`` is the generator's own signature, if any. ``local_record`` (Store
        only) is kept in the bolster's local storage under ``(generator_id, seq)`` in the
        same commit. If the append fills the block (or the block is old enough), the block is
        sealed in the same commit. Raises :class:`LedgerStateError` for an invalid
        transaction and :class:`LedgerStorageError` if the commit fails; either way nothing
        changed.
        """
        seq = self._frontier.size
        try:
            tx = Transaction(seq, TxType(tx_type), generator_id, time, body, signature)
            record = None if local_record is None else StoredRecord(generator_id, seq, local_record)
        except ValueError as exc:
            raise LedgerStateError(f"invalid transaction: {exc}") from exc
        if record is not None and tx.tx_type is not TxType.STORE:
            raise LedgerStateError("only Store transactions carry a local-storage record")

        leaf = tx.leaf_hash()
        path = self._frontier.next_inclusion_path()
        frontier = self._frontier.copy()
        nodes = frontier.append(leaf)
        root = frontier.root()
        now = self._clock()
        pending = [*self._pending, leaf]
        since = now if self._pending_since is None else self._pending_since
        block = None
        if self._due(len(pending), since, now):
            block = self._make_block(pending, self.privacy_header, frontier.size, root, now)
        head = self._sign_head(frontier.size, root, block, now)

        self._storage.commit_append(tx, nodes, head, block=block, record=record)

        # Committed: only now does the in-memory view move.
        block_index = self._block_count
        self._frontier = frontier
        self._head = head
        if block is None:
            self._pending, self._pending_since = pending, since
        else:
            self._after_seal(block)
        return Receipt(
            seq=seq,
            block_index=block_index,
            leaf_hash=leaf,
            inclusion_proof=InclusionProof(seq, frontier.size, path),
            tree_size=frontier.size,
            root=root,
            checkpoint=head,
        )

    def seal_block(self, privacy_header: PrivacyHeader | None = None) -> Block:
        """Seal the pending transactions into a new block, durably, and return it.

        With ``privacy_header``, the new block carries that policy, which is then in force
        (same facility, higher version); a policy change may seal an empty block. Without
        one, the current policy carries over and there must be pending transactions.
        """
        policy = self.privacy_header if privacy_header is None else privacy_header
        if policy != self.privacy_header:
            self._check_policy_change(policy)
        elif not self._pending:
            raise LedgerStateError("no pending transactions and no policy change to seal")
        now = self._clock()
        root = self._head.root_hash
        block = self._make_block(self._pending, policy, self.size, root, now)
        head = self._sign_head(self.size, root, block, now)
        self._storage.commit_block(block, head)
        self._head = head
        self._after_seal(block)
        return block

    def seal_if_due(self) -> Block | None:
        """Seal the pending block if it is full or old enough; for a node's timer."""
        since = self._pending_since
        if (
            self._pending
            and since is not None
            and self._due(len(self._pending), since, self._clock())
        ):
            return self.seal_block()
        return None

    def _due(self, count: int, since: int, now: int) -> bool:
        if count >= self._max_txs:
            return True
        return self._max_age is not None and now - since >= self._max_age

    def _check_policy_change(self, policy: PrivacyHeader) -> None:
        current = self.privacy_header
        if policy.facility_id != current.facility_id:
            raise LedgerStateError(
                f"privacy header is for facility {policy.facility_id!r}, "
                f"this ledger is {current.facility_id!r}"
            )
        if policy.version <= current.version:
            raise LedgerStateError(
                f"a changed privacy header needs a version above {current.version}"
            )

    def _make_block(
        self,
        leaves: Sequence[bytes],
        policy: PrivacyHeader,
        tree_size: int,
        tree_root: bytes,
        now: int,
    ) -> Block:
        header = BlockHeader(
            log_id=self._log_id,
            index=self._block_count,
            prev_hash=self._last_block_hash,
            first_seq=tree_size - len(leaves),
            tx_count=len(leaves),
            tx_root=root_of(leaves),
            tree_size=tree_size,
            tree_root=tree_root,
            time=now,
            privacy_header_hash=policy.digest(),
        )
        return Block(header, self._signer.sign(header.signed_bytes()), policy)

    def _sign_head(self, size: int, root: bytes, block: Block | None, now: int) -> SignedTreeHead:
        if block is None:
            height, block_hash = self._block_count, self._last_block_hash
        else:
            height, block_hash = block.index + 1, block.hash()
        return sign_tree_head(
            self._signer,
            tree_size=size,
            root_hash=root,
            block_height=height,
            block_hash=block_hash,
            time=now,
        )

    def _after_seal(self, block: Block) -> None:
        self._last_block = block
        self._last_block_hash = block.hash()
        self._block_count = block.index + 1
        self._pending, self._pending_since = [], None

    # -- reading -----------------------------------------------------------------------------

    def get_transaction(self, seq: int) -> Transaction:
        return self._storage.get_transaction(seq)

    def transactions(
        self,
        *,
        generator_id: str | None = None,
        tx_type: TxType | None = None,
        start: int = 0,
        stop: int | None = None,
    ) -> Iterator[Transaction]:
        """Transactions in sequence order, optionally of one generator and/or one type."""
        return self._storage.iter_transactions(
            start, stop, generator_id=generator_id, tx_type=tx_type
        )

    def get_block(self, index: int) -> Block:
        return self._storage.get_block(index)

    def blocks(self, start: int = 0) -> Iterator[Block]:
        return self._storage.iter_blocks(start)

    # -- proofs ------------------------------------------------------------------------------

    def _nodes(self, ranges: Sequence[tuple[int, int]]) -> tuple[bytes, ...]:
        keys = [k for s, e in ranges for k in range_nodes(s, e)]
        nodes = self._storage.get_nodes(keys)
        _require_nodes(keys, nodes)
        return hashes_for(ranges, nodes)

    def _check_size(self, tree_size: int) -> None:
        if not 0 <= tree_size <= self.size:
            raise LedgerLookupError(f"no tree of size {tree_size} (ledger size {self.size})")

    def root_at(self, tree_size: int) -> bytes:
        """The Merkle root the ledger had at ``tree_size`` transactions."""
        self._check_size(tree_size)
        if tree_size == self.size:
            return self.root
        return self._nodes([(0, tree_size)])[0] if tree_size else EMPTY_ROOT

    def inclusion_proof(self, seq: int, tree_size: int | None = None) -> InclusionProof:
        """Proof that transaction ``seq`` is in the tree of ``tree_size`` (default: now)."""
        n = self.size if tree_size is None else tree_size
        self._check_size(n)
        if not 0 <= seq < n:
            raise LedgerLookupError(f"no transaction {seq} in a tree of size {n}")
        return InclusionProof(seq, n, self._nodes(inclusion_ranges(seq, n)))

    def inclusion_proofs(
        self, seqs: Sequence[int], tree_size: int | None = None
    ) -> tuple[InclusionProof, ...]:
        """:meth:`inclusion_proof` for each of ``seqs``, with one storage read for them all.

        Proofs of nearby transactions share most of their nodes; reading them once is what
        keeps a bolster's session attestation (64 proofs) off the executor's critical path.
        """
        n = self.size if tree_size is None else tree_size
        self._check_size(n)
        for seq in seqs:
            if not 0 <= seq < n:
                raise LedgerLookupError(f"no transaction {seq} in a tree of size {n}")
        # Nearby leaves share most of their path: fold each distinct range once.
        ranges = [inclusion_ranges(seq, n) for seq in seqs]
        distinct = {r: range_nodes(*r) for r in {r for rs in ranges for r in rs}}
        keys = [k for ks in distinct.values() for k in ks]
        nodes = self._storage.get_nodes(keys)
        _require_nodes(keys, nodes)
        folded = {r: fold_range([nodes[k] for k in ks]) for r, ks in distinct.items()}
        return tuple(
            InclusionProof(seq, n, tuple(folded[r] for r in rs))
            for seq, rs in zip(seqs, ranges, strict=True)
        )

    def consistency_proof(self, first: int, second: int | None = None) -> ConsistencyProof:
        """Proof that the tree of ``second`` (default: now) extends the tree of ``first``."""
        n = self.size if second is None else second
        self._check_size(n)
        if not 0 <= first <= n:
            raise LedgerLookupError(f"need 0 <= first <= second, got {first}, {n}")
        return ConsistencyProof(first, n, self._nodes(consistency_ranges(first, n)))

    def checkpoint(self) -> SignedTreeHead:
        """A freshly signed tree head for the current state (for cluster heads to witness)."""
        return sign_tree_head(
            self._signer,
            tree_size=self.size,
            root_hash=self.root,
            block_height=self._block_count,
            block_hash=self._last_block_hash,
            time=self._clock(),
        )

    def verify_chain(self) -> AuditReport:
        """Audit the whole stored ledger against this bolster's key (see :func:`audit`)."""
        return audit(self._storage, self._signer)


def _require_nodes(keys: Sequence[NodeKey], nodes: dict[NodeKey, bytes]) -> None:
    for key in keys:
        if key not in nodes:
            raise MerkleNodeError(
                f"stored Merkle node {key} (level, index) is missing",
                seq=key[1] << key[0],
            )
