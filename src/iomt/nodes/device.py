"""The IoMT device node (Bilal & Hassan): a sensor with a capability class.

It samples plausible, seeded synthetic vitals (heart rate or blood pressure) and keeps
them in local storage; announces itself on its area's registration topic and keeps its
neighbour table (Alg. 2.1); answers ``~/data_share`` (Alg. 1.4 / 2.2) by sealing for the
requester or asking a capable neighbour's ``~/convert`` (Alg. 3), trying the next one
when a converter refuses or stays silent; and, when capable, converts for neighbours and
publishes the result to the requester's ``inbox``. Sessions are opened over
``~/handshake``.

Modes: ``distributed`` (the paper's framework), ``centralized`` (the baseline: readings
are uploaded in plaintext to the central server's ``upload`` service, which does all the
sharing), ``base`` (no security at all: plaintext answers, no tokens — a lower bound),
``biomt`` (the framework as in ``distributed``, plus BIoMT: provisioned through its bolster
at start-up, every reading stored there, its shares and conversions recorded on the
bolster's ledger — :mod:`iomt.nodes.biomt_device`).

Data-transfer time (the paper's Table 2) is measured here per reading: distributed,
seal at rest (if the device can) and store locally; centralized, upload until the server
acknowledges it stored the reading.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from iomt.core.channels import ChannelTable
from iomt.core.device import DeviceConfig, DeviceCore
from iomt.core.listener import name_of
from iomt.core.modes import Mode
from iomt.core.registration import Announcement, NeighbourTable
from iomt.core.replies import ReplyChecker
from iomt.core.vitals import VitalKind, VitalsGenerator
from iomt.crypto.techniques import Capability
from iomt.crypto.tokens import TokenVerifier
from iomt.errors import ConfigurationError
from iomt.msg import Convert, SessionHandshake, Vitals
from iomt.nodes import wire
from iomt.nodes.announcing import ANNOUNCE_QOS, Announcer, heard_in_process
from iomt.nodes.calls import Calls
from iomt.nodes.converting import INBOX_QOS, ConversionOrders, ConvertService
from iomt.nodes.data_share import DataShareListener
from iomt.nodes.device_config import CAPABILITIES, DeviceNodeConfig
from iomt.nodes.device_storage import DeviceStorage, storage_secret
from iomt.nodes.handshaking import SessionOpener, handshake_responder
from iomt.nodes.identity import open_keystore, reply_signer
from iomt.nodes.names import fqn_of, uri_of
from iomt.nodes.results import ResultsWriter
from iomt.nodes.uploading import UploadLink
from iomt.runtime import Client, Node, RuntimeContext

if TYPE_CHECKING:
    from iomt.nodes.biomt_device import BiomtDeviceLink

# the QoS of what devices publish is still importable from here
__all__ = ["ANNOUNCE_QOS", "INBOX_QOS", "DeviceNode", "DeviceNodeConfig", "device_node"]

PRECREATED_CONVERTERS = 3
PRECREATED_INBOXES = 4


class DeviceNode(Node):
    def __init__(
        self,
        context: RuntimeContext,
        *,
        name: str,
        namespace: str,
        config: DeviceNodeConfig | None = None,
        **params: Any,
    ) -> None:
        """``config``, or its fields as keyword parameters (as a node spec passes them)."""
        super().__init__(name, context=context, namespace=namespace)
        if config is None:
            config = DeviceNodeConfig.from_mapping(params, node=self.get_fully_qualified_name())
        elif params:
            raise ConfigurationError(f"config and parameters given: {sorted(params)}")
        c = self.config = config
        self.mode = c.mode
        facility = self.get_namespace().strip("/")
        ks = open_keystore(c.keystore)
        identity = ks.identity(name)
        self.uri = identity.uri
        self.patient_id = c.patient_id
        self.kind = VitalKind.parse(c.kind)
        self._vitals = VitalsGenerator(self.kind, c.seed)
        validator = ks.credential_validator()
        self._heard = heard_in_process(c.keystore)
        capability = CAPABILITIES[c.capability]
        core_config = DeviceConfig(
            self.uri,
            capability,
            int(self.kind),
            c.x,
            c.y,
            c.radio_range,
            c.announce_period_s,
            c.policy,
        )
        self.core = DeviceCore(
            core_config,
            signer=identity.signer,
            certificate=ks.certificate_der(name),
            channels=ChannelTable(identity.handshake_identity(), validator),
            table=NeighbourTable(
                self.uri,
                c.x,
                c.y,
                c.radio_range,
                check_certificate=self._heard.certificate_check(
                    lambda uri, cert: validator(name_of(uri), cert)
                ),
                verified=self._heard.verified,
            ),
            tokens=TokenVerifier(
                {uri_of(facility, c.wallet): ks.verifier(c.wallet)}, revocations=ks.revocations
            ),
            abe_params=ks.public_params if capability >= Capability.ABE else None,
        )
        self.name = name
        # every reply we send proves itself (iomt.core.replies); every reply we take does
        self.replies = reply_signer(identity)
        self._checker = ReplyChecker(validator)
        self.calls = Calls(self)
        self._clients: dict[str, Client] = {}
        self._sessions = SessionOpener(
            self,
            self.uri,
            self.core.channels,
            self.calls,
            lambda peer: self._client(peer, "handshake", SessionHandshake),
        )
        self._precreate_converters = capability == Capability.NONE
        self._results = ResultsWriter(c.results)
        self._transfer_us: list[int] = []
        self.announcer: Announcer | None = None
        # Local storage: the device's own readings, sealed at rest if it can encrypt, MAC'd
        # into a chain; reading numbers continue across restarts (iomt.nodes.device_storage).
        self._db = self._open_storage(
            c.storage_dir,
            name,
            self.uri,
            storage_secret(identity),
            seal=capability > Capability.NONE and c.mode.secured,
        )
        self.seq = self._db.last_seq

        self.listener = DataShareListener(
            self, self.core, name=name, mode=c.mode, replies=self.replies
        )
        self.create_service(
            SessionHandshake,
            "~/handshake",
            handshake_responder(self.core.channels.respond, name, self.replies),
            deferred=True,
        )
        self._biomt: BiomtDeviceLink | None = None
        if c.mode is Mode.BIOMT:
            # imported for BIoMT only: it brings the whole BIoMT core (0.5 s at start-up)
            from iomt.nodes.biomt_device import BiomtDeviceLink  # noqa: PLC0415

            self._biomt = BiomtDeviceLink(
                self,
                keystore=ks,
                identity=identity,
                calls=self.calls,
                kind=c.kind,
                owner=c.wallet,
                **dict(c.biomt or {}),
            )
            self.listener.on_shared = self._biomt.shared
        if c.mode.shares:
            self._start_sharing(facility, capability)
        if c.mode is Mode.CENTRALIZED:
            self._upload = UploadLink(
                self,
                service=f"/{facility}/{c.central}/upload",
                calls=self.calls,
                timeout_s=c.upload_timeout_s,
                on_transfer=self._transfer_us.append,
            )
            # readings the server has not acknowledged yet (iomt.core.uploads)
            self.uploads = self._upload.backlog
        self.create_timer(c.sample_period_s, self._sample)
        self._first_sample = self.create_timer(0.05, self._sample_once)

    def _start_sharing(self, facility: str, capability: Capability) -> None:
        """The paper's framework: converting, announcing and hearing announcements."""
        c = self.config
        self.orders = ConversionOrders(
            self.core,
            calls=self.calls,
            sessions=self._sessions,
            checker=self._checker,
            client_for=lambda uri: self._client(uri, "convert", Convert),
            timeout_s=c.convert_timeout_s,
            answer=self.listener.answer,
            on_converted=self._biomt.converted if self._biomt is not None else None,
        )
        if capability > Capability.NONE:
            ConvertService(
                self,
                self.core,
                name=self.name,
                replies=self.replies,
                sessions=self._sessions,
                inboxes=[uri_of(facility, p) for p in (c.providers or ())[:PRECREATED_INBOXES]],
            )
        self.listener.orders = self.orders
        self.announcer = Announcer(
            self,
            self.core,
            self._heard,
            x=c.x,
            y=c.y,
            radio_range=c.radio_range,
            period_s=c.announce_period_s,
            seed=c.seed,
            on_registered=self._registered,
        )

    # -- sampling and local storage ---------------------------------------------------------

    @staticmethod
    def _open_storage(
        storage_dir: str | None, name: str, uri: str, secret: bytes, *, seal: bool
    ) -> DeviceStorage:
        path = None
        if storage_dir:
            Path(storage_dir).mkdir(mode=0o700, parents=True, exist_ok=True)
            path = Path(storage_dir) / f"{name}.db"
        return DeviceStorage(path, store=uri, secret=secret, seal=seal)

    def _sample_once(self) -> None:
        self._first_sample.cancel()
        self._sample()

    def _sample(self) -> None:
        r = self._vitals.next()
        self.seq = self._db.claim_seq()
        now = time.time_ns()
        msg = Vitals(
            stamp=wire.time_msg(now),
            device_uri=self.uri,
            patient_id=self.patient_id,
            kind=int(r.kind),
            seq=self.seq,
            heart_rate_bpm=r.heart_rate_bpm,
            systolic_mmhg=r.systolic_mmhg,
            diastolic_mmhg=r.diastolic_mmhg,
        )
        if self.mode is Mode.CENTRALIZED:
            self._upload.add(self.seq, msg)
            return
        t0 = time.perf_counter_ns()
        cdr = msg.serialize()
        self.core.record(self.seq, now, cdr)
        self._db.append(self.seq, now, cdr)
        self._transfer_us.append((time.perf_counter_ns() - t0) // 1000)
        if self._biomt is not None:
            self._biomt.on_reading(r, now)

    # -- control registration (Alg. 2.1) ------------------------------------------------------

    def _registered(self, a: Announcement) -> None:
        """A neighbour registered anew: if it is one of our nearest capable ones (the first a
        conversion plan tries), have its services' endpoints matched before we need them.
        The rest are made when a plan reaches them: a dense ward would otherwise hold
        thousands of clients. Only a device that cannot encrypt converts every request; one
        that can asks a converter only for a technique it lacks, and makes the client then
        (every endpoint costs memory in every process of the ward, through discovery)."""
        if not (self._precreate_converters and a.convertible):
            return
        nearest = [n.uri for n in self.core.table.one_hop_nearest() if n.convertible]
        if a.device_uri in nearest[:PRECREATED_CONVERTERS]:
            self._client(a.device_uri, "convert", Convert)
            self._client(a.device_uri, "handshake", SessionHandshake)

    # -- sessions -----------------------------------------------------------------------------

    def _client(self, peer_uri: str, service: str, srv_type: Any) -> Client:
        key = f"{peer_uri}#{service}"
        client = self._clients.get(key)
        if client is None:
            client = self.create_client(srv_type, f"{fqn_of(peer_uri)}/{service}")
            self._clients[key] = client
        return client

    # -- lifetime -----------------------------------------------------------------------------

    def destroy_node(self) -> None:
        self._results.write(
            {
                "record": "device",
                "device": self.uri,
                "mode": self.mode,
                "capability": self.core.config.capability.name.lower(),
                "technique": self.core.config.technique,
                "neighbours": len(self.core.table),
                "refused_announcements": self.announcer.refused if self.announcer else {},
                "counters": self.core.counters,
                "data_transfer_us": self._transfer_us,
                **({"uploads": self._upload.summary()} if self.mode is Mode.CENTRALIZED else {}),
                **({"biomt": self._biomt.summary()} if self._biomt is not None else {}),
            }
        )
        self._results.close()
        if self._biomt is not None:
            self._biomt.close()
        self._db.close()
        super().destroy_node()


def device_node(context: RuntimeContext, **params: Any) -> DeviceNode:
    return DeviceNode(context, **params)
