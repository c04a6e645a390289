"""Running launch plans: the ``iomt launch`` supervisor and the ROS 2 launch bridge."""
