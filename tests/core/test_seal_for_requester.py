"""One function seals a reading for a requester, for a device and for the central server."""

from __future__ import annotations

import pytest

from iomt.core.device import StoredReading, seal_for_requester
from iomt.core.listener import DataRequest
from iomt.core.publish import Opener, Sealer
from iomt.crypto.errors import DecryptionError
from iomt.crypto.keys import EccPrivateKey
from iomt.errors import LocalProtocolError

READING = StoredReading(seq=7, stamp_ns=1_700_000_000_000_000_000, cdr=b"\x00\x01hr=72")


def _request(requester: EccPrivateKey, technique: str = "ecc") -> DataRequest:
    return DataRequest(
        "req-1", "iomt://ward/dr-bob", technique, b"token", b"nonce", "signature", b"proof",
        requester.public_key().public_bytes(),
    )  # fmt: skip


@pytest.mark.parametrize(
    ("sender", "device"),
    [("iomt://ward/dev-1", "iomt://ward/dev-1"), ("iomt://ward/central", "iomt://ward/dev-1")],
    ids=["device answers for itself", "server answers for a device"],
)
def test_the_requester_opens_the_reading_of_the_device_from_the_sender(
    sender: str, device: str
) -> None:
    requester = EccPrivateKey.generate()
    envelope = seal_for_requester(
        Sealer(sender), _request(requester), READING, device_uri=device, policy=None, session=None
    )
    assert (envelope.sender_uri, envelope.device_uri) == (sender, device)
    assert (envelope.seq, envelope.stamp_ns, envelope.request_id) == (7, READING.stamp_ns, "req-1")
    assert envelope.security_technique == "ecc" and not envelope.origin_signature
    assert Opener("iomt://ward/dr-bob").open(envelope, requester) == READING.cdr


def test_only_the_requester_key_opens_it() -> None:
    envelope = seal_for_requester(
        Sealer("iomt://ward/dev-1"),
        _request(EccPrivateKey.generate()),
        READING,
        device_uri="iomt://ward/dev-1",
        policy=None,
        session=None,
    )
    with pytest.raises(DecryptionError):
        Opener("iomt://ward/dr-bob").open(envelope, EccPrivateKey.generate())


def test_a_symmetric_technique_without_a_session_has_no_key() -> None:
    with pytest.raises(LocalProtocolError, match="needs a key shared with the requester"):
        seal_for_requester(
            Sealer("iomt://ward/dev-1"),
            _request(EccPrivateKey.generate(), "sym-aes"),
            READING,
            device_uri="iomt://ward/dev-1",
            policy=None,
            session=None,
        )
