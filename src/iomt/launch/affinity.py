"""Which CPUs each process of a sharing ward may run on (``--cpus``).

A data request crosses two processes: a provider asks, a device (or, in the centralized
baseline, the central server) answers. Left to the scheduler, the process woken by a
request or a reply is often placed on the core of the process that woke it, and waits
until that one blocks; with every process free to move, each also runs on a core whose
caches another process has just filled. ``split`` gives the askers and the answerers CPUs
of their own -- the providers' process the first half of the CPUs this launcher may use,
the answering processes the other half -- so a hand-over wakes a process on the other
core, where it finds its own caches. Every other process (wallets, the bag recorder)
stays free to run anywhere. Measured at 400 devices on two cores (docs/sharing.md):
access p50 0.84 ms against 1.02 ms unpinned, with 8 % more requests per second.

Pinning trades the scheduler's freedom to balance load for those hand-overs: with more
requests in flight than CPUs the devices' half saturates while the other has room (at 16
providers x 8 outstanding, 16-20 % fewer requests per second). ``auto`` therefore splits
only while the workload keeps at most as many requests outstanding as there are CPUs
(:func:`resolve_policy`), and pins nothing otherwise. ``off`` pins nothing. A plan without
both sides (a BIoMT ward, the case study), or a machine with one CPU, is not pinned either.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Iterable

from iomt.errors import ConfigurationError
from iomt.topology.spec import process_kind

__all__ = ["CPU_POLICIES", "cpu_plan", "resolve_policy"]

#: ``auto``: ``split`` while requests in flight <= CPUs, else ``off``; ``split``: askers and
#: answerers on disjoint halves of the CPUs; ``off``: no pinning
CPU_POLICIES = ("auto", "split", "off")

_ASKERS = frozenset({"providers"})


def resolve_policy(
    policy: str, *, outstanding: int | None, available: Collection[int] | None = None
) -> str:
    """``split`` or ``off`` for a ``policy`` and a workload keeping ``outstanding`` requests
    in flight (None: no workload known, e.g. a ward launched for other tools to use)."""
    if policy not in CPU_POLICIES:
        raise ConfigurationError(f"CPU policy {policy!r}: expected one of {CPU_POLICIES}")
    if policy != "auto":
        return policy
    cpus = len(os.sched_getaffinity(0) if available is None else available)
    return "split" if outstanding is not None and 0 < outstanding <= cpus else "off"


def cpu_plan(
    process_names: Iterable[str], policy: str, available: Collection[int] | None = None
) -> dict[str, tuple[int, ...]]:
    """The CPUs of each process to pin (processes not listed are not pinned); ``policy``
    is ``split`` or ``off`` (:func:`resolve_policy` decides ``auto``).

    ``available``: the CPUs to share out (default: those this process may run on)."""
    if policy not in ("split", "off"):
        raise ConfigurationError(f"CPU policy {policy!r}: expected split or off")
    names = list(process_names)
    cpus = sorted(os.sched_getaffinity(0) if available is None else available)
    if policy == "off" or len(cpus) < 2:
        return {}
    kinds = {process_kind(n) for n in names}
    # Who answers the providers: the central server in the centralized baseline (the
    # devices only upload to it there), else the devices themselves.
    answerers = frozenset({"central"}) if "central" in kinds else frozenset({"devices"})
    if not kinds & _ASKERS or not kinds & answerers:
        return {}
    half = len(cpus) // 2
    askers_cpus, answerers_cpus = tuple(cpus[:half]), tuple(cpus[half:])
    plan: dict[str, tuple[int, ...]] = {}
    for name in names:
        kind = process_kind(name)
        if kind in _ASKERS:
            plan[name] = askers_cpus
        elif kind in answerers:
            plan[name] = answerers_cpus
    return plan
