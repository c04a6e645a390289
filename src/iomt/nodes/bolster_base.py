"""The paper's no-crypto base (Seliem & Elgazzar, Fig. 3) on a bolster node.

Fig. 3's yardstick is measured in the same run, through the same node and service path as
the real operations: ``~/base/store``, ``~/base/access`` and ``~/base/observe`` on a
:class:`~iomt.core.biomt.BaseBolster` (no cryptography, no ledger), plain updates on
``<observer>/base/observe_updates``. Its answers carry no proof: the base stays the paper's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from iomt.core.biomt import BaseBolster, PlainUpdate
from iomt.core.biomt.messages import AccessPayload
from iomt.errors import IomtError
from iomt.msg import BiomtObserveUpdate
from iomt.nodes import biomt_wire as bw
from iomt.nodes.bolster_costs import Handler
from iomt.runtime import Node, Publisher, Responder

__all__ = ["BaseServices"]


class BaseServices:
    def __init__(
        self,
        node: Node,
        base: BaseBolster,
        *,
        answer: Callable[[Responder, bytes], None],
        refuse: Callable[[Responder, str, IomtError], int],
    ) -> None:
        self._node = node
        self._base = base
        self._answer = answer
        self._refuse = refuse
        self._pubs: dict[str, Publisher[BiomtObserveUpdate]] = {}

    def handlers(self) -> dict[str, Handler]:
        return {
            "base/store": self._on_base_store,
            "base/access": self._on_base_access,
            "base/observe": self._on_base_observe,
        }

    def updates(self, observer: str) -> Publisher[BiomtObserveUpdate]:
        pub = self._pubs.get(observer)
        if pub is None:
            topic = f"{self._node.get_namespace().rstrip('/')}/{observer}/base/observe_updates"
            pub = self._node.create_publisher(BiomtObserveUpdate, topic, bw.UPDATES_QOS)
            self._pubs[observer] = pub
        return pub

    def _on_base_store(self, req: Any, responder: Responder) -> int | None:
        try:
            seq, updates = self._base.store(str(req.requester), bytes(req.body))
        except IomtError as exc:
            return self._refuse(responder, "base/store", exc)
        self._answer(responder, seq.to_bytes(8, "big"))
        for u in updates:
            self.updates(u.observer).publish(_plain_update_msg(u))
        return None

    def _on_base_access(self, req: Any, responder: Responder) -> int | None:
        try:
            q = bw.BaseAccess.from_bytes(bytes(req.body))
            records = self._base.access(
                str(req.requester), q.device, since=q.since, until=q.until, limit=q.limit
            )
        except IomtError as exc:
            return self._refuse(responder, "base/access", exc)
        self._answer(responder, AccessPayload(q.device, tuple(records), (), "-").to_bytes())
        return None

    def _on_base_observe(self, req: Any, responder: Responder) -> int | None:
        try:
            q = bw.BaseObserve.from_bytes(bytes(req.body))
            sub_id = self._base.observe(
                str(req.requester), q.devices, duration=q.duration, interval=q.interval
            )
        except IomtError as exc:
            return self._refuse(responder, "base/observe", exc)
        self.updates(str(req.requester))
        self._answer(responder, sub_id)
        return None


def _plain_update_msg(u: PlainUpdate) -> BiomtObserveUpdate:
    return BiomtObserveUpdate(
        observer=u.observer,
        device=u.device,
        seq=u.seq,
        reason=int(u.reason),
        ciphertext=u.measurement_bytes,
    )
