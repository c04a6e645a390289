"""What a reply proof costs per request, against the wire work every reply does anyway.

    python bench/bench_reply_proof.py [--json] [--n 20000]

Every ``DataShare`` answer carries a proof (``iomt.core.replies``): the device builds the
statement (the request's digest, the envelope as it travels) and MACs it under the session;
the provider rebuilds the statement and checks the MAC. This times both sides with the
objects a run uses (a CWT-sized token, a sealed envelope, an HMAC-SHA256 session key) and,
in the same invocation, the baseline every reply pays without a proof: encoding the
response to CDR and decoding it again. Median µs over ``--n`` iterations, 5 rounds.

Why it exists: the proof was suspected of a fifth of a request's CPU at 400 devices (a
same-invocation A/B of the code before and after proofs); a request costs ~1 ms of CPU
summed over the processes, so this says how much of that the proof can be.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import timeit
from collections.abc import Callable
from typing import Any

from iomt.core.listener import DataRequest
from iomt.core.publish import Envelope
from iomt.core.replies import KIND_MAC, ReplyChecker, ReplyProof, data_share_digest
from iomt.crypto.signing import HmacSha256Key
from iomt.msg import DataShare
from iomt.nodes import wire


def _median_us(fn: Callable[[], Any], n: int) -> float:
    return statistics.median(timeit.repeat(fn, number=n, repeat=5)) / n * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.n < 1:
        parser.error("--n must be at least 1")

    request = DataRequest(
        "r-000123-provider_3",
        "iomt://ward1/provider_3",
        "ecc",
        os.urandom(300),  # a CWT with proof of possession
        os.urandom(16),
        "session",
        os.urandom(32),
        os.urandom(65),
    )
    envelope = Envelope(
        "r-000123-provider_3",
        "iomt://ward1/hr_17",
        "iomt://ward1/hr_17",
        "iomt://ward1/provider_3",
        "ecc",
        123,
        1_700_000_000_000_000_000,
        os.urandom(120),  # the data key's header
        os.urandom(90),  # nonce, sealed reading, tag
        "hmac-sha256",
        os.urandom(32),
        b"",
        b"",
    )
    key = HmacSha256Key(os.urandom(32))
    resp = DataShare.Response(status=1, envelope=wire.envelope_to_msg(envelope))
    server = "hr_17"

    def prove() -> bytes:  # the device's side, as nodes.data_share.answer does it
        statement = wire.data_share_statement(server, data_share_digest(request), resp)
        return ReplyProof(
            KIND_MAC, b"conn-id!", key.algorithm, key.sign(statement.to_bytes())
        ).to_bytes()

    proof = prove()
    resp.proof = proof
    checker = ReplyChecker()
    request_digest = data_share_digest(request)

    def check() -> None:  # the provider's side, as nodes.asking.data_share_check does it
        checker.check(
            proof,
            lambda: wire.data_share_statement(server, request_digest, resp),
            server=server,
            mac_key=lambda _id: key,
        )

    def digest() -> bytes:  # the provider digests its request once, when it sends it
        return data_share_digest(request)

    wire_type = DataShare.Response

    def codec() -> Any:  # baseline: the response's CDR both ways
        return wire_type.deserialize(resp.serialize())

    check()  # a proof that does not verify raises: the bench times a working pair
    results = {
        "prove_us": _median_us(prove, args.n),
        "check_us": _median_us(check, args.n) + _median_us(digest, args.n),
        "codec_us": _median_us(codec, args.n),
    }
    results["proof_per_request_us"] = results["prove_us"] + results["check_us"]
    results["ratio_to_codec"] = results["proof_per_request_us"] / results["codec_us"]
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(f"device: statement + MAC          {results['prove_us']:7.1f} µs")
    print(f"provider: request digest + check {results['check_us']:7.1f} µs")
    print(f"baseline: response CDR both ways {results['codec_us']:7.1f} µs")
    print(
        f"proof per request {results['proof_per_request_us']:.1f} µs = "
        f"{results['ratio_to_codec']:.2f}x the response's CDR round trip"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
