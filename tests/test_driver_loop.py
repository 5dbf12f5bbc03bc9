"""driver_node's core without ROS: `DriverLoop` over the sim backend, and `DriverSettings`.

    .venv/bin/pytest -q tests/test_driver_loop.py

The loop is what driver_node runs between its lifecycle transitions: here it is driven
through them by hand, its outputs collected by a stand-in for the node.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from hardware.driver_loop import MAX_COMMAND_NAMES, DriverLoop
from hardware.driver_settings import DriverSettings
from sim.contract.command_rules import CommandRejected
from sim.errors import ConfigError


class Outputs:
    """What driver_node is to the loop: publisher, rejection counter, logger."""

    def __init__(self) -> None:
        self.counters: Counter[str] = Counter()
        self.states: list[tuple[int, object, object]] = []
        self.rejected: list[CommandRejected] = []
        self.lines: list[str] = []

    def publish_state(self, stamp_ns: int, measured: object, sent: object) -> None:
        self.states.append((stamp_ns, measured, sent))

    def reject(self, error: CommandRejected) -> None:
        self.rejected.append(error)

    def get_logger(self) -> SimpleNamespace:
        return SimpleNamespace(error=self.lines.append, info=self.lines.append)


@pytest.fixture
def loop(tmp_path: Path):
    settings = DriverSettings(backend="sim", estop_latch_path=str(tmp_path / "estop.json"))
    outputs = Outputs()
    loop = DriverLoop.configure(settings, outputs)
    try:
        yield loop, outputs
    finally:
        loop.close()


def _wait(predicate, timeout_s: float = 10.0) -> None:
    end = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.01)


def test_states_flow_only_while_active_at_the_publish_rate(loop) -> None:
    loop, outputs = loop
    time.sleep(0.2)
    assert outputs.states == [], "a configured, inactive driver publishes no state"
    loop.activate()
    _wait(lambda: len(outputs.states) >= 10)
    stamps = [stamp for stamp, _, _ in outputs.states[-10:]]
    period_s = float(np.median(np.diff(stamps))) * 1e-9
    assert period_s == pytest.approx(loop.state_period_s, rel=0.3)
    loop.deactivate()
    count = len(outputs.states)
    time.sleep(0.2)
    assert len(outputs.states) == count
    assert loop.diagnostics()["cycle_overruns"] == 0


def test_the_newest_command_wins_and_is_validated_in_the_cycle(loop) -> None:
    loop, outputs = loop
    loop.activate()
    _wait(lambda: len(outputs.states) >= 2)
    stamp_ns = outputs.states[-1][0]
    limits = loop.core.interface.limits
    middle = (limits.position_min + limits.position_max) / 2
    targets = dict(zip(loop.command_names, middle.tolist(), strict=True))
    calls: list[float] = []

    def targets_of(now_s: float, rules) -> dict[str, float]:
        calls.append(now_s)
        return targets

    loop.deactivate()  # no cycle: the two commands meet in the mailbox
    loop.submit(lambda now_s, rules: {}, stamp_ns, 1, [])
    loop.submit(targets_of, stamp_ns, len(targets), [])
    assert outputs.counters["commands_superseded"] == 1 and calls == []
    loop.activate()
    _wait(lambda: outputs.counters["commands_accepted"] == 1)
    assert len(calls) == 1 and outputs.rejected == []


def test_an_oversized_command_is_refused_on_arrival(loop) -> None:
    loop, outputs = loop
    point = SimpleNamespace(positions=[0.0] * (MAX_COMMAND_NAMES + 1))
    loop.submit(lambda now_s, rules: {}, 0, 1, [point])
    loop.submit(lambda now_s, rules: {}, 0, MAX_COMMAND_NAMES + 1, [])
    assert [e.reason for e in outputs.rejected] == ["oversized", "oversized"]
    assert loop._pending is None


def test_a_failure_inside_the_cycle_latches_the_estop(loop) -> None:
    loop, outputs = loop
    loop.activate()

    def broken(now_s: float, rules) -> dict[str, float]:
        raise RuntimeError("boom")

    loop.submit(broken, 0, 1, [])
    _wait(lambda: outputs.counters["driver_errors"] == 1)
    _wait(lambda: any("boom" in line for line in outputs.lines))
    assert loop.core.interface.safety.estopped and "boom" in loop.core.status


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"backend": "usb"}, "backend"),
        ({"safe_state": "limp"}, "safe_state"),
        ({"task": "fetch-fly"}, "task"),
        ({"cycle_rate_hz": 0.0}, "cycle_rate_hz"),
        ({"command_timeout_s": float("nan")}, "command_timeout_s"),
        ({"publish_rate_hz": 200.0}, "publish_rate_hz"),
    ],
)
def test_driver_settings_refuse_bad_values_naming_the_field(change, named) -> None:
    with pytest.raises(ConfigError, match=named):
        DriverSettings(**change)


def test_a_latched_driver_counts_no_deadline_misses(loop) -> None:
    """While the e-stop is latched commanders hold: the states left unanswered then are
    not missed deadlines (the driver path's half of the e-stop pausing the episode)."""
    loop, outputs = loop
    loop.activate()
    _wait(lambda: len(outputs.states) >= 2)
    limits = loop.core.interface.limits
    middle = ((limits.position_min + limits.position_max) / 2).tolist()
    targets = dict(zip(loop.command_names, middle, strict=True))
    loop.submit(lambda now_s, rules: targets, outputs.states[-1][0], len(targets), [])
    _wait(lambda: outputs.counters["commands_accepted"] == 1)  # misses count from here on
    loop.core.estop("test")
    _wait(lambda: len(outputs.states) >= 20)
    time.sleep(5 * loop.latency.deadline_s)
    outputs.states.clear()
    _wait(lambda: len(outputs.states) >= 5)
    assert loop.core.status, "the e-stop is latched"
    assert loop.diagnostics()["deadline_misses"] == 0
