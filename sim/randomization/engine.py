"""`EpisodeRandomizer`: one twin's randomization, episode by episode.

Only the model randomizers owning a configured parameter are bound and applied; the rest
never touch the model, so an env randomizing friction pays for friction alone.

Before each reset the env hands it the episode's parameter values (sampled here from the
config's ranges, or given by a trainer's ADR plan): model randomizers restore nominal and
apply the new values, then the task resets the twin on the randomized model, then the
action, sensor and observation pipelines start the episode. Each step's observation is the
sensors' (computed from noisy measurements), then the observation pipeline's. Values are
checked against each parameter's legal range first, so nothing illegal reaches the model.
"""

from __future__ import annotations

from collections.abc import Mapping

import mujoco
import numpy as np

from sim.randomization.action import ActionPipeline
from sim.randomization.base import Randomizer
from sim.randomization.config import RandomizationConfig
from sim.randomization.observation import ObservationPipeline
from sim.randomization.parameters import RandomizationError
from sim.randomization.registry import MODEL_RANDOMIZERS, PARAMETERS, get_parameter
from sim.randomization.sensors import SensorPipeline
from sim.tasks.base import Task
from sim.twin import Twin


class EpisodeRandomizer:
    """Samples, checks and applies one episode's randomization to a bound twin and task."""

    def __init__(self, twin: Twin, task: Task, config: RandomizationConfig):
        self.twin, self.config = twin, config
        self._randomizers: list[Randomizer] = []
        configured = set(config.paths)
        for cls in MODEL_RANDOMIZERS:
            mine = sorted(configured & {p.path for p in cls.parameters})
            if not mine:
                continue  # an unconfigured randomizer never touches the model
            randomizer = cls()
            if not randomizer.applies_to(twin):
                raise RandomizationError(
                    f"{config.source}: {', '.join(mine)} cannot be randomized on {twin.name}, "
                    "which has nothing such a parameter changes; remove it from the file"
                )
            randomizer.bind(twin)
            self._randomizers.append(randomizer)
        self.nominal = {path: p.nominal for path, p in PARAMETERS.items()}
        self.action = ActionPipeline(twin, task)
        self.sensors = SensorPipeline(twin, task)
        self.observation = ObservationPipeline()

    def sample(self, rng: np.random.Generator) -> dict[str, float]:
        """Every configured parameter drawn uniformly in its range (ADR ones at nominal)."""
        values = {
            p: float(rng.uniform(low, high)) for p, (low, high) in self.config.ranges.items()
        }
        values.update({p: PARAMETERS[p].nominal for p in self.config.adr_steps})
        return values

    def apply(self, values: Mapping[str, float], rng: np.random.Generator) -> dict[str, float]:
        """Set the model for an episode (before the task's reset); returns all values used."""
        full = dict(self.nominal)
        for path, value in values.items():
            full[path] = get_parameter(path).check_value(value)
        unconfigured = sorted(set(values) - set(self.config.paths))
        if unconfigured:
            raise RandomizationError(
                f"values for {', '.join(unconfigured)} were given, but {self.config.source} "
                "does not randomize them; add them to the env's randomization config"
            )
        applied = {path: PARAMETERS[path].applied(v) for path, v in full.items()}
        inertia = False
        for randomizer in self._randomizers:
            randomizer.apply(self.twin, applied, rng)  # relative to nominal: no restore first
            inertia |= randomizer.changes_inertia
        if inertia:
            mujoco.mj_setConst(self.twin.model, self.twin.data)
        self._values, self._rng = applied, rng
        return {path: applied[path] for path in values}

    def begin_episode(self, first_observation: np.ndarray) -> np.ndarray:
        """Start the step pipelines after the task reset; returns the first seen observation."""
        self.action.begin_episode(self._values, self._rng)
        seen = self.sensors.begin_episode(self._values, self._rng, first_observation)
        return self.observation.begin_episode(self._values, self._rng, seen)

    def observe(self, true_observation: np.ndarray) -> np.ndarray:
        """What the policy sees this step, given the twin's state and its true observation."""
        return self.observation.observe(self.sensors.observe(true_observation))

    def restore(self) -> None:
        """Put every nominal model value back."""
        for randomizer in self._randomizers:
            randomizer.restore(self.twin)
        mujoco.mj_setConst(self.twin.model, self.twin.data)
