"""Child process for the crash test: append forever, print each acknowledged seq.

    python crash_writer.py DB_PATH SEED_HEX

Each line ``<seq>`` is printed (and flushed) only after ``Ledger.append`` returned, i.e. after
the commit was durable; the parent kills this process with SIGKILL at a random moment and
checks that every printed seq survived. Bodies are derived from the seq so the parent can
check content too.
"""

from __future__ import annotations

import hashlib
import sys

from iomt.crypto.signing import Ed25519Signer
from iomt.ledger import AccessRule, Ledger, LedgerKey, PrivacyHeader, SqliteStorage, TxType

POLICY = PrivacyHeader(
    "facility-crash",
    1,
    frozenset({"dev-a", "dev-b"}),
    (AccessRule("physician", TxType.ACCESS, all_devices=True),),
)
TYPES = list(TxType)


def body_for(seq: int) -> bytes:
    return hashlib.sha256(b"crash-test body %d" % seq).digest() * (1 + seq % 4)


def main() -> None:
    path, seed = sys.argv[1], bytes.fromhex(sys.argv[2])
    store = SqliteStorage(path)
    ledger = Ledger.open(
        store,
        LedgerKey(Ed25519Signer.from_private_bytes(seed)),
        privacy_header=POLICY,
        max_block_transactions=7,
    )
    print("ready", ledger.size, flush=True)
    while True:
        seq = ledger.size
        record = b"record %d" % seq if TYPES[seq % 5] is TxType.STORE else None
        receipt = ledger.append(
            TYPES[seq % 5],
            "dev-a" if seq % 2 else "dev-b",
            body_for(seq),
            time=seq,
            local_record=record,
        )
        print(receipt.seq, flush=True)


if __name__ == "__main__":
    main()
