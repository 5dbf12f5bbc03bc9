"""The ROS 2 side of Twinbridge: thin nodes over plain-Python cores (see ros_ws/README.md).

A node started by `twinbridge sim` may be stopped while it is still importing (seconds on a
busy host); it then exits quietly instead of printing a KeyboardInterrupt traceback.
"""

from ros_ws.node_runtime_env import exit_quietly_while_starting

exit_quietly_while_starting()
