"""The facility bolster node (Seliem & Elgazzar, BIoMT §II): a thin DDS shell around
:class:`iomt.core.biomt.Bolster`.

Its services (Table 1 and the ones around it) are
:mod:`iomt.nodes.bolster_services`' handlers and :mod:`iomt.nodes.bolster_base`'s no-crypto
base; what it publishes beside its answers is :mod:`iomt.nodes.bolster_feed`'s.

Timers seal due blocks, expire subscriptions, push sealed blocks to the cloud (anonymized,
per :meth:`Bolster.cloud_batches`) and apply the cloud's signed acks, and drive the
cluster membership (:mod:`iomt.nodes.cluster_head`).

**Durability.** The ledger lives in ``<storage_dir>/<name>.ledger.sqlite`` (WAL); a response
is sent only after :meth:`Ledger.append` returned, i.e. after the SQLite commit. With
``synchronous="FULL"`` (default) that commit is fsynced: nothing acknowledged is lost even
on power failure. ``"NORMAL"`` skips the fsync: a killed or crashed *process* still loses
nothing acknowledged (the commit is in the WAL file in the OS page cache; SQLite replays it
on open), only a power cut or kernel crash can lose the commits since the WAL was last
synced -- possibly an acknowledged Remove, so FULL stays the default (with user sessions the
1 ms target holds under it; docs/biomt_nodes.md, "Durability"). The storage secret
(root of the body/record keys) is ``<storage_dir>/<name>.secret`` (0600), created once.

**Cost accounting** (Fig. 3/4 stand-in): each handler's thread CPU time and wall time at the
bolster, per operation, for the real path and the base, plus the core's
:class:`~iomt.core.biomt.CostMeter` phases; written to ``results`` when the node stops.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from iomt.core.biomt import (
    BaseBolster,
    Bolster,
    BolsterIdentity,
    CostMeter,
    FacilityCA,
)
from iomt.core.biomt.admission import MasterAdmission
from iomt.core.biomt.sharing_events import SharingRecorder
from iomt.core.biomt.sync_client import CloudSyncClient
from iomt.core.replies import ReplyChecker
from iomt.errors import IomtError
from iomt.ledger import SqliteStorage
from iomt.msg import BolsterService, SessionHandshake
from iomt.nodes import biomt_wire as bw
from iomt.nodes.biomt_ledger import LedgerView
from iomt.nodes.bolster_base import BaseServices
from iomt.nodes.bolster_costs import ServiceCosts, phases
from iomt.nodes.bolster_feed import Answers, LedgerFeed
from iomt.nodes.bolster_links import link_upward
from iomt.nodes.bolster_services import Table1Services, proven
from iomt.nodes.bolster_sessions import SessionServices
from iomt.nodes.bolster_setup import (
    bolster_config,
    load_or_create_secret,
    privacy_header,
    user_directory,
)
from iomt.nodes.calls import Calls
from iomt.nodes.cluster_head import ClusterAgent
from iomt.nodes.handshaking import handshake_responder
from iomt.nodes.identity import open_keystore, reply_signer
from iomt.nodes.params import BolsterParams, Synchronous
from iomt.nodes.results import ResultsWriter
from iomt.runtime import Node, RuntimeContext
from iomt.runtime.naming import node_fqn

__all__ = [
    "DEFAULT_SYNCHRONOUS",
    "BolsterNode",
    "BolsterParams",
    "bolster_node",
    "load_or_create_secret",
    "privacy_header",
]

#: The ledger's SQLite ``synchronous`` setting unless told otherwise (see the module doc).
DEFAULT_SYNCHRONOUS: Synchronous = BolsterParams.synchronous


class BolsterNode(Node):
    def __init__(
        self, context: RuntimeContext, *, name: str, namespace: str, config: BolsterParams
    ) -> None:
        super().__init__(name, context=context, namespace=namespace)
        c = self.config = config
        ks = open_keystore(c.keystore)
        self.facility = ks.facility
        identity = ks.identity(name)
        storage = Path(c.storage_dir)
        storage.mkdir(parents=True, exist_ok=True)
        secret = load_or_create_secret(storage / f"{name}.secret")
        self.ca = FacilityCA.from_keystore(ks)
        self.users = user_directory(ks, self.ca.anchor, c.users, now=time.time_ns())
        self.meter = CostMeter(keep=100_000)
        self.base_meter = CostMeter(keep=100_000)
        self.ledger_path = storage / f"{name}.ledger.sqlite"
        self.synchronous = c.synchronous
        self._storage = SqliteStorage(
            self.ledger_path, synchronous=self.synchronous, check_same_thread=False
        )
        t0 = time.perf_counter()
        self.bolster = Bolster.open(
            BolsterIdentity.from_keystore(
                identity, facility_id=self.facility, storage_secret=secret
            ),
            self._storage,
            ca=self.ca,
            users=self.users,
            policy=privacy_header(self.facility, c.rules or ()),
            config=bolster_config(c),
            meter=self.meter,
            cloud_verifier=ks.verifier(c.cloud) if c.cloud else None,
        )
        self.open_s = time.perf_counter() - t0
        self.base = BaseBolster(
            clock=time.time_ns,
            meter=self.base_meter,
            update_rate=c.update_rate,
            update_burst=2 * c.update_rate,
        )
        self.view = LedgerView(self.bolster, secret)
        self.recorder = SharingRecorder(
            bolster_id=name, view=self.view, users=self.users, keystore=ks, clock=time.time_ns
        )
        self.calls = Calls(self)
        self._results = ResultsWriter(c.results)
        self.costs = ServiceCosts()
        # multiple bolsters: the master's shared chain admits what this one provisions
        self.admission = MasterAdmission() if c.master else None

        self.feed = LedgerFeed(self, self.bolster, self.view)
        answers = Answers(self, self.feed)
        self.sessions = SessionServices(
            self, self.bolster, answers=answers, feed=self.feed, costs=self.costs
        )
        self.table1 = Table1Services(
            self.bolster,
            answers=answers,
            feed=self.feed,
            sessions=self.sessions,
            view=self.view,
            recorder=self.recorder,
            admission=self.admission,
        )
        self.base_services = BaseServices(
            self, self.base, answer=answers.answer, refuse=answers.refuse
        )
        for observer in c.observers or ():
            self.feed.updates(observer)
            self.base_services.updates(observer)

        self.replies = reply_signer(identity)
        self.proofs = bw.ServiceReplies(self.replies, "bolster")
        handlers = {**self.table1.handlers(), **self.base_services.handlers()}
        for service, handler in handlers.items():
            self.create_service(
                BolsterService,
                f"~/{service}",
                self.costs.timed(service, proven(self.proofs, service, handler)),
                deferred=True,
            )
        self.checker = ReplyChecker(ks.credential_validator())  # the answers we take
        self.create_service(
            SessionHandshake,
            "~/handshake",
            handshake_responder(self.sessions.handshake, name, self.replies),
            deferred=True,
        )
        self.create_timer(0.5, self._housekeeping)

        # cloud layer, and multiple bolsters
        self.sync = CloudSyncClient(self.bolster, max_blocks=4)
        link_upward(
            self,
            c,
            sync=self.sync,
            admission=self.admission,
            bolster=self.bolster,
            calls=self.calls,
            checker=self.checker,
        )

        # cluster layer
        self.cluster = None
        if c.cluster is not None:
            self.cluster = ClusterAgent(
                self,
                ledger=self.bolster,
                anchor=self.ca.anchor,
                users=self.users,
                calls=self.calls,
                checker=self.checker,
                keystore=ks,
                identity=identity,
                state_path=storage / f"{name}.cluster.json",
                config=c.cluster,
            )
        self.get_logger().info(
            "bolster %s: %d transactions, %d devices (opened in %.2f s)",
            name,
            self.bolster.ledger.size,
            len(self.bolster.devices()),
            self.open_s,
        )

    # -- timers -----------------------------------------------------------------------------

    def _housekeeping(self) -> None:
        try:
            self.bolster.seal_if_due()
            self.bolster.expire_subscriptions()
        except IomtError as exc:
            self.get_logger().error("housekeeping failed: %s", exc)

    # -- lifetime ---------------------------------------------------------------------------

    def metrics(self) -> dict[str, Any]:
        ledger = self.bolster.ledger
        return {
            "record": "bolster",
            "bolster": self.get_name(),
            "synchronous": self.synchronous,
            "transactions": ledger.size,
            "blocks": ledger.block_count,
            "devices": len(self.bolster.devices()),
            "open_s": round(self.open_s, 3),
            **self.costs.summary(),
            "phases": phases(self.meter),
            "base_phases": phases(self.base_meter),
            "cloud": self.sync.counts,
            "master": self.admission.counts if self.admission else {"chained": 0, "failed": 0},
            "cluster": self.cluster.summary() if self.cluster is not None else None,
            "process_cpu_s": round(time.process_time(), 3),
        }

    def destroy_node(self) -> None:
        self._results.write(self.metrics())
        self._results.close()
        super().destroy_node()
        self._storage.close()


def bolster_node(
    context: RuntimeContext, *, name: str, namespace: str, **params: Any
) -> BolsterNode:
    """A container's factory: the spec's parameters, parsed and checked as the plan's were."""
    config = BolsterParams.from_mapping(params, node=node_fqn(namespace, name))
    return BolsterNode(context, name=name, namespace=namespace, config=config)
