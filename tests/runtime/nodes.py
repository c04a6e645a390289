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
