"""Publish (Bilal & Hassan, §III-E): sealed readings with HMAC or a digital signature.

A reading is sealed for its requester as a KEM/DEM pair. The *data key* is sealed with
the requested security technique (ECIES to the requester's key, FAME under the device's
policy, ...) into ``key_header``; the reading itself is AES-256-GCM under that key. A
sender keeps using one data key per (recipient, technique, recipient key) for a bounded
number of readings and time, and a receiver caches the key of every header it opened, so
the asymmetric work of a technique is paid once per key instead of once per request.
Technique ``none`` has no key: its "ciphertext" is the framed plaintext, readable by
anyone on the wire, which is what the experiments count.

Authenticity: every envelope is authenticated by whoever sealed it, over all its fields
(:meth:`Envelope.signed_bytes`): an HMAC under a key exported from the session with the
recipient, or an Ed25519 / ECDSA signature (with the signer's certificate attached) when
there is no session, as for a converter publishing to a requester it never met. When a
converter seals another device's reading, the device's own signature over the reading
(``origin_signature``) travels along, so the requester can check end to end that the
reading is the device's and not the converter's invention.
"""

from __future__ import annotations

import functools
import hashlib
import os
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from iomt.clock import ClockS
from iomt.crypto.encoding import lp32
from iomt.crypto.errors import DecryptionError, MalformedCiphertextError
from iomt.crypto.keys import EccPublicKey, SymmetricKey
from iomt.crypto.primitives import AesGcm
from iomt.crypto.signing import Signer, Verifier
from iomt.crypto.techniques import (
    NO_KEY,
    AbePolicy,
    AssociatedData,
    EccAttrRecipient,
    RecipientKey,
    RecipientSecret,
    get_technique,
)
from iomt.errors import AuthenticationError, LocalProtocolError

NONE = "none"
_DATA_KEY_LABEL = "iomt/data-key/v1"
_ORIGIN_CONTEXT = b"iomt/origin-signature/v1"
_ENVELOPE_CONTEXT = b"iomt/envelope/v1"
_NONCE = 12


@dataclass(frozen=True, slots=True)
class Envelope:
    """The core's view of an iomt_interfaces/msg/SecureEnvelope."""

    request_id: str
    device_uri: str
    sender_uri: str
    recipient_uri: str
    security_technique: str
    seq: int
    stamp_ns: int
    key_header: bytes
    ciphertext: bytes
    signature_algorithm: str = ""
    signature: bytes = b""
    sender_certificate: bytes = b""
    origin_signature: bytes = b""

    def signed_bytes(self, algorithm: str | None = None) -> bytes:
        """Canonical, injective encoding of everything but the signature itself (with
        ``algorithm`` in place of ``signature_algorithm`` when given)."""
        parts = [
            self.request_id,
            self.device_uri,
            self.sender_uri,
            self.recipient_uri,
            self.security_technique,
            self.signature_algorithm if algorithm is None else algorithm,
        ]
        return (
            _ENVELOPE_CONTEXT
            + b"".join(lp32(p.encode()) for p in parts)
            + struct.pack(">QQ", self.seq, self.stamp_ns & (1 << 64) - 1)
            + lp32(self.key_header)
            + lp32(self.ciphertext)
            + lp32(self.sender_certificate)
            + lp32(self.origin_signature)
        )

    def signed_by(self, signer: Signer) -> Envelope:
        signature = signer.sign(self.signed_bytes(signer.algorithm))
        return replace(self, signature_algorithm=signer.algorithm, signature=signature)

    def verify(self, verifier: Verifier) -> None:
        """Raise AuthenticationError unless ``verifier`` authenticated every field."""
        if not self.signature:
            raise AuthenticationError(f"envelope {self.request_id} is not authenticated")
        if self.signature_algorithm != verifier.algorithm:
            raise AuthenticationError(
                f"envelope {self.request_id} authenticated with {self.signature_algorithm!r}, "
                f"expected {verifier.algorithm!r}"
            )
        verifier.verify(self.signed_bytes(), self.signature)


def origin_message(request_id: str, device_uri: str, reading: bytes) -> bytes:
    """What a device signs over its own reading (kept by converters, checked end to end)."""
    return _ORIGIN_CONTEXT + lp32(request_id.encode()) + lp32(device_uri.encode()) + lp32(reading)


ORIGIN_MAC = 0x01  # HMAC under the device's session with the requester (symmetric)
ORIGIN_SIGNATURE = 0x02  # the device's certificate key (no session with the requester)


def origin_proof(message: bytes, *, mac: Signer | None, signer: Signer) -> bytes:
    """The device's proof that a reading is its own, for the requester to check after a
    converter relayed it: a MAC when the device shares a session with the requester (the
    converter holds no key of that session), else a signature."""
    if mac is not None:
        return bytes((ORIGIN_MAC,)) + mac.sign(message)
    return bytes((ORIGIN_SIGNATURE,)) + signer.sign(message)


def verify_origin(
    proof: bytes, message: bytes, *, mac: Verifier | None, device_key: Verifier | None
) -> None:
    """Raise AuthenticationError unless ``proof`` shows the device produced ``message``."""
    if not proof:
        raise AuthenticationError("no origin proof from the device")
    kind, body = proof[0], proof[1:]
    if kind == ORIGIN_MAC and mac is not None:
        mac.verify(message, body)
    elif kind == ORIGIN_SIGNATURE and device_key is not None:
        device_key.verify(message, body)
    else:
        raise AuthenticationError("origin proof of a kind we hold no key for")


def _key_fingerprint(key: RecipientKey) -> str:
    if isinstance(key, EccPublicKey):
        return "ecc:" + key.fingerprint()
    if isinstance(key, SymmetricKey):
        return "sym:" + key.key_id
    if isinstance(key, AbePolicy):
        return "abe:" + str(key.policy)
    if isinstance(key, EccAttrRecipient):
        return f"ecc-attr:{key.ecc.fingerprint()}:{key.abe.policy}"
    return "none"


def _data_aad(
    sender: str, recipient: str, device: str, seq: int, request_id: str, header: bytes
) -> bytes:
    return (
        AssociatedData(sender, recipient, device, seq, request_id).encode()
        + hashlib.sha256(header).digest()
    )


@dataclass
class _DataKey:
    key: AesGcm
    header: bytes
    uses: int
    created: float


class Sealer:
    """The sending side: seals readings for recipients, reusing data keys within limits."""

    def __init__(
        self,
        sender_uri: str,
        *,
        clock: ClockS = time.monotonic,
        rng: Callable[[int], bytes] = os.urandom,
        max_uses: int = 1000,
        max_age_s: float = 600.0,
    ) -> None:
        self.sender_uri = sender_uri
        self._clock = clock
        self._rng = rng
        self.max_uses = max_uses
        self.max_age_s = max_age_s
        self._keys: dict[tuple[str, str, str], _DataKey] = {}
        self.keys_created = 0

    def seal(
        self,
        plaintext: bytes,
        *,
        technique: str,
        recipient_uri: str,
        recipient_key: RecipientKey,
        device_uri: str,
        request_id: str,
        seq: int,
    ) -> tuple[bytes, bytes]:
        """Return (key_header, ciphertext) for one reading."""
        tech = get_technique(technique)
        if technique == NONE:
            aad = AssociatedData(self.sender_uri, recipient_uri, device_uri, seq, request_id)
            return b"", tech.seal(plaintext, NO_KEY, aad)
        slot = (recipient_uri, technique, _key_fingerprint(recipient_key))
        now = self._clock()
        dk = self._keys.get(slot)
        if dk is None or dk.uses >= self.max_uses or now - dk.created > self.max_age_s:
            raw = self._rng(32)
            header_aad = AssociatedData(self.sender_uri, recipient_uri, "", 0, _DATA_KEY_LABEL)
            dk = _DataKey(AesGcm(raw), tech.seal(raw, recipient_key, header_aad), 0, now)
            self._keys[slot] = dk
            self.keys_created += 1
        dk.uses += 1
        nonce = self._rng(_NONCE)
        data_aad = _data_aad(self.sender_uri, recipient_uri, device_uri, seq, request_id, dk.header)
        return dk.header, nonce + dk.key.encrypt(nonce, plaintext, data_aad)


class Opener:
    """The receiving side: opens envelopes, caching the data key of each header it opened."""

    def __init__(self, recipient_uri: str, *, max_cached: int = 4096) -> None:
        self.recipient_uri = recipient_uri
        self._keys: dict[bytes, AesGcm] = {}
        self._max = max_cached
        self.headers_opened = 0

    def open(self, envelope: Envelope, secret: RecipientSecret) -> bytes:
        """The plaintext reading; DecryptionError / MalformedCiphertextError otherwise."""
        e = envelope
        if e.recipient_uri != self.recipient_uri:
            raise DecryptionError(f"envelope is for {e.recipient_uri}, not {self.recipient_uri}")
        tech = get_technique(e.security_technique)
        if e.security_technique == NONE:
            if e.key_header:
                raise MalformedCiphertextError("technique none carries no key header")
            aad = AssociatedData(e.sender_uri, e.recipient_uri, e.device_uri, e.seq, e.request_id)
            return tech.open(e.ciphertext, NO_KEY, aad)
        digest = hashlib.sha256(e.key_header).digest()
        key = self._keys.get(digest)
        if key is None:
            header_aad = AssociatedData(e.sender_uri, e.recipient_uri, "", 0, _DATA_KEY_LABEL)
            raw = tech.open(e.key_header, secret, header_aad)
            if len(raw) != 32:
                raise MalformedCiphertextError("data key has the wrong size")
            key = AesGcm(raw)
            if len(self._keys) >= self._max:
                self._keys.pop(next(iter(self._keys)))
            self._keys[digest] = key
            self.headers_opened += 1
        if len(e.ciphertext) < _NONCE + 16:
            raise MalformedCiphertextError("ciphertext too short")
        data_aad = _data_aad(
            e.sender_uri, e.recipient_uri, e.device_uri, e.seq, e.request_id, e.key_header
        )
        try:
            return key.decrypt(e.ciphertext[:_NONCE], e.ciphertext[_NONCE:], data_aad)
        except DecryptionError:
            raise DecryptionError(f"envelope {e.request_id}: tag does not verify") from None


@functools.lru_cache(maxsize=4096)
def requester_public_key(raw: bytes) -> EccPublicKey:
    """A requester's encryption key from its wire bytes, parsed once (point decoding and
    validation cost ~30 µs; requesters reuse their key for every request)."""
    return EccPublicKey.from_bytes(raw)


def needs_link_key(technique: str) -> bool:
    return technique in ("sym-aes", "sym-3des")


def recipient_key_for(
    technique: str,
    *,
    requester_key: EccPublicKey | None,
    policy: AbePolicy | None,
    link_key: SymmetricKey | None,
) -> RecipientKey:
    """What sealing to a requester needs, per technique; LocalProtocolError when missing."""
    match technique:
        case "none":
            return NO_KEY
        case "sym-aes" | "sym-3des":
            if link_key is None:
                raise LocalProtocolError(f"{technique} needs a key shared with the requester")
            return link_key
        case "ecc":
            if requester_key is None:
                raise LocalProtocolError("ecc needs the requester's encryption key")
            return requester_key
        case "cpabe":
            if policy is None:
                raise LocalProtocolError("cpabe needs the device's access policy")
            return policy
        case "ecc-attr":
            if requester_key is None or policy is None:
                raise LocalProtocolError("ecc-attr needs the requester's key and a policy")
            return EccAttrRecipient(requester_key, policy)
    raise LocalProtocolError(f"no recipient key rule for technique {technique!r}")


def describe(envelope: Envelope) -> dict[str, Any]:
    """A loggable summary (never the ciphertext)."""
    return {
        "request_id": envelope.request_id,
        "device": envelope.device_uri,
        "sender": envelope.sender_uri,
        "technique": envelope.security_technique,
        "auth": envelope.signature_algorithm,
        "bytes": len(envelope.ciphertext),
    }
