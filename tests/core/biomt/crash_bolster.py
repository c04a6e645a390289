"""Child process for the bolster crash tests: a bolster on SQLite, killed mid-operation.

    python crash_bolster.py DIR origin|remove|loop

The world (CA and bolster keys in ``DIR/keystore``, the ledger in ``DIR/b.db``) is the one
``biomt_world.World(db=..., keystore=...)`` builds, so the parent can reopen the ledger with
the same keys after this process is gone.

* ``origin``: provision a device, and SIGKILL this process right after the Origin commit,
  before the block that admits the device is sealed (the window a restart must complete).
* ``remove``: provision a device and store a reading, then remove the device and SIGKILL
  this process at the same point (the Remove committed, its block not sealed, the device's
  records not yet deleted).
* ``loop``: provision devices and store readings forever, printing ``stored <pseudonym>
  <n>`` after each acknowledged Store; the parent SIGKILLs it at a random moment.

Before killing itself at the chosen point the process prints ``cut``. A SIGKILL runs no
exception handler, ``finally`` block or destructor: the SQLite connection is dropped as a
crashed process drops it.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

from biomt_world import SECOND, World

from iomt.ledger import Ledger


def _cut_at_seal_block() -> None:
    def cut(self: Ledger, *args: object, **kwargs: object) -> None:
        print("cut", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)

    Ledger.seal_block = cut  # type: ignore[method-assign,assignment]


def main() -> None:
    root, op = Path(sys.argv[1]), sys.argv[2]
    w = World(db=root / "b.db", keystore=root / "keystore")
    print("ready", flush=True)
    if op == "origin":
        dev = w.new_device()
        request = w.admin.approve(
            dev.enrol(w.bolster.credentials, owner="patient-7", attributes={})
        )
        _cut_at_seal_block()
        w.bolster.provision(request)
    elif op == "remove":
        dev = w.device()
        w.store(dev, 70)
        print("stored", dev.pseudonym, flush=True)
        request = w.admin.remove("bolster-a", dev.pseudonym, reason="broken")
        _cut_at_seal_block()
        w.bolster.remove(request)
    elif op == "loop":
        n = 0
        while True:
            dev = w.device(f"iomt://facility-a/hr-{n}")
            for bpm in (60, 61, 62):
                w.clock.advance(SECOND)
                w.store(dev, bpm)
                n += 1
                # one write per line: a kill cannot land between its words
                sys.stdout.write(f"stored {dev.pseudonym} {n}\n")
                sys.stdout.flush()
    raise SystemExit(f"{op}: not killed")


if __name__ == "__main__":
    main()
