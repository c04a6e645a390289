"""A member bolster's side of the master's shared chain (BIoMT "multiple bolsters support").

"The origin transactions of IoMT devices, associated with a certain bolster, will be chained
to the origin transaction of this bolster. Then, stored in the master bolster as part of the
shared blockchain." A member first has its own origin admitted (``<master>/admit``), then
offers each device's Origin for chaining (``<master>/chain``). :class:`MasterAdmission` is
that sequence, sans-IO: the node ticks it and feeds it the master's answers, and sends what
it returns (:class:`SendAdmit`, :class:`SendChain`), logging :class:`MasterRefused`.

A restarted member offers its origin and every device again; the master answers a
duplicate with a refusal (:class:`~.errors.AlreadyMemberError`,
:class:`~.errors.AlreadyChainedError`), which :meth:`MasterReply.of` reads as done.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum

from .errors import AlreadyChainedError, AlreadyMemberError

__all__ = [
    "AdmissionAction",
    "MasterAdmission",
    "MasterRefused",
    "MasterReply",
    "SendAdmit",
    "SendChain",
]


class MasterReply(Enum):
    """What the master's answer to ``admit`` or ``chain`` means to the member."""

    ACCEPTED = "accepted"
    ALREADY_MEMBER = "already-member"  # our origin is in the chain: admitted
    ALREADY_CHAINED = "already-chained"  # that device is linked: chained
    REFUSED = "refused"

    @classmethod
    def of(cls, ok: bool, reason: str) -> MasterReply:
        """From the answer's status (OK or not) and reason. A duplicate travels as a plain
        refusal; its reason is the typed error's text, which ends with the error's phrase."""
        if ok:
            return cls.ACCEPTED
        if reason.endswith(AlreadyMemberError.PHRASE):
            return cls.ALREADY_MEMBER
        if reason.endswith(AlreadyChainedError.PHRASE):
            return cls.ALREADY_CHAINED
        return cls.REFUSED


@dataclass(frozen=True)
class SendAdmit:
    """Offer our own origin to the master (``<master>/admit``)."""


@dataclass(frozen=True)
class SendChain:
    """Offer this device's Origin, with its inclusion proof, for chaining."""

    pseudonym: str


@dataclass(frozen=True)
class MasterRefused:
    """The master refused our origin (``pseudonym`` None) or a device's."""

    pseudonym: str | None
    reason: str


AdmissionAction = SendAdmit | SendChain | MasterRefused


class MasterAdmission:
    """Admission first, one request at a time; then every queued device, each until the
    master answered (a lost call queues it again; a refusal is counted and dropped)."""

    def __init__(self) -> None:
        self.admitted = False
        self._admitting = False
        self._to_chain: list[str] = []
        self.counts = {"chained": 0, "failed": 0}

    @property
    def pending(self) -> tuple[str, ...]:
        """Devices waiting to be offered, in order."""
        return tuple(self._to_chain)

    def provisioned(self, pseudonym: str) -> None:
        """A device's Origin was logged here: chain it at the master."""
        self._to_chain.append(pseudonym)

    def tick(self) -> list[AdmissionAction]:
        if not self.admitted:
            if self._admitting:
                return []
            self._admitting = True
            return [SendAdmit()]
        out: list[AdmissionAction] = [SendChain(p) for p in self._to_chain]
        self._to_chain.clear()
        return out

    def on_admit_reply(
        self, reply: MasterReply, reason: str, devices: Iterable[str]
    ) -> list[MasterRefused]:
        """The master's answer to our origin; ``devices`` are the ones we hold now."""
        self._admitting = False
        if reply in (MasterReply.ACCEPTED, MasterReply.ALREADY_MEMBER):
            self.admitted = True
            # a restarted bolster re-offers its devices; the master keeps one link each
            self._to_chain = sorted(set(self._to_chain) | set(devices))
            return []
        return [MasterRefused(None, reason)]

    def on_admit_lost(self) -> None:
        """No answer: offered again on the next tick."""
        self._admitting = False

    def on_chain_reply(
        self, pseudonym: str, reply: MasterReply, reason: str
    ) -> list[MasterRefused]:
        if reply in (MasterReply.ACCEPTED, MasterReply.ALREADY_CHAINED):
            self.counts["chained"] += 1
            return []
        self.counts["failed"] += 1
        return [MasterRefused(pseudonym, reason)]

    def on_chain_lost(self, pseudonym: str) -> None:
        """No answer: offered again on the next tick."""
        self._to_chain.append(pseudonym)
