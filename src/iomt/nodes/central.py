"""The central server node: the baseline of the paper's experiments.

``~/upload`` stores readings devices send in plaintext (SQLite, WAL); ``~/fetch``
answers DataShare requests for any device it holds readings of, sealed in the
requester's technique (``iomt.core.central``); ``~/handshake`` opens sessions.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from iomt.core.central import CentralCore
from iomt.core.channels import ChannelTable
from iomt.core.device import Refused, StoredReading
from iomt.core.listener import name_of
from iomt.core.replies import data_share_digest
from iomt.crypto.tokens import TokenVerifier
from iomt.msg import DataShare, SessionHandshake, Upload
from iomt.nodes import wire
from iomt.nodes.handshaking import handshake_responder
from iomt.nodes.identity import open_keystore, reply_signer
from iomt.nodes.names import uri_of
from iomt.nodes.params import CentralParams
from iomt.nodes.results import ResultsWriter
from iomt.runtime import Node, RuntimeContext
from iomt.runtime.naming import node_fqn


class CentralNode(Node):
    def __init__(
        self,
        context: RuntimeContext,
        *,
        name: str,
        namespace: str,
        config: CentralParams,
    ) -> None:
        super().__init__(name, context=context, namespace=namespace)
        c = self.config = config
        facility = self.get_namespace().strip("/")
        ks = open_keystore(c.keystore)
        identity = ks.identity(name)
        self.uri = identity.uri
        tokens = TokenVerifier(
            {uri_of(facility, w): ks.verifier(w) for w in c.wallets}, revocations=ks.revocations
        )
        self.core = CentralCore(
            self.uri,
            channels=ChannelTable(identity.handshake_identity(), ks.credential_validator()),
            tokens=tokens,
            abe_params=ks.public_params,
            policy=c.policy,
        )
        path = ":memory:"
        if c.storage_dir:
            Path(c.storage_dir).mkdir(parents=True, exist_ok=True)
            path = str(Path(c.storage_dir) / f"{name}.db")
        self._db = sqlite3.connect(path, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS readings (device TEXT, seq INTEGER, "
            "stamp_ns INTEGER, cdr BLOB, PRIMARY KEY (device, seq))"
        )
        self._latest: dict[str, StoredReading] = {}
        # The baseline's uploads are plaintext and unauthenticated, as in the paper (devices
        # that cannot encrypt cannot sign either); it at least stores readings only for the
        # facility's own identities, never for a name nobody provisioned.
        self._known = {uri_of(facility, n) for n in ks.names()} - {self.uri}
        self.uploads = 0
        self.duplicates = 0
        self.refused_uploads = 0
        self._results = ResultsWriter(c.results)
        self.create_service(Upload, "~/upload", self._on_upload)
        self.create_service(DataShare, "~/fetch", self._on_fetch)
        self.name = name
        self.replies = reply_signer(identity)
        self.create_service(
            SessionHandshake,
            "~/handshake",
            handshake_responder(self.core.channels.respond, name, self.replies),
            deferred=True,
        )

    def _on_upload(self, req: Any, resp: Any) -> Any:
        r = req.reading
        if r.device_uri not in self._known:
            self.refused_uploads += 1
            resp.status = Upload.Response.STATUS_REFUSED
            resp.reason = f"unknown device {r.device_uri!r}"
            return resp
        cdr = r.serialize()
        stamp = wire.time_ns(r.stamp)
        # Devices retry readings whose acknowledgement they missed: storing is idempotent,
        # and a late retry must not replace the newest reading the server hands out.
        new = self._db.execute(
            "INSERT OR IGNORE INTO readings VALUES (?, ?, ?, ?)",
            (r.device_uri, int(r.seq), stamp, cdr),
        ).rowcount
        self._db.commit()
        latest = self._latest.get(r.device_uri)
        if latest is None or latest.seq < r.seq:
            self._latest[r.device_uri] = StoredReading(int(r.seq), stamp, cdr)
        self.uploads += new
        self.duplicates += 1 - new
        resp.status = Upload.Response.STATUS_STORED
        return resp

    def _on_fetch(self, req: Any, resp: Any) -> Any:
        request = wire.data_request_from_msg(req)
        result = self.core.fetch(request, self._latest.get)
        session = self.core.channels.session(name_of(request.requester_uri))
        if isinstance(result, Refused):
            resp.status = DataShare.Response.STATUS_REFUSED
            resp.reason = result.reason
            if result.replay:  # the original has its answer
                return resp
            session = result.session or session
        else:
            resp.status = DataShare.Response.STATUS_SHARED
            resp.envelope = wire.envelope_to_msg(result)
        # on our session with the requester (the server answers over sessions only), else
        # signed within the signature budget
        resp.proof = self.replies.prove(
            wire.data_share_statement(self.name, data_share_digest(request), resp),
            channels=self.core.channels,
            session=session,
            budgeted=True,
        )
        return resp

    def destroy_node(self) -> None:
        self._results.write(
            {
                "record": "central",
                "uploads": self.uploads,
                "duplicate_uploads": self.duplicates,
                "counters": self.core.counters,
            }
        )
        self._results.close()
        self._db.close()
        super().destroy_node()


def central_node(
    context: RuntimeContext, *, name: str, namespace: str = "/", **params: Any
) -> CentralNode:
    config = CentralParams.from_mapping(params, node=node_fqn(namespace, name))
    return CentralNode(context, name=name, namespace=namespace, config=config)
