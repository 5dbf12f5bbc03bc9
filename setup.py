"""Build shim for colcon (ament_python); metadata and dependencies live in pyproject.toml."""

from glob import glob

from setuptools import setup

setup(
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/twinbridge"]),
        ("share/twinbridge", ["package.xml"]),
        ("share/twinbridge/launch", glob("ros_ws/launch/*.py")),
        ("share/twinbridge/config", glob("ros_ws/config/*.yaml") + glob("ros_ws/config/*.xml")),
    ],
)
