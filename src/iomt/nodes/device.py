"""The IoMT device node (Bilal & Hassan): a sensor with a capability class.

It samples plausible, seeded synthetic vitals (heart rate or blood pressure) and keeps
them in local storage (:mod:`iomt.nodes.device_sampling`); announces itself on its area's
registration topic and keeps its neighbour table (Alg. 2.1); answers ``~/data_share``
(Alg. 1.4 / 2.2) by sealing for the requester or asking a capable neighbour's
``~/convert`` (Alg. 3), trying the next one when a converter refuses or stays silent;
and, when capable, converts for neighbours and publishes the result to the requester's
``inbox``. Sessions are opened over ``~/handshake``. The decisions are its
:class:`~iomt.core.device.DeviceCore`'s; this node wires it to DDS.

Modes: ``distributed`` (the paper's framework), ``centralized`` (the baseline: readings
are uploaded in plaintext to the central server's ``upload`` service, which does all the
sharing), ``base`` (no security at all: plaintext answers, no tokens — a lower bound),
``biomt`` (the framework as in ``distributed``, plus BIoMT: provisioned through its bolster
at start-up, every reading stored there, its shares and conversions recorded on the
bolster's ledger — :mod:`iomt.nodes.biomt_device`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from iomt.core.modes import Mode
from iomt.core.replies import ReplyChecker
from iomt.core.vitals import VitalKind
from iomt.crypto.techniques import Capability
from iomt.errors import ConfigurationError
from iomt.msg import SessionHandshake
from iomt.nodes.announcing import ANNOUNCE_QOS, Announcer, HeardAnnouncements, heard_in_process
from iomt.nodes.calls import Calls
from iomt.nodes.converting import INBOX_QOS, ConversionOrders, ConvertService
from iomt.nodes.data_share import DataShareListener
from iomt.nodes.device_config import CAPABILITIES, DeviceNodeConfig
from iomt.nodes.device_sampling import Sampler, open_storage
from iomt.nodes.device_setup import device_core, device_record
from iomt.nodes.device_storage import storage_secret
from iomt.nodes.handshaking import SessionOpener, handshake_responder
from iomt.nodes.identity import open_keystore, reply_signer
from iomt.nodes.names import uri_of
from iomt.nodes.peer_clients import PeerClients
from iomt.nodes.results import ResultsWriter
from iomt.nodes.uploading import UploadLink
from iomt.runtime import Node, RuntimeContext

if TYPE_CHECKING:
    from iomt.nodes.biomt_device import BiomtDeviceLink

# the QoS of what devices publish is still importable from here
__all__ = ["ANNOUNCE_QOS", "INBOX_QOS", "DeviceNode", "DeviceNodeConfig", "device_node"]

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
        heard = heard_in_process(c.keystore)
        capability = CAPABILITIES[c.capability]
        self.core = device_core(c, ks, identity, heard, facility=facility)
        self.name = name
        # every reply we send proves itself (iomt.core.replies); every reply we take does
        self.replies = reply_signer(identity)
        self._checker = ReplyChecker(ks.credential_validator())
        self.calls = Calls(self)
        self._peers = PeerClients(self, self.core)
        self._sessions = SessionOpener(
            self, self.uri, self.core.channels, self.calls, self._peers.handshake
        )
        self._results = ResultsWriter(c.results)
        self._transfer_us: list[int] = []
        self.announcer: Announcer | None = None
        # Local storage: the device's own readings, sealed at rest if it can encrypt, MAC'd
        # into a chain; reading numbers continue across restarts (iomt.nodes.device_storage).
        self._db = open_storage(
            c.storage_dir,
            name,
            self.uri,
            storage_secret(identity),
            seal=capability > Capability.NONE and c.mode.secured,
        )

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
            if c.biomt is None:
                where = self.get_fully_qualified_name()
                raise ConfigurationError(f"node {where}: mode biomt needs parameter 'biomt'")
            # imported for BIoMT only: it brings the whole BIoMT core (0.5 s at start-up)
            from iomt.nodes.biomt_device import BiomtDeviceLink  # noqa: PLC0415

            self._biomt = BiomtDeviceLink(
                self,
                keystore=ks,
                identity=identity,
                calls=self.calls,
                kind=c.kind,
                owner=c.wallet,
                config=c.biomt,
            )
            self.listener.on_shared = self._biomt.shared
        if c.mode.shares:
            self._start_sharing(facility, capability, heard)
        self._upload: UploadLink | None = None
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
        self.sampler = Sampler(
            self.core,
            self._db,
            kind=self.kind,
            seed=c.seed,
            patient_id=c.patient_id,
            transfer_us=self._transfer_us,
            upload=self._upload,
            on_reading=self._biomt.on_reading if self._biomt is not None else None,
        )
        self.create_timer(c.sample_period_s, self.sampler.sample)
        self._first_sample = self.create_timer(0.05, self._sample_once)

    def warming_up(self) -> bool:
        # the centralized baseline: until the server has a reading of ours, a request for
        # one could only be refused (no-data); the process is READY when it has
        return self._upload is not None and not self._upload.answered

    @property
    def seq(self) -> int:
        """The latest reading's number."""
        return self.sampler.seq

    def _start_sharing(
        self, facility: str, capability: Capability, heard: HeardAnnouncements
    ) -> None:
        """The paper's framework: converting, announcing and hearing announcements."""
        c = self.config
        self.orders = ConversionOrders(
            self.core,
            calls=self.calls,
            sessions=self._sessions,
            checker=self._checker,
            client_for=self._peers.convert,
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
            heard,
            x=c.x,
            y=c.y,
            radio_range=c.radio_range,
            period_s=c.announce_period_s,
            seed=c.seed,
            on_registered=self._peers.on_registered,
        )

    def _sample_once(self) -> None:
        self._first_sample.cancel()
        self.sampler.sample()

    def destroy_node(self) -> None:
        record = device_record(
            self.core,
            mode=self.mode,
            refused_announcements=self.announcer.refused if self.announcer else {},
            transfer_us=self._transfer_us,
        )
        if self._upload is not None:
            record["uploads"] = self._upload.summary()
        if self._biomt is not None:
            record["biomt"] = self._biomt.summary()
        self._results.write(record)
        self._results.close()
        if self._biomt is not None:
            self._biomt.close()
        self._db.close()
        super().destroy_node()


def device_node(context: RuntimeContext, **params: Any) -> DeviceNode:
    return DeviceNode(context, **params)
