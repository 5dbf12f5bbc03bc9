"""Issue 7 end to end: the scripted operator teleoperates the twin through the ROS graph
(separate processes over DDS), recorder_node writes MCAP, two independent readers read it,
`twinbridge bag export` writes the dataset, and `twinbridge replay` reproduces each episode.
The same session through driver_node on the serial emulator records the safety clamp."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from mcap.reader import make_reader
from mcap_ros2.decoder import DecoderFactory
from ros_processes import ROOT, private_domain
from rosbags.highlevel import AnyReader

from sim.tasks import get_task_spec

TWINBRIDGE = [sys.executable, "-m", "sim.cli"]
TASK = "fetch-pick-and-place"
EPISODES = 4
CAMERA = "head_camera_rgb"
# A twin recording replays exactly (the same seeded reset, the same applied targets, the
# same physics): anything above float noise means replay does not restore what ran.
TWIN_REPLAY_TOLERANCE_RAD = 1e-9


def _twinbridge(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*TWINBRIDGE, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )


def _teleop(out: Path, *extra: str) -> subprocess.CompletedProcess:
    return _twinbridge(
        "teleop", "--task", TASK, "--device", "scripted", "--domain-id", str(private_domain()),
        "--json", "--log-dir", str(out / "logs"), *extra,
    )  # fmt: skip


@pytest.fixture(scope="module")
def twin_session(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("teleop-twin")
    bag = out / "pnp.mcap"
    args = ("--episodes", str(EPISODES), "--fast", "--cameras", CAMERA, "--record", str(bag))
    result = _teleop(out, *args)
    assert result.returncode == 0, result.stderr[-3000:]
    return bag, json.loads(result.stdout.strip().splitlines()[-1])


def test_scripted_operator_solves_pick_and_place_through_the_graph(twin_session) -> None:
    _, summary = twin_session
    assert summary["episodes"] == EPISODES and summary["task"] == TASK
    assert summary["success_rate"] >= 0.75


def test_rosbags_reads_every_contract_topic_with_measured_timestamps(twin_session) -> None:
    bag, _ = twin_session
    counts: dict[str, int] = {}
    log_times: dict[str, list[int]] = {}
    with AnyReader([bag]) as reader:
        for connection, timestamp, raw in reader.messages():
            msg = reader.deserialize(raw, connection.msgtype)
            counts[connection.topic] = counts.get(connection.topic, 0) + 1
            log_times.setdefault(connection.topic, []).append(timestamp)
            if connection.topic == "/fetch/camera_0/image_raw":
                assert (msg.height, msg.width, msg.encoding) == (200, 200, "rgb8")
    steps = EPISODES * 50
    for topic in ("joint_states", "joint_command", "joint_command_applied", "teleop/action"):
        assert counts[f"/fetch/{topic}"] >= steps, topic
    assert counts["/fetch/camera_0/image_raw"] > 0 and counts["/fetch/object_pose"] >= steps
    assert counts["/twinbridge/episodes"] == 2 * EPISODES  # a start and an end each
    # Log times are receive times (measured): increasing, and not on a nominal grid.
    states = np.diff(log_times["/fetch/joint_states"])
    assert (states >= 0).all() and len(set(states.tolist())) > 10


def test_mcap_reader_validates_crcs_and_decodes_markers(twin_session) -> None:
    bag, _ = twin_session
    markers = []
    with open(bag, "rb") as f:
        reader = make_reader(f, validate_crcs=True, decoder_factories=[DecoderFactory()])
        assert reader.get_header().profile == "ros2"
        for *_, msg in reader.iter_decoded_messages(topics=["/twinbridge/episodes"]):
            markers.append(json.loads(msg.data))
        summary = reader.get_summary()
    assert summary is not None and summary.statistics.message_count > 0
    assert [(m["event"], m["episode"]) for m in markers] == [
        (event, i) for i in range(EPISODES) for event in ("start", "end")
    ]
    assert all(m["task"] == TASK and m["robot"] == "fetch" for m in markers[::2])


def test_export_writes_aligned_episodes_that_load_as_demonstrations(
    twin_session, tmp_path: Path
) -> None:
    from hardware.recording.dataset import load_dataset
    from sim.envs import make_task_env

    bag, summary = twin_session
    result = _twinbridge("bag", "export", str(bag), "--out", str(tmp_path / "ds"))
    assert result.returncode == 0, result.stderr
    data = load_dataset(tmp_path / "ds", task=TASK)
    assert len(data.episodes) == EPISODES, result.stdout
    env = make_task_env(TASK)
    for episode, entry in zip(data.episodes, data.meta["episodes"], strict=True):
        steps = env.spec.max_episode_steps
        assert (
            episode["action"].shape == (steps, 4) and episode["observation"].shape[0] == steps + 1
        )
        assert np.all(np.abs(episode["action"]) <= 1.0)
        assert np.diff(episode["stamp_ns"]).min() == 40_000_000  # one row per 25 Hz step
        # The first observation and the goal are the env's own for the recorded seed.
        obs, _ = env.reset(seed=int(episode["seed"]))
        assert np.allclose(episode["observation"][0], obs["observation"], atol=1e-9)
        assert np.allclose(episode["desired_goal"][0], obs["desired_goal"], atol=1e-8)
        assert entry["success"] == bool(episode["success"])
    assert sum(e["success"] for e in data.meta["episodes"]) == round(
        summary["success_rate"] * EPISODES
    )


def test_replay_restores_the_start_and_reproduces_each_episode(
    twin_session, tmp_path: Path
) -> None:
    bag, _ = twin_session
    video = tmp_path / "replay.mp4"
    result = _twinbridge(
        "replay", str(bag), "--json", "--video", str(video),
        "--max-divergence-rad", str(TWIN_REPLAY_TOLERANCE_RAD),
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    reports = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["episode"] for r in reports] == list(range(EPISODES))
    for report in reports:
        assert report["steps"] == get_task_spec(TASK).max_episode_steps
        assert report["joint_error_max_rad"] <= TWIN_REPLAY_TOLERANCE_RAD
        assert report["object_error_final_m"] <= 1e-9
        assert report["replayed_success"] == report["recorded_success"]
        assert report["start_error_max"] <= 1e-12  # the twin's start is the seeded reset's
    assert video.stat().st_size > 10_000


def test_replay_of_a_missing_episode_and_a_truncated_file_name_the_problem(
    twin_session, tmp_path: Path
) -> None:
    bag, _ = twin_session
    missing = _twinbridge("replay", str(bag), "--episode", "99")
    assert missing.returncode == 2 and "no episode [99]" in missing.stderr
    truncated = tmp_path / "cut.mcap"
    truncated.write_bytes(bag.read_bytes()[: bag.stat().st_size // 2])
    for command in (("replay", str(truncated)), ("bag", "export", str(truncated), "--out", "x")):
        result = _twinbridge(*command)
        assert result.returncode == 2, result.stderr
        assert str(truncated) in result.stderr and "twinbridge bag recover" in result.stderr


def test_export_refuses_a_bag_of_another_task(twin_session, tmp_path: Path) -> None:
    bag, _ = twin_session
    result = _twinbridge(
        "bag", "export", str(bag), "--out", str(tmp_path / "ds"), "--task", "fetch-push"
    )
    assert result.returncode == 2
    assert str(bag) in result.stderr and "fetch-push" in result.stderr
    assert not (tmp_path / "ds" / "meta.json").exists()


def test_teleop_through_the_emulator_records_the_safety_clamp(tmp_path: Path) -> None:
    """driver_node on `twinbridge emulate`: the safety layer's velocity limits change what
    the operator commanded, and the recording keeps both."""
    bag = tmp_path / "emu.mcap"
    result = _teleop(tmp_path, "--episodes", "1", "--hardware", "emulator", "--record", str(bag))
    assert result.returncode == 0, result.stderr[-3000:]
    from hardware.recording.alignment import load_episodes

    (episode,) = load_episodes(bag)
    assert episode.steps >= 40 and episode.action_recorded.sum() >= 40
    commanded = {n: i for i, n in enumerate(episode.command_names)}
    both = [
        (episode.command[k], episode.command_applied[k])
        for k in range(episode.steps)
        if np.isfinite(episode.command[k]).all() and np.isfinite(episode.command_applied[k]).all()
    ]
    assert len(both) >= 30 and len(commanded) == 8
    differences = [float(np.max(np.abs(c - a))) for c, a in both]
    assert max(differences) > 1e-3  # the clamp (velocity/rate limits) is in the recording
    replay = _twinbridge("replay", str(bag), "--json")
    assert replay.returncode == 0, replay.stderr
    report = json.loads(replay.stdout.splitlines()[0])
    assert np.isfinite(report["joint_error_max_rad"])  # the twin-vs-emulator gap, measured


def test_keyboard_in_a_terminal_drives_the_twin_and_its_estop_latches(tmp_path: Path) -> None:
    """`--device keyboard` through a real pseudo-terminal: held `w` raises the gripper,
    space calls the twin's e-stop (after which the applied targets hold still), `q` quits
    and the recorder still finalizes the file."""
    import os
    import pty
    import time

    from hardware.recording.reader import BagReader

    bag = tmp_path / "keys.mcap"
    master, slave = pty.openpty()
    command = [
        *TWINBRIDGE, "teleop", "--task", "fetch-reach", "--device", "keyboard",
        "--episodes", "3", "--domain-id", str(private_domain()), "--record", str(bag),
        "--log-dir", str(tmp_path / "logs"),
    ]  # fmt: skip
    process = subprocess.Popen(
        command, cwd=ROOT, stdin=slave, stdout=subprocess.PIPE, stderr=slave, text=True
    )
    os.close(slave)
    try:
        _read_until(master, b"keyboard operator on", timeout_s=60)  # teleop_node's log line
        task_log = tmp_path / "logs" / "task_node.log"
        deadline = time.monotonic() + 60
        while "episode 0:" not in (task_log.read_text() if task_log.exists() else ""):
            assert time.monotonic() < deadline, "the first episode never ended"
            os.write(master, b"w")  # a held key (autorepeat at ~30 Hz) through episode 0
            time.sleep(1 / 30)
            _drain(master)
        time.sleep(0.3)
        os.write(master, b" ")  # e-stop
        time.sleep(1.5)
        os.write(master, b"q")
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
        os.close(master)
    assert process.returncode == 0
    reader = BagReader(bag)
    reader.verify()
    actions = [m for _, _, m in reader.messages(["/fetch/teleop/action"])]
    dz = np.array([m.position[list(m.name).index("dz")] for m in actions])
    assert dz.max() > 0.1 and dz.min() >= 0.0  # only `w` was pressed: up, never down
    estop = [m.data for _, _, m in reader.messages(["/fetch/estop_state"])]
    assert estop[0] is False and estop[-1] is True
    # After the latch the twin applies hold targets only, and they never change: a latched
    # robot refuses every reset, so no episode starts and nothing moves it.
    topic = "/fetch/joint_command_applied"
    applied = [(t, m.points[0].positions) for _, t, m in reader.messages([topic])]
    latched_at = next(t for _, t, m in reader.messages(["/fetch/estop_state"]) if m.data)
    assert not [s for s in reader.episodes() if s.start_ns > latched_at]
    held = np.array([p for t, p in applied if t > latched_at + 200_000_000])
    assert len(held) > 5 and np.ptp(held, axis=0).max() < 1e-9


def _drain(fd: int) -> None:
    """Read what the terminal shows so the node never blocks on a full pty."""
    import os
    import select

    while select.select([fd], [], [], 0)[0]:
        os.read(fd, 4096)


def _read_until(fd: int, text: bytes, timeout_s: float) -> bytes:
    """What the terminal showed until `text` appeared (the node's stderr is the pty)."""
    import os
    import select
    import time

    seen, deadline = b"", time.monotonic() + timeout_s
    while text not in seen:
        assert time.monotonic() < deadline, f"no {text!r} on the terminal: {seen[-2000:]!r}"
        if select.select([fd], [], [], 0.1)[0]:
            seen += os.read(fd, 4096)
    return seen


def _copy_without(bag: Path, out: Path, dropped: str) -> Path:
    """`bag` rewritten without one topic (markers and the rest kept as recorded)."""
    from hardware.recording.episodes import EPISODES_TOPIC, parse_marker
    from hardware.recording.reader import BagReader
    from hardware.recording.writer import BagWriter

    reader = BagReader(bag)
    with BagWriter(out, robot="fetch", task=TASK) as writer:
        for topic, info in reader.topics().items():
            if topic not in (dropped, EPISODES_TOPIC):
                writer.add_topic(topic, info.type)
        markers = {t: m.data for _, t, m in reader.messages([EPISODES_TOPIC])}
        for raw in reader.raw_messages():
            if raw.topic == EPISODES_TOPIC:
                fields = parse_marker(markers[raw.log_time_ns]) or {}
                event, index = fields.pop("event"), fields.pop("episode")
                if event == "start":
                    writer.start_episode(index, raw.log_time_ns, **fields)
                else:
                    writer.end_episode(index, raw.log_time_ns, **fields)
            elif raw.topic != dropped:
                writer.write(raw.topic, raw.data, raw.log_time_ns)
    return out


def test_a_bag_without_applied_commands_or_actions_is_refused_by_name(
    twin_session, tmp_path: Path
) -> None:
    """A missing topic names the file and the topic; a recording with no operator actions
    (a policy run) has nothing to export, and export says why for each episode."""
    bag, _ = twin_session
    no_applied = _copy_without(bag, tmp_path / "no-applied.mcap", "/fetch/joint_command_applied")
    result = _twinbridge("replay", str(no_applied))
    assert result.returncode == 2
    assert str(no_applied) in result.stderr and "/fetch/joint_command_applied" in result.stderr
    no_actions = _copy_without(bag, tmp_path / "no-actions.mcap", "/fetch/teleop/action")
    result = _twinbridge("bag", "export", str(no_actions), "--out", str(tmp_path / "ds"))
    assert result.returncode == 2
    assert "no whole episode to export" in result.stderr
    assert result.stderr.count("no teleop/action") == EPISODES
    assert _twinbridge("replay", str(no_actions), "--episode", "0").returncode == 0
