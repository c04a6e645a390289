"""What a bolster node is built from, without DDS: the storage secret (created once, then
reused), the initial privacy header, and the core's configuration from the node's
parameters."""

from __future__ import annotations

import stat
from dataclasses import replace
from pathlib import Path

import pytest

from iomt.core.biomt import SECOND, Retention
from iomt.errors import ConfigurationError, StorageError
from iomt.ledger import TxType
from iomt.nodes.bolster_setup import bolster_config, load_or_create_secret, privacy_header
from iomt.nodes.params import AccessRule, BolsterParams


def test_the_storage_secret_is_created_once_private_and_then_reused(tmp_path: Path) -> None:
    path = tmp_path / "b.secret"
    secret = load_or_create_secret(path)
    assert len(secret) == 32 and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_secret(path) == secret  # a restarted bolster reads its bodies
    path.write_bytes(b"short")
    with pytest.raises(StorageError, match="not a 32-byte storage secret"):
        load_or_create_secret(path)


def test_the_privacy_header_rules() -> None:
    header = privacy_header(
        "ward1",
        [
            AccessRule(role="physician", action="access"),
            AccessRule(role="nurse", action="observe", observe_interval_s=0.5),
        ],
    )
    rules = {r.role: r for r in header.rules}
    access, observe = rules["physician"], rules["nurse"]
    assert (access.role, access.action, access.all_devices) == ("physician", TxType.ACCESS, True)
    assert (observe.action, observe.observe_interval) == (TxType.OBSERVE, SECOND // 2)
    with pytest.raises(ConfigurationError, match="'action' must be one of 'access', 'observe'"):
        AccessRule.from_mapping({"role": "x", "action": "remove"})


def test_the_core_configuration_from_the_nodes_parameters() -> None:
    params = BolsterParams(keystore="ks", storage_dir="st", users=())
    config = bolster_config(params)  # the defaults: 1000 requests/s, 100 stores/s, ...
    assert (config.request_rate, config.store_rate, config.update_rate) == (1000, 100, 50)
    assert (config.request_burst, config.store_burst, config.update_burst) == (2000, 200, 100)
    assert config.retention is Retention("keep") and config.max_block_age == 2 * SECOND
    assert config.max_block_transactions == 256
    evicting = bolster_config(replace(params, retention="evict-after-sync", max_block_age_s=0))
    assert evicting.retention is Retention("evict-after-sync")
    assert evicting.max_block_age is None
