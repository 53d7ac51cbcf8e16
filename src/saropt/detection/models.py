"""Ship detectors: torchvision Faster R-CNN (FPN), RetinaNet and FCOS on timm backbones.

The backbone is a timm model created by name with ``pretrained=False`` and ``features_only=True`` (nothing is
downloaded, ever); its feature maps at ``out_indices`` feed a torchvision feature pyramid. Weights come from
:mod:`saropt.detection.init` (``random``, ``osm:``, ``osd:`` or a local file).

Anchors follow the pyramid: level ``l`` with stride ``s_l`` gets anchors of side ``anchor_scale * s_l`` (Faster
R-CNN: one size, ratios ``aspect_ratios``; RetinaNet: three octave scales). With ``out_indices=(1, 2, 3, 4)`` on a
ResNet the strides are 4..32 (+64 from the extra level), so ``anchor_scale=4`` gives 16..256 px anchors, which
suits SSDD's 10-100 px ships.

All detectors use class index 1 for ``ship`` (0 is background).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from saropt.errors import ConfigError, require

require("torch", "torch")
import torch
from torch import nn

log = logging.getLogger(__name__)

ARCHS = ("faster_rcnn", "retinanet", "fcos")
NUM_CLASSES = 2  # background + ship


@dataclass(frozen=True)
class DetectorSpec:
    """Everything that defines a detector's architecture (stored in every checkpoint).

    Attributes:
        arch: ``"faster_rcnn"``, ``"retinanet"`` or ``"fcos"``.
        backbone: timm model name (``resnet18``, ``resnet50``, ...).
        in_chans: input channels (1 for grey SAR, 3 for RGB).
        out_indices: timm feature levels fed to the pyramid.
        fpn_channels: pyramid width.
        min_size: torchvision resizes the shorter image side to this.
        max_size: ... unless the longer side would exceed this.
        anchor_scale: anchor side in units of the level's stride.
        aspect_ratios: anchor height/width ratios.
        image_mean: per-channel mean of the [0, 1] input (one value is repeated for all channels).
        image_std: per-channel std.
        box_head_dim: Faster R-CNN box head width.
        rpn_batch_size: Faster R-CNN RPN anchors sampled per image.
        box_batch_size: Faster R-CNN RoIs sampled per image.
        score_thresh: keep detections above this score (low, for AP).
        nms_thresh: per-class NMS IoU of the detector's own post-processing.
        detections_per_img: at most this many detections per image.
    """

    arch: str = "faster_rcnn"
    backbone: str = "resnet18"
    in_chans: int = 1
    out_indices: tuple[int, ...] = (1, 2, 3, 4)
    fpn_channels: int = 256
    min_size: int = 512
    max_size: int = 832
    anchor_scale: float = 4.0
    aspect_ratios: tuple[float, ...] = (0.5, 1.0, 2.0)
    image_mean: tuple[float, ...] = (0.5,)
    image_std: tuple[float, ...] = (0.25,)
    box_head_dim: int = 1024
    rpn_batch_size: int = 256
    box_batch_size: int = 512
    score_thresh: float = 0.01
    nms_thresh: float = 0.5
    detections_per_img: int = 100

    def __post_init__(self) -> None:
        if self.arch not in ARCHS:
            raise ConfigError(f"unknown detector arch {self.arch!r}; use one of {', '.join(ARCHS)}")
        if self.in_chans not in (1, 3):
            raise ConfigError(f"in_chans must be 1 (grey SAR) or 3 (RGB), got {self.in_chans}")
        object.__setattr__(self, "out_indices", tuple(int(i) for i in self.out_indices))
        object.__setattr__(self, "aspect_ratios", tuple(float(a) for a in self.aspect_ratios))
        object.__setattr__(self, "image_mean", tuple(float(a) for a in self.image_mean))
        object.__setattr__(self, "image_std", tuple(float(a) for a in self.image_std))
        if not self.out_indices or sorted(set(self.out_indices)) != list(self.out_indices):
            raise ConfigError(f"out_indices must be increasing feature levels, got {self.out_indices}")
        if self.min_size < 32 or self.max_size < self.min_size:
            raise ConfigError(f"need 32 <= min_size <= max_size, got {self.min_size}, {self.max_size}")
        if self.fpn_channels < 8 or self.anchor_scale <= 0:
            raise ConfigError("fpn_channels must be >= 8 and anchor_scale > 0")
        if self.arch == "fcos" and self.fpn_channels % 32:
            raise ConfigError(f"fcos needs fpn_channels divisible by 32 (its head uses GroupNorm(32)), got {self.fpn_channels}")
        for v in (self.image_mean, self.image_std):
            if len(v) not in (1, self.in_chans):
                raise ConfigError(f"image_mean/std need 1 or {self.in_chans} values, got {v}")
        if any(s <= 0 for s in self.image_std):
            raise ConfigError("image_std values must be > 0")

    def to_dict(self) -> dict[str, Any]:
        """JSON/YAML-serialisable fields."""
        d = asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DetectorSpec:
        """Inverse of :meth:`to_dict`.

        Raises:
            ConfigError: unknown keys or invalid values.
        """
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"unknown detector model keys: {', '.join(unknown)}")
        values: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}
        return cls(**values)


class TimmFPNBackbone(nn.Module):
    """A timm ``features_only`` backbone (``body``) followed by a torchvision feature pyramid (``fpn``).

    Args:
        name: timm model name.
        in_chans: input channels.
        out_indices: feature levels.
        fpn_channels: pyramid width (``out_channels``).
        extra: ``"pool"`` (Faster R-CNN: max-pooled extra level) or ``"p6p7"`` (RetinaNet/FCOS).

    Raises:
        ConfigError: timm does not know ``name`` or it has no such feature levels.
    """

    def __init__(self, name: str, in_chans: int, out_indices: tuple[int, ...], fpn_channels: int, extra: str
                 ) -> None:
        super().__init__()
        timm: Any = require("timm", "torch")
        from torchvision.ops.feature_pyramid_network import (
            FeaturePyramidNetwork,
            LastLevelMaxPool,
            LastLevelP6P7,
        )

        if name not in timm.list_models():
            raise ConfigError(f"unknown backbone {name!r}; use a timm model name such as resnet18 or resnet50")
        try:
            self.body = timm.create_model(name, pretrained=False, features_only=True, out_indices=out_indices,
                                          in_chans=in_chans)
        except (RuntimeError, ValueError, IndexError, AssertionError) as exc:
            raise ConfigError(f"backbone {name} cannot give feature levels {out_indices}: {exc}") from exc
        chans = list(self.body.feature_info.channels())
        self.strides = [int(s) for s in self.body.feature_info.reduction()]
        blocks = LastLevelMaxPool() if extra == "pool" else LastLevelP6P7(fpn_channels, fpn_channels)
        self.fpn = FeaturePyramidNetwork(chans, fpn_channels, extra_blocks=blocks)
        self.out_channels = fpn_channels
        self.num_levels = len(chans) + (1 if extra == "pool" else 2)
        self.level_strides = self.strides + [self.strides[-1] * 2 ** (k + 1) for k in range(self.num_levels - len(chans))]
        self.feature_names = [str(i) for i in range(len(chans))]

    def forward(self, x: torch.Tensor) -> OrderedDict[str, torch.Tensor]:
        feats = self.body(x)
        return self.fpn(OrderedDict((str(i), f) for i, f in enumerate(feats)))


def build_detector(spec: DetectorSpec) -> nn.Module:
    """Create a detector with freshly initialised weights (timm's default initialisation).

    Args:
        spec: architecture.

    Returns:
        A torchvision detection model: ``model(images, targets)`` returns losses in training mode and
        ``[{"boxes", "scores", "labels"}]`` in eval mode; images are ``(C, H, W)`` float tensors in ``[0, 1]``.
        ``model.spec`` holds ``spec``.

    Raises:
        ConfigError: invalid spec or unknown backbone.
    """
    from torchvision.models.detection import FCOS, FasterRCNN, RetinaNet
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
    from torchvision.ops import MultiScaleRoIAlign

    extra = "pool" if spec.arch == "faster_rcnn" else "p6p7"
    bb = TimmFPNBackbone(spec.backbone, spec.in_chans, spec.out_indices, spec.fpn_channels, extra)
    mean = list(spec.image_mean) * (spec.in_chans if len(spec.image_mean) == 1 else 1)
    std = list(spec.image_std) * (spec.in_chans if len(spec.image_std) == 1 else 1)
    common: dict[str, Any] = {"min_size": spec.min_size, "max_size": spec.max_size, "image_mean": mean, "image_std": std}
    n = bb.num_levels
    if spec.arch == "faster_rcnn":
        sizes = tuple((round(spec.anchor_scale * s),) for s in bb.level_strides)
        anchors = AnchorGenerator(sizes, (spec.aspect_ratios,) * n)
        model: nn.Module = FasterRCNN(
            bb, num_classes=None, rpn_anchor_generator=anchors,
            box_roi_pool=MultiScaleRoIAlign(bb.feature_names, output_size=7, sampling_ratio=2),
            box_head=TwoMLPHead(spec.fpn_channels * 49, spec.box_head_dim),
            box_predictor=FastRCNNPredictor(spec.box_head_dim, NUM_CLASSES),
            rpn_batch_size_per_image=spec.rpn_batch_size, box_batch_size_per_image=spec.box_batch_size,
            box_score_thresh=spec.score_thresh, box_nms_thresh=spec.nms_thresh,
            box_detections_per_img=spec.detections_per_img, **common,
        )
    elif spec.arch == "retinanet":
        sizes = tuple(tuple(round(spec.anchor_scale * s * 2 ** (k / 3)) for k in range(3))
                      for s in bb.level_strides)
        anchors = AnchorGenerator(sizes, (spec.aspect_ratios,) * n)
        model = RetinaNet(bb, NUM_CLASSES, anchor_generator=anchors, score_thresh=spec.score_thresh,
                          nms_thresh=spec.nms_thresh, detections_per_img=spec.detections_per_img, **common)
    else:
        sizes = tuple((round(spec.anchor_scale * s),) for s in bb.level_strides)
        anchors = AnchorGenerator(sizes, ((1.0,),) * n)
        model = FCOS(bb, NUM_CLASSES, anchor_generator=anchors, score_thresh=spec.score_thresh,
                     nms_thresh=spec.nms_thresh, detections_per_img=spec.detections_per_img, **common)
    model.spec = spec  # type: ignore[assignment]
    return model


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return int(sum(p.numel() for p in model.parameters() if p.requires_grad))
