"""Evaluation helpers (transform RMSE, SRIF-style cases, wedge angles) and the settings object."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from saropt.errors import ConfigError, InputError
from saropt.registration.auto import AutoConfig
from saropt.registration.auto.evaluate import rotated_case, transform_rmse, wedge_rotation
from tests.unit.autoutil import optical_world


def test_transform_rmse_of_a_pure_shift() -> None:
    t = np.eye(3)
    s = np.array([[1.0, 0, 3.0], [0, 1.0, -4.0], [0, 0, 1]])
    assert transform_rmse(t, t, (64, 64)) == 0.0
    assert transform_rmse(s, t, (64, 64)) == pytest.approx(5.0)
    with pytest.raises(InputError):
        transform_rmse(np.eye(2), t, (8, 8))


def test_rotated_case_truth_is_exact() -> None:
    # Same image as "SAR" and "optical": warping the optical with the truth must reproduce the SAR patch.
    world = (optical_world(400, seed=3) * 255).astype(np.uint8)
    case = rotated_case(world, world, np.random.default_rng(5), jpeg_quality=None)
    warped = cv2.warpAffine(case.opt, case.opt_to_sar[:2], (256, 256), flags=cv2.INTER_LINEAR)
    inner = np.zeros((256, 256), bool)
    inner[60:196, 60:196] = True
    a = case.sar[inner].astype(float)
    b = warped[inner].astype(float)
    assert np.corrcoef(a, b)[0, 1] > 0.97
    assert 1.0 <= case.angle_deg <= 90.0 and 155 <= case.opt.shape[0] <= 511
    assert case.scale == pytest.approx(256 / case.opt.shape[0])


@pytest.mark.parametrize("angle", [12.0, 37.65, 71.3])
def test_wedge_rotation_measures_the_angle(angle: float) -> None:
    rng = np.random.default_rng(0)
    patch = rng.integers(40, 255, (256, 256)).astype(np.uint8)
    rot = cv2.warpAffine(
        patch, cv2.getRotationMatrix2D((127.5, 127.5), angle, 1.0), (256, 256), borderValue=0
    )
    a, misfit = wedge_rotation(rot)
    assert a == pytest.approx(angle, abs=0.3)
    assert misfit < 1.0


def test_config_validation_and_round_trip() -> None:
    cfg = AutoConfig(min_reliability=0.4, angle_step_deg=15.0)
    assert AutoConfig.from_dict(cfg.to_dict()) == cfg
    assert len(cfg.angles()) == 24
    assert cfg.scales(1.0) == pytest.approx((1 / 1.1, 1.0, 1.1))
    assert AutoConfig(scale_range=1.0).scales(0.5) == (0.5,)
    with pytest.raises(ConfigError, match="unknown"):
        AutoConfig.from_dict({"templatesize": 3})
    with pytest.raises(ConfigError):
        AutoConfig(min_reliability=2.0)
    with pytest.raises(ConfigError):
        AutoConfig(angle_min_deg=10.0, angle_max_deg=0.0)
