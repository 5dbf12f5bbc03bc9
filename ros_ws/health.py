"""Diagnostics levels, with one meaning in every node (REP-107's DiagnosticStatus levels).

| level | the node is ... | examples |
|---|---|---|
| OK (0) | doing its job | stepping, acting, judging, recording |
| WARN (1) | doing its job degraded, or waiting for something another node or time will bring | a policy holding on a stale input or on the robot's latched e-stop; a twin awaiting an episode's goal; a task node whose reset is refused; link losses above their rate |
| ERROR (2) | not doing its job until a person acts | the e-stop or a fault latched on this robot; the link down; a driver that is not configured |
| STALE (3) | not heard from: concluded by a reader, never sent | the bringup stops a run whose running node sent no diagnostics for 10 s (SILENT_NODE_S) and names it |

The latch is an ERROR where it is (the robot's node) and a WARN in the nodes that wait on it.
No rclpy here: nodes and tests import the levels alike.
"""  # noqa: E501

from __future__ import annotations

OK, WARN, ERROR, STALE = 0, 1, 2, 3
NAMES = {OK: "OK", WARN: "WARN", ERROR: "ERROR", STALE: "STALE"}
