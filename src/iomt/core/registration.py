"""Control registration (Bilal & Hassan, Alg. 2.1): who is near, and what can it do.

Every device announces its URI and capability periodically (the paper: every 20 s).
A receiver that hears an announcement within radio range registers the sender as a
1-hop neighbour ("register" in Alg. 2.1), otherwise not ("Not Register"). Announcements
carry the sender's own 1-hop neighbours, so each device also knows its 2-hop
neighbourhood, the way OLSR HELLO messages work; conversion (Alg. 3) picks the lowest-hop
neighbour that can apply a technique. Entries expire when their device falls silent.

Announcements are signed by the announcing device and carry its certificate: a rogue node
cannot register as a converter, and a converter can later check a conversion request's
signature against the key it registered.

**Only devices register, and only as what their certificate says.** A certificate from the
facility CA proves a name, not a role: a patient's wallet or a provider holds one too. So
the announcer's certificate must certify it a *device* of this facility
(:mod:`iomt.crypto.roles`), and what it announces -- its own technique, what it converts
into -- must be within its certified capability class. Anything else is refused
(``AuthorizationError``, counted in ``rejected_roles``; the node logs it): a wallet cannot
pose as a converter next to a device and collect the plaintext of an incapable one.
"""

from __future__ import annotations

import math
import struct
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from enum import Enum

from iomt.clock import ClockS
from iomt.crypto.encoding import lp32, u32
from iomt.crypto.errors import CertificateError
from iomt.crypto.roles import CertifiedRole, roles_of
from iomt.crypto.signing import Signer, Verifier
from iomt.crypto.techniques import techniques_for
from iomt.errors import AuthenticationError, AuthorizationError, RemoteProtocolError

_CONTEXT = b"iomt/registration/v1"


@dataclass(frozen=True, slots=True)
class NeighbourEntry:
    uri: str
    technique: str
    hops: int


@dataclass(frozen=True, slots=True)
class Announcement:
    device_uri: str
    security_technique: str
    convertible: tuple[str, ...]
    x: float
    y: float
    radio_range: float
    period_s: float
    certificate: bytes
    neighbours: tuple[NeighbourEntry, ...] = ()
    stamp_ns: int = 0
    signature: bytes = b""

    def signed_bytes(self) -> bytes:
        out = [
            _CONTEXT,
            lp32(self.device_uri.encode()),
            lp32(self.security_technique.encode()),
            u32(len(self.convertible)),
            *(lp32(t.encode()) for t in self.convertible),
            # float32 and whole milliseconds: exactly what the wire carries
            struct.pack(">fffI", self.x, self.y, self.radio_range, round(self.period_s * 1000)),
            lp32(self.certificate),
            u32(len(self.neighbours)),
        ]
        for n in self.neighbours:
            out += [lp32(n.uri.encode()), lp32(n.technique.encode()), struct.pack(">B", n.hops)]
        out.append(struct.pack(">q", self.stamp_ns))
        return b"".join(out)

    def signed_by(self, signer: Signer) -> Announcement:
        # signed_bytes() covers every field but the signature
        return replace(self, signature=signer.sign(self.signed_bytes()))

    def verify(self, verifier: Verifier) -> None:
        verifier.verify(self.signed_bytes(), self.signature)


class RegistrationStatus(Enum):
    """Alg. 2.1's answer for one announcement."""

    REGISTER = "register"
    NOT_REGISTER = "Not Register"


@dataclass
class Neighbour:
    uri: str
    technique: str
    convertible: frozenset[str]
    hops: int
    distance: float
    last_heard: float
    expires: float
    via: str | None = None  # for 2-hop entries: the 1-hop neighbour that advertised it
    verifier: Verifier | None = None
    certificate: bytes = b""
    advertised: tuple[NeighbourEntry, ...] = field(default_factory=tuple)
    #: what its certificate certifies (1-hop entries; a 2-hop entry is hearsay: None)
    certified: CertifiedRole | None = None

    def can_apply(self, technique: str) -> bool:
        return technique == self.technique or technique in self.convertible

    def certified_converter(self, technique: str) -> bool:
        """Its certificate says it is a device able to convert into ``technique``."""
        return self.certified is not None and self.certified.can_convert(technique)


CertificateCheck = Callable[[str, bytes], Verifier]
"""(device uri, DER certificate) -> its verifier, or raise AuthenticationError."""


class VerifiedAnnouncements:
    """Announcements whose signature has verified, for the neighbour tables of one process
    to share: every device of a process hears the same announcement from its neighbour, and
    the signature need not be checked once per hearer.

    An entry is the complete announcement — every signed field, the certificate and the
    signature itself — together with the public key that verified it. A hit therefore
    means: these exact bytes, under this exact key, verified before; verification is a
    deterministic function of both, so it would verify again. Anything different — a new
    stamp, another position or capability, a changed certificate, a forged or empty
    signature, another key — is not in the memo and is verified (or refused) in full.
    Failures are never remembered. Bounded: the oldest entries go first.
    """

    def __init__(self, max_entries: int = 8192) -> None:
        self._max = max_entries
        self._seen: dict[tuple[Announcement, bytes], None] = {}
        # The very objects verified last, by identity (a process decodes an announcement
        # once and hands every hearer the same object): a hit costs no hashing of the
        # whole announcement. Held here, so an id is never reused while it is a key.
        self._recent: dict[int, tuple[Announcement, Verifier]] = {}
        self.hits = 0
        self.verified = 0

    def check(self, announcement: Announcement, verifier: Verifier) -> None:
        """Raise AuthenticationError unless ``announcement`` verifies under ``verifier``."""
        recent = self._recent.get(id(announcement))
        if recent is not None and recent[0] is announcement and recent[1] is verifier:
            self.hits += 1
            return
        key = (announcement, verifier.public_bytes())
        if key not in self._seen:
            announcement.verify(verifier)
            self.verified += 1
            if len(self._seen) >= self._max:
                del self._seen[next(iter(self._seen))]
            self._seen[key] = None
        else:
            self.hits += 1
        if len(self._recent) >= min(256, self._max):
            del self._recent[next(iter(self._recent))]
        self._recent[id(announcement)] = (announcement, verifier)


class NeighbourTable:
    def __init__(
        self,
        self_uri: str,
        x: float,
        y: float,
        radio_range: float,
        *,
        check_certificate: CertificateCheck,
        facility: str | None = None,
        max_hops: int = 2,
        expiry_periods: float = 3.0,
        clock: ClockS = time.monotonic,
        verified: VerifiedAnnouncements | None = None,
    ) -> None:
        self.self_uri = self_uri
        #: the facility whose devices we register (default: the one in our own URI)
        self.facility = facility if facility is not None else facility_of(self_uri)
        self.x, self.y = x, y
        self.radio_range = radio_range
        self.max_hops = max_hops
        self.expiry_periods = expiry_periods
        self._check = check_certificate
        self._clock = clock
        self._one_hop: dict[str, Neighbour] = {}
        self._known_keys: dict[tuple[str, bytes], tuple[Verifier, CertifiedRole]] = {}
        # Shared by the tables of one process when given (see VerifiedAnnouncements).
        self._verified = verified if verified is not None else VerifiedAnnouncements(256)
        self.rejected = 0
        self.rejected_roles = 0

    def distance_to(self, x: float, y: float) -> float:
        return math.hypot(self.x - x, self.y - y)

    def on_announcement(self, a: Announcement) -> RegistrationStatus:
        """Register (or refresh) the announcing device if it is in radio range.

        Raises AuthenticationError for a forged or unsigned announcement and
        RemoteProtocolError for a malformed one; state is unchanged then.
        """
        if a.device_uri == self.self_uri:
            return RegistrationStatus.NOT_REGISTER
        if not (
            math.isfinite(a.x)
            and math.isfinite(a.y)
            and a.period_s > 0
            and math.isfinite(a.period_s)
        ):
            raise RemoteProtocolError(f"announcement from {a.device_uri} has bad geometry")
        distance = self.distance_to(a.x, a.y)
        # Radio range: both ends must reach each other for a usable link.
        if distance > min(self.radio_range, a.radio_range):
            return RegistrationStatus.NOT_REGISTER
        verifier, certified = self._verifier(a)
        try:
            self._verified.check(a, verifier)
        except AuthenticationError:
            self.rejected += 1
            raise
        self._check_role(a, certified)
        now = self._clock()
        self._one_hop[a.device_uri] = Neighbour(
            uri=a.device_uri,
            technique=a.security_technique,
            convertible=frozenset(a.convertible),
            hops=1,
            distance=distance,
            last_heard=now,
            expires=now + self.expiry_periods * a.period_s,
            verifier=verifier,
            certificate=a.certificate,
            advertised=tuple(n for n in a.neighbours if n.hops == 1),
            certified=certified,
        )
        return RegistrationStatus.REGISTER

    def _check_role(self, a: Announcement, certified: CertifiedRole) -> None:
        """Only a device of our facility registers, announcing no more than its certified
        capability class allows (AuthorizationError otherwise; state unchanged)."""
        why = ""
        if not certified.is_device or certified.capability is None:
            why = f"is certified as {certified.describe()}, not as a device"
        elif certified.facility != self.facility or facility_of(a.device_uri) != self.facility:
            why = f"is a device of {certified.facility!r}, not of {self.facility!r}"
        else:
            allowed = set(techniques_for(certified.capability))
            beyond = sorted({a.security_technique, *a.convertible} - allowed)
            if beyond:
                why = (
                    f"announces {', '.join(beyond)} beyond its certified capability "
                    f"({certified.capability.name.lower()})"
                )
        if why:
            self.rejected_roles += 1
            self._one_hop.pop(a.device_uri, None)
            raise AuthorizationError(f"registration of {a.device_uri} refused: it {why}")

    def _verifier(self, a: Announcement) -> tuple[Verifier, CertifiedRole]:
        key = (a.device_uri, a.certificate)
        found = self._known_keys.get(key)
        if found is None:
            verifier = self._check(a.device_uri, a.certificate)
            try:
                certified = roles_of(a.certificate)
            except CertificateError as exc:
                raise AuthenticationError(f"certificate of {a.device_uri}: {exc}") from None
            found = self._known_keys[key] = (verifier, certified)
        return found

    def expire(self) -> list[str]:
        """Drop silent devices; returns their URIs."""
        now = self._clock()
        gone = [uri for uri, n in self._one_hop.items() if n.expires <= now]
        for uri in gone:
            del self._one_hop[uri]
        return gone

    def forget(self, uri: str) -> None:
        """Drop a neighbour that failed us (it will re-register when heard again)."""
        self._one_hop.pop(uri, None)

    def one_hop(self, uri: str) -> Neighbour | None:
        n = self._one_hop.get(uri)
        if n is None or n.expires <= self._clock():
            return None
        return n

    def neighbours(self) -> list[Neighbour]:
        """Live neighbours up to ``max_hops``, lowest hop count first, then nearest."""
        now = self._clock()
        live = [n for n in self._one_hop.values() if n.expires > now]
        out = sorted(live, key=lambda n: (n.distance, n.uri))
        if self.max_hops >= 2:
            seen = {self.self_uri, *(n.uri for n in out)}
            two: dict[str, Neighbour] = {}
            for via in out:
                for adv in via.advertised:
                    if adv.uri in seen or adv.uri in two:
                        continue
                    two[adv.uri] = Neighbour(
                        uri=adv.uri,
                        technique=adv.technique,
                        convertible=frozenset(),
                        hops=2,
                        distance=math.inf,
                        last_heard=via.last_heard,
                        expires=via.expires,
                        via=via.uri,
                    )
            out += sorted(two.values(), key=lambda n: n.uri)
        return out

    def converters_for(self, technique: str, *, max_hops: int | None = None) -> list[Neighbour]:
        """Alg. 3's candidates: registered neighbours that can apply ``technique``,
        lowest hop count first (1-hop entries know their full capability; 2-hop entries
        only their own technique, as advertised)."""
        limit = self.max_hops if max_hops is None else max_hops
        # 1 hop (every device that cannot encrypt): skip building the 2-hop list, which
        # costs a look at each neighbour's advertised entries on every conversion
        found = self.one_hop_nearest() if limit <= 1 else self.neighbours()
        return [n for n in found if n.hops <= limit and n.can_apply(technique)]

    def one_hop_nearest(self) -> list[Neighbour]:
        """Live 1-hop neighbours, nearest first (as ``neighbours()`` lists them, without
        working out the 2-hop entries)."""
        now = self._clock()
        return sorted(
            (n for n in self._one_hop.values() if n.expires > now),
            key=lambda n: (n.distance, n.uri),
        )

    def advertised(self, limit: int = 8) -> tuple[NeighbourEntry, ...]:
        """What to put in our own announcement: nearest live 1-hop neighbours."""
        return tuple(NeighbourEntry(n.uri, n.technique, 1) for n in self.one_hop_nearest()[:limit])

    def __len__(self) -> int:
        return len([n for n in self._one_hop.values() if n.expires > self._clock()])

    def uris(self) -> Iterable[str]:
        return (n.uri for n in self.neighbours())


def facility_of(uri: str) -> str:
    """``iomt://ward1/hr_1`` -> ``ward1`` (empty for anything else)."""
    if not uri.startswith("iomt://"):
        return ""
    return uri[len("iomt://") :].split("/", 1)[0]
