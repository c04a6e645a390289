"""Benchmark BIoMT's transactions over DDS against the no-crypto base (the paper's Fig. 3).

    PYTHONPATH=src python bench/bench_biomt.py [--json] [--ops N] [--synchronous FULL,NORMAL]
                                               [--experiment]

A real bolster node (with the admin and cloud nodes) runs in a container process of its
own; this process is the client: it provisions a device through the admin and the bolster,
then runs ``--ops`` rounds of Store, Access and Observe, each once on the BIoMT path and
once on the no-crypto base behind the same node and service path (alternating which goes
first), one request at a time, timing each client-side end to end:

* Store: the device seals the reading under its shared key, calls ``~/store``, checks the
  receipt (our Store, in a signed tree head); base: the plain reading to ``~/base/store``.
* Access: the physician signs, calls ``~/access`` for the device's last 2 s (at most 10
  records), checks the receipt, opens the sealed records; base: ``~/base/access``, the same
  records in plain.
* Observe: the physician signs, calls ``~/observe``, checks the receipt, unwraps the
  subscription key; base: ``~/base/observe``.

Medians in milliseconds; overhead = BIoMT p50 - base p50; target: overhead p50 <= 1 ms per
transaction type (the paper reports up to 11 ms). The bolster's thread CPU time per
transaction and the core's phase split come from the bolster's results file.

``--experiment`` also runs the whole-system experiment (``iomt launch scale_10 --mode
biomt``, small) and prints its overheads, where the ward's other processes load the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from iomt.core.biomt import (
    FOREVER,
    AccessResult,
    BiomtDevice,
    BolsterCredentials,
    FacilityCA,
    Measurement,
    Provisioned,
    ProvisionRequest,
    Requester,
    StoreReceipt,
    Subscription,
)
from iomt.core.biomt.identity import certificate_from_der
from iomt.core.biomt.messages import AccessPayload
from iomt.core.biomt.sealing import seal_to
from iomt.crypto.keystore import Keystore
from iomt.msg import BolsterService
from iomt.nodes import biomt_wire as bw
from iomt.nodes.biomt_admin import ApprovalRequest, approval_aad
from iomt.runtime import Client, Context, Node

NS = "/ward1"
TARGET_MS = 1.0
ACCESS_LIMIT = 10  # records per Access (the same on both paths)
# Subscriptions last 0.2 s: a handful are live at once, so each Store fans out to a few
# observers (as in a ward), not to the hundreds a longer duration would pile up here.
OBSERVE_NS = 200_000_000
USERS = [["admin", "admin"], ["dr_a", "physician"], ["wallet_p", "patient"]]


def _spec(root: Path, synchronous: str) -> dict[str, Any]:
    ks = str(root / "keystore")
    return {
        "nodes": [
            {
                "factory": "iomt.nodes.bolster:bolster_node",
                "name": "bolster_a",
                "namespace": NS,
                "params": {
                    "keystore": ks,
                    "storage_dir": str(root / "storage"),
                    "users": USERS,
                    "rules": [
                        {"role": "physician", "action": "access"},
                        {"role": "physician", "action": "observe"},
                    ],
                    "observers": ["dr_a"],
                    "synchronous": synchronous,
                    "request_rate": 1e6,
                    "store_rate": 1e6,
                    "results": str(root / "bolster_a.jsonl"),
                },
            },
            {
                "factory": "iomt.nodes.biomt_admin:admin_node",
                "name": "admin",
                "namespace": NS,
                "params": {
                    "keystore": ks,
                    "inventory": [["iomt://ward1/hr_1", "wallet_p", "bolster_a"]],
                },
            },
        ]
    }


class Bench:
    def __init__(self, root: Path, domain: int, synchronous: str) -> None:
        self.root = root
        ks = Keystore.create(root / "keystore", facility="ward1")
        for name in ("bolster_a", "admin", "dr_a", "wallet_p", "hr_1"):
            ks.add_identity(name)
        self.ks = ks
        spec = root / "spec.json"
        spec.write_text(json.dumps(_spec(root, synchronous)))
        ready = root / "ready"
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "iomt.runtime.container",
                "--spec",
                str(spec),
                "--domain",
                str(domain),
                "--ready-file",
                str(ready),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 30
        while not ready.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                raise SystemExit(f"bolster process failed: {err[-2000:]}")
            time.sleep(0.05)
        self.ctx = Context(domain_id=domain)
        self.node = Node("bench", context=self.ctx, namespace=NS)
        self.clients: dict[str, Client] = {}
        for s in (
            "credentials",
            "provision",
            "store",
            "access",
            "observe",
            "base/store",
            "base/access",
            "base/observe",
        ):
            self._client(f"{NS}/bolster_a/{s}")
        for s in ("credentials", "approve"):
            self._client(f"{NS}/admin/{s}")
        for c in self.clients.values():
            assert c.wait_for_service(10), c.service_name
        self.doctor = Requester(
            "dr_a", ks.identity("dr_a").signer, clock=time.time_ns, rng=os.urandom
        )
        self.bolster_key = ks.verifier("bolster_a")
        self.device = self._provision()

    def _client(self, path: str) -> Client:
        c = self.node.create_client(BolsterService, path)
        self.clients[path] = c
        return c

    def call(self, path: str, body: bytes = b"", requester: str = "bench") -> bytes:
        resp = self.clients[f"{NS}/{path}"].call(
            BolsterService.Request(requester=requester, body=body), 10.0
        )
        return bw.raise_for_status(path, resp)

    def _provision(self) -> BiomtDevice:
        anchor = FacilityCA.from_keystore(self.ks).anchor
        device = BiomtDevice("iomt://ward1/hr_1", anchor=anchor, clock=time.time_ns, rng=os.urandom)
        creds = BolsterCredentials.from_bytes(self.call("bolster_a/credentials"))
        admin_key = anchor.validate_agreement(
            certificate_from_der(self.call("admin/credentials")), now=time.time_ns(), name="admin"
        )
        enrolment = device.enrol(creds, owner="wallet_p", attributes={"kind": "heart_rate"})
        sealed = seal_to(
            admin_key, enrolment.submission.to_bytes(), approval_aad("admin", "bolster_a")
        )
        approved = self.call("admin/approve", ApprovalRequest(creds, sealed).to_bytes())
        provisioned = self.call(
            "bolster_a/provision", ProvisionRequest.from_bytes(approved).to_bytes()
        )
        device.complete(Provisioned.from_bytes(provisioned))
        return device

    # one operation each, returning client-side microseconds
    def store(self, base: bool, i: int) -> int:
        m = Measurement("heart_rate", time.time_ns(), (("bpm", 60.0 + i % 40),))
        t0 = time.perf_counter_ns()
        if base:
            self.call("bolster_a/base/store", m.to_bytes(), self.device.pseudonym)
        else:
            req = self.device.store_request(m)
            receipt = StoreReceipt.from_bytes(
                self.call("bolster_a/store", req.to_bytes(), req.device)
            )
            self.device.check_store_receipt(receipt)
        return (time.perf_counter_ns() - t0) // 1000

    def access(self, base: bool, i: int) -> int:
        since = time.time_ns() - 2 * 10**9
        t0 = time.perf_counter_ns()
        if base:
            q = bw.BaseAccess(self.device.pseudonym, since, FOREVER, ACCESS_LIMIT)
            AccessPayload.from_bytes(self.call("bolster_a/base/access", q.to_bytes(), "dr_a"))
        else:
            req = self.doctor.access(
                "bolster_a", self.device.pseudonym, since=since, limit=ACCESS_LIMIT
            )
            res = AccessResult.from_bytes(self.call("bolster_a/access", req.to_bytes(), "dr_a"))
            self.doctor.open_access(req, res, bolster=self.bolster_key)
        return (time.perf_counter_ns() - t0) // 1000

    def observe(self, base: bool, i: int) -> int:
        t0 = time.perf_counter_ns()
        if base:
            q = bw.BaseObserve((self.device.pseudonym,), OBSERVE_NS, 0)
            self.call("bolster_a/base/observe", q.to_bytes(), "dr_a")
        else:
            req = self.doctor.observe("bolster_a", (self.device.pseudonym,), duration=OBSERVE_NS)
            sub = Subscription.from_bytes(self.call("bolster_a/observe", req.to_bytes(), "dr_a"))
            self.doctor.open_subscription(req, sub, bolster=self.bolster_key)
        return (time.perf_counter_ns() - t0) // 1000

    def close(self) -> dict[str, Any]:
        self.node.destroy_node()
        self.ctx.shutdown()
        self.proc.terminate()
        self.proc.wait(10)
        lines = (self.root / "bolster_a.jsonl").read_text().splitlines()
        return json.loads(lines[-1]) if lines else {}


def measure(synchronous: str, ops: int, domain: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        bench = Bench(Path(tmp), domain, synchronous)
        samples: dict[str, dict[str, list[int]]] = {
            op: {"biomt": [], "base": []} for op in ("store", "access", "observe")
        }
        try:
            for i in range(20):  # warm-up: matching, caches, the ledger's first blocks
                for op in samples:
                    getattr(bench, op)(False, i)
                    getattr(bench, op)(True, i)
            for i in range(ops):
                for op in samples:
                    order = (False, True) if i % 2 else (True, False)
                    for base in order:
                        samples[op]["base" if base else "biomt"].append(getattr(bench, op)(base, i))
        finally:
            metrics = bench.close()
    out: dict[str, Any] = {"synchronous": synchronous, "ops": ops}
    for op, paths in samples.items():
        b = statistics.median(paths["biomt"]) / 1000
        s = statistics.median(paths["base"]) / 1000
        cpu = metrics.get("cpu_us", {})
        out[op] = {
            "base_ms": round(s, 3),
            "biomt_ms": round(b, 3),
            "overhead_ms": round(b - s, 3),
            "biomt_p95_ms": round(
                sorted(paths["biomt"])[int(0.95 * len(paths["biomt"]))] / 1000, 3
            ),
            "bolster_cpu_us": {
                "biomt": statistics.median(cpu.get(op, [0])),
                "base": statistics.median(cpu.get(f"base/{op}", [0])),
            },
            "core_phases_us": metrics.get("phases", {}).get(op),
            "target_met": b - s <= TARGET_MS,
        }
    return out


def experiment(domain: int) -> dict[str, Any]:
    from iomt.experiments.biomt import BiomtConfig, run

    with tempfile.TemporaryDirectory() as tmp:
        report = run(
            BiomtConfig(
                "scale_10",
                requests=40,
                biomt_ops=120,
                domain_id=domain,
                run_dir=Path(tmp) / "run",
                record=False,
                timeout_s=120,
            )
        )
    return {op: report["delay_ms"][op]["overhead"] for op in report["delay_ms"]}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ops", type=int, default=200)
    parser.add_argument("--synchronous", default="FULL,NORMAL")
    parser.add_argument("--experiment", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    domain = random.SystemRandom().randint(100, 200)
    results = [measure(s.strip().upper(), args.ops, domain) for s in args.synchronous.split(",")]
    report: dict[str, Any] = {"target_overhead_p50_ms": TARGET_MS, "runs": results}
    if args.experiment:
        report["experiment_overhead_ms"] = experiment(domain)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(
        f"BIoMT over DDS vs the no-crypto base, {args.ops} rounds, one request at a time "
        f"(p50 ms; target overhead <= {TARGET_MS} ms; the paper: up to 11 ms)"
    )
    for r in results:
        print(f"\nledger SQLite synchronous={r['synchronous']}")
        print(
            f"{'':9s} {'base':>7s} {'BIoMT':>7s} {'overhead':>9s} {'BIoMT p95':>10s} "
            f"{'cpu base':>9s} {'cpu BIoMT':>10s}  target"
        )
        for op in ("store", "access", "observe"):
            x = r[op]
            print(
                f"{op:9s} {x['base_ms']:7.3f} {x['biomt_ms']:7.3f} {x['overhead_ms']:9.3f} "
                f"{x['biomt_p95_ms']:10.3f} {x['bolster_cpu_us']['base']:8.0f}µ "
                f"{x['bolster_cpu_us']['biomt']:9.0f}µ  {'ok' if x['target_met'] else 'MISSED'}"
            )
            if x["core_phases_us"]:
                p = x["core_phases_us"]
                print(
                    f"{'':9s} core: total {p['median_us']:.0f} µs = crypto "
                    f"{p['crypto_us']:.0f} + ledger {p['ledger_us']:.0f} + policy "
                    f"{p['policy_us']:.0f} + other {p['other_us']:.0f}"
                )
    if args.experiment:
        print(
            "\nwhole-system run (scale_10 --mode biomt, FULL): overhead p50 ms",
            {k: v["p50_ms"] for k, v in report["experiment_overhead_ms"].items()},
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
