"""The robot side's object estimate (sim/object_estimate.py) and its use by the mirror."""

from __future__ import annotations

import numpy as np
import pytest

from sim.contract.samples import ObjectPose
from sim.errors import ConfigError
from sim.mirror import TaskMirror
from sim.object_estimate import ObjectEstimate, ObjectEstimateConfig

PERIOD_NS = 10_000_000  # 100 Hz, the Fetch's state rate
UPRIGHT = np.array([1.0, 0.0, 0.0, 0.0])


def _track(estimate: ObjectEstimate, positions: np.ndarray) -> np.ndarray:
    out = []
    for k, z in enumerate(positions):
        estimate.update(z, k * PERIOD_NS)
        out.append(estimate.position_m.copy())
    return np.array(out)


def test_at_rest_the_estimate_is_closer_and_its_velocity_far_quieter_than_raw() -> None:
    """At rest with 5 mm of noise: the position error about halves, and the velocity noise
    is a fraction of a 40 ms difference of raw poses (what the policy saw before)."""
    rng = np.random.default_rng(0)
    truth = np.array([1.3, 0.75, 0.42])
    raw, filtered, difference, velocity = [], [], [], []
    for _ in range(200):
        measured = truth + rng.normal(0.0, 0.005, (40, 3))
        estimate = ObjectEstimate(ObjectEstimateConfig(position_noise_m=0.005))
        _track(estimate, measured)
        raw.append(measured[-1] - truth)
        filtered.append(estimate.position_m - truth)
        difference.append((measured[-1] - measured[-5]) / 0.04)
        velocity.append(estimate.velocity_m_s)

    def rms(values: list[np.ndarray]) -> float:
        return float(np.sqrt(np.mean(np.square(values))))

    assert rms(raw) == pytest.approx(0.005, rel=0.15)
    assert rms(filtered) < 0.6 * rms(raw)
    assert rms(velocity) < 0.3 * rms(difference)


def test_a_constant_velocity_is_followed_without_lag() -> None:
    velocity = np.array([0.2, -0.1, 0.3])  # m/s: a carried block
    positions = np.array([1.3, 0.7, 0.42]) + np.outer(np.arange(100) * 0.01, velocity)
    estimate = ObjectEstimate()
    tracked = _track(estimate, positions)
    np.testing.assert_allclose(tracked[-1], positions[-1], atol=1e-4)
    np.testing.assert_allclose(estimate.velocity_m_s, velocity, atol=1e-3)


def test_a_jump_a_gap_or_a_new_episode_restarts_at_the_measurement() -> None:
    estimate = ObjectEstimate()
    _track(estimate, np.full((20, 3), 0.5))
    estimate.update(np.array([0.5, 0.6, 0.5]), 20 * PERIOD_NS)  # put 10 cm away: a reset
    np.testing.assert_array_equal(estimate.position_m, [0.5, 0.6, 0.5])
    assert estimate.measurements == 1 and not estimate.velocity_m_s.any()
    estimate.update(np.array([0.51, 0.6, 0.5]), 21 * PERIOD_NS + 300_000_000)  # 0.3 s later
    np.testing.assert_array_equal(estimate.position_m, [0.51, 0.6, 0.5])
    estimate.restart()
    assert not estimate.started
    estimate.update(np.array([0.2, 0.2, 0.2]), 0)  # an earlier stamp is fine after a restart
    np.testing.assert_array_equal(estimate.position_m, [0.2, 0.2, 0.2])


def test_a_repeated_or_older_stamp_is_not_taken_twice() -> None:
    estimate = ObjectEstimate()
    estimate.update(np.zeros(3), 5 * PERIOD_NS)
    estimate.update(np.full(3, 0.01), 5 * PERIOD_NS)
    estimate.update(np.full(3, 0.01), 4 * PERIOD_NS)
    assert estimate.measurements == 1
    np.testing.assert_array_equal(estimate.position_m, np.zeros(3))


def test_without_measurement_noise_the_estimate_is_the_measurement() -> None:
    estimate = ObjectEstimate(ObjectEstimateConfig(position_noise_m=0.0))
    rng = np.random.default_rng(1)
    positions = 0.5 + np.cumsum(rng.normal(0.0, 0.002, (30, 3)), axis=0)
    np.testing.assert_allclose(_track(estimate, positions), positions, atol=1e-12)


@pytest.mark.parametrize(
    ("field", "value", "fix"),
    [
        ("position_noise_m", -0.001, ">= 0"),
        ("acceleration_m_s2", 0.0, "> 0"),
        ("max_gap_s", float("nan"), ">= 0"),
        ("restart_jump_m", 0.0, "> 0"),
    ],
)
def test_a_bad_setting_is_named_with_its_fix(field: str, value: float, fix: str) -> None:
    with pytest.raises(ConfigError, match=f"{field} = .*{fix}"):
        ObjectEstimateConfig(**{field: value})


def test_the_mirror_observes_the_estimate_of_every_measured_pose() -> None:
    """Poses measured between two policy steps count: the observed position is the filter's,
    and the velocity is its estimate, not a difference of two raw poses."""
    mirror = TaskMirror("fetch-push", ObjectEstimateConfig())  # the policy node's default
    mirror.sample_goal(0)
    joints = len(mirror.io.joint_names)
    rng = np.random.default_rng(2)
    truth = np.array([1.3, 0.75, 0.425])
    poses = [
        ObjectPose(truth + rng.normal(0, 0.003, 3), UPRIGHT, k * PERIOD_NS) for k in range(41)
    ]
    for k, pose in enumerate(poses):
        if k % 4:
            mirror.measure_object(pose)  # a state the policy did not act on
        else:
            mirror.update(np.zeros(joints), np.zeros(joints), pose)
    observed = mirror.observation()["observation"]
    object_pos, object_velp = observed[3:6], observed[14:17] / mirror.dt
    reference = ObjectEstimate(ObjectEstimateConfig())
    for pose in poses:
        reference.update(pose.position_m, pose.stamp_ns)
    np.testing.assert_allclose(object_pos, reference.position_m, atol=1e-9)
    np.testing.assert_allclose(object_velp, reference.velocity_m_s, atol=1e-6)
    raw_velocity = (poses[-1].position_m - poses[-5].position_m) / 0.04
    assert np.linalg.norm(object_velp) < 0.5 * np.linalg.norm(raw_velocity)
    mirror.new_episode()
    assert not mirror.object_estimate.started


def test_by_default_the_mirror_observes_the_raw_pose_and_its_difference() -> None:
    """The judge, the exporter and the live view keep the measurement as it is."""
    mirror = TaskMirror("fetch-push")
    mirror.sample_goal(0)
    joints = np.zeros(len(mirror.io.joint_names))
    first = ObjectPose(np.array([1.3, 0.75, 0.425]), UPRIGHT, 0)
    second = ObjectPose(np.array([1.302, 0.749, 0.425]), UPRIGHT, 4 * PERIOD_NS)
    mirror.update(joints, joints, first)
    mirror.update(joints, joints, second)
    observed = mirror.observation()["observation"]
    np.testing.assert_array_equal(observed[3:6], second.position_m)
    np.testing.assert_allclose(observed[14:17], second.position_m - first.position_m, atol=1e-12)
