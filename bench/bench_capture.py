"""Benchmark the capture layer: recording, service events, the plaintext scan, the audit.

    PYTHONPATH=src:tests python bench/bench_capture.py [--json] [--messages N]

Measures, in one run:

* per-message cost of writing to a bag: ``BagWriter.write`` vs rosbags' ``Writer.write``
  called directly (the baseline; the ratio is the recorder's own overhead);
* converting one rq/rr sample into a ``DataShare_Event`` (bounded decode + rosbags
  re-serialization);
* ``scan_vitals`` over a 300-byte sealed payload, and ``parse_vitals_sample``;
* ``audit`` throughput over a bag of N messages (Vitals, sealed envelopes, DataShare
  events), target >= 10,000 messages/s;
* DDS in one process: messages/s a Recorder takes and writes, vs a raw subscription that
  only counts (the baseline).

Medians over repetitions; the machine is shared, so expect noise of +-20 %.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from capture.bags import T0, service_event
from capture.traffic import PROVIDER, envelope, seal, vitals
from iomt.capture import CaptureTypes, RecorderParams, audit, parse_vitals_sample, scan_vitals
from iomt.capture.interfaces import RESPONSE_SENT
from iomt.capture.recorder import BagWriter, Recorder
from iomt.msg import DataShare, SecureEnvelope, encode, join_service_sample
from iomt.runtime import Context, Executor, Node, QoSProfile
from iomt.runtime.qos import HistoryPolicy

TARGET_AUDIT_PER_S = 10_000


def _median_us(fn: Callable[[], object], n: int, reps: int = 5) -> float:
    runs = []
    for _ in range(reps):
        t = time.perf_counter()
        for _ in range(n):
            fn()
        runs.append((time.perf_counter() - t) / n * 1e6)
    return statistics.median(runs)


def bench_write(types: CaptureTypes, n: int) -> dict[str, float]:
    from rosbags.rosbag2 import StoragePlugin, Writer

    data = encode(envelope(1))
    channel = types.channel_type("iomt_interfaces/msg/SecureEnvelope")
    with tempfile.TemporaryDirectory() as tmp:
        raw = Writer(Path(tmp) / "raw", version=9, storage_plugin=StoragePlugin.MCAP)
        raw.open()
        conn = raw.add_connection(
            "/b", channel.name, msgdef=channel.definition, rihs01=channel.type_hash
        )
        base = _median_us(lambda: raw.write(conn, T0, data), n)
        raw.close()
        ours = BagWriter(Path(tmp) / "ours", types)
        cost = _median_us(lambda: ours.write("/b", channel, T0, data, []), n)
        ours.close()
    return {"rosbags_write_us": base, "bagwriter_write_us": cost, "ratio": cost / base}


def bench_event(types: CaptureTypes, n: int) -> dict[str, float]:
    body = encode(DataShare.Response(envelope=envelope(2)))
    sample = join_service_sample(body, 7, 1)
    cost = _median_us(
        lambda: types.encode_service_event(
            "iomt_interfaces/srv/DataShare",
            event_type=RESPONSE_SENT,
            stamp_ns=T0,
            sample=sample,
            is_request=False,
        ),
        n,
    )
    return {"service_event_us": cost}


def bench_scan(n: int) -> dict[str, float]:
    sealed = seal(encode(vitals(0)), 0) + bytes(range(200))[:200]
    plain = encode(vitals(0))
    return {
        "scan_300B_sealed_us": _median_us(lambda: list(scan_vitals(sealed)), n),
        "parse_sample_us": _median_us(lambda: parse_vitals_sample(plain), n),
    }


def bench_audit(types: CaptureTypes, n: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        writer = BagWriter(Path(tmp) / "bag", types)
        v_ch = types.channel_type("iomt_interfaces/msg/Vitals")
        e_ch = types.channel_type("iomt_interfaces/msg/SecureEnvelope")
        s_ch = types.channel_type("iomt_interfaces/srv/DataShare_Event")
        reply = service_event(
            "iomt_interfaces/srv/DataShare",
            DataShare.Response(envelope=envelope(3)),
            request=False,
            guid=1,
            seq=1,
        )
        request = service_event(
            "iomt_interfaces/srv/DataShare",
            DataShare.Request(requester_uri=PROVIDER),
            request=True,
            guid=1,
            seq=1,
        )
        for i in range(n // 4):
            writer.write("/v", v_ch, T0 + 4 * i, encode(vitals(i)), [])
            writer.write("/e", e_ch, T0 + 4 * i + 1, encode(envelope(i)), [])
            writer.write("/s", s_ch, T0 + 4 * i + 2, request, [])
            writer.write("/s", s_ch, T0 + 4 * i + 3, reply, [])
        writer.close()
        runs = []
        for _ in range(3):
            t = time.perf_counter()
            report = audit(Path(tmp) / "bag", types=types)
            runs.append(report.messages_scanned / (time.perf_counter() - t))
    per_s = statistics.median(runs)
    return {"audit_msgs_per_s": per_s, "audit_target_met": float(per_s >= TARGET_AUDIT_PER_S)}


def _dds_rate(types: CaptureTypes, n: int, *, record: bool) -> float:
    """Messages/s from a publisher to a recorder (or a raw counting subscription)."""
    qos = QoSProfile(history=HistoryPolicy.KEEP_ALL)
    counted = [0]
    with tempfile.TemporaryDirectory() as tmp:
        ctx = Context(domain_id=random.SystemRandom().randint(1, 230))
        ex = Executor(ctx)
        node = Node("pub", context=ctx)
        recorder = None
        if record:
            recorder = Recorder(ctx, types, name="rec", config=RecorderParams(output=f"{tmp}/bag"))
            sink: Node = recorder
        else:
            sink = Node("sub", context=ctx)

            def count(_cdr: bytes) -> None:
                counted[0] += 1

            sink.create_subscription(SecureEnvelope, "/bench", count, qos, raw=True)
        ex.add_node(sink)
        ex.spin_in_thread()
        pub = node.create_publisher(SecureEnvelope, "/bench", qos)
        deadline = time.monotonic() + 10
        while pub.get_subscription_count() == 0 and time.monotonic() < deadline:
            time.sleep(0.01)

        def done() -> int:
            return recorder.stats.messages if recorder is not None else counted[0]

        data = encode(envelope(5))
        t = time.perf_counter()
        for _ in range(n):
            pub.publish_raw(data)
        while done() < n and time.monotonic() < deadline + 30:
            time.sleep(0.001)
        rate = done() / (time.perf_counter() - t)
        ex.shutdown()
        sink.destroy_node()
        node.destroy_node()
        ex.close()
        ctx.shutdown()
    return rate


def bench_dds(types: CaptureTypes, n: int) -> dict[str, float]:
    """Publisher and recorder in one process: how fast samples reach the bag."""
    base = statistics.median(_dds_rate(types, n, record=False) for _ in range(3))
    ours = statistics.median(_dds_rate(types, n, record=True) for _ in range(3))
    return {
        "count_only_msgs_per_s": base,
        "recorder_msgs_per_s": ours,
        "recorder_vs_count_only": ours / base,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--messages", type=int, default=20_000)
    args = parser.parse_args()
    t = time.perf_counter()
    types = CaptureTypes()
    results: dict[str, float] = {"capture_types_init_ms": (time.perf_counter() - t) * 1e3}
    results |= bench_write(types, 2000)
    results |= bench_event(types, 1000)
    results |= bench_scan(2000)
    results |= bench_audit(types, args.messages)
    results |= bench_dds(types, 5000)
    if args.json:
        print(json.dumps(results, indent=2, sort_keys=True))
    else:
        for key, value in results.items():
            print(f"{key:32s} {value:12.2f}")


if __name__ == "__main__":
    main()
