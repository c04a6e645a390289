"""The provider node against live wallets on DDS (in-process, real keystore)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from iomt.crypto.keystore import Keystore
from iomt.nodes.params import ProviderParams, WalletDevice, WalletParams
from iomt.nodes.provider import ProviderNode
from iomt.nodes.wallet import WalletNode
from iomt.runtime import Context, Executor

pytestmark = [pytest.mark.dds, pytest.mark.timeout(60)]


def _keystore(tmp_path: Path) -> str:
    ks = Keystore.create(tmp_path / "ks", facility="ward1")
    ks.add_identity("hr_0", algorithm="ecdsa-p256")
    ks.add_identity("wallet_0")
    ks.add_identity("dr_0")
    ks.add_attributes("dr_0", ["role:cardiologist", "facility:F1"])
    return str(tmp_path / "ks")


def test_a_wallet_that_comes_up_late_is_asked_again(tmp_path: Path, domain_id: int) -> None:
    keystore = _keystore(tmp_path)
    ctx = Context(domain_id=domain_id)
    ex = Executor(ctx)
    provider = ProviderNode(
        ctx,
        name="dr_0",
        namespace="/ward1",
        config=ProviderParams(
            keystore=keystore,
            wallets=("wallet_0",),
            requests=0,
            start_delay_s=0.01,
            wallet_timeout_s=0.4,
            settle_s=0.1,
        ),
    )
    ex.add_node(provider)
    wallet = None
    try:
        # The first ask finds no wallet and times out after 0.4 s; the wallet comes up.
        deadline = time.monotonic() + 0.6
        while time.monotonic() < deadline:
            ex.spin_once(0.05)
        assert not provider.core.grants
        wallet = WalletNode(
            ctx,
            name="wallet_0",
            namespace="/ward1",
            config=WalletParams(
                keystore=keystore,
                patient_id="patient-0",
                devices=(WalletDevice(name="hr_0", technique="ecc", kind=0),),
                providers=("dr_0",),
            ),
        )
        ex.add_node(wallet)
        deadline = time.monotonic() + 10
        while not provider.core.grants and time.monotonic() < deadline:
            ex.spin_once(0.05)
        assert sorted(provider.core.grants) == ["iomt://ward1/hr_0"]
    finally:
        if wallet is not None:
            wallet.destroy_node()
        provider.destroy_node()
        ex.close()
        ctx.shutdown()
