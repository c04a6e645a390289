"""Handshaking (Bilal & Hassan, Alg. 1 to 1.2): a provider obtains device info and tokens.

    RequestDeviceInfo(PK, URI) -> Request(URI, PK, "Generate Token"):
        if isValid(PK): for each D in MyIoMTs: DeviceInfo.Token = D.GenerateToken()

The paper's ``isValid(PK)`` becomes what a security engineer would sign off on:

* the provider presents its X.509 certificate from the facility CA (the paper's PK) and
  signs the request — wallet URI, its own URI, certificate, scopes and a fresh nonce —
  with the certified key: proof of possession, bound to this wallet, never replayable
  (the wallet remembers nonces until they expire);
* the certificate must chain to the CA, be in its validity period, unrevoked, and name
  the provider (CN);
* the patient's consent must list that provider for every requested scope.

The answer lists every device of the patient with its URI, security technique, kind,
certificate and a token: a CWT for that device (aud), bound to the provider's key (cnf),
short-lived. The provider checks each device certificate before using it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

from iomt.clock import ClockS
from iomt.core.listener import SCOPE, name_of
from iomt.crypto.encoding import lp32, u32
from iomt.crypto.signing import Signer, Verifier
from iomt.crypto.tokens import ReplayCache, TokenIssuer
from iomt.errors import AuthenticationError, AuthorizationError, RemoteProtocolError

_CONTEXT = b"iomt/device-info-request/v1"
NONCE_WINDOW_S = 300.0


class RequestReplayedError(AuthenticationError):
    """A token request whose nonce the wallet has seen: its original has its answer."""


@dataclass(frozen=True, slots=True)
class TokenRequest:
    """The core's view of a DeviceInfoRequest request (Alg. 1.1)."""

    wallet_uri: str
    provider_uri: str
    provider_certificate: bytes
    scopes: tuple[str, ...]
    nonce: bytes
    proof: bytes = b""

    def signed_bytes(self) -> bytes:
        return (
            _CONTEXT
            + lp32(self.wallet_uri.encode())
            + lp32(self.provider_uri.encode())
            + lp32(self.provider_certificate)
            + u32(len(self.scopes))
            + b"".join(lp32(s.encode()) for s in self.scopes)
            + lp32(self.nonce)
        )

    def signed_by(self, signer: Signer) -> TokenRequest:
        unsigned = replace(self, proof=b"")
        return replace(unsigned, proof=signer.sign(unsigned.signed_bytes()))


@dataclass(frozen=True, slots=True)
class PatientDevice:
    uri: str
    technique: str
    kind: int
    certificate: bytes


@dataclass(frozen=True, slots=True)
class DeviceGrant:
    """One entry of the answer (Alg. 1.2's DeviceInfo)."""

    uri: str
    technique: str
    kind: int
    token: bytes
    device_certificate: bytes


@dataclass(frozen=True)
class Consent:
    """Which providers the patient allows, and for what."""

    providers: Mapping[str, frozenset[str]] = field(default_factory=dict)

    def allows(self, provider_uri: str, scopes: tuple[str, ...]) -> bool:
        granted = self.providers.get(provider_uri)
        return granted is not None and set(scopes) <= granted

    @classmethod
    def read_vitals(cls, providers: list[str]) -> Consent:
        return cls({p: frozenset({SCOPE}) for p in providers})


CertificateCheck = Callable[[str, bytes], Verifier]
"""(identity name, DER certificate) -> its verifier; raises AuthenticationError."""


class Wallet:
    """The patient's wallet: holds consent and the device list, issues tokens."""

    def __init__(
        self,
        wallet_uri: str,
        patient_id: str,
        issuer: TokenIssuer,
        devices: list[PatientDevice],
        consent: Consent,
        *,
        check_certificate: CertificateCheck,
        token_lifetime_s: float = 3600.0,
        clock: ClockS = time.time,
    ) -> None:
        self.wallet_uri = wallet_uri
        self.patient_id = patient_id
        self._issuer = issuer
        self.devices = list(devices)
        self.consent = consent
        self._check = check_certificate
        self.token_lifetime_s = token_lifetime_s
        self._clock = clock
        self._nonces = ReplayCache()
        self.issued = 0

    def handle(self, request: TokenRequest) -> list[DeviceGrant]:
        """Alg. 1.2; raises AuthenticationError / AuthorizationError / RemoteProtocolError."""
        if request.wallet_uri != self.wallet_uri:
            raise AuthorizationError(f"request is for wallet {request.wallet_uri}")
        if not 16 <= len(request.nonce) <= 64:
            raise RemoteProtocolError("nonce must be 16..64 bytes")
        if not request.scopes:
            raise RemoteProtocolError("no scopes requested")
        provider_key = self._check(name_of(request.provider_uri), request.provider_certificate)
        provider_key.verify(replace(request, proof=b"").signed_bytes(), request.proof)
        if not self.consent.allows(request.provider_uri, request.scopes):
            raise AuthorizationError(
                f"patient {self.patient_id} has not consented to {request.provider_uri} "
                f"for {', '.join(request.scopes)}"
            )
        now = self._clock()
        if not self._nonces.add(request.nonce, until=now + NONCE_WINDOW_S, now=now):
            raise RequestReplayedError("request nonce already used (replay)")
        grants = [
            DeviceGrant(
                d.uri,
                d.technique,
                d.kind,
                self._issuer.issue(
                    d.uri, self.patient_id, request.scopes, provider_key, self.token_lifetime_s
                ),
                d.certificate,
            )
            for d in self.devices
        ]
        self.issued += len(grants)
        return grants


def new_token_request(
    wallet_uri: str,
    provider_uri: str,
    certificate: bytes,
    signer: Signer,
    *,
    scopes: tuple[str, ...] = (SCOPE,),
    rng: Callable[[int], bytes] = os.urandom,
) -> TokenRequest:
    """Alg. 1.1 at the provider."""
    return TokenRequest(wallet_uri, provider_uri, certificate, scopes, rng(32)).signed_by(signer)
