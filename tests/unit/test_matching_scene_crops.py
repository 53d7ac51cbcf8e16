"""Scene-crop sampler (aligned random windows anywhere in the training scenes), overlap-aware negatives, the
margin and InfoNCE terms of the BNN loss, and training with them."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from saropt.data.saropt_ds import SaroptDataset
from saropt.errors import ConfigError, InputError
from saropt.matching.config import TrainConfig
from saropt.matching.losses import (
    bnn_loss,
    info_nce_loss,
    negative_weights,
    overlap_matrix,
    roll_pairs,
    rolled_weights,
    shift_ranking_loss,
)
from saropt.matching.scene_crops import SceneCanvases, SceneCrops
from saropt.matching.train import train

from .matching_fake import write_fake_saropt


@pytest.fixture(scope="module")
def fake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # 96 px scenes cut into 32 px patches at stride 16 (50% overlap), as saropt build does
    return write_fake_saropt(tmp_path_factory.mktemp("fake"), stride=16)


@pytest.fixture(scope="module")
def canvases(fake: Path) -> SceneCanvases:
    return SceneCanvases.from_dataset(SaroptDataset(fake, split="train"))


def test_canvases_put_every_patch_back_where_it_was(fake: Path, canvases: SceneCanvases) -> None:
    ds = SaroptDataset(fake, split="train")
    assert [c.key for c in canvases.canvases] == ["s0", "s1", "s2", "s3"]
    assert canvases.patch_side == 32
    for i in range(len(ds)):
        item = ds[i]
        c, r, w, h = item["meta"]["window"]
        cv = canvases.canvases[int(item["meta"]["scene"][1])]
        x0, y0 = c - cv.origin[0], r - cv.origin[1]
        win = (slice(None), slice(y0, y0 + h), slice(x0, x0 + w))
        assert np.array_equal(cv.sar[win], np.rint(item["sar"].numpy() * 255))
        assert np.array_equal(cv.opt[win], np.rint(item["opt"].numpy() * 255))
    assert all(c.covered.all() and c.area == 96 * 96 for c in canvases.canvases)
    first = canvases.canvases[0]
    assert first.fully_covered(64, 64, 32) and not first.fully_covered(65, 0, 32)


def test_scene_crops_are_aligned_sar_and_optical_windows(canvases: SceneCanvases) -> None:
    """Every crop, undone from its flips/rotation, is the same canvas window in both modalities."""
    crops = SceneCrops(canvases, 24, 0, 40, seed=3, augment="flip_rot90", scale_jitter=0.25, group=4)
    sides = set()
    for i in range(len(crops)):
        item = crops[i]
        k, x0, y0, side, _ = crops.window(i)
        sides.add(side)
        cv = canvases.canvases[k]
        assert item["scene"] == k and item["side"] == side
        assert item["centre"].tolist() == [x0 + (side - 1) / 2, y0 + (side - 1) / 2]  # origin is (0, 0)
        ref_s = torch.from_numpy(cv.sar[:, y0 : y0 + side, x0 : x0 + side] / 255.0).float()
        ref_o = torch.from_numpy(cv.opt[:, y0 : y0 + side, x0 : x0 + side] / 255.0).float()
        # find the one flip/rotation that maps the reference onto the SAR crop; the optical must follow it
        found = 0
        for flip in (False, True):
            for k90 in range(4):
                ts = torch.rot90(torch.flip(ref_s, [-1]) if flip else ref_s, k90, (-2, -1))
                to = torch.rot90(torch.flip(ref_o, [-1]) if flip else ref_o, k90, (-2, -1))
                if torch.equal(ts, item["sar"]):
                    assert torch.equal(to, item["opt"])
                    found += 1
        assert found >= 1
    assert len(sides) > 3 and min(sides) >= round(24 / 1.25) and max(sides) <= 30  # scale jitter


def test_scene_crops_groups_resizing_and_determinism(canvases: SceneCanvases) -> None:
    a = SceneCrops(canvases, 24, 16, 32, seed=1, scale_jitter=0.2, group=4)
    b = SceneCrops(canvases, 24, 16, 32, seed=1, scale_jitter=0.2, group=4)
    scenes = [a[i]["scene"] for i in range(32)]
    assert all(len(set(scenes[g : g + 4])) == 1 for g in range(0, 32, 4))  # groups share a scene
    assert len(set(scenes)) > 1
    for i in (0, 7, 31):
        x, y = a[i], b[i]
        assert x["sar"].shape == (1, 16, 16) and x["opt"].shape == (3, 16, 16)
        assert torch.equal(x["sar"], y["sar"]) and torch.equal(x["opt"], y["opt"])
    first = a[5]["sar"]
    a.set_epoch(1)
    assert not torch.equal(first, a[5]["sar"])  # a new epoch draws new windows
    assert not torch.equal(first, SceneCrops(canvases, 24, 16, 32, seed=2)[5]["sar"])


def test_crop_spread_keeps_a_group_around_its_first_window(canvases: SceneCanvases) -> None:
    crops = SceneCrops(canvases, 24, 0, 64, seed=4, group=4, spread=5)
    for g in range(0, 64, 4):
        k0, x0, y0, s0, _ = crops.window(g)
        for i in range(g + 1, g + 4):
            k, x, y, side, _ = crops.window(i)
            assert k == k0 and side == s0 == 24
            assert abs(x - x0) <= 5 and abs(y - y0) <= 5
    anywhere = SceneCrops(canvases, 24, 0, 64, seed=4, group=4)
    gaps = [abs(anywhere.window(i)[1] - anywhere.window(i - i % 4)[1]) for i in range(64)]
    assert max(gaps) > 5


def test_scene_crops_respect_coverage_and_errors(fake: Path) -> None:
    ds = SaroptDataset(fake, split="train")
    # keep two far-apart patches of one scene only: every crop must stay inside one of them
    keep = [i for i in range(len(ds)) if ds.meta(i)["scene"] == "s0" and ds.meta(i)["window"][:2] in
            [(0, 0), (64, 64)]]
    cv = SceneCanvases.from_dataset(ds.select(keep))
    assert cv.canvases[0].area == 2 * 32 * 32
    crops = SceneCrops(cv, 20, 0, 50, seed=0)
    for i in range(50):
        _, x0, y0, side, _ = crops.window(i)
        assert (x0 + side <= 32 and y0 + side <= 32) or (x0 >= 64 and y0 >= 64)
    with pytest.raises(InputError, match="larger than"):
        SceneCrops(cv, 40, 0, 4)
    with pytest.raises(ConfigError):
        SceneCrops(cv, 20, 0, 0)

    class NoWindows(list):  # type: ignore[type-arg]
        pass

    bare = NoWindows([{"sar": torch.zeros(1, 8, 8), "opt": torch.zeros(3, 8, 8), "meta": {"scene": "a"}}])
    with pytest.raises(InputError, match="window"):
        SceneCanvases.from_dataset(bare)


def test_negative_weights_drop_overlapping_windows_of_one_scene() -> None:
    scene = torch.tensor([0, 0, 0, 1])
    centre = torch.tensor([[10.0, 10.0], [14.0, 12.0], [40.0, 10.0], [10.0, 10.0]])
    # shift 1 pairs i with i-1: (0,3) other scene, (1,0) same scene 4 px apart -> dropped, (2,1) 26 px apart
    assert negative_weights(scene, centre, 1, 8.0).tolist() == [1.0, 0.0, 1.0, 1.0]
    assert negative_weights(scene, centre, 1, 0.0) is None
    assert negative_weights(scene, centre, 2, 8.0) is None  # nothing overlaps
    nan = torch.full((4, 2), math.nan)
    assert negative_weights(torch.zeros(4, dtype=torch.long), nan, 1, 8.0) is None  # unknown windows: kept
    m = overlap_matrix(scene, centre, 8.0)
    assert m.tolist() == [[False, True, False, False], [True, False, False, False],
                          [False, False, False, False], [False, False, False, False]]
    # the matrix, computed once per batch, gives every shift's weights for the pairs roll_pairs makes
    g = torch.Generator().manual_seed(0)
    scene = torch.randint(-1, 2, (12,), generator=g)
    centre = torch.randint(0, 20, (12, 2), generator=g).float()
    m = overlap_matrix(scene, centre, 6.0)
    assert m.any()
    for k in range(1, 12):
        w = rolled_weights(m, k)
        partner = roll_pairs(torch.arange(12), k)  # optical window paired with SAR window i
        drop = [bool(m[i, int(partner[i])]) for i in range(12)]
        assert (w is None) == (not any(drop))
        if w is not None:
            assert w.tolist() == [0.0 if d else 1.0 for d in drop]


def test_bnn_loss_margin_and_weights() -> None:
    d_pos, d_neg = torch.tensor([0.1, 0.3]), torch.tensor([0.5, 0.9])
    assert float(bnn_loss(d_pos, d_neg)) == pytest.approx(0.05 + (0.25 + 0.01) / 2)
    assert float(bnn_loss(d_pos, d_neg, neg_margin=0.7)) == pytest.approx(0.05 + 0.04 / 2)
    w = torch.tensor([0.0, 1.0])
    assert float(bnn_loss(d_pos, d_neg, w)) == pytest.approx(0.05 + 0.01)


def test_info_nce_prefers_the_true_partner_and_ignores_excluded_pairs() -> None:
    eye = torch.eye(4)
    good = info_nce_loss(eye, eye, 0.1)
    shuffled = info_nce_loss(eye, eye[[1, 0, 3, 2]], 0.1)
    assert float(good) < 0.01 < float(shuffled)
    # two identical optical codes: the confusion costs log 2 per affected row unless it is excluded
    emb_o = eye.clone()
    emb_o[1] = emb_o[0]
    tied = info_nce_loss(eye, emb_o, 0.01)
    exclude = torch.zeros(4, 4, dtype=torch.bool)
    exclude[0, 1] = exclude[1, 0] = True
    assert float(info_nce_loss(eye, emb_o, 0.01, exclude)) < float(tied)


def test_training_with_scene_crops_and_the_contrastive_term(fake: Path, tmp_path: Path) -> None:
    cfg = TrainConfig.from_dict(
        {
            "backbone": "test_resnet", "embedding_dim": 8, "crop": 24, "size": 16, "batch_size": 8,
            "epochs": 2, "lr": 3e-3, "val_pairs": 16, "threads": 1, "data": str(fake),
            "sampler": "scene_crops", "samples_per_epoch": 24, "crops_per_scene": 4, "scale_jitter": 0.2,
            "nce_weight": 0.5, "temperature": 0.1, "neg_margin": 0.9, "augment": "flip_rot90",
        }
    )
    res = train(cfg, tmp_path / "run")
    assert res.finished and [h["epoch"] for h in res.history] == [1, 2]
    assert all(math.isfinite(h["train_loss"]) for h in res.history)
    # 24 samples of batch 8: 3 steps per epoch; exact resume works with the scene-crop sampler too
    part = train(cfg.with_overrides({"max_minutes": 1e-9}), tmp_path / "b")
    assert not part.finished
    again = train(cfg, tmp_path / "b")
    a = torch.load(tmp_path / "run" / "last.pt", weights_only=False)["model"]
    b = torch.load(tmp_path / "b" / "last.pt", weights_only=False)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a) and again.finished
    with pytest.raises(ConfigError, match="sampler"):
        TrainConfig(sampler="grid")


def test_backbone_args_reach_timm_and_the_checkpoint(fake: Path, tmp_path: Path) -> None:
    from saropt.matching.checkpoint import load_checkpoint, model_from_checkpoint

    cfg = TrainConfig.from_dict(
        {
            "backbone": "resnet10t", "backbone_args": {"channels": [8, 16, 16, 32], "stem_width": 8},
            "embedding_dim": 8, "crop": 24, "size": 16, "batch_size": 8, "epochs": 1, "val_pairs": 8,
            "threads": 1, "data": str(fake),
        }
    )
    train(cfg, tmp_path / "r")
    model = model_from_checkpoint(load_checkpoint(tmp_path / "r"))
    assert model.sar_branch[1].in_features == 32  # the last stage has 32 channels
    with pytest.raises(ConfigError, match="backbone_args"):
        TrainConfig.from_dict({"backbone_args": [1, 2]})


def _dihedral(x: torch.Tensor) -> list[torch.Tensor]:
    return [torch.rot90(torch.flip(x, [-1]) if f else x, k, (-2, -1)) for f in (False, True) for k in range(4)]


def test_shift_negatives_are_the_same_place_a_few_pixels_off(canvases: SceneCanvases) -> None:
    """Shifted copies are canvas windows of the same side, offset within shift_range, and get the item's own
    flip/rotation; the item's own views are those of the sampler without them."""
    plain = SceneCrops(canvases, 24, 0, 24, seed=5, augment="none", scale_jitter=0.2, group=4)
    shifted = SceneCrops(
        canvases, 24, 0, 24, seed=5, augment="none", scale_jitter=0.2, group=4,
        shift_negatives=2, shift_range=(2, 6),
    )
    augmented = SceneCrops(
        canvases, 24, 0, 24, seed=5, augment="flip_rot90", scale_jitter=0.2, group=4,
        shift_negatives=2, shift_range=(2, 6),
    )
    sizes = []
    for i in range(len(shifted)):
        a, b, c = plain[i], shifted[i], augmented[i]
        assert "opt_shift" not in a and torch.equal(a["sar"], b["sar"]) and torch.equal(a["opt"], b["opt"])
        assert b["opt_shift"].shape == (2, *b["opt"].shape) and b["shift_ok"].dtype == torch.bool
        k, x0, y0, side, _ = shifted.window(i)
        opt = torch.from_numpy(canvases.canvases[k].opt / 255.0).float()
        for q in range(2):
            assert bool(b["shift_ok"][q])
            hits = [
                (dx, dy)
                for dy in range(-6, 7)
                for dx in range(-6, 7)
                if 0 <= x0 + dx and 0 <= y0 + dy and x0 + dx + side <= 96 and y0 + dy + side <= 96
                and torch.equal(opt[:, y0 + dy : y0 + dy + side, x0 + dx : x0 + dx + side], b["opt_shift"][q])
            ]
            assert hits and all(2 <= max(abs(dx), abs(dy)) <= 6 for dx, dy in hits)
            sizes.append(max(abs(v) for v in hits[0]))
        # the augmented item: one flip/rotation maps the plain views and the shifted copies alike
        ts = _dihedral(b["sar"])
        match = [j for j, t in enumerate(ts) if torch.equal(t, c["sar"])]
        assert match and any(
            torch.equal(_dihedral(b["opt"])[j], c["opt"])
            and all(torch.equal(_dihedral(b["opt_shift"][q])[j], c["opt_shift"][q]) for q in range(2))
            for j in match
        )
    assert len(set(sizes)) >= 3  # shift sizes spread over the range
    with pytest.raises(ConfigError, match="shift_range"):
        SceneCrops(canvases, 24, 0, 8, shift_negatives=1, shift_range=(5, 2))


def test_shift_ranking_loss_prefers_the_exact_window_and_skips_invalid_copies() -> None:
    emb = torch.tensor([[0.0, 0.0, 1.0, 1.0], [1.0, 1.0, 0.0, 0.0]])
    far = 1.0 - emb
    near = emb.clone()
    near[:, 0] = 0.5
    good = shift_ranking_loss(emb, emb, torch.stack([far, near], dim=1), 0.1)
    worse = shift_ranking_loss(emb, near, torch.stack([far, emb], dim=1), 0.1)  # a shifted copy is closer
    assert float(good) < float(worse)
    # the same value as a cross-entropy written out by hand
    d = torch.stack([torch.zeros(2), torch.ones(2), torch.full((2,), 0.25)], dim=1)  # ||.|| / sqrt(4)
    expected = torch.nn.functional.cross_entropy(-d / 0.1, torch.zeros(2, dtype=torch.long))
    assert torch.allclose(good, expected, atol=1e-5)
    none_valid = torch.zeros(2, 2, dtype=torch.bool)
    assert float(shift_ranking_loss(emb, near, torch.stack([far, emb], dim=1), 0.1, none_valid)) == 0.0


def test_training_with_shift_negatives_and_init_from(fake: Path, tmp_path: Path) -> None:
    from saropt.errors import CheckpointError

    base = {
        "backbone": "test_resnet", "embedding_dim": 8, "crop": 24, "size": 16, "batch_size": 8, "epochs": 1,
        "lr": 3e-3, "val_pairs": 16, "threads": 1, "data": str(fake), "sampler": "scene_crops",
        "samples_per_epoch": 16, "crops_per_scene": 4, "nce_weight": 0.5,
    }
    first = train(TrainConfig.from_dict(base), tmp_path / "a")
    assert first.finished
    cfg = TrainConfig.from_dict(
        {**base, "shift_negatives": 2, "shift_range": [2, 5], "shift_weight": 1.0, "init_from": str(tmp_path / "a"),
         "lr": 1e-12}
    )
    res = train(cfg, tmp_path / "b")
    assert res.finished and math.isfinite(res.history[0]["train_loss"])
    a = torch.load(tmp_path / "a" / "best.pt", weights_only=False)["model"]
    b = torch.load(tmp_path / "b" / "last.pt", weights_only=False)
    assert b["config"]["shift_negatives"] == 2 and b["config"]["init_from"] == str(tmp_path / "a")
    # started from the first run's weights (a learning rate of 1e-12 leaves them where they were)
    assert all(torch.allclose(a[k].float(), b["model"][k].float(), atol=1e-6) for k in a if "running" not in k)
    bigger = {**base, "embedding_dim": 16, "init_from": str(tmp_path / "a")}
    with pytest.raises(CheckpointError, match="do not fit"):
        train(TrainConfig.from_dict(bigger), tmp_path / "c")
    with pytest.raises(ConfigError, match="shift_negatives needs"):
        TrainConfig.from_dict({**base, "sampler": "patches", "shift_negatives": 1})
    with pytest.raises(ConfigError, match="shift_range"):
        TrainConfig.from_dict({**base, "shift_negatives": 1, "shift_range": 3})
