"""Run under the ROS 2 interpreter: the rclpy runtime's converters against rclpy's own CDR.

For every iomt message type and service part, values drawn per field type (as in
test_ros2_topics.py): converting to the rclpy class and serializing with rclpy must give
what iomt decodes back to the same value, and converting back must give the value.
Prints one JSON line: {"checked": N, "failures": [...]}.
"""

from __future__ import annotations

import dataclasses
import json
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rclpy.serialization import deserialize_message, serialize_message

import iomt.msg
from iomt.runtime.rclpy_runtime import from_ros, ros_message_class, to_ros
from msg.msg_values import canonical, to_cdds
from ros2.test_ros2_topics import sample


def names() -> list[str]:
    out = []
    for record in iomt.msg.all_interfaces():
        if not record.name.startswith("iomt_interfaces/"):
            continue
        if isinstance(record, iomt.msg.ServiceInfo):
            out += [record.request.name, record.response.name]
        else:
            out.append(record.name)
    return out


def ros_class(name: str) -> object:
    package, kind, short = name.split("/")
    if kind == "msg":
        return ros_message_class(iomt.msg.get_message_type(name))
    service, part = short.rsplit("_", 1)
    module = __import__(f"{package}.srv", fromlist=[service])
    return getattr(getattr(module, service), part)


def integral(value: object) -> object:
    """``value`` with every float field, at any depth, holding the int nearest it.

    Python code hands ints to float fields (``round()`` returns one); rclpy's C layer,
    built with assertions, aborts the process on them unless the converter coerces.
    """
    if isinstance(value, list):
        return [integral(v) for v in value]
    if not dataclasses.is_dataclass(value) or isinstance(value, type):
        return value
    changes = {}
    for field in dataclasses.fields(value):
        inner = getattr(value, field.name)
        changes[field.name] = round(inner) if isinstance(inner, float) else integral(inner)
    return dataclasses.replace(value, **changes)


def main() -> int:
    rng = random.Random(7)
    checked, failures = 0, []
    for name in names():
        cls = ros_class(name)
        iomt_type = iomt.msg.message_info(name).type
        for _ in range(20):
            value = to_cdds(name, sample(name, rng))
            ros = to_ros(value, cls)
            back = iomt_type.deserialize(serialize_message(ros))
            again = from_ros(ros, iomt_type)
            via_cdr = from_ros(deserialize_message(value.serialize(), cls), iomt_type)
            for label, got in (("cdr", back), ("from_ros", again), ("rclpy-cdr", via_cdr)):
                if canonical(name, got) != canonical(name, value):
                    failures.append(f"{name} {label}")
            ints = integral(value)
            as_floats = iomt_type.deserialize(ints.serialize())
            coerced = iomt_type.deserialize(serialize_message(to_ros(ints, cls)))
            if canonical(name, coerced) != canonical(name, as_floats):
                failures.append(f"{name} ints in float fields")
            checked += 1
    try:  # a float in an integer field: a Python error, not an abort in rclpy's C layer
        to_ros(iomt.msg.Vitals(seq=1.5), ros_class("iomt_interfaces/msg/Vitals"))  # type: ignore[arg-type]
        failures.append("Vitals: a float in seq was accepted")
    except TypeError:
        pass
    print(json.dumps({"checked": checked, "types": len(names()), "failures": failures}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
