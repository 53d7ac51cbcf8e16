"""Detector construction, OSM / OSD / file initialisation, a tiny training run and exact checkpoint resume."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from saropt.detection.checkpoint import detector_from_checkpoint, load_detector_checkpoint
from saropt.detection.config import DetectTrainConfig
from saropt.detection.init import adapt_first_conv, initialise, matching_sar_backbone
from saropt.detection.models import DetectorSpec, build_detector
from saropt.detection.train import train_detector
from saropt.errors import CheckpointError, ConfigError, OutputExistsError
from tests.unit.detectutil import make_voc

TINY = {"backbone": "test_resnet", "out_indices": [1, 2, 3], "fpn_channels": 16, "min_size": 64, "max_size": 96,
        "box_head_dim": 32, "rpn_batch_size": 32, "box_batch_size": 32, "anchor_scale": 2.0}


def _tiny(**kw):
    return build_detector(DetectorSpec(**{**TINY, **kw}))


def test_specs_and_errors():
    with pytest.raises(ConfigError, match="unknown detector arch"):
        DetectorSpec(arch="yolo")
    with pytest.raises(ConfigError, match="unknown backbone"):
        build_detector(DetectorSpec(backbone="resnet_nope"))
    with pytest.raises(ConfigError, match="divisible by 32"):
        DetectorSpec(arch="fcos", fpn_channels=16)
    spec = DetectorSpec(**TINY)
    assert DetectorSpec.from_dict(spec.to_dict()) == spec
    with pytest.raises(ConfigError, match="unknown detector model keys"):
        DetectorSpec.from_dict({"depth": 3})


@pytest.mark.parametrize("arch", ["retinanet", "fcos"])
def test_one_stage_detectors_train_and_predict(arch):
    torch.manual_seed(0)
    m = _tiny(arch=arch, fpn_channels=32)
    imgs = [torch.rand(1, 64, 80)]
    losses = m(imgs, [{"boxes": torch.tensor([[10.0, 10.0, 30.0, 25.0]]), "labels": torch.tensor([1])}])
    assert all(torch.isfinite(v) for v in losses.values())
    m.eval()
    out = m(imgs)[0]
    assert out["boxes"].shape[1] == 4 and len(out["scores"]) == len(out["boxes"])


def _bnn_like_checkpoint(tmp_path, backbone="test_resnet", prefix="sar_branch.0."):
    """A matching checkpoint in saropt's format: SAR branch = Sequential(timm backbone, Linear, Sigmoid)."""
    import timm

    from saropt.matching.checkpoint import save_checkpoint

    torch.manual_seed(1)
    sar = timm.create_model(backbone, pretrained=False, num_classes=0, in_chans=1)
    opt = timm.create_model(backbone, pretrained=False, num_classes=0, in_chans=3)
    sd = {f"{prefix}{k}": v for k, v in sar.state_dict().items()}
    sd.update({f"{prefix[:-2]}1.weight": torch.zeros(8, sar.num_features), f"{prefix[:-2]}1.bias": torch.zeros(8)})
    sd.update({f"opt_branch.0.{k}": v for k, v in opt.state_dict().items()})
    path = tmp_path / "bnn" / "best.pt"
    save_checkpoint(path, {"config": {"model": "bnn", "backbone": backbone}, "model": sd,
                           "data": {"root": "x", "sar_channels": 1, "splits": {}}})
    return path, sar.state_dict()


def test_osm_transfers_the_sar_branch(tmp_path):
    path, sar_sd = _bnn_like_checkpoint(tmp_path)
    name, sd = matching_sar_backbone(path.parent)  # run folder -> best.pt
    assert name == "test_resnet" and "conv1.0.weight" in sd and not any(k.startswith(("1.", "fc")) for k in sd)
    m = _tiny()
    rep = initialise(m, f"osm:{path.parent}")
    assert rep.kind == "osm" and rep.loaded > 10 and rep.adapted == ()
    body = m.backbone.body.state_dict()
    for k, v in body.items():
        if k in sar_sd:
            assert torch.equal(v, sar_sd[k]), k
    # RGB detector: the 1-channel conv is repeated / 3, so a grey image repeated 3x gives the same response
    m3 = _tiny(in_chans=3)
    rep3 = initialise(m3, f"osm:{path}")
    first = rep3.adapted[0]
    w1, w3 = sar_sd[first], m3.backbone.body.state_dict()[first]
    x = torch.rand(1, 1, 16, 16)
    torch.testing.assert_close(torch.nn.functional.conv2d(x.repeat(1, 3, 1, 1), w3), torch.nn.functional.conv2d(x, w1))
    with pytest.raises(CheckpointError, match="has backbone 'test_resnet'"):
        initialise(build_detector(DetectorSpec(**{**TINY, "backbone": "resnet10t"})), f"osm:{path}")


def test_osm_generic_dict_and_bad_inputs(tmp_path):
    import timm

    sar = timm.create_model("test_resnet", pretrained=False, num_classes=0, in_chans=1)
    p = tmp_path / "other.pt"
    torch.save({"config": {"backbone": "test_resnet"}, "model": {f"sar.{k}": v for k, v in sar.state_dict().items()}}, p)
    assert initialise(_tiny(), f"osm:{p}").loaded > 10
    torch.save({"config": {"model": "dense"}, "model": {"sar_branch.full.0.0.weight": torch.zeros(1)}}, p)
    with pytest.raises(CheckpointError, match="dense-matcher checkpoint"):
        initialise(_tiny(), f"osm:{p}")
    torch.save({"config": {}, "model": {"x.weight": torch.zeros(1)}}, p)
    with pytest.raises(CheckpointError, match="no SAR-branch weights"):
        initialise(_tiny(), f"osm:{p}")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot read"):
        initialise(_tiny(), f"osm:{tmp_path / 'junk.pt'}")
    with pytest.raises(ConfigError, match="is not 'random'"):
        initialise(_tiny(), "imagenet")
    # a user's backbone weight file (timm layout with classifier, 3-channel conv) -> summed to 1 channel
    rgb = timm.create_model("test_resnet", pretrained=False, num_classes=10, in_chans=3)
    f = tmp_path / "resnet.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in rgb.state_dict().items()}}, f)
    m = _tiny()
    rep = initialise(m, str(f))
    assert rep.kind == "backbone_file" and len(rep.adapted) == 1
    k = rep.adapted[0]
    torch.testing.assert_close(m.backbone.body.state_dict()[k], rgb.state_dict()[k].sum(1, keepdim=True))
    assert adapt_first_conv(torch.ones(2, 3, 1, 1), 3).shape == (2, 3, 1, 1)


def _cfg(root, **kw):
    base = {"data": str(root), "format": "voc", "model": TINY, "epochs": 2, "batch_size": 1, "lr": 0.01,
            "warmup_steps": 0, "schedule": "constant", "optimizer": "sgd", "checkpoint_every": 1, "threads": 1}
    return DetectTrainConfig.from_dict({**base, **kw})


def test_train_resume_is_exact_and_osd_loads_everything(tmp_path):
    root = make_voc(tmp_path / "VOC2007")
    full = train_detector(_cfg(root), tmp_path / "full")
    assert full.completed and full.steps == 4 and (tmp_path / "full" / "final.pt").is_file()
    # interrupted after epoch 1, then resumed with more epochs: identical weights
    part = train_detector(_cfg(root, epochs=1), tmp_path / "part")
    (tmp_path / "part" / "final.pt").unlink()
    resumed = train_detector(_cfg(root, epochs=2), tmp_path / "part")
    assert resumed.steps == 4 and part.steps == 2
    a = load_detector_checkpoint(tmp_path / "full")["model"]
    b = load_detector_checkpoint(tmp_path / "part")["model"]
    for k in a:
        torch.testing.assert_close(a[k], b[k], msg=k)
    # batches decoded in a worker process: the same samples, so the same weights
    train_detector(_cfg(root, num_workers=1), tmp_path / "workers")
    c = load_detector_checkpoint(tmp_path / "workers")["model"]
    for k in a:
        torch.testing.assert_close(a[k], c[k], msg=k)
    again = train_detector(_cfg(root), tmp_path / "full")  # a finished run: nothing left to do
    assert again.completed and again.steps == 4
    (tmp_path / "part" / "final.pt").unlink()
    with pytest.raises(OutputExistsError, match="differs in lr"):
        train_detector(_cfg(root, lr=0.5), tmp_path / "part")
    # OSD: a detector initialised from the trained one holds all its weights
    model, _ = detector_from_checkpoint(tmp_path / "full")
    m = _tiny()
    rep = initialise(m, f"osd:{tmp_path / 'full'}")
    assert rep.kind == "osd" and rep.loaded == rep.total
    for k, v in model.state_dict().items():
        torch.testing.assert_close(m.state_dict()[k], v)


def test_epoch_batches_are_the_same_with_workers(tmp_path):
    from saropt.detection.samples import Augment, ShipDataset
    from saropt.detection.train import epoch_batches, training_records

    root = make_voc(tmp_path / "VOC2007")
    recs = training_records(_cfg(root, train_split=""))
    ds = ShipDataset(recs * 3, "sar", 1, Augment(0, True, True), seed=3)
    ds.set_epoch(2)
    order = np.random.default_rng(0).permutation(len(ds))
    plain = list(epoch_batches(ds, order, 1, 4))
    pooled = list(epoch_batches(ds, order, 1, 4, num_workers=2))
    assert [len(b[0]) for b in plain] == [2]  # 6 samples in batches of 4, from the second batch on
    assert len(pooled) == len(plain)
    for (ia, ta), (ib, tb) in zip(plain, pooled, strict=True):
        for x, y in zip(ia, ib, strict=True):
            torch.testing.assert_close(x, y)
        for x, y in zip(ta, tb, strict=True):
            torch.testing.assert_close(x["boxes"], y["boxes"])
