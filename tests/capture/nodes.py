"""Node factories for the capture tests (run inside iomt.runtime.container).

``traffic`` is a small ward: it publishes readings (plaintext Vitals, AES-GCM-sealed
SecureEnvelopes), serves DataShare (half of the replies sealed, half plaintext "none") and
calls its own service. It waits until every endpoint is matched by the recorder too, sends
everything once, and writes ``done_file`` when every reply has arrived.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from capture.traffic import PROVIDER, envelope, vitals
from iomt.msg import DataShare, SecureEnvelope, Vitals
from iomt.runtime import Context, Node


def reply_for(request_id: str) -> SecureEnvelope:
    """The envelope the traffic node answers ``req-<i>`` with: sealed for even i."""
    i = int(request_id.removeprefix("req-"))
    return (
        envelope(i, technique="sym-aes", sealed=True)
        if i % 2 == 0
        else envelope(i, technique="none", sealed=False)
    )


def traffic(
    context: Context,
    *,
    name: str,
    namespace: str = "/",
    count: int = 6,
    done_file: str,
    recorders: int = 1,
) -> Node:
    node = Node(name, context=context, namespace=namespace)
    vitals_pub = node.create_publisher(Vitals, "vitals")
    inbox_pub = node.create_publisher(SecureEnvelope, "inbox")

    def serve(request: Any, response: Any) -> Any:
        response.status = DataShare.Response.STATUS_SHARED
        response.envelope = reply_for(request.request_id)
        return response

    server = node.create_service(DataShare, "data_share", serve)
    client = node.create_client(DataShare, "data_share")
    state: dict[str, Any] = {"sent": False, "replies": 0}

    def matched() -> bool:
        # every writer must reach the recorder (and the service's own peer) before we send
        return (
            vitals_pub.get_subscription_count() >= recorders
            and inbox_pub.get_subscription_count() >= recorders
            and len(client._writer.get_matched_subscriptions()) >= 1 + recorders
            and len(server._writer.get_matched_subscriptions()) >= 1 + recorders
        )

    def on_reply(_future: Any) -> None:
        state["replies"] += 1
        if state["replies"] == count:
            # written aside and renamed: a reader polling for the file never sees it half done
            tmp = Path(done_file + ".tmp")
            tmp.write_text(
                json.dumps({"count": count, "client_guid": client.client_guid}), encoding="utf-8"
            )
            tmp.replace(done_file)

    def tick() -> None:
        if state["sent"] or not matched():
            return
        state["sent"] = True
        for i in range(count):
            vitals_pub.publish(vitals(i))
            inbox_pub.publish(envelope(i))
        for i in range(count):
            future = client.call_async(
                DataShare.Request(request_id=f"req-{i}", requester_uri=PROVIDER)
            )
            future.add_done_callback(on_reply)

    node.create_timer(0.05, tick)
    return node
