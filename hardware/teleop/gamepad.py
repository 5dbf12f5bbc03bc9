"""Gamepad teleoperation through pygame's joystick API (SDL), headless.

Run: `python -c "from hardware.teleop import make_operator as m; o = m('gamepad', 'fetch-push'); print(o.describe()); o.close()"`

Sticks are axes (deadzone applied, then rescaled so full deflection still reads 1); buttons
are commands, taken from SDL's button-down events so a press between two control periods is
never missed. With no display (no DISPLAY or WAYLAND_DISPLAY) SDL's dummy video driver is
used; SDL needs its video subsystem for the event queue, not for a window.

Which stick drives which axis and which button gives which robot command is the robot's:
`gamepad_sticks` and `gamepad_buttons` in its robot.yaml's teleop section; the event buttons
(and any override of a robot's button) are `TeleopConfig.gamepad_buttons`: B e-stop,
Start release, Y finish the episode (the task judges it), Back quit. A pad unplugged
mid-run raises the e-stop event and stops all motion. `close()` quits the SDL subsystems this operator
started (none that were running before it).
"""  # noqa: E501

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from typing import Any

from hardware.teleop.bindings import TeleopBindings
from hardware.teleop.config import TeleopConfig
from hardware.teleop.intent import EVENT_COMMANDS, Intent
from hardware.teleop.operator import DeviceError, DeviceOperator


def apply_deadzone(value: float, deadzone: float) -> float:
    """0 inside the deadzone; outside, rescaled so the stick's end still reads +/-1."""
    magnitude = abs(value)
    if magnitude <= deadzone:
        return 0.0
    return min(1.0, (magnitude - deadzone) / (1.0 - deadzone)) * (1.0 if value > 0 else -1.0)


def button_commands(bindings: TeleopBindings, config: TeleopConfig) -> dict[int, str]:
    """SDL button -> command: the robot's buttons, with the config's (events, overrides)
    taking their commands and buttons over."""
    known = set(EVENT_COMMANDS) | set(bindings.kind.commands)
    own = config.gamepad_buttons
    chosen = {c: b for c, b in bindings.gamepad_buttons.items() if c not in own}
    chosen.update({c: b for c, b in own.items() if c in known})  # later entries win a button
    return {button: command for command, button in chosen.items()}


def _import_pygame() -> Any:
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    import pygame

    return pygame


def describe(stick: Any) -> str:
    """Name, GUID and input counts of an opened pygame Joystick."""
    return (
        f"{stick.get_name()!r} (GUID {stick.get_guid()}, {stick.get_numaxes()} axes, "
        f"{stick.get_numbuttons()} buttons)"
    )


class GamepadOperator(DeviceOperator):
    """Sticks -> axes, buttons -> commands; one SDL joystick, by `config.gamepad_index`."""

    device = "gamepad"

    def __init__(
        self,
        task: str,
        config: TeleopConfig | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        super().__init__(task, config)
        self._pygame = pygame = _import_pygame()
        self._sticks = self.bindings.gamepad_sticks  # axis -> (stick, sign)
        self._buttons = button_commands(self.bindings, self.config)
        self._owns_display = not pygame.display.get_init()
        self._owns_joystick = not pygame.joystick.get_init()
        self._connected = False
        try:
            self._init_sdl()
            self._stick = self._open(self.config.gamepad_index)
        except BaseException:
            self._quit_sdl()
            raise
        self._instance_id = self._stick.get_instance_id()
        self._connected = True

    def describe(self) -> str:
        return describe(self._stick)

    def _init_sdl(self) -> None:
        pygame = self._pygame
        try:
            pygame.display.init()
        except pygame.error:  # a DISPLAY that is set but unreachable: run headless
            os.environ["SDL_VIDEODRIVER"] = "dummy"
            pygame.display.init()
        pygame.joystick.init()

    def _open(self, index: int) -> Any:
        pygame = self._pygame
        count = pygame.joystick.get_count()
        if count == 0:
            raise DeviceError(
                "no gamepad found: SDL sees no joystick (is it plugged in, and are "
                "/dev/input/event* readable by this user?); or use --device keyboard or "
                "--device scripted"
            )
        if index >= count:
            present = "; ".join(f"[{i}] {describe(_opened(pygame, i))}" for i in range(count))
            raise DeviceError(
                f"gamepad_index {index} is out of range: SDL sees {count} joystick(s): "
                f"{present}; set TeleopConfig.gamepad_index"
            )
        stick = _opened(pygame, index)
        self._check_inputs(stick)
        return stick

    def _check_inputs(self, stick: Any) -> None:
        """The device must have every axis and button the mapping reads."""
        used_axes = {stick_name for stick_name, _ in self._sticks.values()}
        missing = [
            f"axis {self.config.gamepad_axes[name]} ({name})"
            for name in sorted(used_axes)
            if self.config.gamepad_axes[name] >= stick.get_numaxes()
        ]
        missing += [
            f"button {button} ({command})"
            for button, command in sorted(self._buttons.items())
            if button >= stick.get_numbuttons()
        ]
        if missing:
            raise DeviceError(
                f"unsupported gamepad {describe(stick)} for {self.task}: the mapping needs "
                f"{', '.join(missing)}; remap TeleopConfig.gamepad_axes / gamepad_buttons "
                "to inputs this device has, or use another pad"
            )

    def _poll(self) -> Intent:
        commands = self._events()
        if not self._connected:
            return Intent({}, tuple(commands))
        axes = {}
        for axis, (stick_name, sign) in self._sticks.items():
            raw = float(self._stick.get_axis(self.config.gamepad_axes[stick_name]))
            axes[axis] = sign * apply_deadzone(raw, self.config.deadzone)
        return Intent(axes, tuple(commands))

    def _events(self) -> list[str]:
        """Commands from button presses since the last poll; e-stop if the pad went away."""
        pygame, commands = self._pygame, []
        for event in pygame.event.get():
            if getattr(event, "instance_id", None) != self._instance_id:
                continue
            if event.type == pygame.JOYBUTTONDOWN and event.button in self._buttons:
                commands.append(self._buttons[event.button])
                self.last_input = f"button {event.button} ({self._buttons[event.button]})"
            elif event.type == pygame.JOYDEVICEREMOVED and self._connected:
                self._connected = False
                commands.append("estop")
        return commands

    def _close(self) -> None:
        if self._connected:
            with contextlib.suppress(self._pygame.error):
                self._stick.quit()
        self._connected = False
        self._quit_sdl()

    def _quit_sdl(self) -> None:
        if self._owns_joystick:
            self._pygame.joystick.quit()
        if self._owns_display:
            self._pygame.display.quit()


def _opened(pygame: Any, index: int) -> Any:
    stick = pygame.joystick.Joystick(index)
    stick.init()
    return stick
