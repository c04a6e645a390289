"""The paper's case study (Bilal & Hassan, Fig. 2) as running nodes, narrated from the bus.

Launches the ``case_study`` topology (a patient's heart-rate sensor that cannot encrypt,
their ECC blood-pressure cuff, another patient's CP-ABE ventilator at the bedside, the
patient's wallet and Dr House) as separate processes, and a narrator in this process: a
bag recorder that also tells, as each sample arrives on DDS, what it is in the paper's
terms — token request, tokens, data request, conversion (with the plaintext an incapable
device puts on its one hop), the sealed and signed envelope — and finally prints the
vitals Dr House decrypted, as the FHIR Observations he stored.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from iomt.capture.interfaces import ChannelType
from iomt.capture.recorder import Recorder
from iomt.errors import TransportError
from iomt.launch.provision import provision
from iomt.launch.service import LaunchService
from iomt.msg import Vitals
from iomt.runtime import Context, Executor
from iomt.topology import load
from iomt.topology.params import RecorderParams

REQUEST, RESPONSE = 1, 2
Say = Callable[[str, str, str], None]  # (who, arrow text, what)


def _short(uri: str) -> str:
    return uri.rsplit("/", 1)[-1] if uri else "?"


def _vitals_text(cdr: bytes) -> str:
    try:
        v = Vitals.deserialize(cdr)
    except Exception:
        return f"{len(cdr)} B"
    if v.kind == Vitals.KIND_HEART_RATE:
        return f"heart rate {v.heart_rate_bpm:.1f} /min (#{v.seq})"
    return f"blood pressure {v.systolic_mmhg:.0f}/{v.diastolic_mmhg:.0f} mm[Hg] (#{v.seq})"


class Narrator(Recorder):
    """Records the case study to a bag and narrates each sample as it is written."""

    def __init__(
        self, *, context: Context, output: Path, say: Say, expect: Sequence[Sequence[str]] = ()
    ) -> None:
        config = RecorderParams(output=str(output), expect=tuple((n, t) for n, t in expect))
        super().__init__(context, name="narrator", namespace="/iomt", config=config)
        self._say = say
        self._announced: set[str] = set()
        # Samples of different topics are taken in whatever order the waitset reports
        # them; told in the order they were sent (DDS source timestamps), after a short
        # reordering delay, the story follows cause and effect.
        self._sent_ns = 0
        self._story: list[tuple[int, int, str, str, str]] = []
        self._told = 0
        self.create_timer(0.05, self._tell)

    def _on_topic_sample(self, channel: Any, cdr: bytes, info: Any) -> None:
        self._sent_ns = int(getattr(info, "source_timestamp", 0)) or time.time_ns()
        super()._on_topic_sample(channel, cdr, info)

    def _on_service_sample(
        self, channel: Any, dds_topic: str, is_request: bool, cdr: bytes, info: Any
    ) -> None:
        self._sent_ns = int(getattr(info, "source_timestamp", 0)) or time.time_ns()
        super()._on_service_sample(channel, dds_topic, is_request, cdr, info)

    def _queue(self, who: str, what: str, detail: str) -> None:
        self._told += 1
        self._story.append((self._sent_ns, self._told, who, what, detail))

    def _tell(self, *, everything: bool = False) -> None:
        horizon = time.time_ns() - 200_000_000
        self._story.sort()
        while self._story and (everything or self._story[0][0] < horizon):
            _, _, who, what, detail = self._story.pop(0)
            self._say(who, what, detail)

    def close(self) -> Any:
        stats = super().close()
        self._tell(everything=True)
        return stats

    def _write(
        self, topic: str, channel: ChannelType, time_ns: int, data: bytes, qos: Sequence[Any]
    ) -> bool:
        ok = super()._write(topic, channel, time_ns, data, qos)
        try:
            msg = self.types.store.deserialize_cdr(data, channel.name)
        except Exception:
            return ok
        try:
            self._narrate(topic, channel.name, msg)
        except Exception as exc:  # narration must never stop the recording
            self._queue("narrator", "!", f"could not narrate {channel.name}: {exc}")
        return ok

    def _narrate(  # noqa: PLR0912  (one narration per message kind)
        self, topic: str, msgtype: str, msg: Any
    ) -> None:
        say = self._queue
        # /ward1/<node>/<service>/_service_event: the node that serves it
        target = topic.rsplit("/", 3)[-3] if topic.endswith("_service_event") else ""
        if msgtype == "iomt_interfaces/msg/Registration":
            if msg.device_uri not in self._announced:
                self._announced.add(msg.device_uri)
                say(
                    _short(msg.device_uri),
                    "announces",
                    f"Alg. 2.1: technique "
                    f"{msg.security_technique}, can convert to "
                    f"{', '.join(msg.convertible_techniques) or 'nothing'}; signed",
                )
            return
        if msgtype == "iomt_interfaces/msg/SecureEnvelope":
            origin = (
                f", origin signature by {_short(msg.device_uri)}"
                if len(msg.origin_signature)
                else ""
            )
            say(
                f"{_short(msg.sender_uri)} → {_short(msg.recipient_uri)}",
                "inbox",
                f"publish: envelope of {_short(msg.device_uri)}'s reading, "
                f"{msg.security_technique}, {len(msg.ciphertext)} B ciphertext, "
                f"key header {len(msg.key_header)} B, {msg.signature_algorithm} "
                f"signature{origin}",
            )
            return
        if not msgtype.endswith("_Event"):
            return
        kind = msg.info.event_type
        if msgtype == "iomt_interfaces/srv/DeviceInfoRequest_Event":
            for r in msg.request:
                say(
                    f"{_short(r.provider_uri)} → {_short(r.wallet_uri)}",
                    "token request",
                    f"Alg. 1.1: X.509 certificate {len(r.provider_certificate)} B, scopes "
                    f"{list(r.scopes)}, nonce, signature {len(r.proof)} B",
                )
            for r in msg.response:
                devices = ", ".join(
                    f"{_short(d.uri)} [{d.security_technique}] token {len(d.token)} B"
                    for d in r.devices
                )
                say(
                    f"{target} → provider",
                    "tokens",
                    f"Alg. 1.2: {devices}" if r.status == 0 else f"refused: {r.reason}",
                )
        elif msgtype == "iomt_interfaces/srv/SessionHandshake_Event":
            for r in msg.request:
                say(
                    f"{_short(r.initiator_uri)} → {target}",
                    "session",
                    f"handshake message ({len(r.message)} B, SIGMA-I over X25519)",
                )
        elif msgtype == "iomt_interfaces/srv/DataShare_Event":
            for r in msg.request:
                say(
                    f"{_short(r.requester_uri)} → {target}",
                    "data request",
                    f"Alg. 1.3: technique {r.security_technique}, token {len(r.token)} B, "
                    f"proof by {r.proof_type}",
                )
            for r in msg.response:
                if r.status == 0:
                    e = r.envelope
                    say(
                        f"{target} → {_short(e.recipient_uri)}",
                        "shared",
                        f"Alg. 2.2: envelope {e.security_technique}, {len(e.ciphertext)} B "
                        f"ciphertext, {e.signature_algorithm}",
                    )
                elif r.status == 1:
                    say(
                        f"{target} → provider",
                        "converting",
                        f"Alg. 2.2: cannot apply it here; {_short(r.converter_uri)} converts",
                    )
                else:
                    say(f"{target} → provider", "refused", r.reason)
        elif msgtype == "iomt_interfaces/srv/Convert_Event":
            for r in msg.request:
                o = r.request
                hop = (
                    f"plaintext on this one hop: {_vitals_text(bytes(o.payload))}"
                    if o.link_technique == "none"
                    else f"reading protected by the {o.link_technique} link"
                )
                say(
                    f"{_short(o.device_uri)} → {_short(o.converter_uri)}",
                    "conversion",
                    f"Alg. 3: to {o.requested_technique} for {_short(o.requester_uri)}; "
                    f"{hop}; signed by the device",
                )
            for r in msg.response:
                say(
                    f"{target}",
                    "converted" if r.status == 0 else "refused",
                    "published to the requester's inbox" if r.status == 0 else r.reason,
                )
        _ = kind


def run_case_study(
    *,
    run_dir: Path,
    domain_id: int | None = None,
    dds_config: str | None = None,
    say: Say,
    timeout_s: float = 60.0,
) -> dict[str, Any]:
    plan = load("case_study", run_dir=str(run_dir), record=False)
    provision(plan)
    ctx = Context(domain_id=domain_id, dds_config_name=dds_config)
    narrator = Narrator(context=ctx, output=run_dir / "bag", say=say, expect=plan.facts["expect"])
    executor = Executor(ctx)
    executor.add_node(narrator)
    executor.spin_in_thread("narrator")
    results = run_dir / "results" / "dr_house.jsonl"
    try:
        with LaunchService(
            plan, run_dir=run_dir, domain_id=domain_id, dds_config=dds_config
        ) as service:
            service.start(ready_timeout_s=60)
            deadline = time.monotonic() + timeout_s
            while True:
                done = (
                    [json.loads(line) for line in results.read_text().splitlines() if line.strip()]
                    if results.exists()
                    else []
                )
                if len(done) >= 3:
                    break
                if time.monotonic() > deadline:
                    raise TransportError("the case study did not finish in time")
                if service.dead():
                    dead = service.dead()[0]
                    raise TransportError(f"{dead.spec.name} died:\n{dead.log_tail()}")
                time.sleep(0.1)
            time.sleep(0.3)  # let the last samples reach the narrator
            service.stop()
    finally:
        executor.shutdown()
        narrator.close()
        executor.close()
        ctx.shutdown()
    fhir_path = run_dir / "fhir" / "dr_house.json"
    observations = json.loads(fhir_path.read_text())["entry"] if fhir_path.exists() else []
    return {
        "requests": done,
        "observations": [e["resource"] for e in observations],
        "bag": str(run_dir / "bag"),
        "fhir": str(fhir_path),
    }
