"""A healthcare provider's protocol logic (Bilal & Hassan, Alg. 1.1 / 1.3, case study).

The provider (a doctor's device) asks a patient's wallet for device info and tokens
(Alg. 1.1), opens a session with each device it asks, requests data in its own security
technique (Alg. 1.3), and opens and verifies what comes back — directly from the device,
or from a converter on its inbox (Alg. 3) — before anything is used or exported.

Verification of a received envelope:
* the envelope is for us and answers a request we made, about the device we asked;
* it is authenticated by its sender: the HMAC of our session when the device sealed it
  itself, or a signature by a certificate from the facility CA (a converter);
* when a converter sealed it, the device's own signature over the reading must verify
  with the device certificate the patient's wallet gave us: a converter can relay, not
  invent, a reading;
* it opens with our key for its technique, and the reading inside names the device.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

from iomt.clock import ClockS
from iomt.core.channels import ChannelTable
from iomt.core.handshake import CertificateCheck, DeviceGrant, TokenRequest, new_token_request
from iomt.core.listener import PROOF_POP, PROOF_SESSION, DataRequest, name_of
from iomt.core.publish import Envelope, Opener, origin_message, verify_origin
from iomt.crypto.abe import FameUserKey
from iomt.crypto.keys import EccPrivateKey
from iomt.crypto.signing import Signer, Verifier
from iomt.crypto.techniques import NO_KEY, EccAttrSecret, RecipientSecret
from iomt.crypto.tokens import make_proof
from iomt.errors import AuthenticationError, LocalProtocolError


@dataclass(frozen=True, slots=True)
class Received:
    """A verified, opened reading."""

    request_id: str
    device_uri: str
    sender_uri: str
    technique: str
    reading_cdr: bytes
    converted: bool


class ProviderCore:
    def __init__(
        self,
        uri: str,
        *,
        signer: Signer,
        certificate: bytes,
        encryption_key: EccPrivateKey,
        attribute_key: FameUserKey | None,
        channels: ChannelTable,
        check_certificate: CertificateCheck,
        clock: ClockS = time.time,
        rng: Callable[[int], bytes] = os.urandom,
    ) -> None:
        self.uri = uri
        self._signer = signer
        self.certificate = certificate
        self._encryption_key = encryption_key
        # computed once: deriving a public key costs an elliptic-curve multiplication
        self._encryption_public = encryption_key.public_key().public_bytes()
        self._attribute_key = attribute_key
        self.channels = channels
        self._check = check_certificate
        self._clock = clock
        self._rng = rng
        self.opener = Opener(uri)
        self.grants: dict[str, DeviceGrant] = {}
        self._device_keys: dict[str, Verifier] = {}
        self._sender_keys: dict[bytes, Verifier] = {}
        # request id -> (device, technique), and -> the id of our session it went out on
        self._outstanding: dict[str, tuple[str, str]] = {}
        self._request_sessions: dict[str, bytes] = {}

    # -- Alg. 1.1 ---------------------------------------------------------------------------

    def token_request(self, wallet_uri: str) -> TokenRequest:
        return new_token_request(
            wallet_uri, self.uri, self.certificate, self._signer, rng=self._rng
        )

    def accept_grants(self, grants: list[DeviceGrant]) -> list[DeviceGrant]:
        """Keep the grants whose device certificate checks out; returns those kept."""
        kept = []
        for g in grants:
            self._device_keys[g.uri] = self._check(name_of(g.uri), g.device_certificate)
            self.grants[g.uri] = g
            kept.append(g)
        return kept

    # -- Alg. 1.3 ---------------------------------------------------------------------------

    def data_request(
        self, device_uri: str, technique: str, *, via: str | None = None
    ) -> DataRequest:
        """A request for ``device_uri``'s data, sent to the device itself or, in the
        centralized baseline, to the server ``via`` (the session used is with the party
        the request goes to)."""
        grant = self.grants.get(device_uri)
        if grant is None:
            raise LocalProtocolError(f"no token for {device_uri}: ask the wallet first")
        request_id = self._rng(12).hex()
        session = self.channels.session(name_of(via or device_uri))
        draft = DataRequest(
            request_id,
            self.uri,
            technique,
            grant.token,
            self._rng(16),
            PROOF_SESSION if session else PROOF_POP,
            b"",
            self._encryption_public,
        )
        if session is not None:
            proof = session.protect(b"", aad=draft.bound_bytes())
        else:
            proof = make_proof(
                grant.token, self._signer, challenge=draft.nonce, request=draft.bound_bytes()
            )
        self._outstanding[request_id] = (device_uri, technique)
        if session is not None:
            self._request_sessions[request_id] = session.local_id
        return DataRequest(
            draft.request_id,
            draft.requester_uri,
            draft.technique,
            draft.token,
            draft.nonce,
            draft.proof_type,
            proof,
            draft.requester_key,
        )

    def device_key(self, device_uri: str) -> Verifier | None:
        """The certified key of a device the wallet granted us (its replies' signer)."""
        return self._device_keys.get(device_uri)

    def forget(self, request_id: str) -> None:
        self._outstanding.pop(request_id, None)
        self._request_sessions.pop(request_id, None)

    # -- receiving --------------------------------------------------------------------------

    def _secret(self, technique: str) -> RecipientSecret:
        if technique == "none":
            return NO_KEY
        if technique == "ecc":
            return self._encryption_key
        if technique == "cpabe":
            if self._attribute_key is None:
                raise LocalProtocolError("cpabe needs attribute keys this provider lacks")
            return self._attribute_key
        if technique == "ecc-attr":
            if self._attribute_key is None:
                raise LocalProtocolError("ecc-attr needs attribute keys this provider lacks")
            return EccAttrSecret(self._encryption_key, self._attribute_key)
        raise LocalProtocolError(f"cannot open {technique} here")

    def receive(self, envelope: Envelope, *, relay: str | None = None) -> Received:
        """Verify and open an envelope; AuthenticationError/DecryptionError otherwise.

        ``relay`` names a server trusted to seal other devices' readings (the centralized
        baseline): its envelopes need no origin signature."""
        e = envelope
        expected = self._outstanding.get(e.request_id)
        if expected is None:
            raise AuthenticationError(f"envelope answers no outstanding request ({e.request_id})")
        device_uri, technique = expected
        if e.device_uri != device_uri or e.recipient_uri != self.uri:
            raise AuthenticationError(
                f"envelope for {e.request_id} names {e.device_uri} -> "
                f"{e.recipient_uri}, expected {device_uri} -> {self.uri}"
            )
        if e.security_technique != technique:
            raise AuthenticationError(f"asked for {technique}, got {e.security_technique}")
        relayed = relay is not None and e.sender_uri == relay
        converted = e.sender_uri != device_uri and not relayed
        if e.signature_algorithm == "hmac-sha256":
            mac = self.channels.mac_verifier(name_of(e.sender_uri))
            if mac is None:
                raise AuthenticationError(f"no session with {e.sender_uri} to check its HMAC")
            e.verify(mac)
        else:
            e.verify(self._sender_key(e.sender_uri, e.sender_certificate))
        if technique == "sym-aes":
            # the key of the very session the request went out on
            session = self.channels.session_by_id(self._request_sessions.get(e.request_id, b""))
            if session is None:
                raise AuthenticationError("sym-aes needs our session with the device")
            plaintext = self.opener.open(e, ChannelTable.link_key(session))
        else:
            plaintext = self.opener.open(e, self._secret(technique))
        if converted:
            verify_origin(
                e.origin_signature,
                origin_message(e.request_id, device_uri, plaintext),
                mac=self.channels.mac_verifier(name_of(device_uri)),
                device_key=self._device_keys.get(device_uri),
            )
        del self._outstanding[e.request_id]
        self._request_sessions.pop(e.request_id, None)
        return Received(e.request_id, device_uri, e.sender_uri, technique, plaintext, converted)

    def _sender_key(self, sender_uri: str, certificate: bytes) -> Verifier:
        if not certificate:
            raise AuthenticationError(f"{sender_uri} signed without a certificate")
        digest = hashlib.sha256(certificate).digest()
        key = self._sender_keys.get(digest)
        if key is None:
            key = self._check(name_of(sender_uri), certificate)
            self._sender_keys[digest] = key
        return key
