"""What a provider node is built from: its keystore identity and the collaborators that ask
for it (protocol core, reply checks and signatures, calls, clients, sessions), and its
workload, resumed from its results file after a restart."""

from __future__ import annotations

import time
from dataclasses import dataclass

from iomt.core.modes import Mode
from iomt.core.provider import ProviderCore
from iomt.core.replies import ReplyChecker, ReplySigner
from iomt.core.workload import Workload, workload_rng
from iomt.crypto.keystore import Identity, Keystore
from iomt.nodes.asking import Endpoints, provider_core
from iomt.nodes.calls import Calls
from iomt.nodes.handshaking import SessionOpener
from iomt.nodes.identity import open_keystore, reply_signer
from iomt.nodes.names import uri_of
from iomt.nodes.params import ProviderParams
from iomt.nodes.provider_results import finished_requests
from iomt.runtime import Node

__all__ = ["ProviderParts", "provider_parts", "provider_workload"]


@dataclass(frozen=True)
class ProviderParts:
    """A provider's collaborators, made once when its node is."""

    keystore: Keystore
    identity: Identity
    core: ProviderCore
    checker: ReplyChecker  # every reply we take must prove itself (iomt.core.replies) ...
    replies: ReplySigner  # ... and ours do too
    calls: Calls
    endpoints: Endpoints
    sessions: SessionOpener


def provider_parts(node: Node, keystore: str, name: str, mode: Mode) -> ProviderParts:
    ks = open_keystore(keystore)
    identity = ks.identity(name)
    core = provider_core(ks, identity)
    calls = Calls(node)
    endpoints = Endpoints(node, centralized=mode is Mode.CENTRALIZED)
    return ProviderParts(
        ks,
        identity,
        core,
        ReplyChecker(ks.credential_validator()),
        reply_signer(identity),
        calls,
        endpoints,
        SessionOpener(node, identity.uri, core.channels, calls, endpoints.handshake),
    )


def provider_workload(uri: str, facility: str, config: ProviderParams) -> Workload:
    """The workload ``config`` describes. A restarted provider (its process crashed and the launcher
    started it again) resumes where its results file says it was: every finished request is
    a line there, written through at once. Requests in flight at the crash are issued
    again."""
    c = config
    resumed = finished_requests(c.results, uri)
    return Workload(
        uri,
        total=c.requests,
        concurrency=c.concurrency,
        techniques=c.techniques or ["ecc"],
        rng=workload_rng(c.seed, len(resumed)),
        monotonic=time.monotonic,
        perf_ns=time.perf_counter_ns,
        wall_ns=time.time_ns,
        request_timeout_s=c.request_timeout_s,
        # A script ([device name, technique], ...) replaces the random workload: the case
        # study asks its devices in a fixed order, one request at a time.
        script=[(uri_of(facility, d), t) for d, t in (c.script or [])],
        plain_ids=Mode.parse(c.mode) is Mode.BASE,
        resumed=resumed,
    )
