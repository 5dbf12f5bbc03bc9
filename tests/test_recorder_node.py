"""recorder_node as a real process against a real publisher process (bench/recording.py's
publisher role: the topic contract, one camera, task_node's episode statuses), on a
private domain with the project's Fast DDS profile.

Checked: per-topic counts in the bag equal what was published (rosbags reads the bag),
episodes from task_node's statuses, the latched goal, topics that never appeared named in
the recorder's diagnostics (recorded in the bag itself), SIGTERM finishing a valid file
within 5 s, a second session resuming the file with the next episode index, and an
existing file refused without `resume`.

R14: see hardware/RELIABILITY.md.
"""

from __future__ import annotations

import importlib.util
import time
from collections import Counter
from pathlib import Path
from types import ModuleType

from ros_processes import private_domain
from rosbags.highlevel import AnyReader

from hardware.recording.reader import BagReader

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT_S = 90


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "recording_bench", ROOT / "bench" / "recording.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bench = _bench()


def _session(path: Path, logs: Path, env: dict, name: str, **params) -> tuple[dict, float, str]:
    """One recording session: recorder + publisher; (published counts, SIGTERM->exit s, log)."""
    log = logs / f"{name}.log"
    recorder = bench.start_recorder(path, env, 1, log, topic_timeout_s=2.0, **params)
    config = bench.publisher_config(4.0, cameras=1, contract=True, episodes=3)
    publisher = bench.start_publisher(config, env)
    try:
        result, _ = bench._publish_window(publisher, recorder)
        assert publisher.wait(timeout=TIMEOUT_S) == 0
        time.sleep(bench.DRAIN_S)
    finally:
        if publisher.poll() is None:
            publisher.kill()
        code, stop_s = bench.stop_recorder(recorder)
    text = log.read_text()
    assert code == 0, text[-3000:]
    return result["published"], stop_s, text


def test_records_the_contract_with_episodes_and_resumes(tmp_path: Path) -> None:
    env = bench.ros_environment(private_domain())
    path = tmp_path / "session.mcap"
    published, stop_s, log = _session(path, tmp_path, env, "first", task="fetch-push")
    assert stop_s < 5.0, f"SIGTERM took {stop_s:.2f} s"
    reader = BagReader(path)
    assert reader.verify() == reader.message_count
    with AnyReader([path]) as bag:
        counts = Counter(c.topic for c, _, raw in bag.messages())
    for topic, count in published.items():
        assert counts[f"/fetch/{topic}"] == count, (topic, counts[f"/fetch/{topic}"], count)
    assert counts["/fetch/goal"] == 1  # latched: published before the run, still recorded
    spans = reader.episodes()
    assert [(s.index, s.complete, s.success) for s in spans] == [
        (0, True, True), (1, True, False), (2, True, True)
    ]  # fmt: skip
    assert spans[1].fields["source_episode"] == 1 and spans[1].fields["seed"] == 101
    assert spans[0].start_fields["goal"] == [1.3, 0.8, 0.42]
    reader.check_identity(robot="fetch", task="fetch-push")
    missing = _recorder_status(reader).get("missing_topics", "")
    assert "/fetch/joint_command_applied" in set(missing.split(","))  # the task's, silent
    assert "/fetch/joint_states" not in missing
    # No operator in this graph: its action is not the task's, so no warning about it.
    assert "teleop/action" not in missing and "teleop/action" not in log
    assert "recorder: ready" in log

    _session(path, tmp_path, env, "second", task="fetch-push", resume=True)
    spans = BagReader(path).episodes()
    assert [s.index for s in spans] == list(range(6)) and all(s.complete for s in spans)
    assert [s.fields["source_episode"] for s in spans] == [0, 1, 2, 0, 1, 2]


def _recorder_status(reader: BagReader) -> dict[str, str]:
    """The newest recorder_node status recorded in the bag's own diagnostics."""
    values: dict[str, str] = {}
    for _, _, msg in reader.messages(["/fetch/diagnostics"]):
        for status in msg.status:
            if status.name == "recorder_node":
                values = {kv.key: kv.value for kv in status.values}
    return values


def test_an_existing_file_is_refused_without_resume(tmp_path: Path) -> None:
    path = tmp_path / "taken.mcap"
    path.write_bytes(b"an earlier recording")
    env = bench.ros_environment(private_domain())
    recorder = bench.start_recorder(path, env, 0, tmp_path / "refused.log")
    assert recorder.wait(timeout=TIMEOUT_S) == 2
    text = (tmp_path / "refused.log").read_text()
    assert f"{path}: already exists: resume it" in text
    assert path.read_bytes() == b"an earlier recording"


def test_sigkilled_recorder_node_loses_at_most_one_second(tmp_path: Path) -> None:
    """R14 on the node itself: recorder_node killed (SIGKILL, no clean-up of any kind) at
    random times while 3 cameras and 100 Hz joint states stream in; after `bag recover`
    each file reads back (exit 3) and its last message was received within 1 s of the kill
    (the stream never pauses, so that gap is what the kill lost)."""
    import random
    import signal

    from hardware.recording.recover import EXIT_RECOVERED, recover

    env = bench.ros_environment(private_domain())
    publisher = bench.start_publisher(bench.publisher_config(60.0, cameras=3), env)
    rng = random.Random(7)
    try:
        for trial in range(5):
            path = tmp_path / f"kill-{trial}.mcap"
            recorder = bench.start_recorder(path, env, 3, tmp_path / f"kill-{trial}.log")
            _wait_until_recording(path)
            time.sleep(rng.uniform(0.0, 1.5))
            killed_ns = time.time_ns()
            recorder.send_signal(signal.SIGKILL)
            assert recorder.wait(timeout=TIMEOUT_S) == -signal.SIGKILL
            report = recover(path, tmp_path / f"kill-{trial}.recovered.mcap")
            assert report.exit_code == EXIT_RECOVERED, report.describe()
            assert report.last_log_ns is not None and report.output is not None
            loss_s = (killed_ns - report.last_log_ns) * 1e-9
            assert 0 <= loss_s <= 1.0, f"trial {trial}: lost {loss_s:.3f} s"
            with AnyReader([report.output]) as bag:
                assert sum(1 for _ in bag.messages()) == BagReader(report.output).message_count
    finally:
        publisher.kill()
        publisher.wait()


def _wait_until_recording(path: Path) -> None:
    """Until the first flushed chunk of messages is on disk (the node is up and matched)."""
    deadline = time.monotonic() + TIMEOUT_S
    while not (path.is_file() and path.stat().st_size > 200_000):
        assert time.monotonic() < deadline, f"{path} never grew"
        time.sleep(0.05)
