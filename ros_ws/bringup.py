"""`twinbridge sim`: the simulation-only bringup, as separate OS processes, supervised.

Run: `twinbridge sim` (fetch-push on the zoo policy, 10 episodes in real time), or
`twinbridge sim --task fetch-reach --episodes 50 --fast --seed 0 --json --video out/sim.mp4`

Starts twin_node, policy_node and task_node (ros_ws/bringup_plan.py: the same nodes and
parameter file as ros_ws/launch/sim.launch.py) with discovery limited to this host and a
domain id of its own, watches `diagnostics` for episode results and the loop's latency,
and prints a summary. A node that dies is named with the end of its log, the others are
stopped, and the exit code is 1, as when the reports account for another number of episodes
than asked; Ctrl-C stops everything within 2 s (exit code 130).

R16: see hardware/RELIABILITY.md.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ros_ws.bringup_plan import (
    CAMERA_DRIVER_NODE,
    EMULATOR_NODES,
    RECORDER_NODE,
    SIM_CONFIG,
    SIM_NODES,
    NodeLaunch,
    plan,
)
from ros_ws.contract import check_goal_fits
from ros_ws.discovery import MAX_DOMAIN_ID, default_domain_id, sim_environment
from ros_ws.node_configs import SCRIPTED_POLICY, resolve_data_path
from ros_ws.node_runtime_env import SUPERVISOR_PID_VARIABLE
from ros_ws.view_bringup import VIEW_NODE, add_view_arguments, with_view
from sim.camera_calibration import load_rig
from sim.errors import TwinbridgeError
from sim.robots import RobotDescription, get_robot
from sim.tasks import DEFAULT_TASK, TASKS, get_task_spec

STOP_BUDGET_S = 1.5  # SIGINT, then SIGKILL after this: everything is gone within 2 s
# The recorder stops last, so it sees the final episode's end, and gets longer to finalize
# its file (R16: within 5 s, well under a supervisor's kill timeout).
LAST_TO_STOP = ("recorder_node",)
RECORDER_STOP_BUDGET_S = 5.0
# Nodes whose exit code 0 ends the run: the task node after its episodes, teleop_node
# when the operator quits.
DONE_WHEN_EXITED = ("task_node", "teleop_node")
LOG_TAIL_LINES = 15
SILENT_NODE_S = 10.0  # a running node that has not reported for this long is stuck


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--task", default=DEFAULT_TASK, choices=sorted(TASKS), help="task")
    parser.add_argument(
        "--policy",
        default=None,
        help="ONNX policy (default: policies/zoo/<task>.onnx), 'random': uniform random "
        "actions as an ONNX graph, for a task no policy was trained for yet, or 'scripted': "
        "the hand-written Fetch controller (as in `twinbridge rollout`)",
    )
    parser.add_argument("--episodes", type=int, default=10, help="episodes to run (>= 1)")
    parser.add_argument("--seed", type=int, default=0, help="episode k resets with seed + k")
    parser.add_argument(
        "--fast", action="store_true", help="sim time as fast as the loop runs (lockstep)"
    )
    parser.add_argument("--video", type=Path, default=None, help="write an MP4 of the twin")
    parser.add_argument(
        "--cameras",
        default=None,
        help="comma-separated cameras to publish as camera_<n>/image_raw + camera_info "
        "(default: none): the twin's, or with --hardware emulator the emulated rig's "
        "(its camera driver; `rig`: the robot's rig cameras)",
    )
    add_calibration_argument(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON summary line")
    parser.add_argument(
        "--domain-id",
        type=int,
        default=None,
        help=f"ROS_DOMAIN_ID 0..{MAX_DOMAIN_ID} (default: $ROS_DOMAIN_ID, else per user)",
    )
    parser.add_argument(
        "--hardware",
        choices=("twin", "emulator"),
        default="twin",
        help="the robot under the graph: the twin node (default), or driver_node over the "
        "serial protocol to `twinbridge emulate` on a pseudo-terminal",
    )
    parser.add_argument(
        "--emulator-config",
        type=Path,
        default=None,
        help="with --hardware emulator: its deviations and faults (hardware/config/*.yaml)",
    )
    add_allow_ideal_argument(parser)
    parser.add_argument("--config", type=Path, default=SIM_CONFIG, help="parameter YAML")
    parser.add_argument("--log-dir", type=Path, default=Path("out/sim-logs"), help="node logs")
    add_view_arguments(parser)


@dataclass
class Summary:
    """What `twinbridge sim --json` prints."""

    task: str
    episodes: int = 0
    success_rate: float = 0.0
    control_latency_ms: dict[str, float] = field(default_factory=dict)
    deadline_misses: int = 0
    successes: list[bool] = field(default_factory=list)
    video: str | None = None
    ended_by: str = ""  # the node whose exit 0 ended the run (DONE_WHEN_EXITED)


def run(args: argparse.Namespace) -> int:
    if args.episodes < 1:
        raise TwinbridgeError(f"--episodes must be >= 1, got {args.episodes}")
    if args.video is not None and args.video.suffix != ".mp4":
        raise TwinbridgeError(f"--video must name an .mp4 file, got {args.video}")
    check_goal_fits(args.task)
    domain = args.domain_id if args.domain_id is not None else _env_domain()
    _check_hardware_flags(args)
    args.log_dir.mkdir(parents=True, exist_ok=True)
    policy = _policy_path(args)
    _check_policy_task(policy, args.task, args.policy is not None)
    if args.hardware != "twin":
        check_hardware_policy(policy, args.allow_ideal_actuation)
    emulator = _start_emulator(args) if args.hardware == "emulator" else None
    try:
        return _run_graph(args, domain, emulator)
    finally:
        if emulator is not None:
            stop_processes({"emulator": emulator.process})


def _run_graph(args: argparse.Namespace, domain: int, emulator: Emulated | None) -> int:
    overrides = _overrides(args, emulator)
    nodes: tuple[str, ...] = SIM_NODES if emulator is None else EMULATOR_NODES
    if emulator is not None and args.cameras:
        nodes = (*nodes, CAMERA_DRIVER_NODE)
    launches = plan(nodes, args.config, overrides)
    try:
        env = sim_environment(domain)
    except ValueError as e:
        raise TwinbridgeError(f"--domain-id: {e}") from e
    return supervise(args, launches, env)


def supervise(args: argparse.Namespace, launches: list[NodeLaunch], env: dict[str, str]) -> int:
    """Start the planned nodes as processes, follow their episodes, stop them all; the exit
    code says how it ended (0 done, 1 a node died, 130 interrupted)."""
    os.environ.update(env)  # the observer below joins the same domain
    os.environ.pop("ROS_LOCALHOST_ONLY", None)
    from ros_ws.observer import BringupObserver  # rclpy, only for this command

    # Ctrl-C and SIGTERM set a flag that the loop reads between spins: an exception raised
    # inside rclpy's wait could leave its executor locked, and the shutdown with it.
    stop_requested = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop_requested.set())

    # The observer subscribes before any node exists, and the task node starts its first
    # episode only once it has discovered it (report_readers), so no report is missed.
    launches = _with_report_readers(with_view(args, launches))
    with BringupObserver(launches[0].namespace) as observer:
        console = getattr(args, "console_nodes", ())
        processes = {
            launch.name: start_node(launch, env, args.log_dir, launch.name in console)
            for launch in launches
        }
        try:
            summary, failure = _observe(args, observer, processes, stop_requested)
        except KeyboardInterrupt:
            stop_processes(processes)
            print(f"{_prefix(args)}: interrupted; every node stopped", file=sys.stderr)
            return 130
        stop_processes(processes)
    failure = failure or _episode_count_problem(args, summary)
    if failure:
        print(failure, file=sys.stderr)
        return 1
    summary.video = str(args.video) if getattr(args, "video", None) else None
    _print_summary(summary, args.json)
    return 0


def _with_report_readers(launches: list[NodeLaunch]) -> list[NodeLaunch]:
    """The task node waits for this bringup's observer, and a recorder if one runs, to
    read `diagnostics` before its first episode: DDS delivers a report only to readers
    discovered when it is sent, and one fast episode can end before discovery does."""
    readers = 1 + sum(launch.name in (RECORDER_NODE, VIEW_NODE) for launch in launches)
    return [
        replace(launch, overrides={**launch.overrides, "report_readers": readers})
        if launch.name == "task_node"
        else launch
        for launch in launches
    ]


def _episode_count_problem(args: argparse.Namespace, summary: Summary) -> str:
    """Why the run's result cannot be trusted: the task node finished, yet its reports
    account for another number of episodes than asked (a lost report must never pass for a
    result). An operator who quits early (teleop_node exits first) ends with fewer by choice."""
    asked = getattr(args, "episodes", 0)
    if not asked or summary.ended_by != "task_node" or summary.episodes == asked:
        return ""
    log = args.log_dir / "task_node.log"
    return (
        f"twinbridge {getattr(args, 'command', 'sim')}: asked for {asked} episodes, but the "
        f"task node's reports on diagnostics account for {summary.episodes}: a report was "
        f"lost, so no result is printed; the task node's own account is in {log}"
    )


def _prefix(args: argparse.Namespace) -> str:
    """`twinbridge <the running command>`: messages name the command the user typed."""
    return f"twinbridge {getattr(args, 'command', None) or 'sim'}"


def _env_domain() -> int:
    value = os.environ.get("ROS_DOMAIN_ID", "")
    return int(value) if value.isdigit() else default_domain_id()


def add_calibration_argument(parser: argparse.ArgumentParser) -> None:
    """`--calibration FILE` of the bringups that run the twin or the emulated rig."""
    parser.add_argument(
        "--calibration",
        type=Path,
        default=None,
        help="a rig calibration file (twinbridge calibrate cameras): the twin's cameras "
        "take its poses and intrinsics; the emulated rig's camera_info comes from it",
    )


def rig_cameras(robot: RobotDescription, text: str) -> tuple[str, ...]:
    """The cameras `--cameras` names (`rig`: the robot's rig cameras), refused by name."""
    return robot.rig_cameras if text.strip() == "rig" else robot.camera_names(text)


def _check_hardware_flags(args: argparse.Namespace) -> None:
    if args.emulator_config is not None and args.hardware != "emulator":
        raise TwinbridgeError("--emulator-config needs --hardware emulator")
    if args.hardware == "emulator" and (args.fast or args.video):
        raise TwinbridgeError(
            "--hardware emulator runs in real time through the serial driver: "
            "--fast and --video are twin-node features; drop them"
        )
    robot = get_robot(_robot(args.task))
    if args.cameras:  # by name here: the parameter file is not where the mistake is
        args.cameras = ",".join(rig_cameras(robot, args.cameras))
    calibration = getattr(args, "calibration", None)
    if calibration is not None:  # one line now, not a node's exit later
        load_rig(calibration).check_for(robot.name, robot.cameras)


@dataclass
class Emulated:
    """An emulated device process and the serial port it opened."""

    process: subprocess.Popen
    port: str


def _start_emulator(args: argparse.Namespace) -> Emulated:
    """`twinbridge emulate` for the task's robot, on a stable link in the log folder."""
    from hardware.emulator_cli import EmulatorStartError, spawn_emulator

    link = (args.log_dir / "emulated-device").resolve()
    feed = world_feed_path(args.log_dir) if args.cameras else None
    env = {**os.environ, SUPERVISOR_PID_VARIABLE: str(os.getpid())}
    try:
        process = spawn_emulator(
            _robot(args.task), link, log=args.log_dir / "emulator.jsonl", seed=args.seed,
            task=args.task, config=args.emulator_config, camera_feed=feed, env=env,
        )  # fmt: skip
    except EmulatorStartError as e:
        raise TwinbridgeError(str(e)) from e
    return Emulated(process, str(link))


def world_feed_path(log_dir: Path) -> Path:
    """Where the emulator writes its world's positions for the rig's camera driver."""
    return (log_dir / "emulated-world.feed").resolve()


def _overrides(
    args: argparse.Namespace, emulator: Emulated | None = None
) -> dict[str, dict[str, Any]]:
    policy = _policy_path(args)
    if emulator is not None:
        real_time = {"use_sim_time": False}
        driver = emulator_driver_overrides(
            _robot(args.task), args.task, emulator.port, args.seed, args.log_dir
        )
        return {
            "driver_node": driver,
            "policy_node": {"policy_path": policy, **_policy_task(args), **real_time},
            "task_node": {"task": args.task, "episodes": args.episodes, **real_time},
            **({CAMERA_DRIVER_NODE: _camera_driver(args)} if args.cameras else {}),
        }
    return {
        "twin_node": {
            "task": args.task,
            "seed": args.seed,
            "real_time": not args.fast,
            "video_path": str(args.video) if args.video else "",
            **({"cameras": args.cameras} if args.cameras is not None else {}),
            **({"calibration_path": str(args.calibration)} if args.calibration else {}),
        },
        "policy_node": {"policy_path": policy, **_policy_task(args)},
        "task_node": {"task": args.task, "episodes": args.episodes},
    }


def emulator_driver_overrides(
    robot: str, task: str, port: str, seed: int, log_dir: Path
) -> dict[str, Any]:
    """driver_node on the emulator's serial port, its e-stop latch file in the log folder."""
    return {
        "robot": robot,
        "backend": "serial",
        "port": port,
        "task": task,
        "seed": seed,
        "estop_latch_path": str((log_dir / "estop.json").resolve()),
    }


def camera_driver_overrides(
    robot: str,
    task: str,
    scene: str,
    feed: Path,
    emulator_config: Path | None,
    cameras: str,
    calibration: Path | None,
) -> dict[str, Any]:
    """The emulated rig's camera driver: the emulator's world (its task and scene, the
    positions in `feed`), its configuration's cameras (`rig`: the robot's rig cameras)."""
    names = rig_cameras(get_robot(robot), cameras)
    return {
        "robot": robot,
        "task": task,
        "scene": scene,
        "state_feed": str(feed),
        "emulator_config": str(emulator_config.resolve()) if emulator_config else "",
        "cameras": ",".join(names),
        "calibration_path": str(calibration.resolve()) if calibration else "",
    }


def _camera_driver(args: argparse.Namespace) -> dict[str, Any]:
    return camera_driver_overrides(
        _robot(args.task), args.task, "", world_feed_path(args.log_dir), args.emulator_config,
        args.cameras, getattr(args, "calibration", None),
    )  # fmt: skip


def _policy_path(args: argparse.Namespace) -> str:
    """The policy file for policy_node: --policy, the zoo's for the task, or a random
    policy written into the log folder (seeded with --seed)."""
    from policies.random_policy import RANDOM_POLICY, write_random_policy

    if args.policy != RANDOM_POLICY:  # a file, or SCRIPTED_POLICY (no file)
        return args.policy or f"policies/zoo/{args.task}.onnx"
    folder = (args.log_dir / "random-policy").resolve()
    return str(write_random_policy(args.task, folder, args.seed))


def _policy_task(args: argparse.Namespace) -> dict[str, str]:
    """The policy node's robot, and its task when the policy has no card to name it."""
    task = {"task": args.task} if args.policy == SCRIPTED_POLICY else {}
    return {"robot": _robot(args.task), **task}


def _robot(task: str) -> str:
    return get_task_spec(task).robot


def _check_policy_task(policy_path: str, task: str, given: bool = True) -> None:
    """Refuse a policy that cannot drive the task before any process starts; a message
    names the --policy given, or the zoo's file that is missing when none was."""
    from policies.controller import check_policy_for_task

    if policy_path == SCRIPTED_POLICY:
        check_policy_for_task(policy_path, task)
        return
    path = resolve_data_path(policy_path)
    if not given and not path.is_file():
        zoo = sorted(p.stem for p in resolve_data_path("policies/zoo").glob("*.onnx"))
        raise TwinbridgeError(
            f"the zoo has no policy for task {task} ({policy_path}; it has {', '.join(zoo)}): "
            "pass --policy FILE.onnx (a policy trained for this task), --policy random "
            "(uniform random actions) or --policy scripted (the Fetch tasks)"
        )
    check_policy_for_task(path if path.exists() else policy_path, task)


def check_hardware_policy(policy_path: str, allow_ideal: bool) -> None:
    """Refuse a policy trained on ideal servos before a robot (or its emulator) starts;
    with `allow_ideal` say once that it runs anyway."""
    from policies.controller import check_policy_for_hardware

    path = policy_path if policy_path == SCRIPTED_POLICY else resolve_data_path(policy_path)
    warning = check_policy_for_hardware(path, allow_ideal)
    if warning:
        print(warning, file=sys.stderr)


def add_allow_ideal_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--allow-ideal-actuation", action="store_true",
        help="run a policy on hardware although its card says it was trained on ideal servos "
        "(card field actuation.model); it will likely fail there",
    )  # fmt: skip


def start_node(
    launch: NodeLaunch, env: dict[str, str], log_dir: Path, console: bool = False
) -> subprocess.Popen:
    """One node as its own process, its output in log_dir/<node>.log (with `console`, its
    stderr stays on this terminal: the keyboard operator's help and prompts)."""
    command = [sys.executable, "-m", f"ros_ws.{launch.name}", *launch.ros_arguments()]
    # The node asks Linux to SIGINT it if this process dies (ros_ws/node_runtime_env.py).
    env = {**env, SUPERVISOR_PID_VARIABLE: str(os.getpid())}
    with open(log_dir / f"{launch.name}.log", "w") as log:
        stderr = None if console else subprocess.STDOUT
        return subprocess.Popen(command, env=env, stdout=log, stderr=stderr)


def _observe(
    args: argparse.Namespace,
    observer: Any,
    processes: dict[str, subprocess.Popen],
    stop_requested: threading.Event,
) -> tuple[Summary, str]:
    """Follow the run through `diagnostics` until the task node is done or a node dies."""
    summary = Summary(task=args.task)
    printed = 0
    latest: dict[str, str] = {}  # the newest episode report: all outcomes so far
    waiting = ""
    while True:
        if stop_requested.is_set():
            raise KeyboardInterrupt
        if getattr(observer, "waiting", "") != waiting:  # e.g. a latch only a person clears
            waiting = observer.waiting
            if waiting:
                print(f"{_prefix(args)}: the task node waits: {waiting}", file=sys.stderr)
        for result in observer.poll(0.1):
            if not args.json:
                for missed in range(printed, int(result["episode"])):  # joined late
                    outcome = "success" if result["successes"][missed] == "1" else "failure"
                    print(f"episode {missed}: {outcome}", flush=True)
                print(_episode_line(result, observer.loop), flush=True)
            printed = int(result["episode"]) + 1
            latest = result
        failure = _failure(processes, args.log_dir, _prefix(args)) or _silence(
            observer, processes, _prefix(args)
        )
        if failure:
            return summary, failure
        ended = [n for n in DONE_WHEN_EXITED if n in processes and processes[n].poll() == 0]
        if ended:
            # done: the task node's last reports may still be in flight
            summary.ended_by = ended[0]
            observer.wait_for_done(timeout_s=2.0)
            observer.wait_for_loop_figures(timeout_s=1.0)
            pending = observer.poll(0.0)  # episode reports that arrived while waiting
            latest = pending[-1] if pending else latest
            break
    loop = observer.loop
    # The task node's final report lists every episode's outcome: the authority.
    # The task node's final report, or (the operator quit early) its newest episode report.
    done = observer.done or latest
    summary.successes = [flag == "1" for flag in done.get("successes", "")]
    summary.episodes = len(summary.successes)
    summary.success_rate = summary.episodes and sum(summary.successes) / summary.episodes
    summary.control_latency_ms = {
        key: round(float(loop.get(f"latency_{key}_ms", "nan")), 3) for key in ("p50", "p99", "max")
    }
    summary.deadline_misses = int(loop.get("deadline_misses", 0))
    return summary, ""


def _silence(observer: Any, processes: dict[str, subprocess.Popen], prefix: str) -> str:
    """A message naming a running node that stopped reporting (a stuck executor: every node
    reports at diagnostics_rate_hz), or ""."""
    running = [name for name, process in processes.items() if process.poll() is None]
    silent = observer.silent(running, SILENT_NODE_S)
    if not silent:
        return ""
    name, age = silent[0]
    return (
        f"{prefix}: {name} has published no diagnostics for {age} s (every node "
        f"reports at 2 Hz; it is stuck); the nodes were stopped. Its log: {name}.log"
    )


def _failure(processes: dict[str, subprocess.Popen], log_dir: Path, prefix: str) -> str:
    """A message naming the first node that exited when it should not have, with its log
    (the task node exits 0 when its episodes are done)."""
    for name, process in processes.items():
        code = process.poll()
        if code is None or (name in DONE_WHEN_EXITED and code == 0):
            continue
        log = log_dir / f"{name}.log"
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:])
        return (
            f"{prefix}: {name} exited with code {code}; the other nodes were stopped.\n"
            f"--- last lines of {log} ---\n{tail}"
        )
    return ""


def stop_processes(processes: dict[str, subprocess.Popen]) -> None:
    """SIGINT every node, SIGKILL what is left after STOP_BUDGET_S; the recorder last,
    with RECORDER_STOP_BUDGET_S to finalize its file."""
    first = {n: p for n, p in processes.items() if n not in LAST_TO_STOP}
    last = {n: p for n, p in processes.items() if n in LAST_TO_STOP}
    _interrupt(first, STOP_BUDGET_S)
    _interrupt(last, RECORDER_STOP_BUDGET_S)


def _interrupt(processes: dict[str, subprocess.Popen], budget_s: float) -> None:
    for process in processes.values():
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
    deadline = time.monotonic() + budget_s
    for process in processes.values():
        try:
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _episode_line(result: dict[str, str], loop: dict[str, str]) -> str:
    outcome = "success" if result["success"] == "True" else "failure"
    p99 = float(loop.get("latency_p99_ms", "nan"))
    latency = f"{p99:.2f} ms" if p99 == p99 else "n/a"  # nan until the twin's first report
    return (
        f"episode {result['episode']}: {outcome} (seed {result['seed']}, final distance "
        f"{float(result['final_distance']):.3f} m; loop latency p99 so far {latency})"
    )


def _print_summary(summary: Summary, as_json: bool) -> None:
    data = {
        "task": summary.task,
        "episodes": summary.episodes,
        "success_rate": summary.success_rate,
        "control_latency_ms": summary.control_latency_ms,
        "deadline_misses": summary.deadline_misses,
    }
    from sim.render import mp4_frames, video_line  # MuJoCo's module, only with a video

    frames = mp4_frames(summary.video) if summary.video else 0
    if summary.video:
        data["video"], data["video_frames"] = summary.video, frames
    if as_json:
        print(json.dumps(data))
        return
    latency = summary.control_latency_ms
    print(
        f"{summary.task}: {summary.success_rate:.2f} success over {summary.episodes} episodes; "
        f"state->command latency p50 {latency['p50']} ms, p99 {latency['p99']} ms, "
        f"max {latency['max']} ms; {summary.deadline_misses} deadline misses"
    )
    if summary.video:
        print(video_line(summary.video, frames, summary.episodes))
