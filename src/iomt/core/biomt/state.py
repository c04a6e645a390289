"""What a bolster knows, in one place: rebuilt from its ledger, shared by its services.

The ledger is the bolster's only durable state. :class:`BolsterState` is its in-memory
reading -- the devices and their keys and counters, removals, pairwise-key grants, Observe
subscriptions, the sealed blocks and which of them the cloud holds -- plus the services'
common context (identity, ledger, local storage, storage keys, CA, users, config, clock,
RNG). :meth:`BolsterState.replay` rebuilds it from every transaction body on open; each
service changes it only through the methods here, so a replayed bolster and one that
served the same requests hold the same state.

Lost on restart by design (and so not here): rate-limit buckets and the nonce cache
(:mod:`.checks`), and Observe delivery timing.
"""

from __future__ import annotations

import bisect
from array import array
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar

from iomt.crypto.errors import DecryptionError
from iomt.crypto.keys import EccPublicKey
from iomt.crypto.primitives import AesGcm
from iomt.crypto.revocation import RevocationKind
from iomt.crypto.techniques import AssociatedData
from iomt.ledger import (
    Block,
    Ledger,
    LocalStorage,
    PrivacyHeader,
    Receipt,
    Transaction,
    TxType,
)

from .bodies import (
    Body,
    CommunicationBody,
    ObserveBody,
    OriginBody,
    RemoveBody,
    StoreBody,
    decode_body,
)
from .clock import ClockNs, Rng
from .codec import Message
from .config import BolsterConfig
from .costs import Phase
from .errors import BodyUnreadableError, DeviceRemovedError, KeyExpiredError, UnknownDeviceError
from .identity import BolsterIdentity, FacilityCA, UserDirectory
from .keys import SharedKey, StorageKeys, body_aad
from .limits import RateLimit
from .messages import Outcome
from .observe import ObserveEngine, SubscriptionState
from .sealing import seal_to

__all__ = ["BolsterState", "DeviceRecord", "PairGrant"]


@dataclass(slots=True, eq=False)
class DeviceRecord:
    """A provisioned device, as its Origin (and later Store and Remove) bodies say."""

    pseudonym: str
    device_uri: str
    owner: str
    agreement: bytes
    certificate_serial: str
    certificate_fingerprint: bytes
    signing_key: bytes
    key: SharedKey
    key_expires: int
    origin_seq: int
    last_counter: int = 0
    removed: bool = False
    # its Store transactions by time, for Access: (times sorted, seqs)
    times: array[int] = field(default_factory=lambda: array("q"))
    seqs: array[int] = field(default_factory=lambda: array("q"))


@dataclass(slots=True, eq=False)
class PairGrant:
    """A pairwise key set up between two devices (the key itself is never kept)."""

    grant_id: bytes
    initiator: str
    peer: str
    expires_at: int
    valid: bool = True


class BolsterState:
    """The bolster's state and context, shared by its services."""

    #: the steps whose time goes to a phase of the cost meter (:mod:`.metering`)
    PHASES: ClassVar[Mapping[str, Phase]] = {
        "_seal_body": Phase.CRYPTO,
        "_commit": Phase.LEDGER,
        "seal_block": Phase.LEDGER,
        "open_body": Phase.CRYPTO,
        "encode": Phase.OTHER,
        "seal_answer": Phase.CRYPTO,
    }

    def __init__(
        self,
        *,
        identity: BolsterIdentity,
        ledger: Ledger,
        ca: FacilityCA,
        users: UserDirectory,
        config: BolsterConfig,
        clock: ClockNs,
        rng: Rng,
    ) -> None:
        self.identity = identity
        self.ledger = ledger
        self.local = LocalStorage(ledger.storage)
        self.ca = ca
        self.users = users
        self.config = config
        self.clock = clock
        self.rng = rng
        self.keys = StorageKeys(identity.storage_secret)
        self.devices: dict[str, DeviceRecord] = {}
        self.owned: dict[str, set[str]] = {}
        self.grants: dict[bytes, PairGrant] = {}
        self.pair_grants: dict[frozenset[str], set[bytes]] = {}
        self.engine = ObserveEngine(RateLimit(config.update_rate, config.update_burst))
        self.blocks: list[tuple[int, int, bytes]] = []  # (first_seq, tx_count, hash)
        self.synced: set[int] = set()
        self.last_append: tuple[Transaction, int] | None = None
        # write-through copy of recent local records, still sealed: (device, seq) -> bytes
        self.recent: OrderedDict[tuple[str, int], bytes] = OrderedDict()
        self.note_blocks()

    @property
    def bolster_id(self) -> str:
        return self.identity.bolster_id

    @property
    def facility_id(self) -> str:
        return self.identity.facility_id

    @property
    def log_id(self) -> bytes:
        return self.ledger.log_id

    def requester_pseudonym(self, name: str) -> str:
        """How a user appears in the ledger's clear metadata."""
        return self.keys.requester_pseudonym(name)

    def cloud_pseudonym(self, pseudonym: str) -> str:
        return self.keys.cloud_pseudonym(self.log_id, pseudonym)

    # -- devices ----------------------------------------------------------------------

    def device(self, pseudonym: str) -> DeviceRecord:
        dev = self.devices.get(pseudonym)
        if dev is None:
            raise UnknownDeviceError(f"no device {pseudonym!r} at {self.bolster_id!r}")
        return dev

    def active(self, pseudonym: str, now: int) -> DeviceRecord:
        """A device that may still use its shared key."""
        dev = self.device(pseudonym)
        if dev.removed:
            raise DeviceRemovedError(f"device {pseudonym!r} was removed; its key is revoked")
        if now >= dev.key_expires:
            raise KeyExpiredError(f"the shared key of {pseudonym!r} expired")
        return dev

    def register(self, body: OriginBody, seq: int) -> DeviceRecord:
        """An Origin's effect: the device, its owner and its shared key."""
        dev = DeviceRecord(
            pseudonym=body.pseudonym,
            device_uri=body.device_uri,
            owner=body.owner,
            agreement=body.agreement,
            certificate_serial=body.certificate_serial,
            certificate_fingerprint=body.certificate_fingerprint,
            signing_key=body.signing_key,
            key=SharedKey(body.shared_key),
            key_expires=body.key_expires,
            origin_seq=seq,
        )
        self.devices[dev.pseudonym] = dev
        self.owned.setdefault(dev.owner, set()).add(dev.pseudonym)
        return dev

    @staticmethod
    def index_store(dev: DeviceRecord, when: int, seq: int) -> None:
        """A Store's effect on the device's time index."""
        # bisect needs sorted times: a clock step backwards does not reorder the index
        dev.times.append(max(when, dev.times[-1]) if dev.times else when)
        dev.seqs.append(seq)

    def remember(self, device: str, seq: int, sealed: bytes) -> None:
        """Keep a stored record (sealed) in the write-through cache."""
        if self.config.record_cache <= 0:
            return
        self.recent[(device, seq)] = sealed
        while len(self.recent) > self.config.record_cache:
            self.recent.popitem(last=False)

    def mark_removed(self, dev: DeviceRecord, now: int) -> None:
        """A Remove's in-memory effects: key and certificate revoked, subscriptions and
        pairwise keys ended."""
        dev.removed = True
        self.ca.revocations.revoke(
            RevocationKind.CERTIFICATE,
            dev.certificate_serial,
            reason="device removed",
            at=now / 1e9,
        )
        self.engine.drop_device(dev.pseudonym)
        for pair, ids in self.pair_grants.items():
            if dev.pseudonym in pair:
                for gid in ids:
                    self.grants[gid].valid = False

    # -- pairwise keys and subscriptions ----------------------------------------------

    def add_grant(self, grant: PairGrant) -> None:
        self.grants[grant.grant_id] = grant
        self.pair_grants.setdefault(frozenset({grant.initiator, grant.peer}), set()).add(
            grant.grant_id
        )

    def subscription(self, body: ObserveBody) -> SubscriptionState:
        """The subscription a granted Observe body describes (removed devices left out)."""
        return SubscriptionState(
            subscription_id=body.subscription_id,
            requester=body.requester,
            devices=frozenset(
                d for d in body.devices if not (d in self.devices and self.devices[d].removed)
            ),
            threshold=body.threshold,
            interval=body.interval,
            expires_at=body.expires_at,
            key=AesGcm(body.subscription_key),
        )

    # -- the ledger -------------------------------------------------------------------

    def note_blocks(self) -> None:
        """Index the blocks sealed since the last call."""
        count = self.ledger.block_count
        while len(self.blocks) < count:
            i = len(self.blocks)
            b = self.ledger.latest_block if i == count - 1 else self.ledger.get_block(i)
            self.blocks.append((b.header.first_seq, b.header.tx_count, b.hash()))

    def block_of(self, seq: int) -> int | None:
        """The index of the sealed block holding transaction ``seq``, if sealed yet."""
        starts = [b[0] for b in self.blocks]
        i = bisect.bisect_right(starts, seq) - 1
        while i >= 0 and self.blocks[i][1] == 0:
            i -= 1
        if i < 0:
            return None
        first, count, _ = self.blocks[i]
        return i if first <= seq < first + count else None

    def append(
        self,
        tx_type: TxType,
        generator: str,
        body: Message,
        *,
        signature: bytes = b"",
        local_record: bytes | None = None,
    ) -> tuple[Transaction, Receipt]:
        """A transaction with ``body`` encrypted under the body key, committed (with the
        local record, if any) before this returns."""
        seq = self.ledger.size
        now = self.clock()
        sealed = self._seal_body(self.encode(body), body_aad(tx_type, seq, generator, now))
        receipt = self._commit(tx_type, generator, sealed, now, signature, local_record)
        tx = Transaction(seq, tx_type, generator, now, sealed, signature)
        self.last_append = (tx, receipt.block_index)
        return tx, receipt

    def _seal_body(self, plaintext: bytes, aad: bytes) -> bytes:
        return self.keys.seal_body(self.rng(12), plaintext, aad)

    def _commit(
        self,
        tx_type: TxType,
        generator: str,
        sealed: bytes,
        now: int,
        signature: bytes,
        local_record: bytes | None,
    ) -> Receipt:
        receipt = self.ledger.append(
            tx_type, generator, sealed, time=now, signature=signature, local_record=local_record
        )
        self.note_blocks()
        return receipt

    def seal_block(self, policy: PrivacyHeader) -> Block:
        """Seal the pending transactions in a block carrying ``policy``."""
        block = self.ledger.seal_block(policy)
        self.note_blocks()
        return block

    def open_body(self, tx: Transaction) -> Body:
        try:
            plaintext = self.keys.open_body(
                tx.body, body_aad(tx.tx_type, tx.seq, tx.generator_id, tx.time)
            )
        except DecryptionError:
            raise BodyUnreadableError(
                f"transaction {tx.seq} does not decrypt under this bolster's storage key"
            ) from None
        return decode_body(plaintext)

    # -- answers ----------------------------------------------------------------------

    def encode(self, message: Message) -> bytes:
        return message.to_bytes()

    def seal_answer(
        self, response_key: bytes | EccPublicKey, data: bytes, aad: AssociatedData
    ) -> bytes:
        """ECIES to a requester's one-time key (the answers of the signed path)."""
        return seal_to(response_key, data, aad)

    # -- restart ----------------------------------------------------------------------

    def replay(self) -> list[DeviceRecord]:
        """Rebuild the state from every transaction body; returns the removed devices
        (whose durable effects the caller completes, in case a crash interrupted them)."""
        now = self.clock()
        removed: list[DeviceRecord] = []
        for tx in self.ledger.transactions():
            body = self.open_body(tx)
            if isinstance(body, OriginBody):
                self.register(body, tx.seq)
            elif isinstance(body, StoreBody):
                dev = self.devices.get(body.device)
                if dev is not None:
                    dev.last_counter = max(dev.last_counter, body.counter)
                    self.index_store(dev, tx.time, tx.seq)
            elif isinstance(body, RemoveBody):
                gone = self.devices.get(body.device)
                if body.outcome is Outcome.GRANTED and gone is not None:
                    self.mark_removed(gone, tx.time)
                    removed.append(gone)
            elif isinstance(body, CommunicationBody):
                self._replay_communication(body)
            elif (
                isinstance(body, ObserveBody)
                and body.outcome is Outcome.GRANTED
                and body.expires_at > now
            ):
                sub = self.subscription(body)
                if sub.devices:
                    self.engine.add(sub)
        self._authorize_unsealed_origins()
        return removed

    def _replay_communication(self, body: CommunicationBody) -> None:
        for g in body.invalidated:
            if g in self.grants:
                self.grants[g].valid = False
        if body.outcome is Outcome.GRANTED:
            grant = PairGrant(body.grant_id, body.initiator, body.peer, body.expires_at)
            grant.valid = not any(
                self.devices[d].removed for d in (body.initiator, body.peer) if d in self.devices
            )
            self.add_grant(grant)

    def _authorize_unsealed_origins(self) -> None:
        """Seal the policy block of an Origin whose block a crash prevented."""
        policy = self.ledger.privacy_header
        missing = [
            p for p, d in self.devices.items() if not d.removed and not policy.is_authorized(p)
        ]
        for p in sorted(missing):
            policy = policy.with_device(p)
        if missing:
            self.seal_block(policy)
