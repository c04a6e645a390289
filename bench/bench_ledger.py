"""Benchmark the BIoMT bolster ledger: appends, proofs, verification, audit.

    PYTHONPATH=src python bench/bench_ledger.py [--json] [--transactions N]

Measures, in one run and on one core:

* appends/s with the receipt (inclusion proof + signed tree head) returned, for the SQLite
  backend (WAL, synchronous=FULL: each append fsynced), SQLite with synchronous=NORMAL, and
  the in-memory backend (the baseline the ratios are against); target >= 2,000/s for SQLite
  FULL;
* inclusion / consistency proof sizes and generation times at N transactions;
* verification times (inclusion, consistency, full receipt with checkpoint signature);
* a from-scratch audit of the N-transaction ledger on both backends.

Medians over batches; the machine is shared, so expect noise of +-20 %.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from iomt.crypto.signing import Ed25519Signer
from iomt.ledger import (
    AccessRule,
    Ledger,
    LedgerKey,
    LedgerKeyVerifier,
    LedgerStorage,
    MemoryStorage,
    PrivacyHeader,
    SqliteStorage,
    TxType,
    audit,
    verify_consistency,
    verify_inclusion,
    verify_receipt,
)

TARGET_APPENDS_PER_S = 2_000
BATCH = 500
ATTESTATION = 64  # proofs a bolster returns per session attestation
BODY = 256  # bytes of (already encrypted) transaction body

POLICY = PrivacyHeader(
    "facility-bench",
    1,
    frozenset(f"dev-{i}" for i in range(50)),
    (AccessRule("physician", TxType.ACCESS, all_devices=True),),
)


def _fill(ledger: Ledger, n: int, rng: random.Random) -> list[float]:
    """Append n transactions; return the appends/s of each batch."""
    types = list(TxType)
    body = rng.randbytes(BODY)
    rates = []
    done = 0
    while done < n:
        k = min(BATCH, n - done)
        t0 = time.perf_counter()
        for i in range(k):
            receipt = ledger.append(
                types[(done + i) % 5], f"dev-{(done + i) % 50}", body, time=done + i
            )
        rates.append(k / (time.perf_counter() - t0))
        assert receipt.inclusion_proof.tree_size == receipt.tree_size
        done += k
    return rates


def _median_us(fn: Callable[[], object], repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter_ns()
        fn()
        samples.append((time.perf_counter_ns() - t0) / 1000)
    return statistics.median(samples)


def run(n: int) -> dict[str, Any]:
    rng = random.Random(1)
    signer = LedgerKey(Ed25519Signer.from_private_bytes(bytes(range(32))))
    out: dict[str, Any] = {"transactions": n, "body_bytes": BODY, "batch": BATCH}
    with tempfile.TemporaryDirectory() as tmp:
        stores: dict[str, LedgerStorage] = {
            "memory": MemoryStorage(),
            "sqlite_full": SqliteStorage(Path(tmp) / "full.db"),
            "sqlite_normal": SqliteStorage(Path(tmp) / "normal.db", synchronous="NORMAL"),
        }
        ledgers = {}
        for name, store in stores.items():
            led = Ledger.open(store, signer, privacy_header=POLICY)
            rates = _fill(led, n, rng)
            out[f"appends_per_s_{name}"] = statistics.median(rates)
            ledgers[name] = led
        if "sqlite_full" in stores:
            db = Path(tmp) / "full.db"
            out["sqlite_file_bytes"] = db.stat().st_size + sum(
                p.stat().st_size for p in Path(tmp).glob("full.db-*")
            )

        # Proofs at size n, served by the SQLite ledger.
        led = ledgers["sqlite_full"]
        seqs = [rng.randrange(n) for _ in range(200)]
        proofs = [led.inclusion_proof(s) for s in seqs]
        out["inclusion_proof_hashes_median"] = statistics.median(len(p.path) for p in proofs)
        out["inclusion_proof_bytes_median"] = statistics.median(len(p.to_bytes()) for p in proofs)
        it = iter(seqs * 2)
        out["inclusion_proof_generate_us_sqlite"] = _median_us(
            lambda: led.inclusion_proof(next(it)), 200
        )
        it_mem = iter(seqs * 2)
        mem = ledgers["memory"]
        out["inclusion_proof_generate_us_memory"] = _median_us(
            lambda: mem.inclusion_proof(next(it_mem)), 200
        )
        # A bolster's session attestation: proofs for 64 recent transactions at once.
        recent = list(range(max(0, n - 256), n, 4))[:ATTESTATION]
        out["attestation_proofs_us_one_by_one"] = _median_us(
            lambda: [led.inclusion_proof(s) for s in recent], 30
        )
        out["attestation_proofs_us_batched"] = _median_us(lambda: led.inclusion_proofs(recent), 30)
        firsts = [rng.randrange(1, n) for _ in range(100)]
        cproofs = [led.consistency_proof(m) for m in firsts]
        out["consistency_proof_hashes_median"] = statistics.median(len(p.path) for p in cproofs)
        out["consistency_proof_bytes_median"] = statistics.median(
            len(p.to_bytes()) for p in cproofs
        )
        it_c = iter(firsts * 2)
        out["consistency_proof_generate_us_sqlite"] = _median_us(
            lambda: led.consistency_proof(next(it_c)), 100
        )

        # Verification (pure functions; no storage).
        root = led.root
        leaves = {s: led.get_transaction(s).leaf_hash() for s in seqs}
        pairs = iter(list(zip(seqs, proofs, strict=True)) * 3)

        def _vi() -> None:
            s, p = next(pairs)
            verify_inclusion(leaves[s], p, root)

        out["verify_inclusion_us"] = _median_us(_vi, 500)
        roots = {m: led.root_at(m) for m in firsts}
        cp = iter(list(zip(firsts, cproofs, strict=True)) * 3)

        def _vc() -> None:
            m, p = next(cp)
            verify_consistency(p, roots[m], root)

        out["verify_consistency_us"] = _median_us(_vc, 300)
        receipt = led.append(TxType.STORE, "dev-1", b"x" * BODY, time=n)
        tx = led.get_transaction(receipt.seq)
        out["verify_receipt_us"] = _median_us(
            lambda: verify_receipt(receipt, LedgerKeyVerifier(signer.verifier), transaction=tx), 300
        )

        # Audit from scratch.
        for name in ("memory", "sqlite_full"):
            t0 = time.perf_counter()
            report = audit(stores[name], signer.public_key_bytes)
            out[f"audit_s_{name}"] = time.perf_counter() - t0
            out[f"audit_blocks_{name}"] = report.block_height
        for store in stores.values():
            store.close()
    out["target_appends_per_s"] = TARGET_APPENDS_PER_S
    out["sqlite_full_vs_target"] = out["appends_per_s_sqlite_full"] / TARGET_APPENDS_PER_S
    out["sqlite_full_vs_memory"] = out["appends_per_s_sqlite_full"] / out["appends_per_s_memory"]
    out["sqlite_normal_vs_memory"] = (
        out["appends_per_s_sqlite_normal"] / out["appends_per_s_memory"]
    )
    out["meets_target"] = out["appends_per_s_sqlite_full"] >= TARGET_APPENDS_PER_S
    return out


def _print(r: dict[str, Any]) -> None:
    n = r["transactions"]
    print(f"BIoMT ledger benchmark: {n} transactions of {r['body_bytes']} B, medians")
    print("appends/s with receipt (inclusion proof + signed tree head):")
    mem = r["appends_per_s_memory"]
    for name, label in (
        ("memory", "memory (baseline)"),
        ("sqlite_full", "SQLite WAL FULL"),
        ("sqlite_normal", "SQLite WAL NORMAL"),
    ):
        rate = r[f"appends_per_s_{name}"]
        print(f"  {label:<20} {rate:>9,.0f}/s   x{rate / mem:.2f} of memory")
    verdict = "meets" if r["meets_target"] else "MISSES"
    print(
        f"  target (SQLite FULL) {TARGET_APPENDS_PER_S:>9,}/s   measured/target "
        f"{r['sqlite_full_vs_target']:.2f} -> {verdict} the target"
    )
    print(f"proofs at size {n}:")
    print(
        f"  inclusion   {r['inclusion_proof_hashes_median']:.0f} hashes, "
        f"{r['inclusion_proof_bytes_median']:.0f} B; generate "
        f"{r['inclusion_proof_generate_us_sqlite']:.0f} us (SQLite), "
        f"{r['inclusion_proof_generate_us_memory']:.0f} us (memory)"
    )
    one, batched = r["attestation_proofs_us_one_by_one"], r["attestation_proofs_us_batched"]
    print(
        f"  {ATTESTATION} inclusion proofs (a session attestation): one by one {one:.0f} us, "
        f"batched {batched:.0f} us (x{batched / one:.2f})"
    )
    print(
        f"  consistency {r['consistency_proof_hashes_median']:.0f} hashes, "
        f"{r['consistency_proof_bytes_median']:.0f} B; generate "
        f"{r['consistency_proof_generate_us_sqlite']:.0f} us (SQLite)"
    )
    print(
        f"verify: inclusion {r['verify_inclusion_us']:.1f} us, consistency "
        f"{r['verify_consistency_us']:.1f} us, receipt (proof + Ed25519) "
        f"{r['verify_receipt_us']:.1f} us"
    )
    print(
        f"audit of {n} transactions: SQLite {r['audit_s_sqlite_full']:.2f} s "
        f"({r['audit_blocks_sqlite_full']} blocks), memory {r['audit_s_memory']:.2f} s "
        f"(x{r['audit_s_sqlite_full'] / r['audit_s_memory']:.2f})"
    )
    print(f"SQLite file: {r['sqlite_file_bytes'] / 1e6:.1f} MB")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print JSON only")
    parser.add_argument("--transactions", type=int, default=10_000)
    args = parser.parse_args(argv)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core
    result = run(args.transactions)
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        _print(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
