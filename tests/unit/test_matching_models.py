"""BNN and pseudo-siamese models, losses and in-batch negatives, backbone weight files."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from saropt.errors import CheckpointError, ConfigError
from saropt.matching.losses import (
    bnn_distance,
    bnn_distance_matrix,
    bnn_loss,
    negative_shifts,
    pair_bce_loss,
    roll_pairs,
)
from saropt.matching.models import build_model, create_backbone, load_backbone_weights

TINY = "test_resnet"  # timm's 0.4M-parameter test network: fast on CPU


def test_bnn_distance_values() -> None:
    a = torch.zeros(3, 4)
    b = torch.tensor([[0.0, 0, 0, 0], [1.0, 0, 0, 0], [1.0, 1, 1, 1]])
    d = bnn_distance(a, b)
    assert d[0] < 1e-5  # eps floor only
    assert d[1] == pytest.approx(0.5)  # sqrt(1/4)
    assert d[2] == pytest.approx(1.0)  # the far corner of the unit cube
    m = bnn_distance_matrix(a[:1], b)
    assert torch.allclose(m[0], torch.tensor([0.0, 0.5, 1.0]), atol=1e-6)


def test_bnn_loss_value() -> None:
    loss = bnn_loss(torch.tensor([0.0, 0.5]), torch.tensor([1.0, 0.5]))
    assert float(loss) == pytest.approx(0.125 + 0.125)


def test_bce_loss_at_zero_logits_is_log2() -> None:
    assert float(pair_bce_loss(torch.zeros(4), torch.zeros(4))) == pytest.approx(math.log(2))


def test_roll_repairs_every_row() -> None:
    x = torch.arange(5)
    for k in range(1, 5):
        rolled = roll_pairs(x, k)
        assert sorted(rolled.tolist()) == x.tolist()
        assert not torch.any(rolled == x)  # nobody keeps its partner
    assert roll_pairs(x, 1).tolist() == [4, 0, 1, 2, 3]


def test_negative_shifts_distinct_and_capped() -> None:
    g = torch.Generator().manual_seed(0)
    s = negative_shifts(4, 10, g)
    assert sorted(s) == [1, 2, 3]
    s = negative_shifts(8, 2, g)
    assert len(set(s)) == 2 and all(1 <= k <= 7 for k in s)
    assert negative_shifts(1, 3, g) == []


@pytest.mark.parametrize("kind", ["bnn", "pseudo_siamese"])
def test_models_shapes_scores_and_unshared_branches(kind: str) -> None:
    torch.manual_seed(0)
    m = build_model(kind, TINY, embedding_dim=8).eval()
    x, y = torch.rand(4, 1, 32, 32), torch.rand(4, 3, 32, 32)
    fs, fo = m.encode_sar(x), m.encode_opt(y)
    s = m.pair_scores(fs, fo)
    mat = m.score_matrix(fs, fo)
    assert s.shape == (4,) and mat.shape == (4, 4)
    assert torch.allclose(torch.diagonal(mat), s, atol=1e-5)
    assert torch.all((s >= 0) & (s <= 1))
    sar_params = {id(p) for p in m.sar_branch.parameters()}
    assert not sar_params & {id(p) for p in m.opt_branch.parameters()}
    if kind == "bnn":
        assert fs.shape == (4, 8) and torch.all((fs >= 0) & (fs <= 1))
        assert torch.allclose(m(x, y), 1 - s, atol=1e-6)


@pytest.mark.parametrize("kind", ["bnn", "pseudo_siamese"])
def test_gradients_reach_both_branches(kind: str) -> None:
    from saropt.matching.train import batch_loss

    torch.manual_seed(0)
    m = build_model(kind, TINY, embedding_dim=8).train()
    loss = batch_loss(m, torch.rand(4, 1, 32, 32), torch.rand(4, 3, 32, 32), [1, 2])
    loss.backward()
    for branch in (m.sar_branch, m.opt_branch):
        grads = [p.grad for p in branch.parameters() if p.requires_grad]
        assert all(g is not None for g in grads)
        assert sum(float(g.abs().sum()) for g in grads) > 0


def test_input_standardisation_removes_brightness_and_contrast() -> None:
    from saropt.matching.models import standardize_per_image

    torch.manual_seed(0)
    x = torch.rand(2, 3, 16, 16)
    assert torch.allclose(
        standardize_per_image(x), standardize_per_image(0.3 * x + 0.5), atol=3e-3
    )  # eps in the std
    m = build_model("bnn", TINY, embedding_dim=4, input_norm="standardize").eval()
    s = torch.rand(2, 1, 32, 32)
    assert torch.allclose(m.encode_sar(s), m.encode_sar(0.5 * s + 0.2), atol=1e-3)
    with pytest.raises(ConfigError, match="input_norm"):
        build_model("bnn", TINY, input_norm="whiten")


def test_unknown_backbone_and_kind() -> None:
    with pytest.raises(ConfigError, match="unknown backbone"):
        create_backbone("resnet_does_not_exist", 1)
    with pytest.raises(ConfigError, match="unknown model kind"):
        build_model("siamese", TINY)
    with pytest.raises(ConfigError, match="backbone_weights"):
        build_model("bnn", TINY, backbone_weights={"radar": "x.pt"})


def test_darknet53_is_available_by_name() -> None:
    bb = create_backbone("darknet53", 1)
    assert bb.num_features == 1024


def test_backbone_weights_round_trip_and_channel_adaptation(tmp_path: Path) -> None:
    import timm

    torch.manual_seed(1)
    src = timm.create_model(TINY, pretrained=False, num_classes=10, in_chans=3)  # with a classifier head
    path = tmp_path / "rgb.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in src.state_dict().items()}}, path)
    first = src.pretrained_cfg["first_conv"] + ".weight"

    opt_bb = create_backbone(TINY, 3, path)
    assert torch.equal(opt_bb.state_dict()[first], src.state_dict()[first])
    sar_bb = create_backbone(TINY, 1, path)
    # timm's adapt_input_conv sums the RGB filters into one channel
    assert torch.allclose(
        sar_bb.state_dict()[first], src.state_dict()[first].sum(dim=1, keepdim=True), atol=1e-6
    )

    m = build_model("bnn", TINY, embedding_dim=4, backbone_weights={"sar": str(path), "opt": str(path)})
    assert torch.equal(m.opt_branch[0].state_dict()[first], src.state_dict()[first])


def test_torchvision_state_dict_fits_timm_resnet(tmp_path: Path) -> None:
    import torchvision

    path = tmp_path / "tv.pth"
    torch.save(torchvision.models.resnet18().state_dict(), path)
    bb = create_backbone("resnet18", 1, path)
    assert bb.conv1.weight.shape[1] == 1


def test_backbone_weight_errors(tmp_path: Path) -> None:
    import timm

    other = tmp_path / "other.pth"
    torch.save(timm.create_model("resnet18", pretrained=False).state_dict(), other)
    bb = create_backbone(TINY, 3)
    with pytest.raises(CheckpointError, match="does not fit"):
        load_backbone_weights(bb, other, 3)
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot read"):
        load_backbone_weights(bb, junk, 3)
    lst = tmp_path / "list.pth"
    torch.save([1, 2, 3], lst)
    with pytest.raises(CheckpointError, match="not a state dict"):
        load_backbone_weights(bb, lst, 3)
    with pytest.raises(CheckpointError, match="not found"):
        load_backbone_weights(bb, tmp_path / "missing.pth", 3)


@pytest.mark.parametrize("kind", ["bnn", "pseudo_siamese"])
def test_pool_grid_codes_are_the_feature_map_averaged_on_a_grid(kind: str) -> None:
    torch.manual_seed(0)
    m = build_model(kind, TINY, embedding_dim=8, pool_grid=2).eval()
    enc = m.sar_branch
    assert isinstance(enc[1], torch.nn.AdaptiveAvgPool2d)  # the backbone stays the first layer (osm:)
    x = torch.rand(2, 1, 64, 64)
    with torch.no_grad():
        fmap = enc[0](m.norm(x))
        assert fmap.ndim == 4 and fmap.shape[-1] == 2  # unpooled stride-32 map of a 64 px input
        grid = torch.nn.functional.adaptive_avg_pool2d(fmap, 2).flatten(1)  # (2, C * 4), channel-major
        codes = m.encode_sar(x)
        if kind == "bnn":
            head = enc[3]
            assert head.in_features == fmap.shape[1] * 4
            assert torch.allclose(codes, torch.sigmoid(head(grid)), atol=1e-6)
        else:
            assert torch.allclose(codes, grid, atol=1e-6)
        # the grid keeps layout: moving the content changes the grid cells, not just their mean
        swapped = enc[0](m.norm(torch.flip(x, dims=[-1])))
        assert not torch.allclose(
            torch.nn.functional.adaptive_avg_pool2d(swapped, 2).flatten(1), grid, atol=1e-4
        )
    with pytest.raises(ConfigError, match="pool_grid"):
        build_model(kind, TINY, pool_grid=0)


@pytest.mark.parametrize("kind", ["bnn", "pseudo_siamese"])
def test_tta_scores_are_the_mean_over_the_eight_transforms(kind: str) -> None:
    from saropt.matching.scoring import ModelScorer, dihedral_views
    from saropt.matching.views import ViewSpec

    torch.manual_seed(0)
    x = torch.rand(3, 1, 32, 32)
    y = torch.rand(3, 3, 32, 32)
    views = dihedral_views(x)
    assert len(views) == 8 and torch.equal(views[0], x)
    assert len({v.numpy().tobytes() for v in views}) == 8  # a random image has 8 distinct transforms
    m = build_model(kind, TINY, embedding_dim=8).eval()
    plain = ModelScorer(m, device="cpu")
    tta = ModelScorer(m, device="cpu", tta=True)
    cs, co = tta.encode_sar(x), tta.encode_opt(y)
    assert cs.shape[:2] == (3, 8)
    expected = np.mean(
        [plain.pair_scores(plain.encode_sar(a), plain.encode_opt(b)) for a, b in zip(views, dihedral_views(y))],
        axis=0,
    )
    np.testing.assert_allclose(tta.pair_scores(cs, co), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.diag(tta.score_matrix(cs, co)), expected, rtol=1e-5, atol=1e-6)
    surf = tta.surface(x[0], torch.rand(3, 36, 36), ViewSpec(), 32)
    assert surf.shape == (5, 5) and np.isfinite(surf).all()


@pytest.mark.parametrize("tta", [False, True])
def test_ensemble_scores_are_the_mean_of_its_members(tta: bool) -> None:
    from saropt.matching.scoring import EnsembleScorer, ModelScorer
    from saropt.matching.views import ViewSpec

    torch.manual_seed(0)
    spec = ViewSpec(24, 16)
    members = [ModelScorer(build_model("bnn", TINY, embedding_dim=d), spec=spec, tta=tta) for d in (8, 6)]
    ens = EnsembleScorer(members)
    assert ens.name == "bnn-x2" and ens.spec == spec
    sar, opt = torch.rand(5, 1, 16, 16), torch.rand(5, 3, 16, 16)
    cs, co = ens.encode_sar(sar), ens.encode_opt(opt)
    assert cs.shape[0] == 5 and cs.ndim == 2  # joined codes: stored and indexed like any code
    singles = [(m.encode_sar(sar), m.encode_opt(opt)) for m in members]
    want = np.mean([m.pair_scores(a, b) for m, (a, b) in zip(members, singles)], axis=0)
    np.testing.assert_allclose(ens.pair_scores(cs, co), want, rtol=1e-6)
    want_m = np.mean([m.score_matrix(a, b) for m, (a, b) in zip(members, singles)], axis=0)
    np.testing.assert_allclose(ens.score_matrix(cs[[3, 1]], co), want_m[[3, 1]], rtol=1e-6)
    assert not np.allclose(want, members[0].pair_scores(*singles[0]))  # the members do differ

    with pytest.raises(ConfigError, match="at least two"):
        EnsembleScorer(members[:1])
    with pytest.raises(ConfigError, match="one model kind"):
        other_view = ModelScorer(build_model("bnn", TINY, embedding_dim=8), spec=ViewSpec(32, 16))
        EnsembleScorer([members[0], other_view])
