"""A bolster node's answers and its session dispatch, without DDS: a refusal carries its
typed status and is followed by the ledger's publication; a replay's refusal goes
unproven; a denial (logged evidence) is not logged again as a failure; Access, Observe and
History take a session request or a signed one by the body's tag."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from iomt.core.biomt import AccessDeniedError, ReplayError, SessionOp, SessionRequest
from iomt.errors import IomtError
from iomt.msg import BolsterService
from iomt.nodes import biomt_wire as bw
from iomt.nodes.bolster_costs import ServiceCosts
from iomt.nodes.bolster_feed import Answers
from iomt.nodes.bolster_services import proven
from iomt.nodes.bolster_sessions import SessionServices
from iomt.runtime import Responder

_R = BolsterService.Response


class _Responder(Responder):
    def __init__(self) -> None:
        self.sent: list[Any] = []

    def send(self, response: Any) -> None:
        self.sent.append(response)


class _Replies:
    """What a proving responder asks to prove, kept."""

    def __init__(self) -> None:
        self.proved: list[dict[str, Any]] = []

    def prove(self, op: str, req: Any, resp: Any, **how: Any) -> Any:
        self.proved.append({"op": op, **how})
        return resp


class _Feed:
    def __init__(self) -> None:
        self.published = 0

    def publish_new(self, known: Any = None) -> None:
        self.published += 1


class _Node:
    def __init__(self) -> None:
        self.logger = logging.getLogger("test-bolster")

    def get_logger(self) -> logging.Logger:
        return self.logger


def _answers() -> tuple[Answers, _Feed]:
    feed = _Feed()
    return Answers(_Node(), feed), feed  # type: ignore[arg-type]


def test_a_refusal_carries_its_typed_status_and_publishes_what_it_logged() -> None:
    answers, feed = _answers()
    responder = _Responder()
    assert answers.refuse(responder, "access", AccessDeniedError("no rule")) == _R.STATUS_DENIED
    (resp,) = responder.sent
    assert (resp.status, resp.reason) == (_R.STATUS_DENIED, "no rule")
    assert feed.published == 1
    answers.answer(responder, b"ok")
    assert (responder.sent[-1].status, bytes(responder.sent[-1].body)) == (_R.STATUS_OK, b"ok")


def test_a_denial_is_not_logged_as_a_failure_a_refusal_is(
    caplog: pytest.LogCaptureFixture,
) -> None:
    answers, _ = _answers()
    with caplog.at_level(logging.INFO, logger="test-bolster"):
        answers.refuse(_Responder(), "access", AccessDeniedError("no rule"))
        assert not caplog.records
        answers.refuse(_Responder(), "store", IomtError("bad"))
    assert [r.getMessage() for r in caplog.records] == ["store refused: bad"]


def test_a_replay_s_refusal_goes_unproven() -> None:
    answers, _ = _answers()
    replies = _Replies()
    for exc in (ReplayError("seen"), IomtError("bad")):
        proving = bw.ProvingResponder(
            _Responder(),
            replies,  # type: ignore[arg-type]
            "store",
            BolsterService.Request(requester="hr_0", body=b""),
            open_service=False,
        )
        answers.refuse(proving, "store", exc)
    assert [p["replay"] for p in replies.proved] == [True, False]


class _Bolster:
    """A bolster that knows no sessions."""

    session_channels = None
    last_append = None

    def session_of(self, request: SessionRequest) -> None:
        return None

    def session_request(self, request: SessionRequest) -> Any:
        raise AssertionError("a malformed request reached the core")


def test_a_tagged_body_takes_the_session_path_any_other_the_signed_one() -> None:
    answers, feed = _answers()
    sessions = SessionServices(
        _Node(),  # type: ignore[arg-type]
        _Bolster(),  # type: ignore[arg-type]
        answers=answers,
        feed=feed,  # type: ignore[arg-type]
        costs=ServiceCosts(),
    )
    signed: list[bytes] = []

    def on_signed(req: Any, responder: Responder) -> int | None:
        signed.append(bytes(req.body))
        return None

    handler = sessions.or_signed(SessionOp.ACCESS, on_signed)
    assert handler(BolsterService.Request(requester="dr_a", body=b"signed"), _Responder()) is None
    assert signed == [b"signed"]
    responder = _Responder()
    malformed = BolsterService.Request(requester="dr_a", body=SessionRequest.TAG + b"\x00")
    assert handler(malformed, responder) == _R.STATUS_MALFORMED
    assert signed == [b"signed"]
    assert responder.sent[0].status == _R.STATUS_MALFORMED


def test_every_answer_but_the_base_s_carries_its_proof_open_ones_within_the_budget() -> None:
    replies = _Replies()
    seen: list[Responder] = []

    def handler(req: Any, responder: Responder) -> int | None:
        seen.append(responder)
        responder.send(_R(status=_R.STATUS_OK, body=b""))
        return None

    request = BolsterService.Request(requester="dr_a", body=b"")
    for op in ("base/store", "devices", "access"):
        proven(replies, op, handler)(request, _Responder())  # type: ignore[arg-type]
    assert not isinstance(seen[0], bw.ProvingResponder)  # the base stays the paper's
    assert [(p["op"], p["authenticated"]) for p in replies.proved] == [
        ("devices", False),  # open: anyone may ask, the answer is signed within the budget
        ("access", True),
    ]
