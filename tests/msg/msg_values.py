"""One abstract value, two implementations: the same message for cyclonedds and for rosbags.

Strategies are derived from rosbags' parse of the interface files (its ``fielddefs``), not
from the generated classes, so a codegen mistake cannot hide itself in the test data.
An abstract message is a ``dict`` field -> value; ``to_cdds``/``to_rosbags`` build the two
implementations' objects from it and ``canonical`` reduces either back to comparable form
(floats as their IEEE bytes, so NaN compares bitwise; octet arrays as ``bytes``).

Every helper takes the rosbags type store to read fields from (default: iomt's); ``to_cdds``
also takes the lookup of generated classes, so generated modules other than iomt.msg's (the
all-types module of tests/msg/test_msg_fastcdr.py) use the same strategies.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

import numpy as np
from hypothesis import strategies as st

import iomt.msg

BASE, NAME, ARRAY, SEQUENCE = 1, 2, 3, 4
OCTETS = {"uint8", "byte", "char"}
INT_RANGES = {
    "int8": (-(2**7), 2**7 - 1),
    "int16": (-(2**15), 2**15 - 1),
    "int32": (-(2**31), 2**31 - 1),
    "int64": (-(2**63), 2**63 - 1),
    "uint8": (0, 2**8 - 1),
    "byte": (0, 2**8 - 1),
    "char": (0, 2**8 - 1),
    "uint16": (0, 2**16 - 1),
    "uint32": (0, 2**32 - 1),
    "uint64": (0, 2**64 - 1),
}
NUMPY_DTYPES = {
    "bool": np.bool_,
    "int8": np.int8,
    "int16": np.int16,
    "int32": np.int32,
    "int64": np.int64,
    "uint8": np.uint8,
    "byte": np.uint8,
    "char": np.uint8,
    "uint16": np.uint16,
    "uint32": np.uint32,
    "uint64": np.uint64,
    "float32": np.float32,
    "float64": np.float64,
}

STORE = iomt.msg.rosbags_typestore()

# Text a CDR string can carry: any Unicode scalar but NUL (the terminator) and surrogates.
_TEXT_CHARS = st.characters(codec="utf-8", exclude_characters="\x00")


def fields_of(name: str, store: Any = STORE) -> list[tuple[str, Any]]:
    return list(store.fielddefs[name][1])


def iomt_class(name: str) -> Any:
    return iomt.msg.message_info(name).type


def _ints(base: str) -> st.SearchStrategy[int]:
    lo, hi = INT_RANGES[base]
    return st.one_of(st.sampled_from([lo, hi, 0]), st.integers(lo, hi))


def _string(bound: int) -> st.SearchStrategy[str]:
    if not bound:
        return st.one_of(
            st.text(_TEXT_CHARS, max_size=40), st.text(_TEXT_CHARS, min_size=300, max_size=600)
        )
    return st.text(_TEXT_CHARS, max_size=bound).filter(lambda s: len(s.encode()) <= bound)


def _scalar(base: str, bound: int) -> st.SearchStrategy[Any]:
    if base == "bool":
        return st.booleans()
    if base == "float32":
        return st.floats(width=32)
    if base == "float64":
        return st.floats()
    if base == "string":
        return _string(bound)
    return _ints(base)


def value_strategy(desc: Any, depth: int = 0, store: Any = STORE) -> st.SearchStrategy[Any]:
    kind, arg = desc
    if kind == BASE:
        return _scalar(*arg)
    if kind == NAME:
        return message_strategy(arg, depth + 1, store)
    inner, size = arg
    octets = inner[0] == BASE and inner[1][0] in OCTETS
    if kind == ARRAY:
        if octets:
            return st.binary(min_size=size, max_size=size)
        return st.lists(value_strategy(inner, depth, store), min_size=size, max_size=size)
    if octets:
        cap = size or 2048
        return st.one_of(st.binary(max_size=min(cap, 64)), st.binary(max_size=cap))
    cap = size or (3 if inner[0] == NAME else 12)
    if depth > 1:
        cap = min(cap, 2)
    return st.lists(value_strategy(inner, depth, store), max_size=cap)


def message_strategy(
    name: str, depth: int = 0, store: Any = STORE
) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {f: value_strategy(d, depth, store) for f, d in fields_of(name, store)}
    )


# --- building ---------------------------------------------------------------------------------


Classes = Callable[[str], Any]


def to_cdds(
    name: str, value: dict[str, Any], store: Any = STORE, classes: Classes = iomt_class
) -> Any:
    cls = classes(name)
    return cls(**{f: _cdds_value(d, value[f], store, classes) for f, d in fields_of(name, store)})


def _cdds_value(desc: Any, value: Any, store: Any, classes: Classes) -> Any:
    kind, arg = desc
    if kind == BASE:
        return value
    if kind == NAME:
        return to_cdds(arg, value, store, classes)
    inner, _ = arg
    if inner[0] == BASE and inner[1][0] in OCTETS:
        return bytes(value)
    return [_cdds_value(inner, v, store, classes) for v in value]


def to_rosbags(name: str, value: dict[str, Any], store: Any = STORE) -> Any:
    cls = store.types[name]
    return cls(**{f: _rosbags_value(d, value[f], store) for f, d in fields_of(name, store)})


def _rosbags_value(desc: Any, value: Any, store: Any) -> Any:
    kind, arg = desc
    if kind == BASE:
        return value
    if kind == NAME:
        return to_rosbags(arg, value, store)
    inner, _ = arg
    if inner[0] == BASE and inner[1][0] != "string":
        dtype = NUMPY_DTYPES[inner[1][0]]
        if isinstance(value, bytes):
            return np.frombuffer(value, dtype=np.uint8).copy()
        return np.array(value, dtype=dtype)
    return [_rosbags_value(inner, v, store) for v in value]


# --- comparing --------------------------------------------------------------------------------


def canonical(name: str, msg: Any, store: Any = STORE) -> dict[str, Any]:
    """Either implementation's message (or an abstract dict) as plain comparable data."""
    get = msg.__getitem__ if isinstance(msg, dict) else lambda f: getattr(msg, f)
    return {f: _canonical_value(d, get(f), store) for f, d in fields_of(name, store)}


def _canonical_value(desc: Any, value: Any, store: Any) -> Any:
    kind, arg = desc
    if kind == BASE:
        return _canonical_scalar(arg[0], value)
    if kind == NAME:
        return canonical(arg, value, store)
    inner, _ = arg
    if inner[0] == BASE and inner[1][0] in OCTETS:
        return bytes(bytearray(int(v) for v in value))
    return [_canonical_value(inner, v, store) for v in value]


def _canonical_scalar(base: str, value: Any) -> Any:
    if base == "float32":
        return struct.pack("<f", float(value))
    if base == "float64":
        return struct.pack("<d", float(value))
    if base == "bool":
        return bool(value)
    if base == "string":
        return str(value)
    return int(value)


def default_value(name: str) -> dict[str, Any]:
    """The ROS default of ``name`` as an abstract value (zeros, empty strings and lists)."""
    return {f: _default(d) for f, d in fields_of(name)}


def _default(desc: Any) -> Any:
    kind, arg = desc
    if kind == BASE:
        base = arg[0]
        return (
            False if base == "bool" else "" if base == "string" else 0.0 if "float" in base else 0
        )
    if kind == NAME:
        return default_value(arg)
    inner, size = arg
    if kind == SEQUENCE:
        return b"" if inner[0] == BASE and inner[1][0] in OCTETS else []
    if inner[0] == BASE and inner[1][0] in OCTETS:
        return bytes(size)
    return [_default(inner) for _ in range(size)]
