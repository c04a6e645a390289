"""A device node's parts without DDS: its core as its parameters make it, its readings
(sampled, numbered on across restarts, kept locally or uploaded), its clients of its
neighbours' services, and its line in the run's results."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from iomt.core.device import DeviceCore
from iomt.core.modes import Mode
from iomt.core.vitals import Reading, VitalKind
from iomt.crypto.keystore import Keystore
from iomt.crypto.techniques import Capability
from iomt.msg import Convert, SessionHandshake, Vitals
from iomt.nodes.announcing import HeardAnnouncements
from iomt.nodes.device_config import DeviceNodeConfig
from iomt.nodes.device_sampling import Sampler, open_storage
from iomt.nodes.device_setup import device_core, device_record
from iomt.nodes.device_storage import DeviceStorage, audit_device_storage
from iomt.nodes.peer_clients import PRECREATED_CONVERTERS, PeerClients

SECRET = bytes(range(64))


@pytest.fixture(scope="module")
def keystore(tmp_path_factory: pytest.TempPathFactory) -> Keystore:
    ks = Keystore.create(tmp_path_factory.mktemp("ks") / "ks", facility="ward1")
    for name in ("hr_0", "wallet_0"):
        ks.add_identity(name)
    return ks


def _core(ks: Keystore, **params: Any) -> DeviceCore:
    c = DeviceNodeConfig.from_mapping(
        {
            "keystore": "ks",
            "capability": "ecc",
            "kind": "blood_pressure",
            "x": 1.0,
            "y": 2.0,
            "wallet": "wallet_0",
            **params,
        }
    )
    return device_core(c, ks, ks.identity("hr_0"), HeardAnnouncements(), facility="ward1")


def test_the_core_is_the_device_its_parameters_describe(keystore: Keystore) -> None:
    core = _core(keystore, radio_range=7.5, announce_period_s=3.0)
    c = core.config
    assert (core.uri, c.capability, c.technique) == ("iomt://ward1/hr_0", Capability.ECC, "ecc")
    assert (c.kind, c.x, c.y, c.radio_range, c.announce_period_s) == (
        int(VitalKind.BLOOD_PRESSURE),
        1.0,
        2.0,
        7.5,
        3.0,
    )
    a = core.announcement(0)  # signed with the identity key, certified by the keystore
    assert a.certificate == keystore.certificate_der("hr_0")
    assert a.convertible == ("sym-aes",)


class FakeUpload:
    def __init__(self) -> None:
        self.added: list[tuple[int, Vitals]] = []

    def add(self, seq: int, reading: Vitals) -> None:
        self.added.append((seq, reading))


def _sampler(core: DeviceCore, db: DeviceStorage, **kw: Any) -> tuple[Sampler, list[int]]:
    transfer: list[int] = []
    sampler = Sampler(
        core, db, kind=VitalKind.HEART_RATE, seed=7, patient_id="p1", transfer_us=transfer, **kw
    )
    return sampler, transfer


def test_a_reading_is_recorded_for_sharing_and_stored_at_rest(
    keystore: Keystore, tmp_path: Path
) -> None:
    core = _core(keystore)
    db = open_storage(str(tmp_path / "run"), "hr_0", core.uri, SECRET, seal=True)
    assert db.path == tmp_path / "run" / "hr_0.db"
    assert (tmp_path / "run").stat().st_mode & 0o777 == 0o700
    heard: list[tuple[Reading, int]] = []
    sampler, transfer = _sampler(core, db, on_reading=lambda r, t: heard.append((r, t)))
    for _ in range(3):
        sampler.sample()
    assert sampler.seq == 3 and len(transfer) == 3 and db.count == 3
    latest = core.latest()
    assert latest is not None and latest.seq == 3
    msg = Vitals.deserialize(latest.cdr)
    assert (msg.device_uri, msg.patient_id, msg.seq) == (core.uri, "p1", 3)
    assert msg.kind == int(VitalKind.HEART_RATE)
    assert msg.heart_rate_bpm == pytest.approx(heard[-1][0].heart_rate_bpm)  # float32
    assert [t for _, t in heard] == [r.stamp_ns for r in core.readings]
    db.close()
    # restarted: numbers go on above anything used before, in the same chain
    db = open_storage(str(tmp_path / "run"), "hr_0", core.uri, SECRET, seal=True)
    sampler, _ = _sampler(_core(keystore), db)
    assert sampler.seq >= 3
    sampler.sample()
    assert sampler.seq > 3
    db.close()
    assert (
        audit_device_storage(tmp_path / "run" / "hr_0.db", store=core.uri, secret=SECRET).records
        == 4
    )


def test_centralized_every_reading_is_uploaded_and_none_kept(keystore: Keystore) -> None:
    core = _core(keystore, mode=Mode.CENTRALIZED)
    db = open_storage(None, "hr_0", core.uri, SECRET, seal=False)
    upload, heard = FakeUpload(), []
    sampler, transfer = _sampler(
        core,
        db,
        upload=upload,  # type: ignore[arg-type]
        on_reading=lambda r, t: heard.append(r),
    )
    sampler.sample()
    sampler.sample()
    assert [seq for seq, _ in upload.added] == [1, 2]
    assert upload.added[1][1].device_uri == core.uri
    # the upload link measures transfer time until the server stored it
    assert (transfer, heard, core.latest(), db.count) == ([], [], None, 0)


def test_a_devices_record_in_the_results(keystore: Keystore) -> None:
    core = _core(keystore)
    record = device_record(
        core, mode=Mode.BIOMT, refused_announcements={"x": 1}, transfer_us=[5, 6]
    )
    assert record == {
        "record": "device",
        "device": core.uri,
        "mode": "biomt",
        "capability": "ecc",
        "technique": "ecc",
        "neighbours": 0,
        "refused_announcements": {"x": 1},
        "counters": core.counters,
        "data_transfer_us": [5, 6],
    }


class FakeNode:
    def __init__(self) -> None:
        self.clients: list[tuple[Any, str]] = []
        self.shared: dict[str, bool] = {}

    def create_client(self, srv_type: Any, name: str, *, shared: bool = False) -> str:
        self.clients.append((srv_type, name))
        self.shared[name] = shared
        return name


class FakeCore:
    def __init__(self, prepares: bool) -> None:
        self.prepares = prepares
        self.asked: list[int] = []

    def prepares_converter(self, a: Any, *, among: int) -> bool:
        self.asked.append(among)
        return self.prepares


def test_a_neighbours_clients_are_made_once_each() -> None:
    node = FakeNode()
    peers = PeerClients(node, FakeCore(False))  # type: ignore[arg-type]
    assert peers.convert("iomt://ward1/bp_1") == "/ward1/bp_1/convert"
    assert peers.convert("iomt://ward1/bp_1") == "/ward1/bp_1/convert"
    assert peers.handshake("iomt://ward1/bp_1") == "/ward1/bp_1/handshake"
    assert node.clients == [
        (Convert, "/ward1/bp_1/convert"),
        (SessionHandshake, "/ward1/bp_1/handshake"),
    ]
    # the process's devices share a neighbour's convert client; a handshake client is each
    # device's own: the neighbour bounds handshake work per request writer
    assert node.shared == {"/ward1/bp_1/convert": True, "/ward1/bp_1/handshake": False}


@pytest.mark.parametrize("prepares", [True, False])
def test_a_neighbour_a_plan_tries_first_is_reached_as_it_registers(prepares: bool) -> None:
    class Ann:
        device_uri = "iomt://ward1/bp_1"

    node, core = FakeNode(), FakeCore(prepares)
    PeerClients(node, core).on_registered(Ann())  # type: ignore[arg-type]  # the core decides
    assert core.asked == [PRECREATED_CONVERTERS]
    assert len(node.clients) == (2 if prepares else 0)
