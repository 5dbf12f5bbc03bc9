"""Discovery and security settings of a bringup's environment, and their lint (R21).

ROS 2 discovers peers on the whole subnet by default, so two users on one network would
drive each other's robots. A bringup must keep discovery on this host: with
`ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST`, with explicit `ROS_STATIC_PEERS`, or, as the sim
bringup does, with the project's Fast DDS profile (config/fastdds_localhost.xml: loopback
UDP and large shared-memory segments, which camera images need; LOCALHOST would replace
its transports). The deprecated `ROS_LOCALHOST_ONLY` is refused (it overrides the range in
surprising ways), and the robot profile must also run with SROS2 security enforced.
No rclpy here: the lint runs before any node.

R21: see hardware/RELIABILITY.md.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from pathlib import Path

from sim.errors import ConfigError

MAX_DOMAIN_ID = 101  # Fast DDS port arithmetic: ids above 101 collide with other ports
HOST_ONLY_PROFILE = Path(__file__).resolve().parent / "config" / "fastdds_localhost.xml"
_NS = {"dds": "http://www.eprosima.com"}
_LOOPBACK = {"127.0.0.1", "lo", "localhost"}


def default_domain_id() -> int:
    """A per-user domain id (1..101), so two users on one host do not meet by default."""
    return os.getuid() % MAX_DOMAIN_ID + 1


def sim_discovery(domain_id: int) -> dict[str, str]:
    """The variables the sim bringup sets (also by ros_ws/launch/sim.launch.py)."""
    return {
        "ROS_DOMAIN_ID": str(domain_id),
        "ROS_AUTOMATIC_DISCOVERY_RANGE": "SYSTEM_DEFAULT",  # the profile decides
        "FASTDDS_DEFAULT_PROFILES_FILE": str(HOST_ONLY_PROFILE),
        "RMW_IMPLEMENTATION": "rmw_fastrtps_cpp",
    }


def sim_environment(domain_id: int, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment every sim-bringup process runs with; refused if it is not closed."""
    env = dict(os.environ if base is None else base)
    env.pop("ROS_LOCALHOST_ONLY", None)
    env.update(sim_discovery(domain_id))
    problems = lint_environment(env, profile="sim")
    if problems:
        raise ConfigError("; ".join(problems))
    return env


def lint_environment(env: Mapping[str, str], profile: str) -> list[str]:
    """Every way `env` fails closed discovery for `profile` ("sim" or "robot")."""
    if profile not in ("sim", "robot"):
        raise ValueError(f"profile must be 'sim' or 'robot', got {profile!r}")
    problems = []
    scope = env.get("ROS_AUTOMATIC_DISCOVERY_RANGE", "")
    profile_file = env.get("FASTDDS_DEFAULT_PROFILES_FILE", "")
    host_only = scope == "LOCALHOST" or bool(env.get("ROS_STATIC_PEERS"))
    if not host_only and profile_file:
        profile_problem = host_only_profile_problem(Path(profile_file))
        host_only = profile_problem is None
        if profile_problem:
            problems.append(profile_problem)
    if not host_only and not profile_file:
        problems.append(
            f"ROS_AUTOMATIC_DISCOVERY_RANGE is {scope or 'unset (SUBNET)'}: set it to "
            "LOCALHOST, list the robot's peers in ROS_STATIC_PEERS, or use a host-only "
            f"Fast DDS profile such as {HOST_ONLY_PROFILE.name}"
        )
    domain = env.get("ROS_DOMAIN_ID", "")
    if not (domain.isdigit() and 0 <= int(domain) <= MAX_DOMAIN_ID):
        problems.append(f"ROS_DOMAIN_ID is {domain or 'unset'}: set an id in 0..{MAX_DOMAIN_ID}")
    if "ROS_LOCALHOST_ONLY" in env:
        problems.append("ROS_LOCALHOST_ONLY is deprecated and overrides the range: unset it")
    if profile == "robot":
        if env.get("ROS_SECURITY_ENABLE") != "true":
            problems.append("robot profile: set ROS_SECURITY_ENABLE=true (SROS2)")
        if env.get("ROS_SECURITY_STRATEGY") != "Enforce":
            problems.append("robot profile: set ROS_SECURITY_STRATEGY=Enforce")
    return problems


def host_only_profile_problem(path: Path) -> str | None:
    """None if the Fast DDS profile keeps every participant on this host, else why not.

    Host-only means: the default participant profile replaces the builtin transports, and
    each of its network transports is allow-listed to the loopback interface only.
    """
    where = f"FASTDDS_DEFAULT_PROFILES_FILE {path}"
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as e:
        return f"{where}: unreadable ({e})"
    participant = root.find(".//dds:participant[@is_default_profile='true']", _NS)
    if participant is None:
        return f"{where}: no default participant profile"
    if participant.findtext("dds:rtps/dds:useBuiltinTransports", "", _NS).strip() != "false":
        return f"{where}: useBuiltinTransports must be false (builtin UDP reaches the subnet)"
    used = {
        t.text for t in participant.findall("dds:rtps/dds:userTransports/dds:transport_id", _NS)
    }
    for descriptor in root.findall(".//dds:transport_descriptor", _NS):
        name = descriptor.findtext("dds:transport_id", "", _NS)
        kind = descriptor.findtext("dds:type", "", _NS).strip()
        if name not in used or kind == "SHM":
            continue
        allowed = {
            i.get("name") for i in descriptor.findall(".//dds:allowlist/dds:interface", _NS)
        }
        if not allowed or not allowed <= _LOOPBACK:
            return f"{where}: transport {name} ({kind}) is not limited to the loopback interface"
    return None
