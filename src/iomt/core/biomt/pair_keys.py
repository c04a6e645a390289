"""Pair keys: device A asks the bolster to let it talk to device B.

The request is MAC'd under A's shared key, fresh, not replayed and within A's rate. If B is
a live device here, both are authorized in the privacy header and it lets devices reach B,
a fresh pairwise key is wrapped for both under their shared keys, valid until an expiry
(no later than either shared key). Otherwise the pair's earlier keys are marked invalid.
Either way it is logged as an **Access** transaction; a denial raises
:class:`~iomt.core.biomt.errors.CommunicationDeniedError` with it. Devices ask
:meth:`PairKeys.status` before trusting a pairwise key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from enum import StrEnum
from typing import ClassVar

from iomt.ledger import TxType

from .bodies import CommunicationBody
from .checks import RequestChecks
from .costs import Phase
from .errors import CommunicationDeniedError, RequestAuthenticationError
from .identity import DEVICE_ROLE
from .messages import CommunicationGrant, CommunicationRequest, Outcome
from .state import BolsterState, DeviceRecord, PairGrant

__all__ = ["PairKeyStatus", "PairKeys"]


class PairKeyStatus(StrEnum):
    VALID = "valid"
    EXPIRED = "expired"
    INVALID = "invalid"
    UNKNOWN = "unknown"


class PairKeys:
    """Sets up pairwise keys between devices and says whether one is still valid."""

    #: the steps whose time goes to a phase of the cost meter (:mod:`.metering`)
    PHASES: ClassVar[Mapping[str, Phase]] = {
        "_authenticate": Phase.CRYPTO,
        "_wrap": Phase.CRYPTO,
    }

    def __init__(self, state: BolsterState, checks: RequestChecks) -> None:
        self._state = state
        self._checks = checks

    def setup_communication(self, request: CommunicationRequest) -> CommunicationGrant:
        state = self._state
        now = state.clock()
        self._checks.addressed(request.bolster_id)
        self._checks.fresh(request.time, now)
        a = state.active(request.initiator, now)
        self._authenticate(a, request)
        self._checks.once(
            b"d" + request.initiator.encode() + b"\x00" + request.nonce, request.time, now
        )
        self._checks.within_rate(request.initiator, now)
        reason = self._refusal(a, request.peer, now)
        pair = frozenset({a.pseudonym, request.peer})
        if reason is not None:
            invalidated = tuple(
                sorted(g for g in state.pair_grants.get(pair, ()) if state.grants[g].valid)
            )
            for g in invalidated:
                state.grants[g].valid = False
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
            tx, receipt = state.append(TxType.ACCESS, a.pseudonym, body, signature=request.mac)
            raise CommunicationDeniedError(reason, transaction=tx, receipt=receipt)
        b = state.devices[request.peer]
        lifetime = min(request.lifetime, state.config.max_pair_key_lifetime)
        expires = min(now + lifetime, a.key_expires, b.key_expires)
        grant_id = state.rng(16)
        pair_key = state.rng(32)
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
        tx, receipt = state.append(TxType.ACCESS, a.pseudonym, body, signature=request.mac)
        state.add_grant(PairGrant(grant_id, a.pseudonym, b.pseudonym, expires))
        grant = CommunicationGrant(
            state.bolster_id, grant_id, a.pseudonym, b.pseudonym, expires, b"", b"", tx, receipt
        )
        return self._wrap(grant, pair_key, a, b)

    def _authenticate(self, a: DeviceRecord, request: CommunicationRequest) -> None:
        if not a.key.check_mac(request.signed_bytes(), request.mac):
            raise RequestAuthenticationError(f"request of {a.pseudonym!r} does not authenticate")

    def _wrap(
        self, grant: CommunicationGrant, pair_key: bytes, a: DeviceRecord, b: DeviceRecord
    ) -> CommunicationGrant:
        """The pairwise key wrapped for each device under its shared key."""
        wraps = []
        for dev in (a, b):
            nonce = self._state.rng(12)
            wraps.append(
                nonce + dev.key.wrap.encrypt(nonce, pair_key, grant.wrap_aad(dev.pseudonym))
            )
        return replace(grant, key_for_initiator=wraps[0], key_for_peer=wraps[1])

    def _refusal(  # noqa: PLR0911  (one refusal per check, in the protocol's order)
        self, a: DeviceRecord, peer: str, now: int
    ) -> str | None:
        """Why A may not talk to ``peer``; None if it may."""
        state = self._state
        b = state.devices.get(peer)
        policy = state.ledger.privacy_header
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

    def status(self, grant_id: bytes) -> PairKeyStatus:
        """Whether a pairwise key may still be used (devices ask before trusting it)."""
        grant = self._state.grants.get(grant_id)
        if grant is None:
            return PairKeyStatus.UNKNOWN
        if not grant.valid:
            return PairKeyStatus.INVALID
        if self._state.clock() >= grant.expires_at:
            return PairKeyStatus.EXPIRED
        return PairKeyStatus.VALID
