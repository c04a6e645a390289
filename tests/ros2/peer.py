"""A stock ROS 2 node: plain rclpy on Fast DDS, nothing of iomt imported.

Runs under the ROS 2 peer's interpreter (.venv-ros2, set up by scripts/ros2.sh) and prints
JSON on stdout for the test that started it. Each command is what a ROS 2 user does with a
running ward: look at the graph, echo topics, publish, call a service, serve one.

    python peer.py graph --expect-nodes 19 --timeout 30
    python peer.py echo --spec spec.json --timeout 20       # [{"topic", "type", "count"}]
    python peer.py publish --spec spec.json --timeout 20    # [{"topic", "type", "values"}]
    python peer.py call --service /ward1/hr_0/data_share --type iomt_interfaces/srv/DataShare \
                        --request '{"request_id": "x"}'
    python peer.py serve --service /robot/echo --type iomt_interfaces/srv/DataShare
    python peer.py bench-call --service S --type T --request JSON --calls 500

Messages are converted to and from JSON by walking rosidl's own field descriptions
(``get_fields_and_field_types``), as ``ros2 topic echo`` and ``ros2 topic pub`` do; byte
arrays are lists of ints.
"""

from __future__ import annotations

import argparse
import array
import importlib
import json
import signal
import sys
import time
from pathlib import Path
from typing import Any

import rclpy
from rclpy.duration import Duration
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy

_PRIMITIVES = {
    "boolean",
    "octet",
    "char",
    "float",
    "double",
    "int8",
    "uint8",
    "int16",
    "uint16",
    "int32",
    "uint32",
    "int64",
    "uint64",
    "string",
}


def load_type(name: str) -> Any:
    package, kind, short = name.split("/")
    return getattr(importlib.import_module(f"{package}.{kind}"), short)


def to_json(value: Any) -> Any:
    if hasattr(value, "get_fields_and_field_types"):
        return {f: to_json(getattr(value, f)) for f in value.get_fields_and_field_types()}
    if isinstance(value, bytes | bytearray):
        return list(value)
    if isinstance(value, array.array):
        return [to_json(v) for v in value.tolist()]
    if hasattr(value, "tolist"):  # numpy arrays and scalars
        return to_json(value.tolist())
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    return value


def _element_type(field_type: str) -> str:
    # "sequence<iomt_interfaces/Neighbour>", "iomt_interfaces/Neighbour[3]", "string<=8"
    inner = field_type
    if inner.startswith("sequence<"):
        inner = inner[len("sequence<") : inner.rindex(">")].split(",")[0]
    return inner.split("[")[0].split("<=")[0]


def from_json(cls: Any, values: dict[str, Any]) -> Any:
    msg = cls()
    types = cls.get_fields_and_field_types()
    for field, raw in values.items():
        element = _element_type(types[field])
        value = raw
        if element not in _PRIMITIVES and "/" in element:
            package, short = element.split("/")
            nested = getattr(importlib.import_module(f"{package}.msg"), short)
            if isinstance(raw, list):
                value = [from_json(nested, v) for v in raw]
            else:
                value = from_json(nested, raw)
        elif element == "octet" and isinstance(raw, list):
            value = bytes(raw)
        setattr(msg, field, value)
    return msg


_EXECUTORS: dict[int, SingleThreadedExecutor] = {}


def spin_until(node: Node, done: Any, timeout: float) -> bool:
    """Spin ``node`` until ``done()``: one executor for the node's life, as rclpy.spin does
    (rclpy.spin_once(node) would add and remove the node on every call)."""
    executor = _EXECUTORS.get(id(node))
    if executor is None:
        executor = _EXECUTORS[id(node)] = SingleThreadedExecutor()
        executor.add_node(node)
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            return False
        executor.spin_once(timeout_sec=0.05)
    return True


def emit(doc: Any) -> None:
    print(json.dumps(doc), flush=True)


# -- commands -------------------------------------------------------------------------------


def cmd_graph(node: Node, args: argparse.Namespace) -> int:
    me = (node.get_name(), node.get_namespace())

    def others() -> list[tuple[str, str]]:
        return [n for n in node.get_node_names_and_namespaces() if n != me]

    spin_until(node, lambda: len(others()) >= args.expect_nodes, args.timeout)
    # Endpoints keep arriving after the nodes: let discovery settle.
    spin_until(node, lambda: False, args.settle)
    topics = dict(node.get_topic_names_and_types())
    endpoints = []
    for topic in topics:
        for kind, infos in (
            ("publisher", node.get_publishers_info_by_topic(topic)),
            ("subscription", node.get_subscriptions_info_by_topic(topic)),
        ):
            for info in infos:
                endpoints.append(
                    {
                        "topic": topic,
                        "kind": kind,
                        "node": info.node_name,
                        "namespace": info.node_namespace,
                        "type": info.topic_type,
                        "type_hash": str(info.topic_type_hash),
                    }
                )
    by_node = {}
    for name, namespace in others():
        fqn = namespace.rstrip("/") + "/" + name
        by_node[fqn] = {
            "publishers": dict(node.get_publisher_names_and_types_by_node(name, namespace)),
            "subscriptions": dict(node.get_subscriber_names_and_types_by_node(name, namespace)),
            "services": dict(node.get_service_names_and_types_by_node(name, namespace)),
            "clients": dict(node.get_client_names_and_types_by_node(name, namespace)),
        }
    emit(
        {
            "nodes": sorted(f"{ns.rstrip('/')}/{n}" for n, ns in others()),
            "topics": topics,
            "services": dict(node.get_service_names_and_types()),
            "endpoints": endpoints,
            "by_node": by_node,
        }
    )
    return 0


def cmd_echo(node: Node, args: argparse.Namespace) -> int:
    spec = json.loads(Path(args.spec).read_text(encoding="utf-8"))
    got: dict[str, list[Any]] = {s["topic"]: [] for s in spec}
    qos = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
    for s in spec:
        node.create_subscription(
            load_type(s["type"]), s["topic"], lambda m, t=s["topic"]: got[t].append(to_json(m)), qos
        )
    emit({"subscribed": [s["topic"] for s in spec]})
    spin_until(node, lambda: all(len(got[s["topic"]]) >= s["count"] for s in spec), args.timeout)
    emit({"received": got})
    return 0


def cmd_publish(node: Node, args: argparse.Namespace) -> int:
    spec = json.loads(Path(args.spec).read_text(encoding="utf-8"))
    qos = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
    pubs = [(s, node.create_publisher(load_type(s["type"]), s["topic"], qos)) for s in spec]
    matched = spin_until(
        node, lambda: all(p.get_subscription_count() > 0 for _, p in pubs), args.timeout
    )
    if not matched:
        emit({"error": "no subscriber matched", "topics": [s["topic"] for s, p in pubs]})
        return 1
    emit({"matched": len(pubs)})
    if args.go_on_stdin:
        # Our side matching first is not enough: a volatile reader that has not yet
        # discovered this writer misses what it writes. The test says when it has.
        sys.stdin.readline()
    for s, pub in pubs:
        cls = load_type(s["type"])
        for values in s["values"]:
            pub.publish(from_json(cls, values))
    acked = all(pub.wait_for_all_acked(Duration(seconds=5)) for _, pub in pubs)
    emit({"published": sum(len(s["values"]) for s in spec), "acked": acked})
    spin_until(node, lambda: False, 0.5)
    return 0


def cmd_call(node: Node, args: argparse.Namespace) -> int:
    srv = load_type(args.type)
    client = node.create_client(srv, args.service)
    if not client.wait_for_service(timeout_sec=args.timeout):
        emit({"error": f"{args.service} not available"})
        return 1
    future = client.call_async(from_json(srv.Request, json.loads(args.request)))
    if not spin_until(node, future.done, args.timeout):
        emit({"error": "no response in time"})
        return 1
    emit({"response": to_json(future.result())})
    return 0


def cmd_bench_call(node: Node, args: argparse.Namespace) -> int:
    srv = load_type(args.type)
    client = node.create_client(srv, args.service)
    if not client.wait_for_service(timeout_sec=args.timeout):
        emit({"error": f"{args.service} not available"})
        return 1
    request = from_json(srv.Request, json.loads(args.request))
    samples = []
    for i in range(args.warmup + args.calls):
        t0 = time.perf_counter()
        future = client.call_async(request)
        if not spin_until(node, future.done, args.timeout):
            emit({"error": f"call {i}: no response in time"})
            return 1
        if i >= args.warmup:
            samples.append(time.perf_counter() - t0)
    emit({"rtt_s": samples})
    return 0


def cmd_serve(node: Node, args: argparse.Namespace) -> int:
    srv = load_type(args.type)
    served = [0]

    def handle(request: Any, response: Any) -> Any:
        served[0] += 1
        # An answer a caller can check: the request's first string field, echoed.
        fields = request.get_fields_and_field_types()
        text = next((getattr(request, f) for f, t in fields.items() if t == "string"), "")
        for field, kind in response.get_fields_and_field_types().items():
            if kind == "string":
                setattr(response, field, f"rclpy:{text}")
                break
        return response

    node.create_service(srv, args.service, handle)
    emit({"serving": args.service})
    stop = [False]
    signal.signal(signal.SIGTERM, lambda *_: stop.__setitem__(0, True))
    spin_until(node, lambda: stop[0], args.timeout)
    emit({"served": served[0]})
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="cmd", required=True)
    graph = sub.add_parser("graph")
    graph.add_argument("--expect-nodes", type=int, default=1)
    graph.add_argument("--settle", type=float, default=2.0)
    for name in ("echo", "publish"):
        p = sub.add_parser(name)
        p.add_argument("--spec", required=True)
    sub.choices["publish"].add_argument("--go-on-stdin", action="store_true")
    for name in ("call", "bench-call", "serve"):
        p = sub.add_parser(name)
        p.add_argument("--service", required=True)
        p.add_argument("--type", required=True)
        if name != "serve":
            p.add_argument("--request", default="{}")
    bench = sub.choices["bench-call"]
    bench.add_argument("--calls", type=int, default=200)
    bench.add_argument("--warmup", type=int, default=20)
    for p in sub.choices.values():
        p.add_argument("--timeout", type=float, default=30.0)
        p.add_argument("--name", default="stock_ros2_peer")
    args = parser.parse_args(argv)
    rclpy.init()
    node = rclpy.create_node(args.name)
    try:
        return {
            "graph": cmd_graph,
            "echo": cmd_echo,
            "publish": cmd_publish,
            "call": cmd_call,
            "bench-call": cmd_bench_call,
            "serve": cmd_serve,
        }[args.cmd](node, args)
    finally:
        node.destroy_node()
        rclpy.shutdown()


if __name__ == "__main__":
    sys.exit(main())
