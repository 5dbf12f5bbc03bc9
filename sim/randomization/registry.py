"""Every randomizable parameter by path, and the model randomizers that own them.

The visual family registers here like the physics one; the action, sensor and observation
pipelines own their parameters directly (they act on the step, not on the model).
"""

from __future__ import annotations

from sim.errors import did_you_mean
from sim.randomization.action import ACTION_PARAMETERS
from sim.randomization.actuation import ActuationRandomizer
from sim.randomization.base import Randomizer
from sim.randomization.observation import OBSERVATION_PARAMETERS
from sim.randomization.parameters import Parameter, RandomizationError, by_path
from sim.randomization.physics import PHYSICS_RANDOMIZERS
from sim.randomization.sensors import SENSOR_PARAMETERS
from sim.randomization.visual import VISUAL_RANDOMIZERS

MODEL_RANDOMIZERS: tuple[type[Randomizer], ...] = (
    *PHYSICS_RANDOMIZERS, ActuationRandomizer, *VISUAL_RANDOMIZERS,
)  # fmt: skip


def _all_parameters() -> dict[str, Parameter]:
    parameters = [p for cls in MODEL_RANDOMIZERS for p in cls.parameters]
    parameters += [*ACTION_PARAMETERS, *SENSOR_PARAMETERS, *OBSERVATION_PARAMETERS]
    return by_path(parameters, "registered parameter")


PARAMETERS: dict[str, Parameter] = _all_parameters()


def get_parameter(path: str) -> Parameter:
    """The spec of `path`, or an error naming it and the closest known paths."""
    if path not in PARAMETERS:
        raise RandomizationError(
            f"unknown randomization parameter {path!r}; {did_you_mean(path, PARAMETERS)}"
            f"known: {', '.join(sorted(PARAMETERS))}"
        )
    return PARAMETERS[path]
