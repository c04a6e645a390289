"""The wallet's per-device access tokens: CWT (RFC 8392) with proof of possession (RFC 8747).

Bilal & Hassan's wallet answers a provider's "Generate Token" request (Alg. 1.1-1.2) with
one token per patient device, and the device's listener accepts a data request only if
``isValid(token)`` (Alg. 1.4, 2.2). Here a token is a COSE_Sign1-signed CWT::

    iss  the wallet            sub  the provider (requester)     aud  the device URI
    exp / nbf / iat            cti  unique token id (16 random bytes)
    cnf  {1: COSE_Key}         the requester's public key (RFC 8747 proof of possession)
    scope                      space-separated, e.g. "read:vitals"
    -65600 (private)           single-use flag

and ``isValid`` is ``TokenVerifier.verify``, which rejects — each with its own
:class:`~iomt.crypto.errors.TokenError` subclass — malformed tokens, unknown issuers, bad
signatures, expired / not-yet-valid tokens, the wrong audience, revoked tokens (by ``cti``,
subject or confirmation key), replays (a single-use ``cti`` or a proof nonce seen before)
and presenters who cannot prove possession of the ``cnf`` key. A stolen token is useless
without the requester's private key: the presenter signs ``challenge || nonce || request
digest || token digest`` with it (``make_proof``) and the verifier checks that signature
with the key inside the token.

COSE encoding and the Sig_structure are done by the ``cwt`` package; before handing bytes
to it we check the outer structure ourselves (exactly one COSE_Sign1, a claims map inside),
because ``cwt.decode`` returns an *untagged* claims map without verifying anything.
Time comes from an injected clock so tests and simulations control expiry.
"""

from __future__ import annotations

import io
import math
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import cbor2
import cwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from iomt.clock import ClockS
from iomt.crypto.encoding import Reader, lp16, lp32
from iomt.crypto.errors import (
    InvalidSignatureError,
    KeyFormatError,
    TokenAudienceError,
    TokenExpiredError,
    TokenIssuerError,
    TokenMalformedError,
    TokenNotYetValidError,
    TokenProofError,
    TokenReplayedError,
    TokenRevokedError,
    TokenScopeError,
    TokenSignatureError,
)
from iomt.crypto.primitives import sha256
from iomt.crypto.revocation import RevocationList
from iomt.crypto.signing import (
    EcdsaP256Signer,
    EcdsaP256Verifier,
    Ed25519Signer,
    Ed25519Verifier,
    Signer,
    Verifier,
)

__all__ = [
    "ReplayCache",
    "TokenClaims",
    "TokenIssuer",
    "TokenVerifier",
    "make_proof",
]


# CWT claim keys (RFC 8392 §4, RFC 8747 §3.1, RFC 9200 §5.10 for scope)
ISS, SUB, AUD, EXP, NBF, IAT, CTI, CNF, SCOPE = 1, 2, 3, 4, 5, 6, 7, 8, 9
SINGLE_USE = -65600  # private claim (< -65536 per the CWT registry rules)
_COSE_SIGN1_TAG = 18
_CWT_TAG = 61
_MAX_TOKEN_SIZE = 4096
_PROOF_VERSION = b"\x01"
_PROOF_CONTEXT = b"iomt/token-pop/v1"


# --- COSE_Key conversion -------------------------------------------------------------


def _ec_xy(key: ec.EllipticCurvePublicKey) -> tuple[bytes, bytes]:
    nums = key.public_numbers()
    return nums.x.to_bytes(32, "big"), nums.y.to_bytes(32, "big")


def _cose_public(verifier: Verifier) -> dict[int, Any]:
    """RFC 9053 COSE_Key of a public key (for ``cnf``)."""
    if isinstance(verifier, Ed25519Verifier):
        return {1: 1, -1: 6, -2: verifier.public_bytes()}
    if isinstance(verifier, EcdsaP256Verifier):
        x, y = _ec_xy(verifier.raw)
        return {1: 2, -1: 1, -2: x, -3: y}
    raise KeyFormatError(f"{verifier.algorithm} keys cannot be CWT confirmation keys")


def _verifier_from_cose(key: object) -> Verifier:
    if not isinstance(key, dict):
        raise TokenMalformedError("cnf COSE_Key is not a map")
    kty, crv = key.get(1), key.get(-1)
    try:
        if kty == 1 and crv == 6:
            x = key.get(-2)
            if not isinstance(x, bytes):
                raise TokenMalformedError("cnf OKP key without x")
            return Ed25519Verifier.from_public_bytes(x)
        if kty == 2 and crv == 1:
            x, y = key.get(-2), key.get(-3)
            if not (isinstance(x, bytes) and isinstance(y, bytes) and len(x) == len(y) == 32):
                raise TokenMalformedError("cnf EC2 key without 32-byte x and y")
            return EcdsaP256Verifier.from_public_bytes(b"\x04" + x + y)
    except KeyFormatError as exc:
        raise TokenMalformedError(f"cnf key is not a valid public key: {exc}") from None
    raise TokenMalformedError(f"unsupported cnf key type kty={kty!r} crv={crv!r}")


def _cose_signing_key(signer: Signer, kid: bytes) -> Any:
    if isinstance(signer, Ed25519Signer):
        d = signer.raw.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        params = {1: 1, -1: 6, -2: signer.verifier().public_bytes(), -4: d, 3: -8, 2: kid}
    elif isinstance(signer, EcdsaP256Signer):
        x, y = _ec_xy(signer.raw.public_key())
        d = signer.raw.private_numbers().private_value.to_bytes(32, "big")
        params = {1: 2, -1: 1, -2: x, -3: y, -4: d, 3: -7, 2: kid}
    else:
        raise KeyFormatError(f"{signer.algorithm} cannot sign CWTs (use ed25519 or ecdsa-p256)")
    return cwt.COSEKey.new(params)


def _cose_verify_key(verifier: Verifier, kid: bytes) -> Any:
    params = _cose_public(verifier)
    params[3] = -8 if isinstance(verifier, Ed25519Verifier) else -7
    if kid:
        params[2] = kid
    return cwt.COSEKey.new(params)


# --- claims --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TokenClaims:
    """A verified token's claims."""

    issuer: str
    subject: str
    audience: str
    scope: frozenset[str]
    issued_at: float
    not_before: float
    expires_at: float
    token_id: bytes
    confirmation: Verifier
    single_use: bool

    def require_scope(self, scope: str) -> None:
        if scope not in self.scope:
            raise TokenScopeError(f"token grants {sorted(self.scope)}, not {scope!r}")


class TokenIssuer:
    """Signs access tokens (the wallet's side of Alg. 1.2)."""

    def __init__(
        self,
        issuer: str,
        signer: Signer,
        *,
        clock: ClockS = time.time,
        rng: Callable[[int], bytes] = os.urandom,
    ) -> None:
        self.issuer = issuer
        self._signer = signer
        self._key = _cose_signing_key(signer, issuer.encode())
        self._ctx = cwt.CWT.new()
        self._clock = clock
        self._rng = rng

    def verifier(self) -> Verifier:
        """The public key devices must trust for this issuer."""
        return self._signer.verifier()

    def issue(
        self,
        audience: str,
        subject: str,
        scope: str | Iterable[str],
        confirmation_key: Verifier,
        lifetime: float,
        *,
        single_use: bool = False,
        not_before: float | None = None,
    ) -> bytes:
        if lifetime <= 0:
            raise ValueError("token lifetime must be positive")
        scopes = scope.split() if isinstance(scope, str) else list(scope)
        if not scopes or any(not s or " " in s for s in scopes):
            raise ValueError("scope must be one or more non-empty words")
        now = self._clock()
        claims: dict[int, Any] = {
            ISS: self.issuer,
            SUB: subject,
            AUD: audience,
            EXP: math.ceil(now + lifetime),
            NBF: math.floor(now if not_before is None else not_before),
            IAT: math.floor(now),
            CTI: self._rng(16),
            CNF: {1: _cose_public(confirmation_key)},
            SCOPE: " ".join(scopes),
        }
        if single_use:
            claims[SINGLE_USE] = True
        return bytes(self._ctx.encode_and_sign(claims, self._key))


# --- proof of possession -------------------------------------------------------------


def _pop_message(token: bytes, challenge: bytes, nonce: bytes, request: bytes) -> bytes:
    return (
        _PROOF_CONTEXT + lp32(sha256(token)) + lp32(challenge) + lp32(nonce) + lp32(sha256(request))
    )


def make_proof(
    token: bytes,
    key: Signer,
    *,
    challenge: bytes,
    request: bytes = b"",
    nonce: bytes | None = None,
) -> bytes:
    """The presenter's proof: a signature with the ``cnf`` private key over the token,
    the verifier's challenge, a fresh nonce and the request it authorizes."""
    nonce = os.urandom(16) if nonce is None else nonce
    sig = key.sign(_pop_message(token, challenge, nonce, request))
    return _PROOF_VERSION + lp16(nonce) + lp16(sig)


class ReplayCache:
    """Seen single-use token ids and proof nonces, each kept until its token expires.

    Fails closed: if ``capacity`` live entries are held, new presentations are refused.
    """

    def __init__(self, capacity: int = 100_000) -> None:
        self._capacity = capacity
        self._seen: dict[bytes, float] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._seen)

    def add(self, key: bytes, *, until: float, now: float) -> bool:
        """Record ``key``; False if it was already recorded and has not expired."""
        with self._lock:
            expiry = self._seen.get(key)
            if expiry is not None and expiry >= now:
                return False
            if len(self._seen) >= self._capacity:
                self._seen = {k: v for k, v in self._seen.items() if v >= now}
                if len(self._seen) >= self._capacity:
                    raise TokenReplayedError("replay cache full; refusing until entries expire")
            self._seen[key] = until
            return True


# --- verification --------------------------------------------------------------------


class TokenVerifier:
    """The device side (Alg. 1.4 / 2.2 ``isValid``): every rejection is a typed TokenError."""

    def __init__(
        self,
        issuers: Mapping[str, Verifier],
        *,
        clock: ClockS = time.time,
        leeway: float = 0.0,
        revocations: RevocationList | None = None,
        replay_cache: ReplayCache | None = None,
        key_ids: Mapping[str, bytes] | None = None,
    ) -> None:
        """``issuers`` maps each trusted issuer (``iss``) to its public key; ``key_ids``
        overrides the COSE ``kid`` expected from an issuer (default: the issuer name,
        which is what ``TokenIssuer`` writes)."""
        self._issuers = dict(issuers)
        self._kids = {iss: iss.encode() for iss in self._issuers} | dict(key_ids or {})
        self._clock = clock
        self._leeway = leeway
        self._revocations = revocations
        self._replays = ReplayCache() if replay_cache is None else replay_cache
        self._ctx = cwt.CWT.new()
        self._keys: dict[tuple[str, bytes], Any] = {}

    def decode(self, token: bytes) -> dict[int, Any]:
        """Signature-checked claims of a token from a trusted issuer, with no policy checks.

        For inspection and tooling; ``verify`` is the acceptance check.
        """
        if not isinstance(token, bytes) or not 0 < len(token) <= _MAX_TOKEN_SIZE:
            raise TokenMalformedError("token must be 1..4096 bytes")
        kid, claims = _peek(token)
        iss = claims.get(ISS)
        if not isinstance(iss, str):
            raise TokenMalformedError("iss claim missing or not text")
        issuer_key = self._issuers.get(iss)
        if issuer_key is None:
            raise TokenIssuerError(f"issuer {iss!r} is not trusted here")
        # kid sits in the unprotected header: pin it, or flipped kid bytes would pass.
        if kid != self._kids[iss]:
            raise TokenMalformedError(f"key id {kid!r} is not the key id of issuer {iss!r}")
        cose_key = self._keys.get((iss, kid))
        if cose_key is None:
            try:
                cose_key = _cose_verify_key(issuer_key, kid)
            except KeyFormatError as exc:
                raise TokenIssuerError(f"issuer {iss!r} has no CWT-capable key: {exc}") from None
            self._keys[(iss, kid)] = cose_key
        try:
            verified = self._ctx.decode(token, cose_key, no_verify=True)
        except cwt.VerifyError:
            raise TokenSignatureError("COSE_Sign1 signature does not verify") from None
        except Exception as exc:  # cwt raises ValueError/KeyError/UnboundLocalError on junk
            raise TokenMalformedError(f"not a valid COSE_Sign1 CWT: {type(exc).__name__}") from None
        if verified != claims:
            raise TokenMalformedError("claims differ between parses")
        return claims

    def verify(
        self,
        token: bytes,
        *,
        audience: str,
        proof: bytes,
        challenge: bytes,
        request: bytes = b"",
        scope: str | None = None,
    ) -> TokenClaims:
        """Accept a token presented with a proof-of-possession signature (RFC 8747)."""
        claims, now, until = self._accept(token, audience)
        nonce = _check_proof(token, proof, claims.confirmation, challenge, request)
        self._spend(claims, now, until)
        if not self._replays.add(b"pop:" + claims.token_id + nonce, until=until, now=now):
            raise TokenReplayedError("proof nonce already seen for this token")
        if scope is not None:
            claims.require_scope(scope)
        return claims

    def verify_holder(
        self, token: bytes, *, audience: str, holder: Verifier, scope: str | None = None
    ) -> TokenClaims:
        """Accept a token presented over a channel that already authenticated ``holder``'s
        key (an iomt session handshake), the way ACE binds PoP to an EDHOC/TLS channel:
        the token's ``cnf`` key must be exactly the channel peer's key. Replay protection
        of the individual requests is the channel's (the session's replay window)."""
        claims, now, until = self._accept(token, audience)
        if claims.confirmation != holder:
            raise TokenProofError("token is bound to another key than the channel's peer")
        self._spend(claims, now, until)
        if scope is not None:
            claims.require_scope(scope)
        return claims

    def _accept(self, token: bytes, audience: str) -> tuple[TokenClaims, float, float]:
        raw = self.decode(token)
        # Validity window and audience first: they decide whether the token counts at all.
        now = self._clock()
        expires_at, not_before = _number(raw, EXP, "exp"), _number(raw, NBF, "nbf")
        if now >= expires_at + self._leeway:
            raise TokenExpiredError(f"token expired at {expires_at:.0f}, now {now:.0f}")
        if now < not_before - self._leeway:
            raise TokenNotYetValidError(f"token valid from {not_before:.0f}, now {now:.0f}")
        aud = _text(raw, AUD, "aud")
        if aud != audience:
            raise TokenAudienceError(f"token is for {aud!r}, not {audience!r}")
        claims = _typed_claims(raw)
        rev = self._revocations
        if rev is not None and (
            rev.is_token_revoked(claims.token_id)
            or rev.is_identity_revoked(claims.subject)
            or rev.is_key_revoked(claims.confirmation.fingerprint())
        ):
            raise TokenRevokedError(f"token {claims.token_id.hex()} or its holder is revoked")
        return claims, now, claims.expires_at + self._leeway

    def _spend(self, claims: TokenClaims, now: float, until: float) -> None:
        if claims.single_use and not self._replays.add(
            b"cti:" + claims.token_id, until=until, now=now
        ):
            raise TokenReplayedError(f"single-use token {claims.token_id.hex()} was already used")


def _peek(token: bytes) -> tuple[bytes, dict[int, Any]]:
    """Structural check: one COSE_Sign1 (optionally CWT-tagged) whose payload is a map."""
    try:
        stream = io.BytesIO(token)
        outer = cbor2.CBORDecoder(stream).decode()
        if stream.tell() != len(token):
            raise TokenMalformedError("trailing bytes after the COSE message")
        if isinstance(outer, cbor2.CBORTag) and outer.tag == _CWT_TAG:
            outer = outer.value
        if not isinstance(outer, cbor2.CBORTag) or outer.tag != _COSE_SIGN1_TAG:
            raise TokenMalformedError("not a COSE_Sign1 message")
        value = outer.value
        if not isinstance(value, list) or len(value) != 4:
            raise TokenMalformedError("COSE_Sign1 is not a 4-element array")
        protected, unprotected, payload, signature = value
        if not all(isinstance(x, bytes) for x in (protected, payload, signature)):
            raise TokenMalformedError("COSE_Sign1 fields have the wrong types")
        if not isinstance(unprotected, dict):
            raise TokenMalformedError("COSE_Sign1 unprotected header is not a map")
        prot = cbor2.loads(protected) if protected else {}
        claims = cbor2.loads(payload)
    except TokenMalformedError:
        raise
    except Exception as exc:  # cbor2 raises several types on junk
        raise TokenMalformedError(f"not CBOR: {type(exc).__name__}") from None
    if not isinstance(prot, dict) or not isinstance(claims, dict):
        raise TokenMalformedError("protected header or claims are not maps")
    kid = prot.get(4, unprotected.get(4, b""))
    if not isinstance(kid, bytes):
        raise TokenMalformedError("kid is not a byte string")
    return kid, claims


def _text(raw: Mapping[int, Any], key: int, name: str) -> str:
    v = raw.get(key)
    if not isinstance(v, str):
        raise TokenMalformedError(f"{name} claim missing or not text")
    return v


def _number(raw: Mapping[int, Any], key: int, name: str) -> float:
    v = raw.get(key)
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise TokenMalformedError(f"{name} claim missing or not a finite number")
    return float(v)


def _typed_claims(raw: Mapping[int, Any]) -> TokenClaims:
    cti = raw.get(CTI)
    if not isinstance(cti, bytes) or not cti:
        raise TokenMalformedError("cti claim missing or not bytes")
    cnf = raw.get(CNF)
    if not isinstance(cnf, dict) or 1 not in cnf:
        raise TokenMalformedError("cnf claim missing or not a COSE_Key confirmation")
    single = raw.get(SINGLE_USE, False)
    if not isinstance(single, bool):
        raise TokenMalformedError("single-use claim is not a boolean")
    scope = _text(raw, SCOPE, "scope")
    return TokenClaims(
        issuer=_text(raw, ISS, "iss"),
        subject=_text(raw, SUB, "sub"),
        audience=_text(raw, AUD, "aud"),
        scope=frozenset(scope.split()),
        issued_at=_number(raw, IAT, "iat"),
        not_before=_number(raw, NBF, "nbf"),
        expires_at=_number(raw, EXP, "exp"),
        token_id=cti,
        confirmation=_verifier_from_cose(cnf[1]),
        single_use=single,
    )


def _check_proof(
    token: bytes, proof: bytes, key: Verifier, challenge: bytes, request: bytes
) -> bytes:
    r = Reader(proof, TokenProofError)
    if r.take(1) != _PROOF_VERSION:
        raise TokenProofError("unknown proof version")
    nonce = r.lp16()
    sig = r.lp16()
    r.end()
    if not 8 <= len(nonce) <= 64:
        raise TokenProofError("proof nonce must be 8..64 bytes")
    try:
        key.verify(_pop_message(token, challenge, nonce, request), sig)
    except InvalidSignatureError:
        raise TokenProofError("presenter did not prove possession of the cnf key") from None
    return nonce
