"""Demonstration datasets on disk: one format, written and read only here (numpy, no torch).

Run: `python -c "from hardware.recording.dataset import load_dataset as l; print(l('DIR'))"`

Teleoperated episodes exported from bags (`twinbridge bag export FILE.mcap --out DIR`) or
generated in-process (`bench/demonstrations.py --generate-demos N --out DIR`) are stored
in this layout, and the HER learner reads them for learning from demonstrations (Nair et
al. 2018, `policies.training.her.demonstrations`). The robot-side exporter imports this module,
so it imports numpy only, and nothing here unpickles.

Layout of a dataset directory `DIR`:

- `DIR/meta.json` (written last, atomically: a directory without it is not a dataset)::

    {"format": "twinbridge-demonstrations", "version": 1,
     "robot": "fetch", "task": "fetch-pick-and-place", "control_rate_hz": 25.0,
     "source": "<where the episodes came from, e.g. the bag path>",
     "episodes": [{"index": 0, "file": "episode_000000.npz", "steps": 50,
                   "success": true, "seed": 12,
                   "episode": 3, "segment": 0, "first_step": 0}, ...]}

  `index` numbers the files; `episode`, `segment` and `first_step` (exports of a recording)
  say where a file's steps come from: the recording's episode index, which run of that
  episode's operator steps (an export splits an episode where a step is not the
  operator's: e-stop or no command), and the step of the recorded episode its first row
  is. `seed` and `success` are the recorded episode's, for each of its files.

- `DIR/episode_000000.npz` (`np.savez`, loaded with `allow_pickle=False`), for an episode
  of T control steps:

  ================== =============== =======================================================
  key                shape, dtype    meaning
  ================== =============== =======================================================
  observation        (T+1, obs_dim)  the env's flat observation vector at each state
  achieved_goal      (T+1, goal_dim) the task's achieved goal at each state
  desired_goal       (T+1, goal_dim) the episode's goal at each state
  action             (T, action_dim) env action in [-1, 1] the operator commanded
  stamp_ns           (T+1,) int64    stamps of the measured states, nanoseconds
  joint_position     (T+1, n_joints) measured joint positions (rad or m)
  joint_velocity     (T+1, n_joints) measured joint velocities (rad/s or m/s)
  command            (T, n_commands) joint targets commanded
  command_applied    (T, n_commands) joint targets applied after safety clamping
  success            () bool         the (recorded) episode ended in success
  seed               () int64        the env reset seed, -1 if unknown
  episode            () int64        optional: the recording's episode index
  segment            () int64        optional: the run of that episode's operator steps
  first_step         () int64        optional: the recorded step of the first row
  ================== =============== =======================================================

Only `observation`, `achieved_goal`, `desired_goal` and `action` are required to load;
`success` and `seed` default to the meta entry. Other keys, in episodes or in the meta
(e.g. `joint_names`), are written and kept as given. Episodes may differ in length T. The
loader checks the format, version, robot, task and control rate, each episode's keys,
shapes and values, and refuses a dataset without successful episodes; every error names the
file and what is wrong. A loaded dataset's identity is the sha256 of meta.json and every
episode file (training checkpoints record it). The learner uses successful episodes only.
"""

from __future__ import annotations

import hashlib
import json
import math
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hardware.recording.errors import RecordingError
from sim.files import atomic_open, atomic_write

FORMAT = "twinbridge-demonstrations"
VERSION = 1
META_FILE = "meta.json"
REQUIRED = ("observation", "achieved_goal", "desired_goal", "action")
# T+1 rows (one per measured state), and T rows (one per control step):
STATE_KEYS = ("observation", "achieved_goal", "desired_goal", "stamp_ns", "joint_position",
              "joint_velocity")  # fmt: skip
STEP_KEYS = ("action", "command", "command_applied")
ORIGIN_KEYS = ("episode", "segment", "first_step")  # optional scalars, copied to the meta
_META_KEYS = ("robot", "task", "control_rate_hz", "source")


class DemonstrationError(RecordingError, ValueError):
    """A demonstration dataset that must not be used; `path` is the file at fault."""

    def __init__(self, path: Path | str, detail: str):
        self.path, self.detail = Path(path), detail
        super().__init__(f"{path}: {detail}")


@dataclass
class Demonstrations:
    """A loaded dataset: its meta, its episodes (dicts of arrays), and its identity."""

    directory: Path
    meta: dict[str, Any]
    episodes: list[dict[str, np.ndarray]]
    sha256: str  # of meta.json and every episode file, in meta order
    dims: dict[str, int] = field(default_factory=dict)  # obs, goal, action

    @property
    def successful(self) -> list[dict[str, np.ndarray]]:
        """The episodes that ended in success."""
        return [e for e in self.episodes if bool(e["success"])]

    def __repr__(self) -> str:
        steps = sum(len(e["action"]) for e in self.episodes)
        return (f"Demonstrations({str(self.directory)!r}, task={self.meta['task']!r}, "
                f"episodes={len(self.episodes)}, successful={len(self.successful)}, "
                f"steps={steps})")  # fmt: skip


# -- writing ------------------------------------------------------------------------------
def write_dataset(
    out_dir: Path | str, episodes: Iterable[Mapping[str, Any]], meta: Mapping[str, Any]
) -> Path:
    """Write `episodes` (mappings of the keys above) and `meta.json` into `out_dir`.

    `meta` gives robot, task, control_rate_hz and source (any extra keys are kept). Each
    episode is checked like the loader would, written as it comes (so an exporter can
    stream), and `meta.json` last. Refuses a directory that already holds a dataset.
    Returns the path of `meta.json`.
    """
    out = Path(out_dir)
    missing = [k for k in _META_KEYS if k not in meta]
    if missing:
        raise DemonstrationError(out / META_FILE, f"meta is missing {missing}")
    if (out / META_FILE).exists():
        raise DemonstrationError(out / META_FILE, "already exists; write to a new directory")
    out.mkdir(parents=True, exist_ok=True)
    entries = [_write_episode(out, i, episode) for i, episode in enumerate(episodes)]
    if not entries:
        raise DemonstrationError(out, "no episodes to write")
    document = {"format": FORMAT, "version": VERSION, **dict(meta), "episodes": entries}
    atomic_write(out / META_FILE, (json.dumps(document, indent=2) + "\n").encode())
    return out / META_FILE


def _write_episode(out: Path, index: int, episode: Mapping[str, Any]) -> dict[str, Any]:
    name = f"episode_{index:06d}.npz"
    arrays = {k: np.asarray(v) for k, v in episode.items()}
    arrays.setdefault("success", np.asarray(False))
    arrays.setdefault("seed", np.asarray(-1))
    arrays["success"] = np.asarray(bool(arrays["success"]))
    arrays["seed"] = np.asarray(int(arrays["seed"]), dtype=np.int64)
    if "stamp_ns" in arrays:
        arrays["stamp_ns"] = arrays["stamp_ns"].astype(np.int64)
    for key in ORIGIN_KEYS:
        if key in arrays:
            arrays[key] = np.asarray(int(arrays[key]), dtype=np.int64)
    steps = _check_episode(out / name, arrays)
    with atomic_open(out / name) as f:
        np.savez(f, **arrays)  # type: ignore[arg-type]
    origin = {key: int(arrays[key]) for key in ORIGIN_KEYS if key in arrays}
    return {"index": index, "file": name, "steps": steps,
            "success": bool(arrays["success"]), "seed": int(arrays["seed"]), **origin}  # fmt: skip


# -- reading ------------------------------------------------------------------------------
def load_dataset(
    directory: Path | str,
    *,
    task: str | None = None,
    robot: str | None = None,
    dims: Mapping[str, int] | None = None,
    control_rate_hz: float | None = None,
    require_success: bool = True,
) -> Demonstrations:
    """Read and validate the dataset in `directory`.

    `task`/`robot` (if given) must match the meta, `control_rate_hz` (if given) too, within
    1 %; `dims` (obs, goal, action sizes, if given) must match every episode. With
    `require_success` a dataset without a successful episode is refused. Errors are
    `DemonstrationError`s naming the file.
    """
    root = Path(directory)
    meta_path = root / META_FILE
    if not root.is_dir():
        raise DemonstrationError(root, "demonstration directory does not exist")
    raw = _read(meta_path, "meta.json missing: not a demonstration dataset (or unfinished)")
    meta = _parse_meta(meta_path, raw, task, robot)
    rate = float(meta["control_rate_hz"])
    if control_rate_hz is not None and not math.isclose(rate, control_rate_hz, rel_tol=0.01):
        raise DemonstrationError(
            meta_path, f"field 'control_rate_hz' is {rate:g}, but the env runs at "
            f"{control_rate_hz:g} Hz: actions would mean other displacements per step"
        )  # fmt: skip
    digest = hashlib.sha256(raw)
    episodes = []
    for entry in meta["episodes"]:
        path = root / str(entry["file"])
        blob = _read(path, f"episode {entry['index']} listed in {META_FILE} is missing")
        digest.update(blob)
        episodes.append(_load_episode(path, entry))
    found = _check_dims(root, meta["episodes"], episodes, dims)
    if require_success and not any(bool(e["success"]) for e in episodes):
        raise DemonstrationError(meta_path, f"none of the {len(episodes)} episodes succeeded")
    return Demonstrations(root, meta, episodes, digest.hexdigest(), found)


def _read(path: Path, missing: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError as e:
        raise DemonstrationError(path, missing) from e
    except OSError as e:
        raise DemonstrationError(path, f"cannot read: {e}") from e


def _parse_meta(path: Path, raw: bytes, task: str | None, robot: str | None) -> dict[str, Any]:
    try:
        meta = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DemonstrationError(path, f"not valid JSON (truncated?): {e}") from e
    if not isinstance(meta, dict):
        raise DemonstrationError(path, "expected a JSON object")
    if meta.get("format") != FORMAT:
        raise DemonstrationError(path, f"field 'format' is {meta.get('format')!r}, not {FORMAT!r}")
    if meta.get("version") != VERSION:
        raise DemonstrationError(
            path, f"field 'version' is {meta.get('version')!r}; this code reads version {VERSION}"
        )
    for key in (*_META_KEYS, "episodes"):
        if key not in meta:
            raise DemonstrationError(path, f"missing field {key!r}")
    for key, wanted in (("robot", robot), ("task", task)):
        if wanted is not None and meta[key] != wanted:
            raise DemonstrationError(
                path, f"field {key!r} is {meta[key]!r}, but {wanted!r} was asked for: these "
                f"demonstrations are of another {key}; record or export {wanted} demonstrations"
            )  # fmt: skip
    _check_entries(path, meta["episodes"])
    return meta


def _check_entries(path: Path, entries: Any) -> None:
    if not isinstance(entries, list) or not entries:
        raise DemonstrationError(path, "field 'episodes' must be a non-empty list")
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or not {"index", "file", "steps"} <= set(entry):
            raise DemonstrationError(path, f"episodes[{i}] needs index, file and steps")
        name = str(entry["file"])
        if Path(name).name != name or not name.endswith(".npz"):
            raise DemonstrationError(path, f"episodes[{i}].file {name!r}: not a .npz file name")


def _load_episode(path: Path, entry: Mapping[str, Any]) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise DemonstrationError(path, f"not a readable .npz without pickles: {e}") from e
    arrays.setdefault("success", np.asarray(bool(entry.get("success", False))))
    arrays.setdefault("seed", np.asarray(int(entry.get("seed", -1)), dtype=np.int64))
    steps = _check_episode(path, arrays)
    if steps != entry["steps"]:
        raise DemonstrationError(
            path, f"holds {steps} steps but {META_FILE} lists {entry['steps']}"
        )
    return arrays


def _check_episode(path: Path, arrays: Mapping[str, np.ndarray]) -> int:
    """Required keys present, T+1 / T rows, finite values, actions in [-1, 1]; returns T."""
    missing = [k for k in REQUIRED if k not in arrays]
    if missing:
        raise DemonstrationError(path, f"missing key(s) {missing}; required: {list(REQUIRED)}")
    steps = int(np.shape(arrays["action"])[0]) if np.ndim(arrays["action"]) == 2 else -1
    if steps < 1:
        raise DemonstrationError(
            path, f"action must be (T, action_dim) with T >= 1, got {np.shape(arrays['action'])}"
        )
    for key in (*STATE_KEYS, *STEP_KEYS):
        if key in arrays:
            _check_rows(path, key, arrays[key], steps + (key in STATE_KEYS))
    goal_shapes = {np.shape(arrays[k])[1] for k in ("achieved_goal", "desired_goal")}
    if len(goal_shapes) != 1:
        raise DemonstrationError(path, f"achieved_goal and desired_goal widths differ: "
                                       f"{sorted(goal_shapes)}")  # fmt: skip
    action = arrays["action"]
    if np.any(np.abs(action) > 1.0 + 1e-6):
        raise DemonstrationError(
            path, f"action outside [-1, 1] (max |a| = {float(np.max(np.abs(action))):.3g}): "
            "store env actions, not joint targets"
        )  # fmt: skip
    for key in ("success", "seed", *ORIGIN_KEYS):
        if key in arrays and np.shape(arrays[key]) != ():
            raise DemonstrationError(path, f"{key} must be a scalar, got shape "
                                           f"{np.shape(arrays[key])}")  # fmt: skip
    return steps


def _check_rows(path: Path, key: str, value: np.ndarray, rows: int) -> None:
    ndim = 1 if key == "stamp_ns" else 2
    if np.ndim(value) != ndim or np.shape(value)[0] != rows:
        expected = f"({rows},)" if ndim == 1 else f"({rows}, n)"
        raise DemonstrationError(path, f"{key} has shape {np.shape(value)}, expected {expected} "
                                       "(T+1 rows per state, T per action)")  # fmt: skip
    if value.dtype.kind not in "fiub":
        raise DemonstrationError(path, f"{key} has dtype {value.dtype}, expected numbers")
    if value.dtype.kind == "f" and not np.all(np.isfinite(value)):
        raise DemonstrationError(path, f"{key} holds non-finite values")


def _check_dims(
    root: Path,
    entries: list[dict[str, Any]],
    episodes: list[dict[str, np.ndarray]],
    wanted: Mapping[str, int] | None,
) -> dict[str, int]:
    """The same obs/goal/action widths in every episode (and as `wanted`, if given)."""
    keys = {"obs": "observation", "goal": "achieved_goal", "action": "action"}
    found: dict[str, int] = {}
    for episode, entry in zip(episodes, entries, strict=True):
        for dim, key in keys.items():
            width = int(episode[key].shape[1])
            expected = (wanted or {}).get(dim, found.get(dim, width))
            if width != expected:
                raise DemonstrationError(
                    root / str(entry["file"]), f"{key} width {width} does not match "
                    f"{expected} ({'the env' if wanted else 'episode 0'}): shape mismatch"
                )  # fmt: skip
            found[dim] = width
    return found
