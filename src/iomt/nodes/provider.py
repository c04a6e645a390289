"""The healthcare provider node (Bilal & Hassan: the doctor's device of the case study).

It asks its patients' wallets for device info and tokens (Alg. 1.1), then runs a
workload of data requests (Alg. 1.3): at most ``concurrency`` outstanding, each to a
device chosen by a seeded generator, in a technique drawn from ``techniques``. A request
is answered with the envelope (shared directly), or with "converting" and the envelope
arriving on ``~/inbox`` from a converter (Alg. 3), or refused with a reason. Every
envelope is verified and opened before it counts (``iomt.core.provider``); the readings
are kept as FHIR R4 vital-signs Observations. The workload's bookkeeping is
:class:`iomt.core.workload.Workload`'s, the requests and answers on the wire
:class:`iomt.nodes.requesting.DataRequests`'; this node is their wiring.

Access time (the paper's Table 2): from sending the request to holding the verified,
decrypted reading. Results go to a JSON-lines file; progress to ``/iomt/progress``.

Modes: ``distributed`` (ask the devices), ``centralized`` (ask the central server's
``fetch``), ``base`` (ask the devices for plaintext, without tokens), ``biomt`` (as
``distributed``, plus a physician's Access/Observe workload at the bolsters:
:mod:`iomt.nodes.biomt_physician`).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from iomt.core.modes import Mode
from iomt.core.workload import Issue, Record, Resend, WorkloadAction, provider_record
from iomt.errors import ConfigurationError
from iomt.msg import SecureEnvelope, SessionHandshake, WorkloadProgress
from iomt.nodes.asking import WalletRound
from iomt.nodes.converting import INBOX_QOS
from iomt.nodes.handshaking import handshake_responder
from iomt.nodes.names import uri_of
from iomt.nodes.params import ProviderParams
from iomt.nodes.provider_results import Observations, progress_of
from iomt.nodes.provider_setup import provider_parts, provider_workload
from iomt.nodes.requesting import DataRequests
from iomt.nodes.results import ResultsWriter
from iomt.runtime import Node, RuntimeContext, Timer
from iomt.runtime.naming import node_fqn

if TYPE_CHECKING:
    from iomt.nodes.biomt_physician import BiomtPhysician

PROGRESS_TOPIC = "/iomt/progress"


class ProviderNode(Node):
    def __init__(
        self,
        context: RuntimeContext,
        *,
        name: str,
        namespace: str,
        config: ProviderParams,
    ) -> None:
        super().__init__(name, context=context, namespace=namespace)
        c = self.config = config
        self.mode = Mode.parse(c.mode)
        self.facility = self.get_namespace().strip("/")
        parts = provider_parts(self, c.keystore, name, self.mode)
        self.uri = parts.identity.uri
        self.core, self.calls, self.endpoints = parts.core, parts.calls, parts.endpoints
        self.wallets = [uri_of(self.facility, w) for w in c.wallets]
        self.settle_s = c.settle_s
        self.workload = provider_workload(self.uri, self.facility, c)
        self._results = ResultsWriter(c.results, write_through=True)
        self.requests = DataRequests(
            parts,
            self.workload,
            mode=self.mode,
            central_uri=uri_of(self.facility, c.central),
            timeout_s=c.request_timeout_s,
            observations=Observations(c.fhir, self.get_logger()),
            act=self._act,
            logger=self.get_logger(),
        )
        if self.workload.issued:
            self.get_logger().warning(
                "resuming after a restart: %d of %d requests were done",
                self.workload.issued,
                self.workload.total,
            )
        self._wallet_round = WalletRound(
            self.wallets,
            core=self.core,
            checker=parts.checker,
            calls=self.calls,
            client=self.endpoints.device_info,
            logger=self.get_logger(),
            timeout_s=c.wallet_timeout_s,
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
            handshake_responder(self.core.channels.respond, name, parts.replies),
            deferred=True,
        )
        self.create_subscription(SecureEnvelope, "~/inbox", self.requests.on_inbox, INBOX_QOS)
        self.create_timer(0.5, self._report_progress)
        self.create_timer(0.25, self.requests.check_deadlines)
        self._start_timer = self.create_timer(c.start_delay_s, self._start)
        # The endpoints the workload will use, made now so that discovery matches them while
        # the ward starts, not when the first requests wait for it: the wallets' services,
        # and -- when the topology says which devices the patients have (``devices``, a
        # hint: only the wallets' grants allow a request) -- the devices' (or the central
        # server's) services.
        for wallet in self.wallets:
            self.endpoints.device_info(wallet)
        if c.devices:
            self.endpoints.prepare(
                self.requests.servers([uri_of(self.facility, d) for d in c.devices])
            )
        self.biomt: BiomtPhysician | None = None
        if self.mode is Mode.BIOMT:
            if c.biomt is None:
                where = self.get_fully_qualified_name()
                raise ConfigurationError(f"node {where}: missing parameter 'biomt' (mode biomt)")
            # imported for BIoMT only: it brings the whole BIoMT core at start-up
            from iomt.nodes.biomt_physician import BiomtPhysician  # noqa: PLC0415

            self.biomt = BiomtPhysician(
                self,
                keystore=parts.keystore,
                identity=parts.identity,
                calls=self.calls,
                config=c.biomt,
                start_delay_s=c.start_delay_s,
                seed=c.seed,
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
            self.endpoints.prepare(self.requests.servers(self._devices))
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
                self.requests.issue(action.request)
            elif isinstance(action, Resend):
                self.requests.resend_on_new_session(action.request)
            elif isinstance(action, Record):
                self._results.write(action.record)
            else:  # Done
                self._phases["finished"] = time.monotonic()
                self._results.flush()
                self._report_progress()

    def rejected_replies(self) -> int:
        """Replies our calls ignored: they did not prove they were the server's answer."""
        return self.endpoints.rejected_replies()

    # -- progress and the end -----------------------------------------------------------------

    def _report_progress(self) -> None:
        self._progress.publish(progress_of(self.uri, self.workload))

    def destroy_node(self) -> None:
        # the request records are complete by now (readers of the file count them)
        self._results.write(
            provider_record(
                self.uri,
                self._phases,
                wallet_retries=self._wallet_round.retries,
                rejected_replies=self.rejected_replies(),
            )
        )
        if self.biomt is not None:
            self._results.write(self.biomt.summary())
        self._results.close()
        super().destroy_node()
        self.requests.observations.export()


def provider_node(
    context: RuntimeContext, *, name: str, namespace: str = "/", **params: Any
) -> ProviderNode:
    config = ProviderParams.from_mapping(params, node=node_fqn(namespace, name))
    return ProviderNode(context, name=name, namespace=namespace, config=config)
