"""iomt — secure, distributed sharing of patients' IoMT device data on a ROS 2-style DDS graph.

Layers (dependencies point down only):

    cli / topology / experiments / capture   user-facing commands, launch, workloads, bags
    nodes                                    thin DDS nodes wiring core objects to topics
    runtime                                  Context, Node, Executor, QoS, services, graph
    core · crypto · ledger                   sans-IO protocols, security techniques, the log
    msg                                      interface files and generated wire types
"""

__version__ = "0.1.0"
