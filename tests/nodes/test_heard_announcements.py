"""The devices of one process decode each announcement once and check each certificate
once; nothing that failed is remembered."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.sharing_world import build_world
from iomt.crypto.errors import CertificateError
from iomt.errors import RemoteProtocolError
from iomt.nodes import wire
from iomt.nodes.announcing import HeardAnnouncements


def test_an_announcement_is_decoded_once_per_process(tmp_path: Path) -> None:
    world = build_world(tmp_path)
    heard = HeardAnnouncements(max_entries=2)
    a = world.device("hr_ecc").announcement(1_000)
    cdr = wire.announcement_to_msg(a).serialize()
    first = heard.decode(cdr)
    assert first == a
    assert heard.decode(bytes(cdr)) is first  # the same bytes, as another reader takes them
    # malformed bytes raise, every time (never cached)
    for _ in range(2):
        with pytest.raises(RemoteProtocolError):
            heard.decode(cdr[:-7])
    # bounded
    for stamp in (2_000, 3_000):
        heard.decode(
            wire.announcement_to_msg(world.device("hr_ecc").announcement(stamp)).serialize()
        )
    assert len(heard._decoded) == 2
    assert heard.decode(cdr) is not first  # evicted: decoded again (and equal)
    assert heard.decode(cdr) == a


def test_a_certificate_is_checked_once_and_a_failure_every_time(tmp_path: Path) -> None:
    world = build_world(tmp_path)
    heard = HeardAnnouncements()
    calls: list[str] = []
    validate = world.keystore.credential_validator()

    def check(uri: str, cert: bytes):  # type: ignore[no-untyped-def]
        calls.append(uri)
        return validate(uri.rsplit("/", 1)[-1], cert)

    checked = heard.certificate_check(check)
    ident = world.keystore.identity("hr_ecc")
    der = world.device("hr_ecc").certificate
    for _ in range(3):
        assert checked(ident.uri, der).public_bytes() == ident.verifier.public_bytes()
    assert calls == [ident.uri]
    # another device's name with this certificate: refused, and refused again
    for _ in range(2):
        with pytest.raises(CertificateError):
            checked("iomt://ward1/bp_abe", der)
    assert calls == [ident.uri, "iomt://ward1/bp_abe", "iomt://ward1/bp_abe"]
