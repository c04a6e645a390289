"""CDR cost of iomt's wire types: cyclonedds (generated types) against rosbags, same run.

    python bench/bench_cdr.py [--json] [--quick]

Cases: Vitals; SecureEnvelope with a 64 B and a 1 KiB ciphertext; Registration with 20
neighbours. For each: serialize and deserialize (guarded ``deserialize``, as DataReader.take
runs it, and cyclonedds' unguarded codec underneath), and rosbags' ``serialize_cdr`` /
``deserialize_cdr`` on the same message as the baseline. Then the ``uint8[]`` question:
stock cyclonedds decodes ``sequence<uint8>`` to a list of ints; iomt swaps in a bytes codec
(same octets on the wire). Printed: medians in µs and ratios.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
import timeit
from collections.abc import Callable
from typing import Any

import numpy as np
from cyclonedds.idl import make_idl_struct, types
from cyclonedds.idl.annotations import final

import iomt.msg
from iomt.msg import Neighbour, Registration, SecureEnvelope, Time, Vitals


def median_us(fn: Callable[[], object], *, repeat: int, budget_s: float) -> float:
    """Median per-call time in µs over ``repeat`` batches sized to ~budget_s in total."""
    per_call = timeit.timeit(fn, number=20) / 20
    number = max(1, int(budget_s / repeat / max(per_call, 1e-9)))
    runs = timeit.repeat(fn, number=number, repeat=repeat)
    return statistics.median(runs) / number * 1e6


def to_rosbags(store: Any, name: str, msg: Any) -> Any:
    """The rosbags object for a generated message (numpy arrays for primitive sequences)."""
    cls = store.types[name]
    values: dict[str, Any] = {}
    for field, desc in store.fielddefs[name][1]:
        value = getattr(msg, field)
        kind, arg = desc
        if kind == 2:  # nested message
            values[field] = to_rosbags(store, arg, value)
        elif kind in (3, 4) and arg[0][0] == 2:  # array/sequence of messages
            values[field] = [to_rosbags(store, arg[0][1], v) for v in value]
        elif kind in (3, 4) and arg[0][1][0] != "string":
            values[field] = np.frombuffer(bytes(value), dtype=np.uint8).copy()
        else:
            values[field] = value
    return cls(**values)


def cases() -> dict[str, Any]:
    stamp = Time(sec=1_700_000_000, nanosec=123_456_789)
    envelope = dict(
        request_id="req-000042",
        device_uri="iomt://hospital-a/ward-3/patient-17/hr-1",
        sender_uri="iomt://hospital-a/ward-3/patient-17/hr-1",
        recipient_uri="iomt://hospital-a/providers/dr-7",
        security_technique="ecc",
        seq=42,
        stamp=stamp,
        signature_algorithm="ed25519",
        signature=os.urandom(64),
    )
    return {
        "Vitals": Vitals(
            stamp=stamp,
            device_uri="iomt://hospital-a/ward-3/patient-17/hr-1",
            patient_id="patient-17",
            kind=Vitals.KIND_HEART_RATE,
            seq=42,
            heart_rate_bpm=72.5,
        ),
        "SecureEnvelope 64 B": SecureEnvelope(ciphertext=os.urandom(64), **envelope),
        "SecureEnvelope 1 KiB": SecureEnvelope(ciphertext=os.urandom(1024), **envelope),
        "Registration 20 neighbours": Registration(
            stamp=stamp,
            device_uri="iomt://hospital-a/ward-3/patient-17/hr-1",
            security_technique="sym-aes",
            convertible_techniques=["sym-aes", "ecc"],
            x=12.5,
            y=40.0,
            radio_range=30.0,
            period_ms=20_000,
            public_key=os.urandom(32),
            neighbours=[
                Neighbour(uri=f"iomt://hospital-a/ward-3/dev-{i}", security_technique="ecc", hops=1)
                for i in range(20)
            ],
        ),
    }


def stock_octet_class() -> Any:
    """SecureEnvelope as stock cyclonedds would build it: ``sequence<uint8>`` → list of ints."""
    hints: dict[str, Any] = {}
    for f in dataclasses.fields(SecureEnvelope):
        hint = SecureEnvelope.__annotations__[f.name]
        octets = f.name in ("ciphertext", "signature")
        hints[f.name] = types.sequence[types.uint8] if octets else hint
    return final(make_idl_struct("StockEnvelope", "iomt::msg::dds_::SecureEnvelope_", hints))


def run(quick: bool) -> dict[str, Any]:
    repeat, budget = (5, 0.05) if quick else (9, 0.4)
    store = iomt.msg.rosbags_typestore()
    results: dict[str, Any] = {"cases": {}, "octets": {}}
    for label, msg in cases().items():
        cls = type(msg)
        name = iomt.msg.message_info(cls).name
        data = msg.serialize()
        rmsg = to_rosbags(store, name, msg)
        assert bytes(store.serialize_cdr(rmsg, name, little_endian=True)) == data
        raw_codec: Any = cls.__idl__
        row = {
            "bytes": len(data),
            "cdds_serialize_us": median_us(msg.serialize, repeat=repeat, budget_s=budget),
            "cdds_deserialize_us": median_us(
                lambda cls=cls, data=data: cls.deserialize(data), repeat=repeat, budget_s=budget
            ),
            "cdds_deserialize_unguarded_us": median_us(
                lambda c=raw_codec, data=data: c.deserialize(data), repeat=repeat, budget_s=budget
            ),
            "rosbags_serialize_us": median_us(
                lambda r=rmsg, n=name: store.serialize_cdr(r, n, little_endian=True),
                repeat=repeat,
                budget_s=budget,
            ),
            "rosbags_deserialize_us": median_us(
                lambda d=data, n=name: store.deserialize_cdr(d, n), repeat=repeat, budget_s=budget
            ),
        }
        row["serialize_ratio_vs_rosbags"] = row["cdds_serialize_us"] / row["rosbags_serialize_us"]
        row["deserialize_ratio_vs_rosbags"] = (
            row["cdds_deserialize_us"] / row["rosbags_deserialize_us"]
        )
        row["guard_overhead"] = row["cdds_deserialize_us"] / row["cdds_deserialize_unguarded_us"]
        results["cases"][label] = row

    stock = stock_octet_class()
    for label, msg in cases().items():
        if not isinstance(msg, SecureEnvelope):
            continue
        fields = {f.name: getattr(msg, f.name) for f in dataclasses.fields(msg)}
        as_list = stock(**{**fields, "ciphertext": list(msg.ciphertext)})
        data = msg.serialize()
        assert as_list.serialize() == data
        decoded = stock.deserialize(data)
        row = {
            "stock_decodes_to": type(decoded.ciphertext).__name__,
            "ours_decodes_to": type(SecureEnvelope.deserialize(data).ciphertext).__name__,
            "stock_serialize_from_list_us": median_us(
                as_list.serialize, repeat=repeat, budget_s=budget
            ),
            "stock_deserialize_to_list_us": median_us(
                lambda d=data: stock.deserialize(d), repeat=repeat, budget_s=budget
            ),
            "list_to_bytes_us": median_us(
                lambda v=decoded.ciphertext: bytes(v), repeat=repeat, budget_s=budget
            ),
            "ours_serialize_from_bytes_us": median_us(
                msg.serialize, repeat=repeat, budget_s=budget
            ),
            "ours_deserialize_to_bytes_us": median_us(
                lambda d=data: SecureEnvelope.deserialize(d), repeat=repeat, budget_s=budget
            ),
        }
        row["deserialize_speedup"] = (
            row["stock_deserialize_to_list_us"] + row["list_to_bytes_us"]
        ) / row["ours_deserialize_to_bytes_us"]
        row["serialize_speedup"] = (
            row["stock_serialize_from_list_us"] / row["ours_serialize_from_bytes_us"]
        )
        results["octets"][label] = row
    return results


def report(results: dict[str, Any]) -> str:
    out = [
        "CDR serialize / deserialize, median µs (cyclonedds generated types vs rosbags)",
        f"{'case':28} {'bytes':>6} {'ser':>7} {'rb ser':>7} {'ratio':>6} "
        f"{'deser':>7} {'unguard':>7} {'rb des':>7} {'ratio':>6}",
    ]
    for label, r in results["cases"].items():
        out.append(
            f"{label:28} {r['bytes']:6d} {r['cdds_serialize_us']:7.2f} "
            f"{r['rosbags_serialize_us']:7.2f} {r['serialize_ratio_vs_rosbags']:6.2f} "
            f"{r['cdds_deserialize_us']:7.2f} {r['cdds_deserialize_unguarded_us']:7.2f} "
            f"{r['rosbags_deserialize_us']:7.2f} {r['deserialize_ratio_vs_rosbags']:6.2f}"
        )
    out += [
        "",
        "uint8[] fields: stock cyclonedds (list of ints) vs iomt's bytes codec, median µs",
        f"{'case':28} {'stock ser':>9} {'ours ser':>9} {'x':>5} "
        f"{'stock des':>9} {'+bytes()':>9} {'ours des':>9} {'x':>5}",
    ]
    for label, r in results["octets"].items():
        out.append(
            f"{label:28} {r['stock_serialize_from_list_us']:9.2f} "
            f"{r['ours_serialize_from_bytes_us']:9.2f} {r['serialize_speedup']:5.2f} "
            f"{r['stock_deserialize_to_list_us']:9.2f} {r['list_to_bytes_us']:9.2f} "
            f"{r['ours_deserialize_to_bytes_us']:9.2f} {r['deserialize_speedup']:5.2f}"
        )
    first = next(iter(results["octets"].values()))
    out.append(
        f"(stock cyclonedds decodes uint8[] to {first['stock_decodes_to']}; "
        f"iomt's types decode it to {first['ours_decodes_to']})"
    )
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true", help="print results as JSON")
    parser.add_argument("--quick", action="store_true", help="shorter runs (noisier)")
    args = parser.parse_args(argv)
    results = run(args.quick)
    print(json.dumps(results, indent=2) if args.json else report(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
