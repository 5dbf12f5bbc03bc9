"""PPO-LSTM: config validation, the asymmetric critic's privileged inputs, LSTM state across
chunks and episodes, Dactyl's reward, bit-identical resume, ONNX export parity through
`PolicyRunner`, the `train --algo ppo-lstm` command, and learning within an env-step budget."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from resume_runs import straight_and_resumed

from policies.observation import flatten_observation
from policies.runtime import PolicyRunner
from policies.training.envs import LocalEnvs, Options, make_lockstep_envs
from policies.training.errors import TrainingConfigError
from policies.training.export import export_policy
from policies.training.export.trained import lstm_policy_graph
from policies.training.logs import EpochLog
from policies.training.ppo.config import PpoLstmConfig
from policies.training.ppo.loss import ppo_losses
from policies.training.ppo.reward import DactylReward
from policies.training.ppo.rollout import gae
from policies.training.ppo.trainer import PpoLstmTrainer
from sim.cli import main
from sim.envs import make_task_env
from sim.tasks import TASKS

TINY = {
    "task": "hand-reach", "dense_size": 32, "lstm_size": 16, "value_hidden_sizes": (32, 32),
    "num_envs": 2, "max_episode_steps": 20, "bptt_steps": 8, "epochs_per_rollout": 2,
    "num_minibatches": 2, "epoch_env_steps": 40, "eval_episodes": 2, "progress": False,
}  # fmt: skip
# Seed 0 (eval on 8 seeded episodes): eval return -0.32 untrained, +0.05 after 6,000 env steps
# (seeds 1, 2: -0.14, -0.04); a run whose updates do not improve the policy stays near -0.32.
LEARNING = {
    "task": "hand-reach", "dense_size": 64, "lstm_size": 32, "value_hidden_sizes": (64, 64),
    "num_envs": 4, "initial_action_std": 0.3, "eval_episodes": 8, "progress": False,
}  # fmt: skip
LEARNING_BUDGET_ENV_STEPS = 6000
LEARNING_MIN_GAIN = 0.15  # eval return (dactyl reward: 10 per metre of fingertip progress)


def tiny(**overrides: object) -> PpoLstmConfig:
    return PpoLstmConfig(**{**TINY, **overrides})  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def trained() -> PpoLstmTrainer:
    """A tiny trainer after two rollouts (normalizers and weights away from their init)."""
    trainer = PpoLstmTrainer(tiny(seed=5))
    trainer.iterate()
    trainer.iterate()
    yield trainer
    trainer.close()


# -- configuration ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("values", "match"),
    [
        ({"learning_rate": 1e-3}, "unknown option"),
        ({"task": "hand-juggle"}, "hand-juggle"),
        ({"algo": "her-sac"}, "algo"),
        ({"reward": "dense"}, "reward"),
        ({"gamma": 0.0}, "gamma"),
        ({"gae_lambda": 1.5}, "gae_lambda"),
        ({"clip_ratio": 1.0}, "clip_ratio"),
        ({"bptt_steps": 0}, "bptt_steps"),
        ({"bptt_steps": 101}, "bptt_steps"),
        ({"num_minibatches": 1000}, "num_minibatches"),
        ({"value_hidden_sizes": (64, 0)}, "value_hidden_sizes"),
        ({"dense_size": 1.5}, "dense_size"),
        ({"total_env_steps": "1e6"}, "total_env_steps"),
        ({"initial_action_std": 0.0}, "initial_action_std"),
        ({"lr_policy": float("nan")}, "lr_policy"),
        ({"drop_penalty": -20.0}, "drop_penalty"),
        ({"num_workers": 3, "num_envs": 2}, "num_workers"),
        ({"max_episode_steps": 101}, "max_episode_steps"),
    ],
)
def test_impossible_configs_are_refused_by_name(values: dict, match: str) -> None:
    with pytest.raises(TrainingConfigError, match=match):
        PpoLstmConfig.from_dict(values)


def test_train_command_validates_before_any_compute(tmp_path: Path, capsys) -> None:
    out = tmp_path / "run"
    assert main(["train", "--algo", "ppo-lstm", "--her-k", "2", "--out", str(out)]) == 2
    assert "--her-k: not option(s) of --algo ppo-lstm" in capsys.readouterr().err
    assert main(["train", "--algo", "ppo-lstm", "--bptt-steps", "0", "--out", str(out)]) == 2
    assert "bptt_steps must be > 0" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"algo": "ppo-lstm", "lr": 0.1}))
    assert main(["train", "--config", str(bad), "--out", str(out)]) == 2
    assert "unknown option(s) ['lr']" in capsys.readouterr().err
    assert not out.exists()


# -- the asymmetric critic ----------------------------------------------------------------------
def test_privileged_state_is_opt_in_and_holds_what_the_robot_cannot_observe() -> None:
    plain = make_task_env("hand-block-rotate-z", disable_env_checker=True)
    rich = make_task_env("hand-block-rotate-z", disable_env_checker=True, privileged_state=True)
    obs, _ = plain.reset(seed=0)
    assert "privileged_state" not in obs
    obs, _ = rich.reset(seed=0)
    obs, *_ = rich.step(np.zeros(20, dtype=np.float32))
    model, data = rich.unwrapped.model, rich.unwrapped.data  # type: ignore[attr-defined]
    privileged = obs["privileged_state"]
    assert rich.observation_space["privileged_state"].shape == privileged.shape  # type: ignore[index]
    assert len(privileged) == 2 * model.nv + model.nq + model.nu
    forces = privileged[model.nq + model.nv : model.nq + model.nv + model.nu]
    np.testing.assert_array_equal(forces, data.actuator_force)  # never in the observation
    assert np.abs(forces).max() > 0
    plain.close()
    rich.close()


def test_worker_envs_deliver_the_same_privileged_state() -> None:
    batches = []
    for workers in (0, 2):
        envs = make_lockstep_envs("hand-reach", 2, workers, privileged=True)
        envs.reset([3, 4])
        batches.append(envs.step(np.full((2, 20), 0.3, dtype=np.float32))[0])
        envs.close()
    np.testing.assert_array_equal(batches[0]["privileged_state"], batches[1]["privileged_state"])


class RecordingEnvs(LocalEnvs):
    """In-process envs that keep every observation batch they return."""

    def __init__(self, *args: object, **kwargs: object):
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.seen: list[dict[str, np.ndarray]] = []

    def reset(self, seeds: list[int], options: Options = None) -> dict[str, np.ndarray]:
        self.seen.append(super().reset(seeds, options))
        return self.seen[-1]

    def step(self, actions: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
        obs, success = super().step(actions)
        self.seen.append(obs)
        return obs, success


def test_the_value_net_gets_privileged_inputs_the_policy_does_not() -> None:
    config = tiny(episodes_per_rollout=1)
    envs = RecordingEnvs(config.task, config.num_envs, privileged=True)
    trainer = PpoLstmTrainer(config, envs)
    try:
        rollout, _ = trainer.collect()
        dims = trainer.dims
        assert trainer.policy.dense.in_features == dims["policy"]
        assert dims["value"] == dims["policy"] + dims["privileged"] + 1
        for t in (0, 7, 19):  # first rollout: normalizers still at mean 0, std 1
            obs = envs.seen[t]
            raw = np.clip(obs["privileged_state"], -5.0, 5.0).astype(np.float32)
            value_in = rollout.value_in[:, t]
            np.testing.assert_array_equal(value_in[:, dims["policy"] : -1].numpy(), raw)
            np.testing.assert_array_equal(value_in[:, -1].numpy(), np.float32((20 - t) / 20))
            policy_in = np.clip(flatten_observation(obs), -5.0, 5.0)
            np.testing.assert_array_equal(rollout.policy_in[:, t].numpy(), policy_in)
            np.testing.assert_array_equal(value_in[:, : dims["policy"]].numpy(), policy_in)
        x = rollout.value_in[:, 3].clone()
        before = trainer.value(x)
        x[:, dims["policy"] : -1] += 1.0  # privileged part only
        assert not torch.allclose(trainer.value(x), before)
    finally:
        trainer.close()


# -- recurrent state ----------------------------------------------------------------------------
def test_lstm_state_is_zeroed_at_episode_starts_and_carried_within() -> None:
    trainer = PpoLstmTrainer(tiny(episodes_per_rollout=2))
    try:
        rollout, _ = trainer.collect()
    finally:
        trainer.close()
    assert rollout.h0.shape[:2] == (4, 3)  # (2 episodes x 2 envs) rows, ceil(20 / 8) chunks
    assert torch.count_nonzero(rollout.h0[:, 0]) == torch.count_nonzero(rollout.c0[:, 0]) == 0
    assert (rollout.h0[:, 1:].abs().sum(-1) > 0).all()
    assert not rollout.valid[:, 20:].any() and rollout.valid[:, :20].all()
    with torch.no_grad():  # replaying each chunk from its stored state reaches the next one
        for k in range(2):
            steps = slice(8 * k, 8 * k + 8)
            _, (h, c) = trainer.policy(
                rollout.policy_in[:, steps], (rollout.h0[:, k], rollout.c0[:, k])
            )
            torch.testing.assert_close(h, rollout.h0[:, k + 1], rtol=0, atol=1e-6)
            torch.testing.assert_close(c, rollout.c0[:, k + 1], rtol=0, atol=1e-6)


def test_a_drop_ends_the_episode_for_training(trained) -> None:
    """Dactyl ends an episode when the object falls: later steps are masked out."""
    shaped = trained.reward
    calls = []

    def drop_env_0_at_step_5(before, after, desired, success):  # type: ignore[no-untyped-def]
        reward, dropped = shaped(before, after, desired, success)
        calls.append(None)
        return reward, dropped | (np.arange(len(dropped)) == 0) & (len(calls) >= 6)

    trained.reward = drop_env_0_at_step_5
    count = trained.normalizers["obs"].count.copy()
    try:
        rollout, stats = trained.collect()
    finally:
        trained.reward = shaped
    assert rollout.valid[0, :6].all() and not rollout.valid[0, 6:].any()
    assert rollout.terminal[0, 5] and not rollout.terminal[0, :5].any()
    assert (rollout.rewards[0, 6:] == 0).all() and rollout.valid[1, :20].all()
    assert stats["train_drop_rate"] == 0.5
    assert trained.normalizers["obs"].count - count == 6 + 20


def test_training_chunks_replay_the_rollout_exactly(trained) -> None:
    rollout, _ = trained.collect()
    steps = rollout.steps
    advantages = np.ones((len(rollout.rewards), steps))
    chunks = rollout.chunks(advantages, np.zeros_like(advantages))
    with torch.no_grad():
        losses = ppo_losses(trained.policy, trained.value, chunks, 0.2)
    assert float(losses["approx_kl"]) < 1e-9 and float(losses["clip_fraction"]) == 0.0
    assert abs(float(losses["policy_loss"]) + 1.0) < 1e-5  # ratio 1 everywhere


def test_gae_stops_at_terminal_steps() -> None:
    rewards = np.array([[1.0, 2.0, 3.0, 4.0]])
    values = np.array([[0.5, 0.5, 0.5, 0.5]])
    terminal = np.array([[False, True, False, True]])
    got = gae(rewards, values, terminal, gamma=0.9, lam=0.8)
    d = rewards - values + 0.9 * np.array([[0.5, 0.0, 0.5, 0.0]])
    want = [d[0, 0] + 0.72 * d[0, 1], d[0, 1], d[0, 2] + 0.72 * d[0, 3], d[0, 3]]
    np.testing.assert_allclose(got[0], want)


# -- Dactyl's reward ----------------------------------------------------------------------------
@pytest.mark.parametrize("task", sorted(TASKS))
def test_every_task_has_goal_distances_the_dactyl_reward_can_weigh(task: str) -> None:
    reward = DactylReward(task, {"rad": 1.0, "m": 10.0}, 5.0, 20.0)
    goal = np.zeros((3, reward.task.goal_dim))
    goal[:, 2] = 0.2  # above the drop height
    goal[:, 3:4] = 1.0  # w = 1 where goals are poses
    r, dropped = reward(goal, goal, goal, np.zeros(3, dtype=bool))
    np.testing.assert_allclose(r, 0.0, atol=1e-6)
    assert set(reward.weights) <= {"position_m", "rotation_rad"} and reward.weights
    assert dropped.shape == (3,)


def test_dactyl_reward_pays_progress_success_and_punishes_a_drop() -> None:
    reward = DactylReward("hand-block-rotate-z", {"rad": 1.0, "m": 10.0}, 5.0, 20.0)
    goal = np.array([[1.0, 0.9, 0.17, 1.0, 0.0, 0.0, 0.0]])
    turned = goal.copy()
    turned[0, 3:] = [np.cos(0.25), 0.0, 0.0, np.sin(0.25)]  # 0.5 rad about z
    r, dropped = reward(turned, goal, goal, np.array([True]))
    np.testing.assert_allclose(r, [0.5 + 5.0])
    fallen = goal.copy()
    fallen[0, 2] = 0.03
    r, dropped = reward(goal, fallen, goal, np.array([False]))
    assert dropped.tolist() == [True] and r[0] == -20.0
    r, _ = reward(goal, turned, goal, np.array([False]))
    np.testing.assert_allclose(r, [-0.5])  # moving away costs what coming back pays


# -- checkpoints and export ---------------------------------------------------------------------
def test_checkpoint_resume_is_bit_identical(tmp_path: Path) -> None:
    a, b = straight_and_resumed(
        lambda total: PpoLstmTrainer(tiny(total_env_steps=total, seed=3)), 120, 80, tmp_path
    )
    assert a.tensors.keys() == b.tensors.keys() and "optim/policy/0/exp_avg" in a.tensors
    for name in a.tensors:
        assert torch.equal(a.tensors[name], b.tensors[name]), name
    for key in ("env_steps", "updates", "episodes", "epoch"):
        assert a.counters[key] == b.counters[key]
    assert a.counters["updates"] == 3 * 2 * 2 and a.algo == "ppo-lstm"
    timing = {"wall_time_s", "env_steps_per_s", "updates_per_s"}
    logs = [EpochLog(tmp_path / run, "").rows() for run in ("straight", "split")]
    assert [{k: v for k, v in row.items() if k not in timing} for row in logs[0]] == [
        {k: v for k, v in row.items() if k not in timing} for row in logs[1]
    ]


def test_exported_onnx_matches_the_torch_policy_and_runs_in_policy_runner(
    trained, tmp_path: Path
) -> None:
    path = tmp_path / "reach.onnx"
    graph = lstm_policy_graph(trained)
    export_policy(graph, "hand-reach", path, training_config=trained.config.to_dict(), seed=5)
    runner = PolicyRunner.load(path, expected_task="hand-reach")
    env = make_task_env("hand-reach", disable_env_checker=True)
    obs, _ = env.reset(seed=11)
    state = trained.policy.initial_state(1)
    runner.reset()
    for _ in range(30):
        x = trained.normalizers["obs"].normalize(torch.from_numpy(flatten_observation(obs)))
        with torch.no_grad():
            mean, state = trained.policy(x[None, None], state)
        torch_action = trained.env_action(mean[:, 0])[0]
        onnx_action = runner.act(obs)
        np.testing.assert_allclose(onnx_action, torch_action, rtol=0, atol=1e-5)
        obs, *_ = env.step(onnx_action)
    env.close()


def test_train_command_runs_resumes_and_exports(tmp_path: Path, capsys) -> None:
    common = ["--algo", "ppo-lstm", "--task", "hand-reach", "--dense-size", "16",
              "--lstm-size", "8", "--value-hidden-sizes", "16", "--num-envs", "2",
              "--max-episode-steps", "10", "--bptt-steps", "5", "--num-minibatches", "2",
              "--epoch-env-steps", "20", "--eval-episodes", "2", "--no-progress"]  # fmt: skip
    out, onnx = tmp_path / "run", tmp_path / "reach.onnx"
    assert main(["train", *common, "--total-env-steps", "20", "--out", str(out)]) == 0
    resume = ["train", "--resume", str(out), "--total-env-steps", "40", "--out", str(out)]
    export = ["--export", str(onnx), "--export-eval-episodes", "2", "--export-from", "best"]
    assert main([*resume, *export]) == 0
    card = json.loads(onnx.with_suffix(".json").read_text())
    assert card["metrics"]["train_env_steps"] == 40 and card["recurrent"]
    assert card["metrics"]["exported_policy"] == "best" and card["metrics"]["eval_episodes"] == 2
    assert card["reproduce_command"].startswith("twinbridge train --task hand-reach --algo ppo")
    header, *rows = (out / "progress.csv").read_text().splitlines()
    assert "value_loss" in header and "approx_kl" in header and len(rows) == 2
    capsys.readouterr()
    assert main([*resume, "--lstm-size", "32"]) == 2
    assert "--lstm-size 32 differs" in capsys.readouterr().err


# -- learning -----------------------------------------------------------------------------------
@pytest.mark.slow
def test_hand_reach_improves_within_a_fixed_env_step_budget() -> None:
    trainer = PpoLstmTrainer(PpoLstmConfig(**LEARNING, seed=0))  # type: ignore[arg-type]
    try:
        _, untrained = trainer.evaluate()
        while trainer.counters["env_steps"] < LEARNING_BUDGET_ENV_STEPS:
            trainer.iterate()
        _, learned = trainer.evaluate()
    finally:
        trainer.close()
    assert learned - untrained >= LEARNING_MIN_GAIN, (untrained, learned)
