"""The revocation list shared by certificate checks, token verification and sessions.

The paper's wallet "validates a requester's key" (Alg. 1.2, ``isValid(PK)``) and BIoMT's
bolster "marks the shared key as invalid" when access is denied; both need a list of what
is no longer trusted. Entries are identities (subject names), certificate serial numbers,
public-key fingerprints and token ids (CWT ``cti``). The keystore persists the list as JSON
(and emits an X.509 CRL for the certificate serials); verifiers hold a reference to the
live object so a revocation takes effect on the next check.
"""

from __future__ import annotations

import enum
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass

from iomt.crypto.errors import KeystoreError

__all__ = ["RevocationEntry", "RevocationKind", "RevocationList"]


class RevocationKind(enum.StrEnum):
    IDENTITY = "identity"
    CERTIFICATE = "certificate"
    KEY = "key"
    TOKEN = "token"  # noqa: S105 - an enum tag, not a secret


@dataclass(frozen=True, slots=True)
class RevocationEntry:
    kind: RevocationKind
    value: str
    reason: str
    revoked_at: float


class RevocationList:
    """A thread-safe set of revoked identities, certificate serials, key fingerprints, tokens."""

    __slots__ = ("_entries", "_lock")

    def __init__(self, entries: tuple[RevocationEntry, ...] = ()) -> None:
        self._entries: dict[tuple[RevocationKind, str], RevocationEntry] = {
            (e.kind, e.value): e for e in entries
        }
        self._lock = threading.Lock()

    def revoke(
        self, kind: RevocationKind, value: str, *, reason: str, at: float
    ) -> RevocationEntry:
        entry = RevocationEntry(RevocationKind(kind), _norm(kind, value), reason, at)
        with self._lock:
            self._entries.setdefault((entry.kind, entry.value), entry)
            return self._entries[(entry.kind, entry.value)]

    def is_revoked(self, kind: RevocationKind, value: str) -> bool:
        return (kind, _norm(kind, value)) in self._entries

    def is_token_revoked(self, cti: bytes) -> bool:
        return self.is_revoked(RevocationKind.TOKEN, cti.hex())

    def is_identity_revoked(self, name: str) -> bool:
        return self.is_revoked(RevocationKind.IDENTITY, name)

    def is_key_revoked(self, fingerprint: str) -> bool:
        return self.is_revoked(RevocationKind.KEY, fingerprint)

    def is_certificate_revoked(self, serial: int) -> bool:
        return self.is_revoked(RevocationKind.CERTIFICATE, str(serial))

    def __iter__(self) -> Iterator[RevocationEntry]:
        with self._lock:
            return iter(sorted(self._entries.values(), key=lambda e: (e.revoked_at, e.value)))

    def __len__(self) -> int:
        return len(self._entries)

    def to_json(self) -> str:
        return json.dumps(
            {
                "version": 1,
                "entries": [
                    {"kind": e.kind.value, "value": e.value, "reason": e.reason, "at": e.revoked_at}
                    for e in self
                ],
            },
            indent=2,
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> RevocationList:
        try:
            doc = json.loads(text)
            if doc.get("version") != 1:
                raise KeystoreError(f"unsupported revocation list version {doc.get('version')}")
            entries = tuple(
                RevocationEntry(
                    RevocationKind(e["kind"]), str(e["value"]), str(e["reason"]), float(e["at"])
                )
                for e in doc["entries"]
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise KeystoreError(f"malformed revocation list: {exc}") from None
        return cls(entries)


def _norm(kind: RevocationKind, value: str) -> str:
    # Hex values (token ids, fingerprints) compare case-insensitively.
    return value.lower() if kind in (RevocationKind.TOKEN, RevocationKind.KEY) else value
