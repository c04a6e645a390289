"""The master bolster node (BIoMT "multiple bolsters support"): the shared chain.

"A master bolster is essential to coordinate and support the data exchange between other
bolsters ... The origin transactions of IoMT devices, associated with a certain bolster,
will be chained to the origin transaction of this bolster. Then, stored in the master
bolster as part of the shared blockchain." A thin shell around
:class:`iomt.core.biomt.MasterBolster` on its own SQLite ledger:

* ``~/admit`` -- a member bolster's signed :class:`~iomt.core.biomt.BolsterOrigin` (its
  certified ledger key and a checkpoint); appended as the member's origin;
* ``~/chain`` -- a member's :class:`~iomt.core.biomt.DeviceOriginLink` (a device's Origin
  transaction with its inclusion proof against a signed checkpoint); appended chained to
  the member's origin hash;
* ``~/ledger`` -- the shared chain's transactions as they are appended.

Both services answer ``STATUS_REFUSED`` with the reason for a duplicate (a restarted
member re-offers its origin and devices; the chain keeps one entry each).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from iomt.core.biomt import BolsterOrigin, DeviceOriginLink, FacilityCA, MasterBolster
from iomt.core.biomt.keys import LedgerKey
from iomt.errors import IomtError
from iomt.ledger import SqliteStorage
from iomt.msg import BiomtTransaction, BolsterService
from iomt.nodes import biomt_wire as bw
from iomt.nodes.identity import open_keystore, reply_signer
from iomt.nodes.params import MasterParams
from iomt.nodes.results import ResultsWriter
from iomt.runtime import Node, QoSProfile, RuntimeContext
from iomt.runtime.naming import node_fqn

__all__ = ["MasterNode", "master_node"]

_R = BolsterService.Response


class MasterNode(Node):
    def __init__(
        self,
        context: RuntimeContext,
        *,
        name: str,
        namespace: str,
        config: MasterParams,
    ) -> None:
        super().__init__(name, context=context, namespace=namespace)
        c = self.config = config
        ks = open_keystore(c.keystore)
        identity = ks.identity(name)
        Path(c.storage_dir).mkdir(parents=True, exist_ok=True)
        self._storage = SqliteStorage(
            Path(c.storage_dir) / f"{name}.ledger.sqlite",
            synchronous=c.synchronous,
            check_same_thread=False,
        )
        self.master = MasterBolster.open(
            self._storage,
            LedgerKey(identity.signer),
            facility_id=ks.facility,
            anchor=FacilityCA.from_keystore(ks).anchor,
            clock=time.time_ns,
        )
        self._results = ResultsWriter(c.results)
        self._published = self.master.ledger.size
        self._ledger_pub = self.create_publisher(
            BiomtTransaction, "~/ledger", QoSProfile(depth=1000)
        )
        # every answer signed by the master (iomt.core.replies)
        self.proofs = bw.ServiceReplies(reply_signer(identity), "master")
        self.create_service(BolsterService, "~/admit", self._on_admit)
        self.create_service(BolsterService, "~/chain", self._on_chain)

    def _refused(self, op: str, req: Any, resp: Any, exc: IomtError) -> Any:
        resp.status, _ = bw.status_of(exc)
        resp.reason = str(exc)
        return self.proofs.prove(op, req, resp, authenticated=False)

    def _on_admit(self, req: Any, resp: Any) -> Any:
        try:
            record, _receipt = self.master.admit(BolsterOrigin.from_bytes(bytes(req.body)))
        except IomtError as exc:
            return self._refused("admit", req, resp, exc)
        self._publish()
        resp.status = _R.STATUS_OK
        resp.body = record.origin_hash
        return self.proofs.prove("admit", req, resp)

    def _on_chain(self, req: Any, resp: Any) -> Any:
        try:
            receipt = self.master.chain_device(DeviceOriginLink.from_bytes(bytes(req.body)))
        except IomtError as exc:
            return self._refused("chain", req, resp, exc)
        self._publish()
        resp.status = _R.STATUS_OK
        resp.body = receipt.leaf_hash
        return self.proofs.prove("chain", req, resp)

    def _publish(self) -> None:
        ledger = self.master.ledger
        for tx in ledger.transactions(start=self._published):
            block = ledger.latest_block.header
            end = block.first_seq + block.tx_count
            index, first = (
                (ledger.block_count, end) if tx.seq >= end else (block.index, block.first_seq)
            )
            self._ledger_pub.publish(bw.transaction_msg(self.get_name(), tx, index, first))
        self._published = ledger.size

    def destroy_node(self) -> None:
        self._results.write(
            {
                "record": "master",
                "master": self.get_name(),
                "members": [m.bolster_id for m in self.master.members()],
                "transactions": self.master.ledger.size,
            }
        )
        self._results.close()
        super().destroy_node()
        self._storage.close()


def master_node(
    context: RuntimeContext, *, name: str, namespace: str = "/", **params: Any
) -> MasterNode:
    config = MasterParams.from_mapping(params, node=node_fqn(namespace, name))
    return MasterNode(context, name=name, namespace=namespace, config=config)
