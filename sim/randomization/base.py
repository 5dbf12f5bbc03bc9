"""What every randomizer provides: its parameters, and how it changes and restores the twin.

A randomizer is bound to one twin once: it caches the nominal model values it will change
(`.copy()`, so nominal survives every episode) and decides whether it applies to this robot
(a Shadow-hand tendon coupling does not exist on the Fetch). Each episode it gets the
sampled value of each of its parameters and a generator for anything else it draws (a
gravity azimuth, per-actuator delays), and changes the model relative to the cached
nominal, never relative to the previous episode's values.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping

import numpy as np

from sim.randomization.parameters import Parameter
from sim.twin import Twin


class Randomizer(ABC):
    """One named effect on the twin, driven by the values of `parameters`."""

    parameters: tuple[Parameter, ...] = ()
    changes_inertia = False  # True: the engine runs mj_setConst after applying

    def applies_to(self, twin: Twin) -> bool:
        """Whether this robot/scene has what the randomizer changes (default: yes)."""
        return True

    @abstractmethod
    def bind(self, twin: Twin) -> None:
        """Resolve indices and cache the nominal model values (called once per twin)."""

    @abstractmethod
    def apply(self, twin: Twin, values: Mapping[str, float], rng: np.random.Generator) -> None:
        """Change the model for one episode; `values` holds every parameter of this randomizer."""

    @abstractmethod
    def restore(self, twin: Twin) -> None:
        """Put the cached nominal values back."""
