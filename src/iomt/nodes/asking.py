"""What a provider asks over DDS and which answers it takes (Bilal & Hassan, Alg. 1.1 and
1.3): the round of asks to the patients' wallets for device info and tokens, and the check
that a data-share answer is the server's own, and the clients it asks through.

Every reply must prove itself (:mod:`iomt.core.replies`): a wallet's by its signature with a
certificate for its name; a data-share answer by a MAC under our session with the server,
or its signature -- a device's with the key its grant certified, the central server's with
a certificate for its name.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from iomt.core.channels import ChannelTable
from iomt.core.listener import name_of
from iomt.core.provider import ProviderCore
from iomt.core.replies import ReplyChecker, data_share_digest, device_info_digest
from iomt.crypto.keystore import Identity, Keystore
from iomt.errors import IomtError, ServiceTimeoutError
from iomt.msg import DataShare, DeviceInfoRequest, SessionHandshake
from iomt.nodes import wire
from iomt.nodes.calls import Calls
from iomt.nodes.names import fqn_of
from iomt.runtime import Client, Node

__all__ = ["WALLET_ATTEMPTS", "Endpoints", "WalletRound", "data_share_check", "provider_core"]

WALLET_ATTEMPTS = 3


class WalletRound:
    """Alg. 1.1: ask every wallet once (again, with more patience, when an ask times out);
    ``on_all_in`` runs when each has answered or been given up on."""

    def __init__(
        self,
        wallets: list[str],
        *,
        core: ProviderCore,
        checker: ReplyChecker,
        calls: Calls,
        client: Callable[[str], Client],
        logger: Any,
        timeout_s: float,
        on_all_in: Callable[[], None],
    ) -> None:
        self.wallets = wallets
        self._core = core
        self._checker = checker
        self._calls = calls
        self._client = client
        self._log = logger
        self._timeout_s = timeout_s
        self._on_all_in = on_all_in
        self._left = len(wallets)
        self.retries = 0

    def start(self) -> None:
        for wallet in self.wallets:
            self._ask(wallet, 1)
        if not self.wallets:  # no patients: the workload ends at once, with nothing issued
            self._on_all_in()

    def _ask(self, wallet: str, attempt: int) -> None:
        request = self._core.token_request(wallet)
        request_digest = device_info_digest(request)
        server = name_of(wallet)

        def accept(resp: Any) -> bool:  # the wallet's signature, its certificate for its name
            return self._checker.accepts(
                bytes(resp.proof), wire.device_info_statement(server, request_digest, resp)
            )

        self._calls.call(
            self._client(wallet),
            wire.token_request_to_msg(request),
            timeout_s=self._timeout_s * attempt,
            on_done=functools.partial(self._on_grants, wallet),
            on_error=functools.partial(self._unanswered, wallet, attempt),
            accept=accept,
        )

    def _unanswered(self, wallet: str, attempt: int, exc: Exception) -> None:
        # A busy ward (hundreds of endpoints still being discovered) can make the first
        # ask time out; ask again, with more patience, before doing without the patient.
        if isinstance(exc, ServiceTimeoutError) and attempt < WALLET_ATTEMPTS:
            self.retries += 1
            self._log.info("wallet %s: %s; asking again", wallet, exc)
            self._ask(wallet, attempt + 1)
            return
        self._failed(wallet, exc)

    def _on_grants(self, wallet: str, resp: Any) -> None:
        if resp.status != DeviceInfoRequest.Response.STATUS_OK:
            self._failed(wallet, IomtError(resp.reason))
            return
        try:
            self._core.accept_grants([wire.grant_from_msg(d) for d in resp.devices])
        except IomtError as exc:
            self._failed(wallet, exc)
            return
        self._done()

    def _failed(self, wallet: str, exc: Exception) -> None:
        self._log.warning("wallet %s: %s", wallet, exc)
        self._done()

    def _done(self) -> None:
        self._left -= 1
        if self._left <= 0:
            self._on_all_in()


def provider_core(ks: Keystore, identity: Identity) -> ProviderCore:
    """A provider's protocol core, with its keystore identity's keys and certificate."""
    return ProviderCore(
        identity.uri,
        signer=identity.signer,
        certificate=ks.certificate_der(identity.name),
        encryption_key=identity.encryption_key,
        attribute_key=identity.attribute_key,
        channels=ChannelTable(identity.handshake_identity(), ks.credential_validator()),
        check_certificate=ks.credential_validator(),
    )


def data_share_check(
    checker: ReplyChecker, core: ProviderCore, server_uri: str, device_uri: str, request: Any
) -> Callable[[Any], bool]:
    """Only the server's proven answer to this request: a MAC under our session with it,
    or its signature -- a device's with the key its grant certified, the central server's
    with a certificate for its name."""
    server = name_of(server_uri)
    request_digest = data_share_digest(request)
    key = core.device_key(device_uri) if server_uri == device_uri else None

    def accept(resp: Any) -> bool:
        return checker.accepts(
            bytes(resp.proof),
            lambda: wire.data_share_statement(server, request_digest, resp),
            server=server,
            channels=core.channels,
            key=key,
        )

    return accept


class Endpoints:
    """A provider's clients, one per peer and service, made once: made early, discovery
    matches them while the ward starts, not when the first requests wait for it."""

    def __init__(self, node: Node, *, centralized: bool) -> None:
        self._node = node
        self._centralized = centralized
        self._clients: dict[str, Client] = {}

    def client(self, peer_uri: str, service: str, srv_type: Any, *, shared: bool = True) -> Client:
        """``shared``: the process's providers that ask this peer share one DDS client."""
        key = f"{peer_uri}#{service}"
        client = self._clients.get(key)
        if client is None:
            client = self._node.create_client(
                srv_type, f"{fqn_of(peer_uri)}/{service}", shared=shared
            )
            self._clients[key] = client
        return client

    def handshake(self, peer_uri: str) -> Client:
        # Never shared: a responder bounds handshake work per request writer (the source
        # the transport names, iomt.core.channels.HandshakeLimits), so every provider
        # needs a writer, and a budget, of its own.
        return self.client(peer_uri, "handshake", SessionHandshake, shared=False)

    def device_info(self, wallet_uri: str) -> Client:
        return self.client(wallet_uri, "device_info", DeviceInfoRequest)

    def data(self, server_uri: str) -> Client:
        """The data service of a request's server: the central server's ``fetch`` in
        centralized mode, else the device's ``data_share``."""
        return self.client(server_uri, "fetch" if self._centralized else "data_share", DataShare)

    def prepare(self, servers: list[str]) -> None:
        for uri in servers:
            self.handshake(uri)
            self.data(uri)

    def rejected_replies(self) -> int:
        """Replies the calls ignored: they did not prove they were the server's answer."""
        return sum(getattr(c, "rejected", 0) for c in self._clients.values())
