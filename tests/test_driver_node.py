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
