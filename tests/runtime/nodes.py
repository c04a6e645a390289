"""Node factories for the runtime tests (run inside iomt.runtime.container)."""

from __future__ import annotations

from typing import Any

from iomt.runtime import Context, Node
from runtime.ifaces import AddTwoInts, Chatter


def talker(
    context: Context,
    *,
    name: str,
    namespace: str = "/",
    period_s: float = 0.05,
    topic: str = "chatter",
) -> Node:
    node = Node(name, context=context, namespace=namespace)
    pub = node.create_publisher(Chatter, topic)
    count = [0]

    def tick() -> None:
        count[0] += 1
        pub.publish(Chatter(seq=count[0], text=f"hello {count[0]}"))

    node.create_timer(period_s, tick)
    return node


def adder(context: Context, *, name: str, namespace: str = "/") -> Node:
    node = Node(name, context=context, namespace=namespace)

    def add(req: Any, resp: Any) -> Any:
        resp.total = req.a + req.b
        return resp

    node.create_service(AddTwoInts, "add_two_ints", add)
    return node


def member(context: Context, *, name: str, namespace: str = "/") -> Node:
    """A typical small node for the scale test: a publisher, a subscription, a service."""
    node = Node(name, context=context, namespace=namespace)
    node.create_publisher(Chatter, "status")
    node.create_subscription(Chatter, "/scale/broadcast", lambda _m: None)
    node.create_service(AddTwoInts, "add_two_ints", adder_cb)
    return node


def adder_cb(req: Any, resp: Any) -> Any:
    resp.total = req.a + req.b
    return resp


class _Warming(Node):
    """Warm once its timer fired (``warm_after_s``; never if None); then writes ``mark``."""

    def __init__(
        self, context: Context, name: str, namespace: str, warm_after_s: float | None, mark: str
    ) -> None:
        super().__init__(name, context=context, namespace=namespace)
        self._warm = False
        self._mark = mark
        if warm_after_s is not None:
            self._timer = self.create_timer(warm_after_s, self._warmed)

    def _warmed(self) -> None:
        self._timer.cancel()
        self._warm = True
        with open(self._mark, "w", encoding="utf-8") as f:
            f.write("warm\n")

    def warming_up(self) -> bool:
        return not self._warm


def warming(
    context: Context,
    *,
    name: str,
    namespace: str = "/",
    warm_after_s: float | None = 0.5,
    mark: str,
) -> Node:
    return _Warming(context, name, namespace, warm_after_s, mark)
