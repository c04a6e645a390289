"""Service request/reply framing as rmw_cyclonedds_cpp puts it on the wire.

Every request and reply sample is ``{uint64 client_guid; int64 seq}`` followed by the
body; the generated service descriptors (``iomt.msg``) convert between those wire samples
and the plain messages user code sees. This module holds the rest of rmw's conventions:
the per-process request counter, the client/service ids in USER_DATA, and reading the
header straight from CDR bytes so a client skips other clients' replies unparsed.
"""

from __future__ import annotations

import itertools

from iomt.errors import ConfigurationError
from iomt.msg import message_info, service_info

UINT64_MASK = (1 << 64) - 1

# rmw_cyclonedds numbers requests with one counter per process, from 1.
_request_seq = itertools.count(1)


def next_request_seq() -> int:
    return next(_request_seq)


def peek_header(cdr: bytes) -> tuple[int, int]:
    """(client_guid, seq) from a serialized request/reply, without deserializing it."""
    if len(cdr) < 20:
        raise ValueError(f"service sample too short ({len(cdr)} bytes)")
    if cdr[1] & 1:
        return int.from_bytes(cdr[4:12], "little"), int.from_bytes(
            cdr[12:20], "little", signed=True
        )
    return int.from_bytes(cdr[4:12], "big"), int.from_bytes(cdr[12:20], "big", signed=True)


def csid_to_string(csid: bytes) -> str:
    """Format a client/service id exactly as rmw_cyclonedds_cpp's ``csid_to_string``:
    lowercase hex, '.'-separated, the first byte right-aligned in two columns."""
    return f"{csid[0]:x}".rjust(2) + "".join(f".{b:x}" for b in csid[1:])


_TYPE_HASHES: dict[object, bytes] = {}
_SERVICE_HASHES: dict[object, tuple[bytes, bytes]] = {}


def type_hash_user_data(msg_type: object) -> bytes:
    """``typehash=RIHS01_<hex>;``: what ROS 2 (Iron and later) puts in an endpoint's USER_DATA,
    so a ROS 2 peer's per-topic endpoint info carries the type hash. Empty for a type iomt
    has no interface file for (a recorder's foreign topics)."""
    found = _TYPE_HASHES.get(msg_type)
    if found is None:
        try:
            found = f"typehash={message_info(msg_type).type_hash};".encode()  # type: ignore[arg-type]
        except ConfigurationError:
            found = b""
        _TYPE_HASHES[msg_type] = found
    return found


def service_type_hashes(srv_type: object) -> tuple[bytes, bytes]:
    """The ``typehash=...;`` USER_DATA of a service's request and reply endpoints (rmw puts the
    request message's hash on both request endpoints, the response's on both reply ones)."""
    found = _SERVICE_HASHES.get(srv_type)
    if found is None:
        try:
            info = service_info(srv_type)  # type: ignore[arg-type]
            found = (
                f"typehash={info.request.type_hash};".encode(),
                f"typehash={info.response.type_hash};".encode(),
            )
        except ConfigurationError:
            found = (b"", b"")
        _SERVICE_HASHES[srv_type] = found
    return found


def user_data_id(user_data: bytes, key: str) -> str | None:
    """Value of ``key=`` in a ``k=v;k=v;`` USER_DATA string, if present."""
    for item in user_data.decode("utf-8", "replace").split(";"):
        k, sep, v = item.partition("=")
        if sep and k.strip() == key:
            return v
    return None
