"""Wire types made at run time, for ROS 2 types iomt has no interface file for.

A recorder meets topics of types it learns only from discovery (``std_msgs/msg/String``
from a foreign peer); rosbags knows their fields. ``struct_class`` turns such a field list
(rosbags' field descriptors) into a final, unkeyed cyclonedds struct under the ROS 2 DDS
type name, the same shape the generated classes have.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Annotated, Any

from cyclonedds import idl
from cyclonedds.idl import annotations as idl_annotations
from cyclonedds.idl import types as idl_types

from iomt.errors import ConfigurationError

# rosbags' node kinds (rosbags.interfaces.Nodetype), as codegen uses them
_BASE, _NAME, _ARRAY, _SEQUENCE = 1, 2, 3, 4

_BASE_TYPES: dict[str, Any] = {
    "bool": bool,
    "byte": idl_types.uint8,
    "char": idl_types.uint8,
    "int8": idl_types.int8,
    "uint8": idl_types.uint8,
    "int16": idl_types.int16,
    "uint16": idl_types.uint16,
    "int32": idl_types.int32,
    "uint32": idl_types.uint32,
    "int64": idl_types.int64,
    "uint64": idl_types.uint64,
    "float32": idl_types.float32,
    "float64": idl_types.float64,
}


def struct_class(
    class_name: str,
    dds_name: str,
    fields: Sequence[tuple[str, Any]],
    nested: Callable[[str], type],
    *,
    owner: str = "",
) -> type[idl.IdlStruct]:
    """A final cyclonedds struct with ``fields`` ((name, rosbags descriptor) pairs);
    ``nested(ros_type)`` gives the class of a nested message type."""
    annotations = {name: _field_type(desc, nested, owner or class_name) for name, desc in fields}
    cls = idl.make_idl_struct(class_name, dds_name, annotations)
    idl_annotations.final(cls)
    return cls


def _field_type(desc: Any, nested: Callable[[str], type], owner: str) -> Any:
    kind, detail = desc
    if kind == _BASE:
        name, bound = detail
        if name == "string":
            return Annotated[str, idl_types.bounded_str(bound)] if bound else str
        mapped = _BASE_TYPES.get(name)
        if mapped is None:
            raise ConfigurationError(f"{owner}: cannot map field type {name!r} to DDS")
        return mapped
    if kind == _NAME:
        return nested(detail)
    if kind == _ARRAY:
        sub, size = detail
        return Annotated[list[Any], idl_types.array(_field_type(sub, nested, owner), size)]
    if kind == _SEQUENCE:
        sub, bound = detail
        inner = _field_type(sub, nested, owner)
        return Annotated[list[Any], idl_types.sequence(inner, bound or None)]
    raise ConfigurationError(f"{owner}: unsupported field kind {kind!r}")
