"""Message definitions for the rosbag2 MCAP profile, built from the installed .msg files.

rosbag2 (and so `ros2 bag`, Foxglove, `rosbags`, `mcap_ros2`) expects, per channel:
message encoding "cdr", and a schema named like "sensor_msgs/msg/JointState" with encoding
"ros2msg" whose data is the type's .msg text followed by every message type it uses,
each once, as

    ================================================================================
    MSG: std_msgs/Header
    <the .msg text>

The .msg files are found by type name under `<prefix>/share/<package>/msg/` for each
prefix on AMENT_PREFIX_PATH and `sys.prefix` (where the PyPI ROS wheels install them).
No rclpy here: the recorder core, `twinbridge bag` and the tests use it without ROS.
"""

from __future__ import annotations

import functools
import os
import re
import sys
from pathlib import Path

from hardware.recording.errors import SchemaNotFoundError

SCHEMA_ENCODING = "ros2msg"
MESSAGE_ENCODING = "cdr"
PROFILE = "ros2"
SEPARATOR = "=" * 80
PRIMITIVES = frozenset(
    [
        "bool",
        "byte",
        "char",
        "float32",
        "float64",
        "int8",
        "uint8",
        "int16",
        "uint16",
        "int32",
        "uint32",
        "int64",
        "uint64",
        "string",
        "wstring",
    ]
)
_TYPE_NAME = re.compile(r"^([a-z][a-z0-9_]*)/(?:msg/)?([A-Z][A-Za-z0-9]*)$")


def search_prefixes() -> list[Path]:
    """The install prefixes searched for .msg files, in order, without duplicates."""
    entries = [*os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep), sys.prefix]
    prefixes: list[Path] = []
    for entry in entries:
        if entry and Path(entry) not in prefixes:
            prefixes.append(Path(entry))
    return prefixes


def split_type_name(type_name: str) -> tuple[str, str]:
    """("sensor_msgs", "JointState") from "sensor_msgs/msg/JointState" or "sensor_msgs/JointState"
    (both spellings occur: schema names and the MSG: lines of definitions)."""
    match = _TYPE_NAME.match(type_name)
    if match is None:
        raise SchemaNotFoundError(type_name, [])
    return match.group(1), match.group(2)


def full_type_name(type_name: str) -> str:
    """The rosbag2 spelling, "pkg/msg/Type"."""
    package, name = split_type_name(type_name)
    return f"{package}/msg/{name}"


def msg_file(type_name: str) -> Path:
    """The installed .msg file of `type_name`, or SchemaNotFoundError naming where we looked."""
    package, name = split_type_name(type_name)
    searched = []
    for prefix in search_prefixes():
        candidate = prefix / "share" / package / "msg" / f"{name}.msg"
        searched.append(candidate.parent)
        if candidate.is_file():
            return candidate
    raise SchemaNotFoundError(full_type_name(type_name), searched)


@functools.cache
def ros2msg_definition(type_name: str) -> str:
    """The concatenated definition rosbag2 stores as the schema of `type_name`."""
    package, _ = split_type_name(type_name)
    root = _read(type_name)
    parts = [root]
    seen = {_short(type_name)}
    pending = _dependencies(root, package)
    while pending:
        dependency = pending.pop(0)
        if dependency in seen:
            continue
        seen.add(dependency)
        text = _read(dependency)
        parts.append(f"{SEPARATOR}\nMSG: {dependency}\n{text}")
        pending.extend(_dependencies(text, split_type_name(dependency)[0]))
    return "\n".join(parts)


def _read(type_name: str) -> str:
    return msg_file(type_name).read_text().rstrip("\n") + "\n"


def _short(type_name: str) -> str:
    package, name = split_type_name(type_name)
    return f"{package}/{name}"


def _dependencies(text: str, package: str) -> list[str]:
    """The non-primitive field types of a .msg text, as "pkg/Type", in order of use."""
    found: list[str] = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        # "<type>[array] name [default]" or "<type> NAME=value": constants are primitive.
        base = re.sub(r"\[.*\]$", "", line.split()[0]).split("<=")[0]
        if base in PRIMITIVES:
            continue
        if base == "Header":
            base = "std_msgs/Header"
        dependency = _short(base if "/" in base else f"{package}/{base}")
        if dependency not in found:
            found.append(dependency)
    return found
