"""DDS domain ids for tests: a fresh one per call, never the same as a parallel worker's.

Each test that touches DDS runs on a domain of its own, so that its discovery cannot meet
another test's. Under pytest-xdist the workers share the loopback interface: worker k of n
draws only ids that are k modulo n, so two tests running at once never pick the same domain.
Within a worker, ids are drawn without replacement (then the cycle starts again), so a
test's domain is not one a test just before it left discovery traffic on. Other runs on the
same machine (a second checkout, a benchmark) may still collide: the draw stays random.
"""

from __future__ import annotations

import os
import random

#: the ids tests draw from (domain 0 is the default a user's own nodes are on)
LOWEST, HIGHEST = 1, 230

_rng = random.SystemRandom()
_pool: list[int] = []


def _worker() -> tuple[int, int]:
    name = os.environ.get("PYTEST_XDIST_WORKER", "")  # "gw0", "gw1", ...
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1)
    index = int(name[2:]) if name.startswith("gw") and name[2:].isdigit() else 0
    return index % max(count, 1), max(count, 1)


def fresh_domain() -> int:
    """A domain id for one test (or one module's shared ward)."""
    if not _pool:
        index, count = _worker()
        _pool.extend(d for d in range(LOWEST, HIGHEST + 1) if d % count == index)
        _rng.shuffle(_pool)
    return _pool.pop()
