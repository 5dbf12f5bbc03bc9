"""Every robot's `video` camera keeps the robot and the task's object in frame and fills it:
the moving parts' geometry, driven in the twin through random joint targets and to the
command limits (the arm's full swing), projects inside the image; the swing's bounding
box covers at least half of it (the camera is not too far); the whole robot at its start
pose covers a good part (the hand > 40%); the object and the goal are in frame at each reset."""

from __future__ import annotations

import mujoco
import numpy as np
import pytest

from sim.render import project
from sim.robots import ROBOT_FOLDERS, get_robot
from sim.tasks import TASKS
from sim.twin_loop import TwinLoop

SIZE_PX = 480
SWINGS = 80  # target sets: even ones at the command limits, odd ones uniform in between
SWING_S = 1.2  # time to reach each (the servos settle within about half of it)
# How much of the frame the whole robot's bounding box covers at its start pose, at least:
# the hand (with its forearm) fills the frame; an arm's camera must leave room for its swing.
AT_REST_COVERAGE = {"shadow_hand": 0.4}
_CORNERS = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)])


def moving_geoms(model: mujoco.MjModel, joints: tuple[str, ...]) -> list[int]:
    """Visible geoms (render groups 0-2, not transparent) moved by any of `joints`."""
    return _visible_below(model, {int(model.jnt_bodyid[model.joint(n).id]) for n in joints})


def _visible_below(model: mujoco.MjModel, bodies: set[int]) -> list[int]:
    """Geoms drawn by default (groups 0-2, not transparent) in the subtrees of `bodies`."""
    geoms = []
    for geom in range(model.ngeom):
        body = int(model.geom_bodyid[geom])
        while body and body not in bodies:
            body = int(model.body_parentid[body])
        if body and model.geom_group[geom] <= 2 and model.geom_rgba[geom, 3] > 0:
            geoms.append(geom)
    return geoms


def robot_geoms(model: mujoco.MjModel, joints: tuple[str, ...]) -> list[int]:
    """Visible geoms of the whole robot: the subtrees of the world's children that hold
    `joints` (the Fetch with its base and torso, the hand with its forearm)."""
    roots = set()
    for name in joints:
        body = int(model.jnt_bodyid[model.joint(name).id])
        while model.body_parentid[body] != 0:
            body = int(model.body_parentid[body])
        roots.add(body)
    return _visible_below(model, roots)


def geom_corners(model: mujoco.MjModel, data: mujoco.MjData, geoms: list[int]) -> np.ndarray:
    """World corners of each geom's bounding box (8 per geom)."""
    boxes = model.geom_aabb[geoms]  # centre and half-size in the geom's frame
    local = boxes[:, None, :3] + _CORNERS[None] * boxes[:, None, 3:]
    rotations = data.geom_xmat[geoms].reshape(-1, 3, 3)
    world = data.geom_xpos[geoms][:, None] + np.einsum("gij,gkj->gki", rotations, local)
    return world.reshape(-1, 3)


def swing(loop: TwinLoop, geoms: list[int], seed: int = 0) -> np.ndarray:
    """World corners of `geoms` wherever the robot's servos take them, driven in the twin
    (contacts included) to random target sets; the start pose's corners first."""
    twin = loop.twin
    low, high = loop.io.command_limits(twin)
    rng = np.random.default_rng(seed)
    start = twin.get_state()
    points = [geom_corners(twin.model, twin.data, geoms)]
    for k in range(SWINGS):
        twin.set_state(start)
        if k % 2 == 0:
            targets = np.where(rng.random(len(low)) < 0.5, low, high)
        else:
            targets = rng.uniform(low, high)
        loop.apply(dict(zip(loop.io.command_names, targets.tolist(), strict=True)))
        for _ in range(round(SWING_S / loop.control_period_s)):
            loop.step()
            if loop.estopped:
                pytest.fail(f"the twin latched its e-stop: {loop.estop_reason}")
        points.append(geom_corners(twin.model, twin.data, geoms))
    twin.set_state(start)
    return np.concatenate(points)


def coverage(uv: np.ndarray) -> float:
    """Fraction of the image covered by the points' bounding box (clipped to the image)."""
    extent = np.clip(uv.max(axis=0), 0, SIZE_PX) - np.clip(uv.min(axis=0), 0, SIZE_PX)
    return float(np.prod(extent)) / SIZE_PX**2


def inside(uv: np.ndarray) -> np.ndarray:
    return np.isfinite(uv).all(axis=1) & ((uv >= 0) & (uv <= SIZE_PX)).all(axis=1)


@pytest.fixture(scope="module", params=ROBOT_FOLDERS)
def framed(request: pytest.FixtureRequest) -> tuple[TwinLoop, np.ndarray]:
    robot = get_robot(request.param)
    loop = TwinLoop(robot.default_task)
    loop.reset()
    geoms = moving_geoms(loop.twin.model, loop.io.joint_names)
    return loop, swing(loop, geoms)


def test_the_robots_full_swing_stays_in_frame_and_fills_it(framed) -> None:
    loop, world = framed
    model, data = loop.twin.model, loop.twin.data
    uv = project(model, data, loop.task.video_camera, world, SIZE_PX)
    out = ~inside(uv)
    assert not out.any(), (
        f"{loop.task_name}: {out.mean():.1%} of the swing's points leave the video frame "
        f"(u {np.nanmin(uv[:, 0]):.0f}..{np.nanmax(uv[:, 0]):.0f}, "
        f"v {np.nanmin(uv[:, 1]):.0f}..{np.nanmax(uv[:, 1]):.0f} of {SIZE_PX})"
    )
    assert coverage(uv) >= 0.5, f"{loop.task_name}: the swing covers {coverage(uv):.0%}"


def test_the_robot_at_rest_fills_a_good_part_of_the_frame(framed) -> None:
    loop, _ = framed
    model = loop.twin.model
    corners = geom_corners(model, loop.twin.data, robot_geoms(model, loop.io.joint_names))
    uv = project(model, loop.twin.data, loop.task.video_camera, corners, SIZE_PX)
    least = AT_REST_COVERAGE.get(loop.io.robot, 0.1)
    assert coverage(uv) >= least, f"{loop.task_name}: the robot covers {coverage(uv):.0%}"


@pytest.mark.parametrize("task", list(TASKS))
def test_the_object_and_the_goal_are_in_frame_at_every_reset(task: str) -> None:
    loop = TwinLoop(task)
    model, data = loop.twin.model, loop.twin.data
    for seed in range(4):
        loop.env.reset(seed=seed)
        # The goal as drawn: its markers (mocap bodies), or the goal's positions.
        goals = data.mocap_pos if model.nmocap else loop.env.goal.reshape(-1, 3)
        pose = loop.object_pose()
        world = np.vstack([goals, *([pose.position_m] if pose is not None else [])])
        uv = project(model, data, loop.task.video_camera, world, SIZE_PX)
        assert inside(uv).all(), f"{task} seed {seed}: {world.round(3).tolist()} -> {uv}"
