"""One documented dataclass per node; parameter YAML is read and checked against them.

The nodes declare their ROS parameters from these dataclasses (ros_ws/params.py), and the
bringups validate the YAML with them before any process starts, so a typo or a wrong type
names the file and the key instead of surfacing as a crash inside a node. A node whose core
has its own config dataclass embeds it (`core_parameters`): the core's fields are the node's
parameters under their own names, documented and validated once, in the core; the node's
dataclass adds only what is the node's (rates, topics, start-up). No rclpy here: this
module is imported by the bringup's checks and by tests without a ROS runtime.

YAML follows ROS 2's format: `/**:` (every node) or `<node_name>:` (one node) or
`/<namespace>/<node_name>:`, each with a `ros__parameters:` mapping.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar

from hardware.driver_settings import DriverSettings
from hardware.teleop.config import TeleopConfig
from hardware.view.config import LiveViewConfig
from policies.card import SCRIPTED_POLICY
from ros_ws.recorder_config import RecorderNodeConfig
from sim.config_loader import load_yaml_mapping
from sim.errors import ConfigError, UnknownNameError, did_you_mean
from sim.object_estimate import ObjectEstimateConfig
from sim.robots import get_robot
from sim.tasks import TASKS

T = TypeVar("T")
# Parameters every ROS 2 node accepts; not ours to validate.
ROS_BUILTIN_PARAMETERS = {"use_sim_time", "start_type_description_service"}
FILE_KEY = "file"  # the key of a ParameterFileError about the whole file (its detail names it)
CORE = "twinbridge.core"  # metadata of a `core_field`: the core fields the node sets itself
SCALARS = (bool, int, float, str)  # what a parameter of ours holds


class ParameterFileError(ConfigError):
    """A parameter file that is missing, malformed, or has an unknown or invalid key."""

    def __init__(self, path: Path | str, key: str, detail: str):
        self.path, self.key = Path(path), key
        super().__init__(detail if key == FILE_KEY else f"{path}: {key}: {detail}")


def core_parameters(set_by_node: tuple[str, ...] = ()) -> dict[str, Any]:
    """The metadata of a node config field holding its core's config dataclass (its
    `default_factory`): the core's scalar fields, except `set_by_node` (the node computes
    them), are the node's ROS parameters, flat and under their own names (as the YAML files
    have them), validated by the core."""
    return {CORE: set_by_node}


@dataclass(frozen=True)
class TwinNodeConfig:
    """twin_node: the MuJoCo twin as the robot at the bottom of the graph."""

    task: str = "fetch-push"  # registered task name (`twinbridge tasks`)
    seed: int = 0  # episode k after start resets with seed + k (as `twinbridge rollout`)
    real_time: bool = True  # pace sim time to the wall clock; False: as fast as commands come
    lockstep_timeout_s: float = 1.0  # fast mode: longest wait for a command before holding
    wait_for_goal: bool = True  # after a reset, step only once the episode's goal arrived
    goal_timeout_s: float = 2.0  # longest goal wait (a reset from outside sends no goal)
    command_max_age_s: float = 0.5  # sim-time age beyond which a command is stale
    # ros2_control's joint_trajectory_controller parameter: a command naming only some of
    # the command joints is rejected unless this is set (then the others keep their target)
    allow_partial_joints_goal: bool = False
    cameras: str = ""  # comma-separated camera names to publish (rendering is costly)
    calibration_path: str = ""  # a rig calibration file: the twin's cameras become the rig's
    camera_rate_hz: float = 30.0
    camera_width_px: int = 200
    camera_height_px: int = 200
    video_path: str = ""  # when set, an MP4 of the task's video camera at the control rate
    diagnostics_rate_hz: float = 2.0

    def __post_init__(self) -> None:
        _known_task(self.task)
        try:
            get_robot(TASKS[self.task].robot).camera_names(self.cameras)
        except UnknownNameError as e:
            raise ValueError(str(e)) from e
        _positive(self, "lockstep_timeout_s", "command_max_age_s", "camera_rate_hz")
        _positive(self, "goal_timeout_s")
        _positive(self, "camera_width_px", "camera_height_px", "diagnostics_rate_hz")
        if self.video_path and not self.video_path.endswith(".mp4"):
            raise ValueError(f"video_path must end in .mp4, got {self.video_path!r}")


@dataclass(frozen=True)
class PolicyNodeConfig:
    """policy_node: a zoo policy on the contract topics."""

    # an .onnx (its card is the sibling .json), or "scripted" (sim.scripted, needs `task`)
    policy_path: str = "policies/zoo/fetch-push.onnx"
    robot: str = "fetch"  # the robot this node drives; the card must name the same
    task: str = ""  # "": the card's; else the card must name it
    control_rate_hz: float = 0.0  # 0: the card's rate
    stale_after_s: float = 0.0  # 0: three control periods
    # The object pose's measurement noise (standard deviation per axis) and how hard the
    # object may accelerate: the policy acts on a filtered estimate (sim/object_estimate.py);
    # 0 acts on the raw pose. The defaults are the estimate's own, which the training twin's
    # sensor randomization filters with too (sim/randomization/sensors.py)
    object_position_noise_m: float = ObjectEstimateConfig.position_noise_m
    object_acceleration_m_s2: float = ObjectEstimateConfig.acceleration_m_s2
    diagnostics_rate_hz: float = 2.0

    def __post_init__(self) -> None:
        scripted = self.policy_path == SCRIPTED_POLICY
        if not (self.policy_path.endswith(".onnx") or scripted):
            raise ValueError(
                f"policy_path must name an .onnx file or be {SCRIPTED_POLICY!r}, "
                f"got {self.policy_path!r}"
            )
        if self.task or scripted:
            _known_task(self.task)
        _non_negative(self, "control_rate_hz", "stale_after_s", "object_position_noise_m")
        _positive(self, "diagnostics_rate_hz", "object_acceleration_m_s2")

    @property
    def object_estimate(self) -> ObjectEstimateConfig:
        return ObjectEstimateConfig(
            position_noise_m=self.object_position_noise_m,
            acceleration_m_s2=self.object_acceleration_m_s2,
        )


@dataclass(frozen=True)
class TaskNodeConfig:
    """task_node: episodes, goals and success judged as the env does."""

    task: str = "fetch-push"
    episodes: int = 10  # 0: run until stopped
    episode_seconds: float = 0.0  # episode length (e-stop time excluded); 0: the task's
    reset_timeout_s: float = 10.0  # longest wait for the robot's reset service
    # Readers of `diagnostics` to wait for (up to reset_timeout_s) before the first episode:
    # a report reaches only readers discovered when it is sent. Set by bringups (observer).
    report_readers: int = 0
    diagnostics_rate_hz: float = 2.0

    def __post_init__(self) -> None:
        _known_task(self.task)
        _non_negative(self, "episodes", "report_readers", "episode_seconds")
        _positive(self, "reset_timeout_s", "diagnostics_rate_hz")


TELEOP_DEVICES = ("keyboard", "gamepad", "scripted")


@dataclass(frozen=True)
class TeleopNodeConfig:
    """teleop_node: a human (keyboard, gamepad) or scripted operator on the contract topics.

    Its commands take exactly a policy's path: the same controller (IK, actuator ranges),
    the same `joint_command` topic, the same safety layer in the robot node below."""

    task: str = "fetch-pick-and-place"
    device: str = "scripted"  # keyboard | gamepad | scripted
    robot: str = "fetch"  # the robot this node drives; must be the task's
    control_rate_hz: float = 0.0  # 0: the task's rate (the operator acts at this rate)
    stale_after_s: float = 0.0  # 0: three control periods
    diagnostics_rate_hz: float = 2.0
    # The operator's settings (hardware/teleop/config.py): max_speed_m_s, gamepad_index,
    # deadzone, key timing, hand_start_preset, show_help.
    teleop: TeleopConfig = field(
        default_factory=TeleopConfig, metadata=core_parameters(set_by_node=("control_rate_hz",))
    )

    def __post_init__(self) -> None:
        _known_task(self.task)
        if self.device not in TELEOP_DEVICES:
            raise ValueError(f"device {self.device!r} is not one of {TELEOP_DEVICES}")
        _non_negative(self, "control_rate_hz", "stale_after_s")
        _positive(self, "diagnostics_rate_hz")


@dataclass(frozen=True)
class DriverNodeConfig:
    """driver_node: a robot's hardware backend on the topic contract. The driver's settings
    (hardware/driver_settings.py: robot, backend, port, rates, timeouts, limits, safe state)
    are its parameters too; these are the node's own."""

    driver: DriverSettings = field(default_factory=DriverSettings, metadata=core_parameters())
    bridge_state_topic: str = ""  # bridge: the vendor stack's JointState topic
    bridge_command_topic: str = ""  # bridge: the vendor stack's JointTrajectory topic
    autostart: bool = True  # configure + activate at start (no lifecycle manager needed)
    diagnostics_rate_hz: float = 2.0

    def __post_init__(self) -> None:
        _positive(self, "diagnostics_rate_hz")


@dataclass(frozen=True)
class ViewNodeConfig:
    """view_node: the live web view (hardware/view/) of a robot namespace's contract topics.
    Its parameters are the view's own (hardware/view/config.py: task, web_port,
    render rate and size, cameras)."""

    view: LiveViewConfig = field(default_factory=LiveViewConfig, metadata=core_parameters())
    diagnostics_rate_hz: float = 2.0

    def __post_init__(self) -> None:
        _positive(self, "diagnostics_rate_hz")


@dataclass(frozen=True)
class CameraDriverNodeConfig:
    """camera_driver_node: the emulated rig's cameras, streamed the way a ROS camera driver
    streams a real rig's (hardware/camera_rig.py). It renders the emulator's world from the
    positions the emulator writes to `state_feed`, through the true cameras of the
    emulator's configuration (`emulator_config`'s `cameras:`), and publishes
    camera_<n>/image_raw and camera_<n>/camera_info, n in the order of `cameras` (default:
    the robot's rig cameras). camera_info comes from `calibration_path` (a rig calibration
    file) when given; otherwise it is uncalibrated (size only, K all zeros), as a driver
    without a calibration publishes it."""

    robot: str = "fetch"
    task: str = ""  # the emulator's task (its world's model); default: the robot's
    scene: str = ""  # the emulator's scene when it was given one (`--scene`)
    state_feed: str = ""  # the file `twinbridge emulate --camera-feed` writes
    emulator_config: str = ""  # the emulator's YAML; its `cameras:` are the rig's truth
    cameras: str = ""  # comma-separated camera names (default: the robot's rig_cameras)
    calibration_path: str = ""  # a rig calibration file (twinbridge calibrate cameras)
    diagnostics_rate_hz: float = 2.0

    def __post_init__(self) -> None:
        get_robot(self.robot)
        if self.task:
            _known_task(self.task)
        if not self.state_feed:
            raise ValueError("state_feed must name the emulator's --camera-feed file")
        _positive(self, "diagnostics_rate_hz")


NODE_CONFIGS: dict[str, type] = {
    "driver_node": DriverNodeConfig,
    "twin_node": TwinNodeConfig,
    "policy_node": PolicyNodeConfig,
    "task_node": TaskNodeConfig,
    "teleop_node": TeleopNodeConfig,
    "recorder_node": RecorderNodeConfig,
    "view_node": ViewNodeConfig,
    "camera_driver_node": CameraDriverNodeConfig,
}


def resolve_data_path(path: str) -> Path:
    """A relative data path (e.g. a zoo policy) from the working directory if it is there,
    else from the installed package's root, so YAML works from a checkout and an install."""
    candidate = Path(path)
    if candidate.is_absolute() or candidate.exists():
        return candidate
    return Path(__file__).resolve().parent.parent / candidate


def load_node_parameters(path: Path | str, node: str, namespace: str = "") -> dict[str, Any]:
    """The parameters a ROS 2 node named `node` in `namespace` gets from a YAML file.

    Sections apply in ROS 2's order of precedence: `/**`, then `node`, then `/ns/node`.
    """
    path = Path(path)
    data = _read_yaml(path)
    _check_sections(data, path)
    merged: dict[str, Any] = {}
    for section in ("/**", node, f"/{node}", f"{namespace}/{node}".replace("//", "/")):
        if section in data:
            merged.update(_ros_parameters(data[section], path, section))
    return merged


def parameter_defaults(cls: type) -> dict[str, Any]:
    """Every ROS parameter of node config `cls`, with its default value."""
    return {name: f.default for name, (_, f) in _parameters(cls).items()}


def node_config(cls: type[T], parameters: dict[str, Any], source: Path | str) -> T:
    """`cls` built from flat parameters; an unknown key, a wrong type or a value out of
    range names the file and the key."""
    known = _parameters(cls)
    split: dict[str, dict[str, Any]] = {"": {}}
    for key, value in parameters.items():
        if key in ROS_BUILTIN_PARAMETERS:
            continue
        if key not in known:
            raise _unknown_parameter(source, key, cls.__name__, known)
        holder, declared = known[key]
        split.setdefault(holder, {})[key] = _typed(declared, value, source)
    values = split[""]
    for outer in fields(cls):  # type: ignore[arg-type]
        if CORE in outer.metadata:
            values[outer.name] = _built(outer.default_factory, split.get(outer.name, {}), source)
    return _built(cls, values, source)


def _parameters(cls: type) -> dict[str, tuple[str, dataclasses.Field]]:
    """name -> (the core field holding it, "" for the node's own; its dataclass Field)."""
    found: dict[str, tuple[str, dataclasses.Field]] = {}
    for outer in fields(cls):
        if CORE in outer.metadata:
            core: Any = outer.default_factory
            inner = [
                (outer.name, f)
                for f in fields(core)
                if f.name not in outer.metadata[CORE] and isinstance(f.default, SCALARS)
            ]
        else:
            inner = [("", outer)]
        for holder, declared in inner:
            if declared.name in found:
                raise TypeError(f"{cls.__name__}: parameter {declared.name!r} declared twice")
            found[declared.name] = (holder, declared)
    return found


def _built(cls: Any, values: dict[str, Any], source: Path | str) -> Any:
    try:
        return cls(**values)
    except ValueError as e:
        scalars = [k for k, v in values.items() if isinstance(v, SCALARS)]
        key = _key_in(str(e), scalars)
        detail = f"{source}: {e}" if key == FILE_KEY else str(e)  # a FILE_KEY detail names it
        raise ParameterFileError(source, key, detail) from e


def _typed(field: dataclasses.Field, value: Any, source: Path | str) -> Any:
    expected = type(field.default)
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
        raise ParameterFileError(source, field.name, f"must be {expected.__name__}, got {value!r}")
    return value


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        return load_yaml_mapping(path, "parameter file")
    except ConfigError as e:
        raise ParameterFileError(path, FILE_KEY, str(e)) from e


def _check_sections(data: dict[str, Any], path: Path) -> None:
    """Every top-level key is a node's section (`/**`, `node`, `/node`, `/ns/node`) and
    holds only that node's parameters: ROS would silently ignore a misspelled section or
    a section's unknown key (a node reads only its own)."""
    for section, body in data.items():
        node = str(section).rsplit("/", 1)[-1]
        if section == "/**":
            known: Any = set().union(*(_parameters(cls) for cls in NODE_CONFIGS.values()))
        elif node in NODE_CONFIGS:
            known = _parameters(NODE_CONFIGS[node])
        else:
            raise ParameterFileError(
                path, str(section), f"not a node section; {did_you_mean(node, NODE_CONFIGS)}"
                f"valid sections: /**, {', '.join(NODE_CONFIGS)} (or /<namespace>/<node>)",
            )  # fmt: skip
        for key in _ros_parameters(body, path, str(section)):
            if key not in known and key not in ROS_BUILTIN_PARAMETERS:
                raise _unknown_parameter(path, key, f"section {section}", known)


def _unknown_parameter(source: Path | str, key: str, owner: str, known: Any) -> ParameterFileError:
    return ParameterFileError(
        source, key, f"unknown parameter of {owner}; {did_you_mean(key, known)}"
        f"valid: {', '.join(sorted(known))}",
    )  # fmt: skip


def _ros_parameters(section: Any, path: Path, name: str) -> dict[str, Any]:
    if not isinstance(section, dict) or not isinstance(section.get("ros__parameters"), dict):
        raise ParameterFileError(path, name, "needs a 'ros__parameters:' mapping")
    return dict(section["ros__parameters"])


def _key_in(message: str, keys: list[str]) -> str:
    """The key a validation message is about: the first one it names."""
    found = {
        m.start(): key for key in keys for m in re.finditer(rf"\b{re.escape(key)}\b", message)
    }
    return found[min(found)] if found else FILE_KEY


def _known_task(task: str) -> None:
    if task not in TASKS:
        raise ValueError(f"task {task!r} is not registered; valid: {sorted(TASKS)}")


def _positive(config: Any, *names: str) -> None:
    for name in names:
        value = getattr(config, name)
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be > 0, got {value!r}")


def _non_negative(config: Any, *names: str) -> None:
    for name in names:
        value = getattr(config, name)
        if not (math.isfinite(value) and value >= 0):
            raise ValueError(f"{name} must be >= 0, got {value!r}")
