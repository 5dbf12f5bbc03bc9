"""`twinbridge vision dataset`: rig-camera renders over rollouts with the object's true pose,
in whole shards, as the documented format says (policies/vision/dataset.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from policies.vision.dataset import FORMAT_VERSION, DatasetConfig, generate
from sim.camera_calibration import CameraCalibration, RigCalibration
from sim.envs import make_task_env
from sim.errors import ConfigError
from sim.render import hide_sites, project
from sim.robots import get_robot

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("robot", ["fetch", "shadow_hand"])
def test_a_dataset_has_the_documented_shards_and_the_objects_true_pose(robot, tmp_path) -> None:
    config = DatasetConfig(
        robot=robot, out=tmp_path / "d", frames=12, shard_frames=5, width_px=64, height_px=48,
        every_steps=3, progress=False,
    )  # fmt: skip
    meta = generate(config)
    assert json.loads((tmp_path / "d" / "meta.json").read_text()) == meta
    cameras = list(get_robot(robot).rig_cameras)
    assert meta["format_version"] == FORMAT_VERSION and meta["cameras"] == cameras
    assert meta["frames"] == 12 and meta["shards"] == 3 and meta["frame"] == "world"
    assert meta["renders_per_s"] > 0 and meta["raw_renders_per_s"] > 0
    shards = [np.load(tmp_path / "d" / f"shard-{i:05d}.npz") for i in range(3)]
    assert [len(s["position_m"]) for s in shards] == [5, 5, 2]
    assert not list((tmp_path / "d").glob("*.partial.npz"))
    images = np.concatenate([s["images"] for s in shards])
    assert images.shape == (12, 3, 48, 64, 3) and images.dtype == np.uint8
    quaternions = np.concatenate([s["quaternion_wxyz"] for s in shards])
    np.testing.assert_allclose(np.linalg.norm(quaternions, axis=1), 1.0, atol=1e-5)
    assert (quaternions[:, 0] >= 0).all()
    steps = np.concatenate([s["step"] for s in shards])
    assert steps.max() > 0 and (steps % 3 == 0).all()  # from rollouts, not resets only
    positions = np.concatenate([s["position_m"] for s in shards])
    assert np.ptp(positions, axis=0).max() > 1e-4  # the object is not one pose
    assert images.std() > 10  # a scene, not a blank


def test_the_dataset_sees_what_the_rig_sees_no_goal_marker() -> None:
    """The goal sphere is the simulator's drawing: it is red in a plain render at its pixel,
    and gone once sites are hidden, as in the rig's cameras and the dataset."""
    env = make_task_env("fetch-pick-and-place")
    env.reset(seed=0)
    twin = env.unwrapped.twin
    site = twin.model.site("target0").id
    u, v = project(twin.model, twin.data, "external_camera_0", twin.data.site_xpos[[site]], 200)[0]
    before = twin.render("external_camera_0", 200, 200)[round(v), round(u)]
    hide_sites(twin.model)
    after = twin.render("external_camera_0", 200, 200)[round(v), round(u)]
    env.close()
    assert before[0] > 150 and before[1] < 80, before
    assert not (after[0] > 150 and after[1] < 80), after


def test_a_calibrated_dataset_names_its_calibration(tmp_path) -> None:
    camera = CameraCalibration(
        64, 48, 60.0, 61.0, 32.0, 24.0, position_m=(2.2, 0.75, 1.2),
        quaternion_wxyz=(0.5, 0.5, 0.5, 0.5),
    )  # fmt: skip
    rig = RigCalibration("fetch", {"external_camera_0": camera})
    path = rig.write(tmp_path / "rig.yaml")
    config = DatasetConfig(
        out=tmp_path / "d", frames=2, width_px=64, height_px=48, calibration=path,
        progress=False,
    )  # fmt: skip
    assert generate(config)["calibration_sha256"] == rig.sha256()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--robot", "shadow_hand", "--frames", "0"], "'frames': 0"),
        (["--width-px", "-1"], "'width_px': -1"),
    ],
)
def test_bad_dataset_options_are_one_line(arguments, message, tmp_path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "sim.cli", "vision", "dataset", "--out", str(tmp_path / "d"),
         *arguments], cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and ">= 1" in lines[0]


def test_a_folder_holding_a_dataset_is_refused_not_mixed(tmp_path) -> None:
    config = DatasetConfig(out=tmp_path / "d", frames=1, width_px=32, height_px=32, progress=False)
    generate(config)
    with pytest.raises(ConfigError, match="already holds shards; give a new --out"):
        generate(config)
    assert len(list((tmp_path / "d").glob("shard-*.npz"))) == 1


def test_a_robot_without_a_vision_task_is_named() -> None:
    with pytest.raises(ConfigError, match="robot 'ur5' has no vision task; choose from fetch"):
        DatasetConfig(robot="ur5")
