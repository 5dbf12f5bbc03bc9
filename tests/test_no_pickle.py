"""R20: no pickle-based loading of models or checkpoints.

A lint over the repository's Python files (every `torch.load` passes `weights_only=True`; no
`pickle.load(s)`, `Unpickler`, `allow_pickle=True` in product code) and a malicious-pickle
fixture handed to every loader we ship: its payload would create a sentinel file.

R20: see hardware/RELIABILITY.md.
"""

from __future__ import annotations

import ast
import hashlib
import json
import pickle
import subprocess
from pathlib import Path

import pytest
import safetensors.torch
import torch

from policies.card import ModelCard
from policies.errors import PolicyLoadError
from policies.runtime import PolicyRunner
from policies.training.checkpoint import META_FILE, STATE_FILE, load_checkpoint
from policies.training.errors import CheckpointError

ROOT = Path(__file__).resolve().parents[1]
PRODUCT = ("sim", "policies", "hardware", "calibration", "ros_ws", "bench")


def _python_files() -> list[Path]:
    tracked = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "*.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return [ROOT / p for p in tracked if (ROOT / p).is_file()]


def _calls(path: Path) -> list[tuple[str, ast.Call]]:
    """(dotted callee, call) for every call in a file, e.g. ("torch.load", node)."""
    calls = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Call):
            calls.append((ast.unparse(node.func), node))
    return calls


def _keyword_is(call: ast.Call, name: str, value: object) -> bool:
    return any(
        k.arg == name and isinstance(k.value, ast.Constant) and k.value.value is value
        for k in call.keywords
    )


def test_every_torch_load_passes_weights_only_true() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{call.lineno}"
        for path in _python_files()
        for name, call in _calls(path)
        if name.endswith("torch.load") and not _keyword_is(call, "weights_only", True)
    ]
    assert offenders == []


def test_no_pickle_loading_in_product_code() -> None:
    banned = ("pickle.load", "pickle.loads", "pickle.Unpickler", "dill.load", "joblib.load")
    offenders = []
    for path in _python_files():
        if path.relative_to(ROOT).parts[0] not in PRODUCT:
            continue
        for name, call in _calls(path):
            unpickles = name.endswith(banned) or _keyword_is(call, "allow_pickle", True)
            if unpickles:
                offenders.append(f"{path.relative_to(ROOT)}:{call.lineno}: {name}")
    assert offenders == []


def test_the_lint_catches_what_it_is_meant_to(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import torch, pickle\ntorch.load('x')\npickle.loads(b'')\n")
    names = [name for name, call in _calls(bad) if not _keyword_is(call, "weights_only", True)]
    assert "torch.load" in names and "pickle.loads" in names


class _Payload:
    """Unpickling this calls open(sentinel, "w"): proof that a loader ran pickle."""

    def __init__(self, sentinel: Path):
        self.sentinel = sentinel

    def __reduce__(self) -> tuple:
        return (open, (str(self.sentinel), "w"))


@pytest.fixture
def malicious(tmp_path: Path) -> tuple[bytes, Path]:
    sentinel = tmp_path / "PWNED"
    data = pickle.dumps({"weights": _Payload(sentinel)})
    # The fixture is live: plain pickle does run it (then the file is removed again).
    pickle.loads(data)  # deliberately: proves the payload works
    assert sentinel.exists()
    sentinel.unlink()
    return data, sentinel


def test_checkpoint_loader_never_unpickles(malicious: tuple[bytes, Path], tmp_path: Path) -> None:
    data, sentinel = malicious
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    (ckpt / STATE_FILE).write_bytes(data)
    meta = {
        "format_version": 1,
        "task": "fetch-push",
        "algo": "her-sac",
        "config": {},
        "counters": {},
        "state_sha256": hashlib.sha256(data).hexdigest(),  # so the parser is reached
    }
    (ckpt / META_FILE).write_text(json.dumps(meta))
    with pytest.raises(CheckpointError):
        load_checkpoint(ckpt)
    assert not sentinel.exists()


def test_safetensors_and_weights_only_refuse_the_pickle(
    malicious: tuple[bytes, Path], tmp_path: Path
) -> None:
    data, sentinel = malicious
    for name in ("checkpoint.pt", "checkpoint.safetensors"):
        (tmp_path / name).write_bytes(data)
    with pytest.raises(Exception, match=r"(?i)header|deserializ|invalid"):
        safetensors.torch.load_file(tmp_path / "checkpoint.safetensors")
    with pytest.raises(pickle.UnpicklingError):
        torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert not sentinel.exists()


def test_policy_loaders_never_unpickle(malicious: tuple[bytes, Path], tmp_path: Path) -> None:
    data, sentinel = malicious
    (tmp_path / "policy.onnx").write_bytes(data)
    (tmp_path / "policy.json").write_bytes(data)
    with pytest.raises(PolicyLoadError):
        ModelCard.load(tmp_path / "policy.json")
    with pytest.raises(PolicyLoadError):
        PolicyRunner.load(tmp_path / "policy.onnx")
    assert not sentinel.exists()
