"""The usage example in docs/ledger.md runs as written."""

from __future__ import annotations

import re
from pathlib import Path

from iomt.crypto.signing import Ed25519Signer
from iomt.ledger import Ledger, LedgerKey, MemoryStorage, PrivacyHeader

DOC = Path(__file__).resolve().parents[2] / "docs" / "ledger.md"


def test_usage_example_runs(tmp_path: Path) -> None:
    (code,) = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    old = Ledger.open(
        MemoryStorage(), LedgerKey(Ed25519Signer.generate()), privacy_header=PrivacyHeader("x")
    )
    namespace = {
        "db_path": tmp_path / "bolster.db",
        "ciphertext": b"\x01" * 48,
        "encrypted_reading": b"\x02" * 64,
        "now_ns": 1_700_000_000_000_000_000,
        "old_checkpoint": old.checkpoint(),  # size 0: a prefix of every ledger
    }
    exec(compile(code, str(DOC), "exec"), namespace)
    assert namespace["report"].tree_size == 1
    namespace["store"].close()
