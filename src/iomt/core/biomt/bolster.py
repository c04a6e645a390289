"""The bolster: BIoMT's facility gateway as a sans-IO protocol object.

The paper's bolster "processes the transactions sent and received by IoMT devices,
implements the key establishing scheme, generates origin transactions to add new devices
... maintains the local blockchain ... [and] manages local storage". :class:`Bolster` owns a
:class:`~iomt.ledger.Ledger` and its :class:`~iomt.ledger.LocalStorage` and is fed requests
(frozen dataclasses from :mod:`~iomt.core.biomt.messages`), returning responses; the clock
and RNG are injected and nothing here does I/O beyond the ledger storage it was given.

=====================  =======================================================================
service                what happens
=====================  =======================================================================
``provision``          Framework initialization (ATS, SecGen, ID issue, key establishment);
                       an **Origin** transaction; a block with the device admitted to the
                       privacy header
``store``              the device's AEAD under its shared key is checked (strictly increasing
                       counter, per-device rate limit); a **Store** transaction and the
                       encrypted local record
                       commit together; Observe updates due for the reading are returned
``access``             signature + freshness + nonce + rate limit; the privacy header decides
                       (owners may always read their devices); data from local storage,
                       cloud addresses for what was evicted; an **Access** transaction
                       either way -- denials are logged and raise
                       :class:`~iomt.core.biomt.errors.AccessDeniedError` with the evidence
``observe``            as access; an **Observe** transaction; a subscription key for updates
``remove``             admin or owner only; a **Remove** transaction, the certificate revoked,
                       a block dropping the device from the privacy header, its local records
                       deleted, its subscriptions and pairwise keys ended; later requests
                       raise :class:`~iomt.core.biomt.errors.DeviceRemovedError`
``setup_communication``  device A asks to talk to device B (MAC under A's key); permitted:
                       a fresh pairwise key wrapped for both, valid until an expiry;
                       denied: the pair's keys are marked invalid; logged as **Access**
``history``            the owner (or an admin) gets every logged event about a device,
                       decrypted and sealed to them: who got what
=====================  =======================================================================

Every transaction body is encrypted (AES-256-GCM under an HKDF-derived body key, bound to
the transaction's type, sequence number, generator and time); the generator's signature
(users) or AEAD tag / MAC (devices) is kept in the transaction's clear ``signature`` field.

**Restarts lose nothing acknowledged.** The ledger is the bolster's only state: on
:meth:`Bolster.open` every body is decrypted and replayed (devices and their keys, counters,
removals, subscriptions, pairwise keys), and effects that need a second commit (the policy
block after an Origin or Remove, deleting a removed device's records) are completed if a
crash interrupted them. Lost on restart by design: rate-limit buckets, the nonce cache
(requests older than the clock skew are refused anyway) and Observe delivery timing.

Cost accounting (:mod:`~iomt.core.biomt.costs`) splits each service into crypto, ledger,
policy and other; :class:`~iomt.core.biomt.base.BaseBolster` does the same data handling
with no cryptography and no ledger, for the paper's Fig. 3 comparison.
"""

from __future__ import annotations

import bisect
import hmac
import os
import time as _time
from array import array
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Protocol

from cryptography.hazmat.primitives.asymmetric import ed25519, x25519
from cryptography.hazmat.primitives.serialization import Encoding

from iomt.core.channels import ChannelTable, HandshakeLimits
from iomt.crypto.errors import DecryptionError
from iomt.crypto.primitives import AesGcm, sha256
from iomt.crypto.revocation import RevocationKind
from iomt.crypto.roles import Role, role_extension
from iomt.crypto.sessions import HandshakeIdentity, Session, SessionPolicy
from iomt.crypto.signing import Ed25519Verifier, HmacSha256Key, Verifier
from iomt.crypto.techniques import AssociatedData
from iomt.errors import AuthenticationError
from iomt.ledger import (
    AccessRule,
    Block,
    Ledger,
    LedgerStorage,
    LocalStorage,
    PolicyDeniedError,
    PrivacyHeader,
    Receipt,
    RecordNotFoundError,
    Transaction,
    TxType,
)

from .bodies import (
    AccessBody,
    AttestationBody,
    Body,
    CommunicationBody,
    ObserveBody,
    OriginBody,
    RemoveBody,
    StoreBody,
    decode_body,
)
from .clock import SECOND, Clock, Rng
from .cloud import DEFAULT_VOCABULARY, HOUR, CloudAck, CloudBatch, IdentifiedRecord, anonymize
from .cluster import CheckpointRequest, CheckpointSubmission
from .codec import Message
from .costs import NULL_METER, CostMeter, OpTimer, Phase
from .errors import (
    AccessDeniedError,
    BodyUnreadableError,
    CommunicationDeniedError,
    DeniedError,
    DeviceRemovedError,
    KeyExpiredError,
    ObserveDeniedError,
    ProvisioningError,
    RemoveDeniedError,
    ReplayError,
    RequestAuthenticationError,
    StaleRequestError,
    UnknownDeviceError,
    UnknownRequesterError,
)
from .identity import (
    ADMIN_ROLE,
    DEVICE_ROLE,
    BolsterCredentials,
    BolsterIdentity,
    FacilityCA,
    User,
    UserDirectory,
)
from .keys import LedgerKey, SharedKey, StorageKeys, body_aad, fingerprint, record_aad
from .limits import NonceCache, RateLimit, RateLimiter
from .master import BolsterOrigin, DeviceOriginLink
from .messages import (
    AccessPayload,
    AccessRequest,
    AccessResult,
    CloudAddress,
    CommunicationGrant,
    CommunicationRequest,
    DataRecord,
    Evidence,
    HistoryEntry,
    HistoryPayload,
    HistoryRequest,
    HistoryResult,
    Measurement,
    ObserveRequest,
    ObserveUpdate,
    Outcome,
    RemoveRequest,
    RemoveResult,
    StoreReceipt,
    StoreRequest,
    Subscription,
    UpdateReason,
)
from .observe import ObserveEngine, SubscriptionState
from .provisioning import (
    ENROLMENT_AAD,
    Approval,
    DeviceSubmission,
    Provisioned,
    ProvisionRequest,
    ProvisionSecrets,
    ats,
    device_key,
    id_issue,
    response_key,
    secgen,
    transcript1,
    transcript2,
    x25519_shared,
)
from .sealing import open_sealed, response_aad, seal_to
from .session import (
    AccessQuery,
    AttestationReceipts,
    HistoryQuery,
    ObserveQuery,
    SessionAttestation,
    SessionAuthenticated,
    SessionOp,
    SessionRequest,
    SessionResponse,
    SessionResult,
    SubscriptionGrant,
    UserSessions,
)

__all__ = [
    "Bolster",
    "BolsterConfig",
    "PairKeyStatus",
    "Retention",
    "StoreResult",
]

_DAY = 86_400 * SECOND


class Retention(StrEnum):
    """What happens to local records once their block is in the cloud."""

    KEEP = "keep"
    EVICT_AFTER_SYNC = "evict-after-sync"


@dataclass(frozen=True, slots=True)
class BolsterConfig:
    """Knobs of a bolster; times in nanoseconds, rates per second."""

    key_lifetime: int = 30 * _DAY
    max_clock_skew: int = 30 * SECOND
    request_rate: float = 50.0
    request_burst: float = 100.0
    store_rate: float = 50.0
    store_burst: float = 200.0
    update_rate: float = 20.0
    update_burst: float = 40.0
    max_observe_duration: int = _DAY
    max_pair_key_lifetime: int = _DAY
    retention: Retention = Retention.KEEP
    max_block_transactions: int = 256
    max_block_age: int | None = 60 * SECOND
    cloud_period: int = HOUR
    cloud_decimals: int | None = None
    cloud_vocabulary: frozenset[str] = DEFAULT_VOCABULARY
    nonce_capacity: int = 100_000
    #: recently stored records kept in memory too (sealed, as on disk) for Access; 0: none
    record_cache: int = 16_384
    #: user sessions: lifetime, handshakes (message 1s) per second shared by initiators
    #: already spending and per source (iomt.core.channels.HandshakeLimits: a quiet source
    #: is admitted even when the shared budget is spent), how many requests a session may
    #: carry unattested, how long an expired session's log is kept
    session_lifetime: int = 15 * 60 * SECOND
    handshake_rate: float = 100.0
    handshake_burst: float = 200.0
    handshake_source_rate: float = 2.0
    handshake_source_burst: float = 8.0
    max_unattested: int = 256
    attest_grace: int = 10 * 60 * SECOND

    def __post_init__(self) -> None:
        for name in (
            "key_lifetime",
            "max_clock_skew",
            "max_observe_duration",
            "session_lifetime",
            "max_unattested",
        ):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")
        if self.max_pair_key_lifetime <= 0:
            raise ValueError("max_pair_key_lifetime must be positive")


class PairKeyStatus(StrEnum):
    VALID = "valid"
    EXPIRED = "expired"
    INVALID = "invalid"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class StoreResult:
    """A Store's outcome: the receipt for the device, and updates for observers."""

    receipt: StoreReceipt
    updates: tuple[ObserveUpdate, ...]


@dataclass(slots=True, eq=False)
class _Device:
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
    times: array[int] = field(default_factory=lambda: array("q"))
    seqs: array[int] = field(default_factory=lambda: array("q"))


@dataclass(slots=True, eq=False)
class _Grant:
    grant_id: bytes
    initiator: str
    peer: str
    expires_at: int
    valid: bool = True


class _UserRequest(Protocol):
    @property
    def bolster_id(self) -> str: ...
    @property
    def requester(self) -> str: ...
    @property
    def nonce(self) -> bytes: ...
    @property
    def time(self) -> int: ...
    @property
    def signature(self) -> bytes: ...
    def signed_bytes(self) -> bytes: ...


class Bolster:
    """One facility bolster. Create or reopen with :meth:`open`."""

    def __init__(
        self,
        *,
        identity: BolsterIdentity,
        ledger: Ledger,
        ca: FacilityCA,
        users: UserDirectory,
        config: BolsterConfig,
        clock: Clock,
        rng: Rng,
        meter: CostMeter,
        cloud_verifier: Verifier | None,
    ) -> None:
        self._identity = identity
        self._ledger = ledger
        self._local = LocalStorage(ledger.storage)
        self._ca = ca
        self._users = users
        self._config = config
        self._clock = clock
        self._rng = rng
        self.meter = meter
        self._cloud_verifier = cloud_verifier
        self._keys = StorageKeys(identity.storage_secret)
        self._credentials = identity.credentials()
        self._cert_fp = fingerprint(self._credentials.signing_certificate)
        self._devices: dict[str, _Device] = {}
        self._owned: dict[str, set[str]] = {}
        self._grants: dict[bytes, _Grant] = {}
        self._pair_grants: dict[frozenset[str], set[bytes]] = {}
        self._engine = ObserveEngine(RateLimit(config.update_rate, config.update_burst))
        self._requests = RateLimiter(RateLimit(config.request_rate, config.request_burst))
        self._stores = RateLimiter(RateLimit(config.store_rate, config.store_burst))
        self._nonces = NonceCache(config.nonce_capacity)
        self._blocks: list[tuple[int, int, bytes]] = []  # (first_seq, tx_count, hash)
        self._synced: set[int] = set()
        self._last_append: tuple[Transaction, int] | None = None
        # write-through copy of recent local records, still sealed: (device, seq) -> bytes
        self._recent: OrderedDict[tuple[str, int], bytes] = OrderedDict()
        self._sessions = UserSessions(
            HandshakeIdentity(
                identity.bolster_id,
                identity.signer,
                identity.signing_certificate.public_bytes(Encoding.DER),
            ),
            users,
            clock=clock,
            policy=SessionPolicy(lifetime=config.session_lifetime / SECOND),
            handshake_limits=HandshakeLimits(
                per_source_rate=config.handshake_source_rate,
                per_source_burst=config.handshake_source_burst,
                shared_rate=config.handshake_rate,
                shared_burst=config.handshake_burst,
            ),
            max_unattested=config.max_unattested,
            attest_grace=config.attest_grace,
        )
        self._note_blocks()
        self._replay()

    @classmethod
    def open(
        cls,
        identity: BolsterIdentity,
        storage: LedgerStorage,
        *,
        ca: FacilityCA,
        users: UserDirectory,
        policy: PrivacyHeader | None = None,
        config: BolsterConfig | None = None,
        clock: Clock = _time.time_ns,
        rng: Rng = os.urandom,
        meter: CostMeter | None = None,
        cloud_verifier: Verifier | None = None,
    ) -> Bolster:
        """Open the bolster's ledger in ``storage`` (created with ``policy`` -- default: an
        empty privacy header for the facility -- if empty) and rebuild its state."""
        config = BolsterConfig() if config is None else config
        initial = None
        if storage.read_meta() is None:
            initial = policy or PrivacyHeader(identity.facility_id, 1)
        ledger = Ledger.open(
            storage,
            LedgerKey(identity.signer),
            privacy_header=initial,
            clock=clock,
            max_block_transactions=config.max_block_transactions,
            max_block_age=config.max_block_age,
        )
        return cls(
            identity=identity,
            ledger=ledger,
            ca=ca,
            users=users,
            config=config,
            clock=clock,
            rng=rng,
            meter=NULL_METER if meter is None else meter,
            cloud_verifier=cloud_verifier,
        )

    # -- public state -----------------------------------------------------------------

    @property
    def bolster_id(self) -> str:
        return self._identity.bolster_id

    @property
    def facility_id(self) -> str:
        return self._identity.facility_id

    @property
    def credentials(self) -> BolsterCredentials:
        return self._credentials

    @property
    def ledger(self) -> Ledger:
        return self._ledger

    @property
    def local_storage(self) -> LocalStorage:
        return self._local

    @property
    def privacy_header(self) -> PrivacyHeader:
        return self._ledger.privacy_header

    @property
    def verifier(self) -> Verifier:
        """The bolster's ledger key (receipts, checkpoints, blocks, responses)."""
        return self._identity.signer.verifier()

    @property
    def log_id(self) -> bytes:
        return self._ledger.log_id

    @property
    def config(self) -> BolsterConfig:
        return self._config

    @property
    def last_append(self) -> tuple[Transaction, int] | None:
        """The last transaction this object appended and its block index (for a node that
        publishes appends without reading them back, e.g. after a session answer)."""
        return self._last_append

    def devices(self) -> list[str]:
        """Pseudonyms of the provisioned devices that are not removed."""
        return sorted(p for p, d in self._devices.items() if not d.removed)

    def is_removed(self, pseudonym: str) -> bool:
        return self._device(pseudonym).removed

    def subscriptions(self) -> list[SubscriptionState]:
        return list(self._engine)

    def requester_pseudonym(self, name: str) -> str:
        """How a user appears in the ledger's clear metadata."""
        return self._keys.requester_pseudonym(name)

    def cloud_pseudonym(self, pseudonym: str) -> str:
        return self._keys.cloud_pseudonym(self.log_id, pseudonym)

    # -- plumbing ---------------------------------------------------------------------

    def _device(self, pseudonym: str) -> _Device:
        dev = self._devices.get(pseudonym)
        if dev is None:
            raise UnknownDeviceError(f"no device {pseudonym!r} at {self.bolster_id!r}")
        return dev

    def _active(self, pseudonym: str, now: int) -> _Device:
        dev = self._device(pseudonym)
        if dev.removed:
            raise DeviceRemovedError(f"device {pseudonym!r} was removed; its key is revoked")
        if now >= dev.key_expires:
            raise KeyExpiredError(f"the shared key of {pseudonym!r} expired")
        return dev

    def _note_blocks(self) -> None:
        count = self._ledger.block_count
        while len(self._blocks) < count:
            i = len(self._blocks)
            b = self._ledger.latest_block if i == count - 1 else self._ledger.get_block(i)
            self._blocks.append((b.header.first_seq, b.header.tx_count, b.hash()))

    def _block_of(self, seq: int) -> int | None:
        starts = [b[0] for b in self._blocks]
        i = bisect.bisect_right(starts, seq) - 1
        while i >= 0 and self._blocks[i][1] == 0:
            i -= 1
        if i < 0:
            return None
        first, count, _ = self._blocks[i]
        return i if first <= seq < first + count else None

    def _append(
        self,
        op: OpTimer,
        tx_type: TxType,
        generator: str,
        body: Message,
        *,
        signature: bytes = b"",
        local_record: bytes | None = None,
    ) -> tuple[Transaction, Receipt]:
        seq = self._ledger.size
        now = self._clock()
        plaintext = body.to_bytes()
        op.lap(Phase.OTHER)
        sealed = self._keys.seal_body(
            self._rng(12), plaintext, body_aad(tx_type, seq, generator, now)
        )
        op.lap(Phase.CRYPTO)
        receipt = self._ledger.append(
            tx_type, generator, sealed, time=now, signature=signature, local_record=local_record
        )
        self._note_blocks()
        op.lap(Phase.LEDGER)
        tx = Transaction(seq, tx_type, generator, now, sealed, signature)
        self._last_append = (tx, receipt.block_index)
        return tx, receipt

    def _open_body(self, tx: Transaction) -> Body:
        try:
            plaintext = self._keys.open_body(
                tx.body, body_aad(tx.tx_type, tx.seq, tx.generator_id, tx.time)
            )
        except DecryptionError:
            raise BodyUnreadableError(
                f"transaction {tx.seq} does not decrypt under this bolster's storage key"
            ) from None
        return decode_body(plaintext)

    def _authenticate(self, request: _UserRequest, op: OpTimer, now: int) -> User:
        """Bolster id, freshness, signature, nonce, rate limit -- in that order."""
        if request.bolster_id != self.bolster_id:
            raise RequestAuthenticationError(f"request is for bolster {request.bolster_id!r}")
        if abs(request.time - now) > self._config.max_clock_skew:
            raise StaleRequestError("request time outside the accepted clock skew")
        op.lap(Phase.POLICY)
        user = self._users.authenticate(
            request.requester, request.signed_bytes(), request.signature, now=now
        )
        op.lap(Phase.CRYPTO)
        self._nonces.add(
            b"u" + request.requester.encode() + b"\x00" + request.nonce,
            until=request.time + self._config.max_clock_skew,
            now=now,
        )
        self._requests.require(request.requester, now)
        return user

    def _permit(self, user: User, action: TxType, device: str) -> AccessRule | None:
        """The rule that lets ``user`` act on ``device``; None for its owner (always may).

        Raises :class:`PolicyDeniedError`.
        """
        dev = self._devices.get(device)
        owner = dev is not None and not dev.removed and dev.owner == user.name
        policy = self._ledger.privacy_header
        if owner and policy.is_authorized(device):
            return policy.rule_for(user.role, action)
        return policy.require(user.role, action, device)

    # -- Framework initialization: provisioning ---------------------------------------

    def provision(self, request: ProvisionRequest) -> Provisioned:
        """ATS, SecGen, ID issue, key establishment, Origin (see :mod:`.provisioning`)."""
        op = self.meter.start("origin")
        now = self._clock()
        if request.bolster_id != self.bolster_id:
            raise ProvisioningError(f"request is for bolster {request.bolster_id!r}")
        aad = AssociatedData(ENROLMENT_AAD, self.bolster_id, "", 0)
        try:
            raw = open_sealed(self._identity.agreement_key, request.sealed_submission, aad)
        except AuthenticationError:
            raise ProvisioningError("enrolment is not sealed to this bolster") from None
        op.lap(Phase.CRYPTO)
        sub = DeviceSubmission.from_bytes(raw)
        if (sub.bolster_id, sub.facility_id) != (self.bolster_id, self.facility_id):
            raise ProvisioningError("enrolment is for another bolster or facility")
        skew = self._config.max_clock_skew
        if abs(sub.time - now) > skew or abs(request.time - now) > skew:
            raise StaleRequestError("enrolment outside the accepted clock skew")
        if sub.attributes.owner not in self._users:
            raise ProvisioningError(f"owner {sub.attributes.owner!r} is not a registered user")
        op.lap(Phase.POLICY)
        digest = sub.digest()
        try:
            Ed25519Verifier.from_public_bytes(sub.signing_key).verify(
                sub.signed_bytes(), sub.device_signature
            )
            approval = Approval(self.bolster_id, digest, request.admin, request.time)
            admin = self._users.authenticate(
                request.admin, approval.to_bytes(), request.admin_signature, now=now
            )
        except (AuthenticationError, UnknownRequesterError) as exc:
            raise ProvisioningError(f"enrolment does not verify: {exc}") from None
        op.lap(Phase.CRYPTO)
        if admin.role != ADMIN_ROLE:
            raise ProvisioningError(f"{request.admin!r} is not an admin user")
        self._nonces.add(b"p" + sub.nonce, until=sub.time + skew, now=now)
        op.lap(Phase.POLICY)

        # ATS, SecGen, ID
        numbers = ats(sub.attributes, self._rng)
        agreement = secgen(self.facility_id, sub.attributes, numbers, sub.signing_key)
        pseudonym = id_issue(agreement)
        if pseudonym in self._devices:
            raise ProvisioningError("pseudonym collision; enrol again")
        expires = now + self._config.key_lifetime
        cert = self._ca.issue(
            common_name=pseudonym,
            uri=sub.attributes.device_uri,
            public_key=ed25519.Ed25519PublicKey.from_public_bytes(sub.signing_key),
            now=now,
            not_after=expires,
            agreement=agreement,
            # a device, its capability class unknown here: it never converts on this
            roles=role_extension([Role.DEVICE], require_capability=False),
        )
        cert_der = cert.public_bytes(Encoding.DER)
        cert_fp = fingerprint(cert_der)

        # key establishment
        eph = x25519.X25519PrivateKey.from_private_bytes(self._rng(32))
        share = eph.public_key().public_bytes_raw()
        z = x25519_shared(eph, sub.exchange_key)
        th1 = transcript1(digest, share, self.bolster_id, self._cert_fp)
        shared = SharedKey(
            device_key(
                z,
                th1,
                pseudonym=pseudonym,
                expires=expires,
                device_cert_fp=cert_fp,
                bolster_cert_fp=self._cert_fp,
            )
        )
        secrets_ = ProvisionSecrets(pseudonym, cert_der, numbers, agreement, shared.key_id, expires)
        sealed = AesGcm(response_key(z, th1)).encrypt(bytes(12), secrets_.to_bytes(), th1)
        signature = self._identity.signer.sign(transcript2(th1, sealed))
        op.lap(Phase.CRYPTO)

        body = OriginBody(
            pseudonym=pseudonym,
            device_uri=sub.attributes.device_uri,
            owner=sub.attributes.owner,
            admin=admin.name,
            agreement=agreement,
            certificate_fingerprint=cert_fp,
            certificate_serial=str(cert.serial_number),
            signing_key=sub.signing_key,
            key_id=shared.key_id,
            shared_key=shared.secret_bytes(),
            key_expires=expires,
            submission_digest=digest,
        )
        tx, receipt = self._append(
            op,
            TxType.ORIGIN,
            self.requester_pseudonym(admin.name),
            body,
            signature=request.admin_signature,
        )
        self._register(body, tx.seq)
        self._ledger.seal_block(self._ledger.privacy_header.with_device(pseudonym))
        self._note_blocks()
        op.finish(Phase.LEDGER)
        return Provisioned(self.bolster_id, digest, share, sealed, signature, tx, receipt)

    def _register(self, body: OriginBody, seq: int) -> _Device:
        dev = _Device(
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
        self._devices[dev.pseudonym] = dev
        self._owned.setdefault(dev.owner, set()).add(dev.pseudonym)
        return dev

    # -- Store ------------------------------------------------------------------------

    def store(self, request: StoreRequest) -> StoreResult:
        op = self.meter.start("store")
        now = self._clock()
        if request.bolster_id != self.bolster_id:
            raise RequestAuthenticationError(f"request is for bolster {request.bolster_id!r}")
        dev = self._active(request.device, now)
        op.lap(Phase.POLICY)
        try:
            plaintext = dev.key.store.decrypt(
                request.nonce, request.ciphertext, request.signed_bytes()
            )
        except DecryptionError:
            raise RequestAuthenticationError(
                f"Store of {request.device!r} does not authenticate"
            ) from None
        op.lap(Phase.CRYPTO)
        if request.counter <= dev.last_counter:
            raise ReplayError(
                f"Store counter {request.counter} of {request.device!r} is not above "
                f"{dev.last_counter}",
                last_counter=dev.last_counter,
            )
        self._stores.require(dev.pseudonym, now)
        op.lap(Phase.POLICY)
        measurement = Measurement.from_bytes(plaintext)
        seq = self._ledger.size
        op.lap(Phase.OTHER)
        record = self._keys.seal_record(self._rng(12), plaintext, record_aad(dev.pseudonym, seq))
        body = StoreBody(
            dev.pseudonym, request.counter, measurement.time, sha256(record), len(record)
        )
        op.lap(Phase.CRYPTO)
        tx, receipt = self._append(
            op,
            TxType.STORE,
            dev.pseudonym,
            body,
            signature=request.auth_tag,
            local_record=record,
        )
        dev.last_counter = request.counter
        self._index_store(dev, tx.time, tx.seq)
        self._remember(dev.pseudonym, tx.seq, record)
        deliveries = self._engine.on_data(dev.pseudonym, measurement, now)
        op.lap(Phase.POLICY)
        updates = tuple(
            self._seal_update(
                d.subscription, d.device, tx.seq, d.number, d.reason, d.dropped, plaintext
            )
            for d in deliveries
        )
        op.finish(Phase.CRYPTO)
        return StoreResult(StoreReceipt(dev.pseudonym, request.counter, tx, receipt), updates)

    def _remember(self, device: str, seq: int, sealed: bytes) -> None:
        if self._config.record_cache <= 0:
            return
        self._recent[(device, seq)] = sealed
        while len(self._recent) > self._config.record_cache:
            self._recent.popitem(last=False)

    @staticmethod
    def _index_store(dev: _Device, when: int, seq: int) -> None:
        # bisect needs sorted times: a clock step backwards does not reorder the index
        dev.times.append(max(when, dev.times[-1]) if dev.times else when)
        dev.seqs.append(seq)

    def _seal_update(
        self,
        sub: SubscriptionState,
        device: str,
        seq: int,
        number: int,
        reason: UpdateReason,
        dropped: int,
        plaintext: bytes,
    ) -> ObserveUpdate:
        header = ObserveUpdate(
            sub.subscription_id,
            sub.requester,
            device,
            seq,
            number,
            reason,
            dropped,
            self._rng(12),
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
        op = self.meter.start("access")
        now = self._clock()
        user = self._authenticate(request, op, now)
        tx, receipt, payload = self._serve_access(
            op,
            user,
            AccessQuery(request.device, request.since, request.until, request.limit),
            evidence=request.signed_bytes(),
            signature=request.signature,
        )
        aad = response_aad(self.bolster_id, user.name, request.device, tx.seq, request.nonce)
        op.lap(Phase.OTHER)
        sealed = seal_to(request.response_key, payload.to_bytes(), aad)
        op.finish(Phase.CRYPTO)
        return AccessResult(
            self.bolster_id, user.name, request.device, request.nonce, tx, receipt, sealed
        )

    def _serve_access(
        self, op: OpTimer, user: User, query: AccessQuery, *, evidence: bytes, signature: bytes
    ) -> tuple[Transaction, Receipt, AccessPayload]:
        """Policy, records, the Access transaction (also for a denial, which raises)."""
        generator = self.requester_pseudonym(user.name)
        try:
            self._permit(user, TxType.ACCESS, query.device)
        except PolicyDeniedError as exc:
            op.lap(Phase.POLICY)
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
            tx, receipt = self._append(op, TxType.ACCESS, generator, body, signature=signature)
            raise AccessDeniedError(str(exc), transaction=tx, receipt=receipt) from None
        dev = self._devices.get(query.device)
        op.lap(Phase.POLICY)
        records: list[DataRecord] = []
        blocks: dict[int, CloudAddress] = {}
        redirected = 0
        if dev is not None:
            lo = bisect.bisect_left(dev.times, query.since)
            hi = bisect.bisect_left(dev.times, query.until)
            hi = min(hi, lo + query.limit)
            for seq in dev.seqs[lo:hi]:
                sealed = self._recent.get((dev.pseudonym, seq))
                if sealed is None:
                    try:
                        sealed = self._local.get(dev.pseudonym, seq).data
                    except RecordNotFoundError:
                        op.lap(Phase.LEDGER)
                        index = self._block_of(seq)
                        if index is not None:
                            blocks[index] = CloudAddress(self.log_id, index, self._blocks[index][2])
                            redirected += 1
                        continue
                op.lap(Phase.LEDGER)
                plain = self._keys.open_record(sealed, record_aad(dev.pseudonym, seq))
                op.lap(Phase.CRYPTO)
                records.append(DataRecord(seq, Measurement.from_bytes(plain)))
                op.lap(Phase.OTHER)
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
        tx, receipt = self._append(op, TxType.ACCESS, generator, body, signature=signature)
        payload = AccessPayload(
            query.device,
            tuple(records),
            tuple(blocks[i] for i in sorted(blocks)),
            self.cloud_pseudonym(query.device) if blocks else "-",
        )
        return tx, receipt, payload

    # -- Observe ----------------------------------------------------------------------

    def observe(self, request: ObserveRequest) -> Subscription:
        """A signed Observe: the subscription key is ECIES-sealed to the one-time key."""
        op = self.meter.start("observe")
        now = self._clock()
        user = self._authenticate(request, op, now)
        query = ObserveQuery(request.devices, request.threshold, request.interval, request.duration)
        tx, receipt, body = self._serve_observe(
            op, user, query, now, evidence=request.signed_bytes(), signature=request.signature
        )
        aad = response_aad(self.bolster_id, user.name, "", tx.seq, request.nonce)
        wrapped = seal_to(request.response_key, body.subscription_key, aad)
        op.finish(Phase.CRYPTO)
        return Subscription(
            self.bolster_id,
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

    def _serve_observe(
        self,
        op: OpTimer,
        user: User,
        query: ObserveQuery,
        now: int,
        *,
        evidence: bytes,
        signature: bytes,
    ) -> tuple[Transaction, Receipt, ObserveBody]:
        """Policy, the Observe transaction (also for a denial, which raises), the
        subscription; returns the logged body (subscription id, key, interval, expiry)."""
        generator = self.requester_pseudonym(user.name)
        floor = 0
        try:
            for device in query.devices:
                rule = self._permit(user, TxType.OBSERVE, device)
                if rule is not None:
                    floor = max(floor, rule.observe_interval)
        except PolicyDeniedError as exc:
            op.lap(Phase.POLICY)
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
            tx, receipt = self._append(op, TxType.OBSERVE, generator, body, signature=signature)
            raise ObserveDeniedError(str(exc), transaction=tx, receipt=receipt) from None
        interval = max(query.interval, floor)
        expires = now + min(query.duration, self._config.max_observe_duration)
        op.lap(Phase.POLICY)
        body = ObserveBody(
            user.name,
            user.role,
            query.devices,
            query.threshold,
            interval,
            expires,
            self._rng(16),
            self._rng(32),
            Outcome.GRANTED,
            f"interval {interval} ns",
            evidence,
        )
        tx, receipt = self._append(op, TxType.OBSERVE, generator, body, signature=signature)
        self._engine.add(self._subscription(body))
        return tx, receipt, body

    def _subscription(self, body: ObserveBody) -> SubscriptionState:
        return SubscriptionState(
            subscription_id=body.subscription_id,
            requester=body.requester,
            devices=frozenset(
                d for d in body.devices if not (d in self._devices and self._devices[d].removed)
            ),
            threshold=body.threshold,
            interval=body.interval,
            expires_at=body.expires_at,
            key=AesGcm(body.subscription_key),
        )

    # -- Remove -----------------------------------------------------------------------

    def remove(self, request: RemoveRequest) -> RemoveResult:
        op = self.meter.start("remove")
        now = self._clock()
        user = self._authenticate(request, op, now)
        dev = self._device(request.device)
        if dev.removed:
            raise DeviceRemovedError(f"device {request.device!r} was already removed")
        generator = self.requester_pseudonym(user.name)
        if user.role != ADMIN_ROLE and user.name != dev.owner:
            body = RemoveBody(
                dev.pseudonym,
                user.name,
                user.role,
                request.reason,
                Outcome.DENIED,
                "",
                b"",
                request.signed_bytes(),
            )
            tx, receipt = self._append(
                op, TxType.REMOVE, generator, body, signature=request.signature
            )
            raise RemoveDeniedError(
                f"{user.name!r} may not remove {dev.pseudonym!r}: only an admin or its owner",
                transaction=tx,
                receipt=receipt,
            )
        body = RemoveBody(
            dev.pseudonym,
            user.name,
            user.role,
            request.reason,
            Outcome.GRANTED,
            dev.certificate_serial,
            dev.key.key_id,
            request.signed_bytes(),
        )
        tx, receipt = self._append(op, TxType.REMOVE, generator, body, signature=request.signature)
        self._apply_remove(dev, now)
        deleted = self._complete_removal(dev)
        op.finish(Phase.LEDGER)
        return RemoveResult(
            self.bolster_id, dev.pseudonym, deleted, self.privacy_header.version, tx, receipt
        )

    def _apply_remove(self, dev: _Device, now: int) -> None:
        """In-memory effects of a Remove (also on replay): key and certificate revoked."""
        dev.removed = True
        self._ca.revocations.revoke(
            RevocationKind.CERTIFICATE,
            dev.certificate_serial,
            reason="device removed",
            at=now / 1e9,
        )
        self._engine.drop_device(dev.pseudonym)
        for pair, ids in self._pair_grants.items():
            if dev.pseudonym in pair:
                for gid in ids:
                    self._grants[gid].valid = False

    def _complete_removal(self, dev: _Device) -> int:
        """Durable effects of a Remove: the policy block and the records (idempotent)."""
        policy = self._ledger.privacy_header
        if policy.is_authorized(dev.pseudonym) or any(
            dev.pseudonym in r.devices for r in policy.rules
        ):
            self._ledger.seal_block(policy.without_device(dev.pseudonym))
            self._note_blocks()
        deleted = self._local.delete_device(dev.pseudonym)
        for key in [k for k in self._recent if k[0] == dev.pseudonym]:
            del self._recent[key]
        dev.times, dev.seqs = array("q"), array("q")
        return deleted

    # -- communication setup ----------------------------------------------------------

    def setup_communication(self, request: CommunicationRequest) -> CommunicationGrant:
        op = self.meter.start("communication")
        now = self._clock()
        if request.bolster_id != self.bolster_id:
            raise RequestAuthenticationError(f"request is for bolster {request.bolster_id!r}")
        if abs(request.time - now) > self._config.max_clock_skew:
            raise StaleRequestError("request time outside the accepted clock skew")
        a = self._active(request.initiator, now)
        op.lap(Phase.POLICY)
        if not a.key.check_mac(request.signed_bytes(), request.mac):
            raise RequestAuthenticationError(f"request of {a.pseudonym!r} does not authenticate")
        op.lap(Phase.CRYPTO)
        skew = self._config.max_clock_skew
        self._nonces.add(
            b"d" + request.initiator.encode() + b"\x00" + request.nonce,
            until=request.time + skew,
            now=now,
        )
        self._requests.require(request.initiator, now)
        reason = self._communication_refusal(a, request.peer, now)
        pair = frozenset({a.pseudonym, request.peer})
        if reason is not None:
            invalidated = tuple(
                sorted(g for g in self._pair_grants.get(pair, ()) if self._grants[g].valid)
            )
            for g in invalidated:
                self._grants[g].valid = False
            body = CommunicationBody(
                a.pseudonym,
                request.peer,
                b"",
                0,
                Outcome.DENIED,
                invalidated,
                reason,
                request.signed_bytes(),
            )
            op.lap(Phase.POLICY)
            tx, receipt = self._append(op, TxType.ACCESS, a.pseudonym, body, signature=request.mac)
            raise CommunicationDeniedError(reason, transaction=tx, receipt=receipt)
        b = self._devices[request.peer]
        lifetime = min(request.lifetime, self._config.max_pair_key_lifetime)
        expires = min(now + lifetime, a.key_expires, b.key_expires)
        op.lap(Phase.POLICY)
        grant_id = self._rng(16)
        pair_key = self._rng(32)
        body = CommunicationBody(
            a.pseudonym,
            b.pseudonym,
            grant_id,
            expires,
            Outcome.GRANTED,
            (),
            "permitted",
            request.signed_bytes(),
        )
        tx, receipt = self._append(op, TxType.ACCESS, a.pseudonym, body, signature=request.mac)
        self._add_grant(_Grant(grant_id, a.pseudonym, b.pseudonym, expires))
        grant = CommunicationGrant(
            self.bolster_id, grant_id, a.pseudonym, b.pseudonym, expires, b"", b"", tx, receipt
        )
        wraps = []
        for dev in (a, b):
            nonce = self._rng(12)
            wraps.append(
                nonce + dev.key.wrap.encrypt(nonce, pair_key, grant.wrap_aad(dev.pseudonym))
            )
        op.finish(Phase.CRYPTO)
        return replace(grant, key_for_initiator=wraps[0], key_for_peer=wraps[1])

    def _communication_refusal(self, a: _Device, peer: str, now: int) -> str | None:
        b = self._devices.get(peer)
        policy = self._ledger.privacy_header
        if b is None:
            return f"no device {peer!r} here"
        if b.removed:
            return f"device {peer!r} was removed"
        if now >= b.key_expires:
            return f"the key of {peer!r} expired"
        if b.pseudonym == a.pseudonym:
            return "a device does not set up communication with itself"
        if not (policy.is_authorized(a.pseudonym) and policy.is_authorized(peer)):
            return "both devices must be authorized in the privacy header"
        if not policy.permits(DEVICE_ROLE, TxType.ACCESS, peer):
            return f"the privacy header does not let devices reach {peer!r}"
        return None

    def _add_grant(self, grant: _Grant) -> None:
        self._grants[grant.grant_id] = grant
        self._pair_grants.setdefault(frozenset({grant.initiator, grant.peer}), set()).add(
            grant.grant_id
        )

    def pair_key_status(self, grant_id: bytes) -> PairKeyStatus:
        """Whether a pairwise key may still be used (devices ask before trusting it)."""
        grant = self._grants.get(grant_id)
        if grant is None:
            return PairKeyStatus.UNKNOWN
        if not grant.valid:
            return PairKeyStatus.INVALID
        if self._clock() >= grant.expires_at:
            return PairKeyStatus.EXPIRED
        return PairKeyStatus.VALID

    # -- the patient's view -----------------------------------------------------------

    def history(self, request: HistoryRequest) -> HistoryResult:
        """Every logged event about the subject's devices, for their owner or an admin.

        ``subject`` is a device pseudonym, or the owner (by user name or by the ledger
        pseudonym :meth:`requester_pseudonym` gives them) for all of their devices.
        Reading the history is not itself logged; a refusal raises
        :class:`AccessDeniedError` without evidence (nothing was appended)."""
        op = self.meter.start("history")
        now = self._clock()
        user = self._authenticate(request, op, now)
        payload = self._history(op, user, request.subject)
        aad = response_aad(self.bolster_id, user.name, request.subject, 0, request.nonce)
        op.lap(Phase.OTHER)
        sealed = seal_to(request.response_key, payload.to_bytes(), aad)
        op.finish(Phase.CRYPTO)
        return HistoryResult(self.bolster_id, user.name, request.subject, request.nonce, sealed)

    def _history(self, op: OpTimer, user: User, requested: str) -> HistoryPayload:
        subject = requested
        if subject == self.requester_pseudonym(user.name):  # "my devices", by pseudonym
            subject = user.name
        if subject in self._devices:
            devices = {subject}
            owner = self._devices[subject].owner
        else:
            devices = set(self._owned.get(subject, ()))
            owner = subject
        if user.role != ADMIN_ROLE and user.name != owner:
            raise AccessDeniedError(f"{user.name!r} may not read the history of {subject!r}")
        op.lap(Phase.POLICY)
        entries: list[HistoryEntry] = []
        attested: dict[int, int] = {}  # session request's seq -> the attestation's seq
        for tx in self._ledger.transactions():
            op.lap(Phase.LEDGER)
            body = self._open_body(tx)
            op.lap(Phase.CRYPTO)
            if isinstance(body, AttestationBody):
                attested.update(dict.fromkeys(body.seqs, tx.seq))
            entries.extend(_entries(tx, body, devices))
        entries = [
            replace(
                e,
                evidence=Evidence.ATTESTED,
                detail=f"{e.detail}; attested by {e.actor} in transaction {attested[e.seq]}",
            )
            if e.evidence is Evidence.SESSION and e.seq in attested
            else e
            for e in entries
        ]
        return HistoryPayload(requested, tuple(sorted(devices)), tuple(entries))

    # -- user sessions ----------------------------------------------------------------

    def session_handshake(
        self, initiator: str, message: bytes, *, source: Hashable | None = None
    ) -> bytes:
        """A user's handshake message 1 (-> message 2) or 3 (-> message 4: the session is
        up). Only registered users with their registered, valid certificate complete it.
        ``source``: who wrote the request, as the transport says (per-source work bounds,
        :class:`iomt.core.channels.HandshakeLimits`)."""
        op = self.meter.start("handshake")
        try:
            return self._sessions.handshake(initiator, message, source=source)
        finally:
            op.finish(Phase.CRYPTO)

    @property
    def session_channels(self) -> ChannelTable:
        """The table of the users' sessions (their reply keys: iomt.core.replies)."""
        return self._sessions.table

    def session_of(self, request: SessionRequest) -> Session | None:
        """The live session a session request's record names (no check; the key its
        answer's proof is MAC'd under)."""
        return self._sessions.session_of(request)

    def device_reply_key(self, pseudonym: str) -> tuple[bytes, HmacSha256Key] | None:
        """(key id, key) the answers to a known device are MAC'd under -- its shared key's
        reply subkey, kept after a Remove so the device can trust the REMOVED answer."""
        dev = self._devices.get(pseudonym)
        return None if dev is None else (dev.key.key_id, dev.key.reply)

    def session_request(self, request: SessionRequest) -> SessionResponse:
        """Access, Observe, history or an attestation on a user's session.

        Order of checks: bolster id, clock skew, the session (live, this requester's),
        the record (AEAD tag, replay window), the user (still registered, certificate
        valid), rate limit, unattested bound -- then as the signed path. The logged
        transaction records :class:`SessionAuthenticated` and the record's tag; denials
        are logged and raise with the evidence, as on the signed path."""
        kind = request.operation
        op = self.meter.start(kind.name.lower())
        now = self._clock()
        if request.bolster_id != self.bolster_id:
            raise RequestAuthenticationError(f"request is for bolster {request.bolster_id!r}")
        if abs(request.time - now) > self._config.max_clock_skew:
            raise StaleRequestError("request time outside the accepted clock skew")
        op.lap(Phase.POLICY)
        session, sid, query = self._sessions.open(request)
        op.lap(Phase.CRYPTO)
        user = self._users.get(request.requester)
        try:
            self._users.anchor.check_status(
                user.certificate, now=now, fingerprint_=user.fingerprint
            )
        except AuthenticationError as exc:
            self._sessions.table.drop(user.name)
            raise UnknownRequesterError(f"{user.name!r}: {exc}") from None
        self._requests.require(user.name, now)
        if kind is not SessionOp.ATTEST:
            self._sessions.require_attested(sid)
        evidence = SessionAuthenticated(
            self.bolster_id,
            user.name,
            kind,
            request.time,
            sid,
            request.number,
            self._sessions.credential(sid),
            query,
        )
        signature = request.auth_tag
        op.lap(Phase.POLICY)
        tx: Transaction | None = None
        receipt: Receipt | None = None
        try:
            if kind is SessionOp.ACCESS:
                tx, receipt, payload = self._serve_access(
                    op,
                    user,
                    AccessQuery.from_bytes(query),
                    evidence=evidence.to_bytes(),
                    signature=signature,
                )
                result = payload.to_bytes()
            elif kind is SessionOp.OBSERVE:
                tx, receipt, body = self._serve_observe(
                    op,
                    user,
                    ObserveQuery.from_bytes(query),
                    now,
                    evidence=evidence.to_bytes(),
                    signature=signature,
                )
                result = SubscriptionGrant(
                    body.subscription_id,
                    body.devices,
                    body.interval,
                    body.expires_at,
                    body.subscription_key,
                ).to_bytes()
            elif kind is SessionOp.HISTORY:
                result = self._history(op, user, HistoryQuery.from_bytes(query).subject).to_bytes()
            else:
                tx, receipt, proofs = self._attest(
                    op, user, sid, SessionAttestation.from_bytes(query)
                )
                result = proofs.to_bytes()
        except DeniedError as exc:
            if exc.transaction is not None and kind is not SessionOp.HISTORY:
                self._sessions.logged(sid, exc.transaction.seq, evidence)
            raise
        if tx is not None and kind in (SessionOp.ACCESS, SessionOp.OBSERVE):
            self._sessions.logged(sid, tx.seq, evidence)
        op.lap(Phase.OTHER)
        response = self._sessions.seal(session, request, SessionResult(kind, tx, receipt, result))
        op.finish(Phase.CRYPTO)
        return response

    def _attest(
        self, op: OpTimer, user: User, sid: bytes, att: SessionAttestation
    ) -> tuple[Transaction, Receipt, AttestationReceipts]:
        if (att.bolster_id, att.requester) != (self.bolster_id, user.name):
            raise RequestAuthenticationError("attestation is for another bolster or user")
        try:
            user.verifier.verify(att.signed_bytes(), att.signature)
        except AuthenticationError:
            raise RequestAuthenticationError(
                f"attestation signature of {user.name!r} does not verify"
            ) from None
        op.lap(Phase.CRYPTO)
        self._sessions.check_attestation(sid, att)
        body = AttestationBody(
            user.name, user.role, att.session_id, att.seqs, att.digest, att.signed_bytes()
        )
        tx, receipt = self._append(
            op,
            TxType.ACCESS,
            self.requester_pseudonym(user.name),
            body,
            signature=att.signature,
        )
        self._sessions.attested(att)
        proofs = self._ledger.inclusion_proofs(att.seqs, receipt.tree_size)
        op.lap(Phase.LEDGER)
        return tx, receipt, AttestationReceipts(proofs)

    def unattested(self, session: bytes) -> int:
        """How many requests on ``session`` (its 16-byte id) are not attested yet."""
        return self._sessions.unattested(session)

    # -- policy administration (local) -------------------------------------------------

    def set_rule(self, rule: AccessRule) -> Block:
        """Add or replace a privacy-header rule; a new block carries it. A local admin
        operation: the node authenticates whoever asks for it."""
        block = self._ledger.seal_block(self._ledger.privacy_header.with_rule(rule))
        self._note_blocks()
        return block

    def seal_if_due(self) -> Block | None:
        """For a node's timer: seal the pending block if it is full or old enough."""
        block = self._ledger.seal_if_due()
        self._note_blocks()
        return block

    def expire_subscriptions(self) -> int:
        """For a node's timer: end expired subscriptions (and forget old session logs)."""
        now = self._clock()
        self._sessions.expire(now)
        return self._engine.expire(now)

    # -- cloud sync -------------------------------------------------------------------

    def cloud_batches(self, *, max_blocks: int = 16) -> list[CloudBatch]:
        """Anonymized copies of sealed blocks' Store data not yet acknowledged by the cloud."""
        out: list[CloudBatch] = []
        for index, (first, count, block_hash) in enumerate(self._blocks):
            if len(out) >= max_blocks:
                break
            if count == 0 or index in self._synced:
                continue
            address = CloudAddress(self.log_id, index, block_hash)
            records = []
            for tx in self._ledger.transactions(
                start=first, stop=first + count, tx_type=TxType.STORE
            ):
                dev = self._devices.get(tx.generator_id)
                if dev is None or dev.removed:
                    continue
                try:
                    stored = self._local.get(dev.pseudonym, tx.seq)
                except RecordNotFoundError:
                    continue
                plain = self._keys.open_record(stored.data, record_aad(dev.pseudonym, tx.seq))
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
                        cloud_pseudonym=self.cloud_pseudonym(dev.pseudonym),
                        period=self._config.cloud_period,
                        vocabulary=self._config.cloud_vocabulary,
                        decimals=self._config.cloud_decimals,
                    )
                )
            if not records:  # nothing (left) to share from this block
                self._synced.add(index)
                continue
            records.sort(key=lambda r: r.to_bytes())  # order says nothing about arrival
            batch = CloudBatch(self.bolster_id, self.log_id, index, block_hash, tuple(records))
            out.append(replace(batch, signature=self._identity.signer.sign(batch.signed_bytes())))
        return out

    def cloud_synced(self, ack: CloudAck) -> int:
        """The cloud holds a block: mark it synced and, per retention, evict local copies.

        Returns how many local records were evicted. The ack must be signed by the cloud
        the bolster was configured with (an unsigned ack could make it drop data)."""
        if self._cloud_verifier is None:
            raise RequestAuthenticationError("no cloud key configured; cannot trust an ack")
        try:
            self._cloud_verifier.verify(ack.signed_bytes(), ack.signature)
        except AuthenticationError:
            raise RequestAuthenticationError("cloud ack does not verify") from None
        if ack.ledger_id != self.log_id or not (0 <= ack.block_index < len(self._blocks)):
            raise RequestAuthenticationError("ack is for another ledger or block")
        first, count, block_hash = self._blocks[ack.block_index]
        if not hmac.compare_digest(block_hash, ack.block_hash):
            raise RequestAuthenticationError("ack names another block hash")
        self._synced.add(ack.block_index)
        if self._config.retention is not Retention.EVICT_AFTER_SYNC:
            return 0
        by_device: dict[str, list[int]] = {}
        for tx in self._ledger.transactions(start=first, stop=first + count, tx_type=TxType.STORE):
            by_device.setdefault(tx.generator_id, []).append(tx.seq)
        for d, seqs in by_device.items():
            for seq in seqs:
                self._recent.pop((d, seq), None)
        return sum(self._local.delete(d, seqs) for d, seqs in sorted(by_device.items()))

    # -- cluster head and master bolster ----------------------------------------------

    def answer_checkpoint(self, request: CheckpointRequest) -> CheckpointSubmission:
        """A fresh checkpoint and the consistency proof from the size the head last saw."""
        if request.bolster_id != self.bolster_id:
            raise RequestAuthenticationError(f"request is for bolster {request.bolster_id!r}")
        checkpoint = self._ledger.checkpoint()
        first = min(request.from_size, checkpoint.tree_size)
        proof = self._ledger.consistency_proof(first, checkpoint.tree_size)
        return CheckpointSubmission(self.bolster_id, request.nonce, checkpoint, proof)

    def own_origin(self) -> BolsterOrigin:
        """This bolster's origin for the master bolster's shared chain."""
        key = self._identity.signer
        origin = BolsterOrigin(
            self.bolster_id,
            self.facility_id,
            key.verifier().public_bytes(),
            self._credentials.signing_certificate,
            self._ledger.checkpoint(),
        )
        return replace(origin, signature=key.sign(origin.signed_bytes()))

    def origin_link(self, pseudonym: str) -> DeviceOriginLink:
        """The device's Origin transaction, proven against a fresh checkpoint, signed."""
        dev = self._device(pseudonym)
        checkpoint = self._ledger.checkpoint()
        link = DeviceOriginLink(
            self.bolster_id,
            pseudonym,
            self._ledger.get_transaction(dev.origin_seq),
            self._ledger.inclusion_proof(dev.origin_seq, checkpoint.tree_size),
            checkpoint,
        )
        return replace(link, signature=self._identity.signer.sign(link.signed_bytes()))

    # -- restart ----------------------------------------------------------------------

    def _replay(self) -> None:
        now = self._clock()
        removed: list[_Device] = []
        for tx in self._ledger.transactions():
            body = self._open_body(tx)
            if isinstance(body, OriginBody):
                self._register(body, tx.seq)
            elif isinstance(body, StoreBody):
                dev = self._devices.get(body.device)
                if dev is not None:
                    dev.last_counter = max(dev.last_counter, body.counter)
                    self._index_store(dev, tx.time, tx.seq)
            elif isinstance(body, RemoveBody):
                gone = self._devices.get(body.device)
                if body.outcome is Outcome.GRANTED and gone is not None:
                    self._apply_remove(gone, tx.time)
                    removed.append(gone)
            elif isinstance(body, CommunicationBody):
                for g in body.invalidated:
                    if g in self._grants:
                        self._grants[g].valid = False
                if body.outcome is Outcome.GRANTED:
                    grant = _Grant(body.grant_id, body.initiator, body.peer, body.expires_at)
                    grant.valid = not any(
                        self._devices[d].removed
                        for d in (body.initiator, body.peer)
                        if d in self._devices
                    )
                    self._add_grant(grant)
            elif (
                isinstance(body, ObserveBody)
                and body.outcome is Outcome.GRANTED
                and body.expires_at > now
            ):
                sub = self._subscription(body)
                if sub.devices:
                    self._engine.add(sub)
        # finish what a crash may have interrupted
        policy = self._ledger.privacy_header
        missing = [
            p for p, d in self._devices.items() if not d.removed and not policy.is_authorized(p)
        ]
        for p in sorted(missing):
            policy = policy.with_device(p)
        if missing:
            self._ledger.seal_block(policy)
            self._note_blocks()
        for dev in removed:
            self._complete_removal(dev)
        if self._config.retention is Retention.EVICT_AFTER_SYNC:
            self._synced = self._evicted_blocks()

    def _evicted_blocks(self) -> set[int]:
        """Blocks whose Store records are gone while their device is not removed: they
        were synced and evicted before the restart (re-pushing them would be partial)."""
        out: set[int] = set()
        for index, (first, count, _) in enumerate(self._blocks):
            if not count:
                continue
            for tx in self._ledger.transactions(
                start=first, stop=first + count, tx_type=TxType.STORE
            ):
                dev = self._devices.get(tx.generator_id)
                if dev is None or dev.removed:
                    continue
                try:
                    self._local.get(dev.pseudonym, tx.seq)
                except RecordNotFoundError:
                    out.add(index)
                    break
        return out


def _entries(tx: Transaction, body: Body, devices: set[str]) -> list[HistoryEntry]:
    def entry(
        actor: str,
        role: str,
        device: str,
        outcome: Outcome,
        records: int,
        detail: str,
        evidence: Evidence = Evidence.SIGNATURE,
    ) -> HistoryEntry:
        return HistoryEntry(
            tx.seq, tx.tx_type, tx.time, actor, role, device, outcome, records, detail, evidence
        )

    def of_user(request: bytes) -> Evidence:
        return (
            Evidence.SESSION
            if request.startswith(SessionAuthenticated.TAG)
            else (Evidence.SIGNATURE)
        )

    if isinstance(body, OriginBody) and body.pseudonym in devices:
        return [
            entry(
                body.admin,
                ADMIN_ROLE,
                body.pseudonym,
                Outcome.GRANTED,
                0,
                f"provisioned; key {body.key_id.hex()} until {body.key_expires}",
            )
        ]
    if isinstance(body, StoreBody) and body.device in devices:
        return [
            entry(
                body.device,
                DEVICE_ROLE,
                body.device,
                Outcome.GRANTED,
                1,
                f"counter {body.counter}",
                Evidence.DEVICE_KEY,
            )
        ]
    if isinstance(body, AccessBody) and body.device in devices:
        return [
            entry(
                body.requester,
                body.role,
                body.device,
                body.outcome,
                body.records + body.redirected,
                body.detail,
                of_user(body.request),
            )
        ]
    if isinstance(body, CommunicationBody):
        return [
            entry(
                body.initiator,
                DEVICE_ROLE,
                d,
                body.outcome,
                0,
                f"communication {body.initiator} -> {body.peer}: {body.detail}",
                Evidence.DEVICE_KEY,
            )
            for d in sorted({body.initiator, body.peer} & devices)
        ]
    if isinstance(body, ObserveBody):
        return [
            entry(body.requester, body.role, d, body.outcome, 0, body.detail, of_user(body.request))
            for d in body.devices
            if d in devices
        ]
    if isinstance(body, RemoveBody) and body.device in devices:
        return [entry(body.requester, body.role, body.device, body.outcome, 0, body.reason)]
    return []
