"""The healthcare provider node (Bilal & Hassan: the doctor's device of the case study).

It asks its patients' wallets for device info and tokens (Alg. 1.1), then runs a
workload of data requests (Alg. 1.3): at most ``concurrency`` outstanding, each to a
device chosen by a seeded generator, in a technique drawn from ``techniques``. A request
is answered with the envelope (shared directly), or with "converting" and the envelope
arriving on ``~/inbox`` from a converter (Alg. 3), or refused with a reason. Every
envelope is verified and opened before it counts (``iomt.core.provider``); the readings
are kept as FHIR R4 vital-signs Observations. The workload's bookkeeping is
:class:`iomt.core.workload.Workload`'s; this node is its wiring.

Access time (the paper's Table 2): from sending the request to holding the verified,
decrypted reading. Results go to a JSON-lines file; progress to ``/iomt/progress``.

Modes: ``distributed`` (ask the devices), ``centralized`` (ask the central server's
``fetch``), ``base`` (ask the devices for plaintext, without tokens), ``biomt`` (as
``distributed``, plus a physician's Access/Observe workload at the bolsters:
:mod:`iomt.nodes.biomt_physician`).
"""

from __future__ import annotations

import functools
import time
from typing import TYPE_CHECKING, Any

from iomt.core.listener import name_of
from iomt.core.modes import Mode
from iomt.core.replies import ReplyChecker
from iomt.core.workload import (
    Issue,
    Record,
    Resend,
    Workload,
    WorkloadAction,
    WorkRequest,
    workload_rng,
)
from iomt.crypto.keystore import Identity
from iomt.errors import IomtError
from iomt.msg import (
    DataShare,
    SecureEnvelope,
    SessionHandshake,
    Vitals,
    WorkloadProgress,
)
from iomt.nodes import wire
from iomt.nodes.asking import Endpoints, WalletRound, data_share_check, provider_core
from iomt.nodes.calls import Calls
from iomt.nodes.converting import INBOX_QOS
from iomt.nodes.handshaking import SessionOpener, handshake_responder
from iomt.nodes.identity import open_keystore, reply_signer
from iomt.nodes.names import uri_of
from iomt.nodes.provider_results import Observations, finished_requests, progress_of
from iomt.nodes.results import ResultsWriter
from iomt.runtime import Node, RuntimeContext, Timer

if TYPE_CHECKING:
    from iomt.nodes.biomt_physician import BiomtPhysician

PROGRESS_TOPIC = "/iomt/progress"


class ProviderNode(Node):
    def __init__(  # noqa: PLR0913  (keyword-only: the provider's typed parameters, topology.params)
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
        self.core = provider_core(ks, identity)
        self.wallets = [uri_of(self.facility, w) for w in wallets]
        self.central_uri = uri_of(self.facility, central)
        # every reply we take must prove itself (iomt.core.replies); ours do too
        self._checker = ReplyChecker(ks.credential_validator())
        self.replies = reply_signer(identity)
        self.calls = Calls(self)
        self.endpoints = Endpoints(self, centralized=self.mode is Mode.CENTRALIZED)
        self._sessions = SessionOpener(
            self,
            self.uri,
            self.core.channels,
            self.calls,
            self.endpoints.handshake,
        )
        self.request_timeout_s = request_timeout_s
        self.settle_s = settle_s
        # A restarted provider (its process crashed and the launcher started it again)
        # resumes its workload where its results file says it was: every finished request
        # is a line there, written through at once. Requests in flight at the crash are
        # issued again.
        resumed = finished_requests(results, self.uri)
        self.workload = Workload(
            self.uri,
            total=requests,
            concurrency=concurrency,
            techniques=techniques or ["ecc"],
            rng=workload_rng(seed, len(resumed)),
            monotonic=time.monotonic,
            perf_ns=time.perf_counter_ns,
            wall_ns=time.time_ns,
            request_timeout_s=request_timeout_s,
            # A script ([device name, technique], ...) replaces the random workload: the
            # case study asks its devices in a fixed order, one request at a time.
            script=[(uri_of(self.facility, d), t) for d, t in (script or [])],
            plain_ids=self.mode is Mode.BASE,
            resumed=resumed,
        )
        self._results = ResultsWriter(results, write_through=True)
        self._observations = Observations(fhir, self.get_logger())
        if self.workload.issued:
            self.get_logger().warning(
                "resuming after a restart: %d of %d requests were done",
                self.workload.issued,
                self.workload.total,
            )
        self._wallet_round = WalletRound(
            self.wallets,
            core=self.core,
            checker=self._checker,
            calls=self.calls,
            client=self.endpoints.device_info,
            logger=self.get_logger(),
            timeout_s=wallet_timeout_s,
            on_all_in=self._grants_in,
        )
        self._settle: Timer | None = None
        # When each phase began (time.monotonic(), comparable across the processes of one
        # machine): the experiment reports how long the ward took to warm up.
        self._phases: dict[str, float] = {"created": time.monotonic()}
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
            self.endpoints.device_info(wallet)
        if devices:
            self.endpoints.prepare(
                [self.central_uri]
                if self.mode is Mode.CENTRALIZED
                else [uri_of(self.facility, d) for d in devices]
            )
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

    def _start(self) -> None:
        self._start_timer.cancel()
        self._phases["asking_wallets"] = time.monotonic()
        # Every mode asks the wallets: in base mode too, for the list of their devices
        # (base then sends no tokens).
        self._wallet_round.start()

    def _grants_in(self) -> None:
        if self._settle is None and not self.workload.started:
            self._phases["grants_in"] = time.monotonic()
            # Create every endpoint the workload will use now, and give discovery a moment
            # before the first request: a sample written by a writer nobody has matched yet
            # arrives late (and a recorder that has not matched it may never see it).
            self._devices = sorted(self.core.grants)
            targets = [self.central_uri] if self.mode is Mode.CENTRALIZED else self._devices
            self.endpoints.prepare(targets)
            self._settle = self.create_timer(self.settle_s, self._begin)

    def _begin(self) -> None:
        if self._settle is not None:
            self._settle.cancel()
        self._phases["requesting"] = time.monotonic()
        self._act(self.workload.begin(self._devices))

    # -- Alg. 1.3: the workload ---------------------------------------------------------------

    def _act(self, actions: list[WorkloadAction]) -> None:
        for action in actions:
            if isinstance(action, Issue):
                self._issue(action.request)
            elif isinstance(action, Resend):
                self._resend_on_new_session(action.request)
            elif isinstance(action, Record):
                self._results.write(action.record)
            else:  # Done
                self._phases["finished"] = time.monotonic()
                self._results.flush()
                self._report_progress()

    def _target(self, request: WorkRequest) -> str:
        return self.central_uri if self.mode is Mode.CENTRALIZED else request.device_uri

    def _issue(self, request: WorkRequest) -> None:
        if self.mode is Mode.BASE:
            self._send(request, None)
            return
        target = self._target(request)
        self._sessions.ensure(
            target,
            functools.partial(self._send, request, target),
            functools.partial(self._on_call_error, request),
        )

    def _send(self, request: WorkRequest, via: str | None) -> None:
        if not self.workload.is_pending(request):
            return
        accept = None
        if self.mode is Mode.BASE:  # no security at all: the first reply is taken
            request_id, session_id = request.request_id, None
            msg = DataShare.Request(
                request_id=request_id, requester_uri=self.uri, security_technique="none"
            )
        else:
            try:
                req = self.core.data_request(
                    request.device_uri,
                    request.technique,
                    via=via if self.mode is Mode.CENTRALIZED else None,
                )
            except IomtError as exc:
                self._finish(request, "failed", reason=str(exc))
                return
            request_id = req.request_id
            msg = wire.data_request_to_msg(req)
            session = self.core.channels.session(name_of(via or request.device_uri))
            session_id = None if session is None else session.local_id
            accept = data_share_check(
                self._checker, self.core, via or request.device_uri, request.device_uri, req
            )
        self.workload.sent(request, request_id, session_id)
        self.calls.call(
            self.endpoints.data(self._target(request)),
            msg,
            timeout_s=self.request_timeout_s,
            on_done=functools.partial(self._on_response, request),
            on_error=functools.partial(self._on_call_error, request),
            accept=accept,
        )

    def rejected_replies(self) -> int:
        """Replies our calls ignored: they did not prove they were the server's answer."""
        return self.endpoints.rejected_replies()

    def _on_call_error(self, request: WorkRequest, exc: Exception) -> None:
        self.core.forget(request.request_id)
        self._finish(request, "failed", reason=str(exc))

    def _on_response(self, request: WorkRequest, resp: Any) -> None:
        if not self.workload.is_pending(request):
            return
        if resp.status == DataShare.Response.STATUS_SHARED:
            self._deliver(request, resp.envelope)
        elif resp.status == DataShare.Response.STATUS_CONVERTING:
            self.workload.converting(request, resp.converter_uri)
        else:
            self._act(self.workload.refused(request, resp.reason))

    def _resend_on_new_session(self, request: WorkRequest) -> None:
        """A peer that cannot check our session proof has lost our session: it was
        restarted (a crashed process, started again by the launcher). Drop the session (if
        it is still the one the request was made on: another request may have replaced it
        already), open a new one and send the request again, once. Its access time runs
        from the first attempt."""
        target = self._target(request)
        peer = name_of(target)
        session = self.core.channels.session(peer)
        if session is not None and session.local_id == request.session_id:
            self.get_logger().warning("%s no longer knows our session; opening a new one", peer)
            self.core.channels.drop(peer)
        self.core.forget(request.request_id)
        self._sessions.ensure(
            target,
            functools.partial(self._send, request, target),
            functools.partial(self._on_call_error, request),
        )

    def _on_inbox(self, env: SecureEnvelope) -> None:
        # A converter's envelope completes the request as soon as it verifies, whether or
        # not the device has told us yet that it is converting (its answer follows the
        # converter's, one hop later).
        request = self.workload.pending(env.request_id)
        if request is not None:
            self._deliver(request, env, from_inbox=True)

    def _deliver(
        self, request: WorkRequest, env_msg: SecureEnvelope, *, from_inbox: bool = False
    ) -> None:
        if self.mode is Mode.BASE:
            reading = bytes(env_msg.ciphertext)
            seq = int(Vitals.deserialize(reading).seq)
            self._observations.keep(reading, self.uri, "none")
            self._finish(request, "shared", seq=seq)
            return
        try:
            got = self.core.receive(
                wire.envelope_from_msg(env_msg),
                relay=self.central_uri if self.mode is Mode.CENTRALIZED else None,
            )
        except IomtError as exc:
            self.get_logger().warning("rejected envelope for %s: %s", request.request_id, exc)
            if not from_inbox:
                # The device's own answer did not verify. An inbox envelope that does not
                # verify may be anyone's forgery: keep waiting for the real one.
                self._finish(request, "failed", reason=f"rejected: {exc}")
            return
        seq = int(Vitals.deserialize(got.reading_cdr).seq)
        self._observations.keep(got.reading_cdr, got.sender_uri, got.technique)
        self._finish(
            request, "converted" if got.converted else "shared", sender=got.sender_uri, seq=seq
        )

    def _check_deadlines(self) -> None:
        for request in self.workload.expired():
            self.core.forget(request.request_id)
            self._finish(
                request, "failed", reason=f"no envelope from converter {request.converter}"
            )

    def _finish(self, request: WorkRequest, outcome: str, **details: Any) -> None:
        self._act(self.workload.finish(request, outcome, **details))

    # -- progress and the end -----------------------------------------------------------------

    def _report_progress(self) -> None:
        self._progress.publish(progress_of(self.uri, self.workload))

    def destroy_node(self) -> None:
        # the request records are complete by now (readers of the file count them)
        self._results.write(
            {
                "record": "provider",
                "provider": self.uri,
                "monotonic": self._phases,
                "wallet_retries": self._wallet_round.retries,
                "rejected_replies": self.rejected_replies(),
            }
        )
        if self.biomt is not None:
            self._results.write(self.biomt.summary())
        self._results.close()
        super().destroy_node()
        self._observations.export()


def provider_node(context: RuntimeContext, **params: Any) -> ProviderNode:
    return ProviderNode(context, **params)
