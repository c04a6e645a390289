"""iomt's side of bench_ros2.py, run as a separate process.

    python _ros2_peer.py serve --runtime embedded|rclpy --service /bench/echo
    python _ros2_peer.py call --runtime embedded --service /bench/echo --calls N --warmup W

``serve`` answers DataShare with the request id echoed (what tests/ros2/peer.py's stock
rclpy server answers); ``call`` prints {"rtt_s": [...]}, measured around ``Client.call``.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time

from iomt.msg import DataShare
from iomt.runtime import Node
from iomt.runtime.container import make_context


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("cmd", choices=["serve", "call"])
    parser.add_argument("--runtime", default="embedded")
    parser.add_argument("--service", default="/bench/echo")
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--domain", type=int, default=None)
    args = parser.parse_args()
    context = make_context(args.runtime, domain_id=args.domain)
    node = Node(f"iomt_bench_{args.cmd}", context=context)
    executor = context.create_executor()
    stop = threading.Event()
    if args.cmd == "serve":

        def echo(request: DataShare.Request, response: DataShare.Response) -> DataShare.Response:
            response.reason = f"rclpy:{request.request_id}"
            return response

        node.create_service(DataShare, args.service, echo)
        executor.add_node(node)
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        print(json.dumps({"serving": args.service}), flush=True)
        while not stop.is_set():
            executor.spin_once(0.2)
    else:
        client = node.create_client(DataShare, args.service)
        executor.add_node(node)
        thread = threading.Thread(
            target=lambda: [executor.spin_once(0.2) for _ in iter(stop.is_set, True)], daemon=True
        )
        if args.runtime == "rclpy":  # rclpy completes futures on its executor thread
            thread.start()
        if not client.wait_for_service(30):
            print(json.dumps({"error": "no service"}), flush=True)
            return 1
        request = DataShare.Request(request_id="bench")
        samples = []
        for i in range(args.warmup + args.calls):
            t0 = time.perf_counter()
            response = client.call(request, 10.0)
            if i >= args.warmup:
                samples.append(time.perf_counter() - t0)
            assert response.reason == "rclpy:bench"
        print(json.dumps({"rtt_s": samples}), flush=True)
        stop.set()
    executor.shutdown()
    node.destroy_node()
    context.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
