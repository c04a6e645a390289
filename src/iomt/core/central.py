"""The centralized baseline the paper compares against (Bilal & Hassan, §I, Fig. 3).

Devices upload their readings to one server in plaintext; the server stores them,
and on demand validates the requester's token, seals the latest reading of the device in
the requester's technique (the server can apply every technique) and answers. The same
tokens, sessions and envelope format as the distributed framework are used, so the two
differ only in where data lives and travels: the comparison the paper makes.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from iomt.clock import ClockS
from iomt.core.channels import ChannelTable
from iomt.core.device import Refused, StoredReading, seal_for_requester
from iomt.core.listener import DataRequest, Listener, Outcome, Refusal
from iomt.core.publish import (
    Envelope,
    Sealer,
)
from iomt.crypto.abe import FamePublicParams
from iomt.crypto.sessions import Session
from iomt.crypto.techniques import AbePolicy, Capability, techniques_for
from iomt.crypto.tokens import TokenVerifier
from iomt.errors import IomtError


class CentralCore:
    def __init__(
        self,
        uri: str,
        *,
        channels: ChannelTable,
        tokens: TokenVerifier,
        abe_params: FamePublicParams | None,
        policy: str,
        clock: ClockS = time.time,
    ) -> None:
        self.uri = uri
        self.channels = channels
        self._tokens = tokens
        self._abe_params = abe_params
        self._policy_text = policy
        self._policy: AbePolicy | None = None
        self._clock = clock
        self._applicable = frozenset(techniques_for(Capability.ABE)) - {"sym-3des"}
        self._listeners: dict[str, Listener] = {}
        self.sealer = Sealer(uri)
        self.counters = {"shared": 0, "refused": 0}

    def _listener(self, device_uri: str) -> Listener:
        listener = self._listeners.get(device_uri)
        if listener is None:
            listener = Listener(device_uri, self._applicable, self._tokens, clock=self._clock)
            self._listeners[device_uri] = listener
        return listener

    def fetch(
        self, request: DataRequest, latest: Callable[[str], StoredReading | None]
    ) -> Envelope | Refused:
        try:
            device_uri = str(self._tokens.decode(request.token)[3])  # aud: which device
        except (IomtError, KeyError) as exc:
            self.counters["refused"] += 1
            return Refused(Refusal.INVALID_TOKEN, str(exc))
        session: Session | None = None
        if request.proof_type == "session":
            try:
                session = self.channels.session_of_record(request.proof)
            except IomtError:
                session = None
        decision = self._listener(device_uri).decide(request, session)
        if decision.outcome is not Outcome.SHARE:
            self.counters["refused"] += 1
            return Refused.of(decision)
        reading = latest(device_uri)
        if reading is None:
            self.counters["refused"] += 1
            return Refused(Refusal.NO_DATA, f"nothing uploaded for {device_uri}")
        if self._policy is None and self._abe_params is not None and self._policy_text:
            self._policy = AbePolicy.parse(self._abe_params, self._policy_text)
        envelope = seal_for_requester(
            self.sealer,
            request,
            reading,
            device_uri=device_uri,
            policy=self._policy,
            session=session,
        )
        if session is None:
            self.counters["refused"] += 1
            return Refused(Refusal.BAD_PROOF, "the server answers over sessions only")
        self.counters["shared"] += 1
        return envelope.signed_by(self.channels.mac_key(session))
