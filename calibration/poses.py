"""Arm poses that show the gripper's board to each camera, for a calibration run.

For each camera, board poses are drawn in its nominal view (the twin's camera: the rig's
differs by centimetres and degrees, which the margins absorb): the board's centre at a
distance where it fills a fair part of the image, its face toward the camera tilted by
`min_tilt_deg` to `max_tilt_deg` about random axes (a focal length and a hand-eye pose are
only observable from tilted views, Zhang 2000: with tilts drawn from 0 degrees, 3 of 16
emulated rigs missed 3 mm at 10 poses per camera, none of 40 from 20 degrees) and rolled
about its normal. Inverse kinematics (the twin's DLS IK, with orientation) turns each into
joint positions; poses the arm cannot reach, that bring the robot within CLEARANCE_M of the
table or floor (or into itself), that would show less than the whole board inside the
image, or (given the arm's start) with no clear way back to it are dropped. The result is
ordered for short moves between poses, and `route` joins them with moves that keep the
same clearance.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import mujoco
import numpy as np

from calibration.errors import CalibrationError
from sim.calibration_board import BoardSpec
from sim.camera_calibration import camera_intrinsics_px
from sim.ik import DlsIK

OPTICAL = np.diag([1.0, -1.0, -1.0])  # MuJoCo camera frame -> optical frame


@dataclass(frozen=True)
class PosePlan:
    """How many poses per camera and what they may look like."""

    poses_per_camera: int = 20
    distance_m: tuple[float, float] = (0.45, 0.9)
    min_tilt_deg: float = 20.0
    max_tilt_deg: float = 45.0
    max_roll_deg: float = 30.0
    image_margin: float = 0.05  # of the image size, kept free around the board
    attempts_per_pose: int = 20
    seed: int = 0

    def __post_init__(self) -> None:
        if self.poses_per_camera < 1 or not 0 < self.distance_m[0] < self.distance_m[1]:
            raise CalibrationError(
                f"pose plan: poses_per_camera {self.poses_per_camera} must be >= 1 and "
                f"distance_m {self.distance_m} an increasing positive range"
            )


@dataclass(frozen=True)
class CalibrationPose:
    """One stop of the arm: joint positions (arm joints' order) and the camera it is for."""

    camera: str
    joints: np.ndarray


LIFT_M = 0.3  # the detour hub: the gripper this far above where the run started
CLEARANCE_M = 0.03  # poses, and the moves between them, keep the robot this far off the table


class PoseGenerator:
    """Presents `board` (mounted on `gripper_body` at `board_in_gripper`, 4x4) to cameras."""

    def __init__(
        self,
        model: mujoco.MjModel,
        arm_joints: Sequence[str],
        gripper_body: str,
        board: BoardSpec,
        board_in_gripper: np.ndarray,
        image_size_px: tuple[int, int],
    ):
        self.model, self.board = model, board
        self.arm_joints = tuple(arm_joints)
        self._data = mujoco.MjData(model)
        mujoco.mj_forward(model, self._data)
        self._gripper = model.body(gripper_body).id
        self._board_in_gripper = np.asarray(board_in_gripper, dtype=np.float64)
        self._size = image_size_px
        self._site = _gripper_site(model, self._gripper)
        self._ik = DlsIK(model, model.site(self._site).name, self.arm_joints)
        self._qadr = np.array([model.jnt_qposadr[model.joint(j).id] for j in self.arm_joints])
        self._site_in_gripper = self._relative(self._data.site_xpos[self._site])
        width, height = board.size_m
        self._corners = np.array([[0, 0, 0], [width, 0, 0], [0, height, 0], [width, height, 0]])
        self._centre = np.array([width / 2, height / 2, 0.0])
        self._lift_data = copy.copy(self._data)  # _lifted's scratch: self._data stays put
        self._shoulder = self._data.xpos[model.jnt_bodyid[model.joint(self.arm_joints[0]).id]]

    def plan(
        self, cameras: Sequence[str], plan: PosePlan | None = None, start: np.ndarray | None = None
    ) -> list[CalibrationPose]:
        """Up to `poses_per_camera` reachable, collision-free poses per camera, ordered for
        short moves; with `start` (the arm's joints now) only poses with a clear way back to
        it (`_path`), so `route` strands none. A camera that gets fewer than half of them is
        an error naming it."""
        plan = plan or PosePlan()
        rng = np.random.default_rng(plan.seed)
        home = None if start is None else np.asarray(start, dtype=np.float64)
        hubs = [] if home is None else self._hubs(home)
        poses: list[CalibrationPose] = []
        for camera in cameras:
            found = self._for_camera(camera, plan, rng, home, hubs)
            if len(found) < max(plan.poses_per_camera // 2, 1):
                raise CalibrationError(
                    f"camera {camera!r}: the arm can show the board in only {len(found)} of "
                    f"{plan.poses_per_camera} poses tried; check that the camera sees the "
                    "arm's workspace, or widen distance_m"
                )
            poses += found
        return _ordered(poses)

    def route(
        self, start: np.ndarray, poses: list[CalibrationPose], clearance_m: float = CLEARANCE_M
    ) -> list[tuple[np.ndarray, CalibrationPose | None]]:
        """Waypoints (arm joints, the pose to capture there or None) from `start` through
        `poses` and back to `start`: a straight joint-space move where the whole arm keeps
        `clearance_m` from the table and the floor (and clear of itself), else a detour
        (`_path`); a pose reachable no such way is left out. A camera that keeps fewer than
        half of its poses is an error naming it, before anything moves."""
        start = np.asarray(start, dtype=np.float64)
        hubs = self._hubs(start)
        waypoints: list[tuple[np.ndarray, CalibrationPose | None]] = []
        here = start
        for pose in [*poses, None]:
            goal = start if pose is None else pose.joints
            if pose is not None and self._path(goal, start, hubs, clearance_m) is None:
                continue  # no clear way on from it: a dead end would strand every later pose
            path = self._path(here, goal, hubs, clearance_m)
            if path is None:
                if pose is None and waypoints:
                    waypoints.pop()  # the last pose has no clear way home: leave it out
                    here = waypoints[-1][0] if waypoints else start
                    path = self._path(here, goal, hubs, clearance_m) or [start]
                else:
                    continue
            waypoints += [(hub, None) for hub in path[:-1]] + [(goal, pose)]
            here = goal
        routed = [pose for _, pose in waypoints if pose is not None]
        self._require_each_camera(poses, routed, clearance_m)
        return waypoints

    def _path(
        self, here: np.ndarray, goal: np.ndarray, hubs: list[np.ndarray], clearance_m: float
    ) -> list[np.ndarray] | None:
        """The first clear one of: [goal]; [hub, goal] through a shared hub (the gripper
        lifted LIFT_M above where the run started, or the start); [up, hub..., down, goal]
        through the gripper lifted above `here` and above `goal`, with or without a shared
        hub between them. None if none is clear."""
        candidates: list[list[np.ndarray]] = [[]] + [[hub] for hub in hubs]
        up, down = self._lifted(here), self._lifted(goal)
        if up is not None and down is not None:
            candidates += [[up, down]] + [[up, hub, down] for hub in hubs]
        for via in candidates:
            stops = [here, *via, goal]
            if all(self._clear(a, b, clearance_m) for a, b in itertools.pairwise(stops)):
                return [*via, goal]
        return None

    def _hubs(self, start: np.ndarray) -> list[np.ndarray]:
        """Detour stops shared by every move: the gripper lifted above `start`, and `start`."""
        return [h for h in (self._lifted(start), start) if h is not None]

    def _lifted(self, joints: np.ndarray) -> np.ndarray | None:
        """The arm with its gripper (about) LIFT_M above where `joints` hold it, same
        orientation, if the move there is clear: a hub needs no precision."""
        data = self._lift_data
        data.qpos[self._qadr] = joints
        mujoco.mj_kinematics(self.model, data)
        target = data.site_xpos[self._site] + np.array([0.0, 0.0, LIFT_M])
        quat = np.empty(4)
        mujoco.mju_mat2Quat(quat, data.site_xmat[self._site])
        hub = self._ik.solve(target, quat, q_init=joints, rng=np.random.default_rng(0)).qpos
        return hub.copy() if self._clear(joints, hub, CLEARANCE_M) else None

    def _require_each_camera(
        self, planned: list[CalibrationPose], routed: list[CalibrationPose], clearance_m: float
    ) -> None:
        for camera in dict.fromkeys(pose.camera for pose in planned):
            wanted = sum(pose.camera == camera for pose in planned)
            kept = sum(pose.camera == camera for pose in routed)
            if kept < max(wanted // 2, 1):
                raise CalibrationError(
                    f"camera {camera!r}: only {kept} of its {wanted} poses can be reached "
                    f"keeping {clearance_m * 100:.0f} cm off the table and the floor; start "
                    "the arm from a raised pose, or clear the space around the arm"
                )

    def _clear(self, a: np.ndarray, b: np.ndarray, clearance_m: float) -> bool:
        """Whether the straight joint-space move a -> b keeps the robot `clearance_m` off
        everything else (table, floor) and off itself, checked every 0.03 rad."""
        model, data = self._margin_model(clearance_m), self._path_data
        steps = max(int(np.ceil(np.max(np.abs(b - a)) / 0.03)), 1)
        for t in np.linspace(0.0, 1.0, steps + 1):
            data.qpos[self._qadr] = a + t * (b - a)
            mujoco.mj_forward(model, data)
            for i in range(data.ncon):
                contact = data.contact[i]
                one, two = self._robot[contact.geom1], self._robot[contact.geom2]
                if one != two and contact.dist < clearance_m:
                    return False  # the robot near its surroundings
                if one and two and contact.dist < 0.0:
                    return False  # the robot into itself
        return True

    def _margin_model(self, clearance_m: float) -> mujoco.MjModel:
        """A copy of the model whose geoms report contacts `clearance_m` before touching."""
        if getattr(self, "_margin", None) != clearance_m:
            self._path_model = copy.deepcopy(self.model)
            self._path_model.geom_margin[:] = np.maximum(self.model.geom_margin, clearance_m)
            self._path_data = mujoco.MjData(self._path_model)
            self._path_data.qpos[:] = self._data.qpos
            arm_body = self.model.jnt_bodyid[self.model.joint(self.arm_joints[0]).id]
            root = self.model.body_rootid[arm_body]  # the robot: the tree holding the arm
            self._robot = self.model.body_rootid[self.model.geom_bodyid] == root
            self._margin = clearance_m
        return self._path_model

    def _for_camera(
        self,
        camera: str,
        plan: PosePlan,
        rng: np.random.Generator,
        home: np.ndarray | None,
        hubs: list[np.ndarray],
    ) -> list[CalibrationPose]:
        cam = self.model.camera(camera).id
        position = self._data.cam_xpos[cam].copy()
        axes = self._data.cam_xmat[cam].reshape(3, 3) @ OPTICAL  # optical frame in world
        found: list[CalibrationPose] = []
        seed_joints = self.model.qpos0[self._qadr]
        for _ in range(plan.poses_per_camera * plan.attempts_per_pose):
            if len(found) == plan.poses_per_camera:
                break
            board_pose = self._draw(position, axes, plan, rng)
            if not self._inside_image(cam, axes, position, board_pose, plan.image_margin):
                continue
            joints = self._solve(board_pose, seed_joints, rng)
            if joints is not None and home is not None:
                joints = joints if self._path(joints, home, hubs, CLEARANCE_M) else None
            if joints is not None:
                found.append(CalibrationPose(camera, joints))
                seed_joints = joints
        return found

    def _draw(
        self,
        camera_position: np.ndarray,
        axes: np.ndarray,
        plan: PosePlan,
        rng: np.random.Generator,
    ) -> np.ndarray:
        """A board pose (4x4 in world) in the camera's view, its face toward the camera."""
        distance = rng.uniform(*plan.distance_m)
        offset = rng.uniform(-0.15, 0.15, 2) * distance
        centre = camera_position + axes @ np.array([offset[0], offset[1], distance])
        into = (centre - camera_position) / np.linalg.norm(centre - camera_position)
        tilt_axis = np.cross(into, rng.normal(size=3))
        tilt_axis /= np.linalg.norm(tilt_axis)
        tilt = np.radians(rng.uniform(plan.min_tilt_deg, plan.max_tilt_deg))
        into = _rotate(tilt_axis, tilt) @ into
        # Printed x (the gripper's pointing direction) away from the shoulder, as an arm
        # reaches naturally, then rolled about the normal.
        outward = centre - self._shoulder
        x = outward - outward.dot(into) * into
        x = _rotate(into, np.radians(rng.uniform(-plan.max_roll_deg, plan.max_roll_deg))) @ (
            x / np.linalg.norm(x)
        )
        rotation = np.column_stack([x, np.cross(into, x), into])
        pose = np.eye(4)
        pose[:3, :3] = rotation
        pose[:3, 3] = centre - rotation @ self._centre
        return pose

    def _inside_image(
        self, cam: int, axes: np.ndarray, position: np.ndarray, board: np.ndarray, margin: float
    ) -> bool:
        width, height = self._size
        fx, fy, cx, cy = camera_intrinsics_px(self.model, cam, width, height)
        points = (board[:3, :3] @ self._corners.T).T + board[:3, 3]
        local = (points - position) @ axes
        if np.any(local[:, 2] <= 0.05):
            return False
        u = fx * local[:, 0] / local[:, 2] + cx
        v = fy * local[:, 1] / local[:, 2] + cy
        return bool(
            np.all((u > margin * width) & (u < (1 - margin) * width))
            and np.all((v > margin * height) & (v < (1 - margin) * height))
        )

    def _solve(
        self, board_pose: np.ndarray, seed: np.ndarray, rng: np.random.Generator
    ) -> np.ndarray | None:
        gripper = board_pose @ np.linalg.inv(self._board_in_gripper)
        target = gripper[:3, :3] @ self._site_in_gripper + gripper[:3, 3]
        quat = np.empty(4)
        mujoco.mju_mat2Quat(quat, (gripper[:3, :3] @ self._site_rotation()).ravel())
        result = self._ik.solve(target, quat, q_init=seed, rng=rng)
        if not result.converged:
            return None
        clear = self._clear(result.qpos, result.qpos, CLEARANCE_M)
        return result.qpos.copy() if clear else None

    def _relative(self, point: np.ndarray) -> np.ndarray:
        rotation = self._data.xmat[self._gripper].reshape(3, 3)
        return rotation.T @ (point - self._data.xpos[self._gripper])

    def _site_rotation(self) -> np.ndarray:
        gripper = self._data.xmat[self._gripper].reshape(3, 3)
        return gripper.T @ self._data.site_xmat[self._site].reshape(3, 3)


def _gripper_site(model: mujoco.MjModel, body: int) -> int:
    """The first site on the gripper body (the IK's end effector)."""
    for site in range(model.nsite):
        if model.site_bodyid[site] == body:
            return site
    raise CalibrationError(f"body {model.body(body).name!r} has no site for the arm's IK")


def _rotate(axis: np.ndarray, angle: float) -> np.ndarray:
    """Rotation matrix about a unit axis (Rodrigues' formula)."""
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * k @ k


def _ordered(poses: list[CalibrationPose]) -> list[CalibrationPose]:
    """Greedy nearest-neighbour order in joint space, camera by camera kept together."""
    if not poses:
        return poses
    remaining = poses[1:]
    order = [poses[0]]
    while remaining:
        last = order[-1]
        index = min(
            range(len(remaining)),
            key=lambda i: (remaining[i].camera != last.camera,
                           float(np.abs(remaining[i].joints - last.joints).max())),
        )  # fmt: skip
        order.append(remaining.pop(index))
    return order
