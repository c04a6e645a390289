"""Thin DDS nodes: each wires a sans-IO core object to topics, services and timers
(docs/architecture.md, "Cores and nodes")."""
