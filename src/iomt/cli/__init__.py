"""The ``iomt`` command.

Each subcommand lives in its own module exposing ``register(subparsers)``, which adds a
parser whose ``func`` default takes the parsed namespace and returns an exit code. Modules
import their heavy dependencies inside the handler so ``iomt --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import signal
import sys
from collections.abc import Sequence

from iomt.cli.args import OneLineParser
from iomt.errors import IomtError

# Subcommand modules, in the order `iomt --help` lists them.
_COMMAND_MODULES: tuple[str, ...] = (
    "iomt.cli.launch",
    "iomt.cli.reproduce",
    "iomt.cli.demo",
    "iomt.cli.graph",
    "iomt.cli.bag",
    "iomt.cli.audit",
    "iomt.cli.interface",
    "iomt.cli.keystore",
    "iomt.cli.crypto",
    "iomt.cli.fhir",
)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="iomt",
        description="Secure distributed IoMT data sharing on a ROS 2-style DDS node graph.",
    )
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="more logging (-v info, -vv debug)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in _COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    # SIGTERM (what timeout, CI and kill send) stops a command as Ctrl-C does: launches
    # stop their processes on the way out. A shell starts background jobs with SIGINT
    # ignored; `kill -INT` must still reach a launcher started with `&`.
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    parser = build_parser()
    args = parser.parse_args(argv)
    level = {0: logging.WARNING, 1: logging.INFO}.get(args.verbose, logging.DEBUG)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # What iomt writes holds readings, keys, ledgers and bags: owner-only (files 0600,
    # directories 0700), whatever the caller's umask; the launched containers inherit it.
    umask = os.umask(0o077)
    try:
        return int(args.func(args))
    except IomtError as exc:
        print(f"iomt: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    finally:
        os.umask(umask)


if __name__ == "__main__":
    sys.exit(main())
