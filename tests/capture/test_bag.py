"""Bags are rosbag2 (MCAP, metadata v9) that independent readers accept; `iomt bag info`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from mcap.reader import make_reader
from mcap_ros2.decoder import DecoderFactory
from rosbags.highlevel import AnyReader
from rosbags.interfaces import (
    Qos,
    QosDurability,
    QosHistory,
    QosLiveliness,
    QosReliability,
    QosTime,
)
from rosbags.rosbag2 import Reader
from rosbags.typesys import Stores, get_types_from_idl, get_typestore

from capture.bags import T0, TYPES, service_event, write_bag
from capture.traffic import PROVIDER, envelope, vitals
from iomt.capture.bag import info, read_messages
from iomt.capture.errors import BagWriteError
from iomt.capture.recorder import BagWriter
from iomt.cli import main
from iomt.msg import DataShare, decode, encode

INF = QosTime(9223372036, 854775807)
RELIABLE = Qos(
    QosHistory.KEEP_LAST,
    10,
    QosReliability.RELIABLE,
    QosDurability.VOLATILE,
    INF,
    INF,
    QosLiveliness.AUTOMATIC,
    INF,
    False,
)


@pytest.fixture(scope="module")
def bag(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("bags") / "mixed"
    writer = BagWriter(path, TYPES)
    for i in range(6):
        writer.write(
            "/ward/vitals",
            TYPES.channel_type("iomt_interfaces/msg/Vitals"),
            T0 + i * 10**8,
            encode(vitals(i)),
            [RELIABLE],
        )
    for i in range(3):
        writer.write(
            "/clinic/dr_a/inbox",
            TYPES.channel_type("iomt_interfaces/msg/SecureEnvelope"),
            T0 + i * 10**8 + 5,
            encode(envelope(i)),
            [RELIABLE],
        )
    event = TYPES.channel_type("iomt_interfaces/srv/DataShare_Event")
    writer.write(
        "/ward/hr_1/data_share/_service_event",
        event,
        T0 + 7,
        service_event(
            "iomt_interfaces/srv/DataShare",
            DataShare.Request(request_id="r", requester_uri=PROVIDER),
            request=True,
            guid=5,
            seq=1,
        ),
        [RELIABLE],
    )
    writer.write(
        "/ward/hr_1/data_share/_service_event",
        event,
        T0 + 8,
        service_event(
            "iomt_interfaces/srv/DataShare",
            DataShare.Response(envelope=envelope(4)),
            request=False,
            guid=5,
            seq=1,
        ),
        [RELIABLE],
    )
    writer.close({"iomt.recorder": json.dumps({"dropped": 0, "messages": 11})})
    return path  # fmt: skip


def test_metadata_is_version_9_mcap(bag: Path) -> None:
    meta = yaml.safe_load((bag / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    assert meta["version"] == 9
    assert meta["storage_identifier"] == "mcap"
    assert meta["message_count"] == 11
    topics = {t["topic_metadata"]["name"]: t for t in meta["topics_with_message_count"]}
    vit = topics["/ward/vitals"]["topic_metadata"]
    assert vit["type"] == "iomt_interfaces/msg/Vitals"
    assert (
        vit["type_description_hash"] == TYPES.channel_type("iomt_interfaces/msg/Vitals").type_hash
    )
    assert vit["offered_qos_profiles"][0]["reliability"] == "reliable"


def test_rosbags_reader_gets_the_bytes_back(bag: Path) -> None:
    with Reader(bag) as reader:
        got = [(c.topic, bytes(d)) for c, _t, d in reader.messages()]
    vit = [d for t, d in got if t == "/ward/vitals"]
    assert vit == [encode(vitals(i)) for i in range(6)]
    assert [m.data for m in read_messages(bag, ["/clinic/dr_a/inbox"])] == [
        encode(envelope(i)) for i in range(3)
    ]


def test_independent_mcap_reader_decodes_topic_channels(bag: Path) -> None:
    """Foxglove's MCAP library reads the file and decodes the ros2msg schemas we wrote."""
    mcap_file = next(bag.glob("*.mcap"))
    with mcap_file.open("rb") as f:
        reader = make_reader(f, decoder_factories=[DecoderFactory()])
        summary = reader.get_summary()
        assert summary is not None and summary.statistics is not None
        assert summary.statistics.message_count == 11
        schemas = {s.name: s for s in summary.schemas.values()}
        assert schemas["iomt_interfaces/msg/Vitals"].encoding == "ros2msg"
        decoded = [
            (channel.topic, msg)
            for _s, channel, _m, msg in reader.iter_decoded_messages(
                topics=["/ward/vitals", "/clinic/dr_a/inbox"]
            )
        ]
    assert [m.heart_rate_bpm for t, m in decoded if t == "/ward/vitals" and m.kind == 0] == [
        vitals(i).heart_rate_bpm for i in (0, 2, 4)
    ]
    assert [bytes(m.ciphertext) for t, m in decoded if t == "/clinic/dr_a/inbox"] == [
        envelope(i).ciphertext for i in range(3)
    ]


def test_anyreader_checks_definitions_against_hashes(tmp_path: Path) -> None:
    """rosbags' AnyReader rebuilds every type from the bag's definitions and checks its hash.

    (It cannot take service types, whose names it maps to pkg/srv/msg/…; see the next test.)
    """
    bag = write_bag(
        tmp_path / "topics",
        [("/ward/vitals", "iomt_interfaces/msg/Vitals", T0, encode(vitals(0))),
         ("/clinic/dr_a/inbox", "iomt_interfaces/msg/SecureEnvelope", T0 + 1, encode(envelope(1))),
         ("/chatter", "std_msgs/msg/String", T0 + 2, b"\x00\x01\x00\x00\x03\x00\x00\x00hi\x00")],
    )  # fmt: skip
    with AnyReader([bag]) as reader:
        msgs = [reader.deserialize(d, c.msgtype) for c, _t, d in reader.messages()]
    assert msgs[0].device_uri == vitals(0).device_uri
    assert bytes(msgs[1].ciphertext) == envelope(1).ciphertext
    assert msgs[2].data == "hi"


def test_service_event_definition_is_ros2idl_that_parses_to_the_registered_types() -> None:
    """The event, then each type it uses once, as rosbag2 writes IDL definitions; each
    section parses (rosbags' IDL parser) to the fields rosbags registered, and the event's
    hash is the one of that IDL (tests/ros2 checks it equals rosidl's own)."""
    channel = TYPES.channel_type("iomt_interfaces/srv/DataShare_Event")
    sections = channel.definition.split("=" * 80 + "\n")
    assert sections[0] == ""
    names = {}
    for section in sections[1:]:
        header, text = section.split("\n", 1)
        assert header.startswith("IDL: ")
        names[header[5:]] = text
    assert list(names) == [
        "iomt_interfaces/srv/DataShare_Event", "service_msgs/msg/ServiceEventInfo",
        "builtin_interfaces/msg/Time", "iomt_interfaces/srv/DataShare_Request",
        "iomt_interfaces/srv/DataShare_Response", "iomt_interfaces/msg/SecureEnvelope",
    ]  # fmt: skip
    store = get_typestore(Stores.EMPTY)
    for name, text in names.items():
        parsed = get_types_from_idl(text)
        assert list(parsed) == [name]
        ((consts, fields),) = parsed.values()
        want_consts, want_fields = TYPES.store.fielddefs[name]
        assert [f[0] for f in fields] == [f[0] for f in want_fields], name
        assert [c[:2] for c in consts] == [c[:2] for c in want_consts], name
        store.register(parsed)
    assert store.hash_rihs01(channel.name) == channel.type_hash


def test_service_events_round_trip(bag: Path) -> None:
    events = [m for m in read_messages(bag) if m.msgtype == "iomt_interfaces/srv/DataShare_Event"]
    request, response = (TYPES.decode(m.data, m.msgtype) for m in events)
    assert (request.info.event_type, response.info.event_type) == (1, 2)  # RECEIVED, SENT
    assert request.request[0].requester_uri == PROVIDER and not request.response
    assert bytes(response.response[0].envelope.ciphertext) == envelope(4).ciphertext
    assert request.info.client_gid.tobytes() == (5).to_bytes(8, "little") + bytes(8)
    assert request.info.sequence_number == response.info.sequence_number == 1
    # the envelope inside the event is exactly what the device sent
    body = TYPES.store.serialize_cdr(
        response.response[0].envelope, "iomt_interfaces/msg/SecureEnvelope"
    )
    assert decode(type(envelope(4)), bytes(body)) == envelope(4)


def test_info(bag: Path, capsys: pytest.CaptureFixture[str]) -> None:
    summary = info(bag)
    assert (summary.storage_identifier, summary.version, summary.message_count) == ("mcap", 9, 11)
    assert summary.start_ns == T0  # the first message
    assert summary.end_ns == T0 + 5 * 10**8
    assert summary.duration_ns == 5 * 10**8
    assert {t.name: t.count for t in summary.topics} == {"/ward/vitals": 6, "/clinic/dr_a/inbox": 3}
    (service,) = summary.services
    assert (service.name, service.event_count, service.request_events, service.response_events) == (
        "/ward/hr_1/data_share", 2, 1, 1,
    )  # fmt: skip
    assert summary.message_types == {
        "iomt_interfaces/msg/Vitals": 6,
        "iomt_interfaces/msg/SecureEnvelope": 3,
        "iomt_interfaces/srv/DataShare_Request": 1,
        "iomt_interfaces/srv/DataShare_Response": 1,
    }
    assert summary.recorder == {"dropped": 0, "messages": 11}
    assert main(["bag", "info", str(bag), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["schema"] == "iomt.capture.info/1" and doc["message_count"] == 11
    assert main(["bag", "info", str(bag)]) == 0
    text = capsys.readouterr().out
    assert (
        "Topic: /ward/vitals | Type: iomt_interfaces/msg/Vitals | Count: 6 | "
        "Serialization Format: cdr" in text
    )
    assert (
        "Service: /ward/hr_1/data_share | Type: iomt_interfaces/srv/DataShare | Event Count: 2"
        in text
    )
    # a bare .mcap file is a bag too
    assert info(next(bag.glob("*.mcap"))).message_count == 11


def test_bag_writer_refuses_an_existing_directory(tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    with pytest.raises(BagWriteError):
        BagWriter(tmp_path / "taken", TYPES)


def _open_with_connections(cls: Any, path: Path, plan: list[tuple[str, Any, list[Any]]]) -> Any:
    """A version-9 MCAP bag opened with ``cls`` (rosbags' Writer or the recorder's), with a
    connection per (topic, channel type, offered QoS profiles) of ``plan``."""
    from rosbags.rosbag2 import StoragePlugin

    path.parent.mkdir()
    w = cls(path, version=9, storage_plugin=StoragePlugin.MCAP)
    w.open()
    conns = [
        w.add_connection(
            topic,
            kind.name,
            msgdef=kind.definition,
            rihs01=kind.type_hash,
            offered_qos_profiles=qos,
        )
        for topic, kind, qos in plan
    ]
    return w, conns


def test_the_recorders_writer_writes_what_rosbags_writer_writes(tmp_path: Path) -> None:
    """The recorder's writer (connections added and written in O(1)) leaves the same bag as
    rosbags' own Writer: the same MCAP bytes and the same metadata.yaml."""
    from rosbags.rosbag2 import Writer, WriterError

    from iomt.capture.recorder import _writer_class

    best_effort = RELIABLE._replace(reliability=QosReliability.BEST_EFFORT)
    vitals_type = TYPES.channel_type("iomt_interfaces/msg/Vitals")
    plan = [
        ("/a", [RELIABLE]),
        ("/b", [RELIABLE]),
        ("/c", [RELIABLE, best_effort]),
        ("/d", []),
        ("/a", [best_effort]),  # the same topic with other QoS: another connection
    ]
    bags = {}
    for name, cls in (("stock", Writer), ("recorder", _writer_class())):
        path = tmp_path / name / "bag"
        w, conns = _open_with_connections(cls, path, [(t, vitals_type, q) for t, q in plan])
        with pytest.raises(WriterError):
            w.add_connection(
                "/b",
                vitals_type.name,
                msgdef=vitals_type.definition,
                rihs01=vitals_type.type_hash,
                offered_qos_profiles=[RELIABLE],
            )
        for i in range(40):
            w.write(conns[i % len(conns)], T0 + i, encode(vitals(i)))
        w.set_custom_data("k", "v")
        w.close()
        bags[name] = path
    for f in ("metadata.yaml", "bag.mcap"):
        assert (bags["recorder"] / f).read_bytes() == (bags["stock"] / f).read_bytes(), f


def test_the_recorders_metadata_is_the_stock_writers_for_many_connections(tmp_path: Path) -> None:
    """metadata.yaml (and the copy in the MCAP file), written at close from entries
    emitted once per shape, is byte for byte the stock writer's: topic names of every length
    (short ones, ones the emitter moves to the next line), names that need quoting, several
    types and QoS lists, repeated shapes, counts of every size."""
    from rosbags.rosbag2 import Writer

    from iomt.capture.recorder import _writer_class

    best_effort = RELIABLE._replace(reliability=QosReliability.BEST_EFFORT)
    kinds = [TYPES.channel_type(t) for t in ("iomt_interfaces/msg/Vitals", "std_msgs/msg/String")]
    qos_lists = [[RELIABLE], [RELIABLE, best_effort], []]
    names = [f"/{'ab_cd/' * (n // 6)}{'x' * (n % 6)}t{n}" for n in range(0, 130, 3)]
    names += ["/a b", "/x: y", "/#z", "/~q", "/N", "/NN", "/yes", "/1"]
    plan = [(name, kinds[i % 2], qos_lists[i % 3]) for i, name in enumerate(names)]
    bags = {}
    for label, cls in (("stock", Writer), ("recorder", _writer_class())):
        path = tmp_path / label / "bag"
        w, conns = _open_with_connections(cls, path, plan)
        for i, conn in enumerate(conns):
            for j in range((i * 7) % 23):
                w.write(conn, T0 + i * 100 + j, b"\x00\x01\x00\x00" + bytes(8))
        w.set_custom_data(
            "iomt.recorder", '{"messages": 12, "note": "a long value ' + "z" * 90 + '"}'
        )
        w.close()
        bags[label] = path
    stock = (bags["stock"] / "metadata.yaml").read_text()
    assert stock.count("topic_metadata") == len(plan)
    assert (bags["recorder"] / "metadata.yaml").read_text() == stock
    assert (bags["recorder"] / "bag.mcap").read_bytes() == (bags["stock"] / "bag.mcap").read_bytes()
