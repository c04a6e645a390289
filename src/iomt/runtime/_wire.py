"""Service request/reply framing as rmw_cyclonedds_cpp puts it on the wire.

Every request and reply sample is ``{uint64 client_guid; int64 seq}`` followed by the
body; the generated service descriptors (``iomt.msg``) convert between those wire samples
and the plain messages user code sees. This module holds the rest of rmw's conventions:
the per-process request counter, the client/service ids in USER_DATA, and reading the
header straight from CDR bytes so a client skips other clients' replies unparsed.
"""

from __future__ import annotations

import itertools

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


def user_data_id(user_data: bytes, key: str) -> str | None:
    """Value of ``key=`` in a ``k=v;k=v;`` USER_DATA string, if present."""
    for item in user_data.decode("utf-8", "replace").split(";"):
        k, sep, v = item.partition("=")
        if sep and k.strip() == key:
            return v
    return None
