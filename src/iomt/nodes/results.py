"""The results file of a node: JSON lines the experiment driver reads back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


class ResultsWriter:
    """Appends JSON lines to a results file (the experiment driver reads them back).
    ``write_through``: every line reaches the file at once (line-buffered), so what was
    written survives a crash of the process -- what a restarted node resumes from."""

    def __init__(self, path: str | None, *, write_through: bool = False) -> None:
        self._file = None
        if path:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            self._file = Path(path).open(  # noqa: SIM115
                "a", encoding="utf-8", buffering=1 if write_through else -1
            )

    def write(self, record: dict[str, Any]) -> None:
        if self._file is not None:
            self._file.write(json.dumps(record, separators=(",", ":")) + "\n")

    def flush(self) -> None:
        if self._file is not None:
            self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
