"""A bolster's knobs, each default defined here once (the node takes them from here)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from iomt.errors import ConfigurationError

from .clock import SECOND
from .cloud import DEFAULT_VOCABULARY, HOUR

__all__ = ["DEFAULT_REQUEST_RATE", "BolsterConfig", "Retention"]

_DAY = 86_400 * SECOND

#: Signed and session requests per second per requester; the burst is twice this.
DEFAULT_REQUEST_RATE = 1000.0


class Retention(StrEnum):
    """What happens to local records once their block is in the cloud."""

    KEEP = "keep"
    EVICT_AFTER_SYNC = "evict-after-sync"


@dataclass(frozen=True, slots=True)
class BolsterConfig:
    """Knobs of a bolster; times in nanoseconds, rates per second.

    Raises :class:`~iomt.errors.ConfigurationError` for a value no bolster can run with."""

    key_lifetime: int = 30 * _DAY
    max_clock_skew: int = 30 * SECOND
    request_rate: float = DEFAULT_REQUEST_RATE
    request_burst: float = 2 * DEFAULT_REQUEST_RATE
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
            "max_pair_key_lifetime",
        ):
            if getattr(self, name) <= 0:
                raise ConfigurationError(f"bolster config: {name} must be positive")
