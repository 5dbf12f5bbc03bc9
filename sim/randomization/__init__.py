"""Domain randomization by named parameters, and Automatic Domain Randomization.

`physics.friction:scale`-style paths name every randomized quantity (`registry.PARAMETERS`);
a YAML file (`config.load_randomization`) says which are randomized and how; an env built
with `randomization=` applies them before every reset (`engine.EpisodeRandomizer`); a
trainer with ADR (`adr.AutomaticDomainRandomization`) chooses each episode's values.
"""

from sim.randomization.config import RandomizationConfig, load_randomization
from sim.randomization.parameters import Parameter, RandomizationError
from sim.randomization.registry import PARAMETERS, get_parameter

__all__ = [
    "PARAMETERS",
    "Parameter",
    "RandomizationConfig",
    "RandomizationError",
    "get_parameter",
    "load_randomization",
]
