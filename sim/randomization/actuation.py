"""Actuation randomization: the robot's command path (sim/actuation.py), episode by episode.

The speed and acceleration limits the driver and the device enforce (a scale of the robot
table's), the cycles from a state to the command answering it, their jitter, and the link's
latency. The servo's gain is `physics.actuator_gain:scale`. Legal ranges keep every
combination below the driver's watchdog (4 + 4 cycles of 10 ms + 19 ms < 100 ms), so no
sampled or ADR-widened episode can make every command stale. Only a twin with the robot's
actuation has these (an `ideal` one is refused, naming the parameter).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from sim.randomization.base import Randomizer
from sim.randomization.parameters import Parameter
from sim.twin import Twin

MAX_DELAY_CYCLES = 4
MAX_LATENCY_MS = 19.0

ACTUATION_PARAMETERS = (
    Parameter("actuation.velocity_limit:scale", 1.0, 0.25, 2.0, 0.02,
              "speed limit of every commanded joint (driver's limiter and device ramp)"),
    Parameter("actuation.acceleration_limit:scale", 1.0, 0.25, 4.0, 0.02,
              "acceleration limit of the driver's rate limiter"),
    Parameter("actuation.command_delay:cycles", 1.0, 0.0, MAX_DELAY_CYCLES, 0.05,
              "driver cycles from a state to the first use of the command answering it",
              integer=True),
    Parameter("actuation.command_jitter:cycles", 0.0, 0.0, MAX_DELAY_CYCLES, 0.05,
              "each command is late by U{0..v} more driver cycles", integer=True),
    Parameter("actuation.link_latency:ms", 2.0, 0.0, MAX_LATENCY_MS, 0.1,
              "a driver command reaches the device this much later"),
)  # fmt: skip


class ActuationRandomizer(Randomizer):
    """Sets the twin's command path for an episode from the actuation parameters."""

    parameters = ACTUATION_PARAMETERS

    def applies_to(self, twin: Twin) -> bool:
        return twin.command_path is not None

    def bind(self, twin: Twin) -> None:
        self._nominal = twin.command_path.config  # type: ignore[union-attr]

    def apply(self, twin: Twin, values: Mapping[str, float], rng: np.random.Generator) -> None:
        nominal = self._nominal
        config = nominal.with_values(
            velocity_scale=nominal.velocity_scale * values["actuation.velocity_limit:scale"],
            acceleration_scale=(
                nominal.acceleration_scale * values["actuation.acceleration_limit:scale"]
            ),
            command_delay_cycles=int(values["actuation.command_delay:cycles"]),
            command_jitter_cycles=int(values["actuation.command_jitter:cycles"]),
            link_latency_s=values["actuation.link_latency:ms"] / 1e3,
        )
        twin.command_path.configure(config)  # type: ignore[union-attr]

    def restore(self, twin: Twin) -> None:
        twin.command_path.configure(self._nominal)  # type: ignore[union-attr]
