"""`twinbridge record`: record a running graph's contract topics into an MCAP bag.

Run: `twinbridge record --robot fetch --out out/session.mcap [--resume] [--cameras front,side]`

Starts recorder_node (ros_ws/recorder_node.py) as a child process in the robot's
namespace, on the same domain and discovery settings as `twinbridge sim` (so it meets
that graph). The node prints `recorder: ready: ...` once it has met the graph (a robot's
joint_states and another node's diagnostics): episodes that start after that line are
recorded whole, one already running is not recorded half. It runs until Ctrl-C or
SIGTERM, which it forwards: the node finishes the file
(R16: within 5 s) and this command prints what was recorded. An existing file is
continued only with --resume (after its last complete episode, R17).

R16, R17: see hardware/RELIABILITY.md.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from pathlib import Path

from hardware.recording.errors import RecordingError
from ros_ws.contract import check_goal_fits
from sim.robots import ROBOT_FOLDERS, get_robot

STOP_TIMEOUT_S = 10.0  # after the forwarded signal; the node finishes well within 5 s


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--robot", default="fetch", choices=sorted(ROBOT_FOLDERS))
    parser.add_argument("--out", type=Path, required=True, help="the .mcap file to write")
    parser.add_argument("--task", default="", help="the task being run (stored in the bag)")
    parser.add_argument(
        "--resume", action="store_true", help="continue --out after its last complete episode"
    )
    parser.add_argument(
        "--cameras", default="", help="the twin's comma-separated cameras (camera_<i> topics)"
    )
    parser.add_argument(
        "--extra-topics", default="", help="more topics: name:pkg/msg/Type[:qos kind],..."
    )
    parser.add_argument(
        "--domain-id", type=int, default=None, help="default: $ROS_DOMAIN_ID, else per user"
    )
    parser.add_argument(
        "--topic-timeout-s", type=float, default=10.0, help="warn about silent topics after"
    )


def recorder_command(args: argparse.Namespace) -> list[str]:
    """`python -m ros_ws.recorder_node --ros-args ...` for these arguments."""
    params = {
        "output_path": str(args.out.resolve()),
        "robot": args.robot,
        "task": args.task,
        "cameras": args.cameras,
        "extra_topics": args.extra_topics,
        "resume": "true" if args.resume else "false",
        "topic_timeout_s": args.topic_timeout_s,
    }
    ros_args = ["--ros-args", "-r", f"__ns:=/{get_robot(args.robot).namespace}"]
    for key, value in params.items():
        text = f'"{value}"' if isinstance(value, str) and key != "resume" else str(value)
        ros_args += ["-p", f"{key}:={text}"]
    return [sys.executable, "-m", "ros_ws.recorder_node", *ros_args]


def run(args: argparse.Namespace) -> int:
    from ros_ws.discovery import default_domain_id, sim_environment
    from ros_ws.node_runtime_env import SUPERVISOR_PID_VARIABLE

    if not args.topic_timeout_s > 0:
        raise RecordingError(f"--topic-timeout-s must be > 0 seconds, got {args.topic_timeout_s}")
    if args.out.suffix != ".mcap":
        raise RecordingError(f"--out must name an .mcap file, got {args.out}")
    get_robot(args.robot).camera_names(args.cameras)  # an unknown one, with the valid ones
    if args.task:
        check_goal_fits(args.task)
    if args.out.exists() and not args.resume:
        raise RecordingError(f"{args.out} exists: pass --resume to continue it, or another --out")
    env_domain = os.environ.get("ROS_DOMAIN_ID", "")
    domain = args.domain_id
    if domain is None:
        domain = int(env_domain) if env_domain.isdigit() else default_domain_id()
    env = {**sim_environment(domain), SUPERVISOR_PID_VARIABLE: str(os.getpid())}
    child = subprocess.Popen(recorder_command(args), env=env)
    forward = lambda signum, _frame: child.send_signal(signal.SIGINT)  # noqa: E731
    previous = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    print(f"recorder starting: {args.robot} on domain {domain} into {args.out}; waiting for "
          "the graph (Ctrl-C stops)", flush=True)  # fmt: skip
    try:
        code = child.wait()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if child.poll() is None:
            child.send_signal(signal.SIGINT)
            try:
                child.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                child.kill()
    if code == 0 and args.out.exists():
        from hardware.recording.reader import BagReader

        reader = BagReader(args.out)
        print(f"{args.out}: {reader.message_count} messages, {len(reader.episodes())} episodes")
    return code
