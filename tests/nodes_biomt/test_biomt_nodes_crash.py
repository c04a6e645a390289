"""A bolster killed with SIGKILL while its devices store restarts with a valid chain and
every acknowledged Store intact (BIoMT: "a restart loses nothing that was acknowledged")."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

import pytest

from iomt.ledger import SqliteStorage, TxType, audit

from .biomt_nodes_world import NS, USERS, make_keystore, wait_for

pytestmark = [pytest.mark.dds, pytest.mark.slow]

DEVICES = ("hr_1", "bp_1", "hr_2", "bp_2")


def _write(path: Path, nodes: list[dict[str, Any]]) -> Path:
    path.write_text(json.dumps({"nodes": nodes}), encoding="utf-8")
    return path


def _acks(root: Path) -> list[dict[str, Any]]:
    out = []
    for d in DEVICES:
        f = root / f"acks_{d}.jsonl"
        if f.exists():
            out += [json.loads(line) for line in f.read_text().splitlines() if line.strip()]
    return out


@pytest.mark.timeout(90)
def test_sigkill_mid_append_loses_nothing_acknowledged(
    tmp_path: Path, domain_id: int, procs: Any
) -> None:
    ks = make_keystore(
        tmp_path, ["bolster_a", "admin", "dr_a", "wallet_p", "wallet_q", "researcher", *DEVICES]
    )
    keystore = str(tmp_path / "keystore")
    facility = _write(
        tmp_path / "facility.json",
        [
            {
                "factory": "iomt.nodes.bolster:bolster_node",
                "name": "bolster_a",
                "namespace": NS,
                "params": {
                    "keystore": keystore,
                    "storage_dir": str(tmp_path / "storage"),
                    "users": USERS,
                    "synchronous": "FULL",
                    "store_rate": 1000.0,
                },
            },
            {
                "factory": "iomt.nodes.biomt_admin:admin_node",
                "name": "admin",
                "namespace": NS,
                "params": {
                    "keystore": keystore,
                    "inventory": [[f"iomt://ward1/{d}", "wallet_p", "bolster_a"] for d in DEVICES],
                },
            },
        ],
    )
    ward = _write(
        tmp_path / "ward.json",
        [
            {
                "factory": "iomt.nodes.device:device_node",
                "name": d,
                "namespace": NS,
                "params": {
                    "keystore": keystore,
                    "capability": "ecc",
                    "kind": "heart_rate" if d.startswith("hr") else "blood_pressure",
                    "x": float(i),
                    "y": 0.0,
                    "wallet": "wallet_p",
                    "mode": "biomt",
                    "sample_period_s": 0.03,
                    "seed": i,
                    "biomt": {
                        "bolster": "bolster_a",
                        "admin": "admin",
                        "base": False,
                        "store_timeout_s": 1.0,
                        "ack_log": str(tmp_path / f"acks_{d}.jsonl"),
                    },
                },
            }
            for i, d in enumerate(DEVICES)
        ],
    )

    def start(spec: Path) -> Any:
        proc = procs.start(
            "-m", "iomt.runtime.container", "--spec", str(spec), "--domain", str(domain_id)
        )
        procs.wait_for_line(proc, "READY", 30)
        return proc

    bolster = start(facility)
    devices = start(ward)
    wait_for(lambda: len(_acks(tmp_path)) >= 60, 30, "acknowledged Stores before the kill")
    os.killpg(bolster.pid, signal.SIGKILL)  # while four devices store ~130 times a second
    bolster.wait(5)
    # Replies already on their way when it died may still be acknowledged; that every
    # acknowledgement is a Store the ledger holds is checked below, against the ledger.
    before = _acks(tmp_path)

    start(facility)  # a new process on the same SQLite file
    wait_for(lambda: len(_acks(tmp_path)) >= len(before) + 60, 30, "Stores after the restart")
    os.killpg(devices.pid, signal.SIGTERM)
    devices.wait(10)
    acks = _acks(tmp_path)
    by_device = {a["device"] for a in acks}
    assert len(by_device) == len(DEVICES)  # every device resumed with its key and counter

    storage = SqliteStorage(tmp_path / "storage" / "bolster_a.ledger.sqlite")
    try:
        report = audit(storage, ks.verifier("bolster_a").public_bytes())  # the chain is valid
        assert report.tree_size >= len(acks)
        for ack in acks:
            tx = storage.get_transaction(ack["seq"])
            assert tx.tx_type is TxType.STORE, ack
            assert tx.generator_id == ack["device"], ack
            assert tx.signature.hex() == ack["tag"], ack  # exactly the acknowledged Store
        counters: dict[str, list[int]] = {}
        for a in acks:
            counters.setdefault(a["device"], []).append(a["counter"])
        assert all(c == sorted(c) and len(set(c)) == len(c) for c in counters.values())
    finally:
        storage.close()
