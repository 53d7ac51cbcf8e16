"""Training: config, seeded reproducibility, checkpoint round trip, exact resume, errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from saropt.errors import CheckpointError, ConfigError, OutputExistsError
from saropt.matching.checkpoint import load_checkpoint, model_from_checkpoint
from saropt.matching.config import TrainConfig, load_config, parse_override
from saropt.matching.train import train

from .matching_fake import write_fake_saropt

TINY = dict(
    backbone="test_resnet",
    embedding_dim=8,
    crop=24,
    size=16,
    batch_size=8,
    epochs=1,
    lr=3e-3,
    val_pairs=16,
    threads=1,
    log_every=1,
)


@pytest.fixture(scope="module")
def fake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_fake_saropt(tmp_path_factory.mktemp("fake"))


def _cfg(data: Path, **kw: object) -> TrainConfig:
    return TrainConfig.from_dict({**TINY, "data": str(data), **kw})


def test_config_yaml_overrides_and_errors(tmp_path: Path) -> None:
    p = tmp_path / "c.yaml"
    p.write_text("model: bnn\nbackbone: resnet18\nepochs: 3\nlr: 1.0e-3\n")
    cfg = load_config(p, {"epochs": "5", "data": "D"})
    assert cfg.epochs == 5 and cfg.backbone == "resnet18" and cfg.data == "D" and cfg.lr == 1e-3
    assert load_config(p, dict([parse_override("lr=2e-4")])).lr == 2e-4  # YAML reads 2e-4 as text
    assert parse_override("epochs=7") == ("epochs", 7)
    nested = load_config(p, {"backbone_weights.sar": "/w/sar.pth"})
    assert nested.backbone_weights == {"sar": "/w/sar.pth"}
    assert parse_override("augment=none") == ("augment", "none")
    with pytest.raises(ConfigError, match="unknown training config keys"):
        load_config(p, {"epoch": 2})
    with pytest.raises(ConfigError, match="batch_size"):
        TrainConfig(batch_size=1)
    with pytest.raises(ConfigError, match="integer"):
        TrainConfig.from_dict({"epochs": 2.5})
    with pytest.raises(ConfigError, match="key=value"):
        parse_override("epochs")
    (tmp_path / "bad.yaml").write_text("- a list\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(tmp_path / "bad.yaml")


def test_train_writes_a_complete_run_and_checkpoint_round_trips(fake: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    res = train(_cfg(fake), run)
    assert res.finished and res.epochs_done == 1
    for name in ("last.pt", "best.pt", "config.yaml", "history.json", "learning_curve.png"):
        assert (run / name).is_file(), name
    h = res.history[0]
    assert 0.0 <= h["val_roc_auc"] <= 1.0 and h["train_loss"] > 0
    ck = load_checkpoint(run)  # a run folder resolves to best.pt
    assert ck["path"].endswith("best.pt")
    assert ck["config"]["backbone"] == "test_resnet"
    assert set(ck["data"]["splits"]) == {"train", "val"}
    assert ck["data"]["splits"]["train"]["count"] == 36 and len(ck["data"]["splits"]["train"]["sha256"]) == 64
    assert ck["data"]["scenes"]["train"] == ["s0", "s1", "s2", "s3"]
    model = model_from_checkpoint(ck).eval()
    x, y = torch.rand(2, 1, 16, 16), torch.rand(2, 3, 16, 16)
    ref = model.pair_scores(model.encode_sar(x), model.encode_opt(y))
    again = model_from_checkpoint(load_checkpoint(run / "best.pt")).eval()
    assert torch.equal(ref, again.pair_scores(again.encode_sar(x), again.encode_opt(y)))


def test_resume_reproduces_an_uninterrupted_run_exactly(fake: Path, tmp_path: Path) -> None:
    straight = train(_cfg(fake, epochs=2), tmp_path / "a")
    # stop after the very first step (time budget), then resume twice to the end
    part = train(_cfg(fake, epochs=2, max_minutes=1e-9), tmp_path / "b")
    assert not part.finished and part.epochs_done == 0
    assert load_checkpoint(tmp_path / "b" / "last.pt")["epoch_step"] == 1
    resumed = train(_cfg(fake, epochs=2), tmp_path / "b")
    assert resumed.finished and len(resumed.history) == 2
    a = load_checkpoint(tmp_path / "a" / "last.pt")["model"]
    b = load_checkpoint(tmp_path / "b" / "last.pt")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert [h["train_loss"] for h in straight.history] == [h["train_loss"] for h in resumed.history]
    # a finished run is a no-op when run again; more epochs extend it
    assert train(_cfg(fake, epochs=2), tmp_path / "b").epochs_done == 2
    assert len(train(_cfg(fake, epochs=3), tmp_path / "b").history) == 3


def test_resume_refuses_another_config_and_no_resume_refuses_existing(fake: Path, tmp_path: Path) -> None:
    train(_cfg(fake), tmp_path / "r")
    with pytest.raises(ConfigError, match="different config"):
        train(_cfg(fake, lr=1e-2), tmp_path / "r")
    with pytest.raises(OutputExistsError):
        train(_cfg(fake), tmp_path / "r", resume=False)


def test_pseudo_siamese_trains_and_bad_checkpoint_is_reported(fake: Path, tmp_path: Path) -> None:
    res = train(_cfg(fake, model="pseudo_siamese", hidden_dim=16), tmp_path / "ps")
    assert res.finished
    assert load_checkpoint(tmp_path / "ps")["config"]["model"] == "pseudo_siamese"
    bad = tmp_path / "bad.pt"
    torch.save({"weights": torch.zeros(2)}, bad)
    with pytest.raises(CheckpointError, match="not a saropt matching checkpoint"):
        load_checkpoint(bad)
    with pytest.raises(CheckpointError, match="no best.pt"):
        load_checkpoint(tmp_path)


def test_batchnorm_recalibration_uses_the_current_weights(fake: Path) -> None:
    """After recalibration the first BatchNorm's running statistics are those of its inputs (used batches)."""
    import numpy as np

    from saropt.data.saropt_ds import SaroptDataset
    from saropt.matching.models import build_model
    from saropt.matching.train import recalibrate_batchnorm
    from saropt.matching.views import PairViews, ViewSpec

    torch.manual_seed(0)
    model = build_model("bnn", "test_resnet", embedding_dim=4, input_norm="standardize").eval()
    ds = SaroptDataset(fake, split="train")
    views = PairViews(ds, ViewSpec(24, 16), train=True, augment="flip", seed=1)
    stem = model.sar_branch[0]
    bn = stem.bn1
    bn.running_mean.fill_(5.0)
    used = recalibrate_batchnorm(model, views, batches=2, batch_size=4, device="cpu", channels_last=False,
                                 seed=9)
    assert used == 8 and not model.training and bn.momentum == 0.1
    recalibrated = bn.running_mean.clone()
    order = np.random.default_rng([9, 5]).permutation(len(views))[:8]
    x = model.norm(torch.stack([views[int(i)]["sar"] for i in order]))
    model.train()  # the stem's inner BatchNorms use batch statistics, as during recalibration
    with torch.no_grad():
        means = [stem.conv1(x[k : k + 4]).mean(dim=(0, 2, 3)) for k in (0, 4)]
    assert torch.allclose(recalibrated, (means[0] + means[1]) / 2, atol=1e-5)  # cumulative average
