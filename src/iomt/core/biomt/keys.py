"""Key schedules of BIoMT: the device's shared key and the bolster's storage keys.

Two roots, each expanded with HKDF-SHA256 into single-purpose keys (a key never serves two
algorithms or two directions):

* :class:`SharedKey` -- the key a device and its bolster establish at provisioning
  ("key establishment ... gives the shared key"). Subkeys: ``store`` (AES-256-GCM over
  Store requests), ``mac`` (HMAC-SHA256 over the device's other requests), ``wrap``
  (AES-256-GCM wrapping pairwise keys for the device). Its ``key_id`` is a one-way handle.
* :class:`StorageKeys` -- the bolster's own root secret. Subkeys: ``body`` (AES-256-GCM over
  every transaction body, bound to the transaction's metadata), ``record`` (AES-256-GCM
  over local-storage records, bound to device and sequence number), ``requester`` (HMAC
  giving requesters stable ledger pseudonyms) and ``cloud`` (HMAC giving devices cloud
  pseudonyms unlinkable without the key).

Also the adapter that lets a keystore signing key (:mod:`iomt.crypto.signing`) sign the
ledger (:class:`iomt.ledger.LedgerSigner`).
"""

from __future__ import annotations

import hmac

from iomt.crypto.encoding import lp32, tag
from iomt.crypto.errors import DecryptionError
from iomt.crypto.primitives import GCM_NONCE_SIZE, AesGcm, hkdf_sha256, sha256
from iomt.crypto.signing import HmacSha256Key
from iomt.ledger import LedgerKey, LedgerKeyVerifier, TxType

__all__ = [
    "LedgerKey",
    "LedgerKeyVerifier",
    "SharedKey",
    "StorageKeys",
    "body_aad",
    "record_aad",
]

KEY_SIZE = 32
_BODY_VERSION = 0x01


def _derive(root: bytes, label: str) -> bytes:
    return hkdf_sha256(root, salt=None, info=b"iomt/biomt/" + label.encode(), length=KEY_SIZE)


class SharedKey:
    """A device's shared key with its bolster, expanded into purpose-bound subkeys."""

    __slots__ = ("_root", "key_id", "mac_key", "reply", "store", "wrap")

    def __init__(self, secret: bytes) -> None:
        if not isinstance(secret, bytes) or len(secret) != KEY_SIZE:
            raise ValueError("a shared key is 32 bytes")
        self._root = secret
        self.store = AesGcm(_derive(secret, "device/store/v1"))
        self.wrap = AesGcm(_derive(secret, "device/wrap/v1"))
        self.mac_key = _derive(secret, "device/mac/v1")
        #: authenticates the bolster's service replies to the device (iomt.core.replies)
        self.reply = HmacSha256Key(_derive(secret, "device/reply-mac/v1"))
        #: A public handle naming the key (in logs, Origin bodies, receipts).
        self.key_id = _derive(secret, "device/key-id/v1")[:16]

    def secret_bytes(self) -> bytes:
        """The raw secret, for the encrypted Origin body only. Never log it."""
        return self._root

    def mac(self, data: bytes) -> bytes:
        return hmac.digest(self.mac_key, data, "sha256")

    def check_mac(self, data: bytes, tag_: bytes) -> bool:
        return hmac.compare_digest(self.mac(data), tag_)

    def __repr__(self) -> str:
        return f"SharedKey(<redacted>, id={self.key_id.hex()})"


def body_aad(tx_type: TxType, seq: int, generator_id: str, time: int) -> bytes:
    """What a transaction body is bound to: it cannot be moved to another transaction."""
    gid = generator_id.encode()
    return (
        tag("iomt/biomt/tx-body/v1")
        + bytes((int(tx_type),))
        + seq.to_bytes(8, "big")
        + lp32(gid)
        + time.to_bytes(8, "big")
    )


def record_aad(device: str, seq: int) -> bytes:
    raw = device.encode()
    return tag("iomt/biomt/record/v1") + lp32(raw) + seq.to_bytes(8, "big")


class StorageKeys:
    """The bolster's storage keys, all derived from one 32-byte root secret."""

    __slots__ = ("_body", "_cloud", "_record", "_requester")

    def __init__(self, root: bytes) -> None:
        if not isinstance(root, bytes) or len(root) < KEY_SIZE:
            raise ValueError("the bolster's storage secret is at least 32 bytes")
        self._body = AesGcm(_derive(root, "bolster/tx-body/v1"))
        self._record = AesGcm(_derive(root, "bolster/record/v1"))
        self._requester = _derive(root, "bolster/requester-pseudonym/v1")
        self._cloud = _derive(root, "bolster/cloud-pseudonym/v1")

    def __repr__(self) -> str:
        return "StorageKeys(<redacted>)"

    @staticmethod
    def _seal(aead: AesGcm, nonce: bytes, plaintext: bytes, aad: bytes) -> bytes:
        return bytes((_BODY_VERSION,)) + nonce + aead.encrypt(nonce, plaintext, aad)

    @staticmethod
    def _open(aead: AesGcm, sealed: bytes, aad: bytes) -> bytes:
        if len(sealed) < 1 + GCM_NONCE_SIZE or sealed[0] != _BODY_VERSION:
            raise DecryptionError("not a sealed bolster body (version or length)")
        nonce = sealed[1 : 1 + GCM_NONCE_SIZE]
        return aead.decrypt(nonce, sealed[1 + GCM_NONCE_SIZE :], aad)

    def seal_body(self, nonce: bytes, plaintext: bytes, aad: bytes) -> bytes:
        return self._seal(self._body, nonce, plaintext, aad)

    def open_body(self, sealed: bytes, aad: bytes) -> bytes:
        return self._open(self._body, sealed, aad)

    def seal_record(self, nonce: bytes, plaintext: bytes, aad: bytes) -> bytes:
        return self._seal(self._record, nonce, plaintext, aad)

    def open_record(self, sealed: bytes, aad: bytes) -> bytes:
        return self._open(self._record, sealed, aad)

    def requester_pseudonym(self, name: str) -> str:
        """The requester's id in the ledger's clear metadata (its name stays in the body)."""
        return "usr-" + hmac.digest(self._requester, name.encode(), "sha256")[:16].hex()

    def cloud_pseudonym(self, ledger_id: bytes, device: str) -> str:
        """Stable per device, unlinkable to the device (or its bolster pseudonym) without
        the key: what the cloud sees instead of an identity."""
        mac = hmac.digest(self._cloud, ledger_id + device.encode(), "sha256")
        return "anon-" + mac[:16].hex()


def fingerprint(data: bytes) -> bytes:
    """SHA-256 of a certificate's DER (what Origin bodies and key derivations name)."""
    return sha256(data)
