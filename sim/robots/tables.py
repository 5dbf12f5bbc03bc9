"""The model-derived half of a robot's tables, measured on its compiled twin.

Run: `python -m sim.robots.tables fetch` (prints what robot.yaml must say; `--check` exits 1
on a difference; `--draft` prints a first robot.yaml for a new robot folder's builder)

`robot.yaml` is the checked-in truth the robot side reads without MuJoCo. Position limits
come from the actuators' ctrlrange, effort limits from their forcerange, the reported
joints are the model's 1-DoF joints, and `servo_from_joints` is d(actuator length) /
d(joint position) (transmissions and fixed tendons are linear, so it is exact).
`tests/test_robot_tables.py` runs `differences` for every robot, so the file and the
model cannot drift apart.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from dataclasses import dataclass

import mujoco
import numpy as np

from sim.errors import TwinbridgeError
from sim.robots import RobotDescription, get_robot
from sim.robots.models import compile_spec, load_model, scenes

_ONE_DOF = {int(mujoco.mjtJoint.mjJNT_HINGE), int(mujoco.mjtJoint.mjJNT_SLIDE)}
_STEP = 1e-3


@dataclass(frozen=True)
class MeasuredTables:
    """What the compiled model says about a robot's joints and command channels."""

    joints: tuple[str, ...]
    position_min: np.ndarray
    position_max: np.ndarray
    effort_max: np.ndarray
    servo_from_joints: np.ndarray


def measure(description: RobotDescription) -> MeasuredTables:
    """The tables of `description`'s robot, read from the model of its first scene (every
    scene holds the same robot; a scene's objects have free joints, never 1-DoF ones)."""
    model = load_model(description.name, scenes(description.name)[0])
    data = mujoco.MjData(model)
    joints = tuple(
        model.joint(i).name for i in range(model.njnt) if int(model.jnt_type[i]) in _ONE_DOF
    )
    ids = np.array([model.actuator(a).id for a in description.command_actuators], dtype=np.intp)
    limited = model.actuator_ctrllimited[ids].astype(bool)
    ranges = model.actuator_ctrlrange[ids]
    force = np.where(
        model.actuator_forcelimited[ids].astype(bool),
        np.abs(model.actuator_forcerange[ids]).max(axis=1),
        np.inf,
    )
    return MeasuredTables(
        joints=joints,
        position_min=np.where(limited, ranges[:, 0], -np.inf),
        position_max=np.where(limited, ranges[:, 1], np.inf),
        effort_max=force,
        servo_from_joints=_servo_from_joints(model, data, ids, joints),
    )


def _servo_from_joints(model, data, actuator_ids: np.ndarray, joints: tuple[str, ...]):
    addresses = [int(model.jnt_qposadr[model.joint(j).id]) for j in joints]
    mujoco.mj_forward(model, data)
    base = data.actuator_length[actuator_ids].copy()
    matrix = np.zeros((len(actuator_ids), len(addresses)))
    for column, address in enumerate(addresses):
        data.qpos[address] += _STEP
        mujoco.mj_forward(model, data)
        matrix[:, column] = (data.actuator_length[actuator_ids] - base) / _STEP
        data.qpos[address] -= _STEP
    matrix[np.abs(matrix) < 1e-9] = 0.0
    return np.round(matrix, 6)


def differences(description: RobotDescription) -> list[str]:
    """Each way robot.yaml disagrees with the compiled model (empty when they agree)."""
    measured = measure(description)
    problems = []
    if measured.joints != description.joints:
        problems.append(f"joints: robot.yaml {description.joints}, model {measured.joints}")
    for i, command in enumerate(description.commands):
        for key in ("position_min", "position_max", "effort_max"):
            want = float(getattr(measured, key)[i])
            if not np.isclose(getattr(command, key), want, rtol=1e-6, atol=1e-6):
                have = getattr(command, key)
                problems.append(f"{command.name}.{key}: robot.yaml {have}, model {want}")
    table = np.array(description.servo_from_joints)
    if table.shape != measured.servo_from_joints.shape or not np.allclose(
        table, measured.servo_from_joints, atol=1e-5
    ):
        problems.append(f"servo_from_joints: model says {measured.servo_from_joints.tolist()}")
    return problems


def draft(folder: str) -> str:
    """A first robot.yaml for `sim/robots/<folder>/builder.py`, before the robot is registered:
    the model-derived tables measured, the rest marked for the author to fill in."""
    builder = importlib.import_module(f"{__package__}.{folder}.builder")
    model = compile_spec(builder.build_spec(next(iter(builder.SCENES))), f"{folder} builder")
    joints = tuple(
        model.joint(i).name for i in range(model.njnt) if int(model.jnt_type[i]) in _ONE_DOF
    )
    ids = np.arange(model.nu)
    matrix = _servo_from_joints(model, mujoco.MjData(model), ids, joints)
    lines = [
        f"# {folder}: drafted by python -m sim.robots.tables {folder} --draft; fill in every",
        "# FILL line (sim/robots/README.md), then check: python -m sim.robots.tables "
        f"{folder} --check",
        f"namespace: {folder}",
        f"device_model: twinbridge-{folder}",
        "source: FILL where the model comes from",
        "emulator_task: FILL a task of this robot (declare one under tasks:)",
        "default_task: FILL the task `twinbridge robot` runs",
        "safe_state: FILL hold (an arm under gravity) or torque_off (limp is safe)",
        "position_margin: 0.0",
        "cameras: []",
        f"joints: [{', '.join(joints)}]",
        "commands:  # velocity_max, acceleration_max: FILL the real servo's limits",
        *(_draft_command(model, int(a)) for a in ids),
        "servo_from_joints:  # commands x joints",
        *(f"  - {row}" for row in matrix.tolist()),
    ]
    return "\n".join(lines) + "\n"


def _draft_command(model: mujoco.MjModel, actuator: int) -> str:
    """One `commands:` line: named after the joint a servo drives, else after the actuator."""
    name = model.actuator(actuator).name
    if int(model.actuator_trntype[actuator]) == int(mujoco.mjtTrn.mjTRN_JOINT):
        command = model.joint(int(model.actuator_trnid[actuator, 0])).name
    else:
        command = name
    limited = bool(model.actuator_ctrllimited[actuator])
    low, high = model.actuator_ctrlrange[actuator].tolist() if limited else (-np.inf, np.inf)
    forced = bool(model.actuator_forcelimited[actuator])
    effort = float(np.abs(model.actuator_forcerange[actuator]).max()) if forced else np.inf
    return (
        f"  - {{name: {command}, actuator: {name}, position: [{_yaml(low)}, {_yaml(high)}], "
        f"velocity_max: .nan, acceleration_max: .nan, effort_max: {_yaml(effort)}}}"
    )


def _yaml(value: float) -> str:
    return {np.inf: ".inf", -np.inf: "-.inf"}.get(value, repr(float(value)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("robot", help="a registered robot (with --draft: a robot folder)")
    parser.add_argument("--check", action="store_true", help="exit 1 when robot.yaml differs")
    parser.add_argument("--draft", action="store_true", help="print a first robot.yaml")
    args = parser.parse_args(argv)
    try:
        if args.draft:
            print(draft(args.robot), end="")
            return 0
        description = get_robot(args.robot)
    except (TwinbridgeError, ModuleNotFoundError) as e:
        print(f"sim.robots.tables: {e}", file=sys.stderr)
        return 2
    problems = differences(description)
    for line in problems:
        print(f"{args.robot}: {line}")
    if not problems:
        print(f"{args.robot}: robot.yaml agrees with the model")
    return 1 if problems and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
