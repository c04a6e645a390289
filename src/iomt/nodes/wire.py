"""Conversions between wire messages (iomt.msg IdlStructs) and core events (dataclasses).

The only place the two kinds of types meet: nodes call these at their boundary and hand
the core plain values. Malformed field contents surface as RemoteProtocolError from the
core, never as an exception escaping a callback.
"""

from __future__ import annotations

from iomt.core import replies
from iomt.core.conversion import ConversionOrder
from iomt.core.handshake import DeviceGrant, TokenRequest
from iomt.core.listener import DataRequest
from iomt.core.publish import Envelope
from iomt.core.registration import Announcement, NeighbourEntry
from iomt.core.replies import ReplyStatement
from iomt.msg import (
    ConversionRequest,
    Convert,
    DataShare,
    DeviceInfo,
    DeviceInfoRequest,
    Neighbour,
    Registration,
    SecureEnvelope,
    Time,
)


def time_msg(ns: int) -> Time:
    return Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


def time_ns(t: Time) -> int:
    return int(t.sec) * 1_000_000_000 + int(t.nanosec)


def envelope_to_msg(e: Envelope) -> SecureEnvelope:
    return SecureEnvelope(
        request_id=e.request_id,
        device_uri=e.device_uri,
        sender_uri=e.sender_uri,
        recipient_uri=e.recipient_uri,
        security_technique=e.security_technique,
        seq=e.seq,
        stamp=time_msg(e.stamp_ns),
        key_header=e.key_header,
        ciphertext=e.ciphertext,
        signature_algorithm=e.signature_algorithm,
        signature=e.signature,
        sender_certificate=e.sender_certificate,
        origin_signature=e.origin_signature,
    )


def envelope_from_msg(m: SecureEnvelope) -> Envelope:
    return Envelope(
        m.request_id,
        m.device_uri,
        m.sender_uri,
        m.recipient_uri,
        m.security_technique,
        int(m.seq),
        time_ns(m.stamp),
        bytes(m.key_header),
        bytes(m.ciphertext),
        m.signature_algorithm,
        bytes(m.signature),
        bytes(m.sender_certificate),
        bytes(m.origin_signature),
    )


def data_request_to_msg(r: DataRequest) -> DataShare.Request:
    return DataShare.Request(
        request_id=r.request_id,
        requester_uri=r.requester_uri,
        security_technique=r.technique,
        token=r.token,
        nonce=r.nonce,
        proof_type=r.proof_type,
        proof=r.proof,
        requester_key=r.requester_key,
    )


def data_request_from_msg(m: DataShare.Request) -> DataRequest:
    return DataRequest(
        m.request_id,
        m.requester_uri,
        m.security_technique,
        bytes(m.token),
        bytes(m.nonce),
        m.proof_type,
        bytes(m.proof),
        bytes(m.requester_key),
    )


def announcement_to_msg(a: Announcement) -> Registration:
    return Registration(
        stamp=time_msg(a.stamp_ns),
        device_uri=a.device_uri,
        security_technique=a.security_technique,
        convertible_techniques=list(a.convertible),
        x=a.x,
        y=a.y,
        radio_range=a.radio_range,
        period_ms=round(a.period_s * 1000),
        certificate=a.certificate,
        neighbours=[
            Neighbour(uri=n.uri, security_technique=n.technique, hops=n.hops) for n in a.neighbours
        ],
        signature=a.signature,
    )


def announcement_from_msg(m: Registration) -> Announcement:
    return Announcement(
        m.device_uri,
        m.security_technique,
        tuple(m.convertible_techniques),
        float(m.x),
        float(m.y),
        float(m.radio_range),
        int(m.period_ms) / 1000.0,
        bytes(m.certificate),
        tuple(NeighbourEntry(n.uri, n.security_technique, int(n.hops)) for n in m.neighbours),
        time_ns(m.stamp),
        bytes(m.signature),
    )


def order_to_msg(o: ConversionOrder) -> ConversionRequest:
    return ConversionRequest(
        request_id=o.request_id,
        device_uri=o.device_uri,
        converter_uri=o.converter_uri,
        requester_uri=o.requester_uri,
        requested_technique=o.requested_technique,
        link_technique=o.link_technique,
        policy=o.policy,
        requester_key=o.requester_key,
        payload=o.payload,
        origin_signature=o.origin_signature,
        signature_algorithm=o.signature_algorithm,
        signature=o.signature,
    )


def order_from_msg(m: ConversionRequest) -> ConversionOrder:
    return ConversionOrder(
        m.request_id,
        m.device_uri,
        m.converter_uri,
        m.requester_uri,
        m.requested_technique,
        m.link_technique,
        m.policy,
        bytes(m.requester_key),
        bytes(m.payload),
        bytes(m.origin_signature),
        m.signature_algorithm,
        bytes(m.signature),
    )


def token_request_to_msg(t: TokenRequest) -> DeviceInfoRequest.Request:
    return DeviceInfoRequest.Request(
        wallet_uri=t.wallet_uri,
        provider_uri=t.provider_uri,
        provider_certificate=t.provider_certificate,
        scopes=list(t.scopes),
        nonce=t.nonce,
        proof=t.proof,
    )


def token_request_from_msg(m: DeviceInfoRequest.Request) -> TokenRequest:
    return TokenRequest(
        m.wallet_uri,
        m.provider_uri,
        bytes(m.provider_certificate),
        tuple(m.scopes),
        bytes(m.nonce),
        bytes(m.proof),
    )


def grant_to_msg(g: DeviceGrant) -> DeviceInfo:
    return DeviceInfo(
        uri=g.uri,
        security_technique=g.technique,
        kind=g.kind,
        token=g.token,
        device_certificate=g.device_certificate,
    )


def grant_from_msg(m: DeviceInfo) -> DeviceGrant:
    return DeviceGrant(
        m.uri, m.security_technique, int(m.kind), bytes(m.token), bytes(m.device_certificate)
    )


# -- what a reply's proof covers, from the reply as it travels (iomt.core.replies) ----------


def data_share_statement(
    server: str, request_digest: bytes, resp: DataShare.Response
) -> ReplyStatement:
    return replies.data_share_statement(
        server,
        request_digest,
        int(resp.status),
        str(resp.reason),
        str(resp.converter_uri),
        envelope_from_msg(resp.envelope),
    )


def device_info_statement(
    server: str, request_digest: bytes, resp: DeviceInfoRequest.Response
) -> ReplyStatement:
    return replies.device_info_statement(
        server,
        request_digest,
        int(resp.status),
        str(resp.reason),
        (grant_from_msg(d) for d in resp.devices),
    )


def convert_statement(server: str, request_digest: bytes, resp: Convert.Response) -> ReplyStatement:
    return replies.convert_statement(server, request_digest, int(resp.status), str(resp.reason))
