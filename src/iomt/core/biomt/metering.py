"""Cost metering kept out of the protocol code (the paper's Fig. 3/4 split).

The services read like the paper; where their time goes is declared, not measured inline:

* :func:`metered` makes a :class:`~iomt.core.biomt.bolster.Bolster` method one operation of
  its :class:`~iomt.core.biomt.costs.CostMeter` (recorded when it returns; a refusal is not
  a sample, as before);
* each service names its steps (an AEAD, a ledger append, decoding) and their
  :class:`~iomt.core.biomt.costs.Phase` in a ``PHASES`` table; :func:`meter_steps`, called by
  the facade when it has a meter, wraps those methods of the service object with
  :func:`charged`: a step's time, less that of the charged steps it calls, goes to its
  phase. Time outside every charged step goes to the operation's own phase (``policy``:
  the checks and decisions the services are made of).

The service code itself carries no metering (and no decorators: mutation testing mutates
what it checks). The operation in progress is a context variable, so a step called outside
an operation (replay, a timer) costs one look-up and is not charged.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from typing import Concatenate, ParamSpec, Protocol, TypeVar

from .costs import CostMeter, OpTimer, Phase

__all__ = ["charged", "meter_steps", "metered"]

P = ParamSpec("P")
R = TypeVar("R")


class _Metered(Protocol):
    meter: CostMeter


class _Steps(Protocol):
    @property
    def PHASES(self) -> Mapping[str, Phase]: ...


S = TypeVar("S", bound=_Metered)


class _Operation:
    """The operation being timed and the phase of the innermost step it is in."""

    __slots__ = ("lap", "phase")

    def __init__(self, timer: OpTimer, phase: Phase) -> None:
        self.lap = timer.lap  # bound once: a charged step is on the hot path
        self.phase = phase


_current: ContextVar[_Operation | None] = ContextVar("iomt_biomt_operation", default=None)


def metered(
    operation: str | Callable[..., str],
    *,
    phase: Phase = Phase.POLICY,
    failures: bool = False,
) -> Callable[[Callable[Concatenate[S, P], R]], Callable[Concatenate[S, P], R]]:
    """One operation of ``self.meter`` per call; ``operation`` is its name or a function of
    the call's arguments giving it. ``failures``: record the calls that raise too."""

    def decorate(method: Callable[Concatenate[S, P], R]) -> Callable[Concatenate[S, P], R]:
        @functools.wraps(method)
        def wrapper(self: S, /, *args: P.args, **kwargs: P.kwargs) -> R:
            if not self.meter.enabled:
                return method(self, *args, **kwargs)
            name = operation if isinstance(operation, str) else operation(*args, **kwargs)
            timer = self.meter.start(name)
            token = _current.set(_Operation(timer, phase))
            try:
                result = method(self, *args, **kwargs)
            except BaseException:
                if failures:
                    timer.finish(phase)
                raise
            finally:
                _current.reset(token)
            timer.finish(phase)
            return result

        return wrapper

    return decorate


def charged(phase: Phase) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Charge a step's own time to ``phase`` (the time of charged steps inside it to theirs)."""

    def decorate(step: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(step)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            op = _current.get()
            if op is None:
                return step(*args, **kwargs)
            outer = op.phase
            op.lap(outer)
            op.phase = phase
            try:
                return step(*args, **kwargs)
            finally:
                op.lap(phase)
                op.phase = outer

        return wrapper

    return decorate


def meter_steps(service: _Steps) -> None:
    """Charge ``service.PHASES``' steps to their phases: each named method of this object
    is replaced by one that charges it (the class and its code stay as they are)."""
    for name, phase in service.PHASES.items():
        setattr(service, name, charged(phase)(getattr(service, name)))
