"""The nodes as separate processes over DDS, checked against the README's topic contract by
a plain rclpy client: topics, types, rates, reset, e-stop, stale-input hold, rejection of
malformed commands (R12) and fatal incompatible QoS (R22).

R12, R22: see hardware/RELIABILITY.md.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped
from rclpy.duration import Duration
from rclpy.qos import DurabilityPolicy, LivelinessPolicy, QoSProfile, ReliabilityPolicy
from ros_processes import (
    LATCHED,
    Client,
    NodeProcess,
    goal_msg,
    newest_diagnostics,
    private_domain,
)
from sensor_msgs.msg import CameraInfo, Image, JointState
from std_msgs.msg import Bool
from std_srvs.srv import SetBool, Trigger
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from sim.camera_calibration import camera_intrinsics_px
from sim.tasks import DEFAULT_TASK, get_task_spec
from sim.twin import Twin

FETCH_JOINTS = [
    "shoulder_pan_joint",
    "shoulder_lift_joint",
    "upperarm_roll_joint",
    "elbow_flex_joint",
    "forearm_roll_joint",
    "wrist_flex_joint",
    "wrist_roll_joint",
    "r_gripper_finger_joint",
    "l_gripper_finger_joint",
]
# The README's control QoS: reliable, depth 5, deadline and liveliness lease 3 periods.
CONTROL_QOS = QoSProfile(
    depth=5,
    reliability=ReliabilityPolicy.RELIABLE,
    deadline=Duration(nanoseconds=120_000_000),
    liveliness=LivelinessPolicy.AUTOMATIC,
    liveliness_lease_duration=Duration(nanoseconds=120_000_000),
)
# The README's e-stop QoS: latched (reliable, transient local), heartbeat 10 Hz with a
# deadline and liveliness lease of 3 heartbeats.
ESTOP_QOS = QoSProfile(
    depth=1,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.TRANSIENT_LOCAL,
    deadline=Duration(nanoseconds=300_000_000),
    liveliness=LivelinessPolicy.AUTOMATIC,
    liveliness_lease_duration=Duration(nanoseconds=300_000_000),
)
# The README's image QoS: best effort, newest frame only.
IMAGE_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.BEST_EFFORT)
# A goal for the policy; the twin, told not to wait for its episode's goal here, steps
# regardless.
GOAL = (1.30, 0.80, 0.42)


def _goal_msg(xyz=GOAL) -> PoseStamped:
    return goal_msg(xyz)


_diagnostics = newest_diagnostics


@pytest.fixture(scope="module")
def graph(tmp_path_factory) -> Iterator[tuple[Client, dict[str, NodeProcess]]]:
    """twin_node (real time, not waiting for goals) + policy_node, and a client."""
    domain = private_domain()
    logs = tmp_path_factory.mktemp("graph")
    nodes = {
        "twin_node": NodeProcess("twin_node", domain, logs, wait_for_goal=False),
        "policy_node": NodeProcess("policy_node", domain, logs),
    }
    client = Client(domain)
    client.node.create_publisher(PoseStamped, "/fetch/goal", LATCHED).publish(_goal_msg())
    try:
        yield client, nodes
    finally:
        client.close()
        codes = {name: node.stop() for name, node in nodes.items()}
        assert codes == {"twin_node": 0, "policy_node": 0}, {
            n: node.log_text()[-2000:] for n, node in nodes.items()
        }


def test_contract_topics_have_their_types_and_rates(graph) -> None:
    client, _ = graph
    states = client.collect(JointState, "/fetch/joint_states")
    commands = client.collect(JointTrajectory, "/fetch/joint_command")
    client.wait_for(lambda: len(commands) > 5, 30, "the policy's first commands")
    expected = {
        "/fetch/joint_states": "sensor_msgs/msg/JointState",
        "/fetch/object_pose": "geometry_msgs/msg/PoseStamped",
        "/fetch/joint_command": "trajectory_msgs/msg/JointTrajectory",
        "/fetch/goal": "geometry_msgs/msg/PoseStamped",
        "/fetch/estop_state": "std_msgs/msg/Bool",
        "/fetch/diagnostics": "diagnostic_msgs/msg/DiagnosticArray",
        "/clock": "rosgraph_msgs/msg/Clock",
    }
    client.wait_for(
        lambda: set(expected) <= set(dict(client.node.get_topic_names_and_types())),
        10,
        "discovery of every contract topic",
    )
    types = dict(client.node.get_topic_names_and_types())
    assert {topic: types[topic][0] for topic in expected} == expected
    services = dict(client.node.get_service_names_and_types())
    assert services["/fetch/reset"] == ["std_srvs/srv/Trigger"]
    assert services["/fetch/enable"] == ["std_srvs/srv/Trigger"]
    assert services["/fetch/estop"] == ["std_srvs/srv/SetBool"]
    del states[:], commands[:]
    client.spin_for(2.0)
    assert 40 <= len(states) <= 60, f"joint_states at {len(states) / 2} Hz, contract: 25 Hz"
    assert 40 <= len(commands) <= 60, f"joint_command at {len(commands) / 2} Hz"
    state = states[-1][1]
    assert list(state.name) == FETCH_JOINTS and len(state.position) == len(state.velocity) == 9
    state_stamps = {(m.header.stamp.sec, m.header.stamp.nanosec) for _, m in states}
    answered = [(m.header.stamp.sec, m.header.stamp.nanosec) in state_stamps for _, m in commands]
    assert sum(answered) >= len(commands) - 2, "each command carries its state's stamp"
    assert commands[-1][1].joint_names[-1] == "gripper"


def test_reset_answers_with_the_episode_seed(graph) -> None:
    """The next episode gets seed + 1, but only once the running one has run its control
    steps (the default task's: 100, 4 s): a reset in between is refused with its reason."""
    client, _ = graph
    spec = get_task_spec(DEFAULT_TASK)
    first = client.call(Trigger, "/fetch/reset", Trigger.Request())
    early = client.call(Trigger, "/fetch/reset", Trigger.Request())
    assert first.success and not early.success and "is running" in early.message
    client.spin_for(spec.max_episode_steps / spec.control_rate_hz + 0.2)
    second = client.call(Trigger, "/fetch/reset", Trigger.Request())
    assert second.success, second.message
    fields = [dict(item.split("=") for item in r.message.split()) for r in (first, second)]
    seeds = [int(f["seed"]) for f in fields]
    assert seeds[1] == seeds[0] + 1
    assert int(fields[1]["stamp_ns"]) > int(fields[0]["stamp_ns"]) > 0


def test_no_command_is_published_after_estop_until_enabled(graph) -> None:
    client, _ = graph
    commands = client.collect(JointTrajectory, "/fetch/joint_command")
    estop_state = client.collect(Bool, "/fetch/estop_state", LATCHED)
    states = client.collect(JointState, "/fetch/joint_states")
    client.wait_for(lambda: len(commands) > 3, 10, "commands before the e-stop")
    answer = client.call(SetBool, "/fetch/estop", SetBool.Request(data=True))
    assert answer.success
    client.spin_for(0.2)  # messages already on the wire when the e-stop latched
    del commands[:], states[:]
    # The arm decelerates for a few control steps (sim time: a loaded host may run late).
    client.wait_for(lambda: len(states) >= 10, 10, "ten states after the e-stop")
    del states[:]
    client.spin_for(1.5)
    assert commands == [], "the policy published after the e-stop"
    assert len(states) > 20, "the twin keeps reporting while stopped"
    assert estop_state[-1][1].data is True
    positions = np.array([m.position for _, m in states])
    drift = np.abs(positions - positions[0]).max(axis=0)
    assert drift.max() < 0.02, f"the arm holds still: drift per joint {drift.round(4)}"
    refused = client.call(SetBool, "/fetch/estop", SetBool.Request(data=False))
    assert not refused.success and "enable" in refused.message
    assert client.call(Trigger, "/fetch/enable", Trigger.Request()).success
    client.wait_for(lambda: len(commands) > 3, 5, "commands after enable")


def test_malformed_commands_are_dropped_and_counted(graph) -> None:
    client, _ = graph
    diagnostics = client.collect(DiagnosticArray, "/fetch/diagnostics")
    publisher = client.node.create_publisher(JointTrajectory, "/fetch/joint_command", CONTROL_QOS)
    client.wait_for(lambda: publisher.get_subscription_count() > 0, 10, "the twin's reader")
    states = client.collect(JointState, "/fetch/joint_states")
    client.wait_for(lambda: len(states) > 0, 5, "a state")
    stamp = states[-1][1].header.stamp
    names = [*FETCH_JOINTS[:7], "gripper"]  # the contract's command names
    bad = {
        "non_finite": (names, [math.nan] * 8, stamp),
        "unknown_joint": (["elbow"], [0.0], stamp),
        "zero_stamp": (names, [0.0] * 8, Time()),
        "partial_joints": (names[:7], [0.0] * 7, stamp),
    }
    for names, positions, when in bad.values():
        msg = JointTrajectory(joint_names=names)
        msg.header.stamp = when
        point = JointTrajectoryPoint(positions=positions)
        point.time_from_start.nanosec = 40_000_000
        msg.points = [point]
        publisher.publish(msg)
    client.wait_for(
        lambda: all(
            int(_diagnostics(diagnostics, "twin_node").get(f"rejected_{r}", 0)) >= 1 for r in bad
        ),
        5,
        "the twin to count each rejection",
    )


def test_an_incompatible_qos_peer_stops_the_node(tmp_path: Path) -> None:
    """R22: a reader demanding a 1 ms deadline cannot be served: the twin exits (code 3)."""
    domain = private_domain()
    twin = NodeProcess("twin_node", domain, tmp_path, wait_for_goal=False)
    client = Client(domain, "incompatible_reader")
    try:
        demanding = QoSProfile(depth=1, deadline=Duration(nanoseconds=1_000_000))
        client.node.create_subscription(
            JointState, "/fetch/joint_states", lambda m: None, demanding
        )
        end = time.monotonic() + 30
        while twin.process.poll() is None and time.monotonic() < end:
            client.spin_for(0.1)
    finally:
        client.close()
        code = twin.stop()
    assert code == 3, twin.log_text()[-1500:]
    assert "incompatible QoS on joint_states" in twin.log_text()


def test_policy_holds_when_joint_states_go_stale(tmp_path: Path) -> None:
    """The client plays the robot; when its joint states stop, so do the commands."""
    domain = private_domain()
    policy = NodeProcess("policy_node", domain, tmp_path)
    client = Client(domain, "fake_robot")
    try:
        commands = client.collect(JointTrajectory, "/fetch/joint_command")
        diagnostics = client.collect(DiagnosticArray, "/fetch/diagnostics")
        publishers = _robot_publishers(client)
        client.wait_for(
            lambda: publishers["joint_states"].get_subscription_count() > 0, 30, "policy_node"
        )
        stamps = _publish_states(client, publishers, seconds=1.5, start_s=10.0)
        assert len(commands) > 20
        answered = {m.header.stamp.sec + m.header.stamp.nanosec * 1e-9 for _, m in commands}
        assert answered <= {round(s, 9) for s in stamps} | answered  # stamps copied
        assert min(abs(a - s) for a in answered for s in stamps[-5:]) < 1e-6
        client.spin_for(0.3)  # in flight
        del commands[:]
        estop = publishers["estop_state"]
        for _ in range(10):  # the e-stop source stays alive: only joint states went stale
            estop.publish(Bool(data=False))
            client.spin_for(0.1)
        assert commands == []
        client.wait_for(
            lambda: (
                _diagnostics(diagnostics, "policy_node").get("holding") == "stale_joint_states"
            ),
            3,
            "policy_node to report the stale input",
        )
    finally:
        client.close()
        assert policy.stop() == 0, policy.log_text()[-1500:]


def _robot_publishers(client: Client) -> dict:
    node = client.node
    return {
        "joint_states": node.create_publisher(JointState, "/fetch/joint_states", CONTROL_QOS),
        "object_pose": node.create_publisher(PoseStamped, "/fetch/object_pose", CONTROL_QOS),
        "estop_state": node.create_publisher(Bool, "/fetch/estop_state", ESTOP_QOS),
        "goal": node.create_publisher(PoseStamped, "/fetch/goal", LATCHED),
    }


def _publish_states(client: Client, pubs: dict, seconds: float, start_s: float) -> list[float]:
    """Publish a resting Fetch and block at 25 Hz; returns the stamps sent."""
    pubs["goal"].publish(_goal_msg())
    stamps = []
    positions = [0.0, -0.66, 0.0, 1.14, 0.0, 1.29, 0.0, 0.0, 0.0]
    for k in range(int(seconds * 25)):
        stamp_s = round(start_s + 0.04 * k, 9)
        sec, nanosec = divmod(round(stamp_s * 1e9), 1_000_000_000)
        state = JointState(name=FETCH_JOINTS, position=positions, velocity=[0.0] * 9)
        state.header.stamp = Time(sec=sec, nanosec=nanosec)
        pose = _goal_msg((1.25, 0.70, 0.425))
        pose.header.stamp = state.header.stamp
        pubs["joint_states"].publish(state)
        pubs["object_pose"].publish(pose)
        pubs["estop_state"].publish(Bool(data=False))
        stamps.append(stamp_s)
        client.spin_for(0.04)
    return stamps


def test_twin_publishes_requested_cameras_with_intrinsics(tmp_path: Path) -> None:
    """Cameras are off by default; asked for, each gets image_raw + camera_info."""
    domain = private_domain()
    twin = NodeProcess(
        "twin_node",
        domain,
        tmp_path,
        wait_for_goal=False,
        cameras="head_camera_rgb,external_camera_0",
        camera_rate_hz=10.0,
        camera_width_px=64,
        camera_height_px=48,
    )
    client = Client(domain, "camera_reader")
    try:
        images = client.collect(Image, "/fetch/camera_1/image_raw", IMAGE_QOS)
        infos = client.collect(CameraInfo, "/fetch/camera_1/camera_info", IMAGE_QOS)
        client.wait_for(lambda: len(images) >= 3 and len(infos) >= 3, 30, "camera frames")
    finally:
        client.close()
        assert twin.stop() == 0, twin.log_text()[-1500:]
    image, info = images[-1][1], infos[-1][1]
    assert (image.width, image.height, image.encoding) == (64, 48, "rgb8")
    pixels = np.frombuffer(bytes(image.data), np.uint8).reshape(48, 64, 3)
    assert pixels.std() > 5, "a rendered scene, not a blank frame"
    assert image.header.frame_id == info.header.frame_id == "external_camera_0"
    model = Twin.load("fetch", "push").model  # the intrinsics the twin renders with
    expected = camera_intrinsics_px(model, model.camera("external_camera_0").id, 64, 48)
    assert (info.k[0], info.k[4], info.k[2], info.k[5]) == pytest.approx(expected)
    assert (info.k[2], info.k[5]) == (31.5, 23.5)  # OpenCV's pixel centres: (w - 1) / 2
