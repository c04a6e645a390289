"""Waitable: anything the executor waits on (subscriptions, services, clients)."""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from typing import Any

log = logging.getLogger(__name__)

# Samples taken per wake-up of one entity; the rest stay queued and re-trigger the wait,
# so one busy topic cannot starve the others.
TAKE_BATCH = 32


class Waitable(ABC):
    """An entity with a DDS condition; ``execute`` runs on the executor's thread."""

    condition: Any
    #: held by several nodes of the process (iomt.runtime.shared): a node that goes leaves
    #: it to the others, and it is destroyed with its last handle, not with a node
    shared: bool = False

    @abstractmethod
    def execute(self) -> None:
        """Take what is ready and dispatch it to callbacks; never raises."""

    def destroy(self) -> None:  # noqa: B027 - optional hook
        """Release DDS entities."""
