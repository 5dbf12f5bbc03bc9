"""`SubprocVectorEnv`: many task envs in a few worker processes, batched over shared memory.

Each worker process holds a contiguous slice of the sub-environments and steps all of them
on one message, so the per-step IPC cost (one pipe round trip per worker) is paid once per
worker, not once per env. Actions and observations never get pickled: they live in one
shared-memory block that the parent and the workers view as numpy arrays. Only the (small)
info dicts travel through the pipe. With 2 workers on 2 cores this gives ~1.8x (4 envs per
worker) to ~2x (8 per worker) the throughput of one worker holding the same envs, which is
what `bench/env_speed.py` checks.

Autoreset follows Gymnasium's modes (`metadata["autoreset_mode"]`):

- ``NEXT_STEP`` (default, as Gymnasium's own vector envs): the step that ends an episode
  returns its final observation; the *next* `step` call resets that sub-env (ignoring its
  action) and returns the first observation with reward 0 and terminated/truncated False.
- ``SAME_STEP``: the ending step resets at once and returns the new episode's first
  observation; the final one is in ``info["final_obs"]`` (and ``info["final_info"]``).
- ``DISABLED``: never resets by itself; call ``reset(options={"reset_mask": mask})``.

Reset options go to every sub-env, except ``reset(options={"per_env": [o_0, ..., o_n-1]})``
which gives sub-env i its own options ``o_i`` (a dict or None), e.g. a trainer's
per-episode randomization values.

Seeding: `reset(seed=s)` seeds sub-env i with ``s + i`` (a list gives one seed per env), as
Gymnasium does; the constructor's `seed` is used for the first reset that is given none.
A sub-env's results are therefore identical to a single env built and stepped on its own.

Lifecycle: `close()` (or leaving a ``with`` block) stops and joins every worker. Workers
ignore Ctrl-C (the parent owns it), exit when their pipe closes, and on Linux ask the
kernel to kill them if their parent process dies, so a crashed trainer leaves no orphans.
An exception inside a worker is re-raised in the parent as `WorkerError`, carrying the
task name, the sub-env index and the worker's own traceback.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing as mp
import os
import signal
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from sim.envs import make_task_env
from sim.errors import ConfigError, TwinbridgeError
from sim.process import die_with_parent
from sim.tasks import DEFAULT_TASK, TASKS

_ALIGN_BYTES = 64  # each shared array starts on its own cache line
_RESET_MASK = "reset_mask"
_PER_ENV = "per_env"


class WorkerError(TwinbridgeError, RuntimeError):
    """A worker process of a `SubprocVectorEnv` failed or died.

    The message names the task, the worker and sub-env, and includes the worker's own
    traceback; `remote_type` is the original exception's class name. The sub-envs of a
    vector env that raised this may be mid-step: `reset()` it before stepping again.
    """

    def __init__(self, message: str, remote_type: str = "", remote_traceback: str = ""):
        super().__init__(message)
        self.remote_type = remote_type
        self.remote_traceback = remote_traceback


@dataclass
class VectorEnvConfig:
    """How to build a `SubprocVectorEnv`.

    `task` is a CLI task name from `sim.tasks.TASKS` (e.g. "fetch-push") or any id that
    `gymnasium.make` accepts (including "module:Env-v0").
    """

    task: str = DEFAULT_TASK
    num_envs: int = 8
    num_workers: int = 2
    seed: int | None = None  # used by the first reset() that is given no seed
    autoreset_mode: AutoresetMode = AutoresetMode.NEXT_STEP
    start_method: str = "spawn"  # "spawn" is safe with threads; "fork" starts faster
    pin_workers: bool = False  # pin worker w to the w-th CPU this process may use
    copy: bool = True  # False: observations are views that the next step overwrites
    timeout_s: float | None = None  # longest wait for one worker reply; None: forever
    env_kwargs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.autoreset_mode = AutoresetMode(self.autoreset_mode)
        if self.num_envs < 1:
            raise ConfigError(f"num_envs must be >= 1, got {self.num_envs}")
        if not 1 <= self.num_workers <= self.num_envs:
            raise ConfigError(
                f"num_workers must be in [1, num_envs={self.num_envs}], got {self.num_workers}"
            )
        if self.start_method not in mp.get_all_start_methods():
            raise ConfigError(
                f"start_method {self.start_method!r} is not available here; "
                f"use one of {mp.get_all_start_methods()}"
            )
        if self.timeout_s is not None and self.timeout_s <= 0:
            raise ConfigError(f"timeout_s must be positive or None, got {self.timeout_s}")


# -- shared memory layout ------------------------------------------------------------------
@dataclass(frozen=True)
class _Field:
    name: str
    shape: tuple[int, ...]  # per env
    dtype: str
    offset: int  # bytes from the start of the block


@dataclass(frozen=True)
class _Layout:
    """Where each batched array lives in the one shared block (picklable, sent to workers)."""

    num_envs: int
    fields: tuple[_Field, ...]
    nbytes: int

    @classmethod
    def build(cls, num_envs: int, arrays: Sequence[tuple[str, tuple[int, ...], Any]]) -> _Layout:
        """Lay out `(name, per-env shape, dtype)` arrays back to back, cache-line aligned."""
        fields, offset = [], 0
        for name, shape, dtype in arrays:
            dt = np.dtype(dtype)
            fields.append(_Field(name, tuple(shape), dt.str, offset))
            size = num_envs * int(np.prod(shape, dtype=np.int64)) * dt.itemsize
            offset += -(-size // _ALIGN_BYTES) * _ALIGN_BYTES
        return cls(num_envs, tuple(fields), max(offset, _ALIGN_BYTES))

    def views(self, buffer: Any) -> dict[str, np.ndarray]:
        """Numpy arrays of shape (num_envs, *shape) onto `buffer`, by field name."""
        out = {}
        for f in self.fields:
            count = self.num_envs * int(np.prod(f.shape, dtype=np.int64))
            flat = np.frombuffer(buffer, dtype=np.dtype(f.dtype), count=count, offset=f.offset)
            out[f.name] = flat.reshape((self.num_envs, *f.shape))
        return out


def _obs_leaves(space: gym.Space) -> dict[str, spaces.Box]:
    """Observation arrays by key: a Dict of Boxes, or one Box under the key ""."""
    if isinstance(space, spaces.Box):
        return {"": space}
    if isinstance(space, spaces.Dict) and all(isinstance(s, spaces.Box) for s in space.values()):
        return {str(k): s for k, s in space.items()}  # type: ignore[misc]
    raise TypeError(
        f"SubprocVectorEnv batches Box or Dict-of-Box observations; got {space}. "
        "Use gymnasium.vector.AsyncVectorEnv for other spaces."
    )


def _layout_for(num_envs: int, obs_space: gym.Space, act_space: gym.Space) -> _Layout:
    if not isinstance(act_space, spaces.Box):
        raise TypeError(f"SubprocVectorEnv needs a Box action space, got {act_space}")
    arrays: list[tuple[str, tuple[int, ...], Any]] = [
        ("action", act_space.shape, act_space.dtype),
        ("reward", (), np.float64),
        ("terminated", (), np.bool_),
        ("truncated", (), np.bool_),
    ]
    arrays += [(f"obs/{k}", s.shape, s.dtype) for k, s in _obs_leaves(obs_space).items()]
    return _Layout.build(num_envs, arrays)


# -- worker side ---------------------------------------------------------------------------
@dataclass(frozen=True)
class _WorkerSpec:
    """Everything a worker needs, picklable for the spawn start method."""

    index: int
    task: str
    env_kwargs: dict[str, Any]
    start: int  # first global sub-env index of this worker
    stop: int
    layout: _Layout
    autoreset_mode: AutoresetMode
    cpu: int | None


@dataclass
class _RemoteFailure:
    """An exception raised in a worker, in a form that always survives pickling."""

    exc_type: str
    message: str
    traceback: str
    env_index: int | None


def _make_env(task: str, env_kwargs: dict[str, Any]) -> gym.Env:
    """One sub-env: by CLI task name, else by Gymnasium id (checker off: it is per step)."""
    import sim  # noqa: F401 - registers the twinbridge ids in a spawned worker

    if task in TASKS:
        return make_task_env(task, disable_env_checker=True, **env_kwargs)
    return gym.make(task, disable_env_checker=True, **env_kwargs)


class _WorkerEnvs:
    """The sub-envs of one worker and the step/reset logic that runs next to them."""

    def __init__(self, spec: _WorkerSpec, buffer: Any, envs: list[gym.Env]):
        self.spec = spec
        self.envs = envs
        views = spec.layout.views(buffer)
        sl = slice(spec.start, spec.stop)
        self.action = views["action"][sl]
        self.reward = views["reward"][sl]
        self.terminated = views["terminated"][sl]
        self.truncated = views["truncated"][sl]
        self.obs = {k[4:]: v[sl] for k, v in views.items() if k.startswith("obs/")}
        self.needs_reset = np.zeros(len(envs), dtype=bool)
        self.current: int | None = None  # local index of the env being worked on, for errors

    def reset(self, arg: tuple[list[int | None], dict[str, Any] | None, np.ndarray | None]):
        """Reset the (masked) sub-envs; returns their infos, None for untouched ones."""
        seeds, options, mask = arg
        infos: list[dict[str, Any] | None] = []
        for j, env in enumerate(self.envs):
            if mask is not None and not mask[j]:
                infos.append(None)
                continue
            self.current = j
            own = options[_PER_ENV][j] if options and _PER_ENV in options else options
            obs, info = env.reset(seed=seeds[j], options=own)
            self._write_obs(j, obs)
            self.terminated[j] = self.truncated[j] = self.needs_reset[j] = False
            infos.append(info)
        self.current = None
        return infos

    def step(self, _: None) -> list[tuple[dict[str, Any], dict[str, Any] | None]]:
        """Step every sub-env with its action from shared memory, autoresetting per mode."""
        mode = self.spec.autoreset_mode
        out: list[tuple[dict[str, Any], dict[str, Any] | None]] = []
        for j, env in enumerate(self.envs):
            self.current = j
            final = None
            reward: SupportsFloat = 0.0
            if mode is AutoresetMode.NEXT_STEP and self.needs_reset[j]:
                obs, info = env.reset()
                terminated = truncated = False
            else:
                obs, reward, terminated, truncated, info = env.step(self.action[j].copy())
                if mode is AutoresetMode.SAME_STEP and (terminated or truncated):
                    final = {"final_obs": obs, "final_info": info}
                    obs, info = env.reset()
            self._write_obs(j, obs)
            self.reward[j] = float(reward)
            self.terminated[j], self.truncated[j] = terminated, truncated
            self.needs_reset[j] = terminated or truncated
            out.append((info, final))
        self.current = None
        return out

    def _write_obs(self, j: int, obs: Any) -> None:
        if "" in self.obs:
            self.obs[""][j] = obs
            return
        for key, array in self.obs.items():
            array[j] = obs[key]


def _failure(e: BaseException, env_index: int | None) -> _RemoteFailure:
    """Strings only: the original exception may not pickle, or its class not import here."""
    return _RemoteFailure(type(e).__name__, str(e), traceback.format_exc(), env_index)


def _worker_main(spec: _WorkerSpec, conn: Connection, parent_conn: Connection | None, buffer):
    """Entry point of a worker process: build the sub-envs, then serve commands until closed."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    die_with_parent()  # the closed pipe would end the worker too
    if parent_conn is not None:
        parent_conn.close()  # with "fork", drop our copy of the parent's end: EOF works then
    if spec.cpu is not None:
        os.sched_setaffinity(0, {spec.cpu})
    envs: list[gym.Env] = []
    try:
        for _ in range(spec.start, spec.stop):
            envs.append(_make_env(spec.task, spec.env_kwargs))
        conn.send(("ok", None))
        _serve(_WorkerEnvs(spec, buffer, envs), conn)
    except (EOFError, BrokenPipeError, KeyboardInterrupt):
        pass  # the parent went away: nothing left to report to
    except Exception as e:  # building an env failed; _serve reports step/reset errors itself
        conn.send(("error", _failure(e, spec.start + len(envs))))
    finally:
        for env in envs:
            env.close()
        conn.close()


def _serve(worker: _WorkerEnvs, conn: Connection) -> None:
    """Answer commands until "close"; a failing command is reported, and the worker lives on."""
    handlers: dict[str, Callable[[Any], Any]] = {"reset": worker.reset, "step": worker.step}
    while True:
        command, arg = conn.recv()
        if command == "close":
            conn.send(("ok", None))
            return
        try:
            conn.send(("ok", handlers[command](arg)))
        except Exception as e:
            env = None if worker.current is None else worker.spec.start + worker.current
            worker.current = None
            conn.send(("error", _failure(e, env)))


# -- parent side ---------------------------------------------------------------------------
@dataclass
class _Worker:
    index: int
    process: Any  # multiprocessing process of the chosen context
    conn: Connection
    start: int
    stop: int


class SubprocVectorEnv(VectorEnv):
    """A Gymnasium vector env running `num_envs` copies of a task in `num_workers` processes.

    Run: `python -c "from sim.vector import SubprocVectorEnv as V; print(V('fetch-push').reset())"`

    Observations are batched Dicts (one array of shape (num_envs, ...) per key), rewards,
    terminations and truncations arrays of shape (num_envs,), infos batched the Gymnasium
    way (``info[key]`` plus mask ``info["_" + key]``). See the module docstring for the
    autoreset modes, seeding and shutdown.
    """

    def __init__(
        self,
        task: str = DEFAULT_TASK,
        num_envs: int = 8,
        num_workers: int = 2,
        seed: int | None = None,
        **options: Any,
    ):
        self.config = VectorEnvConfig(task, num_envs, num_workers, seed, **options)
        self.num_envs = self.config.num_envs
        self._workers: list[_Worker] = []
        self.closed = False
        reference = _make_env(self.config.task, self.config.env_kwargs)
        self._reference_env = reference  # kept for compute_reward, run in the parent
        self._init_spaces(reference)
        self._layout = _layout_for(
            self.num_envs, self.single_observation_space, self.single_action_space
        )
        self._buffer = mp.get_context(self.config.start_method).RawArray(
            ctypes.c_uint8, self._layout.nbytes
        )
        self._views = self._layout.views(self._buffer)
        self._obs_views = {k[4:]: v for k, v in self._views.items() if k.startswith("obs/")}
        self._pending_seed = self.config.seed
        self._pending: str | None = None  # the command the workers are working on
        self._unsent: dict[int, WorkerError] = {}  # workers a command could not reach
        try:
            self._start_workers()
        except BaseException:
            self.close(terminate=True)
            raise

    @classmethod
    def from_config(cls, config: VectorEnvConfig) -> SubprocVectorEnv:
        """Build from a `VectorEnvConfig` (e.g. one loaded from YAML)."""
        c = config
        return cls(
            c.task, c.num_envs, c.num_workers, c.seed, autoreset_mode=c.autoreset_mode,
            start_method=c.start_method, pin_workers=c.pin_workers, copy=c.copy,
            timeout_s=c.timeout_s, env_kwargs=dict(c.env_kwargs),
        )  # fmt: skip

    def _init_spaces(self, env: gym.Env) -> None:
        self.single_observation_space = env.observation_space
        self.single_action_space = env.action_space
        _obs_leaves(env.observation_space)  # refuse unsupported spaces before any worker starts
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.metadata = {**env.metadata, "autoreset_mode": self.config.autoreset_mode}
        self.spec = env.spec
        self.render_mode = None
        if self.config.seed is not None:
            self.action_space.seed(self.config.seed)
            self.single_action_space.seed(self.config.seed)

    def _start_workers(self) -> None:
        """Start the workers (contiguous env slices), then wait until all their envs are built."""
        ctx: Any = mp.get_context(self.config.start_method)
        cpus = sorted(os.sched_getaffinity(0)) if self.config.pin_workers else []
        bounds = np.cumsum([0, *_split(self.num_envs, self.config.num_workers)])
        for w in range(self.config.num_workers):
            start, stop = int(bounds[w]), int(bounds[w + 1])
            spec = _WorkerSpec(
                w, self.config.task, self.config.env_kwargs, start, stop, self._layout,
                self.config.autoreset_mode, cpus[w % len(cpus)] if cpus else None,
            )  # fmt: skip
            parent_conn, child_conn = ctx.Pipe()
            shared_parent = parent_conn if self.config.start_method == "fork" else None
            process = ctx.Process(
                target=_worker_main,
                args=(spec, child_conn, shared_parent, self._buffer),
                name=f"twinbridge-vec-{self.config.task}-{w}",
                daemon=True,
            )
            process.start()
            child_conn.close()
            self._workers.append(_Worker(w, process, parent_conn, start, stop))
        self._pending = "start"
        self._gather("start")

    # -- Gymnasium API ---------------------------------------------------------------------
    def reset(
        self,
        *,
        seed: int | Sequence[int | None] | None = None,
        options: dict[str, Any] | None = None,
    ) -> tuple[dict[str, np.ndarray] | np.ndarray, dict[str, Any]]:
        """Reset all sub-envs (or those in ``options["reset_mask"]``); seed i is ``seed + i``."""
        if seed is None and self._pending_seed is not None:
            seed = self._pending_seed
        self._pending_seed = None
        seeds = _seed_list(seed, self.num_envs)
        options = dict(options) if options else None
        mask = (
            _reset_mask(options.pop(_RESET_MASK), self.num_envs)
            if options and _RESET_MASK in options
            else None
        )
        per_env = _per_env_options(options, self.num_envs)
        args = [
            (
                seeds[w.start : w.stop],
                options if per_env is None else {_PER_ENV: per_env[w.start : w.stop]},
                None if mask is None else mask[w.start : w.stop],
            )
            for w in self._workers
        ]
        self._send_all("reset", args)
        infos: dict[str, Any] = {}
        for w, worker_infos in zip(self._workers, self._gather("reset"), strict=True):
            for j, info in enumerate(worker_infos):
                if info is not None:
                    infos = self._add_info(infos, info, w.start + j)
        return self._observations(), infos

    def step(
        self, actions: np.ndarray
    ) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Step every sub-env with its row of `actions`; see the module doc for autoreset."""
        self.step_async(actions)
        return self.step_wait()

    def step_async(self, actions: np.ndarray) -> None:
        """Hand the actions to the workers and return at once (collect with `step_wait`)."""
        actions = np.asarray(actions)
        target = self._views["action"]
        if actions.shape != target.shape:
            raise ValueError(f"actions have shape {actions.shape}, expected {target.shape}")
        self._check_idle("step_async")
        np.copyto(target, actions, casting="same_kind")
        self._send_all("step", [None] * len(self._workers))

    def step_wait(self) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Wait for the workers started by `step_async` and batch their results."""
        results = [r for worker_results in self._gather("step") for r in worker_results]
        infos = _flat_infos([info for info, final in results if final is None], self.num_envs)
        if infos is None:  # the general (slower) path: nested, array or missing entries
            infos = {}
            for i, (info, final) in enumerate(results):
                if final is not None:
                    infos = self._add_info(infos, final, i)
                infos = self._add_info(infos, info, i)
        v = self._views
        return (
            self._observations(),
            v["reward"].copy(),
            v["terminated"].copy(),
            v["truncated"].copy(),
            infos,
        )

    def compute_reward(
        self, achieved_goal: np.ndarray, desired_goal: np.ndarray, info: Any
    ) -> Any:
        """The task's batch-capable reward, computed in this process (no worker round trip)."""
        return self._reference_env.unwrapped.compute_reward(achieved_goal, desired_goal, info)  # type: ignore[attr-defined]

    @property
    def worker_pids(self) -> list[int]:
        """Process ids of the workers (for monitoring and tests)."""
        return [int(w.process.pid) for w in self._workers]

    def close_extras(self, terminate: bool = False, **kwargs: Any) -> None:
        """Stop the workers (ask, wait 5 s, then terminate; `terminate=True` skips asking)."""
        for w in self._workers:
            if not terminate and w.process.is_alive():
                with contextlib.suppress(BrokenPipeError, OSError):
                    w.conn.send(("close", None))
        for w in self._workers:
            if not terminate:
                w.process.join(timeout=5.0)
            if w.process.is_alive():
                w.process.terminate()
                w.process.join(timeout=5.0)
            if w.process.is_alive():
                w.process.kill()
                w.process.join()
            w.conn.close()
        if getattr(self, "_reference_env", None) is not None:
            self._reference_env.close()

    def __enter__(self) -> SubprocVectorEnv:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __del__(self) -> None:
        if not getattr(self, "closed", True):
            self.close(terminate=True)

    # -- helpers -----------------------------------------------------------------------------
    def _observations(self) -> dict[str, np.ndarray] | np.ndarray:
        views = self._obs_views
        if "" in views:
            return views[""].copy() if self.config.copy else views[""]
        return {k: (v.copy() if self.config.copy else v) for k, v in views.items()}

    def _check_idle(self, what: str) -> None:
        if self.closed:
            raise WorkerError(f"SubprocVectorEnv({self.config.task!r}) is closed; make a new one")
        if self._pending is not None:
            raise WorkerError(
                f"{what}() while a {self._pending!r} is in flight; call step_wait() first"
            )

    def _send_all(self, command: str, args: list[Any]) -> None:
        """Send one command per worker; a dead worker's failure is raised by `_gather`."""
        self._check_idle(command)
        self._pending, self._unsent = command, {}
        for w, arg in zip(self._workers, args, strict=True):
            try:
                w.conn.send((command, arg))
            except (BrokenPipeError, ConnectionResetError, OSError) as e:
                w.process.join(timeout=1.0)
                reason = _exit_reason(w.process.exitcode)
                self._unsent[w.index] = WorkerError(f"{self._where(w)} is gone ({reason})")
                self._unsent[w.index].__cause__ = e

    def _gather(self, command: str) -> list[Any]:
        """One reply per worker, in worker order; raises the first failure after draining all."""
        if self._pending != command:
            raise WorkerError(f"no {command!r} in flight to wait for (pending: {self._pending})")
        replies: list[Any] = []
        failure: WorkerError | None = None
        for w in self._workers:
            try:
                if w.index in self._unsent:
                    raise self._unsent[w.index]
                replies.append(self._receive(w, command))
            except WorkerError as e:
                failure = failure or e
                replies.append(None)
        self._pending = None
        if failure is not None:
            raise failure
        return replies

    def _receive(self, w: _Worker, command: str) -> Any:
        if self.config.timeout_s is None and self.config.start_method != "fork":
            return self._receive_blocking(w, command)
        ready = wait([w.conn, w.process.sentinel], timeout=self.config.timeout_s)
        if not ready:
            raise WorkerError(
                self._where(w) + f" did not answer {command!r} within {self.config.timeout_s} s"
            )
        return self._receive_blocking(w, command, conn_ready=w.conn in ready)

    def _receive_blocking(self, w: _Worker, command: str, conn_ready: bool = True) -> Any:
        """Receive one reply, or raise `WorkerError` if the worker died or failed.

        Called directly (plain `recv`) when no timeout applies: without "fork" only the
        worker holds the pipe's other end, so its death shows as EOF, and the select call of
        `wait` (~10 us a worker) is saved. After `wait`, `conn_ready` False means only the
        process sentinel fired: the worker is gone unless a reply is still buffered.
        """
        try:
            if not conn_ready and not w.conn.poll():
                raise EOFError
            status, payload = w.conn.recv()
        except (EOFError, ConnectionResetError) as e:
            w.process.join(timeout=1.0)
            raise WorkerError(
                self._where(w) + f" died during {command!r} ({_exit_reason(w.process.exitcode)})"
            ) from e
        if status == "error":
            raise self._remote_error(w, command, payload)
        return payload

    def _remote_error(self, w: _Worker, command: str, failure: _RemoteFailure) -> WorkerError:
        env = "" if failure.env_index is None else f", sub-env {failure.env_index}"
        return WorkerError(
            f"{self._where(w)}{env} raised {failure.exc_type} during {command!r}: "
            f"{failure.message}\nThe sub-envs may be mid-step: reset() before stepping again."
            f"\n--- worker traceback ---\n{failure.traceback.rstrip()}",
            failure.exc_type,
            failure.traceback,
        )

    def _where(self, w: _Worker) -> str:
        return (
            f"task {self.config.task!r}: worker {w.index} (pid {w.process.pid}, "
            f"sub-envs {w.start}..{w.stop - 1})"
        )


def _flat_infos(infos: list[dict[str, Any]], n: int) -> dict[str, Any] | None:
    """Batch n infos of identical keys and scalar values at once, as `_add_info` would
    (same dtypes and masks) but ~10x faster; None when that shortcut does not apply."""
    if len(infos) != n:
        return None
    keys = infos[0].keys()
    if any(info.keys() != keys for info in infos):
        return None
    batched: dict[str, Any] = {}
    for key in keys:
        kind = type(infos[0][key])
        if not (kind in (int, float, bool) or issubclass(kind, np.number)):
            return None
        batched[key] = np.array([info[key] for info in infos], dtype=kind)
        batched[f"_{key}"] = np.ones(n, dtype=np.bool_)
    return batched


def _split(total: int, parts: int) -> list[int]:
    """Sizes of `parts` contiguous slices of `total`, differing by at most one."""
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def _seed_list(seed: int | Sequence[int | None] | None, n: int) -> list[int | None]:
    if seed is None:
        return [None] * n
    if isinstance(seed, int | np.integer):
        return [int(seed) + i for i in range(n)]
    seeds = list(seed)
    if len(seeds) != n:
        raise ValueError(f"got {len(seeds)} seeds for {n} sub-envs; pass one per env or an int")
    return seeds


def _per_env_options(options: dict[str, Any] | None, n: int) -> list[Any] | None:
    """The per-env options list if `options` is `{"per_env": [...]}` of length n, else None."""
    if not options or _PER_ENV not in options:
        return None
    per_env = options[_PER_ENV]
    if set(options) != {_PER_ENV} or not isinstance(per_env, list | tuple) or len(per_env) != n:
        raise ValueError(
            f"options['per_env'] must be the only option and a list of {n} dicts or None "
            f"(one per sub-env), got {type(per_env).__name__} with keys {sorted(options)}"
        )
    return list(per_env)


def _reset_mask(mask: Any, n: int) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.shape != (n,) or mask.dtype != np.bool_ or not mask.any():
        raise ValueError(f"options['reset_mask'] must be a bool array of shape ({n},) with a True")
    return mask


def _exit_reason(code: int | None) -> str:
    if code is None:
        return "still running but its pipe closed"
    if code < 0:
        return f"killed by signal {signal.Signals(-code).name}"
    return f"exit code {code}"
