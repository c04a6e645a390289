"""The requests and responses of the bolster's services, as canonical frozen dataclasses.

BIoMT's services (§II-C): storing data, device data access, device monitoring (Observe),
device removal and communication setup, plus the patient's view of the ledger ("users know
what exactly is collected, who collects it and for what purpose"). Each request names the
bolster it is for (a request for bolster A is useless at bolster B) and is authenticated by
its generator:

* devices with their **shared key** -- ``StoreRequest`` is AES-256-GCM under the key's
  ``store`` subkey (its associated data is every other field), ``CommunicationRequest`` is
  HMAC-SHA256 under the ``mac`` subkey; a strictly increasing counter or a nonce inside a
  clock-skew window makes a replay fail;
* users (service providers, physicians, patients, admins) with a **signature** by the key of
  their CA-issued certificate over :meth:`~iomt.core.biomt.codec.Message.signed_bytes`,
  with a fresh nonce and time.

Responses that carry data are sealed to the requester: every user request carries a fresh
X25519 ``response_key`` and the bolster answers with ECIES (``ecc``) to it, bound to the
request's nonce and the transaction that logged it. Every response includes the logged
transaction and its :class:`~iomt.ledger.Receipt` (inclusion proof + signed checkpoint).
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass
from enum import IntEnum

from iomt.crypto.encoding import Reader
from iomt.ledger import InclusionProof, Receipt, SignedTreeHead, Transaction, TxType

from .codec import (
    F64,
    TEXTS,
    U32,
    U64,
    Blob,
    Bytes,
    Enum,
    Field,
    Message,
    Nested,
    Optional,
    Seq,
    Text,
    Tuple,
    tag,
)

__all__ = [
    "GCM_NONCE",
    "NONCE_SIZE",
    "RECEIPT",
    "TRANSACTION",
    "AccessPayload",
    "AccessRequest",
    "AccessResult",
    "CloudAddress",
    "CommunicationGrant",
    "CommunicationRequest",
    "DataRecord",
    "Evidence",
    "HistoryEntry",
    "HistoryPayload",
    "HistoryRequest",
    "HistoryResult",
    "Measurement",
    "ObserveRequest",
    "ObserveUpdate",
    "Outcome",
    "RemoveRequest",
    "RemoveResult",
    "StoreReceipt",
    "StoreRequest",
    "Subscription",
    "Threshold",
    "UpdateReason",
]

NONCE_SIZE = 16
GCM_NONCE = 12
X25519_SIZE = 32
MAX_SIGNATURE = 128
MAX_GROUP = 256
MAX_PAYLOAD = 1 << 16

_NAME_RE = re.compile(r"[a-z][a-z0-9_]{0,31}")
NONCE = Bytes(size=NONCE_SIZE)
RESPONSE_KEY = Bytes(size=X25519_SIZE)
SIGNATURE = Bytes(max_size=MAX_SIGNATURE)
ID = Text(max_size=256)


def _require(cond: bool, message: str) -> None:
    if not cond:
        raise ValueError(message)


def _name(value: str, what: str) -> None:
    _require(isinstance(value, str) and 0 < len(value.encode()) <= 256, f"{what}: 1..256 bytes")


def _u64(value: int, what: str) -> None:
    _require(
        isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 1 << 63,
        f"{what} must be an int in [0, 2**63)",
    )


class _ReceiptField(Field[Receipt]):
    """A ledger :class:`~iomt.ledger.Receipt` (which has no encoding of its own)."""

    _proof = Blob(InclusionProof.from_bytes)
    _head = Blob(SignedTreeHead.from_bytes)
    _hash = Bytes(size=32)

    def write(self, out: list[bytes], value: Receipt) -> None:
        U64.write(out, value.seq)
        U64.write(out, value.block_index)
        self._hash.write(out, value.leaf_hash)
        self._proof.write(out, value.inclusion_proof)
        U64.write(out, value.tree_size)
        self._hash.write(out, value.root)
        self._head.write(out, value.checkpoint)

    def read(self, r: Reader) -> Receipt:
        return Receipt(
            seq=U64.read(r),
            block_index=U64.read(r),
            leaf_hash=self._hash.read(r),
            inclusion_proof=self._proof.read(r),
            tree_size=U64.read(r),
            root=self._hash.read(r),
            checkpoint=self._head.read(r),
        )


RECEIPT = _ReceiptField()
TRANSACTION: Field[Transaction] = Blob(Transaction.from_bytes)


class Outcome(IntEnum):
    """What the bolster did with a request (recorded in the transaction body)."""

    GRANTED = 0
    DENIED = 1
    CANCELLED = 2


class Evidence(IntEnum):
    """What the ledger holds that authenticates a logged request, as a history entry shows.

    Only a *signature* is evidence a third party can check without trusting the bolster:
    a MAC or AEAD tag is made with a key the bolster holds too (the device's shared key, a
    user's session keys), so it proves the request to the bolster but the bolster could
    have made it itself.
    """

    SIGNATURE = 0  # the generator's signature over the request (users, admins, reporters)
    DEVICE_KEY = 1  # the device's AEAD tag / MAC under the key it shares with the bolster
    SESSION = 2  # a user's session record (AEAD); not transferable, not yet attested
    ATTESTED = 3  # session-authenticated, and covered by the user's signed attestation


class UpdateReason(IntEnum):
    """Why an Observe update was sent."""

    PERIODIC = 0  # the minimal interval has elapsed since the last update
    CROSSING = 1  # the value crossed the subscription's threshold band


# --- data ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Measurement(Message):
    """One reading: a kind from the facility vocabulary, the device's time, named values."""

    kind: str
    time: int
    values: tuple[tuple[str, float], ...]

    TAG = tag("iomt/biomt/measurement/v1")
    FIELDS = (
        ("kind", Text(max_size=32)),
        ("time", U64),
        ("values", Seq(Tuple(Text(max_size=32), F64), max_items=16)),
    )

    def __post_init__(self) -> None:
        _require(
            isinstance(self.kind, str) and bool(_NAME_RE.fullmatch(self.kind)),
            "kind must match [a-z][a-z0-9_]{0,31}",
        )
        _u64(self.time, "time")
        values = tuple(sorted((str(n), float(v)) for n, v in self.values))
        _require(0 < len(values) <= 16, "a measurement has 1..16 values")
        for (a, _), (b, _) in itertools.pairwise(values):
            _require(a != b, f"value {a!r} given twice")
        for n, v in values:
            _require(bool(_NAME_RE.fullmatch(n)), f"value name {n!r} is not a plain name")
            _require(math.isfinite(v), "values must be finite")
        object.__setattr__(self, "values", values)

    def value(self, name: str) -> float | None:
        for n, v in self.values:
            if n == name:
                return v
        return None


@dataclass(frozen=True, slots=True)
class DataRecord(Message):
    """A stored measurement and the sequence number of the Store transaction that logged it."""

    seq: int
    measurement: Measurement

    TAG = tag("iomt/biomt/data-record/v1")
    FIELDS = (("seq", U64), ("measurement", Nested(Measurement)))


@dataclass(frozen=True, slots=True)
class CloudAddress(Message):
    """Where the cloud keeps a block's anonymized data: ledger, block number, block hash."""

    ledger_id: bytes
    block_index: int
    block_hash: bytes

    TAG = tag("iomt/biomt/cloud-address/v1")
    FIELDS = (("ledger_id", Bytes(size=32)), ("block_index", U64), ("block_hash", Bytes(size=32)))


# --- Store ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoreRequest(Message):
    """A device's Store: ``ciphertext`` is AES-GCM(shared store key, nonce, measurement,
    associated data = every other field). ``counter`` strictly increases per device."""

    bolster_id: str
    device: str
    counter: int
    time: int
    nonce: bytes
    ciphertext: bytes

    TAG = tag("iomt/biomt/store-request/v1")
    FIELDS = (
        ("bolster_id", ID),
        ("device", ID),
        ("counter", U64),
        ("time", U64),
        ("nonce", Bytes(size=GCM_NONCE)),
        ("ciphertext", Bytes(max_size=MAX_PAYLOAD)),
    )
    SIGNATURE = "ciphertext"

    def __post_init__(self) -> None:
        _name(self.bolster_id, "bolster_id")
        _name(self.device, "device")
        _u64(self.counter, "counter")
        _u64(self.time, "time")
        _require(len(self.ciphertext) >= 16, "ciphertext shorter than its tag")

    @property
    def auth_tag(self) -> bytes:
        """The AEAD tag: what authenticates the request (logged as the Store's signature)."""
        return self.ciphertext[-16:]


@dataclass(frozen=True, slots=True)
class StoreReceipt(Message):
    """The bolster's answer to a Store: the logged transaction and its receipt."""

    device: str
    counter: int
    transaction: Transaction
    receipt: Receipt

    TAG = tag("iomt/biomt/store-receipt/v1")
    FIELDS = (
        ("device", ID),
        ("counter", U64),
        ("transaction", TRANSACTION),
        ("receipt", RECEIPT),
    )


# --- Access --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AccessRequest(Message):
    """A user's request for a device's data stored in ``[since, until)`` (device time)."""

    bolster_id: str
    requester: str
    device: str
    since: int
    until: int
    limit: int
    nonce: bytes
    time: int
    response_key: bytes
    signature: bytes = b""

    TAG = tag("iomt/biomt/access-request/v1")
    FIELDS = (
        ("bolster_id", ID),
        ("requester", ID),
        ("device", ID),
        ("since", U64),
        ("until", U64),
        ("limit", U32),
        ("nonce", NONCE),
        ("time", U64),
        ("response_key", RESPONSE_KEY),
        ("signature", SIGNATURE),
    )
    SIGNATURE = "signature"

    def __post_init__(self) -> None:
        for what in ("bolster_id", "requester", "device"):
            _name(getattr(self, what), what)
        for what in ("since", "until", "time"):
            _u64(getattr(self, what), what)
        _require(self.since <= self.until, "since must not be after until")
        _require(0 < self.limit <= 100_000, "limit must be 1..100000")


@dataclass(frozen=True, slots=True)
class AccessPayload(Message):
    """Sealed to the requester: local records, and where the rest is in the cloud."""

    device: str
    records: tuple[DataRecord, ...]
    redirects: tuple[CloudAddress, ...]
    cloud_pseudonym: str

    TAG = tag("iomt/biomt/access-payload/v1")
    FIELDS = (
        ("device", ID),
        ("records", Seq(Nested(DataRecord), max_items=100_000)),
        ("redirects", Seq(Nested(CloudAddress), max_items=100_000)),
        ("cloud_pseudonym", ID),
    )


@dataclass(frozen=True, slots=True)
class AccessResult(Message):
    """A granted Access: ``sealed`` is ECIES(response_key, AccessPayload)."""

    bolster_id: str
    requester: str
    device: str
    request_nonce: bytes
    transaction: Transaction
    receipt: Receipt
    sealed: bytes

    TAG = tag("iomt/biomt/access-result/v1")
    FIELDS = (
        ("bolster_id", ID),
        ("requester", ID),
        ("device", ID),
        ("request_nonce", NONCE),
        ("transaction", TRANSACTION),
        ("receipt", RECEIPT),
        ("sealed", Bytes()),
    )


# --- Observe -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Threshold(Message):
    """A band on one value: an update is due when a reading leaves or re-enters it."""

    value: str
    low: float
    high: float

    TAG = tag("iomt/biomt/threshold/v1")
    FIELDS = (("value", Text(max_size=32)), ("low", F64), ("high", F64))

    def __post_init__(self) -> None:
        _require(bool(_NAME_RE.fullmatch(self.value)), "threshold value must be a plain name")
        _require(math.isfinite(self.low) and math.isfinite(self.high), "bounds must be finite")
        _require(self.low <= self.high, "low must not exceed high")

    def outside(self, measurement: Measurement) -> bool | None:
        """Whether the reading is outside the band; ``None`` if it lacks the value."""
        v = measurement.value(self.value)
        if v is None:
            return None
        return not self.low <= v <= self.high


@dataclass(frozen=True, slots=True)
class ObserveRequest(Message):
    """Monitor a device or a group. ``interval`` is the minimal period between periodic
    updates the requester wants (the policy's ``observe_interval`` is the floor)."""

    bolster_id: str
    requester: str
    devices: tuple[str, ...]
    threshold: Threshold | None
    interval: int
    duration: int
    nonce: bytes
    time: int
    response_key: bytes
    signature: bytes = b""

    TAG = tag("iomt/biomt/observe-request/v1")
    FIELDS = (
        ("bolster_id", ID),
        ("requester", ID),
        ("devices", Seq(ID, max_items=MAX_GROUP)),
        ("threshold", Optional(Nested(Threshold))),
        ("interval", U64),
        ("duration", U64),
        ("nonce", NONCE),
        ("time", U64),
        ("response_key", RESPONSE_KEY),
        ("signature", SIGNATURE),
    )
    SIGNATURE = "signature"

    def __post_init__(self) -> None:
        _name(self.bolster_id, "bolster_id")
        _name(self.requester, "requester")
        devices = tuple(sorted(set(self.devices)))
        _require(0 < len(devices) <= MAX_GROUP, f"observe 1..{MAX_GROUP} devices")
        _require(len(devices) == len(self.devices), "devices listed twice")
        for d in devices:
            _name(d, "device")
        object.__setattr__(self, "devices", devices)
        for what in ("interval", "duration", "time"):
            _u64(getattr(self, what), what)
        _require(self.duration > 0, "duration must be positive")


@dataclass(frozen=True, slots=True)
class Subscription(Message):
    """A granted Observe: ``wrapped_key`` is ECIES(response_key, subscription key)."""

    bolster_id: str
    subscription_id: bytes
    requester: str
    request_nonce: bytes
    devices: tuple[str, ...]
    interval: int
    expires_at: int
    wrapped_key: bytes
    transaction: Transaction
    receipt: Receipt

    TAG = tag("iomt/biomt/subscription/v1")
    FIELDS = (
        ("bolster_id", ID),
        ("subscription_id", Bytes(size=16)),
        ("requester", ID),
        ("request_nonce", NONCE),
        ("devices", Seq(ID, max_items=MAX_GROUP)),
        ("interval", U64),
        ("expires_at", U64),
        ("wrapped_key", Bytes(max_size=1024)),
        ("transaction", TRANSACTION),
        ("receipt", RECEIPT),
    )


@dataclass(frozen=True, slots=True)
class ObserveUpdate(Message):
    """One update for one observer: AES-GCM(subscription key, measurement), associated
    data = every other field. ``number`` counts the subscription's updates; ``dropped`` is
    how many were suppressed by the observer's rate limit since the previous one."""

    subscription_id: bytes
    observer: str
    device: str
    seq: int
    number: int
    reason: UpdateReason
    dropped: int
    nonce: bytes
    ciphertext: bytes

    TAG = tag("iomt/biomt/observe-update/v1")
    FIELDS = (
        ("subscription_id", Bytes(size=16)),
        ("observer", ID),
        ("device", ID),
        ("seq", U64),
        ("number", U64),
        ("reason", Enum(UpdateReason)),
        ("dropped", U64),
        ("nonce", Bytes(size=GCM_NONCE)),
        ("ciphertext", Bytes(max_size=MAX_PAYLOAD)),
    )
    SIGNATURE = "ciphertext"


# --- Remove --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RemoveRequest(Message):
    """An admin's or the owner's request to remove a device."""

    bolster_id: str
    requester: str
    device: str
    reason: str
    nonce: bytes
    time: int
    signature: bytes = b""

    TAG = tag("iomt/biomt/remove-request/v1")
    FIELDS = (
        ("bolster_id", ID),
        ("requester", ID),
        ("device", ID),
        ("reason", ID),
        ("nonce", NONCE),
        ("time", U64),
        ("signature", SIGNATURE),
    )
    SIGNATURE = "signature"

    def __post_init__(self) -> None:
        for what in ("bolster_id", "requester", "device"):
            _name(getattr(self, what), what)
        _u64(self.time, "time")


@dataclass(frozen=True, slots=True)
class RemoveResult(Message):
    bolster_id: str
    device: str
    records_deleted: int
    policy_version: int
    transaction: Transaction
    receipt: Receipt

    TAG = tag("iomt/biomt/remove-result/v1")
    FIELDS = (
        ("bolster_id", ID),
        ("device", ID),
        ("records_deleted", U64),
        ("policy_version", U64),
        ("transaction", TRANSACTION),
        ("receipt", RECEIPT),
    )


# --- communication setup -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CommunicationRequest(Message):
    """Device ``initiator`` asks to talk to device ``peer``; MACed with its shared key."""

    bolster_id: str
    initiator: str
    peer: str
    lifetime: int
    nonce: bytes
    time: int
    mac: bytes = b""

    TAG = tag("iomt/biomt/communication-request/v1")
    FIELDS = (
        ("bolster_id", ID),
        ("initiator", ID),
        ("peer", ID),
        ("lifetime", U64),
        ("nonce", NONCE),
        ("time", U64),
        ("mac", Bytes(max_size=32)),
    )
    SIGNATURE = "mac"

    def __post_init__(self) -> None:
        for what in ("bolster_id", "initiator", "peer"):
            _name(getattr(self, what), what)
        _u64(self.lifetime, "lifetime")
        _u64(self.time, "time")
        _require(self.lifetime > 0, "lifetime must be positive")


@dataclass(frozen=True, slots=True)
class CommunicationGrant(Message):
    """A permitted setup: a fresh pairwise key, wrapped for each device under its own
    shared key, valid until ``expires_at``."""

    bolster_id: str
    grant_id: bytes
    initiator: str
    peer: str
    expires_at: int
    key_for_initiator: bytes
    key_for_peer: bytes
    transaction: Transaction
    receipt: Receipt

    TAG = tag("iomt/biomt/communication-grant/v1")
    FIELDS = (
        ("bolster_id", ID),
        ("grant_id", Bytes(size=16)),
        ("initiator", ID),
        ("peer", ID),
        ("expires_at", U64),
        ("key_for_initiator", Bytes(max_size=128)),
        ("key_for_peer", Bytes(max_size=128)),
        ("transaction", TRANSACTION),
        ("receipt", RECEIPT),
    )

    def wrap_aad(self, recipient: str) -> bytes:
        """What a wrapped pairwise key is bound to (grant, both devices, expiry, recipient)."""
        out: list[bytes] = [tag("iomt/biomt/pair-key-wrap/v1")]
        Bytes(size=16).write(out, self.grant_id)
        for value in (self.bolster_id, self.initiator, self.peer, recipient):
            ID.write(out, value)
        U64.write(out, self.expires_at)
        return b"".join(out)


# --- the patient's view --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HistoryRequest(Message):
    """The owner asks who did what with a device (``subject`` = device pseudonym) or with
    all of their devices (``subject`` = their own user name)."""

    bolster_id: str
    requester: str
    subject: str
    nonce: bytes
    time: int
    response_key: bytes
    signature: bytes = b""

    TAG = tag("iomt/biomt/history-request/v1")
    FIELDS = (
        ("bolster_id", ID),
        ("requester", ID),
        ("subject", ID),
        ("nonce", NONCE),
        ("time", U64),
        ("response_key", RESPONSE_KEY),
        ("signature", SIGNATURE),
    )
    SIGNATURE = "signature"

    def __post_init__(self) -> None:
        for what in ("bolster_id", "requester", "subject"):
            _name(getattr(self, what), what)
        _u64(self.time, "time")


@dataclass(frozen=True, slots=True)
class HistoryEntry(Message):
    """One logged event about a device: who (``actor``, in ``role``) did what, when, and
    what kind of :class:`Evidence` the ledger keeps for it."""

    seq: int
    tx_type: TxType
    time: int
    actor: str
    role: str
    device: str
    outcome: Outcome
    records: int
    detail: str
    evidence: Evidence = Evidence.SIGNATURE

    TAG = tag("iomt/biomt/history-entry/v2")
    FIELDS = (
        ("seq", U64),
        ("tx_type", Enum(TxType)),
        ("time", U64),
        ("actor", ID),
        ("role", ID),
        ("device", ID),
        ("outcome", Enum(Outcome)),
        ("records", U64),
        ("detail", Text(max_size=1024)),
        ("evidence", Enum(Evidence)),
    )


@dataclass(frozen=True, slots=True)
class HistoryPayload(Message):
    subject: str
    devices: tuple[str, ...]
    entries: tuple[HistoryEntry, ...]

    TAG = tag("iomt/biomt/history-payload/v1")
    FIELDS = (
        ("subject", ID),
        ("devices", TEXTS),
        ("entries", Seq(Nested(HistoryEntry), max_items=1 << 22)),
    )


@dataclass(frozen=True, slots=True)
class HistoryResult(Message):
    """``sealed`` is ECIES(response_key, HistoryPayload)."""

    bolster_id: str
    requester: str
    subject: str
    request_nonce: bytes
    sealed: bytes

    TAG = tag("iomt/biomt/history-result/v1")
    FIELDS = (
        ("bolster_id", ID),
        ("requester", ID),
        ("subject", ID),
        ("request_nonce", NONCE),
        ("sealed", Bytes()),
    )
