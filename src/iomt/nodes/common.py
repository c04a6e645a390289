"""What the paper-1 nodes share: names, the keystore, deadlines for async calls, results."""

from __future__ import annotations

import functools
import json
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from iomt.core.channels import HandshakeBusyError, HandshakeReplayError
from iomt.core.listener import name_of
from iomt.core.opening import Ready, SessionOpening, StartHandshake
from iomt.core.replies import (
    ReplyChecker,
    ReplySigner,
    ReplyStatement,
    digest,
    handshake_digest,
)
from iomt.crypto.ca import certificate_der
from iomt.crypto.keystore import Identity, Keystore
from iomt.errors import ConfigurationError, IomtError, ServiceTimeoutError
from iomt.msg import SessionHandshake
from iomt.runtime import Accept, Client, Future, Node, Responder, Timer

log = logging.getLogger(__name__)

REGISTRATION_PREFIX = "/iomt/registration"


def uri_of(facility: str, name: str) -> str:
    return f"iomt://{facility}/{name}"


def fqn_of(uri: str) -> str:
    """``iomt://ward1/dev_3`` -> ``/ward1/dev_3`` (nodes live in their facility's namespace)."""
    if not uri.startswith("iomt://"):
        raise ConfigurationError(f"not an iomt URI: {uri!r}")
    return "/" + uri[len("iomt://") :].strip("/")


def cell_of(x: float, y: float, size: float) -> tuple[int, int]:
    return math.floor(x / size), math.floor(y / size)


def cell_topic(cell: tuple[int, int]) -> str:
    """Registration topics are partitioned by area, so a device only hears (and pays for)
    announcements from cells its radio can reach — radio locality, on DDS."""
    cx, cy = cell
    return f"{REGISTRATION_PREFIX}/c{cx}_{cy}".replace("-", "m")


def nearby_cells(x: float, y: float, size: float) -> list[tuple[int, int]]:
    cx, cy = cell_of(x, y, size)
    return [(cx + dx, cy + dy) for dx in (-1, 0, 1) for dy in (-1, 0, 1)]


_KEYSTORES: dict[str, Keystore] = {}
_KS_LOCK = threading.Lock()


def open_keystore(path: str) -> Keystore:
    """One Keystore object per process and path (nodes in a container share it)."""
    with _KS_LOCK:
        ks = _KEYSTORES.get(path)
        if ks is None:
            ks = Keystore.open(path)
            _KEYSTORES[path] = ks
        return ks


@dataclass
class _Pending:
    client: Client
    future: Future[Any] | None  # None while held for discovery
    deadline: float
    on_done: Callable[[Any], None]
    on_error: Callable[[Exception], None]
    accept: Accept | None = None


class Calls:
    """Service calls with deadlines, completed on the executor thread (deadlines are
    checked every ``check_period_s``, so a timeout fires up to that much late).

    ``call`` never blocks: the callback gets the response, or ``on_error`` gets a
    ServiceTimeoutError at the deadline (checked by a node timer) or the call's error.
    A request to a server discovery has not matched yet is held (polled every
    ``match_poll_s``) rather than written to nobody: a service request is not kept for
    late joiners, so it would only come back as a timeout.

    ``accept`` (the reply's proof check, see :mod:`iomt.core.replies`) makes the call
    patient: a reply it refuses is ignored and the call waits on, for the server's own
    reply or the deadline (on the rclpy runtime a refused reply fails the call instead).
    """

    def __init__(
        self, node: Node, *, check_period_s: float = 0.25, match_poll_s: float = 0.01
    ) -> None:
        self._node = node
        self._pending: dict[int, _Pending] = {}
        self._held: list[tuple[int, Any]] = []
        self._ids = 0
        self._match_poll_s = match_poll_s
        self._match_timer: Timer | None = None
        # Armed only while calls are pending: an idle node (most devices, most of the
        # time) is not woken four times a second for nothing.
        self._check_timer = node.create_timer(check_period_s, self._check)
        self._check_timer.cancel()

    def call(
        self,
        client: Client,
        request: Any,
        *,
        timeout_s: float,
        on_done: Callable[[Any], None],
        on_error: Callable[[Exception], None],
        accept: Accept | None = None,
    ) -> None:
        self._ids += 1
        key = self._ids
        if not self._pending:
            self._check_timer.reset()
        pending = _Pending(client, None, time.monotonic() + timeout_s, on_done, on_error, accept)
        if not client.matched:
            self._pending[key] = pending
            self._held.append((key, request))
            if self._match_timer is None:
                self._match_timer = self._node.create_timer(self._match_poll_s, self._release)
            return
        self._send(key, pending, request)

    def _send(self, key: int, pending: _Pending, request: Any) -> None:
        try:
            future = pending.client.call_async(request, pending.accept)
        except IomtError as exc:
            self._pending.pop(key, None)
            self._safe(pending.on_error, exc)
            return
        pending.future = future
        self._pending[key] = pending
        future.add_done_callback(functools.partial(self._finish, key))

    def _release(self) -> None:
        held, self._held = self._held, []
        for key, request in held:
            pending = self._pending.get(key)
            if pending is None:  # timed out while held
                continue
            if pending.client.matched:
                self._send(key, pending, request)
            else:
                self._held.append((key, request))
        if not self._held and self._match_timer is not None:
            self._match_timer.cancel()
            self._match_timer = None

    def _finish(self, key: int, future: Future[Any]) -> None:  # key bound by partial
        pending = self._pending.pop(key, None)
        if pending is None or future.cancelled():
            return
        try:
            response = future.result(0)
        except Exception as exc:
            self._safe(pending.on_error, exc)
            return
        self._safe(pending.on_done, response)

    def _check(self) -> None:
        now = time.monotonic()
        for key in [k for k, p in self._pending.items() if p.deadline <= now]:
            pending = self._pending.pop(key)
            if pending.future is not None:
                pending.client.cancel(pending.future)
            self._safe(
                pending.on_error,
                ServiceTimeoutError(f"{pending.client.service_name}: no response in time"),
            )
        if not self._pending:
            self._check_timer.cancel()

    def _safe(self, fn: Callable[[Any], None], arg: Any) -> None:
        try:
            fn(arg)
        except Exception:
            self._node.get_logger().exception("callback failed")

    def __len__(self) -> int:
        return len(self._pending)


class ResultsWriter:
    """Appends JSON lines to a results file (the experiment driver reads them back).
    ``write_through``: every line reaches the file at once (line-buffered), so what was
    written survives a crash of the process -- what a restarted node resumes from."""

    def __init__(self, path: str | None, *, write_through: bool = False) -> None:
        self._file = None
        if path:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            self._file = Path(path).open(  # noqa: SIM115
                "a", encoding="utf-8", buffering=1 if write_through else -1
            )

    def write(self, record: dict[str, Any]) -> None:
        if self._file is not None:
            self._file.write(json.dumps(record, separators=(",", ":")) + "\n")

    def flush(self) -> None:
        if self._file is not None:
            self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class SessionOpener:
    """Opens sessions as the initiator over a peer's ``handshake`` service, once per peer,
    queueing everyone who needs the session while the handshake runs (the decisions are
    :class:`~iomt.core.opening.SessionOpening`'s; this runs its calls).

    Patient: a reply is taken only if it proves itself -- a message 2 signed by the peer
    over our message 1, a message 4 confirming the session, or a refusal signed by the
    peer (:mod:`iomt.core.replies`); anything else is ignored and the call waits on.
    A handshake that times out is started again from message 1, with twice the timeout,
    up to ``attempts`` times; a proven refusal is final.
    """

    def __init__(
        self,
        node: Node,
        uri: str,
        channels: Any,
        calls: Calls,
        client_for: Callable[[str], Client],
        *,
        timeout_s: float = 2.0,
        attempts: int = 2,
    ) -> None:
        self._node = node
        self._uri = uri
        self._calls = calls
        self._client_for = client_for
        self._checker = ReplyChecker(channels.validate_peer)
        self._opening: SessionOpening[_Waiter] = SessionOpening(
            channels, timeout_s=timeout_s, attempts=attempts
        )

    def ensure(
        self, peer_uri: str, on_ready: Callable[[], None], on_error: Callable[[Exception], None]
    ) -> None:
        action = self._opening.ensure(peer_uri, (on_ready, on_error))
        if isinstance(action, Ready):
            on_ready()
        elif action is not None:
            self._handshake(action, self._client_for(peer_uri))

    def _refusal_proven(self, peer: str, message: bytes, resp: Any) -> bool:
        return self._checker.accepts(
            bytes(resp.proof), handshake_statement(peer, self._uri, message, resp)
        )

    def _handshake(self, start: StartHandshake, client: Client) -> None:
        peer_uri = start.peer_uri
        ok = SessionHandshake.Response.STATUS_OK

        def fail(exc: Exception) -> None:
            after = self._opening.failed(start, exc)
            if isinstance(after, StartHandshake):
                self._node.get_logger().info(
                    "handshake with %s: %s; trying again (%d/%d)",
                    peer_uri,
                    exc,
                    after.attempt,
                    self._opening.attempts,
                )
                self._handshake(after, client)
                return
            for _ok, err in after.waiters:
                err(exc)

        def accept_m2(resp: Any) -> bool:
            if resp.status != ok:
                return self._refusal_proven(attempt.peer, attempt.message1, resp)
            return attempt.take_message2(bytes(resp.message))

        def after_m2(resp: Any) -> None:
            if resp.status != ok or attempt.message3 is None:
                fail(IomtError(f"{peer_uri} refused the handshake: {resp.reason}"))
                return
            self._calls.call(
                client,
                SessionHandshake.Request(initiator_uri=self._uri, message=attempt.message3),
                timeout_s=start.timeout_s,
                on_done=after_m4,
                on_error=fail,
                accept=accept_m4,
            )

        def accept_m4(resp: Any) -> bool:
            if resp.status != ok:
                assert attempt.message3 is not None  # m4 follows m3
                return self._refusal_proven(attempt.peer, attempt.message3, resp)
            return attempt.take_message4(bytes(resp.message))

        def after_m4(resp: Any) -> None:
            if resp.status != ok:
                fail(IomtError(f"{peer_uri} refused message 3: {resp.reason}"))
                return
            for done, _err in self._opening.opened(peer_uri).waiters:
                done()

        attempt = self._opening.attempt(start)
        self._calls.call(
            client,
            SessionHandshake.Request(initiator_uri=self._uri, message=attempt.message1),
            timeout_s=start.timeout_s,
            on_done=after_m2,
            on_error=fail,
            accept=accept_m2,
        )


_Waiter = tuple[Callable[[], None], Callable[[Exception], None]]


def handshake_statement(server: str, initiator_uri: str, message: bytes, resp: Any) -> Any:
    """What a ``SessionHandshake`` reply's proof covers (refusals; an answer's message 2 or
    4 proves itself)."""
    return ReplyStatement(
        "handshake",
        server,
        handshake_digest(initiator_uri, message),
        int(resp.status),
        str(resp.reason),
        digest("handshake/reply", bytes(resp.message)),
    )


def handshake_responder(
    respond: Callable[..., bytes], server: str, replies: ReplySigner
) -> Callable[[Any, Responder], None]:
    """The (deferred) ``~/handshake`` service callback of a party answering handshakes:
    ``respond(initiator, message, source=...)`` is ``ChannelTable.respond`` (or the
    bolster's). Messages 2 and 4 prove themselves; a refusal is signed by us, within the
    signature budget -- except a busy one (the point is to do no work) and a replayed
    message 3's (its original has its answer): those carry no proof, so no initiator takes
    them."""

    def on_handshake(req: Any, responder: Responder) -> None:
        resp = SessionHandshake.Response()
        message = bytes(req.message)
        try:
            resp.message = respond(name_of(req.initiator_uri), message, source=responder.source)
            resp.status = SessionHandshake.Response.STATUS_OK
        except (HandshakeBusyError, HandshakeReplayError) as exc:
            resp.status = SessionHandshake.Response.STATUS_REFUSED
            resp.reason = str(exc)
        except IomtError as exc:
            resp.status = SessionHandshake.Response.STATUS_REFUSED
            resp.reason = str(exc)
            resp.proof = replies.sign(
                handshake_statement(server, str(req.initiator_uri), message, resp), budgeted=True
            )
        responder.send(resp)

    return on_handshake


def reply_signer(identity: Identity) -> ReplySigner:
    """A node's :class:`ReplySigner`: its keystore identity key and certificate."""
    return ReplySigner(
        identity.name,
        identity.signer,
        certificate_der(identity.certificate),
    )
