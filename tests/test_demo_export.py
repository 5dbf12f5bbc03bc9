"""Demonstrations survive export (issue 17): a person's holds are actions, the e-stop and a
step with no command split an episode instead of dropping it, and meta.json keeps the
recording's episode index and seed.

The bag is written by the project's BagWriter with messages serialized by rclpy from the
nodes' own adapters (what recorder_node stores), states of a real twin of the task; the
dataset is read back with numpy and json only, and once through `twinbridge bag export`.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from rclpy.serialization import serialize_message
from std_msgs.msg import Bool

from hardware.recording.alignment import load_episodes
from hardware.recording.export import export_bag
from hardware.recording.writer import BagWriter, BagWriterConfig
from ros_ws import adapters
from sim.twin_loop import TwinLoop

ROOT = Path(__file__).resolve().parents[1]
TASK = "fetch-pick-and-place"
NS = "/fetch"
ACTIONS = ["dx", "dy", "dz", "gripper"]
STEPS = 50
SEEDS = (11, 12, 13, 14)
LATCHED = range(19, 30)  # episode 1: steps under the e-stop (latched in 19, released in 29)
PAUSE = 10  # states 20..29 were received latched: the clock paused (60 steps in all)
GAP = 5  # episode 2: the step nothing answered
HOLDS = range(10, 30)  # episode 0: the operator presses nothing


def _operator_action(episode: int, k: int) -> np.ndarray:
    """A person's action: moves, then holds (zero motion, the gripper as it was)."""
    gripper = 1.0 if k < 35 else -1.0  # closed after the holds
    if episode == 0 and k in HOLDS:
        return np.array([0.0, 0.0, 0.0, gripper])
    return np.array([0.3 * np.sin(k), 0.2, -0.1, gripper])


def _write(writer: BagWriter, topic: str, msg, log_ns: int) -> None:
    writer.write(f"{NS}/{topic}", serialize_message(msg), log_ns)


def _episode(writer: BagWriter, loop: TwinLoop, index: int, log_ns: int, end: bool) -> int:
    """One recorded episode as the graph produces it; returns the next free log time."""
    seed, period = SEEDS[index], round(loop.control_period_s * 1e9)
    loop.env.reset(seed=seed)
    loop.step()  # as the twin's reset: a new stamp
    first = loop.stamp_ns
    steps = STEPS + (PAUSE if index == 1 else 0)
    goal = json.dumps([round(float(v), 9) for v in loop.env.goal])
    writer.start_episode(index, log_ns, task=TASK, robot="fetch", seed=seed, goal=goal,
                         first_stamp_ns=first, source_episode=index)  # fmt: skip
    names = loop.io.command_names
    for k in range(steps + 1):
        log_ns += period
        state = loop.joint_state()
        _write(writer, "joint_states", adapters.joint_state_msg(state), log_ns)
        _write(writer, "object_pose", adapters.pose_msg(loop.object_pose()), log_ns + 10)
        if k == steps:
            break
        latched = index == 1 and k in LATCHED
        if latched and k == LATCHED[0]:
            _write(writer, "estop_state", Bool(data=True), log_ns + 5_000_000)
        if index == 1 and k == LATCHED[-1] + 1:
            _write(writer, "estop_state", Bool(data=False), log_ns - 5_000_000)  # in step 29
        targets = loop.applied_targets()
        applied = adapters.trajectory_msg(names, targets, state.stamp_ns, loop.control_period_s)
        _write(writer, "joint_command_applied", applied, log_ns + 20)
        held = latched and k > LATCHED[0]  # a hold published while latched: not the operator's
        action = np.zeros(4) if held else _operator_action(index, k)
        if not (index == 2 and k == GAP):
            msg = adapters.action_msg(ACTIONS, action, state.stamp_ns)
            _write(writer, "teleop/action", msg, log_ns + 30)
            _write(writer, "joint_command", applied, log_ns + 31)
        loop.step()
    if end:  # task_node's end report (episode 1's clock paused)
        pause = [[first + 19 * period, first + 30 * period]] if index == 1 else []  # 20..29
        writer.end_episode(index, log_ns + 1000, success=index % 2 == 0,
                           first_judged_stamp_ns=first,
                           last_judged_stamp_ns=first + steps * period,
                           paused_stamps_ns=json.dumps(pause))  # fmt: skip
    return log_ns + 10 * period


@pytest.fixture(scope="module")
def bag(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("demos") / "human.mcap"
    loop = TwinLoop(TASK)
    writer = BagWriter(path, BagWriterConfig(fsync=False), robot="fetch", task=TASK)
    for topic, kind in (("joint_states", "sensor_msgs/msg/JointState"),
                        ("object_pose", "geometry_msgs/msg/PoseStamped"),
                        ("joint_command", "trajectory_msgs/msg/JointTrajectory"),
                        ("joint_command_applied", "trajectory_msgs/msg/JointTrajectory"),
                        ("teleop/action", "sensor_msgs/msg/JointState"),
                        ("estop_state", "std_msgs/msg/Bool")):  # fmt: skip
        writer.add_topic(f"{NS}/{topic}", kind)
    log_ns = 1_700_000_000_000_000_000
    _write(writer, "estop_state", Bool(data=False), log_ns)
    for index in range(4):  # the recording stops inside episode 3
        log_ns = _episode(writer, loop, index, log_ns, end=index < 3)
    writer.close()
    return path


def _read(directory: Path) -> tuple[dict, list[dict[str, np.ndarray]]]:
    """The dataset as any reader sees it: json and numpy, nothing of ours."""
    meta = json.loads((directory / "meta.json").read_text())
    files = []
    for entry in meta["episodes"]:
        with np.load(directory / entry["file"], allow_pickle=False) as npz:
            files.append({key: npz[key] for key in npz.files})
    return meta, files


def test_every_episode_with_pauses_holds_and_an_estop_is_kept(bag: Path, tmp_path: Path) -> None:
    report = export_bag(bag, tmp_path / "ds")
    assert report.exported == [0, 1, 2] and list(report.skipped) == [3]
    meta, files = _read(tmp_path / "ds")
    origin = [(e["episode"], e["segment"], e["first_step"], e["steps"]) for e in meta["episodes"]]
    assert origin == [(0, 0, 0, 50), (1, 0, 0, 19), (1, 1, 30, 30), (2, 0, 0, 5), (2, 1, 6, 44)]
    assert [e["seed"] for e in meta["episodes"]] == [11, 12, 12, 13, 13]  # the recording's
    assert [e["success"] for e in meta["episodes"]] == [True, False, False, True, True]
    assert [int(f["episode"]) for f in files] == [0, 1, 1, 2, 2]
    assert [int(f["seed"]) for f in files] == [11, 12, 12, 13, 13]
    assert meta["skipped_episodes"] == {"3": "no end marker (the recording stopped inside it)"}
    line = report.line()
    assert line.startswith("3 episodes (2 successful)") and "(5 files)" in line
    assert "steps 19-29 e-stop latched" in line and "step 5 no teleop/action" in line


def test_a_hold_is_exported_as_exactly_zero_motion_with_the_gripper_unchanged(
    bag: Path, tmp_path: Path
) -> None:
    export_bag(bag, tmp_path / "ds")
    _, files = _read(tmp_path / "ds")
    action = files[0]["action"]
    expected = np.array([_operator_action(0, k) for k in range(STEPS)])
    assert np.array_equal(action, expected)  # every step, holds included, as recorded
    holds = action[list(HOLDS)]
    assert np.array_equal(holds[:, :3], np.zeros((len(HOLDS), 3)))
    assert np.array_equal(holds[:, 3], action[HOLDS[0] - 1 : HOLDS[-1], 3])  # gripper as before


def test_estop_and_gap_steps_are_left_out_and_the_rest_is_consecutive(
    bag: Path, tmp_path: Path
) -> None:
    export_bag(bag, tmp_path / "ds")
    _, files = _read(tmp_path / "ds")
    period = 40_000_000
    for f in files:
        assert np.all(np.diff(f["stamp_ns"]) == period)  # no step missing inside a file
        assert len(f["observation"]) == len(f["action"]) + 1 == len(f["stamp_ns"])
        assert np.isfinite(f["action"]).all() and np.isfinite(f["command"]).all()
    before, after = files[1], files[2]  # episode 1 around the e-stop
    assert after["stamp_ns"][0] - before["stamp_ns"][-1] == 11 * period  # 11 latched steps
    assert not np.any(np.all(before["action"] == 0.0, axis=1))  # no e-stop hold exported
    assert files[4]["stamp_ns"][0] - files[3]["stamp_ns"][-1] == period  # the one gap step
    (episode,) = load_episodes(bag, [1])
    assert episode.steps == 60 and episode.complete  # the pause lengthened it: still whole
    assert np.flatnonzero(episode.estopped).tolist() == list(LATCHED)


def test_a_pause_task_node_reported_is_left_out_without_estop_state(bag: Path) -> None:
    """Either source marks the e-stop: the recorder's estop_state, or task_node's pause."""
    from hardware.recording import alignment

    (episode,) = load_episodes(bag, [1])
    stamps = episode.stamp_ns.tolist()
    pause = json.dumps([[stamps[19], stamps[30]]])  # states 20..29 were not counted
    assert np.flatnonzero(alignment._paused(stamps, pause)).tolist() == list(range(19, 30))
    assert not alignment._paused(stamps, "[]").any()


def test_bag_export_command_writes_the_dataset(bag: Path, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "sim.cli", "bag", "export", str(bag), "--out", str(tmp_path / "d")],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("3 episodes (2 successful)")
    assert "episode 3 skipped: no end marker" in result.stdout
    from hardware.recording.dataset import load_dataset

    data = load_dataset(tmp_path / "d", task=TASK)  # the HER learner's loader takes it
    assert len(data.episodes) == 5 and len(data.successful) == 3


# -- `twinbridge record`: ready, whole episodes only, warnings about the task's topics ----
def test_the_relay_begins_no_episode_before_the_recorder_is_ready(tmp_path: Path) -> None:
    from hardware.recording.reader import BagReader
    from hardware.recording.relay import EpisodeRelay

    writer = BagWriter(tmp_path / "r.mcap", BagWriterConfig(fsync=False), robot="fetch")
    relay = EpisodeRelay(writer)
    relay.ready = False
    start = {"episode": "0", "seed": "5", "task": TASK, "robot": "fetch"}
    relay.on_status("task_node/episode_start", start, 1)  # before ready: not begun
    relay.ready = True
    relay.on_status("task_node/episode", {"episode": "0", "success": "True"}, 2)  # its end
    relay.on_status("task_node/episode_start", {**start, "episode": "1", "seed": "6"}, 3)
    relay.on_status("task_node/episode", {"episode": "1", "success": "False"}, 4)
    writer.close()
    spans = BagReader(tmp_path / "r.mcap").episodes()
    assert [(s.index, s.fields["source_episode"], s.fields["seed"]) for s in spans] == [(0, 1, 6)]
    assert relay.counters["episodes_started_before_ready"] == 1
    assert relay.counters["episode_ends_without_start"] == 1


def test_a_topic_is_expected_only_when_the_task_has_it() -> None:
    from hardware.recording.topics import recorded_topics

    topics = {t.name: t for t in recorded_topics("head_camera_rgb")}
    nobody = {name for name, t in topics.items() if t.expected(0, 0)}
    assert nobody == {"joint_states", "joint_command", "joint_command_applied", "goal",
                      "diagnostics", "estop_state"}  # fmt: skip
    assert topics["teleop/action"].expected(1, 0) and topics["camera_0/image_raw"].expected(1, 0)
    assert not topics["object_pose"].expected(1, 0)  # a twin publishes it; no task reads it
    assert topics["object_pose"].expected(1, 1)  # task_node reads it: the task has an object


def test_record_says_when_it_is_ready_records_no_half_episode_and_warns_about_task_topics(
    tmp_path: Path,
) -> None:
    """`twinbridge record` against a graph whose task node is mid-episode: the ready line,
    then only the episode that starts after it; silent topics warned about only when the
    task has them (no operator, no camera publisher, no object reader here)."""
    import os
    import signal
    import threading
    import time

    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from geometry_msgs.msg import PoseStamped
    from rclpy.context import Context
    from rclpy.executors import SingleThreadedExecutor
    from ros_processes import private_domain
    from sensor_msgs.msg import JointState
    from trajectory_msgs.msg import JointTrajectory

    from hardware.recording.reader import BagReader
    from ros_ws import qos
    from ros_ws.discovery import sim_environment

    domain, bag = private_domain(), tmp_path / "session.mcap"
    env = sim_environment(domain)
    os.environ.update(env)
    context = Context()
    rclpy.init(context=context, domain_id=domain)
    node = rclpy.create_node("task_node", namespace="/fetch", context=context)
    states = node.create_publisher(JointState, "joint_states", qos.control_qos(25.0))
    node.create_publisher(PoseStamped, "object_pose", qos.control_qos(25.0))  # silent
    node.create_publisher(JointTrajectory, "joint_command", qos.control_qos(25.0))  # silent
    status = node.create_publisher(DiagnosticArray, "diagnostics", qos.diagnostics_qos())
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)

    def say(name: str, **values) -> None:
        status.publish(adapters.diagnostics_msg(time.time_ns(), name, values))

    def spin(seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            ns = time.time_ns()
            msg = JointState(name=["a"], position=[0.0], velocity=[0.0])
            msg.header.stamp = adapters.to_time(ns)
            states.publish(msg)
            executor.spin_once(timeout_sec=0.04)

    start = {"seed": 7, "task": TASK, "robot": "fetch", "goal": "[1.3, 0.8, 0.42]"}
    say("task_node/episode_start", episode=0, **start)  # running before the recorder
    record = subprocess.Popen(
        [sys.executable, "-m", "sim.cli", "record", "--robot", "fetch", "--out", str(bag),
         "--domain-id", str(domain), "--topic-timeout-s", "2", "--cameras", "head_camera_rgb"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    lines: list[str] = []
    assert record.stdout is not None
    reader = threading.Thread(target=lambda: lines.extend(record.stdout), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 60
        while not any(line.startswith("recorder: ready") for line in lines):
            assert time.monotonic() < deadline and record.poll() is None, lines
            spin(0.1)
        say("task_node/episode", episode=0, seed=7, success=True)  # the half episode ends
        spin(0.3)
        say("task_node/episode_start", episode=1, **{**start, "seed": 8})
        spin(0.5)
        say("task_node/episode", episode=1, seed=8, success=False)
        spin(2.5)  # past --topic-timeout-s
    finally:
        record.send_signal(signal.SIGINT)
        _, stderr = record.communicate(timeout=30)
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown(context=context)
    reader.join(timeout=5)
    assert record.returncode == 0, stderr[-3000:]
    ready = [line for line in lines if line.startswith("recorder: ready")]
    assert len(ready) == 1 and str(bag) in ready[0] and "/fetch" in ready[0]
    spans = BagReader(bag).episodes()
    assert [
        (s.index, s.complete, s.fields["source_episode"], s.fields["seed"]) for s in spans
    ] == [(0, True, 1, 8)]  # episode 0 was running when recording started: not recorded half
    (warning,) = [line for line in stderr.splitlines() if "no message within" in line]
    assert "/fetch/joint_command_applied" in warning and "/fetch/joint_command," in warning
    for not_the_tasks in ("teleop/action", "camera_0", "object_pose"):
        assert not_the_tasks not in warning, warning
