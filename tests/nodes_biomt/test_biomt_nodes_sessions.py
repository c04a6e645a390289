"""User sessions over DDS: handshake on ``~/handshake``, then session records on ``~/access``,
``~/observe``, ``~/history`` and ``~/attest`` of the real bolster node."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from iomt.core.biomt import Evidence, Outcome, Requester, SessionResponse
from iomt.ledger import TxType
from iomt.msg import SessionHandshake
from iomt.nodes import biomt_wire as bw

from .biomt_nodes_world import NS, World, wait_for

pytestmark = [pytest.mark.dds]


def _session_user(w: World, name: str) -> Requester:
    identity = w.ks.identity(name)
    return Requester(
        name,
        identity.signer,
        clock=time.time_ns,
        rng=os.urandom,
        credential=identity.certificate.public_bytes(Encoding.DER),
        validate_bolster=w.ks.credential_validator(),
        attest_every=2,
    )


def _handshake(w: World, user: Requester) -> None:
    client = w.client(f"{NS}/bolster_a/handshake", SessionHandshake)
    message = user.channels.start("bolster_a")
    for step in range(2):
        resp = client.call(
            SessionHandshake.Request(initiator_uri=f"iomt://ward1/{user.name}", message=message),
            5.0,
        )
        assert resp.status == SessionHandshake.Response.STATUS_OK, resp.reason
        if step == 0:
            message = user.channels.finish("bolster_a", bytes(resp.message))
    user.channels.confirm("bolster_a", bytes(resp.message))


@pytest.mark.timeout(60)
def test_sessions_over_dds(tmp_path: Path, domain_id: int) -> None:
    w = World(tmp_path, domain_id)
    try:
        link = w.links["hr_1"]
        wait_for(lambda: link.active, 15, "provisioning through admin and bolster")
        device = link.device.pseudonym
        wait_for(lambda: link.counts["acknowledged"] >= 3, 10, "acknowledged Stores")
        doctor = _session_user(w, "dr_a")
        _handshake(w, doctor)

        # Access and Observe on the session: no signature, no one-time key
        req = doctor.session_access("bolster_a", device)
        body = w.ok("access", req.to_bytes(), "dr_a")
        payload = doctor.open_session_access(req, SessionResponse.from_bytes(body))
        assert payload.records and payload.device == device
        logged = wait_for(
            lambda: [t for t in w.ledger if bytes(t.signature) == req.auth_tag], 5, "~/ledger"
        )
        assert logged[0].type == TxType.ACCESS
        # the same record again: refused, nothing logged
        size = w.bolster.bolster.ledger.size
        with pytest.raises(bw.BolsterRefusedError):
            w.ok("access", req.to_bytes(), "dr_a")
        assert w.bolster.bolster.ledger.size == size
        # a session request on the wrong service is malformed there
        oreq = doctor.session_observe("bolster_a", (device,), duration=30 * 10**9)
        with pytest.raises(bw.MalformedResponseError):
            w.ok("access", oreq.to_bytes(), "dr_a")
        doctor.forget(oreq)
        oreq = doctor.session_observe("bolster_a", (device,), duration=30 * 10**9)
        observer = doctor.open_session_subscription(
            oreq, SessionResponse.from_bytes(w.ok("observe", oreq.to_bytes(), "dr_a"))
        )
        wait_for(lambda: len(w.updates) >= 2, 10, "observe updates")
        assert observer.open(bw.update_from_msg(w.updates[0])).value("bpm")

        # two answered requests: the attestation settles both receipts in one signed head
        assert doctor.attestation_due("bolster_a")
        areq = doctor.attest("bolster_a")
        assert areq is not None
        settled = doctor.check_session_attested(
            areq, SessionResponse.from_bytes(w.ok("attest", areq.to_bytes(), "dr_a"))
        )
        assert settled == 2 and doctor.unsettled_receipts == 0

        # a denial on a session: logged, with evidence the user checks and keeps
        researcher = _session_user(w, "researcher")
        _handshake(w, researcher)
        denied = researcher.session_access("bolster_a", device)
        with pytest.raises(bw.BolsterDeniedError) as info:
            w.ok("access", denied.to_bytes(), "researcher")
        evidence = info.value.evidence
        assert evidence is not None
        researcher.session_denied(denied, evidence.transaction, evidence.receipt)

        # the patient reads the history on their own session: what authenticated each entry
        patient = _session_user(w, "wallet_p")
        _handshake(w, patient)
        hreq = patient.session_history("bolster_a", device)
        entries = patient.open_session_history(
            hreq, SessionResponse.from_bytes(w.ok("history", hreq.to_bytes(), "wallet_p"))
        ).entries
        by = {(e.actor, e.tx_type, e.outcome): e.evidence for e in entries}
        assert by[("dr_a", TxType.ACCESS, Outcome.GRANTED)] is Evidence.ATTESTED
        assert by[("dr_a", TxType.OBSERVE, Outcome.GRANTED)] is Evidence.ATTESTED
        assert by[("researcher", TxType.ACCESS, Outcome.DENIED)] is Evidence.SESSION

        # a record for a session the bolster does not know: NO_SESSION, handshake again
        doctor.channels.drop("bolster_a")
        stranger = _session_user(w, "dr_a")
        _handshake(w, stranger)
        lost = stranger.session_access("bolster_a", device)
        w.bolster.bolster._sessions.table.drop("dr_a")  # as after a bolster restart
        with pytest.raises(bw.NoSessionError):
            w.ok("access", lost.to_bytes(), "dr_a")
        assert w.bolster.costs.outcomes["access"]["no-session"] == 1
        # a keystore identity that is not a registered user cannot complete a handshake
        client = w.client(f"{NS}/bolster_a/handshake", SessionHandshake)
        device_user = _session_user(w, "bp_1")
        uri = "iomt://ward1/bp_1"
        resp = client.call(
            SessionHandshake.Request(
                initiator_uri=uri, message=device_user.channels.start("bolster_a")
            ),
            5.0,
        )
        m3 = device_user.channels.finish("bolster_a", bytes(resp.message))
        resp = client.call(SessionHandshake.Request(initiator_uri=uri, message=m3), 5.0)
        assert resp.status == SessionHandshake.Response.STATUS_REFUSED
    finally:
        w.close()
