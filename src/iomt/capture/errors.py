"""Errors of the capture layer, in iomt's one error tree."""

from __future__ import annotations

from iomt.errors import StorageError


class BagError(StorageError):
    """A bag could not be written, opened or read (rosbags' errors are wrapped in this)."""


class BagWriteError(BagError):
    """Writing or closing a bag failed."""


class BagReadError(BagError):
    """A bag is missing, not a rosbag2 bag, or its storage cannot be read."""
