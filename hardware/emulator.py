"""The emulated Twinbridge serial device: a task's MuJoCo twin behind the serial protocol.

Run: `twinbridge emulate --robot fetch` (hardware/emulator_cli.py puts this core on a pty), or
`python -c "from hardware.emulator import Emulator; e = Emulator('fetch'); e.tick(0.002); print(e.status)"`

`Emulator` does no I/O and reads no clock: `receive(data, now_s)` feeds it bytes, `tick(now_s)`
advances the physics by one model timestep (2 ms), `pending_output(now_s)` gives the bytes
due by then. A test drives it in virtual time; the CLI drives it in real time. It follows
the device behaviour of hardware/PROTOCOL.md section 6 (the firmware contract):

- Power-up disabled. Disabled means torque off: an arm's brakes hold ("brake", emulated by
  holding the servo target where the joint was), a hand goes limp ("limp": the actuator's
  gains are zeroed, so it exerts exactly no force); robot.yaml's `safe_state` chooses.
  EStop while disabled latches and leaves the torque off; Heartbeat gets no Ack (only
  Enable, EStop, ResetFault and SceneReset do).
- Commands are validated on the device (count, finite, within limits, at most
  velocity_max * watchdog_ms from the previous target or, when HOLDING, the measured
  position; 1e-6 of slack for float32 rounding). Invalid ones never change the target.
- The watchdog runs before every physics step: no valid Command for watchdog_ms while
  enabled -> HOLDING at the measured position, one Fault(WATCHDOG).
- Holds (watchdog, e-stop, enable, reset) act at once and cancel accepted targets still in
  the command-latency pipeline; only accepted targets are delayed.
- A State every state_period_ms, then an ObjectPose (the object's free joint, in the twin's
  world frame, like the sim backend) when the task has an object.

The emulated robot differs from its twin by `Deviations` and suffers `FaultConfig` faults
(hardware/faults.py). Everything it decides is appended to `log` (and to a JSONL file,
flushed per line). One seeded generator draws all noise and faults: same seed, same input
at the same times -> the same log.

R1: see hardware/RELIABILITY.md.
"""  # noqa: E501

from __future__ import annotations

import json
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, cast

import mujoco
import numpy as np

from hardware.camera_rig import RigCameraConfig
from hardware.faults import (
    Deviations,
    Disconnect,
    FaultConfig,
    LinkInjector,
    SensorOffset,
    StuckJoint,
    WeakServo,
)
from hardware.protocol import (
    NO_JOINT,
    Ack,
    AckResult,
    Command,
    DeviceInfo,
    Enable,
    EStop,
    Fault,
    FaultCode,
    Frame,
    FrameParser,
    Heartbeat,
    Hello,
    Message,
    ObjectPose,
    ResetFault,
    SceneReset,
    State,
    Status,
    encode_frame,
)
from hardware.robots import robot_tables
from sim.actuation import ramp_step
from sim.config_loader import config_from_mapping, load_yaml_mapping
from sim.errors import ConfigError, PhysicsError
from sim.robot_io import RobotIO
from sim.tasks import get_task_spec
from sim.twin_loop import TwinLoop

DISABLED_MODES = {"hold": "brake", "torque_off": "limp"}  # robot.yaml safe_state -> mode
# D16.4's allowance, in standard deviations of the position noise, for the first Command
# after the device set its target from a measurement the host sees only through a noisy State
MEASUREMENT_MARGIN_STD = 4.0
# ... and the distance a coasting joint covers in this many state periods at its velocity
MEASUREMENT_AGE_PERIODS = 2.0
FLOAT32_SLACK = 1e-6  # tolerance of the jump check: both ends went through float32


@dataclass(frozen=True)
class EmulatorConfig:
    """One emulated device: its task (default: the robot's `emulator_task`), the scene its
    world uses (default: the task's; `calibration` carries the ChArUco board on the Fetch
    gripper), how it deviates from the twin, its cameras (hardware/camera_rig.py), the
    faults it injects, and its log (`log_path`: JSONL, or None)."""

    task: str | None = None
    scene: str | None = None
    deviations: Deviations = field(default_factory=Deviations)
    cameras: RigCameraConfig = field(default_factory=RigCameraConfig)
    faults: FaultConfig = field(default_factory=FaultConfig)
    log_path: str | None = None
    max_log_entries: int = 1_000_000  # in memory; the JSONL file keeps everything
    counters_period_s: float = 10.0  # a "counters" log entry this often (device time)
    # A partial frame older than this (plus its transfer time, at most a Command's) is
    # dropped: short, so that a false header holds the Commands behind it back for less than
    # the 30 ms watchdog (PROTOCOL.md R4: 10 ms + 0.4 ms, after a Command <= 10 ms old).
    frame_timeout_s: float = 0.01

    def __post_init__(self) -> None:
        if self.task is not None:
            get_task_spec(self.task)
        if self.max_log_entries < 1 or not self.frame_timeout_s > 0:
            raise ConfigError("EmulatorConfig: max_log_entries >= 1 and frame_timeout_s > 0")
        if not self.counters_period_s > 0:
            raise ConfigError(
                f"EmulatorConfig.counters_period_s={self.counters_period_s} must be > 0"
            )

    @classmethod
    def from_mapping(cls, data: Any, where: str = "emulator config") -> EmulatorConfig:
        """From YAML keys `task`, `deviations` (none | default | mapping), `faults`, ..."""
        values = dict(data) if isinstance(data, Mapping) else data
        if isinstance(values, dict) and "deviations" in values:
            values["deviations"] = Deviations.from_mapping(values["deviations"])
        if isinstance(values, dict) and "cameras" in values:
            values["cameras"] = RigCameraConfig.from_mapping(values["cameras"])
        return config_from_mapping(cls, values, where)

    @classmethod
    def from_yaml(cls, path: str | Path) -> EmulatorConfig:
        return cls.from_mapping(load_yaml_mapping(path, "emulator config"), str(path))


class DeviceLog:
    """What the device did, as dicts `{"t_us", "event", ...}`; optionally also JSONL."""

    def __init__(self, path: str | None = None, max_entries: int = 1_000_000):
        self.entries: deque[dict[str, Any]] = deque(maxlen=max_entries)
        self._file = open(path, "w", encoding="utf-8") if path else None  # noqa: SIM115

    def write(self, t_us: int, event: str, **details: Any) -> None:
        entry = {"t_us": t_us, "event": event, **details}
        self.entries.append(entry)
        if self._file is not None:
            self._file.write(json.dumps(entry) + "\n")
            self._file.flush()

    def events(self, event: str) -> list[dict[str, Any]]:
        return [e for e in self.entries if e["event"] == event]

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


@dataclass(frozen=True)
class ChannelLimits:
    """What the device checks a Command against, as announced (float32) in DeviceInfo."""

    names: tuple[str, ...]
    low: np.ndarray
    high: np.ndarray
    max_step: np.ndarray  # velocity_max * watchdog period

    @classmethod
    def of(cls, info: DeviceInfo) -> ChannelLimits:
        def wire(values: list[float]) -> np.ndarray:
            return np.asarray(values, dtype=np.float32).astype(np.float64)

        channels = info.commands
        step = wire([c.velocity_max for c in channels]) * info.watchdog_ms * 1e-3
        low, high = (
            wire([c.position_min for c in channels]),
            wire([c.position_max for c in channels]),
        )
        return cls(info.command_names, low, high, step)

    def refusal(
        self, positions: np.ndarray, reference: np.ndarray, margin: float | np.ndarray = 0.0
    ) -> tuple[str, int, str] | None:
        """(reason, channel index or NO_JOINT, message of <= 64 B) of an invalid Command, or
        None. `reference` is what the jump is measured from, `margin` what it may add, per
        channel or for all (the measurement's noise and age, when the reference is a
        measurement: D16.4)."""
        if len(positions) != len(self.names):
            return "count", NO_JOINT, f"{len(positions)} targets, expected {len(self.names)}"
        jump = np.abs(positions - reference)
        allowed = self.max_step + margin
        checks = (
            ("non_finite", ~np.isfinite(positions)),
            ("out_of_limit", (positions < self.low) | (positions > self.high)),
            ("too_far", jump > allowed + FLOAT32_SLACK),
        )
        for reason, bad in checks:
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                text = self._message(reason, i, positions[i], jump[i], allowed[i])
                return reason, i, text[:64]
        return None

    def _message(self, reason: str, i: int, value: float, jump: float, allowed: float) -> str:
        name = self.names[i]
        if reason == "too_far":
            return f"{name}: jump {jump:.4g} > {allowed:.4g}"
        if reason == "out_of_limit":
            return f"{name}: {value:.4g} not in [{self.low[i]:.4g}, {self.high[i]:.4g}]"
        return f"{name}: {value} is not finite"


def apply_deviations(model: mujoco.MjModel, io: RobotIO, deviations: Deviations) -> None:
    """Make the model "a different robot" (see `Deviations`), through named model fields."""
    body = object_body(model)
    if body is not None:
        view = model.body(body)
        view.mass[:] *= deviations.object_mass_scale
        view.inertia[:] *= deviations.object_mass_scale
        geoms = np.flatnonzero(model.geom_bodyid == view.id)
        model.geom_friction[geoms, 0] *= deviations.object_friction_scale
        model.geom_priority[geoms] = int(model.geom_priority.max()) + 1
    for actuator in io.actuator_ids:
        if _is_position_servo(model, int(actuator)):
            model.actuator_gainprm[actuator, 0] *= deviations.actuator_kp_scale
            model.actuator_biasprm[actuator, 1] *= deviations.actuator_kp_scale
    model.dof_damping[io.qvel_indices] *= deviations.joint_damping_scale


def _is_position_servo(model: mujoco.MjModel, actuator: int) -> bool:
    fixed = model.actuator_gaintype[actuator] == mujoco.mjtGain.mjGAIN_FIXED
    affine = model.actuator_biastype[actuator] == mujoco.mjtBias.mjBIAS_AFFINE
    kp = model.actuator_gainprm[actuator, 0]
    return bool(fixed and affine and kp > 0 and model.actuator_biasprm[actuator, 1] == -kp)


def object_body(model: mujoco.MjModel) -> str | None:
    """Name of the body on the model's free joint (the manipulated object), if any."""
    free = np.flatnonzero(model.jnt_type == mujoco.mjtJoint.mjJNT_FREE)
    return model.body(int(model.jnt_bodyid[free[0]])).name if free.size else None


def actuated_joints(model: mujoco.MjModel, actuator: int) -> list[int]:
    """Joint ids an actuator moves: its joint, or the joints its tendon wraps."""
    kind, target = model.actuator_trntype[actuator], int(model.actuator_trnid[actuator, 0])
    if kind == mujoco.mjtTrn.mjTRN_JOINT:
        return [target]
    if kind == mujoco.mjtTrn.mjTRN_TENDON:
        start, count = model.tendon_adr[target], model.tendon_num[target]
        wraps = range(start, start + count)
        return [int(model.wrap_objid[w]) for w in wraps if model.wrap_type[w] == 1]
    return []


# PROTOCOL.md D20: a servo further than this from its setpoint (rad; m for a linear channel)
# for TRACKING_MS without a break is seized, broken or blocked far from its target: FAULT.
# Saturation alone (a contact, a grasp: its effort at effort_max) is not a fault.
TRACKING_LIMIT_RAD, TRACKING_LIMIT_M, TRACKING_MS = 0.3, 0.03, 500

# The brakes stop a joint at twice the robot's acceleration limit (a_stop): within
# v / a_stop of the hold, as R1 asks.
BRAKE_DECEL_FACTOR = 2.0


class Plant:
    """The emulated robot's physics: the twin (deviations applied) stepped one timestep at a
    time, with per-servo power, seized joints and encoder offsets.

    Servo positions are the actuators' lengths (what each servo's encoder reads, plus its
    offset); goals and setpoints are in the same encoder frame. Like servo firmware, each
    servo's setpoint moves to its goal at most `speed_max` (the announced velocity_max) per
    second, so a valid Command never moves a joint faster than its limit (PROTOCOL.md D19);
    a hold stops the setpoint where the servo is, at once.
    """

    def __init__(
        self,
        loop: TwinLoop,
        deviations: Deviations,
        speed_max: np.ndarray,
        brake_decel: float = 50.0,
    ):
        self.loop, self.model, self.data = loop, loop.twin.model, loop.twin.data
        self.io = loop.io
        self.actuators = loop.io.actuator_ids
        apply_deviations(self.model, self.io, deviations)
        self.timestep_s = float(self.model.opt.timestep)
        self._max_step = np.asarray(speed_max, dtype=np.float64) * self.timestep_s
        self._gain = self.model.actuator_gainprm.copy()
        self._bias = self.model.actuator_biasprm.copy()
        self._brake_step = brake_decel * self.timestep_s
        self._braking = False
        self.servo_offset = np.zeros(len(self.actuators))
        self.joint_offset = np.zeros(len(self.io.joint_names))
        self.powered = np.ones(len(self.actuators), dtype=bool)
        self._pins: dict[int, tuple[int, int, float]] = {}  # joint id -> (qpos, dof, value)
        self.goal = self.servo_positions()
        self.setpoint = self.goal.copy()
        slide = mujoco.mjtJoint.mjJNT_SLIDE
        self.linear = np.array([
            all(self.model.jnt_type[j] == slide for j in actuated_joints(self.model, int(a)))
            for a in self.actuators
        ])  # fmt: skip

    @property
    def has_object(self) -> bool:
        return self.loop.object_pose() is not None

    # -- measurements ----------------------------------------------------------------------
    def servo_positions(self) -> np.ndarray:
        return self.data.actuator_length[self.actuators] + self.servo_offset

    def servo_velocities(self) -> np.ndarray:
        return self.data.actuator_velocity[self.actuators].copy()

    def servo_efforts(self) -> np.ndarray:
        return self.data.actuator_force[self.actuators].copy()

    def joint_positions(self) -> np.ndarray:
        return self.data.qpos[self.io.qpos_indices] + self.joint_offset

    def joint_velocities(self) -> np.ndarray:
        return self.data.qvel[self.io.qvel_indices].copy()

    def joint_efforts(self) -> np.ndarray:
        return self.data.qfrc_actuator[self.io.qvel_indices].copy()

    # -- actuation -------------------------------------------------------------------------
    def follow(self, goal: np.ndarray) -> None:
        """Move the servos to `goal` (encoder frame), each at most at its speed limit; a
        valid command releases the brake."""
        self.goal = goal.copy()
        self.release_brake()

    def hold(self, positions: np.ndarray) -> None:
        """Stop the setpoints at `positions` now (no ramp), hold them there, and brake."""
        self.goal = positions.copy()
        self.setpoint = positions.copy()
        self._write_ctrl()
        self.engage_brake()

    def stopping_positions(self, low: np.ndarray, high: np.ndarray) -> np.ndarray:
        """Where the brake brings each servo to rest (v|v| / 2a ahead), so the hold servo
        does not pull the joint back against the brake."""
        v = self.servo_velocities()
        travel = v * np.abs(v) / (2 * self._brake_step / self.timestep_s)
        return np.clip(self.servo_positions() + travel, low, high)

    def engage_brake(self) -> None:
        """Joint brakes (R1 "HOLD: zero velocity, brake"): from now on every robot joint
        decelerates at `brake_decel` to rest and is kept there, whatever its servo and the
        load do (a Coulomb brake, applied to the state after each physics step)."""
        self._braking = True

    def release_brake(self) -> None:
        self._braking = False

    def _apply_brake(self) -> None:
        dofs = self.io.qvel_indices
        speed = self.data.qvel[dofs]
        slowed = np.maximum(np.abs(speed) - self._brake_step, 0.0)
        self.data.qvel[dofs] = np.sign(speed) * slowed

    def _write_ctrl(self) -> None:
        """Setpoints -> controls (MuJoCo clamps them to ctrlrange)."""
        self.data.ctrl[self.actuators] = self.setpoint - self.servo_offset

    def set_powered(self, powered: bool) -> None:
        """Torque on (nominal gains) or off (zero gain and bias: exactly no force)."""
        self.powered[:] = powered
        for i, actuator in enumerate(self.actuators):
            self._apply_power(i, int(actuator))

    def _apply_power(self, channel: int, actuator: int) -> None:
        scale = 1.0 if self.powered[channel] else 0.0
        self.model.actuator_gainprm[actuator] = self._gain[actuator] * scale
        self.model.actuator_biasprm[actuator] = self._bias[actuator] * scale

    def step(self) -> None:
        """Setpoints one step closer to their goals, then one model timestep; seized joints
        stay put. Raises PhysicsError on divergence."""
        self.setpoint = ramp_step(self.setpoint, self.goal, self._max_step)
        self._write_ctrl()
        self.loop.twin.step()
        if self._braking:
            self._apply_brake()
        for qpos, dof, value in self._pins.values():
            self.data.qpos[qpos] = value
            self.data.qvel[dof] = 0.0

    def reset_scene(self, seed: int) -> None:
        """The task's seeded episode `seed`; seized joints are seized where it puts them."""
        self.loop.env.reset(seed=seed)
        for joint in list(self._pins):
            self._pin(joint)

    # -- servo faults ----------------------------------------------------------------------
    def seize(self, channel: int) -> list[str]:
        """Freeze the joints servo `channel` moves; returns their names."""
        joints = actuated_joints(self.model, int(self.actuators[channel]))
        for joint in joints:
            self._pin(joint)
        return [self.model.joint(j).name for j in joints]

    def _pin(self, joint: int) -> None:
        qpos, dof = int(self.model.jnt_qposadr[joint]), int(self.model.jnt_dofadr[joint])
        self._pins[joint] = (qpos, dof, float(self.data.qpos[qpos]))
        self.data.qvel[dof] = 0.0

    def weaken(self, channel: int, torque_scale: float) -> None:
        """Scale servo `channel`'s torque (gain, bias and force range)."""
        actuator = int(self.actuators[channel])
        self._gain[actuator] *= torque_scale
        self._bias[actuator] *= torque_scale
        self.model.actuator_forcerange[actuator] *= torque_scale
        self._apply_power(channel, actuator)

    def offset_encoder(self, channel: int, offset: float) -> None:
        """Servo `channel`'s encoder (and its joint's) reads `offset` more from now on."""
        self.servo_offset[channel] += offset
        self.goal[channel] += offset  # the same physical goal, in the new encoder frame
        self.setpoint[channel] += offset
        actuator = int(self.actuators[channel])
        if self.model.actuator_trntype[actuator] == mujoco.mjtTrn.mjTRN_JOINT:
            name = self.model.joint(int(self.model.actuator_trnid[actuator, 0])).name
            if name in self.io.joint_names:
                gear = float(self.model.actuator_gear[actuator, 0])
                self.joint_offset[self.io.joint_names.index(name)] += offset / gear


class Emulator:
    """One emulated device. Public methods own the device's invariants; `_on_*` handle one
    message type each (dispatched by type), `_do_*` run scheduled faults."""

    def __init__(self, robot: str, config: EmulatorConfig | None = None, seed: int = 0):
        self.robot, self.seed = robot, seed
        self.config = config or EmulatorConfig()
        self.description = robot_tables(robot).description
        self.task = self.config.task or self.description.emulator_task
        self.rng = np.random.default_rng(seed)
        tables = robot_tables(robot)
        speed_max = tables.limits.velocity_max.astype(np.float32).astype(np.float64)
        brake = BRAKE_DECEL_FACTOR * float(tables.limits.acceleration_max.min())
        self.plant = Plant(self._twin_loop(), self.config.deviations, speed_max, brake)
        self.info = tables.device_info(
            reports_object_pose=self.plant.has_object, supports_scene_reset=True
        )
        self.limits = ChannelLimits.of(self.info)
        self.disabled_mode = DISABLED_MODES[self.description.safe_state]
        self._schedule = self._fault_schedule(self.config.faults)
        self.log = DeviceLog(self.config.log_path, self.config.max_log_entries)
        self.counters: Counter[str] = Counter()
        self.parser = FrameParser(
            frame_timeout_s=self.config.frame_timeout_s,
            longest_payload=1 + 4 * len(self.info.commands),  # a Command (the longest)
        )
        faults = self.config.faults
        self.downlink = LinkInjector(faults.host_to_device, self.rng, self._injected, "rx")
        self.uplink = LinkInjector(faults.device_to_host, self.rng, self._injected, "tx")
        self._init_state()
        self._handlers: dict[int, Callable[[Frame], None]] = {
            Hello.TYPE: self._on_hello,
            Command.TYPE: self._on_command,
            Enable.TYPE: self._on_enable,
            EStop.TYPE: self._on_estop,
            Heartbeat.TYPE: self._on_heartbeat,
            ResetFault.TYPE: self._on_reset_fault,
            SceneReset.TYPE: self._on_scene_reset,
        }
        self._enter_disabled()
        self.log.write(
            0, "power_up", robot=robot, task=self.task, seed=seed, mode=self.disabled_mode
        )

    def _twin_loop(self) -> TwinLoop:
        """The task's twin, checked to be this robot's (same joints and commands)."""
        loop = TwinLoop(self.task, seed=self.seed, actuation="ideal", scene=self.config.scene)
        tables = robot_tables(self.robot)
        names = (loop.io.joint_names, loop.io.command_names)
        if loop.task.robot != self.robot or names != (tables.joint_names, tables.command_names):
            raise ConfigError(
                f"task {self.task!r} is a {loop.task.robot} task whose joints or commands "
                f"differ from the {self.robot} device tables; pick a {self.robot} task"
            )
        return loop

    def _init_state(self) -> None:
        self.enabled = self.holding = self.estop = self.fault = False
        self.targets = self.plant.servo_positions()
        self._steps = 0
        self._dt_us = round(self.plant.timestep_s * 1e6)
        self._tracking_limit = np.where(self.plant.linear, TRACKING_LIMIT_M, TRACKING_LIMIT_RAD)
        self._off_target_steps = np.zeros(len(self.plant.actuators), dtype=np.int64)
        self._state_every = max(1, round(self.info.state_period_ms * 1000 / self._dt_us))
        self._counters_every = max(1, round(self.config.counters_period_s * 1e6 / self._dt_us))
        self._watchdog_us = self.info.watchdog_ms * 1000
        self._last_valid_us = 0
        self._last_seq = 0
        self._tx_seq = 0
        self._pending: deque[tuple[int, np.ndarray]] = deque()  # (due device time, targets)
        self._target_measured = True  # the target was set from a measurement (D16.4)
        self._outbox: deque[tuple[float, bytes]] = deque()  # (release link time, bytes)
        self._last_release_s = float("-inf")
        self._now_s = 0.0
        self._link_down_until_us: int | None = None
        self._scene_seed = self.seed

    # -- public API --------------------------------------------------------------------------
    @property
    def device_time_us(self) -> int:
        """Device clock: physics steps taken x timestep (monotonic, starts at 0)."""
        return self._steps * self._dt_us

    def world_positions(self) -> np.ndarray:
        """The emulated world's joint positions (`qpos`: robot and object), for the rig's
        cameras; the host never reads them."""
        return self.plant.data.qpos

    @property
    def status(self) -> int:
        bits = (Status.ENABLED, Status.HOLDING, Status.ESTOP, Status.FAULT)
        flags = (self.enabled, self.holding, self.estop, self.fault)
        return sum(bit for bit, on in zip(bits, flags, strict=True) if on)

    @property
    def connected(self) -> bool:
        """False while the device is off the bus (a scheduled or requested disconnect)."""
        return self._link_down_until_us is None

    @property
    def timestep_s(self) -> float:
        return self.plant.timestep_s

    def receive(self, data: bytes, now_s: float) -> None:
        """Bytes from the host, arrived at link time `now_s`; complete frames are acted on."""
        self._now_s = now_s
        if not self.connected:
            self.counters["rx_bytes_while_disconnected"] += len(data)
            return
        self._act_on(self.parser.feed(self.downlink.incoming(data), now_s))

    def _act_on(self, frames: list[Frame]) -> None:
        for frame in frames:
            if not self.downlink.drop_frame():
                self._dispatch(frame)

    def tick(self, now_s: float) -> None:
        """One physics step at link time `now_s`: faults due, a partial frame's timeout (R4:
        on the clock, so frames behind a false header are acted on when the host falls
        silent, an EStop among them), latency pipeline, watchdog, physics, and a State
        (+ ObjectPose) when a state period has elapsed."""
        self._now_s = now_s
        self._run_schedule()
        if self.connected:
            self._act_on(self.parser.expire(now_s))
        self._apply_due_targets()
        self._check_watchdog()
        self._step_physics()
        self._check_tracking()
        self._steps += 1
        if self._steps % self._state_every == 0:
            self._report()
        if self._steps % self._counters_every == 0:
            self._write("counters", **self.counter_report())

    def pending_writes(self, now_s: float | None = None) -> list[bytes]:
        """Writes due by link time `now_s` (default: the last time seen), in order."""
        now = self._now_s if now_s is None else now_s
        due: list[bytes] = []
        while self._outbox and self._outbox[0][0] <= now:
            due.append(self._outbox.popleft()[1])
        return due

    def pending_output(self, now_s: float | None = None) -> bytes:
        """The bytes of `pending_writes` as one string."""
        return b"".join(self.pending_writes(now_s))

    def next_release_s(self) -> float | None:
        """Link time the next queued write is due, or None if nothing is queued."""
        return self._outbox[0][0] if self._outbox else None

    def disconnect(self, for_s: float) -> None:
        """Drop off the bus now for `for_s` s of device time (USB unplug, then replug).

        The robot keeps running: with no commands its watchdog holds it.
        """
        self._do_disconnect(Disconnect(self.device_time_us * 1e-6, for_s))

    def shutdown(self, reason: str = "shutdown") -> None:
        """Power down: torque off on every servo (logged per servo), counters, close the log."""
        self._enter_disabled()
        self._log_torque_disable(reason)
        self.log.write(self.device_time_us, "counters", **self.counter_report())
        self.log.close()

    def counter_report(self) -> dict[str, dict[str, int]]:
        """Device counters and the parser's (what arrived damaged or unknown)."""
        return {"device": dict(self.counters), "parser": dict(self.parser.counters)}

    # -- messages ----------------------------------------------------------------------------
    def _dispatch(self, frame: Frame) -> None:
        handler = self._handlers.get(frame.message.TYPE)
        if handler is None:
            self.counters["unexpected_type"] += 1
            self._write("unexpected_frame", type=type(frame.message).__name__, seq=frame.seq)
            return
        handler(frame)

    def _on_hello(self, frame: Frame) -> None:
        self._write("hello", seq=frame.seq)
        self._send(self.info)

    def _on_heartbeat(self, frame: Frame) -> None:
        self.counters["heartbeats"] += 1

    def _on_enable(self, frame: Frame) -> None:
        if not cast(Enable, frame.message).enabled:
            self._torque_off(frame)
        elif self.estop or self.fault:
            latch = "e-stop" if self.estop else "fault"
            self._write("enable_refused", seq=frame.seq, latch=latch)
            self._ack(frame, AckResult.REFUSED, f"{latch} latched: send ResetFault first")
        else:
            self._power_on(frame)

    def _torque_off(self, frame: Frame) -> None:
        self._write("enable", seq=frame.seq, enabled=False)
        self._enter_disabled()
        self._log_torque_disable("host")
        self._ack(frame, AckResult.OK)

    def _power_on(self, frame: Frame) -> None:
        self.enabled = True
        self.plant.set_powered(True)
        self._write("enable", seq=frame.seq, enabled=True)
        self._restart_holding("enable")
        self._ack(frame, AckResult.OK)

    def _on_estop(self, frame: Frame) -> None:
        self.estop = True
        self._write("estop", seq=frame.seq)
        if self.enabled:
            self._hold("estop")
        self._ack(frame, AckResult.OK)

    def _on_reset_fault(self, frame: Frame) -> None:
        self._write("reset_fault", seq=frame.seq, estop=self.estop, fault=self.fault)
        self.estop = self.fault = False
        if self.enabled:
            self.plant.set_powered(True)  # a hand's TRACKING fault turned its torque off
            self._restart_holding("reset_fault")
        self._ack(frame, AckResult.OK)

    def _on_scene_reset(self, frame: Frame) -> None:
        if self.estop or self.fault:  # D9: nothing moves a latched device
            latch = "e-stop" if self.estop else "fault"
            self._write("scene_reset_refused", seq=frame.seq, latch=latch)
            self._ack(frame, AckResult.REFUSED, f"{latch} latched: send ResetFault first")
            return
        self._scene_seed = cast(SceneReset, frame.message).seed
        self.plant.reset_scene(self._scene_seed)
        self._write("scene_reset", seq=frame.seq, scene_seed=self._scene_seed)
        if self.enabled:
            self._restart_holding("scene_reset")
        else:
            self._enter_disabled()
        self._ack(frame, AckResult.OK)

    def _on_command(self, frame: Frame) -> None:
        positions = cast(Command, frame.message).positions
        latch = self._command_latch()
        if latch is not None:
            self.counters[f"command_dropped_{latch}"] += 1
            self._log_command(frame, positions, reason=latch)
            return
        refusal = self.limits.refusal(positions, *self.command_reference())
        if refusal is not None:
            self._reject(frame, positions, *refusal)
            return
        self._accept(frame, positions)

    def command_reference(self) -> tuple[np.ndarray, float | np.ndarray]:
        """What D16.4 measures a Command's jump from, and the margin it allows on top: a
        target the device took from its measurement (a hold, Enable, ResetFault, SceneReset)
        is known to the host only through a State, noisy and up to two state periods old
        while a joint coasts to rest, so that noise and that motion are allowed."""
        if not self._target_measured:
            return self.targets.copy(), 0.0
        noise = MEASUREMENT_MARGIN_STD * self.config.deviations.position_noise_std
        age_s = MEASUREMENT_AGE_PERIODS * self.info.state_period_ms / 1000
        motion = np.abs(self.plant.servo_velocities()) * age_s
        return self.plant.servo_positions(), noise + motion

    def _command_latch(self) -> str | None:
        """Why a Command cannot be accepted in this state (no Fault frame), or None."""
        for reason, on in (("estop", self.estop), ("fault", self.fault)):
            if on:
                return reason
        return None if self.enabled else "disabled"

    def _reject(self, frame: Frame, positions: np.ndarray, reason: str, joint: int, text: str):
        self.counters["command_rejected"] += 1
        self._log_command(frame, positions, reason=reason, detail=text)
        self._send(Fault(FaultCode.COMMAND_REJECTED, joint, text))

    def _accept(self, frame: Frame, positions: np.ndarray) -> None:
        self.counters["command_accepted"] += 1
        self.targets = positions.copy()
        self._target_measured = False
        self._last_valid_us, self._last_seq = self.device_time_us, frame.seq
        self.holding = False
        self._log_command(frame, positions)
        latency_us = round(self.config.deviations.command_latency_ms * 1000)
        if latency_us <= 0:
            self.plant.follow(self.targets)
        else:
            self._pending.append((self.device_time_us + latency_us, self.targets.copy()))

    def _log_command(self, frame: Frame, positions: np.ndarray, **rejection: str) -> None:
        self._write(
            "command",
            seq=frame.seq,
            positions=_json_floats(positions),
            accepted=not rejection,
            **rejection,
        )

    def _ack(self, frame: Frame, result: int, message: str = "") -> None:
        self._send(Ack(frame.message.TYPE, frame.seq, result, message))

    # -- device behaviour ------------------------------------------------------------------
    def _hold(self, reason: str) -> None:
        """Targets := where the braked servos come to rest, now (cancels delayed targets)."""
        self._pending.clear()
        self.targets = self.plant.stopping_positions(self.limits.low, self.limits.high)
        self._target_measured = True
        self.plant.hold(self.targets)
        self._write("hold", reason=reason, targets=_json_floats(self.targets))

    def _restart_holding(self, reason: str) -> None:
        """Hold the measured position with a fresh watchdog and no HOLDING flag."""
        self.holding = False
        self._last_valid_us = self.device_time_us
        self._hold(reason)

    def _enter_disabled(self) -> None:
        """Torque off: brakes hold where the joints are ("brake"), or limp ("limp")."""
        self.enabled = self.holding = False
        self._pending.clear()
        self.targets = self.plant.servo_positions()
        self.plant.hold(self.targets)
        self.plant.set_powered(self.disabled_mode == "brake")
        if self.disabled_mode != "brake":
            self.plant.release_brake()  # limp: no servo force and no brake

    def _log_torque_disable(self, reason: str) -> None:
        for name in self.info.command_names:
            self._write("torque_disable", servo=name, reason=reason, mode=self.disabled_mode)

    def _apply_due_targets(self) -> None:
        while self._pending and self._pending[0][0] <= self.device_time_us:
            self.plant.follow(self._pending.popleft()[1])

    def _check_watchdog(self) -> None:
        if not self.enabled or self.holding or self.estop or self.fault:
            return
        age_us = self.device_time_us - self._last_valid_us
        if age_us < self._watchdog_us:
            return
        self.holding = True
        self.counters["watchdog_trips"] += 1
        self._write("watchdog", age_ms=age_us / 1000, last_command_seq=self._last_seq)
        self._hold("watchdog")
        self._send(
            Fault(FaultCode.WATCHDOG, NO_JOINT, f"no valid command for {age_us // 1000} ms")
        )

    def _step_physics(self) -> None:
        try:
            self.plant.step()
        except PhysicsError as e:
            self.fault = True
            self.counters["physics_diverged"] += 1
            self._write("physics_diverged", detail=str(e))
            self.plant.reset_scene(self._scene_seed)
            self._hold("physics_diverged")
            self._send(Fault(FaultCode.INTERNAL, NO_JOINT, "emulator physics diverged; reset"))

    def _check_tracking(self) -> None:
        """D20: latch TRACKING when a servo stayed off its setpoint for TRACKING_MS."""
        plant = self.plant
        if not self.enabled or self.holding or self.estop or self.fault:
            self._off_target_steps[:] = 0
            return
        off = np.abs(plant.setpoint - plant.servo_positions()) > self._tracking_limit
        self._off_target_steps = np.where(off, self._off_target_steps + 1, 0)
        channel = int(np.argmax(self._off_target_steps))
        if self._off_target_steps[channel] * self._dt_us < TRACKING_MS * 1000:
            return
        name = self.info.command_names[channel]
        error = float(plant.setpoint[channel] - plant.servo_positions()[channel])
        text = f"{name} {error:+.3f} off its setpoint for {TRACKING_MS} ms"
        self.fault = True
        self.counters["tracking_faults"] += 1
        self._write("tracking_fault", servo=name, error=error)
        self._safe_state("tracking_fault")
        self._send(Fault(FaultCode.TRACKING, channel, text))

    def _safe_state(self, reason: str) -> None:
        """D20: hold an arm that would fall under gravity, torque off for a hand."""
        self._hold(reason)
        if self.disabled_mode == "limp":
            self.plant.set_powered(False)
            self.plant.release_brake()

    def _report(self) -> None:
        t_us, dev = self.device_time_us, self.config.deviations
        plant = self.plant
        # Efforts are the motors' torque: none while the torque is off (PROTOCOL.md State).
        powered = self.enabled and not (self.fault and self.disabled_mode == "limp")
        zeros = np.zeros(len(plant.actuators))
        state = State(
            t_us,
            self.status,
            self._last_seq,
            self._noisy(plant.joint_positions(), dev.position_noise_std),
            self._noisy(plant.joint_velocities(), dev.velocity_noise_std),
            plant.joint_efforts() if powered else np.zeros(len(plant.io.joint_names)),
            self._noisy(plant.servo_positions(), dev.position_noise_std),
            self._noisy(plant.servo_velocities(), dev.velocity_noise_std),
            plant.servo_efforts() if powered else zeros,
        )
        self._send(state)
        pose = plant.loop.object_pose()
        if pose is not None:
            position = self._noisy(pose.position_m, dev.object_position_noise_std_m)
            self._send(ObjectPose(t_us, position, pose.quaternion_wxyz))

    def _noisy(self, values: np.ndarray, std: float) -> np.ndarray:
        return values + self.rng.normal(0.0, std, len(values)) if std > 0 else values

    # -- output ------------------------------------------------------------------------------
    def _send(self, message: Message) -> None:
        """Encode with the next device seq and queue it (through the reply faults)."""
        seq, self._tx_seq = self._tx_seq, (self._tx_seq + 1) & 0xFFFF
        if not self.connected:
            self.counters["tx_frames_while_disconnected"] += 1
            return
        self.counters[f"tx_{type(message).__name__}"] += 1
        latency_s = self.config.deviations.state_latency_ms * 1e-3
        release = max(self._now_s + latency_s, self._last_release_s)
        for delay_s, chunk in self.uplink.outgoing(encode_frame(message, seq)):
            release += delay_s
            self._outbox.append((release, chunk))
        self._last_release_s = release

    # -- scheduled faults --------------------------------------------------------------------
    def _fault_schedule(self, faults: FaultConfig) -> deque[tuple[int, Any]]:
        items: list[Any] = [*faults.disconnects, *faults.servo_faults]
        for item in items:
            if not isinstance(item, Disconnect):
                self._channel(item)  # validate the name now, not when it is due
        timed = sorted(((round(item.at_s * 1e6), i) for i, item in enumerate(items)))
        return deque((at_us, items[i]) for at_us, i in timed)

    def _channel(self, fault: StuckJoint | WeakServo | SensorOffset) -> int:
        names = self.info.command_names
        if fault.name not in names:
            raise ConfigError(
                f"faults.{_FAULT_KEYS[type(fault)]}.name: unknown servo {fault.name!r}; "
                f"valid servos of {self.robot}: {', '.join(names)}"
            )
        return names.index(fault.name)

    def _run_schedule(self) -> None:
        now = self.device_time_us
        if self._link_down_until_us is not None and now >= self._link_down_until_us:
            self._link_down_until_us = None
            self.parser.reset()
            self._write("reconnect")
        while self._schedule and self._schedule[0][0] <= now:
            item = self._schedule.popleft()[1]
            self._fault_actions[type(item)](self, item)

    def _do_disconnect(self, item: Disconnect) -> None:
        self._link_down_until_us = self.device_time_us + round(item.for_s * 1e6)
        self._outbox.clear()
        self.parser.reset()
        self.counters["disconnects"] += 1
        self._injected("disconnect", for_s=item.for_s)

    def _do_stuck_joint(self, item: StuckJoint) -> None:
        joints = self.plant.seize(self._channel(item))
        self._injected("stuck_joint", servo=item.name, joints=joints)

    def _do_weak_servo(self, item: WeakServo) -> None:
        self.plant.weaken(self._channel(item), item.torque_scale)
        self._injected("weak_servo", servo=item.name, torque_scale=item.torque_scale)

    def _do_sensor_offset(self, item: SensorOffset) -> None:
        channel = self._channel(item)
        self.plant.offset_encoder(channel, item.offset)
        self.targets[channel] += item.offset  # same physical target, new encoder frame
        for _, pending in self._pending:
            pending[channel] += item.offset
        self._injected("sensor_offset", servo=item.name, offset=item.offset)

    _fault_actions: ClassVar[dict[type, Callable[[Emulator, Any], None]]] = {
        Disconnect: _do_disconnect,
        StuckJoint: _do_stuck_joint,
        WeakServo: _do_weak_servo,
        SensorOffset: _do_sensor_offset,
    }

    # -- log ---------------------------------------------------------------------------------
    def _write(self, event: str, **details: Any) -> None:
        self.log.write(self.device_time_us, event, **details)

    def _injected(self, kind: str, **details: Any) -> None:
        self.counters[f"injected_{kind}"] += 1
        self._write("fault_injection", kind=kind, **details)


def _json_floats(values: np.ndarray) -> list[float | str]:
    """Floats for the JSON log; non-finite ones as "nan"/"inf"/"-inf" (strict JSON has none)."""
    return [float(v) if np.isfinite(v) else str(float(v)) for v in values]


_FAULT_KEYS = {StuckJoint: "stuck_joint", WeakServo: "weak_servo", SensorOffset: "sensor_offset"}
