"""Every robot's checked-in tables (sim/robots/<robot>/robot.yaml) against its compiled model,
and the robot side reading them without a physics engine."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from sim.errors import ConfigError, UnknownNameError
from sim.robots import ROBOT_FOLDERS, description_from_mapping, get_robot
from sim.robots.models import load_model, scenes
from sim.robots.tables import differences, draft, measure


@pytest.mark.parametrize("robot", ROBOT_FOLDERS)
def test_robot_yaml_agrees_with_the_model(robot: str) -> None:
    assert differences(get_robot(robot)) == []


@pytest.mark.parametrize("robot", ROBOT_FOLDERS)
def test_every_scene_holds_the_same_robot(robot: str) -> None:
    """The tables are measured on the first scene; every other scene must agree."""
    description = get_robot(robot)
    for scene in scenes(robot):
        model = load_model(robot, scene)
        for name in (*description.joints, *description.command_actuators):
            assert model.joint(name) if name in description.joints else model.actuator(name)
        for camera in description.cameras:
            model.camera(camera)  # every declared camera exists in every scene
    assert measure(description).joints == description.joints


@pytest.mark.parametrize("robot", ROBOT_FOLDERS)
def test_velocity_and_acceleration_limits_are_finite(robot: str) -> None:
    """The model has no velocity limits: robot.yaml must give a finite one per channel."""
    for command in get_robot(robot).commands:
        assert 0 < command.velocity_max < float("inf")
        assert 0 < command.acceleration_max < float("inf")


def test_a_changed_limit_is_reported_by_name() -> None:
    fetch = get_robot("fetch")
    raw = {
        "namespace": fetch.namespace, "device_model": fetch.device_model,
        "source": fetch.source, "emulator_task": fetch.emulator_task,
        "default_task": fetch.default_task,
        "safe_state": fetch.safe_state, "joints": list(fetch.joints),
        "servo_from_joints": [list(r) for r in fetch.servo_from_joints],
        "commands": [
            {"name": c.name, "actuator": c.actuator, "position": [c.position_min, c.position_max],
             "velocity_max": c.velocity_max, "acceleration_max": c.acceleration_max,
             "effort_max": c.effort_max}
            for c in fetch.commands
        ],
    }  # fmt: skip
    raw["commands"][3]["position"] = [-2.0, 2.251]
    problems = differences(description_from_mapping("fetch", raw, "test"))
    assert problems == [f"elbow_flex_joint.position_min: robot.yaml -2.0, model {-2.251}"]


def test_bad_descriptions_name_the_file_and_the_fix() -> None:
    with pytest.raises(ConfigError, match=r"x\.yaml: missing key 'servo_from_joints'"):
        description_from_mapping("r", {"commands": []}, "x.yaml")
    with pytest.raises(UnknownNameError, match=r"valid robots: .*fetch"):
        get_robot("no_such_robot")


@pytest.mark.parametrize("robot", ROBOT_FOLDERS)
def test_the_draft_of_a_robot_yaml_measures_what_the_checked_in_one_says(robot: str) -> None:
    """`python -m sim.robots.tables <robot> --draft`: a new robot's first robot.yaml."""
    drafted, description = yaml.safe_load(draft(robot)), get_robot(robot)
    assert tuple(drafted["joints"]) == description.joints
    np.testing.assert_allclose(drafted["servo_from_joints"], description.servo_from_joints)
    commands = {c["actuator"]: c for c in drafted["commands"]}
    for command in description.commands:
        entry = commands[command.actuator]
        assert entry["position"] == pytest.approx([command.position_min, command.position_max])
        assert entry["effort_max"] == pytest.approx(command.effort_max)
        assert np.isnan(entry["velocity_max"])  # the author's to fill in
