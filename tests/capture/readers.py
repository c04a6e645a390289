"""Open a recorded bag with every independent reader the project has, and count.

* rosbags' ``AnyReader``: every message of the bag, ros2msg and ros2idl definitions;
* Foxglove's ``mcap_ros2`` (0.6): every message on a ``ros2msg`` channel (topics). It has no
  IDL support and its vendored rosidl parser refuses a message named ``*_Event`` (a
  ``ros2msg`` definition of a ROS 2 service event cannot be decoded by it at all), so
  service events -- recorded with ``ros2idl`` definitions -- are out of its reach;
* ``mcap_ros2idl_support``: every message, both encodings.
"""

from __future__ import annotations

import importlib.metadata
from dataclasses import dataclass
from pathlib import Path

from mcap.reader import make_reader
from mcap_ros2.decoder import DecoderFactory
from mcap_ros2idl_support import Ros2DecodeFactory
from rosbags.highlevel import AnyReader

MCAP_ROS2_VERSION = "0.6.0"


@dataclass
class ReaderCounts:
    messages: int  # in the bag (MCAP message records)
    anyreader: int  # decoded by rosbags' AnyReader
    mcap_ros2: int  # decoded by mcap_ros2
    mcap_ros2_declined: dict[str, int]  # schema encoding -> messages it has no decoder for
    ros2idl_support: int  # decoded by mcap_ros2idl_support
    encodings: dict[str, int]  # schema encoding -> messages


def read_with_every_reader(bag: Path) -> ReaderCounts:
    with AnyReader([bag]) as reader:
        anyreader = sum(
            1 for conn, _t, raw in reader.messages() if reader.deserialize(raw, conn.msgtype)
        )
    (mcap_file,) = bag.glob("*.mcap")
    total, encodings = 0, {}
    with mcap_file.open("rb") as f:
        for schema, _channel, _message in make_reader(f).iter_messages():
            total += 1
            assert schema is not None
            encodings[schema.encoding] = encodings.get(schema.encoding, 0) + 1
    decoded, declined = 0, {}
    factory = DecoderFactory()
    with mcap_file.open("rb") as f:
        for schema, channel, message in make_reader(f).iter_messages():
            assert schema is not None
            decoder = factory.decoder_for(channel.message_encoding, schema)
            if decoder is None:
                declined[schema.encoding] = declined.get(schema.encoding, 0) + 1
                continue
            decoder(message.data)
            decoded += 1
    idl = 0
    with mcap_file.open("rb") as f:
        for _s, _c, _m, msg in make_reader(
            f, decoder_factories=[Ros2DecodeFactory()]
        ).iter_decoded_messages():
            idl += msg is not None
    return ReaderCounts(total, anyreader, decoded, declined, idl, encodings)


def assert_every_reader_decodes(bag: Path) -> ReaderCounts:
    counts = read_with_every_reader(bag)
    assert counts.messages > 0
    assert counts.anyreader == counts.messages, counts
    assert counts.ros2idl_support == counts.messages, counts
    # mcap_ros2's limit, pinned: all topics decode; only the service events it cannot read
    assert importlib.metadata.version("mcap-ros2-support") == MCAP_ROS2_VERSION
    assert counts.mcap_ros2 == counts.encodings.get("ros2msg", 0), counts
    assert counts.mcap_ros2_declined == (
        {"ros2idl": counts.encodings["ros2idl"]} if "ros2idl" in counts.encodings else {}
    ), counts
    return counts
