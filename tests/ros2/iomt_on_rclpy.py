"""iomt's node API on the rclpy runtime, as a test's peer (run with the ROS 2 interpreter).

    python iomt_on_rclpy.py call --service /robot/echo --request-id r1 [--calls N]

An iomt Node (``iomt.runtime``, runtime ``rclpy``) calls a DataShare service served by a
stock rclpy node and prints the responses (and round-trip times) as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from iomt.msg import DataShare
from iomt.runtime import Node
from iomt.runtime.container import make_context


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("cmd", choices=["call"])
    parser.add_argument("--service", required=True)
    parser.add_argument("--request-id", default="from-iomt")
    parser.add_argument("--calls", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=0)
    args = parser.parse_args()
    context = make_context("rclpy")
    node = Node("iomt_caller", context=context)
    client = node.create_client(DataShare, args.service)
    executor = context.create_executor()
    executor.add_node(node)
    executor.spin_in_thread()  # type: ignore[attr-defined]
    try:
        if not client.wait_for_service(30):
            print(json.dumps({"error": "service not available"}), flush=True)
            return 1
        reasons, rtts = [], []
        for i in range(args.warmup + args.calls):
            t0 = time.perf_counter()
            response = client.call(DataShare.Request(request_id=f"{args.request_id}-{i}"), 10.0)
            if i >= args.warmup:
                rtts.append(time.perf_counter() - t0)
                reasons.append(response.reason)
        print(json.dumps({"reasons": reasons, "rtt_s": rtts}), flush=True)
        return 0
    finally:
        executor.shutdown()
        node.destroy_node()
        context.shutdown()


if __name__ == "__main__":
    sys.exit(main())
