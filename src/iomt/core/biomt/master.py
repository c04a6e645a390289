"""Several bolsters: the master bolster's shared chain (BIoMT "multiple bolsters support").

The paper: a large facility "may require several bolsters ... a master bolster is essential
to coordinate ... a shared blockchain will be required. The origin transactions of IoMT
devices, associated with a certain bolster, will be chained to the origin transaction of
this bolster. Then, stored in the master bolster as part of the shared blockchain."

:class:`MasterBolster` keeps that shared chain as a :class:`~iomt.ledger.Ledger` of its own
(signed by the master's key, its privacy header listing the member bolsters):

* a member joins with a :class:`BolsterOrigin` -- its id, facility, ledger public key,
  CA-issued certificate and a checkpoint of its local ledger, signed by that key. The master
  validates the certificate against the facility CA, the signature and the checkpoint, and
  appends an Origin transaction; the member's *origin hash* is that transaction's leaf hash.
* a member chains a device with a :class:`DeviceOriginLink` -- the device's Origin
  transaction from the member's ledger (body still encrypted), its inclusion proof and the
  signed checkpoint it is proven against, signed by the member. The master recomputes the
  leaf, checks the proof and both signatures, and appends an Origin transaction whose body
  names the member's origin hash: the device's origin is chained to its bolster's origin by
  hash, and the shared chain's own Merkle tree and signed blocks cover the link.

Shared-chain bodies are not encrypted: they hold only public keys, pseudonyms and hashes,
and their point is that every member bolster can check them.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from iomt.crypto.signing import verifier_from_public_bytes
from iomt.errors import AuthenticationError
from iomt.ledger import (
    InclusionProof,
    Ledger,
    LedgerSigner,
    LedgerStorage,
    PrivacyHeader,
    Receipt,
    SignedTreeHead,
    Transaction,
    TxType,
    verify_checkpoint,
    verify_inclusion,
)
from iomt.ledger.errors import LedgerVerificationError

from .clock import ClockNs
from .codec import U64, Blob, Bytes, Message, tag
from .errors import (
    AlreadyChainedError,
    AlreadyMemberError,
    ProvisioningError,
    UnknownBolsterError,
)
from .identity import TrustAnchor, certificate_from_der
from .keys import LedgerKeyVerifier, fingerprint
from .messages import ID, SIGNATURE, TRANSACTION

__all__ = [
    "BolsterOrigin",
    "BolsterOriginBody",
    "DeviceChainBody",
    "DeviceOriginLink",
    "MasterBolster",
    "MemberRecord",
]

_STH = Blob(SignedTreeHead.from_bytes)


@dataclass(frozen=True, slots=True)
class BolsterOrigin(Message):
    """A member bolster's application to the shared chain, signed by its ledger key."""

    bolster_id: str
    facility_id: str
    public_key: bytes
    signing_certificate: bytes
    checkpoint: SignedTreeHead
    signature: bytes = b""

    TAG = tag("iomt/biomt/bolster-origin/v1")
    FIELDS = (
        ("bolster_id", ID),
        ("facility_id", ID),
        ("public_key", Bytes(max_size=128)),
        ("signing_certificate", Bytes(max_size=16384)),
        ("checkpoint", _STH),
        ("signature", SIGNATURE),
    )
    SIGNATURE = "signature"


@dataclass(frozen=True, slots=True)
class DeviceOriginLink(Message):
    """A device's Origin in a member's ledger, proven against a signed checkpoint."""

    bolster_id: str
    device: str
    origin: Transaction
    inclusion: InclusionProof
    checkpoint: SignedTreeHead
    signature: bytes = b""

    TAG = tag("iomt/biomt/device-origin-link/v1")
    FIELDS = (
        ("bolster_id", ID),
        ("device", ID),
        ("origin", TRANSACTION),
        ("inclusion", Blob(InclusionProof.from_bytes)),
        ("checkpoint", _STH),
        ("signature", SIGNATURE),
    )
    SIGNATURE = "signature"


@dataclass(frozen=True, slots=True)
class BolsterOriginBody(Message):
    """Shared-chain body of a member's Origin."""

    bolster_id: str
    facility_id: str
    public_key: bytes
    certificate_fingerprint: bytes
    checkpoint: SignedTreeHead

    TAG = tag("iomt/biomt/shared/bolster-origin/v1")
    FIELDS = (
        ("bolster_id", ID),
        ("facility_id", ID),
        ("public_key", Bytes(max_size=128)),
        ("certificate_fingerprint", Bytes(size=32)),
        ("checkpoint", _STH),
    )


@dataclass(frozen=True, slots=True)
class DeviceChainBody(Message):
    """Shared-chain body of a device Origin: chained to its bolster's origin by hash."""

    bolster_id: str
    bolster_origin_hash: bytes
    device: str
    device_origin_seq: int
    device_origin_leaf: bytes
    checkpoint: SignedTreeHead

    TAG = tag("iomt/biomt/shared/device-origin/v1")
    FIELDS = (
        ("bolster_id", ID),
        ("bolster_origin_hash", Bytes(size=32)),
        ("device", ID),
        ("device_origin_seq", U64),
        ("device_origin_leaf", Bytes(size=32)),
        ("checkpoint", _STH),
    )


@dataclass(frozen=True, slots=True)
class MemberRecord:
    """What the master knows of a member: its key and where its origin is in the chain."""

    bolster_id: str
    facility_id: str
    verifier: LedgerKeyVerifier
    origin_seq: int
    origin_hash: bytes
    checkpoint: SignedTreeHead


class MasterBolster:
    """The master bolster: member admission and the shared chain of origins."""

    def __init__(self, ledger: Ledger, *, anchor: TrustAnchor, clock: ClockNs) -> None:
        self._ledger = ledger
        self._anchor = anchor
        self._clock = clock
        self._members: dict[str, MemberRecord] = {}
        self._devices: dict[tuple[str, str], int] = {}
        self._replay()

    @classmethod
    def open(
        cls,
        storage: LedgerStorage,
        signer: LedgerSigner,
        *,
        facility_id: str,
        anchor: TrustAnchor,
        clock: ClockNs,
    ) -> MasterBolster:
        """Open (or create) the shared chain in ``storage`` (a ledger storage backend)."""
        policy = None
        if storage.read_meta() is None:
            policy = PrivacyHeader(f"shared:{facility_id}", 1)
        ledger = Ledger.open(storage, signer, privacy_header=policy, clock=clock)
        return cls(ledger, anchor=anchor, clock=clock)

    @property
    def ledger(self) -> Ledger:
        return self._ledger

    def members(self) -> list[MemberRecord]:
        return sorted(self._members.values(), key=lambda m: m.bolster_id)

    def member(self, bolster_id: str) -> MemberRecord:
        try:
            return self._members[bolster_id]
        except KeyError:
            raise UnknownBolsterError(f"{bolster_id!r} is not a member bolster") from None

    def _replay(self) -> None:
        for tx in self._ledger.transactions(tx_type=TxType.ORIGIN):
            if tx.body.startswith(BolsterOriginBody.TAG):
                b = BolsterOriginBody.from_bytes(tx.body)
                self._members[b.bolster_id] = MemberRecord(
                    b.bolster_id,
                    b.facility_id,
                    _verifier(b.public_key),
                    tx.seq,
                    tx.leaf_hash(),
                    b.checkpoint,
                )
            elif tx.body.startswith(DeviceChainBody.TAG):
                d = DeviceChainBody.from_bytes(tx.body)
                self._devices[(d.bolster_id, d.device)] = tx.seq

    def admit(self, origin: BolsterOrigin) -> tuple[MemberRecord, Receipt]:
        """Validate a member's origin and append it to the shared chain."""
        now = self._clock()
        if origin.bolster_id in self._members:
            raise AlreadyMemberError(f"{origin.bolster_id!r} {AlreadyMemberError.PHRASE}")
        try:
            cert = certificate_from_der(origin.signing_certificate)
            certified = self._anchor.validate(cert, now=now, name=origin.bolster_id)
            if certified.public_bytes() != origin.public_key:
                raise ProvisioningError("origin key is not the certified key")
            verifier = _verifier(origin.public_key)
            verifier.verify(origin.signed_bytes(), origin.signature)
            verify_checkpoint(origin.checkpoint, verifier)
        except (AuthenticationError, LedgerVerificationError) as exc:
            raise ProvisioningError(f"origin of {origin.bolster_id!r} rejected: {exc}") from exc
        body = BolsterOriginBody(
            origin.bolster_id,
            origin.facility_id,
            origin.public_key,
            fingerprint(origin.signing_certificate),
            origin.checkpoint,
        )
        receipt = self._ledger.append(
            TxType.ORIGIN, origin.bolster_id, body.to_bytes(), time=now, signature=origin.signature
        )
        policy = self._ledger.privacy_header.with_device(origin.bolster_id)
        self._ledger.seal_block(policy)
        record = MemberRecord(
            origin.bolster_id,
            origin.facility_id,
            verifier,
            receipt.seq,
            receipt.leaf_hash,
            origin.checkpoint,
        )
        self._members[origin.bolster_id] = record
        return record, receipt

    def chain_device(self, link: DeviceOriginLink) -> Receipt:
        """Check a member's device Origin and chain it to the member's origin hash."""
        member = self.member(link.bolster_id)
        now = self._clock()
        key = (link.bolster_id, link.device)
        if key in self._devices:
            raise AlreadyChainedError(f"device {link.device!r} {AlreadyChainedError.PHRASE}")
        try:
            member.verifier.verify(link.signed_bytes(), link.signature)
            verify_checkpoint(link.checkpoint, member.verifier)
            if link.origin.tx_type is not TxType.ORIGIN:
                raise ProvisioningError("the linked transaction is not an Origin")
            proof = link.inclusion
            if (proof.leaf_index, proof.tree_size) != (link.origin.seq, link.checkpoint.tree_size):
                raise ProvisioningError("inclusion proof is for another leaf or tree")
            verify_inclusion(link.origin.leaf_hash(), proof, link.checkpoint.root_hash)
        except (AuthenticationError, LedgerVerificationError) as exc:
            raise ProvisioningError(f"device origin link rejected: {exc}") from exc
        body = DeviceChainBody(
            link.bolster_id,
            member.origin_hash,
            link.device,
            link.origin.seq,
            link.origin.leaf_hash(),
            link.checkpoint,
        )
        receipt = self._ledger.append(
            TxType.ORIGIN, link.bolster_id, body.to_bytes(), time=now, signature=link.signature
        )
        self._devices[key] = receipt.seq
        return receipt

    def device_chain(self, bolster_id: str, device: str) -> tuple[DeviceChainBody, MemberRecord]:
        """The shared-chain entry of a device and the member origin it is chained to."""
        seq = self._devices.get((bolster_id, device))
        if seq is None:
            raise UnknownBolsterError(f"no chained origin for {device!r} at {bolster_id!r}")
        body = DeviceChainBody.from_bytes(self._ledger.get_transaction(seq).body)
        member = self.member(bolster_id)
        if not hmac.compare_digest(body.bolster_origin_hash, member.origin_hash):
            raise ProvisioningError("device origin is not chained to its bolster's origin")
        return body, member


def _verifier(public_key: bytes) -> LedgerKeyVerifier:
    algorithm = "ed25519" if len(public_key) == 32 else "ecdsa-p256"
    return LedgerKeyVerifier(verifier_from_public_bytes(algorithm, public_key))
