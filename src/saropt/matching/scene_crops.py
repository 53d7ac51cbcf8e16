"""Training crops sampled on the fly anywhere in the training scenes, not only on the dataset's patch grid.

A ``saropt build`` dataset cuts each scene into a fixed grid of patches; a model trained on that grid sees the
same few hundred windows every epoch. :class:`SceneCanvases` puts the patches of each scene (and sub-region)
back where they came from, using the ``window`` every saropt sample carries, into one SAR and one optical
canvas per scene with a coverage mask. :class:`SceneCrops` then draws, for every sample of every epoch, a
fresh square window anywhere inside the covered area (so quality-rejected areas and other splits stay out),
with a random scale, and the same joint flips and 90-degree rotations for SAR and optical. Only pixels of the
training split's kept patches are ever used: the split and the quality filters are respected exactly.

Samples come in groups of ``group`` consecutive indices drawn from the same scene, so a batch holds several
windows of one scene and in-batch negatives include spatial neighbours (the hard-negative case). Each sample
carries its scene number and window centre so that the loss can leave out pairs of overlapping windows,
which are not true non-matches (:func:`saropt.matching.losses.negative_weights`).

Randomness depends only on ``(seed, epoch, index)``: any worker count and an interrupted-and-resumed run give
the same samples.

Convention:
    Canvas and window coordinates are scene pixels: x = column, y = row, 0-based, pixel centres at integer
    coordinates. A window of side ``c`` with top-left pixel ``(x0, y0)`` has its centre at
    ``(x0 + (c - 1) / 2, y0 + (c - 1) / 2)``.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from saropt.errors import ConfigError, InputError
from saropt.matching.views import AUGMENTS, augment_pair, resize

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Canvas:
    """One scene (or sub-region) rebuilt from its patches.

    Attributes:
        key: ``scene`` or ``scene/subregion``.
        sar: ``(C_sar, H, W)`` uint8.
        opt: ``(C_opt, H, W)`` uint8.
        covered: ``(H, W)`` bool, true where some patch supplied the pixel.
        integral: ``(H + 1, W + 1)`` int64 summed-area table of ``covered``.
        origin: ``(x, y)`` scene pixel of the canvas's top-left pixel.
        patches: number of patches placed.

    Convention:
        ``origin`` is ``(column, row)`` in the scene, 0-based; canvas pixel ``[r, c]`` is scene pixel
        ``(origin[0] + c, origin[1] + r)``.
    """

    key: str
    sar: np.ndarray
    opt: np.ndarray
    covered: np.ndarray
    integral: np.ndarray
    origin: tuple[int, int]
    patches: int

    @property
    def area(self) -> int:
        """Covered pixels."""
        return int(self.integral[-1, -1])

    def fully_covered(self, x0: int, y0: int, side: int) -> bool:
        """Whether the ``side`` x ``side`` canvas window at top-left ``(x0, y0)`` is covered everywhere.

        Convention:
            ``(x0, y0)`` = (column, row) in canvas pixels, 0-based.
        """
        h, w = self.covered.shape
        if x0 < 0 or y0 < 0 or x0 + side > w or y0 + side > h:
            return False
        s = self.integral
        total = s[y0 + side, x0 + side] - s[y0, x0 + side] - s[y0 + side, x0] + s[y0, x0]
        return bool(total == side * side)


def _to_uint8(x: "torch.Tensor") -> np.ndarray:
    return np.clip(np.rint(x.detach().cpu().numpy() * 255.0), 0, 255).astype(np.uint8)


class SceneCanvases:
    """The patches of a dataset put back into one canvas per scene (and sub-region).

    Memory is one byte per channel per covered scene pixel (about 4 MB for a 1024 x 1024 SAR + RGB scene);
    overlapping patches are stored once.

    Args:
        canvases: the canvases.
        patch_side: side of the dataset's patches (the largest crop that always fits).
    """

    def __init__(self, canvases: Sequence[Canvas], patch_side: int) -> None:
        if not canvases:
            raise InputError("no scenes to sample training crops from")
        self.canvases = list(canvases)
        self.patch_side = int(patch_side)

    def __len__(self) -> int:
        return len(self.canvases)

    @classmethod
    def from_dataset(cls, dataset: Sequence[dict[str, Any]]) -> "SceneCanvases":
        """Mosaic every sample of a reader back into its scene.

        Args:
            dataset: a sequence of samples ``{"sar", "opt", "meta"}`` whose ``meta`` holds ``scene`` and
                ``window`` (``(col_off, row_off, width, height)`` in the scene; every ``saropt build``
                dataset has them), optionally ``subregion``. Values in ``[0, 1]`` (8-bit data / 255).

        Returns:
            The canvases, one per scene and sub-region, in sorted key order.

        Raises:
            InputError: an empty dataset, samples without a ``window``, or a patch whose size differs from its
                window.
        """
        n = len(dataset)
        if n == 0:
            raise InputError("the training split is empty: no scenes to sample crops from")
        metas = [_meta(dataset, i) for i in range(n)]
        if any("window" not in m for m in metas):
            raise InputError(
                "sampler 'scene_crops' needs each sample's window in its scene (saropt build datasets have "
                "them); use sampler: patches for this dataset"
            )
        groups: dict[str, list[int]] = {}
        for i, m in enumerate(metas):
            sub = str(m.get("subregion", "") or "")
            key = str(m.get("scene", "")) + (f"/{sub}" if sub else "")
            groups.setdefault(key, []).append(i)
        canvases = []
        side = 0
        for key in sorted(groups):
            idx = groups[key]
            wins = np.asarray([tuple(int(v) for v in metas[i]["window"]) for i in idx], dtype=np.int64)
            x0, y0 = int(wins[:, 0].min()), int(wins[:, 1].min())
            w = int((wins[:, 0] + wins[:, 2]).max()) - x0
            h = int((wins[:, 1] + wins[:, 3]).max()) - y0
            sar = opt = None
            covered = np.zeros((h, w), dtype=bool)
            for i, (c, r, pw, ph) in zip(idx, wins):
                item = dataset[i]
                s, o = _to_uint8(item["sar"]), _to_uint8(item["opt"])
                if s.shape[-2:] != (ph, pw) or o.shape[-2:] != (ph, pw):
                    raise InputError(
                        f"patch {metas[i].get('id', i)} is {s.shape[-1]}x{s.shape[-2]} px but its window is "
                        f"{pw}x{ph}; the dataset's index does not match its files"
                    )
                if sar is None or opt is None:
                    sar = np.zeros((s.shape[0], h, w), dtype=np.uint8)
                    opt = np.zeros((o.shape[0], h, w), dtype=np.uint8)
                rs, cs = slice(r - y0, r - y0 + ph), slice(c - x0, c - x0 + pw)
                sar[:, rs, cs] = s
                opt[:, rs, cs] = o
                covered[rs, cs] = True
                side = max(side, min(int(pw), int(ph)))
            integral = np.zeros((h + 1, w + 1), dtype=np.int64)
            integral[1:, 1:] = covered.cumsum(0).cumsum(1)
            assert sar is not None and opt is not None
            canvases.append(Canvas(key, sar, opt, covered, integral, (x0, y0), len(idx)))
        log.info(
            "scene canvases: %d scenes from %d patches, %.1f Mpx covered",
            len(canvases),
            n,
            sum(c.area for c in canvases) / 1e6,
        )
        return cls(canvases, side)


def _meta(dataset: Any, i: int) -> dict[str, Any]:
    """A sample's meta without decoding its images when the reader allows it."""
    if hasattr(dataset, "meta"):
        return dict(dataset.meta(i))
    return dict(dataset[i]["meta"])


class SceneCrops:
    """A torch-style dataset of aligned SAR-optical crops drawn anywhere in the training scenes.

    Item ``i`` of epoch ``e``: the scene is drawn (weighted by covered area) from ``(seed, e, i // group)``,
    the window from ``(seed, e, i)``: a square of native side ``round(crop * s)``, ``s`` log-uniform in
    ``[1 / (1 + scale_jitter), 1 + scale_jitter]`` (capped at the patch side), at a uniformly random position
    where every pixel is covered; it is resized (bilinear, antialiased) to ``size`` and flipped/rotated the
    same way for both modalities. Items are ``{"sar": (C, s, s), "opt": (3, s, s), "index": int, "scene":
    int, "centre": (2,) float, "side": int}`` (``centre`` in scene pixels, x then y).

    Args:
        canvases: the training scenes.
        crop: nominal native crop side (the evaluation view's ``crop``; 0 = the patch side).
        size: model input side (0 = no resize).
        length: samples per epoch.
        seed: base seed.
        augment: ``"none"``, ``"flip"`` or ``"flip_rot90"``.
        scale_jitter: relative scale range (0 = always ``crop``).
        group: consecutive samples drawn from the same scene.
        spread: ``> 0``: the 2nd, 3rd... window of a group lies within ``spread`` native pixels (in x and y)
            of the group's first window, so in-batch negatives include the same place slightly shifted
            (``0``: anywhere in the scene).
        tries: random positions tried before falling back to a window inside one patch.
        shift_negatives: ``K > 0`` adds ``"opt_shift"`` ``(K, 3, s, s)`` to every item: optical windows of
            the same side shifted by ``(dx, dy)`` native pixels, ``max(|dx|, |dy|)`` uniform in
            ``shift_range``, resized and flipped/rotated exactly like the item's own optical window, and
            ``"shift_ok"`` ``(K,)`` (false where no fully covered shifted window was found).
        shift_range: ``(min, max)`` shift size in native pixels.

    Raises:
        ConfigError: bad sizes or augmentation name.
    """

    def __init__(
        self,
        canvases: SceneCanvases,
        crop: int,
        size: int,
        length: int,
        *,
        seed: int = 0,
        augment: str = "flip_rot90",
        scale_jitter: float = 0.0,
        group: int = 1,
        spread: int = 0,
        tries: int = 64,
        shift_negatives: int = 0,
        shift_range: Sequence[int] = (2, 16),
    ) -> None:
        if augment not in AUGMENTS:
            raise ConfigError(f"unknown augment {augment!r}; use one of {', '.join(AUGMENTS)}")
        lo, hi = (int(v) for v in shift_range)
        if shift_negatives < 0 or not 1 <= lo <= hi:
            raise ConfigError("shift_negatives must be >= 0 and shift_range (min, max) with 1 <= min <= max")
        if length < 1 or group < 1 or scale_jitter < 0 or crop < 0 or size < 0 or spread < 0:
            raise ConfigError(
                "scene crops need length >= 1, group >= 1, scale_jitter >= 0, spread >= 0, crop/size >= 0"
            )
        self.canvases = canvases
        self.crop = int(crop or canvases.patch_side)
        if self.crop > canvases.patch_side:
            raise InputError(
                f"crop {self.crop} px is larger than the {canvases.patch_side} px patches; lower 'crop'"
            )
        self.size = int(size)
        self.length = int(length)
        self.seed = int(seed)
        self.augment = augment
        self.scale_jitter = float(scale_jitter)
        self.group = int(group)
        self.spread = int(spread)
        self.tries = int(tries)
        self.shift_negatives = int(shift_negatives)
        self.shift_range = (lo, hi)
        self.epoch = 0
        areas = np.asarray([c.area for c in canvases.canvases], dtype=np.float64)
        self._p = areas / areas.sum()

    def set_epoch(self, epoch: int) -> None:
        """Draw new windows for a new epoch."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.length

    def window(self, i: int) -> tuple[int, int, int, int, np.random.Generator]:
        """The window of item ``i`` in the current epoch, and the generator that goes on to augment it.

        Returns:
            ``(scene, x0, y0, side, rng)``: canvas number, top-left canvas pixel and native side.

        Convention:
            ``(x0, y0)`` = (column, row) in canvas pixels, 0-based.
        """
        scene_rng = np.random.default_rng([self.seed, 17, self.epoch, i // self.group])
        k = int(scene_rng.choice(len(self._p), p=self._p))
        cv = self.canvases.canvases[k]
        rng = np.random.default_rng([self.seed, 19, self.epoch, i])
        j = self.scale_jitter
        s = math.exp(rng.uniform(-math.log1p(j), math.log1p(j))) if j > 0 else 1.0
        side = int(min(self.canvases.patch_side, max(8, round(self.crop * s))))
        h, w = cv.covered.shape
        if self.spread > 0 and i % self.group:
            # near the group's first window (same scene, drawn first): the same place, slightly shifted
            _, ax, ay, aside, _ = self.window(i - i % self.group)
            cx, cy = ax + aside // 2, ay + aside // 2
            for _ in range(self.tries):
                x0 = cx - side // 2 + int(rng.integers(-self.spread, self.spread + 1))
                y0 = cy - side // 2 + int(rng.integers(-self.spread, self.spread + 1))
                if cv.fully_covered(x0, y0, side):
                    return k, x0, y0, side, rng
        for _ in range(self.tries):
            x0 = int(rng.integers(0, max(1, w - side + 1)))
            y0 = int(rng.integers(0, max(1, h - side + 1)))
            if cv.fully_covered(x0, y0, side):
                return k, x0, y0, side, rng
        # rare (thin coverage): a window inside one covered patch-sized square, found by scanning
        ys, xs = np.nonzero(cv.covered)
        order = rng.permutation(len(ys))
        for q in order[: 4 * self.tries]:
            x0 = int(min(xs[q], w - side))
            y0 = int(min(ys[q], h - side))
            if cv.fully_covered(x0, y0, side):
                return k, x0, y0, side, rng
        raise InputError(f"scene {cv.key} has no fully covered {side} px window; lower 'crop'")

    def __getitem__(self, i: int) -> dict[str, Any]:
        import torch

        if not 0 <= i < self.length:
            raise IndexError(i)
        k, x0, y0, side, rng = self.window(int(i))
        cv = self.canvases.canvases[k]
        s = torch.from_numpy(cv.sar[:, y0 : y0 + side, x0 : x0 + side].astype(np.float32) / 255.0)
        crops = [cv.opt[:, y0 : y0 + side, x0 : x0 + side]]
        ok = np.ones(self.shift_negatives, dtype=bool)
        if self.shift_negatives:
            srng = np.random.default_rng([self.seed, 23, self.epoch, int(i)])
            for q in range(self.shift_negatives):
                dx, dy, ok[q] = self._shift(cv, x0, y0, side, srng)
                crops.append(cv.opt[:, y0 + dy : y0 + dy + side, x0 + dx : x0 + dx + side])
        o = torch.from_numpy(np.concatenate(crops).astype(np.float32) / 255.0)
        s, o = resize(s, self.size), resize(o, self.size)
        s, o = augment_pair(s, o, rng, self.augment)  # one transform for the window and its shifted copies
        centre = (cv.origin[0] + x0 + (side - 1) / 2.0, cv.origin[1] + y0 + (side - 1) / 2.0)
        c = cv.opt.shape[0]
        item = {
            "sar": s.contiguous(),
            "opt": o[:c].contiguous(),
            "index": int(i),
            "scene": k,
            "centre": torch.tensor(centre, dtype=torch.float32),
            "side": side,
        }
        if self.shift_negatives:
            item["opt_shift"] = o[c:].reshape(self.shift_negatives, c, *o.shape[-2:]).contiguous()
            item["shift_ok"] = torch.from_numpy(ok)
        return item

    def _shift(
        self, cv: Canvas, x0: int, y0: int, side: int, rng: np.random.Generator
    ) -> tuple[int, int, bool]:
        """A shift ``(dx, dy)`` whose larger component lies in ``shift_range`` and whose window is covered.

        Returns ``(dx, dy, True)``, or ``(0, 0, False)`` when ``tries`` draws found no covered window.
        """
        lo, hi = self.shift_range
        for _ in range(self.tries):
            m = int(rng.integers(lo, hi + 1))
            other = int(rng.integers(-m, m + 1))
            sign = 1 if rng.random() < 0.5 else -1
            dx, dy = (sign * m, other) if rng.random() < 0.5 else (other, sign * m)
            if cv.fully_covered(x0 + dx, y0 + dy, side):
                return dx, dy, True
        return 0, 0, False
