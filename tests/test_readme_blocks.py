"""README.md's ```python and ```bash blocks run here, so the README cannot drift (DESIGN 5).

Python blocks are executed (a subprocess, cwd = the repository, MUJOCO_GL=egl). In bash
blocks every command line (`\\` continuations joined) is first parsed by the real argument
parser: `twinbridge` and `python -m sim.cli` by `sim.cli.build_parser()`; other `python -m`
modules and `.venv/bin/python` scripts by their own argparse, stopped right after parsing.
Then it runs (with .venv/bin first on PATH) and must exit 0, unless an HTML comment right
above the block says otherwise, visibly in the README's source:

    <!-- readme-test: skip (why) -->                   the block is neither run nor parsed
    <!-- readme-test: parse-only (why) -->             its commands are parsed, not run
    <!-- readme-test: skip "ros2 launch" (why) -->     only for lines with those words

A marker needs a reason and must match a line; a command no parser here knows (make, ros2)
fails unless it is marked skip. A skip-marked line must still be checked statically (a
make target with `make -n`, a shipped launch file, valid shell): one that nothing here can
check fails. TWINBRIDGE_README=PATH checks another file, which is
how `test_the_check_catches_broken_blocks` proves that a broken block fails.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = Path(os.environ.get("TWINBRIDGE_README", ROOT / "README.md"))
RUN_TIMEOUT_S = 120
MODES = ("skip", "parse-only")
_MARKER = re.compile(
    r'^<!--\s*readme-test:\s*(?P<mode>[\w-]+)\s*(?:"(?P<pattern>[^"]+)")?\s*'
    r"\((?P<reason>[^)]+)\)\s*-->$"
)
# A program stopped right after its argparse parsed the command line: exit 0 means parsed,
# 3 means the program never parsed arguments (then nothing here can check the line).
_PROBE = """
import argparse, runpy, sys
class Parsed(BaseException):
    pass
real, depth = argparse.ArgumentParser.parse_known_args, [0]
def parse_known_args(self, *args, **kwargs):
    depth[0] += 1
    try:
        result = real(self, *args, **kwargs)
    finally:
        depth[0] -= 1
    if depth[0] == 0:  # the outermost parser is done (subparsers nest calls)
        raise Parsed
    return result
argparse.ArgumentParser.parse_known_args = parse_known_args
kind, target = sys.argv[1], sys.argv[2]
sys.argv = [target, *sys.argv[3:]]
try:
    if kind == "module":
        runpy.run_module(target, run_name="__main__", alter_sys=True)
    else:
        runpy.run_path(target, run_name="__main__")
except Parsed:
    sys.exit(0)
sys.exit(3)
"""


@dataclass(frozen=True)
class Marker:
    mode: str  # skip | parse-only
    pattern: str | None  # None: the whole block
    reason: str
    line: int


@dataclass(frozen=True)
class Block:
    lang: str
    line: int  # README line of the block's first content line
    text: str
    markers: tuple[Marker, ...]


@dataclass(frozen=True)
class Command:
    line: int
    text: str  # continuations joined
    mode: str  # run | parse-only | skip
    reason: str


class ReadmeError(ValueError):
    """A README marker that is malformed, misplaced or matches nothing."""


def read_blocks(path: Path) -> list[Block]:
    """The python and bash blocks of `path`, each with the markers right above it."""
    lines = path.read_text().splitlines()
    blocks: list[Block] = []
    pending: list[Marker] = []
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        if "readme-test:" in line:
            pending.append(_marker(line, i + 1))
        elif line.startswith("```"):
            end = next((j for j in range(i + 1, len(lines)) if lines[j].strip() == "```"), None)
            if end is None:
                raise ReadmeError(f"{path}:{i + 1}: a code block that is never closed")
            lang = line[3:].strip()
            if lang == "python" and any(m.pattern or m is not pending[0] for m in pending):
                raise ReadmeError(f"{path}:{i}: a python block takes one whole-block marker")
            if lang in ("python", "bash"):
                blocks.append(Block(lang, i + 2, "\n".join(lines[i + 1 : end]), tuple(pending)))
            elif pending:
                raise ReadmeError(f"{path}:{pending[0].line}: marker above a {lang} block")
            pending, i = [], end
        elif pending:
            raise ReadmeError(f"{path}:{pending[0].line}: a marker must be right above a block")
        i += 1
    return blocks


def _marker(line: str, number: int) -> Marker:
    match = _MARKER.match(line)
    if match is None or match["mode"] not in MODES:
        raise ReadmeError(
            f"README line {number}: malformed marker {line!r}; write "
            f'<!-- readme-test: skip|parse-only ["text"] (reason) -->'
        )
    return Marker(match["mode"], match["pattern"], match["reason"].strip(), number)


def commands(block: Block) -> list[Command]:
    """The block's command lines with the mode its markers give each; unused markers fail."""
    found: list[Command] = []
    used: set[Marker] = set()
    for line, text in _logical_lines(block):
        matching = [m for m in block.markers if m.pattern and _contains(text, m.pattern)]
        if len(matching) > 1:
            raise ReadmeError(f"README line {line}: markers {matching[0].line} and "
                              f"{matching[1].line} both match `{text}`")  # fmt: skip
        marker = next(iter(matching), None)
        marker = marker or next((m for m in block.markers if m.pattern is None), None)
        if marker is not None:
            used.add(marker)
        mode, reason = (marker.mode, marker.reason) if marker else ("run", "")
        found.append(Command(line, text, mode, reason))
    unused = [m for m in block.markers if m not in used]
    if unused:
        raise ReadmeError(f"README line {unused[0].line}: marker matches no command below it")
    return found


def _contains(command: str, pattern: str) -> bool:
    """Whether the pattern's words appear, consecutively, among the command's words."""
    words, wanted = shlex.split(command, comments=True), shlex.split(pattern)
    return any(words[i : i + len(wanted)] == wanted for i in range(len(words)))


def _logical_lines(block: Block) -> list[tuple[int, str]]:
    """(README line, text) of each command, `\\`-continued lines joined; comments dropped."""
    result: list[tuple[int, str]] = []
    start, parts = 0, []
    for offset, raw in enumerate(block.text.splitlines()):
        text = raw.strip()
        if not parts and (not text or text.startswith("#")):
            continue
        if not parts:
            start = block.line + offset
        parts.append(text.removesuffix("\\").strip())
        if not text.endswith("\\"):
            result.append((start, " ".join(parts)))
            parts = []
    return result


# -- checking one command or block --------------------------------------------------------------
def check_command(command: Command) -> str:
    """Parse (and unless parse-only, run) one command; raises AssertionError naming the line
    and the parser's or the program's complaint. Returns what was done."""
    if command.mode == "skip":
        return _check_statically(command)
    words = shlex.split(command.text, comments=True)
    _parse(command, words)
    if command.mode == "parse-only":
        return "parsed"
    result = subprocess.run(
        ["bash", "-c", command.text], cwd=ROOT, env=_env(), capture_output=True, text=True,
        timeout=RUN_TIMEOUT_S,
    )  # fmt: skip
    if result.returncode != 0:
        raise AssertionError(
            f"README line {command.line}: `{command.text}` exited {result.returncode}:\n"
            + (result.stderr or result.stdout)[-2000:]
        )
    return "ran"


def _check_statically(command: Command) -> str:
    """What a line that cannot run here still promises: a make target exists (`make -n`),
    a launch file exists, a shell line is valid shell. Else it is skipped, with its
    README reason."""
    words = shlex.split(command.text, comments=True)
    where = f"README line {command.line}: `{command.text}`"
    if words[:3] == ["ros2", "launch", "twinbridge"] and len(words) > 3:
        assert (ROOT / "ros_ws" / "launch" / words[3]).is_file(), f"{where}: no such launch file"
        return "checked"
    if words[0] == "make" or words[0] == "export":
        check = ["make", "-n", *words[1:]] if words[0] == "make" else ["bash", "-n", "-c"]
        check += [] if words[0] == "make" else [command.text]
        result = subprocess.run(check, cwd=ROOT, capture_output=True, text=True, timeout=30)
        assert result.returncode == 0, f"{where}: {result.stderr[-1000:]}"
        return "checked"
    return "skipped"


def _parse(command: Command, words: list[str]) -> None:
    program, args = _program(words)
    where = f"README line {command.line}: `{command.text}`"
    if program is None:
        raise AssertionError(
            f"{where}: no argument parser here knows {words[0]!r}; mark the block or line "
            f'<!-- readme-test: skip "{words[0]}" (why it cannot run here) -->'
        )
    if program == ("module", "sim.cli"):
        _parse_twinbridge(where, args)
    elif command.mode == "parse-only":  # a run checks other programs' parsers itself
        _probe(where, program, args)


def _program(words: list[str]) -> tuple[tuple[str, str] | None, list[str]]:
    """(kind, target) of the program a command line starts, and its arguments."""
    head = words[0].removeprefix(".venv/bin/")
    if head == "twinbridge":
        return ("module", "sim.cli"), words[1:]
    if head in ("python", "python3") and len(words) > 2 and words[1] == "-m":
        return ("module", words[2]), words[3:]
    if head in ("python", "python3") and len(words) > 1 and words[1].endswith(".py"):
        return ("script", words[1]), words[2:]
    return None, words[1:]


@cache
def _twinbridge_parser() -> argparse.ArgumentParser:
    from sim.cli import build_parser

    return build_parser()


def _parse_twinbridge(where: str, args: list[str]) -> None:
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            _twinbridge_parser().parse_args(args)
    except SystemExit as e:
        if e.code not in (0, None):  # 0: --help
            raise AssertionError(
                f"{where}: twinbridge's parser refuses it:\n{err.getvalue()}"
            ) from None


def _probe(where: str, program: tuple[str, str], args: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, "-c", _PROBE, *program, *args], cwd=ROOT, env=_env(),
        capture_output=True, text=True, timeout=RUN_TIMEOUT_S,
    )  # fmt: skip
    if result.returncode == 3:
        raise AssertionError(f"{where}: the program has no argparse parser to check it with")
    if result.returncode != 0:
        raise AssertionError(f"{where}: its parser refuses it:\n{result.stderr[-2000:]}")


def check_python_block(block: Block) -> str:
    """Run a python block as a script; raises AssertionError with its traceback."""
    marker = next(iter(block.markers), None)
    if marker is not None and marker.mode == "skip":
        return "skipped"
    compile(block.text, f"README line {block.line}", "exec")
    if marker is not None:  # parse-only
        return "parsed"
    result = subprocess.run(
        [sys.executable, "-c", block.text], cwd=ROOT, env=_env(), capture_output=True,
        text=True, timeout=RUN_TIMEOUT_S,
    )  # fmt: skip
    if result.returncode != 0:
        raise AssertionError(
            f"README python block at line {block.line} failed:\n{result.stderr[-3000:]}"
        )
    return "ran"


def _env() -> dict[str, str]:
    env = {**os.environ, "MUJOCO_GL": "egl"}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


# -- the tests ----------------------------------------------------------------------------------
@cache
def _collected(path: Path) -> tuple[list[Block], list[Command], str]:
    """Blocks and commands of `path`, or the README error that stops collecting them."""
    try:
        blocks = read_blocks(path)
        found = [c for b in blocks if b.lang == "bash" for c in commands(b)]
    except ReadmeError as e:
        return [], [], str(e)
    return blocks, found, ""


def _report(outcome: str, reason: str) -> None:
    """A line that ran, was parsed by its program's parser, or was checked statically has
    passed. A skip-marked line that nothing here can check fails: give it a check (in
    `_check_statically`) rather than let the README drift unchecked."""
    if outcome == "skipped":
        raise AssertionError(f"README line marked skip ({reason}) is checked by nothing here")


def test_readme_markers_are_well_formed_and_used() -> None:
    blocks, found, error = _collected(README)
    assert not error, error
    assert blocks and found, f"{README} has no python or bash block"


@pytest.mark.parametrize(
    "block",
    [b for b in _collected(README)[0] if b.lang == "python"],
    ids=lambda b: f"L{b.line}",
)
def test_readme_python_block(block: Block) -> None:
    reason = block.markers[0].reason if block.markers else ""
    _report(check_python_block(block), reason)


@pytest.mark.parametrize(
    "command", _collected(README)[1], ids=lambda c: f"L{c.line} {c.text[:50]}"
)
def test_readme_command(command: Command) -> None:
    _report(check_command(command), command.reason)


BROKEN = """# A README with mistakes the check must catch

```python
from sim.twin import Twin
Twin.load("fetch", "push").step({"robot0:shoulder_lift_joint": 0.3})
```

```bash
twinbridge tasks
twinbridge rollout --task fetch-push --no-such-flag
make demo
```

<!-- readme-test: parse-only (placeholders) -->
```bash
twinbridge record --robot fetch --out out/x.mcap [--resume]
```
"""


def test_the_check_catches_broken_blocks(tmp_path: Path) -> None:
    """A wrong actuator name, an unknown flag, an unmarked `make` line and a placeholder
    each fail; a correct line passes; misplaced or stale markers are refused."""
    readme = tmp_path / "README.md"
    readme.write_text(BROKEN)
    python, bash, placeholder = read_blocks(readme)
    with pytest.raises(AssertionError, match="unknown actuator 'robot0:shoulder_lift_joint'"):
        check_python_block(python)
    tasks, bad_flag, make = commands(bash)
    assert check_command(tasks) == "ran"
    with pytest.raises(AssertionError, match="--no-such-flag"):
        check_command(bad_flag)
    with pytest.raises(AssertionError, match="no argument parser here knows 'make'"):
        check_command(make)
    (record,) = commands(placeholder)
    with pytest.raises(AssertionError, match=r"unrecognized arguments: \[--resume\]"):
        check_command(record)
    for bad, needle in (
        ('<!-- readme-test: skip "ros2" (no ROS) -->\n```bash\nmake demo\n```\n', "matches no"),
        ("<!-- readme-test: skip -->\n```bash\nmake demo\n```\n", "malformed"),
        ("<!-- readme-test: skip (why) -->\n\ntext\n```bash\nmake demo\n```\n", "right above"),
    ):
        readme.write_text(bad)
        with pytest.raises(ReadmeError, match=needle):
            [commands(b) for b in read_blocks(readme)]


def test_the_test_fails_on_a_broken_readme(tmp_path: Path) -> None:
    """End to end: this very test module, pointed at a broken README, fails and names it."""
    readme = tmp_path / "README.md"
    readme.write_text(BROKEN)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", __file__,
         "-k", "test_readme_python_block or test_readme_command"],
        cwd=ROOT, env={**_env(), "TWINBRIDGE_README": str(readme)}, capture_output=True,
        text=True, timeout=RUN_TIMEOUT_S,
    )  # fmt: skip
    assert result.returncode == 1, result.stdout[-3000:]
    assert "4 failed, 1 passed" in result.stdout, result.stdout[-3000:]
    assert "unknown actuator 'robot0:shoulder_lift_joint'" in result.stdout


def test_the_environment_the_readme_gives_third_party_tools_is_the_bringups() -> None:
    """The one-line `export` for a third-party tool (tests/contract_client.py joins with it)
    sets exactly what the sim bringup's processes run with."""
    from contract_client import readme_environment

    from ros_ws.discovery import sim_discovery

    assert readme_environment(12) == sim_discovery(12)
