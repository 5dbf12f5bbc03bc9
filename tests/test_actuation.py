"""The robot's actuation model (sim/actuation.py): one implementation of the driver's rate
limiter, the command delays and the device's setpoint ramp, used by the safety layer, the
emulator and the training twin. Here the twin's compiled command path is held to the
hardware code itself (hardware.safety.SafetyLayer stepped at the driver's cycle, the
emulator's ramp), bit for bit; tests/test_actuation_shared.py compares the twin with
driver_node + serial + emulator over ROS.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from hardware.robots import robot_tables
from hardware.safety import SafetyConfig, SafetyLayer
from sim.actuation import (
    WATCHDOG_S,
    ActuationConfig,
    CommandPath,
    RateLimits,
    compiled,
    ramp_step,
    rate_limited_step,
)
from sim.envs import make_task_env
from sim.errors import ConfigError
from sim.randomization.actuation import ACTUATION_PARAMETERS, MAX_DELAY_CYCLES, MAX_LATENCY_MS
from sim.randomization.config import RandomizationConfig
from sim.randomization.engine import EpisodeRandomizer

DT = 0.002  # the Fetch model's timestep
CYCLE_STEPS = 5


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _reference(limits, config: ActuationConfig, start, commands, steps_per_command):
    """The hardware's command path, from the hardware's own code: a SafetyLayer stepped
    every driver cycle (measuring its own command: an ideal servo), the emulator's latency
    and ramp. Commands are issued every `steps_per_command` physics steps."""
    clock = FakeClock()
    layer = SafetyLayer(limits, SafetyConfig(period_s=config.cycle_period_s), clock)
    delay = config.command_delay_cycles * CYCLE_STEPS
    latency = round(config.link_latency_s / DT)
    speed = limits.velocity_max.astype(np.float32).astype(np.float64) * DT
    sent, in_flight, goal, setpoint = start.copy(), [], start.copy(), start.copy()
    rows = []
    for step in range(len(commands) * steps_per_command):
        issued = step - delay
        if issued >= 0 and issued % steps_per_command == 0:
            layer.set_target(commands[issued // steps_per_command])
        if step % CYCLE_STEPS == 0:
            command = layer.next_command(sent, np.zeros_like(sent), np.zeros_like(sent))
            if command.positions is not None:
                sent = command.positions.copy()
                in_flight.append((step + latency, sent))
        while in_flight and in_flight[0][0] <= step:
            goal = in_flight.pop(0)[1]
        setpoint = ramp_step(setpoint, goal, speed)
        rows.append(setpoint)
        clock.now += DT
    return np.array(rows)


def _commands(limits, rng: np.random.Generator, count: int) -> np.ndarray:
    """Targets that jump across a third of each joint's range, so limits bind."""
    middle = (limits.position_min + limits.position_max) / 2
    span = np.minimum(limits.position_max - limits.position_min, 2.0)
    return middle + rng.uniform(-span / 3, span / 3, (count, len(middle)))


@pytest.mark.parametrize(
    "config",
    [ActuationConfig(), ActuationConfig(command_delay_cycles=0, link_latency_s=0.0),
     ActuationConfig(command_delay_cycles=3, link_latency_s=0.012, velocity_scale=0.6)],
    ids=["nominal", "no-delay", "slow-late"],
)  # fmt: skip
def test_the_twins_command_path_is_the_safety_layer_and_the_devices_ramp(config) -> None:
    limits = robot_tables("fetch").limits
    scaled = limits.with_overrides({})  # a copy; the scales apply below
    if config.velocity_scale != 1.0:
        overrides = {n: {"velocity_max": float(v * config.velocity_scale)}
                     for n, v in zip(limits.names, limits.velocity_max, strict=True)}  # fmt: skip
        scaled = limits.with_overrides(overrides)
    rng = np.random.default_rng(3)
    commands = _commands(limits, rng, 12)
    start = (limits.position_min + limits.position_max) / 2
    path = CommandPath.for_robot("fetch", DT, config)
    path.reset(start)
    rows = np.concatenate([path.setpoints(target, 20) for target in commands])
    expected = _reference(scaled, config, start, commands, 20)
    np.testing.assert_allclose(rows, expected, rtol=0, atol=1e-12)
    assert np.abs(np.diff(rows, axis=0)).max() > 0.5 * DT  # it moved, at speed


def test_the_compiled_limiter_is_the_driver_paths_limiter() -> None:
    fast = compiled("rate_limited_step")
    rng = np.random.default_rng(0)
    for _ in range(200):
        n = 8
        low = rng.uniform(-3, -0.5, n)
        high = rng.uniform(0.5, 3, n)
        limits = RateLimits(rng.uniform(0.1, 3, n), rng.uniform(1, 20, n), low + 0.01,
                            high - 0.01, low, high)  # fmt: skip
        q, v = rng.uniform(low, high), rng.uniform(-2, 2, n)
        target = rng.uniform(low - 0.5, high + 0.5)
        plain = rate_limited_step(q, v, target, limits, 0.01)
        jitted = fast(q, v, target, np.array(limits), 0.01)  # the twin passes one array
        np.testing.assert_array_equal(plain[0], jitted[0])
        np.testing.assert_array_equal(plain[1], jitted[1])


def test_a_hold_stops_the_path_at_once_and_drops_what_is_in_flight() -> None:
    path = CommandPath.for_robot("fetch", DT)
    start = np.zeros(8) + 0.01
    path.reset(start)
    path.setpoints(start + 0.5, 20)
    moving = path.setpoints(start + 0.5, 20)[-1]
    path.hold(moving)
    after = path.setpoints(start + 0.5, 20)  # the same command again: not a new one
    assert np.array_equal(after[0], moving)


def test_the_twin_steps_through_the_path_and_keeps_the_commanded_targets_in_ctrl() -> None:
    env = make_task_env("fetch-reach")
    env.reset(seed=0)
    twin = env.unwrapped.twin
    assert twin.command_path is not None and env.unwrapped.actuation.model == "robot"
    ids, lift = np.arange(8), twin.qpos_indices(["shoulder_lift_joint"])[0]
    start = float(twin.data.qpos[lift])
    target = twin.data.ctrl[ids].copy()
    target[1] -= 0.4  # shoulder_lift
    twin.data.ctrl[ids] = target
    twin.step(nstep=20)
    assert np.array_equal(twin.data.ctrl[ids], target)  # ctrl is the command, not setpoints
    # One 40 ms control step: the cycle at 0 ms still has the old target (one cycle of
    # delay); the cycles at 10, 20 and 30 ms accelerate at 10 rad/s^2 from rest.
    np.testing.assert_allclose(twin.command_path.sent[1] - start, -0.1 * 0.01 * (1 + 2 + 3))
    assert -0.006 < float(twin.data.qpos[lift]) - start < 0.0  # the servo follows, behind
    ideal = make_task_env("fetch-reach-v0")
    assert ideal.unwrapped.twin.command_path is None


def test_the_same_seed_gives_the_same_jittered_episode() -> None:
    config = ActuationConfig(command_jitter_cycles=2)
    runs = []
    for _ in range(2):
        path = CommandPath(CommandPath.for_robot("fetch", DT).limits, config, DT)
        path.reset(np.zeros(8) + 0.01, seed=7)
        runs.append(np.concatenate([path.setpoints(np.full(8, t), 20) for t in (0.3, -0.2, 0.1)]))
    np.testing.assert_array_equal(runs[0], runs[1])


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"velocity_scale": -1.0}, "velocity_scale = -1.0: give a finite number > 0"),
        ({"command_delay_cycles": 1.5}, "command_delay_cycles: expected an integer, got 1.5"),
        ({"command_delay_cycles": 9, "link_latency_s": 0.02}, "not below the driver's 0.1 s"),
        ({"model": "perfect"}, "actuation model 'perfect': use one of robot, ideal"),
        ({"latency": 1}, "latency"),
    ],
)
def test_a_bad_actuation_is_refused_naming_the_value(values, message) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(".", r"\.")):
        ActuationConfig.from_mapping(values, "my-actuation.yaml")


def test_no_legal_randomization_reaches_the_watchdog() -> None:
    by_path = {p.path: p for p in ACTUATION_PARAMETERS}
    worst = ActuationConfig(
        command_delay_cycles=int(by_path["actuation.command_delay:cycles"].legal_high),
        command_jitter_cycles=int(by_path["actuation.command_jitter:cycles"].legal_high),
        link_latency_s=by_path["actuation.link_latency:ms"].legal_high / 1e3,
    )
    assert worst.longest_delay_s < WATCHDOG_S
    assert (MAX_DELAY_CYCLES, MAX_LATENCY_MS) == (4, 19.0)
    assert SafetyConfig().command_timeout_s == WATCHDOG_S  # the watchdog it is checked against


def test_actuation_randomization_changes_the_path_per_episode_and_restores_it() -> None:
    env = make_task_env("fetch-push").unwrapped
    config = RandomizationConfig(
        ranges={"actuation.velocity_limit:scale": (0.5, 0.5),
                "actuation.command_delay:cycles": (3, 3)},
    )  # fmt: skip
    randomizer = EpisodeRandomizer(env.twin, env.task, config)
    randomizer.apply(randomizer.sample(np.random.default_rng(0)), np.random.default_rng(0))
    path = env.twin.command_path
    assert path.config.velocity_scale == 0.5 and path.config.command_delay_cycles == 3
    nominal = robot_tables("fetch").limits.velocity_max
    np.testing.assert_allclose(path.limits.velocity_max, 0.5 * nominal)
    randomizer.restore()
    assert path.config == ActuationConfig()


def test_an_ideal_twin_refuses_actuation_randomization_by_name() -> None:
    env = make_task_env("fetch-push-v0").unwrapped
    config = RandomizationConfig(ranges={"actuation.link_latency:ms": (0, 5)}, source="r.yaml")
    message = re.escape("r.yaml: actuation.link_latency:ms cannot be randomized on fetch/push")
    with pytest.raises(ConfigError, match=message):
        EpisodeRandomizer(env.twin, env.task, config)


def test_the_compiled_steps_are_the_python_steps_bit_for_bit() -> None:
    """sim/twin.py steps a command path's runs from compiled code (libmujoco's mj_step);
    the Python loop over `mujoco.mj_step` gives the very same states."""
    import sim.twin as twin_module

    def observations(compiled: bool) -> np.ndarray:
        saved = list(twin_module._RUNS)
        twin_module._RUNS[:] = [twin_module._build_runs() if compiled else None]
        try:
            env = make_task_env("fetch-push")
            env.reset(seed=3)
            rng = np.random.default_rng(1)
            return np.array([env.step(rng.uniform(-1, 1, 4))[0]["observation"]
                             for _ in range(120)])  # fmt: skip
        finally:
            twin_module._RUNS[:] = saved

    assert twin_module._build_runs() is not None, "libmujoco not found beside the bindings"
    np.testing.assert_array_equal(observations(True), observations(False))
