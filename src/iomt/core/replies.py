"""Reply proofs: every service answer proves who sent it and which request it answers.

On ROS 2's wire a service reply is matched to its call by a header ``{client id, sequence
number}`` that travels in the payload: anyone on the bus who reads a request can write a
"reply" carrying it. So every iomt reply carries a **proof** over a :class:`ReplyStatement`
-- the operation, the server's identity name, a digest of the request, the status, the
reason and a digest of the rest of the reply -- and a client accepts only a reply whose
proof verifies for the server it called and the request it sent (``accept`` on the call:
:mod:`iomt.runtime.api`). Refusals are proven like everything else.

Two kinds of proof (:class:`ReplyProof`):

* **MAC** -- HMAC-SHA256 under a key client and server share: the session the request
  came on (``ChannelTable.reply_key``, exported as ``iomt/reply-mac/v1``; the key id is
  the client's own connection id, so the client finds it), or another shared key the
  service names (a BIoMT device's key with its bolster). Costs microseconds.
* **Signature** -- by the server's certified identity key, with its certificate attached
  when the client may not hold it; the client validates the certificate against the
  facility CA for the name it called (cached), or uses the key it already knows (a device
  key from the wallet's grant, a converter's from its announcement) and ignores the
  attachment.

A server answering requests nobody authenticated (a flood, a probe) would otherwise sign
on demand: signatures for those go through a :class:`SignatureBudget`; past it, the
refusal goes out without a proof -- which no client accepts, so it only ends the
attacker's call -- and the legitimate caller whose request really was refused then times
out instead. A request recognized as a replay gets no proven answer either: a proof
binds the request's digest, and the original request already has its answer.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from iomt.clock import ClockS
from iomt.core.channels import ChannelTable
from iomt.core.conversion import ConversionOrder
from iomt.core.handshake import DeviceGrant, TokenRequest
from iomt.core.listener import DataRequest
from iomt.core.publish import Envelope
from iomt.crypto.encoding import Reader, lp16, lp32, u8, u32
from iomt.crypto.sessions import Session
from iomt.crypto.signing import HmacSha256Key, Signer, Verifier
from iomt.errors import AuthenticationError, IomtError, LocalProtocolError, RemoteProtocolError

__all__ = [
    "KIND_MAC",
    "KIND_SIGNATURE",
    "ReplyChecker",
    "ReplyProof",
    "ReplySigner",
    "ReplyStatement",
    "SignatureBudget",
    "bolster_request_digest",
    "convert_digest",
    "convert_statement",
    "data_share_body",
    "data_share_digest",
    "data_share_statement",
    "device_info_body",
    "device_info_digest",
    "device_info_statement",
    "digest",
    "handshake_digest",
]

_CONTEXT = b"iomt/reply/v1"
_VERSION = 0x01
KIND_MAC = 1
KIND_SIGNATURE = 2
_MAX_CERTIFICATE = 8192


def digest(label: str, *parts: bytes) -> bytes:
    """SHA-256 over a label and length-prefixed parts (injective)."""
    h = hashlib.sha256(lp32(label.encode()))
    for p in parts:
        h.update(lp32(p))
    return h.digest()


@dataclass(frozen=True, slots=True)
class ReplyStatement:
    """What a reply proof covers."""

    operation: str  # "data_share", "device_info", "convert", "handshake", "bolster/store" ...
    server: str  # the identity name of the server the client called
    request: bytes  # digest of the request, as the client sent it
    status: int
    reason: str
    body: bytes  # digest of the rest of the reply

    def to_bytes(self) -> bytes:
        return (
            _CONTEXT
            + lp32(self.operation.encode())
            + lp32(self.server.encode())
            + lp32(self.request)
            + u32(self.status & 0xFFFFFFFF)
            + lp32(self.reason.encode("utf-8", "surrogatepass"))
            + lp32(self.body)
        )


@dataclass(frozen=True, slots=True)
class ReplyProof:
    """``01 | kind | lp16 key id | lp16 algorithm | lp16 tag | lp16 certificate``."""

    kind: int
    key_id: bytes = b""
    algorithm: str = ""
    tag: bytes = b""
    certificate: bytes = b""

    def to_bytes(self) -> bytes:
        return (
            u8(_VERSION)
            + u8(self.kind)
            + lp16(self.key_id)
            + lp16(self.algorithm.encode())
            + lp16(self.tag)
            + lp16(self.certificate)
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> ReplyProof:
        """Parse; ``AuthenticationError`` for anything that is not a proof (an empty one
        included: an unproven reply proves nothing)."""
        if not data:
            raise AuthenticationError("the reply carries no proof")
        try:
            r = Reader(bytes(data), RemoteProtocolError)
            if r.u8() != _VERSION:
                raise RemoteProtocolError("unknown reply-proof version")
            kind = r.u8()
            key_id = r.lp16()
            algorithm = r.lp16().decode("ascii")
            tag = r.lp16()
            certificate = r.lp16()
            r.end()
        except (RemoteProtocolError, UnicodeDecodeError) as exc:
            raise AuthenticationError(f"malformed reply proof: {exc}") from None
        if kind not in (KIND_MAC, KIND_SIGNATURE) or len(key_id) > 64 or len(tag) > 256:
            raise AuthenticationError("malformed reply proof")
        if len(certificate) > _MAX_CERTIFICATE:
            raise AuthenticationError("reply-proof certificate too long")
        return cls(kind, key_id, algorithm, tag, certificate)


class SignatureBudget:
    """A token bucket of signatures a server makes for requests nobody authenticated."""

    def __init__(
        self,
        rate: float = 100.0,
        burst: float = 200.0,
        *,
        clock: ClockS = time.monotonic,
    ) -> None:
        self.rate, self.burst = rate, burst
        self._clock = clock
        self._tokens = burst
        self._last = clock()
        self._lock = threading.Lock()
        self.spent = 0
        self.refused = 0

    def take(self) -> bool:
        with self._lock:
            now = self._clock()
            if now > self._last:
                self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
                self._last = now
            if self._tokens < 1.0:
                self.refused += 1
                return False
            self._tokens -= 1.0
            self.spent += 1
            return True


class ReplySigner:
    """The server side: proves replies with a shared key, or its certified signature."""

    def __init__(
        self,
        name: str,
        signer: Signer,
        certificate: bytes = b"",
        *,
        budget: SignatureBudget | None = None,
    ) -> None:
        self.name = name
        self._signer = signer
        self._certificate = certificate
        self.budget = budget or SignatureBudget()

    def mac(self, statement: ReplyStatement, key: HmacSha256Key, key_id: bytes) -> bytes:
        return ReplyProof(
            KIND_MAC, key_id, key.algorithm, key.sign(statement.to_bytes())
        ).to_bytes()

    def session(self, statement: ReplyStatement, channels: ChannelTable, session: Session) -> bytes:
        """A MAC under the session the client holds with us (named by its connection id)."""
        return self.mac(statement, channels.reply_key(session), session.peer_id)

    def sign(
        self, statement: ReplyStatement, *, budgeted: bool = False, certificate: bool = True
    ) -> bytes:
        """Our signature (with our certificate unless told not to). ``budgeted``: the
        request was not authenticated -- within the budget only; past it, ``b""`` (no
        proof: no client will accept the reply)."""
        if budgeted and not self.budget.take():
            return b""
        return ReplyProof(
            KIND_SIGNATURE,
            b"",
            self._signer.algorithm,
            self._signer.sign(statement.to_bytes()),
            self._certificate if certificate else b"",
        ).to_bytes()

    def prove(
        self,
        statement: ReplyStatement,
        *,
        channels: ChannelTable | None = None,
        session: Session | None = None,
        budgeted: bool = False,
    ) -> bytes:
        """A MAC on ``session`` when there is one, else a (budgeted) signature."""
        if session is not None and channels is not None:
            return self.session(statement, channels, session)
        return self.sign(statement, budgeted=budgeted)


class ReplyChecker:
    """The client side: does a reply's proof come from the server it called?

    ``validate(name, certificate) -> Verifier`` checks an attached certificate (the
    keystore's credential validator: facility CA, validity, revocation, CN = name); its
    answers are cached per (name, certificate), failures too, so a forger repeating a bad
    certificate costs a hash, not a signature verification.
    """

    def __init__(
        self,
        validate: Callable[[str, bytes], Verifier] | None = None,
        *,
        cache_size: int = 1024,
    ) -> None:
        self._validate = validate
        self._cache: OrderedDict[tuple[str, bytes], Verifier | str] = OrderedDict()
        self._cache_size = cache_size
        self.rejected = 0

    def check(
        self,
        proof: bytes,
        statement: ReplyStatement | Callable[[], ReplyStatement],
        *,
        server: str | None = None,
        channels: ChannelTable | None = None,
        key: Verifier | None = None,
        mac_key: Callable[[bytes], Verifier | None] | None = None,
    ) -> None:
        """Raise ``AuthenticationError`` unless ``proof`` proves ``statement``: a MAC under
        our session with the server (``channels``) or a key ``mac_key`` finds by id; a
        signature by ``key`` (when we know the server's key) or by the key of an attached
        certificate valid for the server's name.

        ``statement`` may be a function making it, with ``server`` given: it is then made
        only for a proof under a key we hold -- a forged reply without one costs a parse,
        not a digest of the reply (what keeps a flood of forgeries cheap to ignore)."""
        p = ReplyProof.from_bytes(proof)
        if isinstance(statement, ReplyStatement):
            name = statement.server
        elif server is not None:
            name = server
        else:
            raise LocalProtocolError("a lazily made statement needs the server's name")
        verifier = (
            _mac_verifier(p, name, channels, mac_key)
            if p.kind == KIND_MAC
            else self._signature_verifier(p, name, key)
        )
        made = statement if isinstance(statement, ReplyStatement) else statement()
        if made.server != name:
            raise AuthenticationError(f"statement names {made.server!r}, not {name!r}")
        verifier.verify(made.to_bytes(), p.tag)

    def _signature_verifier(self, p: ReplyProof, name: str, key: Verifier | None) -> Verifier:
        if key is not None:
            verifier = key
        elif p.certificate and self._validate is not None:
            verifier = self._certified(name, p.certificate)
        else:
            raise AuthenticationError(f"no key of {name!r} to check its reply")
        if p.algorithm != verifier.algorithm:
            raise AuthenticationError(
                f"reply signed with {p.algorithm!r}, {name!r} uses {verifier.algorithm!r}"
            )
        return verifier

    def accepts(
        self,
        proof: bytes,
        statement: ReplyStatement | Callable[[], ReplyStatement],
        **keys: object,
    ) -> bool:
        """``check`` as a yes/no, counting refusals (for a call's ``accept``)."""
        try:
            self.check(proof, statement, **keys)  # type: ignore[arg-type]
        except IomtError:
            self.rejected += 1
            return False
        return True

    def _certified(self, name: str, certificate: bytes) -> Verifier:
        key = (name, hashlib.sha256(certificate).digest())
        found = self._cache.get(key)
        if found is None:
            assert self._validate is not None
            try:
                found = self._validate(name, certificate)
            except IomtError as exc:
                found = f"certificate of {name!r} rejected: {exc}"
            self._cache[key] = found
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(key)
        if isinstance(found, str):
            raise AuthenticationError(found)
        return found


def _mac_verifier(
    p: ReplyProof,
    name: str,
    channels: ChannelTable | None,
    mac_key: Callable[[bytes], Verifier | None] | None,
) -> Verifier:
    """The key of a MAC'd reply: our session with ``name``, else one ``mac_key`` finds."""
    verifier: Verifier | None = None
    if channels is not None:
        session = channels.session_by_id(p.key_id)
        if session is not None and session.peer_name == name:
            verifier = channels.reply_key(session)
    if verifier is None and mac_key is not None:
        verifier = mac_key(p.key_id)
    if verifier is None:
        raise AuthenticationError(f"reply MAC under a key we do not share with {name!r}")
    return verifier


# -- what each service's proof covers -------------------------------------------------


def data_share_digest(request: DataRequest) -> bytes:
    """``DataShare`` requests: every field (the device checks the same bytes' proof)."""
    return digest("data_share", request.bound_bytes(), request.proof)


def envelope_bytes(envelope: Envelope) -> bytes:
    return envelope.signed_bytes() + lp32(envelope.signature)


def data_share_body(converter_uri: str, envelope: Envelope) -> bytes:
    return digest("data_share/reply", converter_uri.encode(), envelope_bytes(envelope))


def device_info_digest(request: TokenRequest) -> bytes:
    return digest("device_info", request.signed_bytes(), request.proof)


def device_info_body(grants: Iterable[DeviceGrant]) -> bytes:
    parts = []
    for g in grants:
        parts += [
            g.uri.encode(),
            g.technique.encode(),
            g.kind.to_bytes(4, "big", signed=True),
            g.token,
            g.device_certificate,
        ]
    return digest("device_info/reply", *parts)


def data_share_statement(
    server: str,
    request_digest: bytes,
    status: int,
    reason: str,
    converter_uri: str,
    envelope: Envelope,
) -> ReplyStatement:
    """A ``DataShare`` reply's statement (the envelope as it travels, empty when none)."""
    return ReplyStatement(
        "data_share",
        server,
        request_digest,
        status,
        reason,
        data_share_body(converter_uri, envelope),
    )


def device_info_statement(
    server: str, request_digest: bytes, status: int, reason: str, grants: Iterable[DeviceGrant]
) -> ReplyStatement:
    """A ``DeviceInfoRequest`` reply's statement."""
    return ReplyStatement(
        "device_info", server, request_digest, status, reason, device_info_body(grants)
    )


def convert_statement(
    server: str, request_digest: bytes, status: int, reason: str
) -> ReplyStatement:
    """A ``Convert`` reply's statement (nothing but the status and reason to cover)."""
    return ReplyStatement(
        "convert", server, request_digest, status, reason, digest("convert/reply")
    )


def convert_digest(order: ConversionOrder) -> bytes:
    return digest("convert", order.signed_bytes(), order.signature)


def handshake_digest(initiator_uri: str, message: bytes) -> bytes:
    return digest("handshake", initiator_uri.encode(), message)


def bolster_request_digest(operation: str, requester: str, body: bytes) -> bytes:
    """``BolsterService`` / ``CloudService`` requests (opaque bodies)."""
    return digest(operation, requester.encode(), body)
