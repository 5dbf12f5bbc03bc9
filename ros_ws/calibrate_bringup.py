"""`twinbridge calibrate`: the board to print, and a rig's cameras calibrated end to end.

Run: `twinbridge calibrate cameras --robot fetch --hardware emulator --out out/calibration`
(then `--bag out/calibration/calibration-<UTC>.mcap` solves the recording again), or
`twinbridge calibrate board --out board.pdf`.

`cameras` plans board poses for each of the robot's rig cameras on the nominal twin
(calibration/poses.py), walks the arm through them slowly over the topic contract (driver_node
and its safety layer: limits, rate limiter, watchdog, e-stop; ros_ws/calibration_client.py),
records every joint state and, at each pose, each camera's image to MCAP, then solves
(calibration/session.py) and writes `rig.yaml`, `camera_info/<camera>.yaml` and a PNG of
the residuals per camera into `--out`. With `--hardware emulator` it starts the emulator (its
`calibration` scene: the board on the gripper), driver_node and the emulated rig's camera
driver on a ROS domain of their own, and stops them afterwards; with `--hardware robot` it
joins the robot's running graph (`twinbridge robot`, the cameras' own drivers).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from tqdm import tqdm

from calibration import cli as board_cli
from calibration.errors import CalibrationError
from calibration.kit import CalibrationKit
from calibration.motion import MotionConfig, PoseSequencer
from calibration.poses import PosePlan
from calibration.session import (
    motion_report,
    read_captures,
    recording_source,
    residual_lines,
    solve_session,
    write_session,
)
from ros_ws.bringup import (
    camera_driver_overrides,
    emulator_driver_overrides,
    start_node,
    stop_processes,
    world_feed_path,
)
from ros_ws.bringup_plan import CAMERA_DRIVER_NODE, SIM_CONFIG, plan
from ros_ws.discovery import default_domain_id, sim_environment
from sim.errors import TwinbridgeError
from sim.robots import ROBOT_FOLDERS, get_robot

if TYPE_CHECKING:  # imported when run: `twinbridge --help` builds every parser
    from calibration.kit import CalibrationKit
    from calibration.motion import PoseSequencer

READY_TIMEOUT_S = 60.0  # the driver connects and the first images render
DEFAULT_SPEED_RAD_S = 0.4  # calibration.motion.MotionConfig's: well below the arm's limits


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    board_cli.add_board_parser(actions)
    cameras = actions.add_parser(
        "cameras", help="calibrate the rig's cameras: record board poses, solve, write files"
    )
    cameras.add_argument("--robot", default="fetch", choices=sorted(ROBOT_FOLDERS))
    cameras.add_argument(
        "--hardware", choices=("emulator", "robot"), default=None,
        help="record on the emulated rig (started here) or on the robot's running graph",
    )  # fmt: skip
    cameras.add_argument("--bag", type=Path, help="solve this recording (no robot needed)")
    cameras.add_argument("--out", type=Path, default=Path("out/calibration"))
    cameras.add_argument("--poses-per-camera", type=int, default=16)
    cameras.add_argument("--seed", type=int, default=0, help="seeds the pose plan")
    cameras.add_argument(
        "--speed-rad-s", type=float, default=DEFAULT_SPEED_RAD_S,
        help="the fastest joint between poses (the driver's limits apply on top)",
    )  # fmt: skip
    cameras.add_argument(
        "--emulator-config", type=Path, help="with --hardware emulator: its YAML (cameras:)"
    )
    cameras.add_argument("--domain-id", type=int, default=None)


def run(args: argparse.Namespace) -> int:
    if args.action == "board":
        return board_cli.run(args)
    from calibration.kit import CalibrationKit

    kit = CalibrationKit.of(args.robot)
    if args.bag is None and args.hardware is None:
        raise TwinbridgeError("calibrate cameras: give --hardware emulator|robot, or --bag FILE")
    if args.poses_per_camera < 4:
        raise TwinbridgeError(f"--poses-per-camera {args.poses_per_camera}: use at least 4")
    started = time.monotonic()
    bag = args.bag if args.bag is not None else record(args, kit)
    recorded_s = time.monotonic() - started
    solve(args, kit, bag)
    print(f"recording {recorded_s:.0f} s, solving {time.monotonic() - started - recorded_s:.0f} s")
    return 0


def record(args: argparse.Namespace, kit: CalibrationKit) -> Path:
    """Start the emulated rig if asked, walk the poses, record; the bag's path."""

    from ros_ws.calibration_client import CalibrationClient

    args.out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    bag = (args.out / f"calibration-{stamp}.mcap").resolve()
    description = get_robot(kit.robot)
    domain = args.domain_id if args.domain_id is not None else default_domain_id()
    processes = _start_emulated_rig(args, kit, domain) if args.hardware == "emulator" else {}
    try:
        os.environ.update(sim_environment(domain))
        with CalibrationClient(
            kit.robot, description.namespace, description.command_names, len(kit.cameras), bag
        ) as client:
            measured = client.wait_ready(READY_TIMEOUT_S)
            sequencer = _sequencer(args, kit, measured, client.image_size())
            with tqdm(total=sequencer.poses, desc="calibration poses", unit="pose") as bar:
                client.run(sequencer, _arm_reader(kit), lambda done: bar.update(done - bar.n))
            print(
                f"{len(sequencer.captured_poses)} captures, {len(sequencer.skipped)} poses "
                f"skipped; recording: {bag}"
            )
    finally:
        stop_processes(processes)
    return bag


def _start_emulated_rig(
    args: argparse.Namespace, kit: CalibrationKit, domain: int
) -> dict[str, subprocess.Popen]:
    """The emulator in its calibration scene, driver_node on its port, its camera driver."""
    from hardware.emulator_cli import EmulatorStartError, spawn_emulator

    log_dir = (args.out / "logs").resolve()
    log_dir.mkdir(parents=True, exist_ok=True)
    link, feed = log_dir / "emulated-device", world_feed_path(log_dir)
    try:
        emulator = spawn_emulator(
            kit.robot, link, log=log_dir / "emulator.jsonl", task=kit.task, scene=kit.scene,
            config=args.emulator_config, camera_feed=feed,
        )  # fmt: skip
    except EmulatorStartError as e:
        raise TwinbridgeError(str(e)) from e
    processes = {"emulator": emulator}
    try:
        overrides = {
            "driver_node": emulator_driver_overrides(kit.robot, kit.task, str(link), 0, log_dir),
            CAMERA_DRIVER_NODE: camera_driver_overrides(
                kit.robot, kit.task, kit.scene, feed, args.emulator_config, "rig", None
            ),
        }
        env = sim_environment(domain)
        for launch in plan(("driver_node", CAMERA_DRIVER_NODE), SIM_CONFIG, overrides):
            processes[launch.name] = start_node(launch, env, log_dir)
    except BaseException:
        stop_processes(processes)
        raise
    return processes


def _sequencer(
    args: argparse.Namespace,
    kit: CalibrationKit,
    measured: dict[str, float],
    image_size: tuple[int, int],
) -> PoseSequencer:
    """The poses planned on the nominal twin, walked from where the arm stands."""
    from calibration.motion import PoseSequencer

    description = get_robot(kit.robot)
    twin = kit.nominal_twin()
    planner = kit.pose_generator(twin, image_size)
    joints = np.array([measured[name] for name in description.joints])
    start = np.asarray(description.servo_from_joints) @ joints
    commands = description.command_names
    arm = np.array([commands.index(name) for name in kit.arm_joints])
    plan = PosePlan(poses_per_camera=args.poses_per_camera, seed=args.seed)
    poses = planner.plan(kit.cameras, plan, start[arm])
    route = planner.route(start[arm], poses)
    waypoints = [(joints, pose is not None) for joints, pose in route]
    low = np.array([c.position_min for c in description.commands]) + description.position_margin
    high = np.array([c.position_max for c in description.commands]) - description.position_margin
    motion = MotionConfig(speed_rad_s=args.speed_rad_s)
    return PoseSequencer(start, arm, waypoints, low, high, 25.0, motion)


def _arm_reader(kit: CalibrationKit):
    """(arm positions, arm speeds) from a JointState, by name."""

    def read(state) -> tuple[np.ndarray, np.ndarray]:
        index = {name: i for i, name in enumerate(state.name)}
        rows = [index[name] for name in kit.arm_joints]
        velocity = np.asarray(state.velocity) if len(state.velocity) else np.zeros(len(index))
        return np.asarray(state.position)[rows], velocity[rows]

    return read


def solve(args: argparse.Namespace, kit: CalibrationKit, bag: Path) -> None:
    """Solve a recording and write the rig file, camera_info YAMLs and residual PNGs."""

    description = get_robot(kit.robot)
    if not bag.exists():
        raise CalibrationError(f"--bag {bag}: no such file")
    captures = read_captures(bag, description.namespace, kit.cameras)
    result = solve_session(
        kit.robot, kit.nominal_twin().model, captures, kit.cameras, kit.board,
        recording_source(bag, kit.board),
    )  # fmt: skip
    paths = write_session(args.out, result, captures)
    for line in residual_lines(result):
        print(line)
    print(motion_report(bag, kit.robot))
    for role, path in paths.items():
        print(f"{role}: {path}")
