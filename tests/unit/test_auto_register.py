"""Automatic registration end to end on synthetic pairs with known warps, and its errors on bad input."""

from __future__ import annotations

import numpy as np
import pytest

from saropt.errors import InputError, NoOverlapError, RegistrationError
from saropt.io.windows import Window
from saropt.registration.auto import AutoConfig, auto_tiepoints, register
from saropt.registration.transforms import AffineTransform
from tests.unit.autoutil import grid_rmse, make_pair, optical_world, similarity

C = (127.5, 127.5)


@pytest.mark.parametrize(
    ("name", "truth", "opt_size"),
    [
        ("shift 40 px", similarity(0.0, 1.0, C, (167.5, 97.5)), 256),
        ("rotation 90", similarity(90.0, 1.0, C, (130.0, 125.0)), 256),
        ("rotation -37, scale 0.75", similarity(-37.0, 0.75, (170.0, 170.0), (128.0, 128.0)), 341),
    ],
)
def test_known_warps_are_recovered_to_a_fraction_of_a_pixel(
    name: str, truth: np.ndarray, opt_size: int
) -> None:
    pair = make_pair(truth, opt_size=(opt_size, opt_size), seed=1)
    reg = register(pair.sar, pair.opt)
    assert reg.method == "auto" and reg.model == "affine"
    assert grid_rmse(reg.transform.forward, pair) < 0.5, name
    assert reg.n_inliers >= 100
    assert reg.rmse_px < 1.0 and reg.loo_rmse_px < 1.0
    # flags, not deletions: every tie point is kept with a score, flag and residual
    assert len(reg.tiepoints) == len(reg.inliers) == len(reg.residuals)
    assert reg.tiepoints.score is not None
    assert (reg.tiepoints.score[reg.inliers] >= 0.5).all()  # an inlier passed the reliability stage


def test_local_distortion_needs_a_nonlinear_model() -> None:
    truth = similarity(8.0, 1.0, C, C)

    def bend(q: np.ndarray) -> np.ndarray:  # quadratic displacement, up to ~7 px at the corners
        u = (q - 127.5) / 128.0
        return np.stack([5.0 * u[:, 1] ** 2, 5.0 * u[:, 0] * u[:, 1]], axis=1)

    pair = make_pair(truth, seed=4, distortion=bend)
    poly = register(pair.sar, pair.opt, model="polynomial2")
    affine = register(pair.sar, pair.opt, model="affine")
    assert grid_rmse(poly.transform.forward, pair) < 0.5
    assert (
        grid_rmse(affine.transform.forward, pair) > 1.0
    )  # the distortion is real and an affine cannot follow


def test_project_generator_pair_with_layover() -> None:
    # saropt's own synthetic scene: buildings with layover and shadow, seamline, sea, 4-look speckle.
    import tempfile

    from saropt.io.raster import open_scene
    from saropt.synthetic import make_scene_pair

    with tempfile.TemporaryDirectory() as d:
        p = make_scene_pair(
            d,
            sar_size=(448, 448),
            seed=3,
            rotation_deg=12,
            scale=1.15,
            shift_px=(25, -15),
            write_classes=False,
        )
        sar, opt = open_scene(p.sar_path, "sar"), open_scene(p.opt_path, "optical")
        reg = register(sar, opt)
    from saropt.registration.auto.evaluate import transform_rmse

    assert transform_rmse(reg.transform, p.opt_to_sar, sar.shape) < 1.5
    assert reg.n_inliers >= 40


def test_auto_tiepoints_returns_reliable_points_with_provenance() -> None:
    pair = make_pair(similarity(0.0, 1.0, C, (135.0, 120.0)), seed=2)
    tp = auto_tiepoints(pair.sar, pair.opt)
    assert tp.source == "auto" and len(tp) >= 50
    assert (tp.score >= 0.5).all()
    err = np.hypot(*(pair.mapping(tp.opt_xy) - tp.sar_xy).T)
    assert np.median(err) < 0.5
    assert tp.meta["n_candidates"] >= len(tp) and tp.meta["coarse"]["angle_deg"] == pytest.approx(
        0.0, abs=2.5
    )
    everything = auto_tiepoints(pair.sar, pair.opt, config=AutoConfig(keep_unreliable=True))
    assert len(everything) >= len(tp)


def test_prior_and_region() -> None:
    truth = similarity(2.0, 1.0, C, (140.0, 118.0))
    pair = make_pair(truth, seed=3)
    # a prior 12 px off: the coarse translation search around it fixes that
    prior = AffineTransform(truth @ np.array([[1, 0, 9.0], [0, 1, -8.0], [0, 0, 1]]))
    reg = register(pair.sar, pair.opt, prior=prior, region=Window(40, 40, 180, 180))
    assert reg.meta["prior"] == "given"
    assert (
        grid_rmse(reg.transform.forward, pair, margin=44) < 1.0
    )  # inside the 180 px region it was fitted on
    assert (reg.tiepoints.sar_xy >= 40 - 1).all() and (reg.tiepoints.sar_xy <= 220 + 1).all()


# ------------------------------------------------------------------------------------------------ bad input


def test_blank_image_is_a_clear_error() -> None:
    pair = make_pair(similarity(0.0, 1.0, C, C), seed=0)
    with pytest.raises(
        RegistrationError, match=r"no textured candidate points \(image is blank or texture-less\)"
    ):
        register(pair.sar, np.full((256, 256), 128, np.uint8))


def test_unrelated_images_report_how_many_reliable_points() -> None:
    a = make_pair(similarity(0.0, 1.0, C, C), seed=5)
    other = (optical_world(256, seed=99) * 255).astype(np.uint8)
    with pytest.raises(
        RegistrationError, match=r"found \d+ reliable tie points of \d+ candidates \(reliability >= 0.5\)"
    ):
        register(a.sar, other)


def test_region_outside_the_sar_image_is_no_overlap() -> None:
    pair = make_pair(similarity(0.0, 1.0, C, C), seed=0)
    with pytest.raises(NoOverlapError, match="region"):
        register(pair.sar, pair.opt, region=Window(1000, 1000, 100, 100))


def test_prior_without_overlap_is_no_overlap() -> None:
    pair = make_pair(similarity(0.0, 1.0, C, C), seed=0)
    far = AffineTransform([[1.0, 0.0, 5000.0], [0.0, 1.0, 5000.0], [0.0, 0.0, 1.0]])
    with pytest.raises(NoOverlapError, match="does not overlap"):
        register(pair.sar, pair.opt, prior=far)


@pytest.mark.parametrize("model", ["bogus", "identity"])
def test_unsupported_model_is_an_input_error(model: str) -> None:
    with pytest.raises(InputError):
        register(np.zeros((64, 64)), np.zeros((64, 64)), model=model)
