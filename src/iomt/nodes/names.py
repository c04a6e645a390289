"""Names of the paper-1 nodes: a party's URI, and the DDS name its node has."""

from __future__ import annotations

from iomt.errors import ConfigurationError


def uri_of(facility: str, name: str) -> str:
    return f"iomt://{facility}/{name}"


def fqn_of(uri: str) -> str:
    """``iomt://ward1/dev_3`` -> ``/ward1/dev_3`` (nodes live in their facility's namespace)."""
    if not uri.startswith("iomt://"):
        raise ConfigurationError(f"not an iomt URI: {uri!r}")
    return "/" + uri[len("iomt://") :].strip("/")
