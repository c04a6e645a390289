"""iomt — secure, distributed sharing of patients' IoMT device data on a ROS 2-style DDS graph.

Layers (dependencies point down only; no import cycles):

    cli / experiments / launch · capture / topology   commands, workloads, bags, launch plans
    nodes                                             thin DDS nodes wiring core to topics
    runtime                                           Context, Node, Executor, QoS, services
    core                                              sans-IO protocol state machines
    ledger / crypto                                   the log / techniques, keys, encoding
    msg                                               interface files, generated wire types
    errors / clock / resources                        the error tree, clock types, data

(enforced on the source tree by tests/test_layering.py; the map, the path of a request and
of a transaction, and the error tree: docs/architecture.md)
"""

__version__ = "0.1.0"
