"""A device's clients of its neighbours' ``convert`` and ``handshake`` services.

Each is made once per neighbour, when first needed: a conversion plan reaching the
neighbour, or -- for the few neighbours a plan tries first
(:meth:`iomt.core.device.DeviceCore.prepares_converter`) -- as soon as it registers, so
that its endpoints are matched before the first request needs them. The process's devices
that call the same neighbour's ``convert`` share one DDS client of it
(``iomt.runtime.shared``); ``handshake`` clients are each device's own.
"""

from __future__ import annotations

from iomt.core.device import DeviceCore
from iomt.core.registration import Announcement
from iomt.msg import Convert, SessionHandshake
from iomt.nodes.names import fqn_of
from iomt.runtime import Client, Node

__all__ = ["PRECREATED_CONVERTERS", "PeerClients"]

#: nearest capable neighbours whose clients are made as soon as they register
PRECREATED_CONVERTERS = 3


class PeerClients:
    def __init__(self, node: Node, core: DeviceCore) -> None:
        self._node = node
        self._core = core
        self._convert: dict[str, Client] = {}
        self._handshake: dict[str, Client] = {}

    def convert(self, peer_uri: str) -> Client:
        client = self._convert.get(peer_uri)
        if client is None:
            client = self._node.create_client(Convert, f"{fqn_of(peer_uri)}/convert", shared=True)
            self._convert[peer_uri] = client
        return client

    def handshake(self, peer_uri: str) -> Client:
        client = self._handshake.get(peer_uri)
        if client is None:
            # never shared: a responder bounds handshake work per request writer
            # (iomt.core.channels.HandshakeLimits), so each device needs its own
            client = self._node.create_client(SessionHandshake, f"{fqn_of(peer_uri)}/handshake")
            self._handshake[peer_uri] = client
        return client

    def on_registered(self, a: Announcement) -> None:
        """A neighbour registered anew (Alg. 2.1)."""
        if self._core.prepares_converter(a, among=PRECREATED_CONVERTERS):
            self.convert(a.device_uri)
            self.handshake(a.device_uri)
