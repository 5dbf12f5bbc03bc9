"""A plain-Python recorder process for the crash tests: BagWriter fed synthetic streams.

Run: `.venv/bin/python tests/bag_producer.py '{"path": "/tmp/x.mcap", "run": "A"}'`

Streams (real time, `time.time_ns()` log times, CDR from mcap_ros2's encoder, exactly
what an rclpy raw subscription delivers): joint_states at `joint_hz`, rgb8 images of
`image_px` at `image_hz`, joint_command at `command_hz`. Episodes of `episode_s` with
`gap_s` between them. Every message's header.frame_id is "<run>:<episode>" (-1 outside
episodes), so a test can tell which run and episode each recorded message came from.

Progress goes to stdout, one line per event, written unbuffered *after* the writer call
returned: `READY`, `W <log_time_ns>` (a message handed to the writer), `S <k>` / `E <k>`
(an episode started / ended: the end marker is flushed before `E` is printed), `RESUMED
<next episode>`. SIGTERM: the writer is closed (`CLOSED <messages>`) and exit 0.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
from mcap_ros2._dynamic import serialize_dynamic

from hardware.recording.resume import resume_bag
from hardware.recording.schemas import ros2msg_definition
from hardware.recording.writer import BagWriter, BagWriterConfig

DEFAULTS: dict[str, Any] = {
    "run": "A",
    "robot": "fetch",
    "task": "fetch-pick-and-place",
    "joint_hz": 100.0,
    "image_hz": 30.0,
    "image_px": [640, 480],
    "command_hz": 25.0,
    "episode_s": 0.4,
    "gap_s": 0.1,
    "flush_period_s": 0.5,
    "chunk_size_bytes": 1024 * 1024,
    "fsync": True,
    "resume": False,
    "max_episodes": 0,  # 0: until killed
}
TOPICS = {
    "/fetch/joint_states": "sensor_msgs/msg/JointState",
    "/fetch/camera_0/image_raw": "sensor_msgs/msg/Image",
    "/fetch/joint_command": "trajectory_msgs/msg/JointTrajectory",
}


def encoder(type_name: str) -> Any:
    return serialize_dynamic(type_name, ros2msg_definition(type_name))[type_name]


def say(line: str) -> None:
    os.write(1, (line + "\n").encode())


class Streams:
    """The synthetic messages, encoded per call."""

    def __init__(self, cfg: dict[str, Any]):
        self.encode = {topic: encoder(t) for topic, t in TOPICS.items()}
        width, height = cfg["image_px"]
        # Camera-like content: a gradient with sensor noise (zstd: ~2-3x, like real frames).
        rng = np.random.default_rng(0)
        ramp = (np.arange(width * height * 3) // 7 % 256).astype(np.int16)
        noise = rng.integers(-6, 7, size=ramp.shape, dtype=np.int16)
        self.image = np.clip(ramp + noise, 0, 255).astype(np.uint8).tobytes()
        self.size = (width, height)

    def message(self, topic: str, frame: str, k: int) -> bytes:
        ns = time.time_ns()
        header = {"stamp": {"sec": ns // 10**9, "nanosec": ns % 10**9}, "frame_id": frame}
        if topic.endswith("joint_states"):
            position = [k * 0.001, 1.0]
            msg: dict[str, Any] = {"header": header, "name": ["a", "b"], "position": position,
                                   "velocity": [], "effort": []}  # fmt: skip
        elif topic.endswith("image_raw"):
            width, height = self.size
            shift = 3 * (k % width)  # a different frame each time
            data = self.image[shift:] + self.image[:shift]
            msg = {"header": header, "height": height, "width": width, "encoding": "rgb8",
                   "is_bigendian": 0, "step": width * 3, "data": data}  # fmt: skip
        else:
            msg = {"header": header, "joint_names": ["a"], "points": []}
        encoded: bytes = self.encode[topic](msg)
        return encoded


def main(cfg: dict[str, Any]) -> int:
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
    config = BagWriterConfig(cfg["flush_period_s"], cfg["chunk_size_bytes"], "zstd", cfg["fsync"])
    identity = {"robot": cfg["robot"], "task": cfg["task"]}
    if cfg["resume"]:
        writer, report = resume_bag(cfg["path"], config, **identity)
        say(f"RESUMED {report.episodes_kept}")
    else:
        writer = BagWriter(cfg["path"], config, **identity)
    for topic, type_name in TOPICS.items():
        writer.add_topic(topic, type_name)
    streams = Streams(cfg)
    rates = {
        "/fetch/joint_states": cfg["joint_hz"],
        "/fetch/camera_0/image_raw": cfg["image_hz"],
        "/fetch/joint_command": cfg["command_hz"],
    }
    rates = {topic: rate for topic, rate in rates.items() if rate > 0}
    say("READY")
    start = time.monotonic()
    due = dict.fromkeys(rates, start)
    episode, episode_due, counter = -1, start + cfg["gap_s"], 0
    started = 0
    while not stop:
        now = time.monotonic()
        if now >= episode_due:
            if episode < 0:
                if cfg["max_episodes"] and started >= cfg["max_episodes"]:
                    break
                episode = writer.next_episode
                writer.start_episode(episode, time.time_ns(), seed=episode, run=cfg["run"])
                say(f"S {episode}")
                started += 1
                episode_due = now + cfg["episode_s"]
            else:
                writer.end_episode(episode, time.time_ns(), success=episode % 2 == 0)
                say(f"E {episode}")
                episode, episode_due = -1, now + cfg["gap_s"]
        for topic, rate in rates.items():
            if now >= due[topic]:
                counter += 1
                data = streams.message(topic, f"{cfg['run']}:{episode}", counter)
                log_time = time.time_ns()
                writer.write(topic, data, log_time)
                say(f"W {log_time}")
                due[topic] += 1.0 / rate
        writer.flush_if_due()
        time.sleep(max(0.0, min(min(due.values()), episode_due) - time.monotonic()))
    writer.close()
    say(f"CLOSED {sum(writer.messages_written.values())}")
    return 0


if __name__ == "__main__":
    sys.exit(main({**DEFAULTS, **json.loads(sys.argv[1])}))
