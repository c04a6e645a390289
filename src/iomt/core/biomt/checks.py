"""The checks every request to a bolster passes before a service acts on it.

Addressed to this bolster, fresh (within the clock skew), authenticated (a registered
user's signature, or a device's MAC / AEAD under its shared key -- those are checked by the
service that holds the key), not replayed (the nonce cache: ``u`` users, ``d`` devices,
``p`` enrolments, a NUL between name and nonce), within the requester's rate; then the
privacy header decides. The nonce cache and the rate buckets are lost on a restart by
design: requests older than the clock skew are refused anyway.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, Protocol

from iomt.ledger import AccessRule, TxType

from .costs import Phase
from .errors import RequestAuthenticationError, StaleRequestError
from .identity import User
from .limits import NonceCache, RateLimit, RateLimiter
from .state import BolsterState

__all__ = ["RequestChecks", "UserRequest"]


class UserRequest(Protocol):
    """What a user's signed request carries for its checks."""

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


class RequestChecks:
    """Addressing, freshness, signature, nonce and rate checks, and the policy decision."""

    #: the steps whose time goes to a phase of the cost meter (:mod:`.metering`)
    PHASES: ClassVar[Mapping[str, Phase]] = {
        "_verify": Phase.CRYPTO,
    }

    def __init__(self, state: BolsterState) -> None:
        self._state = state
        config = state.config
        self._nonces = NonceCache(config.nonce_capacity)
        self._requests = RateLimiter(RateLimit(config.request_rate, config.request_burst))

    def addressed(self, bolster_id: str) -> None:
        if bolster_id != self._state.bolster_id:
            raise RequestAuthenticationError(f"request is for bolster {bolster_id!r}")

    def fresh(self, time: int, now: int) -> None:
        if abs(time - now) > self._state.config.max_clock_skew:
            raise StaleRequestError("request time outside the accepted clock skew")

    def authenticate(self, request: UserRequest, now: int) -> User:
        """Bolster id, freshness, signature, nonce, rate limit -- in that order."""
        self.addressed(request.bolster_id)
        self.fresh(request.time, now)
        user = self._verify(request, now)
        self.once(b"u" + request.requester.encode() + b"\x00" + request.nonce, request.time, now)
        self.within_rate(request.requester, now)
        return user

    def _verify(self, request: UserRequest, now: int) -> User:
        return self._state.users.authenticate(
            request.requester, request.signed_bytes(), request.signature, now=now
        )

    def once(self, key: bytes, time: int, now: int) -> None:
        """Refuse a (scoped) nonce seen before; kept until a request of ``time`` is stale."""
        self._nonces.add(key, until=time + self._state.config.max_clock_skew, now=now)

    def within_rate(self, requester: str, now: int) -> None:
        self._requests.require(requester, now)

    def permit(self, user: User, action: TxType, device: str) -> AccessRule | None:
        """The rule that lets ``user`` act on ``device``; None for its owner (always may).

        Raises :class:`~iomt.ledger.PolicyDeniedError`.
        """
        dev = self._state.devices.get(device)
        owner = dev is not None and not dev.removed and dev.owner == user.name
        policy = self._state.ledger.privacy_header
        if owner and policy.is_authorized(device):
            return policy.rule_for(user.role, action)
        return policy.require(user.role, action, device)
