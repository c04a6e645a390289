"""A non-iomt ROS 2 peer: plain cyclonedds writers with a hand-declared std_msgs/msg/String.

    python tests/capture/foreign_peer.py DOMAIN TEXT

Prints READY, waits until a reader matches, writes one String on rt/t/chatter, prints SENT,
then stays until it is terminated (so the sample is not lost with its writer).
"""

from __future__ import annotations

import sys
import time

from cyclonedds.idl import make_idl_struct
from cyclonedds.idl.annotations import final
from cyclonedds.pub import DataWriter
from cyclonedds.topic import Topic

from iomt.runtime import Context, qos_profile_default

String = final(make_idl_struct("String", "std_msgs::msg::dds_::String_", {"data": str}))


def main() -> None:
    ctx = Context(domain_id=int(sys.argv[1]))  # the participant, with iomt's loopback config
    qos = qos_profile_default.to_dds()
    writer = DataWriter(
        ctx.participant, Topic(ctx.participant, "rt/t/chatter", String, qos=qos), qos=qos
    )
    print("READY", flush=True)
    deadline = time.monotonic() + 30
    while not writer.get_matched_subscriptions() and time.monotonic() < deadline:
        time.sleep(0.05)
    writer.write(String(data=sys.argv[2]))
    print("SENT", flush=True)
    while True:
        time.sleep(1)


if __name__ == "__main__":
    main()
