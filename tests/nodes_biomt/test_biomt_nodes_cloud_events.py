"""The cloud redirect path, what the cloud keeps, and the sharing framework's events."""

from __future__ import annotations

import os
import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest

from iomt.core.biomt import (
    AccessResult,
    CloudBlockNotFoundError,
    CloudResponse,
    CloudSyncStatus,
    CommunicationGrant,
    HistoryResult,
    Outcome,
)
from iomt.ledger import TxType
from iomt.msg import BolsterService
from iomt.nodes import biomt_wire as bw
from iomt.nodes.biomt_events import EventReporter
from iomt.nodes.cloud import CloudNode
from iomt.nodes.params import CloudParams

from .biomt_nodes_world import NS, USERS, World, wait_for

pytestmark = [pytest.mark.dds]


@pytest.mark.timeout(60)
def test_cloud_redirect_fetch_by_number_and_hash(tmp_path: Path, domain_id: int) -> None:
    w = World(tmp_path, domain_id, retention="evict-after-sync", block_transactions=4)
    try:
        link = w.links["hr_1"]
        wait_for(lambda: link.active, 15, "provisioning")
        device = link.device.pseudonym
        wait_for(lambda: w.bolster.sync.counts["evicted"] >= 6, 15, "blocks synced and evicted")
        w.sampling["hr_1"] = False
        wait_for(lambda: link.stores.in_flight == 0, 10, "hr_1's last Stores answered")
        # anyone may ask how far the sync has come; the answer carries the bolster's proof
        ask = BolsterService.Request(requester="anyone", body=os.urandom(16))
        answer = w.client(f"{NS}/bolster_a/cloud_status", BolsterService).call(
            ask, 5.0, bw.reply_check(w.bolster.checker, "bolster/cloud_status", "bolster_a", ask)
        )
        status = CloudSyncStatus.from_bytes(bw.raise_for_status("cloud_status", answer))
        assert 0 < status.synced <= status.sealed <= status.transactions
        doctor = w.requester("dr_a")
        request = doctor.access("bolster_a", device)
        result = AccessResult.from_bytes(w.ok("access", request.to_bytes(), "dr_a"))
        payload = doctor.open_access(request, result, bolster=w.bolster.bolster.verifier)
        assert payload.redirects, "evicted records must be redirected to the cloud"
        assert payload.cloud_pseudonym.startswith("anon-")

        got = []
        for address in payload.redirects:
            creq = doctor.cloud("cloud", address)
            resp = CloudResponse.from_bytes(w.ok(f"{NS}/cloud/get", creq.to_bytes(), "dr_a"))
            got.extend(doctor.open_cloud(creq, resp).records)
        assert got and {r.kind for r in got} == {"heart_rate"}
        assert {r.cloud_pseudonym for r in got} == {payload.cloud_pseudonym}
        assert all(r.period_seconds == 3600 and r.period_start % 3600 == 0 for r in got)

        # the block number alone is not enough: a wrong hash finds nothing
        wrong = replace(payload.redirects[0], block_hash=bytes(32))
        with pytest.raises(CloudBlockNotFoundError):
            w.ok(f"{NS}/cloud/get", doctor.cloud("cloud", wrong).to_bytes(), "dr_a")
        # and only registered users may ask
        stranger = w.requester("bolster_b")  # a keystore identity, not a user
        with pytest.raises(bw.BolsterRefusedError):
            w.ok(f"{NS}/cloud/get", stranger.cloud("cloud", payload.redirects[0]).to_bytes())

        # what the cloud keeps on disk names neither the patient nor the device (the file
        # also holds the bolsters' certificates: the facility's identity, not theirs)
        raw = w.cloud.db_path.read_bytes() + Path(str(w.cloud.db_path) + "-wal").read_bytes()
        for identifier in (b"hr_1", b"wallet_p", device.encode(), b"dev-", b"usr-"):
            assert identifier not in raw, identifier
        with sqlite3.connect(w.cloud.db_path) as db:
            batches = b"".join(row[0] for row in db.execute("SELECT batch FROM batches"))
        assert batches and b"iomt://" not in batches and b"ward1" not in batches

        # a restarted cloud re-verifies what it kept and still serves it
        kept = w.cloud.counts["put"]
        assert kept >= 2
        w.executor.remove_node(w.cloud)
        w.cloud.destroy_node()
        w.nodes.remove(w.cloud)
        with sqlite3.connect(w.cloud.db_path) as db:
            rows = db.execute("SELECT count(*) FROM batches").fetchone()[0]
        assert rows >= kept  # every acknowledged batch was on disk before its ack
        w.cloud = w._add(
            CloudNode(
                w.ctx,
                name="cloud",
                namespace=NS,
                config=CloudParams(
                    keystore=w.keystore, storage_dir=str(tmp_path / "storage"), users=USERS
                ),
            )
        )
        w.executor.add_node(w.cloud)
        assert w.cloud.restored == rows
        creq = doctor.cloud("cloud", payload.redirects[0])
        resp = CloudResponse.from_bytes(w.ok(f"{NS}/cloud/get", creq.to_bytes(), "dr_a"))
        assert doctor.open_cloud(creq, resp).records
    finally:
        w.close()


@pytest.mark.timeout(60)
def test_sharing_events_recorded_for_the_patient(tmp_path: Path, domain_id: int) -> None:
    w = World(tmp_path, domain_id, devices=(("hr_1", "wallet_p"), ("bp_1", "wallet_q")))
    try:
        wait_for(lambda: all(link.active for link in w.links.values()), 15, "provisioning")
        hr = w.links["hr_1"]
        # a device reports its own shares and conversions (signed, batched by a timer)
        hr.shared("iomt://ward1/dr_a", "ecc")
        hr.converted("iomt://ward1/dr_a", "iomt://ward1/bp_1", "cpabe")
        # the wallet reports the tokens it issued, for its own patient's devices only
        wallet = EventReporter(
            w.me,
            reporter="wallet_p",
            signer=w.ks.identity("wallet_p").signer,
            bolster_id="bolster_a",
            service=f"{NS}/bolster_a/record",
            period_s=0.1,
        )
        for uri in ("iomt://ward1/hr_1", "iomt://ward1/bp_1"):
            wallet.add("token", actor="dr_a", device_uri=uri, technique="ecc", detail="")
        # a device may not report about another device
        liar = EventReporter(
            w.me,
            reporter="hr_1",
            signer=w.ks.identity("hr_1").signer,
            bolster_id="bolster_a",
            service=f"{NS}/bolster_a/record",
            period_s=0.1,
        )
        liar.add("share", actor="dr_a", device_uri="iomt://ward1/bp_1", technique="none", detail="")
        wait_for(lambda: hr.events.counts["recorded"] == 2, 10, "device events")
        wait_for(lambda: wallet.counts["recorded"] + wallet.counts["refused"] == 2, 10, "tokens")
        wait_for(lambda: liar.counts["refused"] == 1, 10, "the liar refused")
        assert wallet.counts == {**wallet.counts, "recorded": 1, "refused": 1}

        patient = w.requester("wallet_p")
        hreq = patient.history("bolster_a", "wallet_p")
        body = w.ok("history", hreq.to_bytes(), "wallet_p")
        entries = patient.open_history(hreq, HistoryResult.from_bytes(body)).entries
        sharing = [e for e in entries if "sharing framework" in e.detail]
        assert sorted(e.detail.split(" ", 1)[0] for e in sharing) == [
            "conversion",
            "share",
            "token",
        ]
        assert all(
            e.tx_type is TxType.ACCESS
            and e.actor == "dr_a"
            and e.role == "physician"
            and e.outcome is Outcome.GRANTED
            and e.device == hr.device.pseudonym
            for e in sharing
        )
        # communication setup: hr_1 and bp_1 get a pairwise key; bp_1's removal ends it
        for d in w.sampling:
            w.sampling[d] = False
        # the devices' executor thread is done with their keys: no Store left in flight
        wait_for(
            lambda: all(lk.stores.in_flight == 0 for lk in w.links.values()), 10, "Stores answered"
        )
        bp = w.links["bp_1"]
        creq = hr.device.communication_request(bp.device.pseudonym, lifetime=60 * 10**9)
        grant = CommunicationGrant.from_bytes(w.ok("communication", creq.to_bytes()))
        assert hr.device.accept_pair_key(grant).key == bp.device.accept_pair_key(grant).key
        assert w.ok("pair_key_status", grant.grant_id) == b"valid"
        admin = w.requester("admin")
        w.ok("remove", admin.remove("bolster_a", bp.device.pseudonym, reason="broken").to_bytes())
        assert w.ok("pair_key_status", grant.grant_id) == b"invalid"

        # bp_1's owner sees none of hr_1's events, and no token for bp_1 was logged
        other = w.requester("wallet_q")
        oreq = other.history("bolster_a", "wallet_q")
        oentries = other.open_history(
            oreq, HistoryResult.from_bytes(w.ok("history", oreq.to_bytes(), "wallet_q"))
        ).entries
        assert not [e for e in oentries if "sharing framework" in e.detail]
    finally:
        w.close()
