"""driver_node over the serial driver and `twinbridge emulate`, with the unchanged policy
node on top: the contract is the twin's, the e-stop latches through a policy node restart,
and what reached the device is read back from the emulator's log.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from emulated_device import EmulatedDevice
from geometry_msgs.msg import PoseStamped
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState, GetState
from ros_processes import (
    LATCHED,
    Client,
    NodeProcess,
    goal_msg,
    newest_diagnostics,
    private_domain,
)
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool
from std_srvs.srv import SetBool, Trigger

from sim.robots import get_robot

GOAL = (1.30, 0.80, 0.42)


_diagnostics = newest_diagnostics


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[tuple[Client, dict[str, NodeProcess], EmulatedDevice]]:
    """emulator + driver_node (serial) + policy_node, and a plain rclpy client."""
    domain = private_domain()
    device = EmulatedDevice("fetch", tmp_path)
    driver = NodeProcess(
        "driver_node",
        domain,
        tmp_path,
        port=device.port,
        estop_latch_path=str(tmp_path / "estop.json"),
    )
    nodes = {"driver_node": driver, "policy_node": _policy(domain, tmp_path)}
    client = Client(domain)
    client.node.create_publisher(PoseStamped, "/fetch/goal", LATCHED).publish(goal_msg(GOAL))
    try:
        yield client, nodes, device
    finally:
        client.close()
        codes = {name: node.stop() for name, node in nodes.items()}
        device.stop()
        assert codes == {"driver_node": 0, "policy_node": 0}, {
            n: node.log_text()[-2000:] for n, node in nodes.items()
        }


def _policy(domain: int, logs: Path) -> NodeProcess:
    return NodeProcess("policy_node", domain, logs, use_sim_time=False)


def _accepted_since(device: EmulatedDevice, since_index: int) -> list[dict]:
    rows = device.events()[since_index:]
    return [r for r in rows if r["event"] == "command" and r["accepted"]]


def test_driver_publishes_the_twins_contract(rig) -> None:
    client, _, _ = rig
    states = client.collect(JointState, "/fetch/joint_states")
    poses = client.collect(PoseStamped, "/fetch/object_pose")
    client.wait_for(lambda: len(states) > 30, 30, "joint_states from the driver")
    t0, t1 = states[5][0], states[-1][0]
    rate = (len(states) - 6) / (t1 - t0)
    assert 20.0 < rate < 30.0, rate  # the policy's 25 Hz
    assert len(states[-1][1].name) == 9 and poses, "joint names and the tracked object"
    stamps = {m.header.stamp.sec * 10**9 + m.header.stamp.nanosec for _, m in states}
    pose_stamps = {m.header.stamp.sec * 10**9 + m.header.stamp.nanosec for _, m in poses}
    assert len(stamps & pose_stamps) > 10, "states and poses are paired by stamp"


def test_estop_latches_through_a_policy_node_restart(rig, tmp_path: Path) -> None:
    """No command reaches the device's servos after the e-stop, across a policy restart,
    until `enable`; then the policy drives again."""
    client, nodes, device = rig
    diagnostics = client.collect(DiagnosticArray, "/fetch/diagnostics")
    estop_state = client.collect(Bool, "/fetch/estop_state", LATCHED)
    client.wait_for(lambda: _moving(device), 30, "the policy moving the arm")

    assert client.call(SetBool, "/fetch/estop", SetBool.Request(data=True)).success
    mark = len(device.events())
    nodes["policy_node"].stop()
    nodes["policy_node"] = _policy(private_domain_of(client), tmp_path)
    client.wait_for(
        lambda: _diagnostics(diagnostics, "policy_node").get("holding") == "estop",
        30,
        "the restarted policy node holding on the e-stop",
    )
    client.spin_for(1.0)
    assert estop_state[-1][1].data is True
    assert _accepted_since(device, mark) == [], "a command reached the servos after e-stop"
    assert _diagnostics(diagnostics, "driver_node").get("safety_estop_reason")

    assert client.call(Trigger, "/fetch/enable", Trigger.Request()).success
    client.wait_for(lambda: len(_accepted_since(device, mark)) > 30, 10, "commands after enable")


def _moving(device: EmulatedDevice) -> bool:
    recent = [c["positions"] for c in _accepted_since(device, 0)[-20:]]
    return len(recent) == 20 and float(np.ptp(np.array(recent), axis=0).max()) > 1e-3


def private_domain_of(client: Client) -> int:
    return client.context.get_domain_id()


def test_a_lifecycle_manager_drives_the_driver_through_its_transitions(tmp_path: Path) -> None:
    """With `autostart` off the driver waits UNCONFIGURED, its services answering; the
    transitions `ros2 lifecycle set` sends then bring it up and down as lifecycle_py's
    talker: states only while ACTIVE, torque off at cleanup, the process ends at shutdown."""
    domain = private_domain()
    device = EmulatedDevice("fetch", tmp_path)
    driver = NodeProcess(
        "driver_node", domain, tmp_path, port=device.port, autostart=False,
        estop_latch_path=str(tmp_path / "estop.json"),
    )  # fmt: skip
    client = Client(domain)
    states = client.collect(JointState, "/fetch/joint_states")
    estop_state = client.collect(Bool, "/fetch/estop_state", LATCHED)

    def transition(name: str, label: str) -> None:
        request = ChangeState.Request(transition=Transition(id=getattr(Transition, name)))
        assert client.call(ChangeState, "/fetch/driver_node/change_state", request).success
        answer = client.call(GetState, "/fetch/driver_node/get_state", GetState.Request())
        assert answer.current_state.label == label, name

    def states_within(seconds: float) -> int:
        count = len(states)
        client.spin_for(seconds)
        return len(states) - count

    try:
        reply = client.call(Trigger, "/fetch/enable", Trigger.Request())
        assert not reply.success and "not configured" in reply.message
        transition("TRANSITION_CONFIGURE", "inactive")
        client.wait_for(lambda: bool(estop_state), 10, "estop_state of the configured driver")
        assert states_within(0.5) == 0 and device.events("enable") == []
        transition("TRANSITION_ACTIVATE", "active")
        client.wait_for(lambda: len(states) > 10, 10, "joint_states of the active driver")
        transition("TRANSITION_DEACTIVATE", "inactive")
        client.spin_for(0.2)
        assert states_within(0.5) == 0
        transition("TRANSITION_CLEANUP", "unconfigured")
        client.spin_for(0.2)
        assert {e["servo"] for e in device.events("torque_disable")} == set(
            get_robot("fetch").command_names
        )
        transition("TRANSITION_CONFIGURE", "inactive")
        transition("TRANSITION_ACTIVATE", "active")
        client.wait_for(lambda: states_within(0.2) > 0, 10, "states after a re-activation")
        request = ChangeState.Request(
            transition=Transition(id=Transition.TRANSITION_ACTIVE_SHUTDOWN)
        )
        assert client.call(ChangeState, "/fetch/driver_node/change_state", request).success
        assert driver.process.wait(timeout=10) == 0, driver.log_text()[-2000:]
    finally:
        client.close()
        driver.stop()
        device.stop()
