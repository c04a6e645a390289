"""What a bolster node is built from: its storage secret, its initial privacy header, the
core's configuration and the facility's user list, from the node's parameters
(:class:`~iomt.nodes.params.BolsterParams`)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from iomt.core.biomt import SECOND, BolsterConfig, Retention, UserDirectory
from iomt.core.biomt.identity import TrustAnchor
from iomt.crypto.errors import KeystoreError
from iomt.crypto.keystore import Keystore
from iomt.errors import ConfigurationError, IomtError, StorageError
from iomt.ledger import AccessRule, PrivacyHeader, TxType
from iomt.nodes import params

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


def privacy_header(facility: str, rules: Iterable[params.AccessRule]) -> PrivacyHeader:
    """The initial policy: a role may access or observe (all devices; device admission
    comes with Origin)."""
    return PrivacyHeader(
        facility,
        1,
        rules=tuple(
            AccessRule(
                r.role,
                ACTIONS[r.action],
                all_devices=True,
                observe_interval=round(r.observe_interval_s * SECOND),
            )
            for r in rules
        ),
    )


def bolster_config(config: params.BolsterParams) -> BolsterConfig:
    """The core's configuration from the node's parameters: bursts of twice the rate, and
    no age limit on a block for ``max_block_age_s <= 0``."""
    p = config
    return BolsterConfig(
        request_rate=p.request_rate,
        request_burst=2 * p.request_rate,
        store_rate=p.store_rate,
        store_burst=2 * p.store_rate,
        update_rate=p.update_rate,
        update_burst=2 * p.update_rate,
        retention=Retention(p.retention),
        max_block_transactions=p.max_block_transactions,
        max_block_age=round(p.max_block_age_s * SECOND) if p.max_block_age_s > 0 else None,
    )


def user_directory(
    keystore: Keystore, anchor: TrustAnchor, users: Iterable[Sequence[str]], *, now: int
) -> UserDirectory:
    """The facility's users (``[[name, role], ...]``), by their keystore certificates."""
    directory = UserDirectory(anchor)
    for user, role in users:
        try:
            directory.register(keystore.certificate(user), role, now=now)
        except (KeystoreError, IomtError) as exc:
            raise ConfigurationError(f"user {user!r}: {exc}") from exc
    return directory
