"""Listener (Bilal & Hassan, Alg. 2.2): validate the token, then share, convert or refuse.

    ShareData(Token, Message):
        if Token is valid:
            if Message.ST == Device.ST:  share the encrypted data
            else: for each registered device d: Conversion(Message, Token, Data)
        else: invalid token

What "valid" means here: the token is a CWT signed by the patient's wallet, for this
device (aud), unexpired, not revoked, granting ``vitals:read``, and presented by the key it
is bound to (cnf) — proven either by the session the request arrived on (the session's
handshake authenticated the requester's certificate key, and its replay window rejects
replays) or by a proof-of-possession signature over the request with a fresh nonce.
A verified token is cached until it expires, so a session's later requests cost no
signature verification at all.

"Device.ST" is read as everything the device can apply itself (its capability class):
a device never asks a neighbour to do what it can do; only what it cannot is converted.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from enum import Enum

from iomt.clock import ClockS
from iomt.crypto.encoding import lp32
from iomt.crypto.errors import SessionReplayError, TokenError, TokenReplayedError
from iomt.crypto.sessions import Session
from iomt.crypto.signing import Verifier
from iomt.crypto.techniques import TECHNIQUE_NAMES
from iomt.crypto.tokens import TokenClaims, TokenVerifier
from iomt.errors import AuthenticationError, AuthorizationError, RemoteProtocolError

SCOPE = "vitals:read"
PROOF_SESSION = "session"
PROOF_POP = "pop"
_CONTEXT = b"iomt/data-request/v1"


@dataclass(frozen=True, slots=True)
class DataRequest:
    """The core's view of a DataShare request (Alg. 1.3 / 1.4)."""

    request_id: str
    requester_uri: str
    technique: str
    token: bytes
    nonce: bytes
    proof_type: str
    proof: bytes
    requester_key: bytes

    def bound_bytes(self) -> bytes:
        """What the proof covers: every field but the proof itself."""
        return _CONTEXT + b"".join(
            lp32(p)
            for p in (
                self.request_id.encode(),
                self.requester_uri.encode(),
                self.technique.encode(),
                self.token,
                self.nonce,
                self.proof_type.encode(),
                self.requester_key,
            )
        )


class Outcome(Enum):
    SHARE = "share"
    CONVERT = "convert"
    REFUSE = "refuse"


@dataclass(frozen=True, slots=True)
class Decision:
    outcome: Outcome
    reason: str = ""
    claims: TokenClaims | None = None
    session: Session | None = None
    #: the request repeats one already received (session window, proof nonce): the
    #: original has its answer, so this refusal must not be proven as an answer to it
    replay: bool = False
    #: a refusal's code (``reason`` is ``"<code>: <detail>"``, what the wire carries)
    refusal: Refusal | None = field(default=None, compare=False)

    @classmethod
    def refuse(
        cls,
        code: Refusal,
        detail: str,
        claims: TokenClaims | None = None,
        session: Session | None = None,
        *,
        replay: bool = False,
    ) -> Decision:
        return cls(Outcome.REFUSE, f"{code.value}: {detail}", claims, session, replay, code)

    @property
    def detail(self) -> str:
        """A refusal's reason without its code."""
        return self.reason.split(": ", 1)[1] if self.refusal is not None else self.reason


class Refusal(Enum):
    """Why a request was refused: stable codes for reports."""

    INVALID_TOKEN = "invalid-token"  # noqa: S105 - a reason code, not a secret
    NOT_AUTHORIZED = "not-authorized"
    BAD_PROOF = "bad-proof"
    UNKNOWN_TECHNIQUE = "unknown-technique"
    NO_CONVERTER = "no-capable-neighbour"
    CONVERSION_FAILED = "conversion-failed"
    MALFORMED = "malformed-request"
    NO_DATA = "no-data"

    @classmethod
    def of(cls, reason: str) -> Refusal | None:
        """The code a refusal's reason starts with (``"<code>"`` or ``"<code>: ..."``)."""
        code = reason.split(":", 1)[0]
        try:
            return cls(code)
        except ValueError:
            return None


class Listener:
    def __init__(
        self,
        device_uri: str,
        applicable: frozenset[str],
        verifier: TokenVerifier,
        *,
        clock: ClockS = time.time,
        cache_size: int = 4096,
    ) -> None:
        self.device_uri = device_uri
        self.applicable = applicable
        self._verifier = verifier
        self._clock = clock
        self._cache: dict[tuple[bytes, bytes], TokenClaims] = {}
        self._cache_size = cache_size

    def decide(  # noqa: PLR0911  (Alg. 2.2: one decision per way a request ends)
        self, request: DataRequest, session: Session | None
    ) -> Decision:
        """Alg. 2.2. ``session`` is the channel the request's proof claims to be on."""
        try:
            claims = self._authenticate(request, session)
        except TokenReplayedError as exc:
            return Decision.refuse(Refusal.INVALID_TOKEN, str(exc), replay=True)
        except SessionReplayError as exc:
            return Decision.refuse(Refusal.BAD_PROOF, str(exc), replay=True)
        except TokenError as exc:
            return Decision.refuse(Refusal.INVALID_TOKEN, str(exc))
        except AuthorizationError as exc:
            return Decision.refuse(Refusal.NOT_AUTHORIZED, str(exc))
        except (AuthenticationError, RemoteProtocolError) as exc:
            return Decision.refuse(Refusal.BAD_PROOF, str(exc))
        if request.technique not in TECHNIQUE_NAMES:
            return Decision.refuse(
                Refusal.UNKNOWN_TECHNIQUE, repr(request.technique), claims, session
            )
        if request.technique in self.applicable:
            return Decision(Outcome.SHARE, "", claims, session)
        return Decision(
            Outcome.CONVERT, f"{request.technique} not applicable here", claims, session
        )

    def _authenticate(self, request: DataRequest, session: Session | None) -> TokenClaims:
        if request.proof_type == PROOF_SESSION:
            if session is None:
                raise AuthenticationError("no session for this request")
            if session.peer_name != name_of(request.requester_uri):
                raise AuthenticationError(
                    f"session is with {session.peer_name}, request claims {request.requester_uri}"
                )
            # The AEAD tag over the request proves the session keys (and so the
            # requester's certificate key); the session's window rejects replays.
            if session.unprotect(request.proof, aad=request.bound_bytes()) != b"":
                raise AuthenticationError("session proof carries unexpected content")
            return self._token_for(request.token, session.peer_verifier)
        if request.proof_type == PROOF_POP:
            claims = self._verifier.verify(
                request.token,
                audience=self.device_uri,
                proof=request.proof,
                challenge=request.nonce,
                request=request.bound_bytes(),
                scope=SCOPE,
            )
            return claims
        raise RemoteProtocolError(f"unknown proof type {request.proof_type!r}")

    def _token_for(self, token: bytes, holder: Verifier) -> TokenClaims:
        key = (hashlib.sha256(token).digest(), holder.public_bytes())
        claims = self._cache.get(key)
        now = self._clock()
        if claims is not None and now < claims.expires_at:
            return claims
        claims = self._verifier.verify_holder(
            token, audience=self.device_uri, holder=holder, scope=SCOPE
        )
        if len(self._cache) >= self._cache_size:
            self._cache.clear()
        self._cache[key] = claims
        return claims

    def forget_tokens(self) -> None:
        """Drop cached verifications (after a revocation list update)."""
        self._cache.clear()


def name_of(uri: str) -> str:
    """The keystore identity name of an ``iomt://<facility>/<name>`` URI."""
    return uri.rstrip("/").rsplit("/", 1)[-1]
