"""iomt.core.biomt -- the sans-IO protocol core of BIoMT (Seliem & Elgazzar).

Plain objects fed frozen request dataclasses, returning responses; clock and RNG injected;
state machines whose illegal transitions raise and leave state unchanged. No DDS, no
threads: the nodes (bolster, cluster_head, cloud, device) wire these objects to topics.

=======================  =====================================================================
paper                    here
=======================  =====================================================================
ATS, SecGen, ID issue,   :mod:`.provisioning` (attribute numbers, agreement, pseudonym, the
key establishment        authenticated X25519 exchange), :mod:`.identity` (facility CA,
                         certificates, user list), :class:`.device.BiomtDevice`
bolster services         :class:`.bolster.Bolster`, a facade over :mod:`.provisioner`
                         (Origin), :mod:`.records` (Store, Access, Observe), :mod:`.removal`
                         (Remove), :mod:`.pair_keys` (communication setup), :mod:`.history`,
                         :mod:`.user_sessions`, :mod:`.cloud_sync`, sharing :mod:`.state`
                         and :mod:`.checks`; :mod:`.observe` thresholds and rate limits;
                         :mod:`.bodies` what each transaction records
users                    :class:`.requester.Requester` (signed requests, sealed answers; or
                         a session -- :mod:`.session` -- and symmetric requests after it)
multiple bolsters        :class:`.master.MasterBolster` (the shared chain of origins)
cluster layer            :class:`.cluster.ClusterMember` (head election with terms, pre-vote,
                         heartbeats), :class:`.cluster.ClusterHead` (key lists, checkpoint
                         witnessing, fork flags)
cloud layer              :func:`.cloud.anonymize`, :class:`.cloud.Cloud` (block number + hash)
Fig. 3 / Fig. 4          :mod:`.costs` (per-phase cost meter), :mod:`.metering`,
                         :class:`.base.BaseBolster`
=======================  =====================================================================

See docs/biomt.md for the design and what a security engineer would check.
"""

from __future__ import annotations

from .base import BaseBolster, PlainUpdate
from .bolster import Bolster, BolsterConfig, PairKeyStatus, Retention, StoreResult
from .clock import MILLISECOND, SECOND, ClockNs, Rng
from .cloud import (
    AnonymizedRecord,
    Cloud,
    CloudAck,
    CloudBatch,
    CloudPayload,
    CloudRequest,
    CloudResponse,
    CloudSyncStatus,
    IdentifiedRecord,
    anonymize,
)
from .cluster import (
    CheckpointRequest,
    CheckpointSubmission,
    ClusterHead,
    ClusterMember,
    ElectionRole,
    Heartbeat,
    HeartbeatAck,
    Outgoing,
    VoteReply,
    VoteRequest,
)
from .config import DEFAULT_REQUEST_RATE
from .costs import CostMeter, CostSummary, Phase
from .device import BiomtDevice, DeviceCredentials, DeviceState, Enrolment, PairKey
from .errors import (
    AccessDeniedError,
    AttestationMismatchError,
    AttestationRequiredError,
    BiomtDecodeError,
    BiomtStateError,
    BodyUnreadableError,
    BolsterFlaggedError,
    CloudBlockNotFoundError,
    CommunicationDeniedError,
    DeniedError,
    DeviceRemovedError,
    KeyExpiredError,
    NotLeaderError,
    ObserveDeniedError,
    ProvisioningError,
    RateLimitedError,
    ReceiptMismatchError,
    RemoveDeniedError,
    ReplayError,
    RequestAuthenticationError,
    StaleRequestError,
    UnknownBolsterError,
    UnknownDeviceError,
    UnknownRequesterError,
    UnknownSessionError,
)
from .identity import (
    ADMIN_ROLE,
    DEVICE_ROLE,
    PATIENT_ROLE,
    BolsterCredentials,
    BolsterIdentity,
    FacilityCA,
    TrustAnchor,
    User,
    UserDirectory,
)
from .master import BolsterOrigin, DeviceOriginLink, MasterBolster, MemberRecord
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
    Threshold,
    UpdateReason,
)
from .provisioning import DeviceAttributes, Provisioned, ProvisionRequest
from .records_audit import LocalStorageReport, audit_local_storage
from .requester import FOREVER, Observer, Requester
from .session import (
    AccessQuery,
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
    bolster_validator,
    user_validator,
)

__all__ = [
    "ADMIN_ROLE",
    "DEFAULT_REQUEST_RATE",
    "DEVICE_ROLE",
    "FOREVER",
    "MILLISECOND",
    "PATIENT_ROLE",
    "SECOND",
    "AccessDeniedError",
    "AccessPayload",
    "AccessQuery",
    "AccessRequest",
    "AccessResult",
    "AnonymizedRecord",
    "AttestationMismatchError",
    "AttestationRequiredError",
    "BaseBolster",
    "BiomtDecodeError",
    "BiomtDevice",
    "BiomtStateError",
    "BodyUnreadableError",
    "Bolster",
    "BolsterConfig",
    "BolsterCredentials",
    "BolsterFlaggedError",
    "BolsterIdentity",
    "BolsterOrigin",
    "CheckpointRequest",
    "CheckpointSubmission",
    "ClockNs",
    "Cloud",
    "CloudAck",
    "CloudAddress",
    "CloudBatch",
    "CloudBlockNotFoundError",
    "CloudPayload",
    "CloudRequest",
    "CloudResponse",
    "CloudSyncStatus",
    "ClusterHead",
    "ClusterMember",
    "CommunicationDeniedError",
    "CommunicationGrant",
    "CommunicationRequest",
    "CostMeter",
    "CostSummary",
    "DataRecord",
    "DeniedError",
    "DeviceAttributes",
    "DeviceCredentials",
    "DeviceOriginLink",
    "DeviceRemovedError",
    "DeviceState",
    "ElectionRole",
    "Enrolment",
    "Evidence",
    "FacilityCA",
    "Heartbeat",
    "HeartbeatAck",
    "HistoryEntry",
    "HistoryPayload",
    "HistoryQuery",
    "HistoryRequest",
    "HistoryResult",
    "IdentifiedRecord",
    "KeyExpiredError",
    "LocalStorageReport",
    "MasterBolster",
    "Measurement",
    "MemberRecord",
    "NotLeaderError",
    "ObserveDeniedError",
    "ObserveQuery",
    "ObserveRequest",
    "ObserveUpdate",
    "Observer",
    "Outcome",
    "Outgoing",
    "PairKey",
    "PairKeyStatus",
    "Phase",
    "PlainUpdate",
    "ProvisionRequest",
    "Provisioned",
    "ProvisioningError",
    "RateLimitedError",
    "ReceiptMismatchError",
    "RemoveDeniedError",
    "RemoveRequest",
    "RemoveResult",
    "ReplayError",
    "RequestAuthenticationError",
    "Requester",
    "Retention",
    "Rng",
    "SessionAttestation",
    "SessionAuthenticated",
    "SessionOp",
    "SessionRequest",
    "SessionResponse",
    "SessionResult",
    "StaleRequestError",
    "StoreReceipt",
    "StoreRequest",
    "StoreResult",
    "Subscription",
    "SubscriptionGrant",
    "Threshold",
    "TrustAnchor",
    "UnknownBolsterError",
    "UnknownDeviceError",
    "UnknownRequesterError",
    "UnknownSessionError",
    "UpdateReason",
    "User",
    "UserDirectory",
    "UserSessions",
    "VoteReply",
    "VoteRequest",
    "anonymize",
    "audit_local_storage",
    "bolster_validator",
    "user_validator",
]
