"""Ship records as torch samples: ``(image, target)`` with seeded training augmentation.

Sample::

    image: (C, H, W) float32 tensor in [0, 1]
    target: {"boxes": (N, 4) float32, "labels": (N,) int64 (1 = ship), "difficult": (N,) bool,
             "image_id": int}

Training augmentation (all seeded by ``(seed, epoch, index)``, so a resumed run sees the same samples): a random
crop of ``crop`` pixels (boxes clipped, remnants below 30% of their area or 2 px dropped) and random horizontal /
vertical flips.

Convention:
    Boxes in pixel-edge coordinates of the returned image (see :mod:`saropt.detection`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from saropt.detection.boxes import crop_boxes
from saropt.detection.datasets import ShipRecord
from saropt.detection.tiling import load_image


@dataclass(frozen=True)
class Augment:
    """Training augmentation.

    Attributes:
        crop: random crop side in pixels (0 = none; images smaller than it are not cropped).
        hflip: random horizontal flips.
        vflip: random vertical flips.
    """

    crop: int = 0
    hflip: bool = True
    vflip: bool = True


class ShipDataset:
    """A map-style dataset of ship records (works with ``torch.utils.data.DataLoader``).

    Args:
        records: images or chips.
        role: ``"sar"`` or ``"optical"`` (normalisation of non-8-bit data).
        channels: 1 or 3.
        augment: training augmentation, or ``None`` for evaluation.
        seed: augmentation seed.
    """

    def __init__(self, records: Sequence[ShipRecord], role: str = "sar", channels: int = 1,
                 augment: Augment | None = None, seed: int = 0) -> None:
        self.records = list(records)
        self.role = role
        self.channels = channels
        self.augment = augment
        self.seed = seed
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.records)

    def set_epoch(self, epoch: int) -> None:
        """Select the augmentation draws of ``epoch``."""
        self.epoch = int(epoch)

    def __getitem__(self, i: int) -> tuple[Any, dict[str, Any]]:
        import torch

        rec = self.records[i]
        img = load_image(rec, self.role, self.channels)
        boxes = rec.boxes.astype(np.float64)
        diff = rec.difficult
        if self.augment is not None:
            rng = np.random.default_rng((self.seed, self.epoch, i))
            img, boxes, diff = _augment(img, boxes, diff, self.augment, rng)
        image = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1))).float().div_(255.0)
        target = {
            "boxes": torch.as_tensor(boxes, dtype=torch.float32).reshape(-1, 4),
            "labels": torch.ones(len(boxes), dtype=torch.int64),
            "difficult": torch.as_tensor(diff, dtype=torch.bool).reshape(-1),
            "image_id": rec.image_id,
        }
        return image, target


def _augment(img: np.ndarray, boxes: np.ndarray, diff: np.ndarray, aug: Augment, rng: np.random.Generator
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    h, w = img.shape[:2]
    if aug.crop and (h > aug.crop or w > aug.crop):
        ch, cw = min(aug.crop, h), min(aug.crop, w)
        y0 = int(rng.integers(0, h - ch + 1))
        x0 = int(rng.integers(0, w - cw + 1))
        img = img[y0:y0 + ch, x0:x0 + cw]
        boxes, idx = crop_boxes(boxes, x0, y0, cw, ch)
        diff = diff[idx]
        h, w = ch, cw
    if aug.hflip and rng.random() < 0.5:
        img = img[:, ::-1]
        boxes = boxes.copy()
        boxes[:, [0, 2]] = w - boxes[:, [2, 0]]
    if aug.vflip and rng.random() < 0.5:
        img = img[::-1]
        boxes = boxes.copy()
        boxes[:, [1, 3]] = h - boxes[:, [3, 1]]
    return img, boxes, diff


def collate(batch: Sequence[tuple[Any, dict[str, Any]]]) -> tuple[list[Any], list[dict[str, Any]]]:
    """Lists of images and targets (detectors take images of different sizes)."""
    return [b[0] for b in batch], [b[1] for b in batch]
