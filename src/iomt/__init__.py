"""iomt — secure, distributed sharing of patients' IoMT device data on a ROS 2-style DDS graph.

Layers (dependencies point down only):

    cli / experiments / launch · capture / topology   commands, workloads, bags, launch plans
    nodes                                             thin DDS nodes wiring core to topics
    runtime                                           Context, Node, Executor, QoS, services
    core · crypto · ledger                            sans-IO protocols, techniques, the log
    msg                                               interface files, generated wire types

(enforced on the source tree by tests/test_layering.py)
"""

__version__ = "0.1.0"
