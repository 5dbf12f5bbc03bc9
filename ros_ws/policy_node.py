"""policy_node: a zoo ONNX policy, or the scripted one, on the contract topics (core:
policies.PolicyController).

Run: `python -m ros_ws.policy_node --ros-args -r __ns:=/fetch --params-file ros_ws/config/sim.yaml`

Acts on each new `joint_states` (never faster than its rate) and publishes `joint_command`
stamped with the stamp of the state it answers. It holds (publishes nothing, so the robot
keeps its last target) while any input is stale or missing, while the e-stop is engaged,
and while the e-stop state is unknown; the reason is in `diagnostics`. A timer at the
control rate notices stale inputs even when no message arrives at all.
"""

from __future__ import annotations

import time
from collections import deque

import numpy as np
from trajectory_msgs.msg import JointTrajectory

from policies.card import SCRIPTED_POLICY
from policies.controller import PolicyController
from ros_ws import adapters, health
from ros_ws.controller_inputs import subscribe_controller_inputs
from ros_ws.node_configs import PolicyNodeConfig, resolve_data_path
from ros_ws.node_runtime import ContractNode, run_node
from ros_ws.qos import control_qos


class PolicyNode(ContractNode):
    def __init__(self) -> None:
        super().__init__("policy_node", PolicyNodeConfig)
        cfg: PolicyNodeConfig = self.config
        named = cfg.policy_path == SCRIPTED_POLICY  # a policy by name, not a file
        self.controller = PolicyController.load(
            cfg.policy_path if named else resolve_data_path(cfg.policy_path),
            cfg.robot, cfg.control_rate_hz, cfg.stale_after_s, cfg.task, cfg.object_estimate,
        )  # fmt: skip
        rate = self.controller.control_rate_hz
        self._period_s = 1.0 / rate
        self._hold_reason = "starting"
        # Time of each acting step (observation, onnxruntime, IK): at 25 Hz the step runs
        # cold (caches evicted between periods) and costs several times a hot loop's.
        self._step_ms: deque[float] = deque(maxlen=1000)
        qos = control_qos(rate)
        self.command_pub = self.contract_publisher(JointTrajectory, "joint_command", qos)
        subscribe_controller_inputs(self, self.controller, qos, self._act)
        self.steady_timer(self._period_s, self._act)
        self.get_logger().info(
            f"{cfg.policy_path} ({self.controller.mirror.task_name}) at {rate} Hz"
        )

    def _act(self) -> None:
        started = time.perf_counter()
        decision = self.controller.decide(time.monotonic())
        if decision.targets is None:
            if decision.hold_reason != "no_new_state":
                self._hold_reason = decision.hold_reason
            return
        self._hold_reason = ""
        self._step_ms.append((time.perf_counter() - started) * 1e3)
        self.command_pub.publish(
            adapters.trajectory_msg(
                self.controller.command_names, decision.targets, decision.stamp_ns, self._period_s
            )
        )

    def diagnostics_values(self) -> dict[str, object]:
        steps = np.asarray(self._step_ms) if self._step_ms else np.full(1, np.nan)
        return {
            "holding": self._hold_reason,
            "step_p50_ms": round(float(np.percentile(steps, 50)), 3),
            "step_p99_ms": round(float(np.percentile(steps, 99)), 3),
            **dict(sorted(self.controller.counters.items())),
        }

    def diagnostics_level(self) -> int:
        return health.WARN if self._hold_reason else health.OK


def main(args: list[str] | None = None) -> None:
    run_node(PolicyNode, args)


if __name__ == "__main__":
    main()
