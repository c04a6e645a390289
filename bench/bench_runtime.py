"""Runtime vs raw cyclonedds, measured in the same run (issue 2 targets).

    python bench/bench_runtime.py [--rounds 4] [--calls 2000] [--json]

Round trip: an AddTwoInts request/reply between two processes, once with plain
cyclonedds (DataWriter/DataReader/WaitSet, the public API) and once with iomt's
Node/Service/Client; the rounds alternate so both see the same machine load.
Throughput: Chatter messages per second from one process to another (KEEP_ALL,
reliable), raw vs runtime. Target: runtime round-trip p50 <= 1.3x raw.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from runtime.ifaces import AddTwoInts, Chatter  # noqa: E402

PEER = str(Path(__file__).with_name("_rt_peer.py"))
TARGET_RTT_RATIO = 1.3


def start_peer(mode: str, domain: int, seconds: float) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    proc = subprocess.Popen(
        [sys.executable, PEER, mode, str(domain), str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("ready"):
        proc.kill()
        raise RuntimeError(f"peer {mode} failed to start")
    return proc


def stop_peer(proc: subprocess.Popen[str]) -> int:
    proc.terminate()
    try:
        out, _ = proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    for line in out.splitlines():
        if line.startswith("count"):
            return int(line.split()[1])
    return 0


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(p * len(values)))]


def rtt_raw(domain: int, calls: int) -> list[float]:
    from cyclonedds.core import ReadCondition, WaitSet
    from cyclonedds.domain import DomainParticipant
    from cyclonedds.pub import DataWriter
    from cyclonedds.sub import DataReader
    from cyclonedds.topic import Topic

    from iomt.runtime._dds import ANY_STATE
    from iomt.runtime.qos import qos_profile_default

    dp = DomainParticipant(domain)
    q = qos_profile_default.to_dds()
    w = DataWriter(dp, Topic(dp, "rq/bench/addRequest", AddTwoInts.RequestWire, qos=q), qos=q)
    r = DataReader(dp, Topic(dp, "rr/bench/addReply", AddTwoInts.ResponseWire, qos=q), qos=q)
    ws = WaitSet(dp)
    ws.attach(ReadCondition(r, ANY_STATE))
    deadline = time.time() + 10
    while not (w.get_matched_subscriptions() and r.get_matched_publications()):
        if time.time() > deadline:
            raise RuntimeError("raw peer not matched")
        time.sleep(0.01)
    time.sleep(0.2)
    lat = []
    for i in range(calls + 200):
        t0 = time.perf_counter()
        w.write(AddTwoInts.RequestWire(client_guid=1, seq=i, a=i, b=1))
        while True:
            replies = r.take(4)
            if any(rep.seq == i for rep in replies):
                break
            ws.wait(int(1e9))
        if i >= 200:
            lat.append(time.perf_counter() - t0)
    return lat


def rtt_runtime(ctx, calls: int) -> list[float]:  # type: ignore[no-untyped-def]
    from iomt.runtime import Node

    node = Node("bench_client", context=ctx, namespace="/bench")
    cli = node.create_client(AddTwoInts, "add")
    if not cli.wait_for_service(10):
        raise RuntimeError("runtime service not available")
    lat = []
    for i in range(calls + 200):
        t0 = time.perf_counter()
        resp = cli.call(AddTwoInts.Request(a=i, b=1), timeout_s=5)
        if i >= 200:
            lat.append(time.perf_counter() - t0)
        assert resp.total == i + 1
    node.destroy_node()
    return lat


def throughput(mode: str, ctx, domain: int, seconds: float = 1.5) -> float:  # type: ignore[no-untyped-def]
    from _rt_peer import THROUGHPUT_QOS
    from iomt.runtime import Node

    peer = start_peer(f"sink-{mode}", domain, 30)
    try:
        if mode == "raw":
            from cyclonedds.domain import DomainParticipant
            from cyclonedds.pub import DataWriter
            from cyclonedds.topic import Topic

            dp = DomainParticipant(domain)
            q = THROUGHPUT_QOS.to_dds()
            w = DataWriter(dp, Topic(dp, "rt/bench/chatter", Chatter, qos=q), qos=q)
            while not w.get_matched_subscriptions():
                time.sleep(0.01)
            send = w.write
        else:
            node = Node("bench_pub", context=ctx, namespace="/bench")
            pub = node.create_publisher(Chatter, "chatter", THROUGHPUT_QOS)
            while not pub.get_subscription_count():
                time.sleep(0.01)
            send = pub.publish
        time.sleep(0.3)
        sent = 0
        msg = Chatter(seq=0, text="x" * 32)
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            msg.seq = sent
            send(msg)
            sent += 1
        time.sleep(0.5)
    finally:
        received = stop_peer(peer)
    return received / seconds


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--domain", type=int, default=201)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from iomt.runtime import Context

    ctx = Context(domain_id=args.domain)
    raw: list[float] = []
    rt: list[float] = []
    for _ in range(args.rounds):
        peer = start_peer("raw", args.domain, 120)
        try:
            raw += rtt_raw(args.domain, args.calls)
        finally:
            stop_peer(peer)
        peer = start_peer("runtime", args.domain, 120)
        try:
            rt += rtt_runtime(ctx, args.calls)
        finally:
            stop_peer(peer)
    tp_raw = throughput("raw", ctx, args.domain)
    tp_rt = throughput("runtime", ctx, args.domain)

    result = {
        "rtt_raw_p50_ms": statistics.median(raw) * 1e3,
        "rtt_raw_p99_ms": pct(raw, 0.99) * 1e3,
        "rtt_runtime_p50_ms": statistics.median(rt) * 1e3,
        "rtt_runtime_p99_ms": pct(rt, 0.99) * 1e3,
        "throughput_raw_msgs_s": tp_raw,
        "throughput_runtime_msgs_s": tp_rt,
    }
    result["rtt_p50_ratio"] = result["rtt_runtime_p50_ms"] / result["rtt_raw_p50_ms"]
    result["rtt_p99_ratio"] = result["rtt_runtime_p99_ms"] / result["rtt_raw_p99_ms"]
    result["throughput_ratio"] = tp_rt / tp_raw if tp_raw else 0.0
    result["target_rtt_p50_ratio"] = TARGET_RTT_RATIO
    result["rtt_target_met"] = result["rtt_p50_ratio"] <= TARGET_RTT_RATIO
    ctx.shutdown()
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(
            f"service round trip   raw p50 {result['rtt_raw_p50_ms']:.3f} ms "
            f"p99 {result['rtt_raw_p99_ms']:.3f} ms | runtime p50 "
            f"{result['rtt_runtime_p50_ms']:.3f} ms p99 {result['rtt_runtime_p99_ms']:.3f} ms"
        )
        print(
            f"  ratio p50 {result['rtt_p50_ratio']:.2f}x (target <= {TARGET_RTT_RATIO}x: "
            f"{'met' if result['rtt_target_met'] else 'NOT met'}), "
            f"p99 {result['rtt_p99_ratio']:.2f}x"
        )
        print(
            f"throughput           raw {tp_raw:,.0f} msg/s | runtime {tp_rt:,.0f} msg/s "
            f"| ratio {result['throughput_ratio']:.2f}x"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
