"""Teleoperation devices (hardware/teleop): keyboard on a real pty, gamepad on a virtual SDL
joystick, the scripted operator in the twin, hand synergies/presets, config validation.

    .venv/bin/pytest -q tests/test_teleop_devices.py

The gamepad tests attach a virtual joystick (SDL >= 2.0.14 `SDL_JoystickAttachVirtual`)
through ctypes to the very libSDL2 that pygame loaded, so pygame.joystick sees a real SDL
device and the operator runs its real SDL path (events, axes, unplug).
"""

from __future__ import annotations

import contextlib
import ctypes
import glob
import io
import os
import pty
import select
import subprocess
import sys
import termios
import textwrap
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

import numpy as np
import pytest

import sim  # noqa: F401 - registers the task ids
from hardware.teleop import (
    OPERATORS,
    DeviceError,
    Intent,
    Operator,
    OperatorEvents,
    TeleopConfig,
    TeleopError,
    make_mapping,
    make_operator,
)
from hardware.teleop import bindings as bindings_module
from hardware.teleop import gamepad as gamepad_module
from hardware.teleop.bindings import teleop_bindings
from hardware.teleop.cartesian import CartesianMapping
from hardware.teleop.keyboard import KeyParser
from hardware.teleop.posture import PostureSynergies
from sim.envs import make_task_env
from sim.errors import ConfigError, UnknownNameError
from sim.robots import ROBOT_FOLDERS, get_robot

# The hand's synergies and presets: the teleop section of sim/robots/shadow_hand/robot.yaml.
HAND = cast(PostureSynergies, teleop_bindings("shadow_hand").kind)
HAND_ACTUATORS, PRESETS, SYNERGIES, hand_vector = (
    HAND.actuators, HAND.presets, HAND.synergies, HAND.vector,
)  # fmt: skip

ROOT = Path(__file__).resolve().parents[1]
UP, DOWN, RIGHT, LEFT = b"\x1b[A", b"\x1b[B", b"\x1b[C", b"\x1b[D"
PERIOD_S = 1.0 / 25.0
FULL_FETCH_ACTION = 0.25 * PERIOD_S / 0.05  # default max speed, 25 Hz, 5 cm per unit action
# Fetch's keys and sticks move the gripper in the view's frame (robot.yaml frame_yaw_deg).
_FETCH_MAPPING = make_mapping("fetch-push")
assert isinstance(_FETCH_MAPPING, CartesianMapping)
VIEW_TO_WORLD = _FETCH_MAPPING.view_to_world


def in_view(action: np.ndarray) -> np.ndarray:
    """A Fetch action with its displacement in the view frame (x away from the camera)."""
    out = np.array(action, dtype=np.float64)
    out[:3] = VIEW_TO_WORLD.T @ out[:3]
    return out


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


# -- keyboard on a pseudo-terminal -------------------------------------------------------------
@pytest.fixture
def tty_pair() -> Iterator[tuple[int, int]]:
    master, slave = pty.openpty()
    yield master, slave
    for fd in (master, slave):
        with contextlib.suppress(OSError):  # a test may have closed the master already
            os.close(fd)


def type_keys(master: int, slave: int, data: bytes) -> None:
    """Write key bytes to the master and wait until the slave can read them."""
    os.write(master, data)
    ready, _, _ = select.select([slave], [], [], 2.0)
    assert ready, "the pty never delivered the bytes"


def keyboard(
    slave: int, task: str = "fetch-push", out: io.StringIO | None = None, **config: Any
) -> tuple[Any, FakeClock]:
    clock = FakeClock()
    out = out if out is not None else io.StringIO()
    op = make_operator("keyboard", task, TeleopConfig(**config), fd=slave, out=out, clock=clock)
    return op, clock


def test_keyboard_arrows_and_letters_give_velocity_along_named_axes(tty_pair) -> None:
    master, slave = tty_pair
    help_text = io.StringIO()
    op, _ = keyboard(slave, out=help_text)
    expected = {
        UP: (0, +1),
        DOWN: (0, -1),
        LEFT: (1, +1),
        RIGHT: (1, -1),
        b"w": (2, +1),
        b"s": (2, -1),
        b"\x1bOA": (0, +1),  # SS3 arrows (application cursor mode)
        b"\x1b[1;5C": (1, -1),  # ctrl-right: still right
    }
    for key, (index, sign) in expected.items():
        op.reset()
        op._held.clear()
        type_keys(master, slave, key)
        action = op.act({})
        want = np.zeros(3)
        want[index] = sign * FULL_FETCH_ACTION
        np.testing.assert_allclose(in_view(action)[:3], want, atol=1e-6, err_msg=repr(key))
        assert action.dtype == np.float32 and action[3] == 1.0  # gripper open
    assert "up:+x" in help_text.getvalue() and "space:estop" in help_text.getvalue()
    op.close()


def test_escape_sequence_split_across_reads_is_one_arrow(tty_pair) -> None:
    master, slave = tty_pair
    op, _ = keyboard(slave)
    type_keys(master, slave, b"\x1b")
    assert in_view(op.act({}))[0] == 0.0  # incomplete: nothing yet, and not an escape either
    type_keys(master, slave, b"[")
    op.act({})
    type_keys(master, slave, b"A")
    assert in_view(op.act({}))[0] == pytest.approx(FULL_FETCH_ACTION, abs=1e-4)
    assert op.events() == OperatorEvents()  # no spurious "escape" -> quit
    op.close()


def test_lone_escape_is_escape_key_and_parser_handles_garbage() -> None:
    parser = KeyParser()
    assert parser.feed(b"\x1b") == []
    assert parser.feed(b"") == ["escape"]
    assert parser.feed(b"\x1bx ") == ["escape", "x", "space"]
    assert parser.feed(b"Q\r\x7f\xc3\xa9") == ["q", "enter", "backspace"]  # UTF-8 ignored
    assert parser.feed(b"\x1b[15~\x1b[B") == ["down"]  # F5 ignored, then down
    assert parser.feed(b"\x1b[" + b"1" * 40) == []  # garbage never grows without bound
    assert parser.feed(b"w") == ["w"]


def test_held_key_autorepeat_keeps_speed_and_release_decays_to_zero(tty_pair) -> None:
    master, slave = tty_pair
    op, clock = keyboard(slave, key_hold_s=0.12, key_decay_s=0.2)
    for _ in range(10):  # autorepeat at 25 Hz: full speed throughout
        type_keys(master, slave, UP)
        assert in_view(op.act({}))[0] == pytest.approx(FULL_FETCH_ACTION, abs=1e-4)
        clock.now += PERIOD_S
    last = clock.now - PERIOD_S
    speeds = []
    for dt in (0.1, 0.12, 0.17, 0.22, 0.27, 0.32, 0.33, 1.0):
        clock.now = last + dt
        speeds.append(in_view(op.act({}))[0] / FULL_FETCH_ACTION)
    np.testing.assert_allclose(speeds, [1, 1, 0.75, 0.5, 0.25, 0, 0, 0], atol=1e-6)


def test_opposite_key_replaces_the_held_direction(tty_pair) -> None:
    master, slave = tty_pair
    op, _ = keyboard(slave)
    type_keys(master, slave, UP + LEFT)
    np.testing.assert_allclose(
        in_view(op.act({}))[:3], np.array([1, 1, 0]) / np.sqrt(2) * FULL_FETCH_ACTION, atol=1e-6
    )  # diagonal: speed clipped to max_speed_m_s, direction kept
    type_keys(master, slave, DOWN)
    np.testing.assert_allclose(
        in_view(op.act({}))[:2], np.array([-1, 1]) / np.sqrt(2) * FULL_FETCH_ACTION, atol=1e-6
    )


def test_gripper_toggle_ignores_autorepeat_and_explicit_keys(tty_pair) -> None:
    master, slave = tty_pair
    op, clock = keyboard(slave, task="fetch-pick-and-place")
    type_keys(master, slave, b"g")
    assert op.act({})[3] == -1.0  # toggled closed
    for _ in range(20):  # the key is held: autorepeat must not flicker the gripper
        clock.now += 0.05
        type_keys(master, slave, b"g")
        assert op.act({})[3] == -1.0
    clock.now += 1.0
    type_keys(master, slave, b"g")
    assert op.act({})[3] == 1.0  # a new press toggles again
    type_keys(master, slave, b"c")
    assert op.act({})[3] == -1.0
    type_keys(master, slave, b"o")
    assert op.act({})[3] == 1.0
    op.reset()
    type_keys(master, slave, b"g")
    clock.now += 1.0
    assert op.act({})[3] == -1.0
    op.reset()
    assert op.act({})[3] == 1.0  # every episode starts open


def test_keyboard_events_estop_release_end_quit(tty_pair) -> None:
    master, slave = tty_pair
    op, clock = keyboard(slave)
    assert op.events() == OperatorEvents()
    type_keys(master, slave, UP + b" ")
    action = op.act({})
    assert op.events() == OperatorEvents(estop=True)
    assert action[0] == 0.0  # the e-stop key also drops held motion keys
    assert op.events() == OperatorEvents()  # taken: reported once
    clock.now += 1.0
    type_keys(master, slave, b"u")
    op.act({})
    assert op.events() == OperatorEvents(release_estop=True)
    clock.now += 1.0
    type_keys(master, slave, b"u ")
    op.act({})
    assert op.events() == OperatorEvents(estop=True)  # a stop beats a release
    type_keys(master, slave, b"\n")
    op.act({})
    type_keys(master, slave, b"q")
    op.act({})
    assert op.events() == OperatorEvents(end_episode=True, quit=True)
    type_keys(master, slave, b"\x1b")
    op.act({})
    op.act({})  # nothing followed the ESC: it was the escape key (quit)
    assert op.events().quit
    op.close()


def test_events_read_the_keys_even_when_no_action_is_asked_for(tty_pair) -> None:
    master, slave = tty_pair
    op, clock = keyboard(slave, task="fetch-pick-and-place")
    type_keys(master, slave, b"g" + UP + b" q")  # the loop is holding: only events() runs
    assert op.events() == OperatorEvents(estop=True, quit=True)
    action = op.act({})  # the gripper toggle waited; the motion key died with the e-stop
    np.testing.assert_allclose(action, [0, 0, 0, -1])
    clock.now += 1.0
    type_keys(master, slave, UP)
    assert op.events() == OperatorEvents()
    assert in_view(op.act({}))[0] == pytest.approx(FULL_FETCH_ACTION)


def test_terminal_hangup_asks_for_estop_and_quit_once(tty_pair) -> None:
    master, slave = tty_pair
    op, _ = keyboard(slave)
    type_keys(master, slave, UP)
    assert in_view(op.act({}))[0] > 0
    os.close(master)  # the terminal window / ssh session is gone
    action = op.act({})
    assert op.events() == OperatorEvents(estop=True, quit=True)
    assert action[0] == 0.0
    op.act({})
    assert op.events() == OperatorEvents()
    op.close()


def test_terminal_mode_set_while_running_and_restored_on_close_and_exception(tty_pair) -> None:
    slave = tty_pair[1]
    before = termios.tcgetattr(slave)
    assert before[3] & termios.ECHO and before[3] & termios.ICANON
    op, _ = keyboard(slave)
    running = termios.tcgetattr(slave)
    assert not running[3] & (termios.ECHO | termios.ICANON)
    op.close()
    op.close()  # idempotent
    assert termios.tcgetattr(slave) == before
    with pytest.raises(TeleopError, match="closed"):
        op.act({})
    with pytest.raises(RuntimeError, match="boom"), keyboard(slave)[0]:
        assert not termios.tcgetattr(slave)[3] & termios.ECHO
        raise RuntimeError("boom")
    assert termios.tcgetattr(slave) == before


def test_terminal_restored_when_the_process_dies_of_an_uncaught_exception(tty_pair) -> None:
    slave = tty_pair[1]
    before = termios.tcgetattr(slave)
    code = textwrap.dedent(
        f"""
        import os, sys, termios
        from hardware.teleop import make_operator
        fd = os.open({os.ttyname(slave)!r}, os.O_RDWR | os.O_NOCTTY)
        op = make_operator("keyboard", "fetch-reach", fd=fd, out=sys.stderr)
        assert not termios.tcgetattr(fd)[3] & termios.ECHO
        print("cbreak", flush=True)
        raise RuntimeError("crash without close()")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert "cbreak" in result.stdout, result.stderr
    assert "crash without close()" in result.stderr and result.returncode == 1
    assert termios.tcgetattr(slave) == before


def test_keyboard_refuses_a_non_terminal_with_instructions() -> None:
    read, write = os.pipe()
    try:
        with pytest.raises(DeviceError, match=r"not a tty.*--device gamepad or --device scripted"):
            make_operator("keyboard", "fetch-push", fd=read)
    finally:
        os.close(read)
        os.close(write)


def test_keyboard_drives_the_twin_and_a_released_key_stops_the_arm(tty_pair) -> None:
    master, slave = tty_pair
    op, clock = keyboard(slave, task="fetch-reach")
    env = make_task_env("fetch-reach", disable_env_checker=True)
    obs, _ = env.reset(seed=0)
    op.reset()
    start = obs["observation"][:3].copy()
    for _ in range(10):  # hold "up" (+x) for 0.4 s at 0.25 m/s: 10 cm
        type_keys(master, slave, UP)
        obs, *_ = env.step(op.act(obs))
        clock.now += PERIOD_S
    moved = VIEW_TO_WORLD.T @ (obs["observation"][:3] - start)
    assert 0.07 < moved[0] < 0.11 and abs(moved[1]) < 0.01 and abs(moved[2]) < 0.01
    clock.now += 0.5  # the key was released: no more bytes
    for _ in range(5):
        obs, *_ = env.step(op.act(obs))
    stopped = obs["observation"][:3].copy()
    for _ in range(10):
        obs, *_ = env.step(op.act(obs))
    assert np.linalg.norm(obs["observation"][:3] - stopped) < 0.003
    env.close()
    op.close()


# -- hand: synergies and presets ---------------------------------------------------------------
def test_hand_actuator_order_matches_every_hand_model() -> None:
    for task in ("hand-reach", "hand-block", "hand-pen"):
        env = make_task_env(task, disable_env_checker=True)
        unwrapped: Any = env.unwrapped
        assert unwrapped.twin.actuator_names == HAND_ACTUATORS, task
        env.close()
    with pytest.raises(UnknownNameError, match="XXJ9"):
        hand_vector({"XXJ9": 1.0})


def test_every_hand_key_held_or_tapped_keeps_the_action_in_the_space(tty_pair) -> None:
    master, slave = tty_pair
    op, clock = keyboard(slave, task="hand-block", synergy_rate_per_s=3.0)
    keys = teleop_bindings("shadow_hand").keys
    byte_of = {"up": UP, "down": DOWN, "left": LEFT, "right": RIGHT}
    low, high = -1.0, 1.0
    seen = set()
    for start in ("1", "2", "5"):  # from open, power and lateral
        for key in keys:
            clock.now += 1.0
            type_keys(master, slave, start.encode())
            op.act({})
            for _ in range(40):  # held for 1.6 s: at 3 units/s any synergy saturates
                type_keys(master, slave, byte_of.get(key, key.encode()))
                action = op.act({})
                clock.now += PERIOD_S
                assert action.shape == (20,) and action.dtype == np.float32
                assert np.isfinite(action).all()
                assert (low <= action).all() and (action <= high).all()
                seen.add(tuple(np.round(action, 3)))
    assert len(seen) > 50  # the keys did move the posture
    op.close()


def test_hand_synergy_rate_and_presets_by_key(tty_pair) -> None:
    master, slave = tty_pair
    op, clock = keyboard(slave, task="hand-reach", synergy_rate_per_s=1.0)
    assert np.array_equal(op.act({}), np.zeros(20))  # the neutral start
    type_keys(master, slave, UP)  # +grasp for one period: 1/25 action unit along the synergy
    np.testing.assert_allclose(op.act({}), hand_vector(SYNERGIES["grasp"]) * PERIOD_S, atol=1e-6)
    for index, name in enumerate(PRESETS):
        clock.now += 1.0
        type_keys(master, slave, str(index).encode())
        expected = np.clip(hand_vector(PRESETS[name]), -1, 1)
        np.testing.assert_allclose(op.act({}), expected, atol=1e-6, err_msg=name)
    clock.now += 1.0
    type_keys(master, slave, b"n")  # preset_next wraps from the last to the first
    np.testing.assert_allclose(op.act({}), hand_vector(PRESETS[next(iter(PRESETS))]))
    op.close()


def _settled_tips(env: Any, action: np.ndarray) -> np.ndarray:
    env.reset(seed=0)
    for _ in range(25):
        obs, *_ = env.step(action)
    return obs["observation"][48:63].reshape(5, 3)  # FF MF RF LF TH fingertips


def test_presets_and_grasp_synergy_do_what_their_names_say_in_the_twin() -> None:
    env = make_task_env("hand-reach", disable_env_checker=True)
    mapping = make_mapping("hand-reach")

    def preset(name: str) -> np.ndarray:
        mapping.reset()
        return mapping.action(Intent(commands=(f"preset:{name}",)))

    unwrapped: Any = env.unwrapped
    palm = unwrapped.twin.data.body("robot0:palm").xpos
    open_tips = _settled_tips(env, preset("open"))
    open_reach = np.linalg.norm(open_tips[:4] - palm, axis=1)
    pinch = _settled_tips(env, preset("pinch"))
    open_gap = np.linalg.norm(open_tips[4] - open_tips[0])
    assert np.linalg.norm(pinch[4] - pinch[0]) < 0.025 < open_gap  # thumb on index
    power = _settled_tips(env, preset("power"))
    assert (np.linalg.norm(power[:4] - palm, axis=1) < open_reach - 0.02).all()
    mapping.reset()
    for _ in range(25):  # +grasp held for a second from neutral
        closed = mapping.action(Intent({"grasp": 1.0}))
    neutral_tips = _settled_tips(env, np.zeros(20, np.float32))
    closed_tips = _settled_tips(env, closed)
    neutral = np.linalg.norm(neutral_tips[:4] - palm, axis=1)
    assert (np.linalg.norm(closed_tips[:4] - palm, axis=1) < neutral - 0.01).all()
    env.close()


# -- gamepad through a virtual SDL joystick ----------------------------------------------------
class VirtualPads:
    """Virtual joysticks attached to the libSDL2 instance pygame uses."""

    def __init__(self, pygame: Any):
        libs = Path(pygame.__file__).resolve().parent.parent / "pygame.libs"
        paths = sorted(glob.glob(str(libs / "libSDL2-2*.so*")))
        assert paths, f"no bundled libSDL2 in {libs}"
        self.sdl = ctypes.CDLL(paths[0])  # dlopen of a loaded library: the same instance
        self.sdl.SDL_JoystickAttachVirtual.argtypes = [ctypes.c_int] * 4
        self.sdl.SDL_JoystickDetachVirtual.argtypes = [ctypes.c_int]
        self.sdl.SDL_JoystickFromInstanceID.restype = ctypes.c_void_p
        self.sdl.SDL_JoystickFromInstanceID.argtypes = [ctypes.c_int]
        axis_args: list[Any] = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int16]
        self.sdl.SDL_JoystickSetVirtualAxis.argtypes = axis_args
        self.sdl.SDL_JoystickSetVirtualButton.argtypes = [
            ctypes.c_void_p,
            ctypes.c_int,
            ctypes.c_uint8,
        ]
        self.pygame = pygame
        self.handles: dict[int, Any] = {}

    def attach(self, axes: int = 6, buttons: int = 11) -> int:
        """A pad with Linux evdev's Xbox layout (sticks 0 1 / 3 4, triggers 2 5), centred."""
        index = self.sdl.SDL_JoystickAttachVirtual(1, axes, buttons, 1)  # 1: game controller
        assert index >= 0
        stick = self.pygame.joystick.Joystick(index)
        self.handles[index] = self.sdl.SDL_JoystickFromInstanceID(stick.get_instance_id())
        self._stick = stick  # keep it open
        for axis in range(axes):  # SDL starts a virtual controller's "triggers" at -1
            self.axis(index, axis, 0.0)
        return index

    def axis(self, index: int, axis: int, value: float) -> None:
        raw = int(np.clip(round(value * 32767), -32768, 32767))
        assert self.sdl.SDL_JoystickSetVirtualAxis(self.handles[index], axis, raw) == 0

    def button(self, index: int, button: int, down: bool) -> None:
        assert self.sdl.SDL_JoystickSetVirtualButton(self.handles[index], button, int(down)) == 0

    def press(self, op: Any, index: int, button: int) -> np.ndarray:
        self.button(index, button, True)
        action = op.act({})
        self.button(index, button, False)
        op.act({})
        return action

    def detach(self, index: int) -> None:
        assert self.sdl.SDL_JoystickDetachVirtual(index) == 0
        self.handles.pop(index, None)


@pytest.fixture
def pads() -> Iterator[VirtualPads]:
    pygame = gamepad_module._import_pygame()
    pygame.display.init()
    pygame.joystick.init()
    pads = VirtualPads(pygame)
    yield pads
    for index in sorted(pads.handles, reverse=True):
        pads.detach(index)
    pygame.joystick.quit()
    pygame.display.quit()


def test_gamepad_sticks_give_velocity_with_deadzone(pads) -> None:
    pad = pads.attach()
    op = make_operator("gamepad", "fetch-push", TeleopConfig(deadzone=0.15))
    assert isinstance(op, gamepad_module.GamepadOperator)
    assert "Virtual" in op.describe() and "6 axes, 11 buttons" in op.describe()
    np.testing.assert_allclose(op.act({}), [0, 0, 0, 1])
    pads.axis(pad, 1, -1.0)  # left stick pushed up: +x at full speed
    np.testing.assert_allclose(in_view(op.act({}))[:3], [FULL_FETCH_ACTION, 0, 0], atol=1e-4)
    pads.axis(pad, 1, -0.1)  # inside the deadzone: nothing
    pads.axis(pad, 0, 0.12)
    pads.axis(pad, 4, 0.14)
    np.testing.assert_allclose(in_view(op.act({}))[:3], 0.0)
    pads.axis(pad, 1, 0.0)
    pads.axis(pad, 0, 0.5)  # left stick half right: -y, rescaled past the deadzone
    pads.axis(pad, 4, -0.5)  # right stick half up: +z
    part = (0.5 - 0.15) / 0.85 * FULL_FETCH_ACTION
    np.testing.assert_allclose(in_view(op.act({}))[:3], [0, -part, part], atol=1e-4)
    pads.axis(pad, 0, 1.0)
    pads.axis(pad, 1, -1.0)
    pads.axis(pad, 4, -1.0)
    full = in_view(op.act({}))[:3]
    assert np.linalg.norm(full) == pytest.approx(FULL_FETCH_ACTION, rel=1e-4)  # speed clipped
    op.close()


def test_gamepad_buttons_give_events_and_gripper_toggle(pads) -> None:
    pad = pads.attach()
    op = make_operator("gamepad", "fetch-pick-and-place")
    pads.axis(pad, 1, -1.0)
    assert in_view(op.act({}))[0] == pytest.approx(FULL_FETCH_ACTION, abs=1e-4)
    assert pads.press(op, pad, 1)[0] == 0.0  # B: e-stop, and no motion in that period
    assert op.events() == OperatorEvents(estop=True)
    pads.press(op, pad, 7)  # Start: release
    pads.press(op, pad, 3)  # Y: end episode
    assert op.events() == OperatorEvents(release_estop=True, end_episode=True)
    pads.press(op, pad, 6)  # Back: quit
    assert op.events() == OperatorEvents(quit=True)
    assert pads.press(op, pad, 0)[3] == -1.0  # A: gripper toggled closed
    assert op.act({})[3] == -1.0
    assert pads.press(op, pad, 0)[3] == 1.0
    pads.press(op, pad, 9)  # an unmapped button: nothing
    assert op.events() == OperatorEvents()
    op.close()


def test_gamepad_unplugged_raises_estop_and_stops(pads) -> None:
    pad = pads.attach()
    op = make_operator("gamepad", "fetch-push")
    pads.axis(pad, 1, -1.0)
    assert in_view(op.act({}))[0] > 0
    pads.detach(pad)
    action = op.act({})
    assert op.events() == OperatorEvents(estop=True)
    np.testing.assert_allclose(action[:3], 0.0)
    np.testing.assert_allclose(in_view(op.act({}))[:3], 0.0)
    op.close()


def test_gamepad_drives_hand_synergies_and_presets_inside_the_space(pads) -> None:
    pad = pads.attach()
    op = make_operator("gamepad", "hand-egg", TeleopConfig(synergy_rate_per_s=2.0))
    for values in ((-1, -1, 1, 1), (1, 1, -1, -1), (1, -1, 1, -1)):
        for axis, value in zip((0, 1, 3, 4), values, strict=True):
            pads.axis(pad, axis, value)
        for _ in range(30):
            action = op.act({})
            assert np.isfinite(action).all() and np.abs(action).max() <= 1.0
    pads.axis(pad, 0, 0.0)
    pads.axis(pad, 3, 0.0)
    pads.axis(pad, 4, 0.0)
    pads.axis(pad, 1, -1.0)  # left stick up: grasp closes at 2 units/s
    pads.press(op, pad, 2)  # X: open preset
    opened = np.clip(hand_vector(PRESETS["open"]), -1, 1)
    np.testing.assert_allclose(
        op.act({}), np.clip(opened + 3 * 2.0 * PERIOD_S * hand_vector(SYNERGIES["grasp"]), -1, 1),
        atol=1e-5,
    )  # fmt: skip
    op.close()


def test_unknown_gamepads_are_named_with_what_is_missing(pads) -> None:
    with pytest.raises(DeviceError, match="no gamepad found"):
        make_operator("gamepad", "fetch-push")
    small = pads.attach(axes=2, buttons=4)
    with pytest.raises(DeviceError) as error:
        make_operator("gamepad", "fetch-push")
    message = str(error.value)
    for part in ("Virtual", "GUID", "2 axes, 4 buttons", "axis 4 (right_y)", "button 6 (quit)"):
        assert part in message, message
    assert "axis 3" not in message  # right_x is not used by the Fetch mapping
    pads.detach(small)
    pads.attach()
    with pytest.raises(DeviceError, match=r"gamepad_index 3 is out of range.*\[0\] 'Virtual"):
        make_operator("gamepad", "fetch-push", TeleopConfig(gamepad_index=3))


def test_gamepad_without_any_pad_names_the_problem_and_quits_sdl() -> None:
    pygame = gamepad_module._import_pygame()
    assert not pygame.joystick.get_init()
    with pytest.raises(DeviceError, match=r"no gamepad found.*--device keyboard"):
        make_operator("gamepad", "hand-block")
    assert not pygame.joystick.get_init() and not pygame.display.get_init()


# -- scripted operator ------------------------------------------------------------------------
@pytest.mark.parametrize("task", ["fetch-reach", "fetch-push", "fetch-pick-and-place"])
def test_scripted_operator_solves_fetch_tasks(task: str) -> None:
    op = make_operator("scripted", task)
    env = make_task_env(task, disable_env_checker=True)
    successes = 0
    for seed in range(10):
        obs, _ = env.reset(seed=1000 + seed)
        op.reset()
        done, info = False, dict[str, Any]()
        while not done:
            action = op.act(obs)
            assert action.shape == (4,) and np.abs(action).max() <= 1.0
            obs, _, terminated, truncated, info = env.step(action)
            done = terminated or truncated
        successes += int(info["is_success"] > 0.5)
        assert op.events() == OperatorEvents()
    env.close()
    op.close()
    assert successes >= 9, f"{task}: {successes}/10"


def test_scripted_operator_refuses_hand_tasks_and_bad_observations() -> None:
    with pytest.raises(UnknownNameError, match="scripted operator task 'hand-block'"):
        make_operator("scripted", "hand-block")
    op = make_operator("scripted", "fetch-push")
    with pytest.raises(TeleopError, match="desired_goal"):
        op.act({"observation": np.zeros(25)})


# -- registry, protocol and config -------------------------------------------------------------
def test_registry_names_devices_and_tasks(tty_pair) -> None:
    assert set(OPERATORS) == {"keyboard", "gamepad", "scripted"}
    with pytest.raises(UnknownNameError, match="teleop devices: gamepad, keyboard, scripted"):
        make_operator("joystick", "fetch-push")
    with pytest.raises(UnknownNameError, match="unknown task 'fetch-fly'"):
        make_operator("scripted", "fetch-fly")
    op, _ = keyboard(tty_pair[1])
    for operator in (op, make_operator("scripted", "fetch-push")):
        assert isinstance(operator, Operator)
        assert operator.device in OPERATORS
        operator.close()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"control_rate_hz": 0}, "control_rate_hz must be a finite number > 0"),
        ({"max_speed_m_s": float("nan")}, "max_speed_m_s"),
        ({"key_hold_s": -0.1}, "key_hold_s must be a finite number >= 0"),
        ({"deadzone": 1.0}, r"deadzone must be in \[0, 1\)"),
        ({"gamepad_index": -1}, "gamepad_index must be an int >= 0"),
        ({"hand_start_preset": "fist"}, "hand_start_preset 'fist' is not a preset"),
        ({"event_keys": {"space": "explode"}}, "unknown command.*explode"),
        ({"event_keys": {"Q": "quit"}}, r"invalid key name.*'Q'"),
        ({"event_keys": {"f1": "quit"}}, r"invalid key name.*'f1'"),
        ({"robot_keys": {"fetch": {"up": "+grasp"}}}, r"robot_keys\['fetch'\].*\+grasp"),
        ({"robot_keys": {"ur5": {}}}, "unknown robot 'ur5'"),
        ({"robot_keys": {"fetch": {"space": "+x"}}}, r"'space'.*both in event_keys"),
        ({"gamepad_axes": {"left_x": 0}}, r"gamepad_axes must name.*missing \['left_y'"),
        ({"gamepad_buttons": {"fire": 0}}, r"gamepad_buttons: unknown command.*fire"),
        ({"gamepad_buttons": {"estop": -2}}, r"indices must be ints >= 0.*estop"),
    ],
)
def test_config_validation_names_field_and_value(change: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        replace(TeleopConfig(), **change)


def without_teleop_section(monkeypatch, robot: str) -> None:
    """`robot` as if its robot.yaml had no teleop section."""
    bare = replace(get_robot(robot), teleop={})
    monkeypatch.setattr(
        bindings_module, "get_robot", lambda name: bare if name == robot else get_robot(name)
    )


def test_speed_beyond_the_env_and_missing_teleop_section_are_refused(
    tty_pair, monkeypatch
) -> None:
    with pytest.raises(ConfigError, match=r"max_speed_m_s=2.0 .* is 1.25 m/s"):
        make_mapping("fetch-push", TeleopConfig(max_speed_m_s=2.0))
    without_teleop_section(monkeypatch, "shadow_hand")
    fix = r"add `teleop:` \(mapping: one of cartesian_gripper, posture_synergies; keys; .*\)"
    path = "sim/robots/shadow_hand/robot.yaml"
    with pytest.raises(
        ConfigError, match=rf"robot 'shadow_hand' has no teleop section: {fix} to {path}"
    ):
        make_operator("keyboard", "hand-pen", fd=tty_pair[1])
    assert termios.tcgetattr(tty_pair[1])[3] & termios.ECHO  # refused before touching the tty


def test_twinbridge_teleop_names_a_robot_without_teleop_section(monkeypatch, capsys) -> None:
    from sim.cli import main

    without_teleop_section(monkeypatch, "shadow_hand")
    assert main(["teleop", "--task", "hand-block", "--device", "keyboard"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1, error  # one line, before any process starts
    assert "robot 'shadow_hand' has no teleop section" in error
    assert "to sim/robots/shadow_hand/robot.yaml" in error


def test_robot_keys_override_one_robot_and_leave_the_others_their_own() -> None:
    only_fetch = TeleopConfig(robot_keys={"fetch": {"i": "+x", "k": "-x"}})
    assert only_fetch.keys_for("fetch") == {"i": "+x", "k": "-x", **only_fetch.event_keys}
    assert only_fetch.keys_for("shadow_hand") == {
        **teleop_bindings("shadow_hand").keys, **only_fetch.event_keys,
    }  # fmt: skip
    assert TeleopConfig().keys_for("fetch")["g"] == "gripper_toggle"  # robot.yaml's keys


# -- a robot's teleop section (sim/robots/<robot>/robot.yaml) --------------------------------
@pytest.mark.parametrize("robot", ROBOT_FOLDERS)
def test_every_robot_teleop_section_drives_its_default_task_or_is_refused(robot: str) -> None:
    description = get_robot(robot)
    if not description.teleop:
        with pytest.raises(ConfigError, match=rf"robot '{robot}' has no teleop section"):
            teleop_bindings(robot)
        return
    bindings = teleop_bindings(robot)
    mapping = make_mapping(description.default_task)
    assert mapping.axes == bindings.kind.axes and mapping.commands == bindings.kind.commands
    env = make_task_env(description.default_task, disable_env_checker=True)
    for sign in (1.0, -1.0):
        for command in ((), *((c,) for c in mapping.commands)):
            action = mapping.action(Intent({a: sign for a in mapping.axes}, command))
            assert env.action_space.contains(action), (robot, command)
    env.close()


def _section(robot: str, **change: Any) -> dict[str, Any]:
    section = {**get_robot(robot).teleop, **change}
    return {k: v for k, v in section.items() if v is not None}


@pytest.mark.parametrize(
    ("robot", "change", "message"),
    [
        ("fetch", {"mapping": "teleport"}, r"teleop.mapping: unknown mapping kind 'teleport'; "
         r"valid: cartesian_gripper, posture_synergies"),
        ("fetch", {"mapping": None}, "unknown mapping kind None"),
        ("fetch", {"speed": 1.0}, r"teleop: unknown key\(s\) \['speed'\] for mapping "
         r"cartesian_gripper; valid: mapping, keys"),
        ("fetch", {"keys": {"k": "+fly"}}, r"teleop.keys: unknown command\(s\) \{'k': '\+fly'\}"
         r"; valid: \+x, \+y, \+z, -x"),
        ("fetch", {"keys": {"F1": "+x"}}, r"teleop.keys: invalid key name\(s\) \['F1'\]"),
        ("fetch", {"gamepad_sticks": {"w": ["left_y", -1]}}, r"gamepad_sticks.w: unknown axis; "
         r"valid: x, y, z"),
        ("fetch", {"gamepad_sticks": {"x": ["left_z", 1]}}, r"gamepad_sticks.x: give \[stick, "
         r"sign\] with stick one of left_x, left_y, right_x, right_y"),
        ("fetch", {"gamepad_buttons": {"fire": 0}}, r"gamepad_buttons.fire: unknown command; "
         r"valid: gripper_toggle"),
        ("fetch", {"gamepad_buttons": {"gripper_toggle": -1}}, r"an int >= 0\), got -1"),
        ("shadow_hand", {"synergies": {"grasp": {"XXJ9": 1.0}}}, r"teleop.synergies.grasp: "
         r"unknown actuator 'XXJ9'; valid: WRJ1, WRJ0, FFJ3"),
        ("shadow_hand", {"presets": {"fist": {"FFJ2": "tight"}}}, r"teleop.presets.fist.FFJ2 "
         r"must be a finite number, got 'tight'"),
        ("shadow_hand", {"presets": {}}, "give at least one preset posture"),
        ("shadow_hand", {"keys": {"0": "preset:fist"}}, r"unknown command.*'preset:fist'.*"
         r"valid: \+grasp"),
    ],
)  # fmt: skip
def test_teleop_section_errors_name_the_file_the_key_and_the_valid_names(
    robot: str, change: dict, message: str
) -> None:
    description = get_robot(robot)
    source = bindings_module.description_file(description)
    assert source == f"sim/robots/{robot}/robot.yaml"
    with pytest.raises(ConfigError, match=message) as error:
        bindings_module.parse_section(description, _section(robot, **change), source)
    assert str(error.value).startswith(f"{source}: teleop") and "\n" not in str(error.value)


def test_yaml_digit_keys_name_digit_keys() -> None:
    description = get_robot("shadow_hand")
    section = _section("shadow_hand", keys={1: "preset:open"})
    bindings = bindings_module.parse_section(description, section, "robot.yaml")
    assert dict(bindings.keys) == {"1": "preset:open"}


def test_config_buttons_take_over_the_robot_buttons() -> None:
    fetch = teleop_bindings("fetch")
    default = gamepad_module.button_commands(fetch, TeleopConfig())
    assert default == {
        1: "estop",
        7: "release_estop",
        3: "end_episode",
        6: "quit",
        0: "gripper_toggle",
    }
    moved = TeleopConfig(gamepad_buttons={**TeleopConfig().gamepad_buttons, "gripper_toggle": 4})
    assert gamepad_module.button_commands(fetch, moved)[4] == "gripper_toggle"
    assert 0 not in gamepad_module.button_commands(fetch, moved)
    taken = TeleopConfig(gamepad_buttons={"quit": 0})
    assert gamepad_module.button_commands(fetch, taken) == {0: "quit"}  # the config wins a button
    hand = gamepad_module.button_commands(teleop_bindings("shadow_hand"), TeleopConfig())
    assert hand[0] == "preset_next" and hand[2] == "preset:open"
