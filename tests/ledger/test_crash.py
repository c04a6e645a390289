"""Acknowledged means committed: SIGKILL a writer mid-append, reopen, lose nothing."""

from __future__ import annotations

import os
import random
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from iomt.crypto.signing import Ed25519Signer
from iomt.ledger import Ledger, LedgerKey, LocalStorage, SqliteStorage, TxType, audit

from .crash_writer import body_for

SEED = bytes(range(100, 132))
WRITER = Path(__file__).with_name("crash_writer.py")
SRC = Path(__file__).resolve().parents[2] / "src"


def _run_and_kill(db: Path, rng: random.Random, deadline_s: float = 20.0) -> list[int]:
    """Start the writer, let it acknowledge some appends, SIGKILL it; return the acks."""
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    child = subprocess.Popen(
        [sys.executable, str(WRITER), str(db), SEED.hex()],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert child.stdout is not None
    acked: list[int] = []
    want = rng.randint(5, 150)
    buffer = b""
    try:
        deadline = time.monotonic() + deadline_s
        fd = child.stdout.fileno()
        while len(acked) < want:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"writer too slow: {len(acked)} acks"
            ready, _, _ = select.select([fd], [], [], remaining)
            if not ready:
                continue
            chunk = os.read(fd, 65536)
            assert chunk, f"writer exited early: {child.stderr.read() if child.stderr else ''}"
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            acked.extend(int(line) for line in lines if not line.startswith(b"ready"))
        time.sleep(rng.uniform(0, 0.003))  # land somewhere inside the next append
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
        # Lines already in the pipe were acknowledged before the kill, too.
        rest = buffer + child.stdout.read()
        acked.extend(
            int(line) for line in rest.split(b"\n") if line and not line.startswith(b"ready")
        )
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(timeout=10)
        child.stdout.close()
        if child.stderr is not None:
            child.stderr.close()
    assert child.returncode == -signal.SIGKILL
    return acked


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_sigkill_mid_append_loses_nothing_acknowledged(tmp_path: Path) -> None:
    db = tmp_path / "crash.db"
    rng = random.Random(20240607)
    signer = LedgerKey(Ed25519Signer.from_private_bytes(SEED))
    all_acked: list[int] = []
    for _round in range(4):
        acked = _run_and_kill(db, rng)
        assert acked == list(range(len(all_acked), len(all_acked) + len(acked)))
        all_acked.extend(acked)
        with SqliteStorage(db) as store:
            report = audit(store, signer.public_key_bytes)  # a valid chain...
            ledger = Ledger.open(store, signer)
            # ...holding every acknowledged transaction (maybe one more, committed but
            # killed before it was printed), with the content that was appended.
            assert ledger.size in (len(all_acked), len(all_acked) + 1)
            assert report.tree_size == ledger.size
            local = LocalStorage(store)
            for seq in all_acked[-20:] + all_acked[:3]:
                tx = ledger.get_transaction(seq)
                assert tx.body == body_for(seq) and tx.time == seq
                if tx.tx_type is TxType.STORE:
                    assert local.get(tx.generator_id, seq).data == b"record %d" % seq
        all_acked = list(range(ledger.size))  # the next writer continues from here
    assert len(all_acked) > 20
