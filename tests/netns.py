"""Hosts of a test's own: network namespaces joined by a bridge, removed afterwards.

Addresses exist only inside the namespaces the test creates (10.<x>.<y>.0/24, chosen per
test); nothing reaches the machine's real interfaces. Needs root and iproute2 (CI has
both); otherwise the tests that need it are skipped with that reason.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

import pytest


def available() -> str | None:
    """Why namespaces cannot be made here, or None."""
    if shutil.which("ip") is None:
        return "iproute2's ip is not installed"
    if os.geteuid() != 0:
        return "network namespaces need root"
    return None


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


@dataclass(frozen=True)
class Lan:
    namespaces: tuple[str, ...]
    addresses: tuple[str, ...]
    bridge: str
    links: tuple[str, ...]  # the bridge-side end of each namespace's cable

    def exec_prefix(self, i: int) -> list[str]:
        """Run a command on host ``i``: ``[*lan.exec_prefix(i), "python", ...]``."""
        return ["ip", "netns", "exec", self.namespaces[i]]

    def cut(self, i: int) -> None:
        """Pull host ``i``'s cable out of the switch."""
        _ip("link", "set", self.links[i], "down")

    def restore(self, i: int) -> None:
        _ip("link", "set", self.links[i], "up")


@contextlib.contextmanager
def lan(hosts: int) -> Iterator[Lan]:
    reason = available()
    if reason is not None:
        pytest.skip(reason)
    tag = f"{random.SystemRandom().randrange(16**5):05x}"
    net = f"10.{random.SystemRandom().randint(64, 127)}.{random.SystemRandom().randint(1, 254)}"
    bridge = f"iomtb{tag}"
    namespaces = tuple(f"iomt-{tag}-{i}" for i in range(hosts))
    links = tuple(f"iomt{tag}v{i}" for i in range(hosts))
    addresses = tuple(f"{net}.{i + 1}" for i in range(hosts))
    made: list[tuple[str, str]] = []
    try:
        _ip("link", "add", bridge, "type", "bridge")
        made.append(("link", bridge))
        _ip("link", "set", bridge, "up")
        for ns, link, addr in zip(namespaces, links, addresses, strict=True):
            _ip("netns", "add", ns)
            made.append(("netns", ns))
            peer = f"{link}p"
            _ip("link", "add", link, "type", "veth", "peer", "name", peer)
            made.append(("link", link))
            _ip("link", "set", peer, "netns", ns)
            _ip("link", "set", link, "master", bridge)
            _ip("link", "set", link, "up")
            _ip("-n", ns, "addr", "add", f"{addr}/24", "dev", peer)
            _ip("-n", ns, "link", "set", peer, "up")
            _ip("-n", ns, "link", "set", "lo", "up")
            # DDS discovers by SPDP multicast on a LAN
            _ip("-n", ns, "route", "add", "224.0.0.0/4", "dev", peer)
        yield Lan(namespaces, addresses, bridge, links)
    finally:
        for kind, name in reversed(made):
            with contextlib.suppress(subprocess.CalledProcessError):
                if kind == "netns":
                    _ip("netns", "del", name)
                else:
                    _ip("link", "del", name)


@contextlib.contextmanager
def isolated() -> Iterator[list[str]]:
    """A network namespace of its own with only loopback up: DDS traffic inside it cannot
    meet another test run's, whatever domain either picks. Yields the command prefix that
    runs a program in it."""
    reason = available()
    if reason is not None:
        pytest.skip(reason)
    name = f"iomt-iso-{random.SystemRandom().randrange(16**6):06x}"
    _ip("netns", "add", name)
    try:
        _ip("-n", name, "link", "set", "lo", "up")
        yield ["ip", "netns", "exec", name]
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            _ip("netns", "del", name)
