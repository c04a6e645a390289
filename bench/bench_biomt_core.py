"""Benchmark the BIoMT bolster core per transaction type against the no-crypto base (Fig. 3).

    PYTHONPATH=src python bench/bench_biomt_core.py [--json] [--ops N]

In one run, on one core, for Store, Access and Observe (the paper's three transaction
types; Access and Observe both on the signed path and on a user session), plus an Observe
*update* (a Store that is due to one observer):

* **base** -- :class:`iomt.core.biomt.BaseBolster`: the same data handling (decode the
  measurement, keep it, look it up, match subscriptions), no cryptography, no ledger;
* **core** -- :class:`iomt.core.biomt.Bolster` on SQLite (WAL, synchronous=FULL: every
  transaction fsynced before it is acknowledged), its time split by the cost meter into
  crypto / ledger / policy / other; the ratio core / base is the overhead the paper plots;
* **core (memory)** -- the same on the in-memory ledger backend (no disk);
* **end to end** -- what the client adds: the device sealing its Store and checking the
  receipt; the requester signing its request and opening the sealed answer (signed path),
  or protecting it with the session and checking the answer and its receipt's structure
  (session path; the receipts are settled later by attestations, not included here).

Medians in microseconds. No targets are enforced (the paper reports <= 11 ms end to end
over a network, which the DDS layer adds); the figures feed docs/biomt.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.serialization import Encoding

from iomt.core.biomt import (
    ADMIN_ROLE,
    DEVICE_ROLE,
    PATIENT_ROLE,
    SECOND,
    BaseBolster,
    BiomtDevice,
    Bolster,
    BolsterConfig,
    BolsterIdentity,
    CostMeter,
    FacilityCA,
    Measurement,
    Phase,
    Requester,
    UserDirectory,
    bolster_validator,
)
from iomt.crypto.signing import Ed25519Signer
from iomt.ledger import (
    AccessRule,
    LedgerStorage,
    MemoryStorage,
    PrivacyHeader,
    SqliteStorage,
    TxType,
)

FACILITY = "facility-bench"
YEAR = 365 * 86_400 * SECOND
OPS = ("store", "access", "access-session", "observe", "observe-session", "observe-update")
BASE_OF = {"access-session": "access", "observe-session": "observe"}

CONFIG = BolsterConfig(
    request_rate=1e9,
    request_burst=1e9,
    store_rate=1e9,
    store_burst=1e9,
    update_rate=1e9,
    update_burst=1e9,
    max_block_age=None,
    max_unattested=1 << 20,
)
POLICY = PrivacyHeader(
    FACILITY,
    1,
    rules=(
        AccessRule("physician", TxType.ACCESS, all_devices=True),
        AccessRule("physician", TxType.OBSERVE, all_devices=True),
        AccessRule(DEVICE_ROLE, TxType.ACCESS, all_devices=True),
    ),
)


def _measurement(i: int) -> Measurement:
    return Measurement("heart_rate", time.time_ns(), (("bpm", 60.0 + i % 40),))


class Facility:
    """CA, users, one bolster with a cost meter, provisioned devices."""

    def __init__(self, storage: LedgerStorage, devices: int = 10) -> None:
        now = time.time_ns()
        self.ca = FacilityCA.generate(FACILITY, now=now)
        self.users = UserDirectory(self.ca.anchor)
        identity = BolsterIdentity.generate(
            "bolster-a", self.ca, now=now, storage_secret=os.urandom(32)
        )
        self.meter = CostMeter(keep=100_000)
        self.bolster = Bolster.open(
            identity,
            storage,
            ca=self.ca,
            users=self.users,
            policy=POLICY,
            config=CONFIG,
            meter=self.meter,
        )
        self.admin = self._user("admin-1", ADMIN_ROLE)
        self._user("patient-7", PATIENT_ROLE)
        self.physician = self._user("dr-alice", "physician")
        self.devices = [self._device(f"iomt://{FACILITY}/hr-{i}") for i in range(devices)]

    def _user(self, name: str, role: str) -> Requester:
        signer = Ed25519Signer.generate()
        now = time.time_ns()
        key = signer.raw.public_key()
        assert isinstance(key, ed25519.Ed25519PublicKey)
        cert = self.ca.issue(
            common_name=name,
            uri=f"iomt://{FACILITY}/{name}",
            public_key=key,
            now=now,
            not_after=now + YEAR,
        )
        self.users.register(cert, role, now=now)
        return Requester(
            name,
            signer,
            clock=time.time_ns,
            rng=os.urandom,
            credential=cert.public_bytes(Encoding.DER),
            validate_bolster=bolster_validator(self.ca.anchor, time.time_ns),
        )

    def _device(self, uri: str) -> BiomtDevice:
        dev = BiomtDevice(uri, anchor=self.ca.anchor, clock=time.time_ns, rng=os.urandom)
        enrolment = dev.enrol(self.bolster.credentials, owner="patient-7", attributes={})
        dev.complete(self.bolster.provision(self.admin.approve(enrolment)))
        return dev


def _median_us(samples: list[float]) -> float:
    return statistics.median(samples) / 1000


def _timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter_ns()
    fn()
    return float(time.perf_counter_ns() - t0)


def run_core(storage: LedgerStorage, n: int) -> dict[str, Any]:
    f = Facility(storage)
    b, phys = f.bolster, f.physician
    e2e: dict[str, list[float]] = {op: [] for op in OPS}

    def store(i: int) -> None:
        dev = f.devices[i % len(f.devices)]
        result = b.store(dev.store_request(_measurement(i)))
        dev.check_store_receipt(result.receipt)

    for i in range(n):  # also fills the ledger so Access finds data
        e2e["store"].append(_timed(lambda i=i: store(i)))  # type: ignore[misc]
    store_samples = f.meter.samples("store")
    f.meter.reset()

    target = f.devices[0].pseudonym
    for _ in range(n):

        def access() -> None:
            req = phys.access("bolster-a", target, limit=10)
            phys.open_access(req, b.access(req), bolster=b.verifier)

        e2e["access"].append(_timed(access))
    for _ in range(n):

        def observe() -> None:
            req = phys.observe("bolster-a", [target], duration=3600 * SECOND)
            phys.open_subscription(req, b.observe(req), bolster=b.verifier)

        e2e["observe"].append(_timed(observe))
    samples = {"store": store_samples}
    samples |= {op: f.meter.samples(op) for op in ("access", "observe")}
    # the same on a session (one handshake first)
    m2 = b.session_handshake(phys.name, phys.channels.start("bolster-a"))
    m4 = b.session_handshake(phys.name, phys.channels.finish("bolster-a", m2))
    phys.channels.confirm("bolster-a", m4)
    f.meter.reset()
    for _ in range(n):

        def access_session() -> None:
            req = phys.session_access("bolster-a", target, limit=10)
            phys.open_session_access(req, b.session_request(req))

        e2e["access-session"].append(_timed(access_session))
    for _ in range(n):

        def observe_session() -> None:
            req = phys.session_observe("bolster-a", [target], duration=3600 * SECOND)
            phys.open_session_subscription(req, b.session_request(req))

        e2e["observe-session"].append(_timed(observe_session))
    samples["access-session"] = f.meter.samples("access")
    samples["observe-session"] = f.meter.samples("observe")
    # one live subscription on a fresh device: every Store of it is due to one observer
    dev = f.devices[-1]
    sreq = phys.observe("bolster-a", [dev.pseudonym], duration=3600 * SECOND)
    observer = phys.open_subscription(sreq, b.observe(sreq), bolster=b.verifier)
    f.meter.reset()
    for i in range(n):

        def update(i: int = i) -> None:
            result = b.store(dev.store_request(_measurement(i)))
            dev.check_store_receipt(result.receipt)
            (u,) = result.updates
            observer.open(u)

        e2e["observe-update"].append(_timed(update))
    samples["observe-update"] = f.meter.samples("store")
    out: dict[str, Any] = {}
    for op in OPS:
        totals = [float(sum(s.values())) for s in samples[op]]
        phases = {str(p): _median_us([float(s[p]) for s in samples[op]]) for p in Phase}
        out[op] = {
            "core_us": _median_us(totals),
            "phases_us": phases,
            "end_to_end_us": _median_us(e2e[op]),
        }
    return out


def run_base(n: int) -> dict[str, float]:
    meter = CostMeter(keep=100_000)
    base = BaseBolster(clock=time.time_ns, meter=meter, update_rate=1e9, update_burst=1e9)
    for i in range(n):
        base.store(f"dev-{i % 10}", _measurement(i).to_bytes())
    for _ in range(n):
        base.access("dr-alice", "dev-0", limit=10)
    for _ in range(n):
        base.observe("dr-alice", ("dev-0",))
    totals = {op: meter.totals(op) for op in ("store", "access", "observe")}
    meter.reset()
    base.observe("dr-alice", ("dev-x",))
    for i in range(n):
        _, updates = base.store("dev-x", _measurement(i).to_bytes())
        assert len(updates) == 1
    return {
        **{op: _median_us([float(x) for x in t]) for op, t in totals.items()},
        "observe-update": _median_us([float(x) for x in meter.totals("store")]),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print JSON only")
    parser.add_argument("--ops", type=int, default=300, help="operations per type (default 300)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        sqlite = SqliteStorage(Path(tmp) / "bolster.db")
        try:
            core = run_core(sqlite, args.ops)
        finally:
            sqlite.close()
    memory = run_core(MemoryStorage(), args.ops)
    base = run_base(args.ops)
    result: dict[str, Any] = {"ops": args.ops, "rows": {}}
    for op in OPS:
        c = core[op]
        total = sum(c["phases_us"].values()) or 1.0
        b = base[BASE_OF.get(op, op)]
        result["rows"][op] = {
            "base_us": b,
            "core_sqlite_us": c["core_us"],
            "ratio_vs_base": c["core_us"] / b if b else None,
            "ledger_share": c["phases_us"]["ledger"] / total,
            "crypto_share": c["phases_us"]["crypto"] / total,
            "policy_share": c["phases_us"]["policy"] / total,
            "phases_us": c["phases_us"],
            "core_memory_us": memory[op]["core_us"],
            "memory_ledger_share": memory[op]["phases_us"]["ledger"]
            / (sum(memory[op]["phases_us"].values()) or 1.0),
            "end_to_end_sqlite_us": c["end_to_end_us"],
        }
    if args.json:
        print(json.dumps(result, indent=1))
        return 0
    print(f"BIoMT bolster core vs no-crypto base, {args.ops} ops per type (medians, µs)")
    head = f"{'operation':<17}{'base':>8}{'core':>10}{'ratio':>8}{'ledger':>8}{'crypto':>8}"
    head += f"{'policy':>8}{'memory':>9}{'e2e':>9}"
    print(head)
    for op, r in result["rows"].items():
        print(
            f"{op:<17}{r['base_us']:>8.1f}{r['core_sqlite_us']:>10.1f}{r['ratio_vs_base']:>7.0f}x"
            f"{r['ledger_share']:>8.0%}{r['crypto_share']:>8.0%}{r['policy_share']:>8.0%}"
            f"{r['core_memory_us']:>9.1f}{r['end_to_end_sqlite_us']:>9.1f}"
        )
    print("core = bolster on SQLite (fsync per transaction); memory = same on the in-memory")
    print("ledger; e2e = core + the device's or requester's own cryptography; shares of core.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
