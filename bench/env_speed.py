"""Env speed: our tasks vs the raw MuJoCo limit vs Gymnasium-Robotics, plus vector scaling.

Run: `.venv/bin/python bench/env_speed.py --json` (add `--quick` for a smoke run, `--tasks
fetch-push hand-egg` for a subset, `--no-fail` to only report).

For every registered task, in interleaved rounds (so machine load hits all three alike):

- raw: the MuJoCo limit. A random-action rollout of our env records the full physics state
  (controls included) at each `mujoco.mj_step` call of `env.step`; we then time only those
  calls, `mujoco.mj_step(model, data, nstep)` from those states on our own model (restoring
  a state is outside the timed region). With ideal servos that is one call of frame_skip
  steps per env step; with the robot's actuation (sim/actuation.py) the servo setpoints
  ramp, so MuJoCo itself must be called once per run of equal setpoints, each with its own
  controls: that is its limit for this physics (ours makes those calls from compiled code,
  `sim/twin.py`; the replay makes them from Python, about 1 us each).
  env-steps/s = env steps / time of the calls replayed.
- ours: `gymnasium.make(id, disable_env_checker=True)`, random actions, resets every
  `max_episode_steps` included.
- peer: Gymnasium-Robotics's equivalent env, same step/reset accounting, in its own venv on
  mujoco 3.3.7 (`bench/.peer-venv`, created on first use; its env code fails on newer MuJoCo).

Ours and raw alternate episode by episode within a round (each episode's env steps, then
the same episode's recorded mj_step calls, or the other way round), so the load bursts of a
shared machine fall on both sides of the ratio alike. Single-env measurements (ours, raw and
the peer process) are pinned to the same one CPU, so no measurement gets a second core and
all share the same cache. Medians over rounds are reported; ratios are medians of the
per-round paired ratios. Then `sim.vector` throughput
with 1 and 2 workers over the same total number of envs (workers pinned to distinct CPUs).
Exit status 1 if a target is missed (ours/raw >= 0.9 per task, 2-worker scaling >= 1.8).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

import gymnasium as gym
import mujoco
import numpy as np
from tqdm import tqdm

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR.parent))  # run as a script from a checkout
sys.path.insert(0, str(BENCH_DIR))  # the shared bench/report.py

from peer_venv import PeerVenvError, ensure_venv  # noqa: E402
from report import emit  # noqa: E402

import sim.twin as twin_module  # noqa: E402
from sim.envs import make_task_env  # noqa: E402
from sim.tasks import TASKS, get_task_spec  # noqa: E402
from sim.vector import SubprocVectorEnv  # noqa: E402

STATE_SPEC = mujoco.mjtState.mjSTATE_INTEGRATION
PEER_VENV = BENCH_DIR / ".peer-venv"
PEER_SCRIPT = BENCH_DIR / "peer_gymrobotics.py"
# gymnasium-robotics 1.4.2 needs gymnasium >= 1.2; its env code runs on mujoco 3.3.7.
PEER_REQUIREMENTS = ("mujoco==3.3.7", "gymnasium-robotics==1.4.2", "gymnasium==1.2.3")
# Our CLI task name -> the Gymnasium-Robotics id of the same task (sparse reward).
PEER_IDS = {
    "fetch-reach": "FetchReach-v4",
    "fetch-push": "FetchPush-v4",
    "fetch-slide": "FetchSlide-v4",
    "fetch-pick-and-place": "FetchPickAndPlace-v4",
    "hand-reach": "HandReach-v3",
    "hand-block-rotate-z": "HandManipulateBlockRotateZ-v1",
    "hand-block-rotate-parallel": "HandManipulateBlockRotateParallel-v1",
    "hand-block-rotate-xyz": "HandManipulateBlockRotateXYZ-v1",
    "hand-block": "HandManipulateBlock-v1",
    "hand-egg": "HandManipulateEgg-v1",
    "hand-pen": "HandManipulatePen-v1",
}


class BenchError(RuntimeError):
    """The benchmark could not measure something (not: a target was missed)."""


@dataclass
class BenchConfig:
    """What to measure and how long; defaults keep the full run under ~10 min on 2 cores."""

    tasks: list[str] = field(default_factory=lambda: list(TASKS))
    rounds: int = 5
    steps: int = 2000  # env steps per measurement, rounded up to whole episodes
    cpu: int | None = None  # CPU for single-env measurements; None: the last allowed one
    peer: bool = True
    vector_task: str = "fetch-push"
    # 8 envs per worker: enough work per message to amortize the ~0.2 ms round trip of a
    # lock-step barrier on this 2-vCPU VM (at 4 per worker it scales ~1.8-1.87x).
    vector_envs: int = 16
    vector_steps: int = 300  # vector steps per measurement (x vector_envs env steps)
    vector_rounds: int = 9  # cheap, and a 2-core barrier is noisier than one core
    min_ours_over_raw: float = 0.9
    min_vector_scaling: float = 1.8
    seed: int = 0

    def __post_init__(self) -> None:
        for name in [*self.tasks, self.vector_task]:
            get_task_spec(name)  # UnknownNameError lists the valid names
        if min(self.rounds, self.steps, self.vector_steps, self.vector_rounds) < 1:
            raise ValueError("rounds, steps, vector_steps and vector_rounds must be >= 1")
        if self.cpu is None:
            self.cpu = max(os.sched_getaffinity(0))
        if self.cpu not in os.sched_getaffinity(0):
            raise ValueError(f"cpu {self.cpu} is not one this process may use: {_allowed()}")


# -- measurements --------------------------------------------------------------------------
def make_env(task: str) -> gym.Env:
    """Our env exactly as users get it from `gymnasium.make`, minus the per-step checker."""
    return make_task_env(task, disable_env_checker=True)


def random_actions(env: gym.Env, steps: int, seed: int) -> np.ndarray:
    """Pre-drawn uniform actions, so that sampling is never inside a timed region."""
    space = env.action_space
    low, high = space.low, space.high  # type: ignore[attr-defined]
    shape = (steps, *space.shape)  # type: ignore[misc]
    return np.random.default_rng(seed).uniform(low, high, shape).astype(space.dtype)


def episode_steps(task: str, steps: int) -> int:
    """`steps` rounded up to whole episodes, so every measurement has the same reset share."""
    limit = get_task_spec(task).max_episode_steps
    return max(1, -(-steps // limit)) * limit


def measure_ours(env: gym.Env, actions: np.ndarray, seed: int) -> dict[str, float]:
    """Env steps/s over the given actions: first reset, steps, and a reset per truncation."""
    gc.collect()
    resets = 1
    start = time.perf_counter()
    env.reset(seed=seed)
    for i, action in enumerate(actions):
        _, _, terminated, truncated, _ = env.step(action)
        if (terminated or truncated) and i + 1 < len(actions):
            env.reset()
            resets += 1
    seconds = time.perf_counter() - start
    return {"env_steps_per_s": len(actions) / seconds, "seconds": seconds, "resets": resets}


@dataclass
class PhysicsTrace:
    """Physics states entering each `mj_step` call of a rollout, and that call's step count."""

    states: np.ndarray  # (calls, state size), mjSTATE_INTEGRATION (controls included)
    nsteps: np.ndarray  # (calls,) physics steps of each call
    env_steps: int  # env.step calls that produced them
    episodes: np.ndarray  # (calls,) the episode each call belongs to


def record_trace(env: gym.Env, actions: np.ndarray, seed: int, limit: int) -> PhysicsTrace:
    """States visited by our env under `actions`, caught at each `mujoco.mj_step` call inside
    `env.step` (one call of frame_skip steps with ideal servos; with the robot's actuation,
    one per run of equal servo setpoints, each with its own controls)."""
    twin = getattr(env.unwrapped, "twin", None)
    if twin is None:
        raise BenchError(f"{env.spec.id if env.spec else env}: no `twin`; cannot record states")
    states, nsteps, episodes, inside = [], [], [], [False, 0]
    original = mujoco.mj_step

    def step_and_record(model: Any, data: Any, nstep: int = 1) -> None:
        if inside[0] and data is twin.data:
            states.append(twin.get_state())
            nsteps.append(nstep)
            episodes.append(inside[1] // limit)
        original(model, data, nstep)

    mujoco.mj_step = step_and_record
    compiled = list(twin_module._RUNS)
    twin_module._RUNS[:] = [None]  # the command path's Python loop: its calls are visible
    try:
        _rollout(env, actions, seed, inside)
    finally:
        mujoco.mj_step = original
        twin_module._RUNS[:] = compiled
    if not states:
        raise BenchError("env.step never called Twin.step; the raw limit cannot be measured")
    return PhysicsTrace(np.array(states), np.array(nsteps), len(actions), np.array(episodes))


def _rollout(env: gym.Env, actions: np.ndarray, seed: int, inside: list[Any]) -> None:
    env.reset(seed=seed)
    for i, action in enumerate(actions):
        inside[0], inside[1:] = True, [i]
        _, _, terminated, truncated, _ = env.step(action)
        inside[0] = False
        if terminated or truncated:
            env.reset()


def measure_raw(model: mujoco.MjModel, trace: PhysicsTrace) -> dict[str, float]:
    """Time `mj_step` alone from each recorded state (restoring it is not timed)."""
    data = mujoco.MjData(model)
    gc.collect()
    seconds = _time_calls(model, data, trace, 0, len(trace.nsteps))
    return _raw_rates(trace, seconds)


def measure_pair(
    env: gym.Env, actions: np.ndarray, trace: PhysicsTrace, seed: int, limit: int, raw_first: bool
) -> tuple[dict[str, float], dict[str, float]]:
    """Ours and the raw limit over the same episodes, alternating episode by episode (which
    side goes first alternates too), so a burst of load on this shared machine falls on both
    sides alike instead of on whichever ran during it. Returns (ours, raw) as measure_ours
    and measure_raw do."""
    model = env.unwrapped.model  # type: ignore[attr-defined]
    data = mujoco.MjData(model)
    episodes = len(actions) // limit
    bounds = np.searchsorted(trace.episodes, np.arange(episodes + 1)).tolist()
    gc.collect()
    ours = raw = 0.0
    for e in range(episodes):
        for kind in ("raw", "ours") if (e % 2 == 0) == raw_first else ("ours", "raw"):
            if kind == "ours":
                ours += _time_episode(env, actions[e * limit : (e + 1) * limit], seed, e == 0)
            else:
                raw += _time_calls(model, data, trace, bounds[e], bounds[e + 1])
    return {"env_steps_per_s": len(actions) / ours, "seconds": ours, "resets": episodes}, (
        _raw_rates(trace, raw)
    )


def _time_episode(env: gym.Env, actions: np.ndarray, seed: int, first: bool) -> float:
    """Seconds for a reset (seeded on the first episode) and the episode's steps."""
    start = time.perf_counter()
    env.reset(seed=seed) if first else env.reset()
    for action in actions:
        env.step(action)
    return time.perf_counter() - start


def _time_calls(
    model: mujoco.MjModel, data: mujoco.MjData, trace: PhysicsTrace, first: int, end: int
) -> float:
    """Seconds inside `mj_step` for recorded calls first..end-1, each from its own state."""
    seconds = 0.0
    clock = time.perf_counter
    states, nsteps = trace.states, trace.nsteps.tolist()
    for i in range(first, end):
        mujoco.mj_setState(model, data, states[i], STATE_SPEC)
        start = clock()
        mujoco.mj_step(model, data, nsteps[i])
        seconds += clock() - start
    return seconds


def _raw_rates(trace: PhysicsTrace, seconds: float) -> dict[str, float]:
    return {
        "env_steps_per_s": trace.env_steps / seconds,
        "mj_steps_per_s": float(trace.nsteps.sum()) / seconds,
        "seconds": seconds,
    }


def measure_vector(venv: SubprocVectorEnv, actions: np.ndarray, seed: int) -> dict[str, float]:
    """Env steps/s (all sub-envs) of a vector env over a batch of actions, autoresets included."""
    venv.reset(seed=seed)
    gc.collect()
    start = time.perf_counter()
    for batch in actions:
        venv.step(batch)
    seconds = time.perf_counter() - start
    return {"env_steps_per_s": actions.shape[0] * venv.num_envs / seconds, "seconds": seconds}


# -- the peer (Gymnasium-Robotics in its own venv) ------------------------------------------
def ensure_peer_venv(venv: Path = PEER_VENV) -> Path:
    """The peer venv's python, creating the venv with pinned packages on first use."""
    try:
        return ensure_venv(venv, PEER_REQUIREMENTS)
    except PeerVenvError as e:
        raise BenchError(f"{e}; or pass --no-peer") from e


class PeerProcess:
    """A long-lived `peer_gymrobotics.py --serve` subprocess, pinned to our benchmark CPU."""

    def __init__(self, python: Path, cpu: int | None):
        command = [str(python), str(PEER_SCRIPT), "--serve"]
        if cpu is not None:
            command += ["--cpu", str(cpu)]
        self._process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1
        )
        hello = self._read()
        self.versions: dict[str, str] = hello.get("versions", {})

    def measure(self, env_id: str, steps: int, seed: int) -> dict[str, Any]:
        """One timed run in the peer; raises BenchError with the peer's message on failure."""
        stdin = self._process.stdin
        if stdin is None:
            raise BenchError("peer process has no stdin")
        stdin.write(json.dumps({"env_id": env_id, "steps": steps, "seed": seed}) + "\n")
        reply = self._read()
        if "error" in reply:
            raise BenchError(f"peer {env_id}: {reply['error']}")
        return reply

    def _read(self) -> dict[str, Any]:
        line = self._process.stdout.readline() if self._process.stdout else ""
        if not line:
            code = self._process.wait(timeout=10)
            raise BenchError(f"the peer process exited (code {code}); see its stderr above")
        return json.loads(line)

    def close(self) -> None:
        if self._process.stdin:
            self._process.stdin.close()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()


# -- orchestration -------------------------------------------------------------------------
@dataclass
class TaskBench:
    """Everything measured for one task, with the objects reused across rounds."""

    name: str
    env: gym.Env
    actions: np.ndarray
    trace: PhysicsTrace
    samples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    peer_error: str | None = None


@contextmanager
def pinned(cpu: int | None) -> Iterator[None]:
    """Run the block on one CPU (fairer single-env timing), then restore the affinity."""
    before = os.sched_getaffinity(0)
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def prepare_task(name: str, config: BenchConfig) -> TaskBench:
    """Build our env, draw the actions and record the states the raw limit replays."""
    env = make_env(name)
    actions = random_actions(env, episode_steps(name, config.steps), config.seed)
    trace = record_trace(env, actions, config.seed, get_task_spec(name).max_episode_steps)
    return TaskBench(name, env, actions, trace, {"ours": [], "raw": [], "peer": []})


def run_round(
    bench: TaskBench,
    r: int,
    peer: PeerProcess | None,
    config: BenchConfig,
    tick: Callable[[], None],
) -> None:
    """One round of a task: ours and raw (paired, episode by episode) and the peer, in a
    rotating order (no fixed first place)."""
    seed = config.seed + 1000 * (r + 1)
    limit = get_task_spec(bench.name).max_episode_steps
    for kind in ("pair", "peer") if r % 2 == 0 else ("peer", "pair"):
        if kind == "pair":
            ours, raw = measure_pair(
                bench.env, bench.actions, bench.trace, seed, limit, r % 2 == 1
            )
            bench.samples["ours"].append(ours)
            bench.samples["raw"].append(raw)
        elif peer is not None and bench.peer_error is None:
            _peer_round(bench, peer, seed)
        tick()


def _peer_round(bench: TaskBench, peer: PeerProcess, seed: int) -> None:
    try:
        bench.samples["peer"].append(peer.measure(PEER_IDS[bench.name], len(bench.actions), seed))
    except (BenchError, KeyError) as e:
        bench.peer_error = str(e)


def run_single_env(config: BenchConfig, peer: PeerProcess | None) -> list[TaskBench]:
    """All tasks, `rounds` times, each round visiting every task (interleaved, pinned)."""
    with pinned(config.cpu):
        benches = [
            prepare_task(name, config) for name in tqdm(config.tasks, desc="record", leave=False)
        ]
        total = config.rounds * len(benches) * 2
        with tqdm(total=total, desc="single env", unit="run") as bar:
            for r in range(config.rounds):
                for bench in benches:
                    bar.set_postfix_str(f"round {r + 1} {bench.name}")
                    run_round(bench, r, peer, config, bar.update)
    return benches


def run_vector(config: BenchConfig) -> dict[str, Any]:
    """Throughput of 1 vs 2 workers holding the same envs, interleaved over rounds."""
    n, seed = config.vector_envs, config.seed
    samples: dict[int, list[float]] = {1: [], 2: []}
    venvs = {
        w: SubprocVectorEnv(config.vector_task, n, w, seed=seed, pin_workers=True) for w in (1, 2)
    }
    try:
        rng = np.random.default_rng(seed)
        space = venvs[1].action_space
        actions = rng.uniform(space.low, space.high, (config.vector_steps, *space.shape))  # type: ignore[attr-defined,misc]
        actions = actions.astype(space.dtype)
        for r in tqdm(range(config.vector_rounds), desc="vector", unit="round"):
            for w in (1, 2) if r % 2 == 0 else (2, 1):
                samples[w].append(measure_vector(venvs[w], actions, seed + r)["env_steps_per_s"])
    finally:
        for venv in venvs.values():
            venv.close()
    ratios = [b / a for a, b in zip(samples[1], samples[2], strict=True)]
    return {
        "task": config.vector_task,
        "num_envs": n,
        "rounds": config.vector_rounds,
        "steps_per_run": config.vector_steps,
        "env_steps_per_s": {str(w): statistics.median(s) for w, s in samples.items()},
        "samples": {str(w): s for w, s in samples.items()},
        "scaling": statistics.median(ratios),
        "target": config.min_vector_scaling,
        "meets_target": statistics.median(ratios) >= config.min_vector_scaling,
    }


# -- reporting -----------------------------------------------------------------------------
def _median(samples: list[dict[str, Any]], key: str = "env_steps_per_s") -> float | None:
    return statistics.median(s[key] for s in samples) if samples else None


def _paired_ratio(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> float | None:
    if not a or len(a) != len(b):
        return None
    return statistics.median(
        x["env_steps_per_s"] / y["env_steps_per_s"] for x, y in zip(a, b, strict=True)
    )


def summarize_task(bench: TaskBench, config: BenchConfig) -> dict[str, Any]:
    """The per-task JSON record: medians, paired ratios and whether ours meets the target."""
    s = bench.samples
    ours_over_raw = _paired_ratio(s["ours"], s["raw"])
    return {
        "gym_id": get_task_spec(bench.name).gym_id,
        "frame_skip": int(bench.env.unwrapped.frame_skip),  # type: ignore[attr-defined]
        "steps_per_run": len(bench.actions),
        "ours_env_steps_per_s": _median(s["ours"]),
        "raw_env_steps_per_s": _median(s["raw"]),
        "raw_mj_steps_per_s": _median(s["raw"], "mj_steps_per_s"),
        "peer_id": PEER_IDS.get(bench.name),
        "peer_env_steps_per_s": _median(s["peer"]),
        "peer_error": bench.peer_error,
        "ours_over_raw": ours_over_raw,
        "ours_over_peer": _paired_ratio(s["ours"], s["peer"]),
        "meets_target": ours_over_raw is not None and ours_over_raw >= config.min_ours_over_raw,
        "samples": {k: [round(x["env_steps_per_s"], 1) for x in v] for k, v in s.items()},
    }


def _fmt(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def format_table(report: dict[str, Any]) -> str:
    """A plain-text table of the report, with the targets and the conditions of the run."""
    head = (
        f"{'task':28} {'ours/s':>8} {'raw/s':>8} {'mj_step/s':>10} {'peer/s':>8} "
        f"{'ours/raw':>9} {'ours/peer':>9}"
    )
    lines = [head, "-" * len(head)]
    for name, t in report["tasks"].items():
        flag = "" if t["meets_target"] else "  < target"
        lines.append(
            f"{name:28} {_fmt(t['ours_env_steps_per_s']):>8} {_fmt(t['raw_env_steps_per_s']):>8} "
            f"{_fmt(t['raw_mj_steps_per_s']):>10} {_fmt(t['peer_env_steps_per_s']):>8} "
            f"{_fmt(t['ours_over_raw'], 3):>9} {_fmt(t['ours_over_peer'], 2):>9}{flag}"
        )
        if t["peer_error"]:
            lines.append(f"{'':28} peer unavailable: {t['peer_error']}")
    lines += _vector_lines(report.get("vector"))
    lines.append(_conditions(report))
    return "\n".join(lines)


def _vector_lines(v: dict[str, Any] | None) -> list[str]:
    if not v:
        return []
    rate = v["env_steps_per_s"]
    flag = "" if v["meets_target"] else "  < target"
    return [
        "",
        f"vector ({v['task']}, {v['num_envs']} envs, {v['rounds']} rounds): "
        f"1 worker {_fmt(rate['1'])}/s, 2 workers {_fmt(rate['2'])}/s, "
        f"scaling {v['scaling']:.2f}x (target >= {v['target']}){flag}",
    ]


def _conditions(report: dict[str, Any]) -> str:
    m = report["machine"]
    return (
        f"\nmedians of {report['rounds']} interleaved rounds; ratios are medians of per-round "
        f"ratios; single-env runs pinned to CPU {report['pinned_cpu']}; target ours/raw >= "
        f"{report['targets']['ours_over_raw']}.\n{m['cpus']} CPUs, load average "
        f"{m['load_before']} -> {m['load_after']}; mujoco {m['mujoco']} (peer: "
        f"{report['peer_versions'].get('mujoco', '-')}); {report['wall_seconds']:.0f} s"
    )


def _allowed() -> list[int]:
    return sorted(os.sched_getaffinity(0))


def machine_info() -> dict[str, Any]:
    """What the numbers depend on: CPUs, load, library versions."""
    return {
        "cpus": len(_allowed()),
        "cpu_model": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "mujoco": mujoco.__version__,
        "numpy": np.__version__,
        "gymnasium": version("gymnasium"),
        "load_before": [round(x, 2) for x in os.getloadavg()],
    }


def failures(report: dict[str, Any]) -> list[str]:
    """Human-readable list of missed targets (empty when everything passes)."""
    out = [
        f"{name}: ours/raw {_fmt(t['ours_over_raw'], 3)} < {report['targets']['ours_over_raw']}"
        for name, t in report["tasks"].items()
        if not t["meets_target"]
    ]
    v = report.get("vector")
    if v and not v["meets_target"]:
        out.append(f"vector scaling {v['scaling']:.2f}x < {v['target']}x")
    return out


# -- entry point ---------------------------------------------------------------------------
def run(config: BenchConfig) -> dict[str, Any]:
    """The whole benchmark; returns the JSON-able report."""
    started, machine = time.perf_counter(), machine_info()
    peer, peer_versions, peer_error = _start_peer(config)
    try:
        benches = run_single_env(config, peer)
    finally:
        if peer is not None:
            peer.close()
    for bench in benches:
        bench.peer_error = bench.peer_error or peer_error
    report: dict[str, Any] = {
        "command": " ".join(["python", "bench/env_speed.py", *sys.argv[1:]]),
        "config": asdict(config),
        "rounds": config.rounds,
        "pinned_cpu": config.cpu,
        "targets": {
            "ours_over_raw": config.min_ours_over_raw,
            "vector_scaling": config.min_vector_scaling,
        },
        "tasks": {b.name: summarize_task(b, config) for b in benches},
        "vector": run_vector(config) if config.vector_envs > 0 else None,
        "peer_versions": peer_versions,
    }
    machine["load_after"] = [round(x, 2) for x in os.getloadavg()]
    report["machine"] = machine
    report["wall_seconds"] = time.perf_counter() - started
    report["failures"] = failures(report)
    return report


def _start_peer(config: BenchConfig) -> tuple[PeerProcess | None, dict[str, str], str | None]:
    if not config.peer:
        return None, {}, "skipped (--no-peer)"
    try:
        peer = PeerProcess(ensure_peer_venv(), config.cpu)
    except (BenchError, OSError) as e:
        print(f"peer unavailable, continuing without it: {e}", file=sys.stderr)
        return None, {}, str(e)
    return peer, peer.versions, None


def parse_args(argv: list[str] | None) -> tuple[BenchConfig, argparse.Namespace]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--tasks", nargs="+", default=list(TASKS), metavar="TASK", help="subset of tasks"
    )
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--steps", type=int, default=None, help="env steps per measurement")
    parser.add_argument("--cpu", type=int, default=None, help="CPU for single-env runs")
    parser.add_argument("--no-peer", action="store_true", help="skip Gymnasium-Robotics")
    parser.add_argument("--vector-task", default="fetch-push")
    parser.add_argument(
        "--vector-envs", type=int, default=16, help="total envs for 1 and 2 workers; 0 skips"
    )
    parser.add_argument("--quick", action="store_true", help="short smoke run (noisy numbers)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON on stdout")
    parser.add_argument("--no-fail", action="store_true", help="exit 0 even if a target is missed")
    args = parser.parse_args(argv)
    quick = {"rounds": 2, "steps": 100, "vector_steps": 40, "vector_rounds": 2}
    quick = quick if args.quick else {}
    overrides = {
        k: v for k, v in (("rounds", args.rounds), ("steps", args.steps)) if v is not None
    }
    config = BenchConfig(
        tasks=args.tasks, cpu=args.cpu, peer=not args.no_peer, vector_task=args.vector_task,
        vector_envs=args.vector_envs, **{**quick, **overrides},
    )  # fmt: skip
    return config, args


def main(argv: list[str] | None = None) -> int:
    config, args = parse_args(argv)
    report = run(config)
    return emit(report, format_table(report), args.json, args.no_fail)


if __name__ == "__main__":
    sys.exit(main())
