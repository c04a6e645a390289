"""What a bolster node is built from: its storage secret, its initial privacy header, the
core's configuration and the facility's user list, from the node's parameters."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from iomt.core.biomt import SECOND, BolsterConfig, Retention, UserDirectory
from iomt.core.biomt.identity import TrustAnchor
from iomt.crypto.errors import KeystoreError
from iomt.crypto.keystore import Keystore
from iomt.errors import ConfigurationError, IomtError, StorageError
from iomt.ledger import AccessRule, PrivacyHeader, TxType

__all__ = ["bolster_config", "load_or_create_secret", "privacy_header", "user_directory"]

ACTIONS = {"access": TxType.ACCESS, "observe": TxType.OBSERVE}


def load_or_create_secret(path: Path) -> bytes:
    """The bolster's 32-byte storage secret: created once (0600, O_EXCL), then reused --
    a restarted bolster must read its own ledger bodies."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        secret = path.read_bytes()
        if len(secret) != 32:
            raise StorageError(f"{path}: not a 32-byte storage secret") from None
        return secret
    secret = os.urandom(32)
    with os.fdopen(fd, "wb") as f:
        f.write(secret)
        f.flush()
        os.fsync(f.fileno())
    return secret


def privacy_header(facility: str, rules: list[dict[str, Any]]) -> PrivacyHeader:
    """The initial policy: ``[{"role": "physician", "action": "access"|"observe",
    "observe_interval_s": 0.5}, ...]`` (all devices; device admission comes with Origin)."""
    out = []
    for r in rules:
        action = ACTIONS.get(str(r.get("action")))
        if action is None:
            raise ConfigurationError(f"rule action must be access or observe: {r!r}")
        interval = round(float(r.get("observe_interval_s", 0.0)) * SECOND)
        out.append(AccessRule(str(r["role"]), action, all_devices=True, observe_interval=interval))
    return PrivacyHeader(facility, 1, rules=tuple(out))


def bolster_config(
    *,
    request_rate: float,
    store_rate: float,
    update_rate: float,
    retention: str,
    max_block_transactions: int,
    max_block_age_s: float,
) -> BolsterConfig:
    """The core's configuration from the node's parameters: bursts of twice the rate, and
    no age limit on a block for ``max_block_age_s <= 0``."""
    return BolsterConfig(
        request_rate=request_rate,
        request_burst=2 * request_rate,
        store_rate=store_rate,
        store_burst=2 * store_rate,
        update_rate=update_rate,
        update_burst=2 * update_rate,
        retention=Retention(retention),
        max_block_transactions=max_block_transactions,
        max_block_age=round(max_block_age_s * SECOND) if max_block_age_s > 0 else None,
    )


def user_directory(
    keystore: Keystore, anchor: TrustAnchor, users: list[list[str]], *, now: int
) -> UserDirectory:
    """The facility's users (``[[name, role], ...]``), by their keystore certificates."""
    directory = UserDirectory(anchor)
    for user, role in users:
        try:
            directory.register(keystore.certificate(user), role, now=now)
        except (KeystoreError, IomtError) as exc:
            raise ConfigurationError(f"user {user!r}: {exc}") from exc
    return directory
