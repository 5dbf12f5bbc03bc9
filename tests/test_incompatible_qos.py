"""Issue 15: an incompatible-QoS report names each peer with the policy it actually breaks.

The rmw event carries one status per endpoint, whose `last_policy_kind` is the last policy
any peer broke: a late transient-local reader and a deadline-demanding reader that arrive
together were both reported as "(policy DEADLINE)". The twin now checks each peer's QoS
in the graph against its own, policy by policy.

R22: see hardware/RELIABILITY.md.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import rclpy
from rclpy.duration import Duration
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from ros_processes import Client, NodeProcess, private_domain
from sensor_msgs.msg import JointState
from trajectory_msgs.msg import JointTrajectory

from ros_ws.node_runtime import EXIT_INCOMPATIBLE_QOS, STARTUP_WINDOW_S
from ros_ws.qos import control_qos, estop_qos, incompatible_policies, latched_qos

LATE_READER = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
HURRIED_READER = QoSProfile(depth=1, deadline=Duration(nanoseconds=1_000_000))
LOSSY_WRITER = control_qos(25.0)
LOSSY_WRITER.reliability = ReliabilityPolicy.BEST_EFFORT


def test_each_policy_is_named_alone() -> None:
    control = control_qos(25.0)
    assert incompatible_policies(control, LATE_READER) == ["DURABILITY"]
    assert incompatible_policies(control, HURRIED_READER) == ["DEADLINE"]
    assert incompatible_policies(LOSSY_WRITER, control) == ["RELIABILITY"]
    both = QoSProfile(
        depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL, deadline=HURRIED_READER.deadline
    )
    assert incompatible_policies(control, both) == ["DURABILITY", "DEADLINE"]
    # A reader with the writer's own profile always matches it.
    for qos in (control, estop_qos(), latched_qos()):
        assert incompatible_policies(qos, qos) == []


def _wait_exit(twin: NodeProcess, client: Client, timeout_s: float) -> None:
    end = time.monotonic() + timeout_s
    while twin.process.poll() is None and time.monotonic() < end:
        client.spin_for(0.1)


def test_a_late_transient_local_reader_is_reported_as_durability(tmp_path: Path) -> None:
    """R22 at start-up, with a durability mismatch: exit 3, and the log says DURABILITY."""
    domain = private_domain()
    twin = NodeProcess("twin_node", domain, tmp_path, wait_for_goal=False)
    client = Client(domain, "late_reader")
    try:
        client.node.create_subscription(
            JointState, "/fetch/joint_states", lambda _: None, LATE_READER
        )
        _wait_exit(twin, client, 30)
    finally:
        client.close()
        code = twin.stop()
    text = twin.log_text()
    assert code == EXIT_INCOMPATIBLE_QOS, text[-1500:]
    assert "incompatible QoS on joint_states: reader /late_reader (policy DURABILITY)" in text
    assert "DEADLINE" not in text, text[-1500:]


def test_peers_arriving_together_are_each_named_with_their_policy(tmp_path: Path) -> None:
    """After start-up (reported, not fatal): a late transient-local reader, a reader that
    wants a 1 ms deadline and a best-effort commander join at once; each is named once."""
    domain = private_domain()
    twin = NodeProcess("twin_node", domain, tmp_path, wait_for_goal=False)
    client = Client(domain, "watcher")
    try:
        states = client.collect(JointState, "/fetch/joint_states", control_qos(25.0))
        client.wait_for(lambda: len(states) > 0, 60, "the twin to run")
        client.spin_for(STARTUP_WINDOW_S + 0.5 - (time.monotonic() - states[0][0]))
        late, hurried, lossy = (
            rclpy.create_node(name, context=client.context)
            for name in ("late_reader", "hurried_reader", "lossy_commander")
        )
        for node in (late, hurried, lossy):
            client.executor.add_node(node)
        late.create_subscription(JointState, "/fetch/joint_states", lambda _: None, LATE_READER)
        hurried.create_subscription(
            JointState, "/fetch/joint_states", lambda _: None, HURRIED_READER
        )
        lossy.create_publisher(JointTrajectory, "/fetch/joint_command", LOSSY_WRITER)
        client.spin_for(3.0)
        assert twin.process.poll() is None, "a peer after start-up must not stop the twin"
    finally:
        client.close()
        code = twin.stop()
    text = twin.log_text()
    assert code == 0, text[-2000:]
    expected = {
        ("joint_states", "reader /late_reader (policy DURABILITY)"),
        ("joint_states", "reader /hurried_reader (policy DEADLINE)"),
        ("joint_command", "writer /lossy_commander (policy RELIABILITY)"),
    }
    for topic, peer in expected:
        line = rf"\[ERROR\] .*incompatible QoS on {topic}: [^\n]*{re.escape(peer)}"
        assert len(re.findall(line, text)) == 1, text[-2000:]
    assert "_NODE_NAME_UNKNOWN_" not in text
