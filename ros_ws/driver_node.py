"""driver_node: a robot's hardware backend on the topic contract (core: hardware.DriverCore).

Run: `python -m ros_ws.driver_node --ros-args -r __ns:=/fetch -p port:=/dev/ttyUSB0 --params-file ros_ws/config/robot.yaml`

A lifecycle node: configure connects and verifies the device (a wrong device fails the
transition), activate enables it, deactivate brings it to its safe state, cleanup and
shutdown turn torque off and close. With `autostart` it walks to ACTIVE by itself. It
publishes what twin_node publishes (joint_states, object_pose when the device tracks an
object, estop_state, diagnostics) and serves estop / enable / reset, so the policy, task
and teleop nodes run unchanged against the twin or the hardware.
"""  # noqa: E501

from __future__ import annotations

import sys
import time
from dataclasses import asdict, fields

import numpy as np
from geometry_msgs.msg import PoseStamped
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool
from std_srvs.srv import SetBool, Trigger
from trajectory_msgs.msg import JointTrajectory

from hardware.driver_core import DriverCore, DriverSettings, build_driver
from hardware.interface import HardwareError, Measurement
from hardware.periodic import PeriodicLoop
from ros_ws import adapters, bridge_backend, health  # noqa: F401  (registers "bridge")
from ros_ws.node_configs import DriverNodeConfig
from ros_ws.node_runtime import EXIT_BAD_CONFIG, ContractNode, run_node
from ros_ws.qos import control_qos, estop_qos, latched_qos
from sim.contract.command_rules import CommandRejected, CommandRules
from sim.latency import LatencyTracker

SUCCESS, FAILURE = TransitionCallbackReturn.SUCCESS, TransitionCallbackReturn.FAILURE
MAX_COMMAND_NAMES = 64  # PROTOCOL.md's most channels of any device
MAX_COMMAND_POINTS = 100


class DriverNode(ContractNode, LifecycleNode):
    def __init__(self) -> None:
        super().__init__("driver_node", DriverNodeConfig)
        cfg: DriverNodeConfig = self.config
        self.core: DriverCore | None = None
        self.cycle: PeriodicLoop | None = None  # the control cycle's own thread
        self.start_error = ""
        self._last_status = ""
        self._pending_command: tuple[JointTrajectory, int, float] | None = None
        # state -> command latency, as twin_node measures it (the summary of twinbridge sim)
        self.latency = LatencyTracker(deadline_s=1.0 / cfg.publish_rate_hz)
        self._rules_cache: CommandRules | None = None
        qos = control_qos(cfg.publish_rate_hz)
        self.state_pub = self.contract_publisher(JointState, "joint_states", qos)
        self.pose_pub = self.contract_publisher(PoseStamped, "object_pose", qos)
        self.estop_pub = self.contract_publisher(Bool, "estop_state", estop_qos())
        # The command the safety layer let through, with each published state.
        self.applied_pub = self.create_publisher(JointTrajectory, "joint_command_applied", qos)
        self.contract_subscription(JointTrajectory, "joint_command", self._on_command, qos)
        self.create_subscription(PoseStamped, "goal", self._on_goal, latched_qos())
        self.create_service(SetBool, "estop", self._on_estop)
        self.create_service(Trigger, "enable", self._on_enable)
        self.create_service(Trigger, "reset", self._on_reset)
        self.steady_timer(0.1, self._publish_estop)
        if cfg.autostart:
            self._autostart()

    def _autostart(self) -> None:
        if self.trigger_configure() != SUCCESS or self.trigger_activate() != SUCCESS:
            self.fail(f"driver did not start: {self.start_error}", EXIT_BAD_CONFIG)

    # -- lifecycle ---------------------------------------------------------------------
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            self.core = build_driver(_settings(self.config), self._bridge_options())
            self.core.interface.connect()
        except (HardwareError, ValueError) as e:
            self.get_logger().fatal(f"configure failed: {e}")
            self.start_error = str(e)
            return FAILURE
        return SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            self._core().interface.activate()
        except HardwareError as e:
            self.get_logger().error(f"activate failed: {e}")
            self.start_error = str(e)
            return FAILURE
        self.cycle = PeriodicLoop(1.0 / self.config.cycle_rate_hz, self._on_cycle)
        self.cycle.start()
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_cycle()
        self._core().interface.deactivate()
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.close()
        return SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.close()
        return SUCCESS

    # -- the control cycle -----------------------------------------------------------
    def _on_cycle(self) -> None:
        core = self._core()
        try:
            self._apply_pending_command(core)
            result = core.cycle(self._now_ns())
        except Exception as e:  # the last line of defence: any failure ends in a safe state
            core.estop(f"driver error: {type(e).__name__}: {e}")
            self.counters["driver_errors"] += 1
            return
        self._log_safety_changes(core)
        if result.publish is not None:
            self._publish(result.publish, result.sent.positions)

    def _log_safety_changes(self, core: DriverCore) -> None:
        """Every latch (e-stop, fault) is logged once, with its reason; every link loss and
        recovery once, with its cause, from the interface's link events (a loss and its
        recovery may both fall between two cycles)."""
        log, link = self.get_logger(), core.interface.link
        for event in link.take_events():  # one call site per severity (rclpy's rule)
            if event.lost:
                log.error(event.text)
            else:
                log.info(event.text)
        status, previous = core.status, self._last_status
        if status == previous:
            return
        self._last_status = status
        if link.covers(status) or (not status and link.covers(previous)):
            return  # said by a link event above
        if status:
            log.error(status)
        else:
            log.info("healthy: latches and errors cleared")

    def _publish(self, measured: Measurement, sent: np.ndarray | None) -> None:
        # Measurements are stamped on the monotonic clock; the contract carries ROS time.
        stamp = time.time_ns() - (time.monotonic_ns() - measured.stamp_ns)
        self.latency.published(stamp, time.monotonic())
        state, pose = adapters.measurement_msgs(measured, stamp)
        self.state_pub.publish(state)
        if pose is not None:
            self.pose_pub.publish(pose)
        if sent is not None:  # torque off sends no positions
            names = self._core().interface.limits.names
            period = 1.0 / self.config.publish_rate_hz
            self.applied_pub.publish(adapters.trajectory_msg(names, sent, stamp, period))

    # -- inputs ------------------------------------------------------------------------
    def _on_command(self, msg: JointTrajectory) -> None:
        """Latest wins (ros2_control's realtime buffer): keep the newest command, with its
        arrival time; the cycle validates and applies it. A flood costs the executor a
        reference swap per message, and never the cycle more than one command per period."""
        points = msg.points
        if (
            len(msg.joint_names) > MAX_COMMAND_NAMES
            or len(points) > MAX_COMMAND_POINTS
            or any(len(p.positions) > MAX_COMMAND_NAMES for p in points)
        ):
            # Never hand an oversized message to the cycle: refuse it here, in O(1).
            self.reject(
                CommandRejected(
                    "oversized", f"{len(msg.joint_names)} names, {len(msg.points)} points"
                )
            )
            return
        if self._pending_command is not None:
            self.counters["commands_superseded"] += 1
        self._pending_command = (msg, self._now_ns(), time.monotonic())

    def _apply_pending_command(self, core: DriverCore) -> None:
        pending, self._pending_command = self._pending_command, None
        if pending is None:
            return
        msg, now_ns, arrived_s = pending
        try:
            targets = adapters.trajectory_targets(msg, now_ns * 1e-9, self._rules(core))
        except CommandRejected as e:
            self.reject(e)
            return
        stamp = adapters.stamp_ns(msg.header.stamp)
        try:
            core.on_command(targets, stamp, now_ns)
        except CommandRejected as e:
            self.reject(e)
            return
        except ValueError as e:
            self.reject(CommandRejected("invalid", str(e)))
            return
        self.latency.answered(stamp, arrived_s)
        self.counters["commands_accepted"] += 1

    def _on_goal(self, msg: PoseStamped) -> None:
        if self.core is not None:
            self.core.on_goal(adapters.stamp_ns(msg.header.stamp))

    def _on_estop(self, request: SetBool.Request, response: SetBool.Response):
        response.success, response.message = self._service(lambda c: c.estop_request(request.data))
        return response

    def _on_enable(self, request: Trigger.Request, response: Trigger.Response):
        response.success, response.message = self._service(lambda c: (True, c.enable()))
        return response

    def _on_reset(self, request: Trigger.Request, response: Trigger.Response):
        response.success, response.message = self._service(
            lambda c: c.reset_request(self._now_ns())
        )
        return response

    def _service(self, action) -> tuple[bool, str]:
        """Run a service's action on the core; a service never raises into the executor."""
        if self.core is None:
            return False, "driver_node is not configured"
        try:
            answer = action(self.core)
        except HardwareError as e:
            return False, str(e)
        self._publish_estop()
        return answer

    # -- outputs and helpers -------------------------------------------------------------
    def _publish_estop(self) -> None:
        if self.core is not None:
            self.estop_pub.publish(Bool(data=self.core.interface.safety.estopped))

    def diagnostics_values(self) -> dict[str, object]:
        if self.core is None:
            return {}
        summary = self.latency.summary()
        lateness = self.cycle.lateness_ms() if self.cycle is not None else {}
        return {
            **self.core.diagnostics(),
            **{f"cycle_lateness_{k}_ms": round(v, 3) for k, v in lateness.items()},
            "cycle_overruns": self.cycle.overruns if self.cycle is not None else 0,
            "latency_samples": summary.samples,
            "latency_p50_ms": summary.p50_ms,
            "latency_p99_ms": summary.p99_ms,
            "latency_max_ms": summary.max_ms,
            "deadline_misses": summary.deadline_misses,
        }

    def diagnostics_level(self) -> int:
        """ros_ws/health.py: ERROR unconfigured or not under control (a latch, the link
        down); WARN while the link drops more often than `LINK_LOSSES_WARN_PER_MIN`
        (hardware/interface.py): outages of a second each are over before anyone looks."""
        if self.core is None or self.core.status:
            return health.ERROR
        return health.WARN if self.core.interface.link.flapping else health.OK

    def _bridge_options(self) -> dict:
        cfg: DriverNodeConfig = self.config
        topics = {"state_topic": cfg.bridge_state_topic, "command_topic": cfg.bridge_command_topic}
        return {"node": self, **topics}

    def _rules(self, core: DriverCore) -> CommandRules:
        if self._rules_cache is None:
            limits, age = core.interface.limits, self.config.command_max_age_s
            self._rules_cache = CommandRules(
                limits.names, limits.position_min, limits.position_max, age,
                allow_partial=self.config.allow_partial_joints_goal,
            )  # fmt: skip
        return self._rules_cache

    def _core(self) -> DriverCore:
        if self.core is None:
            raise HardwareError("driver_node is not configured")
        return self.core

    def _now_ns(self) -> int:
        return time.time_ns()

    def _stop_cycle(self) -> None:
        if self.cycle is not None:
            self.cycle.stop()
            self.cycle = None

    def close(self) -> None:
        self._stop_cycle()
        if self.core is not None:
            self.core.stop()


def _settings(cfg: DriverNodeConfig) -> DriverSettings:
    names = {f.name for f in fields(DriverSettings)}
    return DriverSettings(**{k: v for k, v in asdict(cfg).items() if k in names})


def main(args: list[str] | None = None) -> None:
    # The control cycle runs on its own thread; let it take the interpreter within 0.5 ms
    # of its deadline, not after the default 5 ms slice of a busy executor thread.
    sys.setswitchinterval(0.0005)
    run_node(DriverNode, args)


if __name__ == "__main__":
    main()
