"""The privacy header's decisions, and the bolster's local storage on both backends."""

from __future__ import annotations

import pytest

from iomt.ledger import (
    AccessRule,
    LedgerStateError,
    LocalStorage,
    PolicyDeniedError,
    PrivacyHeader,
    RecordNotFoundError,
    TxType,
)

from .conftest import Backend


def test_permits_and_require(policy: PrivacyHeader) -> None:
    assert policy.permits("physician", TxType.ACCESS, "dev-bp-2")
    assert policy.permits("physician", TxType.OBSERVE, "dev-hr-1")
    assert not policy.permits("physician", TxType.OBSERVE, "dev-bp-2")
    assert policy.permits("insurer", TxType.ACCESS, "dev-bp-2")
    assert not policy.permits("insurer", TxType.OBSERVE, "dev-bp-2")
    assert not policy.permits("nobody", TxType.ACCESS, "dev-bp-2")
    assert not policy.permits("physician", TxType.ACCESS, "dev-unknown")
    rule = policy.require("physician", TxType.OBSERVE, "dev-hr-1")
    assert rule.observe_interval == 10**9
    with pytest.raises(PolicyDeniedError):
        policy.require("insurer", TxType.ACCESS, "dev-hr-1")
    with pytest.raises(PolicyDeniedError):
        policy.require("physician", TxType.ACCESS, "dev-unknown")


def test_origin_and_remove_update_the_policy(policy: PrivacyHeader) -> None:
    added = policy.with_device("dev-new")
    assert added.version == policy.version + 1 and added.is_authorized("dev-new")
    removed = added.without_device("dev-hr-1")
    assert not removed.is_authorized("dev-hr-1")
    assert not removed.permits("physician", TxType.OBSERVE, "dev-hr-1")
    assert "dev-hr-1" not in removed.rule_for("physician", TxType.OBSERVE).devices  # type: ignore[union-attr]
    widened = removed.with_rule(AccessRule("physician", TxType.OBSERVE, all_devices=True))
    assert widened.permits("physician", TxType.OBSERVE, "dev-new")
    assert len(widened.rules) == len(removed.rules)


def test_rules_are_canonical_and_validated() -> None:
    r1 = AccessRule("b", TxType.ACCESS)
    r2 = AccessRule("a", TxType.OBSERVE)
    assert PrivacyHeader("f", 0, frozenset(), (r1, r2)) == PrivacyHeader(
        "f", 0, frozenset(), (r2, r1)
    )
    assert PrivacyHeader("f", 0, frozenset(), (r1, r2)).to_bytes() == (
        PrivacyHeader("f", 0, frozenset(), (r2, r1)).to_bytes()
    )
    with pytest.raises(ValueError):
        AccessRule("r", TxType.STORE)  # only Access / Observe are granted to requesters
    with pytest.raises(ValueError):
        AccessRule("r", TxType.ACCESS, observe_interval=5)
    with pytest.raises(ValueError):
        PrivacyHeader("f", 0, frozenset(), (r1, AccessRule("b", TxType.ACCESS, all_devices=True)))
    with pytest.raises(ValueError):
        PrivacyHeader("", 0)
    with pytest.raises(ValueError):
        PrivacyHeader("f", 0, "dev-1")  # type: ignore[arg-type]


def test_local_storage_put_get_list_delete(backend: Backend) -> None:
    local = LocalStorage(backend.open())
    local.put("dev-hr-1", 4, b"enc-1")
    local.put("dev-hr-1", 2, b"enc-0")
    local.put("dev-bp-2", 3, b"enc-2")
    assert local.get("dev-hr-1", 4).data == b"enc-1"
    assert [r.seq for r in local.records("dev-hr-1")] == [2, 4]
    assert local.devices() == ["dev-bp-2", "dev-hr-1"]
    with pytest.raises(LedgerStateError):
        local.put("dev-hr-1", 4, b"overwrite")
    with pytest.raises(RecordNotFoundError):
        local.get("dev-hr-1", 3)
    assert local.delete_device("dev-hr-1") == 2  # a Remove transaction's effect
    assert local.records("dev-hr-1") == [] and local.devices() == ["dev-bp-2"]
    assert local.delete_device("dev-hr-1") == 0
    with pytest.raises(ValueError):
        local.put("", 1, b"x")


def test_local_storage_survives_reopen(backend: Backend) -> None:
    LocalStorage(backend.open()).put("dev-hr-1", 1, b"kept")
    backend.close_all()
    assert LocalStorage(backend.open()).get("dev-hr-1", 1).data == b"kept"
