"""Keyboard teleoperation in a terminal (no display): keys read from a tty in cbreak mode.

Run: `python -c "from hardware.teleop import make_operator as m; o = m('keyboard', 'fetch-push'); o.close()"`

The terminal is put in cbreak mode (no echo, no line buffering; Ctrl-C still interrupts)
and restored by `close()`, by the context manager, and by an atexit hook for any exit path
that skips both (an uncaught exception included). Reads never block: `select` with a zero
timeout, then whatever bytes are there; arrow keys arrive as escape sequences (CSI `ESC [ A`
or SS3 `ESC O A`, possibly split across reads) and are decoded here.

A terminal sends no key-release: a held key arrives as autorepeat (after ~0.5 s, then at
~30 Hz). A motion key therefore holds its axis for `key_hold_s` after its last byte, then
ramps it to zero over `key_decay_s`: a released key stops the arm by itself. (The gap
before autorepeat starts makes a held key stutter once; `xset r rate 200 30` or a longer
`key_hold_s` smooths it.) Discrete keys (a gripper toggle, a preset) ignore their own
autorepeat; the e-stop key never does. If the terminal hangs up (EOF or EIO: the ssh session
or terminal window is gone), no e-stop key can arrive any more: the operator asks for the
e-stop and quit, once, and holds no motion key from then on.

`act` and `events` both read the terminal: a loop that holds (and asks for no action)
still gets the e-stop and quit keys as long as it calls `events` every period. The key
legend goes to stderr (the operator's terminal; teleop_node's stdout is its log), each key
in words: an arrow moves the gripper as seen in the view (its robot.yaml's `teleop:`).
"""  # noqa: E501

from __future__ import annotations

import atexit
import contextlib
import os
import select
import sys
import termios
import time
import tty
from collections.abc import Callable
from typing import TextIO

from hardware.teleop.bindings import TeleopBindings
from hardware.teleop.config import TeleopConfig
from hardware.teleop.intent import EVENT_COMMANDS, Intent
from hardware.teleop.operator import DeviceError, DeviceOperator

ESC = 0x1B
_FINAL = {ord("A"): "up", ord("B"): "down", ord("C"): "right", ord("D"): "left"}
_CONTROL = {
    0x20: "space", 0x0A: "enter", 0x0D: "enter", 0x09: "tab", 0x7F: "backspace",
    0x08: "backspace", 0x03: "ctrl-c", 0x04: "ctrl-d",
}  # fmt: skip
_MAX_PENDING = 32  # an escape sequence longer than this is garbage: dropped


class KeyParser:
    """Bytes from a terminal -> key names; keeps an incomplete escape sequence for later."""

    def __init__(self) -> None:
        self._pending = b""

    def feed(self, data: bytes) -> list[str]:
        """Key names in `data` (plus what was pending); an empty `data` flushes a lone ESC."""
        if not data:
            return self._flush()
        buffer, keys, i = self._pending + data, [], 0
        while i < len(buffer):
            if buffer[i] != ESC:
                name = _byte_name(buffer[i])
                if name:
                    keys.append(name)
                i += 1
                continue
            end = _sequence_end(buffer, i)
            if end is None:  # incomplete: wait for the rest
                break
            keys.extend(_sequence_name(buffer[i:end]))
            i = end
        self._pending = buffer[i:] if len(buffer) - i <= _MAX_PENDING else b""
        return keys

    def _flush(self) -> list[str]:
        pending, self._pending = self._pending, b""
        return ["escape"] if pending == bytes([ESC]) else []


def _byte_name(byte: int) -> str:
    if byte in _CONTROL:
        return _CONTROL[byte]
    if 0x21 <= byte <= 0x7E:
        return chr(byte).lower()
    return ""  # other control bytes and non-ASCII: ignored


def _sequence_end(buffer: bytes, start: int) -> int | None:
    """Index after the escape sequence at `start`, or None if it is not complete yet."""
    if start + 1 >= len(buffer):
        return None
    if buffer[start + 1] not in (ord("["), ord("O")):
        return start + 1  # a lone ESC followed by another key
    for j in range(start + 2, len(buffer)):
        if 0x40 <= buffer[j] <= 0x7E:  # CSI/SS3 final byte
            return j + 1
    return None


def _sequence_name(sequence: bytes) -> list[str]:
    if len(sequence) == 1:
        return ["escape"]
    name = _FINAL.get(sequence[-1])
    return [name] if name else []  # Home, F-keys...: ignored


class TerminalKeys:
    """A tty in cbreak mode, read without blocking; `close()` restores its previous mode."""

    def __init__(self, fd: int = 0):
        self.fd = fd
        if not os.isatty(fd):
            raise DeviceError(
                f"keyboard teleop needs a terminal, but fd {fd}"
                f"{' (stdin)' if fd == 0 else ''} is not a tty (piped or redirected?); run it "
                "in a terminal, or use --device gamepad or --device scripted"
            )
        try:
            self._saved: list | None = termios.tcgetattr(fd)
        except termios.error as e:
            raise DeviceError(f"keyboard teleop: cannot read the mode of tty fd {fd}: {e}") from e
        atexit.register(self.close)
        try:
            tty.setcbreak(fd, termios.TCSANOW)
        except termios.error as e:
            self.close()
            raise DeviceError(f"keyboard teleop: cannot set cbreak mode on fd {fd}: {e}") from e
        self._parser = KeyParser()
        self.hung_up = False  # EOF or EIO: no key, the e-stop key included, can arrive

    def read(self) -> list[str]:
        """Every key that arrived since the last call (never blocks)."""
        data = b""
        while not self.hung_up and select.select([self.fd], [], [], 0)[0]:
            try:
                chunk = os.read(self.fd, 1024)
            except OSError:  # EIO: the terminal's other side is gone
                chunk = b""
            if not chunk:
                self.hung_up = True
            data += chunk
        return self._parser.feed(data)

    def close(self) -> None:
        """Restore the terminal mode saved at start (idempotent)."""
        saved, self._saved = self._saved, None
        if saved is not None:
            atexit.unregister(self.close)
            with contextlib.suppress(termios.error):  # a terminal that is gone needs nothing
                termios.tcsetattr(self.fd, termios.TCSANOW, saved)


class KeyboardOperator(DeviceOperator):
    """Keys -> intents: motion keys hold an axis (with decay), other keys are commands."""

    device = "keyboard"

    def __init__(
        self,
        task: str,
        config: TeleopConfig | None = None,
        fd: int = 0,
        out: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        super().__init__(task, config)
        self._keys = self.config.keys_for(self.robot)
        self._clock = clock
        self._held: dict[str, tuple[float, float]] = {}  # axis -> (sign, time of last byte)
        self._last_byte: dict[str, float] = {}  # key -> time of its last byte
        self._terminal = TerminalKeys(fd)
        if self.config.show_help:
            stream = out if out is not None else sys.stderr
            try:
                stream.write(help_text(self.task, self._keys, command_words(self.bindings)) + "\n")
                stream.flush()
            except BaseException:
                self._terminal.close()
                raise

    def _poll(self) -> Intent:
        now = self._clock()
        commands = []
        hung_up = self._terminal.hung_up
        keys = self._terminal.read()
        if self._terminal.hung_up and not hung_up:  # nobody can stop the robot by key now
            self._held.clear()
            commands += ["estop", "quit"]
        for key in keys:
            command = self._keys.get(key)
            self.last_input = key if command is None else f"{key} ({command})"
            if command is None:
                continue
            axis = command[1:]
            if command[0] in "+-" and axis in self.mapping.axes:
                self._held[axis] = (1.0 if command[0] == "+" else -1.0, now)
            elif command == "estop" or not self._is_repeat(key, now):
                commands.append(command)
            self._last_byte[key] = now
        return Intent(self._held_axes(now), tuple(commands))

    def _is_repeat(self, key: str, now: float) -> bool:
        last = self._last_byte.get(key)
        return last is not None and now - last <= self.config.key_repeat_ignore_s

    def _held_axes(self, now: float) -> dict[str, float]:
        """Each held axis at full deflection, then ramping to zero; released axes dropped."""
        cfg, axes = self.config, {}
        for axis, (sign, since) in list(self._held.items()):
            late = now - since - cfg.key_hold_s
            level = 1.0 if late <= 0 else 1.0 - late / cfg.key_decay_s
            if level <= 0:
                del self._held[axis]
            else:
                axes[axis] = sign * level
        return axes

    def _on_estop(self) -> None:
        self._held.clear()

    def _close(self) -> None:
        self._terminal.close()


EVENT_WORDS = {
    "estop": "e-stop: latch, the episode clock pauses",
    "release_estop": "release the e-stop",
    "end_episode": "finish the episode now (the task judges it)",
    "quit": "quit",
}


def command_words(bindings: TeleopBindings) -> dict[str, str]:
    """What each command means to the operator: the mapping kind's words, the events'."""
    words = getattr(bindings.kind, "command_words", None)
    return {**EVENT_WORDS, **(words() if callable(words) else {})}


def help_text(task: str, keys: dict[str, str], words: dict[str, str] | None = None) -> str:
    """One line per key, grouped: motion, commands, events (key:command (in words))."""
    words = words or {}
    groups: dict[str, list[str]] = {"move": [], "do": [], "events": []}
    for key, command in keys.items():
        group = "move" if command[0] in "+-" else "events" if command in EVENT_COMMANDS else "do"
        said = f" ({words[command]})" if command in words else ""
        groups[group].append(f"{key}:{command}{said}")
    lines = [f"teleop {task} (keyboard): keys (hold a motion key to move)"]
    for name, items in groups.items():
        lines += [f"  {name:6s} {item}" for item in items]
    return "\n".join(lines)
