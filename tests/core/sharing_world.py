"""A small facility for the sans-IO tests of Bilal & Hassan's framework: a keystore with
a CA, a patient's wallet, providers and devices of every capability class, wired the way
the nodes wire them, with a controllable clock. No DDS anywhere."""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from iomt.core.channels import ChannelTable
from iomt.core.device import OWN_TECHNIQUE, DeviceConfig, DeviceCore
from iomt.core.handshake import Consent, PatientDevice, Wallet
from iomt.core.provider import ProviderCore
from iomt.core.registration import NeighbourTable
from iomt.crypto.keystore import Identity, Keystore
from iomt.crypto.techniques import Capability
from iomt.crypto.tokens import TokenIssuer, TokenVerifier

FACILITY = "ward1"
POLICY = "role:cardiologist AND facility:F1"


class Clock:
    def __init__(self, t: float | None = None) -> None:
        # Starts at the real time: certificates are issued against this clock and other
        # parties (an auditor) check them against theirs.
        self.t = time.time() if t is None else t

    def __call__(self) -> float:
        return self.t

    def advance(self, dt: float) -> None:
        self.t += dt


def der(identity: Identity) -> bytes:
    return identity.certificate.public_bytes(serialization.Encoding.DER)


@dataclass
class World:
    keystore: Keystore
    clock: Clock
    wallet_identity: Identity
    wallet: Wallet
    devices: dict[str, DeviceCore] = field(default_factory=dict)
    providers: dict[str, ProviderCore] = field(default_factory=dict)
    _seq: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def check(self):  # type: ignore[no-untyped-def]
        return self.keystore.credential_validator()

    def device(self, name: str) -> DeviceCore:
        return self.devices[name]

    def provider(self, name: str) -> ProviderCore:
        return self.providers[name]

    def record(self, name: str, payload: bytes | None = None) -> None:
        seq = next(self._seq)
        self.devices[name].record(
            seq, int(self.clock() * 1e9), payload or f"reading {seq} of {name}".encode()
        )

    def announce_all(self) -> None:
        """Everyone hears everyone's announcement (radio range decides who registers);
        twice, so the second round carries the 1-hop lists that give 2-hop knowledge."""
        for _ in range(2):
            anns = [d.announcement(int(self.clock() * 1e9)) for d in self.devices.values()]
            for d in self.devices.values():
                for a in anns:
                    d.on_announcement(a)

    def open_session(self, initiator: ChannelTable, responder: ChannelTable) -> None:
        peer = responder.identity.name
        m1 = initiator.start(peer)
        m2 = responder.respond(initiator.identity.name, m1)
        m3 = initiator.finish(peer, m2)
        initiator.confirm(peer, responder.respond(initiator.identity.name, m3))

    def grant(self, provider: str) -> None:
        p = self.providers[provider]
        grants = self.wallet.handle(p.token_request(self.wallet.wallet_uri))
        p.accept_grants(grants)


DEVICES = {
    # name: (capability, x, y)
    "hr_none": (Capability.NONE, 0.0, 0.0),
    "bp_sym": (Capability.SYMMETRIC, 3.0, 0.0),
    "hr_ecc": (Capability.ECC, 0.0, 4.0),
    "bp_abe": (Capability.ABE, 5.0, 5.0),
    "far_ecc": (Capability.ECC, 100.0, 100.0),
}
RADIO = 8.0


def build_world(
    root: Path,
    devices: dict[str, tuple[Capability, float, float]] | None = None,
    radio: float = RADIO,
) -> World:
    """A facility with ``devices`` (name: capability, x, y; default ``DEVICES``), every
    one of them the patient's, each with radio range ``radio``."""
    devices = DEVICES if devices is None else devices
    clock = Clock()
    ks = Keystore.create(root / "keystore", facility=FACILITY, clock=clock)
    ks.add_identity("wallet_p1", roles=["wallet"])
    for name in ("dr_house", "dr_other", "mallory"):
        ks.add_identity(name, roles=["provider"])
    for name, (cap, _x, _y) in devices.items():  # devices sign with ECDSA P-256, as in runs
        ks.add_identity(name, algorithm="ecdsa-p256", roles=["device"], capability=cap)
    for name in ("dr_house", "dr_other"):
        ks.add_attributes(name, ["role:cardiologist", "facility:F1"])
    wallet_id = ks.identity("wallet_p1")
    check = ks.credential_validator()
    issuer = TokenIssuer(wallet_id.uri, wallet_id.signer, clock=clock)
    world = World(
        ks,
        clock,
        wallet_id,
        Wallet(
            wallet_id.uri,
            "patient-1",
            issuer,
            [
                PatientDevice(ks.identity(n).uri, OWN_TECHNIQUE[cap], 0, der(ks.identity(n)))
                for n, (cap, _x, _y) in devices.items()
            ],
            Consent.read_vitals([ks.identity("dr_house").uri, ks.identity("dr_other").uri]),
            check_certificate=check,
            clock=clock,
        ),
    )
    for name, (cap, x, y) in devices.items():
        ident = ks.identity(name)
        config = DeviceConfig(ident.uri, cap, 0, x, y, radio, 5.0, POLICY)
        world.devices[name] = DeviceCore(
            config,
            signer=ident.signer,
            certificate=der(ident),
            channels=ChannelTable(ident.handshake_identity(), check, clock=clock),
            table=NeighbourTable(
                ident.uri,
                x,
                y,
                radio,
                clock=clock,
                check_certificate=lambda uri, cert: check(uri.rsplit("/", 1)[-1], cert),
            ),
            tokens=TokenVerifier(
                {wallet_id.uri: wallet_id.verifier}, clock=clock, revocations=ks.revocations
            ),
            abe_params=ks.public_params,
            clock=clock,
        )
    for name in ("dr_house", "dr_other", "mallory"):
        ident = ks.identity(name)
        world.providers[name] = ProviderCore(
            ident.uri,
            signer=ident.signer,
            certificate=der(ident),
            encryption_key=ident.encryption_key,
            attribute_key=ident.attribute_key,
            channels=ChannelTable(ident.handshake_identity(), check, clock=clock),
            check_certificate=check,
            clock=clock,
        )
    return world
