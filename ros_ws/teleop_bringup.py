"""`twinbridge teleop`: drive the twin (or the emulated robot) by hand or script, and record.

Run: `twinbridge teleop --task fetch-pick-and-place --device keyboard --record out/demos.mcap`,
or unattended: `twinbridge teleop --device scripted --episodes 100 --fast --record out/pnp.mcap`

Starts the robot node (twin_node, or driver_node on `twinbridge emulate` with
`--hardware emulator`), teleop_node with the chosen operator, task_node (episodes, goals,
success) and, with `--record`, recorder_node (ros_ws/bringup_plan.py: the same nodes and
parameter file as ros_ws/launch/teleop.launch.py), supervised like `twinbridge sim`. The
keyboard operator reads this terminal. The run ends after `--episodes` episodes, when the
operator quits, or on Ctrl-C; the recorder is stopped last and finalizes its file.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from hardware.teleop.bindings import teleop_bindings
from ros_ws.bringup import (
    Emulated,
    _camera_driver,
    _check_hardware_flags,
    _env_domain,
    _robot,
    _start_emulator,
    add_calibration_argument,
    emulator_driver_overrides,
    stop_processes,
    supervise,
)
from ros_ws.bringup_plan import CAMERA_DRIVER_NODE, SIM_CONFIG, plan, teleop_nodes
from ros_ws.contract import check_goal_fits
from ros_ws.discovery import sim_environment
from ros_ws.node_configs import TELEOP_DEVICES
from ros_ws.view_bringup import add_view_arguments
from sim.errors import TwinbridgeError
from sim.scripted import ScriptedFetchPolicy
from sim.tasks import TASKS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--task", default="fetch-pick-and-place", choices=sorted(TASKS), help="task"
    )
    parser.add_argument("--device", choices=TELEOP_DEVICES, default="keyboard", help="operator")
    parser.add_argument("--episodes", type=int, default=10, help="episodes to run (>= 1)")
    parser.add_argument(
        "--episode-seconds",
        type=float,
        default=None,
        help="episode length in s (e-stop time excluded; default: the task's); Enter ends "
        "an episode sooner",
    )
    parser.add_argument("--seed", type=int, default=0, help="episode k resets with seed + k")
    parser.add_argument("--record", type=Path, default=None, help="record to this .mcap file")
    parser.add_argument(
        "--video", type=Path, default=None, help="write an MP4 of the twin (with episode text)"
    )
    parser.add_argument(
        "--fast", action="store_true", help="sim time as fast as the loop runs (scripted only)"
    )
    parser.add_argument(
        "--cameras", default=None, help="comma-separated twin cameras to publish (and record)"
    )
    add_calibration_argument(parser)
    parser.add_argument("--max-speed", type=float, default=None, help="end effector m/s")
    parser.add_argument("--hardware", choices=("twin", "emulator"), default="twin")
    parser.add_argument("--emulator-config", type=Path, default=None, help="emulator YAML")
    parser.add_argument("--json", action="store_true", help="print one JSON summary line")
    parser.add_argument("--domain-id", type=int, default=None, help="ROS_DOMAIN_ID")
    parser.add_argument("--config", type=Path, default=SIM_CONFIG, help="parameter YAML")
    parser.add_argument("--log-dir", type=Path, default=Path("out/teleop-logs"), help="logs")
    add_view_arguments(parser)


def run(args: argparse.Namespace) -> int:
    _check_args(args)
    args.log_dir.mkdir(parents=True, exist_ok=True)
    emulator = _start_emulator(args) if args.hardware == "emulator" else None
    try:
        nodes = teleop_nodes(args.hardware, record=args.record is not None)
        if emulator is not None and args.cameras:
            nodes = (*nodes, CAMERA_DRIVER_NODE)
        launches = plan(nodes, args.config, _overrides(args, emulator))
        domain = args.domain_id if args.domain_id is not None else _env_domain()
        try:
            env = sim_environment(domain)
        except ValueError as e:
            raise TwinbridgeError(f"--domain-id: {e}") from e
        # A human operator's node keeps our stdin and stderr: the keyboard, the legend and
        # the status line.
        args.console_nodes = ("teleop_node",) if args.device != "scripted" else ()
        return supervise(args, launches, env)
    finally:
        if emulator is not None:
            stop_processes({"emulator": emulator.process})


def _check_args(args: argparse.Namespace) -> None:
    if args.episodes < 1:
        raise TwinbridgeError(f"--episodes must be >= 1, got {args.episodes}")
    seconds = args.episode_seconds
    if seconds is not None and not 0 < seconds < float("inf"):
        raise TwinbridgeError(f"--episode-seconds must be > 0, got {seconds}; e.g. 30")
    check_goal_fits(args.task)
    teleop_bindings(_robot(args.task))  # one line naming the robot.yaml without `teleop:`
    if args.fast and args.device != "scripted":
        raise TwinbridgeError("--fast runs sim time faster than a human: use --device scripted")
    if args.device == "scripted" and args.task not in ScriptedFetchPolicy.TASKS:
        raise TwinbridgeError(
            f"the scripted operator solves {', '.join(ScriptedFetchPolicy.TASKS)}; for "
            f"{args.task} use --device keyboard or --device gamepad"
        )
    if args.record is not None and args.record.suffix != ".mcap":
        raise TwinbridgeError(f"--record must name an .mcap file, got {args.record}")
    if args.max_speed is not None and not args.max_speed > 0:
        raise TwinbridgeError(f"--max-speed must be > 0 m/s, got {args.max_speed}")
    if args.video is not None and args.video.suffix != ".mp4":
        raise TwinbridgeError(f"--video must name an .mp4 file, got {args.video}")
    _check_hardware_flags(args)
    _check_device(args)


def _check_device(args: argparse.Namespace) -> None:
    """Open and close the human's device once here: a keyboard without a terminal or no
    gamepad plugged in is one line before any node starts, not a node's death in its log."""
    if args.device == "scripted":
        return
    from hardware.teleop import TeleopConfig, make_operator

    make_operator(args.device, args.task, TeleopConfig(show_help=False)).close()


def _overrides(args: argparse.Namespace, emulator: Emulated | None) -> dict[str, dict[str, Any]]:
    robot = _robot(args.task)
    teleop: dict[str, Any] = {"task": args.task, "device": args.device, "robot": robot}
    if args.max_speed is not None:
        teleop["max_speed_m_s"] = float(args.max_speed)
    overrides: dict[str, dict[str, Any]] = {
        "teleop_node": teleop,
        "task_node": {"task": args.task, "episodes": args.episodes},
    }
    if args.episode_seconds is not None:
        overrides["task_node"]["episode_seconds"] = float(args.episode_seconds)
    if emulator is None:
        overrides["twin_node"] = {
            "task": args.task,
            "seed": args.seed,
            "real_time": not args.fast,
            "video_path": str(args.video) if args.video else "",
            **({"cameras": args.cameras} if args.cameras is not None else {}),
            **({"calibration_path": str(args.calibration)} if args.calibration else {}),
        }
    else:
        real_time = {"use_sim_time": False}
        overrides["driver_node"] = emulator_driver_overrides(
            robot, args.task, emulator.port, args.seed, args.log_dir
        )
        if args.cameras:  # the emulated rig's camera driver
            overrides[CAMERA_DRIVER_NODE] = _camera_driver(args)
        teleop.update(real_time)
        overrides["task_node"].update(real_time)
    if args.record is not None:
        overrides["recorder_node"] = {
            "output_path": str(args.record.resolve()),
            "robot": robot,
            "task": args.task,
            **({"cameras": args.cameras} if args.cameras is not None else {}),
        }
    return overrides
