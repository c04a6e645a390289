"""The bolster: BIoMT's facility gateway as a sans-IO protocol object.

The paper's bolster "processes the transactions sent and received by IoMT devices,
implements the key establishing scheme, generates origin transactions to add new devices
... maintains the local blockchain ... [and] manages local storage". :class:`Bolster` owns a
:class:`~iomt.ledger.Ledger` and its :class:`~iomt.ledger.LocalStorage` and is fed requests
(frozen dataclasses from :mod:`~iomt.core.biomt.messages`), returning responses; the clock
and RNG are injected and nothing here does I/O beyond the ledger storage it was given.

:class:`Bolster` is a facade: each service is a sans-IO object in its own module, and all
of them share one :class:`~iomt.core.biomt.state.BolsterState` (what the ledger says, kept
in memory) and one :class:`~iomt.core.biomt.checks.RequestChecks` (addressing, freshness,
signatures, nonces, rates, the privacy header).

=========================  ==================================================================
method                     service (module): what happens
=========================  ==================================================================
``provision``              :mod:`.provisioner`: Framework initialization (ATS, SecGen, ID
                           issue, key establishment); an **Origin** transaction; a block
                           with the device admitted to the privacy header
``store``                  :mod:`.records`: the device's AEAD under its shared key (strictly
                           increasing counter, per-device rate limit); a **Store** transaction
                           and the encrypted local record commit together; the Observe
                           updates due for the reading are returned
``access``                 :mod:`.records`: the privacy header decides (owners may always
                           read their devices); local records, cloud addresses for what was
                           evicted; an **Access** transaction either way -- denials are
                           logged and raise :class:`~iomt.core.biomt.errors.AccessDeniedError`
``observe``                :mod:`.records`: as access; an **Observe** transaction; a
                           subscription key for updates
``remove``                 :mod:`.removal`: admin or owner only; a **Remove** transaction, the
                           certificate revoked, the device dropped from the privacy header,
                           its records deleted, its subscriptions and pairwise keys ended
``setup_communication``    :mod:`.pair_keys`: device A asks to talk to device B (MAC under
                           A's key); a fresh pairwise key wrapped for both, or the pair's
                           keys marked invalid; logged as **Access**
``history``                :mod:`.history`: every logged event about a device, for its owner
                           or an admin, sealed to them
``session_*``              :mod:`.user_sessions`: the same on a user's session, and the
                           attestation of a session's requests
``cloud_batches/_synced``  :mod:`.cloud_sync`: anonymized blocks to the cloud; its acks;
``cloud_status``           how far that has come
=========================  ==================================================================

Every transaction body is encrypted (AES-256-GCM under an HKDF-derived body key, bound to
the transaction's type, sequence number, generator and time); the generator's signature
(users) or AEAD tag / MAC (devices) is kept in the transaction's clear ``signature`` field.

**Restarts lose nothing acknowledged.** The ledger is the bolster's only state: on
:meth:`Bolster.open` every body is decrypted and replayed
(:meth:`~iomt.core.biomt.state.BolsterState.replay`), and effects that need a second commit
(the policy block after an Origin or Remove, deleting a removed device's records) are
completed if a crash interrupted them. Lost on restart by design: rate-limit buckets, the
nonce cache (requests older than the clock skew are refused anyway) and Observe delivery
timing.

Cost accounting (:mod:`~iomt.core.biomt.costs`) splits each operation into crypto, ledger,
policy and other; it is declared outside the protocol code (:mod:`.metering`: each method
here is one operation, each service names the phase of its steps).
:class:`~iomt.core.biomt.base.BaseBolster` does the same data handling with no cryptography
and no ledger, for the paper's Fig. 3 comparison.
"""

from __future__ import annotations

import os
import time as _time
from collections.abc import Hashable
from dataclasses import replace

from iomt.core.channels import ChannelTable
from iomt.crypto.sessions import Session
from iomt.crypto.signing import HmacSha256Key, Verifier
from iomt.ledger import (
    AccessRule,
    Block,
    Ledger,
    LedgerStorage,
    LocalStorage,
    PrivacyHeader,
    Transaction,
)

from .checks import RequestChecks
from .clock import ClockNs, Rng
from .cloud import CloudAck, CloudBatch, CloudSyncStatus
from .cloud_sync import CloudSync
from .cluster import CheckpointRequest, CheckpointSubmission
from .config import BolsterConfig, Retention
from .costs import NULL_METER, CostMeter, Phase
from .errors import RequestAuthenticationError
from .history import History
from .identity import BolsterCredentials, BolsterIdentity, FacilityCA, UserDirectory
from .keys import LedgerKey
from .master import BolsterOrigin, DeviceOriginLink
from .messages import (
    AccessRequest,
    AccessResult,
    CommunicationGrant,
    CommunicationRequest,
    HistoryRequest,
    HistoryResult,
    ObserveRequest,
    RemoveRequest,
    RemoveResult,
    StoreRequest,
    Subscription,
)
from .metering import meter_steps, metered
from .observe import SubscriptionState
from .pair_keys import PairKeys, PairKeyStatus
from .provisioner import Provisioner
from .provisioning import Provisioned, ProvisionRequest
from .records import Records, StoreResult
from .removal import Removal
from .session import SessionRequest, SessionResponse
from .state import BolsterState
from .user_sessions import SessionService

__all__ = [
    "Bolster",
    "BolsterConfig",
    "PairKeyStatus",
    "Retention",
    "StoreResult",
]


def _session_operation(request: SessionRequest) -> str:
    return request.operation.name.lower()


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
        clock: ClockNs,
        rng: Rng,
        meter: CostMeter,
        cloud_verifier: Verifier | None,
    ) -> None:
        self.meter = meter
        self._state = state = BolsterState(
            identity=identity,
            ledger=ledger,
            ca=ca,
            users=users,
            config=config,
            clock=clock,
            rng=rng,
        )
        self._credentials = identity.credentials()
        checks = RequestChecks(state)
        self._provisioner = Provisioner(state, checks)
        self._records = Records(state, checks)
        self._removal = Removal(state, checks)
        self._pair_keys = PairKeys(state, checks)
        self._history = History(state, checks)
        self._sessions = SessionService(state, checks, self._records, self._history)
        self._cloud = CloudSync(state, cloud_verifier)
        if meter is not NULL_METER:
            for service in (
                state,
                checks,
                self._provisioner,
                self._records,
                self._pair_keys,
                self._history,
                self._sessions,
            ):
                meter_steps(service)
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
        clock: ClockNs = _time.time_ns,
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

    def _replay(self) -> None:
        """Rebuild the state from the ledger and finish what a crash may have interrupted."""
        for dev in self._state.replay():
            self._removal.complete(dev)
        self._cloud.replay()

    # -- public state -----------------------------------------------------------------

    @property
    def bolster_id(self) -> str:
        return self._state.bolster_id

    @property
    def facility_id(self) -> str:
        return self._state.facility_id

    @property
    def credentials(self) -> BolsterCredentials:
        return self._credentials

    @property
    def ledger(self) -> Ledger:
        return self._state.ledger

    @property
    def local_storage(self) -> LocalStorage:
        return self._state.local

    @property
    def privacy_header(self) -> PrivacyHeader:
        return self._state.ledger.privacy_header

    @property
    def verifier(self) -> Verifier:
        """The bolster's ledger key (receipts, checkpoints, blocks, responses)."""
        return self._state.identity.signer.verifier()

    @property
    def log_id(self) -> bytes:
        return self._state.log_id

    @property
    def config(self) -> BolsterConfig:
        return self._state.config

    @property
    def last_append(self) -> tuple[Transaction, int] | None:
        """The last transaction this object appended and its block index (for a node that
        publishes appends without reading them back, e.g. after a session answer)."""
        return self._state.last_append

    def devices(self) -> list[str]:
        """Pseudonyms of the provisioned devices that are not removed."""
        return sorted(p for p, d in self._state.devices.items() if not d.removed)

    def is_removed(self, pseudonym: str) -> bool:
        return self._state.device(pseudonym).removed

    def subscriptions(self) -> list[SubscriptionState]:
        return list(self._state.engine)

    def requester_pseudonym(self, name: str) -> str:
        """How a user appears in the ledger's clear metadata."""
        return self._state.requester_pseudonym(name)

    def cloud_pseudonym(self, pseudonym: str) -> str:
        return self._state.cloud_pseudonym(pseudonym)

    # -- Framework initialization -----------------------------------------------------

    @metered("origin")
    def provision(self, request: ProvisionRequest) -> Provisioned:
        """ATS, SecGen, ID issue, key establishment, Origin (:mod:`.provisioner`)."""
        return self._provisioner.provision(request)

    # -- records ----------------------------------------------------------------------

    @metered("store")
    def store(self, request: StoreRequest) -> StoreResult:
        return self._records.store(request)

    @metered("access")
    def access(self, request: AccessRequest) -> AccessResult:
        """A signed Access: the answer is ECIES-sealed to the request's one-time key."""
        return self._records.access(request)

    @metered("observe")
    def observe(self, request: ObserveRequest) -> Subscription:
        """A signed Observe: the subscription key is ECIES-sealed to the one-time key."""
        return self._records.observe(request)

    # -- removal and pairwise keys ----------------------------------------------------

    @metered("remove")
    def remove(self, request: RemoveRequest) -> RemoveResult:
        return self._removal.remove(request)

    @metered("communication")
    def setup_communication(self, request: CommunicationRequest) -> CommunicationGrant:
        return self._pair_keys.setup_communication(request)

    def pair_key_status(self, grant_id: bytes) -> PairKeyStatus:
        """Whether a pairwise key may still be used (devices ask before trusting it)."""
        return self._pair_keys.status(grant_id)

    def device_reply_key(self, pseudonym: str) -> tuple[bytes, HmacSha256Key] | None:
        """(key id, key) the answers to a known device are MAC'd under -- its shared key's
        reply subkey, kept after a Remove so the device can trust the REMOVED answer."""
        dev = self._state.devices.get(pseudonym)
        return None if dev is None else (dev.key.key_id, dev.key.reply)

    # -- the patient's view -----------------------------------------------------------

    @metered("history")
    def history(self, request: HistoryRequest) -> HistoryResult:
        """Every logged event about the subject's devices, for their owner or an admin.

        ``subject`` is a device pseudonym, or the owner (by user name or by the ledger
        pseudonym :meth:`requester_pseudonym` gives them) for all of their devices.
        Reading the history is not itself logged; a refusal raises
        :class:`AccessDeniedError` without evidence (nothing was appended)."""
        return self._history.history(request)

    # -- user sessions ----------------------------------------------------------------

    @metered("handshake", phase=Phase.CRYPTO, failures=True)
    def session_handshake(
        self, initiator: str, message: bytes, *, source: Hashable | None = None
    ) -> bytes:
        """A user's handshake message 1 (-> message 2) or 3 (-> message 4: the session is
        up). Only registered users with their registered, valid certificate complete it.
        ``source``: who wrote the request, as the transport says (per-source work bounds,
        :class:`iomt.core.channels.HandshakeLimits`)."""
        return self._sessions.handshake(initiator, message, source=source)

    @property
    def session_channels(self) -> ChannelTable:
        """The table of the users' sessions (their reply keys: iomt.core.replies)."""
        return self._sessions.table

    def session_of(self, request: SessionRequest) -> Session | None:
        """The live session a session request's record names (no check; the key its
        answer's proof is MAC'd under)."""
        return self._sessions.session_of(request)

    @metered(_session_operation)
    def session_request(self, request: SessionRequest) -> SessionResponse:
        """Access, Observe, history or an attestation on a user's session.

        Order of checks: bolster id, clock skew, the session (live, this requester's),
        the record (AEAD tag, replay window), the user (still registered, certificate
        valid), rate limit, unattested bound -- then as the signed path. The logged
        transaction records :class:`SessionAuthenticated` and the record's tag; denials
        are logged and raise with the evidence, as on the signed path."""
        return self._sessions.request(request)

    def unattested(self, session: bytes) -> int:
        """How many requests on ``session`` (its 16-byte id) are not attested yet."""
        return self._sessions.unattested(session)

    # -- policy administration (local) and timers -------------------------------------

    def set_rule(self, rule: AccessRule) -> Block:
        """Add or replace a privacy-header rule; a new block carries it. A local admin
        operation: the node authenticates whoever asks for it."""
        return self._state.seal_block(self._state.ledger.privacy_header.with_rule(rule))

    def seal_if_due(self) -> Block | None:
        """For a node's timer: seal the pending block if it is full or old enough."""
        block = self._state.ledger.seal_if_due()
        self._state.note_blocks()
        return block

    def expire_subscriptions(self) -> int:
        """For a node's timer: end expired subscriptions (and forget old session logs)."""
        now = self._state.clock()
        self._sessions.expire(now)
        return self._state.engine.expire(now)

    # -- cloud sync -------------------------------------------------------------------

    def cloud_batches(self, *, max_blocks: int = 16) -> list[CloudBatch]:
        """Anonymized copies of sealed blocks' Store data not yet acknowledged by the cloud."""
        return self._cloud.batches(max_blocks=max_blocks)

    def cloud_status(self) -> CloudSyncStatus:
        """How much of the ledger is sealed, and how much of that the cloud holds."""
        return self._cloud.status()

    def cloud_synced(self, ack: CloudAck) -> int:
        """The cloud holds a block: mark it synced and, per retention, evict local copies.

        Returns how many local records were evicted. The ack must be signed by the cloud
        the bolster was configured with (an unsigned ack could make it drop data)."""
        return self._cloud.synced(ack)

    # -- cluster head and master bolster ----------------------------------------------

    def answer_checkpoint(self, request: CheckpointRequest) -> CheckpointSubmission:
        """A fresh checkpoint and the consistency proof from the size the head last saw."""
        if request.bolster_id != self.bolster_id:
            raise RequestAuthenticationError(f"request is for bolster {request.bolster_id!r}")
        ledger = self._state.ledger
        checkpoint = ledger.checkpoint()
        first = min(request.from_size, checkpoint.tree_size)
        proof = ledger.consistency_proof(first, checkpoint.tree_size)
        return CheckpointSubmission(self.bolster_id, request.nonce, checkpoint, proof)

    def own_origin(self) -> BolsterOrigin:
        """This bolster's origin for the master bolster's shared chain."""
        key = self._state.identity.signer
        origin = BolsterOrigin(
            self.bolster_id,
            self.facility_id,
            key.verifier().public_bytes(),
            self._credentials.signing_certificate,
            self._state.ledger.checkpoint(),
        )
        return replace(origin, signature=key.sign(origin.signed_bytes()))

    def origin_link(self, pseudonym: str) -> DeviceOriginLink:
        """The device's Origin transaction, proven against a fresh checkpoint, signed."""
        dev = self._state.device(pseudonym)
        ledger = self._state.ledger
        checkpoint = ledger.checkpoint()
        link = DeviceOriginLink(
            self.bolster_id,
            pseudonym,
            ledger.get_transaction(dev.origin_seq),
            ledger.inclusion_proof(dev.origin_seq, checkpoint.tree_size),
            checkpoint,
        )
        return replace(link, signature=self._state.identity.signer.sign(link.signed_bytes()))
