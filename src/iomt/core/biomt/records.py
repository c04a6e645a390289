"""Records: the **Store**, **Access** and **Observe** transactions.

* **Store** -- the device's AEAD under its shared key is checked (strictly increasing
  counter, per-device rate limit); the Store transaction and the encrypted local record
  commit together; the Observe updates due for the reading are returned, sealed under each
  subscription's key.
* **Access** -- after the request checks (:mod:`.checks`) the privacy header decides
  (owners may always read their devices); records come from local storage, cloud addresses
  for what was evicted; an Access transaction is logged either way -- a denial raises
  :class:`~iomt.core.biomt.errors.AccessDeniedError` carrying it.
* **Observe** -- as Access; the Observe transaction carries the subscription key.

The signed path (:meth:`Records.access`, :meth:`Records.observe`) seals its answer to the
request's one-time key; the session path (:mod:`.user_sessions`) calls the same
:meth:`Records.serve_access` / :meth:`Records.serve_observe` with its own evidence.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import ClassVar

from iomt.crypto.errors import DecryptionError
from iomt.crypto.primitives import AesGcm, sha256
from iomt.ledger import PolicyDeniedError, Receipt, RecordNotFoundError, Transaction, TxType

from .bodies import AccessBody, ObserveBody, StoreBody
from .checks import RequestChecks
from .costs import Phase
from .errors import AccessDeniedError, ObserveDeniedError, ReplayError, RequestAuthenticationError
from .identity import User
from .keys import record_aad
from .limits import RateLimit, RateLimiter
from .messages import (
    AccessPayload,
    AccessRequest,
    AccessResult,
    CloudAddress,
    DataRecord,
    Measurement,
    ObserveRequest,
    ObserveUpdate,
    Outcome,
    StoreReceipt,
    StoreRequest,
    Subscription,
)
from .observe import Delivery
from .sealing import response_aad
from .session import AccessQuery, ObserveQuery
from .state import BolsterState, DeviceRecord

__all__ = ["Records", "StoreResult"]


@dataclass(frozen=True, slots=True)
class StoreResult:
    """A Store's outcome: the receipt for the device, and updates for observers."""

    receipt: StoreReceipt
    updates: tuple[ObserveUpdate, ...]


class Records:
    """Store, Access and Observe over the bolster's ledger and local storage."""

    #: the steps whose time goes to a phase of the cost meter (:mod:`.metering`)
    PHASES: ClassVar[Mapping[str, Phase]] = {
        "_open_store": Phase.CRYPTO,
        "_seal_record": Phase.CRYPTO,
        "_seal_updates": Phase.CRYPTO,
        "_sealed_record": Phase.LEDGER,
        "_open_record": Phase.CRYPTO,
        "_decode": Phase.OTHER,
    }

    def __init__(self, state: BolsterState, checks: RequestChecks) -> None:
        self._state = state
        self._checks = checks
        config = state.config
        self._stores = RateLimiter(RateLimit(config.store_rate, config.store_burst))

    # -- Store ------------------------------------------------------------------------

    def store(self, request: StoreRequest) -> StoreResult:
        state = self._state
        now = state.clock()
        self._checks.addressed(request.bolster_id)
        dev = state.active(request.device, now)
        plaintext = self._open_store(dev, request)
        if request.counter <= dev.last_counter:
            raise ReplayError(
                f"Store counter {request.counter} of {request.device!r} is not above "
                f"{dev.last_counter}",
                last_counter=dev.last_counter,
            )
        self._stores.require(dev.pseudonym, now)
        measurement = self._decode(plaintext)
        seq = state.ledger.size
        record, body = self._seal_record(dev, request.counter, measurement, plaintext, seq)
        tx, receipt = state.append(
            TxType.STORE,
            dev.pseudonym,
            body,
            signature=request.auth_tag,
            local_record=record,
        )
        dev.last_counter = request.counter
        state.index_store(dev, tx.time, tx.seq)
        state.remember(dev.pseudonym, tx.seq, record)
        deliveries = state.engine.on_data(dev.pseudonym, measurement, now)
        updates = self._seal_updates(deliveries, tx.seq, plaintext)
        return StoreResult(StoreReceipt(dev.pseudonym, request.counter, tx, receipt), updates)

    def _open_store(self, dev: DeviceRecord, request: StoreRequest) -> bytes:
        try:
            return dev.key.store.decrypt(request.nonce, request.ciphertext, request.signed_bytes())
        except DecryptionError:
            raise RequestAuthenticationError(
                f"Store of {request.device!r} does not authenticate"
            ) from None

    def _seal_record(
        self, dev: DeviceRecord, counter: int, measurement: Measurement, plaintext: bytes, seq: int
    ) -> tuple[bytes, StoreBody]:
        """The local record (sealed under the storage key) and the Store body naming it."""
        record = self._state.keys.seal_record(
            self._state.rng(12), plaintext, record_aad(dev.pseudonym, seq)
        )
        body = StoreBody(dev.pseudonym, counter, measurement.time, sha256(record), len(record))
        return record, body

    def _seal_updates(
        self, deliveries: list[Delivery], seq: int, plaintext: bytes
    ) -> tuple[ObserveUpdate, ...]:
        return tuple(self._seal_update(d, seq, plaintext) for d in deliveries)

    def _seal_update(self, d: Delivery, seq: int, plaintext: bytes) -> ObserveUpdate:
        sub = d.subscription
        header = ObserveUpdate(
            sub.subscription_id,
            sub.requester,
            d.device,
            seq,
            d.number,
            d.reason,
            d.dropped,
            self._state.rng(12),
            b"",
        )
        aead = sub.key
        assert isinstance(aead, AesGcm)
        return replace(
            header, ciphertext=aead.encrypt(header.nonce, plaintext, header.signed_bytes())
        )

    # -- Access -----------------------------------------------------------------------

    def access(self, request: AccessRequest) -> AccessResult:
        """A signed Access: the answer is ECIES-sealed to the request's one-time key."""
        state = self._state
        user = self._checks.authenticate(request, state.clock())
        tx, receipt, payload = self.serve_access(
            user,
            AccessQuery(request.device, request.since, request.until, request.limit),
            evidence=request.signed_bytes(),
            signature=request.signature,
        )
        aad = response_aad(state.bolster_id, user.name, request.device, tx.seq, request.nonce)
        sealed = state.seal_answer(request.response_key, state.encode(payload), aad)
        return AccessResult(
            state.bolster_id, user.name, request.device, request.nonce, tx, receipt, sealed
        )

    def serve_access(
        self, user: User, query: AccessQuery, *, evidence: bytes, signature: bytes
    ) -> tuple[Transaction, Receipt, AccessPayload]:
        """Policy, records, the Access transaction (also for a denial, which raises)."""
        state = self._state
        generator = state.requester_pseudonym(user.name)
        try:
            self._checks.permit(user, TxType.ACCESS, query.device)
        except PolicyDeniedError as exc:
            body = AccessBody(
                user.name,
                user.role,
                query.device,
                query.since,
                query.until,
                Outcome.DENIED,
                0,
                0,
                str(exc),
                evidence,
            )
            tx, receipt = state.append(TxType.ACCESS, generator, body, signature=signature)
            raise AccessDeniedError(str(exc), transaction=tx, receipt=receipt) from None
        dev = state.devices.get(query.device)
        records: list[DataRecord] = []
        blocks: dict[int, CloudAddress] = {}
        redirected = 0
        if dev is not None:
            lo = bisect.bisect_left(dev.times, query.since)
            hi = bisect.bisect_left(dev.times, query.until)
            hi = min(hi, lo + query.limit)
            for seq in dev.seqs[lo:hi]:
                sealed = self._sealed_record(dev.pseudonym, seq)
                if sealed is None:  # evicted: where the cloud has it
                    index = state.block_of(seq)
                    if index is not None:
                        blocks[index] = CloudAddress(state.log_id, index, state.blocks[index][2])
                        redirected += 1
                    continue
                plain = self._open_record(dev.pseudonym, seq, sealed)
                records.append(DataRecord(seq, self._decode(plain)))
        detail = f"{len(records)} local, {redirected} in the cloud ({len(blocks)} blocks)"
        body = AccessBody(
            user.name,
            user.role,
            query.device,
            query.since,
            query.until,
            Outcome.GRANTED,
            len(records),
            redirected,
            detail,
            evidence,
        )
        tx, receipt = state.append(TxType.ACCESS, generator, body, signature=signature)
        payload = AccessPayload(
            query.device,
            tuple(records),
            tuple(blocks[i] for i in sorted(blocks)),
            state.cloud_pseudonym(query.device) if blocks else "-",
        )
        return tx, receipt, payload

    def _sealed_record(self, device: str, seq: int) -> bytes | None:
        sealed = self._state.recent.get((device, seq))
        if sealed is not None:
            return sealed
        try:
            return self._state.local.get(device, seq).data
        except RecordNotFoundError:
            return None

    def _open_record(self, device: str, seq: int, sealed: bytes) -> bytes:
        return self._state.keys.open_record(sealed, record_aad(device, seq))

    # -- Observe ----------------------------------------------------------------------

    def observe(self, request: ObserveRequest) -> Subscription:
        """A signed Observe: the subscription key is ECIES-sealed to the one-time key."""
        state = self._state
        now = state.clock()
        user = self._checks.authenticate(request, now)
        query = ObserveQuery(request.devices, request.threshold, request.interval, request.duration)
        tx, receipt, body = self.serve_observe(
            user, query, now, evidence=request.signed_bytes(), signature=request.signature
        )
        aad = response_aad(state.bolster_id, user.name, "", tx.seq, request.nonce)
        wrapped = state.seal_answer(request.response_key, body.subscription_key, aad)
        return Subscription(
            state.bolster_id,
            body.subscription_id,
            user.name,
            request.nonce,
            request.devices,
            body.interval,
            body.expires_at,
            wrapped,
            tx,
            receipt,
        )

    def serve_observe(
        self,
        user: User,
        query: ObserveQuery,
        now: int,
        *,
        evidence: bytes,
        signature: bytes,
    ) -> tuple[Transaction, Receipt, ObserveBody]:
        """Policy, the Observe transaction (also for a denial, which raises), the
        subscription; returns the logged body (subscription id, key, interval, expiry)."""
        state = self._state
        generator = state.requester_pseudonym(user.name)
        floor = 0
        try:
            for device in query.devices:
                rule = self._checks.permit(user, TxType.OBSERVE, device)
                if rule is not None:
                    floor = max(floor, rule.observe_interval)
        except PolicyDeniedError as exc:
            body = ObserveBody(
                user.name,
                user.role,
                query.devices,
                query.threshold,
                query.interval,
                0,
                b"",
                b"",
                Outcome.DENIED,
                str(exc),
                evidence,
            )
            tx, receipt = state.append(TxType.OBSERVE, generator, body, signature=signature)
            raise ObserveDeniedError(str(exc), transaction=tx, receipt=receipt) from None
        interval = max(query.interval, floor)
        expires = now + min(query.duration, state.config.max_observe_duration)
        body = ObserveBody(
            user.name,
            user.role,
            query.devices,
            query.threshold,
            interval,
            expires,
            state.rng(16),
            state.rng(32),
            Outcome.GRANTED,
            f"interval {interval} ns",
            evidence,
        )
        tx, receipt = state.append(TxType.OBSERVE, generator, body, signature=signature)
        state.engine.add(state.subscription(body))
        return tx, receipt, body

    def _decode(self, plaintext: bytes) -> Measurement:
        return Measurement.from_bytes(plaintext)
