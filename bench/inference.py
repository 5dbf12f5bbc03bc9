"""Policy inference speed: onnxruntime vs torch, batch-1 latency and batch-256 throughput.

Run: `.venv/bin/python bench/inference.py --json` (add `--quick` for a smoke run, `--models
mlp-3x256` for a subset, `--no-fail` to only report).

Each policy is a `policies.training.export.graph` module (normalizer + actor + action
scaling; recurrent state as explicit inputs/outputs) with seeded random weights, exported by
`policies.training.export.export_policy` (the deployable ONNX file + card, parity-checked).
The same weights then run in torch (eager, `inference_mode`) and in onnxruntime (CPU provider):

- b1: one call with batch 1 on prepared float32 arrays, recurrent state fed back; per-call
  p50/p99 latency. ORT runs the deployable file itself.
- step: what a robot's control loop pays per tick on the ORT path:
  `policies.runtime.PolicyRunner.act(observation dict)` on the same file (flatten, cast,
  input checks, `session.run`, output and bound checks, state carried).
- batch: one call with batch 256 (`BenchConfig.batch`); samples/s from the median call
  time. Deployable files are batch-1 only, so the bench exports the same module with a
  static batch of 256 (same exporter and opset).
- b1 no-state-io (LSTMs, ORT only): the deployable file edited so that h_in/c_in are zero
  initializers (still overridable inputs, so ORT does not fold them: the optimized graph is
  node-for-node the same) and h_out/c_out are not outputs. p50(b1) - p50(no-state-io),
  paired per round, is the cost of feeding and fetching the state.

Both runtimes get one thread (`torch.set_num_threads(1)`; ORT intra/inter-op threads 1,
sequential execution) and the process is pinned to one CPU. Measurements run in interleaved
rounds (every kind of every model in each round, in a rotating order) after an untimed
warm-up; reported numbers are medians over rounds and ort/torch ratios are medians of the
per-round paired ratios (time ratios: below 1 means ORT is faster). The garbage collector
stays on, as in a control loop. Exit status 1 if ORT is slower than torch at batch 1 (p50)
for any model.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch import nn
from tqdm import tqdm

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR.parent))  # run as a script from a checkout
sys.path.insert(0, str(BENCH_DIR))  # the shared bench/report.py

from report import emit  # noqa: E402

from policies.card import RECURRENT_NAMES  # noqa: E402
from policies.observation import task_info  # noqa: E402
from policies.runtime import PolicyRunner  # noqa: E402
from policies.training.export import ExportConfig, export_policy  # noqa: E402
from policies.training.export.graph import (  # noqa: E402
    LstmPolicyGraph,
    MlpPolicyGraph,
    PolicyGraphBase,
)

CONTROL_PERIOD_US = 10_000.0  # a 100 Hz control loop
OPSET = ExportConfig().opset  # the batched graphs are exported like the deployable ones
T = TypeVar("T")


class BenchError(RuntimeError):
    """The benchmark could not measure something (not: a target was missed)."""


# -- the policies --------------------------------------------------------------------------
@dataclass(frozen=True)
class ModelSpec:
    """One policy shape on a registered task (which fixes observation and action sizes)."""

    task: str
    kind: str  # "mlp" or "lstm"
    hidden: tuple[int, ...]  # mlp: hidden widths; lstm: (dense size, lstm size)

    def __post_init__(self) -> None:
        if self.kind not in ("mlp", "lstm"):
            raise ValueError(f"kind must be 'mlp' or 'lstm', not {self.kind!r}")
        if self.kind == "lstm" and len(self.hidden) != 2:
            raise ValueError(f"an lstm needs hidden=(dense, lstm); got {self.hidden}")
        if not self.hidden or min(self.hidden) < 1:
            raise ValueError(f"hidden sizes must be >= 1: {self.hidden}")


MODELS: dict[str, ModelSpec] = {
    # FetchPush: 25 observation + 3 goal -> 4 actions; the usual HER actor.
    "mlp-3x256": ModelSpec("fetch-push", "mlp", (256, 256, 256)),
    # Dactyl (OpenAI 2018) policy shape on the hand: 61 observation + 7 goal -> 20 actuators.
    "lstm-1024-512": ModelSpec("hand-block", "lstm", (1024, 512)),
    "lstm-256": ModelSpec("hand-block", "lstm", (256, 256)),
}


def build_graph(spec: ModelSpec, seed: int = 0) -> PolicyGraphBase:
    """The deployable graph for `spec.task`: seeded random weights and normalizer, eval mode."""
    info = task_info(spec.task)
    n = sum(f.size for f in info.observation)
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)  # layer initialization
    mean, std = torch.randn(n, generator=generator), torch.rand(n, generator=generator) + 0.5
    low = torch.tensor([a.low for a in info.action])
    high = torch.tensor([a.high for a in info.action])
    if spec.kind == "lstm":
        dense, size = spec.hidden
        return LstmPolicyGraph(mean, std, 5.0, low, high, dense, size).eval()
    return MlpPolicyGraph(mean, std, 5.0, mlp_actor(n, spec.hidden, len(low)), low, high).eval()


def mlp_actor(n: int, hidden: tuple[int, ...], actions: int) -> nn.Module:
    """ReLU layers of the given widths, then a linear layer to the actions and tanh."""
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [nn.Linear(n, width), nn.ReLU()]
        n = width
    return nn.Sequential(*layers, nn.Linear(n, actions), nn.Tanh())


def export_deployable(
    graph: PolicyGraphBase, spec: ModelSpec, path: Path, seed: int, parity_samples: int = 1000
) -> Path:
    """The graph through the project's exporter: ONNX + card, parity-checked, batch 1."""
    config = ExportConfig(
        parity_samples=parity_samples, parity_recurrent_steps=min(100, parity_samples)
    )
    export_policy(
        graph, spec.task, path, training_config={"bench": "inference"}, seed=seed, config=config
    )
    return path


def export_batched(graph: PolicyGraphBase, batch: int, path: Path) -> Path:
    """The same module as ONNX with a static batch (deployable files are batch 1 only)."""
    names = RECURRENT_NAMES if graph.recurrent_size else ()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(
            graph, tuple(example_inputs(graph, batch)), str(path), opset_version=OPSET,
            input_names=["obs", *(i for i, _ in names)], dynamo=False,
            output_names=["action", *(o for _, o in names)],
        )  # fmt: skip
    return path


def without_state_io(path: Path, out: Path) -> Path:
    """A copy of a recurrent graph whose state inputs default to zeros and are not returned.

    The zeros are initializers that stay graph inputs, so ORT may not constant-fold them:
    the recurrent matmul still runs. Only feeding and fetching the state is gone.
    """
    model = onnx.load(str(path))
    for name in (i for i, _ in RECURRENT_NAMES):
        (value,) = (v for v in model.graph.input if v.name == name)
        shape = [d.dim_value for d in value.type.tensor_type.shape.dim]
        model.graph.initializer.append(onnx.numpy_helper.from_array(np.zeros(shape, "f4"), name))
    keep = [o for o in model.graph.output if o.name == "action"]
    del model.graph.output[:]
    model.graph.output.extend(keep)
    onnx.save(model, str(out))
    return out


def example_inputs(graph: PolicyGraphBase, batch: int, seed: int = 0) -> list[torch.Tensor]:
    """Observation (and zero state for LSTMs) as torch tensors of the given batch size."""
    generator = torch.Generator().manual_seed(seed)
    tensors = [torch.randn(batch, graph.obs_dim, generator=generator)]
    if size := graph.recurrent_size:
        tensors += [torch.zeros(batch, size), torch.zeros(batch, size)]
    return tensors


def open_session(path: Path) -> ort.InferenceSession:
    """An ORT session restricted to one thread, sequential, full graph optimization."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # no "initializer appears in graph inputs" notice
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


# -- the timed calls -----------------------------------------------------------------------
def torch_call(graph: PolicyGraphBase, batch: int) -> Callable[[], Any]:
    """One torch forward per call; recurrent state fed back as a controller would."""
    inputs = example_inputs(graph, batch)
    if len(inputs) == 1:
        return lambda: graph(inputs[0])

    def call() -> Any:
        out = graph(*inputs)
        inputs[1], inputs[2] = out[1], out[2]
        return out

    return call


def ort_call(
    session: ort.InferenceSession, graph: PolicyGraphBase, batch: int
) -> Callable[[], Any]:
    """One `session.run` per call on prepared float32 arrays; state outputs fed back."""
    names = [i.name for i in session.get_inputs()]
    arrays = [t.numpy() for t in example_inputs(graph, batch)]
    feeds = dict(zip(names, arrays[: len(names)], strict=True))
    if len(names) == 1:
        return lambda: session.run(None, feeds)

    def call() -> Any:
        out = session.run(None, feeds)
        feeds[names[1]], feeds[names[2]] = out[1], out[2]
        return out

    return call


def control_step(path: Path, task: str, seed: int = 0) -> Callable[[], np.ndarray]:
    """`PolicyRunner.act` on a float64 observation dict, as an env or ROS adapter gives it."""
    runner = PolicyRunner.load(path, expected_task=task)
    goal_dim = task_info(task).observation[-1].size
    rng = np.random.default_rng(seed)
    observation = {
        "observation": rng.standard_normal(runner.observation_size - goal_dim),
        "desired_goal": rng.standard_normal(goal_dim),
    }
    return lambda: runner.act(observation)


def time_calls(call: Callable[[], Any], seconds: float, min_calls: int, warmup: int) -> np.ndarray:
    """Per-call wall times (ns) of `call`, after `warmup` untimed calls; runs >= `seconds`."""
    for _ in range(warmup):
        call()
    gc.collect()
    clock = time.perf_counter_ns
    times: list[int] = []
    end = clock() + int(seconds * 1e9)
    while len(times) < min_calls or clock() < end:
        start = clock()
        call()
        times.append(clock() - start)
    return np.array(times, dtype=np.int64)


def latency_stats(times_ns: np.ndarray, batch: int) -> dict[str, float]:
    """p50/p99/mean latency (us) of one measurement and the samples/s the p50 implies."""
    p50, p99 = np.percentile(times_ns, [50, 99]) / 1e3
    return {
        "p50_us": float(p50),
        "p99_us": float(p99),
        "mean_us": float(times_ns.mean() / 1e3),
        "samples_per_s": batch * 1e6 / float(p50),
        "calls": int(times_ns.size),
    }


# -- orchestration -------------------------------------------------------------------------
@dataclass
class BenchConfig:
    """What to measure and how long; the defaults keep a full run near 2 minutes on 2 cores."""

    models: list[str] = field(default_factory=lambda: list(MODELS))
    rounds: int = 15
    seconds_b1: float = 0.2  # per batch-1 measurement (thousands of calls: a stable p99)
    seconds_batch: float = 0.15  # per batched measurement
    min_calls_batch: int = 3
    warmup_calls: int = 20  # untimed calls before each measurement (caches, allocator)
    batch: int = 256
    state_io: bool = True  # the LSTM zero-state ablation
    parity_samples: int = 1000  # the exporter's torch-vs-ORT check (not timed)
    cpu: int | None = None  # None: the last CPU this process may use
    max_ort_over_torch: float = 1.0  # batch-1 p50 time ratio
    seed: int = 0

    def __post_init__(self) -> None:
        unknown = [m for m in self.models if m not in MODELS]
        if unknown:
            raise ValueError(f"unknown models {unknown}; choose from {list(MODELS)}")
        if min(self.rounds, self.batch, self.min_calls_batch) < 1 or self.seconds_b1 <= 0:
            raise ValueError("rounds, batch and min_calls_batch must be >= 1, seconds > 0")
        if self.cpu is None:
            self.cpu = max(os.sched_getaffinity(0))
        if self.cpu not in os.sched_getaffinity(0):
            raise ValueError(f"cpu {self.cpu} is not one this process may use")


@dataclass
class ModelBench:
    """One model's timed calls (by kind) and the per-round results they produced."""

    name: str
    spec: ModelSpec
    calls: dict[str, tuple[Callable[[], Any], int]]  # kind -> (call, batch)
    info: dict[str, Any]
    samples: dict[str, list[dict[str, float]]] = field(default_factory=dict)


def prepare_model(name: str, spec: ModelSpec, config: BenchConfig, folder: Path) -> ModelBench:
    """Build and export one model (deployable + batched); collect the calls rounds will time."""
    graph = build_graph(spec, config.seed)
    path = export_deployable(
        graph, spec, folder / f"{name}.onnx", config.seed, config.parity_samples
    )
    session = open_session(path)
    batched = open_session(export_batched(graph, config.batch, folder / f"{name}-batch.onnx"))
    check_parity(graph, batched, config.batch)
    calls: dict[str, tuple[Callable[[], Any], int]] = {
        "torch_b1": (torch_call(graph, 1), 1),
        "ort_b1": (ort_call(session, graph, 1), 1),
        "ort_step": (control_step(path, spec.task, config.seed), 1),
        "torch_batch": (torch_call(graph, config.batch), config.batch),
        "ort_batch": (ort_call(batched, graph, config.batch), config.batch),
    }
    if graph.recurrent_size and config.state_io:
        zero = open_session(without_state_io(path, folder / f"{name}-no-state-io.onnx"))
        calls["ort_b1_no_state_io"] = (ort_call(zero, graph, 1), 1)
    params = sum(p.numel() for p in graph.parameters())
    info = {"spec": asdict(spec), "parameters": params, "onnx_bytes": path.stat().st_size}
    return ModelBench(name, spec, calls, info, {kind: [] for kind in calls})


def check_parity(graph: PolicyGraphBase, session: ort.InferenceSession, batch: int) -> None:
    """Refuse to time a batched graph that does not compute what the torch module does."""
    with torch.no_grad():
        expected = torch_call(graph, batch)()
    expected = (expected[0] if isinstance(expected, tuple) else expected).numpy()
    got = ort_call(session, graph, batch)()[0]
    if not np.allclose(expected, got, rtol=1e-4, atol=1e-5):
        err = float(np.abs(expected - got).max())
        raise BenchError(f"torch and ORT batch-{batch} outputs differ by {err:.2e}")


def measure(bench: ModelBench, kind: str, config: BenchConfig) -> dict[str, float]:
    """One timed measurement of one kind of call."""
    call, batch = bench.calls[kind]
    seconds, min_calls = (
        (config.seconds_b1, 50) if batch == 1 else (config.seconds_batch, config.min_calls_batch)
    )
    warmup = config.warmup_calls if batch == 1 else 1
    return latency_stats(time_calls(call, seconds, min_calls, warmup), batch)


def round_order(items: list[T], r: int) -> list[T]:
    """The items of one round, rotated by the round number: none is always first."""
    shift = r % len(items)
    return items[shift:] + items[:shift]


@contextmanager
def single_thread_pinned(cpu: int | None) -> Iterator[None]:
    """One CPU, one torch thread, inference mode; affinity and threads restored after."""
    before, threads = os.sched_getaffinity(0), torch.get_num_threads()
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    torch.set_num_threads(1)
    try:
        with torch.inference_mode():
            yield
    finally:
        torch.set_num_threads(threads)
        os.sched_setaffinity(0, before)


def run_rounds(benches: list[ModelBench], config: BenchConfig) -> None:
    """Every kind of every model once per round, rounds interleaved, warm-up first."""
    total = sum(len(b.calls) for b in benches) * config.rounds
    for bench in benches:  # warm-up, untimed: first calls allocate and build kernels
        for call, _ in bench.calls.values():
            time_calls(call, 0.0, 5, 0)
    with tqdm(total=total, desc="inference", unit="run", file=sys.stderr) as bar:
        for r in range(config.rounds):
            for bench in round_order(benches, r):
                bar.set_postfix_str(f"round {r + 1} {bench.name}")
                for kind in round_order(list(bench.calls), r):
                    bench.samples[kind].append(measure(bench, kind, config))
                    bar.update()


# -- reporting -----------------------------------------------------------------------------
def _median(samples: list[dict[str, float]], key: str) -> float:
    return float(statistics.median(s[key] for s in samples))


def _paired(a: list[dict[str, float]], b: list[dict[str, float]], key: str) -> float:
    """Median over rounds of a[key] / b[key] measured in the same round."""
    return float(statistics.median(x[key] / y[key] for x, y in zip(a, b, strict=True)))


def summarize(bench: ModelBench, config: BenchConfig) -> dict[str, Any]:
    """Per-model JSON record: medians over rounds per kind, paired ort/torch time ratios."""
    s = bench.samples
    kinds = {
        kind: {key: _median(s[kind], key) for key in ("p50_us", "p99_us", "samples_per_s")}
        for kind in s
    }
    ratio_b1 = _paired(s["ort_b1"], s["torch_b1"], "p50_us")
    out: dict[str, Any] = {
        **bench.info,
        "kinds": kinds,
        "ort_over_torch_b1_p50": ratio_b1,
        "ort_over_torch_b1_p99": _paired(s["ort_b1"], s["torch_b1"], "p99_us"),
        "ort_over_torch_batch": _paired(s["ort_batch"], s["torch_batch"], "p50_us"),
        "step_share_of_100hz": kinds["ort_step"]["p50_us"] / CONTROL_PERIOD_US,
        "meets_target": ratio_b1 <= config.max_ort_over_torch,
        "samples_p50_us": {k: [round(x["p50_us"], 1) for x in v] for k, v in s.items()},
    }
    out["step_overhead_us"] = _paired_delta(s["ort_step"], s["ort_b1"])
    if "ort_b1_no_state_io" in s:
        out["state_io_cost_us"] = _paired_delta(s["ort_b1"], s["ort_b1_no_state_io"])
    return out


def _paired_delta(a: list[dict[str, float]], b: list[dict[str, float]]) -> float:
    """Median over rounds of a's p50 minus b's p50 (us) measured in the same round."""
    return float(statistics.median(x["p50_us"] - y["p50_us"] for x, y in zip(a, b, strict=True)))


def format_table(report: dict[str, Any]) -> str:
    """A plain-text table: batch-1 latency, the control step, batch throughput, ratios."""
    batch = report["config"]["batch"]
    head = (
        f"{'model':14} {'torch b1 p50/p99 us':>20} {'ort b1 p50/p99 us':>18} {'ort/torch':>9} "
        f"{'ort step p50/p99 us':>20} {f'torch b{batch}/s':>12} {f'ort b{batch}/s':>11} "
        f"{'ort/torch':>9}"
    )
    lines = [head, "-" * len(head)]
    for name, m in report["models"].items():
        k = m["kinds"]
        flag = "" if m["meets_target"] else "  < target"
        rate_torch, rate_ort = k["torch_batch"]["samples_per_s"], k["ort_batch"]["samples_per_s"]
        lines.append(
            f"{name:14} {_pair(k['torch_b1']):>20} {_pair(k['ort_b1']):>18} "
            f"{m['ort_over_torch_b1_p50']:>9.2f} {_pair(k['ort_step']):>20} "
            f"{rate_torch:>12,.0f} {rate_ort:>11,.0f} {m['ort_over_torch_batch']:>9.2f}{flag}"
        )
    lines += _notes(report)
    return "\n".join(lines)


def _pair(kind: dict[str, float]) -> str:
    return f"{kind['p50_us']:.1f} / {kind['p99_us']:.1f}"


def _notes(report: dict[str, Any]) -> list[str]:
    lines = [""]
    for name, m in report["models"].items():
        share = 100 * m["step_share_of_100hz"]
        line = (
            f"{name}: ORT control step = {share:.2f}% of a 100 Hz period, "
            f"{m['step_overhead_us']:+.1f} us over bare session.run"
        )
        if "state_io_cost_us" in m:
            free = m["kinds"]["ort_b1_no_state_io"]["p50_us"]
            line += (
                f"; state I/O costs {m['state_io_cost_us']:+.1f} us "
                f"(b1 p50 without state I/O: {free:.1f} us)"
            )
        lines.append(line)
    mc = report["machine"]
    lines.append(
        f"\nmedians of {report['config']['rounds']} interleaved rounds; ort/torch = time ratio "
        f"(median of per-round ratios; < 1: ORT faster), target b1 p50 <= "
        f"{report['config']['max_ort_over_torch']}; 1 thread, pinned to CPU "
        f"{report['config']['cpu']}.\n{mc['cpus']} CPUs ({mc['cpu_model']}), load average "
        f"{mc['load_before']} -> {mc['load_after']}; torch {mc['torch']}, onnxruntime "
        f"{mc['onnxruntime']}; graphs: {report['graph_source']}; {report['wall_seconds']:.0f} s"
    )
    return lines


def machine_info() -> dict[str, Any]:
    """What the numbers depend on: CPUs, load, library versions."""
    return {
        "cpus": len(os.sched_getaffinity(0)),
        "cpu_model": _cpu_model(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "onnxruntime": ort.__version__,
        "numpy": np.__version__,
        "load_before": [round(x, 2) for x in os.getloadavg()],
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def failures(report: dict[str, Any]) -> list[str]:
    """Models where ORT is slower than torch at batch 1 (empty when all pass)."""
    target = report["config"]["max_ort_over_torch"]
    return [
        f"{name}: ORT/torch batch-1 p50 {m['ort_over_torch_b1_p50']:.2f} > {target}"
        for name, m in report["models"].items()
        if not m["meets_target"]
    ]


# -- entry point ---------------------------------------------------------------------------
def run(config: BenchConfig, specs: dict[str, ModelSpec] | None = None) -> dict[str, Any]:
    """The whole benchmark (on `specs`, default the registered models); a JSON-able report."""
    specs = specs or {name: MODELS[name] for name in config.models}
    started, machine = time.perf_counter(), machine_info()
    with tempfile.TemporaryDirectory() as tmp:
        benches = [
            prepare_model(name, spec, config, Path(tmp))
            for name, spec in tqdm(specs.items(), desc="export", leave=False, file=sys.stderr)
        ]
        with single_thread_pinned(config.cpu):
            run_rounds(benches, config)
    machine["load_after"] = [round(x, 2) for x in os.getloadavg()]
    report: dict[str, Any] = {
        "command": " ".join(["python", "bench/inference.py", *sys.argv[1:]]),
        "config": asdict(config),
        "graph_source": "policies.training.export (graph + export_policy)",
        "models": {b.name: summarize(b, config) for b in benches},
        "machine": machine,
        "wall_seconds": time.perf_counter() - started,
    }
    report["failures"] = failures(report)
    return report


def parse_args(argv: list[str] | None) -> tuple[BenchConfig, argparse.Namespace]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS), metavar="MODEL")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--cpu", type=int, default=None, help="CPU to pin to (default: last)")
    parser.add_argument("--quick", action="store_true", help="short smoke run (noisy numbers)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON on stdout")
    parser.add_argument("--no-fail", action="store_true", help="exit 0 even if a target is missed")
    args = parser.parse_args(argv)
    quick = {
        "rounds": 2, "seconds_b1": 0.03, "seconds_batch": 0.02, "min_calls_batch": 1,
        "parity_samples": 50,
    }  # fmt: skip
    overrides = {**(quick if args.quick else {})}
    if args.rounds is not None:
        overrides["rounds"] = args.rounds
    return BenchConfig(models=args.models, cpu=args.cpu, **overrides), args  # type: ignore[arg-type]


def main(argv: list[str] | None = None) -> int:
    config, args = parse_args(argv)
    report = run(config)
    return emit(report, format_table(report), args.json, args.no_fail)


if __name__ == "__main__":
    sys.exit(main())
