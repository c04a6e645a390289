"""The cloud layer: anonymized records addressed by block number and block hash.

BIoMT's cloud "groups the data into identical blocks with unique block numbers. Users
should authenticate before requesting data through providing the block number and block
hash", and "run[s] anonymization algorithms to strip the private/identity information to
allow for identity-free data analytics"; for cloud storage "an anonymization algorithm
splits the personal information before data submission". So:

* :func:`anonymize` turns what the bolster holds about a reading (:class:`IdentifiedRecord`:
  device pseudonym, URI, owner, exact times) into an :class:`AnonymizedRecord` that *by
  construction* holds only: a cloud pseudonym (HMAC under a key the cloud never sees --
  stable per device, unlinkable to the device without the key), the start of the time
  period the reading falls in (coarsened, an hour by default), the kind and value names
  mapped onto a fixed vocabulary (anything else becomes ``"other"``), the values (optionally
  rounded), and the block address. No field can carry free text from the device.
* the bolster pushes a :class:`CloudBatch` per sealed block (records sorted, so their order
  says nothing about arrival), signed with its ledger key; :class:`Cloud` checks the
  signature against the facility public-key list and keeps the batch under
  ``(ledger id, block number, block hash)``; a re-push of the same block is acknowledged
  with what is kept (the first batch), and a different block hash for the same block number
  -- an equivocating bolster -- is refused.
* a requester asks with a :class:`CloudRequest` naming that address, signed with its
  certificate's key (registered users only); the answer is sealed to its one-time
  response key. Its :class:`CloudAck` (signed by the cloud) is what lets the bolster evict
  its local copies.

What anonymization here does *not* do: k-anonymity or generalization against
quasi-identifiers in the values themselves (a rare reading is still rare). The vocabulary,
period and rounding are the knobs a deployment tightens.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from iomt.crypto.signing import Signer, Verifier
from iomt.errors import AuthenticationError
from iomt.ledger import key_id

from .clock import ClockNs, Rng
from .codec import F64, U32, U64, Bytes, Message, Nested, Seq, Text, Tuple, tag
from .errors import (
    BiomtDecodeError,
    CloudBlockNotFoundError,
    RequestAuthenticationError,
    StaleRequestError,
    UnknownBolsterError,
)
from .identity import BolsterCredentials, TrustAnchor, UserDirectory
from .limits import NonceCache
from .messages import ID, NONCE, RESPONSE_KEY, SIGNATURE, CloudAddress, Measurement
from .sealing import response_aad, seal_to

__all__ = [
    "DEFAULT_VOCABULARY",
    "HOUR",
    "AnonymizedRecord",
    "Cloud",
    "CloudAck",
    "CloudBatch",
    "CloudPayload",
    "CloudRequest",
    "CloudResponse",
    "IdentifiedRecord",
    "anonymize",
]

HOUR = 3600 * 1_000_000_000
OTHER = "other"

#: Kinds and value names that may leave the facility; anything else becomes ``"other"``.
DEFAULT_VOCABULARY = frozenset(
    {
        "heart_rate",
        "blood_pressure",
        "spo2",
        "temperature",
        "respiratory_rate",
        "glucose",
        "weight",
        "bpm",
        "systolic",
        "diastolic",
        "mmhg",
        "percent",
        "celsius",
        "mg_dl",
        "kg",
        "value",
    }
)


@dataclass(frozen=True, slots=True)
class IdentifiedRecord:
    """A reading with everything the bolster knows about its origin (never leaves it)."""

    device: str
    device_uri: str
    owner: str
    seq: int
    stored_at: int
    measurement: Measurement
    address: CloudAddress


@dataclass(frozen=True, slots=True)
class AnonymizedRecord(Message):
    """What the cloud keeps: no identity, no exact time, vocabulary-only names."""

    cloud_pseudonym: str
    period_start: int
    period_seconds: int
    kind: str
    values: tuple[tuple[str, float], ...]
    ledger_id: bytes
    block_index: int
    block_hash: bytes

    TAG = tag("iomt/biomt/anonymized-record/v1")
    FIELDS = (
        ("cloud_pseudonym", Text(max_size=64)),
        ("period_start", U64),
        ("period_seconds", U32),
        ("kind", Text(max_size=32)),
        ("values", Seq(Tuple(Text(max_size=32), F64), max_items=16)),
        ("ledger_id", Bytes(size=32)),
        ("block_index", U64),
        ("block_hash", Bytes(size=32)),
    )

    @property
    def address(self) -> CloudAddress:
        return CloudAddress(self.ledger_id, self.block_index, self.block_hash)


def _word(name: str, vocabulary: frozenset[str]) -> str:
    return name if name in vocabulary else OTHER


def anonymize(
    record: IdentifiedRecord,
    *,
    cloud_pseudonym: str,
    period: int = HOUR,
    vocabulary: frozenset[str] = DEFAULT_VOCABULARY,
    decimals: int | None = None,
) -> AnonymizedRecord:
    """Strip identity from a record (see the module docstring for what remains).

    ``cloud_pseudonym`` comes from the bolster's keyed pseudonym function
    (:meth:`~iomt.core.biomt.keys.StorageKeys.cloud_pseudonym`); ``period`` is the time
    granularity in ns (a whole number of seconds); ``decimals`` rounds values.
    """
    if period < 1_000_000_000 or period % 1_000_000_000:
        raise ValueError("period must be a positive whole number of seconds (in ns)")
    if not cloud_pseudonym.startswith("anon-"):
        raise ValueError("cloud pseudonyms come from StorageKeys.cloud_pseudonym")
    m = record.measurement
    start = (m.time // period) * period // 1_000_000_000
    values: dict[str, float] = {}
    for name, value in m.values:
        v = round(value, decimals) if decimals is not None else value
        key = _word(name, vocabulary)
        if key in values:  # two unknown names collapsed into "other": keep the first
            continue
        values[key] = v if math.isfinite(v) else 0.0
    return AnonymizedRecord(
        cloud_pseudonym=cloud_pseudonym,
        period_start=start,
        period_seconds=period // 1_000_000_000,
        kind=_word(m.kind, vocabulary),
        values=tuple(sorted(values.items())),
        ledger_id=record.address.ledger_id,
        block_index=record.address.block_index,
        block_hash=record.address.block_hash,
    )


# --- messages ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CloudBatch(Message):
    """A sealed block's anonymized Store data, signed by the bolster's ledger key."""

    bolster_id: str
    ledger_id: bytes
    block_index: int
    block_hash: bytes
    records: tuple[AnonymizedRecord, ...]
    signature: bytes = b""

    TAG = tag("iomt/biomt/cloud-batch/v1")
    FIELDS = (
        ("bolster_id", ID),
        ("ledger_id", Bytes(size=32)),
        ("block_index", U64),
        ("block_hash", Bytes(size=32)),
        ("records", Seq(Nested(AnonymizedRecord), max_items=1 << 16)),
        ("signature", SIGNATURE),
    )
    SIGNATURE = "signature"

    @property
    def address(self) -> CloudAddress:
        return CloudAddress(self.ledger_id, self.block_index, self.block_hash)


@dataclass(frozen=True, slots=True)
class CloudAck(Message):
    """The cloud's signed statement that it holds a block's batch."""

    cloud_id: str
    ledger_id: bytes
    block_index: int
    block_hash: bytes
    records: int
    signature: bytes = b""

    TAG = tag("iomt/biomt/cloud-ack/v1")
    FIELDS = (
        ("cloud_id", ID),
        ("ledger_id", Bytes(size=32)),
        ("block_index", U64),
        ("block_hash", Bytes(size=32)),
        ("records", U32),
        ("signature", SIGNATURE),
    )
    SIGNATURE = "signature"


@dataclass(frozen=True, slots=True)
class CloudSyncStatus(Message):
    """How far a bolster's cloud sync has come, in transactions of its ledger:
    ``transactions`` logged, ``sealed`` in sealed blocks, ``synced`` in the leading sealed
    blocks the cloud holds (or that had no Store data to share). ``synced == transactions``
    once everything logged so far is sealed and in the cloud."""

    transactions: int
    sealed: int
    synced: int

    TAG = tag("iomt/biomt/cloud-sync-status/v1")
    FIELDS = (("transactions", U64), ("sealed", U64), ("synced", U64))


@dataclass(frozen=True, slots=True)
class CloudRequest(Message):
    """A user asks for one block's anonymized data, by ledger, block number and hash."""

    cloud_id: str
    requester: str
    ledger_id: bytes
    block_index: int
    block_hash: bytes
    nonce: bytes
    time: int
    response_key: bytes
    signature: bytes = b""

    TAG = tag("iomt/biomt/cloud-request/v1")
    FIELDS = (
        ("cloud_id", ID),
        ("requester", ID),
        ("ledger_id", Bytes(size=32)),
        ("block_index", U64),
        ("block_hash", Bytes(size=32)),
        ("nonce", NONCE),
        ("time", U64),
        ("response_key", RESPONSE_KEY),
        ("signature", SIGNATURE),
    )
    SIGNATURE = "signature"


@dataclass(frozen=True, slots=True)
class CloudPayload(Message):
    address: CloudAddress
    records: tuple[AnonymizedRecord, ...]

    TAG = tag("iomt/biomt/cloud-payload/v1")
    FIELDS = (
        ("address", Nested(CloudAddress)),
        ("records", Seq(Nested(AnonymizedRecord), max_items=1 << 16)),
    )


@dataclass(frozen=True, slots=True)
class CloudResponse(Message):
    """``sealed`` is ECIES(response_key, CloudPayload)."""

    cloud_id: str
    requester: str
    request_nonce: bytes
    sealed: bytes

    TAG = tag("iomt/biomt/cloud-response/v1")
    FIELDS = (
        ("cloud_id", ID),
        ("requester", ID),
        ("request_nonce", NONCE),
        ("sealed", Bytes()),
    )


# --- the cloud -----------------------------------------------------------------------


class Cloud:
    """Anonymized storage. In memory: the node persists it (or a real object store does)."""

    def __init__(
        self,
        cloud_id: str,
        signer: Signer,
        *,
        anchor: TrustAnchor,
        users: UserDirectory,
        clock: ClockNs,
        rng: Rng,
        max_clock_skew: int = 30 * 1_000_000_000,
    ) -> None:
        self.cloud_id = cloud_id
        self._signer = signer
        self._anchor = anchor
        self._users = users
        self._clock = clock
        self._rng = rng
        self._skew = max_clock_skew
        self._bolsters: dict[bytes, tuple[str, Verifier]] = {}
        self._blocks: dict[tuple[bytes, int], CloudBatch] = {}
        self._nonces = NonceCache()

    @property
    def verifier(self) -> Verifier:
        return self._signer.verifier()

    def _now(self) -> int:
        return self._clock()

    def register_bolster(self, credentials: BolsterCredentials) -> bytes:
        """Admit a facility's bolster (its certified signing key); returns its ledger id."""
        verifier, _ = credentials.verify(self._anchor, now=self._now())
        ledger_id = key_id(verifier.public_bytes())
        self._bolsters[ledger_id] = (credentials.bolster_id, verifier)
        return ledger_id

    def put(self, batch: CloudBatch) -> CloudAck:
        """Keep a bolster's batch (after checking its signature) and acknowledge it."""
        known = self._bolsters.get(batch.ledger_id)
        if known is None or known[0] != batch.bolster_id:
            raise UnknownBolsterError(f"no registered bolster {batch.bolster_id!r} for this ledger")
        try:
            known[1].verify(batch.signed_bytes(), batch.signature)
        except AuthenticationError as exc:
            raise RequestAuthenticationError(f"batch signature: {exc}") from None
        for r in batch.records:
            if r.address != batch.address:
                raise BiomtDecodeError("a record in the batch names another block")
        key = (batch.ledger_id, batch.block_index)
        existing = self._blocks.get(key)
        if existing is not None and existing.block_hash != batch.block_hash:
            # two signed blocks at one height: the bolster equivocates; keep the first
            raise RequestAuthenticationError(
                f"block {batch.block_index} was already stored with another block hash"
            )
        if existing is None:
            self._blocks[key] = batch
        batch = self._blocks[key]  # a re-push (e.g. after a restart) is acknowledged as is
        ack = CloudAck(
            self.cloud_id, batch.ledger_id, batch.block_index, batch.block_hash, len(batch.records)
        )
        return CloudAck(
            ack.cloud_id,
            ack.ledger_id,
            ack.block_index,
            ack.block_hash,
            ack.records,
            self._signer.sign(ack.signed_bytes()),
        )

    def blocks(self) -> Iterable[CloudBatch]:
        return list(self._blocks.values())

    def get(self, request: CloudRequest) -> CloudResponse:
        """Serve one block to an authenticated user who names it by number *and* hash."""
        now = self._now()
        if request.cloud_id != self.cloud_id:
            raise RequestAuthenticationError(f"request is for cloud {request.cloud_id!r}")
        if abs(request.time - now) > self._skew:
            raise StaleRequestError("request time outside the accepted clock skew")
        self._users.authenticate(
            request.requester, request.signed_bytes(), request.signature, now=now
        )
        self._nonces.add(
            b"cloud" + request.requester.encode() + b"\x00" + request.nonce,
            until=request.time + self._skew,
            now=now,
        )
        batch = self._blocks.get((request.ledger_id, request.block_index))
        if batch is None or batch.block_hash != request.block_hash:
            raise CloudBlockNotFoundError(
                f"no block {request.block_index} with that hash for that ledger"
            )
        payload = CloudPayload(batch.address, batch.records)
        aad = response_aad(self.cloud_id, request.requester, "", batch.block_index, request.nonce)
        return CloudResponse(
            self.cloud_id,
            request.requester,
            request.nonce,
            seal_to(request.response_key, payload.to_bytes(), aad),
        )
