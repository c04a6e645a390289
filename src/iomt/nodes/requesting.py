"""A provider's data requests on the wire (Bilal & Hassan, Alg. 1.3): each request of the
workload sent to its server -- the device, or the central server in centralized mode -- once
a session with it is open, with the check its answer must pass, and each envelope that
answers one verified and opened into a reading. Base mode has no security at all: the
request goes at once, in plaintext, and the first reply is taken.

What a request's outcome is stays :class:`~iomt.core.workload.Workload`'s; the requests,
proofs and envelopes are :class:`~iomt.core.provider.ProviderCore`'s.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from iomt.core.listener import name_of
from iomt.core.modes import Mode
from iomt.core.workload import Workload, WorkloadAction, WorkRequest
from iomt.errors import IomtError
from iomt.msg import DataShare, SecureEnvelope, Vitals
from iomt.nodes import wire
from iomt.nodes.asking import data_share_check
from iomt.nodes.provider_results import Observations
from iomt.nodes.provider_setup import ProviderParts

__all__ = ["DataRequests"]


class DataRequests:
    """The workload's actions that follow what happened go to ``act`` (the node carries
    them out); the readings delivered are kept in ``observations``."""

    def __init__(
        self,
        parts: ProviderParts,
        workload: Workload,
        *,
        mode: Mode,
        central_uri: str,
        timeout_s: float,
        observations: Observations,
        act: Callable[[list[WorkloadAction]], None],
        logger: Any,
    ) -> None:
        self.uri = parts.identity.uri
        self.core = parts.core
        self._checker = parts.checker
        self._calls = parts.calls
        self._endpoints = parts.endpoints
        self._sessions = parts.sessions
        self.workload = workload
        self.mode = mode
        self.central_uri = central_uri
        self.timeout_s = timeout_s
        self.observations = observations
        self._act = act
        self._log = logger

    def servers(self, devices: list[str]) -> list[str]:
        """Whom the requests for these devices go to: the central server, or the devices."""
        return [self.central_uri] if self.mode is Mode.CENTRALIZED else devices

    def target(self, request: WorkRequest) -> str:
        return self.central_uri if self.mode is Mode.CENTRALIZED else request.device_uri

    def issue(self, request: WorkRequest) -> None:
        if self.mode is Mode.BASE:
            self._send(request, None)
        else:
            self._open_and_send(request)

    def resend_on_new_session(self, request: WorkRequest) -> None:
        """The peer lost our session (it was restarted): drop it, if it is still the one the
        request was made on (another request may have replaced it already), and send the
        request again on a new one. Its access time runs from the first attempt."""
        peer = name_of(self.target(request))
        session = self.core.channels.session(peer)
        if session is not None and session.local_id == request.session_id:
            self._log.warning("%s no longer knows our session; opening a new one", peer)
            self.core.channels.drop(peer)
        self.core.forget(request.request_id)
        self._open_and_send(request)

    def _open_and_send(self, request: WorkRequest) -> None:
        target = self.target(request)
        self._sessions.ensure(
            target,
            functools.partial(self._send, request, target),
            functools.partial(self._on_error, request),
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
                self._act(self.workload.lost(request, str(exc)))
                return
            request_id = req.request_id
            msg = wire.data_request_to_msg(req)
            session = self.core.channels.session(name_of(via or request.device_uri))
            session_id = None if session is None else session.local_id
            accept = data_share_check(
                self._checker, self.core, via or request.device_uri, request.device_uri, req
            )
        self.workload.sent(request, request_id, session_id)
        self._calls.call(
            self._endpoints.data(self.target(request)),
            msg,
            timeout_s=self.timeout_s,
            on_done=functools.partial(self._on_response, request),
            on_error=functools.partial(self._on_error, request),
            accept=accept,
        )

    def _on_error(self, request: WorkRequest, exc: Exception) -> None:
        self.core.forget(request.request_id)
        self._act(self.workload.lost(request, str(exc)))

    def _on_response(self, request: WorkRequest, resp: Any) -> None:
        if not self.workload.is_pending(request):
            return
        if resp.status == DataShare.Response.STATUS_SHARED:
            self._deliver(request, resp.envelope)
        elif resp.status == DataShare.Response.STATUS_CONVERTING:
            self.workload.converting(request, resp.converter_uri)
        else:
            self._act(self.workload.refused(request, resp.reason))

    def on_inbox(self, env: SecureEnvelope) -> None:
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
            self.observations.keep(reading, self.uri, "none")
            self._act(self.workload.delivered(request, converted=False, seq=seq))
            return
        try:
            got = self.core.receive(
                wire.envelope_from_msg(env_msg),
                relay=self.central_uri if self.mode is Mode.CENTRALIZED else None,
            )
        except IomtError as exc:
            self._log.warning("rejected envelope for %s: %s", request.request_id, exc)
            self._act(self.workload.rejected(request, str(exc), from_inbox=from_inbox))
            return
        seq = int(Vitals.deserialize(got.reading_cdr).seq)
        self.observations.keep(got.reading_cdr, got.sender_uri, got.technique)
        self._act(
            self.workload.delivered(
                request, converted=got.converted, seq=seq, sender=got.sender_uri
            )
        )

    def check_deadlines(self) -> None:
        for request in self.workload.expired():
            self.core.forget(request.request_id)
            self._act(self.workload.overdue(request))
