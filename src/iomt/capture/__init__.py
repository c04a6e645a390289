"""Capture: recording iomt traffic into rosbag2 bags, and judging it as an eavesdropper.

Bilal & Hassan judge their framework (Experiment 1, Fig. 6) by what an observer of the
network — Wireshark in the paper — can read: the share of transmissions whose vitals travel
in plaintext, centralized baseline vs distributed framework. This package makes that
measurement from recorded traffic instead of from counters:

* :class:`~iomt.capture.recorder.Recorder` (container factory
  ``iomt.capture.recorder:recorder_node``; ``iomt bag record``) records every iomt topic
  and service of a DDS domain, bytes as they were on the wire, into a rosbag2 bag (MCAP,
  metadata version 9) that ``ros2 bag info/play``, rosbags and Foxglove read. Services are
  recorded the way ROS 2 Jazzy's ``--all-services`` does, as ``<pkg>/srv/<Name>_Event``.
* :func:`~iomt.capture.audit.audit` (``iomt bag audit``) is a pure function over a bag:
  every reading-bearing transmission, and whether a plausible ``Vitals`` plaintext is in
  its bytes — never trusting a technique label.
* :func:`~iomt.capture.bag.info` (``iomt bag info``) and
  :func:`~iomt.capture.player.play` (``iomt bag play``) mirror ``ros2 bag info``/``play``.

The layer sits above the runtime: it may use :mod:`iomt.runtime`, :mod:`iomt.msg`,
cyclonedds and rosbags, and :mod:`iomt.topology.params` for the recorder's parameters
(:class:`~iomt.topology.params.RecorderParams`). See docs/capture.md.
"""

from __future__ import annotations

from iomt.capture.audit import AuditReport, SignatureVerifier, Transmission, audit
from iomt.capture.bag import BagInfo, info, read_messages
from iomt.capture.errors import BagError, BagReadError, BagWriteError
from iomt.capture.interfaces import CaptureTypes
from iomt.capture.plaintext import VitalsFinding, parse_vitals_sample, scan_vitals
from iomt.capture.player import PlayStats, play
from iomt.capture.radio import RadioMap
from iomt.capture.recorder import Recorder, RecorderStats, record, recorder_node
from iomt.topology.params import RecorderParams

__all__ = [
    "AuditReport",
    "BagError",
    "BagInfo",
    "BagReadError",
    "BagWriteError",
    "CaptureTypes",
    "PlayStats",
    "RadioMap",
    "Recorder",
    "RecorderParams",
    "RecorderStats",
    "SignatureVerifier",
    "Transmission",
    "VitalsFinding",
    "audit",
    "info",
    "parse_vitals_sample",
    "play",
    "read_messages",
    "record",
    "recorder_node",
    "scan_vitals",
]
