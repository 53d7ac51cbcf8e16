"""Matching models: the Bridge Neural Network and a pseudo-siamese classifier on timm backbones, and a dense
matcher for localisation.

All models have two branches with **unshared** weights, one for single-channel (or multi-polarisation) SAR
and one for RGB optical patches, each a timm backbone created by name (``resnet18``, ``resnet50``,
``darknet53``, any name in ``timm.list_models()``) with ``pretrained=False``: nothing is ever downloaded. A
user's own weight file can initialise a branch (:func:`load_backbone_weights`).

Every model exposes the same scoring interface, so protocols treat them alike:

- ``encode_sar(x) -> (B, F)`` and ``encode_opt(y) -> (B, F)``: per-patch codes, computed once per patch;
- ``pair_scores(fs, fo) -> (B,)``: similarity of paired codes in ``[0, 1]``, higher = match;
- ``score_matrix(fs, fo) -> (Ns, No)``: all pairs, for retrieval and localisation;
- ``default_threshold``: predict a match when ``score > default_threshold``.

For the BNN the code is the ``n``-dimensional sigmoid embedding and the score is ``1 - d`` (the paper's rule
``d < 0.5`` is ``score > 0.5``). For the pseudo-siamese model the code is the pooled backbone feature and the
score is the sigmoid of the fusion head's logit.

The dense matcher (:class:`DenseMatcher`) maps each image to unit descriptors at every native pixel; a SAR
template is located in an optical search window by the mean cosine of its descriptors at every offset (FFT
correlation, ``surface``). Its patch code is the descriptor map averaged over 4 x 4 blocks, and its pair score
the mean cosine of two such maps, mapped to ``[0, 1]``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Mapping

from saropt.errors import CheckpointError, ConfigError, require

require("torch", "torch")  # a clear install hint instead of a bare ImportError
import torch  # noqa: E402
from torch import nn  # noqa: E402

log = logging.getLogger(__name__)

MODEL_KINDS = ("bnn", "pseudo_siamese", "dense")
INPUT_NORMS = ("none", "standardize")


def standardize_per_image(x: "torch.Tensor", eps: float = 1e-4) -> "torch.Tensor":
    """Zero mean and unit variance per image and channel: ``(B, C, H, W) -> (B, C, H, W)``.

    Removes the per-scene brightness and contrast of 8-bit SAR and optical patches (radiometric scaling
    differs from scene to scene), so the network compares structure.
    """
    mean = x.mean(dim=(-2, -1), keepdim=True)
    std = x.std(dim=(-2, -1), keepdim=True)
    return (x - mean) / (std + eps)


class _InputNorm(nn.Module):
    def __init__(self, mode: str) -> None:
        super().__init__()
        if mode not in INPUT_NORMS:
            raise ConfigError(f"unknown input_norm {mode!r}; use one of {', '.join(INPUT_NORMS)}")
        self.mode = mode

    def forward(self, x: "torch.Tensor") -> "torch.Tensor":
        return standardize_per_image(x) if self.mode == "standardize" else x


def create_backbone(
    name: str,
    in_chans: int,
    weights: str | Path | None = None,
    args: Mapping[str, Any] | None = None,
) -> "nn.Module":
    """A timm backbone without classifier (``num_classes=0``: it returns pooled ``(B, F)`` features).

    Args:
        name: a timm model name, e.g. ``"resnet18"``, ``"resnet50"``, ``"darknet53"``.
        in_chans: input channels (1 for single-polarisation SAR, 3 for RGB optical).
        weights: optional path to a local state dict (timm or torchvision layout) loaded into the backbone.
        args: extra ``timm.create_model`` keyword arguments (e.g. ``{"channels": [32, 64, 128, 256],
            "stem_width": 16}`` for a narrower ResNet); lists become tuples.

    Returns:
        The backbone; ``backbone.num_features`` is ``F``.

    Raises:
        ConfigError: if timm does not know the name.
        CheckpointError: if the weight file is unreadable or does not fit.
    """
    timm = require("timm", "torch")
    if name not in timm.list_models():
        close = [m for m in timm.list_models(f"*{name[:6]}*")][:5]
        raise ConfigError(
            f"unknown backbone {name!r}; use a timm model name such as resnet18, resnet50, darknet53"
            + (f" (similar: {', '.join(close)})" if close else "")
        )
    extra = {k: tuple(v) if isinstance(v, list) else v for k, v in dict(args or {}).items()}
    reserved = sorted(set(extra) & {"pretrained", "num_classes", "in_chans"})
    if reserved:
        raise ConfigError(f"backbone_args may not set {', '.join(reserved)}; saropt sets them")
    try:
        model = timm.create_model(name, pretrained=False, num_classes=0, in_chans=in_chans, **extra)
    except TypeError as exc:
        raise ConfigError(f"backbone_args {extra} do not fit timm model {name!r}: {exc}") from exc
    if weights is not None:
        load_backbone_weights(model, weights, in_chans)
    return model


def branch_encoder(
    name: str,
    in_chans: int,
    weights: str | Path | None = None,
    args: Mapping[str, Any] | None = None,
    pool_grid: int = 1,
) -> tuple[list["nn.Module"], int]:
    """The layers of one branch up to its feature vector, and that vector's length.

    ``pool_grid == 1``: the timm backbone with its global average pooling (``F`` features). ``pool_grid = g >
    1``: the backbone's last feature map average-pooled to a ``g x g`` grid and flattened (``F * g * g``
    features), so the code keeps where structures lie in the patch instead of only which structures occur
    (at 96 px input a stride-32 backbone ends at 3 x 3: ``g = 3`` keeps the map as it is). The backbone is
    always the first layer (``sar_branch.0``, what detection's ``osm:`` initialisation reads).

    Raises:
        ConfigError: bad ``pool_grid`` or backbone.
    """
    if pool_grid < 1:
        raise ConfigError(f"pool_grid must be >= 1, got {pool_grid}")
    if pool_grid == 1:
        bb = create_backbone(name, in_chans, weights, args)
        return [bb], int(bb.num_features)
    bb = create_backbone(name, in_chans, weights, {**dict(args or {}), "global_pool": ""})
    return [bb, nn.AdaptiveAvgPool2d(pool_grid), nn.Flatten(1)], int(bb.num_features) * pool_grid**2


def _unwrap_state_dict(obj: Any, path: Path) -> dict[str, "torch.Tensor"]:
    import torch

    if isinstance(obj, Mapping):
        for key in ("state_dict", "model", "model_state", "net"):
            inner = obj.get(key)
            if (
                isinstance(inner, Mapping)
                and inner
                and all(isinstance(v, torch.Tensor) for v in inner.values())
            ):
                obj = inner
                break
    if not isinstance(obj, Mapping) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"{path} is not a state dict (a mapping of parameter names to tensors)")
    out: dict[str, torch.Tensor] = {}
    for k, v in obj.items():
        for prefix in ("module.", "backbone.", "model.", "encoder."):
            if k.startswith(prefix):
                k = k[len(prefix) :]
        out[k] = v
    return out


def load_backbone_weights(model: "nn.Module", path: str | Path, in_chans: int) -> None:
    """Load a local timm/torchvision state dict into a backbone created by :func:`create_backbone`.

    Classifier weights (``fc``, ``head``...) are dropped; a 3-channel first convolution is adapted to
    ``in_chans`` (summed to one channel for SAR, timm's ``adapt_input_conv``). Every backbone parameter must
    be present with the right shape.

    Args:
        model: the backbone.
        path: ``.pt``/``.pth``/``.bin`` file holding a state dict (possibly under ``state_dict``/``model``),
            or a ``.safetensors`` file.
        in_chans: the backbone's input channels.

    Raises:
        CheckpointError: unreadable file, missing or unexpected parameters, or shape mismatches.
    """
    import torch
    from timm.models import adapt_input_conv

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"backbone weight file not found: {path}")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            raw: Any = load_file(str(path))
        else:
            raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any decode failure is the same user problem
        raise CheckpointError(f"cannot read backbone weights {path}: {exc}") from exc
    sd = _unwrap_state_dict(raw, path)

    cfg = getattr(model, "pretrained_cfg", {}) or {}
    classifier = cfg.get("classifier")
    heads = [classifier] if isinstance(classifier, str) else list(classifier or [])
    heads += ["fc", "head", "classifier", "head.fc"]
    sd = {k: v for k, v in sd.items() if not any(k == h or k.startswith(h + ".") for h in heads)}

    own = model.state_dict()
    first = cfg.get("first_conv")
    firsts = [first] if isinstance(first, str) else list(first or [])
    for fc in firsts:
        key = f"{fc}.weight"
        if key in sd and key in own and sd[key].ndim == 4 and sd[key].shape[1] != own[key].shape[1]:
            sd[key] = adapt_input_conv(in_chans, sd[key])

    missing = [k for k in own if k not in sd and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in sd if k not in own]
    bad_shape = [k for k in sd if k in own and tuple(sd[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or bad_shape:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
        if bad_shape:
            k = bad_shape[0]
            parts.append(
                f"{len(bad_shape)} of wrong shape (e.g. {k}: {tuple(sd[k].shape)} vs {tuple(own[k].shape)})"
            )
        raise CheckpointError(
            f"{path} does not fit backbone {type(model).__name__}: "
            + "; ".join(parts)
            + "; check the backbone name in the config"
        )
    model.load_state_dict(sd, strict=False)
    log.info("loaded backbone weights from %s", path)


def build_model(
    kind: str,
    backbone: str,
    *,
    embedding_dim: int = 64,
    sar_channels: int = 1,
    opt_channels: int = 3,
    backbone_weights: Mapping[str, str | Path | None] | None = None,
    hidden_dim: int = 256,
    dropout: float = 0.3,
    input_norm: str = "none",
    backbone_args: Mapping[str, Any] | None = None,
    pool_grid: int = 1,
    dense_width: int = 16,
) -> "nn.Module":
    """Create a matching model by kind.

    Args:
        kind: ``"bnn"``, ``"pseudo_siamese"`` or ``"dense"``.
        backbone: timm model name for both branches (their weights are not shared).
        embedding_dim: BNN embedding size ``n``.
        sar_channels: SAR input channels.
        opt_channels: optical input channels.
        backbone_weights: optional ``{"sar": path, "opt": path}`` local weight files.
        hidden_dim: pseudo-siamese fusion head width.
        dropout: pseudo-siamese fusion head dropout.
        input_norm: ``"none"`` or ``"standardize"`` (per image and channel, inside the model).
        backbone_args: extra ``timm.create_model`` keyword arguments for both branches.
        pool_grid: ``1`` global average pooling of the backbone features; ``g > 1`` a ``g x g`` grid of
            averages, flattened (:func:`branch_encoder`).
        dense_width: dense matcher: channels of its full-resolution stage (its own fully convolutional
            branches; ``backbone`` and ``backbone_weights`` do not apply; ``embedding_dim`` is the descriptor
            size).

    Returns:
        A model with the scoring interface described in this module.

    Raises:
        ConfigError: unknown kind or backbone, bad sizes, or unknown ``backbone_weights`` keys.
        CheckpointError: a weight file that does not fit.
    """
    weights = dict(backbone_weights or {})
    unknown = set(weights) - {"sar", "opt"}
    if unknown:
        raise ConfigError(f"backbone_weights keys must be 'sar' and/or 'opt', got {sorted(unknown)}")
    if sar_channels < 1 or opt_channels < 1:
        raise ConfigError("sar_channels and opt_channels must be >= 1")
    if kind == "bnn":
        if embedding_dim < 1:
            raise ConfigError(f"embedding_dim must be >= 1, got {embedding_dim}")
        return BridgeNetwork(
            backbone, embedding_dim, sar_channels, opt_channels, weights, input_norm, backbone_args, pool_grid
        )
    if kind == "dense":
        if weights:
            raise ConfigError("the dense matcher has its own branches: backbone_weights do not apply")
        if embedding_dim < 1 or dense_width < 1:
            raise ConfigError("embedding_dim and dense_width must be >= 1")
        return DenseMatcher(embedding_dim, dense_width, sar_channels, opt_channels, input_norm)
    if kind == "pseudo_siamese":
        return PseudoSiamese(
            backbone,
            sar_channels,
            opt_channels,
            weights,
            hidden_dim,
            dropout,
            input_norm,
            backbone_args,
            pool_grid,
        )
    raise ConfigError(f"unknown model kind {kind!r}; use one of {', '.join(MODEL_KINDS)}")


class BridgeNetwork(nn.Module):
    """Bridge Neural Network (Xu et al., AAAI 2019): two unshared branches into a common ``[0, 1]^n`` space.

    Each branch is ``backbone [-> g x g pooling grid, flattened] -> Linear(F, n) -> Sigmoid``. The distance
    ``d = ||a - b|| / sqrt(n)`` is in ``[0, 1]``; the pair score is ``1 - d``.

    Args:
        backbone: timm name of both branches' backbone.
        embedding_dim: ``n``.
        sar_channels: SAR input channels.
        opt_channels: optical input channels.
        backbone_weights: optional ``{"sar": path, "opt": path}``.
        input_norm: ``"none"`` or ``"standardize"`` (per image and channel).
        backbone_args: extra ``timm.create_model`` keyword arguments.
        pool_grid: pooling grid of the backbone's last feature map (:func:`branch_encoder`).
    """

    kind = "bnn"
    default_threshold = 0.5

    def __init__(
        self,
        backbone: str,
        embedding_dim: int,
        sar_channels: int = 1,
        opt_channels: int = 3,
        backbone_weights: Mapping[str, str | Path | None] | None = None,
        input_norm: str = "none",
        backbone_args: Mapping[str, Any] | None = None,
        pool_grid: int = 1,
    ) -> None:
        super().__init__()
        w = dict(backbone_weights or {})
        sar_layers, fs = branch_encoder(backbone, sar_channels, w.get("sar"), backbone_args, pool_grid)
        opt_layers, fo = branch_encoder(backbone, opt_channels, w.get("opt"), backbone_args, pool_grid)
        self.embedding_dim = embedding_dim
        self.norm = _InputNorm(input_norm)
        self.sar_branch = nn.Sequential(*sar_layers, nn.Linear(fs, embedding_dim), nn.Sigmoid())
        self.opt_branch = nn.Sequential(*opt_layers, nn.Linear(fo, embedding_dim), nn.Sigmoid())

    def encode_sar(self, x: "torch.Tensor") -> "torch.Tensor":
        """``(B, C_sar, H, W) -> (B, n)`` embeddings in ``[0, 1]``."""
        return self.sar_branch(self.norm(x))

    def encode_opt(self, y: "torch.Tensor") -> "torch.Tensor":
        """``(B, 3, H, W) -> (B, n)`` embeddings in ``[0, 1]``."""
        return self.opt_branch(self.norm(y))

    def distance(self, fs: "torch.Tensor", fo: "torch.Tensor") -> "torch.Tensor":
        """Paired normalised distances ``(B,)``."""
        from saropt.matching.losses import bnn_distance

        return bnn_distance(fs, fo)

    def pair_scores(self, fs: "torch.Tensor", fo: "torch.Tensor") -> "torch.Tensor":
        """Paired similarities ``1 - d``, ``(B,)``."""
        return 1.0 - self.distance(fs.float(), fo.float())

    def score_matrix(self, fs: "torch.Tensor", fo: "torch.Tensor") -> "torch.Tensor":
        """All-pairs similarities ``(Ns, No)``."""
        from saropt.matching.losses import bnn_distance_matrix

        return 1.0 - bnn_distance_matrix(fs.float(), fo.float())

    def forward(self, sar: "torch.Tensor", opt: "torch.Tensor") -> "torch.Tensor":
        """Distances ``d`` of paired patches, ``(B,)``."""
        return self.distance(self.encode_sar(sar), self.encode_opt(opt))


class PseudoSiamese(nn.Module):
    """Pseudo-siamese classifier (Hughes et al., GRSL 2018 style).

    Two unshared streams (timm backbones, pooled features), concatenation, a small fully connected fusion head
    and one logit trained with binary cross-entropy. The pair score is ``sigmoid(logit)``.

    Args:
        backbone: timm name of both streams.
        sar_channels: SAR input channels.
        opt_channels: optical input channels.
        backbone_weights: optional ``{"sar": path, "opt": path}``.
        hidden_dim: fusion head width.
        dropout: fusion head dropout.
        input_norm: ``"none"`` or ``"standardize"`` (per image and channel).
        backbone_args: extra ``timm.create_model`` keyword arguments.
        pool_grid: pooling grid of the backbone's last feature map (:func:`branch_encoder`).
    """

    kind = "pseudo_siamese"
    default_threshold = 0.5

    def __init__(
        self,
        backbone: str,
        sar_channels: int = 1,
        opt_channels: int = 3,
        backbone_weights: Mapping[str, str | Path | None] | None = None,
        hidden_dim: int = 256,
        dropout: float = 0.3,
        input_norm: str = "none",
        backbone_args: Mapping[str, Any] | None = None,
        pool_grid: int = 1,
    ) -> None:
        super().__init__()
        w = dict(backbone_weights or {})
        self.norm = _InputNorm(input_norm)
        sar_layers, fs = branch_encoder(backbone, sar_channels, w.get("sar"), backbone_args, pool_grid)
        opt_layers, fo = branch_encoder(backbone, opt_channels, w.get("opt"), backbone_args, pool_grid)
        self.sar_branch = sar_layers[0] if pool_grid == 1 else nn.Sequential(*sar_layers)
        self.opt_branch = opt_layers[0] if pool_grid == 1 else nn.Sequential(*opt_layers)
        f = fs + fo
        self.head = nn.Sequential(
            nn.Linear(f, hidden_dim), nn.ReLU(inplace=True), nn.Dropout(dropout), nn.Linear(hidden_dim, 1)
        )

    def encode_sar(self, x: "torch.Tensor") -> "torch.Tensor":
        return self.sar_branch(self.norm(x))

    def encode_opt(self, y: "torch.Tensor") -> "torch.Tensor":
        return self.opt_branch(self.norm(y))

    def logits(self, fs: "torch.Tensor", fo: "torch.Tensor") -> "torch.Tensor":
        """Paired logits ``(B,)``."""
        return self.head(torch.cat([fs, fo], dim=1)).squeeze(1)

    def pair_scores(self, fs: "torch.Tensor", fo: "torch.Tensor") -> "torch.Tensor":
        return torch.sigmoid(self.logits(fs.float(), fo.float()))

    def score_matrix(self, fs: "torch.Tensor", fo: "torch.Tensor", chunk: int = 4096) -> "torch.Tensor":
        """All-pairs similarities ``(Ns, No)``; the head runs on every combination, in chunks."""
        ns, no = fs.shape[0], fo.shape[0]
        ii, jj = torch.meshgrid(torch.arange(ns), torch.arange(no), indexing="ij")
        ii, jj = ii.reshape(-1), jj.reshape(-1)
        out = torch.empty(ns * no, dtype=torch.float32, device=fs.device)
        for s in range(0, ns * no, chunk):
            out[s : s + chunk] = self.pair_scores(fs[ii[s : s + chunk]], fo[jj[s : s + chunk]])
        return out.view(ns, no)

    def forward(self, sar: "torch.Tensor", opt: "torch.Tensor") -> "torch.Tensor":
        """Logits of paired patches, ``(B,)``."""
        return self.logits(self.encode_sar(sar), self.encode_opt(opt))


def _conv_bn(c_in: int, c_out: int, stride: int = 1) -> "nn.Module":
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)
    )


class DenseBranch(nn.Module):
    """A fully convolutional descriptor network: ``(B, C, H, W) -> (B, D, H, W)`` unit vectors per pixel.

    Four stages (full, 1/2, 1/4 and 1/8 resolution; ``w``, ``2w``, ``4w`` and ``8w`` channels) whose outputs
    are upsampled to full resolution, concatenated and projected to ``D`` channels by a 1 x 1 convolution: the
    coarse stages see ~100 px of context through the speckle, the full-resolution stage keeps the pixel.

    Args:
        in_chans: input channels.
        dim: descriptor size ``D``.
        width: channels ``w`` of the full-resolution stage.
        input_norm: ``"none"`` or ``"standardize"``.
    """

    def __init__(self, in_chans: int, dim: int, width: int, input_norm: str = "standardize") -> None:
        super().__init__()
        w = width
        self.norm = _InputNorm(input_norm)
        self.full = nn.Sequential(_conv_bn(in_chans, w), _conv_bn(w, w))
        self.mid = nn.Sequential(_conv_bn(w, 2 * w, 2), _conv_bn(2 * w, 2 * w))
        self.quarter = nn.Sequential(
            _conv_bn(2 * w, 4 * w, 2), _conv_bn(4 * w, 4 * w), _conv_bn(4 * w, 4 * w)
        )
        self.eighth = nn.Sequential(
            _conv_bn(4 * w, 8 * w, 2), _conv_bn(8 * w, 8 * w), _conv_bn(8 * w, 8 * w)
        )
        self.head = nn.Conv2d(15 * w, dim, 1)

    def forward(self, x: "torch.Tensor") -> "torch.Tensor":
        from torch.nn import functional as F

        a = self.full(self.norm(x))
        b = self.mid(a)
        c = self.quarter(b)
        e = self.eighth(c)
        size = a.shape[-2:]
        up = [F.interpolate(t, size=size, mode="bilinear", align_corners=False) for t in (b, c, e)]
        return F.normalize(self.head(torch.cat([a, *up], dim=1)).float(), dim=1)


def correlation_surface(template: "torch.Tensor", window: "torch.Tensor") -> "torch.Tensor":
    """Mean descriptor dot product of templates at every offset inside windows (FFT cross-correlation).

    Args:
        template: ``(B, D, t, t)`` descriptors.
        window: ``(B, D, S, S)`` descriptors, ``S >= t``.

    Returns:
        ``(B, n, n)`` with ``n = S - t + 1``; entry ``[b, i, j]`` is the mean over template pixels of
        ``<template[b, :, y, x], window[b, :, y + i, x + j]>`` (row offset ``i``, column offset ``j``).

    Note:
        The circular correlation of size ``S`` equals the linear one at offsets ``0..S-t``: no wrap-around.
    """
    b, d, t, _ = template.shape
    s = window.shape[-1]
    ft = torch.fft.rfft2(template.float(), s=(s, s))
    fw = torch.fft.rfft2(window.float())
    c = torch.fft.irfft2((ft.conj() * fw).sum(1), s=(s, s))
    n = s - t + 1
    return c[:, :n, :n] / float(t * t)


class DenseMatcher(nn.Module):
    """A dense siamese matcher (unshared branches): per-pixel descriptors compared by FFT correlation.

    In the line of the FFT-correlation networks for SAR-optical template matching (Merkle et al. 2017;
    Hughes et al. 2020): trained so that a SAR template's correlation surface over an optical search window
    peaks at the true offset (a softmax over offsets, :func:`saropt.matching.losses.dense_localisation_loss`).

    Args:
        dim: descriptor size ``D``.
        width: full-resolution channels of each branch.
        sar_channels: SAR input channels.
        opt_channels: optical input channels.
        input_norm: ``"none"`` or ``"standardize"``.
    """

    kind = "dense"
    default_threshold = 0.5
    #: side of the blocks a patch code averages descriptors over
    code_pool = 4

    def __init__(
        self,
        dim: int,
        width: int,
        sar_channels: int = 1,
        opt_channels: int = 3,
        input_norm: str = "standardize",
    ) -> None:
        super().__init__()
        self.embedding_dim = dim
        self.sar_branch = DenseBranch(sar_channels, dim, width, input_norm)
        self.opt_branch = DenseBranch(opt_channels, dim, width, input_norm)
        self.logit_scale = nn.Parameter(torch.tensor(3.0))  # exp(3) = 1 / 0.05: softmax temperature

    def features_sar(self, x: "torch.Tensor") -> "torch.Tensor":
        """``(B, C_sar, H, W) -> (B, D, H, W)`` unit descriptors."""
        return self.sar_branch(x)

    def features_opt(self, y: "torch.Tensor") -> "torch.Tensor":
        """``(B, 3, H, W) -> (B, D, H, W)`` unit descriptors."""
        return self.opt_branch(y)

    def surface(self, template: "torch.Tensor", window: "torch.Tensor") -> "torch.Tensor":
        """Correlation surfaces ``(B, n, n)`` of SAR templates over optical windows (native pixels)."""
        return correlation_surface(self.features_sar(template), self.features_opt(window))

    def _code(self, f: "torch.Tensor") -> "torch.Tensor":
        from torch.nn import functional as F

        g = F.avg_pool2d(f, self.code_pool) if min(f.shape[-2:]) >= self.code_pool else f
        return g.flatten(1) / float(g.shape[-2] * g.shape[-1]) ** 0.5

    def encode_sar(self, x: "torch.Tensor") -> "torch.Tensor":
        """``(B, C_sar, H, W) -> (B, D * H * W / 16)`` block-averaged descriptors, scaled for a mean."""
        return self._code(self.features_sar(x))

    def encode_opt(self, y: "torch.Tensor") -> "torch.Tensor":
        """``(B, 3, H, W) -> (B, D * H * W / 16)`` block-averaged descriptors, scaled for a mean."""
        return self._code(self.features_opt(y))

    def pair_scores(self, fs: "torch.Tensor", fo: "torch.Tensor") -> "torch.Tensor":
        """``(1 + mean cosine) / 2`` of paired codes, ``(B,)`` in ``[0, 1]``."""
        return 0.5 * (1.0 + (fs.float() * fo.float()).sum(1))

    def score_matrix(self, fs: "torch.Tensor", fo: "torch.Tensor") -> "torch.Tensor":
        """All-pairs ``(1 + mean cosine) / 2``, ``(Ns, No)``."""
        return 0.5 * (1.0 + fs.float() @ fo.float().T)

    def forward(self, template: "torch.Tensor", window: "torch.Tensor") -> "torch.Tensor":
        """Offset logits ``(B, n * n)`` of templates over windows (row-major offsets)."""
        return self.surface(template, window).flatten(1) * self.logit_scale.exp()
