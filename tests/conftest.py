"""Shared test set-up: headless rendering, and the hardware flag for tests that need a robot."""

import os

os.environ.setdefault("MUJOCO_GL", "egl")

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--hardware", action="store_true", help="run tests that need a real robot")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--hardware"):
        return
    skip = pytest.mark.skip(reason="needs a physical robot: pass --hardware")
    for item in items:
        if "hardware" in item.keywords:
            item.add_marker(skip)
