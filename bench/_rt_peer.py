"""Server side of bench_runtime.py, run as a separate process.

Modes: ``raw`` answers AddTwoInts with plain cyclonedds (WaitSet + take + write), ``runtime``
with an iomt Node/Service, ``sink-raw`` / ``sink-runtime`` count Chatter messages.
"""

import signal
import sys
import time
from pathlib import Path

STOP = [False]
signal.signal(signal.SIGTERM, lambda *_: STOP.__setitem__(0, True))

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from iomt.runtime.qos import HistoryPolicy, QoSProfile  # noqa: E402
from runtime.ifaces import AddTwoInts, Chatter  # noqa: E402

# Lossless, back-pressured stream for counting throughput.
THROUGHPUT_QOS = QoSProfile(history=HistoryPolicy.KEEP_ALL, max_blocking_s=5.0)


def raw_server(domain: int, seconds: float, sink: bool) -> None:
    from cyclonedds.core import ReadCondition, WaitSet
    from cyclonedds.domain import Domain, DomainParticipant
    from cyclonedds.pub import DataWriter
    from cyclonedds.sub import DataReader
    from cyclonedds.topic import Topic

    from iomt.runtime._dds import ANY_STATE
    from iomt.runtime.config import resolve
    from iomt.runtime.qos import qos_profile_default

    s = resolve(domain, None)
    _dom = Domain(domain, s.config_xml)
    dp = DomainParticipant(domain)
    q = qos_profile_default.to_dds()
    ws = WaitSet(dp)
    if sink:
        tq = THROUGHPUT_QOS.to_dds()
        r = DataReader(dp, Topic(dp, "rt/bench/chatter", Chatter, qos=tq), qos=tq)
    else:
        r = DataReader(dp, Topic(dp, "rq/bench/addRequest", AddTwoInts.RequestWire, qos=q), qos=q)
        w = DataWriter(dp, Topic(dp, "rr/bench/addReply", AddTwoInts.ResponseWire, qos=q), qos=q)
    rc = ReadCondition(r, ANY_STATE)
    ws.attach(rc)
    n = 0
    end = time.time() + seconds
    print("ready", flush=True)
    while time.time() < end and not STOP[0]:
        ws.wait(int(0.2e9))
        for req in r.take(32):
            if not req.sample_info.valid_data:
                continue
            n += 1
            if not sink:
                w.write(
                    AddTwoInts.ResponseWire(
                        client_guid=req.client_guid, seq=req.seq, total=req.a + req.b
                    )
                )
    print("count", n, flush=True)
    del ws, rc, r
    dp.__del__()


def runtime_server(domain: int, seconds: float, sink: bool) -> None:
    from iomt.runtime import Context, Executor, Node

    ctx = Context(domain_id=domain)
    node = Node("bench_server", context=ctx, namespace="/bench")
    count = [0]
    if sink:
        node.create_subscription(
            Chatter, "chatter", lambda m: count.__setitem__(0, count[0] + 1), THROUGHPUT_QOS
        )
    else:

        def add(req, resp):
            resp.total = req.a + req.b
            return resp

        node.create_service(AddTwoInts, "add", add)
    ex = Executor(ctx)
    ex.add_node(node)
    print("ready", flush=True)
    end = time.time() + seconds
    while time.time() < end and not STOP[0]:
        ex.spin_once(0.2)
    print("count", count[0], flush=True)
    ctx.shutdown()


if __name__ == "__main__":
    mode, domain, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    if mode.endswith("raw"):
        raw_server(domain, seconds, mode.startswith("sink"))
    else:
        runtime_server(domain, seconds, mode.startswith("sink"))
