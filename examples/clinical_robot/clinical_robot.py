"""A clinical robot reads its patient's vitals from an iomt ward and republishes them.

A plain rclpy node, written as a robotics engineer writes one; iomt contributes only its
sans-IO library (``iomt.core``, ``iomt.crypto``), no iomt runtime or node:

1. it asks the patient's wallet for the patient's devices and a token per device
   (Bilal & Hassan Alg. 1.1: ``<ward>/<wallet>/device_info``, a signed token request
   carrying the robot's certificate from the facility CA);
2. it asks each device for a reading sealed for the robot (Alg. 1.3: ``<ward>/<device>/
   data_share`` with the token and a proof of possession of the token's key). A device
   that can seal answers with a signed envelope; one that cannot encrypt has a capable
   neighbour convert it (Alg. 3), and that envelope arrives on ``<ward>/<robot>/inbox``;
3. every reply is checked first: it must carry the proof of the server the robot called
   for the request it sent (``iomt.core.replies``: the wallet's signature, the device's)
   -- anyone on the bus can write a reply carrying a request's header, and rclpy takes
   the first one, so a reply without it only fails that call and the robot asks again;
   every envelope is verified (signature, certificate chain, origin signature of a
   converted reading) and opened with the robot's key before anything is used;
4. the readings go out on standard topics for the robot's other nodes:
   ``/<patient>/vitals/heart_rate`` (``std_msgs/msg/Float32``, beats/min) and
   ``/<patient>/vitals/blood_pressure/systolic`` / ``.../diastolic`` (mm[Hg]).

    ros2 run ... or:  python clinical_robot.py --ros-args -p keystore:=RUN/keystore \\
        -p identity:=robot_0 -p wallet:=wallet_0 -p facility:=ward1

The robot's identity must be provisioned in the facility's keystore, with the attributes of
a care-team member, and the patient must consent to it (``iomt launch scale_10 ...
--robots 1`` provisions ``robot_0`` on patient 0's care team).
"""

from __future__ import annotations

import sys
import time
from typing import Any

import rclpy
from iomt_interfaces.msg import DeviceInfo, SecureEnvelope, Vitals
from iomt_interfaces.srv import DataShare, DeviceInfoRequest
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile
from rclpy.serialization import deserialize_message
from std_msgs.msg import Float32

from iomt.core.channels import ChannelTable
from iomt.core.handshake import DeviceGrant
from iomt.core.provider import ProviderCore
from iomt.core.publish import Envelope
from iomt.core.replies import (
    ReplyChecker,
    data_share_digest,
    data_share_statement,
    device_info_digest,
    device_info_statement,
)
from iomt.crypto.keystore import Keystore
from iomt.errors import IomtError

KIND_HEART_RATE = 0


class ClinicalRobot(Node):
    def __init__(self) -> None:
        super().__init__("clinical_robot")
        keystore = self.declare_parameter("keystore", "").value
        identity_name = self.declare_parameter("identity", "robot_0").value
        self.facility = self.declare_parameter("facility", "ward1").value
        wallet = self.declare_parameter("wallet", "wallet_0").value
        self.technique = self.declare_parameter("technique", "ecc").value
        period = float(self.declare_parameter("period_s", 1.0).value)

        ks = Keystore.open(keystore)
        me = ks.identity(identity_name)
        check = ks.credential_validator()
        self.replies = ReplyChecker(check)  # who answered, and to what
        self.core = ProviderCore(
            me.uri,
            signer=me.signer,
            certificate=ks.certificate_der(identity_name),
            encryption_key=me.encryption_key,
            attribute_key=me.attribute_key,
            channels=ChannelTable(me.handshake_identity(), check),
            check_certificate=check,
        )
        self.wallet_uri = f"iomt://{self.facility}/{wallet}"
        self.wallet = self.create_client(
            DeviceInfoRequest, f"/{self.facility}/{wallet}/device_info"
        )
        self.devices: dict[str, Any] = {}  # device uri -> its data_share client
        self.waiting: set[str] = set()  # request ids not answered yet
        self.publishers_: dict[str, Any] = {}
        # Converters publish an incapable device's reading here (iomt's inbox QoS).
        self.create_subscription(
            SecureEnvelope,
            f"/{self.facility}/{identity_name}/inbox",
            self.on_envelope,
            QoSProfile(history=HistoryPolicy.KEEP_ALL),
        )
        self.asked = self.granted = False
        self.asked_at = 0.0
        self.wallet_future: Any = None
        # A reply can be lost to the service race of ROS 2 (the request reached the wallet
        # before the wallet's side discovered this client's reply reader): ask again.
        self.wallet_patience_s = max(5 * period, 2.0)
        self.create_timer(period, self.tick)

    # -- Alg. 1.1 ------------------------------------------------------------------------

    def tick(self) -> None:
        if not self.granted:
            waited = time.monotonic() - self.asked_at
            if self.asked and waited > self.wallet_patience_s:
                self.get_logger().warning(f"no answer from the wallet in {waited:.1f} s; again")
                self.asked = False
            if not self.asked and self.wallet.service_is_ready():
                self.asked = True
                self.asked_at = time.monotonic()
                self.ask_wallet()
            return
        for uri, client in self.devices.items():
            if client.service_is_ready():
                self.ask_device(uri, client)

    def ask_wallet(self) -> None:
        t = self.core.token_request(self.wallet_uri)
        self.wallet_request = device_info_digest(t)
        request = DeviceInfoRequest.Request(
            wallet_uri=t.wallet_uri,
            provider_uri=t.provider_uri,
            provider_certificate=list(t.provider_certificate),
            scopes=list(t.scopes),
            nonce=list(t.nonce),
            proof=list(t.proof),
        )
        self.wallet_future = self.wallet.call_async(request)
        self.wallet_future.add_done_callback(self.on_grants)

    def on_grants(self, future: Any) -> None:
        if future is not self.wallet_future or self.granted:
            return  # an answer to an earlier ask, or tokens already held
        response = future.result()
        grants = [grant_of(d) for d in response.devices]
        statement = device_info_statement(
            self.wallet_uri.rsplit("/", 1)[1],
            self.wallet_request,
            int(response.status),
            response.reason,
            grants,
        )
        if not self.replies.accepts(bytes(response.proof), statement):
            self.get_logger().warning("a reply not proven to be the wallet's; asking again")
            self.asked = False
            return
        if response.status != DeviceInfoRequest.Response.STATUS_OK:
            self.get_logger().error(f"the wallet refused: {response.reason}")
            self.asked = False
            return
        self.granted = True
        for grant in self.core.accept_grants(grants):
            name = grant.uri.rsplit("/", 1)[1]
            self.devices[grant.uri] = self.create_client(
                DataShare, f"/{self.facility}/{name}/data_share"
            )
        self.get_logger().info(f"tokens for {sorted(self.devices)}")

    # -- Alg. 1.3 ------------------------------------------------------------------------

    def ask_device(self, uri: str, client: Any) -> None:
        r = self.core.data_request(uri, self.technique)
        request = DataShare.Request(
            request_id=r.request_id,
            requester_uri=r.requester_uri,
            security_technique=r.technique,
            token=list(r.token),
            nonce=list(r.nonce),
            proof_type=r.proof_type,
            proof=list(r.proof),
            requester_key=list(r.requester_key),
        )
        self.waiting.add(r.request_id)
        digest = data_share_digest(r)
        client.call_async(request).add_done_callback(
            lambda f, rid=r.request_id, u=uri, d=digest: self.on_answer(rid, u, d, f)
        )

    def on_answer(self, request_id: str, uri: str, digest: bytes, future: Any) -> None:
        answer = future.result()
        statement = data_share_statement(
            uri.rsplit("/", 1)[1],
            digest,
            int(answer.status),
            answer.reason,
            answer.converter_uri,
            envelope_of(answer.envelope),
        )
        # signed by the device, with the key its grant certified
        if not self.replies.accepts(bytes(answer.proof), statement, key=self.core.device_key(uri)):
            self.waiting.discard(request_id)
            self.core.forget(request_id)
            self.get_logger().warning(f"a reply not proven to be {uri}'s: ignored")
            return
        if answer.status == DataShare.Response.STATUS_SHARED:
            self.on_envelope(answer.envelope)
        elif answer.status == DataShare.Response.STATUS_REFUSED:
            self.waiting.discard(request_id)
            self.core.forget(request_id)
            self.get_logger().warning(f"refused: {answer.reason}")
        # STATUS_CONVERTING: the converter's envelope comes on the inbox

    def on_envelope(self, msg: SecureEnvelope) -> None:
        if msg.request_id not in self.waiting:
            return  # not ours, or already answered
        try:
            got = self.core.receive(envelope_of(msg))
        except IomtError as exc:  # forged, tampered, or not for us: never used
            self.get_logger().warning(f"rejected an envelope: {exc}")
            return
        self.waiting.discard(msg.request_id)
        vitals = deserialize_message(got.reading_cdr, Vitals)
        self.republish(vitals, converted=got.converted)

    # -- to the robot's other nodes ------------------------------------------------------

    def republish(self, v: Vitals, *, converted: bool) -> None:
        patient = (v.patient_id or "unknown").replace("-", "_")
        if v.kind == KIND_HEART_RATE:
            self.out(f"/{patient}/vitals/heart_rate", v.heart_rate_bpm)
        else:
            self.out(f"/{patient}/vitals/blood_pressure/systolic", v.systolic_mmhg)
            self.out(f"/{patient}/vitals/blood_pressure/diastolic", v.diastolic_mmhg)
        how = "via a converter" if converted else "from the device"
        self.get_logger().info(f"{v.device_uri} #{v.seq} {how}")

    def out(self, topic: str, value: float) -> None:
        pub = self.publishers_.get(topic)
        if pub is None:
            pub = self.publishers_[topic] = self.create_publisher(Float32, topic, 10)
        pub.publish(Float32(data=float(value)))


def grant_of(d: DeviceInfo) -> DeviceGrant:
    return DeviceGrant(
        d.uri, d.security_technique, int(d.kind), bytes(d.token), bytes(d.device_certificate)
    )


def envelope_of(m: SecureEnvelope) -> Envelope:
    return Envelope(
        m.request_id,
        m.device_uri,
        m.sender_uri,
        m.recipient_uri,
        m.security_technique,
        int(m.seq),
        int(m.stamp.sec) * 1_000_000_000 + int(m.stamp.nanosec),
        bytes(m.key_header),
        bytes(m.ciphertext),
        m.signature_algorithm,
        bytes(m.signature),
        bytes(m.sender_certificate),
        bytes(m.origin_signature),
    )


def main(args: list[str] | None = None) -> int:
    rclpy.init(args=args)
    robot = ClinicalRobot()
    try:
        rclpy.spin(robot)
    except KeyboardInterrupt:
        pass
    finally:
        robot.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
