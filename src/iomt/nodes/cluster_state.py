"""A cluster member's election state on disk: ``(term, voted_for)``, fsynced and atomically
replaced on every change, so a restarted member never votes twice in one term."""

from __future__ import annotations

import json
import os
from pathlib import Path

from iomt.errors import IomtError

__all__ = ["ElectionState"]


class ElectionState:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._saved: tuple[int, str | None] | None = None

    def load(self) -> tuple[int, str | None]:
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
            state = int(raw["term"]), raw.get("voted_for")
        except FileNotFoundError:
            state = 0, None
        except (ValueError, KeyError, TypeError) as exc:
            raise IomtError(f"{self.path}: unreadable cluster state: {exc}") from exc
        self._saved = state
        return state

    def save(self, state: tuple[int, str | None]) -> None:
        if state == self._saved:
            return
        tmp = self.path.with_suffix(".tmp")
        with tmp.open("w", encoding="utf-8") as f:
            json.dump({"term": state[0], "voted_for": state[1]}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        self._saved = state
