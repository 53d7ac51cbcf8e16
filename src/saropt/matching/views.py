"""What a matching model sees of a patch pair: a crop of the native patch, resized to the model's input size.

A *view* is ``crop`` native pixels (a square, centred at evaluation, at a random position for training),
resized with antialiasing to ``size`` x ``size``. SAR and optical are always cut at the same window, so a
matching pair stays aligned. Training can add joint flips (and 90-degree rotations), applied identically to
both images.

Convention:
    Crop offsets are ``(x, y)`` = (column, row) of the crop's top-left pixel in the native patch, 0-based,
    pixel centres at integer coordinates.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from saropt.errors import ConfigError, InputError

if TYPE_CHECKING:
    import torch

AUGMENTS = ("none", "flip", "flip_rot90")


@dataclass(frozen=True)
class ViewSpec:
    """How patches are cropped and resized for a model.

    Attributes:
        crop: native crop side in pixels (``0`` = the whole patch).
        size: model input side in pixels after resizing (``0`` = no resize).
    """

    crop: int = 0
    size: int = 0

    def __post_init__(self) -> None:
        if self.crop < 0 or self.size < 0:
            raise ConfigError(f"view crop and size must be >= 0, got crop={self.crop} size={self.size}")

    def crop_side(self, patch_side: int) -> int:
        """The native crop side for a patch of side ``patch_side``."""
        c = self.crop or patch_side
        if c > patch_side:
            raise InputError(f"view crop {c} px is larger than the {patch_side} px patches; lower 'crop'")
        return c

    def scale(self, patch_side: int) -> float:
        """Model pixels per native pixel."""
        c = self.crop_side(patch_side)
        return (self.size or c) / c


def resize(x: "torch.Tensor", size: int) -> "torch.Tensor":
    """Resize ``(C, H, W)`` or ``(B, C, H, W)`` to ``size`` x ``size`` (bilinear, antialiased)."""
    import torch.nn.functional as F

    if size <= 0 or (x.shape[-1] == size and x.shape[-2] == size):
        return x
    batched = x.ndim == 4
    y = x if batched else x.unsqueeze(0)
    y = F.interpolate(y, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return y if batched else y.squeeze(0)


def cut(x: "torch.Tensor", x0: int, y0: int, side: int) -> "torch.Tensor":
    """The ``side`` x ``side`` window with top-left pixel ``(x0, y0)`` of a ``(C, H, W)`` tensor.

    Convention:
        ``(x0, y0)`` = (column, row), 0-based.
    """
    return x[..., y0 : y0 + side, x0 : x0 + side]


def make_view(
    sar: "torch.Tensor",
    opt: "torch.Tensor",
    spec: ViewSpec,
    rng: np.random.Generator | None = None,
    augment: str = "none",
) -> tuple["torch.Tensor", "torch.Tensor"]:
    """Cut and resize the same window of a SAR and an optical patch.

    Args:
        sar: ``(C_sar, H, W)`` in ``[0, 1]``.
        opt: ``(3, H, W)`` in ``[0, 1]``, same ``H, W``.
        spec: crop and size.
        rng: random generator; with it the crop position is random (training), without it centred.
        augment: ``"none"``, ``"flip"`` (random horizontal/vertical flips) or ``"flip_rot90"``; needs ``rng``.

    Returns:
        ``(sar_view, opt_view)``, ``(C, size, size)`` each.

    Raises:
        InputError: if the two patches differ in size or are smaller than the crop.
    """
    s, o, _, _, _ = _view(sar, opt, spec, rng, augment)
    return s, o


def _view(
    sar: "torch.Tensor",
    opt: "torch.Tensor",
    spec: ViewSpec,
    rng: np.random.Generator | None,
    augment: str,
) -> tuple["torch.Tensor", "torch.Tensor", int, int, int]:
    """:func:`make_view`, plus the crop's top-left pixel ``(x0, y0)`` in the patch and its side."""
    if sar.shape[-2:] != opt.shape[-2:]:
        raise InputError(f"SAR and optical patches differ in size: {tuple(sar.shape)} vs {tuple(opt.shape)}")
    h, w = sar.shape[-2:]
    side = spec.crop_side(min(h, w))
    x0, y0 = crop_offset(h, w, side, rng)
    s = resize(cut(sar, x0, y0, side), spec.size)
    o = resize(cut(opt, x0, y0, side), spec.size)
    if rng is not None:
        s, o = augment_pair(s, o, rng, augment)
    return s.contiguous(), o.contiguous(), x0, y0, side


def crop_offset(h: int, w: int, side: int, rng: np.random.Generator | None) -> tuple[int, int]:
    """Top-left pixel of a ``side`` crop of an ``h`` x ``w`` patch: centred, or random with ``rng``.

    Convention:
        Returns ``(x0, y0)`` = (column, row), 0-based.
    """
    if rng is None:
        return (w - side) // 2, (h - side) // 2
    x0 = int(rng.integers(0, w - side + 1))
    return x0, int(rng.integers(0, h - side + 1))


def augment_pair(
    s: "torch.Tensor", o: "torch.Tensor", rng: np.random.Generator, augment: str
) -> tuple["torch.Tensor", "torch.Tensor"]:
    """The same random flips (and 90-degree rotations) applied to a SAR and an optical view.

    Args:
        s: ``(C, H, W)`` SAR view.
        o: ``(C, H, W)`` optical view.
        rng: random generator.
        augment: ``"none"``, ``"flip"`` (horizontal and vertical flips, each with probability 1/2) or
            ``"flip_rot90"`` (flips, then a rotation by a random multiple of 90 degrees).

    Returns:
        The two augmented views (still aligned with each other).

    Raises:
        ConfigError: unknown augmentation.
    """
    import torch

    if augment not in AUGMENTS:
        raise ConfigError(f"unknown augment {augment!r}; use one of {', '.join(AUGMENTS)}")
    if augment == "none":
        return s, o
    if rng.random() < 0.5:
        s, o = torch.flip(s, dims=[-1]), torch.flip(o, dims=[-1])
    if rng.random() < 0.5:
        s, o = torch.flip(s, dims=[-2]), torch.flip(o, dims=[-2])
    if augment == "flip_rot90":
        k = int(rng.integers(0, 4))
        if k:
            s, o = torch.rot90(s, k, dims=(-2, -1)), torch.rot90(o, k, dims=(-2, -1))
    return s, o


class PairViews:
    """A torch-style dataset of viewed matching pairs over any reader that follows the saropt sample contract.

    Each item is ``{"sar": (C, s, s), "opt": (3, s, s), "index": int, "scene": int, "centre": (2,) float}``.
    ``scene`` numbers the dataset's scenes (sorted ids; -1 when unknown) and ``centre`` is the crop's centre
    in its scene (NaN when the dataset has no windows): the loss uses them to leave out negatives whose
    windows overlap. With ``train=True`` the crop position and augmentation are random but reproducible:
    they depend only on ``(seed, epoch, index)``, never on worker scheduling.

    Convention:
        ``centre`` = ``(x, y)`` scene pixels (column, row), 0-based.

    Args:
        dataset: a sequence of samples ``{"sar", "opt", "meta"}`` (e.g. :class:`saropt.data.SaroptDataset`).
        spec: the view.
        train: random crops and augmentation when true, centred crops otherwise.
        augment: augmentation name (see :data:`AUGMENTS`).
        seed: base seed.
        indices: optional subset of dataset indices.
    """

    def __init__(
        self,
        dataset: Sequence[dict[str, Any]],
        spec: ViewSpec,
        *,
        train: bool = False,
        augment: str = "none",
        seed: int = 0,
        indices: Sequence[int] | None = None,
    ) -> None:
        if augment not in AUGMENTS:
            raise ConfigError(f"unknown augment {augment!r}; use one of {', '.join(AUGMENTS)}")
        self.dataset = dataset
        self.spec = spec
        self.train = train
        self.augment = augment
        self.seed = seed
        self.epoch = 0
        self.indices = list(range(len(dataset))) if indices is None else list(indices)
        recs = getattr(dataset, "records", None)
        names = sorted({str(r.scene) for r in recs}) if recs is not None else []
        self._scene_ids = {n: k for k, n in enumerate(names)}

    def _scene_number(self, meta: dict[str, Any]) -> int:
        """The scene's number: its rank among the records' sorted scene ids, or for a reader without records
        a number derived from the id alone (CRC-32, after the ranks), so every DataLoader worker agrees."""
        scene = str(meta.get("scene", ""))
        if not scene:
            return -1
        k = self._scene_ids.get(scene)
        return k if k is not None else len(self._scene_ids) + zlib.crc32(scene.encode())

    def set_epoch(self, epoch: int) -> None:
        """Change the random crops and augmentation (training only) for a new epoch."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> dict[str, Any]:
        import torch

        idx = self.indices[i]
        sample = self.dataset[idx]
        rng = np.random.default_rng([self.seed, self.epoch, idx]) if self.train else None
        s, o, x0, y0, side = _view(sample["sar"], sample["opt"], self.spec, rng, self.augment)
        meta = sample.get("meta", {})
        win = meta.get("window")
        centre = (
            (float(win[0]) + x0 + (side - 1) / 2.0, float(win[1]) + y0 + (side - 1) / 2.0)
            if win is not None
            else (math.nan, math.nan)
        )
        return {
            "sar": s,
            "opt": o,
            "index": idx,
            "scene": self._scene_number(meta),
            "centre": torch.tensor(centre, dtype=torch.float32),
        }
