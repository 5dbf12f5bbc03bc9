"""Parameter files, discovery settings (R21) and launch files, checked without DDS.

The launch files are standard ROS 2 launch files; the `launch` and `launch_ros` packages
are not on PyPI, so minimal stand-ins record what the files would start. That is enough to
check that they start the same nodes with the same parameters as `twinbridge sim`.

R21: see hardware/RELIABILITY.md.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import types
from dataclasses import fields
from pathlib import Path

import pytest

from hardware.driver_settings import DriverSettings
from ros_ws.bringup_plan import (
    EMULATOR_NODES,
    ROBOT_CONFIG,
    ROBOT_NODES,
    SIM_CONFIG,
    SIM_NODES,
    plan,
)
from ros_ws.discovery import HOST_ONLY_PROFILE, lint_environment, sim_environment
from ros_ws.node_configs import (
    FILE_KEY,
    NODE_CONFIGS,
    DriverNodeConfig,
    ParameterFileError,
    TeleopNodeConfig,
    load_node_parameters,
    node_config,
    parameter_defaults,
)

ROOT = Path(__file__).resolve().parents[1]
LAUNCH_DIR = ROOT / "ros_ws" / "launch"


# -- parameter files ------------------------------------------------------------------
@pytest.mark.parametrize("config", [SIM_CONFIG, ROBOT_CONFIG])
def test_shipped_parameter_files_are_valid_for_every_node(config: Path) -> None:
    nodes = SIM_NODES if config == SIM_CONFIG else ROBOT_NODES
    for launch in plan(nodes, config):
        node_config(NODE_CONFIGS[launch.name], launch.parameters(), config)


@pytest.mark.parametrize("config", [SIM_CONFIG, ROBOT_CONFIG])
def test_the_shipped_policy_node_filters_the_object_as_the_training_twin_does(config) -> None:
    """The sensor randomization (sim/randomization/sensors.py) trains policies on the object
    estimate's defaults: a shipped file that filtered otherwise would not be what they saw."""
    from sim.object_estimate import ObjectEstimateConfig

    nodes = SIM_NODES if config == SIM_CONFIG else ROBOT_NODES
    (policy,) = [launch for launch in plan(nodes, config) if launch.name == "policy_node"]
    node = node_config(NODE_CONFIGS["policy_node"], policy.parameters(), config)
    assert node.object_estimate == ObjectEstimateConfig()


BAD_FILES = {
    "unknown key": ("twin_node:\n  ros__parameters:\n    tsak: fetch-push\n", "tsak"),
    "wrong type": ("task_node:\n  ros__parameters:\n    episodes: ten\n", "episodes"),
    "bad value": ("task_node:\n  ros__parameters:\n    episodes: -1\n", "episodes"),
    "unknown task": ("twin_node:\n  ros__parameters:\n    task: fetch-fly\n", "task"),
    "no ros__parameters": ("twin_node:\n  task: fetch-push\n", "twin_node"),
    "not yaml": ("twin_node: [unclosed\n", FILE_KEY),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_parameter_files_name_the_file_and_the_key(case: str, tmp_path: Path) -> None:
    text, key = BAD_FILES[case]
    path = tmp_path / "params.yaml"
    path.write_text(text)
    with pytest.raises(ParameterFileError) as caught:
        plan(SIM_NODES, path)
    assert caught.value.key == key and str(path) in str(caught.value)


def test_a_missing_parameter_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ParameterFileError, match=r"parameter file .* does not exist"):
        load_node_parameters(tmp_path / "nope.yaml", "twin_node")


def test_nodes_that_disagree_on_the_task_are_refused() -> None:
    with pytest.raises(ParameterFileError, match="disagree"):
        plan(SIM_NODES, SIM_CONFIG, {"task_node": {"task": "fetch-reach"}})


def test_node_specific_sections_override_the_wildcard(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(
        "/**:\n  ros__parameters:\n    episodes: 3\n"
        "task_node:\n  ros__parameters:\n    episodes: 5\n"
    )
    assert load_node_parameters(path, "task_node")["episodes"] == 5


def test_node_parameters_are_declared_once_from_the_core_dataclasses() -> None:
    """driver_node's and teleop_node's parameters are their cores' fields (flat, as the
    YAML files have them) plus the node's own; no name is written twice."""
    driver = parameter_defaults(DriverNodeConfig)
    settings = {f.name for f in fields(DriverSettings)}
    node_only = {"bridge_state_topic", "bridge_command_topic", "autostart", "diagnostics_rate_hz"}
    assert set(driver) == settings | node_only
    teleop = parameter_defaults(TeleopNodeConfig)
    assert {"max_speed_m_s", "gamepad_index", "deadzone", "key_hold_s"} <= set(teleop)
    assert teleop["control_rate_hz"] == 0.0  # the node's own (0: the task's rate)
    for cls in NODE_CONFIGS.values():
        parameter_defaults(cls)  # a name declared twice raises
    config = node_config(DriverNodeConfig, {"port": "/dev/x", "cycle_rate_hz": 200}, "p.yaml")
    assert config.driver.port == "/dev/x" and config.driver.cycle_rate_hz == 200.0


CORE_ERRORS: dict[str, tuple[str, dict[str, object], str]] = {
    "driver range": ("driver_node", {"publish_rate_hz": 500.0}, "publish_rate_hz"),
    "driver choice": ("driver_node", {"safe_state": "limp"}, "safe_state"),
    "driver type": ("driver_node", {"baudrate": "fast"}, "baudrate"),
    "teleop range": ("teleop_node", {"max_speed_m_s": -1.0}, "max_speed_m_s"),
    "teleop type": ("teleop_node", {"gamepad_index": "one"}, "gamepad_index"),
    "misspelled": ("driver_node", {"prot": "/dev/x"}, "prot"),
}


@pytest.mark.parametrize("case", sorted(CORE_ERRORS))
def test_core_parameters_are_checked_by_the_core_naming_the_key(case: str) -> None:
    node, parameters, key = CORE_ERRORS[case]
    with pytest.raises(ParameterFileError) as caught:
        node_config(NODE_CONFIGS[node], parameters, "p.yaml")
    assert caught.value.key == key and "\n" not in str(caught.value)


def test_a_misspelled_driver_parameter_is_refused_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(
        "/**:\n  ros__parameters:\n    use_sim_time: false\n"
        "driver_node:\n  ros__parameters:\n    baud_rate: 115200\n"
    )
    with pytest.raises(ParameterFileError) as caught:
        plan(EMULATOR_NODES, path)
    message = str(caught.value)
    assert caught.value.key == "baud_rate" and str(path) in message and "\n" not in message


# -- discovery (R21) -----------------------------------------------------------------
GOOD_ROBOT_ENV = {
    "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
    "ROS_DOMAIN_ID": "42",
    "ROS_SECURITY_ENABLE": "true",
    "ROS_SECURITY_STRATEGY": "Enforce",
}


def test_sim_environment_fails_closed() -> None:
    env = sim_environment(7, base={"ROS_LOCALHOST_ONLY": "1", "PATH": "/bin"})
    assert env["FASTDDS_DEFAULT_PROFILES_FILE"] == str(HOST_ONLY_PROFILE)
    assert env["ROS_DOMAIN_ID"] == "7" and "ROS_LOCALHOST_ONLY" not in env
    assert lint_environment(env, "sim") == []
    with pytest.raises(ValueError, match="ROS_DOMAIN_ID"):
        sim_environment(300, base={})


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"ROS_AUTOMATIC_DISCOVERY_RANGE": "SUBNET"}, "ROS_AUTOMATIC_DISCOVERY_RANGE"),
        ({"ROS_AUTOMATIC_DISCOVERY_RANGE": None}, "ROS_AUTOMATIC_DISCOVERY_RANGE"),
        ({"ROS_DOMAIN_ID": "102"}, "ROS_DOMAIN_ID"),
        ({"ROS_DOMAIN_ID": None}, "ROS_DOMAIN_ID"),
        ({"ROS_LOCALHOST_ONLY": "1"}, "ROS_LOCALHOST_ONLY"),
        ({"ROS_SECURITY_ENABLE": None}, "ROS_SECURITY_ENABLE"),
        ({"ROS_SECURITY_STRATEGY": "Permissive"}, "ROS_SECURITY_STRATEGY"),
    ],
)
def test_robot_environment_lint_fails_on_every_deviation(change, needle) -> None:
    assert lint_environment(GOOD_ROBOT_ENV, "robot") == []
    env = {**GOOD_ROBOT_ENV, **change}
    env = {k: v for k, v in env.items() if v is not None}
    problems = lint_environment(env, "robot")
    assert len(problems) == 1 and needle in problems[0]


def test_a_fastdds_profile_counts_as_host_only_only_if_it_is(tmp_path: Path) -> None:
    env = {**GOOD_ROBOT_ENV, "ROS_AUTOMATIC_DISCOVERY_RANGE": "SYSTEM_DEFAULT"}
    assert (
        lint_environment({**env, "FASTDDS_DEFAULT_PROFILES_FILE": str(HOST_ONLY_PROFILE)}, "robot")
        == []
    )
    text = HOST_ONLY_PROFILE.read_text()
    for change, needle in (
        (('name="127.0.0.1"', 'name="eth0"'), "not limited to the loopback"),
        (("<useBuiltinTransports>false", "<useBuiltinTransports>true"), "useBuiltinTransports"),
        (("<dds ", "<broken "), "unreadable"),
    ):
        bad = tmp_path / "profile.xml"
        bad.write_text(text.replace(*change))
        problems = lint_environment({**env, "FASTDDS_DEFAULT_PROFILES_FILE": str(bad)}, "robot")
        assert len(problems) == 1 and needle in problems[0], problems


def test_static_peers_may_replace_localhost_discovery() -> None:
    env = {**GOOD_ROBOT_ENV, "ROS_AUTOMATIC_DISCOVERY_RANGE": "SUBNET"}
    assert lint_environment({**env, "ROS_STATIC_PEERS": "10.0.0.2"}, "robot") == []


# -- launch files == twinbridge sim ---------------------------------------------------
class _Recorder:
    def __init__(self) -> None:
        self.nodes: list[dict] = []
        self.environment: dict[str, str] = {}


def _load_launch_file(path: Path, monkeypatch: pytest.MonkeyPatch) -> _Recorder:
    """Import a launch file with stand-ins for `launch` / `launch_ros`; record its actions."""
    recorder = _Recorder()
    launch = types.ModuleType("launch")
    launch.LaunchDescription = lambda actions: list(actions)  # type: ignore[attr-defined]
    actions = types.ModuleType("launch.actions")
    actions.SetEnvironmentVariable = lambda name, value: recorder.environment.__setitem__(  # type: ignore[attr-defined]
        name, value
    )
    launch_ros = types.ModuleType("launch_ros")
    ros_actions = types.ModuleType("launch_ros.actions")
    ros_actions.Node = lambda **kwargs: recorder.nodes.append(kwargs)  # type: ignore[attr-defined]
    for name, module in {
        "launch": launch,
        "launch.actions": actions,
        "launch_ros": launch_ros,
        "launch_ros.actions": ros_actions,
    }.items():
        monkeypatch.setitem(sys.modules, name, module)
    spec = importlib.util.spec_from_file_location(path.stem.replace(".", "_"), path)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    module.generate_launch_description()
    return recorder


def _launch_view(recorder: _Recorder) -> list[tuple]:
    return [
        (n["executable"], n["name"], n["namespace"], tuple(map(str, n["parameters"])))
        for n in recorder.nodes
    ]


def test_sim_launch_file_starts_what_twinbridge_sim_starts(monkeypatch) -> None:
    recorder = _load_launch_file(LAUNCH_DIR / "sim.launch.py", monkeypatch)
    expected = [
        (launch.name, launch.name, launch.namespace, (str(launch.params_file),))
        for launch in plan(SIM_NODES, SIM_CONFIG)
    ]
    assert _launch_view(recorder) == expected
    assert [n for n, *_ in expected] == ["twin_node", "policy_node", "task_node"]
    assert recorder.environment["FASTDDS_DEFAULT_PROFILES_FILE"] == str(HOST_ONLY_PROFILE)
    assert lint_environment(recorder.environment, "sim") == []
    # `twinbridge sim` without flags passes exactly the YAML's values as overrides.
    from ros_ws.bringup import _overrides, add_arguments

    parser = __import__("argparse").ArgumentParser()
    add_arguments(parser)
    cli = plan(SIM_NODES, SIM_CONFIG, _overrides(parser.parse_args([])))
    for launch_node, cli_node in zip(plan(SIM_NODES, SIM_CONFIG), cli, strict=True):
        assert launch_node.parameters() == cli_node.parameters(), cli_node.name


def test_robot_launch_refuses_an_open_environment(monkeypatch) -> None:
    for key in GOOD_ROBOT_ENV:
        monkeypatch.delenv(key, raising=False)
    with pytest.raises(RuntimeError, match="ROS_SECURITY_ENABLE"):
        _load_launch_file(LAUNCH_DIR / "robot.launch.py", monkeypatch)
    for key, value in GOOD_ROBOT_ENV.items():
        monkeypatch.setenv(key, value)
    recorder = _load_launch_file(LAUNCH_DIR / "robot.launch.py", monkeypatch)
    assert [n["name"] for n in recorder.nodes] == list(ROBOT_NODES)


def test_every_planned_node_is_an_installed_executable() -> None:
    from ros_ws.node_configs import NODE_CONFIGS

    text = (ROOT / "pyproject.toml").read_text()
    for node in NODE_CONFIGS:  # every node with a config: sim, robot, teleop, recorder
        assert f'{node} = "ros_ws.{node}:main"' in text


def test_twinbridge_cli_does_not_import_ros_for_other_commands() -> None:
    code = (
        "import sys; from sim.cli import build_parser; build_parser();"
        "print('rclpy' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_teleop_launch_starts_what_twinbridge_teleop_starts_on_the_robot(monkeypatch) -> None:
    from ros_ws.bringup_plan import teleop_nodes

    for key, value in GOOD_ROBOT_ENV.items():
        monkeypatch.setenv(key, value)
    recorder = _load_launch_file(LAUNCH_DIR / "teleop.launch.py", monkeypatch)
    names = [n["name"] for n in recorder.nodes]
    assert names == list(teleop_nodes("robot", record=True))
    assert names == ["driver_node", "teleop_node", "task_node", "recorder_node"]
    # One task for the session: the operator's, judged by task_node, stored by the recorder.
    overrides = {n["name"]: n["parameters"][1] for n in recorder.nodes if len(n["parameters"]) > 1}
    assert overrides["task_node"]["task"] == overrides["recorder_node"]["task"]
    for key in GOOD_ROBOT_ENV:
        monkeypatch.delenv(key, raising=False)
    with pytest.raises(RuntimeError, match=r"teleop\.launch\.py refuses"):
        _load_launch_file(LAUNCH_DIR / "teleop.launch.py", monkeypatch)


def test_teleop_plans_agree_on_one_task() -> None:
    from ros_ws.bringup_plan import teleop_nodes

    nodes = teleop_nodes("twin", record=True)
    assert nodes == ("twin_node", "teleop_node", "task_node", "recorder_node")
    with pytest.raises(ParameterFileError, match="disagree on the task"):
        plan(nodes, SIM_CONFIG, {"twin_node": {"task": "fetch-push"}})
