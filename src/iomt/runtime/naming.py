"""ROS 2 names and their DDS mangling (rmw_cyclonedds_cpp conventions).

ROS names (``/ns/node``, ``/ns/topic``) are validated and expanded the way rcl does
(relative names resolve against the node namespace, ``~`` against the node's fully
qualified name); topic, service and type names are then mangled to what travels in DDS
discovery:

    topic   /a/b            -> rt/a/b
    service /a/s            -> rq/a/sRequest  +  rr/a/sReply
    type    pkg/msg/Name    -> pkg::msg::dds_::Name_
    type    pkg/srv/Name    -> pkg::srv::dds_::Name_Request_ / Name_Response_
"""

from __future__ import annotations

import re
from enum import Enum

from iomt.errors import ConfigurationError

_NODE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_TOKEN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

TOPIC_PREFIX = "rt"
REQUEST_PREFIX = "rq"
REPLY_PREFIX = "rr"


class EndpointKind(Enum):
    TOPIC = "topic"
    SERVICE_REQUEST = "request"
    SERVICE_REPLY = "reply"


def validate_node_name(name: str) -> str:
    if not _NODE_NAME.match(name):
        raise ConfigurationError(f"invalid node name {name!r}: use [A-Za-z_][A-Za-z0-9_]*")
    return name


def validate_namespace(namespace: str) -> str:
    """Normalize a namespace: absolute, no trailing slash ("/" is the root)."""
    ns = namespace or "/"
    if not ns.startswith("/"):
        ns = "/" + ns
    if ns != "/" and ns.endswith("/"):
        ns = ns.rstrip("/")
    if ns != "/":
        for token in ns[1:].split("/"):
            if not _TOKEN.match(token):
                raise ConfigurationError(f"invalid namespace {namespace!r}: bad token {token!r}")
    return ns


def node_fqn(namespace: str, name: str) -> str:
    ns = validate_namespace(namespace)
    return f"/{validate_node_name(name)}" if ns == "/" else f"{ns}/{name}"


def expand_topic_name(name: str, *, node_name: str, namespace: str) -> str:
    """Expand a topic or service name as rcl_expand_topic_name does (without substitutions)."""
    if not name:
        raise ConfigurationError("empty topic name")
    ns = validate_namespace(namespace)
    if name.startswith("~"):
        rest = name[1:].lstrip("/")
        fq = node_fqn(ns, node_name)
        expanded = fq if not rest else f"{fq}/{rest}"
    elif name.startswith("/"):
        expanded = name
    else:
        expanded = f"/{name}" if ns == "/" else f"{ns}/{name}"
    if expanded != "/" and expanded.endswith("/"):
        raise ConfigurationError(f"invalid topic name {name!r}: trailing '/'")
    for token in expanded[1:].split("/"):
        if not _TOKEN.match(token):
            raise ConfigurationError(f"invalid topic name {name!r}: bad token {token!r}")
    return expanded


def topic_to_dds(fq_topic: str) -> str:
    return f"{TOPIC_PREFIX}{fq_topic}"


def service_to_dds(fq_service: str) -> tuple[str, str]:
    """(request topic, reply topic) for a fully qualified service name."""
    return f"{REQUEST_PREFIX}{fq_service}Request", f"{REPLY_PREFIX}{fq_service}Reply"


def demangle_topic(dds_name: str) -> tuple[EndpointKind, str] | None:
    """Map a DDS topic name back to (kind, ROS name); None for non-ROS topics."""
    if dds_name.startswith(TOPIC_PREFIX + "/"):
        return EndpointKind.TOPIC, dds_name[len(TOPIC_PREFIX) :]
    if dds_name.startswith(REQUEST_PREFIX + "/") and dds_name.endswith("Request"):
        return EndpointKind.SERVICE_REQUEST, dds_name[len(REQUEST_PREFIX) : -len("Request")]
    if dds_name.startswith(REPLY_PREFIX + "/") and dds_name.endswith("Reply"):
        return EndpointKind.SERVICE_REPLY, dds_name[len(REPLY_PREFIX) : -len("Reply")]
    return None


def ros_type_to_dds(ros_type: str, suffix: str = "") -> str:
    """``pkg/msg/Name`` -> ``pkg::msg::dds_::Name_`` (``suffix`` e.g. ``_Request``)."""
    parts = ros_type.split("/")
    if len(parts) != 3:
        raise ConfigurationError(f"invalid interface type {ros_type!r}: expected pkg/msg/Name")
    pkg, kind, name = parts
    return f"{pkg}::{kind}::dds_::{name}{suffix}_"


def dds_type_to_ros(dds_type: str) -> str:
    """``pkg::msg::dds_::Name_`` -> ``pkg/msg/Name``; services map to ``pkg/srv/Name``."""
    parts = dds_type.split("::")
    if len(parts) == 4 and parts[2] == "dds_" and parts[3].endswith("_"):
        name = parts[3][:-1]
        for suffix in ("_Request", "_Response"):
            if parts[1] == "srv" and name.endswith(suffix):
                name = name[: -len(suffix)]
        return f"{parts[0]}/{parts[1]}/{name}"
    return dds_type
