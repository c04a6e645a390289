"""The centralized baseline's uploads on DDS: a reading the server did not acknowledge is
kept and sent again, so a server that comes up late (or falls behind) still gets it all.
End to end; the backlog's rules on their own are in tests/core/test_uploads.py."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from iomt.crypto.keystore import Keystore
from iomt.nodes.central import CentralNode
from iomt.nodes.device import DeviceNode
from iomt.nodes.params import CentralParams
from iomt.runtime import Context, Executor

pytestmark = [pytest.mark.dds, pytest.mark.timeout(60)]


def _stored(storage: Path) -> set[int]:
    with sqlite3.connect(storage / "central.db") as db:
        return {seq for (seq,) in db.execute("SELECT seq FROM readings")}


def test_uploads_missed_while_the_server_was_down_are_retried(
    tmp_path: Path, domain_id: int
) -> None:
    ks = Keystore.create(tmp_path / "ks", facility="ward1")
    for name in ("hr_0", "wallet_0", "central"):
        ks.add_identity(name)
    ctx = Context(domain_id=domain_id)
    ex = Executor(ctx)
    device = DeviceNode(
        ctx,
        name="hr_0",
        namespace="/ward1",
        keystore=str(tmp_path / "ks"),
        capability="none",
        kind="heart_rate",
        x=0.0,
        y=0.0,
        wallet="wallet_0",
        mode="centralized",
        sample_period_s=0.1,
        upload_timeout_s=1.0,
    )
    ex.add_node(device)
    central = None
    try:
        # No server: every upload is held, then times out after 1 s; nothing is acknowledged.
        # Wait (by counters, not by the clock) for 15 readings, the first 5 of them given up.
        deadline = time.monotonic() + 30  # only against a hang
        while not (device.seq >= 15 and device.seq - device.uploads.in_flight >= 5):
            assert time.monotonic() < deadline, (device.seq, device.uploads.in_flight)
            ex.spin_once(0.05)
        missed = set(range(1, device.seq + 1))
        assert device.uploads.retried == 0  # no retries into the void
        # the server has none of our readings: the device's process holds READY back
        assert device.warming_up()
        central = CentralNode(
            ctx,
            name="central",
            namespace="/ward1",
            config=CentralParams(
                keystore=str(tmp_path / "ks"),
                wallets=("wallet_0",),
                storage_dir=str(tmp_path / "central"),
            ),
        )
        ex.add_node(central)
        deadline = time.monotonic() + 20
        while not missed <= _stored(tmp_path / "central") and time.monotonic() < deadline:
            ex.spin_once(0.05)
        assert missed <= _stored(tmp_path / "central")
        assert device.uploads.dropped == 0 and device.uploads.retried > 0
        assert not device.warming_up()
        # the server hands out the newest reading, not the last retried one
        assert central._latest[device.uri].seq == max(_stored(tmp_path / "central"))
    finally:
        if central is not None:
            central.destroy_node()
        device.destroy_node()
        ex.close()
        ctx.shutdown()
