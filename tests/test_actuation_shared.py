"""The twin moves as the hardware path does (issue 18): one command sequence, driven once
through the twin (`TwinLoop` with the robot's actuation, sim/actuation.py) and once through
driver_node -> serial -> `twinbridge emulate` (its deviations and noise off), gives the same
joint trajectories within the bounds below.

The hardware side answers each joint state with the next target, stamped with the state's
stamp, as policy_node does; the twin side applies the same target at the same control step.
What is left between them is timing the twin does not model exactly: the driver's cycle
is not phase-locked to the device's 2 ms physics steps, and a state is up to one device
state period old when the driver reads it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from builtin_interfaces.msg import Duration as DurationMsg
from contract_client import CONTROL_QOS, READER_QOS
from emulated_device import EmulatedDevice
from geometry_msgs.msg import PoseStamped
from ros_processes import LATCHED, Client, NodeProcess, goal_msg, private_domain
from sensor_msgs.msg import JointState
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from sim.actuation import ActuationConfig
from sim.twin_loop import TwinLoop

TASK = "fetch-push"
STEPS = 100  # 4 s at 25 Hz
HOLD_STEPS = 10  # each target is held this many control steps
# The bound: at the joints' top speeds (1.3-2.3 rad/s) the driver cycle's phase against the
# device's steps is worth up to 23 mrad, and a host cycle that runs late (a loaded machine)
# as much again; measured on a loaded 2-core machine: max 0.013-0.029 rad, p95
# 0.007-0.009, rms 0.003-0.004 (one outlier of 0.053 max with a training job beside it).
MAX_BOUND_RAD = 0.06
P95_BOUND_RAD = 0.015
RMS_BOUND_RAD = 0.008


def _targets(start: np.ndarray, names: list[str]) -> np.ndarray:
    """Steps of up to 0.3 rad on every arm joint (speed and acceleration limits bind) with
    the shoulder raised (the gripper stays clear of the table: no contact), the gripper
    opening and closing."""
    rng = np.random.default_rng(18)
    span = np.array([0.3, 0.0, 0.3, 0.3, 0.3, 0.3, 0.3, 0.0])
    targets = []
    for _ in range(STEPS // HOLD_STEPS):
        target = start + rng.uniform(-span, span)
        target[names.index("shoulder_lift_joint")] = start[1] - rng.uniform(0.15, 0.35)
        target[names.index("gripper")] = rng.uniform(0.0, 0.05)
        targets += [target] * HOLD_STEPS
    return np.array(targets)


def _twin_run(targets: np.ndarray) -> np.ndarray:
    """Joint positions after each control step of the twin driven by `targets`."""
    loop = TwinLoop(TASK, seed=0, actuation=ActuationConfig(link_latency_s=0.0))
    names = loop.io.command_names
    positions = []
    for target in targets:
        loop.apply(dict(zip(names, target.tolist(), strict=True)))
        loop.step()
        positions.append(loop.joint_state().positions)
    return np.array(positions)


def _hardware_run(tmp_path: Path, targets: np.ndarray, names: list[str]) -> np.ndarray:
    """Joint positions of the states after each command, through the real driver path."""
    config = tmp_path / "no-deviations.yaml"
    config.write_text("deviations: none\n")
    domain = private_domain()
    device = EmulatedDevice("fetch", tmp_path, config=config, task=TASK)
    driver = NodeProcess("driver_node", domain, tmp_path, port=device.port,
                         estop_latch_path=str(tmp_path / "estop.json"))  # fmt: skip
    client = Client(domain)
    try:
        client.node.create_publisher(PoseStamped, "/fetch/goal", LATCHED).publish(
            goal_msg((1.3, 0.8, 0.42))
        )
        publisher = client.node.create_publisher(JointTrajectory, "/fetch/joint_command",
                                                 CONTROL_QOS)  # fmt: skip
        states: list[JointState] = []
        answered: list[JointState] = []

        def answer(msg: JointState) -> None:
            states.append(msg)
            if len(states) < 25 or len(answered) >= len(targets):
                return  # let the driver settle for a second first
            command = JointTrajectory(joint_names=names)
            command.header.stamp = msg.header.stamp
            point = JointTrajectoryPoint(positions=targets[len(answered)].tolist(),
                                         velocities=[0.0] * len(names))  # fmt: skip
            point.time_from_start = DurationMsg(sec=0, nanosec=40_000_000)
            command.points = [point]
            publisher.publish(command)
            answered.append(msg)

        client.node.create_subscription(JointState, "/fetch/joint_states", answer, READER_QOS)
        client.wait_for(lambda: len(states) >= 25 + len(targets) + 1, 60, "the commanded run")
    finally:
        client.close()
        driver.stop()
        device.stop()
    first = states.index(answered[0])  # the state command 0 answered
    return np.array([s.position for s in states[first + 1 : first + 1 + len(targets)]])


def test_the_twin_and_the_hardware_path_move_alike(tmp_path: Path) -> None:
    probe = TwinLoop(TASK, seed=0)
    names = list(probe.io.command_names)
    joint_names = list(probe.io.joint_names)
    start = probe.applied_targets()
    targets = _targets(start, names)
    twin = _twin_run(targets)
    hardware = _hardware_run(tmp_path, targets, names)
    error = np.abs(twin - hardware)
    worst = np.unravel_index(int(np.argmax(error)), error.shape)
    report = (
        f"max |twin - hardware| {error.max():.4f} rad (joint {joint_names[worst[1]]}, step "
        f"{worst[0]}), p95 {np.percentile(error, 95):.4f}, rms "
        f"{np.sqrt(np.mean(error**2)):.4f}; travel {np.ptp(twin, axis=0).max():.3f} rad"
    )
    print(report)
    assert np.ptp(twin, axis=0).max() > 0.3, "the sequence must move the arm"
    assert error.max() < MAX_BOUND_RAD, report
    assert np.percentile(error, 95) < P95_BOUND_RAD, report
    assert np.sqrt(np.mean(error**2)) < RMS_BOUND_RAD, report
