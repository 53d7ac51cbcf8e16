"""SAR-optical matching on real Sentinel-1/2 pairs (../shared/data/pairs/s1s2-1024; skipped when absent).

The 41 aligned 1024 x 1024 pairs are cut by ``saropt build --aligned --split-method scene`` into 256 x 256
patches (default 20% overlap grid, quality filters on), so no image contributes to two splits. Kept short for
CI (a few minutes on two shared cores): the training-free baselines under the paper's protocol and retrieval,
short seeded BNN trainings whose validation ROC-AUC must beat chance by a margin measured on this machine, and
a short dense-matcher training that must localise held-out templates near CFOG's rate, and the localisation
protocol on two scenes registered by their check points. The full CPU recipe and every protocol are in
benchmarks/ and the issue report.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from saropt.cli.main import cli
from saropt.matching.evaluate import evaluate
from saropt.matching.protocols import ProtocolSettings
from saropt.matching.views import ViewSpec


@pytest.fixture(scope="module")
def s1s2(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    src = shared_data / "pairs" / "s1s2-1024"
    if not (src / "sar").is_dir():
        pytest.skip(f"{src} not found")
    out = tmp_path_factory.mktemp("s1s2") / "ds"
    r = CliRunner().invoke(
        cli,
        [
            "-q",
            "build",
            "--aligned",
            "--sar",
            str(src / "sar"),
            "--optical",
            str(src / "opt"),
            "--out",
            str(out),
            "--patch-size",
            "256",
            "--split-method",
            "scene",
            "--json",
        ],
    )
    assert r.exit_code == 0, r.output
    return out


def test_baselines_on_held_out_scenes(s1s2: Path) -> None:
    rep = evaluate(
        s1s2,
        split="test",
        baselines=("ncc", "mi", "cfog"),
        protocols=("balanced", "retrieval"),
        view=ViewSpec(192, 48),
        settings=ProtocolSettings(retrieval_candidates=50),
    )
    bal, ret = rep.results["balanced"], rep.results["retrieval"]
    print(rep.to_markdown())
    assert rep.meta["scenes"] >= 5 and rep.meta["calibration_split"] == "val"
    # measured here, on two builds (the split depends on the builder's quality filters): ROC-AUC CFOG 0.943 /
    # 0.908, MI 0.766 / 0.707, NCC 0.528 / 0.572; recall@1 among 50 candidates CFOG 0.741 / 0.757, MI 0.389 /
    # 0.400, NCC 0.241 / 0.300. Structure beats intensity across modalities; NCC is near chance.
    assert bal["cfog"]["roc_auc"] >= 0.85
    assert bal["mi"]["roc_auc"] >= 0.62
    assert bal["cfog"]["roc_auc"] > bal["mi"]["roc_auc"] > bal["ncc"]["roc_auc"]
    assert ret["cfog"]["recall_at_1"] >= 0.6
    assert ret["cfog"]["recall_at_1"] > ret["mi"]["recall_at_1"] > ret["ncc"]["recall_at_1"]


def test_short_bnn_training_learns(s1s2: Path, tmp_path: Path) -> None:
    from saropt.matching.config import TrainConfig
    from saropt.matching.train import train

    cfg = TrainConfig.from_dict(
        {
            "model": "bnn", "backbone": "resnet10t", "embedding_dim": 32, "crop": 192, "size": 32,
            "epochs": 4, "batch_size": 32, "negatives_per_positive": 31, "lr": 2e-3, "warmup_epochs": 0.5,
            "threads": 1, "val_pairs": 0, "data": str(s1s2), "seed": 0,
        }
    )
    res = train(cfg, tmp_path / "run")
    h = res.history
    print("short BNN training (epoch, val loss, val AUC):",
          [(e["epoch"], round(e["val_loss"], 4), round(e["val_roc_auc"], 3)) for e in h])
    # measured here (seeded, one thread): validation loss 0.570 -> 0.473 and ROC-AUC 0.516 -> 0.635 over 4
    # epochs of 8 steps (about 100 s); the full CPU recipe reaches about 0.8 (see the issue report)
    assert h[-1]["val_loss"] < h[0]["val_loss"] - 0.05
    assert res.best["val_roc_auc"] >= 0.58


def test_scene_canvases_rebuild_real_patches_exactly(s1s2: Path) -> None:
    """The scene-crop sampler's canvases give back every training patch bit for bit, and its crops of a real
    scene keep SAR and optical aligned (the same window of both canvases)."""
    import numpy as np

    from saropt.data.saropt_ds import SaroptDataset
    from saropt.matching.scene_crops import SceneCanvases, SceneCrops

    ds = SaroptDataset(s1s2, split="train")
    cv = SceneCanvases.from_dataset(ds)
    by_key = {c.key: c for c in cv.canvases}
    assert len(cv) == len({ds.meta(i)["scene"] for i in range(len(ds))}) >= 20
    for i in range(0, len(ds), 7):
        item = ds[i]
        c, r, w, h = item["meta"]["window"]
        sub = str(item["meta"].get("subregion", "") or "")
        canvas = by_key[str(item["meta"]["scene"]) + (f"/{sub}" if sub else "")]
        x0, y0 = c - canvas.origin[0], r - canvas.origin[1]
        assert np.array_equal(canvas.sar[:, y0 : y0 + h, x0 : x0 + w], np.rint(item["sar"].numpy() * 255))
        assert np.array_equal(canvas.opt[:, y0 : y0 + h, x0 : x0 + w], np.rint(item["opt"].numpy() * 255))
    crops = SceneCrops(cv, 192, 0, 64, seed=0, augment="none", scale_jitter=0.15, group=4)
    for i in range(64):
        k, x0, y0, side, _ = crops.window(i)
        canvas = cv.canvases[k]
        assert canvas.covered[y0 : y0 + side, x0 : x0 + side].all()
        it = crops[i]
        assert np.array_equal(np.rint(it["opt"].numpy() * 255), canvas.opt[:, y0 : y0 + side, x0 : x0 + side])
        assert np.array_equal(np.rint(it["sar"].numpy() * 255), canvas.sar[:, y0 : y0 + side, x0 : x0 + side])


def test_cpu_recipe_learns_quickly_on_real_scenes(s1s2: Path, tmp_path: Path) -> None:
    """configs/match/bnn-cpu.yaml, cut to 64 steps: scene crops, 4 x 4 layout codes, BNN + InfoNCE loss."""
    from saropt.matching.config import load_config
    from saropt.matching.train import train

    root = Path(__file__).resolve().parents[2]
    cfg = load_config(
        root / "configs" / "match" / "bnn-cpu.yaml",
        {"data": str(s1s2), "epochs": 2, "samples_per_epoch": 1024, "warmup_epochs": 0.25},
    )
    res = train(cfg, tmp_path / "run")
    h = res.history
    print("CPU recipe, 64 steps (epoch, val AUC, hard val AUC):",
          [(e["epoch"], round(e["val_roc_auc"], 3), round(e["val_roc_auc_hard"], 3)) for e in h])
    # measured here (seeded): validation ROC-AUC 0.931 -> 0.951, hard-negative ROC-AUC 0.894 -> 0.918 (chance
    # 0.5; at InfoNCE temperature 0.05: 0.940 -> 0.956 and 0.907 -> 0.911); the full recipe reaches 0.99 on the
    # held-out scenes
    assert res.best["val_roc_auc"] >= 0.85
    assert res.best["val_roc_auc_hard"] >= 0.82


def test_dense_recipe_localises_held_out_templates(s1s2: Path, tmp_path: Path) -> None:
    """configs/match/dense-cpu.yaml cut to 64 steps, then localisation on held-out scenes against CFOG."""
    from saropt.matching.config import load_config
    from saropt.matching.train import train

    root = Path(__file__).resolve().parents[2]
    cfg = load_config(
        root / "configs" / "match" / "dense-cpu.yaml",
        {"data": str(s1s2), "epochs": 2, "samples_per_epoch": 512, "warmup_epochs": 0.25},
    )
    res = train(cfg, tmp_path / "run")
    print("dense recipe, 64 steps (epoch, val CMR@3, val RMSE):",
          [(e["epoch"], round(e["val_cmr_3px"], 3), round(e["val_loc_rmse"], 2)) for e in res.history])
    rep = evaluate(
        s1s2,
        checkpoints=[tmp_path / "run"],
        split="test",
        baselines=("cfog",),
        protocols=("localisation",),
        settings=ProtocolSettings(template_side=192, max_templates=60, refine="cfog"),
    )
    print(rep.to_markdown())
    loc = rep.results["localisation"]
    dense, cfog, refined = loc["dense"], loc["cfog"], loc["dense>cfog"]
    # measured here (seeded): validation CMR@3 0.29 -> 0.40 over the 2 epochs; on 60 test templates CMR@3 0.45
    # and RMSE 8.5 px against CFOG's 0.52 and 6.3 px (a random guess inside +-8 px: CMR@3 ~0.10). The full
    # recipe's figures are in the README. Refined by CFOG within 1 px: CMR@1 0.10 -> 0.15, RMSE 7.81 -> 7.51 px.
    assert res.history[-1]["val_cmr_3px"] >= 0.3
    assert dense["cmr_3px"] >= 0.3 and dense["cmr_3px"] > cfog["cmr_3px"] - 0.2
    assert refined["cmr_3px"] >= 0.3 and refined["templates"] == dense["templates"]


@pytest.mark.parametrize(
    ("scene", "sar", "optical", "checkpoints", "cmr1_cfog"),
    [
        ("cfog-urban", "SAR_sen.png", "optical_ref.png", "OpticaltoSAR_CP.txt", 0.95),
        ("cfog-rural", "SAR1_sen.tif", "visible1_ref.tif", "visibleToSAR1_CP.txt", 0.9),
    ],
)
def test_localisation_against_checkpoint_truth(
    shared_data: Path, tmp_path: Path, scene: str, sar: str, optical: str, checkpoints: str, cmr1_cfog: float
) -> None:
    """The localisation protocol on scenes registered by their check points (affine RMSE 0.86 / 0.74 px), a
    truth far closer than s1s2's, whose scenes are off by 1-3 px. Measured here (20 and 36 templates): CFOG
    CMR@1 1.000 / 0.972, RMSE 0.50 / 0.44 px; MI 0.900 / 0.944; NCC 0.400 / 0.750. At stride 32 (72 and 121
    templates): CFOG 1.000 / 0.983, MI 0.958 / 0.884, NCC 0.319 / 0.694."""
    d = shared_data / "scenes" / scene
    if not (d / checkpoints).is_file():
        pytest.skip(f"{d} not found")
    out = tmp_path / "ds"
    r = CliRunner().invoke(
        cli,
        [
            "-q", "build", "--sar", str(d / sar), "--optical", str(d / optical), "--tiepoints",
            str(d / checkpoints), "--tiepoints-format", "checkpoints", "--tiepoints-origin", "1", "--out",
            str(out), "--patch-size", "256", "--stride", "64", "--split-method", "random",
            "--set", "quality.enabled=[nodata]",
        ],
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    rep = evaluate(
        out,
        split="all",
        baselines=("ncc", "mi", "cfog"),
        protocols=("localisation",),
        settings=ProtocolSettings(max_templates=0, template_side=192, bootstrap=0),
        view=ViewSpec(192, 0),
        calibration_split=None,
    )
    loc = rep.results["localisation"]
    print(rep.to_markdown())
    assert loc["cfog"]["templates"] >= 12
    assert loc["cfog"]["cmr_1px"] >= cmr1_cfog and loc["cfog"]["rmse_px"] <= 0.8
    assert loc["mi"]["cmr_2px"] >= 0.85
    assert loc["cfog"]["cmr_1px"] > loc["ncc"]["cmr_1px"]
    # one scene, registered as a whole: no scene-wide offset left for CFOG to find
    assert loc["cfog"]["scene_offset_max_px"] <= 0.5
