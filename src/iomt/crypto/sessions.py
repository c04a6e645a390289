"""Sessions: one authenticated key agreement, then symmetric-only requests.

Both papers put asymmetric cryptography on every exchange (the wallet validates a public
key per request, BIoMT "exchanges the shared key of both communicating entities" per
communication). Measured here an ECIES seal+open costs ~0.15 ms and an Ed25519 verify
~0.1 ms against ~2 µs for AES-GCM, so — as OSCORE/EDHOC do for constrained devices — two
parties run one SIGMA-I style handshake and then protect each request with AES-GCM only.
BIoMT's "communication setup ... as long as the shared key is valid" is this session.

Handshake (sans-IO: every message is bytes, the caller carries them)::

    I -> R  m1 = 01 01 | suite | C_I | G_X                              (X25519 ephemeral)
    R -> I  m2 = 01 02 | C_I | C_R | G_Y | lp16(cookie)
                   | AEAD_K2(ID_R, CRED_R, Sig_R(TH2, ID_R, CRED_R))
    I -> R  m3 = 01 03 | C_R | lp16(cookie) | AEAD_K3(ID_I, CRED_I, Sig_I(TH3, ID_I, CRED_I))
    R -> I  m4 = 01 04 | C_I | AEAD_K4("", TH4)                        (key confirmation)

    TH2 = H(m1, C_I, C_R, G_Y)              PRK = HKDF-Extract(TH2, X25519(x, y))
    K2, IV2 = Expand(PRK, TH2)   TH3 = H(TH2, m2 ciphertext, plaintext)   K3, IV3 likewise
    TH4 = H(TH3, m3 ciphertext, plaintext)  directional keys = Expand(Expand(PRK, TH4), ...)
    cookie = epoch | nonce | AES-GCM_Kepoch(time, initiator name, C_I, PRK, TH3; aad C_R)

The responder is stateless until message 3 (:class:`StatelessResponder`): its state for the
handshake travels in the cookie, sealed under a rotating key only it holds, and comes back
in message 3 -- so a flood of message 1s fills no table. Message 4 proves the responder
derived the same session (the initiator uses it only then).

Signatures cover the transcript (both ephemerals and connection ids) and the signer's own
identity; the identity travels inside AEAD under a key only the two ephemeral holders know,
which binds it to the session (SIGMA's MAC) and hides both identities from passive
observers. Credentials are checked by a caller-supplied validator (the keystore's X.509
chain check, or pinned raw keys).

Records: ``01 10 | C_receiver | seq (8) | AES-256-GCM(plaintext, aad)`` with the nonce
``IV_dir XOR seq``; a sliding window rejects replays and records too far in the past; a
session expires after ``lifetime`` seconds or ``max_messages`` per direction.

The handshake objects are small state machines driven by a transition table: a call or
message not allowed in the current state raises, and any failure leaves state unchanged.
"""

from __future__ import annotations

import enum
import hmac
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import x25519

from iomt.clock import ClockS
from iomt.crypto.encoding import Reader, lp16, lp32, u32, u64
from iomt.crypto.errors import (
    DecryptionError,
    HandshakeError,
    HandshakeMessageError,
    KeyFormatError,
    SessionError,
    SessionExpiredError,
    SessionReplayError,
)
from iomt.crypto.keys import SymmetricKey
from iomt.crypto.primitives import AesGcm, hkdf_expand, hkdf_extract, sha256
from iomt.crypto.signing import Signer, Verifier, verifier_from_public_bytes
from iomt.errors import AuthenticationError, LocalProtocolError

__all__ = [
    "SUITE_X25519_AES256GCM_SHA256",
    "CookieJar",
    "CredentialValidator",
    "HandshakeIdentity",
    "HandshakeInitiator",
    "HandshakeResponder",
    "HandshakeState",
    "PinnedCredentials",
    "Session",
    "SessionPolicy",
    "StatelessResponder",
    "addressed_to",
    "is_handshake_start",
    "raw_credential",
    "record_session_id",
]

_VERSION = 0x01
_M1, _M2, _M3, _M4, _DATA = 0x01, 0x02, 0x03, 0x04, 0x10
SUITE_X25519_AES256GCM_SHA256 = 0x01
_CID = 8
_POINT = 32
_SEQ = 8
_TAG = 16
_RECORD_HEADER = 2 + _CID + _SEQ
_RECORD_CONTEXT = b"iomt/session-record/v1"

CredentialValidator = Callable[[str, bytes], Verifier]
"""(peer name, credential bytes) -> the peer's verifier, or raise AuthenticationError."""


@dataclass(frozen=True, slots=True)
class HandshakeIdentity:
    """Who we are in a handshake: a name, a signing key, and a credential proving the key
    belongs to the name (a DER certificate from the keystore, or ``raw_credential``)."""

    name: str
    signer: Signer
    credential: bytes

    def __repr__(self) -> str:
        return f"HandshakeIdentity({self.name!r}, {self.signer!r})"


@dataclass(frozen=True, slots=True)
class SessionPolicy:
    lifetime: float = 3600.0
    max_messages: int = 1 << 32
    replay_window: int = 64
    handshake_timeout: float = 30.0

    def __post_init__(self) -> None:
        if self.lifetime <= 0 or self.handshake_timeout <= 0:
            raise ValueError("lifetimes must be positive")
        if not 1 <= self.max_messages <= 1 << 63:
            raise ValueError("max_messages must be in 1..2^63")
        if not 1 <= self.replay_window <= 4096:
            raise ValueError("replay_window must be in 1..4096")


def raw_credential(verifier: Verifier) -> bytes:
    """A credential that is just the public key (for pinned-key deployments and tests)."""
    return b"raw:" + lp16(verifier.algorithm.encode()) + lp16(verifier.public_bytes())


class PinnedCredentials:
    """A validator for raw credentials: the name must map to exactly this public key."""

    def __init__(self, keys: Mapping[str, Verifier]) -> None:
        self._keys = dict(keys)

    def __call__(self, name: str, credential: bytes) -> Verifier:
        expected = self._keys.get(name)
        if expected is None:
            raise HandshakeError(f"no pinned key for {name!r}")
        r = Reader(credential, HandshakeError)
        if r.take(4) != b"raw:":
            raise HandshakeError("not a raw-key credential")
        try:
            alg = r.lp16().decode()
            key = verifier_from_public_bytes(alg, r.lp16())
        except (UnicodeDecodeError, KeyFormatError) as exc:
            raise HandshakeError(f"bad raw credential: {exc}") from None
        r.end()
        if key != expected:
            raise HandshakeError(f"{name!r} presented a key that is not its pinned key")
        return key


def addressed_to(message: bytes) -> bytes:
    """The connection id a message 2, 3 or 4 or a record is for (to find its handshake or
    session). A message 1 starts a new handshake and is addressed to no one: it raises
    ``HandshakeMessageError``, as does anything that is not an iomt session message."""
    if len(message) >= 2 + _CID and message[0] == _VERSION and message[1] in (_M2, _M3, _M4, _DATA):
        return message[2 : 2 + _CID]
    raise HandshakeMessageError("not a message 2, message 3 or session record")


def is_handshake_start(message: bytes) -> bool:
    """True for bytes that look like a handshake message 1 (start a responder for it)."""
    return len(message) == 3 + _CID + _POINT and message[:2] == bytes((_VERSION, _M1))


def record_session_id(record: bytes) -> bytes:
    """The receiver's connection id in a record, to find its Session. SessionError if none."""
    if len(record) < _RECORD_HEADER + _TAG or record[0] != _VERSION or record[1] != _DATA:
        raise SessionError("not a session record")
    return record[2 : 2 + _CID]


# --- sessions ------------------------------------------------------------------------


class Session:
    """An established session: ``protect`` / ``unprotect`` cost one AES-GCM call each."""

    def __init__(
        self,
        *,
        local_id: bytes,
        peer_id: bytes,
        peer_name: str,
        peer_verifier: Verifier,
        peer_credential: bytes = b"",
        send: tuple[bytes, bytes],
        receive: tuple[bytes, bytes],
        exporter: bytes,
        policy: SessionPolicy,
        clock: ClockS,
    ) -> None:
        self.local_id = local_id
        self.peer_id = peer_id
        self.peer_name = peer_name
        self.peer_verifier = peer_verifier
        #: the credential the peer proved in the handshake (a DER certificate from the
        #: facility CA, validated then): what roles it certifies is read from here
        self.peer_credential = peer_credential
        self.policy = policy
        self.established_at = clock()
        self.expires_at = self.established_at + policy.lifetime
        self._clock = clock
        self._send_aead = AesGcm(send[0])
        self._send_iv = int.from_bytes(send[1], "big")
        self._recv_aead = AesGcm(receive[0])
        self._recv_iv = int.from_bytes(receive[1], "big")
        self._exporter = exporter
        self._send_seq = 0
        self._highest = -1
        self._window = 0
        self._mask = (1 << policy.replay_window) - 1
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Session(peer={self.peer_name!r}, id={self.local_id.hex()}, <keys redacted>)"

    @property
    def is_expired(self) -> bool:
        return self._clock() >= self.expires_at

    @property
    def messages_sent(self) -> int:
        return self._send_seq

    def _check_alive(self) -> None:
        if self._clock() >= self.expires_at:
            raise SessionExpiredError(f"session with {self.peer_name!r} expired; re-handshake")

    def protect(self, plaintext: bytes, aad: bytes = b"") -> bytes:
        self._check_alive()
        with self._lock:
            seq = self._send_seq
            if seq >= self.policy.max_messages:
                raise SessionExpiredError("message limit reached; re-handshake")
            self._send_seq = seq + 1
        header = bytes((_VERSION, _DATA)) + self.peer_id + u64(seq)
        nonce = (self._send_iv ^ seq).to_bytes(12, "big")
        return header + self._send_aead.encrypt(
            nonce, plaintext, _RECORD_CONTEXT + header + lp32(aad)
        )

    def unprotect(self, record: bytes, aad: bytes = b"") -> bytes:
        self._check_alive()
        if record_session_id(record) != self.local_id:
            raise SessionError("record is for another session")
        header = record[:_RECORD_HEADER]
        seq = int.from_bytes(header[2 + _CID :], "big")
        if seq >= self.policy.max_messages:
            raise SessionExpiredError("record beyond the session's message limit")
        with self._lock:
            self._check_window(seq)
        nonce = (self._recv_iv ^ seq).to_bytes(12, "big")
        try:
            plaintext = self._recv_aead.decrypt(
                nonce, record[_RECORD_HEADER:], _RECORD_CONTEXT + header + lp32(aad)
            )
        except DecryptionError:
            raise SessionError("record does not authenticate") from None
        with self._lock:
            self._check_window(seq)  # a concurrent duplicate may have landed meanwhile
            self._accept(seq)
        return plaintext

    def _check_window(self, seq: int) -> None:
        if seq > self._highest:
            return
        offset = self._highest - seq
        if offset >= self.policy.replay_window:
            raise SessionReplayError(f"record {seq} is left of the replay window")
        if (self._window >> offset) & 1:
            raise SessionReplayError(f"record {seq} was already received")

    def _accept(self, seq: int) -> None:
        if seq > self._highest:
            shift = seq - self._highest
            self._window = ((self._window << shift) | 1) & self._mask
            self._highest = seq
        else:
            self._window |= 1 << (self._highest - seq)

    def symmetric_key(self, label: str) -> SymmetricKey:
        """A key exported from the session (e.g. for ``sym-aes`` or an HMAC link)."""
        return SymmetricKey(hkdf_expand(self._exporter, b"iomt/export/" + label.encode(), 32))


# --- handshake -----------------------------------------------------------------------


class HandshakeState(enum.Enum):
    IDLE = "idle"
    WAIT_MESSAGE_2 = "wait-message-2"
    WAIT_MESSAGE_3 = "wait-message-3"
    WAIT_MESSAGE_4 = "wait-message-4"
    ESTABLISHED = "established"


# (role, state, event) -> next state; anything absent is illegal.
_TRANSITIONS: dict[tuple[str, HandshakeState, str], HandshakeState] = {
    ("initiator", HandshakeState.IDLE, "start"): HandshakeState.WAIT_MESSAGE_2,
    ("initiator", HandshakeState.WAIT_MESSAGE_2, "message-2"): HandshakeState.WAIT_MESSAGE_4,
    ("initiator", HandshakeState.WAIT_MESSAGE_4, "message-4"): HandshakeState.ESTABLISHED,
    ("responder", HandshakeState.IDLE, "message-1"): HandshakeState.WAIT_MESSAGE_3,
    ("responder", HandshakeState.WAIT_MESSAGE_3, "message-3"): HandshakeState.ESTABLISHED,
}


class _Parties:
    """What both sides of a handshake share: identity, validator, policy, clock, rng."""

    def __init__(
        self,
        identity: HandshakeIdentity,
        validate_peer: CredentialValidator,
        *,
        policy: SessionPolicy | None = None,
        clock: ClockS = time.time,
        rng: Callable[[int], bytes] = os.urandom,
    ) -> None:
        self.identity = identity
        self._validate = validate_peer
        self.policy = SessionPolicy() if policy is None else policy
        self._clock = clock
        self._rng = rng

    def _ephemeral(self) -> x25519.X25519PrivateKey:
        return x25519.X25519PrivateKey.from_private_bytes(self._rng(32))

    def _peer(self, name: str, credential: bytes) -> Verifier:
        try:
            return self._validate(name, credential)
        except HandshakeError:
            raise
        except AuthenticationError as exc:
            raise HandshakeError(f"credential of {name!r} rejected: {exc}") from exc

    def _sign_payload(self, context: bytes, th: bytes) -> bytes:
        name = self.identity.name.encode()
        cred = self.identity.credential
        sig = self.identity.signer.sign(_to_sign(context, th, name, cred))
        return lp16(name) + lp16(cred) + lp16(sig)

    def _open_payload(
        self, context: bytes, th: bytes, plaintext: bytes
    ) -> tuple[str, Verifier, bytes]:
        r = Reader(plaintext, HandshakeError)
        try:
            name = r.lp16().decode()
        except UnicodeDecodeError:
            raise HandshakeError("peer name is not UTF-8") from None
        cred = r.lp16()
        sig = r.lp16()
        r.end()
        verifier = self._peer(name, cred)
        try:
            verifier.verify(_to_sign(context, th, name.encode(), cred), sig)
        except AuthenticationError as exc:
            raise HandshakeError(f"{name!r} did not sign the transcript: {exc}") from None
        return name, verifier, cred


class _Handshake(_Parties):
    role: str

    def __init__(
        self,
        identity: HandshakeIdentity,
        validate_peer: CredentialValidator,
        *,
        policy: SessionPolicy | None = None,
        clock: ClockS = time.time,
        rng: Callable[[int], bytes] = os.urandom,
    ) -> None:
        super().__init__(identity, validate_peer, policy=policy, clock=clock, rng=rng)
        self.state = HandshakeState.IDLE
        self._session: Session | None = None
        self._started = 0.0

    def _next_state(self, event: str, *, remote: bool) -> HandshakeState:
        nxt = _TRANSITIONS.get((self.role, self.state, event))
        if nxt is None:
            cls = HandshakeMessageError if remote else LocalProtocolError
            raise cls(f"{self.role}: {event} is not allowed in state {self.state.value}")
        return nxt

    @property
    def session(self) -> Session:
        """The established session (after the last message: 4 for the initiator)."""
        if self._session is None or self.state is not HandshakeState.ESTABLISHED:
            raise LocalProtocolError(f"handshake not finished (state {self.state.value})")
        return self._session

    def _check_timeout(self) -> None:
        if self._clock() - self._started > self.policy.handshake_timeout:
            raise HandshakeError("handshake timed out")


def _to_sign(context: bytes, th: bytes, name: bytes, credential: bytes) -> bytes:
    return context + th + lp16(name) + lp16(credential)


def _keys(prk: bytes, label: bytes, th: bytes) -> tuple[AesGcm, bytes]:
    return (
        AesGcm(hkdf_expand(prk, b"iomt/hs/key/" + label + th, 32)),
        hkdf_expand(prk, b"iomt/hs/iv/" + label + th, 12),
    )


def _derive_session_keys(prk: bytes, th4: bytes) -> dict[str, bytes]:
    master = hkdf_expand(prk, b"iomt/session/master" + th4, 32)
    return {
        name: hkdf_expand(master, b"iomt/session/" + name.encode(), 12 if "iv" in name else 32)
        for name in ("i2r-key", "i2r-iv", "r2i-key", "r2i-iv", "exporter")
    }


def _confirmation(prk: bytes, th4: bytes) -> bytes:
    """Message 4's tag: the responder proves it derived the session (key confirmation)."""
    aead, iv = _keys(prk, b"4", th4)
    return aead.encrypt(iv, b"", th4)


def _x25519(priv: x25519.X25519PrivateKey, public: bytes) -> bytes:
    try:
        return priv.exchange(x25519.X25519PublicKey.from_public_bytes(public))
    except ValueError:  # low-order point: all-zero shared secret
        raise HandshakeError("peer ephemeral key is a low-order point") from None


def _pub(priv: x25519.X25519PrivateKey) -> bytes:
    return priv.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )


_CTX_R = b"iomt/session/v1/responder-signature"
_CTX_I = b"iomt/session/v1/initiator-signature"
_CTX_COOKIE = b"iomt/session/v1/cookie"
_MAX_COOKIE = 1024
#: an initiator's name in bytes (it travels in the cookie, which is at most _MAX_COOKIE)
MAX_INITIATOR_NAME = 255


class HandshakeInitiator(_Handshake):
    """The party that starts: ``m1 = start()``, ``m3 = receive(m2)``, ``confirm(m4)``, then
    ``.session``.

    Message 2 carries the responder's cookie (its state for this handshake, sealed under a
    key only it holds), which message 3 echoes; message 4 is the responder's key
    confirmation: without it the initiator never uses the session (a forged "OK" to
    message 3 proves nothing).
    """

    role = "initiator"

    def __init__(
        self,
        identity: HandshakeIdentity,
        validate_peer: CredentialValidator,
        *,
        policy: SessionPolicy | None = None,
        clock: ClockS = time.time,
        rng: Callable[[int], bytes] = os.urandom,
        expected_peer: str | None = None,
    ) -> None:
        super().__init__(identity, validate_peer, policy=policy, clock=clock, rng=rng)
        #: when set, a message 2 signed by anyone else is refused (state unchanged): any
        #: certified identity can answer a message 1 it read on the bus
        self.expected_peer = expected_peer

    def start(self) -> bytes:
        nxt = self._next_state("start", remote=False)
        self._cid = self._rng(_CID)
        self._eph = self._ephemeral()
        self._m1 = (
            bytes((_VERSION, _M1, SUITE_X25519_AES256GCM_SHA256)) + self._cid + _pub(self._eph)
        )
        self._started = self._clock()
        self.state = nxt
        return self._m1

    def receive(self, message: bytes) -> bytes:
        """Message 2 in, message 3 out (the session waits for message 4)."""
        nxt = self._next_state("message-2", remote=True)
        self._check_timeout()
        r = Reader(message, HandshakeMessageError)
        if r.take(2) != bytes((_VERSION, _M2)):
            raise HandshakeMessageError("not a handshake message 2")
        if r.take(_CID) != self._cid:
            raise HandshakeMessageError("message 2 is for another handshake")
        c_r = r.take(_CID)
        g_y = r.take(_POINT)
        cookie = r.lp16()
        ct2 = r.rest()
        th2 = sha256(lp32(self._m1) + self._cid + c_r + g_y)
        prk = hkdf_extract(th2, _x25519(self._eph, g_y))
        aead2, iv2 = _keys(prk, b"2", th2)
        try:
            pt2 = aead2.decrypt(iv2, ct2, th2)
        except DecryptionError:
            raise HandshakeError("message 2 does not decrypt: not our peer's ephemeral") from None
        th3 = sha256(th2 + lp32(ct2) + lp32(pt2))
        peer_name, peer_verifier, peer_cred = self._open_payload(_CTX_R, th2, pt2)
        if self.expected_peer is not None and peer_name != self.expected_peer:
            raise HandshakeError(f"message 2 is from {peer_name!r}, not {self.expected_peer!r}")
        aead3, iv3 = _keys(prk, b"3", th3)
        pt3 = self._sign_payload(_CTX_I, th3)
        ct3 = aead3.encrypt(iv3, pt3, th3)
        m3 = bytes((_VERSION, _M3)) + c_r + lp16(cookie) + ct3
        th4 = sha256(th3 + lp32(ct3) + lp32(pt3))
        keys = _derive_session_keys(prk, th4)
        self._session = Session(
            local_id=self._cid,
            peer_id=c_r,
            peer_name=peer_name,
            peer_verifier=peer_verifier,
            peer_credential=peer_cred,
            send=(keys["i2r-key"], keys["i2r-iv"]),
            receive=(keys["r2i-key"], keys["r2i-iv"]),
            exporter=keys["exporter"],
            policy=self.policy,
            clock=self._clock,
        )
        self._expect4 = _confirmation(prk, th4)
        self.state = nxt
        del self._eph
        return m3

    @property
    def pending_session(self) -> Session:
        """The session message 2 established, before the responder confirmed it."""
        if self._session is None:
            raise LocalProtocolError(f"no message 2 yet (state {self.state.value})")
        return self._session

    def confirm(self, message: bytes) -> Session:
        """Message 4: the responder holds the session too. Returns it."""
        nxt = self._next_state("message-4", remote=True)
        r = Reader(message, HandshakeMessageError)
        if r.take(2) != bytes((_VERSION, _M4)):
            raise HandshakeMessageError("not a handshake message 4")
        if r.take(_CID) != self._cid:
            raise HandshakeMessageError("message 4 is for another handshake")
        tag = r.take(_TAG)
        r.end()
        if not hmac.compare_digest(tag, self._expect4):
            raise HandshakeError("message 4 does not confirm the session")
        self.state = nxt
        return self.session


class CookieJar:
    """The responder's rotating secret for stateless handshake cookies.

    A cookie is the responder's state for one handshake (both connection ids, the
    handshake secret, the transcript hash, when it started, whom it answered), sealed with
    AES-GCM under the key of the current epoch; keys are random, made when an epoch is
    first used, and forgotten two epochs later -- so a cookie expires by key as well as by
    its timestamp, and a leaked key exposes at most two epochs of handshakes (as TLS
    session-ticket keys). Nothing but the responder can read or make one.
    """

    def __init__(
        self,
        *,
        period: float = 30.0,
        clock: ClockS = time.time,
        rng: Callable[[int], bytes] = os.urandom,
    ) -> None:
        if period <= 0:
            raise ValueError("the cookie key period must be positive")
        self.period = period
        self._clock = clock
        self._rng = rng
        self._keys: dict[int, AesGcm] = {}
        self._lock = threading.Lock()

    def _epoch(self) -> int:
        return int(self._clock() // self.period) & 0xFFFFFFFF

    def _key(self, epoch: int, *, create: bool) -> AesGcm | None:
        with self._lock:
            key = self._keys.get(epoch)
            if key is None and create:
                key = self._keys[epoch] = AesGcm(self._rng(32))
                for old in [e for e in self._keys if (epoch - e) & 0xFFFFFFFF > 1]:
                    del self._keys[old]
            return key

    def seal(self, plaintext: bytes, aad: bytes) -> bytes:
        epoch = self._epoch()
        key = self._key(epoch, create=True)
        assert key is not None
        nonce = self._rng(12)
        head = u32(epoch)
        return head + nonce + key.encrypt(nonce, plaintext, _CTX_COOKIE + head + aad)

    def open(self, cookie: bytes, aad: bytes) -> bytes:
        r = Reader(cookie, HandshakeMessageError)
        head = r.take(4)
        nonce = r.take(12)
        sealed = r.rest()
        epoch = int.from_bytes(head, "big")
        if (self._epoch() - epoch) & 0xFFFFFFFF > 1:
            raise HandshakeError("handshake cookie expired (its key is gone)")
        key = self._key(epoch, create=False)
        if key is None:
            raise HandshakeError("handshake cookie from an unknown key")
        try:
            return key.decrypt(nonce, sealed, _CTX_COOKIE + head + aad)
        except DecryptionError:
            raise HandshakeError("handshake cookie does not authenticate") from None


class StatelessResponder(_Parties):
    """The responder, keeping nothing between message 1 and message 3.

    ``answer(m1)`` computes message 2 and puts everything message 3 will need into a
    cookie (:class:`CookieJar`) inside it; ``complete(m3)`` takes the state back out of the
    echoed cookie. An initiator that never sends message 3 -- because it cannot read
    message 2, or is only flooding starts -- costs the responder one key exchange and one
    signature and leaves no entry behind (DTLS HelloVerifyRequest and IKEv2's COOKIE keep
    the responder stateless the same way; here the cookie rides on message 2 itself).
    ``initiator`` names who asked as the transport carries it; the cookie binds it, so a
    message 3 is accepted only under the same name. Replays of a complete message 3 are
    the caller's to refuse (:class:`iomt.core.channels.ChannelTable` remembers completed
    connection ids until their cookies expire).
    """

    def __init__(
        self,
        identity: HandshakeIdentity,
        validate_peer: CredentialValidator,
        *,
        policy: SessionPolicy | None = None,
        clock: ClockS = time.time,
        rng: Callable[[int], bytes] = os.urandom,
        cookies: CookieJar | None = None,
    ) -> None:
        super().__init__(identity, validate_peer, policy=policy, clock=clock, rng=rng)
        self.cookies = cookies or CookieJar(
            period=self.policy.handshake_timeout, clock=clock, rng=rng
        )

    def answer(self, message: bytes, initiator: str = "") -> bytes:
        """Message 1 in, message 2 (carrying the cookie) out."""
        r = Reader(message, HandshakeMessageError)
        if r.take(2) != bytes((_VERSION, _M1)):
            raise HandshakeMessageError("not a handshake message 1")
        suite = r.u8()
        if suite != SUITE_X25519_AES256GCM_SHA256:
            raise HandshakeMessageError(f"unsupported cipher suite {suite}")
        c_i = r.take(_CID)
        g_x = r.take(_POINT)
        r.end()
        try:
            name = initiator.encode()
        except UnicodeEncodeError:
            raise HandshakeMessageError("initiator name cannot be carried") from None
        if len(name) > MAX_INITIATOR_NAME:
            # the cookie carries it: a longer one could not come back in message 3
            raise HandshakeMessageError(
                f"initiator name of {len(name)} bytes (at most {MAX_INITIATOR_NAME})"
            )
        c_r = self._rng(_CID)
        eph = self._ephemeral()
        g_y = _pub(eph)
        th2 = sha256(lp32(message) + c_i + c_r + g_y)
        prk = hkdf_extract(th2, _x25519(eph, g_x))
        aead2, iv2 = _keys(prk, b"2", th2)
        pt2 = self._sign_payload(_CTX_R, th2)
        ct2 = aead2.encrypt(iv2, pt2, th2)
        th3 = sha256(th2 + lp32(ct2) + lp32(pt2))
        started_ms = round(self._clock() * 1000)
        state = u64(started_ms) + lp16(name) + c_i + prk + th3
        cookie = self.cookies.seal(state, c_r)
        return bytes((_VERSION, _M2)) + c_i + c_r + g_y + lp16(cookie) + ct2

    def complete(self, message: bytes, initiator: str = "") -> tuple[Session, bytes]:
        """Message 3 (with the echoed cookie) in: the session, and message 4 to send."""
        r = Reader(message, HandshakeMessageError)
        if r.take(2) != bytes((_VERSION, _M3)):
            raise HandshakeMessageError("not a handshake message 3")
        c_r = r.take(_CID)
        cookie = r.lp16()
        if len(cookie) > _MAX_COOKIE:
            raise HandshakeMessageError("handshake cookie too long")
        ct3 = r.rest()
        state = Reader(self.cookies.open(cookie, c_r), HandshakeError)
        started = state.u64() / 1000
        name = state.lp16()
        c_i = state.take(_CID)
        prk = state.take(32)
        th3 = state.take(32)
        state.end()
        if self._clock() - started > self.policy.handshake_timeout:
            raise HandshakeError("handshake timed out")
        if name != initiator.encode():
            raise HandshakeError("message 3 comes under another name than message 1")
        aead3, iv3 = _keys(prk, b"3", th3)
        try:
            pt3 = aead3.decrypt(iv3, ct3, th3)
        except DecryptionError:
            raise HandshakeError("message 3 does not decrypt") from None
        peer_name, peer_verifier, peer_cred = self._open_payload(_CTX_I, th3, pt3)
        th4 = sha256(th3 + lp32(ct3) + lp32(pt3))
        keys = _derive_session_keys(prk, th4)
        session = Session(
            local_id=c_r,
            peer_id=c_i,
            peer_name=peer_name,
            peer_verifier=peer_verifier,
            peer_credential=peer_cred,
            send=(keys["r2i-key"], keys["r2i-iv"]),
            receive=(keys["i2r-key"], keys["i2r-iv"]),
            exporter=keys["exporter"],
            policy=self.policy,
            clock=self._clock,
        )
        m4 = bytes((_VERSION, _M4)) + c_i + _confirmation(prk, th4)
        return session, m4


class HandshakeResponder(_Handshake):
    """One responder handshake as a state machine: ``m2 = receive(m1)``,
    ``m4 = receive(m3)``, then ``.session`` -- a :class:`StatelessResponder` with its own
    cookie key, for two parties that talk directly (tests, benchmarks). A party answering
    many initiators uses the stateless responder (:class:`iomt.core.channels.ChannelTable`).
    """

    role = "responder"

    def __init__(
        self,
        identity: HandshakeIdentity,
        validate_peer: CredentialValidator,
        *,
        policy: SessionPolicy | None = None,
        clock: ClockS = time.time,
        rng: Callable[[int], bytes] = os.urandom,
    ) -> None:
        super().__init__(identity, validate_peer, policy=policy, clock=clock, rng=rng)
        self._core = StatelessResponder(
            identity, validate_peer, policy=self.policy, clock=clock, rng=rng
        )

    def receive(self, message: bytes) -> bytes:
        """Feed m1 (returns m2) or m3 (returns m4; ``.session`` is then ready)."""
        if self.state is HandshakeState.IDLE:
            nxt = self._next_state("message-1", remote=True)
            m2 = self._core.answer(message)
            self._c_r = m2[2 + _CID : 2 + 2 * _CID]
            self._started = self._clock()
            self.state = nxt
            return m2
        nxt = self._next_state("message-3", remote=True)
        if len(message) < 2 + _CID or message[2 : 2 + _CID] != self._c_r:
            raise HandshakeMessageError("message 3 is for another handshake")
        self._check_timeout()
        session, m4 = self._core.complete(message)
        self._session = session
        self.state = nxt
        return m4
