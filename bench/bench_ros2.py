"""iomt and real ROS 2, measured in the same run (issue 9 targets).

    python bench/bench_ros2.py [--rounds 3] [--calls 500] [--cold] [--json]

Service round trip p50 of a DataShare echo between two processes, three pairs, rounds
alternating so all see the same machine load:

* iomt → iomt on the embedded runtime (Cyclone DDS)        target <= 0.6x rclpy → rclpy
* stock rclpy → rclpy, Fast DDS (tests/ros2/peer.py)       the baseline
* stock rclpy → iomt's node on the rclpy runtime           target <= 1.0x rclpy → rclpy

and building the ROS 2 package iomt_interfaces with colcon from the PyPI wheels: from a
warm cache (scripts/ros2.sh when nothing changed; and colcon rebuilding an unchanged
build tree) <= 10 s; cold (``--cold``: the build tree deleted first) <= 120 s.
Needs the ROS 2 peer of scripts/ros2.sh (it is set up if missing).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
IOMT_PEER = Path(__file__).with_name("_ros2_peer.py")
ROS_PEER = ROOT / "tests" / "ros2" / "peer.py"
SERVICE = "/bench/echo"
TARGET_EMBEDDED = 0.6
TARGET_STOCK_TO_IOMT = 1.0
TARGET_WARM_S = 10.0
TARGET_COLD_S = 120.0


def ros2_env() -> tuple[str, dict[str, str]]:
    out = subprocess.run(
        [str(ROOT / "scripts" / "ros2.sh")], capture_output=True, text=True, check=True
    )
    setup = out.stdout.strip().splitlines()[-1]
    dump = subprocess.run(
        ["bash", "-c", f'source "{setup}" && env -0'], capture_output=True, check=True
    ).stdout.decode()
    env = dict(item.split("=", 1) for item in dump.split("\0") if "=" in item)
    env.pop("CYCLONEDDS_URI", None)
    return str(Path(setup).parent / "bin" / "python"), env


def _start(cmd: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if '"serving"' not in line:
        proc.kill()
        raise RuntimeError(f"server did not start: {cmd}")
    return proc


def _rtts(cmd: list[str], env: dict[str, str]) -> list[float]:
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600, check=False)
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    doc = json.loads(lines[-1]) if lines else {"error": out.stderr[-2000:]}
    if "rtt_s" not in doc:
        raise RuntimeError(f"client failed: {doc}")
    return list(doc["rtt_s"])


def one_pair(pair: str, python: str, env: dict[str, str], args: argparse.Namespace) -> float:
    domain = random.randint(150, 200)
    penv = {**env, "ROS_DOMAIN_ID": str(domain)}
    request = json.dumps({"request_id": "bench"})
    n = ["--calls", str(args.calls), "--warmup", str(args.warmup)]
    if pair == "embedded":
        server = [sys.executable, str(IOMT_PEER), "serve", "--runtime", "embedded"]
        client = [sys.executable, str(IOMT_PEER), "call", "--runtime", "embedded", *n]
        penv = {**os.environ, "ROS_DOMAIN_ID": str(domain), "PYTHONPATH": str(ROOT / "src")}
    else:
        stock = [python, str(ROS_PEER), "serve", "--type", "iomt_interfaces/srv/DataShare"]
        stock += ["--service", SERVICE, "--timeout", "600"]
        server = (
            stock if pair == "rclpy" else [python, str(IOMT_PEER), "serve", "--runtime", "rclpy"]
        )
        client = [python, str(ROS_PEER), "bench-call", "--service", SERVICE]
        client += ["--type", "iomt_interfaces/srv/DataShare", "--request", request, *n]
    proc = _start(server, penv)
    try:
        samples = _rtts(client, penv)
    finally:
        proc.terminate()
        proc.wait(10)
    return statistics.median(samples) * 1e3


def build_times(python: str, env: dict[str, str], cold: bool) -> dict[str, float]:
    venv = Path(python).parent.parent
    ws = venv / "var" / "iomt_interfaces"
    out: dict[str, float] = {}
    t0 = time.monotonic()
    subprocess.run([str(ROOT / "scripts" / "ros2.sh")], check=True, capture_output=True)
    out["ros2_sh_cached_s"] = round(time.monotonic() - t0, 2)
    build = [
        "colcon",
        "--log-base",
        "log",
        "build",
        "--base-paths",
        str(ROOT / "iomt_interfaces"),
        "--build-base",
        "build",
        "--install-base",
        "install",
        "--cmake-args",
        f"-DPython3_EXECUTABLE={python}",
        "-DBUILD_TESTING=OFF",
    ]
    benv = {**env, "AMENT_PREFIX_PATH": str(venv), "CMAKE_PREFIX_PATH": str(venv)}
    benv.pop("PYTHONPATH", None)
    t0 = time.monotonic()
    subprocess.run(build, cwd=ws, env=benv, check=True, capture_output=True)
    out["colcon_rebuild_unchanged_s"] = round(time.monotonic() - t0, 2)
    if cold:
        shutil.rmtree(ws)
        t0 = time.monotonic()
        subprocess.run([str(ROOT / "scripts" / "ros2.sh")], check=True, capture_output=True)
        out["cold_build_s"] = round(time.monotonic() - t0, 2)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--cold", action="store_true", help="also time a cold interface build")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    python, env = ros2_env()
    p50: dict[str, list[float]] = {"embedded": [], "rclpy": [], "stock_to_iomt": []}
    for _ in range(args.rounds):
        for pair, rounds in p50.items():
            rounds.append(one_pair(pair, python, env, args))
    med = {k: statistics.median(v) for k, v in p50.items()}
    result: dict[str, Any] = {
        "rtt_p50_ms": {k: round(v, 3) for k, v in med.items()},
        "rtt_p50_ms_rounds": {k: [round(x, 3) for x in v] for k, v in p50.items()},
        "ratio_embedded_vs_rclpy": round(med["embedded"] / med["rclpy"], 3),
        "ratio_stock_to_iomt_vs_rclpy": round(med["stock_to_iomt"] / med["rclpy"], 3),
        "build": build_times(python, env, args.cold),
    }
    b = result["build"]
    result["targets_met"] = {
        "embedded <= 0.6x rclpy": result["ratio_embedded_vs_rclpy"] <= TARGET_EMBEDDED,
        "stock rclpy -> iomt <= 1.0x rclpy": result["ratio_stock_to_iomt_vs_rclpy"]
        <= TARGET_STOCK_TO_IOMT,
        "warm build <= 10 s": max(b["ros2_sh_cached_s"], b["colcon_rebuild_unchanged_s"])
        <= TARGET_WARM_S,
        **({"cold build <= 120 s": b["cold_build_s"] <= TARGET_COLD_S} if args.cold else {}),
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        r = result["rtt_p50_ms"]
        print(f"DataShare round trip p50 (median of {args.rounds} rounds x {args.calls} calls):")
        print(f"  iomt -> iomt, embedded runtime   {r['embedded']:.3f} ms")
        print(f"  rclpy -> rclpy, Fast DDS         {r['rclpy']:.3f} ms   (baseline)")
        print(f"  rclpy -> iomt on rclpy runtime   {r['stock_to_iomt']:.3f} ms")
        print(f"  embedded / rclpy      {result['ratio_embedded_vs_rclpy']:.2f}x (target <= 0.6x)")
        print(
            f"  stock->iomt / rclpy   {result['ratio_stock_to_iomt_vs_rclpy']:.2f}x "
            "(target <= 1.0x)"
        )
        print(f"iomt_interfaces build: {b}")
        for name, ok in result["targets_met"].items():
            print(f"  {'met' if ok else 'MISSED'}: {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
