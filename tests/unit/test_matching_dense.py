"""The dense matcher: FFT correlation, offset loss, TTA surfaces, training, selection and evaluation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from saropt.cli.main import cli
from saropt.errors import ConfigError
from saropt.matching.config import TrainConfig
from saropt.matching.losses import dense_localisation_loss, offset_targets
from saropt.matching.models import build_model, correlation_surface
from saropt.matching.scoring import ModelScorer, dihedral_views, undo_dihedral
from saropt.matching.train import selection_key, train
from saropt.matching.views import ViewSpec

from .cliutil import run_cli
from .matching_fake import write_fake_saropt

DENSE = dict(
    model="dense",
    embedding_dim=8,
    dense_width=4,
    search_radius=4,
    crop=24,
    size=0,
    batch_size=8,
    lr=3e-3,
    val_pairs=16,
    threads=1,
    log_every=1,
)


@pytest.fixture(scope="module")
def fake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_fake_saropt(tmp_path_factory.mktemp("fake"))


def test_fft_correlation_equals_the_direct_sum() -> None:
    g = torch.Generator().manual_seed(0)
    t, w = torch.randn(2, 3, 6, 6, generator=g), torch.randn(2, 3, 11, 11, generator=g)
    surf = correlation_surface(t, w)
    assert surf.shape == (2, 6, 6)
    direct = torch.zeros(2, 6, 6)
    for i in range(6):
        for j in range(6):
            direct[:, i, j] = (t * w[:, :, i : i + 6, j : j + 6]).sum((1, 2, 3)) / 36
    torch.testing.assert_close(surf, direct, rtol=1e-4, atol=1e-5)


def test_a_template_cut_from_the_window_peaks_at_its_offset() -> None:
    # unit descriptors: the template's own place is the unique maximum (mean cosine 1)
    w = torch.nn.functional.normalize(torch.randn(1, 4, 20, 20, generator=torch.Generator().manual_seed(1)), dim=1)
    surf = correlation_surface(w[:, :, 5:17, 3:15], w)
    i, j = np.unravel_index(int(surf[0].argmax()), surf.shape[1:])
    assert (i, j) == (5, 3) and float(surf[0, 5, 3]) == pytest.approx(1.0, abs=1e-5)
    assert offset_targets(torch.tensor(-2), torch.tensor(1), 2).item() == 3 * 5 + 0


def test_dense_model_codes_scores_and_gradients() -> None:
    torch.manual_seed(0)
    m = build_model("dense", "unused", embedding_dim=8, dense_width=4).eval()
    x, y = torch.rand(3, 1, 32, 32), torch.rand(3, 3, 32, 32)
    fs, fo = m.encode_sar(x), m.encode_opt(y)
    assert fs.shape == (3, 8 * 8 * 8)
    s = m.pair_scores(fs, fo)
    assert torch.all((s >= 0) & (s <= 1))
    torch.testing.assert_close(torch.diagonal(m.score_matrix(fs, fo)), s)
    # descriptors are unit vectors, so the score of a map with itself is 1 before block averaging at most
    assert float(m.pair_scores(fs, fs).detach().max()) <= 1.0 + 1e-5
    assert m.features_sar(x).shape == (3, 8, 32, 32)
    m.train()
    loss = dense_localisation_loss(m, torch.rand(4, 1, 24, 24), torch.rand(4, 3, 24, 24), 4, torch.Generator())
    assert np.isfinite(loss.item()) and loss.item() > 0
    loss.backward()
    for branch in (m.sar_branch, m.opt_branch):
        assert all(p.grad is not None and float(p.grad.abs().sum()) > 0 for p in branch.parameters())
    with pytest.raises(ConfigError, match="backbone_weights"):
        build_model("dense", "unused", backbone_weights={"sar": "w.pth"})
    with pytest.raises(ValueError, match="template"):
        dense_localisation_loss(m, torch.rand(2, 1, 20, 20), torch.rand(2, 3, 20, 20), 8)


def test_undo_dihedral_inverts_every_view() -> None:
    x = torch.arange(2 * 5 * 5, dtype=torch.float32).reshape(2, 5, 5)
    views = dihedral_views(x)
    assert len({tuple(v.flatten().tolist()) for v in views}) == 8
    for back in undo_dihedral(views):
        assert torch.equal(back, x)


def test_tta_surface_turns_with_the_images() -> None:
    # the averaged surface of transformed inputs is the transformed surface: offsets turn with the images
    torch.manual_seed(0)
    m = build_model("dense", "unused", embedding_dim=4, dense_width=4)
    scorer = ModelScorer(m, tta=True)
    t, w = torch.rand(1, 16, 16), torch.rand(3, 22, 22)
    ref = torch.from_numpy(scorer.surface(t, w, ViewSpec(), 32))
    assert ref.shape == (7, 7)
    for g, (tg, wg) in enumerate(zip(dihedral_views(t), dihedral_views(w))):
        got = torch.from_numpy(scorer.surface(tg, wg, ViewSpec(), 32))
        torch.testing.assert_close(got, dihedral_views(ref)[g], rtol=1e-4, atol=1e-5)
    plain = ModelScorer(m).surface(t, w, ViewSpec(), 32)
    assert not np.allclose(plain, ref.numpy())


def test_dense_config_checks() -> None:
    with pytest.raises(ConfigError, match="native pixels"):
        TrainConfig.from_dict({**DENSE, "size": 16})
    with pytest.raises(ConfigError, match="native pixels"):
        TrainConfig.from_dict({**DENSE, "scale_jitter": 0.1})
    with pytest.raises(ConfigError, match="crop must be"):
        TrainConfig.from_dict({**DENSE, "crop": 12})
    assert selection_key("dense") == ("val_loc_rmse", False)
    assert selection_key("bnn") == ("val_roc_auc", True)


def test_dense_training_learns_to_localise_and_keeps_its_best_epoch(tmp_path: Path) -> None:
    # 64 px patches, so the 1/8-resolution stage sees more than one cell; windows drawn anywhere in the scenes
    data = write_fake_saropt(tmp_path / "fake64", scene_side=128, patch=64, stride=32)
    cfg = TrainConfig.from_dict(
        {**DENSE, "data": str(data), "epochs": 6, "crop": 40, "sampler": "scene_crops",
         "samples_per_epoch": 64, "augment": "flip_rot90"}
    )
    res = train(cfg, tmp_path / "run")
    rmse = [h["val_loc_rmse"] for h in res.history]
    assert res.finished and all(0 <= h["val_cmr_1px"] <= h["val_cmr_3px"] <= 1 for h in res.history)
    # offsets are uniform in [-4, 4]^2: measured RMSE 6.4 px after one epoch of 8 steps, 0.5 px after six
    assert min(rmse) < 2.0 and res.history[-1]["val_loss"] < res.history[0]["val_loss"]
    assert res.best["epoch"] == 1 + int(np.argmin(rmse)) and res.best["val_loc_rmse"] == min(rmse)
    hist = json.loads((tmp_path / "run" / "history.json").read_text())
    assert hist["best"]["val_loc_rmse"] == min(rmse)
    # the CLI reports the localisation figures of the best epoch (the run is finished: nothing is retrained)
    run = tmp_path / "run"
    r = CliRunner().invoke(cli, ["match", "train", "--config", str(run / "config.yaml"), "--out", str(run)])
    assert r.exit_code == 0, r.output
    assert f"best epoch {res.best['epoch']}" in r.output and f"RMSE {min(rmse):.2f} px" in r.output


def test_eval_reports_every_protocol_for_a_dense_checkpoint(fake: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    train(TrainConfig.from_dict({**DENSE, "data": str(fake), "epochs": 2}), run)
    metrics = tmp_path / "m.json"
    r = CliRunner().invoke(
        cli,
        ["match", "eval", "-k", str(run), "--data", str(fake), "--split", "all", "--search-radius", "4", "--template-side", "20",
         "--baseline", "ncc", "--tta", "--json", str(metrics)],
    )
    assert r.exit_code == 0, r.output
    m = json.loads(metrics.read_text())
    for proto in ("balanced", "hard", "localisation", "retrieval"):
        assert set(m[proto]["methods"]) == {"dense", "ncc"}, proto
    assert m["localisation"]["template_side"] == 20
    loc = m["localisation"]["methods"]["dense"]
    assert 0.0 <= loc["cmr_1px"] <= loc["cmr_3px"] <= 1.0 and loc["rmse_px"] >= 0.0
    assert m["meta"]["tta"] is True and "| dense |" in r.output
    assert any("calibrated on the evaluation pairs themselves" in w for w in m["meta"]["warnings"])

    # coarse to fine: the dense peak refined by NCC is localisation's primary; the other protocols keep dense
    refined = tmp_path / "r.json"
    args = ["match", "eval", "-k", str(run), "--data", str(fake), "--split", "all", "--search-radius", "4",
            "--template-side", "20", "--baseline", "ncc", "--bootstrap", "20"]  # fmt: skip
    code, out = run_cli([*args, "--protocol", "localisation", "--protocol", "retrieval", "--refine", "ncc",
                         "--refine-radius", "2", "--json", str(refined)])  # fmt: skip
    assert code == 0, out
    m = json.loads(refined.read_text())
    assert m["localisation"]["method"] == "dense>ncc" and m["retrieval"]["method"] == "dense"
    assert set(m["localisation"]["methods"]) == {"dense", "ncc", "dense>ncc"}
    assert set(m["retrieval"]["methods"]) == {"dense", "ncc"}
    loc = m["localisation"]["methods"]
    assert set(loc["dense"]["vs_primary"]) == {"cmr_3px", "rmse_px"} and "vs_primary" not in loc["dense>ncc"]
    assert m["meta"]["settings"]["refine"] == "ncc" and m["meta"]["settings"]["refine_radius"] == 2
    assert not any("calibrated" in w for w in m["meta"]["warnings"])  # no threshold without pair protocols
    assert "dense>ncc minus each method" in out and "dense minus each method" in out
    assert "dense>ncc is the trained method" not in out and "NAME>ncc is the trained method NAME" in out
    # a refiner that is not among the baselines is made for the purpose
    code, out = run_cli([*args[:-2], "--bootstrap", "0", "--refine", "cfog", "--protocol", "localisation"])
    assert code == 0 and "| dense>cfog |" in out, out
    code, out = run_cli([*args[:2], "-d", str(fake), "--baseline", "ncc", "--crop", "20", "--refine", "ncc"])
    assert code != 0 and "give a checkpoint" in out and "Traceback" not in out
    code, out = run_cli([*args, "--protocol", "retrieval", "--subpixel"])
    assert code != 0 and "add --protocol localisation" in out
    code, out = run_cli([*args, "--protocol", "localisation", "--refine-radius", "2"])
    assert code != 0 and "needs --refine" in out


def _fusion_members() -> list[ModelScorer]:
    torch.manual_seed(0)
    bnn = ModelScorer(build_model("bnn", "test_resnet", embedding_dim=8).eval(), spec=ViewSpec(24, 16))
    small_bnn = build_model("bnn", "test_resnet", embedding_dim=6).eval()
    small = ModelScorer(small_bnn, name="small", spec=ViewSpec(16, 16))
    dense_model = build_model("dense", "unused", embedding_dim=8, dense_width=4).eval()
    dense = ModelScorer(dense_model, spec=ViewSpec(12, 0))
    return [bnn, small, dense]


def test_fusion_members_see_their_own_views_and_scores_are_standardised() -> None:
    from saropt.matching.scoring import FusionScorer
    from saropt.matching.views import make_view

    members = _fusion_members()
    fusion = FusionScorer(members)
    assert fusion.name == "bnn+small+dense" and fusion.spec == ViewSpec(24, 0)  # the widest view-bound crop
    g = torch.Generator().manual_seed(3)
    patches = [(torch.rand(1, 32, 32, generator=g), torch.rand(3, 32, 32, generator=g)) for _ in range(6)]
    views = [make_view(s, o, fusion.spec) for s, o in patches]
    cs = fusion.encode_sar(torch.stack([v[0] for v in views]))
    co = fusion.encode_opt(torch.stack([v[1] for v in views]))
    assert cs.ndim == 2 and cs.shape[0] == 6
    with pytest.raises(ConfigError, match="calibrate"):
        fusion.pair_scores(cs, co)

    # each member's part of the code is what the member gives alone: its own view (a nested centred crop, then
    # its resize), the dense member the whole native crop
    raw = []
    for m in members:
        spec = fusion.spec if m.name == "dense" else m.spec
        own = [make_view(s, o, spec) for s, o in patches]
        a, b = m.encode_sar(torch.stack([v[0] for v in own])), m.encode_opt(torch.stack([v[1] for v in own]))
        raw.append((m.score_matrix(a, b), m.pair_scores(a, b)))
    want_raw = np.stack([p for _, p in raw])
    np.testing.assert_allclose(fusion.member_pair_scores(cs, co), want_raw, rtol=1e-5, atol=1e-6)

    # standardised by the calibration pairs (here every SAR code against a rolled optical one, and itself)
    rows = torch.tensor([0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 5])
    cols = torch.tensor([0, 1, 2, 3, 4, 5, 1, 2, 3, 4, 5, 0])
    fusion.calibrate(cs[rows], co[cols])
    cal = [mat[rows.numpy(), cols.numpy()] for mat, _ in raw]
    want = np.mean([(mat - c.mean()) / c.std() for (mat, _), c in zip(raw, cal)], axis=0)
    # (all-pairs and paired scores of an untrained model differ by ~1e-6 in float32; the spread divides them)
    np.testing.assert_allclose(fusion.score_matrix(cs, co), want, atol=1e-3)
    np.testing.assert_allclose(fusion.pair_scores(cs, co), np.diag(want), atol=1e-3)
    assert want.std() > 0.1  # a real spread, far above the tolerance

    # localisation: the dense member's surface, standardised (the patch codes' flat surfaces are left out)
    assert fusion.localisers() == ["dense"]
    template, window = patches[0][0][:, 4:24, 4:24], patches[0][1][:, :28, :28]
    surf = members[2].surface(template, window, ViewSpec(), 32)
    want_surf = (surf - surf.mean()) / surf.std()
    got_surf = fusion.surface(template, window, ViewSpec(), 32)
    np.testing.assert_allclose(got_surf, want_surf, rtol=1e-5, atol=1e-6)

    with pytest.raises(ConfigError, match="at least two"):
        FusionScorer(members[:1])


def test_eval_fuses_a_bnn_with_a_dense_matcher(fake: Path, tmp_path: Path) -> None:
    dense, bnn = tmp_path / "dense", tmp_path / "bnn"
    train(TrainConfig.from_dict({**DENSE, "data": str(fake), "epochs": 1}), dense)
    train(
        TrainConfig.from_dict(
            {"model": "bnn", "backbone": "test_resnet", "embedding_dim": 8, "crop": 24, "size": 16,
             "epochs": 1, "batch_size": 8, "val_pairs": 16, "threads": 1, "data": str(fake)}
        ),
        bnn,
    )
    metrics = tmp_path / "m.json"
    args = ["match", "eval", "-k", str(bnn), "-k", str(dense), "--data", str(fake), "--split", "test",
            "--search-radius", "4", "--templates", "4", "--candidates", "8", "--baseline", "cfog"]
    r = CliRunner().invoke(cli, [*args, "--fuse", "--json", str(metrics)])
    assert r.exit_code == 0, r.output
    m = json.loads(metrics.read_text())
    for proto in ("balanced", "hard", "localisation", "retrieval"):
        assert set(m[proto]["methods"]) == {"bnn+dense", "cfog"}, proto
    assert m["meta"]["fusion"] == ["bnn", "dense"] and m["meta"]["fusion_localisers"] == ["dense"]
    assert m["balanced"]["threshold_source"] == "val" and "default" not in m["balanced"]
    assert "(fusion; scales from the balanced pairs of val); it localises with dense" in r.output
    # 1-epoch models: the wiring only (the figures are checked in the test above)
    assert 0.0 <= m["balanced"]["roc_auc"] <= 1.0 and m["retrieval"]["queries"] > 0
    # the localisation of the fusion is its dense member's: the same predictions as the dense model alone
    alone_args = ["match", "eval", "-k", str(dense), *args[6:], "--protocol", "localisation"]
    r = CliRunner().invoke(cli, [*alone_args, "--json", str(tmp_path / "d.json")])
    assert r.exit_code == 0, r.output
    alone = json.loads((tmp_path / "d.json").read_text())["localisation"]
    assert alone["method"] == "dense" and alone["rmse_px"] == pytest.approx(m["localisation"]["rmse_px"])

    code, out = run_cli([*args, "--fuse", "--ensemble"])
    assert code != 0
    assert out.strip() == "saropt: error: choose one of ensemble (one kind: mean score) and fuse (any kinds)"
