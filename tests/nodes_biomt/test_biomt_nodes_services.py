"""Every BIoMT transaction type over DDS, through the real bolster, admin and cloud nodes."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from iomt.core.biomt import (
    AccessResult,
    DeviceRemovedError,
    DeviceState,
    HistoryResult,
    Measurement,
    Outcome,
    RemoveResult,
    StoreRequest,
    Subscription,
)
from iomt.core.biomt.keys import LedgerKeyVerifier
from iomt.ledger import TxType, verify_receipt
from iomt.nodes import biomt_wire as bw

from .biomt_nodes_world import World, wait_for

pytestmark = [pytest.mark.dds]


@pytest.mark.timeout(60)
def test_transactions_denial_removal_and_history_over_dds(tmp_path: Path, domain_id: int) -> None:
    w = World(tmp_path, domain_id)
    try:
        link = w.links["hr_1"]
        wait_for(lambda: link.active, 15, "provisioning through admin and bolster")
        device = link.device.pseudonym
        assert w.admin.approved == {"iomt://ward1/hr_1": "bolster_a"}
        wait_for(lambda: link.counts["acknowledged"] >= 5, 10, "acknowledged Stores")
        wait_for(lambda: link.counts["base_acknowledged"] >= 3, 10, "base Stores")

        # the privacy header lists the device (by pseudonym only)
        devices = bw.DeviceList.from_bytes(w.ok("devices", b"")).devices
        assert devices == (device,)

        # Access by a physician: logged with our signature, data sealed to us
        doctor = w.requester("dr_a")
        verifier = w.bolster.bolster.verifier
        request = doctor.access("bolster_a", device)
        result = AccessResult.from_bytes(w.ok("access", request.to_bytes(), "dr_a"))
        payload = doctor.open_access(request, result, bolster=verifier)
        assert payload.records and all(r.measurement.kind == "heart_rate" for r in payload.records)

        # Observe: updates for our subscription arrive and open in order
        request_o = doctor.observe("bolster_a", (device,), duration=30 * 10**9)
        sub = Subscription.from_bytes(w.ok("observe", request_o.to_bytes(), "dr_a"))
        observer = doctor.open_subscription(request_o, sub, bolster=verifier)
        wait_for(lambda: len(w.updates) >= 3, 10, "observe updates")
        opened = [observer.open(bw.update_from_msg(u)) for u in w.updates[:3]]
        assert all(isinstance(m, Measurement) and m.value("bpm") for m in opened)

        # the no-crypto base answers on the same node
        base = bw.BaseAccess(device, 0, 2**62, 100)
        assert w.ok("base/access", base.to_bytes(), "dr_a")
        sub_id = w.ok("base/observe", bw.BaseObserve((device,), 10**10, 0).to_bytes(), "dr_a")
        assert len(sub_id) == 16
        wait_for(lambda: w.base_updates, 10, "base updates")

        # policy denial: logged, with evidence the denied party can check
        nosy = w.requester("researcher")
        with pytest.raises(bw.BolsterDeniedError) as denied:
            w.ok("access", nosy.access("bolster_a", device).to_bytes(), "researcher")
        evidence = denied.value.evidence
        assert evidence is not None and evidence.transaction.tx_type is TxType.ACCESS
        verify_receipt(
            evidence.receipt, LedgerKeyVerifier(verifier), transaction=evidence.transaction
        )

        # unauthenticated: a forged Store is refused and nothing is logged
        size = w.bolster.bolster.ledger.size
        forged = StoreRequest("bolster_a", device, 10**9, time.time_ns(), bytes(12), bytes(40))
        with pytest.raises(bw.BolsterRefusedError):
            w.ok("store", forged.to_bytes(), device)
        with pytest.raises(bw.MalformedResponseError):
            w.ok("access", b"not a request")

        # Remove by the admin: the device's next Store is refused, it forgets its key
        admin = w.requester("admin")
        remove = admin.remove("bolster_a", device, reason="out of service")
        removed = RemoveResult.from_bytes(w.ok("remove", remove.to_bytes(), "admin"))
        admin.check_removed(remove, removed, bolster=verifier)
        wait_for(lambda: link.device.state is DeviceState.REMOVED, 5, "device told it was removed")
        # its later Stores are refused as removed; Access to it is denied (and logged)
        with pytest.raises(DeviceRemovedError):
            forged_late = StoreRequest(
                "bolster_a", device, 10**9, time.time_ns(), bytes(12), bytes(40)
            )
            w.ok("store", forged_late.to_bytes(), device)
        with pytest.raises(bw.BolsterDeniedError):
            w.ok("access", doctor.access("bolster_a", device).to_bytes(), "dr_a")
        assert bw.DeviceList.from_bytes(w.ok("devices", b"")).devices == ()
        assert w.bolster.bolster.ledger.size > size

        # the patient reads back who got what
        patient = w.requester("wallet_p")
        hreq = patient.history("bolster_a", "wallet_p")
        history = patient.open_history(
            hreq, HistoryResult.from_bytes(w.ok("history", hreq.to_bytes(), "wallet_p"))
        )
        kinds = {(e.tx_type, e.actor, e.outcome) for e in history.entries}
        assert (TxType.ORIGIN, "admin", Outcome.GRANTED) in kinds
        assert (TxType.STORE, device, Outcome.GRANTED) in kinds
        assert (TxType.ACCESS, "dr_a", Outcome.GRANTED) in kinds
        assert (TxType.ACCESS, "researcher", Outcome.DENIED) in kinds
        assert (TxType.OBSERVE, "dr_a", Outcome.GRANTED) in kinds
        assert (TxType.REMOVE, "admin", Outcome.GRANTED) in kinds
        # someone else may not read it
        other = w.requester("dr_a")
        with pytest.raises(bw.BolsterDeniedError):
            w.ok("history", other.history("bolster_a", "wallet_p").to_bytes(), "dr_a")

        # every appended transaction went out on ~/ledger, bodies encrypted
        wait_for(lambda: len(w.ledger) == w.bolster.bolster.ledger.size, 5, "ledger topic")
        assert [m.type for m in w.ledger[:1]] == [TxType.ORIGIN]
        assert all(b"hr_1" not in bytes(m.body) and m.sender_id != "dr_a" for m in w.ledger)
    finally:
        w.close()
