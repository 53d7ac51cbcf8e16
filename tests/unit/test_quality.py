"""Quality filters on synthetic patch pairs with known defects: sea, seamlines, roads, shifts, duplicates.

The scenes are generated here: a field/city layout of random rectangles (optical brightness and SAR
backscatter drawn independently per field, so only the edges are shared), single-look gamma speckle converted
to 8-bit dB like saropt's default SAR mapping, and an RGB optical image.
"""

from __future__ import annotations

import itertools
import math
import time

import cv2
import numpy as np
import pytest

from saropt.errors import InputError
from saropt.io.windows import Window
from saropt.quality import (
    FILTERS,
    SCORE_KEYS,
    QualityConfig,
    decide,
    find_near_duplicates,
    hamming,
    patch_scores,
    phash,
    to_int64,
    to_uint64,
)
from saropt.quality.regcheck import registration_check
from saropt.quality.seam_trials import SeamTrials, add_seam, roc_auc, seam_trials
from saropt.quality.seamline import seam_context

N = 256


# ----------------------------------------------------------------------------------------------- generators
def fields(
    rng: np.random.Generator, n: int = N, lo: float = 90, hi: float = 160
) -> tuple[np.ndarray, np.ndarray]:
    """Optical RGB (float) and SAR backscatter (linear) of a random field layout."""
    opt = np.full((n, n), 0.5 * (lo + hi))
    sigma0 = np.full((n, n), 0.3)
    for _ in range(30):
        x0, y0 = rng.integers(-40, n, 2)
        w, h = rng.integers(20, 100, 2)
        sl = (slice(max(y0, 0), max(y0 + h, 0)), slice(max(x0, 0), max(x0 + w, 0)))
        opt[sl] = rng.uniform(lo, hi)
        sigma0[sl] = rng.uniform(0.05, 1.0)
    opt = cv2.GaussianBlur(opt, (0, 0), 1.0) + rng.normal(0, 2.0, opt.shape)
    return np.stack([opt, 0.9 * opt + 12, 0.8 * opt + 20], axis=-1), sigma0


def speckle(rng: np.random.Generator, sigma0: np.ndarray, looks: float = 1.0) -> np.ndarray:
    """Gamma speckle, then dB mapped from [-25, 5] dB to 8 bit."""
    db = 10 * np.log10(sigma0 * rng.gamma(looks, 1.0 / looks, sigma0.shape) + 1e-6)
    return np.clip((db + 25.0) / 30.0 * 255.0, 0, 255).astype(np.uint8)


def u8(a: np.ndarray) -> np.ndarray:
    return np.clip(a, 0, 255).astype(np.uint8)


def sea(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    sar = speckle(rng, np.full((N, N), 0.05))
    water = np.array([20.0, 60.0, 90.0]) + rng.normal(0, 1.5, (N, N, 3))
    return sar, u8(water)


def half_plane(rng: np.random.Generator) -> tuple[float, np.ndarray]:
    """A random straight line near the centre; returns its direction (degrees, screen) and one side."""
    yy, xx = np.mgrid[0:N, 0:N]
    angle = rng.uniform(0, 180)
    t = np.deg2rad(angle)
    side = (xx - 127.5) * np.sin(t) + (yy - 127.5) * np.cos(t) > rng.uniform(-30, 30)
    return angle, side


def angle_diff(a: float, b: float) -> float:
    d = abs(a - b) % 180.0
    return min(d, 180.0 - d)


# ----------------------------------------------------------------------------------------------- config
class TestConfig:
    def test_round_trip(self) -> None:
        cfg = QualityConfig(nodata_max=0.05, enabled=("texture", "nodata"))
        d = cfg.to_dict()
        assert d["enabled"] == ["nodata", "texture"]  # normalised to FILTERS order
        assert QualityConfig.from_dict(d) == cfg
        assert QualityConfig.from_dict(None) == QualityConfig()
        assert QualityConfig.from_dict({"enabled": "nodata"}).enabled == ("nodata",)

    @pytest.mark.parametrize(
        "d",
        [
            {"nodata": 0.1},
            {"nodata_max": 2.0},
            {"texture_step": 0},
            {"duplicate_max_hamming": 40},
            {"regcheck_min": 3},
            {"regcheck_max_shift": 1},
            {"enabled": ["texture", "clouds"]},
            {"seamline_max": -1},
        ],
    )
    def test_invalid(self, d: dict) -> None:
        with pytest.raises(InputError):
            QualityConfig.from_dict(d)

    def test_filters(self) -> None:
        assert FILTERS == ("nodata", "texture", "seamline", "duplicate", "regcheck")


# ----------------------------------------------------------------------------------------------- scores
class TestPatchScores:
    def test_keys_and_hash_types(self) -> None:
        rng = np.random.default_rng(0)
        rgb, sigma0 = fields(rng)
        scores = patch_scores(speckle(rng, sigma0), u8(rgb), np.ones((N, N), bool))
        assert tuple(scores) == SCORE_KEYS
        for key in ("phash_sar", "phash_opt"):
            assert isinstance(scores[key], int) and -(2**63) <= scores[key] < 2**63
        assert scores["nodata_fraction"] == 0.0

    def test_grey_optical_and_float_inputs(self) -> None:
        rng = np.random.default_rng(1)
        rgb, sigma0 = fields(rng)
        sar = speckle(rng, sigma0)
        grey = u8(rgb[..., 0])
        a = patch_scores(sar, grey, None)
        b = patch_scores(sar.astype(np.float32), grey.astype(np.float32), None)
        assert a["texture"] == pytest.approx(b["texture"]) and a["phash_opt"] == b["phash_opt"]
        assert a["texture_opt"] >= 3.5

    def test_disabled_filters_are_nan(self) -> None:
        rng = np.random.default_rng(2)
        rgb, sigma0 = fields(rng)
        scores = patch_scores(speckle(rng, sigma0), u8(rgb), None, QualityConfig(enabled=("nodata",)))
        for key in ("texture", "seamline", "regcheck", "regcheck_shift_px"):
            assert math.isnan(scores[key])
        flags, reasons = decide(scores, QualityConfig(enabled=("nodata",)))
        assert not any(flags.values()) and reasons == []

    @pytest.mark.parametrize(
        ("sar_shape", "opt_shape", "valid_shape"),
        [
            ((N, N), (N, N + 1, 3), (N, N)),
            ((N, N), (N, N, 4), (N, N)),
            ((N, N), (N, N), (N, 10)),
            ((8, 8), (8, 8), (8, 8)),
        ],
    )
    def test_shape_errors(self, sar_shape: tuple, opt_shape: tuple, valid_shape: tuple) -> None:
        with pytest.raises(InputError):
            patch_scores(
                np.zeros(sar_shape, np.uint8), np.zeros(opt_shape, np.uint8), np.ones(valid_shape, bool)
            )


class TestNodata:
    def test_fraction_and_reason(self) -> None:
        rng = np.random.default_rng(3)
        rgb, sigma0 = fields(rng)
        valid = np.ones((N, N), bool)
        valid[:, :32] = False  # 12.5%
        scores = patch_scores(speckle(rng, sigma0), u8(rgb), valid)
        assert scores["nodata_fraction"] == pytest.approx(0.125)
        flags, reasons = decide(scores)
        assert flags["nodata"] and "nodata 12.5% > 1.0%" in reasons
        # The filled invalid strip must not create texture, seamline or misregistration by itself.
        assert not flags["texture"] and not flags["seamline"] and not flags["regcheck"]

    def test_tolerance(self) -> None:
        scores = {"nodata_fraction": 0.009}
        assert not decide(scores)[0]["nodata"]
        assert decide(scores, QualityConfig(nodata_max=0.005))[0]["nodata"]


# ----------------------------------------------------------------------------------------------- texture
class TestTexture:
    def test_sea_is_textureless(self) -> None:
        for seed in range(3):
            sar, opt = sea(np.random.default_rng(seed))
            scores = patch_scores(sar, opt, None)
            flags, reasons = decide(scores)
            assert flags["texture"], scores
            assert scores["texture_sar"] < 2.5 and scores["texture_opt"] < 2.5
            assert any(r.startswith("texture-less (structure") for r in reasons)
            # No evidence either way for the registration check on open sea.
            assert math.isnan(scores["regcheck"]) and not flags["regcheck"]

    def test_raw_speckle_entropy_is_high_but_not_texture(self) -> None:
        sar, _ = sea(np.random.default_rng(4))
        hist = np.bincount(sar.ravel(), minlength=256) / sar.size
        raw_entropy = -(hist[hist > 0] * np.log2(hist[hist > 0])).sum()
        assert raw_entropy > 5.5  # what a naive entropy filter would see
        assert patch_scores(sar, sar, None)["texture_sar"] < 2.5

    def test_fields_are_textured(self) -> None:
        for seed in range(3):
            rng = np.random.default_rng(10 + seed)
            rgb, sigma0 = fields(rng)
            scores = patch_scores(speckle(rng, sigma0), u8(rgb), None)
            assert not decide(scores)[0]["texture"]
            assert scores["texture_sar"] > 4.0 and scores["texture_opt"] > 4.0

    def test_monotone_in_contrast(self) -> None:
        rng = np.random.default_rng(5)
        sar, _ = sea(rng)
        rgb, _ = fields(np.random.default_rng(6), lo=60, hi=180)
        layout = rgb[..., 0]
        layout = (layout - layout.mean()) / layout.std()
        bits = [patch_scores(sar, u8(128 + c * layout), None)["texture_opt"] for c in (1, 4, 16, 40)]
        assert all(a < b for a, b in itertools.pairwise(bits)), bits
        assert bits[0] < 3.5 < bits[-1]

    def test_ramp_is_not_texture(self) -> None:
        sar, _ = sea(np.random.default_rng(7))
        ramp = np.linspace(60, 140, N)[None, :] * np.ones((N, 1))
        assert patch_scores(sar, u8(ramp), None)["texture_opt"] < 1.5

    def test_one_textured_modality_keeps_the_patch(self) -> None:
        rng = np.random.default_rng(8)
        _, sigma0 = fields(rng)
        cloud = u8(np.full((N, N, 3), 235.0) + rng.normal(0, 1.0, (N, N, 3)))
        scores = patch_scores(speckle(rng, sigma0), cloud, None)
        assert scores["texture_opt"] < 2 and scores["texture_sar"] > 4
        assert not decide(scores)[0]["texture"]


# ----------------------------------------------------------------------------------------------- seamline
class TestSeamline:
    def test_mosaicking_step_is_flagged(self) -> None:
        flagged = 0
        for seed in range(12):
            rng = np.random.default_rng(100 + seed)
            rgb, sigma0 = fields(rng, lo=110, hi=140)
            angle, side = half_plane(rng)
            sar = speckle(rng, sigma0)
            scores = patch_scores(sar, u8(rgb + 40 * side[..., None]), None)
            flags, reasons = decide(scores)
            if flags["seamline"]:
                flagged += 1
                assert angle_diff(scores["seamline_angle"], angle) <= 7.5
                assert any(r.startswith("seamline (optical step") for r in reasons)
            # The same scene without the step is clean.
            assert not decide(patch_scores(sar, u8(rgb), None))[0]["seamline"]
        assert flagged >= 9  # +40 grey levels on textured fields: detected in about 80-95% of patches

    def test_strong_step_always_flagged(self) -> None:
        for seed in range(6):
            rng = np.random.default_rng(200 + seed)
            rgb, sigma0 = fields(rng)
            angle, side = half_plane(rng)
            scores = patch_scores(speckle(rng, sigma0), u8(rgb + 60 * side[..., None]), None)
            assert decide(scores)[0]["seamline"], scores["seamline"]
            assert angle_diff(scores["seamline_angle"], angle) <= 7.5

    def test_colour_only_step(self) -> None:
        rng = np.random.default_rng(9)
        rgb, sigma0 = fields(rng, lo=110, hi=140)
        _, side = half_plane(rng)
        shifted = rgb.copy()
        shifted[..., 2] += 60 * side  # blue haze on one side, red and green unchanged
        assert decide(patch_scores(speckle(rng, sigma0), u8(shifted), None))[0]["seamline"]

    def test_grows_with_offset(self) -> None:
        for seed in range(3):
            rng = np.random.default_rng(300 + seed)
            rgb, sigma0 = fields(rng, lo=60, hi=120)
            _, side = half_plane(rng)
            sar = speckle(rng, sigma0)
            scores = [
                patch_scores(sar, u8(rgb + d * side[..., None]), None)["seamline"] for d in (20, 40, 60, 80)
            ]
            assert scores == sorted(scores), scores

    def test_road_in_both_not_flagged(self) -> None:
        for seed in range(8):
            rng = np.random.default_rng(400 + seed)
            rgb, sigma0 = fields(rng)
            road = np.zeros((N, N), np.uint8)
            cv2.line(road, (0, int(rng.uniform(60, 200))), (N - 1, int(rng.uniform(60, 200))), 1, 6)
            rgb[road > 0] = 215.0
            sigma0[road > 0] = 0.02
            assert not decide(patch_scores(speckle(rng, sigma0), u8(rgb), None))[0]["seamline"]

    def test_field_boundary_in_both_not_flagged(self) -> None:
        for seed in range(8):
            rng = np.random.default_rng(500 + seed)
            rgb, sigma0 = fields(rng)
            _, side = half_plane(rng)
            rgb[side] += 40.0
            sigma0[side] *= 4.0  # +6 dB: the boundary shows in the SAR too
            assert not decide(patch_scores(speckle(rng, sigma0), u8(rgb), None))[0]["seamline"]


class TestSeamlineContext:
    """With the unit around the patch: a seamline runs on, a field boundary (the common false alarm) ends."""

    M = 3 * N  # a 768 px area, the patch in its middle

    def area(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        rgb, sigma0 = fields(rng, n=self.M, lo=110, hi=140)
        return rgb, sigma0

    def score(self, sar: np.ndarray, rgb: np.ndarray, context: bool) -> dict[str, float]:
        ctx = seam_context(sar, u8(rgb), None, 16).at((N, N)) if context else None
        sl = (slice(N, 2 * N), slice(N, 2 * N))
        return patch_scores(sar[sl], u8(rgb[sl]), None, None, ctx)

    def test_long_seamline_still_flagged(self) -> None:
        flagged = 0
        for seed in range(8):
            rng = np.random.default_rng(700 + seed)
            rgb, sigma0 = self.area(rng)
            angle = rng.uniform(0, 180)
            t = np.deg2rad(angle)
            yy, xx = np.mgrid[0 : self.M, 0 : self.M]
            side = (xx - 383.5) * np.sin(t) + (yy - 383.5) * np.cos(t) > rng.uniform(-30, 30)
            sar = speckle(rng, sigma0)
            scores = self.score(sar, rgb + 60 * side[..., None], context=True)
            if decide(scores)[0]["seamline"]:
                flagged += 1
                assert angle_diff(scores["seamline_angle"], angle) <= 7.5
        assert flagged >= 7, flagged

    def test_field_boundary_inside_patch_not_flagged_with_context(self) -> None:
        alone = with_context = 0
        for seed in range(8):
            rng = np.random.default_rng(800 + seed)
            rgb, sigma0 = self.area(rng)
            # a field across the patch, brighter by 60 grey levels and invisible in the SAR, that ends 30 px
            # beyond the patch on either side
            y0 = int(rng.integers(N + 60, N + 120))
            rgb[y0 : y0 + 120, N - 30 : 2 * N + 30] += 60.0
            sar = speckle(rng, sigma0)
            alone += decide(self.score(sar, rgb, context=False))[0]["seamline"]
            with_context += decide(self.score(sar, rgb, context=True))[0]["seamline"]
        assert alone >= 4  # the patch-only detector takes the field's edge for a seamline
        assert with_context == 0

    def test_context_of_a_patch_sized_area_changes_nothing(self) -> None:
        rng = np.random.default_rng(900)
        rgb, sigma0 = fields(rng)
        _, side = half_plane(rng)
        sar = speckle(rng, sigma0)
        opt = u8(rgb + 60 * side[..., None])
        ctx = seam_context(sar, opt, None, 16)
        assert patch_scores(sar, opt, None, None, ctx)["seamline"] == patch_scores(sar, opt, None)["seamline"]


class TestSeamTrials:
    """Injected seams (saropt.quality.seam_trials): the tool behind benchmarks/seamline_real.py."""

    def test_add_seam_side_clip_and_channel(self) -> None:
        opt = np.full((64, 64, 3), 250, np.uint8)
        out = add_seam(opt, (31.5, 31.5), 0.0, 40)  # a horizontal line: the normal (0, 1) points down
        assert (out[40:] == 255).all() and (out[:24] == 250).all()  # brighter below, clipped at 255
        dark = add_seam(opt, (31.5, 31.5), 90.0, -40, channel=2)  # a vertical line: the normal points right
        assert (dark[:, 40:, 2] == 210).all() and (dark[:, :24] == 250).all() and (dark[..., :2] == 250).all()
        assert (opt == 250).all()  # the input is not modified
        with pytest.raises(InputError):
            add_seam(opt.astype(np.float32), (0, 0), 0.0, 10)
        with pytest.raises(InputError):
            add_seam(opt[..., 0], (0, 0), 0.0, 10, channel=1)

    def test_add_seam_angle_is_the_detector_angle(self) -> None:
        for seed in range(4):
            rng = np.random.default_rng(1100 + seed)
            rgb, sigma0 = fields(rng, lo=110, hi=140)
            angle = float(rng.uniform(0, 180))
            opt = add_seam(u8(rgb), (127.5, 127.5), angle, 60)
            scores = patch_scores(speckle(rng, sigma0), opt, None)
            assert decide(scores)[0]["seamline"]
            assert angle_diff(scores["seamline_angle"], angle) <= 7.5

    def test_roc_auc(self) -> None:
        rng = np.random.default_rng(3)
        pos, neg = rng.normal(1, 1, 50).round(1), rng.normal(0, 1, 70).round(1)
        brute = np.mean([(p > n) + 0.5 * (p == n) for p in pos for n in neg])
        assert roc_auc(pos, neg) == pytest.approx(brute)
        assert roc_auc(np.array([2.0, np.nan]), np.array([1.0])) == 1.0
        assert math.isnan(roc_auc(np.array([]), neg))

    def test_trials_on_a_synthetic_scene(self) -> None:
        rng = np.random.default_rng(1200)
        m = 3 * N
        rgb, sigma0 = fields(rng, n=m, lo=110, hi=140)
        sar, opt = speckle(rng, sigma0), u8(rgb)
        r = seam_trials(sar, opt, None, stride=128, offsets=(20.0, 60.0), trials=3, seed=0)
        assert r.clean.size == 25 and r.seam[20.0].size == r.seam[60.0].size > 0
        # the same lines, so a stronger seam scores at least as high, and a +-60 seam is found
        assert np.nanmean(r.seam[60.0]) > np.nanmean(r.seam[20.0])
        assert r.detection(60.0, 25.0) >= 0.6 and r.auc(60.0) > 0.9
        assert r.false_alarm(25.0) <= 0.1
        pooled = SeamTrials()
        pooled.extend(r)
        pooled.extend(r)
        assert pooled.clean.size == 50 and pooled.auc(60.0) == pytest.approx(r.auc(60.0))
        # offsets are magnitudes (the sign is drawn per trial): -60 gives the same trials as 60
        neg = seam_trials(sar, opt, None, stride=128, offsets=(-60.0,), trials=3, seed=0)
        assert list(neg.seam) == [60.0] and np.array_equal(neg.seam[60.0], r.seam[60.0], equal_nan=True)
        with pytest.raises(InputError, match="smaller than one"):
            seam_trials(sar[:100], opt[:100], None)
        with pytest.raises(InputError, match="same grid"):
            seam_trials(sar, opt[:, :-1], None)


# ----------------------------------------------------------------------------------------------- regcheck
def shifted_pair(seed: int, dx: int, dy: int) -> tuple[np.ndarray, np.ndarray]:
    """SAR of a scene and its optical with the content displaced by (dx, dy) pixels."""
    rng = np.random.default_rng(seed)
    pad = 12
    rgb, sigma0 = fields(rng, n=N + 2 * pad)
    sar = speckle(rng, sigma0[pad : pad + N, pad : pad + N])
    opt = u8(rgb[pad - dy : pad - dy + N, pad - dx : pad - dx + N])
    return sar, opt


class TestRegcheck:
    def test_aligned(self) -> None:
        for seed in range(4):
            sar, opt = shifted_pair(600 + seed, 0, 0)
            scores = patch_scores(sar, opt, None)
            assert scores["regcheck"] > 0.0
            assert scores["regcheck_shift_px"] < 2.5
            assert not decide(scores)[0]["regcheck"]

    @pytest.mark.parametrize(("dx", "dy"), [(6, 0), (-6, 0), (0, 6), (5, -4)])
    def test_shifted_is_flagged_with_its_shift(self, dx: int, dy: int) -> None:
        for seed in range(3):
            sar, opt = shifted_pair(700 + seed, dx, dy)
            scores = patch_scores(sar, opt, None)
            flags, reasons = decide(scores)
            assert flags["regcheck"], scores["regcheck"]
            assert scores["regcheck_dx"] == pytest.approx(dx, abs=1.5)
            assert scores["regcheck_dy"] == pytest.approx(dy, abs=1.5)
            assert any(r.startswith("misregistered (match peaks at") for r in reasons)

    def test_public_full_resolution_entry(self) -> None:
        sar, opt = shifted_pair(800, 6, 0)
        check = registration_check(sar, opt.mean(axis=2), np.ones((N, N), bool))
        assert check.dx == pytest.approx(6, abs=1.5) and check.margin < 0

    def test_larger_search_radius(self) -> None:
        sar, opt = shifted_pair(801, 10, 0)
        cfg = QualityConfig(regcheck_max_shift=12)
        scores = patch_scores(sar, opt, None, cfg)
        assert scores["regcheck_dx"] == pytest.approx(10, abs=1.5) and decide(scores, cfg)[0]["regcheck"]


# ----------------------------------------------------------------------------------------------- duplicates
class TestHashes:
    def test_phash_properties(self) -> None:
        rng = np.random.default_rng(900)
        rgb, _ = fields(rng)
        img = u8(rgb)
        h = phash(img)
        assert 0 <= h < 2**64
        assert phash(img.copy()) == h
        brighter = u8(rgb * 1.1 + 8 + rng.normal(0, 3, rgb.shape))
        assert hamming(h, phash(brighter)) <= 6
        other, _ = fields(np.random.default_rng(901))
        assert hamming(h, phash(u8(other))) >= 16

    def test_int64_round_trip(self) -> None:
        for h in (0, 1, 2**63 - 1, 2**63, 2**64 - 1):
            s = to_int64(h)
            assert -(2**63) <= s < 2**63 and to_uint64(s) == h
            assert hamming(s, h) == 0
        assert hamming(to_int64(2**64 - 1), 0) == 64

    def test_phash_too_small(self) -> None:
        with pytest.raises(InputError):
            phash(np.zeros((4, 4)))


class TestNearDuplicates:
    def test_rules(self) -> None:
        a, b, c = 0x0123456789ABCDEF, 0x0F0F0F0F0F0F0F0F, 0xFFFF0000FFFF0000
        w = [Window(0, 0, 256, 256), Window(205, 0, 256, 256), Window(1000, 0, 256, 256)]
        hashes = [a, a ^ 1, a ^ 3, b, a, c]
        groups = ["s1", "s1", "s1", "s1", "s2", "s2"]
        windows = [w[0], w[1], w[2], Window(0, 500, 256, 256), w[0], w[1]]
        result = find_near_duplicates(hashes, groups, windows, 4)
        # 1 overlaps 0 in the same scene: not compared. 2 does not overlap 0: duplicate of the earliest, 0.
        # 4 is the same content in another scene: duplicate of 0. 3 and 5 differ.
        assert result == [None, None, 0, None, 0, None]

    def test_duplicates_are_not_references(self) -> None:
        base = 0
        d1 = 0b111  # 3 bits from base
        d2 = 0b111111  # 6 bits from base, 3 from d1
        windows = [Window(0, 0, 10, 10)] * 3
        assert find_near_duplicates([base, d1, d2], ["a", "b", "c"], windows, 3) == [None, 0, None]

    def test_keep_and_tuples(self) -> None:
        windows = [Window(0, 0, 10, 10)] * 3
        assert find_near_duplicates([5, 5, 5], ["a", "b", "c"], windows, 0, keep=[False, True, True]) == [
            None,
            None,
            1,
        ]
        pairs = [(1, 100), (1, 100 ^ 0xFFFF), (1 ^ 1, 100 ^ 1)]
        assert find_near_duplicates(pairs, ["a", "b", "c"], windows, 2) == [None, None, 0]

    def test_signed_and_unsigned_hashes_agree(self) -> None:
        windows = [Window(0, 0, 10, 10)] * 2
        h = 2**64 - 5
        assert find_near_duplicates([h, to_int64(h)], ["a", "b"], windows, 0) == [None, 0]

    @pytest.mark.parametrize("m", [-1, 33])
    def test_invalid(self, m: int) -> None:
        with pytest.raises(InputError):
            find_near_duplicates([1], ["a"], [Window(0, 0, 1, 1)], m)
        with pytest.raises(InputError):
            find_near_duplicates([1, 2], ["a"], [Window(0, 0, 1, 1)], 4)

    def test_scales_to_20k_patches(self) -> None:
        rng = np.random.default_rng(0)
        n = 20_000
        hashes = [int(x) for x in rng.integers(0, 2**63, n, dtype=np.int64)]
        planted = {}
        for src, dst in zip(
            rng.choice(n // 2, 200, replace=False), rng.choice(np.arange(n // 2, n), 200, replace=False)
        ):
            hashes[dst] = hashes[src] ^ (1 << int(rng.integers(0, 64)))
            planted[int(dst)] = int(src)
        groups = [f"scene{i // 2000}" for i in range(n)]
        windows = [Window((i % 50) * 205, ((i // 50) % 40) * 205, 256, 256) for i in range(n)]
        start = time.process_time()
        result = find_near_duplicates(hashes, groups, windows, 6)
        elapsed = time.process_time() - start
        found = {i: j for i, j in enumerate(result) if j is not None}
        assert found == planted
        assert elapsed < 5.0  # about 0.5 s of CPU; the bound only catches an accidental all-pairs search


_REGCHECK_ROW = {
    "regcheck": -0.3,
    "regcheck_dx": 6.0,
    "regcheck_dy": 0.0,
    "regcheck_shift_px": 6.0,
    "regcheck_contrast": 0.12,
}


class TestRegcheckDecision:
    """The flag needs a negative margin, a peak away from zero and a distinct similarity surface."""

    BASE = _REGCHECK_ROW

    def test_all_conditions_flag(self) -> None:
        flags, reasons = decide(self.BASE)
        assert flags["regcheck"] and reasons[0].startswith("misregistered (match peaks at dx +6.0")

    @pytest.mark.parametrize(
        "change",
        [{"regcheck": 0.05}, {"regcheck_shift_px": 2.5}, {"regcheck_contrast": 0.05}],
    )
    def test_any_missing_condition_keeps(self, change: dict) -> None:
        assert not decide({**self.BASE, **change})[0]["regcheck"]

    def test_thresholds_are_settings(self) -> None:
        cfg = QualityConfig(regcheck_min_shift=2.0, regcheck_min_contrast=0.04)
        assert decide({**self.BASE, "regcheck_shift_px": 2.5, "regcheck_contrast": 0.05}, cfg)[0]["regcheck"]
        with pytest.raises(InputError):
            QualityConfig(regcheck_min_shift=20.0)
        with pytest.raises(InputError):
            QualityConfig(regcheck_min_contrast=-1.0)

    def test_old_index_rows_without_contrast_still_flag(self) -> None:
        row = {k: v for k, v in self.BASE.items() if k != "regcheck_contrast"}
        assert decide(row)[0]["regcheck"]
