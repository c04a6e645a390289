"""Checked command-line values: every numeric option is range-checked by argparse itself,
before a command provisions, launches or writes anything, and a bad one ends the command
with one line on stderr and exit code 2.

    parser.add_argument("--requests", type=at_least(1), default=2000)
    parser.add_argument("--domain", type=domain_id)

``OneLineParser`` is the parser class of every ``iomt`` (sub)command: argparse's own
``error`` prints the whole usage block (dozens of lines for ``iomt launch``) above the
message; an operator or a CI log needs the message.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable
from typing import NoReturn

# iomt.runtime.config.MAX_DOMAIN_ID (importing the runtime here would load cyclonedds for
# every `iomt --help`); tests/attacks/test_attack_bad_input.py checks they agree.
MAX_DOMAIN_ID = 232

__all__ = [
    "MAX_DOMAIN_ID",
    "OneLineParser",
    "at_least",
    "between",
    "domain_id",
    "non_negative_float",
    "positive_float",
]


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line: ``prog: error: message (see prog -h)``."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        if message:
            sys.stderr.write(message)
        raise SystemExit(status)


def _integer(text: str) -> int:
    try:
        return int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None


def at_least(low: int, high: int | None = None) -> Callable[[str], int]:
    """An integer type for argparse: ``low <= value`` (and ``<= high`` if given)."""

    def parse(text: str) -> int:
        value = _integer(text)
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, got {value}")
        if high is not None and value > high:
            raise argparse.ArgumentTypeError(f"must be at most {high}, got {value}")
        return value

    parse.__name__ = f"integer >= {low}"  # what argparse names in "invalid <type> value"
    return parse


def between(low: int, high: int) -> Callable[[str], int]:
    return at_least(low, high)


def domain_id(text: str) -> int:
    """A DDS domain id as ROS 2 allows it: 0..232 (higher ids have no valid UDP ports)."""
    value = _integer(text)
    if not 0 <= value <= MAX_DOMAIN_ID:
        raise argparse.ArgumentTypeError(
            f"DDS domain ids run from 0 to {MAX_DOMAIN_ID} (ROS_DOMAIN_ID), got {value}"
        )
    return value


def _finite(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
    return value


def positive_float(text: str) -> float:
    """Seconds, rates, factors: a finite number above 0."""
    value = _finite(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0, got {text}")
    return value


def non_negative_float(text: str) -> float:
    """Delays and durations where 0 means "none" or "until Ctrl-C"."""
    value = _finite(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value
