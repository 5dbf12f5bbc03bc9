"""Sensor randomization: the observation computed from noisy measurements, as the robot does.

`observation.noise:std` adds the same noise to every observation component, which is not
what a robot's sensors do: they measure joint positions and velocities and the object's
position, and the robot side (`sim.mirror.TaskMirror`) writes those into a model and asks
the task for the observation. Noise on a joint then moves the gripper's position by the
arm's lever, a finger's velocity noise shows in `gripper_vel`, and the object's position is
a filtered estimate (`sim.object_estimate`, the policy node's Kalman filter), whose velocity
lags. This family does the same inside the training twin: each step it writes the noisy
measurements into the twin's data, asks the task for the observation, and puts the whole
data back as it was (the physics, rewards, goals and the expert's `true_observation` stay
exactly those of the plain twin: tests/test_randomization.py).

The object is measured `OBJECT_MEASUREMENTS_PER_STEP` times a control step (the driver's
100 Hz state rate at the tasks' 25 Hz), at positions interpolated between the step's start
and end (the twin steps a whole control step in one call).
"""

from __future__ import annotations

from collections.abc import Mapping

import mujoco
import numpy as np

from sim.object_estimate import ObjectEstimate, ObjectEstimateConfig
from sim.randomization.parameters import Parameter
from sim.robot_io import RobotIO
from sim.tasks.base import Task
from sim.twin import Twin

SENSOR_PARAMETERS = (
    Parameter("sensor.joint_position_noise:std", 0.0, 0.0, 0.1, 0.0002,
              "Gaussian noise on each measured joint position (rad, or m for a linear "
              "joint), fresh every state, as the emulator's position_noise_std"),
    Parameter("sensor.joint_velocity_noise:std", 0.0, 0.0, 1.0, 0.002,
              "Gaussian noise on each measured joint velocity (rad/s or m/s), fresh every "
              "state, as the emulator's velocity_noise_std"),
    Parameter("sensor.object_position_noise:std", 0.0, 0.0, 0.1, 0.0005,
              "Gaussian noise on each measured object position (m), filtered by the policy "
              "node's object estimate, as the emulator's object_position_noise_std_m"),
)  # fmt: skip

OBJECT_MEASUREMENTS_PER_STEP = 4
_FREE = int(mujoco.mjtJoint.mjJNT_FREE)


class SensorPipeline:
    """Each step's observation as the robot side would compute it from noisy sensors."""

    parameters = SENSOR_PARAMETERS

    def __init__(self, twin: Twin, task: Task):
        self.twin, self.task = twin, task
        self.nominal = True
        io = RobotIO.of(task.robot, twin)
        self._qpos, self._qvel = np.asarray(io.qpos_indices), np.asarray(io.qvel_indices)
        free = np.flatnonzero(twin.model.jnt_type == _FREE)
        self._object = int(twin.model.jnt_qposadr[free[0]]) if free.size else None
        self._object_dof = int(twin.model.jnt_dofadr[free[0]]) if free.size else None
        self._estimate = ObjectEstimate(ObjectEstimateConfig())  # the policy node's defaults
        self._saved = mujoco.MjData(twin.model)  # the true data while the noisy one is read
        self._dt_ns = 0

    def begin_episode(
        self, values: Mapping[str, float], rng: np.random.Generator, true: np.ndarray
    ) -> np.ndarray:
        """Start an episode (the object estimate too); returns the first observation."""
        self._rng = rng
        self._position_std = values["sensor.joint_position_noise:std"]
        self._velocity_std = values["sensor.joint_velocity_noise:std"]
        self._object_std = values["sensor.object_position_noise:std"]
        self.nominal = not (self._position_std or self._velocity_std or self._object_std)
        if self.nominal:
            return true
        period_s = float(self.twin.model.opt.timestep) * self.task.frame_skip
        self._dt_ns = round(period_s * 1e9 / OBJECT_MEASUREMENTS_PER_STEP)
        self._stamp_ns = 0
        self._estimate.restart()
        self._last_object: np.ndarray | None = None  # the first measurements: where it is
        return self.observe(true)

    def observe(self, true: np.ndarray) -> np.ndarray:
        """The observation of the noisy measurements of the twin's current state."""
        if self.nominal:
            return true
        model, data, rng = self.twin.model, self.twin.data, self._rng
        mujoco.mj_copyData(self._saved, model, data)
        data.qpos[self._qpos] += rng.normal(0.0, self._position_std, self._qpos.size)
        data.qvel[self._qvel] += rng.normal(0.0, self._velocity_std, self._qvel.size)
        if self._object is not None and self._object_dof is not None:
            self._measure_object(self._object, self._object_dof)
        mujoco.mj_forward(model, data)
        seen = np.asarray(self.task.observation(self.twin), dtype=np.float64).copy()
        mujoco.mj_copyData(data, model, self._saved)  # derived quantities and solver state too
        return seen

    def _measure_object(self, adr: int, dof: int) -> None:
        """Feed this step's measurements to the estimate; write its position and velocity."""
        data = self.twin.data
        now = data.qpos[adr : adr + 3].copy()
        last = self._last_object if self._last_object is not None else now
        for k in range(1, OBJECT_MEASUREMENTS_PER_STEP + 1):
            self._stamp_ns += self._dt_ns
            true = last + (now - last) * k / OBJECT_MEASUREMENTS_PER_STEP
            noisy = true + self._rng.normal(0.0, self._object_std, 3)
            self._estimate.update(noisy, self._stamp_ns)
        self._last_object = now
        data.qpos[adr : adr + 3] = self._estimate.position_m
        data.qvel[dof : dof + 3] = self._estimate.velocity_m_s
