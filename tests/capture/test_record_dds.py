"""Recording real DDS traffic: processes, containers, services, malformed samples, replay."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any, cast

import pytest
from cyclonedds.pub import DataWriter

from capture.bags import TYPES
from capture.nodes import reply_for
from capture.traffic import envelope, padded, vitals
from iomt.capture.audit import audit
from iomt.capture.bag import info, read_messages
from iomt.capture.player import play
from iomt.capture.recorder import MALFORMED_SUFFIX, BagWriter, Recorder, recorder_node
from iomt.errors import ConfigurationError
from iomt.msg import DataShare, Vitals, encode, join_service_sample
from iomt.runtime import Context, Executor, Node, qos_profile_services_default
from iomt.runtime._dds import write_raw
from iomt.topology.params import RecorderParams
from runtime.helpers import write_spec

pytestmark = [pytest.mark.dds, pytest.mark.timeout(90)]

COUNT = 6
EVENTS = "/t/data_share/_service_event"


def _wait_for_file(path: Path, timeout_s: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if path.exists():
            return json.loads(path.read_text(encoding="utf-8"))  # type: ignore[no-any-return]
        time.sleep(0.05)
    raise AssertionError(f"{path} not written within {timeout_s} s")


def _stop(proc: Any, sig: int = signal.SIGINT, timeout_s: float = 20) -> str:
    os.killpg(proc.pid, sig)
    out, err = proc.communicate(timeout=timeout_s)
    assert proc.returncode == 0, err[-2000:]
    return str(out)


def _traffic_spec(tmp_path: Path, done: Path, extra: list[dict[str, Any]] | None = None) -> Path:
    nodes = [
        {
            "factory": "capture.nodes:traffic",
            "name": "ward",
            "namespace": "/t",
            "params": {"count": COUNT, "done_file": str(done)},
        }
    ]
    return write_spec(tmp_path / "spec.json", (extra or []) + nodes)


def _check_bag(bag: Path, client_guid: int) -> None:
    """Every published message is in the bag, byte for byte; every service call as events."""
    by_topic: dict[str, list[bytes]] = {}
    for m in read_messages(bag):
        by_topic.setdefault(m.topic, []).append(m.data)
    assert by_topic["/t/vitals"] == [padded(encode(vitals(i))) for i in range(COUNT)]
    assert by_topic["/t/inbox"] == [padded(encode(envelope(i))) for i in range(COUNT)]
    events = [TYPES.decode(d, "iomt_interfaces/srv/DataShare_Event") for d in by_topic[EVENTS]]
    requests = [e for e in events if e.request]
    replies = [e for e in events if e.response]
    assert len(requests) == len(replies) == COUNT
    assert sorted(e.request[0].request_id for e in requests) == [f"req-{i}" for i in range(COUNT)]
    gid = client_guid.to_bytes(8, "little") + bytes(8)
    assert {e.info.client_gid.tobytes() for e in events} == {gid}
    by_seq = {e.info.sequence_number: e.request[0].request_id for e in requests}
    for reply in replies:  # each reply pairs with its request and carries the exact envelope
        expected = reply_for(by_seq[reply.info.sequence_number])
        got = reply.response[0].envelope
        assert bytes(got.ciphertext) == expected.ciphertext
        assert (got.security_technique, got.request_id) == (
            expected.security_technique,
            expected.request_id,
        )
    summary = info(bag)
    assert summary.recorder["dropped"] == 0
    assert summary.recorder["malformed_service_samples"] == 0
    assert summary.message_types["iomt_interfaces/srv/DataShare_Request"] == COUNT
    report = audit(bag)
    # Vitals (plaintext) + sealed inbox envelopes + replies (half plaintext "none")
    assert report.total == 3 * COUNT
    assert report.readable == COUNT + COUNT // 2
    assert report.breakdown(lambda t: t.kind)["iomt_interfaces/msg/SecureEnvelope"]["readable"] == 0


def test_record_process_captures_topics_and_services(
    procs: Any, tmp_path: Path, domain_id: int
) -> None:
    bag, done = tmp_path / "bag", tmp_path / "done.json"
    recorder = procs.start(
        "-m", "iomt", "bag", "record", "-o", str(bag), "--domain", str(domain_id)
    )
    procs.wait_for_line(recorder, "RECORDING", 20)
    ward = procs.start(
        "-m", "iomt.runtime.container", "--spec", str(_traffic_spec(tmp_path, done)),
        "--domain", str(domain_id),
    )  # fmt: skip
    procs.wait_for_line(ward, "READY", 20)
    sent = _wait_for_file(done, 40)
    _stop(ward, signal.SIGTERM)  # writers linger until the recorder has acknowledged
    out = _stop(recorder)
    assert "STOPPED" in out
    _check_bag(bag, sent["client_guid"])


def test_record_stops_by_itself_after_duration(procs: Any, tmp_path: Path, domain_id: int) -> None:
    bag = tmp_path / "bag"
    recorder = procs.start(
        "-m", "iomt", "bag", "record", "-o", str(bag), "--domain", str(domain_id),
        "--duration", "0.5",
    )  # fmt: skip
    out, err = recorder.communicate(timeout=30)
    assert recorder.returncode == 0, err
    assert "STOPPED" in out
    summary = info(bag)
    assert (summary.message_count, summary.storage_identifier, summary.version) == (0, "mcap", 9)


def test_record_refuses_an_existing_output(procs: Any, tmp_path: Path, domain_id: int) -> None:
    recorder = procs.start(
        "-m", "iomt", "bag", "record", "-o", str(tmp_path), "--domain", str(domain_id)
    )
    _out, err = recorder.communicate(timeout=30)
    assert recorder.returncode == 2
    assert "exists" in err


def test_the_recorder_factory_refuses_no_output_naming_the_node() -> None:
    """Refused before any node exists: no context is reached."""
    with pytest.raises(ConfigurationError, match=r"^node /iomt/recorder: .* output directory"):
        recorder_node(cast(Any, None), name="recorder", namespace="/iomt", output="")


@pytest.mark.parametrize("batch_ms", [-1.0, 1001.0, float("nan")])
def test_the_recorder_refuses_a_batch_out_of_range_naming_the_node(batch_ms: float) -> None:
    with pytest.raises(ConfigurationError, match=r"^node /iomt/recorder: batch_ms must be"):
        recorder_node(
            cast(Any, None), name="recorder", namespace="/iomt", output="bag", batch_ms=batch_ms
        )


def test_a_burst_arriving_while_the_recorder_lets_samples_gather_is_kept_whole(
    tmp_path: Path, domain_id: int
) -> None:
    """The recorder takes samples in batches (``batch_ms``): what arrives meanwhile waits
    in its KEEP_ALL readers, none overwritten, and a clean stop takes the rest."""
    ctx = Context(domain_id=domain_id)
    config = RecorderParams(output=str(tmp_path / "bag"), batch_ms=200.0)
    recorder = Recorder(ctx, name="recorder", config=config)
    assert recorder.spin_pause_s == 0.2
    ex = Executor(ctx)
    ex.add_node(recorder)
    stop = threading.Event()

    def loop() -> None:  # the container's loop: spin, then let samples gather
        while not stop.is_set():
            ex.spin_once(0.1)
            stop.wait(recorder.spin_pause_s)

    spinner = threading.Thread(target=loop, daemon=True)
    spinner.start()
    burst = 400
    try:
        writer = DataWriter(
            ctx.participant, ctx.topic("rt/t/vitals", Vitals, qos_profile_services_default)
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not writer.get_matched_subscriptions():
            time.sleep(0.05)
        for i in range(burst):
            write_raw(writer, encode(vitals(i)))
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and recorder.stats.messages < burst // 2:
            time.sleep(0.02)
    finally:
        stop.set()
        spinner.join(5)
        stats = recorder.close()
        recorder.destroy_node()
        ex.close()
        ctx.shutdown()
    assert stats.messages == burst and stats.dropped == 0
    seqs = [TYPES.decode(m.data, m.msgtype).seq for m in read_messages(tmp_path / "bag")]
    assert seqs == [vitals(i).seq for i in range(burst)]


def test_recorder_as_a_container_node(procs: Any, tmp_path: Path, domain_id: int) -> None:
    bag, done = tmp_path / "bag", tmp_path / "done.json"
    recorder = {
        "factory": "iomt.capture.recorder:recorder_node",
        "name": "recorder",
        "params": {"output": str(bag)},
    }
    spec = _traffic_spec(tmp_path, done, [recorder])
    ward = procs.start(
        "-m", "iomt.runtime.container", "--spec", str(spec), "--domain", str(domain_id)
    )
    procs.wait_for_line(ward, "READY", 20)
    sent = _wait_for_file(done, 40)
    # no waiting: on SIGTERM the recorder takes what is still queued before it closes the
    # bag (docs/capture.md, "Stopping"), and _check_bag finds every message in it
    _stop(ward, signal.SIGTERM)
    _check_bag(bag, sent["client_guid"])


FOREIGN_PEER = str(Path(__file__).with_name("foreign_peer.py"))


def test_malformed_and_foreign_traffic_is_kept(procs: Any, tmp_path: Path, domain_id: int) -> None:
    ctx = Context(domain_id=domain_id)
    ex = Executor(ctx)
    recorder = Recorder(ctx, name="recorder", config=RecorderParams(output=str(tmp_path / "bag")))
    ex.add_node(recorder)
    ex.spin_in_thread()
    try:
        peer = procs.start(FOREIGN_PEER, str(domain_id), "hello ROS")
        procs.wait_for_line(peer, "SENT", 30)
        vitals_writer = DataWriter(
            ctx.participant, ctx.topic("rt/t/vitals", Vitals, qos_profile_services_default)
        )
        request_writer = DataWriter(
            ctx.participant,
            ctx.topic(
                "rq/t/data_shareRequest", DataShare.RequestWire, qos_profile_services_default
            ),
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not (
            vitals_writer.get_matched_subscriptions() and request_writer.get_matched_subscriptions()
        ):
            time.sleep(0.05)
        # Cyclone refuses to write what does not deserialize; what it lets through but iomt's
        # strict decoder refuses is a well-formed sample with bytes after it.
        garbage = encode(vitals(3)) + b"\xde\xad\xbe\xef" * 5
        request = encode(DataShare.Request(request_id="x"))
        junk = join_service_sample(request, 9, 1) + b"\xde\xad\xbe\xef" * 5
        hidden = join_service_sample(request, 9, 2) + encode(vitals(2))
        good = join_service_sample(encode(DataShare.Request(request_id="ok")), 9, 3)
        write_raw(vitals_writer, garbage)
        write_raw(vitals_writer, encode(vitals(1)))
        for sample in (junk, hidden, good):
            write_raw(request_writer, sample)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and recorder.stats.messages < 6:
            time.sleep(0.05)
    finally:
        ex.shutdown()
        stats = recorder.close()
        recorder.destroy_node()
        ex.close()
        ctx.shutdown()
    assert stats.messages == 6 and stats.malformed_service_samples == 2 and stats.dropped == 0
    msgs = list(read_messages(tmp_path / "bag"))
    by_topic: dict[str, list[Any]] = {}
    for m in msgs:
        by_topic.setdefault(m.topic, []).append(m)
    (hello,) = by_topic["/t/chatter"]
    assert hello.msgtype == "std_msgs/msg/String"
    assert hello.data == padded(b"\x00\x01\x00\x00\x0a\x00\x00\x00hello ROS\x00")
    assert [m.data for m in by_topic["/t/vitals"]] == [garbage, padded(encode(vitals(1)))]
    kept = [TYPES.decode(m.data, m.msgtype) for m in by_topic["/t/data_share" + MALFORMED_SUFFIX]]
    assert [k.layout.dim[0].label for k in kept] == ["rq/t/data_shareRequest"] * 2
    assert [k.data.tobytes() for k in kept] == [padded(junk), padded(hidden)]
    (event,) = by_topic[EVENTS]
    assert TYPES.decode(event.data, event.msgtype).request[0].request_id == "ok"
    report = audit(tmp_path / "bag")  # the plaintext hidden in a broken request is still found
    offset = len(hidden) - len(encode(vitals(2)))
    assert sorted((t.topic, t.readable, t.evidence) for t in report.transmissions) == [
        ("/t/data_share" + MALFORMED_SUFFIX, True, f"field data (embedded at {offset})"),
        ("/t/vitals", True, "message"),
        ("/t/vitals", True, "message"),
    ]


def _recorded_bag(path: Path) -> Path:
    writer = BagWriter(path, TYPES)
    t0 = time.time_ns()
    for i in range(5):
        writer.write(
            "/p/vitals",
            TYPES.channel_type("iomt_interfaces/msg/Vitals"),
            t0 + i * 20_000_000,
            encode(vitals(i)),
            [],
        )
        writer.write(
            "/p/inbox",
            TYPES.channel_type("iomt_interfaces/msg/SecureEnvelope"),
            t0 + i * 20_000_000 + 1,
            encode(envelope(i)),
            [],
        )
    writer.write(
        EVENTS,
        TYPES.channel_type("iomt_interfaces/srv/DataShare_Event"),
        t0 + 5,
        b"\x00\x01\x00\x00",
        [],
    )
    writer.close()
    return path  # fmt: skip


def test_play_republishes_recorded_bytes(tmp_path: Path, domain_id: int) -> None:
    bag = _recorded_bag(tmp_path / "bag")
    ctx = Context(domain_id=domain_id)
    ex = Executor(ctx)
    node = Node("listener", context=ctx, namespace="/p")
    got: list[tuple[str, bytes]] = []
    node.create_subscription(Vitals, "vitals", lambda b: got.append(("v", b)), raw=True)
    node.create_subscription(type(envelope(0)), "inbox", lambda b: got.append(("e", b)), raw=True)
    ex.add_node(node)
    ex.spin_in_thread()
    try:
        stats = play(bag, context=ctx, rate=4.0, wait_for_subscribers_s=10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and len(got) < 10:
            time.sleep(0.02)
    finally:
        ex.shutdown()
        node.destroy_node()
        ex.close()
        ctx.shutdown()
    assert stats.published == {"/p/vitals": 5, "/p/inbox": 5}
    assert stats.skipped == {EVENTS: "service traffic is not replayed"}
    assert [b for k, b in got if k == "v"] == [padded(encode(vitals(i))) for i in range(5)]
    assert [b for k, b in got if k == "e"] == [padded(encode(envelope(i))) for i in range(5)]
    # published in recorded order; DDS orders each topic, not one topic against another
    assert stats.order == ["/p/vitals", "/p/inbox"] * 5


def test_play_process(procs: Any, tmp_path: Path, domain_id: int) -> None:
    bag = _recorded_bag(tmp_path / "bag")
    ctx = Context(domain_id=domain_id)
    ex = Executor(ctx)
    node = Node("listener", context=ctx, namespace="/p")
    got: list[bytes] = []
    node.create_subscription(Vitals, "vitals", got.append, raw=True)
    ex.add_node(node)
    ex.spin_in_thread()
    try:
        player = procs.start(
            "-m", "iomt", "bag", "play", str(bag), "--domain", str(domain_id),
            "--topics", "/p/vitals", "--wait-for-subscribers", "20",
        )  # fmt: skip
        out, err = player.communicate(timeout=40)
        assert player.returncode == 0, err
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and len(got) < 5:
            time.sleep(0.02)
    finally:
        ex.shutdown()
        node.destroy_node()
        ex.close()
        ctx.shutdown()
    assert "published 5 on /p/vitals" in out
    assert got == [padded(encode(vitals(i))) for i in range(5)]
