"""A node's keystore and identity: one Keystore per process and path, the reply signer."""

from __future__ import annotations

import threading

from iomt.core.replies import ReplySigner
from iomt.crypto.ca import certificate_der
from iomt.crypto.keystore import Identity, Keystore

_KEYSTORES: dict[str, Keystore] = {}
_KS_LOCK = threading.Lock()


def open_keystore(path: str) -> Keystore:
    """One Keystore object per process and path (nodes in a container share it)."""
    with _KS_LOCK:
        ks = _KEYSTORES.get(path)
        if ks is None:
            ks = Keystore.open(path)
            _KEYSTORES[path] = ks
        return ks


def reply_signer(identity: Identity) -> ReplySigner:
    """A node's :class:`ReplySigner`: its keystore identity key and certificate."""
    return ReplySigner(
        identity.name,
        identity.signer,
        certificate_der(identity.certificate),
    )
