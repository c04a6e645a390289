"""The audit's hop distances: measured on the ward's radio graph, from where the nodes are,
not from what kind of message or topic carried a reading."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from capture.bags import T0, service_event, write_bag
from capture.traffic import PROVIDER, envelope, vitals
from iomt.capture.audit import audit
from iomt.capture.radio import RadioMap, Station
from iomt.cli import main
from iomt.errors import ConfigurationError
from iomt.msg import ConversionRequest, Convert, encode
from iomt.topology import load

# A line, radio range 10: a(0) - b(8) - c(16) - d(24); e far away; f with a short range.
MAP = RadioMap(
    {
        "iomt://w/a": Station(0.0, 0.0, 10.0),
        "iomt://w/b": Station(8.0, 0.0, 10.0),
        "iomt://w/c": Station(16.0, 0.0, 10.0),
        "iomt://w/d": Station(24.0, 0.0, 10.0),
        "iomt://w/e": Station(100.0, 0.0, 10.0),
        "iomt://w/f": Station(0.0, 3.0, 2.0),
    }
)
CONVERT_EVENT = "iomt_interfaces/srv/Convert_Event"


def test_hops_follow_the_radio_graph() -> None:
    assert MAP.hops("iomt://w/a", "iomt://w/a") == 0
    assert MAP.hops("iomt://w/a", "iomt://w/b") == 1
    assert MAP.hops("iomt://w/a", "iomt://w/c") == 2
    assert MAP.hops("iomt://w/d", "iomt://w/a") == 3
    assert MAP.hops("iomt://w/a", "iomt://w/e") is None  # no path
    assert MAP.hops("iomt://w/a", PROVIDER) is None  # not on the map
    # a link needs both ends in range: f (range 2) is 3 m from a (range 10)
    assert not MAP.linked("iomt://w/a", "iomt://w/f")
    assert MAP.hops("iomt://w/a", "iomt://w/f") is None


def test_radio_map_round_trips_and_rejects_garbage(tmp_path: Path) -> None:
    MAP.save(tmp_path / "radio.json")
    assert RadioMap.load(tmp_path / "radio.json") == MAP
    (tmp_path / "bad.json").write_text(json.dumps({"schema": "other"}))
    with pytest.raises(ConfigurationError):
        RadioMap.load(tmp_path / "bad.json")
    with pytest.raises(ConfigurationError):
        RadioMap.from_json({"schema": "iomt.capture.radio/1", "stations": {"x": {"x": 1}}})


def test_radio_map_of_a_ward_is_where_its_devices_were_placed() -> None:
    plan = load("scale_10", seed=3)
    radio = RadioMap.from_plan(plan)
    devices = [n for p in plan.processes for n in p.nodes if n.factory.endswith(":device_node")]
    assert sorted(radio.stations) == sorted(f"iomt://ward1/{d.name}" for d in devices)
    for d in devices:
        s = radio.stations[f"iomt://ward1/{d.name}"]
        assert (s.x, s.y, s.radio_range) == (d.params["x"], d.params["y"], d.params["radio_range"])
    # providers and wallets are not on it
    assert "iomt://ward1/dr_0" not in radio and "iomt://ward1/wallet_0" not in radio


def _order(i: int, device: str, converter: str, reading_of: str = "") -> ConversionRequest:
    reading = vitals(i)
    reading.device_uri = reading_of or device
    return ConversionRequest(
        request_id=f"conv-{i}",
        device_uri=device,
        converter_uri=converter,
        requester_uri=PROVIDER,
        requested_technique="ecc",
        link_technique="none",
        payload=encode(reading),
        signature_algorithm="ecdsa-p256",
        signature=b"\x01" * 64,
    )


def _convert_call(i: int, order: ConversionRequest, served_by: str) -> tuple[str, str, int, bytes]:
    channel = served_by.removeprefix("iomt:/") + "/convert/_service_event"
    data = service_event(
        "iomt_interfaces/srv/Convert", Convert.Request(request=order), request=True, guid=3, seq=i
    )
    return (channel, CONVERT_EVENT, T0 + i, data)


def test_plaintext_orders_are_measured_from_the_reading_to_the_server(tmp_path: Path) -> None:
    bag = write_bag(
        tmp_path / "bag",
        [
            # a's reading to its neighbour b: one hop
            _convert_call(1, _order(1, "iomt://w/a", "iomt://w/b"), "iomt://w/b"),
            # a's reading to c, two hops away: exactly what the one-hop rule forbids
            _convert_call(2, _order(2, "iomt://w/a", "iomt://w/c"), "iomt://w/c"),
            # an order that names b but was sent to d's service: d received it (3 hops)
            _convert_call(3, _order(3, "iomt://w/a", "iomt://w/b"), "iomt://w/d"),
            # an order claiming to be from b, carrying a's reading: measured from a
            _convert_call(
                4, _order(4, "iomt://w/b", "iomt://w/c", reading_of="iomt://w/a"), "iomt://w/c"
            ),
            # a sealed envelope for the provider: not readable, off the radio map
            (
                "/clinic/dr-a/inbox",
                "iomt_interfaces/msg/SecureEnvelope",
                T0 + 5,
                encode(envelope(6)),
            ),
        ],
    )
    report = audit(bag, radio=MAP)
    items = report.transmissions
    assert [(t.receiver, t.hops) for t in items[:3]] == [
        ("iomt://w/b", 1),
        ("iomt://w/c", 2),
        ("iomt://w/d", 3),
    ]
    assert all(t.readable and t.producer == "iomt://w/a" for t in items[:3])
    assert items[2].recipient == "iomt://w/b"  # what the order claimed, reported as such
    fourth = items[3]
    assert (fourth.sender, fourth.producer, fourth.receiver) == (
        "iomt://w/b",
        "iomt://w/a",
        "iomt://w/c",
    )
    assert fourth.hops == 2  # from the reading's own device, not from the claimed sender
    inbox = items[4]
    assert not inbox.readable and inbox.receiver == PROVIDER and inbox.hops is None
    doc = report.to_json()
    assert doc["radio_map"] is True
    assert {k: v["readable"] for k, v in doc["by_radio_hops"].items()} == {
        "1": 1,
        "2": 2,
        "3": 1,
        "off-map": 0,
    }
    item = doc["readable_items"][1]
    assert (item["producer"], item["receiver"], item["hops"]) == ("iomt://w/a", "iomt://w/c", 2)
    # without a map there are no hop distances
    plain = audit(bag)
    assert all(t.hops is None for t in plain.transmissions)
    assert plain.to_json()["by_radio_hops"] is None


def test_cli_audit_takes_a_radio_map(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bag = write_bag(
        tmp_path / "bag",
        [_convert_call(2, _order(2, "iomt://w/a", "iomt://w/c"), "iomt://w/c")],
    )
    MAP.save(tmp_path / "radio.json")
    assert main(["bag", "audit", str(bag), "--radio", str(tmp_path / "radio.json"), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["readable_items"][0]["hops"] == 2
    assert main(["bag", "audit", str(bag), "--radio", str(tmp_path / "radio.json")]) == 0
    assert "radio_hops=2" in capsys.readouterr().out
