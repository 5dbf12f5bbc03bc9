"""Contract conformance (issue 15): a client written from the README alone
(tests/contract_client.py: rclpy and standard messages only, in this test's process) joins
`twinbridge sim` at start-up, against the twin and against the serial driver path to the
emulator, and calls the services in hostile orders. Every promise of the contract table
that the script touches is asserted here."""

from __future__ import annotations

import json

import pytest
from contract_client import SEED, Findings, run
from ros_processes import private_domain

EPISODES = 5


@pytest.fixture(scope="module", params=["twin", "emulator"])
def findings(request) -> Findings:
    return run(request.param, EPISODES, external_resets=12, estop_episodes=1.5,
               domain=private_domain())  # fmt: skip


def test_the_bringup_ends_with_every_episode_it_asked_for(findings: Findings) -> None:
    assert findings.returncode == 0, findings.stderr[-3000:]
    assert json.loads(findings.stdout.splitlines()[-1])["episodes"] == EPISODES
    assert len(findings.episodes) == EPISODES


def test_a_latched_robot_does_not_move_and_refuses_resets(findings: Findings) -> None:
    assert findings.estop_applied_change_rad == 0.0  # commanded motion: none at all
    assert findings.estop_measured_change_rad < 0.01  # measured: settling only
    ok, why = findings.estop_reset_answer
    assert not ok and "nothing moves a latched robot" in why and "'enable'" in why
    ok, why = findings.estop_release_answer
    assert not ok and "enable" in why
    assert findings.episodes_started_while_latched == 0
    assert findings.task_waiting_level == 1 and "e-stop" in findings.task_waiting_reason
    assert findings.robot_level_latched == 2  # ERROR where the latch is (ros_ws/health.py)


def test_external_resets_are_refused_or_served_and_seeds_stay_seed_plus_k(
    findings: Findings,
) -> None:
    for ok, answer in findings.external_resets:
        assert ok or "is running" in answer, answer
    # Start markers published before this client's reader matched are not seen by it.
    seeds = [int(m["seed"]) for m in findings.start_markers]
    assert seeds == list(range(seeds[0], seeds[0] + len(seeds))), seeds
    judged = [int(e["seed"]) for e in findings.episodes]  # an e-stop pauses, never skips
    assert judged == list(range(SEED, max(seeds) + 1)), judged


def test_the_robot_never_stops_publishing(findings: Findings) -> None:
    assert findings.longest_state_gap_s < 2.5  # at most the goal wait after a reset
    if findings.longest_clock_gap_s:  # the twin's sim time
        assert findings.longest_clock_gap_s < 2.5


def test_partial_and_malformed_commands_are_counted_never_applied(findings: Findings) -> None:
    assert findings.rejected.get("rejected_partial_joints") == 2
    assert findings.rejected.get("rejected_unknown_joint") == 1
    assert findings.rejected.get("rejected_non_finite") == 1


def test_episode_0_is_answered_although_a_client_joined_at_start_up(findings: Findings) -> None:
    assert findings.answered_in_episode_0 >= 40  # of the 50 states before its last


def test_estop_enable_storms_end_in_the_last_requested_state(findings: Findings) -> None:
    assert findings.storm_answers and all(findings.storm_answers)
    assert findings.estop_state_after_storm is False


def test_no_node_logs_an_alarm(findings: Findings) -> None:
    for name, text in findings.logs.items():
        for word in ("FATAL", "Traceback", "Segmentation fault"):
            assert word not in text, f"{name}: {word}\n{text[-2000:]}"
