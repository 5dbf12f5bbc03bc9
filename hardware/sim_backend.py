"""Sim backend: the MuJoCo twin as a `RobotInterface`, stepped one control period per read.

Run: `python -c "from hardware.sim_backend import SimRobot; r = SimRobot('fetch'); r.connect(); print(r.read())"`

The same lifecycle and safety layer as the serial drivers, with the twin in place of the
device: a read advances physics by one period (time passes, then we measure), a write sets
position targets. Disabled means the robot's safe state: an arm brakes where it is, a hand
goes limp. Used to test the driver stack without a device, and by the conformance suite.
"""  # noqa: E501

from __future__ import annotations

import numpy as np

from hardware.interface import Measurement, ObjectPoseReading, RobotInterface
from hardware.safety import SafetyConfig
from sim.twin_loop import TwinLoop


class SimRobot(RobotInterface):
    """A robot's twin behind the RobotInterface lifecycle."""

    backend = "sim"

    def __init__(
        self,
        robot: str,
        safety: SafetyConfig | None = None,
        task: str = "",
        seed: int = 0,
        period_s: float = 0.01,
        **kwargs,
    ):
        super().__init__(robot, safety, **kwargs)
        self.task = task or self.tables.description.emulator_task
        self.seed = seed
        self.period_s = period_s
        self.loop: TwinLoop | None = None
        self.enabled = False
        self.device_estop = False
        self._limp = self.tables.description.safe_state == "torque_off"
        self._ticks = 0

    def _connect(self) -> None:
        self.loop = TwinLoop(self.task, self.seed)
        self._substeps = max(1, round(self.period_s / self.loop.twin.model.opt.timestep))
        self._hold_here()

    def _twin_loop(self) -> TwinLoop:
        if self.loop is None:
            raise RuntimeError("SimRobot used before connect()")
        return self.loop

    def _enable(self, enabled: bool) -> None:
        self.enabled = enabled and not self.device_estop
        self._hold_here()

    def _read(self) -> Measurement:
        loop = self._twin_loop()
        for _ in range(self._substeps):
            if self._limp and not self.enabled:
                self._hold_here()  # target = position: no servo force
            loop.twin.step()
        self._ticks += 1
        return self._measure()

    def _send(self, positions: np.ndarray) -> None:
        if self.enabled and not self.device_estop:
            self._twin_loop().twin.data.ctrl[self._actuators] = positions

    def _estop(self) -> None:
        self.device_estop = True
        self._hold_here()

    def _reset_fault(self) -> None:
        self.device_estop = False
        self._last_target = None
        self._hold_here()

    def _close(self) -> None:
        if self.loop is not None:
            self.loop.twin.close()
            self.loop = None

    def _scene_reset(self, seed: int) -> bool:
        loop = self._twin_loop()
        loop.env.reset(seed=seed)
        self._restart_from_measured()
        self._hold_here()
        return True

    @property
    def _actuators(self) -> np.ndarray:
        return self._twin_loop().io.actuator_ids

    def _hold_here(self) -> None:
        data = self._twin_loop().twin.data
        data.ctrl[self._actuators] = data.actuator_length[self._actuators]

    def _measure(self) -> Measurement:
        loop = self._twin_loop()
        data, ids = loop.twin.data, self._actuators
        sample = loop.joint_state()
        pose = loop.object_pose()
        return Measurement(
            stamp_ns=self.clock_ns(),
            joint_names=sample.names,
            positions=sample.positions,
            velocities=sample.velocities,
            efforts=sample.efforts,
            servo_positions=data.actuator_length[ids].copy(),
            servo_velocities=data.actuator_velocity[ids].copy(),
            servo_efforts=data.actuator_force[ids].copy(),
            object_pose=ObjectPoseReading(pose.position_m, pose.quaternion_wxyz) if pose else None,
            device_status="estop" if self.device_estop else "enabled" if self.enabled else "",
        )
