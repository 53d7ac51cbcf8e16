"""Training-free similarity measures, views and the evaluation protocols on generated data with known
truth."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from saropt.errors import InputError
from saropt.matching.baselines import (
    CFOGScorer,
    MIScorer,
    NCCScorer,
    create_baseline,
    mutual_information_rows,
)
from saropt.matching.protocols import (
    PatchCodes,
    ProtocolSettings,
    encode_patches,
    limit_patches,
    localisation_geometry,
    localisation_protocol,
    pair_protocol,
    retrieval_protocol,
    score_pairs,
)
from saropt.matching.scoring import Scorer
from saropt.matching.views import PairViews, ViewSpec, make_view

from .matching_fake import _texture, write_fake_saropt


def _pair(seed: int, side: int = 48) -> tuple[torch.Tensor, torch.Tensor]:
    tex = torch.from_numpy(_texture(np.random.default_rng(seed), side))
    return tex[None].clone(), tex[None].repeat(3, 1, 1)


def test_views_centre_and_random_crops_keep_pairs_aligned() -> None:
    sar, opt = _pair(0, 48)
    s, o = make_view(sar, opt, ViewSpec(crop=32, size=0))
    assert torch.equal(s, sar[:, 8:40, 8:40])  # centred
    for k in range(5):
        rng = np.random.default_rng(k)
        s, o = make_view(sar, opt, ViewSpec(crop=32, size=16), rng, "flip_rot90")
        assert s.shape == (1, 16, 16) and o.shape == (3, 16, 16)
        assert torch.allclose(s[0], o[0], atol=1e-6)  # same window and same flips on both sides


def test_pair_views_are_reproducible_per_epoch(tmp_path: Path) -> None:
    from saropt.data.saropt_ds import SaroptDataset

    ds = SaroptDataset(write_fake_saropt(tmp_path / "d"), split="train")
    v = PairViews(ds, ViewSpec(24, 16), train=True, augment="flip", seed=3)
    a = v[5]["sar"]
    assert torch.equal(a, v[5]["sar"])
    v.set_epoch(1)
    b = v[5]["sar"]
    v.set_epoch(0)
    assert torch.equal(a, v[5]["sar"]) and not torch.equal(a, b)


def test_mutual_information_of_identical_binary_images_is_log2() -> None:
    q = np.array([0, 1] * 50)
    mi = mutual_information_rows(q, np.stack([q, np.zeros_like(q)]), bins=2)
    assert mi[0] == pytest.approx(np.log(2)) and mi[1] == pytest.approx(0.0)


@pytest.mark.parametrize("name", ["ncc", "mi", "cfog"])
def test_baselines_prefer_the_true_partner(name: str) -> None:
    scorer = create_baseline(name)
    pairs = [_pair(k, 32) for k in range(6)]
    sar = torch.stack([p[0] for p in pairs])
    opt = torch.stack([p[1] for p in pairs])
    m = scorer.score_matrix(scorer.encode_sar(sar), scorer.encode_opt(opt))
    assert m.shape == (6, 6)
    assert np.all(np.argmax(m, axis=1) == np.arange(6))
    assert np.allclose(np.diag(m), scorer.pair_scores(scorer.encode_sar(sar), scorer.encode_opt(opt)))
    if name == "ncc":
        assert np.allclose(np.diag(m), 1.0)


@pytest.mark.parametrize("scorer", [NCCScorer(), MIScorer(), CFOGScorer()], ids=["ncc", "mi", "cfog"])
@pytest.mark.parametrize("shift", [(0, 0), (3, -2), (-5, 5)])
def test_baseline_surfaces_find_a_known_shift(scorer: Scorer, shift: tuple[int, int]) -> None:
    sar, opt = _pair(7, 64)
    r, t = 6, 40
    w0 = (64 - (t + 2 * r)) // 2
    dx, dy = shift
    template = sar[:, w0 + r + dy : w0 + r + dy + t, w0 + r + dx : w0 + r + dx + t]
    window = opt[:, w0 : w0 + t + 2 * r, w0 : w0 + t + 2 * r]
    surf = scorer.surface(template, window, ViewSpec(), 64)
    assert surf.shape == (2 * r + 1, 2 * r + 1)
    iy, ix = np.unravel_index(np.argmax(surf), surf.shape)
    assert (ix - r, iy - r) == (dx, dy)


def test_localisation_geometry() -> None:
    assert localisation_geometry(256, ViewSpec(192, 64), 8) == (192, 24)
    assert localisation_geometry(256, ViewSpec(0, 64), 8) == (240, 0)  # whole-patch view shrinks to fit
    assert localisation_geometry(256, ViewSpec(96, 0), 8, template_side=192) == (192, 24)
    with pytest.raises(InputError, match="does not fit"):
        localisation_geometry(256, ViewSpec(96, 0), 8, template_side=250)


def test_protocols_are_perfect_when_modalities_are_identical(tmp_path: Path) -> None:
    """On identical content NCC must separate every pair, find every shift and retrieve every patch."""
    from saropt.data.saropt_ds import SaroptDataset
    from saropt.matching.metrics import localisation_figures, retrieval_figures, roc_auc

    root = write_fake_saropt(tmp_path / "same", identical=True, scene_side=128, patch=48, stride=40)
    ds = SaroptDataset(root, split="test")
    scorers = [NCCScorer()]
    settings = ProtocolSettings(search_radius=4, max_templates=6, retrieval_candidates=8)
    spec = ViewSpec(32, 0)
    codes = encode_patches(ds, scorers, spec)
    for hard in (False, True):
        ps = pair_protocol(ds, codes, scorers, hard, settings)
        assert ps.labels.sum() == len(ds) and ps.labels.size == 2 * len(ds)
        assert roc_auc(ps.scores["ncc"], ps.labels) == 1.0
    loc = localisation_protocol(ds, scorers, spec, settings)
    assert localisation_figures(loc.pred_xy["ncc"], loc.true_xy)["cmr_1px"] == 1.0
    ret = retrieval_protocol(codes, scorers, settings)
    assert ret.candidates == 8 and retrieval_figures(ret.ranks["ncc"])["recall_at_1"] == 1.0


class _MatrixScorer(Scorer):
    """Codes are patch numbers; similarities are read off a fixed (SAR x optical) matrix."""

    name = "matrix"

    def __init__(self, scores: np.ndarray) -> None:
        self.scores = scores

    def encode_sar(self, sar: torch.Tensor) -> np.ndarray:
        raise NotImplementedError

    def encode_opt(self, opt: torch.Tensor) -> np.ndarray:
        raise NotImplementedError

    def pair_scores(self, cs: np.ndarray, co: np.ndarray) -> np.ndarray:
        return self.scores[cs, co]

    def score_matrix(self, cs: np.ndarray, co: np.ndarray) -> np.ndarray:
        return self.scores[np.ix_(cs, co)]

    def surface(
        self, template: torch.Tensor, window: torch.Tensor, spec: ViewSpec, patch_side: int
    ) -> np.ndarray:
        raise NotImplementedError


def test_retrieval_tells_same_scene_misses_from_other_scene_misses() -> None:
    """Query 0 loses to its scene's patch 1, query 3 to patch 0 of another scene; the rest rank first."""
    scores = np.eye(6)
    scores[0, 1] = 2.0  # same scene (a)
    scores[3, 0] = 2.0  # other scene
    idx = np.arange(6)
    codes = PatchCodes({"matrix": idx}, {"matrix": idx}, 6, np.array(list("aaabbb"), dtype=object))
    ret = retrieval_protocol(codes, [_MatrixScorer(scores)], ProtocolSettings(retrieval_candidates=1000))
    assert ret.candidates == 6  # capped: every patch is a candidate
    assert ret.ranks["matrix"].tolist() == [2, 1, 1, 2, 1, 1]
    assert ret.top_same_scene["matrix"][[0, 3]].tolist() == [True, False]
    # leaving out the query's own scene's other patches rescues query 0, not query 3
    assert ret.ranks_other_scenes["matrix"].tolist() == [1, 1, 1, 2, 1, 1]
    # unknown scenes: no scene figures, the ranks unchanged
    blind = retrieval_protocol(
        PatchCodes({"matrix": idx}, {"matrix": idx}, 6),
        [_MatrixScorer(scores)],
        ProtocolSettings(retrieval_candidates=6),
    )
    assert blind.ranks["matrix"].tolist() == [2, 1, 1, 2, 1, 1] and blind.top_same_scene == {}


def test_limit_patches_keeps_whole_scenes(tmp_path: Path) -> None:
    from saropt.data.saropt_ds import SaroptDataset

    ds = SaroptDataset(write_fake_saropt(tmp_path / "d"), split=None)  # 8 scenes x 9 patches
    small = limit_patches(ds, 10, seed=0)
    scenes = [r.scene for r in small.records]
    assert len(small) == 18 and len(set(scenes)) == 2
    assert all(scenes.count(s) == 9 for s in set(scenes))
    assert limit_patches(ds, 0, 0) is ds


def test_pair_protocol_from_codes_equals_scoring_the_pair_items(tmp_path: Path) -> None:
    """Scoring MatchingPairs items one by one gives the same scores as the code-based protocol."""
    from saropt.data.pairs import MatchingPairs
    from saropt.data.saropt_ds import SaroptDataset

    ds = SaroptDataset(write_fake_saropt(tmp_path / "d"), split="test")
    scorers = [NCCScorer(), CFOGScorer()]
    spec = ViewSpec(24, 16)
    settings = ProtocolSettings(seed=4)
    for hard in (False, True):
        fast = pair_protocol(ds, encode_patches(ds, scorers, spec), scorers, hard, settings)
        slow = score_pairs(MatchingPairs(ds, hard=hard, seed=4), scorers, spec, batch_size=5)
        assert np.array_equal(fast.labels, slow.labels)
        for s in scorers:
            assert np.allclose(fast.scores[s.name], slow.scores[s.name], atol=1e-9)


def test_localisation_report_finds_a_scene_whose_truth_is_off(tmp_path: Path) -> None:
    """One test scene's optical content sits 3 px right of where its truth says: both baselines see it there,
    the report names that scene and its offset, and leaves the correct scene out."""
    from saropt.matching.evaluate import evaluate

    root = write_fake_saropt(
        tmp_path / "off", identical=True, scene_side=128, patch=48, stride=40, truth_offsets={"s6": (3, 0)}
    )
    settings = ProtocolSettings(search_radius=6, max_templates=0, bootstrap=0)
    rep = evaluate(
        root, baselines=("ncc", "cfog"), protocols=("localisation",), settings=settings, view=ViewSpec(32, 0)
    )
    for m in ("ncc", "cfog"):
        f = rep.results["localisation"][m]
        assert f["scene_offsets"] == {"s6": [3.0, 0.0, 9], "s7": [0.0, 0.0, 9]}
        assert f["scene_offset_median_px"] == 1.5 and f["scene_offset_max_px"] == 3.0
    assert rep.meta["localisation_shared_scene_offsets"] == {"s6": [3.0, 0.0]}
    md = rep.to_markdown()
    assert "in 1 of 2 scenes every method's median error is 1 px or more" in md
    assert "s6 (+3.0, +0.0)" in md

    # the same from the command line, with the picture of every scene's offsets
    from PIL import Image

    from .cliutil import run_cli

    png = tmp_path / "offsets.png"
    args = ["match", "eval", "-d", str(root), "--baseline", "ncc", "--baseline", "cfog", "--crop", "32",
            "--search-radius", "6", "--templates", "0", "--bootstrap", "0"]  # fmt: skip
    code, out = run_cli([*args, "--protocol", "localisation", "--png", str(png)])
    assert code == 0, out
    with Image.open(png) as im:
        assert im.size[0] > 400 and im.size[1] > 200  # one panel a scene
    code, out = run_cli([*args, "--protocol", "localisation", "--subpixel"])
    assert code == 0 and "refined to sub-pixel" in out and "s6 (+3.0, +0.0)" in out, out
    code, out = run_cli([*args, "--protocol", "balanced", "--png", str(tmp_path / "no.png")])
    assert code != 0 and "add --protocol localisation" in out and not (tmp_path / "no.png").exists()


def test_refine_peak_searches_only_around_the_coarse_peak() -> None:
    from saropt.matching.protocols import refine_peak

    fine = np.zeros((9, 9))
    fine[4, 6] = 1.0  # the refiner's best shift: x=6, y=4
    fine[0, 0] = 5.0  # a stronger peak far from the coarse one
    assert refine_peak((5, 4), fine, 1) == (6, 4)
    assert refine_peak((7, 5), fine, 1) == (6, 4)
    assert refine_peak((5, 4), fine, 0) == (5, 4)  # radius 0 keeps the coarse peak
    assert refine_peak((1, 1), fine, 1) == (0, 0)  # clipped at the surface's edge
    assert refine_peak((4, 4), fine, 1) != (6, 4)  # 2 px away: out of reach


class _OffByTwo(NCCScorer):
    """A 'trained' localiser whose peak sits 2 px right of NCC's, counting its surface calls."""

    name = "offby2"
    trained = True

    def surface(
        self, template: torch.Tensor, window: torch.Tensor, spec: ViewSpec, patch_side: int
    ) -> np.ndarray:
        s = super().surface(template, window, spec, patch_side)
        out = np.full_like(s, s.min() - 1.0)
        out[:, 2:] = s[:, :-2]
        return out


class _CountingNCC(NCCScorer):
    calls = 0

    def surface(
        self, template: torch.Tensor, window: torch.Tensor, spec: ViewSpec, patch_side: int
    ) -> np.ndarray:
        type(self).calls += 1
        return super().surface(template, window, spec, patch_side)


def test_localisation_refiner_moves_a_trained_peak_onto_the_measure_nearby(tmp_path: Path) -> None:
    """On identical content NCC finds every shift; a trained localiser 2 px off is put right by NCC within
    2 px, and only moved part of the way within 1 px. The refiner's surface is computed once a template."""
    from saropt.data.saropt_ds import SaroptDataset
    from saropt.matching.metrics import localisation_figures
    from saropt.matching.protocols import refined_name

    root = write_fake_saropt(tmp_path / "same", identical=True, scene_side=128, patch=48, stride=40)
    ds = SaroptDataset(root, split="test")
    spec = ViewSpec(32, 0)
    ncc = _CountingNCC()
    loc = localisation_protocol(
        ds, [_OffByTwo(), ncc], spec, ProtocolSettings(search_radius=6, max_templates=0, refine="ncc",
                                                       refine_radius=2), refiner=ncc)  # fmt: skip
    assert _CountingNCC.calls == len(ds)  # shared with the NCC row, not computed twice
    name = refined_name("offby2", "ncc")
    assert name == "offby2>ncc" and set(loc.pred_xy) == {"offby2", "ncc", name}  # baselines are not refined
    truth = loc.true_xy
    coarse_ok = np.all(loc.pred_xy["offby2"] - truth == (2, 0), axis=1)
    assert coarse_ok.sum() >= len(ds) // 2  # the coarse peak is 2 px right wherever it fits the surface
    np.testing.assert_array_equal(loc.pred_xy[name][coarse_ok], truth[coarse_ok])
    assert localisation_figures(loc.pred_xy[name], truth)["rmse_px"] == 0.0
    settings = ProtocolSettings(search_radius=6, max_templates=0, refine="ncc")
    near = localisation_protocol(ds, [_OffByTwo()], spec, settings, refiner=NCCScorer())
    step = near.pred_xy[name][coarse_ok] - near.true_xy[coarse_ok]
    assert np.all(step == (1, 0))  # one step towards the truth, which lies out of reach


def test_peak_shift_finds_a_fractional_peak_and_leaves_the_border_whole() -> None:
    from saropt.matching.protocols import peak_shift

    yy, xx = np.mgrid[-4:5, -4:5].astype(np.float64)
    surf = -((xx - 1.3) ** 2) - 2.0 * (yy + 2.2) ** 2  # a paraboloid peaking at (dx, dy) = (1.3, -2.2)
    peak = (int(np.argmax(surf.max(0))), int(np.argmax(surf.max(1))))
    assert peak == (5, 2)
    assert peak_shift(surf, peak, subpixel=False) == (1.0, -2.0)
    dx, dy = peak_shift(surf, peak, subpixel=True)
    assert dx == pytest.approx(1.3) and dy == pytest.approx(-2.2)
    edge = -((xx - 4.4) ** 2) - (yy - 0.25) ** 2  # beyond the window in x: the peak stays on the border
    dx, dy = peak_shift(edge, (8, 4), subpixel=True)
    assert dx == 4.0 and dy == pytest.approx(0.25)


def test_subpixel_localisation_keeps_exact_shifts_exact(tmp_path: Path) -> None:
    """On identical content the truth shifts are whole pixels and NCC's surface is symmetric about them: the
    parabola moves no peak by more than a small fraction of a pixel."""
    from saropt.data.saropt_ds import SaroptDataset
    from saropt.matching.metrics import localisation_figures

    root = write_fake_saropt(tmp_path / "same", identical=True, scene_side=128, patch=48, stride=40)
    ds = SaroptDataset(root, split="test")
    settings = ProtocolSettings(search_radius=4, max_templates=0, subpixel=True)
    loc = localisation_protocol(ds, [NCCScorer()], ViewSpec(32, 0), settings)
    err = np.abs(loc.pred_xy["ncc"] - loc.true_xy)
    assert err.max() < 0.1 and np.any(err > 0)  # refined (not whole pixels), and near the truth
    assert localisation_figures(loc.pred_xy["ncc"], loc.true_xy)["cmr_1px"] == 1.0
