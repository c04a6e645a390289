"""The healthcare provider node (Bilal & Hassan: the doctor's device of the case study).

It asks its patients' wallets for device info and tokens (Alg. 1.1), then runs a
workload of data requests (Alg. 1.3): at most ``concurrency`` outstanding, each to a
device chosen by a seeded generator, in a technique drawn from ``techniques``. A request
is answered with the envelope (shared directly), or with "converting" and the envelope
arriving on ``~/inbox`` from a converter (Alg. 3), or refused with a reason. Every
envelope is verified and opened before it counts (``iomt.core.provider``); the readings
are kept as FHIR R4 vital-signs Observations.

Access time (the paper's Table 2): from sending the request to holding the verified,
decrypted reading. Results go to a JSON-lines file; progress to ``/iomt/progress``.

Modes: ``distributed`` (ask the devices), ``centralized`` (ask the central server's
``fetch``), ``base`` (ask the devices for plaintext, without tokens), ``biomt`` (as
``distributed``, plus a physician's Access/Observe workload at the bolsters:
:mod:`iomt.nodes.biomt_physician`).
"""

from __future__ import annotations

import functools
import hashlib
import json
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from iomt.core.channels import ChannelTable
from iomt.core.listener import Refusal, name_of
from iomt.core.modes import Mode
from iomt.core.provider import ProviderCore, Received
from iomt.core.replies import ReplyChecker, data_share_digest, device_info_digest
from iomt.crypto.keystore import Identity
from iomt.errors import IomtError, ServiceTimeoutError
from iomt.msg import (
    DataShare,
    DeviceInfoRequest,
    SecureEnvelope,
    SessionHandshake,
    Vitals,
    WorkloadProgress,
)
from iomt.nodes import wire
from iomt.nodes.common import (
    Calls,
    ResultsWriter,
    SessionOpener,
    fqn_of,
    handshake_responder,
    open_keystore,
    reply_signer,
    uri_of,
)
from iomt.nodes.converting import INBOX_QOS
from iomt.runtime import Client, Node, RuntimeContext, Timer

if TYPE_CHECKING:
    from iomt.nodes.biomt_physician import BiomtPhysician

PROGRESS_TOPIC = "/iomt/progress"
WALLET_ATTEMPTS = 3


@dataclass
class _Request:
    request_id: str
    device_uri: str
    technique: str
    t0: int
    status: str = "sent"  # sent | converting
    converter: str = ""
    stash: list[SecureEnvelope] = field(default_factory=list)
    deadline: float = 0.0
    session_id: bytes | None = None  # the session the request's proof was made on
    resent: bool = False  # sent again on a new session after the peer lost ours


class ProviderNode(Node):
    def __init__(
        self,
        context: RuntimeContext,
        *,
        name: str,
        namespace: str,
        keystore: str,
        wallets: list[str],
        requests: int = 100,
        concurrency: int = 4,
        techniques: list[str] | None = None,
        mode: str = Mode.DISTRIBUTED,
        seed: int = 0,
        start_delay_s: float = 1.0,
        central: str = "central",
        request_timeout_s: float = 3.0,
        wallet_timeout_s: float = 5.0,
        results: str | None = None,
        fhir: str | None = None,
        script: list[list[str]] | None = None,
        settle_s: float = 0.5,
        biomt: dict[str, Any] | None = None,
        devices: list[str] | None = None,
    ) -> None:
        super().__init__(name, context=context, namespace=namespace)
        self.mode = Mode.parse(mode)
        self.facility = self.get_namespace().strip("/")
        ks = open_keystore(keystore)
        identity: Identity = ks.identity(name)
        self.uri = identity.uri
        self.core = ProviderCore(
            self.uri,
            signer=identity.signer,
            certificate=ks.certificate_der(name),
            encryption_key=identity.encryption_key,
            attribute_key=identity.attribute_key,
            channels=ChannelTable(identity.handshake_identity(), ks.credential_validator()),
            check_certificate=ks.credential_validator(),
        )
        self.wallets = [uri_of(self.facility, w) for w in wallets]
        self.central_uri = uri_of(self.facility, central)
        # A script ([device name, technique], ...) replaces the random workload: the case
        # study asks its devices in a fixed order, one request at a time.
        self._script = [(uri_of(self.facility, d), t) for d, t in (script or [])]
        self.total = len(self._script) if script else requests
        self.concurrency = 1 if script else max(1, concurrency)
        self.techniques = techniques or ["ecc"]
        self.request_timeout_s = request_timeout_s
        self.wallet_timeout_s = wallet_timeout_s
        self.settle_s = settle_s
        self._rng = random.Random(seed)
        # every reply we take must prove itself (iomt.core.replies); ours do too
        self._checker = ReplyChecker(ks.credential_validator())
        self.replies = reply_signer(identity)
        self.calls = Calls(self)
        self._clients: dict[str, Client] = {}
        self._sessions = SessionOpener(
            self,
            self.uri,
            self.core.channels,
            self.calls,
            lambda peer: self._client(peer, "handshake", SessionHandshake),
        )
        # A restarted provider (its process crashed and the launcher started it again)
        # resumes its workload where its results file says it was: every finished request
        # is a line there, written through at once. Requests in flight at the crash are
        # issued again.
        resumed = _finished_requests(results, self.uri)
        self._results = ResultsWriter(results, write_through=True)
        self._fhir_path = fhir
        self._received: dict[bytes, tuple[bytes, str, str]] = {}
        self._pending: dict[str, _Request] = {}
        self.counts = {"shared": 0, "converted": 0, "refused": 0, "failed": 0}
        self.resent = 0  # requests sent again on a new session (the peer had restarted)
        for outcome in resumed:
            if outcome in self.counts:
                self.counts[outcome] += 1
        self.issued = sum(self.counts.values())
        if self.issued:
            self.get_logger().warning(
                "resuming after a restart: %d of %d requests were done", self.issued, self.total
            )
            self._rng = random.Random(seed * 1_000_003 + self.issued)
        self._wallets_left = len(self.wallets)
        self._settle: Timer | None = None
        self._started = False
        # When each phase began (time.monotonic(), comparable across the processes of one
        # machine): the experiment reports how long the ward took to warm up.
        self._phases: dict[str, float] = {"created": time.monotonic()}
        self.wallet_retries = 0
        self._finished = False
        self._progress = self.create_publisher(WorkloadProgress, PROGRESS_TOPIC)
        # Converters open sessions with us after their first conversion for us, so later
        # envelopes they publish are HMAC'd rather than signed.
        self.create_service(
            SessionHandshake,
            "~/handshake",
            handshake_responder(self.core.channels.respond, name, self.replies),
            deferred=True,
        )
        self.create_subscription(SecureEnvelope, "~/inbox", self._on_inbox, INBOX_QOS)
        self.create_timer(0.5, self._report_progress)
        self.create_timer(0.25, self._check_deadlines)
        self._start_timer = self.create_timer(start_delay_s, self._start)
        # The endpoints the workload will use, made now so that discovery matches them while
        # the ward starts, not when the first requests wait for it: the wallets' services,
        # and -- when the topology says which devices the patients have (``devices``, a
        # hint: only the wallets' grants allow a request) -- the devices' (or the central
        # server's) services.
        for wallet in self.wallets:
            self._client(wallet, "device_info", DeviceInfoRequest)
        hinted = (
            [self.central_uri]
            if self.mode is Mode.CENTRALIZED
            else [uri_of(self.facility, d) for d in (devices or [])]
        )
        for uri in hinted if devices else []:
            self._client(uri, "handshake", SessionHandshake)
            self._client(uri, "fetch" if self.mode is Mode.CENTRALIZED else "data_share", DataShare)
        self.biomt: BiomtPhysician | None = None
        if self.mode is Mode.BIOMT:
            # imported for BIoMT only: it brings the whole BIoMT core at start-up
            from iomt.nodes.biomt_physician import BiomtPhysician  # noqa: PLC0415

            self.biomt = BiomtPhysician(
                self,
                keystore=ks,
                identity=identity,
                calls=self.calls,
                start_delay_s=start_delay_s,
                seed=seed,
                **(biomt or {}),
            )

    # -- Alg. 1.1: tokens from the wallets ----------------------------------------------------

    def _client(self, peer_uri: str, service: str, srv_type: Any) -> Client:
        key = f"{peer_uri}#{service}"
        client = self._clients.get(key)
        if client is None:
            client = self.create_client(srv_type, f"{fqn_of(peer_uri)}/{service}")
            self._clients[key] = client
        return client

    def _start(self) -> None:
        self._start_timer.cancel()
        self._phases["asking_wallets"] = time.monotonic()
        # Every mode asks the wallets: in base mode too, for the list of their devices
        # (base then sends no tokens).
        for wallet in self.wallets:
            self._ask_wallet(wallet, 1)
        if not self.wallets:  # no patients: the workload ends at once, with nothing issued
            self._grants_in()

    def _ask_wallet(self, wallet: str, attempt: int) -> None:
        request = self.core.token_request(wallet)
        request_digest = device_info_digest(request)
        server = name_of(wallet)

        def accept(resp: Any) -> bool:  # the wallet's signature, its certificate for its name
            return self._checker.accepts(
                bytes(resp.proof), wire.device_info_statement(server, request_digest, resp)
            )

        self.calls.call(
            self._client(wallet, "device_info", DeviceInfoRequest),
            wire.token_request_to_msg(request),
            timeout_s=self.wallet_timeout_s * attempt,
            on_done=functools.partial(self._on_grants, wallet),
            on_error=functools.partial(self._wallet_unanswered, wallet, attempt),
            accept=accept,
        )

    def _wallet_unanswered(self, wallet: str, attempt: int, exc: Exception) -> None:
        # A busy ward (hundreds of endpoints still being discovered) can make the first
        # ask time out; ask again, with more patience, before doing without the patient.
        if isinstance(exc, ServiceTimeoutError) and attempt < WALLET_ATTEMPTS:
            self.wallet_retries += 1
            self.get_logger().info("wallet %s: %s; asking again", wallet, exc)
            self._ask_wallet(wallet, attempt + 1)
            return
        self._wallet_failed(wallet, exc)

    def _on_grants(self, wallet: str, resp: Any) -> None:
        if resp.status != DeviceInfoRequest.Response.STATUS_OK:
            self._wallet_failed(wallet, IomtError(resp.reason))
            return
        try:
            self.core.accept_grants([wire.grant_from_msg(d) for d in resp.devices])
        except IomtError as exc:
            self._wallet_failed(wallet, exc)
            return
        self._wallet_done()

    def _wallet_failed(self, wallet: str, exc: Exception) -> None:
        self.get_logger().warning("wallet %s: %s", wallet, exc)
        self._wallet_done()

    def _wallet_done(self) -> None:
        self._wallets_left -= 1
        if self._wallets_left <= 0:
            self._grants_in()

    def _grants_in(self) -> None:
        if self._settle is None and not self._started:
            self._phases["grants_in"] = time.monotonic()
            # Create every endpoint the workload will use now, and give discovery a moment
            # before the first request: a sample written by a writer nobody has matched yet
            # arrives late (and a recorder that has not matched it may never see it).
            self._devices = sorted(self.core.grants)
            targets = [self.central_uri] if self.mode is Mode.CENTRALIZED else self._devices
            for uri in targets:
                self._client(uri, "handshake", SessionHandshake)
                self._client(
                    uri, "fetch" if self.mode is Mode.CENTRALIZED else "data_share", DataShare
                )
            self._settle = self.create_timer(self.settle_s, self._begin)

    def _begin(self) -> None:
        if self._settle is not None:
            self._settle.cancel()
        self._started = True
        self._phases["requesting"] = time.monotonic()
        self._pump()

    # -- Alg. 1.3: the workload ---------------------------------------------------------------

    def _pump(self) -> None:
        while (
            self._started
            and len(self._pending) < self.concurrency
            and self.issued < self.total
            and self._devices
        ):
            if self._script:
                device, technique = self._script[self.issued]
            else:
                device = self._rng.choice(self._devices)
                technique = self._rng.choice(self.techniques)
            self.issued += 1
            self._issue(device, technique)
        self._maybe_finish()

    def _issue(self, device_uri: str, technique: str) -> None:
        # In flight from now on (also while a session is being opened): the time to open
        # a session is part of the first request's access time, as it would be for real.
        state = _Request(f"issued-{self.issued}", device_uri, technique, time.perf_counter_ns())
        self._pending[state.request_id] = state
        if self.mode is Mode.BASE:
            self._send(state, None)
            return
        target = self.central_uri if self.mode is Mode.CENTRALIZED else device_uri
        self._sessions.ensure(
            target,
            functools.partial(self._send, state, target),
            functools.partial(self._on_call_error, state),
        )

    def _send(self, state: _Request, via: str | None) -> None:
        if state.request_id not in self._pending:
            return
        accept = None
        if self.mode is Mode.BASE:  # no security at all: the first reply is taken
            request_id = f"{self._rng.getrandbits(64):016x}"
            msg = DataShare.Request(
                request_id=request_id, requester_uri=self.uri, security_technique="none"
            )
        else:
            try:
                req = self.core.data_request(
                    state.device_uri,
                    state.technique,
                    via=via if self.mode is Mode.CENTRALIZED else None,
                )
            except IomtError as exc:
                self._finish(state, "failed", reason=str(exc))
                return
            request_id = req.request_id
            msg = wire.data_request_to_msg(req)
            session = self.core.channels.session(name_of(via or state.device_uri))
            state.session_id = None if session is None else session.local_id
            accept = self._data_share_check(via or state.device_uri, state.device_uri, req)
        del self._pending[state.request_id]
        state.request_id = request_id
        self._pending[request_id] = state
        service = (
            self._client(self.central_uri, "fetch", DataShare)
            if self.mode is Mode.CENTRALIZED
            else self._client(state.device_uri, "data_share", DataShare)
        )
        self.calls.call(
            service,
            msg,
            timeout_s=self.request_timeout_s,
            on_done=functools.partial(self._on_response, state),
            on_error=functools.partial(self._on_call_error, state),
            accept=accept,
        )

    def _data_share_check(self, server_uri: str, device_uri: str, request: Any) -> Any:
        """Only the server's proven answer to this request: a MAC under our session with it,
        or its signature -- a device's with the key its grant certified, the central
        server's with a certificate for its name."""
        server = name_of(server_uri)
        request_digest = data_share_digest(request)
        key = self.core.device_key(device_uri) if server_uri == device_uri else None

        def accept(resp: Any) -> bool:
            return self._checker.accepts(
                bytes(resp.proof),
                lambda: wire.data_share_statement(server, request_digest, resp),
                server=server,
                channels=self.core.channels,
                key=key,
            )

        return accept

    def rejected_replies(self) -> int:
        """Replies our calls ignored: they did not prove they were the server's answer."""
        return sum(getattr(c, "rejected", 0) for c in self._clients.values())

    def _on_call_error(self, state: _Request, exc: Exception) -> None:
        self.core.forget(state.request_id)
        self._finish(state, "failed", reason=str(exc))

    def _on_response(self, state: _Request, resp: Any) -> None:
        if state.request_id not in self._pending:
            return
        if resp.status == DataShare.Response.STATUS_SHARED:
            self._deliver(state, resp.envelope)
        elif resp.status == DataShare.Response.STATUS_CONVERTING:
            state.status = "converting"
            state.converter = resp.converter_uri
            state.deadline = time.monotonic() + self.request_timeout_s
        else:
            if (
                Refusal.of(resp.reason) is Refusal.BAD_PROOF
                and state.session_id is not None
                and not state.resent
            ):
                self._resend_on_new_session(state)
                return
            self._finish(state, "refused", reason=resp.reason)

    def _resend_on_new_session(self, state: _Request) -> None:
        """A peer that cannot check our session proof has lost our session: it was
        restarted (a crashed process, started again by the launcher). Drop the session (if
        it is still the one the request was made on: another request may have replaced it
        already), open a new one and send the request again, once. Its access time runs
        from the first attempt."""
        target = self.central_uri if self.mode is Mode.CENTRALIZED else state.device_uri
        peer = name_of(target)
        session = self.core.channels.session(peer)
        if session is not None and session.local_id == state.session_id:
            self.get_logger().warning("%s no longer knows our session; opening a new one", peer)
            self.core.channels.drop(peer)
        self.core.forget(state.request_id)
        state.resent = True
        self.resent += 1
        self._sessions.ensure(
            target,
            functools.partial(self._send, state, target),
            functools.partial(self._on_call_error, state),
        )

    def _on_inbox(self, env: SecureEnvelope) -> None:
        # A converter's envelope completes the request as soon as it verifies, whether or
        # not the device has told us yet that it is converting (its answer follows the
        # converter's, one hop later).
        state = self._pending.get(env.request_id)
        if state is not None:
            self._deliver(state, env, from_inbox=True)

    def _deliver(
        self, state: _Request, env_msg: SecureEnvelope, *, from_inbox: bool = False
    ) -> None:
        if self.mode is Mode.BASE:
            self._finish(state, "shared", reading=bytes(env_msg.ciphertext), sender=self.uri)
            return
        try:
            got = self.core.receive(
                wire.envelope_from_msg(env_msg),
                relay=self.central_uri if self.mode is Mode.CENTRALIZED else None,
            )
        except IomtError as exc:
            self.get_logger().warning("rejected envelope for %s: %s", state.request_id, exc)
            if not from_inbox:
                # The device's own answer did not verify. An inbox envelope that does not
                # verify may be anyone's forgery: keep waiting for the real one.
                self._finish(state, "failed", reason=f"rejected: {exc}")
            return
        self._finish(state, "converted" if got.converted else "shared", received=got)

    def _check_deadlines(self) -> None:
        now = time.monotonic()
        for state in [
            s for s in self._pending.values() if s.status == "converting" and s.deadline <= now
        ]:
            self.core.forget(state.request_id)
            self._finish(state, "failed", reason=f"no envelope from converter {state.converter}")

    def _finish(
        self,
        state: _Request,
        outcome: str,
        *,
        reason: str = "",
        received: Received | None = None,
        reading: bytes | None = None,
        sender: str = "",
    ) -> None:
        if self._pending.pop(state.request_id, None) is None:
            return
        access_us = (time.perf_counter_ns() - state.t0) // 1000
        self.counts[outcome] += 1
        record: dict[str, Any] = {
            "record": "request",
            "provider": self.uri,
            "request_id": state.request_id,
            "device": state.device_uri,
            "technique": state.technique,
            "outcome": outcome,
            "access_us": access_us,
            "end_ns": time.time_ns(),  # when it finished: a fault drill's timeline
        }
        if reason:
            record["reason"] = reason
        if state.resent:
            record["resent"] = True
        if received is not None:
            record["sender"] = received.sender_uri
            record["seq"] = int(Vitals.deserialize(received.reading_cdr).seq)
            self._keep_observation(received.reading_cdr, received.sender_uri, received.technique)
        elif reading is not None:
            record["seq"] = int(Vitals.deserialize(reading).seq)
            self._keep_observation(reading, sender, "none")
        self._results.write(record)
        self._pump()

    def _keep_observation(self, cdr: bytes, sender: str, technique: str) -> None:
        # Kept raw, one per distinct reading (a reading asked for twice is one
        # Observation); turned into FHIR when the node stops, off the request path.
        if self._fhir_path is not None:
            self._received.setdefault(hashlib.sha256(cdr).digest(), (cdr, sender, technique))

    def _observations(self) -> list[Any]:
        # fhir.resources (pydantic models) is imported when the provider exports, at stop
        from iomt.core.fhir import VitalSign, to_observation  # noqa: PLC0415

        out = []
        for cdr, sender, technique in self._received.values():
            try:
                v = Vitals.deserialize(cdr)
                out.append(
                    to_observation(
                        VitalSign(
                            v.device_uri,
                            v.patient_id or "unknown",
                            int(v.kind),
                            int(v.seq),
                            wire.time_ns(v.stamp),
                            # float32 on the wire: round to the sensors' resolution for export
                            round(float(v.heart_rate_bpm), 1),
                            round(float(v.systolic_mmhg)),
                            round(float(v.diastolic_mmhg)),
                            sender,
                            technique,
                        )
                    )
                )
            except IomtError as exc:
                self.get_logger().warning("reading not exportable as FHIR: %s", exc)
        return out

    # -- progress and the end -----------------------------------------------------------------

    def _maybe_finish(self) -> None:
        if (
            self._started
            and not self._finished
            and not self._pending
            and (self.issued >= self.total or not self._devices)
        ):
            self._finished = True
            self._phases["finished"] = time.monotonic()
            self._results.flush()
            self._report_progress()

    def _export_fhir(self) -> None:
        # When the node stops, not when its workload ends: a FHIR export costs ~3 ms per
        # Observation (fhir.resources builds, checks and round-trips each one), and the
        # providers of a ward share one executor -- an export of a few thousand readings
        # on it would hold every other provider's requests for seconds (they timed out).
        if not self._fhir_path or not self._received:
            return
        from iomt.nodes.fhir_export import write_bundle  # noqa: PLC0415 (at stop only)

        path = Path(self._fhir_path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_bundle(self._observations(), path)
        except (OSError, IomtError) as exc:
            self.get_logger().error("FHIR export to %s failed: %s", path, exc)

    def _report_progress(self) -> None:
        c = self.counts
        self._progress.publish(
            WorkloadProgress(
                provider_uri=self.uri,
                requests_total=self.total,
                requests_done=sum(c.values()),
                shared=c["shared"],
                converted=c["converted"],
                refused=c["refused"],
                failed=c["failed"],
                finished=self._finished,
            )
        )

    def destroy_node(self) -> None:
        # the request records are complete by now (readers of the file count them)
        self._results.write(
            {
                "record": "provider",
                "provider": self.uri,
                "monotonic": self._phases,
                "wallet_retries": self.wallet_retries,
                "rejected_replies": self.rejected_replies(),
            }
        )
        if self.biomt is not None:
            self._results.write(self.biomt.summary())
        self._results.close()
        super().destroy_node()
        self._export_fhir()


def _finished_requests(path: str | None, provider_uri: str) -> list[str]:
    """The outcomes of the requests a previous run of this provider finished (in its
    results file), oldest first; [] for a fresh start."""
    if not path or not Path(path).exists():
        return []
    out: list[str] = []
    with Path(path).open(encoding="utf-8") as f:
        for line in f:
            try:
                record = json.loads(line)
            except ValueError:  # a line cut short by the crash
                continue
            if record.get("record") == "request" and record.get("provider") == provider_uri:
                out.append(str(record.get("outcome")))
    return out


def provider_node(context: RuntimeContext, **params: Any) -> ProviderNode:
    return ProviderNode(context, **params)
