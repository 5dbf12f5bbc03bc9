"""Training data for a vision state estimator: the rig's cameras' renders of the task's
object in the states rollouts visit, under visual randomization, with its true pose.

Run: `twinbridge vision dataset --robot fetch --frames 2000 --out out/vision/fetch`

A pose estimator trained on renders transfers when the renders vary more than the real
images do (Tobin et al. 2017) and when the object is where the task puts it: Dactyl's
estimator saw the block in the hand's own grasps, not only at resets. So frames come from
rollouts of a policy (the robot's zoo policy for the task, else random actions), every
`every_steps` control steps, each episode on a twin whose colours, textures, lights and
camera poses are drawn anew (`sim/randomization/configs/<robot>-vision.yaml`, the visual
family; cameras move around the rig's calibrated poses when `calibration` is given).

Format (FORMAT_VERSION): `DIR/meta.json` and `DIR/shard-00000.npz`, ...; each shard holds
  images           uint8   (n, cameras, height, width, 3)  RGB, cameras in meta's order
  position_m       float32 (n, 3)   the object's position in the `world` frame
  quaternion_wxyz  float32 (n, 4)   its orientation in `world`, w >= 0
  episode, step    int32   (n,)     where the frame came from
and meta.json names the robot, task, cameras, image size, the calibration's sha256 (None:
nominal cameras), the randomization file, the policy, the seed, the frame count and the
rate (renders per second, rollouts and writing included) against the raw render rate of
the same cameras measured in the same run. Shards are compressed npz (np.load reads them).
A shard is written whole to a temporary name and renamed, so a stopped run leaves whole
shards only.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from policies.rollout import make_policy
from sim.camera_calibration import load_rig
from sim.envs import make_task_env
from sim.errors import ConfigError
from sim.files import atomic_write
from sim.render import hide_sites
from sim.robots import get_robot

FORMAT_VERSION = 1
CONFIGS = Path(__file__).resolve().parents[2] / "sim" / "randomization" / "configs"
ZOO = Path(__file__).resolve().parents[1] / "zoo"
# The estimator's task per robot: the Fetch block (pick-and-place moves it in 3D; push's
# states are a subset) and the hand's block (the Dactyl setting).
VISION_TASKS = {"fetch": "fetch-pick-and-place", "shadow_hand": "hand-block"}
RAW_RATE_RENDERS = 30  # renders timed, on one scene, for the raw rate


@dataclass(frozen=True)
class DatasetConfig:
    """What `twinbridge vision dataset` renders (`--help` names each)."""

    robot: str = "fetch"
    out: Path = Path("out/vision/fetch")
    frames: int = 1000
    shard_frames: int = 500
    width_px: int = 200
    height_px: int = 200
    every_steps: int = 5
    policy: str = "zoo"  # zoo: policies/zoo/<task>.onnx if shipped, else random
    randomization: Path | None = None  # None: sim/randomization/configs/<robot>-vision.yaml
    calibration: Path | None = None
    seed: int = 0
    progress: bool = True
    task: str = field(init=False, default="")

    def __post_init__(self) -> None:
        if self.robot not in VISION_TASKS:
            raise ConfigError(
                f"vision dataset: robot {self.robot!r} has no vision task; "
                f"choose from {', '.join(VISION_TASKS)}"
            )
        object.__setattr__(self, "task", VISION_TASKS[self.robot])
        checks = {"frames": self.frames, "shard_frames": self.shard_frames,
                  "width_px": self.width_px, "height_px": self.height_px,
                  "every_steps": self.every_steps}  # fmt: skip
        bad = {name: value for name, value in checks.items() if value < 1}
        if bad:
            raise ConfigError(f"vision dataset: {bad} must each be >= 1")

    @property
    def randomization_path(self) -> Path:
        return self.randomization or CONFIGS / f"{self.robot}-vision.yaml"

    @property
    def policy_name(self) -> str:
        """The policy `make_policy` takes: the zoo's ONNX for the task, or as given."""
        if self.policy != "zoo":
            return self.policy
        shipped = ZOO / f"{self.task}.onnx"
        return str(shipped) if shipped.exists() else "random"


@dataclass
class Frame:
    images: np.ndarray  # (cameras, height, width, 3) uint8
    position_m: np.ndarray  # (3,)
    quaternion_wxyz: np.ndarray  # (4,)
    episode: int
    step: int


def generate(config: DatasetConfig) -> dict[str, Any]:
    """Render `config.frames` frames into shards under `config.out`; returns meta.json's
    content (also written)."""
    cameras = get_robot(config.robot).rig_cameras
    env = make_task_env(
        config.task, randomization=config.randomization_path, calibration=config.calibration
    )
    twin = env.unwrapped.twin  # type: ignore[attr-defined]
    hide_sites(twin.model)  # the images look like the rig's (hardware/camera_rig.py)
    policy = make_policy(config.policy_name, config.task, env, config.seed)
    config.out.mkdir(parents=True, exist_ok=True)
    if any(config.out.glob("shard-*.npz")):
        raise ConfigError(
            f"vision dataset: {config.out} already holds shards; give a new --out, or delete "
            "the old dataset first (a new run there would mix its frames with the old ones)"
        )
    raw_rate = _raw_render_rate(twin, cameras, config)
    frames: list[Frame] = []
    shards, rendered, started = 0, 0, time.perf_counter()
    bar = tqdm(
        total=config.frames, desc="vision frames", unit="frame", disable=not config.progress
    )
    try:
        for frame in _frames(env, policy, cameras, config):
            frames.append(frame)
            rendered += 1
            bar.update(1)
            if len(frames) == config.shard_frames or rendered == config.frames:
                _write_shard(config.out / f"shard-{shards:05d}.npz", frames)
                shards, frames = shards + 1, []
            if rendered == config.frames:
                break
    finally:
        bar.close()
        env.close()
    rate = rendered * len(cameras) / (time.perf_counter() - started)
    meta = _meta(config, cameras, shards, rendered, rate, raw_rate)
    atomic_write(config.out / "meta.json", json.dumps(meta, indent=2) + "\n")
    return meta


def _frames(env: Any, policy: Any, cameras: tuple[str, ...], config: DatasetConfig):
    """Frames from seeded episodes, every `every_steps` steps from the reset on."""
    twin = env.unwrapped.twin
    joint = twin.object_joint()
    if joint is None:
        raise ConfigError(f"task {config.task!r} has no free object to estimate")
    object_qadr = int(twin.model.jnt_qposadr[joint])
    episode = 0
    while True:
        observation, _ = env.reset(seed=config.seed + episode)
        policy.reset()
        step, done = 0, False
        while not done:
            if step % config.every_steps == 0:
                yield _render(twin, object_qadr, cameras, config, episode, step)
            observation, _, terminated, truncated, _ = env.step(policy(observation))
            done = terminated or truncated
            step += 1
        episode += 1


def _render(
    twin: Any, qadr: int, cameras: tuple[str, ...], config: DatasetConfig, episode: int, step: int
) -> Frame:
    images = np.stack([twin.render(c, config.width_px, config.height_px) for c in cameras])
    pose = twin.data.qpos[qadr : qadr + 7]
    quaternion = pose[3:] / np.linalg.norm(pose[3:])
    quaternion = quaternion if quaternion[0] >= 0 else -quaternion  # one sign per rotation
    return Frame(images, pose[:3].copy(), quaternion.copy(), episode, step)


def _raw_render_rate(twin: Any, cameras: tuple[str, ...], config: DatasetConfig) -> float:
    """Renders per second of the same cameras and size on an unchanging scene: the most
    the dataset could reach (its rate also pays for the rollouts and the shards)."""
    for camera in cameras:  # each camera's first frame sets up its scene
        twin.render(camera, config.width_px, config.height_px)
    start = time.perf_counter()
    for i in range(RAW_RATE_RENDERS):
        twin.render(cameras[i % len(cameras)], config.width_px, config.height_px)
    return RAW_RATE_RENDERS / (time.perf_counter() - start)


def _write_shard(path: Path, frames: list[Frame]) -> None:
    temporary = path.with_suffix(".partial.npz")
    np.savez_compressed(
        temporary,
        images=np.stack([f.images for f in frames]),
        position_m=np.stack([f.position_m for f in frames]).astype(np.float32),
        quaternion_wxyz=np.stack([f.quaternion_wxyz for f in frames]).astype(np.float32),
        episode=np.array([f.episode for f in frames], np.int32),
        step=np.array([f.step for f in frames], np.int32),
    )
    temporary.replace(path)


def _meta(
    config: DatasetConfig,
    cameras: tuple[str, ...],
    shards: int,
    frames: int,
    renders_per_s: float,
    raw_renders_per_s: float,
) -> dict[str, Any]:
    calibration = None if config.calibration is None else load_rig(config.calibration).sha256()
    options = {k: str(v) if isinstance(v, Path) else v for k, v in asdict(config).items()}
    return {
        "format_version": FORMAT_VERSION,
        "robot": config.robot,
        "task": config.task,
        "cameras": list(cameras),
        "width_px": config.width_px,
        "height_px": config.height_px,
        "frame": "world",
        "calibration_sha256": calibration,
        "randomization": str(config.randomization_path),
        "policy": config.policy_name,
        "seed": config.seed,
        "frames": frames,
        "shards": shards,
        "renders_per_s": round(renders_per_s, 1),
        "raw_renders_per_s": round(raw_renders_per_s, 1),
        "options": options,
    }
