"""A small BIoMT facility on DDS in this process: bolster, admin, cloud, a device, a client.

Every node is the real one (iomt.nodes.*) on a private domain, spun by one executor thread;
the test thread talks to the services through ordinary clients (synchronous calls), as a
user's tool would.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from iomt.core.biomt import Requester
from iomt.core.vitals import VitalKind, VitalsGenerator
from iomt.crypto.keystore import Keystore
from iomt.msg import BiomtObserveUpdate, BiomtTransaction, BolsterService, CloudService
from iomt.nodes import biomt_wire as bw
from iomt.nodes.biomt_admin import AdminNode
from iomt.nodes.biomt_device import BiomtDeviceLink
from iomt.nodes.bolster import BolsterNode
from iomt.nodes.calls import Calls
from iomt.nodes.cloud import CloudNode
from iomt.nodes.params import AdminParams, BolsterParams, CloudParams, DeviceBiomt
from iomt.runtime import Client, Context, Executor, Node

NS = "/ward1"
USERS = [
    ["admin", "admin"],
    ["dr_a", "physician"],
    ["wallet_p", "patient"],
    ["wallet_q", "patient"],
    ["researcher", "researcher"],
]
RULES = [
    {"role": "physician", "action": "access"},
    {"role": "physician", "action": "observe", "observe_interval_s": 0.0},
    {"role": "device", "action": "access"},  # device-to-device communication setups
]
IDENTITIES = [
    "bolster_a",
    "bolster_b",
    "bolster_c",
    "admin",
    "cloud",
    "dr_a",
    "wallet_p",
    "wallet_q",
    "researcher",
    "hr_1",
    "bp_1",
]


def make_keystore(root: Path, names: list[str] = IDENTITIES) -> Keystore:
    ks = Keystore.create(root / "keystore", facility="ward1")
    for name in names:
        ks.add_identity(name)
    return ks


def wait_for(cond: Callable[[], Any], timeout_s: float = 10.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what or cond}")


class World:
    def __init__(
        self,
        root: Path,
        domain_id: int,
        *,
        retention: str = "keep",
        devices: tuple[tuple[str, str], ...] = (("hr_1", "wallet_p"),),
        block_transactions: int = 8,
    ) -> None:
        self.root = root
        self.ks = make_keystore(root)
        self.keystore = str(root / "keystore")
        self.ctx = Context(domain_id=domain_id)
        self.executor = Executor(self.ctx)
        self.nodes: list[Node] = []
        self.bolster = self._add(
            BolsterNode(
                self.ctx,
                name="bolster_a",
                namespace=NS,
                config=BolsterParams.from_mapping(
                    {
                        "keystore": self.keystore,
                        "storage_dir": str(root / "storage"),
                        "users": USERS,
                        "rules": RULES,
                        "observers": ["dr_a"],
                        "synchronous": "NORMAL",
                        "retention": retention,
                        "cloud": "cloud",
                        "cloud_period_s": 0.2,
                        "max_block_transactions": block_transactions,
                        "max_block_age_s": 0.3,
                    }
                ),
            )
        )
        self.admin = self._add(
            AdminNode(
                self.ctx,
                name="admin",
                namespace=NS,
                config=AdminParams(
                    keystore=self.keystore,
                    inventory=tuple(
                        (f"iomt://ward1/{d}", owner, "bolster_a") for d, owner in devices
                    ),
                ),
            )
        )
        self.cloud = self._add(
            CloudNode(
                self.ctx,
                name="cloud",
                namespace=NS,
                config=CloudParams(
                    keystore=self.keystore, storage_dir=str(root / "storage"), users=USERS
                ),
            )
        )
        self.links: dict[str, BiomtDeviceLink] = {}
        self.sampling: dict[str, bool] = {}
        for device, owner in devices:
            node = self._add(Node(device, context=self.ctx, namespace=NS))
            link = BiomtDeviceLink(
                node,
                keystore=self.ks,
                identity=self.ks.identity(device),
                calls=Calls(node),
                kind="heart_rate",
                owner=owner,
                config=DeviceBiomt(bolster="bolster_a", admin="admin"),
            )
            self.links[device] = link
            self.sampling[device] = True
            vitals = VitalsGenerator(VitalKind.HEART_RATE, seed=len(self.links))

            def sample(link: BiomtDeviceLink = link, vitals: Any = vitals, d: str = device) -> None:
                if self.sampling[d]:
                    link.on_reading(vitals.next(), time.time_ns())

            node.create_timer(0.05, sample)
        # the test's own node: clients for users, and what a user would watch on the bus
        self.me = self._add(Node("dr_a", context=self.ctx, namespace=NS))
        self.updates: list[BiomtObserveUpdate] = []
        self.base_updates: list[BiomtObserveUpdate] = []
        self.ledger: list[BiomtTransaction] = []
        self.me.create_subscription(
            BiomtObserveUpdate, "~/observe_updates", self.updates.append, bw.UPDATES_QOS
        )
        self.me.create_subscription(
            BiomtObserveUpdate, "~/base/observe_updates", self.base_updates.append, bw.UPDATES_QOS
        )
        self.me.create_subscription(
            BiomtTransaction, f"{NS}/bolster_a/ledger", self.ledger.append, 1000
        )
        self._clients: dict[str, Client] = {}
        for n in self.nodes:
            self.executor.add_node(n)
        self.executor.spin_in_thread()

    def _add(self, node: Any) -> Any:
        self.nodes.append(node)
        return node

    def requester(self, name: str) -> Requester:
        import os

        return Requester(name, self.ks.identity(name).signer, clock=time.time_ns, rng=os.urandom)

    def client(self, path: str, srv: Any = BolsterService) -> Client:
        client = self._clients.get(path)
        if client is None:
            client = self.me.create_client(srv, path)
            self._clients[path] = client
            assert client.wait_for_service(5.0), path
        return client

    def call(self, service: str, body: bytes, requester: str = "test") -> Any:
        """Call ``<ns>/bolster_a/<service>`` (or an absolute path) and return the response."""
        path = service if service.startswith("/") else f"{NS}/bolster_a/{service}"
        srv = CloudService if "/cloud/" in path else BolsterService
        return self.client(path, srv).call(srv.Request(requester=requester, body=body), 5.0)

    def ok(self, service: str, body: bytes, requester: str = "test") -> bytes:
        check = bw.raise_for_cloud_status if "/cloud/" in service else bw.raise_for_status
        return check(service, self.call(service, body, requester))

    def close(self) -> None:
        self.executor.shutdown()
        for n in reversed(self.nodes):
            n.destroy_node()
        self.executor.close()
        self.ctx.shutdown()
