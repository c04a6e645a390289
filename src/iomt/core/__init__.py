"""The sans-IO protocol core: the papers' algorithms as plain objects.

Nothing here performs IO or imports the DDS runtime: objects are fed requests (frozen
dataclasses) and return decisions and messages; clocks and randomness are injected.
Bilal & Hassan: ``handshake`` (Alg. 1), ``registration`` (Alg. 2.1), ``listener``
(Alg. 2.2), ``conversion`` (Alg. 3), ``publish`` (sealed, authenticated envelopes),
``channels`` (sessions that make per-request crypto symmetric), ``central`` (the
centralized baseline). BIoMT: ``biomt``.

How the cores meet the nodes, and the path of a request: docs/architecture.md.
"""
