"""Cloud sync: sealed blocks' Store data, anonymized, to the cloud; its acks, checked.

:meth:`CloudSync.batches` gives a signed, anonymized copy (:func:`~.cloud.anonymize`) of
each sealed block's Store records the cloud has not acknowledged yet, records in an order
that says nothing about arrival. :meth:`CloudSync.synced` takes the cloud's signed ack of a
block (by ledger, index and hash) and, with retention ``evict-after-sync``, evicts the
block's local records -- Access then redirects to the cloud by block address.
:meth:`CloudSync.status` says how far the sync has come.
"""

from __future__ import annotations

import hmac
from dataclasses import replace

from iomt.crypto.signing import Verifier
from iomt.errors import AuthenticationError
from iomt.ledger import RecordNotFoundError, TxType

from .cloud import CloudAck, CloudBatch, CloudSyncStatus, IdentifiedRecord, anonymize
from .config import Retention
from .errors import RequestAuthenticationError
from .keys import record_aad
from .messages import CloudAddress, Measurement
from .state import BolsterState

__all__ = ["CloudSync"]


class CloudSync:
    """Which sealed blocks the cloud holds; ``verifier``: the cloud's key (None: no cloud)."""

    def __init__(self, state: BolsterState, verifier: Verifier | None) -> None:
        self._state = state
        self.verifier = verifier

    def batches(self, *, max_blocks: int = 16) -> list[CloudBatch]:
        """Anonymized copies of sealed blocks' Store data not yet acknowledged by the cloud."""
        state = self._state
        config = state.config
        out: list[CloudBatch] = []
        for index, (first, count, block_hash) in enumerate(state.blocks):
            if len(out) >= max_blocks:
                break
            if count == 0 or index in state.synced:
                continue
            address = CloudAddress(state.log_id, index, block_hash)
            records = []
            for tx in state.ledger.transactions(
                start=first, stop=first + count, tx_type=TxType.STORE
            ):
                dev = state.devices.get(tx.generator_id)
                if dev is None or dev.removed:
                    continue
                try:
                    stored = state.local.get(dev.pseudonym, tx.seq)
                except RecordNotFoundError:
                    continue
                plain = state.keys.open_record(stored.data, record_aad(dev.pseudonym, tx.seq))
                identified = IdentifiedRecord(
                    dev.pseudonym,
                    dev.device_uri,
                    dev.owner,
                    tx.seq,
                    tx.time,
                    Measurement.from_bytes(plain),
                    address,
                )
                records.append(
                    anonymize(
                        identified,
                        cloud_pseudonym=state.cloud_pseudonym(dev.pseudonym),
                        period=config.cloud_period,
                        vocabulary=config.cloud_vocabulary,
                        decimals=config.cloud_decimals,
                    )
                )
            if not records:  # nothing (left) to share from this block
                state.synced.add(index)
                continue
            records.sort(key=lambda r: r.to_bytes())  # order says nothing about arrival
            batch = CloudBatch(state.bolster_id, state.log_id, index, block_hash, tuple(records))
            out.append(replace(batch, signature=state.identity.signer.sign(batch.signed_bytes())))
        return out

    def status(self) -> CloudSyncStatus:
        """How much of the ledger is sealed, and how much of that the cloud holds (the
        leading blocks each acknowledged or found to have nothing to share)."""
        state = self._state
        sealed = synced = 0
        in_order = True
        for index, (first, count, _hash) in enumerate(state.blocks):
            sealed = first + count if count else sealed
            if in_order and (count == 0 or index in state.synced):
                synced = sealed
            else:
                in_order = False
        return CloudSyncStatus(state.ledger.size, sealed, synced)

    def synced(self, ack: CloudAck) -> int:
        """The cloud holds a block: mark it synced and, per retention, evict local copies.

        Returns how many local records were evicted. The ack must be signed by the cloud
        the bolster was configured with (an unsigned ack could make it drop data)."""
        state = self._state
        if self.verifier is None:
            raise RequestAuthenticationError("no cloud key configured; cannot trust an ack")
        try:
            self.verifier.verify(ack.signed_bytes(), ack.signature)
        except AuthenticationError:
            raise RequestAuthenticationError("cloud ack does not verify") from None
        if ack.ledger_id != state.log_id or not (0 <= ack.block_index < len(state.blocks)):
            raise RequestAuthenticationError("ack is for another ledger or block")
        first, count, block_hash = state.blocks[ack.block_index]
        if not hmac.compare_digest(block_hash, ack.block_hash):
            raise RequestAuthenticationError("ack names another block hash")
        state.synced.add(ack.block_index)
        if state.config.retention is not Retention.EVICT_AFTER_SYNC:
            return 0
        by_device: dict[str, list[int]] = {}
        for tx in state.ledger.transactions(start=first, stop=first + count, tx_type=TxType.STORE):
            by_device.setdefault(tx.generator_id, []).append(tx.seq)
        for d, seqs in by_device.items():
            for seq in seqs:
                state.recent.pop((d, seq), None)
        return sum(state.local.delete(d, seqs) for d, seqs in sorted(by_device.items()))

    def replay(self) -> None:
        """After a restart: with ``evict-after-sync``, the blocks whose records are gone
        while their device is not removed were synced and evicted before (re-pushing them
        would be partial)."""
        state = self._state
        if state.config.retention is not Retention.EVICT_AFTER_SYNC:
            return
        evicted: set[int] = set()
        for index, (first, count, _) in enumerate(state.blocks):
            if not count:
                continue
            for tx in state.ledger.transactions(
                start=first, stop=first + count, tx_type=TxType.STORE
            ):
                dev = state.devices.get(tx.generator_id)
                if dev is None or dev.removed:
                    continue
                try:
                    state.local.get(dev.pseudonym, tx.seq)
                except RecordNotFoundError:
                    evicted.add(index)
                    break
        state.synced = evicted
