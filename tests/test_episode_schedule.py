"""task_node's start-up waits, retries and reports without ROS (sim/episode_schedule.py,
sim/episodes.py), on a fake clock."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sim.episode_schedule import COMMANDER_SETTLE_S, RETRY_S, WAIT_LOG_S, EpisodeSchedule
from sim.episodes import EpisodeJudge, EpisodeResult, parse_reset_answer


def test_a_wait_is_said_once_after_it_lasted() -> None:
    schedule = EpisodeSchedule(timeout_s=10.0, report_readers=0, now_s=0.0)
    assert schedule.wait(1.0, "latched") is None and schedule.said == ""
    assert schedule.wait(1.0 + WAIT_LOG_S, "latched") == "waiting: latched"
    assert schedule.said == "latched"
    assert schedule.wait(5.0, "latched") is None, "said once"
    schedule.started()
    assert schedule.said == "" and schedule.wait(6.0, "again") is None


def test_a_refused_reset_is_asked_again_after_the_retry_period() -> None:
    schedule = EpisodeSchedule(timeout_s=10.0, report_readers=0, now_s=0.0)
    assert schedule.may_ask(0.0)
    schedule.refused(1.0, "an episode runs")
    assert not schedule.may_ask(1.0) and schedule.may_ask(1.0 + RETRY_S)


def test_the_first_episode_waits_for_a_settled_commander_or_the_timeout() -> None:
    schedule = EpisodeSchedule(timeout_s=10.0, report_readers=0, now_s=0.0)
    assert not schedule.commander_ready(1.0, present=True)
    assert not schedule.commander_ready(2.0, present=False), "gone: settles again"
    assert not schedule.commander_ready(3.0, present=True)
    assert schedule.commander_ready(3.0 + COMMANDER_SETTLE_S, present=True)
    assert not EpisodeSchedule(10.0, 0, 0.0).commander_ready(9.0, present=False)
    assert EpisodeSchedule(10.0, 0, 0.0).commander_ready(10.5, present=False)


def test_the_first_episode_waits_for_its_report_readers_and_says_when_it_gives_up() -> None:
    schedule = EpisodeSchedule(timeout_s=10.0, report_readers=2, now_s=0.0)
    assert schedule.readers_ready(1.0, matched=1) == (False, "")
    assert schedule.readers_ready(1.0, matched=2) == (False, ""), "matched here, not yet there"
    assert schedule.readers_ready(2.0, matched=2) == (True, "")
    schedule = EpisodeSchedule(timeout_s=10.0, report_readers=2, now_s=0.0)
    # Readers may take longer than the reset service (they meet the graph first).
    assert schedule.readers_ready(11.0, matched=1) == (False, "")
    ready, line = schedule.readers_ready(31.0, matched=1)
    assert ready and line == "only 1 of 2 report readers after 30.0 s; starting anyway"
    assert schedule.readers_ready(32.0, matched=0) == (True, ""), "said once"


NOTED = {"seed": 3, "stamp_ns": 120}  # a note after the fields is not a field


@pytest.mark.parametrize(
    ("message", "fields"),
    [
        ("seed=3 stamp_ns=120", {"seed": 3, "stamp_ns": 120}),
        ("seed=3", {"seed": 3}),
        ("seed=3 stamp_ns=120 (the device cannot reset its scene)", NOTED),
        ("seed=three", None),
        ("stamp_ns=120", None),
        ("", None),
    ],
)
def test_reset_answers_are_parsed_or_refused(message: str, fields) -> None:
    assert parse_reset_answer(message) == fields


def test_episode_reports_carry_every_figure() -> None:
    judge = EpisodeJudge("fetch-reach")
    result = EpisodeResult(0, 7, True, 0.012345678, 50, answered_states=49, first_stamp_ns=5)
    judge.results.append(result)
    assert result.report(judge.successes) == {
        "episode": 0, "seed": 7, "success": True, "final_distance": 0.01235,
        "answered_states": 49, "first_judged_stamp_ns": 5, "last_judged_stamp_ns": 0,
        "steps": 50, "ended_by": "time", "paused_steps": 0, "paused_stamps_ns": "[]",
        "successes": "1",
    }  # fmt: skip
    assert judge.summary() == {"episodes": 1, "success_rate": 1.0, "successes": "1"}
    start = judge.start_report(8, np.array([1.0, 2.0, 3.0]), 99)
    assert start["episode"] == 1 and start["task"] == "fetch-reach" and start["robot"] == "fetch"
    assert json.loads(str(start["goal"])) == [1.0, 2.0, 3.0] and start["first_stamp_ns"] == 99
