"""`EpisodeGate`: when a robot serves the contract's `reset`, and with which seed.

Run: `python -c "from sim.contract.episode_gate import EpisodeGate; g = EpisodeGate(0, 50); p = g.plan(None); g.commit(p); print(p)"`

One set of rules for every robot under the graph (the twin and every driver), so a reset
means the same thing whoever calls it and whenever:
- **Nothing moves a latched robot**: while the e-stop (or any safety latch) is set, a
  reset is refused with the latch's reason; no seed is used up.
- **An episode that runs is not cut short** by another caller: refused, saying which
  episode runs and how many control periods it has left.
- **An episode starts when its goal arrives.** Until then the robot holds (the twin does not
  step, a driver applies no command) for at most the goal timeout, after which it moves
  again but the episode is still not started. A reset of an episode that has not started
  answers that same episode again: same seed, and nothing moves unless the robot moved
  since (then the scene is reset to the same seed again). A reset from outside, at start-up
  or between two of the task node's episodes, therefore never shifts the task node's
  seeds: episode k keeps seed + k.
- Otherwise the next episode starts: seed + k, where k counts the episodes reset to.

`plan` decides without changing anything; `commit` records a plan once the robot carried
it out (a device may still refuse the scene reset, and then no seed is used up).
"""  # noqa: E501

from __future__ import annotations

from dataclasses import dataclass

from sim.errors import TwinbridgeError


class ResetRefused(TwinbridgeError, ValueError):
    """A reset the robot will not serve now; `reason` is a counter key, the message the why."""

    def __init__(self, reason: str, detail: str):
        self.reason = reason
        super().__init__(detail)


@dataclass(frozen=True)
class ResetPlan:
    """What a reset does: reset the scene to `seed` for episode `episode`, or answer it."""

    seed: int
    episode: int
    repeat: bool  # the episode awaiting its goal, answered again
    move: bool  # the scene must be reset to `seed` (false: nothing moves)


class EpisodeGate:
    """A robot's episodes: seeds, the goal wait, and whether a reset may be served."""

    def __init__(self, seed: int, episode_steps: int | None):
        if episode_steps is not None and episode_steps < 1:
            raise ValueError(f"episode_steps must be >= 1 or None, got {episode_steps}")
        self.seed = seed
        self.episode_steps = episode_steps  # None: unknown (no task), resets never wait
        self.started = 0  # episodes started so far
        self._current: int | None = None
        self._awaiting_goal = False
        self._holding = False  # awaiting the goal and the goal timeout has not passed
        self._periods = 0  # control periods since the current episode's reset

    @property
    def awaiting_goal(self) -> bool:
        """The current episode has not started (its goal has not arrived)."""
        return self._awaiting_goal

    @property
    def holding(self) -> bool:
        """The robot holds still for the goal: the twin does not step, a driver moves not."""
        return self._holding

    @property
    def running(self) -> bool:
        """An episode has its goal and has not yet run its length. The task node judges an
        episode on its state `episode_steps` periods after the first, so its next reset
        always comes after the robot counted that many."""
        if self._current is None or self._awaiting_goal or self.episode_steps is None:
            return False
        return self._periods < self.episode_steps

    def plan(self, latch_reason: str | None) -> ResetPlan:
        """The reset to carry out now, or `ResetRefused`; changes nothing."""
        if latch_reason:
            raise ResetRefused(
                "latched",
                f"reset refused: {latch_reason}; nothing moves a latched robot: release it "
                "with the 'enable' service, then reset",
            )
        if self._current is not None and self._awaiting_goal:
            # Past the goal timeout the robot moves again: reset its scene to the seed again.
            return ResetPlan(
                self.seed + self._current, self._current, repeat=True, move=not self._holding
            )
        if self.running:
            left = self.episode_steps - self._periods if self.episode_steps else 0
            raise ResetRefused(
                "episode_running",
                f"reset refused: episode {self._current} (seed {self.seed + (self._current or 0)})"
                f" is running, {left} control periods left; a reset is served between episodes",
            )
        return ResetPlan(self.seed + self.started, self.started, repeat=False, move=True)

    def commit(self, plan: ResetPlan) -> None:
        """The robot carried out `plan`: the episode now awaits its goal, holding."""
        if not plan.move:
            return
        self._current, self.started = plan.episode, max(self.started, plan.episode + 1)
        self._awaiting_goal = self._holding = True
        self._periods = 0

    def goal_arrived(self) -> None:
        """The episode's goal is known: the episode runs."""
        self._awaiting_goal = self._holding = False

    def goal_overdue(self) -> None:
        """No goal within the timeout: the robot moves again; the episode has not started."""
        self._holding = False

    def period_passed(self) -> None:
        """One more control period of the robot (the twin stepped once)."""
        self._periods += 1

    def periods_elapsed(self, periods: int) -> None:
        """`periods` control periods of wall time since the robot stopped holding for the
        goal (a driver: its device moves whether or not a state was published)."""
        self._periods = max(self._periods, periods)
