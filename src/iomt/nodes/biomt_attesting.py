"""A physician's user sessions with the bolsters over DDS, and their attestations (BIoMT).

With sessions, the physician first runs the session handshake with a bolster
(``<bolster>/handshake``, :class:`~iomt.nodes.handshaking.SessionOpener`) and then sends
:class:`~iomt.core.biomt.SessionRequest` records: no signature, no one-time key, no ECIES
per request. Every ``attest_every`` answered requests (and at the end) it signs an
attestation of them (``<bolster>/attest``), whose answer settles their receipts in one
signed tree head. A bolster that lost the session (restart, expiry) answers ``NO_SESSION``:
the session is dropped and the next request handshakes again. What to sign and what an
answer settles is :class:`~iomt.core.biomt.Requester`'s; this module makes the calls.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from iomt.core.biomt import Requester, SessionRequest, SessionResponse
from iomt.errors import IomtError
from iomt.msg import BolsterService
from iomt.nodes import biomt_wire as bw
from iomt.nodes.calls import Calls
from iomt.nodes.handshaking import SessionOpener
from iomt.nodes.names import uri_of
from iomt.runtime import Client, Node

__all__ = ["UserSessions"]


class UserSessions:
    def __init__(  # noqa: PLR0913  (keyword-only: the node's collaborators, named at the one call)
        self,
        node: Node,
        requester: Requester,
        *,
        opener: SessionOpener,
        calls: Calls,
        facility: str,
        counts: dict[str, int],
        attest_client: Callable[[str], Client],
        check: Callable[[str, str, Any], Any],
        error: Callable[[str, Exception], None],
        stalled: Callable[[], None],
        timeout_s: float,
    ) -> None:
        self._node = node
        self._requester = requester
        self._opener = opener
        self._calls = calls
        self._facility = facility
        self._counts = counts
        self._attest_client = attest_client
        self._check = check
        self._error = error
        self._stalled = stalled
        self._timeout = timeout_s

    def on_session(self, bolster: str, op: str, then: Callable[[], None]) -> None:
        """Run ``then`` on a live session with ``bolster`` (handshaking first if needed)."""
        had = self._requester.has_session(bolster)

        def ready() -> None:
            if not had:
                self._counts["handshakes"] += 1
            try:
                then()
            except IomtError as exc:  # e.g. the session expired between ready and now
                self._error(f"{op}/biomt", exc)
                self._stalled()

        def failed(exc: Exception) -> None:
            self._error(f"{op}/biomt", exc)
            self._stalled()

        self._opener.ensure(uri_of(self._facility, bolster), ready, failed)

    def failed(self, session: tuple[str, SessionRequest] | None, exc: Exception) -> None:
        """A request on a session failed: keep a logged denial for the attestation, else
        forget the request (and the session, if the bolster no longer has it)."""
        if session is None:
            return
        bolster, request = session
        evidence = getattr(exc, "evidence", None)
        if isinstance(exc, bw.BolsterDeniedError) and evidence is not None:
            try:  # a logged denial: keep it for the attestation
                self._requester.session_denied(request, evidence.transaction, evidence.receipt)
            except IomtError as bad:
                self._error("denial-evidence", bad)
                self._requester.forget(request)
            return
        self._requester.forget(request)
        if isinstance(exc, bw.NoSessionError):
            self._requester.channels.drop(bolster)

    def attest_if_due(self, bolster: str) -> None:
        if self._requester.attestation_due(bolster):
            self.attest(bolster)

    def attest(self, bolster: str) -> None:
        """Sign an attestation of the answered requests at ``bolster`` (not timed)."""
        requester = self._requester
        if not requester.has_session(bolster):
            return
        request = requester.attest(bolster)
        if request is None:
            return

        def done(resp: Any) -> None:
            try:
                self._counts["receipts_settled"] += requester.check_session_attested(
                    request, SessionResponse.from_bytes(bw.raise_for_status("attest", resp))
                )
                self._counts["attested"] += 1
            except bw.NoSessionError:  # not seen: attest them again on the next session
                self._counts["attest_failed"] += 1
                requester.forget(request)
                requester.channels.drop(bolster)
            except IomtError as exc:  # refused (or a bad answer): they stay session-only
                self._counts["attest_failed"] += 1
                self._node.get_logger().warning("attestation at %s: %s", bolster, exc)
                requester.forget(request, requeue=False)

        def failed(exc: Exception) -> None:  # no answer: it may not have arrived
            self._counts["attest_failed"] += 1
            requester.forget(request)

        ask = BolsterService.Request(requester=requester.name, body=request.to_bytes())
        self._calls.call(
            self._attest_client(bolster),
            ask,
            timeout_s=self._timeout,
            on_done=done,
            on_error=failed,
            accept=self._check("attest", bolster, ask),
        )
