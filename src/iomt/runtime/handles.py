"""What the embedded runtime's entities and executor see of their Context.

``DdsPublisher``, ``DdsSubscription``, ``DdsService``, ``DdsClient`` and the ``Executor``
are made by ``iomt.runtime.context.Context`` and use four of its members; naming them here
as a Protocol keeps the entities from importing the module that makes them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from cyclonedds.domain import DomainParticipant
    from cyclonedds.topic import Topic

    from iomt.runtime.qos import QoSProfile


class DdsContext(Protocol):
    """A process's DDS domain participant, with its topics and client/service ids."""

    @property
    def participant(self) -> DomainParticipant: ...

    @property
    def ok(self) -> bool:
        """False once shut down (an executor's ``spin`` stops)."""
        ...

    def topic(self, dds_name: str, data_type: type, qos: QoSProfile) -> Topic[Any]:
        """The participant's one topic of that name and type (made on first use)."""
        ...

    def next_client_service_id(self) -> bytes:
        """16 bytes naming a new client or service, unique in the DDS domain."""
        ...
