"""Service request/reply framing as rmw_cyclonedds_cpp puts it on the wire.

Every request and reply sample is ``{uint64 client_guid; int64 seq}`` followed by the
body. The generated ``RequestWire`` / ``ResponseWire`` classes carry those two fields
first; this module converts between them and the plain messages user code sees, and
reads the header straight from CDR bytes so a client can skip other clients' replies
without deserializing them.
"""

from __future__ import annotations

import dataclasses
import itertools
from functools import cache
from typing import Any, Protocol

UINT64_MASK = (1 << 64) - 1

# rmw_cyclonedds numbers requests with one counter per process, from 1.
_request_seq = itertools.count(1)


def next_request_seq() -> int:
    return next(_request_seq)


class ServiceType(Protocol):
    """What the runtime needs from a generated service descriptor."""

    Request: type[Any]
    Response: type[Any]
    RequestWire: type[Any]
    ResponseWire: type[Any]


@cache
def _field_names(cls: type[Any]) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls))


def to_wire(wire_cls: type[Any], msg: Any, client_guid: int, seq: int) -> Any:
    body = {name: getattr(msg, name) for name in _field_names(type(msg))}
    return wire_cls(client_guid=client_guid, seq=seq, **body)


def from_wire(msg_cls: type[Any], wire: Any) -> tuple[Any, int, int]:
    body = {name: getattr(wire, name) for name in _field_names(msg_cls)}
    return msg_cls(**body), int(wire.client_guid), int(wire.seq)


def peek_header(cdr: bytes) -> tuple[int, int]:
    """(client_guid, seq) from a serialized request/reply, without deserializing it."""
    if len(cdr) < 20:
        raise ValueError(f"service sample too short ({len(cdr)} bytes)")
    order = "little" if cdr[1] & 1 else "big"
    guid = int.from_bytes(cdr[4:12], order)
    seq = int.from_bytes(cdr[12:20], order, signed=True)
    return guid, seq


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
