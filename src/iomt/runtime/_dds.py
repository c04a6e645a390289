"""Thin helpers over cyclonedds-python internals the runtime relies on.

The public cyclonedds API deserializes inside ``DataReader.take`` and serializes inside
``DataWriter.write``; the runtime needs the raw CDR instead (to catch a malformed sample
per sample, to peek at a service header before paying for deserialization, and for the
bag recorder, which stores bytes as they were on the wire). Those entry points live in
``cyclonedds._clayer``; this module is the only place that touches them.
"""

from __future__ import annotations

import contextlib
import ctypes as ct
from typing import Any

from cyclonedds._clayer import (
    ddspy_get_matched_publication_data,
    ddspy_get_matched_subscription_data,
    ddspy_take,
    ddspy_write,
)
from cyclonedds.core import (
    DDSException,
    Entity,
    InstanceState,
    SampleState,
    ViewState,
    WaitSet,
)
from cyclonedds.internal import load_cyclonedds

from iomt.errors import TransportError

ANY_STATE = SampleState.Any | ViewState.Any | InstanceState.Any


def take_raw(reader: Any, max_samples: int) -> list[tuple[bytes, Any]]:
    """Take up to ``max_samples`` (cdr bytes, SampleInfo) pairs; never deserializes."""
    ret = ddspy_take(reader._ref, ANY_STATE, max_samples)
    if isinstance(ret, int):
        raise TransportError(f"take failed on {reader!r}: DDS return code {ret}")
    return list(ret)


def write_raw(writer: Any, cdr: bytes) -> None:
    """Write already-serialized CDR (encapsulation header included)."""
    if len(cdr) % 4:
        cdr = cdr.ljust((len(cdr) + 3) & ~3, b"\0")
    ret = ddspy_write(writer._ref, cdr)
    if ret < 0:
        raise TransportError(f"write failed on {writer!r}: DDS return code {ret}")


def matched_subscriptions(writer: Any) -> list[int]:
    """Instance handles of the readers matched to ``writer``.

    cyclonedds-python counts the matches, sizes a buffer, then lists them; a reader that
    matches in between makes it index past the buffer (IndexError). Discovery settles in
    microseconds, so ask again; if it keeps moving, report no match (callers poll).
    """
    return _matched(writer.get_matched_subscriptions)


def matched_subscription_count(writer: Any) -> int:
    """How many readers are matched to ``writer`` (Cyclone's PUBLICATION_MATCHED count:
    no listing, so cheap enough for a check every second on each of hundreds of nodes)."""
    status: Any = writer.get_publication_matched_status()
    return int(status.current_count)


def matched_publications(reader: Any) -> list[int]:
    """Instance handles of the writers matched to ``reader`` (see matched_subscriptions)."""
    return _matched(reader.get_matched_publications)


def _matched(getter: Any) -> list[int]:
    for _ in range(_MATCH_ATTEMPTS):
        try:
            return list(getter())
        except IndexError:
            continue
    return []


_MATCH_ATTEMPTS = 8

_lib = load_cyclonedds()
_qget_userdata = _lib.dds_qget_userdata
_qget_userdata.argtypes = [ct.c_void_p, ct.POINTER(ct.c_void_p), ct.POINTER(ct.c_size_t)]
_qget_userdata.restype = ct.c_bool
_dds_free = _lib.dds_free
_dds_free.argtypes = [ct.c_void_p]
_dds_free.restype = None


def _user_data_of_qos(pointer: int) -> bytes:
    # Only USER_DATA: cyclonedds' own conversion builds every policy as Python objects
    # (~0.1 ms per endpoint), and a server asks once per client it answers.
    value = ct.c_void_p()
    size = ct.c_size_t()
    if not _qget_userdata(pointer, ct.byref(value), ct.byref(size)):
        return b""
    try:
        return ct.string_at(value, size.value) if value.value and size.value else b""
    finally:
        if value.value:
            _dds_free(value)  # dds_qget_userdata hands over a copy


def _endpoint_user_data(*fields: Any) -> bytes:
    # (key, participant key, participant handle, topic, type, qos, sample info, type id)
    return bytes(fields[5])


def matched_subscription_user_data(writer: Any, handle: int) -> bytes | None:
    """USER_DATA of the reader ``handle`` matched to ``writer``; None if it is gone."""
    try:
        found = ddspy_get_matched_subscription_data(
            writer._ref, handle, _endpoint_user_data, _user_data_of_qos
        )
    except Exception:  # the endpoint left between listing and reading it
        return None
    return found if isinstance(found, bytes) else None


def matched_publication_user_data(reader: Any, handle: int) -> bytes | None:
    """USER_DATA of the writer ``handle`` matched to ``reader``; None if it is gone."""
    try:
        found = ddspy_get_matched_publication_data(
            reader._ref, handle, _endpoint_user_data, _user_data_of_qos
        )
    except Exception:
        return None
    return found if isinstance(found, bytes) else None


def delete_entity(entity: Any) -> None:
    """Delete a DDS entity now rather than at garbage collection."""
    ref = getattr(entity, "_ref", None)
    if ref is None or ref not in Entity._entities:
        return
    del Entity._entities[ref]
    with contextlib.suppress(DDSException):  # already gone with its parent
        entity._delete(ref)


class RawWaitSet:
    """A WaitSet that reports *which* conditions triggered.

    cyclonedds-python's ``WaitSet.wait`` only returns a count; scanning thousands of
    conditions after each wake-up would cost O(entities) per message. Cyclone's
    ``dds_waitset_wait`` fills an array with the attach values of the triggered entities,
    so we attach each condition with a small integer key and get the keys back. The wait
    runs in C with the GIL released, so no Python runs on Cyclone's threads.
    """

    def __init__(self, participant: Any):
        self._ws = WaitSet(participant)
        self._capacity = 64
        self._buf = (ct.c_void_p * self._capacity)()
        self._count = 0

    def attach(self, condition: Any, key: int) -> None:
        ret = self._ws._waitset_attach(self._ws._ref, condition._ref, key)
        if ret < 0:
            raise TransportError(f"waitset attach failed: DDS return code {ret}")
        self._count += 1
        if self._count > self._capacity:
            self._capacity *= 2
            self._buf = (ct.c_void_p * self._capacity)()

    def detach(self, condition: Any) -> None:
        ret = self._ws._waitset_detach(self._ws._ref, condition._ref)
        if ret >= 0:
            self._count -= 1

    def wait(self, timeout_ns: int) -> list[int]:
        buf = self._buf
        n = self._ws._waitset_wait(
            self._ws._ref, ct.cast(buf, ct.POINTER(ct.c_void_p)), self._capacity, timeout_ns
        )
        if n < 0:
            raise TransportError(f"waitset wait failed: DDS return code {n}")
        n = min(n, self._capacity)
        return [buf[i] or 0 for i in range(n)]

    def close(self) -> None:
        delete_entity(self._ws)
