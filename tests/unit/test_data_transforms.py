"""SAR radiometry, percentile stretching, paired geometry, known misalignment, speckle filters."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from saropt.data import transforms as T
from saropt.data.speckle import SpeckleFilter, frost, lee, refined_lee
from saropt.errors import InputError


def _sample(h: int = 12, w: int = 16) -> dict:
    """A sample whose SAR is the optical red channel, so alignment is checkable pixel by pixel."""
    opt = torch.arange(3 * h * w, dtype=torch.float32).reshape(3, h, w)
    return {
        "sar": opt[:1].clone(),
        "opt": opt,
        "lc": torch.arange(h * w).reshape(1, h, w),
        "meta": {"id": "a", "window": (100, 200, w, h)},
    }


def test_radiometry_round_trips() -> None:
    x = torch.tensor([1e-3, 0.01, 0.5, 1.0, 7.0])
    torch.testing.assert_close(T.db_to_intensity(T.intensity_to_db(x)), x)
    torch.testing.assert_close(T.db_to_amplitude(T.amplitude_to_db(x)), x)
    torch.testing.assert_close(T.intensity_to_db(T.amplitude_to_intensity(x)), T.amplitude_to_db(x))
    torch.testing.assert_close(T.intensity_to_amplitude(T.amplitude_to_intensity(x)), x)
    assert float(T.intensity_to_db(torch.tensor(0.1))) == pytest.approx(-10.0)
    assert torch.isfinite(T.intensity_to_db(torch.tensor([0.0]))).all()


def test_percentile_stretch_and_clip() -> None:
    x = torch.linspace(0, 100, 10001).reshape(1, 1, -1).repeat(2, 1, 1)
    x[1] *= 2
    x[0, 0, 0] = float("nan")
    s = T.percentile_stretch(x, 1.0, 99.0)
    assert float(s.min()) == 0.0 and float(s.max()) == 1.0 and torch.isfinite(s).all()
    mid = T.percentile_stretch(x, 1.0, 99.0)[:, 0, 5000]
    torch.testing.assert_close(mid, torch.tensor([0.5, 0.5]), atol=1e-3, rtol=0)  # per channel
    c = T.percentile_clip(x[1:], 10, 90)
    assert float(c.min()) == pytest.approx(20.0, abs=0.05) and float(c.max()) == pytest.approx(
        180.0, abs=0.05
    )
    with pytest.raises(InputError):
        T.percentile_stretch(x, 50, 10)


def test_normalize_and_standardize() -> None:
    x = torch.rand(3, 8, 8)
    n = T.normalize(x, [0.1, 0.2, 0.3], [2.0, 2.0, 2.0])
    torch.testing.assert_close(n[1], (x[1] - 0.2) / 2.0)
    s = T.standardize(x)
    torch.testing.assert_close(s.mean(dim=(-2, -1)), torch.zeros(3), atol=1e-5, rtol=0)
    with pytest.raises(InputError):
        T.normalize(x, [0, 0], [1, 1])


@pytest.mark.parametrize(
    "op",
    [T.hflip, T.vflip, lambda s: T.rot90(s, 1), lambda s: T.rot90(s, 3), lambda s: T.crop(s, 2, 3, 5, 7)],
)
def test_geometry_keeps_pairs_aligned(op) -> None:
    out = op(_sample())
    torch.testing.assert_close(out["sar"][0], out["opt"][0])  # SAR still equals the optical red channel
    assert out["lc"].shape[-2:] == out["sar"].shape[-2:]


def test_crop_updates_window_and_rejects_bad_boxes() -> None:
    out = T.crop(_sample(), 2, 3, 5, 7)
    assert out["meta"]["window"] == (103, 202, 7, 5)
    assert _sample()["meta"]["window"] == (100, 200, 16, 12)  # input not mutated
    with pytest.raises(InputError, match="does not fit"):
        T.crop(_sample(), 10, 0, 5, 5)


def test_rot90_matches_numpy_counter_clockwise() -> None:
    s = _sample()
    np.testing.assert_array_equal(T.rot90(s, 1)["opt"][2].numpy(), np.rot90(s["opt"][2].numpy(), 1))


@pytest.mark.parametrize("dx,dy", [(3, -2), (-4, 1), (0, 0), (2, 2)])
def test_misalign_convention(dx: int, dy: int) -> None:
    s = _sample(20, 24)
    out = T.misalign(s, dx, dy, size=(12, 14))
    sar, opt = out["sar"][0], out["opt"][0]
    assert out["meta"]["shift"] == (dx, dy) and sar.shape == opt.shape == (12, 14)
    # a ground feature at SAR pixel (x, y) is at optical pixel (x - dx, y - dy)
    for y, x in [(5, 6), (7, 9), (4, 5)]:
        assert float(sar[y, x]) == float(opt[y - dy, x - dx])
    # and the SAR crop keeps the window bookkeeping: output SAR pixel (0, 0) is input ((24-14)//2, (20-12)//2)
    assert out["meta"]["window"][:2] == (100 + 5, 200 + 4)


def test_misalign_default_size_and_errors() -> None:
    out = T.misalign(_sample(10, 10), 3, -2)
    assert tuple(out["sar"].shape[-2:]) == (8, 7)
    with pytest.raises(InputError, match="does not fit"):
        T.misalign(_sample(10, 10), 3, 0, size=9)


def test_random_modules_are_seeded_and_recorded() -> None:
    aug = torch.nn.Sequential(
        T.RandomFlip(generator=torch.Generator().manual_seed(3)),
        T.RandomRot90(generator=torch.Generator().manual_seed(3)),
        T.RandomCrop(8, generator=torch.Generator().manual_seed(3)),
        T.RandomMisalign(2, generator=torch.Generator().manual_seed(3)),
    )
    aug2 = torch.nn.Sequential(
        T.RandomFlip(generator=torch.Generator().manual_seed(3)),
        T.RandomRot90(generator=torch.Generator().manual_seed(3)),
        T.RandomCrop(8, generator=torch.Generator().manual_seed(3)),
        T.RandomMisalign(2, generator=torch.Generator().manual_seed(3)),
    )
    a, b = aug(_sample(12, 12)), aug2(_sample(12, 12))
    torch.testing.assert_close(a["opt"], b["opt"])
    assert a["meta"]["shift"] == b["meta"]["shift"] and tuple(a["sar"].shape) == (1, 4, 4)
    assert {"hflip", "vflip", "rot90", "shift"} <= set(a["meta"])
    shifts = {T.RandomMisalign(2)(_sample(12, 12))["meta"]["shift"] for _ in range(60)}
    assert all(abs(dx) <= 2 and abs(dy) <= 2 for dx, dy in shifts) and len(shifts) > 10


def test_module_twins_equal_functions() -> None:
    x = {"sar": torch.rand(1, 8, 8) + 0.1, "opt": torch.rand(3, 8, 8), "meta": {}}
    torch.testing.assert_close(T.ToDB()(x)["sar"], T.intensity_to_db(x["sar"]))
    torch.testing.assert_close(T.ToDB(kind="amplitude")(x)["sar"], T.amplitude_to_db(x["sar"]))
    torch.testing.assert_close(T.PercentileStretch(("opt",))(x)["opt"], T.percentile_stretch(x["opt"]))
    torch.testing.assert_close(T.Normalize("opt", 0.5, 0.25)(x)["opt"], (x["opt"] - 0.5) / 0.25)
    torch.testing.assert_close(T.CenterCrop(4)(x)["opt"], x["opt"][:, 2:6, 2:6])


def test_batched_geometry() -> None:
    b = {"sar": torch.rand(4, 1, 8, 8), "opt": torch.rand(4, 3, 8, 8)}
    b["sar"] = b["opt"][:, :1].clone()
    out = T.RandomCrop(5)(T.RandomRot90()(b))
    torch.testing.assert_close(out["sar"][:, 0], out["opt"][:, 0])


# -- speckle filters -----------------------------------------------------------------------------------------


def _step_scene(looks: float = 4.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    clean = np.where(np.arange(96)[None, :] < 48, 1.0, 4.0) * np.ones((64, 1))
    return clean, (clean * rng.gamma(looks, 1.0 / looks, clean.shape)).astype(np.float32)


def _edge_width(img: np.ndarray) -> int:
    """Columns across which the mean row profile goes from 10% to 90% of the step."""
    prof = img.mean(0)
    lo, hi = prof[:40].mean(), prof[56:].mean()
    frac = (prof - lo) / (hi - lo)
    return int(np.argmax(frac > 0.9) - np.argmax(frac > 0.1))


@pytest.mark.parametrize("fn", [lambda x: lee(x, 7, 4), lambda x: refined_lee(x, 4), lambda x: frost(x, 5)])
def test_speckle_filters_reduce_variation_and_keep_mean(fn) -> None:
    clean, noisy = _step_scene()
    out = fn(noisy)
    assert isinstance(out, np.ndarray) and out.shape == noisy.shape and out.dtype == np.float32
    flat_in, flat_out = noisy[:, 5:40], out[:, 5:40]
    cv_in = flat_in.std() / flat_in.mean()
    cv_out = flat_out.std() / flat_out.mean()
    assert cv_in == pytest.approx(0.5, abs=0.03)  # 4-look intensity speckle
    assert cv_out < 0.5 * cv_in
    assert flat_out.mean() == pytest.approx(1.0, rel=0.03)
    assert out[:, 60:90].mean() == pytest.approx(4.0, rel=0.03)


def test_refined_lee_keeps_edges_sharper_than_lee() -> None:
    _, noisy = _step_scene()
    w_lee, w_ref = _edge_width(lee(noisy, 7, 4)), _edge_width(refined_lee(noisy, 4))
    assert w_ref <= 3 and w_ref < w_lee


def test_speckle_tensor_batches_and_module() -> None:
    _, noisy = _step_scene()
    t = torch.from_numpy(noisy).expand(2, 3, -1, -1).contiguous()
    out = refined_lee(t, 4)
    assert isinstance(out, torch.Tensor) and out.shape == t.shape
    torch.testing.assert_close(out[1, 2], torch.from_numpy(refined_lee(noisy, 4)))
    s = SpeckleFilter("frost", size=3)({"sar": t[0, :1], "opt": t[0]})
    torch.testing.assert_close(s["sar"], frost(t[0, :1], 3))
    with pytest.raises(InputError):
        lee(noisy, size=4)
    with pytest.raises(InputError):
        SpeckleFilter("median")
