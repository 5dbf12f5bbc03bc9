"""Build the Shadow Dexterous Hand scenes from gymnasium-robotics' MJCF with `mujoco.MjSpec`.

The shipped XML is used as is (read from the installed package, never copied); the edits
below only remove simulation cost that is not the real system (the goal marker's free joint)
and add cameras. README.md in this folder lists every edit and why.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import mujoco
import numpy as np

from sim.errors import ModelCompileError
from sim.robots.assets import asset_file

# Fingertip sites in gymnasium-robotics' achieved-goal order (HandReach).
FINGERTIP_SITES = (
    "robot0:S_fftip",
    "robot0:S_mftip",
    "robot0:S_rftip",
    "robot0:S_lftip",
    "robot0:S_thtip",
)
FINGERTIP_BODIES = tuple(
    name.replace(":S_", ":").replace("tip", "distal") for name in FINGERTIP_SITES
)
REACH_TARGET_BODIES = tuple(f"target{i}" for i in range(len(FINGERTIP_SITES)))
OBJECT_JOINT = "object:joint"
OBJECT_BODY = "object"
TARGET_BODY = "target"
POSE_CAMERAS = ("camera_0", "camera_1", "camera_2")
VIDEO_CAMERA = "video"


@dataclass(frozen=True)
class CameraPose:
    """A fixed camera aimed at a point, placed by MuJoCo's free-camera spherical coordinates."""

    name: str
    azimuth_deg: float
    elevation_deg: float
    distance_m: float
    fovy_deg: float = 45.0
    lookat_m: tuple[float, float, float] | None = None  # None: the scene's point of interest


@dataclass(frozen=True)
class SceneSource:
    """Which shipped file a scene comes from, what to edit and where its cameras look."""

    asset: str
    edit: Callable[[mujoco.MjSpec], None]
    lookat_m: tuple[float, float, float]


# Three cameras spread 120 degrees apart on the fingertip side of the hand (the forearm
# hides the palm from the other side), as the pose estimator's rig; plus a fixed video
# camera above the fingertips aimed at the middle of the hand's reach, as close as keeps
# every finger and the wrist at their limits, the object and the goal marker (0.15 m aside
# in the rotation tasks) in frame (tests/test_video_framing.py).
_CAMERAS = (
    CameraPose(POSE_CAMERAS[0], azimuth_deg=30.0, elevation_deg=-40.0, distance_m=0.35),
    CameraPose(POSE_CAMERAS[1], azimuth_deg=90.0, elevation_deg=-40.0, distance_m=0.35),
    CameraPose(POSE_CAMERAS[2], azimuth_deg=150.0, elevation_deg=-40.0, distance_m=0.35),
    CameraPose(
        VIDEO_CAMERA,
        azimuth_deg=40.0,
        elevation_deg=-60.0,
        distance_m=0.41,
        lookat_m=(1.004, 0.912, 0.166),
    ),
)


def build_spec(scene: str) -> mujoco.MjSpec:
    """A fresh MjSpec of the hand in `scene` ("reach", "block", "egg" or "pen")."""
    source = SCENES[scene]
    spec = mujoco.MjSpec.from_file(str(asset_file(source.asset)))
    spec.modelname = f"shadow_hand_{scene}"
    source.edit(spec)
    for camera in _CAMERAS:
        _add_camera(spec, camera, camera.lookat_m or source.lookat_m)
    return spec


def _mocap_object_target(spec: mujoco.MjSpec) -> None:
    """Make the goal marker a mocap body: it is only drawn, so it must cost no DOFs.

    In the asset it is a free-jointed body (6 DOFs, 7 qpos) that the gym env overwrites every
    frame; a mocap body is placed the same way but is not integrated.
    """
    body = _find(spec.body(TARGET_BODY), "body", TARGET_BODY)
    for joint in list(body.joints):
        spec.delete(joint)
    body.mocap = True
    for geom in body.geoms:
        if geom.contype or geom.conaffinity:
            raise ModelCompileError(f"goal marker geom {geom.name!r} must not collide")


def _mocap_fingertip_targets(spec: mujoco.MjSpec) -> None:
    """Move HandReach's goal spheres onto mocap bodies, and its fingertip markers onto fingertips.

    The asset parks `target<i>`/`finger<i>` sites on the floor body and the gym env edits
    `model.site_pos` at render time; mocap positions live in `data` (and in saved states), so
    the model stays constant and a restored state shows its own goal.
    """
    floor = _find(spec.body("floor0"), "body", "floor0")
    bodies = zip(REACH_TARGET_BODIES, FINGERTIP_BODIES, strict=True)
    for i, (target, fingertip) in enumerate(bodies):
        goal = _find(spec.site(f"target{i}"), "site", f"target{i}")
        marker = _find(spec.site(f"finger{i}"), "site", f"finger{i}")
        tip = _find(spec.site(FINGERTIP_SITES[i]), "site", FINGERTIP_SITES[i])
        distal = _find(spec.body(fingertip), "body", fingertip)
        goal_look = {"type": goal.type, "size": goal.size.copy(), "rgba": goal.rgba.copy()}
        marker_look = {"type": marker.type, "size": marker.size.copy(), "rgba": marker.rgba.copy()}
        spec.delete(goal)
        spec.delete(marker)
        body = spec.worldbody.add_body(name=target, mocap=True, pos=floor.pos)
        body.add_site(name=target, **goal_look)
        distal.add_site(name=f"finger{i}", pos=tip.pos.copy(), **marker_look)


def _add_camera(
    spec: mujoco.MjSpec, pose: CameraPose, lookat_m: tuple[float, float, float]
) -> None:
    """A world-fixed camera looking at `lookat_m`, placed like MuJoCo's free camera."""
    az, el = math.radians(pose.azimuth_deg), math.radians(pose.elevation_deg)
    forward = np.array([math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el)])
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    up = np.cross(right, forward)
    camera = spec.worldbody.add_camera(
        name=pose.name, pos=np.asarray(lookat_m) - pose.distance_m * forward, fovy=pose.fovy_deg
    )
    camera.alt.type = mujoco.mjtOrientation.mjORIENTATION_XYAXES
    camera.alt.xyaxes = np.concatenate([right, up])


def _find(element, kind: str, name: str):
    if element is None:
        raise ModelCompileError(
            f"shadow hand asset has no {kind} {name!r}; gymnasium-robotics' hand MJCF changed "
            "(this builder expects gymnasium-robotics==1.4.2)"
        )
    return element


# Where the cameras look: the palm's centre for reach, the object's resting place otherwise.
_PALM_M = (1.0, 0.89, 0.16)
_OBJECT_M = (1.0, 0.87, 0.17)
SCENES: dict[str, SceneSource] = {
    "reach": SceneSource("hand/reach.xml", _mocap_fingertip_targets, _PALM_M),
    "block": SceneSource("hand/manipulate_block.xml", _mocap_object_target, _OBJECT_M),
    "egg": SceneSource("hand/manipulate_egg.xml", _mocap_object_target, _OBJECT_M),
    "pen": SceneSource("hand/manipulate_pen.xml", _mocap_object_target, _OBJECT_M),
}
