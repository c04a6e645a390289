"""The BIoMT cloud node: anonymized records addressed by block number + block hash.

A thin shell around :class:`iomt.core.biomt.Cloud`:

* ``~/put`` -- a bolster pushes a :class:`~iomt.core.biomt.CloudBatch` (one sealed block's
  Store data, anonymized by the bolster and signed with its ledger key). The first time a
  bolster pushes, the cloud fetches its ``~/credentials`` and checks them against the
  facility CA (the facility public-key list); then the batch signature. It answers with its
  signed :class:`~iomt.core.biomt.CloudAck` -- only that lets the bolster evict local copies.
* ``~/get`` -- a registered user names a block by ledger id, block number *and* block hash
  in a signed :class:`~iomt.core.biomt.CloudRequest` (what a bolster's Access redirect
  hands out); the block's anonymized records come back sealed to the user's one-time key.

The core keeps batches in memory; this node persists each accepted batch (and the
credentials it was checked with) in ``<storage_dir>/<name>.sqlite`` before acknowledging
it, and on restart re-admits the bolsters and re-verifies every stored batch.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from iomt.core.biomt import (
    BolsterCredentials,
    Cloud,
    CloudBatch,
    CloudRequest,
    FacilityCA,
    ReplayError,
    UnknownBolsterError,
    UserDirectory,
)
from iomt.core.replies import ReplyChecker
from iomt.crypto.errors import KeystoreError
from iomt.errors import ConfigurationError, IomtError, StorageError
from iomt.msg import BolsterService, CloudService
from iomt.nodes import biomt_wire as bw
from iomt.nodes.calls import Calls
from iomt.nodes.identity import open_keystore, reply_signer
from iomt.nodes.params import CloudParams
from iomt.nodes.results import ResultsWriter
from iomt.runtime import Client, Node, Responder, RuntimeContext
from iomt.runtime.naming import node_fqn

__all__ = ["CloudNode", "cloud_node"]

_C = CloudService.Response
_SCHEMA = """
CREATE TABLE IF NOT EXISTS bolsters (bolster_id TEXT PRIMARY KEY, credentials BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS batches (
    ledger_id BLOB NOT NULL, block_index INTEGER NOT NULL, block_hash BLOB NOT NULL,
    bolster_id TEXT NOT NULL, batch BLOB NOT NULL, PRIMARY KEY (ledger_id, block_index));
"""


class CloudNode(Node):
    def __init__(
        self,
        context: RuntimeContext,
        *,
        name: str,
        namespace: str,
        config: CloudParams,
    ) -> None:
        super().__init__(name, context=context, namespace=namespace)
        c = self.config = config
        ks = open_keystore(c.keystore)
        identity = ks.identity(name)
        anchor = FacilityCA.from_keystore(ks).anchor
        now = time.time_ns()
        directory = UserDirectory(anchor)
        for user, role in c.users:
            try:
                directory.register(ks.certificate(user), role, now=now)
            except (KeystoreError, IomtError) as exc:
                raise ConfigurationError(f"user {user!r}: {exc}") from exc
        self.cloud = Cloud(
            name,
            identity.signer,
            anchor=anchor,
            users=directory,
            clock=time.time_ns,
            rng=os.urandom,
        )
        Path(c.storage_dir).mkdir(parents=True, exist_ok=True)
        self.db_path = Path(c.storage_dir) / f"{name}.sqlite"
        self._db = sqlite3.connect(self.db_path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode = WAL")
        self._db.execute(f"PRAGMA synchronous = {c.synchronous}")
        self._db.executescript(_SCHEMA)
        self._registered: set[str] = set()
        self.restored = self._restore()
        self.calls = Calls(self)
        self._clients: dict[str, Client] = {}
        self._results = ResultsWriter(c.results)
        self.counts = {"put": 0, "get": 0, "refused": 0}
        # every answer signed by the cloud (iomt.core.replies); what it fetches is checked
        self.proofs = bw.ServiceReplies(reply_signer(identity), "cloud")
        self._checker = ReplyChecker(ks.credential_validator())
        self.create_service(CloudService, "~/put", self._on_put, deferred=True)
        self.create_service(CloudService, "~/get", self._on_get, deferred=True)

    # -- persistence ------------------------------------------------------------------------

    def _restore(self) -> int:
        for bolster_id, raw in self._db.execute("SELECT bolster_id, credentials FROM bolsters"):
            self.cloud.register_bolster(BolsterCredentials.from_bytes(raw))
            self._registered.add(bolster_id)
        count = 0
        for (raw,) in self._db.execute("SELECT batch FROM batches ORDER BY rowid"):
            self.cloud.put(CloudBatch.from_bytes(raw))  # re-verified, as on first receipt
            count += 1
        return count

    def _persist(self, batch: CloudBatch) -> None:
        try:
            self._db.execute(
                "INSERT OR IGNORE INTO batches VALUES (?, ?, ?, ?, ?)",
                (
                    batch.ledger_id,
                    batch.block_index,
                    batch.block_hash,
                    batch.bolster_id,
                    batch.to_bytes(),
                ),
            )
        except sqlite3.Error as exc:
            raise StorageError(f"cloud store {self.db_path}: {exc}") from exc

    # -- services ---------------------------------------------------------------------------

    def _sender(self, op: str, req: Any, responder: Responder) -> Callable[..., None]:
        def send(status: int, reason: str = "", body: bytes = b"", *, replay: bool = False) -> None:
            resp = CloudService.Response(status=status, reason=reason, body=body)
            self.proofs.prove(op, req, resp, authenticated=status == _C.STATUS_OK, replay=replay)
            responder.send(resp)

        return send

    def _on_put(self, req: Any, responder: Responder) -> None:
        send = self._sender("put", req, responder)
        try:
            batch = CloudBatch.from_bytes(bytes(req.body))
        except IomtError as exc:
            send(bw.cloud_status_of(exc), str(exc))
            return
        if batch.bolster_id not in self._registered:
            self._fetch_credentials(batch, send)
            return
        self._put(batch, send)

    def _put(self, batch: CloudBatch, send: Callable[..., None]) -> None:
        try:
            ack = self.cloud.put(batch)
            self._persist(batch)
        except IomtError as exc:
            self.counts["refused"] += 1
            send(bw.cloud_status_of(exc), str(exc), replay=isinstance(exc, ReplayError))
            return
        self.counts["put"] += 1
        send(_C.STATUS_OK, body=ack.to_bytes())

    def _fetch_credentials(self, batch: CloudBatch, send: Callable[..., None]) -> None:
        bolster = batch.bolster_id
        client = self._clients.get(bolster)
        if client is None:
            ns = self.get_namespace().rstrip("/")
            client = self.create_client(BolsterService, f"{ns}/{bolster}/credentials")
            self._clients[bolster] = client

        request = BolsterService.Request(requester=self.get_name(), body=os.urandom(16))

        def done(resp: Any) -> None:
            try:
                raw = bw.raise_for_status("credentials", resp)
                creds = BolsterCredentials.from_bytes(raw)
                if creds.bolster_id != bolster:
                    raise UnknownBolsterError(f"{bolster} answered as {creds.bolster_id}")
                self.cloud.register_bolster(creds)  # checked against the facility CA
                self._db.execute(
                    "INSERT OR REPLACE INTO bolsters VALUES (?, ?)", (bolster, creds.to_bytes())
                )
            except (IomtError, sqlite3.Error) as exc:
                self.counts["refused"] += 1
                send(_C.STATUS_REFUSED, f"bolster {bolster!r}: {exc}")
                return
            self._registered.add(bolster)
            self._put(batch, send)

        def failed(exc: Exception) -> None:
            send(_C.STATUS_REFUSED, f"no credentials from {bolster!r}: {exc}")

        self.calls.call(
            client,
            request,
            timeout_s=2.0,
            on_done=done,
            on_error=failed,
            accept=bw.reply_check(self._checker, "bolster/credentials", bolster, request),
        )

    def _on_get(self, req: Any, responder: Responder) -> None:
        send = self._sender("get", req, responder)
        try:
            response = self.cloud.get(CloudRequest.from_bytes(bytes(req.body)))
        except IomtError as exc:
            self.counts["refused"] += 1
            send(bw.cloud_status_of(exc), str(exc), replay=isinstance(exc, ReplayError))
            return
        self.counts["get"] += 1
        send(_C.STATUS_OK, body=response.to_bytes())

    def destroy_node(self) -> None:
        self._results.write(
            {
                "record": "cloud",
                "cloud": self.get_name(),
                "blocks": len(list(self.cloud.blocks())),
                "restored": self.restored,
                **self.counts,
            }
        )
        self._results.close()
        super().destroy_node()
        self._db.close()


def cloud_node(
    context: RuntimeContext, *, name: str, namespace: str = "/", **params: Any
) -> CloudNode:
    config = CloudParams.from_mapping(params, node=node_fqn(namespace, name))
    return CloudNode(context, name=name, namespace=namespace, config=config)
