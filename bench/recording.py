"""Recorder bench: recorder_node as its own process against a publisher process.

Run: `nice .venv/bin/python bench/recording.py` (600 s), or
`.venv/bin/python bench/recording.py --duration-s 10 --json`

A publisher process (`bench/recording.py publish CONFIG_JSON`, the second role of this
file) publishes 3 cameras of 200x200 rgb8 sensor_msgs/Image (+ camera_info) at 30 Hz and
joint_states at 100 Hz in /fetch with the contract's QoS, after every stream has matched
the recorder. recorder_node (ros_ws/recorder_node.py) records them; both join a private
domain with the project's Fast DDS profile (large shared-memory segments, as
`twinbridge sim`). After the publisher's last message and a short drain, the recorder
gets SIGTERM. Reported: published vs recorded per topic (dropped), the recorder's CPU %
of one core over the publishing window (utime + stime of all its threads from
/proc/<pid>/stat), its peak RSS, the time it took to finish the file after SIGTERM, and
the file's size. Goals: 0 dropped, CPU <= 25 %.

The publisher role can also publish the rest of the topic contract and task_node's
episode statuses (`contract`, `episodes`): tests/test_recorder_node.py uses it.

R16: see hardware/RELIABILITY.md.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # ros_ws, hardware from a checkout

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")
NAMESPACE = "fetch"
FETCH_JOINTS = (
    "shoulder_pan_joint", "shoulder_lift_joint", "upperarm_roll_joint", "elbow_flex_joint",
    "forearm_roll_joint", "wrist_flex_joint", "wrist_roll_joint", "r_gripper_finger_joint",
    "l_gripper_finger_joint",
)  # fmt: skip
MATCH_TIMEOUT_S = 60.0
DRAIN_S = 2.0  # after the last publish, before SIGTERM: reliable streams catch up
STOP_TIMEOUT_S = 5.0  # R16
GOAL_CPU_PCT = 25.0


# -- the publisher role --------------------------------------------------------------------
def publisher_config(
    duration_s: float,
    cameras: int = 3,
    camera_rate_hz: float = 30.0,
    joint_rate_hz: float = 100.0,
    size_px: tuple[int, int] = (200, 200),
    contract: bool = False,
    episodes: int = 0,
) -> dict[str, Any]:
    return {
        "duration_s": duration_s,
        "cameras": cameras,
        "camera_rate_hz": camera_rate_hz,
        "joint_rate_hz": joint_rate_hz,
        "size_px": list(size_px),
        "contract": contract,
        "episodes": episodes,
    }


class Publisher:
    """Every stream of one config, published on monotonic deadlines from one thread."""

    def __init__(self, config: dict[str, Any]):
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from geometry_msgs.msg import PoseStamped
        from sensor_msgs.msg import CameraInfo, Image, JointState
        from std_msgs.msg import Bool
        from trajectory_msgs.msg import JointTrajectory

        from ros_ws import qos

        rclpy.init()
        self.node = rclpy.create_node("recording_bench_publisher", namespace=NAMESPACE)
        self.config = config
        self.streams: list[tuple[str, Any, float, Any]] = []  # (topic, pub, rate, make)
        control = qos.control_qos(config["joint_rate_hz"])
        self._add(JointState, "joint_states", control, config["joint_rate_hz"], self._state)
        width, height = config["size_px"]
        frames = camera_frames(width, height)
        for i in range(config["cameras"]):
            info = CameraInfo(height=height, width=width, distortion_model="plumb_bob")
            rate = config["camera_rate_hz"]
            self._add(Image, f"camera_{i}/image_raw", qos.image_qos(), rate, _images(frames))
            self._add(CameraInfo, f"camera_{i}/camera_info", qos.image_qos(), rate, _stamped(info))
        if config["contract"]:
            rate = config["joint_rate_hz"] / 4
            self._add(JointTrajectory, "joint_command", control, rate, _stamped(JointTrajectory()))
            self._add(
                PoseStamped,
                "object_pose",
                control,
                config["joint_rate_hz"],
                _stamped(PoseStamped()),
            )
            self._add(
                Bool, "estop_state", qos.estop_qos(), qos.ESTOP_HEARTBEAT_HZ, lambda _: Bool()
            )
            self.goal = self.node.create_publisher(PoseStamped, "goal", qos.latched_qos())
            self.goal.publish(PoseStamped())
        self.diagnostics = self.node.create_publisher(
            DiagnosticArray, "diagnostics", qos.diagnostics_qos()
        )  # fmt: skip
        self.published: dict[str, int] = {topic: 0 for topic, *_ in self.streams}

    def _add(self, msg_type: Any, topic: str, profile: Any, rate_hz: float, make: Any) -> None:
        self.streams.append(
            (topic, self.node.create_publisher(msg_type, topic, profile), rate_hz, make)
        )

    def _state(self, stamp: Any) -> Any:
        from sensor_msgs.msg import JointState

        msg = JointState(name=list(FETCH_JOINTS), position=[0.1] * 9, velocity=[0.0] * 9)
        msg.header.stamp = stamp
        return msg

    def wait_for_subscribers(self) -> None:
        """Every stream (and diagnostics) matched by at least one subscription."""
        publishers = [pub for _, pub, _, _ in self.streams] + [self.diagnostics]
        deadline = time.monotonic() + MATCH_TIMEOUT_S
        while not all(p.get_subscription_count() > 0 for p in publishers):
            if time.monotonic() > deadline:
                raise TimeoutError(f"no recorder matched within {MATCH_TIMEOUT_S} s")
            time.sleep(0.05)
        time.sleep(0.5)  # matching is per endpoint pair: let the last ones settle

    def run(self) -> dict[str, Any]:
        """Publish for `duration_s`; episode statuses spread evenly over the run."""
        from builtin_interfaces.msg import Time

        duration, start = self.config["duration_s"], time.monotonic()
        due = [start] * len(self.streams)
        episodes = self._episode_times(start, duration)
        while True:
            now = time.monotonic()
            if now - start >= duration:
                break
            for i, (topic, pub, rate, make) in enumerate(self.streams):
                if now >= due[i]:
                    ns = time.time_ns()
                    pub.publish(make(Time(sec=ns // 10**9, nanosec=ns % 10**9)))
                    self.published[topic] += 1
                    due[i] += 1.0 / rate
            while episodes and now >= episodes[0][0]:
                self._episode_status(*episodes.pop(0)[1:])
            time.sleep(max(0.0, min(due) - time.monotonic()))
        return {"published": self.published, "episodes": self.config["episodes"]}

    def _episode_times(self, start: float, duration: float) -> list[tuple[float, str, int]]:
        count = self.config["episodes"]
        events = []
        for k in range(count):
            begin = start + duration * (k + 0.1) / count
            events += [(begin, "start", k), (begin + 0.7 * duration / count, "end", k)]
        return events

    def _episode_status(self, event: str, index: int) -> None:
        from ros_ws import adapters

        if event == "start":
            values = {"episode": index, "seed": 100 + index, "task": "fetch-push",
                      "robot": "fetch", "goal": "[1.3, 0.8, 0.42]"}  # fmt: skip
            name = "task_node/episode_start"
        else:
            values = {"episode": index, "seed": 100 + index, "success": index % 2 == 0,
                      "final_distance": 0.01 * index, "successes": ""}  # fmt: skip
            name = "task_node/episode"
        self.diagnostics.publish(adapters.diagnostics_msg(time.time_ns(), name, values))

    def close(self) -> None:
        import rclpy

        time.sleep(0.5)  # reliable samples still in flight go out before the node does
        self.node.destroy_node()
        rclpy.try_shutdown()


def camera_frames(width: int, height: int, count: int = 30) -> list[Any]:
    """rgb8 frames like a rendered scene's for compression: a gradient that moves from frame
    to frame plus sensor-like noise (zstd gets about 2-3x, as on real camera frames)."""
    import numpy as np
    from sensor_msgs.msg import Image

    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:height, 0:width]
    frames = []
    for k in range(count):
        base = (x + 2 * y + 7 * k) % 256
        rgb = np.stack([base, (base * 3) % 256, 255 - base], axis=-1).astype(np.int16)
        rgb += rng.integers(-6, 7, size=rgb.shape, dtype=np.int16)
        image = Image(height=height, width=width, encoding="rgb8", step=width * 3)
        image.data = np.clip(rgb, 0, 255).astype(np.uint8).tobytes()
        frames.append(image)
    return frames


def _images(frames: list[Any]) -> Any:
    counter = iter(range(10**12))

    def make(stamp: Any) -> Any:
        msg = frames[next(counter) % len(frames)]
        msg.header.stamp = stamp
        return msg

    return make


def _stamped(msg: Any) -> Any:
    def make(stamp: Any) -> Any:
        msg.header.stamp = stamp
        return msg

    return make


def publish_role(config_json: str) -> int:
    publisher = Publisher(json.loads(config_json))
    try:
        publisher.wait_for_subscribers()
        print("START", flush=True)
        result = publisher.run()
        print("RESULT " + json.dumps(result), flush=True)
    finally:
        publisher.close()
    return 0


# -- the orchestrator ----------------------------------------------------------------------
def ros_environment(domain: int) -> dict[str, str]:
    from ros_ws.discovery import sim_environment

    return sim_environment(domain)


def start_recorder(
    output: Path, env: dict[str, str], cameras: int, log: Path, **params: Any
) -> subprocess.Popen:
    names = ",".join(f"cam{i}" for i in range(cameras))
    args = ["--ros-args", "-r", f"__ns:=/{NAMESPACE}", "-p", f"output_path:={output}"]
    for key, value in {"cameras": names, **params}.items():
        args += ["-p", f"{key}:={json.dumps(value)}"]
    with open(log, "w") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "ros_ws.recorder_node", *args],
            env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip


def start_publisher(config: dict[str, Any], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "publish", json.dumps(config)],
        env=env, cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip


def cpu_seconds(pid: int) -> float:
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def rss_bytes(pid: int) -> int:
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_BYTES


class RssSampler:
    """Peak RSS of `pid`, sampled every `period_s` in a thread."""

    def __init__(self, pid: int, period_s: float = 0.5):
        self.pid, self.period_s, self.peak = pid, period_s, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.period_s):
            try:
                self.peak = max(self.peak, rss_bytes(self.pid))
            except (OSError, ValueError):
                return

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak


def stop_recorder(recorder: subprocess.Popen) -> tuple[int | None, float]:
    """SIGTERM; (exit code or None if it had to be killed, seconds to exit)."""
    sent = time.monotonic()
    recorder.send_signal(signal.SIGTERM)
    try:
        code: int | None = recorder.wait(timeout=STOP_TIMEOUT_S * 2)
    except subprocess.TimeoutExpired:
        recorder.kill()
        recorder.wait()
        code = None
    return code, time.monotonic() - sent


def run_bench(duration_s: float, workdir: Path, domain: int) -> dict[str, Any]:
    from hardware.recording.reader import BagReader

    env = ros_environment(domain)
    output = workdir / "bench.mcap"
    config = publisher_config(duration_s)
    recorder = start_recorder(output, env, config["cameras"], workdir / "recorder.log")
    sampler = RssSampler(recorder.pid)
    publisher = start_publisher(config, env)
    try:
        result, cpu_pct = _publish_window(publisher, recorder)
        time.sleep(DRAIN_S)
    finally:
        if publisher.poll() is None:
            publisher.kill()
        peak_rss = sampler.stop()
        code, stop_s = stop_recorder(recorder)
    reader = BagReader(output)
    reader.verify()
    recorded = {t.split(f"/{NAMESPACE}/", 1)[-1]: i.count for t, i in reader.topics().items()}
    streams = {
        topic: {"published": n, "recorded": recorded.get(topic, 0),
                "dropped": n - recorded.get(topic, 0)}
        for topic, n in result["published"].items()
    }  # fmt: skip
    return {
        "duration_s": duration_s,
        "streams": streams,
        "dropped_total": sum(s["dropped"] for s in streams.values()),
        "recorder_cpu_pct": round(cpu_pct, 2),
        "recorder_peak_rss_mib": round(peak_rss / 2**20, 1),
        "recorder_exit_code": code,
        "recorder_stop_s": round(stop_s, 3),
        "file_bytes": output.stat().st_size,
        "file_mib_per_s": round(output.stat().st_size / 2**20 / duration_s, 2),
        "goals": {"dropped": 0, "cpu_pct_max": GOAL_CPU_PCT},
    }


def _publish_window(publisher: subprocess.Popen, recorder: subprocess.Popen) -> tuple[dict, float]:
    """Wait for START, measure the recorder's CPU until RESULT."""
    assert publisher.stdout is not None
    cpu0 = t0 = 0.0
    for line in publisher.stdout:
        if line.startswith("START"):
            cpu0, t0 = cpu_seconds(recorder.pid), time.monotonic()
        elif line.startswith("RESULT "):
            cpu_pct = 100.0 * (cpu_seconds(recorder.pid) - cpu0) / (time.monotonic() - t0)
            return json.loads(line[len("RESULT ") :]), cpu_pct
    raise RuntimeError(f"the publisher exited ({publisher.wait()}) without a result")


def print_report(report: dict[str, Any]) -> None:
    print(f"recorder bench, {report['duration_s']:.0f} s")
    print(f"{'topic':26} {'published':>10} {'recorded':>10} {'dropped':>8}")
    for topic, s in report["streams"].items():
        print(f"{topic:26} {s['published']:>10} {s['recorded']:>10} {s['dropped']:>8}")
    cpu_ok = "ok" if report["recorder_cpu_pct"] <= GOAL_CPU_PCT else "OVER GOAL"
    print(f"recorder CPU {report['recorder_cpu_pct']} % of one core (goal <= 25 %: {cpu_ok})")
    print(f"recorder peak RSS {report['recorder_peak_rss_mib']} MiB; SIGTERM -> exit "
          f"{report['recorder_exit_code']} in {report['recorder_stop_s']} s")  # fmt: skip
    print(f"file {report['file_bytes'] / 2**20:.1f} MiB ({report['file_mib_per_s']} MiB/s)")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["publish"]:
        return publish_role(argv[1])
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--duration-s", type=float, default=600.0, help="publishing time")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--keep", type=Path, default=None, help="keep the bag in this dir")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="recording-bench-") as tmp:
        workdir = args.keep or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        report = run_bench(args.duration_s, workdir, random.SystemRandom().randint(1, 101))
    if args.json:
        print(json.dumps(report))
    else:
        print_report(report)
    return 0 if report["recorder_exit_code"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
