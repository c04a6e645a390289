"""A patient client: anyone on the bus can answer a request (the reply header is in the
payload), so a call with an acceptance check ignores the replies it refuses and waits for
the server's own, until its deadline."""

from __future__ import annotations

import time
from typing import Any

import pytest

from iomt.errors import ServiceTimeoutError
from iomt.runtime import Context, Executor, Node
from runtime.helpers import wait_for
from runtime.ifaces import AddTwoInts

pytestmark = [pytest.mark.dds, pytest.mark.timeout(60)]


@pytest.fixture
def bus(domain_id: int):  # type: ignore[no-untyped-def]
    ctx = Context(domain_id=domain_id)
    ex = Executor(ctx)
    server = Node("server", context=ctx, namespace="/t")
    forger = Node("forger", context=ctx, namespace="/x")
    caller = Node("caller", context=ctx, namespace="/t")
    for n in (server, forger, caller):
        ex.add_node(n)
    ex.spin_in_thread()
    yield server, forger, caller
    ex.shutdown()
    for n in (server, forger, caller):
        n.destroy_node()
    ex.close()
    ctx.shutdown()


def _forge(forger: Node, name: str, copies: int = 2) -> list[int]:
    """A second 'server' of the same service: it sees every request and answers at once,
    ``copies`` times, with a reply carrying the request's own header."""
    sent: list[int] = []
    service: Any = None

    def answer(req: Any, responder: Any) -> None:
        for _ in range(copies):
            service.send_response(AddTwoInts.Response(total=-1), responder.header)
            sent.append(1)

    service = forger.create_service(AddTwoInts, name, answer, deferred=True)
    return sent


def _slow_server(server: Node, name: str) -> list[Any]:
    held: list[Any] = []
    server.create_service(
        AddTwoInts, name, lambda req, responder: held.append((req, responder)), deferred=True
    )
    return held


def _genuine(response: Any) -> bool:
    return bool(response.total >= 0)


def test_without_a_check_the_first_reply_wins_even_a_forged_one(bus) -> None:
    server, forger, caller = bus
    held = _slow_server(server, "/t/add")
    sent = _forge(forger, "/t/add")
    client = caller.create_client(AddTwoInts, "/t/add")
    assert wait_for(client.service_is_ready, 10, lambda: time.sleep(0.01))
    future = client.call_async(AddTwoInts.Request(a=2, b=3))
    assert future.result(5).total == -1  # the finding: the forger answered first
    assert sent and wait_for(lambda: bool(held), 5, lambda: time.sleep(0.01))


def test_a_patient_call_ignores_refused_replies_and_takes_the_servers(bus) -> None:
    server, forger, caller = bus
    held = _slow_server(server, "/t/add")
    sent = _forge(forger, "/t/add")
    client = caller.create_client(AddTwoInts, "/t/add")
    assert wait_for(client.service_is_ready, 10, lambda: time.sleep(0.01))
    future = client.call_async(AddTwoInts.Request(a=2, b=3), accept=_genuine)
    # both forged replies arrive and are refused; the call is still pending
    assert wait_for(lambda: client.rejected >= 2, 10, lambda: time.sleep(0.01))
    assert len(sent) == 2 and not future.done()
    req, responder = held[0]
    responder.send(AddTwoInts.Response(total=req.a + req.b))
    assert future.result(5).total == 5
    # a check that raises refuses too
    future = client.call_async(AddTwoInts.Request(a=1, b=1), accept=lambda r: r.total < 1 / 0)
    assert wait_for(lambda: client.rejected >= 4, 10, lambda: time.sleep(0.01))
    assert not future.done()
    held[1][1].send(AddTwoInts.Response(total=2))
    with pytest.raises(ServiceTimeoutError):  # ... also the server's: nothing passes
        future.result(0.5)


def test_a_patient_call_with_only_forged_replies_times_out(bus) -> None:
    server, forger, caller = bus
    _slow_server(server, "/t/add")
    _forge(forger, "/t/add", copies=3)
    client = caller.create_client(AddTwoInts, "/t/add")
    assert wait_for(client.service_is_ready, 10, lambda: time.sleep(0.01))
    with pytest.raises(ServiceTimeoutError):
        client.call(AddTwoInts.Request(a=2, b=3), timeout_s=1.0, accept=_genuine)
    assert client.rejected == 3
