"""BIoMT for a provider (``--mode biomt``): a physician's Access and Observe over DDS.

Composed into :class:`iomt.nodes.provider.ProviderNode`. What to ask, when, and what an
answer means is :class:`~iomt.core.biomt.physician.Physician`'s; this module makes the calls
(``<bolster>/devices``, then ``access`` / ``observe`` or the base's ``base/...``), on user
sessions through :mod:`iomt.nodes.biomt_attesting` and with the answers' records, cloud
redirects and Observe updates taken by :mod:`iomt.nodes.biomt_answers`. Progress goes to
``/iomt/biomt/progress``; the delays to the provider's results file.
"""

from __future__ import annotations

import os
import random
import time
from dataclasses import asdict
from functools import partial
from typing import Any

from iomt.core.biomt import SECOND, Requester
from iomt.core.biomt.physician import Ask, BaseQuery, Finish, Issue, Physician, PhysicianWorkload
from iomt.core.replies import ReplyChecker
from iomt.crypto.ca import certificate_der
from iomt.crypto.keystore import Identity, Keystore
from iomt.errors import IomtError
from iomt.msg import BiomtProgress, BolsterService, CloudService, SessionHandshake
from iomt.nodes import biomt_wire as bw
from iomt.nodes.biomt_answers import PhysicianAnswers
from iomt.nodes.biomt_attesting import UserSessions
from iomt.nodes.calls import Calls
from iomt.nodes.handshaking import SessionOpener
from iomt.nodes.params import PhysicianBiomt
from iomt.runtime import Client, Node

__all__ = ["PROGRESS_TOPIC", "BiomtPhysician"]

PROGRESS_TOPIC = "/iomt/biomt/progress"
_BOLSTER_SERVICES = ("devices", "access", "observe", "attest", "base/access", "base/observe")


class BiomtPhysician:
    def __init__(  # noqa: PLR0913  (keyword-only: the provider's physician section, what it shares with the provider, its node's collaborators)
        self,
        node: Node,
        *,
        keystore: Keystore,
        identity: Identity,
        calls: Calls,
        config: PhysicianBiomt,
        start_delay_s: float,
        seed: int,
        window_s: float = 5.0,
        discover_timeout_s: float = 30.0,
        request_timeout_s: float = 3.0,
        attest_every: int = 64,
    ) -> None:
        c = self.config = config
        self._node = node
        self._calls = calls
        self.requester = Requester(
            identity.name,
            identity.signer,
            clock=time.time_ns,
            rng=os.urandom,
            credential=certificate_der(identity.certificate),
            validate_bolster=keystore.credential_validator(),
            attest_every=attest_every,
        )
        # every answer must prove itself (iomt.core.replies): a MAC on our session with the
        # bolster, or its signature (the cloud's: a certificate for its name)
        self._checker = ReplyChecker(keystore.credential_validator())
        self.work = PhysicianWorkload(c.ops, random.Random(seed), min_devices=c.min_devices)
        self.physician = Physician(
            self.requester,
            self.work,
            bolsters=c.bolsters,
            verifiers={b: keystore.verifier(b) for b in c.bolsters},
            sessions=c.sessions,
            window=round(window_s * SECOND),
            duration=round(c.observe_duration_s * SECOND),
            interval=round(c.observe_interval_s * SECOND),
            start_delay=round(start_delay_s * SECOND),
            discover_timeout=round(discover_timeout_s * SECOND),
            clock=time.time_ns,
            monotonic=time.perf_counter_ns,
        )
        self._timeout = request_timeout_s
        ns = node.get_namespace().rstrip("/")
        # the process's physicians share one DDS client per bolster service
        # (iomt.runtime.shared), but each keeps its own handshake client: a bolster bounds
        # handshake work per request writer
        self._clients: dict[str, Client] = {
            f"{b}/{s}": node.create_client(BolsterService, f"{ns}/{b}/{s}", shared=True)
            for b in c.bolsters
            for s in _BOLSTER_SERVICES
        }
        for b in c.bolsters:
            self._clients[f"{b}/handshake"] = node.create_client(
                SessionHandshake, f"{ns}/{b}/handshake"
            )
        self.user_sessions = UserSessions(
            node,
            self.requester,
            opener=SessionOpener(
                node,
                identity.uri,
                self.requester.channels,
                calls,
                lambda peer_uri: self._service(peer_uri.rsplit("/", 1)[-1], "handshake"),
            ),
            calls=calls,
            facility=keystore.facility,
            counts=self.work.counts,
            attest_client=lambda bolster: self._service(bolster, "attest"),
            check=self._check,
            error=self._error,
            stalled=self.physician.stall,
            timeout_s=request_timeout_s,
        )
        self._progress = node.create_publisher(BiomtProgress, PROGRESS_TOPIC)
        self.answers = PhysicianAnswers(
            node,
            self.requester,
            work=self.work,
            calls=calls,
            checker=self._checker,
            cloud=(
                node.create_client(CloudService, f"{ns}/{c.cloud}/get", shared=True)
                if c.cloud
                else None
            ),
            cloud_id=c.cloud,
            error=self._error,
            timeout_s=request_timeout_s,
        )
        node.create_timer(0.5, self._report)
        node.create_timer(0.05, self._resume_after_failure)
        self._start = node.create_timer(0.5, self._discover)

    def _service(self, bolster: str, service: str) -> Client:
        return self._clients[f"{bolster}/{service}"]

    def _check(self, op: str, bolster: str, request: Any) -> Any:
        """A bolster's proven answer to ``request``: on our session, or signed by its key."""
        return bw.reply_check(
            self._checker,
            f"bolster/{op}",
            bolster,
            request,
            channels=self.requester.channels,
            key=self.physician.verifiers.get(bolster),
        )

    def _error(self, key: str, exc: Exception) -> None:
        self.work.failed(key)
        self._node.get_logger().warning("%s: %s", key, exc)

    # -- discovery --------------------------------------------------------------------------

    def _discover(self) -> None:
        if not self.physician.discovery_due():
            return
        for b in self.physician.bolsters:
            ask = BolsterService.Request(requester=self.requester.name, body=os.urandom(16))
            self._calls.call(
                self._service(b, "devices"),
                ask,
                timeout_s=2.0,
                on_done=partial(self._devices, b),
                on_error=lambda exc: None,
                accept=self._check("devices", b, ask),
            )
        found = self.physician.discovery()
        if found != "wait":
            self._start.cancel()
        if found == "start":
            self._next()
        elif found == "give-up":
            self._node.get_logger().error("no provisioned devices found; BIoMT workload skipped")

    def _devices(self, bolster: str, resp: Any) -> None:
        try:
            devices = bw.DeviceList.from_bytes(bw.raise_for_status("devices", resp))
        except IomtError as exc:
            self._node.get_logger().info("devices of %s: %s", bolster, exc)
        else:
            self.work.discovered(bolster, devices.devices)

    # -- the workload -----------------------------------------------------------------------

    def _next(self) -> None:
        step = self.physician.next()
        if isinstance(step, Finish):
            for b in step.attest:  # what is left unattested (settles its receipts)
                self.user_sessions.attest(b)
            self._report()
        elif step.on_session:
            self.user_sessions.on_session(step.bolster, step.op, lambda: self._send(step))
        else:
            self._send(step)

    def _resume_after_failure(self) -> None:
        if self.physician.resume():
            self._next()

    def _send(self, issue: Issue) -> None:
        """Send the request of ``issue`` (on a session, the session is open)."""
        ask = self.physician.ask(issue)
        request = BolsterService.Request(requester=self.requester.name, body=_encoded(ask))
        self._calls.call(
            self._service(ask.bolster, ask.service),
            request,
            timeout_s=self._timeout,
            on_done=lambda resp: self._answered(ask, resp),
            on_error=lambda exc: self._failed(ask, exc, lost=True),
            # the no-crypto base is the paper's yardstick: its answers carry no proof
            accept=self._check(ask.op, ask.bolster, request) if ask.proven else None,
        )

    def _answered(self, ask: Ask, resp: Any) -> None:
        try:
            answer = self.physician.open(ask, bw.raise_for_status(ask.op, resp))
            if answer.payload is not None:  # records (and maybe cloud redirects to follow)
                self.answers.got(answer.payload)
            elif answer.observer is not None:  # the subscription's key, for its updates
                self.answers.observing(answer.observer)
        except IomtError as exc:
            self._failed(ask, exc)
        else:
            if self.physician.answered(ask):
                self.user_sessions.attest_if_due(ask.bolster)
        self._next()

    def _failed(self, ask: Ask, exc: Exception, *, lost: bool = False) -> None:
        self.physician.failed(ask, exc, lost=lost)  # lost: resumes from the timer
        self._node.get_logger().warning("%s: %s", ask.key, exc)
        self.user_sessions.failed(ask.session, exc)

    # -- reporting --------------------------------------------------------------------------

    def _report(self) -> None:
        node = self._node.get_fully_qualified_name()
        self._progress.publish(BiomtProgress(node=node, **asdict(self.work.progress())))

    def summary(self) -> dict[str, Any]:
        return self.work.summary(self.requester.name, sessions=self.physician.sessions)


def _encoded(ask: Ask) -> bytes:
    """The request's bytes; the base's in its own codec (``nodes.biomt_wire``)."""
    q = ask.request
    if not isinstance(q, BaseQuery):
        return q.to_bytes()
    if ask.op == "access":
        return bw.BaseAccess(q.device, q.since, q.until, q.limit).to_bytes()
    return bw.BaseObserve((q.device,), q.duration, q.interval).to_bytes()
