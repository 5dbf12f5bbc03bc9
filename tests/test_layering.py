"""Architecture rules that code review alone would let slip (see ../shared/DESIGN.md)."""

from __future__ import annotations

import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORE_PACKAGES = ("sim", "policies", "hardware", "calibration")


def _python_files(*packages: str) -> list[Path]:
    return [p for pkg in packages for p in (ROOT / pkg).rglob("*.py")]


def test_only_ros_ws_imports_rclpy() -> None:
    pattern = re.compile(r"^\s*(import rclpy|from rclpy)", re.MULTILINE)
    offenders = [p for p in _python_files(*CORE_PACKAGES) if pattern.search(p.read_text())]
    assert offenders == []


def test_robot_side_policy_runtime_never_imports_torch() -> None:
    code = (
        "import sys, policies.runtime, policies.card, policies.observation, policies.rollout;"
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_gymnasium_robotics_env_code_is_never_imported() -> None:
    """Its assets are used; its env code (broken on MuJoCo >= 3.17) must not be."""
    code = (
        "import sys, sim; from sim.tasks import TASKS; from sim.envs import make_task_env\n"
        "[make_task_env(n).reset(seed=0) for n in TASKS]\n"
        "print(sorted(m for m in sys.modules if m.startswith('gymnasium_robotics')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_no_pickle_or_assert_for_runtime_checks_in_product_code() -> None:
    for path in _python_files(*CORE_PACKAGES):
        text = path.read_text()
        assert not re.search(r"pickle\.loads?\(", text), path
        assert not re.search(r"^\s+assert ", text, re.MULTILINE), path


def test_package_xml_is_format_3_ament_python_named_twinbridge() -> None:
    root = ET.parse(ROOT / "package.xml").getroot()
    assert root.get("format") == "3"
    assert root.findtext("name") == "twinbridge"
    assert root.find("export/build_type").text == "ament_python"
    assert (ROOT / "resource" / "twinbridge").is_file()
    assert "install_scripts=$base/lib/twinbridge" in (ROOT / "setup.cfg").read_text()


def test_no_gymnasium_robotics_assets_are_copied_into_the_repo() -> None:
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    copied = [p for p in tracked if p.lower().endswith((".stl", ".obj", ".msh"))]
    assert copied == []


def test_lint_imports_refuses_an_upward_import(tmp_path: Path) -> None:
    """The layer contracts bite: a copy of the tree with one upward import (the base
    importing a ROS node module, inside a function) fails `lint-imports` and names it."""
    import shutil

    for package in ("sim", "hardware", "policies", "calibration", "ros_ws"):
        shutil.copytree(
            ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    errors = tmp_path / "sim" / "errors.py"
    errors.write_text(errors.read_text() + "\n\ndef _upward():\n    import ros_ws.qos  # noqa\n")
    lint = Path(sys.executable).with_name("lint-imports")
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(tmp_path)}
    result = subprocess.run(
        [str(lint), "--no-cache"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert result.returncode == 1, result.stdout[-3000:]
    assert "sim.errors -> ros_ws.qos" in result.stdout
